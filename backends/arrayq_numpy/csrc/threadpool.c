/* The persistent thread pool the decode kernel runs on (see run_parallel).
 *
 * A job is cut into parts, which the calling thread and the workers claim one at a time
 * from one atomic counter, so a worker that the OS has not scheduled yet (another
 * process, or another library's spinning threads, on the core) delays nothing: the others
 * take its parts. The counter holds (job id, parts, next part); a thread runs a job's
 * function only after claiming one of its parts, and the caller returns only once no
 * worker is inside a job, so no late worker can run a finished job.
 * Idle workers spin for SPIN_NS after a job (decode calls come every few tens of
 * microseconds, and a wake-up costs more than that), then sleep on a condition variable.
 * SPIN_NS covers decode's longest regular gap: attention, between a layer's qkv and o
 * projections (measured on the qwen3-0.6b preset at 2 threads: median ~200 us, 90% under
 * ~310 us; with 0.2 ms the worker slept before half of the o projections). */
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include "kernels.h"

#define SPIN_NS 1000000
#define PARTS_PER_THREAD 4

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
void run_parallel(task_fn fn, void *ctx, int64_t max_parts) {
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
    for (int spins = 1; atomic_load(&pool.active) > 0; spins++) {
        if ((spins & 1023) == 0) sched_yield(); /* a worker inside a part may be waiting for this core */
        cpu_relax();
    }
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


struct probe_task {
    const uint64_t *words;
    int64_t n;
    _Atomic uint64_t folded;
};

static void probe_part(void *ctx, int part, int parts) {
    struct probe_task *t = ctx;
    uint64_t acc = 0;
    for (int64_t i = t->n * part / parts; i < t->n * (part + 1) / parts; i++) acc ^= t->words[i];
    atomic_fetch_xor(&t->folded, acc);
}

uint64_t pool_probe(const uint64_t *words, int64_t n, int64_t parts) {
    struct probe_task task = {words, n, 0};
    run_parallel(probe_part, &task, parts);
    return atomic_load(&task.folded);
}

int pool_threads(void) {
    const int wanted = atomic_load(&wanted_threads);
    return wanted > 0 ? wanted : default_threads();
}

void set_pool_threads(int n) {
    pthread_mutex_lock(&pool.call_mu);
    stop_pool();
    atomic_store(&wanted_threads, n);
    pthread_mutex_unlock(&pool.call_mu);
}

void pool_init(void) {
    static int fork_handler;
    if (!fork_handler) fork_handler = pthread_atfork(NULL, NULL, after_fork_in_child) == 0;
}
