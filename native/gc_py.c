/* gc_py.c: the CPython bindings of the GC: the GC process's bounded steps (gorun/gc.py decides
 * when), the workers' g.gc() and blocking calls, and the pause and cycle records the launcher
 * reads. Overview: docs/design.md "The GC cycle" and "Python and C". */
#include "gorun_py.h"

#include <stddef.h>
#include <string.h>
#include <unistd.h>

static PyObject *worker_died(int dead)
{
    gp_t *p = &G->allp[dead];
    return PyErr_Format(GorunError, "worker P%d (pid %d) died while the GC waited for it", dead,
                        (int)atomic_load(&p->ospid));
}

static PyObject *py_gc_setup(PyObject *m, PyObject *arg)
{
    if (need_attached()) return NULL;
    long n = PyLong_AsLong(arg);
    if (n == -1 && PyErr_Occurred()) return NULL;
    gorun_ospid = (int32_t)getpid(); /* this is a forked child: the cached pid is the launcher's */
    atomic_store(&G->gc.gc_ospid, gorun_ospid);
    trace_set_ring((int)G->nprocs);
    gc_activity(GCA_IDLE, 0, 0);
    if (gc_start_mark_threads((int)n) != 0) return PyErr_SetFromErrno(PyExc_OSError);
    Py_RETURN_NONE;
}

/* Launcher, right after forking the GC process and before forking any worker, so no worker
 * ever sees 0 (no GC process) in a run that has one. */
static PyObject *py_gc_set_pid(PyObject *m, PyObject *arg)
{
    if (need_attached()) return NULL;
    long pid = PyLong_AsLong(arg);
    if (pid == -1 && PyErr_Occurred()) return NULL;
    atomic_store(&G->gc.gc_ospid, (int32_t)pid);
    Py_RETURN_NONE;
}

static PyObject *py_gc_teardown(PyObject *m, PyObject *unused)
{
    if (need_attached()) return NULL;
    gc_activity(GCA_EXITING, 0, 0);
    Py_BEGIN_ALLOW_THREADS
        gc_stop_mark_threads();
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

static PyObject *py_gc_wait(PyObject *m, PyObject *args)
{
    unsigned int seen;
    double timeout;
    if (!PyArg_ParseTuple(args, "Id", &seen, &timeout)) return NULL;
    if (need_attached()) return NULL;
    Py_BEGIN_ALLOW_THREADS
        if (atomic_load(&G->gc.gc_wake) == seen && !atomic_load(&G->gc.shutdown))
            futex_wait_until(&G->gc.gc_wake, seen, (long)(timeout * 1e9));
    Py_END_ALLOW_THREADS
    return PyLong_FromUnsignedLong(atomic_load(&G->gc.gc_wake));
}

static PyObject *py_gc_state(PyObject *m, PyObject *unused)
{
    if (need_attached()) return NULL;
    gcctl_t *gc = &G->gc;
    PyObject *d = Py_BuildValue(
        "{s:K,s:K,s:i,s:K,s:K,s:K,s:K,s:K,s:I,s:I,s:I,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:I}", "init_ns",
        (unsigned long long)gc->init_ns, "cycles_done", (unsigned long long)atomic_load(&gc->cycles_done), "gc_pid",
        (int)gc->gc_ospid, "heap_live", (unsigned long long)atomic_load(&G->mheap.heap_live), "trigger",
        (unsigned long long)atomic_load(&gc->trigger), "goal", (unsigned long long)atomic_load(&gc->goal), "forced_req",
        (unsigned long long)atomic_load(&gc->forced_req), "forced_done",
        (unsigned long long)atomic_load(&gc->forced_done), "shutdown", atomic_load(&gc->shutdown), "phase",
        atomic_load(&gc->phase), "gc_wake", atomic_load(&gc->gc_wake), "bytes_marked",
        (unsigned long long)atomic_load(&gc->bytes_marked), "scan_work",
        (unsigned long long)atomic_load(&gc->scan_work), "objs_marked",
        (unsigned long long)atomic_load(&gc->objs_marked), "mark_cpu_ns",
        (unsigned long long)atomic_load(&gc->mark_cpu_ns), "assist_ns", (unsigned long long)atomic_load(&gc->assist_ns),
        "assist_cpu_total_ns", (unsigned long long)atomic_load(&gc->assist_cpu_total_ns), "bytes_freed",
        (unsigned long long)atomic_load(&gc->bytes_freed), "objs_freed",
        (unsigned long long)atomic_load(&gc->objs_freed), "spans_freed",
        (unsigned long long)atomic_load(&gc->spans_freed), "sweepgen", atomic_load(&G->mheap.sweepgen));
    PyObject *more = Py_BuildValue(
        "{s:L,s:L,s:K,s:I,s:I,s:K,s:K,s:K}", "memory_limit", (long long)atomic_load(&gc->memory_limit), "gc_percent",
        (long long)atomic_load(&gc->gc_percent), "settings_gen", (unsigned long long)atomic_load(&gc->settings_gen),
        "limiter_on", atomic_load(&gc->limiter_on), "mark_throttle", atomic_load(&gc->mark_throttle), "triggered",
        (unsigned long long)atomic_load(&gc->triggered), "scav_assist_ns",
        (unsigned long long)atomic_load(&gc->scav_assist_ns), "npauses", (unsigned long long)atomic_load(&gc->npauses));
    if (!d || !more || PyDict_Update(d, more) < 0) {
        Py_XDECREF(d);
        Py_XDECREF(more);
        return NULL;
    }
    Py_DECREF(more);
    return d;
}

/* ---- memory: the scavenger, the settings, the limiter and the throttle (mgcscavenge.c, mgc.c) ---- */

static PyObject *py_scavenge(PyObject *m, PyObject *arg)
{
    if (need_attached()) return NULL;
    unsigned long long n = PyLong_AsUnsignedLongLong(arg);
    if (PyErr_Occurred()) return NULL;
    uint64_t got;
    Py_BEGIN_ALLOW_THREADS
        got = mheap_scavenge(n);
    Py_END_ALLOW_THREADS
    return PyLong_FromUnsignedLongLong(got);
}

static PyObject *py_set_memory_limit(PyObject *m, PyObject *arg)
{
    if (need_attached()) return NULL;
    long long n = PyLong_AsLongLong(arg);
    if (n == -1 && PyErr_Occurred()) return NULL;
    return PyLong_FromLongLong(gc_set_memory_limit(n));
}

static PyObject *py_set_gc_percent(PyObject *m, PyObject *arg)
{
    if (need_attached()) return NULL;
    long long n = PyLong_AsLongLong(arg);
    if (n == -1 && PyErr_Occurred()) return NULL;
    return PyLong_FromLongLong(gc_set_gc_percent(n));
}

static PyObject *py_gc_set_limiter(PyObject *m, PyObject *arg)
{
    if (need_attached()) return NULL;
    int on = PyObject_IsTrue(arg);
    if (on < 0) return NULL;
    gc_set_limiter(on);
    Py_RETURN_NONE;
}

static PyObject *py_gc_set_mark_throttle(PyObject *m, PyObject *arg)
{
    if (need_attached()) return NULL;
    int on = PyObject_IsTrue(arg);
    if (on < 0) return NULL;
    gc_set_mark_throttle(on);
    Py_RETURN_NONE;
}

static PyObject *py_gc_running_ps(PyObject *m, PyObject *unused)
{
    if (need_attached()) return NULL;
    return PyLong_FromUnsignedLong(p_count_running());
}

/* mapped_ready without the mheap lock (the launcher's timeline: it must never wait for a lock
 * a stopped process holds). */
static PyObject *py_mapped_ready(PyObject *m, PyObject *unused)
{
    if (need_attached()) return NULL;
    return PyLong_FromUnsignedLongLong(mapped_ready_bytes());
}

/* Go's runtime/metrics names for the memory classes, and plain keys for the rest. */
static PyObject *py_memstats(PyObject *m, PyObject *unused)
{
    if (need_attached()) return NULL;
    memstats_t s;
    Py_BEGIN_ALLOW_THREADS
        mheap_memstats(&s);
    Py_END_ALLOW_THREADS
#define U(x) (unsigned long long)(x)
    return Py_BuildValue("{s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:O}",
                         "/memory/classes/heap/objects:bytes", U(s.objects), "/memory/classes/heap/unused:bytes",
                         U(s.unused), "/memory/classes/heap/free:bytes", U(s.free),
                         "/memory/classes/heap/released:bytes", U(s.released), "/memory/classes/metadata/other:bytes",
                         U(s.metadata), "/memory/classes/total:bytes", U(s.total), "mapped_ready", U(s.mapped_ready),
                         "heap_live", U(s.heap_live), "heap_inuse", U(s.heap_inuse), "heap_free", U(s.free),
                         "heap_released", U(s.released), "scav_inflight", U(s.inflight), "grown", U(s.grown),
                         "sys_bytes", U(s.sys_bytes), "scav_released_bytes", U(s.scav_released_bytes),
                         "scav_reused_bytes", U(s.scav_reused_bytes), "scav_sync_bytes", U(s.scav_sync_bytes),
                         "scav_assist_ns", U(s.scav_assist_ns), "consistent", s.consistent ? Py_True : Py_False);
#undef U
}

static PyObject *py_gc_set_pacing(PyObject *m, PyObject *args)
{
    unsigned long long trigger, goal, scan_expected;
    if (!PyArg_ParseTuple(args, "KKK", &trigger, &goal, &scan_expected)) return NULL;
    if (need_attached()) return NULL;
    atomic_store(&G->gc.goal, goal);
    atomic_store(&G->gc.scan_expected, scan_expected);
    atomic_store(&G->gc.trigger, trigger);
    Py_RETURN_NONE;
}

static PyObject *py_gc_sweep_termination(PyObject *m, PyObject *arg)
{
    if (need_attached()) return NULL;
    unsigned long cycle = PyLong_AsUnsignedLong(arg);
    if (PyErr_Occurred()) return NULL;
    int rc, dead = -1;
    gc_activity(GCA_SWEEP_FINISH, 0, (uint32_t)cycle); /* stw_stop then says STOPPING, STW */
    Py_BEGIN_ALLOW_THREADS
        rc = gc_sweep_termination((uint32_t)cycle, &dead);
    Py_END_ALLOW_THREADS
    if (rc) return worker_died(dead); /* stw_start set GCA_MARK */
    return PyLong_FromUnsignedLongLong(atomic_load(&G->gc.npauses) - 1);
}

static PyObject *py_gc_mark_step(PyObject *m, PyObject *arg)
{
    if (need_attached()) return NULL;
    long long budget = PyLong_AsLongLong(arg);
    if (PyErr_Occurred()) return NULL;
    int q;
    gc_progress();
    Py_BEGIN_ALLOW_THREADS
        q = gc_mark_step(budget);
    Py_END_ALLOW_THREADS
    return PyBool_FromLong(q);
}

static PyObject *py_gc_flush_handshake(PyObject *m, PyObject *unused)
{
    if (need_attached()) return NULL;
    int rc, dead = -1;
    gc_activity(GCA_HANDSHAKE, 0, 0);
    Py_BEGIN_ALLOW_THREADS
        rc = gc_flush_handshake(&dead);
    Py_END_ALLOW_THREADS
    if (rc < 0) return worker_died(dead);
    gc_activity(GCA_MARK, 0, 0);
    return PyBool_FromLong(rc);
}

static PyObject *py_gc_mark_termination(PyObject *m, PyObject *args)
{
    unsigned int cycle;
    int checkmark;
    if (!PyArg_ParseTuple(args, "Ip", &cycle, &checkmark)) return NULL;
    if (need_attached()) return NULL;
    int rc, dead = -1;
    uint64_t checked = 0;
    Py_BEGIN_ALLOW_THREADS
        rc = gc_mark_termination(cycle, checkmark, &dead, &checked);
    Py_END_ALLOW_THREADS
    if (rc) return worker_died(dead); /* stw_start set GCA_SWEEP */
    return Py_BuildValue("(KK)", (unsigned long long)(atomic_load(&G->gc.npauses) - 1), (unsigned long long)checked);
}

static PyObject *py_gc_bgsweep(PyObject *m, PyObject *arg)
{
    if (need_attached()) return NULL;
    long n = PyLong_AsLong(arg);
    if (n == -1 && PyErr_Occurred()) return NULL;
    int r;
    Py_BEGIN_ALLOW_THREADS
        r = bgsweep((int)n);
    Py_END_ALLOW_THREADS
    return PyLong_FromLong(r);
}

static PyObject *py_gc_finish_cycle(PyObject *m, PyObject *arg)
{
    if (need_attached()) return NULL;
    unsigned long long t = PyLong_AsUnsignedLongLong(arg);
    if (PyErr_Occurred()) return NULL;
    gc_finish_cycle(t);
    gc_activity(GCA_IDLE, 0, 0);
    Py_RETURN_NONE;
}

static PyObject *py_gc_shutdown(PyObject *m, PyObject *unused)
{
    if (need_attached()) return NULL;
    atomic_store(&G->gc.shutdown, 1);
    atomic_fetch_add(&G->gc.gc_wake, 1);
    futex_wake_all(&G->gc.gc_wake);
    Py_RETURN_NONE;
}

static PyObject *pause_dict(uint64_t i)
{
    pauserec_t *r = pause_at(i);
    PyObject *acks = PyList_New(G->nprocs);
    if (!acks) return NULL;
    for (uint32_t k = 0; k < G->nprocs; k++) PyList_SET_ITEM(acks, k, PyLong_FromUnsignedLongLong(r->ack_ns[k]));
    return Py_BuildValue("{s:s,s:I,s:K,s:K,s:K,s:K,s:K,s:N}", "kind",
                         r->kind == PAUSE_SWEEPTERM ? "sweep termination" : "mark termination", "cycle", r->cycle,
                         "start_ns", (unsigned long long)r->start_ns, "stop_ns", (unsigned long long)r->stop_ns,
                         "seen_ns", (unsigned long long)r->seen_ns, "work_ns", (unsigned long long)r->work_ns,
                         "total_ns", (unsigned long long)r->total_ns, "ack_ns", acks);
}

static PyObject *py_gc_pauses(PyObject *m, PyObject *args)
{
    unsigned long long from = 0;
    if (!PyArg_ParseTuple(args, "|K", &from)) return NULL;
    if (need_attached()) return NULL;
    uint64_t n = atomic_load(&G->gc.npauses);
    if (n > MAX_PAUSES && from < n - MAX_PAUSES) from = n - MAX_PAUSES;
    PyObject *l = PyList_New(0);
    for (uint64_t i = from; l && i < n; i++) {
        PyObject *d = pause_dict(i);
        if (!d || PyList_Append(l, d) < 0) {
            Py_XDECREF(d);
            Py_DECREF(l);
            return NULL;
        }
        Py_DECREF(d);
    }
    return l;
}

static const struct {
    const char *name;
    size_t off;
} cyclerec_fields[] = {
#define CYCLEREC_ENTRY(name, doc) {#name, offsetof(cyclerec_t, name)},
    CYCLEREC_FIELDS(CYCLEREC_ENTRY)
#undef CYCLEREC_ENTRY
};
#define NCYCLEREC_FIELDS (sizeof cyclerec_fields / sizeof cyclerec_fields[0])

/* The names of the cycle record's fields, in layout order (for constants()). */
PyObject *cyclerec_field_names(void)
{
    PyObject *t = PyTuple_New((Py_ssize_t)NCYCLEREC_FIELDS);
    for (size_t k = 0; t && k < NCYCLEREC_FIELDS; k++) {
        PyObject *s = PyUnicode_FromString(cyclerec_fields[k].name);
        if (!s) {
            Py_DECREF(t);
            return NULL;
        }
        PyTuple_SET_ITEM(t, (Py_ssize_t)k, s);
    }
    return t;
}

/* gc_cycle_write(i, {field: value}): every field, by name. */
static PyObject *py_gc_cycle_write(PyObject *m, PyObject *args)
{
    unsigned long long i;
    PyObject *d;
    if (!PyArg_ParseTuple(args, "KO!", &i, &PyDict_Type, &d)) return NULL;
    if (need_attached()) return NULL;
    if (PyDict_GET_SIZE(d) != (Py_ssize_t)NCYCLEREC_FIELDS)
        return PyErr_Format(PyExc_ValueError, "a cycle record has %d fields, got %zd", (int)NCYCLEREC_FIELDS,
                            PyDict_GET_SIZE(d));
    cyclerec_t rec;
    for (size_t k = 0; k < NCYCLEREC_FIELDS; k++) {
        PyObject *v = PyDict_GetItemString(d, cyclerec_fields[k].name);
        if (!v) return PyErr_Format(PyExc_KeyError, "cycle record field %s missing", cyclerec_fields[k].name);
        uint64_t x = PyLong_AsUnsignedLongLong(v);
        if (x == (uint64_t)-1 && PyErr_Occurred()) return NULL;
        memcpy((char *)&rec + cyclerec_fields[k].off, &x, sizeof x);
    }
    *cycle_at(i) = rec;
    atomic_store(&G->gc.ncycles, i + 1);
    Py_RETURN_NONE;
}

static PyObject *cycle_dict(const cyclerec_t *rec)
{
    PyObject *d = PyDict_New();
    for (size_t k = 0; d && k < NCYCLEREC_FIELDS; k++) {
        uint64_t x;
        memcpy(&x, (const char *)rec + cyclerec_fields[k].off, sizeof x);
        PyObject *v = PyLong_FromUnsignedLongLong(x);
        if (!v || PyDict_SetItemString(d, cyclerec_fields[k].name, v) < 0) {
            Py_XDECREF(v);
            Py_DECREF(d);
            return NULL;
        }
        Py_DECREF(v);
    }
    return d;
}

/* The cycle records still in the ring, oldest first, as dicts. */
static PyObject *py_gc_cycles(PyObject *m, PyObject *unused)
{
    if (need_attached()) return NULL;
    uint64_t n = atomic_load(&G->gc.ncycles), from = n > MAX_CYCLES ? n - MAX_CYCLES : 0;
    PyObject *l = PyList_New(0);
    for (uint64_t i = from; l && i < n; i++) {
        PyObject *d = cycle_dict(cycle_at(i));
        if (!d || PyList_Append(l, d) < 0) {
            Py_XDECREF(d);
            Py_DECREF(l);
            return NULL;
        }
        Py_DECREF(d);
    }
    return l;
}

/* ---- worker side ---- */

static PyObject *py_gc(PyObject *m, PyObject *unused)
{
    if (ensure_p() || runtime_enter()) return NULL;
    Py_BEGIN_ALLOW_THREADS
        gc_request_and_wait();
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

static PyObject *py_blocking_enter(PyObject *m, PyObject *unused)
{
    if (ensure_p() || runtime_enter()) return NULL; /* also refuses a nested g.blocking() */
    enter_blocking();
    Py_RETURN_NONE;
}

static PyObject *py_blocking_exit(PyObject *m, PyObject *unused)
{
    if (ensure_p()) return NULL;
    if (atomic_load(&thisP->status) == P_RUNNING) Py_RETURN_NONE; /* the enter was refused */
    Py_BEGIN_ALLOW_THREADS
        exit_blocking();
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

static PyObject *py_array_copy(PyObject *m, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t doff, soff, n;
    if (nargs != 5 || !PyObject_TypeCheck(args[0], &ArrayHandle_Type) ||
        !PyObject_TypeCheck(args[2], &ArrayHandle_Type)) {
        PyErr_SetString(PyExc_TypeError, "array_copy(dst, dst_off, src, src_off, n) with two gorun arrays");
        return NULL;
    }
    doff = PyLong_AsSsize_t(args[1]);
    soff = PyLong_AsSsize_t(args[3]);
    n = PyLong_AsSsize_t(args[4]);
    if (PyErr_Occurred()) return NULL;
    HandleObject *d = (HandleObject *)args[0], *s = (HandleObject *)args[2];
    int dk = type_of(d->tid)->elem_kind, sk = type_of(s->tid)->elem_kind;
    if (dk != sk) return PyErr_Format(PyExc_TypeError, "array_copy between different element kinds");
    if (doff < 0 || soff < 0 || n < 0 || doff + n > (Py_ssize_t)d->len || soff + n > (Py_ssize_t)s->len)
        return PyErr_Format(PyExc_IndexError, "array_copy range out of bounds");
    if (runtime_enter()) return NULL;
    _Atomic uint64_t *dp = (_Atomic uint64_t *)(A + d->base + d->dataoff) + doff;
    _Atomic uint64_t *sp = (_Atomic uint64_t *)(A + s->base + s->dataoff) + soff;
    if (dk == FK_PTR)
        writebarrier_copy(dp, sp, (uint64_t)n);
    else
        memmove((void *)dp, (void *)sp, (size_t)n * 8);
    Py_RETURN_NONE;
}

/* g.interior(h, off): a handle holding an interior pointer, byte `off` of h's data. */
static PyObject *py_interior(PyObject *m, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyObject_TypeCheck(args[0], &Handle_Type)) {
        PyErr_SetString(PyExc_TypeError, "interior(handle, offset)");
        return NULL;
    }
    Py_ssize_t off = PyLong_AsSsize_t(args[1]);
    if (off == -1 && PyErr_Occurred()) return NULL;
    HandleObject *h = (HandleObject *)args[0];
    if (off < 0 || h->base + h->dataoff + (goaddr)off >= object_end(h->base))
        return PyErr_Format(PyExc_IndexError, "interior offset %zd is outside the object", off);
    return make_handle(h->base + h->dataoff + (goaddr)off);
}

PyMethodDef gc_methods[] = {
    {"interior", (PyCFunction)(void (*)(void))py_interior, METH_FASTCALL,
     "interior(h, off): handle to byte off of h's data"},
    {"gc_setup", py_gc_setup, METH_O, "GC process: record its pid and start N mark threads"},
    {"gc_set_pid", py_gc_set_pid, METH_O, "launcher: the GC process's pid, before any worker is forked"},
    {"gc_teardown", py_gc_teardown, METH_NOARGS, "GC process: stop the mark threads"},
    {"gc_wait", py_gc_wait, METH_VARARGS, "gc_wait(seen, timeout_s): sleep until a worker wakes the GC"},
    {"gc_state", py_gc_state, METH_NOARGS, "GC counters"},
    {"gc_set_pacing", py_gc_set_pacing, METH_VARARGS, "gc_set_pacing(trigger, goal, scan_expected)"},
    {"scavenge", py_scavenge, METH_O, "scavenge(nbytes): return free pages to the OS; the bytes released"},
    {"set_memory_limit", py_set_memory_limit, METH_O,
     "set_memory_limit(bytes): the memory limit (bytes < 0: unchanged); returns the previous one"},
    {"set_gc_percent", py_set_gc_percent, METH_O, "set_gc_percent(pct): GOGC (< 0: off, -1); returns the previous"},
    {"gc_set_limiter", py_gc_set_limiter, METH_O, "GC process: the GC CPU limiter is on (True) or off"},
    {"gc_running_ps", py_gc_running_ps, METH_NOARGS, "P's running now (the others leave their CPU to the GC)"},
    {"gc_set_mark_throttle", py_gc_set_mark_throttle, METH_O,
     "GC process: pause (True) or resume the mark threads (background utilization)"},
    {"mapped_ready", py_mapped_ready, METH_NOARGS, "memory mapped and not released (a lock-free snapshot)"},
    {"memstats", py_memstats, METH_NOARGS, "the memory classes (Go's runtime/metrics names) and scavenger counters"},
    {"gc_sweep_termination", py_gc_sweep_termination, METH_O, "STW 1; returns the pause index"},
    {"gc_mark_step", py_gc_mark_step, METH_O, "one step of concurrent mark; True if quiescent"},
    {"gc_flush_handshake", py_gc_flush_handshake, METH_NOARGS, "ragged barrier; True if it found work"},
    {"gc_mark_termination", py_gc_mark_termination, METH_VARARGS, "STW 2; returns (pause index, checked)"},
    {"gc_bgsweep", py_gc_bgsweep, METH_O, "sweep up to n spans; 0 when done"},
    {"gc_finish_cycle", py_gc_finish_cycle, METH_O, "release g.gc() callers up to a request number"},
    {"gc_shutdown", py_gc_shutdown, METH_NOARGS, "launcher: tell the GC process every worker is done"},
    {"gc_pauses", py_gc_pauses, METH_VARARGS, "pause records from index i"},
    {"gc_cycle_write", py_gc_cycle_write, METH_VARARGS, "write cycle record i"},
    {"gc_cycles", py_gc_cycles, METH_NOARGS, "all cycle records"},
    {"gc", py_gc, METH_NOARGS, "worker: run a full GC cycle and wait for it (runtime.GC)"},
    {"blocking_enter", py_blocking_enter, METH_NOARGS, "worker: declare a blocking call"},
    {"blocking_exit", py_blocking_exit, METH_NOARGS, "worker: end a blocking call"},
    {"array_copy", (PyCFunction)(void (*)(void))py_array_copy, METH_FASTCALL, "array_copy(dst, doff, src, soff, n)"},
    {NULL},
};
