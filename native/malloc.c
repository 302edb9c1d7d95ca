/* malloc.c: mallocgc, the allocation entry point (Go's malloc.go): tiny, small and large.
 *
 *  - tiny: `bytes` objects of at most TINY_MAX_BYTES bytes are packed into 16-byte blocks from
 *    span class 5 (size class 2, noscan). A tiny object has no 8-byte header: its first byte is
 *    its length. Span class 5 holds only tiny blocks, so a pointer into it is known to be a tiny
 *    object; other 16-byte noscan requests are served from class 3 instead.
 *  - small (header + payload <= 32 KiB): the P's mcache span for the span class, refilled from
 *    the mcentral when exhausted.
 *  - large: a span of its own straight from mheap, recorded on the class-0 mcentral's full list
 *    so the sweeper will find it.
 * Every non-tiny object starts with a header word (type id | len << 32). The slot is zeroed
 * when its span had been used before. Overview: docs/design.md "Allocation".
 */
#include <string.h>

#include "runtime.h"

static goaddr malloc_small(uint8_t spc, uint32_t size)
{
    mcache_t *mc = &thisP->mcache;
    if (G->debug_flags & DBG_MCACHEBYPASS) {
        /* GODEBUG=mcachebypass=1: every small allocation goes through its mcentral. */
        if (mcache_refill(spc) != 0) return 0;
    }
    for (;;) {
        spanid_t id = mc->alloc[spc];
        if (id) {
            mspan_t *s = spanof_id(id);
            int idx = span_next_free(s);
            if (idx >= 0) {
                goaddr a = (goaddr)s->startpage * PAGE_SIZE + (goaddr)idx * s->elemsize;
                if (s->needzero) memset(A + a, 0, size);
                if (atomic_load_explicit(&G->gc.phase, memory_order_relaxed) != GC_OFF)
                    gc_mark_alloc(a, s, size); /* allocate black */
                return a;
            }
        }
        if (mcache_refill(spc) != 0) return 0;
    }
}

static goaddr malloc_tiny(uint32_t n)
{
    mcache_t *mc = &thisP->mcache;
    uint32_t size = n + 1;
    uint32_t off = mc->tinyoffset;
    if ((size & 7) == 0)
        off = (off + 7) & ~7u;
    else if ((size & 3) == 0)
        off = (off + 3) & ~3u;
    else if ((size & 1) == 0)
        off = (off + 1) & ~1u;
    if (mc->tiny && off + size <= TINY_SIZE) {
        goaddr a = mc->tiny + off;
        mc->tinyoffset = off + size;
        A[a] = (uint8_t)n;
        thisP->stats.tiny_allocs++;
        return a;
    }
    goaddr block = malloc_small(TINY_SPAN_CLASS, TINY_SIZE);
    if (!block) return 0;
    A[block] = (uint8_t)n;
    /* Keep the block with more room left (Go's rule). */
    if (!mc->tiny || size < mc->tinyoffset) {
        mc->tiny = block;
        mc->tinyoffset = size;
    }
    thisP->stats.nmalloc_by_class[TINY_SIZE_CLASS]++;
    return block;
}

/* One attempt: 0 if the heap has no pages left for it. */
static goaddr mallocgc_try(uint64_t payload, uint32_t tid, uint32_t len, int noscan)
{
    pstats_t *st = &thisP->stats;
    goaddr a;
    if (tid == TID_BYTES && payload <= TINY_MAX_BYTES && payload > 0) {
        a = malloc_tiny((uint32_t)payload);
        if (a) {
            st->nmalloc++;
            st->alloc_bytes += payload + 1;
        }
        return a;
    }
    uint64_t size = payload + OBJ_HEADER_SIZE;
    if (size <= MAX_SMALL_SIZE) {
        int sc = size_to_class((uint32_t)size);
        if (noscan && sc == TINY_SIZE_CLASS) sc = TINY_SIZE_CLASS + 1; /* span class 5 is reserved for tiny blocks */
        a = malloc_small(spanclass_make(sc, noscan), (uint32_t)size);
        if (!a) return 0;
        *obj_word(a) = (uint64_t)tid | (uint64_t)len << 32;
        st->nmalloc_by_class[sc]++;
    } else {
        uint64_t npages = (size + PAGE_SIZE - 1) / PAGE_SIZE;
        uint8_t spc = spanclass_make(0, noscan);
        spanid_t id = mheap_alloc_span(npages, spc);
        if (!id) return 0;
        mspan_t *s = spanof_id(id);
        a = (goaddr)id * PAGE_SIZE;
        if (s->needzero) memset(A + a, 0, size);
        *obj_word(a) = (uint64_t)tid | (uint64_t)len << 32; /* typed before it can be marked */
        s->allocCount = 1;
        s->freeindex = 1;
        if (atomic_load_explicit(&G->gc.phase, memory_order_relaxed) != GC_OFF) gc_mark_alloc(a, s, (uint32_t)size);
        mcentral_add_large(&G->central[spc], id); /* onto the swept full list, for the sweeper */
        atomic_fetch_add_explicit(&G->mheap.heap_live, npages * PAGE_SIZE, memory_order_relaxed);
        st->large_allocs++;
        st->large_bytes += size;
        st->nmalloc_by_class[0]++;
        gc_trigger_check();
    }
    st->nmalloc++;
    st->alloc_bytes += size;
    return a;
}

uint64_t mallocgc_oom_marked = UINT64_MAX;

goaddr mallocgc(uint64_t payload, uint32_t tid, uint32_t len, int noscan)
{
    if (atomic_load_explicit(&G->gc.blacken, memory_order_relaxed)) { /* pay for allocation during mark */
        thisP->assist_debt += (int64_t)(payload + OBJ_HEADER_SIZE);
        gc_assist();
    } else if (atomic_load_explicit(&G->mheap.heap_live, memory_order_relaxed) >=
               atomic_load_explicit(&G->gc.goal, memory_order_relaxed)) {
        gc_wait_cycle_start(); /* past the goal and no cycle yet: let the GC process start one */
    }
    goaddr a = mallocgc_try(payload, tid, len, noscan);
    if (a || !G->gc.gc_ospid) /* no GC process (a standalone heap): nothing can free pages */
        return a;
    /* The heap hit --max-heap. Garbage may be holding the pages: run a full cycle, sweep
     * included (as g.gc() does), and retry once before reporting out of memory. No lock is held
     * here, and this P is RUNNING, so it can declare the wait like a blocking call. */
    gc_request_and_wait();
    a = mallocgc_try(payload, tid, len, noscan);
    mallocgc_oom_marked = a ? UINT64_MAX : atomic_load(&G->gc.heap_marked);
    return a;
}
