"""The gorun command line: ``gorun run WORKLOAD ...``, ``gorun plot RESULT.json``, ``gorun compare WORKLOAD``,
``gorun scenarios``, ``gorun scenario NAME [--small] [--json PATH]``, ``gorun workloads``, ``gorun clean``.

Exit codes: 0 success; 1 the run failed (out of memory, a worker died, the workload raised, the
run stalled: see --stall-timeout, a runtime error such as a full /dev/shm), or `gorun clean`
could not remove a segment; 2 bad input (one line ``gorun: error: ...``, checked before any process or segment exists);
128 + the signal number when stopped by a signal: 130 SIGINT (Ctrl-C), 143 SIGTERM, 129 SIGHUP,
131 SIGQUIT (children stopped, segments removed, one line on stderr, also during start-up).
"""

from __future__ import annotations

import argparse
import logging
import json
import os
import signal
import stat
import sys

EXAMPLES = """examples:
  gorun run alloc                          the default workload on every CPU
  gorun run alloc --procs 2 --lock pthread -p budget=256MiB
  gorun run alloc --duration 5 --json out.json
  GODEBUG=mcachebypass=1 gorun run alloc --procs 2   stress the mcentral locks
  GODEBUG=gctrace=1 gorun run binary-trees --procs 2 -p depth=16
  GOGC=25 GODEBUG=gccheckmark=1 gorun run graph -p steps=500000   GC torture
  GOMEMLIMIT=900MiB gorun run spike --container 1GiB --procs 2 -p live=400MiB -p grow=600MiB -p churn=2GiB
                                           the container story: the limit keeps the run alive
  gorun run alloc --stall-timeout 2        end a run stuck for 2 s, naming the stuck process
  gorun plot out.json -o plots             heap, pauses, MMU, lock waits and GC CPU as PNGs
  gorun compare binary-trees --procs 2 -p depth=16 --rounds 3   the same workload in gorun and in Go
  gorun workloads                          list workloads and their parameters
  gorun clean                              remove segments of dead runs from /dev/shm
  gorun scenarios                          the articles' claims that can be run
  gorun scenario padding --small           one claim, without and with the advice
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2
        self.exit(2, f"gorun: error: {message}\n")


def _build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="gorun",
        description="Go's memory management as a real multiprocess runtime.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="cmd", metavar="COMMAND")
    r = sub.add_parser(
        "run",
        help="run a workload across worker processes",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    r.error = p.error
    r.add_argument("workload", help="workload name (see `gorun workloads`)")
    r.add_argument(
        "--procs", type=str, default=None, help="worker processes (P's); default GOMAXPROCS or the CPU count"
    )
    r.add_argument("--lock", default="futex", help="lock kind: futex (default), pthread, sem")
    r.add_argument("--duration", type=str, default=None, help="stop the workload after S seconds")
    r.add_argument("--seed", type=str, default="0", help="RNG seed (each P gets its own stream)")
    r.add_argument("--max-heap", default="4GiB", help="heap reservation, e.g. 512MiB (default 4GiB)")
    r.add_argument("--json", metavar="PATH", help="write the results as JSON to PATH ('-' for stdout)")
    r.add_argument("--trace", metavar="PATH", help="record runtime events; write a Perfetto timeline to PATH")
    r.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE", help="workload parameter")
    r.add_argument("--pin", action="store_true", help="pin P i to CPU i mod ncpu")
    r.add_argument("--gogc", default=None, help="GC target percentage or 'off' (default: $GOGC or 100)")
    r.add_argument(
        "--memlimit",
        default=None,
        metavar="LIMIT",
        help="soft memory limit in Go's GOMEMLIMIT syntax (e.g. 900MiB, or off; default: $GOMEMLIMIT or off)",
    )
    r.add_argument(
        "--container",
        default=None,
        metavar="SIZE",
        help="run the GC process and the workers in a fresh memory cgroup with this hard limit "
        "(e.g. 1GiB); the kernel OOM-kills the run past it (needs root and a memory controller)",
    )
    r.add_argument("--mark-threads", default=None, help="GC mark threads (default: 25%% of the CPUs, at least 1)")
    r.add_argument("--gc-period", default=None, help="also start a cycle every S seconds (Go: 120)")
    r.add_argument(
        "--stall-timeout",
        default=None,
        metavar="S",
        help="end the run if a stop-the-world, a GC cycle or a wait makes no progress for S "
        "seconds, naming the stuck process; 'off' disables (default: $GORUN_STALL_TIMEOUT or 10)",
    )
    r.add_argument("--plot", metavar="DIR", default=None, help="after the run, write the PNGs of `gorun plot` into DIR")
    pl = sub.add_parser(
        "plot",
        help="plot a --json result as PNG files",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    pl.error = p.error
    pl.add_argument("result", metavar="RESULT.json", help="a `gorun run --json` or `gorun compare --json` document")
    pl.add_argument(
        "-o",
        "--out",
        metavar="DIR",
        default=None,
        help="folder for the PNGs (default: the JSON's folder; made if missing)",
    )
    cm = sub.add_parser(
        "compare",
        help="run a workload in gorun and in Go (its twin in gorun/goprogs), interleaved, side by side",
    )
    cm.error = p.error
    cm.add_argument("workload", help="workload name (see `gorun workloads`)")
    cm.add_argument("--procs", type=str, default=None, help="P's: gorun's worker processes and Go's GOMAXPROCS")
    cm.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE", help="workload parameter")
    cm.add_argument("--rounds", type=str, default="3", help="rounds of each, interleaved (default 3)")
    cm.add_argument("--json", metavar="PATH", help="write the compare document as JSON to PATH ('-' for stdout)")
    sub.add_parser("workloads", help="list the built-in workloads")
    sub.add_parser("scenarios", help="list the scenarios: the articles' claims as experiments")
    sc = sub.add_parser("scenario", help="run one scenario without and with the advice; print what held")
    sc.error = p.error
    sc.add_argument("name", help="scenario name (see `gorun scenarios`)")
    sc.add_argument("--small", action="store_true", help="the CI size: a few seconds")
    sc.add_argument("--json", metavar="PATH", help="write the outcome as JSON to PATH ('-' for stdout)")
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


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)


class _Stopped(KeyboardInterrupt):
    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _stop(signum, frame):
    raise _Stopped(signum)


def _drop_output(stream) -> None:
    """The reader of `stream` has gone (`gorun workloads | head -1`): from now on what is written
    there goes to /dev/null, so neither a later print nor the flush at exit raises again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, stream.fileno())
    finally:
        os.close(devnull)


def _print(*args, file=None, **kw) -> None:
    """print() and flush, for output whose reader may stop early. On a broken pipe the rest of
    that stream's output is dropped quietly and the command goes on with its exit status
    unchanged, as Unix filters do (a run still writes its --json file and exits 0 if it
    succeeded)."""
    f = sys.stdout if file is None else file
    try:
        print(*args, file=f, **kw)
        f.flush()
    except BrokenPipeError:
        _drop_output(f)


def _flush_quietly() -> None:
    """Flush stdout and stderr (argparse's help and usage lines); a broken pipe drops the rest."""
    for f in (sys.stdout, sys.stderr):
        try:
            f.flush()
        except BrokenPipeError:
            _drop_output(f)


class _StderrNotice(logging.Handler):
    """One line on stderr per INFO record of the "gorun" logger (the stale-segment notice)."""

    def emit(self, record: logging.LogRecord) -> None:
        _print(f"gorun: {record.getMessage()}", file=sys.stderr)


def _import_with_stop_signals_blocked() -> None:
    """Import what starts threads (numpy's OpenBLAS pool, via the runtime) with the stop signals
    blocked: a new thread inherits the mask, so those threads never take a stop signal, and the
    kernel can deliver one only to the main thread, whose mask the launcher controls (blocked
    while it creates segments and forks). Otherwise a SIGTERM delivered to an OpenBLAS thread
    runs the launcher's handler in the main thread even while the main thread has it blocked.
    A signal that arrived meanwhile is handled when the mask is restored."""
    saved = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    try:
        from . import runtime, workloads  # noqa: F401

        workloads.all_workloads()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, saved)


def main(argv: list[str] | None = None) -> int:
    """The CLI. Every stop signal becomes one line and exit 128 + signo from the start, so an
    interruption during start-up prints no traceback (the run itself installs its own handlers
    and cleans up, see Runtime.run). Output into a pipe whose reader has gone is dropped
    quietly (`_print`)."""
    old = {}
    try:
        for sig in _STOP_SIGNALS:
            try:
                old[sig] = signal.signal(sig, _stop)
            except ValueError:  # not the main thread
                break
        if old:
            _import_with_stop_signals_blocked()
        return _main(argv)
    except KeyboardInterrupt as e:
        signum = getattr(e, "signum", signal.SIGINT)
        _print(f"gorun: interrupted ({signal.Signals(signum).name})", file=sys.stderr)
        return 128 + signum
    finally:
        for sig, h in old.items():
            signal.signal(sig, h if h is not None else signal.SIG_DFL)
        _flush_quietly()


def _main(argv: list[str] | None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.cmd is None:
        parser.print_help()
        return 2
    if args.cmd == "clean":
        from . import container as containermod
        from .shm import clean_stale

        res = clean_stale(args.dry_run)
        for n in res.removed:
            _print(("would remove " if args.dry_run else "removed ") + n)
        for n in res.kept:
            _print(f"kept {n} (its launcher is alive)")
        for n, why in res.failed:  # e.g. another user's segment: say so and go on
            _print(f"gorun: cannot remove {n}: {why}", file=sys.stderr)
        cgroups = [] if args.dry_run else containermod.clean_stale()  # --container cgroups of dead launchers
        for path in cgroups:
            _print(f"removed cgroup {path}")
        if not res.removed and not res.kept and not res.failed and not cgroups:
            _print("no gorun segments")
        return 1 if res.failed else 0
    if args.cmd == "workloads":
        from .workloads import all_workloads

        for w in all_workloads().values():
            _print(f"{w.name}\n  " + " ".join(w.doc.split("\n\n")[0].split()))
            for k, v in w.params.items():
                _print(f"    -p {k}={v}  ({w.limits[k].describe()})")
        return 0
    if args.cmd == "plot":
        return _plot(args)
    if args.cmd == "compare":
        return _compare(args)
    if args.cmd == "scenarios":
        from .scenarios import all_scenarios

        for sc in all_scenarios().values():
            _print(f"{sc.name}: {sc.title}\n  {sc.claim} ({sc.source})")
        return 0
    if args.cmd == "scenario":
        return _scenario(args)
    return _run(args)


def _write_plots(result: dict, go_metrics: dict | None, out_dir: str, out) -> None:
    """Write the PNGs (gorun/plot.py), print their paths on `out` and a note per missing part on stderr."""
    from . import plot

    paths, notes = plot.write_plots(result, go_metrics, out_dir)
    for n in notes:
        _print(f"gorun: note: {n}", file=sys.stderr)
    for path in paths:
        _print(path, file=out)


def _plot(args) -> int:
    from . import plot

    out_dir = args.out if args.out is not None else (os.path.dirname(args.result) or ".")
    try:
        result, go_metrics = plot.load_document(args.result)
        plot.check_out_dir(out_dir, "-o" if args.out is not None else "output folder (the JSON's folder)")
        try:
            _write_plots(result, go_metrics, out_dir, sys.stdout)
        except (KeyError, IndexError, TypeError, ValueError) as e:  # a value of the wrong shape deep inside
            if isinstance(e, plot.PlotInputError):
                raise
            raise plot.PlotInputError(
                f"{args.result!r} is a malformed gorun result ({type(e).__name__}: {e})".replace("\n", " ")
            ) from None
    except plot.PlotInputError as e:
        _print(f"gorun: error: {e}", file=sys.stderr)
        return 2
    return 0


def _compare(args) -> int:
    """`gorun compare`: input checked first (exit 2), then the toolchain (none: one line, exit 2)."""
    from . import compare as cmp
    from . import runtime as rtmod
    from .workloads import get

    try:
        w = get(args.workload)
        params = w.parse_params(args.param)
        _check_json_path(args.json)
        procs = _int_arg("procs", args.procs, 1) if args.procs is not None else None
        rounds = _int_arg("rounds", args.rounds, 1)
        # the checks of a run (P range, $GOMAXPROCS, $GOGC, $GOMEMLIMIT) before anything is built
        procs = rtmod.Runtime(procs=procs).procs
    except (KeyError, ValueError) as e:
        msg = e.args[0] if isinstance(e, KeyError) else str(e)
        _print(f"gorun: error: {msg}", file=sys.stderr)
        return 2
    out = sys.stderr if args.json == "-" else sys.stdout
    try:
        doc = cmp.compare(w, procs, params, rounds, log=lambda s: _print(f"gorun compare: {s}", file=sys.stderr))
    except cmp.NoToolchain as e:
        _print(f"gorun: error: {e}", file=sys.stderr)
        return 2
    except (cmp.CompareError, rtmod.GorunError) as e:
        _print(f"gorun: {e}", file=sys.stderr)
        return 1
    _print(cmp.format_table(doc), file=out)
    code = 0
    chk = doc.get("check")
    if chk is not None:
        if chk["same"]:
            _print(f"check lines: the same in gorun and Go ({len(chk['gorun'])} lines)", file=out)
        else:
            _print("gorun: the check lines differ between gorun and Go", file=sys.stderr)
            code = 1
    if args.json:
        text = json.dumps(doc, indent=2, default=str)
        if args.json == "-":
            _print(text)
        else:
            with open(args.json, "w") as f:
                f.write(text + "\n")
    return code


def _scenario(args) -> int:
    from . import scenarios
    from .scenarios import report as screport

    try:
        sc = scenarios.get(args.name)
        _check_json_path(args.json)
    except (KeyError, ValueError) as e:
        _print(f"gorun: error: {e.args[0] if isinstance(e, KeyError) else e}", file=sys.stderr)
        return 2
    from . import runtime as rtmod

    out = sys.stderr if args.json == "-" else sys.stdout
    _print(f"scenario {sc.name}: {sc.title}\nclaim ({sc.source}): {sc.claim}\n", file=out)
    try:
        outcome = sc.run(args.small)
    except rtmod.Interrupted as e:
        _print(f"gorun: {e}", file=sys.stderr)
        return 128 + e.signum
    except (rtmod.OutOfMemory, rtmod.GorunError) as e:
        _print(f"gorun: scenario {sc.name} failed: {e}", file=sys.stderr)
        return 1
    _print(screport.text(outcome), file=out)
    if args.json:
        text = json.dumps(screport.to_dict(sc, outcome, args.small), indent=2, default=str)
        if args.json == "-":
            _print(text)
        else:
            with open(args.json, "w") as f:
                f.write(text + "\n")
    return 0


def _check_json_path(path: str | None, flag: str = "--json") -> None:
    """--json PATH (or --trace PATH) must be writable before the run starts (else the results
    would be lost)."""
    if path is None or (path == "-" and flag == "--json"):
        return
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise ValueError(f"bad {flag} {path!r}: it is a folder")
    try:
        st = os.stat(folder)
    except FileNotFoundError:
        raise ValueError(f"bad {flag} {path!r}: folder {folder!r} does not exist") from None
    except OSError as e:
        raise ValueError(f"bad {flag} {path!r}: folder {folder!r} is not accessible: {e.strerror}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise ValueError(f"bad {flag} {path!r}: {folder!r} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise ValueError(f"bad {flag} {path!r}: not writable")
    import tempfile

    try:  # os.access does not see a read-only mount or a full disk: try
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".gorun-json-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise ValueError(f"bad {flag} {path!r}: cannot write in {folder!r}: {e.strerror}") from None


def _run(args) -> int:
    from . import runtime as rtmod
    from .units import parse_memlimit, parse_size
    from .watchdog import parse_stall_timeout
    from .workloads import get

    try:
        w = get(args.workload)
        params = w.parse_params(args.param)
        _check_json_path(args.json)
        if args.plot is not None:
            from .plot import check_out_dir

            check_out_dir(args.plot, "--plot")
        _check_json_path(args.trace, "--trace")
        if args.trace:
            from . import trace as tracemod

            why = None if tracemod.is_json(args.trace) else tracemod.protobuf_missing()
            if why:
                raise ValueError(f"bad --trace {args.trace!r}: {why}")
        procs = _int_arg("procs", args.procs, 1) if args.procs is not None else None
        seed = _int_arg("seed", args.seed, 0)
        duration = _seconds_arg("duration", args.duration)
        gc_period = _seconds_arg("gc-period", args.gc_period)
        mark_threads = _int_arg("mark-threads", args.mark_threads, 1) if args.mark_threads is not None else None
        memlimit = parse_memlimit(args.memlimit, "--memlimit") if args.memlimit is not None else None
        container = None
        if args.container is not None:
            container = parse_size(args.container, "--container")
        stall = None
        if args.stall_timeout is not None:
            stall = parse_stall_timeout(args.stall_timeout, "--stall-timeout")
            stall = "off" if stall is None else stall
        rt = rtmod.Runtime(
            procs=procs,
            lock=args.lock,
            max_heap=args.max_heap,
            seed=seed,
            duration=duration,
            gogc=args.gogc,
            mark_threads=mark_threads,
            gc_period=gc_period,
            pin=args.pin,
            stall_timeout=stall,
            memory_limit=memlimit,
            container=container,
            trace=args.trace,
        )
    except (KeyError, ValueError) as e:
        msg = e.args[0] if isinstance(e, KeyError) else str(e)
        _print(f"gorun: error: {msg}", file=sys.stderr)
        return 2
    code = 0
    # Runtime.run first removes the segments of launchers killed with SIGKILL and logs it on the
    # "gorun" logger; the CLI says so in one line.
    notice = _StderrNotice()
    log = logging.getLogger("gorun")
    log.addHandler(notice)
    log.setLevel(logging.INFO)
    try:
        result = rt.run(w.fn, **params)
    except rtmod.Interrupted as e:
        result, code = e.result, 128 + e.signum
        _print(f"gorun: {e}", file=sys.stderr)
    except (rtmod.OutOfMemory, rtmod.RunError) as e:
        result, code = getattr(e, "result", None), 1
        _print(f"gorun: {e}", file=sys.stderr)
    except rtmod.GorunError as e:
        _print(f"gorun: error: {e}", file=sys.stderr)
        return 1
    finally:
        log.removeHandler(notice)
    if result is not None:
        result.workload = w.name
        out = sys.stderr if args.json == "-" else sys.stdout  # `--json -`: stdout is pure JSON
        if w.report and code == 0:
            _print("\n".join(w.report(result.values, params)), file=out)
            _print(file=out)
        _print(result.summary(), file=out)
        doc = result.to_dict() if args.json or args.plot is not None else None
        if args.json:
            text = json.dumps(doc, indent=2, default=str)
            if args.json == "-":
                _print(text)
            else:
                with open(args.json, "w") as f:
                    f.write(text + "\n")
        if args.plot is not None:
            from .plot import PlotInputError

            try:
                _write_plots(doc, None, args.plot, out)
            except PlotInputError as e:  # the folder could not be made after all
                _print(f"gorun: error: {e}", file=sys.stderr)
                return code or 1
    return code


if __name__ == "__main__":
    sys.exit(main())
