/* mgc.h: the garbage collector's functions, by file (Go's mgc.go, mgcmark.go, mgcwork.go,
 * mcheckmark.go, mgcsweep.go, mbarrier.go / mwbbuf.go). The shared state they work on is
 * gcctl_t in runtime.h; the cycle's protocol is docs/design.md "The GC cycle". Who may call:
 * [GC] the GC process (main thread unless noted), [W] a worker on its own P, [any] either. */
#ifndef GORUN_MGC_H
#define GORUN_MGC_H

#include "runtime.h"

/* ---- the cycle (mgc.c) ---- */
void gc_trigger_check(void);    /* [W] heap_live reached the trigger: wake the GC process (once) */
void gc_wait_cycle_start(void); /* [W] past the goal with no cycle marking: wait for STW 1 */
/* [GC] STW 1: finish sweeping, phase -> mark, barrier on, allocate black, root-scan requests.
 * 0, or -1 with the dead P's index in *dead. */
int gc_sweep_termination(uint32_t cycle, int *dead);
int gc_mark_step(int64_t budget);  /* [GC] globals, blocked P's, logs, some marking; 1 if quiescent */
int gc_flush_handshake(int *dead); /* [GC] ragged log flush; 1 new work, 0 none, -1 a worker died */
/* [GC] STW 2: drain everything, optional checkmark, barrier off, flush mcaches, sweepgen += 2. */
int gc_mark_termination(uint32_t cycle, int checkmark, int *dead, uint64_t *checked);
void gc_finish_cycle(uint64_t forced_target); /* [GC] after the sweep: release g.gc() waiters */
/* Settings (Go's debug.SetMemoryLimit / debug.SetGCPercent), [any] process attached to the heap
 * (the launcher before forking, a worker, the GC process): each returns the previous value and,
 * when it changes something, bumps settings_gen and wakes the GC process. */
int64_t gc_set_memory_limit(int64_t bytes); /* bytes < 0: no change (returns the current limit) */
int64_t gc_set_gc_percent(int64_t pct);     /* pct < 0: off, stored as -1 */
void gc_set_limiter(int on);                /* [GC] the CPU limiter's bucket is full (1) or not */
void gc_set_mark_throttle(int on);          /* [GC] pause (1) or resume (0, with a wake) the mark threads */

/* ---- marking (mgcmark.c) ---- */
int greyobject(goaddr a);                                /* [any marker] mark; queue if scannable; 1 if newly marked */
void gc_mark_alloc(goaddr a, mspan_t *s, uint32_t size); /* [W] allocate-black */
void gc_worker_scan_roots(gp_t *p);                      /* [W own P | GC under p's roots lock] grey p's root table */
void gc_scan_globals(void);                              /* [GC] grey every global slot */
void gc_scan_pools(void);                                /* [GC] grey every sync.Pool slot (pool.c) */
void gc_mark_tiny_blocks(void);                          /* [GC, STW 1] grey every P's current tiny block */
void gc_assist(void);                                    /* [W] pay allocation debt in scan work (gcAssistAlloc) */
/* [any] the goal and expected scan work an assist uses: Go's revise goal extension (mgcmark.c). */
typedef struct assist_goal {
    uint64_t goal, scan_expected;
} assist_goal_t;
assist_goal_t gc_assist_goal(uint64_t goal, uint64_t scan_expected, uint64_t triggered, int64_t gc_percent,
                             uint64_t live, uint64_t done);
int gc_start_mark_threads(int n);      /* [GC] start n native mark threads (n <= MAX_MARK_THREADS) */
void gc_stop_mark_threads(void);       /* [GC] */
uint64_t gc_help_mark(int64_t budget); /* [GC] the main thread marks too; returns scan work */
int gc_mark_quiescent(void);           /* [GC] no roots pending, no grey objects anywhere */
void gc_mark_finish_stw(void);         /* [GC, STW 2] drain to empty */

void gc_scan_fields(goaddr b); /* [any marker] grey what scannable object b points to, not b itself */

/* ---- specials: finalizers, cleanups, weak handles (mfinal.c) ---- */
enum { SPECIAL_OK = 0, SPECIAL_EXISTS = -1, SPECIAL_FULL = -2, SPECIAL_NOTSTART = -3 };
int special_set_finalizer(goaddr base, uint64_t *id); /* [W] SPECIAL_*: NOTSTART if base is not an object's start */
uint64_t special_clear_finalizer(goaddr base);        /* [W] the removed record's id, 0 if none */
int special_add_cleanup(goaddr addr, uint64_t *id);   /* [W] SPECIAL_* */
int special_stop_cleanup(uint64_t id);                /* [W] 1 if it was attached and is now gone */
int special_weak_make(goaddr addr, uint64_t *id);     /* [W] the address's one weak handle */
goaddr special_weak_value(uint64_t id);               /* [W] the address, or 0 once it is unreachable */
uint32_t finq_pending(void);                          /* [W] records queued for this P (a lock-free peek) */
int finq_peek(uint64_t *id, int *kind, goaddr *addr); /* [W] the head of this P's queue; 0 if empty */
void finq_remove(uint64_t id);                        /* [W] it leaves the queue (after the caller rooted it) */
void special_executed(int kind);                      /* [W] a finalizer or cleanup function returned */
void specials_sweep(mspan_t *s);                      /* [any sweeper] the span's records, before its bits flip */
void specials_markroot(void);                         /* [GC, mark] finalizable objects' referents, queued objects */

/* ---- work buffers (mgcwork.c): the process-local gcWork and the shared grey queue ---- */
void gcw_publish(void);         /* [any marker] hand local grey objects over, or drain them */
uint64_t gcw_publish_all(void); /* [any marker] returns the objects kept local (pool empty) */

/* ---- checkmark (mcheckmark.c) ---- */
uint64_t gc_checkmark(void); /* [GC, STW 2] re-mark from the roots; throws on a white one */

/* ---- sweeping (mgcsweep.c) ---- */
int mspan_sweep(mspan_t *s, uint32_t sg); /* [any] caller owns s (sweepgen sg-1); returns objects left */
int bgsweep(int n);                       /* [GC] sweep up to n spans; 0 when nothing is left */

/* ---- the write barrier and the barrier logs (mwbbuf.c) ---- */
void writebarrier_store(_Atomic uint64_t *slot, goaddr val);                      /* [W] */
void writebarrier_copy(_Atomic uint64_t *dst, _Atomic uint64_t *src, uint64_t n); /* [W] bulk, element by element */
int wblog_shade(gp_t *p, int blocking); /* [any] the same as a marker: drain, publish the grey objects */

#endif
