"""Stuck processes are detected (docs/design.md "Stuck processes"): a worker or the GC process
that is alive but makes no progress ends the run with exit 1 and one message naming it, within
the stall timeout plus a little, and leaves no process and no segment behind.

Every run here is a real subprocess with a hard timeout: without the watchdog these runs hang
forever (or until their 60 s workloads end)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from conftest import REPO, gorun_env, own_segments, run_gorun, start_gorun
from gorun import _gorun, shm, watchdog

HARD_TIMEOUT = 30.0


def _children(proc: subprocess.Popen, n: int, timeout: float = 20.0) -> list[psutil.Process]:
    """The run's n+1 children (the GC process first: the launcher forks it before the workers),
    once they all exist."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            kids = psutil.Process(proc.pid).children()
        except psutil.NoSuchProcess:
            kids = []
        if len(kids) == n + 1:
            return sorted(kids, key=lambda c: (c.create_time(), c.pid))
        if proc.poll() is not None:
            break
        time.sleep(0.02)
    proc.kill()
    out, err = proc.communicate()
    pytest.fail(f"the run's children did not appear: rc={proc.returncode} {err[-2000:]}")


def _finish(proc: subprocess.Popen, timeout: float = HARD_TIMEOUT, what: str = "the run") -> tuple[str, str]:
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        for c in psutil.Process(proc.pid).children(recursive=True):
            c.kill()
        proc.kill()
        proc.communicate()
        pytest.fail(f"{what} did not end within {timeout:.0f}s (hang)")


def _gone(pids) -> bool:
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                return False
        except psutil.NoSuchProcess:
            pass
    return True


def _assert_stall_output(proc, out: str, err: str) -> str:
    """Exit 1, exactly one message (the stall) on stderr, the summary so far on stdout."""
    assert proc.returncode == 1, (out, err)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("gorun: stalled: "), err
    assert "gorun: workload alloc, 2 P" in out and "allocation" in out and "locks" in out, out
    return lines[0]


@pytest.mark.parametrize("victim", ["worker", "gc"])
def test_sigstop_ends_the_run_naming_the_stopped_process(victim):
    proc = start_gorun(
        "run", "alloc", "--procs", "2", "--duration", "60", "--max-heap", "512MiB", "--stall-timeout", "1"
    )
    kids = _children(proc, 2)
    pids = [k.pid for k in kids]
    time.sleep(0.5)  # let it run a few cycles
    target = kids[0] if victim == "gc" else kids[2]
    os.kill(target.pid, signal.SIGSTOP)
    t0 = time.monotonic()
    out, err = _finish(proc)
    elapsed = time.monotonic() - t0
    msg = _assert_stall_output(proc, out, err)
    if victim == "gc":
        assert f"the GC process (pid {target.pid}) made no progress" in msg, msg
    else:
        assert f"(pid {target.pid}) made no progress" in msg and "stalled: worker P" in msg, msg
    assert "OS state: stopped (SIGSTOP)" in msg, msg
    # the watchdog ended it, not --duration 60 (no tighter bound: the machine may be loaded)
    assert elapsed < 30, f"{elapsed:.2f}s: {msg}"
    assert _gone(pids)
    assert own_segments(proc.pid) == []


STOP_AT_FORK = """
import os, signal
_forks = [0]
def _before():
    _forks[0] += 1
def _child():
    if _forks[0] == int(os.environ["GORUN_TEST_STOP_FORK"]):  # the GC process is fork 1, P0 fork 2
        os.kill(os.getpid(), signal.SIGSTOP)
os.register_at_fork(before=_before, after_in_child=_child)
"""


def test_worker_stopped_in_its_first_milliseconds_is_named(tmp_path):
    """Found by bench/faults.py: a worker SIGSTOPped right after its fork, before it attached to
    its P, is waited for by nobody in the runtime (the GC process takes a P that never started),
    and the run hung. The launcher watches its own children, so the run ends naming it. The
    worker stops itself in its fork hook (a sitecustomize in the launcher), so the moment is
    exact."""
    (tmp_path / "sitecustomize.py").write_text(STOP_AT_FORK)
    env = {"PYTHONPATH": f"{tmp_path}{os.pathsep}{REPO}", "GORUN_TEST_STOP_FORK": "2"}
    proc = start_gorun("run", "alloc", "--procs", "2", "--stall-timeout", "1", "-p", "budget=64MiB", env=env)
    kids = _children(proc, 2)
    t0 = time.monotonic()
    out, err = _finish(proc)
    elapsed = time.monotonic() - t0
    msg = _assert_stall_output(proc, out, err)
    assert f"worker P0 (pid {kids[1].pid}) made no progress" in msg and "stopped (SIGSTOP)" in msg, msg
    assert "not attached to its P yet" in msg, msg
    assert elapsed < 30, f"{elapsed:.2f}s: {msg}"  # the watchdog, not the child's own end, ended it
    assert _gone([k.pid for k in kids])
    assert own_segments(proc.pid) == []


def _child(mode: str, stall: str, lock: str = "futex", env=None) -> tuple[subprocess.CompletedProcess, dict]:
    e = gorun_env()
    if env:
        e.update(env)
    p = subprocess.Popen(
        [sys.executable, str(REPO / "tests" / "stall_child.py"), mode, stall, lock],
        cwd=REPO,
        env=e,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out, err = _finish(p, what=f"stall_child {mode}")
    assert own_segments(p.pid) == []
    assert out.strip(), err
    res = json.loads(out.strip().splitlines()[-1])
    assert _gone(res.get("pids", []))
    return subprocess.CompletedProcess(p.args, p.returncode, out, err), res


def test_endless_c_call_is_named():
    cp, res = _child("spin", "1")
    assert cp.returncode == 1, cp.stderr
    msg = res["error"]
    p0 = res["pids"][0]
    assert msg.startswith("stalled: "), msg
    assert f"worker P0 (pid {p0}) made no progress" in msg, msg
    assert "OS state: running" in msg and "in a runtime call (test_spin hook)" in msg, msg
    assert "no safepoint reached" in msg and "the GC process (pid" in msg, msg
    assert res["statuses"][0] == "stalled"
    assert res["elapsed"] < 0.2 + 1 + 2, res
    assert "fatal error" not in cp.stderr and "Traceback" not in cp.stderr, cp.stderr


@pytest.mark.parametrize("lock", ["futex", "pthread", "sem"])
def test_lock_waiter_names_the_lock_and_its_stopped_holder(lock):
    cp, res = _child("lock", "1", lock)
    assert cp.returncode == 1, cp.stderr
    msg = res["error"]
    p0, p1 = res["pids"]
    assert f"stalled: worker P0 (pid {p0}) made no progress" in msg, msg
    assert "OS state: stopped (SIGSTOP)" in msg and "holding lock mheap" in msg, msg
    assert f"worker P1 (pid {p1}) has been waiting for lock mheap (held by it)" in msg, msg
    assert res["statuses"][0] == "stalled"
    assert res["elapsed"] < 0.2 + 1 + 2, res


def _stop_for(proc, kids, seconds: float) -> None:
    os.kill(kids[2].pid, signal.SIGSTOP)
    time.sleep(seconds)
    assert proc.poll() is None, "the run ended while a worker was stopped"
    os.kill(kids[2].pid, signal.SIGCONT)


@pytest.mark.parametrize("how", ["option", "env"])
def test_stall_timeout_off_waits_for_a_stopped_worker(how):
    args = ["run", "alloc", "--procs", "2", "--duration", "3", "--max-heap", "512MiB"]
    env = {"GORUN_STALL_TIMEOUT": "off"} if how == "env" else {"GORUN_STALL_TIMEOUT": "1"}
    if how == "option":
        args += ["--stall-timeout", "off"]  # the option wins over the environment
    proc = start_gorun(*args, env=env)
    kids = _children(proc, 2)
    time.sleep(0.3)
    _stop_for(proc, kids, 2.5)  # well past any 1 s timeout
    out, err = _finish(proc)
    assert proc.returncode == 0, err
    assert "stalled" not in err


def test_a_stop_shorter_than_the_timeout_is_not_a_stall():
    proc = start_gorun(
        "run", "alloc", "--procs", "2", "--duration", "3", "--max-heap", "512MiB", "--stall-timeout", "3"
    )
    kids = _children(proc, 2)
    time.sleep(0.3)
    _stop_for(proc, kids, 1.0)
    out, err = _finish(proc)
    assert proc.returncode == 0, err


def test_env_stall_timeout_applies():
    proc = start_gorun(
        "run", "alloc", "--procs", "2", "--duration", "60", "--max-heap", "512MiB", env={"GORUN_STALL_TIMEOUT": "1.5"}
    )
    kids = _children(proc, 2)
    time.sleep(0.3)
    os.kill(kids[1].pid, signal.SIGSTOP)
    t0 = time.monotonic()
    out, err = _finish(proc)
    msg = _assert_stall_output(proc, out, err)
    assert f"(pid {kids[1].pid}) made no progress for 1." in msg, msg
    assert time.monotonic() - t0 < 1.5 + 2
    assert own_segments(proc.pid) == []


@pytest.mark.parametrize("value", ["0", "-1", "abc", "nan", "inf", "", "1s"])
def test_bad_stall_timeout_is_one_line_exit_2(value):
    cp = run_gorun("run", "alloc", "--procs", "2", "--stall-timeout", value, timeout=30)
    assert cp.returncode == 2, cp.stderr
    assert cp.stderr.splitlines() == [f"gorun: error: bad --stall-timeout {value!r}: expected seconds > 0 or 'off'"]
    assert cp.stdout == ""
    assert own_segments(cp.pid) == []


def test_bad_env_stall_timeout_is_one_line_exit_2():
    cp = run_gorun("run", "alloc", "--procs", "2", timeout=30, env={"GORUN_STALL_TIMEOUT": "soon"})
    assert cp.returncode == 2, cp.stderr
    assert cp.stderr.splitlines() == ["gorun: error: bad GORUN_STALL_TIMEOUT 'soon': expected seconds > 0 or 'off'"]
    assert cp.stdout == ""


def test_runtime_stall_timeout_argument(monkeypatch):
    import gorun

    monkeypatch.delenv(watchdog.ENV_VAR, raising=False)
    assert gorun.Runtime(procs=1).stall_timeout == 10.0
    assert gorun.Runtime(procs=1, stall_timeout=2).stall_timeout == 2.0
    assert gorun.Runtime(procs=1, stall_timeout="OFF").stall_timeout is None
    monkeypatch.setenv(watchdog.ENV_VAR, "0.5")
    assert gorun.Runtime(procs=1).stall_timeout == 0.5
    assert gorun.Runtime(procs=1, stall_timeout=3).stall_timeout == 3.0
    monkeypatch.setenv(watchdog.ENV_VAR, "off")
    assert gorun.Runtime(procs=1).stall_timeout is None
    for bad in (0, -2, True, "x", float("nan"), [1]):
        with pytest.raises(ValueError, match="bad stall timeout"):
            gorun.Runtime(procs=1, stall_timeout=bad)


def test_a_zombie_is_dead():
    """An exited child that nobody reaped yet: kill(pid, 0) still succeeds on it."""
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    try:
        deadline = time.monotonic() + 10
        while psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        os.kill(pid, 0)  # does not raise: a zombie looks alive to kill(pid, 0)
        assert _gorun.pid_dead(pid)
        assert not shm._pid_alive(pid)
    finally:
        os.waitpid(pid, 0)
    assert _gorun.pid_dead(pid) and not shm._pid_alive(pid)
    assert not _gorun.pid_dead(os.getpid()) and shm._pid_alive(os.getpid())
