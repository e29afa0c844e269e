/* The float32 row kernels of a decode step outside the quantized matmuls: RMS norm, rotary
 * positions and SwiGLU's silu(gate) * up. Each is one pass over its rows in place of the
 * four to ten NumPy calls (and temporaries) the NumPy backend's float32 path makes; large
 * inputs (prefill) are cut into parts on the thread pool. The arithmetic is that of the
 * reference (arrayq/_functional.py), in float32, operation for operation, except where a
 * comment says otherwise; docs/native-kernels.md states the precision of each.
 *
 * Compiled for the baseline instruction set (no per-level copies): these passes are a few
 * microseconds each and the call around them costs more. Products are not fused into FMAs
 * (FP_CONTRACT off below), so rope and the products of rms_norm and swiglu round as the
 * NumPy reference does.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"

#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

/* Elements from which a call is cut into parts on the thread pool (below: inline on the
 * calling thread, where a parallel call's hand-off costs about as much as the pass). */
#define ROWOPS_PARALLEL_MIN 32768

static int64_t parts_for(int64_t rows, int64_t elements) {
    return elements < ROWOPS_PARALLEL_MIN ? 1 : rows;
}

/* ---- rms_norm */

struct norm_task {
    const float *x, *w;
    float *out;
    int64_t rows, d, stride;
    double eps;
};

/* The sum of squares of a row in float64: four independent chains, no float32 rounding of
 * the squares or the sum (the reference sums in float32). */
static double sum_squares(const float *x, int64_t d) {
    double acc[4] = {0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 4 <= d; i += 4)
        for (int t = 0; t < 4; t++) acc[t] += (double)x[i + t] * (double)x[i + t];
    for (; i < d; i++) acc[0] += (double)x[i] * (double)x[i];
    return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

static void norm_part(void *ctx, int part, int parts) {
    const struct norm_task *t = ctx;
    for (int64_t r = t->rows * part / parts; r < t->rows * (part + 1) / parts; r++) {
        const float *x = t->x + r * t->stride;
        float *o = t->out + r * t->d;
        /* 1 / sqrt(mean + eps) in float64, rounded once to float32 (the reference: float32
         * mean, sqrt and division, each rounded) */
        const float inv = (float)(1.0 / sqrt(sum_squares(x, t->d) / (double)t->d + t->eps));
        if (t->w)
            for (int64_t i = 0; i < t->d; i++) o[i] = (x[i] * inv) * t->w[i];
        else
            for (int64_t i = 0; i < t->d; i++) o[i] = x[i] * inv;
    }
}

void rms_norm_rows(const float *x, int64_t stride, const float *w, float *out, int64_t rows, int64_t d, double eps) {
    struct norm_task task = {x, w, out, rows, d, stride, eps};
    run_parallel(norm_part, &task, parts_for(rows, rows * d));
}

/* ---- rope */

struct rope_task {
    const struct rows4 *x;
    const float *cos, *sin; /* (L, dims/2) */
    float *out;             /* (B, H, L, D), contiguous */
    int64_t dims;
    int traditional;
};

static void rope_row(const float *x, const float *c, const float *s, float *o, int64_t dims, int64_t d,
                     int traditional) {
    const int64_t half = dims / 2;
    if (traditional) { /* pairs (2i, 2i + 1) */
        for (int64_t i = 0; i < half; i++) {
            const float x1 = x[2 * i], x2 = x[2 * i + 1];
            o[2 * i] = x1 * c[i] - x2 * s[i];
            o[2 * i + 1] = x2 * c[i] + x1 * s[i];
        }
    } else { /* pairs (i, i + dims/2) */
        for (int64_t i = 0; i < half; i++) o[i] = x[i] * c[i] - x[i + half] * s[i];
        for (int64_t i = 0; i < half; i++) o[i + half] = x[i + half] * c[i] + x[i] * s[i];
    }
    if (d > dims) memcpy(o + dims, x + dims, (size_t)(d - dims) * sizeof(float));
}

static void rope_part(void *ctx, int part, int parts) {
    const struct rope_task *t = ctx;
    const struct rows4 *x = t->x;
    const int64_t H = x->shape[1], L = x->shape[2], D = x->shape[3], rows = x->shape[0] * H * L;
    for (int64_t r = rows * part / parts; r < rows * (part + 1) / parts; r++) {
        const int64_t b = r / (H * L), h = r / L % H, l = r % L;
        const float *row = (const float *)(x->buf + b * x->strides[0] + h * x->strides[1] + l * x->strides[2]);
        rope_row(row, t->cos + l * (t->dims / 2), t->sin + l * (t->dims / 2), t->out + r * D, t->dims, D,
                 t->traditional);
    }
}

void rope_rows(const struct rows4 *x, const float *cos, const float *sin, float *out, int64_t dims, int traditional) {
    struct rope_task task = {x, cos, sin, out, dims, traditional};
    const int64_t rows = x->shape[0] * x->shape[1] * x->shape[2];
    run_parallel(rope_part, &task, parts_for(rows, rows * x->shape[3]));
}

/* ---- swiglu */

typedef float vf8 __attribute__((vector_size(32)));
typedef int32_t vi8 __attribute__((vector_size(32)));

static inline __attribute__((always_inline)) vf8 load8(const float *p) {
    vf8 v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline __attribute__((always_inline)) vf8 select8(vi8 mask, vf8 yes, vf8 no) { return (vf8)((mask & (vi8)yes) | (~mask & (vi8)no)); }

/* exp(x) for x <= 0 (or NaN, which gives an unspecified finite value: callers carry NaN
 * through another operand), 8 lanes: x = n ln2 + r with |r| <= ln2/2 (ln2 in two parts, so
 * n ln2 is exact), exp(r) by a degree-7 polynomial (Cephes' expf coefficients), times 2^n
 * built in two halves so that results down to the smallest subnormal come out; exactly 0
 * below -104 (where float32's exp is 0). Within 2 ulp of exp over the float32 range
 * (tests/test_rowops.py measures it against float64). */
static inline __attribute__((always_inline)) vf8 exp_nonpositive(vf8 x) {
    const vi8 zero = x < -104.0f;
    x = select8(zero, (vf8){0} - 104.0f, x);
    const vi8 n = -__builtin_convertvector(0.5f - x * 1.44269504088896341f, vi8); /* round(x / ln2), x <= 0 */
    const vf8 fn = __builtin_convertvector(n, vf8);
    const vf8 r = (x - fn * 0.693359375f) - fn * -2.12194440e-4f;
    vf8 p = r * 1.9875691500e-4f + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = (p * (r * r) + r) + 1.0f;
    const vi8 n1 = n >> 1, n2 = n - n1; /* each >= -76: 2^n1 and 2^n2 are normal floats */
    p = p * (vf8)((n1 + 127) << 23) * (vf8)((n2 + 127) << 23);
    return select8(zero, (vf8){0}, p);
}

/* silu(g) * u for 8 lanes: the frontend's sigmoid, z = exp(-|g|), 1 / (1 + z) where g >= 0
 * and z / (1 + z) elsewhere, so that neither overflows */
static inline __attribute__((always_inline)) vf8 swiglu8(vf8 g, vf8 u) {
    const vf8 z = exp_nonpositive((vf8)((vi8)g | INT32_MIN)); /* -|g|: the sign bit set */
    const vf8 sig = select8(g >= 0.0f, (vf8){0} + 1.0f, z) / (z + 1.0f);
    return (g * sig) * u;
}

struct swiglu_task {
    const float *gate, *up;
    float *out;
    int64_t rows, n, gate_stride, up_stride;
};

/* An AVX2 copy beside the baseline one where the compiler makes such clones (GCC or Clang
 * on x86-64 Linux, chosen at load time by the CPU): the same operations, half the
 * instructions. */
#if defined(X86) && defined(__linux__) && defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define CLONES __attribute__((target_clones("avx2", "default")))
#else
#define CLONES
#endif

CLONES static void swiglu_part(void *ctx, int part, int parts) {
    const struct swiglu_task *t = ctx;
    for (int64_t r = t->rows * part / parts; r < t->rows * (part + 1) / parts; r++) {
        const float *g = t->gate + r * t->gate_stride, *u = t->up + r * t->up_stride;
        float *o = t->out + r * t->n;
        int64_t i = 0;
        for (; i + 16 <= t->n; i += 16) { /* two independent chains */
            const vf8 v0 = swiglu8(load8(g + i), load8(u + i)), v1 = swiglu8(load8(g + i + 8), load8(u + i + 8));
            memcpy(o + i, &v0, sizeof v0);
            memcpy(o + i + 8, &v1, sizeof v1);
        }
        for (; i + 8 <= t->n; i += 8) {
            const vf8 v = swiglu8(load8(g + i), load8(u + i));
            memcpy(o + i, &v, sizeof v);
        }
        if (i < t->n) { /* the last lanes, through a padded copy */
            float gt[8] = {0}, ut[8] = {0}, ot[8];
            memcpy(gt, g + i, (size_t)(t->n - i) * sizeof(float));
            memcpy(ut, u + i, (size_t)(t->n - i) * sizeof(float));
            const vf8 v = swiglu8(load8(gt), load8(ut));
            memcpy(ot, &v, sizeof v);
            memcpy(o + i, ot, (size_t)(t->n - i) * sizeof(float));
        }
    }
}

void swiglu_rows(const float *gate, int64_t gate_stride, const float *up, int64_t up_stride, float *out, int64_t rows,
                 int64_t n) {
    struct swiglu_task task = {gate, up, out, rows, n, gate_stride, up_stride};
    run_parallel(swiglu_part, &task, parts_for(rows, rows * n));
}
