"""g.new(T) against a Python __slots__ class with the same fields, in one worker process.

T = gorun.struct(left=PTR, right=PTR, val=INT); the Python class has __slots__ for the same three
fields and an __init__ that sets them to None, None, 0 (what g.new's zeroed object holds). Both
loops keep the last 64 objects in a ring, so CPython frees them as real code would (the handle's
root slot is recycled; the heap object stays, there is no GC yet). Cases are interleaved and
repeated; the figure is the median ns per object. Also: g.new_bytes(8) (tiny) and (100) (small
noscan) against bytearray, and field get/set on handles against slot attributes.

Target (issue 2): g.new(T) / slots-class instance <= 1.5.

    python3 bench/bench_new.py [--quick]
"""

from __future__ import annotations

import resource
import sys

from common import FLOORS, gorun, header, interleaved, parse_args, ratio, table, wait_quiet, write_json

T = gorun.struct("BenchNewT", left=gorun.PTR, right=gorun.PTR, val=gorun.INT)


class Slots:
    __slots__ = ("left", "right", "val")

    def __init__(self):
        self.left = None
        self.right = None
        self.val = 0


RING = 64  # objects kept alive; a power of two so the index is i & MASK
MASK = RING - 1


def workload(g, n: int, repeats: int) -> dict:
    """Runs in the single worker (P0). Returns {case: {ns_per_op, samples}} and fault counts."""
    new, new_bytes = g.new, g.new_bytes

    # ---- allocation: ring[i & MASK] = <new object> ----
    def a_loop(n):
        ring = [None] * RING
        for i in range(n):
            ring[i & MASK] = None

    def a_new(n):
        ring = [None] * RING
        for i in range(n):
            ring[i & MASK] = new(T)

    def a_slots(n):
        ring = [None] * RING
        for i in range(n):
            ring[i & MASK] = Slots()

    def a_bytes8(n):
        ring = [None] * RING
        for i in range(n):
            ring[i & MASK] = new_bytes(8)

    def a_bytearray8(n):
        ring = [None] * RING
        for i in range(n):
            ring[i & MASK] = bytearray(8)

    def a_bytes100(n):
        ring = [None] * RING
        for i in range(n):
            ring[i & MASK] = new_bytes(100)

    def a_bytearray100(n):
        ring = [None] * RING
        for i in range(n):
            ring[i & MASK] = bytearray(100)

    # ---- fields ----
    h, h2 = new(T), new(T)
    s, s2 = Slots(), Slots()
    h.left, s.left = h2, s2

    def f_loop(n):
        for i in range(n):
            pass

    def f_h_int_set(n):
        for i in range(n):
            h.val = i

    def f_s_int_set(n):
        for i in range(n):
            s.val = i

    def f_h_int_get(n):
        for i in range(n):
            h.val

    def f_s_int_get(n):
        for i in range(n):
            s.val

    def f_h_ptr_set(n):
        for i in range(n):
            h.right = h2

    def f_s_ptr_set(n):
        for i in range(n):
            s.right = s2

    def f_h_ptr_get(n):  # makes a new handle (a root slot) each time, dropped at once
        for i in range(n):
            h.left

    def f_s_ptr_get(n):
        for i in range(n):
            s.left

    out = {}
    out["alloc"] = interleaved(
        {
            "loop": a_loop,
            "new_T": a_new,
            "slots_T": a_slots,
            "new_bytes8": a_bytes8,
            "bytearray8": a_bytearray8,
            "new_bytes100": a_bytes100,
            "bytearray100": a_bytearray100,
        },
        n,
        repeats,
    )
    out["fields"] = interleaved(
        {
            "loop": f_loop,
            "h_int_set": f_h_int_set,
            "s_int_set": f_s_int_set,
            "h_int_get": f_h_int_get,
            "s_int_get": f_s_int_get,
            "h_ptr_set": f_h_ptr_set,
            "s_ptr_set": f_s_ptr_set,
            "h_ptr_get": f_h_ptr_get,
            "s_ptr_get": f_s_ptr_get,
        },
        n,
        repeats,
    )

    # Minor page faults per object: the arena is fresh shared memory and nothing is reused
    # before the GC exists, so every new page of objects is a first touch.
    faults = {}
    for name, fn in (("new_T", a_new), ("slots_T", a_slots), ("new_bytes8", a_bytes8), ("new_bytes100", a_bytes100)):
        f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        fn(n)
        faults[name] = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / n
    out["faults_per_obj"] = faults
    h = h2 = None  # drop the handles (and their root slots) before the run ends
    return out


def main(argv=None) -> dict:
    args = parse_args(__doc__.splitlines()[0], argv)
    n, repeats = (20_000, 3) if args.quick else (200_000, 7)
    header("bench_new: g.new(T) vs a __slots__ class, one worker (procs=1)", args.quick)
    print(f"{n:,} objects per loop, {repeats} interleaved repeats, median; ring of {RING} live objects")
    quiet = wait_quiet(timeout=args.wait)
    rt = gorun.Runtime(procs=1)
    res = rt.run(workload, n=n, repeats=repeats)
    w = res.values[0]
    al, fl, faults = w["alloc"], w["fields"], w["faults_per_obj"]
    aloop, floop = al["loop"]["ns_per_op"], fl["loop"]["ns_per_op"]

    def row(label, a, b, base, fa=None, fb=None, net_ratio=True):
        x, y = a["ns_per_op"], b["ns_per_op"]
        cells = [label, f"{x:.0f}", f"{y:.0f}", f"{ratio(x, y):.2f}", f"{x - base:.0f}", f"{y - base:.0f}"]
        if net_ratio:
            cells.append(f"{ratio(x - base, y - base):.2f}")
        if fa is not None:
            cells.append(f"{fa * 1000:.1f} / {fb * 1000:.1f}")
        return cells

    rows = [
        row("g.new(T) vs Slots()", al["new_T"], al["slots_T"], aloop, faults["new_T"], faults["slots_T"]),
        row("new_bytes(8) vs bytearray(8)", al["new_bytes8"], al["bytearray8"], aloop, faults["new_bytes8"], 0.0),
        row(
            "new_bytes(100) vs bytearray(100)",
            al["new_bytes100"],
            al["bytearray100"],
            aloop,
            faults["new_bytes100"],
            0.0,
        ),
    ]
    print()
    print(
        table(
            [
                "allocation (ns/object)",
                "gorun",
                "python",
                "ratio",
                "gorun net",
                "python net",
                "net ratio",
                "faults/1k obj",
            ],
            rows,
        )
    )
    print(f"loop overhead (ring[i & 63] = None): {aloop:.0f} ns; 'net' subtracts it")

    frows = [
        row("int field set  h.val = i", fl["h_int_set"], fl["s_int_set"], floop, net_ratio=False),
        row("int field get  h.val", fl["h_int_get"], fl["s_int_get"], floop, net_ratio=False),
        row("ptr field set  h.right = h2 (barrier)", fl["h_ptr_set"], fl["s_ptr_set"], floop, net_ratio=False),
        row("ptr field get  h.left (new handle)", fl["h_ptr_get"], fl["s_ptr_get"], floop, net_ratio=False),
    ]
    print()
    print(table(["field access (ns/op)", "handle", "slots", "ratio", "handle net", "slots net"], frows))
    print(
        f"loop overhead (for i in range(n): pass): {floop:.0f} ns; a slot access is a few ns over it, so no "
        "net ratio (noise)"
    )

    r_new = ratio(al["new_T"]["ns_per_op"], al["slots_T"]["ns_per_op"])
    r_net = ratio(al["new_T"]["ns_per_op"] - aloop, al["slots_T"]["ns_per_op"] - aloop)
    fault_ns = faults["new_T"] * FLOORS["first_touch_us"] * 1000
    print()
    print(
        f"g.new(T) / Slots(): {r_new:.2f} with the loop, {r_net:.2f} net of it  (target <= 1.5: "
        f"{'met' if r_new <= 1.5 else 'NOT met'})"
    )
    print(
        f"first-touch page faults: {faults['new_T'] * 1000:.1f} per 1k g.new(T) "
        f"(~{fault_ns:.0f} ns/object at the {FLOORS['first_touch_us']} us floor), "
        f"{faults['new_bytes100'] * 1000:.1f} per 1k new_bytes(100) "
        f"(~{faults['new_bytes100'] * FLOORS['first_touch_us'] * 1000:.0f} ns/object)"
    )
    print(
        f"floors: Python->C call {FLOORS['py_c_call_ns']} ns, handle create+free "
        f"{FLOORS['handle_create_free_ns']} ns, bump alloc in shm {FLOORS['bump_alloc_ns']} ns"
    )

    data = {
        "n": n,
        "repeats": repeats,
        "alloc": al,
        "fields": fl,
        "faults_per_obj": faults,
        "ratio_new_vs_slots": r_new,
        "ratio_new_vs_slots_net": r_net,
        "target_ratio": 1.5,
        "mcentral_acquisitions": res.to_dict()["locks"]["mcentral"]["acquisitions"],
        "machine": quiet,
    }
    write_json("bench_new", data, args.quick)
    return data


if __name__ == "__main__":
    main(sys.argv[1:])
