"""`gorun plot` and `gorun run --plot` (gorun/plot.py, docs/design.md "Plots"): the MMU against
hand-computed cases and a brute force, the plots made in a fresh process from a saved JSON (a real
run's and hand-built documents of the JSON contract), PNGs of the documented size that show data,
and bad input as one line and exit 2."""

from __future__ import annotations

import copy
import json
import os
import random

import numpy as np
import pytest
from matplotlib import image as mpimg

from conftest import run_gorun
from gorun import plot
from gorun.metrics import time_histogram

MS = 1_000_000


# ---------------------------------------------------------------- the MMU, a pure function


def test_mmu_hand_computed_one_p():
    # one P, a 10 ms run, unavailable during [2, 3) ms
    un = [[(2 * MS, 3 * MS)]]
    assert plot.mmu(un, 10 * MS, [MS // 2, MS, 2 * MS, 4 * MS, 10 * MS]) == pytest.approx([0, 0, 0.5, 0.75, 0.9])
    # two pauses [1, 2) and [3, 4): the worst 3 ms window is [1, 4), 1/3 available
    un = [[(1 * MS, 2 * MS), (3 * MS, 4 * MS)]]
    assert plot.mmu(un, 10 * MS, [3 * MS, 5 * MS]) == pytest.approx([1 / 3, 3 / 5])
    # not monotonic: a 2 ms window takes in at most 1 ms of pause, the 3 ms one [1, 4) both
    assert plot.mmu(un, 10 * MS, [2 * MS, 3 * MS]) == pytest.approx([1 / 2, 1 / 3])
    # no pause: always 1; overlapping and out-of-range intervals are merged and clipped
    assert plot.mmu([[]], 10 * MS, [MS]) == [1.0]
    assert plot.mmu([[(-MS, MS), (MS // 2, 2 * MS), (9 * MS, 12 * MS)]], 10 * MS, [4 * MS]) == pytest.approx([0.5])


def test_mmu_hand_computed_two_ps():
    # P0 out over [2, 3) ms, P1 over [2.5, 3.5) ms in a 10 ms run: the run's utilization is
    # 1/2 on [2, 2.5), 0 on [2.5, 3), 1/2 on [3, 3.5): a 1 ms window loses 0.75 ms of P-time
    # per P at best -> 0.25; a 2 ms window covering the whole of it loses 1 ms -> 0.5
    un = [[(2 * MS, 3 * MS)], [(5 * MS // 2, 7 * MS // 2)]]
    assert plot.mmu(un, 10 * MS, [MS // 2, MS, 2 * MS, 10 * MS]) == pytest.approx([0, 0.25, 0.5, 0.9])
    assert plot.mmu(un[:1], 10 * MS, [MS, 2 * MS]) == pytest.approx([0, 0.5])
    assert plot.mmu(un[1:], 10 * MS, [MS, 2 * MS]) == pytest.approx([0, 0.5])


def _brute_mmu(unavailable, total, w):
    """Utilization per nanosecond, then every integer window position (all interval ends are
    integers, so the exact minimum is at one of them)."""
    n = len(unavailable)
    up = np.full(total, n, dtype=np.int64)
    for ivs in unavailable:
        down = np.zeros(total, dtype=bool)
        for s, e in ivs:
            down[max(0, s) : max(0, min(total, e))] = True
        up -= down
    c = np.concatenate([[0], np.cumsum(up)])
    return float((c[w:] - c[:-w]).min()) / (n * w)


def test_mmu_matches_brute_force():
    rng = random.Random(8)
    for _ in range(300):
        total = rng.randint(1, 300)
        procs = rng.randint(1, 4)
        un = []
        for _p in range(procs):
            ivs = []
            for _i in range(rng.randint(0, 5)):
                s = rng.randint(-20, total + 20)
                ivs.append((s, s + rng.randint(0, 60)))
            un.append(ivs)
        ws = sorted({rng.randint(1, total) for _ in range(4)})
        got = plot.mmu(un, total, ws)
        assert got == pytest.approx([_brute_mmu(un, total, w) for w in ws], abs=1e-9), (un, total, ws)


def test_mmu_rejects_impossible_windows():
    with pytest.raises(ValueError):
        plot.mmu([[]], 10 * MS, [11 * MS])
    with pytest.raises(ValueError):
        plot.mmu([], 10 * MS, [MS])


def test_mmu_windows_log_spaced_and_clipped():
    ws = plot.mmu_windows(5 * 10**9)
    assert ws[0] == 100_000 and ws[-1] == 10**9 and len(ws) == 41
    assert all(b / a == pytest.approx(10**0.1, rel=1e-5) for a, b in zip(ws, ws[1:]))
    short = plot.mmu_windows(3 * MS)
    assert short[0] == 100_000 and short[-1] == 3 * MS and all(w <= 3 * MS for w in short)
    assert plot.mmu_windows(50_000) == [50_000]


def test_unavailable_intervals_from_acks_and_assists():
    r = {
        "procs": 3,
        "wall_s": 0.01,
        "gc": {
            "pauses": [
                {
                    "kind": "sweep termination",
                    "start_ns": 1000,
                    "end_ns": 5000,
                    "stop_ns": 3000,
                    "total_ns": 4000,
                    "ack_ns": [3000, 0, 200],
                },
            ],
            "assists": [{"p": 1, "start_ns": 7000, "dur_ns": 500, "bytes": 64}],
        },
    }
    # P0 acked 3 us after the request, P1 was taken without acking, P2 acked after 200 ns
    assert plot.unavailable_intervals(r) == [[(4000, 5000)], [(1000, 5000), (7000, 7500)], [(1200, 5000)]]
    del r["gc"]["pauses"][0]["end_ns"]
    assert plot.unavailable_intervals(r) is None


def test_histogram_cdf_of_a_go_histogram():
    h = {"buckets": ["-Inf", 0.0, 1e-6, 2e-6, 4e-6, "+Inf"], "counts": [0, 0, 3, 1, 0]}
    x, y = plot.histogram_cdf(h)
    assert list(x) == [1e-6, 2e-6, 4e-6] and list(y) == [0.0, 0.75, 1.0]
    # Go's layout (gorun/metrics.py): the CDF reaches each value's fraction at its bucket's top
    x, y = plot.histogram_cdf(time_histogram([1000, 1000, 5000, 10**6]))
    assert y[0] == 0.0 and y[-1] == 1.0 and all(np.diff(y) >= 0) and all(np.diff(x) > 0)
    assert x[0] <= 1000e-9 < x[1] and np.interp(1.05e-6, x, y) == 0.5
    assert np.interp(1e-3 * 1.3, x, y) == 1.0
    assert plot.histogram_cdf({"buckets": ["-Inf", "+Inf"], "counts": [0]}) is None
    assert plot.histogram_cdf({"buckets": [1.0], "counts": [1]}) is None


# ---------------------------------------------------------------- documents


def contract_document(procs: int = 2, cycles: int = 12, seed: int = 1) -> dict:
    """A run document with every key of the issue-8 JSON contract that the plots read: a heap
    sawtooth sampled every 10 ms, two pauses per cycle with per-P acknowledgements, assists,
    and wait histograms for the four locks."""
    rng = random.Random(seed)
    period = 150 * MS
    wall = cycles * period + 50 * MS
    pauses, detail, assists = [], [], []
    for n in range(1, cycles + 1):
        t0 = n * period - 100 * MS
        for kind, start in (("sweep termination", t0), ("mark termination", t0 + 40 * MS)):
            acks = [rng.randint(5_000, 300_000) if rng.random() > 0.2 else 0 for _ in range(procs)]
            stop = max(acks) or 3_000
            total = stop + rng.randint(20_000, 800_000)
            pauses.append(
                {
                    "kind": kind,
                    "cycle": n,
                    "start_ns": start,
                    "end_ns": start + total,
                    "stop_ns": stop,
                    "total_ns": total,
                    "ack_ns": acks,
                }
            )
        for p in range(procs):
            s = t0 + rng.randint(2, 30) * MS
            assists.append({"p": p, "start_ns": s, "dur_ns": rng.randint(50_000, 2 * MS), "bytes": 4096})
        detail.append(
            {
                "n": n,
                "start_ns": t0,
                "mark_start_ns": t0 + MS,
                "mark_end_ns": t0 + 41 * MS,
                "sweep_end_ns": t0 + 60 * MS,
                "end_ns": t0 + 60 * MS,
                "gc_cpu_ns": 30 * MS,
                "heap_start": 40 << 20,
                "heap_end": 44 << 20,
                "heap_marked": 20 << 20,
                "goal": 40 << 20,
                "trigger": 36 << 20,
                "forced": False,
            }
        )
    t = list(range(0, wall + 1, 10 * MS))
    live = [int((20 << 20) + (20 << 20) * ((x + 100 * MS) % period) / period) for x in t]
    cpu, acc = [], 0
    for x in t:
        cpu.append(acc)
        acc += rng.randint(0, 6 * MS) if (x + 100 * MS) % period < 60 * MS else rng.randint(0, MS // 2)
    locks = {}
    for i, name in enumerate(plot.LOCK_NAMES):
        hist = [0] * 32
        if name != "typetab":
            for b in range(8 + i, 20 + i):
                hist[b] = rng.randint(0, 50)
        waits = sum(hist)
        locks[name] = {
            "acquisitions": 10 * waits + 100,
            "contended": waits,
            "wait_ns_total": waits * 50_000,
            "wait_ns_max": 2 ** (20 + i),
            "hold_ns_total": 10**7,
            "hold_ns_max": 10**5,
            "recovered": 0,
            "wait_hist": hist,
            "wait_ns_p99": 2 ** (20 + i),
            "wait_ns_mean": 50_000.0,
        }
    locks["mcentral_by_class"] = {}
    return {
        "schema_version": 1,
        "workload": "hand-built",
        "params": {"depth": 12},
        "procs": procs,
        "lock": "futex",
        "wall_s": wall / 1e9,
        "error": "",
        "gc": {
            "cycles": cycles,
            "pauses": pauses,
            "cycles_detail": detail,
            "assists": assists,
            "cpu_fraction": acc / (procs * wall),
        },
        "locks": locks,
        "timeline": {
            "interval_ns": 10 * MS,
            "t_ns": t,
            "heap_live": live,
            "heap_goal": [40 << 20] * len(t),
            "trigger": [36 << 20] * len(t),
            "total_memory": [x + (8 << 20) for x in live],
            "gc_cpu_ns": cpu,
            "memory_limit": 64 << 20,
        },
    }


def compare_document(result: dict) -> dict:
    go_total = [random.Random(2).randint(20_000, 200_000) for _ in range(30)]
    return {
        "schema_version": 1,
        "kind": "compare",
        "workload": result["workload"],
        "procs": result["procs"],
        "gorun": {"rounds": [], "result": result},
        "go": {
            "rounds": [],
            "metrics": {
                "/sched/pauses/total/gc:seconds": time_histogram(go_total),
                "/sched/pauses/stopping/gc:seconds": time_histogram([v // 4 for v in go_total]),
            },
        },
    }


def png(path) -> np.ndarray:
    img = mpimg.imread(path)
    assert img.shape[:2] == (plot.PNG_SIZE_PX[1], plot.PNG_SIZE_PX[0]), f"{path}: {img.shape}"
    return img


def assert_shows_data(path) -> None:
    """The PNG has the documented size, is not blank (pixel variance) and has colored pixels:
    axes and text are black and gray, every data series is drawn in a color."""
    rgb = png(path)[..., :3]
    assert rgb.std() > 0.02, f"{path} is blank"
    colored = (rgb.max(axis=2) - rgb.min(axis=2)) > 0.3
    assert colored.mean() > 0.0005, f"{path} draws no data ({colored.sum()} colored pixels)"


def plot_cli(doc_path, out_dir=None):
    args = ["plot", str(doc_path)] + (["-o", str(out_dir)] if out_dir is not None else [])
    return run_gorun(*args, timeout=120)


# ---------------------------------------------------------------- plots from saved documents


def test_plot_hand_built_document_in_a_fresh_process(tmp_path):
    """A document of the JSON contract, plotted by `gorun plot` in another process, into the
    JSON's folder by default."""
    doc = tmp_path / "r.json"
    doc.write_text(json.dumps(contract_document()))
    p = plot_cli(doc)
    assert p.returncode == 0, p.stderr
    assert p.stderr == ""  # nothing missing
    assert p.stdout.split() == [str(tmp_path / f) for f in plot.PLOT_FILES]
    for f in plot.PLOT_FILES:
        assert_shows_data(tmp_path / f)


@pytest.mark.slow
def test_compare_document_overlays_go_pause_lines(tmp_path):
    result = contract_document()
    a, notes_a = plot.write_plots(*plot.split_document(result), str(tmp_path / "a"))
    b, notes_b = plot.write_plots(*plot.split_document(compare_document(result)), str(tmp_path / "b"))
    assert notes_a == notes_b == []
    # the same run is plotted; only the pause CDFs gain Go's lines
    for fa, fb in zip(a, b):
        same = np.array_equal(png(fa), png(fb))
        assert same == (not fa.endswith("pauses.png")), fa
    # a comparison without Go's histograms: gorun's lines and a note
    cmp = compare_document(result)
    cmp["go"]["metrics"] = {}
    notes_c = []
    plot._plot_pauses(*plot.split_document(cmp), str(tmp_path / "c.png"), notes_c)
    assert notes_c == [
        "pauses.png: the comparison has no /sched/pauses/total/gc:seconds values",
        "pauses.png: the comparison has no /sched/pauses/stopping/gc:seconds values",
    ]
    assert np.array_equal(png(a[1]), png(tmp_path / "c.png"))


def test_older_document_plots_what_there_is(tmp_path):
    """No timeline, no pause times, no assists, no wait histograms, no workbuf/typetab locks:
    every PNG is written (its folder made, parents included) and each missing part is noted."""
    r = contract_document()
    del r["timeline"], r["schema_version"], r["gc"]["assists"]
    for p in r["gc"]["pauses"]:
        del p["start_ns"], p["end_ns"]
    for c in r["gc"]["cycles_detail"]:
        for k in ("start_ns", "mark_start_ns", "mark_end_ns", "sweep_end_ns", "end_ns", "gc_cpu_ns"):
            del c[k]
        c["mark_cpu_ns"], c["assist_ns"] = 20 * MS, MS
    for name in ("workbuf", "typetab"):
        del r["locks"][name]
    del r["locks"]["mheap"]["wait_hist"]
    out = tmp_path / "new" / "out"
    paths, notes = plot.write_plots(*plot.split_document(json.loads(json.dumps(r))), str(out))
    assert paths == [str(out / f) for f in plot.PLOT_FILES]
    assert notes == [
        "heap.png: the document has no timeline (older gorun): heap, goal and trigger per GC cycle",
        "mmu.png: the pauses have no start_ns/end_ns (older gorun): no MMU",
        "locks.png: locks.mheap has no wait_hist",
        "locks.png: no locks.workbuf in this document",
        "locks.png: no locks.typetab in this document",
        "gccpu.png: the document has no timeline with gc_cpu_ns (older gorun): GC CPU per cycle",
    ]
    for f in ("heap.png", "pauses.png", "locks.png", "gccpu.png"):
        assert_shows_data(out / f)
    png(out / "mmu.png")


@pytest.mark.slow
def test_real_run_json_then_plot_in_a_fresh_process(tmp_path):
    """One real run writes --json and --plot (a new folder); `gorun plot` of the saved JSON in
    another process, into the JSON's folder, draws the same pictures."""
    j = tmp_path / "r.json"
    live = tmp_path / "new" / "live"
    run = run_gorun(
        "run", "binary-trees", "--procs", "2", "-p", "depth=12", "--json", str(j), "--plot", str(live), timeout=120
    )
    assert run.returncode == 0, run.stderr
    assert [ln for ln in run.stdout.splitlines() if ln.endswith(".png")] == [str(live / f) for f in plot.PLOT_FILES]
    p = plot_cli(j)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == [str(tmp_path / f) for f in plot.PLOT_FILES]
    assert p.stderr == run.stderr  # the same notes
    # a current run has the timeline, the pause times and the wait histograms; only what needs
    # --trace (assists) or a lock the C core does not report may be missing
    for note in p.stderr.splitlines():
        assert note.startswith("gorun: note: ") and ("gc.assists" in note or "locks.workbuf" in note), note
    for f in plot.PLOT_FILES:
        assert np.array_equal(png(live / f), png(tmp_path / f)), f
    for f in ("heap.png", "pauses.png", "mmu.png", "gccpu.png"):  # a lock may have had no contended wait
        assert_shows_data(tmp_path / f)
    # the MMU of the real pauses: a P's MMU is 0 up to its longest time out and positive just
    # past it; over the whole run it is 1 - the time out / (P x the run's length)
    r, _ = plot.load_document(str(j))
    un = plot.unavailable_intervals(r)
    total = plot.run_length_ns(r, un)
    assert r["gc"]["pauses"] and len(un) == 2
    for ivs in un:
        longest = max(e - s for s, e in plot._merged(ivs, total))
        zero, past = plot.mmu([ivs], total, [longest, longest + 1])
        assert zero == 0.0 and past > 0.0
    lost = sum(e - s for ivs in un for s, e in plot._merged(ivs, total))
    assert plot.mmu(un, total, [total]) == pytest.approx([1 - lost / (2 * total)])


# ---------------------------------------------------------------- bad input


def _bad_input_cases(tmp_path):
    (tmp_path / "notjson.json").write_text("gc: 3 cycles\n")
    (tmp_path / "list.json").write_text("[1, 2, 3]\n")
    (tmp_path / "other.json").write_text(json.dumps({"name": "not a run", "version": 3}))
    r = contract_document(cycles=2)
    r["gc"]["pauses"] = "none"
    (tmp_path / "badpauses.json").write_text(json.dumps(r))
    r = contract_document(cycles=2)
    r["timeline"]["t_ns"] = ["soon", "later"]
    (tmp_path / "badtimeline.json").write_text(json.dumps(r))
    (tmp_path / "cmp.json").write_text(json.dumps({"kind": "compare", "gorun": {}}))
    (tmp_path / "future.json").write_text(json.dumps({**contract_document(cycles=2), "schema_version": 99}))
    (tmp_path / "good.json").write_text(json.dumps(contract_document(cycles=2)))
    (tmp_path / "afile").write_text("x")
    return {
        "missing file": (["plot", str(tmp_path / "nope.json")], "no such file"),
        "a folder": (["plot", str(tmp_path)], "is a folder"),
        "not JSON": (["plot", str(tmp_path / "notjson.json")], "is not JSON"),
        "a JSON list": (["plot", str(tmp_path / "list.json")], "is not a gorun result"),
        "another JSON object": (["plot", str(tmp_path / "other.json")], "is not a gorun result (no 'procs')"),
        "malformed pauses": (["plot", str(tmp_path / "badpauses.json")], "is not a gorun result (no gc.pauses list)"),
        "malformed timeline": (["plot", str(tmp_path / "badtimeline.json")], "is a malformed gorun result"),
        "compare without result": (["plot", str(tmp_path / "cmp.json")], "without gorun.result"),
        "newer schema": (["plot", str(tmp_path / "future.json")], "schema_version 99"),
        "-o a file": (["plot", str(tmp_path / "good.json"), "-o", str(tmp_path / "afile")], "not a folder"),
        "-o under a file": (
            ["plot", str(tmp_path / "good.json"), "-o", str(tmp_path / "afile" / "d")],
            "is not a folder",
        ),
        "run --plot a file": (["run", "alloc", "--procs", "1", "--plot", str(tmp_path / "afile")], "bad --plot"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "missing file",
        "a folder",
        "not JSON",
        "a JSON list",
        "another JSON object",
        "malformed pauses",
        "malformed timeline",
        "compare without result",
        "newer schema",
        "-o a file",
        "-o under a file",
        "run --plot a file",
    ],
)
def test_bad_input_one_line_exit_2(tmp_path, case):
    args, why = _bad_input_cases(tmp_path)[case]
    before = sorted(os.listdir(tmp_path))
    p = run_gorun(*args)
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    assert p.stdout == ""
    lines = p.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("gorun: error: ") and why in lines[0], p.stderr
    assert sorted(os.listdir(tmp_path)) == before  # nothing written, no run started


def test_split_document_keeps_the_input_intact():
    r = contract_document(cycles=2)
    keep = copy.deepcopy(r)
    got, go = plot.split_document(compare_document(r))
    assert got == keep and go is not None and "/sched/pauses/total/gc:seconds" in go
