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
};

struct jc_text_tower {
    struct jc_text_dims dims;
    const float *word_emb;            /* [vocab, d] */
    const float *type_emb;            /* [2, d] */
    const float *emb_ln_w, *emb_ln_b; /* [d] */
    struct jc_text_layer *layers;     /* [layers] */
    float *slopes;                    /* [heads] ALiBi */
};

struct jc_model {
    char *dir;
    unsigned loaded;
    struct jc_config cfg;
    struct jc_st st;
    bool have_st;
    struct jc_tokenizer *tok;
    float logit_scale;
    struct jc_text_dims tdims;
    struct jc_vision_dims vdims;
    struct jc_text_tower text;
};

/* Parses config.json text. `path` is used in errors. */
int jc_config_parse(struct jc_config *c, const char *json, size_t len, const char *path);

/* ALiBi slopes of the reference get_alibi_slopes(heads), rounded to float. */
void jc_alibi_slopes(float *out, int heads);

#endif
