/*
 * Every runnable kernel table against the scalar reference, on awkward sizes, with the
 * error bounds stated in kernels/README.md.
 */
#ifdef JC_MINICMOCKA
#include "minicmocka.h" /* the cross-built run of this test alone: make test-neon */
#else
#include "testutil.h"
#endif

#include "bf16.h"
#include "kernels.h"
#ifdef JC_X86_KERNELS
#include "x86.h"
#endif

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
    }
}

/* RoPE tables in the slot's form for n / 2 angles: cos twice, then -sin and sin per pair. */
static const int rope_sizes[] = {2, 6, 16, 22, 32, 64, 70, 128};
#define ROPE_MAXN 128

static void rope_tables(float *c, float *s, float *t, int n)
{
    for (int j = 0; j < n / 2; j++) {
        /* positions up to a few hundred, as in a grid of patches */
        t[j] = uniform(-300, 300);
        c[2 * j] = c[2 * j + 1] = cosf(t[j]);
        s[2 * j] = -sinf(t[j]);
        s[2 * j + 1] = sinf(t[j]);
    }
}

/* Mean pooling: a [rows, ld] matrix, rows and columns that do not fill a vector block. */
static const int pool_rows[] = {1, 2, 7, 63, 64, 65, 197, 1000};
static const int pool_ns[] = {1, 7, 16, 17, 64, 768, 1000};
#define POOL_MAXR  1000
#define POOL_MAXN  1000
#define POOL_MAXLD (POOL_MAXN + 5)
#define GUARD      8 /* floats past n that a kernel must leave alone */

/*
 * Rows of values of magnitudes 2^-10 .. 2^10, and in every third column 2^60 and -2^60 in
 * the first two rows: in order they cancel before the rest is added, but a sum that took
 * other rows first would have them absorbed by 2^60 and round to other bits.
 */
static void pool_matrix(float *x, int rows, int n, size_t ld)
{
    for (size_t i = 0; i < (size_t)rows * ld; i++)
        x[i] = ldexpf(uniform(-1, 1), (int)uniform(-10, 10));
    for (int j = 0; rows > 1 && j < n; j += 3) {
        x[j] = 0x1p60f;
        x[ld + j] = -0x1p60f;
    }
}

/* pool mask kinds: 0 none, 1 some rows out (never all), 2 every row out */
static const uint8_t *pool_mask(uint8_t *mask, int kind, int rows)
{
    for (int r = 0; r < rows; r++)
        mask[r] = kind == 1 ? r % 5 != 2 && r % 11 != 3 : 0;
    if (kind == 1)
        mask[0] = 1;
    return kind ? mask : NULL;
}

/* rope and mean_pool of one table give the reference's bits, and write nothing past n. */
static void check_rope_pool(const struct jc_kernels *k, const char *isa)
{
    const struct jc_kernels *r = &jc_kernels_ref;
    static float c[ROPE_MAXN], s[ROPE_MAXN], x[ROPE_MAXN], y1[ROPE_MAXN + GUARD],
        y2[ROPE_MAXN + GUARD];
    static float t[ROPE_MAXN / 2];
    static uint8_t mask[POOL_MAXR];
    static float o1[POOL_MAXN + GUARD], o2[POOL_MAXN + GUARD];

    for (size_t si = 0; si < sizeof rope_sizes / sizeof *rope_sizes; si++) {
        const int n = rope_sizes[si];
        rope_tables(c, s, t, n);
        fill(x, n, -4, 4);
        fill(y1, ROPE_MAXN + GUARD, -1, 1);
        memcpy(y2, y1, sizeof y2);
        memcpy(y1, x, n * sizeof *x);
        memcpy(y2, x, n * sizeof *x);
        r->rope(y1, c, s, n);
        k->rope(y2, c, s, n);
        for (int i = 0; i < n + GUARD; i++)
            if (memcmp(&y2[i], &y1[i], sizeof *y1))
                fail_msg("%s rope n=%d [%d]: %.9g vs reference %.9g", isa, n, i, y2[i], y1[i]);
    }

    float *px = malloc((size_t)POOL_MAXR * POOL_MAXLD * sizeof(float));
    assert_non_null(px);
    for (size_t ri = 0; ri < sizeof pool_rows / sizeof *pool_rows; ri++)
        for (size_t ni = 0; ni < sizeof pool_ns / sizeof *pool_ns; ni++) {
            const int rows = pool_rows[ri], n = pool_ns[ni];
            const size_t ld = (size_t)n + ((ri + ni) % 2 ? 5 : 0);
            pool_matrix(px, rows, n, ld);
            for (int kind = 0; kind < 3; kind++) {
                const uint8_t *m = pool_mask(mask, kind, rows);
                for (int j = 0; j < n + GUARD; j++)
                    o1[j] = o2[j] = -7.0f;
                r->mean_pool(o1, px, ld, m, (size_t)rows, n);
                k->mean_pool(o2, px, ld, m, (size_t)rows, n);
                for (int j = 0; j < n + GUARD; j++) {
                    if (memcmp(&o2[j], &o1[j], sizeof *o1))
                        fail_msg("%s mean_pool rows=%d n=%d ld=%zu mask %d [%d]: %.9g vs %.9g", isa,
                                 rows, n, ld, kind, j, o2[j], o1[j]);
                    if (kind == 2 && j < n && memcmp(&o2[j], &(float){0.0f}, sizeof(float)))
                        fail_msg("%s mean_pool rows=%d n=%d: no row counts, yet [%d] is %.9g", isa,
                                 rows, n, j, o2[j]);
                }
            }
        }
    free(px);
}

/* Attention: one head of a packed [L, 3 dim] qkv matrix, dim = 2 hd, the second head. */
/* 1100: past the length from which the AVX-512 kernel packs its tiles of k and v */
static const int attn_lens[] = {1, 2, 7, 63, 64, 65, 197, 1000, 1100};
static const int attn_hds[] = {16, 22, 32, 64}; /* 22: the tails of a dim not a multiple of 4 */
#define ATTN_MAXL  1100
#define ATTN_MAXHD 64

struct attn_case {
    float *qkv, *ctx; /* [L, 3 dim], [L, dim] */
    uint8_t mask[ATTN_MAXL];
    float *work;
    int len, hd;
};

static void attn_init(struct attn_case *c, int len, int hd)
{
    const int dim = 2 * hd;
    c->len = len;
    c->hd = hd;
    /* exactly the work space the contract asks for, so a sanitizer sees any overrun */
    free(c->work);
    c->work = malloc(JC_ATTN_WORK(hd) * sizeof(float));
    assert_non_null(c->work);
    fill(c->qkv, len * 3 * dim, -3, 3);
    /* v in [-1, 1] */
    for (int j = 0; j < len; j++)
        fill(c->qkv + (size_t)j * 3 * dim + 2 * dim, dim, -1, 1);
    /* a masked-out block of keys plus every seventh key, never all of them */
    for (int j = 0; j < len; j++)
        c->mask[j] = !((j >= len / 3 && j < len / 3 + 40) || j % 7 == 5) || j == 0;
}

static struct jc_attn_head attn_head(const struct attn_case *c, float *ctx, int row0, int nq,
                                     bool alibi, bool pad)
{
    const int dim = 2 * c->hd;
    const float *base = c->qkv + c->hd;
    return (struct jc_attn_head){
        .q = base + (size_t)row0 * 3 * dim,
        .k = base + dim,
        .v = base + 2 * dim,
        .ctx = ctx + (size_t)row0 * dim + c->hd,
        .mask = pad ? c->mask : NULL,
        .ld = 3 * dim,
        .ldc = dim,
        .nq = nq,
        .row0 = row0,
        .len = c->len,
        .hd = c->hd,
        .scale = 1.0f / sqrtf((float)c->hd),
        .slope = alibi ? 0.0625f : 0.0f,
    };
}

/* Head 1 of ctx [L, 2 hd]: rows row0 .. row0 + nq. */
static void attn_close(const char *isa, const char *what, const struct attn_case *c,
                       const float *got, const float *want, double abs, double rel)
{
    const int dim = 2 * c->hd;
    for (int i = 0; i < c->len; i++)
        for (int d = 0; d < c->hd; d++) {
            double g = got[(size_t)i * dim + c->hd + d], w = want[(size_t)i * dim + c->hd + d];
            if (!(fabs(g - w) <= abs + rel * fabs(w)))
                fail_msg("%s attention %s L=%d hd=%d row %d [%d]: %.9g vs %.9g", isa, what, c->len,
                         c->hd, i, d, g, w);
        }
}

static void attn_run(const struct jc_kernels *k, const struct attn_case *c, float *ctx, int row0,
                     int nq, bool alibi, bool pad)
{
    struct jc_attn_head h = attn_head(c, ctx, row0, nq, alibi, pad);
    k->attention(&h, c->work);
}

static struct attn_case attn_alloc(void)
{
    struct attn_case c = {0};
    c.qkv = malloc((size_t)ATTN_MAXL * 6 * ATTN_MAXHD * sizeof(float));
    c.ctx = calloc((size_t)ATTN_MAXL * 2 * ATTN_MAXHD, sizeof(float));
    c.work = malloc(JC_ATTN_WORK(ATTN_MAXHD) * sizeof(float));
    assert_non_null(c.qkv);
    assert_non_null(c.ctx);
    assert_non_null(c.work);
    return c;
}

static void attn_free(struct attn_case *c)
{
    free(c->qkv);
    free(c->ctx);
    free(c->work);
}

/*
 * One table against the reference: the whole sequence in one call; the same rows in blocks
 * of 64 and at odd offsets give the same bits; masked keys have exactly zero weight (new
 * values for their k and v leave every output bit as it was).
 */
static void check_attention(const struct jc_kernels *k, const char *isa)
{
    struct attn_case c = attn_alloc();
    const size_t ctx_n = (size_t)ATTN_MAXL * 2 * ATTN_MAXHD;
    float *want = calloc(ctx_n, sizeof(float)), *got2 = calloc(ctx_n, sizeof(float));
    assert_non_null(want);
    assert_non_null(got2);

    for (size_t li = 0; li < sizeof attn_lens / sizeof *attn_lens; li++)
        for (size_t hi = 0; hi < sizeof attn_hds / sizeof *attn_hds; hi++) {
            const int len = attn_lens[li], hd = attn_hds[hi], dim = 2 * hd;
            attn_init(&c, len, hd);
            for (int v = 0; v < 4; v++) {
                const bool alibi = v & 1, pad = v & 2;
                const char *what = (const char *[]){"plain", "alibi", "padded", "alibi padded"}[v];
                attn_run(&jc_kernels_ref, &c, want, 0, len, alibi, pad);
                attn_run(k, &c, c.ctx, 0, len, alibi, pad);
                attn_close(isa, what, &c, c.ctx, want, 5e-6, 2e-5);

                /* blocks of 64 rows, then a few rows at an odd offset */
                for (int r0 = 0; r0 < len; r0 += 64)
                    attn_run(k, &c, got2, r0, len - r0 < 64 ? len - r0 : 64, alibi, pad);
                int r0 = len / 3, nq = len - r0 < 5 ? len - r0 : 5;
                attn_run(k, &c, got2, r0, nq, alibi, pad);
                for (int i = 0; i < len; i++)
                    if (memcmp(got2 + (size_t)i * dim + hd, c.ctx + (size_t)i * dim + hd,
                               hd * sizeof(float)))
                        fail_msg("%s attention %s L=%d hd=%d: row %d differs between blockings",
                                 isa, what, len, hd, i);

                if (!pad)
                    continue;
                for (int j = 0; j < len; j++)
                    if (!c.mask[j]) {
                        fill(c.qkv + (size_t)j * 3 * dim + dim + hd, hd, -3, 3);
                        fill(c.qkv + (size_t)j * 3 * dim + 2 * dim + hd, hd, -100, 100);
                    }
                attn_run(k, &c, got2, 0, len, alibi, pad);
                for (int i = 0; i < len; i++)
                    if (memcmp(got2 + (size_t)i * dim + hd, c.ctx + (size_t)i * dim + hd,
                               hd * sizeof(float)))
                        fail_msg("%s attention %s L=%d hd=%d: masked keys change row %d", isa, what,
                                 len, hd, i);
            }
        }
    free(want);
    free(got2);
    attn_free(&c);
}

/* The reference attention against a naive full softmax(scale q k^T + bias) v in double. */
static void test_attention_reference(void **state)
{
    struct attn_case c = attn_alloc();
    double *s = malloc(ATTN_MAXL * sizeof(double));
    (void)state;
    assert_non_null(s);
    for (size_t li = 0; li < sizeof attn_lens / sizeof *attn_lens; li++)
        for (size_t hi = 0; hi < sizeof attn_hds / sizeof *attn_hds; hi++) {
            const int len = attn_lens[li], hd = attn_hds[hi], dim = 2 * hd, ld = 3 * dim;
            attn_init(&c, len, hd);
            for (int v = 0; v < 4; v++) {
                const bool alibi = v & 1, pad = v & 2;
                const double scale = 1.0f / sqrtf((float)hd), slope = alibi ? 0.0625 : 0;
                attn_run(&jc_kernels_ref, &c, c.ctx, 0, len, alibi, pad);
                for (int i = 0; i < len; i++) {
                    const float *q = c.qkv + (size_t)i * ld + hd;
                    double max = -INFINITY, z = 0;
                    for (int j = 0; j < len; j++) {
                        const float *kj = c.qkv + (size_t)j * ld + dim + hd;
                        double dot = 0;
                        for (int d = 0; d < hd; d++)
                            dot += (double)q[d] * kj[d];
                        s[j] = dot * scale - slope * abs(i - j) - (pad && !c.mask[j] ? 1e4 : 0);
                        max = fmax(max, s[j]);
                    }
                    for (int j = 0; j < len; j++)
                        z += s[j] = exp(s[j] - max);
                    for (int d = 0; d < hd; d++) {
                        double o = 0;
                        for (int j = 0; j < len; j++)
                            o += s[j] * c.qkv[(size_t)j * ld + 2 * dim + hd + d];
                        o /= z;
                        double got = c.ctx[(size_t)i * dim + hd + d];
                        if (!(fabs(got - o) <= 1e-6 + 1e-6 * fabs(o)))
                            fail_msg("ref attention L=%d hd=%d %d [%d][%d]: %.9g vs %.9g", len, hd,
                                     v, i, d, got, o);
                    }
                }
            }
        }
    free(s);
    attn_free(&c);
}

/*
 * The reference rope against the rotation in double (within 1e-6 of the pair's norm: cancelling
 * pairs have no relative bound), and the reference mean_pool against a naive double mean.
 */
static void test_rope_pool_reference(void **state)
{
    static float c[ROPE_MAXN], s[ROPE_MAXN], x[ROPE_MAXN], y[ROPE_MAXN];
    static float t[ROPE_MAXN / 2];
    static uint8_t mask[POOL_MAXR];
    static float out[POOL_MAXN];
    (void)state;

    for (size_t si = 0; si < sizeof rope_sizes / sizeof *rope_sizes; si++) {
        const int n = rope_sizes[si];
        rope_tables(c, s, t, n);
        fill(x, n, -4, 4);
        memcpy(y, x, n * sizeof *x);
        jc_kernels_ref.rope(y, c, s, n);
        for (int j = 0; j < n / 2; j++) {
            double a = x[2 * j], b = x[2 * j + 1], ct = cos(t[j]), st = sin(t[j]);
            double want[2] = {a * ct - b * st, b * ct + a * st}, norm = hypot(a, b);
            for (int e = 0; e < 2; e++)
                if (!(fabs(y[2 * j + e] - want[e]) <= 1e-6 * norm))
                    fail_msg("ref rope n=%d [%d]: %.9g vs %.9g", n, 2 * j + e, y[2 * j + e],
                             want[e]);
        }
    }

    float *px = malloc((size_t)POOL_MAXR * POOL_MAXLD * sizeof(float));
    assert_non_null(px);
    for (size_t ri = 0; ri < sizeof pool_rows / sizeof *pool_rows; ri++)
        for (size_t ni = 0; ni < sizeof pool_ns / sizeof *pool_ns; ni++) {
            const int rows = pool_rows[ri], n = pool_ns[ni];
            const size_t ld = (size_t)n + ((ri + ni) % 2 ? 0 : 3);
            pool_matrix(px, rows, n, ld);
            for (int kind = 0; kind < 3; kind++) {
                const uint8_t *m = pool_mask(mask, kind, rows);
                jc_kernels_ref.mean_pool(out, px, ld, m, (size_t)rows, n);
                for (int j = 0; j < n; j++) {
                    double sum = 0;
                    int count = 0;
                    for (int i = 0; i < rows; i++)
                        if (!m || m[i]) {
                            sum += px[(size_t)i * ld + j];
                            count++;
                        }
                    float want = count ? (float)(sum / count) : 0.0f;
                    if (memcmp(&out[j], &want, sizeof want))
                        fail_msg("ref mean_pool rows=%d n=%d mask %d [%d]: %.9g vs %.9g", rows, n,
                                 kind, j, out[j], want);
                }
            }
        }
    free(px);
}

/*
 * linear_few: every table gives the reference's bits, on row counts either side of each
 * vector of rows, column counts either side of each kernel's group, K within one block and
 * across several, strides past the operands, rows of xt past m holding other values (they
 * must not be stored) and the padding of c left alone.
 */
static const int few_ms[] = {1, 2, 8, 9, 15, 16, 17, 24, 25, 31, 32, 33, 47, 48, 63, 64};
static const int few_ns[] = {1, 5, 8, 13, 96, 100};
static const int few_ks[] = {1, 17, 40, 320, 700, 1000};

static int few_blocks(int k, int q, int *ends)
{
    int n = 0;
    for (int k0 = 0; k0 < k;) {
        int left = k - k0, len = left >= 2 * q ? q : left > q ? (left / 2 + 15) / 16 * 16 : left;
        ends[n++] = k0 += len;
    }
    return n;
}

struct few_case {
    float *xt, *w, *c0, *c;
    int m, mp, n, k, ldc, ldw, blocks, ends[64];
};

static void few_init(struct few_case *f, int m, int n, int k, int q)
{
    f->m = m;
    f->mp = (m + 15) / 16 * 16;
    f->n = n;
    f->k = k;
    f->ldc = n + 5;
    f->ldw = k + 3;
    f->blocks = few_blocks(k, q, f->ends);
    f->xt = malloc((size_t)k * f->mp * sizeof *f->xt);
    f->w = malloc((size_t)n * f->ldw * sizeof *f->w);
    f->c0 = malloc((size_t)m * f->ldc * sizeof *f->c0);
    f->c = malloc((size_t)m * f->ldc * sizeof *f->c);
    assert_non_null(f->xt && f->w && f->c0 && f->c);
    fill(f->xt, k * f->mp, -2, 2);
    fill(f->w, n * f->ldw, -1, 1);
    fill(f->c0, m * f->ldc, -8, 8);
}

static void few_free(struct few_case *f)
{
    free(f->xt);
    free(f->w);
    free(f->c0);
    free(f->c);
}

static void few_run(const struct jc_kernels *k, struct few_case *f, float *out)
{
    memcpy(out, f->c0, (size_t)f->m * f->ldc * sizeof *out);
    k->linear_few(out, f->ldc, f->xt, f->mp, f->m, f->w, f->ldw, f->n, f->ends, f->blocks);
}

static void check_linear_few(const struct jc_kernels *k, const char *isa)
{
    for (size_t a = 0; a < sizeof few_ms / sizeof *few_ms; a++)
        for (size_t b = 0; b < sizeof few_ns / sizeof *few_ns; b++)
            for (size_t d = 0; d < sizeof few_ks / sizeof *few_ks; d++) {
                struct few_case f;
                few_init(&f, few_ms[a], few_ns[b], few_ks[d], 320);
                float *want = malloc((size_t)f.m * f.ldc * sizeof *want);
                assert_non_null(want);
                few_run(&jc_kernels_ref, &f, want);
                few_run(k, &f, f.c);
                if (memcmp(f.c, want, (size_t)f.m * f.ldc * sizeof *want))
                    fail_msg("%s linear_few m=%d n=%d k=%d: not the reference's bits", isa, f.m,
                             f.n, f.k);
                free(want);
                few_free(&f);
            }
}

/*
 * bf16 products (kernels/bf16.h): shapes around a panel of 16 columns and a pair of k, odd
 * K, M = 1 to 197, with c's padding and the columns outside [j0, j1) left alone.
 */
static const int bf_ms[] = {1, 2, 12, 15, 16, 17, 197};
static const int bf_ns[] = {1, 15, 16, 17, 40, 100};
static const int bf_ks[] = {1, 2, 3, 17, 40, 127};

struct bf_case {
    float *x, *w, *c0, *c; /* x [m, k], w [n, k], c [m, ldc] */
    uint16_t *xb, *wp;     /* x rounded, rows kp apart; w packed */
    uint16_t *xs, *ws;     /* the same with pairs swapped (bf16_swapped tables) */
    int m, n, k, kp, ldc;
};

static void bf_init(struct bf_case *f, int m, int n, int k)
{
    f->m = m;
    f->n = n;
    f->k = k;
    f->kp = jc_bf16_kp(k);
    f->ldc = n + 3;
    f->x = malloc((size_t)m * k * sizeof *f->x);
    f->w = malloc((size_t)n * k * sizeof *f->w);
    f->c0 = malloc((size_t)m * f->ldc * sizeof *f->c0);
    f->c = malloc((size_t)m * f->ldc * sizeof *f->c);
    f->xb = calloc((size_t)m * f->kp, sizeof *f->xb);
    f->wp = calloc(jc_bf16_packed_elems(n, k), sizeof *f->wp);
    f->xs = malloc((size_t)m * f->kp * sizeof *f->xs);
    f->ws = malloc(jc_bf16_packed_elems(n, k) * sizeof *f->ws);
    assert_non_null(f->x && f->w && f->c0 && f->c && f->xb && f->wp && f->xs && f->ws);
    fill(f->x, m * k, -2, 2);
    fill(f->w, n * k, -1, 1);
    fill(f->c0, m * f->ldc, -8, 8);
    for (int r = 0; r < m; r++)
        jc_kernels_ref.round_bf16(f->xb + (size_t)r * f->kp, f->x + (size_t)r * k, k);
    for (int j = 0; j < n; j++)
        for (int kk = 0; kk < k; kk++)
            f->wp[jc_bf16_at(j, kk / 2, kk % 2, f->kp)] = jc_bf16_round(f->w[(size_t)j * k + kk]);
    memcpy(f->xs, f->xb, (size_t)m * f->kp * sizeof *f->xs);
    memcpy(f->ws, f->wp, jc_bf16_packed_elems(n, k) * sizeof *f->ws);
    jc_bf16_swap_pairs(f->xs, (size_t)m * f->kp / 2);
    jc_bf16_swap_pairs(f->ws, jc_bf16_packed_elems(n, k) / 2);
}

static void bf_free(struct bf_case *f)
{
    free(f->x);
    free(f->w);
    free(f->c0);
    free(f->c);
    free(f->xb);
    free(f->wp);
    free(f->xs);
    free(f->ws);
}

/* k's linear_bf16 on columns j0 .. j1 of f, onto out, with the pairs as k takes them. */
static void bf_call(const struct jc_kernels *k, struct bf_case *f, float *out, int j0, int j1)
{
    k->linear_bf16(out, f->ldc, k->bf16_swapped ? f->xs : f->xb, f->kp, f->m,
                   k->bf16_swapped ? f->ws : f->wp, f->kp, j0, j1);
}

static void bf_run(const struct jc_kernels *k, struct bf_case *f, float *out, int j0, int j1)
{
    memcpy(out, f->c0, (size_t)f->m * f->ldc * sizeof *out);
    bf_call(k, f, out, j0, j1);
}

static const float bf_edge[] = {0.0f,
                                -0.0f,
                                1.0f,
                                1.00390625f,
                                1.005859375f,
                                1.001953125f,
                                -1.0029296875f,
                                0x1p-126f,
                                0x1p-127f,
                                -0x1p-140f,
                                0x1.fffffep127f,
                                0x1.fe0000p127f,
                                0x1.ff0000p127f,
                                INFINITY,
                                -INFINITY,
                                NAN,
                                3.14159265f,
                                65504.0f,
                                1e-30f};

/* A table's round_bf16 against jc_bf16_round: edges, then random bits, every length to 40. */
static void check_round_bf16(const struct jc_kernels *k, const char *isa)
{
    enum { N = 40 };
    float src[N];
    uint16_t got[N + 1];
    for (int n = 0; n <= N; n++)
        for (int t = 0; t < 50; t++) {
            for (int i = 0; i < n; i++) {
                rng = rng * 6364136223846793005u + 1442695040888963407u;
                uint32_t u = (uint32_t)rng ^ (uint32_t)(rng >> 32);
                memcpy(&src[i], &u, sizeof u);
                if (t == 0)
                    src[i] = bf_edge[i % (sizeof bf_edge / sizeof *bf_edge)];
            }
            got[n] = 0xabcd;
            k->round_bf16(got, src, n);
            if (got[n] != 0xabcd)
                fail_msg("%s round_bf16 n=%d: wrote past n", isa, n);
            for (int i = 0; i < n; i++)
                if (got[i] != jc_bf16_round(src[i]))
                    fail_msg("%s round_bf16 of %a: 0x%04x, jc_bf16_round 0x%04x", isa, src[i],
                             got[i], jc_bf16_round(src[i]));
        }
}

/* Every bf16 table against the reference's bits, whole and in two ranges of columns. */
static void check_bf16(const struct jc_kernels *k, const char *isa)
{
    if (!k->bf16 || k == &jc_kernels_ref)
        return;
    if (k->round_bf16 != jc_kernels_ref.round_bf16)
        check_round_bf16(k, isa);
    for (size_t a = 0; a < sizeof bf_ms / sizeof *bf_ms; a++)
        for (size_t b = 0; b < sizeof bf_ns / sizeof *bf_ns; b++)
            for (size_t d = 0; d < sizeof bf_ks / sizeof *bf_ks; d++) {
                struct bf_case f;
                bf_init(&f, bf_ms[a], bf_ns[b], bf_ks[d]);
                float *want = malloc((size_t)f.m * f.ldc * sizeof *want);
                assert_non_null(want);
                bf_run(&jc_kernels_ref, &f, want, 0, f.n);
                bf_run(k, &f, f.c, 0, f.n);
                if (memcmp(f.c, want, (size_t)f.m * f.ldc * sizeof *want))
                    fail_msg("%s linear_bf16 m=%d n=%d k=%d: not the reference's bits", isa, f.m,
                             f.n, f.k);
                const int mid = f.n > 16 ? 16 : 0;
                memcpy(f.c, f.c0, (size_t)f.m * f.ldc * sizeof *want);
                bf_call(k, &f, f.c, 0, mid);
                bf_call(k, &f, f.c, mid, f.n);
                if (memcmp(f.c, want, (size_t)f.m * f.ldc * sizeof *want))
                    fail_msg("%s linear_bf16 m=%d n=%d k=%d: columns in two calls differ", isa, f.m,
                             f.n, f.k);
                free(want);
                bf_free(&f);
            }
}

/*
 * The AVX512-BF16 kernels built against tests/unit/avx512bf16_emu.h, the instructions as
 * Intel's pseudo-code states them: the kernels' blocking, tails and masks, on any CPU.
 */
void jc_linear_bf16_avx512_emulated(float *c, int ldc, const uint16_t *x, int ldx, int m,
                                    const uint16_t *w, int kp, int j0, int j1);
void jc_round_bf16_avx512_emulated(uint16_t *dst, const float *src, int n);

/* The reference table with these bf16 kernels (round_bf16 the reference's when NULL), checked. */
static void check_bf16_kernels(const char *isa, void (*round_bf16)(uint16_t *, const float *, int),
                               void (*linear_bf16)(float *, int, const uint16_t *, int, int,
                                                   const uint16_t *, int, int, int),
                               bool swapped)
{
    struct jc_kernels k = jc_kernels_ref;
    k.bf16 = isa;
    k.round_bf16 = round_bf16 ? round_bf16 : k.round_bf16;
    k.linear_bf16 = linear_bf16;
    k.bf16_swapped = swapped;
    check_bf16(&k, isa);
}

static void test_bf16_avx512_emulated(void **state)
{
    (void)state;
    check_bf16_kernels("emulated avx512-bf16", jc_round_bf16_avx512_emulated,
                       jc_linear_bf16_avx512_emulated, false);
}

/* Where the avx512 table took AMX tiles, its AVX512-BF16 kernels natively as well. */
static void test_bf16_avx512_beside_amx(void **state)
{
    (void)state;
#ifdef JC_X86_KERNELS
    const struct jc_kernels *t = jc_kernels_select("avx512");
    if (!t || !jc_cpu()->avx512bf16 || t->linear_bf16 == jc_linear_bf16_avx512) {
        printf("avx512 table without AMX tiles here: nothing beside them to check\n");
        return;
    }
    check_bf16_kernels("avx512-bf16 beside amx", jc_round_bf16_avx512, jc_linear_bf16_avx512,
                       false);
#endif
}

/* The AMX kernel likewise, against tests/unit/amx_emu.h, on pairs swapped as it takes them. */
void jc_linear_bf16_amx_emulated(float *c, int ldc, const uint16_t *x, int ldx, int m,
                                 const uint16_t *w, int kp, int j0, int j1);

/* Rounding by truncation: what jc_bf16_check must refuse. */
static void truncate_bf16(uint16_t *dst, const float *src, int n)
{
    for (int i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &src[i], sizeof u);
        dst[i] = (uint16_t)(u >> 16);
    }
}

static void test_bf16_amx_emulated(void **state)
{
    (void)state;
    check_bf16_kernels("emulated amx-bf16", NULL, jc_linear_bf16_amx_emulated, true);
    /* the check dispatch.c makes before it takes the AMX kernel, which must be able to fail */
    assert_true(jc_bf16_check(NULL, jc_linear_bf16_amx_emulated, true));
    assert_false(jc_bf16_check(NULL, jc_linear_bf16_amx_emulated, false));
    assert_true(
        jc_bf16_check(jc_round_bf16_avx512_emulated, jc_linear_bf16_avx512_emulated, false));
    assert_false(
        jc_bf16_check(jc_round_bf16_avx512_emulated, jc_linear_bf16_avx512_emulated, true));
    assert_false(jc_bf16_check(truncate_bf16, jc_linear_bf16_avx512_emulated, false));
}

/* bf16 of f written out from its bits, the nearer of the two bf16 around it, ties to even. */
static uint16_t bf16_nearest(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if (isnan(f))
        return (uint16_t)((u >> 16) | 0x40);
    if (isinf(f))
        return (uint16_t)(u >> 16);
    if (fpclassify(f) == FP_SUBNORMAL || f == 0)
        return (uint16_t)((u >> 16) & 0x8000);
    uint16_t lo = (uint16_t)(u >> 16), hi = (uint16_t)(lo + 1);
    double dlo = fabs((double)jc_bf16_float(lo) - f);
    double dhi = (hi & 0x7fff) >= 0x7f80 ? INFINITY : fabs((double)jc_bf16_float(hi) - f);
    if ((hi & 0x7fff) == 0x7f80) /* past the largest bf16: its halfway point rounds up */
        dhi = fabs(f) >= 0x1.ffp127 ? 0 : INFINITY;
    if (dlo != dhi)
        return dlo < dhi ? lo : hi;
    return lo & 1 ? hi : lo;
}

static void test_bf16_round(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bf_edge / sizeof *bf_edge; i++) {
        uint16_t got = jc_bf16_round(bf_edge[i]), want = bf16_nearest(bf_edge[i]);
        if (got != want)
            fail_msg("bf16 of %a: 0x%04x, nearest 0x%04x", bf_edge[i], got, want);
    }
    for (int i = 0; i < 200000; i++) {
        rng = rng * 6364136223846793005u + 1442695040888963407u;
        uint32_t u = (uint32_t)rng ^ (uint32_t)(rng >> 32);
        float f;
        memcpy(&f, &u, sizeof f);
        uint16_t got = jc_bf16_round(f), want = bf16_nearest(f);
        if (got != want && !(isnan(f) && (got & 0x7fc0) == 0x7fc0))
            fail_msg("bf16 of %a (0x%08x): 0x%04x, nearest 0x%04x", f, u, got, want);
    }
}

/*
 * The reference linear_bf16 against the contract written out from the unpacked operands,
 * exactly, and against double within 1e-5 of the sum of magnitudes.
 */
static void test_bf16_reference(void **state)
{
    (void)state;
    for (size_t a = 0; a < sizeof bf_ms / sizeof *bf_ms; a++)
        for (size_t b = 0; b < sizeof bf_ns / sizeof *bf_ns; b++)
            for (size_t d = 0; d < sizeof bf_ks / sizeof *bf_ks; d++) {
                struct bf_case f;
                bf_init(&f, bf_ms[a], bf_ns[b], bf_ks[d]);
                const int j0 = f.n > 16 ? 16 : 0; /* columns before j0 stay as they were */
                bf_run(&jc_kernels_ref, &f, f.c, j0, f.n);
                for (int r = 0; r < f.m; r++)
                    for (int j = 0; j < f.ldc; j++) {
                        float got = f.c[r * f.ldc + j], acc = f.c0[r * f.ldc + j];
                        if (j < j0 || j >= f.n) {
                            if (memcmp(&got, &acc, sizeof got))
                                fail_msg("ref linear_bf16 wrote c[%d][%d], outside [%d, %d)", r, j,
                                         j0, f.n);
                            continue;
                        }
                        float s = 0;
                        double exact = 0, mag = 0;
                        for (int kk = 0; kk < f.kp; kk += 2)
                            for (int e = 1; e >= 0; e--) {
                                float xv = 0, wv = 0;
                                if (kk + e < f.k) {
                                    xv = jc_bf16_float(jc_bf16_round(f.x[r * f.k + kk + e]));
                                    wv = jc_bf16_float(jc_bf16_round(f.w[j * f.k + kk + e]));
                                }
                                s = fmaf(xv, wv, s);
                                s = fabsf(s) < 0x1p-126f ? copysignf(0, s) : s;
                                exact += (double)xv * wv;
                                mag += fabs((double)xv * wv);
                            }
                        if (memcmp(&got, &(float){acc + s}, sizeof got))
                            fail_msg("ref linear_bf16 m=%d n=%d k=%d [%d][%d]: %.9g, the "
                                     "contract %.9g",
                                     f.m, f.n, f.k, r, j, got, acc + s);
                        if (fabs(got - acc - exact) > 1e-5 * mag + 1e-6 * fabs(acc))
                            fail_msg("ref linear_bf16 k=%d [%d][%d]: %.9g, exact %.9g", f.k, r, j,
                                     got - acc, exact);
                    }
                bf_free(&f);
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
        check_attention(k, isas[i]);
        check_rope_pool(k, isas[i]);
        check_linear_few(k, isas[i]);
        check_bf16(k, isas[i]);
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
}

/*
 * The reference linear_few against the contract written out from x untransposed, exactly,
 * and against double within 1e-5 of the sum of magnitudes; c's padding untouched.
 */
static void test_linear_few_reference(void **state)
{
    (void)state;
    for (size_t a = 0; a < sizeof few_ms / sizeof *few_ms; a += 3)
        for (size_t d = 0; d < sizeof few_ks / sizeof *few_ks; d++) {
            static const int qs[] = {64, 320};
            struct few_case f;
            few_init(&f, few_ms[a], 13, few_ks[d], qs[d & 1]);
            few_run(&jc_kernels_ref, &f, f.c);
            for (int r = 0; r < f.m; r++)
                for (int j = 0; j < f.ldc; j++) {
                    float got = f.c[r * f.ldc + j], acc = f.c0[r * f.ldc + j];
                    double exact = acc, mag = fabs(acc);
                    if (j >= f.n) {
                        if (memcmp(&got, &acc, sizeof got))
                            fail_msg("ref linear_few wrote c[%d][%d], past n", r, j);
                        continue;
                    }
                    for (int bl = 0, kk = 0; bl < f.blocks; bl++) {
                        float s = 0;
                        for (; kk < f.ends[bl]; kk++) {
                            float xv = f.xt[(size_t)kk * f.mp + r],
                                  wv = f.w[(size_t)j * f.ldw + kk];
                            s = fmaf(xv, wv, s);
                            exact += (double)xv * wv;
                            mag += fabs((double)xv * wv);
                        }
                        acc += s;
                    }
                    if (memcmp(&got, &acc, sizeof got))
                        fail_msg("ref linear_few m=%d k=%d [%d][%d]: %.9g, the contract %.9g", f.m,
                                 f.k, r, j, got, acc);
                    if (fabs(got - exact) > 1e-5 * mag)
                        fail_msg("ref linear_few m=%d k=%d [%d][%d]: %.9g, exact %.9g", f.m, f.k, r,
                                 j, got, exact);
                }
            few_free(&f);
        }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference),
        cmocka_unit_test(test_linear_few_reference),
        cmocka_unit_test(test_bf16_round),
        cmocka_unit_test(test_bf16_reference),
        cmocka_unit_test(test_bf16_avx512_emulated),
        cmocka_unit_test(test_bf16_amx_emulated),
        cmocka_unit_test(test_bf16_avx512_beside_amx),
        cmocka_unit_test(test_attention_reference),
        cmocka_unit_test(test_rope_pool_reference),
        cmocka_unit_test(test_tables),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
