"""Finalizers, cleanups and weak pointers (Go's runtime.SetFinalizer, runtime.AddCleanup and
weak.Pointer; ref §11.2-11.4; docs/design.md "Finalizers, cleanups and weak pointers").

The records live in shared memory (native/mfinal.c): the GC process marks what a finalizable
object references, and whoever sweeps the object's span queues what is due to the P that
registered it. The callbacks are Python objects of that P's worker, kept here keyed by record
id; the worker runs its queue at its next safepoint outside the runtime (the pending call that
SIGURG schedules, or ``g.safepoint()``), one callback at a time, in queue order. An exception
from a callback propagates into the workload at that safepoint, as a panic in a Go finalizer
ends the program.
"""

from __future__ import annotations

from . import _gorun

_callbacks: dict[int, object] = {}  # record id -> fn (finalizer) or (fn, arg) (cleanup)
_runner_set = False


def _run() -> None:
    """Run every finalizer and cleanup queued for this P (called from C at a safepoint)."""
    while True:
        nxt = _gorun.finq_next()
        if nxt is None:
            return
        rid, kind, h = nxt
        entry = _callbacks.pop(rid, None)
        if entry is None:  # cannot happen: a record is queued only to the P that registered it
            continue
        if kind == "finalizer":
            entry(h)
        else:
            fn, arg = entry
            fn(arg)
        del entry, h
        _gorun.special_executed(kind)


def _ensure_runner() -> None:
    global _runner_set
    if not _runner_set:
        _gorun.set_finq_runner(_run)
        _runner_set = True


def set_finalizer(h, fn) -> None:
    """Go's runtime.SetFinalizer(h, fn): once h's object is unreachable, fn(h) runs on this P and
    the object survives one more cycle (resurrected). ``fn=None`` removes it. h must point at the
    start of its object; a second finalizer on the same object raises GorunError."""
    if fn is None:
        _callbacks.pop(_gorun.special_clear_finalizer(h), None)
        return
    if not callable(fn):
        raise TypeError(f"runtime.SetFinalizer: finalizer must be callable or None, not {type(fn).__name__}")
    _ensure_runner()
    _callbacks[_gorun.special_set_finalizer(h)] = fn


class Cleanup:
    """What ``g.add_cleanup`` returns (Go's runtime.Cleanup)."""

    __slots__ = ("_id",)

    def __init__(self, rid: int):
        self._id = rid

    def stop(self) -> None:
        """Cancel the cleanup if it has not been queued yet (Go's Cleanup.Stop)."""
        if _gorun.special_stop_cleanup(self._id):
            _callbacks.pop(self._id, None)


def add_cleanup(h, fn, arg) -> Cleanup:
    """Go's runtime.AddCleanup(h, fn, arg): once h's object is unreachable, fn(arg) runs on this
    P; the object is not resurrected. Several per object are allowed. arg is held here, so any
    handle it holds is a root: an arg that reaches the object keeps it alive forever, and arg
    being h's object itself raises GorunError, as Go panics."""
    if not callable(fn):
        raise TypeError(f"runtime.AddCleanup: cleanup must be callable, not {type(fn).__name__}")
    if isinstance(arg, _gorun.Handle) and isinstance(h, _gorun.Handle) and arg.base == h.base:
        raise _gorun.GorunError("runtime.AddCleanup: ptr is equal to arg, cleanup will never run")
    _ensure_runner()
    rid = _gorun.special_add_cleanup(h)
    _callbacks[rid] = (fn, arg)
    return Cleanup(rid)


class Weak:
    """A weak pointer (Go's weak.Pointer): ``value()`` is the object's handle, or None once the
    object is unreachable. Weak pointers to the same address compare equal."""

    __slots__ = ("_id",)

    def __init__(self, rid: int):
        self._id = rid

    def value(self):
        return _gorun.special_weak_value(self._id)

    def __eq__(self, other) -> bool:
        return isinstance(other, Weak) and other._id == self._id

    def __hash__(self) -> int:
        return hash(self._id)

    def __repr__(self) -> str:
        return f"<gorun weak pointer {self._id:#x}>"


def weak(h) -> Weak:
    """Go's weak.Make(h)."""
    return Weak(_gorun.special_weak_make(h))
