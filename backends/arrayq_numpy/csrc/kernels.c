/* The kernels of arrayq_numpy._kernels for MLX's affine quantized format, and the SIMD
 * levels they are compiled for.
 *
 * Two kernels, each over a range of weight rows:
 *   gemv        out (M, N) = x (M, K) @ W.T for M <= MAX_ROWS (decode), on a persistent
 *               thread pool (threadpool.c),
 *   dequantize  W rows as float32 (for prefill, where BLAS then does the matmul), on the
 *               calling thread.
 * W is given as MLX stores it: packed codes (N, K*bits/8 bytes), scales and biases
 * (N, K/group_size) in float32, float16 or bfloat16; W = scale * code + bias per group.
 * Arithmetic is float32 throughout (scales widened first).
 *
 * The arithmetic lives in kernels_simd.inc, compiled here once per SIMD level (AVX-512,
 * AVX2, and a portable level) and chosen at run time by what the CPU supports; callers may
 * ask for a lower level (the tests run every level the machine has). module.c has checked
 * every buffer before an entry point here runs.
 */
#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"

#define MAX_TILE 4 /* weight rows the decode kernel takes at once */
#define PASS_ROWS 4   /* rows of x one pass of the decode kernel takes, for more than MAX_ROWS / 2 rows */
#define BLOCK_ROWS 16 /* weight rows the passes share (in the core's cache) */
#ifndef PREFETCH_BYTES
#define PREFETCH_BYTES 2048 /* how far ahead the 8-bit-activation and dequantize loops read */
#endif
#ifndef PREFETCH_TILES
#define PREFETCH_TILES 2 /* how many tiles of rows ahead the decode kernel reads */
#endif

/* ------------------------------------------------------------------ scalar helpers */
float half_to_float(uint16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
    uint32_t bits;
    if (exp == 0x1f)
        bits = sign | 0x7f800000u | (mant << 13);
    else if (exp)
        bits = sign | ((exp + 112u) << 23) | (mant << 13);
    else if (mant == 0)
        bits = sign;
    else {
        const float f = (float)mant * 0x1p-24f; /* subnormal half */
        return sign ? -f : f;
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* dst[0:n] = float32 of src[start:start+n] (one row's scales or biases), the dtype switch
 * outside the loops so that each loop vectorizes. */
static inline void widen_row(float *dst, const void *src, int kind, int64_t start, int64_t n) {
    if (kind == SCALE_F32) {
        memcpy(dst, (const float *)src + start, (size_t)n * sizeof(float));
    } else if (kind == SCALE_BF16) { /* bfloat16 is the top half of a float32 */
        const uint16_t *h = (const uint16_t *)src + start;
        for (int64_t i = 0; i < n; i++) {
            const uint32_t bits = (uint32_t)h[i] << 16;
            memcpy(dst + i, &bits, 4);
        }
    } else {
        const uint16_t *h = (const uint16_t *)src + start;
        for (int64_t i = 0; i < n; i++) dst[i] = half_to_float(h[i]);
    }
}

/* One row of codes, any bit width, as one byte per code (natural order). MLX's row is a
 * little-endian bit stream, so every `bits` bytes hold exactly 8 codes. */
void unpack_row(const uint8_t *src, int bits, int64_t k, uint8_t *dst) {
    const uint64_t mask = (1u << bits) - 1u;
    for (int64_t i = 0; i < k; i += 8, src += bits) {
        uint64_t word = 0;
        for (int b = 0; b < bits; b++) word |= (uint64_t)src[b] << (8 * b);
        for (int c = 0; c < 8; c++) dst[i + c] = (uint8_t)((word >> (bits * c)) & mask);
    }
}

/* ------------------------------------------------------------------ jobs */
/* Scratch for one weight row: its codes unpacked to bytes (k), then its scales and biases as
 * float32 (2 * k / group_size), float-aligned. */
static size_t work_bytes(int64_t k, int group_size) {
    return (size_t)k + 2 * (size_t)(k / group_size) * sizeof(float);
}

/* Row r of W ready for a kernel, laid out in `work` (work_bytes(k, group_size)): its codes
 * (unpacked there where the format needs it, else read where they are), and its scales and
 * biases widened to float32. */
struct row {
    const uint8_t *codes;
    float *scales, *biases;
};

static inline struct row prepare_row(const struct weight *w, int64_t r, uint8_t *work) {
    const int64_t G = w->k / w->group_size;
    struct row row = {w->packed + r * w->row_bytes, (float *)(work + w->k), (float *)(work + w->k) + G};
    if (w->unpack) {
        unpack_row(row.codes, w->bits, w->k, work);
        row.codes = work;
    }
    widen_row(row.scales, w->scales, w->scale_kind, r * G, G);
    widen_row(row.biases, w->biases, w->scale_kind, r * G, G);
    return row;
}

struct gemv_job {
    const float *xp;     /* (M, K) x in slot order */
    const float *xsum;   /* (M, G) x summed per group */
    const int8_t *xq;    /* 8-bit activations: (M, K) int8 codes of x, in byte slot order */
    const float *xscale; /* 8-bit activations: (M, G) their scales, x ~ xscale * xq */
    struct weight w;
    float *out; /* (M, N) */
    int64_t m, n;
};

struct dequant_job {
    struct weight w;
    float *out; /* (rows, K), columns in slot order */
    int64_t row0;
};

/* ------------------------------------------------------------------ the levels */
#ifdef X86
#include <cpuid.h>
#include <immintrin.h>
#ifdef __clang__
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,fma,f16c"))), \
                             apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,fma,f16c")
#endif
#define LEVEL avx512
#define VW 16
#define RQ_PASS_ROWS 8 /* 32 vector registers: 8 rows' accumulators stay in them */
#define WIDEN_BYTES(p) _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(p)))
#define IB 32
#define INT8_MAX_BITS 8
#define DOT_U8S8(acc, a, b) _mm256_dpbusd_epi32((__m256i)(acc), (__m256i)(a), (__m256i)(b))
#define DOT_U8S8_AT(acc, a, x) dpbusd_at_avx512((acc), (__m256i)(a), (x))
#define HALF_TO_FLOAT_IB(p) _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p)))
#define LOAD_HALF_F(p) _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p))) /* 16 halves */
/* DOT_U8S8 with b the four bytes at x broadcast to every lane, as the instruction's own
 * broadcast memory operand: GCC 12 emits a separate broadcast then the dot product, which
 * at 8 rows of x is nearly half the instructions of the repacked kernel's inner loop */
/* the accumulators' own type (int32 lanes): on __m256i (int64 lanes) GCC copied every
 * accumulator into and out of the asm's register on every word */
typedef int32_t v8si_avx512 __attribute__((vector_size(32)));
static inline __attribute__((always_inline)) v8si_avx512 dpbusd_at_avx512(v8si_avx512 acc, __m256i a,
                                                                          const int8_t *x) {
    __asm__("vpdpbusd %2%{1to8%}, %1, %0" : "+v"(acc) : "v"(a), "m"(*(const int32_t *)x));
    return acc;
}
/* rq_body on 512-bit vectors: two tiles a pass (RQ_PAIR), each of the four activation codes
 * broadcast to all 16 lanes by the instruction ({1to16}) */
#define RQ_PAIR
#define DOT_U8S8_AT2(acc, a, x) dpbusd2_at_avx512((acc), (a), (x))
typedef int32_t v16si_avx512 __attribute__((vector_size(64)));
typedef uint8_t v64qu_avx512 __attribute__((vector_size(64)));
static inline __attribute__((always_inline)) v16si_avx512 dpbusd2_at_avx512(v16si_avx512 acc, v64qu_avx512 a,
                                                                            const int8_t *x) {
    __asm__("vpdpbusd %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(a), "m"(*(const int32_t *)x));
    return acc;
}
#include "kernels_simd.inc"
#undef LEVEL
#undef VW
#undef RQ_PASS_ROWS
#undef RQ_PAIR
#undef DOT_U8S8_AT2
#undef DOT_U8S8_AT
#undef WIDEN_BYTES
#undef IB
#undef INT8_MAX_BITS
#undef DOT_U8S8
#undef HALF_TO_FLOAT_IB
#undef LOAD_HALF_F
#ifdef __clang__
#pragma clang attribute pop
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC pop_options
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
#endif
#define LEVEL avx2
#define VW 8
#define WIDEN_BYTES(p) _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(p)))
#define IB 32
/* pairs of u8*s8 products sum into int16 (saturating): codes up to 63 keep 2*63*127 in range */
#define INT8_MAX_BITS 6
#define DOT_U8S8(acc, a, b) \
    _mm256_add_epi32((__m256i)(acc), _mm256_madd_epi16(_mm256_maddubs_epi16((__m256i)(a), (__m256i)(b)), _mm256_set1_epi16(1)))
/* pairs of u8*s8 products summed into 16-bit lanes (the caller keeps them in range), and
 * 16-bit lanes summed in pairs into 32-bit ones: the repacked kernel's integer dot */
#define PAIRS_U8S8(a, b) _mm256_maddubs_epi16((__m256i)(a), (__m256i)(b))
#define PAIRS_S8S8(a, b) _mm256_maddubs_epi16(_mm256_abs_epi8((__m256i)(a)), _mm256_sign_epi8((__m256i)(b), (__m256i)(a)))
#define PAIRS_TO_32(v) _mm256_madd_epi16((__m256i)(v), _mm256_set1_epi16(1))
/* signed a: |a| times b with a's sign (|a| <= 128, |b| <= 127: pairs stay within int16) */
#define DOT_S8S8(acc, a, b) DOT_U8S8(acc, _mm256_abs_epi8((__m256i)(a)), _mm256_sign_epi8((__m256i)(b), (__m256i)(a)))
#define HALF_TO_FLOAT_IB(p) _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p)))
#define LOAD_HALF_F HALF_TO_FLOAT_IB /* (8 halves: a vector of this level) */
#include "kernels_simd.inc"
#undef LEVEL
#undef VW
#undef LOAD_HALF_F
#undef WIDEN_BYTES
#undef IB
#undef INT8_MAX_BITS
#undef DOT_U8S8
#undef DOT_S8S8
#undef PAIRS_U8S8
#undef PAIRS_S8S8
#undef PAIRS_TO_32
#undef HALF_TO_FLOAT_IB
#ifdef __clang__
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif

/* the portable level: 4 lanes (SSE2 on x86-64, NEON on arm64, plain C elsewhere) */
#define LEVEL portable
#define VW 4
#define IB 16
#define INT8_MAX_BITS 8
#include "kernels_simd.inc"
#undef LEVEL
#undef VW
#undef IB
#undef INT8_MAX_BITS

static const struct level *levels[4];
static int n_levels;

#ifdef X86
/* CPU features from cpuid, and whether the OS saves the vector registers (xgetbv):
 * the compilers' __builtin_cpu_supports needs their own runtime library, which a Clang
 * build does not always link (it then reports nothing). */
static int cpu_has(int avx512) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    const int fma = (c >> 12) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, f16c = (c >> 29) & 1;
    if (!(fma && osxsave && avx && f16c)) return 0;
    unsigned xcr0_lo, xcr0_hi;
    __asm__ volatile("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
    if ((xcr0_lo & 0x6) != 0x6) return 0; /* SSE and AVX state */
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    const int avx2 = (b >> 5) & 1;
    if (!avx512) return avx2;
    const int f = (b >> 16) & 1, dq = (b >> 17) & 1, bw = (b >> 30) & 1, vl = (b >> 31) & 1, vnni = (c >> 11) & 1;
    return avx2 && f && dq && bw && vl && vnni && (xcr0_lo & 0xe0) == 0xe0; /* opmask and zmm state */
}
#endif

void find_levels(void) {
    n_levels = 0;
#ifdef X86
    if (cpu_has(1)) levels[n_levels++] = &level_avx512;
    if (cpu_has(0)) levels[n_levels++] = &level_avx2;
#endif
    levels[n_levels++] = &level_portable;
}

/* Codes are read in slot order when a chunk of VW bytes (E = VW * 8/bits codes) fits a
 * group; other widths and shapes go through unpack_row to one byte per code (8 bits). */
static int slot_bits_for(const struct level *lv, int bits, int group_size) {
    if (8 % bits == 0 && group_size % (lv->lanes * (8 / bits)) == 0) return bits;
    return 8;
}

/* The same for the 8-bit-activation kernel (chunks of int8_bytes); 0 where it cannot run
 * (codes wider than its dot product takes), and the float32 kernel runs instead. */
static int int8_slot_bits_for(const struct level *lv, int bits, int group_size) {
    if (bits > lv->int8_max_bits) return 0;
    if (8 % bits == 0 && group_size % (lv->int8_bytes * (8 / bits)) == 0) return bits;
    return group_size % lv->int8_bytes == 0 ? 8 : 0;
}

/* dst = src (k values) with its columns in slot order: within each chunk of E = lanes * P
 * columns, column i*P + t goes to t*lanes + i. */
#define DEFINE_TO_SLOT_ORDER(name, type)                                                      \
    static void name(type *dst, const type *src, int64_t k, int lanes, int slot_bits) {      \
        const int P = 8 / slot_bits, E = lanes * P;                                          \
        for (int64_t base = 0; base < k; base += E)                                          \
            for (int i = 0; i < lanes; i++)                                                  \
                for (int t = 0; t < P; t++) dst[base + t * lanes + i] = src[base + i * P + t]; \
    }
DEFINE_TO_SLOT_ORDER(to_slot_order, float)
DEFINE_TO_SLOT_ORDER(to_slot_order_i8, int8_t)
DEFINE_TO_SLOT_ORDER(to_slot_order_i64, int64_t)

/* x (k values) as int8 codes per group, xi = round(x / dx) half to even with dx =
 * max|x_g| / 127 (dx = 0 and codes 0 for an all-zero group; dx NaN for a group holding a
 * NaN), codes in natural order. Written without libm calls so that the compiler vectorizes
 * both loops (decode quantizes x once per matmul; fmaxf and lrintf per element cost more
 * than the 8-bit kernel's reading of a small weight): |x| is compared as its bits (for
 * floats without a sign those order as the values do, NaN above infinity), and adding and
 * subtracting 1.5 * 2^23 rounds a float below 2^22 in magnitude half to even. The product
 * x / dx is rounded to float32 first, as lrintf's argument was: no fused multiply-add
 * (GCC contracts across statements unless told not to; Clang only within one). */
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("fp-contract=off")))
#endif
static void quantize_activations(int8_t *xi, float *dx, const float *x, int64_t k, int group_size) {
    const float shifter = 12582912.0f; /* 1.5 * 2^23 */
    for (int64_t g = 0; g < k / group_size; g++) {
        const float *xg = x + g * group_size;
        int32_t top = 0; /* the largest |x| of the group, as bits */
        for (int i = 0; i < group_size; i++) {
            int32_t bits;
            memcpy(&bits, xg + i, 4);
            bits &= 0x7fffffff;
            top = bits > top ? bits : top;
        }
        float amax;
        memcpy(&amax, &top, 4);
        dx[g] = amax / 127.0f; /* NaN where x is: the group's result is NaN, as in float32 */
        /* an infinite or NaN amax: codes 0 (the result is inf or NaN through dx) */
        const float inv = amax > 0.0f && top < 0x7f800000 ? 127.0f / amax : 0.0f;
        for (int i = 0; i < group_size; i++) {
            const float scaled = xg[i] * inv;
            const float code = (scaled + shifter) - shifter; /* |code| <= 127 */
            xi[g * group_size + i] = (int8_t)(code == code ? (int32_t)code : 0);
        }
    }
}

void int8_activations(const float *x, int64_t m, int64_t k, int group_size, int8_t *xq, float *xscale, float *xsum) {
    const int64_t groups = k / group_size;
    for (int64_t r = 0; r < m; r++) {
        quantize_activations(xq + r * k, xscale + r * groups, x + r * k, k, group_size);
        /* the sum of the dequantized codes for the biases: then the rounding error of x
         * meets s*q + b, not s*q alone (whose mean is far from zero), which is ~3x more
         * accurate for MLX's weights (measured) */
        for (int64_t g = 0; g < groups; g++) {
            int32_t codes = 0;
            for (int64_t c = g * group_size; c < (g + 1) * group_size; c++) codes += xq[r * k + c];
            xsum[r * groups + g] = (float)codes * xscale[r * groups + g];
        }
    }
}

/* ------------------------------------------------------------------ tasks and entry points */
struct gemv_task {
    const struct level *lv;
    const struct gemv_job *job;
    int int8;
    atomic_int out_of_memory; /* a part could not get its scratch: the call raises */
};

static void gemv_part(void *ctx, int part, int parts) {
    const struct gemv_task *t = ctx;
    const int64_t n = t->job->n, r0 = n * part / parts, r1 = n * (part + 1) / parts;
    if (r1 <= r0) return;
    uint8_t *buf = malloc(MAX_TILE * work_bytes(t->job->w.k, t->job->w.group_size));
    if (!buf) {
        atomic_store(&((struct gemv_task *)ctx)->out_of_memory, 1);
        return;
    }
    /* more than MAX_ROWS / 2 rows of x: passes of PASS_ROWS rows over blocks of
     * BLOCK_ROWS weight rows (a few KiB, which stay in the core's cache from one pass to
     * the next), each pass with the 2-row tiles of M <= 4. One pass of all M rows takes one
     * weight row at a time and reads M rows of x per weight, which stop fitting in L1:
     * measured 6-8x the M = 1 time at M = 8 on the qwen3-0.6b preset's shapes */
    const struct gemv_job *j = t->job;
    const int64_t k = j->w.k, groups = k / j->w.group_size, step = j->m <= MAX_ROWS / 2 ? r1 - r0 : BLOCK_ROWS;
    for (int64_t b0 = r0; b0 < r1; b0 += step) {
        const int64_t b1 = b0 + step < r1 ? b0 + step : r1;
        for (int64_t first = 0; first < j->m; first += PASS_ROWS) {
            struct gemv_job pass = *j;
            pass.m = j->m <= MAX_ROWS / 2 ? j->m : (j->m - first < PASS_ROWS ? j->m - first : PASS_ROWS);
            pass.xp = j->xp + first * k;
            pass.xsum = j->xsum + first * groups;
            pass.xq = j->xq + first * k;
            pass.xscale = j->xscale + first * groups;
            pass.out = j->out + first * j->n;
            (t->int8 ? t->lv->gemv_i8_rows : t->lv->gemv_rows)(&pass, b0, b1, buf);
            if (pass.m == j->m) break;
        }
    }
    free(buf);
}

struct dequant_task {
    const struct level *lv;
    const struct dequant_job *job;
    int64_t rows;
    atomic_int out_of_memory;
};

static void dequant_part(void *ctx, int part, int parts) {
    const struct dequant_task *t = ctx;
    const int64_t row0 = t->job->row0, r0 = row0 + t->rows * part / parts, r1 = row0 + t->rows * (part + 1) / parts;
    if (r1 <= r0) return;
    uint8_t *buf = malloc(work_bytes(t->job->w.k, t->job->w.group_size));
    if (!buf) {
        atomic_store(&((struct dequant_task *)ctx)->out_of_memory, 1);
        return;
    }
    t->lv->dequant_rows(t->job, r0, r1, buf);
    free(buf);
}

/* below this many weights a call runs on the calling thread alone */
#define PARALLEL_MIN_WEIGHTS (1 << 15)

int level_count(void) { return n_levels; }

const struct level *level_at(int index) { return index < 0 || index >= n_levels ? NULL : levels[index]; }

int int8_runs(const struct level *lv, int bits, int group_size) {
    return int8_slot_bits_for(lv, bits, group_size) != 0;
}

/* w with its codes read at slot_bits (unpacked first where that is not their own width) */
static struct weight read_at(struct weight w, int slot_bits) {
    w.slot_bits = slot_bits;
    w.unpack = slot_bits != w.bits;
    return w;
}

int gemv(const struct level *lv, const float *xs, struct weight w, float *out, int64_t m, int64_t n, int int8) {
    const int64_t k = w.k, groups = k / w.group_size;
    const int group_size = w.group_size;
    const int int8_bits = int8 ? int8_slot_bits_for(lv, w.bits, group_size) : 0;
    const int slot_bits = int8_bits ? int8_bits : slot_bits_for(lv, w.bits, group_size);
    /* x in the kernel's order: float32 (xp), or int8 codes (xq) with scales (xscale) */
    float *xp = malloc((size_t)(m * k + 2 * m * groups) * sizeof(float) + (size_t)(2 * m * k));
    if (!xp) return -1;
    float *xsum = xp + m * k, *xscale = xsum + m * groups;
    int8_t *xq = (int8_t *)(xscale + m * groups), *xq_natural = xq + m * k;
    if (int8_bits) {
        int8_activations(xs, m, k, group_size, xq_natural, xscale, xsum);
        for (int64_t r = 0; r < m; r++) to_slot_order_i8(xq + r * k, xq_natural + r * k, k, lv->int8_bytes, slot_bits);
    }
    for (int64_t r = 0; !int8_bits && r < m; r++) {
        to_slot_order(xp + r * k, xs + r * k, k, lv->lanes, slot_bits);
        for (int64_t g = 0; g < groups; g++) {
            float acc = 0.0f;
            for (int64_t c = g * group_size; c < (g + 1) * group_size; c++) acc += xs[r * k + c];
            xsum[r * groups + g] = acc;
        }
    }
    const struct gemv_job job = {xp, xsum, xq, xscale, read_at(w, slot_bits), out, m, n};
    struct gemv_task task = {lv, &job, int8_bits != 0, 0};
    run_parallel(gemv_part, (void *)&task, n * k < PARALLEL_MIN_WEIGHTS ? 1 : (n + 15) / 16);
    free(xp);
    return atomic_load(&task.out_of_memory) ? -1 : 0;
}

int dequantize(const struct level *lv, struct weight w, float *out, int64_t row0, int64_t rows) {
    const struct dequant_job job = {read_at(w, slot_bits_for(lv, w.bits, w.group_size)), out, row0};
    struct dequant_task task = {lv, &job, rows, 0};
    /* on the calling thread alone: a block dequantizes in ~5% of the BLAS call that
     * follows it, and pool workers woken for it then compete with BLAS's own threads
     * (measured: prefill then varied between 150 and 240 tok/s; alone, 230-240) */
    dequant_part((void *)&task, 0, 1);
    return atomic_load(&task.out_of_memory) ? -1 : 0;
}

int slot_order(const struct level *lv, int64_t k, int group_size, int bits, int64_t *out) {
    int64_t *columns = malloc((size_t)k * sizeof(int64_t));
    if (!columns) return -1;
    for (int64_t c = 0; c < k; c++) columns[c] = c;
    to_slot_order_i64(out, columns, k, lv->lanes, slot_bits_for(lv, bits, group_size));
    free(columns);
    return 0;
}
