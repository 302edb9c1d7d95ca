/* mgcmark.c: tricolor marking (Go's mgcmark.go): grey, scan, drain, roots, assists, mark threads.
 *
 * White = mark bit clear; grey = mark bit set and the object queued; black = marked and scanned
 * (or noscan, or allocated during mark). greyobject sets the bit with an atomic OR and queues
 * scannable objects on the calling thread's gcWork: a process-local stack that hands full
 * buffers of WBUF_ENTRIES to the shared queue (mgcwork.c) so other markers can help. Markers are
 * the GC process's mark threads (GIL released), its main thread (globals, blocked P's roots,
 * barrier logs) and workers (their own roots at a safepoint, their full barrier logs, assists).
 * `busy` counts markers holding grey objects outside the shared queue; with `pushes` it gives
 * the quiescence test of mark completion. Scanning is precise: the object's header names its
 * type, whose pointer mask (struct) or element kind (array) says which words are pointers.
 * The queue is in mgcwork.c, gccheckmark in mcheckmark.c. Overview: docs/design.md "Marking".
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mgcwork.h"
#include "runtime.h"

/* ---- grey and scan ---- */

static inline int grey(gcw_t *w, goaddr a)
{
    spanid_t sid = spanof_addr(a);
    if (!sid) return 0;
    mspan_t *s = spanof_id(sid);
    if (atomic_load_explicit(&s->state, memory_order_acquire) != MSPAN_INUSE) return 0;
    goaddr start = (goaddr)sid * PAGE_SIZE;
    uint64_t idx = span_objindex(s, a);
    if (idx >= s->nelems) return 0;
    _Atomic uint8_t *mb = markbits_of(sid) + idx / 8;
    uint8_t bit = (uint8_t)(1u << (idx % 8));
    if (atomic_load_explicit(mb, memory_order_relaxed) & bit) return 0;
    if (atomic_fetch_or_explicit(mb, bit, memory_order_relaxed) & bit) return 0;
    w->bytes_marked += s->elemsize;
    w->objs++;
    if (!spanclass_noscan(s->spanclass)) wpush(w, start + idx * s->elemsize);
    return 1;
}

int greyobject(goaddr a) { return grey(&gcw, a); }

static inline void scanobject(gcw_t *wk, goaddr b)
{
    uint64_t hdr = *obj_word(b);
    uint32_t tid = (uint32_t)hdr;
    if (tid == 0 || tid >= MAX_TYPES)
        gorun_throw("scanobject: object 0x%llx has a bad header %llx", (unsigned long long)b, (unsigned long long)hdr);
    const gotype_t *t = type_of(tid);
    _Atomic uint64_t *w = (_Atomic uint64_t *)obj_word(b + OBJ_HEADER_SIZE);
    if (t->kind == TK_STRUCT) {
        for (uint32_t k = 0; k < MAX_STRUCT_WORDS / 64 && k * 64 < t->nwords; k++) {
            uint64_t m = t->ptrmask[k];
            while (m) {
                int i = __builtin_ctzll(m);
                m &= m - 1;
                goaddr v = atomic_load_explicit(&w[k * 64 + i], memory_order_relaxed);
                if (v) grey(wk, v);
            }
        }
        wk->scan_work += OBJ_HEADER_SIZE + 8ull * t->nwords;
    } else if (t->kind == TK_ARRAY && t->elem_kind == FK_PTR) {
        uint32_t len = (uint32_t)(hdr >> 32);
        for (uint32_t i = 0; i < len; i++) {
            goaddr v = atomic_load_explicit(&w[i], memory_order_relaxed);
            if (v) grey(wk, v);
        }
        wk->scan_work += OBJ_HEADER_SIZE + 8ull * len;
    }
}

void gc_scan_fields(goaddr b) { scanobject(&gcw, b); }

#define PREFETCH 8

/* Scan grey objects until the local stack and the shared queue are empty, or `budget` bytes of
 * scan work are done (budget < 0: no limit). Returns the scan work done. */
static uint64_t gc_drain(int64_t budget)
{
    gcw_t *w = &gcw; /* one TLS lookup; the loop passes the pointer */
    goaddr ring[PREFETCH];
    unsigned rn = 0, rh = 0;
    uint64_t w0 = w->scan_work, count = 0;
    for (;;) {
        while (rn < PREFETCH && w->n) {
            goaddr b = w->stk[--w->n];
            __builtin_prefetch(A + b);
            ring[(rh + rn) % PREFETCH] = b;
            rn++;
        }
        if (rn == 0) {
            if (budget >= 0 && (int64_t)(w->scan_work - w0) >= budget) break;
            if (!gcw_refill()) break;
            continue;
        }
        goaddr b = ring[rh];
        rh = (rh + 1) % PREFETCH;
        rn--;
        scanobject(w, b);
        if ((++count & 255) == 0) {
            /* balance: give work away when the shared queue is empty and we have plenty */
            if (RELAXED_LOAD(G->gc.work.nfull) == 0 && w->n > 2 * WBUF_ENTRIES) gcw_publish_one();
            if (budget >= 0 && (int64_t)(w->scan_work - w0) >= budget) break;
        }
    }
    /* put back what is left in the prefetch ring */
    while (rn) {
        wpush(w, ring[rh]);
        rh = (rh + 1) % PREFETCH;
        rn--;
    }
    return w->scan_work - w0;
}

/* Drain to empty (used where the caller must not leave grey objects behind). */
static void gc_drain_all(void)
{
    gc_drain(-1);
    gcw_flush_stats();
}

void gcw_publish(void)
{
    if (gcw_publish_all()) gc_drain_all(); /* pool empty: finish the work here */
}

/* ---- roots ---- */

static void scan_root_table(gp_t *p)
{
    _Atomic uint64_t *r = roots_of(p->id);
    uint64_t n = atomic_load_explicit(&p->root_hwm, memory_order_acquire);
    for (uint64_t i = 0; i < n; i++) {
        goaddr a = atomic_load_explicit(&r[i], memory_order_acquire);
        if (a) greyobject(a);
    }
}

/* A P scans its own root table at a safepoint (or the GC process does it for a blocked P). */
void gc_worker_scan_roots(gp_t *p)
{
    busy_add(1);
    scan_root_table(p);
    gcw_publish();
    busy_add(-1);
}

void gc_scan_globals(void)
{
    busy_add(1);
    _Atomic uint64_t *g = globals_base();
    for (uint64_t i = 0; i < G->nglobals; i++) {
        goaddr a = atomic_load_explicit(&g[i], memory_order_acquire);
        if (a) greyobject(a);
    }
    gcw_publish();
    busy_add(-1);
}

/* Every slot of every registered sync.Pool, both generations (pool.c): roots, once per cycle,
 * concurrently; the slot writes that race with it go through the write barrier. */
void gc_scan_pools(void)
{
    busy_add(1);
    for (uint32_t i = 0; i < MAX_POOLS; i++) {
        poolhdr_t *pl = pool_at(i);
        if (atomic_load_explicit(&pl->state, memory_order_acquire) != POOL_READY) continue;
        for (uint32_t p = 0; p < G->nprocs; p++)
            for (uint32_t gen = 0; gen < 2; gen++) {
                poolshard_t *s = pool_shard(pl, p, gen);
                goaddr a = atomic_load_explicit(&s->private, memory_order_acquire);
                if (a) greyobject(a);
                for (uint32_t k = 0; k < POOL_SHARED_CAP; k++)
                    if ((a = atomic_load_explicit(&s->shared[k], memory_order_acquire)) != 0) greyobject(a);
            }
    }
    gcw_publish();
    busy_add(-1);
}

/* STW 1: every P's current tiny block is marked (Go's gcMarkTinyAllocs). */
void gc_mark_tiny_blocks(void)
{
    for (uint32_t i = 0; i < G->nprocs; i++)
        if (G->allp[i].mcache.tiny) greyobject(G->allp[i].mcache.tiny);
    gcw_flush_stats();
}

/* Allocate-black: a new object is marked at allocation while the GC is marking. */
void gc_mark_alloc(goaddr a, mspan_t *s, uint32_t size)
{
    uint64_t idx = span_objindex(s, a);
    atomic_fetch_or_explicit(markbits_of(s->startpage) + idx / 8, (uint8_t)(1u << (idx % 8)), memory_order_relaxed);
    atomic_fetch_add_explicit(&G->gc.bytes_marked, s->elemsize, memory_order_relaxed);
    atomic_fetch_add_explicit(&G->gc.objs_marked, 1, memory_order_relaxed);
}

/* ---- assists ---- */

#define ASSIST_MIN_DEBT (64 << 10)    /* allocate this much before paying (Go's gcOverAssistWork) */
#define ASSIST_CHUNK    (64 << 10)    /* scan work between two safepoint polls of an assist (~30-60 us) */
#define ASSIST_WAIT_NS  (100 * 1000L) /* an assist in debt past the goal waits this long for credit per round */

/* The goal and the scan work an assist paces itself against (Go's revise, ref 4.6). The pacer
 * expected `scan_expected` bytes of scan work for this cycle, from a heap that was `triggered`
 * bytes live when the cycle started. If the markers have already done more than that, the heap
 * is growing: the runway left is extrapolated from the expectation to the worst case, max_scan =
 * max(triggered, scan_expected) (everything live at the trigger is scannable), so the assist
 * ratio stays steady instead of exploding:
 *     goal' = triggered + (goal - triggered) * max_scan / scan_expected,
 * capped at the hard goal (1 + gc_percent/100) * goal (no extension with gc_percent < 0), and the
 * expected work becomes max_scan. If heap_live is past the goal even so, the goal is goal * 1.1
 * and the expected work max_scan. A pure function of its arguments (the test hook
 * assist_goal calls it directly); gc_assist_goal_now reads them from shared memory. */
assist_goal_t gc_assist_goal(uint64_t goal, uint64_t scan_expected, uint64_t triggered, int64_t gc_percent,
                             uint64_t live, uint64_t done)
{
    assist_goal_t r = {goal, scan_expected};
    if (goal == UINT64_MAX) return r; /* no goal: GOGC=off and no memory limit */
    uint64_t max_scan = triggered > scan_expected ? triggered : scan_expected;
    if (done > scan_expected && gc_percent >= 0) {
        uint64_t expected = scan_expected ? scan_expected : 1;
        __uint128_t ext = goal;
        if (goal > triggered) ext = triggered + (__uint128_t)(goal - triggered) * max_scan / expected;
        __uint128_t hard = goal + (__uint128_t)goal * (uint64_t)gc_percent / 100;
        if (ext > hard) ext = hard;
        r.goal = ext >= UINT64_MAX ? UINT64_MAX - 1 : (uint64_t)ext;
        r.scan_expected = max_scan;
    }
    if (live > r.goal) {
        r.goal = r.goal + r.goal / 10 < r.goal ? UINT64_MAX - 1 : r.goal + r.goal / 10;
        r.scan_expected = max_scan;
    }
    return r;
}

static assist_goal_t gc_assist_goal_now(void)
{
    gcctl_t *gc = &G->gc;
    return gc_assist_goal(atomic_load_explicit(&gc->goal, memory_order_relaxed),
                          atomic_load_explicit(&gc->scan_expected, memory_order_relaxed),
                          atomic_load_explicit(&gc->triggered, memory_order_relaxed),
                          atomic_load_explicit(&gc->gc_percent, memory_order_relaxed),
                          atomic_load_explicit(&G->mheap.heap_live, memory_order_relaxed),
                          atomic_load_explicit(&gc->scan_work, memory_order_relaxed));
}

/* Go's revise: scan work still expected over heap runway still left, against the (possibly
 * extended) goal. Past the goal the runway is nearly nil, so the ratio, and the debt, grow
 * steeply. << 16 fixed point. */
static uint64_t assist_ratio(void)
{
    gcctl_t *gc = &G->gc;
    assist_goal_t g = gc_assist_goal_now();
    uint64_t done = atomic_load_explicit(&gc->scan_work, memory_order_relaxed);
    uint64_t live = atomic_load_explicit(&G->mheap.heap_live, memory_order_relaxed);
    uint64_t scan_left = g.scan_expected > done + (64 << 10) ? g.scan_expected - done : (64 << 10);
    uint64_t heap_left = g.goal > live + (64 << 10) ? g.goal - live : (64 << 10);
    uint64_t r = (uint64_t)(((__uint128_t)scan_left << 16) / heap_left);
    if (r > (1024ull << 16)) r = 1024ull << 16;
    atomic_store_explicit(&gc->assist_ratio_fx, r, memory_order_relaxed);
    return r;
}

static int64_t steal_credit(int64_t work)
{
    gcctl_t *gc = &G->gc;
    int64_t credit = atomic_load_explicit(&gc->bg_credit, memory_order_relaxed);
    while (credit > 0) {
        int64_t take = credit < work ? credit : work;
        if (atomic_compare_exchange_weak(&gc->bg_credit, &credit, credit - take)) return work - take;
    }
    return work;
}

/* A worker that allocated during mark pays in scan work (Go's gcAssistAlloc): first with
 * background credit, then by scanning grey objects itself. If it is still in debt with no grey
 * object to scan while the heap is past the (extended) goal, it waits for the mark threads to
 * earn credit (Go parks it on the assist queue), serving safepoint requests meanwhile, so a
 * mutator cannot run the heap far past the goal. While the GC CPU limiter is on it does neither:
 * the debt is forgiven and the heap may overshoot (Go skips assists then). Called at the start
 * of mallocgc, where no lock is held. */
void gc_assist(void)
{
    gcctl_t *gc = &G->gc;
    gp_t *p = thisP;
    if (atomic_load_explicit(&gc->limiter_on, memory_order_relaxed)) {
        p->assist_debt = 0;
        return;
    }
    if (p->assist_debt < ASSIST_MIN_DEBT) return;
    int64_t work = (int64_t)(((__uint128_t)p->assist_debt * assist_ratio()) >> 16);
    p->assist_debt = 0;
    work = steal_credit(work);
    if (work <= 0) return;
    uint64_t t0 = nanotime(), done = 0;
    int rc = rcall_enter(RC_ASSIST, t0);
    for (;;) {
        /* in chunks, polling between them: an assist is preemptible, as in Go, so a stop never
         * waits for a long one */
        atomic_fetch_add(&gc->work.busy, 1);
        int64_t did = (int64_t)gc_drain(work < ASSIST_CHUNK ? work : ASSIST_CHUNK);
        gcw_publish();
        atomic_fetch_add(&gc->work.busy, -1);
        work -= did;
        done += (uint64_t)did;
        if (work <= 0 || !atomic_load_explicit(&gc->blacken, memory_order_acquire)) break;
        if (did > 0) {
            safepoint_poll_c();
            continue;
        }
        if (atomic_load_explicit(&gc->limiter_on, memory_order_relaxed)) break;  /* limiter: no waiting */
        if (atomic_load(&G->mheap.heap_live) < gc_assist_goal_now().goal) break; /* under the goal: go on */
        uint32_t avail = atomic_load(&gc->work.avail);
        safepoint_poll_c(); /* serve root scans, log flushes and stops while waiting */
        if (!atomic_load_explicit(&gc->blacken, memory_order_acquire)) break;
        futex_wait_until(&gc->work.avail, avail, ASSIST_WAIT_NS);
        work = steal_credit(work);
        if (work <= 0) break;
    }
    rcall_exit(rc);
    uint64_t t1 = nanotime(), dt = t1 - t0;
    if (gorun_trace_on) trace_emit_dur(EV_ASSIST, t0, t1, done);
    atomic_fetch_add_explicit(&gc->assist_ns, dt, memory_order_relaxed);
    atomic_fetch_add_explicit(&gc->assist_cpu_total_ns, dt, memory_order_relaxed);
    p->assists++;
}

/* ---- mark threads (GC process) ---- */

#define MARK_IDLE_WAIT_NS     (2 * 1000 * 1000L) /* a mark thread's sleep while no cycle is marking */
#define MARK_NOWORK_WAIT_NS   (1000 * 1000L)     /* ... and while marking but the queue is empty */
#define MARK_THROTTLE_WAIT_NS (1000 * 1000L)     /* ... and while throttled (then it re-checks) */
#define MARK_CHUNK            (256 << 10)        /* scan work between two throttle checks */

static pthread_t mark_threads[MAX_MARK_THREADS];
static int nmark_threads;
static _Atomic int mark_threads_stop;

static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* A mark thread: drain the shared queue in chunks of MARK_CHUNK scan work, crediting its work
 * (bg_credit, for the assists) and its CPU (mark_cpu_ns) after each; between chunks, while the
 * GC process has set mark_throttle (background marking over its CPU utilization goal), hand the
 * local grey objects back to the queue and pause in bounded futex sleeps. */
static void *mark_worker(void *arg)
{
    gcctl_t *gc = &G->gc;
    trace_set_thread((uint16_t)(uintptr_t)arg); /* 1 + its index */
    while (!atomic_load(&mark_threads_stop)) {
        uint32_t avail = atomic_load(&gc->work.avail);
        if (!atomic_load_explicit(&gc->blacken, memory_order_acquire)) {
            futex_wait_until(&gc->work.avail, avail, MARK_IDLE_WAIT_NS);
            continue;
        }
        if (atomic_load_explicit(&gc->mark_throttle, memory_order_relaxed)) {
            futex_wait_until(&gc->mark_throttle, 1, MARK_THROTTLE_WAIT_NS); /* re-checks stop and blacken */
            continue;
        }
        busy_add(1);
        if (!atomic_load_explicit(&gc->blacken, memory_order_acquire)) {
            /* marking ended between the check above and the busy count: take nothing */
            busy_add(-1);
            continue;
        }
        uint64_t did = 0, c0 = thread_cpu_ns(), w0 = gorun_trace_on ? nanotime() : 0;
        if (gcw_refill()) {
            for (;;) {
                uint64_t d = gc_drain(MARK_CHUNK);
                did += d;
                uint64_t c1 = thread_cpu_ns();
                if (d) atomic_fetch_add_explicit(&gc->bg_credit, (int64_t)d, memory_order_relaxed);
                atomic_fetch_add_explicit(&gc->mark_cpu_ns, c1 - c0, memory_order_relaxed);
                c0 = c1;
                if (atomic_load(&mark_threads_stop) || atomic_load_explicit(&gc->mark_throttle, memory_order_relaxed))
                    break;
                if (gcw.n == 0 && RELAXED_LOAD(gc->work.nfull) == 0) break; /* nothing left anywhere */
            }
            gcw_publish(); /* what a throttled or stopped thread still holds goes back to the queue */
            gcw_flush_stats();
            if (gorun_trace_on) trace_emit_dur(EV_MARK_WORK, w0, nanotime(), did);
        } else
            atomic_fetch_add_explicit(&gc->mark_cpu_ns, thread_cpu_ns() - c0, memory_order_relaxed);
        busy_add(-1);
        if (!did) futex_wait_until(&gc->work.avail, avail, MARK_NOWORK_WAIT_NS);
    }
    return NULL;
}

int gc_start_mark_threads(int n)
{
    if (n > MAX_MARK_THREADS) n = MAX_MARK_THREADS;
    atomic_store(&mark_threads_stop, 0);
    for (int i = 0; i < n; i++) {
        if (pthread_create(&mark_threads[i], NULL, mark_worker, (void *)(uintptr_t)(i + 1)) != 0) return -1;
        nmark_threads++;
    }
    G->gc.nmarkthreads = (uint32_t)n;
    return 0;
}

void gc_stop_mark_threads(void)
{
    atomic_store(&mark_threads_stop, 1);
    atomic_fetch_add(&G->gc.work.avail, 1);
    futex_wake_all(&G->gc.work.avail);
    for (int i = 0; i < nmark_threads; i++) pthread_join(mark_threads[i], NULL);
    nmark_threads = 0;
}

/* The GC process's main thread helps: scan up to `budget` bytes. Returns work done. */
uint64_t gc_help_mark(int64_t budget)
{
    busy_add(1);
    uint64_t did = gc_drain(budget);
    gcw_publish();
    busy_add(-1);
    return did;
}

/* Quiescence: no root tables pending, no shared or in-flight grey objects. Barrier logs need
 * not be empty (a running mutator refills them all the time): the ragged flush that follows
 * decides whether they held anything new, as Go's mark completion does with wbBufs. */
int gc_mark_quiescent(void)
{
    gcctl_t *gc = &G->gc;
    uint64_t pushes = atomic_load(&gc->work.pushes);
    if (atomic_load(&gc->roots_pending)) return 0;
    if (atomic_load(&gc->work.busy) != 0) return 0;
    if (RELAXED_LOAD(gc->work.nfull) != 0) return 0;
    return atomic_load(&gc->work.pushes) == pushes && atomic_load(&gc->work.busy) == 0;
}

/* With the world stopped: finish every grey object (mark termination). */
void gc_mark_finish_stw(void) { gc_drain_all(); }
