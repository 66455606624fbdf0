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

/* Turns q and k of one head of one sequence, rows rope_from and on. */
static void rope_head(const struct run *r, const struct jc_seq *s, int head)
{
    const struct jc_attention *a = r->a;
    const int D = a->dim, hd = a->head_dim;
    for (size_t p = (size_t)a->rope_from; p < s->len; p++) {
        float *q = a->qkv + (s->off + p) * 3 * D + (size_t)head * hd;
        const float *c = a->rope_c + (p - (size_t)a->rope_from) * hd;
        const float *sn = a->rope_s + (p - (size_t)a->rope_from) * hd;
        r->k->rope(q, c, sn, hd);
        r->k->rope(q + D, c, sn, hd);
    }
}

static void attention_job(void *arg, int j, int thread)
{
    const struct run *r = arg;
    const struct jc_attention *a = r->a;
    const struct jc_attention_job *job = &r->jobs[j];
    const struct jc_seq *s = &a->seqs[job->seq];
    const int D = a->dim, hd = a->head_dim, L = (int)s->len;
    const float *base = a->qkv + s->off * 3 * D + (size_t)job->head * hd;

    if (a->rope_c)
        rope_head(r, s, job->head);
    for (int row0 = job->row0; row0 < job->row0 + job->rows; row0 += JC_ATTN_QBLOCK) {
        const struct jc_attn_head h = {
            .q = base + (size_t)row0 * 3 * D,
            .k = base + D,
            .v = base + 2 * D,
            .ctx = a->ctx + (s->off + row0) * D + (size_t)job->head * hd,
            .mask = a->mask && s->padded ? a->mask + s->off : NULL,
            .ld = 3 * D,
            .ldc = D,
            .nq = L - row0 < JC_ATTN_QBLOCK ? L - row0 : JC_ATTN_QBLOCK,
            .row0 = row0,
            .len = L,
            .hd = hd,
            .scale = a->scale,
            .slope = a->slopes ? a->slopes[job->head] : 0.0f,
        };
        r->k->attention(&h, r->work + (size_t)thread * r->per_thread);
    }
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
    struct run r = {a, jc_runtime()->kernels, jobs, scratch, JC_ATTN_WORK(a->head_dim)};
    int n = 0;

    for (size_t s = 0; s < a->n_seqs; s++) {
        int L = (int)a->seqs[s].len;
        for (int h = 0; h < a->heads; h++) {
            if (a->rope_c) /* the whole head: its RoPE must be done before any query block */
                jobs[n++] = (struct jc_attention_job){(int)s, h, 0, L};
            else
                for (int row = 0; row < L; row += JC_ATTN_QBLOCK)
                    jobs[n++] = (struct jc_attention_job){(int)s, h, row, JC_ATTN_QBLOCK};
        }
    }
    jc_pool_run(n, attention_job, &r);
}
