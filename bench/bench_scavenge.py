"""The scavenger's cost: returning free pages to the OS (hole punching in the arena file) and
reserving them again when they are handed out, on a standalone heap in this process.

    python3 bench/bench_scavenge.py [--quick]

Figures per call of ``_gorun.scavenge(n)`` (lock, find the highest free run, unlock, punch, lock,
give the run back released) for n = 64 KiB (the smallest run) and 4 MiB (one chunk, one punch),
and per allocation of the same sizes through the page allocator (``pages_alloc``), once over
pages that were never released and once over released pages (one fallocate each), so the
re-reservation's share shows. Not part of run_all.py.
"""

from __future__ import annotations

from common import header, parse_args, standalone_heap, table, write_json

import time

from gorun import _gorun

PAGE = 8192
SIZES = {"64 KiB": 8, "4 MiB": 512}


def arena_path(h) -> str:
    return "/dev/shm/" + h.arena_name.lstrip("/")


def run(quick: bool) -> dict:
    total_pages = (4096 if quick else 32768) - 1  # 32 MiB / 256 MiB: the whole grown heap but page 0
    res = {}
    with standalone_heap("futex", arena_bytes=(total_pages + 1024) * PAGE) as h:
        p = _gorun.pages_alloc(total_pages)
        with open(arena_path(h), "r+b") as f:  # dirty every page, as a heap would
            f.seek(p * PAGE)
            f.write(b"\xab" * (total_pages * PAGE))
        for name, n in SIZES.items():
            k = total_pages // n // 2
            # baseline: allocate runs of n pages that were never released
            _gorun.pages_free(p, total_pages)
            t0 = time.perf_counter_ns()
            runs = [_gorun.pages_alloc(n) for _ in range(k)]
            alloc_ns = (time.perf_counter_ns() - t0) / k
            for r in runs:
                _gorun.pages_free(r, n)
            # scavenge k runs of n pages, highest first
            t0 = time.perf_counter_ns()
            got = [_gorun.scavenge(n * PAGE) for _ in range(k)]
            scav_ns = (time.perf_counter_ns() - t0) / k
            assert all(g == n * PAGE for g in got), got[:4]
            # hand them out again: each run is reserved again (fallocate) before use
            before = _gorun.memstats()["scav_reused_bytes"]
            lo = _gorun.pages_alloc(total_pages - k * n)  # the never-released low part first
            t0 = time.perf_counter_ns()
            runs = [_gorun.pages_alloc(n) for _ in range(k)]
            reuse_ns = (time.perf_counter_ns() - t0) / k
            assert _gorun.memstats()["scav_reused_bytes"] - before == k * n * PAGE
            for r in runs:
                _gorun.pages_free(r, n)
            _gorun.pages_free(lo, total_pages - k * n)
            _gorun.pages_check()
            p = _gorun.pages_alloc(total_pages)
            res[name] = {"runs": k, "scavenge_ns": scav_ns, "alloc_ns": alloc_ns, "alloc_released_ns": reuse_ns}
    return res


def main() -> None:
    a = parse_args(__doc__)
    header("scavenger: release and re-reserve", a.quick)
    res = run(a.quick)
    rows = [
        [
            name,
            r["runs"],
            f"{r['scavenge_ns'] / 1e3:.1f} us",
            f"{r['scavenge_ns'] / (SIZES[name] * PAGE) * 2**30 / 1e6:.0f} ms/GiB",
            f"{r['alloc_ns'] / 1e3:.1f} us",
            f"{r['alloc_released_ns'] / 1e3:.1f} us",
        ]
        for name, r in res.items()
    ]
    print(table(["run", "calls", "scavenge", "scavenge rate", "alloc (never released)", "alloc (released)"], rows))
    write_json("bench_scavenge", {"sizes": res}, a.quick)


if __name__ == "__main__":
    main()
