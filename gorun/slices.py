"""Go slices over gorun's arrays, and Go's append (runtime/slice.go's growslice rule).

A slice is Go's three words: a pointer to its first element, a length and a capacity. The
pointer is a handle to the backing array (a gorun array for []int, []float, []ptr and []*T, a
bytes object for []byte); when the slice starts after element 0 the handle is an interior
pointer (g.interior), which, as in Go, keeps the whole backing array alive.

    s = g.make_slice("int", 0)          # make([]int, 0): no allocation yet (Go's zerobase)
    for i in range(1000):
        s = g.append(s, i)              # grows as Go's append does: 1, 2, 4, ..., 512, 848, ...
    t = s[10:20]                        # shares s's backing array; t.cap == s.cap - 10

append grows the capacity by Go's rule (nextslicecap): twice the old capacity below 256
elements, then old + (old + 3*256) / 4 until it is enough, or exactly the needed length when
twice the old is not enough; then the allocation is rounded up to its size class and the
capacity fills it (roundupsize, with Go's 8-byte malloc header counted for pointer arrays over
512 bytes). The capacities are Go's exactly; gorun's allocation is 8 bytes more than Go's (its
object header, docs/design.md "Objects"), so it may land in the next size class up.
"""

from __future__ import annotations

from . import _gorun
from . import sizeclasses as sc
from .types import FLOAT, INT, PTR, array_tid

_C = _gorun.constants()
MALLOC_HEADER_SIZE = 8  # Go's type header on scan objects over MIN_SIZE_FOR_MALLOC_HEADER
MIN_SIZE_FOR_MALLOC_HEADER = 8 * 64  # goarch.PtrSize * ptrBits
GROW_THRESHOLD = 256  # nextslicecap's threshold between doubling and 1.25x
TINY_MAX_BYTES = _C["tiny_max_bytes"]  # gorun's tiny objects: a length byte and up to 14 bytes


def roundupsize(size: int, noscan: bool) -> int:
    """Go's roundupsize: the bytes a request of `size` really gets (its size class's size, minus
    the malloc header a pointerful object over 512 bytes carries; whole pages when large)."""
    req = size
    if req <= sc.MAX_SMALL_SIZE - MALLOC_HEADER_SIZE:
        if not noscan and req > MIN_SIZE_FOR_MALLOC_HEADER:
            req += MALLOC_HEADER_SIZE
        return sc.CLASS_TO_SIZE[sc.size_to_class(req)] - (req - size)
    return (req + sc.PAGE_SIZE - 1) // sc.PAGE_SIZE * sc.PAGE_SIZE


def nextslicecap(newlen: int, oldcap: int) -> int:
    """Go's nextslicecap: the capacity before rounding to the size class."""
    double = oldcap + oldcap
    if newlen > double:
        return newlen
    if oldcap < GROW_THRESHOLD:
        return double
    newcap = oldcap
    while newcap < newlen:
        newcap += (newcap + 3 * GROW_THRESHOLD) >> 2
    return newcap


def growslice_cap(newlen: int, oldcap: int, elemsize: int, noscan: bool) -> int:
    """The capacity Go's append gives a slice of `oldcap` that must hold `newlen` elements."""
    newcap = nextslicecap(newlen, oldcap)
    return roundupsize(newcap * elemsize, noscan) // elemsize


def _kind(elem):
    """(kind, elemsize, noscan) of a slice element: 'int', 'float', 'ptr', 'bytes' or a struct type."""
    if elem in ("bytes", "byte", "uint8"):
        return "bytes", 1, True
    if elem in ("int", "int64", INT):
        return "int", 8, True
    if elem in ("float", "float64", FLOAT):
        return "float", 8, True
    if elem in ("ptr", PTR) or hasattr(elem, "_gorun_fields"):
        return "ptr", 8, False
    raise TypeError(f"slice element must be 'int', 'float', 'ptr', 'bytes' or a gorun struct type, not {elem!r}")


class Slice:
    """A Go slice: (pointer to the first element, len, cap) over a gorun array or bytes object.

    len(s), s[i], s[i] = v, s.cap, s[a:b] (shares the backing array), iter(s), s.read() (a
    []byte's contents as bytes). A Slice is a value, as in Go: g.append returns a new one."""

    __slots__ = ("elem", "kind", "esize", "h", "off", "len", "cap")

    def __init__(self, elem, h, off: int, length: int, cap: int):
        self.elem = elem
        self.kind, self.esize, _ = _kind(elem)
        self.h, self.off, self.len, self.cap = h, off, length, cap

    @property
    def array(self):
        """The handle the slice holds (None for a capacity-0 slice that never allocated)."""
        return self.h

    def __len__(self) -> int:
        return self.len

    def _index(self, i: int) -> int:
        if i < 0:
            i += self.len
        if not 0 <= i < self.len:
            raise IndexError(f"index out of range [{i}] with length {self.len}")
        return self.off + i

    def __getitem__(self, i):
        if isinstance(i, slice):
            if i.step not in (None, 1):
                raise ValueError("Go slices have no step")
            return self.slice(i.start or 0, self.len if i.stop is None else i.stop)
        j = self._index(i)
        if self.kind == "bytes":
            return memoryview(self.h)[j]
        return self.h[j]

    def __setitem__(self, i: int, v) -> None:
        j = self._index(i)
        if self.kind == "bytes":
            memoryview(self.h)[j] = v
        else:
            self.h[j] = v

    def __iter__(self):
        if self.kind == "bytes":
            yield from self.read()
            return
        h, off = self.h, self.off
        for i in range(self.len):
            yield h[off + i]

    def read(self) -> bytes:
        """A []byte's elements as a bytes object (a copy)."""
        if self.kind != "bytes":
            raise TypeError("read() is for []byte slices")
        if self.len == 0:
            return b""
        return bytes(memoryview(self.h)[self.off : self.off + self.len])

    def slice(self, a: int, b: int, m: int | None = None) -> Slice:
        """Go's s[a:b] (and s[a:b:m]): shares the backing array. When the result starts after
        the backing array's first element and has room, its handle is an interior pointer."""
        m = self.cap if m is None else m
        if not (0 <= a <= b <= m <= self.cap):
            raise IndexError(f"slice bounds out of range [{a}:{b}:{m}] with capacity {self.cap}")
        cap = m - a
        h = self.h
        # Go does not advance the pointer past the end of a 0-cap result. A tiny []byte (at most
        # 14 bytes, packed with others in a 16-byte block) keeps its base handle: the block is
        # kept alive either way, and a handle knows a tiny object only by its first byte.
        if a > 0 and cap > 0 and not (self.kind == "bytes" and len(h) <= TINY_MAX_BYTES):
            h = _gorun.interior(h, (self.off + a) * self.esize)
        return Slice(self.elem, h, self.off + a if cap > 0 else self.off, b - a, cap)

    def __repr__(self) -> str:
        return f"<gorun []{self.kind} len={self.len} cap={self.cap}>"


def _alloc(elem, kind: str, cap: int):
    if cap == 0:
        return None  # Go's zerobase: a 0-byte allocation allocates nothing
    if kind == "bytes":
        return _gorun.new_bytes(cap)
    return _gorun.new_array(array_tid(elem), cap)


def make_slice(elem, length: int, cap: int | None = None) -> Slice:
    """Go's make([]T, len, cap): a zeroed backing array of exactly cap elements."""
    cap = length if cap is None else cap
    if not (0 <= length <= cap):
        raise ValueError(f"make_slice: len {length} and cap {cap} need 0 <= len <= cap")
    kind = _kind(elem)[0]
    return Slice(elem, _alloc(elem, kind, cap), 0, length, cap)


def _copy(dst, src_slice: Slice, n: int) -> None:
    if n == 0:
        return
    if src_slice.kind == "bytes":
        memoryview(dst)[:n] = memoryview(src_slice.h)[src_slice.off : src_slice.off + n]
    else:
        _gorun.array_copy(dst, 0, src_slice.h, src_slice.off, n)  # pointers: bulk write barrier


def append(s: Slice, *values) -> Slice:
    """Go's append(s, values...): the new slice. With room left it shares s's backing array;
    otherwise a new array of Go's grown capacity takes a copy and s's array is unchanged.
    For a []byte, values may also be one bytes-like object (Go's append(s, b...))."""
    if not isinstance(s, Slice):
        raise TypeError(f"append needs a gorun slice (g.make_slice), not {type(s).__name__}")
    if s.kind == "bytes" and len(values) == 1 and not isinstance(values[0], int):
        values = bytes(values[0])
    n = len(values)
    newlen = s.len + n
    if newlen <= s.cap:
        out = Slice(s.elem, s.h, s.off, newlen, s.cap)
    else:
        cap = growslice_cap(newlen, s.cap, s.esize, s.kind != "ptr")
        h = _alloc(s.elem, s.kind, cap)
        _copy(h, s, s.len)
        out = Slice(s.elem, h, 0, newlen, cap)
    if n:
        base = out.off + s.len
        if out.kind == "bytes":
            memoryview(out.h)[base : base + n] = bytes(values)
        else:
            h = out.h
            for i, v in enumerate(values):
                h[base + i] = v
    return out
