"""`gorun plot RESULT.json [-o DIR]` and `gorun run --plot DIR`: PNG plots of a run's JSON
document (docs/design.md "Plots").

The document is the one `gorun run --json` writes, or the one `gorun compare --json` writes, whose
`gorun.result` is plotted with Go's pause distributions (`go.metrics` histograms) overlaid. A
document written by an older gorun lacks some keys: every plot draws what there is, and
`write_plots` returns one note per missing part instead of failing.

matplotlib is imported only when plotting, and drawn on its Agg canvas directly (no pyplot, no
display, no global state). The MMU (`mmu`) is a pure function of the unavailable intervals.
"""

from __future__ import annotations

import json
import math
import os

import numpy as np

from .units import MAX_MEMORY_LIMIT, fmt_bytes, fmt_ns

PLOT_FILES = ("heap.png", "pauses.png", "mmu.png", "locks.png", "gccpu.png")
FIG_INCHES = (12.0, 7.0)
FIG_DPI = 100
PNG_SIZE_PX = (round(FIG_INCHES[0] * FIG_DPI), round(FIG_INCHES[1] * FIG_DPI))  # (width, height) of every PNG
MMU_MIN_WINDOW_NS = 100_000  # 100 us
MMU_MAX_WINDOW_NS = 1_000_000_000  # 1 s
MMU_WINDOWS_PER_DECADE = 10
LOCK_NAMES = ("mheap", "mcentral", "workbuf", "typetab")  # the locks of the JSON's `locks`, in plot order
SCHEMA_VERSION = 1  # the newest document layout read here
PAUSE_KINDS = ("sweep termination", "mark termination")
GO_PAUSE_METRICS = {"total": "/sched/pauses/total/gc:seconds", "stop": "/sched/pauses/stopping/gc:seconds"}
_MIB = 1 << 20
_KIND_COLOR = {"sweep termination": "tab:orange", "mark termination": "tab:purple"}


class PlotInputError(ValueError):
    """Bad input to `gorun plot` / `--plot`: a one-line message (the CLI prints `gorun: error: `
    and it, and exits 2)."""


# ---------------------------------------------------------------- the document


def load_document(path: str) -> tuple[dict, dict | None]:
    """Read a run or compare document: (the run result, Go's runtime/metrics or None)."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise PlotInputError(f"{path!r}: no such file") from None
    except IsADirectoryError:
        raise PlotInputError(f"{path!r} is a folder, not a JSON file") from None
    except UnicodeDecodeError:
        raise PlotInputError(f"{path!r} is not JSON (not UTF-8 text)") from None
    except OSError as e:
        raise PlotInputError(f"cannot read {path!r}: {e.strerror}") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise PlotInputError(f"{path!r} is not JSON ({e.msg} at line {e.lineno} column {e.colno})") from None
    return split_document(doc, path)


def split_document(doc, name: str = "the document") -> tuple[dict, dict | None]:
    """(run result, Go's metrics or None) of a run document or a compare document
    (`kind` "compare": `gorun.result` and `go.metrics`); PlotInputError if it is neither."""
    go_metrics = None
    if isinstance(doc, dict) and doc.get("kind") == "compare":
        g, go = doc.get("gorun"), doc.get("go")
        result = g.get("result") if isinstance(g, dict) else None
        if result is None:
            raise PlotInputError(f"{name!r} is a compare document without gorun.result")
        go_metrics = go.get("metrics") if isinstance(go, dict) else None
        if not isinstance(go_metrics, dict):
            go_metrics = None
    else:
        result = doc
    _check_result(result, name)
    return result, go_metrics


def _check_result(r, name: str) -> None:
    """The keys every plot relies on, with their types; the rest is optional."""

    def bad(why: str):
        raise PlotInputError(f"{name!r} is not a gorun result ({why})")

    if not isinstance(r, dict):
        bad(f"a JSON {type(r).__name__}, not an object")
    sv = r.get("schema_version", 1)
    if not isinstance(sv, int) or isinstance(sv, bool):
        bad(f"schema_version {sv!r}")
    if sv > SCHEMA_VERSION:
        raise PlotInputError(f"{name!r} has schema_version {sv}; this gorun reads up to {SCHEMA_VERSION}")
    for key, types in (("procs", int), ("wall_s", (int, float)), ("gc", dict)):
        if key not in r:
            bad(f"no {key!r}")
        if not isinstance(r[key], types) or isinstance(r[key], bool):
            bad(f"{key!r} is {type(r[key]).__name__}")
    if r["procs"] < 1:
        bad(f"procs {r['procs']}")
    pauses = r["gc"].get("pauses")
    if not isinstance(pauses, list):
        bad("no gc.pauses list")
    for p in pauses:
        if not isinstance(p, dict) or not all(isinstance(p.get(k), int) for k in ("stop_ns", "total_ns")):
            bad("a gc.pauses entry without integer stop_ns and total_ns")
    for key in ("cycles_detail", "assists"):
        v = r["gc"].get(key)
        if v is not None and not (isinstance(v, list) and all(isinstance(x, dict) for x in v)):
            bad(f"gc.{key} is not a list of objects")
    for key in ("locks", "timeline"):
        if r.get(key) is not None and not isinstance(r[key], dict):
            bad(f"{key!r} is not an object")


def check_out_dir(path: str, flag: str) -> None:
    """The plots' folder can be made (or is a folder) and written: else PlotInputError. Checked
    before anything runs; the folder itself is made when the plots are written."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise PlotInputError(f"bad {flag} {path!r}: not a folder")
    probe = os.path.abspath(path)
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        raise PlotInputError(f"bad {flag} {path!r}: {probe!r} is not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise PlotInputError(f"bad {flag} {path!r}: {probe!r} is not writable")


# ---------------------------------------------------------------- minimum mutator utilization


def _merged(intervals, total_ns: int) -> np.ndarray:
    """One P's intervals clipped to [0, total_ns], sorted, overlapping or touching ones merged,
    empty ones dropped: a (k, 2) int64 array of [start, end) rows."""
    a = np.array(intervals, dtype=np.int64).reshape(-1, 2)
    s, e = np.clip(a[:, 0], 0, total_ns), np.clip(a[:, 1], 0, total_ns)
    keep = e > s
    s, e = s[keep], e[keep]
    if not len(s):
        return np.zeros((0, 2), dtype=np.int64)
    order = np.argsort(s, kind="stable")
    s, e = s[order], e[order]
    reach = np.maximum.accumulate(e)  # the furthest end so far
    new = np.concatenate([[True], s[1:] > reach[:-1]])  # a gap before: a new merged interval
    first = np.flatnonzero(new)
    last = np.concatenate([first[1:] - 1, [len(s) - 1]])
    return np.stack([s[first], reach[last]], axis=1)


def mmu(unavailable: list[list[tuple[int, int]]], total_ns: int, windows_ns: list[int]) -> list[float]:
    """Minimum mutator utilization for each window length, computed exactly.

    `unavailable[p]` lists the [start_ns, end_ns) intervals during which P p's mutator cannot run
    (times from 0, the run's start, to `total_ns`, its end). The utilization u(t) at an instant
    is the fraction of the P's whose mutator can run then (with one P: 1 or 0). For a window
    length w (0 < w <= total_ns), MMU(w) is the minimum over every window position t in
    [0, total_ns - w] of (1/w) times the integral of u over [t, t + w], as go tool trace defines
    it. The integral is piecewise linear in t with corners only where t or t + w is an interval
    end, so the minimum is at one of those positions or at an end of [0, total_ns - w]: all of
    them are evaluated, nothing is sampled. Pass one P's list alone for that P's MMU.
    """
    nprocs = len(unavailable)
    if nprocs < 1:
        raise ValueError("mmu: no P")
    total_ns = int(total_ns)
    if total_ns <= 0:
        raise ValueError(f"mmu: run length {total_ns} ns")
    merged = np.concatenate([_merged(ivs, total_ns) for ivs in unavailable])
    starts, ends = merged[:, 0], merged[:, 1]
    xs = np.unique(np.concatenate([[0, total_ns], starts, ends]).astype(np.int64))
    delta = np.zeros(len(xs), dtype=np.int64)
    np.add.at(delta, np.searchsorted(xs, starts), 1)
    np.add.at(delta, np.searchsorted(xs, ends), -1)
    down = np.cumsum(delta)[:-1]  # P's unavailable on [xs[i], xs[i+1])
    # mutator time (P-ns) from 0 to xs[i]: exact in int64
    avail = np.concatenate([[0], np.cumsum((nprocs - down) * np.diff(xs))]).astype(np.float64)
    xf = xs.astype(np.float64)
    out = []
    for w in windows_ns:
        w = int(w)
        if not 0 < w <= total_ns:
            raise ValueError(f"mmu: window {w} ns outside (0, {total_ns}]")
        # windows starting at an interval end (0 among them), and windows ending at one
        # (total_ns - w among them): A is known exactly at one end, interpolated at the other
        first = xs <= total_ns - w
        last = xs >= w
        worst = min(
            float((np.interp(xf[first] + w, xf, avail) - avail[first]).min()),
            float((avail[last] - np.interp(xf[last] - w, xf, avail)).min()),
        )
        out.append(min(1.0, max(0.0, worst / (nprocs * w))))
    return out


def mmu_windows(total_ns: int) -> list[int]:
    """Window lengths: MMU_WINDOWS_PER_DECADE per decade from MMU_MIN_WINDOW_NS to
    MMU_MAX_WINDOW_NS, those longer than the run left out and the run's length added as the last
    one when the run is shorter than MMU_MAX_WINDOW_NS."""
    decades = math.log10(MMU_MAX_WINDOW_NS / MMU_MIN_WINDOW_NS)
    n = round(decades * MMU_WINDOWS_PER_DECADE) + 1
    ws = sorted({round(w) for w in np.logspace(math.log10(MMU_MIN_WINDOW_NS), math.log10(MMU_MAX_WINDOW_NS), n)})
    out = [w for w in ws if w <= total_ns]
    if total_ns < MMU_MAX_WINDOW_NS and (not out or out[-1] < total_ns):
        out.append(int(total_ns))
    return out


def unavailable_intervals(result: dict) -> list[list[tuple[int, int]]] | None:
    """Per P, when its mutator could not run: each stop-the-world from the P's acknowledgement
    (start_ns + ack_ns[p]; start_ns when ack_ns[p] is 0, the P was taken without acking) to the
    restart (end_ns), and each of its assists when the document has `gc.assists` (runs with
    --trace). None if the pauses have no start_ns/end_ns (a document of an older gorun)."""
    procs = result["procs"]
    pauses = result["gc"]["pauses"]
    if any(not isinstance(p.get("start_ns"), int) or not isinstance(p.get("end_ns"), int) for p in pauses):
        return None
    out: list[list[tuple[int, int]]] = [[] for _ in range(procs)]
    for p in pauses:
        acks = p.get("ack_ns") or []
        for i in range(procs):
            ack = acks[i] if i < len(acks) else 0
            out[i].append((p["start_ns"] + ack, p["end_ns"]))
    for a in result["gc"].get("assists") or []:
        if 0 <= a.get("p", -1) < procs:
            out[a["p"]].append((a["start_ns"], a["start_ns"] + a["dur_ns"]))
    return out


def run_length_ns(result: dict, unavailable: list[list[tuple[int, int]]] | None = None) -> int:
    """The run's length for the MMU: the launcher's wall time (`wall_s`), extended to the last
    recorded interval or timeline sample if one ends later."""
    n = round(result["wall_s"] * 1e9)
    for ivs in unavailable or []:
        n = max([n, *(e for _, e in ivs)])
    t = (result.get("timeline") or {}).get("t_ns") or []
    return max([n, *t[-1:]])


# ---------------------------------------------------------------- helpers


def histogram_cdf(hist: dict) -> tuple[np.ndarray, np.ndarray] | None:
    """The CDF of a runtime/metrics Float64Histogram (`buckets` boundaries with "-Inf"/"+Inf"
    ends, `counts`): (x, F(x)) at the finite bucket boundaries, starting at the lower boundary of
    the first non-empty bucket with F = the fraction below it. None if it holds no value or is
    malformed."""
    try:
        bounds = [float(b) for b in hist["buckets"]]
        counts = [int(c) for c in hist["counts"]]
    except (KeyError, TypeError, ValueError):
        return None
    total = sum(counts)
    if not total or len(bounds) != len(counts) + 1:
        return None
    xs, ys, acc = [], [], 0
    for i, c in enumerate(counts):
        lo, hi = bounds[i], bounds[i + 1]
        if c and not xs and math.isfinite(lo) and lo > 0:
            xs.append(lo)
            ys.append(acc / total)
        acc += c
        if (xs or c) and math.isfinite(hi) and hi > 0:
            xs.append(hi)
            ys.append(acc / total)
        if acc == total:
            break
    if not xs:
        return None
    return np.array(xs), np.array(ys)


def _bytes_series(values, n: int, zero_is_none: bool = False) -> np.ndarray | None:
    """A byte series as floats in MiB; null or 'no value' (>= MaxInt64, or 0 for a goal or
    trigger: gcctl holds 0 while there is none) -> NaN, a gap in the line."""
    if not isinstance(values, list) or len(values) != n:
        return None
    ok = lambda x: isinstance(x, (int, float)) and x < MAX_MEMORY_LIMIT and not (zero_is_none and x == 0)
    return np.array([x if ok(x) else np.nan for x in values], float) / _MIB


def _timeline(result: dict) -> dict | None:
    tl = result.get("timeline")
    if not isinstance(tl, dict) or not isinstance(tl.get("t_ns"), list) or len(tl["t_ns"]) < 2:
        return None
    return tl


def _title(result: dict, what: str) -> str:
    params = result.get("params") or {}
    ps = " ".join(f"{k}={v}" for k, v in params.items())
    return f"{what}: gorun {result.get('workload', '?')}{' ' + ps if ps else ''}, {result['procs']} P"


def _figure(nrows: int = 1, ncols: int = 1):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=FIG_INCHES, dpi=FIG_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots(nrows, ncols, squeeze=False)


def _say(ax, text: str) -> None:
    """A note in the middle of an axes (what is missing)."""
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", wrap=True, fontsize=11, color="dimgray")


def _mark_pauses(ax, result: dict) -> bool:
    """Thin vertical lines at each pause's start, colored by kind; False if pauses have no times."""
    pauses = result["gc"]["pauses"]
    if not pauses or any(not isinstance(p.get("start_ns"), int) for p in pauses):
        return False
    for kind in PAUSE_KINDS:
        ts = [p["start_ns"] / 1e9 for p in pauses if p.get("kind") == kind]
        if ts:
            ax.vlines(
                ts,
                0,
                1,
                transform=ax.get_xaxis_transform(),
                colors=_KIND_COLOR[kind],
                alpha=0.35,
                lw=0.8,
                label=f"{kind} pause ({len(ts)})",
            )
    return True


def _dur_label(ns: float) -> str:
    """A duration tick label: 100 ns, 1 us, 2.5 ms, 1 s."""
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("us", 1e3)):
        if ns >= scale:
            return f"{ns / scale:g} {unit}"
    return f"{ns:g} ns" if ns > 0 else "0"


def _ns_ticks(ax) -> None:
    """Log x-axis ticks labelled as durations, the values being ns."""
    from matplotlib.ticker import FuncFormatter

    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: _dur_label(v)))


def _integer_ticks(ax) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


# ---------------------------------------------------------------- the plots


def _plot_heap(result: dict, path: str, notes: list[str]) -> None:
    fig, axs = _figure()
    ax = axs[0][0]
    tl = _timeline(result)
    if tl is not None:
        t = np.array(tl["t_ns"], float) / 1e9
        for key, label, color, style in (
            ("heap_live", "heap live", "tab:blue", "default"),
            ("heap_goal", "heap goal", "tab:green", "steps-post"),
            ("trigger", "GC trigger", "tab:olive", "steps-post"),
            ("total_memory", "total memory (mapped, not released)", "tab:gray", "default"),
        ):
            v = _bytes_series(tl.get(key), len(t), zero_is_none=key in ("heap_goal", "trigger"))
            if v is None:
                notes.append(f"heap.png: the timeline has no {key}")
                continue
            if np.isnan(v).all():  # e.g. no goal nor trigger with GOGC=off and no limit
                continue
            ax.plot(t, v, label=label, color=color, drawstyle=style, lw=1.4)
        lim = tl.get("memory_limit")
        if isinstance(lim, int) and lim < MAX_MEMORY_LIMIT:
            ax.axhline(lim / _MIB, color="tab:red", ls="--", lw=1.2, label=f"memory limit ({fmt_bytes(lim)})")
        ax.set_xlabel("time since the run's start (s)")
        ax.set_xlim(0, t[-1])
        if not _mark_pauses(ax, result) and result["gc"]["pauses"]:
            notes.append("heap.png: the pauses have no start_ns, not marked")
        sub = f"sampled every {_dur_label(tl['interval_ns'])}" if isinstance(tl.get("interval_ns"), int) else "sampled"
    else:
        notes.append("heap.png: the document has no timeline (older gorun): heap, goal and trigger per GC cycle")
        cyc = result["gc"].get("cycles_detail") or []
        timed = bool(cyc) and all(isinstance(c.get("start_ns"), int) for c in cyc)
        x = np.array([c["start_ns"] / 1e9 if timed else c.get("n", i + 1) for i, c in enumerate(cyc)], float)
        for key, label, color, kw in (
            ("heap_start", "heap live at cycle start", "tab:blue", {"marker": "o", "ls": "-"}),
            ("heap_marked", "heap marked", "tab:cyan", {"marker": ".", "ls": "-"}),
            ("goal", "heap goal", "tab:green", {"drawstyle": "steps-post"}),
            ("trigger", "GC trigger", "tab:olive", {"drawstyle": "steps-post"}),
        ):
            v = _bytes_series([c.get(key) for c in cyc], len(cyc), zero_is_none=key in ("goal", "trigger"))
            if cyc and v is not None and not np.isnan(v).all():
                ax.plot(x, v, label=label, color=color, lw=1.4, ms=3, **kw)
        if not cyc:
            _say(ax, "no timeline and no GC cycle in this document")
        if timed:
            _mark_pauses(ax, result)
        ax.set_xlabel("time since the run's start (s)" if timed else "GC cycle")
        if not timed:
            _integer_ticks(ax)
        sub = "per GC cycle (no timeline in this document)"
    ax.set_ylabel("MiB")
    ax.set_ylim(bottom=0)
    ax.set_title(_title(result, f"Heap over time, {sub}"))
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", fontsize=9)
    fig.savefig(path, dpi=FIG_DPI, facecolor="white")


def _ecdf(values: list[int]) -> tuple[np.ndarray, np.ndarray]:
    v = np.sort(np.maximum(np.array(values, float), 1.0))  # ns, at least 1 ns on the log axis
    return v, np.arange(1, len(v) + 1) / len(v)


def _plot_pauses(result: dict, go_metrics: dict | None, path: str, notes: list[str]) -> None:
    fig, axs = _figure(1, 2)
    pauses = result["gc"]["pauses"]
    for ax, field, go_key, what in (
        (axs[0][0], "total_ns", "total", "Total pause (stop requested to world restarted)"),
        (axs[0][1], "stop_ns", "stop", "Time to stop (stop requested to every P stopped)"),
    ):
        allv = [p[field] for p in pauses]
        if allv:
            x, y = _ecdf(allv)
            ax.step(x, y, where="post", color="black", lw=2, label=f"all gorun pauses (n={len(allv)})")
            for kind in PAUSE_KINDS:
                vals = [p[field] for p in pauses if p.get("kind") == kind]
                if vals:
                    x, y = _ecdf(vals)
                    ax.step(x, y, where="post", color=_KIND_COLOR[kind], lw=1.3, label=f"{kind} (n={len(vals)})")
            s = np.sort(np.array(allv))
            p50, p99 = s[min(len(s) - 1, int(0.5 * len(s)))], s[min(len(s) - 1, int(0.99 * len(s)))]
            what += f"\np50 {fmt_ns(p50)}, p99 {fmt_ns(p99)}, max {fmt_ns(s[-1])}"
        else:
            _say(ax, "no pause recorded")
        if go_metrics is not None:
            cdf = histogram_cdf(go_metrics.get(GO_PAUSE_METRICS[go_key]) or {})
            if cdf is None:
                notes.append(f"pauses.png: the comparison has no {GO_PAUSE_METRICS[go_key]} values")
            else:
                ax.plot(
                    cdf[0] * 1e9,
                    cdf[1],
                    color="tab:cyan",
                    ls="--",
                    lw=2,
                    marker=".",
                    ms=4,
                    label=f"Go, all pauses ({GO_PAUSE_METRICS[go_key]})",
                )
        ax.set_xscale("log")
        _ns_ticks(ax)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("duration (log scale)")
        ax.set_ylabel("fraction of pauses <= duration")
        ax.set_title(what, fontsize=11)
        ax.grid(alpha=0.3, which="both")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="lower right", fontsize=9)
    if not pauses:
        notes.append("pauses.png: no pause in this document")
    fig.suptitle(_title(result, "Stop-the-world pauses, CDF"))
    fig.savefig(path, dpi=FIG_DPI, facecolor="white")


def _plot_mmu(result: dict, path: str, notes: list[str]) -> None:
    fig, axs = _figure()
    ax = axs[0][0]
    unavail = unavailable_intervals(result)
    assists = result["gc"].get("assists") is not None
    if unavail is None:
        notes.append("mmu.png: the pauses have no start_ns/end_ns (older gorun): no MMU")
        _say(ax, "the pauses in this document have no start and end times (older gorun):\nno MMU")
    else:
        total = run_length_ns(result, unavail)
        ws = mmu_windows(total)
        x = np.array(ws, float)
        procs = len(unavail)
        # the run's thick line under the P's thin ones: where they agree (short pauses, MMU near
        # 1 everywhere) the P's lines stay visible on top of it
        ax.plot(x, mmu(unavail, total, ws), color="black", lw=3.5, zorder=2, label="the run (mean over P's)")
        for p, ivs in enumerate(unavail):
            label = f"P{p}" if procs <= 8 else (f"P0..P{procs - 1}, one line each" if p == 0 else None)
            ax.plot(x, mmu([ivs], total, ws), lw=1.2, alpha=0.9, zorder=3, label=label)
        if not assists:
            notes.append("mmu.png: no gc.assists in this document (run without --trace): assists not counted")
    ax.set_xscale("log")
    _ns_ticks(ax)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("window (log scale)")
    ax.set_ylabel("minimum mutator utilization (0 to 1)")
    what = "stops from each P's acknowledgement to restart" + (" and assists" if assists else ", assists not counted")
    ax.set_title(_title(result, f"Minimum mutator utilization ({what})"), fontsize=11)
    ax.grid(alpha=0.3, which="both")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", fontsize=9)
    fig.savefig(path, dpi=FIG_DPI, facecolor="white")


def _plot_locks(result: dict, path: str, notes: list[str]) -> None:
    fig, axs = _figure(2, 2)
    locks = result.get("locks") or {}
    for ax, name in zip((a for row in axs for a in row), LOCK_NAMES):
        lk = locks.get(name)
        ax.set_xscale("log")
        _ns_ticks(ax)
        ax.set_xlabel("contended wait (log2 buckets)")
        ax.set_ylabel("contended waits")
        ax.grid(alpha=0.3, axis="y")
        if not isinstance(lk, dict):
            ax.set_title(f"{name} lock", fontsize=11)
            _say(ax, f"no {name} lock in this document")
            notes.append(f"locks.png: no locks.{name} in this document")
            continue
        acq, cont = lk.get("acquisitions", 0), lk.get("contended", 0)
        head = f"{name} lock: {acq:,} acquisitions, {cont:,} contended"
        if acq:
            head += f" ({100 * cont / acq:.1f}%)"
        if cont:
            head += f"\nwait mean {fmt_ns(lk.get('wait_ns_total', 0) / cont)}, max {fmt_ns(lk.get('wait_ns_max', 0))}"
        ax.set_title(head, fontsize=10)
        hist = lk.get("wait_hist")
        if not isinstance(hist, list):
            _say(ax, "no wait histogram in this document (older gorun)")
            notes.append(f"locks.png: locks.{name} has no wait_hist")
            continue
        nz = [i for i, c in enumerate(hist) if c]
        if not nz:
            _say(ax, "no contended wait")
            ax.set_xlim(1e2, 1e7)
            continue
        lo, hi = max(0, nz[0] - 1), nz[-1] + 2
        left = np.array([2.0**i for i in range(lo, hi)])
        ax.bar(
            left,
            [hist[i] if i < len(hist) else 0 for i in range(lo, hi)],
            width=left,
            align="edge",
            color="tab:red",
            edgecolor="darkred",
            label="waits in [2^i, 2^(i+1)) ns",
        )
        ax.set_xlim(left[0], left[-1] * 2)
        ax.legend(loc="upper right", fontsize=8)
    fig.suptitle(_title(result, "Lock wait histograms"))
    fig.savefig(path, dpi=FIG_DPI, facecolor="white")


def _plot_gccpu(result: dict, path: str, notes: list[str]) -> None:
    fig, axs = _figure()
    ax = axs[0][0]
    procs = result["procs"]
    frac = result["gc"].get("cpu_fraction")
    tl = _timeline(result)
    cpu = tl.get("gc_cpu_ns") if tl is not None else None
    timed = tl is not None and isinstance(cpu, list) and len(cpu) == len(tl["t_ns"])
    if timed:
        t = np.array(tl["t_ns"], float)
        c = np.array(cpu, float)
        dt = np.diff(t)
        ok = dt > 0
        rate = np.full(len(dt), np.nan)
        rate[ok] = 100 * np.diff(c)[ok] / (dt[ok] * procs)
        ax.step(t[1:] / 1e9, rate, where="pre", color="tab:red", lw=1.2, label="GC CPU per sample interval")
        pos = t > 0
        ax.plot(t[pos] / 1e9, 100 * c[pos] / (t[pos] * procs), color="black", lw=2, label="GC CPU since the start")
        _mark_pauses(ax, result)
        ax.set_xlim(0, t[-1] / 1e9)
        ax.set_xlabel("time since the run's start (s)")
        ax.set_ylabel("GC CPU (% of P x wall time)")
        ax.set_ylim(bottom=0)
        sub = "percent of the P's CPU time (GC process + assists + pauses x P)"
    else:
        notes.append("gccpu.png: the document has no timeline with gc_cpu_ns (older gorun): GC CPU per cycle")
        cyc = result["gc"].get("cycles_detail") or []
        if cyc:
            n = [c.get("n", i + 1) for i, c in enumerate(cyc)]
            ms = [
                (c["gc_cpu_ns"] if "gc_cpu_ns" in c else c.get("mark_cpu_ns", 0) + c.get("assist_ns", 0)) / 1e6
                for c in cyc
            ]
            ax.bar(n, ms, color="tab:red", label="GC CPU of the cycle (mark threads + assists)")
            ax.set_xlabel("GC cycle")
            ax.set_ylabel("GC CPU (ms)")
            _integer_ticks(ax)
        else:
            _say(ax, "no timeline and no GC cycle in this document")
        sub = "per GC cycle (no timeline in this document)"
    if timed and isinstance(frac, (int, float)):
        ax.axhline(
            100 * frac, color="tab:blue", ls="--", lw=1.2, label=f"whole run: {100 * frac:.1f}% (gc.cpu_fraction)"
        )
    ax.set_title(_title(result, f"GC CPU over time, {sub}"), fontsize=11)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper right", fontsize=9)
    fig.savefig(path, dpi=FIG_DPI, facecolor="white")


def write_plots(result: dict, go_metrics: dict | None, out_dir: str) -> tuple[list[str], list[str]]:
    """Write PLOT_FILES into out_dir (made if missing) from a run result (split_document's
    first value) and Go's metrics (its second, or None). Returns (paths written, notes on what
    the document lacks)."""
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as e:
        raise PlotInputError(f"cannot make the folder {out_dir!r}: {e.strerror}") from None
    notes: list[str] = []
    paths = [os.path.join(out_dir, f) for f in PLOT_FILES]
    heap, pauses, mmu_png, locks, gccpu = paths
    _plot_heap(result, heap, notes)
    _plot_pauses(result, go_metrics, pauses, notes)
    _plot_mmu(result, mmu_png, notes)
    _plot_locks(result, locks, notes)
    _plot_gccpu(result, gccpu, notes)
    return paths, notes
