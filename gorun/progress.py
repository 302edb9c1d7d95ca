"""The live status line of a run on a terminal (docs/design.md "Progress").

When the launcher's stderr is a terminal, the children's stderr (and their stdout, when it is the
same terminal) go through pipes the launcher reads: it writes each complete line the children
printed (gctrace, gcpacertrace, a workload's prints) on a line of its own, after erasing the
status line, then draws the status line again. So the status never splits or overwrites a
gctrace line. The status appears once the run has lasted STATUS_AFTER_S seconds and is redrawn
every REDRAW_S; it is erased before the launcher prints anything else (the summary). When stderr
is not a terminal nothing changes: the children inherit the launcher's stdout and stderr.

    gorun: 12.4s  37 cycles  heap 48.2 MiB  last pause 135us  3.12 M allocs/s
"""

from __future__ import annotations

import os
import time

from . import _gorun
from .units import fmt_bytes, fmt_ns

STATUS_AFTER_S = 2.0
REDRAW_S = 0.25
RATE_WINDOW_S = 1.0
_ERASE = b"\r\x1b[K"


def wanted(stderr_fd: int = 2) -> bool:
    """A status line is shown when stderr is a terminal (and TERM is not "dumb")."""
    return os.isatty(stderr_fd) and os.environ.get("TERM", "") != "dumb"


class Progress:
    """The launcher's side: the relay pipes and the status line."""

    def __init__(self, stderr_fd: int = 2, stdout_fd: int = 1):
        self.err = stderr_fd
        self.t0 = time.monotonic()
        self.shown = False
        self.drawn_once = False
        self.pause_next = 0  # pause records seen
        self.last_pause_ns = None
        self.next_draw = self.t0 + STATUS_AFTER_S
        self.rates: list[tuple[float, int]] = []  # (time, objects allocated), the last RATE_WINDOW_S
        self.bufs: dict[int, bytearray] = {}
        self.dest: dict[int, int] = {}  # read end -> the launcher's fd to write its lines to
        self.child_ends: list[tuple[int, int]] = []  # (write end, the child's fd it replaces)
        targets = [stderr_fd]
        if os.isatty(stdout_fd) and os.path.samestat(os.fstat(stdout_fd), os.fstat(stderr_fd)):
            targets.append(stdout_fd)
        for fd in targets:
            r, w = os.pipe()
            os.set_blocking(r, False)
            self.bufs[r] = bytearray()
            self.dest[r] = fd
            self.child_ends.append((w, fd))

    # ---- in a child, right after the fork ----

    def child_redirect(self) -> None:
        for w, fd in self.child_ends:
            os.dup2(w, fd)
        self.child_close()

    def child_close(self) -> None:
        for w, _ in self.child_ends:
            os.close(w)
        for r in self.dest:
            os.close(r)

    # ---- in the launcher ----

    def parent_forked(self) -> None:
        """Every child exists: close the launcher's copies of the write ends."""
        for w, _ in self.child_ends:
            os.close(w)
        self.child_ends = []

    @property
    def fds(self) -> list[int]:
        return list(self.dest)

    def readable(self, fd: int) -> bool:
        """Relay what a child wrote: complete lines now, the rest when its newline comes. False
        when there is nothing more to read now (would block) or ever (EOF: the pipe is closed)."""
        try:
            chunk = os.read(fd, 1 << 16)
        except BlockingIOError:
            return False
        if not chunk:  # every child that held it has exited
            self._flush_partial(fd)
            os.close(fd)
            del self.dest[fd], self.bufs[fd]
            return False
        buf = self.bufs[fd]
        buf += chunk
        cut = buf.rfind(b"\n") + 1
        if cut:
            self._write_above(self.dest[fd], bytes(buf[:cut]))
            del buf[:cut]
        return True

    def _flush_partial(self, fd: int) -> None:
        buf = self.bufs[fd]
        if buf:
            self._write_above(self.dest[fd], bytes(buf) + b"\n")
            buf.clear()

    def _write_above(self, fd: int, data: bytes) -> None:
        if self.shown:
            _write(self.err, _ERASE)
            self.shown = False
        _write(fd, data)
        if self.drawn_once:  # draw it again below the lines at the next tick
            self.next_draw = 0.0

    def tick(self, timeline=None) -> None:
        """Redraw the status line if it is due (called from the launcher's watch loop)."""
        now = time.monotonic()
        if now < self.next_draw:
            return
        self.next_draw = now + REDRAW_S
        try:
            line = self.status(now, timeline)
        except Exception:  # noqa: BLE001  the heap is being torn down
            return
        _write(self.err, _ERASE + line.encode())
        self.shown = self.drawn_once = True

    def status(self, now: float, timeline=None) -> str:
        st = _gorun.gc_state()
        objects = sum(p["objects"] for p in _gorun.stats()["ps"])
        self.rates.append((now, objects))
        while len(self.rates) > 2 and self.rates[0][0] < now - RATE_WINDOW_S:
            self.rates.pop(0)
        (t_a, n_a), (t_b, n_b) = self.rates[0], self.rates[-1]
        rate = f"  {(n_b - n_a) / (t_b - t_a) / 1e6:.2f} M allocs/s" if t_b > t_a else ""
        if st["npauses"] > self.pause_next:  # the newest pause record
            self.pause_next = st["npauses"]
            self.last_pause_ns = _gorun.gc_pauses(self.pause_next - 1)[-1]["total_ns"]
        last = "" if self.last_pause_ns is None else f"  last pause {fmt_ns(self.last_pause_ns)}"
        return f"gorun: {now - self.t0:.1f}s  {st['cycles_done']} cycles  heap {fmt_bytes(st['heap_live'])}{last}{rate}"

    def finish(self) -> None:
        """Relay what is left and erase the status line (before the summary is printed)."""
        for fd in list(self.dest):
            try:
                while self.readable(fd):
                    pass
            except OSError:
                pass
            if fd in self.dest:  # a partial last line, with no EOF seen
                self._flush_partial(fd)
        if self.shown:
            _write(self.err, _ERASE)
            self.shown = False

    def close(self) -> None:
        for r in list(self.dest):
            try:
                os.close(r)
            except OSError:
                pass
        self.dest.clear()
        for w, _ in self.child_ends:
            try:
                os.close(w)
            except OSError:
                pass
        self.child_ends = []


def _write(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BlockingIOError:
            time.sleep(0.001)
            continue
        except OSError:  # the terminal went away: drop the output
            return
        view = view[n:]
