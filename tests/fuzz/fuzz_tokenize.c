/*
 * Tokenizing arbitrary bytes with the real jina-clip-v1 tokenizer, and jc_utf8_repair. Runs
 * from the top of the tree (the tokenizer is tests/golden/tokenizer/tokenizer.json).
 *
 * Checked: the ids of a text cut to 16 tokens are those of the whole text cut as jc_tokenize
 * promises; invalid UTF-8 tokenizes as its repaired form does; repair leaves valid UTF-8 that
 * a second repair does not change.
 */
#include "fuzz.h"

#include "jclip.h"

#define TOKENIZER_DIR "tests/golden/tokenizer"

static const struct jc_tokenizer *tokenizer(void)
{
    static struct jc_tokenizer *tk;
    if (!tk && jc_tokenizer_load(&tk, TOKENIZER_DIR) < 0) {
        fprintf(stderr, "fuzz_tokenize: %s (run from the top of the tree)\n", jc_errmsg());
        abort();
    }
    return tk;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct jc_tokenizer *tk = tokenizer();
    const char *text = (const char *)data;
    int32_t *all = NULL, *cut = NULL, *fixed_ids = NULL;
    size_t n_all, full_all, n_cut, full_cut, n_fixed, full_fixed;
    char *fixed = NULL, *again = NULL;
    size_t fixed_len, again_len;

    int rc = jc_tokenize(tk, text, size, 8192, &all, &n_all, &full_all);
    FUZZ_CHECK(rc == 0 || rc == JC_ENOMEM);
    if (rc < 0)
        goto out;
    FUZZ_CHECK(n_all >= 2 && n_all <= 8192 && n_all == (full_all < 8192 ? full_all : 8192));
    for (size_t i = 0; i < n_all; i++)
        FUZZ_CHECK(jc_tokenizer_token(tk, all[i]) != NULL);

    rc = jc_tokenize(tk, text, size, 16, &cut, &n_cut, &full_cut);
    FUZZ_CHECK(rc == 0 || rc == JC_ENOMEM);
    if (rc < 0)
        goto out;
    FUZZ_CHECK(full_cut == full_all && n_cut == (full_cut < 16 ? full_cut : 16));
    FUZZ_CHECK(!memcmp(cut, all, (n_cut - 1) * sizeof *cut) && cut[n_cut - 1] == all[n_all - 1]);

    long bad = jc_utf8_repair(text, size, &fixed, &fixed_len);
    FUZZ_CHECK(bad >= 0 || bad == JC_ENOMEM);
    if (bad <= 0) {
        FUZZ_CHECK(fixed == NULL);
        goto out;
    }
    FUZZ_CHECK(fixed != NULL && fixed_len >= (size_t)bad * 3);
    FUZZ_CHECK(jc_utf8_repair(fixed, fixed_len, &again, &again_len) == 0 && again == NULL);

    rc = jc_tokenize(tk, fixed, fixed_len, 8192, &fixed_ids, &n_fixed, &full_fixed);
    FUZZ_CHECK(rc == 0 || rc == JC_ENOMEM);
    if (rc == 0)
        FUZZ_CHECK(full_fixed == full_all && n_fixed == n_all &&
                   !memcmp(fixed_ids, all, n_all * sizeof *all));
out:
    free(fixed_ids);
    free(again);
    free(fixed);
    free(cut);
    free(all);
    return 0;
}
