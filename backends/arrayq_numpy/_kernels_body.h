/* One SIMD level of arrayq's native quantized kernels.
 *
 * _kernels.c includes this file once per level, with LEVEL (a name) and VW (float lanes
 * per vector) defined and the level's target flags switched on. The arithmetic is written
 * once with GCC/Clang vector extensions; the compiler turns it into AVX-512, AVX2, SSE or
 * NEON instructions. Nothing here knows which level it is compiled for.
 *
 * Codes are read in "slot order": a chunk of VW packed bytes holds E = VW * 8/bits codes,
 * and slot t of the chunk is the vector of codes (byte_i >> bits*t) & mask, i = 0..VW-1,
 * i.e. elements i*P + t of the chunk (P = 8/bits codes per byte). Turning those into
 * floats costs a shift, a mask and a convert per VW codes, with no shuffles. The
 * activations are permuted into the same order once per call (see slot_index in
 * _kernels.c), so dot products and dequantized rows line up.
 */

#define CAT_(a, b) a##_##b
#define CAT(a, b) CAT_(a, b)
#define NAME(f) CAT(f, LEVEL)
#define STR_(a) #a
#define STR(a) STR_(a)

#define VF NAME(vf)
#define VI NAME(vi)
#define VU NAME(vu)
#define VB NAME(vb)
typedef float VF __attribute__((vector_size(VW * 4)));
typedef int32_t VI __attribute__((vector_size(VW * 4)));
typedef uint32_t VU __attribute__((vector_size(VW * 4)));
typedef uint8_t VB __attribute__((vector_size(VW)));

static inline __attribute__((always_inline)) VF NAME(load_f)(const float *p) {
    VF v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline __attribute__((always_inline)) void NAME(store_f)(float *p, VF v) { memcpy(p, &v, sizeof v); }

/* VW packed bytes, each widened to a 32-bit lane (WIDEN_BYTES: the level's own
 * instruction where the compiler would otherwise widen byte by byte). */
static inline __attribute__((always_inline)) VU NAME(load_bytes)(const uint8_t *p) {
#ifdef WIDEN_BYTES
    return (VU)WIDEN_BYTES(p);
#else
    VB b;
    memcpy(&b, p, sizeof b);
    return __builtin_convertvector(b, VU);
#endif
}

/* Slot t of a chunk as floats: the codes (byte >> bits*t) & mask (the top slot needs no
 * mask: the lanes hold single bytes). */
static inline __attribute__((always_inline)) VF NAME(slot)(VU bytes, int bits, int t) {
    VU codes = bytes >> (uint32_t)(bits * t);
    if (bits * (t + 1) < 8) codes &= (uint32_t)((1u << bits) - 1u);
    return __builtin_convertvector((VI)codes, VF);
}

/* Sum of the lanes as a tree (upper half onto lower half): log2(VW) dependent adds where
 * a left-to-right sum is a chain of VW, which decode's short rows wait on. */
#if VW == 16 /* lanes a shuffle fills but nobody reads */
#define HSUM_PAD8 , 0, 0, 0, 0, 0, 0, 0, 0
#define HSUM_PAD4 HSUM_PAD8, 0, 0, 0, 0
#elif VW == 8
#define HSUM_PAD8
#define HSUM_PAD4 , 0, 0, 0, 0
#else
#define HSUM_PAD4
#endif
static inline __attribute__((always_inline)) float NAME(hsum)(VF v) {
#if VW == 16
    v += __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15);
#endif
#if VW >= 8
    v += __builtin_shufflevector(v, v, 4, 5, 6, 7, 4, 5, 6, 7 HSUM_PAD8);
#endif
    v += __builtin_shufflevector(v, v, 2, 3, 2, 3 HSUM_PAD4);
    return v[0] + v[1];
}
#undef HSUM_PAD8
#undef HSUM_PAD4

/* sum(a[i] * b[i]) for i < n */
static inline __attribute__((always_inline)) float NAME(dot)(const float *a, const float *b, int64_t n) {
    VF acc = {0};
    int64_t i = 0;
    for (; i + VW <= n; i += VW) acc += NAME(load_f)(a + i) * NAME(load_f)(b + i);
    float s = NAME(hsum)(acc);
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

/* out[m, r] for R rows r .. r+R-1 of the weight and the first M (<= MAX_ROWS) rows of x.
 * Per group g: s_g * (codes . x_g) + b_g * sum(x_g), so codes are only converted, never
 * scaled, in the inner loop, and the biases make one dot product per row. bits, M and R
 * are constants after inlining, so the loops unroll and the accumulators live in
 * registers; R rows at once (4 for M <= 2, 2 for M <= 4; measured best, 1.5x faster than one
 * row at a time) share each load of x and keep more independent FMA chains in flight. */
static inline __attribute__((always_inline)) void NAME(gemv_tile)(const struct gemv_job *j, int64_t r, uint8_t *buf,
                                                                  const int bits, const int M, const int R) {
    const int P = 8 / bits, E = VW * P;
    const int64_t K = j->w.k, G = K / j->w.group_size, chunks = j->w.group_size / E;
    const int64_t group_bytes = (int64_t)j->w.group_size * bits / 8;
    const uint8_t *rows[MAX_TILE];
    const float *srow[MAX_TILE], *brow[MAX_TILE];
    for (int i = 0; i < R; i++) {
        const struct row row = prepare_row(&j->w, r + i, buf + i * work_bytes(K, j->w.group_size));
        rows[i] = row.codes;
        srow[i] = row.scales;
        brow[i] = row.biases;
    }
    VF total[MAX_TILE][MAX_ROWS];
    for (int i = 0; i < R; i++)
        for (int m = 0; m < M; m++) total[i][m] = (VF){0};
    for (int64_t g = 0; g < G; g++) {
        const float *xg = j->xp + g * j->w.group_size;
        VF acc[MAX_TILE][MAX_ROWS];
        for (int i = 0; i < R; i++) {
            /* the same bytes of the rows a few tiles on: the tile's rows are adjacent, so
             * anything nearer is already being read */
            if (!j->w.unpack) /* (an unpacked row is in the scratch buffer, not in W) */
                __builtin_prefetch(rows[i] + g * group_bytes + PREFETCH_TILES * R * j->w.row_bytes);
            for (int m = 0; m < M; m++) acc[i][m] = (VF){0};
        }
        for (int64_t c = 0; c < chunks; c++) {
            VU bytes[MAX_TILE];
            for (int i = 0; i < R; i++) bytes[i] = NAME(load_bytes)(rows[i] + g * group_bytes + c * VW);
            for (int t = 0; t < P; t++) {
                VF q[MAX_TILE];
                for (int i = 0; i < R; i++) q[i] = NAME(slot)(bytes[i], bits, t);
                for (int m = 0; m < M; m++) {
                    const VF xv = NAME(load_f)(xg + m * K + c * E + t * VW);
                    for (int i = 0; i < R; i++) acc[i][m] += q[i] * xv;
                }
            }
        }
        for (int i = 0; i < R; i++)
            for (int m = 0; m < M; m++) total[i][m] += srow[i][g] * acc[i][m];
    }
    for (int i = 0; i < R; i++)
        for (int m = 0; m < M; m++)
            j->out[m * j->n + r + i] = NAME(hsum)(total[i][m]) + NAME(dot)(brow[i], j->xsum + m * G, G);
}

static inline __attribute__((always_inline)) void NAME(gemv_body)(const struct gemv_job *j, int64_t r0, int64_t r1,
                                                                  uint8_t *buf, const int bits, const int M) {
    int64_t r = r0;
    if (M <= 2)
        for (; r + 4 <= r1; r += 4) NAME(gemv_tile)(j, r, buf, bits, M, 4);
    if (M <= 4)
        for (; r + 2 <= r1; r += 2) NAME(gemv_tile)(j, r, buf, bits, M, 2);
    for (; r < r1; r++) NAME(gemv_tile)(j, r, buf, bits, M, 1);
}

/* ---- 8-bit activations (opt-in): x quantized per group to int8 codes xi with a scale
 * dx_g, so codes . x_g ~ dx_g * (codes . xi), an exact integer dot product (four byte
 * products per 32-bit lane). Chunks are IB bytes; slot order as above, at byte level. */
#define VQ NAME(vq)
#define VX NAME(vx)
#define VA NAME(va)
#define VS NAME(vs)
typedef uint8_t VQ __attribute__((vector_size(IB)));
typedef int8_t VX __attribute__((vector_size(IB)));
typedef int32_t VA __attribute__((vector_size(IB)));
typedef float VS __attribute__((vector_size(IB)));

/* acc + the sums of four byte products a[4i..4i+3] * b[4i..4i+3] in each 32-bit lane i */
static inline __attribute__((always_inline)) VA NAME(dot4)(VA acc, VQ a, VX b) {
#ifdef DOT_U8S8
    return (VA)DOT_U8S8(acc, a, b);
#else
    for (int i = 0; i < IB; i++) acc[i / 4] += (int32_t)a[i] * (int32_t)b[i];
    return acc;
#endif
}

static inline __attribute__((always_inline)) void NAME(gemv_i8_body)(const struct gemv_job *j, int64_t r0,
                                                                     int64_t r1, uint8_t *buf, const int bits,
                                                                     const int M) {
    const int P = 8 / bits, E = IB * P;
    const int64_t K = j->w.k, G = K / j->w.group_size, chunks = j->w.group_size / E;
    const int64_t group_bytes = (int64_t)j->w.group_size * bits / 8;
    for (int64_t r = r0; r < r1; r++) {
        const struct row row = prepare_row(&j->w, r, buf);
        VS total[MAX_ROWS];
        for (int m = 0; m < M; m++) total[m] = (VS){0};
        for (int64_t g = 0; g < G; g++) {
            const uint8_t *wp = row.codes + g * group_bytes;
            const int8_t *xg = j->xq + g * j->w.group_size;
            if (!j->w.unpack) __builtin_prefetch(wp + PREFETCH_BYTES);
            VA acc[MAX_ROWS];
            for (int m = 0; m < M; m++) acc[m] = (VA){0};
            for (int64_t c = 0; c < chunks; c++) {
                VQ bytes;
                memcpy(&bytes, wp + c * IB, sizeof bytes);
                for (int t = 0; t < P; t++) {
                    VQ q = bytes >> (uint8_t)(bits * t);
                    if (bits * (t + 1) < 8) q &= (uint8_t)((1u << bits) - 1u);
                    for (int m = 0; m < M; m++) {
                        VX xv;
                        memcpy(&xv, xg + m * K + c * E + t * IB, sizeof xv);
                        acc[m] = NAME(dot4)(acc[m], q, xv);
                    }
                }
            }
            for (int m = 0; m < M; m++)
                total[m] += __builtin_convertvector(acc[m], VS) * (row.scales[g] * j->xscale[m * G + g]);
        }
        for (int m = 0; m < M; m++) {
            float sum = 0.0f;
            for (int i = 0; i < IB / 4; i++) sum += total[m][i];
            j->out[m * j->n + r] = sum + NAME(dot)(row.biases, j->xsum + m * G, G);
        }
    }
}

/* bits and M as compile-time constants: one instance of a body per (bits, M) pair. */
#define GEMV_M(body, bits_)                                                                 \
    switch (j->m) {                                                                         \
        case 1: NAME(body)(j, r0, r1, buf, bits_, 1); break;                                \
        case 2: NAME(body)(j, r0, r1, buf, bits_, 2); break;                                \
        case 3: NAME(body)(j, r0, r1, buf, bits_, 3); break;                                \
        case 4: NAME(body)(j, r0, r1, buf, bits_, 4); break;                                \
        case 5: NAME(body)(j, r0, r1, buf, bits_, 5); break;                                \
        case 6: NAME(body)(j, r0, r1, buf, bits_, 6); break;                                \
        case 7: NAME(body)(j, r0, r1, buf, bits_, 7); break;                                \
        default: NAME(body)(j, r0, r1, buf, bits_, 8); break;                               \
    }
/* the rows function of a body: dispatch on the slot width, then on M */
#define GEMV_ROWS(rows, body)                                                                     \
    static void NAME(rows)(const struct gemv_job *j, int64_t r0, int64_t r1, uint8_t *buf) {    \
        switch (j->w.slot_bits) {                                                                 \
            case 1: GEMV_M(body, 1) break;                                                        \
            case 2: GEMV_M(body, 2) break;                                                        \
            case 4: GEMV_M(body, 4) break;                                                        \
            default: GEMV_M(body, 8) break;                                                       \
        }                                                                                         \
    }
GEMV_ROWS(gemv_rows, gemv_body)
GEMV_ROWS(gemv_i8_rows, gemv_i8_body)
#undef GEMV_ROWS
#undef GEMV_M

/* Rows [r0, r1) of the weight as float32 s*q + b, columns in slot order, into
 * out[(r - r0) * K ...]. */
static inline __attribute__((always_inline)) void NAME(dequant_body)(const struct dequant_job *j, int64_t r0,
                                                                     int64_t r1, uint8_t *buf, const int bits) {
    const int P = 8 / bits, E = VW * P;
    const int64_t K = j->w.k, G = K / j->w.group_size, chunks = j->w.group_size / E;
    const int64_t group_bytes = (int64_t)j->w.group_size * bits / 8;
    for (int64_t r = r0; r < r1; r++) {
        const struct row row = prepare_row(&j->w, r, buf);
        float *o = j->out + (r - j->row0) * K;
        for (int64_t g = 0; g < G; g++) {
            const float s = row.scales[g], b = row.biases[g];
            const uint8_t *wp = row.codes + g * group_bytes;
            float *og = o + g * j->w.group_size;
            for (int64_t c = 0; c < chunks; c++) {
                const VU bytes = NAME(load_bytes)(wp + c * VW);
                for (int t = 0; t < P; t++) NAME(store_f)(og + c * E + t * VW, NAME(slot)(bytes, bits, t) * s + b);
            }
        }
    }
}

static void NAME(dequant_rows)(const struct dequant_job *j, int64_t r0, int64_t r1, uint8_t *buf) {
    switch (j->w.slot_bits) {
        case 1: NAME(dequant_body)(j, r0, r1, buf, 1); break;
        case 2: NAME(dequant_body)(j, r0, r1, buf, 2); break;
        case 4: NAME(dequant_body)(j, r0, r1, buf, 4); break;
        default: NAME(dequant_body)(j, r0, r1, buf, 8); break;
    }
}

/* ---- attention for a few query rows (decode): one query row against its keys,
 * out = softmax(scale * K q) V, in float32. k and v rows are `ks`/`vs` floats apart;
 * scores: scratch for n floats. */
static void NAME(attend_row)(const float *q, const float *k, int64_t ks, const float *v, int64_t vs, int64_t n,
                             int64_t d, int64_t dv, float scale, float *scores, float *out) {
    int64_t j = 0;
    for (; j + 4 <= n; j += 4) { /* four keys at a time: four independent FMA chains */
        VF acc[4] = {{0}};
        int64_t i = 0;
        for (; i + VW <= d; i += VW) {
            const VF qv = NAME(load_f)(q + i);
            for (int t = 0; t < 4; t++) acc[t] += qv * NAME(load_f)(k + (j + t) * ks + i);
        }
        for (int t = 0; t < 4; t++) {
            float sum = NAME(hsum)(acc[t]);
            for (int64_t c = i; c < d; c++) sum += q[c] * k[(j + t) * ks + c];
            scores[j + t] = sum * scale;
        }
    }
    for (; j < n; j++) scores[j] = NAME(dot)(q, k + j * ks, d) * scale;
    float top = -INFINITY;
    for (j = 0; j < n; j++) top = scores[j] > top ? scores[j] : top;
    float total = 0.0f;
    for (j = 0; j < n; j++) total += scores[j] = expf(scores[j] - top);
    int64_t i = 0;
    for (; i + 8 * VW <= dv; i += 8 * VW) { /* 8 vectors of output columns: 8 independent chains */
        VF acc[8] = {{0}};
        for (j = 0; j < n; j++)
            for (int t = 0; t < 8; t++) acc[t] += scores[j] * NAME(load_f)(v + j * vs + i + t * VW);
        for (int t = 0; t < 8; t++) NAME(store_f)(out + i + t * VW, acc[t] / total);
    }
    for (; i + VW <= dv; i += VW) {
        VF acc = {0};
        for (j = 0; j < n; j++) acc += scores[j] * NAME(load_f)(v + j * vs + i);
        NAME(store_f)(out + i, acc / total);
    }
    for (; i < dv; i++) {
        float acc = 0.0f;
        for (j = 0; j < n; j++) acc += scores[j] * v[j * vs + i];
        out[i] = acc / total;
    }
}

static const struct level NAME(level) = {STR(LEVEL),     VW,          IB,
                                          INT8_MAX_BITS,   NAME(gemv_rows), NAME(gemv_i8_rows),
                                          NAME(dequant_rows), NAME(attend_row)};

#undef VQ
#undef VX
#undef VA
#undef VS
#undef VF
#undef VI
#undef VU
#undef VB
#undef NAME
#undef CAT
#undef CAT_
#undef STR
#undef STR_
