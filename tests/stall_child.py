"""A gorun run that gets stuck on purpose, for tests/test_stall.py: run as a subprocess (so the
test has a hard timeout even when the run would hang forever), it prints one JSON line with the
outcome and exits 1 on a RunError, 0 if the run ended normally.

    python tests/stall_child.py MODE STALL_TIMEOUT [LOCK]
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import gorun  # noqa: E402
from gorun import _gorun  # noqa: E402

Cell = gorun.struct("stallCell", next=gorun.PTR, v=gorun.INT)


def churn(g, seconds):
    t = time.monotonic() + seconds
    while time.monotonic() < t:
        head = None
        for _ in range(500):
            c = g.new(Cell)
            c.next = head
            head = c


def stuck(g, mode):
    if mode == "spin":  # an endless C call in P0 while P1 asks for a cycle
        if g.id == 0:
            churn(g, 0.2)
            _gorun.test_spin(60)
        else:
            churn(g, 0.4)
            g.gc()
    elif mode == "lock":  # P0 holds the mheap lock and is stopped; P1 needs the lock
        if g.id == 0:
            churn(g, 0.2)
            _gorun.lock_acquire(-1)
            os.kill(os.getpid(), signal.SIGSTOP)
        else:
            churn(g, 0.4)
            while True:
                g.new_bytes(100_000)  # a large object: straight to mheap
    churn(g, 60)


def main() -> int:
    mode, stall = sys.argv[1], sys.argv[2]
    lock = sys.argv[3] if len(sys.argv) > 3 else "futex"
    # "lock": no heap-triggered cycle, so that P1 surely reaches the lock wait (with cycles, it can
    # first get stuck in an assist behind the GC process, itself waiting for the stopped P0)
    rt = gorun.Runtime(
        procs=2, lock=lock, stall_timeout=None if stall == "env" else stall, gogc="off" if mode == "lock" else None
    )
    t0 = time.monotonic()
    try:
        rt.run(stuck, mode=mode)
        out = {"error": None}
        code = 0
    except gorun.RunError as e:
        r = e.result
        out = {"error": str(e), "statuses": [o.status for o in r.outcomes], "pids": [o.ospid for o in r.outcomes]}
        code = 1
    out["elapsed"] = time.monotonic() - t0
    print(json.dumps(out), flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
