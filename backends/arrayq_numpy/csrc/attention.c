/* The attention kernel: out (B, H, L, Dv) = softmax(scale * q k^T [+ causal mask]) v for
 * q (B, H, L, D), k (B, Hkv, S, D), v (B, Hkv, S, Dv), in float32; query head h reads
 * key/value head h / (H / Hkv). causal: query l sees keys j <= S - L + l.
 *
 * On the calling thread: decode's attention is a few microseconds of work. Each query row
 * runs the level's attend_row (kernels_simd.inc, compiled there with the other kernels of
 * its level, whose vector helpers it shares).
 */
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

int attention(const struct level *lv, const struct rows4 *q, const struct rows4 *k, const struct rows4 *v,
              const struct rows4 *o, float scale, int causal, const int64_t *lengths) {
    const int64_t B = q->shape[0], H = q->shape[1], L = q->shape[2], D = q->shape[3];
    const int64_t S = k->shape[2], Dv = v->shape[3], rep = H / k->shape[1];
    float *scores = malloc((size_t)(S > 0 ? S : 1) * sizeof(float));
    if (!scores) return -1;
    for (int64_t b = 0; b < B; b++) {
        for (int64_t h = 0; h < H; h++) {
            const float *keys = row_at(k, b, h / rep, 0), *values = row_at(v, b, h / rep, 0);
            for (int64_t l = 0; l < L; l++) {
                const int64_t seen = lengths ? lengths[b] : causal ? S - L + l + 1 : S;
                lv->attend_row(row_at(q, b, h, l), keys, k->strides[2] / 4, values, v->strides[2] / 4, seen, D, Dv,
                               scale, scores, row_at(o, b, h, l));
            }
        }
    }
    free(scores);
    return 0;
}
