"""Named POSIX shared-memory segments of one run, and cleanup of stale ones.

Each run creates two segments, ``/gorun.<launcher pid>.<n>.meta`` and ``.arena``, with
posix_ipc. Both are sized with ftruncate up front and stay sparse: untouched pages cost nothing
(docs/design.md "Shared memory"). The launcher unlinks them on every exit path; ``gorun clean``
removes segments whose launcher is no longer alive.
"""

from __future__ import annotations

import itertools
import os
import re

import posix_ipc
import psutil

SHM_DIR = "/dev/shm"
_NAME_RE = re.compile(r"^gorun\.(\d+)\.(\d+)\.(meta|arena)$")
_counter = itertools.count()


class Segment:
    """One named segment: created (O_CREX), mapped by the C core through its fd, unlinked."""

    def __init__(self, name: str, size: int):
        self.name = name
        self.size = size
        self._shm = posix_ipc.SharedMemory(name, posix_ipc.O_CREX, mode=0o600, size=size)

    @property
    def fd(self) -> int:
        return self._shm.fd

    def close_fd(self) -> None:
        if self._shm.fd >= 0:
            self._shm.close_fd()

    def unlink(self) -> None:
        try:
            posix_ipc.unlink_shared_memory(self.name)
        except posix_ipc.ExistentialError:
            pass


def new_run_names() -> tuple[str, str]:
    """Segment names for a new run of this launcher process."""
    n = next(_counter)
    base = f"/gorun.{os.getpid()}.{n}"
    return base + ".meta", base + ".arena"


def shm_free_bytes() -> int:
    try:
        st = os.statvfs(SHM_DIR)
    except OSError:
        return 0
    return st.f_bavail * st.f_frsize


def _pid_alive(pid: int) -> bool:
    """Whether process pid still runs. A zombie (exited, not yet reaped) is dead, although
    kill(pid, 0) still succeeds on it."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        return psutil.Process(pid).status() not in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True


def list_segments() -> list[tuple[str, int]]:
    """(name, launcher pid) of every gorun segment on this machine."""
    out = []
    try:
        entries = os.listdir(SHM_DIR)
    except FileNotFoundError:
        return out
    for e in entries:
        m = _NAME_RE.match(e)
        if m:
            out.append(("/" + e, int(m.group(1))))
    return sorted(out)


def clean_stale(dry_run: bool = False) -> tuple[list[str], list[str]]:
    """Remove segments whose launcher is dead. Returns (removed, kept_live)."""
    removed, kept = [], []
    for name, pid in list_segments():
        if _pid_alive(pid):
            kept.append(name)
            continue
        if not dry_run:
            try:
                posix_ipc.unlink_shared_memory(name)
            except posix_ipc.ExistentialError:
                continue
        removed.append(name)
    return removed, kept
