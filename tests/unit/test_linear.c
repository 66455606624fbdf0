/*
 * jc_linear and jc_linear_add, with and without a bias: right against a double-precision
 * product, and bitwise the same for a row whatever rows surround it, how many there are
 * and how many threads run them, at the same index modulo the unroll, also where the
 * threads' rows are cut unevenly; jc_linear_split's own rows likewise, whatever rows share
 * the call; jc_dot_matrix the same for a query whatever queries come with it. Run as the machine is
 * and under OPENBLAS_CORETYPE=Haswell by make test.
 */
#include "testutil.h"

#include "compute.h"
#include "bf16.h"
#include "kernels.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng = 0x2545f4914f6cdd1du;

static float uniform(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((rng >> 40) / 16777216.0) * 2.0f - 1.0f;
}

/* Layer shapes of the test models and of jina-clip-v1, and a narrow classify product. */
static const struct {
    int in, out;
} shapes[] = {
    {128, 384}, {128, 128},  {128, 512}, {256, 128}, {341, 128},  {768, 2304},
    {768, 768}, {3072, 768}, {768, 2},   {768, 5},   {1000, 100},
};

/* Offsets (in groups of the unroll) and row counts of the sub-batches run against the whole. */
static const struct {
    int off, rows;
} subs[] = {{0, 1},  {3, 1},  {5, 2},   {7, 17},  {2, 32}, {4, 33},
            {1, 63}, {5, 64}, {1, 130}, {0, 299}, {2, 259}};

#define ROWS 300

/* jc_linear_split's own rows (a multiple of every unroll), and the calls run on some alone. */
#define OWN 96
static const struct {
    int off, rows;
} own_subs[] = {{0, 1}, {5, 2}, {7, 17}, {30, 64}, {20, 65}, {0, 96}};

/* y = x w^T + b, or y = res + x w^T + b when adding; b may be NULL. */
static void run(bool add, const float *x, int rows, int in, const float *w, const float *b, int out,
                const float *res, float *y, float *scratch)
{
    if (add) {
        memcpy(y, res, (size_t)rows * out * sizeof *y);
        jc_linear_add(x, rows, in, w, b, out, y, out, scratch);
    } else {
        jc_linear(x, rows, in, w, b, out, y, out, scratch);
    }
}

/* y[r][c] in double precision: b[c] (+ res[r][c]) + x[r] . w[c]. */
static double exact(const float *x, const float *w, const float *b, const float *res, int in,
                    int out, int r, int c)
{
    double want = b[c] + (res ? res[(size_t)r * out + c] : 0.0);
    for (int k = 0; k < in; k++)
        want += (double)x[(size_t)r * in + k] * w[(size_t)c * in + k];
    return want;
}

static void check_shape(int in, int out, bool add, bool bias)
{
    float *x = malloc((size_t)ROWS * in * sizeof *x), *w = malloc((size_t)out * in * sizeof *w);
    float *b = malloc((size_t)out * sizeof *b), *all = malloc((size_t)ROWS * out * sizeof *all);
    float *part = malloc((size_t)ROWS * out * sizeof *part);
    float *res = malloc((size_t)ROWS * out * sizeof *res);
    float *scratch = malloc(jc_linear_scratch(in, out) * sizeof *scratch);
    const char *what = add ? (bias ? "add, bias" : "add") : (bias ? "bias" : "no bias");

    assert_non_null(x && w && b && all && part && res && scratch);
    for (size_t i = 0; i < (size_t)ROWS * in; i++)
        x[i] = uniform();
    for (size_t i = 0; i < (size_t)out * in; i++)
        w[i] = uniform() * 0.1f;
    for (int i = 0; i < out; i++)
        b[i] = bias ? uniform() : 0.0f;
    for (size_t i = 0; i < (size_t)ROWS * out; i++)
        res[i] = uniform() * 4.0f;

    /* a cut far from even, as a slowed core makes it, and every row checked */
    jc_set_threads(2);
    jc_linear_set_shares((const double[]){0.27, 0.73}, 2);
    run(add, x, ROWS, in, w, bias ? b : NULL, out, res, all, scratch);
    for (int r = 0; r < ROWS; r++)
        for (int c = 0; c < out; c += 3) {
            double want = exact(x, w, b, add ? res : NULL, in, out, r, c);
            if (fabs(all[(size_t)r * out + c] - want) > 1e-5 * (1 + fabs(want)))
                fail_msg("in %d out %d (%s): y[%d][%d] = %.9g, want %.9g", in, out, what, r, c,
                         all[(size_t)r * out + c], want);
        }

    for (int threads = 1; threads <= 3; threads++) {
        jc_set_threads(threads);
        free(scratch);
        scratch = malloc(jc_linear_scratch(in, out) * sizeof *scratch);
        assert_non_null(scratch);
        for (size_t s = 0; s < sizeof subs / sizeof *subs; s++) {
            int off = subs[s].off * jc_blas_row_unroll(), n = subs[s].rows;
            if (off + n > ROWS)
                continue;
            run(add, x + (size_t)off * in, n, in, w, bias ? b : NULL, out, res + (size_t)off * out,
                part, scratch);
            const float *want = all + (size_t)off * out;
            if (memcmp(part, want, (size_t)n * out * sizeof *part))
                fail_msg("in %d out %d (%s): rows %d..%d on %d threads differ from the whole", in,
                         out, what, off, off + n - 1, threads);
        }
    }

    /*
     * jc_linear_split: its first OWN rows (jclip's own kernel, where OpenBLAS's order is
     * not one it matches) right, and each the same whatever rows share the call and however
     * many threads run it; the rest as jc_linear gives them.
     */
    float *own = malloc((size_t)ROWS * out * sizeof *own);
    assert_non_null(own);
    jc_set_threads(2);
    if (add)
        memcpy(own, res, (size_t)ROWS * out * sizeof *own);
    jc_linear_split(x, ROWS, OWN, in, w, bias ? b : NULL, out, own, out, add, scratch);
    if (memcmp(own + (size_t)OWN * out, all + (size_t)OWN * out,
               (size_t)(ROWS - OWN) * out * sizeof *own))
        fail_msg("in %d out %d (%s): the rows after the own ones differ from jc_linear's", in, out,
                 what);
    for (int r = 0; r < OWN; r++)
        for (int c = 0; c < out; c += 3) {
            double want = exact(x, w, b, add ? res : NULL, in, out, r, c);
            if (fabs(own[(size_t)r * out + c] - want) > 1e-5 * (1 + fabs(want)))
                fail_msg("in %d out %d (%s): own row %d col %d = %.9g, want %.9g", in, out, what, r,
                         c, own[(size_t)r * out + c], want);
        }
    for (int threads = 1; threads <= 3; threads++) {
        jc_set_threads(threads);
        for (size_t s = 0; s < sizeof own_subs / sizeof *own_subs; s++) {
            int off = own_subs[s].off, n = own_subs[s].rows;
            if (add)
                memcpy(part, res + (size_t)off * out, (size_t)n * out * sizeof *part);
            jc_linear_split(x + (size_t)off * in, n, n, in, w, bias ? b : NULL, out, part, out, add,
                            scratch);
            if (memcmp(part, own + (size_t)off * out, (size_t)n * out * sizeof *part))
                fail_msg("in %d out %d (%s): own rows %d..%d on %d threads differ from the whole",
                         in, out, what, off, off + n - 1, threads);
        }
    }
    free(own);

    jc_set_threads(0);
    free(x);
    free(w);
    free(b);
    free(all);
    free(part);
    free(res);
    free(scratch);
}

static void test_linear_shapes(void **state)
{
    const struct jc_blas_rows *r = jc_blas_rows();
    (void)state;
    printf("OpenBLAS core type %s: rows in groups of %d, %s column blocks, %s\n",
           jc_blas_corename(), r->unroll, r->cols ? "with" : "without",
           r->kblock ? "few rows in the kernels' order" : "every product through OpenBLAS");
#if defined(__x86_64__)
    /* every x86-64 core type measured has an unroll; a new one must be looked at */
    assert_true(jc_blas_batch_invariant());
#endif
    /* the core types whose K block was measured (lib/blas.c) take the few-rows path */
    if (!strcmp(jc_blas_corename(), "Cooperlake"))
        assert_int_equal(r->kblock, 320);
    if (!strcmp(jc_blas_corename(), "SkylakeX"))
        assert_int_equal(r->kblock, 448);
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++)
        for (int mode = 0; mode < 4; mode++)
            check_shape(shapes[i].in, shapes[i].out, mode & 2, mode & 1);
}

/* A query's scores alone, then as each of NQ queries, against few and many candidates. */
#define NQ 29

static void test_dot_matrix(void **state)
{
    static const size_t ncs[] = {3, 700};
    const size_t d = 256;
    (void)state;
    for (size_t k = 0; k < sizeof ncs / sizeof *ncs; k++) {
        size_t nc = ncs[k];
        float *q = malloc(NQ * d * sizeof *q), *c = malloc(nc * d * sizeof *c);
        float *all = malloc(NQ * nc * sizeof *all), *one = malloc(nc * sizeof *one);
        assert_non_null(q && c && all && one);
        for (size_t i = 0; i < NQ * d; i++)
            q[i] = uniform();
        for (size_t i = 0; i < nc * d; i++)
            c[i] = uniform();
        assert_int_equal(jc_dot_matrix(q, NQ, c, nc, d, all, nc), 0);
        for (size_t i = 0; i < NQ; i++) {
            assert_int_equal(jc_dot_matrix(q + i * d, 1, c, nc, d, one, nc), 0);
            if (memcmp(one, all + i * nc, nc * sizeof *one))
                fail_msg("%zu candidates: query %zu's scores differ alone and among %d", nc, i, NQ);
            double want = 0;
            for (size_t j = 0; j < d; j++)
                want += (double)q[i * d + j] * c[(nc - 1) * d + j];
            if (fabs(one[nc - 1] - want) > 1e-4)
                fail_msg("%zu candidates: query %zu scores %.9g, want %.9g", nc, i, one[nc - 1],
                         want);
        }
        free(q);
        free(c);
        free(all);
        free(one);
    }
}

/*
 * jc_bf16_pack against the layout bf16.h states, element by element: every value rounded
 * by jc_bf16_round in its place, on the table in use and on one that takes pairs swapped, zeros
 * past n and past an odd k; shapes around a panel and a pair, denormals and a NaN among the values.
 */
static void test_bf16_pack(void **state)
{
    static const int ns[] = {1, 15, 16, 17, 100, 2304}, ks[] = {1, 2, 3, 17, 127, 768};
    const struct jc_kernels *was = jc_runtime()->kernels;
    struct jc_kernels swapped = jc_kernels_ref;
    (void)state;
    swapped.bf16_swapped = true;
    for (int t = 0; t < 2; t++)
        for (size_t a = 0; a < sizeof ns / sizeof *ns; a++)
            for (size_t b = 0; b < sizeof ks / sizeof *ks; b++) {
                jc_rt.kernels = t ? &swapped : was;
                const int n = ns[a], k = ks[b], kp = jc_bf16_kp(k);
                float *w = malloc((size_t)n * k * sizeof *w);
                assert_non_null(w);
                for (size_t i = 0; i < (size_t)n * k; i++)
                    w[i] = uniform() * (i % 7 == 3 ? 1e-39f : 1.0f);
                w[(size_t)n * k / 2] = NAN;
                uint16_t *p = jc_bf16_pack(w, n, k, "the test matrix");
                assert_non_null(p);
                const int np = (n + JC_BF16_PANEL - 1) / JC_BF16_PANEL * JC_BF16_PANEL;
                for (int j = 0; j < np; j++)
                    for (int kk = 0; kk < kp; kk++) {
                        const uint16_t want =
                            j < n && kk < k ? jc_bf16_round(w[(size_t)j * k + kk]) : 0;
                        const int e = jc_rt.kernels->bf16_swapped ? 1 - kk % 2 : kk % 2;
                        const uint16_t got = p[jc_bf16_at(j, kk / 2, e, kp)];
                        if (got != want)
                            fail_msg(
                                "bf16 pack%s n=%d k=%d: column %d, k %d is 0x%04x, want 0x%04x",
                                t ? ", pairs swapped," : "", n, k, j, kk, got, want);
                    }
                jc_rt.kernels = was;
                free(p);
                free(w);
            }
}

/*
 * The swapped pairs a table like AMX's takes, through the library: the same matrices packed
 * and run on a reference table and on the AMX kernel built against tests/unit/amx_emu.h
 * (pairs swapped in the packing and in x's rows) give the same bits, for few rows (columns
 * split) and many (rows split).
 */
void jc_linear_bf16_amx_emulated(float *c, int ldc, const uint16_t *x, int ldx, int m,
                                 const uint16_t *w, int kp, int j0, int j1);

static void test_bf16_swapped(void **state)
{
    static const int rows[] = {1, 17, 33, 100}, ins[] = {77, 128}, outs[] = {40, 100};
    const struct jc_kernels *was = jc_runtime()->kernels;
    struct jc_kernels amx = jc_kernels_ref;
    (void)state;
    amx.bf16_swapped = true;
    amx.linear_bf16 = jc_linear_bf16_amx_emulated;
    for (size_t a = 0; a < sizeof rows / sizeof *rows; a++)
        for (size_t b = 0; b < sizeof ins / sizeof *ins; b++)
            for (size_t d = 0; d < sizeof outs / sizeof *outs; d++) {
                const int m = rows[a], in = ins[b], out = outs[d];
                float *x = malloc((size_t)m * in * sizeof *x), *w = malloc((size_t)out * in * 4);
                float *bias = malloc((size_t)out * sizeof *bias);
                float *y[2], *scratch = malloc(jc_linear_bf16_scratch(in) * sizeof *scratch);
                assert_non_null(x && w && bias && scratch);
                for (int i = 0; i < m * in; i++)
                    x[i] = uniform();
                for (int i = 0; i < out * in; i++)
                    w[i] = uniform();
                for (int i = 0; i < out; i++)
                    bias[i] = uniform();
                for (int t = 0; t < 2; t++) {
                    jc_rt.kernels = t ? &amx : &jc_kernels_ref;
                    uint16_t *p = jc_bf16_pack(w, out, in, "the test matrix");
                    y[t] = malloc((size_t)m * out * sizeof *y[t]);
                    assert_non_null(p && y[t]);
                    jc_linear_bf16(x, m, in, p, bias, out, y[t], out, false, scratch);
                    free(p);
                }
                jc_rt.kernels = was;
                if (memcmp(y[0], y[1], (size_t)m * out * sizeof *y[0]))
                    fail_msg("bf16 rows=%d in=%d out=%d: pairs swapped give other bits", m, in,
                             out);
                free(x);
                free(w);
                free(bias);
                free(scratch);
                free(y[0]);
                free(y[1]);
            }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linear_shapes),
        cmocka_unit_test(test_dot_matrix),
        cmocka_unit_test(test_bf16_pack),
        cmocka_unit_test(test_bf16_swapped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
