/* arrayq_numpy._kernels: native kernels for MLX's affine quantized format.
 *
 * Two kernels, each over a range of weight rows:
 *   gemv        out (M, N) = x (M, K) @ W.T for M <= MAX_ROWS (decode), on a persistent
 *               thread pool,
 *   dequantize  W rows as float32 (for prefill, where BLAS then does the matmul), on the
 *               calling thread.
 * W is given as MLX stores it: packed codes (N, K*bits/8 bytes), scales and biases
 * (N, K/group_size) in float32, float16 or bfloat16; W = scale * code + bias per group.
 * Arithmetic is float32 throughout (scales widened first).
 *
 * The arithmetic lives in _kernels_body.h, compiled here once per SIMD level (AVX-512,
 * AVX2, and a portable level) and chosen at run time by what the CPU supports; callers may
 * ask for a lower level (the tests run every level the machine has).
 *
 * Python calls these through the buffer protocol with shapes passed explicitly; the
 * Python side (arrayq_numpy._native) has validated them, and this file checks buffer sizes
 * again so that a wrong call raises instead of reading out of bounds.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_ROWS 8
#define MAX_TILE 4 /* weight rows the decode kernel takes at once */
#ifndef PREFETCH_BYTES
#define PREFETCH_BYTES 2048 /* how far ahead the 8-bit-activation and dequantize loops read */
#endif
#ifndef PREFETCH_TILES
#define PREFETCH_TILES 2 /* how many tiles of rows ahead the decode kernel reads */
#endif
#define MAX_THREADS 256

enum scale_kind { SCALE_F32 = 0, SCALE_F16 = 1, SCALE_BF16 = 2 };

/* ------------------------------------------------------------------ scalar helpers */
static inline float half_to_float(uint16_t h) {
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
static void unpack_row(const uint8_t *src, int bits, int64_t k, uint8_t *dst) {
    const uint64_t mask = (1u << bits) - 1u;
    for (int64_t i = 0; i < k; i += 8, src += bits) {
        uint64_t word = 0;
        for (int b = 0; b < bits; b++) word |= (uint64_t)src[b] << (8 * b);
        for (int c = 0; c < 8; c++) dst[i + c] = (uint8_t)((word >> (bits * c)) & mask);
    }
}

/* ------------------------------------------------------------------ jobs and levels */
/* Scratch for one weight row: its codes of codes unpacked to bytes (k), then its scales and biases
 * as float32 (2 * k / group_size), float-aligned. */
static size_t work_bytes(int64_t k, int group_size) {
    return (size_t)k + 2 * (size_t)(k / group_size) * sizeof(float);
}

/* W as both kernels read it. slot_bits: the width the kernel reads codes at (bits, or 8
 * where rows are first unpacked to one byte per code: unpack). */
struct weight {
    const uint8_t *packed;
    const void *scales, *biases;
    int64_t k, row_bytes;
    int group_size, bits, slot_bits, unpack, scale_kind;
};

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

#if defined(__x86_64__) || defined(__i386__)
#define X86 1
#include <cpuid.h>
#include <immintrin.h>
#ifdef __clang__
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,fma"))), \
                             apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,fma")
#endif
#define LEVEL avx512
#define VW 16
#define WIDEN_BYTES(p) _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(p)))
#define IB 32
#define INT8_MAX_BITS 8
#define DOT_U8S8(acc, a, b) _mm256_dpbusd_epi32((__m256i)(acc), (__m256i)(a), (__m256i)(b))
#include "_kernels_body.h"
#undef LEVEL
#undef VW
#undef WIDEN_BYTES
#undef IB
#undef INT8_MAX_BITS
#undef DOT_U8S8
#ifdef __clang__
#pragma clang attribute pop
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC pop_options
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#endif
#define LEVEL avx2
#define VW 8
#define WIDEN_BYTES(p) _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(p)))
#define IB 32
/* pairs of u8*s8 products sum into int16 (saturating): codes up to 63 keep 2*63*127 in range */
#define INT8_MAX_BITS 6
#define DOT_U8S8(acc, a, b) \
    _mm256_add_epi32((__m256i)(acc), _mm256_madd_epi16(_mm256_maddubs_epi16((__m256i)(a), (__m256i)(b)), _mm256_set1_epi16(1)))
#include "_kernels_body.h"
#undef LEVEL
#undef VW
#undef WIDEN_BYTES
#undef IB
#undef INT8_MAX_BITS
#undef DOT_U8S8
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
#include "_kernels_body.h"
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
    const int fma = (c >> 12) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1;
    if (!(fma && osxsave && avx)) return 0;
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

static void find_levels(void) {
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

/* x (k values) as int8 codes per group, xi = round(x / dx) with dx = max|x_g| / 127
 * (dx = 0 and codes 0 for an all-zero group), codes in natural order. */
static void quantize_activations(int8_t *xi, float *dx, const float *x, int64_t k, int group_size) {
    for (int64_t g = 0; g < k / group_size; g++) {
        const float *xg = x + g * group_size;
        float amax = 0.0f;
        int nan = 0;
        for (int i = 0; i < group_size; i++) {
            amax = fmaxf(amax, fabsf(xg[i]));
            nan |= xg[i] != xg[i];
        }
        dx[g] = nan ? NAN : amax / 127.0f; /* a NaN in x makes the group's result NaN, as in float32 */
        const float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
        for (int i = 0; i < group_size; i++) xi[g * group_size + i] = (int8_t)lrintf(xg[i] * inv);
    }
}

/* ------------------------------------------------------------------ the thread pool
 * A job is cut into parts, which the calling thread and the workers claim one at a time
 * from one atomic counter, so a worker that the OS has not scheduled yet (another
 * process, or another library's spinning threads, on the core) delays nothing: the others
 * take its parts. The counter holds (job id, parts, next part); a thread runs a job's
 * function only after claiming one of its parts, and the caller returns only once no
 * worker is inside a job, so no late worker can run a finished job.
 * Idle workers spin for SPIN_NS after a job (decode calls come every few tens of
 * microseconds, and a wake-up costs more than that), then sleep on a condition variable. */
#define SPIN_NS 200000
#define PARTS_PER_THREAD 4

typedef void (*task_fn)(void *ctx, int part, int parts);

static struct {
    int threads; /* 0: not started; includes the calling thread */
    pthread_t tid[MAX_THREADS];
    atomic_uint generation;    /* bumped to wake the workers: a new job, or stop */
    unsigned start_generation; /* generation when the workers were started */
    _Atomic uint64_t next;     /* job id << 32 | parts << 16 | next part to claim */
    uint32_t job;
    atomic_int active, sleepers, stop;
    task_fn fn;
    void *ctx;
    pthread_mutex_t mu, call_mu;
    pthread_cond_t cv;
} pool = {.mu = PTHREAD_MUTEX_INITIALIZER, .call_mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static atomic_int wanted_threads; /* 0: one per CPU this process may run on */

static inline void cpu_relax(void) {
#ifdef X86
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Claim and run parts of the current job until none are left. */
static void run_parts(void) {
    uint64_t cur = atomic_load(&pool.next);
    for (;;) {
        const int parts = (int)((cur >> 16) & 0xffff), part = (int)(cur & 0xffff);
        if (part >= parts) return;
        if (atomic_compare_exchange_weak(&pool.next, &cur, cur + 1)) {
            pool.fn(pool.ctx, part, parts);
            cur = atomic_load(&pool.next);
        }
    }
}

static void *worker(void *arg) {
    (void)arg;
    unsigned seen = pool.start_generation; /* wake-ups before this thread existed are not its own */
    for (;;) {
        unsigned gen;
        int64_t spin_until = 0;
        for (int spins = 0; (gen = atomic_load_explicit(&pool.generation, memory_order_acquire)) == seen; spins++) {
            if ((spins & 255) == 0) {
                sched_yield(); /* a spinning worker gives way to any other thread wanting the core */
                const int64_t t = now_ns();
                if (!spin_until) spin_until = t + SPIN_NS;
                if (t > spin_until) {
                    pthread_mutex_lock(&pool.mu);
                    atomic_fetch_add(&pool.sleepers, 1);
                    while ((gen = atomic_load(&pool.generation)) == seen) pthread_cond_wait(&pool.cv, &pool.mu);
                    atomic_fetch_sub(&pool.sleepers, 1);
                    pthread_mutex_unlock(&pool.mu);
                    break;
                }
            }
            cpu_relax();
        }
        seen = gen;
        if (atomic_load(&pool.stop)) return NULL;
        atomic_fetch_add(&pool.active, 1); /* before claiming: the caller waits for it */
        run_parts();
        atomic_fetch_sub(&pool.active, 1);
    }
}

static int default_threads(void) {
#ifdef __linux__
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) return CPU_COUNT(&set);
#endif
    const long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

static void wake_all(void) {
    atomic_fetch_add(&pool.generation, 1);
    if (atomic_load(&pool.sleepers) > 0) {
        pthread_mutex_lock(&pool.mu);
        pthread_cond_broadcast(&pool.cv);
        pthread_mutex_unlock(&pool.mu);
    }
}

static void stop_pool(void) { /* call_mu held */
    if (pool.threads <= 1) {
        pool.threads = 0;
        return;
    }
    atomic_store(&pool.stop, 1);
    wake_all();
    for (int i = 1; i < pool.threads; i++) pthread_join(pool.tid[i], NULL);
    atomic_store(&pool.stop, 0);
    pool.threads = 0;
}

static void start_pool(void) { /* call_mu held */
    const int wanted = atomic_load(&wanted_threads);
    int n = wanted > 0 ? wanted : default_threads();
    if (n > MAX_THREADS) n = MAX_THREADS;
    pool.start_generation = atomic_load(&pool.generation);
    pool.threads = 1;
    for (int i = 1; i < n; i++) {
        if (pthread_create(&pool.tid[i], NULL, worker, NULL) != 0) break; /* fewer threads */
        pool.threads = i + 1;
    }
}

/* fn(ctx, part, parts) for every part = 0..parts-1 (in any order, on any thread), with
 * parts chosen here, at most max_parts; max_parts = 1 runs inline. */
static void run_parallel(task_fn fn, void *ctx, int64_t max_parts) {
    if (max_parts <= 1) {
        fn(ctx, 0, 1);
        return;
    }
    pthread_mutex_lock(&pool.call_mu); /* one job at a time, from any Python thread */
    if (pool.threads == 0) start_pool();
    int64_t parts = (int64_t)pool.threads * PARTS_PER_THREAD;
    if (parts > max_parts) parts = max_parts;
    if (pool.threads == 1 || parts <= 1) {
        pthread_mutex_unlock(&pool.call_mu);
        fn(ctx, 0, 1);
        return;
    }
    pool.fn = fn;
    pool.ctx = ctx;
    pool.job++;
    atomic_store(&pool.next, (uint64_t)pool.job << 32 | (uint64_t)parts << 16);
    wake_all();
    run_parts();
    while (atomic_load(&pool.active) > 0) cpu_relax();
    pthread_mutex_unlock(&pool.call_mu);
}

/* A forked child has no pool threads: start afresh on its first call. */
static void after_fork_in_child(void) {
    pthread_mutex_init(&pool.mu, NULL);
    pthread_mutex_init(&pool.call_mu, NULL);
    pthread_cond_init(&pool.cv, NULL);
    pool.threads = 0;
    atomic_store(&pool.sleepers, 0);
    atomic_store(&pool.active, 0);
    atomic_store(&pool.stop, 0);
}

/* ------------------------------------------------------------------ tasks */
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
    (t->int8 ? t->lv->gemv_i8_rows : t->lv->gemv_rows)(t->job, r0, r1, buf);
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

/* ------------------------------------------------------------------ Python glue */
static const struct level *level_arg(int index) {
    if (index < 0 || index >= n_levels) {
        PyErr_Format(PyExc_ValueError, "level index %d out of range: this CPU has %d levels", index, n_levels);
        return NULL;
    }
    return levels[index];
}

/* a * b * c / divisor bytes; -1 with a ValueError set where the product overflows */
static Py_ssize_t byte_count(int64_t a, int64_t b, int64_t c, int64_t divisor) {
    int64_t ab, abc;
    if (__builtin_mul_overflow(a, b, &ab) || __builtin_mul_overflow(ab, c, &abc) || abc / divisor > PY_SSIZE_T_MAX) {
        PyErr_SetString(PyExc_ValueError, "array sizes overflow");
        return -1;
    }
    return (Py_ssize_t)(abc / divisor);
}

/* A C-contiguous buffer of at least `need` bytes whose start is aligned to `align` bytes;
 * need < 0 (an overflowed size, error set) fails at once. */
static int get_buffer(PyObject *obj, Py_buffer *view, Py_ssize_t need, int align, int writable, const char *what) {
    if (need < 0) return -1;
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | (writable ? PyBUF_WRITABLE : 0)) < 0) return -1;
    if (view->len < need) {
        PyErr_Format(PyExc_ValueError, "%s holds %zd bytes, need %zd", what, view->len, need);
        PyBuffer_Release(view);
        return -1;
    }
    if ((uintptr_t)view->buf % (uintptr_t)align) {
        PyErr_Format(PyExc_ValueError, "%s is not aligned to %d bytes", what, align);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

static int check_format(int64_t k, int group_size, int bits, int scale_kind) {
    if (bits < 1 || bits > 8 || group_size <= 0 || group_size % 32 || k <= 0 || k % group_size ||
        scale_kind < SCALE_F32 || scale_kind > SCALE_BF16) {
        PyErr_Format(PyExc_ValueError, "unsupported format: k=%lld group_size=%d bits=%d scale_kind=%d",
                     (long long)k, group_size, bits, scale_kind);
        return -1;
    }
    return 0;
}

static void release_buffers(Py_buffer *views, int n) {
    while (n > 0) PyBuffer_Release(&views[--n]);
}

/* The packed words, scales and biases of W's first `rows` rows as views[0..2], checked
 * for size and alignment; on failure none is held. */
static int get_weight_buffers(PyObject *packed, PyObject *scales, PyObject *biases, int64_t rows, int64_t k,
                              int group_size, int bits, int scale_kind, Py_buffer views[3]) {
    const int64_t groups = k / group_size, scale_bytes = scale_kind == SCALE_F32 ? 4 : 2;
    if (get_buffer(packed, &views[0], byte_count(rows, k, bits, 8), 1, 0, "packed") < 0) return -1;
    if (get_buffer(scales, &views[1], byte_count(rows, groups, scale_bytes, 1), (int)scale_bytes, 0, "scales") < 0) {
        release_buffers(views, 1);
        return -1;
    }
    if (get_buffer(biases, &views[2], byte_count(rows, groups, scale_bytes, 1), (int)scale_bytes, 0, "biases") < 0) {
        release_buffers(views, 2);
        return -1;
    }
    return 0;
}

/* W as the kernels read it, from get_weight_buffers' views, its codes read at slot_bits */
static struct weight weight_of(const Py_buffer views[3], int64_t k, int group_size, int bits, int slot_bits,
                               int scale_kind) {
    const struct weight w = {views[0].buf, views[1].buf, views[2].buf, k,        k * bits / 8,
                             group_size,   bits,         slot_bits,    slot_bits != bits, scale_kind};
    return w;
}

static PyObject *py_levels(PyObject *self, PyObject *args) {
    PyObject *out = PyTuple_New(n_levels);
    for (int i = 0; out && i < n_levels; i++) PyTuple_SET_ITEM(out, i, PyUnicode_FromString(levels[i]->name));
    return out;
}

static PyObject *py_num_threads(PyObject *self, PyObject *args) {
    const int wanted = atomic_load(&wanted_threads);
    return PyLong_FromLong(wanted > 0 ? wanted : default_threads());
}

static PyObject *py_set_num_threads(PyObject *self, PyObject *arg) {
    const long n = PyLong_AsLong(arg);
    if (n == -1 && PyErr_Occurred()) return NULL;
    if (n < 0 || n > MAX_THREADS) {
        PyErr_Format(PyExc_ValueError, "threads must be 0 (one per CPU) to %d, got %ld", MAX_THREADS, n);
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS pthread_mutex_lock(&pool.call_mu);
    stop_pool();
    atomic_store(&wanted_threads, (int)n);
    pthread_mutex_unlock(&pool.call_mu);
    Py_END_ALLOW_THREADS Py_RETURN_NONE;
}

/* gemv(level, x, packed, scales, biases, out, m, n, k, group_size, bits, scale_kind[, int8]) */
static PyObject *py_gemv(PyObject *self, PyObject *args) {
    int level_index, group_size, bits, scale_kind, int8 = 0;
    long long m, n, k;
    PyObject *ox, *op, *os, *ob, *oo;
    if (!PyArg_ParseTuple(args, "iOOOOOLLLiii|p", &level_index, &ox, &op, &os, &ob, &oo, &m, &n, &k, &group_size,
                          &bits, &scale_kind, &int8))
        return NULL;
    const struct level *lv = level_arg(level_index);
    if (!lv || check_format(k, group_size, bits, scale_kind) < 0) return NULL;
    if (m < 1 || m > MAX_ROWS || n < 0) {
        PyErr_Format(PyExc_ValueError, "gemv takes 1 to %d rows of x and n >= 0, got m=%lld n=%lld", MAX_ROWS, m, n);
        return NULL;
    }
    const int64_t groups = k / group_size;
    Py_buffer x, wv[3], o;
    if (get_buffer(ox, &x, byte_count(m, k, 4, 1), 4, 0, "x") < 0) return NULL;
    if (get_weight_buffers(op, os, ob, n, k, group_size, bits, scale_kind, wv) < 0) goto fail_x;
    if (get_buffer(oo, &o, byte_count(m, n, 4, 1), 4, 1, "out") < 0) goto fail_w;

    const int int8_bits = int8 ? int8_slot_bits_for(lv, bits, group_size) : 0;
    const int slot_bits = int8_bits ? int8_bits : slot_bits_for(lv, bits, group_size);
    /* x in the kernel's order: float32 (xp), or int8 codes (xq) with scales (xscale) */
    float *xp = malloc((size_t)(m * k + 2 * m * groups) * sizeof(float) + (size_t)(2 * m * k));
    if (!xp) {
        PyErr_NoMemory();
        goto fail_o;
    }
    float *xsum = xp + m * k, *xscale = xsum + m * groups;
    int8_t *xq = (int8_t *)(xscale + m * groups), *xq_natural = xq + m * k;
    const float *xs = x.buf;
    int out_of_memory;
    Py_BEGIN_ALLOW_THREADS for (int64_t r = 0; r < m; r++) {
        if (int8_bits) {
            quantize_activations(xq_natural + r * k, xscale + r * groups, xs + r * k, k, group_size);
            to_slot_order_i8(xq + r * k, xq_natural + r * k, k, lv->int8_bytes, slot_bits);
        } else {
            to_slot_order(xp + r * k, xs + r * k, k, lv->lanes, slot_bits);
        }
        /* sum(x_g) for the biases; with 8-bit activations the sum of the dequantized codes:
         * then the rounding error of x meets s*q + b, not s*q alone (whose mean is far from
         * zero), which is ~3x more accurate for MLX's weights (measured) */
        for (int64_t g = 0; g < groups; g++) {
            float acc = 0.0f;
            if (int8_bits) {
                int32_t codes = 0;
                for (int64_t c = g * group_size; c < (g + 1) * group_size; c++) codes += xq_natural[r * k + c];
                acc = (float)codes * xscale[r * groups + g];
            } else {
                for (int64_t c = g * group_size; c < (g + 1) * group_size; c++) acc += xs[r * k + c];
            }
            xsum[r * groups + g] = acc;
        }
    }
    const struct weight w = weight_of(wv, k, group_size, bits, slot_bits, scale_kind);
    const struct gemv_job job = {xp, xsum, xq, xscale, w, o.buf, m, n};
    struct gemv_task task = {lv, &job, int8_bits != 0, 0};
    run_parallel(gemv_part, (void *)&task, n * k < PARALLEL_MIN_WEIGHTS ? 1 : (n + 15) / 16);
    out_of_memory = atomic_load(&task.out_of_memory);
    Py_END_ALLOW_THREADS free(xp);
    if (out_of_memory) {
        PyErr_NoMemory();
        goto fail_o;
    }
    PyBuffer_Release(&o);
    release_buffers(wv, 3);
    PyBuffer_Release(&x);
    Py_RETURN_NONE;
fail_o:
    PyBuffer_Release(&o);
fail_w:
    release_buffers(wv, 3);
fail_x:
    PyBuffer_Release(&x);
    return NULL;
}

/* dequantize(level, packed, scales, biases, out, row0, rows, k, group_size, bits, scale_kind):
 * rows [row0, row0 + rows) of W into out (rows, k) float32, columns in slot order. */
static PyObject *py_dequantize(PyObject *self, PyObject *args) {
    int level_index, group_size, bits, scale_kind;
    long long row0, rows, k;
    PyObject *op, *os, *ob, *oo;
    if (!PyArg_ParseTuple(args, "iOOOOLLLiii", &level_index, &op, &os, &ob, &oo, &row0, &rows, &k, &group_size,
                          &bits, &scale_kind))
        return NULL;
    const struct level *lv = level_arg(level_index);
    if (!lv || check_format(k, group_size, bits, scale_kind) < 0) return NULL;
    if (row0 < 0 || rows < 0) {
        PyErr_Format(PyExc_ValueError, "need row0 >= 0 and rows >= 0, got %lld and %lld", row0, rows);
        return NULL;
    }
    if (row0 > INT64_MAX - rows) {
        PyErr_SetString(PyExc_ValueError, "array sizes overflow");
        return NULL;
    }
    Py_buffer wv[3], o;
    if (get_weight_buffers(op, os, ob, row0 + rows, k, group_size, bits, scale_kind, wv) < 0) return NULL;
    if (get_buffer(oo, &o, byte_count(rows, k, 4, 1), 4, 1, "out") < 0) goto fail_w;
    const struct weight w = weight_of(wv, k, group_size, bits, slot_bits_for(lv, bits, group_size), scale_kind);
    const struct dequant_job job = {w, o.buf, row0};
    struct dequant_task task = {lv, &job, rows, 0};
    /* on the calling thread alone: a block dequantizes in ~5% of the BLAS call that
     * follows it, and pool workers woken for it then compete with BLAS's own threads
     * (measured: prefill then varied between 150 and 240 tok/s; alone, 230-240) */
    Py_BEGIN_ALLOW_THREADS dequant_part((void *)&task, 0, 1);
    Py_END_ALLOW_THREADS if (atomic_load(&task.out_of_memory)) {
        PyErr_NoMemory();
        goto fail_o;
    }
    PyBuffer_Release(&o);
    release_buffers(wv, 3);
    Py_RETURN_NONE;
fail_o:
    PyBuffer_Release(&o);
fail_w:
    release_buffers(wv, 3);
    return NULL;
}

/* slot_order(level, k, group_size, bits) -> bytes of int64 (k,): the columns in slot
 * order, so that x[:, order] is x as the kernels read it */
static PyObject *py_slot_order(PyObject *self, PyObject *args) {
    int level_index, group_size, bits;
    long long k;
    if (!PyArg_ParseTuple(args, "iLii", &level_index, &k, &group_size, &bits)) return NULL;
    const struct level *lv = level_arg(level_index);
    if (!lv || check_format(k, group_size, bits, SCALE_F32) < 0) return NULL;
    const Py_ssize_t size = byte_count(k, 8, 1, 1);
    if (size < 0) return NULL;
    PyObject *out = PyBytes_FromStringAndSize(NULL, size);
    if (!out) return NULL;
    int64_t *columns = malloc((size_t)size);
    if (!columns) {
        Py_DECREF(out);
        return PyErr_NoMemory();
    }
    for (int64_t c = 0; c < k; c++) columns[c] = c;
    to_slot_order_i64((int64_t *)PyBytes_AS_STRING(out), columns, k, lv->lanes, slot_bits_for(lv, bits, group_size));
    free(columns);
    return out;
}

/* A float32 4-d array whose last axis is contiguous, as (buffer, strides in floats). */
static int get_rows4(PyObject *obj, Py_buffer *view, int writable, const char *what) {
    if (PyObject_GetBuffer(obj, view, PyBUF_RECORDS_RO | (writable ? PyBUF_WRITABLE : 0)) < 0) return -1;
    int ok = view->ndim == 4 && view->itemsize == 4 && view->format && strcmp(view->format, "f") == 0 &&
             (uintptr_t)view->buf % 4 == 0 && (view->shape[3] <= 1 || view->strides[3] == 4);
    for (int i = 0; ok && i < 3; i++) ok = view->strides[i] >= 0 && view->strides[i] % 4 == 0;
    if (!ok) {
        PyErr_Format(PyExc_ValueError, "%s must be a 4-d float32 array with a contiguous last axis", what);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

/* attention(level, q, k, v, out, scale, causal): out (B, H, L, Dv) = softmax(scale * q k^T
 * [+ causal mask]) v for q (B, H, L, D), k (B, Hkv, S, D), v (B, Hkv, S, Dv); query head h
 * reads key/value head h / (H / Hkv). causal: query l sees keys j <= S - L + l. On the
 * calling thread (decode's attention is a few microseconds of work). */
static PyObject *py_attention(PyObject *self, PyObject *args) {
    int level_index, causal;
    float scale;
    PyObject *oq, *ok, *ov, *oo;
    if (!PyArg_ParseTuple(args, "iOOOOfp", &level_index, &oq, &ok, &ov, &oo, &scale, &causal)) return NULL;
    const struct level *lv = level_arg(level_index);
    if (!lv) return NULL;
    Py_buffer q, k, v, o;
    if (get_rows4(oq, &q, 0, "q") < 0) return NULL;
    if (get_rows4(ok, &k, 0, "k") < 0) goto fail_q;
    if (get_rows4(ov, &v, 0, "v") < 0) goto fail_k;
    if (get_rows4(oo, &o, 1, "out") < 0) goto fail_v;
    const Py_ssize_t B = q.shape[0], H = q.shape[1], L = q.shape[2], D = q.shape[3];
    const Py_ssize_t Hkv = k.shape[1], S = k.shape[2], Dv = v.shape[3];
    if (Hkv < 1 || H % Hkv || k.shape[0] != B || k.shape[3] != D || v.shape[0] != B || v.shape[1] != Hkv ||
        v.shape[2] != S || o.shape[0] != B || o.shape[1] != H || o.shape[2] != L || o.shape[3] != Dv ||
        (causal && L > S)) {
        PyErr_SetString(PyExc_ValueError, "attention shapes do not fit");
        goto fail_o;
    }
    float *scores = malloc((size_t)(S > 0 ? S : 1) * sizeof(float));
    if (!scores) {
        PyErr_NoMemory();
        goto fail_o;
    }
    const Py_ssize_t rep = H / Hkv;
/* the row (i0, i1, i2) of a 4-d view */
#define AT(view, i0, i1, i2) \
    ((float *)((char *)(view).buf + (i0) * (view).strides[0] + (i1) * (view).strides[1] + (i2) * (view).strides[2]))
    Py_BEGIN_ALLOW_THREADS for (Py_ssize_t b = 0; b < B; b++) {
        for (Py_ssize_t h = 0; h < H; h++) {
            const float *keys = AT(k, b, h / rep, 0), *values = AT(v, b, h / rep, 0);
            for (Py_ssize_t l = 0; l < L; l++) {
                const Py_ssize_t seen = causal ? S - L + l + 1 : S;
                lv->attend_row(AT(q, b, h, l), keys, k.strides[2] / 4, values, v.strides[2] / 4, seen, D, Dv, scale,
                               scores, AT(o, b, h, l));
            }
        }
    }
    Py_END_ALLOW_THREADS
#undef AT
    free(scores);
    PyBuffer_Release(&o);
    PyBuffer_Release(&v);
    PyBuffer_Release(&k);
    PyBuffer_Release(&q);
    Py_RETURN_NONE;
fail_o:
    PyBuffer_Release(&o);
fail_v:
    PyBuffer_Release(&v);
fail_k:
    PyBuffer_Release(&k);
fail_q:
    PyBuffer_Release(&q);
    return NULL;
}

/* int8_runs(level, bits, group_size) -> bool */
static PyObject *py_int8_runs(PyObject *self, PyObject *args) {
    int level_index, bits, group_size;
    if (!PyArg_ParseTuple(args, "iii", &level_index, &bits, &group_size)) return NULL;
    const struct level *lv = level_arg(level_index);
    if (!lv || check_format(group_size, group_size, bits, SCALE_F32) < 0) return NULL;
    return PyBool_FromLong(int8_slot_bits_for(lv, bits, group_size) != 0);
}

static PyMethodDef methods[] = {
    {"levels", py_levels, METH_NOARGS, "SIMD levels this CPU runs, best first."},
    {"num_threads", py_num_threads, METH_NOARGS, "Threads a parallel call uses (the caller included)."},
    {"set_num_threads", py_set_num_threads, METH_O, "Set the thread count (0: one per CPU); restarts the pool."},
    {"gemv", py_gemv, METH_VARARGS, "out = x @ W.T for 1..8 rows of x (see _kernels.c)."},
    {"int8_runs", py_int8_runs, METH_VARARGS, "Whether the 8-bit-activation kernel takes this format."},
    {"dequantize", py_dequantize, METH_VARARGS, "Rows of W as float32, columns in slot order (see _kernels.c)."},
    {"slot_order", py_slot_order, METH_VARARGS, "The columns in slot order, as int64 bytes."},
    {"attention", py_attention, METH_VARARGS, "Softmax attention for a few query rows (see _kernels.c)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_kernels", "arrayq's native quantized kernels.", -1,
                                    methods};

PyMODINIT_FUNC PyInit__kernels(void) {
    find_levels();
    static int fork_handler;
    if (!fork_handler) fork_handler = pthread_atfork(NULL, NULL, after_fork_in_child) == 0;
    PyObject *m = PyModule_Create(&module);
    if (m) PyModule_AddIntConstant(m, "MAX_ROWS", MAX_ROWS);
    return m;
}
