/* mcache.c: the per-P span cache (Go's mcache.go): one current span per span class, no lock.
 *
 * A span's free slots are found with Go's allocCache: the complement of the alloc bits from
 * freeindex, so the next free slot is a count of trailing zeros. Refill hands the exhausted span
 * back to its mcentral and takes another in one lock acquisition. heap_live is charged
 * pessimistically at refill with every free byte of the new span and credited back at uncache
 * with what stayed free (Go's rule). Overview: docs/design.md "mcache".
 */
#include "runtime.h"

/* Load allocCache for the 64-object word holding freeindex, skipping fully allocated words. */
static void span_reload_cache(mspan_t *s)
{
    const uint64_t *ab = (const uint64_t *)allocbits_of(s->startpage);
    while (s->freeindex < s->nelems) {
        uint32_t w = s->freeindex / 64, b = s->freeindex % 64;
        uint64_t bits = ~ab[w] >> b;
        if (bits) {
            s->allocCache = bits;
            return;
        }
        s->freeindex = (uint16_t)((w + 1) * 64);
    }
    s->allocCache = 0;
}

/* Next free object index in s, or -1 if the span is full. Caller owns s. */
int span_next_free(mspan_t *s)
{
    for (;;) {
        if (s->allocCache) {
            int bit = __builtin_ctzll(s->allocCache);
            uint32_t idx = s->freeindex + (uint32_t)bit;
            if (idx >= s->nelems) {
                s->freeindex = s->nelems;
                s->allocCache = 0;
                return -1;
            }
            s->allocCache = (s->allocCache >> bit) >> 1;
            s->freeindex = (uint16_t)(idx + 1);
            s->allocCount++;
            return (int)idx;
        }
        if (s->freeindex >= s->nelems) return -1;
        span_reload_cache(s);
        if (!s->allocCache) return -1;
    }
}

static inline void heap_live_add(int64_t d)
{ atomic_fetch_add_explicit(&G->mheap.heap_live, (uint64_t)d, memory_order_relaxed); }

static inline int64_t span_free_bytes(const mspan_t *s) { return (int64_t)(s->nelems - s->allocCount) * s->elemsize; }

int mcache_refill(uint8_t spc)
{
    mcache_t *mc = &thisP->mcache;
    spanid_t old = mc->alloc[spc];
    if (old) heap_live_add(-span_free_bytes(spanof_id(old)));
    mc->alloc[spc] = 0;
    uint64_t t0 = gorun_trace_on ? nanotime() : 0;
    int rc = rcall_enter(RC_REFILL, t0);
    mcentral_swept_at_refill = 0;
    spanid_t id = mcentral_exchange(&G->central[spc], spc, old);
    rcall_exit(rc);
    if (gorun_trace_on) trace_emit_dur(EV_REFILL, t0, nanotime(), spc | (uint64_t)mcentral_swept_at_refill << 8);
    if (!id) return -1;
    mspan_t *s = spanof_id(id);
    span_reload_cache(s);
    heap_live_add(span_free_bytes(s));
    mc->alloc[spc] = id;
    thisP->stats.refills++;
    gc_trigger_check();
    return 0;
}

/* Flush the whole mcache back to the mcentrals (Go's releaseAll). Called by the P itself when
 * it finishes, and by the GC process for every P with the world stopped at mark termination. */
void mcache_release_all(void)
{
    if (thisP) mcache_release_all_p(thisP);
}

void mcache_release_all_p(gp_t *p)
{
    mcache_t *mc = &p->mcache;
    for (int spc = 0; spc < NUM_SPAN_CLASSES; spc++) {
        spanid_t id = mc->alloc[spc];
        if (!id) continue;
        heap_live_add(-span_free_bytes(spanof_id(id)));
        mc->alloc[spc] = 0;
        mcentral_uncache_span(&G->central[spc], id);
    }
    mc->tiny = 0;
    mc->tinyoffset = 0;
    mc->flushGen = atomic_load(&G->mheap.sweepgen);
}
