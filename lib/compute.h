/* The compute layer under the towers: GEMM, the thread pool, linear layers. Internal. */
#ifndef JCLIP_COMPUTE_H
#define JCLIP_COMPUTE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Row-major C[m,n] = alpha * A[m,k] * op(B) + beta * C, op(B) = B^T when trans_b. */
void jc_sgemm(bool trans_b, int m, int n, int k, float alpha, const float *a, int lda,
              const float *b, int ldb, float beta, float *c, int ldc);

/*
 * Multiply-adds a call needs, with M, N >= 2, to be past OpenBLAS's small-matrix and GEMV
 * paths: jc_blas_rows() speaks of calls of at least this size.
 */
#define JC_BLAS_MNK_MIN (1 << 21)

/*
 * What a row's bits depend on in a call past JC_BLAS_MNK_MIN, as probed on first use: its
 * own data and its offset in the call modulo `unroll`, when the call has whole groups of
 * `unroll` rows (its rows and its first row's offset multiples of it). Offsets r of a group
 * with bit r of `alike` set round as offset 0 does. `cols`: a call may take any block of
 * columns starting and ending at multiples of 16 without changing a bit. `invariant` is
 * false when no unroll up to 64 held (then unroll is 64, a guess). `kblock`: OpenBLAS's
 * block of K (GEMM_Q) when the kernels' linear_few, fed the blocks jc_blas_kblocks() cuts,
 * gives every row OpenBLAS's bits; else 0.
 */
struct jc_blas_rows {
    int unroll;
    uint64_t alike;
    bool cols, invariant;
    bool halves; /* offsets 0..U/2-1 round alike, and U/2..U-1: rows move between groups */
    int kblock;
};
const struct jc_blas_rows *jc_blas_rows(void);
/*
 * The ends of the blocks OpenBLAS cuts K into for a block of q (its level-3 driver: q while
 * at least 2q remain, then the rest in two halves rounded up to 16, or whole when at most
 * q); returns how many, at most JC_BLAS_KBLOCKS.
 */
#define JC_BLAS_KBLOCKS 64
int jc_blas_kblocks(int k, int q, int *ends);
/* Replaces what the probe found (after probing), for a benchmark of the unaligned layout. */
void jc_blas_set_rows(const struct jc_blas_rows *r);

/* A job of jc_pool_run: fn(arg, job, thread). */
typedef void (*jc_job_fn)(void *arg, int job, int thread);

#define JC_MAX_THREADS 256

/* lib/pool.c's state: the workers, the run they are on, each thread's share of the rows. */
struct jc_pool {
    pthread_mutex_t lock;
    pthread_cond_t wake, done;
    int size;               /* threads including the caller; 0 until set */
    int started;            /* workers created */
    atomic_uint generation; /* written under lock; read by spinning workers without */
    atomic_int busy;        /* workers still in the current run, likewise */
    jc_job_fn fn;
    void *arg;
    int n_jobs;
    bool bound; /* job j runs on thread j */
    atomic_int next;
    double share[JC_MAX_THREADS]; /* of the rows, summing to 1 over the pool's threads */
    int share_threads;
};

/* lib/blas.c's state: OpenBLAS, loaded on the first product, and what its probe found. */
struct jc_blas {
    pthread_once_t loaded;
    void *dl; /* NULL until loaded, and when it cannot be (error says why) */
    void (*sgemm)(int order, int trans_a, int trans_b, int m, int n, int k, float alpha,
                  const float *a, int lda, const float *b, int ldb, float beta, float *c,
                  int ldc); /* cblas_sgemm, its enums passed as the ints they are */
    void (*set_num_threads)(int n);
    char *(*corename)(void);
    void *(*memory_alloc)(int procpos); /* blas_memory_alloc: exported, not in cblas.h */
    void (*memory_free)(void *buffer);
    char error[300];
    pthread_mutex_t reserve_lock;
    int reserved; /* GEMM buffers known to exist in OpenBLAS's table */
    pthread_once_t probed;
    struct jc_blas_rows rows;
    float *probe_mem; /* the probe's operands while it runs */
};

/*
 * The one runtime context of the process: the CPU's features and the kernel table chosen
 * for it (set once, by jc_runtime()), the thread pool and the BLAS state, each with its own
 * locks. Besides it, lib/ keeps only each thread's last error (error.c), the temporary
 * files a signal must remove (afile.c) and libcurl, loaded on the first fetch (curl.c).
 */
struct jc_runtime {
    const struct jc_cpu *cpu;
    const struct jc_kernels *kernels;
    struct jc_pool pool;
    struct jc_blas blas;
    bool bf16; /* models opened from now on run bf16 products (jc_set_precision) */
};
extern struct jc_runtime jc_rt;

/* The context, its CPU and kernel table chosen (once, whichever thread asks first). */
const struct jc_runtime *jc_runtime(void);

/* Runs fn(arg, job, thread) for job = 0..n_jobs-1 across the pool; returns when all are done. */
void jc_pool_run(int n_jobs, jc_job_fn fn, void *arg);

/* Seconds on the monotonic clock. */
double jc_seconds(void);

/* Threads the pool runs jobs on, the caller included. */
int jc_pool_size(void);

/*
 * y[rows, out] (row stride ldy) = x[rows, in] * w^T + b, with w [out, in] and b [out] or
 * NULL, split across the pool. Each row of y is bitwise the same for the same row of x at
 * the same index modulo jc_blas_row_unroll(), whatever the other rows, the row count, the
 * thread count (lib/pool.c says how); so a caller that starts each sequence at a multiple
 * of the unroll gets each token's bits independent of the batch. `scratch` holds
 * jc_linear_scratch(in, out) floats, or jc_linear_scratch_max over every (in, out) it will
 * be used for.
 */
void jc_linear(const float *x, int rows, int in, const float *w, const float *b, int out, float *y,
               int ldy, float *scratch);

/*
 * y += x * w^T + b: the residual added by the GEMM itself (beta 1), with no output matrix
 * and no pass of its own. Same split and guarantees as jc_linear.
 */
void jc_linear_add(const float *x, int rows, int in, const float *w, const float *b, int out,
                   float *y, int ldy, float *scratch);
/*
 * How many rows of a sequence of this many tokens must go to jc_linear_split as `own`
 * (none where OpenBLAS's order is the kernels'; lib/pool.c): all of them or none.
 */
size_t jc_linear_own_rows(size_t tokens);
/*
 * How many of its rows past its last whole group of jc_blas_row_unroll() a sequence puts in
 * groups shared with other sequences' (lib/pool.c): the first (n + 1) / 2 in first halves
 * of groups, the rest in second halves; 0 when its last group is padded instead.
 */
size_t jc_linear_tail_rows(size_t tokens);
/*
 * jc_linear (acc false) or jc_linear_add (acc true) where the first `own` rows are those
 * jc_linear_own_rows names, laid out with no padding; the rest are laid out for jc_linear
 * from row `own`. Each row is bitwise the same whatever the other rows, as with jc_linear.
 */
void jc_linear_split(const float *x, int rows, int own, int in, const float *w, const float *b,
                     int out, float *y, int ldy, bool acc, float *scratch);
size_t jc_linear_scratch(int in, int out);

/*
 * The bf16 path (lib/bf16.c). jc_bf16_pack: w [n, k] rounded and packed as the kernels'
 * linear_bf16 takes it (kernels/bf16.h), 64-byte aligned (free()), across the pool; NULL
 * (reported, naming `what`) when out of memory. jc_linear_bf16: jc_linear (acc false) or
 * jc_linear_add (acc true) with packed weights; each row's bits depend on its own row of x
 * alone. Its scratch holds jc_linear_bf16_scratch(in) floats.
 */
uint16_t *jc_bf16_pack(const float *w, int n, int k, const char *what);
void jc_linear_bf16(const float *x, int rows, int in, const uint16_t *w, const float *b, int out,
                    float *y, int ldy, bool acc, float *scratch);
size_t jc_linear_bf16_scratch(int in);
/* Sets the threads' shares of the rows for the next product (they sum to 1); for tests. */
void jc_linear_set_shares(const double *shares, int threads);
size_t jc_linear_scratch_max(const int (*in_out)[2], size_t n);

/*
 * Rows per chunk to cut `rows` into as few chunks of at most `most` rows as it takes, all
 * of about one size (no short last chunk to run a GEMM of its own), rounded up to a
 * multiple of jc_blas_row_unroll().
 */
size_t jc_chunk_rows(size_t rows, size_t most);

/* A sequence in a packed token matrix. */
struct jc_seq {
    size_t off, len;
    bool padded; /* has masked-out tokens */
};

#define JC_ATTN_QBLOCK 64 /* query rows per attention job */

/*
 * Multi-head attention over packed sequences: ctx = softmax(scale q k^T + bias) v per head,
 * one job per (sequence, head, block of JC_ATTN_QBLOCK query rows) on the pool, each one
 * call of the kernel table's attention slot (an online softmax over tiles of keys, q, k
 * and v read in place). No score matrix: scratch is a few tiles per thread.
 */
struct jc_attention {
    float *qkv; /* [T, 3 dim]: each row holds its q, k and v (RoPE turns q and k in place) */
    float *ctx; /* [T, dim] */
    int dim, heads, head_dim;
    float scale;
    const float *slopes; /* [heads] symmetric ALiBi slopes, or NULL */
    const uint8_t *mask; /* [T] 0 = masked-out key (bias -10000), or NULL */
    /*
     * RoPE of q and k, or NULL: row p of a sequence (p >= rope_from) turns by row p -
     * rope_from of these [., head_dim] tables, in the kernel table's rope form. Each job then
     * takes a whole (sequence, head): it turns that head's q and k in place and runs its
     * query blocks while they are still in cache, so RoPE costs no pass of its own.
     */
    const float *rope_c, *rope_s;
    int rope_from;
    const struct jc_seq *seqs;
    size_t n_seqs;
};

struct jc_attention_job {
    int seq, head, row0, rows;
};

/*
 * Sizes of the caller-provided job array (entries) and kernel scratch (floats, malloc
 * aligned): the scratch depends on the head dim and the thread count only.
 */
size_t jc_attention_jobs(const struct jc_seq *seqs, size_t n, int heads);
size_t jc_attention_scratch(int head_dim);

void jc_attention(const struct jc_attention *a, struct jc_attention_job *jobs, float *scratch);

#endif
