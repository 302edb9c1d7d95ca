/* mpagealloc.c: the page allocator (Go's mpagealloc.go, simplified to two levels).
 *
 * One bit per arena page (1 = in use), in chunks of 512 pages (4 MiB); each chunk keeps a
 * summary (free pages at its start, longest free run, free pages at its end) so a search skips
 * chunks that cannot hold the run and joins runs across chunk borders. Policy: address-ordered
 * first fit from a hint below which every chunk is full. Freeing clears bits, so neighbouring
 * free runs coalesce by construction. Pages past `grown_pages` stay marked in use until
 * pagealloc_grow hands them to the allocator. All state is under the mheap lock.
 * Overview: docs/design.md "mheap and the page allocator".
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#include "runtime.h"

#define WORDS_PER_CHUNK (PALLOC_CHUNK_PAGES / 64)

static inline uint64_t *pbits(void) { return (uint64_t *)((char *)G + G->off_pallocbits); }
static inline uint64_t *psum(void) { return (uint64_t *)((char *)G + G->off_pallocsum); }

/* summary packing: start | max << 16 | end << 32 */
static inline uint64_t sum_pack(uint64_t s, uint64_t m, uint64_t e) { return s | m << 16 | e << 32; }
static inline uint32_t sum_start(uint64_t v) { return (uint32_t)(v & 0xffff); }
static inline uint32_t sum_max(uint64_t v) { return (uint32_t)((v >> 16) & 0xffff); }
static inline uint32_t sum_end(uint64_t v) { return (uint32_t)((v >> 32) & 0xffff); }

static void summarize(uint64_t ci)
{
    const uint64_t *w = pbits() + ci * WORDS_PER_CHUNK;
    uint32_t start = 0, end = 0, max = 0, run = 0;
    for (int i = 0; i < WORDS_PER_CHUNK; i++) {
        if (w[i] == 0) {
            start += 64;
            continue;
        }
        start += (uint32_t)__builtin_ctzll(w[i]);
        break;
    }
    for (int i = WORDS_PER_CHUNK - 1; i >= 0; i--) {
        if (w[i] == 0) {
            end += 64;
            continue;
        }
        end += (uint32_t)__builtin_clzll(w[i]);
        break;
    }
    for (int i = 0; i < WORDS_PER_CHUNK; i++) {
        uint64_t x = w[i];
        if (x == 0) {
            run += 64;
            continue;
        }
        if (x == ~0ull) {
            if (run > max) max = run;
            run = 0;
            continue;
        }
        for (int b = 0; b < 64; b++) {
            if (x >> b & 1) {
                if (run > max) max = run;
                run = 0;
            } else
                run++;
        }
    }
    if (run > max) max = run;
    psum()[ci] = sum_pack(start, max, end);
}

static void set_range(uint64_t page, uint64_t n, int used)
{
    uint64_t *bits = pbits();
    uint64_t first = page / PALLOC_CHUNK_PAGES, last = (page + n - 1) / PALLOC_CHUNK_PAGES;
    for (uint64_t p = page; p < page + n;) {
        uint64_t wi = p / 64, b = p % 64;
        uint64_t k = 64 - b < page + n - p ? 64 - b : page + n - p;
        uint64_t mask = (k == 64 ? ~0ull : ((1ull << k) - 1)) << b;
        if (used)
            bits[wi] |= mask;
        else
            bits[wi] &= ~mask;
        p += k;
    }
    for (uint64_t ci = first; ci <= last; ci++) summarize(ci);
}

/* First fit of n pages inside chunk ci (n <= its max run). */
static uint64_t find_in_chunk(uint64_t ci, uint64_t n)
{
    const uint64_t *w = pbits() + ci * WORDS_PER_CHUNK;
    uint64_t run = 0, run_start = 0;
    for (uint64_t i = 0; i < PALLOC_CHUNK_PAGES; i++) {
        if (w[i / 64] >> (i % 64) & 1) {
            run = 0;
            continue;
        }
        if (run == 0) run_start = i;
        if (++run == n) return ci * PALLOC_CHUNK_PAGES + run_start;
    }
    return 0;
}

uint64_t pagealloc_alloc(uint64_t npages)
{
    mheap_t *h = &G->mheap;
    uint64_t nchunks = (h->grown_pages + PALLOC_CHUNK_PAGES - 1) / PALLOC_CHUNK_PAGES;
    uint64_t *sums = psum();
    if (npages == 0) return 0;
    /* advance the hint past full chunks */
    uint64_t ci = h->search_page / PALLOC_CHUNK_PAGES;
    while (ci < nchunks && sum_max(sums[ci]) == 0) ci++;
    h->search_page = ci * PALLOC_CHUNK_PAGES;
    uint64_t run = 0, run_start = 0, found = 0;
    for (; ci < nchunks; ci++) {
        uint64_t s = sums[ci];
        if (sum_max(s) == PALLOC_CHUNK_PAGES) {
            if (run == 0) run_start = ci * PALLOC_CHUNK_PAGES;
            run += PALLOC_CHUNK_PAGES;
            if (run >= npages) {
                found = run_start;
                break;
            }
            continue;
        }
        if (run > 0 && run + sum_start(s) >= npages) {
            found = run_start;
            break;
        }
        if (sum_max(s) >= npages) {
            found = find_in_chunk(ci, npages);
            break;
        }
        run = sum_end(s);
        run_start = (ci + 1) * PALLOC_CHUNK_PAGES - run;
    }
    if (!found) return 0;
    set_range(found, npages, 1);
    return found;
}

void pagealloc_free(uint64_t page, uint64_t npages)
{
    mheap_t *h = &G->mheap;
    set_range(page, npages, 0);
    uint64_t chunk_base = page / PALLOC_CHUNK_PAGES * PALLOC_CHUNK_PAGES;
    if (chunk_base < h->search_page) h->search_page = chunk_base;
}

/* Free pages immediately below grown_pages (a run the growth can extend). */
static uint64_t free_tail(void)
{
    mheap_t *h = &G->mheap;
    uint64_t run = 0;
    for (uint64_t ci = h->grown_pages / PALLOC_CHUNK_PAGES; ci-- > 0;) {
        uint64_t s = psum()[ci];
        run += sum_end(s);
        if (sum_end(s) != PALLOC_CHUNK_PAGES) break;
    }
    return run;
}

/* Set when this process's last growth failed because /dev/shm is full (process-local: the
 * process that grows is the one that raises the out-of-memory error). */
static struct {
    int full;
    uint64_t need, free;
} shm_oom;

int pagealloc_shm_oom_message(char *buf, size_t len, uint64_t request_bytes)
{
    if (!shm_oom.full) return 0;
    char req[32], need[32], fr[32];
    fmt_bytes(req, sizeof req, request_bytes);
    fmt_bytes(need, sizeof need, shm_oom.need);
    fmt_bytes(fr, sizeof fr, shm_oom.free);
    snprintf(buf, len,
             "out of memory: cannot allocate %s: /dev/shm is full (%s free; growing the heap needs %s "
             "of shared memory); enlarge /dev/shm or run less at once",
             req, fr, need);
    return 1;
}

/* Reserve (fallocate), then prefault, what growth over pages [page, page + n) will touch, before
 * anything is touched: the arena pages, their span records, alloc and mark bits, pagemap entries (and
 * checkmark bits under GODEBUG=gccheckmark=1), and the work buffers the grown heap may need
 * (one entry per 256 grown bytes, plus INITIAL_WBUFS), which then become usable. -1 with
 * shm_oom set if /dev/shm is full. */
static int grow_reserve(uint64_t page, uint64_t n, uint64_t newgrown)
{
    uint64_t cap = wbufs_for_pages(G->mheap.npages), nb = wbufs_for_pages(newgrown);
    if (cap > UINT32_MAX - 1) cap = UINT32_MAX - 1;
    if (nb > cap) nb = cap;
    uint32_t oldnb = atomic_load_explicit(&G->gc.work.nbufs, memory_order_relaxed);
    if (nb < oldnb) nb = oldnb;
    struct {
        int fd;
        uint64_t off, size;
        int prefault; /* metadata a span on these pages writes under the mheap lock */
    } r[] = {
        {gorun_arena_fd, page * PAGE_SIZE, n * PAGE_SIZE, 0},
        {gorun_meta_fd, G->off_spans + page * sizeof(mspan_t), n * sizeof(mspan_t), 1},
        {gorun_meta_fd, G->off_allocbits + page * SPAN_BITS_BYTES, n * SPAN_BITS_BYTES, 1},
        {gorun_meta_fd, G->off_markbits + page * SPAN_BITS_BYTES, n * SPAN_BITS_BYTES, 1},
        {gorun_meta_fd, G->off_pagemap + page * sizeof(uint32_t), n * sizeof(uint32_t), 1},
        {gorun_meta_fd, G->off_checkbits + page * SPAN_BITS_BYTES,
         G->debug_flags & DBG_CHECKMARK ? n * SPAN_BITS_BYTES : 0, 0},
        {gorun_meta_fd, G->off_wbufs + oldnb * sizeof(wbuf_t), (nb - oldnb) * sizeof(wbuf_t), 0},
    };
    uint64_t total = 0;
    for (unsigned i = 0; i < sizeof r / sizeof r[0]; i++) total += r[i].size;
    for (unsigned i = 0; i < sizeof r / sizeof r[0]; i++) {
        if (gorun_reserve(r[i].fd, r[i].off, r[i].size) == ENOSPC) {
            shm_oom.full = 1;
            shm_oom.need = total;
            shm_oom.free = gorun_shm_free();
            return -1;
        }
    }
    /* Fault in, one call per region, the metadata a span on these pages will write, so span
     * allocation under the mheap lock does not take a page fault per record. Best effort: older
     * kernels lack MADV_POPULATE_WRITE. */
    for (unsigned i = 0; i < sizeof r / sizeof r[0]; i++) {
        if (!r[i].prefault) continue;
        uint64_t a = r[i].off & ~4095ull, e = (r[i].off + r[i].size + 4095) & ~4095ull;
        madvise((char *)G + a, e - a, MADV_POPULATE_WRITE);
    }
    /* Only grows; read under the work-queue lock by the markers. */
    atomic_store_explicit(&G->gc.work.nbufs, (uint32_t)nb, memory_order_release);
    return 0;
}

int pagealloc_grow(uint64_t npages)
{
    mheap_t *h = &G->mheap;
    /* Grow in whole chunks (Go rounds growth to 4 MiB palloc chunks), capped by the reservation;
     * a free run at the end of the grown heap counts toward the request. */
    uint64_t tail = free_tail();
    uint64_t want = h->grown_pages + (npages > tail ? npages - tail : 1);
    uint64_t newgrown = (want + PALLOC_CHUNK_PAGES - 1) / PALLOC_CHUNK_PAGES * PALLOC_CHUNK_PAGES;
    if (newgrown > h->npages) newgrown = h->npages;
    shm_oom.full = 0;
    if (newgrown < want) return -1;
    if (grow_reserve(h->grown_pages, newgrown - h->grown_pages, newgrown) != 0) return -1;
    pagealloc_free(h->grown_pages, newgrown - h->grown_pages);
    LOCKED_STORE(h->grown_pages, newgrown);
    LOCKED_ADD(h->grow_events, 1);
    return 0;
}

/* Validity walker: recompute every summary and compare; count free pages below grown. */
uint64_t pagealloc_check(char *err, size_t errlen)
{
    mheap_t *h = &G->mheap;
    uint64_t nchunks = (h->npages + PALLOC_CHUNK_PAGES - 1) / PALLOC_CHUNK_PAGES;
    uint64_t free = 0;
    for (uint64_t ci = 0; ci < nchunks; ci++) {
        uint64_t old = psum()[ci];
        summarize(ci);
        if (psum()[ci] != old) {
            snprintf(err, errlen, "chunk %llu: summary %llx, bits say %llx", (unsigned long long)ci,
                     (unsigned long long)old, (unsigned long long)psum()[ci]);
            return (uint64_t)-1;
        }
    }
    for (uint64_t p = 0; p < h->npages; p++) {
        int used = pbits()[p / 64] >> (p % 64) & 1;
        if (p >= h->grown_pages && !used) {
            snprintf(err, errlen, "page %llu beyond grown_pages is free", (unsigned long long)p);
            return (uint64_t)-1;
        }
        if (p == 0 && !used) {
            snprintf(err, errlen, "page 0 (nil) is free");
            return (uint64_t)-1;
        }
        if (p < h->search_page && !used) {
            snprintf(err, errlen, "page %llu below the search hint is free", (unsigned long long)p);
            return (uint64_t)-1;
        }
        free += !used;
    }
    return free;
}
