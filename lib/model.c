#include "model.h"
#include "compute.h"
#include "bf16.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define CONFIG_LIMIT (16u << 20)

/* ---- finding the model ---------------------------------------------------------------- */

static bool is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Appends "; <fmt>" to a bounded report of the places looked at. */
static void note(char *buf, size_t cap, const char *fmt, ...) JC_PRINTF(3, 4);
static void note(char *buf, size_t cap, const char *fmt, ...)
{
    size_t o = strlen(buf);
    va_list ap;
    if (o && o + 2 < cap)
        o += snprintf(buf + o, cap - o, "; ");
    va_start(ap, fmt);
    if (o < cap)
        vsnprintf(buf + o, cap - o, fmt, ap);
    va_end(ap);
}

/* snprintf into a path buffer; false when it did not fit. */
static bool pathf(char *buf, size_t cap, const char *fmt, ...) JC_PRINTF(3, 4);
static bool pathf(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
    return n >= 0 && (size_t)n < cap;
}

/* The snapshot refs/main names, else the newest snapshot with a config.json. */
static char *hf_snapshot(const char *repo, char *report, size_t cap)
{
    char path[4096], rev[256] = "";
    FILE *f;
    DIR *d;
    struct dirent *e;
    char *best = NULL;
    double best_t = -1;

    if (pathf(path, sizeof path, "%s/refs/main", repo) && (f = fopen(path, "r"))) {
        if (fgets(rev, sizeof rev, f))
            rev[strcspn(rev, "\r\n \t")] = '\0';
        fclose(f);
    }
    if (*rev && !strchr(rev, '/')) {
        if (pathf(path, sizeof path, "%s/snapshots/%s", repo, rev) && is_dir(path))
            return strdup(path);
        note(report, cap, "%s (refs/main names a missing snapshot)", path);
    }
    if (!pathf(path, sizeof path, "%s/snapshots", repo) || !(d = opendir(path))) {
        note(report, cap, "%s (not found)", repo);
        return NULL;
    }
    while ((e = readdir(d))) {
        struct stat st;
        char cfg[4096];
        if (e->d_name[0] == '.')
            continue;
        if (!pathf(cfg, sizeof cfg, "%s/%s/config.json", path, e->d_name) || stat(cfg, &st) < 0)
            continue;
        double t = st.st_mtim.tv_sec + st.st_mtim.tv_nsec * 1e-9;
        if (t > best_t) {
            char *dir = jc_path_join(path, e->d_name);
            if (dir) {
                free(best);
                best = dir;
                best_t = t;
            }
        }
    }
    closedir(d);
    if (!best)
        note(report, cap, "%s (no snapshot with a config.json)", path);
    return best;
}

int jc_model_locate(const char *dir, char **out)
{
    char report[2048] = "", hub[4096];
    const char *env;

    *out = NULL;
    if (dir && *dir) {
        *out = strdup(dir);
        return *out ? 0 : jc_fail(JC_ENOMEM, "out of memory");
    }
    note(report, sizeof report, "-m/--model (not given)");
    if ((env = getenv("JCLIP_MODEL")) && *env) {
        *out = strdup(env);
        return *out ? 0 : jc_fail(JC_ENOMEM, "out of memory");
    }
    note(report, sizeof report, "$JCLIP_MODEL (not set)");
    if ((env = getenv("HF_HUB_CACHE")) && *env)
        snprintf(hub, sizeof hub, "%s", env);
    else if ((env = getenv("HF_HOME")) && *env)
        snprintf(hub, sizeof hub, "%s/hub", env);
    else if ((env = getenv("HOME")) && *env)
        snprintf(hub, sizeof hub, "%s/.cache/huggingface/hub", env);
    else
        snprintf(hub, sizeof hub, ".cache/huggingface/hub");
    char repo[4200];
    snprintf(repo, sizeof repo, "%s/models--jinaai--jina-clip-v1", hub);
    if ((*out = hf_snapshot(repo, report, sizeof report)))
        return 0;
    return jc_fail(JC_ENOTFOUND,
                   "no jina-clip-v1 model found; looked at %s; get it with 'jclip download' (or "
                   "huggingface-cli download jinaai/jina-clip-v1), or pass -m DIR",
                   report);
}

/* ---- loading -------------------------------------------------------------------------- */

#define SHAPE(...) ((const int64_t[]){__VA_ARGS__})
#define NDIM(...)  ((int)(sizeof((const int64_t[]){__VA_ARGS__}) / sizeof(int64_t)))
#define GET(m, ptr, name, ...)                                                                     \
    do {                                                                                           \
        int rc_ = jc_st_get(&(m)->st, name, NDIM(__VA_ARGS__), SHAPE(__VA_ARGS__), &(ptr));        \
        if (rc_ < 0)                                                                               \
            return rc_;                                                                            \
    } while (0)

static const char *tname(char *buf, size_t cap, const char *fmt, int i, const char *leaf)
{
    snprintf(buf, cap, fmt, i, leaf);
    return buf;
}

static int64_t count_params(const struct jc_st *st, const char *prefix)
{
    int64_t n = 0;
    size_t len = strlen(prefix);
    for (size_t i = 0; i < st->n; i++)
        if (!strncmp(st->t[i].name, prefix, len))
            n += st->t[i].nelem;
    return n;
}

/* Text dimensions come from tensor shapes (the config does not carry them), spec section 1. */
static int text_dims(struct jc_model *m)
{
    const char *path = m->st.path;
    const struct jc_tensor *we =
        jc_st_find(&m->st, "text_model.transformer.embeddings.word_embeddings.weight");
    const struct jc_tensor *g;
    struct jc_text_dims *d = &m->tdims;
    const char *pre = "text_model.transformer.encoder.layers.";
    size_t plen = strlen(pre);

    if (!we)
        return jc_fail(JC_ENOTFOUND,
                       "%s: tensor 'text_model.transformer.embeddings.word_embeddings.weight' is "
                       "missing",
                       path);
    if (we->ndim != 2 || we->shape[0] < 1 || we->shape[1] < 1 || we->shape[1] > (1 << 16) ||
        we->shape[0] > (1 << 24))
        return jc_fail(JC_ESHAPE,
                       "%s: tensor 'text_model.transformer.embeddings.word_embeddings.weight' has "
                       "shape %s, expected [vocab, width]",
                       path, jc_shape_str((char[160]){0}, 160, we->ndim, we->shape));
    d->vocab = (int)we->shape[0];
    d->dim = (int)we->shape[1];
    d->layers = 0;
    for (size_t i = 0; i < m->st.n; i++) {
        const char *n = m->st.t[i].name;
        if (!strncmp(n, pre, plen)) {
            long l = strtol(n + plen, NULL, 10);
            if (l >= 0 && l < 1024 && l + 1 > d->layers)
                d->layers = (int)l + 1;
        }
    }
    if (!d->layers)
        return jc_fail(JC_ENOTFOUND, "%s: no text encoder layers (%s0.*)", path, pre);
    g = jc_st_find(&m->st, "text_model.transformer.encoder.layers.0.mlp.gated_layers.weight");
    if (!g)
        return jc_fail(JC_ENOTFOUND,
                       "%s: tensor 'text_model.transformer.encoder.layers.0.mlp.gated_layers."
                       "weight' is missing",
                       path);
    if (g->ndim != 2 || g->shape[0] % 2 || g->shape[0] < 2 || g->shape[1] != d->dim)
        return jc_fail(JC_ESHAPE,
                       "%s: tensor 'text_model.transformer.encoder.layers.0.mlp.gated_layers."
                       "weight' has shape %s, expected [2 * intermediate, %d]",
                       path, jc_shape_str((char[160]){0}, 160, g->ndim, g->shape), d->dim);
    d->intermediate = (int)(g->shape[0] / 2);
    d->heads = m->cfg.t_heads > 0 ? m->cfg.t_heads : d->dim / 64;
    if (d->heads < 1 || d->dim % d->heads || (d->dim / d->heads) % 2)
        return jc_fail(JC_EFORMAT, "%s/config.json: %d attention heads do not divide width %d",
                       m->dir, d->heads, d->dim);
    d->head_dim = d->dim / d->heads;
    d->eps = m->cfg.t_eps >= 0 ? (float)m->cfg.t_eps : 1e-12f;
    /* Where the config does give a dimension, it must agree with the tensors. */
    if ((m->cfg.t_hidden > 0 && m->cfg.t_hidden != d->dim) ||
        (m->cfg.t_vocab > 0 && m->cfg.t_vocab != d->vocab) ||
        (m->cfg.t_layers > 0 && m->cfg.t_layers != d->layers) ||
        (m->cfg.t_intermediate > 0 && m->cfg.t_intermediate != d->intermediate))
        return jc_fail(JC_ESHAPE,
                       "%s/config.json: text dimensions (width %d, vocab %d, layers %d, "
                       "intermediate %d) do not match the tensors in %s (%d, %d, %d, %d)",
                       m->dir, m->cfg.t_hidden, m->cfg.t_vocab, m->cfg.t_layers,
                       m->cfg.t_intermediate, path, d->dim, d->vocab, d->layers, d->intermediate);
    d->params = count_params(&m->st, "text_model.");
    return 0;
}

static int vision_dims(struct jc_model *m)
{
    struct jc_vision_dims *v = &m->vdims;
    const struct jc_config *c = &m->cfg;
    if (!c->has_vision)
        return jc_fail(JC_EFORMAT, "%s/config.json: no vision_config", m->dir);
    v->width = c->v_width;
    v->head_dim = c->v_head_width;
    v->heads = c->v_width / c->v_head_width;
    v->layers = c->v_layers;
    v->mlp_hidden = (int)(c->v_width * c->v_mlp_ratio);
    v->image_size = c->v_image_size;
    v->patch_size = c->v_patch_size;
    v->eps = 1e-6f;
    v->params = count_params(&m->st, "vision_model.");
    return 0;
}

/*
 * Maps a tower's weight matrices into the page tables at once (MADV_POPULATE_READ, Linux
 * 5.14; elsewhere, or when it fails, they fault in as they are first read): every embedding
 * reads all of them, and a first caption otherwise took some 8,600 page faults, which a
 * virtual machine makes costly (on the 2-core VM of make bench, a first touch of 217,000
 * pages of the model took 428 ms faulted in, 24 + 283 ms populated first). Advice only:
 * nothing to report.
 */
static void populate(const void *p, size_t bytes)
{
#ifdef MADV_POPULATE_READ
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE), a = (uintptr_t)p & ~(page - 1);
    madvise((void *)a, (uintptr_t)p + bytes - a, MADV_POPULATE_READ);
#else
    (void)p;
    (void)bytes;
#endif
}

/*
 * A linear layer's matrix w [n, k] as the model's precision keeps it: in place (fp32), or
 * packed in bf16 into memory the model owns, with w's whole pages of the mapping given back
 * (MADV_DONTNEED: a shared read-only file mapping drops them from the process, not from
 * the page cache), so the weights hold half the memory.
 */
static int keep_matrix(struct jc_model *m, const uint16_t **packed, const float *w, int64_t n,
                       int64_t k, const char *what)
{
    if (!m->bf16)
        return 0;
    uint16_t *p = jc_bf16_pack(w, (int)n, (int)k, what);
    if (!p)
        return JC_ENOMEM;
    m->packed[m->n_packed++] = p;
    *packed = p;
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE), lo = (uintptr_t)w,
                    hi = lo + (uintptr_t)(n * k) * sizeof(float);
    const uintptr_t a = (lo + page - 1) & ~(page - 1), e = hi & ~(page - 1);
    const uintptr_t map = (uintptr_t)m->st.map;
    if (map && lo >= map && hi <= map + m->st.file_size && e > a)
        madvise((void *)a, e - a, MADV_DONTNEED); /* advice: nothing to report */
    return 0;
}

static int load_text(struct jc_model *m)
{
    struct jc_text_tower *t = &m->text;
    const struct jc_text_dims *d = &m->tdims;
    const int64_t D = d->dim, I = d->intermediate;
    char n[256];
    const char *L = "text_model.transformer.encoder.layers.%d.%s";

    t->dims = *d;
    GET(m, t->word_emb, "text_model.transformer.embeddings.word_embeddings.weight", d->vocab, D);
    GET(m, t->type_emb, "text_model.transformer.embeddings.token_type_embeddings.weight", 2, D);
    GET(m, t->emb_ln_w, "text_model.transformer.emb_ln.weight", D);
    GET(m, t->emb_ln_b, "text_model.transformer.emb_ln.bias", D);
    t->layers = jc_calloc((size_t)d->layers, sizeof *t->layers, "the text layers");
    t->slopes = jc_calloc((size_t)d->heads, sizeof *t->slopes, "the ALiBi slopes");
    if (!t->layers || !t->slopes)
        return JC_ENOMEM;
    jc_alibi_slopes(t->slopes, d->heads);
    for (int i = 0; i < d->layers; i++) {
        struct jc_text_layer *l = &t->layers[i];
        GET(m, l->wqkv, tname(n, sizeof n, L, i, "mixer.Wqkv.weight"), 3 * D, D);
        GET(m, l->bqkv, tname(n, sizeof n, L, i, "mixer.Wqkv.bias"), 3 * D);
        GET(m, l->wout, tname(n, sizeof n, L, i, "mixer.out_proj.weight"), D, D);
        GET(m, l->bout, tname(n, sizeof n, L, i, "mixer.out_proj.bias"), D);
        GET(m, l->ln1_w, tname(n, sizeof n, L, i, "norm1.weight"), D);
        GET(m, l->ln1_b, tname(n, sizeof n, L, i, "norm1.bias"), D);
        GET(m, l->wg, tname(n, sizeof n, L, i, "mlp.gated_layers.weight"), 2 * I, D);
        GET(m, l->wo, tname(n, sizeof n, L, i, "mlp.wo.weight"), D, I);
        GET(m, l->bo, tname(n, sizeof n, L, i, "mlp.wo.bias"), D);
        GET(m, l->ln2_w, tname(n, sizeof n, L, i, "norm2.weight"), D);
        GET(m, l->ln2_b, tname(n, sizeof n, L, i, "norm2.bias"), D);
    }
    /* every caption reads all of these; of the word embeddings, only its tokens' rows */
    for (int i = 0; i < d->layers; i++) {
        struct jc_text_layer *l = &t->layers[i];
        populate(l->wqkv, (size_t)(3 * D * D) * sizeof(float));
        populate(l->wout, (size_t)(D * D) * sizeof(float));
        populate(l->wg, (size_t)(2 * I * D) * sizeof(float));
        populate(l->wo, (size_t)(D * I) * sizeof(float));
        int rc;
        if ((rc = keep_matrix(m, &l->hqkv, l->wqkv, 3 * D, D, "the text weights")) < 0 ||
            (rc = keep_matrix(m, &l->hout, l->wout, D, D, "the text weights")) < 0 ||
            (rc = keep_matrix(m, &l->hg, l->wg, 2 * I, D, "the text weights")) < 0 ||
            (rc = keep_matrix(m, &l->ho, l->wo, D, I, "the text weights")) < 0)
            return rc;
    }
    return 0;
}

static int load_vision(struct jc_model *m)
{
    struct jc_vision_tower *vt = &m->vision;
    const struct jc_vision_dims *v = &m->vdims;
    const int64_t W = v->width, H = v->mlp_hidden, P = v->patch_size;
    const int64_t g = v->image_size / v->patch_size, T = g * g + 1;
    const char *B = "vision_model.blocks.%d.%s";
    char n[256];

    vt->dims = *v;
    GET(m, vt->cls, "vision_model.cls_token", 1, 1, W);
    GET(m, vt->pos, "vision_model.pos_embed", 1, T, W);
    GET(m, vt->patch_w, "vision_model.patch_embed.proj.weight", W, 3, P, P);
    GET(m, vt->patch_b, "vision_model.patch_embed.proj.bias", W);
    if (!(vt->blocks = jc_calloc((size_t)v->layers, sizeof *vt->blocks, "the vision blocks")))
        return JC_ENOMEM;
    for (int i = 0; i < v->layers; i++) {
        struct jc_vision_block *b = &vt->blocks[i];
        GET(m, b->ln1_w, tname(n, sizeof n, B, i, "norm1.weight"), W);
        GET(m, b->ln1_b, tname(n, sizeof n, B, i, "norm1.bias"), W);
        GET(m, b->wq, tname(n, sizeof n, B, i, "attn.q_proj.weight"), W, W);
        GET(m, b->wk, tname(n, sizeof n, B, i, "attn.k_proj.weight"), W, W);
        GET(m, b->wv, tname(n, sizeof n, B, i, "attn.v_proj.weight"), W, W);
        GET(m, b->q_bias, tname(n, sizeof n, B, i, "attn.q_bias"), W);
        GET(m, b->v_bias, tname(n, sizeof n, B, i, "attn.v_bias"), W);
        GET(m, b->inner_ln_w, tname(n, sizeof n, B, i, "attn.inner_attn_ln.weight"), W);
        GET(m, b->inner_ln_b, tname(n, sizeof n, B, i, "attn.inner_attn_ln.bias"), W);
        GET(m, b->wproj, tname(n, sizeof n, B, i, "attn.proj.weight"), W, W);
        GET(m, b->bproj, tname(n, sizeof n, B, i, "attn.proj.bias"), W);
        GET(m, b->ln2_w, tname(n, sizeof n, B, i, "norm2.weight"), W);
        GET(m, b->ln2_b, tname(n, sizeof n, B, i, "norm2.bias"), W);
        GET(m, b->w1, tname(n, sizeof n, B, i, "mlp.w1.weight"), H, W);
        GET(m, b->b1, tname(n, sizeof n, B, i, "mlp.w1.bias"), H);
        GET(m, b->w2, tname(n, sizeof n, B, i, "mlp.w2.weight"), H, W);
        GET(m, b->b2, tname(n, sizeof n, B, i, "mlp.w2.bias"), H);
        GET(m, b->ffn_ln_w, tname(n, sizeof n, B, i, "mlp.ffn_ln.weight"), H);
        GET(m, b->ffn_ln_b, tname(n, sizeof n, B, i, "mlp.ffn_ln.bias"), H);
        GET(m, b->w3, tname(n, sizeof n, B, i, "mlp.w3.weight"), W, H);
        GET(m, b->b3, tname(n, sizeof n, B, i, "mlp.w3.bias"), W);
    }
    int rc = keep_matrix(m, &vt->patch_h, vt->patch_w, W, 3 * P * P, "the vision weights");
    for (int i = 0; rc == 0 && i < v->layers; i++) {
        struct jc_vision_block *b = &vt->blocks[i];
        const float *const ws[] = {b->wq, b->wk, b->wv, b->wproj};
        for (size_t k = 0; k < sizeof ws / sizeof *ws; k++)
            populate(ws[k], (size_t)(W * W) * sizeof(float));
        populate(b->w1, (size_t)(H * W) * sizeof(float));
        populate(b->w2, (size_t)(H * W) * sizeof(float));
        populate(b->w3, (size_t)(W * H) * sizeof(float));
        const char *what = "the vision weights";
        if ((rc = keep_matrix(m, &b->hq, b->wq, W, W, what)) < 0 ||
            (rc = keep_matrix(m, &b->hk, b->wk, W, W, what)) < 0 ||
            (rc = keep_matrix(m, &b->hv, b->wv, W, W, what)) < 0 ||
            (rc = keep_matrix(m, &b->hproj, b->wproj, W, W, what)) < 0 ||
            (rc = keep_matrix(m, &b->h1, b->w1, H, W, what)) < 0 ||
            (rc = keep_matrix(m, &b->h2, b->w2, H, W, what)) < 0 ||
            (rc = keep_matrix(m, &b->h3, b->w3, W, H, what)) < 0)
            break;
    }
    if (rc < 0)
        return rc;
    GET(m, vt->norm_w, "vision_model.norm.weight", W);
    GET(m, vt->norm_b, "vision_model.norm.bias", W);
    return jc_vision_rope(vt, (int)g);
}

/* preprocessor_config.json is optional; the spec's values stand where it is silent. */
static int read_preprocess(struct jc_model *m)
{
    static const float mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
    static const float std[3] = {0.26862954f, 0.26130258f, 0.27577711f};
    char *path = jc_path_join(m->dir, "preprocessor_config.json"), *buf;
    size_t len;
    int rc;

    m->pre.size = m->vdims.image_size;
    memcpy(m->pre.mean, mean, sizeof mean);
    memcpy(m->pre.std, std, sizeof std);
    if (!path)
        return JC_ENOMEM;
    rc = jc_read_file(path, 1u << 20, &buf, &len);
    if (rc == JC_EIO && access(path, F_OK) != 0) {
        free(path);
        return 0;
    }
    if (rc == 0) {
        rc = jc_preprocess_parse(&m->pre, buf, len, path);
        free(buf);
    }
    if (rc == 0 && m->pre.size != m->vdims.image_size)
        rc = jc_fail(JC_EFORMAT, "%s: size %d differs from vision_config.image_size %d", path,
                     m->pre.size, m->vdims.image_size);
    free(path);
    return rc;
}

static int read_logit_scale(struct jc_model *m)
{
    const struct jc_tensor *t = jc_st_find(&m->st, "logit_scale");
    const float *p;
    if (!t)
        return jc_fail(JC_ENOTFOUND, "%s: tensor 'logit_scale' is missing", m->st.path);
    int rc = jc_st_get(&m->st, "logit_scale", t->ndim, t->shape, &p);
    if (rc < 0)
        return rc;
    if (t->nelem != 1)
        return jc_fail(JC_ESHAPE, "%s: tensor 'logit_scale' has %lld elements, expected 1",
                       m->st.path, (long long)t->nelem);
    m->logit_scale = p[0];
    return 0;
}

static int open_model(struct jc_model *m, const char *dir, unsigned what)
{
    char *path, *buf;
    size_t len;
    int rc;

    if (!is_dir(dir))
        return jc_fail(JC_ENOTFOUND, "model directory '%s' does not exist", dir);
    if (!(m->dir = strdup(dir)))
        return jc_fail(JC_ENOMEM, "out of memory");
    if (what & JC_LOAD_TEXT)
        what |= JC_LOAD_TOKENIZER;

    if (!(path = jc_path_join(dir, "config.json")))
        return JC_ENOMEM;
    rc = jc_read_file(path, CONFIG_LIMIT, &buf, &len);
    if (rc == 0) {
        rc = jc_config_parse(&m->cfg, buf, len, path);
        free(buf);
    }
    free(path);
    if (rc < 0)
        return rc;

    if (what & JC_LOAD_TOKENIZER && (rc = jc_tokenizer_load(&m->tok, dir)) < 0)
        return rc;
    if (!(what & (JC_LOAD_TEXT | JC_LOAD_VISION | JC_LOAD_INFO)))
        goto done;

    if (!(path = jc_path_join(dir, "model.safetensors")))
        return JC_ENOMEM;
    rc = jc_st_open(&m->st, path);
    free(path);
    m->have_st = true;
    if (rc < 0)
        return rc;
    bool has_text = jc_st_find(&m->st, "text_model.transformer.embeddings.word_embeddings.weight");
    bool has_vision = jc_st_find(&m->st, "vision_model.cls_token");
    if ((what & JC_LOAD_TEXT || has_text) && (rc = text_dims(m)) < 0)
        return rc;
    if ((what & JC_LOAD_VISION || has_vision) && (rc = vision_dims(m)) < 0)
        return rc;
    if (what & (JC_LOAD_TEXT | JC_LOAD_VISION) && m->bf16) {
        size_t most = (size_t)(4 * m->tdims.layers + 7 * m->vdims.layers + 1);
        if (!(m->packed = jc_calloc(most, sizeof *m->packed, "the bf16 weights")))
            return JC_ENOMEM;
    }
    if (what & JC_LOAD_TEXT && (rc = load_text(m)) < 0)
        return rc;
    if (what & JC_LOAD_VISION && ((rc = load_vision(m)) < 0 || (rc = read_preprocess(m)) < 0))
        return rc;
    if ((rc = read_logit_scale(m)) < 0)
        return rc;
    /* with the weights mapped: what is left must hold OpenBLAS's buffers */
    if (what & (JC_LOAD_TEXT | JC_LOAD_VISION) && (rc = jc_blas_reserve()) < 0)
        return rc;
done:
    m->loaded = what;
    return 0;
}

int jc_model_open(struct jc_model **out, const char *dir, unsigned what)
{
    struct jc_model *m = jc_calloc(1, sizeof *m, "the model");
    int rc;

    *out = NULL;
    if (!m)
        return JC_ENOMEM;
    m->st.fd = -1;
    m->bf16 = jc_runtime()->bf16;
    rc = open_model(m, dir, what);
    if (rc < 0) {
        jc_model_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

/*
 * A workspace of HUGE_FROM bytes or more is asked to be backed by 2 MiB pages (where the
 * kernel's transparent huge pages are on "madvise", a common default, nothing else gets them).
 * A GEMM walks the rows of x and C, 3 to 9 KiB apart, a page or more each: single-threaded
 * SGEMMs of the vision layers' shapes ran 2.0-2.4% faster with huge pages under C and x
 * (best of 12, interleaved).
 */
#define HUGE_PAGE ((size_t)2 << 20)
#define HUGE_FROM ((size_t)8 << 20)

int jc_workspace_carve(struct jc_workspace *ws, const size_t *bytes, float **out, size_t n,
                       const char *what)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        size_t b = (bytes[i] + 63) & ~(size_t)63;
        if (b < bytes[i] || total + b < total)
            return jc_fail(JC_ENOMEM, "out of memory: %s would need more than SIZE_MAX bytes",
                           what);
        total += b;
    }
    if (total > ws->cap) {
        bool huge = total >= HUGE_FROM && total <= SIZE_MAX - HUGE_PAGE;
        size_t size = huge ? (total + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1) : total;
        free(ws->mem);
        ws->cap = 0;
        if (!(ws->mem = aligned_alloc(huge ? HUGE_PAGE : 64, size)))
            return jc_fail(JC_ENOMEM, "out of memory allocating %zu bytes for %s", size, what);
#ifdef MADV_HUGEPAGE
        if (huge)
            madvise(ws->mem, size, MADV_HUGEPAGE); /* advice: no error to report */
#endif
        ws->cap = size;
    }
    char *p = ws->mem;
    for (size_t i = 0; i < n; i++) {
        out[i] = (float *)p;
        p += (bytes[i] + 63) & ~(size_t)63;
    }
    return 0;
}

void jc_model_free(struct jc_model *m)
{
    if (!m)
        return;
    free(m->ws.mem);
    if (m->have_st)
        jc_st_release(&m->st);
    jc_tokenizer_free(m->tok);
    for (size_t i = 0; i < m->n_packed; i++)
        free(m->packed[i]);
    free(m->packed);
    free(m->text.layers);
    free(m->text.slopes);
    free(m->vision.blocks);
    free(m->vision.rope_c);
    free(m->vision.rope_s);
    free(m->dir);
    free(m);
}

const struct jc_tokenizer *jc_model_tokenizer(const struct jc_model *m)
{
    return m->tok;
}

int jc_model_dim(const struct jc_model *m)
{
    if (m->tdims.dim)
        return m->tdims.dim;
    return m->vdims.width ? m->vdims.width : m->cfg.embed_dim;
}

/* Bytes of a linear layer's matrix [n, k] in memory in the model's precision. */
static int64_t matrix_bytes(const struct jc_model *m, int64_t n, int64_t k)
{
    return m->bf16 ? (int64_t)jc_bf16_packed_elems((int)n, (int)k) * 2 : n * k * 4;
}

int jc_model_info(const struct jc_model *m, struct jc_model_info *info)
{
    memset(info, 0, sizeof *info);
    info->dir = m->dir;
    if (!m->have_st)
        return jc_fail(JC_EINVAL, "model '%s' was opened without its weights", m->dir);
    info->embed_dim = jc_model_dim(m);
    info->logit_scale = m->logit_scale;
    info->tensors = (int)m->st.n;
    info->has_text = m->tdims.dim > 0;
    info->has_vision = m->vdims.width > 0;
    info->text = m->tdims;
    info->vision = m->vdims;
    info->dtype = m->st.n ? m->st.t[0].dtype_name : "none";
    for (size_t i = 0; i < m->st.n; i++) {
        info->params += m->st.t[i].nelem;
        if (strcmp(m->st.t[i].dtype_name, info->dtype))
            info->dtype = "mixed";
    }
    info->precision = m->bf16 ? "bf16" : "fp32";
    const struct jc_text_dims *t = &m->tdims;
    const struct jc_vision_dims *v = &m->vdims;
    if (info->has_text)
        info->matrix_bytes +=
            t->layers * (matrix_bytes(m, 3 * t->dim, t->dim) + matrix_bytes(m, t->dim, t->dim) +
                         matrix_bytes(m, 2 * t->intermediate, t->dim) +
                         matrix_bytes(m, t->dim, t->intermediate));
    if (info->has_vision)
        info->matrix_bytes += matrix_bytes(m, v->width, 3 * v->patch_size * v->patch_size) +
                              v->layers * (4 * matrix_bytes(m, v->width, v->width) +
                                           2 * matrix_bytes(m, v->mlp_hidden, v->width) +
                                           matrix_bytes(m, v->width, v->mlp_hidden));
    return 0;
}

int jc_model_preprocess(const struct jc_model *m, int *size, float mean[3], float std[3])
{
    if (!(m->loaded & JC_LOAD_VISION))
        return jc_fail(JC_EINVAL, "model '%s' was opened without its vision tower", m->dir);
    *size = m->pre.size;
    memcpy(mean, m->pre.mean, sizeof m->pre.mean);
    memcpy(std, m->pre.std, sizeof m->pre.std);
    return 0;
}

float jc_model_logit_scale(const struct jc_model *m)
{
    return m->logit_scale;
}
