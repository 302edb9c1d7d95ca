"""Finalizers, cleanups and weak pointers with Go's semantics (ref §11.2-11.4; native/mfinal.c,
gorun/mfinal.py). Every run has GODEBUG=gccheckmark=1. The finalizers run at the P's safepoints:
g.gc() returns after the cycle's sweep, which queues what is due, and g.safepoint() runs it."""

from __future__ import annotations

import pytest

import gorun
from gorun import _gorun

FNode = gorun.struct("tfinNode", next=gorun.PTR, val=gorun.INT)
BIG = 8192  # a []*FNode of BIG elements is a large object: its span is freed with it


def run(fn, procs=1, **kw):
    rt = gorun.Runtime(procs=procs, godebug_env="gccheckmark=1", gogc="off", max_heap=64 << 20)
    return rt.run(fn, **kw)


def span_live(addr: int, start: int) -> bool:
    sp = _gorun.span_of(addr)
    return sp is not None and sp["state"] == 1 and sp["start"] == start


def big_object(g, tag: int):
    """A large []*FNode whose element 0 points at a node holding `tag`."""
    a = g.new_array(FNode, BIG)
    n = g.new(FNode)
    n.val = tag
    a[0] = n
    return a


def _finalizer_once(g):
    ran = []
    a = big_object(g, 1000 + g.id)
    addr = a.addr
    start = _gorun.span_of(addr)["start"]

    def fin(h):
        assert h.addr == addr
        ran.append((g.id, h[0].val))  # its referent is intact when the finalizer runs
        assert span_live(addr, start)

    g.set_finalizer(a, fin)
    for _ in range(4):  # reachable: never run
        g.gc()
        g.safepoint()
    assert ran == []
    del a
    g.gc()  # unreachable: queued at the sweep, the object resurrected
    g.safepoint()
    assert ran == [(g.id, 1000 + g.id)]
    assert span_live(addr, start), "a finalized object survives the cycle that found it unreachable"
    g.gc()  # the next cycle frees it, and the finalizer does not run again
    g.safepoint()
    assert ran == [(g.id, 1000 + g.id)]
    assert not span_live(addr, start), "the finalized object is freed by the next cycle"
    return len(ran)


def test_finalizer_runs_once_after_unreachability_and_object_freed_a_cycle_later():
    r = run(_finalizer_once)
    assert r.values == [1]
    d = r.to_dict()
    sp = d["finalizers"]
    assert sp["finalizers_queued"] == sp["finalizers_executed"] == sp["finalizers_set"] == 1
    assert sp["records_live"] == 0
    m = d["metrics"]
    assert m["/gc/finalizers/queued:finalizers"] == m["/gc/finalizers/executed:finalizers"] == 1
    assert m["/gc/cleanups/queued:cleanups"] == m["/gc/cleanups/executed:cleanups"] == 0
    assert "finalizers: 1 set, 1 queued, 1 run" in r.summary()


def _finalizers_per_p(g, n):
    ran = []
    objs = []
    for i in range(n):
        x = g.new(FNode)
        x.val = g.id * 1000 + i
        x.next = g.new(FNode)
        x.next.val = -x.val
        g.set_finalizer(x, lambda h: ran.append((h.val, h.next.val)))
        objs.append(x)
    g.gc()
    g.safepoint()
    assert ran == []
    del objs, x
    for _ in range(3):  # the other P's g.gc() may have queued them already
        g.gc()
        g.safepoint()
    assert sorted(ran) == sorted((g.id * 1000 + i, -(g.id * 1000 + i)) for i in range(n))
    return len(ran)


def test_finalizers_run_on_the_p_that_registered_them():
    """Two P's each register their own; each P's callbacks live only in its own process, so a
    record queued to the wrong P would never run there (and the counts would not add up)."""
    r = run(_finalizers_per_p, procs=2, n=50)
    assert r.values == [50, 50]
    sp = r.stats["specials"]
    assert sp["finalizers_set"] == sp["finalizers_queued"] == sp["finalizers_executed"] == 100


def _resurrect(g):
    a = big_object(g, 7)
    addr = a.addr
    start = _gorun.span_of(addr)["start"]
    runs = []

    def fin(h):
        runs.append(1)
        g.globals[0] = h  # resurrected for good: stored in a global

    g.set_finalizer(a, fin)
    del a
    g.gc()
    g.safepoint()
    assert runs == [1]
    for _ in range(3):
        g.gc()
        g.safepoint()
    assert span_live(addr, start)
    assert g.globals[0][0].val == 7, "a resurrected object and what it references stay intact"
    assert runs == [1], "a finalizer runs once"
    g.globals[0] = None
    g.gc()
    g.gc()
    assert not span_live(addr, start)
    return True


def test_resurrected_object_stays_alive():
    assert run(_resurrect).values == [True]


def _set_finalizer_errors(g):
    x = g.new(FNode)
    g.set_finalizer(x, lambda h: None)
    with pytest.raises(gorun.GorunError, match="finalizer already set"):
        g.set_finalizer(x, lambda h: None)
    a = g.new_array(gorun.INT, 4)
    with pytest.raises(gorun.GorunError, match="not at beginning"):
        g.set_finalizer(g.interior(a, 8), lambda h: None)
    with pytest.raises(TypeError):
        g.set_finalizer(x, 3)
    ran = []
    g.set_finalizer(x, None)  # removed, as Go's SetFinalizer(x, nil)
    g.set_finalizer(x, lambda h: ran.append(1))
    g.set_finalizer(x, None)
    del x
    g.gc()
    g.gc()
    g.safepoint()
    assert ran == []
    return _gorun.specials_stats()["records_live"]


def test_set_finalizer_errors_and_removal():
    assert run(_set_finalizer_errors).values == [0]


def _cleanups(g):
    got = []
    a = big_object(g, 3)
    addr = a.addr
    start = _gorun.span_of(addr)["start"]
    keep = g.new(FNode)  # reached only through a cleanup's arg: a root while the cleanup waits
    keep.val = 42
    g.add_cleanup(a, lambda arg: got.append(("first", arg)), "one")
    g.add_cleanup(a, lambda n: got.append(("second", n.val)), keep)
    stopped = g.add_cleanup(a, lambda arg: got.append(("stopped", arg)), None)
    stopped.stop()
    stopped.stop()  # a second Stop does nothing
    del keep
    with pytest.raises(gorun.GorunError, match="ptr is equal to arg"):
        g.add_cleanup(a, print, a)
    for _ in range(3):
        g.gc()
        g.safepoint()
    assert got == []
    del a
    g.gc()
    g.safepoint()
    assert sorted(got) == [("first", "one"), ("second", 42)]
    assert not span_live(addr, start), "a cleanup does not resurrect its object"
    # An object reachable from its cleanup's arg never dies, as in Go.
    x = g.new(FNode)
    y = g.new(FNode)
    y.next = x
    g.add_cleanup(x, lambda arg: got.append("cycle"), y)
    del x, y
    for _ in range(3):
        g.gc()
        g.safepoint()
    assert "cycle" not in got
    return len(got)


def test_cleanups_run_with_their_arg_and_stop_prevents_them():
    r = run(_cleanups)
    assert r.values == [2]
    sp = r.stats["specials"]
    assert sp["cleanups_queued"] == sp["cleanups_executed"] == 2
    assert sp["cleanups_added"] == 4 and sp["cleanups_stopped"] == 1


def _weak(g, cycles):
    x = g.new(FNode)
    x.val = 5
    w = g.weak(x)
    assert w == g.weak(x), "weak pointers to the same object compare equal"
    assert w != g.weak(g.new(FNode))
    for _ in range(cycles):  # held by a strong handle: never nil
        g.gc()
        v = w.value()
        assert v is not None and v.addr == x.addr and v.val == 5
    del v
    del x
    g.gc()
    assert w.value() is None, "nil after the sweep that frees the object"
    g.gc()
    assert w.value() is None
    return True


def test_weak_pointer_nil_after_the_sweep_never_before():
    assert run(_weak, cycles=10).values == [True]


def _weak_and_finalizer(g):
    x = g.new(FNode)
    x.val = 9
    w = g.weak(x)
    seen = []
    g.set_finalizer(x, lambda h: seen.append((w.value(), h.val)))
    del x
    g.gc()
    g.safepoint()
    return seen == [(None, 9)]


def test_weak_pointer_is_cleared_before_the_finalizer_runs():
    """Go clears weak handles at the sweep, before the finalizer is queued: inside the
    finalizer the object is alive again, but its weak pointer is already nil."""
    assert run(_weak_and_finalizer).values == [True]


def _churn(g, rounds, per_round):
    """Automatic cycles while this P allocates: the spans are swept by the GC process and by
    the P's own refills; finalizers and weak pointers must keep Go's rules throughout."""
    ran: dict[int, int] = {}
    held = []  # (node, weak pointer) pairs kept alive for a while
    weaks = []  # weak pointers of dropped nodes with a finalizer, by their value
    made = 0

    def fin(h):
        assert h.next.val == -h.val, "a finalizable object's referents are marked"
        ran[h.val] = ran.get(h.val, 0) + 1

    for r in range(rounds):
        for i in range(per_round):
            x = g.new(FNode)
            x.val = g.id * 10_000_000 + made
            x.next = g.new(FNode)
            x.next.val = -x.val
            made += 1
            if i % 4 == 0:
                g.set_finalizer(x, fin)
                weaks.append((x.val, g.weak(x)))
            if i % 8 == 1:
                held.append((x, g.weak(x)))
            g.new_bytes(200)  # garbage: keeps the cycles coming
        for x, w in held:
            v = w.value()
            assert v is not None and v.val == x.val, "a weak pointer is never nil while its object is reachable"
        del v
        held = held[len(held) // 2 :]
        g.safepoint()
    del x, held
    for _ in range(3):
        g.gc()
        g.safepoint()
    assert all(n == 1 for n in ran.values()), "each finalizer runs once"
    assert len(ran) == len(weaks), "every finalizer ran once its object was unreachable"
    assert all(w.value() is None for _, w in weaks)
    return len(ran)


def test_churn_with_automatic_cycles():
    rt = gorun.Runtime(procs=2, godebug_env="gccheckmark=1", gogc=50, max_heap=64 << 20)
    r = rt.run(_churn, rounds=30, per_round=400)
    assert r.values == [3000, 3000]
    d = r.to_dict()
    assert d["gc"]["cycles"] > d["gc"]["forced"], "the heap's growth started cycles too"
    sp = r.stats["specials"]
    assert sp["finalizers_queued"] == sp["finalizers_executed"] == 6000


def _finalizer_then_cleanup(g):
    x = g.new(FNode)
    order = []
    g.set_finalizer(x, lambda h: order.append("finalizer"))
    g.add_cleanup(x, order.append, "cleanup")
    del x
    g.gc()
    g.safepoint()
    first = list(order)
    g.gc()
    g.safepoint()
    return first, order


def test_a_resurrected_object_keeps_its_cleanups_until_it_dies():
    """As Go's sweep: an object revived by its finalizer loses the finalizer and its weak
    handles, and keeps its cleanups, which run once a later cycle finds it unreachable."""
    first, order = run(_finalizer_then_cleanup).values[0]
    assert first == ["finalizer"]
    assert order == ["finalizer", "cleanup"]


def _runs_without_an_explicit_safepoint(g):
    import time

    ran = []
    x = g.new(FNode)
    g.set_finalizer(x, lambda h: ran.append(1))
    del x
    g.gc()  # the sweep queues it and sends this P a SIGURG: the pending call runs it
    for i in range(10_000):
        if ran:
            return True
        time.sleep(0.001)  # plain Python: no runtime call, no g.safepoint()
    return False


def test_the_signal_runs_due_finalizers_at_a_bytecode_boundary():
    assert run(_runs_without_an_explicit_safepoint).values == [True]
