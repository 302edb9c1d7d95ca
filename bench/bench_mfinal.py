"""Finalizers, cleanups and weak pointers (native/mfinal.c, gorun/mfinal.py): what each call
costs in one worker process, and what a cycle that finalizes N objects costs.

Per-call cases (interleaved, median ns per operation; every loop allocates, so each figure is
g.new(T) plus the call; `new` alone is the baseline): new + set_finalizer, new + add_cleanup,
new + weak, and weak.value() on a live object. End to end: N objects with a finalizer are
dropped, one g.gc() queues them (the sweep resurrects each), g.safepoint() runs them; the
figures are the g.gc() wall time against the same g.gc() with N objects and no finalizer, and
the time to run the N finalizers (no-op callbacks) per finalizer.

    python3 bench/bench_mfinal.py [--quick] [--wait S]
"""

from __future__ import annotations

import sys
import time

from common import gorun, header, interleaved, parse_args, table, wait_quiet, write_json

T = gorun.struct("BenchFinT", next=gorun.PTR, val=gorun.INT)
RING = 64
MASK = RING - 1


def workload(g, n: int, repeats: int, nfin: int) -> dict:
    new = g.new

    def c_new(n):
        ring = [None] * RING
        for i in range(n):
            ring[i & MASK] = new(T)

    def c_fin(n):
        ring = [None] * RING
        sf = g.set_finalizer
        for i in range(n):
            x = new(T)
            sf(x, _nop)
            sf(x, None)  # removed again at once: the record goes back to the free list
            ring[i & MASK] = x

    def c_cleanup(n):
        ring = [None] * RING
        ac = g.add_cleanup
        for i in range(n):
            x = new(T)
            ac(x, print, i).stop()
            ring[i & MASK] = x

    def c_weak(n):
        ring = [None] * RING
        wk = g.weak
        for i in range(n):
            x = new(T)
            wk(x)
            ring[i & MASK] = x

    keep = new(T)
    w = g.weak(keep)

    def c_value(n):
        v = w.value
        for _ in range(n):
            v()

    cases = {
        "new": c_new,
        "new+set_finalizer+clear": c_fin,
        "new+add_cleanup+stop": c_cleanup,
        "new+weak": c_weak,
        "weak.value": c_value,
    }
    per_call = interleaved(cases, n, repeats)

    def drop_and_collect(with_fin: bool) -> int:
        """Wall time of the cycle that finds nfin dropped objects unreachable, with their
        finalizers run (the sweep queues them and signals this P; g.safepoint() runs whatever
        the pending call has not run yet), plus the next cycle, which frees them."""
        objs = [new(T) for _ in range(nfin)]
        if with_fin:
            for x in objs:
                g.set_finalizer(x, _nop)
        g.gc()  # the objects are alive: nothing to do
        del objs
        x = None
        t0 = time.perf_counter_ns()
        g.gc()
        g.safepoint()
        g.gc()
        return time.perf_counter_ns() - t0

    end = {"plain_ns": [], "fin_ns": []}
    for _ in range(max(repeats // 2, 2)):
        end["plain_ns"].append(drop_and_collect(False))
        end["fin_ns"].append(drop_and_collect(True))
    return {"per_call": per_call, "end": end, "stats": gorun._gorun.specials_stats()}


def _nop(h) -> None:
    pass


def main(argv=None) -> int:
    a = parse_args(__doc__.splitlines()[0], argv)
    header("finalizers, cleanups, weak pointers", a.quick)
    quiet = wait_quiet(timeout=a.wait)
    # n stays under MAX_SPECIALS (65,536): the weak case holds one record per object until a cycle
    n, repeats, nfin = (20_000, 3, 5_000) if a.quick else (50_000, 7, 50_000)
    # GOGC on: the dropped objects' weak records are freed by the cycles the loops trigger
    r = gorun.Runtime(procs=1).run(workload, n=n, repeats=repeats, nfin=nfin)
    v = r.values[0]
    base = v["per_call"]["new"]["ns_per_op"]
    rows = [
        [k, f"{c['ns_per_op']:.0f}", f"{c['ns_per_op'] - base:+.0f}" if k != "weak.value" else "-"]
        for k, c in v["per_call"].items()
    ]
    print(table(["case", "ns/op", "vs new"], rows))
    import statistics

    e = {k: statistics.median(x) for k, x in v["end"].items()}
    print(
        f"\n{nfin} objects dropped, two g.gc() (find them unreachable, free them): "
        f"{e['plain_ns'] / 1e6:.2f} ms without finalizers, {e['fin_ns'] / 1e6:.2f} ms with a no-op finalizer each "
        f"(queued, resurrected, run, freed): {(e['fin_ns'] - e['plain_ns']) / nfin:.0f} ns per finalizer"
    )
    write_json(
        "bench_mfinal", {"n": n, "repeats": repeats, "nfin": nfin, "quiet": quiet, **v, "end_median": e}, a.quick
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
