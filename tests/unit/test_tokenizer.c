/* The WordPiece tokenizer against Hugging Face tokenizers' ids, exactly. */
#include "testutil.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TOK_DIR    TU_GOLDEN "/tokenizer"
#define CASES      TOK_DIR "/cases.jsonl"
#define TRUNC      TOK_DIR "/cases_truncation.jsonl"
#define MAX_REPORT 10

struct tcase {
    char *text; /* may hold NUL */
    size_t len;
    int32_t *ids;
    size_t n;
    size_t max_length; /* 0: none */
};

struct tcases {
    struct tcase *c;
    size_t n;
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void put_utf8(char *out, size_t *n, unsigned long cp)
{
    if (cp < 0x80) {
        out[(*n)++] = (char)cp;
    } else if (cp < 0x800) {
        out[(*n)++] = (char)(0xC0 | (cp >> 6));
        out[(*n)++] = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out[(*n)++] = (char)(0xE0 | (cp >> 12));
        out[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[(*n)++] = (char)(0x80 | (cp & 0x3F));
    } else {
        out[(*n)++] = (char)(0xF0 | (cp >> 18));
        out[(*n)++] = (char)(0x80 | ((cp >> 12) & 0x3F));
        out[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[(*n)++] = (char)(0x80 | (cp & 0x3F));
    }
}

static unsigned long hex4(const char *s)
{
    char buf[5];
    memcpy(buf, s, 4);
    buf[4] = '\0';
    return strtoul(buf, NULL, 16);
}

/*
 * The "text" member of a line, decoded by hand: cJSON cuts strings at U+0000, and some
 * texts contain it.
 */
static char *json_text(const char *line, size_t *len, size_t lineno)
{
    const char *p = strstr(line, "\"text\": \"");
    char *out;
    size_t n = 0;

    if (!p)
        fail_msg("line %zu: no \"text\" member", lineno);
    p += 9;
    out = malloc(strlen(p) + 1);
    assert_non_null(out);
    while (*p != '"') {
        if (*p == '\0')
            fail_msg("line %zu: unterminated text", lineno);
        if (*p != '\\') {
            out[n++] = *p++;
            continue;
        }
        p++;
        switch (*p) {
        case 'n':
            out[n++] = '\n';
            break;
        case 't':
            out[n++] = '\t';
            break;
        case 'r':
            out[n++] = '\r';
            break;
        case 'b':
            out[n++] = '\b';
            break;
        case 'f':
            out[n++] = '\f';
            break;
        case 'u': {
            unsigned long cp = hex4(p + 1);
            p += 4;
            if (cp >= 0xD800 && cp < 0xDC00 && p[1] == '\\' && p[2] == 'u') {
                unsigned long lo = hex4(p + 3);
                if (lo >= 0xDC00 && lo < 0xE000) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    p += 6;
                }
            }
            put_utf8(out, &n, cp);
            break;
        }
        default: /* \" \\ \/ */
            out[n++] = *p;
            break;
        }
        p++;
    }
    *len = n;
    return out;
}

static struct tcases load_cases(const char *path)
{
    struct tcases cs = {0};
    size_t len, cap = 0, lineno = 0;
    char *buf = tu_read(path, &len);

    for (char *line = buf, *next; line < buf + len; line = next) {
        char *nl = memchr(line, '\n', (size_t)(buf + len - line));
        cJSON *j, *ids, *ml;
        struct tcase *c;
        size_t k = 0;

        next = nl ? nl + 1 : buf + len;
        if (nl)
            *nl = '\0';
        lineno++;
        if (*line == '\0')
            continue;
        if (cs.n == cap) {
            cap = cap ? cap * 2 : 256;
            cs.c = realloc(cs.c, cap * sizeof *cs.c);
            assert_non_null(cs.c);
        }
        c = &cs.c[cs.n++];
        c->text = json_text(line, &c->len, lineno);
        j = cJSON_Parse(line);
        if (!j)
            fail_msg("%s:%zu: malformed JSON", path, lineno);
        ids = cJSON_GetObjectItemCaseSensitive(j, "ids");
        ml = cJSON_GetObjectItemCaseSensitive(j, "max_length");
        assert_true(cJSON_IsArray(ids));
        c->n = (size_t)cJSON_GetArraySize(ids);
        c->ids = malloc((c->n ? c->n : 1) * sizeof *c->ids);
        assert_non_null(c->ids);
        for (cJSON *v = ids->child; v; v = v->next)
            c->ids[k++] = (int32_t)v->valuedouble;
        c->max_length = cJSON_IsNumber(ml) ? (size_t)ml->valuedouble : 0;
        cJSON_Delete(j);
    }
    free(buf);
    return cs;
}

static void free_cases(struct tcases *cs)
{
    for (size_t i = 0; i < cs->n; i++) {
        free(cs->c[i].text);
        free(cs->c[i].ids);
    }
    free(cs->c);
}

/* Prints where got and want first differ; returns whether they are equal. */
static bool same_ids(const char *what, size_t lineno, const int32_t *got, size_t n_got,
                     const int32_t *want, size_t n_want, bool report)
{
    size_t i = 0;
    while (i < n_got && i < n_want && got[i] == want[i])
        i++;
    if (i == n_got && n_got == n_want)
        return true;
    if (report)
        print_message("%s line %zu: first difference at position %zu: got %ld, want %ld "
                      "(%zu ids, want %zu)\n",
                      what, lineno, i, i < n_got ? (long)got[i] : -1L,
                      i < n_want ? (long)want[i] : -1L, n_got, n_want);
    return false;
}

/* Tokenizes every case with no limit; returns the number of mismatches. */
static size_t run_cases(const struct jc_tokenizer *tk, const struct tcases *cs, const char *what)
{
    size_t bad = 0, total = 0;
    double t = 0;

    for (size_t i = 0; i < cs->n; i++) {
        const struct tcase *c = &cs->c[i];
        int32_t *ids;
        size_t n, full;
        double t0 = now();
        int rc = jc_tokenize(tk, c->text, c->len, SIZE_MAX, &ids, &n, &full);
        t += now() - t0;
        if (rc < 0)
            fail_msg("%s line %zu: %s", what, i + 1, jc_errmsg());
        assert_int_equal(full, n);
        if (!same_ids(what, i + 1, ids, n, c->ids, c->n, bad < MAX_REPORT))
            bad++;
        total += n;
        free(ids);
    }
    print_message("%s: %zu of %zu lines equal, %zu ids in %.1f ms\n", what, cs->n - bad, cs->n,
                  total, t * 1e3);
    return bad;
}

static void test_cases_json(void **state)
{
    struct tcases cs = load_cases(CASES);
    struct jc_tokenizer *tk;

    (void)state;
    assert_int_equal(cs.n, 2246);
    if (jc_tokenizer_load(&tk, TOK_DIR) < 0)
        fail_msg("%s", jc_errmsg());
    assert_int_equal(jc_tokenizer_size(tk), 30522);
    assert_string_equal(jc_tokenizer_token(tk, 101), "[CLS]");
    assert_string_equal(jc_tokenizer_token(tk, 1996), "the");
    assert_null(jc_tokenizer_token(tk, 30522));
    assert_null(jc_tokenizer_token(tk, -1));
    assert_int_equal(run_cases(tk, &cs, "cases.jsonl (tokenizer.json)"), 0);
    jc_tokenizer_free(tk);
    free_cases(&cs);
}

static void test_cases_vocab_dir(void **state)
{
    struct tcases cs = load_cases(CASES);
    char dir[] = "/tmp/jclip-tok-XXXXXX", path[64];
    struct jc_tokenizer *tk;
    size_t len;
    char *vocab = tu_read(TOK_DIR "/vocab.txt", &len);
    FILE *f;

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/vocab.txt", dir);
    f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(vocab, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
    if (jc_tokenizer_load(&tk, dir) < 0)
        fail_msg("%s", jc_errmsg());
    unlink(path);
    rmdir(dir);
    assert_int_equal(jc_tokenizer_size(tk), 30522);
    assert_int_equal(run_cases(tk, &cs, "cases.jsonl (vocab.txt directory)"), 0);
    jc_tokenizer_free(tk);
    free(vocab);
    free_cases(&cs);
}

static void test_cases_vocab_mem(void **state)
{
    struct tcases cs = load_cases(CASES);
    struct jc_tokenizer *tk;
    size_t len;
    char *vocab = tu_read(TOK_DIR "/vocab.txt", &len);

    (void)state;
    if (jc_tokenizer_from_vocab(&tk, vocab, len, "vocab.txt") < 0)
        fail_msg("%s", jc_errmsg());
    assert_int_equal(run_cases(tk, &cs, "cases.jsonl (jc_tokenizer_from_vocab)"), 0);
    jc_tokenizer_free(tk);
    free(vocab);
    free_cases(&cs);
}

static void test_truncation(void **state)
{
    struct tcases cs = load_cases(TRUNC);
    struct jc_tokenizer *tk;
    size_t bad = 0;

    (void)state;
    assert_int_equal(cs.n, 32);
    if (jc_tokenizer_load(&tk, TOK_DIR) < 0)
        fail_msg("%s", jc_errmsg());
    for (size_t i = 0; i < cs.n; i++) {
        const struct tcase *c = &cs.c[i];
        int32_t *ids, *all;
        size_t n, full, n_all;

        assert_true(c->max_length >= 2);
        assert_int_equal(jc_tokenize(tk, c->text, c->len, c->max_length, &ids, &n, &full), 0);
        assert_int_equal(jc_tokenize(tk, c->text, c->len, SIZE_MAX, &all, &n_all, NULL), 0);
        if (!same_ids("cases_truncation.jsonl", i + 1, ids, n, c->ids, c->n, bad < MAX_REPORT))
            bad++;
        if (full != n_all) {
            print_message("cases_truncation.jsonl line %zu: n_full %zu, want %zu\n", i + 1, full,
                          n_all);
            bad++;
        }
        assert_int_equal(n, n_all < c->max_length ? n_all : c->max_length);
        free(ids);
        free(all);
    }
    print_message("cases_truncation.jsonl: %zu of %zu lines equal\n", cs.n - bad, cs.n);
    assert_int_equal(bad, 0);
    jc_tokenizer_free(tk);
    free_cases(&cs);
}

static void expect_tokens(const struct jc_tokenizer *tk, const char *text, size_t len, size_t max,
                          const char *want, size_t want_full)
{
    char got[512] = "";
    int32_t *ids;
    size_t n, full;

    if (jc_tokenize(tk, text, len, max, &ids, &n, &full) < 0)
        fail_msg("%s", jc_errmsg());
    for (size_t i = 0; i < n; i++) {
        strcat(got, i ? " " : "");
        strcat(got, jc_tokenizer_token(tk, ids[i]));
    }
    assert_string_equal(got, want);
    assert_int_equal(full, want_full);
    free(ids);
}

static void test_limits_and_text(void **state)
{
    struct jc_tokenizer *tk;
    int32_t *ids = (int32_t *)1;
    size_t n = 7;

    (void)state;
    if (jc_tokenizer_load(&tk, TOK_DIR) < 0)
        fail_msg("%s", jc_errmsg());
    expect_tokens(tk, "hello world", 11, 512, "[CLS] hello world [SEP]", 4);
    expect_tokens(tk, "hello world", 11, 3, "[CLS] hello [SEP]", 4);
    expect_tokens(tk, "hello world", 11, 2, "[CLS] [SEP]", 4);
    expect_tokens(tk, "", 0, 2, "[CLS] [SEP]", 2);
    expect_tokens(tk, NULL, 0, 8, "[CLS] [SEP]", 2);
    assert_int_equal(jc_tokenize(tk, "a", 1, 1, &ids, &n, NULL), JC_EINVAL);
    assert_null(ids);
    assert_int_equal(n, 0);

    /* invalid bytes are U+FFFD, which clean_text deletes; NUL is deleted too */
    expect_tokens(tk,
                  "a\xff"
                  "b",
                  3, 512, "[CLS] ab [SEP]", 3);
    expect_tokens(tk, "a\0b", 3, 512, "[CLS] ab [SEP]", 3);
    expect_tokens(tk, "\xed\xa0\x80\xc0\xaf", 5, 512, "[CLS] [SEP]", 2);
    expect_tokens(tk, "x\xe2\x82", 3, 512, "[CLS] x [SEP]", 3);

    /* special tokens in the raw text match case-sensitively, even inside a word */
    expect_tokens(tk, "a[SEP]b", 7, 512, "[CLS] a [SEP] b [SEP]", 5);
    expect_tokens(tk, "a[sep]b", 7, 512, "[CLS] a [ sep ] b [SEP]", 7);
    expect_tokens(tk, "Caf\xc3\xa9 \xe4\xb8\xad\xe6\x96\x87", 12, 512, "[CLS] cafe 中 文 [SEP]", 5);
    jc_tokenizer_free(tk);
}

static void test_utf8_repair(void **state)
{
    static const struct {
        const char *in;
        size_t len;
        const char *out; /* NULL: nothing to repair */
        size_t out_len;
        long count;
    } cases[] = {
        {"ok", 2, NULL, 0, 0},
        {"\xef\xbf\xbd", 3, NULL, 0, 0},
        {"a\xff"
         "b",
         3,
         "a\xef\xbf\xbd"
         "b",
         5, 1},
        {"\xe2\x82", 2, "\xef\xbf\xbd", 3, 1},
        {"x\xe2\x82y", 4, "x\xef\xbf\xbdy", 5, 1},
        {"\xc0\xaf", 2, "\xef\xbf\xbd\xef\xbf\xbd", 6, 2},
        {"\xed\xa0\x80", 3, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", 9, 3},
        {"\xf0\x9f\x98", 3, "\xef\xbf\xbd", 3, 1},
        {"\xf4\x90\x80\x80", 4, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", 12, 4},
        {"\xe0\x80\xaf", 3, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", 9, 3},
        {"\xf0\x9f\x98\x80\x80", 5, "\xf0\x9f\x98\x80\xef\xbf\xbd", 7, 1},
        {"a\0\x80", 3, "a\0\xef\xbf\xbd", 5, 1},
    };

    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *out = (char *)1;
        size_t len = 99;
        long got = jc_utf8_repair(cases[i].in, cases[i].len, &out, &len);
        assert_int_equal(got, cases[i].count);
        if (!cases[i].out) {
            assert_null(out);
            continue;
        }
        assert_non_null(out);
        assert_int_equal(len, cases[i].out_len);
        assert_memory_equal(out, cases[i].out, len);
        free(out);
    }
}

/* Loads a tokenizer.json text and expects failure with a message that contains `msg`. */
static void expect_json_error(const char *json, int code, const char *msg)
{
    struct jc_tokenizer *tk = (struct jc_tokenizer *)1;
    int rc = jc_tokenizer_from_json(&tk, json, strlen(json), "bad/tokenizer.json");
    if (rc != code)
        fail_msg("got %d (%s), want %d for %s", rc, jc_errmsg(), code, json);
    assert_null(tk);
    assert_non_null(strstr(jc_errmsg(), "'bad/tokenizer.json'"));
    if (!strstr(jc_errmsg(), msg))
        fail_msg("message '%s' lacks '%s'", jc_errmsg(), msg);
}

static void expect_vocab_error(const char *vocab, size_t len, const char *msg)
{
    struct jc_tokenizer *tk = (struct jc_tokenizer *)1;
    int rc = jc_tokenizer_from_vocab(&tk, vocab, len, "bad/vocab.txt");
    if (rc != JC_EFORMAT)
        fail_msg("got %d (%s), want JC_EFORMAT", rc, jc_errmsg());
    assert_null(tk);
    assert_non_null(strstr(jc_errmsg(), "'bad/vocab.txt'"));
    if (!strstr(jc_errmsg(), msg))
        fail_msg("message '%s' lacks '%s'", jc_errmsg(), msg);
}

#define PRE  "\"pre_tokenizer\": {\"type\": \"BertPreTokenizer\"}, "
#define MODL "\"model\": {\"type\": \"WordPiece\", \"vocab\": "

static void test_errors(void **state)
{
    struct jc_tokenizer *tk = (struct jc_tokenizer *)1;
    static const char dup[] = "[UNK]\n[CLS]\n[SEP]\nthe\nof\nthe\n";
    static const char nocls[] = "[PAD]\n[UNK]\n[SEP]\nthe\n";
    size_t len;
    char *json;

    (void)state;
    expect_json_error("{\"model\": ", JC_EFORMAT, "malformed JSON");
    expect_json_error("[1, 2]", JC_EFORMAT, "not a JSON object");
    expect_json_error("{" PRE "\"model\": {\"type\": \"BPE\", \"vocab\": {}}}", JC_EFORMAT,
                      "unsupported model type 'BPE'");
    expect_json_error("{\"pre_tokenizer\": {\"type\": \"Whitespace\"}}", JC_EFORMAT,
                      "unsupported pre_tokenizer");
    expect_json_error("{" PRE "\"normalizer\": {\"type\": \"NFC\"}}", JC_EFORMAT,
                      "unsupported normalizer");
    expect_json_error("{" PRE MODL "{\"[UNK]\": 0, \"a\": -1}}}", JC_EFORMAT, "out of range");
    expect_json_error("{" PRE MODL "{\"[UNK]\": 0, \"a\": 2}}}", JC_EFORMAT, "out of range");
    expect_json_error("{" PRE MODL "{\"[UNK]\": 0, \"a\": 0.5}}}", JC_EFORMAT, "out of range");
    expect_json_error("{" PRE MODL "{\"[UNK]\": 0, \"a\": \"1\"}}}", JC_EFORMAT, "not a number");
    expect_json_error("{" PRE MODL "{\"[UNK]\": 0, \"a\": 0}}}", JC_EFORMAT, "given to both");
    expect_json_error("{" PRE MODL "{\"[UNK]\": 0, \"a\": 1, \"a\": 2}}}", JC_EFORMAT,
                      "duplicate token 'a'");
    expect_json_error("{" PRE MODL "{\"a\": 0}}}", JC_EFORMAT, "'[UNK]' is not in model.vocab");
    expect_json_error("{" PRE MODL "{\"[UNK]\": 0, \"[SEP]\": 1}}}", JC_EFORMAT,
                      "'[CLS]' is not in the vocabulary");
    expect_json_error("{" PRE MODL "{\"[UNK]\": 0}}, \"post_processor\": {\"type\": "
                      "\"RobertaProcessing\"}}",
                      JC_EFORMAT, "unsupported post_processor");
    expect_json_error("{" PRE MODL "{\"[UNK]\": 0}}, \"added_tokens\": [{\"id\": 0}]}", JC_EFORMAT,
                      "no content");
    expect_json_error("{\"a\": \"\xff\"}", JC_EFORMAT, "invalid UTF-8");

    expect_vocab_error(dup, sizeof dup - 1, "duplicate token 'the'");
    expect_vocab_error(nocls, sizeof nocls - 1, "'[CLS]' is not in the vocabulary");
    expect_vocab_error("", 0, "'[UNK]' is not in the vocabulary");
    expect_vocab_error("[UNK]\n\xc3(\n", 8, "invalid UTF-8 on line 2");

    assert_int_equal(jc_tokenizer_load(&tk, "tests/golden/no-such-dir"), JC_ENOTFOUND);
    assert_null(tk);
    assert_non_null(strstr(jc_errmsg(), "'tests/golden/no-such-dir'"));
    assert_int_equal(jc_tokenizer_load(&tk, "tests/unit"), JC_ENOTFOUND);
    assert_non_null(strstr(jc_errmsg(), "'tests/unit'"));

    /* every prefix of the real file is malformed: none may crash */
    json = tu_read(TOK_DIR "/tokenizer.json", &len);
    for (size_t cut = 0; cut < len; cut += 1 + cut / 4)
        assert_int_equal(jc_tokenizer_from_json(&tk, json, cut, "cut.json"), JC_EFORMAT);
    free(json);
}

/* Added-token options that the golden file does not use, on a small vocabulary. */
static void test_added_tokens(void **state)
{
    static const char json[] =
        "{\"added_tokens\": ["
        "{\"id\": 0, \"content\": \"[UNK]\", \"special\": true, \"normalized\": false},"
        "{\"id\": 1, \"content\": \"[CLS]\", \"special\": true, \"normalized\": false},"
        "{\"id\": 2, \"content\": \"[SEP]\", \"special\": true, \"normalized\": false},"
        "{\"id\": 7, \"content\": \"<mask>\", \"lstrip\": true, \"rstrip\": true,"
        " \"normalized\": false},"
        "{\"id\": 8, \"content\": \"Foo\", \"normalized\": true},"
        "{\"id\": 9, \"content\": \"xx\", \"single_word\": true, \"normalized\": false}],"
        "\"normalizer\": {\"type\": \"BertNormalizer\", \"lowercase\": true},"
        "\"pre_tokenizer\": {\"type\": \"BertPreTokenizer\"},"
        "\"post_processor\": {\"type\": \"BertProcessing\", \"sep\": [\"[SEP]\", 2],"
        " \"cls\": [\"[CLS]\", 1]},"
        "\"model\": {\"type\": \"WordPiece\", \"unk_token\": \"[UNK]\","
        " \"continuing_subword_prefix\": \"@@\", \"max_input_chars_per_word\": 5,"
        " \"vocab\": {\"[UNK]\": 0, \"[CLS]\": 1, \"[SEP]\": 2, \"a\": 3, \"b\": 4,"
        " \"@@b\": 5, \"x\": 6}}}";
    struct jc_tokenizer *tk;

    (void)state;
    if (jc_tokenizer_from_json(&tk, json, sizeof json - 1, "added.json") < 0)
        fail_msg("%s", jc_errmsg());
    assert_int_equal(jc_tokenizer_size(tk), 10);
    assert_string_equal(jc_tokenizer_token(tk, 7), "<mask>");
    assert_string_equal(jc_tokenizer_token(tk, 9), "xx");
    expect_tokens(tk, "ab  <mask>  b", 13, 64, "[CLS] a @@b <mask> b [SEP]", 6);
    expect_tokens(tk, "a<mask>b", 8, 64, "[CLS] a <mask> b [SEP]", 5);
    /* matched after normalisation, so FOO and foo match too */
    expect_tokens(tk, "aFOOb foo", 9, 64, "[CLS] a Foo b Foo [SEP]", 6);
    /* single_word: only between non-word characters */
    expect_tokens(tk, "axx xx", 6, 64, "[CLS] [UNK] xx [SEP]", 4);
    /* word limit of 5 code points, and the whole word is [UNK] when a piece is missing */
    expect_tokens(tk, "abbbb abbbbb ac", 15, 64, "[CLS] a @@b @@b @@b @@b [UNK] [UNK] [SEP]", 9);
    jc_tokenizer_free(tk);
}

/*
 * HF's NFD has Unicode 9.0 data: later marks are starters that never decompose or move. The
 * golden vocabulary cannot show it (such words are [UNK] anyway), so this one has the pieces.
 */
static void test_unicode_versions(void **state)
{
    static const char json[] =
        "{\"pre_tokenizer\": {\"type\": \"BertPreTokenizer\"},"
        "\"normalizer\": {\"type\": \"BertNormalizer\"},"
        "\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"[UNK]\": 0, \"[CLS]\": 1,"
        " \"[SEP]\": 2, \"x\": 3, \"##\\u302e\": 4, \"##\\u1dfa\": 5, \"\\ud806\\udd38\": 6,"
        " \"\\ud806\\udd35\": 7, \"##\\ud806\\udd30\": 8, \"##\\ud838\\udc8f\": 9,"
        " \"##\\ud834\\udd65\": 10}}}";
    struct jc_tokenizer *tk;

    (void)state;
    if (jc_tokenizer_from_json(&tk, json, sizeof json - 1, "versions.json") < 0)
        fail_msg("%s", jc_errmsg());
    /* U+1DFA (14.0, class 218 today) stays after U+302E (class 224) */
    expect_tokens(tk, "x\xe3\x80\xae\xe1\xb7\xba", 7, 64,
                  "[CLS] x ##\xe3\x80\xae ##\xe1\xb7\xba [SEP]", 5);
    /* U+1E08F (15.0, class 230 today) likewise stays before U+302E */
    expect_tokens(tk, "x\xf0\x9e\x82\x8f\xe3\x80\xae", 8, 64,
                  "[CLS] x ##\xf0\x9e\x82\x8f ##\xe3\x80\xae [SEP]", 5);
    /* U+1D165 is not Mn, so it survives stripping, and its class 216 reorders it */
    expect_tokens(tk, "x\xe3\x80\xae\xf0\x9d\x85\xa5", 8, 64,
                  "[CLS] x ##\xf0\x9d\x85\xa5 ##\xe3\x80\xae [SEP]", 5);
    /* a run of 20 marks, sorted stably by class */
    {
        char text[128] = "x", want[512] = "[CLS] x";
        for (int i = 0; i < 10; i++)
            strcat(text, "\xe3\x80\xae\xf0\x9d\x85\xa5");
        for (int i = 0; i < 20; i++)
            strcat(want, i < 10 ? " ##\xf0\x9d\x85\xa5" : " ##\xe3\x80\xae");
        strcat(want, " [SEP]");
        expect_tokens(tk, text, strlen(text), 64, want, 23);
    }
    /* U+11938 decomposes only since 13.0 */
    expect_tokens(tk, "\xf0\x91\xa4\xb8", 4, 64, "[CLS] \xf0\x91\xa4\xb8 [SEP]", 3);
    expect_tokens(tk, "\xf0\x91\xa4\xb5\xf0\x91\xa4\xb0", 8, 64,
                  "[CLS] \xf0\x91\xa4\xb5 ##\xf0\x91\xa4\xb0 [SEP]", 4);
    jc_tokenizer_free(tk);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases_json),       cmocka_unit_test(test_cases_vocab_dir),
        cmocka_unit_test(test_cases_vocab_mem),  cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_limits_and_text),  cmocka_unit_test(test_utf8_repair),
        cmocka_unit_test(test_errors),           cmocka_unit_test(test_added_tokens),
        cmocka_unit_test(test_unicode_versions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
