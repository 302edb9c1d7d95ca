"""The validity walkers of the debug build (native/mcheck.c): they pass on a consistent heap and
catch a corrupted one. A corruption is written into a standalone heap by a forked child, which
then runs a walker (or an ordinary mcentral operation that runs one): the child must die with
gorun's fatal-error exit status 3 and a message naming the broken invariant.

The walkers and their test hooks exist only in a debug build (GORUN_DEBUG=1 or 2); in a normal
build these tests skip, and CI runs them in its debug stage (make debug-test)."""

from __future__ import annotations

import os

import pytest

from conftest import BUILD, fork_child, read_all, wait_child
from gorun import _gorun

needs_debug = pytest.mark.skipif(
    BUILD["debug"] < 1,
    reason="the validity walkers are compiled only in a debug build "
    "(GORUN_DEBUG=1 or 2); CI runs these tests in make debug-test",
)

SPC = 5 << 1 | 1  # size class 5 (48 B), noscan: 170 objects in one page
SPC2 = 20 << 1  # size class 20, scan
MCL_PARTIAL0, MCL_PARTIAL1, MCL_FULL0, MCL_FULL1 = 1, 2, 3, 4
FULL = 1 << 20  # nalloc for debug_span_new: fill the span


def new_span(spc: int, nalloc: int) -> int:
    """A span of class spc with nalloc slots allocated, on its mcentral's swept lists."""
    return _gorun.debug_spans_new(spc, nalloc, 1)[0]


def span(i: int) -> dict:
    return _gorun.span_of(i * 8192)


def sweepgen() -> int:
    return _gorun.stats()["mheap"]["sweepgen"]


def expect_throw(fn, *parts: str) -> str:
    """Run fn in a forked child; it must end with gorun_throw (exit 3) and print every part."""
    pid, fd = fork_child(fn, capture_stderr=True)
    err = read_all(fd)
    status = wait_child(pid)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 3, f"child status {status:#x}, stderr:\n{err}"
    assert "gorun: fatal error" in err and "mcheck (" in err, err
    for p in parts:
        assert p in err, f"{p!r} not in {err!r}"
    return err


def test_walkers_exist_only_in_debug_builds():
    assert hasattr(_gorun, "debug_check") == (BUILD["debug"] >= 1)


@needs_debug
def test_walkers_pass_on_a_consistent_heap(heap):
    spans = {SPC: [], SPC2: []}
    for spc in spans:
        for nalloc in (0, 3, FULL, 7, FULL, 1):
            spans[spc] += _gorun.debug_spans_new(spc, nalloc, 2)
    for spc, ids in spans.items():  # a refill takes a swept partial span first, so ids repeat
        assert _gorun.debug_check("mcentral", spc) == len(set(ids)) == _gorun.stats()["central"][spc]["nspans"]
        for i in set(ids):
            assert _gorun.debug_check("span", i) is None
            s = span(i)
            assert s["spanclass"] == spc and s["sweepgen"] == sweepgen()
    assert _gorun.debug_check("heap") is None
    assert _gorun.pages_check()[0] > 0


def _corrupt_then(what: str, index: int, value: int, check: str, arg: int = 0):
    def child():
        _gorun.debug_poke(what, index, value)
        _gorun.debug_check(check, arg)
        return 0  # the walker missed it

    return child


@needs_debug
def test_list_field_that_disagrees_with_the_list(heap):
    i = new_span(SPC, 3)  # on the swept partial list, index k = (sg/2) % 2
    k = (sweepgen() // 2) % 2
    expect_throw(
        _corrupt_then("span.list", i, MCL_FULL0 + k, "mcentral", SPC),
        f"span {i} is on list partial[{k}] but its list field says full[{k}]",
    )


@needs_debug
def test_broken_prev_link(heap):
    a, b = _gorun.debug_spans_new(SPC, 3, 2)  # b was pushed last: b -> a
    expect_throw(_corrupt_then("span.prev", a, 0, "mcentral", SPC), f"span {a} has prev 0, expected {b}")


@needs_debug
def test_list_cycle(heap):
    a, b = _gorun.debug_spans_new(SPC, 3, 2)  # b -> a
    # a -> b closes a loop; b's prev is 0 as the head, so the walk trips on the revisit
    expect_throw(_corrupt_then("span.next", a, b, "mcentral", SPC), f"span {b} has prev 0, expected {a}")


@needs_debug
def test_alloc_count_above_nelems(heap):
    i = new_span(SPC, 3)
    n = span(i)["nelems"]
    expect_throw(_corrupt_then("span.allocCount", i, n + 1, "span", i), f"span {i}: allocCount {n + 1} > nelems {n}")


@needs_debug
def test_freeindex_above_nelems(heap):
    i = new_span(SPC, 3)
    n = span(i)["nelems"]
    expect_throw(_corrupt_then("span.freeindex", i, n + 9, "span", i), f"freeindex {n + 9} > nelems {n}")


@needs_debug
@pytest.mark.parametrize("delta", [1, 2, 5, -3])
def test_sweepgen_outside_its_states(heap, delta):
    i = new_span(SPC, 3)
    sg = sweepgen()
    expect_throw(
        _corrupt_then("span.sweepgen", i, (sg + delta) % 2**32, "span", i),
        f"span {i}: sweepgen {(sg + delta) % 2**32} is sg{delta:+d}",
    )


@needs_debug
def test_unswept_span_on_a_swept_list(heap):
    i = new_span(SPC, 3)
    sg = sweepgen()
    expect_throw(
        _corrupt_then("span.sweepgen", i, (sg - 2) % 2**32, "mcentral", SPC),
        f"(swept): span {i} has sweepgen {(sg - 2) % 2**32}, expected {sg}",
    )


@needs_debug
def test_full_span_on_a_partial_list(heap):
    i = new_span(SPC, 3)
    n = span(i)["nelems"]
    expect_throw(_corrupt_then("span.allocCount", i, n, "mcentral", SPC), f"span {i} has allocCount {n} of nelems {n}")


@needs_debug
def test_pagemap_entry_of_a_span_page(heap):
    i = new_span(SPC, 3)
    expect_throw(_corrupt_then("pagemap", i, i + 1, "span", i), f"page {i} of span {i} maps to span {i + 1}")


@needs_debug
def test_span_not_in_use(heap):
    i = new_span(SPC, 3)
    expect_throw(_corrupt_then("span.state", i, 0, "mcentral", SPC), f"span {i} is not in use")


@needs_debug
@pytest.mark.parametrize("which, where", [("head", "cache span"), ("second", "mcentral remove")])
def test_an_ordinary_refill_catches_it(heap, which, where):
    """No explicit check: the corruption is caught by the walkers inside mcentral's own
    operations. The refill pops the head of the swept partial list (b -> a) and hands it to the
    mcache: a corrupted head is caught by the span check of the span handed out, a corrupted
    second span by the list walk after the removal."""
    a, b = _gorun.debug_spans_new(SPC, 3, 2)
    victim = b if which == "head" else a
    n = span(victim)["nelems"]

    def child():
        _gorun.debug_poke("span.allocCount", victim, n + 7)
        _gorun.debug_spans_new(SPC, 1, 1)
        return 0

    expect_throw(child, f"mcheck ({where}): ", f"span {victim}: allocCount {n + 7} > nelems {n}")


@needs_debug
def test_heap_walk_nspans_counter(heap):
    _gorun.debug_spans_new(SPC2, 5, 3)
    expect_throw(
        _corrupt_then("mcentral.nspans", SPC2, 4, "heap"), f"mcentral {SPC2} has 3 spans on its lists but nspans 4"
    )


@needs_debug
def test_heap_walk_pages_inuse_counter(heap):
    new_span(SPC, 5)
    new_span(SPC2, FULL)
    pages = _gorun.stats()["mheap"]["pages_inuse"]
    expect_throw(
        _corrupt_then("mheap.pages_inuse", 0, pages + 1, "heap"),
        f"the span walk found {pages} pages",
        f"mheap counts {pages + 1} pages",
    )


@needs_debug
def test_heap_walk_span_lost_from_its_list(heap):
    """A span in use in the span table that no mcentral list holds (a leak of the lists)."""
    a, b = _gorun.debug_spans_new(SPC, 3, 2)  # b -> a: cut a off the list, and its own links

    def child():
        _gorun.debug_poke("span.next", b, 0)
        _gorun.debug_poke("span.list", a, 0)
        _gorun.debug_poke("span.prev", a, 0)
        _gorun.debug_check("heap")
        return 0

    expect_throw(child, f"mcentral {SPC} has 1 spans on its lists but nspans 2")


@needs_debug
def test_heap_walk_stray_pagemap_entry(heap):
    a = new_span(SPC, 3)
    free_page = _gorun.stats()["mheap"]["grown_pages"] - 1  # the last grown page is still free
    assert span(free_page) is None
    expect_throw(
        _corrupt_then("pagemap", free_page, a, "heap"),
        f"page {free_page} maps to span {a}, but no in-use span starts there",
    )


def _corrupt_and_collect(g, what, index, delta):
    """Workload: allocate, break one counter, then force a cycle (whose mark termination walks
    the heap in the GC process)."""
    keep = [g.new_bytes(100) for _ in range(2000)]
    old = _gorun.debug_poke(what, index, 0)
    _gorun.debug_poke(what, index, old + delta)
    g.gc()
    return len(keep)


@needs_debug
@pytest.mark.parametrize(
    "what, index, level, message",
    [
        ("mcentral.nspans", 0, 1, "spans on its lists but nspans"),  # class 0: no large span yet
        ("mheap.pages_inuse", 0, 2, "the span walk found"),
    ],
)
def test_mark_termination_walks_the_heap(capfd, what, index, level, message):
    """In a real run the GC process runs mheap_check at mark termination: a counter broken by a
    worker ends the run there (level 1: mcentral counts; level 2: the full walk)."""
    if BUILD["debug"] < level:
        pytest.skip(f"the {what} check at mark termination needs GORUN_DEBUG={level}")
    import gorun

    with pytest.raises(gorun.RunError) as ei:
        gorun.Runtime(procs=1, gogc="off").run(_corrupt_and_collect, what=what, index=index, delta=1)
    msg = str(ei.value)
    assert "GC process" in msg and "exit status 3" in msg, msg
    err = capfd.readouterr().err  # the GC process writes its fatal error to the inherited stderr
    assert "GC process): mcheck (mark termination): " in err and message in err, err
