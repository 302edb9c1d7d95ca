"""Built-in workloads. Each is a function ``fn(g, **params)`` with documented defaults;
``gorun workloads`` lists them and ``-p name=value`` sets parameters on the command line.

Each workload declares the kind and range of every parameter (``Param``), so bad values are
refused by the launcher before any process or segment exists (``check_params``), on the command
line and in ``Runtime.run``, instead of failing inside the workers."""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass, field

from ..units import parse_size

_INT_RE = re.compile(r"^\s*[+-]?\d+\s*$")
_FRACTION_BYTES_RE = re.compile(r"^\s*\d*\.\d*\s*[bB]?\s*$")
_BOOLS = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}


@dataclass(frozen=True)
class Param:
    """A parameter's kind and range. kind: ``int`` (a count: digits only), ``size`` (bytes: a
    number with an optional unit, e.g. 64MiB), ``float`` (an int is accepted) or ``bool``."""

    kind: str
    lo: float | None = None
    hi: float | None = None

    def describe(self) -> str:
        what = {"int": "an integer", "size": "a size", "float": "a number", "bool": "a boolean"}[self.kind]
        if self.lo is not None and self.hi is not None:
            return f"{what} in {self.lo}..{self.hi}"
        if self.lo is not None:
            return f"{what} >= {self.lo}"
        return what

    def parse(self, raw: str):
        """Text from `-p name=value` -> a typed value (range not checked)."""
        if self.kind == "bool":
            if raw.strip().lower() not in _BOOLS:
                raise ValueError
            return _BOOLS[raw.strip().lower()]
        if self.kind == "int":
            if not _INT_RE.match(raw):
                raise ValueError
            return int(raw)
        if self.kind == "size":
            m = _FRACTION_BYTES_RE.match(raw)
            if m:  # "1.9" or "1.9B": a fraction of a byte
                raise ValueError
            return parse_size(raw)
        return float(raw)

    def valid(self, v) -> bool:
        if self.kind == "bool":
            return isinstance(v, bool)
        if isinstance(v, bool):
            return False
        if self.kind in ("int", "size") and not isinstance(v, int):
            return False
        if self.kind == "float" and not isinstance(v, (int, float)):
            return False
        if self.kind == "float" and v != v:  # NaN
            return False
        return (self.lo is None or v >= self.lo) and (self.hi is None or v <= self.hi)


@dataclass
class Workload:
    name: str
    fn: object
    doc: str
    report: object = None  # report(values, params) -> lines printed before the summary
    limits: dict = field(default_factory=dict)  # name -> Param
    check: object = None  # check(params with defaults) -> error text or None (cross-parameter rules)

    @property
    def params(self) -> dict:
        sig = inspect.signature(self.fn)
        return {k: p.default for k, p in list(sig.parameters.items())[1:] if p.default is not inspect.Parameter.empty}

    def parse_params(self, items: list[str]) -> dict:
        """['depth=16', 'budget=64MiB'] -> typed values, checked (check_params) before any run."""
        known = self.params
        out = {}
        for item in items:
            key, eq, raw = item.partition("=")
            if not eq or not key:
                raise ValueError(f"bad parameter {item!r}: expected name=value")
            if key not in known:
                raise ValueError(
                    f"workload {self.name} has no parameter {key!r} (known: {', '.join(sorted(known)) or 'none'})"
                )
            p = self.limits[key]
            try:
                out[key] = p.parse(raw)
                if not p.valid(out[key]):
                    raise ValueError
            except ValueError:
                raise ValueError(f"bad value {raw!r} for parameter {key} of {self.name}: need {p.describe()}") from None
        self.check_params(out)
        return out

    def check_params(self, params: dict) -> None:
        """Raise ValueError (one line naming the parameter and the value) unless every parameter
        is known, of its kind and in its range, and the cross-parameter rules hold."""
        known = self.params
        for key, v in params.items():
            if key not in known:
                raise ValueError(
                    f"workload {self.name} has no parameter {key!r} (known: {', '.join(sorted(known)) or 'none'})"
                )
            p = self.limits[key]
            if not p.valid(v):
                raise ValueError(f"bad value {v!r} for parameter {key} of {self.name}: need {p.describe()}")
        if self.check:
            err = self.check({**known, **params})
            if err:
                raise ValueError(f"bad parameters for {self.name}: {err}")


REGISTRY: dict[str, Workload] = {}


def register(fn=None, *, report=None, limits=None, check=None):
    """Register a built-in workload; ``limits`` gives a Param for every parameter with a default."""

    def deco(f):
        name = f.__name__.replace("_", "-")
        w = Workload(name, f, inspect.getdoc(f) or "", report, dict(limits or {}), check)
        missing = set(w.params) - set(w.limits)
        if missing:
            raise TypeError(f"workload {name}: no limits declared for {sorted(missing)}")
        REGISTRY[name] = w
        return f

    return deco(fn) if fn is not None else deco


def get(name: str) -> Workload:
    _load()
    if name not in REGISTRY:
        raise KeyError(f"unknown workload {name!r}: known are {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name]


def check_params(fn, params: dict) -> None:
    """If fn is a built-in workload, validate params for it (ValueError); else nothing."""
    if not str(getattr(fn, "__module__", "")).startswith(__name__ + "."):
        return
    _load()
    for w in REGISTRY.values():
        if w.fn is fn:
            w.check_params(params)
            return


def all_workloads() -> dict[str, Workload]:
    _load()
    return dict(sorted(REGISTRY.items()))


def _load() -> None:
    from . import alloc, binary_trees, gcbench, graph, spike  # noqa: F401
