"""The GC process: Go's GC controller as policy over the C core's bounded steps
(ARCHITECTURE.md section 7; docs/design.md "The GC cycle" and "Pacer").

One GC process per run. It sleeps until a worker wakes it (heap_live reached the trigger at a
refill or large allocation, or g.gc()), or the optional timer fires, then runs a cycle:

  STW 1 sweep termination -> concurrent mark (mark threads + this thread, ragged root scans,
  barrier-log draining) -> mark completion (ragged barrier until a round finds no new work)
  -> STW 2 mark termination -> concurrent sweep -> pacing for the next cycle.

Pacer (simple form of Go's): goal = marked + (marked + globals) * GOGC/100, floored at
4 MiB * GOGC/100, capped at --max-heap; trigger = marked + (goal - marked) * 45/64 (Go's lower trigger bound);
assists: the C core revises the ratio at each assist as (expected scan work - scan done) /
(goal - heap_live), Go's revise, and an assist past the goal waits for mark credit.
GOGC=off disables heap-triggered cycles.
"""

from __future__ import annotations

import resource
import sys
import time

from . import _gorun

HEAP_MINIMUM = 4 << 20
TRIGGER_NUM, TRIGGER_DEN = 45, 64
MARK_STEP_BUDGET = 256 << 10  # scan bytes per main-thread step (~100 us at 2-3 GB/s)
SWEEP_BATCH = 64

# the cycle record (cyclerec_t in native/runtime.h): its fields, by name, from the C core
CYCLE_KEYS = _gorun.constants()["cycle_fields"]
UINT64_MAX = (1 << 64) - 1


def parse_gogc(value) -> int:
    """GOGC: an integer percentage >= 0, or 'off' (returned as -1)."""
    if value is None:
        return 100
    if isinstance(value, int):
        if value < -1:
            raise ValueError(f"bad GOGC {value!r}")
        return value
    text = str(value).strip().lower()
    if text == "off":
        return -1
    try:
        v = int(text)
    except ValueError:
        raise ValueError(f"bad GOGC {value!r}: expected a percentage (e.g. 100) or 'off'") from None
    if v < 0:
        raise ValueError(f"bad GOGC {value!r}: must be >= 0 or 'off'")
    return v


class Pacer:
    def __init__(self, gogc: int, globals_bytes: int, heap_cap: int = UINT64_MAX):
        self.gogc = gogc
        self.globals_bytes = globals_bytes
        self.heap_cap = heap_cap  # --max-heap: no goal above what the heap can hold
        self.last_marked = 0
        self.last_scan = 0

    def goal(self, marked: int) -> int:
        if self.gogc < 0:
            return UINT64_MAX
        goal = max(marked + (marked + self.globals_bytes) * self.gogc // 100, HEAP_MINIMUM * self.gogc // 100)
        return min(goal, self.heap_cap)

    def trigger(self, marked: int, goal: int) -> int:
        if self.gogc < 0:
            return UINT64_MAX
        return marked + (goal - marked) * TRIGGER_NUM // TRIGGER_DEN

    def scan_expected(self) -> int:
        """Scan work the next cycle is expected to need (Go: last cycle's heap scan work). The C
        core turns it into the assist ratio as the cycle goes (Go's revise)."""
        return max(self.last_scan, 1 << 20)


def _mb(n: int) -> int:
    return n >> 20


def _ms(ns: int) -> str:
    ms = ns / 1e6
    if ms >= 10:
        return f"{ms:.0f}"
    return f"{ms:.2g}" if ms >= 0.01 else f"{ms:.3f}".rstrip("0").rstrip(".") or "0"


class GCProcess:
    def __init__(
        self,
        nprocs: int,
        gogc: int,
        mark_threads: int,
        gctrace: bool,
        checkmark: bool,
        period: float | None,
        nglobals: int,
        init_ns: int,
    ):
        self.nprocs = nprocs
        self.pacer = Pacer(gogc, nglobals * 8)
        self.mark_threads = mark_threads
        self.gctrace = gctrace
        self.checkmark = checkmark
        self.period = period
        self.init_ns = init_ns
        self.cycle = 0
        self.forced_served = 0
        self.last_end = time.monotonic()
        self.pause_ns_total = 0

    def cpu_ns(self) -> int:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return int((r.ru_utime + r.ru_stime) * 1e9)

    def set_pacing(self, marked: int) -> None:
        goal = self.pacer.goal(marked)
        trig = self.pacer.trigger(marked, goal)
        _gorun.gc_set_pacing(trig, goal, self.pacer.scan_expected())
        self.goal, self.trig = goal, trig

    def main(self) -> dict:
        _gorun.gc_setup(self.mark_threads)
        self.pacer.heap_cap = _gorun.stats()["arena_size"]
        self.set_pacing(0)
        seen = _gorun.gc_state()["gc_wake"]
        try:
            while True:
                st = _gorun.gc_state()
                if st["shutdown"]:  # every worker finished: no cycle can serve anyone now (with
                    break  # GOGC=0 or a tiny --gc-period one is always due)
                forced = st["forced_req"] > self.forced_served
                heap_due = self.trig != UINT64_MAX and st["heap_live"] >= self.trig
                timer_due = self.period is not None and time.monotonic() - self.last_end >= self.period
                if forced or heap_due or timer_due:
                    self.run_cycle(st, forced)  # Go marks only runtime.GC cycles "(forced)"
                    continue
                timeout = 0.5 if self.period is None else max(0.001, self.period - (time.monotonic() - self.last_end))
                seen = _gorun.gc_wait(seen, min(timeout, 0.5))
        finally:
            _gorun.gc_teardown()
        return {"cycles": self.cycle, "cpu_ns": self.cpu_ns()}

    def run_cycle(self, st: dict, forced: bool) -> None:
        self.cycle += 1
        n = self.cycle
        forced_target = st["forced_req"]
        cpu0 = self.cpu_ns()
        t_start = time.monotonic_ns()
        heap_start = st["heap_live"]
        p1 = _gorun.gc_sweep_termination(n)
        # no new trigger until this cycle's pacing is committed; goal and expected scan stay
        _gorun.gc_set_pacing(
            UINT64_MAX, self.goal if self.goal != UINT64_MAX else UINT64_MAX, self.pacer.scan_expected()
        )
        mark_start = time.monotonic_ns()
        mark_cpu0 = self.cpu_ns()
        handshakes = 0
        while True:
            if _gorun.gc_mark_step(MARK_STEP_BUDGET):
                handshakes += 1
                if not _gorun.gc_flush_handshake() and _gorun.gc_mark_step(0):
                    break
        heap_end = _gorun.gc_state()["heap_live"]
        mark_proc_cpu = self.cpu_ns() - mark_cpu0
        p2, checked = _gorun.gc_mark_termination(n, self.checkmark)
        mark_end = time.monotonic_ns()
        st2 = _gorun.gc_state()
        marked = st2["bytes_marked"]
        self.pacer.last_marked = marked
        self.pacer.last_scan = st2["scan_work"]
        goal_used, trigger_used = self.goal, self.trig
        self.set_pacing(marked)
        while _gorun.gc_bgsweep(SWEEP_BATCH):
            pass
        sweep_end = time.monotonic_ns()
        self.forced_served = max(self.forced_served, forced_target)
        _gorun.gc_finish_cycle(forced_target)
        pauses = _gorun.gc_pauses(p1)
        stw1, stw2 = pauses[0], pauses[p2 - p1]
        gc_cpu = self.cpu_ns() - cpu0
        st3 = _gorun.gc_state()
        rec = {
            "n": n,
            "start_ns": t_start,
            "stw1_pause": p1,
            "stw2_pause": p2,
            "mark_start_ns": mark_start,
            "mark_end_ns": mark_end,
            "heap_start": heap_start,
            "heap_end": heap_end,
            "heap_marked": marked,
            "goal": goal_used if goal_used != UINT64_MAX else 0,
            "mark_cpu_ns": st2["mark_cpu_ns"],
            "assist_ns": st2["assist_ns"],
            "forced": int(forced),
            "objs_marked": st2["objs_marked"],
            "scan_work": st2["scan_work"],
            "sweep_end_ns": sweep_end,
            "bytes_freed": st3["bytes_freed"],
            "objs_freed": st3["objs_freed"],
            "gc_cpu_ns": gc_cpu,
            "trigger": trigger_used if trigger_used != UINT64_MAX else 0,
            "checked": checked,
            "handshakes": handshakes,
            "globals_bytes": self.pacer.globals_bytes,
            "end_ns": time.monotonic_ns(),
            "mark_proc_cpu_ns": mark_proc_cpu,
        }
        _gorun.gc_cycle_write(n - 1, rec)
        self.last_end = time.monotonic()
        if self.gctrace:
            self.trace(rec, stw1, stw2)

    def trace(self, rec: dict, stw1: dict, stw2: dict) -> None:
        """Go's gctrace=1 line (go-runtime.md 10.1)."""
        p = self.nprocs
        a, c = stw1["total_ns"], stw2["total_ns"]
        b = max(stw2["start_ns"] - (stw1["start_ns"] + a), 0)
        at = (rec["start_ns"] - self.init_ns) / 1e9
        self.pause_ns_total += a + c
        wall = max(time.monotonic_ns() - self.init_ns, 1)
        gc_cpu = self.cpu_ns() + _gorun.gc_state()["assist_cpu_total_ns"] + self.pause_ns_total * p
        pct = int(100 * gc_cpu / (p * wall))
        line = (
            f"gc {rec['n']} @{at:.3f}s {pct}%: {_ms(a)}+{_ms(b)}+{_ms(c)} ms clock, "
            f"{_ms(a * p)}+{_ms(rec['assist_ns'])}/{_ms(rec['mark_cpu_ns'])}/0+{_ms(c * p)} ms cpu, "
            f"{_mb(rec['heap_start'])}->{_mb(rec['heap_end'])}->{_mb(rec['heap_marked'])} MB, "
            f"{_mb(rec['goal'])} MB goal, 0 MB stacks, {_mb(rec['globals_bytes'])} MB globals, {p} P"
            + (" (forced)" if rec["forced"] else "")
        )
        print(line, file=sys.stderr, flush=True)


def gc_process_main(cfg: dict) -> dict:
    """Entry point in the forked GC process."""
    gp = GCProcess(**cfg)
    return gp.main()


def cycle_dicts(raw: list) -> list[dict]:
    """The cycle records as the launcher reports them (``_gorun.gc_cycles()`` gives dicts)."""
    return [dict(r) for r in raw]


if __name__ == "__main__":  # pragma: no cover
    print("gorun.gc runs inside the GC process started by gorun.Runtime", file=sys.stderr)
    sys.exit(2)
