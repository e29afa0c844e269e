/* The attention kernel: out (B, H, L, Dv) = softmax(scale * q k^T [+ causal mask]) v for
 * q (B, H, L, D), k (B, Hkv, S, D), v (B, Hkv, S, Dv), in float32; query head h reads
 * key/value head h / (H / Hkv). causal: query l sees keys j <= S - L + l.
 *
 * The (batch, query head) pairs are cut into parts on the thread pool where the call has
 * ATTENTION_PARALLEL_MIN multiply-adds or more (decode's keys and values come from a cache
 * too large to stay in cache between layers: reading them is the cost, and two cores read
 * faster than one); smaller calls run on the calling thread. Each query row runs the
 * level's attend_row (kernels_simd.inc, compiled there with the other kernels of
 * its level, whose vector helpers it shares).
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "kernels.h"

/* Multiply-adds (heads x query rows x keys x (D + Dv)) from which the pool takes a call:
 * 16 heads of 128 against 16 keys. */
#ifndef ATTENTION_PARALLEL_MIN
#define ATTENTION_PARALLEL_MIN (1 << 16)
#endif

int attention_fits(const struct rows4 *q, const struct rows4 *k, const struct rows4 *v, const struct rows4 *o,
                   int causal) {
    const int64_t B = q->shape[0], H = q->shape[1], L = q->shape[2], D = q->shape[3];
    const int64_t Hkv = k->shape[1], S = k->shape[2], Dv = v->shape[3];
    return !(Hkv < 1 || H % Hkv || k->shape[0] != B || k->shape[3] != D || v->shape[0] != B || v->shape[1] != Hkv ||
             v->shape[2] != S || o->shape[0] != B || o->shape[1] != H || o->shape[2] != L || o->shape[3] != Dv ||
             (causal && L > S));
}

/* the row (i0, i1, i2) of a 4-d array */
static inline float *row_at(const struct rows4 *a, int64_t i0, int64_t i1, int64_t i2) {
    return (float *)(a->buf + i0 * a->strides[0] + i1 * a->strides[1] + i2 * a->strides[2]);
}

struct attention_task {
    const struct level *lv;
    const struct rows4 *q, *k, *v, *o;
    float scale;
    int causal;
    const int64_t *lengths;
    atomic_int failed;
};

/* The query heads [B*H * part / parts, B*H * (part + 1) / parts) of the (batch, head)
 * pairs, every query row of each: consecutive heads share a key/value head, so a part
 * reads its keys and values once into cache. */
static void attention_part(void *ctx, int part, int parts) {
    struct attention_task *t = ctx;
    const int64_t H = t->q->shape[1], L = t->q->shape[2], D = t->q->shape[3];
    const int64_t S = t->k->shape[2], Dv = t->v->shape[3], rep = H / t->k->shape[1], heads = t->q->shape[0] * H;
    float *scores = malloc((size_t)(S > 0 ? S : 1) * sizeof(float));
    if (!scores) {
        atomic_store(&t->failed, 1);
        return;
    }
    for (int64_t bh = heads * part / parts; bh < heads * (part + 1) / parts; bh++) {
        const int64_t b = bh / H, h = bh % H;
        const float *keys = row_at(t->k, b, h / rep, 0), *values = row_at(t->v, b, h / rep, 0);
        for (int64_t l = 0; l < L; l++) {
            const int64_t seen = t->lengths ? t->lengths[b] : t->causal ? S - L + l + 1 : S;
            t->lv->attend_row(row_at(t->q, b, h, l), keys, t->k->strides[2] / 4, values, t->v->strides[2] / 4, seen, D,
                              Dv, t->scale, scores, row_at(t->o, b, h, l));
        }
    }
    free(scores);
}

int attention(const struct level *lv, const struct rows4 *q, const struct rows4 *k, const struct rows4 *v,
              const struct rows4 *o, float scale, int causal, const int64_t *lengths) {
    struct attention_task task = {lv, q, k, v, o, scale, causal, lengths, 0};
    const int64_t heads = q->shape[0] * q->shape[1];
    /* multiply-adds of the whole call: below ATTENTION_PARALLEL_MIN, one thread */
    const double work = (double)heads * (double)q->shape[2] * (double)k->shape[2] * (double)(q->shape[3] + v->shape[3]);
    run_parallel(attention_part, &task, work < ATTENTION_PARALLEL_MIN ? 1 : heads);
    return atomic_load(&task.failed) ? -1 : 0;
}
