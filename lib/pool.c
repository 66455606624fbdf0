/*
 * A small persistent thread pool. Workers sleep on a condition variable between runs, so
 * an idle pool costs nothing; jobs are handed out with an atomic counter. Between runs that
 * follow each other closely (a caption is some 150 of them in 15 ms) the workers, and the
 * caller waiting for them, first spin for up to SPIN_SECONDS: a wake-up through the kernel
 * cost tens of microseconds on the virtual machines measured.
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

#define SPIN_SECONDS 100e-6

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    _mm_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

/* Waits up to SPIN_SECONDS for *v to leave `old`; whether it did. */
static bool spin_while_uint(atomic_uint *v, unsigned old)
{
    double until = 0;
    for (unsigned i = 0;; i++) {
        if (atomic_load(v) != old)
            return true;
        if ((i & 63) == 0) {
            double now = jc_seconds();
            if (!until)
                until = now + SPIN_SECONDS;
            else if (now > until)
                return false;
        }
        cpu_relax();
    }
}

static void spin_while_busy(void)
{
    double until = 0;
    for (unsigned i = 0; atomic_load(&jc_rt.pool.busy) > 0; i++) {
        if ((i & 63) == 0) {
            double now = jc_seconds();
            if (!until)
                until = now + SPIN_SECONDS;
            else if (now > until)
                return;
        }
        cpu_relax();
    }
}

static void drain(int thread)
{
    int job;
    if (jc_rt.pool.bound) {
        if (thread < jc_rt.pool.n_jobs)
            jc_rt.pool.fn(jc_rt.pool.arg, thread, thread);
        return;
    }
    while ((job = atomic_fetch_add(&jc_rt.pool.next, 1)) < jc_rt.pool.n_jobs)
        jc_rt.pool.fn(jc_rt.pool.arg, job, thread);
}

static void *worker(void *p)
{
    int thread = (int)(intptr_t)p;
    unsigned seen = 0;

    fp_flush_subnormals(); /* for the thread's life: it runs nothing but jobs */

    pthread_mutex_lock(&jc_rt.pool.lock);
    for (;;) {
        if (atomic_load(&jc_rt.pool.generation) == seen && thread < jc_rt.pool.size) {
            pthread_mutex_unlock(&jc_rt.pool.lock);
            spin_while_uint(&jc_rt.pool.generation, seen);
            pthread_mutex_lock(&jc_rt.pool.lock);
        }
        while (atomic_load(&jc_rt.pool.generation) == seen || thread >= jc_rt.pool.size)
            pthread_cond_wait(&jc_rt.pool.wake, &jc_rt.pool.lock);
        seen = jc_rt.pool.generation;
        pthread_mutex_unlock(&jc_rt.pool.lock);
        drain(thread);
        pthread_mutex_lock(&jc_rt.pool.lock);
        if (atomic_fetch_sub(&jc_rt.pool.busy, 1) == 1)
            pthread_cond_signal(&jc_rt.pool.done);
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
    return n < 1 ? 1 : n > JC_MAX_THREADS ? JC_MAX_THREADS : (int)n;
}

void jc_set_threads(int n)
{
    if (n <= 0)
        n = default_threads();
    if (n > JC_MAX_THREADS)
        n = JC_MAX_THREADS;
    pthread_mutex_lock(&jc_rt.pool.lock);
    jc_rt.pool.size = n;
    pthread_mutex_unlock(&jc_rt.pool.lock);
}

int jc_threads(void)
{
    if (!jc_rt.pool.size)
        jc_set_threads(0);
    return jc_rt.pool.size;
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
    pthread_mutex_lock(&jc_rt.pool.lock);
    while (jc_rt.pool.started < size - 1) {
        pthread_t t;
        if (pthread_create(&t, NULL, worker, (void *)(intptr_t)(jc_rt.pool.started + 1)) != 0)
            break; /* run with the threads we have */
        pthread_detach(t);
        jc_rt.pool.started++;
    }
    workers = jc_rt.pool.started < size - 1 ? jc_rt.pool.started : size - 1;
    jc_rt.pool.fn = fn;
    jc_rt.pool.arg = arg;
    jc_rt.pool.n_jobs = n_jobs;
    jc_rt.pool.bound = bound;
    atomic_store(&jc_rt.pool.next, 0);
    atomic_store(&jc_rt.pool.busy, workers);
    atomic_fetch_add(&jc_rt.pool.generation, 1);
    pthread_cond_broadcast(&jc_rt.pool.wake);
    pthread_mutex_unlock(&jc_rt.pool.lock);

    drain(0);

    spin_while_busy();
    pthread_mutex_lock(&jc_rt.pool.lock);
    while (atomic_load(&jc_rt.pool.busy) > 0)
        pthread_cond_wait(&jc_rt.pool.done, &jc_rt.pool.lock);
    pthread_mutex_unlock(&jc_rt.pool.lock);
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
 * Linear layers: one path, bitwise the same for a row whatever surrounds it.
 *
 * OpenBLAS gives a row the same bits in any call past JC_BLAS_MNK_MIN that has whole
 * groups of U rows and puts it at the same offset modulo U (jc_blas_rows: U is 1 for the
 * AVX-512 kernels, 12 for Haswell's). So every call here starts at a multiple of U within
 * the product and covers whole groups; rows past the last whole group, and products too
 * small for OpenBLAS's main path, go through a zero-padded copy in the scratch buffer.
 * The callers lay each sequence out from a multiple of U (jc_blas_row_unroll), so a token's
 * offset modulo U is its offset in its own sequence, and neither the batch, nor the
 * thread count, nor the cut between threads changes a bit.
 *
 * The product is cut into as few calls as keep the threads busy, so each operand is
 * packed about once per thread: where the kernels allow it, a block of columns per thread
 * when there are no more rows than columns; else a block of rows per thread when there
 * are enough rows (sized by the threads' speeds, below); else columns again where allowed;
 * else one call. At most JC_FEW_ROWS rows skip OpenBLAS (linear_few, below).
 */
#define LINEAR_MIN_ROWS 128         /* rows a thread's block must have before rows are split */
#define FEW_ROWS        JC_FEW_ROWS /* the most rows that go to the kernels' linear_few */
#define FEW_COLS        96 /* its columns per job: a multiple of every kernel's column group */
#define FEW_LDC         (FEW_COLS + 16)

struct linear_job {
    const float *x, *w, *b;
    float *y;
    int rows, in, out, ldy;
    bool acc;     /* y += ..., not y = ... */
    int col_step; /* columns per job when cut by columns */
    float *pad;   /* [pad_rows, in + out] */
    int *cut;     /* shared rows: thread t takes rows cut[t] .. cut[t + 1] */
    double *secs; /* and takes secs[t] seconds for them */
};

static int round_up(int n, int to)
{
    return (n + to - 1) / to * to;
}

/*
 * Readies the nr x nc block c (row stride ldc) for a beta-1 product, which then adds into
 * it: the bias in every row, or the bias added to what the block holds when accumulating.
 * Returns the beta: 0 when there is nothing to start from, and OpenBLAS clears the block.
 */
static float start_block(const struct linear_job *l, float *c, int ldc, int nr, int c0, int nc)
{
    const struct jc_kernels *k = jc_runtime()->kernels;
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

/* Rows r0 .. r0 + nr, columns c0 .. c0 + nc of the product, computed in place. */
static void gemm_block(const struct linear_job *l, int r0, int nr, int c0, int nc)
{
    float *y = l->y + (size_t)r0 * l->ldy + c0;
    float beta = start_block(l, y, l->ldy, nr, c0, nc);
    jc_sgemm(true, nr, nc, l->in, 1.0f, l->x + (size_t)r0 * l->in, l->in, l->w + (size_t)c0 * l->in,
             l->in, beta, y, l->ldy);
}

/*
 * Rows r0 .. r0 + nr (r0 a multiple of the unroll) computed as the first rows of an m-row
 * call in the scratch buffer, readied as start_block readies C in place, then copied out;
 * the padding rows are zeros.
 */
static void padded_block(const struct linear_job *l, int m, int r0, int nr)
{
    const int nc = l->out;
    float *px = l->pad, *pc = l->pad + (size_t)m * l->in;
    float *y = l->y + (size_t)r0 * l->ldy;

    memcpy(px, l->x + (size_t)r0 * l->in, (size_t)nr * l->in * sizeof *px);
    memset(px + (size_t)nr * l->in, 0, (size_t)(m - nr) * l->in * sizeof *px);
    memset(pc, 0, (size_t)m * nc * sizeof *pc);
    if (l->acc)
        for (int r = 0; r < nr; r++)
            memcpy(pc + (size_t)r * nc, y + (size_t)r * l->ldy, (size_t)nc * sizeof *pc);
    float beta = start_block(l, pc, nc, nr, 0, nc);
    jc_sgemm(true, m, nc, l->in, 1.0f, px, l->in, l->w, l->in, beta, pc, nc);
    for (int r = 0; r < nr; r++)
        memcpy(y + (size_t)r * l->ldy, pc + (size_t)r * nc, (size_t)nc * sizeof *y);
}

static void col_block(void *p, int job, int thread)
{
    const struct linear_job *l = p;
    int c0 = job * l->col_step, nc = l->out - c0 < l->col_step ? l->out - c0 : l->col_step;
    (void)thread;
    gemm_block(l, 0, l->rows, c0, nc);
}

/*
 * The rows are cut by the threads' speeds. On a shared host one core is often slower for
 * a while (another guest runs on it), and an even cut then leaves the other thread
 * waiting at the end of every product. Each thread's rate on the products so far sets its
 * share of the next one's rows; the cut changes no bit.
 */

double jc_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/*
 * cut[0 .. threads]: shares of the rows, each at least `least` and, but for the last,
 * a multiple of `unit` (rows >= threads * least, least a multiple of unit).
 */
static void cut_rows(int *cut, int rows, int threads, int least, int unit)
{
    if (jc_rt.pool.share_threads != threads) {
        for (int t = 0; t < threads; t++)
            jc_rt.pool.share[t] = 1.0 / threads;
        jc_rt.pool.share_threads = threads;
    }
    double sum = 0;
    cut[0] = 0;
    for (int t = 0; t < threads; t++) {
        sum += jc_rt.pool.share[t];
        cut[t + 1] = (int)(rows * sum / unit + 0.5) * unit;
    }
    for (int t = 0; t < threads; t++) /* at least `least` each, from both ends */
        if (cut[t + 1] - cut[t] < least)
            cut[t + 1] = cut[t] + least;
    cut[threads] = rows;
    for (int t = threads - 1; t > 0; t--)
        if (cut[t + 1] - cut[t] < least)
            cut[t] = (cut[t + 1] - least) / unit * unit;
}

void jc_linear_set_shares(const double *shares, int threads)
{
    for (int t = 0; t < threads && t < JC_MAX_THREADS; t++)
        jc_rt.pool.share[t] = shares[t];
    jc_rt.pool.share_threads = threads;
}

/* Folds the threads' rates on the last product into their shares, halfway. */
static void update_shares(const int *cut, const double *secs, int threads)
{
    double rate[JC_MAX_THREADS], total = 0;
    for (int t = 0; t < threads; t++) {
        if (secs[t] <= 0)
            return;
        rate[t] = (cut[t + 1] - cut[t]) / secs[t];
        total += rate[t];
    }
    double sum = 0;
    for (int t = 0; t < threads; t++) {
        double s = 0.5 * jc_rt.pool.share[t] + 0.5 * rate[t] / total, lo = 0.5 / threads,
               hi = 1.5 / threads;
        jc_rt.pool.share[t] = s < lo ? lo : s > hi ? hi : s;
        sum += jc_rt.pool.share[t];
    }
    for (int t = 0; t < threads; t++)
        jc_rt.pool.share[t] /= sum;
}

static void shared_block(void *p, int job, int thread)
{
    const struct linear_job *l = p;
    double t0 = jc_seconds();
    (void)thread;

    gemm_block(l, l->cut[job], l->cut[job + 1] - l->cut[job], 0, l->out);
    l->secs[job] = jc_seconds() - t0;
}

/*
 * Rows a call of `cols` columns needs to be above OpenBLAS's small-matrix and GEMV paths,
 * in whole groups of the unroll.
 */
static int min_rows(int in, int cols)
{
    size_t per_row = (size_t)in * (size_t)cols;
    size_t rows = (JC_BLAS_MNK_MIN + per_row - 1) / per_row;
    return round_up(rows < 2 ? 2 : (int)rows, jc_blas_row_unroll());
}

size_t jc_linear_scratch(int in, int out)
{
    size_t padded = (size_t)(min_rows(in, out) + jc_blas_row_unroll()) * ((size_t)in + out);
    size_t few = (size_t)in * FEW_ROWS;
    return padded > few ? padded : few;
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

/* Rows r0 .. rows (r0 a multiple of the unroll) in one padded call past the small paths. */
static void padded_rest(const struct linear_job *l, int r0)
{
    int nr = l->rows - r0, least = min_rows(l->in, l->out);
    if (nr > 0)
        padded_block(l, round_up(nr > least ? nr : least, jc_blas_row_unroll()), r0, nr);
}

/*
 * Products of few rows (a caption, a short query) read each weight once for all their rows,
 * in the kernels' linear_few, split between the threads by columns. It sums each element in
 * OpenBLAS's order (blocks of K of the probed size, an FMA chain in each), so a row gets
 * the same bits here as in a call to OpenBLAS with any other rows: where the probe found no
 * such order (Haswell's kernels), every product goes to OpenBLAS.
 */
struct few_job {
    const struct linear_job *l;
    const float *xt; /* x transposed, [in][mp] */
    int mp, blocks, ends[JC_BLAS_KBLOCKS];
};

static void few_block(void *p, int job, int thread)
{
    const struct few_job *f = p;
    const struct linear_job *l = f->l;
    int c0 = job * FEW_COLS, nc = l->out - c0 < FEW_COLS ? l->out - c0 : FEW_COLS;
    /*
     * The kernel works on a copy of the block with rows FEW_LDC apart: the rows of y are
     * often a multiple of 4 KiB apart (3072 or 6144 floats), and its loads of weights then
     * wait on its stores to c that alias them (measured: 15 against 21 GB/s).
     */
    float c[FEW_ROWS * FEW_LDC];
    float *y = l->y + c0;
    (void)thread;
    for (int r = 0; r < l->rows; r++)
        if (l->acc)
            memcpy(c + r * FEW_LDC, y + (size_t)r * l->ldy, (size_t)nc * sizeof *c);
    if (start_block(l, c, FEW_LDC, l->rows, c0, nc) == 0) /* OpenBLAS's beta 0: from zeros */
        for (int r = 0; r < l->rows; r++)
            memset(c + r * FEW_LDC, 0, (size_t)nc * sizeof *c);
    jc_runtime()->kernels->linear_few(c, FEW_LDC, f->xt, f->mp, l->rows, l->w + (size_t)c0 * l->in,
                                      l->in, nc, f->ends, f->blocks);
    for (int r = 0; r < l->rows; r++)
        memcpy(y + (size_t)r * l->ldy, c + r * FEW_LDC, (size_t)nc * sizeof *c);
}

static void linear_few(const struct linear_job *l, int kblock)
{
    struct few_job f = {l, l->pad, round_up(l->rows, 16), 0, {0}};
    float *xt = l->pad;
    f.blocks = jc_blas_kblocks(l->in, kblock, f.ends);
    for (int k = 0; k < l->in; k++) {
        const float *col = l->x + k;
        for (int r = 0; r < l->rows; r++)
            xt[r] = col[(size_t)r * l->in];
        for (int r = l->rows; r < f.mp; r++)
            xt[r] = 0;
        xt += f.mp;
    }
    jc_pool_run((l->out + FEW_COLS - 1) / FEW_COLS, few_block, &f);
}

/*
 * Where no order of the kernel's matches OpenBLAS's (Haswell's kernels, which AMD's Zen 1-3
 * run too), the rows of short texts still take linear_few, in blocks of K of OWN_KBLOCK, but
 * only rows that go there whatever the batch: the callers put the rows jc_linear_own_rows
 * names first and pass them as `own`, which go to the kernel OWN_ROWS at a time. They are
 * all the rows of a text of at most OWN_TOKENS tokens that OpenBLAS would pad by half or
 * more. A caption then reads each weight once at batch 1 and gets the same bits in a batch
 * of 256. Measured on a 2-core Zen 3 (full model): a 16-token caption at batch 1 took 44
 * against 110 ms through OpenBLAS, an 8-token one 36-41 against 79-89 ms; at batch 32,
 * 7-token captions took 430-440 against 600-670 ms, 16-token ones the same either way, but
 * 12-token ones, which OpenBLAS does not pad, 780-970 against 560-680 ms: those stay with
 * OpenBLAS.
 *
 * The other texts shorter than TAIL_SPLIT tokens need no padding either, where the probe
 * found that the halves of a group round alike wherever they sit (`halves`; Haswell's:
 * rows 0-5 of every whole group alike, and rows 6-11). A text's whole groups go to OpenBLAS
 * as they are, and its rows past them (jc_linear_tail_rows) to groups shared with other
 * texts' last rows: the first half of them (rounded up) into first halves of groups, the
 * rest into second halves (lib/text.c lays them out). Each row's bits then depend on its
 * own text alone, and only an odd tail and the batch's last group leave a slot empty.
 * Measured on the same host, batch 32, against the same texts unaligned (one call per
 * thread, no padding; batching then changes bits): 64 tokens +0.2%, 20 tokens +0.4%, where
 * the kernel's rows for the last rows had cost 2-13% and padding 17.8% (kernels/README.md
 * has the figures). Past TAIL_SPLIT tokens a text's last group is
 * padded: the padding is then under 5% of the text, and under the copies to and from its
 * place in order for attention that a split costs (lib/text.c).
 */
#define OWN_KBLOCK 320
/*
 * The own rows go to the kernel 16 at a time (one pass of its row loop), so their x stays
 * in L2 while each product's weights come again from L3: 16-token captions at batch 64 on
 * one Zen 3 core took 3.0 s against 3.3 s 64 at a time (best of 3, alternating), batch 256
 * on two 7.2 against 8.1 s; there, a 64-row x of K = 3072 is 786 KB.
 */
#define OWN_ROWS   16
#define OWN_TOKENS 16
#define TAIL_SPLIT 256

int jc_linear_own_tokens(void)
{
    return jc_blas_rows()->kblock ? 0 : OWN_TOKENS;
}

int jc_linear_tail_split(void)
{
    const struct jc_blas_rows *br = jc_blas_rows();
    return br->kblock || br->unroll == 1 || !br->halves ? 0 : TAIL_SPLIT;
}

int jc_linear_own_kblock(void)
{
    return OWN_KBLOCK;
}

size_t jc_linear_own_rows(size_t tokens)
{
    const struct jc_blas_rows *br = jc_blas_rows();
    size_t u = (size_t)br->unroll, tail = tokens % u, padded = tokens - tail + (tail ? u : 0);
    if (br->kblock || u == 1 || tokens > OWN_TOKENS)
        return 0;
    return 2 * padded >= 3 * tokens ? tokens : 0;
}

size_t jc_linear_tail_rows(size_t tokens)
{
    if (tokens >= (size_t)jc_linear_tail_split() || jc_linear_own_rows(tokens))
        return 0;
    return tokens % (size_t)jc_blas_row_unroll();
}

static void linear(const float *x, int rows, int in, const float *w, const float *b, int out,
                   float *y, int ldy, bool acc, float *scratch);

static void linear_own(const float *x, int rows, int own, int in, const float *w, const float *b,
                       int out, float *y, int ldy, bool acc, float *scratch)
{
    for (int r0 = 0; r0 < own; r0 += OWN_ROWS) {
        struct linear_job l = {x + (size_t)r0 * in,
                               w,
                               b,
                               y + (size_t)r0 * ldy,
                               own - r0 < OWN_ROWS ? own - r0 : OWN_ROWS,
                               in,
                               out,
                               ldy,
                               acc,
                               0,
                               scratch,
                               NULL,
                               NULL};
        linear_few(&l, OWN_KBLOCK);
    }
    if (rows > own)
        linear(x + (size_t)own * in, rows - own, in, w, b, out, y + (size_t)own * ldy, ldy, acc,
               scratch);
}

static void linear(const float *x, int rows, int in, const float *w, const float *b, int out,
                   float *y, int ldy, bool acc, float *scratch)
{
    struct linear_job l = {x, w, b, y, rows, in, out, ldy, acc, 0, scratch, NULL, NULL};
    const struct jc_blas_rows *br = jc_blas_rows();
    const int threads = jc_threads(), U = br->unroll, least = min_rows(in, out);
    const int whole = rows / U * U; /* rows in whole groups; the rest are padded */

    if (br->kblock && rows <= FEW_ROWS) {
        linear_few(&l, br->kblock);
        return;
    }

    if (whole < least) { /* a small product: one padded call */
        padded_rest(&l, 0);
        return;
    }
    /*
     * Cut by columns, each thread packs its share of w and all of x; by rows, all of w and
     * its share of x. So columns when w is the larger (rows <= out): the 512-token text
     * spent 17% of its time packing weights cut by rows, 12% cut by columns.
     */
    int by_cols = round_up((out + threads - 1) / threads, 16);
    bool cols = threads > 1 && br->cols && whole == rows && by_cols < out &&
                rows >= min_rows(in, out - (out - 1) / by_cols * by_cols);
    if (cols && rows <= out) {
        l.col_step = by_cols;
        jc_pool_run((out + by_cols - 1) / by_cols, col_block, &l);
        return;
    }
    if (threads > 1 && whole >= threads * LINEAR_MIN_ROWS && whole >= threads * least) {
        int cut[JC_MAX_THREADS + 1];
        double secs[JC_MAX_THREADS] = {0};
        l.cut = cut;
        l.secs = secs;
        l.rows = whole;
        int most = round_up(least > LINEAR_MIN_ROWS / 2 ? least : LINEAR_MIN_ROWS / 2, U);
        cut_rows(cut, whole, threads, most, U);
        int workers = run(threads, shared_block, &l, true);
        if (workers == threads - 1) /* else the caller ran some shares: no rates */
            update_shares(cut, secs, threads);
        l.rows = rows;
        padded_rest(&l, whole);
        return;
    }
    if (cols) {
        l.col_step = by_cols;
        jc_pool_run((out + by_cols - 1) / by_cols, col_block, &l);
        return;
    }
    gemm_block(&l, 0, whole, 0, out);
    padded_rest(&l, whole);
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

void jc_linear_split(const float *x, int rows, int own, int in, const float *w, const float *b,
                     int out, float *y, int ldy, bool acc, float *scratch)
{
    linear_own(x, rows, own < rows ? own : rows, in, w, b, out, y, ldy, acc, scratch);
}

size_t jc_chunk_rows(size_t rows, size_t most)
{
    size_t chunks = (rows + most - 1) / most, unroll = (size_t)jc_blas_row_unroll();
    return chunks ? ((rows + chunks - 1) / chunks + unroll - 1) / unroll * unroll : 0;
}

/*
 * Scores are products of independent rows, so where the unroll is above 1 each query takes
 * an offset that rounds as offset 0 does (the `alike` offsets of a group, the rest zeros),
 * and its scores are then the same whichever queries come with it.
 */
#define DOT_CHUNK_FLOATS ((size_t)16 << 20) /* most padded scores held at once */

int jc_dot_matrix(const float *q, size_t nq, const float *c, size_t nc, size_t d, float *out,
                  size_t ldo)
{
    const struct jc_blas_rows *br = jc_blas_rows();
    const int U = br->unroll;
    int slot[64], slots = 0, rc = 0;

    if (nq > INT_MAX / 64 || nc > INT_MAX || d > INT_MAX || ldo > INT_MAX)
        return jc_fail(JC_ELIMIT, "a %zu x %zu x %zu product is too large", nq, nc, d);
    if ((rc = jc_blas_reserve()) < 0) /* without a model, nothing has yet */
        return rc;
    for (int i = 0; i < U; i++)
        if (br->alike >> i & 1)
            slot[slots++] = i;
    float *scratch = jc_malloc(jc_linear_scratch((int)d, (int)nc) * sizeof(float), "GEMM scratch");
    if (!scratch)
        return JC_ENOMEM;
    if (slots == U) {
        jc_linear(q, (int)nq, (int)d, c, NULL, (int)nc, out, (int)ldo, scratch);
        goto out_scratch;
    }
    size_t groups = DOT_CHUNK_FLOATS / ((size_t)U * nc);
    groups = groups ? groups : 1;
    size_t per = groups * slots < nq ? groups * slots : nq; /* queries per call */
    size_t rows = (per + slots - 1) / slots * U;
    float *pq = jc_calloc(rows * d, sizeof *pq, "the padded queries");
    float *ps = jc_malloc(rows * nc * sizeof *ps, "the padded scores");
    if (!pq || !ps) {
        rc = JC_ENOMEM;
        goto out_free;
    }
    for (size_t q0 = 0; q0 < nq; q0 += per) {
        size_t n = nq - q0 < per ? nq - q0 : per;
        for (size_t i = 0; i < n; i++)
            memcpy(pq + (i / slots * U + slot[i % slots]) * d, q + (q0 + i) * d, d * sizeof *pq);
        jc_linear(pq, (int)((n + slots - 1) / slots * U), (int)d, c, NULL, (int)nc, ps, (int)nc,
                  scratch);
        for (size_t i = 0; i < n; i++)
            memcpy(out + (q0 + i) * ldo, ps + (i / slots * U + slot[i % slots]) * nc,
                   nc * sizeof *out);
    }
out_free:
    free(pq);
    free(ps);
out_scratch:
    free(scratch);
    return rc;
}
