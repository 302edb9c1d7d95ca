"""Go's size classes (shared/reference/go-runtime.md section 1), and the generator of
native/sizeclasses.c.

The table is Go's: object size and span pages per class; everything else (objects per span,
tail waste, lookup tables, division magic) is derived here, and ``check()`` verifies the rules
the reference states. ``python -m gorun.sizeclasses`` rewrites native/sizeclasses.c;
``python -m gorun.sizeclasses --check`` fails if the checked-in file differs.
"""

from __future__ import annotations

import sys
from pathlib import Path

PAGE_SIZE = 8192
MAX_SMALL_SIZE = 32768
SMALL_SIZE_DIV = 8
SMALL_SIZE_MAX = 1024
LARGE_SIZE_DIV = 128
MAX_OBJS_PER_SPAN = 1024
MAX_SIZE_CLASS_NPAGES = 10
TINY_SIZE = 16
NUM_SIZE_CLASSES = 68

# (object bytes, span pages) for classes 1..67; class 0 is "large" (own span).
_TABLE = [
    (8, 1),
    (16, 1),
    (24, 1),
    (32, 1),
    (48, 1),
    (64, 1),
    (80, 1),
    (96, 1),
    (112, 1),
    (128, 1),
    (144, 1),
    (160, 1),
    (176, 1),
    (192, 1),
    (208, 1),
    (224, 1),
    (240, 1),
    (256, 1),
    (288, 1),
    (320, 1),
    (352, 1),
    (384, 1),
    (416, 1),
    (448, 1),
    (480, 1),
    (512, 1),
    (576, 1),
    (640, 1),
    (704, 1),
    (768, 1),
    (896, 1),
    (1024, 1),
    (1152, 1),
    (1280, 1),
    (1408, 2),
    (1536, 1),
    (1792, 2),
    (2048, 1),
    (2304, 2),
    (2688, 1),
    (3072, 3),
    (3200, 2),
    (3456, 3),
    (4096, 1),
    (4864, 3),
    (5376, 2),
    (6144, 3),
    (6528, 4),
    (6784, 5),
    (6912, 6),
    (8192, 1),
    (9472, 7),
    (9728, 6),
    (10240, 5),
    (10880, 4),
    (12288, 3),
    (13568, 5),
    (14336, 7),
    (16384, 2),
    (18432, 9),
    (19072, 7),
    (20480, 5),
    (21760, 8),
    (24576, 3),
    (27264, 10),
    (28672, 7),
    (32768, 4),
]

CLASS_TO_SIZE = [0] + [s for s, _ in _TABLE]
CLASS_TO_NPAGES = [0] + [p for _, p in _TABLE]
CLASS_TO_OBJS = [0] + [p * PAGE_SIZE // s for s, p in _TABLE]


def divmagic(size: int) -> int:
    """Go's per-class magic: index = (offset * magic) >> 32 without a division."""
    return 0 if size == 0 else (1 << 32) // size + 1


CLASS_TO_DIVMAGIC = [divmagic(s) for s in CLASS_TO_SIZE]


def _lookup8() -> list[int]:
    out = []
    for i in range(SMALL_SIZE_MAX // SMALL_SIZE_DIV + 1):
        size = i * SMALL_SIZE_DIV
        out.append(next(c for c in range(1, NUM_SIZE_CLASSES) if CLASS_TO_SIZE[c] >= size))
    out[0] = 0  # size 0 never reaches the table
    return out


def _lookup128() -> list[int]:
    out = []
    for i in range((MAX_SMALL_SIZE - SMALL_SIZE_MAX) // LARGE_SIZE_DIV + 1):
        size = SMALL_SIZE_MAX + i * LARGE_SIZE_DIV
        out.append(next(c for c in range(1, NUM_SIZE_CLASSES) if CLASS_TO_SIZE[c] >= size))
    return out


SIZE_TO_CLASS8 = _lookup8()
SIZE_TO_CLASS128 = _lookup128()


def size_to_class(size: int) -> int:
    """Class for a small request of `size` bytes (1..32768), as the C lookup computes it."""
    if not 0 < size <= MAX_SMALL_SIZE:
        raise ValueError(f"size {size} is not a small size (1..{MAX_SMALL_SIZE})")
    if size <= SMALL_SIZE_MAX - 8:
        return SIZE_TO_CLASS8[(size + SMALL_SIZE_DIV - 1) // SMALL_SIZE_DIV]
    return SIZE_TO_CLASS128[(size - SMALL_SIZE_MAX + LARGE_SIZE_DIV - 1) // LARGE_SIZE_DIV]


def check() -> None:
    """Verify the rules of go-runtime.md section 1; raise AssertionError on the first broken one."""
    assert len(CLASS_TO_SIZE) == NUM_SIZE_CLASSES
    prev = 0
    for c in range(1, NUM_SIZE_CLASSES):
        size, npages, objs = CLASS_TO_SIZE[c], CLASS_TO_NPAGES[c], CLASS_TO_OBJS[c]
        assert size > prev, f"class {c}: sizes must increase"
        assert size % 8 == 0, f"class {c}: size {size} not 8-byte aligned"
        assert 1 <= npages <= MAX_SIZE_CLASS_NPAGES, f"class {c}: {npages} pages"
        assert 1 <= objs <= MAX_OBJS_PER_SPAN, f"class {c}: {objs} objects per span"
        assert objs * size <= npages * PAGE_SIZE, f"class {c}: objects overflow the span"
        if size & (size - 1) == 0:  # power-of-two classes are aligned to their own size
            assert (npages * PAGE_SIZE) % size == 0
        for i in range(objs):  # the magic must give the exact index for every object offset
            for off in (i * size, i * size + size - 1):
                assert (off * CLASS_TO_DIVMAGIC[c]) >> 32 == i, f"class {c}: divmagic wrong at {off}"
        prev = size
    assert CLASS_TO_SIZE[-1] == MAX_SMALL_SIZE
    assert CLASS_TO_SIZE[2] == TINY_SIZE
    for size in range(1, MAX_SMALL_SIZE + 1):
        c = size_to_class(size)
        assert CLASS_TO_SIZE[c] >= size, f"size {size}: class {c} too small"
        assert c == 1 or CLASS_TO_SIZE[c - 1] < size, f"size {size}: class {c} is not the smallest"


def _carray(ctype: str, name: str, values: list[int], per_line: int = 12) -> str:
    rows = [", ".join(str(v) for v in values[i : i + per_line]) for i in range(0, len(values), per_line)]
    return f"const {ctype} {name}[{len(values)}] = {{\n    " + ",\n    ".join(rows) + ",\n};\n"


def emit_c() -> str:
    return (
        "/* sizeclasses.c: Go's size-class tables. GENERATED by `python -m gorun.sizeclasses`\n"
        ' * from gorun/sizeclasses.py; do not edit. See docs/design.md "Size classes". */\n'
        "/* clang-format off */\n"
        '#include "runtime.h"\n\n'
        + _carray("uint32_t", "class_to_size", CLASS_TO_SIZE)
        + "\n"
        + _carray("uint8_t", "class_to_npages", CLASS_TO_NPAGES)
        + "\n"
        + _carray("uint32_t", "class_to_divmagic", CLASS_TO_DIVMAGIC, 6)
        + "\n"
        + _carray("uint8_t", "size_to_class8", SIZE_TO_CLASS8, 16)
        + "\n"
        + _carray("uint8_t", "size_to_class128", SIZE_TO_CLASS128, 16)
    )


def main(argv: list[str]) -> int:
    check()
    target = Path(__file__).resolve().parent.parent / "native" / "sizeclasses.c"
    text = emit_c()
    if "--check" in argv:
        if not target.exists() or target.read_text() != text:
            print(f"{target} is out of date: run python -m gorun.sizeclasses", file=sys.stderr)
            return 1
        return 0
    target.write_text(text)
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
