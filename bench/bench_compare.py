"""gorun against Go (issue 8): README's comparison table, made by `gorun compare`.

binary-trees depth 16 and GCBench at Boehm's sizes (-p stretch=18 -p long_lived=16 -p array=500000
-p max_depth=16), at P=1 and P=2, GOGC=100: each case is one `gorun compare ... --rounds R` (gorun
and Go alternating, medians of R rounds). Prints each side-by-side table, then the markdown table
for README.md and the benchstat lines (also written to bench/out/compare.benchstat.txt:
`benchstat -col /impl bench/out/compare.benchstat.txt` sets gorun beside Go). Figures, not
assertions. Without a Go toolchain it says how to get one (and writes that into its JSON).

  python bench/bench_compare.py [--quick] [--rounds R]      (make compare)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH_DIR)
sys.path.insert(0, ROOT)
sys.path.insert(0, BENCH_DIR)
import common  # noqa: E402
from gorun import compare  # noqa: E402

BOEHM = {"stretch": 18, "long_lived": 16, "array": 500000, "max_depth": 16}
QUICK = {"binary-trees": {"depth": 12}, "gcbench": {"stretch": 12, "long_lived": 10, "array": 50000, "max_depth": 10}}
FULL = {"binary-trees": {"depth": 16}, "gcbench": BOEHM}


def command(workload: str, procs: int, params: dict, rounds: int, path: str) -> list[str]:
    args = ["gorun", "compare", workload, "--procs", str(procs)]
    for k, v in params.items():
        args += ["-p", f"{k}={v}"]
    return args + ["--rounds", str(rounds), "--json", path]


def run_case(workload: str, procs: int, params: dict, rounds: int) -> dict:
    os.makedirs(common.OUT_DIR, exist_ok=True)
    path = os.path.join(common.OUT_DIR, f"compare-{workload}-P{procs}.json")
    cmd = command(workload, procs, params, rounds, path)
    print(f"\n$ GOGC=100 {' '.join(cmd[:-2])}", flush=True)
    env = dict(os.environ, GOGC="100", PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    for k in ("GOMEMLIMIT", "GODEBUG", "GOMAXPROCS"):
        env.pop(k, None)
    p = subprocess.run([sys.executable, "-m", *cmd], env=env, stdout=subprocess.PIPE, text=True)
    print(p.stdout, end="", flush=True)
    if p.returncode != 0:
        raise SystemExit(p.returncode)
    with open(path) as f:
        return json.load(f)


def _us(ns: float) -> str:
    return f"{ns / 1e3:.0f}"


def _mib(b: float) -> str:
    return f"{b / 2**20:.0f}"


def readme_table(docs: list[dict]) -> str:
    head = (
        "| workload | P | | wall s | allocs/s | cycles | GC CPU | pause p50 / p99 / max (us) "
        "| time to stop p50 / p99 (us) | peak MiB |"
    )
    lines = [head, "|---|---|---|---|---|---|---|---|---|---|"]
    for d in docs:
        t = d["table"]
        name = f"{d['workload']} {' '.join(f'{k}={v}' for k, v in d['params'].items())}"
        for impl, label in (("gorun", "gorun"), ("go", "Go")):
            v = {f: t[f][impl] for f in t}
            lines.append(
                f"| {name if impl == 'gorun' else ''} | {d['procs'] if impl == 'gorun' else ''} | {label} "
                f"| {v['wall_s']:.3f} | {v['allocs_per_s'] / 1e6:.2f} M | {v['cycles']:g} "
                f"| {100 * v['gc_cpu_fraction']:.1f}% "
                f"| {_us(v['pause_total_ns.p50'])} / {_us(v['pause_total_ns.p99'])} / {_us(v['pause_total_ns.max'])} "
                f"| {_us(v['pause_stop_ns.p50'])} / {_us(v['pause_stop_ns.p99'])} | {_mib(v['peak_bytes'])} |"
            )
        r = t["wall_s"]["ratio"]
        lines.append(
            f"| | | gorun/Go | {r:.1f}x | {t['allocs_per_s']['ratio']:.2f}x | | | | | {t['peak_bytes']['ratio']:.1f}x |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes, one round")
    ap.add_argument("--rounds", type=int, default=None, help="rounds per case (default 3; 1 with --quick)")
    ap.add_argument("--wait", type=float, default=None, help="wait up to S s for an idle machine (default 30)")
    a = ap.parse_args(argv)
    rounds = a.rounds or (1 if a.quick else 3)
    common.header("gorun against Go (gorun compare)", a.quick)
    try:
        go, version, _ = compare.prepare()  # build once, before any timing
    except compare.NoToolchain as e:
        print(f"bench_compare: nothing measured: {e}")
        common.write_json("bench_compare", {"go_unavailable": str(e)}, a.quick)
        return 0
    print(f"toolchain: {go} ({version})")
    wait = a.wait if a.wait is not None else (3.0 if a.quick else 30.0)
    sizes = QUICK if a.quick else FULL
    docs = []
    for workload in ("binary-trees", "gcbench"):
        for procs in (1, 2):
            if wait > 0:
                common.wait_quiet(timeout=wait)  # before each case: the machine is shared
            docs.append(run_case(workload, procs, sizes[workload], rounds))
    print("\n## gorun against Go (medians of %d rounds each, GOGC=100)\n" % rounds)
    table = readme_table(docs)
    print(table)
    bench_lines = []
    for d in docs:
        base = "".join(w.capitalize() for w in d["workload"].split("-"))
        bench_lines += compare.benchstat_lines(d, base)
    text = f"goos: linux\ngoarch: amd64\npkg: gorun/compare\ngoversion: {version}\n" + "\n".join(bench_lines) + "\n"
    path = os.path.join(common.OUT_DIR, "compare.benchstat.txt")
    with open(path, "w") as f:
        f.write(text)
    print(f"\n## benchstat lines ({os.path.relpath(path)})\n")
    print(text, end="")
    common.write_json(
        "bench_compare",
        {
            "go_version": version,
            "rounds": rounds,
            "cases": [
                {k: d[k] for k in ("workload", "procs", "params", "rounds", "table", "go_version")} for d in docs
            ],
            "readme_table": table,
        },
        a.quick,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
