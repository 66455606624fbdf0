/*
 * Tokenizer loading from memory: the input as a tokenizer.json and as a vocab.txt. A
 * tokenizer that loads must tokenize a fixed text into ids it can name, [CLS] first and [SEP]
 * last, and cut to max_tokens as jc_tokenize promises.
 */
#include "fuzz.h"

#include "jclip.h"

/* Words, punctuation, accents, CJK, a control character and special tokens. */
static const char TEXT[] = "A photo of a CAT, naïve café [MASK] 東京 ##ing\x01 [CLS]x[SEP] "
                           "unaffable \xe2\x80\x8b\xf0\x9f\x98\x80 don't";

static void use(const struct jc_tokenizer *tk)
{
    int32_t *ids = NULL, *cut = NULL;
    size_t n, n_full, n_cut, n_cut_full;
    size_t vocab = jc_tokenizer_size(tk);

    FUZZ_CHECK(vocab > 0);
    int rc = jc_tokenize(tk, TEXT, sizeof TEXT - 1, 8192, &ids, &n, &n_full);
    FUZZ_CHECK(rc == 0 || rc == JC_ENOMEM);
    if (rc < 0)
        return;
    FUZZ_CHECK(n >= 2 && n == n_full);
    for (size_t i = 0; i < n; i++)
        FUZZ_CHECK(ids[i] >= 0 && (size_t)ids[i] < vocab && jc_tokenizer_token(tk, ids[i]));

    rc = jc_tokenize(tk, TEXT, sizeof TEXT - 1, 4, &cut, &n_cut, &n_cut_full);
    FUZZ_CHECK(rc == 0 || rc == JC_ENOMEM);
    if (rc == 0) {
        FUZZ_CHECK(n_cut_full == n_full && n_cut == (n < 4 ? n : 4));
        FUZZ_CHECK(!memcmp(cut, ids, (n_cut - 1) * sizeof *ids) && cut[n_cut - 1] == ids[n - 1]);
    }
    FUZZ_CHECK(jc_tokenizer_token(tk, -1) == NULL);
    FUZZ_CHECK(jc_tokenizer_token(tk, (int32_t)vocab) == NULL || vocab > INT32_MAX);
    free(cut);
    free(ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    struct jc_tokenizer *tk = NULL;

    int rc = jc_tokenizer_from_json(&tk, buf, size, "tokenizer.json");
    FUZZ_CHECK(rc == 0 || rc == JC_EFORMAT || rc == JC_ENOMEM);
    FUZZ_CHECK((rc == 0) == (tk != NULL));
    if (tk)
        use(tk);
    jc_tokenizer_free(tk);

    tk = NULL;
    rc = jc_tokenizer_from_vocab(&tk, buf, size, "vocab.txt");
    FUZZ_CHECK(rc == 0 || rc == JC_EFORMAT || rc == JC_ENOMEM);
    FUZZ_CHECK((rc == 0) == (tk != NULL));
    if (tk)
        use(tk);
    jc_tokenizer_free(tk);
    return 0;
}
