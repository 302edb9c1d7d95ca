/* mgcwork.c: the shared grey-object queue (Go's mgcwork.go: work.full, work.empty, getempty,
 * putfull, trygetfull) and the per-thread gcWork that feeds it.
 *
 * The queue is a pool of fixed work buffers in the metadata segment (wbuf_t, WBUF_ENTRIES grey
 * addresses each) on two singly linked lists, full and empty, under the workbuf lock (the
 * highest rank: nothing is taken under it). A marker pushes whole buffers of its local grey
 * objects so other markers, in any process, can help; when the pool has no empty buffer left
 * it keeps its grey objects and drains them itself. `pushes` counts buffers ever published,
 * for the quiescence test of mark completion. Overview: docs/design.md "Marking".
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "mgcwork.h"

_Thread_local gcw_t gcw;

void gcw_grow(gcw_t *w)
{
    uint64_t nc = w->cap ? w->cap * 2 : 4096;
    goaddr *ns = realloc(w->stk, nc * sizeof *ns);
    if (!ns) gorun_throw("out of process memory for the mark stack (%llu entries)", (unsigned long long)nc);
    w->stk = ns;
    w->cap = nc;
}

void gcw_flush_stats(void)
{
    gcctl_t *gc = &G->gc;
    if (gcw.bytes_marked) atomic_fetch_add_explicit(&gc->bytes_marked, gcw.bytes_marked, memory_order_relaxed);
    if (gcw.scan_work) atomic_fetch_add_explicit(&gc->scan_work, gcw.scan_work, memory_order_relaxed);
    if (gcw.objs) atomic_fetch_add_explicit(&gc->objs_marked, gcw.objs, memory_order_relaxed);
    gcw.bytes_marked = gcw.scan_work = gcw.objs = 0;
}

/* ---- the shared queue ---- */

static uint32_t wq_get_empty_locked(workq_t *q)
{
    uint32_t i = q->empty;
    if (i) {
        q->empty = wbuf_at(i - 1)->next;
        return i;
    }
    if (q->fresh < atomic_load_explicit(&q->nbufs, memory_order_acquire)) /* raised at growth, after the reservation */
        return ++q->fresh;                                                /* index fresh-1, returned as index + 1 */
    return 0;
}

/* Move up to one buffer's worth of local grey objects to the shared queue. 0 if the pool is empty. */
int gcw_publish_one(void)
{
    workq_t *q = &G->gc.work;
    lock(&q->lock);
    uint32_t i = wq_get_empty_locked(q);
    unlock(&q->lock);
    if (!i) return 0;
    wbuf_t *b = wbuf_at(i - 1);
    uint32_t k = gcw.n < WBUF_ENTRIES ? (uint32_t)gcw.n : WBUF_ENTRIES;
    gcw.n -= k;
    memcpy(b->obj, gcw.stk + gcw.n, k * sizeof(goaddr));
    b->n = k;
    lock(&q->lock);
    b->next = RELAXED_LOAD(q->full);
    LOCKED_STORE(q->full, i);
    LOCKED_ADD(q->nfull, 1);
    unlock(&q->lock);
    atomic_fetch_add(&q->pushes, 1);
    atomic_fetch_add(&q->avail, 1);
    futex_wake_all(&q->avail);
    return 1;
}

/* Hand every local grey object to the shared queue; if the pool runs dry, keep them (the
 * caller then drains them itself). Returns the objects left local. */
uint64_t gcw_publish_all(void)
{
    while (gcw.n && gcw_publish_one());
    gcw_flush_stats();
    return gcw.n;
}

/* Take a full buffer from the shared queue into the local stack. */
int gcw_refill(void)
{
    workq_t *q = &G->gc.work;
    if (!RELAXED_LOAD(q->full)) return 0; /* a peek; the locked pop decides */
    lock(&q->lock);
    uint32_t i = RELAXED_LOAD(q->full);
    if (i) {
        LOCKED_STORE(q->full, wbuf_at(i - 1)->next);
        LOCKED_SUB(q->nfull, 1);
    }
    unlock(&q->lock);
    if (!i) return 0;
    wbuf_t *b = wbuf_at(i - 1);
    for (uint32_t k = 0; k < b->n; k++) gcw_push(b->obj[k]);
    b->n = 0;
    lock(&q->lock);
    b->next = q->empty;
    q->empty = i;
    unlock(&q->lock);
    return 1;
}
