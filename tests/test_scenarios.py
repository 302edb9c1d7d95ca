"""The scenarios (gorun/scenarios/): every one runs at its CI size (--small) with real runs and
its verdict is checked; the CLI lists them, prints the table and writes the JSON; bad input is
one line and exit 2 before anything runs."""

from __future__ import annotations

import json

import pytest
from conftest import live_children, run_gorun

from gorun import container as ctr
from gorun import scenarios
from gorun.scenarios import container as container_scenario

MINE = ["padding", "subslice", "prealloc", "gogc"]


def test_discovery_and_get():
    found = scenarios.all_scenarios()
    assert set(MINE) | {"container"} <= set(found)
    for name, sc in found.items():
        assert sc.name == name and sc.title and sc.claim and sc.source and callable(sc.run)
        assert scenarios.get(name) is sc
    with pytest.raises(KeyError, match="known: .*padding"):
        scenarios.get("nope")


@pytest.mark.slow
@pytest.mark.parametrize("name", MINE)
def test_scenario_holds_at_the_small_size(name):
    o = scenarios.get(name).run(True)
    assert o.held, (o.verdict, o.rows)
    assert o.rows and o.verdict and o.note
    assert set(o.runs) and all(r["schema_version"] == 1 for r in o.runs.values())
    assert live_children() == []


@pytest.mark.slow
def test_padding_figures():
    rows = {r.what: r for r in scenarios.get("padding").run(True).rows}
    assert (rows["unsafe.Sizeof"].without, rows["unsafe.Sizeof"].with_) == (24, 16)
    n = 100_000
    live = rows[f"live heap after a cycle ({n:,} objects)"]
    assert live.without - live.with_ == pytest.approx(8 * n, rel=0.02)
    assert rows["bytes allocated"].without == 32 * n and rows["bytes allocated"].with_ == 24 * n


@pytest.mark.slow
def test_container_scenario_holds_or_says_why_not():
    why = ctr.probe()
    if why is not None:
        pytest.skip(f"no memory cgroup: {why}")
    o = container_scenario.run(True)
    assert o.held, (o.verdict, o.rows)
    rows = {r.what: r for r in o.rows}
    assert (
        rows["OOM-killed by the container (1 = yes)"].without,
        rows["OOM-killed by the container (1 = yes)"].with_,
    ) == (1, 0)


@pytest.mark.slow
def test_container_scenario_without_a_cgroup_runs_the_memory_limit_half():
    o = container_scenario.run(True, why="no memory controller (as the test says)")
    assert o.held, (o.verdict, o.rows)
    assert "No memory cgroup here (no memory controller (as the test says))" in o.note
    assert not any("OOM-killed" in r.what for r in o.rows)
    assert all(r["memory"]["container"]["limit_bytes"] is None for r in o.runs.values())


def test_cli_lists_the_scenarios():
    r = run_gorun("scenarios")
    assert r.returncode == 0, r.stderr
    for name in MINE + ["container"]:
        assert f"\n{name}: " in "\n" + r.stdout


@pytest.mark.slow
def test_cli_runs_one_and_writes_json(tmp_path):
    out = tmp_path / "prealloc.json"
    r = run_gorun("scenario", "prealloc", "--small", "--json", str(out), timeout=120)
    assert r.returncode == 0, r.stderr
    assert "claim (seed-claims.md #6)" in r.stdout and "without" in r.stdout and "\nheld: " in r.stdout
    assert "allocations" in r.stdout and "note: " in r.stdout
    d = json.loads(out.read_text())
    assert {k: d[k] for k in ("schema_version", "kind", "name", "small", "held")} == {
        "schema_version": 1,
        "kind": "scenario",
        "name": "prealloc",
        "small": True,
        "held": True,
    }
    assert set(d) == {"schema_version", "kind", "name", "title", "claim", "source", "small", "rows", "held",
                      "verdict", "note", "runs"}  # fmt: skip
    assert d["rows"][0] == {"what": "allocations", "without": 12, "with": 1, "unit": "objects"}
    assert set(d["runs"]) == {"without", "with"} and d["runs"]["with"]["schema_version"] == 1


@pytest.mark.parametrize(
    "args,msg",
    [
        (["scenario", "nope"], "gorun: error: unknown scenario 'nope' (known: "),
        (["scenario", "padding", "--json", "/nonexistent-dir/x.json"], "gorun: error: bad --json"),
        (["scenario", "padding", "--bogus"], "gorun: error: unrecognized arguments: --bogus"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(args, msg):
    r = run_gorun(*args)
    assert r.returncode == 2
    assert r.stderr.startswith(msg) and r.stderr.count("\n") == 1, r.stderr
    assert r.stdout == ""
