"""Uncontended lock+unlock per lock kind, and 2 processes hammering one lock, against the floors.

On a heap created in this process (common.standalone_heap, no workers), per kind:
  - C loop: _gorun.lock_hammer(0, n), a C loop of acquire / counter++ / release on mcentral[0]'s
    lock, i.e. the runtime's own lock path including its statistics (two clock reads per pair);
  - from Python: a loop of _gorun.lock_acquire(0); _gorun.lock_release(0) (two calls per pair,
    each releasing and retaking the GIL around the acquire);
  - 2 processes: fork two children that each run lock_hammer(0, n) (and, separately, the Python
    loop) on the same lock after a common start instant; aggregate M ops/s; the shared counter
    is checked to be exact.
Floors (shared/reference/floors.md): C loop futex 19, robust pthread 30 ns; from one Python call
futex 24, robust pthread 48, posix_ipc semaphore 158 ns; 2 processes from Python futex 10.6,
robust 6.6, posix_ipc 1.8 M ops/s. In the same run, as references: a posix_ipc semaphore from
Python, and floor_probe.c (built with the system C compiler if there is one): the bare primitives
and clock_gettime in a C loop, and the bare primitives hammered by 2 processes.

    python3 bench/bench_locks.py [--quick]
"""

from __future__ import annotations

import os
import sys
import time

from common import (
    FLOORS,
    INTERFERENCE_CPUS,
    LOCK_KINDS,
    cpu_ticks,
    header,
    interleaved,
    median,
    now_ns,
    other_load,
    parse_args,
    ratio,
    standalone_heap,
    table,
    wait_quiet,
    write_json,
)
from gorun import _gorun

LOCK = 0  # mcentral[0]: an ordinary runtime lock, never used by anything else here


def c_loop(n: int) -> None:
    _gorun.lock_hammer(LOCK, n)


def py_loop(n: int) -> None:
    acq, rel = _gorun.lock_acquire, _gorun.lock_release
    i = LOCK
    for _ in range(n):
        acq(i)
        rel(i)


def py_two_calls(n: int) -> None:
    """The Python loop's shape with two trivial C calls (METH_NOARGS, no GIL release): its baseline."""
    tc = _gorun.test_counter
    i = LOCK
    for _ in range(n):
        tc()
        tc()
    del i


def two_procs(fn, n: int) -> dict:
    """Fork 2 children that each run fn(n) on the attached heap from one start instant."""
    c0 = _gorun.test_counter()
    st0 = _gorun.lock_stats(LOCK)
    start_at = now_ns() + 100_000_000
    kids = []
    for i in range(2):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.close(r)
                _gorun.set_p(i)  # so the lock records this child's pid as holder
                while now_ns() < start_at:
                    time.sleep(0.0002)
                k0 = cpu_ticks()
                c0 = time.process_time_ns()
                t0 = now_ns()
                fn(n)
                t1 = now_ns()
                c1 = time.process_time_ns()
                k1 = cpu_ticks()
                os.write(w, f"{t0} {t1} {c1 - c0} {k0[0]} {k0[1]} {k1[0]} {k1[1]}".encode())
                code = 0
            finally:
                os._exit(code)
        os.close(w)
        kids.append((pid, r))
    spans = []
    for pid, r in kids:
        data = b""
        while chunk := os.read(r, 256):
            data += chunk
        os.close(r)
        _, status = os.waitpid(pid, 0)
        if status != 0 or not data:
            raise RuntimeError(f"hammer child {pid} failed (status {status:#x})")
        spans.append(tuple(map(int, data.split())))
    wall = max(x[1] for x in spans) - min(x[0] for x in spans)
    a = spans[0]
    other = other_load((a[3], a[4]), (a[5], a[6]), sum(x[2] for x in spans) * (a[1] - a[0]) / max(wall, 1), a[1] - a[0])
    st1 = _gorun.lock_stats(LOCK)
    acq = st1["acquisitions"] - st0["acquisitions"]
    cont = st1["contended"] - st0["contended"]
    return {
        "mops": 2 * n / (wall / 1e9) / 1e6,
        "wall_ns": wall,
        "other_cpus": other,
        "counter_exact": fn is not c_loop or _gorun.test_counter() - c0 == 2 * n,
        "acquisitions": acq,
        "contended_pct": 100 * cont / acq if acq else 0.0,
        "wait_mean_ns": (st1["wait_ns_total"] - st0["wait_ns_total"]) / cont if cont else 0.0,
        "wait_max_ns": st1["wait_ns_max"],
    }


def hammer_pair(fn, n: int, wait: float) -> dict:
    """two_procs, redone (up to twice) if other processes took CPU meanwhile."""
    for attempt in range(3):
        r = two_procs(fn, n)
        r["attempts"] = attempt + 1
        if r["other_cpus"] <= INTERFERENCE_CPUS:
            break
        if attempt < 2:
            wait_quiet(timeout=min(wait, 5.0), quiet_needed=1, interval=0.1, verbose=False)
    return r


def posix_ipc_reference(n: int, repeats: int) -> dict:
    """A named posix_ipc semaphore from Python: the floors' 'sem' (acquire + release per pair)."""
    import posix_ipc

    name = f"/gorun-bench-sem.{os.getpid()}"
    sem = posix_ipc.Semaphore(name, posix_ipc.O_CREX, initial_value=1)
    try:

        def loop(n):
            a, r = sem.acquire, sem.release
            for _ in range(n):
                a()
                r()

        one = interleaved({"posix_ipc": loop}, n, repeats)["posix_ipc"]["ns_per_op"]

        def child_loop(n):
            s = posix_ipc.Semaphore(name)
            a, r = s.acquire, s.release
            for _ in range(n):
                a()
                r()

        start_at = now_ns() + 100_000_000
        kids = []
        for i in range(2):
            rd, wr = os.pipe()
            pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    os.close(rd)
                    while now_ns() < start_at:
                        time.sleep(0.0002)
                    t0 = now_ns()
                    child_loop(n)
                    os.write(wr, f"{t0} {now_ns()}".encode())
                    code = 0
                finally:
                    os._exit(code)
            os.close(wr)
            kids.append((pid, rd))
        spans = []
        for pid, rd in kids:
            data = b""
            while chunk := os.read(rd, 256):
                data += chunk
            os.close(rd)
            os.waitpid(pid, 0)
            spans.append(tuple(map(int, data.split())))
        wall = max(t1 for _, t1 in spans) - min(t0 for t0, _ in spans)
        return {"py_ns": one, "two_proc_mops": 2 * n / (wall / 1e9) / 1e6}
    finally:
        sem.unlink()
        sem.close()


def machine_probe(n: int) -> dict:
    """Build and run floor_probe.c (the bare primitives in a C loop, this run's floors):
    {"clock_gettime": ns, "futex": ns, "pthread": ns, "sem": ns}, or {} without a C compiler."""
    import shutil
    import subprocess
    import tempfile

    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "floor_probe.c")
    cc = next((c for c in (os.environ.get("CC"), "cc", "gcc", "clang") if c and shutil.which(c)), None)
    if cc is None:
        return {}
    with tempfile.TemporaryDirectory(prefix="gorun-bench-") as d:
        exe = os.path.join(d, "floor_probe")
        try:
            subprocess.run([cc, "-O2", "-o", exe, src, "-lpthread"], check=True, capture_output=True, timeout=60)
            out = subprocess.run([exe, str(n)], check=True, capture_output=True, text=True, timeout=120).stdout
        except (subprocess.SubprocessError, OSError) as e:
            print(f"(floor_probe.c not run: {e})")
            return {}
    return {k: float(v) for k, v in (line.split() for line in out.splitlines() if line.strip())}


def main(argv=None) -> dict:
    args = parse_args(__doc__.splitlines()[0], argv)
    if args.quick:
        n_c, n_py, n_2c, n_2py, repeats = 200_000, 50_000, 200_000, 50_000, 3
    else:
        n_c, n_py, n_2c, n_2py, repeats = 2_000_000, 300_000, 2_000_000, 300_000, 7
    header("bench_locks: uncontended lock+unlock per kind, and 2 processes on one lock", args.quick)
    print(
        f"C loop {n_c:,} pairs, Python loop {n_py:,} pairs ({repeats} rounds over the kinds, median); "
        f"2-process hammer {n_2c:,} (C) / {n_2py:,} (Python) pairs per process"
    )
    quiet = wait_quiet(timeout=args.wait)
    probe = machine_probe(n_c)
    # Uncontended: rounds over the kinds (a heap has one lock kind, so each round makes one heap
    # per kind), so a slow phase of the machine hits every kind alike; medians over the rounds.
    samples = {k: {"c": [], "py": [], "base": []} for k in LOCK_KINDS}
    for rnd in range(repeats):
        for kind in LOCK_KINDS:
            with standalone_heap(kind, nprocs=2):
                _gorun.set_p(0)
                if rnd == 0:  # warm-up
                    c_loop(n_c // 10)
                    py_loop(n_py // 10)
                    py_two_calls(n_py // 10)
                samples[kind]["c"].append(_time_per(c_loop, n_c))
                samples[kind]["py"].append(_time_per(py_loop, n_py))
                samples[kind]["base"].append(_time_per(py_two_calls, n_py))
    res = {}
    for kind in LOCK_KINDS:
        with standalone_heap(kind, nprocs=2):
            h2c = hammer_pair(c_loop, n_2c, args.wait)
            h2py = hammer_pair(py_loop, n_2py, args.wait)
        x = samples[kind]
        res[kind] = {
            "c_loop_ns": median(x["c"]),
            "py_ns": median(x["py"]),
            "py_two_calls_ns": median(x["base"]),
            "samples": {k: [round(v, 1) for v in vs] for k, vs in x.items()},
            "two_proc_c": h2c,
            "two_proc_py": h2py,
        }
    ref = posix_ipc_reference(n_py, repeats)

    fl = FLOORS
    names = {"futex": "futex", "pthread": "pthread (robust)", "sem": "sem (sem_t)"}
    rows = []
    for kind in LOCK_KINDS:
        x = res[kind]
        cf, pf = fl["c_loop_ns"][kind], fl["py_call_ns"][kind]
        bare = probe.get(kind)
        rows.append(
            [
                names[kind],
                f"{x['c_loop_ns']:.1f}",
                f"{bare:.1f}" if bare else "-",
                f"{cf}" if cf else "-",
                f"{ratio(x['c_loop_ns'], cf):.1f}x" if cf else "-",
                f"{x['py_ns']:.0f}",
                f"{pf}",
                f"{ratio(x['py_ns'], pf):.1f}x",
            ]
        )
    rows.append(
        [
            "posix_ipc Semaphore (reference)",
            "",
            "",
            "",
            "",
            f"{ref['py_ns']:.0f}",
            "158",
            f"{ratio(ref['py_ns'], 158):.1f}x",
        ]
    )
    print()
    print(
        table(
            [
                "uncontended lock+unlock (ns/pair)",
                "C loop",
                "bare, this run",
                "floor",
                "vs floor",
                "from Python",
                "floor",
                "vs floor",
            ],
            rows,
        )
    )
    base = median(res[k]["py_two_calls_ns"] for k in LOCK_KINDS)
    print(
        "C loop: _gorun.lock_hammer (the runtime lock with its statistics); bare: the same primitive with nothing "
        "else (floor_probe.c, this run).\n'from Python' is two calls here (lock_acquire + lock_release, each "
        "releasing the GIL); the floor is one call doing both.\n"
        f"The same loop with two trivial C calls (_gorun.test_counter) costs {base:.0f} ns: the test hooks add "
        + ", ".join(f"{k} {res[k]['py_ns'] - res[k]['py_two_calls_ns']:.0f}" for k in LOCK_KINDS)
        + " ns over it (lock path + GIL release/retake)."
    )
    if probe.get("clock_gettime"):
        print(
            f"clock_gettime(CLOCK_MONOTONIC) costs {probe['clock_gettime']:.1f} ns in C here; the runtime lock "
            f"reads it only when it has to wait, and times every hold with the TSC (cputicks, two reads "
            f"per pair), so its statistics cost about two TSC reads over the bare primitive."
        )

    rows = []
    for kind in LOCK_KINDS:
        a, b = res[kind]["two_proc_c"], res[kind]["two_proc_py"]
        f = fl["two_proc_mops"][kind]
        bare = probe.get(f"two_{kind}")
        rows.append(
            [
                names[kind],
                f"{a['mops']:.2f}",
                f"{bare:.1f}" if bare else "-",
                f"{a['contended_pct']:.0f}%",
                f"{a['wait_mean_ns']:.0f}",
                "yes" if a["counter_exact"] else "NO",
                f"{b['mops']:.2f}",
                f"{b['contended_pct']:.0f}%",
                f"{f}",
                f"{ratio(b['mops'], f):.2f}x",
                f"{a['other_cpus']:.2f} / {b['other_cpus']:.2f}",
            ]
        )
    rows.append(
        [
            "posix_ipc Semaphore (reference)",
            "",
            "",
            "",
            "",
            "",
            f"{ref['two_proc_mops']:.2f}",
            "",
            "1.8",
            f"{ratio(ref['two_proc_mops'], 1.8):.2f}x",
            "",
        ]
    )
    print()
    print(
        table(
            [
                "2 processes, one lock",
                "C loop M ops/s",
                "bare, this run",
                "contended",
                "wait mean ns",
                "count exact",
                "Python M ops/s",
                "contended",
                "floor (Python)",
                "Python vs floor",
                "other load C / Py",
            ],
            rows,
        )
    )
    print(
        "bare: the primitive alone hammered by 2 processes in C (floor_probe.c; futex = Drepper's mutex, no "
        "spinning).\n"
        "contended: acquisitions that found the lock held (most of the time one process holds the lock "
        "through many acquire/release pairs while the other sleeps: the futex and sem kinds hand over rarely, "
        "with long waits).\nother load: CPUs used by other processes during the run (redone up to twice "
        f"above {INTERFERENCE_CPUS})"
    )
    data = {
        "n": {"c": n_c, "py": n_py, "two_c": n_2c, "two_py": n_2py},
        "repeats": repeats,
        "kinds": res,
        "posix_ipc": ref,
        "probe": probe,
        "floors": {k: fl[k] for k in ("c_loop_ns", "py_call_ns", "two_proc_mops")},
        "machine": quiet,
    }
    write_json("bench_locks", data, args.quick)
    return data


def _time_per(fn, n: int) -> float:
    t0 = now_ns()
    fn(n)
    return (now_ns() - t0) / n


if __name__ == "__main__":
    main(sys.argv[1:])
