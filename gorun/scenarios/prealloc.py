"""Scenario `prealloc`: pre-size slices (seed-claims.md #6).

n ints appended one at a time with Go's append (gorun/slices.py), to make([]int, 0) against
make([]int, 0, n). Measured: the allocations and bytes the loop made, and the capacities."""

from __future__ import annotations

import gorun
from gorun import _gorun
from gorun.slices import growslice_cap

from . import Outcome, Row, Scenario


def fill(g, n: int, presize: bool):
    """Return (allocations, bytes allocated, capacity growths, final cap, sum of the elements)."""
    me = _gorun.stats()["ps"][g.id]
    objs0, bytes0 = me["objects"], me["bytes"]
    s = g.make_slice("int", 0, n if presize else 0)
    grows, append = 0, g.append
    for i in range(n):
        cap = s.cap
        s = append(s, i)
        grows += s.cap != cap
    me = _gorun.stats()["ps"][g.id]
    return me["objects"] - objs0, me["bytes"] - bytes0, grows, s.cap, sum(s)


def go_growths(n: int) -> int:
    """How many times Go's append grows a []int from empty to n elements."""
    cap, k = 0, 0
    while cap < n:
        cap = growslice_cap(cap + 1, cap, 8, True)
        k += 1
    return k


def run(small: bool) -> Outcome:
    n = 1000 if small else 1_000_000
    runs, m = {}, {}
    for key, presize in (("without", False), ("with", True)):
        r = gorun.Runtime(procs=1).run(fill, n=n, presize=presize)
        m[key] = r.values[0]
        runs[key] = r.to_dict()
    (ow, bw, gw, cw, sw), (oi, bi, gi, ci, si) = m["without"], m["with"]
    go = go_growths(n)
    rows = [
        Row("allocations", ow, oi, "objects"),
        Row("bytes allocated", bw, bi, "bytes"),
        Row("final capacity", cw, ci, "elements"),
    ]
    held = oi == 1 and gi == 0 and ow == gw == go and bw > bi and sw == si == n * (n - 1) // 2
    verdict = (
        f"appending {n:,} ints to make([]int, 0) allocated {ow} times ({bw / 2**20:.2f} MiB, Go's "
        f"growslice sequence to cap {cw:,}); to make([]int, 0, {n:,}) once ({bi / 2**20:.2f} MiB)"
    )
    note = (
        "The capacities are Go's exactly (twice below 256 elements, then towards 1.25x, rounded up "
        "to the size class); each allocation is 8 bytes larger than Go's (gorun's object header), so "
        "the bytes are Go's plus 8 per allocation, rounded to gorun's size class. The copying the "
        "article mentions is counted in the bytes allocated, not timed."
    )
    return Outcome(rows=rows, held=held, verdict=verdict, note=note, runs=runs)


SCENARIO = Scenario(
    name="prealloc",
    title="pre-sizing slices",
    claim=(
        "appending to make([]int, 0) in a loop reallocates and copies as the capacity doubles; "
        "make([]int, 0, 1000) allocates once"
    ),
    source="seed-claims.md #6",
    run=run,
)
