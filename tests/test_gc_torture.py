"""GC torture: several P's mutate random graphs through globals across hundreds of cycles with
gccheckmark on; every reachable object is verified (id, checksum, blob contents) by walks at
random moments. Nothing reachable may ever be freed or reused."""

from __future__ import annotations

import pytest

import gorun
from conftest import BUILD
from gorun.workloads.graph import graph

# Cycles come from the P's forced g.gc() calls (concurrent requests share a cycle) and from the
# trigger, so their number depends on how long a cycle takes against the mutators' steps. The
# debug build (heap walks at every mark termination) and the sanitizer build have slower cycles
# and run the same steps in about 3/4 of the cycles (normal build: 219-257 for the 200 test).
CYCLE_SHARE = 0.75 if BUILD["debug"] or BUILD["sanitize"] else 1.0


def torture(procs: int, steps: int, min_cycles: int, gogc: int = 5, gc_every: int = 0):
    rt = gorun.Runtime(procs=procs, gogc=gogc, godebug_env="gccheckmark=1", seed=procs * 7 + steps)
    r = rt.run(graph, steps=steps, verify_every=2000, gc_every=gc_every)
    d = r.to_dict()
    assert all(v["walks"] >= steps // 2000 for v in r.values)
    assert all(v["checked"] > 0 for v in r.values)
    assert d["gc"]["cycles"] >= int(min_cycles * CYCLE_SHARE), d["gc"]["cycles"]
    assert d["gc"]["freed_objects"] > 0
    return d


def test_torture_two_ps_200_cycles():
    torture(procs=2, steps=150000, min_cycles=200, gogc=5, gc_every=1500)


def test_torture_three_ps_oversubscribed():
    torture(procs=3, steps=60000, min_cycles=50, gogc=5, gc_every=2000)


@pytest.mark.stress
def test_torture_soak():
    torture(procs=4, steps=4000000, min_cycles=2000, gogc=5, gc_every=5000)
