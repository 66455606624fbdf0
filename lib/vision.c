/*
 * The EVA-02 vision tower (spec section 4): patch embedding, CLS and position embeddings,
 * pre-norm blocks with q/v biases, 2D RoPE on the patch tokens, sub-LayerNorm after
 * attention and inside the SwiGLU MLP, a final norm; the embedding is the CLS token.
 * A batch of images is one token matrix for the linear layers.
 */
#include "compute.h"
#include "kernels.h"
#include "model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/*
 * Most token rows per MLP chunk: 32 images are one chunk, so each weight matrix is packed
 * once per thread per layer; [8192, Hm] twice is the MLP's memory.
 */
#define MLP_ROWS 8192
#define EW_ROWS  64 /* token rows per elementwise job */

struct vision_ws {
    const struct jc_vision_tower *v;
    const struct jc_kernels *k;
    size_t T; /* tokens in the batch */
    int W, Hm, n_tok;
    size_t stride; /* rows per image: n_tok rounded up to the GEMM unroll */
    struct jc_seq *seqs;
    struct jc_attention attn;
    struct jc_attention_job *jobs;
    float *x;       /* [T, W] residual stream */
    float *t;       /* [T, W] normed input of a sublayer; also im2col patches */
    float *qkv;     /* [T, 3W] */
    float *ctx;     /* [T, W] attention output; first the patch embeddings */
    float *g1, *g2; /* [chunk, Hm] */
    float *scores, *pad;
    /* per-phase arguments */
    const float *ln_w, *ln_b;
    float *src, *dst;
    const float *bias;
    size_t rows0, rows, chunk;
    int n;
};

int jc_vision_rope(struct jc_vision_tower *v, int grid)
{
    const int hd = v->dims.head_dim, half = hd / 2, quarter = half / 2;
    const size_t n = (size_t)grid * grid * hd;

    v->rope_c = jc_malloc(n * sizeof(float), "the RoPE tables");
    v->rope_s = jc_malloc(n * sizeof(float), "the RoPE tables");
    if (!v->rope_c || !v->rope_s)
        return JC_ENOMEM;
    /*
     * Pair i < half/2 turns with the row, the rest with the column; float32 as the
     * reference. Laid out for the rope kernel: cos twice, then -sin and sin, per pair.
     */
    for (int p = 0; p < grid * grid; p++)
        for (int i = 0; i < half; i++) {
            int m = i < quarter ? i : i - quarter;
            float f = 1.0f / powf(10000.0f, (float)(2 * m) / (float)half);
            float angle = (float)(i < quarter ? p / grid : p % grid) * f;
            float c = (float)cos((double)angle), sn = (float)sin((double)angle);
            float *pc = v->rope_c + (size_t)p * hd + 2 * i,
                  *ps = v->rope_s + (size_t)p * hd + 2 * i;
            pc[0] = pc[1] = c;
            ps[0] = -sn;
            ps[1] = sn;
        }
    return 0;
}

/*
 * dst = LN(src) over n columns, rows [rows0, rows0 + rows); then src += bias when a bias
 * is given: the bias of the GEMM that will add into src, applied while the row is in cache.
 */
static void ln_job(void *arg, int j, int thread)
{
    struct vision_ws *w = arg;
    size_t r0 = w->rows0 + (size_t)j * EW_ROWS, r1 = r0 + EW_ROWS;
    (void)thread;
    if (r1 > w->rows0 + w->rows)
        r1 = w->rows0 + w->rows;
    for (size_t r = r0; r < r1; r++) {
        w->k->layernorm(w->dst + r * w->n, w->src + r * w->n, w->ln_w, w->ln_b, w->n,
                        w->v->dims.eps);
        if (w->bias)
            w->k->add(w->src + r * w->n, w->bias, w->n);
    }
}

static void layernorm(struct vision_ws *w, float *dst, float *src, size_t rows, int n,
                      const float *lw, const float *lb, const float *then_bias)
{
    w->dst = dst;
    w->src = src;
    w->rows0 = 0;
    w->rows = rows;
    w->n = n;
    w->ln_w = lw;
    w->ln_b = lb;
    w->bias = then_bias;
    jc_pool_run((int)((rows + EW_ROWS - 1) / EW_ROWS), ln_job, w);
}

static void swiglu_job(void *arg, int j, int thread)
{
    struct vision_ws *w = arg;
    size_t r0 = (size_t)j * EW_ROWS, r1 = r0 + EW_ROWS;
    (void)thread;
    if (r1 > w->rows)
        r1 = w->rows;
    for (size_t r = r0; r < r1; r++) {
        float *g = w->g1 + r * w->Hm;
        w->k->silu_mul(g, g, w->g2 + r * w->Hm, w->Hm);
        w->k->layernorm(g, g, w->ln_w, w->ln_b, w->Hm, w->v->dims.eps);
    }
}

/* One linear layer: through OpenBLAS (fp32), or bf16 where it is packed. */
static void linear(struct vision_ws *w, const float *x, size_t rows, int in, const float *wf,
                   const uint16_t *wh, const float *b, int out, float *y, int ldy, bool acc)
{
    if (wh)
        jc_linear_bf16(x, (int)rows, in, wh, b, out, y, ldy, acc, w->pad);
    else if (acc)
        jc_linear_add(x, (int)rows, in, wf, b, out, y, ldy, w->pad);
    else
        jc_linear(x, (int)rows, in, wf, b, out, y, ldy, w->pad);
}

static void run_block(struct vision_ws *w, const struct jc_vision_block *b)
{
    const int W = w->W, Hm = w->Hm;
    const size_t T = w->T;

    /* The residual stream takes proj's bias here and w3's after LN2, so the GEMMs that
     * add into it need no pass of their own for it. */
    layernorm(w, w->t, w->x, T, W, b->ln1_w, b->ln1_b, b->bproj);
    linear(w, w->t, T, W, b->wq, b->hq, b->q_bias, W, w->qkv, 3 * W, false);
    linear(w, w->t, T, W, b->wk, b->hk, NULL, W, w->qkv + W, 3 * W, false);
    linear(w, w->t, T, W, b->wv, b->hv, b->v_bias, W, w->qkv + 2 * W, 3 * W, false);
    jc_attention(&w->attn, w->jobs, w->scores);
    layernorm(w, w->ctx, w->ctx, T, W, b->inner_ln_w, b->inner_ln_b, NULL);
    linear(w, w->ctx, T, W, b->wproj, b->hproj, NULL, W, w->x, W, true);

    layernorm(w, w->t, w->x, T, W, b->ln2_w, b->ln2_b, b->b3);
    for (size_t r0 = 0; r0 < T; r0 += w->chunk) {
        size_t rows = T - r0 < w->chunk ? T - r0 : w->chunk;
        linear(w, w->t + r0 * W, rows, W, b->w1, b->h1, b->b1, Hm, w->g1, Hm, false);
        linear(w, w->t + r0 * W, rows, W, b->w2, b->h2, b->b2, Hm, w->g2, Hm, false);
        w->rows = rows;
        w->ln_w = b->ffn_ln_w;
        w->ln_b = b->ffn_ln_b;
        jc_pool_run((int)((rows + EW_ROWS - 1) / EW_ROWS), swiglu_job, w);
        linear(w, w->g1, rows, Hm, b->w3, b->h3, NULL, W, w->x + r0 * W, W, true);
    }
}

int jc_embed_images(struct jc_model *m, const float *pixels, size_t n, unsigned flags, float *out)
{
    struct vision_ws w = {0};
    const struct jc_vision_tower *v = &m->vision;
    const int S = v->dims.image_size, P = v->dims.patch_size, g = S / P, K = 3 * P * P;
    const int W = v->dims.width;
    int rc = 0;

    if (!(m->loaded & JC_LOAD_VISION))
        return jc_fail(JC_EINVAL, "model '%s' was opened without its vision tower", m->dir);
    if (n == 0)
        return 0;
    if ((rc = jc_blas_reserve()) < 0)
        return rc;
    if (n > (1u << 16))
        return jc_fail(JC_ELIMIT, "a batch of %zu images is too large", n);
    w.v = v;
    w.k = jc_runtime()->kernels;
    w.W = W;
    w.Hm = v->dims.mlp_hidden;
    w.n_tok = g * g + 1;
    /*
     * Each image starts at a multiple of the GEMM unroll, so batching changes no bit; the
     * bf16 products keep a row's bits wherever it is, so there images are not padded.
     */
    w.stride = m->bf16 ? 1 : (size_t)jc_blas_row_unroll();
    w.stride = (w.n_tok + w.stride - 1) / w.stride * w.stride;
    w.T = n * w.stride;

    size_t T = w.T, chunk = w.chunk = jc_chunk_rows(T, MLP_ROWS);
    w.seqs = jc_calloc(n, sizeof *w.seqs, "the batch");
    if (!w.seqs)
        return JC_ENOMEM;
    for (size_t i = 0; i < n; i++)
        w.seqs[i] = (struct jc_seq){i * w.stride, (size_t)w.n_tok, false};
    w.jobs = jc_malloc(jc_attention_jobs(w.seqs, n, v->dims.heads) * sizeof *w.jobs,
                       "the attention jobs");
    const int shapes[][2] = {{K, W}, {W, W}, {W, w.Hm}, {w.Hm, W}};
    const int widest = K > W ? (K > w.Hm ? K : w.Hm) : (W > w.Hm ? W : w.Hm);
    const size_t pad = jc_linear_scratch_max(shapes, 4),
                 pad_bf16 = m->bf16 ? jc_linear_bf16_scratch(widest) : 0;
    const size_t f = sizeof(float), bytes[] = {
                                        T * W * f,               /* x */
                                        T * (W > K ? W : K) * f, /* t */
                                        T * 3 * W * f,           /* qkv */
                                        T * W * f,               /* ctx */
                                        chunk * w.Hm * f,        /* g1 */
                                        chunk * w.Hm * f,        /* g2 */
                                        jc_attention_scratch(v->dims.head_dim) * f,
                                        (pad > pad_bf16 ? pad : pad_bf16) * f,
                                    };
    float *buf[8];
    if (!w.jobs) {
        rc = JC_ENOMEM;
        goto out_free;
    }
    if ((rc = jc_workspace_carve(&m->ws, bytes, buf, 8, "image activations")) < 0)
        goto out_free;
    w.x = buf[0];
    w.t = buf[1];
    w.qkv = buf[2];
    w.ctx = buf[3];
    w.g1 = buf[4];
    w.g2 = buf[5];
    w.scores = buf[6];
    w.pad = buf[7];
    w.attn = (struct jc_attention){
        .qkv = w.qkv,
        .ctx = w.ctx,
        .dim = W,
        .heads = v->dims.heads,
        .head_dim = v->dims.head_dim,
        .scale = 1.0f / sqrtf((float)v->dims.head_dim),
        .rope_c = v->rope_c,
        .rope_s = v->rope_s,
        .rope_from = 1, /* the CLS token does not turn */
        .seqs = w.seqs,
        .n_seqs = n,
    };

    /*
     * Patch embedding as a GEMM: one row per patch, laid out (channel, ky, kx) like the conv,
     * an image's patches from a multiple of the unroll too. The rows past an image's
     * patches, and later past its tokens, are zeros and stay finite whatever the layers
     * make of them; no image's rows read them.
     */
    float *patches = w.t;
    memset(patches, 0, T * K * sizeof *patches);
    memset(w.x, 0, T * W * sizeof *w.x);
    for (size_t i = 0; i < n; i++)
        for (int p = 0; p < g * g; p++) {
            float *row = patches + (i * w.stride + p) * K;
            const float *img = pixels + i * 3 * S * S;
            int r = p / g, c = p % g;
            for (int ch = 0; ch < 3; ch++)
                for (int ky = 0; ky < P; ky++)
                    memcpy(row + (ch * P + ky) * P, img + ((size_t)ch * S + r * P + ky) * S + c * P,
                           P * sizeof(float));
        }
    linear(&w, patches, T, K, v->patch_w, v->patch_h, v->patch_b, W, w.ctx, W, false);
    for (size_t i = 0; i < n; i++) {
        float *x = w.x + i * w.stride * W;
        for (int c = 0; c < W; c++)
            x[c] = v->cls[c] + v->pos[c];
        for (int p = 0; p < g * g; p++)
            for (int c = 0; c < W; c++)
                x[(size_t)(p + 1) * W + c] =
                    w.ctx[(i * w.stride + p) * W + c] + v->pos[(size_t)(p + 1) * W + c];
    }

    for (int l = 0; l < v->dims.layers; l++)
        run_block(&w, &v->blocks[l]);

    /* Only the CLS token is the embedding: the final norm runs on it alone. */
    for (size_t i = 0; i < n; i++) {
        float *o = out + i * W;
        w.k->layernorm(o, w.x + i * w.stride * W, v->norm_w, v->norm_b, W, v->dims.eps);
        if (!(flags & JC_EMBED_RAW))
            jc_l2_normalize(o, W);
    }

out_free:
    free(w.seqs);
    free(w.jobs);
    return rc;
}
