"""The mutator context `g` a workload receives in each worker process (one per P)."""

from __future__ import annotations

import random
import time

import numpy as np

from . import _gorun, mfinal, pool
from .slices import append, make_slice
from .types import array_tid


class Globals:
    """Shared root slots every P sees (Go's package-level pointer variables).
    ``g.globals[i] = h`` stores through the write barrier; ``g.globals[i]`` returns a handle."""

    __slots__ = ("_n",)

    def __init__(self, n: int):
        self._n = n

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i: int):
        return _gorun.global_get(i)

    def __setitem__(self, i: int, h) -> None:
        _gorun.global_set(i, h)


class _Blocking:
    __slots__ = ()

    def __enter__(self):
        _gorun.blocking_enter()
        return self

    def __exit__(self, *exc):
        _gorun.blocking_exit()
        _gorun.safepoint()  # what came due while blocked (finalizers, cleanups) runs now
        return False


class Context:
    """What a workload function receives: ``fn(g, **params)``.

    g.id, g.nprocs       this P's id and the number of P's
    g.params             the run's parameters (also passed as keyword arguments)
    g.rng, g.random      numpy Generator and random.Random seeded with (seed, P id)
    g.new(T)             a zeroed object of struct type T, as a handle
    g.new_bytes(n|data)  a noscan byte buffer (buffer protocol, read(), write())
    g.new_array(e, n)    []int, []float, []ptr or []*T for a struct type T
    g.globals            shared root slots
    g.safepoint()        poll for GC requests (call it in long loops)
    g.gc()               run a full GC cycle and wait for it, sweep included (runtime.GC)
    with g.blocking():   a blocking call (sleep, I/O): this P counts as stopped meanwhile
    g.copy(d, i, s, j, n) copy n elements between arrays (pointer arrays: bulk write barrier)
    g.make_slice(e, n, cap=None) a Go slice ([]int, []float, []ptr, []*T or 'bytes'): len(s),
                         s[i], s.cap, s[a:b] sharing the backing array (gorun.slices.Slice)
    g.append(s, *vs)     Go's append: the new slice, grown by Go's growslice rule when full
    g.interior(h, off)   a handle to byte `off` of h's data: an interior pointer, which keeps
                         the whole object alive
    g.set_memory_limit(n) the run's memory limit in bytes (GOMEMLIMIT); returns the previous
                         one; n < 0 only reads it (Go's debug.SetMemoryLimit)
    g.set_gc_percent(n)  GOGC; n < 0 turns percent-based GC off; returns the previous value,
                         -1 for off (Go's debug.SetGCPercent)
    g.read_mem_stats()   Go's runtime.MemStats now (gorun.metrics.MemStats: HeapAlloc, NextGC,
                         NumGC, PauseNs, ... with Go's field names; a snapshot read without
                         stopping the world)
    g.set_finalizer(h, fn) Go's runtime.SetFinalizer: fn(h) on this P once h's object is
                         unreachable (it then survives one more cycle); fn=None removes it
    g.add_cleanup(h, fn, arg) Go's runtime.AddCleanup: fn(arg) on this P once h's object is
                         unreachable; returns a Cleanup with .stop()
    g.weak(h)            Go's weak.Make: .value() is the handle, or None once unreachable
    g.deadline           time.monotonic() at which --duration ends, or None
    gorun.Pool(name, new=fn) sync.Pool, declared at module level and shared by every P by its
                         name: pool.get() (a pooled object, else new(g)), pool.put(h)
    g.pool(new=fn, name=None) the same pool from inside a workload: every P that calls it with
                         the same `new` (or the same name) gets the same pool
    """

    def __init__(self, pid: int, nprocs: int, params: dict, seed: int, duration: float | None, nglobals: int):
        self.id = pid
        self.nprocs = nprocs
        self.params = dict(params)
        self.seed = seed
        self.rng = np.random.default_rng([seed, pid])
        self.random = random.Random(seed * 1000003 + pid)
        self.deadline = None if duration is None else time.monotonic() + duration
        self.globals = Globals(nglobals)
        self.new = _gorun.new
        self.new_bytes = _gorun.new_bytes
        self.safepoint = _gorun.safepoint
        self.gc = _gorun.gc
        self.copy = _gorun.array_copy
        self.interior = _gorun.interior
        self.make_slice = make_slice
        self.append = append
        self.set_memory_limit = _gorun.set_memory_limit
        self.set_gc_percent = _gorun.set_gc_percent
        self._pools: dict = {}  # g.pool(): name -> gorun.Pool
        pool.set_current(self)  # sync.Pool's new(g) gets this P's context
        self.set_finalizer = mfinal.set_finalizer
        self.add_cleanup = mfinal.add_cleanup
        self.weak = mfinal.weak

    def new_array(self, elem, n: int):
        return _gorun.new_array(array_tid(elem), n)

    def blocking(self):
        """Context manager: the code inside blocks (sleeps, waits, does I/O) and must not touch
        the heap; the GC counts this P as stopped and scans its roots itself (Go's _Psyscall)."""
        return _Blocking()

    def time_left(self) -> float:
        return float("inf") if self.deadline is None else self.deadline - time.monotonic()

    def expired(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    def read_mem_stats(self):
        """Go's runtime.ReadMemStats: a gorun.metrics.MemStats with Go's field names.

        Unlike Go's, it does not stop the world: the other P's counters are read while they run
        (each is monotonic, so the snapshot is at most a few allocations behind)."""
        from . import metrics
        from .timeline import process_cpu_ns

        state = _gorun.gc_state()
        now = time.monotonic_ns()
        init = state["init_ns"]
        pauses = metrics.pause_dicts(_gorun.gc_pauses(0), init)
        cycles = [dict(c) for c in _gorun.gc_cycles()]
        gc_cpu = process_cpu_ns(state["gc_pid"]) if state["gc_pid"] > 0 else None
        c = metrics.counters(
            _gorun.stats(),
            state,
            _gorun.memstats(),
            pauses,
            cycles,
            gc_process_cpu_ns=gc_cpu or 0,
            scav_bg_ns=0,
            limiter_last_cycle=max((c["n"] for c in cycles if c["limiter"]), default=0),
            wall_ns=now - init,
            start_unix_ns=time.time_ns() - (now - init),
        )
        return metrics.mem_stats(c)

    def pool(self, new=None, name: str | None = None):
        """sync.Pool from inside a workload (``gorun.Pool`` declared in place): every P that asks
        for the same ``name``, or without a name for the same ``new`` function (the same source
        line, so a lambda written once in the workload is one pool in every P), shares one pool."""
        if name is None:
            if new is None:
                raise TypeError("g.pool() needs new=fn or a name")
            code = getattr(new, "__code__", None)
            where = f"@{code.co_filename.rsplit('/', 1)[-1]}:{code.co_firstlineno}" if code else ""
            name = (getattr(new, "__qualname__", type(new).__name__) + where)[-pool.MAX_NAME :]
        p = self._pools.get(name)
        if p is None:
            p = self._pools[name] = pool.Pool(name, new)
        return p
