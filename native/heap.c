/* heap.c: the layout of the metadata segment, its initialization by the launcher, and the
 * process-local runtime globals every other file uses. Overview: docs/design.md "Shared memory". */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/mman.h>
#include <unistd.h>

#include "runtime.h"

static uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) & ~(a - 1); }

typedef struct layout {
    uint64_t spans, allocbits, markbits, pagemap, pallocbits, pallocsum, scavbits, roots, globals, checkbits, wbufs,
        wblog, pauses, cycles, trace, specials, end, nchunks, nbufs, pools;
} layout_t;

static layout_t compute_layout(uint64_t arena_size, uint32_t nprocs, uint64_t root_slots, uint64_t nglobals)
{
    layout_t L;
    uint64_t npages = arena_size / PAGE_SIZE;
    L.nchunks = (npages + PALLOC_CHUNK_PAGES - 1) / PALLOC_CHUNK_PAGES;
    uint64_t off = align_up(sizeof(gorun_shared_t), 4096);
    L.spans = off;
    off = align_up(off + npages * sizeof(mspan_t), 4096);
    L.allocbits = off;
    off = align_up(off + npages * SPAN_BITS_BYTES, 4096);
    L.markbits = off;
    off = align_up(off + npages * SPAN_BITS_BYTES, 4096);
    L.pagemap = off;
    off = align_up(off + npages * sizeof(uint32_t), 4096);
    L.pallocbits = off;
    off = align_up(off + L.nchunks * (PALLOC_CHUNK_PAGES / 8), 4096);
    L.pallocsum = off;
    off = align_up(off + L.nchunks * sizeof(uint64_t), 4096);
    L.scavbits = off; /* same shape as the page bitmap: 1 = scavenged */
    off = align_up(off + L.nchunks * (PALLOC_CHUNK_PAGES / 8), 4096);
    L.roots = off;
    off = align_up(off + (uint64_t)nprocs * root_slots * 8, 4096);
    L.globals = off;
    off = align_up(off + nglobals * 8, 4096);
    L.pools = off; /* sync.Pool (pool.c), inside the fixed region of the root tables and globals */
    off = align_up(off + MAX_POOLS * pool_stride_for(nprocs), 4096);
    L.checkbits = off;
    off = align_up(off + npages * SPAN_BITS_BYTES, 4096);
    /* Shared work buffers for one grey entry per 256 arena bytes; a marker that finds the pool
     * empty keeps its grey objects in process memory and drains them itself (nothing dropped). */
    L.nbufs = wbufs_for_pages(npages);
    L.wbufs = off;
    off = align_up(off + L.nbufs * sizeof(wbuf_t), 4096);
    L.wblog = off;
    off = align_up(off + (uint64_t)nprocs * WBLOG_ENTRIES * 16, 4096);
    L.pauses = off;
    off = align_up(off + MAX_PAUSES * sizeof(pauserec_t), 4096);
    L.cycles = off;
    off = align_up(off + MAX_CYCLES * sizeof(cyclerec_t), 4096);
    L.specials = off; /* the special records (mfinal.c) */
    off = align_up(off + MAX_SPECIALS * sizeof(special_t), 4096);
    /* The event rings, last: always laid out (sparse), reserved and touched only with DBG_TRACE
     * (the fixed regions end where they begin). */
    L.trace = off;
    off = align_up(off + trace_region_bytes(nprocs + 1), 4096);
    L.end = off;
    return L;
}

uint64_t gorun_meta_size(uint64_t arena_size, uint32_t nprocs, uint64_t root_slots, uint64_t nglobals)
{ return compute_layout(arena_size, nprocs, root_slots, nglobals).end; }

/* The regions of the metadata a run writes whatever the heap does, reserved (fallocate) at init:
 * the control block, the page bitmap, summaries and scavenged bitmap, the root tables, globals and pools, the first
 * INITIAL_WBUFS work buffers, the barrier logs, the pause and cycle rings and the special records. The
 * per-page regions, the rest of the work buffers and the arena are reserved chunk by chunk as the heap
 * grows (pagealloc_grow). [start, end) offsets. */
#define NFIXED 5
static void fixed_regions(const layout_t *L, uint64_t out[NFIXED][2])
{
    uint64_t nb = L->nbufs < INITIAL_WBUFS ? L->nbufs : INITIAL_WBUFS;
    uint64_t r[NFIXED][2] = {
        {0, L->spans},
        {L->pallocbits, L->roots},
        {L->roots, L->checkbits},
        {L->wbufs, L->wbufs + nb * sizeof(wbuf_t)},
        {L->wblog, L->trace},
    };
    memcpy(out, r, sizeof r);
}

uint64_t gorun_meta_reserved(uint64_t arena_size, uint32_t nprocs, uint64_t root_slots, uint64_t nglobals)
{
    layout_t L = compute_layout(arena_size, nprocs, root_slots, nglobals);
    uint64_t r[NFIXED][2], n = 0;
    fixed_regions(&L, r);
    for (unsigned i = 0; i < NFIXED; i++) n += r[i][1] - r[i][0];
    return n;
}

/* ---- this process's mappings of the two segments ---- */

static void *meta_map, *arena_map;
static uint64_t meta_len, arena_len;

int heap_map(int meta_fd, uint64_t msize, int arena_fd, uint64_t asize)
{
    void *m = mmap(NULL, msize, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, meta_fd, 0);
    if (m == MAP_FAILED) return errno;
    void *a = mmap(NULL, asize, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, arena_fd, 0);
    if (a == MAP_FAILED) {
        int e = errno;
        munmap(m, msize);
        return e;
    }
    /* Keep our own (close-on-exec) copies of the fds: growth reserves shared memory through
     * them in whichever process grows the heap (forked children inherit them). */
    int mfd = fcntl(meta_fd, F_DUPFD_CLOEXEC, 3), afd = mfd < 0 ? -1 : fcntl(arena_fd, F_DUPFD_CLOEXEC, 3);
    if (afd < 0) {
        int e = errno;
        if (mfd >= 0) close(mfd);
        munmap(m, msize);
        munmap(a, asize);
        return e;
    }
    meta_map = m;
    arena_map = a;
    meta_len = msize;
    arena_len = asize;
    gorun_meta_fd = mfd;
    gorun_arena_fd = afd;
    return 0;
}

void heap_unmap(void)
{
    munmap(meta_map, meta_len);
    munmap(arena_map, arena_len);
    if (gorun_meta_fd >= 0) close(gorun_meta_fd);
    if (gorun_arena_fd >= 0) close(gorun_arena_fd);
    gorun_meta_fd = gorun_arena_fd = -1;
    meta_map = arena_map = NULL;
    G = NULL;
    A = NULL;
    thisP = NULL;
    gorun_trace_on = 0;
    trace_set_ring(-1);
}

void *heap_meta_map(void) { return meta_map; }
void *heap_arena_map(void) { return arena_map; }

int heap_layout_matches(const gorun_shared_t *g)
{ return g->magic == GORUN_MAGIC && g->abi_version == GORUN_ABI_VERSION && g->layout_sig == GORUN_LAYOUT_SIG; }

void gorun_attach_local(void *meta, void *arena)
{
    G = (gorun_shared_t *)meta;
    A = (uint8_t *)arena;
    thisP = NULL;
    gorun_ospid = (int32_t)getpid();
    gorun_trace_on = G->magic == GORUN_MAGIC && (G->debug_flags & DBG_TRACE) && G->trace_nrings;
    trace_set_ring(-1);
}

static void add_builtin_type(uint32_t tid, const char *name, uint32_t kind, uint32_t elem_kind, uint32_t has_ptrs)
{
    gotype_t *t = &G->typetab.types[tid];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->kind = kind;
    t->size = kind == TK_BYTES ? 1 : 8;
    t->elem_kind = elem_kind;
    t->has_ptrs = has_ptrs;
}

int gorun_init_shared(void *meta, uint64_t meta_size, void *arena, uint64_t arena_size, uint32_t nprocs, int lock_kind,
                      uint64_t root_slots, uint64_t nglobals, uint32_t debug_flags)
{
    layout_t L = compute_layout(arena_size, nprocs, root_slots, nglobals);
    if (meta_size < L.end || nprocs == 0 || nprocs > MAX_PROCS || arena_size < 2 * PAGE_SIZE ||
        arena_size > MAX_HEAP_BYTES || root_slots == 0 || root_slots > MAX_ROOT_SLOTS || nglobals == 0 ||
        nglobals > MAX_GLOBALS)
        return INIT_BAD_ARGS;
    /* Reserve every fixed region before any of it is touched (see fixed_regions). */
    uint64_t fixed[NFIXED][2];
    fixed_regions(&L, fixed);
    for (unsigned i = 0; i < NFIXED; i++) {
        int e = gorun_reserve(gorun_meta_fd, fixed[i][0], fixed[i][1] - fixed[i][0]);
        if (e) {
            errno = e;
            return INIT_RESERVE_FAILED;
        }
    }
    uint64_t trace_bytes = (debug_flags & DBG_TRACE) ? L.end - L.trace : 0;
    if (trace_bytes) {
        int e = gorun_reserve(gorun_meta_fd, L.trace, trace_bytes);
        if (e) {
            errno = e;
            return INIT_RESERVE_FAILED;
        }
    }
    gorun_attach_local(meta, arena);
    /* The segment is fresh (ftruncate'd), so it is already zero. */
    G->abi_version = GORUN_ABI_VERSION;
    G->layout_sig = GORUN_LAYOUT_SIG;
    G->nprocs = nprocs;
    G->lock_kind = (uint32_t)lock_kind;
    G->debug_flags = debug_flags;
    G->off_trace = L.trace;
    G->trace_nrings = trace_bytes ? nprocs + 1 : 0;
    G->trace_lock_ns = TRACE_LOCK_NS_DEFAULT;
    G->trace_rcall_ns = TRACE_RCALL_NS_DEFAULT;
    gorun_trace_on = trace_bytes != 0;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    G->ncpu = ncpu > 0 ? (uint32_t)ncpu : 1;
    G->meta_size = meta_size;
    G->arena_size = arena_size;
    G->root_slots = root_slots;
    G->nglobals = nglobals;
    G->launcher_pid = (int32_t)getpid();
    G->off_spans = L.spans;
    G->off_allocbits = L.allocbits;
    G->off_markbits = L.markbits;
    G->off_pagemap = L.pagemap;
    G->off_pallocbits = L.pallocbits;
    G->off_pallocsum = L.pallocsum;
    G->off_roots = L.roots;
    G->off_globals = L.globals;
    G->off_checkbits = L.checkbits;
    G->off_wbufs = L.wbufs;
    G->off_wblog = L.wblog;
    G->off_pauses = L.pauses;
    G->off_cycles = L.cycles;
    G->off_scavbits = L.scavbits;
    G->nchunks = L.nchunks;
    G->off_pools = L.pools;
    G->pool_stride = pool_stride_for(nprocs);

    mheap_t *h = &G->mheap;
    if (glock_init(&h->lock, lock_kind, RANK_MHEAP, "mheap") != GLOCK_OK) return INIT_LOCK_FAILED;
    h->npages = arena_size / PAGE_SIZE;
    /* Page 0 is never handed out, so goaddr 0 is nil. Every page starts "in use" in the page
     * bitmap; pagealloc_grow frees pages [grown_pages, ...) into the allocator. */
    memset((char *)G + G->off_pallocbits, 0xff, L.nchunks * (PALLOC_CHUNK_PAGES / 8));
    h->grown_pages = 1;
    h->search_page = 0;
    for (unsigned i = 0; i < NFIXED; i++) h->sys_bytes += fixed[i][1] - fixed[i][0]; /* reserved above */
    h->sys_bytes += trace_bytes;
    for (int i = 0; i < NUM_SPAN_CLASSES; i++) {
        char name[32];
        snprintf(name, sizeof name, "mcentral[%d]", i);
        if (glock_init(&G->central[i].lock, lock_kind, RANK_MCENTRAL, name) != GLOCK_OK) return INIT_LOCK_FAILED;
    }
    for (uint32_t i = 0; i < MAX_PROCS; i++) {
        G->allp[i].id = i;
        G->allp[i].status = i < nprocs ? P_IDLE : P_DEAD;
    }
    gcctl_t *gc = &G->gc;
    if (glock_init(&gc->work.lock, lock_kind, RANK_WORKBUF, "workbuf") != GLOCK_OK) return INIT_LOCK_FAILED;
    gc->work.nbufs =
        (uint32_t)(L.nbufs < INITIAL_WBUFS ? L.nbufs : INITIAL_WBUFS); /* raised (and reserved) at growth */
    gc->trigger = UINT64_MAX;                                          /* set by the pacer when the GC process starts */
    gc->goal = UINT64_MAX;
    gc->memory_limit = INT64_MAX; /* Go's default: no limit */
    gc->gc_percent = 100;
    gc->init_ns = nanotime();
    if (glock_init(&G->typetab.lock, lock_kind, RANK_TYPETAB, "typetab") != GLOCK_OK) return INIT_LOCK_FAILED;
    if (pool_init_locks(lock_kind) != 0) return INIT_LOCK_FAILED;
    if (glock_init(&G->specials.lock, lock_kind, RANK_SPECIAL, "special") != GLOCK_OK) return INIT_LOCK_FAILED;
    G->specials.off_recs = L.specials;
    add_builtin_type(TID_BYTES, "[]byte", TK_BYTES, 0, 0);
    add_builtin_type(TID_INT_ARRAY, "[]int", TK_ARRAY, FK_INT, 0);
    add_builtin_type(TID_FLOAT_ARRAY, "[]float", TK_ARRAY, FK_FLOAT, 0);
    add_builtin_type(TID_PTR_ARRAY, "[]ptr", TK_ARRAY, FK_PTR, 1);
    atomic_store(&G->typetab.ntypes, TID_FIRST_USER);
    G->magic = GORUN_MAGIC; /* last: the block is valid */
    return INIT_OK;
}
