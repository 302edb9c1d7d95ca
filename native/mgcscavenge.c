/* mgcscavenge.c: returning free heap memory to the OS (Go's mgcscavenge.go) and the memory
 * accounting the memory limit is measured against (Go's mappedReady, /memory/classes/...).
 *
 * The arena is a tmpfs file mapped shared by every process of the run, so releasing a page means
 * punching it out of the file (fallocate PUNCH_HOLE): the memory goes back to /dev/shm and the
 * page reads as zero afterwards in every process. MADV_DONTNEED would drop only the caller's
 * mapping of a shared page. mheap_scavenge releases free pages, highest addresses first (Go
 * allocates low and scavenges high), in runs of at least SCAV_MIN_PAGES within a chunk, marking
 * them in the page allocator's scavenged bitmap (mpagealloc.c), which reserves them again
 * (fallocate) when it hands them out. The punch itself runs without the mheap lock: the run is
 * first taken out of the allocator (in use, scavenged: "in flight"), then given back released.
 *
 * Accounting: sys_bytes counts every byte reserved with fallocate (metadata at init, each
 * growth); mapped_ready = sys_bytes - released pages, Go's mappedReady, what GOMEMLIMIT limits.
 *
 * This file only does what it is told: how much to scavenge and when (background pacing, the
 * limit's goal) is the GC process's Python policy. The one decision taken here is Go's
 * allocation-time rule: an allocation that leaves mapped_ready over the memory limit scavenges
 * the excess itself, unless the GC CPU limiter is on. Overview: docs/design.md "mheap and the
 * page allocator".
 */
#include "runtime.h"

/* Pages neither in a span nor released nor in flight (includes pages the test hooks hold
 * without a span): a lock-free upper bound of what a scavenge could find. */
static uint64_t unreleased_free_pages(void)
{
    mheap_t *h = &G->mheap;
    uint64_t grown = RELAXED_LOAD(h->grown_pages), used = RELAXED_LOAD(h->pages_inuse) +
                                                          RELAXED_LOAD(h->released_pages) +
                                                          RELAXED_LOAD(h->scav_inflight_pages) + 1; /* page 0 */
    return grown > used ? grown - used : 0;
}

uint64_t mheap_scavenge(uint64_t nbytes)
{
    mheap_t *h = &G->mheap;
    if (nbytes == 0 || gorun_arena_fd < 0 || unreleased_free_pages() < SCAV_MIN_PAGES) return 0;
    uint64_t want = (nbytes + SCAV_MIN_BYTES - 1) / SCAV_MIN_BYTES * SCAV_MIN_PAGES; /* pages, rounded up */
    uint64_t got = 0, below = UINT64_MAX, t0 = gorun_trace_on ? nanotime() : 0;
    lock(&h->lock);
    while (got < want) {
        uint64_t left = want - got, n = 0, max = left < SCAV_MAX_PAGES ? left : SCAV_MAX_PAGES;
        if (max < SCAV_MIN_PAGES) break; /* never more than asked (a shorter run took part of it) */
        uint64_t page = pagealloc_scav_take(below, SCAV_MIN_PAGES, max, &n);
        if (!page) break;
        unlock(&h->lock); /* nobody can allocate the run now: punch without the lock */
        int e = gorun_release(gorun_arena_fd, page * PAGE_SIZE, n * PAGE_SIZE);
        lock(&h->lock);
        pagealloc_scav_done(page, n, e == 0);
        if (e) break; /* the file system cannot punch holes: nothing can be released */
        got += n;
        below = page; /* the next run lies below this one */
    }
    unlock(&h->lock);
    if (gorun_trace_on) trace_emit_dur(EV_SCAVENGE, t0, nanotime(), got * PAGE_SIZE);
    return got * PAGE_SIZE;
}

uint64_t mapped_ready_bytes(void)
{
    mheap_t *h = &G->mheap;
    uint64_t sys = RELAXED_LOAD(h->sys_bytes), rel = RELAXED_LOAD(h->released_pages) * PAGE_SIZE;
    return sys > rel ? sys - rel : 0; /* two relaxed loads may straddle a growth */
}

void mheap_scavenge_sync(void)
{
    gcctl_t *gc = &G->gc;
    int64_t limit = atomic_load_explicit(&gc->memory_limit, memory_order_relaxed);
    if (limit == INT64_MAX || atomic_load_explicit(&gc->limiter_on, memory_order_relaxed)) return;
    uint64_t mr = mapped_ready_bytes();
    if (mr <= (uint64_t)limit) return; /* set_memory_limit never stores a negative limit */
    uint64_t t0 = nanotime();
    uint64_t got = mheap_scavenge(mr - (uint64_t)limit);
    atomic_fetch_add_explicit(&gc->scav_assist_ns, nanotime() - t0, memory_order_relaxed);
    if (got) atomic_fetch_add_explicit(&G->mheap.scav_sync_bytes, got, memory_order_relaxed);
}

void mheap_memstats(memstats_t *m)
{
    mheap_t *h = &G->mheap;
    int locked = glock_acquire(&h->lock) == GLOCK_OK; /* not lock(): a dead holder must not kill the caller */
    uint64_t grown = RELAXED_LOAD(h->grown_pages), inuse = RELAXED_LOAD(h->pages_inuse);
    uint64_t rel = RELAXED_LOAD(h->released_pages), sys = RELAXED_LOAD(h->sys_bytes);
    m->inflight = RELAXED_LOAD(h->scav_inflight_pages) * PAGE_SIZE;
    m->heap_live = atomic_load_explicit(&h->heap_live, memory_order_relaxed);
    m->scav_released_bytes = RELAXED_LOAD(h->scav_released_bytes);
    m->scav_reused_bytes = RELAXED_LOAD(h->scav_reused_bytes);
    m->scav_sync_bytes = RELAXED_LOAD(h->scav_sync_bytes);
    if (locked) glock_release(&h->lock);
    m->scav_assist_ns = atomic_load_explicit(&G->gc.scav_assist_ns, memory_order_relaxed);
    m->consistent = locked;
    m->grown = grown * PAGE_SIZE;
    m->heap_inuse = inuse * PAGE_SIZE;
    m->released = rel * PAGE_SIZE;
    m->free = grown > inuse + rel + 1 ? (grown - inuse - rel - 1) * PAGE_SIZE : 0; /* page 0 is never usable */
    m->objects = m->heap_live < m->heap_inuse ? m->heap_live : m->heap_inuse;
    m->unused = m->heap_inuse - m->objects;
    uint64_t arena = grown > 1 ? (grown - 1) * PAGE_SIZE : 0; /* reserved by growth, from page 1 */
    m->metadata = sys > arena ? sys - arena : 0;
    m->sys_bytes = m->total = sys;
    m->mapped_ready = sys > m->released ? sys - m->released : 0;
}
