"""Scenarios: the founding articles' claims run as experiments, without and with the advice
(../shared/reference/seed-claims.md). Every module of this package defines a module-level
SCENARIO; `gorun scenarios` lists them, `gorun scenario NAME` runs one."""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import Callable


@dataclass
class Row:  # one measured quantity, without and with the advice
    what: str  # e.g. "GC cycles", "heap after a cycle"
    without: float
    with_: float  # JSON key "with"
    unit: str  # "bytes", "cycles", "s", "objects", "%", ...


@dataclass
class Outcome:
    rows: list[Row]
    held: bool  # did the claim hold on this run
    verdict: str  # one sentence: what was measured against the claim
    note: str = ""  # where gorun measures something other than the article's number, and why
    runs: dict = field(default_factory=dict)  # optional: {"without": run JSON, "with": run JSON}


@dataclass
class Scenario:
    name: str  # CLI name: pool, padding, subslice, prealloc, gogc, container
    title: str
    claim: str  # the article's claim, paraphrased, with its number (../shared/reference/seed-claims.md)
    source: str  # e.g. "seed-claims.md #5"
    run: Callable[[bool], Outcome]  # run(small): small=True is the CI size (a few seconds)


def all_scenarios() -> dict[str, Scenario]:
    """Every module in gorun/scenarios/ (pkgutil), each defining a module-level SCENARIO."""
    out = {}
    for m in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        mod = importlib.import_module(f"{__name__}.{m.name}")
        sc = getattr(mod, "SCENARIO", None)
        if isinstance(sc, Scenario):
            out[sc.name] = sc
    return out


def get(name) -> Scenario:
    """The scenario called name; KeyError with the known names."""
    scs = all_scenarios()
    if name not in scs:
        raise KeyError(f"unknown scenario {name!r} (known: {', '.join(sorted(scs))})")
    return scs[name]
