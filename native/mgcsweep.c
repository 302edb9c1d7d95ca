/* mgcsweep.c: sweeping (Go's mgcsweep.go).
 *
 * After mark termination advances sweepgen by 2, every in-use span sits on an unswept mcentral
 * list with span.sweepgen == sg-2. A sweeper owns a span by popping it from a list under the
 * mcentral lock and moving its sweepgen sg-2 -> sg-1 by CAS (the only way to own a span for
 * sweeping); sweeping makes the mark bits the alloc bits ("marked" becomes "allocated"),
 * clears the mark bits, and publishes sweepgen = sg. A span left empty goes back to mheap
 * (small or large alike); otherwise it goes to the swept partial or full list. The GC process
 * sweeps in the background (bgsweep); workers sweep the spans they need at refill
 * (mcentral.c). Overview: docs/design.md "Sweeping".
 */
#include <string.h>

#include "runtime.h"

static inline int swept_index(uint32_t sg) { return (int)((sg / 2) % 2); }

/* Sweep s, owned by the caller (sweepgen sg-1). Returns the objects still allocated; 0 means
 * the span was returned to mheap. */
int mspan_sweep(mspan_t *s, uint32_t sg)
{
    gcctl_t *gc = &G->gc;
    spanid_t id = s->startpage;
    uint8_t *ab = allocbits_of(id);
    _Atomic uint8_t *mb = markbits_of(id);
    uint32_t nbytes = (s->nelems + 7) / 8, live = 0;
    specials_sweep(s); /* mfinal.c: weak handles, finalizers (resurrecting), cleanups */
    for (uint32_t i = 0; i < nbytes; i++) {
        uint8_t m = atomic_load_explicit(&mb[i], memory_order_relaxed);
        if (GORUN_DEBUG) { /* zombie check: a marked slot must have been allocated */
            for (int b = 0; b < 8; b++) {
                uint32_t idx = i * 8 + (uint32_t)b;
                if ((m >> b & 1) && idx >= s->freeindex && !(ab[i] >> b & 1))
                    gorun_throw("sweep: span %u object %u is marked but was never allocated", id, idx);
            }
        }
        ab[i] = m;
        live += (uint32_t)__builtin_popcount(m);
    }
    memset((void *)mb, 0, SPAN_BITS_BYTES);
    uint32_t freed = s->allocCount > live ? s->allocCount - live : 0;
    s->allocCount = (uint16_t)live;
    s->freeindex = 0;
    s->allocCache = 0;
    if (freed) s->needzero = 1;
    atomic_fetch_add_explicit(&gc->objs_freed, freed, memory_order_relaxed);
    atomic_fetch_add_explicit(&gc->bytes_freed, (uint64_t)freed * s->elemsize, memory_order_relaxed);
    atomic_fetch_add_explicit(&gc->pages_swept, s->npages, memory_order_relaxed);
    atomic_store_explicit(&s->sweepgen, sg, memory_order_release);
    MCHECK_SPAN(id, "after sweep");
    if (live == 0) {
        atomic_fetch_sub_explicit(&G->central[s->spanclass].nspans, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&gc->spans_freed, 1, memory_order_relaxed);
        mheap_free_span(id);
        return 0;
    }
    return (int)live;
}

/* Pop one unswept span of class spc, sweep it and file it. Returns the span id if it survived
 * (0 if none was found or it was freed); *found says whether a span was swept. */
static spanid_t mcentral_sweep_one(int spc, uint32_t sg, int *found)
{
    mcentral_t *c = &G->central[spc];
    int k = swept_index(sg);
    spanid_t id = mcentral_take_unswept(c, sg);
    *found = id != 0;
    if (!id) return 0;
    mspan_t *s = spanof_id(id);
    if (!mspan_sweep(s, sg)) return 0;
    lock(&c->lock);
    mcentral_list_push(c, s->allocCount == s->nelems ? 2 + k : k, id);
    unlock(&c->lock);
    return id;
}

static int sweep_cursor; /* GC process: next span class bgsweep looks at */

/* Background sweeper step: sweep up to n spans. Returns the number swept; 0 means done. */
int bgsweep(int n)
{
    uint32_t sg = atomic_load(&G->mheap.sweepgen);
    int swept = 0, idle_classes = 0;
    while (swept < n && idle_classes < NUM_SPAN_CLASSES) {
        int found;
        mcentral_sweep_one(sweep_cursor, sg, &found);
        if (found) {
            swept++;
            idle_classes = 0;
        } else {
            idle_classes++;
            sweep_cursor = (sweep_cursor + 1) % NUM_SPAN_CLASSES;
        }
    }
    gc_progress(); /* the watchdog: the GC process's sweep advances */
    return swept;
}
