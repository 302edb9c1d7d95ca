/* lock.h: cross-process runtime locks (Go's runtime.mutex) with contention stats.
 * See lock.c and docs/design.md "Locks". */
#ifndef GORUN_LOCK_H
#define GORUN_LOCK_H

#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdint.h>

#include "os.h"

/* Lock kinds, chosen per run (--lock). */
enum { LOCK_FUTEX = 0, LOCK_PTHREAD = 1, LOCK_SEM = 2, LOCK_NKINDS = 3 };

/* Lock ranks (Go's lockrank, as data). A process may acquire a lock only if its rank is
 * strictly greater than every rank it already holds. The order, lowest first:
 *   pool < mcentral < mheap < typetab < special < workbuf
 * so "mcentral before mheap, never the reverse". A pool's lock (pool.c) is taken first, with no
 * other lock held, and under it only the write barrier's own flush may take the workbuf lock
 * (pool < workbuf). Rank 0 = unranked leaf (test locks). */
enum {
    RANK_LEAF = 0,
    RANK_POOL = 10, /* a sync.Pool's shared rings */
    RANK_MCENTRAL = 20,
    RANK_MHEAP = 30,
    RANK_TYPETAB = 40,
    RANK_SPECIAL = 45, /* specials (Go's mheap_.speciallock): taken with no lock held; under it
                          only the workbuf lock (greying a finalizable object's referents) */
    RANK_WORKBUF = 50, /* GC shared work-buffer lists */
};

#define LOCK_HIST_BUCKETS 32

/* One lock in shared memory. Every field after `key` is written only by the current holder
 * (under the lock itself); readers in other processes read racy snapshots, which is fine
 * for monotonic counters. `owner_pid` is written by the holder, read by waiters that time
 * out to detect a dead holder. */
typedef struct glock {
    _Atomic uint32_t key;                  /* futex kind: 0 unlocked, 1 locked, 2 locked + sleepers */
    uint32_t kind;                         /* LOCK_*; set at init, read-only after */
    uint32_t rank;                         /* RANK_*; set at init, read-only after */
    _Atomic int32_t owner_pid;             /* holder's OS pid (relaxed), stored right after the acquiring CAS and
                                    cleared before the release: 0 when free and during those few
                                    instructions, which waiters treat as a live holder */
    uint64_t acquired_ticks;               /* holder: cputicks() at acquisition, for hold time */
    uint64_t acquisitions;                 /* holder */
    uint64_t contended;                    /* holder: acquisitions that had to wait */
    uint64_t wait_ns_total;                /* holder */
    uint64_t wait_ns_max;                  /* holder */
    uint64_t hold_ticks_total;             /* holder, at release: cputicks (TSC); cputicks_to_ns converts */
    uint64_t hold_ticks_max;               /* holder, at release: the longest hold, cputicks */
    uint64_t recovered;                    /* holder: robust-mutex EOWNERDEAD recoveries */
    uint64_t wait_hist[LOCK_HIST_BUCKETS]; /* holder: bucket i counts waits in [2^i, 2^(i+1)) ns */
    char name[32];                         /* set at init */
    union {                                /* the kind's own primitive; set at init */
        pthread_mutex_t mu;                /* LOCK_PTHREAD: process-shared, robust */
        sem_t sem;                         /* LOCK_SEM: process-shared POSIX semaphore, value 1 = free */
    } u;
} __attribute__((aligned(64))) glock_t;

/* Result of glock_acquire. */
enum { GLOCK_OK = 0, GLOCK_HOLDER_DIED = -1, GLOCK_ERROR = -2 };

int glock_init(glock_t *l, int kind, int rank, const char *name);
int glock_acquire(glock_t *l); /* GLOCK_OK, or GLOCK_HOLDER_DIED (futex/sem) / GLOCK_ERROR */
void glock_release(glock_t *l);
const char *glock_kind_name(int kind);

/* Lock acquire that treats failure as fatal (the runtime's internal use): prints a clear
 * message naming the lock and exits the process; the launcher reports the death. */
void lock(glock_t *l);
void unlock(glock_t *l);

#endif
