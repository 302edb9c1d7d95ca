/* mcentral.c: the central free lists of one span class (Go's mcentral.go).
 *
 * Go keeps lock-free span sets; gorun keeps intrusive doubly-linked lists of span ids under the
 * class's own cross-process lock (the lock users want to see contended). There are four lists:
 * partial[2] (spans with free slots) and full[2] (no free slots). With k = (sweepgen/2) % 2,
 * index k holds swept spans and 1-k unswept ones; advancing sweepgen by 2 swaps the roles
 * without touching a span (go-runtime.md 6.1). Overview: docs/design.md "mcentral".
 */
#include "runtime.h"

static inline _Atomic spanid_t *list_head(mcentral_t *c, int which)
{ return which < 2 ? &c->partial[which] : &c->full[which - 2]; }

/* which: 0,1 = partial[which]; 2,3 = full[which-2]. Caller holds c->lock. */
void mcentral_list_push(mcentral_t *c, int which, spanid_t id)
{
    mspan_t *s = spanof_id(id);
    _Atomic spanid_t *head = list_head(c, which);
    if (s->list != MCL_NONE) gorun_throw("mcentral: span %u pushed while on list %d", id, s->list);
    s->prev = 0;
    s->next = RELAXED_LOAD(*head);
    if (s->next) spanof_id(s->next)->prev = id;
    LOCKED_STORE(*head, id);
    s->list = (uint8_t)(which + 1);
    MCHECK_CENTRAL(c, "mcentral push");
}

static void mcentral_list_remove(mcentral_t *c, spanid_t id)
{
    mspan_t *s = spanof_id(id);
    if (s->list == MCL_NONE) gorun_throw("mcentral: span %u removed but on no list", id);
    _Atomic spanid_t *head = list_head(c, s->list - 1);
    if (s->prev)
        spanof_id(s->prev)->next = s->next;
    else
        LOCKED_STORE(*head, s->next);
    if (s->next) spanof_id(s->next)->prev = s->prev;
    s->next = s->prev = 0;
    s->list = MCL_NONE;
    MCHECK_CENTRAL(c, "mcentral remove");
}

static inline int swept_index(uint32_t sg) { return (int)((sg / 2) % 2); }

/* Put a span an mcache is done with back on the swept lists. Caller holds c->lock. */
static void uncache_locked(mcentral_t *c, spanid_t id, uint32_t sg)
{
    mspan_t *s = spanof_id(id);
    /* Every mcache is flushed at mark termination before sweepgen advances, so a cached span
     * is never stale (sg+1) here. */
    if (atomic_load(&s->sweepgen) != sg + 3)
        gorun_throw("mcentral: uncaching span %u with sweepgen %u (heap %u): not cached this cycle", id,
                    atomic_load(&s->sweepgen), sg);
    atomic_store(&s->sweepgen, sg);
    MCHECK_SPAN(id, "uncache");
    int k = swept_index(sg);
    mcentral_list_push(c, s->allocCount == s->nelems ? 2 + k : k, id);
}

void mcentral_uncache_span(mcentral_t *c, spanid_t id)
{
    uint32_t sg = atomic_load(&G->mheap.sweepgen);
    lock(&c->lock);
    uncache_locked(c, id, sg);
    unlock(&c->lock);
}

/* A new large object's span (class 0/1), straight from mheap: swept and full (Go puts it on the
 * full swept set so the sweeper will find it). */
void mcentral_add_large(mcentral_t *c, spanid_t id)
{
    uint32_t sg = atomic_load(&G->mheap.sweepgen);
    atomic_store(&spanof_id(id)->sweepgen, sg);
    MCHECK_SPAN(id, "new large span");
    lock(&c->lock);
    mcentral_list_push(c, 2 + swept_index(sg), id);
    unlock(&c->lock);
    atomic_fetch_add_explicit(&c->nspans, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&c->ngrow, 1, memory_order_relaxed);
}

/* Pop an unswept span (partial first) and own it for sweeping: sweepgen sg-2 -> sg-1 by CAS,
 * the only way to own a span for sweeping. Returns 0 if the class has none. */
spanid_t mcentral_take_unswept(mcentral_t *c, uint32_t sg)
{
    int u = 1 - swept_index(sg);
    if (!RELAXED_LOAD(c->partial[u]) && !RELAXED_LOAD(c->full[u])) return 0; /* a peek; the locked pop decides */
    lock(&c->lock);
    spanid_t id = RELAXED_LOAD(c->partial[u]) ? RELAXED_LOAD(c->partial[u]) : RELAXED_LOAD(c->full[u]);
    if (id) mcentral_list_remove(c, id);
    unlock(&c->lock);
    if (!id) return 0;
    uint32_t want = sg - 2;
    if (!atomic_compare_exchange_strong(&spanof_id(id)->sweepgen, &want, sg - 1))
        gorun_throw("sweep: span %u on an unswept list has sweepgen %u (heap sweepgen %u)", id, want, sg);
    MCHECK_SPAN(id, "take unswept");
    return id;
}

#define SWEEP_BUDGET 100 /* Go's cacheSpan: at most 100 unswept spans tried per refill */

/* One lock acquisition per refill in the steady state: return `old` (may be 0) and take a span
 * with free slots: a swept partial span, else sweep unswept ones of this class (up to the
 * budget), else grow from mheap. Returns 0 when the heap is exhausted. */
uint32_t mcentral_swept_at_refill;

spanid_t mcentral_exchange(mcentral_t *c, uint8_t spc, spanid_t old)
{
    uint32_t sg = atomic_load(&G->mheap.sweepgen);
    int k = swept_index(sg);
    lock(&c->lock);
    if (old) uncache_locked(c, old, sg);
    spanid_t id = RELAXED_LOAD(c->partial[k]);
    if (id) mcentral_list_remove(c, id);
    unlock(&c->lock);
    for (int budget = SWEEP_BUDGET; !id && budget > 0; budget--) {
        spanid_t cand = mcentral_take_unswept(c, sg);
        if (!cand) break;
        mspan_t *s = spanof_id(cand);
        int live = mspan_sweep(s, sg);
        mcentral_swept_at_refill++;
        if (!live) continue; /* freed to mheap */
        if (live < s->nelems) {
            id = cand;
            break;
        }
        lock(&c->lock);
        mcentral_list_push(c, 2 + k, cand);
        unlock(&c->lock);
    }
    if (!id) {
        int sc = spanclass_sizeclass(spc);
        id = mheap_alloc_span(class_to_npages[sc], spc);
        if (!id) return 0;
        atomic_fetch_add_explicit(&c->nspans, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&c->ngrow, 1, memory_order_relaxed);
    }
    atomic_store(&spanof_id(id)->sweepgen, sg + 3); /* cached and swept */
    MCHECK_SPAN(id, "cache span");
    return id;
}

spanid_t mcentral_cache_span(mcentral_t *c, uint8_t spc) { return mcentral_exchange(c, spc, 0); }
