"""The page allocator under the mheap lock, driven through the C test hooks on a real attached
heap: _gorun.pages_alloc(n) (first page or 0; grows the heap as needed), pages_free(page, n),
pages_check() (the validity walker: (free pages, grown pages), GorunError if invalid).

The property tests keep a model of the live runs and check every step against it: runs never
overlap, stay inside the grown pages, never include page 0 (nil), the walker stays valid and
counts exactly the free pages of the model, allocation is address-ordered first fit, and freeing
everything coalesces back to one run."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from gorun import _gorun

CHUNK = 512  # pages per page-allocator chunk (4 MiB)
ARENA = 16 << 20  # 2048 pages, 4 chunks: growth and exhaustion both happen
NPAGES = ARENA // 8192


class Model:
    """The live runs, as a page bitmap (True = allocated by the test)."""

    def __init__(self, npages: int):
        self.npages = npages
        self.used = np.zeros(npages, dtype=bool)
        self.live: dict[int, int] = {}

    def first_fit(self, n: int, limit: int):
        """Lowest p >= 1 with pages [p, p+n) free and p+n <= limit, or None."""
        free = ~self.used[1:limit]
        if n > free.size:
            return None
        # run lengths of free pages: position i starts a fit if the next n are all free
        c = np.concatenate(([0], np.cumsum(free, dtype=np.int64)))
        ok = np.nonzero(c[n:] - c[:-n] == n)[0]
        return int(ok[0]) + 1 if ok.size else None

    def add(self, p: int, n: int):
        assert not self.used[p : p + n].any(), f"run [{p}, {p + n}) overlaps a live run"
        self.used[p : p + n] = True
        self.live[p] = n

    def remove(self, p: int):
        n = self.live.pop(p)
        self.used[p : p + n] = False
        return n

    def live_pages(self) -> int:
        return sum(self.live.values())


def check(model: Model) -> int:
    """Walker valid and in agreement with the model; returns grown pages."""
    free, grown = _gorun.pages_check()  # raises GorunError if the allocator is invalid
    assert 1 <= grown <= model.npages
    assert not model.used[grown:].any(), "a live run extends past grown pages"
    assert not model.used[0], "page 0 is nil and never allocated"
    assert free == grown - 1 - model.live_pages(), "free pages disagree with the live runs"
    return grown


def do_alloc(model: Model, n: int) -> int:
    _, grown_before = _gorun.pages_check()
    p = _gorun.pages_alloc(n)
    check_after_alloc(model, n, p, grown_before)
    return p


def check_after_alloc(model: Model, n: int, p: int, grown_before: int) -> int:
    _, grown = _gorun.pages_check()
    assert grown >= grown_before, "the heap never shrinks"
    fit_before = model.first_fit(n, grown_before)
    if p == 0:
        assert fit_before is None, f"alloc({n}) failed though [{fit_before}, +{n}) was free"
        assert grown_before + n > model.npages, f"alloc({n}) failed though the reservation could grow"
        check(model)
        return grown
    assert 1 <= p and p + n <= grown, f"run [{p}, {p + n}) outside grown pages [1, {grown})"
    if fit_before is not None:
        assert p == fit_before, f"alloc({n}) -> {p}, but first fit is {fit_before}"
        assert grown == grown_before, "grew although the request fit"
    else:
        assert p + n > grown_before, "no fit existed below the old limit"
        assert p == model.first_fit(n, grown), "first fit within the grown heap"
    model.add(p, n)
    check(model)
    return grown


sizes = st.one_of(st.integers(1, 8), st.integers(1, 300), st.integers(CHUNK - 2, 2 * CHUNK + 2))
ops = st.lists(st.tuples(st.booleans(), sizes, st.integers(0, 1 << 16)), min_size=1, max_size=40)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=ops, lock=st.sampled_from(["futex", "pthread", "sem"]))
def test_random_alloc_free_sequences(heap_factory, ops, lock):
    with heap_factory(lock=lock, arena_size=ARENA, nprocs=1, root_slots=16, nglobals=1) as h:
        model = Model(h.npages)
        check(model)
        for is_free, n, pick in ops:
            if is_free and model.live:
                starts = sorted(model.live)
                p = starts[pick % len(starts)]
                _gorun.pages_free(p, model.remove(p))
                check(model)
            else:
                _, grown_before = _gorun.pages_check()
                p = _gorun.pages_alloc(n)
                grown = check_after_alloc(model, n, p, grown_before)
                event(
                    "alloc refused"
                    if p == 0
                    else "alloc grew the heap"
                    if grown > grown_before
                    else "alloc reused a hole"
                    if p + n < grown_before and model.used[p + n : grown_before].any()
                    else "alloc fit"
                )
        # free everything, in an order of the example's choosing: it all coalesces back
        order = sorted(model.live, key=lambda p: (p * 2654435761 + len(ops)) % 1000003)
        for p in order:
            _gorun.pages_free(p, model.remove(p))
            check(model)
        free, grown = _gorun.pages_check()
        assert free == grown - 1
        assert _gorun.pages_alloc(grown - 1) == 1, "all free pages form one run starting at page 1"
        assert _gorun.pages_check() == (0, grown), "no growth needed for a run that fits"
        _gorun.pages_free(1, grown - 1)
        assert _gorun.pages_check() == (grown - 1, grown)


@pytest.mark.parametrize("heap", ["futex", "pthread", "sem"], indirect=True)
def test_first_fit_takes_the_lowest_hole(heap):
    model = Model(heap.npages)
    a = do_alloc(model, 10)
    b = do_alloc(model, 5)
    c = do_alloc(model, 10)
    d = do_alloc(model, 3)
    e = do_alloc(model, 1)
    assert (a, b, c, d, e) == (1, 11, 16, 26, 29), "fresh heap: runs are packed from page 1 up"
    for p in (b, d):
        _gorun.pages_free(p, model.remove(p))
        check(model)
    # a 3-page request fits exactly in d's hole, but first fit takes the lower hole at b
    assert do_alloc(model, 3) == b
    assert do_alloc(model, 2) == b + 3
    assert do_alloc(model, 3) == d
    assert do_alloc(model, 4) == e + 1


def test_free_runs_join_across_chunk_borders(heap):
    model = Model(heap.npages)
    x = do_alloc(model, CHUNK - 1)  # the rest of chunk 0
    y = do_alloc(model, CHUNK)  # chunk 1
    z = do_alloc(model, CHUNK)  # chunk 2
    assert (x, y, z) == (1, CHUNK, 2 * CHUNK)
    _gorun.pages_free(y, model.remove(y))
    _gorun.pages_free(x, model.remove(x))
    check(model)
    assert do_alloc(model, 2 * CHUNK - 1) == 1, "the free run spans chunks 0 and 1"
    # a run that straddles a border without covering a whole chunk
    _gorun.pages_free(1, model.remove(1))
    w = do_alloc(model, CHUNK - 10)
    v = do_alloc(model, 20)
    assert (w, v) == (1, CHUNK - 9), "first fit straddles the chunk border"
    check(model)


def test_exhaustion_returns_zero_and_changes_nothing(heap):
    model = Model(heap.npages)
    before = _gorun.pages_check()
    assert _gorun.pages_alloc(heap.npages) == 0, "page 0 is nil: npages do not fit"
    assert _gorun.pages_alloc(heap.npages + 10_000) == 0
    assert _gorun.pages_check() == before, "a refused request changes nothing"
    # the whole reservation but page 0 is one run
    assert do_alloc(model, heap.npages - 1) == 1
    assert _gorun.pages_check() == (0, heap.npages)
    assert _gorun.pages_alloc(1) == 0
    assert _gorun.pages_check() == (0, heap.npages)
    _gorun.pages_free(1, model.remove(1))
    check(model)
    assert do_alloc(model, 100) == 1


def test_free_outside_the_heap_is_refused(heap):
    model = Model(heap.npages)
    do_alloc(model, 4)
    _, grown = _gorun.pages_check()
    with pytest.raises(ValueError):
        _gorun.pages_free(0, 1)  # page 0 is nil
    with pytest.raises(ValueError):
        _gorun.pages_free(grown - 1, 2)  # past grown pages
    check(model)


@pytest.mark.parametrize("heap", [{"arena_size": 16 << 20}], indirect=True)
def test_allocation_fits_in_reservation_after_growth(heap):
    assert _gorun.pages_alloc(1) == 1  # grows the heap by one 512-page chunk
    # 2000 pages fit in [2, 2002) of this 2048-page reservation
    assert _gorun.pages_alloc(2000) == 2
