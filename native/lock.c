/* lock.c: the runtime's cross-process locks.
 *
 * Three kinds, selected per run with --lock (docs/design.md "Locks"):
 *  - futex: Go's lock_futex.go algorithm on a 32-bit word in shared memory: exchange to 1;
 *    on contention spin 4 rounds of 30 pause instructions, yield once, then exchange to 2 and
 *    FUTEX_WAIT (shared, not PRIVATE, so it works across processes). Unlock exchanges to 0 and
 *    wakes one sleeper if the word was 2. A waiter sleeps at most 100 ms at a time and then
 *    checks whether the recorded holder is still alive, so a holder killed with the lock
 *    held makes acquire fail with GLOCK_HOLDER_DIED instead of hanging.
 *  - pthread: a PTHREAD_PROCESS_SHARED, PTHREAD_MUTEX_ROBUST mutex. EOWNERDEAD is recovered
 *    with pthread_mutex_consistent and counted in `recovered`.
 *  - sem: a process-shared POSIX semaphore (sem_init pshared=1, glibc's futex-based sem_t, the
 *    same primitive posix_ipc's named semaphores wrap) used as a binary semaphore.
 * Every kind counts acquisitions, contended acquisitions, wait and hold time and a log2 wait
 * histogram; the stats are written by the holder under the lock.
 * Lock ranks (lock.h) are checked on every acquire: acquiring a rank <= one already held by
 * this thread is a fatal error (mcentral before mheap, never the reverse).
 */
#define _GNU_SOURCE
#include "lock.h"

#include <errno.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "runtime.h"

static const char *kind_names[LOCK_NKINDS] = {"futex", "pthread", "sem"};

const char *glock_kind_name(int kind) { return (kind >= 0 && kind < LOCK_NKINDS) ? kind_names[kind] : "?"; }

/* ---- lock ranking (per thread) ---- */

#define MAX_HELD 8
static _Thread_local int held_ranks[MAX_HELD];
static _Thread_local const char *held_names[MAX_HELD];
static _Thread_local int nheld;

/* Called before waiting for the lock, so an order violation (including re-acquiring a lock
 * this thread holds) is reported instead of deadlocking. */
static void rank_check(glock_t *l)
{
    for (int i = 0; i < nheld && i < MAX_HELD; i++)
        if (held_names[i] == l->name)
            gorun_throw("lock order violation: %s acquired again by a thread that holds it (self-deadlock)", l->name);
    if (l->rank != RANK_LEAF && nheld > 0) {
        for (int i = 0; i < nheld; i++) {
            if (held_ranks[i] != RANK_LEAF && (int)l->rank <= held_ranks[i])
                gorun_throw("lock order violation: acquiring %s (rank %u) while holding %s "
                            "(rank %d); see docs/design.md \"Lock order\"",
                            l->name, l->rank, held_names[i], held_ranks[i]);
        }
    }
}

static void rank_acquire(glock_t *l)
{
    if (nheld < MAX_HELD) {
        held_ranks[nheld] = (int)l->rank;
        held_names[nheld] = l->name;
    }
    nheld++;
}

static void rank_release(glock_t *l)
{
    /* Locks are usually released in LIFO order; handle any order. */
    int n = nheld < MAX_HELD ? nheld : MAX_HELD;
    for (int i = n - 1; i >= 0; i--) {
        if (held_names[i] == l->name) {
            for (int j = i; j < n - 1; j++) {
                held_ranks[j] = held_ranks[j + 1];
                held_names[j] = held_names[j + 1];
            }
            break;
        }
    }
    nheld--;
}

/* ---- init ---- */

int glock_init(glock_t *l, int kind, int rank, const char *name)
{
    memset(l, 0, sizeof *l);
    l->kind = (uint32_t)kind;
    l->rank = (uint32_t)rank;
    snprintf(l->name, sizeof l->name, "%s", name);
    if (kind == LOCK_PTHREAD) {
        pthread_mutexattr_t a;
        if (pthread_mutexattr_init(&a) != 0) return GLOCK_ERROR;
        pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
        pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
        int rc = pthread_mutex_init(&l->u.mu, &a);
        pthread_mutexattr_destroy(&a);
        return rc == 0 ? GLOCK_OK : GLOCK_ERROR;
    }
    if (kind == LOCK_SEM) return sem_init(&l->u.sem, 1, 1) == 0 ? GLOCK_OK : GLOCK_ERROR;
    return kind == LOCK_FUTEX ? GLOCK_OK : GLOCK_ERROR;
}

/* ---- helpers ---- */

static int holder_dead(glock_t *l)
{ return gorun_pid_dead(atomic_load_explicit(&l->owner_pid, memory_order_relaxed)); /* a zombie is dead */ }

#define WAIT_CHECK_NS      (100 * 1000 * 1000L) /* sleep at most this long before checking the holder */
#define ACTIVE_SPIN_ROUNDS 4                    /* Go's active_spin */
#define ACTIVE_SPIN_PAUSES 30                   /* Go's active_spin_cnt: pause instructions per round */

static int futex_lock_slow(glock_t *l, uint32_t v)
{
    uint32_t wait = v;
    for (;;) {
        /* active spin */
        for (int i = 0; i < ACTIVE_SPIN_ROUNDS; i++) {
            while (atomic_load_explicit(&l->key, memory_order_relaxed) == 0) {
                uint32_t z = 0;
                if (atomic_compare_exchange_weak(&l->key, &z, wait)) return GLOCK_OK;
            }
            procyield(ACTIVE_SPIN_PAUSES);
        }
        /* passive spin */
        while (atomic_load_explicit(&l->key, memory_order_relaxed) == 0) {
            uint32_t z = 0;
            if (atomic_compare_exchange_weak(&l->key, &z, wait)) return GLOCK_OK;
        }
        sched_yield();
        /* sleep */
        v = atomic_exchange(&l->key, 2);
        if (v == 0) return GLOCK_OK;
        wait = 2;
        uint64_t slept = nanotime();
        futex_wait_until(&l->key, 2, WAIT_CHECK_NS);
        /* only after a full sleep: a wake-up means the holder released (reading /proc at every
         * wake-up would lengthen every contended acquisition by tens of microseconds) */
        if (nanotime() - slept >= (uint64_t)WAIT_CHECK_NS && holder_dead(l)) return GLOCK_HOLDER_DIED;
    }
}

static int sem_lock_slow(glock_t *l)
{
    for (;;) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += WAIT_CHECK_NS;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        if (sem_clockwait(&l->u.sem, CLOCK_MONOTONIC, &ts) == 0) return GLOCK_OK;
        if (errno == EINTR) continue;
        if (errno != ETIMEDOUT) return GLOCK_ERROR;
        if (holder_dead(l)) return GLOCK_HOLDER_DIED;
    }
}

static inline void note_acquired(glock_t *l, uint64_t t0, int contended)
{
    l->acquisitions++;
    if (contended) { /* the clock is read only on the contended path */
        uint64_t t1 = nanotime(), w = t1 - t0;
        if (gorun_trace_on && G && w >= G->trace_lock_ns) trace_emit_dur(EV_LOCK_WAIT, t0, t1, trace_lock_id(l));
        l->contended++;
        l->wait_ns_total += w;
        if (w > l->wait_ns_max) l->wait_ns_max = w;
        int b = w ? 63 - __builtin_clzll(w) : 0;
        if (b >= LOCK_HIST_BUCKETS) b = LOCK_HIST_BUCKETS - 1;
        l->wait_hist[b]++;
    }
    l->acquired_ticks = cputicks();
    atomic_store_explicit(&l->owner_pid, gorun_ospid, memory_order_relaxed);
}

int glock_acquire(glock_t *l)
{
    int rc = GLOCK_OK, contended = 0;
    uint64_t t0 = 0;
    lockwait_t *lw = NULL; /* contended paths only: the watchdog sees who waits for which lock */
    rank_check(l);
    switch (l->kind) {
    case LOCK_FUTEX: {
        uint32_t v = atomic_exchange_explicit(&l->key, 1, memory_order_acquire);
        if (v != 0) {
            contended = 1;
            t0 = nanotime();
            lw = lockwait_begin(l, t0);
            rc = futex_lock_slow(l, v);
        }
        break;
    }
    case LOCK_PTHREAD: {
        int r = pthread_mutex_trylock(&l->u.mu);
        if (r == EBUSY) {
            contended = 1;
            t0 = nanotime();
            lw = lockwait_begin(l, t0);
            r = pthread_mutex_lock(&l->u.mu);
        }
        if (r == EOWNERDEAD) {
            pthread_mutex_consistent(&l->u.mu);
            l->recovered++;
            fprintf(stderr, "gorun: lock %s: holder died; robust mutex recovered (EOWNERDEAD)\n", l->name);
            r = 0;
        }
        if (r != 0) rc = GLOCK_ERROR;
        break;
    }
    case LOCK_SEM:
        if (sem_trywait(&l->u.sem) != 0) {
            contended = 1;
            t0 = nanotime();
            lw = lockwait_begin(l, t0);
            rc = sem_lock_slow(l);
        }
        break;
    default:
        rc = GLOCK_ERROR;
    }
    lockwait_end(lw, l);
    if (rc != GLOCK_OK) return rc;
    rank_acquire(l);
    note_acquired(l, t0, contended);
    return GLOCK_OK;
}

void glock_release(glock_t *l)
{
    uint64_t held = cputicks() - l->acquired_ticks;
    l->hold_ticks_total += held;
    if (held > l->hold_ticks_max) l->hold_ticks_max = held;
    atomic_store_explicit(&l->owner_pid, 0, memory_order_relaxed);
    rank_release(l);
    switch (l->kind) {
    case LOCK_FUTEX:
        if (atomic_exchange_explicit(&l->key, 0, memory_order_release) == 2) futex_wake(&l->key, 1);
        break;
    case LOCK_PTHREAD:
        pthread_mutex_unlock(&l->u.mu);
        break;
    case LOCK_SEM:
        sem_post(&l->u.sem);
        break;
    }
}

void lock(glock_t *l)
{
    int rc = glock_acquire(l);
    if (rc == GLOCK_HOLDER_DIED)
        gorun_throw("lock %s: its holder (pid %d) died while holding it", l->name, (int)atomic_load(&l->owner_pid));
    if (rc != GLOCK_OK) gorun_throw("lock %s: acquire failed", l->name);
}

void unlock(glock_t *l) { glock_release(l); }
