/*
 * The --jsonl records (jc_record_parse) and strict base64 (jc_base64_decode). A record that
 * parses has what its kind promises; an id, when there is one, is JSON that parses again as
 * the id of a record; base64 that decodes encodes back to the same text, as a strict decoder
 * must.
 */
#include "fuzz.h"

#include "jclip.h"

#include <strings.h>

static void check_record(const struct jc_record *r, int rc)
{
    if (rc < 0) {
        FUZZ_CHECK(r->kind == 0 && !r->text && !r->image && !r->data);
    } else if (r->kind == JC_RECORD_TEXT) {
        FUZZ_CHECK(r->id && r->text && r->text[r->text_len] == '\0' && !r->image && !r->data);
    } else {
        FUZZ_CHECK(r->kind == JC_RECORD_IMAGE && r->id && r->image && !r->text);
        FUZZ_CHECK(r->data ? !strncasecmp(r->image, "data:", 5) : strlen(r->image) > 0);
    }
    if (!r->id)
        return;

    /* the id as echoed is a JSON value in its own right */
    static const char head[] = "{\"id\":", tail[] = ",\"text\":\"\"}";
    size_t n = strlen(r->id), len = sizeof head - 1 + n + sizeof tail - 1;
    char *line = malloc(len);
    struct jc_record again;
    FUZZ_CHECK(line != NULL);
    memcpy(line, head, sizeof head - 1);
    memcpy(line + sizeof head - 1, r->id, n);
    memcpy(line + sizeof head - 1 + n, tail, sizeof tail - 1);
    FUZZ_CHECK(jc_record_parse(line, len, &again) == 0 && !strcmp(again.id, r->id));
    jc_record_release(&again);
    free(line);
}

static void check_base64(const char *in, size_t len)
{
    /* exactly the room the header asks for */
    uint8_t *out = malloc(len >= 4 ? len / 4 * 3 : 1);
    size_t n;
    FUZZ_CHECK(out != NULL);
    if (jc_base64_decode(in, len, out, &n) == 0) {
        char *text = malloc(JC_BASE64_LEN(n) + 1);
        FUZZ_CHECK(text != NULL && n <= len / 4 * 3);
        FUZZ_CHECK(jc_base64_encode(out, n, text) == len && !memcmp(text, in, len));
        free(text);
    } else {
        FUZZ_CHECK(n == 0 && *jc_errmsg());
    }
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *line = (const char *)data;
    struct jc_record r;

    int rc = jc_record_parse(line, size, &r);
    FUZZ_CHECK(rc == 0 || rc == JC_EFORMAT || rc == JC_ENOMEM);
    check_record(&r, rc);
    jc_record_release(&r);

    check_base64(line, size);
    return 0;
}
