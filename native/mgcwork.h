/* mgcwork.h: the marker's work (Go's mgcwork.go), shared by the marking files only (mgcwork.c,
 * mgcmark.c, mcheckmark.c): each marking thread's gcWork, a process-local stack of grey objects,
 * and the calls that move buffers of them to and from the shared queue (G->gc.work). */
#ifndef GORUN_MGCWORK_H
#define GORUN_MGCWORK_H

#include "runtime.h"

/* One per marking thread (thread-local): the GC process's main thread and mark threads, and a
 * worker's thread (its roots, its barrier log, assists). Never in shared memory. */
typedef struct gcw {
    goaddr *stk;
    uint64_t n, cap;
    uint64_t bytes_marked, scan_work, objs; /* not yet flushed to the shared counters */
} gcw_t;

extern _Thread_local gcw_t gcw;

void gcw_grow(gcw_t *w);    /* double the stack (throws when out of process memory) */
void gcw_flush_stats(void); /* add the local counters to gcctl's */
int gcw_publish_one(void);  /* up to one buffer of local grey objects to the queue; 0 if the pool is empty */
int gcw_refill(void);       /* one full buffer from the queue into the local stack; 0 if none */

static inline void wpush(gcw_t *w, goaddr a)
{
    if (__builtin_expect(w->n == w->cap, 0)) gcw_grow(w);
    w->stk[w->n++] = a;
}

static inline void gcw_push(goaddr a) { wpush(&gcw, a); }

/* `busy` counts markers holding grey objects outside the shared queue (the quiescence test). */
static inline void busy_add(int d) { atomic_fetch_add(&G->gc.work.busy, d); }

#endif
