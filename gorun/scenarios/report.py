"""A scenario's outcome as text (the without/with table, the verdict, the note) and as JSON
(``"kind": "scenario"``, schema_version 1). Not a scenario: it defines no SCENARIO."""

from __future__ import annotations

import textwrap

from ..units import fmt_bytes
from . import Outcome, Scenario

SCHEMA_VERSION = 1


def fmt_value(v: float, unit: str) -> str:
    if unit == "bytes":
        return fmt_bytes(v) if abs(v) >= 1024 else f"{int(v)} B"
    if unit == "%":
        return f"{v:.1f}%"
    if float(v).is_integer():
        return f"{int(v):,} {unit}"
    return f"{v:,.3g} {unit}" if abs(v) < 100 else f"{v:,.0f} {unit}"


def text(o: Outcome) -> str:
    head = ("", "without", "with")
    cells = [(r.what, fmt_value(r.without, r.unit), fmt_value(r.with_, r.unit)) for r in o.rows]
    w = [max(len(c[i]) for c in [head, *cells]) for i in range(3)]
    lines = [f"{a:<{w[0]}}  {b:>{w[1]}}  {c:>{w[2]}}" for a, b, c in [head, *cells]]
    lines.append("")
    lines += textwrap.wrap(f"{'held' if o.held else 'did not hold'}: {o.verdict}", 100)
    if o.note:
        lines += textwrap.wrap(f"note: {o.note}", 100)
    return "\n".join(lines)


def to_dict(sc: Scenario, o: Outcome, small: bool) -> dict:
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "scenario",
        "name": sc.name,
        "title": sc.title,
        "claim": sc.claim,
        "source": sc.source,
        "small": small,
        "rows": [{"what": r.what, "without": r.without, "with": r.with_, "unit": r.unit} for r in o.rows],
        "held": o.held,
        "verdict": o.verdict,
        "note": o.note,
        "runs": o.runs,
    }
