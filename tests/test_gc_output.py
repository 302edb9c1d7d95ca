"""GC output: gctrace lines in Go's format, the summary and the --json keys, GOGC handling."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# go-runtime.md 10.1: gc N @T s U%: A+B+C ms clock, D+E/F/G+H ms cpu, X->Y->Z MB, W MB goal,
# S MB stacks, L MB globals, P P [(forced)]
NUM = r"[0-9]+(?:\.[0-9]+)?"
GCTRACE = re.compile(
    rf"^gc (\d+) @({NUM})s (\d+)%: {NUM}\+{NUM}\+{NUM} ms clock, {NUM}\+{NUM}/{NUM}/{NUM}\+{NUM} ms cpu, "
    rf"(\d+)->(\d+)->(\d+) MB, (\d+) MB goal, 0 MB stacks, \d+ MB globals, (\d+) P( \(forced\))?$"
)


def gorun_cli(*args, env=None):
    e = dict(os.environ)
    e.update(env or {})
    e["PYTHONPATH"] = str(ROOT) + os.pathsep + e.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-m", "gorun", *args], capture_output=True, text=True, env=e, timeout=120)


def test_gctrace_lines_match_go_format(tmp_path):
    out = tmp_path / "r.json"
    r = gorun_cli(
        "run",
        "binary-trees",
        "--procs",
        "2",
        "-p",
        "depth=12",
        "--json",
        str(out),
        env={"GODEBUG": "gctrace=1", "GOGC": "50"},
    )
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("gc ")]
    assert lines, r.stderr
    for i, ln in enumerate(lines, 1):
        m = GCTRACE.match(ln)
        assert m, ln
        assert int(m.group(1)) == i and m.group(8) == "2"
    d = json.loads(out.read_text())
    assert d["gc"]["cycles"] == len(lines)
    assert d["gc"]["gogc"] == 50
    # binary-trees prints the benchmarks-game check lines
    assert "stretch tree of depth 13\t check: 16383" in r.stdout
    assert "long lived tree of depth 12\t check: 8191" in r.stdout


def test_json_gc_keys(tmp_path):
    out = tmp_path / "r.json"
    r = gorun_cli(
        "run",
        "gcbench",
        "--procs",
        "2",
        "-p",
        "stretch=12",
        "-p",
        "long_lived=10",
        "-p",
        "max_depth=10",
        "--json",
        str(out),
    )
    assert r.returncode == 0, r.stderr
    g = json.loads(out.read_text())["gc"]
    assert g["cycles"] >= 1 and len(g["cycles_detail"]) == g["cycles"]
    assert len(g["pauses"]) == 2 * g["cycles"]
    kinds = {p["kind"] for p in g["pauses"]}
    assert kinds == {"sweep termination", "mark termination"}
    for p in g["pauses"]:
        assert 0 < p["stop_ns"] <= p["total_ns"]
        assert len(p["ack_ns"]) == 2
    assert 0 < g["cpu_fraction"] < 1
    for c in g["cycles_detail"]:
        for k in ("heap_start", "heap_end", "heap_marked", "goal", "mark_ns", "forced", "mark_cpu_ns", "assist_ns"):
            assert k in c
        assert c["mark_ns"] > 0
    # a cycle that starts after the workers finished marks nothing; the others mark the live data
    assert any(c["heap_marked"] > 0 for c in g["cycles_detail"])
    assert "pause total p50" in r.stdout and "time to stop p50" in r.stdout


def test_gogc_off_from_environment_and_bad_flag():
    r = gorun_cli("run", "alloc", "--procs", "1", "-p", "budget=8MiB", env={"GOGC": "off"})
    assert r.returncode == 0, r.stderr
    assert "no cycle ran (GOGC=off)" in r.stdout
    r = gorun_cli("run", "alloc", "--gogc", "fast")
    assert r.returncode == 2
    assert "GOGC" in r.stderr and "fast" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = gorun_cli("run", "alloc", env={"GODEBUG": "gctrace=x"})
    assert r.returncode == 2 and "gctrace=x" in r.stderr


@pytest.mark.parametrize(
    "ns,text",
    [
        (0, "0"),
        (999, "0"),
        (1_000, "0.001"),
        (5_000, "0.005"),
        (20_000, "0.020"),
        (99_000, "0.099"),
        (99_999, "0.099"),
        (100_000, "0.10"),
        (150_000, "0.15"),
        (999_999, "0.99"),
        (1_234_567, "1.2"),
        (2_000_000, "2.0"),
        (9_990_000, "9.9"),
        (10_000_000, "10"),
        (123_456_789, "123"),
    ],
)
def test_gctrace_times_print_as_gos_fmtnsasms(ns, text):
    # Go: whole ms from 10 ms up; else two significant digits of the truncated microseconds,
    # at most three decimals (20 us -> 0.020, 2 ms -> 2.0)
    from gorun.gc import _ms

    assert _ms(ns) == text
