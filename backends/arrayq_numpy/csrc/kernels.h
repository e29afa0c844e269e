/* Declarations shared by the sources of arrayq_numpy._kernels (one extension module):
 *   module.c      Python glue: argument parsing, buffer checks, the method table
 *   kernels.c     the SIMD levels (chosen by cpuid/xgetbv) and the kernels' entry points
 *   kernels_simd.inc  the per-level arithmetic, included by kernels.c once per level
 *   threadpool.c  the persistent thread pool the decode kernel runs on
 *   attention.c   the attention kernel over batches, heads and query rows (on the pool)
 *   rowops.c      float32 row kernels of a decode step: rms_norm, rope, swiglu, and the
 *                 fused qkv heads and residual add + rms_norm
 * Nothing below needs Python.h; every entry point runs without the GIL.
 */
#ifndef ARRAYQ_KERNELS_H
#define ARRAYQ_KERNELS_H

#include <stdint.h>

#if defined(__x86_64__) || defined(__i386__)
#define X86 1
#endif

#define MAX_ROWS 8 /* rows of x the decode kernel takes */
#define MAX_THREADS 256

/* calls between the files stay inside the module (direct calls, as when it was one file) */
#pragma GCC visibility push(hidden)

enum scale_kind { SCALE_F32 = 0, SCALE_F16 = 1, SCALE_BF16 = 2 };

/* W as both kernels read it. slot_bits: the width the kernel reads codes at (bits, or 8
 * where rows are first unpacked to one byte per code: unpack); the entry points set both. */
struct weight {
    const uint8_t *packed;
    const void *scales, *biases;
    int64_t k, row_bytes;
    int group_size, bits, slot_bits, unpack, scale_kind;
};

/* A weight repacked for the 8-bit-activation decode kernel (repack.c has the layout).
 * Weight = scale * (stored code - zero) + bias per group (no biases stored: symmetric). */
struct rq_layout {
    int64_t n, k, tiles, tile_bytes, total_bytes;
    int group_size, bits, slot_bits, code_bytes; /* code_bytes: one row's codes of one group */
    int rows;       /* weight rows per tile: one per 32-bit lane of the level's 8-bit kernel */
    int sign;       /* codes stored as code - 128 in signed bytes (8-bit codes on AVX2) */
    int symmetric;  /* no biases stored */
    int scale_kind; /* of the stored scales and biases, as given */
    float zero;     /* the stored codes' offset */
};

struct rq_job {
    const uint8_t *data;
    struct rq_layout layout;
    const int8_t *xq;                  /* (m, k) activation codes, rows interleaved by 4 columns (repack.c) */
    const float *xscale, *xsum;        /* (m, G): their scales, and the sums of the rounded x */
    float *out;                        /* (m, n) */
    int64_t m;                         /* at most RQ_MAX_ROWS */
};
#define RQ_MAX_ROWS 8 /* most rows of x one pass of the repacked kernel takes, on any level (level.rq_rows) */

struct gemv_job;
struct dequant_job;

/* One SIMD level: its parameters and its kernels (kernels_simd.inc). */
struct level {
    const char *name;
    int lanes;         /* float32 lanes of a vector */
    int int8_bytes;    /* bytes of a chunk in the 8-bit-activation kernel */
    int int8_max_bits; /* widest codes its byte dot product takes without overflow */
    int rq_rows;       /* rows of x one pass of its repacked kernel takes (more: several passes) */
    void (*gemv_rows)(const struct gemv_job *, int64_t, int64_t, uint8_t *);
    void (*gemv_i8_rows)(const struct gemv_job *, int64_t, int64_t, uint8_t *);
    void (*dequant_rows)(const struct dequant_job *, int64_t, int64_t, uint8_t *);
    void (*gemv_rq_tiles)(const struct rq_job *, int64_t, int64_t);
    /* k and v: float32, or float16 where the last argument is 1 (rows ks / vs elements apart) */
    void (*attend_row)(const float *, const void *, int64_t, const void *, int64_t, int64_t, int64_t, int64_t, float,
                       float *, float *, int);
};

/* ---- kernels.c. Entry points return 0, or -1 where memory ran out. */
void find_levels(void);
int level_count(void);
const struct level *level_at(int index); /* NULL outside 0 .. level_count() - 1 */
int int8_runs(const struct level *lv, int bits, int group_size);
/* out (m, n) = x (m, k) @ W.T for m <= MAX_ROWS, on the thread pool; int8: 8-bit
 * activations where the level takes the format (else float32) */
int gemv(const struct level *lv, const float *x, struct weight w, float *out, int64_t m, int64_t n, int int8);
/* rows [row0, row0 + rows) of W into out (rows, k) float32, columns in slot order, on the
 * calling thread */
int dequantize(const struct level *lv, struct weight w, float *out, int64_t row0, int64_t rows);
/* out (k int64) = the columns in slot order, so that x[:, out] is x as the kernels read it */
int slot_order(const struct level *lv, int64_t k, int group_size, int bits, int64_t *out);

/* x (m rows of k) as int8 codes per group (natural order) with their scales, and the sums
 * of the rounded groups (xscale * sum of codes) for the biases; x is (m, k). */
void int8_activations(const float *x, int64_t m, int64_t k, int group_size, int8_t *xq, float *xscale, float *xsum);
/* one row of MLX-packed codes (any width) as one byte per code */
void unpack_row(const uint8_t *src, int bits, int64_t k, uint8_t *dst);
float half_to_float(uint16_t h);

/* ---- repack.c. The layout for this level and format; -1 where the sizes overflow.
 * symmetric: no biases (bias = -zero * scale), zero = 2^(bits-1). */
int rq_layout_of(const struct level *lv, int64_t n, int64_t k, int group_size, int bits, int scale_kind,
                 int symmetric, struct rq_layout *out);
/* W (MLX's packed rows, scales, biases or NULL where symmetric) into out
 * (layout->total_bytes), on the thread pool; -1 where memory ran out */
int repack(const struct rq_layout *layout, const uint8_t *packed, const void *scales, const void *biases,
           uint8_t *out);
/* out (m, n) = x (m, k) @ W.T with 8-bit activations, on the thread pool; 0, or 1 where x
 * holds a NaN or an infinity (out is computed all the same), -1 where memory ran out */
int gemv_repacked(const struct level *lv, const float *x, const uint8_t *data, const struct rq_layout *layout,
                  float *out, int64_t m);

/* ---- threadpool.c */
typedef void (*task_fn)(void *ctx, int part, int parts);
/* fn(ctx, part, parts) for every part = 0..parts-1 (in any order, on any thread), with
 * parts chosen by the pool, at most max_parts; max_parts = 1 runs inline. */
void run_parallel(task_fn fn, void *ctx, int64_t max_parts);
int pool_threads(void);           /* threads a parallel call uses, the caller included */
void set_pool_threads(int n);     /* 0: one per CPU; restarts the pool after calls in flight */
void pool_init(void);             /* once, at import: a forked child starts a fresh pool */
/* the XOR of n words, read in at most `parts` parts on the pool: the benchmark's read
 * bandwidth probe, and with n = 0 the cost of one parallel call */
uint64_t pool_probe(const uint64_t *words, int64_t n, int64_t parts);

/* ---- attention.c. A float32 4-d array whose last axis is contiguous: strides in bytes. */
struct rows4 {
    char *buf;
    int64_t shape[4], strides[4]; /* strides in bytes */
    int64_t itemsize;             /* 4 (float32), or 2 (float16: attention's k and v) */
};
/* whether the shapes fit: q (B, H, L, D), k (B, Hkv, S, D), v (B, Hkv, S, Dv), out (B, H, L, Dv),
 * k and v of one element size */
int attention_fits(const struct rows4 *q, const struct rows4 *k, const struct rows4 *v, const struct rows4 *o,
                   int causal);
/* lengths: NULL, or B key counts (1 <= lengths[b] <= S, with L = 1): row b of the batch sees
 * its first lengths[b] keys only (a batch of sequences of different lengths in one padded
 * buffer, each computed exactly as it would be alone) */
int attention(const struct level *lv, const struct rows4 *q, const struct rows4 *k, const struct rows4 *v,
              const struct rows4 *o, float scale, int causal, const int64_t *lengths);

/* ---- rowops.c (float32; strides in elements; out contiguous; on the calling thread). */
/* out (rows, d) = x / sqrt(mean(x^2) + eps) [* w], x's rows `stride` apart; w: NULL or d */
void rms_norm_rows(const float *x, int64_t stride, const float *w, float *out, int64_t rows, int64_t d, double eps);
/* out (B, H, L, D) = x with its first dims features rotated by the (L, dims/2) tables:
 * pairs (i, i + dims/2), or (2i, 2i + 1) where traditional */
void rope_rows(const struct rows4 *x, const float *cos, const float *sin, float *out, int64_t dims, int traditional);
/* out (rows, n) = silu(gate) * up, gate's and up's rows gate_stride / up_stride apart */
/* dst[0:n] = src[0:n] rounded to float16 (to nearest, ties to even: NumPy's astype's values)
 * where the CPU has F16C and no src is NaN; returns 0 then, -1 without F16C, or the NaNs'
 * count (dst not written: NumPy keeps NaN payload bits that F16C does not) */
int64_t float_to_half(const float *src, uint16_t *dst, int64_t n);
void swiglu_rows(const float *gate, int64_t gate_stride, const float *up, int64_t up_stride, float *out, int64_t rows,
                 int64_t n);

/* q (B, hq, L, d), k and v (B, hkv, L, d) from a fused projection's rows qkv (B*L rows,
 * `stride` apart, each hq + 2 hkv heads of d): q's and k's heads through rms_norm_rows (with
 * qw, kw) then rotated by the (L, dims/2) tables, as rms_norm_rows then rope_rows would;
 * v's copied. -1 where memory ran out. */
int qkv_heads_rows(const float *qkv, int64_t stride, int64_t B, int64_t L, int64_t hq, int64_t hkv, int64_t d,
                   const float *qw, const float *kw, double eps, const float *cos, const float *sin, int64_t dims,
                   int traditional, float *q, float *k, float *v);
/* sum (rows, d) = x + y, and out (rows, d) = rms_norm_rows of sum */
void add_rms_norm_rows(const float *x, int64_t x_stride, const float *y, int64_t y_stride, const float *w,
                       float *sum, float *out, int64_t rows, int64_t d, double eps);

#pragma GCC visibility pop

#endif
