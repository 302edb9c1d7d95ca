/* roots.c: the root tables (ARCHITECTURE.md section 3; docs/design.md "Handles and roots").
 *
 * Every handle owns one slot of its P's root table in shared memory for exactly as long as
 * CPython keeps it alive, so the table holds exactly the live handles' addresses and the GC
 * scans them precisely. Slots are recycled through a process-local free stack; root_hwm bounds
 * the scan. The invariant that keeps a scan consistent, and the lock that enforces it while the
 * P is not running, are written at gp_t.root_hwm in runtime.h.
 */
#define _GNU_SOURCE
#include <sched.h>
#include <stdlib.h>

#include "runtime.h"

/* ---- root-table lock (the invariant is at gp_t.root_hwm in runtime.h) ---- */

#define ROOTS_LOCK_CHECK_NS 1000000 /* while waiting, check the other side is alive this often */
#define ROOTS_LOCK_SPINS    64      /* CAS attempts with cpu_relax before yielding the core */

/* Taken by the owner worker for a root edit while its P is not RUNNING, and by the GC process
 * to scan a P's table on its behalf. Held for one edit (the owner) or one table scan (the GC
 * process). A holder that died cannot release it: the worker then throws (the GC process is
 * gone), the GC process proceeds (a dead worker's table no longer changes). */
void roots_lock_acquire(gp_t *p)
{
    uint64_t t0 = 0;
    for (int spins = 0;; spins++) {
        uint32_t z = 0;
        if (atomic_compare_exchange_weak_explicit(&p->roots_lock, &z, 1, memory_order_acquire, memory_order_relaxed))
            return;
        if (spins < ROOTS_LOCK_SPINS) {
            cpu_relax();
            continue;
        }
        sched_yield(); /* the holder may be waiting for our core */
        uint64_t now = nanotime();
        if (!t0) t0 = now;
        if (now - t0 < ROOTS_LOCK_CHECK_NS) continue;
        t0 = now;
        if (p == thisP) { /* the owner waits for the GC process's scan */
            if (gorun_pid_dead(G->gc.gc_ospid))
                gorun_throw("the GC process (pid %d) died while scanning the root table of P%u", (int)G->gc.gc_ospid,
                            p->id);
        } else if (gorun_pid_dead(atomic_load(&p->ospid))) {
            return; /* the owner died mid-edit: its table no longer changes */
        }
    }
}

void roots_lock_release(gp_t *p) { atomic_store_explicit(&p->roots_lock, 0, memory_order_release); }

/* ---- the owner's side ---- */

static uint32_t *freestack;
static uint64_t nfree, freecap;
static gp_t *roots_owner; /* the P whose table this process manages */

void roots_init_local(void)
{
    nfree = 0;
    roots_owner = thisP;
}

int roots_here(void) { return thisP && roots_owner == thisP; }

/* Root edits follow the invariant at gp_t.root_hwm (runtime.h): lock-free while this P is
 * RUNNING (only this process scans the table then), under the P's roots lock otherwise (the GC
 * process may be scanning it: g.blocking(), after the workload). Only this process moves its P
 * into RUNNING, so a RUNNING read here stays true for the whole edit. */
static inline int roots_edit_begin(void)
{
    if (atomic_load_explicit(&thisP->status, memory_order_relaxed) == P_RUNNING) return 0;
    roots_lock_acquire(thisP);
    return 1;
}

static inline void roots_edit_end(int locked)
{
    if (locked) roots_lock_release(thisP);
}

int root_alloc(goaddr a, uint32_t *slot)
{
    _Atomic uint64_t *r = roots_of(thisP->id);
    uint64_t i;
    int locked = roots_edit_begin();
    if (nfree) {
        i = freestack[--nfree];
    } else {
        i = atomic_load_explicit(&thisP->root_hwm, memory_order_relaxed);
        if (i >= G->root_slots) {
            roots_edit_end(locked);
            return -1;
        }
        atomic_store_explicit(&thisP->root_hwm, i + 1, memory_order_release);
    }
    atomic_store_explicit(&r[i], a, memory_order_release);
    atomic_store_explicit(&thisP->root_live, atomic_load_explicit(&thisP->root_live, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    roots_edit_end(locked);
    *slot = (uint32_t)i;
    return 0;
}

void root_free(uint32_t i)
{
    if (!roots_here()) return; /* runtime detached (interpreter shutdown): nothing to release */
    if (nfree == freecap) {    /* grow first: nothing may fail between the slot's clear and its reuse */
        uint64_t nc = freecap ? freecap * 2 : 1024;
        uint32_t *ns = realloc(freestack, nc * sizeof *ns);
        if (!ns) gorun_throw("out of process memory for the root free list");
        freestack = ns;
        freecap = nc;
    }
    int locked = roots_edit_begin();
    atomic_store_explicit(&roots_of(thisP->id)[i], 0, memory_order_release);
    freestack[nfree++] = i;
    atomic_store_explicit(&thisP->root_live, atomic_load_explicit(&thisP->root_live, memory_order_relaxed) - 1,
                          memory_order_relaxed);
    roots_edit_end(locked);
}
