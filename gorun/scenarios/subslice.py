"""Scenario `subslice`: the sub-slice trap (seed-claims.md #7).

Each "request" reads a 10 MiB []byte and keeps 10 bytes of it: without the advice as a sub-slice
(an interior pointer into the buffer), with it as a copy into a new 10-byte slice. Measured: the
live heap after a cycle."""

from __future__ import annotations

import gorun

from . import Outcome, Row, Scenario

BUF = 10 << 20
KEEP = 10
AT = BUF // 2  # keep bytes from the middle: an interior pointer, not the buffer's start


def keep(g, buffers: int, copy: bool):
    """Return (live heap the kept slices add after a cycle, the kept bytes)."""
    g.gc()
    base = g.read_mem_stats().HeapAlloc
    kept = []
    for k in range(buffers):
        data = g.make_slice("bytes", BUF)
        data.array.write(b"id=%07d" % k, AT)  # the 10 bytes worth keeping
        part = data[AT : AT + KEEP]
        if copy:  # Go: c := make([]byte, 10); copy(c, data[...])
            part = g.append(g.make_slice("bytes", 0, KEEP), part.read())
        kept.append(part)
        del data, part
    g.gc()
    live = g.read_mem_stats().HeapAlloc - base
    return live, [p.read() for p in kept]


def run(small: bool) -> Outcome:
    buffers = 2 if small else 10
    runs, m = {}, {}
    for key, copy in (("without", False), ("with", True)):
        r = gorun.Runtime(procs=1).run(keep, buffers=buffers, copy=copy)
        m[key] = r.values[0]
        runs[key] = r.to_dict()
    (lw, kw), (li, ki) = m["without"], m["with"]
    want = [b"id=%07d" % k for k in range(buffers)]
    rows = [
        Row("bytes the program keeps", KEEP * buffers, KEEP * buffers, "bytes"),
        Row("live heap after a cycle", lw, li, "bytes"),
    ]
    held = kw == ki == want and lw >= buffers * BUF and li < 64 << 10
    verdict = (
        f"keeping {KEEP} bytes of each of {buffers} 10 MiB buffers as a sub-slice left {lw / 2**20:.1f} MiB "
        f"live after a cycle; copying them left {li:,} bytes"
    )
    note = (
        "The article keeps data[:10], whose pointer is the buffer's start; gorun keeps 10 bytes from "
        "the middle, an interior pointer, to show the collector finding the whole object from inside "
        "it (Go's findObject): either way all 10 MiB stay live. The copy is a 10-byte []byte, a tiny "
        "object in both Go and gorun; what remains after a cycle is the tiny block and the P's "
        "cached spans."
    )
    return Outcome(rows=rows, held=held, verdict=verdict, note=note, runs=runs)


SCENARIO = Scenario(
    name="subslice",
    title="the sub-slice trap",
    claim=(
        "keeping data[:10] of a 10 MB buffer keeps all 10 MB alive; copy the 10 bytes into a new slice "
        "and the buffer can be collected"
    ),
    source="seed-claims.md #7",
    run=run,
)
