/* gorun_py.h: declarations shared by the CPython binding files (handle.c, module.c). */
#ifndef GORUN_PY_H
#define GORUN_PY_H
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "runtime.h"

/* A handle: a Python reference to a heap object that is also a GC root. It owns slot `slot`
 * of its P's root table, which holds `addr` for as long as the handle lives. */
typedef struct {
    PyObject_HEAD goaddr addr; /* the address held (may be interior) */
    goaddr base;               /* the object's first byte (header, or length byte for tiny) */
    uint32_t slot;             /* root-table slot index */
    uint32_t tid;              /* type id */
    uint32_t len;              /* arrays: elements; bytes: length */
    uint32_t dataoff;          /* bytes/arrays: offset of element 0 from base */
    Py_ssize_t shape;          /* arrays: element count, for the buffer protocol */
} HandleObject;

extern PyTypeObject Handle_Type, ArrayHandle_Type, BytesHandle_Type, FieldDescr_Type;
extern PyObject *OutOfMemoryError, *GorunError;

int handle_types_ready(PyObject *m);
PyObject *make_handle(goaddr addr);         /* new reference; None for 0 */
PyObject *handle_new_object(PyObject *cls); /* g.new(T) */
PyObject *handle_new_bytes(PyObject *arg);  /* g.new_bytes(n | data) */
PyObject *handle_new_array(uint32_t tid, Py_ssize_t n);
int bind_class(uint32_t tid, PyObject *cls);
int set_resolver(PyObject *fn);
int ensure_p(void);
int need_attached(void); /* 0 if a heap is mapped here, else raises */ /* 0 if this process is a P, else raises */
goaddr handle_addr_arg(PyObject *v, int *ok);                          /* Handle or None -> address */

/* Entry of every runtime call from Python on a P: poll, and refuse calls made inside
 * g.blocking() (the GC process treats that P as stopped and may be flushing its mcache or
 * draining its barrier log). Returns 0, or -1 with an exception set. */
static inline int runtime_enter(void)
{
    if (thisP && atomic_load_explicit(&thisP->status, memory_order_relaxed) != P_RUNNING) {
        PyErr_SetString(GorunError, "gorun runtime call inside g.blocking() (or after the workload ended): "
                                    "a blocked P must not touch the heap");
        return -1;
    }
    safepoint_poll_c();
    return 0;
}

/* The method tables of the binding files, joined into one module by module.c. */
extern PyMethodDef gc_methods[];       /* gc_py.c */
extern PyMethodDef watch_methods[];    /* watch.c */
extern PyMethodDef testhook_methods[]; /* testhooks.c */
extern PyMethodDef mfinal_methods[];   /* mfinal_py.c */
int finq_run_py(void);                 /* mfinal_py.c: run this P's due finalizers and cleanups; -1 on an exception */
PyObject *specials_dict(void);         /* mfinal_py.c: the special records' counters */
#if GORUN_DEBUG
extern PyMethodDef debug_methods[]; /* testhooks.c, debug builds only */
#endif
PyObject *lock_dict(glock_t *l);      /* module.c: one lock's statistics */
PyObject *cyclerec_field_names(void); /* gc_py.c: the cycle record's field names */

#endif
