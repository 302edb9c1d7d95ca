/* handle.c: handles, the roots of gorun (ARCHITECTURE.md section 3).
 *
 * Every Python value that refers to a heap object is a handle: a small extension object that
 * occupies a slot of its P's root table in shared memory for exactly as long as CPython keeps
 * it alive, so the table always holds exactly the live handles and the GC can scan them
 * precisely. Slots are recycled through a process-local free stack; `root_hwm` bounds the
 * scan. Struct types are Python subclasses of Handle whose fields are FieldDescr objects
 * (offset + kind), so a field read or write is one C call. Every pointer store goes through
 * writebarrier_store (mbarrier.c). Overview: docs/design.md "Handles and roots".
 */
#include "gorun_py.h"

#include <float.h>
#include <math.h>
#include <string.h>

PyObject *OutOfMemoryError, *GorunError;

/* ---- process-local class table: tid -> Python class, class -> tid ---- */
static PyObject *tid_class[MAX_TYPES];
static PyObject *resolver;
#define CLSMAP_SIZE 8192
static struct {
    PyObject *cls;
    uint32_t tid;
} clsmap[CLSMAP_SIZE];

static inline uint32_t clsmap_slot(PyObject *cls)
{ return (uint32_t)(((uintptr_t)cls >> 4) * 2654435761u) % CLSMAP_SIZE; }

int bind_class(uint32_t tid, PyObject *cls)
{
    if (tid >= MAX_TYPES) {
        PyErr_SetString(PyExc_ValueError, "type id out of range");
        return -1;
    }
    uint32_t h = clsmap_slot(cls);
    for (uint32_t i = 0; i < CLSMAP_SIZE; i++) {
        uint32_t j = (h + i) % CLSMAP_SIZE;
        if (clsmap[j].cls == NULL || clsmap[j].cls == cls) {
            Py_INCREF(cls);
            Py_XSETREF(clsmap[j].cls, cls);
            clsmap[j].tid = tid;
            Py_INCREF(cls);
            Py_XSETREF(tid_class[tid], cls);
            return 0;
        }
    }
    PyErr_SetString(PyExc_RuntimeError, "too many gorun classes");
    return -1;
}

static uint32_t class_tid(PyObject *cls)
{
    uint32_t h = clsmap_slot(cls);
    for (uint32_t i = 0; i < CLSMAP_SIZE; i++) {
        uint32_t j = (h + i) % CLSMAP_SIZE;
        if (clsmap[j].cls == cls) return clsmap[j].tid;
        if (clsmap[j].cls == NULL) return 0;
    }
    return 0;
}

int set_resolver(PyObject *fn)
{
    Py_XINCREF(fn);
    Py_XSETREF(resolver, fn);
    return 0;
}

static PyObject *class_for_tid(uint32_t tid)
{
    if (tid < MAX_TYPES && tid_class[tid]) return tid_class[tid];
    if (tid == 0 || tid >= atomic_load_explicit(&G->typetab.ntypes, memory_order_acquire)) {
        PyErr_Format(GorunError, "object has an invalid type id %u (heap corruption?)", tid);
        return NULL;
    }
    gotype_t *t = type_of(tid);
    if (t->kind == TK_ARRAY) return (PyObject *)&ArrayHandle_Type;
    if (t->kind == TK_BYTES) return (PyObject *)&BytesHandle_Type;
    if (!resolver) {
        PyErr_Format(GorunError, "no Python class for type %s", t->name);
        return NULL;
    }
    PyObject *r = PyObject_CallFunction(resolver, "I", tid);
    if (!r) return NULL;
    Py_DECREF(r);
    if (!tid_class[tid]) {
        PyErr_Format(GorunError, "resolver did not bind type %s", t->name);
        return NULL;
    }
    return tid_class[tid];
}

/* ---- this process's P ---- */

int ensure_p(void)
{
    if (!roots_here()) {
        PyErr_SetString(GorunError, "this process is not a gorun P (call inside a workload run by gorun.Runtime)");
        return -1;
    }
    return 0;
}

/* ---- handle construction ---- */

static PyObject *handle_alloc(PyObject *cls, goaddr addr, goaddr base, uint32_t tid, uint32_t len, uint32_t dataoff)
{
    PyTypeObject *tp = (PyTypeObject *)cls;
    HandleObject *h = (HandleObject *)tp->tp_alloc(tp, 0);
    if (!h) return NULL;
    h->addr = addr;
    h->base = base;
    h->tid = tid;
    h->len = len;
    h->dataoff = dataoff;
    h->slot = UINT32_MAX;
    if (root_alloc(addr, &h->slot) != 0) {
        PyErr_Format(GorunError, "root table of P%u is full: %llu live handles (raise root_slots)", thisP->id,
                     (unsigned long long)G->root_slots);
        Py_DECREF(h);
        return NULL;
    }
    return (PyObject *)h;
}

PyObject *make_handle(goaddr addr)
{
    if (addr == 0) Py_RETURN_NONE;
    if (ensure_p() != 0) return NULL;
    mspan_t *s;
    goaddr base = findobject(addr, &s);
    if (!base) {
        char hex[24]; /* PyErr_Format has no %llx */
        snprintf(hex, sizeof hex, "0x%llx", (unsigned long long)addr);
        PyErr_Format(GorunError, "pointer %s is not inside a heap object", hex);
        return NULL;
    }
    if (s->spanclass == TINY_SPAN_CLASS)
        return handle_alloc((PyObject *)&BytesHandle_Type, addr, base, TID_BYTES, A[base], 1);
    uint64_t hdr = *obj_word(base);
    uint32_t tid = (uint32_t)hdr;
    PyObject *cls = class_for_tid(tid);
    if (!cls) return NULL;
    return handle_alloc(cls, addr, base, tid, (uint32_t)(hdr >> 32), OBJ_HEADER_SIZE);
}

static void raise_oom(uint64_t bytes)
{
    char msg[512];
    mheap_oom_message(msg, sizeof msg, bytes);
    PyErr_SetString(OutOfMemoryError, msg);
}

PyObject *handle_new_object(PyObject *cls)
{
    if (ensure_p() != 0) return NULL;
    if (runtime_enter()) return NULL;
    uint32_t tid = class_tid(cls);
    if (!tid) {
        PyErr_Format(PyExc_TypeError, "g.new() needs a gorun struct type, got %R", cls);
        return NULL;
    }
    gotype_t *t = type_of(tid);
    goaddr a = mallocgc(t->size, tid, 0, !t->has_ptrs);
    if (!a) {
        raise_oom(t->size + OBJ_HEADER_SIZE);
        return NULL;
    }
    return handle_alloc(cls, a, a, tid, 0, OBJ_HEADER_SIZE);
}

PyObject *handle_new_bytes(PyObject *arg)
{
    if (ensure_p() != 0) return NULL;
    if (runtime_enter()) return NULL;
    Py_buffer view = {0};
    Py_ssize_t n;
    int have_data = 0;
    if (PyLong_Check(arg)) {
        n = PyLong_AsSsize_t(arg);
        if (n < 0) {
            if (!PyErr_Occurred()) PyErr_Format(PyExc_ValueError, "new_bytes: negative length %zd", n);
            return NULL;
        }
    } else {
        if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) != 0) return NULL;
        n = view.len;
        have_data = 1;
    }
    if ((uint64_t)n > MAX_OBJECT_PAYLOAD) {
        if (have_data) PyBuffer_Release(&view);
        PyErr_Format(PyExc_ValueError, "new_bytes: length %zd too large (at most %llu bytes)", n,
                     (unsigned long long)MAX_OBJECT_PAYLOAD);
        return NULL;
    }
    goaddr a = mallocgc((uint64_t)n, TID_BYTES, (uint32_t)n, 1);
    if (!a) {
        if (have_data) PyBuffer_Release(&view);
        raise_oom((uint64_t)n + OBJ_HEADER_SIZE);
        return NULL;
    }
    uint32_t dataoff = spanof_id(spanof_addr(a))->spanclass == TINY_SPAN_CLASS ? 1 : OBJ_HEADER_SIZE;
    if (have_data) {
        memcpy(A + a + dataoff, view.buf, (size_t)n);
        PyBuffer_Release(&view);
    }
    return handle_alloc((PyObject *)&BytesHandle_Type, a, a, TID_BYTES, (uint32_t)n, dataoff);
}

PyObject *handle_new_array(uint32_t tid, Py_ssize_t n)
{
    if (ensure_p() != 0) return NULL;
    if (runtime_enter()) return NULL;
    if (n < 0 || (uint64_t)n > MAX_OBJECT_PAYLOAD / 8) {
        PyErr_Format(PyExc_ValueError, "new_array: bad length %zd (0..%llu)", n,
                     (unsigned long long)MAX_OBJECT_PAYLOAD / 8);
        return NULL;
    }
    gotype_t *t = type_of(tid);
    goaddr a = mallocgc((uint64_t)n * 8, tid, (uint32_t)n, !t->has_ptrs);
    if (!a) {
        raise_oom((uint64_t)n * 8 + OBJ_HEADER_SIZE);
        return NULL;
    }
    return handle_alloc((PyObject *)&ArrayHandle_Type, a, a, tid, (uint32_t)n, OBJ_HEADER_SIZE);
}

goaddr handle_addr_arg(PyObject *v, int *ok)
{
    *ok = 1;
    if (v == Py_None) return 0;
    if (PyObject_TypeCheck(v, &Handle_Type)) return ((HandleObject *)v)->addr;
    *ok = 0;
    PyErr_Format(PyExc_TypeError, "a pointer must be a gorun handle or None, not %.100s", Py_TYPE(v)->tp_name);
    return 0;
}

/* ---- Handle type ---- */

static void Handle_dealloc(PyObject *self)
{
    HandleObject *h = (HandleObject *)self;
    if (h->slot != UINT32_MAX) root_free(h->slot);
    Py_TYPE(self)->tp_free(self);
}

static PyObject *Handle_repr(PyObject *self)
{
    HandleObject *h = (HandleObject *)self;
    const char *name = G && h->tid < MAX_TYPES ? type_of(h->tid)->name : "?";
    char hex[24]; /* PyUnicode_FromFormat has no %llx */
    snprintf(hex, sizeof hex, "0x%llx", (unsigned long long)h->addr);
    return PyUnicode_FromFormat("<gorun %s @%s>", name, hex);
}

static Py_hash_t Handle_hash(PyObject *self)
{
    Py_hash_t x = (Py_hash_t)(((HandleObject *)self)->addr >> 3);
    return x == -1 ? -2 : x;
}

static PyObject *Handle_richcompare(PyObject *a, PyObject *b, int op)
{
    if (!PyObject_TypeCheck(b, &Handle_Type) || (op != Py_EQ && op != Py_NE)) Py_RETURN_NOTIMPLEMENTED;
    int eq = ((HandleObject *)a)->addr == ((HandleObject *)b)->addr;
    return PyBool_FromLong(op == Py_EQ ? eq : !eq);
}

static PyObject *Handle_get_addr(PyObject *self, void *c)
{ return PyLong_FromUnsignedLongLong(((HandleObject *)self)->addr); }
static PyObject *Handle_get_base(PyObject *self, void *c)
{ return PyLong_FromUnsignedLongLong(((HandleObject *)self)->base); }
static PyObject *Handle_get_tid(PyObject *self, void *c)
{ return PyLong_FromUnsignedLong(((HandleObject *)self)->tid); }
static PyObject *Handle_get_slot(PyObject *self, void *c)
{ return PyLong_FromUnsignedLong(((HandleObject *)self)->slot); }
static PyObject *Handle_get_typename(PyObject *self, void *c)
{ return PyUnicode_FromString(type_of(((HandleObject *)self)->tid)->name); }

static PyGetSetDef Handle_getset[] = {
    {"addr", Handle_get_addr, NULL, "heap address (arena offset) this handle holds", NULL},
    {"base", Handle_get_base, NULL, "address of the first byte of the object", NULL},
    {"type_id", Handle_get_tid, NULL, "type id in the shared type table", NULL},
    {"root_slot", Handle_get_slot, NULL, "slot of this P's root table the handle occupies", NULL},
    {"type_name", Handle_get_typename, NULL, "name of the object's type", NULL},
    {NULL},
};

PyTypeObject Handle_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "gorun.Handle",
    .tp_basicsize = sizeof(HandleObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "A reference to a gorun heap object; a GC root while it lives.",
    .tp_dealloc = Handle_dealloc,
    .tp_repr = Handle_repr,
    .tp_hash = Handle_hash,
    .tp_richcompare = Handle_richcompare,
    .tp_getset = Handle_getset,
};

/* ---- one 8-byte word of an object: the int, float and pointer cases shared by fields and
 * array elements. Pointer loads and stores are runtime calls (they poll); stores go through
 * the write barrier. ---- */

static PyObject *word_load(int kind, uint8_t *p)
{
    switch (kind) {
    case FK_INT:
        return PyLong_FromLongLong(*(int64_t *)p);
    case FK_FLOAT:
        return PyFloat_FromDouble(*(double *)p);
    case FK_PTR:
        if (runtime_enter()) return NULL; /* a pointer read makes a root: a runtime call, so it polls first */
        return make_handle(atomic_load_explicit((_Atomic uint64_t *)p, memory_order_acquire));
    }
    PyErr_SetString(GorunError, "bad word kind");
    return NULL;
}

static int word_store(int kind, uint8_t *p, PyObject *value)
{
    switch (kind) {
    case FK_INT: {
        long long v = PyLong_AsLongLong(value);
        if (v == -1 && PyErr_Occurred()) return -1;
        *(int64_t *)p = v;
        return 0;
    }
    case FK_FLOAT: {
        double v = PyFloat_AsDouble(value);
        if (v == -1.0 && PyErr_Occurred()) return -1;
        *(double *)p = v;
        return 0;
    }
    case FK_PTR: {
        int ok;
        goaddr v = handle_addr_arg(value, &ok);
        if (!ok) return -1;
        if (runtime_enter()) return -1;
        writebarrier_store((_Atomic uint64_t *)p, v);
        return 0;
    }
    }
    PyErr_SetString(GorunError, "bad word kind");
    return -1;
}

/* ---- field descriptors ---- */
typedef struct {
    PyObject_HEAD uint32_t offset; /* from the object base (header included) */
    uint32_t kind;                 /* FK_* */
    uint32_t nbytes;               /* FK_BYTES: inline byte count */
    PyObject *name;
} FieldDescrObject;

static PyObject *FieldDescr_get(PyObject *self, PyObject *obj, PyObject *type)
{
    if (obj == NULL || obj == Py_None) {
        Py_INCREF(self);
        return self;
    }
    FieldDescrObject *f = (FieldDescrObject *)self;
    uint8_t *p = A + ((HandleObject *)obj)->base + f->offset;
    switch (f->kind) {
    case FK_BYTES:
        return PyBytes_FromStringAndSize((const char *)p, f->nbytes);
    case FK_BOOL:
        return PyBool_FromLong(*p != 0);
    case FK_INT8:
        return PyLong_FromLong(*(int8_t *)p);
    case FK_INT16:
        return PyLong_FromLong(*(int16_t *)p);
    case FK_INT32:
        return PyLong_FromLong(*(int32_t *)p);
    case FK_UINT8:
        return PyLong_FromUnsignedLong(*p);
    case FK_UINT16:
        return PyLong_FromUnsignedLong(*(uint16_t *)p);
    case FK_UINT32:
        return PyLong_FromUnsignedLong(*(uint32_t *)p);
    case FK_UINT64:
        return PyLong_FromUnsignedLongLong(*(uint64_t *)p);
    case FK_FLOAT32:
        return PyFloat_FromDouble((double)*(float *)p);
    }
    return word_load((int)f->kind, p);
}

/* A store into a sized integer field: a value outside the kind's range raises OverflowError
 * (Go would not compile the constant, and a run-time conversion would wrap silently; gorun
 * refuses instead of hiding the wrap). */
static int int_store(FieldDescrObject *f, uint8_t *p, PyObject *value)
{
    static const long long lo[FK_NKINDS] = {[FK_INT8] = INT8_MIN, [FK_INT16] = INT16_MIN, [FK_INT32] = INT32_MIN};
    static const long long hi[FK_NKINDS] = {[FK_INT8] = INT8_MAX,   [FK_INT16] = INT16_MAX,   [FK_INT32] = INT32_MAX,
                                            [FK_UINT8] = UINT8_MAX, [FK_UINT16] = UINT16_MAX, [FK_UINT32] = UINT32_MAX};
    if (!PyLong_Check(value)) {
        PyErr_Format(PyExc_TypeError, "field %U needs an int, not %.100s", f->name, Py_TYPE(value)->tp_name);
        return -1;
    }
    if (f->kind == FK_UINT64) {
        unsigned long long v = PyLong_AsUnsignedLongLong(value);
        if (v == (unsigned long long)-1 && PyErr_Occurred()) goto overflow;
        *(uint64_t *)p = v;
        return 0;
    }
    long long v = PyLong_AsLongLong(value);
    if (v == -1 && PyErr_Occurred()) goto overflow;
    if (v < lo[f->kind] || v > hi[f->kind]) goto overflow;
    switch (f->kind) {
    case FK_INT8:
    case FK_UINT8:
        *p = (uint8_t)v;
        return 0;
    case FK_INT16:
    case FK_UINT16:
        *(uint16_t *)p = (uint16_t)v;
        return 0;
    default: /* FK_INT32, FK_UINT32 */
        *(uint32_t *)p = (uint32_t)v;
        return 0;
    }
overflow:
    PyErr_Clear();
    {
        static const char *names[FK_NKINDS] = {[FK_INT8] = "int8",    [FK_INT16] = "int16",   [FK_INT32] = "int32",
                                               [FK_UINT8] = "uint8",  [FK_UINT16] = "uint16", [FK_UINT32] = "uint32",
                                               [FK_UINT64] = "uint64"};
        PyErr_Format(PyExc_OverflowError, "%R overflows field %U (%s)", value, f->name, names[f->kind]);
    }
    return -1;
}

static int FieldDescr_set(PyObject *self, PyObject *obj, PyObject *value)
{
    FieldDescrObject *f = (FieldDescrObject *)self;
    if (!value) {
        PyErr_Format(PyExc_AttributeError, "cannot delete gorun field %U", f->name);
        return -1;
    }
    uint8_t *p = A + ((HandleObject *)obj)->base + f->offset;
    switch (f->kind) {
    case FK_INT:
    case FK_FLOAT:
    case FK_PTR:
        return word_store((int)f->kind, p, value);
    case FK_BOOL:
        if (!PyBool_Check(value)) {
            PyErr_Format(PyExc_TypeError, "field %U is a bool, not %.100s", f->name, Py_TYPE(value)->tp_name);
            return -1;
        }
        *p = value == Py_True;
        return 0;
    case FK_INT8:
    case FK_INT16:
    case FK_INT32:
    case FK_UINT8:
    case FK_UINT16:
    case FK_UINT32:
    case FK_UINT64:
        return int_store(f, p, value);
    case FK_FLOAT32: {
        double v = PyFloat_AsDouble(value);
        if (v == -1.0 && PyErr_Occurred()) return -1;
        /* Go's float32(x): round to nearest even, +-Inf past the range (written out: an
         * out-of-range double-to-float cast is undefined behaviour in C) */
        if (isfinite(v) && fabs(v) > FLT_MAX)
            v = fabs(v) >= (double)FLT_MAX + 0x1p103 ? copysign(INFINITY, v) : copysign(FLT_MAX, v);
        *(float *)p = (float)v;
        return 0;
    }
    case FK_BYTES: {
        Py_buffer view;
        if (PyObject_GetBuffer(value, &view, PyBUF_SIMPLE) != 0) return -1;
        if ((size_t)view.len > f->nbytes) {
            PyErr_Format(PyExc_ValueError, "field %U holds %u bytes, got %zd", f->name, f->nbytes, view.len);
            PyBuffer_Release(&view);
            return -1;
        }
        memcpy(p, view.buf, (size_t)view.len);
        memset(p + view.len, 0, f->nbytes - (size_t)view.len);
        PyBuffer_Release(&view);
        return 0;
    }
    }
    PyErr_SetString(GorunError, "bad field kind");
    return -1;
}

static PyObject *FieldDescr_new(PyTypeObject *tp, PyObject *args, PyObject *kw)
{
    PyObject *name;
    unsigned int offset, kind, nbytes = 0;
    if (!PyArg_ParseTuple(args, "UII|I", &name, &offset, &kind, &nbytes)) return NULL;
    if (kind < FK_PTR || kind >= FK_NKINDS) {
        PyErr_Format(PyExc_ValueError, "bad field kind %u", kind);
        return NULL;
    }
    FieldDescrObject *f = (FieldDescrObject *)tp->tp_alloc(tp, 0);
    if (!f) return NULL;
    f->offset = offset + OBJ_HEADER_SIZE;
    f->kind = kind;
    f->nbytes = nbytes;
    Py_INCREF(name);
    f->name = name;
    return (PyObject *)f;
}

static void FieldDescr_dealloc(PyObject *self)
{
    Py_XDECREF(((FieldDescrObject *)self)->name);
    Py_TYPE(self)->tp_free(self);
}

static PyObject *FieldDescr_repr(PyObject *self)
{
    FieldDescrObject *f = (FieldDescrObject *)self;
    static const char *kinds[FK_NKINDS] = {"?",     "ptr",   "int",   "float",  "bytes",  "bool",   "int8",
                                           "int16", "int32", "uint8", "uint16", "uint32", "uint64", "float32"};
    return PyUnicode_FromFormat("<gorun field %U %s @+%u>", f->name, kinds[f->kind], f->offset - OBJ_HEADER_SIZE);
}

PyTypeObject FieldDescr_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "gorun.FieldDescr",
    .tp_basicsize = sizeof(FieldDescrObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "FieldDescr(name, offset, kind, nbytes=0): a field of a gorun struct type.",
    .tp_new = FieldDescr_new,
    .tp_dealloc = FieldDescr_dealloc,
    .tp_repr = FieldDescr_repr,
    .tp_descr_get = FieldDescr_get,
    .tp_descr_set = FieldDescr_set,
};

/* ---- arrays ---- */

static Py_ssize_t Array_len(PyObject *self) { return ((HandleObject *)self)->len; }

static inline uint8_t *array_elem(HandleObject *h, Py_ssize_t *i)
{
    /* CPython's sequence protocol has already added len to a negative index */
    if (*i < 0 || *i >= (Py_ssize_t)h->len) {
        PyErr_SetString(PyExc_IndexError, "gorun array index out of range");
        return NULL;
    }
    return A + h->base + h->dataoff + (uint64_t)*i * 8;
}

static PyObject *Array_item(PyObject *self, Py_ssize_t i)
{
    HandleObject *h = (HandleObject *)self;
    uint8_t *p = array_elem(h, &i);
    if (!p) return NULL;
    return word_load((int)type_of(h->tid)->elem_kind, p);
}

static int Array_ass_item(PyObject *self, Py_ssize_t i, PyObject *value)
{
    HandleObject *h = (HandleObject *)self;
    uint8_t *p = array_elem(h, &i);
    if (!p) return -1;
    if (!value) {
        PyErr_SetString(PyExc_TypeError, "cannot delete gorun array elements");
        return -1;
    }
    return word_store((int)type_of(h->tid)->elem_kind, p, value);
}

static int Array_getbuffer(PyObject *self, Py_buffer *view, int flags)
{
    HandleObject *h = (HandleObject *)self;
    int ek = type_of(h->tid)->elem_kind;
    if (ek == FK_PTR) {
        PyErr_SetString(PyExc_BufferError, "pointer arrays expose no buffer: stores must go through the write barrier");
        view->obj = NULL;
        return -1;
    }
    if (PyBuffer_FillInfo(view, self, A + h->base + h->dataoff, (Py_ssize_t)h->len * 8, 0, flags) != 0) return -1;
    view->itemsize = 8;
    view->format = (flags & PyBUF_FORMAT) ? (ek == FK_INT ? "q" : "d") : NULL;
    if (flags & PyBUF_ND) {
        h->shape = (Py_ssize_t)h->len;
        view->ndim = 1;
        view->shape = &h->shape;
        view->strides = (flags & PyBUF_STRIDES) == PyBUF_STRIDES ? &view->itemsize : NULL;
    }
    return 0;
}

static PySequenceMethods Array_as_sequence = {
    .sq_length = Array_len,
    .sq_item = Array_item,
    .sq_ass_item = Array_ass_item,
};

static PyBufferProcs Array_as_buffer = {.bf_getbuffer = Array_getbuffer};

PyTypeObject ArrayHandle_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "gorun.ArrayHandle",
    .tp_basicsize = sizeof(HandleObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A gorun array ([]int, []float or []*T): indexable; int/float arrays expose a buffer.",
    .tp_as_sequence = &Array_as_sequence,
    .tp_as_buffer = &Array_as_buffer,
    .tp_dealloc = Handle_dealloc,
};

/* ---- bytes ---- */

static Py_ssize_t Bytes_len(PyObject *self) { return ((HandleObject *)self)->len; }

static int Bytes_getbuffer(PyObject *self, Py_buffer *view, int flags)
{
    HandleObject *h = (HandleObject *)self;
    return PyBuffer_FillInfo(view, self, A + h->base + h->dataoff, (Py_ssize_t)h->len, 0, flags);
}

static PyObject *Bytes_bytes(PyObject *self, PyObject *unused)
{
    HandleObject *h = (HandleObject *)self;
    return PyBytes_FromStringAndSize((const char *)A + h->base + h->dataoff, h->len);
}

static PyObject *Bytes_write(PyObject *self, PyObject *args)
{
    HandleObject *h = (HandleObject *)self;
    Py_buffer view;
    Py_ssize_t off = 0;
    if (!PyArg_ParseTuple(args, "y*|n", &view, &off)) return NULL;
    if (off < 0 || off + view.len > (Py_ssize_t)h->len) {
        PyErr_Format(PyExc_ValueError, "write of %zd bytes at %zd overflows a %u-byte object", view.len, off, h->len);
        PyBuffer_Release(&view);
        return NULL;
    }
    memcpy(A + h->base + h->dataoff + off, view.buf, (size_t)view.len);
    PyBuffer_Release(&view);
    Py_RETURN_NONE;
}

static PyMethodDef Bytes_methods[] = {
    {"__bytes__", Bytes_bytes, METH_NOARGS, "copy the contents into a bytes object"},
    {"read", Bytes_bytes, METH_NOARGS, "copy the contents into a bytes object"},
    {"write", Bytes_write, METH_VARARGS, "write(data, offset=0): copy data into the object"},
    {NULL},
};

static PySequenceMethods Bytes_as_sequence = {.sq_length = Bytes_len};
static PyBufferProcs Bytes_as_buffer = {.bf_getbuffer = Bytes_getbuffer};

PyTypeObject BytesHandle_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "gorun.BytesHandle",
    .tp_basicsize = sizeof(HandleObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A gorun noscan byte buffer: len(), buffer protocol (memoryview), read(), write().",
    .tp_as_sequence = &Bytes_as_sequence,
    .tp_as_buffer = &Bytes_as_buffer,
    .tp_methods = Bytes_methods,
    .tp_dealloc = Handle_dealloc,
};

int handle_types_ready(PyObject *m)
{
    ArrayHandle_Type.tp_base = &Handle_Type;
    BytesHandle_Type.tp_base = &Handle_Type;
    if (PyType_Ready(&Handle_Type) < 0 || PyType_Ready(&ArrayHandle_Type) < 0 || PyType_Ready(&BytesHandle_Type) < 0 ||
        PyType_Ready(&FieldDescr_Type) < 0)
        return -1;
    if (PyModule_AddObjectRef(m, "Handle", (PyObject *)&Handle_Type) < 0 ||
        PyModule_AddObjectRef(m, "ArrayHandle", (PyObject *)&ArrayHandle_Type) < 0 ||
        PyModule_AddObjectRef(m, "BytesHandle", (PyObject *)&BytesHandle_Type) < 0 ||
        PyModule_AddObjectRef(m, "FieldDescr", (PyObject *)&FieldDescr_Type) < 0)
        return -1;
    return 0;
}
