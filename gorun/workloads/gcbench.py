"""GCBench, the shape of Boehm's benchmark: a stretch tree, a long-lived tree and a long-lived
array of doubles, then trees of growing depth built top-down (Populate) and bottom-up
(MakeTree). Depths are parameters (Boehm's: stretch 18, long-lived 16, array 500000, max 16);
the defaults are smaller for a Python mutator. Iterations of each depth are split across P's."""

from __future__ import annotations

from ..types import INT, PTR, struct
from . import Param, register


def _check(p: dict) -> str | None:
    if not p["min_depth"] <= p["max_depth"] <= p["stretch"]:
        return (
            f"need min_depth <= max_depth <= stretch (min_depth={p['min_depth']!r}, "
            f"max_depth={p['max_depth']!r}, stretch={p['stretch']!r})"
        )
    return None


GNode = struct("gcbNode", left=PTR, right=PTR, i=INT, j=INT)


def tree_size(i: int) -> int:
    return (1 << (i + 1)) - 1


def populate(g, depth: int, node) -> None:
    if depth <= 0:
        return
    depth -= 1
    node.left = g.new(GNode)
    node.right = g.new(GNode)
    populate(g, depth, node.left)
    populate(g, depth, node.right)


def make_tree(g, depth: int):
    n = g.new(GNode)
    if depth > 0:
        n.left = make_tree(g, depth - 1)
        n.right = make_tree(g, depth - 1)
    return n


def count(n) -> int:
    left = n.left
    return 1 if left is None else 1 + count(left) + count(n.right)


@register(
    limits={
        "stretch": Param("int", 1, 22),
        "long_lived": Param("int", 0, 22),
        "array": Param("int", 0, 1 << 28),
        "min_depth": Param("int", 1, 22),
        "max_depth": Param("int", 1, 22),
    },
    check=_check,
)
def gcbench(g, stretch: int = 14, long_lived: int = 12, array: int = 50000, min_depth: int = 4, max_depth: int = 12):
    """GCBench (Boehm's shape): -p stretch=18 -p long_lived=16 -p array=500000 -p max_depth=16 for the original."""
    if not 0 < min_depth <= max_depth <= stretch <= 22 or long_lived > 22 or array < 0:
        raise ValueError("need 0 < min_depth <= max_depth <= stretch <= 22, long_lived <= 22, array >= 0")
    out = {"rows": []}
    if g.id == 0:
        out["stretch_nodes"] = count(make_tree(g, stretch))
    ll = g.new(GNode)
    populate(g, long_lived, ll)
    arr = g.new_array("float", array)
    for i in range(array // 2):
        arr[i] = 1.0 / (i + 1)
    for d in range(min_depth, max_depth + 1, 2):
        iters = 2 * tree_size(stretch) // tree_size(d)
        mine = range(g.id, iters, g.nprocs)
        for _ in mine:  # top-down
            t = g.new(GNode)
            populate(g, d, t)
        for _ in mine:  # bottom-up
            make_tree(g, d)
        out["rows"].append((d, len(mine)))
        if g.expired():
            break
    if count(ll) != tree_size(long_lived) or (array > 1000 and arr[1000] != 1.0 / 1001):
        raise AssertionError("gcbench: the long-lived data was damaged")
    out["long_lived_nodes"] = count(ll)
    return out
