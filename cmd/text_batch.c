/*
 * Batches of texts for the text tower: inputs are tokenized as they arrive and run when the
 * batch is full (in texts or tokens) or when the caller flushes, e.g. because stdin is idle.
 */
#include "cmd.h"

#include <stdlib.h>
#include <string.h>

/* Enough tokens per batch to keep the GEMMs busy, few enough to bound the memory. */
#define TOKEN_BUDGET 8192

bool text_batch_init(struct text_batch *b, struct jc_model *m, size_t size, size_t max_tokens,
                     unsigned flags, text_batch_fn done, void *ctx)
{
    memset(b, 0, sizeof *b);
    b->m = m;
    b->tk = jc_model_tokenizer(m);
    b->dim = (size_t)jc_model_dim(m);
    b->size = size;
    b->max_tokens = max_tokens;
    b->flags = flags;
    b->done = done;
    b->ctx = ctx;
    b->in = calloc(size, sizeof *b->in);
    b->ids = calloc(size, sizeof *b->ids);
    b->lens = calloc(size, sizeof *b->lens);
    b->vecs = malloc(size * b->dim * sizeof *b->vecs);
    if (!b->in || !b->ids || !b->lens || !b->vecs) {
        error("out of memory for a batch of %zu texts", size);
        text_batch_release(b);
        return false;
    }
    return true;
}

static void clear(struct text_batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        free(b->in[i].text);
        free(b->ids[i]);
    }
    b->n = 0;
    b->tokens = 0;
}

void text_batch_release(struct text_batch *b)
{
    if (b->in)
        clear(b);
    free(b->in);
    free(b->ids);
    free(b->lens);
    free(b->vecs);
    memset(b, 0, sizeof *b);
}

bool text_batch_flush(void *ctx)
{
    struct text_batch *b = ctx;
    bool ok = true;
    if (!b->n)
        return true;
    if (jc_embed_texts(b->m, (const int32_t *const *)b->ids, b->lens, b->n, b->flags, b->vecs) <
        0) {
        error("%s", jc_errmsg());
        ok = false;
    }
    ok = ok && b->done(b->ctx, b->in, b->vecs, b->n);
    clear(b);
    return ok;
}

bool text_batch_pending(void *ctx)
{
    return ((struct text_batch *)ctx)->n > 0;
}

bool text_batch_add(void *ctx, struct text_input *in)
{
    struct text_batch *b = ctx;
    int32_t *ids;
    size_t n, full;

    if (jc_tokenize(b->tk, in->text, in->len, b->max_tokens, &ids, &n, &full) < 0) {
        error("%s: %s", in->name, jc_errmsg());
        free(in->text);
        return false;
    }
    if (full > n)
        warning("%s: %zu tokens, truncated to %zu", in->name, full, n);
    b->in[b->n] = *in;
    b->ids[b->n] = ids;
    b->lens[b->n] = n;
    b->n++;
    b->tokens += n;
    if (b->n == b->size || b->tokens >= TOKEN_BUDGET)
        return text_batch_flush(b);
    return true;
}

struct text_sink text_batch_sink(struct text_batch *b)
{
    return (struct text_sink){text_batch_add, text_batch_pending, text_batch_flush, b};
}
