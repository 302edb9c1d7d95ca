"""Built-in workloads. Each is a function ``fn(g, **params)`` with documented defaults;
``gorun workloads`` lists them and ``-p name=value`` sets parameters on the command line."""

from __future__ import annotations

import inspect
from dataclasses import dataclass

from ..units import parse_size


@dataclass
class Workload:
    name: str
    fn: object
    doc: str
    report: object = None  # report(values, params) -> lines printed before the summary

    @property
    def params(self) -> dict:
        sig = inspect.signature(self.fn)
        return {k: p.default for k, p in list(sig.parameters.items())[1:] if p.default is not inspect.Parameter.empty}

    def parse_params(self, items: list[str]) -> dict:
        """['depth=16', 'budget=64MiB'] -> typed values, checked against the defaults."""
        known = self.params
        out = {}
        for item in items:
            key, eq, raw = item.partition("=")
            if not eq or not key:
                raise ValueError(f"bad parameter {item!r}: expected name=value")
            if key not in known:
                raise ValueError(f"workload {self.name} has no parameter {key!r} "
                                 f"(known: {', '.join(sorted(known)) or 'none'})")
            default = known[key]
            try:
                if isinstance(default, bool):
                    val = raw.lower() in ("1", "true", "yes", "on")
                elif isinstance(default, int):
                    val = parse_size(raw, key)
                elif isinstance(default, float):
                    val = float(raw)
                else:
                    val = raw
            except ValueError as e:
                raise ValueError(f"bad value for {key}: {e}") from None
            out[key] = val
        return out


REGISTRY: dict[str, Workload] = {}


def register(fn=None, *, report=None):
    def deco(f):
        name = f.__name__.replace("_", "-")
        REGISTRY[name] = Workload(name, f, inspect.getdoc(f) or "", report)
        return f
    return deco(fn) if fn is not None else deco


def get(name: str) -> Workload:
    _load()
    if name not in REGISTRY:
        raise KeyError(f"unknown workload {name!r}: known are {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name]


def all_workloads() -> dict[str, Workload]:
    _load()
    return dict(sorted(REGISTRY.items()))


def _load() -> None:
    from . import alloc, binary_trees, gcbench, graph  # noqa: F401
