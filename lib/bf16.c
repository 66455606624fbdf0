/*
 * --precision bf16: the precision setting, the weights packed at load, and the linear
 * layers run through the kernel table's bf16 product. Every element of a product is the
 * kernel's fixed sum over all of K, so a row's result depends on its own input alone,
 * whatever the batch or the thread count; no layout of rows is needed, unlike OpenBLAS's.
 */
#include "internal.h"
#include "compute.h"
#include "kernels.h"
#include "bf16.h"

#include <stdlib.h>
#include <string.h>

/* Rows of x a job rounds to bf16 and runs through all the columns. */
#define ROW_BLOCK 32

int jc_set_precision(const char *name)
{
    const struct jc_runtime *rt = jc_runtime();
    if (!strcmp(name, "fp32")) {
        jc_rt.bf16 = false;
        return 0;
    }
    if (strcmp(name, "bf16"))
        return jc_fail(JC_EINVAL, "precision '%s' is unknown (use fp32 or bf16)", name);
    jc_rt.bf16 = rt->kernels->bf16 != NULL;
    return jc_rt.bf16 ? 0 : 1;
}

const char *jc_precision_name(void)
{
    return jc_runtime()->bf16 ? "bf16" : "fp32";
}

const char *jc_bf16_instructions(void)
{
    return jc_runtime()->kernels->bf16;
}

/*
 * One row of x, or one column of w, as the kernels take it: rounded, zero past an odd in,
 * pairs as the table has them.
 */
static void round_row(uint16_t *xb, const float *x, int in, int kp)
{
    const struct jc_kernels *k = jc_rt.kernels;
    k->round_bf16(xb, x, in);
    if (kp > in)
        xb[in] = 0;
    if (k->bf16_swapped)
        jc_bf16_swap_pairs(xb, (size_t)kp / 2);
}

struct pack_run {
    uint16_t *dst, *rows; /* rows: a column rounded, kp values, per thread */
    const float *w;
    int n, k, kp;
};

/*
 * Job j packs panel j: each of its columns (a row of w, read in order) rounded by the table's
 * round_bf16, then its pairs dealt to their places 16 pairs apart. A panel's 16 columns
 * write the same stretch of memory, so it stays in cache while the job fills it.
 */
static void pack_job(void *arg, int job, int thread)
{
    const struct pack_run *p = arg;
    const int j0 = job * JC_BF16_PANEL;
    uint16_t *panel = p->dst + jc_bf16_at(j0, 0, 0, p->kp);
    uint16_t *row = p->rows + (size_t)thread * p->kp;
    for (int c = 0; c < JC_BF16_PANEL; c++) {
        uint16_t *dst = panel + 2 * c;
        if (j0 + c < p->n)
            round_row(row, p->w + (size_t)(j0 + c) * p->k, p->k, p->kp);
        else
            memset(row, 0, (size_t)p->kp * sizeof *row);
        for (int q = 0; q < p->kp / 2; q++)
            memcpy(dst + (size_t)q * 2 * JC_BF16_PANEL, row + 2 * q, 2 * sizeof *row);
    }
}

uint16_t *jc_bf16_pack(const float *w, int n, int k, const char *what)
{
    const size_t bytes = (jc_bf16_packed_elems(n, k) * sizeof(uint16_t) + 63) & ~(size_t)63;
    uint16_t *dst = aligned_alloc(64, bytes);
    if (!dst) {
        jc_fail(JC_ENOMEM, "out of memory for %s in bf16 (%zu bytes)", what, bytes);
        return NULL;
    }
    struct pack_run p = {dst, NULL, w, n, k, jc_bf16_kp(k)};
    p.rows = jc_calloc((size_t)jc_pool_size() * (size_t)p.kp, sizeof *p.rows, what);
    if (!p.rows) {
        free(dst);
        return NULL;
    }
    jc_pool_run((n + JC_BF16_PANEL - 1) / JC_BF16_PANEL, pack_job, &p);
    free(p.rows);
    return dst;
}

size_t jc_linear_bf16_scratch(int in)
{
    /* each thread's block of rows in bf16, in floats */
    return (size_t)jc_pool_size() * ROW_BLOCK * (size_t)jc_bf16_kp(in) / 2;
}

struct bf16_run {
    const float *x, *b;
    const uint16_t *w, *xb; /* xb: x rounded, when the columns are split */
    float *y;
    uint16_t *scratch;
    int rows, in, kp, out, ldy, cols; /* cols: columns per job when they are split */
    bool acc;
};

/* y's rows r0 .. r0 + m - 1 readied for the product: the bias, onto y or in place of it. */
static void start_rows(const struct bf16_run *r, int r0, int m, int j0, int j1)
{
    for (int i = r0; i < r0 + m; i++) {
        float *y = r->y + (size_t)i * r->ldy;
        for (int j = j0; j < j1; j++)
            y[j] = (r->acc ? y[j] : 0) + (r->b ? r->b[j] : 0);
    }
}

/* Many rows: job j takes rows ROW_BLOCK j onwards through every column. */
static void row_job(void *arg, int job, int thread)
{
    const struct bf16_run *r = arg;
    const struct jc_kernels *k = jc_rt.kernels;
    const int r0 = job * ROW_BLOCK, m = r->rows - r0 < ROW_BLOCK ? r->rows - r0 : ROW_BLOCK;
    uint16_t *xb = r->scratch + (size_t)thread * ROW_BLOCK * r->kp;
    for (int i = 0; i < m; i++)
        round_row(xb + (size_t)i * r->kp, r->x + (size_t)(r0 + i) * r->in, r->in, r->kp);
    start_rows(r, r0, m, 0, r->out);
    k->linear_bf16(r->y + (size_t)r0 * r->ldy, r->ldy, xb, r->kp, m, r->w, r->kp, 0, r->out);
}

/* Few rows: job j takes columns cols j onwards for every row. */
static void col_job(void *arg, int job, int thread)
{
    const struct bf16_run *r = arg;
    const int j0 = job * r->cols, j1 = j0 + r->cols < r->out ? j0 + r->cols : r->out;
    (void)thread;
    start_rows(r, 0, r->rows, j0, j1);
    jc_rt.kernels->linear_bf16(r->y, r->ldy, r->xb, r->kp, r->rows, r->w, r->kp, j0, j1);
}

void jc_linear_bf16(const float *x, int rows, int in, const uint16_t *w, const float *b, int out,
                    float *y, int ldy, bool acc, float *scratch)
{
    struct bf16_run r = {.x = x,
                         .b = b,
                         .w = w,
                         .y = y,
                         .scratch = (uint16_t *)scratch,
                         .rows = rows,
                         .in = in,
                         .kp = jc_bf16_kp(in),
                         .out = out,
                         .ldy = ldy,
                         .acc = acc};
    const int threads = jc_pool_size();
    if (rows <= 0 || out <= 0)
        return;
    if (rows > ROW_BLOCK) {
        jc_pool_run((rows + ROW_BLOCK - 1) / ROW_BLOCK, row_job, &r);
        return;
    }
    /* at most a block of rows: rounded once, the columns split in panels across the pool */
    uint16_t *xb = r.scratch;
    for (int i = 0; i < rows; i++)
        round_row(xb + (size_t)i * r.kp, x + (size_t)i * in, in, r.kp);
    r.xb = xb;
    const int panels = (out + JC_BF16_PANEL - 1) / JC_BF16_PANEL;
    const int jobs = panels < 4 * threads ? panels : 4 * threads;
    r.cols = (panels + jobs - 1) / jobs * JC_BF16_PANEL;
    jc_pool_run((out + r.cols - 1) / r.cols, col_job, &r);
}
