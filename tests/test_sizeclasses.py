"""Size classes: the table, the lookup, the reference, the generated C file, and the C lookup
as the allocator really uses it (objects allocated in a worker land in the expected span)."""

from __future__ import annotations

import bisect
import re
import subprocess
import sys
from pathlib import Path

import pytest

import gorun
from gorun import _gorun
from gorun import sizeclasses as sc

from conftest import REPO, gorun_env

REFERENCE = REPO.parent / "shared" / "reference" / "go-runtime.md"
PAGE = 8192


def smallest_fitting_class(size: int) -> int:
    """Independent oracle: the first class whose object size is >= size."""
    sizes = sc.CLASS_TO_SIZE[1:]
    return bisect.bisect_left(sizes, size) + 1


def test_table_shape():
    assert sc.NUM_SIZE_CLASSES == 68
    assert len(sc.CLASS_TO_SIZE) == len(sc.CLASS_TO_NPAGES) == len(sc.CLASS_TO_OBJS) == 68
    assert sc.CLASS_TO_SIZE[0] == 0  # class 0: large objects, own span
    assert sc.CLASS_TO_SIZE[1] == 8 and sc.CLASS_TO_SIZE[2] == 16 and sc.CLASS_TO_SIZE[67] == 32768
    assert sc.CLASS_TO_SIZE[1:] == sorted(set(sc.CLASS_TO_SIZE[1:])), "sizes strictly increase"
    c = _gorun.constants()
    assert c["num_size_classes"] == sc.NUM_SIZE_CLASSES
    assert c["max_small_size"] == sc.MAX_SMALL_SIZE
    assert c["page_size"] == sc.PAGE_SIZE
    assert c["tiny_size"] == sc.TINY_SIZE


def test_every_size_maps_to_smallest_fitting_class():
    for size in range(1, sc.MAX_SMALL_SIZE + 1):
        c = sc.size_to_class(size)
        assert c == smallest_fitting_class(size), f"size {size}"
        assert sc.CLASS_TO_SIZE[c] >= size
        assert c == 1 or sc.CLASS_TO_SIZE[c - 1] < size


@pytest.mark.parametrize("bad", [0, -1, sc.MAX_SMALL_SIZE + 1, 1 << 20])
def test_size_to_class_rejects_non_small_sizes(bad):
    with pytest.raises(ValueError):
        sc.size_to_class(bad)


def test_objects_per_span_fit_the_span():
    for c in range(1, sc.NUM_SIZE_CLASSES):
        size, npages, objs = sc.CLASS_TO_SIZE[c], sc.CLASS_TO_NPAGES[c], sc.CLASS_TO_OBJS[c]
        span = npages * PAGE
        assert 1 <= npages <= sc.MAX_SIZE_CLASS_NPAGES, f"class {c}"
        assert objs == span // size, f"class {c}: objects per span is span bytes / size"
        assert objs * size <= span, f"class {c}: {objs} x {size} overflows {span}"
        assert (objs + 1) * size > span, f"class {c}: room for one more object"
        assert 1 <= objs <= sc.MAX_OBJS_PER_SPAN, f"class {c}"
        # the division magic gives the exact object index for every offset of the span
        for i in (0, 1, objs // 2, objs - 1):
            for off in (i * size, i * size + size - 1):
                assert (off * sc.CLASS_TO_DIVMAGIC[c]) >> 32 == i, f"class {c} offset {off}"


def test_check_passes():
    sc.check()


@pytest.mark.parametrize(
    "attr,index,delta",
    [
        ("CLASS_TO_OBJS", 5, +1),  # one object more than the span holds
        ("CLASS_TO_SIZE", 10, +4),  # not 8-byte aligned
        ("CLASS_TO_SIZE", 20, -40),  # sizes no longer increase
        ("SIZE_TO_CLASS8", 7, -1),  # lookup gives a class that is too small
        ("SIZE_TO_CLASS128", 40, +1),  # lookup gives a class that is not the smallest
        ("CLASS_TO_DIVMAGIC", 7, -3000),  # wrong magic for some object index
    ],
)
def test_check_detects_a_broken_table(monkeypatch, attr, index, delta):
    broken = list(getattr(sc, attr))
    broken[index] += delta
    monkeypatch.setattr(sc, attr, broken)
    with pytest.raises(AssertionError):
        sc.check()


GO_TABLE = Path(__file__).resolve().parent / "data" / "go_sizeclasses.tsv"


def _go_rows() -> list[list[int]]:
    """Go's table as the suite carries it (tests/data/go_sizeclasses.tsv), so the check never
    depends on what sits beside the checkout."""
    return [
        [int(x) for x in line.split("\t")]
        for line in GO_TABLE.read_text().splitlines()
        if line and not line.startswith("#")
    ]


def _reference_rows() -> list[list[int]]:
    text = REFERENCE.read_text()
    m = re.search(r"^### 1\.2\b.*?$(.*?)^###? ", text, re.S | re.M)
    assert m, "section 1.2 not found in the reference"
    rows = []
    for line in m.group(1).splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 6 and cells[0].isdigit():
            rows.append([int(x) for x in cells[:6]])
    return rows


def test_carried_go_table_matches_the_shared_reference():
    """The carried copy is the reference's table; run where shared/ sits beside the checkout
    (it does in CI), and say why when it does not."""
    if not REFERENCE.exists():
        pytest.skip(
            f"{REFERENCE} is absent: the carried copy {GO_TABLE.name} is checked against it only where it exists"
        )
    assert _go_rows() == _reference_rows()


def test_table_matches_reference():
    rows = _go_rows()
    assert [r[0] for r in rows] == list(range(1, 68)), "Go's table lists classes 1..67"
    for cls, size, span_bytes, pages, objs, tail in rows:
        assert sc.CLASS_TO_SIZE[cls] == size, f"class {cls}: object size"
        assert sc.CLASS_TO_NPAGES[cls] == pages, f"class {cls}: span pages"
        assert sc.CLASS_TO_NPAGES[cls] * PAGE == span_bytes, f"class {cls}: span bytes"
        assert sc.CLASS_TO_OBJS[cls] == objs, f"class {cls}: objects per span"
        assert span_bytes - sc.CLASS_TO_OBJS[cls] * sc.CLASS_TO_SIZE[cls] == tail, f"class {cls}: tail waste"


def test_generated_c_file_is_up_to_date():
    r = subprocess.run(
        [sys.executable, "-m", "gorun.sizeclasses", "--check"],
        cwd=REPO,
        env=gorun_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    # and the check is a real comparison: the emitted text is what the C file holds
    assert (REPO / "native" / "sizeclasses.c").read_text() == sc.emit_c()


# ---------------------------------------------------------------- the C lookup, for real

SCAN_PAYLOADS = sorted(
    {n for n in range(0, 1100)}
    | {
        p
        for c in range(1, sc.NUM_SIZE_CLASSES)
        for b in (sc.CLASS_TO_SIZE[c] - 8,)
        for p in (b - 1, b, b + 1)
        if 0 <= p <= sc.MAX_SMALL_SIZE - 8
    }
    | set(range(1024 - 8, sc.MAX_SMALL_SIZE - 8 + 1, 128))
    | set(range(1024 - 7, sc.MAX_SMALL_SIZE - 8 + 1, 128))
)
LARGE_PAYLOADS = [sc.MAX_SMALL_SIZE - 7, sc.MAX_SMALL_SIZE, 40000, 5 * PAGE - 8, 5 * PAGE - 7, 100_000]


def _landing(g, payloads, large_payloads):
    out = []
    for n in payloads:
        h = g.new_bytes(n)
        s = _gorun.span_of(h.addr)
        out.append(("bytes", n, s["elemsize"], s["spanclass"], s["npages"], h.addr - s["start"] * PAGE))
    for n in range(0, 600, 1):  # pointer arrays (scan objects) of n words
        h = g.new_array("ptr", n)
        s = _gorun.span_of(h.addr)
        out.append(("ptrs", 8 * n, s["elemsize"], s["spanclass"], s["npages"], h.addr - s["start"] * PAGE))
    for n in large_payloads:
        h = g.new_bytes(n)
        s = _gorun.span_of(h.addr)
        out.append(("large", n, s["elemsize"], s["spanclass"], s["npages"], h.addr - s["start"] * PAGE))
    return out


def test_c_lookup_agrees_with_the_table():
    res = gorun.Runtime(procs=1, max_heap="1GiB").run(_landing, payloads=SCAN_PAYLOADS, large_payloads=LARGE_PAYLOADS)
    rows = res.values[0]
    assert len(rows) == len(SCAN_PAYLOADS) + 600 + len(LARGE_PAYLOADS)
    for kind, n, elemsize, spanclass, npages, off in rows:
        if kind == "bytes" and 1 <= n <= 14:  # tiny: 16-byte blocks of span class 5, no header
            assert (elemsize, spanclass) == (16, 5), (kind, n)
            continue
        if kind == "large":
            want_pages = -(-(n + 8) // PAGE)
            assert (spanclass, npages, elemsize, off) == (1, want_pages, want_pages * PAGE, 0), (kind, n)
            continue
        cls = sc.size_to_class(8 + n)
        noscan = 1 if kind == "bytes" else 0
        if noscan and cls == 2:
            cls = 3  # span class 5 (16 B noscan) is reserved for tiny blocks
        assert elemsize == sc.CLASS_TO_SIZE[cls], (kind, n, elemsize)
        assert spanclass == cls * 2 + noscan, (kind, n, spanclass)
        assert npages == sc.CLASS_TO_NPAGES[cls], (kind, n)
        assert off % elemsize == 0, "objects start on slot boundaries"
        assert off + 8 + n <= npages * PAGE
