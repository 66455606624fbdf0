/*
 * config.json and preprocessor_config.json: jc_config_parse and jc_preprocess_parse on the
 * same bytes. What parses must be in the ranges the towers rely on.
 */
#include "fuzz.h"

#include "model.h"

#include <float.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *json = (const char *)data;
    struct jc_config c;
    /* the defaults jc_model_open starts from */
    struct jc_preprocess p = {
        224, {0.48145466f, 0.4578275f, 0.40821073f}, {0.26862954f, 0.26130258f, 0.27577711f}};

    int rc = jc_config_parse(&c, json, size, "config.json");
    FUZZ_CHECK(rc == 0 || rc == JC_EFORMAT || rc == JC_ENOMEM);
    if (rc == 0) {
        FUZZ_CHECK(c.t_hidden == -1 || c.t_hidden >= 1);
        FUZZ_CHECK(c.t_layers == -1 || c.t_layers >= 1);
        FUZZ_CHECK(c.t_heads == -1 || c.t_heads >= 1);
        FUZZ_CHECK(c.t_eps < 0 || c.t_eps <= 1);
        if (c.has_vision) {
            FUZZ_CHECK(c.v_width >= 1 && c.v_head_width >= 2 && c.v_width % c.v_head_width == 0);
            FUZZ_CHECK(c.v_patch_size >= 1 && c.v_image_size % c.v_patch_size == 0);
            FUZZ_CHECK(c.v_mlp_ratio >= 0 && (int)(c.v_width * c.v_mlp_ratio) >= 1);
        }
    }

    rc = jc_preprocess_parse(&p, json, size, "preprocessor_config.json");
    FUZZ_CHECK(rc == 0 || rc == JC_EFORMAT || rc == JC_ENOMEM);
    FUZZ_CHECK(p.size >= 1 && p.size <= 16384);
    /* what the preprocessing divides by and subtracts, as floats */
    for (int k = 0; k < 3; k++)
        FUZZ_CHECK(p.std[k] > 0 && p.std[k] <= FLT_MAX && p.mean[k] >= -FLT_MAX &&
                   p.mean[k] <= FLT_MAX);
    return 0;
}
