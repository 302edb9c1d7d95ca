"""graph: P's mutate one random object graph through shared globals, and verify it.

Every node carries its id and a checksum of it, and a noscan blob (tiny or small) holding its
id's bytes; some nodes hold a []*node array. Each step allocates, links, unlinks, publishes a
node to a random global, takes one from a global, or drops a handle. Every `verify_every`
steps the P walks everything reachable from its handles and from all globals and checks every
object it meets: a node, blob or array that the GC freed and the allocator reused would show a
wrong type, id, checksum or content. With GODEBUG=gccheckmark=1 and a small GOGC this is the
torture test of the GC."""

from __future__ import annotations

from ..types import INT, PTR, struct
from . import Param, register

GraphNode = struct("graphNode", id=INT, check=INT, e0=PTR, e1=PTR, e2=PTR, blob=PTR)
MASK = (1 << 63) - 1


def checksum(i: int) -> int:
    return (i * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019) & MASK


def blob_bytes(i: int, n: int) -> bytes:
    b = i.to_bytes(8, "little")
    return (b * (n // 8 + 1))[:n]


class GraphError(AssertionError):
    pass


def verify_node(n) -> None:
    if type(n) is not GraphNode:
        raise GraphError(f"graph: expected a graphNode at {n.addr:#x}, found {n.type_name}")
    i = n.id
    if n.check != checksum(i):
        raise GraphError(f"graph: node {i} at {n.addr:#x} has a bad checksum {n.check:#x}")
    b = n.blob
    if b is None or len(b) == 0 or bytes(b) != blob_bytes(i, len(b)):
        raise GraphError(f"graph: node {i} at {n.addr:#x} has a damaged blob {None if b is None else bytes(b)!r}")


def walk(g, roots: list, limit: int) -> int:
    """Verify everything reachable from roots (up to limit objects). Returns objects checked."""
    seen = set()
    stack = [r for r in roots if r is not None]
    checked = 0
    while stack and checked < limit:
        n = stack.pop()
        if n.addr in seen:
            continue
        seen.add(n.addr)
        checked += 1
        if n.type_name.startswith("[]"):
            for k in range(len(n)):
                e = n[k]
                if e is not None:
                    stack.append(e)
            continue
        verify_node(n)
        for e in (n.e0, n.e1, n.e2):
            if e is not None:
                stack.append(e)
    return checked


@register(
    limits={
        "steps": Param("int", 0, 1 << 40),
        "live": Param("int", 0, 1 << 20),
        "nglobals": Param("int", 1, 1 << 24),
        "verify_every": Param("int", 0, 1 << 40),
        "walk_limit": Param("int", 0, 1 << 40),
        "gc_every": Param("int", 0, 1 << 40),
    }
)
def graph(
    g,
    steps: int = 200000,
    live: int = 64,
    nglobals: int = 64,
    verify_every: int = 5000,
    walk_limit: int = 100000,
    gc_every: int = 0,
):
    """Random graph mutation across P's through globals, verified by walks. -p steps=N."""
    nglobals = min(nglobals, len(g.globals))
    rnd = g.random
    local: list = []
    seq = 0
    stats = {
        "allocs": 0,
        "links": 0,
        "unlinks": 0,
        "publish": 0,
        "take": 0,
        "drops": 0,
        "walks": 0,
        "checked": 0,
        "gcs": 0,
    }

    def new_node():
        nonlocal seq
        seq += 1
        i = (g.id << 40) | seq
        n = g.new(GraphNode)
        n.id = i
        n.check = checksum(i)
        n.blob = g.new_bytes(blob_bytes(i, rnd.choice((3, 7, 13, 24, 40, 100))))
        if rnd.random() < 0.05:
            arr = g.new_array(GraphNode, rnd.randint(1, 8))
            for k in range(len(arr)):
                if local and rnd.random() < 0.7:
                    arr[k] = rnd.choice(local)
            n.e2 = arr
        stats["allocs"] += 1
        return n

    for step in range(steps):
        r = rnd.random()
        if r < 0.30 or len(local) < 4:
            local.append(new_node())
        elif r < 0.50:
            x = rnd.choice(local)
            y = rnd.choice(local)
            if rnd.random() < 0.5:
                x.e0 = y
            else:
                x.e1 = y
            stats["links"] += 1
        elif r < 0.60:
            x = rnd.choice(local)
            x.e0 = None
            stats["unlinks"] += 1
        elif r < 0.75:
            g.globals[rnd.randrange(nglobals)] = rnd.choice(local)
            stats["publish"] += 1
        elif r < 0.88:
            h = g.globals[rnd.randrange(nglobals)]
            if h is not None:
                if h.type_name != "graphNode":
                    raise GraphError(f"graph: global holds a {h.type_name}")
                verify_node(h)
                local.append(h)
            stats["take"] += 1
        else:
            local.pop(rnd.randrange(len(local)))
            stats["drops"] += 1
        while len(local) > live:
            local.pop(rnd.randrange(len(local)))
        if verify_every and step % verify_every == verify_every - 1:
            roots = local + [g.globals[k] for k in range(nglobals)]
            stats["checked"] += walk(g, roots, walk_limit)
            stats["walks"] += 1
        if gc_every and step % gc_every == gc_every - 1:
            g.gc()
            stats["gcs"] += 1
        if step % 1024 == 0 and g.expired():
            break
    stats["checked"] += walk(g, local + [g.globals[k] for k in range(nglobals)], walk_limit)
    stats["walks"] += 1
    return stats
