/* The compute layer under the towers: GEMM, the thread pool, linear layers. Internal. */
#ifndef JCLIP_COMPUTE_H
#define JCLIP_COMPUTE_H

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
 * false when no unroll up to 64 held (then unroll is 64, a guess).
 */
struct jc_blas_rows {
    int unroll;
    uint64_t alike;
    bool cols, invariant;
};
const struct jc_blas_rows *jc_blas_rows(void);
/* Replaces what the probe found (after probing), for a benchmark of the unaligned layout. */
void jc_blas_set_rows(const struct jc_blas_rows *r);

/* Runs fn(arg, job, thread) for job = 0..n_jobs-1 across the pool; returns when all are done. */
typedef void (*jc_job_fn)(void *arg, int job, int thread);
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
size_t jc_linear_scratch(int in, int out);
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
