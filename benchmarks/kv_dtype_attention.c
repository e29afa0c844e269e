/* Decode attention over a float32 KV cache against a float16 one, one thread, at the
 * qwen3-0.6b preset's shapes: q (B, 16, 1, 128), k and v (B, 8, S, 128).
 *
 * Needs an AVX-512 CPU with F16C. Build and run:
 *     cc -O3 -march=native -o kvd benchmarks/kv_dtype_attention.c -lm && ./kvd
 *
 * attend_f32 is the avx512 level's attend_row of backends/arrayq_numpy/csrc/kernels_simd.inc
 * (four keys per FMA group, softmax, eight vectors of output columns), restated with
 * AVX-512 intrinsics; attend_f16 is the same loop reading float16 keys and values widened
 * by F16C (_mm512_cvtph_ps), computing in float32. Both walk the (batch, kv head) groups
 * as attention.c does. Each timed call reads a different layer's cache (28 cycled, fewer
 * where 28 would not fit the memory cap), with 12 MiB of other memory streamed before it
 * (a layer's quantized weights), so the cache comes from memory as in a decode step.
 * Rounds interleave float32 and float16 (the order alternating); per-call medians over
 * rounds, and the median of the per-round ratios; the last column is the largest difference
 * between the two outputs for one layer (the float16 rounding of keys and values, whose
 * entries lie in [-0.5, 0.5], rounded in steps of at most 2^-12: no difference above ~2.5e-4
 * expected), a check that both compute one attention.
 */
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { H = 16, HKV = 8, D = 128, LAYERS = 28, ROUNDS = 15 };
static const size_t CAP = (size_t)320 << 20; /* bytes of caches, float32 and float16 together */
static const size_t EVICT = (size_t)12 << 20;

static inline float hsum(__m512 v) { return _mm512_reduce_add_ps(v); }
static inline __m512 load32(const float *p) { return _mm512_loadu_ps(p); }
static inline __m512 load16(const uint16_t *p) { return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p)); }

/* one query row against n keys: T is the key/value element type, LOAD widens 16 of them */
#define ATTEND(NAME, T, LOAD)                                                                   \
    static void NAME(const float *q, const T *k, const T *v, int64_t n, float scale, float *scores, \
                     float *out) {                                                              \
        int64_t j = 0;                                                                          \
        for (; j + 4 <= n; j += 4) {                                                            \
            __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(),     \
                             _mm512_setzero_ps()};                                              \
            for (int64_t i = 0; i < D; i += 16) {                                               \
                const __m512 qv = load32(q + i);                                                \
                for (int t = 0; t < 4; t++) acc[t] = _mm512_fmadd_ps(qv, LOAD(k + (j + t) * D + i), acc[t]); \
            }                                                                                   \
            for (int t = 0; t < 4; t++) scores[j + t] = hsum(acc[t]) * scale;                   \
        }                                                                                       \
        float top = -INFINITY;                                                                  \
        for (j = 0; j < n; j++) top = scores[j] > top ? scores[j] : top;                        \
        float total = 0.0f;                                                                     \
        for (j = 0; j < n; j++) total += scores[j] = expf(scores[j] - top);                     \
        __m512 acc[8];                                                                          \
        for (int t = 0; t < 8; t++) acc[t] = _mm512_setzero_ps();                               \
        for (j = 0; j < n; j++) {                                                               \
            const __m512 p = _mm512_set1_ps(scores[j]);                                         \
            for (int t = 0; t < 8; t++) acc[t] = _mm512_fmadd_ps(p, LOAD(v + j * D + t * 16), acc[t]); \
        }                                                                                       \
        const __m512 inv = _mm512_set1_ps(1.0f / total);                                        \
        for (int t = 0; t < 8; t++) _mm512_storeu_ps(out + t * 16, _mm512_mul_ps(acc[t], inv)); \
    }
ATTEND(attend_f32, float, load32)
ATTEND(attend_f16, uint16_t, load16)

/* all (batch, kv head) groups, as attention.c's attend_groups (L = 1) */
#define GROUPS(NAME, T, ROW)                                                                    \
    void NAME(int64_t B, int64_t S, const float *q, const T *k, const T *v, float *o, float *scores) { \
        for (int64_t g = 0; g < B * HKV; g++)                                                   \
            for (int64_t h = (g % HKV) * (H / HKV); h < (g % HKV + 1) * (H / HKV); h++) {       \
                const int64_t b = g / HKV;                                                      \
                ROW(q + (b * H + h) * D, k + g * S * D, v + g * S * D, S, 0.088f, scores, o + (b * H + h) * D); \
            }                                                                                   \
    }
GROUPS(groups_f32, float, attend_f32)
GROUPS(groups_f16, uint16_t, attend_f16)

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static volatile float sink;
static void evict(const float *buf) {
    __m512 acc = _mm512_setzero_ps();
    for (size_t i = 0; i < EVICT / 4; i += 16) acc = _mm512_add_ps(acc, _mm512_loadu_ps(buf + i));
    sink = hsum(acc);
}

static int cmp(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}
static double median(double *x, int n) {
    qsort(x, n, sizeof *x, cmp);
    return n % 2 ? x[n / 2] : 0.5 * (x[n / 2 - 1] + x[n / 2]);
}

int main(void) {
    const int64_t batches[] = {1, 8}, lengths[] = {64, 256, 1024};
    float *junk = malloc(EVICT), *q = malloc(8 * H * D * 4), *o = malloc(8 * H * D * 4), *scores = malloc(1024 * 4);
    for (size_t i = 0; i < EVICT / 4; i++) junk[i] = (float)(i % 7);
    for (int i = 0; i < 8 * H * D; i++) q[i] = (float)((i * 37) % 101) / 101.0f - 0.5f;
    printf("%3s %5s %6s %11s %11s %9s %12s %10s\n", "B", "keys", "caches", "f32 us", "f16 us", "f32/f16", "median ratio",
           "max diff");
    float *o16 = malloc(8 * H * D * 4);
    for (int bi = 0; bi < 2; bi++)
        for (int si = 0; si < 3; si++) {
            const int64_t B = batches[bi], S = lengths[si], n = B * HKV * S * D; /* elements of k (and of v) */
            int layers = (int)(CAP / (n * 2 * 6));
            layers = layers > LAYERS ? LAYERS : layers < 2 ? 2 : layers;
            float **k32 = malloc(layers * sizeof *k32), **v32 = malloc(layers * sizeof *v32);
            uint16_t **k16 = malloc(layers * sizeof *k16), **v16 = malloc(layers * sizeof *v16);
            for (int l = 0; l < layers; l++) {
                k32[l] = malloc(n * 4), v32[l] = malloc(n * 4), k16[l] = malloc(n * 2), v16[l] = malloc(n * 2);
                for (int64_t i = 0; i < n; i++) {
                    k32[l][i] = (float)(((i + l) * 13) % 97) / 97.0f - 0.5f;
                    v32[l][i] = (float)(((i + 3 * l) * 29) % 89) / 89.0f - 0.5f;
                }
                for (int64_t i = 0; i < n; i += 16) {
                    _mm256_storeu_si256((__m256i *)(k16[l] + i), _mm512_cvtps_ph(load32(k32[l] + i), 0));
                    _mm256_storeu_si256((__m256i *)(v16[l] + i), _mm512_cvtps_ph(load32(v32[l] + i), 0));
                }
            }
            double t32[ROUNDS], t16[ROUNDS], ratio[ROUNDS];
            for (int r = 0; r < ROUNDS; r++) {
                double s32 = 0, s16 = 0;
                for (int l = 0; l < LAYERS; l++) {
                    const int c = l % layers;
                    for (int pass = 0; pass < 2; pass++) {
                        const int f16 = (pass + r) % 2;
                        evict(junk);
                        const double t0 = now();
                        if (f16)
                            groups_f16(B, S, q, k16[c], v16[c], o, scores);
                        else
                            groups_f32(B, S, q, k32[c], v32[c], o, scores);
                        *(f16 ? &s16 : &s32) += now() - t0;
                    }
                }
                t32[r] = s32 / LAYERS * 1e6, t16[r] = s16 / LAYERS * 1e6, ratio[r] = s32 / s16;
            }
            const double m32 = median(t32, ROUNDS), m16 = median(t16, ROUNDS);
            groups_f32(B, S, q, k32[0], v32[0], o, scores);
            groups_f16(B, S, q, k16[0], v16[0], o16, scores);
            double diff = 0;
            for (int64_t i = 0; i < B * H * D; i++) diff = fmax(diff, fabs((double)o[i] - o16[i]));
            printf("%3ld %5ld %6d %11.1f %11.1f %9.2f %12.2f %10.2e\n", (long)B, (long)S, layers, m32, m16, m32 / m16,
                   median(ratio, ROUNDS), diff);
            fflush(stdout);
            for (int l = 0; l < layers; l++) free(k32[l]), free(v32[l]), free(k16[l]), free(v16[l]);
            free(k32), free(v32), free(k16), free(v16);
        }
    return 0;
}
