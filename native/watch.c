/* watch.c: the state the launcher's watchdog reads to tell a stuck process from a slow one
 * (docs/design.md "Stuck processes"). Liveness (gorun_pid_dead) is in os_linux.c.
 *
 * Runtime side (cheap, slow paths only):
 *   - gc_activity / gc_progress (runtime.h): what the GC process's main thread is doing, since
 *     when, and a counter bumped at every bounded step that advances.
 *   - lockwait_begin / lockwait_end: called by lock.c on the contended path only: which lock a
 *     P (or a GC-process thread) is waiting for, and since when.
 *   - rcall_enter / rcall_exit (runtime.h): a worker inside a runtime call that can take long.
 * Launcher side: watch_state(), one snapshot of all of it for gorun/watchdog.py.
 */
#include "gorun_py.h"

/* ---- GC activity ---- */

void gc_activity(uint32_t act, uint32_t arg, uint32_t cycle)
{
    gcctl_t *gc = &G->gc;
    uint64_t now = nanotime();
    if (gorun_trace_on) { /* the phases and the counters at every transition */
        trace_emit(EV_ACTIVITY, act, (uint64_t)arg << 32 | cycle, now);
        trace_counters();
    }
    atomic_store_explicit(&gc->activity_since_ns, now, memory_order_relaxed);
    atomic_store_explicit(&gc->activity_arg, arg, memory_order_relaxed);
    if (cycle) atomic_store_explicit(&gc->activity_cycle, cycle, memory_order_relaxed);
    atomic_store_explicit(&gc->activity, act, memory_order_release);
    gc_progress();
}

/* ---- lock waits ---- */

lockwait_t *lockwait_begin(glock_t *l, uint64_t t0)
{
    if (!G || (char *)l < (char *)G || (uint64_t)((char *)l - (char *)G) >= G->meta_size) return NULL;
    lockwait_t *w = NULL;
    if (thisP)
        w = &thisP->lockwait;
    else if (gorun_ospid > 0 && G->gc.gc_ospid == gorun_ospid)
        w = &G->gc.lockwait;
    if (!w) return NULL;
    uint64_t zero = 0, off = (uint64_t)((char *)l - (char *)G);
    if (!atomic_compare_exchange_strong(&w->lock_off, &zero, off)) return NULL; /* another thread's wait is shown */
    atomic_store_explicit(&w->since_ns, t0, memory_order_relaxed);
    return w;
}

void lockwait_end(lockwait_t *w, glock_t *l)
{
    if (!w) return;
    uint64_t off = (uint64_t)((char *)l - (char *)G);
    atomic_compare_exchange_strong(&w->lock_off, &off, 0);
}

/* ---- launcher side: the snapshot ---- */

/* The runtime lock at byte offset off of the metadata segment, or NULL if off names none. */
static glock_t *lock_at(uint64_t off)
{
    glock_t *cand[4] = {&G->mheap.lock, &G->typetab.lock, &G->gc.work.lock, &G->specials.lock};
    for (int i = 0; i < 4; i++)
        if ((uint64_t)((char *)cand[i] - (char *)G) == off) return cand[i];
    for (int i = 0; i < NUM_SPAN_CLASSES; i++)
        if ((uint64_t)((char *)&G->central[i].lock - (char *)G) == off) return &G->central[i].lock;
    for (uint32_t i = 0; i < MAX_POOLS; i++)
        if ((uint64_t)((char *)&pool_at(i)->lock - (char *)G) == off) return &pool_at(i)->lock;
    return NULL;
}

/* None, or {"name", "holder_pid", "since_ns"} of the lock w shows. */
static PyObject *lockwait_obj(lockwait_t *w)
{
    uint64_t off = atomic_load(&w->lock_off);
    glock_t *l = off ? lock_at(off) : NULL;
    if (!l) Py_RETURN_NONE;
    return Py_BuildValue("{s:s,s:i,s:K}", "name", l->name, "holder_pid", (int)atomic_load(&l->owner_pid), "since_ns",
                         (unsigned long long)atomic_load_explicit(&w->since_ns, memory_order_relaxed));
}

static PyObject *py_watch_state(PyObject *m, PyObject *unused)
{
    if (need_attached()) return NULL;
    gcctl_t *gc = &G->gc;
    PyObject *ps = PyList_New(G->nprocs);
    if (!ps) return NULL;
    for (uint32_t i = 0; i < G->nprocs; i++) {
        gp_t *p = &G->allp[i];
        uint32_t rc = atomic_load_explicit(&p->rcall, memory_order_acquire);
        PyObject *d =
            Py_BuildValue("{s:I,s:i,s:I,s:I,s:I,s:K,s:K,s:N}", "id", p->id, "pid", (int)atomic_load(&p->ospid),
                          "status", atomic_load(&p->status), "poll", atomic_load(&p->poll), "rcall", rc,
                          "rcall_since_ns", (unsigned long long)atomic_load(&p->rcall_since_ns), "ack_ns",
                          (unsigned long long)atomic_load(&p->ack_ns), "lock", lockwait_obj(&p->lockwait));
        if (!d) {
            Py_DECREF(ps);
            return NULL;
        }
        PyList_SET_ITEM(ps, i, d);
    }
    uint32_t act = atomic_load_explicit(&gc->activity, memory_order_acquire);
    return Py_BuildValue("{s:K,s:{s:i,s:I,s:I,s:I,s:K,s:K,s:N},s:N}", "now_ns", (unsigned long long)nanotime(), "gc",
                         "pid", (int)gc->gc_ospid, "activity", act, "arg", atomic_load(&gc->activity_arg), "cycle",
                         atomic_load(&gc->activity_cycle), "since_ns",
                         (unsigned long long)atomic_load(&gc->activity_since_ns), "progress",
                         (unsigned long long)atomic_load(&gc->progress), "lock", lockwait_obj(&gc->lockwait), "ps", ps);
}

static PyObject *py_pid_dead(PyObject *m, PyObject *arg)
{
    long pid = PyLong_AsLong(arg);
    if (pid == -1 && PyErr_Occurred()) return NULL;
    return PyBool_FromLong(gorun_pid_dead((int32_t)pid));
}

PyMethodDef watch_methods[] = {
    {"watch_state", py_watch_state, METH_NOARGS, "launcher: one snapshot of the progress-watch state"},
    {"pid_dead", py_pid_dead, METH_O, "pid_dead(pid): the process is gone or a zombie"},
    {NULL},
};
