/*
 * Kernel tables. Each ISA has one table of function pointers; every table starts as a copy
 * of the scalar reference table and replaces the slots it has a faster kernel for, so a
 * missing kernel falls back instead of crashing. The table is chosen once at start-up from
 * cpuid and the OS's XCR0 state. Contracts are in kernels/README.md.
 */
#ifndef JCLIP_KERNELS_H
#define JCLIP_KERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct jc_cpu {
    bool x86, avx, avx2, fma, avx512f, avx512bw, avx512vl, avx512dq, avx512bf16, neon;
    bool neon_bf16;      /* FEAT_BF16 (HWCAP2_BF16) */
    bool os_ymm, os_zmm; /* the OS saves YMM / ZMM state (XCR0) */
    bool amx_bf16;       /* AMX-TILE and AMX-BF16, and the OS saves tile state (XCR0) */
};

/* What this CPU and OS can run; read once. */
const struct jc_cpu *jc_cpu(void);

/*
 * One head of one sequence for the attention slot: query rows row0 .. row0 + nq - 1
 * against keys 0 .. len - 1, all positions within the sequence.
 */
struct jc_attn_head {
    const float *q;      /* [nq, hd], rows ld apart: the query of row row0 first */
    const float *k, *v;  /* [len, hd], rows ld apart */
    float *ctx;          /* [nq, hd], rows ldc apart */
    const uint8_t *mask; /* [len] 0 = masked-out key (bias -10000), or NULL */
    int ld, ldc, nq, row0, len, hd;
    float scale, slope; /* slope 0: no ALiBi */
};

/* The most rows (and the largest row pitch) of a product of few rows, the linear_few slot. */
#define JC_FEW_ROWS 64

#define JC_ATTN_ROWS 64 /* query rows an attention kernel holds state for at once */
#define JC_ATTN_KEYS 64 /* the most keys in one tile of scores */

/*
 * Floats of work space the attention slot needs for head dim hd (8-byte aligned): the
 * queries and accumulators of a pass, a tile of keys and values, a tile of scores, and
 * per-row and per-key vectors.
 */
#define JC_ATTN_WORK(hd)                                                                           \
    (2 * (size_t)(JC_ATTN_ROWS + JC_ATTN_KEYS) * (size_t)(hd) +                                    \
     (size_t)JC_ATTN_KEYS * JC_ATTN_ROWS + 3 * JC_ATTN_ROWS + JC_ATTN_KEYS)

struct jc_kernels {
    const char *name;

    /* y[i] = LN(x)[i] * w[i] + b[i] over n; y may alias x. Two-pass mean and variance. */
    void (*layernorm)(float *y, const float *x, const float *w, const float *b, int n, float eps);

    /* y[i] += a[i] over n. */
    void (*add)(float *y, const float *a, int n);

    /* y[i] = gelu(g[i]) * u[i] with the exact erf GELU; y may alias g or u. */
    void (*gelu_mul)(float *y, const float *g, const float *u, int n);

    /* y[i] = silu(g[i]) * u[i]; y may alias g or u. */
    void (*silu_mul)(float *y, const float *g, const float *u, int n);

    /*
     * ctx[r] = sum_j w[r, j] v[j] with w[r, .] = softmax_j(scale q[r].k[j]
     * - slope |row0 + r - j| + (mask[j] ? 0 : -10000)): an online softmax over tiles of keys
     * (a running max and sum per row, the accumulator rescaled when the max grows), so no
     * more than a tile of scores is held. Any even hd; each row's arithmetic depends only on
     * its own position, q, and the keys. work holds JC_ATTN_WORK(hd) floats.
     */
    void (*attention)(const struct jc_attn_head *a, float *work);

    /*
     * Rotary position embedding of pairs in place: x[i] = x[i] * c[i] + x[i ^ 1] * s[i] for
     * i < n (n even), with c[2j] = c[2j + 1] = cos t_j, s[2j] = -sin t_j, s[2j + 1] = sin t_j.
     * Both products are rounded and then added (no fused multiply-add), so every table
     * gives the reference's bits.
     */
    void (*rope)(float *x, const float *c, const float *s, int n);

    /*
     * out[j] = mean over the rows r < rows with mask[r] != 0 (every row when mask is NULL)
     * of x[r * ld + j], for j < n: each sum in double, rows added in order, then divided by
     * the count and rounded to float; 0 when no row counts. Every table gives the
     * reference's bits.
     */
    void (*mean_pool)(float *out, const float *x, size_t ld, const uint8_t *mask, size_t rows,
                      int n);

    /*
     * A product of few rows, in OpenBLAS's order: for r < m and j < n, with K cut into
     * blocks (block b holds k = ends[b - 1] .. ends[b] - 1, ends[-1] = 0), each block's sum
     * s = fma(xt[k * mp + r], w[j * ldw + k], s) from s = 0 over its k in order, then
     * c[r * ldc + j] += s, block after block. xt is x transposed, [ends[blocks - 1]][mp],
     * mp a multiple of 16 up to JC_FEW_ROWS, and its rows m .. mp - 1 must be finite (they
     * are computed and not stored). Each element's arithmetic is fixed, so every table gives
     * the reference's bits whatever m, n or the block of columns.
     */
    void (*linear_few)(float *c, int ldc, const float *xt, int mp, int m, const float *w, int ldw,
                       int n, const int *ends, int blocks);

    /*
     * bf16 products (--precision bf16), or bf16 NULL where the table has none. bf16 names
     * the instructions ("AVX512-BF16", "AMX-BF16", "scalar reference").
     *
     * round_bf16: dst[i] = src[i] rounded to bfloat16 (jc_bf16_round in bf16.h) for i < n.
     *
     * linear_bf16: c[r * ldc + j] += s(r, j) for r < m and j0 <= j < j1 (j0 a multiple of
     * JC_BF16_PANEL), where x holds m rows of bf16 ldx apart, kp values each (kp even, the
     * values past K zero), w the weights packed by jc_bf16_pack (bf16.h) and
     * s(r, j) = sum over k of x[r][k] w[j][k] in the order of VDPBF16PS: from s = 0, for each
     * pair p, s += x[2p + 1] w[2p + 1], then s += x[2p] w[2p], each step one rounding (the
     * product of two bf16 is exact) with a denormal result flushed to zero of its sign.
     * Each element's arithmetic is fixed: a row's result depends on nothing but its own x.
     * Where bf16_swapped is set, x's rows and the packed weights hold each pair's two values
     * the other way round (jc_bf16_swap_pairs in bf16.h), as AMX's TDPBF16PS needs them to
     * take the odd product first; s(r, j) is the same.
     */
    const char *bf16;
    bool bf16_swapped;
    void (*round_bf16)(uint16_t *dst, const float *src, int n);
    void (*linear_bf16)(float *c, int ldc, const uint16_t *x, int ldx, int m, const uint16_t *w,
                        int kp, int j0, int j1);
};

/*
 * Whether bf16 kernels give the reference's bits: round_bf16 (unless NULL) on values that
 * round every way, and linear_bf16 on one product of awkward shape; swapped: linear_bf16
 * takes x and w with pairs swapped (bf16_swapped). What kernels whose instructions no test
 * machine had must pass before a table takes them.
 */
bool jc_bf16_check(void (*round_bf16)(uint16_t *dst, const float *src, int n),
                   void (*linear_bf16)(float *c, int ldc, const uint16_t *x, int ldx, int m,
                                       const uint16_t *w, int kp, int j0, int j1),
                   bool swapped);

/* The reference table (scalar C, the oracle every other table is tested against). */
extern const struct jc_kernels jc_kernels_ref;

/* The table in use, chosen on first call (JCLIP_ISA may force one). */
const struct jc_kernels *jc_kernels(void);

/*
 * Selects a table by name ("ref", "avx2", "avx512", "neon"), or the best one for this CPU
 * when name is NULL or empty. Returns NULL when that table cannot run here or is unknown.
 */
const struct jc_kernels *jc_kernels_select(const char *name);

/* Number of slots of `k` that differ from the reference table. */
int jc_kernels_specialised(const struct jc_kernels *k);

#endif
