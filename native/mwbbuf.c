/* mwbbuf.c: the write barrier and the per-P barrier log (Go's mbarrier.go + mwbbuf.go).
 *
 * Every pointer store into the heap or the globals comes through writebarrier_store. While the
 * barrier is on (gcphase mark and mark termination) the store first appends (old value, new
 * value) to its P's log, Go's hybrid barrier recorded unconditionally: shading the old value is
 * the Yuasa deletion half, the new value the Dijkstra insertion half. The log is a
 * single-producer ring in shared memory: the worker appends (wb_head); the GC process drains it
 * concurrently (wb_tail, under the per-P wb_lock). A full log is shaded by its own worker, so no
 * entry is ever dropped and the mutator pays for its own flush, as in Go. With the barrier off a
 * store costs one load and branch more than a plain store. Overview: docs/design.md
 * "Write barrier".
 */
#include <sched.h>

#include "runtime.h"

static inline void wb_lock_acquire(gp_t *p)
{
    uint32_t z = 0;
    while (!atomic_compare_exchange_weak(&p->wb_lock, &z, 1)) {
        z = 0;
        sched_yield();
    }
}

static inline int wb_lock_try(gp_t *p)
{
    uint32_t z = 0;
    return atomic_compare_exchange_strong(&p->wb_lock, &z, 1);
}

static inline void wb_lock_release(gp_t *p) { atomic_store_explicit(&p->wb_lock, 0, memory_order_release); }

/* Shade the entries of p's log. blocking=0: give up (-1) if someone else is draining it.
 * Returns the number of objects this drain newly marked. The caller publishes its gcWork. */
static int wblog_drain(gp_t *p, int blocking)
{
    if (blocking)
        wb_lock_acquire(p);
    else if (!wb_lock_try(p))
        return -1;
    goaddr *log = wblog_of(p->id);
    uint64_t t = atomic_load_explicit(&p->wb_tail, memory_order_relaxed);
    uint64_t h = atomic_load_explicit(&p->wb_head, memory_order_acquire);
    int marked = 0;
    for (; t != h; t++) {
        goaddr *e = log + (t % WBLOG_ENTRIES) * 2;
        if (e[0]) marked += greyobject(e[0]);
        if (e[1]) marked += greyobject(e[1]);
    }
    atomic_store_explicit(&p->wb_tail, t, memory_order_release);
    wb_lock_release(p);
    return marked;
}

/* Drain p's log as a marker: counted busy while it holds grey objects, which it hands to the
 * shared queue before it stops. Returns the objects newly marked, or -1 (not blocking) if
 * someone else is draining the log. */
int wblog_shade(gp_t *p, int blocking)
{
    atomic_fetch_add(&G->gc.work.busy, 1);
    int n = wblog_drain(p, blocking);
    gcw_publish();
    atomic_fetch_add(&G->gc.work.busy, -1);
    return n;
}

/* The worker's log is full: shade it here (Go's wbBufFlush). */
static void wblog_flush_self(void)
{
    wblog_shade(thisP, 1);
    thisP->wb_self_flushes++;
}

void writebarrier_store(_Atomic uint64_t *slot, goaddr val)
{
    if (atomic_load_explicit(&G->gc.wb_enabled, memory_order_relaxed)) {
        gp_t *p = thisP;
        goaddr old = atomic_load_explicit(slot, memory_order_relaxed);
        if (old | val) {
            uint64_t h = atomic_load_explicit(&p->wb_head, memory_order_relaxed);
            if (h - atomic_load_explicit(&p->wb_tail, memory_order_acquire) >= WBLOG_ENTRIES) wblog_flush_self();
            goaddr *e = wblog_of(p->id) + (h % WBLOG_ENTRIES) * 2;
            e[0] = old;
            e[1] = val;
            atomic_store_explicit(&p->wb_head, h + 1, memory_order_release);
            p->wb_entries++;
        }
    }
    atomic_store_explicit(slot, val, memory_order_release);
}

/* Bulk copy of n pointer words (Go's bulkBarrierPreWrite + memmove): every overwritten old
 * value and every copied value is logged before the copy. */
void writebarrier_copy(_Atomic uint64_t *dst, _Atomic uint64_t *src, uint64_t n)
{
    if (dst == src || n == 0) return;
    if (dst < src) {
        for (uint64_t i = 0; i < n; i++)
            writebarrier_store(&dst[i], atomic_load_explicit(&src[i], memory_order_relaxed));
    } else {
        for (uint64_t i = n; i-- > 0;) writebarrier_store(&dst[i], atomic_load_explicit(&src[i], memory_order_relaxed));
    }
}
