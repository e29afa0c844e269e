/* The repacked layout of the 8-bit-activation decode kernel (repacked_simd.inc), private
 * to the NumPy backend: the public QuantizedWeight keeps MLX's format, and the backend
 * keeps one repacked copy per weight beside it.
 *
 * Rows in tiles of `rows` (one per 32-bit lane of the level's byte dot product: 8 on AVX2
 * and AVX-512, 4 on the portable level); a tile is its groups one after the other, and a
 * group is
 *     codes   rows * code_bytes: word s (4 bytes) of row i at (s * rows + i) * 4; byte b of
 *             a word holds, in slot t (bits slot_bits*t and up), the code of column
 *             s*4P + 4t + b of the group (P = 8 / slot_bits codes per byte)
 *     scales  rows values, as given (float32, float16 or bfloat16)
 *     biases  the same (none where symmetric: GGUF's Q4_0/Q8_0, bias = -zero * scale)
 * so the kernel streams one tile from start to end. Codes 3 bits wide are stored in 4-bit
 * slots and 5-7 bits in 8-bit slots (more bytes, the same kernel). Where the level's dot
 * product takes unsigned bytes only up to 6 bits (AVX2's pmaddubsw, whose pairs of products
 * saturate at 16 bits), 8-bit codes are stored as code - 128 in signed bytes.
 * Rows past n in the last tile are zeros (scale 0: they add nothing; never written out).
 */
#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"

int rq_layout_of(const struct level *lv, int64_t n, int64_t k, int group_size, int bits, int scale_kind,
                 int symmetric, struct rq_layout *out) {
    struct rq_layout L = {0};
    L.n = n;
    L.k = k;
    L.group_size = group_size;
    L.bits = bits;
    L.slot_bits = bits <= 2 ? bits : bits <= 4 ? 4 : 8;
    L.code_bytes = group_size * L.slot_bits / 8; /* group_size % 32 == 0: whole words */
    L.rows = lv->int8_bytes / 4;
    L.sign = bits > lv->int8_max_bits;
    L.symmetric = symmetric;
    L.scale_kind = scale_kind;
    L.zero = (float)(symmetric ? 1 << (bits - 1) : 0) - (L.sign ? 128.0f : 0.0f);
    const int64_t scale_bytes = scale_kind == SCALE_F32 ? 4 : 2;
    const int64_t group_block = L.rows * (L.code_bytes + scale_bytes * (symmetric ? 1 : 2));
    L.tiles = (n + L.rows - 1) / L.rows;
    if (__builtin_mul_overflow(group_block, k / group_size, &L.tile_bytes) ||
        __builtin_mul_overflow(L.tile_bytes, L.tiles, &L.total_bytes))
        return -1;
    *out = L;
    return 0;
}

struct repack_task {
    const struct rq_layout *L;
    const uint8_t *packed;
    const uint8_t *scales, *biases;
    uint8_t *out;
    atomic_int out_of_memory;
};

static void repack_part(void *ctx, int part, int parts) {
    struct repack_task *t = ctx;
    const struct rq_layout *L = t->L;
    const int64_t t0 = L->tiles * part / parts, t1 = L->tiles * (part + 1) / parts;
    const int64_t G = L->k / L->group_size, row_bytes = L->k * L->bits / 8, sbytes = L->scale_kind == SCALE_F32 ? 4 : 2;
    const int P = 8 / L->slot_bits, R = L->rows;
    if (t1 <= t0) return;
    uint8_t *codes = malloc((size_t)L->k);
    if (!codes) {
        atomic_store(&t->out_of_memory, 1);
        return;
    }
    for (int64_t tile = t0; tile < t1; tile++) {
        uint8_t *dst = t->out + tile * L->tile_bytes;
        memset(dst, 0, (size_t)L->tile_bytes);
        for (int i = 0; i < R; i++) {
            const int64_t r = tile * R + i;
            if (r >= L->n) break;
            unpack_row(t->packed + r * row_bytes, L->bits, L->k, codes);
            for (int64_t g = 0; g < G; g++) {
                uint8_t *block = dst + g * (L->tile_bytes / G);
                const uint8_t *c = codes + g * L->group_size;
                for (int64_t s = 0; s < L->code_bytes / 4; s++)
                    for (int b = 0; b < 4; b++) {
                        uint8_t byte = 0;
                        for (int slot = 0; slot < P; slot++) {
                            const uint8_t code = c[s * 4 * P + 4 * slot + b];
                            byte |= (uint8_t)((L->sign ? code - 128 : code) << (L->slot_bits * slot));
                        }
                        block[(s * R + i) * 4 + b] = byte;
                    }
                uint8_t *sc = block + R * L->code_bytes;
                memcpy(sc + i * sbytes, t->scales + (r * G + g) * sbytes, (size_t)sbytes);
                if (!L->symmetric) memcpy(sc + (R + i) * sbytes, t->biases + (r * G + g) * sbytes, (size_t)sbytes);
            }
        }
    }
    free(codes);
}

int repack(const struct rq_layout *L, const uint8_t *packed, const void *scales, const void *biases, uint8_t *out) {
    struct repack_task task = {L, packed, scales, biases, out, 0};
    run_parallel(repack_part, &task, L->tiles);
    return atomic_load(&task.out_of_memory) ? -1 : 0;
}

struct rq_task {
    const struct level *lv;
    const struct rq_job *passes; /* one job per lv->rq_rows rows of x */
    int64_t n_passes;
};

/* tiles a part runs every pass over before it moves on: their bytes stay in the core's
 * cache for the passes after the first (prefill: many rows of x) */
#define RQ_TILE_BLOCK 32

static void rq_part(void *ctx, int part, int parts) {
    const struct rq_task *t = ctx;
    const int64_t tiles = t->passes[0].layout.tiles, t0 = tiles * part / parts, t1 = tiles * (part + 1) / parts;
    for (int64_t b = t0; b < t1; b += RQ_TILE_BLOCK)
        for (int64_t i = 0; i < t->n_passes; i++)
            t->lv->gemv_rq_tiles(&t->passes[i], b, b + RQ_TILE_BLOCK < t1 ? b + RQ_TILE_BLOCK : t1);
}

/* below this many weights a call runs on the calling thread alone (as gemv) */
#define RQ_PARALLEL_MIN_WEIGHTS (1 << 15)

/* The codes of `rows` rows of x (rows, k) for one pass: four columns of each row, then the
 * next four (chunk c of row i at (c * rows + i) * 4), so that the kernel reads the chunks
 * it multiplies one word of weights by from one pointer at constant offsets, whatever k
 * is. One row: the natural order. */
static void interleave_rows(const int8_t *xq, int64_t rows, int64_t k, int8_t *dst) {
    for (int64_t c = 0; c < k / 4; c++)
        for (int64_t i = 0; i < rows; i++) memcpy(dst + (c * rows + i) * 4, xq + i * k + c * 4, 4);
}

int gemv_repacked(const struct level *lv, const float *x, const uint8_t *data, const struct rq_layout *L, float *out,
                  int64_t m) {
    const int64_t k = L->k, groups = k / L->group_size, rows = lv->rq_rows, n_passes = (m + rows - 1) / rows;
    float *xscale = malloc((size_t)(2 * m * groups) * sizeof(float) + (size_t)(2 * m * k));
    struct rq_job *passes = malloc((size_t)n_passes * sizeof *passes);
    if (!xscale || !passes) {
        free(xscale);
        free(passes);
        return -1;
    }
    float *xsum = xscale + m * groups;
    int8_t *xq = (int8_t *)(xsum + m * groups), *xi = xq + m * k;
    int8_activations(x, m, k, L->group_size, xq, xscale, xsum);
    /* a group's scale is its largest |x| / 127: finite exactly where all of its x are (the
     * caller's finiteness check, read off the scan the codes need anyway) */
    int finite = 1;
    for (int64_t i = 0; i < m * groups; i++) finite &= isfinite(xscale[i]) != 0;
    for (int64_t i = 0; i < n_passes; i++) { /* lv->rq_rows rows of x a pass */
        const int64_t r = i * rows, pass_rows = m - r < rows ? m - r : rows;
        const int8_t *codes = pass_rows > 1 ? xi + r * k : xq + r * k; /* one row: as it is */
        if (pass_rows > 1) interleave_rows(xq + r * k, pass_rows, k, xi + r * k);
        const struct rq_job job = {data, *L, codes, xscale + r * groups, xsum + r * groups, out + r * L->n, pass_rows};
        passes[i] = job;
    }
    struct rq_task task = {lv, passes, n_passes};
    run_parallel(rq_part, &task, L->n * k < RQ_PARALLEL_MIN_WEIGHTS ? 1 : (L->tiles + 1) / 2);
    free(passes);
    free(xscale);
    return finite ? 0 : 1;
}
