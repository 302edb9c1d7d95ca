"""The contract between C and Python: the version handshake, the layout fingerprint that
attaching checks, and constants that Python takes from the C core instead of repeating them."""

from __future__ import annotations

import mmap
import struct

import posix_ipc
import pytest

import gorun
from gorun import _gorun, gc, godebug, report, runtime, types

LAYOUT_SIG_OFFSET = 28  # gorun_shared_t: magic u64, abi u32, nprocs, lock_kind, debug_flags, ncpu, layout_sig


def _reattach(h) -> None:
    meta = posix_ipc.SharedMemory(h.meta_name)
    arena = posix_ipc.SharedMemory(h.arena_name)
    try:
        _gorun.attach(meta.fd, h.meta_size, arena.fd, h.arena_size)
    finally:
        meta.close_fd()
        arena.close_fd()


def test_segment_carries_the_layout_fingerprint_and_attach_checks_it(heap):
    c = _gorun.constants()
    meta = posix_ipc.SharedMemory(heap.meta_name)
    with mmap.mmap(meta.fd, 4096) as m:
        meta.close_fd()
        magic, abi = struct.unpack_from("<QI", m, 0)
        (sig,) = struct.unpack_from("<I", m, LAYOUT_SIG_OFFSET)
        assert abi == c["abi_version"] == _gorun.ABI_VERSION
        assert sig == c["layout_sig"]
        _gorun.detach()
        _reattach(heap)  # the same build: accepted
        _gorun.detach()
        struct.pack_into("<I", m, LAYOUT_SIG_OFFSET, sig ^ 1)  # a build with another layout made it
        with pytest.raises(gorun.GorunError, match=r"not a gorun heap of ABI \d+, layout [0-9a-f]{8}"):
            _reattach(heap)
        assert not _gorun.attached()
        struct.pack_into("<I", m, LAYOUT_SIG_OFFSET, sig)
        _reattach(heap)  # conftest's teardown detaches


def test_python_takes_the_constants_from_the_c_core():
    c = _gorun.constants()
    assert (types.FK_PTR, types.FK_INT, types.FK_FLOAT, types.FK_BYTES) == tuple(
        c["field_kinds"][k] for k in ("ptr", "int", "float", "bytes")
    )
    assert types.TID_BYTES == c["type_ids"]["bytes"] and types.TID_PTR_ARRAY == c["type_ids"]["ptr_array"]
    assert godebug.KNOBS["mcachebypass"][0] == c["debug_flags"]["mcachebypass"]
    assert godebug.KNOBS["gccheckmark"][0] == c["debug_flags"]["checkmark"]
    assert runtime.LOCK_KINDS == c["lock_kinds"] == ("futex", "pthread", "sem")
    assert (runtime.MIN_MAX_HEAP, runtime.MAX_MAX_HEAP) == (c["min_heap"], c["max_heap"])
    assert report.PAGE_SIZE == c["page_size"] == 8192
    assert gc.CYCLE_KEYS == c["cycle_fields"] and len(gc.CYCLE_KEYS) == 30
    assert c["lock_ranks"]["mcentral"] < c["lock_ranks"]["mheap"] < c["lock_ranks"]["workbuf"]


def test_cycle_record_is_written_and_read_by_name(heap):
    names = _gorun.constants()["cycle_fields"]
    rec = {k: i * 3 + 1 for i, k in enumerate(names)}
    _gorun.gc_cycle_write(0, rec)
    assert _gorun.gc_cycles() == [rec]
    with pytest.raises(ValueError, match="30 fields"):
        _gorun.gc_cycle_write(1, {"n": 1})
    bad = dict(rec)
    bad.pop("n")
    bad["bogus"] = 0
    with pytest.raises(KeyError, match="n missing"):
        _gorun.gc_cycle_write(1, bad)
