/* testhooks.c: hooks that exist only so the tests can inject faults into a real run. Nothing in
 * gorun itself calls them; each is named test_* in gorun._gorun. */
#include "gorun_py.h"

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
    {"test_spin", py_test_spin, METH_O, "test hook: spin N seconds in C without polling, as an endless runtime call"},
    {NULL},
};
