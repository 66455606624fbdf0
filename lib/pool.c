/*
 * A small persistent thread pool. Workers sleep on a condition variable between runs, so
 * an idle pool costs nothing; jobs are handed out with an atomic counter.
 */
#include "internal.h"
#include "compute.h"

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_THREADS 256

static struct {
    pthread_mutex_t lock;
    pthread_cond_t wake, done;
    int size;    /* threads including the caller */
    int started; /* workers created */
    unsigned generation;
    int busy; /* workers still in the current run */
    jc_job_fn fn;
    void *arg;
    int n_jobs;
    atomic_int next;
} pool = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .wake = PTHREAD_COND_INITIALIZER,
    .done = PTHREAD_COND_INITIALIZER,
};

static void drain(int thread)
{
    int job;
    while ((job = atomic_fetch_add(&pool.next, 1)) < pool.n_jobs)
        pool.fn(pool.arg, job, thread);
}

static void *worker(void *p)
{
    int thread = (int)(intptr_t)p;
    unsigned seen = 0;

    pthread_mutex_lock(&pool.lock);
    for (;;) {
        while (pool.generation == seen || thread >= pool.size)
            pthread_cond_wait(&pool.wake, &pool.lock);
        seen = pool.generation;
        pthread_mutex_unlock(&pool.lock);
        drain(thread);
        pthread_mutex_lock(&pool.lock);
        if (--pool.busy == 0)
            pthread_cond_signal(&pool.done);
    }
    return NULL;
}

static int default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > MAX_THREADS ? MAX_THREADS : (int)n;
}

void jc_set_threads(int n)
{
    if (n <= 0)
        n = default_threads();
    if (n > MAX_THREADS)
        n = MAX_THREADS;
    pthread_mutex_lock(&pool.lock);
    pool.size = n;
    pthread_mutex_unlock(&pool.lock);
    jc_blas_init();
}

int jc_threads(void)
{
    if (!pool.size)
        jc_set_threads(0);
    return pool.size;
}

int jc_pool_size(void)
{
    return jc_threads();
}

void jc_pool_run(int n_jobs, jc_job_fn fn, void *arg)
{
    int size = jc_threads();

    if (n_jobs <= 0)
        return;
    if (size == 1 || n_jobs == 1) {
        for (int j = 0; j < n_jobs; j++)
            fn(arg, j, 0);
        return;
    }
    pthread_mutex_lock(&pool.lock);
    while (pool.started < size - 1) {
        pthread_t t;
        if (pthread_create(&t, NULL, worker, (void *)(intptr_t)(pool.started + 1)) != 0)
            break; /* run with the threads we have */
        pthread_detach(t);
        pool.started++;
    }
    int workers = pool.started < size - 1 ? pool.started : size - 1;
    pool.fn = fn;
    pool.arg = arg;
    pool.n_jobs = n_jobs;
    atomic_store(&pool.next, 0);
    pool.busy = workers;
    pool.generation++;
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.lock);

    drain(0);

    pthread_mutex_lock(&pool.lock);
    while (pool.busy > 0)
        pthread_cond_wait(&pool.done, &pool.lock);
    pthread_mutex_unlock(&pool.lock);
}

/*
 * Linear layers are cut into GEMMs of one fixed shape: LINEAR_ROWS x LINEAR_COLS blocks,
 * the last row block zero-padded. OpenBLAS picks kernels (small-matrix paths, edge
 * kernels) by shape, so a fixed shape makes every output row bitwise the same whatever
 * else is in the batch and however many threads run it. 64 rows is past the point where
 * every OpenBLAS x86 core type measured computes all rows of a block alike.
 */
#define LINEAR_ROWS 64
#define LINEAR_COLS 128

struct linear_job {
    const float *x, *w, *b;
    float *y;
    int rows, in, out, ldy, col_blocks;
    float *pad; /* per thread: [LINEAR_ROWS, in] input and [LINEAR_ROWS, LINEAR_COLS] output */
};

static void linear_block(void *p, int job, int thread)
{
    const struct linear_job *l = p;
    int r0 = job / l->col_blocks * LINEAR_ROWS, c0 = job % l->col_blocks * LINEAR_COLS;
    int nr = l->rows - r0 < LINEAR_ROWS ? l->rows - r0 : LINEAR_ROWS;
    int nc = l->out - c0 < LINEAR_COLS ? l->out - c0 : LINEAR_COLS;
    const float *x = l->x + (size_t)r0 * l->in;
    float *y = l->y + (size_t)r0 * l->ldy + c0;
    int ldy = l->ldy;

    if (nr < LINEAR_ROWS) {
        float *px = l->pad + (size_t)thread * LINEAR_ROWS * (l->in + LINEAR_COLS);
        memcpy(px, x, (size_t)nr * l->in * sizeof *px);
        memset(px + (size_t)nr * l->in, 0, (size_t)(LINEAR_ROWS - nr) * l->in * sizeof *px);
        x = px;
        y = px + (size_t)LINEAR_ROWS * l->in;
        ldy = LINEAR_COLS;
    }
    jc_sgemm(true, LINEAR_ROWS, nc, l->in, 1.0f, x, l->in, l->w + (size_t)c0 * l->in, l->in, 0.0f,
             y, ldy);
    for (int r = 0; r < nr; r++) {
        float *dst = l->y + (size_t)(r0 + r) * l->ldy + c0;
        const float *src = y + (size_t)r * ldy;
        if (src != dst)
            memcpy(dst, src, (size_t)nc * sizeof *dst);
        if (l->b)
            for (int c = 0; c < nc; c++)
                dst[c] += l->b[c0 + c];
    }
}

size_t jc_linear_scratch(int in)
{
    return (size_t)jc_threads() * LINEAR_ROWS * ((size_t)in + LINEAR_COLS);
}

void jc_linear(const float *x, int rows, int in, const float *w, const float *b, int out, float *y,
               int ldy, float *scratch)
{
    struct linear_job l = {
        x, w, b, y, rows, in, out, ldy, (out + LINEAR_COLS - 1) / LINEAR_COLS, scratch};
    jc_pool_run((rows + LINEAR_ROWS - 1) / LINEAR_ROWS * l.col_blocks, linear_block, &l);
}

int jc_dot_matrix(const float *q, size_t nq, const float *c, size_t nc, size_t d, float *out)
{
    if (nq > INT_MAX || nc > INT_MAX || d > INT_MAX)
        return jc_fail(JC_ELIMIT, "a %zu x %zu x %zu product is too large", nq, nc, d);
    float *scratch = jc_malloc(jc_linear_scratch((int)d) * sizeof(float), "GEMM scratch");
    if (!scratch)
        return JC_ENOMEM;
    jc_linear(q, (int)nq, (int)d, c, NULL, (int)nc, out, (int)nc, scratch);
    free(scratch);
    return 0;
}
