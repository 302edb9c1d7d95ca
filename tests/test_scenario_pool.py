"""The `pool` scenario (gorun/scenarios/pool.py) at its CI size: real runs without and with a
sync.Pool, and its verdict."""

from __future__ import annotations

from gorun import scenarios


def test_pool_scenario_small_holds():
    sc = scenarios.get("pool")
    assert sc.source == "seed-claims.md #5" and "10x" in sc.claim
    out = sc.run(True)
    rows = {r.what: r for r in out.rows}
    assert out.held, out.verdict
    assert rows["allocations per request"].without == 2.0  # a record and a buffer per request
    assert rows["allocations per request"].with_ < 0.01  # New only on the first Gets
    assert rows["GC cycles"].without >= 3 * max(rows["GC cycles"].with_, 1)
    assert rows["bytes allocated"].with_ * 100 < rows["bytes allocated"].without
    assert set(out.runs) == {"without", "with"}
    pools = out.runs["with"]["pools"]
    assert pools["scenario-pool-buffers"]["hits"] >= 0.99 * pools["scenario-pool-buffers"]["gets"]
    assert out.runs["without"]["pools"] == {} or all(p["gets"] == 0 for p in out.runs["without"]["pools"].values())
    assert "10x" in out.note
