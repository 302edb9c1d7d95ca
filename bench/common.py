"""Shared helpers of the gorun benchmarks (bench/*.py).

Every benchmark prints figures and ratios measured in ONE invocation (the machine is a noisy
shared VM: compare numbers taken side by side, never across runs) and never asserts timing.
Each accepts ``--quick`` for a short smoke run and writes its results to bench/out/<name>.json,
which bench/run_all.py turns into the summary table.

    from common import parse_args, interleaved, table, write_json, standalone_heap
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import statistics
import subprocess
import sys
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH_DIR)
OUT_DIR = os.path.join(BENCH_DIR, "out")

# Prefer the in-tree build (python3 setup.py build_ext --inplace); fall back to an installed gorun.
if glob.glob(os.path.join(ROOT, "gorun", "_gorun*.so")) and ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import gorun  # noqa: E402
from gorun.heap import LOCK_KINDS, SharedHeap  # noqa: E402, F401 (LOCK_KINDS: for the bench scripts)

now_ns = time.perf_counter_ns  # CLOCK_MONOTONIC on Linux: comparable across processes

# Machine floors, shared/reference/floors.md (2 vCPU VM, CPython 3.11).
FLOORS = {
    "c_loop_ns": {"futex": 19, "pthread": 30, "sem": None},  # robust pthread: 30
    "py_call_ns": {"futex": 24, "pthread": 48, "sem": 158},  # sem: posix_ipc semaphore
    "two_proc_mops": {"futex": 10.6, "pthread": 6.6, "sem": 1.8},  # pthread: robust; sem: posix_ipc
    "py_c_call_ns": 12,  # Python -> C no-op call, METH_FASTCALL/METH_O
    "handle_create_free_ns": 30,  # create + free a small C extension object
    "bump_alloc_ns": 32,  # bump allocation in shared memory returning an int
    "first_touch_us": 2.4,  # first touch of a 4 KiB shared page
}


# ---- command line ----


def parse_args(description: str, argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="short smoke run (seconds, not minutes)")
    p.add_argument(
        "--wait",
        type=float,
        default=None,
        metavar="S",
        help="wait up to S seconds for other processes to leave the CPUs idle first "
        "(0: don't; default 30, 3 with --quick)",
    )
    a = p.parse_args(argv)
    if a.wait is None:
        a.wait = 3.0 if a.quick else 30.0
    return a


# ---- timing ----


def median(xs) -> float:
    xs = list(xs)
    return float(statistics.median(xs)) if xs else float("nan")


def time_ns(fn, *args) -> int:
    """Wall time of one call of fn(*args), in ns (perf_counter_ns)."""
    t0 = now_ns()
    fn(*args)
    return now_ns() - t0


def interleaved(cases: dict, n: int, repeats: int, warmup: bool = True) -> dict:
    """Time each case ``fn(n)`` (a loop of n operations) `repeats` times, interleaving the cases
    (A B C A B C ...) so slow phases of a noisy machine hit every case alike.
    Returns {name: {"ns_per_op": median, "samples": [...]}}."""
    if warmup:
        for fn in cases.values():
            fn(max(n // 20, 1))
    samples: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(repeats):
        for name, fn in cases.items():
            samples[name].append(time_ns(fn, n) / n)
    return {k: {"ns_per_op": median(v), "samples": [round(x, 2) for x in v]} for k, v in samples.items()}


# ---- output ----


def table(header: list, rows: list, align_left_first: bool = True) -> str:
    """A plain-text table, columns right-aligned (the first left-aligned)."""
    cells = [[str(c) for c in header]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]

    def line(r):
        out = []
        for i, (c, w) in enumerate(zip(r, widths)):
            out.append(c.ljust(w) if i == 0 and align_left_first else c.rjust(w))
        return "  ".join(out).rstrip()

    return "\n".join([line(cells[0]), line(["-" * w for w in widths])] + [line(r) for r in cells[1:]])


def fmt_rate(per_s: float) -> str:
    if per_s >= 1e6:
        return f"{per_s / 1e6:.2f} M/s"
    if per_s >= 1e3:
        return f"{per_s / 1e3:.1f} k/s"
    return f"{per_s:.0f} /s"


def fmt_ns(ns: float) -> str:
    ns = float(ns)
    if ns >= 1e9:
        return f"{ns / 1e9:.2f} s"
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e4:
        return f"{ns / 1e3:.1f} us"
    if ns >= 1e3:
        return f"{ns / 1e3:.2f} us"
    return f"{ns:.0f} ns"


def ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def environment() -> dict:
    try:
        rev = subprocess.run(
            ["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5
        ).stdout.strip()
    except Exception:  # noqa: BLE001
        rev = ""
    return {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "kernel": platform.release(),
        "gorun": gorun.__version__,
        "git": rev,
        "time": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def write_json(name: str, data: dict, quick: bool) -> str:
    os.makedirs(OUT_DIR, exist_ok=True)
    path = os.path.join(OUT_DIR, f"{name}.json")
    doc = {"bench": name, "quick": quick, "env": environment(), **data}
    with open(path, "w") as f:
        json.dump(doc, f, indent=1, sort_keys=False, default=float)
    print(f"\n[{name}] results written to {os.path.relpath(path)}")
    return path


def header(title: str, quick: bool) -> None:
    print(f"=== {title}{'  (--quick: smoke run, figures are rough)' if quick else ''} ===")


# ---- a heap in this process, without workers (lock benchmarks) ----


def standalone_heap(
    lock_kind: str,
    nprocs: int = 1,
    arena_bytes: int = 16 << 20,
    root_slots: int = 4096,
    nglobals: int = 16,
    debug_flags: int = 0,
) -> SharedHeap:
    """A gorun heap created and attached in this process by gorun.heap.SharedHeap (the setup
    gorun.Runtime.run uses), without worker processes: ``with standalone_heap("futex") as h``.
    Children forked inside the block share it (MAP_SHARED); leaving it detaches and unlinks both
    segments (only in this process, never in a forked child that falls through)."""
    return SharedHeap(
        arena_bytes, nprocs=nprocs, lock=lock_kind, root_slots=root_slots, nglobals=nglobals, debug_flags=debug_flags
    )


def objs_per_span(sizeclass: int) -> int:
    from gorun.sizeclasses import CLASS_TO_OBJS

    return CLASS_TO_OBJS[sizeclass]


def size_class_of(payload: int) -> int:
    """The size class a non-tiny object of `payload` bytes lands in (8-byte header included)."""
    from gorun.sizeclasses import size_to_class

    return size_to_class(payload + 8)


# ---- the machine's own cost of first-touching shared pages (no gorun involved) ----


def shm_first_touch(procs: int, pages_per_proc: int) -> dict:
    """Fork `procs` processes that each write one byte to every 4 KiB page of their own part of
    one fresh POSIX shared-memory segment (what gorun's arena costs on first use). Returns
    {"us_per_page": per process, median, "aggregate_pages_per_s": all pages / wall span}."""
    import mmap
    import posix_ipc

    page = 4096
    size = procs * pages_per_proc * page
    name = f"/gorun-bench-touch.{os.getpid()}"
    seg = posix_ipc.SharedMemory(name, posix_ipc.O_CREX, mode=0o600, size=size)
    try:
        m = mmap.mmap(seg.fd, size, mmap.MAP_SHARED)
    finally:
        seg.close_fd()
        posix_ipc.unlink_shared_memory(name)
    start_at = now_ns() + 100_000_000
    kids = []
    for i in range(procs):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: touch, report (t0, t1), exit without cleanup
            code = 1
            try:
                os.close(r)
                while now_ns() < start_at:
                    time.sleep(0.0005)
                off, end = i * pages_per_proc * page, (i + 1) * pages_per_proc * page
                t0 = now_ns()
                while off < end:
                    m[off] = 1
                    off += page
                t1 = now_ns()
                os.write(w, f"{t0} {t1}".encode())
                code = 0
            finally:
                os._exit(code)
        os.close(w)
        kids.append((pid, r))
    spans = []
    for pid, r in kids:
        data = b""
        while True:
            chunk = os.read(r, 256)
            if not chunk:
                break
            data += chunk
        os.close(r)
        os.waitpid(pid, 0)
        t0, t1 = map(int, data.split())
        spans.append((t0, t1))
    m.close()
    wall = max(t1 for _, t1 in spans) - min(t0 for t0, _ in spans)
    return {
        "procs": procs,
        "pages_per_proc": pages_per_proc,
        "us_per_page": median((t1 - t0) / pages_per_proc / 1e3 for t0, t1 in spans),
        "aggregate_pages_per_s": procs * pages_per_proc / (wall / 1e9),
    }


def _gorun_mapping(suffix: str) -> tuple[int, int]:
    """(start address, length) of this process's mapping of its gorun segment ending in `suffix`."""
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 6 and os.path.basename(parts[5]).startswith("gorun.") and parts[5].endswith(suffix):
                lo, hi = (int(x, 16) for x in parts[0].split("-"))
                return lo, hi - lo
    raise OSError(f"no gorun {suffix} mapping in this process")


def prefault_heap(arena_bytes: int, meta: bool = True) -> float:
    """Inside a worker: populate the first `arena_bytes` of this process's mapping of the gorun
    arena, and (meta=True) all of the metadata segment, with madvise(MADV_POPULATE_WRITE), so the
    allocations that follow find their pages present (as they will once the GC reuses spans) and
    the timing measures the allocator, not the VM's first-touch cost. Reads and writes no byte of
    the heap. Returns seconds taken; raises OSError without MADV_POPULATE_WRITE (Linux < 5.14)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    MADV_POPULATE_WRITE = 23
    ranges = []
    start, length = _gorun_mapping(".arena")
    ranges.append((start, min((arena_bytes + 4095) // 4096 * 4096, length)))
    if meta:
        ranges.append(_gorun_mapping(".meta"))
    t0 = now_ns()
    for start, n in ranges:
        if libc.madvise(start, n, MADV_POPULATE_WRITE) != 0:
            e = ctypes.get_errno()
            raise OSError(e, f"madvise(MADV_POPULATE_WRITE): {os.strerror(e)}")
    return (now_ns() - t0) / 1e9


def globals_barrier(g, slot0: int = 0) -> None:
    """Inside a worker: wait until every P has arrived (each sets global slot0 + its id)."""
    g.globals[slot0 + g.id] = g.new_bytes(1)
    for i in range(g.nprocs):
        while g.globals[slot0 + i] is None:
            time.sleep(0.0002)


# ---- is anything else using the CPUs? (the machine is shared) ----


def cpu_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine so far (from /proc/stat); steal counts as busy."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)  # idle + iowait
    return sum(v[:8]) - idle, sum(v[:8])


def cpus_busy(interval: float = 0.3) -> float:
    """CPUs' worth of time spent busy (user, system, irq, steal) over `interval` seconds."""
    b0, t0 = cpu_ticks()
    time.sleep(interval)
    b1, t1 = cpu_ticks()
    ncpu = os.cpu_count() or 1
    return ncpu * (b1 - b0) / max(t1 - t0, 1)


def wait_quiet(
    threshold: float = 0.25, timeout: float = 30.0, quiet_needed: int = 2, interval: float = 0.3, verbose: bool = True
) -> dict:
    """Wait (up to `timeout` s) until the machine is idle: `quiet_needed` consecutive samples with
    less than `threshold` CPUs busy. Other sessions share this VM; a busy machine halves the
    2-process figures. Returns {"busy_cpus": last sample, "waited_s": ..., "quiet": bool}."""
    t0 = time.monotonic()
    quiet = 0
    busy = cpus_busy(interval)
    if timeout <= 0:
        if verbose and busy >= threshold:
            print(
                f"WARNING: the machine is busy ({busy:.2f} of {os.cpu_count()} CPUs in use by other "
                "processes); the figures below may be depressed",
                flush=True,
            )
        return {"busy_cpus": busy, "waited_s": 0.0, "quiet": busy < threshold}
    announced = False
    while True:
        quiet = quiet + 1 if busy < threshold else 0
        if quiet >= quiet_needed:
            return {"busy_cpus": busy, "waited_s": time.monotonic() - t0, "quiet": True}
        if time.monotonic() - t0 > timeout:
            print(
                f"WARNING: the machine is busy ({busy:.2f} of {os.cpu_count()} CPUs used by other processes); "
                "figures below, the 2-process ones above all, are depressed",
                flush=True,
            )
            return {"busy_cpus": busy, "waited_s": time.monotonic() - t0, "quiet": False}
        if verbose and not announced and busy >= threshold:
            print(f"(waiting up to {timeout:.0f}s for the machine to go idle: {busy:.2f} CPUs busy)", flush=True)
            announced = True
        busy = cpus_busy(interval)


def other_load(t0: tuple[int, int], t1: tuple[int, int], our_cpu_ns: float, wall_ns: float) -> float:
    """CPUs' worth of time used by anything but us between two cpu_ticks() samples, given the CPU
    time our processes used over that wall time. Jiffy granularity: +-0.1 CPU on a 200 ms window;
    windows under 50 ms are too short to tell and count as 0."""
    if wall_ns < 50_000_000:
        return 0.0
    ncpu = os.cpu_count() or 1
    busy = ncpu * (t1[0] - t0[0]) / max(t1[1] - t0[1], 1)
    return max(busy - our_cpu_ns / max(wall_ns, 1), 0.0)


INTERFERENCE_CPUS = 0.35  # other processes using more than this during a timed run: redo it
