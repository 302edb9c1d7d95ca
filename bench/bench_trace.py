"""The cost of --trace (issue 8): figures measured in one run, printed with ratios; no assertions.

recording cost   binary-trees at 2 P (-p depth=15) without and with event recording, interleaved
                 over several rounds in this one run: allocation rates (each P's objects/s while
                 its workload ran, summed), medians, and their ratio (target: with/without >= 0.98)
trace size       a 10 s 2-P binary-trees run with --trace: the file's size (target < 50 MB),
                 events recorded and lost, as Chrome JSON and as Perfetto protobuf (the default
                 format; the choice, docs/design.md)

  python bench/bench_trace.py [--quick]
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
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


def one_run(depth: int, trace: str | None, duration: float | None = None) -> dict:
    r = gorun.Runtime(procs=2, trace=trace, duration=duration).run(binary_trees, depth=depth)
    d = r.to_dict()
    return {
        "rate": sum(p["objects_per_s"] for p in d["alloc"]["per_p"]),  # while the workload ran
        "objects": d["alloc"]["objects"],
        "wall_s": d["wall_s"],
        "trace": d.get("trace"),
        "proto_bytes": protobuf_size(json.loads(Path(trace).read_text())["traceEvents"])
        if trace and duration
        else None,
    }


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
        one_run(12, None)  # warm-up (imports, page cache)
        for i in range(rounds):  # off, on, on, off, ...: each case first as often as second
            order = ("off", "on") if i % 2 == 0 else ("on", "off")
            for case in order:
                samples[case].append(one_run(depth, path if case == "on" else None)["rate"])
        off, on = common.median(samples["off"]), common.median(samples["on"])
        out["recording"] = {
            "off_rate": off,
            "on_rate": on,
            "ratio": common.ratio(on, off),
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
        print(f"ratio on/off: {out['recording']['ratio']:.3f} (target >= 0.98)")
        big = one_run(18, json_path, duration=size_s)
        t = big["trace"]
        out["size"] = {
            "seconds": big["wall_s"],
            "bytes": t["bytes"],
            "events": t["events"],
            "lost": t["lost"],
            "proto_bytes": big["proto_bytes"],
        }
        print(
            f"\n{big['wall_s']:.1f} s 2-P binary-trees run (-p depth=18 --duration {size_s:g}) with --trace: "
            f"{t['bytes'] / 1e6:.1f} MB (target < 50 MB), {t['events']:,} events, {t['lost']} lost"
        )
        pb = big["proto_bytes"]
        print(
            f"the same timeline as Perfetto protobuf (the default; .json paths get the JSON): {pb / 1e6:.1f} MB, "
            f"{pb / t['bytes']:.2f}x the JSON's size"
        )
    common.write_json("bench_trace", out, a.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
