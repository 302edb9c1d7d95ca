"""The launcher's watchdog: ends a run whose stop-the-world, cycle or wait makes no progress
(Go's sysmon, which notices a P stuck in a syscall or a long-running G; docs/design.md "Stuck
processes").

A dead child closes its pipe and the launcher sees it at once; a child that is alive but stuck
(stopped by SIGSTOP, spinning in C, deadlocked on a lock) closes nothing. The launcher calls
``Watchdog.check`` from its watch loop; every ``TICK`` seconds it takes one snapshot of the
progress-watch state in shared memory (``_gorun.watch_state()``: each P's status, pending
requests, the long runtime call it is in, the lock it waits for; the GC process's activity and
progress counter) plus each child's OS state, and builds the "waits for" graph:

- the GC process stopping the world -> every P still running that has not parked;
- the GC process in the mark completion handshake -> every running P that has not flushed;
- a P or the GC process waiting for a lock -> the lock's holder (``glock_t.owner_pid``);
- a P parked for a stop, in ``g.gc()``, waiting for a cycle to start or for mark credit -> the
  GC process.

The run is stalled when, for at least the stall timeout S: a wait of the GC process for P's or
a lock wait has lasted (the GC's own waits measure from when the wait began); a P has waited for
the GC process while the GC process made no progress; the GC process has made no progress in a
cycle; or a child has been in the OS state "stopped" (T), even if nobody waits for it yet. The
stuck process is found by following the graph from the stalled wait to a process that waits for
nothing (a stopped process always ends the walk). Durations are measured by the watchdog itself
(from the first snapshot that showed a wait), and every clock restarts if the launcher itself
did not run for a while (Ctrl-Z, a starved machine), so a suspended launcher never blames its
children.
"""

from __future__ import annotations

import math
import os
import signal
import time

import psutil

from . import _gorun

DEFAULT_STALL_TIMEOUT = 10.0
ENV_VAR = "GORUN_STALL_TIMEOUT"
TICK = 0.1  # seconds between two snapshots

# the state encodings of native/runtime.h, from the C core
_C = _gorun.constants()
P_IDLE, P_RUNNING, P_SYSCALL, P_GCSTOP, P_DONE, P_DEAD, P_GCSCAN = (
    _C["p_status"][k] for k in ("idle", "running", "syscall", "gcstop", "done", "dead", "gcscan")
)
POLL_STOP, POLL_SCANROOTS, POLL_FLUSHWB = (_C["poll_bits"][k] for k in ("stop", "scanroots", "flushwb"))
RC_NONE, RC_REFILL, RC_LARGE, RC_ASSIST, RC_CYCLE_WAIT, RC_GC_WAIT, RC_TEST_SPIN = (
    _C["rcalls"][k] for k in ("none", "refill", "large", "assist", "cycle_wait", "gc_wait", "test_spin")
)
(GCA_STARTING, GCA_IDLE, GCA_SWEEP_FINISH, GCA_STOPPING, GCA_STW, GCA_MARK, GCA_HANDSHAKE, GCA_SWEEP, GCA_EXITING) = (
    _C["gc_activities"][k]
    for k in ("starting", "idle", "sweep_finish", "stopping", "stw", "mark", "handshake", "sweep", "exiting")
)
PAUSE_KINDS = {
    _C["pause_kinds"]["sweepterm"]: "sweep termination",
    _C["pause_kinds"]["markterm"]: "mark termination",
}
P_STATUS = {
    P_IDLE: "not started",
    P_RUNNING: "running",
    P_SYSCALL: "in a blocking call (g.blocking())",
    P_GCSTOP: "stopped for the GC",
    P_DONE: "done",
    P_DEAD: "not in this run",
    P_GCSCAN: "blocked, served by the GC process",
}
RCALLS = {
    RC_REFILL: "mcache refill",
    RC_LARGE: "large allocation",
    RC_ASSIST: "mark assist",
    RC_CYCLE_WAIT: "waiting for a GC cycle to start",
    RC_GC_WAIT: "g.gc()",
    RC_TEST_SPIN: "test_spin hook",
}
# GC activities during which the GC process itself must keep advancing its progress counter
SELF_PROGRESS = (GCA_SWEEP_FINISH, GCA_STW, GCA_MARK, GCA_SWEEP, GCA_EXITING)

GC = "gc"  # the GC process's node in the waits-for graph; a P's node is its id


def parse_stall_timeout(value, source: str = "stall timeout") -> float | None:
    """Seconds > 0 (a number or its text), or 'off' (returns None: no watchdog)."""
    if isinstance(value, str):
        text = value.strip()
        if text.lower() == "off":
            return None
        try:
            v = float(text)
        except ValueError:
            v = math.nan
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        v = float(value)
    else:
        v = math.nan
    if not (v > 0 and math.isfinite(v)):
        raise ValueError(f"bad {source} {value!r}: expected seconds > 0 or 'off'")
    return v


def resolve_stall_timeout(value) -> float | None:
    """Runtime(stall_timeout=...): None means $GORUN_STALL_TIMEOUT, else 10 s."""
    if value is None:
        env = os.environ.get(ENV_VAR, "")
        if not env.strip():
            return DEFAULT_STALL_TIMEOUT
        return parse_stall_timeout(env, ENV_VAR)
    return parse_stall_timeout(value)


class _Edge:
    """src waits for every node in dsts (empty: for something no process can be blamed for)."""

    def __init__(self, src, dsts: list, phrase, dur: float, stalled: bool):
        self.src, self.dsts, self.phrase, self.dur, self.stalled = src, dsts, phrase, dur, stalled


class Watchdog:
    def __init__(self, timeout: float, tick: float = TICK):
        self.timeout = timeout
        self.tick = tick
        self.last = 0.0
        self.first_seen: dict[tuple, float] = {}
        self.procs: dict[int, psutil.Process] = {}

    # ---- the clock of each observed condition

    def _since(self, key: tuple, now: float, seen: dict) -> float:
        t = self.first_seen.get(key, now)
        seen[key] = t
        return now - t

    def _os_state(self, pid: int) -> str:
        p = self.procs.get(pid)
        try:
            if p is None:
                p = self.procs[pid] = psutil.Process(pid)
            return p.status()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return "gone"

    # ---- the check, once per tick

    def check(self, children: dict) -> str | None:
        """children: ospid -> (P id or -1 for the GC process, ...) of the children not yet reaped.
        Returns the stall message, or None."""
        now = time.monotonic()
        if now - self.last < self.tick:
            return None
        if self.last and now - self.last > max(1.0, self.timeout / 2):
            self.first_seen.clear()  # the launcher itself did not run: restart every clock
        self.last = now
        snap = _gorun.watch_state()
        gcs, ps = snap["gc"], snap["ps"]
        live = {pidx: ospid for ospid, (pidx, *_) in children.items()}
        node_pid: dict = {}
        if -1 in live:
            node_pid[GC] = live[-1]
        for pidx, ospid in live.items():  # every worker the launcher forked, attached to its P
            if pidx >= 0:  # or not yet (one stopped in its first milliseconds)
                node_pid[pidx] = ospid
        os_state = {n: self._os_state(pid) for n, pid in node_pid.items()}
        if any(s in ("zombie", "dead", "gone") for s in os_state.values()):
            self.first_seen.clear()  # a child just died: its pipe tells the launcher at once
            return None
        seen: dict[tuple, float] = {}
        S = self.timeout
        pid_node = {pid: n for n, pid in node_pid.items()}

        def holder_node(pid: int):
            if pid <= 0:
                return None
            return pid_node.get(pid, ("pid", pid))

        # the GC process's progress: any change of activity or of the counter
        act, cycle, arg = gcs["activity"], gcs["cycle"], gcs["arg"]
        gc_quiet = self._since(("gcprog", act, arg, cycle, gcs["since_ns"], gcs["progress"]), now, seen)
        edges: list[_Edge] = []
        if GC in node_pid:
            act_dur = self._since(("gcact", act, arg, cycle, gcs["since_ns"]), now, seen)
            kind = PAUSE_KINDS.get(arg, "?")
            waits_for = {  # the GC process waits for the running P's that have not served this request
                GCA_STOPPING: (
                    POLL_STOP,
                    lambda t, c=cycle, k=kind: f"waiting for {t} to stop the world for cycle {c} ({k})",
                ),
                GCA_HANDSHAKE: (
                    POLL_FLUSHWB,
                    lambda t, c=cycle: (
                        f"waiting for {t} to flush its write-barrier log (mark completion handshake, cycle {c})"
                    ),
                ),
            }
            if act in waits_for:
                bit, phrase = waits_for[act]
                dsts = [p["id"] for p in ps if p["id"] in node_pid and p["status"] == P_RUNNING and p["poll"] & bit]
                edges.append(_Edge(GC, dsts, phrase, act_dur, act_dur >= S))
            lk = gcs["lock"]
            if lk:
                d = self._since(("lock", GC, lk["name"], lk["since_ns"]), now, seen)
                h = holder_node(lk["holder_pid"])
                edges.append(
                    _Edge(
                        GC,
                        [h] if h is not None else [],
                        lambda t, n=lk["name"]: f"waiting for lock {n} (held by {t})",
                        d,
                        d >= S,
                    )
                )
        for p in ps:
            i = p["id"]
            if i not in node_pid:
                continue
            lk = p["lock"]
            if lk:
                d = self._since(("lock", i, lk["name"], lk["since_ns"]), now, seen)
                h = holder_node(lk["holder_pid"])
                edges.append(
                    _Edge(
                        i,
                        [h] if h is not None else [],
                        lambda t, n=lk["name"]: f"waiting for lock {n} (held by {t})",
                        d,
                        d >= S,
                    )
                )
                continue
            phrase = None
            if p["status"] == P_GCSTOP and p["ack_ns"]:
                key, phrase = (
                    ("park", i, p["ack_ns"]),
                    lambda t: f"parked for a stop, waiting for {t} to restart the world",
                )
            elif p["rcall"] == RC_GC_WAIT:
                key, phrase = (
                    ("rc", i, p["rcall"], p["rcall_since_ns"]),
                    lambda t: f"waiting in g.gc() for {t} to finish a cycle",
                )
            elif p["rcall"] == RC_CYCLE_WAIT:
                key, phrase = (
                    ("rc", i, p["rcall"], p["rcall_since_ns"]),
                    lambda t: f"waiting for {t} to start a cycle (the heap is past its goal)",
                )
            elif p["rcall"] == RC_ASSIST:
                key, phrase = (
                    ("rc", i, p["rcall"], p["rcall_since_ns"]),
                    lambda t: f"waiting in a mark assist for {t} to earn mark credit",
                )
            if phrase and GC in node_pid:
                d = self._since(key, now, seen)
                edges.append(_Edge(i, [GC], phrase, d, d >= S and gc_quiet >= S))

        stopped = {
            n: self._since(("T", n, node_pid[n]), now, seen)
            for n, s in os_state.items()
            if s in ("stopped", "tracing-stop")
        }
        self.first_seen = seen

        # what triggers: a stalled wait, a GC process that advances nothing, a stopped child
        triggers: list[tuple[float, list]] = []
        for e in edges:
            if e.stalled:
                triggers.append((e.dur, e.dsts or [e.src]))
        if GC in node_pid and act in SELF_PROGRESS and gc_quiet >= S:
            triggers.append((gc_quiet, [GC]))
        for n, d in stopped.items():
            if d >= S:
                triggers.append((d, [n]))
        if not triggers:
            return None
        triggers.sort(key=lambda t: -t[0])
        out_edges: dict = {}
        for e in edges:
            out_edges.setdefault(e.src, []).append(e)
        roots: list = []
        for start in triggers[0][1]:
            for r in self._follow(start, out_edges, stopped):
                if r not in roots:
                    roots.append(r)
        return self._message(roots, triggers[0][0], edges, stopped, node_pid, os_state, snap, gc_quiet)

    def _follow(self, node, out_edges: dict, stopped: dict) -> list:
        """The processes at the end of node's waits: those that wait for nothing, or are stopped."""
        roots, path = [], []

        def walk(n):
            if n in path:  # a wait cycle (a deadlock): every member is stuck; blame where it closes
                if n not in roots:
                    roots.append(n)
                return
            if n in stopped or not any(e.dsts for e in out_edges.get(n, ())):
                if n not in roots:
                    roots.append(n)
                return
            path.append(n)
            for e in out_edges.get(n, ()):
                for d in e.dsts:
                    walk(d)
            path.pop()

        walk(node)
        return roots

    # ---- the message

    @staticmethod
    def _name(n, node_pid: dict) -> str:
        if n == GC:
            return f"the GC process (pid {node_pid.get(GC, '?')})"
        if isinstance(n, tuple):
            return f"process {n[1]} (not a child of this run)"
        return f"worker P{n} (pid {node_pid.get(n, '?')})"

    def _os_text(self, n, node_pid: dict, os_state: dict) -> str:
        s = os_state.get(n, "?")
        if s in ("stopped", "tracing-stop") and n in node_pid:
            try:  # our own child: the kernel tells its parent which signal stopped it
                r = os.waitid(os.P_PID, node_pid[n], os.WSTOPPED | os.WNOHANG | os.WNOWAIT)
            except (ChildProcessError, OSError):
                r = None
            if r is not None and r.si_code == os.CLD_STOPPED:
                try:
                    s += f" ({signal.Signals(r.si_status).name})"
                except ValueError:
                    s += f" (signal {r.si_status})"
        return s

    @staticmethod
    def _gc_runtime(gcs: dict) -> str:
        act, c, kind = gcs["activity"], gcs["cycle"], PAUSE_KINDS.get(gcs["arg"], "?")
        return {
            GCA_STARTING: "starting",
            GCA_IDLE: "idle between cycles" + (f" (last cycle {c})" if c else ""),
            GCA_SWEEP_FINISH: f"finishing the previous sweep before cycle {c}",
            GCA_STOPPING: f"stopping the world for cycle {c} ({kind})",
            GCA_STW: f"in the stop-the-world of cycle {c} ({kind})",
            GCA_MARK: f"marking (cycle {c})",
            GCA_HANDSHAKE: f"in the mark completion handshake (cycle {c})",
            GCA_SWEEP: f"sweeping (cycle {c})",
            GCA_EXITING: "exiting (joining its mark threads)",
        }.get(act, f"activity {act}")

    def _runtime_text(self, n, snap: dict, now_ns: int, held: list, pid: int = 0) -> str:
        parts = []
        if n == GC:
            gcs = snap["gc"]
            parts.append(self._gc_runtime(gcs))
            lk = gcs["lock"]
        elif isinstance(n, tuple):
            return "unknown"
        else:
            p = snap["ps"][n]
            if pid and p["pid"] != pid:
                return "not attached to its P yet (stopped before the workload started)"
            parts.append(P_STATUS.get(p["status"], f"status {p['status']}"))
            if p["rcall"]:
                dur = max(0, now_ns - p["rcall_since_ns"]) / 1e9
                parts.append(f"in a runtime call ({RCALLS.get(p['rcall'], p['rcall'])}) for {dur:.1f} s")
            if p["status"] == P_RUNNING and p["poll"] & POLL_STOP:
                parts.append("no safepoint reached")
            elif p["status"] == P_RUNNING and p["poll"] & POLL_FLUSHWB:
                parts.append("barrier log not flushed (no safepoint reached)")
            lk = p["lock"]
        if lk:
            parts.append(f"waiting for lock {lk['name']}")
        for name in held:
            parts.append(f"holding lock {name}")
        return ", ".join(parts)

    def _message(
        self,
        roots: list,
        trigger_dur: float,
        edges: list,
        stopped: dict,
        node_pid: dict,
        os_state: dict,
        snap: dict,
        gc_quiet: float,
    ) -> str:
        now_ns = snap["now_ns"]
        # locks somebody waits for, by holder
        held: dict = {}
        for lk in [snap["gc"]["lock"]] + [p["lock"] for p in snap["ps"]]:
            if lk and lk["holder_pid"] > 0:
                held.setdefault(lk["holder_pid"], [])
                if lk["name"] not in held[lk["holder_pid"]]:
                    held[lk["holder_pid"]].append(lk["name"])
        descs = []
        for r in roots:
            into = [e.dur for e in edges if r in e.dsts]
            dur = max([trigger_dur, stopped.get(r, 0.0)] + into + ([gc_quiet] if r == GC else []))
            pid = node_pid.get(r) if not isinstance(r, tuple) else r[1]
            descs.append(
                f"{self._name(r, node_pid)} made no progress for {dur:.1f} s (OS state: "
                f"{self._os_text(r, node_pid, os_state) if not isinstance(r, tuple) else '?'}; runtime: "
                f"{self._runtime_text(r, snap, now_ns, held.get(pid, []), pid)})"
            )
        # who waited: every wait into the roots, then into those waiters (breadth first)
        waits, frontier, done = [], list(roots), set()
        while frontier:
            nxt = []
            for tgt in frontier:
                for e in edges:
                    if tgt in e.dsts and (e.src, tgt) not in done and e.src not in roots:
                        done.add((e.src, tgt))
                        t = "it" if (len(roots) == 1 and tgt in roots) else self._name(tgt, node_pid)
                        waits.append(f"{self._name(e.src, node_pid)} has been {e.phrase(t)} for {e.dur:.1f} s")
                        nxt.append(e.src)
            frontier = nxt
        if len(waits) > 6:
            waits = waits[:6] + [f"and {len(waits) - 6} more waits"]
        tail = (
            "; ".join(waits)
            if waits
            else "nothing was waiting for it yet"
            if len(roots) == 1
            else "nothing was waiting for them yet"
        )
        return "stalled: " + "; ".join(descs) + "; " + tail
