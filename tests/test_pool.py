"""sync.Pool (native/pool.c, gorun/pool.py): Get's order across real P processes with exact
counts, the victim generation across GC cycles, the pool slots as roots under gccheckmark, and
bad use."""

from __future__ import annotations

import pytest

import gorun
from gorun import _gorun

Rec = gorun.struct("tpoolRec", buf=gorun.PTR, sig=gorun.INT, magic=gorun.INT)
MAGIC = 0x5EED
MAX_POOLS = _gorun.constants()["max_pools"]
CAP = _gorun.constants()["pool_shared_cap"]

Plain = gorun.Pool("tpool-plain")  # no New: a miss returns None


def run(fn, procs=1, godebug="gccheckmark=1", **kw):
    rt = gorun.Runtime(
        procs=procs,
        godebug_env=godebug,
        **{k: kw.pop(k) for k in list(kw) if k in ("gogc", "max_heap")},
    )
    r = rt.run(fn, **kw)
    assert not r.error, r.error
    return r


def wait_global(g, i):
    while g.globals[i] is None:
        g.safepoint()


def labelled(g, label: int):
    b = g.new_bytes(16)
    b.write(bytes([label]) * 16)
    return b


def label_of(h) -> int:
    data = h.read()
    assert data == data[:1] * len(data), "a pooled buffer's contents changed"
    return data[0]


def test_private_shared_and_steal_paths_exact_counts():
    """P0 fills its private slot and shared ring; P1 steals from the ring's tail; P0 gets its
    private object, then its shared head (LIFO); misses after. No cycle runs (GOGC=off)."""

    def work(g):
        if g.id == 0:
            for i in range(10):
                Plain.put(labelled(g, i))  # 0 -> private, 1..9 -> shared (tail 1, head 9)
            g.globals[0] = g.new_bytes(1)
            wait_global(g, 1)
            got = [label_of(Plain.get())]  # private: 0
            assert Plain.get() is None  # everything shared was stolen, no victim: a miss
            for i in (20, 21, 22):
                Plain.put(labelled(g, i))  # 20 private, 21 and 22 shared
            got += [label_of(Plain.get()) for _ in range(3)]  # private 20, then head 22, then 21
            return got
        wait_global(g, 0)
        got = [label_of(Plain.get()) for _ in range(9)]  # steals from P0's tail: 1..9 in order
        assert Plain.get() is None
        g.globals[1] = g.new_bytes(1)
        return got

    r = run(work, procs=2, gogc="off")
    assert r.values[0] == [0, 20, 22, 21]
    assert r.values[1] == list(range(1, 10))
    d = r.to_dict()
    p = d["pools"]["tpool-plain"]
    p0, p1 = p["per_p"]
    assert p0 == {
        "gets": 5,
        "puts": 13,
        "hits_private": 2,
        "hits_shared": 2,
        "steals": 0,
        "victim_hits": 0,
        "misses": 1,
        "overflows": 0,
    }
    assert p1 == {
        "gets": 10,
        "puts": 0,
        "hits_private": 0,
        "hits_shared": 0,
        "steals": 9,
        "victim_hits": 0,
        "misses": 1,
        "overflows": 0,
    }
    assert (p["gets"], p["hits"], p["misses"], p["steals"], p["dropped"], p["cleanups"]) == (15, 13, 2, 9, 0, 0)
    assert d["pools_total"]["gets"] == 15 and d["pools_total"]["puts"] == 13
    assert "pools: 1 (tpool-plain): 15 gets (13 hits: 2 private, 2 shared, 9 stolen, 0 victim; 2 misses)" in (
        r.summary()
    )


def test_new_is_called_with_g_on_a_miss_and_a_full_ring_overflows():
    New = gorun.Pool("tpool-new", new=lambda g: labelled(g, 100 + g.id))

    def work(g):
        first = label_of(New.get())  # a miss: new(g)
        for i in range(CAP + 3):  # private + CAP shared, then 2 overflow
            New.put(labelled(g, i))
        return first

    r = run(work, gogc="off")
    assert r.values == [100]
    p = r.to_dict()["pools"]["tpool-new"]
    assert (p["gets"], p["misses"], p["puts"], p["overflows"], p["pooled"]) == (1, 1, CAP + 3, 2, CAP + 1)


def test_victim_survives_one_cycle_and_is_dropped_and_freed_after_two():
    Big = gorun.Pool("tpool-big")
    size = 1 << 20  # a large object: its own span, freed whole when collected

    def work(g):
        b = g.new_bytes(size)
        b.write(b"\x07" * size)
        Big.put(b)
        del b
        g.gc()  # cycle 1: primary -> victim; a root, so it survives
        s1 = _gorun.pool_stats()[0]
        again = Big.get()  # from the victim
        ok = again.read() == b"\x07" * size
        Big.put(again)
        del again
        g.gc()  # -> victim
        pages1 = _gorun.stats()["mheap"]["pages_inuse"]
        s2 = _gorun.pool_stats()[0]
        g.gc()  # unused for two cycles: dropped, and this cycle's sweep frees it
        pages2 = _gorun.stats()["mheap"]["pages_inuse"]
        s3 = _gorun.pool_stats()[0]
        miss = Big.get()
        return ok, s1, s2, s3, pages1 - pages2, miss

    ok, s1, s2, s3, freed_pages, miss = run(work, gogc="off").values[0]
    assert ok
    assert (s1["pooled"], s1["victim"], s1["dropped"]) == (0, 1, 0)
    assert s2["per_p"][0]["victim_hits"] == 1
    assert (s2["pooled"], s2["victim"], s2["dropped"]) == (0, 1, 0)
    assert (s3["pooled"], s3["victim"], s3["dropped"]) == (0, 0, 1)
    assert freed_pages >= size // _gorun.constants()["page_size"]
    assert miss is None


def test_nothing_pooled_is_freed_torture_across_ps_gogc25_checkmark():
    """Two P's get, verify, rewrite and put records (a struct pointing at a buffer) through one
    pool while allocating garbage at GOGC=25 with gccheckmark: a pooled record that were freed
    would be reused and its signature broken, and checkmark fails on a pooled object left white."""
    Recs = gorun.Pool("tpool-recs")

    def fresh(g, sig):
        r = g.new(Rec)
        r.buf = g.new_bytes(48)
        r.buf.write(bytes([sig % 256]) * 48)
        r.sig, r.magic = sig, MAGIC
        return r

    def work(g, n=2500):
        rng = g.random
        held, checked, made = [], 0, 0
        for i in range(n):
            for _ in range(rng.randrange(4)):
                r = Recs.get()
                if r is None:
                    made += 1
                    r = fresh(g, rng.randrange(1 << 20))
                else:
                    assert r.magic == MAGIC, f"pooled record overwritten: magic {r.magic:#x}"
                    assert r.buf.read() == bytes([r.sig % 256]) * 48, "pooled buffer overwritten"
                    checked += 1
                    sig = rng.randrange(1 << 20)  # reset and reuse, as Get/Reset/Put
                    r.buf.write(bytes([sig % 256]) * 48)
                    r.sig = sig
                held.append(r)
            while len(held) > 3:
                Recs.put(held.pop(rng.randrange(len(held))))
            for _ in range(8):
                g.new(Rec).buf = g.new_bytes(200)  # garbage that drives cycles
        for r in held:
            Recs.put(r)
        return checked, made

    r = run(work, procs=2, gogc=25, n=2500)
    d = r.to_dict()
    assert d["gc"]["cycles"] >= 5
    assert sum(c["checked"] for c in r.stats["gc"]["cycles"]) > 0  # checkmark ran
    p = d["pools"]["tpool-recs"]
    assert sum(v[0] for v in r.values) == p["hits"] > 0
    assert sum(v[1] for v in r.values) == p["misses"]
    assert p["cleanups"] == d["gc"]["cycles"]
    assert p["hits"] == p["hits_private"] + p["hits_shared"] + p["steals"] + p["victim_hits"]


def test_bad_use_raises_clear_errors():
    def work(g):
        errs = []
        for bad in (None, 42, "x"):
            try:
                Plain.put(bad)
            except TypeError as e:
                errs.append(str(e))
        with g.blocking():
            try:
                Plain.get()
            except gorun.GorunError as e:
                errs.append(str(e))
        try:
            for i in range(MAX_POOLS + 1):
                gorun.Pool(f"tpool-many-{i}").get()
        except gorun.GorunError as e:
            errs.append(str(e))
        return errs

    errs = run(work).values[0]
    assert len(errs) == 5
    assert all("Pool.put takes a gorun handle" in e for e in errs[:3])
    assert "NoneType" in errs[0] and "int" in errs[1]
    assert "g.blocking()" in errs[3]
    assert f"too many pools: a run has at most {MAX_POOLS}" in errs[4]
    with pytest.raises(ValueError, match="name"):
        gorun.Pool("x" * 48)
    with pytest.raises(TypeError, match="callable"):
        gorun.Pool("ok", new=3)
    with pytest.raises(gorun.GorunError):  # the launcher is no P
        Plain.get()


def test_every_slot_write_goes_through_the_write_barrier(heap):
    """With the barrier on, a Put into a slot and a Get out of one each log one (old, new) entry
    (the insertion and deletion halves the marker relies on); a miss writes nothing."""
    _gorun.set_p(0)
    pid = _gorun.pool_register("tpool-wb")
    x, y = _gorun.new_bytes(16), _gorun.new_bytes(16)

    def entries():
        return _gorun.stats()["ps"][0]["wb_entries"]

    e0 = entries()
    _gorun.pool_put(pid, x)  # barrier off: a plain store
    assert entries() == e0
    assert _gorun.pool_get(pid) == x
    _gorun.debug_set_barrier(True)
    try:
        _gorun.pool_put(pid, x)  # the private slot: (0, x)
        _gorun.pool_put(pid, y)  # the shared ring, under the pool's lock: (0, y)
        assert entries() == e0 + 2
        assert _gorun.pool_get(pid) == x  # (x, 0)
        assert _gorun.pool_get(pid) == y  # (y, 0)
        assert _gorun.pool_get(pid) is None  # a miss writes no slot
        assert entries() == e0 + 4
    finally:
        _gorun.debug_set_barrier(False)


def _pool_in_place(g):
    mk = lambda g: g.new_bytes(64)  # noqa: E731  one source line: one pool in every P
    p = g.pool(new=mk)
    assert g.pool(new=mk) is p and g.pool(name=p.name) is p
    for _ in range(500):
        p.put(p.get())
    return p.name


def test_g_pool_declared_in_the_workload_is_one_pool_for_every_p():
    r = gorun.Runtime(procs=2).run(_pool_in_place)
    names = r.values
    assert names[0] == names[1]
    st = r.to_dict()["pools"][names[0]]
    assert st["gets"] == st["puts"] == 1000
    assert [pp["gets"] for pp in st["per_p"]] == [500, 500]
    assert st["misses"] == 2  # one new(g) per P, then its private slot
    with pytest.raises(gorun.RunError, match=r"TypeError: g.pool\(\) needs new=fn or a name"):
        gorun.Runtime(procs=1).run(lambda g: g.pool())
