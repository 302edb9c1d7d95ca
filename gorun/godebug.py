"""GODEBUG-style debug knobs: ``GODEBUG=name=value,name=value``.

Every knob is documented in README.md ("Debug knobs") with what it prints or changes.
Unknown names are an error (a typo should not silently do nothing).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import _gorun

_FLAGS = _gorun.constants()["debug_flags"]  # the C core's debug_flags bits, by knob name
_TRACE = _gorun.constants()["trace"]["limits"]

# name -> (C flag bit or 0, description)
KNOBS = {
    "mcachebypass": (_FLAGS["mcachebypass"], "1: every small allocation refills through its mcentral (lock stress)"),
    "gccheckmark": (
        _FLAGS["checkmark"],
        "1: at mark termination re-mark from the roots with the world stopped; "
        "a reachable unmarked object is a fatal error naming it",
    ),
    "gctrace": (0, "1: one line per GC cycle on stderr, in Go's format"),
    "gcpacertrace": (
        0,
        "1: the pacer's three lines per GC cycle on stderr (start, end of mark, sweep done), in Go's format",
    ),
    "scavtrace": (0, "1: one line per GC cycle on stderr on the scavenger's work, in Go's format"),
    "scavpercent": (0, "N (1..100): the background scavenger's share of one CPU, in percent (default 10; Go's is 1)"),
    "tracelockns": (
        0,
        f"N: with --trace, record contended lock waits of at least N ns (default {_TRACE['lock_ns_default']})",
    ),
    "tracercallns": (
        0,
        f"N: with --trace, record runtime calls (refill, large, assist, waits) of at least N ns "
        f"(default {_TRACE['rcall_ns_default']})",
    ),
}

RANGES = {
    "scavpercent": (1, 100),
    "tracelockns": (0, 1 << 62),
    "tracercallns": (0, 1 << 62),
}  # knobs whose value is a number in a range, not a switch


@dataclass
class Debug:
    values: dict = field(default_factory=dict)
    flags: int = 0

    def get(self, name: str, default: int = 0) -> int:
        return self.values.get(name, default)


def parse(text: str) -> Debug:
    d = Debug()
    for item in filter(None, (s.strip() for s in (text or "").split(","))):
        name, eq, val = item.partition("=")
        if not eq:
            raise ValueError(f"bad GODEBUG item {item!r}: expected name=value")
        if name not in KNOBS:
            raise ValueError(f"unknown GODEBUG setting {name!r}: known are {', '.join(sorted(KNOBS))}")
        try:
            v = int(val)
        except ValueError:
            raise ValueError(f"bad GODEBUG value {item!r}: expected an integer") from None
        if name in RANGES and not RANGES[name][0] <= v <= RANGES[name][1]:
            raise ValueError(f"bad GODEBUG value {item!r}: must be {RANGES[name][0]}..{RANGES[name][1]}")
        d.values[name] = v
        bit = KNOBS[name][0]
        if bit and v:
            d.flags |= bit
    return d


def trace_thresholds(d: Debug) -> tuple[int, int]:
    """(lock_ns, rcall_ns): the event thresholds of a --trace run (tracelockns, tracercallns)."""
    return d.get("tracelockns", _TRACE["lock_ns_default"]), d.get("tracercallns", _TRACE["rcall_ns_default"])
