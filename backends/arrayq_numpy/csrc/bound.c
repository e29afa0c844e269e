/* RepackedMatmul: a recorded plan's 8-bit-activation quantized_matmul step, bound once.
 *
 * The replay form of quantized_matmul (arrayq_numpy._native_forms) ran ~4.7 us of Python a
 * call around its kernel (a weakref call, the backend's cache, the activation setting, the
 * layout flags, np.empty, an 11-argument call whose layout was recomputed each time). This
 * object does the same checks in C with everything fixed at recording resolved once (the
 * level, the repacked layout, the output's shape), and calls `fallback(x)` (the backend's
 * method, in Python) wherever one fails, as the form did:
 *   - the repacked copy, held weakly, is gone (RepackedWeights.clear): after the fallback,
 *     `relookup()` gives (weakref, kind, symmetric) of the copy the method made, or None;
 *   - the backend holds another RepackedWeights, or the thread's activations are not int8;
 *   - x is not a plain C-contiguous, aligned float32 array of the recorded size;
 *   - the kernel reports a NaN or an infinity in x (the method's unfactored path then).
 * It holds no reference to anything that refers back to it (no cycles: no GC support).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <string.h>
#include <time.h>

#include "glue.h"
#include "kernels.h"

/* benchmarks/profile_*.py: time the kernel calls made here (1), or also write zeros instead
 * of running them (2: the time outside the kernels alone); bound_clock() sets it */
static int clock_mode;
static long long clock_ns, clock_calls;

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

typedef struct {
    PyObject_HEAD
    const struct level *lv;
    struct rq_layout layout;
    int64_t m;
    PyObject *ref;                    /* weakref to the repacked bytes */
    PyObject *backend, *cache;        /* backend.repacked must still be cache */
    PyObject *var, *default_mode;     /* the activations' context variable, and its default */
    PyObject *ndarray, *empty, *shape, *dtype;
    PyObject *fallback, *relookup;
    PyObject *qualname;
    vectorcallfunc vectorcall;
} RepackedMatmul;

/* the layout of (n, k, group_size, bits, kind, symmetric) at the bound level */
static int bind_layout(RepackedMatmul *self, int64_t n, int64_t k, int group_size, int bits, int kind, int symmetric) {
    return layout_of(self->lv, n, k, group_size, bits, kind, symmetric, &self->layout) ? 0 : -1;
}

/* whether the thread's activations are int8: the context variable's value, or the default
 * where it holds None (arrayq_numpy._native.current_activations) */
static int int8_now(RepackedMatmul *self) {
    PyObject *value;
    if (PyContextVar_Get(self->var, NULL, &value) < 0) return -1;
    PyObject *mode = value == NULL || value == Py_None ? self->default_mode : value;
    const int int8 = PyUnicode_Check(mode) && PyUnicode_CompareWithASCIIString(mode, "int8") == 0;
    Py_XDECREF(value);
    return int8;
}

static PyObject *fall_back(RepackedMatmul *self, PyObject *x) { return PyObject_CallOneArg(self->fallback, x); }

/* the copy is gone: the method's result, then the copy it made bound for the next call */
static PyObject *rebind_after(RepackedMatmul *self, PyObject *x) {
    PyObject *out = fall_back(self, x);
    if (!out) return NULL;
    PyObject *found = PyObject_CallNoArgs(self->relookup);
    PyObject *ref;
    int kind, symmetric;
    if (!found) goto fail;
    if (found != Py_None) {
        if (!PyArg_ParseTuple(found, "Oip", &ref, &kind, &symmetric) ||
            bind_layout(self, self->layout.n, self->layout.k, self->layout.group_size, self->layout.bits, kind,
                        symmetric) < 0)
            goto fail;
        Py_INCREF(ref);
        Py_SETREF(self->ref, ref);
    }
    Py_DECREF(found);
    return out;
fail:
    Py_XDECREF(found);
    Py_DECREF(out);
    return NULL;
}

static PyObject *call(PyObject *op, PyObject *const *args, size_t nargsf, PyObject *kwnames) {
    RepackedMatmul *self = (RepackedMatmul *)op;
    if (PyVectorcall_NARGS(nargsf) != 1 || kwnames) {
        PyErr_SetString(PyExc_TypeError, "a bound quantized_matmul takes one argument, x");
        return NULL;
    }
    PyObject *x = args[0], *data = PyWeakref_GetObject(self->ref);
    if (!data) return NULL;
    if (data == Py_None) return rebind_after(self, x);
    Py_INCREF(data); /* (held from here: nothing below may free the copy under us) */
    PyObject *repacked = PyObject_GetAttrString(self->backend, "repacked");
    if (!repacked) {
        Py_DECREF(data);
        return NULL;
    }
    Py_DECREF(repacked); /* (only its identity is compared) */
    const int int8 = int8_now(self);
    Py_buffer xv, dv, ov;
    const int64_t m = self->m, k = self->layout.k, n = self->layout.n;
    int plain = int8 > 0 && repacked == self->cache && Py_TYPE(x) == (PyTypeObject *)self->ndarray;
    if (plain && PyObject_GetBuffer(x, &xv, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
        PyErr_Clear(); /* (another layout: the method takes it) */
        plain = 0;
    } else if (plain && (xv.len != m * k * 4 || xv.itemsize != 4 || strcmp(xv.format, "f") || (uintptr_t)xv.buf % 4)) {
        PyBuffer_Release(&xv);
        plain = 0;
    }
    if (!plain) {
        Py_DECREF(data);
        return int8 < 0 ? NULL : fall_back(self, x);
    }
    const struct rq_layout layout = self->layout; /* (another thread may rebind it meanwhile) */
    PyObject *pair[2] = {self->shape, self->dtype};
    PyObject *out = PyObject_Vectorcall(self->empty, pair, 2, NULL);
    int held = 1;
    if (!out || PyObject_GetBuffer(data, &dv, PyBUF_C_CONTIGUOUS) < 0) goto fail;
    held = 2;
    if (dv.len < layout.total_bytes) {
        PyErr_SetString(PyExc_ValueError, "the repacked copy is smaller than its layout");
        goto fail;
    }
    if (PyObject_GetBuffer(out, &ov, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE) < 0) goto fail;
    held = 3;
    if (ov.len != m * n * 4 || (uintptr_t)ov.buf % 4) {
        PyErr_SetString(PyExc_ValueError, "the output is not of the recorded size");
        goto fail;
    }
    int status;
    const int mode = clock_mode;
    const long long t0 = mode ? now_ns() : 0;
    Py_BEGIN_ALLOW_THREADS if (mode == 2) {
        memset(ov.buf, 0, (size_t)ov.len);
        status = 0;
    }
    else status = gemv_repacked(self->lv, xv.buf, dv.buf, &layout, ov.buf, m);
    Py_END_ALLOW_THREADS if (mode) {
        clock_ns += now_ns() - t0;
        clock_calls++;
    }
    PyBuffer_Release(&ov);
    PyBuffer_Release(&dv);
    PyBuffer_Release(&xv);
    Py_DECREF(data);
    if (status < 0) {
        Py_DECREF(out);
        return PyErr_NoMemory();
    }
    if (status > 0) { /* NaN or inf in x */
        Py_DECREF(out);
        return fall_back(self, x);
    }
    return out;
fail:
    if (held >= 3) PyBuffer_Release(&ov);
    if (held >= 2) PyBuffer_Release(&dv);
    PyBuffer_Release(&xv);
    Py_DECREF(data);
    Py_XDECREF(out);
    return NULL;
}

static int init(PyObject *op, PyObject *args, PyObject *kwargs) {
    RepackedMatmul *self = (RepackedMatmul *)op;
    self->vectorcall = NULL; /* (callable again only once this succeeds) */
    int level_index, group_size, bits, kind, symmetric;
    long long m, n, k;
    PyObject *ref, *backend, *cache, *var, *default_mode, *ndarray, *empty, *shape, *dtype, *fallback, *relookup,
        *qualname;
    static char *names[] = {"level", "m", "n", "k", "group_size", "bits", "ref", "kind", "symmetric", "backend",
                            "cache", "activations", "default", "ndarray", "empty", "shape", "dtype", "fallback",
                            "relookup", "qualname", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "iLLLiiOipOOOOOOOOOOU", names, &level_index, &m, &n, &k,
                                     &group_size, &bits, &ref, &kind, &symmetric, &backend, &cache, &var,
                                     &default_mode, &ndarray, &empty, &shape, &dtype, &fallback, &relookup, &qualname))
        return -1;
    if (!PyWeakref_CheckRef(ref) || !PyType_Check(ndarray) || !PyContextVar_CheckExact(var) ||
        !PyCallable_Check(empty) || !PyCallable_Check(fallback) || !PyCallable_Check(relookup)) {
        PyErr_SetString(PyExc_TypeError, "RepackedMatmul: a weakref, a type, a ContextVar and callables are needed");
        return -1;
    }
    if (m < 1 || m > PY_SSIZE_T_MAX / 4 / (k > 0 ? k : 1) || m > PY_SSIZE_T_MAX / 4 / (n > 0 ? n : 1)) {
        PyErr_Format(PyExc_ValueError, "RepackedMatmul takes 1 or more rows of x, got m=%lld", m);
        return -1;
    }
    self->lv = level_at(level_index);
    if (!self->lv) {
        PyErr_Format(PyExc_ValueError, "level index %d out of range", level_index);
        return -1;
    }
    if (bind_layout(self, n, k, group_size, bits, kind, symmetric) < 0) return -1;
    self->m = m;
    PyObject **fields[] = {&self->ref,     &self->backend, &self->cache, &self->var,      &self->default_mode,
                           &self->ndarray, &self->empty,   &self->shape, &self->dtype,    &self->fallback,
                           &self->relookup, &self->qualname};
    PyObject *given[] = {ref, backend, cache, var, default_mode, ndarray, empty, shape, dtype, fallback, relookup,
                         qualname};
    for (size_t i = 0; i < sizeof given / sizeof *given; i++) {
        Py_INCREF(given[i]);
        Py_XSETREF(*fields[i], given[i]);
    }
    self->vectorcall = call;
    return 0;
}

static void dealloc(PyObject *op) {
    RepackedMatmul *self = (RepackedMatmul *)op;
    Py_XDECREF(self->ref);
    Py_XDECREF(self->backend);
    Py_XDECREF(self->cache);
    Py_XDECREF(self->var);
    Py_XDECREF(self->default_mode);
    Py_XDECREF(self->ndarray);
    Py_XDECREF(self->empty);
    Py_XDECREF(self->shape);
    Py_XDECREF(self->dtype);
    Py_XDECREF(self->fallback);
    Py_XDECREF(self->relookup);
    Py_XDECREF(self->qualname);
    Py_TYPE(op)->tp_free(op);
}

static PyMemberDef members[] = {
    {"__qualname__", T_OBJECT, offsetof(RepackedMatmul, qualname), READONLY, "the form's name, for profiles"},
    {"__vectorcalloffset__", T_PYSSIZET, offsetof(RepackedMatmul, vectorcall), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject RepackedMatmulType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "arrayq_numpy._kernels.RepackedMatmul",
    .tp_basicsize = sizeof(RepackedMatmul),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "RepackedMatmul(level, m, n, k, group_size, bits, ref, kind, symmetric, backend, cache, activations, "
              "default, ndarray, empty, shape, dtype, fallback, relookup, qualname): x -> x @ W.T with 8-bit "
              "activations from W's repacked copy, fallback(x) where a check fails (csrc/bound.c).",
    .tp_new = PyType_GenericNew,
    .tp_init = init,
    .tp_dealloc = dealloc,
    .tp_call = PyVectorcall_Call,
    .tp_vectorcall_offset = offsetof(RepackedMatmul, vectorcall),
    .tp_members = members,
};

/* RowsCall: a recorded plan's add_rms_norm, swiglu_halves or qkv_heads step, bound once
 * (the replay forms' ~4-6 us of Python a call: layout flags, reshapes, np.empty, the
 * kernel's argument parsing). Its inputs must be plain C-contiguous, aligned float32 arrays
 * of the recorded sizes, else `fallback(*args)` (the backend's method) runs; its weights
 * (float32, the plan's constants) are read where they lie, each call, so a write into
 * them is seen as the form saw it. qkv_heads' rotation tables come from `tables(offset)`. */
enum row_op { ADD_RMS_NORM, SWIGLU_HALVES, QKV_HEADS };

typedef struct {
    PyObject_HEAD
    int op, nargs, nout, traditional, weights;
    int64_t rows, d, B, L, hq, hkv, dims; /* add_rms_norm: rows x d; swiglu_halves: rows x 2d */
    double eps;
    Py_buffer w[2];                       /* the weights' buffers, held (weights of them) */
    PyObject *tables, *ndarray, *empty, *dtype, *shapes, *fallback, *qualname;
    vectorcallfunc vectorcall;
} RowsCall;

/* the input's buffer where it is a plain C-contiguous aligned float32 array of `bytes`;
 * 0 where not (no error set: the fallback takes it), -1 on error */
static int plain_input(RowsCall *self, PyObject *a, Py_buffer *view, int64_t bytes) {
    if (Py_TYPE(a) != (PyTypeObject *)self->ndarray) return 0;
    if (PyObject_GetBuffer(a, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
        PyErr_Clear();
        return 0;
    }
    if (view->len != bytes || view->itemsize != 4 || strcmp(view->format, "f") || (uintptr_t)view->buf % 4) {
        PyBuffer_Release(view);
        return 0;
    }
    return 1;
}

static PyObject *rows_call(PyObject *op, PyObject *const *args, size_t nargsf, PyObject *kwnames) {
    RowsCall *self = (RowsCall *)op;
    const Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (nargs != self->nargs || kwnames) {
        PyErr_Format(PyExc_TypeError, "a bound %U takes %d positional arguments", self->qualname, self->nargs);
        return NULL;
    }
    Py_buffer in[2], tab[2], outv[3];
    PyObject *outs[3] = {NULL, NULL, NULL}, *tables = NULL, *result = NULL;
    int ins = 0, tabs = 0, outn = 0, fell = 0;
    const int64_t width = self->op == QKV_HEADS ? (self->hq + 2 * self->hkv) * self->d : self->op == SWIGLU_HALVES ? 2 * self->d : self->d;
    for (; ins < (self->op == ADD_RMS_NORM ? 2 : 1); ins++) {
        const int got = plain_input(self, args[ins], &in[ins], self->rows * width * 4);
        if (got <= 0) {
            fell = got == 0;
            goto done;
        }
    }
    if (self->op == QKV_HEADS) {
        tables = PyObject_CallOneArg(self->tables, args[1]);
        if (!tables) goto done;
        if (!PyTuple_Check(tables) || PyTuple_GET_SIZE(tables) != 2) {
            PyErr_SetString(PyExc_TypeError, "tables(offset) must give (cos, sin)");
            goto done;
        }
        for (; tabs < 2; tabs++) {
            const int got = plain_input(self, PyTuple_GET_ITEM(tables, tabs), &tab[tabs], self->L * (self->dims / 2) * 4);
            if (got <= 0) {
                if (got == 0) PyErr_SetString(PyExc_ValueError, "the rotation tables are not of the recorded size");
                goto done;
            }
        }
    }
    for (; outn < self->nout; outn++) {
        PyObject *pair[2] = {PyTuple_GET_ITEM(self->shapes, outn), self->dtype};
        outs[outn] = PyObject_Vectorcall(self->empty, pair, 2, NULL);
        if (!outs[outn]) goto done;
        if (PyObject_GetBuffer(outs[outn], &outv[outn], PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE) < 0) {
            Py_CLEAR(outs[outn]);
            goto done;
        }
    }
    const float *w0 = self->weights > 0 ? self->w[0].buf : NULL, *w1 = self->weights > 1 ? self->w[1].buf : NULL;
    int failed = 0;
    Py_BEGIN_ALLOW_THREADS switch (self->op) {
    case ADD_RMS_NORM:
        add_rms_norm_rows(in[0].buf, self->d, in[1].buf, self->d, w0, outv[0].buf, outv[1].buf, self->rows, self->d,
                          self->eps);
        break;
    case SWIGLU_HALVES:
        swiglu_rows(in[0].buf, width, (const float *)in[0].buf + self->d, width, outv[0].buf, self->rows, self->d);
        break;
    default:
        failed = qkv_heads_rows(in[0].buf, width, self->B, self->L, self->hq, self->hkv, self->d, w0, w1, self->eps,
                                tab[0].buf, tab[1].buf, self->dims, self->traditional, outv[0].buf, outv[1].buf,
                                outv[2].buf);
    }
    Py_END_ALLOW_THREADS if (failed) {
        PyErr_NoMemory();
        goto done;
    }
    result = self->nout == 1 ? (Py_INCREF(outs[0]), outs[0]) : PyTuple_Pack(self->nout, outs[0], outs[1], outs[2]);
done:
    while (outn > 0) PyBuffer_Release(&outv[--outn]);
    for (int i = 0; i < 3; i++) Py_XDECREF(outs[i]);
    while (tabs > 0) PyBuffer_Release(&tab[--tabs]);
    Py_XDECREF(tables);
    while (ins > 0) PyBuffer_Release(&in[--ins]);
    return fell ? PyObject_Vectorcall(self->fallback, args, nargs, NULL) : result;
}

static void rows_release(RowsCall *self) {
    while (self->weights > 0) PyBuffer_Release(&self->w[--self->weights]);
}

static int rows_init(PyObject *op, PyObject *args, PyObject *kwargs) {
    RowsCall *self = (RowsCall *)op;
    self->vectorcall = NULL; /* (callable again only once this succeeds) */
    const char *name;
    long long rows, d, B = 0, L = 0, hq = 0, hkv = 0, dims = 0;
    int traditional = 0;
    double eps = 0;
    PyObject *weights, *tables = Py_None, *ndarray, *empty, *dtype, *shapes, *fallback, *qualname;
    static char *names[] = {"op", "rows", "d", "weights", "eps", "ndarray", "empty", "dtype", "shapes", "fallback",
                            "qualname", "B", "L", "hq", "hkv", "dims", "traditional", "tables", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "sLLO!dOOOO!OU|LLLLLpO", names, &name, &rows, &d, &PyTuple_Type,
                                     &weights, &eps, &ndarray, &empty, &dtype, &PyTuple_Type, &shapes, &fallback,
                                     &qualname, &B, &L, &hq, &hkv, &dims, &traditional, &tables))
        return -1;
    const int opn = !strcmp(name, "add_rms_norm") ? ADD_RMS_NORM : !strcmp(name, "swiglu_halves") ? SWIGLU_HALVES
                  : !strcmp(name, "qkv_heads") ? QKV_HEADS : -1;
    if (opn < 0) {
        PyErr_Format(PyExc_ValueError, "RowsCall binds add_rms_norm, swiglu_halves or qkv_heads, not %s", name);
        return -1;
    }
    const int nout = opn == ADD_RMS_NORM ? 2 : opn == SWIGLU_HALVES ? 1 : 3;
    const Py_ssize_t nweights = PyTuple_GET_SIZE(weights);
    int shapes_ok = PyTuple_GET_SIZE(shapes) == nout;
    for (int i = 0; shapes_ok && i < nout; i++) shapes_ok = PyTuple_Check(PyTuple_GET_ITEM(shapes, i));
    if (!shapes_ok || nweights > 2 || (opn == QKV_HEADS && nweights != 2) || !PyType_Check(ndarray) ||
        !PyCallable_Check(empty) || !PyCallable_Check(fallback) || (opn == QKV_HEADS && !PyCallable_Check(tables))) {
        PyErr_SetString(PyExc_TypeError, "RowsCall: shapes of its outputs, at most two weights (qkv_heads: two), a "
                                         "type and callables (qkv_heads: tables) are needed");
        return -1;
    }
    /* the sizes the kernels are called with, in elements: positive and without overflow */
    const int64_t width = opn == QKV_HEADS ? (hq + 2 * hkv) * d : opn == SWIGLU_HALVES ? 2 * d : d;
    int sizes_ok = rows >= 1 && d >= 1 && rows <= INT32_MAX && d <= INT32_MAX && width / 4 < INT32_MAX / rows;
    if (opn == QKV_HEADS)
        sizes_ok = sizes_ok && B >= 1 && L >= 1 && hq >= 1 && hkv >= 1 && hq <= INT32_MAX && hkv <= INT32_MAX &&
                   B * L == rows && dims > 0 && dims % 2 == 0 && dims <= d;
    if (!sizes_ok) {
        PyErr_SetString(PyExc_ValueError, "RowsCall: sizes that do not fit the kernel");
        return -1;
    }
    rows_release(self);
    for (Py_ssize_t i = 0; i < nweights; i++) {
        PyObject *w = PyTuple_GET_ITEM(weights, i);
        if (w == Py_None && opn != QKV_HEADS) break; /* (no weight: a plain norm) */
        if (PyObject_GetBuffer(w, &self->w[i], PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) return -1;
        self->weights++;
        if (self->w[i].len != d * 4 || strcmp(self->w[i].format, "f") || (uintptr_t)self->w[i].buf % 4) {
            rows_release(self);
            PyErr_SetString(PyExc_ValueError, "RowsCall: a weight must be a float32 (d,) C-contiguous array");
            return -1;
        }
    }
    self->op = opn;
    self->nargs = opn == SWIGLU_HALVES ? 1 : 2;
    self->nout = nout;
    self->rows = rows, self->d = d, self->B = B, self->L = L, self->hq = hq, self->hkv = hkv, self->dims = dims;
    self->traditional = traditional;
    self->eps = eps;
    PyObject **fields[] = {&self->tables, &self->ndarray, &self->empty, &self->dtype, &self->shapes, &self->fallback,
                           &self->qualname};
    PyObject *given[] = {tables, ndarray, empty, dtype, shapes, fallback, qualname};
    for (size_t i = 0; i < sizeof given / sizeof *given; i++) {
        Py_INCREF(given[i]);
        Py_XSETREF(*fields[i], given[i]);
    }
    self->vectorcall = rows_call;
    return 0;
}

static void rows_dealloc(PyObject *op) {
    RowsCall *self = (RowsCall *)op;
    rows_release(self);
    Py_XDECREF(self->tables);
    Py_XDECREF(self->ndarray);
    Py_XDECREF(self->empty);
    Py_XDECREF(self->dtype);
    Py_XDECREF(self->shapes);
    Py_XDECREF(self->fallback);
    Py_XDECREF(self->qualname);
    Py_TYPE(op)->tp_free(op);
}

static PyMemberDef rows_members[] = {
    {"__qualname__", T_OBJECT, offsetof(RowsCall, qualname), READONLY, "the form's name, for profiles"},
    {"__vectorcalloffset__", T_PYSSIZET, offsetof(RowsCall, vectorcall), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject RowsCallType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "arrayq_numpy._kernels.RowsCall",
    .tp_basicsize = sizeof(RowsCall),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "RowsCall(op, rows, d, weights, eps, ndarray, empty, dtype, shapes, fallback, qualname[, B, L, hq, "
              "hkv, dims, traditional, tables]): a bound add_rms_norm, swiglu_halves or qkv_heads (csrc/bound.c).",
    .tp_new = PyType_GenericNew,
    .tp_init = rows_init,
    .tp_dealloc = rows_dealloc,
    .tp_call = PyVectorcall_Call,
    .tp_vectorcall_offset = offsetof(RowsCall, vectorcall),
    .tp_members = rows_members,
};

/* PrefixAttention: a recorded plan's prefix_attention step (decode attention over the first
 * `length` keys of a cache), bound once. Per call, as the form read them: the key count
 * (an int of the length argument) from `low` to the recorded key count, the kernel's limits
 * (the module's ATTENTION_MAX_ROWS / ATTENTION_MAX_KEYS attributes, read each call), and
 * q, k, v plain arrays of the recorded shapes and dtypes whose last axis is contiguous,
 * aligned, with no negative stride (a cache's window qualifies); else `fallback(q, k, v,
 * length)`, the method (its error, its reference, or another layout). */
typedef struct {
    PyObject_HEAD
    const struct level *lv;
    int64_t q_shape[4], kv_shape[4], dv, low;
    int kv_itemsize, masked;
    float scale;
    PyObject *limits, *ndarray, *empty, *out_shape, *dtype, *fallback, *qualname;
    vectorcallfunc vectorcall;
} PrefixAttention;

/* a's buffer as rows4 where it is a plain array of `shape` (ndim 4), element size
 * `itemsize` (float32, or float16 where 2), last axis contiguous, aligned, strides >= 0
 * (and writable where asked); 0 where not (no error set) */
static int plain_rows4(PrefixAttention *self, PyObject *a, Py_buffer *view, struct rows4 *r, const int64_t *shape,
                       int itemsize, int writable) {
    if (Py_TYPE(a) != (PyTypeObject *)self->ndarray) return 0;
    if (PyObject_GetBuffer(a, view, PyBUF_RECORDS_RO | (writable ? PyBUF_WRITABLE : 0)) < 0) {
        PyErr_Clear();
        return 0;
    }
    int ok = view->ndim == 4 && view->itemsize == itemsize && !strcmp(view->format, itemsize == 4 ? "f" : "e") &&
             (uintptr_t)view->buf % itemsize == 0 && view->strides[3] == itemsize;
    for (int i = 0; ok && i < 4; i++) ok = view->shape[i] == shape[i] && view->strides[i] >= 0;
    if (!ok) {
        PyBuffer_Release(view);
        return 0;
    }
    r->buf = view->buf;
    r->itemsize = itemsize;
    for (int i = 0; i < 4; i++) r->shape[i] = view->shape[i], r->strides[i] = view->strides[i];
    return 1;
}

/* the module's limit `name` (a Python int), or -1 with an error set */
static long long limit_of(PyObject *module, const char *name) {
    PyObject *value = PyObject_GetAttrString(module, name);
    if (!value) return -1;
    const long long n = PyLong_AsLongLong(value);
    Py_DECREF(value);
    return n;
}

static PyObject *attention_call(PyObject *op, PyObject *const *args, size_t nargsf, PyObject *kwnames) {
    PrefixAttention *self = (PrefixAttention *)op;
    const Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (nargs != 4 || kwnames) {
        PyErr_SetString(PyExc_TypeError, "a bound prefix_attention takes q, k, v and the key count");
        return NULL;
    }
    PyObject *index = PyNumber_Index(args[3]);
    long long n = index ? PyLong_AsLongLong(index) : -1;
    Py_XDECREF(index);
    if (n == -1 && PyErr_Occurred()) PyErr_Clear(); /* (the method says what is wrong with it) */
    const long long max_rows = limit_of(self->limits, "ATTENTION_MAX_ROWS");
    const long long max_keys = max_rows < 0 ? -1 : limit_of(self->limits, "ATTENTION_MAX_KEYS");
    if (max_keys < 0 && PyErr_Occurred()) return NULL;
    if (n < self->low || n > self->kv_shape[2] || self->q_shape[2] > max_rows || n > max_keys)
        return PyObject_Vectorcall(self->fallback, args, nargs, NULL);
    Py_buffer views[4];
    struct rows4 r[4];
    int held = 0, got = 1;
    const int64_t *shapes[3] = {self->q_shape, self->kv_shape, self->kv_shape};
    const int64_t v_shape[4] = {self->kv_shape[0], self->kv_shape[1], self->kv_shape[2], self->dv};
    shapes[2] = v_shape;
    for (; held < 3; held++) {
        got = plain_rows4(self, args[held], &views[held], &r[held], shapes[held], held ? self->kv_itemsize : 4, 0);
        if (got <= 0) break;
    }
    PyObject *out = NULL, *result = NULL;
    if (got > 0) {
        PyObject *pair[2] = {self->out_shape, self->dtype};
        out = PyObject_Vectorcall(self->empty, pair, 2, NULL);
        const int64_t o_shape[4] = {self->q_shape[0], self->q_shape[1], self->q_shape[2], self->dv};
        if (out) got = plain_rows4(self, out, &views[3], &r[3], o_shape, 4, 1);
        if (!out || got <= 0) {
            if (out) PyErr_SetString(PyExc_ValueError, "empty() gave another array than asked for");
            got = -1; /* (an error, not the fallback) */
            goto done;
        }
        held = 4;
        r[1].shape[2] = r[2].shape[2] = n; /* the first n keys */
        int failed = 0;
        if (!attention_fits(&r[0], &r[1], &r[2], &r[3], self->masked)) {
            PyErr_SetString(PyExc_ValueError, "attention shapes do not fit");
            goto done;
        }
        Py_BEGIN_ALLOW_THREADS failed = attention(self->lv, &r[0], &r[1], &r[2], &r[3], self->scale, self->masked, NULL);
        Py_END_ALLOW_THREADS if (failed) PyErr_NoMemory();
        else result = (Py_INCREF(out), out);
    }
done:
    while (held > 0) PyBuffer_Release(&views[--held]);
    Py_XDECREF(out);
    if (got == 0) return PyObject_Vectorcall(self->fallback, args, nargs, NULL);
    return result;
}

static int attention_init(PyObject *op, PyObject *args, PyObject *kwargs) {
    PrefixAttention *self = (PrefixAttention *)op;
    self->vectorcall = NULL; /* (callable again only once this succeeds) */
    int level_index, kv_itemsize, masked;
    long long low;
    float scale;
    PyObject *q_shape, *kv_shape, *limits, *ndarray, *empty, *dtype, *fallback, *qualname;
    static char *names[] = {"level", "q_shape", "kv_shape", "dv", "kv_itemsize", "low", "scale", "masked", "limits",
                            "ndarray", "empty", "dtype", "fallback", "qualname", NULL};
    long long dv;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "iO!O!LiLfpOOOOOU", names, &level_index, &PyTuple_Type, &q_shape,
                                     &PyTuple_Type, &kv_shape, &dv, &kv_itemsize, &low, &scale, &masked, &limits,
                                     &ndarray, &empty, &dtype, &fallback, &qualname))
        return -1;
    self->lv = level_at(level_index);
    if (!self->lv) {
        PyErr_Format(PyExc_ValueError, "level index %d out of range", level_index);
        return -1;
    }
    int ok = PyTuple_GET_SIZE(q_shape) == 4 && PyTuple_GET_SIZE(kv_shape) == 4 && dv >= 1 && low >= 1 &&
             (kv_itemsize == 4 || kv_itemsize == 2);
    for (int i = 0; ok && i < 4; i++) {
        self->q_shape[i] = PyLong_AsLongLong(PyTuple_GET_ITEM(q_shape, i));
        self->kv_shape[i] = PyLong_AsLongLong(PyTuple_GET_ITEM(kv_shape, i));
        ok = self->q_shape[i] >= 1 && self->kv_shape[i] >= 1;
    }
    if (PyErr_Occurred()) return -1;
    if (!ok || !PyType_Check(ndarray) || !PyCallable_Check(empty) || !PyCallable_Check(fallback)) {
        PyErr_SetString(PyExc_ValueError, "PrefixAttention: 4-d shapes of positive sizes, dv >= 1, low >= 1, a "
                                          "float32 or float16 element size, a type and callables are needed");
        return -1;
    }
    self->dv = dv, self->low = low, self->kv_itemsize = kv_itemsize, self->masked = masked, self->scale = scale;
    PyObject *out_dims = Py_BuildValue("(LLLL)", self->q_shape[0], self->q_shape[1], self->q_shape[2], dv);
    if (!out_dims) return -1;
    PyObject **fields[] = {&self->limits, &self->ndarray, &self->empty, &self->dtype, &self->fallback,
                           &self->qualname};
    PyObject *given[] = {limits, ndarray, empty, dtype, fallback, qualname};
    for (size_t i = 0; i < sizeof given / sizeof *given; i++) {
        Py_INCREF(given[i]);
        Py_XSETREF(*fields[i], given[i]);
    }
    Py_XSETREF(self->out_shape, out_dims);
    self->vectorcall = attention_call;
    return 0;
}

static void attention_dealloc(PyObject *op) {
    PrefixAttention *self = (PrefixAttention *)op;
    Py_XDECREF(self->limits);
    Py_XDECREF(self->ndarray);
    Py_XDECREF(self->empty);
    Py_XDECREF(self->out_shape);
    Py_XDECREF(self->dtype);
    Py_XDECREF(self->fallback);
    Py_XDECREF(self->qualname);
    Py_TYPE(op)->tp_free(op);
}

static PyMemberDef attention_members[] = {
    {"__qualname__", T_OBJECT, offsetof(PrefixAttention, qualname), READONLY, "the form's name, for profiles"},
    {"__vectorcalloffset__", T_PYSSIZET, offsetof(PrefixAttention, vectorcall), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject PrefixAttentionType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "arrayq_numpy._kernels.PrefixAttention",
    .tp_basicsize = sizeof(PrefixAttention),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "PrefixAttention(level, q_shape, kv_shape, dv, kv_itemsize, low, scale, masked, limits, ndarray, "
              "empty, dtype, fallback, qualname): a bound prefix_attention (csrc/bound.c).",
    .tp_new = PyType_GenericNew,
    .tp_init = attention_init,
    .tp_dealloc = attention_dealloc,
    .tp_call = PyVectorcall_Call,
    .tp_vectorcall_offset = offsetof(PrefixAttention, vectorcall),
    .tp_members = attention_members,
};

/* bound_clock(mode) -> (ns, calls): the kernel time and calls of bound objects since the
 * last bound_clock call, which sets the mode: 0 off, 1 timed, 2 timed writing zeros */
PyObject *py_bound_clock(PyObject *module, PyObject *arg) {
    const long mode = PyLong_AsLong(arg);
    if (mode == -1 && PyErr_Occurred()) return NULL;
    if (mode < 0 || mode > 2) {
        PyErr_Format(PyExc_ValueError, "bound_clock takes 0 (off), 1 (timed) or 2 (timed, zeros), got %ld", mode);
        return NULL;
    }
    PyObject *out = Py_BuildValue("LL", clock_ns, clock_calls);
    clock_mode = (int)mode;
    clock_ns = clock_calls = 0;
    return out;
}

int add_bound_types(PyObject *module) {
    PyTypeObject *types[] = {&RepackedMatmulType, &RowsCallType, &PrefixAttentionType};
    const char *names[] = {"RepackedMatmul", "RowsCall", "PrefixAttention"};
    for (int i = 0; i < 3; i++) {
        if (PyType_Ready(types[i]) < 0) return -1;
        Py_INCREF(types[i]);
        if (PyModule_AddObject(module, names[i], (PyObject *)types[i]) < 0) {
            Py_DECREF(types[i]);
            return -1;
        }
    }
    return 0;
}
