"""spike: the container story of the articles (seed-claims.md, claim 2), shaped as Go's floor run.

A service holds `live` bytes of live data as 1 KiB []byte chunks in one pointer array, serves
`churn` bytes of short-lived 1 KiB garbage, then a load spike grows the live data to `grow`, and
`churn` more garbage follows. P0 owns the live set; the garbage is split over the P's. The phases
are ordered across the P's through global slots (a P waiting for the next phase sleeps inside
``g.blocking()``, so it never holds up a stop-the-world):

  1. P0 fills chunks [0, live/1KiB); the others wait.
  2. every P allocates churn/nprocs bytes of garbage.
  3. P0, once every P has finished phase 2, fills chunks up to grow/1KiB; the others wait.
  4. every P allocates churn/nprocs bytes of garbage again.

A chunk is a 1 KiB object (8-byte header + 1016 bytes of payload), so the heap holds exactly
`live` bytes of chunks, as Go's 1 KiB size class would. At GOGC=100 the heap goal follows the
live set to twice its size; under a container limit the spike is what the kernel's OOM killer
sees, unless GOMEMLIMIT makes the GC work harder as the heap nears the limit.
"""

from __future__ import annotations

import time

from .. import _gorun
from . import Param, register

CHUNK = 1024  # bytes per chunk object, header included
CHUNK_PAYLOAD = CHUNK - _gorun.constants()["obj_header_size"]
G_LIVE, G_PHASE1, G_GROWN = 0, 1, 2  # global slots: the live array, phase flags
G_CHURN1 = 3  # G_CHURN1 + P id: that P finished phase 2
WAIT_S = 0.001


def _check(p: dict) -> str | None:
    if p["grow"] < p["live"]:
        return f"grow must be >= live (live={p['live']!r}, grow={p['grow']!r})"
    return None


def _wait(g, cond) -> None:
    while not cond():
        with g.blocking():
            time.sleep(WAIT_S)
        if g.expired():
            return


def _churn(g, nbytes: int) -> int:
    new_bytes = g.new_bytes
    n = nbytes // CHUNK
    for i in range(n):
        new_bytes(CHUNK_PAYLOAD)
        if g.expired():
            return i + 1
    return n


@register(
    limits={"live": Param("size", CHUNK), "grow": Param("size", CHUNK), "churn": Param("size", 0)},
    check=_check,
)
def spike(g, live: int = 16 << 20, grow: int = 24 << 20, churn: int = 64 << 20):
    """A live set of `live` bytes in 1 KiB []byte chunks held in a pointer array, `churn` bytes
    of 1 KiB garbage, the live set grown to `grow`, `churn` more garbage; the garbage split over
    the P's. Needs at least nprocs + 3 global slots. Returns chunks allocated per phase."""
    if len(g.globals) < G_CHURN1 + g.nprocs:
        raise ValueError(f"spike needs {G_CHURN1 + g.nprocs} global slots, the run has {len(g.globals)}")
    n_live, n_grow = live // CHUNK, grow // CHUNK
    out = {"live_chunks": 0, "grown_chunks": 0, "churn_chunks": 0}
    share = churn // g.nprocs + (churn % g.nprocs if g.id == 0 else 0)
    globs = g.globals
    if g.id == 0:
        arr = g.new_array("ptr", n_grow)
        globs[G_LIVE] = arr
        new_bytes = g.new_bytes
        for i in range(n_live):
            arr[i] = new_bytes(CHUNK_PAYLOAD)
        out["live_chunks"] = n_live
        globs[G_PHASE1] = g.new_bytes(1)
    else:
        _wait(g, lambda: globs[G_PHASE1] is not None)
    out["churn_chunks"] += _churn(g, share)
    globs[G_CHURN1 + g.id] = g.new_bytes(1)
    if g.id == 0:
        _wait(g, lambda: all(globs[G_CHURN1 + p] is not None for p in range(g.nprocs)))
        arr = globs[G_LIVE]
        new_bytes = g.new_bytes
        for i in range(n_live, n_grow):
            arr[i] = new_bytes(CHUNK_PAYLOAD)
        out["grown_chunks"] = n_grow - n_live
        globs[G_GROWN] = g.new_bytes(1)
    else:
        _wait(g, lambda: globs[G_GROWN] is not None)
    out["churn_chunks"] += _churn(g, share)
    return out
