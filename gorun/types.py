"""Declared heap types: structs with pointer, int, float and inline-bytes fields, and arrays.

A struct type is a Python subclass of the C ``Handle`` whose fields are C descriptors, so a
field read or write is one C call and every pointer store goes through the write barrier.
The layout goes into the shared type table, from which the marker knows exactly which words
are pointers (docs/design.md "Objects").

    Node = gorun.struct("Node", left=gorun.PTR, right=gorun.PTR, val=gorun.INT)
"""

from __future__ import annotations

from . import _gorun

_C = _gorun.constants()  # one source for every constant: the C core (native/runtime.h)
FK_PTR, FK_INT, FK_FLOAT, FK_BYTES = (_C["field_kinds"][k] for k in ("ptr", "int", "float", "bytes"))
TK_STRUCT, TK_ARRAY, TK_BYTES = (_C["type_kinds"][k] for k in ("struct", "array", "bytes"))
TID_BYTES, TID_INT_ARRAY, TID_FLOAT_ARRAY, TID_PTR_ARRAY = (
    _C["type_ids"][k] for k in ("bytes", "int_array", "float_array", "ptr_array")
)


class FieldKind:
    def __init__(self, kind: int, nbytes: int, name: str):
        self.kind, self.nbytes, self.name = kind, nbytes, name

    def __repr__(self) -> str:
        return self.name


PTR = FieldKind(FK_PTR, 8, "PTR")
INT = FieldKind(FK_INT, 8, "INT")
FLOAT = FieldKind(FK_FLOAT, 8, "FLOAT")


def BYTES(n: int) -> FieldKind:
    """An inline byte array of n bytes (a Go [n]byte field)."""
    if not isinstance(n, int) or n <= 0:
        raise ValueError(f"BYTES(n) needs a positive size, got {n!r}")
    return FieldKind(FK_BYTES, n, f"BYTES({n})")


_KINDS = {"ptr": PTR, "int": INT, "float": FLOAT}
_declared: list[type] = []  # every struct type, registered with each new heap
_by_name: dict[str, type] = {}


def struct(name: str, **fields: FieldKind | str) -> type:
    """Declare a struct type. Field kinds: PTR, INT, FLOAT, BYTES(n) (or 'ptr', 'int', 'float')."""
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
    mask = 0
    for fname, fk in spec:
        ns[fname] = _gorun.FieldDescr(fname, off, fk.kind, fk.nbytes if fk.kind == FK_BYTES else 0)
        if fk.kind == FK_PTR:
            mask |= 1 << (off // 8)
        off += (fk.nbytes + 7) // 8 * 8
    if off // 8 > 256:
        raise ValueError(f"type {name}: {off} bytes is more than 256 words")
    cls = type(name, (_gorun.Handle,), ns)
    cls._gorun_size = off
    cls._gorun_mask = mask
    _declared.append(cls)
    _by_name[name] = cls
    if _gorun.attached():
        register(cls)
    return cls


def _normalize(fields: dict) -> tuple:
    out = []
    for fname, fk in fields.items():
        if isinstance(fk, str):
            if fk not in _KINDS:
                raise ValueError(f"field {fname}: unknown kind {fk!r} (ptr, int, float or BYTES(n))")
            fk = _KINDS[fk]
        if not isinstance(fk, FieldKind):
            raise TypeError(f"field {fname}: kind must be PTR, INT, FLOAT or BYTES(n), not {fk!r}")
        if fname.startswith("_") or fname in ("addr", "base", "type_id", "root_slot", "type_name"):
            raise ValueError(f"field name {fname!r} is reserved")
        out.append((fname, fk))
    return tuple(out)


def _sig(spec: tuple) -> tuple:
    return tuple((n, k.kind, k.nbytes) for n, k in spec)


def register(cls: type) -> int:
    """Put a struct type in the attached heap's type table and bind the class to its id."""
    size, mask = cls._gorun_size, cls._gorun_mask
    nwords = size // 8
    tid = _gorun.register_type(
        cls.__name__, TK_STRUCT, size, 0, 0, 1 if mask else 0, nwords, mask.to_bytes(32, "little")
    )
    _gorun.bind_class(tid, cls)
    cls._gorun_tid = tid
    return tid


_array_tids: dict[str, int] = {}


def array_tid(elem) -> int:
    """Type id of an array of elem: 'int', 'float', 'ptr', or a struct type (a []*T)."""
    if elem in ("int", INT):
        return TID_INT_ARRAY
    if elem in ("float", FLOAT):
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
