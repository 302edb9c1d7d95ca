"""The page allocator under the mheap lock, driven through the C test hooks on a real attached
heap: _gorun.pages_alloc(n) (first page or 0; grows the heap as needed), pages_free(page, n),
pages_check() (the validity walker: (free pages, grown pages), GorunError if invalid), and the
scavenger: _gorun.scavenge(nbytes) (bytes released) and pages_scavenged() (one byte per grown
page, 1 = its scavenged bit is set).

The property tests keep a model of the live runs and check every step against it: runs never
overlap, stay inside the grown pages, never include page 0 (nil), the walker stays valid and
counts exactly the free pages of the model, allocation is address-ordered first fit, and freeing
everything coalesces back to one run. With scavenging: scavenged pages are a subset of the free
pages, their count is released_pages, allocating scavenged pages clears their bits (and counts
them as reused), a scavenge releases whole runs of at least 8 free pages within a chunk, highest
first, never more than asked, and mapped_ready = sys_bytes - released bytes."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from conftest import run_in_private_shm
from gorun import _gorun

CHUNK = 512  # pages per page-allocator chunk (4 MiB)
ARENA = 16 << 20  # 2048 pages, 4 chunks: growth and exhaustion both happen
NPAGES = ARENA // 8192
PAGE = _gorun.constants()["page_size"]
SCAV_MIN = _gorun.constants()["scav_min_bytes"] // PAGE  # 8 pages: the smallest run released


class Model:
    """The live runs, as a page bitmap (True = allocated by the test), and the scavenged pages."""

    def __init__(self, npages: int):
        self.npages = npages
        self.used = np.zeros(npages, dtype=bool)
        self.scav = np.zeros(npages, dtype=bool)
        self.reused = 0  # scavenged pages handed out again
        self.live: dict[int, int] = {}

    def first_fit(self, n: int, limit: int):
        """Lowest p >= 1 with pages [p, p+n) free and p+n <= limit, or None."""
        free = ~self.used[1:limit]
        if n > free.size:
            return None
        # run lengths of free pages: position i starts a fit if the next n are all free
        c = np.concatenate(([0], np.cumsum(free, dtype=np.int64)))
        ok = np.nonzero(c[n:] - c[:-n] == n)[0]
        return int(ok[0]) + 1 if ok.size else None

    def add(self, p: int, n: int):
        assert not self.used[p : p + n].any(), f"run [{p}, {p + n}) overlaps a live run"
        self.used[p : p + n] = True
        self.reused += int(self.scav[p : p + n].sum())  # reserved again, no longer scavenged
        self.scav[p : p + n] = False
        self.live[p] = n

    def remove(self, p: int):
        n = self.live.pop(p)
        self.used[p : p + n] = False
        return n

    def live_pages(self) -> int:
        return sum(self.live.values())


def scavenged() -> np.ndarray:
    """The scavenged bits of the grown pages, as a bool array."""
    return np.frombuffer(_gorun.pages_scavenged(), dtype=np.uint8).astype(bool)


def check(model: Model) -> int:
    """Walker valid and in agreement with the model; returns grown pages."""
    free, grown = _gorun.pages_check()  # raises GorunError if the allocator is invalid
    assert 1 <= grown <= model.npages
    assert not model.used[grown:].any(), "a live run extends past grown pages"
    assert not model.used[0], "page 0 is nil and never allocated"
    assert free == grown - 1 - model.live_pages(), "free pages disagree with the live runs"
    sb = scavenged()
    assert sb.size == grown
    assert not (sb & model.used[:grown]).any(), "a scavenged page is in use"
    assert (sb == model.scav[:grown]).all(), "scavenged pages disagree with the model"
    assert not model.scav[grown:].any()
    m = _gorun.memstats()
    assert m["heap_released"] == _gorun.stats()["mheap"]["released_pages"] * PAGE == int(sb.sum()) * PAGE
    assert (
        m["mapped_ready"]
        == m["sys_bytes"] - m["heap_released"]
        == m["/memory/classes/total:bytes"] - m["/memory/classes/heap/released:bytes"]
    )
    classes = [k for k in m if k.startswith("/memory/classes/") and k != "/memory/classes/total:bytes"]
    assert sum(m[k] for k in classes) == m["/memory/classes/total:bytes"]
    assert m["scav_inflight"] == 0 and m["consistent"]
    assert m["scav_reused_bytes"] == model.reused * PAGE
    return grown


def arena_file_bytes(h) -> int:
    """Bytes the arena segment really holds in /dev/shm (allocated blocks, not its size)."""
    return os.stat("/dev/shm/" + h.arena_name.lstrip("/")).st_blocks * 512


def _shmem_thp() -> bool:
    try:
        with open("/sys/kernel/mm/transparent_hugepage/shmem_enabled") as f:
            mode = f.read()
    except OSError:
        return False
    return "[never]" not in mode and "[deny]" not in mode


SHMEM_THP = _shmem_thp()  # tmpfs may back the arena with huge pages: the file's blocks are then coarser


def check_arena_file(h) -> None:
    """The arena file holds exactly the grown pages that are not released: growth reserves them
    (fallocate), the scavenger punches them out, reuse reserves them again; nothing else touches
    the arena in these tests."""
    _, grown = _gorun.pages_check()
    want = (grown - 1 - _gorun.stats()["mheap"]["released_pages"]) * PAGE
    if SHMEM_THP:
        assert abs(arena_file_bytes(h) - want) <= 2 << 20
    else:
        assert arena_file_bytes(h) == want


def candidate_runs(model: Model, grown: int) -> list[tuple[int, int]]:
    """Runs [start, end) of at least SCAV_MIN free, unscavenged pages inside one chunk: what a
    scavenge may release."""
    cand = ~model.used[:grown] & ~model.scav[:grown]
    cand[0] = False  # page 0 (nil) is never free
    runs = []
    for lo in range(0, grown, CHUNK):
        c = np.concatenate(([False], cand[lo : min(lo + CHUNK, grown)], [False])).astype(np.int8)
        d = np.diff(c)
        for a, b in zip(np.nonzero(d == 1)[0], np.nonzero(d == -1)[0]):
            if b - a >= SCAV_MIN:
                runs.append((lo + int(a), lo + int(b)))
    return runs


def do_scavenge(model: Model, nbytes: int) -> int:
    """Scavenge and check the result against the model: only free unscavenged pages in runs of at
    least SCAV_MIN within a chunk, highest first, at most nbytes rounded up to SCAV_MIN pages."""
    _, grown = _gorun.pages_check()
    before = scavenged()
    m0 = _gorun.memstats()
    got = _gorun.scavenge(nbytes)
    after = scavenged()
    assert not (before & ~after).any(), "a scavenge un-scavenged a page"
    new = after & ~before
    assert got == int(new.sum()) * PAGE
    want = -(-nbytes // (SCAV_MIN * PAGE)) * SCAV_MIN if nbytes else 0
    assert got <= want * PAGE, "released more than asked"
    model.scav[:grown] |= new
    left = candidate_runs(model, grown)
    if got:
        lowest = int(np.nonzero(new)[0][0])
        for a, b in left:  # every run it left lies below what it took
            assert b <= lowest, f"left [{a}, {b}) unscavenged but released pages from {lowest} up (not highest first)"
    if got <= (want - SCAV_MIN) * PAGE:
        assert not left, f"released {got} B of {want * PAGE} B with runs still free: {left[:3]}"
    m1 = _gorun.memstats()
    assert m1["scav_released_bytes"] - m0["scav_released_bytes"] == got
    assert m0["mapped_ready"] - m1["mapped_ready"] == got
    check(model)
    return got


def do_alloc(model: Model, n: int) -> int:
    _, grown_before = _gorun.pages_check()
    p = _gorun.pages_alloc(n)
    check_after_alloc(model, n, p, grown_before)
    return p


def check_after_alloc(model: Model, n: int, p: int, grown_before: int) -> int:
    _, grown = _gorun.pages_check()
    assert grown >= grown_before, "the heap never shrinks"
    fit_before = model.first_fit(n, grown_before)
    if p == 0:
        assert fit_before is None, f"alloc({n}) failed though [{fit_before}, +{n}) was free"
        assert grown_before + n > model.npages, f"alloc({n}) failed though the reservation could grow"
        check(model)
        return grown
    assert 1 <= p and p + n <= grown, f"run [{p}, {p + n}) outside grown pages [1, {grown})"
    if fit_before is not None:
        assert p == fit_before, f"alloc({n}) -> {p}, but first fit is {fit_before}"
        assert grown == grown_before, "grew although the request fit"
    else:
        assert p + n > grown_before, "no fit existed below the old limit"
        assert p == model.first_fit(n, grown), "first fit within the grown heap"
    model.add(p, n)
    check(model)
    return grown


sizes = st.one_of(st.integers(1, 8), st.integers(1, 300), st.integers(CHUNK - 2, 2 * CHUNK + 2))
ops = st.lists(
    st.tuples(st.sampled_from(["alloc", "free", "scavenge"]), sizes, st.integers(0, 1 << 16)), min_size=1, max_size=40
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=ops, lock=st.sampled_from(["futex", "pthread", "sem"]))
def test_random_alloc_free_scavenge_sequences(heap_factory, ops, lock):
    with heap_factory(lock=lock, arena_size=ARENA, nprocs=1, root_slots=16, nglobals=1) as h:
        model = Model(h.npages)
        check(model)
        for op, n, pick in ops:
            if op == "scavenge":
                nbytes = (0, PAGE, n * PAGE, pick * PAGE, 1 << 40)[pick % 5]
                got = do_scavenge(model, nbytes)
                event("scavenge released nothing" if got == 0 else "scavenge released pages")
            elif op == "free" and model.live:
                starts = sorted(model.live)
                p = starts[pick % len(starts)]
                _gorun.pages_free(p, model.remove(p))
                check(model)
            else:
                _, grown_before = _gorun.pages_check()
                scav_before = model.reused
                p = _gorun.pages_alloc(n)
                grown = check_after_alloc(model, n, p, grown_before)
                event(
                    "alloc refused"
                    if p == 0
                    else "alloc reused scavenged pages"
                    if model.reused and scav_before != model.reused
                    else "alloc grew the heap"
                    if grown > grown_before
                    else "alloc reused a hole"
                    if p + n < grown_before and model.used[p + n : grown_before].any()
                    else "alloc fit"
                )
        # free everything, in an order of the example's choosing: it all coalesces back
        order = sorted(model.live, key=lambda p: (p * 2654435761 + len(ops)) % 1000003)
        for p in order:
            _gorun.pages_free(p, model.remove(p))
            check(model)
            check_arena_file(h)
        free, grown = _gorun.pages_check()
        assert free == grown - 1
        if grown == 1:  # nothing was ever allocated (only scavenges): no page to reuse
            return
        assert _gorun.pages_alloc(grown - 1) == 1, "all free pages form one run starting at page 1"
        model.add(1, grown - 1)  # every scavenged page is reserved again
        assert check(model) == grown and not scavenged().any()
        assert _gorun.pages_check() == (0, grown), "no growth needed for a run that fits"
        check_arena_file(h)
        _gorun.pages_free(1, model.remove(1))
        assert _gorun.pages_check() == (grown - 1, grown)
        # an empty heap scavenges down to nothing: every free page is in a run of 8 or more
        do_scavenge(model, 1 << 40)
        assert scavenged()[1:].all()
        check_arena_file(h)
        assert arena_file_bytes(h) == 0


@pytest.mark.parametrize("heap", ["futex", "pthread", "sem"], indirect=True)
def test_first_fit_takes_the_lowest_hole(heap):
    model = Model(heap.npages)
    a = do_alloc(model, 10)
    b = do_alloc(model, 5)
    c = do_alloc(model, 10)
    d = do_alloc(model, 3)
    e = do_alloc(model, 1)
    assert (a, b, c, d, e) == (1, 11, 16, 26, 29), "fresh heap: runs are packed from page 1 up"
    for p in (b, d):
        _gorun.pages_free(p, model.remove(p))
        check(model)
    # a 3-page request fits exactly in d's hole, but first fit takes the lower hole at b
    assert do_alloc(model, 3) == b
    assert do_alloc(model, 2) == b + 3
    assert do_alloc(model, 3) == d
    assert do_alloc(model, 4) == e + 1


def test_free_runs_join_across_chunk_borders(heap):
    model = Model(heap.npages)
    x = do_alloc(model, CHUNK - 1)  # the rest of chunk 0
    y = do_alloc(model, CHUNK)  # chunk 1
    z = do_alloc(model, CHUNK)  # chunk 2
    assert (x, y, z) == (1, CHUNK, 2 * CHUNK)
    _gorun.pages_free(y, model.remove(y))
    _gorun.pages_free(x, model.remove(x))
    check(model)
    assert do_alloc(model, 2 * CHUNK - 1) == 1, "the free run spans chunks 0 and 1"
    # a run that straddles a border without covering a whole chunk
    _gorun.pages_free(1, model.remove(1))
    w = do_alloc(model, CHUNK - 10)
    v = do_alloc(model, 20)
    assert (w, v) == (1, CHUNK - 9), "first fit straddles the chunk border"
    check(model)


def test_exhaustion_returns_zero_and_changes_nothing(heap):
    model = Model(heap.npages)
    before = _gorun.pages_check()
    assert _gorun.pages_alloc(heap.npages) == 0, "page 0 is nil: npages do not fit"
    assert _gorun.pages_alloc(heap.npages + 10_000) == 0
    assert _gorun.pages_check() == before, "a refused request changes nothing"
    # the whole reservation but page 0 is one run
    assert do_alloc(model, heap.npages - 1) == 1
    assert _gorun.pages_check() == (0, heap.npages)
    assert _gorun.pages_alloc(1) == 0
    assert _gorun.pages_check() == (0, heap.npages)
    _gorun.pages_free(1, model.remove(1))
    check(model)
    assert do_alloc(model, 100) == 1


def test_free_outside_the_heap_is_refused(heap):
    model = Model(heap.npages)
    do_alloc(model, 4)
    _, grown = _gorun.pages_check()
    with pytest.raises(ValueError):
        _gorun.pages_free(0, 1)  # page 0 is nil
    with pytest.raises(ValueError):
        _gorun.pages_free(grown - 1, 2)  # past grown pages
    check(model)


@pytest.mark.parametrize("heap", [{"arena_size": 16 << 20}], indirect=True)
def test_allocation_fits_in_reservation_after_growth(heap):
    assert _gorun.pages_alloc(1) == 1  # grows the heap by one 512-page chunk
    # 2000 pages fit in [2, 2002) of this 2048-page reservation
    assert _gorun.pages_alloc(2000) == 2


# ---------------------------------------------------------------- the scavenger on a standalone heap


def test_scavenging_returns_memory_and_reused_pages_read_zero(heap):
    """Free a big run, scavenge it: the arena file really shrinks by the bytes released, the
    walker stays valid, and pages handed out again read as zero (they are reserved again)."""
    model = Model(heap.npages)
    n = 1500
    p = do_alloc(model, n)  # grows the heap to 2048 pages, every one reserved in /dev/shm
    with open("/dev/shm/" + heap.arena_name.lstrip("/"), "r+b") as f:
        f.seek(p * PAGE)
        f.write(b"\xab" * (n * PAGE))  # old data in every page of the run
    check_arena_file(heap)
    before = arena_file_bytes(heap)
    _gorun.pages_free(p, model.remove(p))
    assert arena_file_bytes(heap) == before, "freeing alone returns nothing"
    got = do_scavenge(model, n * PAGE)
    assert got == -(-n // SCAV_MIN) * SCAV_MIN * PAGE, "a free heap releases all that was asked"
    after = arena_file_bytes(heap)
    assert before - after >= got - (0 if not SHMEM_THP else 2 << 20), (before, after, got)
    check_arena_file(heap)
    m = _gorun.memstats()
    assert m["heap_released"] == got and m["scav_released_bytes"] == got
    # the highest pages went first: the released run ends at the top of the grown heap
    sb = scavenged()
    assert sb[-1] and sb.sum() * PAGE == got and not sb[: len(sb) - got // PAGE].any()
    # reuse: the whole grown heap in one run, released pages included
    _, grown = _gorun.pages_check()
    assert grown == 1536, "1500 pages grew the heap by 3 chunks"
    q = do_alloc(model, grown - 1)
    assert q == 1 and not scavenged().any()
    assert _gorun.memstats()["scav_reused_bytes"] == got
    check_arena_file(heap)
    released_lo = grown - got // PAGE
    for page in (released_lo, released_lo + 1, n, grown - 1):
        for off in (0, 8, PAGE - 8):
            assert _gorun.read_word(page * PAGE + off) == 0, f"page {page} kept old data after reuse"
    assert _gorun.read_word((released_lo - 1) * PAGE) == 0xABABABABABABABAB, "an unreleased page keeps its data"


def test_scavenge_asks_for_whole_runs_of_64k(heap):
    model = Model(heap.npages)
    runs = [do_alloc(model, k) for k in (3, 7, 8, 20, 1)]  # pages 1.., packed
    for p in runs[:4]:
        _gorun.pages_free(p, model.remove(p))
    # the free runs below the live page 39 are 1..38 (38 pages, one run); above it the rest of the chunk
    assert do_scavenge(model, 1) == SCAV_MIN * PAGE, "one byte asks for the smallest run"
    assert scavenged()[-SCAV_MIN:].all(), "taken from the top of the grown heap"
    assert do_scavenge(model, 0) == 0
    got = do_scavenge(model, 1 << 40)  # everything: the top run and the 38 pages under page 39
    assert got == (511 - 39 - SCAV_MIN + 38) * PAGE
    assert do_scavenge(model, 1 << 40) == 0, "nothing left to release"


def test_reusing_released_pages_with_dev_shm_full_fails_and_changes_nothing():
    """Reserving released pages again can fail like growth: the allocation fails, the pages stay
    released and free, and the walker stays valid; with room again it succeeds."""
    d = run_in_private_shm(
        "48m",
        r"""
import json, os, sys
sys.path.insert(0, "tests")
from conftest import standalone_heap
from gorun import _gorun
with standalone_heap(arena_size=16 << 20, nprocs=1, root_slots=16, nglobals=1) as h:
    p = _gorun.pages_alloc(1000)
    _gorun.pages_free(p, 1000)
    released = _gorun.scavenge(1 << 40)
    fd = os.open("/dev/shm/filler", os.O_CREAT | os.O_RDWR, 0o600)
    off = 0
    for step in (1 << 20, 4096):
        while True:
            try:
                os.posix_fallocate(fd, off, step)
            except OSError:
                break
            off += step
    refused = _gorun.pages_alloc(1000)  # fits in the released pages, which cannot be reserved again
    after = _gorun.memstats()["heap_released"]
    ok = _gorun.pages_check()
    os.close(fd)
    os.unlink("/dev/shm/filler")
    again = _gorun.pages_alloc(1000)
    print(json.dumps({"released": released, "refused": refused, "after": after, "check": ok, "again": again,
                      "left": _gorun.memstats()["heap_released"]}))
""",
    )
    assert d["released"] == 1023 * PAGE, d  # 1000 pages grew the heap by 2 chunks, all released
    assert d["refused"] == 0, d
    assert d["after"] == d["released"], "a refused allocation leaves the released pages released"
    assert d["check"] == [1023, 1024], d  # every grown page but page 0 is free again; no growth
    assert d["again"] == 1, d
    assert d["left"] == 23 * PAGE, d


def test_memory_limit_and_gc_percent_settings_have_gos_semantics(heap):
    """set_memory_limit(n) (debug.SetMemoryLimit): returns the previous limit, n < 0 only reads it;
    set_gc_percent(n) (debug.SetGCPercent): returns the previous value, n < 0 means off (-1). Each
    change moves settings_gen and wakes the GC process (gc_wake)."""
    none = _gorun.constants()["max_memory_limit"]
    assert none == 2**63 - 1
    st = _gorun.gc_state()
    assert (st["memory_limit"], st["gc_percent"], st["limiter_on"], st["mark_throttle"]) == (none, 100, 0, 0)
    gen, wake = st["settings_gen"], st["gc_wake"]
    assert _gorun.set_memory_limit(-1) == none
    assert _gorun.gc_state()["settings_gen"] == gen, "reading the limit changes nothing"
    assert _gorun.set_memory_limit(64 << 20) == none
    assert _gorun.set_memory_limit(-5) == 64 << 20
    assert _gorun.set_memory_limit(0) == 64 << 20
    assert _gorun.set_gc_percent(50) == 100
    assert _gorun.set_gc_percent(-7) == 50
    assert _gorun.gc_state()["gc_percent"] == -1, "any negative percent is off, stored as -1"
    assert _gorun.set_gc_percent(-1) == -1
    assert _gorun.set_gc_percent(200) == -1
    st = _gorun.gc_state()
    assert (st["memory_limit"], st["gc_percent"]) == (0, 200)
    assert st["settings_gen"] == gen + 6 and st["gc_wake"] == wake + 6
    assert _gorun.set_memory_limit(none) == 0
    with pytest.raises(OverflowError):
        _gorun.set_memory_limit(2**63)
