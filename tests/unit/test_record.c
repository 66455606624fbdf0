/*
 * The --jsonl records and base64: every kind of bad record with its message and its id, ids
 * of every JSON type echoed as written, strings unescaped, data URIs decoded, RFC 4648 test
 * vectors and round trips, and a brute-force pass (every prefix, random mutations) that must
 * neither crash nor read out of bounds.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Parses a NUL-terminated line, from an exact-size copy so an overread shows under ASan. */
static int parse(const char *line, struct jc_record *r)
{
    size_t n = strlen(line);
    char *copy = malloc(n ? n : 1);
    assert_non_null(copy);
    memcpy(copy, line, n);
    int rc = jc_record_parse(copy, n, r);
    free(copy);
    return rc;
}

/* A bad line: the code, the message and the id echoed (NULL: none). */
static void bad(const char *line, const char *msg, const char *id)
{
    struct jc_record r;
    int rc = parse(line, &r);
    if (rc != JC_EFORMAT || strcmp(jc_errmsg(), msg) || (id ? !r.id || strcmp(r.id, id) : !!r.id))
        fail_msg("line %s\n  rc %d, message '%s', id %s\n  wanted message '%s', id %s", line, rc,
                 jc_errmsg(), r.id ? r.id : "NULL", msg, id ? id : "NULL");
    assert_int_equal(r.kind, 0);
    assert_null(r.text);
    assert_null(r.image);
    assert_null(r.data);
    jc_record_release(&r);
}

/* A good text record: its id and text. */
static void good_text(const char *line, const char *id, const char *text, size_t len)
{
    struct jc_record r;
    int rc = parse(line, &r);
    if (rc != 0)
        fail_msg("line %s: %s", line, jc_errmsg());
    assert_int_equal(r.kind, JC_RECORD_TEXT);
    assert_string_equal(r.id, id);
    assert_int_equal(r.text_len, len);
    assert_memory_equal(r.text, text, len);
    assert_int_equal(r.text[len], '\0');
    assert_null(r.image);
    assert_null(r.data);
    jc_record_release(&r);
}

/* ---- bad records ------------------------------------------------------------------------- */

static void test_malformed(void **state)
{
    (void)state;
    bad("", "an empty line, not a JSON object", NULL);
    bad("  \t\r", "an empty line, not a JSON object", NULL);
    bad("garbage", "malformed JSON at column 1: an unexpected 'g'", NULL);
    bad("{\"id\":1,\"text\":\"a\"", "malformed JSON at column 19: ',' or '}' expected", NULL);
    bad("{\"id\":1,\"text\":\"a}",
        "malformed JSON at column 16: a string without its closing quote", NULL);
    bad("{\"id\":1,}", "malformed JSON at column 9: a key (a string) expected", NULL);
    bad("{'id':1}", "malformed JSON at column 2: a key (a string) expected", NULL);
    bad("{\"id\" 1}", "malformed JSON at column 7: ':' expected after a key", NULL);
    bad("{\"id\":01,\"text\":\"a\"}", "malformed JSON at column 7: a number with a leading zero",
        NULL);
    bad("{\"id\":1.,\"text\":\"a\"}",
        "malformed JSON at column 7: an invalid number (no digit after '.')", NULL);
    bad("{\"id\":1e,\"text\":\"a\"}",
        "malformed JSON at column 7: an invalid number (no digit in the exponent)", NULL);
    bad("{\"id\":-,\"text\":\"a\"}", "malformed JSON at column 7: an invalid number", NULL);
    bad("{\"id\":+1,\"text\":\"a\"}", "malformed JSON at column 7: an unexpected '+'", NULL);
    bad("{\"id\":NaN,\"text\":\"a\"}", "malformed JSON at column 7: an unexpected 'N'", NULL);
    bad("{\"id\":tru,\"text\":\"a\"}", "malformed JSON at column 7: an unexpected 't'", NULL);
    bad("{\"id\":1,\"text\":\"a\"} x", "malformed JSON at column 21: more after the JSON value",
        NULL);
    bad("{\"id\":1,\"text\":\"a\"}{}", "malformed JSON at column 20: more after the JSON value",
        NULL);
    bad("{\"id\":1,\"text\":\"a\tb\"}",
        "malformed JSON at column 18: a control character in a string (it must be escaped)", NULL);
    bad("{\"id\":1,\"text\":\"a\\x\"}",
        "malformed JSON at column 18: an invalid escape in a string", NULL);
    bad("{\"id\":1,\"text\":\"\\u12G4\"}",
        "malformed JSON at column 17: a \\u escape without four hex digits", NULL);
    bad("{\"id\":1,\"text\":\"\\u12",
        "malformed JSON at column 17: a \\u escape without four hex "
        "digits",
        NULL);
    bad("{\"id\":1,\"text\":\"\xff\"}", "malformed JSON at column 17: invalid UTF-8 in a string",
        NULL);
    bad("{\"id\":1,\"text\":\"\xc0\xaf\"}",
        "malformed JSON at column 17: invalid UTF-8 in a string", NULL); /* overlong '/' */
    bad("{\"id\":1,\"text\":\"\xed\xa0\x80\"}",
        "malformed JSON at column 17: invalid UTF-8 in a string", NULL); /* a surrogate */
    bad("{\"id\":1,\"text\":\"\xe2\x82\"}",
        "malformed JSON at column 17: invalid UTF-8 in a string", NULL); /* cut short */
    bad("{\"id\":[1,2,],\"text\":\"a\"}", "malformed JSON at column 12: an unexpected ']'", NULL);
    bad("{\"id\":1,\"text\":\"a\"\x01}", "malformed JSON at column 19: ',' or '}' expected", NULL);
    bad("\xef\xbb\xbf{\"id\":1,\"text\":\"a\"}",
        "malformed JSON at column 1: an unexpected byte 0xef", NULL); /* no byte-order mark */
    bad("{", "malformed JSON at column 2: a key (a string) expected", NULL);
    bad("{\"id\":", "malformed JSON at column 7: a value expected at the end of the line", NULL);
}

static void test_depth(void **state)
{
    char line[2048];
    (void)state;
    /* the record and 255 arrays in its id, 256 levels, are accepted; 257 are not */
    for (int depth = 255; depth <= 256; depth++) {
        int n = snprintf(line, sizeof line, "{\"text\":\"a\",\"id\":");
        for (int i = 0; i < depth; i++)
            line[n++] = '[';
        for (int i = 0; i < depth; i++)
            line[n++] = ']';
        line[n++] = '}';
        line[n] = '\0';
        struct jc_record r;
        int rc = parse(line, &r);
        if (depth == 255) {
            assert_int_equal(rc, 0);
            assert_int_equal(strlen(r.id), 2 * 255);
        } else {
            assert_int_equal(rc, JC_EFORMAT);
            assert_non_null(strstr(jc_errmsg(), "nesting deeper than 256 levels"));
        }
        jc_record_release(&r);
    }
    /* far deeper: refused at the limit, not after a million levels of recursion */
    static char deep[1 << 20];
    memset(deep, '[', sizeof deep - 1);
    struct jc_record r;
    assert_int_equal(jc_record_parse(deep, sizeof deep - 1, &r), JC_EFORMAT);
    jc_record_release(&r);
}

static void test_not_object(void **state)
{
    (void)state;
    bad("[1]", "not a JSON object but an array", NULL);
    bad(" \"text\" ", "not a JSON object but a string", NULL);
    bad("42", "not a JSON object but a number", NULL);
    bad("-1.5e3", "not a JSON object but a number", NULL);
    bad("true", "not a JSON object but a boolean", NULL);
    bad("false", "not a JSON object but a boolean", NULL);
    bad("null", "not a JSON object but null", NULL);
}

static void test_members(void **state)
{
    (void)state;
    bad("{}", "missing \"id\"", NULL);
    bad("{\"text\":\"a\"}", "missing \"id\"", NULL);
    bad("{\"ID\":1,\"text\":\"a\"}",
        "unknown key \"ID\" (a record has \"id\" and \"text\" or "
        "\"image\")",
        NULL);
    bad("{\"id\":7,\"text\":\"a\",\"lang\":\"en\"}",
        "unknown key \"lang\" (a record has \"id\" and \"text\" or \"image\")", "7");
    bad("{\"id\":7,\"txt\":\"a\"}",
        "unknown key \"txt\" (a record has \"id\" and \"text\" or "
        "\"image\")",
        "7");
    bad("{\"id\":\"a\",\"text\":\"a\",\"text\":\"b\"}", "duplicate key \"text\"", "\"a\"");
    bad("{\"id\":1,\"id\":2,\"text\":\"a\"}", "duplicate key \"id\"", "1");
    /* keys are compared unescaped: "\u0069d" is "id", and so a duplicate */
    bad("{\"id\":1,\"\\u0069d\":2,\"text\":\"a\"}", "duplicate key \"\\u0069d\"", "1");
    bad("{\"id\":1,\"id\\u0000\":2,\"text\":\"a\"}",
        "unknown key \"id\\u0000\" (a record has \"id\" and \"text\" or \"image\")", "1");
    /* a long key is cut short in the message */
    bad("{\"id\":1,"
        "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        "aaaaaaaaaa\":1}",
        "unknown key \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...\" (a "
        "record has \"id\" and \"text\" or \"image\")",
        "1");
    bad("{\"id\":1,\"text\":\"a\",\"image\":\"b.png\"}",
        "both \"text\" and \"image\": a record has one of them", "1");
    bad("{\"id\":1}", "neither \"text\" nor \"image\"", "1");
    bad("{\"id\":null}", "neither \"text\" nor \"image\"", "null");
    bad("{\"id\":1,\"text\":5}", "\"text\" is a number, not a string", "1");
    bad("{\"id\":1,\"text\":null}", "\"text\" is null, not a string", "1");
    bad("{\"id\":1,\"text\":[\"a\"]}", "\"text\" is an array, not a string", "1");
    bad("{\"id\":1,\"text\":{\"a\":1}}", "\"text\" is an object, not a string", "1");
    bad("{\"id\":1,\"text\":true}", "\"text\" is a boolean, not a string", "1");
    bad("{\"id\":1,\"image\":3}", "\"image\" is a number, not a string", "1");
}

static void test_images(void **state)
{
    struct jc_record r;
    (void)state;

    assert_int_equal(parse("{\"image\":\"photos/a b.png\",\"id\":\"p\"}", &r), 0);
    assert_int_equal(r.kind, JC_RECORD_IMAGE);
    assert_string_equal(r.image, "photos/a b.png");
    assert_null(r.data);
    assert_string_equal(r.id, "\"p\"");
    jc_record_release(&r);

    /* a JSON-escaped path; "\/" is '/' */
    assert_int_equal(parse("{\"id\":1,\"image\":\"dir\\/caf\\u00e9.png\"}", &r), 0);
    assert_string_equal(r.image, "dir/caf\xc3\xa9.png");
    jc_record_release(&r);

    assert_int_equal(parse("{\"id\":1,\"image\":\"data:image/png;base64,iVBORw0KGgo=\"}", &r), 0);
    assert_int_equal(r.kind, JC_RECORD_IMAGE);
    assert_string_equal(r.image, "data:image/png;base64,");
    assert_int_equal(r.data_len, 8);
    assert_memory_equal(r.data, "\x89PNG\r\n\x1a\n", 8);
    jc_record_release(&r);

    /* the scheme, type and base64 marker in any case; parameters before ;base64 */
    assert_int_equal(parse("{\"id\":1,\"image\":\"DATA:Image/JPEG;name=x.jpg;BASE64,/9j/\"}", &r),
                     0);
    assert_int_equal(r.data_len, 3);
    assert_memory_equal(r.data, "\xff\xd8\xff", 3);
    jc_record_release(&r);

    /* no data: the decoder says it is empty */
    assert_int_equal(parse("{\"id\":1,\"image\":\"data:image/png;base64,\"}", &r), 0);
    assert_int_equal(r.data_len, 0);
    assert_non_null(r.data);
    jc_record_release(&r);

    bad("{\"id\":1,\"image\":\"\"}", "\"image\" is empty: a path or a data URI expected", "1");
    bad("{\"id\":1,\"image\":\"a\\u0000b.png\"}", "\"image\" is a path with a NUL character", "1");
    bad("{\"id\":1,\"image\":\"data:image/png;base64\"}", "\"image\" is a data URI without ','",
        "1");
    bad("{\"id\":1,\"image\":\"data:text/plain;base64,QQ==\"}",
        "\"image\" is a data URI of type 'text/plain', not image/*", "1");
    bad("{\"id\":1,\"image\":\"data:;base64,QQ==\"}",
        "\"image\" is a data URI of type '', not image/*", "1");
    bad("{\"id\":1,\"image\":\"data:image/;base64,QQ==\"}",
        "\"image\" is a data URI of type 'image/', not image/*", "1");
    bad("{\"id\":1,\"image\":\"data:image/png,%89PNG\"}",
        "\"image\" is a data URI without ';base64' (data:image/TYPE;base64,DATA)", "1");
    bad("{\"id\":1,\"image\":\"data:image/png;base64,iVBORw0KGgo\"}",
        "\"image\" data URI: invalid base64: 11 characters, not a multiple of 4 (padding is "
        "required)",
        "1");
    bad("{\"id\":1,\"image\":\"data:image/png;base64,iVBO%w0KGgo=\"}",
        "\"image\" data URI: invalid base64: '%' at offset 4 is not in the alphabet", "1");
}

/* ---- good records ------------------------------------------------------------------------- */

static void test_ids(void **state)
{
    static const char *const cases[][2] = {
        {"42", "42"},
        {"-0", "-0"},
        {"1.0", "1.0"},
        {"1.50e+10", "1.50e+10"},
        {"1E-5", "1E-5"},
        {"12345678901234567890123", "12345678901234567890123"},
        {"\"a\"", "\"a\""},
        {"\"\"", "\"\""},
        {"\" spaces  kept \"", "\" spaces  kept \""},
        {"\"q\\\"b\\\\s\\/n\\n\\t\\u00e9\\ud83d\\ude00\"",
         "\"q\\\"b\\\\s\\/n\\n\\t\\u00e9\\ud83d\\ude00\""},
        {"\"caf\xc3\xa9 \xf0\x9f\x98\x80\"", "\"caf\xc3\xa9 \xf0\x9f\x98\x80\""},
        {"true", "true"},
        {"false", "false"},
        {"null", "null"},
        {"[]", "[]"},
        {"{}", "{}"},
        {"[ 1 , \"a b\" , [ ] , { } ]", "[1,\"a b\",[],{}]"},
        {"{ \"k\" : { \"n\" :\t[ 1 ,2 ] } , \"s\" : \"x , y\" }",
         "{\"k\":{\"n\":[1,2]},\"s\":\"x , y\"}"},
        {"\"\\\\\"", "\"\\\\\""}, /* a string ending in an escaped backslash */
    };
    char line[512];
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        snprintf(line, sizeof line, "{\"id\": %s, \"text\": \"t\"}", cases[i][0]);
        good_text(line, cases[i][1], "t", 1);
        /* the id also comes back from a bad record */
        snprintf(line, sizeof line, "{\"text\": 1, \"id\" :%s }", cases[i][0]);
        bad(line, "\"text\" is a number, not a string", cases[i][1]);
    }
}

static void test_texts(void **state)
{
    (void)state;
    good_text("{\"id\":1,\"text\":\"a photo of a cat\"}", "1", "a photo of a cat", 16);
    good_text("  {\"text\":\"\",\"id\":1}\r", "1", "", 0);
    good_text("{\"id\":1,\"text\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"}", "1", "\"\\/\b\f\n\r\t", 8);
    good_text("{\"id\":1,\"text\":\"\\u0041\\u00e9\\u20AC\\ud83d\\ude00\"}", "1",
              "A\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 10);
    /* a lone surrogate, high or low, becomes U+FFFD */
    good_text("{\"id\":1,\"text\":\"a\\ud83db\"}", "1",
              "a\xef\xbf\xbd"
              "b",
              5);
    good_text("{\"id\":1,\"text\":\"\\ude00\\ud83d\"}", "1", "\xef\xbf\xbd\xef\xbf\xbd", 6);
    good_text("{\"id\":1,\"text\":\"\\ud83d\\u0041\"}", "1",
              "\xef\xbf\xbd"
              "A",
              4);
    /* NUL inside a text is kept, and counted */
    good_text("{\"id\":1,\"text\":\"a\\u0000b\"}", "1", "a\0b", 3);
    /* raw UTF-8 of every length */
    good_text("{\"id\":1,\"text\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf\"}", "1",
              "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf", 13);
}

static void test_null_line(void **state)
{
    struct jc_record r;
    (void)state;
    assert_int_equal(jc_record_parse(NULL, 0, &r), JC_EFORMAT);
    assert_string_equal(jc_errmsg(), "an empty line, not a JSON object");
    jc_record_release(&r);
    assert_int_equal(jc_record_parse(NULL, 3, &r), JC_EINVAL);
    jc_record_release(&r);
}

/* ---- base64 -------------------------------------------------------------------------------- */

static void test_base64_vectors(void **state)
{
    /* RFC 4648 section 10 */
    static const char *const v[][2] = {
        {"", ""},
        {"f", "Zg=="},
        {"fo", "Zm8="},
        {"foo", "Zm9v"},
        {"foob", "Zm9vYg=="},
        {"fooba", "Zm9vYmE="},
        {"foobar", "Zm9vYmFy"},
    };
    char enc[64];
    uint8_t dec[64];
    size_t n;
    (void)state;
    for (size_t i = 0; i < sizeof v / sizeof *v; i++) {
        size_t len = strlen(v[i][0]);
        assert_int_equal(jc_base64_encode(v[i][0], len, enc), strlen(v[i][1]));
        assert_string_equal(enc, v[i][1]);
        assert_int_equal(JC_BASE64_LEN(len), strlen(v[i][1]));
        assert_int_equal(jc_base64_decode(v[i][1], strlen(v[i][1]), dec, &n), 0);
        assert_int_equal(n, len);
        assert_memory_equal(dec, v[i][0], len);
    }
    /* every value of a byte, and both extra characters */
    assert_int_equal(jc_base64_encode("\xfb\xff\xbf", 3, enc), 4);
    assert_string_equal(enc, "+/+/");
}

static void test_base64_round_trips(void **state)
{
    uint8_t in[300], out[300];
    char enc[JC_BASE64_LEN(sizeof in) + 1];
    size_t n;
    (void)state;
    srand(7);
    for (size_t len = 0; len <= sizeof in; len++) {
        for (size_t i = 0; i < len; i++)
            in[i] = (uint8_t)rand();
        size_t e = jc_base64_encode(in, len, enc);
        assert_int_equal(e, JC_BASE64_LEN(len));
        assert_int_equal(strlen(enc), e);
        assert_int_equal(jc_base64_decode(enc, e, out, &n), 0);
        assert_int_equal(n, len);
        assert_memory_equal(out, in, len);
    }
}

static void base64_bad(const char *in, const char *msg)
{
    uint8_t out[64];
    size_t n = 99;
    assert_int_equal(jc_base64_decode(in, strlen(in), out, &n), JC_EFORMAT);
    assert_string_equal(jc_errmsg(), msg);
    assert_int_equal(n, 0);
}

static void test_base64_errors(void **state)
{
    (void)state;
    base64_bad("Zg", "invalid base64: 2 characters, not a multiple of 4 (padding is required)");
    base64_bad("Zm9vY", "invalid base64: 5 characters, not a multiple of 4 (padding is required)");
    base64_bad("Zm9v\nYmFy",
               "invalid base64: 9 characters, not a multiple of 4 (padding is required)");
    base64_bad("Zm9 YmFy", "invalid base64: byte 0x20 at offset 3 is not in the alphabet");
    base64_bad("Zm9-YmFy", "invalid base64: '-' at offset 3 is not in the alphabet");
    base64_bad("Zm9_YmFy", "invalid base64: '_' at offset 3 is not in the alphabet");
    base64_bad("Zg==Zg==", "invalid base64: padding '=' at offset 2 before the end");
    base64_bad("Z===", "invalid base64: padding '=' at offset 1 before the end");
    base64_bad("====", "invalid base64: padding '=' at offset 0 before the end");
    base64_bad("Zm=v", "invalid base64: padding '=' at offset 2 before the end");
    /* RFC 4648 3.5: the unused bits of the last character must be zero */
    base64_bad("Zh==", "invalid base64: the last character at offset 1 has nonzero unused bits");
    base64_bad("Zm9=", "invalid base64: the last character at offset 2 has nonzero unused bits");
}

/* ---- robustness ------------------------------------------------------------------------------ */

static void parse_any(const char *buf, size_t n)
{
    char *copy = malloc(n ? n : 1);
    struct jc_record r;
    assert_non_null(copy);
    memcpy(copy, buf, n);
    int rc = jc_record_parse(copy, n, &r);
    assert_true(rc == 0 || rc == JC_EFORMAT);
    if (rc == 0)
        assert_true(r.kind == JC_RECORD_TEXT || r.kind == JC_RECORD_IMAGE);
    jc_record_release(&r);
    free(copy);
}

static void test_never_crashes(void **state)
{
    static const char *const seeds[] = {
        "{\"id\":{\"a\":[1,-2.5e-3,true,false,null,\"x\\u00e9\"]},\"text\":\"a\\ud83d\\ude00\\n\"}",
        "{\"id\":\"x\",\"image\":\"data:image/png;base64,iVBORw0KGgoAAAANSUhEUg==\"}",
        "{\"id\":1,\"image\":\"photos/coffee.png\"}",
    };
    const char alphabet[] = "{}[]\":,\\u0123456789abcdefABCDEF-+.eE tnrl=/;\x00\x80\xc3\xa9\xff";
    char buf[256];
    (void)state;
    srand(11);
    for (size_t s = 0; s < sizeof seeds / sizeof *seeds; s++) {
        size_t len = strlen(seeds[s]);
        /* every prefix */
        for (size_t n = 0; n <= len; n++)
            parse_any(seeds[s], n);
        /* random mutations: replace, insert, delete */
        for (int iter = 0; iter < 20000; iter++) {
            size_t n = len;
            memcpy(buf, seeds[s], len);
            for (int k = 0; k < 1 + rand() % 4; k++) {
                size_t at = n ? (size_t)rand() % n : 0;
                char c = alphabet[rand() % (sizeof alphabet - 1)];
                switch (rand() % 3) {
                case 0:
                    if (n)
                        buf[at] = c;
                    break;
                case 1:
                    if (n + 1 < sizeof buf) {
                        memmove(buf + at + 1, buf + at, n - at);
                        buf[at] = c;
                        n++;
                    }
                    break;
                default:
                    if (n) {
                        memmove(buf + at, buf + at + 1, n - at - 1);
                        n--;
                    }
                    break;
                }
            }
            parse_any(buf, n);
        }
    }
    /* random bytes */
    for (int iter = 0; iter < 20000; iter++) {
        size_t n = (size_t)rand() % 64;
        for (size_t i = 0; i < n; i++)
            buf[i] = alphabet[rand() % (sizeof alphabet - 1)];
        parse_any(buf, n);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_malformed),      cmocka_unit_test(test_depth),
        cmocka_unit_test(test_not_object),     cmocka_unit_test(test_members),
        cmocka_unit_test(test_images),         cmocka_unit_test(test_ids),
        cmocka_unit_test(test_texts),          cmocka_unit_test(test_null_line),
        cmocka_unit_test(test_base64_vectors), cmocka_unit_test(test_base64_round_trips),
        cmocka_unit_test(test_base64_errors),  cmocka_unit_test(test_never_crashes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
