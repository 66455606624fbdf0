/*
 * Multi-head attention over packed sequences, shared by both towers. Work is split by
 * (sequence, head, block of query rows); each job is one call of the attention kernel,
 * which reads q, k and v in place from the packed qkv matrix and runs an online softmax
 * over tiles of keys, so no score matrix is held and each thread's memory is a fixed few
 * tiles. Each row's arithmetic depends only on its own sequence and position, so results
 * do not depend on the batch or the thread count.
 */
#include "compute.h"
#include "internal.h"
#include "kernels.h"

struct run {
    const struct jc_attention *a;
    const struct jc_kernels *k;
    struct jc_attention_job *jobs;
    float *work;
    size_t per_thread;
};

static void attention_job(void *arg, int j, int thread)
{
    const struct run *r = arg;
    const struct jc_attention *a = r->a;
    const struct jc_attention_job *job = &r->jobs[j];
    const struct jc_seq *s = &a->seqs[job->seq];
    const int D = a->dim, hd = a->head_dim, L = (int)s->len;
    const float *base = a->qkv + s->off * 3 * D + (size_t)job->head * hd;
    const struct jc_attn_head h = {
        .q = base + (size_t)job->row0 * 3 * D,
        .k = base + D,
        .v = base + 2 * D,
        .ctx = a->ctx + (s->off + job->row0) * D + (size_t)job->head * hd,
        .mask = a->mask && s->padded ? a->mask + s->off : NULL,
        .ld = 3 * D,
        .ldc = D,
        .nq = L - job->row0 < JC_ATTN_QBLOCK ? L - job->row0 : JC_ATTN_QBLOCK,
        .row0 = job->row0,
        .len = L,
        .hd = hd,
        .scale = a->scale,
        .slope = a->slopes ? a->slopes[job->head] : 0.0f,
    };
    r->k->attention(&h, r->work + (size_t)thread * r->per_thread);
}

size_t jc_attention_jobs(const struct jc_seq *seqs, size_t n, int heads)
{
    size_t jobs = 0;
    for (size_t s = 0; s < n; s++)
        jobs += (size_t)heads * ((seqs[s].len + JC_ATTN_QBLOCK - 1) / JC_ATTN_QBLOCK);
    return jobs;
}

size_t jc_attention_scratch(int head_dim)
{
    return (size_t)jc_threads() * JC_ATTN_WORK(head_dim);
}

void jc_attention(const struct jc_attention *a, struct jc_attention_job *jobs, float *scratch)
{
    struct run r = {a, jc_kernels(), jobs, scratch, JC_ATTN_WORK(a->head_dim)};
    int n = 0;

    for (size_t s = 0; s < a->n_seqs; s++) {
        for (int h = 0; h < a->heads; h++)
            for (size_t row = 0; row < a->seqs[s].len; row += JC_ATTN_QBLOCK)
                jobs[n++] = (struct jc_attention_job){(int)s, h, (int)row};
    }
    jc_pool_run(n, attention_job, &r);
}
