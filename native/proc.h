/* proc.h: P's, safepoints, blocking calls and stopping the world (Go's proc.go, preempt.go).
 * The P status protocol is at gp_t.status in runtime.h and in docs/design.md "Safepoints" and
 * "Stopping the world". [W] a worker on its own P, [GC] the GC process. */
#ifndef GORUN_PROC_H
#define GORUN_PROC_H

#include "runtime.h"

/* ---- a worker's P (proc.c) ---- */
void p_attach(uint32_t id); /* [W] become P id: its mcache generation, root table, RUNNING */
void p_finish(void);        /* [W] flush the mcache, end time, RUNNING -> DONE (no-op if not RUNNING) */
void safepoint_slow(void);  /* [W] serve this P's requests (stop, scan roots, flush log) */
static inline void safepoint_poll_c(void)
{
    if (thisP && atomic_load_explicit(&thisP->poll, memory_order_acquire)) safepoint_slow();
}
void enter_blocking(void);      /* [W] RUNNING -> SYSCALL (counts as stopped) */
void exit_blocking(void);       /* [W] SYSCALL -> RUNNING, waiting while the GC process holds the P */
void gc_request_and_wait(void); /* [W] g.gc(): a full cycle, sweep included, as a blocking call */

/* ---- root tables (roots.c; the invariant is at gp_t.root_hwm in runtime.h) ---- */
void roots_lock_acquire(gp_t *p); /* [W edits while not RUNNING | GC scans on p's behalf] */
void roots_lock_release(gp_t *p);
void roots_init_local(void);              /* [W] this process now manages thisP's table (an empty free stack) */
int roots_here(void);                     /* 1 if this process is a P managing its root table */
int root_alloc(goaddr a, uint32_t *slot); /* [W] a slot holding a; -1 if the table is full */
void root_free(uint32_t slot);            /* [W] clear and recycle (a no-op once the heap is detached) */

/* ---- the GC process's side (proc.c) ---- */
int stw_stop(uint32_t kind, uint32_t cycle, int *dead); /* [GC] 0, or -1 with a dead running P in *dead */
void stw_start(void);                                   /* [GC] */
int gc_serve_blocked(void);                     /* [GC] serve requests of P's that cannot; returns requests served */
int gc_wait_requests(uint32_t mask, int *dead); /* [GC] until no P has `mask` pending; -1 if a worker died */
uint32_t p_count_running(void); /* [any] P's RUNNING now (a racy snapshot): the rest are idle to the GC */

/* ---- asynchronous preemption (preempt.c) ---- */
int preempt_init(void); /* [W] SIGURG -> pending call -> safepoint; 0, or -1 with errno */

#endif
