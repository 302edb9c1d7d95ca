"""--trace: the event rings (native/trace.c) and the Perfetto timeline (gorun/trace.py), with
real runs: the trace parses back, has the tracks, one stop-the-world slice per P per recorded
pause, every acknowledgement inside its pause, monotonic timestamps per track; recording off
reserves no ring and writes nothing. docs/design.md "Events and traces"."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

import gorun
from gorun import _gorun
from gorun.workloads import get

from conftest import standalone_heap

ROOT = Path(__file__).resolve().parent.parent
_C = _gorun.constants()


def _traced_run(tmp_path, godebug: str = "", procs: int = 2):
    path = tmp_path / "t.json"
    w = get("binary-trees")
    rt = gorun.Runtime(procs=procs, trace=str(path), godebug_env=godebug, gogc=50)
    r = rt.run(w.fn, **w.parse_params(["depth=12"]))
    doc = json.loads(path.read_text())  # valid JSON: parse it back
    return r, r.to_dict(), doc["traceEvents"], path


@pytest.fixture(scope="module")
def traced(tmp_path_factory):
    return _traced_run(tmp_path_factory.mktemp("trace"))


def _by_name(events, ph, name):
    return [e for e in events if e["ph"] == ph and e["name"] == name]


def test_trace_has_a_process_per_worker_and_the_gc(traced):
    r, d, events, _ = traced
    names = {e["pid"]: e["args"]["name"] for e in _by_name(events, "M", "process_name")}
    pids = [p["pid"] for p in d["alloc"]["per_p"]]
    for i, pid in enumerate(pids):
        assert names[pid] == f"P{i} (pid {pid})"
    gc_pid = r.stats["gc"]["state"]["gc_pid"]
    assert [n for n in names.values() if n.startswith("GC ")] == [f"GC (pid {gc_pid})"]
    threads = {e["args"]["name"] for e in _by_name(events, "M", "thread_name")}
    assert {"GC main thread", "phases", "stop-the-world", "runtime"} <= threads
    assert any(t.startswith("mark thread ") for t in threads)  # a mark thread did work
    counters = {e["name"] for e in events if e["ph"] == "C"}
    assert {"heap_live", "total_memory", "gc_cpu"} <= counters


def test_one_stw_slice_per_p_per_pause_and_acks_inside(traced):
    r, d, events, _ = traced
    pauses = r.stats["gc"]["pauses"]
    assert pauses, "the run stopped the world"
    pids = [p["pid"] for p in d["alloc"]["per_p"]]
    init_ns = r.stats["gc"]["state"]["init_ns"]
    stw = defaultdict(list)  # pid -> the STW slices on its stop-the-world track
    for e in events:
        if e["ph"] == "X" and e["name"].startswith("STW ") and e["pid"] in pids:
            stw[e["pid"]].append(e)
    acks = defaultdict(list)
    for e in _by_name(events, "i", "ack"):
        acks[e["pid"]].append(e["ts"])
    for i, pid in enumerate(pids):
        assert sorted(e["args"]["pause"] for e in stw[pid]) == list(range(len(pauses)))
        want = []
        for pi, p in enumerate(pauses):
            (sl,) = [e for e in stw[pid] if e["args"]["pause"] == pi]
            start = p["start_ns"] - init_ns
            assert sl["name"] == "STW " + p["kind"]
            assert sl["ts"] == round(start / 1000, 3) and sl["dur"] == round(p["total_ns"] / 1000, 3)
            if p["ack_ns"][i]:  # the P acknowledged: its ring has the event, at the same clock read
                want.append(round((start + p["ack_ns"][i]) / 1000, 3))
                assert sl["ts"] <= want[-1] <= sl["ts"] + sl["dur"]
        assert sorted(acks[pid]) == sorted(want)  # every ack recorded, none extra
    assert d["trace"]["lost"] == 0


def test_timestamps_monotonic_per_track_and_summary(traced):
    r, d, events, path = traced
    last = {}
    for e in events:
        if e["ph"] == "M":
            continue
        key = (e["pid"], e["tid"])
        assert e["ts"] >= last.get(key, 0)
        last[key] = e["ts"]
    s = d["trace"]
    assert s["path"] == str(path) and s["bytes"] == os.path.getsize(path) and s["events"] > 0
    for a in d["gc"]["assists"]:
        assert set(a) == {"p", "start_ns", "dur_ns", "bytes"} and 0 <= a["p"] < 2
    assert len(d["gc"]["assists"]) == len(_by_name(events, "X", "assist"))
    refills = len(_by_name(events, "X", "refill")) + len(_by_name(events, "X", "refill+sweep"))
    assert refills == sum(p["refills"] for p in d["alloc"]["per_p"])  # one event per refill, none lost


def test_rcall_threshold_knob(tmp_path):
    """tracercallns=0: every refill is also a runtime-call slice (a refill is one, RC_REFILL)."""
    r, d, events, _ = _traced_run(tmp_path, "tracercallns=0,tracelockns=0", procs=1)
    refills = len(_by_name(events, "X", "refill")) + len(_by_name(events, "X", "refill+sweep"))
    assert refills > 0 and len(_by_name(events, "X", "runtime call refill")) == refills
    contended = sum(lk["contended"] for lk in r.stats["locks"]["mcentral"]) + r.stats["locks"]["mheap"]["contended"]
    waits = [e for e in events if e["ph"] == "X" and e["name"].startswith("lock wait ")]
    assert len(waits) <= contended + r.stats["locks"]["workbuf"]["contended"] + r.stats["locks"]["typetab"]["contended"]


def test_recording_off_reserves_no_ring_and_writes_nothing(tmp_path):
    flag = _C["debug_flags"]["trace"]
    with standalone_heap() as _:
        off = _gorun.memstats()["sys_bytes"]
        assert _gorun.trace_drain(True) == (b"", [])  # no rings
    with standalone_heap(debug_flags=flag) as _:
        on = _gorun.memstats()["sys_bytes"]
        data, lost = _gorun.trace_drain(True)
        assert data == b"" and lost == [0, 0, 0]  # 2 P's + the GC process; nothing written yet
    ring = 64 + _C["trace"]["limits"]["ring_events"] * 32
    assert on - off == -(-3 * ring // 4096) * 4096  # the rings are reserved only when recording
    w = get("alloc")
    r = gorun.Runtime(procs=1).run(w.fn, **w.parse_params(["budget=1MiB", "keep=100"]))
    d = r.to_dict()
    assert "trace" not in d and "assists" not in d["gc"]
    assert list(tmp_path.iterdir()) == []


def test_lock_stats_have_hold_max_and_workbuf(traced):
    r, d, _, _ = traced
    locks = r.stats["locks"]
    assert locks["workbuf"]["name"] == "workbuf" and locks["workbuf"]["acquisitions"] > 0  # the run marked
    for lk in (locks["mheap"], locks["workbuf"]):
        assert 0 < lk["hold_ns_max"] <= lk["hold_ns_total"]


def test_bad_trace_path_is_one_line_and_exit_2(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    p = subprocess.run(
        [sys.executable, "-m", "gorun", "run", "alloc", "--trace", str(tmp_path / "no" / "t.json")],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert p.returncode == 2
    assert p.stderr.startswith("gorun: error: bad --trace ") and p.stderr.count("\n") == 1
    assert p.stdout == ""


def test_slices_nest_on_every_track(traced):
    """Perfetto needs the complete ('X') slices of one track to nest; adjacent ones share an
    end and a start exactly (integer ns: Perfetto rounds µs x 1000)."""
    _, _, events, _ = traced
    tracks = defaultdict(list)
    for e in events:
        if e["ph"] == "X":
            tracks[(e["pid"], e["tid"])].append((round(e["ts"] * 1000), round(e["dur"] * 1000), e["name"]))
    for key, slices in tracks.items():
        stack = []
        for start, dur, name in slices:  # in file order: by start, the longer first
            while stack and stack[-1][0] <= start:
                stack.pop()
            assert not stack or start + dur <= stack[-1][0], (key, name, start, dur, stack[-1])
            stack.append((start + dur, name))


def test_protobuf_trace_parses_back_with_the_same_tracks(tmp_path):
    """The default format (a path not ending in .json): Perfetto protobuf TrackEvents."""
    from perfetto.protos.perfetto.trace import perfetto_trace_pb2 as pb

    path = tmp_path / "t.pftrace"
    w = get("binary-trees")
    r = gorun.Runtime(procs=2, trace=str(path), gogc=50).run(w.fn, **w.parse_params(["depth=11"]))
    d = r.to_dict()
    trace = pb.Trace.FromString(path.read_bytes())
    assert d["trace"]["bytes"] == len(path.read_bytes()) and d["trace"]["lost"] == 0
    procs, threads, counters = {}, {}, set()
    for pk in trace.packet:
        if pk.HasField("track_descriptor"):
            td = pk.track_descriptor
            if td.HasField("process"):
                procs[td.uuid] = td.process.process_name
            elif td.HasField("counter"):
                counters.add(td.name)
            else:
                threads[td.uuid] = (procs[td.parent_uuid], td.name)
    pids = [p["pid"] for p in d["alloc"]["per_p"]]
    assert sorted(procs.values()) == sorted(
        [f"GC (pid {r.stats['gc']['state']['gc_pid']})"] + [f"P{i} (pid {pid})" for i, pid in enumerate(pids)]
    )
    assert {"heap_live", "gc_cpu"} <= counters
    names = {}
    depth, last, begins = defaultdict(int), defaultdict(int), defaultdict(list)
    for pk in trace.packet:
        for n in pk.interned_data.event_names:
            names[n.iid] = n.name
        if not pk.HasField("track_event") or pk.track_event.type == pb.TrackEvent.TYPE_COUNTER:
            continue
        te, u = pk.track_event, pk.track_event.track_uuid
        assert pk.timestamp >= last[u]  # time order on every track
        last[u] = pk.timestamp
        if te.type == pb.TrackEvent.TYPE_SLICE_BEGIN:
            depth[u] += 1
            begins[u].append(names[te.name_iid])
        elif te.type == pb.TrackEvent.TYPE_SLICE_END:
            depth[u] -= 1
            assert depth[u] >= 0
    assert all(v == 0 for v in depth.values())  # every slice ends
    npauses = len(r.stats["gc"]["pauses"])
    assert npauses > 0
    for i in range(2):
        (u,) = [u for u, (p, t) in threads.items() if p.startswith(f"P{i} ") and t == "stop-the-world"]
        assert sum(n.startswith("STW ") for n in begins[u]) == npauses  # one STW slice per pause


def test_bad_trace_path_in_the_api():
    with pytest.raises(ValueError, match="bad trace"):
        gorun.Runtime(procs=1, trace="/nonexistent-folder/t.json").run(get("alloc").fn)


def _fails_after_allocating(g):
    Node = gorun.struct("traceFailNode", left=gorun.PTR, right=gorun.PTR)
    keep = [g.new(Node) for _ in range(20000)]
    g.gc()
    if g.id == 1:
        raise RuntimeError("boom")
    return len(keep)


def test_a_failed_run_still_writes_its_trace(tmp_path):
    path = tmp_path / "t.json"
    with pytest.raises(gorun.RunError) as ei:
        gorun.Runtime(procs=2, trace=str(path)).run(_fails_after_allocating)
    events = json.loads(path.read_text())["traceEvents"]  # written, and valid
    d = ei.value.result.to_dict()
    assert d["trace"]["events"] > 0 and d["trace"]["bytes"] == os.path.getsize(path)
    stw = [e for e in events if e["ph"] == "X" and e["name"].startswith("STW ")]
    assert len(stw) == 3 * len(ei.value.result.stats["gc"]["pauses"]) > 0  # the GC's track and 2 P's
