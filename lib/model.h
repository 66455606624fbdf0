/* The model object and the towers' weights. Internal. */
#ifndef JCLIP_MODEL_H
#define JCLIP_MODEL_H

#include "internal.h"
#include "safetensors.h"

struct jc_config {
    /* text_config.hf_model_config_kwargs; -1 where absent (then derived from tensors) */
    int t_hidden, t_layers, t_heads, t_intermediate, t_vocab;
    double t_eps; /* < 0 where absent */
    int embed_dim;
    /* vision_config */
    bool has_vision;
    int v_width, v_layers, v_head_width, v_image_size, v_patch_size;
    double v_mlp_ratio;
};

struct jc_text_layer {
    const float *wqkv, *bqkv;   /* [3d, d], [3d] */
    const float *wout, *bout;   /* [d, d], [d] */
    const float *ln1_w, *ln1_b; /* [d] */
    const float *wg;            /* [2i, d]: GELU half first, then the linear half */
    const float *wo, *bo;       /* [d, i], [d] */
    const float *ln2_w, *ln2_b; /* [d] */
    /* bf16 models: the four matrices packed (lib/bf16.c), else NULL */
    const uint16_t *hqkv, *hout, *hg, *ho;
};

struct jc_text_tower {
    struct jc_text_dims dims;
    const float *word_emb;            /* [vocab, d] */
    const float *type_emb;            /* [2, d] */
    const float *emb_ln_w, *emb_ln_b; /* [d] */
    struct jc_text_layer *layers;     /* [layers] */
    float *slopes;                    /* [heads] ALiBi */
};

struct jc_vision_block {
    const float *ln1_w, *ln1_b;           /* [W] */
    const float *wq, *wk, *wv;            /* [W, W] each */
    const float *q_bias, *v_bias;         /* [W]; k has no bias */
    const float *inner_ln_w, *inner_ln_b; /* [W] */
    const float *wproj, *bproj;           /* [W, W], [W] */
    const float *ln2_w, *ln2_b;           /* [W] */
    const float *w1, *b1, *w2, *b2;       /* [Hm, W], [Hm] */
    const float *ffn_ln_w, *ffn_ln_b;     /* [Hm] */
    const float *w3, *b3;                 /* [W, Hm], [W] */
    /* bf16 models: the seven matrices packed (lib/bf16.c), else NULL */
    const uint16_t *hq, *hk, *hv, *hproj, *h1, *h2, *h3;
};

struct jc_vision_tower {
    struct jc_vision_dims dims;
    const float *cls;               /* [W] */
    const float *pos;               /* [1 + g*g, W] */
    const float *patch_w, *patch_b; /* [W, 3*P*P], [W] */
    const uint16_t *patch_h;        /* bf16 models: patch_w packed, else NULL */
    struct jc_vision_block *blocks; /* [layers] */
    const float *norm_w, *norm_b;   /* [W] */
    float *rope_c, *rope_s;         /* [g*g, head_dim]: the rope kernel's tables */
};

/* preprocessor_config.json, with the jina-clip-v1 values where it is silent. */
struct jc_preprocess {
    int size;
    float mean[3], std[3];
};

/*
 * Activation memory kept between calls, so a run of batches takes its pages from the
 * kernel once rather than once a batch; it grows to the largest call and is freed with
 * the model. Buffers are carved from it 64-byte aligned.
 */
struct jc_workspace {
    void *mem;
    size_t cap;
};

/* Room for `n` buffers of bytes[i]; sets out[i] to each. JC_ENOMEM (reported) if not. */
int jc_workspace_carve(struct jc_workspace *ws, const size_t *bytes, float **out, size_t n,
                       const char *what);

struct jc_model {
    char *dir;
    struct jc_workspace ws; /* the towers' activations */
    unsigned loaded;
    struct jc_config cfg;
    struct jc_st st;
    bool have_st;
    struct jc_tokenizer *tok;
    float logit_scale;
    struct jc_text_dims tdims;
    struct jc_vision_dims vdims;
    struct jc_text_tower text;
    struct jc_vision_tower vision;
    struct jc_preprocess pre;
    bool bf16;         /* linear layers in bf16 (jc_set_precision when opened) */
    uint16_t **packed; /* the packed matrices, owned */
    size_t n_packed;
};

/* Fills the RoPE tables of the vision tower (spec section 4). */
int jc_vision_rope(struct jc_vision_tower *v, int grid);

/* Parses config.json text. `path` is used in errors. */
int jc_config_parse(struct jc_config *c, const char *json, size_t len, const char *path);

/* Parses preprocessor_config.json text into *p (fields it lacks are left as they are). */
int jc_preprocess_parse(struct jc_preprocess *p, const char *json, size_t len, const char *path);

/* ALiBi slopes of the reference get_alibi_slopes(heads), rounded to float. */
void jc_alibi_slopes(float *out, int heads);

#endif
