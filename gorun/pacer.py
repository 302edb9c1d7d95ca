"""Go's GC pacing model in pure Python: the heap goal (GOGC and the memory limit), the trigger
from the cons/mark runway, the assist ratio and goal extension of ``revise``, the GC CPU
limiter, the scavenger's goals and pace, and a deterministic simulator of all of them together.

No C, no shared memory: the GC process (gorun/gc.py) feeds these classes with what it measured
and hands their decisions to the C core; the tests drive them directly and through
``simulate``. The rules and their numbers are those of /work/shared/reference/go-runtime.md
(§4.5 background workers, §4.6 assists and ``revise``, §7.1 goal, §7.2 trigger, §7.3 memory
limit, §7.5 CPU limiter, §7.6 scavenger); docs/design.md "Pacer" describes the model.

Units: bytes and nanoseconds as ints; rates and ratios as floats. ``UINT64_MAX`` stands for
"none" (no goal, no trigger), as in the C core.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Callable

UINT64_MAX = (1 << 64) - 1
MAX_MEMORY_LIMIT = (1 << 63) - 1  # Go's default GOMEMLIMIT (math.MaxInt64): no limit

GOAL_SOURCES = ("gogc", "memlimit")  # Pacing.goal_source; cyclerec_t.goal_source is the index
HEAP_MINIMUM = 4 << 20  # §7.1: the goal's floor is HEAP_MINIMUM * GOGC/100
GOAL_UTILIZATION = 0.25  # §7.2 gcGoalUtilization (= gcBackgroundUtilization, §4.5)
TRIGGER_LOWER = (45, 64)  # §7.2: the trigger is at least 45/64 (~0.70) of the way from marked to goal
TRIGGER_UPPER = (61, 64)  # ... and at most 61/64 (~0.95) of the way, or goal - 4 MiB if that is higher
TRIGGER_UPPER_DISTANCE = HEAP_MINIMUM  # the "goal - 4 MiB" of the upper bound (Go reuses its 4 MiB heap minimum)
MIN_RUNWAY = 64 << 10  # §7.1: once a cycle has started, goal >= triggered + 64 KiB
SWEEP_MIN_HEAP_DISTANCE = 1 << 20  # §7.1 sweepMinHeapDistance: goal >= heap_live + 1 MiB while sweeping
MEMLIMIT_HEADROOM_PERCENT = 3  # §7.3: the memory-limit goal keeps max(3 % of it, 1 MiB) in reserve
MEMLIMIT_MIN_HEADROOM = 1 << 20
MEMLIMIT_HEADROOM = (MEMLIMIT_HEADROOM_PERCENT, MEMLIMIT_MIN_HEADROOM)
SCAN_EXPECTED_MIN = 1 << 20  # the expected scan work given to the C core is at least 1 MiB
CONS_MARK_HISTORY = 4  # §7.2: consMark = max(this cycle's, the last 4 measurements)
MAX_OVERSHOOT = 1.1  # §4.6: heap_live already past the (extended) goal -> goal * 1.1
GOGC_OFF_HARD_GOAL_PERCENT = 100000  # revise treats GOGC=off as a huge GOGC for the hard goal
MIN_SCAN_REMAINING = 1000  # §4.6: scan work remaining >= 1000 in the assist ratio
MAX_MEASURED_UTILIZATION = 0.95  # consMark's denominator (1 - u) must stay positive

RETAIN_EXTRA_PERCENT = 10  # §7.6: the GOGC scavenging goal keeps 10 % over the scaled in-use heap
REDUCE_EXTRA_PERCENT = 5  # §7.6: the memory-limit scavenging goal is 95 % of the limit
SCAVENGE_PERCENT = 1.0  # §7.6: the background scavenger's CPU: ~1 % of one CPU
SCAVENGE_QUANTUM = 64 << 10  # bytes the background scavenger releases per step at least
PAGE_SIZE = 8 << 10  # Go's runtime page (pageSize); scavenging goals are rounded up to it

CPU_LIMITER_CAPACITY_PER_PROC_NS = 1_000_000_000  # §7.5: 1 CPU-second x GOMAXPROCS
CPU_LIMITER_UPDATE_PERIOD_NS = 10_000_000  # §7.5: updated at least every 10 ms


def _ratio_of(n: int, frac: tuple[int, int]) -> int:
    return n * frac[0] // frac[1]


def background_workers(nprocs: int) -> tuple[int, float]:
    """(dedicated workers, fractional goal per P) for 25 % of ``nprocs`` (§4.5): round 0.25 x
    nprocs to whole dedicated workers unless that misses the goal by more than 30 %; then use one
    dedicated worker fewer (when rounding went up) and let a fractional worker make up the rest."""
    want = GOAL_UTILIZATION * nprocs
    dedicated = int(want + 0.5)
    if abs(dedicated / want - 1) > 0.3:
        if dedicated > want:
            dedicated -= 1
        return dedicated, (want - dedicated) / nprocs
    return dedicated, 0.0


def background_utilization(nprocs: int) -> float:
    """The share of nprocs the background workers take: 25 % for most counts, 20 % at 5 P, 28.6 % at 7."""
    dedicated, fractional = background_workers(nprocs)
    return (dedicated + fractional * nprocs) / nprocs


def memlimit_headroom(goal: int) -> int:
    """max(3 % of the goal, 1 MiB) (§7.3)."""
    return max(goal * MEMLIMIT_HEADROOM_PERCENT // 100, MEMLIMIT_MIN_HEADROOM)


@dataclass
class Pacing:
    """What ``Pacer.commit`` decided for the next cycle."""

    goal: int  # heap goal, bytes (UINT64_MAX: none, GOGC=off and no limit)
    trigger: int  # heap_live that starts the next cycle (UINT64_MAX: none)
    goal_source: str  # "gogc" or "memlimit": which goal won
    gogc_goal: int  # UINT64_MAX when GOGC=off
    memlimit_goal: int  # UINT64_MAX when there is no limit
    runway: int  # bytes the mutators are expected to allocate during the next mark phase
    scan_expected: int  # scan work the next cycle is expected to need (>= 1 MiB)
    cons_mark: float  # the cons/mark estimate the runway came from
    trigger_lower: int = 0  # the bounds the trigger was clamped to (UINT64_MAX with no trigger)
    trigger_upper: int = 0
    heap_marked: int = 0  # the marked bytes the goal was computed from


class Pacer:
    """Go's gcControllerState reduced to its decisions (mgcpacer.go, §7.1-7.3 and §4.6).

    Per cycle the GC process calls ``start_cycle`` when a cycle starts (heap_live at the start:
    Go's ``triggered``), ``end_cycle`` when marking is done (measures cons/mark), and ``commit``
    with the bytes marked to get the next goal and trigger. ``set_gc_percent`` and
    ``set_memory_limit`` change the knobs; call ``commit`` afterwards, as Go's
    ``gcControllerCommit`` does.
    """

    def __init__(
        self,
        gogc: int,
        memory_limit: int = MAX_MEMORY_LIMIT,
        globals_bytes: int = 0,
        nprocs: int = 1,
        heap_cap: int = UINT64_MAX,
        stack_bytes: int = 0,
    ):
        self.gogc = -1 if gogc < 0 else gogc
        self.memory_limit = memory_limit
        self.globals_bytes = globals_bytes  # Go's globalsScan: scannable globals
        self.stack_bytes = stack_bytes  # Go's lastStackScan (gorun has no goroutine stacks: 0)
        self.nprocs = nprocs
        self.heap_cap = heap_cap  # --max-heap: no goal above what the heap can hold
        self.cons_mark = 0.0  # the estimate in use: max of the last CONS_MARK_HISTORY + 1 measurements
        self.cons_mark_history: list[float] = []  # the last CONS_MARK_HISTORY measurements, oldest first
        self.last_cons_mark = 0.0  # this cycle's measurement (gcpacertrace's "cons/mark")
        self.last_heap_scan = 0  # Go's lastHeapScan: heap scan work of the last cycle
        self.last_heap_marked = 0
        self.last_heap_goal = 0  # Go's lastHeapGoal: the goal of the cycle that ended (scavenger)
        self.last_utilization = 0.0  # bg + assist share of nprocs over the last mark phase
        self.triggered = UINT64_MAX  # heap_live when the running cycle started; UINT64_MAX between cycles
        self.cycles = 0
        self.last: Pacing | None = None

    # --- knobs -----------------------------------------------------------------------------

    def set_gc_percent(self, n: int) -> int:
        """debug.SetGCPercent: n < 0 turns GOGC off (-1). Returns the previous value."""
        prev = self.gogc
        self.gogc = -1 if n < 0 else int(n)
        return prev

    def set_memory_limit(self, n: int) -> int:
        """debug.SetMemoryLimit: n < 0 only reads the limit. Returns the previous value."""
        prev = self.memory_limit
        if n >= 0:
            self.memory_limit = int(n)
        return prev

    @property
    def heap_minimum(self) -> int:
        """4 MiB x GOGC/100 (§7.1); 0 with GOGC=0 or off."""
        return HEAP_MINIMUM * self.gogc // 100 if self.gogc > 0 else 0

    @property
    def limited(self) -> bool:
        return self.memory_limit < MAX_MEMORY_LIMIT

    # --- goals -----------------------------------------------------------------------------

    def gogc_goal(self, heap_marked: int) -> int:
        """M + (M + S + G) x GOGC/100, at least 4 MiB x GOGC/100 (§7.1); UINT64_MAX with GOGC=off."""
        if self.gogc < 0:
            return UINT64_MAX
        grow = (heap_marked + self.stack_bytes + self.globals_bytes) * self.gogc // 100
        return max(heap_marked + grow, self.heap_minimum)

    def memory_limit_goal(self, heap_marked: int, mapped_ready: int, heap_free: int, heap_alloc: int) -> int:
        """The heap goal the memory limit allows (§7.3): the limit less the memory that is not
        heap (mapped_ready - heap_free - heap_alloc) and less what is already mapped over the limit,
        then less a headroom of max(3 %, 1 MiB); never below heap_marked (a limit the non-heap
        memory already fills means continuous GC). UINT64_MAX when there is no limit."""
        if not self.limited:
            return UINT64_MAX
        limit = self.memory_limit
        non_heap = max(mapped_ready - heap_free - heap_alloc, 0)
        overage = max(mapped_ready - limit, 0)
        if non_heap + overage >= limit:
            return heap_marked
        goal = limit - (non_heap + overage)
        headroom = memlimit_headroom(goal)
        goal = goal - headroom if goal > headroom else 0
        return max(goal, heap_marked)

    def scan_expected_raw(self) -> int:
        """Go's expected scan work: last cycle's heap scan + stacks + globals (§4.6, §7.2)."""
        return self.last_heap_scan + self.stack_bytes + self.globals_bytes

    def runway(self) -> int:
        """consMark x (1 - u)/u x expected scan work, u = 0.25: the bytes allocated while the
        background workers (25 % of the CPUs) do the expected scan work (§7.2)."""
        u = GOAL_UTILIZATION
        return int(self.cons_mark * (1 - u) / u * self.scan_expected_raw())

    def commit(
        self,
        *,
        heap_marked: int,
        mapped_ready: int = 0,
        heap_free: int = 0,
        heap_alloc: int = 0,
        heap_live: int = 0,
        sweep_done: bool = True,
    ) -> Pacing:
        """The goal and trigger for the next cycle (Go's commit + trigger, §7.1-7.3)."""
        gogc_goal = self.gogc_goal(heap_marked)
        memlimit_goal = self.memory_limit_goal(heap_marked, mapped_ready, heap_free, heap_alloc)
        runway = self.runway()
        scan_expected = max(self.scan_expected_raw(), SCAN_EXPECTED_MIN)
        if gogc_goal == UINT64_MAX and memlimit_goal == UINT64_MAX:
            # GOGC=off and no limit: no cycle starts for heap growth
            p = Pacing(
                UINT64_MAX,
                UINT64_MAX,
                "gogc",
                UINT64_MAX,
                UINT64_MAX,
                runway,
                scan_expected,
                self.cons_mark,
                UINT64_MAX,
                UINT64_MAX,
                heap_marked,
            )
            self.last = p
            return p
        min_trigger = 0
        if memlimit_goal < gogc_goal:
            goal, source = memlimit_goal, "memlimit"
        else:
            # Not memory-limited: while sweeping is unfinished keep 1 MiB between heap_live and
            # both the goal and the trigger; once a cycle has started give it 64 KiB of runway.
            goal, source = gogc_goal, "gogc"
            sweep_min = 0 if sweep_done else heap_live + SWEEP_MIN_HEAP_DISTANCE
            goal = max(goal, sweep_min)
            min_trigger = sweep_min
            if self.triggered != UINT64_MAX:
                goal = max(goal, self.triggered + MIN_RUNWAY)
        goal = min(goal, self.heap_cap)
        trigger, lower, upper = self._trigger(goal, heap_marked, min_trigger, runway)
        p = Pacing(
            goal,
            trigger,
            source,
            gogc_goal,
            memlimit_goal,
            runway,
            scan_expected,
            self.cons_mark,
            lower,
            upper,
            heap_marked,
        )
        self.last = p
        return p

    @staticmethod
    def trigger_bounds(goal: int, heap_marked: int, min_trigger: int = 0) -> tuple[int, int]:
        """(lower, upper) of §7.2: lower = M + (goal - M) x 45/64; upper = the higher of
        M + (goal - M) x 61/64 and goal - 4 MiB, never above the goal; both at least the minimum
        trigger (itself at least M). Requires goal > heap_marked."""
        span = goal - heap_marked
        lower = max(min_trigger, heap_marked, heap_marked + _ratio_of(span, TRIGGER_LOWER))
        upper = heap_marked + _ratio_of(span, TRIGGER_UPPER)
        if goal > TRIGGER_UPPER_DISTANCE:
            upper = max(upper, goal - TRIGGER_UPPER_DISTANCE)
        upper = min(max(upper, lower), goal)
        return lower, upper

    def _trigger(self, goal: int, heap_marked: int, min_trigger: int, runway: int) -> tuple[int, int, int]:
        if heap_marked >= goal:  # the goal is at (or under) the live heap: start at once
            return goal, goal, goal
        lower, upper = self.trigger_bounds(goal, heap_marked, min_trigger)
        trigger = goal - runway if runway < goal else 0
        return min(max(trigger, lower), upper), lower, upper

    # --- the cycle --------------------------------------------------------------------------

    def start_cycle(self, heap_live: int) -> None:
        """A cycle starts at heap_live (Go's ``triggered``): a commit during this cycle keeps the
        goal at least MIN_RUNWAY above it."""
        self.triggered = heap_live

    def end_cycle(
        self,
        *,
        heap_live: int,
        triggered: int,
        scan_work: int,
        heap_marked: int,
        bg_cpu_ns: int,
        assist_cpu_ns: int,
        mark_wall_ns: int,
        idle_cpu_ns: int = 0,
    ) -> float:
        """Measure this cycle's cons/mark (§7.2) and return the new estimate.

        u = (bg + assist) / (nprocs x mark wall), u_idle = idle / (nprocs x mark wall):
        consMark = (heap_live - triggered) x (u + u_idle) / (scan work x (1 - u)), i.e. bytes the
        mutators allocated per byte the GC scanned, each per CPU-second of its side. The estimate
        is the max of this measurement and the previous four (a rise is used at once, a fall
        only after four cycles). ``scan_work`` is the heap scan work the C core counted; stacks
        and globals are added here. A cycle with no allocation or no mark time measures nothing.
        """
        self.last_heap_goal = self.last.goal if self.last is not None else 0
        self.last_heap_scan = scan_work
        self.last_heap_marked = heap_marked
        self.triggered = UINT64_MAX
        self.cycles += 1
        total_scan = scan_work + self.stack_bytes + self.globals_bytes
        if mark_wall_ns <= 0 or heap_live <= triggered or total_scan <= 0:
            return self.cons_mark
        cpu = self.nprocs * mark_wall_ns
        u = min((bg_cpu_ns + assist_cpu_ns) / cpu, MAX_MEASURED_UTILIZATION)
        u_idle = idle_cpu_ns / cpu
        self.last_utilization = u
        current = (heap_live - triggered) * (u + u_idle) / (total_scan * (1 - u))
        self.last_cons_mark = current
        self.cons_mark = max([current, *self.cons_mark_history])
        self.cons_mark_history = (self.cons_mark_history + [current])[-CONS_MARK_HISTORY:]
        return self.cons_mark

    def hard_goal(self, goal: int) -> int:
        """(1 + GOGC/100) x goal: how far an overrunning cycle may push its goal (§4.6)."""
        gogc = self.gogc if self.gogc >= 0 else GOGC_OFF_HARD_GOAL_PERCENT
        return int((1 + gogc / 100) * goal)

    def _revise(
        self, goal: int, triggered: int, scan_done: int, scan_expected: int, heap_live: int, max_scan: int
    ) -> tuple[int, int]:
        """(goal in effect, scan work expected in total) during a cycle (§4.6, Go's revise)."""
        expected = scan_expected
        if scan_done > expected and expected > 0:
            # More scan work than the last cycle's: the heap is growing. Stretch the runway the
            # goal had for the expected work (goal - triggered) in proportion to the worst case
            # (everything scannable is live), but no further than the hard goal. A cycle that
            # started at or past its goal has no runway to stretch.
            if triggered != UINT64_MAX and triggered < goal:
                ext = triggered + int((goal - triggered) / expected * max_scan)
                goal = max(min(ext, self.hard_goal(goal)), goal)
            expected = max_scan
        if heap_live > goal:
            # Past even that: leave 10 % more and assume the worst-case work.
            goal = int(goal * MAX_OVERSHOOT)
            expected = max_scan
        return goal, expected

    def effective_goal(
        self, goal: int, triggered: int, scan_done: int, scan_expected: int, heap_live: int, max_scan: int
    ) -> int:
        """The goal assists pace to while a cycle runs: the committed goal, extended when the scan
        work overruns the expectation (extrapolated to ``max_scan``, capped at the hard goal), and
        x1.1 when heap_live is already past it. UINT64_MAX stays UINT64_MAX."""
        if goal == UINT64_MAX:
            return goal
        return self._revise(goal, triggered, scan_done, scan_expected, heap_live, max_scan)[0]

    def assist_ratio(
        self, goal: int, triggered: int, scan_done: int, scan_expected: int, heap_live: int, max_scan: int
    ) -> float:
        """Scan work an allocation owes per byte (Go's assistWorkPerByte, §4.6): scan work
        remaining (>= 1000) over heap remaining to the effective goal (>= 1)."""
        if goal == UINT64_MAX:
            return 0.0
        eff, expected = self._revise(goal, triggered, scan_done, scan_expected, heap_live, max_scan)
        scan_remaining = max(expected - scan_done, MIN_SCAN_REMAINING)
        heap_remaining = max(eff - heap_live, 1)
        return scan_remaining / heap_remaining


class CPULimiter:
    """Go's GC CPU limiter (mgclimit.go, §7.5): a leaky bucket of capacity nprocs CPU-seconds.
    GC CPU time fills it, mutator CPU time drains it, one for one, so while the bucket is full
    (``enabled``) GC work over the window is held near 50 %: assists are skipped (the heap may
    then run past its goal)."""

    def __init__(self, nprocs: int, capacity_ns: int | None = None, now_ns: int = 0):
        self.nprocs = nprocs
        self.capacity_ns = CPU_LIMITER_CAPACITY_PER_PROC_NS * nprocs if capacity_ns is None else capacity_ns
        self.fill_ns = 0
        self.enabled = False
        self.enabled_ns = 0  # wall time spent enabled (the state holds from one update to the next)
        self.overflow_ns = 0  # GC CPU time that found the bucket full (what the cap failed to hold)
        self.last_update_ns = now_ns
        self.last_gc_cpu_ns = 0
        self.last_idle_cpu_ns = 0
        self.last_enabled_cycle = 0  # /gc/limiter/last-enabled:gc-cycle
        self.enabled_cycles = 0  # how many cycles saw the limiter enabled
        self._enabled_since_note = False
        self._last_counted_cycle = -1

    def update(self, now_ns: int, gc_cpu_ns_total: int, idle_cpu_ns_total: int = 0) -> bool:
        """Account the window since the last update: nprocs x window of CPU, of which the GC
        used ``gc_cpu_ns_total`` - its previous value, idle Ps the idle part, the mutators the
        rest. Returns ``enabled`` (the bucket is full)."""
        window = now_ns - self.last_update_ns
        if window <= 0:
            return self.enabled
        gc = max(gc_cpu_ns_total - self.last_gc_cpu_ns, 0)
        idle = max(idle_cpu_ns_total - self.last_idle_cpu_ns, 0)
        mutator = max(self.nprocs * window - idle - gc, 0)
        if self.enabled:
            self.enabled_ns += window
        change = gc - mutator
        if change > 0:
            room = self.capacity_ns - self.fill_ns
            if change >= room:
                self.overflow_ns += change - room
                self.fill_ns = self.capacity_ns
            else:
                self.fill_ns += change
        else:
            self.fill_ns = max(self.fill_ns + change, 0)
        self.enabled = self.fill_ns >= self.capacity_ns
        self._enabled_since_note |= self.enabled
        self.last_update_ns = now_ns
        self.last_gc_cpu_ns = gc_cpu_ns_total
        self.last_idle_cpu_ns = idle_cpu_ns_total
        return self.enabled

    def need_update(self, now_ns: int) -> bool:
        return now_ns - self.last_update_ns >= CPU_LIMITER_UPDATE_PERIOD_NS

    def note_cycle(self, n: int) -> None:
        """At each GC transition of cycle n (after ``update``): if the limiter is enabled, or was
        since the previous transition, cycle n is a limited cycle."""
        if self.enabled or self._enabled_since_note:
            self.last_enabled_cycle = n
            if n != self._last_counted_cycle:
                self.enabled_cycles += 1
                self._last_counted_cycle = n
        self._enabled_since_note = self.enabled


def scavenge_goals(
    heap_goal: int, last_heap_goal: int, last_heap_inuse: int, memory_limit: int, page_size: int = PAGE_SIZE
) -> tuple[int, int]:
    """(gc_goal, memlimit_goal) of the scavenger, recomputed after each cycle (§7.6).

    gc_goal: the retained bytes (heap in use + free, not released) the GOGC-based background
    scavenger brings the heap down to: (1 + 10 %) x heap_goal / last_heap_goal x last_heap_inuse,
    rounded up to a page; UINT64_MAX (nothing to do) before the first cycle or with no goal.
    memlimit_goal: the mapped_ready the limit-based scavenger brings memory down to: 95 % of the
    limit; UINT64_MAX with no limit."""
    if memory_limit >= MAX_MEMORY_LIMIT:
        memlimit_goal = UINT64_MAX
    else:
        memlimit_goal = memory_limit * (100 - REDUCE_EXTRA_PERCENT) // 100
    if last_heap_goal <= 0 or heap_goal == UINT64_MAX or last_heap_goal == UINT64_MAX:
        return UINT64_MAX, memlimit_goal
    scaled = last_heap_inuse * heap_goal / last_heap_goal
    gc_goal = int(scaled * (100 + RETAIN_EXTRA_PERCENT) / 100)
    gc_goal = -(-gc_goal // page_size) * page_size
    return gc_goal, memlimit_goal


def scavenge_needed(retained: int, mapped_ready: int, gc_goal: int, memlimit_goal: int) -> int:
    """Bytes the scavenger still has to release to meet both goals (0: both are met)."""
    need = 0
    if gc_goal != UINT64_MAX and retained > gc_goal:
        need = retained - gc_goal
    if memlimit_goal != UINT64_MAX and mapped_ready > memlimit_goal:
        need = max(need, mapped_ready - memlimit_goal)
    return need


class ScavengerPacer:
    """The background scavenger's pace (§7.6): ``percent`` % of one CPU over time.

    Credit accrues at percent/100 ns per ns of wall time (at most ``max_burst_ns`` of it is kept,
    so an idle stretch does not bank a long burst); scavenging spends it. ``budget`` says how
    many ns the scavenger may work now, ``bytes_for`` turns that into bytes to release at the
    measured cost per byte (``note`` records each release's cost), ``sleep_ns`` how long to wait
    for ``min_work_ns`` of credit."""

    def __init__(
        self,
        percent: float = SCAVENGE_PERCENT,
        now_ns: int = 0,
        min_work_ns: int = 1_000_000,
        max_burst_ns: int = 10_000_000,
        quantum: int = SCAVENGE_QUANTUM,
        page_size: int = PAGE_SIZE,
    ):
        self.fraction = percent / 100
        self.min_work_ns = min_work_ns
        self.max_burst_ns = max_burst_ns
        self.quantum = quantum
        self.page_size = page_size
        self.credit_ns = 0.0
        self.last_ns = now_ns
        self.last_spent_ns = 0
        self.ns_per_byte: float | None = None  # moving average of the measured cost
        self.released = 0
        self.spent_ns = 0

    def budget(self, now_ns: int, cpu_spent_ns: int) -> int:
        """ns of scavenging allowed now. ``cpu_spent_ns`` is the scavenger's total CPU so far
        (monotonic); what it grew by since the last call is charged against the credit."""
        if now_ns > self.last_ns:
            self.credit_ns += (now_ns - self.last_ns) * self.fraction
            self.last_ns = now_ns
        spent = cpu_spent_ns - self.last_spent_ns
        if spent > 0:
            self.credit_ns -= spent
            self.last_spent_ns = cpu_spent_ns
        self.credit_ns = min(self.credit_ns, float(self.max_burst_ns))
        return max(int(self.credit_ns), 0)

    def sleep_ns(self) -> int:
        """Wall time until ``min_work_ns`` of credit has accrued (0 if it has)."""
        missing = self.min_work_ns - self.credit_ns
        return 0 if missing <= 0 else int(math.ceil(missing / self.fraction))

    def note(self, released_bytes: int, cost_ns: int) -> None:
        """Record one release: the cost per byte feeds ``bytes_for``."""
        if released_bytes <= 0:
            return
        self.released += released_bytes
        self.spent_ns += cost_ns
        per_byte = max(cost_ns, 0) / released_bytes
        self.ns_per_byte = per_byte if self.ns_per_byte is None else 0.5 * self.ns_per_byte + 0.5 * per_byte

    def bytes_for(self, budget_ns: int, want: int) -> int:
        """Bytes to release now: what ``budget_ns`` buys at the measured cost, at most ``want``,
        in whole pages, at least one quantum (when there is budget and work; the first release,
        with no cost measured yet, is one quantum)."""
        if budget_ns <= 0 or want <= 0:
            return 0
        if self.ns_per_byte is None or self.ns_per_byte <= 0:
            n = self.quantum
        else:
            n = max(int(budget_ns / self.ns_per_byte), self.quantum)
        n = min(n, want)
        return max(n // self.page_size * self.page_size, min(want, self.page_size))


# --- the simulator --------------------------------------------------------------------------------


def _as_function(v) -> Callable[[float], float]:
    return v if callable(v) else (lambda t, v=v: v)


def simulate(
    *,
    cycles: int,
    gogc: int = 100,
    memory_limit: int = MAX_MEMORY_LIMIT,
    nprocs: int = 2,
    live,
    alloc_rate,
    scan_rate: float,
    scannable: float = 1.0,
    globals_bytes: int = 0,
    non_heap: int = 0,
    stw_ns: int = 0,
    limiter: bool = True,
    noise: float = 0.0,
    seed: int = 0,
    duration: float = 600.0,
    mark_steps: int = 200,
    max_off_step: float = 0.01,
) -> list[dict]:
    """A deterministic discrete-time simulation of Go's pacing loop.

    The mutators run on nprocs CPUs and allocate ``alloc_rate`` bytes per mutator CPU-second
    (a number or a function of the time in seconds); ``live(t)`` (number or function) is the
    reachable part of the heap (never more than the heap itself). A cycle starts when heap_live
    reaches the trigger. During mark the background workers take Go's dedicated + fractional
    share of nprocs (§4.5) and scan ``scan_rate`` bytes per CPU-second; the work is the scannable
    part of the live heap at the start plus the globals (snapshot at the beginning: everything
    allocated during mark is black and needs no scan). Allocations owe scan work at the assist
    ratio of ``Pacer.assist_ratio``; the background workers' work is credit they draw on first
    (Go's bgScanCredit), the rest the mutators scan themselves, at ``scan_rate``, instead of
    allocating. While the CPU limiter is enabled assists are skipped and the debt carries over.
    Mark ends when the scan work is done; heap_marked = live at the start + allocated during
    mark; heap_live drops to heap_marked (sweeping is instant; freed memory is returned, so
    mapped = heap + ``non_heap``); then ``end_cycle`` and ``commit`` pace the next cycle.
    ``noise`` jitters the allocation rate per cycle by up to +-noise (seeded, so deterministic).

    Returns one dict per cycle (see ``_record`` keys): the goal and trigger the cycle ran under,
    the heap at the start (triggered) and at the end of mark (heap_peak), heap_marked, GC CPU
    over the mark phase (gc_cpu_fraction: Go's utilization, 0.25 in steady state) and over the
    whole cycle to the next start (gc_cpu_overall), ...; stops after ``cycles`` cycles or
    ``duration`` seconds of simulated time.
    """
    live_f = _as_function(live)
    rate_f = _as_function(alloc_rate)
    rng = random.Random(seed)
    pacer = Pacer(gogc, memory_limit, globals_bytes=globals_bytes, nprocs=nprocs)
    lim = CPULimiter(nprocs)
    bg_cpus = background_utilization(nprocs) * nprocs
    ns = 1e9
    t = 0.0
    heap_live = 0.0
    gc_cpu = 0.0  # seconds, cumulative: bg + assist + STW x nprocs
    pacing = pacer.commit(heap_marked=0, mapped_ready=non_heap, heap_alloc=0, heap_live=0)
    records: list[dict] = []
    prev = None
    jitter = 1.0

    def limiter_tick(force=False):
        if not limiter:
            return
        now = int(t * ns)
        if force or lim.need_update(now):
            lim.update(now, int(gc_cpu * ns))

    while True:
        # --- GC off: allocate up to the trigger --------------------------------------------------
        while t < duration:
            rate = rate_f(t) * jitter * nprocs
            if pacing.trigger != UINT64_MAX and heap_live >= pacing.trigger:
                break
            step = max_off_step
            if pacing.trigger != UINT64_MAX and rate > 0:
                step = min(step, (pacing.trigger - heap_live) / rate)
            t += step
            heap_live += rate * step
            if pacing.trigger != UINT64_MAX and heap_live > pacing.trigger - 1e-6 * rate:
                heap_live = max(heap_live, float(pacing.trigger))
            limiter_tick()
        if prev is not None:
            _close_window(prev, t, gc_cpu, nprocs)
        if t >= duration or len(records) >= cycles:
            break
        # --- start the cycle ---------------------------------------------------------------------
        n = len(records) + 1
        if noise:
            jitter = 1 + noise * (2 * rng.random() - 1)
        limiter_tick(force=True)
        if limiter:
            lim.note_cycle(n)
        if stw_ns:
            t += stw_ns / ns
            gc_cpu += stw_ns / ns * nprocs
        triggered = heap_live
        pacer.start_cycle(int(triggered))
        live0 = min(live_f(t), heap_live)
        scan_heap = scannable * live0
        scan_total = scan_heap + globals_bytes
        scan_done = 0.0
        credit = 0.0  # background credit minus allocation debt (negative: debt)
        t_mark = t
        gc_cpu0 = gc_cpu
        bg_cpu = assist_cpu = 0.0
        limited = lim.enabled
        dt = max(pacing.scan_expected / (bg_cpus * scan_rate), 1e-6) / mark_steps
        while scan_done < scan_total:
            rate = rate_f(t) * jitter
            mut_cpu = (nprocs - bg_cpus) * dt
            bg_scan = bg_cpus * dt * scan_rate
            if limiter and lim.enabled:
                y = 0.0
                r = 0.0
            else:
                r = pacer.assist_ratio(
                    pacing.goal,
                    int(triggered),
                    int(scan_done),
                    pacing.scan_expected,
                    int(heap_live),
                    int(scannable * heap_live + globals_bytes),
                )
                owed = r * rate * mut_cpu  # scan work owed if the mutators only allocated
                have = credit + bg_scan
                if have >= owed:
                    y = 0.0
                else:
                    y = min((owed - have) / (scan_rate + r * rate), mut_cpu)
            work = bg_scan + scan_rate * y
            f = 1.0
            if scan_done + work >= scan_total:
                f = (scan_total - scan_done) / work
            alloc = rate * (mut_cpu - y) * f
            credit += (bg_scan + scan_rate * y) * f - r * alloc
            scan_done += work * f
            heap_live += alloc
            t += dt * f
            bg_cpu += bg_cpus * dt * f
            assist_cpu += y * f
            gc_cpu += (bg_cpus * dt + y) * f
            limiter_tick()
            limited |= lim.enabled
        mark_wall = t - t_mark
        if stw_ns:
            t += stw_ns / ns
            gc_cpu += stw_ns / ns * nprocs
        limiter_tick(force=True)
        if limiter:
            lim.note_cycle(n)
        limited |= lim.enabled
        heap_peak = heap_live
        marked = int(live0 + (heap_live - triggered))
        cons_mark = pacer.end_cycle(
            heap_live=int(heap_live),
            triggered=int(triggered),
            scan_work=int(scan_heap),
            heap_marked=marked,
            bg_cpu_ns=int(bg_cpu * ns),
            assist_cpu_ns=int(assist_cpu * ns),
            mark_wall_ns=int(mark_wall * ns),
        )
        rec = {
            "n": n,
            "start_s": t_mark,
            "mark_s": mark_wall,
            "last_marked": pacing.heap_marked,
            "goal": pacing.goal,
            "goal_source": pacing.goal_source,
            "gogc_goal": pacing.gogc_goal,
            "memlimit_goal": pacing.memlimit_goal,
            "trigger": pacing.trigger,
            "trigger_lower": pacing.trigger_lower,
            "trigger_upper": pacing.trigger_upper,
            "runway": pacing.runway,
            "scan_expected": pacing.scan_expected,
            "hard_goal": pacer.hard_goal(pacing.goal) if pacing.goal != UINT64_MAX else UINT64_MAX,
            "triggered": int(triggered),
            "heap_peak": int(heap_peak),
            "heap_marked": marked,
            "live": int(live0),
            "scan_work": int(scan_total),
            "gc_cpu_fraction": (bg_cpu + assist_cpu) / (nprocs * mark_wall) if mark_wall > 0 else 0.0,
            "assist_fraction": assist_cpu / (nprocs * mark_wall) if mark_wall > 0 else 0.0,
            "cons_mark": cons_mark,
            "cons_mark_measured": pacer.last_cons_mark,
            "limiter_enabled": bool(limited),
            "limiter_fill": lim.fill_ns / lim.capacity_ns,
            "limiter_overflow_ns": lim.overflow_ns,
            "mapped": int(heap_peak) + non_heap,
            "_gc_cpu0": gc_cpu0,
            "_t0": t_mark,
        }
        records.append(rec)
        prev = rec
        heap_live = float(marked)
        pacing = pacer.commit(
            heap_marked=marked,
            mapped_ready=int(heap_peak) + non_heap,
            heap_alloc=int(heap_peak),
            heap_live=marked,
            sweep_done=False,
        )
    for rec in records:
        rec.pop("_gc_cpu0", None)
        rec.pop("_t0", None)
    return records


def _close_window(rec: dict, t: float, gc_cpu: float, nprocs: int) -> None:
    """Fill in a cycle's whole window: from its start to the next cycle's start (or the end)."""
    window = t - rec["_t0"]
    rec["cycle_s"] = window
    rec["gc_cpu_s"] = gc_cpu - rec["_gc_cpu0"]
    rec["gc_cpu_overall"] = rec["gc_cpu_s"] / (nprocs * window) if window > 0 else 0.0


def summarize(records: list[dict], skip: int = 0) -> dict:
    """p50 / p95 of the GC CPU share of the mark phase and of heap_peak / goal over the cycles
    after ``skip``, and the GC CPU seconds and wall seconds of their whole windows."""

    def pct(xs, q):
        xs = sorted(xs)
        if not xs:
            return float("nan")
        k = min(len(xs) - 1, max(0, int(math.ceil(q * len(xs))) - 1))
        return xs[k]

    rs = [r for r in records[skip:] if r["goal"] != UINT64_MAX]
    util = [r["gc_cpu_fraction"] for r in rs]
    ratio = [r["heap_peak"] / r["goal"] for r in rs]
    wall = sum(r.get("cycle_s", 0.0) for r in records[skip:])
    gc = sum(r.get("gc_cpu_s", 0.0) for r in records[skip:])
    return {
        "cycles": len(rs),
        "gc_cpu_p50": pct(util, 0.5),
        "gc_cpu_p95": pct(util, 0.95),
        "heap_goal_p50": pct(ratio, 0.5),
        "heap_goal_p95": pct(ratio, 0.95),
        "heap_goal_max": max(ratio) if ratio else float("nan"),
        "gc_cpu_s": gc,
        "wall_s": wall,
    }
