/*
 * The safetensors header parser and tensor table. The input is a whole file image: an 8-byte
 * little-endian header length, the JSON header, then the data. A table that parses must keep
 * every promise of safetensors.h: byte ranges inside the data and of the right size, names
 * sorted and unique, no overlaps; then every float tensor is read as jc_st_get reads a
 * mapped file.
 */
#include "fuzz.h"

#include "jclip.h"
#include "safetensors.h"

static const int WIDTH[] = {[JC_F32] = 4, [JC_F16] = 2, [JC_BF16] = 2};

static void check_table(struct jc_st *st, const uint8_t *file, size_t size, uint64_t data_len)
{
    static const char *const names[] = {"", "logit_scale", "a", "\xff", "text_model.embeddings"};

    for (size_t i = 0; i < st->n; i++) {
        const struct jc_tensor *t = &st->t[i];
        FUZZ_CHECK(t->begin <= t->end && t->end <= data_len);
        FUZZ_CHECK(t->ndim >= 0 && t->ndim <= JC_ST_MAX_DIMS);
        if (t->dtype != JC_OTHER)
            FUZZ_CHECK(t->end - t->begin == (uint64_t)t->nelem * (uint64_t)WIDTH[t->dtype]);
        if (i)
            FUZZ_CHECK(strcmp(st->t[i - 1].name, t->name) < 0);
        FUZZ_CHECK(jc_st_find(st, t->name) == t);
    }
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        const struct jc_tensor *t = jc_st_find(st, names[i]);
        FUZZ_CHECK(!t || !strcmp(t->name, names[i]));
    }

    /* As if mapped: jc_st_get reads the data in place or converts it. */
    st->map = file;
    st->file_size = size;
    for (size_t i = 0; i < st->n; i++) {
        const struct jc_tensor *t = &st->t[i];
        const float *f = NULL;
        volatile float sum = 0;
        int rc = jc_st_get(st, t->name, t->ndim, t->shape, &f);
        FUZZ_CHECK(t->dtype == JC_OTHER ? rc == JC_ESHAPE : rc == 0 || rc == JC_ENOMEM);
        for (int64_t k = 0; rc == 0 && k < t->nelem; k++)
            sum += f[k];
        (void)sum;
        char shape[64];
        jc_shape_str(shape, sizeof shape, t->ndim, t->shape);
    }
    st->map = NULL; /* not ours to unmap */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct jc_st st;
    uint64_t hlen = 0;

    if (size < 8)
        return 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | data[i];
    /* as jc_st_open checks it */
    if (hlen > size - 8)
        return 0;

    memset(&st, 0, sizeof st);
    st.fd = -1;
    st.data_start = 8 + hlen;
    char *json = fuzz_dup(data + 8, (size_t)hlen);
    uint64_t data_len = size - 8 - hlen;
    int rc = jc_st_parse_header(&st, json, (size_t)hlen, data_len);
    free(json);
    FUZZ_CHECK(rc == 0 || rc == JC_EFORMAT || rc == JC_ENOMEM);
    FUZZ_CHECK(rc == 0 || *jc_errmsg());
    if (rc == 0)
        check_table(&st, data, size, data_len);
    jc_st_release(&st);
    return 0;
}
