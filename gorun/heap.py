"""The one way to set up a shared heap: create the two segments, initialize and attach them in
this process, and on leaving detach and unlink them (docs/design.md "Processes").

    with SharedHeap(arena_size=64 << 20, nprocs=2, lock="futex") as h:
        ...          # h.meta_name, h.arena_name, h.meta_size, h.arena_size, h.npages, config
                     # children forked here share the heap (MAP_SHARED)

The launcher (``Runtime.run``) forks its GC process and workers inside it; the test fixtures and
the benchmarks use it without workers (the C core's test hooks run in the process itself).
"""

from __future__ import annotations

import os
from typing import Callable

from . import _gorun, shm

_C = _gorun.constants()
LOCK_KINDS = _C["lock_kinds"]
PAGE_SIZE = _C["page_size"]


class SharedHeap:
    """A gorun heap in POSIX shared memory, attached in this process while the ``with`` lasts.

    Entering: the segment names (``shm.new_run_names``: this process's pid and 64 random bits),
    both segments created (``shm.Segment``: O_CREX, mode 0600, sized sparse with ftruncate),
    ``_gorun.init`` (maps them, reserves the fixed metadata regions with fallocate, writes the
    control block; a full /dev/shm is ``OutOfMemory``), then the Python fds are closed (the C
    core keeps close-on-exec copies for the reservations made when the heap grows). A failure
    removes whatever was created and raises.

    Leaving, on every path (normal end, exception, KeyboardInterrupt): ``_gorun.detach()`` and
    both segments unlinked. Only the process that entered does it: a forked child that leaves
    the block (it should ``os._exit`` instead) changes nothing.

    ``arena_size`` is rounded up to whole pages (8 KiB); ``meta_size`` comes from the C core.
    One heap per process: entering while a heap is attached raises ``GorunError``.
    ``before_close``, if given, is called first whenever the heap is torn down (also when
    entering fails): the launcher ignores its stop signals from then on.
    """

    def __init__(
        self,
        arena_size: int,
        *,
        nprocs: int = 1,
        lock: str = "futex",
        root_slots: int = 4096,
        nglobals: int = 64,
        debug_flags: int = 0,
        before_close: Callable[[], None] | None = None,
    ):
        if lock not in LOCK_KINDS:
            raise ValueError(f"unknown lock kind {lock!r}: choose one of {', '.join(LOCK_KINDS)}")
        self.lock = lock
        self.nprocs = nprocs
        self.root_slots = root_slots
        self.nglobals = nglobals
        self.debug_flags = debug_flags
        self.before_close = before_close
        self.arena_size = (arena_size + PAGE_SIZE - 1) // PAGE_SIZE * PAGE_SIZE
        self.meta_size = _gorun.meta_size(self.arena_size, nprocs, root_slots, nglobals)
        self.meta_name = self.arena_name = ""  # set on entering
        self.owner = 0  # pid of the process that entered; 0: not attached
        self._segs: list[shm.Segment] = []

    @property
    def npages(self) -> int:
        return self.arena_size // PAGE_SIZE

    @property
    def attached(self) -> bool:
        return self.owner == os.getpid()

    def __repr__(self) -> str:
        return (
            f"SharedHeap({self.meta_name or '(not created)'}, arena {self.arena_size}, meta {self.meta_size}, "
            f"nprocs={self.nprocs}, lock={self.lock!r}, root_slots={self.root_slots}, nglobals={self.nglobals}, "
            f"debug_flags={self.debug_flags})"
        )

    def __enter__(self) -> SharedHeap:
        if _gorun.attached():
            raise _gorun.GorunError("this process already has a gorun heap attached")
        self.meta_name, self.arena_name = shm.new_run_names()
        # From here on close() removes whatever exists, also when a KeyboardInterrupt lands in
        # the middle: a signal blocked in this thread can still be taken by another thread (a
        # BLAS thread of numpy, for one), and Python then runs its handler here at the next
        # bytecode or C-level signal check.
        self.owner = os.getpid()
        try:
            self._segs.append(shm.Segment(self.meta_name, self.meta_size))
            self._segs.append(shm.Segment(self.arena_name, self.arena_size))
            # on failure init unmaps what it mapped; detach is then a no-op
            _gorun.init(
                self._segs[0].fd,
                self.meta_size,
                self._segs[1].fd,
                self.arena_size,
                self.nprocs,
                LOCK_KINDS.index(self.lock),
                self.root_slots,
                self.nglobals,
                self.debug_flags,
            )
            for s in self._segs:
                s.close_fd()  # the mapping stays; forked children inherit it
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Detach and unlink (what leaving the ``with`` does); idempotent; nothing in a forked child."""
        if self.owner != os.getpid():
            return
        try:
            if self.before_close is not None:
                self.before_close()
            _gorun.detach()
        finally:
            self.owner = 0
            segs, self._segs = self._segs, []
            for s in segs:
                try:
                    s.close_fd()
                finally:
                    s.unlink()
