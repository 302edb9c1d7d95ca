"""The gorun command line: ``gorun run WORKLOAD ...``, ``gorun workloads``, ``gorun clean``.

Exit codes: 0 success; 1 the run failed (out of memory, a worker died, the workload raised, the
run stalled: see --stall-timeout);
2 bad input; 130 interrupted (SIGINT/SIGTERM).
"""

from __future__ import annotations

import argparse
import json
import sys

EXAMPLES = """examples:
  gorun run alloc                          the default workload on every CPU
  gorun run alloc --procs 2 --lock pthread -p budget=256MiB
  gorun run alloc --duration 5 --json out.json
  GODEBUG=mcachebypass=1 gorun run alloc --procs 2   stress the mcentral locks
  GODEBUG=gctrace=1 gorun run binary-trees --procs 2 -p depth=16
  GOGC=25 GODEBUG=gccheckmark=1 gorun run graph -p steps=500000   GC torture
  gorun run alloc --stall-timeout 2        end a run stuck for 2 s, naming the stuck process
  gorun workloads                          list workloads and their parameters
  gorun clean                              remove segments of dead runs from /dev/shm
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2
        self.exit(2, f"gorun: error: {message}\n")


def _build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="gorun", description="Go's memory management as a real multiprocess runtime.",
                epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", metavar="COMMAND")
    r = sub.add_parser("run", help="run a workload across worker processes", epilog=EXAMPLES,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    r.error = p.error
    r.add_argument("workload", help="workload name (see `gorun workloads`)")
    r.add_argument("--procs", type=str, default=None, help="worker processes (P's); default GOMAXPROCS or the CPU count")
    r.add_argument("--lock", default="futex", help="lock kind: futex (default), pthread, sem")
    r.add_argument("--duration", type=str, default=None, help="stop the workload after S seconds")
    r.add_argument("--seed", type=str, default="0", help="RNG seed (each P gets its own stream)")
    r.add_argument("--max-heap", default="4GiB", help="heap reservation, e.g. 512MiB (default 4GiB)")
    r.add_argument("--json", metavar="PATH", help="write the results as JSON to PATH ('-' for stdout)")
    r.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE", help="workload parameter")
    r.add_argument("--pin", action="store_true", help="pin P i to CPU i mod ncpu")
    r.add_argument("--gogc", default=None, help="GC target percentage or 'off' (default: $GOGC or 100)")
    r.add_argument("--mark-threads", default=None, help="GC mark threads (default: 25%% of the CPUs, at least 1)")
    r.add_argument("--gc-period", default=None, help="also start a cycle every S seconds (Go: 120)")
    r.add_argument("--stall-timeout", default=None, metavar="S",
                   help="end the run if a stop-the-world, a GC cycle or a wait makes no progress for S "
                        "seconds, naming the stuck process; 'off' disables (default: $GORUN_STALL_TIMEOUT or 10)")
    sub.add_parser("workloads", help="list the built-in workloads")
    c = sub.add_parser("clean", help="remove shared-memory segments left by dead runs")
    c.add_argument("--dry-run", action="store_true")
    return p


def _int_arg(name: str, text: str, lo: int) -> int:
    try:
        v = int(text)
    except ValueError:
        raise ValueError(f"bad --{name} {text!r}: expected an integer") from None
    if v < lo:
        raise ValueError(f"bad --{name} {text!r}: must be >= {lo}")
    return v


def _seconds_arg(name: str, text: str | None) -> float | None:
    if text is None:
        return None
    try:
        v = float(text)
    except ValueError:
        raise ValueError(f"bad --{name} {text!r}: expected seconds") from None
    if not v > 0:
        raise ValueError(f"bad --{name} {text!r}: must be > 0")
    return v


def main(argv: list[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.cmd is None:
        parser.print_help()
        return 2
    if args.cmd == "clean":
        from .shm import clean_stale
        removed, kept = clean_stale(args.dry_run)
        for n in removed:
            print(("would remove " if args.dry_run else "removed ") + n)
        for n in kept:
            print(f"kept {n} (its launcher is alive)")
        if not removed and not kept:
            print("no gorun segments")
        return 0
    if args.cmd == "workloads":
        from .workloads import all_workloads
        for w in all_workloads().values():
            print(f"{w.name}\n  " + " ".join(w.doc.split("\n\n")[0].split()))
            for k, v in w.params.items():
                print(f"    -p {k}={v}")
        return 0
    return _run(args)


def _run(args) -> int:
    from . import runtime as rtmod
    from .watchdog import parse_stall_timeout
    from .workloads import get
    try:
        w = get(args.workload)
        params = w.parse_params(args.param)
        procs = _int_arg("procs", args.procs, 1) if args.procs is not None else None
        seed = _int_arg("seed", args.seed, 0)
        duration = _seconds_arg("duration", args.duration)
        gc_period = _seconds_arg("gc-period", args.gc_period)
        mark_threads = _int_arg("mark-threads", args.mark_threads, 1) if args.mark_threads is not None else None
        stall = None
        if args.stall_timeout is not None:
            stall = parse_stall_timeout(args.stall_timeout, "--stall-timeout")
            stall = "off" if stall is None else stall
        rt = rtmod.Runtime(procs=procs, lock=args.lock, max_heap=args.max_heap, seed=seed, duration=duration,
                           gogc=args.gogc, mark_threads=mark_threads, gc_period=gc_period, pin=args.pin,
                           stall_timeout=stall)
    except (KeyError, ValueError) as e:
        msg = e.args[0] if isinstance(e, KeyError) else str(e)
        print(f"gorun: error: {msg}", file=sys.stderr)
        return 2
    code = 0
    try:
        result = rt.run(w.fn, **params)
    except rtmod.Interrupted as e:
        result, code = e.result, 130
        print(f"gorun: {e}", file=sys.stderr)
    except (rtmod.OutOfMemory, rtmod.RunError) as e:
        result, code = getattr(e, "result", None), 1
        print(f"gorun: {e}", file=sys.stderr)
    except rtmod.GorunError as e:
        print(f"gorun: error: {e}", file=sys.stderr)
        return 1
    if result is not None:
        result.workload = w.name
        out = sys.stderr if args.json == "-" else sys.stdout  # `--json -`: stdout is pure JSON
        if w.report and code == 0:
            print("\n".join(w.report(result.values, params)), file=out)
            print(file=out)
        print(result.summary(), file=out)
        if args.json:
            text = json.dumps(result.to_dict(), indent=2, default=str)
            if args.json == "-":
                print(text)
            else:
                with open(args.json, "w") as f:
                    f.write(text + "\n")
    return code


if __name__ == "__main__":
    sys.exit(main())
