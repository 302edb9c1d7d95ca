"""Go's runtime/metrics and runtime.MemStats for a gorun run (docs/design.md "Metrics").

``run_metrics(...)`` builds the run JSON's ``metrics`` object: every value keyed by Go's
runtime/metrics name with Go's unit, histograms as Go's ``metrics.Float64Histogram`` (``buckets``
has one more entry than ``counts``; boundaries in seconds; the infinite ends are written as the
strings "-Inf" and "+Inf", which JSON cannot hold as numbers). ``MemStats`` is what
``g.read_mem_stats()`` returns: Go's field names, computed from the same counters.

Time histograms use Go's layout (runtime/histogram.go): a value's bucket is its most significant
bit from bit 9 up (bits 9..47, 39 buckets, plus bucket 0 for values under 2^8 ns), each split into
4 linear sub-buckets by the next two bits; an underflow bucket (-Inf, 0) and an overflow bucket
[2^47 ns, +Inf): 162 counts, 163 boundaries.
"""

from __future__ import annotations

import bisect
import dataclasses

from .sizeclasses import CLASS_TO_SIZE
from .units import MAX_MEMORY_LIMIT

TIME_HIST_MIN_BUCKET_BITS = 9
TIME_HIST_MAX_BUCKET_BITS = 48
TIME_HIST_SUB_BUCKET_BITS = 2
TIME_HIST_NUM_SUB_BUCKETS = 1 << TIME_HIST_SUB_BUCKET_BITS
TIME_HIST_TOTAL_BUCKETS = (TIME_HIST_MAX_BUCKET_BITS - TIME_HIST_MIN_BUCKET_BITS + 1) * TIME_HIST_NUM_SUB_BUCKETS + 2


def _time_hist_bounds_ns() -> list[int]:
    """The finite boundaries in ns, lowest first: 0, 64, 128, 192, 256, 320, ..., 2^47."""
    b = [j << (TIME_HIST_MIN_BUCKET_BITS - 1 - TIME_HIST_SUB_BUCKET_BITS) for j in range(TIME_HIST_NUM_SUB_BUCKETS)]
    for i in range(TIME_HIST_MIN_BUCKET_BITS, TIME_HIST_MAX_BUCKET_BITS):
        for j in range(TIME_HIST_NUM_SUB_BUCKETS):
            b.append((1 << (i - 1)) | (j << (i - 1 - TIME_HIST_SUB_BUCKET_BITS)))
    b.append(1 << (TIME_HIST_MAX_BUCKET_BITS - 1))
    return b


TIME_HIST_BOUNDS_NS = _time_hist_bounds_ns()
# Go's Float64Histogram.Buckets for time histograms, in seconds
TIME_HIST_BUCKETS = ["-Inf", *(ns / 1e9 for ns in TIME_HIST_BOUNDS_NS), "+Inf"]
assert len(TIME_HIST_BUCKETS) == TIME_HIST_TOTAL_BUCKETS + 1


def time_histogram(values_ns) -> dict:
    """Go's time histogram of durations in ns: {"buckets": [...163], "counts": [...162]}."""
    counts = [0] * TIME_HIST_TOTAL_BUCKETS
    for v in values_ns:
        # bucket k+1 holds [bounds[k], bounds[k+1]); bucket 0 is the underflow (v < 0)
        counts[bisect.bisect_right(TIME_HIST_BOUNDS_NS, v)] += 1
    return {"buckets": list(TIME_HIST_BUCKETS), "counts": counts}


def histogram_quantile(h: dict, q: float) -> float:
    """Quantile q of a Float64Histogram dict, in the histogram's unit, interpolated linearly
    within the bucket that holds it (Go's sub-buckets are a quarter of a power of two wide, so
    the error is at most that). 0.0 for an empty histogram."""
    counts = h["counts"]
    total = sum(counts)
    if not total:
        return 0.0
    need = q * total
    acc = 0
    for i, n in enumerate(counts):
        if n and acc + n >= need:
            lo, hi = h["buckets"][i], h["buckets"][i + 1]
            lo = 0.0 if isinstance(lo, str) else lo
            if isinstance(hi, str):  # the overflow bucket: its lower bound
                return lo
            return lo + (hi - lo) * max(0.0, need - acc) / n
        acc += n
    return 0.0


# the names of run_metrics(), in the order Go's runtime/metrics.All() would list them
METRIC_NAMES = (
    "/cpu/classes/gc/mark/assist:cpu-seconds",
    "/cpu/classes/gc/mark/dedicated:cpu-seconds",
    "/cpu/classes/gc/mark/idle:cpu-seconds",
    "/cpu/classes/gc/pause:cpu-seconds",
    "/cpu/classes/gc/total:cpu-seconds",
    "/cpu/classes/scavenge/assist:cpu-seconds",
    "/cpu/classes/scavenge/background:cpu-seconds",
    "/cpu/classes/scavenge/total:cpu-seconds",
    "/cpu/classes/total:cpu-seconds",
    "/gc/cleanups/executed:cleanups",
    "/gc/cleanups/queued:cleanups",
    "/gc/cycles/automatic:gc-cycles",
    "/gc/cycles/forced:gc-cycles",
    "/gc/cycles/total:gc-cycles",
    "/gc/finalizers/executed:finalizers",
    "/gc/finalizers/queued:finalizers",
    "/gc/gogc:percent",
    "/gc/gomemlimit:bytes",
    "/gc/heap/allocs-by-size:bytes",
    "/gc/heap/allocs:bytes",
    "/gc/heap/allocs:objects",
    "/gc/heap/frees:bytes",
    "/gc/heap/frees:objects",
    "/gc/heap/goal:bytes",
    "/gc/heap/live:bytes",
    "/gc/heap/objects:objects",
    "/gc/heap/tiny/allocs:objects",
    "/gc/limiter/last-enabled:gc-cycle",
    "/gc/pauses:seconds",
    "/gc/scan/globals:bytes",
    "/gc/scan/heap:bytes",
    "/gc/scan/stack:bytes",
    "/gc/scan/total:bytes",
    "/gc/scavenge/assist/cpu:seconds",
    "/gc/scavenge/background/cpu:seconds",
    "/memory/classes/heap/free:bytes",
    "/memory/classes/heap/objects:bytes",
    "/memory/classes/heap/released:bytes",
    "/memory/classes/heap/stacks:bytes",
    "/memory/classes/heap/unused:bytes",
    "/memory/classes/metadata/other:bytes",
    "/memory/classes/os-stacks:bytes",
    "/memory/classes/other:bytes",
    "/memory/classes/total:bytes",
    "/sched/gomaxprocs:threads",
    "/sched/pauses/stopping/gc:seconds",
    "/sched/pauses/total/gc:seconds",
    "/sync/mutex/wait/total:seconds",
)


@dataclasses.dataclass
class Counters:
    """The raw counters both the run's metrics and MemStats are computed from."""

    nprocs: int
    nmalloc: int  # objects allocated, tiny objects included
    tiny_allocs: int  # tiny objects packed into an existing block
    nmalloc_by_class: list  # per size class (class 0: large)
    large_bytes: int
    objs_freed: int
    bytes_freed: int
    heap_live: int  # mheap.heap_live
    heap_marked: int  # marked by the last cycle (Go's /gc/heap/live)
    goal: int
    gogc: int
    memory_limit: int
    cycles: int
    forced: int
    classes: dict  # _gorun.memstats()
    pauses: list  # pause records: total_ns, stop_ns, start_ns (ns since run start), cycle
    cycle_ends_ns: list  # each cycle's end, ns since run start, oldest first
    scan_heap: int  # the last cycle's scan work (bytes of heap scanned)
    scan_globals: int
    gc_process_cpu_ns: int
    assist_ns: int
    scav_bg_ns: int
    scav_assist_ns: int
    lock_wait_ns: int
    limiter_last_cycle: int
    wall_ns: int
    start_unix_ns: int
    specials: dict = dataclasses.field(default_factory=dict)  # _gorun.stats()["specials"] (mfinal.c)

    @property
    def alloc_objects(self) -> int:  # Go's /gc/heap/allocs:objects: tiny blocks, not tiny objects
        return self.nmalloc - self.tiny_allocs

    @property
    def pause_cpu_ns(self) -> int:  # Go's /cpu/classes/gc/pause: every pause x P
        return sum(p["total_ns"] for p in self.pauses) * self.nprocs

    @property
    def dedicated_ns(self) -> int:  # the GC process's CPU less the background scavenger's
        return max(self.gc_process_cpu_ns - self.scav_bg_ns, 0)

    @property
    def gc_cpu_ns(self) -> int:  # Go's /cpu/classes/gc/total (idle marking is 0)
        return self.assist_ns + self.dedicated_ns + self.pause_cpu_ns

    @property
    def alloc_bytes(self) -> int:  # in slot sizes, as Go counts them; large objects as requested
        small = sum(n * CLASS_TO_SIZE[c] for c, n in enumerate(self.nmalloc_by_class) if c)
        return small + self.large_bytes


def run_metrics(c: Counters) -> dict:
    pause_total = [p["total_ns"] for p in c.pauses]
    cl = c.classes
    m = {
        "/cpu/classes/gc/mark/assist:cpu-seconds": c.assist_ns / 1e9,
        "/cpu/classes/gc/mark/dedicated:cpu-seconds": c.dedicated_ns / 1e9,
        "/cpu/classes/gc/mark/idle:cpu-seconds": 0.0,
        "/cpu/classes/gc/pause:cpu-seconds": c.pause_cpu_ns / 1e9,
        "/cpu/classes/gc/total:cpu-seconds": c.gc_cpu_ns / 1e9,
        "/cpu/classes/scavenge/assist:cpu-seconds": c.scav_assist_ns / 1e9,
        "/cpu/classes/scavenge/background:cpu-seconds": c.scav_bg_ns / 1e9,
        "/cpu/classes/scavenge/total:cpu-seconds": (c.scav_assist_ns + c.scav_bg_ns) / 1e9,
        "/cpu/classes/total:cpu-seconds": c.wall_ns * c.nprocs / 1e9,
        "/gc/cleanups/executed:cleanups": c.specials.get("cleanups_executed", 0),
        "/gc/cleanups/queued:cleanups": c.specials.get("cleanups_queued", 0),
        "/gc/cycles/automatic:gc-cycles": c.cycles - c.forced,
        "/gc/cycles/forced:gc-cycles": c.forced,
        "/gc/cycles/total:gc-cycles": c.cycles,
        "/gc/finalizers/executed:finalizers": c.specials.get("finalizers_executed", 0),
        "/gc/finalizers/queued:finalizers": c.specials.get("finalizers_queued", 0),
        "/gc/gogc:percent": c.gogc,
        "/gc/gomemlimit:bytes": c.memory_limit,
        "/gc/heap/allocs-by-size:bytes": _size_histogram(c.nmalloc_by_class),
        "/gc/heap/allocs:bytes": c.alloc_bytes,
        "/gc/heap/allocs:objects": c.alloc_objects,
        "/gc/heap/frees:bytes": c.bytes_freed,
        "/gc/heap/frees:objects": c.objs_freed,
        "/gc/heap/goal:bytes": c.goal,
        "/gc/heap/live:bytes": c.heap_marked,
        "/gc/heap/objects:objects": max(c.alloc_objects - c.objs_freed, 0),
        "/gc/heap/tiny/allocs:objects": c.tiny_allocs,
        "/gc/limiter/last-enabled:gc-cycle": c.limiter_last_cycle,
        "/gc/pauses:seconds": time_histogram(pause_total),
        "/gc/scan/globals:bytes": c.scan_globals,
        "/gc/scan/heap:bytes": c.scan_heap,
        "/gc/scan/stack:bytes": 0,
        "/gc/scan/total:bytes": c.scan_heap + c.scan_globals,
        "/gc/scavenge/assist/cpu:seconds": c.scav_assist_ns / 1e9,
        "/gc/scavenge/background/cpu:seconds": c.scav_bg_ns / 1e9,
        "/memory/classes/heap/free:bytes": cl.get("/memory/classes/heap/free:bytes", 0),
        "/memory/classes/heap/objects:bytes": cl.get("/memory/classes/heap/objects:bytes", 0),
        "/memory/classes/heap/released:bytes": cl.get("/memory/classes/heap/released:bytes", 0),
        "/memory/classes/heap/stacks:bytes": 0,
        "/memory/classes/heap/unused:bytes": cl.get("/memory/classes/heap/unused:bytes", 0),
        "/memory/classes/metadata/other:bytes": cl.get("/memory/classes/metadata/other:bytes", 0),
        "/memory/classes/os-stacks:bytes": 0,
        "/memory/classes/other:bytes": 0,
        "/memory/classes/total:bytes": cl.get("/memory/classes/total:bytes", 0),
        "/sched/gomaxprocs:threads": c.nprocs,
        "/sched/pauses/stopping/gc:seconds": time_histogram(p["stop_ns"] for p in c.pauses),
        "/sched/pauses/total/gc:seconds": time_histogram(pause_total),
        "/sync/mutex/wait/total:seconds": c.lock_wait_ns / 1e9,
    }
    assert tuple(m) == METRIC_NAMES
    return m


def _size_histogram(nmalloc_by_class: list) -> dict:
    """/gc/heap/allocs-by-size:bytes: objects allocated by size class, as Go buckets them
    (bucket i+1 = (size of class i, size of class i+1]; large objects in the last, to +Inf)."""
    sizes = CLASS_TO_SIZE[1:]
    buckets = ["-Inf", *(float(s) + 1 for s in [0, *sizes[:-1]]), float(sizes[-1]) + 1, "+Inf"]
    counts = [0, *nmalloc_by_class[1:], nmalloc_by_class[0]]
    return {"buckets": buckets, "counts": counts}


# ---- runtime.MemStats ----


@dataclasses.dataclass
class MemStatsBySize:
    Size: int
    Mallocs: int
    Frees: int


@dataclasses.dataclass
class MemStats:
    """Go's runtime.MemStats (reference §10.3). Fields gorun has nothing for (stacks, profiling
    buckets) are 0; ``Frees`` and ``BySize[i].Frees`` count objects freed by sweeping, Go's
    count, with tiny objects counted as freed when allocated, as Go does."""

    Alloc: int
    TotalAlloc: int
    Sys: int
    Lookups: int
    Mallocs: int
    Frees: int
    HeapAlloc: int
    HeapSys: int
    HeapIdle: int
    HeapInuse: int
    HeapReleased: int
    HeapObjects: int
    StackInuse: int
    StackSys: int
    MSpanInuse: int
    MSpanSys: int
    MCacheInuse: int
    MCacheSys: int
    BuckHashSys: int
    GCSys: int
    OtherSys: int
    NextGC: int
    LastGC: int
    PauseTotalNs: int
    PauseNs: list
    PauseEnd: list
    NumGC: int
    NumForcedGC: int
    GCCPUFraction: float
    EnableGC: bool
    DebugGC: bool
    BySize: list


def mem_stats(c: Counters) -> MemStats:
    cl = c.classes
    objects = cl.get("/memory/classes/heap/objects:bytes", 0)
    unused = cl.get("/memory/classes/heap/unused:bytes", 0)
    free = cl.get("/memory/classes/heap/free:bytes", 0)
    released = cl.get("/memory/classes/heap/released:bytes", 0)
    inuse = objects + unused
    idle = free + released
    # PauseNs[NumGC % 256 ...]: each cycle's two pauses summed; PauseEnd: the end of its last one
    by_cycle: dict[int, list] = {}
    for p in c.pauses:
        e = by_cycle.setdefault(p["cycle"], [0, 0])
        e[0] += p["total_ns"]
        e[1] = max(e[1], c.start_unix_ns + p["start_ns"] + p["total_ns"])
    pause_ns, pause_end = [0] * 256, [0] * 256
    for cyc, (tot, end) in by_cycle.items():
        if cyc >= 1 and cyc > c.cycles - 256:
            pause_ns[(cyc - 1) % 256], pause_end[(cyc - 1) % 256] = tot, end
    mallocs = c.nmalloc
    frees = c.objs_freed + c.tiny_allocs
    by_size = [
        MemStatsBySize(CLASS_TO_SIZE[i], c.nmalloc_by_class[i] if i < len(c.nmalloc_by_class) else 0, 0)
        for i in range(min(61, len(CLASS_TO_SIZE)))
    ]
    return MemStats(
        Alloc=objects,
        TotalAlloc=c.alloc_bytes,
        Sys=cl.get("/memory/classes/total:bytes", 0),
        Lookups=0,
        Mallocs=mallocs,
        Frees=frees,
        HeapAlloc=objects,
        HeapSys=inuse + idle,
        HeapIdle=idle,
        HeapInuse=inuse,
        HeapReleased=released,
        HeapObjects=max(mallocs - frees, 0),
        StackInuse=0,
        StackSys=0,
        MSpanInuse=0,
        MSpanSys=0,
        MCacheInuse=0,
        MCacheSys=0,
        BuckHashSys=0,
        GCSys=0,
        OtherSys=cl.get("/memory/classes/metadata/other:bytes", 0),
        NextGC=c.goal,
        LastGC=(c.start_unix_ns + c.cycle_ends_ns[-1]) if c.cycle_ends_ns else 0,
        PauseTotalNs=sum(p["total_ns"] for p in c.pauses),
        PauseNs=pause_ns,
        PauseEnd=pause_end,
        NumGC=c.cycles,
        NumForcedGC=c.forced,
        GCCPUFraction=c.gc_cpu_ns / (c.nprocs * c.wall_ns) if c.wall_ns else 0.0,
        EnableGC=c.gogc >= 0 or c.memory_limit < MAX_MEMORY_LIMIT,
        DebugGC=False,
        BySize=by_size,
    )


def pause_dicts(raw: list, init_ns: int) -> list[dict]:
    """Pause records (``_gorun.gc_pauses``) as the JSON has them: times since the run's start."""
    return [
        {
            "kind": p["kind"],
            "cycle": p["cycle"],
            "start_ns": p["start_ns"] - init_ns,
            "end_ns": p["start_ns"] - init_ns + p["total_ns"],
            "stop_ns": p["stop_ns"],
            "total_ns": p["total_ns"],
            "ack_ns": list(p["ack_ns"]),
        }
        for p in raw
    ]


def counters(
    stats: dict,
    state: dict,
    classes: dict,
    pauses: list[dict],
    cycles: list[dict],
    *,
    gc_process_cpu_ns: int,
    scav_bg_ns: int,
    limiter_last_cycle: int,
    wall_ns: int,
    start_unix_ns: int,
) -> Counters:
    """Counters from one `_gorun.stats()`, `gc_state()`, `memstats()` snapshot, the JSON's pauses
    (`pause_dicts`) and the cycle records."""
    ps = stats["ps"]
    by_class = [sum(col) for col in zip(*(p["by_class"] for p in ps))] if ps else []
    locks = stats["locks"]
    lock_wait = sum(lk["wait_ns_total"] for lk in locks["mcentral"]) + sum(
        lk["wait_ns_total"] for name, lk in locks.items() if name != "mcentral"
    )
    last = cycles[-1] if cycles else {}
    init = state["init_ns"]
    goal = state["goal"]
    return Counters(
        nprocs=stats["nprocs"],
        nmalloc=sum(p["objects"] for p in ps),
        tiny_allocs=sum(p["tiny_allocs"] for p in ps),
        nmalloc_by_class=by_class,
        large_bytes=sum(p["large_bytes"] for p in ps),
        objs_freed=state["objs_freed"],
        bytes_freed=state["bytes_freed"],
        heap_live=state["heap_live"],
        heap_marked=last.get("heap_marked", 0),
        goal=0 if goal >= (1 << 64) - 1 else goal,
        gogc=state["gc_percent"],
        memory_limit=state["memory_limit"],
        cycles=state["cycles_done"],
        forced=sum(1 for c in cycles if c["forced"]),
        classes=classes,
        pauses=pauses,
        cycle_ends_ns=[c["end_ns"] - init for c in cycles if c["end_ns"]],
        scan_heap=last.get("scan_work", 0),
        scan_globals=last.get("globals_bytes", 0),
        gc_process_cpu_ns=gc_process_cpu_ns,
        assist_ns=state["assist_cpu_total_ns"],
        scav_bg_ns=scav_bg_ns,
        scav_assist_ns=state.get("scav_assist_ns", 0),
        lock_wait_ns=lock_wait,
        limiter_last_cycle=limiter_last_cycle,
        wall_ns=wall_ns,
        start_unix_ns=start_unix_ns,
        specials=stats.get("specials", {}),
    )
