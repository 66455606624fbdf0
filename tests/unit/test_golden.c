/*
 * Golden conformance of the text tower: every text of tests/golden/texts.jsonl through each
 * generated test model, against the PyTorch reference's raw features, within the
 * tolerances of tests/golden/README.md.
 */
#include "testutil.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct texts {
    size_t n;
    char **text;
    size_t *text_len;
    int32_t **ids;
    size_t *len;
    size_t *untruncated;
};

static struct texts texts;

static void load_texts(void)
{
    size_t len;
    char *buf = tu_read(TU_GOLDEN "/texts.jsonl", &len);
    size_t cap = 64;
    texts.text = calloc(cap, sizeof *texts.text);
    texts.text_len = calloc(cap, sizeof *texts.text_len);
    texts.ids = calloc(cap, sizeof *texts.ids);
    texts.len = calloc(cap, sizeof *texts.len);
    texts.untruncated = calloc(cap, sizeof *texts.untruncated);
    for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *o = cJSON_Parse(line);
        assert_non_null(o);
        assert_true(texts.n < cap);
        const cJSON *t = cJSON_GetObjectItem(o, "text"), *ids = cJSON_GetObjectItem(o, "ids");
        const cJSON *u = cJSON_GetObjectItem(o, "untruncated_len");
        size_t n = (size_t)cJSON_GetArraySize(ids), i = 0;
        texts.text[texts.n] = strdup(t->valuestring);
        texts.text_len[texts.n] = strlen(t->valuestring);
        texts.ids[texts.n] = malloc(n * sizeof(int32_t));
        texts.len[texts.n] = n;
        texts.untruncated[texts.n] = u ? (size_t)u->valuedouble : n;
        const cJSON *e;
        cJSON_ArrayForEach(e, ids) texts.ids[texts.n][i++] = (int32_t)e->valuedouble;
        texts.n++;
        cJSON_Delete(o);
    }
    free(buf);
}

static void check_rows(const char *cfg, const float *got, const float *ref, const size_t *idx,
                       size_t n, size_t d, const char *how)
{
    for (size_t i = 0; i < n; i++) {
        const float *g = got + i * d, *r = ref + idx[i] * d;
        double cos = tu_cosine(g, r, d), diff = tu_max_abs_diff(g, r, d);
        double bar = 1e-4 * tu_max_abs(r, d);
        if (cos < 0.99999 || diff > bar)
            fail_msg("%s %s text %zu: cosine %.9f, max abs diff %.3g > %.3g", cfg, how, idx[i], cos,
                     diff, bar);
    }
}

/*
 * The texts the towers run: those of at most $JCLIP_TEST_MAX_IDS ids (default: all). Under
 * an emulator the 8192-id text alone takes minutes; make test-neon-golden leaves it out.
 */
static size_t pick_texts(size_t *idx)
{
    const char *env = getenv("JCLIP_TEST_MAX_IDS");
    size_t max = env && *env ? strtoul(env, NULL, 10) : SIZE_MAX, n = 0;
    for (size_t i = 0; i < texts.n; i++)
        if (texts.len[i] <= max)
            idx[n++] = i;
    return n;
}

/* The tokenizer of the test model gives the reference ids for every text. */
static void test_ids(void **state)
{
    struct jc_model *m;
    (void)state;
    if (jc_model_open(&m, TU_MODELS "/tiny", JC_LOAD_TOKENIZER) < 0)
        fail_msg("%s", jc_errmsg());
    for (size_t i = 0; i < texts.n; i++) {
        int32_t *ids;
        size_t n, full;
        assert_int_equal(jc_tokenize(jc_model_tokenizer(m), texts.text[i], texts.text_len[i], 8192,
                                     &ids, &n, &full),
                         0);
        assert_int_equal(n, texts.len[i]);
        assert_int_equal(full, texts.untruncated[i]);
        assert_memory_equal(ids, texts.ids[i], n * sizeof *ids);
        free(ids);
    }
    jc_model_free(m);
}

static void test_config(const char *cfg)
{
    char path[256];
    struct jc_model *m;
    size_t rows, d;

    snprintf(path, sizeof path, TU_GOLDEN "/%s/text_raw.npy", cfg);
    float *ref = tu_npy(path, &rows, &d);
    assert_int_equal(rows, texts.n);
    snprintf(path, sizeof path, TU_MODELS "/%s", cfg);
    if (jc_model_open(&m, path, JC_LOAD_TEXT) < 0)
        fail_msg("%s", jc_errmsg());
    assert_int_equal(jc_model_dim(m), d);

    size_t idx[64], n = pick_texts(idx);
    const int32_t *ids[64];
    size_t lens[64];
    for (size_t j = 0; j < n; j++) {
        ids[j] = texts.ids[idx[j]];
        lens[j] = texts.len[idx[j]];
    }
    assert_true(n > 0);

    float *got = calloc(n * d, sizeof *got);
    /* One text at a time, as the reference ran them. */
    for (size_t j = 0; j < n; j++)
        assert_int_equal(jc_embed_texts(m, &ids[j], &lens[j], 1, JC_EMBED_RAW, got + j * d), 0);
    check_rows(cfg, got, ref, idx, n, d, "alone");

    /* All at once, packed: results must not depend on what else is in the batch. */
    float *packed = calloc(n * d, sizeof *packed);
    assert_int_equal(jc_embed_texts(m, ids, lens, n, JC_EMBED_RAW, packed), 0);
    check_rows(cfg, packed, ref, idx, n, d, "packed");
    tu_assert_batch_equal(got, packed, n, d, cfg);

    /* Normalised output is the raw output over its norm. */
    float *unit = calloc(d, sizeof *unit);
    assert_int_equal(jc_embed_texts(m, &ids[0], &lens[0], 1, 0, unit), 0);
    double norm = 0;
    for (size_t c = 0; c < d; c++)
        norm += (double)got[c] * got[c];
    norm = sqrt(norm);
    for (size_t c = 0; c < d; c++)
        assert_float_equal(unit[c], got[c] / norm, 1e-6);

    free(unit);
    free(packed);
    free(got);
    free(ref);
    jc_model_free(m);
}

static void test_configs(void **state)
{
    char names[8][16];
    int n = tu_configs(names, 8);
    (void)state;
    for (int i = 0; i < n; i++)
        test_config(names[i]);
}

/*
 * Texts whose last rows share groups with other texts' (lib/text.c) or are padded, among
 * captions the kernel takes whole (more rows of them than it takes at a time): each one's
 * bits alone, in a batch in one order and in the reverse, with the others' tails before
 * and after its own.
 */
static void test_layouts(void **state)
{
    static const size_t lens[] = {5,  9,   10,  11,  12,  13,  17,  20, 23, 29, 31, 40, 64, 65,
                                  67, 100, 131, 253, 255, 256, 259, 3,  7,  8,  14, 15, 16, 1};
    enum { N = sizeof lens / sizeof *lens };
    char names[8][16], path[256];
    int configs = tu_configs(names, 8);
    (void)state;
    for (int c = 0; c < configs; c++) {
        struct jc_model *m;
        snprintf(path, sizeof path, TU_MODELS "/%s", names[c]);
        if (jc_model_open(&m, path, JC_LOAD_TEXT) < 0)
            fail_msg("%s", jc_errmsg());
        const size_t d = (size_t)jc_model_dim(m);
        const int32_t *ids[N], *rev_ids[N];
        size_t rev_lens[N];
        uint32_t x = 12345;
        for (size_t i = 0; i < N; i++) {
            int32_t *t = malloc(lens[i] * sizeof *t);
            for (size_t j = 0; j < lens[i]; j++, x = x * 1664525u + 1013904223u)
                t[j] = j == 0 ? 101 : j + 1 == lens[i] ? 102 : 1000 + (int32_t)(x >> 20);
            ids[i] = t;
            rev_ids[N - 1 - i] = t;
            rev_lens[N - 1 - i] = lens[i];
        }
        float *alone = calloc(N * d, sizeof *alone), *batch = calloc(N * d, sizeof *batch),
              *rev = calloc(N * d, sizeof *rev);
        for (size_t i = 0; i < N; i++)
            assert_int_equal(jc_embed_texts(m, &ids[i], &lens[i], 1, JC_EMBED_RAW, alone + i * d),
                             0);
        assert_int_equal(jc_embed_texts(m, ids, lens, N, JC_EMBED_RAW, batch), 0);
        tu_assert_batch_equal(alone, batch, N, d, names[c]);
        assert_int_equal(jc_embed_texts(m, rev_ids, rev_lens, N, JC_EMBED_RAW, rev), 0);
        for (size_t i = 0; i < N; i++)
            if (memcmp(alone + i * d, rev + (N - 1 - i) * d, d * sizeof *rev))
                fail_msg("%s: the %zu-token text differs in the reversed batch (OpenBLAS %s)",
                         names[c], lens[i], jc_blas_corename());
        for (size_t i = 0; i < N; i++)
            free((void *)ids[i]);
        free(alone);
        free(batch);
        free(rev);
        jc_model_free(m);
    }
}

/*
 * --precision bf16 (where the kernel table has bf16 products): the texts of
 * tests/golden/bf16/<cfg>/text_rows.json against that contract's goldens, alone and in one
 * batch to the bit, and with one thread and with every one to the bit.
 */
static void test_bf16(void **state)
{
    char names[8][16], path[256];
    int nc = tu_configs(names, 8);
    (void)state;
    if (!tu_bf16_begin())
        return;
    for (int c = 0; c < nc; c++) {
        if (!tu_bf16_config(names[c]))
            continue;
        size_t rows, d, r32, d32, len, idx[64], n = 0;
        snprintf(path, sizeof path, TU_GOLDEN "/bf16/%s/text_raw.npy", names[c]);
        float *ref = tu_npy(path, &rows, &d);
        snprintf(path, sizeof path, TU_GOLDEN "/%s/text_raw.npy", names[c]);
        float *all32 = tu_npy(path, &r32, &d32);
        snprintf(path, sizeof path, TU_GOLDEN "/bf16/%s/text_rows.json", names[c]);
        char *json = tu_read(path, &len);
        cJSON *list = cJSON_Parse(json), *e;
        assert_non_null(list);
        cJSON_ArrayForEach(e, list)
        {
            assert_true(n < 64);
            idx[n++] = (size_t)e->valuedouble;
        }
        cJSON_Delete(list);
        free(json);
        assert_int_equal(n, rows);
        /* at most 1024 ids, as the full-size goldens have: the reference table is slow */
        size_t kept = 0;
        for (size_t j = 0; j < n; j++)
            if (texts.len[idx[j]] <= 1024) {
                memmove(ref + kept * d, ref + j * d, d * sizeof *ref);
                idx[kept++] = idx[j];
            }
        n = kept;

        struct jc_model *m;
        struct jc_model_info info;
        snprintf(path, sizeof path, TU_MODELS "/%s", names[c]);
        if (jc_model_open(&m, path, JC_LOAD_TEXT) < 0)
            fail_msg("%s", jc_errmsg());
        assert_int_equal(jc_model_info(m, &info), 0);
        assert_string_equal(info.precision, "bf16");
        const int32_t *ids[64];
        float *ref32 = calloc(n * d, sizeof *ref32), *alone = calloc(n * d, sizeof *alone),
              *batch = calloc(n * d, sizeof *batch), *one = calloc(n * d, sizeof *one);
        for (size_t j = 0; j < n; j++) {
            ids[j] = texts.ids[idx[j]];
            memcpy(ref32 + j * d, all32 + idx[j] * d, d * sizeof *ref32);
        }
        size_t lens[64];
        for (size_t j = 0; j < n; j++) {
            lens[j] = texts.len[idx[j]];
            assert_int_equal(jc_embed_texts(m, &ids[j], &lens[j], 1, JC_EMBED_RAW, alone + j * d),
                             0);
        }
        tu_check_bf16(names[c], alone, ref, ref32, n, d, 0.99999, 0.999995);
        assert_int_equal(jc_embed_texts(m, ids, lens, n, JC_EMBED_RAW, batch), 0);
        tu_assert_batch_equal(alone, batch, n, d, names[c]);
        if (c == 0) {
            jc_set_threads(1);
            assert_int_equal(jc_embed_texts(m, ids, lens, n, JC_EMBED_RAW, one), 0);
            jc_set_threads(0);
            tu_assert_batch_equal(alone, one, n, d, names[c]);
        }
        free(ref32);
        free(alone);
        free(batch);
        free(one);
        free(all32);
        free(ref);
        jc_model_free(m);
    }
    tu_bf16_end();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ids),
        cmocka_unit_test(test_configs),
        cmocka_unit_test(test_layouts),
        cmocka_unit_test(test_bf16),
    };
    load_texts();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
