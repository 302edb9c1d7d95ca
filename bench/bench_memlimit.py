"""Memory-limit benchmarks (issue 7): figures measured in one run, printed with ratios; no assertions.

story       the articles' container story at its real sizes, P=2: spike with live=400MiB grow=600MiB
            churn=2GiB, GOGC=100 with no limit vs GOMEMLIMIT=900MiB: peak memory, cycles, GC CPU,
            pause p50/p99; beside Go's twin of spike measured in the same run by gorun.compare (its
            peak resident memory and cycles, medians of 3 runs; "-" without a Go toolchain).
            Target: peak at most 900 MiB with the limit.
            Where a memory cgroup can be made, both also run in a 1 GiB container
            (--container 1GiB): the kernel OOM-kills the first and the second survives.
scavenger   the live set drops from 600 to 100 MiB and a cycle sees it (g.gc()): how fast the
            arena's allocated bytes in /dev/shm then come down to within 1.2x of the scavenger's
            retained goal (target < 2 s), at the default GODEBUG=scavpercent=10 and at Go's 1 %.
pacer       a steady workload (16 MiB live in 1 KiB chunks, 1 KiB garbage) for about 100 cycles at
            GOGC 50/100/200: heap at the end of mark over its goal, p50 and p95; the heap at the end
            of mark over the true live set, p50 / p95 / max (target p50 within 0.95-1.05; at most
            2.2x live at GOGC=100), and the marked heap over it (floating garbage).

  python bench/bench_memlimit.py [--quick] [--only story|scavenger|pacer]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
import gorun  # noqa: E402
from gorun import _gorun, compare, container, shm  # noqa: E402
from gorun.workloads.spike import spike  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"
MiB = 1 << 20


def pct(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, int(q * len(v)))] if v else 0


def story_case(sizes: dict, limit, box) -> dict:
    rt = gorun.Runtime(procs=2, memory_limit=limit, container=box, stall_timeout=60)
    t0 = time.monotonic()
    try:
        r = rt.run(spike, **sizes)
        err = ""
    except gorun.RunError as e:
        r, err = e.result, str(e).splitlines()[0]
    wall = time.monotonic() - t0
    d = r.to_dict()
    m, g = d["memory"], d["gc"]
    tot = [p["total_ns"] for p in g["pauses"]]
    return {
        "limit": "off" if limit is None else limit,
        "container": box,
        "ok": not err,
        "error": err,
        "wall_s": round(wall, 2),
        "peak_sampled_mib": round(m["peak_bytes"] / MiB, 1),
        "peak_container_mib": round((m["container"]["peak_bytes"] or 0) / MiB, 1) if box else None,
        "peak_mapped_mib": round(max((c["mapped_ready"] for c in g["cycles_detail"]), default=0) / MiB, 1),
        "heap_peak_mib": round(d["heap"]["peak_inuse_bytes"] / MiB, 1),
        "cycles": g["cycles"],
        "memlimit_cycles": sum(1 for c in g["cycles_detail"] if c["goal_source"] == "memlimit"),
        "gc_cpu_fraction": round(g["cpu_fraction"], 3),
        "limiter_cycles": g["limiter"]["enabled_cycles"],
        "pause_p50_us": round(pct(tot, 0.5) / 1e3),
        "pause_p99_us": round(pct(tot, 0.99) / 1e3),
        "released_mib": round(m["released_bytes"] / MiB, 1),
    }


def bench_story(quick: bool) -> dict:
    if quick:
        sizes, limit, box = {"live": 40 * MiB, "grow": 60 * MiB, "churn": 200 * MiB}, "100MiB", "160MiB"
    else:
        sizes, limit, box = {"live": 400 * MiB, "grow": 600 * MiB, "churn": 2 << 30}, "900MiB", "1GiB"
    rows = [story_case(sizes, None, None), story_case(sizes, limit, None)]
    why = container.probe()
    if why is None:
        rows += [story_case(sizes, None, box), story_case(sizes, limit, box)]
    print(
        common.table(
            [
                "GOMEMLIMIT",
                "container",
                "ended",
                "peak sampled MiB",
                "peak container MiB",
                "peak mapped MiB",
                "cycles (by limit)",
                "GC CPU",
                "limiter cycles",
                "pause p50/p99 us",
                "wall s",
            ],
            [
                [
                    c["limit"],
                    c["container"] or "-",
                    "ok" if c["ok"] else "OOM-killed" if "OOM-killed" in c["error"] else c["error"][:30],
                    c["peak_sampled_mib"],
                    c["peak_container_mib"] if c["peak_container_mib"] is not None else "-",
                    c["peak_mapped_mib"],
                    f"{c['cycles']} ({c['memlimit_cycles']})",
                    f"{100 * c['gc_cpu_fraction']:.1f}%",
                    c["limiter_cycles"],
                    f"{c['pause_p50_us']}/{c['pause_p99_us']}",
                    c["wall_s"],
                ]
                for c in rows
            ],
        )
    )
    if why:
        print(f"(no container runs: {why})")
    go = go_story(sizes, limit)
    if go:
        print(
            f"Go ({go['version']}, measured here by gorun.compare, medians of 3): no limit peak "
            f"{go['off']['peak_mib']} MiB in {go['off']['cycles']} cycles; GOMEMLIMIT={limit} "
            f"{go['limit']['peak_mib']} MiB in {go['limit']['cycles']} cycles"
        )
    else:
        print("Go: - (no Go toolchain: pip install 'gorun[go]')")
    return {"sizes": sizes, "limit": limit, "cases": rows, "container_unavailable": why, "go": go}


def go_story(sizes: dict, limit: str) -> dict | None:
    """Go's twin of spike at 2 P without a limit and with GOMEMLIMIT=limit (GOGC=100), from
    gorun.compare: {"version", "off"|"limit": {"peak_mib", "cycles"}}; None without a toolchain."""
    out = {}
    for key, lim in (("off", "off"), ("limit", limit)):
        env = {**os.environ, "GOGC": "100", "GOMEMLIMIT": lim}
        try:
            g = compare.go_only("spike", 2, sizes, rounds=3, env=env)
        except compare.CompareError:
            return None
        out["version"] = g["go_version"]
        out[key] = {"peak_mib": round(g["median"]["peak_bytes"] / MiB), "cycles": g["median"]["cycles"]}
    return out


def _arena_bytes() -> int:
    """Allocated bytes of this run's arena segment in /dev/shm (the launcher is our parent)."""
    total = 0
    for name, pid in shm.list_segments():
        if pid == os.getppid() and name.endswith(".arena"):
            total += os.stat(shm.SHM_DIR + name).st_blocks * 512
    return total


def _drop(g, big: int, small: int):
    """P0: grow a live set of `big` bytes, drop it to `small`, then churn lightly and watch the
    arena's allocated bytes come down. Returns the time series."""
    if g.id:
        return None
    keep = [g.new_bytes(1016) for _ in range(big // 1024)]
    g.gc()
    a0 = _arena_bytes()
    del keep[small // 1024 :]
    g.gc()  # the cycle that sees the drop (its sweep frees the pages); the clock starts after it
    t0 = time.monotonic()
    series = []
    while time.monotonic() - t0 < 10:
        for _ in range(512):
            g.new_bytes(1016)
        m = _gorun.memstats()
        st = _gorun.gc_state()
        series.append((time.monotonic() - t0, _arena_bytes(), m["heap_inuse"] + m["heap_free"], st["goal"]))
        with g.blocking():
            time.sleep(0.005)
    return {"arena_before": a0, "series": series, "kept": len(keep)}


def bench_scavenger(quick: bool) -> dict:
    return {f"scavpercent={pc}": scavenger_case(quick, pc) for pc in (10, 1)}


def scavenger_case(quick: bool, percent: int) -> dict:
    big, small = (120 * MiB, 20 * MiB) if quick else (600 * MiB, 100 * MiB)
    r = gorun.Runtime(procs=1, godebug_env=f"scavpercent={percent}").run(_drop, big=big, small=small)
    v = r.values[0]
    series = v["series"]
    # the scavenger's retained goal: 1.1 x the heap goal (steady state: goal / last goal = 1)
    goal = min(s[3] for s in series[-10:])
    target = 1.1 * goal
    reached = next((t for t, arena, _, _ in series if arena <= 1.2 * target), None)
    end = series[-1]
    d = r.to_dict()
    out = {
        "live_from_mib": big // MiB,
        "live_to_mib": small // MiB,
        "arena_before_mib": round(v["arena_before"] / MiB, 1),
        "arena_end_mib": round(end[1] / MiB, 1),
        "retained_goal_mib": round(target / MiB, 1),
        "seconds_to_1_2x": round(reached, 2) if reached is not None else None,
        "released_mib": round(d["memory"]["released_bytes"] / MiB, 1),
        "scavenged_bg_mib": round(d["memory"]["scavenged"]["background_bytes"] / MiB, 1),
        "scavenger_cpu_ms": round(d["memory"]["metrics"]["/gc/scavenge/background/cpu:seconds"] * 1e3, 1),
    }
    out["scavpercent"] = percent
    print(
        f"scavpercent={percent}: live {out['live_from_mib']} -> {out['live_to_mib']} MiB: arena {out['arena_before_mib']} MiB -> "
        f"{out['arena_end_mib']} MiB after {series[-1][0]:.1f} s (retained goal {out['retained_goal_mib']} MiB); "
        f"within 1.2x of it after {out['seconds_to_1_2x']} s; background scavenger released "
        f"{out['scavenged_bg_mib']} MiB in {out['scavenger_cpu_ms']} ms of CPU"
    )
    return out


def _steady(g, live: int, seconds: float):
    keep = [g.new_bytes(1016) for _ in range(live // 1024)] if g.id == 0 else []
    t0 = time.monotonic()
    n = 0
    while time.monotonic() - t0 < seconds:
        for _ in range(1024):
            g.new_bytes(1016)
        n += 1024
    return len(keep), n


def bench_pacer(quick: bool) -> dict:
    seconds = 2.0 if quick else 8.0
    live = 16 * MiB  # P0's chunks: the true live set (the marked heap adds floating garbage)
    rows, out = [], {}
    for gogc in (50, 100, 200):
        r = gorun.Runtime(procs=2, gogc=gogc).run(_steady, live=live, seconds=seconds)
        cyc = r.to_dict()["gc"]["cycles_detail"][5:]  # past the warm-up
        over = [c["heap_end"] / c["goal"] for c in cyc if c["goal"]]
        vs_live = [c["heap_end"] / live for c in cyc]
        res = {
            "cycles": len(cyc),
            "heap_over_goal_p50": round(pct(over, 0.5), 3),
            "heap_over_goal_p95": round(pct(over, 0.95), 3),
            "heap_over_live_p50": round(pct(vs_live, 0.5), 2),
            "heap_over_live_p95": round(pct(vs_live, 0.95), 2),
            "heap_over_live_max": round(max(vs_live, default=0), 2),
            "marked_over_live_p50": round(pct([c["heap_marked"] / live for c in cyc], 0.5), 2),
            "trigger_fraction_p50": round(
                pct([(c["trigger"] - c["heap_marked"]) / max(c["goal"] - c["heap_marked"], 1) for c in cyc], 0.5), 3
            )
            if cyc
            else None,
        }
        out[gogc] = res
        rows.append(
            [
                gogc,
                res["cycles"],
                res["heap_over_goal_p50"],
                res["heap_over_goal_p95"],
                f"{res['heap_over_live_p50']} / {res['heap_over_live_p95']} / {res['heap_over_live_max']}",
                res["marked_over_live_p50"],
            ]
        )
    print(
        common.table(
            ["GOGC", "cycles", "heap/goal p50", "heap/goal p95", "heap / live p50 / p95 / max", "marked / live p50"],
            rows,
        )
    )
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--only", choices=["story", "scavenger", "pacer"])
    p.add_argument("--wait", type=float, default=None, metavar="S", help="wait up to S s for an idle machine first")
    a = p.parse_args(argv)
    wait = a.wait if a.wait is not None else (3 if a.quick else 30)
    if wait > 0:
        common.wait_quiet(timeout=wait)
    res = {"env": common.environment(), "quick": a.quick}
    for name, fn in (("story", bench_story), ("scavenger", bench_scavenger), ("pacer", bench_pacer)):
        if a.only and a.only != name:
            continue
        print(f"== {name}")
        res[name] = fn(a.quick)
    OUT.mkdir(exist_ok=True)
    with open(OUT / "bench_memlimit.json", "w") as f:
        json.dump(res, f, indent=2, default=str)


if __name__ == "__main__":
    main()
