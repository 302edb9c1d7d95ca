"""Go's field kinds and struct layout (gorun.struct), and Go slices with Go's append
(gorun/slices.py), run in real worker processes over the shared heap.

The expected layouts and capacities are computed here from Go's rules (amd64: a scalar's
alignment is its size, a pointer's 8, [N]byte's 1; growslice's nextslicecap and roundupsize over
the size-class table of gorun/sizeclasses.py), never by calling the code under test.
"""

from __future__ import annotations

import math
import struct as pystruct

import pytest

import gorun
from gorun import _gorun
from gorun import sizeclasses as sc

HEADER = _gorun.constants()["obj_header_size"]

# ------------------------------------------------------------------ Go's rules, written out here

GO_SIZE = {  # unsafe.Sizeof on amd64; Alignof is the same for every scalar
    "bool": 1, "int8": 1, "uint8": 1, "int16": 2, "uint16": 2, "int32": 4, "uint32": 4,
    "float32": 4, "int64": 8, "uint64": 8, "float64": 8, "ptr": 8,
}  # fmt: skip


def go_layout(fields):
    """(size, align, offsets) of a Go struct whose fields are (name, kind) with kind a key of
    GO_SIZE or '[N]byte', as Go's compiler lays it out on amd64."""
    off, align, offsets = 0, 1, {}
    for name, kind in fields:
        if kind.startswith("["):
            fsize, falign = int(kind[1 : kind.index("]")]), 1
        else:
            fsize = falign = GO_SIZE[kind]
        off = -(-off // falign) * falign
        offsets[name] = off
        off += fsize
        align = max(align, falign)
    return -(-off // align) * align, align, offsets


LAYOUTS = [
    ("LayBad", [("a", "bool"), ("b", "int64"), ("c", "bool")], 24),  # seed-claims #4
    ("LayGood", [("b", "int64"), ("a", "bool"), ("c", "bool")], 16),
    ("LaySmall", [("a", "bool"), ("b", "int16"), ("c", "int8"), ("d", "int32")], 12),
    ("LayMixed", [("a", "int8"), ("p", "ptr"), ("f", "float32"), ("u", "uint16"), ("q", "ptr")], 32),
    ("LayBytes", [("a", "bool"), ("buf", "[3]byte"), ("n", "uint32"), ("tail", "[5]byte")], 16),
    ("LayOne", [("a", "bool")], 1),
    ("LayTwo", [("a", "uint8"), ("b", "uint16"), ("c", "uint8")], 6),
    ("LayWide", [("x", "float64"), ("y", "float32"), ("z", "int8"), ("p", "ptr"), ("w", "[17]byte")], 48),
    ("LayU64", [("a", "uint32"), ("b", "uint64"), ("c", "int32"), ("d", "float32"), ("e", "bool")], 32),
]


@pytest.mark.parametrize("name,fields,go_size", LAYOUTS, ids=[t[0] for t in LAYOUTS])
def test_struct_layout_equals_gos(name, fields, go_size):
    size, align, offsets = go_layout(fields)
    assert size == go_size  # the rule above agrees with the figure known from Go
    T = gorun.struct(name, **dict(fields))
    assert (T.size, T.align) == (size, align)
    assert {f: T.offsetof(f) for f, _ in fields} == offsets
    ptr_words = {offsets[f] // 8 for f, k in fields if k == "ptr"}
    assert {i for i in range(64) if T._gorun_mask >> i & 1} == ptr_words
    with pytest.raises(AttributeError):
        T.offsetof("nope")


def test_kind_constants_and_names_agree():
    for k, C in [("bool", gorun.BOOL), ("int8", gorun.INT8), ("int16", gorun.INT16), ("int32", gorun.INT32),
                 ("int64", gorun.INT64), ("uint8", gorun.UINT8), ("uint16", gorun.UINT16),
                 ("uint32", gorun.UINT32), ("uint64", gorun.UINT64), ("float32", gorun.FLOAT32),
                 ("float64", gorun.FLOAT64), ("ptr", gorun.PTR)]:  # fmt: skip
        assert (C.nbytes, C.align) == (GO_SIZE[k], GO_SIZE[k]), k
    assert gorun.INT is gorun.INT64 and gorun.FLOAT is gorun.FLOAT64
    assert (gorun.BYTES(16).nbytes, gorun.BYTES(16).align) == (16, 1)
    A = gorun.struct("LayNames", a="bool", b="[16]byte", c="uint64")
    B = gorun.struct("LayConsts", a=gorun.BOOL, b=gorun.BYTES(16), c=gorun.UINT64)
    assert A.layout() == B.layout() == [("a", "BOOL", 0, 1), ("b", "BYTES(16)", 1, 16), ("c", "UINT64", 24, 8)]
    with pytest.raises(ValueError, match="unknown kind"):
        gorun.struct("LayBadKind", a="int128")
    with pytest.raises(ValueError, match="unknown kind"):
        gorun.struct("LayBadBytes", a="[0]byte")


def test_field_named_size_does_not_hide_the_types_answers():
    T = gorun.struct("LaySizeField", size="int32", align="bool", offsetof="uint8", layout="int16")
    assert (T.size, T.align, T.offsetof("align"), T.offsetof("offsetof"), T.offsetof("layout")) == (8, 4, 4, 5, 6)
    assert [f[0] for f in T.layout()] == ["size", "align", "offsetof", "layout"]

    def work(g):
        x = g.new(T)
        x.size, x.align, x.offsetof, x.layout = 7, True, 255, -2
        return x.size, x.align, x.offsetof, x.layout

    assert gorun.Runtime(procs=1).run(work).values[0] == (7, True, 255, -2)


Kinds = gorun.struct(
    "LayKinds",
    b=gorun.BOOL, i8=gorun.INT8, i16=gorun.INT16, i32=gorun.INT32, i64=gorun.INT64,
    u8=gorun.UINT8, u16=gorun.UINT16, u32=gorun.UINT32, u64=gorun.UINT64,
    f32=gorun.FLOAT32, f64=gorun.FLOAT64, p=gorun.PTR, raw=gorun.BYTES(3), b2=gorun.BOOL,
)  # fmt: skip
RANGES = {
    "i8": (-(2**7), 2**7 - 1), "i16": (-(2**15), 2**15 - 1), "i32": (-(2**31), 2**31 - 1),
    "i64": (-(2**63), 2**63 - 1), "u8": (0, 2**8 - 1), "u16": (0, 2**16 - 1), "u32": (0, 2**32 - 1),
    "u64": (0, 2**64 - 1),
}  # fmt: skip


def _kinds_work(g):
    x = g.new(Kinds)
    names = [f for f, _ in Kinds._gorun_fields]
    zero = {f: getattr(x, f) for f in names}
    assert zero == dict(
        b=False, i8=0, i16=0, i32=0, i64=0, u8=0, u16=0, u32=0, u64=0, f32=0.0, f64=0.0, p=None, raw=b"\0\0\0", b2=False
    )
    # every in-range value round-trips, and writing one field leaves its neighbours alone
    for f, (lo, hi) in RANGES.items():
        for v in (lo, hi, 0, 1, lo // 3, hi // 3):
            before = {n: getattr(x, n) for n in names if n != f}
            setattr(x, f, v)
            assert getattr(x, f) == v
            assert {n: getattr(x, n) for n in names if n != f} == before, f
        for v in (lo - 1, hi + 1):
            with pytest.raises(OverflowError):
                setattr(x, f, v)
            assert getattr(x, f) == hi // 3  # a refused store leaves the field as it was
        with pytest.raises(TypeError):
            setattr(x, f, 1.5)
    for v in (True, False, True):
        x.b = v
        assert x.b is v and x.b2 is False
    with pytest.raises(TypeError):
        x.b = 1
    for v in (0.0, 1.5, -2.25, 1e-45, 3.4028234663852886e38, math.inf, -math.inf, 0.1, 1e39, -1e39):
        x.f32 = v
        want = pystruct.unpack("f", pystruct.pack("f", v))[0] if abs(v) < 3.5e38 else math.copysign(math.inf, v)
        assert x.f32 == want, v  # Go's float32(v): nearest float32, +-Inf past the range
    x.f32 = math.nan
    assert math.isnan(x.f32)
    for v in (0.1, -5e-324, 1.7976931348623157e308):
        x.f64 = v
        assert x.f64 == v
    other = g.new(Kinds)
    other.i64 = 99
    x.p = other
    assert x.p.i64 == 99
    x.raw = b"ab"
    assert x.raw == b"ab\0" and x.b2 is False
    return True


def test_every_kind_round_trips():
    assert gorun.Runtime(procs=1).run(_kinds_work).values == [True]


def test_size_class_follows_the_padded_size():
    Bad = gorun.struct("LayClassBad", a="bool", b="int64", c="bool")  # 24 B + 8 B header = 32 B
    Good = gorun.struct("LayClassGood", b="int64", a="bool", c="bool")  # 16 B + 8 B header = 24 B
    cls_bad = sc.size_to_class(8 + 24)
    cls_good = sc.size_to_class(8 + 16)
    assert (sc.CLASS_TO_SIZE[cls_bad], sc.CLASS_TO_SIZE[cls_good]) == (32, 24)

    def work(g, n):
        out = {}
        keep = []
        for T in (Bad, Good):
            before = [b.Mallocs for b in g.read_mem_stats().BySize]
            h0 = g.read_mem_stats().HeapAlloc
            keep += [g.new(T) for _ in range(n)]
            after = [b.Mallocs for b in g.read_mem_stats().BySize]
            out[T.__name__] = ([a - b for a, b in zip(after, before)], g.read_mem_stats().HeapAlloc - h0)
        return out

    n = 3000
    out = gorun.Runtime(procs=1).run(work, n=n).values[0]
    for name, cls in (("LayClassBad", cls_bad), ("LayClassGood", cls_good)):
        deltas, heap = out[name]
        assert deltas[cls] == n and sum(deltas) == n, name
        # HeapAlloc counts a span cached by the P as in use (Go's rule): within one span
        span = sc.CLASS_TO_NPAGES[cls] * sc.PAGE_SIZE
        assert abs(heap - n * sc.CLASS_TO_SIZE[cls]) < span, name


Holder = gorun.struct("LayHolder", flag=gorun.BOOL, small=gorun.INT16, p=gorun.PTR, tag=gorun.UINT8, q=gorun.PTR)
Leaf = gorun.struct("LayLeaf", v=gorun.INT32, ok=gorun.BOOL)


def test_pointers_among_small_fields_are_marked():
    """Pointers placed after sub-word fields are still found by the marker: leaves reachable
    only through them survive cycles with garbage churning around them."""
    assert Holder.offsetof("p") == 8 and Holder.offsetof("q") == 24

    def work(g, n):
        hs = []
        for i in range(n):
            h = g.new(Holder)
            h.flag, h.small, h.tag = True, -i, i & 0xFF
            h.p = g.new(Leaf)
            h.p.v, h.p.ok = i, True
            h.q = g.new(Leaf)
            h.q.v = -i
            hs.append(h)
        for _ in range(3):
            junk = [g.new(Leaf) for _ in range(20000)]  # fills freed slots if a leaf was freed
            for j in junk:
                j.v = 12345
            del junk
            g.gc()
        return all(h.p.v == i and h.p.ok and h.q.v == -i and h.small == -i for i, h in enumerate(hs))

    assert gorun.Runtime(procs=1).run(work, n=2000).values == [True]


# ------------------------------------------------------------------ slices and Go's append


def go_roundupsize(size, noscan):
    """Go's roundupsize (malloc header of 8 B on pointerful objects over 512 B)."""
    req = size + (8 if not noscan and 512 < size <= sc.MAX_SMALL_SIZE - 8 else 0)
    if size <= sc.MAX_SMALL_SIZE - 8:
        c = next(i for i in range(1, sc.NUM_SIZE_CLASSES) if sc.CLASS_TO_SIZE[i] >= req)
        return sc.CLASS_TO_SIZE[c] - (req - size)
    return -(-size // sc.PAGE_SIZE) * sc.PAGE_SIZE


def go_caps(n, elemsize, noscan):
    """The capacities a slice goes through when n values are appended one at a time from empty."""
    caps, cap = [], 0
    for newlen in range(1, n + 1):
        if newlen <= cap:
            continue
        if newlen > 2 * cap:
            newcap = newlen
        elif cap < 256:
            newcap = 2 * cap
        else:
            newcap = cap
            while newcap < newlen:
                newcap += (newcap + 768) // 4
        cap = go_roundupsize(newcap * elemsize, noscan) // elemsize
        caps.append(cap)
    return caps


def test_go_caps_rule_matches_known_go_figures():
    # what `append` prints in Go 1.22+ on amd64 for []int and []*T from empty
    assert go_caps(1300, 8, True)[:12] == [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 848, 1280]
    assert go_caps(200, 8, False)[:8] == [1, 2, 4, 8, 16, 32, 64, 143]
    assert go_caps(100, 1, True)[:5] == [8, 16, 32, 64, 128]


def _caps_work(g, n, elem):
    s = g.make_slice(elem, 0)
    assert s.cap == 0 and s.array is None  # make([]T, 0) allocates nothing
    caps = []
    for i in range(n):
        old = s
        s = g.append(s, i if elem == "int" else (None if i % 3 else old.array))
        if s.cap != old.cap:
            caps.append(s.cap)
            # grown: a new backing array; the old one is unchanged and still old's length
            assert old.len == i and (old.array is None or old.array != s.array)
        else:
            assert s.array == old.array  # room left: the same backing array
    if elem == "int":
        assert list(s) == list(range(n))
    return caps


@pytest.mark.parametrize("elem,noscan", [("int", True), ("ptr", False)])
def test_append_capacities_equal_gos(elem, noscan):
    n = 3000
    caps = gorun.Runtime(procs=1).run(_caps_work, n=n, elem=elem).values[0]
    assert caps == go_caps(n, 8, noscan)


def test_append_many_bytes_and_struct_pointers():
    Item = gorun.struct("LayItem", id=gorun.INT32)

    def work(g):
        s = g.make_slice("bytes", 0)
        s = g.append(s, b"hello")
        assert (s.len, s.cap, s.read()) == (5, 8, b"hello")  # roundupsize(5) = 8
        s = g.append(s, *b" world, and more")
        assert s.read() == b"hello world, and more" and s.cap == 24  # 21 > 2*8: newcap 21, class 24
        t = g.make_slice(Item, 2, 5)
        x = g.new(Item)
        x.id = 7
        t[1] = x
        u = g.append(t, x, x)  # room: shares t's array
        assert (u.len, u.cap, u.array == t.array) == (4, 5, True)
        assert t[1].id == 7 and u[3].id == 7 and t.len == 2
        w = g.append(u, *[x] * 10)  # 14 > 2*5: newcap = 14, rounded: 14*8 = 112 B -> 112
        assert (w.len, w.cap) == (14, 14) and all(e is None or e.id == 7 for e in w)
        return True

    assert gorun.Runtime(procs=1).run(work).values == [True]


def test_slice_expressions_share_the_backing_array():
    def work(g):
        s = g.make_slice("int", 10, 16)
        for i in range(10):
            s[i] = i * i
        t = s[3:7]
        assert (t.len, t.cap, list(t)) == (4, 13, [9, 16, 25, 36])
        assert t.array.addr == s.array.addr + HEADER + 3 * 8  # an interior pointer to s[3]
        t[0] = -1
        assert s[3] == -1
        u = g.append(t, 100)  # room in the shared array: overwrites s[7], as Go's append does
        assert s[7] == 100 and u.array.addr == t.array.addr
        e = s[16:16]
        assert (e.len, e.cap) == (0, 0)
        with pytest.raises(IndexError):
            s[10]
        with pytest.raises(IndexError):
            s[2:17]
        assert s[-1] == 81
        return True

    assert gorun.Runtime(procs=1).run(work).values == [True]


def test_interior_pointer_keeps_the_whole_array_alive():
    """A 10-byte subslice of a 1 MiB []byte keeps the whole MiB live across a cycle; a copy
    of the 10 bytes does not (seed-claims #7, at a small size)."""

    def work(g, size):
        def live_after_gc():
            g.gc()
            return g.read_mem_stats().HeapAlloc

        base = live_after_gc()
        buf = g.make_slice("bytes", size)
        buf.array.write(b"0123456789" * 3)
        keep = buf[5:15]
        del buf
        kept = live_after_gc() - base
        data = keep.read()
        copy = g.append(g.make_slice("bytes", 0, 10), data)
        del keep
        copied = live_after_gc() - base
        return kept, copied, data, copy.read()

    size = 1 << 20
    kept, copied, data, c = gorun.Runtime(procs=1).run(work, size=size).values[0]
    assert data == c == b"5678901234"
    assert kept >= size and copied < 4096
