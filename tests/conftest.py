"""Shared fixtures and helpers of the gorun test suite.

Everything here works with real processes, real POSIX shared memory and real locks:

- ``heap``: a standalone heap attached in the test process itself (``gorun.heap.SharedHeap``, the
  setup the launcher uses), for the test hooks of the C core (page allocator, locks). Parametrize
  it indirectly with a lock kind (``"futex"``, ``"pthread"``, ``"sem"``) or a dict of
  ``standalone_heap`` keywords.
- ``heap_factory``: a context manager that builds such a heap on demand (hypothesis examples).
- a session-scoped check that this test process left no ``/dev/shm/gorun.<our pid>.*`` segment
  (``gorun.<pid>.<random hex>.meta|arena``) and no child process behind.
- ``run_in_private_shm``: a script run with a /dev/shm of its own (a private mount namespace). pytest-xdist runs several workers at once (and other gorun runs
  may be alive on the machine), so only this process's own pid and children are looked at.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import posix_ipc
import psutil
import pytest

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # this checkout's gorun, also when pytest runs without `python -m`
    sys.path.insert(0, str(REPO))

from gorun import _gorun, shm  # noqa: E402
from gorun.heap import SharedHeap  # noqa: E402

LOCK_KINDS = _gorun.constants()["lock_kinds"]  # from the C core
MHEAP_LOCK = -1
BUILD = _gorun.constants()  # "debug" (0, 1, 2) and "sanitize" (0, 1): the variant under test


def pytest_configure(config):
    """make debug-test and make sanitize set GORUN_EXPECT_DEBUG / GORUN_EXPECT_SANITIZE: refuse
    to run if the extension imported is not that variant of this tree (a silent fallback to the
    normal build would make the run worthless)."""
    for env, key in (("GORUN_EXPECT_DEBUG", "debug"), ("GORUN_EXPECT_SANITIZE", "sanitize")):
        want = os.environ.get(env)
        if want is None:
            continue
        where = Path(_gorun.__file__).resolve()
        if int(want) != BUILD[key] or not where.is_relative_to(REPO):
            raise pytest.UsageError(
                f"{env}={want}, but the extension imported ({where}) has {key}={BUILD[key]} "
                f"(expected one built into {REPO})"
            )


# ---------------------------------------------------------------- standalone heaps


def standalone_heap(
    lock: str = "futex",
    arena_size: int = 64 << 20,
    nprocs: int = 2,
    root_slots: int = 4096,
    nglobals: int = 64,
    debug_flags: int = 0,
) -> SharedHeap:
    """A heap created and attached in this process by gorun.heap.SharedHeap, the setup
    gorun.Runtime.run uses, with the suite's defaults; use it as ``with standalone_heap(...) as h``."""
    return SharedHeap(
        arena_size, nprocs=nprocs, lock=lock, root_slots=root_slots, nglobals=nglobals, debug_flags=debug_flags
    )


@contextlib.contextmanager
def shm_test_file(tag: str, size: int = 0):
    """A sparse /dev/shm file of a test (not named like a gorun segment), as (path, fd); unlinked
    on every path, also when the code under test closed the fd."""
    import secrets

    path = f"/dev/shm/gorun-test-{tag}.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        if size:
            os.ftruncate(fd, size)
        yield path, fd
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        with contextlib.suppress(OSError):
            os.close(fd)


def unlink_segment(name: str) -> None:
    """Unlink a segment by name ('/gorun...' or 'gorun...'); nothing if it is already gone."""
    with contextlib.suppress(posix_ipc.ExistentialError):
        posix_ipc.unlink_shared_memory(name if name.startswith("/") else "/" + name)


@pytest.fixture
def heap(request):
    """A heap attached in the test process; param: a lock kind or a dict of standalone_heap keywords."""
    param = getattr(request, "param", "futex")
    kw = dict(param) if isinstance(param, dict) else {"lock": param}
    with standalone_heap(**kw) as h:
        yield h


@pytest.fixture
def heap_factory():
    """standalone_heap as a fixture, for tests that need a fresh heap per hypothesis example."""
    return standalone_heap


# ---------------------------------------------------------------- processes and segments


def own_segments(pid: int | None = None) -> list[str]:
    """Names in /dev/shm of gorun segments created by launcher `pid` (default: this process)."""
    pid = os.getpid() if pid is None else pid
    try:
        entries = os.listdir(shm.SHM_DIR)
    except FileNotFoundError:
        return []
    return sorted(e for e in entries if e.startswith(f"gorun.{pid}."))


def live_children(proc: psutil.Process | None = None, zombies: bool = False) -> list[psutil.Process]:
    """Descendants of proc (default: this process) that still exist; zombies (exited, not yet
    reaped) count only with zombies=True."""
    proc = proc or psutil.Process()
    out = []
    try:
        kids = proc.children(recursive=True)
    except psutil.NoSuchProcess:
        return out
    for c in kids:
        try:
            if zombies or c.status() != psutil.STATUS_ZOMBIE:
                out.append(c)
        except psutil.NoSuchProcess:
            pass
    return out


def wait_child(pid: int, timeout: float = 60.0) -> int:
    """waitpid with a hang guard: on timeout the child is killed and the test fails."""
    deadline = time.monotonic() + timeout
    while True:
        r, status = os.waitpid(pid, os.WNOHANG)
        if r == pid:
            return status
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail(f"child {pid} did not finish within {timeout:.0f}s (hang)")
        time.sleep(0.005)


def fork_child(fn, *args, capture_stderr: bool = False):
    """Fork a child that runs fn(*args) and exits with its return value (int, default 0); an
    exception exits 99 after printing it. Returns (pid, fd of the child's stderr or None)."""
    rfd = wfd = None
    if capture_stderr:
        rfd, wfd = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 99
        try:
            if capture_stderr:
                os.close(rfd)
                os.dup2(wfd, 2)
            rc = fn(*args)
            code = 0 if rc is None else int(rc)
        except BaseException as e:  # noqa: BLE001
            with contextlib.suppress(Exception):
                os.write(2, f"child exception: {e!r}\n".encode())
        finally:
            os._exit(code)
    if capture_stderr:
        os.close(wfd)
    return pid, rfd


def read_all(fd: int, timeout: float = 60.0) -> str:
    """Everything written to fd until EOF, or what arrived until the timeout (hang guard)."""
    chunks = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                break
            b = os.read(fd, 65536)
            if not b:
                break
            chunks.append(b)
    finally:
        os.close(fd)
    return b"".join(chunks).decode(errors="replace")


STALE_LINE = re.compile(r"^gorun: removed \d+ segments? of dead run\(s\) \(pids [\d, ]+\): [\d.]+ MiB\n", re.M)


def without_stale_line(err: str) -> str:
    """stderr without the one-line notice of a run that removed dead runs' segments first: other
    tests (and other gorun runs on the machine) kill launchers, and whichever run starts next
    removes their segments and says so."""
    return STALE_LINE.sub("", err)


def start_gorun(*args, env: dict | None = None) -> subprocess.Popen:
    """Start `python -m gorun ARGS` from the repository (gorun_env() plus env), output piped."""
    e = gorun_env()
    if env:
        e.update(env)
    return subprocess.Popen(
        [sys.executable, "-m", "gorun", *args],
        cwd=REPO,
        env=e,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run_gorun(*args, timeout: float = 60.0, env: dict | None = None) -> subprocess.CompletedProcess:
    """`python -m gorun ARGS` from the repository, with a hang guard; returns the result (stderr
    without the stale-segment notice, see without_stale_line) and records the child's pid as .pid."""
    p = start_gorun(*args, env=env)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        pytest.fail(f"gorun {' '.join(args)} did not finish within {timeout:.0f}s")
    cp = subprocess.CompletedProcess(p.args, p.returncode, out, without_stale_line(err))
    cp.pid = p.pid
    return cp


def gorun_env() -> dict:
    """The environment for a gorun subprocess: this checkout first, no GODEBUG/GOMAXPROCS/GOMEMLIMIT."""
    e = dict(os.environ)
    e["PYTHONPATH"] = str(REPO) + (os.pathsep + e["PYTHONPATH"] if e.get("PYTHONPATH") else "")
    e.pop("GODEBUG", None)
    e.pop("GOMAXPROCS", None)
    e.pop("GOMEMLIMIT", None)
    return e


def run_in_private_shm(size: str, script: str, mode: str = "1777", timeout: float = 120) -> dict:
    """Run a Python script (as root) in a private mount namespace whose /dev/shm is a fresh tmpfs
    of `size` (`unshare -m`): a tiny /dev/shm, or one that no other gorun run on the machine
    cleans behind the test's back. The script prints a JSON document on its last line, returned
    here. Skips the test, with the reason, when that is not possible (not root, no unshare)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a private /dev/shm (unshare -m)")
    setup = f"mount -t tmpfs -o size={size},mode={mode} gorun-test /dev/shm"
    cmd = [
        "unshare",
        "-m",
        "--propagation",
        "private",
        "sh",
        "-c",
        f'{setup} && exec "$0" "$@"',
        sys.executable,
        "-c",
        script,
    ]
    try:
        p = subprocess.run(cmd, cwd=REPO, env=gorun_env(), capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        pytest.skip("unshare(1) is not installed")
    if p.returncode != 0 and ("unshare failed" in p.stderr or "mount:" in p.stderr):
        pytest.skip(f"cannot make a private /dev/shm here: {p.stderr.strip()}")
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- the end-of-session check


@pytest.fixture(scope="session", autouse=True)
def no_leftovers_at_session_end():
    """After the whole session: no gorun segment of this process in /dev/shm, no child left."""
    yield
    # give children killed in the last test a moment to be reaped by whoever owns them
    deadline = time.monotonic() + 5
    while live_children(zombies=True) and time.monotonic() < deadline:
        time.sleep(0.05)
    kids = live_children(zombies=True)  # an unreaped child is a leftover too
    segs = own_segments()
    for c in kids:  # do not leave them behind even when failing
        with contextlib.suppress(psutil.NoSuchProcess):
            c.kill()
    for s in segs:
        unlink_segment(s)
    assert not segs, f"gorun segments left in /dev/shm by this test process: {segs}"
    assert not kids, f"child processes left running: {[(c.pid, c.name()) for c in kids]}"
