/* mpagealloc.c: the page allocator (Go's mpagealloc.go, simplified to two levels).
 *
 * One bit per arena page (1 = in use), in chunks of 512 pages (4 MiB); each chunk keeps a
 * summary (free pages at its start, longest free run, free pages at its end) so a search skips
 * chunks that cannot hold the run and joins runs across chunk borders. Policy: address-ordered
 * first fit from a hint below which every chunk is full. Freeing clears bits, so neighbouring
 * free runs coalesce by construction. Pages past `grown_pages` stay marked in use until
 * pagealloc_grow hands them to the allocator.
 *
 * A second bitmap of the same shape, the scavenged bits (Go's scavenged bitmap in
 * mpallocbits.go), marks free pages whose arena memory was returned to the OS (mgcscavenge.c
 * punches them out). Allocation hands scavenged pages out like any free page, but first clears
 * their bits and reserves them again with fallocate; a run that was entirely scavenged is known
 * to read as zero. All state is under the mheap lock.
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
static inline uint64_t *sbits(void) { return (uint64_t *)((char *)G + G->off_scavbits); }

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

/* Set (on) or clear bits [page, page + n) of a page bitmap. */
static void bits_set(uint64_t *bits, uint64_t page, uint64_t n, int on)
{
    for (uint64_t p = page; p < page + n;) {
        uint64_t wi = p / 64, b = p % 64;
        uint64_t k = 64 - b < page + n - p ? 64 - b : page + n - p;
        uint64_t mask = (k == 64 ? ~0ull : ((1ull << k) - 1)) << b;
        if (on)
            bits[wi] |= mask;
        else
            bits[wi] &= ~mask;
        p += k;
    }
}

/* Bits set in [page, page + n) of a page bitmap. */
static uint64_t bits_count(const uint64_t *bits, uint64_t page, uint64_t n)
{
    uint64_t c = 0;
    for (uint64_t p = page; p < page + n;) {
        uint64_t wi = p / 64, b = p % 64;
        uint64_t k = 64 - b < page + n - p ? 64 - b : page + n - p;
        uint64_t mask = (k == 64 ? ~0ull : ((1ull << k) - 1)) << b;
        c += (uint64_t)__builtin_popcountll(bits[wi] & mask);
        p += k;
    }
    return c;
}

static inline int bit_at(const uint64_t *bits, uint64_t p) { return (int)(bits[p / 64] >> (p % 64) & 1); }

static void set_range(uint64_t page, uint64_t n, int used)
{
    bits_set(pbits(), page, n, used);
    uint64_t first = page / PALLOC_CHUNK_PAGES, last = (page + n - 1) / PALLOC_CHUNK_PAGES;
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

/* Set when this process's last reservation failed because /dev/shm is full, growing the heap or
 * reusing released pages (process-local: the process that allocates is the one that raises the
 * out-of-memory error). Reset by every pagealloc_alloc and pagealloc_grow. */
static struct {
    int full;
    const char *what; /* "growing the heap", "reusing released pages" */
    uint64_t need, free;
} shm_oom;

static void note_shm_full(const char *what, uint64_t need)
{
    shm_oom.full = 1;
    shm_oom.what = what;
    shm_oom.need = need;
    shm_oom.free = gorun_shm_free();
}

int pagealloc_reserve_failed(void) { return shm_oom.full; }

/* The pages [page, page + n) were just taken from the allocator: reserve again (fallocate) every
 * scavenged one among them and clear its bit. 0, or -1 if /dev/shm is full; then nothing changed
 * (sub-runs already reserved are kept, but as free unscavenged pages once the caller frees the
 * run). *nscav: the scavenged pages the run held. */
static int unscavenge(uint64_t page, uint64_t n, uint64_t *nscav)
{
    mheap_t *h = &G->mheap;
    uint64_t *sb = sbits(), k = bits_count(sb, page, n), done = 0;
    *nscav = k;
    if (k == 0) return 0;
    for (uint64_t p = page, end = page + n; p < end && done < k;) {
        if (!bit_at(sb, p)) { /* skip unscavenged pages, a whole word at a time when possible */
            p = p % 64 == 0 && sb[p / 64] == 0 ? p + 64 : p + 1;
            continue;
        }
        uint64_t q = p;
        while (q < end && bit_at(sb, q)) q++;
        if (gorun_reserve(gorun_arena_fd, p * PAGE_SIZE, (q - p) * PAGE_SIZE) == ENOSPC) {
            note_shm_full("reusing released pages", (k - done) * PAGE_SIZE);
            break;
        }
        bits_set(sb, p, q - p, 0);
        done += q - p;
        p = q;
    }
    LOCKED_SUB(h->released_pages, done);
    LOCKED_ADD(h->scav_reused_bytes, done * PAGE_SIZE);
    return done == k ? 0 : -1;
}

uint64_t pagealloc_alloc(uint64_t npages, uint64_t *nscav)
{
    mheap_t *h = &G->mheap;
    uint64_t nchunks = (h->grown_pages + PALLOC_CHUNK_PAGES - 1) / PALLOC_CHUNK_PAGES;
    uint64_t *sums = psum();
    shm_oom.full = 0;
    *nscav = 0;
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
    if (unscavenge(found, npages, nscav) != 0) { /* /dev/shm is full: put the run back */
        pagealloc_free(found, npages);
        *nscav = 0;
        return 0;
    }
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

int pagealloc_shm_oom_message(char *buf, size_t len, uint64_t request_bytes)
{
    if (!shm_oom.full) return 0;
    char req[32], need[32], fr[32];
    fmt_bytes(req, sizeof req, request_bytes);
    fmt_bytes(need, sizeof need, shm_oom.need);
    fmt_bytes(fr, sizeof fr, shm_oom.free);
    snprintf(buf, len,
             "out of memory: cannot allocate %s: /dev/shm is full (%s free; %s needs %s "
             "of shared memory); enlarge /dev/shm or run less at once",
             req, fr, shm_oom.what, need);
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
            note_shm_full("growing the heap", total);
            return -1;
        }
    }
    LOCKED_ADD(G->mheap.sys_bytes, total);
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

/* ---- the scavenger's side (mgcscavenge.c drives it, under the mheap lock) ---- */

/* Take the highest run of at least `min` free, unscavenged pages that ends at or below page
 * `below`, within one chunk, at most `max` pages of it (its top): the pages become in use in the
 * page bitmap (nobody allocates them) and scavenged (in flight) until pagealloc_scav_done. Returns
 * the run's first page and its length in *n, or 0 if there is none. Work: the chunks below
 * `below`, skipping by summary those with no free run of `min` pages. */
uint64_t pagealloc_scav_take(uint64_t below, uint64_t min, uint64_t max, uint64_t *n)
{
    mheap_t *h = &G->mheap;
    const uint64_t *ab = pbits(), *sb = sbits();
    if (below > h->grown_pages) below = h->grown_pages;
    if (min == 0 || max < min || below == 0) return 0;
    for (uint64_t ci = (below - 1) / PALLOC_CHUNK_PAGES + 1; ci-- > 0;) {
        if (sum_max(psum()[ci]) < min) continue; /* no free run that long, scavenged or not */
        uint64_t lo = ci * PALLOC_CHUNK_PAGES, hi = lo + PALLOC_CHUNK_PAGES < below ? lo + PALLOC_CHUNK_PAGES : below;
        uint64_t run = 0, top = 0; /* the current run of candidates (free, unscavenged): [top - run, top) */
        for (uint64_t p = hi; p-- > lo;) {
            if (p % 64 == 63) { /* a whole word at once (lo is a multiple of 64) */
                uint64_t c = ~(ab[p / 64] | sb[p / 64]);
                if (c == ~0ull) {
                    if (!run) top = p + 1;
                    run += 64;
                    p -= 63;
                    continue;
                }
                if (c == 0) {
                    if (run >= min) break;
                    run = 0;
                    p -= 63;
                    continue;
                }
            }
            if (!bit_at(ab, p) && !bit_at(sb, p)) {
                if (!run) top = p + 1;
                run++;
                continue;
            }
            if (run >= min) break; /* the highest qualifying run of this chunk */
            run = 0;
        }
        if (run < min) continue;
        uint64_t k = run < max ? run : max, start = top - k;
        set_range(start, k, 1);
        bits_set(sbits(), start, k, 1);
        LOCKED_ADD(h->scav_inflight_pages, k);
        *n = k;
        return start;
    }
    return 0;
}

/* End of a scavenge of the run taken by pagealloc_scav_take: free it again, with its scavenged
 * bits kept (released: its arena pages were punched out) or cleared (the punch failed). */
void pagealloc_scav_done(uint64_t page, uint64_t n, int released)
{
    mheap_t *h = &G->mheap;
    LOCKED_SUB(h->scav_inflight_pages, n);
    if (released) {
        LOCKED_ADD(h->released_pages, n);
        LOCKED_ADD(h->scav_released_bytes, n * PAGE_SIZE);
    } else
        bits_set(sbits(), page, n, 0);
    pagealloc_free(page, n);
}

/* Copy the scavenged bits of pages [0, n) into out, one byte per page (1 = scavenged). */
void pagealloc_scavenged_pages(uint8_t *out, uint64_t n)
{
    for (uint64_t p = 0; p < n; p++) out[p] = (uint8_t)bit_at(sbits(), p);
}

/* Validity walker: recompute every summary and compare; check the scavenged bits (only below
 * grown_pages; free ones are released_pages, in-use ones scav_inflight_pages); count free pages
 * below grown. */
uint64_t pagealloc_check(char *err, size_t errlen)
{
    mheap_t *h = &G->mheap;
    uint64_t nchunks = (h->npages + PALLOC_CHUNK_PAGES - 1) / PALLOC_CHUNK_PAGES;
    uint64_t free = 0, scav_free = 0, scav_used = 0;
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
        if (!bit_at(sbits(), p)) continue;
        if (p >= h->grown_pages) {
            snprintf(err, errlen, "page %llu beyond grown_pages is scavenged", (unsigned long long)p);
            return (uint64_t)-1;
        }
        scav_free += !used;
        scav_used += used;
    }
    if (scav_free != RELAXED_LOAD(h->released_pages) || scav_used != RELAXED_LOAD(h->scav_inflight_pages)) {
        snprintf(err, errlen,
                 "%llu free and %llu in-use pages are scavenged; released_pages %llu, scav_inflight_pages %llu "
                 "(a scavenged page must be free unless mheap_scavenge holds it)",
                 (unsigned long long)scav_free, (unsigned long long)scav_used,
                 (unsigned long long)RELAXED_LOAD(h->released_pages),
                 (unsigned long long)RELAXED_LOAD(h->scav_inflight_pages));
        return (uint64_t)-1;
    }
    return free;
}
