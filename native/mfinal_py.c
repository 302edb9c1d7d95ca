/* mfinal_py.c: the CPython bindings of finalizers, cleanups and weak handles (mfinal.c). They
 * convert arguments and build values; the Python side, with the per-worker table of callbacks
 * keyed by record id, is gorun/mfinal.py. finq_run_py runs this P's due callbacks through the
 * runner gorun/mfinal.py registered, from a safepoint outside the runtime: the pending call of
 * preempt.c (a bytecode boundary) or g.safepoint(). */
#include "gorun_py.h"

#include <string.h>

static PyObject *runner; /* gorun.mfinal._run, set by the first registration in this worker */
static int running;      /* the runner is on the stack: a callback's own safepoint does not re-enter */

int finq_run_py(void)
{
    if (!runner || running || !thisP || atomic_load(&thisP->status) != P_RUNNING || !finq_pending()) return 0;
    running = 1;
    PyObject *r = PyObject_CallNoArgs(runner);
    running = 0;
    if (!r) return -1;
    Py_DECREF(r);
    return 0;
}

static goaddr obj_arg(PyObject *v)
{
    if (!PyObject_TypeCheck(v, &Handle_Type)) {
        PyErr_Format(PyExc_TypeError, "expected a gorun handle, not %.100s", Py_TYPE(v)->tp_name);
        return 0;
    }
    return ((HandleObject *)v)->addr;
}

static int enter(PyObject *h, goaddr *a)
{
    if (ensure_p()) return -1;
    if (h && !(*a = obj_arg(h))) return -1;
    return runtime_enter();
}

static PyObject *special_error(int rc, const char *what)
{
    if (rc == SPECIAL_EXISTS) return PyErr_Format(GorunError, "%s: finalizer already set", what);
    if (rc == SPECIAL_NOTSTART)
        return PyErr_Format(GorunError, "%s: pointer not at beginning of allocated block", what);
    return PyErr_Format(GorunError, "%s: the special-record table is full (%d records)", what, MAX_SPECIALS);
}

static PyObject *py_set_finalizer(PyObject *m, PyObject *h)
{
    goaddr a;
    uint64_t id = 0;
    if (enter(h, &a)) return NULL;
    int rc = special_set_finalizer(a, &id);
    if (rc != SPECIAL_OK) return special_error(rc, "runtime.SetFinalizer");
    return PyLong_FromUnsignedLongLong(id);
}

static PyObject *py_clear_finalizer(PyObject *m, PyObject *h)
{
    goaddr a;
    if (enter(h, &a)) return NULL;
    return PyLong_FromUnsignedLongLong(special_clear_finalizer(a));
}

static PyObject *py_add_cleanup(PyObject *m, PyObject *h)
{
    goaddr a;
    uint64_t id = 0;
    if (enter(h, &a)) return NULL;
    int rc = special_add_cleanup(a, &id);
    if (rc != SPECIAL_OK) return special_error(rc, "runtime.AddCleanup");
    return PyLong_FromUnsignedLongLong(id);
}

static int id_arg(PyObject *v, uint64_t *id)
{
    *id = PyLong_AsUnsignedLongLong(v);
    return *id == (uint64_t)-1 && PyErr_Occurred() ? -1 : 0;
}

static PyObject *py_stop_cleanup(PyObject *m, PyObject *v)
{
    uint64_t id;
    if (id_arg(v, &id) || enter(NULL, NULL)) return NULL;
    return PyBool_FromLong(special_stop_cleanup(id));
}

static PyObject *py_weak_make(PyObject *m, PyObject *h)
{
    goaddr a;
    uint64_t id = 0;
    if (enter(h, &a)) return NULL;
    int rc = special_weak_make(a, &id);
    if (rc != SPECIAL_OK) return special_error(rc, "weak.Make");
    return PyLong_FromUnsignedLongLong(id);
}

static PyObject *py_weak_value(PyObject *m, PyObject *v)
{
    uint64_t id;
    if (id_arg(v, &id) || enter(NULL, NULL)) return NULL;
    goaddr a = special_weak_value(id);
    if (!a) Py_RETURN_NONE;
    PyObject *h = make_handle(a);
    /* Read again now that the handle roots it: making the handle may have run Python code
     * (a class resolver, CPython's cyclic GC) and so a safepoint. */
    if (h && special_weak_value(id) != a) {
        Py_DECREF(h);
        Py_RETURN_NONE;
    }
    return h;
}

/* The head of this P's queue as (id, kind, handle or None), out of the queue; None if empty. */
static PyObject *py_finq_next(PyObject *m, PyObject *unused)
{
    uint64_t id;
    int kind;
    goaddr a;
    if (enter(NULL, NULL)) return NULL;
    if (!finq_peek(&id, &kind, &a)) Py_RETURN_NONE;
    PyObject *h = a ? make_handle(a) : Py_NewRef(Py_None); /* rooted before it leaves the queue */
    if (!h) return NULL;
    finq_remove(id);
    return Py_BuildValue("(KsN)", (unsigned long long)id, kind == SPECIAL_FINALIZER ? "finalizer" : "cleanup", h);
}

static PyObject *py_special_executed(PyObject *m, PyObject *v)
{
    const char *kind = PyUnicode_AsUTF8(v);
    if (!kind || need_attached()) return NULL;
    special_executed(strcmp(kind, "finalizer") == 0 ? SPECIAL_FINALIZER : SPECIAL_CLEANUP);
    Py_RETURN_NONE;
}

static PyObject *py_set_finq_runner(PyObject *m, PyObject *fn)
{
    Py_XSETREF(runner, Py_NewRef(fn));
    Py_RETURN_NONE;
}

PyObject *specials_dict(void)
{
    specials_t *sp = &G->specials;
    return Py_BuildValue(
        "{s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:I}", "finalizers_queued", RELAXED_LOAD(sp->fin_queued),
        "finalizers_executed", RELAXED_LOAD(sp->fin_executed), "cleanups_queued", RELAXED_LOAD(sp->cleanup_queued),
        "cleanups_executed", RELAXED_LOAD(sp->cleanup_executed), "weak_cleared", RELAXED_LOAD(sp->weak_cleared),
        "finalizers_set", RELAXED_LOAD(sp->fin_set), "cleanups_added", RELAXED_LOAD(sp->cleanup_added),
        "cleanups_stopped", RELAXED_LOAD(sp->cleanup_stopped), "weak_made", RELAXED_LOAD(sp->weak_made), "records_live",
        RELAXED_LOAD(sp->nlive), "records_max", (unsigned)MAX_SPECIALS);
}

static PyObject *py_specials_stats(PyObject *m, PyObject *unused)
{
    if (need_attached()) return NULL;
    return specials_dict();
}

PyMethodDef mfinal_methods[] = {
    {"special_set_finalizer", py_set_finalizer, METH_O, "attach a finalizer record to h's object; its id"},
    {"special_clear_finalizer", py_clear_finalizer, METH_O, "remove h's finalizer record; its id, 0 if none"},
    {"special_add_cleanup", py_add_cleanup, METH_O, "attach a cleanup record to h; its id"},
    {"special_stop_cleanup", py_stop_cleanup, METH_O, "cancel the cleanup record id; True if it was attached"},
    {"special_weak_make", py_weak_make, METH_O, "h's (canonical) weak handle record id"},
    {"special_weak_value", py_weak_value, METH_O, "the weak handle's object as a handle, or None"},
    {"finq_next", py_finq_next, METH_NOARGS,
     "(id, 'finalizer' | 'cleanup', handle or None) from this P's queue, or None"},
    {"special_executed", py_special_executed, METH_O,
     "special_executed('finalizer' | 'cleanup'): count one function run"},
    {"set_finq_runner", py_set_finq_runner, METH_O, "the function that runs this P's queue at safepoints"},
    {"specials_stats", py_specials_stats, METH_NOARGS, "the special records' counters"},
    {NULL, NULL, 0, NULL},
};
