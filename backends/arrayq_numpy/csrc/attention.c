/* The attention kernel: out (B, H, L, Dv) = softmax(scale * q k^T [+ causal mask]) v for
 * q (B, H, L, D), k (B, Hkv, S, D), v (B, Hkv, S, Dv), in float32; query head h reads
 * key/value head h / (H / Hkv). causal: query l sees keys j <= S - L + l.
 *
 * Each query row runs the level's attend_row (kernels_simd.inc, compiled there with the
 * other kernels of its level, whose vector helpers it shares), whichever thread runs it:
 * the result does not depend on the threads. The (batch, kv head) groups are split into
 * parts on the thread pool where the call has at least two parts' work
 * (ATTENTION_PART_WORK), else it runs on the calling thread.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "kernels.h"

/* The multiply-adds (q.k and p.v) worth a part on the pool. Decode over the float32 cache
 * reads ~1 byte of keys/values per multiply-add, memory-bound at some 5 per nanosecond on
 * one core here, and a part costs ~1-2 us on the pool: 32768 is ~6 us of work. (qwen3-0.6b
 * decode, 16 heads of 128 against 64 keys: 262144, 8 parts.) */
#define ATTENTION_PART_WORK 32768

int attention_fits(const struct rows4 *q, const struct rows4 *k, const struct rows4 *v, const struct rows4 *o,
                   int causal) {
    const int64_t B = q->shape[0], H = q->shape[1], L = q->shape[2], D = q->shape[3];
    const int64_t Hkv = k->shape[1], S = k->shape[2], Dv = v->shape[3];
    /* float16 k/v: D and Dv multiples of the widest level's 16 lanes, so that no row has a
     * scalar tail (where the compiler may contract the float32 form's multiply-add and not the
     * widened one's, or the other way round: not the same bits) */
    const int half_fits = k->itemsize == 4 || (D % 16 == 0 && Dv % 16 == 0);
    return !(Hkv < 1 || S < 1 || H % Hkv || k->itemsize != v->itemsize || !half_fits || k->shape[0] != B || k->shape[3] != D || v->shape[0] != B || v->shape[1] != Hkv ||
             v->shape[2] != S || o->shape[0] != B || o->shape[1] != H || o->shape[2] != L || o->shape[3] != Dv ||
             (causal && L > S));
}

/* the row (i0, i1, i2) of a 4-d array */
static inline void *row_at(const struct rows4 *a, int64_t i0, int64_t i1, int64_t i2) {
    return a->buf + i0 * a->strides[0] + i1 * a->strides[1] + i2 * a->strides[2];
}

struct attention_task {
    const struct level *lv;
    const struct rows4 *q, *k, *v, *o;
    float scale;
    int causal;
    const int64_t *lengths;
    atomic_int failed; /* a part's scores buffer could not be allocated */
};

/* The (batch, kv head) groups [g0, g1): each group's query heads and rows, one after
 * another (so a group's keys and values are read while still in cache). */
static int attend_groups(const struct attention_task *t, int64_t g0, int64_t g1) {
    const struct rows4 *q = t->q, *k = t->k, *v = t->v, *o = t->o;
    const int64_t Hkv = k->shape[1], L = q->shape[2], D = q->shape[3], S = k->shape[2], Dv = v->shape[3];
    const int64_t rep = q->shape[1] / Hkv;
    float *scores = malloc((size_t)(S > 0 ? S : 1) * sizeof(float));
    if (!scores) return -1;
    for (int64_t g = g0; g < g1; g++) {
        const int64_t b = g / Hkv, kh = g % Hkv;
        const void *keys = row_at(k, b, kh, 0), *values = row_at(v, b, kh, 0);
        for (int64_t h = kh * rep; h < (kh + 1) * rep; h++)
            for (int64_t l = 0; l < L; l++) {
                const int64_t seen = t->lengths ? t->lengths[b] : t->causal ? S - L + l + 1 : S;
                t->lv->attend_row(row_at(q, b, h, l), keys, k->strides[2] / k->itemsize, values,
                                  v->strides[2] / v->itemsize, seen, D, Dv, t->scale, scores, row_at(o, b, h, l),
                                  k->itemsize == 2);
            }
    }
    free(scores);
    return 0;
}

static void attention_part(void *ctx, int part, int parts) {
    struct attention_task *t = ctx;
    const int64_t groups = t->q->shape[0] * t->k->shape[1];
    if (attend_groups(t, groups * part / parts, groups * (part + 1) / parts)) atomic_store(&t->failed, 1);
}

int attention(const struct level *lv, const struct rows4 *q, const struct rows4 *k, const struct rows4 *v,
              const struct rows4 *o, float scale, int causal, const int64_t *lengths) {
    const int64_t B = q->shape[0], H = q->shape[1], L = q->shape[2], S = k->shape[2];
    struct attention_task task = {lv, q, k, v, o, scale, causal, lengths, 0};
    /* the multiply-adds of the call (an upper bound where rows see fewer keys than S) */
    int64_t keys = 0;
    for (int64_t b = 0; b < B; b++) keys += lengths ? lengths[b] : S;
    const int64_t work = keys * H * L * (q->shape[3] + v->shape[3]);
    int64_t parts = work / ATTENTION_PART_WORK, groups = B * k->shape[1];
    if (parts > groups) parts = groups;
    run_parallel(attention_part, &task, parts);
    return atomic_load(&task.failed) ? -1 : 0;
}
