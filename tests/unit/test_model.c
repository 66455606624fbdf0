/* Loading: safetensors validation, config parsing, model discovery, ALiBi slopes. */
#include "testutil.h"

#include "model.h"
#include "safetensors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int parse(const char *json, uint64_t data_len)
{
    struct jc_st st = {0};
    st.fd = -1;
    st.path = strdup("x.safetensors");
    int rc = jc_st_parse_header(&st, json, strlen(json), data_len);
    jc_st_release(&st);
    return rc;
}

static void expect_error(const char *json, uint64_t data_len, const char *needle)
{
    int rc = parse(json, data_len);
    if (rc >= 0)
        fail_msg("accepted: %s", json);
    if (!strstr(jc_errmsg(), needle))
        fail_msg("message '%s' lacks '%s'", jc_errmsg(), needle);
}

static void test_header_validation(void **state)
{
    (void)state;
    assert_int_equal(parse("{\"__metadata__\":{\"format\":\"pt\"},\"a\":{\"dtype\":\"F32\","
                           "\"shape\":[2,3],\"data_offsets\":[0,24]}}",
                           24),
                     0);
    expect_error("[1]", 0, "not a JSON object");
    expect_error("{\"a\":", 0, "not a JSON object");
    expect_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4,
                 "larger than the file");
    expect_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 4, "outside");
    expect_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 8, "needs 8");
    expect_error("{\"a\":{\"dtype\":\"Q4\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
                 "unknown dtype 'Q4'");
    /* 2^40 x 2^40 elements must not wrap around to a small size. */
    expect_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1099511627776,1099511627776],"
                 "\"data_offsets\":[0,4]}}",
                 4, "'a'");
    expect_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                 "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                 8, "appears twice");
    expect_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                 "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                 12, "overlap");
    expect_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4,
                 "bad shape");
    expect_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4,
                 "data_offsets");
}

static void test_config_validation(void **state)
{
    struct jc_config c;
    (void)state;
    const char *good = "{\"text_config\":{\"hf_model_config_kwargs\":{\"num_attention_heads\":2,"
                       "\"layer_norm_eps\":1e-12}},\"vision_config\":{\"width\":128,"
                       "\"head_width\":64,\"layers\":2,\"mlp_ratio\":2.6667}}";
    assert_int_equal(jc_config_parse(&c, good, strlen(good), "config.json"), 0);
    assert_int_equal(c.t_heads, 2);
    assert_int_equal(c.v_width, 128);
    assert_int_equal((int)(c.v_width * c.v_mlp_ratio), 341);

    static const struct {
        const char *json, *needle;
    } bad[] = {
        {"nope", "not a JSON object"},
        {"{\"vision_config\":{\"width\":\"768\"}}", "vision_config.width"},
        {"{\"vision_config\":{\"width\":100,\"head_width\":64}}", "not a multiple"},
        {"{\"vision_config\":{\"mlp_ratio\":0}}", "mlp_ratio"},
        {"{\"text_config\":{\"hf_model_config_kwargs\":{\"num_attention_heads\":2.5}}}",
         "num_attention_heads"},
        {"{\"text_config\":[]}", "text_config"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        if (jc_config_parse(&c, bad[i].json, strlen(bad[i].json), "config.json") >= 0)
            fail_msg("accepted %s", bad[i].json);
        if (!strstr(jc_errmsg(), bad[i].needle))
            fail_msg("message '%s' lacks '%s'", jc_errmsg(), bad[i].needle);
    }
}

static void test_alibi(void **state)
{
    char names[8][16], path[256];
    int n = tu_configs(names, 8);
    (void)state;
    for (int i = 0; i < n; i++) {
        size_t rows, heads;
        snprintf(path, sizeof path, TU_GOLDEN "/%s/alibi_slopes.npy", names[i]);
        float *ref = tu_npy(path, &rows, &heads), got[64];
        jc_alibi_slopes(got, (int)heads);
        assert_memory_equal(got, ref, heads * sizeof *got);
        free(ref);
    }
    float twelve[12];
    jc_alibi_slopes(twelve, 12);
    assert_true(twelve[0] == 0.5f && twelve[7] == 0.00390625f);
    assert_true(twelve[8] == 0x1.6a09e6p-1f && twelve[11] == 0x1.6a09e6p-4f);
}

static void test_model_dims(void **state)
{
    struct jc_model *m;
    struct jc_model_info in;
    (void)state;
    if (jc_model_open(&m, TU_MODELS "/tiny", JC_LOAD_INFO) < 0)
        fail_msg("%s", jc_errmsg());
    assert_int_equal(jc_model_info(m, &in), 0);
    assert_int_equal(in.text.dim, 128);
    assert_int_equal(in.text.heads, 2);
    assert_int_equal(in.text.layers, 2);
    assert_int_equal(in.text.intermediate, 256);
    assert_int_equal(in.text.vocab, 30528);
    assert_int_equal(in.vision.mlp_hidden, 341);
    assert_int_equal(in.params, 4760361);
    assert_int_equal(in.tensors, 75);
    assert_true(in.logit_scale == 0x1.26bb1cp+2f);
    jc_model_free(m);
}

static void test_locate(void **state)
{
    char *dir;
    char tmpl[] = "/tmp/jclip-locate-XXXXXX";
    (void)state;
    assert_non_null(mkdtemp(tmpl));
    unsetenv("JCLIP_MODEL");
    unsetenv("HF_HUB_CACHE");
    setenv("HF_HOME", tmpl, 1);
    assert_int_equal(jc_model_locate("explicit", &dir), 0);
    assert_string_equal(dir, "explicit");
    free(dir);

    assert_true(jc_model_locate(NULL, &dir) < 0);
    assert_non_null(strstr(jc_errmsg(), tmpl));
    assert_non_null(strstr(jc_errmsg(), "JCLIP_MODEL"));

    char p[512];
    const char *repo = "hub/models--jinaai--jina-clip-v1";
    snprintf(p, sizeof p,
             "mkdir -p %s/%s/snapshots/aaa %s/%s/snapshots/bbb %s/%s/refs && "
             "touch %s/%s/snapshots/aaa/config.json %s/%s/snapshots/bbb/config.json",
             tmpl, repo, tmpl, repo, tmpl, repo, tmpl, repo, tmpl, repo);
    assert_int_equal(system(p), 0);
    snprintf(p, sizeof p, "printf 'aaa\\n' > %s/%s/refs/main", tmpl, repo);
    assert_int_equal(system(p), 0);
    assert_int_equal(jc_model_locate(NULL, &dir), 0);
    assert_non_null(strstr(dir, "snapshots/aaa"));
    free(dir);
    /* Without refs/main: the newest snapshot. */
    snprintf(p, sizeof p,
             "rm %s/%s/refs/main && touch -d '2001-01-01' %s/%s/snapshots/aaa/config.json", tmpl,
             repo, tmpl, repo);
    assert_int_equal(system(p), 0);
    assert_int_equal(jc_model_locate(NULL, &dir), 0);
    assert_non_null(strstr(dir, "snapshots/bbb"));
    free(dir);

    setenv("JCLIP_MODEL", "/from/env", 1);
    assert_int_equal(jc_model_locate(NULL, &dir), 0);
    assert_string_equal(dir, "/from/env");
    free(dir);
    unsetenv("JCLIP_MODEL");
    snprintf(p, sizeof p, "rm -rf %s", tmpl);
    assert_int_equal(system(p), 0);
}

static void test_npy_roundtrip(void **state)
{
    float data[6] = {1, -2, 3.5f, 0, 1e-30f, 7}, *back;
    size_t rows, cols;
    char path[] = "/tmp/jclip-npy-XXXXXX";
    (void)state;
    int fd = mkstemp(path);
    close(fd);
    assert_int_equal(jc_npy_write(path, data, 2, 3), 0);
    back = tu_npy(path, &rows, &cols);
    assert_int_equal(rows, 2);
    assert_int_equal(cols, 3);
    assert_memory_equal(back, data, sizeof data);
    free(back);
    unlink(path);
}

static void test_coretype(void **state)
{
    (void)state;
    assert_true(jc_blas_coretype_below("Prescott", "SkylakeX"));
    assert_true(jc_blas_coretype_below("Sandybridge", "Haswell"));
    assert_false(jc_blas_coretype_below("Cooperlake", "SkylakeX"));
    assert_false(jc_blas_coretype_below("Zen", "Haswell"));
    assert_false(jc_blas_coretype_below("SomethingNew", "SkylakeX"));
    assert_false(jc_blas_coretype_below("Prescott", "Unknown"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_validation),
        cmocka_unit_test(test_config_validation),
        cmocka_unit_test(test_alibi),
        cmocka_unit_test(test_model_dims),
        cmocka_unit_test(test_locate),
        cmocka_unit_test(test_npy_roundtrip),
        cmocka_unit_test(test_coretype),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
