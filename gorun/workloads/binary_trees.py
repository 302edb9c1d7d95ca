"""binary-trees, the benchmarks-game shape: a stretch tree, a long-lived tree, then many
short-lived trees of growing depth, each walked for a check count. The iterations of every
depth are split across the P's; P0 also builds the stretch and the long-lived trees. The
standard check lines are printed from the combined results."""

from __future__ import annotations

import sys

from ..types import PTR, struct
from . import Param, register

Node = struct("btNode", left=PTR, right=PTR)
MIN_DEPTH = 4


def bottom_up(g, depth: int):
    n = g.new(Node)
    if depth > 0:
        n.left = bottom_up(g, depth - 1)
        n.right = bottom_up(g, depth - 1)
    return n


def check(n) -> int:
    left = n.left
    if left is None:
        return 1
    return 1 + check(left) + check(n.right)


def _report(values: list, params: dict) -> list[str]:
    lines = []
    p0 = values[0]
    lines.append(f"stretch tree of depth {p0['stretch_depth']}\t check: {p0['stretch_check']}")
    depths = {}
    for v in values:
        for d, iters, chk in v["rows"]:
            a = depths.setdefault(d, [0, 0])
            a[0] += iters
            a[1] += chk
    for d in sorted(depths):
        lines.append(f"{depths[d][0]}\t trees of depth {d}\t check: {depths[d][1]}")
    lines.append(f"long lived tree of depth {p0['max_depth']}\t check: {p0['long_check']}")
    return lines


@register(report=_report, limits={"depth": Param("int", 0, 24)})
def binary_trees(g, depth: int = 14):
    """binary-trees: -p depth=N (benchmarks game: 21; default 14). Prints the standard check lines."""
    if depth < 0 or depth > 24:
        raise ValueError(f"depth {depth} out of range 0..24")
    max_depth = max(MIN_DEPTH + 2, depth)
    out = {"max_depth": max_depth, "stretch_depth": max_depth + 1, "rows": []}
    sys.setrecursionlimit(max(1000, 4 * max_depth + 100))
    if g.id == 0:
        out["stretch_check"] = check(bottom_up(g, max_depth + 1))
    long_lived = bottom_up(g, max_depth) if g.id == 0 else None
    for d in range(MIN_DEPTH, max_depth + 1, 2):
        iterations = 1 << (max_depth - d + MIN_DEPTH)
        mine = range(g.id, iterations, g.nprocs)
        chk = 0
        for _ in mine:
            chk += check(bottom_up(g, d))
        out["rows"].append((d, len(mine), chk))
        if g.expired():
            break
    if g.id == 0:
        out["long_check"] = check(long_lived)
    return out
