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

int need_attached(void)
{
    if (!G) {
        PyErr_SetString(GorunError, "no gorun heap is attached in this process");
        return -1;
    }
    return 0;
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
    if (G) {
        PyErr_SetString(GorunError, "a heap is already attached in this process");
        return NULL;
    }
    if (lock_kind < 0 || lock_kind >= LOCK_NKINDS) {
        PyErr_Format(PyExc_ValueError, "bad lock kind %d", lock_kind);
        return NULL;
    }
    if ((errno = heap_map(mfd, msize, afd, asize)) != 0) return PyErr_SetFromErrno(PyExc_OSError);
    int rc =
        gorun_init_shared(heap_meta_map(), msize, heap_arena_map(), asize, nprocs, lock_kind, roots, nglobals, dbg);
    if (rc != 0) {
        int e = errno;
        uint64_t free = gorun_shm_free();
        heap_unmap();
        if (rc == INIT_RESERVE_FAILED && e == ENOSPC) {
            char msg[256]; /* PyErr_Format has no %f */
            snprintf(msg, sizeof msg,
                     "out of memory: cannot reserve %.1f MiB of shared memory for the run's metadata: "
                     "/dev/shm has %.1f MiB free (enlarge /dev/shm, or lower --procs or --max-heap)",
                     (double)gorun_meta_reserved(asize, nprocs, roots, nglobals) / (1 << 20), (double)free / (1 << 20));
            PyErr_SetString(OutOfMemoryError, msg);
        } else if (rc == INIT_RESERVE_FAILED)
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
    if (G) {
        PyErr_SetString(GorunError, "a heap is already attached in this process");
        return NULL;
    }
    if ((errno = heap_map(mfd, msize, afd, asize)) != 0) return PyErr_SetFromErrno(PyExc_OSError);
    const gorun_shared_t *g = heap_meta_map();
    if (!heap_layout_matches(g)) {
        char hex[24]; /* PyErr_Format has no %llx */
        snprintf(hex, sizeof hex, "%llx", (unsigned long long)g->magic);
        PyErr_Format(GorunError, "segment is not a gorun heap of ABI %d, layout %08x (magic %s, abi %u, layout %08x)",
                     GORUN_ABI_VERSION, (unsigned)GORUN_LAYOUT_SIG, hex, g->abi_version, (unsigned)g->layout_sig);
        heap_unmap();
        return NULL;
    }
    gorun_attach_local(heap_meta_map(), heap_arena_map());
    Py_RETURN_NONE;
}

static PyObject *py_detach(PyObject *mod, PyObject *unused)
{
    if (G) heap_unmap();
    Py_RETURN_NONE;
}

/* First thing in a forked child of the launcher (gorun_child_of in os_linux.c). */
static PyObject *py_child_of(PyObject *mod, PyObject *arg)
{
    long launcher = PyLong_AsLong(arg);
    if (launcher == -1 && PyErr_Occurred()) return NULL;
    gorun_child_of((int32_t)launcher);
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
    if (id < 0 || id >= (long)G->nprocs) {
        PyErr_Format(PyExc_ValueError, "P id %ld out of range", id);
        return NULL;
    }
    p_attach((uint32_t)id);
    Py_RETURN_NONE;
}

static PyObject *py_p_done(PyObject *mod, PyObject *unused)
{
    p_finish();
    Py_RETURN_NONE;
}

static PyObject *py_register_type(PyObject *mod, PyObject *args)
{
    const char *name;
    unsigned int kind, size, elem_kind, elem_tid, has_ptrs, nwords;
    Py_buffer mask;
    if (!PyArg_ParseTuple(args, "sIIIIIIy*", &name, &kind, &size, &elem_kind, &elem_tid, &has_ptrs, &nwords, &mask))
        return NULL;
    if (need_attached()) {
        PyBuffer_Release(&mask);
        return NULL;
    }
    if (strlen(name) >= sizeof(((gotype_t *)0)->name) || nwords > MAX_STRUCT_WORDS ||
        (size_t)mask.len > sizeof(((gotype_t *)0)->ptrmask)) {
        PyErr_Format(PyExc_ValueError, "type %s: name longer than 47 bytes or more than %d words", name,
                     MAX_STRUCT_WORDS);
        PyBuffer_Release(&mask);
        return NULL;
    }
    gotype_t t;
    memset(&t, 0, sizeof t);
    strcpy(t.name, name);
    t.kind = kind;
    t.size = size;
    t.elem_kind = elem_kind;
    t.elem_tid = elem_tid;
    t.has_ptrs = has_ptrs;
    t.nwords = nwords;
    memcpy(t.ptrmask, mask.buf, (size_t)mask.len);
    PyBuffer_Release(&mask);
    uint32_t tid;
    int rc = typetab_register(&t, &tid);
    if (rc == TYPETAB_CONFLICT)
        return PyErr_Format(GorunError, "type %s is already registered with a different layout", name);
    if (rc == TYPETAB_FULL) return PyErr_Format(GorunError, "type table full (%d types)", MAX_TYPES);
    return PyLong_FromUnsignedLong(tid);
}

static PyObject *py_type_info(PyObject *mod, PyObject *arg)
{
    if (need_attached()) return NULL;
    unsigned long tid = PyLong_AsUnsignedLong(arg);
    if (PyErr_Occurred()) return NULL;
    if (tid == 0 || tid >= atomic_load(&G->typetab.ntypes)) {
        PyErr_Format(PyExc_ValueError, "no type %lu", tid);
        return NULL;
    }
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
    if (!PyType_IsSubtype((PyTypeObject *)cls, &Handle_Type)) {
        PyErr_SetString(PyExc_TypeError, "class must derive from gorun.Handle");
        return NULL;
    }
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
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "new_array(tid, n)");
        return NULL;
    }
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
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "global_set(i, handle_or_None)");
        return NULL;
    }
    if (global_index(args[0], &i)) return NULL;
    if (ensure_p()) return NULL;
    goaddr v = handle_addr_arg(args[1], &ok);
    if (!ok) return NULL;
    if (runtime_enter()) return NULL;
    writebarrier_store(&globals_base()[i], v);
    Py_RETURN_NONE;
}

/* ---- sync.Pool (pool.c) ---- */

static PyObject *py_pool_register(PyObject *mod, PyObject *arg)
{
    if (need_attached()) return NULL;
    Py_ssize_t n;
    const char *name = PyUnicode_AsUTF8AndSize(arg, &n);
    if (!name) return NULL;
    if (n == 0 || n >= (Py_ssize_t)sizeof(((poolhdr_t *)0)->name)) {
        PyErr_Format(PyExc_ValueError, "a pool's name is 1 to %d bytes, not %zd",
                     (int)sizeof(((poolhdr_t *)0)->name) - 1, n);
        return NULL;
    }
    int id = pool_register(name);
    if (id < 0) {
        PyErr_Format(GorunError, "too many pools: a run has at most %d (registering %s)", MAX_POOLS, name);
        return NULL;
    }
    return PyLong_FromLong(id);
}

static int pool_id_arg(PyObject *arg, uint32_t *id)
{
    if (ensure_p()) return -1;
    long v = PyLong_AsLong(arg);
    if (v == -1 && PyErr_Occurred()) return -1;
    if (v < 0 || v >= MAX_POOLS || atomic_load(&pool_at((uint32_t)v)->state) != POOL_READY) {
        PyErr_Format(PyExc_ValueError, "no pool %ld is registered", v);
        return -1;
    }
    *id = (uint32_t)v;
    return runtime_enter();
}

/* pool_get(id[, new, g]): on a miss, new(g) if new is not None (the Python side binds the three). */
static PyObject *py_pool_get(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    uint32_t id;
    if (nargs != 1 && nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "pool_get(id[, new, g])");
        return NULL;
    }
    if (pool_id_arg(args[0], &id)) return NULL;
    goaddr a = pool_get(id);
    if (a == 0 && nargs == 3 && args[1] != Py_None) return PyObject_CallOneArg(args[1], args[2]);
    return make_handle(a);
}

static PyObject *py_pool_put(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    uint32_t id;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "pool_put(id, handle)");
        return NULL;
    }
    if (!PyObject_TypeCheck(args[1], &Handle_Type)) {
        PyErr_Format(PyExc_TypeError,
                     "Pool.put takes a gorun handle (an object from g.new, g.new_bytes, ...), not %.100s",
                     Py_TYPE(args[1])->tp_name);
        return NULL;
    }
    if (pool_id_arg(args[0], &id)) return NULL;
    return PyBool_FromLong(pool_put(id, ((HandleObject *)args[1])->addr));
}

static PyObject *py_pool_stats(PyObject *mod, PyObject *unused)
{
    if (need_attached()) return NULL;
    PyObject *out = PyList_New(0);
    if (!out) return NULL;
    for (uint32_t i = 0; i < MAX_POOLS; i++) {
        poolhdr_t *pl = pool_at(i);
        if (atomic_load(&pl->state) != POOL_READY) continue;
        PyObject *per_p = PyList_New(G->nprocs);
        if (!per_p) goto fail;
        uint64_t held[2];
        pool_held(i, held);
        for (uint32_t p = 0; p < G->nprocs; p++) {
            poolpstats_t *s = &pool_local(pl, p)->stats;
            PyList_SET_ITEM(per_p, p,
                            Py_BuildValue("{s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K}", "gets", s->gets, "puts", s->puts,
                                          "hits_private", s->hits_private, "hits_shared", s->hits_shared, "steals",
                                          s->steals, "victim_hits", s->victim_hits, "misses", s->misses, "overflows",
                                          s->overflows));
        }
        PyObject *d = Py_BuildValue("{s:I,s:s,s:K,s:K,s:K,s:K,s:N,s:N}", "id", i, "name", pl->name, "cleanups",
                                    (unsigned long long)atomic_load(&pl->cleanups), "dropped",
                                    (unsigned long long)atomic_load(&pl->dropped), "pooled", held[0], "victim", held[1],
                                    "per_p", per_p, "lock", lock_dict(&pl->lock));
        if (!d || PyList_Append(out, d) != 0) {
            Py_XDECREF(d);
            goto fail;
        }
        Py_DECREF(d);
    }
    return out;
fail:
    Py_DECREF(out);
    return NULL;
}

static PyObject *py_preempt_init(PyObject *mod, PyObject *unused)
{
    if (preempt_init() != 0) return PyErr_SetFromErrno(PyExc_OSError);
    Py_RETURN_NONE;
}

static PyObject *py_safepoint(PyObject *mod, PyObject *unused)
{
    safepoint_poll_c();
    if (finq_run_py()) return NULL; /* due finalizers and cleanups: a safepoint outside the runtime */
    Py_RETURN_NONE;
}

/* ---- statistics ---- */

PyObject *lock_dict(glock_t *l)
{
    PyObject *hist = PyList_New(LOCK_HIST_BUCKETS);
    if (!hist) return NULL;
    for (int i = 0; i < LOCK_HIST_BUCKETS; i++) PyList_SET_ITEM(hist, i, PyLong_FromUnsignedLongLong(l->wait_hist[i]));
    double tpn = cputicks_per_ns();
    return Py_BuildValue(
        "{s:s,s:s,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:N}", "name", l->name, "kind", glock_kind_name((int)l->kind),
        "acquisitions", l->acquisitions, "contended", l->contended, "wait_ns_total", l->wait_ns_total, "wait_ns_max",
        l->wait_ns_max, "hold_ns_total", (unsigned long long)((double)l->hold_ticks_total / tpn), "hold_ns_max",
        (unsigned long long)((double)l->hold_ticks_max / tpn), "recovered", l->recovered, "wait_hist", hist);
}

static PyObject *p_dict(gp_t *p)
{
    pstats_t *s = &p->stats;
    PyObject *bc = PyList_New(NUM_SIZE_CLASSES);
    if (!bc) return NULL;
    for (int i = 0; i < NUM_SIZE_CLASSES; i++)
        PyList_SET_ITEM(bc, i, PyLong_FromUnsignedLongLong(s->nmalloc_by_class[i]));
    return Py_BuildValue("{s:I,s:i,s:I,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:N,s:K,s:K,s:K,s:K,s:K}", "id", p->id,
                         "ospid", (int)atomic_load(&p->ospid), "status", atomic_load(&p->status), "root_hwm",
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
    PyObject *mc_locks = PyList_New(NUM_SPAN_CLASSES), *central = PyList_New(NUM_SPAN_CLASSES),
             *ps = PyList_New(G->nprocs);
    if (!mc_locks || !central || !ps) return NULL;
    for (int i = 0; i < NUM_SPAN_CLASSES; i++) {
        PyList_SET_ITEM(mc_locks, i, lock_dict(&G->central[i].lock));
        PyList_SET_ITEM(central, i,
                        Py_BuildValue("{s:K,s:K}", "nspans", (unsigned long long)RELAXED_LOAD(G->central[i].nspans),
                                      "ngrow", (unsigned long long)RELAXED_LOAD(G->central[i].ngrow)));
    }
    for (uint32_t i = 0; i < G->nprocs; i++) PyList_SET_ITEM(ps, i, p_dict(&G->allp[i]));
    PyObject *heap =
        Py_BuildValue("{s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:I,s:K,s:K}", "npages", h->npages, "grown_pages",
                      RELAXED_LOAD(h->grown_pages), "pages_inuse", RELAXED_LOAD(h->pages_inuse), "peak_pages_inuse",
                      RELAXED_LOAD(h->peak_pages_inuse), "spans_inuse", RELAXED_LOAD(h->spans_inuse), "large_spans",
                      RELAXED_LOAD(h->large_spans), "nalloc_spans", RELAXED_LOAD(h->nalloc_spans), "nfree_spans",
                      RELAXED_LOAD(h->nfree_spans), "grow_events", RELAXED_LOAD(h->grow_events), "ooms",
                      RELAXED_LOAD(h->ooms), "heap_live", (unsigned long long)atomic_load(&h->heap_live), "sweepgen",
                      atomic_load(&h->sweepgen), "released_pages", (unsigned long long)RELAXED_LOAD(h->released_pages),
                      "sys_bytes", (unsigned long long)RELAXED_LOAD(h->sys_bytes));
    return Py_BuildValue("{s:I,s:s,s:K,s:K,s:N,s:{s:N,s:N,s:N,s:N,s:N},s:N,s:N,s:N}", "nprocs", G->nprocs, "lock",
                         glock_kind_name((int)G->lock_kind), "arena_size", G->arena_size, "meta_size", G->meta_size,
                         "mheap", heap, "locks", "mheap", lock_dict(&h->lock), "typetab", lock_dict(&G->typetab.lock),
                         "workbuf", lock_dict(&G->gc.work.lock), "special", lock_dict(&G->specials.lock), "mcentral",
                         mc_locks, "central", central, "ps", ps, "specials", specials_dict());
}

/* ---- test and inspection hooks (bounded, one step each) ---- */

/* name -> value tables for constants(): Python takes every number it shares with C from here. */
typedef struct {
    const char *name;
    long long value;
} named_t;

static const named_t field_kinds[] = {{"ptr", FK_PTR},         {"int", FK_INT},
                                      {"float", FK_FLOAT},     {"bytes", FK_BYTES},
                                      {"bool", FK_BOOL},       {"int8", FK_INT8},
                                      {"int16", FK_INT16},     {"int32", FK_INT32},
                                      {"uint8", FK_UINT8},     {"uint16", FK_UINT16},
                                      {"uint32", FK_UINT32},   {"uint64", FK_UINT64},
                                      {"float32", FK_FLOAT32}, {NULL, 0}};

static PyObject *field_kind_sizes(void)
{
    PyObject *d = PyDict_New();
    for (const named_t *t = field_kinds; d && t->name; t++) {
        PyObject *v = PyLong_FromUnsignedLong(fieldkind_size((int)t->value));
        if (!v || PyDict_SetItemString(d, t->name, v) < 0) {
            Py_XDECREF(v);
            Py_DECREF(d);
            return NULL;
        }
        Py_DECREF(v);
    }
    return d;
}
static const named_t type_kinds[] = {{"struct", TK_STRUCT}, {"array", TK_ARRAY}, {"bytes", TK_BYTES}, {NULL, 0}};
static const named_t type_ids[] = {
    {"bytes", TID_BYTES},         {"int_array", TID_INT_ARRAY},   {"float_array", TID_FLOAT_ARRAY},
    {"ptr_array", TID_PTR_ARRAY}, {"first_user", TID_FIRST_USER}, {NULL, 0}};
static const named_t debug_flags[] = {
    {"mcachebypass", DBG_MCACHEBYPASS}, {"checkmark", DBG_CHECKMARK}, {"trace", DBG_TRACE}, {NULL, 0}};
static const named_t trace_events[] = {
#define TRACE_EV_NAMED(name, v, doc) {#name, name},
    TRACE_EVENTS(TRACE_EV_NAMED)
#undef TRACE_EV_NAMED
        {NULL, 0}};
static const named_t trace_counter_ids[] = {{"heap_live", TC_HEAP_LIVE},
                                            {"goal", TC_GOAL},
                                            {"trigger", TC_TRIGGER},
                                            {"memory_limit", TC_MEMORY_LIMIT},
                                            {"total_memory", TC_TOTAL_MEMORY},
                                            {"gc_cpu", TC_GC_CPU},
                                            {NULL, 0}};
static const named_t trace_lock_ids[] = {{"mheap", TRACE_LOCK_MHEAP},
                                         {"typetab", TRACE_LOCK_TYPETAB},
                                         {"workbuf", TRACE_LOCK_WORKBUF},
                                         {"mcentral", TRACE_LOCK_MCENTRAL},
                                         {NULL, 0}};
static const named_t trace_limits[] = {{"ring_events", TRACE_RING_EVENTS},
                                       {"lock_ns_default", TRACE_LOCK_NS_DEFAULT},
                                       {"rcall_ns_default", TRACE_RCALL_NS_DEFAULT},
                                       {NULL, 0}};
static const named_t lock_ranks[] = {
    {"leaf", RANK_LEAF},       {"pool", RANK_POOL},       {"mcentral", RANK_MCENTRAL}, {"mheap", RANK_MHEAP},
    {"typetab", RANK_TYPETAB}, {"special", RANK_SPECIAL}, {"workbuf", RANK_WORKBUF},   {NULL, 0}};

static const named_t p_status[] = {
    {"idle", P_IDLE}, {"running", P_RUNNING}, {"syscall", P_SYSCALL}, {"gcstop", P_GCSTOP},
    {"done", P_DONE}, {"dead", P_DEAD},       {"gcscan", P_GCSCAN},   {NULL, 0}};
static const named_t poll_bits[] = {
    {"stop", POLL_STOP}, {"scanroots", POLL_SCANROOTS}, {"flushwb", POLL_FLUSHWB}, {NULL, 0}};
static const named_t pause_kinds[] = {{"sweepterm", PAUSE_SWEEPTERM}, {"markterm", PAUSE_MARKTERM}, {NULL, 0}};
static const named_t rcalls[] = {{"none", RC_NONE},
                                 {"refill", RC_REFILL},
                                 {"large", RC_LARGE},
                                 {"assist", RC_ASSIST},
                                 {"cycle_wait", RC_CYCLE_WAIT},
                                 {"gc_wait", RC_GC_WAIT},
                                 {"test_spin", RC_TEST_SPIN},
                                 {NULL, 0}};
static const named_t gc_activities[] = {
    {"starting", GCA_STARTING}, {"idle", GCA_IDLE}, {"sweep_finish", GCA_SWEEP_FINISH}, {"stopping", GCA_STOPPING},
    {"stw", GCA_STW},           {"mark", GCA_MARK}, {"handshake", GCA_HANDSHAKE},       {"sweep", GCA_SWEEP},
    {"exiting", GCA_EXITING},   {NULL, 0}};

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
        if (!s) {
            Py_DECREF(t);
            return NULL;
        }
        PyTuple_SET_ITEM(t, i, s);
    }
    return t;
}

static PyObject *py_constants(PyObject *mod, PyObject *unused)
{
    PyObject *d = Py_BuildValue(
        "{s:i,s:I,s:K,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:N,"
        "s:K,s:K,s:K,s:K,s:K,s:i,s:N,s:N,s:N,s:N,s:N,s:N,s:N,s:N,s:N,s:N,s:N,s:N,s:L,s:K,s:i,s:i}",
        "abi_version", GORUN_ABI_VERSION, "layout_sig", (unsigned)GORUN_LAYOUT_SIG, "page_size",
        (unsigned long long)PAGE_SIZE, "num_size_classes", NUM_SIZE_CLASSES, "max_small_size", MAX_SMALL_SIZE,
        "obj_header_size", OBJ_HEADER_SIZE, "tiny_size", TINY_SIZE, "tiny_max_bytes", TINY_MAX_BYTES, "max_procs",
        MAX_PROCS, "max_types", MAX_TYPES, "max_struct_words", MAX_STRUCT_WORDS, "debug", GORUN_DEBUG, "sanitize",
        GORUN_SANITIZE, "cycle_fields", cyclerec_field_names(), "min_heap", MIN_HEAP_BYTES, "max_heap", MAX_HEAP_BYTES,
        "max_object_payload", MAX_OBJECT_PAYLOAD, "max_root_slots", MAX_ROOT_SLOTS, "max_globals", MAX_GLOBALS,
        "max_mark_threads", MAX_MARK_THREADS, "field_kinds", named_dict(field_kinds), "field_kind_sizes",
        field_kind_sizes(), "type_kinds", named_dict(type_kinds), "type_ids", named_dict(type_ids), "debug_flags",
        named_dict(debug_flags), "lock_kinds", lock_kind_names(), "lock_ranks", named_dict(lock_ranks), "p_status",
        named_dict(p_status), "poll_bits", named_dict(poll_bits), "pause_kinds", named_dict(pause_kinds), "rcalls",
        named_dict(rcalls), "gc_activities", named_dict(gc_activities), "max_memory_limit", (long long)INT64_MAX,
        "scav_min_bytes", (unsigned long long)SCAV_MIN_BYTES, "max_pools", MAX_POOLS, "pool_shared_cap",
        POOL_SHARED_CAP);
    PyObject *tr = Py_BuildValue("{s:N,s:N,s:N,s:N}", "events", named_dict(trace_events), "counters",
                                 named_dict(trace_counter_ids), "locks", named_dict(trace_lock_ids), "limits",
                                 named_dict(trace_limits));
    if (!d || !tr || PyDict_SetItemString(d, "trace", tr) < 0) {
        Py_XDECREF(d);
        Py_XDECREF(tr);
        return NULL;
    }
    Py_DECREF(tr);
    return d;
}

/* ---- event rings (trace.c) ---- */

/* trace_setup(lock_ns, rcall_ns): the launcher, before forking: the thresholds. */
static PyObject *py_trace_setup(PyObject *mod, PyObject *args)
{
    unsigned long long lock_ns, rcall_ns;
    if (!PyArg_ParseTuple(args, "KK", &lock_ns, &rcall_ns)) return NULL;
    if (need_attached()) return NULL;
    G->trace_lock_ns = lock_ns;
    G->trace_rcall_ns = rcall_ns;
    Py_RETURN_NONE;
}

/* trace_drain(final) -> (bytes of 24-byte records, [lost per ring]) */
static PyObject *py_trace_drain(PyObject *mod, PyObject *arg)
{
    int final = PyObject_IsTrue(arg);
    if (final < 0 || need_attached()) return NULL;
    uint64_t cap = (uint64_t)G->trace_nrings * TRACE_RING_EVENTS;
    PyObject *buf = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(cap * 24));
    if (!buf) return NULL;
    uint64_t n = cap ? trace_drain((uint8_t *)PyBytes_AS_STRING(buf), cap, final) : 0;
    if (_PyBytes_Resize(&buf, (Py_ssize_t)(n * 24)) < 0) return NULL;
    PyObject *lost = PyList_New(G->trace_nrings);
    if (!lost) {
        Py_DECREF(buf);
        return NULL;
    }
    for (uint32_t i = 0; i < G->trace_nrings; i++)
        PyList_SET_ITEM(lost, i, PyLong_FromUnsignedLongLong(atomic_load(&tracering_at(i)->lost)));
    return Py_BuildValue("(NN)", buf, lost);
}

static PyObject *py_trace_counters(PyObject *mod, PyObject *unused)
{
    if (need_attached()) return NULL;
    trace_counters();
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"meta_size", py_meta_size, METH_VARARGS, "meta_size(arena_bytes, nprocs, root_slots, nglobals)"},
    {"init", py_init, METH_VARARGS,
     "init(meta_fd, meta_size, arena_fd, arena_size, nprocs, lock_kind, root_slots, nglobals, debug_flags)"},
    {"attach", py_attach, METH_VARARGS, "attach(meta_fd, meta_size, arena_fd, arena_size)"},
    {"detach", py_detach, METH_NOARGS, "unmap the heap from this process"},
    {"attached", py_attached, METH_NOARGS, "whether a heap is mapped"},
    {"child_of", py_child_of, METH_O,
     "child_of(launcher_pid): set PR_SET_PDEATHSIG; exit if the parent is not launcher_pid"},
    {"meta_reserved", py_meta_reserved, METH_VARARGS,
     "meta_reserved(arena_size, nprocs, root_slots, nglobals): metadata bytes reserved at init"},
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
    {"pool_register", py_pool_register, METH_O, "pool_register(name): the sync.Pool's id in this run"},
    {"pool_get", (PyCFunction)(void (*)(void))py_pool_get, METH_FASTCALL,
     "pool_get(id[, new, g]): a pooled object's handle; on a miss new(g), or None"},
    {"pool_put", (PyCFunction)(void (*)(void))py_pool_put, METH_FASTCALL,
     "pool_put(id, handle): True if pooled, False if dropped (shared ring full)"},
    {"pool_stats", py_pool_stats, METH_NOARGS, "every registered pool's counters"},
    {"global_set", (PyCFunction)(void (*)(void))py_global_set, METH_FASTCALL, "global_set(i, handle_or_None)"},
    {"safepoint", py_safepoint, METH_NOARGS, "poll for GC requests"},
    {"preempt_init", py_preempt_init, METH_NOARGS, "worker: SIGURG makes it poll at the next bytecode boundary"},
    {"stats", py_stats, METH_NOARGS, "a snapshot of every shared counter"},
    {"trace_setup", py_trace_setup, METH_VARARGS, "trace_setup(lock_ns, rcall_ns): launcher, the event thresholds"},
    {"trace_drain", py_trace_drain, METH_O, "trace_drain(final): launcher, (records, lost per ring)"},
    {"trace_counters", py_trace_counters, METH_NOARGS, "GC process: record the counters (with --trace)"},
    {"constants", py_constants, METH_NOARGS, "the C core's constants (the version handshake)"},
    {NULL},
};

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
        PyModule_AddFunctions(m, testhook_methods) < 0 || PyModule_AddFunctions(m, mfinal_methods) < 0)
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
