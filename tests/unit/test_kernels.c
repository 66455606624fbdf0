/*
 * Every runnable kernel table against the scalar reference, on awkward sizes, with the
 * error bounds stated in kernels/README.md.
 */
#ifdef JC_MINICMOCKA
#include "minicmocka.h" /* the cross-built run of this test alone: make test-neon */
#else
#include "testutil.h"
#endif

#include "kernels.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const int sizes[] = {1, 2, 7, 8, 15, 16, 17, 31, 63, 64, 65, 128, 197, 341, 768, 1000, 2048};
#define N_SIZES (sizeof sizes / sizeof *sizes)
#define MAXN    2048

static uint64_t rng = 0x9e3779b97f4a7c15u;

static float uniform(float lo, float hi)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return lo + (hi - lo) * (float)((rng >> 40) / 16777216.0);
}

static void fill(float *v, int n, float lo, float hi)
{
    for (int i = 0; i < n; i++)
        v[i] = uniform(lo, hi);
}

static const char *const isas[] = {"avx2", "avx512", "neon"};

/* Checks |got - want| <= abs + rel * |want| element-wise. */
static void close_to(const char *isa, const char *what, int n, const float *got, const float *want,
                     double abs, double rel)
{
    for (int i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        if (!(d <= abs + rel * fabs(want[i])))
            fail_msg("%s %s n=%d [%d]: %.9g vs reference %.9g", isa, what, n, i, got[i], want[i]);
    }
}

static void check_table(const struct jc_kernels *k, const char *isa)
{
    const struct jc_kernels *r = &jc_kernels_ref;
    static float x[MAXN], w[MAXN], b[MAXN], u[MAXN], y1[MAXN], y2[MAXN];
    static uint8_t mask[MAXN];

    for (size_t si = 0; si < N_SIZES; si++) {
        int n = sizes[si];

        fill(x, n, -4, 4);
        fill(w, n, 0.5f, 1.5f);
        fill(b, n, -0.5f, 0.5f);
        r->layernorm(y1, x, w, b, n, 1e-6f);
        k->layernorm(y2, x, w, b, n, 1e-6f);
        close_to(isa, "layernorm", n, y2, y1, 2e-5, 2e-5);
        memcpy(y2, x, n * sizeof *x);
        k->layernorm(y2, y2, w, b, n, 1e-12f); /* in place */
        r->layernorm(y1, x, w, b, n, 1e-12f);
        close_to(isa, "layernorm in place", n, y2, y1, 2e-5, 2e-5);

        fill(u, n, -2, 2);
        memcpy(y1, x, n * sizeof *x);
        memcpy(y2, x, n * sizeof *x);
        r->add(y1, u, n);
        k->add(y2, u, n);
        close_to(isa, "add", n, y2, y1, 0, 0);

        fill(x, n, -8, 8);
        r->gelu_mul(y1, x, u, n);
        k->gelu_mul(y2, x, u, n);
        close_to(isa, "gelu_mul", n, y2, y1, 2e-6, 1e-6);

        fill(x, n, -100, 100);
        r->silu_mul(y1, x, u, n);
        k->silu_mul(y2, x, u, n);
        close_to(isa, "silu_mul", n, y2, y1, 1e-6, 2e-6);

        for (int with_mask = 0; with_mask < 2; with_mask++) {
            for (int i = 0; i < n; i++)
                mask[i] = !with_mask || i % 3 != 1 || i == 0;
            int row = n / 2;
            fill(x, n, -20, 20);
            memcpy(y1, x, n * sizeof *x);
            memcpy(y2, x, n * sizeof *x);
            r->softmax_alibi_row(y1, n, 0.125f, 0.0625f, row, with_mask ? mask : NULL);
            k->softmax_alibi_row(y2, n, 0.125f, 0.0625f, row, with_mask ? mask : NULL);
            close_to(isa, with_mask ? "softmax_alibi_row masked" : "softmax_alibi_row", n, y2, y1,
                     1e-7, 2e-6);
            for (int j = 0; with_mask && j < n; j++)
                if (!mask[j] && y2[j] != 0.0f)
                    fail_msg("%s softmax_alibi_row n=%d: masked key %d has weight %g", isa, n, j,
                             y2[j]);
        }
        memcpy(y1, x, n * sizeof *x);
        memcpy(y2, x, n * sizeof *x);
        r->softmax_scaled(y1, n, 0.25f);
        k->softmax_scaled(y2, n, 0.25f);
        close_to(isa, "softmax_scaled", n, y2, y1, 1e-7, 2e-6);
    }
}

static void test_tables(void **state)
{
    int checked = 0;
    (void)state;
    for (size_t i = 0; i < sizeof isas / sizeof *isas; i++) {
        const struct jc_kernels *k = jc_kernels_select(isas[i]);
        if (!k) {
            printf("%s: not runnable here\n", isas[i]);
            continue;
        }
        check_table(k, isas[i]);
        printf("%s: %d kernels specialised, all within bounds\n", isas[i],
               jc_kernels_specialised(k));
        checked++;
    }
    assert_true(jc_kernels_select("ref") == &jc_kernels_ref);
    assert_null(jc_kernels_select("sse9"));
#ifdef __aarch64__
    /* a reference copy under the name would pass every check above */
    assert_true(jc_kernels_select("neon") && jc_kernels_specialised(jc_kernels_select("neon")) > 0);
#else
    assert_null(jc_kernels_select("neon"));
#endif
    (void)checked;
}

/* The ref kernels themselves against double-precision formulas. */
static void test_reference(void **state)
{
    float x[5] = {-3, -0.5f, 0, 0.5f, 3}, u[5] = {1, 1, 1, 1, 1}, y[5];
    (void)state;
    jc_kernels_ref.gelu_mul(y, x, u, 5);
    for (int i = 0; i < 5; i++)
        assert_float_equal(y[i], 0.5 * x[i] * (1 + erf(x[i] / sqrt(2.0))), 1e-7);
    float s[3] = {1, 2, 3};
    jc_kernels_ref.softmax_alibi_row(s, 3, 1.0f, 0.5f, 0, NULL);
    double e0 = exp(1.0), e1 = exp(2 - 0.5), e2 = exp(3 - 1.0), z = e0 + e1 + e2;
    assert_float_equal(s[0], e0 / z, 1e-7);
    assert_float_equal(s[2], e2 / z, 1e-7);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference),
        cmocka_unit_test(test_tables),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
