"""The launcher's life cycle (issue 6, items 5, 6 and 8): every exit path cleans up, segment names
cannot collide, a full /dev/shm is an OutOfMemory (never a SIGBUS), `gorun clean` goes on past a
segment it may not remove, and bad input is refused before anything starts.

Everything runs real gorun processes over real POSIX shared memory. Tests that need their own
/dev/shm (a tiny one, or one no other run on the machine can clean behind their back) run gorun in
a private mount namespace with a fresh tmpfs on /dev/shm (`unshare -m`, root only; skipped with
the reason otherwise)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import shutil
import subprocess
import sys
import tempfile
import time

import psutil
import pytest

import gorun
from gorun import _gorun

from conftest import (
    REPO,
    gorun_env,
    live_children,
    own_segments,
    run_gorun,
    run_in_private_shm,
    unlink_segment,
    without_stale_line,
)

PY = sys.executable


def _descendants_gone(pids: list[int], timeout: float = 10.0) -> list[int]:
    """The pids among `pids` still alive (not zombies) after waiting up to timeout."""
    deadline = time.monotonic() + timeout
    while True:
        alive = []
        for pid in pids:
            with contextlib.suppress(psutil.NoSuchProcess):
                if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                    alive.append(pid)
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.05)


def _kill_quietly(pids) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


# ---------------------------------------------------------------- stop signals


@pytest.mark.parametrize(
    "sig",
    [signal.SIGHUP, signal.SIGQUIT, signal.SIGTERM, signal.SIGINT],
    ids=["SIGHUP", "SIGQUIT", "SIGTERM", "SIGINT"],
)
def test_stop_signal_mid_run_leaves_nothing(sig):
    p = subprocess.Popen(
        [
            PY,
            "-m",
            "gorun",
            "run",
            "alloc",
            "--procs",
            "2",
            "--duration",
            "30",
            "-p",
            "budget=1TiB",
            "-p",
            "max_small=64",
            "-p",
            "large=0",
        ],
        cwd=REPO,
        env=gorun_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    kids: list[int] = []
    try:
        proc = psutil.Process(p.pid)
        deadline = time.monotonic() + 30
        while len(kids) < 3:  # the GC process and both workers
            assert p.poll() is None, f"gorun ended early: {p.communicate()}"
            assert time.monotonic() < deadline, "children never started"
            kids = [c.pid for c in live_children(proc)]
            time.sleep(0.05)
        time.sleep(0.3)
        p.send_signal(sig)
        out, err = p.communicate(timeout=30)
        err = without_stale_line(err)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
        _kill_quietly(_descendants_gone(kids, 0))
    assert p.returncode == 128 + sig, (p.returncode, err)
    assert err.strip().splitlines() == [
        f"gorun: run interrupted ({signal.Signals(sig).name}); workers stopped, segments removed"
    ], err
    assert "allocation" in out and "locks" in out, "the summary so far is printed"
    assert own_segments(p.pid) == [], "no segment left"
    assert _descendants_gone(kids) == [], "no process left (GC process and workers)"


@pytest.mark.parametrize("trial", range(5))
def test_early_sigterm_leaves_nothing(trial):
    # SIGTERM as soon as the first segment exists: during segment creation and initialization
    # (a 1 TiB reservation makes that take a while), before any child exists.
    p = subprocess.Popen(
        [PY, "-m", "gorun", "run", "alloc", "--procs", "1", "--max-heap", "1TiB", "-p", "budget=1MiB"],
        cwd=REPO,
        env=gorun_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        prefix = f"gorun.{p.pid}."
        while not any(e.startswith(prefix) for e in os.listdir("/dev/shm")):
            assert p.poll() is None, f"gorun ended early: {p.communicate()}"
            assert time.monotonic() < deadline, "no segment ever appeared"
        p.send_signal(signal.SIGTERM)
        proc = psutil.Process(p.pid)
        kids = [c.pid for c in live_children(proc)]
        out, err = p.communicate(timeout=30)
        err = without_stale_line(err)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    leftover = own_segments(p.pid)
    for s in leftover:
        unlink_segment(s)
    assert leftover == [], f"segments leaked: {leftover} (exit {p.returncode}, {err!r})"
    assert p.returncode == 143, (p.returncode, err)
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert _descendants_gone(kids) == []


CTRL_C_AT_STARTUP = r"""
import os, signal, sys

class CtrlCWhileImporting:
    # Ctrl-C arrives while the CLI loads the runtime (numpy: the slowest part of start-up)
    def find_spec(self, name, path=None, target=None):
        if name == "numpy":
            sys.meta_path.remove(self)
            os.kill(os.getpid(), signal.SIGINT)
        return None

sys.meta_path.insert(0, CtrlCWhileImporting())
from gorun.cli import main
sys.exit(main(["run", "alloc", "--procs", "1", "-p", "budget=1MiB"]))
"""


def test_ctrl_c_during_startup_is_one_line():
    p = subprocess.run(
        [PY, "-c", CTRL_C_AT_STARTUP], cwd=REPO, env=gorun_env(), capture_output=True, text=True, timeout=60
    )
    assert p.returncode == 130, (p.returncode, p.stderr)
    assert p.stderr.strip().splitlines() == ["gorun: interrupted (SIGINT)"], p.stderr


LAUNCHER_KILLED_AT_FORK = r"""
import os, signal, sys, time
import gorun

def after_in_child():
    os.write(1, b"%d\n" % os.getpid())
    time.sleep(0.3)  # the launcher dies before this child runs a line of its own

os.register_at_fork(after_in_child=after_in_child,
                    after_in_parent=lambda: os.kill(os.getpid(), signal.SIGKILL))
gorun.Runtime(procs=1, max_heap="64MiB").run(lambda g: time.sleep(60))
"""


def test_launcher_killed_at_fork_leaves_no_child():
    p = subprocess.Popen(
        [PY, "-c", LAUNCHER_KILLED_AT_FORK],
        cwd=REPO,
        env=gorun_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    kids = []
    try:
        line = p.stdout.readline()  # the forked child's pid (an orphan keeps the pipe open: no EOF)
        kids = [int(line)] if line.strip() else []
        assert p.wait(timeout=30) == -signal.SIGKILL
        assert len(kids) == 1, "the launcher died at its first fork (the GC process)"
        assert _descendants_gone(kids, 10) == [], "the orphaned GC process exits on its own"
    finally:
        _kill_quietly(kids)
        if p.poll() is None:
            p.kill()
        p.wait()
        p.stdout.close()
        for s in own_segments(p.pid):  # the launcher was SIGKILLed: its segments stay (gorun clean)
            unlink_segment(s)


# ---------------------------------------------------------------- segment names


PLANTED_NAMES = r"""
import json, os
import posix_ipc
import gorun
from gorun import shm

pid = os.getpid()
planted = [f"/gorun.{pid}.0.meta", f"/gorun.{pid}.0.arena"]  # the names runs of this pid used to get
for n in planted:
    posix_ipc.SharedMemory(n, posix_ipc.O_CREX, size=8192).close_fd()
out = {}
try:
    r = gorun.Runtime(procs=1, max_heap="64MiB").run(lambda g: g.new_bytes(100) and "ok")
    out["run"] = r.values
    try:
        shm.Segment(planted[0], 8192)
        out["collision"] = None
    except gorun.GorunError as e:
        out["collision"] = str(e)
finally:
    for n in planted:
        posix_ipc.unlink_shared_memory(n)
out["left"] = sorted(e for e in os.listdir("/dev/shm") if e.startswith(f"gorun.{pid}."))
print(json.dumps(out))
"""


def test_existing_segment_names_do_not_collide():
    p = subprocess.Popen(
        [PY, "-c", PLANTED_NAMES], cwd=REPO, env=gorun_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    out, err = p.communicate(timeout=60)
    for s in own_segments(p.pid):
        unlink_segment(s)
    assert p.returncode == 0, err
    d = json.loads(out.strip().splitlines()[-1])
    assert d["run"] == ["ok"], "a run is not disturbed by segments with the old names of its pid"
    msg = d["collision"]
    assert msg and "already exists" in msg and "\n" not in msg, msg
    assert d["left"] == []


def test_names_have_a_random_part():
    a, b = gorun.shm.new_run_names(), gorun.shm.new_run_names()
    assert a != b and a[0].startswith(f"/gorun.{os.getpid()}.") and a[0].endswith(".meta")
    assert gorun.shm._NAME_RE.match(a[1][1:]) and gorun.shm._NAME_RE.match("gorun.123.0.arena")


# ---------------------------------------------------------------- a private /dev/shm


SCRIPT_HEAD = r"""
import json, os, signal, subprocess, sys, time
PY = sys.executable
def gorun(*args, user=None):
    cmd = [PY, "-m", "gorun", *args]
    if user:
        cmd = ["setpriv", "--reuid=" + user, "--regid=nogroup", "--clear-groups", *cmd]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    return {"rc": p.returncode, "out": p.stdout, "err": p.stderr}
def shm():
    return sorted(os.listdir("/dev/shm"))
"""


def test_tiny_dev_shm_at_init_is_out_of_memory():
    d = run_in_private_shm(
        "512k",
        SCRIPT_HEAD
        + r"""
r = gorun("run", "alloc", "--procs", "1", "--max-heap", "64MiB", "-p", "budget=1MiB")
r["shm"] = shm()
print(json.dumps(r))
""",
    )
    assert d["rc"] == 1, d
    lines = d["err"].strip().splitlines()
    assert len(lines) == 1, d["err"]
    assert re.search(
        r"out of memory: cannot reserve \d+\.\d MiB of shared memory for the run's metadata: "
        r"/dev/shm has \d+\.\d MiB free",
        lines[0],
    ), lines
    assert "SIGBUS" not in d["err"]
    assert d["shm"] == [], "no segment left"


def test_full_dev_shm_at_growth_is_out_of_memory_in_the_worker():
    # the metadata fits (about 19 MiB for 1 P); the heap, all of it kept live, does not
    d = run_in_private_shm(
        "48m",
        SCRIPT_HEAD
        + r"""
r = gorun("run", "alloc", "--procs", "1", "--max-heap", "1GiB", "-p", "budget=1GiB", "-p", "keep=10000000",
          "--gogc", "off")
r["shm"] = shm()
print(json.dumps(r))
""",
    )
    assert d["rc"] == 1, d
    err = d["err"]
    assert re.search(
        r"out of memory: cannot allocate .*: /dev/shm is full \(\d+\.\d MiB free; growing the heap "
        r"needs \d+\.\d MiB of shared memory\)",
        err,
    ), err
    assert "SIGBUS" not in err and "died" not in err, err
    assert "Traceback" not in err
    assert d["shm"] == [], "no segment left"


def test_segment_creation_failure_is_one_line():
    # /dev/shm that only root may write: a run as nobody cannot create its segments
    d = run_in_private_shm(
        "8m",
        SCRIPT_HEAD
        + r"""
r = gorun("run", "alloc", "--procs", "1", "--max-heap", "64MiB", "-p", "budget=1MiB", user="nobody")
r["shm"] = shm()
print(json.dumps(r))
""",
        mode="0755",
    )
    assert d["rc"] == 1, d
    lines = d["err"].strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gorun: error: cannot create shared-memory segment /gorun."), d
    assert "Permission denied" in lines[0]
    assert d["shm"] == []


def test_next_run_removes_a_killed_launchers_segments():
    d = run_in_private_shm(
        "256m",
        SCRIPT_HEAD
        + r"""
import psutil
p = subprocess.Popen([PY, "-m", "gorun", "run", "alloc", "--procs", "1", "--max-heap", "64MiB", "--duration", "60",
                      "-p", "budget=1TiB"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
deadline = time.monotonic() + 30
while len(psutil.Process(p.pid).children()) < 2 and time.monotonic() < deadline:
    time.sleep(0.05)
kids = [c.pid for c in psutil.Process(p.pid).children()]
time.sleep(0.3)
p.kill()
p.wait()
left = shm()
deadline = time.monotonic() + 10
while any(psutil.pid_exists(k) and psutil.Process(k).status() != psutil.STATUS_ZOMBIE for k in kids) \
        and time.monotonic() < deadline:
    time.sleep(0.05)
r = gorun("run", "alloc", "--procs", "1", "--max-heap", "64MiB", "-p", "budget=1MiB")
r.update(pid=p.pid, left=left, kids=len(kids), shm=shm())
print(json.dumps(r))
""",
    )
    assert d["kids"] == 2
    assert len(d["left"]) == 2 and all(n.startswith(f"gorun.{d['pid']}.") for n in d["left"]), d
    assert d["rc"] == 0, d
    lines = d["err"].strip().splitlines()
    assert len(lines) == 1, d["err"]
    assert lines[0].startswith(f"gorun: removed 2 segments of dead run(s) (pids {d['pid']}): "), lines
    assert lines[0].endswith(" MiB")
    assert d["shm"] == []


def test_clean_as_another_user_goes_on_past_what_it_may_not_remove():
    d = run_in_private_shm(
        "8m",
        SCRIPT_HEAD
        + r"""
import posix_ipc, pwd
dead = subprocess.run([PY, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout.strip()
roots = f"/gorun.{dead}.0123456789abcdef.meta"       # root's segment of a dead run
nobodys = f"/gorun.{dead}.7.arena"                   # an old-style name, owned by nobody
for n in (roots, nobodys):
    posix_ipc.SharedMemory(n, posix_ipc.O_CREX, mode=0o600, size=8192).close_fd()
nb = pwd.getpwnam("nobody")
os.chown("/dev/shm" + nobodys, nb.pw_uid, nb.pw_gid)
r = gorun("clean", user="nobody")
r.update(roots=roots, nobodys=nobodys, shm=shm())
print(json.dumps(r))
""",
    )
    assert d["rc"] == 1, d
    lines = d["err"].strip().splitlines()
    assert lines == [f"gorun: cannot remove {d['roots']}: Permission denied"], d["err"]
    assert f"removed {d['nobodys']}" in d["out"], d["out"]
    assert d["shm"] == [d["roots"][1:]], "root's segment stays, nobody's is gone"


# ---------------------------------------------------------------- bad input, before anything starts


def _refused(r, *needles):
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gorun: error:"), r.stderr
    for n in needles:
        assert n in lines[0], (n, lines[0])
    assert r.stdout == "" and own_segments(r.pid) == []
    return lines[0]


@pytest.mark.parametrize(
    "args,needles",
    [
        (["binary-trees", "-p", "depth=99"], ["depth", "'99'", "0..24"]),
        (["binary-trees", "-p", "depth=1KiB"], ["depth", "'1KiB'"]),
        (["binary-trees", "-p", "depth=1.9"], ["depth", "'1.9'"]),
        (["alloc", "-p", "tiny=2.0"], ["tiny", "'2.0'"]),
        (["alloc", "-p", "tiny=x"], ["tiny", "'x'"]),
        (["alloc", "-p", "budget=1.5"], ["budget", "'1.5'"]),
        (["alloc", "-p", "keep=-1"], ["keep", "'-1'"]),
        (["alloc", "-p", "tiny=0.9", "-p", "large=0.5"], ["tiny", "large"]),
        (["gcbench", "-p", "min_depth=10", "-p", "max_depth=8"], ["min_depth", "max_depth"]),
        (["graph", "-p", "nglobals=0"], ["nglobals", "'0'"]),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) and v and v[0][0] != "'" and "-p" in v else None,
)
def test_bad_workload_parameters_are_refused_before_the_run(args, needles):
    t0 = time.monotonic()
    _refused(run_gorun("run", *args), *needles)
    assert time.monotonic() - t0 < 20


def test_json_folder_missing_is_refused_before_the_run(tmp_path):
    path = tmp_path / "no" / "such" / "out.json"
    t0 = time.monotonic()
    # a run that would take 30 s: the error must come first
    line = _refused(
        run_gorun("run", "alloc", "--procs", "1", "--duration", "30", "-p", "budget=1TiB", "--json", str(path)),
        str(path),
        "does not exist",
    )
    assert time.monotonic() - t0 < 20, line


def test_json_path_that_is_a_folder_is_refused(tmp_path):
    _refused(run_gorun("run", "alloc", "--json", str(tmp_path)), str(tmp_path))


def test_json_folder_not_writable_is_refused():
    if os.geteuid() != 0:
        pytest.skip("runs gorun as nobody: needs root")
    folder = tempfile.mkdtemp(dir="/tmp", prefix="gorun-test-")  # root's, mode 0755: nobody may not write
    try:
        os.chmod(folder, 0o755)
        cmd = [
            "setpriv",
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            PY,
            "-m",
            "gorun",
            "run",
            "alloc",
            "--duration",
            "30",
            "-p",
            "budget=1TiB",
            "--json",
            os.path.join(folder, "out.json"),
        ]
        r = subprocess.run(cmd, cwd=REPO, env=gorun_env(), capture_output=True, text=True, timeout=60)
        assert r.returncode == 2 and r.stderr.startswith("gorun: error: bad --json"), r.stderr
        assert "not writable" in r.stderr and len(r.stderr.strip().splitlines()) == 1
        assert os.listdir(folder) == []
    finally:
        shutil.rmtree(folder)


@pytest.mark.parametrize(
    "env,needles",
    [
        ({"GOMAXPROCS": "0"}, ["GOMAXPROCS", "'0'"]),
        ({"GOMAXPROCS": "999"}, ["GOMAXPROCS", "'999'"]),
        ({"GOMAXPROCS": "two"}, ["GOMAXPROCS", "'two'"]),
        ({"GOMEMLIMIT": "1GB"}, ["GOMEMLIMIT", "'1GB'"]),
        ({"GOMEMLIMIT": "-5"}, ["GOMEMLIMIT", "'-5'"]),
        ({"GOMEMLIMIT": "1.5GiB"}, ["GOMEMLIMIT", "'1.5GiB'"]),
    ],
    ids=lambda v: ",".join(f"{k}={x}" for k, x in v.items()) if isinstance(v, dict) else None,
)
def test_bad_environment_is_refused(env, needles):
    _refused(run_gorun("run", "alloc", "-p", "budget=1MiB", env=env), *needles)


def test_api_refuses_bad_builtin_parameters_before_anything_starts():
    from gorun.workloads.alloc import alloc
    from gorun.workloads.binary_trees import binary_trees

    rt = gorun.Runtime(procs=1, max_heap="64MiB")
    for fn, params, needle in [
        (binary_trees, {"depth": 99}, "depth"),
        (binary_trees, {"depth": 1.9}, "depth"),
        (binary_trees, {"depth": True}, "depth"),
        (alloc, {"tiny": 2.0}, "tiny"),
        (alloc, {"budget": "1MiB"}, "budget"),
        (alloc, {"nosuch": 1}, "nosuch"),
    ]:
        with pytest.raises(ValueError, match=needle):
            rt.run(fn, **params)
    assert not _gorun.attached() and own_segments() == [] and live_children() == []
    # floats accept ints, and a good value runs
    assert rt.run(alloc, budget=1 << 16, tiny=0, large=0).values[0]["bytes"] >= 1 << 16


def test_api_reads_gomemlimit_in_gos_syntax(monkeypatch):
    monkeypatch.setenv("GOMEMLIMIT", "1GiB")
    assert gorun.Runtime(procs=1).memory_limit == 1 << 30
    monkeypatch.setenv("GOMEMLIMIT", "off")
    assert gorun.Runtime(procs=1).memory_limit == (1 << 63) - 1
    monkeypatch.setenv("GOMEMLIMIT", "1 GiB")
    with pytest.raises(ValueError, match="bad GOMEMLIMIT '1 GiB'"):
        gorun.Runtime(procs=1)
    assert gorun.Runtime(procs=1, memory_limit="64MiB").memory_limit == 64 << 20  # the argument wins
