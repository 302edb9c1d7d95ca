"""Run every gorun benchmark in sequence and print a markdown summary for README.md.

    python3 bench/run_all.py            # full run (about 2-3 minutes on a 2-CPU machine)
    python3 bench/run_all.py --quick    # smoke run (seconds)
    make bench                          # the same as the first, in the project's venv

Each benchmark runs in its own process (so each gets a fresh interpreter and heap) and writes
bench/out/<name>.json; this script prints their output as it comes, then a compact markdown
table built from the JSON files, also written to bench/out/summary.md. Figures, not assertions:
the exit status is non-zero only if a benchmark crashed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
OUT_DIR = os.path.join(BENCH_DIR, "out")
BENCHES = [
    "bench_new",
    "bench_alloc",
    "bench_contention",
    "bench_locks",
    "bench_gc",
    "bench_memlimit",
    "bench_trace",
    "bench_pool",
    "bench_compare",
]


def load(name: str) -> dict | None:
    try:
        with open(os.path.join(OUT_DIR, f"{name}.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def rate(x: float) -> str:
    return f"{x / 1e6:.2f} M/s" if x >= 1e6 else f"{x / 1e3:.0f} k/s"


def ns(x: float) -> str:
    if x >= 1e6:
        return f"{x / 1e6:.1f} ms"
    if x >= 1e3:
        return f"{x / 1e3:.1f} us"
    return f"{x:.0f} ns"


def summary(results: dict, cmd: str, timings: dict) -> str:
    rows = []  # (benchmark, measured, target / floor)
    d = results.get("bench_new")
    if d:
        a, f = d["alloc"], d["fields"]
        g = lambda c: a[c]["ns_per_op"]  # noqa: E731
        h = lambda c: f[c]["ns_per_op"]  # noqa: E731
        rows.append(
            [
                "`g.new(T)` (PTR, PTR, INT) vs `__slots__` class instance, 1 P",
                f"{g('new_T'):.0f} vs {g('slots_T'):.0f} ns/object: **{d['ratio_new_vs_slots']:.2f}x** "
                f"(net of loop {d['ratio_new_vs_slots_net']:.2f}x)",
                "<= 1.5x",
            ]
        )
        rows.append(
            [
                "`g.new_bytes(8)` / `g.new_bytes(100)` (vs `bytearray`)",
                f"{g('new_bytes8'):.0f} / {g('new_bytes100'):.0f} ns "
                f"({g('bytearray8'):.0f} / {g('bytearray100'):.0f} ns)",
                "",
            ]
        )
        rows.append(
            [
                "handle field: int set / int get / ptr set / ptr get (vs slots)",
                f"{h('h_int_set'):.0f} / {h('h_int_get'):.0f} / {h('h_ptr_set'):.0f} / {h('h_ptr_get'):.0f} ns "
                f"({h('s_int_set'):.0f} / {h('s_int_get'):.0f} / {h('s_ptr_set'):.0f} / {h('s_ptr_get'):.0f} ns)",
                "",
            ]
        )
    d = results.get("bench_alloc")
    if d:
        c = d["cases"]

        def sc(key):
            x = c[key]
            rng = x.get("scaling_by_repeat") or []
            spread = f", pairs {min(rng):.2f}-{max(rng):.2f}" if len(rng) > 1 else ""
            return (
                f"{rate(x['runs']['1']['aggregate_rate'])} -> {rate(x['runs']['2']['aggregate_rate'])}: "
                f"**{x['scaling_2p_over_1p']:.2f}x** (by CPU time {x['cpu_scaling']:.2f}x{spread})"
            )

        if "py_slots" in c:
            rows.append(
                [
                    "reference: the same harness creating Python `__slots__` objects, 2 P / 1 P",
                    sc("py_slots"),
                    "(this VM's 2-vCPU ceiling)",
                ]
            )
        rows.append(["small alloc `g.new(T)`, 2 P / 1 P aggregate (cold heap)", sc("small_struct_cold"), ">= 1.7x"])
        rows.append(["  same, arena pages pre-populated (warm)", sc("small_struct_warm"), ">= 1.7x"])
        rows.append(
            [
                "small alloc `new_bytes(100)`, 2 P / 1 P, cold; warm",
                f"{sc('small_bytes_cold')}; {sc('small_bytes_warm')}",
                "",
            ]
        )
        rows.append(["tiny `new_bytes(8)`, 2 P / 1 P, cold; warm", f"{sc('tiny_cold')}; {sc('tiny_warm')}", ""])
        rows.append(["large `new_bytes(64 KiB)`, 2 P / 1 P", f"{sc('large_cold')}", ""])
        x = c["small_struct_cold"]["runs"]["2"]
        y = c["small_bytes_cold"]["runs"]["2"]
        rows.append(
            [
                "mcentral acquisitions / (objects / objects-per-span), 2 P",
                f"g.new(T): {x['mcentral_acq']:,} / {x['expected_spans']:,} = "
                f"{x['mcentral_acq'] / x['expected_spans']:.3f}; new_bytes(100): "
                f"{y['mcentral_acq'] / y['expected_spans']:.3f}",
                "~1",
            ]
        )
        if d.get("interfered_pairs"):
            rows.append(["(alloc pairs disturbed by other processes)", f"{d['interfered_pairs']}", "0"])
        t = d["first_touch"]
        rows.append(
            [
                "machine: first touch of a shared 4 KiB page, 1 P / 2 P aggregate",
                f"{t['1']['us_per_page']:.1f} us; 2 P/1 P {d['first_touch_scaling']:.2f}x",
                "2.4 us",
            ]
        )
    d = results.get("bench_contention")
    if d:
        w = d["wait_per_acq"]
        for kind in ("futex", "pthread", "sem"):
            mc, mh = w.get(f"{kind}/mcentral"), w.get(f"{kind}/mheap")
            if mc and mh:
                rows.append(
                    [
                        f"contention, {kind}: wait per acquisition at 1 / 2 / 4 P: mcentral (bypass); mheap",
                        " / ".join(ns(mc[p]) for p in ("1", "2", "4"))
                        + "; "
                        + " / ".join(ns(mh[p]) for p in ("1", "2", "4")),
                        "grows with P",
                    ]
                )
    d = results.get("bench_locks")
    if d:
        k = d["kinds"]
        p = d.get("probe") or {}
        bare = (
            " (bare primitive here: " + " / ".join(f"{p[x]:.0f}" for x in ("futex", "pthread", "sem")) + " ns)"
            if all(x in p for x in ("futex", "pthread", "sem"))
            else ""
        )
        rows.append(
            [
                "uncontended lock+unlock, C loop: futex / robust pthread / sem",
                " / ".join(f"{k[x]['c_loop_ns']:.0f}" for x in ("futex", "pthread", "sem")) + " ns" + bare,
                "19 / 30 / - ns",
            ]
        )
        rows.append(
            [
                "uncontended lock+unlock from Python (2 calls): futex / pthread / sem; posix_ipc",
                " / ".join(f"{k[x]['py_ns']:.0f}" for x in ("futex", "pthread", "sem"))
                + f" ns; {d['posix_ipc']['py_ns']:.0f} ns",
                "24 / 48 / 158 ns (1 call)",
            ]
        )
        bare2 = (
            ("; bare primitive here " + " / ".join(f"{p['two_' + x]:.0f}" for x in ("futex", "pthread", "sem")))
            if all("two_" + x in p for x in ("futex", "pthread", "sem"))
            else ""
        )
        rows.append(
            [
                "2 processes on one lock, M ops/s, C loop; Python: futex / pthread / sem",
                " / ".join(f"{k[x]['two_proc_c']['mops']:.1f}" for x in ("futex", "pthread", "sem"))
                + "; "
                + " / ".join(f"{k[x]['two_proc_py']['mops']:.1f}" for x in ("futex", "pthread", "sem"))
                + f"; posix_ipc {d['posix_ipc']['two_proc_mops']:.1f}"
                + bare2,
                "10.6 / 6.6 / 1.8 M ops/s (Python)",
            ]
        )
    d = results.get("bench_gc")
    if d:
        pv = d.get("pause_vs_heap")
        if pv:
            sizes = sorted(int(k) for k in pv if k.isdigit())
            a, b = pv[str(sizes[0])], pv[str(sizes[-1])]
            rows.append(
                [
                    f"GC pause total p99 at {a['marked_mib']:.0f} MiB vs {b['marked_mib']:.0f} MiB live (procs 1, {a['n']} pauses each); p50; STW work p99",
                    f"{a['p99'] / 1e3:.0f} us vs {b['p99'] / 1e3:.0f} us: **{pv['ratio_p99']:.2f}x**; "
                    f"{a['p50'] / 1e3:.0f} vs {b['p50'] / 1e3:.0f} us; "
                    f"{a['work_p99'] / 1e3:.0f} vs {b['work_p99'] / 1e3:.0f} us",
                    "<= 1.5x",
                ]
            )
        wl = d.get("workloads") or {}
        for key, r in wl.items():
            name, procs = key.split("/")
            g = r.get("go_us")  # measured by bench_gc through gorun.compare
            go = (
                f"{g['pause_total_ns.p50']:.0f} / {g['pause_total_ns.p99']:.0f} / {g['pause_total_ns.max']:.0f}; "
                f"stop {g['pause_stop_ns.p50']:.0f} / {g['pause_stop_ns.p99']:.0f}"
                if g
                else "- (no Go toolchain)"
            )
            rows.append(
                [
                    f"GC pauses {name}, {procs} P ({r['cycles']} cycles): total p50 / p99 / max; time to stop p50 / p99 (us)",
                    f"{r['p50'] / 1e3:.0f} / {r['p99'] / 1e3:.0f} / {r['max'] / 1e3:.0f}; stop "
                    f"{r['stop_p50'] / 1e3:.0f} / {r['stop_p99'] / 1e3:.0f}; GC CPU {100 * r['cpu_fraction']:.1f}%",
                    f"Go: {go}" + ("; target p50 <= 100, p99 <= 1000" if procs == "2" else ""),
                ]
            )
        mk = d.get("mark")
        if mk:
            rows.append(
                [
                    "mark throughput per thread: allocation order; random order",
                    f"{mk['alloc']['objs_per_s'] / 1e6:.1f} M obj/s ({mk['alloc']['mb_per_s']:.0f} MB/s); "
                    f"{mk['random']['objs_per_s'] / 1e6:.1f} M obj/s ({mk['random']['mb_per_s']:.0f} MB/s)",
                    ">= 20 M obj/s (alloc order); floors 32-34 / 24 M",
                ]
            )
        st = d.get("store")
        if st:
            rows.append(
                [
                    "pointer store from Python: barrier off / on (Python slots attribute)",
                    f"{st['off_ns']:.0f} / {st['on_ns']:.0f} ns ({st['slots_ns']:.0f} ns)",
                    "",
                ]
            )
    d = results.get("bench_memlimit")
    if d:
        st = d.get("story")
        if st:
            for c in st["cases"]:
                where = f", container {c['container']}" if c["container"] else ""
                peak = c["peak_container_mib"] if c["container"] else c["peak_sampled_mib"]
                go = (st.get("go") or {}).get("off" if c["limit"] == "off" else "limit")  # measured by compare
                rows.append(
                    [
                        f"spike {st['sizes']['live'] >> 20}->{st['sizes']['grow'] >> 20} MiB live, 2 P, "
                        f"GOMEMLIMIT={c['limit']}{where}: ended; peak ({'cgroup' if c['container'] else 'sampled'}) "
                        "/ mapped MiB; cycles; GC CPU; pause p50/p99 us",
                        f"{'ok' if c['ok'] else 'OOM-killed' if 'OOM' in c['error'] else c['error'][:40]}; "
                        f"{peak} / {c['peak_mapped_mib']}; {c['cycles']}; {100 * c['gc_cpu_fraction']:.1f}%; "
                        f"{c['pause_p50_us']}/{c['pause_p99_us']}",
                        (f"Go: {go['peak_mib']} MiB, {go['cycles']:g} cycles" if go else "Go: - (no toolchain)")
                        + ("; target peak <= 900 MiB" if c["limit"] != "off" else ""),
                    ]
                )
        sc = d.get("scavenger")
        if sc:
            for key, c in sc.items():
                rows.append(
                    [
                        f"scavenger ({key}): live {c['live_from_mib']} -> {c['live_to_mib']} MiB, arena MiB; "
                        "seconds to within 1.2x of the retained goal",
                        f"{c['arena_before_mib']} -> {c['arena_end_mib']} (goal {c['retained_goal_mib']}); "
                        f"{c['seconds_to_1_2x'] if c['seconds_to_1_2x'] is not None else '> 10'} s",
                        "< 2 s",
                    ]
                )
        pc = d.get("pacer")
        if pc:
            rows.append(
                [
                    "pacer, steady 16 MiB live, 2 P, GOGC 50 / 100 / 200: heap at end of mark / goal p50, p95; "
                    "heap / live p50 / p95 / max",
                    "; ".join(
                        f"{g}: {v['heap_over_goal_p50']}, {v['heap_over_goal_p95']} ({v['heap_over_live_p50']} / "
                        f"{v['heap_over_live_p95']} / {v['heap_over_live_max']}x)"
                        for g, v in pc.items()
                    ),
                    "p50 0.95-1.05; <= 2.2x live at GOGC=100",
                ]
            )
    d = results.get("bench_compare")
    if d:
        if d.get("go_unavailable"):
            rows.append(["gorun against Go (`gorun compare`)", "not measured: " + d["go_unavailable"], ""])
        for c in d.get("cases", []):
            t = c["table"]
            us = lambda f, impl: f"{t[f][impl] / 1e3:.0f}"  # noqa: E731
            rows.append(
                [
                    f"gorun vs Go: {c['workload']} {' '.join(f'{k}={v}' for k, v in c['params'].items())}, "
                    f"{c['procs']} P (medians of {c['rounds']}): wall s; allocs/s; pause p50 / p99 us; peak MiB",
                    f"{t['wall_s']['gorun']:.2f} vs {t['wall_s']['go']:.3f} ({t['wall_s']['ratio']:.0f}x); "
                    f"{rate(t['allocs_per_s']['gorun'])} vs {rate(t['allocs_per_s']['go'])}; "
                    f"{us('pause_total_ns.p50', 'gorun')} / {us('pause_total_ns.p99', 'gorun')} vs "
                    f"{us('pause_total_ns.p50', 'go')} / {us('pause_total_ns.p99', 'go')}; "
                    f"{t['peak_bytes']['gorun'] / 2**20:.0f} vs {t['peak_bytes']['go'] / 2**20:.0f}",
                    f"Go: {c['go_version'].split()[2] if len(c['go_version'].split()) > 2 else c['go_version']}",
                ]
            )
    d = results.get("bench_trace")
    if d:
        rc, sz = d["recording"], d["size"]
        rows.append(
            [
                f"--trace cost: binary-trees -p depth={d['depth']}, 2 P, recording off / on "
                f"({d['rounds']} interleaved rounds)",
                f"{rate(rc['off_rate'])} / {rate(rc['on_rate'])}: **{rc['ratio']:.3f}x**; per CPU second "
                f"{rate(rc['cpu_off_rate'])} / {rate(rc['cpu_on_rate'])}: {rc['cpu_ratio']:.3f}x "
                f"(load average {rc['loadavg']:.1f})",
                ">= 0.98x",
            ]
        )
        rows.append(
            [
                f"--trace size of a {sz['seconds']:.0f} s 2-P binary-trees run",
                f"{sz['bytes'] / 1e6:.1f} MB as JSON, {sz['proto_bytes'] / 1e6:.1f} MB as Perfetto protobuf "
                f"(the default); {sz['events']:,} events, {sz['lost']} lost",
                "< 50 MB",
            ]
        )
        ec = d.get("event_cost")
        if ec:
            rows.append(
                [
                    "--trace: one event (refill hooks) on / off; share of a CPU at the size run's event rate",
                    f"{ec['on_ns']:.0f} / {ec['off_ns']:.1f} ns; {100 * ec['cpu_share']:.3f} % "
                    f"({ec['events_per_s']:,.0f} events/s)",
                    "cost <= 2 %",
                ]
            )
    d = results.get("bench_pool")
    if d:
        for key, label in (
            ("pool_T", "sync.Pool Get+Put pair vs g.new(T), 48-byte struct, 1 P (private slot)"),
            ("pool_T_ring", "sync.Pool Get+Put pair through the shared ring (pool lock) vs g.new(T)"),
            ("pool_buf", "sync.Pool Get+Put pair vs g.new_bytes(4096), 1 P"),
        ):
            c = d.get(key)
            if c:
                rows.append(
                    [
                        label,
                        f"{c['ns_per_pair']:.0f} ns ({c['pairs_per_s'] / 1e6:.2f} M pairs/s) vs {c['new_ns']:.0f} ns "
                        f"({c['news_per_s'] / 1e6:.2f} M/s)",
                        "",
                    ]
                )
    env = next((r["env"] for r in results.values() if r), {})
    quick = any(r.get("quick") for r in results.values() if r)
    lines = [
        f"Benchmarks{' (QUICK smoke run: rough figures)' if quick else ''}: `{cmd}` on "
        f"{env.get('cpus', '?')} CPUs, CPython {env.get('python', '?')}, Linux {env.get('kernel', '?')}, "
        f"gorun {env.get('gorun', '?')} ({env.get('git', '?')}), {env.get('time', '')}. "
        "Figures from one run each; floors from shared/reference/floors.md.",
        "",
        "| benchmark | measured | target / floor |",
        "|---|---|---|",
    ]
    lines += ["| " + " | ".join(str(x).replace("|", "\\|") for x in r) + " |" for r in rows]
    lines += ["", "Run time: " + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items())]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="short smoke run of every benchmark")
    p.add_argument(
        "--wait",
        type=float,
        default=None,
        metavar="S",
        help="passed on: wait up to S s for an idle machine before each benchmark (0: don't)",
    )
    args = p.parse_args(argv)
    passthrough = (["--quick"] if args.quick else []) + ([f"--wait={args.wait}"] if args.wait is not None else [])
    os.makedirs(OUT_DIR, exist_ok=True)
    for name in BENCHES:  # never summarize a stale file from an earlier run
        try:
            os.remove(os.path.join(OUT_DIR, f"{name}.json"))
        except FileNotFoundError:
            pass
    timings, failed = {}, []
    t_all = time.monotonic()
    for name in BENCHES:
        t0 = time.monotonic()
        rc = subprocess.call([sys.executable, os.path.join(BENCH_DIR, f"{name}.py"), *passthrough])
        timings[name] = time.monotonic() - t0
        print(f"[{name}: {timings[name]:.1f}s{'' if rc == 0 else f', FAILED with exit status {rc}'}]\n", flush=True)
        if rc != 0:
            failed.append(name)
    timings["total"] = time.monotonic() - t_all
    results = {name: load(name) for name in BENCHES}
    cmd = "python3 bench/run_all.py" + (" " + " ".join(passthrough) if passthrough else "")
    text = summary(results, cmd, timings)
    if failed:
        text += f"\nFAILED: {', '.join(failed)} (see the output above)\n"
    with open(os.path.join(OUT_DIR, "summary.md"), "w") as f:
        f.write(text)
    print("=" * 100)
    print(text)
    print(f"(written to {os.path.relpath(os.path.join(OUT_DIR, 'summary.md'))})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
