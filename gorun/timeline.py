"""The run's timeline: heap live, goal, trigger, total memory and GC CPU sampled by the
launcher every 10 ms (docs/design.md "Output", the `timeline` key; `gorun plot` draws it).

A thread of the launcher reads the shared counters (``_gorun.gc_state()``,
``_gorun.mapped_ready()``: atomics and relaxed loads, never a lock, so a process stopped while
holding one cannot stop the timeline) and the GC process's CPU clock; it writes nothing to shared
memory. The GC process's CPU is read
from its process CPU-time clock (Linux: clockid ``(~pid << 3) | 2``, CPUCLOCK_SCHED of the whole
process, ns resolution), falling back to psutil's user + system time.

Samples are kept in memory: at 100 a second, 6 values each, a one-hour run holds 360,000 rows;
past MAX_SAMPLES the timeline keeps every second sample (the interval doubles).
"""

from __future__ import annotations

import threading
import time

import psutil

from . import _gorun
from .units import MAX_MEMORY_LIMIT

INTERVAL = 0.010
MAX_SAMPLES = 200_000
FIELDS = ("t_ns", "heap_live", "heap_goal", "trigger", "total_memory", "gc_process_cpu_ns", "assist_ns")
_NONE = (1 << 64) - 1  # goal / trigger with no cycle pending (GOGC=off and no limit)


def process_cpu_ns(pid: int) -> int | None:
    """The CPU time of process `pid` (all its threads) in ns, or None if it is gone."""
    try:
        return time.clock_gettime_ns((~pid << 3) | 2)
    except OSError:
        try:
            t = psutil.Process(pid).cpu_times()
        except psutil.Error:
            return None
        return int((t.user + t.system) * 1e9)


class Timeline:
    def __init__(self, gc_pid: int, interval: float = INTERVAL):
        self.gc_pid = gc_pid
        self.interval = interval
        self.rows: list[tuple] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="gorun-timeline", daemon=True)
        self._last_cpu = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def sample(self) -> None:
        st = _gorun.gc_state()
        cpu = process_cpu_ns(self.gc_pid)
        if cpu is not None:
            self._last_cpu = cpu
        goal, trig = st["goal"], st["trigger"]
        self.rows.append(
            (
                time.monotonic_ns() - st["init_ns"],
                st["heap_live"],
                0 if goal >= _NONE else goal,
                0 if trig >= _NONE else trig,
                _gorun.mapped_ready(),
                self._last_cpu,
                st["assist_cpu_total_ns"],
            )
        )
        if len(self.rows) >= MAX_SAMPLES:
            del self.rows[1::2]
            self.interval *= 2

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.sample()
            except Exception:  # noqa: BLE001  the heap was detached under us: the run is over
                return

    def raw(self) -> dict:
        """What the run's statistics keep (RunResult.stats["timeline"])."""
        return {"interval_ns": int(self.interval * 1e9), "rows": list(self.rows)}


def timeline_dict(raw: dict | None, pauses: list[dict], nprocs: int, memory_limit: int) -> dict:
    """The JSON `timeline`: columns, with cumulative GC CPU = the GC process's CPU + assists +
    every pause that ended by the sample × P. `pauses` are the JSON's (`end_ns` since the run's
    start)."""
    raw = raw or {"interval_ns": int(INTERVAL * 1e9), "rows": []}
    rows = raw["rows"]
    cols = {k: [r[i] for r in rows] for i, k in enumerate(FIELDS)}
    ends = sorted((p["end_ns"], p["total_ns"]) for p in pauses)
    gc_cpu, j, stw = [], 0, 0
    for t, proc, assist in zip(cols["t_ns"], cols["gc_process_cpu_ns"], cols["assist_ns"]):
        while j < len(ends) and ends[j][0] <= t:
            stw += ends[j][1]
            j += 1
        gc_cpu.append(proc + assist + stw * nprocs)
    return {
        "interval_ns": raw["interval_ns"],
        "t_ns": cols["t_ns"],
        "heap_live": cols["heap_live"],
        "heap_goal": cols["heap_goal"],
        "trigger": cols["trigger"],
        "total_memory": cols["total_memory"],
        "gc_cpu_ns": gc_cpu,
        "memory_limit": None if memory_limit >= MAX_MEMORY_LIMIT else memory_limit,
    }
