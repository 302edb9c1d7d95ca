"""The live status line (gorun/progress.py): on a terminal, after two seconds, never inside a
gctrace line; nothing when stderr is not a terminal."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time

from conftest import REPO, gorun_env, run_gorun
from test_gc_output import GCTRACE

STATUS = re.compile(r"\r\x1b\[K(gorun: \d+\.\ds  \d+ cycles  heap [^\r\n]*)?")


def _run_on_pty(*args, env=None, timeout=90.0):
    """Run gorun with stderr on a pseudo-terminal; return (exit code, stderr bytes, stdout)."""
    master, slave = pty.openpty()
    e = gorun_env()
    e.update(env or {})
    e["TERM"] = "xterm"
    p = subprocess.Popen(
        [sys.executable, "-m", "gorun", *args],
        cwd=REPO,
        env=e,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=slave,
    )
    os.close(slave)
    err = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r, _, _ = select.select([master], [], [], 0.2)
        if r:
            try:
                chunk = os.read(master, 1 << 16)
            except OSError:  # EIO: every writer has gone
                break
            if not chunk:
                break
            err += chunk
        elif p.poll() is not None:
            break
    os.close(master)
    out = p.stdout.read().decode()
    p.stdout.close()
    try:
        code = p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        raise
    return code, err.decode(), out


def test_status_line_on_a_terminal_never_splits_a_gctrace_line():
    code, err, out = _run_on_pty(
        "run", "alloc", "--procs", "2", "--duration", "3", "-p", "budget=64GiB", env={"GODEBUG": "gctrace=1"}
    )
    assert code == 0, err
    statuses = [m.group(1) for m in STATUS.finditer(err) if m.group(1)]
    assert statuses, err[-2000:]
    assert all(float(s.split()[1][:-1]) >= 2.0 for s in statuses)  # only after two seconds
    assert any("allocs/s" in s for s in statuses)
    rest = STATUS.sub("", err)
    assert "\x1b" not in rest
    lines = [ln for ln in rest.replace("\r\n", "\n").split("\n") if ln]
    gclines = [ln for ln in lines if "gc " in ln and not ln.startswith("gorun: gc ")]
    assert len(gclines) >= 3
    for ln in gclines:
        assert GCTRACE.match(ln), repr(ln)
    assert "pause total p50" in out and "\x1b" not in out  # the summary on stdout, unchanged


def test_short_run_on_a_terminal_shows_no_status():
    code, err, _ = _run_on_pty("run", "binary-trees", "--procs", "1", "-p", "depth=8")
    assert code == 0, err
    assert "\x1b" not in err


def test_no_status_when_stderr_is_not_a_terminal():
    r = run_gorun(
        "run", "alloc", "--procs", "2", "--duration", "2.5", "-p", "budget=64GiB", env={"GODEBUG": "gctrace=1"}
    )
    assert r.returncode == 0, r.stderr
    assert "\x1b" not in r.stderr and "\r" not in r.stderr
    assert any(GCTRACE.match(ln) for ln in r.stderr.splitlines())
