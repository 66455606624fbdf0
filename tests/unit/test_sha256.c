/* SHA-256 against the FIPS 180-4 / NIST example vectors, whole and fed in pieces. */
#include "testutil.h"

#include "sha256.h"

#include <stdlib.h>
#include <string.h>

static void hex_of(const void *data, size_t len, char out[65])
{
    struct jc_sha256 s;
    uint8_t d[32];
    jc_sha256_init(&s);
    jc_sha256_update(&s, data, len);
    jc_sha256_final(&s, d);
    jc_sha256_hex(d, out);
}

static void test_nist_vectors(void **state)
{
    static const struct {
        const char *msg, *hex;
    } v[] = {
        {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
        {"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqr"
         "lmnopqrsmnopqrstnopqrstu",
         "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"},
    };
    char got[65];
    (void)state;
    for (size_t i = 0; i < sizeof v / sizeof *v; i++) {
        hex_of(v[i].msg, strlen(v[i].msg), got);
        assert_string_equal(got, v[i].hex);
    }
}

static void test_million_a(void **state)
{
    size_t n = 1000000;
    char *a = malloc(n), got[65];
    (void)state;
    assert_non_null(a);
    memset(a, 'a', n);
    hex_of(a, n, got);
    assert_string_equal(got, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    free(a);
}

/*
 * Every length up to 300 bytes (all padding cases: the 56-byte message of NIST vector 3 is
 * the first that needs two padding blocks), fed whole and in uneven pieces.
 */
static void test_pieces(void **state)
{
    uint8_t buf[300], d[32];
    char whole[65], pieces[65];
    (void)state;
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (uint8_t)(i * 7 + 3);
    for (size_t len = 0; len <= sizeof buf; len++) {
        hex_of(buf, len, whole);
        for (size_t step = 1; step <= 65; step += 16) {
            struct jc_sha256 s;
            jc_sha256_init(&s);
            for (size_t o = 0; o < len; o += step)
                jc_sha256_update(&s, buf + o, len - o < step ? len - o : step);
            jc_sha256_final(&s, d);
            jc_sha256_hex(d, pieces);
            assert_string_equal(pieces, whole);
        }
    }
    /* the padding edges against digests from Python's hashlib */
    static const struct {
        size_t len;
        const char *hex;
    } edge[] = {
        {55, "e7313d333c272e639f790978283f9eb392e843d0f29b7016828bb1daa4aac70b"},
        {56, "4324d65f3c103567f5589c710bc08f8523f929a9272e3af36fc968e52abc6c27"},
        {63, "81c80242132f230c3bd41b3e63bbcff16107339549214a99614ff26664625055"},
        {64, "39e3d7b6b5d075d37d053ad89b24b41bef4f3c29760c84447cab3f3be1882241"},
        {65, "aacca6ff74fdbb296d165a45cecfa04e5127bc008770fbbdd48006f2d2fae95e"},
        {119, "9ce7368e4daf32341631b492e80359dc9f594b48453cd0dd5bf0b19279cc177e"},
        {120, "7836b787757e95e58b3ca5aec90b1b004e8deba1e50e9675af9cabf1a13a04b5"},
        {300, "04773f8726c81cafcfa1a09a82664b98b00d2021031a1715bca1154f2dad3472"},
    };
    for (size_t i = 0; i < sizeof edge / sizeof *edge; i++) {
        hex_of(buf, edge[i].len, whole);
        assert_string_equal(whole, edge[i].hex);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nist_vectors),
        cmocka_unit_test(test_million_a),
        cmocka_unit_test(test_pieces),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
