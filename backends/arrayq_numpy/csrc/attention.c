/* The attention kernel: out (B, H, L, Dv) = softmax(scale * q k^T [+ causal mask]) v for
 * q (B, H, L, D), k (B, Hkv, S, D), v (B, Hkv, S, Dv), in float32; query head h reads
 * key/value head h / (H / Hkv). causal: query l sees keys j <= S - L + l.
 *
 * Each query row runs the level's attend_row (kernels_simd.inc, compiled there with the
 * other kernels of its level, whose vector helpers it shares). One sequence's decode
 * attention is a few microseconds of work and runs on the calling thread; a serving batch's
 * (B sequences, each row reading its own keys) is B times that, and runs its (b, h) pairs
 * on the thread pool. Each row's arithmetic is the same wherever it runs.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "kernels.h"

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
    atomic_int out_of_memory;
};

/* the query rows of (b, h) pairs [B*H * part / parts, B*H * (part + 1) / parts) */
static void attention_part(void *ctx, int part, int parts) {
    struct attention_task *t = ctx;
    const struct rows4 *q = t->q, *k = t->k, *v = t->v;
    const int64_t B = q->shape[0], H = q->shape[1], L = q->shape[2], D = q->shape[3];
    const int64_t S = k->shape[2], Dv = v->shape[3], rep = H / k->shape[1];
    const int64_t p0 = B * H * part / parts, p1 = B * H * (part + 1) / parts;
    if (p1 <= p0) return;
    float *scores = malloc((size_t)(S > 0 ? S : 1) * sizeof(float));
    if (!scores) {
        atomic_store(&t->out_of_memory, 1);
        return;
    }
    for (int64_t pair = p0; pair < p1; pair++) {
        const int64_t b = pair / H, h = pair % H;
        const float *keys = row_at(k, b, h / rep, 0), *values = row_at(v, b, h / rep, 0);
        for (int64_t l = 0; l < L; l++) {
            const int64_t seen = t->lengths ? t->lengths[b] : t->causal ? S - L + l + 1 : S;
            t->lv->attend_row(row_at(q, b, h, l), keys, k->strides[2] / 4, values, v->strides[2] / 4, seen, D, Dv,
                              t->scale, scores, row_at(t->o, b, h, l));
        }
    }
    free(scores);
}

/* below this many multiply-adds (query rows x keys x (D + Dv)) a call runs on the calling
 * thread alone: one decode sequence's heads, where waking a worker costs about as much */
#define ATTENTION_PARALLEL_MIN (1 << 17)

int attention(const struct level *lv, const struct rows4 *q, const struct rows4 *k, const struct rows4 *v,
              const struct rows4 *o, float scale, int causal, const int64_t *lengths) {
    struct attention_task task = {lv, q, k, v, o, scale, causal, lengths, 0};
    const int64_t pairs = q->shape[0] * q->shape[1];
    const int64_t work = pairs * q->shape[2] * k->shape[2] * (q->shape[3] + v->shape[3]);
    run_parallel(attention_part, &task, work < ATTENTION_PARALLEL_MIN ? 1 : pairs);
    return atomic_load(&task.out_of_memory) ? -1 : 0;
}
