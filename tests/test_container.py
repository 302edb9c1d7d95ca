"""gorun/container.py against the real kernel: memory cgroups made under this test process's own,
real forked children, real tmpfs pages in /dev/shm, the real OOM killer. Where no memory cgroup
can be made (not root, no memory controller, read-only cgroupfs), the tests that need one skip
with container.probe()'s reason; the parsing tests run everywhere."""

from __future__ import annotations

import contextlib
import errno
import mmap
import os
import re
import secrets
import signal
import subprocess
import sys
import time

import pytest
from conftest import REPO, fork_child, gorun_env, read_all, wait_child, shm_test_file

from gorun import container
from gorun.container import Container, ContainerUnavailable

MiB = 1 << 20
PAGE = mmap.PAGESIZE


def container_skip_reason() -> str | None:
    """Why the tests that need a memory cgroup skip here (probe()'s reason), or None. When
    probe() fails although a plain directory can be made in our memory cgroup, the machine can
    do it and Container is what fails: None, so that those tests run and fail instead of
    skipping."""
    reason = container.probe()
    if reason is None:
        return None
    try:
        _, base, _ = container._own_memory_cgroup()
        d = os.path.join(base, f"gorun-test-probe.{os.getpid()}.{secrets.token_hex(4)}")
        os.mkdir(d)
    except (ContainerUnavailable, OSError):
        return reason
    os.rmdir(d)
    return None


_REASON = container_skip_reason()
needs_cgroup = pytest.mark.skipif(_REASON is not None, reason=f"no memory cgroup here: {_REASON}")


# ---------------------------------------------------------------- helpers


def memory_cgroup_line(pid: int | str = "self") -> str:
    """The memory line of /proc/<pid>/cgroup (v1), else the v2 line."""
    with open(f"/proc/{pid}/cgroup") as f:
        lines = f.read().splitlines()
    v1 = [ln for ln in lines if "memory" in ln.split(":")[1].split(",")]
    return v1[0] if v1 else next(ln for ln in lines if ln.startswith("0::"))


def procs_of(path: str) -> list[int]:
    with open(os.path.join(path, "cgroup.procs")) as f:
        return [int(x) for x in f.read().split()]


def shm_file(size: int = 0):
    """A /dev/shm file of this test, (path, fd) (conftest.shm_test_file)."""
    return shm_test_file("container", size)


def touch_pages(fd: int, size: int) -> None:
    """Write one byte in every page of the first `size` bytes of the file (first touch)."""
    os.ftruncate(fd, max(size, os.fstat(fd).st_size))
    m = mmap.mmap(fd, size)
    for off in range(0, size, PAGE):
        m[off] = 1
    m.close()


def join_and_touch(c: Container, fd: int, size: int, wfd: int) -> int:
    """Child body: join the container, report its cgroup, touch `size` bytes of the file."""
    c.join()
    os.write(wfd, (memory_cgroup_line() + "\n").encode())
    touch_pages(fd, size)
    return 0


def killed_by(status: int) -> int | None:
    return os.WTERMSIG(status) if os.WIFSIGNALED(status) else None


# ---------------------------------------------------------------- finding the memory cgroup (no cgroup needed)

HYBRID_CGROUP = "4:memory:/process_api/abc\n3:cpuset:/\n1:cpu:/\n0::/\n"
HYBRID_MOUNTINFO = (
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
    "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
    "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
)


def test_v1_memory_hierarchy_is_preferred_on_a_hybrid_system():
    version, path, ro = container._find_memory_cgroup(HYBRID_CGROUP, HYBRID_MOUNTINFO, isdir=lambda d: True)
    assert (version, path, ro) == (1, "/sys/fs/cgroup/memory/process_api/abc", False)


def test_a_mount_of_a_subtree_and_escapes_and_read_only():
    # a container's view: the hierarchy mounted from our own cgroup, read-only, a space in the path
    mi = "35 31 0:32 /process_api/abc /sys/fs/cgroup/my\\040mem ro,relatime - cgroup cgroup rw,memory\n"
    assert container._find_memory_cgroup(HYBRID_CGROUP, mi, isdir=lambda d: True) == (
        1,
        "/sys/fs/cgroup/my mem",
        True,
    )
    # a mount of another subtree does not show our cgroup
    mi = "35 31 0:32 /other /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
    with pytest.raises(ContainerUnavailable, match="not visible under any mount"):
        container._find_memory_cgroup(HYBRID_CGROUP, mi, isdir=lambda d: True)


def test_v2_is_used_when_it_offers_the_memory_controller(tmp_path):
    (tmp_path / "svc").mkdir()
    (tmp_path / "svc" / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    mi = f"30 25 0:26 / {tmp_path} rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"
    assert container._find_memory_cgroup("0::/svc\n", mi) == (2, str(tmp_path / "svc"), False)
    (tmp_path / "svc" / "cgroup.controllers").write_text("cpu pids\n")
    with pytest.raises(ContainerUnavailable, match="no memory controller") as e:
        container._find_memory_cgroup("0::/svc\n", mi)
    assert "\n" not in str(e.value)


def test_no_memory_controller_anywhere_is_one_line():
    mi = "31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n"
    for cg in ("1:cpu:/\n", "0::/\n"):
        with pytest.raises(ContainerUnavailable) as e:
            container._find_memory_cgroup(cg, mi, isdir=lambda d: True)
        assert str(e.value) and "\n" not in str(e.value)
    with pytest.raises(ContainerUnavailable, match="v1 memory hierarchy is not mounted"):
        container._find_memory_cgroup(HYBRID_CGROUP, mi, isdir=lambda d: True)


def test_v2_refusal_of_the_memory_controller_is_reported_not_worked_around(tmp_path, monkeypatch):
    """cgroup v2 refuses to enable a controller for the children of a cgroup that holds
    processes (EBUSY). Container says so and makes nothing; the launcher is not moved."""
    (tmp_path / "cgroup.subtree_control").write_text("cpu\n")
    monkeypatch.setattr(container, "_own_memory_cgroup", lambda pid="self": (2, str(tmp_path), False))
    writes = []

    def refuse(path, value):
        writes.append((os.path.basename(path), value))
        raise OSError(errno.EBUSY, "Device or resource busy")

    monkeypatch.setattr(container, "_write", refuse)
    with pytest.raises(ContainerUnavailable, match="no internal processes") as e:
        Container(64 * MiB)
    assert "\n" not in str(e.value)
    assert writes == [("cgroup.subtree_control", "+memory")]  # not cgroup.procs: nobody moved
    assert sorted(os.listdir(tmp_path)) == ["cgroup.subtree_control"]


# ---------------------------------------------------------------- reasons from the real system


def _probe_as_nobody(wfd: int) -> int:
    os.setgroups([])
    os.setgid(65534)
    os.setuid(65534)
    os.write(wfd, repr(container.probe()).encode())
    return 0


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop to an unprivileged user")
@needs_cgroup
def test_probe_says_why_for_an_unprivileged_user():
    rfd, wfd = os.pipe()
    pid, _ = fork_child(_probe_as_nobody, wfd)
    os.close(wfd)
    out = read_all(rfd)
    assert wait_child(pid) == 0
    reason = eval(out)  # the repr of a str or None
    assert isinstance(reason, str) and "\n" not in reason, out
    assert "Permission denied" in reason or "delegated" in reason, reason


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for a private mount namespace")
@needs_cgroup
def test_probe_says_why_for_a_read_only_cgroupfs():
    """The memory hierarchy's mount remounted read-only in a private mount namespace."""
    _, base, _ = container._own_memory_cgroup()
    mountpoint = next(
        m["mountpoint"]
        for m in container._parse_mountinfo(open("/proc/self/mountinfo").read())
        if base.startswith(m["mountpoint"]) and m["fstype"] in ("cgroup", "cgroup2")
    )
    script = "from gorun import container; print(repr(container.probe())); print(container.clean_stale())"
    cmd = [
        "unshare",
        "-m",
        "--propagation",
        "private",
        "sh",
        "-c",
        f'mount -o remount,bind,ro {mountpoint} && exec "$0" "$@"',
    ]
    try:
        p = subprocess.run(
            [*cmd, sys.executable, "-c", script], cwd=REPO, env=gorun_env(), capture_output=True, text=True, timeout=60
        )
    except FileNotFoundError:
        pytest.skip("unshare(1) is not installed")
    if p.returncode != 0 and ("unshare" in p.stderr or "mount" in p.stderr):
        pytest.skip(f"cannot remount the cgroupfs read-only here: {p.stderr.strip()}")
    assert p.returncode == 0, p.stderr
    reason, cleaned = p.stdout.splitlines()
    assert "read-only" in reason, reason
    assert cleaned == "[]"


# ---------------------------------------------------------------- the container


@needs_cgroup
def test_create_limit_and_remove_leave_no_directory():
    c = Container(64 * MiB + 100)
    try:
        assert re.fullmatch(rf"gorun\.{os.getpid()}\.[0-9a-f]{{8}}", os.path.basename(c.path)), c.path
        parent = os.path.dirname(c.path)
        assert os.getpid() in procs_of(parent), "not made under this process's own memory cgroup"
        assert os.path.isdir(c.path) and c.version in (1, 2)
        assert c.limit_bytes == 64 * MiB  # rounded down to whole pages, as the kernel reports it

        def read(name):
            with open(os.path.join(c.path, name)) as f:
                return f.read().strip()

        if c.version == 1:
            assert int(read("memory.limit_in_bytes")) == 64 * MiB
            if os.path.exists(os.path.join(c.path, "memory.memsw.limit_in_bytes")):
                assert int(read("memory.memsw.limit_in_bytes")) == 64 * MiB
            assert read("memory.oom_control").splitlines()[0] == "oom_kill_disable 0"
        else:
            assert int(read("memory.max")) == 64 * MiB
            if os.path.exists(os.path.join(c.path, "memory.swap.max")):
                assert read("memory.swap.max") == "0"
        assert c.pids() == [] and c.oom_kills() == 0 and c.usage_bytes() < MiB
        assert c.peak_bytes() is None or c.peak_bytes() < MiB
        st = c.stat()
        assert st and all(isinstance(v, int) for v in st.values())
        assert "shmem" in st
    finally:
        c.remove()
    assert not os.path.exists(c.path)
    c.remove()  # idempotent
    with Container(16 * MiB) as c2:
        assert os.path.isdir(c2.path)
    assert not os.path.exists(c2.path)


@needs_cgroup
def test_bad_limit_is_refused():
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError):
            Container(bad)


@needs_cgroup
def test_child_over_the_limit_is_oom_killed_and_the_launcher_survives():
    home = memory_cgroup_line()
    with shm_file() as (_, fd), Container(32 * MiB) as c:
        rfd, wfd = os.pipe()
        pid, _ = fork_child(join_and_touch, c, fd, 96 * MiB, wfd)
        os.close(wfd)
        joined = read_all(rfd).strip()
        status = wait_child(pid)
        assert joined.endswith("/" + os.path.basename(c.path)), f"the child did not join: {joined!r}"
        assert killed_by(status) == signal.SIGKILL, f"child status {status:#x}, not SIGKILL"
        assert c.oom_kills() == 1
        assert memory_cgroup_line() == home  # the test process (the launcher) never moved
        # tmpfs charges outlive the killed child: still at the limit until the file is unlinked
        assert c.usage_bytes() > 24 * MiB
        assert c.peak_bytes() is None or c.peak_bytes() >= 31 * MiB


@needs_cgroup
def test_child_under_the_limit_is_not_killed_and_its_tmpfs_pages_stay_charged():
    with Container(64 * MiB) as c:
        with shm_file() as (_, fd):
            rfd, wfd = os.pipe()
            pid, _ = fork_child(join_and_touch, c, fd, 16 * MiB, wfd)
            os.close(wfd)
            read_all(rfd)
            status = wait_child(pid)
            assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, f"child status {status:#x}"
            assert c.oom_kills() == 0
            # the child is gone, its 16 MiB of tmpfs pages are still the container's
            assert 16 * MiB <= c.usage_bytes() < 20 * MiB
            assert c.stat().get("shmem", 0) >= 16 * MiB
        # unlinked: the pages are freed and uncharged
        assert c.usage_bytes() < 4 * MiB


@needs_cgroup
def test_entered_charges_fallocated_pages_to_the_container_and_comes_back():
    home = memory_cgroup_line()
    with Container(128 * MiB) as c, shm_file() as (_, fd):
        before = c.usage_bytes()
        with c.entered() as inside:
            assert inside is c
            assert memory_cgroup_line().endswith("/" + os.path.basename(c.path))
            assert os.getpid() in c.pids()
            os.posix_fallocate(fd, 0, 32 * MiB)
        assert memory_cgroup_line() == home
        assert os.getpid() not in c.pids()
        charged = c.usage_bytes() - before
        assert 32 * MiB <= charged < 36 * MiB, charged
        # outside again: new pages are charged to where we came from, not to the container
        os.posix_fallocate(fd, 32 * MiB, 16 * MiB)
        assert c.usage_bytes() - before < 36 * MiB
        # and on an exception too
        with pytest.raises(RuntimeError), c.entered():
            raise RuntimeError("inside")
        assert memory_cgroup_line() == home


@needs_cgroup
def test_remove_moves_a_process_still_inside_out_and_kills_nothing():
    c = Container(64 * MiB)
    pid = 0
    try:
        rfd, wfd = os.pipe()

        def body():
            c.join()
            os.write(wfd, b"in")
            time.sleep(60)

        pid, _ = fork_child(body)
        os.close(wfd)
        assert os.read(rfd, 2) == b"in"  # the child keeps its end open while it sleeps
        os.close(rfd)
        assert c.pids() == [pid]
        c.remove()
        assert not os.path.exists(c.path)
        assert os.waitpid(pid, os.WNOHANG) == (0, 0), "the child was killed"
        assert memory_cgroup_line(pid) == memory_cgroup_line()  # in the parent cgroup now
    finally:
        if pid:
            os.kill(pid, signal.SIGKILL)
            wait_child(pid)
        c.remove()


@needs_cgroup
def test_clean_stale_removes_only_empty_cgroups_of_dead_launchers():
    _, base, _ = container._own_memory_cgroup()
    dead, _ = fork_child(lambda: 0)
    wait_child(dead)  # reaped: its pid names no process now
    sleeper, _ = fork_child(lambda: time.sleep(60))
    paths = {
        "dead": os.path.join(base, f"gorun.{dead}.{secrets.token_hex(4)}"),
        "live": os.path.join(base, f"gorun.{sleeper}.{secrets.token_hex(4)}"),
        "busy": os.path.join(base, f"gorun.{dead}.{secrets.token_hex(4)}"),  # dead launcher, a process inside
    }
    try:
        for p in paths.values():
            os.mkdir(p)
        with open(os.path.join(paths["busy"], "cgroup.procs"), "w") as f:
            f.write(str(sleeper))
        removed = container.clean_stale()
        assert paths["dead"] in removed and not os.path.exists(paths["dead"])
        assert os.path.isdir(paths["live"]) and paths["live"] not in removed
        assert os.path.isdir(paths["busy"]) and paths["busy"] not in removed
    finally:
        os.kill(sleeper, signal.SIGKILL)
        wait_child(sleeper)
        for p in paths.values():
            with contextlib.suppress(FileNotFoundError):
                os.rmdir(p)
