/* mfinal.c: finalizers, cleanups and weak handles (Go's mfinal.go, the specials of mheap.go,
 * the weak handles of internal/weak).
 *
 * A special record (special_t, runtime.h) ties a finalizer, a cleanup or a weak handle to one
 * object. Records live in one shared table under specials.lock (Go keeps them per span under
 * mheap_.speciallock); an attached record is on its object's span list (mspan.specials), so
 * the sweeper finds a span's records without searching. The callbacks are Python objects in
 * the registering worker (gorun/mfinal.py), keyed by the record id; the record holds the id's
 * generation and the P.
 *
 * Marking (specials_markroot, once per cycle, by the GC process during concurrent mark): an
 * object with a finalizer is not a root, but everything it references is marked (Go's span
 * root job); a queued finalizer's object is a root (Go's finq root) until its P runs it.
 * Sweeping (specials_sweep, by whoever sweeps the span, before its mark bits become its alloc
 * bits), for the records of objects found unmarked, in Go's order:
 *   1. weak handles are zeroed and dropped;
 *   2. a finalizer is queued to its P and its object marked again (resurrected: what it
 *      references was marked by the root job, so it all stays; the object is freed by a later
 *      cycle if it is unreachable then);
 *   3. a cleanup of an object that is still unmarked (no finalizer revived it) is queued.
 * A queued record wakes its P with SIGURG; the P runs it at its next safepoint outside the
 * runtime (gorun/mfinal.py, from the pending call of preempt.c or g.safepoint()).
 * Weak pointers: value() reads the record; an object on a span not yet swept this cycle is
 * dead if its mark bit is clear (the sweep will zero the handle), so a weak pointer reads nil
 * exactly from the mark termination that found the object unreachable, never before. While
 * marking, value() and the run of a finalizer shade the object they hand out (a strong pointer
 * made from thin air, as Go's weak.Pointer.Value does).
 * Overview: docs/design.md "Finalizers, cleanups and weak pointers".
 */
#define _GNU_SOURCE
#include <sched.h>
#include <signal.h>

#include "mgcwork.h"
#include "runtime.h"

static inline specials_t *SP(void) { return &G->specials; }
static inline uint64_t rec_id(uint32_t i) { return (uint64_t)special_at(i)->gen << 32 | i; }

/* Under the lock: a free record (its index + 1), or 0 when the table is full. */
static uint32_t rec_alloc(int kind, goaddr addr)
{
    specials_t *sp = SP();
    uint32_t r = sp->free;
    if (r)
        sp->free = special_at(r - 1)->next;
    else if (sp->fresh < MAX_SPECIALS)
        r = ++sp->fresh;
    else
        return 0;
    special_t *x = special_at(r - 1);
    if (x->gen == 0) x->gen = 1;
    x->next = 0;
    x->kind = (uint8_t)kind;
    x->state = SPS_ATTACHED;
    x->addr = addr;
    x->p = (uint16_t)(thisP ? thisP->id : 0);
    LOCKED_ADD(sp->nlive, 1);
    return r;
}

static void rec_free(uint32_t i) /* under the lock; i is an index */
{
    specials_t *sp = SP();
    special_t *x = special_at(i);
    x->state = SPS_FREE;
    x->kind = 0;
    x->addr = 0;
    if (++x->gen == 0) x->gen = 1;
    x->next = sp->free;
    sp->free = i + 1;
    LOCKED_SUB(sp->nlive, 1);
}

/* The record an id names, if it is still that use of the record (under the lock). */
static special_t *rec_of(uint64_t id, uint32_t *idx)
{
    uint32_t i = (uint32_t)id;
    if (i >= SP()->fresh) return NULL;
    special_t *x = special_at(i);
    if (x->gen != (uint32_t)(id >> 32) || x->state == SPS_FREE) return NULL;
    *idx = i;
    return x;
}

static void span_push(mspan_t *s, uint32_t r)
{
    special_at(r - 1)->next = atomic_load_explicit(&s->specials, memory_order_relaxed);
    atomic_store_explicit(&s->specials, r, memory_order_relaxed);
}

/* Unlink record r (index + 1) whose predecessor on s's list is prev (0: r is the head). */
static void span_unlink(mspan_t *s, uint32_t prev, uint32_t r)
{
    uint32_t next = special_at(r - 1)->next;
    if (prev)
        special_at(prev - 1)->next = next;
    else
        atomic_store_explicit(&s->specials, next, memory_order_relaxed);
}

/* The attached record of `kind` at exactly addr on s (index + 1, predecessor in *prev), or 0. */
static uint32_t span_find(mspan_t *s, int kind, goaddr addr, uint32_t *prev)
{
    uint32_t pr = 0;
    for (uint32_t r = atomic_load_explicit(&s->specials, memory_order_relaxed); r; r = special_at(r - 1)->next) {
        special_t *x = special_at(r - 1);
        if (x->kind == kind && x->addr == addr) {
            if (prev) *prev = pr;
            return r;
        }
        pr = r;
    }
    return 0;
}

static void queue_push(uint32_t p, uint32_t r) /* under the lock */
{
    specials_t *sp = SP();
    special_at(r - 1)->next = 0;
    special_at(r - 1)->state = SPS_QUEUED;
    if (sp->finq_tail[p])
        special_at(sp->finq_tail[p] - 1)->next = r;
    else
        sp->finq_head[p] = r;
    sp->finq_tail[p] = r;
    LOCKED_ADD(sp->finq_len[p], 1);
}

/* A strong pointer to a is being made from a special (a weak pointer's value, a queued
 * finalizer's object): while marking it must not stay white (Go's shade in weak Value). */
static void shade(goaddr a)
{
    if (atomic_load(&G->gc.phase) != GC_MARK) return;
    busy_add(1);
    greyobject(a);
    gcw_publish();
    busy_add(-1);
}

static inline int is_marked(mspan_t *s, goaddr a)
{
    uint64_t idx = span_objindex(s, a);
    return (atomic_load_explicit(markbits_of(s->startpage) + idx / 8, memory_order_relaxed) >> (idx % 8)) & 1;
}

/* ---- registration, by a worker on its own P ---- */

int special_set_finalizer(goaddr addr, uint64_t *id)
{
    mspan_t *s;
    if (findobject(addr, &s) != addr) return SPECIAL_NOTSTART;
    lock(&SP()->lock);
    int rc = SPECIAL_OK;
    if (span_find(s, SPECIAL_FINALIZER, addr, NULL))
        rc = SPECIAL_EXISTS;
    else {
        uint32_t r = rec_alloc(SPECIAL_FINALIZER, addr);
        if (!r)
            rc = SPECIAL_FULL;
        else {
            span_push(s, r);
            *id = rec_id(r - 1);
            atomic_fetch_add_explicit(&SP()->fin_set, 1, memory_order_relaxed);
        }
    }
    unlock(&SP()->lock);
    return rc;
}

uint64_t special_clear_finalizer(goaddr addr)
{
    mspan_t *s;
    if (findobject(addr, &s) != addr) return 0;
    uint64_t id = 0;
    uint32_t prev = 0;
    lock(&SP()->lock);
    uint32_t r = span_find(s, SPECIAL_FINALIZER, addr, &prev);
    if (r) {
        id = rec_id(r - 1);
        span_unlink(s, prev, r);
        rec_free(r - 1);
    }
    unlock(&SP()->lock);
    return id;
}

int special_add_cleanup(goaddr addr, uint64_t *id)
{
    mspan_t *s;
    if (!findobject(addr, &s)) return SPECIAL_NOTSTART;
    lock(&SP()->lock);
    uint32_t r = rec_alloc(SPECIAL_CLEANUP, addr);
    if (r) {
        span_push(s, r);
        *id = rec_id(r - 1);
        atomic_fetch_add_explicit(&SP()->cleanup_added, 1, memory_order_relaxed);
    }
    unlock(&SP()->lock);
    return r ? SPECIAL_OK : SPECIAL_FULL;
}

int special_stop_cleanup(uint64_t id)
{
    uint32_t i;
    int stopped = 0;
    lock(&SP()->lock);
    special_t *x = rec_of(id, &i);
    if (x && x->kind == SPECIAL_CLEANUP && x->state == SPS_ATTACHED) {
        mspan_t *s = spanof_id(spanof_addr(x->addr)); /* attached: the object is alive */
        uint32_t pr = 0;
        for (uint32_t r = atomic_load_explicit(&s->specials, memory_order_relaxed); r;
             pr = r, r = special_at(r - 1)->next)
            if (r == i + 1) {
                span_unlink(s, pr, r);
                rec_free(i);
                stopped = 1;
                break;
            }
    }
    unlock(&SP()->lock);
    if (stopped) atomic_fetch_add_explicit(&SP()->cleanup_stopped, 1, memory_order_relaxed);
    return stopped;
}

int special_weak_make(goaddr addr, uint64_t *id)
{
    mspan_t *s;
    if (!findobject(addr, &s)) return SPECIAL_NOTSTART;
    lock(&SP()->lock);
    uint32_t r = span_find(s, SPECIAL_WEAK, addr, NULL); /* canonical: one handle per address */
    if (!r && (r = rec_alloc(SPECIAL_WEAK, addr)) != 0) {
        span_push(s, r);
        atomic_fetch_add_explicit(&SP()->weak_made, 1, memory_order_relaxed);
    }
    if (r) *id = rec_id(r - 1);
    unlock(&SP()->lock);
    return r ? SPECIAL_OK : SPECIAL_FULL;
}

goaddr special_weak_value(uint64_t id)
{
    for (;;) {
        uint32_t i;
        goaddr a = 0;
        int retry = 0;
        lock(&SP()->lock);
        special_t *x = rec_of(id, &i);
        if (x && x->kind == SPECIAL_WEAK && x->addr) {
            a = x->addr;
            mspan_t *s = spanof_id(spanof_addr(a));
            uint32_t sg = atomic_load(&G->mheap.sweepgen);
            uint32_t ssg = atomic_load_explicit(&s->sweepgen, memory_order_acquire);
            if (ssg == sg - 2 && !is_marked(s, a))
                a = 0; /* found unreachable by the last mark; its sweep will zero the handle */
            else if (ssg == sg - 1)
                retry = 1; /* being swept right now: wait for the sweeper's verdict */
        }
        unlock(&SP()->lock);
        if (retry) {
            safepoint_poll_c();
            sched_yield();
            continue;
        }
        if (a) shade(a);
        return a;
    }
}

/* ---- the P's queue ---- */

uint32_t finq_pending(void) { return thisP ? RELAXED_LOAD(SP()->finq_len[thisP->id]) : 0; }

int finq_peek(uint64_t *id, int *kind, goaddr *addr)
{
    specials_t *sp = SP();
    uint32_t p = thisP->id;
    lock(&sp->lock);
    uint32_t r = sp->finq_head[p];
    if (r) {
        special_t *x = special_at(r - 1);
        *id = rec_id(r - 1);
        *kind = x->kind;
        *addr = x->addr;
    }
    unlock(&sp->lock);
    return r != 0;
}

/* The head of this P's queue, peeked as id, leaves it. A finalizer's object is a root while
 * queued; the caller already holds a handle to it, which a marking P may have scanned before
 * it existed: shade it. */
void finq_remove(uint64_t id)
{
    specials_t *sp = SP();
    uint32_t p = thisP->id, i;
    goaddr a = 0;
    lock(&sp->lock);
    special_t *x = rec_of(id, &i);
    if (x && x->state == SPS_QUEUED && sp->finq_head[p] == i + 1) {
        if (x->kind == SPECIAL_FINALIZER) a = x->addr;
        sp->finq_head[p] = x->next;
        if (!sp->finq_head[p]) sp->finq_tail[p] = 0;
        LOCKED_SUB(sp->finq_len[p], 1);
        rec_free(i);
    }
    unlock(&sp->lock);
    if (a) shade(a);
}

void special_executed(int kind)
{
    atomic_fetch_add_explicit(kind == SPECIAL_FINALIZER ? &SP()->fin_executed : &SP()->cleanup_executed, 1,
                              memory_order_relaxed);
}

/* ---- the GC's side ---- */

/* One pass of specials_sweep: every record of `kind` on span s whose object is unmarked leaves
 * the span's list and is dealt with as its kind says. Returns the P's whose queue got a record.
 * Under the specials lock. */
static uint64_t sweep_kind(mspan_t *s, specials_t *sp, uint32_t kind)
{
    uint64_t wake = 0;
    uint32_t prev = 0, r = atomic_load_explicit(&s->specials, memory_order_relaxed);
    while (r) {
        special_t *x = special_at(r - 1);
        uint32_t next = x->next;
        if (x->kind != kind || is_marked(s, x->addr)) {
            prev = r;
            r = next;
            continue;
        }
        span_unlink(s, prev, r);
        if (kind == SPECIAL_WEAK) {
            rec_free(r - 1);
            atomic_fetch_add_explicit(&sp->weak_cleared, 1, memory_order_relaxed);
        } else {
            if (kind == SPECIAL_FINALIZER) { /* resurrect the object until its finalizer has run */
                uint64_t idx = span_objindex(s, x->addr);
                atomic_fetch_or_explicit(markbits_of(s->startpage) + idx / 8, (uint8_t)(1u << (idx % 8)),
                                         memory_order_relaxed);
                atomic_fetch_add_explicit(&G->mheap.heap_live, s->elemsize, memory_order_relaxed);
                atomic_fetch_add_explicit(&sp->fin_queued, 1, memory_order_relaxed);
            } else {
                x->addr = 0; /* the cleanup never sees the object */
                atomic_fetch_add_explicit(&sp->cleanup_queued, 1, memory_order_relaxed);
            }
            queue_push(x->p, r);
            wake |= 1ull << x->p;
        }
        r = next;
    }
    return wake;
}

void specials_sweep(mspan_t *s)
{
    if (!atomic_load_explicit(&s->specials, memory_order_relaxed)) return;
    specials_t *sp = SP();
    lock(&sp->lock);
    /* Go's order: 1. weak handles of unmarked objects are zeroed, before any finalizer is queued;
     * 2. finalizers of unmarked objects are queued and their objects resurrected; 3. cleanups of
     * objects still unmarked (none revived them) are queued. */
    sweep_kind(s, sp, SPECIAL_WEAK);
    uint64_t wake = sweep_kind(s, sp, SPECIAL_FINALIZER); /* P's whose queue got a record */
    wake |= sweep_kind(s, sp, SPECIAL_CLEANUP);
    unlock(&sp->lock);
    while (wake) { /* the P runs them at its next safepoint outside the runtime (preempt.c) */
        int p = __builtin_ctzll(wake);
        wake &= wake - 1;
        int32_t pid = atomic_load(&G->allp[p].ospid);
        if (pid > 0 && atomic_load(&G->allp[p].status) != P_DONE) kill(pid, SIGURG);
    }
}

void specials_markroot(void)
{
    specials_t *sp = SP();
    busy_add(1);
    lock(&sp->lock);
    for (uint32_t i = 0; i < sp->fresh; i++) {
        special_t *x = special_at(i);
        if (x->kind != SPECIAL_FINALIZER) continue;
        if (x->state == SPS_QUEUED)
            greyobject(x->addr); /* Go's finq root: the object until its finalizer has run */
        else if (x->state == SPS_ATTACHED) {
            mspan_t *s = spanof_id(spanof_addr(x->addr));
            if (!spanclass_noscan(s->spanclass)) gc_scan_fields(x->addr); /* not the object itself */
        }
    }
    unlock(&sp->lock);
    gcw_publish();
    busy_add(-1);
}
