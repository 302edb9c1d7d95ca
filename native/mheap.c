/* mheap.c: spans from pages (Go's mheap.allocSpan / freeSpan), under the mheap lock.
 *
 * A span is named by its start page; its mspan record, alloc bits and mark bits live at that
 * index in the metadata segment, so there is no span-struct allocator. The pagemap maps every
 * page of an in-use span to the span (interior-pointer lookup for the GC, lock-free reads).
 * Pages below `zeroed_base` may hold old data and are zeroed on reuse; pages above it were
 * never handed out and are zero (sparse shared memory). Overview: docs/design.md "mheap".
 */
#include <stdio.h>
#include <string.h>

#include "runtime.h"

/* First page of a free run of npages, growing the heap into the reservation if none is free;
 * 0 if the reservation (or /dev/shm) is exhausted. *nscav: how many of the run's pages had been
 * scavenged (they were reserved again). Caller holds the mheap lock. */
static uint64_t alloc_pages_locked(uint64_t npages, uint64_t *nscav)
{
    uint64_t page = pagealloc_alloc(npages, nscav);
    if (page == 0 && !pagealloc_reserve_failed() && pagealloc_grow(npages) == 0) page = pagealloc_alloc(npages, nscav);
    return page;
}

uint64_t mheap_alloc_pages(uint64_t npages)
{
    uint64_t nscav;
    lock(&G->mheap.lock);
    uint64_t page = alloc_pages_locked(npages, &nscav);
    unlock(&G->mheap.lock);
    return page;
}

void mheap_free_pages(uint64_t page, uint64_t npages)
{
    lock(&G->mheap.lock);
    pagealloc_free(page, npages);
    unlock(&G->mheap.lock);
}

uint64_t mheap_check_pages(char *err, size_t errlen, uint64_t *grown)
{
    lock(&G->mheap.lock);
    uint64_t f = pagealloc_check(err, errlen);
    *grown = RELAXED_LOAD(G->mheap.grown_pages);
    unlock(&G->mheap.lock);
    return f;
}

uint64_t mheap_scavenged_pages(uint8_t *out)
{
    lock(&G->mheap.lock);
    uint64_t grown = RELAXED_LOAD(G->mheap.grown_pages);
    pagealloc_scavenged_pages(out, grown);
    unlock(&G->mheap.lock);
    return grown;
}

spanid_t mheap_alloc_span(uint64_t npages, uint8_t spanclass)
{
    mheap_t *h = &G->mheap;
    int rc = rcall_enter(RC_LARGE, 0); /* a no-op inside a refill (RC_REFILL stays) */
    uint64_t nscav;
    lock(&h->lock);
    uint64_t page = alloc_pages_locked(npages, &nscav);
    if (page == 0) {
        LOCKED_ADD(h->ooms, 1);
        unlock(&h->lock);
        rcall_exit(rc);
        return 0;
    }
    spanid_t id = (spanid_t)page;
    mspan_t *s = spanof_id(id);
    int sc = spanclass_sizeclass(spanclass);
    s->startpage = id;
    s->npages = (uint32_t)npages;
    s->spanclass = spanclass;
    if (sc == 0) {
        s->elemsize = (uint32_t)(npages * PAGE_SIZE);
        s->nelems = 1;
        s->divmagic = 0;
    } else {
        s->elemsize = class_to_size[sc];
        s->nelems = (uint16_t)(npages * PAGE_SIZE / s->elemsize);
        s->divmagic = class_to_divmagic[sc];
    }
    s->freeindex = 0;
    s->allocCount = 0;
    s->allocCache = 0;
    s->next = s->prev = 0;
    s->list = MCL_NONE;
    /* Pages handed out before may hold old objects, unless every one of them was scavenged (punched
     * out, then reserved again: zero). Their span's alloc and mark bits are metadata, never
     * punched: they need clearing whenever the start page was handed out before. */
    int reused = page < h->zeroed_base;
    s->needzero = reused && nscav < npages;
    if (page + npages > h->zeroed_base) h->zeroed_base = page + npages;
    atomic_store_explicit(&s->sweepgen, atomic_load(&h->sweepgen), memory_order_relaxed);
    if (reused) { /* pages never handed out have never-written (zero) bits */
        memset(allocbits_of(id), 0, SPAN_BITS_BYTES);
        memset((void *)markbits_of(id), 0, SPAN_BITS_BYTES);
    }
    _Atomic uint32_t *pm = pagemap();
    for (uint64_t p = page; p < page + npages; p++) atomic_store_explicit(&pm[p], id, memory_order_release);
    atomic_store_explicit(&s->state, MSPAN_INUSE, memory_order_release);
    LOCKED_ADD(h->pages_inuse, npages);
    if (RELAXED_LOAD(h->pages_inuse) > RELAXED_LOAD(h->peak_pages_inuse))
        LOCKED_STORE(h->peak_pages_inuse, RELAXED_LOAD(h->pages_inuse));
    LOCKED_ADD(h->spans_inuse, 1);
    if (sc == 0) LOCKED_ADD(h->large_spans, 1);
    LOCKED_ADD(h->nalloc_spans, 1);
    unlock(&h->lock);
    mheap_scavenge_sync(); /* over the memory limit: return free pages now (Go's allocSpan) */
    rcall_exit(rc);
    return id;
}

void mheap_free_span(spanid_t id)
{
    mheap_t *h = &G->mheap;
    mspan_t *s = spanof_id(id);
    lock(&h->lock);
    if (atomic_load(&s->state) != MSPAN_INUSE) gorun_throw("mheap: freeing span %u that is not in use", id);
    atomic_store_explicit(&s->state, MSPAN_DEAD, memory_order_release);
    _Atomic uint32_t *pm = pagemap();
    for (uint64_t p = s->startpage; p < (uint64_t)s->startpage + s->npages; p++)
        atomic_store_explicit(&pm[p], 0, memory_order_release);
    pagealloc_free(s->startpage, s->npages);
    LOCKED_SUB(h->pages_inuse, s->npages);
    LOCKED_SUB(h->spans_inuse, 1);
    if (spanclass_sizeclass(s->spanclass) == 0) LOCKED_SUB(h->large_spans, 1);
    LOCKED_ADD(h->nfree_spans, 1);
    unlock(&h->lock);
}

/* ---- objects by address (Go's findObject in mbitmap.go) ---- */

goaddr findobject(goaddr addr, mspan_t **sp)
{
    spanid_t sid = spanof_addr(addr);
    if (!sid) return 0;
    mspan_t *s = spanof_id(sid);
    *sp = s;
    goaddr base = (goaddr)sid * PAGE_SIZE + span_objindex(s, addr) * s->elemsize;
    if (s->spanclass == TINY_SPAN_CLASS) { /* find the tiny object inside the 16-byte block */
        goaddr o = base, end = base + TINY_SIZE;
        while (o < end) {
            uint8_t n = A[o];
            if (n == 0) { /* alignment padding */
                o++;
                continue;
            }
            if (addr < o + 1 + n) return o;
            o += 1 + n;
        }
        return 0;
    }
    return base;
}

goaddr object_end(goaddr base)
{
    mspan_t *s = spanof_id(spanof_addr(base));
    if (s->spanclass == TINY_SPAN_CLASS) return base + 1 + A[base]; /* length byte + bytes */
    return base + (spanclass_sizeclass(s->spanclass) ? s->elemsize : (uint64_t)s->npages * PAGE_SIZE);
}

void fmt_bytes(char *buf, size_t len, uint64_t b)
{
    if (b >= (1ull << 30))
        snprintf(buf, len, "%.2f GiB", (double)b / (1ull << 30));
    else if (b >= (1ull << 20))
        snprintf(buf, len, "%.1f MiB", (double)b / (1ull << 20));
    else if (b >= 1024)
        snprintf(buf, len, "%.1f KiB", (double)b / 1024);
    else
        snprintf(buf, len, "%llu B", (unsigned long long)b);
}

void mheap_oom_message(char *buf, size_t len, uint64_t request_bytes)
{
    if (pagealloc_shm_oom_message(buf, len, request_bytes)) return; /* /dev/shm is full, not the heap */
    mheap_t *h = &G->mheap;
    char req[32], lim[32], inuse[32], grown[32];
    fmt_bytes(req, sizeof req, request_bytes);
    fmt_bytes(lim, sizeof lim, h->npages * PAGE_SIZE);
    /* a snapshot without the lock: the figures may mix two moments */
    fmt_bytes(inuse, sizeof inuse, RELAXED_LOAD(h->pages_inuse) * PAGE_SIZE);
    fmt_bytes(grown, sizeof grown, RELAXED_LOAD(h->grown_pages) * PAGE_SIZE);
    char live[96] = "";
    if (mallocgc_oom_marked != UINT64_MAX) {
        char m[32];
        fmt_bytes(m, sizeof m, mallocgc_oom_marked);
        snprintf(live, sizeof live, "live heap after a full collection: %s; ", m);
    }
    snprintf(buf, len,
             "out of memory: cannot allocate %s: the heap is limited to --max-heap=%s; "
             "%sin use: %s in %llu spans (%llu large), heap grown to %s",
             req, lim, live, inuse, (unsigned long long)RELAXED_LOAD(h->spans_inuse),
             (unsigned long long)RELAXED_LOAD(h->large_spans), grown);
}
