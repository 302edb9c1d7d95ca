"""Bad input, heap exhaustion, failing and dying workers, interruption and `gorun clean`:
each ends with the documented exit code or exception, and leaves no shared-memory segment and
no process behind."""

from __future__ import annotations

import json
import re
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

import gorun
from gorun import _gorun

from conftest import REPO, gorun_env, live_children, own_segments, run_gorun, run_in_private_shm, without_stale_line

# ---------------------------------------------------------------- bad input on the command line


@pytest.mark.parametrize(
    "args,bad",
    [
        (["run", "alloc", "--procs", "0"], "0"),
        (["run", "alloc", "--procs", "abc"], "abc"),
        (["run", "alloc", "--procs", "-3"], "-3"),
        (["run", "alloc", "--lock", "spin"], "spin"),
        (["run", "nosuchworkload"], "nosuchworkload"),
        (["run", "alloc", "--max-heap", "1KiB"], "1KiB"),
        (["run", "alloc", "--max-heap", "12XB"], "12XB"),
        (["run", "alloc", "-p", "budget=12XB"], "12XB"),
        (["run", "alloc", "-p", "nosuch=1"], "nosuch"),
        (["run", "alloc", "-p", "budget"], "budget"),
        (["run", "alloc", "--duration", "-1"], "-1"),
        (["run", "alloc", "--seed", "x1"], "x1"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else None,
)
def test_bad_input_exits_2_with_one_line(args, bad):
    r = run_gorun(*args)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, f"one-line error expected: {r.stderr!r}"
    assert lines[0].startswith("gorun: error:")
    assert repr(bad) in lines[0] or bad in lines[0].split(), f"the message names {bad!r}: {lines[0]}"
    assert r.stdout == ""
    assert own_segments(r.pid) == [], "nothing left behind"


def test_good_run_exits_0_with_summary_and_json(tmp_path):
    # the counterpart of the failures below: a run that ends well, and the --json document
    out = tmp_path / "run.json"
    r = run_gorun(
        "run", "alloc", "--procs", "2", "--lock", "sem", "--max-heap", "256MiB", "-p", "budget=8MiB", "--json", str(out)
    )
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    assert "allocation" in r.stdout and "locks" in r.stdout
    assert own_segments(r.pid) == []
    d = json.loads(out.read_text())
    assert d["procs"] == 2 and d["lock"] == "sem"
    assert d["alloc"]["objects"] == sum(p["objects"] for p in d["alloc"]["per_p"]) > 0
    assert d["alloc"]["bytes"] >= 2 * (8 << 20)
    assert [p["status"] for p in d["alloc"]["per_p"]] == ["ok", "ok"]
    fields = ("acquisitions", "contended", "wait_ns_total", "wait_ns_max", "hold_ns_total")
    for name in ("mheap", "mcentral"):
        lk = d["locks"][name]
        assert all(f in lk for f in fields)
        assert lk["acquisitions"] > 0 and lk["contended"] <= lk["acquisitions"]
    byc = d["locks"]["mcentral_by_class"]
    assert sum(v["acquisitions"] for v in byc.values()) == d["locks"]["mcentral"]["acquisitions"]
    # the GC may have freed everything by the end; the peak shows the heap was used
    assert 0 <= d["heap"]["inuse_bytes"] <= d["heap"]["peak_inuse_bytes"] <= 256 << 20
    assert d["heap"]["peak_inuse_bytes"] > 0


# ---------------------------------------------------------------- heap exhaustion


def test_heap_exhaustion_cli(tmp_path):
    out = tmp_path / "run.json"
    # keep=10M: every object stays live, so the heap must run out whatever the GC does
    r = run_gorun(
        "run",
        "alloc",
        "--procs",
        "2",
        "--max-heap",
        "16MiB",
        "-p",
        "budget=1GiB",
        "-p",
        "keep=10000000",
        "--json",
        str(out),
    )
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "out of memory" in r.stderr and "max-heap" in r.stderr and "16.0 MiB" in r.stderr
    assert "Traceback" not in r.stderr
    # the summary so far
    assert "allocation" in r.stdout and "heap:" in r.stdout and "locks" in r.stdout and "mheap" in r.stdout
    assert own_segments(r.pid) == []
    d = json.loads(out.read_text())
    assert d["procs"] == 2 and d["lock"] == "futex"
    assert 0 < d["heap"]["inuse_bytes"] <= 16 << 20
    assert d["alloc"]["objects"] > 0 and len(d["alloc"]["per_p"]) == 2


def _hog(g):
    keep = []
    while True:  # never returns: only out-of-memory ends it (everything stays live, so the GC
        keep.append(g.new_bytes(100_000))  # cannot help)


def test_heap_exhaustion_api():
    with pytest.raises(gorun.OutOfMemory) as ei:
        gorun.Runtime(procs=2, max_heap="8MiB").run(_hog)
    msg = str(ei.value)
    assert "out of memory" in msg and "--max-heap=8.0 MiB" in msg and "in use" in msg
    res = ei.value.result
    assert res is not None and res.stats["mheap"]["ooms"] >= 1
    assert res.stats["mheap"]["pages_inuse"] * 8192 <= 8 << 20
    assert "oom" in [o.status for o in res.outcomes]
    assert not _gorun.attached()
    assert own_segments() == [] and live_children() == []


# ---------------------------------------------------------------- workers that fail


def _raise_in_p1(g):
    for _ in range(1000):
        g.new_bytes(64)
    if g.id == 1:
        raise ValueError("boom-7f3a in the workload")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # P0 keeps working until the launcher stops it
        g.new_bytes(64)
        time.sleep(0.001)
    return "P0 was not stopped"


def test_workload_exception_becomes_run_error():
    t0 = time.monotonic()
    with pytest.raises(gorun.RunError) as ei:
        gorun.Runtime(procs=2).run(_raise_in_p1)
    assert time.monotonic() - t0 < 30, "the other worker is stopped at once (hang guard)"
    msg = str(ei.value)
    assert "P1" in msg and "Traceback" in msg and "ValueError: boom-7f3a in the workload" in msg
    assert "_raise_in_p1" in msg, "the traceback names the workload function"
    res = ei.value.result
    assert res is not None and res.outcomes[1].status == "error"
    assert own_segments() == [] and live_children(zombies=True) == []


def _die_in_p1(g):
    for _ in range(1000):
        g.new_bytes(64)
    if g.id == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        g.new_bytes(64)
        time.sleep(0.001)
    return "P0 was not stopped"


def test_worker_killed_mid_run_becomes_run_error():
    t0 = time.monotonic()
    with pytest.raises(gorun.RunError) as ei:
        gorun.Runtime(procs=2).run(_die_in_p1)
    assert time.monotonic() - t0 < 30, "the death is noticed (hang guard)"
    msg = str(ei.value)
    assert "P1" in msg and "died" in msg and "SIGKILL" in msg
    assert ei.value.result.outcomes[1].status == "died"
    assert own_segments() == [] and live_children(zombies=True) == []


def test_nested_run_is_refused(heap):
    with pytest.raises(gorun.GorunError, match="already has a gorun heap attached"):
        gorun.Runtime(procs=1).run(lambda g: None)


def test_refused_nested_run_leaves_the_existing_heap_attached(heap):
    with pytest.raises(gorun.GorunError):
        gorun.Runtime(procs=1).run(lambda g: None)
    assert _gorun.attached()


@pytest.mark.parametrize(
    "kw",
    [
        dict(procs=0),
        dict(procs=-1),
        dict(procs=65),
        dict(procs=True),
        dict(procs="2"),
        dict(lock="spin"),
        dict(max_heap="1KiB"),
        dict(max_heap="12XB"),
        dict(max_heap=-5),
        dict(duration=0),
        dict(root_slots=0),
        dict(nglobals=0),
        dict(godebug_env="nosuch=1"),
    ],
)
def test_runtime_rejects_bad_arguments(kw):
    with pytest.raises(ValueError):
        gorun.Runtime(**{"procs": 1, **kw})


# ---------------------------------------------------------------- interruption


# a CLI run stopped by SIGINT, SIGTERM, SIGHUP or SIGQUIT: tests/test_lifecycle.py


API_INTERRUPT_SCRIPT = r"""
import json, os, sys, time
import gorun
from gorun import _gorun

def sleepy(g):
    time.sleep(60)

out = {}
try:
    gorun.Runtime(procs=2).run(sleepy)
    out["raised"] = None
except gorun.Interrupted as e:
    out["raised"] = "Interrupted"
    out["has_result"] = e.result is not None
out["attached"] = _gorun.attached()
out["segments"] = [n for n in os.listdir("/dev/shm") if n.startswith("gorun.%d." % os.getpid())]
print(json.dumps(out))
"""


def test_keyboard_interrupt_in_the_api_cleans_up():
    # SIGINT to a process inside Runtime.run: the workers ignore it, the launcher stops them
    p = subprocess.Popen(
        [sys.executable, "-c", API_INTERRUPT_SCRIPT],
        cwd=REPO,
        env=gorun_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        proc = psutil.Process(p.pid)
        deadline = time.monotonic() + 30
        workers = []
        while len(workers) < 2:
            assert p.poll() is None, f"ended early: {p.communicate()}"
            assert time.monotonic() < deadline, "workers never started"
            workers = live_children(proc)
            time.sleep(0.05)
        wpids = [w.pid for w in workers]
        time.sleep(0.5)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert p.returncode == 0, err
    d = json.loads(out.strip().splitlines()[-1])
    assert d == {"raised": "Interrupted", "has_result": True, "attached": False, "segments": []}
    assert [pid for pid in wpids if psutil.pid_exists(pid)] == [], "workers were reaped"


# ---------------------------------------------------------------- gorun clean


CLEAN_SCRIPT = r"""
import json, os, subprocess, sys
import posix_ipc
def gorun(*args):
    p = subprocess.run([sys.executable, "-m", "gorun", *args], capture_output=True, text=True, timeout=60)
    return {"rc": p.returncode, "out": p.stdout, "err": p.stderr}
dead_pid = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True, check=True).stdout)
dead = [f"/gorun.{dead_pid}.0.meta", f"/gorun.{dead_pid}.0123456789abcdef.arena"]  # old and new names
live = f"/gorun.{os.getpid()}.999.meta"
for n in dead + [live]:
    posix_ipc.SharedMemory(n, posix_ipc.O_CREX, size=8192).close_fd()
out = {"dead": dead, "live": live, "dry": gorun("clean", "--dry-run")}
out["after_dry"] = sorted(os.listdir("/dev/shm"))
out["clean"] = gorun("clean")
out["after"] = sorted(os.listdir("/dev/shm"))
for n in dead + [live]:
    try:
        posix_ipc.unlink_shared_memory(n)
    except posix_ipc.ExistentialError:
        pass
print(json.dumps(out))
"""


def test_clean_removes_dead_launchers_segments_only():
    # In a /dev/shm of its own: any gorun run on the machine removes dead runs' segments first.
    d = run_in_private_shm("8m", CLEAN_SCRIPT)
    dead, live = d["dead"], d["live"]
    assert d["dry"]["rc"] == 0, d["dry"]
    for n in dead:
        assert f"would remove {n}" in d["dry"]["out"]
    assert f"kept {live}" in d["dry"]["out"]
    assert d["after_dry"] == sorted(n[1:] for n in dead + [live]), "--dry-run removes nothing"
    assert d["clean"]["rc"] == 0, d["clean"]["err"]
    for n in dead:
        assert f"removed {n}" in d["clean"]["out"]
    assert f"kept {live} (its launcher is alive)" in d["clean"]["out"]
    assert d["after"] == [live[1:]]


def test_out_of_memory_only_after_a_collection():
    """Issue 6.7: binary-trees depth 16 keeps ~9 MiB live; at --max-heap 16MiB an allocation
    that finds no page runs a full cycle and retries instead of failing (it failed before)."""
    r = run_gorun("run", "binary-trees", "--procs", "2", "-p", "depth=16", "--max-heap", "16MiB", timeout=120)
    assert r.returncode == 0, r.stderr
    assert "long lived tree of depth 16" in r.stdout
    assert own_segments(r.pid) == []


def _oom_after_gc(g):
    keep = []
    if g.id == 0:
        while True:  # 400 KiB chunks stay live; garbage in between must be collected first
            keep.append(g.new_bytes(400_000))
            for _ in range(20):
                g.new_bytes(50_000)
    return 0


def test_out_of_memory_message_names_limit_live_heap_and_request():
    with pytest.raises(gorun.OutOfMemory) as ei:
        gorun.Runtime(procs=2, max_heap="16MiB", gogc="off").run(_oom_after_gc)
    msg = str(ei.value)
    m = re.search(
        r"cannot allocate ([\d.]+) KiB: the heap is limited to --max-heap=16.0 MiB; "
        r"live heap after a full collection: ([\d.]+) MiB",
        msg,
    )
    assert m, msg
    assert m.group(1) == "390.6"  # the request: 400,000 + the 8-byte header
    assert 12 <= float(m.group(2)) <= 16  # what stayed live: the kept chunks, no garbage
    res = ei.value.result
    assert res.to_dict()["gc"]["cycles"] >= 1  # GOGC=off: only the out-of-memory path ran cycles


# ---------------------------------------------------------------- output into a closed pipe


def _gorun_into_closed_pipe(args: list[str], read_lines: int) -> tuple[int, list[str], str]:
    """Run `python -m gorun ARGS` with stdout into a pipe whose reader reads `read_lines` lines
    and closes it (as `| head -1` does; 0: closed before gorun starts, so every write fails:
    with 1, gorun may have written everything before the reader closes, so only 0 is sure to
    exercise the broken pipe). Returns (exit status, lines read, stderr)."""
    r, w = os.pipe()
    if read_lines == 0:
        os.close(r)
    p = subprocess.Popen(
        [sys.executable, "-m", "gorun", *args], cwd=REPO, env=gorun_env(), stdout=w, stderr=subprocess.PIPE, text=True
    )
    os.close(w)
    lines = []
    if read_lines:
        with os.fdopen(r) as reader:
            for _ in range(read_lines):
                lines.append(reader.readline())
    try:
        _, err = p.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        pytest.fail(f"gorun {' '.join(args)} did not finish")
    return p.returncode, lines, err


@pytest.mark.parametrize("read_lines", [1, 0])
def test_workloads_into_a_closed_pipe_exits_quietly(read_lines):
    """`gorun workloads | head -1`: the rest of the output is dropped, no traceback, and the
    status is the command's own, 0 (not 1, nor death by SIGPIPE: under `set -o pipefail` the
    pipeline succeeds, as it does for Unix filters that stop reading early)."""
    code, lines, err = _gorun_into_closed_pipe(["workloads"], read_lines)
    assert lines == ["alloc\n"][:read_lines]
    assert err == "" and code == 0, (code, err)


def test_head_of_workloads_in_a_shell_pipeline():
    p = subprocess.run(
        ["bash", "-c", f'set -o pipefail; "{sys.executable}" -m gorun workloads | head -1'],
        cwd=REPO,
        env=gorun_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (p.returncode, p.stdout, p.stderr) == (0, "alloc\n", "")


def test_run_into_a_closed_pipe_still_writes_its_json(tmp_path):
    out = tmp_path / "r.json"
    code, _, err = _gorun_into_closed_pipe(
        ["run", "alloc", "--procs", "1", "--max-heap", "64MiB", "-p", "budget=1MiB", "--json", str(out)], 0
    )
    assert "Traceback" not in err and code == 0, (code, err)
    assert json.loads(out.read_text())["procs"] == 1
    assert own_segments() == [] and live_children(zombies=True) == []


def test_clean_into_a_closed_pipe_exits_quietly():
    code, _, err = _gorun_into_closed_pipe(["clean", "--dry-run"], 0)
    assert "Traceback" not in without_stale_line(err) and code == 0, (code, err)
