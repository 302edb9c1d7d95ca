"""Handles are roots: each live handle holds one slot of its P's root table in shared memory and
frees it when CPython frees the handle, so the table's live count always equals the number of
live handles, and freed slots are reused (the high-water mark stays at the peak)."""

from __future__ import annotations

import gc

import pytest

import gorun
from gorun import INT, PTR, _gorun

RNode = gorun.struct("RootNode", next=PTR, val=INT)


def _roots(g):
    p = _gorun.stats()["ps"][g.id]
    return p["root_live"], p["root_hwm"]


def _churn(g, rounds: int):
    """Make and drop handles of every kind in loops; check the table at every checkpoint."""
    assert _roots(g) == (0, 0), "no handle exists when the workload starts"
    head = g.new(RNode)  # a list in the heap, to make handles by reading pointer fields
    for i in range(50):
        x = g.new(RNode)
        x.val = i
        x.next = head.next
        head.next = x
    del x
    g.globals[0] = head
    base_live, base_hwm = _roots(g)
    assert base_live == 1, "only `head` is alive"
    rng = g.random
    live = []  # may hold the same handle twice: a list reference is not a new handle
    peak = 0
    checkpoints = 0

    def nlive():
        return len({id(h) for h in live})

    def check():
        nonlocal checkpoints
        got, hwm = _roots(g)
        assert got == base_live + nlive(), f"root_live {got} != {base_live} + {nlive()} live handles"
        assert hwm <= base_hwm + peak, f"root_hwm {hwm} exceeds the peak of {peak} live handles"
        checkpoints += 1

    check()
    for r in range(rounds):
        k = rng.randrange(1, 300)
        for _ in range(k):
            c = rng.randrange(7)
            if c == 0:
                h = g.new(RNode)
            elif c == 1:
                h = g.new_bytes(rng.randrange(1, 15))  # tiny
            elif c == 2:
                h = g.new_bytes(rng.randrange(15, 40000))  # small or large
            elif c == 3:
                h = g.new_array("int", rng.randrange(0, 100))
            elif c == 4:
                h = head.next  # a new handle for an existing object
            elif c == 5:
                h = g.globals[0]  # likewise, from a global
            else:
                h = live[rng.randrange(len(live))] if live else g.new(RNode)
            live.append(h)
            peak = max(peak, nlive())
        del h
        check()
        # temporaries: made and dropped within one expression
        assert head.next.next.val >= 0
        assert sum(len(g.new_bytes(5)) for _ in range(20)) == 100
        check()
        # drop a random part, sometimes nearly everything
        rng.shuffle(live)
        del live[rng.randrange(0, len(live)) if rng.random() < 0.8 else 1 :]
        check()
    # a handle kept alive by a reference cycle stays a root until the cycle is collected
    cyc = [g.new(RNode)]
    cyc.append(cyc)
    with_cycle = _roots(g)[0]
    assert with_cycle == base_live + nlive() + 1
    gc.disable()
    try:
        del cyc
        assert _roots(g)[0] == with_cycle, "the unreachable handle is still alive, so still a root"
    finally:
        gc.enable()
    gc.collect()
    check()
    live.clear()
    check()
    del head
    return checkpoints, peak, _roots(g), (base_live, base_hwm)


def test_root_table_counts_exactly_the_live_handles():
    res = gorun.Runtime(procs=2, seed=3).run(_churn, rounds=60)
    for checkpoints, peak, (live, hwm), (base_live, base_hwm) in res.values:
        assert checkpoints == 3 + 3 * 60
        assert live == 0, "every handle dropped: the table is empty"
        assert base_hwm < hwm <= base_hwm + peak
    # after the run the workers are gone, but the table they left says the same
    for p, (_, _, (live, hwm), _) in zip(res.stats["ps"], res.values):
        assert p["root_live"] == live and p["root_hwm"] == hwm


def _fill(g, slots: int):
    hs = [g.new(RNode) for _ in range(slots)]
    assert _roots(g) == (slots, slots)
    try:
        g.new(RNode)
        return "no error when the table is full"
    except gorun.GorunError as e:
        msg = str(e)
    after_fail = _roots(g)
    hs.pop()
    hs.append(g.new_bytes(3))  # the freed slot is reused
    return msg, after_fail, _roots(g)


def test_full_root_table_raises_and_recovers():
    msg, after_fail, after_reuse = gorun.Runtime(procs=1, root_slots=256).run(_fill, slots=256).values[0]
    assert "root table" in msg and "full" in msg and "256" in msg
    assert after_fail == (256, 256), "a failed handle takes no slot"
    assert after_reuse == (256, 256)


def test_handles_need_a_p(heap):
    # the test process has a heap attached but is not a P: it can make no handles
    with pytest.raises(gorun.GorunError, match="not a gorun P"):
        _gorun.new_bytes(10)
    with pytest.raises(gorun.GorunError, match="not a gorun P"):
        _gorun.global_set(0, None)
