/*
 * A small persistent thread pool. Workers sleep on a condition variable between runs, so
 * an idle pool costs nothing; jobs are handed out with an atomic counter.
 */
#include "internal.h"
#include "compute.h"
#include "kernels.h"

#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#endif

#define MAX_THREADS 256

/*
 * Every job runs with subnormal floats flushed to zero (x86: MXCSR FTZ and DAZ; aarch64:
 * FPCR.FZ). A subnormal operand or result costs a microcode assist of a hundred cycles or
 * more on x86, and values below 2^-126 never matter to an embedding; the flushing is the
 * same on every thread, so results stay independent of the thread count.
 */
typedef unsigned long fpstate;

static fpstate fp_flush_subnormals(void)
{
#if defined(__x86_64__) || defined(__i386__)
    fpstate old = _mm_getcsr();
    _mm_setcsr((unsigned)old | 0x8040); /* FTZ (bit 15) and DAZ (bit 6) */
    return old;
#elif defined(__aarch64__)
    fpstate old;
    __asm__ volatile("mrs %0, fpcr" : "=r"(old));
    __asm__ volatile("msr fpcr, %0" : : "r"(old | (1ul << 24))); /* FZ */
    return old;
#else
    return 0;
#endif
}

static void fp_restore(fpstate old)
{
#if defined(__x86_64__) || defined(__i386__)
    _mm_setcsr((unsigned)old);
#elif defined(__aarch64__)
    __asm__ volatile("msr fpcr, %0" : : "r"(old));
#else
    (void)old;
#endif
}

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
    bool bound; /* job j runs on thread j */
    atomic_int next;
} pool = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .wake = PTHREAD_COND_INITIALIZER,
    .done = PTHREAD_COND_INITIALIZER,
};

static void drain(int thread)
{
    int job;
    if (pool.bound) {
        if (thread < pool.n_jobs)
            pool.fn(pool.arg, thread, thread);
        return;
    }
    while ((job = atomic_fetch_add(&pool.next, 1)) < pool.n_jobs)
        pool.fn(pool.arg, job, thread);
}

static void *worker(void *p)
{
    int thread = (int)(intptr_t)p;
    unsigned seen = 0;

    fp_flush_subnormals(); /* for the thread's life: it runs nothing but jobs */

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

/*
 * The CPUs this process may run on: its affinity mask, which taskset, cpusets and container
 * runtimes narrow, and which a Spark executor or a Dask worker may have been given; else
 * every online CPU.
 */
static int default_threads(void)
{
    cpu_set_t set;
    long n = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set)
                                                         : sysconf(_SC_NPROCESSORS_ONLN);
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

/* Returns the workers that took part. */
static int run(int n_jobs, jc_job_fn fn, void *arg, bool bound)
{
    int size = jc_threads(), workers = 0;

    if (n_jobs <= 0)
        return 0;
    fpstate caller = fp_flush_subnormals(); /* the caller's own state is given back */
    if (size == 1 || n_jobs == 1) {
        for (int j = 0; j < n_jobs; j++)
            fn(arg, j, 0);
        fp_restore(caller);
        return 0;
    }
    pthread_mutex_lock(&pool.lock);
    while (pool.started < size - 1) {
        pthread_t t;
        if (pthread_create(&t, NULL, worker, (void *)(intptr_t)(pool.started + 1)) != 0)
            break; /* run with the threads we have */
        pthread_detach(t);
        pool.started++;
    }
    workers = pool.started < size - 1 ? pool.started : size - 1;
    pool.fn = fn;
    pool.arg = arg;
    pool.n_jobs = n_jobs;
    pool.bound = bound;
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
    if (bound) /* the jobs of threads that could not be started */
        for (int j = workers + 1; j < n_jobs; j++)
            fn(arg, j, 0);
    fp_restore(caller);
    return workers;
}

void jc_pool_run(int n_jobs, jc_job_fn fn, void *arg)
{
    run(n_jobs, fn, arg, false);
}

/*
 * Linear layers, on two paths.
 *
 * Where OpenBLAS computes every element alike wherever it sits in the call
 * (jc_blas_shape_invariant), the product is cut into as few calls as keep the threads busy:
 * one block of rows per thread when there are enough rows (sized by the threads' speeds,
 * below), else one block of columns, else one call, zero-padded in rows when it would fall
 * below JC_BLAS_MNK_MIN. Each operand is then packed about once per thread, and since the
 * cut changes no bit, neither do the batch and the thread count.
 *
 * Elsewhere every call has one fixed shape, LINEAR_ROWS x LINEAR_COLS with the last row
 * block zero-padded, as alike as OpenBLAS makes results of one shape; a row's bits can
 * still depend on where the batch puts it (Haswell's kernel rounds rows by position).
 */
#define LINEAR_ROWS     64
#define LINEAR_COLS     128
#define LINEAR_MIN_ROWS 128 /* rows a thread's block must have before rows are split */

struct linear_job {
    const float *x, *w, *b;
    float *y;
    int rows, in, out, ldy;
    bool acc;                           /* y += ..., not y = ... */
    int row_step, col_step, col_blocks; /* the cut: blocks of row_step x col_step */
    int pad_rows;                       /* free path: M of a padded single call, else 0 */
    /* fixed path: per thread [LINEAR_ROWS, in + LINEAR_COLS]; free: [pad_rows, in + out] */
    float *pad;
    int *cut;     /* shared rows: thread t takes rows cut[t] .. cut[t + 1] */
    double *secs; /* and takes secs[t] seconds for them */
};

/*
 * Readies the nr x nc block c (row stride ldc) for a beta-1 product, which then adds into
 * it: the bias in every row, or the bias added to what the block holds when accumulating.
 * Returns the beta: 0 when there is nothing to start from, and OpenBLAS clears the block.
 */
static float start_block(const struct linear_job *l, float *c, int ldc, int nr, int c0, int nc)
{
    const struct jc_kernels *k = jc_kernels();
    if (!l->b)
        return l->acc ? 1.0f : 0.0f;
    for (int r = 0; r < nr; r++) {
        float *row = c + (size_t)r * ldc;
        if (l->acc)
            k->add(row, l->b + c0, nc);
        else
            memcpy(row, l->b + c0, (size_t)nc * sizeof *row);
    }
    return 1.0f;
}

/*
 * A block of nr < m rows computed in an m-row buffer pc (row stride nc), readied as
 * start_block readies C in place, then copied out; the padding rows are zeros.
 */
static void padded_block(const struct linear_job *l, const float *x, float *pad, int m, int r0,
                         int nr, int c0, int nc)
{
    float *px = pad, *pc = pad + (size_t)m * l->in;
    float *y = l->y + (size_t)r0 * l->ldy + c0;

    memcpy(px, x, (size_t)nr * l->in * sizeof *px);
    memset(px + (size_t)nr * l->in, 0, (size_t)(m - nr) * l->in * sizeof *px);
    memset(pc, 0, (size_t)m * nc * sizeof *pc);
    if (l->acc)
        for (int r = 0; r < nr; r++)
            memcpy(pc + (size_t)r * nc, y + (size_t)r * l->ldy, (size_t)nc * sizeof *pc);
    float beta = start_block(l, pc, nc, nr, c0, nc);
    jc_sgemm(true, m, nc, l->in, 1.0f, px, l->in, l->w + (size_t)c0 * l->in, l->in, beta, pc, nc);
    for (int r = 0; r < nr; r++)
        memcpy(y + (size_t)r * l->ldy, pc + (size_t)r * nc, (size_t)nc * sizeof *y);
}

static void fixed_block(void *p, int job, int thread)
{
    const struct linear_job *l = p;
    int r0 = job / l->col_blocks * LINEAR_ROWS, c0 = job % l->col_blocks * LINEAR_COLS;
    int nr = l->rows - r0 < LINEAR_ROWS ? l->rows - r0 : LINEAR_ROWS;
    int nc = l->out - c0 < LINEAR_COLS ? l->out - c0 : LINEAR_COLS;
    const float *x = l->x + (size_t)r0 * l->in;
    float *y = l->y + (size_t)r0 * l->ldy + c0;

    if (nr < LINEAR_ROWS) {
        float *pad = l->pad + (size_t)thread * LINEAR_ROWS * (l->in + LINEAR_COLS);
        padded_block(l, x, pad, LINEAR_ROWS, r0, nr, c0, nc);
        return;
    }
    float beta = start_block(l, y, l->ldy, nr, c0, nc);
    jc_sgemm(true, LINEAR_ROWS, nc, l->in, 1.0f, x, l->in, l->w + (size_t)c0 * l->in, l->in, beta,
             y, l->ldy);
}

/* Rows r0 .. r0 + nr, columns c0 .. c0 + nc of the product, computed in place. */
static void gemm_block(const struct linear_job *l, int r0, int nr, int c0, int nc)
{
    float *y = l->y + (size_t)r0 * l->ldy + c0;
    float beta = start_block(l, y, l->ldy, nr, c0, nc);
    jc_sgemm(true, nr, nc, l->in, 1.0f, l->x + (size_t)r0 * l->in, l->in, l->w + (size_t)c0 * l->in,
             l->in, beta, y, l->ldy);
}

static void free_block(void *p, int job, int thread)
{
    const struct linear_job *l = p;
    int r0 = job / l->col_blocks * l->row_step, c0 = job % l->col_blocks * l->col_step;
    int nr = l->rows - r0 < l->row_step ? l->rows - r0 : l->row_step;
    int nc = l->out - c0 < l->col_step ? l->out - c0 : l->col_step;
    (void)thread;

    if (nr < l->pad_rows) { /* a single small call: pad it past OpenBLAS's small paths */
        padded_block(l, l->x, l->pad, l->pad_rows, 0, nr, c0, nc);
        return;
    }
    gemm_block(l, r0, nr, c0, nc);
}

/*
 * On the free path the rows are cut by the threads' speeds. On a shared host one core is
 * often slower for a while (another guest runs on it), and an even cut then leaves the
 * other thread waiting at the end of every product. Each thread's rate on the products so
 * far sets its share of the next one's rows; on this path the cut changes no bit.
 */
static double share[MAX_THREADS]; /* of the rows, summing to 1 over the pool's threads */
static int share_threads;

double jc_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* cut[0 .. threads]: shares of the rows, each at least `least` (rows >= threads * least). */
static void cut_rows(int *cut, int rows, int threads, int least)
{
    if (share_threads != threads) {
        for (int t = 0; t < threads; t++)
            share[t] = 1.0 / threads;
        share_threads = threads;
    }
    double sum = 0;
    cut[0] = 0;
    for (int t = 0; t < threads; t++) {
        sum += share[t];
        cut[t + 1] = (int)(rows * sum + 0.5);
    }
    for (int t = 0; t < threads; t++) /* at least `least` each, from both ends */
        if (cut[t + 1] - cut[t] < least)
            cut[t + 1] = cut[t] + least;
    cut[threads] = rows;
    for (int t = threads - 1; t > 0; t--)
        if (cut[t + 1] - cut[t] < least)
            cut[t] = cut[t + 1] - least;
}

void jc_linear_set_shares(const double *shares, int threads)
{
    for (int t = 0; t < threads && t < MAX_THREADS; t++)
        share[t] = shares[t];
    share_threads = threads;
}

/* Folds the threads' rates on the last product into their shares, halfway. */
static void update_shares(const int *cut, const double *secs, int threads)
{
    double rate[MAX_THREADS], total = 0;
    for (int t = 0; t < threads; t++) {
        if (secs[t] <= 0)
            return;
        rate[t] = (cut[t + 1] - cut[t]) / secs[t];
        total += rate[t];
    }
    double sum = 0;
    for (int t = 0; t < threads; t++) {
        double s = 0.5 * share[t] + 0.5 * rate[t] / total, lo = 0.5 / threads, hi = 1.5 / threads;
        share[t] = s < lo ? lo : s > hi ? hi : s;
        sum += share[t];
    }
    for (int t = 0; t < threads; t++)
        share[t] /= sum;
}

static void shared_block(void *p, int job, int thread)
{
    const struct linear_job *l = p;
    double t0 = jc_seconds();
    (void)thread;

    gemm_block(l, l->cut[job], l->cut[job + 1] - l->cut[job], 0, l->out);
    l->secs[job] = jc_seconds() - t0;
}

/* Rows a call of `cols` columns needs to be above OpenBLAS's small-matrix and GEMV paths. */
static int free_min_rows(int in, int cols)
{
    size_t per_row = (size_t)in * (size_t)cols;
    size_t rows = (JC_BLAS_MNK_MIN + per_row - 1) / per_row;
    return rows < 2 ? 2 : (int)rows;
}

size_t jc_linear_scratch(int in, int out)
{
    size_t fixed = (size_t)jc_threads() * LINEAR_ROWS * ((size_t)in + LINEAR_COLS);
    size_t padded = (size_t)free_min_rows(in, out) * ((size_t)in + out);
    return fixed > padded ? fixed : padded;
}

size_t jc_linear_scratch_max(const int (*in_out)[2], size_t n)
{
    size_t most = 0;
    for (size_t i = 0; i < n; i++) {
        size_t s = jc_linear_scratch(in_out[i][0], in_out[i][1]);
        most = s > most ? s : most;
    }
    return most;
}

static void linear(const float *x, int rows, int in, const float *w, const float *b, int out,
                   float *y, int ldy, bool acc, float *scratch)
{
    struct linear_job l = {x, w, b, y, rows, in, out, ldy, acc, 0, 0, 0, 0, scratch, NULL, NULL};
    const int threads = jc_threads();

    if (!jc_blas_shape_invariant()) {
        l.col_blocks = (out + LINEAR_COLS - 1) / LINEAR_COLS;
        jc_pool_run((rows + LINEAR_ROWS - 1) / LINEAR_ROWS * l.col_blocks, fixed_block, &l);
        return;
    }
    int min_rows = free_min_rows(in, out), by_cols = (out + threads - 1) / threads;
    by_cols = (by_cols + 15) / 16 * 16;
    if (threads > 1 && rows >= threads * LINEAR_MIN_ROWS && rows >= threads * min_rows) {
        int cut[MAX_THREADS + 1];
        double secs[MAX_THREADS] = {0};
        l.cut = cut;
        l.secs = secs;
        cut_rows(cut, rows, threads,
                 min_rows > LINEAR_MIN_ROWS / 2 ? min_rows : LINEAR_MIN_ROWS / 2);
        int workers = run(threads, shared_block, &l, true);
        if (workers == threads - 1) /* else the caller ran some shares: no rates */
            update_shares(cut, secs, threads);
        return;
    } else if (threads > 1 && by_cols < out &&
               rows >= free_min_rows(in, out - (out - 1) / by_cols * by_cols)) {
        l.row_step = rows;
        l.col_step = by_cols;
    } else {
        l.row_step = rows;
        l.col_step = out;
        l.pad_rows = min_rows;
    }
    l.col_blocks = (out + l.col_step - 1) / l.col_step;
    jc_pool_run((rows + l.row_step - 1) / l.row_step * l.col_blocks, free_block, &l);
}

void jc_linear(const float *x, int rows, int in, const float *w, const float *b, int out, float *y,
               int ldy, float *scratch)
{
    linear(x, rows, in, w, b, out, y, ldy, false, scratch);
}

void jc_linear_add(const float *x, int rows, int in, const float *w, const float *b, int out,
                   float *y, int ldy, float *scratch)
{
    linear(x, rows, in, w, b, out, y, ldy, true, scratch);
}

size_t jc_chunk_rows(size_t rows, size_t most)
{
    size_t chunks = (rows + most - 1) / most;
    return chunks ? (rows + chunks - 1) / chunks : 0;
}

int jc_dot_matrix(const float *q, size_t nq, const float *c, size_t nc, size_t d, float *out)
{
    if (nq > INT_MAX || nc > INT_MAX || d > INT_MAX)
        return jc_fail(JC_ELIMIT, "a %zu x %zu x %zu product is too large", nq, nc, d);
    float *scratch = jc_malloc(jc_linear_scratch((int)d, (int)nc) * sizeof(float), "GEMM scratch");
    if (!scratch)
        return JC_ENOMEM;
    jc_linear(q, (int)nq, (int)d, c, NULL, (int)nc, out, (int)nc, scratch);
    free(scratch);
    return 0;
}
