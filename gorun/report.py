"""The run summary (text) and the --json document (docs/design.md "Output")."""

from __future__ import annotations

import functools
import os
import platform
import subprocess

import psutil

from . import __version__, _gorun, metrics, pool
from .pacer import GOAL_SOURCES, UINT64_MAX
from .timeline import timeline_dict
from .sizeclasses import CLASS_TO_SIZE
from .units import MAX_MEMORY_LIMIT, fmt_bytes, fmt_memlimit, fmt_ns

PAGE_SIZE = _gorun.constants()["page_size"]
# runtime/metrics names reported under memory.metrics (docs/design.md "Output")
MEMORY_METRICS = (
    "/memory/classes/heap/objects:bytes",
    "/memory/classes/heap/unused:bytes",
    "/memory/classes/heap/free:bytes",
    "/memory/classes/heap/released:bytes",
    "/memory/classes/metadata/other:bytes",
    "/memory/classes/total:bytes",
)
LOCK_FIELDS = ("acquisitions", "contended", "wait_ns_total", "wait_ns_max", "hold_ns_total", "hold_ns_max", "recovered")
_MAX_FIELDS = ("wait_ns_max", "hold_ns_max")
# the run JSON's layout version: bumped when a key changes meaning or goes away (docs/design.md "Output")
SCHEMA_VERSION = 1


def _hist_quantile(hist: list[int], q: float) -> float:
    """Upper bound (ns) of the log2 bucket holding quantile q of the waits."""
    total = sum(hist)
    if not total:
        return 0.0
    need = q * total
    acc = 0
    for i, n in enumerate(hist):
        acc += n
        if acc >= need:
            return float(2 ** (i + 1))
    return float(2 ** len(hist))


def lock_summary(locks: list[dict]) -> dict:
    out = {k: 0 for k in LOCK_FIELDS}
    hist = [0] * len(locks[0]["wait_hist"]) if locks else []
    for lk in locks:
        for k in LOCK_FIELDS:
            v = lk.get(k, 0)
            out[k] = max(out[k], v) if k in _MAX_FIELDS else out[k] + v
        hist = [a + b for a, b in zip(hist, lk["wait_hist"])]
    out["wait_hist"] = hist
    out["wait_ns_p99"] = _hist_quantile(hist, 0.99)
    out["wait_ns_mean"] = out["wait_ns_total"] / out["contended"] if out["contended"] else 0.0
    return out


def _pct(vals: list, q: float) -> float:
    if not vals:
        return 0.0
    v = sorted(vals)
    return float(v[min(len(v) - 1, int(q * len(v)))])


def gc_dict(r) -> dict:
    g = r.stats.get("gc") or {}
    cycles = g.get("cycles", [])
    state = g.get("state", {})
    init = state.get("init_ns", 0)
    pauses = metrics.pause_dicts(g.get("pauses", []), init)
    since = lambda t: t - init if t else None  # noqa: E731  (0: the phase did not happen)
    total = [p["total_ns"] for p in pauses]
    stop = [p["stop_ns"] for p in pauses]
    pause_sum = sum(total)
    gc_cpu = (
        (g.get("process_cpu_ns") or sum(c["gc_cpu_ns"] for c in cycles))
        + state.get("assist_cpu_total_ns", 0)
        + pause_sum * r.procs
    )
    out = {
        # the counter, not the record ring (which keeps the last 8192 cycles; pauses: the last 16384)
        "cycles": state.get("cycles_done", len(cycles)),
        "forced": sum(1 for c in cycles if c["forced"]),
        "gogc": g.get("gogc"),
        "mark_threads": g.get("mark_threads"),
        "pauses": pauses,
        "stw_total_ns": pause_sum,
        "pause_total_ns": {"p50": _pct(total, 0.5), "p99": _pct(total, 0.99), "max": max(total, default=0)},
        "pause_stop_ns": {"p50": _pct(stop, 0.5), "p99": _pct(stop, 0.99), "max": max(stop, default=0)},
        "cpu_fraction": gc_cpu / (r.procs * r.wall_ns) if r.wall_ns else 0.0,
        "cpu_ns": gc_cpu,
        "assist_ns": state.get("assist_cpu_total_ns", 0),
        "freed_bytes": state.get("bytes_freed", 0),
        "freed_objects": state.get("objs_freed", 0),
        "freed_spans": state.get("spans_freed", 0),
        "cycles_detail": [
            {
                "n": c["n"],
                "start_ns": since(c["start_ns"]),
                "mark_start_ns": since(c["mark_start_ns"]),
                "mark_end_ns": since(c["mark_end_ns"]),
                "sweep_end_ns": since(c["sweep_end_ns"]),
                "end_ns": since(c["end_ns"]),
                "gc_cpu_ns": c["gc_cpu_ns"],
                "heap_start": c["heap_start"],
                "heap_end": c["heap_end"],
                "heap_marked": c["heap_marked"],
                "goal": c["goal"],
                "trigger": c["trigger"],
                "mark_ns": c["mark_end_ns"] - c["mark_start_ns"],
                "mark_cpu_ns": c["mark_cpu_ns"],
                "mark_gc_process_cpu_ns": c["mark_proc_cpu_ns"],
                "assist_ns": c["assist_ns"],
                "forced": bool(c["forced"]),
                "objects_marked": c["objs_marked"],
                "scan_bytes": c["scan_work"],
                "handshakes": c["handshakes"],
                "sweep_ns": c["sweep_end_ns"] - c["mark_end_ns"],
                "goal_source": GOAL_SOURCES[c["goal_source"]],
                "limiter": bool(c["limiter"]),
                "mapped_ready": c["mapped_ready"],
                "released": c["released"],
            }
            for c in cycles
        ],
    }
    lim = g.get("limiter") or {}
    out["limiter"] = {
        "enabled_cycles": lim.get("enabled_cycles", sum(1 for c in cycles if c["limiter"])),
        "enabled_ns": lim.get("enabled_ns", 0),
        "last_enabled_cycle": lim.get("last_enabled_cycle", max((c["n"] for c in cycles if c["limiter"]), default=0)),
    }
    return out


def memory_dict(r, gc: dict) -> dict:
    """memory.*: the limit, the sampled memory of the run (what a container's limit sees), the
    runtime's own classes by runtime/metrics name, the container. `gc` is gc_dict(r)."""
    m = r.stats.get("memory") or {}
    cl = m.get("classes") or {}
    sampled = m.get("sampled") or {}
    ctr = m.get("container") or {}
    state = (r.stats.get("gc") or {}).get("state", {})
    limit = state.get("memory_limit", MAX_MEMORY_LIMIT)
    scav = (r.stats.get("gc") or {}).get("scavenger") or {}
    metrics = {k: cl.get(k, 0) for k in MEMORY_METRICS}
    metrics["/gc/gomemlimit:bytes"] = limit
    metrics["/gc/heap/goal:bytes"] = state.get("goal", 0) if state.get("goal", 0) < UINT64_MAX else 0
    metrics["/gc/limiter/last-enabled:gc-cycle"] = gc["limiter"]["last_enabled_cycle"]
    metrics["/gc/scavenge/assist/cpu:seconds"] = state.get("scav_assist_ns", 0) / 1e9
    metrics["/gc/scavenge/background/cpu:seconds"] = scav.get("cpu_ns", 0) / 1e9
    return {
        "limit_bytes": limit,
        "peak_bytes": sampled.get("peak_bytes", 0),
        "final_bytes": sampled.get("final_bytes", 0),
        "released_bytes": cl.get("heap_released", 0),
        "mapped_bytes": cl.get("mapped_ready", 0),
        "heap_inuse_bytes": cl.get("heap_inuse", 0),
        "heap_free_bytes": cl.get("heap_free", 0),
        "metadata_bytes": cl.get("/memory/classes/metadata/other:bytes", 0),
        "scavenged": {
            "background_bytes": scav.get("released_bg", 0),
            "eager_bytes": scav.get("released_eager", 0),
            "sync_bytes": cl.get("scav_sync_bytes", 0),
            "total_bytes": cl.get("scav_released_bytes", 0),
            "reused_bytes": cl.get("scav_reused_bytes", 0),
        },
        "samples": sampled.get("samples", 0),
        "container": {
            "limit_bytes": ctr.get("limit_bytes"),
            "oom_killed": bool(ctr.get("oom_killed")),
            "usage_bytes": ctr.get("usage_bytes"),
            "peak_bytes": ctr.get("peak_bytes") or sampled.get("container_peak_bytes"),
            "cgroup_version": ctr.get("version"),
        },
        "metrics": metrics,
    }


def result_dict(r) -> dict:
    st = r.stats
    heap = st["mheap"]
    per_p = []
    for p, o in zip(st["ps"], r.outcomes):
        dur = max(p["end_ns"] - p["start_ns"], 1) if p["end_ns"] else 0
        per_p.append(
            {
                "id": p["id"],
                "pid": o.ospid,
                "status": o.status,
                "objects": p["objects"],
                "bytes": p["bytes"],
                "tiny_allocs": p["tiny_allocs"],
                "large_allocs": p["large_allocs"],
                "refills": p["refills"],
                "seconds": dur / 1e9,
                "objects_per_s": p["objects"] / (dur / 1e9) if dur else 0.0,
                "bytes_per_s": p["bytes"] / (dur / 1e9) if dur else 0.0,
            }
        )
    by_class = {}
    for spc, c in enumerate(st["central"]):
        if c["nspans"] or st["locks"]["mcentral"][spc]["acquisitions"]:
            by_class[str(spc)] = {
                "sizeclass": spc >> 1,
                "noscan": bool(spc & 1),
                "elemsize": CLASS_TO_SIZE[spc >> 1],
                "spans": c["nspans"],
                **{k: st["locks"]["mcentral"][spc].get(k, 0) for k in LOCK_FIELDS},
            }
    gcd = gc_dict(r)
    if "trace" in st:  # --trace only (gorun/trace.py)
        gcd["assists"] = st.get("trace_assists", [])
    lock_keys = (*LOCK_FIELDS, "wait_hist", "wait_ns_p99", "wait_ns_mean")
    locks = {}
    for name in ("mheap", "mcentral", "workbuf", "typetab", "special"):
        raw = st["locks"].get(name)
        if raw is not None:
            summ = lock_summary(raw if name == "mcentral" else [raw])
            locks[name] = {k: summ[k] for k in lock_keys}
    locks["mcentral_by_class"] = by_class
    g = st.get("gc") or {}
    state = g.get("state") or {}
    mem = memory_dict(r, gcd)
    pools, pools_total = pool.pools_dict(st.get("pools"))
    out = {
        "schema_version": SCHEMA_VERSION,
        "gorun": {"version": __version__, "commit": _commit()},
        "machine": machine(),
        "start_unix_ns": st.get("start_unix_ns"),
        "workload": r.workload,
        "params": r.params,
        "procs": r.procs,
        "lock": r.lock,
        "max_heap": r.max_heap,
        "wall_s": r.wall_ns / 1e9,
        "error": r.error,
        "alloc": {
            "objects": sum(p["objects"] for p in per_p),
            "bytes": sum(p["bytes"] for p in per_p),
            "per_p": per_p,
        },
        "heap": {
            "inuse_bytes": heap["pages_inuse"] * PAGE_SIZE,
            "peak_inuse_bytes": heap["peak_pages_inuse"] * PAGE_SIZE,
            "grown_bytes": heap["grown_pages"] * PAGE_SIZE,
            "heap_live": heap["heap_live"],
            "spans_inuse": heap["spans_inuse"],
            "large_spans": heap["large_spans"],
            "spans_by_class": {k: v["spans"] for k, v in by_class.items()},
        },
        "gc": gcd,
        "memory": mem,
        "locks": locks,
        "pools": pools,
        "pools_total": pools_total,
        "finalizers": dict(st.get("specials") or {}),  # native/mfinal.c's counters (docs/design.md "Output")
        "timeline": timeline_dict(st.get("timeline"), gcd["pauses"], r.procs, mem["limit_bytes"]),
    }
    if state:
        c = metrics.counters(
            st,
            state,
            (st.get("memory") or {}).get("classes") or {},
            gcd["pauses"],
            g.get("cycles", []),
            gc_process_cpu_ns=g.get("process_cpu_ns") or sum(c["gc_cpu_ns"] for c in g.get("cycles", [])),
            scav_bg_ns=(g.get("scavenger") or {}).get("cpu_ns", 0),
            limiter_last_cycle=gcd["limiter"]["last_enabled_cycle"],
            wall_ns=r.wall_ns,
            start_unix_ns=st.get("start_unix_ns") or 0,
        )
        out["metrics"] = metrics.run_metrics(c)
    if "trace" in st:
        out["trace"] = st["trace"]
    return out


@functools.lru_cache(maxsize=1)
def machine() -> dict:
    """The machine the run ran on (the JSON's `machine`)."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpu_model": model,
        "cores": psutil.cpu_count(logical=False) or os.cpu_count(),
        "logical_cpus": os.cpu_count(),
        "memory_bytes": psutil.virtual_memory().total,
        "kernel": platform.release(),
        "os": platform.system(),
        "python": platform.python_version(),
    }


@functools.lru_cache(maxsize=1)
def _commit() -> str | None:
    """The git commit of the gorun checkout this package runs from (None: not a checkout)."""
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        out = subprocess.run(
            ["git", "-C", here, "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode:
        return None
    dirty = subprocess.run(
        ["git", "-C", here, "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        timeout=5,
        stdin=subprocess.DEVNULL,
    )
    return out.stdout.strip() + ("-dirty" if dirty.returncode == 0 and dirty.stdout.strip() else "")


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    line = lambda cells: "  ".join(str(c).rjust(w) for c, w in zip(cells, widths))  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])


def summary_text(r) -> str:
    d = result_dict(r)
    out = [
        f"gorun: workload {d['workload']}, {d['procs']} P, lock {d['lock']}, "
        f"wall {d['wall_s']:.2f}s" + (f"  [ended: {d['error'].splitlines()[0]}]" if d["error"] else "")
    ]
    rows = [
        [
            f"P{p['id']}",
            p["status"],
            f"{p['objects']:,}",
            fmt_bytes(p["bytes"]),
            f"{p['tiny_allocs']:,}",
            f"{p['large_allocs']:,}",
            f"{p['objects_per_s'] / 1e6:.2f} M/s",
            f"{fmt_bytes(p['bytes_per_s'])}/s",
        ]
        for p in d["alloc"]["per_p"]
    ]
    rows.append(
        [
            "all",
            "",
            f"{d['alloc']['objects']:,}",
            fmt_bytes(d["alloc"]["bytes"]),
            "",
            "",
            f"{sum(p['objects_per_s'] for p in d['alloc']['per_p']) / 1e6:.2f} M/s",
            "",
        ]
    )
    out += ["", "allocation", _table(rows, ["P", "status", "objects", "bytes", "tiny", "large", "rate", "bytes/s"])]
    h = d["heap"]
    out += [
        "",
        f"heap: in use {fmt_bytes(h['inuse_bytes'])} (peak {fmt_bytes(h['peak_inuse_bytes'])}), "
        f"grown {fmt_bytes(h['grown_bytes'])} of max {fmt_bytes(d['max_heap'])}, "
        f"{h['spans_inuse']} spans ({h['large_spans']} large)",
    ]
    m = d["memory"]
    mem = (
        f"memory: peak {fmt_bytes(m['peak_bytes'])}, final {fmt_bytes(m['final_bytes'])} (sampled: private "
        f"resident + shared segments); mapped {fmt_bytes(m['mapped_bytes'])}, released "
        f"{fmt_bytes(m['released_bytes'])}, metadata {fmt_bytes(m['metadata_bytes'])}; "
        f"limit {fmt_memlimit(m['limit_bytes'])}"
    )
    c = m["container"]
    if c["limit_bytes"]:
        mem += f"; container {fmt_bytes(c['limit_bytes'])}" + (
            " (OOM-killed)" if c["oom_killed"] else f", peak {fmt_bytes(c['peak_bytes'] or 0)}"
        )
    out.append(mem)
    g = d["gc"]
    if g["cycles"]:
        tt, ts = g["pause_total_ns"], g["pause_stop_ns"]
        out += [
            f"gc: {g['cycles']} cycles ({g['forced']} forced), GOGC={'off' if g['gogc'] == -1 else g['gogc']}, "
            f"STW total {fmt_ns(g['stw_total_ns'])} in {len(g['pauses'])} pauses, "
            f"GC CPU {100 * g['cpu_fraction']:.1f}%, freed {fmt_bytes(g['freed_bytes'])}",
            f"    pause total p50 {fmt_ns(tt['p50'])}  p99 {fmt_ns(tt['p99'])}  max {fmt_ns(tt['max'])};  "
            f"time to stop p50 {fmt_ns(ts['p50'])}  p99 {fmt_ns(ts['p99'])}  max {fmt_ns(ts['max'])}",
        ]
        lim = g["limiter"]
        if m["limit_bytes"] < MAX_MEMORY_LIMIT or lim["enabled_cycles"]:
            nmem = sum(1 for c in g["cycles_detail"] if c["goal_source"] == "memlimit")
            out.append(
                f"    memory limit: {nmem} of {len(g['cycles_detail'])} cycles paced by it; GC CPU limiter on in "
                f"{lim['enabled_cycles']} cycles for {fmt_ns(lim['enabled_ns'])}"
            )
    elif g["gogc"] is not None:
        out.append(f"gc: no cycle ran (GOGC={'off' if g['gogc'] == -1 else g['gogc']})")
    pt = d["pools_total"]
    if d["pools"]:
        out.append(
            f"pools: {len(d['pools'])} ({', '.join(d['pools'])}): {pt['gets']:,} gets ({pt['hits']:,} hits: "
            f"{pt['hits_private']:,} private, {pt['hits_shared']:,} shared, {pt['steals']:,} stolen, "
            f"{pt['victim_hits']:,} victim; {pt['misses']:,} misses), {pt['puts']:,} puts, "
            f"{pt['dropped']:,} dropped by cycles, {pt['overflows']:,} overflows"
        )
    fz = d.get("finalizers") or {}
    if fz.get("finalizers_set") or fz.get("cleanups_added") or fz.get("weak_made"):
        out.append(
            f"finalizers: {fz['finalizers_set']} set, {fz['finalizers_queued']} queued, "
            f"{fz['finalizers_executed']} run; cleanups: {fz['cleanups_added']} added, {fz['cleanups_stopped']} "
            f"stopped, {fz['cleanups_queued']} queued, {fz['cleanups_executed']} run; weak pointers: "
            f"{fz['weak_made']} made, {fz['weak_cleared']} cleared"
        )
    byc = d["locks"]["mcentral_by_class"]
    top = [kv for kv in sorted(byc.items(), key=lambda kv: -kv[1]["spans"])[:8] if kv[1]["spans"]]
    if top:
        out.append(
            "spans per class (top 8): "
            + ", ".join(f"{v['elemsize'] or 'large'}{'n' if v['noscan'] else ''}:{v['spans']}" for _, v in top)
        )
    lrows = []
    for name, key in (
        ("mheap", "mheap"),
        ("mcentral (all)", "mcentral"),
        ("workbuf", "workbuf"),
        ("typetab", "typetab"),
        ("special", "special"),
    ):
        if key in d["locks"]:
            lrows.append(_lock_row(name, d["locks"][key]))
    busiest = sorted(byc.items(), key=lambda kv: -kv[1]["acquisitions"])[:4]
    for spc, v in busiest:
        lrows.append(
            _lock_row(
                f"  mcentral[{spc}] {v['elemsize'] or 'large'}{'n' if v['noscan'] else ''}", {**v, "wait_ns_p99": None}
            )
        )
    out += [
        "",
        "locks",
        _table(
            lrows,
            ["lock", "acquisitions", "contended", "wait total", "wait mean", "wait p99", "wait max", "hold total"],
        ),
    ]
    return "\n".join(out)


def _lock_row(name: str, lk: dict) -> list[str]:
    acq = lk["acquisitions"]
    cont = lk["contended"]
    mean = lk["wait_ns_total"] / cont if cont else 0
    p99 = lk.get("wait_ns_p99")
    return [
        name,
        f"{acq:,}",
        f"{cont:,} ({100 * cont / acq:.1f}%)" if acq else "0",
        fmt_ns(lk["wait_ns_total"]),
        fmt_ns(mean),
        "<" + fmt_ns(p99) if p99 else "-",
        fmt_ns(lk["wait_ns_max"]),
        fmt_ns(lk["hold_ns_total"]),
    ]
