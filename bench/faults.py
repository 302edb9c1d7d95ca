#!/usr/bin/env python3
"""Fault injection for gorun: what happens to a run when one of its processes is killed, stopped
or signalled at a random moment, the first milliseconds included.

What a trial does
-----------------
It starts the CLI, ``python -m gorun run alloc --procs 2 --gogc 25 -p budget=1GiB`` (3.5-5 s
of run on the project's 2-CPU machine, GC cycles all the time; ``--stall-timeout S`` is added
when ``gorun run --help`` offers it), as a subprocess in a session of its own, stdout and stderr
going to files, in a scratch directory. It waits a random delay (a seeded RNG, one stream per
scenario and trial): trials 0, 4, 8, ... (a quarter) fire 0-5 ms after the launch, the others
0-2 s after the run's start, the moment its segments appear in /dev/shm (the GC process and the
workers are forked right after). Python's start alone takes 0.4-2 s on this shared machine, so
delays counted from the launch (``--delay-origin launch``) would mostly land before the run
exists. Then it finds the target, sends the signal, and measures:

- the launcher's exit code (``-SIGNAME``: killed by that signal; ``hang``: see below);
- seconds from the signal to the launcher's exit (SIGKILL of the launcher: to the moment the
  last process of the run is gone);
- processes left: processes of the run's session (the session id is the launcher's pid and
  every process of the run inherits it) still alive once the launcher has exited and up to 2 s
  more have passed; zombies count only while a live process of the session could reap them;
- segments left: entries ``/dev/shm/gorun.<launcher pid>.*`` present at or after its exit.

Targets. The launcher is the subprocess. gorun/runtime.py (Runtime.run) forks the GC process
first, then worker P0, P1, ... in order, and forks nothing else, so in creation order the
launcher's child 0 is the GC process and child 1 + p is worker Pp. Creation order is (start
time, pid distance from the launcher modulo pid_max): start times have the 10 ms resolution of
a clock tick, so children forked in the same tick are ordered by pid, which Linux hands out
cyclically. A target that does not exist yet when the delay is over is waited for, polling
/proc every 0.2 ms, and signalled as soon as it appears (column ``<=5ms``: trials whose target
was at most 5 ms old: a child just forked, or a launcher just launched). A target that has
finished its work (exited, or a zombie), or a run that has ended, is not signalled: the trial
is "finished early" and must then end like a normal run (exit 0, nothing left).

Scenarios (``--scenario``; all by default) and what each trial must show:

==================  ============  ==============================================================
kill-worker         SIGKILL P     exit 1, stderr names the worker (``P<n>`` or its pid), nothing
                                  left
kill-gc             SIGKILL GC    exit 1, stderr names the GC process (``GC`` or its pid),
                                  nothing left
kill-launcher       SIGKILL L     no process left within 2 s (children die of their
                                  parent-death signal). The segments must stay (nobody is left
                                  to unlink them): counted, then one short ``gorun run`` must
                                  remove them (a build that cleans dead runs at start), or else
                                  ``gorun clean --dry-run`` must list them
kill-launcher-fork  SIGKILL L     (extra, not in the issue's list) the same, the kill landing
                                  the moment the GC process or a worker (at random) is forked
stop-worker         SIGSTOP P     exit 1 within the stall timeout + 2 s, stderr names the stuck
stop-gc             SIGSTOP GC    process, nothing left (the launcher must SIGKILL stopped
                                  children). Only if the CLI has ``--stall-timeout``; otherwise
                                  the row says "not supported by this build" (``--force-stop``
                                  runs them anyway: the hang guard then ends each trial)
hup, quit,          SIGHUP, ...   to the launcher: the exit code the CLI documents (read from
term, int                         gorun/cli.py's docstring: 128 + signo today; before that 130
                                  for SIGINT and SIGTERM, SIGHUP/SIGQUIT undocumented: any code
                                  accepted and recorded), nothing left
==================  ============  ==============================================================

A stop signal that finds the launcher without its handlers (SIGTERM still has its default
action, per /proc/<pid>/status: Python is still starting, or already exiting) can only have the
interpreter's own effect, so death by that signal is accepted too; such trials are counted in
the ``no-handler`` column (leftovers are checked all the same). stop-launcher is not tested.

The dead launcher's segments (kill-launcher*): other gorun processes sharing this machine may
remove them at any moment (``gorun clean``, or any run of a build that cleans dead runs at
start). The short run therefore runs under ``strace -f`` when possible, and "next run" is
reported only for an unlink in its own trace; a segment that vanished otherwise is reported as
"another gorun process" (no failure, no proof). When the next run leaves them, the harness
runs ``gorun clean --dry-run`` and unlinks only this run's segments itself: a real ``gorun
clean`` would also remove other people's dead runs.

After every trial, whatever happened, the harness SIGKILLs (and SIGCONTs) every process left in
the session and unlinks the run's segments, counting what it had to clean, so trials never
pollute each other. A launcher still running --trial-timeout seconds (60) after its launch is a
hang: a failure; the session is killed.

Usage (from the repository, with the virtualenv's interpreter)::

    .venv/bin/python bench/faults.py                      # 20 trials of every scenario
    .venv/bin/python bench/faults.py --trials 3 --scenario kill-gc term --json out.json

Output: one line per scenario (trials, passed, failed, finished early, young targets, signals
that found no handler, exit codes with counts, seconds to exit median and max, processes and
segments left, a note), then the problems of the failed trials, then a verdict line. Exit status
0 only if every trial met its expectation; 1 if one did not, or if a requested scenario cannot
run on this build; 2 on bad usage.

The harness imports nothing from gorun (it must keep working while the package is broken or
being rebuilt) and no third-party package: it reads /proc itself (cheap enough to poll every
0.2 ms, and it has the session id).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import re
import resource
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHM_DIR = Path("/dev/shm")
PROCS = 2  # worker processes (P's) of the run under test
# The default --max-heap (4 GiB) holds the whole budget of both P's, so a stopped GC process
# cannot turn into an out-of-memory error before the stall timeout names it.
WORKLOAD = ["alloc", "--procs", str(PROCS), "--gogc", "25"]
DEFAULT_BUDGET = "1GiB"  # per P: 3.5-5 s of run (plus 0.4-1 s of start) on this 2-CPU VM
RECOVERY_RUN = ["alloc", "--procs", "1", "--max-heap", "64MiB", "-p", "budget=1MiB"]
EARLY_WINDOW = 0.005  # "the first milliseconds": 0-5 ms after the start
SPREAD = 2.0  # the other trials: 0-2 s after the start
POLL = 0.0002  # target search period
GRACE = 2.0  # time the run's processes get to vanish after the launcher exits
STOP_SLACK = 2.0  # stop-*: exit within stall timeout + this
YOUNG_MS = 5.0  # a target signalled at most this long after its start/fork


# ---------------------------------------------------------------- scenarios


@dataclass(frozen=True)
class Scenario:
    name: str
    target: str  # "launcher" | "gc" | "worker"
    sig: signal.Signals
    expect: frozenset | None  # accepted exit codes (Popen.returncode); None: as documented
    names_target: bool = False  # stderr must name the target process
    needs_stall: bool = False  # needs the CLI's --stall-timeout
    at_fork: bool = False  # signal the launcher the moment a random child appears
    doc: str = ""


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in [
        Scenario(
            "kill-worker",
            "worker",
            signal.SIGKILL,
            frozenset({1}),
            names_target=True,
            doc="SIGKILL a random worker: exit 1 naming it, nothing left",
        ),
        Scenario(
            "kill-gc",
            "gc",
            signal.SIGKILL,
            frozenset({1}),
            names_target=True,
            doc="SIGKILL the GC process: exit 1 naming it, nothing left",
        ),
        Scenario(
            "kill-launcher",
            "launcher",
            signal.SIGKILL,
            frozenset({-signal.SIGKILL}),
            doc="SIGKILL the launcher: no process left within 2 s; its segments removed by the next run",
        ),
        Scenario(
            "kill-launcher-fork",
            "launcher",
            signal.SIGKILL,
            frozenset({-signal.SIGKILL}),
            at_fork=True,
            doc="(extra) SIGKILL the launcher the moment the GC process or a worker is forked (polled "
            "every 0.2 ms): as kill-launcher",
        ),
        Scenario(
            "stop-worker",
            "worker",
            signal.SIGSTOP,
            frozenset({1}),
            names_target=True,
            needs_stall=True,
            doc="SIGSTOP a random worker: exit 1 within stall timeout + 2 s naming it, nothing left",
        ),
        Scenario(
            "stop-gc",
            "gc",
            signal.SIGSTOP,
            frozenset({1}),
            names_target=True,
            needs_stall=True,
            doc="SIGSTOP the GC process: exit 1 within stall timeout + 2 s naming it, nothing left",
        ),
        *(
            Scenario(
                name, "launcher", sig, None, doc=f"{sig.name} to the launcher: the documented exit code, nothing left"
            )
            for name, sig in (
                ("hup", signal.SIGHUP),
                ("quit", signal.SIGQUIT),
                ("term", signal.SIGTERM),
                ("int", signal.SIGINT),
            )
        ),
    ]
}


def documented_exit_codes() -> tuple[dict, str]:
    """The exit codes this checkout's CLI documents for the stop signals, read from the
    docstring of gorun/cli.py: 128 + signo for SIGHUP, SIGINT, SIGQUIT and SIGTERM (the current
    convention), or the older 130 for SIGINT and SIGTERM with nothing said of SIGHUP and SIGQUIT
    (None: any code is accepted, and recorded). Returns ({signal: code or None}, a description)."""
    try:
        text = (ROOT / "gorun" / "cli.py").read_text()
    except OSError:
        text = ""
    doc = text.split('"""')[1] if text.count('"""') >= 2 else ""
    stops = (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGTERM)
    if re.search(r"128\s*\+\s*the signal number", doc):
        return {s: 128 + s for s in stops}, "128 + signo (cli.py)"
    if "130" in doc:
        return (
            {signal.SIGHUP: None, signal.SIGINT: 130, signal.SIGQUIT: None, signal.SIGTERM: 130},
            "130 for SIGINT/SIGTERM, SIGHUP/SIGQUIT undocumented (cli.py)",
        )
    return {s: None for s in stops}, "none found in cli.py: any code accepted"


# ---------------------------------------------------------------- /proc and /dev/shm


@dataclass
class ProcInfo:
    pid: int
    ppid: int
    sid: int
    state: str  # R, S, D, T (stopped), t, Z (zombie), ...
    start: int  # start time in clock ticks since boot


def proc_info(pid: int) -> ProcInfo | None:
    """One process's /proc/<pid>/stat, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    rest = data[data.rfind(b")") + 2 :].split()  # comm may hold spaces and parentheses
    return ProcInfo(pid, int(rest[1]), int(rest[3]), rest[0].decode(), int(rest[19]))


def all_pids() -> list[int]:
    return [int(e) for e in os.listdir("/proc") if e.isdigit()]


def session_procs(sid: int) -> list[ProcInfo]:
    """Live (non-zombie) processes of session `sid`, plus zombies whose parent is still in it
    (a zombie child of a dead launcher belongs to init, which reaps it)."""
    infos = [i for i in map(proc_info, all_pids()) if i is not None and i.sid == sid]
    live = {i.pid for i in infos if i.state != "Z"}
    return [i for i in infos if i.state != "Z" or i.ppid in live]


def describe(info: ProcInfo) -> str:
    try:
        comm = Path(f"/proc/{info.pid}/comm").read_text().strip()
    except OSError:
        comm = "?"
    return f"pid {info.pid} (ppid {info.ppid}, state {info.state}, {comm})"


def default_disposition(pid: int, sig: int) -> bool:
    """Does `sig` have its default action in process `pid` (not caught, ignored or blocked)?"""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return False
    bit = 1 << (sig - 1)
    masks = {k: int(v, 16) for k, _, v in (ln.partition(":\t") for ln in lines) if k in ("SigBlk", "SigIgn", "SigCgt")}
    return len(masks) == 3 and not any(m & bit for m in masks.values())


def pid_max() -> int:
    try:
        return int(Path("/proc/sys/kernel/pid_max").read_text())
    except (OSError, ValueError):
        return 1 << 22


class ChildScanner:
    """Finds the children of one process in creation order, polling /proc cheaply: only pids
    that were not there when the scanner was made are read, each once (a pid is not reused
    within one trial)."""

    def __init__(self) -> None:
        self.known = set(all_pids())
        self.seen: dict[int, ProcInfo] = {}
        self.pid_max = pid_max()

    def children(self, parent: int) -> list[ProcInfo]:
        for pid in all_pids():
            if pid in self.known:
                continue
            info = proc_info(pid)
            self.known.add(pid)
            if info is not None and info.ppid == parent:
                self.seen[pid] = info
        kids = [i for i in self.seen.values() if i.ppid == parent]
        return sorted(kids, key=lambda i: (i.start, (i.pid - parent) % self.pid_max))


def segments(pid: int) -> list[str]:
    """/dev/shm entries of launcher `pid` (gorun.<pid>.<n>.meta|arena)."""
    try:
        return sorted(e for e in os.listdir(SHM_DIR) if e.startswith(f"gorun.{pid}."))
    except FileNotFoundError:
        return []


def unlink_segments(names: list[str]) -> int:
    n = 0
    for name in names:
        try:
            os.unlink(SHM_DIR / name)  # the same as shm_unlink("/" + name)
            n += 1
        except FileNotFoundError:
            pass
    return n


def kill_session(sid: int, timeout: float = 5.0) -> int:
    """SIGKILL (and SIGCONT, for stopped ones) every process of session `sid` until none is left;
    returns how many there were."""
    found: set[int] = set()
    deadline = time.monotonic() + timeout
    while True:
        left = [i for i in session_procs(sid) if i.state != "Z"]
        if not left or time.monotonic() > deadline:
            return len(found)
        for i in left:
            found.add(i.pid)
            for sig in (signal.SIGKILL, signal.SIGCONT):
                try:
                    os.kill(i.pid, sig)
                except ProcessLookupError:
                    pass
        time.sleep(0.01)


# ---------------------------------------------------------------- running gorun


def gorun_env() -> dict:
    """This checkout's gorun first; no GODEBUG, GOMAXPROCS, GOGC, GOMEMLIMIT or
    GORUN_STALL_TIMEOUT from the caller's environment: the command line says it all."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    for k in ("GODEBUG", "GOMAXPROCS", "GOGC", "GOMEMLIMIT", "GORUN_STALL_TIMEOUT"):
        env.pop(k, None)
    return env


def gorun_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "gorun", *args]


def run_short(
    args: list[str], cwd: str, timeout: float = 60.0, prefix: list[str] | None = None
) -> subprocess.CompletedProcess:
    """A short gorun command (after `prefix`, e.g. strace) in its own session, with a hang
    guard; its pid as .pid; a hang kills its session and reports exit code None."""
    p = subprocess.Popen(
        [*(prefix or []), *gorun_cmd(*args)],
        cwd=cwd,
        env=gorun_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = p.communicate(timeout=timeout)
        rc = p.returncode
    except subprocess.TimeoutExpired:
        kill_session(p.pid)
        out, err = p.communicate()
        rc = None
    cp = subprocess.CompletedProcess(p.args, rc, out, err)
    cp.pid = p.pid
    return cp


def strace_base() -> list[str] | None:
    """strace -f tracing the exec and unlink calls of a command (add ``-o LOG``), if strace is
    installed and can trace here (ptrace may be forbidden), else None."""
    exe = shutil.which("strace")
    if exe is None:
        return None
    args = [exe, "-f", "-qq", "-e", "trace=execve,unlink,unlinkat"]
    try:
        ok = subprocess.run([*args, "-o", os.devnull, "true"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    return args if ok else None


_UNLINK_RE = re.compile(r'^(\d+)\s+unlink(?:at)?\((?:[^,"]*, )?"/dev/shm/(gorun\.[^"]+)"[^)]*\)\s+=\s+0\b')
_EXEC_RE = re.compile(r"^(\d+)\s+execve\(")


def parse_strace(log: Path) -> tuple[set[int], set[str]]:
    """(pids that exec'd: the traced command's processes, segment names unlinked with success)."""
    execs: set[int] = set()
    unlinked: set[str] = set()
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return execs, unlinked
    for line in lines:
        if m := _EXEC_RE.match(line):
            execs.add(int(m.group(1)))
        elif m := _UNLINK_RE.match(line):
            unlinked.add(m.group(2))
    return execs, unlinked


def git_revision() -> str:
    """The checkout under test: short commit, '+dirty' when it has local changes."""
    try:
        rev = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "unknown revision"
    return (rev or "unknown revision") + ("+dirty" if dirty else "")


def probe_stall_timeout(cwd: str) -> bool:
    """Does this build's `gorun run` accept --stall-timeout?"""
    cp = run_short(["run", "--help"], cwd)
    if cp.returncode != 0:
        sys.exit(
            f"faults.py: `{' '.join(gorun_cmd('run', '--help'))}` failed (exit {cp.returncode}):\n{cp.stderr.strip()}"
        )
    return "--stall-timeout" in cp.stdout


def wait_exit(p: subprocess.Popen, pidfd: int | None, deadline: float) -> float | None:
    """Wait until the launcher exits (reaped) or the monotonic deadline; the exit time or None."""
    if pidfd is not None:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            if poller.poll(max(1, int(left * 1000))):
                t = time.monotonic()
                p.wait()
                return t
    while p.poll() is None:
        if time.monotonic() > deadline:
            return None
        time.sleep(0.0005)
    return time.monotonic()


def sleep_until(t: float) -> None:
    """Sleep to monotonic time t, spinning for the last millisecond (sub-ms delays matter here)."""
    while True:
        left = t - time.monotonic()
        if left <= 0:
            return
        if left > 0.0015:
            time.sleep(left - 0.001)


def code_name(rc: int | None) -> str:
    if rc is None:
        return "hang"
    if rc < 0:
        try:
            return "-" + signal.Signals(-rc).name
        except ValueError:
            return str(rc)
    return str(rc)


# ---------------------------------------------------------------- one trial


@dataclass
class Trial:
    scenario: str
    index: int
    delay_s: float  # planned delay after the origin (the launch or the run start)
    first_ms: bool  # one of the "first milliseconds" trials
    launcher_pid: int = 0
    worker: int | None = None  # P id for worker targets
    child: int | None = None  # the child number waited for (0: the GC process, 1 + p: Pp)
    target_pid: int | None = None
    origin: str = "launch"  # what delay_s counts from: "launch" or "run" (segments created)
    run_start_s: float | None = None  # when the run's segments appeared, seconds after the launch
    signal_at_s: float | None = None  # when the signal was sent, seconds after the launch
    target_age_ms: float | None = None  # the target's age when signalled (see _inject)
    pre_start: bool = False  # launcher signal before any child or segment existed
    no_handler: bool = False  # the launcher had no handler for the stop signals (SIGTERM
    # had its default action): Python starting, or exiting
    finished_early: bool = False  # the target had finished before the signal
    exit_code: int | None = None
    exit_s: float | None = None  # signal -> launcher exit (kill-launcher: -> last process gone)
    procs_left: int = 0  # processes of the run alive after the grace
    procs_left_desc: list = field(default_factory=list)  # "pid P (ppid Q, state S, comm)" of each
    segs_left: int = 0  # segments of the run left (kill-launcher: after recovery)
    dead_run_segs: int = 0  # kill-launcher: segments the dead launcher left
    recovered_by: str = ""  # kill-launcher: who removed them
    cleaned_procs: int = 0  # what the harness itself had to kill ...
    cleaned_segs: int = 0  # ... and unlink
    problems: list = field(default_factory=list)
    stderr_tail: str = ""

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class Config:
    budget: str
    stall_timeout: float
    stall_supported: bool
    trial_timeout: float
    delay_origin: str
    workdir: str
    strace: list[str] | None = None  # strace_base(): to trace the recovery run (kill-launcher)
    exit_codes: dict = field(default_factory=dict)  # documented exit code per stop signal


def _default_signals() -> None:
    """In the child before exec: the stop signals at their default action and unblocked, as
    from a shell, whatever the harness inherited (a background job ignores SIGINT, nohup SIGHUP).
    The harness has no threads, so preexec_fn is safe here."""
    for sig in (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


def run_trial(sc: Scenario, index: int, rng: random.Random, cfg: Config) -> Trial:
    """One run, one signal, the measurements; the trial's problems are empty if it met its
    expectation. Everything the run left is cleaned up before it returns."""
    first_ms = index % 4 == 0 and not sc.at_fork
    delay = 0.0 if sc.at_fork else rng.uniform(0, EARLY_WINDOW if first_ms else SPREAD)
    tr = Trial(sc.name, index, round(delay, 6), first_ms)
    if sc.target == "worker":
        tr.worker = rng.randrange(PROCS)
        tr.child = 1 + tr.worker
    elif sc.target == "gc":
        tr.child = 0
    elif sc.at_fork:
        tr.child = rng.randrange(1 + PROCS)
    args = ["run", *WORKLOAD, "-p", f"budget={cfg.budget}"]
    if cfg.stall_supported:
        args += ["--stall-timeout", str(cfg.stall_timeout)]
    out_path = Path(cfg.workdir) / f"{sc.name}.{index}.out"
    err_path = Path(cfg.workdir) / f"{sc.name}.{index}.err"
    scanner = ChildScanner()
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        p = subprocess.Popen(
            gorun_cmd(*args),
            cwd=cfg.workdir,
            env=gorun_env(),
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_default_signals,
        )
    t0 = time.monotonic()
    tr.launcher_pid = pid = p.pid
    pidfd = None
    try:
        pidfd = os.pidfd_open(pid) if hasattr(os, "pidfd_open") else None
    except OSError:
        pass
    hard_deadline = t0 + cfg.trial_timeout
    try:
        origin = t0
        if not first_ms and not sc.at_fork and cfg.delay_origin == "run":
            tr.origin = "run"
            origin = _wait_run_start(tr, p, t0, hard_deadline)
        _inject(sc, tr, p, scanner, t0, origin + delay, hard_deadline)
        t_sig = t0 + tr.signal_at_s if tr.signal_at_s is not None else None
        t_exit = wait_exit(p, pidfd, hard_deadline)
        if t_exit is None:
            tr.problems.append(
                f"hang: the launcher was still running {cfg.trial_timeout:.0f} s after its start; session killed"
            )
        else:
            tr.exit_code = p.returncode
            if t_sig is not None:
                tr.exit_s = t_exit - t_sig
        _leftovers(sc, tr, t_sig, t_exit)
        if sc.sig == signal.SIGKILL and sc.target == "launcher" and t_exit is not None:
            _recover_dead_run(tr, cfg)
    finally:
        tr.cleaned_procs = kill_session(pid)
        if p.poll() is None:
            p.kill()
        p.wait()
        tr.cleaned_segs = unlink_segments(segments(pid))
        if pidfd is not None:
            os.close(pidfd)
    tr.stderr_tail = err_path.read_text(errors="replace")[-2000:]
    out_path.unlink(missing_ok=True)
    err_path.unlink(missing_ok=True)
    _judge(sc, tr, cfg)
    return tr


def _wait_run_start(tr: Trial, p: subprocess.Popen, t0: float, deadline: float) -> float:
    """Poll /dev/shm until the launcher's segments appear (the run begins: its children are
    forked right after) or the launcher exits or the deadline passes; returns that moment."""
    while not segments(tr.launcher_pid):
        if p.poll() is not None or time.monotonic() > deadline:
            break
        time.sleep(POLL)
    t = time.monotonic()
    tr.run_start_s = t - t0
    return t


def _wait_child(tr: Trial, scanner: ChildScanner, index: int, deadline: float) -> tuple[ProcInfo | None, float | None]:
    """Poll every POLL seconds until the launcher's child number `index` (creation order)
    exists. Returns its /proc entry (None if the run ended first or the deadline passed: the
    trial is marked) and when the last scan that did not see it began (None: seen at once)."""
    pid = tr.launcher_pid
    t_absent = None
    while True:
        t_scan = time.monotonic()
        kids = scanner.children(pid)
        if len(kids) > index:
            return proc_info(kids[index].pid), t_absent
        t_absent = t_scan
        info = proc_info(pid)
        if info is None or info.state == "Z":  # the run ended before the child appeared
            tr.finished_early = True
            return None, t_absent
        if time.monotonic() > deadline:
            tr.problems.append(f"child {index} of the launcher never appeared")
            return None, t_absent
        time.sleep(POLL)


def _age_ms(info: ProcInfo, t_absent: float | None, t_sig: float) -> float:
    """A child's age at the signal: if it appeared while we polled, an upper bound (since the
    last scan that missed it); else from its start time, to the clock tick (10 ms)."""
    if t_absent is not None:
        return (t_sig - t_absent) * 1000
    ticks = os.sysconf("SC_CLK_TCK")
    return max(0.0, (time.clock_gettime(time.CLOCK_BOOTTIME) - info.start / ticks) * 1000)


def _inject(
    sc: Scenario, tr: Trial, p: subprocess.Popen, scanner: ChildScanner, t0: float, t_fire: float, deadline: float
) -> None:
    """Wait for the moment, find the target, signal it (or mark the trial finished early)."""
    pid = tr.launcher_pid
    sleep_until(t_fire)
    child = t_absent = None
    if sc.target == "launcher":
        if sc.at_fork:  # the moment child number tr.child appears
            child, t_absent = _wait_child(tr, scanner, tr.child, deadline)
            if child is None:
                return
        info = proc_info(pid)
        if p.poll() is not None or info is None or info.state == "Z":
            tr.finished_early = True
            return
        tr.target_pid = pid
        tr.pre_start = not scanner.children(pid) and not segments(pid)
        tr.no_handler = default_disposition(pid, signal.SIGTERM)
    else:
        child, t_absent = _wait_child(tr, scanner, tr.child, deadline)
        if child is None:
            return
        if child.state == "Z":  # it already finished its work
            tr.finished_early = True
            return
        tr.target_pid = child.pid
    try:
        os.kill(tr.target_pid, sc.sig)
    except ProcessLookupError:
        tr.finished_early = True
        return
    t_sig = time.monotonic()
    tr.signal_at_s = t_sig - t0
    tr.target_age_ms = tr.signal_at_s * 1000 if child is None else _age_ms(child, t_absent, t_sig)


def _leftovers(sc: Scenario, tr: Trial, t_sig: float | None, t_exit: float | None) -> None:
    """Processes of the session still alive after the grace (polled), and the run's segments."""
    if t_exit is None:  # a hang: everything is still there; count it as it is
        tr.procs_left = len([i for i in session_procs(tr.launcher_pid) if i.pid != tr.launcher_pid])
        tr.segs_left = len(segments(tr.launcher_pid))
        return
    at_exit = set(segments(tr.launcher_pid))  # now: other gorun processes may clean them up later
    deadline = time.monotonic() + GRACE
    t_empty = None
    while True:
        procs = session_procs(tr.launcher_pid)
        if not procs:
            t_empty = time.monotonic()
            break
        if time.monotonic() > deadline:
            break
        time.sleep(0.002)
    tr.procs_left = len(procs)
    tr.procs_left_desc = [describe(i) for i in procs]
    if sc.sig == signal.SIGKILL and sc.target == "launcher" and t_sig is not None:
        # the launcher dies at once: what counts is when the last process of the run is gone
        tr.exit_s = None if t_empty is None else t_empty - t_sig
    tr.segs_left = len(at_exit | set(segments(tr.launcher_pid)))


def _recover_dead_run(tr: Trial, cfg: Config) -> None:
    """kill-launcher: the dead launcher's segments must be removable: by the next run (a build
    that cleans stale runs at start) or else listed by `gorun clean --dry-run`, after which the
    harness unlinks them (only them: a real `gorun clean` would also remove the dead runs of
    other people sharing this machine).

    Other gorun processes on this machine (a `gorun clean`, a build that cleans at start) may
    remove them too, at any moment. So the next run runs under strace when it can, and only an
    unlink in its trace counts as "next run"; a segment that vanished otherwise is "another gorun
    process" and proves nothing either way (not a failure)."""
    names = segments(tr.launcher_pid)
    tr.dead_run_segs = max(tr.segs_left, len(names))
    tr.segs_left = 0
    if not names:
        tr.recovered_by = "another gorun process" if tr.dead_run_segs else "nothing to remove"
        return
    log = Path(cfg.workdir) / f"{tr.scenario}.{tr.index}.strace"
    prefix = [*cfg.strace, "-o", str(log)] if cfg.strace else None
    cp = run_short(["run", *RECOVERY_RUN], cfg.workdir, prefix=prefix)
    execs, unlinked = parse_strace(log) if prefix else (set(), set())
    log.unlink(missing_ok=True)
    if cp.returncode != 0:
        tr.problems.append(f"the recovery run failed (exit {code_name(cp.returncode)}): {cp.stderr.strip()[-300:]}")
    own = [n for pid in (execs or {cp.pid}) for n in segments(pid)]
    if own:
        tr.problems.append(f"the recovery run left {len(own)} segment(s) of its own")
        unlink_segments(own)
    left = segments(tr.launcher_pid)
    if not left:
        if not prefix:
            tr.recovered_by = "next run (or another gorun process: no strace to tell)"
        elif set(names) <= unlinked:
            tr.recovered_by = "next run"
        else:
            tr.recovered_by = "another gorun process"
        return
    cp = run_short(["clean", "--dry-run"], cfg.workdir)
    still = segments(tr.launcher_pid)
    unlisted = [n for n in still if f"would remove /{n}" not in cp.stdout]
    unlink_segments(still)
    if not unlisted:
        tr.recovered_by = "gorun clean (dry run listed them; harness unlinked)"
        return
    said = [line for line in cp.stdout.splitlines() if f".{tr.launcher_pid}." in line]
    tr.recovered_by = "harness"
    tr.problems.append(
        f"neither the next run nor `gorun clean --dry-run` handles the dead run's segments "
        f"({len(unlisted)} of {len(still)} not listed; `gorun clean --dry-run` exit "
        f"{code_name(cp.returncode)}: {said or cp.stderr.strip()[-200:]})"
    )
    tr.segs_left = len(unlisted)


def _judge(sc: Scenario, tr: Trial, cfg: Config) -> None:
    """Turn the measurements into problems (an empty list: the trial met its expectation)."""
    if tr.problems and tr.problems[0].startswith("hang"):
        return  # a hang says it all; leftovers were cleaned
    if tr.procs_left:
        tr.problems.append(
            f"{tr.procs_left} process(es) of the run left {GRACE:.0f} s after the launcher exited: "
            + ", ".join(tr.procs_left_desc)
        )
    if tr.segs_left:
        tr.problems.append(f"{tr.segs_left} segment(s) left in {SHM_DIR}")
    rc = tr.exit_code
    err = tr.stderr_tail
    if tr.finished_early:
        if rc != 0:
            tr.problems.append(f"finished early but exit {code_name(rc)}")
        return
    if tr.target_pid is None:
        return  # already reported (the target never appeared)
    accepted = set(sc.expect) if sc.expect is not None else None
    if sc.expect is None and sc.sig in cfg.exit_codes:
        code = cfg.exit_codes[sc.sig]
        accepted = None if code is None else {code}
    if accepted is not None and tr.no_handler:  # the interpreter's reaction: no gorun code to run
        accepted.add(-sc.sig)
    if accepted is not None and rc not in accepted:
        want = " or ".join(code_name(c) for c in sorted(accepted))
        tr.problems.append(f"exit {code_name(rc)}, expected {want}")
    if sc.names_target and rc not in (None, 0):
        if sc.target == "worker":
            named = re.search(rf"\bP{tr.worker}\b", err) or re.search(rf"\b{tr.target_pid}\b", err)
            what = f"worker P{tr.worker} (pid {tr.target_pid})"
        else:
            named = re.search(r"\bGC\b", err) or re.search(rf"\b{tr.target_pid}\b", err)
            what = f"the GC process (pid {tr.target_pid})"
        if not named:
            tr.problems.append(f"stderr does not name {what}")
    if sc.needs_stall and tr.exit_s is not None and tr.exit_s > cfg.stall_timeout + STOP_SLACK:
        tr.problems.append(f"exit took {tr.exit_s:.2f} s (> stall timeout {cfg.stall_timeout:g} s + {STOP_SLACK:g} s)")


# ---------------------------------------------------------------- the report


def summarize(sc: Scenario, trials: list[Trial], unsupported: bool) -> dict:
    exits = [t.exit_s for t in trials if t.exit_s is not None and not t.finished_early]
    codes = collections.Counter(code_name(t.exit_code) for t in trials)
    recovered = collections.Counter(t.recovered_by for t in trials if t.recovered_by)
    return {
        "scenario": sc.name,
        "doc": sc.doc,
        "signal": sc.sig.name,
        "target": sc.target,
        "supported": not unsupported,
        "trials": len(trials),
        "passed": sum(t.ok for t in trials),
        "failed": sum(not t.ok for t in trials),
        "finished_early": sum(t.finished_early for t in trials),
        "pre_start": sum(t.pre_start for t in trials),
        "no_handler": sum(t.no_handler for t in trials),
        "young_target": sum(t.target_age_ms is not None and t.target_age_ms <= YOUNG_MS for t in trials),
        "exit_codes": dict(sorted(codes.items())),
        "exit_s_median": statistics.median(exits) if exits else None,
        "exit_s_max": max(exits) if exits else None,
        "procs_left": sum(t.procs_left for t in trials),
        "segs_left": sum(t.segs_left for t in trials),
        "cleaned_procs": sum(t.cleaned_procs for t in trials),
        "cleaned_segs": sum(t.cleaned_segs for t in trials),
        "dead_run_segs": sum(t.dead_run_segs for t in trials),
        "recovered_by": dict(recovered),
    }


def table(header: list[str], rows: list[list[str]]) -> str:
    """A plain-text table, the first column left-aligned, the others right-aligned (the last,
    a free-text note, left-aligned)."""
    cells = [header] + rows
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]

    def line(r: list[str]) -> str:
        out = []
        for i, (c, w) in enumerate(zip(r, widths)):
            out.append(c.ljust(w) if i in (0, len(r) - 1) else c.rjust(w))
        return "  ".join(out).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])


def row(s: dict) -> list[str]:
    def sec(x: float | None) -> str:
        return "-" if x is None else f"{x:.3f}"

    if not s["supported"]:
        return [
            s["scenario"],
            "0",
            "-",
            "-",
            "-",
            "-",
            "-",
            "-",
            "-",
            "-",
            "-",
            "-",
            "not supported by this build (no --stall-timeout)",
        ]
    note = []
    if s["signal"] == "SIGKILL" and s["target"] == "launcher":
        note.append(
            f"dead-run segs {s['dead_run_segs']}, removed by: "
            + (", ".join(f"{k} x{v}" for k, v in s["recovered_by"].items()) or "-")
        )
    if s["cleaned_procs"] or s["cleaned_segs"]:
        note.append(f"harness cleaned {s['cleaned_procs']} proc(s), {s['cleaned_segs']} seg(s)")
    codes = " ".join(f"{k}:{v}" for k, v in s["exit_codes"].items())
    no_handler = str(s["no_handler"]) if s["target"] == "launcher" else "-"
    return [
        s["scenario"],
        str(s["trials"]),
        str(s["passed"]),
        str(s["failed"]),
        str(s["finished_early"]),
        str(s["young_target"]),
        no_handler,
        codes,
        sec(s["exit_s_median"]),
        sec(s["exit_s_max"]),
        str(s["procs_left"]),
        str(s["segs_left"]),
        "; ".join(note),
    ]


HEADER = [
    "scenario",
    "trials",
    "pass",
    "fail",
    "early",
    f"<={YOUNG_MS:g}ms",
    "no-handler",
    "exit codes (code:count)",
    "exit s p50",
    "exit s max",
    "procs left",
    "segs left",
    "note",
]


# ---------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="scenarios:\n" + "\n".join(f"  {s.name:19} {s.doc}" for s in SCENARIOS.values()),
    )
    p.add_argument("--trials", type=int, default=20, help="trials per scenario (default 20)")
    p.add_argument(
        "--scenario",
        nargs="+",
        action="extend",
        choices=list(SCENARIOS),
        metavar="NAME",
        help="scenarios to run (default: all): " + ", ".join(SCENARIOS),
    )
    p.add_argument("--json", metavar="PATH", help="write every trial and the summary as JSON to PATH")
    p.add_argument(
        "--stall-timeout",
        type=float,
        default=3.0,
        metavar="S",
        help="passed to `gorun run --stall-timeout` when the build has it (default 3)",
    )
    p.add_argument("--seed", type=int, default=1, help="RNG seed of the delays and targets (default 1)")
    p.add_argument(
        "--trial-timeout",
        type=float,
        default=60.0,
        metavar="S",
        help="a launcher still running S seconds after its start is a hang (default 60)",
    )
    p.add_argument(
        "--budget",
        default=DEFAULT_BUDGET,
        help=f"alloc's budget per P: sets the run's length (default {DEFAULT_BUDGET}, ~3-5 s here)",
    )
    p.add_argument(
        "--delay-origin",
        choices=("run", "launch"),
        default="run",
        help="what the 0-2 s delays of three trials in four count from: the run's start "
        "(its segments appear; default) or the launch (Python's start, ~1 s here, "
        "takes most of it); the 0-5 ms ones always count from the launch",
    )
    p.add_argument(
        "--force-stop",
        action="store_true",
        help="run the SIGSTOP scenarios even without --stall-timeout (each trial then hangs "
        "until --trial-timeout: a check of the hang guard)",
    )
    a = p.parse_args(argv)
    if a.trials < 1:
        p.error("--trials must be >= 1")
    if not a.stall_timeout > 0 or not a.trial_timeout > 0:
        p.error("--stall-timeout and --trial-timeout must be > 0")
    a.scenario = list(dict.fromkeys(a.scenario or SCENARIOS))  # keep order, drop repeats
    return a


def report(summaries: list[dict], trials: list[Trial], interrupted: bool) -> tuple[str, int]:
    """Print the table, the failed trials and the verdict; return the verdict and the exit status."""
    print()
    print(table(HEADER, [row(s) for s in summaries]))
    failed = [t for t in trials if not t.ok]
    if failed:
        print("\nfailed trials (scenario #trial: delay, signal time after the launch, target: problems):")
        by_scn: dict[str, list[Trial]] = collections.defaultdict(list)
        for t in failed:
            by_scn[t.scenario].append(t)
        for name, ts in by_scn.items():
            for t in ts[:5]:
                when = "not sent" if t.signal_at_s is None else f"sent at {t.signal_at_s * 1000:.1f} ms"
                target = "" if t.target_pid is None else f", pid {t.target_pid}"
                if t.worker is not None:
                    target = f", P{t.worker}{target}"
                age = "" if t.target_age_ms is None else f", target age {t.target_age_ms:.1f} ms"
                flags = (", no handler" if t.no_handler else "") + (", pre-start" if t.pre_start else "")
                print(
                    f"  {name} #{t.index} ({t.delay_s * 1000:.1f} ms after the {t.origin}, {when}{target}{age}"
                    f"{flags}): {'; '.join(t.problems)}"
                )
            if len(ts) > 5:
                print(f"  {name}: {len(ts) - 5} more (see --json)")
    unsupported = [s["scenario"] for s in summaries if not s["supported"]]
    n = len(trials)
    if failed:
        verdict, rc = f"FAIL: {len(failed)} of {n} trials did not meet their expectation", 1
        if unsupported:
            verdict += f"; not supported by this build: {', '.join(unsupported)}"
    elif unsupported:
        verdict, rc = (
            (
                f"INCOMPLETE: all {n} trials passed, but {', '.join(unsupported)} "
                "cannot run on this build (no --stall-timeout)"
            ),
            1,
        )
    else:
        verdict, rc = f"PASS: all {n} trials met their expectation", 0
    if interrupted:
        verdict, rc = "INTERRUPTED (partial results): " + verdict, 130
    print(f"\nverdict: {verdict}")
    return verdict, rc


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    # a SIGQUIT'ed launcher must not drop a core file anywhere
    resource.setrlimit(resource.RLIMIT_CORE, (0, resource.getrlimit(resource.RLIMIT_CORE)[1]))
    with tempfile.TemporaryDirectory(prefix="gorun-faults.") as workdir:  # the runs' cwd and logs
        stall = probe_stall_timeout(workdir)
        codes, codes_desc = documented_exit_codes()
        cfg = Config(a.budget, a.stall_timeout, stall, a.trial_timeout, a.delay_origin, workdir, strace_base(), codes)
        cmd = " ".join(
            ["gorun", "run", *WORKLOAD, "-p", f"budget={a.budget}"]
            + (["--stall-timeout", f"{a.stall_timeout:g}"] if stall else [])
        )
        rev = git_revision()
        print(f"gorun fault injection: {a.trials} trial(s) per scenario, seed {a.seed}; run under test: {cmd}")
        print(
            f"signals: trials 0, 4, 8, ... 0-{EARLY_WINDOW * 1000:g} ms after the launch, the others "
            f"0-{SPREAD:g} s after the {'run start' if a.delay_origin == 'run' else 'launch'}"
        )
        print(
            f"build: {rev}; --stall-timeout {'supported' if stall else 'NOT supported'}; stop-signal exit "
            f"codes: {codes_desc}; next-run attribution: {'strace' if cfg.strace else 'none (no strace)'}"
        )
        print(
            f"machine: load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; python {sys.executable}",
            flush=True,
        )
        summaries: list[dict] = []
        all_trials: list[Trial] = []
        interrupted = False
        for name in a.scenario:
            sc = SCENARIOS[name]
            unsupported = sc.needs_stall and not stall and not a.force_stop
            trials: list[Trial] = []
            try:
                for i in range(0 if unsupported else a.trials):
                    trials.append(run_trial(sc, i, random.Random(f"{a.seed}:{name}:{i}"), cfg))
                    print("." if trials[-1].ok else "F", end="", flush=True)
            except KeyboardInterrupt:  # the trial cleaned up after itself; report what we have
                interrupted = True
            if not unsupported:
                print(f" {name}{' (interrupted)' if interrupted else ''}", flush=True)
            all_trials += trials
            summaries.append(summarize(sc, trials, unsupported))
            if interrupted:
                break
        verdict, rc = report(summaries, all_trials, interrupted)
    if a.json:
        doc = {
            "command": cmd,
            "build": rev,
            "exit_codes": codes_desc,
            "seed": a.seed,
            "trials_per_scenario": a.trials,
            "stall_timeout": a.stall_timeout,
            "stall_timeout_supported": stall,
            "trial_timeout": a.trial_timeout,
            "delay_origin": a.delay_origin,
            "verdict": verdict,
            "loadavg": os.getloadavg(),
            "scenarios": summaries,
            "trials": [asdict(t) for t in all_trials],
        }
        with open(a.json, "w") as f:
            json.dump(doc, f, indent=1, default=str)
        print(f"results written to {a.json}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
