"""sync.Pool Get/Put pairs against g.new of the same object, in one run.

One worker (procs=1, GOGC=100) times, interleaved and repeated (median ns per operation):
  new_T        x = g.new(T)                      a 48-byte struct, dropped at once (garbage)
  pool_T       x = P.get(); P.put(x)             the private-slot path: no lock
  pool_T_ring  two Gets, two Puts per iteration  the second Put and Get go through the shared
                                                 ring under the pool's lock (per pair)
  new_buf      b = g.new_bytes(4096)             a 4 KiB buffer, dropped
  pool_buf     b = B.get(); B.put(b)             the same buffer from a pool
A loop that does nothing but the assignment is the baseline ("net" subtracts it). The GC runs
as usual during the g.new cases (they make garbage); its cycles are reported.

    python3 bench/bench_pool.py [--quick]
"""

from __future__ import annotations

import sys

from common import gorun, header, interleaved, parse_args, ratio, table, wait_quiet, write_json

T = gorun.struct("BenchPoolT", a=gorun.PTR, b=gorun.PTR, x=gorun.INT, y=gorun.INT, z=gorun.INT)
BUF = 4096
PT = gorun.Pool("bench-pool-T", new=lambda g: g.new(T))
PB = gorun.Pool("bench-pool-buf", new=lambda g: g.new_bytes(BUF))


def workload(g, n: int, repeats: int) -> dict:
    new, new_bytes = g.new, g.new_bytes
    PT.put(PT.get())  # the first use binds get/put to the C calls
    PB.put(PB.get())
    get_t, put_t, get_b, put_b = PT.get, PT.put, PB.get, PB.put

    def loop(n):
        x = None
        for i in range(n):
            x = None
        return x

    def new_T(n):
        for i in range(n):
            x = new(T)
        return x

    def pool_T(n):
        for i in range(n):
            x = get_t()
            put_t(x)

    def pool_T_ring(n):  # per iteration two pairs: private + shared ring; timed per pair below
        for i in range(n // 2):
            x = get_t()
            y = get_t()
            put_t(x)
            put_t(y)

    def new_buf(n):
        for i in range(n):
            x = new_bytes(BUF)
        return x

    def pool_buf(n):
        for i in range(n):
            x = get_b()
            put_b(x)

    out = interleaved(
        {
            "loop": loop,
            "new_T": new_T,
            "pool_T": pool_T,
            "pool_T_ring": pool_T_ring,
            "new_buf": new_buf,
            "pool_buf": pool_buf,
        },
        n,
        repeats,
    )
    return out


def main(argv=None) -> dict:
    args = parse_args(__doc__.splitlines()[0], argv)
    n, repeats = (20_000, 3) if args.quick else (200_000, 7)
    header("bench_pool: sync.Pool Get/Put pairs vs g.new, one worker (procs=1)", args.quick)
    print(f"{n:,} operations per loop, {repeats} interleaved repeats, median")
    quiet = wait_quiet(timeout=args.wait)
    res = gorun.Runtime(procs=1).run(workload, n=n, repeats=repeats)
    if res.error:
        raise SystemExit(f"bench_pool: the run failed: {res.error}")
    w = res.values[0]
    d = res.to_dict()
    base = w["loop"]["ns_per_op"]
    rows, data = [], {"n": n, "repeats": repeats, "cases": w, "loop_ns": base}
    for label, a, b in (
        ("struct T (48 B): Get+Put vs g.new(T)", "pool_T", "new_T"),
        ("struct T: two Get+Put (shared ring, lock) vs g.new(T)", "pool_T_ring", "new_T"),
        ("4 KiB buffer: Get+Put vs g.new_bytes(4096)", "pool_buf", "new_buf"),
    ):
        x, y = w[a]["ns_per_op"], w[b]["ns_per_op"]
        rows.append(
            [
                label,
                f"{x:.0f}",
                f"{y:.0f}",
                f"{1e9 / x / 1e6:.2f} M/s",
                f"{1e9 / y / 1e6:.2f} M/s",
                f"{ratio(y, x):.2f}",
            ]
        )
        data[a] = {"ns_per_pair": x, "pairs_per_s": 1e9 / x, "vs": b, "new_ns": y, "news_per_s": 1e9 / y}
    print()
    print(table(["case (ns/op)", "pool pair", "g.new", "pairs/s", "news/s", "speed-up"], rows))
    p = d["pools"]
    print(
        f"loop overhead {base:.0f} ns; GC cycles during the run {d['gc']['cycles']} "
        f"(GC CPU {100 * d['gc']['cpu_fraction']:.1f}%, all from the g.new cases); "
        f"pool hits: T {p['bench-pool-T']['hits']:,} of {p['bench-pool-T']['gets']:,} gets "
        f"({p['bench-pool-T']['hits_shared']:,} from the shared ring), "
        f"buf {p['bench-pool-buf']['hits']:,} of {p['bench-pool-buf']['gets']:,}"
    )
    data.update(
        {
            "gc_cycles": d["gc"]["cycles"],
            "gc_cpu_fraction": d["gc"]["cpu_fraction"],
            "pools": {k: {kk: v[kk] for kk in ("gets", "hits", "hits_shared", "misses")} for k, v in p.items()},
            "machine": quiet,
        }
    )
    write_json("bench_pool", data, args.quick)
    return data


if __name__ == "__main__":
    main(sys.argv[1:])
