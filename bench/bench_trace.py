"""The cost of --trace (issue 8): figures measured in one run, printed with ratios; no assertions.

recording cost   binary-trees at 2 P (-p depth=15) without and with event recording, interleaved
                 over several rounds in this one run: allocation rates (each P's objects/s while
                 its workload ran, summed), medians, and their ratio (target: with/without >= 0.98);
                 also objects per CPU second of the run's processes (less sensitive to other load)
event cost       ns per event (the hooks of one refill) on, and the branch off: with the size
                 run's events per second, the share of a CPU that recording takes
trace size       a 10 s 2-P binary-trees run with --trace: the file's size (target < 50 MB),
                 events recorded and lost, as Chrome JSON and as Perfetto protobuf (the default
                 format; the choice, docs/design.md)

  python bench/bench_trace.py [--quick]
"""

from __future__ import annotations

import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
import gorun  # noqa: E402
from gorun import trace as tracemod  # noqa: E402
from gorun.workloads.binary_trees import binary_trees  # noqa: E402


def protobuf_size(events: list) -> int:
    """The size of the same timeline as Perfetto protobuf (gorun.trace.to_protobuf, the default
    --trace format): the JSON-vs-protobuf comparison of docs/design.md."""
    return len(tracemod.to_protobuf(events))


def event_cost(n: int) -> tuple[float, float]:
    """(ns per event with recording on, ns per iteration off): _gorun.trace_hammer, the hooks of
    one refill (two clock reads, one duration event) in a loop, drained as the launcher does."""
    flag = gorun._gorun.constants()["debug_flags"]["trace"]
    with common.standalone_heap("futex", debug_flags=flag):
        on = gorun._gorun.trace_hammer(0, n) / n
    with common.standalone_heap("futex"):
        off = gorun._gorun.trace_hammer(0, n) / n
    return on, off


def one_run(depth: int, trace: str | None, duration: float | None = None) -> dict:
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    r = gorun.Runtime(procs=2, trace=trace, duration=duration).run(binary_trees, depth=depth)
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)  # the workers' and the GC's
    d = r.to_dict()
    out = {
        "rate": sum(p["objects_per_s"] for p in d["alloc"]["per_p"]),  # while the workload ran
        "cpu_rate": d["alloc"]["objects"] / cpu if cpu > 0 else 0.0,  # per CPU second of the run's processes
        "objects": d["alloc"]["objects"],
        "wall_s": d["wall_s"],
        "trace": d.get("trace"),
    }
    if trace and duration:  # the size run: the same timeline both ways, and the time to convert
        events = json.loads(Path(trace).read_text())["traceEvents"]
        t0 = time.perf_counter()
        json.dumps({"traceEvents": events}, separators=(",", ":"))
        t1 = time.perf_counter()
        out["proto_bytes"] = protobuf_size(events)
        out["json_s"], out["proto_s"] = t1 - t0, time.perf_counter() - t1
    return out


def main(argv=None) -> int:
    a = common.parse_args(__doc__.splitlines()[0], argv)
    common.header("bench_trace: the cost and size of --trace", a.quick)
    depth = 13 if a.quick else 15
    rounds = 2 if a.quick else 6
    size_s = 2.0 if a.quick else 10.0
    out: dict = {"depth": depth, "rounds": rounds}
    with tempfile.TemporaryDirectory(prefix="gorun-bench-trace-") as tmp:
        path = os.path.join(tmp, "t.pftrace")  # the default format
        json_path = os.path.join(tmp, "t.json")
        samples: dict[str, list[float]] = {"off": [], "on": []}
        cpu_samples: dict[str, list[float]] = {"off": [], "on": []}
        one_run(12, None)  # warm-up (imports, page cache)
        for i in range(rounds):  # off, on, on, off, ...: each case first as often as second
            order = ("off", "on") if i % 2 == 0 else ("on", "off")
            for case in order:
                res = one_run(depth, path if case == "on" else None)
                samples[case].append(res["rate"])
                cpu_samples[case].append(res["cpu_rate"])
        off, on = common.median(samples["off"]), common.median(samples["on"])
        pairs = common.median(common.ratio(b, a) for a, b in zip(samples["off"], samples["on"]))
        out["recording"] = {
            "off_rate": off,
            "on_rate": on,
            "ratio": common.ratio(on, off),
            "paired_ratio": pairs,
            "cpu_off_rate": common.median(cpu_samples["off"]),
            "cpu_on_rate": common.median(cpu_samples["on"]),
            "cpu_ratio": common.ratio(common.median(cpu_samples["on"]), common.median(cpu_samples["off"])),
            "loadavg": os.getloadavg()[0],
            "samples": {k: [round(x) for x in v] for k, v in samples.items()},
        }
        print(
            f"\nbinary-trees -p depth={depth}, 2 P, {rounds} interleaved rounds (median allocation rate: the P's objects/s while the workload ran, summed)"
        )
        print(
            common.table(
                ["recording", "rate", "samples"],
                [
                    ["off", common.fmt_rate(off), " ".join(f"{x / 1e6:.2f}M" for x in samples["off"])],
                    ["on (--trace)", common.fmt_rate(on), " ".join(f"{x / 1e6:.2f}M" for x in samples["on"])],
                ],
            )
        )
        print(
            f"ratio on/off: {out['recording']['ratio']:.3f} of the medians, {pairs:.3f} median of the rounds' ratios "
            f"(target >= 0.98); load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
        )
        rc = out["recording"]
        print(
            f"per CPU second of the run's processes (robust to other load): off {common.fmt_rate(rc['cpu_off_rate'])}, "
            f"on {common.fmt_rate(rc['cpu_on_rate'])}, ratio {rc['cpu_ratio']:.3f}"
        )
        big = one_run(18, json_path, duration=size_s)
        t = big["trace"]
        out["size"] = {
            "seconds": big["wall_s"],
            "bytes": t["bytes"],
            "events": t["events"],
            "lost": t["lost"],
            "proto_bytes": big["proto_bytes"],
            "json_write_s": big["json_s"],
            "proto_convert_s": big["proto_s"],
        }
        print(
            f"\n{big['wall_s']:.1f} s 2-P binary-trees run (-p depth=18 --duration {size_s:g}) with --trace: "
            f"{t['bytes'] / 1e6:.1f} MB (target < 50 MB), {t['events']:,} events, {t['lost']} lost"
        )
        pb = big["proto_bytes"]
        print(
            f"the same timeline as Perfetto protobuf (the default; .json paths get the JSON): {pb / 1e6:.1f} MB, "
            f"{pb / t['bytes']:.2f}x the JSON's size; converting the events took {big['proto_s']:.2f} s "
            f"(to JSON: {big['json_s']:.2f} s)"
        )
        on_ns, off_ns = event_cost(200_000 if a.quick else 2_000_000)
        per_s = t["events"] / big["wall_s"]
        out["event_cost"] = {"on_ns": on_ns, "off_ns": off_ns, "events_per_s": per_s, "cpu_share": per_s * on_ns / 1e9}
        print(
            f"\none event (two clock reads + the ring write + its drain): {on_ns:.0f} ns; off: {off_ns:.1f} ns "
            f"(the branch); at the size run's {per_s:,.0f} events/s that is {100 * per_s * on_ns / 1e9:.3f} % "
            "of one CPU"
        )
    common.write_json("bench_trace", out, a.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
