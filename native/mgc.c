/* mgc.c: the GC cycle's stop-the-world steps and the allocation-side hooks (Go's mgc.go).
 *
 * The GC process (gorun/gc.py) decides when; these functions do one bounded step each:
 *   gc_sweep_termination: finish sweeping, STW 1, sync.Pool's victim rotation (pool.c),
 *     phase -> mark, barrier on for every P, mark tiny blocks, ask every P to scan its roots, enable blackening, restart.
 *   gc_mark_step / gc_flush_handshake: concurrent mark work (globals and pools first) and the ragged barrier that
 *     flushes every P's barrier log.
 *   gc_mark_termination: STW 2, drain what is left, optional checkmark, barrier off, flush
 *     every mcache, sweepgen += 2, heap_live = marked, restart.
 * The pause's work depends on the number of P's and barrier entries since the last handshake,
 * never on the heap size. Overview: docs/design.md "The GC cycle".
 */
#define _GNU_SOURCE
#include <sched.h>
#include <signal.h>
#include <string.h>

#include "runtime.h"

#define CYCLE_START_WAIT_NS  (1000 * 1000L)         /* a worker past the goal re-wakes the GC process this often */
#define CYCLE_START_CHECK_NS (100ull * 1000 * 1000) /* ... and after this long checks that it is alive */
#define MAIN_MARK_IDLE_NS    (200 * 1000L)          /* the main thread's nap when a mark step found nothing */

/* ---- allocation side (workers) ---- */

void gc_trigger_check(void)
{
    gcctl_t *gc = &G->gc;
    uint64_t t = atomic_load_explicit(&gc->trigger, memory_order_relaxed);
    if (t == UINT64_MAX || atomic_load_explicit(&G->mheap.heap_live, memory_order_relaxed) < t) return;
    if (atomic_compare_exchange_strong(&gc->trigger, &t, UINT64_MAX)) { /* fire once */
        atomic_fetch_add(&gc->gc_wake, 1);
        futex_wake_all(&gc->gc_wake);
    }
}

/* A worker past the heap goal with no cycle running waits until the GC process starts one. In Go
 * the allocating goroutine runs gcStart itself; here the start belongs to another process that
 * may not be on a CPU yet, and without this wait a busy machine lets the heap run far past its
 * goal. The wait serves safepoint requests (the start itself needs this P to stop). It is
 * skipped, or ends, while the GC CPU limiter is on (then the heap may overshoot, as in Go).
 * Called at the start of mallocgc, where no lock is held. */
void gc_wait_cycle_start(void)
{
    gcctl_t *gc = &G->gc;
    if (atomic_load_explicit(&gc->limiter_on, memory_order_relaxed)) return; /* the heap may overshoot */
    uint64_t t0 = nanotime();
    int rc = rcall_enter(RC_CYCLE_WAIT, t0);
    while (atomic_load(&gc->phase) == GC_OFF && !atomic_load(&gc->shutdown) && !atomic_load(&gc->limiter_on) &&
           atomic_load(&G->mheap.heap_live) >= atomic_load(&gc->goal)) {
        uint32_t gen = atomic_load(&gc->world_gen);
        atomic_fetch_add(&gc->gc_wake, 1);
        futex_wake_all(&gc->gc_wake);
        safepoint_poll_c();
        if (atomic_load(&gc->world_gen) == gen) futex_wait_until(&gc->world_gen, gen, CYCLE_START_WAIT_NS);
        if (gc->gc_ospid > 0 && nanotime() - t0 > CYCLE_START_CHECK_NS && gorun_pid_dead(gc->gc_ospid))
            gorun_throw("the GC process (pid %d) is gone while the heap is past its goal", (int)gc->gc_ospid);
    }
    rcall_exit(rc);
    uint64_t dt = nanotime() - t0;
    atomic_fetch_add_explicit(&gc->assist_ns, dt, memory_order_relaxed);
    atomic_fetch_add_explicit(&gc->assist_cpu_total_ns, dt, memory_order_relaxed);
}

/* ---- settings ---- */

static void settings_changed(void)
{
    gcctl_t *gc = &G->gc;
    atomic_fetch_add(&gc->settings_gen, 1);
    atomic_fetch_add(&gc->gc_wake, 1); /* the GC process re-paces (as gc_trigger_check wakes it) */
    futex_wake_all(&gc->gc_wake);
}

int64_t gc_set_memory_limit(int64_t bytes)
{
    if (bytes < 0) return atomic_load(&G->gc.memory_limit);
    int64_t old = atomic_exchange(&G->gc.memory_limit, bytes);
    settings_changed();
    return old;
}

int64_t gc_set_gc_percent(int64_t pct)
{
    int64_t old = atomic_exchange(&G->gc.gc_percent, pct < 0 ? -1 : pct);
    settings_changed();
    return old;
}

void gc_set_limiter(int on) { atomic_store(&G->gc.limiter_on, on ? 1u : 0u); }

void gc_set_mark_throttle(int on)
{
    atomic_store(&G->gc.mark_throttle, on ? 1u : 0u);
    if (!on) futex_wake_all(&G->gc.mark_throttle);
}

/* ---- GC process ---- */

static int globals_scanned;

int gc_sweep_termination(uint32_t cycle, int *dead)
{
    gcctl_t *gc = &G->gc;
    while (bgsweep(256)) /* finish the previous sweep concurrently */
        ;
    if (stw_stop(PAUSE_SWEEPTERM, cycle, dead) != 0) return -1;
    while (bgsweep(1 << 30)) /* anything a racing refill left (normally nothing) */
        ;
    atomic_store(&gc->bytes_marked, 0);
    atomic_store(&gc->scan_work, 0);
    atomic_store(&gc->objs_marked, 0);
    atomic_store(&gc->mark_cpu_ns, 0);
    atomic_store(&gc->assist_ns, 0);
    atomic_store(&gc->bg_credit, 0);
    atomic_store(&gc->triggered, atomic_load(&G->mheap.heap_live)); /* the assists' goal extension */
    /* A mark thread that read `blacken` just before the last cycle ended may still count itself
     * busy for an instant (it re-checks and leaves empty-handed): wait that out. Grey objects
     * in the shared queue would be a real leftover. */
    while (atomic_load(&gc->work.busy)) sched_yield();
    if (RELAXED_LOAD(gc->work.nfull)) gorun_throw("gc: grey objects left over from the previous cycle");
    pool_cleanup(); /* Go's poolCleanup, here in STW 1 as in Go: before any marking (docs/design.md "sync.Pool") */
    atomic_store(&gc->phase, GC_MARK);
    atomic_store(&gc->wb_enabled, 1);
    gc_mark_tiny_blocks();
    for (uint32_t i = 0; i < G->nprocs; i++) {
        G->allp[i].assist_debt = 0;
        atomic_fetch_or(&G->allp[i].poll, POLL_SCANROOTS);
    }
    atomic_store(&gc->roots_pending, G->nprocs);
    globals_scanned = 0;
    atomic_store_explicit(&gc->blacken, 1, memory_order_release);
    stw_start();
    /* Wake the mark threads only now: a woken thread can preempt this one on its core, which
     * inside the pause cost up to a few hundred microseconds. */
    atomic_fetch_add(&gc->work.avail, 1);
    futex_wake_all(&gc->work.avail);
    return 0;
}

static void drain_all_logs(int blocking)
{
    for (uint32_t i = 0; i < G->nprocs; i++) {
        gp_t *p = &G->allp[i];
        if (atomic_load(&p->wb_head) == atomic_load(&p->wb_tail)) continue;
        wblog_shade(p, blocking);
    }
}

/* One step of concurrent mark for the GC process's main thread. Returns 1 if marking looks
 * finished (quiescent), 0 otherwise. With nothing to do it sleeps until work is published (or
 * 200 us), so it never spins against the mark threads and the mutators for a core. */
int gc_mark_step(int64_t budget)
{
    uint32_t avail = atomic_load(&G->gc.work.avail);
    if (!globals_scanned) {
        gc_scan_globals();
        gc_scan_pools();
        specials_markroot(); /* mfinal.c: what finalizable objects reference, queued finalizers */
        globals_scanned = 1;
    }
    gc_serve_blocked();
    drain_all_logs(0);
    uint64_t did = gc_help_mark(budget);
    if (gc_mark_quiescent()) return 1;
    if (!did) futex_wait_until(&G->gc.work.avail, avail, MAIN_MARK_IDLE_NS);
    return 0;
}

/* Ragged barrier: every P flushes its barrier log at its next safepoint (the GC process does it
 * for blocked ones). Returns 1 if any flush found new objects, 0 if none, -1 if a worker died. */
int gc_flush_handshake(int *dead)
{
    gcctl_t *gc = &G->gc;
    uint64_t t0 = gorun_trace_on ? nanotime() : 0;
    atomic_store(&gc->flush_found, 0);
    for (uint32_t i = 0; i < G->nprocs; i++) atomic_fetch_or(&G->allp[i].poll, POLL_FLUSHWB);
    if (gc_wait_requests(POLL_FLUSHWB, dead) != 0) return -1;
    int found = atomic_load(&gc->flush_found) ? 1 : 0;
    if (gorun_trace_on) trace_emit_dur(EV_HANDSHAKE, t0, nanotime(), (uint64_t)found);
    return found;
}

int gc_mark_termination(uint32_t cycle, int checkmark, int *dead, uint64_t *checked)
{
    gcctl_t *gc = &G->gc;
    if (stw_stop(PAUSE_MARKTERM, cycle, dead) != 0) return -1;
    atomic_store(&gc->phase, GC_MARKTERM);
    if (atomic_load(&gc->roots_pending)) gc_serve_blocked(); /* cannot happen with a running P stopped */
    if (atomic_load(&gc->roots_pending))
        gorun_throw("gc: mark termination with %u root tables unscanned", atomic_load(&gc->roots_pending));
    drain_all_logs(1);
    for (;;) { /* finish what is grey; mark threads may still be draining their last buffer */
        atomic_fetch_add(&gc->work.busy, 1);
        gc_mark_finish_stw();
        atomic_fetch_add(&gc->work.busy, -1);
        if (atomic_load(&gc->work.busy) == 0 && RELAXED_LOAD(gc->work.nfull) == 0) break;
        sched_yield();
    }
    atomic_store_explicit(&gc->blacken, 0, memory_order_release);
    *checked = checkmark ? gc_checkmark() : 0;
    atomic_store(&gc->wb_enabled, 0);
    atomic_store(&gc->phase, GC_OFF);
    for (uint32_t i = 0; i < G->nprocs; i++) mcache_release_all_p(&G->allp[i]);
    lock(&G->mheap.lock);
    atomic_fetch_add(&G->mheap.sweepgen, 2);
    unlock(&G->mheap.lock);
    MCHECK_HEAP("mark termination"); /* debug builds: mcheck.c */
    atomic_store(&G->mheap.heap_live, atomic_load(&gc->bytes_marked));
    atomic_store(&gc->heap_marked, atomic_load(&gc->bytes_marked));
    atomic_store(&gc->cycles_done, cycle);
    stw_start();
    return 0;
}

/* After the sweep of a cycle is done: release g.gc() callers up to `forced_target`. */
void gc_finish_cycle(uint64_t forced_target)
{
    gcctl_t *gc = &G->gc;
    if (forced_target > atomic_load(&gc->forced_done)) atomic_store(&gc->forced_done, forced_target);
    atomic_fetch_add(&gc->cycle_note, 1);
    futex_wake_all(&gc->cycle_note);
}
