"""The GC process: Go's GC controller as policy over the C core's bounded steps
(ARCHITECTURE.md section 7; docs/design.md "The GC cycle", "Pacer", "Memory limit").

One GC process per run. It sleeps until a worker wakes it (heap_live reached the trigger at a
refill or large allocation, g.gc(), g.set_gc_percent / g.set_memory_limit), the optional timer
fires, or its 10 ms tick comes round, then runs a cycle:

  STW 1 sweep termination -> concurrent mark (mark threads + this thread, ragged root scans,
  barrier-log draining, background marking held to 25 % of the P's CPU) -> mark completion
  (ragged barrier until a round finds no new work) -> STW 2 mark termination -> concurrent sweep
  -> pacing for the next cycle (gorun/pacer.py: Go's cons/mark trigger, the GOGC goal and the
  memory-limit goal).

Between cycles, every tick: the GC CPU limiter's bucket (pacer.CPULimiter; while it is full the
workers skip assists), the memory-limit goal (it moves with mapped memory) and the background
scavenger (GODEBUG=scavpercent, 10 % of one CPU by default, towards Go's retained goal; harder past 95 % of the memory limit).
"""

from __future__ import annotations

import resource
import sys
import time

from . import _gorun, pacer
from .pacer import GOAL_SOURCES, UINT64_MAX, Pacer
from .units import MAX_MEMORY_LIMIT, fmt_memlimit

PAGE_SIZE = _gorun.constants()["page_size"]

MARK_STEP_BUDGET = 256 << 10  # scan bytes per main-thread step (~100 us at 2-3 GB/s)
SWEEP_BATCH = 64
TICK_S = 0.010  # Go's gcCPULimiterUpdatePeriod; also the memory-limit goal's and the scavenger's period
IDLE_WAIT_S = 0.5  # the wait when nothing needs a tick (no limit, nothing to scavenge, bucket empty)
MARK_UTIL_SLACK_NS = 1_000_000  # background marking may run this far ahead of its 25 % share
THROTTLE_NAP_S = 0.0005
# The background scavenger's share of one CPU (GODEBUG=scavpercent=N). Go's scavengePercent is 1
# (pacer.SCAVENGE_PERCENT),
# but a release here (fallocate PUNCH_HOLE of shared tmpfs pages, zapped from the page tables of
# every process that mapped them) costs 30-200 us per 64 KiB against a few us for Go's madvise, so
# at 1 % memory would come back 10-40x slower than Go returns it; 10 % gives about Go's rate.
SCAV_PERCENT = 10.0
SCAV_MAX_STEP = 64 << 20  # at most this much per step, so a tick stays short
# Past 95 % of the memory limit the scavenger works harder, at this share of one CPU: unpaced, it
# fought the allocator (pages released at 95 % are reused at once while the heap goal, 3 % under
# the limit, lets the heap grow back) and took the GC process's whole core.
SCAV_EAGER_PERCENT = 50.0

# the cycle record (cyclerec_t in native/runtime.h): its fields, by name, from the C core
CYCLE_KEYS = _gorun.constants()["cycle_fields"]


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


def _mb(n: int) -> int:
    return n >> 20


def _itoa_div(val: int, dec: int) -> str:
    """val with a decimal point `dec` digits from the right, zero-padded (Go's itoaDiv)."""
    text = str(val)
    if dec <= 0:
        return text
    text = text.rjust(dec + 1, "0")
    return text[:-dec] + "." + text[-dec:]


def go_float(v: float) -> str:
    """A float64 as Go's runtime print prints it (strconv's 'g' format, shortest digits): the
    %e form d.ddde±dd when the decimal exponent is < -4 or >= 6, else plain decimals."""
    if v != v:
        return "NaN"
    if v in (float("inf"), float("-inf")):
        return "+Inf" if v > 0 else "-Inf"
    sign = "-" if str(v).startswith("-") else ""
    if v == 0:
        return sign + "0"
    m, _, e = repr(abs(v)).partition("e")
    whole, _, frac = m.partition(".")
    # the shortest digits (Python's repr is shortest too) and the decimal point position dp
    digits = (whole + frac).lstrip("0")
    dp = len(whole.lstrip("0")) if whole.strip("0") else -(len(frac) - len(frac.lstrip("0")))
    dp += int(e) if e else 0
    digits = digits.rstrip("0")
    x = dp - 1
    if x < -4 or x >= 6:
        mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mant}e{'-' if x < 0 else '+'}{abs(x):02d}"
    if dp <= 0:
        return f"{sign}0.{'0' * -dp}{digits}"
    if dp >= len(digits):
        return f"{sign}{digits}{'0' * (dp - len(digits))}"
    return f"{sign}{digits[:dp]}.{digits[dp:]}"


def _ms(ns: int) -> str:
    """A duration in ms as Go's gctrace prints it (fmtNSAsMS): whole milliseconds from 10 ms
    up; below, two significant digits of the microseconds (truncated) with at most three
    decimals: 20 us -> 0.020, 150 us -> 0.15, 2 ms -> 2.0, under 1 us -> 0."""
    if ns >= 10_000_000:
        return str(ns // 1_000_000)
    x, dec = ns // 1000, 3
    if x == 0:
        return "0"
    while x >= 100:
        x //= 10
        dec -= 1
    return _itoa_div(x, dec)


class Scavenger:
    """Go's background scavenger (bgscavenge), run by the GC process's main thread between cycles.

    Goals (pacer.scavenge_goals, recomputed after every cycle): retained memory (heap in use +
    free, not released) at most (1 + 10 %) x goal / last goal x heap in use at the last mark
    termination; under a memory limit, mapped memory at most 95 % of the limit. Toward the first
    it works at `percent` of one CPU (pacer.ScavengerPacer: credit that grows with wall time,
    spent at the measured cost per byte); past the second it works harder (eager, at
    SCAV_EAGER_PERCENT of one CPU), and an allocation past the limit releases the excess itself. Each
    release is one `_gorun.scavenge(n)`: free runs of at least 64 KiB, highest addresses first,
    punched out of the arena with fallocate(PUNCH_HOLE)."""

    def __init__(self, now_ns: int, percent: float = SCAV_PERCENT):
        self.pace = pacer.ScavengerPacer(percent, now_ns)
        self.eager_pace = pacer.ScavengerPacer(max(percent, SCAV_EAGER_PERCENT), now_ns)
        self.gc_goal = UINT64_MAX  # retained bytes
        self.limit_goal = UINT64_MAX  # mapped-ready bytes
        self.released_bg = 0
        self.released_eager = 0
        self.cpu_ns = 0

    def set_goals(self, gc_goal: int, limit_goal: int) -> None:
        self.gc_goal, self.limit_goal = gc_goal, limit_goal

    def pending(self, ms: dict) -> bool:
        return self._want(ms) > 0

    def _want(self, ms: dict) -> int:
        return pacer.scavenge_needed(
            ms["heap_inuse"] + ms["heap_free"], ms["mapped_ready"], self.gc_goal, self.limit_goal
        )

    def _release(self, n: int, pace: pacer.ScavengerPacer) -> int:
        t0 = time.thread_time_ns()
        got = _gorun.scavenge(n)
        dt = time.thread_time_ns() - t0
        self.cpu_ns += dt
        pace.note(got, dt)
        return got

    def step(self, now_ns: int, ms: dict) -> int:
        """One bounded step; returns bytes released."""
        budget = self.pace.budget(now_ns, self.cpu_ns)
        eager_budget = self.eager_pace.budget(now_ns, self.cpu_ns)
        over_limit = ms["mapped_ready"] - self.limit_goal if self.limit_goal != UINT64_MAX else 0
        if over_limit > 0:  # eager: the limit is near
            n = min(self.eager_pace.bytes_for(eager_budget, over_limit), SCAV_MAX_STEP)
            if n <= 0:
                return 0
            got = self._release(max(n, pacer.SCAVENGE_QUANTUM), self.eager_pace)
            self.released_eager += got
            return got
        n = min(self.pace.bytes_for(budget, self._want(ms)), SCAV_MAX_STEP)
        if n <= 0:
            return 0
        got = self._release(max(n, pacer.SCAVENGE_QUANTUM), self.pace)
        self.released_bg += got
        return got


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
        memory_limit: int = MAX_MEMORY_LIMIT,
        scavtrace: bool = False,
        scav_percent: float = SCAV_PERCENT,
        gcpacertrace: bool = False,
    ):
        self.nprocs = nprocs
        self.pacer = Pacer(gogc, memory_limit, nglobals * 8, nprocs)
        self.limiter = pacer.CPULimiter(nprocs, now_ns=time.monotonic_ns())
        self.mark_threads = mark_threads
        self.gctrace = gctrace
        self.scavtrace = scavtrace
        self.gcpacertrace = gcpacertrace
        self.checkmark = checkmark
        self.period = period
        self.init_ns = init_ns
        self.cycle = 0
        self.forced_served = 0
        self.last_end = time.monotonic()
        self.pause_ns_total = 0
        self.pacing = None
        self.settings_gen = 0
        self.last_tick_ns = 0
        self.limiter_on = False
        self.scav = Scavenger(time.monotonic_ns(), scav_percent)
        self.scav_traced = (0, 0)

    def cpu_ns(self) -> int:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return int((r.ru_utime + r.ru_stime) * 1e9)

    # ---- pacing ----

    def commit(self, marked: int, heap_live: int, ms: dict) -> None:
        """Pace from the last marked heap and the memory figures `ms` (`_gorun.memstats()`, read
        by the caller), between cycles: during one the trigger stays off and the goal stays, until
        mark termination commits again."""
        p = self.pacer.commit(
            heap_marked=marked,
            mapped_ready=ms["mapped_ready"],
            heap_free=ms["heap_free"],
            heap_alloc=ms["/memory/classes/heap/objects:bytes"],
            heap_live=heap_live,
        )
        _gorun.gc_set_pacing(p.trigger, p.goal, p.scan_expected)
        self.pacing = p

    def sync_settings(self, st: dict) -> bool:
        """g.set_gc_percent / g.set_memory_limit from a worker: take the new values. True if changed."""
        if st["settings_gen"] == self.settings_gen:
            return False
        self.settings_gen = st["settings_gen"]
        self.pacer.gogc = st["gc_percent"]
        self.pacer.memory_limit = st["memory_limit"]
        return True

    def gc_cpu_total(self, st: dict) -> int:
        """GC CPU so far as the limiter counts it (Go's mgclimit): this process (mark threads,
        marking, sweeping, scavenging), assists and synchronous scavenging, and every pause x P."""
        return self.cpu_ns() + st["assist_cpu_total_ns"] + st["scav_assist_ns"] + self.pause_ns_total * self.nprocs

    def tick_limiter(self, st: dict) -> None:
        on = self.limiter.update(time.monotonic_ns(), self.gc_cpu_total(st))
        if on != self.limiter_on:
            self.limiter_on = on
            _gorun.gc_set_limiter(on)

    def needs_tick(self, ms: dict) -> bool:
        return (
            self.pacer.memory_limit < MAX_MEMORY_LIMIT
            or self.limiter.fill_ns > 0
            or self.limiter_on
            or self.scav.pending(ms)
        )

    # ---- the loop ----

    def main(self) -> dict:
        _gorun.gc_setup(self.mark_threads)
        self.pacer.heap_cap = _gorun.stats()["arena_size"]
        st = _gorun.gc_state()
        self.sync_settings(st)
        self.commit(0, st["heap_live"], _gorun.memstats())
        seen = st["gc_wake"]
        try:
            while True:
                st = _gorun.gc_state()
                if st["shutdown"]:  # every worker finished: no cycle can serve anyone now (with
                    break  # GOGC=0 or a tiny --gc-period one is always due)
                now = time.monotonic_ns()
                ms = _gorun.memstats()  # one snapshot per wake-up (it takes the mheap lock)
                changed = self.sync_settings(st)
                if changed or now - self.last_tick_ns >= TICK_S * 1e9:
                    self.last_tick_ns = now
                    _gorun.trace_counters()  # with --trace: the counter tracks (a no-op without)
                    self.tick_limiter(st)
                    if changed or self.pacer.memory_limit < MAX_MEMORY_LIMIT:
                        self.commit(self.pacer.last_heap_marked, st["heap_live"], ms)
                forced = st["forced_req"] > self.forced_served
                trig = self.pacing.trigger
                heap_due = trig != UINT64_MAX and st["heap_live"] >= trig
                timer_due = self.period is not None and time.monotonic() - self.last_end >= self.period
                if forced or heap_due or timer_due:
                    self.run_cycle(st, forced)  # Go marks only runtime.GC cycles "(forced)"
                    continue
                if self.scav.pending(ms) and self.scav.step(time.monotonic_ns(), ms):
                    continue  # released something: look again (a worker may be waiting)
                timeout = TICK_S if self.needs_tick(ms) else IDLE_WAIT_S
                if self.period is not None:
                    timeout = min(timeout, max(0.001, self.period - (time.monotonic() - self.last_end)))
                seen = _gorun.gc_wait(seen, timeout)
        finally:
            _gorun.gc_teardown()
        return {
            "cycles": self.cycle,
            "cpu_ns": self.cpu_ns(),
            "limiter": {
                "enabled_cycles": self.limiter.enabled_cycles,
                "enabled_ns": self.limiter.enabled_ns,
                "last_enabled_cycle": self.limiter.last_enabled_cycle,
            },
            "scavenger": {
                "released_bg": self.scav.released_bg,
                "released_eager": self.scav.released_eager,
                "cpu_ns": self.scav.cpu_ns,
            },
        }

    def mark(self, mark_start: int, mark_cpu0: int) -> int:
        """Concurrent mark and mark completion. Background marking (mark threads and this
        thread) is held to Go's background utilization of the P's CPU over the mark phase (25 %,
        pacer.background_utilization: dedicated plus fractional workers), plus the whole CPU of
        every P that is not running (Go's idle workers): while the GC process's CPU since the
        mark began exceeds that budget (plus MARK_UTIL_SLACK_NS), the mark
        threads pause on `mark_throttle` and this thread only serves blocked P's and drains the
        barrier logs; assists (never throttled) make up any shortfall. Returns handshakes."""
        handshakes = 0
        throttled = False
        share = pacer.background_utilization(self.nprocs) * self.nprocs
        allowed = float(MARK_UTIL_SLACK_NS)
        last = mark_start
        while True:
            # the budget grows by the background share of the P's, plus every P that is not
            # running (Go's idle mark workers: a blocked, waiting or finished P's CPU is free)
            now = time.monotonic_ns()
            allowed += (share + self.nprocs - _gorun.gc_running_ps()) * (now - last)
            last = now
            used = self.cpu_ns() - mark_cpu0
            over = used > allowed
            if over != throttled:
                throttled = over
                _gorun.gc_set_mark_throttle(over)
            if over:
                _gorun.gc_mark_step(0)  # roots of blocked P's, barrier logs; no marking budget
                time.sleep(THROTTLE_NAP_S)
                continue
            if _gorun.gc_mark_step(MARK_STEP_BUDGET):
                handshakes += 1
                if not _gorun.gc_flush_handshake() and _gorun.gc_mark_step(0):
                    break
        if throttled:
            _gorun.gc_set_mark_throttle(False)
        return handshakes

    def run_cycle(self, st: dict, forced: bool) -> None:
        self.cycle += 1
        n = self.cycle
        forced_target = st["forced_req"]
        self.limiter.note_cycle(n)
        cpu0 = self.cpu_ns()
        t_start = time.monotonic_ns()
        heap_start = st["heap_live"]
        paced = self.pacing
        p1 = _gorun.gc_sweep_termination(n)
        self.pacer.start_cycle(heap_start)
        if self.gcpacertrace:
            self.pacer_trace_start(heap_start, paced)
        # no new trigger until this cycle's pacing is committed; goal and expected scan stay
        _gorun.gc_set_pacing(UINT64_MAX, paced.goal, paced.scan_expected)
        mark_start = time.monotonic_ns()
        mark_cpu0 = self.cpu_ns()
        handshakes = self.mark(mark_start, mark_cpu0)
        heap_end = _gorun.gc_state()["heap_live"]
        mark_proc_cpu = self.cpu_ns() - mark_cpu0
        mark_wall = time.monotonic_ns() - mark_start
        p2, checked = _gorun.gc_mark_termination(n, self.checkmark)
        mark_end = time.monotonic_ns()
        st2 = _gorun.gc_state()
        marked = st2["bytes_marked"]
        old_cons_mark, prev_scan = self.pacer.cons_mark, self.pacer.last_heap_scan
        self.pacer.end_cycle(
            heap_live=heap_end,
            triggered=heap_start,
            scan_work=st2["scan_work"],
            heap_marked=marked,
            bg_cpu_ns=mark_proc_cpu,
            assist_cpu_ns=st2["assist_ns"],
            mark_wall_ns=mark_wall,
        )
        if self.gcpacertrace:
            self.pacer_trace_mark(st2, heap_start, heap_end, paced, old_cons_mark, prev_scan)
        self.sync_settings(st2)
        ms = _gorun.memstats()
        self.commit(marked, st2["heap_live"], ms)
        gc_goal, limit_goal = pacer.scavenge_goals(
            self.pacing.goal, self.pacer.last_heap_goal, ms["heap_inuse"], self.pacer.memory_limit
        )
        self.scav.set_goals(gc_goal, limit_goal)
        while _gorun.gc_bgsweep(SWEEP_BATCH):
            pass
        sweep_end = time.monotonic_ns()
        if self.gcpacertrace:
            live = _gorun.gc_state()["heap_live"]
            print(
                f"pacer: sweep done at heap size {live >> 20}MB; allocated {max(live - st2['heap_live'], 0) >> 20}MB "
                f"during sweep; swept {ms['heap_inuse'] // PAGE_SIZE} pages at {go_float(0.0)} pages/byte",
                file=sys.stderr,
                flush=True,
            )
        pauses = _gorun.gc_pauses(p1)
        stw1, stw2 = pauses[0], pauses[p2 - p1]
        self.pause_ns_total += stw1["total_ns"] + stw2["total_ns"]
        st3 = _gorun.gc_state()
        self.tick_limiter(st3)
        self.limiter.note_cycle(n)
        gc_cpu = self.cpu_ns() - cpu0
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
            "goal": paced.goal if paced.goal != UINT64_MAX else 0,
            "mark_cpu_ns": st2["mark_cpu_ns"],
            "assist_ns": st2["assist_ns"],
            "forced": int(forced),
            "objs_marked": st2["objs_marked"],
            "scan_work": st2["scan_work"],
            "sweep_end_ns": sweep_end,
            "bytes_freed": st3["bytes_freed"],
            "objs_freed": st3["objs_freed"],
            "gc_cpu_ns": gc_cpu,
            "trigger": paced.trigger if paced.trigger != UINT64_MAX else 0,
            "checked": checked,
            "handshakes": handshakes,
            "globals_bytes": self.pacer.globals_bytes,
            "end_ns": time.monotonic_ns(),
            "mark_proc_cpu_ns": mark_proc_cpu,
            "goal_source": GOAL_SOURCES.index(paced.goal_source),
            "limiter": int(self.limiter.last_enabled_cycle == n),
            "mapped_ready": ms["mapped_ready"],
            "released": ms["heap_released"],
            "memory_limit": min(self.pacer.memory_limit, MAX_MEMORY_LIMIT),
        }
        _gorun.gc_cycle_write(n - 1, rec)
        # g.gc() callers return only now, so the cycle's record is there when they look
        # (g.read_mem_stats()'s NumForcedGC)
        self.forced_served = max(self.forced_served, forced_target)
        _gorun.gc_finish_cycle(forced_target)
        self.last_end = time.monotonic()
        if self.gctrace:
            self.trace(rec, stw1, stw2)
        if self.scavtrace:
            self.trace_scav(ms)

    def trace(self, rec: dict, stw1: dict, stw2: dict) -> None:
        """Go's gctrace=1 line (go-runtime.md 10.1), then, when a memory limit is set or memory
        has been released, a gorun line with the limit, mapped memory and released memory
        (Go's gctrace has no such fields; the line starts with "gorun:" so parsers of Go's
        lines skip it)."""
        p = self.nprocs
        a, c = stw1["total_ns"], stw2["total_ns"]
        b = max(stw2["start_ns"] - (stw1["start_ns"] + a), 0)
        at = _itoa_div(max(rec["start_ns"] - self.init_ns, 0) // 1_000_000, 3)  # Go: ms, truncated
        wall = max(time.monotonic_ns() - self.init_ns, 1)
        gc_cpu = self.cpu_ns() + _gorun.gc_state()["assist_cpu_total_ns"] + self.pause_ns_total * p
        pct = int(100 * gc_cpu / (p * wall))
        line = (
            f"gc {rec['n']} @{at}s {pct}%: {_ms(a)}+{_ms(b)}+{_ms(c)} ms clock, "
            f"{_ms(a * p)}+{_ms(rec['assist_ns'])}/{_ms(rec['mark_cpu_ns'])}/0+{_ms(c * p)} ms cpu, "
            f"{_mb(rec['heap_start'])}->{_mb(rec['heap_end'])}->{_mb(rec['heap_marked'])} MB, "
            f"{_mb(rec['goal'])} MB goal, 0 MB stacks, {_mb(rec['globals_bytes'])} MB globals, {p} P"
            + (" (forced)" if rec["forced"] else "")
        )
        print(line, file=sys.stderr, flush=True)
        if rec["memory_limit"] < MAX_MEMORY_LIMIT or rec["released"]:
            print(
                f"gorun: gc {rec['n']} memlimit {fmt_memlimit(rec['memory_limit'])}, "
                f"goal from {GOAL_SOURCES[rec['goal_source']]}, mapped {_mb(rec['mapped_ready'])} MB, "
                f"released {_mb(rec['released'])} MB" + (", GC CPU limiter on" if rec["limiter"] else ""),
                file=sys.stderr,
                flush=True,
            )

    def pacer_trace_start(self, heap_start: int, paced) -> None:
        """Go's first gcpacertrace line, at the start of a cycle (§10.2): the assist ratio the
        cycle starts with, the scannable heap expected, heap live at the start and the goal, and
        Go's dedicated + fractional worker split for this P count (gorun's mark threads are held
        to that utilization)."""
        goal = paced.goal
        ratio = self.pacer.assist_ratio(
            goal, heap_start, 0, paced.scan_expected, heap_start, max(heap_start, paced.scan_expected)
        )
        dedicated, fractional = pacer.background_workers(self.nprocs)
        print(
            f"pacer: assist ratio={go_float(ratio)} (scan {paced.scan_expected >> 20} MB in "
            f"{heap_start >> 20}->{(goal if goal != UINT64_MAX else 0) >> 20} MB) "
            f"workers={dedicated}+{go_float(fractional)}",
            file=sys.stderr,
            flush=True,
        )

    def pacer_trace_mark(
        self, st2: dict, triggered: int, heap_live: int, paced, old_cons_mark: float, prev_scan: int
    ) -> None:
        """Go's second gcpacertrace line, at the end of mark: the GC CPU utilization of the mark
        phase against 25 %, heap + stack + globals scan work against what was expected, heap live
        at the trigger and now, the overshoot of the goal, and the cons/mark used so far."""
        expected = prev_scan + self.pacer.stack_bytes + self.pacer.globals_bytes
        goal = paced.goal if paced.goal != UINT64_MAX else 0
        print(
            f"pacer: {int(self.pacer.last_utilization * 100)}% CPU ({int(pacer.GOAL_UTILIZATION * 100)} exp.) for "
            f"{st2['scan_work']}+{self.pacer.stack_bytes}+{self.pacer.globals_bytes} B work ({expected} B exp.) "
            f"in {triggered} B -> {heap_live} B (∆goal {heap_live - goal}, cons/mark {go_float(old_cons_mark)})",
            file=sys.stderr,
            flush=True,
        )

    def trace_scav(self, ms: dict) -> None:
        """Go's scavtrace=1 line, once per cycle: memory released since the last line by the
        background and the eager (memory-limit) scavenger, released memory now, and the share of
        unreleased heap memory in use."""
        bg, eager = self.scav.released_bg, self.scav.released_eager + ms["scav_sync_bytes"]
        dbg, deager = bg - self.scav_traced[0], eager - self.scav_traced[1]
        self.scav_traced = (bg, eager)
        retained = ms["heap_inuse"] + ms["heap_free"]
        util = 100 * ms["heap_inuse"] // retained if retained else 100
        print(
            f"scav {dbg >> 10} KiB work (bg), {deager >> 10} KiB work (eager), "
            f"{ms['heap_released'] >> 10} KiB now, {util}% util",
            file=sys.stderr,
            flush=True,
        )


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
