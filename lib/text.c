/*
 * The JinaBERT text tower (spec section 3). Sequences are packed into one token matrix for
 * the linear layers, so a batch of short and long texts wastes little on padding;
 * attention runs per sequence and head, in blocks of query rows, so its memory grows with
 * the sequence length, never with its square.
 *
 * The layout keeps batching from changing a bit (lib/pool.c): the sequences whose rows
 * jc_linear_own_rows names come first, packed, as jc_linear_split's own rows; every other
 * sequence starts at a multiple of the GEMM unroll from the first row after them, and its
 * last group is padded, or its rows past its last whole group (jc_linear_tail_rows) go to
 * the groups shared by those rows of all sequences, after every sequence's whole groups:
 * the first half of its tail (rounded up) to first halves of groups, the rest to second
 * halves, each in the order of the sequences. A sequence split so has a third place, past
 * the linear layers' rows, where its rows sit in order for attention and pooling: its q, k
 * and v are copied there after their product, and its attention output copied back.
 */
#include "model.h"
#include "compute.h"
#include "kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/*
 * Most token rows per feed-forward chunk: a batch of 256 captions is one chunk; past
 * MLP_ONE_CHUNK tokens, chunks of MLP_ROWS keep the 2I-wide activations of a long text
 * small.
 */
#define MLP_ONE_CHUNK 4096
#define MLP_ROWS      2048
#define EW_ROWS       64 /* token rows per elementwise job */

/*
 * A sequence's rows: its first `body` at `at`, the rest in the shared groups from the a-th
 * slot of their first halves and the b-th of their second halves; in order at seqs[].off.
 */
struct split {
    size_t seq, at, body, a, b;
};

struct text_ws {
    const struct jc_text_tower *t;
    const struct jc_kernels *k;
    size_t T, own; /* the linear layers' rows; the first `own` of them, jc_linear_split's */
    int D, I;
    struct jc_seq *seqs;
    struct jc_attention attn;
    struct jc_attention_job *jobs;
    size_t *at;           /* [n] where each sequence's rows start in the linear layers */
    struct split *splits; /* the sequences split in two */
    size_t n_splits;
    size_t shared, half; /* the first row of the shared groups; half a group */
    uint8_t *mask;       /* [T] 1 = real token */
    float *h;            /* [T, D] */
    float *qkv;          /* [T, 3D] */
    float *ctx;          /* [T, D] */
    float *u;            /* [chunk, 2I] */
    float *y;            /* [chunk, I] */
    float *scores;       /* jc_attention scratch */
    float *pad;          /* jc_linear scratch */
    /* per-phase arguments */
    float *move;
    int move_width;
    bool move_in;
    const float *ln_w, *ln_b;
    size_t rows0, rows, chunk;
};

/* h = LN(h) on rows [rows0, rows0 + rows): the residual is already in h. */
static void ln_job(void *arg, int j, int thread)
{
    struct text_ws *w = arg;
    size_t r0 = w->rows0 + (size_t)j * EW_ROWS, r1 = r0 + EW_ROWS;
    (void)thread;
    if (r1 > w->rows0 + w->rows)
        r1 = w->rows0 + w->rows;
    for (size_t r = r0; r < r1; r++) {
        float *h = w->h + r * w->D;
        w->k->layernorm(h, h, w->ln_w, w->ln_b, w->D, w->t->dims.eps);
    }
}

static void glu_job(void *arg, int j, int thread)
{
    struct text_ws *w = arg;
    size_t r0 = (size_t)j * EW_ROWS, r1 = r0 + EW_ROWS;
    (void)thread;
    if (r1 > w->rows)
        r1 = w->rows;
    for (size_t r = r0; r < r1; r++) {
        const float *u = w->u + r * 2 * w->I;
        w->k->gelu_mul(w->y + r * w->I, u, u + w->I, w->I);
    }
}

static void layernorm(struct text_ws *w, size_t rows0, size_t rows, const float *lw,
                      const float *lb)
{
    w->rows0 = rows0;
    w->rows = rows;
    w->ln_w = lw;
    w->ln_b = lb;
    jc_pool_run((int)((rows + EW_ROWS - 1) / EW_ROWS), ln_job, w);
}

/*
 * A sequence's own rows and rows past its last whole group (see the top of this file); with
 * bf16 products, which keep a row's bits wherever it is, none: every sequence in line,
 * unpadded (the unroll is then 1).
 */
static void seq_rows(bool bf16, size_t len, size_t *own, size_t *tail)
{
    *own = bf16 ? 0 : jc_linear_own_rows(len);
    *tail = bf16 ? 0 : jc_linear_tail_rows(len);
}

/* The rows a sequence of len tokens takes from `at`: its whole groups, or all padded. */
static size_t in_line_rows(size_t len, size_t own, size_t tail, size_t unroll)
{
    return own ? 0 : tail ? len - tail : (len + unroll - 1) / unroll * unroll;
}

/* The row of the linear layers where the i-th row past a split sequence's body sits. */
static size_t tail_row(const struct text_ws *w, const struct split *q, size_t i)
{
    const size_t first = (w->seqs[q->seq].len - q->body + 1) / 2, half = w->half;
    size_t k = i < first ? q->a + i : q->b + i - first;
    return w->shared + k / half * 2 * half + (i < first ? 0 : half) + k % half;
}

/*
 * A split sequence's rows of `width` floats between their places in the linear layers'
 * rows of buf and `in_order`: into in_order (in), or back.
 */
static void move_split(const struct text_ws *w, const struct split *q, float *buf, float *in_order,
                       size_t width, bool in)
{
    const size_t bytes = width * sizeof *buf;
    for (size_t i = 0; i < w->seqs[q->seq].len; i++) {
        float *row = buf + (i < q->body ? q->at + i : tail_row(w, q, i - q->body)) * width;
        if (in)
            memcpy(in_order + i * width, row, bytes);
        else
            memcpy(row, in_order + i * width, bytes);
    }
}

static void move_job(void *arg, int j, int thread)
{
    struct text_ws *w = arg;
    const struct split *q = &w->splits[j];
    const size_t width = (size_t)w->move_width;
    (void)thread;
    move_split(w, q, w->move, w->move + w->seqs[q->seq].off * width, width, w->move_in);
}

/*
 * The split sequences' rows of buf (`width` floats each): into their place in order (in),
 * or back from it.
 */
static void move_rows(struct text_ws *w, float *buf, int width, bool in)
{
    w->move = buf;
    w->move_width = width;
    w->move_in = in;
    if (w->n_splits)
        jc_pool_run((int)w->n_splits, move_job, w);
}

/* One linear layer: through OpenBLAS and the kernels (fp32), or bf16 where it is packed. */
static void linear(struct text_ws *w, const float *x, size_t rows, int own, int in, const float *wf,
                   const uint16_t *wh, const float *b, int out, float *y, bool acc)
{
    if (wh)
        jc_linear_bf16(x, (int)rows, in, wh, b, out, y, out, acc, w->pad);
    else
        jc_linear_split(x, (int)rows, own, in, wf, b, out, y, out, acc, w->pad);
}

static void run_layer(struct text_ws *w, const struct jc_text_layer *l)
{
    const int D = w->D, I = w->I;
    const size_t T = w->T;

    const int own = (int)w->own;

    linear(w, w->h, T, own, D, l->wqkv, l->hqkv, l->bqkv, 3 * D, w->qkv, false);
    move_rows(w, w->qkv, 3 * D, true);
    jc_attention(&w->attn, w->jobs, w->scores);
    move_rows(w, w->ctx, D, false);
    linear(w, w->ctx, T, own, D, l->wout, l->hout, l->bout, D, w->h, true);
    layernorm(w, 0, T, l->ln1_w, l->ln1_b);

    /*
     * The feed-forward runs in row chunks so its 2I-wide activations stay small; the own
     * rows and the rest in chunks of their own, so the rest's start at multiples of the
     * unroll from its first row.
     */
    for (size_t r0 = 0, rows; r0 < T; r0 += rows) {
        size_t end = r0 < w->own ? w->own : T;
        rows = end - r0 < w->chunk ? end - r0 : w->chunk;
        int o = r0 < w->own ? (int)rows : 0;
        linear(w, w->h + r0 * D, rows, o, D, l->wg, l->hg, NULL, 2 * I, w->u, false);
        w->rows = rows;
        jc_pool_run((int)((rows + EW_ROWS - 1) / EW_ROWS), glu_job, w);
        linear(w, w->y, rows, o, I, l->wo, l->ho, l->bo, D, w->h + r0 * D, true);
    }
    layernorm(w, 0, T, l->ln2_w, l->ln2_b);
}

/* dst = src / max(|src|, 1e-12); dst may be src. */
static void l2_normalize_to(float *dst, const float *src, size_t n)
{
    double ss = 0;
    for (size_t i = 0; i < n; i++)
        ss += (double)src[i] * src[i];
    float norm = (float)sqrt(ss);
    if (norm < 1e-12f)
        norm = 1e-12f;
    for (size_t i = 0; i < n; i++)
        dst[i] = src[i] / norm;
}

void jc_l2_normalize(float *v, size_t n)
{
    l2_normalize_to(v, v, n);
}

struct normalize_job {
    float *dst;
    const float *src;
    size_t n, d;
};

#define NORMALIZE_ROWS 256 /* rows a job */

static void normalize_job(void *arg, int job, int thread)
{
    const struct normalize_job *j = arg;
    size_t r0 = (size_t)job * NORMALIZE_ROWS;
    (void)thread;
    for (size_t r = r0; r < r0 + NORMALIZE_ROWS && r < j->n; r++)
        l2_normalize_to(j->dst + r * j->d, j->src + r * j->d, j->d);
}

void jc_l2_normalize_rows(float *dst, const float *src, size_t n, size_t d)
{
    struct normalize_job j = {dst, src, n, d};
    jc_pool_run((int)((n + NORMALIZE_ROWS - 1) / NORMALIZE_ROWS), normalize_job, &j);
}

int jc_embed_texts(struct jc_model *m, const int32_t *const *ids, const size_t *lens, size_t n,
                   unsigned flags, float *out)
{
    struct text_ws w = {0};
    const struct jc_text_tower *t = &m->text;
    const int D = t->dims.dim, I = t->dims.intermediate;
    int rc = 0;

    if (!(m->loaded & JC_LOAD_TEXT))
        return jc_fail(JC_EINVAL, "model '%s' was opened without its text tower", m->dir);
    if (n == 0)
        return 0;
    if ((rc = jc_blas_reserve()) < 0)
        return rc;
    w.t = t;
    w.k = jc_runtime()->kernels;
    w.D = D;
    w.I = I;
    /* The layout: see the top of this file. */
    const size_t unroll = m->bf16 ? 1 : (size_t)jc_blas_row_unroll();
    size_t rest = 0, in_order = 0, firsts = 0; /* firsts: rows for first halves, the most */
    for (size_t s = 0; s < n; s++) {
        if (lens[s] < 1 || lens[s] > (1u << 24))
            return jc_fail(JC_EINVAL, "text %zu has %zu tokens", s, lens[s]);
        size_t own, tail;
        seq_rows(m->bf16, lens[s], &own, &tail);
        w.own += own;
        rest += in_line_rows(lens[s], own, tail, unroll);
        if (tail) {
            w.n_splits++;
            in_order += lens[s];
            firsts += (tail + 1) / 2;
        }
    }
    w.half = unroll / 2;
    w.shared = w.own + rest;
    w.T = w.shared + (firsts ? (firsts + w.half - 1) / w.half * unroll : 0);
    if (w.T + in_order > (1u << 24))
        return jc_fail(JC_ELIMIT, "a batch of %zu tokens is too large", w.T + in_order);

    w.seqs = jc_calloc(n, sizeof *w.seqs, "the batch");
    w.mask = jc_calloc(w.T + in_order, 1, "the attention mask");
    w.splits = jc_calloc(w.n_splits ? w.n_splits : 1, sizeof *w.splits, "the batch");
    w.at = jc_calloc(n, sizeof *w.at, "the batch");
    if (!w.seqs || !w.mask || !w.splits || !w.at) {
        rc = JC_ENOMEM;
        goto out_free;
    }
    size_t off_own = 0, off_rest = w.own, off_in_order = w.T, sp = 0, a = 0, b = 0;
    for (size_t s = 0; s < n; s++) {
        size_t own, tail, o;
        seq_rows(m->bf16, lens[s], &own, &tail);
        if (own) {
            o = w.at[s] = off_own;
            off_own += own;
        } else {
            o = w.at[s] = off_rest;
            off_rest += in_line_rows(lens[s], own, tail, unroll);
            if (tail) {
                w.splits[sp++] = (struct split){s, w.at[s], lens[s] - tail, a, b};
                a += (tail + 1) / 2;
                b += tail / 2;
                o = off_in_order;
                off_in_order += lens[s];
            }
        }
        w.seqs[s].off = o;
        w.seqs[s].len = lens[s];
        for (size_t i = 0; i < lens[s]; i++) {
            int32_t id = ids[s][i];
            if (id < 0 || id >= t->dims.vocab) {
                rc = jc_fail(JC_EINVAL, "text %zu: token id %d is outside the vocabulary of %d", s,
                             id, t->dims.vocab);
                goto out_free;
            }
            w.mask[o + i] = id != 0;
            w.seqs[s].padded |= id == 0;
        }
    }
    size_t chunk = w.chunk = jc_chunk_rows(w.T, w.T <= MLP_ONE_CHUNK ? MLP_ONE_CHUNK : MLP_ROWS);
    w.jobs = jc_malloc(jc_attention_jobs(w.seqs, n, t->dims.heads) * sizeof *w.jobs,
                       "the attention jobs");
    const int shapes[][2] = {{D, 3 * D}, {D, D}, {D, 2 * I}, {I, D}};
    const size_t pad = jc_linear_scratch_max(shapes, 4),
                 pad_bf16 = m->bf16 ? jc_linear_bf16_scratch(I > D ? I : D) : 0;
    const size_t f = sizeof(float), bytes[] = {
                                        w.T * D * f,                  /* h */
                                        (w.T + in_order) * 3 * D * f, /* qkv */
                                        (w.T + in_order) * D * f,     /* ctx */
                                        chunk * 2 * I * f,            /* u */
                                        chunk * I * f,                /* y */
                                        jc_attention_scratch(t->dims.head_dim) * f,
                                        (pad > pad_bf16 ? pad : pad_bf16) * f,
                                    };
    float *buf[7];
    if (!w.jobs) {
        rc = JC_ENOMEM;
        goto out_free;
    }
    if ((rc = jc_workspace_carve(&m->ws, bytes, buf, 7, "text activations")) < 0)
        goto out_free;
    w.h = buf[0];
    w.qkv = buf[1];
    w.ctx = buf[2];
    w.u = buf[3];
    w.y = buf[4];
    w.scores = buf[5];
    w.pad = buf[6];
    w.attn = (struct jc_attention){
        .qkv = w.qkv,
        .ctx = w.ctx,
        .dim = D,
        .heads = t->dims.heads,
        .head_dim = t->dims.head_dim,
        .scale = 1.0f / sqrtf((float)t->dims.head_dim),
        .slopes = t->slopes,
        .mask = w.mask,
        .seqs = w.seqs,
        .n_seqs = n,
    };

    /*
     * Embeddings: no position embeddings (ALiBi stands in), token type 0 throughout. The
     * rows between texts are zeros, and stay finite whatever the layers make of them; no
     * text's rows read them.
     */
    memset(w.h, 0, w.T * D * sizeof *w.h);
    memset(w.ctx, 0, (w.T + in_order) * D * sizeof *w.ctx);
    for (size_t s = 0, sp = 0; s < n; s++) {
        const struct split *q = sp < w.n_splits && w.splits[sp].seq == s ? &w.splits[sp++] : NULL;
        for (size_t i = 0; i < lens[s]; i++) {
            size_t row = !q || i < q->body ? w.at[s] + i : tail_row(&w, q, i - q->body);
            float *h = w.h + row * D;
            const float *e = t->word_emb + (size_t)ids[s][i] * D;
            for (int c = 0; c < D; c++)
                h[c] = e[c] + t->type_emb[c];
            w.k->layernorm(h, h, t->emb_ln_w, t->emb_ln_b, D, t->dims.eps);
        }
    }

    for (int l = 0; l < t->dims.layers; l++)
        run_layer(&w, &t->layers[l]);

    /*
     * Mean over the tokens that are not [PAD], [CLS] and [SEP] included; sums in double. The
     * split sequences' rows, in order, in ctx (h has no room for them).
     */
    for (size_t j = 0; j < w.n_splits; j++)
        move_split(&w, &w.splits[j], w.h, w.ctx + w.seqs[w.splits[j].seq].off * D, (size_t)D, true);
    for (size_t s = 0; s < n; s++) {
        const struct jc_seq *q = &w.seqs[s];
        const float *rows = q->off >= w.T ? w.ctx : w.h;
        float *o = out + s * D;
        w.k->mean_pool(o, rows + q->off * D, (size_t)D, w.mask + q->off, q->len, D);
        if (!(flags & JC_EMBED_RAW))
            jc_l2_normalize(o, D);
    }

out_free:
    free(w.seqs);
    free(w.mask);
    free(w.jobs);
    free(w.splits);
    free(w.at);
    return rc;
}
