/* mcheck.c: validity walkers of the debug build (mimalloc's mi_heap_is_valid / page walkers;
 * Go's debug checks in mcentral.go and mgcsweep.go). Compiled only when GORUN_DEBUG >= 1.
 *
 * A walker reads the shared state it is given and calls gorun_throw (exit status 3, one line
 * on stderr naming the broken invariant) at the first inconsistency; it never repairs. Three
 * walkers, from cheap to expensive, called through the MCHECK_* macros of runtime.h:
 *
 *  mspan_check(id): one in-use span that the caller owns or whose mcentral lock it holds.
 *    state INUSE, startpage == id, the pages inside the grown heap; shape of its class (small:
 *    npages, elemsize and nelems from the size-class table; large: nelems 1, elemsize = its
 *    pages); allocCount <= nelems, freeindex <= nelems; sweepgen within sg-2 .. sg+3 of the
 *    heap's sg and never sg+1 or sg+2 (gorun flushes every mcache before sg advances, so no
 *    span is ever cached across a sweepgen change); the pagemap entry of each of its pages
 *    names it. Called when a sweeper takes a span (sg-1), after a sweep (sg), when a span is
 *    handed to an mcache (sg+3), when a large span is filed, and for every span an mcentral
 *    walk visits.
 *
 *  mcentral_check(c): every list of one span class, caller holds its lock. With k =
 *    (sg/2) % 2: each span's `list` field names the list it is on, prev links mirror next
 *    links (the head's prev is 0), no cycle (a list is at most the heap's page count long), the
 *    span's class is the list's class, mspan_check holds; partial lists hold spans with
 *    allocCount < nelems and full lists spans with allocCount == nelems (allocCount changes only
 *    while a span is off the lists: in an mcache or in a sweeper's hands); large classes have
 *    no partial span; the swept lists (index k) hold spans at sweepgen sg and the unswept lists
 *    (1-k) spans at sg-2 (a sweeper moves a span to sg-1 only after popping it, and publishes
 *    sg before pushing it back). Called after every list push and remove (mcentral.c), so at
 *    every refill, uncache, sweep and STW-2 flush. Cost: linear in the class's spans.
 *
 *  mheap_check(full): the whole heap; no lock held, the world stopped (or a standalone heap
 *    with no other user) and every mcache flushed. Every mcentral passes mcentral_check and the
 *    number of spans on its lists equals its nspans. With full (GORUN_DEBUG >= 2 at mark
 *    termination, always from the test hook): pagealloc_check; then a walk of the grown heap
 *    page by page through the pagemap: a page either belongs to no span and is free in the page
 *    bitmap (page 0 excepted) or being scavenged (allocated and scavenged), or starts an in-use
 *    span that passes mspan_check, whose pages are all allocated and none scavenged in the
 *    bitmaps and that is on an mcentral list; and the counters agree: pages_inuse = sum of in-use
 *    spans' pages, spans_inuse and large_spans = their counts, nspans of each class = its in-use
 *    spans, free pages + pages_inuse + pages being scavenged + 1 (page 0) = grown_pages. Called at the end of mark termination (mgc.c), after sweepgen advanced.
 *
 * Overview: docs/design.md "Debug builds".
 */
#include <stdio.h>

#include "runtime.h"

#if GORUN_DEBUG

static const char *list_name(int which)
{
    static const char *names[] = {"none", "partial[0]", "partial[1]", "full[0]", "full[1]"};
    return which >= 0 && which <= 4 ? names[which] : "?";
}

void mspan_check(spanid_t id, const char *where)
{
    mheap_t *h = &G->mheap;
    if (id == 0 || id >= h->npages)
        gorun_throw("mcheck (%s): span id %u outside the heap (%llu pages)", where, id, (unsigned long long)h->npages);
    mspan_t *s = spanof_id(id);
    uint32_t sg = atomic_load(&h->sweepgen), ssg = atomic_load(&s->sweepgen);
    if (atomic_load(&s->state) != MSPAN_INUSE)
        gorun_throw("mcheck (%s): span %u is not in use (state %u)", where, id, (unsigned)atomic_load(&s->state));
    if (s->startpage != id) gorun_throw("mcheck (%s): span %u records start page %u", where, id, s->startpage);
    if (s->npages == 0 || (uint64_t)id + s->npages > h->grown_pages)
        gorun_throw("mcheck (%s): span %u has %u pages, beyond the grown heap (%llu pages)", where, id, s->npages,
                    (unsigned long long)h->grown_pages);
    int sc = spanclass_sizeclass(s->spanclass);
    if (sc >= NUM_SIZE_CLASSES) gorun_throw("mcheck (%s): span %u has span class %u", where, id, s->spanclass);
    if (sc == 0) {
        if (s->nelems != 1 || s->elemsize != s->npages * PAGE_SIZE)
            gorun_throw("mcheck (%s): large span %u: nelems %u, elemsize %u for %u pages", where, id, s->nelems,
                        s->elemsize, s->npages);
    } else if (s->npages != class_to_npages[sc] || s->elemsize != class_to_size[sc] ||
               s->nelems != s->npages * PAGE_SIZE / s->elemsize) {
        gorun_throw("mcheck (%s): span %u of size class %d: %u pages, elemsize %u, nelems %u (class: %u pages of %u B)",
                    where, id, sc, s->npages, s->elemsize, s->nelems, class_to_npages[sc], class_to_size[sc]);
    }
    if (s->allocCount > s->nelems)
        gorun_throw("mcheck (%s): span %u: allocCount %u > nelems %u", where, id, s->allocCount, s->nelems);
    if (s->freeindex > s->nelems)
        gorun_throw("mcheck (%s): span %u: freeindex %u > nelems %u", where, id, s->freeindex, s->nelems);
    int32_t d = (int32_t)(ssg - sg);
    if (d < -2 || d > 3 || d == 1 || d == 2)
        gorun_throw("mcheck (%s): span %u: sweepgen %u is sg%+d (heap sweepgen %u); valid: sg-2, sg-1, sg, sg+3", where,
                    id, ssg, (int)d, sg);
    _Atomic uint32_t *pm = pagemap();
    for (uint64_t p = id; p < (uint64_t)id + s->npages; p++) {
        uint32_t e = atomic_load_explicit(&pm[p], memory_order_acquire);
        if (e != id)
            gorun_throw("mcheck (%s): page %llu of span %u maps to span %u in the pagemap", where,
                        (unsigned long long)p, id, e);
    }
}

uint64_t mcentral_check(mcentral_t *c, const char *where)
{
    int spc = (int)(c - G->central);
    uint64_t npages = G->mheap.npages, total = 0;
    uint32_t sg = atomic_load(&G->mheap.sweepgen);
    int k = (int)((sg / 2) % 2);
    for (int which = 0; which < 4; which++) {
        spanid_t head = which < 2 ? RELAXED_LOAD(c->partial[which]) : RELAXED_LOAD(c->full[which - 2]);
        int full = which >= 2, swept = (which & 1) == k;
        uint32_t want_sg = swept ? sg : sg - 2;
        spanid_t prev = 0;
        uint64_t n = 0;
        for (spanid_t id = head; id; id = spanof_id(id)->next) {
            if (id >= npages)
                gorun_throw("mcheck (%s): mcentral %d %s: link from span %u to span id %u outside the heap", where, spc,
                            list_name(which + 1), prev, id);
            mspan_t *s = spanof_id(id);
            if (++n > npages)
                gorun_throw("mcheck (%s): mcentral %d %s: a cycle (more spans than heap pages)", where, spc,
                            list_name(which + 1));
            if (s->list != which + 1)
                gorun_throw("mcheck (%s): mcentral %d: span %u is on list %s but its list field says %s", where, spc,
                            id, list_name(which + 1), list_name(s->list));
            if (s->prev != prev)
                gorun_throw("mcheck (%s): mcentral %d %s: span %u has prev %u, expected %u", where, spc,
                            list_name(which + 1), id, s->prev, prev);
            if (s->spanclass != spc)
                gorun_throw("mcheck (%s): mcentral %d %s: span %u has span class %u", where, spc, list_name(which + 1),
                            id, s->spanclass);
            mspan_check(id, where);
            if (full ? s->allocCount != s->nelems : s->allocCount >= s->nelems)
                gorun_throw("mcheck (%s): mcentral %d %s: span %u has allocCount %u of nelems %u", where, spc,
                            list_name(which + 1), id, s->allocCount, s->nelems);
            uint32_t ssg = atomic_load(&s->sweepgen);
            if (ssg != want_sg)
                gorun_throw("mcheck (%s): mcentral %d %s (%s): span %u has sweepgen %u, expected %u (heap sweepgen %u)",
                            where, spc, list_name(which + 1), swept ? "swept" : "unswept", id, ssg, want_sg, sg);
            prev = id;
        }
        total += n;
    }
    return total;
}

static inline int page_used(uint64_t p)
{
    const uint64_t *bits = (const uint64_t *)((char *)G + G->off_pallocbits);
    return (int)(bits[p / 64] >> (p % 64) & 1);
}

static inline int page_scavenged(uint64_t p)
{
    const uint64_t *bits = (const uint64_t *)((char *)G + G->off_scavbits);
    return (int)(bits[p / 64] >> (p % 64) & 1);
}

void mheap_check(int full, const char *where)
{
    mheap_t *h = &G->mheap;
    uint64_t onlist[NUM_SPAN_CLASSES];
    for (int spc = 0; spc < NUM_SPAN_CLASSES; spc++) {
        mcentral_t *c = &G->central[spc];
        lock(&c->lock);
        onlist[spc] = mcentral_check(c, where);
        unlock(&c->lock);
        uint64_t ns = RELAXED_LOAD(c->nspans);
        if (onlist[spc] != ns)
            gorun_throw(
                "mcheck (%s): mcentral %d has %llu spans on its lists but nspans %llu (every mcache is flushed)", where,
                spc, (unsigned long long)onlist[spc], (unsigned long long)ns);
    }
    if (!full) return;
    lock(&h->lock);
    char err[256] = "";
    uint64_t nfree = pagealloc_check(err, sizeof err);
    if (nfree == (uint64_t)-1) gorun_throw("mcheck (%s): page allocator: %s", where, err);
    uint64_t pages = 0, spans = 0, large = 0, byclass[NUM_SPAN_CLASSES] = {0};
    _Atomic uint32_t *pm = pagemap();
    for (uint64_t p = 1; p < h->grown_pages;) {
        spanid_t id = atomic_load_explicit(&pm[p], memory_order_acquire);
        if (!id) {
            if (page_used(p) && !page_scavenged(p)) /* scavenged and in use: mheap_scavenge holds it */
                gorun_throw("mcheck (%s): page %llu is allocated in the page bitmap but belongs to no span", where,
                            (unsigned long long)p);
            p++;
            continue;
        }
        if (id != p)
            gorun_throw("mcheck (%s): page %llu maps to span %u, but no in-use span starts there", where,
                        (unsigned long long)p, id);
        mspan_check(id, where);
        mspan_t *s = spanof_id(id);
        for (uint64_t q = p; q < p + s->npages; q++) {
            if (!page_used(q))
                gorun_throw("mcheck (%s): page %llu of in-use span %u is free in the page bitmap", where,
                            (unsigned long long)q, id);
            if (page_scavenged(q))
                gorun_throw("mcheck (%s): page %llu of in-use span %u is scavenged (released to the OS)", where,
                            (unsigned long long)q, id);
        }
        if (s->list == MCL_NONE)
            gorun_throw("mcheck (%s): in-use span %u (span class %u) is on no mcentral list", where, id, s->spanclass);
        pages += s->npages;
        spans++;
        large += spanclass_sizeclass(s->spanclass) == 0;
        byclass[s->spanclass]++;
        p += s->npages;
    }
    if (pages != h->pages_inuse || spans != h->spans_inuse || large != h->large_spans)
        gorun_throw(
            "mcheck (%s): the span walk found %llu pages in %llu spans (%llu large); mheap counts %llu pages in "
            "%llu spans (%llu large)",
            where, (unsigned long long)pages, (unsigned long long)spans, (unsigned long long)large,
            (unsigned long long)h->pages_inuse, (unsigned long long)h->spans_inuse, (unsigned long long)h->large_spans);
    if (nfree + pages + h->scav_inflight_pages + 1 != h->grown_pages)
        gorun_throw("mcheck (%s): %llu free pages + %llu in spans + %llu being scavenged + page 0 != %llu grown pages",
                    where, (unsigned long long)nfree, (unsigned long long)pages,
                    (unsigned long long)h->scav_inflight_pages, (unsigned long long)h->grown_pages);
    for (int spc = 0; spc < NUM_SPAN_CLASSES; spc++)
        if (byclass[spc] != onlist[spc])
            gorun_throw(
                "mcheck (%s): span class %d has %llu in-use spans in the span table, %llu on its mcentral lists", where,
                spc, (unsigned long long)byclass[spc], (unsigned long long)onlist[spc]);
    unlock(&h->lock);
}

#endif /* GORUN_DEBUG */
