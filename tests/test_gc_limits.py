"""The C hooks of the memory-limit half of Go's GC that pace marking: the assists' goal extension
(Go's revise), the GC CPU limiter (assists and the wait for a cycle are skipped while it is on)
and the mark threads' utilization throttle. The policy that sets them is the GC process's
Python; these tests set them by hand: the goal extension as a pure function, the limiter on a
standalone heap whose P 0 is a forked child (nothing else touches the flags there), the throttle
in a real run."""

from __future__ import annotations

import pytest

import gorun
from conftest import fork_child, read_all, wait_child
from gorun import _gorun

MiB = 1 << 20
UINT64_MAX = 2**64 - 1


@pytest.mark.parametrize(
    "args, want",
    [
        # goal, scan_expected, triggered, gc_percent, heap_live, scan_done -> (goal, scan_expected)
        ((100 * MiB, 10 * MiB, 60 * MiB, 100, 70 * MiB, 5 * MiB), (100 * MiB, 10 * MiB)),  # on track
        ((100 * MiB, 10 * MiB, 60 * MiB, 100, 70 * MiB, 10 * MiB), (100 * MiB, 10 * MiB)),  # exactly done
        # more work than expected: runway extrapolated to max_scan = triggered, capped at 2x goal
        ((100 * MiB, 10 * MiB, 60 * MiB, 100, 70 * MiB, 11 * MiB), (200 * MiB, 60 * MiB)),
        ((100 * MiB, 10 * MiB, 60 * MiB, 50, 70 * MiB, 11 * MiB), (150 * MiB, 60 * MiB)),  # hard goal 1.5x
        ((100 * MiB, 50 * MiB, 60 * MiB, 100, 70 * MiB, 51 * MiB), (108 * MiB, 60 * MiB)),  # 60 + 40 * 60 / 50
        ((100 * MiB, 80 * MiB, 60 * MiB, 100, 70 * MiB, 81 * MiB), (100 * MiB, 80 * MiB)),  # max_scan = expected
        ((100 * MiB, 10 * MiB, 60 * MiB, -1, 70 * MiB, 11 * MiB), (100 * MiB, 10 * MiB)),  # GOGC off: none
        # past the goal anyway: 1.1x the goal in force, worst-case work
        ((100 * MiB, 10 * MiB, 60 * MiB, 100, 120 * MiB, 5 * MiB), (110 * MiB, 60 * MiB)),
        ((100 * MiB, 10 * MiB, 60 * MiB, 100, 250 * MiB, 11 * MiB), (220 * MiB, 60 * MiB)),
        ((100 * MiB, 10 * MiB, 60 * MiB, -1, 120 * MiB, 11 * MiB), (110 * MiB, 60 * MiB)),
        ((UINT64_MAX, 10 * MiB, 60 * MiB, 100, 250 * MiB, 11 * MiB), (UINT64_MAX, 10 * MiB)),  # no goal
    ],
)
def test_assist_goal_extension(args, want):
    assert _gorun.assist_goal(*args) == want


def _limiter_child() -> int:
    """P 0 of the standalone heap, blackening on, no GC process: without the limiter an assist
    pays and, past the goal, would wait for credit forever; with it, nothing waits."""
    _gorun.set_p(0)
    assists = lambda: _gorun.stats()["ps"][0]["assists"]  # noqa: E731
    _gorun.debug_set_blacken(True)
    _gorun.gc_set_pacing(UINT64_MAX, 1 << 30, 1 << 30)  # under the goal, ratio about 1: an assist pays, goes on
    keep = [_gorun.new_bytes(1000) for _ in range(300)]  # 300 KiB of debt: assists at 64 KiB
    assert assists() >= 4, assists()
    _gorun.gc_set_pacing(UINT64_MAX, 1, MiB)  # past the goal: an assist with nothing to scan would wait
    _gorun.gc_set_limiter(True)
    before, ns = assists(), _gorun.gc_state()["assist_ns"]
    keep += [_gorun.new_bytes(1000) for _ in range(300)]
    assert assists() == before, "an assist ran while the limiter was on"
    _gorun.debug_set_blacken(False)  # no cycle marking, heap past the goal: mallocgc would wait for one
    keep += [_gorun.new_bytes(1000) for _ in range(300)]
    st = _gorun.gc_state()
    assert st["limiter_on"] == 1 and st["assist_ns"] == ns, "nothing waited"
    del keep
    return 0


def test_limiter_skips_assists_and_the_wait_for_a_cycle(heap):
    pid, err = fork_child(_limiter_child, capture_stderr=True)
    status = wait_child(pid, timeout=60)  # a wait that the limiter failed to skip never ends: killed
    text = read_all(err)
    assert status == 0, text


Node = gorun.struct("tlimNode", next=gorun.PTR, val=gorun.INT)


def test_throttled_mark_threads_pause_and_the_cycle_still_ends():
    def work(g):
        head = None
        for i in range(100_000):
            x = g.new(Node)
            x.val = i
            x.next = head
            head = x
        del x
        _gorun.gc_set_mark_throttle(True)
        g.gc()  # the GC process's main thread marks alone
        throttled = _gorun.gc_state()
        _gorun.gc_set_mark_throttle(False)
        g.gc()
        free = _gorun.gc_state()
        n = 0
        while head is not None:
            n += 1
            head = head.next
        return throttled, free, n

    throttled, free, n = gorun.Runtime(procs=1, gogc="off", mark_threads=2).run(work).values[0]
    assert n == 100_000, "the throttled cycle marked everything"
    assert throttled["triggered"] >= 100_000 * 24, "STW 1 recorded heap_live"
    assert free["mark_throttle"] == 0
    if throttled["mark_throttle"] == 1:  # still as the test set it (no GC policy cleared it)
        assert throttled["mark_cpu_ns"] == 0, "a throttled mark thread marked"
