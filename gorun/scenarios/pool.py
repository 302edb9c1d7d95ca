"""Scenario `pool`: sync.Pool for per-request objects (seed-claims.md #5).

A request handler allocates a 4 KiB response buffer and a record pointing at it per request,
fills them, and drops them; with the advice it takes both from a gorun.Pool, resets them and
puts them back. Two P's, GOGC=100, a small live set per P (a service's caches) so a cycle has
something to mark. Measured in each run: the handler's allocations and bytes, GC cycles, GC CPU,
the stop-the-world total and the requests per second."""

from __future__ import annotations

import time

import gorun
from gorun import _gorun

from . import Outcome, Row, Scenario

BUF_BYTES = 4096
PAYLOAD = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n" + b'{"ok":true}' * 16
LIVE_RECORDS = 1024  # per P: 1024 records with 1 KiB buffers, about 1 MiB live
PROCS = 2

Record = gorun.struct("scenPoolRecord", buf=gorun.PTR, next=gorun.PTR, id=gorun.INT, status=gorun.INT, size=gorun.INT)
RecordPool = gorun.Pool("scenario-pool-records", new=lambda g: g.new(Record))
BufferPool = gorun.Pool("scenario-pool-buffers", new=lambda g: g.new_bytes(BUF_BYTES))


def handler(g, requests: int, pooled: bool):
    """Serve `requests` requests; return (requests, objects and bytes the loop allocated, its
    seconds)."""
    cache = None  # the live set: a list of records, each with a 1 KiB buffer
    for i in range(LIVE_RECORDS):
        r = g.new(Record)
        r.buf, r.id, r.next = g.new_bytes(1024), i, cache
        cache = r
    me = _gorun.stats()["ps"][g.id]
    objs0, bytes0 = me["objects"], me["bytes"]
    t0 = time.perf_counter()
    for i in range(requests):
        if pooled:
            rec, buf = RecordPool.get(), BufferPool.get()
        else:
            rec, buf = g.new(Record), g.new_bytes(BUF_BYTES)
        rec.buf, rec.id, rec.status = buf, i, 200
        buf.write(PAYLOAD)  # render the response
        rec.size = len(PAYLOAD)
        if pooled:
            rec.buf = None  # Reset, then Put
            BufferPool.put(buf)
            RecordPool.put(rec)
    secs = time.perf_counter() - t0
    me = _gorun.stats()["ps"][g.id]
    return requests, me["objects"] - objs0, me["bytes"] - bytes0, secs


def _measure(requests: int, pooled: bool) -> tuple[dict, dict]:
    r = gorun.Runtime(procs=PROCS, gogc=100).run(handler, requests=requests, pooled=pooled)
    if r.error:
        raise gorun.RunError(f"scenario pool ({'with' if pooled else 'without'} a Pool): {r.error}", r)
    d = r.to_dict()
    secs = max(v[3] for v in r.values) or 1e-9  # the request loops ran side by side
    m = {
        "allocs": sum(v[1] for v in r.values),
        "bytes": sum(v[2] for v in r.values),
        "cycles": d["gc"]["cycles"],
        "gc_cpu": 100 * d["gc"]["cpu_fraction"],
        "stw_ms": d["gc"]["stw_total_ns"] / 1e6,
        "pause_us": d["gc"]["stw_total_ns"] / 1e3 / max(len(d["gc"]["pauses"]), 1),
        "rps": sum(v[0] for v in r.values) / secs,
    }
    return m, d


def run(small: bool) -> Outcome:
    requests = 3000 if small else 400000
    wo, dwo = _measure(requests, False)
    wi, dwi = _measure(requests, True)
    n = requests * PROCS
    rows = [
        Row("allocations per request", wo["allocs"] / n, wi["allocs"] / n, "objects"),
        Row("bytes allocated", wo["bytes"], wi["bytes"], "bytes"),
        Row("GC cycles", wo["cycles"], wi["cycles"], "cycles"),
        Row("GC CPU", wo["gc_cpu"], wi["gc_cpu"], "%"),
        Row("stop-the-world total", wo["stw_ms"], wi["stw_ms"], "ms"),
        Row("requests per second", wo["rps"], wi["rps"], "req/s"),
    ]
    held = wo["cycles"] >= 3 and wi["cycles"] * 3 <= wo["cycles"] and wi["allocs"] * 10 <= wo["allocs"]
    verdict = (
        f"with a Pool the handler allocated {wi['allocs'] / n:.3f} objects per request instead of "
        f"{wo['allocs'] / n:.1f}, and the run needed {wi['cycles']} GC cycles instead of {wo['cycles']} "
        f"(GC CPU {wi['gc_cpu']:.1f}% against {wo['gc_cpu']:.1f}%, stop-the-world {wi['stw_ms']:.2f} ms "
        f"against {wo['stw_ms']:.2f} ms)"
    )
    speed = wi["rps"] / wo["rps"] if wo["rps"] else 0.0
    note = (
        "The article's \"10x\" is a real service's response time (5 ms -> 200 ms under 150 ms GC pauses, "
        "brought back by pooling, pre-sizing and batching). gorun measures the mechanism instead: "
        f"allocations and GC cycles fall by far more than 10x and requests per second rose {speed:.2f}x, "
        "but there is no 10x in latency to win back: a gorun pause took "
        f"{wo['pause_us']:.0f} us on average here and does not grow with the heap, so no request waits "
        "150 ms; the gain is the allocator's and the collector's CPU (the GC process shares the 2 cores "
        "with the P's), and a request's remaining cost is the Python interpreter's."
    )
    return Outcome(rows=rows, held=held, verdict=verdict, note=note, runs={"without": dwo, "with": dwi})


SCENARIO = Scenario(
    name="pool",
    title="sync.Pool for per-request objects",
    claim=(
        "Pool high-frequency short-lived objects (request contexts, buffers) with sync.Pool: Get, Reset, "
        "use, Put; fewer allocations mean fewer GC cycles and less GC CPU; one article's service at "
        '50,000 requests/s went from 200 ms back to 5 ms response times ("10x") by pooling per-request '
        "objects; pooled objects survive one cycle in the victim cache, then go"
    ),
    source="seed-claims.md #5",
    run=run,
)


if __name__ == "__main__":  # until `gorun scenario pool` (issue 10's CLI): python -m gorun.scenarios.pool [--small]
    import sys

    out = run("--small" in sys.argv[1:])
    print(f"{SCENARIO.title}\nclaim ({SCENARIO.source}): {SCENARIO.claim}\n")
    print(f"{'':26s} {'without':>14s} {'with':>14s}")
    for r in out.rows:
        print(f"{r.what:26s} {r.without:14,.3f} {r.with_:14,.3f}  {r.unit}")
    print(f"\n{'held' if out.held else 'did not hold'}: {out.verdict}\n\n{out.note}")
