"""Declared heap types: structs with Go's field kinds laid out as Go lays them out, and arrays.

A struct type is a Python subclass of the C ``Handle`` whose fields are C descriptors, so a
field read or write is one C call and every pointer store goes through the write barrier.
Fields are placed as Go's compiler places them on amd64: in declaration order, each at the next
multiple of its alignment (a scalar's alignment is its size, a pointer's 8, [N]byte's 1); the
struct's alignment is its largest field's, and its size is rounded up to it. The type answers
Go's unsafe questions: ``T.size``, ``T.align``, ``T.offsetof("f")``. Pointers are 8-aligned, so
the layout goes into the shared type table as a mask of 8-byte words, from which the marker
knows exactly which words are pointers (docs/design.md "Objects").

    Node = gorun.struct("Node", left=gorun.PTR, right=gorun.PTR, val=gorun.INT)
    Bad = gorun.struct("Bad", a=gorun.BOOL, b=gorun.INT64, c=gorun.BOOL)   # Bad.size == 24
"""

from __future__ import annotations

import re

from . import _gorun

_C = _gorun.constants()  # one source for every constant: the C core (native/runtime.h)
FK_PTR, FK_INT, FK_FLOAT, FK_BYTES = (_C["field_kinds"][k] for k in ("ptr", "int", "float", "bytes"))
TK_STRUCT, TK_ARRAY, TK_BYTES = (_C["type_kinds"][k] for k in ("struct", "array", "bytes"))
TID_BYTES, TID_INT_ARRAY, TID_FLOAT_ARRAY, TID_PTR_ARRAY = (
    _C["type_ids"][k] for k in ("bytes", "int_array", "float_array", "ptr_array")
)


class FieldKind:
    """A field's Go type: its kind number in the C core, its size and its alignment."""

    def __init__(self, kind: int, nbytes: int, name: str, align: int | None = None):
        self.kind, self.nbytes, self.name = kind, nbytes, name
        self.align = nbytes if align is None else align

    def __repr__(self) -> str:
        return self.name


def _scalar(cname: str, name: str) -> FieldKind:
    return FieldKind(_C["field_kinds"][cname], _C["field_kind_sizes"][cname], name)


PTR = _scalar("ptr", "PTR")
INT = INT64 = _scalar("int", "INT")  # Go's int is int64 on amd64
FLOAT = FLOAT64 = _scalar("float", "FLOAT")
BOOL = _scalar("bool", "BOOL")
INT8, INT16, INT32 = (_scalar(k, k.upper()) for k in ("int8", "int16", "int32"))
UINT8, UINT16, UINT32, UINT64 = (_scalar(k, k.upper()) for k in ("uint8", "uint16", "uint32", "uint64"))
FLOAT32 = _scalar("float32", "FLOAT32")


def BYTES(n: int) -> FieldKind:
    """An inline byte array of n bytes (a Go [n]byte field: size n, alignment 1)."""
    if not isinstance(n, int) or isinstance(n, bool) or n <= 0:
        raise ValueError(f"BYTES(n) needs a positive size, got {n!r}")
    return FieldKind(FK_BYTES, n, f"BYTES({n})", align=1)


_KINDS = {
    "ptr": PTR,
    "int": INT,
    "float": FLOAT,
    "bool": BOOL,
    "int8": INT8,
    "int16": INT16,
    "int32": INT32,
    "int64": INT64,
    "uint8": UINT8,
    "uint16": UINT16,
    "uint32": UINT32,
    "uint64": UINT64,
    "uint": UINT64,
    "byte": UINT8,
    "rune": INT32,
    "float32": FLOAT32,
    "float64": FLOAT64,
}
_BYTES_RE = re.compile(r"\[([1-9][0-9]*)\]byte")
_declared: list[type] = []  # every struct type, registered with each new heap
_by_name: dict[str, type] = {}


def _roundup(n: int, align: int) -> int:
    return (n + align - 1) // align * align


class StructType(type):
    """The metaclass of gorun struct types: Go's unsafe.Sizeof, Alignof and Offsetof on the
    type (``T.size``, ``T.align``, ``T.offsetof("f")``), out of the way of field names."""

    @property
    def size(cls) -> int:
        """unsafe.Sizeof(T{}): the padded size (the object takes 8 more: gorun's header)."""
        return cls._gorun_size

    @property
    def align(cls) -> int:
        """unsafe.Alignof(T{}): the largest alignment of its fields (1 for an empty struct)."""
        return cls._gorun_align

    # offsetof and layout are properties returning functions: a metaclass property is a data
    # descriptor, so it wins over a field of the same name in the class (a plain method would not)
    @property
    def offsetof(cls):
        """T.offsetof("f"), unsafe.Offsetof(t.f): the field's byte offset from the struct's start."""

        def offsetof(field: str) -> int:
            try:
                return cls._gorun_offsets[field]
            except KeyError:
                raise AttributeError(f"type {cls.__name__} has no field {field!r}") from None

        return offsetof

    @property
    def layout(cls):
        """T.layout(): (field, kind, offset, size) in declaration order."""
        return lambda: [(n, fk.name, cls._gorun_offsets[n], fk.nbytes) for n, fk in cls._gorun_fields]


def struct(name: str, **fields: FieldKind | str) -> type:
    """Declare a struct type. Field kinds: BOOL, INT8..INT64 (INT), UINT8..UINT64, FLOAT32,
    FLOAT64 (FLOAT), PTR, BYTES(n), or their names: 'bool', 'int8', ..., 'float64', 'ptr',
    'int', 'float', '[16]byte'. Laid out as Go does on amd64 (see the module's docstring)."""
    if not name or len(name.encode()) > 47:
        raise ValueError(f"type name {name!r} must be 1..47 bytes")
    if name in _by_name:
        old = _by_name[name]
        if _sig(old._gorun_fields) == _sig(_normalize(fields)):
            return old
        raise ValueError(f"type {name} already declared with other fields")
    spec = _normalize(fields)
    ns = {"__slots__": (), "_gorun_fields": spec, "_gorun_tid": 0}
    off = 0
    align = 1
    mask = 0
    offsets = {}
    for fname, fk in spec:
        off = _roundup(off, fk.align)
        offsets[fname] = off
        ns[fname] = _gorun.FieldDescr(fname, off, fk.kind, fk.nbytes if fk.kind == FK_BYTES else 0)
        if fk.kind == FK_PTR:
            assert off % 8 == 0
            mask |= 1 << (off // 8)
        off += fk.nbytes
        align = max(align, fk.align)
    size = _roundup(off, align)
    if _roundup(size, 8) // 8 > _C["max_struct_words"]:
        raise ValueError(f"type {name}: {size} bytes is more than {_C['max_struct_words']} words")
    ns.update(_gorun_size=size, _gorun_align=align, _gorun_offsets=offsets, _gorun_mask=mask)
    cls = StructType(name, (_gorun.Handle,), ns)
    _declared.append(cls)
    _by_name[name] = cls
    if _gorun.attached():
        register(cls)
    return cls


def _normalize(fields: dict) -> tuple:
    out = []
    for fname, fk in fields.items():
        if isinstance(fk, str):
            m = _BYTES_RE.fullmatch(fk)
            if m:
                fk = BYTES(int(m.group(1)))
            elif fk in _KINDS:
                fk = _KINDS[fk]
            else:
                raise ValueError(
                    f"field {fname}: unknown kind {fk!r} (bool, int8..int64, uint8..uint64, float32, "
                    "float64, ptr, int, float or [N]byte)"
                )
        if not isinstance(fk, FieldKind):
            raise TypeError(f"field {fname}: kind must be a gorun field kind (gorun.INT64, ...), not {fk!r}")
        if fname.startswith("_") or fname in ("addr", "base", "type_id", "root_slot", "type_name"):
            raise ValueError(f"field name {fname!r} is reserved")
        out.append((fname, fk))
    return tuple(out)


def _sig(spec: tuple) -> tuple:
    return tuple((n, k.kind, k.nbytes) for n, k in spec)


def register(cls: type) -> int:
    """Put a struct type in the attached heap's type table and bind the class to its id."""
    size, mask = cls._gorun_size, cls._gorun_mask
    nwords = _roundup(size, 8) // 8  # the marker's view: the 8-byte words the payload spans
    tid = _gorun.register_type(
        cls.__name__, TK_STRUCT, size, 0, 0, 1 if mask else 0, nwords, mask.to_bytes(32, "little")
    )
    _gorun.bind_class(tid, cls)
    cls._gorun_tid = tid
    return tid


_array_tids: dict[str, int] = {}


def array_tid(elem) -> int:
    """Type id of an array of elem: 'int', 'float', 'ptr', or a struct type (a []*T)."""
    if elem in ("int", "int64", INT):
        return TID_INT_ARRAY
    if elem in ("float", "float64", FLOAT):
        return TID_FLOAT_ARRAY
    if elem in ("ptr", PTR):
        return TID_PTR_ARRAY
    if isinstance(elem, type) and issubclass(elem, _gorun.Handle) and hasattr(elem, "_gorun_fields"):
        tid = _array_tids.get(elem.__name__)
        if tid is None:
            etid = elem._gorun_tid or register(elem)
            tid = _gorun.register_type("[]*" + elem.__name__, TK_ARRAY, 8, FK_PTR, etid, 1, 0, b"")
            _array_tids[elem.__name__] = tid
        return tid
    raise TypeError(f"array element must be 'int', 'float', 'ptr' or a gorun struct type, not {elem!r}")


def _resolve(tid: int) -> None:
    """Called by the C core for a type id with no class in this process (declared elsewhere)."""
    info = _gorun.type_info(tid)
    name = info["name"]
    cls = _by_name.get(name)
    if cls is None:
        raise LookupError(f"type {name} was declared in another process and is unknown here")
    _gorun.bind_class(tid, cls)
    cls._gorun_tid = tid


def register_all() -> None:
    """Register every declared struct type with a freshly attached heap."""
    _array_tids.clear()
    for cls in _declared:
        register(cls)
    _gorun.set_resolver(_resolve)
