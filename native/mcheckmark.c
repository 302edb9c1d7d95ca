/* mcheckmark.c: GODEBUG=gccheckmark=1 (Go's mcheckmark.go). With the world stopped at mark
 * termination, after marking finished, re-mark everything reachable from the roots (each P's
 * root table under its roots lock, the globals, every sync.Pool slot, the finalizers' roots) into a separate bitmap, the checkmark bits; any
 * object reached that the real mark left white is a fatal error naming the object, its type and
 * the kind of path that reached it. Uses the GC process main thread's gcWork stack. */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

#include "mgcwork.h"

static char checkmark_path[128];

static void checkmark_grey(goaddr a, goaddr from)
{
    spanid_t sid = spanof_addr(a);
    if (!sid) return;
    mspan_t *s = spanof_id(sid);
    if (atomic_load(&s->state) != MSPAN_INUSE)
        gorun_throw("gccheckmark: pointer 0x%llx (from %s 0x%llx) into a free span", (unsigned long long)a,
                    checkmark_path, (unsigned long long)from);
    goaddr start = (goaddr)sid * PAGE_SIZE;
    uint64_t idx = span_objindex(s, a);
    if (idx >= s->nelems) return;
    _Atomic uint8_t *cb = checkbits_of(sid) + idx / 8;
    uint8_t bit = (uint8_t)(1u << (idx % 8));
    if (atomic_load(cb) & bit) return;
    atomic_fetch_or(cb, bit);
    goaddr base = start + idx * s->elemsize;
    if (!(atomic_load(markbits_of(sid) + idx / 8) & bit)) {
        const char *tname = s->spanclass == TINY_SPAN_CLASS ? "tiny block" : type_of(hdr_tid(base))->name;
        gorun_throw("gccheckmark: object 0x%llx of type %s is reachable (via %s %#llx) but was not marked",
                    (unsigned long long)base, tname, checkmark_path, (unsigned long long)from);
    }
    if (!spanclass_noscan(s->spanclass)) gcw_push(base);
}

static void checkmark_drain(void)
{
    snprintf(checkmark_path, sizeof checkmark_path, "a pointer field of heap object");
    while (gcw.n) {
        goaddr b = gcw.stk[--gcw.n];
        uint64_t hdr = *obj_word(b);
        const gotype_t *t = type_of((uint32_t)hdr);
        uint64_t *w = obj_word(b + OBJ_HEADER_SIZE);
        if (t->kind == TK_STRUCT) {
            for (uint32_t i = 0; i < t->nwords; i++)
                if ((t->ptrmask[i / 64] >> (i % 64) & 1) && w[i]) checkmark_grey(w[i], b);
        } else if (t->kind == TK_ARRAY && t->elem_kind == FK_PTR) {
            for (uint32_t i = 0; i < (uint32_t)(hdr >> 32); i++)
                if (w[i]) checkmark_grey(w[i], b);
        }
    }
}

/* World stopped, marking finished: every object reachable from the roots must be marked. */
uint64_t gc_checkmark(void)
{
    _Atomic uint32_t *pm = pagemap();
    for (uint64_t p = 1; p < G->mheap.grown_pages; p++)
        if (atomic_load(&pm[p]) == p) memset((void *)checkbits_of((spanid_t)p), 0, SPAN_BITS_BYTES);
    uint64_t saved = gcw.n;
    if (saved) gorun_throw("gccheckmark: grey objects left at mark termination");
    for (uint32_t i = 0; i < G->nprocs; i++) {
        gp_t *p = &G->allp[i];
        _Atomic uint64_t *r = roots_of(i);
        roots_lock_acquire(p); /* a blocked P's worker may edit its table during STW 2 */
        uint64_t n = atomic_load(&p->root_hwm);
        for (uint64_t k = 0; k < n; k++) {
            goaddr a = atomic_load(&r[k]);
            snprintf(checkmark_path, sizeof checkmark_path, "a handle: P%u root table slot", i);
            if (a) {
                checkmark_grey(a, k);
                checkmark_drain();
            }
        }
        roots_lock_release(p);
    }
    _Atomic uint64_t *g = globals_base();
    for (uint64_t k = 0; k < G->nglobals; k++) {
        goaddr a = atomic_load(&g[k]);
        snprintf(checkmark_path, sizeof checkmark_path, "global");
        if (a) {
            checkmark_grey(a, k);
            checkmark_drain();
        }
    }
    for (uint32_t i = 0; i < MAX_POOLS; i++) { /* sync.Pool slots, both generations (pool.c) */
        poolhdr_t *pl = pool_at(i);
        if (atomic_load(&pl->state) != POOL_READY) continue;
        for (uint32_t p = 0; p < G->nprocs; p++)
            for (uint32_t gen = 0; gen < 2; gen++) {
                poolshard_t *s = pool_shard(pl, p, gen);
                snprintf(checkmark_path, sizeof checkmark_path, "sync.Pool %s: P%u %s", pl->name, p,
                         gen == atomic_load(&pl->gen) ? "primary" : "victim");
                for (uint32_t k = 0; k <= POOL_SHARED_CAP; k++) {
                    goaddr a = atomic_load(k ? &s->shared[k - 1] : &s->private);
                    if (a) {
                        checkmark_grey(a, k);
                        checkmark_drain();
                    }
                }
            }
    }
    /* The specials' roots (mfinal.c): a queued finalizer's object, and what an object with a
     * finalizer references (not the object itself). */
    lock(&G->specials.lock);
    for (uint32_t i = 0; i < G->specials.fresh; i++) {
        special_t *x = special_at(i);
        if (x->kind != SPECIAL_FINALIZER || x->state == SPS_FREE) continue;
        snprintf(checkmark_path, sizeof checkmark_path, "special record %u", i);
        if (x->state == SPS_QUEUED)
            checkmark_grey(x->addr, i);
        else if (!spanclass_noscan(spanof_id(spanof_addr(x->addr))->spanclass))
            gcw_push(x->addr);
        checkmark_drain();
    }
    unlock(&G->specials.lock);
    uint64_t checked = 0;
    for (uint64_t p = 1; p < G->mheap.grown_pages; p++)
        if (atomic_load(&pm[p]) == p)
            for (int k = 0; k < SPAN_BITS_BYTES; k++)
                checked += (uint64_t)__builtin_popcount(atomic_load(checkbits_of((spanid_t)p) + k));
    return checked;
}
