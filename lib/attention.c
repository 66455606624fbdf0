/*
 * Multi-head attention over packed sequences, shared by both towers. Work is split by
 * (sequence, head, block of query rows); each job scores its rows against the whole
 * sequence with one GEMM, applies the bias and softmax in place, and multiplies by V with a
 * second GEMM, so memory grows with the sequence length, never with its square, and each
 * job's GEMM shapes depend only on its own sequence (results do not depend on the batch).
 */
#include "compute.h"
#include "internal.h"
#include "kernels.h"

struct run {
    const struct jc_attention *a;
    const struct jc_kernels *k;
    struct jc_attention_job *jobs;
    float *scores;
    size_t lmax;
};

static void attention_job(void *arg, int j, int thread)
{
    const struct run *r = arg;
    const struct jc_attention *a = r->a;
    const struct jc_attention_job *job = &r->jobs[j];
    const struct jc_seq *s = &a->seqs[job->seq];
    const int D = a->dim, hd = a->head_dim, L = (int)s->len;
    const int nb = L - job->row0 < JC_ATTN_QBLOCK ? L - job->row0 : JC_ATTN_QBLOCK;
    const float *base = a->qkv + s->off * 3 * D + (size_t)job->head * hd;
    float *S = r->scores + (size_t)thread * JC_ATTN_QBLOCK * r->lmax;
    const float slope = a->slopes ? a->slopes[job->head] : 0.0f;
    const uint8_t *mask = a->mask && s->padded ? a->mask + s->off : NULL;

    jc_sgemm(true, nb, L, hd, 1.0f, base + (size_t)job->row0 * 3 * D, 3 * D, base + D, 3 * D, 0.0f,
             S, L);
    for (int i = 0; i < nb; i++) {
        float *row = S + (size_t)i * L;
        if (a->slopes || mask)
            r->k->softmax_alibi_row(row, L, a->scale, slope, job->row0 + i, mask);
        else
            r->k->softmax_scaled(row, L, a->scale);
    }
    jc_sgemm(false, nb, hd, L, 1.0f, S, L, base + 2 * D, 3 * D, 0.0f,
             a->ctx + (s->off + job->row0) * D + (size_t)job->head * hd, D);
}

size_t jc_attention_jobs(const struct jc_seq *seqs, size_t n, int heads)
{
    size_t jobs = 0;
    for (size_t s = 0; s < n; s++)
        jobs += (size_t)heads * ((seqs[s].len + JC_ATTN_QBLOCK - 1) / JC_ATTN_QBLOCK);
    return jobs;
}

size_t jc_attention_scratch(size_t lmax)
{
    return (size_t)jc_threads() * JC_ATTN_QBLOCK * lmax;
}

void jc_attention(const struct jc_attention *a, struct jc_attention_job *jobs, float *scratch)
{
    struct run r = {a, jc_kernels(), jobs, scratch, 0};
    int n = 0;

    for (size_t s = 0; s < a->n_seqs; s++) {
        if (a->seqs[s].len > r.lmax)
            r.lmax = a->seqs[s].len;
        for (int h = 0; h < a->heads; h++)
            for (size_t row = 0; row < a->seqs[s].len; row += JC_ATTN_QBLOCK)
                jobs[n++] = (struct jc_attention_job){(int)s, h, (int)row};
    }
    jc_pool_run(n, attention_job, &r);
}
