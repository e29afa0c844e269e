/* arrayq_numpy._kernels: the Python glue of the native kernels (kernels.h lists the files).
 *
 * Python calls these through the buffer protocol with shapes passed explicitly; the
 * Python side (arrayq_numpy._native) has validated them, and this file checks buffer sizes
 * again so that a wrong call raises instead of reading out of bounds. The kernels run with
 * the GIL released.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "glue.h"
#include "kernels.h"

static const struct level *level_arg(int index) {
    const struct level *lv = level_at(index);
    if (!lv)
        PyErr_Format(PyExc_ValueError, "level index %d out of range: this CPU has %d levels", index, level_count());
    return lv;
}

/* a * b * c / divisor bytes; -1 with a ValueError set where the product overflows */
static Py_ssize_t byte_count(int64_t a, int64_t b, int64_t c, int64_t divisor) {
    int64_t ab, abc;
    if (__builtin_mul_overflow(a, b, &ab) || __builtin_mul_overflow(ab, c, &abc) || abc / divisor > PY_SSIZE_T_MAX) {
        PyErr_SetString(PyExc_ValueError, "array sizes overflow");
        return -1;
    }
    return (Py_ssize_t)(abc / divisor);
}

/* A C-contiguous buffer of at least `need` bytes whose start is aligned to `align` bytes;
 * need < 0 (an overflowed size, error set) fails at once. */
static int get_buffer(PyObject *obj, Py_buffer *view, Py_ssize_t need, int align, int writable, const char *what) {
    if (need < 0) return -1;
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | (writable ? PyBUF_WRITABLE : 0)) < 0) return -1;
    if (view->len < need) {
        PyErr_Format(PyExc_ValueError, "%s holds %zd bytes, need %zd", what, view->len, need);
        PyBuffer_Release(view);
        return -1;
    }
    if ((uintptr_t)view->buf % (uintptr_t)align) {
        PyErr_Format(PyExc_ValueError, "%s is not aligned to %d bytes", what, align);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

static int check_format(int64_t k, int group_size, int bits, int scale_kind) {
    if (bits < 1 || bits > 8 || group_size <= 0 || group_size % 32 || k <= 0 || k % group_size ||
        scale_kind < SCALE_F32 || scale_kind > SCALE_BF16) {
        PyErr_Format(PyExc_ValueError, "unsupported format: k=%lld group_size=%d bits=%d scale_kind=%d",
                     (long long)k, group_size, bits, scale_kind);
        return -1;
    }
    return 0;
}

static void release_buffers(Py_buffer *views, int n) {
    while (n > 0) PyBuffer_Release(&views[--n]);
}

/* The packed words, scales and biases of W's first `rows` rows as views[0..2], checked
 * for size and alignment; on failure none is held. */
static int get_weight_buffers(PyObject *packed, PyObject *scales, PyObject *biases, int64_t rows, int64_t k,
                              int group_size, int bits, int scale_kind, Py_buffer views[3]) {
    const int64_t groups = k / group_size, scale_bytes = scale_kind == SCALE_F32 ? 4 : 2;
    if (get_buffer(packed, &views[0], byte_count(rows, k, bits, 8), 1, 0, "packed") < 0) return -1;
    if (get_buffer(scales, &views[1], byte_count(rows, groups, scale_bytes, 1), (int)scale_bytes, 0, "scales") < 0) {
        release_buffers(views, 1);
        return -1;
    }
    if (get_buffer(biases, &views[2], byte_count(rows, groups, scale_bytes, 1), (int)scale_bytes, 0, "biases") < 0) {
        release_buffers(views, 2);
        return -1;
    }
    return 0;
}

/* W as the kernels read it, from get_weight_buffers' views */
static struct weight weight_of(const Py_buffer views[3], int64_t k, int group_size, int bits, int scale_kind) {
    const struct weight w = {views[0].buf, views[1].buf, views[2].buf, k, k * bits / 8, group_size, bits, 0, 0,
                             scale_kind};
    return w;
}

static PyObject *py_levels(PyObject *self, PyObject *args) {
    const int n_levels = level_count();
    PyObject *out = PyTuple_New(n_levels);
    for (int i = 0; out && i < n_levels; i++) PyTuple_SET_ITEM(out, i, PyUnicode_FromString(level_at(i)->name));
    return out;
}

static PyObject *py_num_threads(PyObject *self, PyObject *args) { return PyLong_FromLong(pool_threads()); }

static PyObject *py_set_num_threads(PyObject *self, PyObject *arg) {
    const long n = PyLong_AsLong(arg);
    if (n == -1 && PyErr_Occurred()) return NULL;
    if (n < 0 || n > MAX_THREADS) {
        PyErr_Format(PyExc_ValueError, "threads must be 0 (one per CPU) to %d, got %ld", MAX_THREADS, n);
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS set_pool_threads((int)n); /* waits for calls in flight */
    Py_END_ALLOW_THREADS Py_RETURN_NONE;
}

/* gemv(level, x, packed, scales, biases, out, m, n, k, group_size, bits, scale_kind[, int8]) */
static PyObject *py_gemv(PyObject *self, PyObject *args) {
    int level_index, group_size, bits, scale_kind, int8 = 0;
    long long m, n, k;
    PyObject *ox, *op, *os, *ob, *oo;
    if (!PyArg_ParseTuple(args, "iOOOOOLLLiii|p", &level_index, &ox, &op, &os, &ob, &oo, &m, &n, &k, &group_size,
                          &bits, &scale_kind, &int8))
        return NULL;
    const struct level *lv = level_arg(level_index);
    if (!lv || check_format(k, group_size, bits, scale_kind) < 0) return NULL;
    if (m < 1 || m > MAX_ROWS || n < 0) {
        PyErr_Format(PyExc_ValueError, "gemv takes 1 to %d rows of x and n >= 0, got m=%lld n=%lld", MAX_ROWS, m, n);
        return NULL;
    }
    Py_buffer x, wv[3], o;
    if (get_buffer(ox, &x, byte_count(m, k, 4, 1), 4, 0, "x") < 0) return NULL;
    if (get_weight_buffers(op, os, ob, n, k, group_size, bits, scale_kind, wv) < 0) goto fail_x;
    if (get_buffer(oo, &o, byte_count(m, n, 4, 1), 4, 1, "out") < 0) goto fail_w;
    const struct weight w = weight_of(wv, k, group_size, bits, scale_kind);
    int failed;
    Py_BEGIN_ALLOW_THREADS failed = gemv(lv, x.buf, w, o.buf, m, n, int8);
    Py_END_ALLOW_THREADS if (failed) {
        PyErr_NoMemory();
        goto fail_o;
    }
    PyBuffer_Release(&o);
    release_buffers(wv, 3);
    PyBuffer_Release(&x);
    Py_RETURN_NONE;
fail_o:
    PyBuffer_Release(&o);
fail_w:
    release_buffers(wv, 3);
fail_x:
    PyBuffer_Release(&x);
    return NULL;
}

/* dequantize(level, packed, scales, biases, out, row0, rows, k, group_size, bits, scale_kind):
 * rows [row0, row0 + rows) of W into out (rows, k) float32, columns in slot order. */
static PyObject *py_dequantize(PyObject *self, PyObject *args) {
    int level_index, group_size, bits, scale_kind;
    long long row0, rows, k;
    PyObject *op, *os, *ob, *oo;
    if (!PyArg_ParseTuple(args, "iOOOOLLLiii", &level_index, &op, &os, &ob, &oo, &row0, &rows, &k, &group_size,
                          &bits, &scale_kind))
        return NULL;
    const struct level *lv = level_arg(level_index);
    if (!lv || check_format(k, group_size, bits, scale_kind) < 0) return NULL;
    if (row0 < 0 || rows < 0) {
        PyErr_Format(PyExc_ValueError, "need row0 >= 0 and rows >= 0, got %lld and %lld", row0, rows);
        return NULL;
    }
    if (row0 > INT64_MAX - rows) {
        PyErr_SetString(PyExc_ValueError, "array sizes overflow");
        return NULL;
    }
    Py_buffer wv[3], o;
    if (get_weight_buffers(op, os, ob, row0 + rows, k, group_size, bits, scale_kind, wv) < 0) return NULL;
    if (get_buffer(oo, &o, byte_count(rows, k, 4, 1), 4, 1, "out") < 0) goto fail_w;
    const struct weight w = weight_of(wv, k, group_size, bits, scale_kind);
    int failed;
    Py_BEGIN_ALLOW_THREADS failed = dequantize(lv, w, o.buf, row0, rows);
    Py_END_ALLOW_THREADS if (failed) {
        PyErr_NoMemory();
        goto fail_o;
    }
    PyBuffer_Release(&o);
    release_buffers(wv, 3);
    Py_RETURN_NONE;
fail_o:
    PyBuffer_Release(&o);
fail_w:
    release_buffers(wv, 3);
    return NULL;
}

/* slot_order(level, k, group_size, bits) -> bytes of int64 (k,): the columns in slot
 * order, so that x[:, order] is x as the kernels read it */
static PyObject *py_slot_order(PyObject *self, PyObject *args) {
    int level_index, group_size, bits;
    long long k;
    if (!PyArg_ParseTuple(args, "iLii", &level_index, &k, &group_size, &bits)) return NULL;
    const struct level *lv = level_arg(level_index);
    if (!lv || check_format(k, group_size, bits, SCALE_F32) < 0) return NULL;
    const Py_ssize_t size = byte_count(k, 8, 1, 1);
    if (size < 0) return NULL;
    PyObject *out = PyBytes_FromStringAndSize(NULL, size);
    if (!out) return NULL;
    if (slot_order(lv, k, group_size, bits, (int64_t *)PyBytes_AS_STRING(out)) < 0) {
        Py_DECREF(out);
        return PyErr_NoMemory();
    }
    return out;
}

/* A float32 array of `ndim` axes whose last axis is contiguous (or of at most one element)
 * and whose other strides are non-negative multiples of 4 bytes. */
/* An ndim-d float32 array (or, where half_ok, float16: 2-byte elements, NumPy's format "e")
 * whose last axis is contiguous, aligned, with non-negative strides. */
static int get_rows_of(PyObject *obj, Py_buffer *view, int ndim, int writable, int half_ok, const char *what) {
    if (PyObject_GetBuffer(obj, view, PyBUF_RECORDS_RO | (writable ? PyBUF_WRITABLE : 0)) < 0) return -1;
    const Py_ssize_t size = view->itemsize;
    const int f32 = size == 4 && view->format && strcmp(view->format, "f") == 0;
    const int f16 = half_ok && size == 2 && view->format && strcmp(view->format, "e") == 0;
    int ok = view->ndim == ndim && (f32 || f16) && (uintptr_t)view->buf % size == 0 &&
             (view->shape[ndim - 1] <= 1 || view->strides[ndim - 1] == size);
    for (int i = 0; ok && i < ndim - 1; i++) ok = view->strides[i] >= 0 && view->strides[i] % size == 0;
    if (!ok) {
        PyErr_Format(PyExc_ValueError, "%s must be a %d-d float32%s array with a contiguous last axis", what, ndim,
                     half_ok ? " or float16" : "");
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

static int get_float_rows(PyObject *obj, Py_buffer *view, int ndim, int writable, const char *what) {
    return get_rows_of(obj, view, ndim, writable, 0, what);
}

/* A 4-d array as get_rows_of takes it, as (buffer, strides in bytes, element size). */
static int get_rows4(PyObject *obj, Py_buffer *view, struct rows4 *rows, int writable, int half_ok,
                     const char *what) {
    if (get_rows_of(obj, view, 4, writable, half_ok, what) < 0) return -1;
    rows->buf = view->buf;
    rows->itemsize = view->itemsize;
    for (int i = 0; i < 4; i++) {
        rows->shape[i] = view->shape[i];
        rows->strides[i] = view->strides[i];
    }
    return 0;
}

/* A C-contiguous float32 array of exactly `shape` (ndim axes), writable or not. */
static int get_exact(PyObject *obj, Py_buffer *view, int ndim, const Py_ssize_t *shape, int writable,
                     const char *what) {
    if (get_float_rows(obj, view, ndim, writable, what) < 0) return -1;
    int ok = PyBuffer_IsContiguous(view, 'C');
    for (int i = 0; ok && i < ndim; i++) ok = view->shape[i] == shape[i];
    if (!ok) {
        PyErr_Format(PyExc_ValueError, "%s must be a C-contiguous float32 array of the shape the call needs", what);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

/* rms_norm(x, weight, out, eps): x (rows, d) float32 rows with a contiguous last axis;
 * weight None or (d,); out (rows, d) C-contiguous */
static PyObject *py_rms_norm(PyObject *self, PyObject *args) {
    PyObject *ox, *ow, *oo;
    double eps;
    if (!PyArg_ParseTuple(args, "OOOd", &ox, &ow, &oo, &eps)) return NULL;
    Py_buffer x, w = {0}, o;
    if (get_float_rows(ox, &x, 2, 0, "x") < 0) return NULL;
    const Py_ssize_t rows = x.shape[0], d = x.shape[1];
    if (ow != Py_None && get_exact(ow, &w, 1, &d, 0, "weight") < 0) goto fail_x;
    if (get_exact(oo, &o, 2, x.shape, 1, "out") < 0) goto fail_w;
    Py_BEGIN_ALLOW_THREADS rms_norm_rows(x.buf, x.strides[0] / 4, w.buf, o.buf, rows, d, eps);
    Py_END_ALLOW_THREADS PyBuffer_Release(&o);
    if (w.buf) PyBuffer_Release(&w);
    PyBuffer_Release(&x);
    Py_RETURN_NONE;
fail_w:
    if (w.buf) PyBuffer_Release(&w);
fail_x:
    PyBuffer_Release(&x);
    return NULL;
}

/* rope(x, cos, sin, out, dims, traditional): x (B, H, L, D) float32 with a contiguous last
 * axis; cos, sin (L, dims/2) and out (B, H, L, D) C-contiguous; dims even, 0 < dims <= D */
static PyObject *py_rope(PyObject *self, PyObject *args) {
    PyObject *ox, *oc, *os, *oo;
    long long dims;
    int traditional;
    if (!PyArg_ParseTuple(args, "OOOOLp", &ox, &oc, &os, &oo, &dims, &traditional)) return NULL;
    Py_buffer x, c, s, o;
    struct rows4 rx;
    if (get_rows4(ox, &x, &rx, 0, 0, "x") < 0) return NULL;
    if (dims <= 0 || dims % 2 || dims > rx.shape[3]) {
        PyErr_Format(PyExc_ValueError, "rope dims %lld must be even, positive and at most %lld", dims,
                     (long long)rx.shape[3]);
        goto fail_x;
    }
    const Py_ssize_t table[2] = {x.shape[2], (Py_ssize_t)(dims / 2)};
    if (get_exact(oc, &c, 2, table, 0, "cos") < 0) goto fail_x;
    if (get_exact(os, &s, 2, table, 0, "sin") < 0) goto fail_c;
    if (get_exact(oo, &o, 4, x.shape, 1, "out") < 0) goto fail_s;
    Py_BEGIN_ALLOW_THREADS rope_rows(&rx, c.buf, s.buf, o.buf, dims, traditional);
    Py_END_ALLOW_THREADS PyBuffer_Release(&o);
    PyBuffer_Release(&s);
    PyBuffer_Release(&c);
    PyBuffer_Release(&x);
    Py_RETURN_NONE;
fail_s:
    PyBuffer_Release(&s);
fail_c:
    PyBuffer_Release(&c);
fail_x:
    PyBuffer_Release(&x);
    return NULL;
}

/* to_half(x, out) -> bool: out (n,) float16 = x (n,) float32 rounded to nearest, both
 * C-contiguous; False (out not written) where this CPU lacks F16C or x holds a NaN */
static PyObject *py_to_half(PyObject *self, PyObject *args) {
    PyObject *ox, *oo;
    if (!PyArg_ParseTuple(args, "OO", &ox, &oo)) return NULL;
    Py_buffer x, o;
    if (get_float_rows(ox, &x, 1, 0, "x") < 0) return NULL;
    if (get_rows_of(oo, &o, 1, 1, 1, "out") < 0) {
        PyBuffer_Release(&x);
        return NULL;
    }
    if (o.itemsize != 2 || o.shape[0] != x.shape[0]) {
        PyErr_SetString(PyExc_ValueError, "out must be a float16 array of x's length");
        PyBuffer_Release(&o);
        PyBuffer_Release(&x);
        return NULL;
    }
    int64_t done;
    Py_BEGIN_ALLOW_THREADS done = float_to_half(x.buf, o.buf, x.shape[0]);
    Py_END_ALLOW_THREADS PyBuffer_Release(&o);
    PyBuffer_Release(&x);
    return PyBool_FromLong(done == 0);
}

/* swiglu(gate, up, out): gate, up (rows, n) float32 rows with a contiguous last axis; out
 * (rows, n) C-contiguous */
static PyObject *py_swiglu(PyObject *self, PyObject *args) {
    PyObject *og, *ou, *oo;
    if (!PyArg_ParseTuple(args, "OOO", &og, &ou, &oo)) return NULL;
    Py_buffer g, u, o;
    if (get_float_rows(og, &g, 2, 0, "gate") < 0) return NULL;
    if (get_float_rows(ou, &u, 2, 0, "up") < 0) goto fail_g;
    if (u.shape[0] != g.shape[0] || u.shape[1] != g.shape[1]) {
        PyErr_SetString(PyExc_ValueError, "gate and up must have the same shape");
        goto fail_u;
    }
    if (get_exact(oo, &o, 2, g.shape, 1, "out") < 0) goto fail_u;
    Py_BEGIN_ALLOW_THREADS swiglu_rows(g.buf, g.strides[0] / 4, u.buf, u.strides[0] / 4, o.buf, g.shape[0], g.shape[1]);
    Py_END_ALLOW_THREADS PyBuffer_Release(&o);
    PyBuffer_Release(&u);
    PyBuffer_Release(&g);
    Py_RETURN_NONE;
fail_u:
    PyBuffer_Release(&u);
fail_g:
    PyBuffer_Release(&g);
    return NULL;
}

/* qkv_heads(qkv, q_weight, k_weight, cos, sin, q, k, v, eps, dims, traditional): qkv
 * (B*L, (H + 2 Hkv) * D) float32 rows with a contiguous last axis; q_weight, k_weight (D,);
 * cos, sin (L, dims/2); out q (B, H, L, D), k and v (B, Hkv, L, D), all C-contiguous */
static PyObject *py_qkv_heads(PyObject *self, PyObject *args) {
    PyObject *ox, *oqw, *okw, *oc, *os, *oq, *ok, *ov;
    double eps;
    long long dims;
    int traditional;
    if (!PyArg_ParseTuple(args, "OOOOOOOOdLp", &ox, &oqw, &okw, &oc, &os, &oq, &ok, &ov, &eps, &dims, &traditional))
        return NULL;
    Py_buffer views[8];
    int held = 0;
    if (get_float_rows(ox, &views[held], 2, 0, "qkv") < 0) return NULL;
    held++;
    if (get_float_rows(oq, &views[held], 4, 1, "q") < 0) goto fail;
    held++;
    const Py_ssize_t *qs = views[1].shape, rows = views[0].shape[0], width = views[0].shape[1];
    const Py_ssize_t B = qs[0], H = qs[1], L = qs[2], D = qs[3];
    const Py_ssize_t hkv = D > 0 ? (width / D - H) / 2 : 0;
    const Py_ssize_t kv_shape[4] = {B, hkv, L, D}, table[2] = {L, (Py_ssize_t)(dims / 2)};
    if (!PyBuffer_IsContiguous(&views[1], 'C') || D <= 0 || hkv < 1 || rows != B * L || width != (H + 2 * hkv) * D ||
        dims <= 0 || dims % 2 || dims > D) {
        PyErr_SetString(PyExc_ValueError, "qkv_heads shapes do not fit");
        goto fail;
    }
    if (get_exact(ok, &views[held], 4, kv_shape, 1, "k") < 0) goto fail;
    held++;
    if (get_exact(ov, &views[held], 4, kv_shape, 1, "v") < 0) goto fail;
    held++;
    if (get_exact(oqw, &views[held], 1, &D, 0, "q_weight") < 0) goto fail;
    held++;
    if (get_exact(okw, &views[held], 1, &D, 0, "k_weight") < 0) goto fail;
    held++;
    if (get_exact(oc, &views[held], 2, table, 0, "cos") < 0) goto fail;
    held++;
    if (get_exact(os, &views[held], 2, table, 0, "sin") < 0) goto fail;
    held++;
    int failed;
    Py_BEGIN_ALLOW_THREADS failed = qkv_heads_rows(views[0].buf, views[0].strides[0] / 4, B, L, H, hkv, D,
                                                   views[4].buf, views[5].buf, eps, views[6].buf, views[7].buf, dims,
                                                   traditional, views[1].buf, views[2].buf, views[3].buf);
    Py_END_ALLOW_THREADS release_buffers(views, held);
    if (failed) return PyErr_NoMemory();
    Py_RETURN_NONE;
fail:
    release_buffers(views, held);
    return NULL;
}

/* add_rms_norm(x, y, weight, sum, out, eps): x, y (rows, d) float32 rows with a contiguous
 * last axis; weight None or (d,); sum and out (rows, d) C-contiguous */
static PyObject *py_add_rms_norm(PyObject *self, PyObject *args) {
    PyObject *ox, *oy, *ow, *osum, *oo;
    double eps;
    if (!PyArg_ParseTuple(args, "OOOOOd", &ox, &oy, &ow, &osum, &oo, &eps)) return NULL;
    Py_buffer views[5]; /* x, y, sum, out, weight */
    int held = 0;
    if (get_float_rows(ox, &views[held], 2, 0, "x") < 0) return NULL;
    held++;
    const Py_ssize_t *shape = views[0].shape;
    if (get_float_rows(oy, &views[held], 2, 0, "y") < 0) goto fail;
    held++;
    if (views[1].shape[0] != shape[0] || views[1].shape[1] != shape[1]) {
        PyErr_SetString(PyExc_ValueError, "x and y must have the same shape");
        goto fail;
    }
    if (get_exact(osum, &views[held], 2, shape, 1, "sum") < 0) goto fail;
    held++;
    if (get_exact(oo, &views[held], 2, shape, 1, "out") < 0) goto fail;
    held++;
    if (ow != Py_None) {
        if (get_exact(ow, &views[held], 1, &shape[1], 0, "weight") < 0) goto fail;
        held++;
    }
    Py_BEGIN_ALLOW_THREADS add_rms_norm_rows(views[0].buf, views[0].strides[0] / 4, views[1].buf,
                                             views[1].strides[0] / 4, held > 4 ? views[4].buf : NULL, views[2].buf,
                                             views[3].buf, shape[0], shape[1], eps);
    Py_END_ALLOW_THREADS release_buffers(views, held);
    Py_RETURN_NONE;
fail:
    release_buffers(views, held);
    return NULL;
}

/* attention(level, q, k, v, out, scale, causal, lengths=None): see attention.c; q and out
 * float32, k and v both float32 or both float16; lengths: B int64 key counts (a bytes-like
 * object), each from 1 to S, with one query row */
static PyObject *py_attention(PyObject *self, PyObject *args) {
    int level_index, causal;
    float scale;
    PyObject *oq, *ok, *ov, *oo, *olengths = Py_None;
    if (!PyArg_ParseTuple(args, "iOOOOfp|O", &level_index, &oq, &ok, &ov, &oo, &scale, &causal, &olengths))
        return NULL;
    const struct level *lv = level_arg(level_index);
    if (!lv) return NULL;
    Py_buffer q, k, v, o, lens = {0};
    const int64_t *lengths = NULL;
    struct rows4 rq, rk, rv, ro;
    if (get_rows4(oq, &q, &rq, 0, 0, "q") < 0) return NULL;
    if (get_rows4(ok, &k, &rk, 0, 1, "k") < 0) goto fail_q;
    if (get_rows4(ov, &v, &rv, 0, 1, "v") < 0) goto fail_k;
    if (get_rows4(oo, &o, &ro, 1, 0, "out") < 0) goto fail_v;
    if (!attention_fits(&rq, &rk, &rv, &ro, causal)) {
        PyErr_SetString(PyExc_ValueError, "attention shapes do not fit (or k and v differ in dtype)");
        goto fail_o;
    }
    if (olengths != Py_None) {
        if (PyObject_GetBuffer(olengths, &lens, PyBUF_SIMPLE) < 0) goto fail_o;
        lengths = lens.buf;
        int ok_lengths = rq.shape[2] == 1 && !causal && lens.len == rq.shape[0] * (Py_ssize_t)sizeof(int64_t);
        for (int64_t b = 0; ok_lengths && b < rq.shape[0]; b++) ok_lengths = lengths[b] >= 1 && lengths[b] <= rk.shape[2];
        if (!ok_lengths) {
            PyErr_SetString(PyExc_ValueError, "lengths must be B int64 key counts from 1 to S, with one query row");
            goto fail_lens;
        }
    }
    int failed;
    Py_BEGIN_ALLOW_THREADS failed = attention(lv, &rq, &rk, &rv, &ro, scale, causal, lengths);
    Py_END_ALLOW_THREADS if (failed) {
        PyErr_NoMemory();
        goto fail_lens;
    }
    if (lengths) PyBuffer_Release(&lens);
    PyBuffer_Release(&o);
    PyBuffer_Release(&v);
    PyBuffer_Release(&k);
    PyBuffer_Release(&q);
    Py_RETURN_NONE;
fail_lens:
    if (lengths) PyBuffer_Release(&lens);
fail_o:
    PyBuffer_Release(&o);
fail_v:
    PyBuffer_Release(&v);
fail_k:
    PyBuffer_Release(&k);
fail_q:
    PyBuffer_Release(&q);
    return NULL;
}

/* int8_runs(level, bits, group_size) -> bool */
static PyObject *py_int8_runs(PyObject *self, PyObject *args) {
    int level_index, bits, group_size;
    if (!PyArg_ParseTuple(args, "iii", &level_index, &bits, &group_size)) return NULL;
    const struct level *lv = level_arg(level_index);
    if (!lv || check_format(group_size, group_size, bits, SCALE_F32) < 0) return NULL;
    return PyBool_FromLong(int8_runs(lv, bits, group_size));
}

/* the repacked layout of a format at a level; NULL with ValueError set for a bad format */
static const struct level *layout_arg(int level_index, long long n, long long k, int group_size, int bits,
                                      int scale_kind, int symmetric, struct rq_layout *L) {
    const struct level *lv = level_arg(level_index);
    return lv ? layout_of(lv, n, k, group_size, bits, scale_kind, symmetric, L) : NULL;
}

const struct level *layout_of(const struct level *lv, long long n, long long k, int group_size, int bits,
                              int scale_kind, int symmetric, struct rq_layout *L) {
    if (check_format(k, group_size, bits, scale_kind) < 0) return NULL;
    if (n < 0) {
        PyErr_Format(PyExc_ValueError, "need n >= 0, got %lld", n);
        return NULL;
    }
    if (rq_layout_of(lv, n, k, group_size, bits, scale_kind, symmetric, L) < 0) {
        PyErr_SetString(PyExc_ValueError, "array sizes overflow");
        return NULL;
    }
    return lv;
}

/* repacked_size(level, n, k, group_size, bits, scale_kind, symmetric) -> bytes of the layout */
static PyObject *py_repacked_size(PyObject *self, PyObject *args) {
    int level_index, group_size, bits, scale_kind, symmetric;
    long long n, k;
    struct rq_layout L;
    if (!PyArg_ParseTuple(args, "iLLiiip", &level_index, &n, &k, &group_size, &bits, &scale_kind, &symmetric))
        return NULL;
    if (!layout_arg(level_index, n, k, group_size, bits, scale_kind, symmetric, &L)) return NULL;
    return PyLong_FromLongLong(L.total_bytes);
}

/* repack(level, packed, scales, biases, out, n, k, group_size, bits, scale_kind, symmetric):
 * W in MLX's format into out (repacked_size bytes); biases is ignored where symmetric */
static PyObject *py_repack(PyObject *self, PyObject *args) {
    int level_index, group_size, bits, scale_kind, symmetric;
    long long n, k;
    PyObject *op, *os, *ob, *oo;
    struct rq_layout L;
    if (!PyArg_ParseTuple(args, "iOOOOLLiiip", &level_index, &op, &os, &ob, &oo, &n, &k, &group_size, &bits,
                          &scale_kind, &symmetric))
        return NULL;
    if (!layout_arg(level_index, n, k, group_size, bits, scale_kind, symmetric, &L)) return NULL;
    Py_buffer wv[3], o;
    if (get_weight_buffers(op, os, symmetric ? os : ob, n, k, group_size, bits, scale_kind, wv) < 0) return NULL;
    if (get_buffer(oo, &o, (Py_ssize_t)L.total_bytes, 1, 1, "out") < 0) {
        release_buffers(wv, 3);
        return NULL;
    }
    int failed;
    Py_BEGIN_ALLOW_THREADS failed = repack(&L, wv[0].buf, wv[1].buf, symmetric ? NULL : wv[2].buf, o.buf);
    Py_END_ALLOW_THREADS PyBuffer_Release(&o);
    release_buffers(wv, 3);
    if (failed) return PyErr_NoMemory();
    Py_RETURN_NONE;
}

/* gemv_repacked(level, x, data, out, m, n, k, group_size, bits, scale_kind, symmetric) */
static PyObject *py_gemv_repacked(PyObject *self, PyObject *args) {
    int level_index, group_size, bits, scale_kind, symmetric;
    long long m, n, k;
    PyObject *ox, *od, *oo;
    struct rq_layout L;
    if (!PyArg_ParseTuple(args, "iOOOLLLiiip", &level_index, &ox, &od, &oo, &m, &n, &k, &group_size, &bits,
                          &scale_kind, &symmetric))
        return NULL;
    const struct level *lv = layout_arg(level_index, n, k, group_size, bits, scale_kind, symmetric, &L);
    if (!lv) return NULL;
    if (m < 1) {
        PyErr_Format(PyExc_ValueError, "gemv_repacked takes 1 or more rows of x, got m=%lld", m);
        return NULL;
    }
    Py_buffer x, d, o;
    if (get_buffer(ox, &x, byte_count(m, k, 4, 1), 4, 0, "x") < 0) return NULL;
    if (get_buffer(od, &d, (Py_ssize_t)L.total_bytes, 1, 0, "data") < 0) goto fail_x;
    if (get_buffer(oo, &o, byte_count(m, n, 4, 1), 4, 1, "out") < 0) goto fail_d;
    int failed;
    Py_BEGIN_ALLOW_THREADS failed = gemv_repacked(lv, x.buf, d.buf, &L, o.buf, m);
    Py_END_ALLOW_THREADS PyBuffer_Release(&o);
    PyBuffer_Release(&d);
    PyBuffer_Release(&x);
    if (failed < 0) return PyErr_NoMemory();
    return PyBool_FromLong(failed == 0); /* False: x holds a NaN or an infinity */
fail_d:
    PyBuffer_Release(&d);
fail_x:
    PyBuffer_Release(&x);
    return NULL;
}

/* pool_probe(words, parts): the XOR of a buffer's whole 64-bit words, read on the pool
 * in at most `parts` parts (benchmarks/bench_decode_gemv.py: read bandwidth, and the cost
 * of an empty parallel call) */
static PyObject *py_pool_probe(PyObject *self, PyObject *args) {
    PyObject *ow;
    long long parts;
    if (!PyArg_ParseTuple(args, "OL", &ow, &parts)) return NULL;
    Py_buffer w;
    if (get_buffer(ow, &w, 0, 8, 0, "words") < 0) return NULL;
    uint64_t folded;
    Py_BEGIN_ALLOW_THREADS folded = pool_probe(w.buf, (int64_t)(w.len / 8), parts);
    Py_END_ALLOW_THREADS PyBuffer_Release(&w);
    return PyLong_FromUnsignedLongLong(folded);
}

static PyMethodDef methods[] = {
    {"levels", py_levels, METH_NOARGS, "SIMD levels this CPU runs, best first."},
    {"num_threads", py_num_threads, METH_NOARGS, "Threads a parallel call uses (the caller included)."},
    {"set_num_threads", py_set_num_threads, METH_O, "Set the thread count (0: one per CPU); restarts the pool."},
    {"gemv", py_gemv, METH_VARARGS, "out = x @ W.T for 1..8 rows of x (see csrc/kernels.c)."},
    {"int8_runs", py_int8_runs, METH_VARARGS, "Whether the 8-bit-activation kernel takes this format."},
    {"dequantize", py_dequantize, METH_VARARGS, "Rows of W as float32, columns in slot order (see csrc/kernels.c)."},
    {"repacked_size", py_repacked_size, METH_VARARGS, "Bytes of a weight in the repacked layout (csrc/repack.c)."},
    {"repack", py_repack, METH_VARARGS, "A weight in MLX's format into the repacked layout (csrc/repack.c)."},
    {"gemv_repacked", py_gemv_repacked, METH_VARARGS, "out = x @ W.T, 8-bit activations, W repacked; False where x is not finite."},
    {"slot_order", py_slot_order, METH_VARARGS, "The columns in slot order, as int64 bytes."},
    {"pool_probe", py_pool_probe, METH_VARARGS, "XOR of a buffer's words read on the pool (a probe)."},
    {"bound_clock", py_bound_clock, METH_O, "Time (and stub) the kernels of bound calls, for profiles (bound.c)."},
    {"attention", py_attention, METH_VARARGS, "Softmax attention for a few query rows (see csrc/attention.c)."},
    {"rms_norm", py_rms_norm, METH_VARARGS, "float32 RMS norm over rows (see csrc/rowops.c)."},
    {"rope", py_rope, METH_VARARGS, "float32 rotary positions from cos/sin tables (see csrc/rowops.c)."},
    {"to_half", py_to_half, METH_VARARGS, "float32 to float16, rounded to nearest (F16C; see csrc/rowops.c)."},
    {"swiglu", py_swiglu, METH_VARARGS, "float32 silu(gate) * up over rows (see csrc/rowops.c)."},
    {"qkv_heads", py_qkv_heads, METH_VARARGS, "float32 q/k/v heads of a fused projection, normed and rotated."},
    {"add_rms_norm", py_add_rms_norm, METH_VARARGS, "float32 x + y and its RMS norm over rows (see csrc/rowops.c)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_kernels", "arrayq's native quantized kernels.", -1,
                                    methods};

PyMODINIT_FUNC PyInit__kernels(void) {
    find_levels();
    pool_init();
    PyObject *m = PyModule_Create(&module);
    if (m && (PyModule_AddIntConstant(m, "MAX_ROWS", MAX_ROWS) < 0 || add_bound_types(m) < 0)) Py_CLEAR(m);
    return m;
}
