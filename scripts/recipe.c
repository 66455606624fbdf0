#include "recipe.h"

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const struct recipe_config recipe_configs[] = {
    {"tiny", 128, 2, 256, 2, 30528, 2, 1e-12, 128, 64, 2, 341, 1e-6, 224, 16, 14, 2.6667},
    {"tiny12", 192, 12, 384, 2, 30528, 2, 1e-12, 192, 16, 2, 512, 1e-6, 224, 16, 14, 2.6667},
    {"full", 768, 12, 3072, 12, 30528, 2, 1e-12, 768, 64, 12, 2048, 1e-6, 224, 16, 14, 2.6667},
    {NULL, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
};

const struct recipe_config *recipe_config_find(const char *name)
{
    for (const struct recipe_config *c = recipe_configs; c->name; c++)
        if (strcmp(c->name, name) == 0)
            return c;
    return NULL;
}

/* Appends one tensor; `n` counts even past `max` so the caller learns the size it needs. */
static void add(struct recipe_tensor *out, int max, int *n, int ndim, const int64_t *shape,
                const char *fmt, ...)
{
    if (*n < max) {
        struct recipe_tensor *t = &out[*n];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(t->name, sizeof t->name, fmt, ap);
        va_end(ap);
        t->ndim = ndim;
        memset(t->shape, 0, sizeof t->shape);
        for (int d = 0; d < ndim; d++)
            t->shape[d] = shape[d];
    }
    (*n)++;
}

#define SHAPE(...) (sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), ((int64_t[]){__VA_ARGS__})

int recipe_tensors(const struct recipe_config *cfg, struct recipe_tensor *out, int max)
{
    const int64_t d = cfg->text_dim, ffn = cfg->text_intermediate;
    const int64_t w = cfg->vision_width, hm = cfg->vision_mlp_hidden;
    const int64_t grid = cfg->image_size / cfg->patch_size, p = cfg->patch_size;
    const char *tp = "text_model.transformer.";
    const char *vp = "vision_model.";
    int n = 0;

    add(out, max, &n, 0, NULL, "logit_scale");

    add(out, max, &n, SHAPE(cfg->vocab, d), "%sembeddings.word_embeddings.weight", tp);
    add(out, max, &n, SHAPE(cfg->type_vocab, d), "%sembeddings.token_type_embeddings.weight", tp);
    add(out, max, &n, SHAPE(d), "%semb_ln.weight", tp);
    add(out, max, &n, SHAPE(d), "%semb_ln.bias", tp);
    for (int i = 0; i < cfg->text_layers; i++) {
        add(out, max, &n, SHAPE(3 * d, d), "%sencoder.layers.%d.mixer.Wqkv.weight", tp, i);
        add(out, max, &n, SHAPE(3 * d), "%sencoder.layers.%d.mixer.Wqkv.bias", tp, i);
        add(out, max, &n, SHAPE(d, d), "%sencoder.layers.%d.mixer.out_proj.weight", tp, i);
        add(out, max, &n, SHAPE(d), "%sencoder.layers.%d.mixer.out_proj.bias", tp, i);
        add(out, max, &n, SHAPE(d), "%sencoder.layers.%d.norm1.weight", tp, i);
        add(out, max, &n, SHAPE(d), "%sencoder.layers.%d.norm1.bias", tp, i);
        add(out, max, &n, SHAPE(2 * ffn, d), "%sencoder.layers.%d.mlp.gated_layers.weight", tp, i);
        add(out, max, &n, SHAPE(d, ffn), "%sencoder.layers.%d.mlp.wo.weight", tp, i);
        add(out, max, &n, SHAPE(d), "%sencoder.layers.%d.mlp.wo.bias", tp, i);
        add(out, max, &n, SHAPE(d), "%sencoder.layers.%d.norm2.weight", tp, i);
        add(out, max, &n, SHAPE(d), "%sencoder.layers.%d.norm2.bias", tp, i);
    }

    add(out, max, &n, SHAPE(1, 1, w), "%scls_token", vp);
    add(out, max, &n, SHAPE(1, grid * grid + 1, w), "%spos_embed", vp);
    add(out, max, &n, SHAPE(w, 3, p, p), "%spatch_embed.proj.weight", vp);
    add(out, max, &n, SHAPE(w), "%spatch_embed.proj.bias", vp);
    for (int i = 0; i < cfg->vision_layers; i++) {
        add(out, max, &n, SHAPE(w), "%sblocks.%d.norm1.weight", vp, i);
        add(out, max, &n, SHAPE(w), "%sblocks.%d.norm1.bias", vp, i);
        add(out, max, &n, SHAPE(w, w), "%sblocks.%d.attn.q_proj.weight", vp, i);
        add(out, max, &n, SHAPE(w, w), "%sblocks.%d.attn.k_proj.weight", vp, i);
        add(out, max, &n, SHAPE(w, w), "%sblocks.%d.attn.v_proj.weight", vp, i);
        add(out, max, &n, SHAPE(w), "%sblocks.%d.attn.q_bias", vp, i);
        add(out, max, &n, SHAPE(w), "%sblocks.%d.attn.v_bias", vp, i);
        add(out, max, &n, SHAPE(w), "%sblocks.%d.attn.inner_attn_ln.weight", vp, i);
        add(out, max, &n, SHAPE(w), "%sblocks.%d.attn.inner_attn_ln.bias", vp, i);
        add(out, max, &n, SHAPE(w, w), "%sblocks.%d.attn.proj.weight", vp, i);
        add(out, max, &n, SHAPE(w), "%sblocks.%d.attn.proj.bias", vp, i);
        add(out, max, &n, SHAPE(w), "%sblocks.%d.norm2.weight", vp, i);
        add(out, max, &n, SHAPE(w), "%sblocks.%d.norm2.bias", vp, i);
        add(out, max, &n, SHAPE(hm, w), "%sblocks.%d.mlp.w1.weight", vp, i);
        add(out, max, &n, SHAPE(hm), "%sblocks.%d.mlp.w1.bias", vp, i);
        add(out, max, &n, SHAPE(hm, w), "%sblocks.%d.mlp.w2.weight", vp, i);
        add(out, max, &n, SHAPE(hm), "%sblocks.%d.mlp.w2.bias", vp, i);
        add(out, max, &n, SHAPE(hm), "%sblocks.%d.mlp.ffn_ln.weight", vp, i);
        add(out, max, &n, SHAPE(hm), "%sblocks.%d.mlp.ffn_ln.bias", vp, i);
        add(out, max, &n, SHAPE(w, hm), "%sblocks.%d.mlp.w3.weight", vp, i);
        add(out, max, &n, SHAPE(w), "%sblocks.%d.mlp.w3.bias", vp, i);
    }
    add(out, max, &n, SHAPE(w), "%snorm.weight", vp);
    add(out, max, &n, SHAPE(w), "%snorm.bias", vp);
    return n;
}

static int by_name(const void *a, const void *b)
{
    const struct recipe_tensor *x = a, *y = b;
    return strcmp(x->name, y->name);
}

void recipe_sort(struct recipe_tensor *t, int n)
{
    qsort(t, (size_t)n, sizeof *t, by_name);
}

int64_t recipe_numel(const int64_t *shape, int ndim)
{
    int64_t n = 1;
    for (int d = 0; d < ndim; d++)
        n *= shape[d];
    return n;
}

/* A growing string; `failed` sticks so callers check once at the end. */
struct sbuf {
    char *p;
    size_t len, cap;
    bool failed;
};

static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (b->failed)
        return;
    va_start(ap, fmt);
    n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = true;
        return;
    }
    if ((size_t)n >= b->cap - b->len) {
        size_t cap = (b->cap + (size_t)n + 1) * 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->failed = true;
            return;
        }
        b->p = p;
        b->cap = cap;
        va_start(ap, fmt);
        vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
}

char *recipe_header(const struct recipe_config *cfg, size_t *len, uint64_t *data_len)
{
    int n = recipe_tensors(cfg, NULL, 0);
    struct recipe_tensor *t = malloc((size_t)n * sizeof *t);
    struct sbuf b = {malloc(4096), 0, 4096, false};
    uint64_t off = 0;

    if (!t || !b.p) {
        free(t);
        free(b.p);
        return NULL;
    }
    b.p[0] = '\0';
    recipe_tensors(cfg, t, n);
    recipe_sort(t, n);
    sb_printf(&b, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (int i = 0; i < n; i++) {
        uint64_t bytes = (uint64_t)recipe_numel(t[i].shape, t[i].ndim) * 4;
        sb_printf(&b, ",\"%s\":{\"dtype\":\"F32\",\"shape\":[", t[i].name);
        for (int d = 0; d < t[i].ndim; d++)
            sb_printf(&b, d ? ",%lld" : "%lld", (long long)t[i].shape[d]);
        sb_printf(&b, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
                  (unsigned long long)(off + bytes));
        off += bytes;
    }
    sb_printf(&b, "}");
    while (!b.failed && b.len % 8)
        sb_printf(&b, " ");
    free(t);
    if (b.failed) {
        free(b.p);
        return NULL;
    }
    *len = b.len;
    *data_len = off;
    return b.p;
}

uint64_t recipe_name_hash(const char *name)
{
    uint64_t h = 0xcbf29ce484222325u;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        h ^= *p;
        h *= 0x100000001b3u;
    }
    return h;
}

uint64_t recipe_mix(uint64_t h, uint64_t i)
{
    uint64_t z = h + (i + 1) * 0x9E3779B97F4A7C15u;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}

uint32_t recipe_k(uint64_t h, uint64_t i)
{
    return (uint32_t)(recipe_mix(h, i) >> 40);
}

float recipe_r(uint32_t k)
{
    return (float)k / 16777216.0f * 2.0f - 1.0f;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

static bool ends_with_any(const char *s, const char *const *suffixes)
{
    for (; *suffixes; suffixes++)
        if (ends_with(s, *suffixes))
            return true;
    return false;
}

int recipe_scale(const char *name, const int64_t *shape, int ndim, float *s, float *c)
{
    static const char *const layernorm[] = {"emb_ln.weight",
                                            "norm1.weight",
                                            "norm2.weight",
                                            "norm.weight",
                                            "inner_attn_ln.weight",
                                            "ffn_ln.weight",
                                            NULL};
    static const char *const bias[] = {".bias", "q_bias", "v_bias", NULL};
    static const char *const embedding[] = {"word_embeddings.weight",
                                            "token_type_embeddings.weight", NULL};
    static const char *const vision_embed[] = {"cls_token", "pos_embed", NULL};
    static const char *const times4[] = {"mixer.Wqkv.weight", "attn.q_proj.weight",
                                         "attn.k_proj.weight", NULL};

    if (strcmp(name, "logit_scale") == 0) {
        *s = 0.0f;
        *c = (float)4.605170185988091; /* ln 100 */
    } else if (ends_with_any(name, layernorm)) {
        *s = 1.0f / 8;
        *c = 1.0f;
    } else if (ends_with_any(name, bias)) {
        *s = 1.0f / 32;
        *c = 0.0f;
    } else if (ends_with_any(name, embedding)) {
        *s = 1.0f / 2;
        *c = 0.0f;
    } else if (ends_with_any(name, vision_embed)) {
        *s = 1.0f / 32;
        *c = 0.0f;
    } else if (ends_with(name, ".weight")) {
        int64_t fan_in = recipe_numel(shape + 1, ndim > 1 ? ndim - 1 : 0);
        int e = 0;
        /* integer search, so no sqrt or log2 rounding can move a power-of-4 boundary */
        while (((int64_t)1 << (2 * e)) < fan_in)
            e++;
        *s = ldexpf(1.0f, -e);
        if (ends_with_any(name, times4))
            *s *= 4;
        *c = 0.0f;
    } else {
        return -1;
    }
    return 0;
}

float recipe_value(const char *name, const int64_t *shape, int ndim, uint64_t i)
{
    float v;
    if (recipe_fill(name, shape, ndim, i, 1, &v) < 0)
        return NAN;
    return v;
}

int recipe_fill(const char *name, const int64_t *shape, int ndim, uint64_t start, size_t n,
                float *out)
{
    uint64_t h = recipe_name_hash(name);
    float s, c;

    if (recipe_scale(name, shape, ndim, &s, &c) < 0)
        return -1;
    /*
     * r * s is exact (s is a power of two), so a contracted fma(r, s, c) and a separate
     * multiply and add round the same way: one correctly rounded float add.
     */
    for (size_t j = 0; j < n; j++)
        out[j] = recipe_r(recipe_k(h, start + j)) * s + c;
    return 0;
}
