"""Allocation throughput per P, at procs 1 and 2, for tiny, small and large objects.

Each P allocates a fixed count in a tight loop (the handle is dropped at once), timed inside the
worker after a barrier through g.globals, so the P's start together. Reported per case: per-P
rate, aggregate rate (all objects / (last end - first start)), the 2-proc / 1-proc aggregate ratio
(target >= 1.7 for small objects: the mcache at work), mcentral acquisitions against
objects / objects-per-span, and the page faults and kernel time each P paid.

The heap is never freed in this version (no GC yet), so every page of objects is touched for the
first time, and on this VM a first touch of a shared page costs microseconds (and some of those
faults are taken inside the mheap lock). So the small cases run twice: "cold" (as is) and "warm"
(each worker first populates the arena range it will use and the whole metadata segment with
madvise(MADV_POPULATE_WRITE), outside the timing, as span reuse will once the GC exists).
Two references without gorun allocation run alongside: the same harness creating Python
__slots__ objects (what 2 processes of this VM reach on process-private work: its 2 vCPUs are
not two free cores), and the first touch of fresh shared pages by 1 and 2 processes.
Each repeat runs every case, each as 1 P then 2 P back to back; the pair with the median ratio is
reported. Pairs during which other processes used the CPUs are redone (the VM is shared).

    python3 bench/bench_alloc.py [--quick]
"""

from __future__ import annotations

import resource
import sys
import time

from common import (
    INTERFERENCE_CPUS,
    cpu_ticks,
    fmt_rate,
    globals_barrier,
    gorun,
    header,
    median,
    now_ns,
    objs_per_span,
    other_load,
    parse_args,
    prefault_heap,
    ratio,
    shm_first_touch,
    size_class_of,
    table,
    wait_quiet,
    write_json,
)
from gorun.sizeclasses import CLASS_TO_SIZE

T = gorun.struct("BenchAllocT", left=gorun.PTR, right=gorun.PTR, val=gorun.INT)

LARGE = 64 << 10
CASES = {
    "py_slots": "Python __slots__ objects: reference",
    "tiny": "new_bytes(8)",
    "small_struct": "g.new(T), 3 fields",
    "small_bytes": "new_bytes(100)",
    "large": "new_bytes(64 KiB)",
}


class Slots:  # the reference: the same loop creating process-private Python objects
    __slots__ = ("left", "right", "val")

    def __init__(self):
        self.left = None
        self.right = None
        self.val = 0


SMALL_CASES = ("tiny", "small_struct", "small_bytes")


def span_bytes_per_obj(case: str) -> float:
    if case == "py_slots":
        return 0.0
    if case == "tiny":
        return 16.0
    if case == "small_struct":
        return CLASS_TO_SIZE[size_class_of(T._gorun_size)]
    if case == "small_bytes":
        return CLASS_TO_SIZE[size_class_of(100)]
    return float((LARGE + 8 + 8191) // 8192 * 8192)


def workload(g, case: str, count: int, warm_bytes: int) -> dict:
    new, new_bytes = g.new, g.new_bytes
    r = range(count)
    populate_s = prefault_heap(warm_bytes) if warm_bytes else 0.0
    globals_barrier(g)
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    k0 = cpu_ticks()
    c0 = time.process_time_ns()
    t0 = now_ns()
    if case == "tiny":
        for _ in r:
            new_bytes(8)
    elif case == "py_slots":
        for _ in r:
            Slots()
    elif case == "small_struct":
        for _ in r:
            new(T)
    elif case == "small_bytes":
        for _ in r:
            new_bytes(100)
    elif case == "large":
        for _ in r:
            new_bytes(LARGE)
    else:
        raise ValueError(case)
    t1 = now_ns()
    c1 = time.process_time_ns()
    k1 = cpu_ticks()
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "t0": t0,
        "t1": t1,
        "cpu_ns": c1 - c0,
        "ticks0": k0,
        "ticks1": k1,
        "faults": ru1.ru_minflt - ru0.ru_minflt,
        "populate_s": populate_s,
        "stime_s": ru1.ru_stime - ru0.ru_stime,
        "utime_s": ru1.ru_utime - ru0.ru_utime,
    }


def expected_spans(case: str, objects: int) -> tuple[int, int]:
    """(objects per span, spans the objects fill) for the case's span class."""
    if case == "large":
        return 1, objects
    if case == "py_slots":
        return 0, 0
    if case == "tiny":  # 8 payload + 1 length byte: one tiny object per 16-byte block (class 2)
        ops = objs_per_span(2)
    elif case == "small_struct":
        ops = objs_per_span(size_class_of(T._gorun_size))
    else:
        ops = objs_per_span(size_class_of(100))
    return ops, -(-objects // ops)


def one_run(case: str, procs: int, count: int, warm: bool) -> dict:
    # small cases: a 1 GiB reservation (plenty), so the warm runs populate little metadata
    # GOGC=off: this measures the allocator (mcache, mcentral, mheap), not the collector
    rt = gorun.Runtime(procs=procs, max_heap="8GiB" if case == "large" else "1GiB", gogc="off")
    warm_bytes = int(count * procs * span_bytes_per_obj(case) * 1.05) + (8 << 20) if warm else 0
    res = rt.run(workload, case=case, count=count, warm_bytes=warm_bytes)
    d = res.to_dict()
    vals = res.values
    per_p = [count / ((v["t1"] - v["t0"]) / 1e9) for v in vals]
    span_ns = max(v["t1"] for v in vals) - min(v["t0"] for v in vals)
    total = count * procs
    ops, spans = expected_spans(case, total)
    # other processes' CPU use during the timed loops, seen from P0's window
    v0 = vals[0]
    our = sum(v["cpu_ns"] for v in vals) * (v0["t1"] - v0["t0"]) / max(span_ns, 1)
    other = other_load(tuple(v0["ticks0"]), tuple(v0["ticks1"]), our, v0["t1"] - v0["t0"])
    return {
        "other_cpus": other,
        "cpu_rate_per_p": [count / max(v["cpu_ns"] / 1e9, 1e-9) for v in vals],
        "cpu_share_per_p": [v["cpu_ns"] / max(v["t1"] - v["t0"], 1) for v in vals],
        "procs": procs,
        "count_per_p": count,
        "warm": warm,
        "objects": d["alloc"]["objects"],
        "per_p_rate": per_p,
        "aggregate_rate": total / (span_ns / 1e9),
        "sum_per_p_rate": sum(per_p),
        "wall_ms": span_ns / 1e6,
        "mcentral_acq": d["locks"]["mcentral"]["acquisitions"],
        "mheap_acq": d["locks"]["mheap"]["acquisitions"],
        "mcentral_contended": d["locks"]["mcentral"]["contended"],
        "mheap_contended": d["locks"]["mheap"]["contended"],
        "mheap_hold_ns_total": d["locks"]["mheap"]["hold_ns_total"],
        "mheap_wait_ns_total": d["locks"]["mheap"]["wait_ns_total"],
        "objs_per_span": ops,
        "expected_spans": spans,
        "tiny_packed": sum(p["tiny_allocs"] for p in d["alloc"]["per_p"]),
        "faults_per_obj": sum(v["faults"] for v in vals) / total,
        "sys_share": sum(v["stime_s"] for v in vals) / max(sum(v["stime_s"] + v["utime_s"] for v in vals), 1e-9),
        "populate_s": max(v["populate_s"] for v in vals),
        "peak_inuse_bytes": d["heap"]["peak_inuse_bytes"],
    }


def main(argv=None) -> dict:
    args = parse_args(__doc__.splitlines()[0], argv)
    if args.quick:
        counts = {"py_slots": 50_000, "tiny": 50_000, "small_struct": 50_000, "small_bytes": 50_000, "large": 1_000}
        repeats, touch_pages = 1, 5_000
    else:
        counts = {
            "py_slots": 1_000_000,
            "tiny": 2_000_000,
            "small_struct": 2_000_000,
            "small_bytes": 1_200_000,
            "large": 6_000,
        }
        repeats, touch_pages = 7, 20_000
    header("bench_alloc: allocation throughput per P, procs 1 and 2", args.quick)
    print(
        "counts per P: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()) + f"; {repeats} repeat(s) "
        "of (1 P, 2 P) back to back; the pair with the median 2P/1P ratio is shown"
    )

    quiet = [wait_quiet(timeout=args.wait)]
    # The machine: first touch of a fresh shared page, 1 and 2 processes (no gorun).
    touch = {1: [], 2: []}
    for _ in range(repeats):
        for p in (1, 2):
            touch[p].append(shm_first_touch(p, touch_pages))
    touch_res = {
        str(p): {
            "us_per_page": median(x["us_per_page"] for x in v),
            "aggregate_pages_per_s": median(x["aggregate_pages_per_s"] for x in v),
        }
        for p, v in touch.items()
    }
    touch_scaling = ratio(touch_res["2"]["aggregate_pages_per_s"], touch_res["1"]["aggregate_pages_per_s"])
    print(
        f"\nmachine: first touch of a shared 4 KiB page: {touch_res['1']['us_per_page']:.1f} us alone, "
        f"{touch_res['2']['us_per_page']:.1f} us with 2 processes; aggregate 2P/1P {touch_scaling:.2f}x "
        f"(floors.md: 2.4 us)"
    )

    results = {}
    redone, interfered = [0], [0]
    plan = [(c, False) for c in counts] + [(c, True) for c in SMALL_CASES]
    runs = {(c, w): {1: [], 2: []} for c, w in plan}
    for _ in range(repeats):  # every case once per repeat, so slow phases of the VM hit all alike
        for case, warm in plan:
            # Other sessions share this VM: a pair during which other processes took CPU is redone
            # (up to twice), and counted as interfered if it still was.
            for attempt in range(3):
                pair = {p: one_run(case, p, counts[case], warm) for p in (1, 2)}
                other = max(r["other_cpus"] for r in pair.values())
                if other <= INTERFERENCE_CPUS:
                    break
                redone[0] += 1
                if attempt < 2:
                    wait_quiet(timeout=min(args.wait, 5.0), quiet_needed=1, interval=0.1, verbose=False)
            interfered[0] += other > INTERFERENCE_CPUS
            for p, r in pair.items():
                runs[(case, warm)][p].append(r)
    for (case, warm), rs in runs.items():
        # Each repeat's 1 P and 2 P runs ran back to back: report the pair with the median ratio
        # (its rates and ratio come from the same pair).
        pairs = list(zip(rs[1], rs[2]))
        ratios = [ratio(b["aggregate_rate"], a["aggregate_rate"]) for a, b in pairs]
        mid = sorted(range(len(pairs)), key=lambda i: ratios[i])[len(pairs) // 2]
        chosen = {1: pairs[mid][0], 2: pairs[mid][1]}
        key = case if case == "py_slots" else f"{case}_{'warm' if warm else 'cold'}"
        results[key] = {
            "case": case,
            "label": CASES[case],
            "heap": "" if case == "py_slots" else "warm" if warm else "cold",
            "runs": {str(p): r for p, r in chosen.items()},
            "scaling_2p_over_1p": ratios[mid],
            "cpu_scaling": ratio(sum(chosen[2]["cpu_rate_per_p"]), sum(chosen[1]["cpu_rate_per_p"])),
            "scaling_by_repeat": [round(x, 3) for x in ratios],
            "aggregate_rate_samples": {str(p): [round(r["aggregate_rate"]) for r in v] for p, v in rs.items()},
        }

    rows = []
    for key, r in results.items():
        for p in ("1", "2"):
            x = r["runs"][p]
            rows.append(
                [
                    f"{r['case']} {r['heap']} ({r['label']})".replace("  ", " ") if p == "1" else "",
                    p,
                    " / ".join(fmt_rate(v) for v in x["per_p_rate"]),
                    fmt_rate(x["aggregate_rate"]),
                    f"{r['scaling_2p_over_1p']:.2f}x" if p == "2" else "",
                    f"{x['faults_per_obj'] * 1000:.1f}",
                    f"{100 * x['sys_share']:.0f}%",
                    " / ".join(fmt_rate(v) for v in x["cpu_rate_per_p"]),
                    " / ".join(f"{v:.2f}" for v in x["cpu_share_per_p"]),
                    f"{r['cpu_scaling']:.2f}x" if p == "2" else "",
                    f"{x['other_cpus']:.2f}",
                ]
            )
    print()
    print(
        table(
            [
                "case",
                "P",
                "per-P rate",
                "aggregate",
                "2P/1P",
                "faults/1k obj",
                "sys time",
                "per-P rate per CPU s",
                "CPU/wall",
                "2P/1P by CPU",
                "other load",
            ],
            rows,
        )
    )
    print(
        "sys time: the P's kernel share of CPU time (page faults on the shared segments). 'per CPU s' divides by the "
        "P's own CPU time (process_time), so it ignores time the P spent descheduled or asleep on a lock;\n"
        "CPU/wall below 1 means it was. 'other load': CPUs used by other processes during the timed loop "
        f"(pairs with more than {INTERFERENCE_CPUS} were redone: {redone[0]} redone, {interfered[0]} still "
        "interfered)"
    )

    lrows = []
    for key, r in results.items():
        if r["case"] == "py_slots":
            continue
        for p in ("1", "2"):
            x = r["runs"][p]
            lrows.append(
                [
                    f"{r['case']} {r['heap']}" if p == "1" else "",
                    p,
                    f"{x['objects']:,}",
                    f"{x['objs_per_span']}",
                    f"{x['expected_spans']:,}",
                    f"{x['mcentral_acq']:,}",
                    f"{ratio(x['mcentral_acq'], x['expected_spans']):.3f}",
                    f"{x['mheap_acq']:,}",
                    f"{x['mcentral_contended']:,} / {x['mheap_contended']:,}",
                    f"{ratio(x['mheap_hold_ns_total'], x['mheap_acq']) / 1e3:.1f}",
                    f"{x['mheap_wait_ns_total'] / 1e6:.1f}",
                    f"{x['wall_ms']:.0f}",
                ]
            )
    print()
    print(
        table(
            [
                "case",
                "P",
                "objects",
                "objs/span",
                "objects/(objs/span)",
                "mcentral acq",
                "acq/expected",
                "mheap acq",
                "contended mc / mh",
                "mheap hold us/acq",
                "mheap wait ms",
                "run ms",
            ],
            lrows,
        )
    )

    tiny = results["tiny_cold"]["runs"]["1"]
    print(
        f"\ntiny: new_bytes(8) is 9 bytes with its length byte, so each takes a whole 16-byte block: "
        f"{tiny['tiny_packed']:,} of {tiny['objects']:,} were packed into an existing block "
        f"({objs_per_span(2)} blocks per span)"
    )
    for key in ("py_slots", "small_struct_cold", "small_struct_warm", "small_bytes_cold", "small_bytes_warm"):
        s = results[key]
        tgt = (
            f" (target >= 1.7: {'met' if s['scaling_2p_over_1p'] >= 1.7 else 'NOT met'})"
            if key.startswith("small_struct")
            else ""
        )
        print(
            f"{s['case']} {s['heap']}: 2P/1P aggregate {s['scaling_2p_over_1p']:.2f}x{tgt}; "
            f"per repeat pair {s['scaling_by_repeat']}; by CPU time {s['cpu_scaling']:.2f}x"
        )
    if interfered[0]:
        print(
            f"WARNING: {interfered[0]} (1 P, 2 P) pair(s) ran while other processes used more than "
            f"{INTERFERENCE_CPUS} CPU: their 2 P figures are depressed"
        )
    data = {
        "counts": counts,
        "repeats": repeats,
        "first_touch": touch_res,
        "first_touch_scaling": touch_scaling,
        "cases": results,
        "target_scaling_small": 1.7,
        "redone_pairs": redone[0],
        "interfered_pairs": interfered[0],
        "machine": quiet,
    }
    write_json("bench_alloc", data, args.quick)
    return data


if __name__ == "__main__":
    main(sys.argv[1:])
