"""A fresh memory cgroup with a hard limit for one run (``gorun run --container SIZE``;
docs/design.md "Containers and memory accounting").

Go services usually run in a container whose memory limit the kernel enforces: going over it
gets a process OOM-killed. ``Container`` makes such a limit for one run, without Docker:

    with Container(256 << 20) as c:       # <our memory cgroup>/gorun.<pid>.<8 hex>, limit 256 MiB
        with c.entered():                 # the launcher inside while it reserves the segments
            ...                           # (their tmpfs pages are charged to the container)
        pid = os.fork()
        if pid == 0:
            c.join()                      # first thing in every child, before touching memory
            ...
        ...
        c.oom_kills(), c.usage_bytes(), c.peak_bytes(), c.stat()
    # leaving: processes still inside are moved out (not killed), the directory removed

The cgroup is made under the launcher's own memory cgroup, found from /proc/self/cgroup and
/proc/self/mountinfo: cgroup v1 when a v1 hierarchy carries the memory controller (hybrid
systems mount v2 alongside, without it), else cgroup v2 when the memory controller is available
in our cgroup there. The launcher itself stays outside (except inside ``entered()``), so an OOM
kill in the container never takes the launcher and it can still report.

Charging (both versions): a page is charged to the memory cgroup of the process that allocates
it (first touch, or fallocate for tmpfs) and stays charged there until it is freed; a process
that moves to another cgroup leaves its charges behind (v1's memory.move_charge_at_immigrate
stays 0). Pages of a /dev/shm file are freed only when the file is unlinked and no longer
mapped or open, so the segments' charges outlive the processes that made them.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import time

from .shm import _pid_alive

PROC_CGROUP = "/proc/self/cgroup"
PROC_MOUNTINFO = "/proc/self/mountinfo"
_NAME_RE = re.compile(r"^gorun\.(\d+)\.([0-9a-f]{8})$")
_PROBE_LIMIT = 1 << 30  # any limit: probe() removes its cgroup at once
_REMOVE_RETRY_S = 1.0


class ContainerUnavailable(Exception):
    """No memory cgroup can be made (or used) here; str() is one line saying why."""


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _unavailable(msg: str) -> ContainerUnavailable:
    return ContainerUnavailable(_one_line(msg))


def _oserror_text(e: OSError) -> str:
    return e.strerror or type(e).__name__


# ---------------------------------------------------------------- finding our memory cgroup


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as \\ooo (octal)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def _parse_mountinfo(text: str) -> list[dict]:
    mounts = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        lf, rf = left.split(), right.split()
        if len(lf) < 6 or len(rf) < 3:
            continue
        mounts.append(
            {
                "root": _unescape(lf[3]),
                "mountpoint": _unescape(lf[4]),
                "mount_opts": lf[5].split(","),
                "fstype": rf[0],
                "super_opts": rf[2].split(","),
            }
        )
    return mounts


def _parse_proc_cgroup(text: str) -> tuple[str | None, str | None]:
    """(path in the v1 memory hierarchy or None, path in the v2 hierarchy or None)."""
    v1 = v2 = None
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        hid, controllers, path = parts
        if hid == "0" and controllers == "":
            v2 = path
        elif "memory" in controllers.split(","):
            v1 = path
    return v1, v2


def _dir_in_mount(mount: dict, cgpath: str) -> str | None:
    """The directory of cgroup cgpath under a mount of its hierarchy (the mount may show only a
    subtree: its root field), or None if the mount does not show it."""
    root = mount["root"].rstrip("/")
    if root and cgpath != root and not cgpath.startswith(root + "/"):
        return None
    rest = cgpath[len(root) :].rstrip("/")
    return mount["mountpoint"].rstrip("/") + rest if rest else mount["mountpoint"]


def _find_memory_cgroup(cgroup_text: str, mountinfo_text: str, isdir=os.path.isdir) -> tuple[int, str, bool]:
    """(version, directory of the caller's memory cgroup, mounted read-only) from the texts of
    /proc/self/cgroup and /proc/self/mountinfo; raises ContainerUnavailable with the reason."""
    v1path, v2path = _parse_proc_cgroup(cgroup_text)
    mounts = _parse_mountinfo(mountinfo_text)
    if v1path is not None:
        cands = [m for m in mounts if m["fstype"] == "cgroup" and "memory" in m["super_opts"]]
        version, cgpath = 1, v1path
        if not cands:
            raise _unavailable("the cgroup v1 memory hierarchy is not mounted in this mount namespace")
    elif v2path is not None:
        cands = [m for m in mounts if m["fstype"] == "cgroup2"]
        version, cgpath = 2, v2path
        if not cands:
            raise _unavailable(
                "no memory cgroup controller: no cgroup v1 memory hierarchy, and cgroup v2 is not mounted"
            )
    else:
        raise _unavailable(
            "no memory cgroup controller: this process is in no cgroup v1 memory hierarchy nor cgroup v2"
        )
    for m in cands:
        d = _dir_in_mount(m, cgpath)
        if d is None or not isdir(d):
            continue
        readonly = "ro" in m["mount_opts"] or "ro" in m["super_opts"]
        if version == 2:
            try:
                with open(os.path.join(d, "cgroup.controllers")) as f:
                    controllers = f.read().split()
            except OSError as e:
                raise _unavailable(f"cannot read {d}/cgroup.controllers: {_oserror_text(e)}") from None
            if "memory" not in controllers:
                raise _unavailable(
                    f"cgroup v2 offers no memory controller to {cgpath} (cgroup.controllers: "
                    f"{' '.join(controllers) or 'none'}); the memory controller may be bound to a cgroup v1 "
                    f"hierarchy that is not mounted"
                )
        return version, d, readonly
    raise _unavailable(
        f"our memory cgroup {cgpath} (cgroup v{version}) is not visible under any mount of its hierarchy"
    )


def _own_memory_cgroup(pid: int | str = "self") -> tuple[int, str, bool]:
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            cgroup_text = f.read()
        with open(PROC_MOUNTINFO) as f:
            mountinfo_text = f.read()
    except OSError as e:
        raise _unavailable(f"cgroups are not available: cannot read /proc/{pid}/cgroup: {_oserror_text(e)}") from None
    return _find_memory_cgroup(cgroup_text, mountinfo_text)


# ---------------------------------------------------------------- files


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def _write(path: str, value: str) -> None:
    # one write(2) per value: cgroup files take one value per write
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def _keyed(text: str) -> dict:
    """'key value' lines (memory.stat, memory.events, memory.oom_control) as a dict of ints."""
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                out[parts[0]] = int(parts[1])
            except ValueError:
                pass
    return out


def _procs(path: str) -> list[int]:
    try:
        return [int(x) for x in _read(os.path.join(path, "cgroup.procs")).split()]
    except FileNotFoundError:
        return []


# ---------------------------------------------------------------- the container


class Container:
    """A fresh memory cgroup ``<launcher's memory cgroup>/gorun.<launcher pid>.<8 hex>`` with a hard
    limit of ``limit_bytes`` and no swap. Attributes: ``version`` (1 or 2), ``path`` (its
    directory), ``limit_bytes`` (the limit the kernel reports back: the request rounded down to
    whole pages), ``parent`` (the directory it was made in), ``owner`` (the pid that made it:
    only that process removes it). Raises ContainerUnavailable (one line) when it cannot be made."""

    def __init__(self, limit_bytes: int):
        if not isinstance(limit_bytes, int) or isinstance(limit_bytes, bool) or limit_bytes <= 0:
            raise ValueError(f"bad container limit {limit_bytes!r}: a positive number of bytes")
        self.version, self.parent, readonly = _own_memory_cgroup()
        if readonly:
            raise _unavailable(f"the cgroup filesystem holding {self.parent} is mounted read-only")
        self.owner = os.getpid()
        self.path = os.path.join(self.parent, f"gorun.{self.owner}.{secrets.token_hex(4)}")
        self.limit_bytes = 0
        self._removed = False
        if self.version == 2:
            self._enable_v2_memory()
        try:
            os.mkdir(self.path, 0o755)
        except OSError as e:
            self._removed = True
            hint = ""
            if e.errno in (errno.EACCES, errno.EPERM):
                hint = f" (creating a cgroup needs root or a cgroup delegated to uid {os.geteuid()})"
            elif e.errno == errno.EROFS:
                hint = " (the cgroup filesystem is read-only)"
            raise _unavailable(f"cannot create a memory cgroup in {self.parent}: {_oserror_text(e)}{hint}") from None
        try:
            self._set_limit(limit_bytes)
        except BaseException:
            self.remove()
            raise

    def _enable_v2_memory(self) -> None:
        """cgroup v2: children get a memory controller only if the parent lists it in
        cgroup.subtree_control, which the kernel refuses while the parent holds processes (the
        "no internal processes" rule; the root cgroup is exempt). The launcher lives in the
        parent, and moving it elsewhere for good is not ours to do, so a refusal is final."""
        sc = os.path.join(self.parent, "cgroup.subtree_control")
        try:
            if "memory" in _read(sc).split():
                return
            _write(sc, "+memory")
        except OSError as e:
            why = _oserror_text(e)
            if e.errno == errno.EBUSY:
                why += (
                    " (cgroup v2's 'no internal processes' rule: the cgroup holds processes, this launcher "
                    "among them, so it cannot give its children a memory controller)"
                )
            elif e.errno in (errno.EACCES, errno.EPERM):
                why += f" (needs root or a cgroup delegated to uid {os.geteuid()})"
            raise _unavailable(f"cannot enable the memory controller for children of {self.parent}: {why}") from None

    def _file(self, name: str) -> str:
        return os.path.join(self.path, name)

    def _set_limit(self, limit: int) -> None:
        def setf(name: str, value: str, required: bool = True) -> None:
            try:
                _write(self._file(name), value)
            except OSError as e:
                if required:
                    raise _unavailable(f"cannot set {name} of {self.path} to {value}: {_oserror_text(e)}") from None

        if self.version == 1:
            setf("memory.limit_in_bytes", str(limit))  # before memsw: memsw may not be below it
            if os.path.exists(self._file("memory.memsw.limit_in_bytes")):
                setf("memory.memsw.limit_in_bytes", str(limit))  # memory + swap: no swapping out of the limit
            setf("memory.swappiness", "0", required=False)  # where writable
            with contextlib.suppress(OSError):  # a new cgroup inherits oom_kill_disable: we want the kill
                if _keyed(_read(self._file("memory.oom_control"))).get("oom_kill_disable"):
                    setf("memory.oom_control", "0", required=False)
            self.limit_bytes = int(_read(self._file("memory.limit_in_bytes")))
        else:
            setf("memory.max", str(limit))
            if os.path.exists(self._file("memory.swap.max")):  # absent without swap accounting
                setf("memory.swap.max", "0")
            val = _read(self._file("memory.max")).strip()
            self.limit_bytes = limit if val == "max" else int(val)

    def __repr__(self) -> str:
        return f"Container({self.path}, v{self.version}, limit {self.limit_bytes})"

    # ------------------------------------------------------------ processes

    def join(self, pid: int = 0) -> None:
        """Move process pid (0: the calling process) with all its threads into the container.
        Pages it touches from now on are charged here; what it touched before stays charged
        where it was. A forked child calls this first thing. Raises ContainerUnavailable."""
        pid = pid or os.getpid()
        try:
            _write(self._file("cgroup.procs"), str(pid))
        except OSError as e:
            raise _unavailable(f"cannot move pid {pid} into {self.path}: {_oserror_text(e)}") from None

    @contextlib.contextmanager
    def entered(self):
        """The calling process is inside the container for the block, then back in the memory
        cgroup it came from (on every path). Charges made inside stay with the container."""
        _, home, _ = _own_memory_cgroup()
        if os.path.realpath(home) == os.path.realpath(self.path):  # nested: already inside
            yield self
            return
        self.join()
        try:
            yield self
        finally:
            try:
                _write(os.path.join(home, "cgroup.procs"), str(os.getpid()))
            except OSError as e:
                raise _unavailable(f"cannot move pid {os.getpid()} back into {home}: {_oserror_text(e)}") from None

    def pids(self) -> list[int]:
        """The processes inside now (cgroup.procs)."""
        return _procs(self.path)

    # ------------------------------------------------------------ accounting

    def oom_kills(self) -> int:
        """Processes the kernel's OOM killer killed in the container (0 if the kernel does not
        count them: v1 before Linux 4.13)."""
        name = "memory.oom_control" if self.version == 1 else "memory.events"
        return _keyed(_read(self._file(name))).get("oom_kill", 0)

    @property
    def usage_file(self) -> str:
        """The file usage_bytes() reads (a sampler may keep it open and pread it)."""
        return self._file("memory.usage_in_bytes" if self.version == 1 else "memory.current")

    def usage_bytes(self) -> int:
        """What the limit is compared with now (memory.usage_in_bytes / memory.current)."""
        return int(_read(self.usage_file))

    def peak_bytes(self) -> int | None:
        """The highest usage since creation (memory.max_usage_in_bytes / memory.peak), None if
        the kernel has no such file (v2 before Linux 5.19)."""
        try:
            return int(_read(self._file("memory.max_usage_in_bytes" if self.version == 1 else "memory.peak")))
        except FileNotFoundError:
            return None

    def headroom_bytes(self) -> int:
        """limit_bytes - usage_bytes(): what can still be charged before the OOM killer runs."""
        return self.limit_bytes - self.usage_bytes()

    def stat(self) -> dict:
        """memory.stat as {name: int}, with the version's names (v1: rss, cache, shmem,
        mapped_file, total_*...; v2: anon, file, shmem, ...)."""
        return _keyed(_read(self._file("memory.stat")))

    # ------------------------------------------------------------ removal

    def remove(self) -> None:
        """Idempotent; only in the process that made the container (a forked child does
        nothing). Kills nothing: a process still inside is moved to the parent cgroup, then
        the directory is removed (retried for a second while the kernel reports EBUSY).
        Pages still charged to it stay accounted in the parent hierarchy until freed."""
        if self._removed or os.getpid() != self.owner:
            return
        deadline = time.monotonic() + _REMOVE_RETRY_S
        move_error = ""
        while True:
            for pid in _procs(self.path):
                try:
                    _write(os.path.join(self.parent, "cgroup.procs"), str(pid))
                except ProcessLookupError:  # exited meanwhile
                    pass
                except OSError as e:
                    move_error = f"; cannot move pid {pid} out to {self.parent}: {_oserror_text(e)}"
            try:
                os.rmdir(self.path)
            except FileNotFoundError:
                pass
            except OSError as e:
                if e.errno == errno.EBUSY and time.monotonic() < deadline:
                    time.sleep(0.01)
                    continue
                raise OSError(
                    e.errno, f"cannot remove memory cgroup {self.path}: {_oserror_text(e)}{move_error}"
                ) from None
            self._removed = True
            return

    @property
    def removed(self) -> bool:
        return self._removed

    def __enter__(self) -> Container:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


# ---------------------------------------------------------------- probe and cleanup


def probe() -> str | None:
    """None if a memory cgroup can be made here, else the one-line reason. Makes a real one
    (the only honest test: LSMs, delegation, read-only mounts) and removes it at once."""
    try:
        c = Container(_PROBE_LIMIT)
    except ContainerUnavailable as e:
        return str(e)
    try:
        c.remove()
    except OSError as e:
        return _one_line(f"a memory cgroup can be made but not removed: {e}")
    return None


def clean_stale() -> list[str]:
    """Remove the empty ``gorun.<pid>.<8 hex>`` cgroups under our own memory cgroup whose
    launcher pid is dead; returns their paths. One with a live launcher, or with a process
    inside, is kept. Nothing (an empty list) where there is no memory cgroup."""
    try:
        _, base, readonly = _own_memory_cgroup()
    except ContainerUnavailable:
        return []
    if readonly:
        return []
    removed = []
    try:
        entries = sorted(os.listdir(base))
    except OSError:
        return []
    for e in entries:
        m = _NAME_RE.match(e)
        path = os.path.join(base, e)
        if not m or not os.path.isdir(path) or _pid_alive(int(m.group(1))):
            continue
        try:
            if _procs(path):
                continue
            os.rmdir(path)
        except OSError:
            continue
        removed.append(path)
    return removed
