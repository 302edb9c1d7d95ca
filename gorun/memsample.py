"""The memory a container's limit sees, sampled by the launcher every few milliseconds
(docs/design.md "Containers and memory accounting").

A memory cgroup charges each page once, to whoever allocated it: a process's private pages
(its Python heap, stacks, the copy-on-write copies it made after the fork) and the tmpfs pages
of the shared segments, however many processes map them. So the sampler adds

- ``private_bytes``: over the run's processes, resident memory minus its shared part, psutil's
  ``memory_info()`` ``rss - shared`` (both from /proc/<pid>/statm: the anonymous resident
  pages; file and shmem pages, the segments among them, are "shared" and not counted here);
- ``shared_bytes``: over the segments, the tmpfs blocks allocated (``fstat().st_blocks * 512``:
  fallocated or touched pages, counted once, mapped or not);

and reports their sum, ``total_bytes``, next to the container's own counter when there is one.
Pages a child still shares copy-on-write with the launcher (not written since the fork) are in
its rss - shared but charged to the launcher's cgroup, not the container: total_bytes can be
above container_bytes by about that much.

Cost: the sampler keeps /proc/<pid>/statm, the container's usage file and (duplicates of) the
segment fds open and reads them with pread/fstat: psutil's ``memory_info()`` reads the same
statm fields but opens the file on every call, which costs about 7 times as much per process
(measured in docs/design.md). ``use_psutil=True`` samples through psutil instead; a process
whose statm cannot be opened is sampled through psutil anyway.

    s = MemorySampler(segment_fds=[meta_fd, arena_fd], container=c)
    s.add_pid(pid) ...                 # as children start; remove_pid(pid) when reaping them
    s.start()
    ... s.peak_bytes, s.last ...       # from the launcher's main thread, any time
    summary = s.stop()
"""

from __future__ import annotations

import contextlib
import os
import threading
import time

import psutil

_GONE = (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied)
_PAGE = os.sysconf("SC_PAGE_SIZE")


class _Proc:
    """One sampled process: its psutil.Process and, unless psutil is used, an fd of its statm
    (which names that process for good: once it is reaped, reads fail with ESRCH, so a reused
    pid is never measured by mistake)."""

    __slots__ = ("pid", "ps", "fd")

    def __init__(self, pid: int, use_psutil: bool):
        self.pid = pid
        self.ps = psutil.Process(pid)  # NoSuchProcess if it is gone already
        self.fd = -1
        if not use_psutil:
            with contextlib.suppress(OSError):
                self.fd = os.open(f"/proc/{pid}/statm", os.O_RDONLY | os.O_CLOEXEC)

    def private_bytes(self) -> int | None:
        """rss - shared in bytes, or None if the process is gone (or a zombie, or unreadable)."""
        if self.fd >= 0:
            try:
                f = os.pread(self.fd, 128, 0).split()
            except OSError:  # ESRCH: exited and reaped
                return None
            rss, shared = int(f[1]) * _PAGE, int(f[2]) * _PAGE
        else:
            try:
                mi = self.ps.memory_info()
            except _GONE:
                return None
            rss, shared = mi.rss, mi.shared
        if rss == 0:  # a zombie: statm is all zeros once its memory is freed
            return None
        return max(rss - shared, 0)

    def close(self) -> None:
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = -1


class MemorySampler:
    """Samples private + shared memory of a run (see the module's docstring).

    ``segment_fds`` are duplicated at construction: the sampler owns its copies, so the caller
    may close its own fds; ``stop()`` or ``close()`` releases them (until then they keep an
    unlinked segment's pages allocated). Thread-safe: ``add_pid``, ``remove_pid``, ``sample``,
    ``summary`` and the attributes ``peak_bytes``, ``peak_t_ns``, ``final_bytes``, ``samples``,
    ``last`` may be used from any thread while the background thread runs."""

    def __init__(self, interval: float = 0.005, segment_fds=(), container=None, use_psutil: bool = False):
        if interval <= 0:
            raise ValueError(f"bad sampling interval {interval!r}: must be > 0")
        self.interval = float(interval)
        self.container = container
        self.use_psutil = use_psutil
        self._lock = threading.Lock()
        self._procs: dict[int, _Proc] = {}
        self._fds: list[int] = []
        self._usage_fd = -1
        self.peak_bytes = 0
        self.peak_t_ns = 0
        self.final_bytes = 0
        self.samples = 0
        self.last: dict = {}
        self._container_peak_sampled: int | None = None
        self._container_peak_kernel: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        try:
            for fd in segment_fds:
                self._fds.append(os.dup(fd))
            usage_file = getattr(container, "usage_file", None)
            if usage_file and not use_psutil:
                with contextlib.suppress(OSError):
                    self._usage_fd = os.open(usage_file, os.O_RDONLY | os.O_CLOEXEC)
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------ processes

    def add_pid(self, pid: int) -> None:
        """Count process pid from the next sample on. A pid that is already gone is ignored."""
        try:
            p = _Proc(pid, self.use_psutil)
        except _GONE:
            return
        with self._lock:
            old = self._procs.pop(pid, None)
            self._procs[pid] = p
        if old is not None:
            old.close()

    def remove_pid(self, pid: int) -> None:
        with self._lock:
            p = self._procs.pop(pid, None)
        if p is not None:
            p.close()

    @property
    def pids(self) -> list[int]:
        with self._lock:
            return sorted(self._procs)

    # ------------------------------------------------------------ one sample

    def _private(self) -> int:
        total = 0
        gone = []
        with self._lock:  # remove_pid cannot close an fd under us
            for p in self._procs.values():
                b = p.private_bytes()
                if b is None:
                    gone.append(p)
                else:
                    total += b
            for p in gone:
                del self._procs[p.pid]
        for p in gone:
            p.close()
        return total

    def _shared(self) -> int:
        total = 0
        with self._lock:  # close() cannot close an fd (and its number be reused) under us
            for fd in self._fds:
                try:
                    total += os.fstat(fd).st_blocks * 512
                except OSError:
                    pass
        return total

    def _container_bytes(self) -> int | None:
        if self.container is None:
            return None
        try:
            with self._lock:
                if self._usage_fd >= 0:
                    return int(os.pread(self._usage_fd, 32, 0))
            return self.container.usage_bytes()
        except (OSError, ValueError):  # the container is gone
            return None

    def sample(self) -> dict:
        """One sample now: {"t_ns" (time.monotonic_ns), "private_bytes", "shared_bytes",
        "total_bytes", "container_bytes" (None without a container, or once it is gone)};
        also updates peak_bytes, peak_t_ns, final_bytes, last and samples."""
        t_ns = time.monotonic_ns()
        private = self._private()
        shared = self._shared()
        cbytes = self._container_bytes()
        s = {
            "t_ns": t_ns,
            "private_bytes": private,
            "shared_bytes": shared,
            "total_bytes": private + shared,
            "container_bytes": cbytes,
        }
        with self._lock:
            self.samples += 1
            self.last = s
            self.final_bytes = s["total_bytes"]
            if s["total_bytes"] > self.peak_bytes or self.samples == 1:
                self.peak_bytes = s["total_bytes"]
                self.peak_t_ns = t_ns
            if cbytes is not None and (self._container_peak_sampled is None or cbytes > self._container_peak_sampled):
                self._container_peak_sampled = cbytes
        return s

    # ------------------------------------------------------------ the background thread

    def start(self) -> None:
        """Sample every ``interval`` seconds in a daemon thread (the first sample at once)."""
        if self._thread is not None:
            raise RuntimeError("MemorySampler already started")
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="gorun-memsample", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        next_t = time.monotonic()
        while not self._stop.is_set():
            self.sample()
            next_t += self.interval
            now = time.monotonic()
            if next_t < now:  # fell behind (a slow sample, a starved launcher): no catch-up burst
                next_t = now + self.interval
            self._stop.wait(next_t - now)

    def stop(self) -> dict:
        """Stop the thread (if started), take one last sample (the state at the stop: it is
        final_bytes), release the fds and return summary()."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
        self.sample()
        self._read_container_peak()
        self.close()
        return self.summary()

    def close(self) -> None:
        """Close every fd the sampler holds (idempotent); later samples count no segment and no
        process, and read the container through usage_bytes()."""
        with self._lock:
            fds, self._fds = self._fds, []
            procs, self._procs = list(self._procs.values()), {}
            ufd, self._usage_fd = self._usage_fd, -1
        for fd in fds + ([ufd] if ufd >= 0 else []):
            with contextlib.suppress(OSError):
                os.close(fd)
        for p in procs:
            p.close()

    def __del__(self):
        with contextlib.suppress(Exception):
            self.close()

    def _read_container_peak(self) -> None:
        if self.container is None:
            return
        try:
            k = self.container.peak_bytes()
        except (OSError, ValueError):
            return
        if k is not None:
            self._container_peak_kernel = k

    def summary(self) -> dict:
        """{"peak_bytes", "peak_t_ns", "final_bytes", "samples", "interval_s",
        "container_peak_bytes" (the kernel's peak, memory.max_usage_in_bytes / memory.peak,
        while it can be read, else the highest container_bytes sampled; None without a
        container), "last" (the last sample, {} before the first)}."""
        self._read_container_peak()
        with self._lock:
            cpeak = None
            if self.container is not None:
                cands = [v for v in (self._container_peak_kernel, self._container_peak_sampled) if v is not None]
                cpeak = max(cands) if cands else None
            return {
                "peak_bytes": self.peak_bytes,
                "peak_t_ns": self.peak_t_ns,
                "final_bytes": self.final_bytes,
                "samples": self.samples,
                "interval_s": self.interval,
                "container_peak_bytes": cpeak,
                "last": dict(self.last),
            }
