"""Scenario `container`: GOMEMLIMIT in a container (seed-claims.md #2), at a small scale.

The `spike` workload (gorun/workloads/spike.py: a live set that a load spike grows, with garbage
before and after) in a memory cgroup with a hard limit, at GOGC=100 without a memory limit and
with GOMEMLIMIT under the hard limit. Where no memory cgroup can be made (not root, no memory
controller) only the memory-limit half runs, without a container, and the note says why."""

from __future__ import annotations

import gorun
from gorun import container as ctr
from gorun.workloads.spike import spike

from . import Outcome, Row, Scenario

MiB = 1 << 20
# (container, GOMEMLIMIT, live, grow, churn). GOMEMLIMIT counts the runtime's memory only; the
# container also holds the three interpreters (about 30 MiB each), hence the wider margin than
# the articles' 10-15 %.
SIZES = {True: (256 * MiB, 160 * MiB, 64 * MiB, 120 * MiB, 256 * MiB), False: (640 * MiB, 448 * MiB, 160 * MiB, 300 * MiB, 512 * MiB)}  # fmt: skip
PROCS = 2


def _run(memlimit, container, live, grow, churn) -> dict:
    rt = gorun.Runtime(procs=PROCS, gogc=100, memory_limit=memlimit if memlimit else "off", container=container)
    try:
        r = rt.run(spike, live=live, grow=grow, churn=churn)
    except gorun.RunError as e:  # OOM-killed by the container: the run's figures at that moment
        if e.result is None:
            raise
        r = e.result
    return r.to_dict()


def _figures(d: dict) -> dict:
    c = d["memory"]["container"]
    return {
        "killed": bool(c["oom_killed"]),
        "cpeak": c["peak_bytes"] or 0,
        "peak": d["memory"]["peak_bytes"],
        "heap": d["heap"]["peak_inuse_bytes"],
        "cycles": d["gc"]["cycles"],
        "cpu": 100 * d["gc"]["cpu_fraction"],
    }


def run(small: bool, why: str | None = "probe") -> Outcome:
    if why == "probe":
        why = ctr.probe()
    size, limit, live, grow, churn = SIZES[small]
    box = None if why else size
    dwo = _run(None, box, live, grow, churn)
    dwi = _run(limit, box, live, grow, churn)
    wo, wi = _figures(dwo), _figures(dwi)
    runs = {"without": dwo, "with": dwi}
    common = [
        Row("peak heap in use", wo["heap"], wi["heap"], "bytes"),
        Row("GC cycles", wo["cycles"], wi["cycles"], "cycles"),
        Row("GC CPU", wo["cpu"], wi["cpu"], "%"),
    ]
    setting = f"{live // MiB} MiB live growing to {grow // MiB} MiB, {churn // MiB} MiB of garbage before and after"
    if box:
        rows = [
            Row("OOM-killed by the container (1 = yes)", float(wo["killed"]), float(wi["killed"]), "runs"),
            Row("peak memory in the container", wo["cpeak"], wi["cpeak"], "bytes"),
            *common,
        ]
        held = wo["killed"] and not wi["killed"] and wi["cpeak"] <= size
        verdict = (
            f"in a {size // MiB} MiB container ({setting}) the run at GOGC=100 was "
            f"{'OOM-killed' if wo['killed'] else 'not killed'}; with GOMEMLIMIT={limit // MiB}MiB it "
            f"{'was killed too' if wi['killed'] else 'finished'}, peak {wi['cpeak'] / MiB:.0f} MiB in "
            f"{wi['cycles']} cycles against {wo['cycles']}"
        )
        note = (
            f"The articles' pod is 1 GB with 400 -> 600 MB live; here everything is scaled down to a "
            f"{size // MiB} MiB cgroup. GOMEMLIMIT is {100 * limit // size}% of it rather than 85-90%: "
            f"Go's limit covers the runtime's memory only, and gorun's container also holds three "
            f"Python interpreters (about 30 MiB each). README 'The container story' has the full size."
        )
    else:
        rows = [Row("peak memory (sampled: resident + shared)", wo["peak"], wi["peak"], "bytes"), *common]
        held = wi["heap"] < wo["heap"] and wi["heap"] <= limit
        verdict = (
            f"without a container ({setting}) the heap peaked at {wo['heap'] / MiB:.0f} MiB at GOGC=100 and at "
            f"{wi['heap'] / MiB:.0f} MiB with GOMEMLIMIT={limit // MiB}MiB, in {wi['cycles']} cycles against "
            f"{wo['cycles']}"
        )
        note = (
            f"No memory cgroup here ({why}), so the container half did not run: no hard limit, no OOM "
            f"kill; only the memory-limit half, which shows the heap held under GOMEMLIMIT at the price "
            f"of more cycles. Run as root with a memory controller for the whole story."
        )
    return Outcome(rows=rows, held=bool(held), verdict=verdict, note=note, runs=runs)


SCENARIO = Scenario(
    name="container",
    title="GOMEMLIMIT in a container",
    claim=(
        "a pod with a 1 GB hard limit and 400 MB live: at GOGC=100 a spike to 600 MB live sets the "
        "target to 1.2 GB and the process is OOM-killed at 1 GB before the GC runs; with "
        "GOMEMLIMIT=900MiB the runtime collects as often as needed to stay under it; always set "
        "GOMEMLIMIT in containers, 10-15 % under the hard limit"
    ),
    source="seed-claims.md #2",
    run=run,
)
