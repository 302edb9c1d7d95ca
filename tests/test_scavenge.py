"""The scavenger and the memory-limit hooks of the C core, in real allocations: a standalone heap
whose P 0 is this process (no GC process, so nothing else allocates or scavenges), and real runs
(worker processes, a GC process, a full collection by g.gc()).

- an allocation that leaves mapped_ready over the memory limit scavenges the excess itself
  (Go's allocSpan), unless the GC CPU limiter is on;
- memory handed out again after a collection and a scavenge reads as zero, small and large
  objects alike, and the memory classes add up."""

from __future__ import annotations

import gorun
from gorun import _gorun

PAGE = _gorun.constants()["page_size"]
NO_LIMIT = _gorun.constants()["max_memory_limit"]


def test_allocation_over_the_memory_limit_scavenges_synchronously(heap):
    _gorun.set_p(0)  # this process allocates as P 0 (the fixture detaches it at the end)
    p = _gorun.pages_alloc(1000)  # grows the heap by 2 chunks, every page reserved
    _gorun.pages_free(p, 1000)  # 1023 free pages, none released
    m0 = _gorun.memstats()
    assert m0["heap_free"] == 1023 * PAGE and m0["heap_released"] == 0
    limit = m0["mapped_ready"] - (2 << 20)
    assert _gorun.set_memory_limit(limit) == NO_LIMIT

    _gorun.gc_set_limiter(True)  # the GC CPU limiter is on: allocations do not scavenge
    a = _gorun.new_bytes(100_000)  # a large object: a span of 13 pages from the free ones
    m1 = _gorun.memstats()
    assert m1["scav_sync_bytes"] == 0 and m1["heap_released"] == 0
    assert _gorun.gc_state()["scav_assist_ns"] == 0

    _gorun.gc_set_limiter(False)
    b = _gorun.new_bytes(100_000)  # over the limit: this allocation returns the excess
    m2 = _gorun.memstats()
    assert m2["scav_sync_bytes"] >= 2 << 20
    assert m2["scav_sync_bytes"] == m2["heap_released"] == m2["scav_released_bytes"]
    assert m2["mapped_ready"] <= limit < m1["mapped_ready"]
    assert m2["heap_released"] < (2 << 20) + 64 * 1024 + 26 * PAGE, "about the excess, not everything"
    assert _gorun.gc_state()["scav_assist_ns"] > 0

    assert _gorun.set_memory_limit(NO_LIMIT) == limit  # no limit: allocations never scavenge
    c = _gorun.new_bytes(100_000)
    assert _gorun.memstats()["scav_sync_bytes"] == m2["scav_sync_bytes"]
    assert bytes(a) == bytes(b) == bytes(c) == bytes(100_000)
    del a, b, c


Junk = gorun.struct("tscavJunk", next=gorun.PTR, pad=gorun.BYTES(1000))


def test_memory_reused_after_a_collection_and_a_scavenge_reads_zero():
    def work(g):
        big = [g.new_bytes(b"\xab" * 200_000) for _ in range(40)]  # 25 pages each
        small = [g.new_bytes(b"\xcd" * 1000) for _ in range(3000)]  # 1 KiB slots
        chain = None
        for _ in range(2000):  # scan objects, with a pointer each
            x = g.new(Junk)
            x.pad = b"\xef" * 1000
            x.next = chain
            chain = x
        del big, small, chain, x
        g.gc()  # frees every span of it
        released = _gorun.scavenge(1 << 40)
        m0 = _gorun.memstats()
        big = [g.new_bytes(200_000) for _ in range(40)]
        small = [g.new_bytes(1000) for _ in range(3000)]
        junk = [g.new(Junk) for _ in range(2000)]
        bad = sum(bytes(h) != bytes(len(h)) for h in big + small)
        bad += sum(j.next is not None or bytes(j.pad) != bytes(1000) for j in junk)
        return released, bad, m0, _gorun.memstats(), _gorun.stats()["mheap"]

    r = gorun.Runtime(procs=1, gogc="off").run(work)
    released, bad, m0, m1, mheap = r.values[0]
    assert released >= 40 * 25 * PAGE, "the freed large objects' pages were released"
    assert bad == 0, "memory handed out again kept old data"
    assert m1["scav_reused_bytes"] > m0["scav_reused_bytes"], "the new objects reused released pages"
    for m in (m0, m1):
        classes = [k for k in m if k.startswith("/memory/classes/") and k != "/memory/classes/total:bytes"]
        assert sum(m[k] for k in classes) == m["/memory/classes/total:bytes"] == m["sys_bytes"]
        assert m["mapped_ready"] == m["sys_bytes"] - m["heap_released"]
        assert m["consistent"]
    assert m0["heap_released"] >= released  # (a background scavenger of the GC process may add some)
    assert mheap["released_pages"] * PAGE == m1["heap_released"] and mheap["sys_bytes"] == m1["sys_bytes"]
