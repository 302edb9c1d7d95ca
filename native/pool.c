/* pool.c: sync.Pool in shared memory (Go's sync/pool.go and runtime's poolCleanup).
 *
 * A pool is registered by name in the pool region of the metadata segment (off_pools, layout at
 * poolhdr_t in runtime.h). Per P it has, in each of two generations, a private slot and a
 * bounded shared ring: the owner P puts into its private slot, else pushes at its ring's head;
 * Get takes, as Go does, the private slot, then its own ring's head, then one object from the
 * tail of another P's ring (a steal), then the victim generation (its own private slot, then
 * the tails of every P's victim ring); finding nothing is a miss, and the caller calls New.
 *
 * Locking: the private slot is the owner's alone (Go pins the goroutine to its P; here a Get or
 * Put is one runtime call with no safepoint inside, made only while the P is RUNNING), so it is
 * written lock-free. Every shared ring of a pool is under the pool's one lock (RANK_POOL, taken
 * with no other lock held) instead of Go's lock-free poolChain: simpler, and Get/Put only reach
 * it when the private slot is empty or taken.
 *
 * The GC: every slot is a root. The markers scan every registered pool's slots (both
 * generations) once per cycle, concurrently (mgcmark.c gc_scan_pools), and gccheckmark re-marks
 * from them. A slot write is a pointer write: it goes through writebarrier_store, which while
 * the barrier is on logs (old, new), so a Put shades the object it pools (insertion: the slot
 * may have been scanned already) and a Get shades the object it takes out (deletion: it moves
 * into a handle whose root table may have been scanned already). poolCleanup runs in STW 1
 * (sweep termination), as in Go: no P is inside a Get or Put, the barrier is still off and no
 * marking has started, so it rewrites slots with plain stores; the victim it drops is no root
 * for the cycle that follows, whose sweep frees what nothing else reaches. Overview:
 * docs/design.md "sync.Pool".
 */
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <string.h>

#include "runtime.h"

int pool_init_locks(int lock_kind)
{
    for (uint32_t i = 0; i < MAX_POOLS; i++) {
        char name[32];
        snprintf(name, sizeof name, "pool[%u]", i);
        if (glock_init(&pool_at(i)->lock, lock_kind, RANK_POOL, name) != GLOCK_OK) return -1;
    }
    return 0;
}

int pool_register(const char *name)
{
    for (uint32_t i = 0; i < MAX_POOLS; i++) {
        poolhdr_t *pl = pool_at(i);
        uint32_t st = atomic_load_explicit(&pl->state, memory_order_acquire);
        if (st == POOL_FREE) {
            uint32_t z = POOL_FREE;
            if (atomic_compare_exchange_strong(&pl->state, &z, POOL_CLAIMED)) {
                snprintf(pl->name, sizeof pl->name, "%s", name);
                atomic_store_explicit(&pl->state, POOL_READY, memory_order_release);
                return (int)i;
            }
            st = z;
        }
        while (st == POOL_CLAIMED) { /* its claimer is writing the name: a few instructions */
            sched_yield();
            st = atomic_load_explicit(&pl->state, memory_order_acquire);
        }
        if (strncmp(pl->name, name, sizeof pl->name) == 0) return (int)i;
    }
    return -1;
}

/* Under the pool's lock. The slot is cleared through the barrier: the object moves to a handle. */
static goaddr ring_pop_head(poolshard_t *s)
{
    uint32_t h = atomic_load_explicit(&s->head, memory_order_relaxed),
             t = atomic_load_explicit(&s->tail, memory_order_relaxed);
    if (h == t) return 0;
    _Atomic goaddr *slot = &s->shared[(h - 1) % POOL_SHARED_CAP];
    goaddr a = atomic_load_explicit(slot, memory_order_relaxed);
    writebarrier_store(slot, 0);
    atomic_store_explicit(&s->head, h - 1, memory_order_relaxed);
    return a;
}

static goaddr ring_pop_tail(poolshard_t *s)
{
    uint32_t h = atomic_load_explicit(&s->head, memory_order_relaxed),
             t = atomic_load_explicit(&s->tail, memory_order_relaxed);
    if (h == t) return 0;
    _Atomic goaddr *slot = &s->shared[t % POOL_SHARED_CAP];
    goaddr a = atomic_load_explicit(slot, memory_order_relaxed);
    writebarrier_store(slot, 0);
    atomic_store_explicit(&s->tail, t + 1, memory_order_relaxed);
    return a;
}

goaddr pool_get(uint32_t id)
{
    poolhdr_t *pl = pool_at(id);
    uint32_t me = thisP->id, n = G->nprocs, gen = atomic_load_explicit(&pl->gen, memory_order_relaxed);
    poolpstats_t *st = &pool_local(pl, me)->stats;
    poolshard_t *mine = pool_shard(pl, me, gen);
    st->gets++;
    goaddr a = atomic_load_explicit(&mine->private, memory_order_relaxed);
    if (a) {
        writebarrier_store(&mine->private, 0);
        st->hits_private++;
        return a;
    }
    lock(&pl->lock);
    if ((a = ring_pop_head(mine)) != 0) {
        st->hits_shared++;
        goto out;
    }
    for (uint32_t i = 1; i < n; i++)
        if ((a = ring_pop_tail(pool_shard(pl, (me + i) % n, gen))) != 0) {
            st->steals++;
            goto out;
        }
    poolshard_t *vmine = pool_shard(pl, me, gen ^ 1);
    if ((a = atomic_load_explicit(&vmine->private, memory_order_relaxed)) != 0) {
        writebarrier_store(&vmine->private, 0);
        st->victim_hits++;
        goto out;
    }
    for (uint32_t i = 0; i < n; i++)
        if ((a = ring_pop_tail(pool_shard(pl, (me + i) % n, gen ^ 1))) != 0) {
            st->victim_hits++;
            goto out;
        }
    st->misses++;
out:
    unlock(&pl->lock);
    return a;
}

int pool_put(uint32_t id, goaddr a)
{
    poolhdr_t *pl = pool_at(id);
    uint32_t me = thisP->id, gen = atomic_load_explicit(&pl->gen, memory_order_relaxed);
    poolpstats_t *st = &pool_local(pl, me)->stats;
    poolshard_t *mine = pool_shard(pl, me, gen);
    st->puts++;
    if (!atomic_load_explicit(&mine->private, memory_order_relaxed)) {
        writebarrier_store(&mine->private, a);
        return 1;
    }
    int pooled = 0;
    lock(&pl->lock);
    uint32_t h = atomic_load_explicit(&mine->head, memory_order_relaxed);
    if (h - atomic_load_explicit(&mine->tail, memory_order_relaxed) < POOL_SHARED_CAP) {
        writebarrier_store(&mine->shared[h % POOL_SHARED_CAP], a);
        atomic_store_explicit(&mine->head, h + 1, memory_order_relaxed);
        pooled = 1;
    } else {
        st->overflows++;
    }
    unlock(&pl->lock);
    return pooled;
}

/* STW 1, before the barrier goes on: plain stores, no lock (no P is inside a Get or Put). */
void pool_cleanup(void)
{
    for (uint32_t i = 0; i < MAX_POOLS; i++) {
        poolhdr_t *pl = pool_at(i);
        if (atomic_load_explicit(&pl->state, memory_order_acquire) != POOL_READY) continue;
        uint32_t victim = atomic_load(&pl->gen) ^ 1;
        uint64_t dropped = 0;
        for (uint32_t p = 0; p < G->nprocs; p++) {
            poolshard_t *s = pool_shard(pl, p, victim);
            dropped += atomic_exchange_explicit(&s->private, 0, memory_order_relaxed) != 0;
            for (uint32_t k = 0; k < POOL_SHARED_CAP; k++)
                dropped += atomic_exchange_explicit(&s->shared[k], 0, memory_order_relaxed) != 0;
            atomic_store_explicit(&s->head, 0, memory_order_relaxed);
            atomic_store_explicit(&s->tail, 0, memory_order_relaxed);
        }
        atomic_store(&pl->gen, victim); /* the emptied victim is the new primary; the primary, the victim */
        atomic_fetch_add(&pl->dropped, dropped);
        atomic_fetch_add(&pl->cleanups, 1);
    }
}

void pool_held(uint32_t id, uint64_t held[2])
{
    poolhdr_t *pl = pool_at(id);
    uint32_t gen = atomic_load(&pl->gen);
    held[0] = held[1] = 0;
    for (uint32_t p = 0; p < G->nprocs; p++)
        for (uint32_t g = 0; g < 2; g++) {
            poolshard_t *s = pool_shard(pl, p, gen ^ g);
            held[g] += atomic_load_explicit(&s->private, memory_order_relaxed) != 0;
            for (uint32_t k = 0; k < POOL_SHARED_CAP; k++)
                held[g] += atomic_load_explicit(&s->shared[k], memory_order_relaxed) != 0;
        }
}
