/*
 * The test-weight recipe (scripts/recipe.c) against the worked values of
 * tests/golden/RECIPE.md, and the generated tests/models/<cfg>/model.safetensors against
 * tests/golden/<cfg>/weights_check.json.
 */
#include "testutil.h"

#include "recipe.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_CFGS 8
#define MAX_BAD  10 /* mismatches printed before giving up on the details */

static uint32_t bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

#define assert_float_bits(got, want, what)                                                         \
    do {                                                                                           \
        float g_ = (got), w_ = (want);                                                             \
        if (bits(g_) != bits(w_))                                                                  \
            fail_msg("%s: got %a, want %a", what, (double)g_, (double)w_);                         \
    } while (0)

/* ---- the recipe itself ------------------------------------------------------------------ */

struct worked {
    const char *name;
    int ndim;
    int64_t shape[RECIPE_MAX_NDIM];
    uint64_t i, h;
    uint32_t k;
    float r, s, c, value;
};

/* RECIPE §5, row by row. */
/* clang-format off: one row per line of the recipe's table */
static const struct worked worked[] = {
    {"text_model.transformer.emb_ln.weight",
     1,
     {128},
     0,
     0xfc5290b7db3e6ba4u,
     14797194,
     0x1.872628p-1f,
     1.0f / 8,
     1.0f,
     0x1.187262p+0f},
    {"text_model.transformer.emb_ln.weight",
     1,
     {768},
     1,
     0xfc5290b7db3e6ba4u,
     3177868,
     -0x1.3e09dp-1f,
     1.0f / 8,
     1.0f,
     0x1.d83ec6p-1f},
    {"vision_model.blocks.0.attn.q_proj.weight",
     2,
     {768, 768},
     0,
     0xdecc55fd64883d9du,
     14847985,
     0x1.8a3fc4p-1f,
     1.0f / 8,
     0.0f,
     0x1.8a3fc4p-4f},
    {"vision_model.blocks.0.attn.q_proj.weight",
     2,
     {768, 768},
     1,
     0xdecc55fd64883d9du,
     4485177,
     -0x1.dc7e38p-2f,
     1.0f / 8,
     0.0f,
     -0x1.dc7e38p-5f},
    {"vision_model.blocks.0.attn.q_proj.weight",
     2,
     {128, 128},
     0,
     0xdecc55fd64883d9du,
     14847985,
     0x1.8a3fc4p-1f,
     1.0f / 4,
     0.0f,
     0x1.8a3fc4p-3f},
    {"text_model.transformer.encoder.layers.0.mlp.wo.weight",
     2,
     {768, 3072},
     0,
     0x03c5655801794068u,
     205765,
     -0x1.f370ecp-1f,
     1.0f / 64,
     0.0f,
     -0x1.f370ecp-7f},
    {"text_model.transformer.encoder.layers.0.mlp.wo.weight",
     2,
     {768, 3072},
     1,
     0x03c5655801794068u,
     9163954,
     0x1.7a964p-4f,
     1.0f / 64,
     0.0f,
     0x1.7a964p-10f},
    {"text_model.transformer.encoder.layers.1.mixer.Wqkv.bias",
     1,
     {384},
     0,
     0x9ec41e783f19e435u,
     813554,
     -0x1.ce5838p-1f,
     1.0f / 32,
     0.0f,
     -0x1.ce5838p-6f},
};
/* clang-format on */

static void test_worked_values(void **state)
{
    (void)state;
    for (size_t n = 0; n < sizeof worked / sizeof *worked; n++) {
        const struct worked *w = &worked[n];
        uint64_t h = recipe_name_hash(w->name);
        float s, c;

        if (h != w->h)
            fail_msg("%s: h = %016llx, want %016llx", w->name, (unsigned long long)h,
                     (unsigned long long)w->h);
        assert_int_equal(recipe_k(h, w->i), w->k);
        assert_float_bits(recipe_r(w->k), w->r, w->name);
        assert_int_equal(recipe_scale(w->name, w->shape, w->ndim, &s, &c), 0);
        assert_float_bits(s, w->s, w->name);
        assert_float_bits(c, w->c, w->name);
        assert_float_bits(recipe_value(w->name, w->shape, w->ndim, w->i), w->value, w->name);
    }
    assert_true(recipe_mix(0xfc5290b7db3e6ba4u, 0) == 0xe1c98a1b62dc0993u);
}

static void test_logit_scale(void **state)
{
    float s, c;
    (void)state;
    assert_int_equal(recipe_scale("logit_scale", NULL, 0, &s, &c), 0);
    assert_float_bits(c, 0x1.26bb1cp+2f, "logit_scale c");
    for (uint64_t i = 0; i < 4; i++)
        assert_float_bits(recipe_value("logit_scale", NULL, 0, i), 0x1.26bb1cp+2f, "logit_scale");
    assert_true((double)recipe_value("logit_scale", NULL, 0, 0) == 4.605170249938965);
}

static void test_scales(void **state)
{
    /* RECIPE §4 rule 6 examples */
    static const struct {
        int64_t fan_in;
        float s;
    } table[] = {
        {128, 1.0f / 16}, {192, 1.0f / 16}, {256, 1.0f / 16},  {341, 1.0f / 32},  {384, 1.0f / 32},
        {512, 1.0f / 32}, {768, 1.0f / 32}, {2048, 1.0f / 64}, {3072, 1.0f / 64},
    };
    static const struct {
        const char *name;
        float s, c;
    } rules[] = {
        {"vision_model.blocks.3.attn.inner_attn_ln.weight", 1.0f / 8, 1.0f},
        {"vision_model.blocks.3.mlp.ffn_ln.weight", 1.0f / 8, 1.0f},
        {"vision_model.norm.weight", 1.0f / 8, 1.0f},
        {"text_model.transformer.encoder.layers.0.norm2.weight", 1.0f / 8, 1.0f},
        {"vision_model.blocks.0.attn.q_bias", 1.0f / 32, 0.0f},
        {"vision_model.blocks.0.attn.v_bias", 1.0f / 32, 0.0f},
        {"vision_model.norm.bias", 1.0f / 32, 0.0f},
        {"text_model.transformer.embeddings.word_embeddings.weight", 1.0f / 2, 0.0f},
        {"text_model.transformer.embeddings.token_type_embeddings.weight", 1.0f / 2, 0.0f},
        {"vision_model.cls_token", 1.0f / 32, 0.0f},
        {"vision_model.pos_embed", 1.0f / 32, 0.0f},
    };
    const int64_t conv[4] = {768, 3, 16, 16};
    float s, c;
    (void)state;

    for (size_t n = 0; n < sizeof table / sizeof *table; n++) {
        const int64_t shape[2] = {7, table[n].fan_in};
        assert_int_equal(recipe_scale("vision_model.blocks.0.mlp.w3.weight", shape, 2, &s, &c), 0);
        assert_float_bits(s, table[n].s, "rule 6 s");
        assert_float_bits(c, 0.0f, "rule 6 c");
        /* x4 for the query/key projections only */
        assert_int_equal(recipe_scale("vision_model.blocks.0.attn.k_proj.weight", shape, 2, &s, &c),
                         0);
        assert_float_bits(s, table[n].s * 4, "k_proj s");
        assert_int_equal(recipe_scale("vision_model.blocks.0.attn.v_proj.weight", shape, 2, &s, &c),
                         0);
        assert_float_bits(s, table[n].s, "v_proj s");
        assert_int_equal(recipe_scale("text_model.transformer.encoder.layers.1.mixer.Wqkv.weight",
                                      shape, 2, &s, &c),
                         0);
        assert_float_bits(s, table[n].s * 4, "Wqkv s");
    }
    assert_int_equal(recipe_scale("vision_model.patch_embed.proj.weight", conv, 4, &s, &c), 0);
    assert_float_bits(s, 1.0f / 32, "conv s");

    for (size_t n = 0; n < sizeof rules / sizeof *rules; n++) {
        const int64_t shape[2] = {4096, 4096};
        assert_int_equal(recipe_scale(rules[n].name, shape, 2, &s, &c), 0);
        assert_float_bits(s, rules[n].s, rules[n].name);
        assert_float_bits(c, rules[n].c, rules[n].name);
    }
    assert_int_equal(recipe_scale("vision_model.mystery", conv, 4, &s, &c), -1);
    assert_true(isnan(recipe_value("vision_model.mystery", conv, 4, 0)));
}

static void test_fill_matches_value(void **state)
{
    const char *name = "vision_model.blocks.1.mlp.w1.weight";
    const int64_t shape[2] = {341, 128};
    float v[1000];
    (void)state;

    assert_int_equal(recipe_fill(name, shape, 2, 12345, 1000, v), 0);
    for (int j = 0; j < 1000; j++)
        assert_float_bits(v[j], recipe_value(name, shape, 2, 12345 + (uint64_t)j), name);
}

static void test_configs(void **state)
{
    static const struct {
        const char *name;
        int tensors;
        int64_t params;
    } want[] = {
        {"tiny", 75, 4760361},
        {"tiny12", 75, 7681601},
        {"full", 395, 222647041},
    };
    (void)state;

    assert_null(recipe_config_find("small"));
    for (size_t n = 0; n < sizeof want / sizeof *want; n++) {
        const struct recipe_config *cfg = recipe_config_find(want[n].name);
        struct recipe_tensor t[RECIPE_MAX_TENSORS];
        int64_t params = 0;
        uint64_t data_len;
        size_t hlen;
        char *header;
        int count;

        assert_non_null(cfg);
        assert_int_equal(cfg->vision_mlp_hidden, (int)(cfg->vision_width * 2.6667));
        assert_int_equal(cfg->text_dim, cfg->vision_width);
        count = recipe_tensors(cfg, t, RECIPE_MAX_TENSORS);
        assert_int_equal(count, want[n].tensors);
        assert_int_equal(recipe_tensors(cfg, NULL, 0), count);
        for (int i = 0; i < count; i++) {
            params += recipe_numel(t[i].shape, t[i].ndim);
            assert_int_equal(
                recipe_scale(t[i].name, t[i].shape, t[i].ndim, &(float){0}, &(float){0}), 0);
        }
        assert_int_equal(params, want[n].params);
        recipe_sort(t, count);
        for (int i = 1; i < count; i++)
            assert_true(strcmp(t[i - 1].name, t[i].name) < 0); /* sorted and unique */

        header = recipe_header(cfg, &hlen, &data_len);
        assert_non_null(header);
        assert_int_equal(hlen % 8, 0);
        assert_int_equal(strlen(header), hlen);
        assert_int_equal(data_len, (uint64_t)params * 4);
        free(header);
    }
}

/* ---- a generated model against its weights_check.json ------------------------------------ */

struct fixture {
    const char *cfg;
    char path[256];
    FILE *f;
    uint64_t file_size, hlen;
    char *header;
    cJSON *hdr, *golden;
};

static struct fixture fx;

static int model_teardown(void **state);

static int model_setup(void **state)
{
    char gpath[256];
    unsigned char len8[8];
    struct stat st;
    char *gtext;
    (void)state;

    snprintf(fx.path, sizeof fx.path, TU_MODELS "/%s/model.safetensors", fx.cfg);
    fx.f = fopen(fx.path, "rb");
    if (!fx.f || fstat(fileno(fx.f), &st) < 0) {
        print_error("cannot open %s (make %s)\n", fx.path, fx.path);
        model_teardown(state);
        return -1;
    }
    fx.file_size = (uint64_t)st.st_size;
    if (fread(len8, 1, 8, fx.f) != 8) {
        print_error("%s: truncated\n", fx.path);
        model_teardown(state);
        return -1;
    }
    fx.hlen = 0;
    for (int b = 7; b >= 0; b--)
        fx.hlen = fx.hlen << 8 | len8[b];
    if (fx.hlen > fx.file_size - 8 || fx.hlen > (64u << 20)) {
        print_error("%s: header length %llu out of range\n", fx.path, (unsigned long long)fx.hlen);
        model_teardown(state);
        return -1;
    }
    fx.header = malloc(fx.hlen + 1);
    if (!fx.header || fread(fx.header, 1, fx.hlen, fx.f) != fx.hlen) {
        print_error("%s: cannot read the header\n", fx.path);
        model_teardown(state);
        return -1;
    }
    fx.header[fx.hlen] = '\0';
    fx.hdr = cJSON_Parse(fx.header);
    if (!fx.hdr) {
        print_error("%s: header is not JSON\n", fx.path);
        model_teardown(state);
        return -1;
    }

    snprintf(gpath, sizeof gpath, TU_GOLDEN "/%s/weights_check.json", fx.cfg);
    gtext = tu_read(gpath, NULL);
    fx.golden = cJSON_Parse(gtext);
    free(gtext);
    if (!fx.golden) {
        print_error("%s: not JSON\n", gpath);
        model_teardown(state);
        return -1;
    }
    return 0;
}

static int model_teardown(void **state)
{
    (void)state;
    cJSON_Delete(fx.golden);
    cJSON_Delete(fx.hdr);
    free(fx.header);
    if (fx.f)
        fclose(fx.f);
    fx.golden = fx.hdr = NULL;
    fx.header = NULL;
    fx.f = NULL;
    return 0;
}

static int64_t json_numel(const cJSON *shape)
{
    int64_t n = 1;
    const cJSON *d;
    cJSON_ArrayForEach(d, shape)
    {
        n *= (int64_t)d->valuedouble;
    }
    return n;
}

static bool same_shape(const cJSON *a, const int64_t *shape, int ndim)
{
    const cJSON *d;
    int i = 0;
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != ndim)
        return false;
    cJSON_ArrayForEach(d, a)
    {
        if (!cJSON_IsNumber(d) || d->valuedouble != (double)shape[i++])
            return false;
    }
    return true;
}

/* Layout of RECIPE §6: padding, order, contiguous offsets, and the exact header bytes. */
static void test_header_layout(void **state)
{
    const struct recipe_config *cfg = recipe_config_find(fx.cfg);
    const cJSON *item, *meta;
    const char *prev = NULL;
    uint64_t off = 0, data_len;
    size_t end = fx.hlen, want_len;
    char *compact, *want;
    (void)state;

    assert_non_null(cfg);
    assert_int_equal(fx.hlen % 8, 0);
    while (end > 0 && fx.header[end - 1] == ' ')
        end--;
    assert_true(end > 0 && fx.hlen - end < 8);
    compact = cJSON_PrintUnformatted(fx.hdr);
    assert_non_null(compact);
    assert_int_equal(strlen(compact), end);
    assert_memory_equal(compact, fx.header, end); /* no whitespace, no reordering */
    cJSON_free(compact);

    meta = fx.hdr->child;
    assert_non_null(meta);
    assert_string_equal(meta->string, "__metadata__");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(meta, "format")),
                        "pt");
    for (item = meta->next; item; item = item->next) {
        const cJSON *offs = cJSON_GetObjectItemCaseSensitive(item, "data_offsets");
        if (prev && strcmp(prev, item->string) >= 0)
            fail_msg("'%s' comes after '%s'", item->string, prev);
        prev = item->string;
        assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(item, "dtype")),
                            "F32");
        assert_int_equal(cJSON_GetArraySize(offs), 2);
        assert_true(cJSON_GetArrayItem(offs, 0)->valuedouble == (double)off);
        off += (uint64_t)json_numel(cJSON_GetObjectItemCaseSensitive(item, "shape")) * 4;
        assert_true(cJSON_GetArrayItem(offs, 1)->valuedouble == (double)off);
    }
    assert_int_equal(8 + fx.hlen + off, fx.file_size);

    want = recipe_header(cfg, &want_len, &data_len);
    assert_non_null(want);
    assert_int_equal(want_len, fx.hlen);
    assert_memory_equal(want, fx.header, fx.hlen);
    assert_int_equal(data_len, off);
    free(want);
}

/* Same tensors and shapes in the file, the golden list and the recipe. */
static void test_tensor_table(void **state)
{
    const struct recipe_config *cfg = recipe_config_find(fx.cfg);
    struct recipe_tensor t[RECIPE_MAX_TENSORS];
    int n = recipe_tensors(cfg, t, RECIPE_MAX_TENSORS);
    (void)state;

    assert_int_equal(cJSON_GetArraySize(fx.hdr) - 1, n);
    assert_int_equal(cJSON_GetArraySize(fx.golden), n);
    for (int i = 0; i < n; i++) {
        const cJSON *h = cJSON_GetObjectItemCaseSensitive(fx.hdr, t[i].name);
        const cJSON *g = cJSON_GetObjectItemCaseSensitive(fx.golden, t[i].name);
        if (!h || !g)
            fail_msg("%s missing from the %s", t[i].name, !h ? "file" : "golden list");
        if (!same_shape(cJSON_GetObjectItemCaseSensitive(h, "shape"), t[i].shape, t[i].ndim) ||
            !same_shape(cJSON_GetObjectItemCaseSensitive(g, "shape"), t[i].shape, t[i].ndim))
            fail_msg("%s: shape differs between file, golden and recipe", t[i].name);
    }
}

static bool close_rel(double got, double want)
{
    return got == want || fabs(got - want) <= 1e-9 * fabs(want);
}

/* Streams every tensor: first two values bit for bit, float64 sum and sum_abs. */
static void test_tensor_values(void **state)
{
    enum { CHUNK = 1 << 18 };
    unsigned char *buf = malloc((size_t)CHUNK * 4);
    const cJSON *item;
    int bad = 0, checked = 0;
    (void)state;

    assert_non_null(buf);
    assert_int_equal(fseeko(fx.f, (off_t)(8 + fx.hlen), SEEK_SET), 0);
    /* header order is data order (checked by test_header_layout) */
    for (item = fx.hdr->child->next; item; item = item->next) {
        const cJSON *g = cJSON_GetObjectItemCaseSensitive(fx.golden, item->string);
        const cJSON *first = cJSON_GetObjectItemCaseSensitive(g, "first");
        int64_t numel = json_numel(cJSON_GetObjectItemCaseSensitive(item, "shape"));
        int nfirst = numel < 2 ? (int)numel : 2;
        double sum = 0, sum_abs = 0, gsum, gabs;
        float head[2] = {0, 0};
        bool ok = true;

        assert_non_null(g);
        for (int64_t at = 0; at < numel; at += CHUNK) {
            size_t m = numel - at < CHUNK ? (size_t)(numel - at) : CHUNK;
            assert_int_equal(fread(buf, 4, m, fx.f), m);
            for (size_t j = 0; j < m; j++) {
                const unsigned char *p = buf + 4 * j;
                uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                             (uint32_t)p[3] << 24;
                float v;
                memcpy(&v, &u, 4);
                if (at == 0 && j < 2)
                    head[j] = v;
                sum += v;
                sum_abs += fabs((double)v);
            }
        }

        if (cJSON_GetArraySize(first) != nfirst) {
            ok = false;
        } else {
            for (int j = 0; j < nfirst; j++) {
                const char *hex = cJSON_GetStringValue(cJSON_GetArrayItem(first, j));
                double want = hex ? strtod(hex, NULL) : NAN;
                if (bits(head[j]) != bits((float)want) || (double)(float)want != want)
                    ok = false;
            }
        }
        gsum = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(g, "sum"));
        gabs = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(g, "sum_abs"));
        if (!close_rel(sum, gsum) || !close_rel(sum_abs, gabs))
            ok = false;
        if (!ok && bad++ < MAX_BAD)
            print_error("%s: first %a %a, sum %.17g (want %.17g), sum_abs %.17g (want %.17g)\n",
                        item->string, (double)head[0], (double)head[1], sum, gsum, sum_abs, gabs);
        checked++;
    }
    free(buf);
    if (bad)
        fail_msg("%s: %d of %d tensors differ from weights_check.json", fx.cfg, bad, checked);
    print_message("%s: %d tensors match weights_check.json\n", fx.cfg, checked);
}

int main(void)
{
    static const struct CMUnitTest recipe_tests[] = {
        cmocka_unit_test(test_worked_values), cmocka_unit_test(test_logit_scale),
        cmocka_unit_test(test_scales),        cmocka_unit_test(test_fill_matches_value),
        cmocka_unit_test(test_configs),
    };
    static const struct CMUnitTest model_tests[] = {
        cmocka_unit_test(test_header_layout),
        cmocka_unit_test(test_tensor_table),
        cmocka_unit_test(test_tensor_values),
    };
    char cfgs[MAX_CFGS][16];
    int ncfg = tu_configs(cfgs, MAX_CFGS);
    int failed = cmocka_run_group_tests(recipe_tests, NULL, NULL);

    for (int i = 0; i < ncfg; i++) {
        char group[64];
        if (!recipe_config_find(cfgs[i])) {
            print_error("unknown config '%s' in JCLIP_TEST_CONFIGS\n", cfgs[i]);
            failed++;
            continue;
        }
        snprintf(group, sizeof group, "model %.15s", cfgs[i]);
        fx.cfg = cfgs[i];
        failed += cmocka_run_group_tests_name(group, model_tests, model_setup, model_teardown);
    }
    return failed ? 1 : 0;
}
