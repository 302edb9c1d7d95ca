/* testhooks.c: hooks that exist only for the tests and benchmarks: drive a lock, the page
 * allocator or the barrier by hand, read a span or a word, inject a fault into a real run
 * (test_spin), and in a debug build corrupt shared state and run a validity walker (debug_*).
 * Nothing in gorun itself calls them. Each only converts its arguments and calls the runtime. */
#include "gorun_py.h"

#include <string.h>

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
    if (rc == GLOCK_HOLDER_DIED) {
        PyErr_Format(GorunError, "lock %s: holder died", l->name);
        return NULL;
    }
    if (rc != GLOCK_OK) {
        PyErr_Format(GorunError, "lock %s: acquire failed", l->name);
        return NULL;
    }
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

/* trace_hammer(ring, n): as ring `ring`'s writer, n times what mcache_refill adds with --trace
 * (two clock reads and one duration event), draining the rings as the launcher does every 4096
 * events; returns the elapsed ns. Without --trace the same loop measures the hooks' branch. */
static PyObject *py_trace_hammer(PyObject *mod, PyObject *args)
{
    long ring, n;
    if (!PyArg_ParseTuple(args, "ll", &ring, &n)) return NULL;
    if (need_attached()) return NULL;
    static uint8_t buf[4096 * 24];
    uint64_t t0 = nanotime();
    trace_set_ring((int)ring);
    for (long i = 0; i < n; i++) {
        uint64_t a = gorun_trace_on ? nanotime() : 0;
        if (gorun_trace_on) trace_emit_dur(EV_REFILL, a, nanotime(), (uint64_t)i & 0xff);
        if ((i & 4095) == 4095 && G->trace_nrings) trace_drain(buf, 4096, 0);
    }
    trace_set_ring(-1);
    return PyLong_FromUnsignedLongLong(nanotime() - t0);
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
    if (rc != GLOCK_OK) {
        PyErr_Format(GorunError, "lock %s: acquire failed (%d)", l->name, rc);
        return NULL;
    }
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
    return PyLong_FromUnsignedLongLong(mheap_alloc_pages(n));
}

static PyObject *py_pages_free(PyObject *mod, PyObject *args)
{
    unsigned long long page, n;
    if (!PyArg_ParseTuple(args, "KK", &page, &n)) return NULL;
    if (need_attached()) return NULL;
    uint64_t grown = RELAXED_LOAD(G->mheap.grown_pages);
    if (page == 0 || n == 0 || n > grown || page > grown - n) {
        PyErr_SetString(PyExc_ValueError, "page range outside the heap");
        return NULL;
    }
    mheap_free_pages(page, n);
    Py_RETURN_NONE;
}

static PyObject *py_pages_check(PyObject *mod, PyObject *unused)
{
    if (need_attached()) return NULL;
    char err[256] = "";
    uint64_t grown;
    uint64_t f = mheap_check_pages(err, sizeof err, &grown);
    if (f == (uint64_t)-1) {
        PyErr_Format(GorunError, "page allocator invalid: %s", err);
        return NULL;
    }
    return Py_BuildValue("(KK)", f, grown);
}

/* pages_scavenged(): bytes, one per grown page (1 = its scavenged bit is set). */
static PyObject *py_pages_scavenged(PyObject *mod, PyObject *unused)
{
    if (need_attached()) return NULL;
    uint8_t *buf = PyMem_Malloc(G->mheap.npages);
    if (!buf) return PyErr_NoMemory();
    uint64_t grown = mheap_scavenged_pages(buf);
    PyObject *r = PyBytes_FromStringAndSize((const char *)buf, (Py_ssize_t)grown);
    PyMem_Free(buf);
    return r;
}

static PyObject *py_span_of(PyObject *mod, PyObject *arg)
{
    if (need_attached()) return NULL;
    unsigned long long a = PyLong_AsUnsignedLongLong(arg);
    if (PyErr_Occurred()) return NULL;
    spanid_t id = spanof_addr(a);
    if (!id) Py_RETURN_NONE;
    mspan_t *s = spanof_id(id);
    return Py_BuildValue("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "start", s->startpage, "npages", s->npages,
                         "elemsize", s->elemsize, "nelems", (unsigned)s->nelems, "spanclass", (unsigned)s->spanclass,
                         "allocCount", (unsigned)s->allocCount, "freeindex", (unsigned)s->freeindex, "state",
                         (unsigned)atomic_load(&s->state), "sweepgen", atomic_load(&s->sweepgen));
}

static PyObject *py_read_word(PyObject *mod, PyObject *arg)
{
    if (need_attached()) return NULL;
    unsigned long long a = PyLong_AsUnsignedLongLong(arg);
    if (PyErr_Occurred()) return NULL;
    if (a % 8 || a + 8 > G->arena_size) {
        PyErr_SetString(PyExc_ValueError, "unaligned or out-of-range address");
        return NULL;
    }
    return PyLong_FromUnsignedLongLong(*obj_word(a));
}

/* Benchmarks only, in a heap with no GC process: turn the write barrier on or off so the cost of
 * a barriered store (log append, self-flush when full) can be measured in isolation. */
static PyObject *py_debug_set_barrier(PyObject *m, PyObject *arg)
{
    if (need_attached()) return NULL;
    if (G->gc.gc_ospid) return PyErr_Format(GorunError, "debug_set_barrier: a GC process is running");
    int on = PyObject_IsTrue(arg);
    if (on < 0) return NULL;
    atomic_store(&G->gc.wb_enabled, (uint32_t)on);
    Py_RETURN_NONE;
}

/* Tests only, in a heap with no GC process: set or clear `blacken` (assists run while it is set),
 * so a P of a standalone heap can go through gc_assist without a cycle. */
static PyObject *py_debug_set_blacken(PyObject *m, PyObject *arg)
{
    if (need_attached()) return NULL;
    if (G->gc.gc_ospid) return PyErr_Format(GorunError, "debug_set_blacken: a GC process is running");
    int on = PyObject_IsTrue(arg);
    if (on < 0) return NULL;
    atomic_store(&G->gc.blacken, (uint32_t)on);
    Py_RETURN_NONE;
}

/* assist_goal(goal, scan_expected, triggered, gc_percent, heap_live, scan_done) -> (goal,
 * scan_expected): the assists' goal extension (gc_assist_goal) on the given figures. */
static PyObject *py_assist_goal(PyObject *m, PyObject *args)
{
    unsigned long long goal, expected, triggered, live, done;
    long long pct;
    if (!PyArg_ParseTuple(args, "KKKLKK", &goal, &expected, &triggered, &pct, &live, &done)) return NULL;
    assist_goal_t g = gc_assist_goal(goal, expected, triggered, pct, live, done);
    return Py_BuildValue("(KK)", (unsigned long long)g.goal, (unsigned long long)g.scan_expected);
}

/* test_spin(seconds): spin in C for `seconds` without polling for safepoints, marked as "in a
 * runtime call" (RC_TEST_SPIN), like an endless runtime call would. The GIL is released, so
 * even the SIGURG handler cannot run until it returns: the P reaches no safepoint meanwhile. */
static PyObject *py_test_spin(PyObject *m, PyObject *arg)
{
    double s = PyFloat_AsDouble(arg);
    if (s == -1.0 && PyErr_Occurred()) return NULL;
    if (!(s >= 0 && s < 3600)) return PyErr_Format(PyExc_ValueError, "test_spin: seconds in [0, 3600)");
    if (ensure_p()) return NULL;
    Py_BEGIN_ALLOW_THREADS
        uint64_t t0 = nanotime(), end = t0 + (uint64_t)(s * 1e9);
        int in = rcall_enter(RC_TEST_SPIN, t0);
        while (nanotime() < end)
            for (int i = 0; i < 1000; i++) __asm__ __volatile__("" ::: "memory");
        rcall_exit(in);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

PyMethodDef testhook_methods[] = {
    {"lock_acquire", py_lock_acquire, METH_O, "test hook: acquire lock (-1 mheap, -2 typetab, 0..135 mcentral)"},
    {"lock_release", py_lock_release, METH_O, "test hook: release lock"},
    {"lock_stats", py_lock_stats, METH_O, "statistics of one lock"},
    {"trace_hammer", py_trace_hammer, METH_VARARGS, "trace_hammer(ring, n): n refill-like events; elapsed ns"},
    {"lock_hammer", py_lock_hammer, METH_VARARGS, "lock_hammer(which, n): n x (lock; test_counter++; unlock)"},
    {"test_counter", py_test_counter, METH_NOARGS, "the shared test counter"},
    {"pages_alloc", py_pages_alloc, METH_O, "test hook: allocate n pages (0 if none)"},
    {"pages_free", py_pages_free, METH_VARARGS, "test hook: free pages"},
    {"pages_check", py_pages_check, METH_NOARGS, "validity walker of the page allocator: (free_pages, grown_pages)"},
    {"pages_scavenged", py_pages_scavenged, METH_NOARGS, "test hook: one byte per grown page, 1 = scavenged"},
    {"span_of", py_span_of, METH_O, "the span holding an address, as a dict (None if none)"},
    {"read_word", py_read_word, METH_O, "the 8-byte word at an arena address"},
    {"debug_set_barrier", py_debug_set_barrier, METH_O, "benchmarks: barrier on/off in a heap without a GC process"},
    {"debug_set_blacken", py_debug_set_blacken, METH_O, "tests: blacken on/off in a heap without a GC process"},
    {"assist_goal", py_assist_goal, METH_VARARGS,
     "assist_goal(goal, scan_expected, triggered, gc_percent, heap_live, scan_done) -> (goal, scan_expected)"},
    {"test_spin", py_test_spin, METH_O, "test hook: spin N seconds in C without polling, as an endless runtime call"},
    {NULL},
};

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
    if (count < 1 || count > 64) {
        PyErr_SetString(PyExc_ValueError, "count must be 1..64");
        return NULL;
    }
    mcentral_t *c = &G->central[spc];
    spanid_t ids[64];
    long n = 0;
    for (; n < count; n++) {
        ids[n] = mcentral_cache_span(c, (uint8_t)spc);
        if (!ids[n]) break;
        for (long i = 0; i < nalloc && span_next_free(spanof_id(ids[n])) >= 0; i++);
    }
    for (long i = 0; i < n; i++) mcentral_uncache_span(c, ids[i]);
    if (n < count) {
        PyErr_SetString(GorunError, "out of memory");
        return NULL;
    }
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
        if (index == 0 || index >= G->mheap.npages) {
            PyErr_SetString(PyExc_ValueError, "span / page outside the heap");
            return NULL;
        }
    } else if (strncmp(what, "mcentral.", 9) == 0 && index >= NUM_SPAN_CLASSES) {
        PyErr_SetString(PyExc_ValueError, "no such span class");
        return NULL;
    }
    mspan_t *s = spanof_id((spanid_t)index);
    mcentral_t *c = &G->central[index % NUM_SPAN_CLASSES];
#define POKE(field, type)                  \
    do {                                   \
        old = (unsigned long long)(field); \
        (field) = (type)v;                 \
    } while (0)
    if (!strcmp(what, "span.list"))
        POKE(s->list, uint8_t);
    else if (!strcmp(what, "span.next"))
        POKE(s->next, spanid_t);
    else if (!strcmp(what, "span.prev"))
        POKE(s->prev, spanid_t);
    else if (!strcmp(what, "span.allocCount"))
        POKE(s->allocCount, uint16_t);
    else if (!strcmp(what, "span.freeindex"))
        POKE(s->freeindex, uint16_t);
    else if (!strcmp(what, "span.spanclass"))
        POKE(s->spanclass, uint8_t);
    else if (!strcmp(what, "span.sweepgen")) {
        old = atomic_exchange(&s->sweepgen, (uint32_t)v);
    } else if (!strcmp(what, "span.state")) {
        old = atomic_exchange(&s->state, (uint8_t)v);
    } else if (!strcmp(what, "pagemap")) {
        old = atomic_exchange(&pagemap()[index], (uint32_t)v);
    } else if (!strcmp(what, "mheap.pages_inuse"))
        POKE(G->mheap.pages_inuse, uint64_t);
    else if (!strcmp(what, "mheap.spans_inuse"))
        POKE(G->mheap.spans_inuse, uint64_t);
    else if (!strcmp(what, "mcentral.nspans"))
        POKE(c->nspans, uint64_t);
    else {
        PyErr_Format(PyExc_ValueError, "debug_poke: unknown field %s", what);
        return NULL;
    }
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
        if (arg < 0 || arg >= NUM_SPAN_CLASSES) {
            PyErr_SetString(PyExc_ValueError, "no such span class");
            return NULL;
        }
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

PyMethodDef debug_methods[] = {
    {"debug_spans_new", py_debug_spans_new, METH_VARARGS,
     "debug build: debug_spans_new(spc, nalloc, count) -> span ids, on a swept list"},
    {"debug_poke", py_debug_poke, METH_VARARGS, "debug build: debug_poke(field, index, value) -> old value"},
    {"debug_check", py_debug_check, METH_VARARGS, "debug build: debug_check('span'|'mcentral'|'heap', arg)"},
    {NULL},
};
#endif
