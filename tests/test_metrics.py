"""Go's names and formats: the run JSON's metrics (runtime/metrics names and units, time
histograms in Go's bucket layout), schema and timestamps, the timeline, g.read_mem_stats(),
and GODEBUG=gcpacertrace=1 lines."""

from __future__ import annotations

import json
import re

import pytest
from conftest import run_gorun

import gorun
from gorun import metrics
from gorun.gc import go_float

# Go's runtime/metrics names the JSON must carry (issue 8), with their units as Go spells them
REQUIRED = (
    "/gc/cycles/total:gc-cycles",
    "/gc/cycles/forced:gc-cycles",
    "/gc/heap/goal:bytes",
    "/gc/heap/live:bytes",
    "/gc/heap/allocs:bytes",
    "/gc/heap/allocs:objects",
    "/gc/heap/frees:objects",
    "/gc/gogc:percent",
    "/gc/gomemlimit:bytes",
    "/gc/scan/heap:bytes",
    "/gc/scan/globals:bytes",
    "/sched/pauses/total/gc:seconds",
    "/sched/pauses/stopping/gc:seconds",
    "/cpu/classes/gc/total:cpu-seconds",
    "/cpu/classes/gc/pause:cpu-seconds",
    "/cpu/classes/gc/mark/assist:cpu-seconds",
    "/memory/classes/total:bytes",
    "/memory/classes/heap/objects:bytes",
    "/sync/mutex/wait/total:seconds",
)
NAME = re.compile(
    r"^(/[a-z0-9-]+)+:(bytes|objects|gc-cycles|percent|seconds|cpu-seconds|threads|gc-cycle|finalizers|cleanups)$"
)


def _expected_time_bounds_ns():
    """Go's time-histogram boundaries derived from its rule (runtime/histogram.go): sub-bucket
    j of the first bucket starts at j << 6; for bit i in 9..47, sub-bucket j of bucket i starts
    at 2^(i-1) + j * 2^(i-3); the overflow bucket at 2^47."""
    b = [j * 64 for j in range(4)]
    for i in range(9, 48):
        b += [2 ** (i - 1) + j * 2 ** (i - 3) for j in range(4)]
    return b + [2**47]


def test_time_histogram_layout_is_gos():
    h = metrics.time_histogram([])
    assert len(h["buckets"]) == 163 and len(h["counts"]) == 162
    assert h["buckets"][0] == "-Inf" and h["buckets"][-1] == "+Inf"
    assert h["buckets"][1:-1] == [ns / 1e9 for ns in _expected_time_bounds_ns()]
    # a value lands in the bucket [b_k, b_k+1) that holds it
    for v, lo in (
        (0, 0),
        (63, 0),
        (64, 64),
        (255, 192),
        (256, 256),
        (319, 256),
        (320, 320),
        (1000, 896),
        (1024, 1024),
        (1279, 1024),
        (1280, 1280),
        (2**47 - 1, 2**46 + 3 * 2**44),
        (2**50, 2**47),
    ):
        h = metrics.time_histogram([v])
        k = h["counts"].index(1)
        assert h["buckets"][k] == lo / 1e9, (v, k)
    assert metrics.time_histogram([-5])["counts"][0] == 1  # the underflow bucket


def test_histogram_quantile_interpolates_within_the_bucket():
    h = metrics.time_histogram([1024] * 10)  # bucket [1024, 1280) ns
    assert metrics.histogram_quantile(h, 0.5) == pytest.approx(1152e-9)
    assert metrics.histogram_quantile(metrics.time_histogram([]), 0.5) == 0.0


@pytest.mark.parametrize(
    "v,text",
    [
        (0.0, "0"),
        (1.0, "1"),
        (0.25, "0.25"),
        (1e6, "1e+06"),
        (123456.0, "123456"),
        (1234567.0, "1.234567e+06"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (13.811597875244594, "13.811597875244594"),
        (-2.5, "-2.5"),
    ],
)
def test_go_float_prints_as_gos_runtime_print(v, text):
    assert go_float(v) == text


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    out = tmp_path_factory.mktemp("m") / "r.json"
    r = run_gorun("run", "binary-trees", "--procs", "2", "-p", "depth=14", "--json", str(out), timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(out.read_text())


def test_json_schema_machine_and_version(result):
    assert result["schema_version"] == 1
    assert result["gorun"]["version"] == gorun.__version__
    m = result["machine"]
    assert m["logical_cpus"] >= 1 and m["cores"] >= 1 and m["kernel"] and m["python"] and m["cpu_model"]
    assert result["start_unix_ns"] > 1.6e18


def test_metrics_names_units_and_values(result):
    m = result["metrics"]
    for name in REQUIRED:
        assert name in m, name
    for name in m:
        assert NAME.match(name), name
    g = result["gc"]
    assert m["/gc/cycles/total:gc-cycles"] == g["cycles"] >= 1
    assert m["/gc/cycles/forced:gc-cycles"] == g["forced"]
    assert m["/gc/gogc:percent"] == 100
    assert m["/gc/gomemlimit:bytes"] == 2**63 - 1
    assert m["/gc/heap/live:bytes"] == g["cycles_detail"][-1]["heap_marked"]
    assert m["/gc/heap/allocs:objects"] == result["alloc"]["objects"]  # binary-trees: no tiny objects
    assert 0 < m["/gc/heap/frees:objects"] <= m["/gc/heap/allocs:objects"]
    assert m["/sched/gomaxprocs:threads"] == 2
    for name in ("/sched/pauses/total/gc:seconds", "/sched/pauses/stopping/gc:seconds", "/gc/pauses:seconds"):
        h = m[name]
        assert sum(h["counts"]) == len(g["pauses"]), name  # one sample per pause
        assert len(h["buckets"]) == len(h["counts"]) + 1
    # the largest pause falls in the last non-empty bucket
    h = m["/sched/pauses/total/gc:seconds"]
    k = max(i for i, n in enumerate(h["counts"]) if n)
    mx = max(p["total_ns"] for p in g["pauses"]) / 1e9
    assert h["buckets"][k] <= mx < h["buckets"][k + 1]
    assert m["/cpu/classes/gc/total:cpu-seconds"] == pytest.approx(
        m["/cpu/classes/gc/mark/assist:cpu-seconds"]
        + m["/cpu/classes/gc/mark/dedicated:cpu-seconds"]
        + m["/cpu/classes/gc/mark/idle:cpu-seconds"]
        + m["/cpu/classes/gc/pause:cpu-seconds"]
    )
    assert m["/cpu/classes/gc/pause:cpu-seconds"] == pytest.approx(g["stw_total_ns"] * 2 / 1e9)


def test_timestamps_since_run_start(result):
    g = result["gc"]
    wall_ns = result["wall_s"] * 1e9
    prev = 0
    for p in g["pauses"]:
        assert prev <= p["start_ns"] < p["end_ns"] <= wall_ns
        assert p["end_ns"] - p["start_ns"] == p["total_ns"]
        for a in p["ack_ns"]:
            assert 0 <= a <= p["stop_ns"]
        prev = p["start_ns"]
    for c, nxt in zip(g["cycles_detail"], g["cycles_detail"][1:] + [None]):
        assert 0 <= c["start_ns"] < c["mark_start_ns"] < c["mark_end_ns"] <= c["sweep_end_ns"] <= c["end_ns"]
        if nxt:
            assert c["end_ns"] <= nxt["start_ns"]
        mine = [p for p in g["pauses"] if p["cycle"] == c["n"]]
        assert len(mine) == 2 and c["start_ns"] <= mine[0]["start_ns"] and mine[1]["end_ns"] <= c["mark_end_ns"]


def test_every_lock_with_full_histograms(result):
    locks = result["locks"]
    for name in ("mheap", "mcentral", "typetab"):
        lk = locks[name]
        assert len(lk["wait_hist"]) == 32 and sum(lk["wait_hist"]) == lk["contended"], name
        assert lk["wait_ns_max"] <= lk["wait_ns_total"] or lk["contended"] <= 1
    assert locks["mheap"]["acquisitions"] > 0


def test_timeline(result):
    t = result["timeline"]
    n = len(t["t_ns"])
    assert n >= 5
    for k in ("heap_live", "heap_goal", "trigger", "total_memory", "gc_cpu_ns"):
        assert len(t[k]) == n, k
    assert t["t_ns"] == sorted(t["t_ns"]) and t["gc_cpu_ns"] == sorted(t["gc_cpu_ns"])
    assert max(t["heap_live"]) > 0 and min(t["total_memory"]) > 0
    assert any(g >= 4 << 20 for g in t["heap_goal"])  # the 4 MiB minimum goal
    assert t["memory_limit"] is None
    assert t["t_ns"][-1] <= result["wall_s"] * 1e9


def _mem_stats_work(g):
    from gorun.workloads.binary_trees import Node

    keep = []
    for i in range(50_000):
        x = g.new(Node)
        if i % 10 == 0:
            keep.append(x)
    before = g.read_mem_stats()
    g.gc()
    after = g.read_mem_stats()
    return before, after


def test_read_mem_stats_has_gos_fields_and_relations():
    r = gorun.Runtime(procs=1).run(_mem_stats_work)
    before, after = r.values[0]
    for f in (
        "Alloc",
        "TotalAlloc",
        "Sys",
        "Mallocs",
        "Frees",
        "HeapAlloc",
        "HeapSys",
        "HeapIdle",
        "HeapInuse",
        "HeapReleased",
        "HeapObjects",
        "NextGC",
        "LastGC",
        "PauseTotalNs",
        "PauseNs",
        "PauseEnd",
        "NumGC",
        "NumForcedGC",
        "GCCPUFraction",
        "BySize",
    ):
        assert hasattr(after, f), f
    assert after.NumGC == before.NumGC + 1 and after.NumForcedGC == before.NumForcedGC + 1
    assert after.Mallocs >= 50_000 and after.HeapObjects == after.Mallocs - after.Frees
    assert after.HeapSys == after.HeapInuse + after.HeapIdle and after.HeapAlloc <= after.HeapInuse
    assert after.Alloc == after.HeapAlloc and after.TotalAlloc >= after.HeapAlloc
    # the forced cycle freed 9 of every 10 objects
    assert after.HeapAlloc < before.HeapAlloc
    assert after.PauseTotalNs > before.PauseTotalNs
    assert after.PauseNs[(after.NumGC - 1) % 256] > 0 and after.LastGC > 1.6e18
    assert len(after.PauseNs) == 256 and len(after.BySize) == 61
    assert 0 <= after.GCCPUFraction < 1 and after.NextGC >= 4 << 20


PACER_START = re.compile(r"^pacer: assist ratio=\S+ \(scan \d+ MB in \d+->\d+ MB\) workers=\d+\+\S+$")
PACER_MARK = re.compile(
    r"^pacer: \d+% CPU \(25 exp\.\) for \d+\+\d+\+\d+ B work \(\d+ B exp\.\) in \d+ B -> \d+ B "
    r"\(∆goal -?\d+, cons/mark \S+\)$"
)
PACER_SWEEP = re.compile(
    r"^pacer: sweep done at heap size \d+MB; allocated \d+MB during sweep; swept \d+ pages at \S+ pages/byte$"
)


def test_gcpacertrace_lines_in_gos_format():
    r = run_gorun("run", "binary-trees", "--procs", "2", "-p", "depth=12", env={"GODEBUG": "gcpacertrace=1,gctrace=1"})
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("pacer: ")]
    ncycles = sum(1 for ln in r.stderr.splitlines() if ln.startswith("gc "))
    assert ncycles >= 1 and len(lines) == 3 * ncycles
    for i in range(0, len(lines), 3):
        assert PACER_START.match(lines[i]), lines[i]
        assert PACER_MARK.match(lines[i + 1]), lines[i + 1]
        assert PACER_SWEEP.match(lines[i + 2]), lines[i + 2]
    # 2 P: Go's split of 25 % is no dedicated worker and a fractional goal of 0.25
    assert lines[0].endswith("workers=0+0.25")
    r = run_gorun("run", "binary-trees", "--procs", "1", "-p", "depth=10")
    assert "pacer:" not in r.stderr
