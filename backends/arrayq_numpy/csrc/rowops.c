/* The float32 row kernels of a decode step outside the quantized matmuls: RMS norm, rotary
 * positions and SwiGLU's silu(gate) * up. Each is one pass over its rows in place of the
 * four to ten NumPy calls (and temporaries) the NumPy backend's float32 path makes. The
 * arithmetic is the reference's (arrayq/_functional.py) in float32, operation for
 * operation, except where a comment says otherwise; docs/native-kernels.md states the
 * precision of each. Products are not fused into FMAs (contraction off below), so rope and
 * the products of rms_norm and swiglu round as the NumPy reference does.
 *
 * qkv_heads_rows and add_rms_norm_rows run the same arithmetic as rms_norm then rope, and
 * an add then rms_norm, in one call each (bit for bit the unfused kernels' results).
 *
 * One copy for the baseline instruction set, plus AVX2 clones of rms_norm and swiglu (no
 * per-level copies: these passes are a few microseconds). They run on the calling thread:
 * parts on the thread pool measured slower for prefill's 32-row calls on the shared 2-core
 * machine, and these passes are a small share of prefill.
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
/* 32-byte vectors in the baseline copy: GCC notes that their calling convention differs
 * from AVX's, which does not matter here (the helpers are always inlined) */
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

/* CLONES: an AVX2 copy of a function beside the baseline one where the compiler makes such
 * clones (GCC or Clang on x86-64 Linux, chosen at load time by the CPU): the same
 * operations (no FMA: contraction is off), in wider vectors. */
#if defined(X86) && defined(__linux__) && defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define CLONES __attribute__((target_clones("avx2", "default")))
#else
#define CLONES
#endif

/* ---- rms_norm */

/* The sum of squares of a row in float64: four independent chains, no float32 rounding of
 * the squares or the sum (the reference sums in float32). */
static inline double sum_squares(const float *x, int64_t d) {
    double acc[4] = {0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 4 <= d; i += 4)
        for (int t = 0; t < 4; t++) acc[t] += (double)x[i + t] * (double)x[i + t];
    for (; i < d; i++) acc[0] += (double)x[i] * (double)x[i];
    return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

CLONES void rms_norm_rows(const float *xs, int64_t stride, const float *w, float *out, int64_t rows, int64_t d, double eps) {
    for (int64_t r = 0; r < rows; r++) {
        const float *x = xs + r * stride;
        float *o = out + r * d;
        /* 1 / sqrt(mean + eps) in float64, rounded once to float32 (the reference: float32
         * mean, sqrt and division, each rounded) */
        const float inv = (float)(1.0 / sqrt(sum_squares(x, d) / (double)d + eps));
        if (w)
            for (int64_t i = 0; i < d; i++) o[i] = (x[i] * inv) * w[i];
        else
            for (int64_t i = 0; i < d; i++) o[i] = x[i] * inv;
    }
}

/* ---- rope */

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

void rope_rows(const struct rows4 *x, const float *cos, const float *sin, float *out, int64_t dims, int traditional) {
    const int64_t H = x->shape[1], L = x->shape[2], D = x->shape[3], rows = x->shape[0] * H * L;
    for (int64_t r = 0; r < rows; r++) {
        const int64_t b = r / (H * L), h = r / L % H, l = r % L;
        const float *row = (const float *)(x->buf + b * x->strides[0] + h * x->strides[1] + l * x->strides[2]);
        rope_row(row, cos + l * (dims / 2), sin + l * (dims / 2), out + r * D, dims, D, traditional);
    }
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

CLONES void swiglu_rows(const float *gate, int64_t gate_stride, const float *up, int64_t up_stride, float *out,
                        int64_t rows, int64_t n) {
    for (int64_t r = 0; r < rows; r++) {
        const float *g = gate + r * gate_stride, *u = up + r * up_stride;
        float *o = out + r * n;
        int64_t i = 0;
        for (; i + 16 <= n; i += 16) { /* two independent chains */
            const vf8 v0 = swiglu8(load8(g + i), load8(u + i)), v1 = swiglu8(load8(g + i + 8), load8(u + i + 8));
            memcpy(o + i, &v0, sizeof v0);
            memcpy(o + i + 8, &v1, sizeof v1);
        }
        for (; i + 8 <= n; i += 8) {
            const vf8 v = swiglu8(load8(g + i), load8(u + i));
            memcpy(o + i, &v, sizeof v);
        }
        if (i < n) { /* the last lanes, through a padded copy */
            float gt[8] = {0}, ut[8] = {0}, ot[8];
            memcpy(gt, g + i, (size_t)(n - i) * sizeof(float));
            memcpy(ut, u + i, (size_t)(n - i) * sizeof(float));
            const vf8 v = swiglu8(load8(gt), load8(ut));
            memcpy(ot, &v, sizeof v);
            memcpy(o + i, ot, (size_t)(n - i) * sizeof(float));
        }
    }
}

/* ---- fused: a fused qkv projection's heads, and residual add + rms_norm */

int qkv_heads_rows(const float *qkv, int64_t stride, int64_t B, int64_t L, int64_t hq, int64_t hkv, int64_t d,
                   const float *qw, const float *kw, double eps, const float *cos, const float *sin, int64_t dims,
                   int traditional, float *q, float *k, float *v) {
    float *normed = malloc((size_t)(hq > hkv ? hq : hkv) * (size_t)d * sizeof(float));
    if (!normed) return -1;
    const int64_t half = dims / 2;
    for (int64_t b = 0; b < B; b++) {
        for (int64_t l = 0; l < L; l++) {
            const float *row = qkv + (b * L + l) * stride, *c = cos + l * half, *s = sin + l * half;
            /* each head as rms_norm_rows and rope_rows compute it, one after the other */
            rms_norm_rows(row, d, qw, normed, hq, d, eps);
            for (int64_t h = 0; h < hq; h++)
                rope_row(normed + h * d, c, s, q + ((b * hq + h) * L + l) * d, dims, d, traditional);
            rms_norm_rows(row + hq * d, d, kw, normed, hkv, d, eps);
            for (int64_t h = 0; h < hkv; h++)
                rope_row(normed + h * d, c, s, k + ((b * hkv + h) * L + l) * d, dims, d, traditional);
            for (int64_t h = 0; h < hkv; h++)
                memcpy(v + ((b * hkv + h) * L + l) * d, row + (hq + hkv + h) * d, (size_t)d * sizeof(float));
        }
    }
    free(normed);
    return 0;
}

CLONES void add_rms_norm_rows(const float *x, int64_t x_stride, const float *y, int64_t y_stride, const float *w,
                              float *sum, float *out, int64_t rows, int64_t d, double eps) {
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * x_stride, *yr = y + r * y_stride;
        float *sr = sum + r * d;
        for (int64_t i = 0; i < d; i++) sr[i] = xr[i] + yr[i];
    }
    rms_norm_rows(sum, d, w, out, rows, d, eps);
}

/* ---- float32 to float16 (a float16 KV cache's writes) */

#if defined(X86) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
/* F16C's conversion, rounding to nearest, ties to even (IEEE's, as NumPy's astype) */
__attribute__((target("avx,f16c"))) static void halves_f16c(const float *src, uint16_t *dst, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(dst + i), _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) dst[i] = (uint16_t)_mm_extract_epi16(_mm_cvtps_ph(_mm_set_ss(src[i]), _MM_FROUND_TO_NEAREST_INT), 0);
}
#endif

int64_t float_to_half(const float *src, uint16_t *dst, int64_t n) {
#if defined(X86) && (defined(__GNUC__) || defined(__clang__))
    if (!__builtin_cpu_supports("f16c")) return -1;
    int64_t nans = 0;
    for (int64_t i = 0; i < n; i++) nans += src[i] != src[i];
    if (nans) return nans; /* (NaN payloads: F16C's differ from NumPy's; the caller converts) */
    halves_f16c(src, dst, n);
    return 0;
#else
    (void)src, (void)dst, (void)n;
    return -1;
#endif
}
