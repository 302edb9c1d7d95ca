"""GC benchmarks (issue 3): figures measured in one run, printed with ratios; no assertions.

pause vs heap size     STW total p99 at ~16 MiB and ~1 GiB live (target ratio <= 1.5)
pauses per workload    binary-trees and gcbench at procs 1 and 2, next to Go measured in the
                       same run by gorun.compare (the workloads' Go twins; medians of 3 runs;
                       "-" without a toolchain); target at procs 2: p50 <= 100 us, p99 <= 1 ms
mark throughput        objects/s and MB/s per marking thread, random vs allocation order
                       (target >= 20 M objects/s per thread in allocation order)
pointer store cost     barrier off vs on

  python bench/bench_gc.py [--quick] [--only NAME]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
import gorun  # noqa: E402
from gorun import _gorun, compare  # noqa: E402
from gorun.heap import SharedHeap  # noqa: E402
from gorun.workloads.binary_trees import binary_trees  # noqa: E402
from gorun.workloads.gcbench import gcbench  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"

GO_FIGURES = (
    "pause_total_ns.p50",
    "pause_total_ns.p99",
    "pause_total_ns.max",
    "pause_stop_ns.p50",
    "pause_stop_ns.p99",
)

Node = gorun.struct("benchNode", left=gorun.PTR, right=gorun.PTR)
Link = gorun.struct("benchLink", next=gorun.PTR, val=gorun.INT)


def pct(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, int(q * len(v)))] if v else 0


def us(ns):
    return f"{ns / 1e3:.0f}"


def pause_stats(d):
    total = [p["total_ns"] for p in d["gc"]["pauses"]]
    stop = [p["stop_ns"] for p in d["gc"]["pauses"]]
    return {
        "n": len(total),
        "p50": pct(total, 0.5),
        "p99": pct(total, 0.99),
        "max": max(total, default=0),
        "stop_p50": pct(stop, 0.5),
        "stop_p99": pct(stop, 0.99),
        "stop_max": max(stop, default=0),
    }


# ---- pause vs heap size ----


def _live_heap(g, live_mib: int = 16, cycles: int = 30):
    """Hold `live_mib` MiB live: 60% in 1 KiB pointer arrays (scanned), 40% in 64 KiB buffers;
    then churn garbage and force cycles."""
    total = live_mib << 20
    arrays = [g.new_array("ptr", 120) for _ in range(int(total * 0.6) // 1024)]
    for i in range(1, len(arrays)):
        arrays[i][0] = arrays[i - 1]
    bufs = [g.new_bytes(65536 - 8) for _ in range(int(total * 0.4) // 65536)]
    root = arrays[-1] if arrays else None
    g.globals[0] = root
    del arrays
    for _ in range(cycles):
        for _ in range(2000):
            g.new(Node)
        g.gc()
    return len(bufs)


def bench_pause_vs_heap(quick: bool) -> dict:
    out = {}
    sizes = (16, 256) if quick else (16, 1024)
    cycles = 10 if quick else 100
    for mib in sizes:
        rt = gorun.Runtime(procs=1, gogc="off", max_heap=f"{max(2 * mib, 64) + 512}MiB", godebug_env="")
        r = rt.run(_live_heap, live_mib=mib, cycles=cycles)
        d = r.to_dict()
        st = pause_stats(d)
        # the stop-the-world work itself: from "every P stopped" (as the GC saw it) to the release
        work = [p["total_ns"] - p["seen_ns"] for p in r.stats["gc"]["pauses"]]
        marked = max(c["heap_marked"] for c in d["gc"]["cycles_detail"])
        out[mib] = {
            **st,
            "marked_mib": marked / 2**20,
            "work_p50": pct(work, 0.5),
            "work_p99": pct(work, 0.99),
            "mark_ms_p50": pct([c["mark_ns"] for c in d["gc"]["cycles_detail"]], 0.5) / 1e6,
        }
    a, b = out[sizes[0]], out[sizes[1]]
    print(f"\n## Pause against heap size (procs 1, {cycles} forced cycles each, GOGC=off)\n")
    print("| live | pauses | pause p50 | pause p99 | pause max | stop p99 | STW work p50 / p99 | mark p50 |")
    print("|---|---|---|---|---|---|---|---|")
    for mib in sizes:
        r = out[mib]
        print(
            f"| {r['marked_mib']:.0f} MiB | {r['n']} | {us(r['p50'])} us | {us(r['p99'])} us | {us(r['max'])} us "
            f"| {us(r['stop_p99'])} us | {us(r['work_p50'])} / {us(r['work_p99'])} us | {r['mark_ms_p50']:.1f} ms |"
        )
    ratio = b["p99"] / max(a["p99"], 1)
    out["ratio_p99"] = ratio
    out["ratio_p50"] = b["p50"] / max(a["p50"], 1)
    out["ratio_work_p99"] = b["work_p99"] / max(a["work_p99"], 1)
    print(
        f"\npause p99 ratio {sizes[1]} MiB / {sizes[0]} MiB: {ratio:.2f} (target <= 1.5); p50 ratio "
        f"{out['ratio_p50']:.2f}; STW work p99 ratio {out['ratio_work_p99']:.2f}"
    )
    return out


# ---- pauses on the standard workloads ----


def go_pauses(name: str, procs: int, params: dict) -> tuple[dict | None, str]:
    """Go's pause figures (us) for the same workload, from gorun.compare: ({FIELD: us}, go
    version), or (None, why) without a toolchain."""
    try:
        g = compare.go_only(name, procs, params, rounds=3, env={**os.environ, "GOGC": "100"})
    except compare.CompareError as e:
        return None, str(e)
    return {f: g["median"][f] / 1e3 for f in GO_FIGURES}, g["go_version"]


def bench_workload_pauses(quick: bool) -> dict:
    out = {}
    print("\n## STW pauses on the standard workloads (GOGC=100), next to Go measured here by gorun.compare\n")
    print(
        "| workload | P | cycles | pause p50 / p99 / max (us) | stop p50 / p99 (us) | GC CPU | Go pause p50/p99/max | Go stop p50/p99 |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, fn, params in (
        ("binary-trees", binary_trees, {"depth": 12 if quick else 16}),
        ("gcbench", gcbench, {} if not quick else {"stretch": 12, "long_lived": 10, "max_depth": 10}),
    ):
        for procs in (1, 2):
            d = gorun.Runtime(procs=procs, gogc=100, godebug_env="").run(fn, **params).to_dict()
            st = pause_stats(d)
            go, version = go_pauses(name, procs, params)
            out[f"{name}/{procs}"] = {
                **st,
                "cycles": d["gc"]["cycles"],
                "cpu_fraction": d["gc"]["cpu_fraction"],
                "go_us": go,
                "go_version": version,
            }
            gf = [f"{go[f]:.0f}" for f in GO_FIGURES] if go else ["-"] * len(GO_FIGURES)
            print(
                f"| {name} {params or ''} | {procs} | {d['gc']['cycles']} | {us(st['p50'])} / {us(st['p99'])} / {us(st['max'])} "
                f"| {us(st['stop_p50'])} / {us(st['stop_p99'])} | {100 * d['gc']['cpu_fraction']:.1f}% "
                f"| {gf[0]} / {gf[1]} / {gf[2]} | {gf[3]} / {gf[4]} |"
            )
            if not go:
                print(f"(Go: {version})")
    return out


# ---- mark throughput ----


def _graph_for_marking(g, n: int = 1 << 20, order: str = "alloc"):
    """n nodes linked as a complete binary tree over a permutation of allocation order; only the
    root stays live. 'alloc': identity permutation; 'random': a random one."""
    arr = g.new_array(Node, n)
    for i in range(n):
        arr[i] = g.new(Node)
    perm = np.arange(n) if order == "alloc" else g.rng.permutation(n)
    perm = perm.tolist()
    for i in range(n):
        p = arr[perm[i]]
        c1, c2 = 2 * i + 1, 2 * i + 2
        if c1 < n:
            p.left = arr[perm[c1]]
        if c2 < n:
            p.right = arr[perm[c2]]
    g.globals[0] = arr[perm[0]]
    del arr, p
    g.gc()  # frees the array; the tree stays
    g.gc()  # a clean cycle that marks exactly the tree
    return n


def bench_mark_throughput(quick: bool) -> dict:
    out = {}
    n = 1 << 18 if quick else 1 << 21
    print(f"\n## Mark throughput ({n:,} 24-byte nodes + header, 1 mark thread + the GC main thread)\n")
    print("| graph | objects marked | marking CPU | objects/s per thread | MB/s per thread | mark wall |")
    print("|---|---|---|---|---|---|")
    for order in ("alloc", "random"):
        d = (
            gorun.Runtime(procs=1, gogc="off", mark_threads=1, godebug_env="", max_heap="2GiB")
            .run(_graph_for_marking, n=n, order=order)
            .to_dict()
        )
        c = d["gc"]["cycles_detail"][-1]
        cpu = max(c["mark_gc_process_cpu_ns"], 1)
        rate = c["objects_marked"] / (cpu / 1e9)
        mbs = c["scan_bytes"] / (cpu / 1e9) / 2**20
        out[order] = {
            "objects": c["objects_marked"],
            "cpu_ns": cpu,
            "objs_per_s": rate,
            "mb_per_s": mbs,
            "wall_ns": c["mark_ns"],
        }
        print(
            f"| {order} order | {c['objects_marked']:,} | {cpu / 1e6:.1f} ms | {rate / 1e6:.1f} M | {mbs:.0f} "
            f"| {c['mark_ns'] / 1e6:.1f} ms |"
        )
    print(
        "\n(floors.md: C marking with a prefetch ring, 32-34 M obj/s in allocation order, 24 M obj/s random; "
        "target >= 20 M obj/s per thread in allocation order)"
    )
    return out


# ---- pointer store cost ----


@contextlib.contextmanager
def standalone_heap():
    """A 64 MiB heap in this process (gorun.heap.SharedHeap, 1 P, futex locks) whose P 0 this
    process becomes, with every declared type registered."""
    with SharedHeap(64 << 20, nprocs=1, lock="futex", root_slots=1 << 16, nglobals=16):
        gorun.types.register_all()
        _gorun.set_p(0)
        yield


class Slots:
    __slots__ = ("left", "right")

    def __init__(self):
        self.left = self.right = None


def bench_store(quick: bool) -> dict:
    n = 200_000 if quick else 2_000_000
    out = {}
    with standalone_heap():
        a, b = _gorun.new(Node), _gorun.new(Node)
        s1, s2 = Slots(), Slots()

        def loop_handle(x, y, k):
            for _ in range(k):
                x.left = y
                x.left = None

        def loop_slots(x, y, k):
            for _ in range(k):
                x.left = y
                x.left = None

        def t(fn, *args):
            best = float("inf")
            for _ in range(3):
                t0 = time.perf_counter_ns()
                fn(*args, n // 2)
                best = min(best, (time.perf_counter_ns() - t0) / n)
            return best

        out["slots_ns"] = t(loop_slots, s1, s2)
        _gorun.debug_set_barrier(False)
        out["off_ns"] = t(loop_handle, a, b)
        _gorun.debug_set_barrier(True)
        out["on_ns"] = t(loop_handle, a, b)
        _gorun.debug_set_barrier(False)
        out["self_flushes"] = _gorun.stats()["ps"][0]["wb_self_flushes"]
        del a, b
    print("\n## Pointer store cost (x.left = y from Python, per store)\n")
    print("| store | ns |\n|---|---|")
    print(f"| Python __slots__ attribute | {out['slots_ns']:.1f} |")
    print(f"| gorun field, barrier off | {out['off_ns']:.1f} |")
    print(f"| gorun field, barrier on (log append, self-flush when full) | {out['on_ns']:.1f} |")
    print(
        f"\nbarrier on / off: {out['on_ns'] / out['off_ns']:.2f}x; full logs shaded by the worker: {out['self_flushes']}"
    )
    return out


BENCHES = {
    "pause_vs_heap": bench_pause_vs_heap,
    "workloads": bench_workload_pauses,
    "mark": bench_mark_throughput,
    "store": bench_store,
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", choices=sorted(BENCHES))
    ap.add_argument(
        "--wait",
        type=float,
        default=None,
        metavar="S",
        help="wait up to S s for an idle machine before each benchmark (default 30, quick 3)",
    )
    args = ap.parse_args(argv)
    common.header("bench_gc: pauses, mark throughput, barrier cost", args.quick)
    wait = args.wait if args.wait is not None else (3 if args.quick else 30)
    results = {}
    for name, fn in BENCHES.items():
        if args.only and name != args.only:
            continue
        common.wait_quiet(timeout=wait)
        results[name] = fn(args.quick)
    common.write_json("bench_gc", json.loads(json.dumps(results, default=str)), args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
