"""gorun.heap.SharedHeap, the one heap setup of the launcher, the test fixtures and the benchmarks:
it attaches a real heap in this process and removes both segments on every way out."""

from __future__ import annotations

import pytest

from conftest import fork_child, own_segments, wait_child
from gorun import _gorun
from gorun.heap import SharedHeap


def test_attaches_and_removes_both_segments():
    h = SharedHeap(1 << 20, nprocs=2, lock="pthread", root_slots=16, nglobals=4)
    assert not h.attached and h.meta_size == _gorun.meta_size(1 << 20, 2, 16, 4)
    with h as same:
        assert same is h and h.attached and _gorun.attached()
        assert own_segments() == sorted([h.meta_name[1:], h.arena_name[1:]])
        assert h.npages == (1 << 20) // 8192 and _gorun.lock_stats(-1)["kind"] == "pthread"
    assert not h.attached and not _gorun.attached() and own_segments() == []


def test_arena_size_is_rounded_up_to_pages():
    assert SharedHeap(8193).arena_size == 16384


@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt])
def test_exception_in_the_block_removes_everything(exc):
    with pytest.raises(exc):
        with SharedHeap(1 << 20):
            assert own_segments()
            raise exc()
    assert not _gorun.attached() and own_segments() == []


def test_failed_setup_removes_what_it_created(monkeypatch):
    def failing_init(*args):
        assert len(own_segments()) == 2
        raise _gorun.GorunError("injected")

    monkeypatch.setattr(_gorun, "init", failing_init)
    with pytest.raises(_gorun.GorunError, match="injected"):
        with SharedHeap(1 << 20):
            pass
    assert own_segments() == []


def test_one_heap_per_process(heap):
    with pytest.raises(_gorun.GorunError, match="already has a gorun heap attached"):
        with SharedHeap(1 << 20):
            pass
    assert _gorun.attached() and len(own_segments()) == 2


def test_a_forked_child_leaving_the_block_removes_nothing():
    with SharedHeap(1 << 20) as h:
        pid, _ = fork_child(h.close)  # what leaving the `with` does, in the child
        assert wait_child(pid) == 0
        assert h.attached and len(own_segments()) == 2
    assert own_segments() == []


def test_unknown_lock_kind():
    with pytest.raises(ValueError, match="unknown lock kind 'spin'"):
        SharedHeap(1 << 20, lock="spin")
    assert own_segments() == []
