/* proc.c: safepoints, blocking calls and stopping the world (Go's proc.go).
 *
 * Worker side: every runtime call (allocation, pointer load or store, global access, g.gc(),
 * g.safepoint(), a blocking call's entry and exit) polls its P's `poll` word; int and float
 * field accesses are plain memory accesses and do not; safepoint_slow serves the requests
 * (park for a stop, scan own roots, flush own barrier log). A worker that blocks declares it
 * (P_SYSCALL) and counts as stopped; on the way out it waits while the GC process owns its P.
 * GC side: stw_stop raises POLL_STOP on every P, takes blocked and not-yet-started P's by CAS,
 * spins briefly, then sleeps on `stopnote` in 100 us steps and re-sends SIGURG to P's still
 * running (Go's preemptall), until every P is stopped; stw_start clears the requests, bumps
 * `world_gen` and wakes every parked P. Each pause is recorded: time to stop, total, and each
 * P's acknowledgement latency. Overview: docs/design.md "Safepoints" and "Stopping the world".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "runtime.h"

/* ---- worker side ---- */

static void p_start(void);

void p_attach(uint32_t id)
{
    gorun_ospid = (int32_t)getpid();
    thisP = &G->allp[id];
    trace_set_ring((int)id);
    atomic_store(&thisP->ospid, gorun_ospid);
    thisP->mcache.flushGen = atomic_load(&G->mheap.sweepgen);
    roots_init_local();
    thisP->stats.start_ns = nanotime();
    p_start();
}

void p_finish(void)
{
    if (!thisP || atomic_load(&thisP->status) != P_RUNNING) return; /* not a P, or done already */
    safepoint_poll_c();
    mcache_release_all();
    thisP->stats.end_ns = nanotime();
    uint32_t st = P_RUNNING;
    if (!atomic_compare_exchange_strong(&thisP->status, &st, P_DONE))
        gorun_throw("P%u: finishing with status %u", thisP->id, st);
}

static void note_served(void)
{
    atomic_fetch_add(&G->gc.stopnote, 1);
    futex_wake_all(&G->gc.stopnote);
}

#define PARK_SPIN_NS     20000                /* a parked P spins this long (with a spare core) before sleeping */
#define PARK_SPIN_STEP   64                   /* cpu_relax per check while spinning */
#define PARK_CHECK_NS    (100 * 1000 * 1000L) /* a parked P checks the GC process is alive this often */
#define HELD_WAIT_NS     (1000 * 1000L)       /* a P the GC process holds waits this long per check */
#define GC_WAIT_CHECK_NS (50 * 1000 * 1000L)  /* g.gc() checks the GC process is alive this often */

static void wait_world_restart(uint32_t gen)
{
    gcctl_t *gc = &G->gc;
    uint64_t t0 = nanotime();
    /* spin only if every P and the GC process can have a core; else the spin steals the GC's */
    int spin = G->nprocs + 1 <= G->ncpu;
    while (atomic_load_explicit(&gc->world_gen, memory_order_acquire) == gen) {
        if (spin && nanotime() - t0 < PARK_SPIN_NS) {
            procyield(PARK_SPIN_STEP);
            continue;
        }
        futex_wait_until(&gc->world_gen, gen, PARK_CHECK_NS);
        if (atomic_load(&gc->world_gen) == gen && gorun_pid_dead(gc->gc_ospid))
            gorun_throw("the GC process (pid %d) died while the world was stopped", (int)gc->gc_ospid);
    }
}

/* Park a running P for a stop. Only RUNNING -> GCSTOP by the worker and back: a P that is done
 * or blocked is stopped already (the GC process took it), and its status must not change. */
static void park_for_stop(void)
{
    gcctl_t *gc = &G->gc;
    uint32_t gen = atomic_load_explicit(&gc->world_gen, memory_order_acquire);
    uint32_t st = P_RUNNING;
    uint64_t ack = nanotime();
    atomic_store(&thisP->ack_ns, ack);
    if (!atomic_compare_exchange_strong(&thisP->status, &st, P_GCSTOP)) return;
    if (gorun_trace_on) trace_emit(EV_STW_ACK, gen, 0, ack); /* ts == the pause record's ack */
    note_served();
    wait_world_restart(gen);
    if (gorun_trace_on) trace_emit(EV_STW_RESUME, gen, 0, nanotime());
    st = P_GCSTOP;
    if (!atomic_compare_exchange_strong(&thisP->status, &st, P_RUNNING))
        gorun_throw("P%u: status %u after a stop, expected GCSTOP", thisP->id, st);
}

/* The owner scans its own table at a safepoint (P RUNNING: nobody else edits or scans it); the
 * GC process scans a P that is not RUNNING under its roots lock. */
static void serve_scanroots(gp_t *p)
{
    if (p == thisP) {
        gc_worker_scan_roots(p);
    } else {
        roots_lock_acquire(p);
        gc_worker_scan_roots(p);
        roots_lock_release(p);
    }
    atomic_fetch_sub(&G->gc.roots_pending, 1);
}

static void serve_flushwb(gp_t *p)
{
    if (wblog_shade(p, 1) > 0) atomic_store(&G->gc.flush_found, 1);
}

void safepoint_slow(void)
{
    gp_t *p = thisP;
    for (;;) {
        uint32_t req = atomic_load_explicit(&p->poll, memory_order_acquire);
        if (!req) return;
        /* Only a running P serves its requests; the GC process serves them for a P that is
         * blocked, not started or done (e.g. a SIGURG handled after p_done lands here). */
        if (atomic_load_explicit(&p->status, memory_order_acquire) != P_RUNNING) return;
        if (req & POLL_STOP) {
            park_for_stop();
            continue;
        }
        if ((req & POLL_SCANROOTS) && (atomic_fetch_and(&p->poll, ~POLL_SCANROOTS) & POLL_SCANROOTS)) {
            serve_scanroots(p);
            note_served();
        }
        if ((req & POLL_FLUSHWB) && (atomic_fetch_and(&p->poll, ~POLL_FLUSHWB) & POLL_FLUSHWB)) {
            serve_flushwb(p);
            note_served();
        }
        p->safepoint_serves++;
    }
}

void enter_blocking(void)
{
    safepoint_poll_c();
    uint32_t st = P_RUNNING;
    if (!atomic_compare_exchange_strong(&thisP->status, &st, P_SYSCALL))
        gorun_throw("P%u: entering a blocking call with status %u", thisP->id, st);
}

/* If the GC process holds this P (GCSTOP for a stop, GCSCAN while it serves the P's requests),
 * wait a little for it to give the P back and return 1; else return 0. */
static int wait_if_gc_holds(uint32_t st)
{
    gcctl_t *gc = &G->gc;
    if (st == P_GCSTOP) {
        uint32_t gen = atomic_load(&gc->world_gen);
        if (atomic_load(&thisP->status) == P_GCSTOP) futex_wait_until(&gc->world_gen, gen, HELD_WAIT_NS);
        return 1;
    }
    if (st == P_GCSCAN) {
        sched_yield(); /* scanning roots or draining a log: quick */
        return 1;
    }
    return 0;
}

/* The worker becomes its P: -> RUNNING by CAS, waiting while the GC process holds the P (it may
 * have taken a not-yet-started P into GCSTOP or GCSCAN). In a run a P starts IDLE; a heap made
 * without a launcher (tests, benchmarks) may hand a P id to several processes in turn. */
static void p_start(void)
{
    for (;;) {
        uint32_t st = atomic_load(&thisP->status);
        if (wait_if_gc_holds(st)) continue;
        if (atomic_compare_exchange_strong(&thisP->status, &st, P_RUNNING)) break;
    }
    safepoint_poll_c();
}

void exit_blocking(void)
{
    for (;;) {
        uint32_t st = P_SYSCALL;
        if (atomic_compare_exchange_strong(&thisP->status, &st, P_RUNNING)) break;
        if (!wait_if_gc_holds(st)) gorun_throw("P%u: leaving a blocking call with status %u", thisP->id, st);
    }
    safepoint_poll_c();
}

/* g.gc(): request a cycle and block (as a blocking call) until it is fully done, sweep included. */
void gc_request_and_wait(void)
{
    gcctl_t *gc = &G->gc;
    /* Declare the wait first: the cycle this request starts then finds this P already stopped
     * instead of waiting for it to reach a safepoint. */
    enter_blocking();
    int rc = rcall_enter(RC_GC_WAIT, nanotime());
    uint64_t req = atomic_fetch_add(&gc->forced_req, 1) + 1;
    atomic_fetch_add(&gc->gc_wake, 1);
    futex_wake_all(&gc->gc_wake);
    while (atomic_load(&gc->forced_done) < req) {
        uint32_t note = atomic_load(&gc->cycle_note);
        if (atomic_load(&gc->forced_done) >= req) break;
        futex_wait_until(&gc->cycle_note, note, GC_WAIT_CHECK_NS);
        if (gorun_pid_dead(gc->gc_ospid)) {
            exit_blocking();
            gorun_throw("the GC process (pid %d) died during g.gc()", (int)gc->gc_ospid);
        }
    }
    rcall_exit(rc);
    exit_blocking();
}

/* ---- GC side ---- */

static inline int is_stopped(uint32_t st) { return st == P_GCSTOP || st == P_DONE || st == P_DEAD; }

/* Take a P that is blocked or not started (SYSCALL/IDLE) into state `to`; returns the old state or -1. */
static int take_p(gp_t *p, uint32_t to)
{
    uint32_t st = atomic_load(&p->status);
    if (st != P_SYSCALL && st != P_IDLE) return -1;
    if (atomic_compare_exchange_strong(&p->status, &st, to)) return (int)st;
    return -1;
}

/* Go's preemptall: SIGURG to every running P with a request in `mask` pending (~0: any P).
 * Returns -1, with the P in *dead, if one of their workers has died. */
#define ZOMBIE_CHECK_NS (10 * 1000 * 1000L) /* how often a P being signalled is checked for a zombie */

/* Go's preemptall: SIGURG to every running P with a request in `mask` pending (~0: any P), for
 * a wait that started at t0. The signal goes first: sending it is the fast path of every stop,
 * and a worker that is gone fails it with ESRCH. A worker that exited but is not reaped yet (a
 * zombie) still accepts the signal, so gorun_pid_dead, which reads /proc (tens of microseconds:
 * done at every signal it doubled the median time to stop at 2 P's), runs only once the wait
 * has lasted ZOMBIE_CHECK_NS, and then at most that often per P. Returns -1, with the P in
 * *dead, if a worker has died. */
static int preempt_running(uint32_t mask, uint64_t t0, int *dead)
{
    static uint64_t last_check[MAX_PROCS];
    for (uint32_t i = 0; i < G->nprocs; i++) {
        gp_t *p = &G->allp[i];
        if (!(atomic_load(&p->poll) & mask) || atomic_load(&p->status) != P_RUNNING) continue;
        int32_t pid = atomic_load(&p->ospid);
        if (pid <= 0) continue;
        if (kill(pid, SIGURG) == -1 && errno == ESRCH) {
            *dead = (int)i;
            return -1;
        }
        p->preempt_signals++;
        uint64_t now = nanotime();
        if (now - t0 >= ZOMBIE_CHECK_NS && now - last_check[i] >= ZOMBIE_CHECK_NS) {
            last_check[i] = now;
            if (gorun_pid_dead(pid)) {
                *dead = (int)i;
                return -1;
            }
        }
    }
    return 0;
}

static uint64_t cur_pause;
static uint64_t stw_t0;

#define STW_SPIN_NS   20000   /* spin this long before sleeping (only with a spare core) */
#define STW_YIELD_NS  1000000 /* oversubscribed: yield the core this long before sleeping */
#define STW_RESEND_NS 100000  /* Go re-preempts every 100 us */
#define STW_SPIN_STEP 32      /* cpu_relax per check while spinning */

/* Stop the world. Returns 0, or -1 (with the dead P in *dead) if a running P's worker died. */
int stw_stop(uint32_t kind, uint32_t cycle, int *dead)
{
    gcctl_t *gc = &G->gc;
    uint32_t n = G->nprocs;
    stw_t0 = nanotime();
    cur_pause = atomic_load(&gc->npauses);
    pauserec_t *rec = pause_at(cur_pause);
    memset(rec, 0, sizeof *rec);
    rec->kind = kind;
    rec->cycle = cycle;
    rec->start_ns = stw_t0;
    if (gorun_trace_on) trace_emit(EV_STW_REQUEST, kind, cur_pause, stw_t0);
    gc_activity(GCA_STOPPING, kind, cycle);
    for (uint32_t i = 0; i < n; i++) {
        G->allp[i].stopped_by_gc = 0;
        atomic_store(&G->allp[i].ack_ns, 0);
        atomic_fetch_or(&G->allp[i].poll, POLL_STOP);
    }
    uint64_t last_signal = 0;
    int spin = G->nprocs + 1 <= G->ncpu, signalled = 0;
    for (;;) {
        uint32_t running = 0;
        uint32_t note = atomic_load(&gc->stopnote);
        for (uint32_t i = 0; i < n; i++) {
            gp_t *p = &G->allp[i];
            int old = take_p(p, P_GCSTOP);
            if (old >= 0) p->stopped_by_gc = (uint32_t)old + 1;
            if (!is_stopped(atomic_load(&p->status))) running++;
        }
        if (!running) break;
        uint64_t now = nanotime();
        if (spin && now - stw_t0 < STW_SPIN_NS) {
            procyield(STW_SPIN_STEP);
            continue;
        }
        if (!signalled || now - last_signal >= STW_RESEND_NS) { /* preemptall, then every 100 us */
            signalled = 1;
            if (preempt_running(~0u, stw_t0, dead) != 0) return -1;
            last_signal = now;
        }
        /* With no spare core a P that must acknowledge may be waiting for ours: hand it over
         * with sched_yield and come straight back when it parks (a futex sleep would add a
         * cross-core wake-up, 15-100 us here, to every pause). */
        if (!spin && now - stw_t0 < STW_YIELD_NS)
            sched_yield();
        else
            futex_wait_until(&gc->stopnote, note, STW_RESEND_NS);
    }
    uint64_t t1 = nanotime();
    if (gorun_trace_on) trace_emit(EV_STW_STOPPED, kind, cur_pause, t1);
    gc_activity(GCA_STW, kind, 0);
    rec->seen_ns = t1 - stw_t0;
    /* Time to stop: when the last running P acknowledged; the GC's own wake-up is not part of
     * it (it is part of the total). With no P running, when the GC saw the world stopped. */
    uint64_t last = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t a = atomic_load(&G->allp[i].ack_ns);
        rec->ack_ns[i] = a > stw_t0 ? a - stw_t0 : 0;
        if (rec->ack_ns[i] > last) last = rec->ack_ns[i];
    }
    rec->stop_ns = last ? last : rec->seen_ns;
    return 0;
}

void stw_start(void)
{
    gcctl_t *gc = &G->gc;
    pause_at(cur_pause)->work_ns = nanotime() - stw_t0;
    for (uint32_t i = 0; i < G->nprocs; i++) {
        gp_t *p = &G->allp[i];
        atomic_fetch_and(&p->poll, ~POLL_STOP);
        if (p->stopped_by_gc) {
            atomic_store(&p->status, p->stopped_by_gc - 1);
            p->stopped_by_gc = 0;
        }
    }
    gc_activity(pause_at(cur_pause)->kind == PAUSE_SWEEPTERM ? GCA_MARK : GCA_SWEEP, 0, 0); /* before any P runs */
    /* The pause ends when the world is released; the wake-up syscall that follows can lose the
     * CPU to the very workers it wakes, which must not count as pause. */
    uint64_t t2 = nanotime();
    pause_at(cur_pause)->total_ns = t2 - stw_t0;
    if (gorun_trace_on) trace_emit(EV_STW_RESTART, pause_at(cur_pause)->kind, cur_pause, t2);
    atomic_fetch_add_explicit(&gc->world_gen, 1, memory_order_release);
    futex_wake_all(&gc->world_gen);
    atomic_store(&gc->npauses, cur_pause + 1);
}

/* Serve POLL_SCANROOTS / POLL_FLUSHWB for P's that cannot: blocked, not started, or done.
 * Returns the number of requests served. */
int gc_serve_blocked(void)
{
    int served = 0;
    for (uint32_t i = 0; i < G->nprocs; i++) {
        gp_t *p = &G->allp[i];
        if (!(atomic_load(&p->poll) & (POLL_SCANROOTS | POLL_FLUSHWB))) continue;
        int old = -1;
        uint32_t st = atomic_load(&p->status);
        if (st == P_SYSCALL || st == P_IDLE) {
            old = take_p(p, P_GCSCAN);
            if (old < 0) continue;
        } else if (st != P_DONE && st != P_DEAD) {
            continue;
        }
        if (atomic_fetch_and(&p->poll, ~POLL_SCANROOTS) & POLL_SCANROOTS) {
            serve_scanroots(p);
            served++;
        }
        if (atomic_fetch_and(&p->poll, ~POLL_FLUSHWB) & POLL_FLUSHWB) {
            serve_flushwb(p);
            served++;
        }
        if (old >= 0) atomic_store(&p->status, (uint32_t)old);
    }
    return served;
}

/* Wait (with SIGURG to slow P's) until no P has request bits `mask` pending. -1 if a worker died. */
int gc_wait_requests(uint32_t mask, int *dead)
{
    gcctl_t *gc = &G->gc;
    uint64_t t0 = nanotime(), last_signal = 0;
    for (;;) {
        gc_serve_blocked();
        uint32_t pending = 0;
        uint32_t note = atomic_load(&gc->stopnote);
        for (uint32_t i = 0; i < G->nprocs; i++)
            if (atomic_load(&G->allp[i].poll) & mask) pending++;
        if (!pending) return 0;
        uint64_t now = nanotime();
        if (now - t0 < STW_SPIN_NS) {
            sched_yield();
            continue;
        }
        if (now - last_signal >= STW_RESEND_NS) {
            if (preempt_running(mask, t0, dead) != 0) return -1;
            last_signal = now;
        }
        futex_wait_until(&gc->stopnote, note, STW_RESEND_NS);
    }
}

/* Go's idle mark workers run on P's with nothing to do; here a P that is not RUNNING (blocked in
 * g.blocking() or g.gc(), not started, done) leaves its share of the CPU to the GC process. */
uint32_t p_count_running(void)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < G->nprocs; i++)
        n += atomic_load_explicit(&G->allp[i].status, memory_order_relaxed) == P_RUNNING;
    return n;
}
