"""Go's sync.Pool over the shared heap (native/pool.c; docs/design.md "sync.Pool").

Declare a pool like a type, at module level, before the run; every P of a run shares it by its
name::

    BufPool = gorun.Pool("bufs", new=lambda g: g.new_bytes(4096))

    def handler(g, n=1000):
        for _ in range(n):
            buf = BufPool.get()      # pooled object, or new(g) on a miss (None without new)
            ...                      # reset and use it
            BufPool.put(buf)         # a handle; None or anything else raises TypeError

Get looks, as Go's does, in this P's private slot, then its shared ring's head, then steals from
the tail of another P's ring, then the victim generation; then calls ``new(g)``. Each GC cycle
(in STW 1) drops the victim and makes the primary the victim, so an object unused for two
cycles is freed. Counters are in the run's JSON (``pools``, ``pools_total``) and summary.
"""

from __future__ import annotations

import functools
import weakref

from . import _gorun

MAX_NAME = 47  # poolhdr_t.name, NUL included, is 48 bytes
POOL_FIELDS = ("gets", "puts", "hits_private", "hits_shared", "steals", "victim_hits", "misses", "overflows")

_current = None  # weakref to this worker's Context (set by Context.__init__), for new(g)


def set_current(ctx) -> None:
    global _current
    _current = weakref.ref(ctx)


def current():
    """This worker's Context (the g passed to New), or None outside a workload."""
    return _current() if _current is not None else None


class Pool:
    """sync.Pool: ``Pool(name, new=None)``; ``get()`` and ``put(h)`` from a workload.

    The first ``get`` or ``put`` in a worker registers the pool in the run's shared memory and
    binds both to the C calls (``functools.partial`` of ``_gorun.pool_get`` / ``pool_put`` with
    the pool's id, ``new`` and this P's context), so later calls cost one C call each. A worker
    is a fresh fork per run, so the binding never outlives its run."""

    def __init__(self, name: str, new=None):
        if not isinstance(name, str) or not 1 <= len(name.encode()) <= MAX_NAME:
            raise ValueError(f"a pool's name is a string of 1 to {MAX_NAME} bytes, not {name!r}")
        if new is not None and not callable(new):
            raise TypeError(f"Pool new must be a callable new(g) or None, not {type(new).__name__}")
        self.name = name
        self.new = new

    def _bind(self) -> None:
        g = current()
        if g is None:
            raise _gorun.GorunError(f"{self!r} used outside a workload: Get and Put run on a P")
        pid = _gorun.pool_register(self.name)
        self.__dict__["get"] = functools.partial(_gorun.pool_get, pid, self.new, g)  # shadows the methods
        self.__dict__["put"] = functools.partial(_gorun.pool_put, pid)

    def get(self):
        """A pooled object's handle; on a miss ``new(g)``, or None without ``new`` (Go's Get)."""
        self._bind()
        return self.get()

    def put(self, h) -> None:
        """Pool h (a handle; Go's Put). A full shared ring drops it: counted as an overflow.
        None or anything but a handle raises TypeError."""
        self._bind()
        self.put(h)

    def __repr__(self) -> str:
        return f"gorun.Pool({self.name!r})"


def pools_dict(raw: list | None) -> tuple[dict, dict]:
    """The run JSON's ``pools`` ({name: counters}) and ``pools_total`` from _gorun.pool_stats()."""
    pools = {}
    for p in raw or []:
        c = {k: sum(pp[k] for pp in p["per_p"]) for k in POOL_FIELDS}
        c["hits"] = c["gets"] - c["misses"]
        c["dropped"] = p["dropped"]
        c["cleanups"] = p["cleanups"]
        c["pooled"] = p["pooled"]
        c["victim"] = p["victim"]
        c["lock"] = {k: p["lock"][k] for k in ("acquisitions", "contended", "wait_ns_total", "wait_ns_max")}
        c["per_p"] = p["per_p"]
        pools[p["name"]] = c
    keys = (*POOL_FIELDS, "hits", "dropped", "pooled", "victim")
    total = {k: sum(c[k] for c in pools.values()) for k in keys}
    return pools, total
