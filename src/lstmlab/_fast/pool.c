/*
 * Worker threads for the C kernels: a job's parts start within a microsecond or so and the caller learns
 * the moment they end.
 *
 * Why not Python's ThreadPoolExecutor: a sleeping Python worker takes tens of microseconds to wake (a
 * futex, then the GIL), and the caller sleeps on the result and takes as long to wake again. Measured on a
 * (32, 100, 64, 128) LSTM forward of ~2 ms: the second thread started 80 us after the first and its end
 * reached the caller 60 us late. Here the pool's threads poll for the next job for a while after each one
 * (SPIN_NS; OpenMP runtimes do the same) before sleeping on a condition variable, and the caller
 * polls for the end of the parts. The GIL is not involved: a ctypes call releases it for its duration.
 */
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <time.h>

#include "pool.h"

enum { MAX_THREADS = 64 };  /* _fast/parallel.py keeps its jobs within it (C_POOL_MAX_THREADS) */

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Poll until *word differs from `old`; with spin_ns >= 0, for at most that long (then returns 0), else
   without end, giving the core away between polls after 20000 of them. Returns 1 once it differs. */
static int poll_change(const unsigned *word, unsigned old, int64_t spin_ns) {
    const int64_t start = spin_ns >= 0 ? now_ns() : 0;
    for (long n = 1; __atomic_load_n(word, __ATOMIC_ACQUIRE) == old; n++) {
        if (spin_ns >= 0) {
            if (n % 64 == 0 && now_ns() - start > spin_ns) return 0;
            cpu_relax();
        } else if (n > 20000) {
            sched_yield();  /* the one we wait for was descheduled (other load on the machine) */
        } else {
            cpu_relax();
        }
    }
    return 1;
}

void lk_barrier_wait(int *bar, int parts) {
    /* bar[0]: parts arrived; bar[1]: phase, bumped by the last to arrive */
    const unsigned phase = (unsigned)__atomic_load_n(bar + 1, __ATOMIC_ACQUIRE);
    if (__atomic_add_fetch(bar, 1, __ATOMIC_ACQ_REL) == parts) {
        __atomic_store_n(bar, 0, __ATOMIC_RELAXED);
        __atomic_store_n(bar + 1, (int)(phase + 1), __ATOMIC_RELEASE);
        return;
    }
    poll_change((const unsigned *)(bar + 1), phase, -1);
}

/* -- the pool ------------------------------------------------------------------------------------------- */
static pthread_mutex_t job_lock = PTHREAD_MUTEX_INITIALIZER;   /* one job at a time */
static pthread_mutex_t sleep_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static int threads = 1;               /* the caller plus the pool threads started so far */
static int sleepers;                  /* pool threads waiting on `wake` (under sleep_lock) */
static unsigned go[MAX_THREADS];      /* go[i] is bumped to hand pool thread i a part of the job */
static unsigned go_at_start[MAX_THREADS];  /* go[i] when thread i was created (it may start after a bump) */
static unsigned finished;             /* bumped by the last pool part of a job to end */
static int running;                   /* pool parts of the current job not yet ended */
static lk_task job;
static void *job_ctx;
static int job_parts;
enum { SPIN_NS = 300000 };            /* idle threads poll 0.3 ms: longer than the Python between two calls */

static void *pool_thread(void *arg) {
    const int id = (int)(intptr_t)arg;
    unsigned seen = go_at_start[id];
    for (;;) {
        if (!poll_change(&go[id], seen, SPIN_NS)) {
            pthread_mutex_lock(&sleep_lock);  /* no job for a while: sleep until one comes */
            sleepers++;
            while (__atomic_load_n(&go[id], __ATOMIC_ACQUIRE) == seen) pthread_cond_wait(&wake, &sleep_lock);
            sleepers--;
            pthread_mutex_unlock(&sleep_lock);
        }
        seen = __atomic_load_n(&go[id], __ATOMIC_ACQUIRE);
        job(job_ctx, id, job_parts);
        if (__atomic_sub_fetch(&running, 1, __ATOMIC_ACQ_REL) == 0) __atomic_add_fetch(&finished, 1, __ATOMIC_RELEASE);
    }
    return NULL;
}

static void after_fork_in_child(void) {  /* the child has only the forking thread: start over */
    pthread_mutex_init(&job_lock, NULL);
    pthread_mutex_init(&sleep_lock, NULL);
    pthread_cond_init(&wake, NULL);
    threads = 1;
    sleepers = 0;
}

static pthread_once_t once = PTHREAD_ONCE_INIT;
static void register_fork_handler(void) { pthread_atfork(NULL, NULL, after_fork_in_child); }

int lk_parallel(lk_task task, void *ctx, int parts) {
    if (parts <= 1) {
        task(ctx, 0, 1);
        return 0;
    }
    if (parts > MAX_THREADS) return -1;
    pthread_once(&once, register_fork_handler);
    pthread_mutex_lock(&job_lock);
    while (threads < parts) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        go_at_start[threads] = go[threads];
        const int rc = pthread_create(&t, &attr, pool_thread, (void *)(intptr_t)threads);
        pthread_attr_destroy(&attr);
        if (rc != 0) {
            pthread_mutex_unlock(&job_lock);
            return -1;
        }
        threads++;
    }
    job = task;
    job_ctx = ctx;
    job_parts = parts;
    __atomic_store_n(&running, parts - 1, __ATOMIC_RELAXED);
    const unsigned done = __atomic_load_n(&finished, __ATOMIC_ACQUIRE);
    for (int i = 1; i < parts; i++) __atomic_add_fetch(&go[i], 1, __ATOMIC_RELEASE);
    pthread_mutex_lock(&sleep_lock);
    if (sleepers) pthread_cond_broadcast(&wake);
    pthread_mutex_unlock(&sleep_lock);
    task(ctx, 0, parts);
    poll_change(&finished, done, -1);
    pthread_mutex_unlock(&job_lock);
    return 0;
}
