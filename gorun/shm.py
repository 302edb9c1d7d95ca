"""Named POSIX shared-memory segments of one run, and cleanup of stale ones.

Each run creates two segments, ``/gorun.<launcher pid>.<random hex>.meta`` and ``.arena``, with
posix_ipc. Both are sized with ftruncate up front and stay sparse; the C core reserves (fallocate)
each region before it is first touched (docs/design.md "Shared memory"). The launcher unlinks them
on every exit path; ``gorun clean`` and the start of every run remove segments whose launcher is
no longer alive (also the older ``/gorun.<pid>.<n>.*`` names).
"""

from __future__ import annotations

import os
import re
import secrets
from typing import NamedTuple

import posix_ipc
import psutil

SHM_DIR = "/dev/shm"
# <pid>.<n> (before issue 6) or <pid>.<16 hex digits>
_NAME_RE = re.compile(r"^gorun\.(\d+)\.([0-9a-f]+)\.(meta|arena)$")


def _gorun_error(msg: str) -> Exception:
    from . import _gorun

    return _gorun.GorunError(msg)


class Segment:
    """One named segment: created (O_CREX), mapped by the C core through its fd, unlinked.
    Creation failures raise GorunError with a one-line message."""

    def __init__(self, name: str, size: int):
        self.name = name
        self.size = size
        try:
            self._shm = posix_ipc.SharedMemory(name, posix_ipc.O_CREX, mode=0o600, size=size)
        except posix_ipc.ExistentialError:
            raise _gorun_error(
                f"cannot create shared-memory segment {name}: it already exists "
                f"(remove {SHM_DIR}{name} if no run uses it)"
            ) from None
        except posix_ipc.PermissionsError:
            raise _gorun_error(f"cannot create shared-memory segment {name} in {SHM_DIR}: Permission denied") from None
        except (posix_ipc.Error, OSError) as e:
            raise _gorun_error(f"cannot create shared-memory segment {name} in {SHM_DIR}: {e}") from None

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
    """Segment names for a new run: the launcher's pid (for `gorun clean`) and 64 random bits, so
    a stale segment of a reused pid or a name planted by someone else cannot collide."""
    base = f"/gorun.{os.getpid()}.{secrets.token_hex(8)}"
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


class CleanResult(NamedTuple):
    removed: list  # names removed (or that would be, with dry_run)
    kept: list  # names whose launcher is alive
    failed: list  # (name, reason) of dead runs' segments that could not be removed
    pids: list  # launcher pids of the removed segments
    nbytes: int  # shared memory the removed segments held

    def summary(self) -> str:
        """One line, e.g. 'removed 2 segments of dead run(s) (pids 1234): 3.1 MiB'."""
        return (
            f"removed {len(self.removed)} segment{'s' if len(self.removed) != 1 else ''} of dead run(s) "
            f"(pids {', '.join(map(str, self.pids))}): {self.nbytes / (1 << 20):.1f} MiB"
        )


def clean_stale(dry_run: bool = False) -> CleanResult:
    """Remove segments whose launcher is dead. A segment that cannot be removed (another user's)
    is listed in ``failed`` and the others are still removed."""
    removed, kept, failed, pids, nbytes = [], [], [], [], 0
    for name, pid in list_segments():
        if _pid_alive(pid):
            kept.append(name)
            continue
        try:
            size = os.stat(SHM_DIR + name).st_blocks * 512
        except OSError:
            size = 0
        if not dry_run:
            try:
                posix_ipc.unlink_shared_memory(name)
            except posix_ipc.ExistentialError:
                continue
            except (posix_ipc.Error, OSError) as e:
                failed.append((name, str(e) or type(e).__name__))
                continue
        removed.append(name)
        nbytes += size
        if pid not in pids:
            pids.append(pid)
    return CleanResult(removed, kept, failed, pids, nbytes)
