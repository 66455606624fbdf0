#include "model.h"

#include <cjson/cJSON.h>
#include <float.h>
#include <math.h>
#include <string.h>

/*
 * An optional integer key: absent or null leaves *out at `dflt`; anything but a whole
 * number in [lo, hi] is an error naming the key.
 */
static int get_int(const cJSON *obj, const char *key, const char *where, const char *path, long lo,
                   long hi, int dflt, int *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    *out = dflt;
    if (!v || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < lo ||
        v->valuedouble > hi)
        return jc_fail(JC_EFORMAT, "%s: %s%s must be a whole number from %ld to %ld", path, where,
                       key, lo, hi);
    *out = (int)v->valuedouble;
    return 0;
}

static int get_double(const cJSON *obj, const char *key, const char *where, const char *path,
                      double lo, double hi, double dflt, double *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    *out = dflt;
    if (!v || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= lo && v->valuedouble <= hi))
        return jc_fail(JC_EFORMAT, "%s: %s%s must be a number from %g to %g", path, where, key, lo,
                       hi);
    *out = v->valuedouble;
    return 0;
}

int jc_config_parse(struct jc_config *c, const char *json, size_t len, const char *path)
{
    cJSON *root;
    const cJSON *tc, *kw, *vc;
    int rc = 0;

    memset(c, 0, sizeof *c);
    if (jc_json_parse(&root, json, len, NULL, path) == JC_ENOMEM)
        return JC_ENOMEM;
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return jc_fail(JC_EFORMAT, "%s: not a JSON object", path);
    }
    tc = cJSON_GetObjectItemCaseSensitive(root, "text_config");
    vc = cJSON_GetObjectItemCaseSensitive(root, "vision_config");
    if (tc && !cJSON_IsObject(tc)) {
        rc = jc_fail(JC_EFORMAT, "%s: text_config must be an object", path);
        goto out;
    }
    if (vc && !cJSON_IsObject(vc)) {
        rc = jc_fail(JC_EFORMAT, "%s: vision_config must be an object", path);
        goto out;
    }
    kw = tc ? cJSON_GetObjectItemCaseSensitive(tc, "hf_model_config_kwargs") : NULL;
    if (kw && !cJSON_IsNull(kw) && !cJSON_IsObject(kw)) {
        rc = jc_fail(JC_EFORMAT, "%s: text_config.hf_model_config_kwargs must be an object", path);
        goto out;
    }
    const char *k = "text_config.hf_model_config_kwargs.";
    if ((rc = get_int(kw, "hidden_size", k, path, 1, 1 << 16, -1, &c->t_hidden)) < 0 ||
        (rc = get_int(kw, "num_hidden_layers", k, path, 1, 1024, -1, &c->t_layers)) < 0 ||
        (rc = get_int(kw, "num_attention_heads", k, path, 1, 1024, -1, &c->t_heads)) < 0 ||
        (rc = get_int(kw, "intermediate_size", k, path, 1, 1 << 20, -1, &c->t_intermediate)) < 0 ||
        (rc = get_int(kw, "vocab_size", k, path, 1, 1 << 24, -1, &c->t_vocab)) < 0 ||
        (rc = get_double(kw, "layer_norm_eps", k, path, 0, 1, -1, &c->t_eps)) < 0 ||
        (rc = get_int(tc, "embed_dim", "text_config.", path, 1, 1 << 16, -1, &c->embed_dim)) < 0)
        goto out;
    if (!vc)
        goto out;
    c->has_vision = true;
    k = "vision_config.";
    if ((rc = get_int(vc, "width", k, path, 1, 1 << 16, 768, &c->v_width)) < 0 ||
        (rc = get_int(vc, "layers", k, path, 1, 1024, 12, &c->v_layers)) < 0 ||
        (rc = get_int(vc, "head_width", k, path, 2, 1 << 16, 64, &c->v_head_width)) < 0 ||
        (rc = get_int(vc, "image_size", k, path, 1, 1 << 14, 224, &c->v_image_size)) < 0 ||
        (rc = get_int(vc, "patch_size", k, path, 1, 1 << 14, 16, &c->v_patch_size)) < 0 ||
        (rc = get_double(vc, "mlp_ratio", k, path, 0, 64, 2.6667, &c->v_mlp_ratio)) < 0)
        goto out;
    if (c->v_width % c->v_head_width) {
        rc = jc_fail(JC_EFORMAT, "%s: vision_config.width %d is not a multiple of head_width %d",
                     path, c->v_width, c->v_head_width);
        goto out;
    }
    if ((int)(c->v_width * c->v_mlp_ratio) < 1) {
        rc = jc_fail(JC_EFORMAT, "%s: vision_config.mlp_ratio %g gives no MLP", path,
                     c->v_mlp_ratio);
        goto out;
    }
    if (c->v_image_size % c->v_patch_size) {
        rc = jc_fail(JC_EFORMAT,
                     "%s: vision_config.image_size %d is not a multiple of patch_size %d", path,
                     c->v_image_size, c->v_patch_size);
        goto out;
    }
out:
    cJSON_Delete(root);
    return rc;
}

void jc_alibi_slopes(float *out, int heads)
{
    int p = 1;
    while (p * 2 <= heads)
        p *= 2;
    for (int k = 0; k < p; k++)
        out[k] = (float)pow(2.0, -8.0 * (k + 1) / p);
    for (int k = 0, i = p; i < heads; k += 2, i++)
        out[i] = (float)pow(2.0, -8.0 * (k + 1) / (2 * p));
}

int jc_preprocess_parse(struct jc_preprocess *p, const char *json, size_t len, const char *path)
{
    cJSON *root;
    const char *keys[2] = {"mean", "std"};
    float *dst[2] = {p->mean, p->std};
    int rc = 0;

    if (jc_json_parse(&root, json, len, NULL, path) == JC_ENOMEM)
        return JC_ENOMEM;
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return jc_fail(JC_EFORMAT, "%s: not a JSON object", path);
    }
    /* Hugging Face writes the size as a number or as {"shortest_edge": n} */
    const cJSON *size = cJSON_GetObjectItemCaseSensitive(root, "size");
    const char *key = "size";
    if (cJSON_IsObject(size)) {
        size = cJSON_GetObjectItemCaseSensitive(size, "shortest_edge");
        key = "size.shortest_edge";
    }
    if (size && !cJSON_IsNull(size)) {
        double d = cJSON_IsNumber(size) ? size->valuedouble : -1;
        if (d != floor(d) || d < 1 || d > 16384) {
            rc = jc_fail(JC_EFORMAT, "%s: %s must be a whole number from 1 to 16384", path, key);
            goto out;
        }
        p->size = (int)d;
    }
    for (int k = 0; k < 2; k++) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(root, keys[k]);
        if (!a)
            continue;
        if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != 3) {
            rc = jc_fail(JC_EFORMAT, "%s: %s must be an array of 3 numbers", path, keys[k]);
            goto out;
        }
        for (int c = 0; c < 3; c++) {
            const cJSON *e = cJSON_GetArrayItem(a, c);
            /* checked as the float the pixels are normalised with: 1e-300 would be 0 */
            if (!cJSON_IsNumber(e) || !(fabs(e->valuedouble) <= FLT_MAX) ||
                (k == 1 && !((float)e->valuedouble > 0))) {
                rc = jc_fail(JC_EFORMAT, "%s: %s must be an array of 3 numbers%s", path, keys[k],
                             k == 1 ? " above 0" : "");
                goto out;
            }
            dst[k][c] = (float)e->valuedouble;
        }
    }
out:
    cJSON_Delete(root);
    return rc;
}
