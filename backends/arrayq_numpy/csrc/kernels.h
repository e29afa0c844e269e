/* Declarations shared by the sources of arrayq_numpy._kernels (one extension module):
 *   module.c      Python glue: argument parsing, buffer checks, the method table
 *   kernels.c     the SIMD levels (chosen by cpuid/xgetbv) and the kernels' entry points
 *   kernels_simd.inc  the per-level arithmetic, included by kernels.c once per level
 *   threadpool.c  the persistent thread pool the decode kernel runs on
 *   attention.c   the attention kernel over batches, heads and query rows
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

struct gemv_job;
struct dequant_job;

/* One SIMD level: its parameters and its kernels (kernels_simd.inc). */
struct level {
    const char *name;
    int lanes;         /* float32 lanes of a vector */
    int int8_bytes;    /* bytes of a chunk in the 8-bit-activation kernel */
    int int8_max_bits; /* widest codes its byte dot product takes without overflow */
    void (*gemv_rows)(const struct gemv_job *, int64_t, int64_t, uint8_t *);
    void (*gemv_i8_rows)(const struct gemv_job *, int64_t, int64_t, uint8_t *);
    void (*dequant_rows)(const struct dequant_job *, int64_t, int64_t, uint8_t *);
    void (*attend_row)(const float *, const float *, int64_t, const float *, int64_t, int64_t, int64_t, int64_t, float,
                       float *, float *);
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

/* ---- threadpool.c */
typedef void (*task_fn)(void *ctx, int part, int parts);
/* fn(ctx, part, parts) for every part = 0..parts-1 (in any order, on any thread), with
 * parts chosen by the pool, at most max_parts; max_parts = 1 runs inline. */
void run_parallel(task_fn fn, void *ctx, int64_t max_parts);
int pool_threads(void);           /* threads a parallel call uses, the caller included */
void set_pool_threads(int n);     /* 0: one per CPU; restarts the pool after calls in flight */
void pool_init(void);             /* once, at import: a forked child starts a fresh pool */

/* ---- attention.c. A float32 4-d array whose last axis is contiguous: strides in bytes. */
struct rows4 {
    char *buf;
    int64_t shape[4], strides[4];
};
/* whether the shapes fit: q (B, H, L, D), k (B, Hkv, S, D), v (B, Hkv, S, Dv), out (B, H, L, Dv) */
int attention_fits(const struct rows4 *q, const struct rows4 *k, const struct rows4 *v, const struct rows4 *o,
                   int causal);
int attention(const struct level *lv, const struct rows4 *q, const struct rows4 *k, const struct rows4 *v,
              const struct rows4 *o, float scale, int causal);

#pragma GCC visibility pop

#endif
