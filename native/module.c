/* module.c: the CPython module gorun._gorun: attach/initialize the shared segments, become a
 * P, register types, allocate, read statistics, and the bounded test hooks. Thin by design:
 * the policy is in Python (gorun/). Overview: docs/design.md "Python and C". */
#include "gorun_py.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

static void *meta_map, *arena_map;
static uint64_t meta_len, arena_len;

int need_attached(void)
{
    if (!G) {
        PyErr_SetString(GorunError, "no gorun heap is attached in this process");
        return -1;
    }
    return 0;
}

static int do_map(int meta_fd, uint64_t msize, int arena_fd, uint64_t asize)
{
    void *m = mmap(NULL, msize, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, meta_fd, 0);
    if (m == MAP_FAILED) { PyErr_SetFromErrno(PyExc_OSError); return -1; }
    void *a = mmap(NULL, asize, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, arena_fd, 0);
    if (a == MAP_FAILED) { PyErr_SetFromErrno(PyExc_OSError); munmap(m, msize); return -1; }
    /* Keep our own (close-on-exec) copies of the fds: growth reserves shared memory through
     * them in whichever process grows the heap (forked children inherit them). */
    int mfd = fcntl(meta_fd, F_DUPFD_CLOEXEC, 3), afd = mfd < 0 ? -1 : fcntl(arena_fd, F_DUPFD_CLOEXEC, 3);
    if (afd < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        if (mfd >= 0) close(mfd);
        munmap(m, msize); munmap(a, asize);
        return -1;
    }
    meta_map = m; arena_map = a; meta_len = msize; arena_len = asize;
    gorun_meta_fd = mfd; gorun_arena_fd = afd;
    return 0;
}

static void do_unmap(void)
{
    munmap(meta_map, meta_len);
    munmap(arena_map, arena_len);
    if (gorun_meta_fd >= 0) close(gorun_meta_fd);
    if (gorun_arena_fd >= 0) close(gorun_arena_fd);
    gorun_meta_fd = gorun_arena_fd = -1;
    meta_map = arena_map = NULL;
}

static PyObject *py_meta_size(PyObject *mod, PyObject *args)
{
    unsigned long long arena, roots, nglobals;
    unsigned int nprocs;
    if (!PyArg_ParseTuple(args, "KIKK", &arena, &nprocs, &roots, &nglobals)) return NULL;
    return PyLong_FromUnsignedLongLong(gorun_meta_size(arena, nprocs, roots, nglobals));
}

static PyObject *py_init(PyObject *mod, PyObject *args)
{
    int mfd, afd, lock_kind;
    unsigned long long msize, asize, roots, nglobals;
    unsigned int nprocs, dbg;
    if (!PyArg_ParseTuple(args, "iKiKIiKKI", &mfd, &msize, &afd, &asize, &nprocs, &lock_kind, &roots, &nglobals, &dbg))
        return NULL;
    if (G) { PyErr_SetString(GorunError, "a heap is already attached in this process"); return NULL; }
    if (lock_kind < 0 || lock_kind >= LOCK_NKINDS) { PyErr_Format(PyExc_ValueError, "bad lock kind %d", lock_kind); return NULL; }
    if (do_map(mfd, msize, afd, asize) != 0) return NULL;
    int rc = gorun_init_shared(meta_map, msize, arena_map, asize, nprocs, lock_kind, roots, nglobals, dbg);
    if (rc != 0) {
        int e = errno;
        uint64_t free = gorun_shm_free();
        do_unmap();
        G = NULL; A = NULL;
        if (rc == -3 && e == ENOSPC) {
            char msg[256]; /* PyErr_Format has no %f */
            snprintf(msg, sizeof msg,
                     "out of memory: cannot reserve %.1f MiB of shared memory for the run's metadata: "
                     "/dev/shm has %.1f MiB free (enlarge /dev/shm, or lower --procs or --max-heap)",
                     (double)gorun_meta_reserved(asize, nprocs, roots, nglobals) / (1 << 20),
                     (double)free / (1 << 20));
            PyErr_SetString(OutOfMemoryError, msg);
        } else if (rc == -3)
            PyErr_Format(GorunError, "reserving shared memory for the run's metadata failed: %s", strerror(e));
        else
            PyErr_Format(GorunError, "initializing the shared heap failed (%d)", rc);
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *py_attach(PyObject *mod, PyObject *args)
{
    int mfd, afd;
    unsigned long long msize, asize;
    if (!PyArg_ParseTuple(args, "iKiK", &mfd, &msize, &afd, &asize)) return NULL;
    if (G) { PyErr_SetString(GorunError, "a heap is already attached in this process"); return NULL; }
    if (do_map(mfd, msize, afd, asize) != 0) return NULL;
    gorun_shared_t *g = meta_map;
    if (g->magic != GORUN_MAGIC || g->abi_version != GORUN_ABI_VERSION) {
        char hex[24]; /* PyErr_Format has no %llx */
        snprintf(hex, sizeof hex, "%llx", (unsigned long long)g->magic);
        PyErr_Format(GorunError, "segment is not a gorun heap of ABI %d (magic %s, abi %u)", GORUN_ABI_VERSION, hex,
                     g->abi_version);
        do_unmap();
        return NULL;
    }
    gorun_attach_local(meta_map, arena_map);
    Py_RETURN_NONE;
}

static PyObject *py_detach(PyObject *mod, PyObject *unused)
{
    if (G) {
        thisP = NULL;
        G = NULL; A = NULL;
        do_unmap();
    }
    Py_RETURN_NONE;
}

/* First thing in a forked child of the launcher: die with the launcher (PR_SET_PDEATHSIG), then
 * check that the launcher did not die before that was set (the child would then have been
 * re-parented and never get the signal): exit at once if the parent is not `launcher`. */
static PyObject *py_child_of(PyObject *mod, PyObject *arg)
{
    long launcher = PyLong_AsLong(arg);
    if (launcher == -1 && PyErr_Occurred()) return NULL;
    (void)prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    if (getppid() != (pid_t)launcher)
        _exit(1);
    Py_RETURN_NONE;
}

static PyObject *py_meta_reserved(PyObject *mod, PyObject *args)
{
    unsigned long long arena, roots, nglobals;
    unsigned int nprocs;
    if (!PyArg_ParseTuple(args, "KIKK", &arena, &nprocs, &roots, &nglobals)) return NULL;
    return PyLong_FromUnsignedLongLong(gorun_meta_reserved(arena, nprocs, roots, nglobals));
}

static PyObject *py_attached(PyObject *mod, PyObject *unused) { return PyBool_FromLong(G != NULL); }

static PyObject *py_set_p(PyObject *mod, PyObject *arg)
{
    if (need_attached()) return NULL;
    long id = PyLong_AsLong(arg);
    if (id == -1 && PyErr_Occurred()) return NULL;
    if (id < 0 || id >= (long)G->nprocs) { PyErr_Format(PyExc_ValueError, "P id %ld out of range", id); return NULL; }
    gorun_ospid = (int32_t)getpid();
    thisP = &G->allp[id];
    atomic_store(&thisP->ospid, gorun_ospid);
    thisP->mcache.flushGen = atomic_load(&G->mheap.sweepgen);
    roots_init_local();
    thisP->stats.start_ns = nanotime();
    p_start();
    Py_RETURN_NONE;
}

static PyObject *py_p_done(PyObject *mod, PyObject *unused)
{
    if (!thisP) Py_RETURN_NONE;
    if (atomic_load(&thisP->status) != P_RUNNING) Py_RETURN_NONE; /* already done */
    safepoint_poll_c();
    mcache_release_all();
    thisP->stats.end_ns = nanotime();
    uint32_t st = P_RUNNING;
    if (!atomic_compare_exchange_strong(&thisP->status, &st, P_DONE))
        gorun_throw("P%u: finishing with status %u", thisP->id, st);
    Py_RETURN_NONE;
}

static PyObject *py_register_type(PyObject *mod, PyObject *args)
{
    const char *name;
    unsigned int kind, size, elem_kind, elem_tid, has_ptrs, nwords;
    Py_buffer mask;
    if (!PyArg_ParseTuple(args, "sIIIIIIy*", &name, &kind, &size, &elem_kind, &elem_tid, &has_ptrs, &nwords, &mask))
        return NULL;
    if (need_attached()) { PyBuffer_Release(&mask); return NULL; }
    if (strlen(name) >= sizeof(((gotype_t *)0)->name) || nwords > MAX_STRUCT_WORDS ||
        (size_t)mask.len > sizeof(((gotype_t *)0)->ptrmask)) {
        PyErr_Format(PyExc_ValueError, "type %s: name longer than 47 bytes or more than %d words", name, MAX_STRUCT_WORDS);
        PyBuffer_Release(&mask);
        return NULL;
    }
    gotype_t t;
    memset(&t, 0, sizeof t);
    strcpy(t.name, name);
    t.kind = kind; t.size = size; t.elem_kind = elem_kind; t.elem_tid = elem_tid;
    t.has_ptrs = has_ptrs; t.nwords = nwords;
    memcpy(t.ptrmask, mask.buf, (size_t)mask.len);
    PyBuffer_Release(&mask);
    typetab_t *tt = &G->typetab;
    lock(&tt->lock);
    uint32_t n = atomic_load(&tt->ntypes), tid = 0;
    for (uint32_t i = 1; i < n; i++) {
        if (strcmp(tt->types[i].name, name) == 0) {
            if (memcmp(&tt->types[i], &t, sizeof t) != 0) {
                unlock(&tt->lock);
                PyErr_Format(GorunError, "type %s is already registered with a different layout", name);
                return NULL;
            }
            tid = i;
            break;
        }
    }
    if (!tid) {
        if (n >= MAX_TYPES) {
            unlock(&tt->lock);
            PyErr_Format(GorunError, "type table full (%d types)", MAX_TYPES);
            return NULL;
        }
        tt->types[n] = t;
        tid = n;
        atomic_store_explicit(&tt->ntypes, n + 1, memory_order_release);
    }
    unlock(&tt->lock);
    return PyLong_FromUnsignedLong(tid);
}

static PyObject *py_type_info(PyObject *mod, PyObject *arg)
{
    if (need_attached()) return NULL;
    unsigned long tid = PyLong_AsUnsignedLong(arg);
    if (PyErr_Occurred()) return NULL;
    if (tid == 0 || tid >= atomic_load(&G->typetab.ntypes)) { PyErr_Format(PyExc_ValueError, "no type %lu", tid); return NULL; }
    gotype_t *t = type_of((uint32_t)tid);
    return Py_BuildValue("{s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:y#}", "name", t->name, "kind", t->kind, "size", t->size,
                         "elem_kind", t->elem_kind, "elem_tid", t->elem_tid, "has_ptrs", t->has_ptrs, "nwords",
                         t->nwords, "ptrmask", (const char *)t->ptrmask, (Py_ssize_t)sizeof t->ptrmask);
}

static PyObject *py_bind_class(PyObject *mod, PyObject *args)
{
    unsigned int tid;
    PyObject *cls;
    if (!PyArg_ParseTuple(args, "IO!", &tid, &PyType_Type, &cls)) return NULL;
    if (!PyType_IsSubtype((PyTypeObject *)cls, &Handle_Type)) { PyErr_SetString(PyExc_TypeError, "class must derive from gorun.Handle"); return NULL; }
    if (bind_class(tid, cls) != 0) return NULL;
    Py_RETURN_NONE;
}

static PyObject *py_set_resolver(PyObject *mod, PyObject *fn)
{
    set_resolver(fn == Py_None ? NULL : fn);
    Py_RETURN_NONE;
}

static PyObject *py_new(PyObject *mod, PyObject *cls) { return handle_new_object(cls); }
static PyObject *py_new_bytes(PyObject *mod, PyObject *arg) { return handle_new_bytes(arg); }

static PyObject *py_new_array(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) { PyErr_SetString(PyExc_TypeError, "new_array(tid, n)"); return NULL; }
    unsigned long tid = PyLong_AsUnsignedLong(args[0]);
    Py_ssize_t n = PyLong_AsSsize_t(args[1]);
    if (PyErr_Occurred()) return NULL;
    if (need_attached()) return NULL;
    if (tid == 0 || tid >= atomic_load(&G->typetab.ntypes) || type_of((uint32_t)tid)->kind != TK_ARRAY) {
        PyErr_Format(PyExc_ValueError, "type %lu is not an array type", tid);
        return NULL;
    }
    return handle_new_array((uint32_t)tid, n);
}

static int global_index(PyObject *arg, uint64_t *i)
{
    if (need_attached()) return -1;
    Py_ssize_t v = PyLong_AsSsize_t(arg);
    if (v == -1 && PyErr_Occurred()) return -1;
    if (v < 0) v += (Py_ssize_t)G->nglobals;
    if (v < 0 || (uint64_t)v >= G->nglobals) {
        PyErr_Format(PyExc_IndexError, "global %zd out of range (%llu globals)", v, (unsigned long long)G->nglobals);
        return -1;
    }
    *i = (uint64_t)v;
    return 0;
}


static PyObject *py_global_get(PyObject *mod, PyObject *arg)
{
    uint64_t i;
    if (global_index(arg, &i)) return NULL;
    if (runtime_enter()) return NULL;
    return make_handle(atomic_load_explicit(&globals_base()[i], memory_order_acquire));
}

static PyObject *py_global_set(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    uint64_t i;
    int ok;
    if (nargs != 2) { PyErr_SetString(PyExc_TypeError, "global_set(i, handle_or_None)"); return NULL; }
    if (global_index(args[0], &i)) return NULL;
    if (ensure_p()) return NULL;
    goaddr v = handle_addr_arg(args[1], &ok);
    if (!ok) return NULL;
    if (runtime_enter()) return NULL;
    writebarrier_store(&globals_base()[i], v);
    Py_RETURN_NONE;
}

static PyObject *py_preempt_init(PyObject *mod, PyObject *unused)
{
    if (preempt_init() != 0) return PyErr_SetFromErrno(PyExc_OSError);
    Py_RETURN_NONE;
}

static PyObject *py_safepoint(PyObject *mod, PyObject *unused)
{
    safepoint_poll_c();
    Py_RETURN_NONE;
}

/* ---- statistics ---- */

static PyObject *lock_dict(glock_t *l)
{
    PyObject *hist = PyList_New(LOCK_HIST_BUCKETS);
    if (!hist) return NULL;
    for (int i = 0; i < LOCK_HIST_BUCKETS; i++) PyList_SET_ITEM(hist, i, PyLong_FromUnsignedLongLong(l->wait_hist[i]));
    return Py_BuildValue("{s:s,s:s,s:K,s:K,s:K,s:K,s:K,s:K,s:N}", "name", l->name, "kind", glock_kind_name((int)l->kind),
                         "acquisitions", l->acquisitions, "contended", l->contended, "wait_ns_total", l->wait_ns_total,
                         "wait_ns_max", l->wait_ns_max, "hold_ns_total",
                         (unsigned long long)((double)l->hold_ticks_total / cputicks_per_ns()), "recovered", l->recovered,
                         "wait_hist", hist);
}

static PyObject *p_dict(gp_t *p)
{
    pstats_t *s = &p->stats;
    PyObject *bc = PyList_New(NUM_SIZE_CLASSES);
    if (!bc) return NULL;
    for (int i = 0; i < NUM_SIZE_CLASSES; i++) PyList_SET_ITEM(bc, i, PyLong_FromUnsignedLongLong(s->nmalloc_by_class[i]));
    return Py_BuildValue("{s:I,s:i,s:I,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:N,s:K,s:K,s:K,s:K,s:K}", "id", p->id, "ospid",
                         (int)atomic_load(&p->ospid), "status", atomic_load(&p->status), "root_hwm",
                         (unsigned long long)atomic_load(&p->root_hwm), "root_live",
                         (unsigned long long)atomic_load(&p->root_live), "objects", s->nmalloc, "bytes", s->alloc_bytes,
                         "tiny_allocs", s->tiny_allocs, "large_allocs", s->large_allocs, "large_bytes", s->large_bytes,
                         "refills", s->refills, "start_ns", s->start_ns, "end_ns", s->end_ns, "by_class", bc,
                         "wb_entries", p->wb_entries, "wb_self_flushes", p->wb_self_flushes, "assists", p->assists,
                         "safepoint_serves", p->safepoint_serves, "preempt_signals", p->preempt_signals);
}

static PyObject *py_stats(PyObject *mod, PyObject *unused)
{
    if (need_attached()) return NULL;
    mheap_t *h = &G->mheap;
    PyObject *mc_locks = PyList_New(NUM_SPAN_CLASSES), *central = PyList_New(NUM_SPAN_CLASSES), *ps = PyList_New(G->nprocs);
    if (!mc_locks || !central || !ps) return NULL;
    for (int i = 0; i < NUM_SPAN_CLASSES; i++) {
        PyList_SET_ITEM(mc_locks, i, lock_dict(&G->central[i].lock));
        PyList_SET_ITEM(central, i, Py_BuildValue("{s:K,s:K}", "nspans", (unsigned long long)G->central[i].nspans,
                                                  "ngrow", (unsigned long long)G->central[i].ngrow));
    }
    for (uint32_t i = 0; i < G->nprocs; i++) PyList_SET_ITEM(ps, i, p_dict(&G->allp[i]));
    PyObject *heap = Py_BuildValue(
        "{s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:I}", "npages", h->npages, "grown_pages", h->grown_pages,
        "pages_inuse", h->pages_inuse, "peak_pages_inuse", h->peak_pages_inuse, "spans_inuse", h->spans_inuse,
        "large_spans", h->large_spans, "nalloc_spans", h->nalloc_spans, "nfree_spans", h->nfree_spans, "grow_events",
        h->grow_events, "ooms", h->ooms, "heap_live", (unsigned long long)atomic_load(&h->heap_live), "sweepgen",
        atomic_load(&h->sweepgen));
    return Py_BuildValue("{s:I,s:s,s:K,s:K,s:N,s:{s:N,s:N,s:N},s:N,s:N}", "nprocs", G->nprocs, "lock",
                         glock_kind_name((int)G->lock_kind), "arena_size", G->arena_size, "meta_size", G->meta_size,
                         "mheap", heap, "locks", "mheap", lock_dict(&h->lock), "typetab", lock_dict(&G->typetab.lock),
                         "mcentral", mc_locks, "central", central, "ps", ps);
}

/* ---- test and inspection hooks (bounded, one step each) ---- */

static glock_t *lock_by_index(long which)
{
    if (which == -1) return &G->mheap.lock;
    if (which == -2) return &G->typetab.lock;
    if (which >= 0 && which < NUM_SPAN_CLASSES) return &G->central[which].lock;
    PyErr_Format(PyExc_ValueError, "no lock %ld (-1 mheap, -2 typetab, 0..135 mcentral)", which);
    return NULL;
}

static PyObject *py_lock_acquire(PyObject *mod, PyObject *arg)
{
    if (need_attached()) return NULL;
    glock_t *l = lock_by_index(PyLong_AsLong(arg));
    if (!l) return NULL;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = glock_acquire(l);
    Py_END_ALLOW_THREADS
    if (rc == GLOCK_HOLDER_DIED) { PyErr_Format(GorunError, "lock %s: holder died", l->name); return NULL; }
    if (rc != GLOCK_OK) { PyErr_Format(GorunError, "lock %s: acquire failed", l->name); return NULL; }
    Py_RETURN_NONE;
}

static PyObject *py_lock_release(PyObject *mod, PyObject *arg)
{
    if (need_attached()) return NULL;
    glock_t *l = lock_by_index(PyLong_AsLong(arg));
    if (!l) return NULL;
    glock_release(l);
    Py_RETURN_NONE;
}

static PyObject *py_lock_stats(PyObject *mod, PyObject *arg)
{
    if (need_attached()) return NULL;
    glock_t *l = lock_by_index(PyLong_AsLong(arg));
    return l ? lock_dict(l) : NULL;
}

static PyObject *py_lock_hammer(PyObject *mod, PyObject *args)
{
    long which, n;
    if (!PyArg_ParseTuple(args, "ll", &which, &n)) return NULL;
    if (need_attached()) return NULL;
    glock_t *l = lock_by_index(which);
    if (!l) return NULL;
    int rc = GLOCK_OK;
    Py_BEGIN_ALLOW_THREADS
    for (long i = 0; i < n; i++) {
        rc = glock_acquire(l);
        if (rc != GLOCK_OK) break;
        G->test_counter++;
        glock_release(l);
    }
    Py_END_ALLOW_THREADS
    if (rc != GLOCK_OK) { PyErr_Format(GorunError, "lock %s: acquire failed (%d)", l->name, rc); return NULL; }
    Py_RETURN_NONE;
}

static PyObject *py_test_counter(PyObject *mod, PyObject *unused)
{
    if (need_attached()) return NULL;
    return PyLong_FromUnsignedLongLong(G->test_counter);
}

static PyObject *py_pages_alloc(PyObject *mod, PyObject *arg)
{
    if (need_attached()) return NULL;
    unsigned long long n = PyLong_AsUnsignedLongLong(arg);
    if (PyErr_Occurred()) return NULL;
    lock(&G->mheap.lock);
    uint64_t p = pagealloc_alloc(n);
    if (!p && pagealloc_grow(n) == 0) p = pagealloc_alloc(n);
    unlock(&G->mheap.lock);
    return PyLong_FromUnsignedLongLong(p);
}

static PyObject *py_pages_free(PyObject *mod, PyObject *args)
{
    unsigned long long page, n;
    if (!PyArg_ParseTuple(args, "KK", &page, &n)) return NULL;
    if (need_attached()) return NULL;
    if (page == 0 || n == 0 || n > G->mheap.grown_pages || page > G->mheap.grown_pages - n) {
        PyErr_SetString(PyExc_ValueError, "page range outside the heap");
        return NULL;
    }
    lock(&G->mheap.lock);
    pagealloc_free(page, n);
    unlock(&G->mheap.lock);
    Py_RETURN_NONE;
}

static PyObject *py_pages_check(PyObject *mod, PyObject *unused)
{
    if (need_attached()) return NULL;
    char err[256] = "";
    lock(&G->mheap.lock);
    uint64_t f = pagealloc_check(err, sizeof err);
    uint64_t grown = G->mheap.grown_pages;
    unlock(&G->mheap.lock);
    if (f == (uint64_t)-1) { PyErr_Format(GorunError, "page allocator invalid: %s", err); return NULL; }
    return Py_BuildValue("(KK)", f, grown);
}

static PyObject *py_span_of(PyObject *mod, PyObject *arg)
{
    if (need_attached()) return NULL;
    unsigned long long a = PyLong_AsUnsignedLongLong(arg);
    if (PyErr_Occurred()) return NULL;
    spanid_t id = spanof_addr(a);
    if (!id) Py_RETURN_NONE;
    mspan_t *s = spanof_id(id);
    return Py_BuildValue("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "start", s->startpage, "npages", s->npages, "elemsize",
                         s->elemsize, "nelems", (unsigned)s->nelems, "spanclass", (unsigned)s->spanclass, "allocCount",
                         (unsigned)s->allocCount, "freeindex", (unsigned)s->freeindex, "state",
                         (unsigned)atomic_load(&s->state), "sweepgen", atomic_load(&s->sweepgen));
}

static PyObject *py_read_word(PyObject *mod, PyObject *arg)
{
    if (need_attached()) return NULL;
    unsigned long long a = PyLong_AsUnsignedLongLong(arg);
    if (PyErr_Occurred()) return NULL;
    if (a % 8 || a + 8 > G->arena_size) { PyErr_SetString(PyExc_ValueError, "unaligned or out-of-range address"); return NULL; }
    return PyLong_FromUnsignedLongLong(*obj_word(a));
}

/* name -> value tables for constants(): Python takes every number it shares with C from here. */
typedef struct {
    const char *name;
    long long value;
} named_t;

static const named_t field_kinds[] = {{"ptr", FK_PTR}, {"int", FK_INT}, {"float", FK_FLOAT}, {"bytes", FK_BYTES}, {NULL, 0}};
static const named_t type_kinds[] = {{"struct", TK_STRUCT}, {"array", TK_ARRAY}, {"bytes", TK_BYTES}, {NULL, 0}};
static const named_t type_ids[] = {{"bytes", TID_BYTES},         {"int_array", TID_INT_ARRAY},
                                   {"float_array", TID_FLOAT_ARRAY}, {"ptr_array", TID_PTR_ARRAY},
                                   {"first_user", TID_FIRST_USER}, {NULL, 0}};
static const named_t debug_flags[] = {{"mcachebypass", DBG_MCACHEBYPASS}, {"checkmark", DBG_CHECKMARK}, {NULL, 0}};
static const named_t lock_ranks[] = {{"leaf", RANK_LEAF},       {"mcentral", RANK_MCENTRAL}, {"mheap", RANK_MHEAP},
                                     {"typetab", RANK_TYPETAB}, {"workbuf", RANK_WORKBUF},   {NULL, 0}};

static PyObject *named_dict(const named_t *t)
{
    PyObject *d = PyDict_New();
    for (; d && t->name; t++) {
        PyObject *v = PyLong_FromLongLong(t->value);
        if (!v || PyDict_SetItemString(d, t->name, v) < 0) {
            Py_XDECREF(v);
            Py_DECREF(d);
            return NULL;
        }
        Py_DECREF(v);
    }
    return d;
}

static PyObject *lock_kind_names(void)
{
    PyObject *t = PyTuple_New(LOCK_NKINDS);
    for (int i = 0; t && i < LOCK_NKINDS; i++) {
        PyObject *s = PyUnicode_FromString(glock_kind_name(i));
        if (!s) { Py_DECREF(t); return NULL; }
        PyTuple_SET_ITEM(t, i, s);
    }
    return t;
}

static PyObject *py_constants(PyObject *mod, PyObject *unused)
{
    return Py_BuildValue(
        "{s:i,s:K,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:N,"
        "s:K,s:K,s:K,s:K,s:K,s:i,s:N,s:N,s:N,s:N,s:N,s:N}",
        "abi_version", GORUN_ABI_VERSION, "page_size", (unsigned long long)PAGE_SIZE, "num_size_classes",
        NUM_SIZE_CLASSES, "max_small_size", MAX_SMALL_SIZE, "obj_header_size", OBJ_HEADER_SIZE, "tiny_size", TINY_SIZE,
        "max_procs", MAX_PROCS, "max_types", MAX_TYPES, "max_struct_words", MAX_STRUCT_WORDS, "debug", GORUN_DEBUG,
        "sanitize", GORUN_SANITIZE,
        "cycle_fields", cyclerec_field_names(), "min_heap", MIN_HEAP_BYTES, "max_heap", MAX_HEAP_BYTES,
        "max_object_payload", MAX_OBJECT_PAYLOAD, "max_root_slots", MAX_ROOT_SLOTS, "max_globals", MAX_GLOBALS,
        "max_mark_threads", MAX_MARK_THREADS, "field_kinds", named_dict(field_kinds), "type_kinds",
        named_dict(type_kinds), "type_ids", named_dict(type_ids), "debug_flags", named_dict(debug_flags),
        "lock_kinds", lock_kind_names(), "lock_ranks", named_dict(lock_ranks));
}

#if GORUN_DEBUG
/* ---- debug-build test hooks for the validity walkers (mcheck.c); tests/test_mcheck.py ---- */

static int spc_arg(long spc)
{
    if (spc < 0 || spc >= NUM_SPAN_CLASSES || spanclass_sizeclass((uint8_t)spc) == 0) {
        PyErr_Format(PyExc_ValueError, "span class %ld is not a small span class", spc);
        return -1;
    }
    return 0;
}

/* debug_spans_new(spc, nalloc, count): take `count` spans of class spc from its mcentral at
 * once (as refills do), allocate nalloc slots in each (as an mcache does) and hand them back in
 * order (as uncaches do), so they end on the swept partial or full list, the last one at the
 * head. Returns their ids. No P is needed. */
static PyObject *py_debug_spans_new(PyObject *mod, PyObject *args)
{
    long spc, nalloc, count;
    if (!PyArg_ParseTuple(args, "lll", &spc, &nalloc, &count)) return NULL;
    if (need_attached() || spc_arg(spc)) return NULL;
    if (count < 1 || count > 64) { PyErr_SetString(PyExc_ValueError, "count must be 1..64"); return NULL; }
    mcentral_t *c = &G->central[spc];
    spanid_t ids[64];
    long n = 0;
    for (; n < count; n++) {
        ids[n] = mcentral_cache_span(c, (uint8_t)spc);
        if (!ids[n]) break;
        for (long i = 0; i < nalloc && span_next_free(spanof_id(ids[n])) >= 0; i++)
            ;
    }
    for (long i = 0; i < n; i++) mcentral_uncache_span(c, ids[i]);
    if (n < count) { PyErr_SetString(GorunError, "out of memory"); return NULL; }
    PyObject *r = PyList_New(n);
    if (!r) return NULL;
    for (long i = 0; i < n; i++) PyList_SET_ITEM(r, i, PyLong_FromUnsignedLong(ids[i]));
    return r;
}

/* debug_poke(what, index, value): overwrite one field of shared state, for the tests that show
 * a walker catches a corruption; returns the old value. */
static PyObject *py_debug_poke(PyObject *mod, PyObject *args)
{
    const char *what;
    unsigned long long index, v, old;
    if (!PyArg_ParseTuple(args, "sKK", &what, &index, &v)) return NULL;
    if (need_attached()) return NULL;
    if (strncmp(what, "span.", 5) == 0 || strcmp(what, "pagemap") == 0) {
        if (index == 0 || index >= G->mheap.npages) { PyErr_SetString(PyExc_ValueError, "span / page outside the heap"); return NULL; }
    } else if (strncmp(what, "mcentral.", 9) == 0 && index >= NUM_SPAN_CLASSES) {
        PyErr_SetString(PyExc_ValueError, "no such span class");
        return NULL;
    }
    mspan_t *s = spanof_id((spanid_t)index);
    mcentral_t *c = &G->central[index % NUM_SPAN_CLASSES];
#define POKE(field, type) do { old = (unsigned long long)(field); (field) = (type)v; } while (0)
    if (!strcmp(what, "span.list")) POKE(s->list, uint8_t);
    else if (!strcmp(what, "span.next")) POKE(s->next, spanid_t);
    else if (!strcmp(what, "span.prev")) POKE(s->prev, spanid_t);
    else if (!strcmp(what, "span.allocCount")) POKE(s->allocCount, uint16_t);
    else if (!strcmp(what, "span.freeindex")) POKE(s->freeindex, uint16_t);
    else if (!strcmp(what, "span.spanclass")) POKE(s->spanclass, uint8_t);
    else if (!strcmp(what, "span.sweepgen")) { old = atomic_exchange(&s->sweepgen, (uint32_t)v); }
    else if (!strcmp(what, "span.state")) { old = atomic_exchange(&s->state, (uint8_t)v); }
    else if (!strcmp(what, "pagemap")) { old = atomic_exchange(&pagemap()[index], (uint32_t)v); }
    else if (!strcmp(what, "mheap.pages_inuse")) POKE(G->mheap.pages_inuse, uint64_t);
    else if (!strcmp(what, "mheap.spans_inuse")) POKE(G->mheap.spans_inuse, uint64_t);
    else if (!strcmp(what, "mcentral.nspans")) POKE(c->nspans, uint64_t);
    else { PyErr_Format(PyExc_ValueError, "debug_poke: unknown field %s", what); return NULL; }
#undef POKE
    return PyLong_FromUnsignedLongLong(old);
}

/* debug_check(what, arg): run one walker now: "span" (arg = span id), "mcentral" (arg = span
 * class, under its lock; returns the spans on its lists) or "heap" (the full walk, as at
 * mark termination with GORUN_DEBUG=2; no P may hold a cached span). A broken invariant ends
 * the process with exit status 3 (gorun_throw). */
static PyObject *py_debug_check(PyObject *mod, PyObject *args)
{
    const char *what;
    long arg = 0;
    if (!PyArg_ParseTuple(args, "s|l", &what, &arg)) return NULL;
    if (need_attached()) return NULL;
    if (!strcmp(what, "span")) {
        mspan_check((spanid_t)arg, "debug_check");
        Py_RETURN_NONE;
    }
    if (!strcmp(what, "mcentral")) {
        if (arg < 0 || arg >= NUM_SPAN_CLASSES) { PyErr_SetString(PyExc_ValueError, "no such span class"); return NULL; }
        mcentral_t *c = &G->central[arg];
        lock(&c->lock);
        uint64_t n = mcentral_check(c, "debug_check");
        unlock(&c->lock);
        return PyLong_FromUnsignedLongLong(n);
    }
    if (!strcmp(what, "heap")) {
        mheap_check(1, "debug_check");
        Py_RETURN_NONE;
    }
    PyErr_Format(PyExc_ValueError, "debug_check: unknown walker %s (span, mcentral, heap)", what);
    return NULL;
}

static PyMethodDef debug_methods[] = {
    {"debug_spans_new", py_debug_spans_new, METH_VARARGS, "debug build: debug_spans_new(spc, nalloc, count) -> span ids, on a swept list"},
    {"debug_poke", py_debug_poke, METH_VARARGS, "debug build: debug_poke(field, index, value) -> old value"},
    {"debug_check", py_debug_check, METH_VARARGS, "debug build: debug_check('span'|'mcentral'|'heap', arg)"},
    {NULL},
};
#endif

static PyMethodDef methods[] = {
    {"meta_size", py_meta_size, METH_VARARGS, "meta_size(arena_bytes, nprocs, root_slots, nglobals)"},
    {"init", py_init, METH_VARARGS, "init(meta_fd, meta_size, arena_fd, arena_size, nprocs, lock_kind, root_slots, nglobals, debug_flags)"},
    {"attach", py_attach, METH_VARARGS, "attach(meta_fd, meta_size, arena_fd, arena_size)"},
    {"detach", py_detach, METH_NOARGS, "unmap the heap from this process"},
    {"attached", py_attached, METH_NOARGS, "whether a heap is mapped"},
    {"child_of", py_child_of, METH_O, "child_of(launcher_pid): set PR_SET_PDEATHSIG; exit if the parent is not launcher_pid"},
    {"meta_reserved", py_meta_reserved, METH_VARARGS, "meta_reserved(arena_size, nprocs, root_slots, nglobals): metadata bytes reserved at init"},
    {"set_p", py_set_p, METH_O, "become P id (in a worker)"},
    {"p_done", py_p_done, METH_NOARGS, "flush the mcache and mark this P done"},
    {"register_type", py_register_type, METH_VARARGS, "register a type; returns its id"},
    {"type_info", py_type_info, METH_O, "the type table entry of a type id"},
    {"bind_class", py_bind_class, METH_VARARGS, "bind_class(tid, cls)"},
    {"set_resolver", py_set_resolver, METH_O, "set_resolver(fn): fn(tid) binds a class for an unknown type"},
    {"new", py_new, METH_O, "new(cls): allocate a zeroed struct object"},
    {"new_bytes", py_new_bytes, METH_O, "new_bytes(n | data): allocate a noscan byte buffer"},
    {"new_array", (PyCFunction)(void (*)(void))py_new_array, METH_FASTCALL, "new_array(tid, n)"},
    {"global_get", py_global_get, METH_O, "global_get(i)"},
    {"global_set", (PyCFunction)(void (*)(void))py_global_set, METH_FASTCALL, "global_set(i, handle_or_None)"},
    {"safepoint", py_safepoint, METH_NOARGS, "poll for GC requests"},
    {"preempt_init", py_preempt_init, METH_NOARGS, "worker: SIGURG makes it poll at the next bytecode boundary"},
    {"stats", py_stats, METH_NOARGS, "a snapshot of every shared counter"},
    {"lock_acquire", py_lock_acquire, METH_O, "test hook: acquire lock (-1 mheap, -2 typetab, 0..135 mcentral)"},
    {"lock_release", py_lock_release, METH_O, "test hook: release lock"},
    {"lock_stats", py_lock_stats, METH_O, "statistics of one lock"},
    {"lock_hammer", py_lock_hammer, METH_VARARGS, "lock_hammer(which, n): n x (lock; test_counter++; unlock)"},
    {"test_counter", py_test_counter, METH_NOARGS, "the shared test counter"},
    {"pages_alloc", py_pages_alloc, METH_O, "test hook: allocate n pages (0 if none)"},
    {"pages_free", py_pages_free, METH_VARARGS, "test hook: free pages"},
    {"pages_check", py_pages_check, METH_NOARGS, "validity walker of the page allocator: (free_pages, grown_pages)"},
    {"span_of", py_span_of, METH_O, "the span holding an address, as a dict (None if none)"},
    {"read_word", py_read_word, METH_O, "the 8-byte word at an arena address"},
    {"constants", py_constants, METH_NOARGS, "the C core's constants (the version handshake)"},
    {NULL},
};

extern PyMethodDef gc_methods[], watch_methods[], testhook_methods[];

static struct PyModuleDef moddef = {PyModuleDef_HEAD_INIT, "gorun._gorun", "gorun's C core", -1, methods};

static void atfork_child(void) { gorun_ospid = (int32_t)getpid(); }

PyMODINIT_FUNC PyInit__gorun(void); /* the module's one exported symbol */
PyMODINIT_FUNC PyInit__gorun(void)
{
    pthread_atfork(NULL, NULL, atfork_child); /* lock owner pids must be the child's own */
    PyObject *m = PyModule_Create(&moddef);
    if (!m) return NULL;
    GorunError = PyErr_NewException("gorun.GorunError", PyExc_RuntimeError, NULL);
    OutOfMemoryError = PyErr_NewException("gorun.OutOfMemory", PyExc_MemoryError, NULL);
    if (PyModule_AddFunctions(m, gc_methods) < 0 || PyModule_AddFunctions(m, watch_methods) < 0 ||
        PyModule_AddFunctions(m, testhook_methods) < 0)
        return NULL;
#if GORUN_DEBUG
    if (PyModule_AddFunctions(m, debug_methods) < 0) return NULL;
#endif
    if (PyModule_AddObjectRef(m, "GorunError", GorunError) < 0 ||
        PyModule_AddObjectRef(m, "OutOfMemory", OutOfMemoryError) < 0 || handle_types_ready(m) < 0 ||
        PyModule_AddIntConstant(m, "ABI_VERSION", GORUN_ABI_VERSION) < 0)
        return NULL;
    return m;
}
