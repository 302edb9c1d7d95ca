"""A worker or the GC process killed with SIGKILL in the middle of GC cycles: the run ends with
a clear error within seconds, and no process or segment is left behind."""

from __future__ import annotations

import os
import signal
import time

import psutil
import pytest

import gorun
from gorun import _gorun

Cell = gorun.struct("killCell", next=gorun.PTR, v=gorun.INT)


def churn(g, seconds):
    t = time.monotonic() + seconds
    while time.monotonic() < t:
        head = None
        for i in range(500):
            c = g.new(Cell)
            c.next = head
            head = c


def my_segments():
    return [e for e in os.listdir("/dev/shm") if e.startswith(f"gorun.{os.getpid()}.")]


def victim_worker(g):
    if g.id == 1:
        churn(g, 0.5)
        os.kill(os.getpid(), signal.SIGKILL)
    churn(g, 30)


def victim_gc(g):
    if g.id == 1:
        churn(g, 0.5)
        pid = _gorun.gc_state()["gc_pid"]
        assert pid > 0 and pid not in (os.getpid(), os.getppid())
        os.kill(pid, signal.SIGKILL)
    churn(g, 30)


@pytest.mark.parametrize("fn, expect", [(victim_worker, "worker P1"), (victim_gc, "GC process")])
def test_sigkill_mid_cycle_ends_the_run(fn, expect):
    rt = gorun.Runtime(procs=2, gogc=5)
    t0 = time.monotonic()
    with pytest.raises(gorun.RunError) as ei:
        rt.run(fn)
    elapsed = time.monotonic() - t0
    assert expect in str(ei.value)
    assert "died" in str(ei.value) or "killed" in str(ei.value)
    assert elapsed < 20  # hang guard: the run notices within milliseconds, the workers run 30 s
    assert ei.value.result is not None and ei.value.result.to_dict()["gc"]["cycles"] >= 1
    assert my_segments() == []
    assert psutil.Process().children(recursive=True) == []
