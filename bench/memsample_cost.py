#!/usr/bin/env python3
"""The cost of one MemorySampler sample in the launcher (docs/design.md "Containers and memory
accounting"), with 3 sampled processes (idle forked children), 2 segments (/dev/shm files with
1 MiB fallocated) and, where one can be made, a container.

    .venv/bin/python bench/memsample_cost.py [--seconds 3]

For each way of reading the processes (``statm``: the sampler's kept-open /proc/<pid>/statm fds;
``psutil``: psutil's memory_info(), which opens the file every time) it prints:

- the time of one sample() call back to back (caches warm) and one every 5 ms (caches cold, the
  case of the launcher), median and 90th percentile;
- the CPU time the running sampler thread costs per tick at the default 5 ms (process CPU time
  over the thread's samples), and the same for a sampler with nothing to sample: the price of
  waking a thread every 5 ms, which any sampler pays.
Figures, not assertions.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from gorun import container  # noqa: E402
from gorun.memsample import MemorySampler  # noqa: E402


def call_times(s: MemorySampler, n: int, gap: float) -> tuple[float, float]:
    ts = []
    for _ in range(n):
        if gap:
            time.sleep(gap)
        t = time.perf_counter_ns()
        s.sample()
        ts.append(time.perf_counter_ns() - t)
    ts.sort()
    return ts[len(ts) // 2] / 1e3, ts[int(len(ts) * 0.9)] / 1e3


def thread_cpu(make, seconds: float) -> tuple[float, int]:
    s = make()
    c0 = time.process_time()
    s.start()
    time.sleep(seconds)
    summary = s.stop()
    return (time.process_time() - c0) / summary["samples"] * 1e6, summary["samples"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=3.0, help="how long the sampler thread runs per figure")
    args = ap.parse_args()
    kids = []
    for _ in range(3):
        pid = os.fork()
        if pid == 0:
            signal.pause()
            os._exit(0)
        kids.append(pid)
    paths = [f"/dev/shm/gorun-bench-memsample.{os.getpid()}.{secrets.token_hex(4)}" for _ in range(2)]
    fds = []
    c = None
    try:
        for p in paths:
            fd = os.open(p, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
            fds.append(fd)
            os.posix_fallocate(fd, 0, 1 << 20)
        reason = container.probe()
        c = container.Container(1 << 30) if reason is None else None
        print(f"3 processes, 2 segments, container: {c.path if c else 'none (' + reason + ')'}")

        def make(use_psutil: bool) -> MemorySampler:
            s = MemorySampler(segment_fds=fds, container=c, use_psutil=use_psutil)
            for k in kids:
                s.add_pid(k)
            return s

        for use_psutil in (False, True):
            s = make(use_psutil)
            hot = call_times(s, 3000, 0)
            cold = call_times(s, 300, 0.005)
            s.close()
            cpu, n = thread_cpu(lambda: make(use_psutil), args.seconds)
            name = "psutil" if use_psutil else "statm"
            print(
                f"{name:6s}: sample() back to back {hot[0]:6.1f} us (p90 {hot[1]:6.1f}); every 5 ms "
                f"{cold[0]:6.1f} us (p90 {cold[1]:6.1f}); thread at 5 ms: {cpu:5.0f} us CPU per tick ({n} ticks)"
            )
        cpu, n = thread_cpu(MemorySampler, args.seconds)
        print(f"empty : thread at 5 ms: {cpu:5.0f} us CPU per tick ({n} ticks): the wake-up alone")
    finally:
        for k in kids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(k, signal.SIGKILL)
            os.waitpid(k, 0)
        for fd in fds:
            os.close(fd)
        for p in paths:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(p)
        if c is not None:
            c.remove()


if __name__ == "__main__":
    main()
