"""The launcher: creates the shared heap, starts one worker process per P, watches them,
collects results and statistics, and removes every segment on every exit path
(ARCHITECTURE.md section 1; docs/design.md "Processes").

    rt = gorun.Runtime(procs=2, lock="futex")
    result = rt.run(workload, n=1000)      # workload(g, n=1000) runs in each worker
    print(result.summary())
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import select
import signal
import threading
import time
import traceback
from dataclasses import dataclass, field

from . import _gorun, gc, godebug, heap, memsample, shm, types, watchdog
from . import trace as tracemod
from . import container as containermod
from . import progress as progressmod
from . import timeline as timelinemod
from .context import Context
from .units import MAX_MEMORY_LIMIT, fmt_bytes, fmt_memlimit, parse_memlimit, parse_size

GorunError = _gorun.GorunError
OutOfMemory = _gorun.OutOfMemory

_C = _gorun.constants()  # limits and kinds come from the C core, never repeated here
LOCK_KINDS = _C["lock_kinds"]
DEFAULT_MAX_HEAP = 4 << 30
MIN_MAX_HEAP = _C["min_heap"]
MAX_MAX_HEAP = _C["max_heap"]
SAMPLE_INTERVAL_S = 0.005  # the memory sampler's period (gorun/memsample.py)
CONTAINER_MARGIN = 32 << 20  # room beyond the fixed metadata for the interpreters to start


class RunError(GorunError):
    """A run ended abnormally: a worker raised, died, or the run was interrupted.
    ``.result`` holds the statistics gathered so far."""

    def __init__(self, msg: str, result=None):
        super().__init__(msg)
        self.result = result


class Interrupted(RunError):
    """The run was stopped by SIGINT, SIGTERM, SIGHUP or SIGQUIT (``.signum``)."""

    def __init__(self, msg: str, result=None, signum: int = signal.SIGINT):
        super().__init__(msg, result)
        self.signum = int(signum)


# The signals that stop a run: the launcher catches all four and cleans up; the CLI exits with
# 128 + the signal number (130 for SIGINT).
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
log = logging.getLogger("gorun")


@dataclass
class WorkerOutcome:
    pid: int
    ospid: int
    status: str = "running"  # ok | error | oom | died
    value: object = None
    error: str = ""
    exit_desc: str = ""


@dataclass
class RunResult:
    procs: int
    lock: str
    max_heap: int
    wall_ns: int
    stats: dict
    outcomes: list = field(default_factory=list)
    params: dict = field(default_factory=dict)
    workload: str = ""
    error: str = ""

    @property
    def values(self) -> list:
        """What the workload function returned in each P, by P id."""
        return [o.value for o in self.outcomes]

    def to_dict(self) -> dict:
        from .report import result_dict

        return result_dict(self)

    def summary(self) -> str:
        from .report import summary_text

        return summary_text(self)


def _describe_status(status: int) -> str:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = str(sig)
        return f"killed by signal {sig} ({name})"
    if os.WIFEXITED(status):
        return f"exit status {os.WEXITSTATUS(status)}"
    return f"status {status:#x}"


GC_ID = -1


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


class Runtime:
    """A gorun runtime: N worker processes (Go's P's) over one shared-memory heap."""

    def __init__(
        self,
        procs: int | None = None,
        lock: str = "futex",
        max_heap: int | str = DEFAULT_MAX_HEAP,
        seed: int = 0,
        duration: float | None = None,
        root_slots: int = 1 << 20,
        nglobals: int = 1024,
        godebug_env: str | None = None,
        pin: bool = False,
        gogc: int | str | None = None,
        mark_threads: int | None = None,
        gc_period: float | None = None,
        stall_timeout: float | str | None = None,
        memory_limit: int | str | None = None,
        container: int | str | None = None,
        progress: bool | None = None,
        trace: str | None = None,
    ):
        maxp = _gorun.constants()["max_procs"]
        if memory_limit is None:  # $GOMEMLIMIT, in Go's syntax; unset or empty: no limit
            env = os.environ.get("GOMEMLIMIT", "")
            self.memory_limit = parse_memlimit(env) if env else MAX_MEMORY_LIMIT
        else:
            self.memory_limit = parse_memlimit(memory_limit, "memory limit")
        if procs is None:
            env = os.environ.get("GOMAXPROCS", "").strip()
            if env:
                try:
                    procs = int(env)
                except ValueError:
                    raise ValueError(f"bad GOMAXPROCS {env!r}: expected an integer 1..{maxp}") from None
                if not 1 <= procs <= maxp:
                    raise ValueError(f"bad GOMAXPROCS {env!r}: need 1..{maxp}")
            else:
                procs = min(os.cpu_count() or 1, maxp)
        if not isinstance(procs, int) or isinstance(procs, bool) or not 1 <= procs <= maxp:
            raise ValueError(f"bad procs {procs!r}: need 1..{maxp}")
        if lock not in LOCK_KINDS:
            raise ValueError(f"unknown lock kind {lock!r}: choose one of {', '.join(LOCK_KINDS)}")
        self.max_heap = parse_size(max_heap, "max heap")
        if self.max_heap < MIN_MAX_HEAP:
            raise ValueError(f"max heap {max_heap!r} is too small to start: need at least 1MiB")
        if self.max_heap > MAX_MAX_HEAP:
            raise ValueError(f"max heap {max_heap!r} is too large: at most 1TiB (span ids are 32-bit page numbers)")
        if duration is not None and not duration > 0:
            raise ValueError(f"bad duration {duration!r}: must be > 0 seconds")
        if not 1 <= root_slots <= _C["max_root_slots"]:
            raise ValueError(f"bad root_slots {root_slots!r}")
        if not 1 <= nglobals <= _C["max_globals"]:
            raise ValueError(f"bad nglobals {nglobals!r}")
        self.procs = procs
        self.lock = lock
        self.seed = int(seed)
        self.duration = duration
        self.root_slots = root_slots
        self.nglobals = nglobals
        self.pin = pin
        self.debug = godebug.parse(os.environ.get("GODEBUG", "") if godebug_env is None else godebug_env)
        self.gogc = gc.parse_gogc(os.environ.get("GOGC") if gogc is None else gogc)
        self.trace = os.fspath(trace) if trace is not None else None  # --trace PATH (gorun/trace.py)
        if self.trace is not None and (
            os.path.isdir(self.trace) or not os.path.isdir(os.path.dirname(os.path.abspath(self.trace)))
        ):
            raise ValueError(f"bad trace {self.trace!r}: not a file in an existing folder")
        if self.trace and not tracemod.is_json(self.trace) and tracemod.protobuf_missing():
            raise ValueError(f"bad trace {self.trace!r}: {tracemod.protobuf_missing()}")
        ncpu = os.cpu_count() or 1
        if mark_threads is None:
            mark_threads = max(1, round(ncpu * 0.25))  # Go's 25% background utilization
        if not isinstance(mark_threads, int) or not 1 <= mark_threads <= _C["max_mark_threads"]:
            raise ValueError(f"bad mark_threads {mark_threads!r}: need 1..{_C['max_mark_threads']}")
        if gc_period is not None and not gc_period > 0:
            raise ValueError(f"bad gc_period {gc_period!r}: must be > 0 seconds")
        self.mark_threads = mark_threads
        self.gc_period = gc_period
        # seconds, or None: no watchdog ('off'); None in the call means $GORUN_STALL_TIMEOUT or 10 s
        self.stall_timeout = watchdog.resolve_stall_timeout(stall_timeout)
        # the live status line (gorun/progress.py): None = when stderr is a terminal
        self.progress_wanted = progressmod.wanted() if progress is None else bool(progress)
        self.container = None
        if container is not None:
            self.container = parse_size(container, "container size")
            # the launcher reserves the segments' fixed regions from inside the container: past
            # its limit the kernel would OOM-kill the launcher itself
            need = _gorun.meta_reserved(self.max_heap, procs, root_slots, nglobals) + CONTAINER_MARGIN
            if self.container < need:
                raise ValueError(
                    f"bad container size {container!r}: the heap's fixed metadata alone needs "
                    f"{fmt_bytes(need - CONTAINER_MARGIN)} (plus {CONTAINER_MARGIN >> 20} MiB for the processes)"
                )
            why = containermod.probe()
            if why:
                raise ValueError(f"cannot run in a container: {why}")

    # ---- the run ----

    def run(self, fn, **params) -> RunResult:
        """Run fn(g, **params) in every P; return a RunResult. Raises OutOfMemory or RunError
        (with ``.result``) if the run fails, Interrupted on SIGINT/SIGTERM/SIGHUP/SIGQUIT,
        ValueError for bad parameters of a built-in workload (before anything starts).

        First removes the segments of dead launchers (as ``gorun clean``); what it removed is in
        ``self.stale_cleaned`` and logged at INFO on the ``gorun`` logger (nothing is printed)."""
        from .workloads import check_params

        check_params(fn, params)
        if _gorun.attached():
            raise GorunError(
                "this process already has a gorun heap attached (a run inside a workload "
                "or inside another run is not supported)"
            )
        self.stale_cleaned = shm.clean_stale()
        if self.container is not None:
            containermod.clean_stale()  # the cgroups of --container launchers that were killed
        if self.stale_cleaned.removed:
            log.info("%s", self.stale_cleaned.summary())
        sig = _StopSignals()
        # Tearing the heap down (after the inner `finally` below has killed and reaped every
        # child, or when setting it up fails) starts with ignoring the stop signals.
        hp = heap.SharedHeap(
            self.max_heap,
            nprocs=self.procs,
            lock=self.lock,
            root_slots=self.root_slots,
            nglobals=self.nglobals,
            debug_flags=self.debug.flags | (_C["debug_flags"]["trace"] if self.trace else 0),
            before_close=sig.ignore,
        )
        children: dict[int, tuple[int, int]] = {}  # ospid -> (P id, read fd)
        outcomes = [WorkerOutcome(i, 0) for i in range(self.procs)]
        t0 = time.monotonic_ns()
        result = None
        launcher = os.getpid()
        self.ctr = None  # the --container cgroup, while the run has one
        self.sampler = None
        self.timeline = None
        self.progress = None
        self.gc_outcome = None
        self.oom_killed = False
        self.final_sample = None
        self.tracer = None  # the event rings' reader, with --trace
        # The stop signals are blocked from before the first segment exists until every child is
        # recorded, and handled from then on: none can leak a segment or a child (a Python handler
        # runs between any two bytecodes, e.g. between a fork and the child's bookkeeping).
        # Leaving the ExitStack detaches and unlinks the segments (gorun/heap.py), then removes
        # the container's cgroup (registered first, so it goes last, once nothing is charged).
        try:
            sig.block_and_install()
            with contextlib.ExitStack() as stack:
                if self.container is not None:
                    try:
                        self.ctr = containermod.Container(self.container)
                    except containermod.ContainerUnavailable as e:
                        raise GorunError(f"cannot run in a container: {e}") from None
                    stack.callback(self.ctr.remove)
                # the segments' first pages are charged to the container: the launcher makes
                # them from inside it (and goes back out before forking)
                with self.ctr.entered() if self.ctr else contextlib.nullcontext():
                    stack.enter_context(hp)
                try:
                    types.register_all()
                    if self.trace:
                        _gorun.trace_setup(*godebug.trace_thresholds(self.debug))
                        self.tracer = tracemod.Recorder(self.trace)
                    _gorun.set_gc_percent(self.gogc)
                    _gorun.set_memory_limit(self.memory_limit)
                    if self.progress_wanted:
                        self.progress = progressmod.Progress()
                        stack.callback(self.progress.close)
                    r, w = os.pipe()
                    ospid = os.fork()
                    if ospid == 0:  # the GC process
                        _gorun.child_of(launcher)  # first: PR_SET_PDEATHSIG, and exit if the launcher is gone
                        self._join_container()
                        if self.progress:
                            self.progress.child_redirect()
                        os.close(r)
                        self._gc_main(w, sig)  # never returns
                    os.close(w)
                    children[ospid] = (GC_ID, r)
                    _gorun.gc_set_pid(ospid)  # before any worker exists: none sees 'no GC process'
                    self.gc_ospid = ospid
                    for i in range(self.procs):
                        r, w = os.pipe()
                        ospid = os.fork()
                        if ospid == 0:  # the worker
                            _gorun.child_of(launcher)
                            self._join_container()
                            if self.progress:
                                self.progress.child_redirect()
                            os.close(r)
                            for _, (_, fd) in children.items():
                                os.close(fd)
                            self._worker_main(i, fn, params, w, sig)  # never returns
                        os.close(w)
                        children[ospid] = (i, r)
                        outcomes[i].ospid = ospid
                    self.sampler = self._new_sampler(hp, self.ctr)
                    for ospid in children:
                        self.sampler.add_pid(ospid)
                    self.sampler.start()
                    stack.callback(self.sampler.stop)
                    self.timeline = timelinemod.Timeline(self.gc_ospid)
                    self.timeline.start()
                    stack.callback(self.timeline.stop)
                    if self.progress:
                        self.progress.parent_forked()
                    sig.unblock()  # a signal that arrived meanwhile is handled here
                    failure = self._watch(children, outcomes)
                    if failure:
                        self._kill_all(children, outcomes)  # stop the others before the statistics are read
                    result = self._result(t0, outcomes, params, fn, failure)
                    if failure:
                        kind, msg = failure
                        if kind == "oom":
                            err = OutOfMemory(msg)
                            err.result = result
                            raise err
                        raise RunError(msg, result)
                    return result
                except KeyboardInterrupt:
                    sig.ignore()  # we are stopping: further signals change nothing
                    self._kill_all(children, outcomes)
                    if result is None:  # the statistics so far, while the heap is still attached
                        try:
                            result = self._result(t0, outcomes, params, fn, ("interrupted", "interrupted"))
                        except Exception:  # noqa: BLE001
                            result = None
                    raise  # becomes Interrupted below, once the segments are gone
                finally:
                    # A second signal (e.g. Ctrl-C pressed twice) must not interrupt the cleanup:
                    # the stop signals are ignored until every child is reaped and every segment
                    # is gone (one that arrives meanwhile is dropped: the run is stopping anyway),
                    # then restored.
                    sig.ignore()
                    self._kill_all(children)
                    if self.progress:  # the children's last lines, then the status line goes
                        self.progress.finish()
        except KeyboardInterrupt:  # during the run, or while the heap was being set up
            signum = sig.received or signal.SIGINT
            raise Interrupted(
                f"run interrupted ({signal.Signals(signum).name}); workers stopped, segments removed", result, signum
            ) from None
        finally:
            sig.ignore()
            sig.restore()

    def _join_container(self) -> None:
        """In a forked child, before it touches any memory: join the run's container, so every
        page it faults in (its own and the shared segments' it touches first) is charged there."""
        if self.ctr is None:
            return
        try:
            self.ctr.join()
        except BaseException:  # noqa: BLE001 - never run outside the limit the user asked for
            traceback.print_exc()
            os._exit(1)

    @staticmethod
    def _new_sampler(hp, ctr) -> memsample.MemorySampler:
        """The memory sampler over the two segments (their allocated blocks are the shared memory
        the run holds): it keeps duplicates of the read-only fds opened here."""
        fds = [os.open(shm.SHM_DIR + name, os.O_RDONLY | os.O_CLOEXEC) for name in (hp.meta_name, hp.arena_name)]
        try:
            return memsample.MemorySampler(interval=SAMPLE_INTERVAL_S, segment_fds=fds, container=ctr)
        finally:
            for fd in fds:
                os.close(fd)

    def _oom_killed(self, who: str, status: int) -> tuple[str, str] | None:
        """A child killed by SIGKILL while the container's OOM counter moved: the kernel's OOM
        killer ended the run. The message carries the memory figures at that moment."""
        if self.ctr is None or not (os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL):
            return None
        if self.ctr.oom_kills() == 0:
            return None
        self.oom_killed = True
        ms = _gorun.memstats()
        last = self.sampler.last if self.sampler else {}
        peak = self.sampler.peak_bytes if self.sampler else 0
        return "oom_killed", (
            f"the container's memory limit ({fmt_bytes(self.container)}) OOM-killed {who}: at that moment "
            f"the container held {fmt_bytes(self.ctr.usage_bytes())} and the run "
            f"{fmt_bytes(last.get('total_bytes', 0))} (peak {fmt_bytes(peak)}); heap in use "
            f"{fmt_bytes(ms['heap_inuse'])}, free {fmt_bytes(ms['heap_free'])}, released "
            f"{fmt_bytes(ms['heap_released'])}, metadata {fmt_bytes(ms['/memory/classes/metadata/other:bytes'])}; "
            f"memory limit {fmt_memlimit(_gorun.gc_state()['memory_limit'])}"
        )

    def _sampled(self) -> dict | None:
        """The sampler's summary, with `final_bytes` the last sample taken while the workers ran
        (after they exit only the segments and the GC process are left to count)."""
        if self.sampler is None:
            return None
        s = self.sampler.summary()
        if self.final_sample:
            s["final_bytes"] = self.final_sample.get("total_bytes", s["final_bytes"])
        return s

    def _child_main(self, wfd: int, body, sig: "_StopSignals", sigurg: bool = False) -> None:
        """Run body() in a forked child (the GC process or a worker) and send the message it
        returns, (kind, value, error text), to the launcher through wfd. Never returns. The
        caller has already run _gorun.child_of (parent-death signal) right after the fork."""
        code = 0
        try:
            sig.child_reset()
            if sigurg:  # Go's SIGURG preemption, in C: no Python frame (native/preempt.c)
                _gorun.preempt_init()
            msg = body()
            try:
                data = pickle.dumps(msg)
            except Exception as e:  # noqa: BLE001
                data = pickle.dumps(("error", None, f"result is not picklable: {e}"))
            _write_all(wfd, data)
        except BaseException:  # noqa: BLE001
            code = 1
            traceback.print_exc()
        finally:
            os._exit(code)

    def _gc_main(self, wfd: int, sig) -> None:
        def body():
            cfg = dict(
                nprocs=self.procs,
                gogc=self.gogc,
                mark_threads=self.mark_threads,
                gctrace=bool(self.debug.get("gctrace")),
                scavtrace=bool(self.debug.get("scavtrace")),
                gcpacertrace=bool(self.debug.get("gcpacertrace")),
                scav_percent=self.debug.get("scavpercent", gc.SCAV_PERCENT),
                memory_limit=self.memory_limit,
                checkmark=bool(self.debug.get("gccheckmark")),
                period=self.gc_period,
                nglobals=self.nglobals,
                init_ns=_gorun.gc_state()["init_ns"],
            )
            try:
                return ("ok", gc.gc_process_main(cfg), "")
            except BaseException as e:  # noqa: BLE001
                return ("error", None, "".join(traceback.format_exception(e)).rstrip())

        self._child_main(wfd, body, sig)

    def _worker_main(self, pid: int, fn, params: dict, wfd: int, sig) -> None:
        def body():
            if self.pin:
                os.sched_setaffinity(0, {pid % (os.cpu_count() or 1)})
            _gorun.set_p(pid)
            g = Context(pid, self.procs, params, self.seed, self.duration, self.nglobals)
            try:
                value = fn(g, **params)
                del g
                _gorun.p_done()
                return ("ok", value, "")
            except OutOfMemory as e:
                _gorun.p_done()
                return ("oom", None, str(e))
            except BaseException as e:  # noqa: BLE001 - report anything the workload raised
                msg = ("error", None, "".join(traceback.format_exception(e)).rstrip())
                try:
                    _gorun.p_done()
                except Exception:  # noqa: BLE001
                    pass
                return msg

        self._child_main(wfd, body, sig, sigurg=True)

    def _watch(self, children: dict, outcomes: list) -> tuple[str, str] | None:
        """Read results as they come; a dead or failed worker ends the run at once."""
        bufs: dict[int, bytearray] = {fd: bytearray() for _, (_, fd) in children.items()}
        fd_to_pid = {fd: ospid for ospid, (_, fd) in children.items()}
        open_fds = set(bufs)
        workers_left = self.procs
        wd = watchdog.Watchdog(self.stall_timeout) if self.stall_timeout is not None else None
        next_drain = 0
        while open_fds:
            if self.tracer is not None and time.monotonic() >= next_drain:  # keep the rings short
                self.tracer.drain()
                next_drain = time.monotonic() + tracemod.DRAIN_INTERVAL_S
            stall = self._check_stall(wd, children, outcomes)
            if stall:
                return stall
            relay = self.progress.fds if self.progress else []
            ready, _, _ = select.select(list(open_fds) + relay, [], [], 0.05)
            if self.progress:
                self.progress.tick()
            for fd in ready:
                if fd in relay:
                    self.progress.readable(fd)
                    continue
                chunk = os.read(fd, 1 << 16)
                if chunk:
                    bufs[fd] += chunk
                    continue
                open_fds.discard(fd)
                ospid = fd_to_pid[fd]
                pidx, _ = children[ospid]
                _, status = os.waitpid(ospid, 0)
                os.close(fd)
                del children[ospid]
                try:
                    kind, value, err = pickle.loads(bytes(bufs[fd])) if bufs[fd] else ("died", None, "")
                except Exception:  # noqa: BLE001
                    kind, value, err = "died", None, ""
                if self.sampler is not None:
                    self.sampler.remove_pid(ospid)
                oom = (
                    self._oom_killed("the GC process" if pidx == GC_ID else f"worker P{pidx}", status)
                    if kind == "died"
                    else None
                )
                if pidx == GC_ID:
                    self.gc_outcome = (kind, value, err, _describe_status(status))
                    if oom:
                        return oom
                    if kind == "error":
                        return "error", f"the GC process (pid {ospid}) failed:\n{err}"
                    if kind != "ok" or workers_left:
                        return "died", f"the GC process (pid {ospid}) died: {_describe_status(status)}"
                    continue
                workers_left -= 1
                if workers_left == 0:
                    if self.sampler is not None:  # "final": the last sample with the workers alive
                        self.final_sample = dict(self.sampler.last)
                    _gorun.gc_shutdown()
                o = outcomes[pidx]
                o.exit_desc = _describe_status(status)
                o.status, o.value, o.error = kind, value, err
                if kind == "ok" and not (os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0):
                    o.status = kind = "died"
                if kind == "oom":
                    return "oom", f"P{pidx}: {err}"
                if kind == "error":
                    return "error", f"workload raised in P{pidx} (pid {ospid}):\n{err}"
                if oom:
                    o.status = "oom_killed"
                    return oom
                if kind == "died":
                    hint = ""
                    if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGBUS:
                        free = shm.shm_free_bytes()
                        hint = (
                            f" (shared memory exhausted? {shm.SHM_DIR} has {free >> 20} MiB free; "
                            "lower --max-heap or enlarge /dev/shm)"
                        )
                    return "died", f"worker P{pidx} (pid {ospid}) died: {o.exit_desc}{hint}"
        return None

    def _check_stall(self, wd, children: dict, outcomes: list) -> tuple[str, str] | None:
        """The watchdog's tick (gorun/watchdog.py). On a stall the stuck workers' outcome becomes
        'stalled' and the failure is returned; the caller kills and reaps (_kill_all)."""
        if wd is None:
            return None
        msg = wd.check(children)
        if not msg:
            return None
        for ospid, (pidx, _) in children.items():
            if pidx >= 0 and f"worker P{pidx} (pid {ospid}) made no progress" in msg:
                outcomes[pidx].status = "stalled"
        return "stalled", msg

    def _write_trace(self, outcomes: list, pauses: list) -> tuple[dict, list]:
        """--trace: the last drain and the Perfetto file, on every exit path that has a result
        (the callers have stopped every writer, or they are finished)."""
        self.tracer.finish()
        init_ns = _gorun.gc_state()["init_ns"]
        try:
            return tracemod.write_trace(
                self.tracer,
                pauses,
                init_ns,
                time.monotonic_ns() - init_ns,
                [o.ospid for o in outcomes],
                getattr(self, "gc_ospid", 0),
            )
        except OSError as e:
            return {"path": self.trace, "events": 0, "lost": sum(self.tracer.lost), "bytes": 0, "error": str(e)}, []

    def _kill_all(self, children: dict, outcomes: list | None = None) -> None:
        """SIGKILL every child, the workers before the GC process (so that no worker outlives the
        GC process long enough to report its death as a fatal error), then reap them all."""
        for ospid, (pidx, fd) in sorted(children.items(), key=lambda kv: kv[1][0] == GC_ID):
            try:
                os.kill(ospid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            if outcomes is not None and pidx >= 0 and outcomes[pidx].status == "running":
                outcomes[pidx].status = "stopped"
        for ospid, (_, fd) in list(children.items()):
            try:
                os.waitpid(ospid, 0)
            except ChildProcessError:
                pass
            try:
                os.close(fd)
            except OSError:
                pass
        children.clear()

    def _result(self, t0: int, outcomes: list, params: dict, fn, failure) -> RunResult:
        if self.timeline is not None:
            self.timeline.stop()
        stats = _gorun.stats()
        # the run's start (gcctl.init_ns, time 0 of every *_ns since-start in the JSON) on the wall clock
        stats["start_unix_ns"] = time.time_ns() - (time.monotonic_ns() - _gorun.gc_state()["init_ns"])
        stats["timeline"] = self.timeline.raw() if self.timeline is not None else None
        stats["pools"] = _gorun.pool_stats()
        gc_out = getattr(self, "gc_outcome", None)
        pauses = _gorun.gc_pauses(0)
        if getattr(self, "tracer", None) is not None:
            stats["trace"], stats["trace_assists"] = self._write_trace(outcomes, pauses)
        stats["gc"] = {
            "process_cpu_ns": gc_out[1]["cpu_ns"] if gc_out and gc_out[0] == "ok" else None,
            "pauses": pauses,
            "cycles": gc.cycle_dicts(_gorun.gc_cycles()),
            "state": _gorun.gc_state(),
            "gogc": self.gogc,
            "mark_threads": self.mark_threads,
            "limiter": gc_out[1].get("limiter") if gc_out and gc_out[0] == "ok" else None,
            "scavenger": gc_out[1].get("scavenger") if gc_out and gc_out[0] == "ok" else None,
        }
        stats["memory"] = {
            "classes": _gorun.memstats(),
            "sampled": self._sampled(),
            "container": {
                "limit_bytes": self.container,
                "oom_killed": self.oom_killed,
                "usage_bytes": self.ctr.usage_bytes() if self.ctr else None,
                "peak_bytes": self.ctr.peak_bytes() if self.ctr else None,
                "version": self.ctr.version if self.ctr else None,
            },
        }
        return RunResult(
            procs=self.procs,
            lock=self.lock,
            max_heap=self.max_heap,
            wall_ns=time.monotonic_ns() - t0,
            stats=stats,
            outcomes=outcomes,
            params=dict(params),
            workload=getattr(fn, "__name__", str(fn)),
            error=failure[1] if failure else "",
        )


class _StopSignals:
    """The launcher's handling of STOP_SIGNALS during one run (main thread only; from another
    thread nothing is changed and the caller's handlers stay in charge).

    block_and_install: block them, remember the old mask and handlers, install a handler that
    records the signal and raises KeyboardInterrupt. unblock: from then on (and for a signal that
    arrived while blocked) the handler runs. ignore: SIG_IGN while cleaning up. restore: the old
    handlers and mask. child_reset (in a forked child): SIGINT, SIGHUP and SIGQUIT ignored (the
    terminal sends them to the whole process group; the launcher coordinates), SIGTERM default,
    then the old mask."""

    def __init__(self):
        self.active = threading.current_thread() is threading.main_thread()
        self.old_mask = None
        self.old_handlers: dict = {}
        self.received = 0

    def _handler(self, signum, frame):
        if not self.received:
            self.received = signum
        raise KeyboardInterrupt

    def block_and_install(self) -> None:
        if not self.active:
            return
        self.old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        for s in STOP_SIGNALS:
            self.old_handlers[s] = signal.signal(s, self._handler)

    def unblock(self) -> None:
        if self.active and self.old_mask is not None:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, [s for s in STOP_SIGNALS if s not in self.old_mask])

    def ignore(self) -> None:
        if self.active and self.old_handlers:
            for s in STOP_SIGNALS:
                signal.signal(s, signal.SIG_IGN)

    def restore(self) -> None:
        if not self.active:
            return
        for s, h in self.old_handlers.items():
            signal.signal(s, h if h is not None else signal.SIG_DFL)
        if self.old_mask is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, self.old_mask)
        self.old_handlers, self.old_mask = {}, None

    def child_reset(self) -> None:
        for s in (signal.SIGINT, signal.SIGHUP, signal.SIGQUIT):
            signal.signal(s, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        if self.old_mask is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, self.old_mask)
