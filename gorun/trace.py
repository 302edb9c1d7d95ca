"""--trace PATH: drain the C core's event rings (native/trace.c) during the run and write a
timeline that opens in Perfetto (ui.perfetto.dev) after it (docs/design.md "Events and traces").

The launcher owns a Recorder: ``drain()`` from its watch loop every 50 ms copies the complete
records out of the rings (so a ring of 8192 records is enough), ``finish()`` once more after
the run, on every exit path. ``write_trace`` turns the records plus the pause records into a
Perfetto protobuf trace (TrackEvents, with the `perfetto` package's generated classes), or a
Chrome JSON trace ("Trace Event Format", which Perfetto imports too) when the path ends in
.json: one process per worker ("P0 (pid N)") and one for the GC process ("GC (pid N)"), thread tracks for the mark threads, one
slice per P per stop-the-world with a flow from the stop request to each acknowledgement, and
counter tracks (heap live, goal, trigger, memory limit, total memory, GC CPU).
"""

from __future__ import annotations

import json
import os
import struct

from . import _gorun

_C = _gorun.constants()
EVENTS = {name[3:].lower(): v for name, v in _C["trace"]["events"].items()}  # "stw_ack" -> 1
COUNTERS = {v: k for k, v in _C["trace"]["counters"].items()}
LOCK_IDS = _C["trace"]["locks"]
RCALLS = {v: k for k, v in _C["rcalls"].items()}
ACTIVITIES = {v: k for k, v in _C["gc_activities"].items()}
PAUSE_NAMES = {_C["pause_kinds"]["sweepterm"]: "sweep termination", _C["pause_kinds"]["markterm"]: "mark termination"}
RECORD = struct.Struct("<QIHBBQ")  # ts, a, kind, tid, ring, b: trace.c's drained record
DRAIN_INTERVAL_S = 0.05
NO_VALUE = (1 << 64) - 1  # trigger / goal "none"
NO_LIMIT = (1 << 63) - 1  # memory limit "none"

# thread ids inside each process's track group
TID_RUNTIME = 0  # a P's runtime events; the GC process's main thread
TID_STW = 1000  # the stop-the-world track of each process
TID_PHASES = 1001  # the GC process's phases
# the GC process's mark thread i is tid 1 + i (its ring tid)


class Recorder:
    """The launcher's side of the rings: the records drained so far."""

    def __init__(self, path: str):
        self.path = path
        self.chunks: list[bytes] = []
        self.lost: list[int] = []
        self.finished = False

    def drain(self) -> None:
        if self.finished:
            return
        data, self.lost = _gorun.trace_drain(False)
        if data:
            self.chunks.append(data)

    def finish(self) -> None:
        """The last drain, after every writer has stopped (a slot a killed writer reserved and
        never completed counts as lost)."""
        if self.finished:
            return
        data, self.lost = _gorun.trace_drain(True)
        if data:
            self.chunks.append(data)
        self.finished = True

    def records(self) -> list[tuple]:
        out = []
        for c in self.chunks:
            out.extend(RECORD.iter_unpack(c))
        return out


def _us(ns: int) -> float:
    return round(ns / 1000.0, 3)


def _lock_name(i: int) -> str:
    m = LOCK_IDS["mcentral"]
    if i >= m and i != 0xFFFFFFFF:
        return f"mcentral[{i - m}]"
    for k, v in LOCK_IDS.items():
        if v == i:
            return k
    return "?"


def build(records: list[tuple], pauses: list[dict], init_ns: int, end_ns: int, p_pids: list[int], gc_pid: int):
    """The trace events (Chrome JSON), and the assist slices for the run JSON's gc.assists.
    Times: records in CLOCK_MONOTONIC ns, init_ns the run's time 0, end_ns the run's end (ns
    since time 0); pauses as _gorun.gc_pauses gives them (CLOCK_MONOTONIC start_ns)."""
    nprocs = len(p_pids)
    # a pid that is unknown (0) must still give distinct tracks
    ppid = [pid if pid > 0 else 1_000_000 + i for i, pid in enumerate(p_pids)]
    gpid = gc_pid if gc_pid > 0 else 2_000_000
    ev: list[dict] = []
    meta: list[dict] = []
    assists: list[dict] = []

    def proc(pid, name, sort):
        meta.append({"ph": "M", "name": "process_name", "pid": pid, "tid": 0, "args": {"name": name}})
        meta.append({"ph": "M", "name": "process_sort_index", "pid": pid, "tid": 0, "args": {"sort_index": sort}})

    def thread(pid, tid, name):
        meta.append({"ph": "M", "name": "thread_name", "pid": pid, "tid": tid, "args": {"name": name}})
        meta.append({"ph": "M", "name": "thread_sort_index", "pid": pid, "tid": tid, "args": {"sort_index": tid}})

    proc(gpid, f"GC (pid {gc_pid})", 0)
    thread(gpid, TID_RUNTIME, "GC main thread")
    thread(gpid, TID_PHASES, "phases")
    thread(gpid, TID_STW, "stop-the-world")
    for i in range(nprocs):
        proc(ppid[i], f"P{i} (pid {p_pids[i]})", 1 + i)
        thread(ppid[i], TID_RUNTIME, "runtime")
        thread(ppid[i], TID_STW, "stop-the-world")

    def rel(ts):
        return ts - init_ns

    def slice_(pid, tid, name, ts, dur, args=None, cat="runtime"):
        e = {"ph": "X", "name": name, "cat": cat, "pid": pid, "tid": tid, "ts": _us(ts), "dur": _us(dur)}
        if args:
            e["args"] = args
        ev.append(e)

    # pauses: one slice on the GC's stop-the-world track and one per P; a flow from the stop
    # request to each acknowledgement
    for pi, p in enumerate(pauses):
        start = rel(p["start_ns"])
        name = "STW " + (p["kind"] if isinstance(p["kind"], str) else PAUSE_NAMES.get(p["kind"], "?"))
        args = {"cycle": p["cycle"], "pause": pi, "stop_ns": p["stop_ns"], "total_ns": p["total_ns"]}
        slice_(gpid, TID_STW, name, start, p["total_ns"], args, "stw")
        slice_(gpid, TID_STW, "stopping", start, p["stop_ns"], None, "stw")
        for i in range(nprocs):
            ack = p["ack_ns"][i] if i < len(p["ack_ns"]) else 0
            slice_(
                ppid[i], TID_STW, name, start, p["total_ns"], {"cycle": p["cycle"], "pause": pi, "ack_ns": ack}, "stw"
            )
            if ack:
                fid = pi * 128 + i + 1
                ev.append(
                    {"ph": "s", "id": fid, "name": "stop", "cat": "stw", "pid": gpid, "tid": TID_STW, "ts": _us(start)}
                )
                ev.append(
                    {
                        "ph": "f",
                        "bp": "e",
                        "id": fid,
                        "name": "stop",
                        "cat": "stw",
                        "pid": ppid[i],
                        "tid": TID_STW,
                        "ts": _us(start + ack),
                    }
                )
    mark_threads = set()
    activity = None  # (name, start) of the GC's current phase
    cycle = 0
    last_counter: dict[int, int] = {}
    for ts, a, kind, tid, ring, b in sorted(records, key=lambda r: r[0]):
        t = rel(ts)
        is_gc = ring == nprocs
        pid = gpid if is_gc else (ppid[ring] if ring < nprocs else None)
        if pid is None:
            continue
        tr = tid if is_gc else TID_RUNTIME
        if is_gc and tid:
            mark_threads.add(tid)
        if kind == EVENTS["stw_ack"]:
            ev.append({"ph": "i", "s": "t", "name": "ack", "cat": "stw", "pid": pid, "tid": TID_STW, "ts": _us(t)})
        elif kind == EVENTS["stw_resume"]:
            ev.append(
                {"ph": "i", "s": "t", "name": "resume", "cat": "stw", "pid": pid, "tid": TID_RUNTIME, "ts": _us(t)}
            )
        elif kind == EVENTS["stw_stopped"]:
            ev.append(
                {"ph": "i", "s": "t", "name": "world stopped", "cat": "stw", "pid": pid, "tid": TID_STW, "ts": _us(t)}
            )
        elif kind == EVENTS["activity"]:
            act, arg = ACTIVITIES.get(a, "?"), b >> 32
            if b & 0xFFFFFFFF:
                cycle = b & 0xFFFFFFFF
            if activity is not None and t > activity[1]:
                slice_(gpid, TID_PHASES, activity[0], activity[1], t - activity[1], {"cycle": activity[2]}, "phase")
            if act in ("stopping", "stw"):
                name = PAUSE_NAMES.get(arg, "?")
            elif act in ("idle", "starting", "exiting"):
                name = None
            else:
                name = act.replace("_", " ")
            activity = (name, t, cycle) if name else None
        elif kind == EVENTS["counter"]:
            name = COUNTERS.get(a, "?")
            if (name in ("goal", "trigger") and b == NO_VALUE) or (name == "memory_limit" and b >= NO_LIMIT):
                continue
            if last_counter.get(a) == b:
                continue  # a counter track needs only its changes
            last_counter[a] = b
            ev.append({"ph": "C", "name": name, "pid": gpid, "tid": 0, "ts": _us(t), "args": {"value": b}})
        elif kind == EVENTS["stw_request"] or kind == EVENTS["stw_restart"]:
            continue  # the pause records draw the pauses (same clock reads)
        else:
            dur = a
            if kind == EVENTS["mark_work"]:
                slice_(pid, tr, "mark work", t, dur, {"scan_bytes": b}, "gc")
            elif kind == EVENTS["handshake"]:
                slice_(pid, tr, "handshake", t, dur, {"found_work": b}, "gc")
            elif kind == EVENTS["assist"]:
                slice_(pid, tr, "assist", t, dur, {"scan_bytes": b}, "gc")
                assists.append({"p": ring, "start_ns": t, "dur_ns": dur, "bytes": b})
            elif kind == EVENTS["refill"]:
                args = {"spanclass": b & 0xFF, "swept": b >> 8}
                slice_(pid, tr, "refill+sweep" if b >> 8 else "refill", t, dur, args)
            elif kind == EVENTS["lock_wait"]:
                slice_(pid, tr, "lock wait " + _lock_name(b), t, dur, {"wait_ns": dur})
            elif kind == EVENTS["rcall"]:
                slice_(pid, tr, "runtime call " + RCALLS.get(b, "?"), t, dur, {"dur_ns": dur})
            elif kind == EVENTS["scavenge"]:
                slice_(pid, tr, "scavenge", t, dur, {"released_bytes": b}, "gc")
    if activity is not None and end_ns > activity[1]:
        slice_(gpid, TID_PHASES, activity[0], activity[1], end_ns - activity[1], {"cycle": activity[2]}, "phase")
    for tid in sorted(mark_threads):
        thread(gpid, tid, f"mark thread {tid - 1}")
    ev.sort(key=lambda e: (e["ts"], -e.get("dur", 0)))
    return meta + ev, assists


def is_json(path: str) -> bool:
    """A --trace path ending in .json gets Chrome JSON; any other, Perfetto protobuf."""
    return path.lower().endswith(".json")


def protobuf_missing() -> str | None:
    """Why a protobuf trace cannot be written here (the `perfetto` package is missing), or None."""
    import importlib.util

    if importlib.util.find_spec("perfetto") is None or importlib.util.find_spec("google.protobuf") is None:
        return "writing a Perfetto protobuf trace needs the 'perfetto' package (pip install perfetto); or name a .json file"
    return None


def to_protobuf(events: list[dict]) -> bytes:
    """The same timeline as Perfetto protobuf TracePackets: track descriptors for the processes,
    their threads and counters, TrackEvent slices (begin/end), instants, counters and flows;
    event and argument names interned on one packet sequence. Times in ns (the JSON's µs with
    three decimals are whole ns). Packets are in time order, ends before begins at equal times."""
    from perfetto.protos.perfetto.trace import perfetto_trace_pb2 as pb

    TE = pb.TrackEvent
    pnames = {e["pid"]: e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "process_name"}
    tnames = {(e["pid"], e["tid"]): e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "thread_name"}
    trace = pb.Trace()
    uuids: dict[tuple, int] = {}
    names: dict[str, int] = {}
    anames: dict[str, int] = {}

    def packet():
        pk = trace.packet.add()
        pk.trusted_packet_sequence_id = 1
        return pk

    first = packet()
    first.sequence_flags = pb.TracePacket.SEQ_INCREMENTAL_STATE_CLEARED

    def track(pid, tid=None, counter=None):
        key = (pid, tid, counter)
        if key in uuids:
            return uuids[key]
        parent = None if tid is None and counter is None else track(pid)
        uuids[key] = u = len(uuids) + 1
        td = packet().track_descriptor
        td.uuid = u
        if parent is None:
            td.process.pid = pid
            td.process.process_name = pnames.get(pid, str(pid))
            return u
        td.parent_uuid = parent
        if counter is not None:
            td.name = counter
            td.counter.SetInParent()
        else:
            td.name = tnames.get((pid, tid), str(tid))
        return u

    def intern(table, field, name, pk):
        iid = table.get(name)
        if iid is None:
            iid = table[name] = len(table) + 1
            ent = getattr(pk.interned_data, field).add()
            ent.iid, ent.name = iid, name
        return iid

    # (time, order, tie, kind, event): ends (order 0) before begins (1) at the same time; among
    # begins the longer first, among ends the later-begun first (so slices nest)
    items = []
    for e in events:
        ph = e["ph"]
        if ph == "M":
            continue
        t = round(e["ts"] * 1000)
        if ph == "X":
            d = round(e["dur"] * 1000)
            items.append((t, 1, -d, "B", e))
            items.append((t + d, 0, -t, "E", e))
        else:
            items.append((t, 1, 0, ph, e))
    items.sort(key=lambda x: x[:3])
    for t, _, _, kind, e in items:
        if e["ph"] == "C":
            pk = packet()
            pk.timestamp = t
            pk.track_event.type = TE.TYPE_COUNTER
            pk.track_event.track_uuid = track(e["pid"], counter=e["name"])
            pk.track_event.counter_value = int(e["args"]["value"])
            continue
        pk = packet()
        pk.timestamp = t
        te = pk.track_event
        te.track_uuid = track(e["pid"], e["tid"])
        if kind == "E":
            te.type = TE.TYPE_SLICE_END
            continue
        te.type = TE.TYPE_SLICE_BEGIN if kind == "B" else TE.TYPE_INSTANT
        te.name_iid = intern(names, "event_names", e["name"], pk)
        for k, v in (e.get("args") or {}).items():
            da = te.debug_annotations.add()
            da.name_iid = intern(anames, "debug_annotation_names", k, pk)
            da.int_value = int(v)
        if kind == "s":
            te.flow_ids.append(e["id"])
        elif kind == "f":
            te.terminating_flow_ids.append(e["id"])
    return trace.SerializeToString()


def write_trace(rec: Recorder, pauses: list[dict], init_ns: int, end_ns: int, p_pids: list[int], gc_pid: int):
    """Write rec's trace to rec.path (Chrome JSON for a .json path, else Perfetto protobuf);
    returns (the run JSON's `trace` summary, gc.assists)."""
    records = rec.records()
    events, assists = build(records, pauses, init_ns, end_ns, p_pids, gc_pid)
    tmp = rec.path + ".tmp"
    if is_json(rec.path):
        doc = {"traceEvents": events, "displayTimeUnit": "ns", "otherData": {"gorun": "gorun --trace"}}
        with open(tmp, "w") as f:
            json.dump(doc, f, separators=(",", ":"))
    else:
        data = to_protobuf(events)
        with open(tmp, "wb") as f:
            f.write(data)
    os.replace(tmp, rec.path)
    summary = {"path": rec.path, "events": len(records), "lost": sum(rec.lost), "bytes": os.path.getsize(rec.path)}
    return summary, assists
