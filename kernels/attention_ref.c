/*
 * The reference attention: one query row at a time, keys in tiles of JC_ATTN_KEYS. Each
 * score is formed in float the way the reference model does (the dot product, taken in
 * double, rounded to float, times scale, plus the padding bias, plus -slope * |i - j|);
 * the running max is a float, the running sum, the weights and the accumulator are double.
 * A -10000 padding bias gives exactly zero weight: exp(-10000) is 0 in double.
 */
#include "ref.h"

#include <math.h>

void jc_attention_ref(const struct jc_attn_head *a, float *work)
{
    float *s = work;                                   /* [JC_ATTN_KEYS] scores */
    double *acc = (double *)(work + 2 * JC_ATTN_KEYS); /* [hd], 8-byte aligned offset */
    const int hd = a->hd;

    for (int r = 0; r < a->nq; r++) {
        const float *q = a->q + (size_t)r * a->ld;
        const int i = a->row0 + r;
        float m = -INFINITY;
        double l = 0;

        for (int d = 0; d < hd; d++)
            acc[d] = 0;
        for (int j0 = 0; j0 < a->len; j0 += JC_ATTN_KEYS) {
            const int nk = a->len - j0 < JC_ATTN_KEYS ? a->len - j0 : JC_ATTN_KEYS;
            float mt = -INFINITY;
            for (int t = 0; t < nk; t++) {
                const int j = j0 + t;
                const float *k = a->k + (size_t)j * a->ld;
                double dot = 0;
                for (int d = 0; d < hd; d++)
                    dot += (double)q[d] * k[d];
                float dist = (float)(i > j ? i - j : j - i);
                s[t] = (float)dot * a->scale + (a->mask && !a->mask[j] ? -10000.0f : 0.0f) +
                       -a->slope * dist;
                mt = fmaxf(mt, s[t]);
            }
            const float mnew = fmaxf(m, mt);
            const double corr = exp((double)m - mnew); /* 0 on the first tile */
            l *= corr;
            for (int d = 0; d < hd; d++)
                acc[d] *= corr;
            for (int t = 0; t < nk; t++) {
                const float *v = a->v + (size_t)(j0 + t) * a->ld;
                const double p = exp((double)s[t] - mnew);
                l += p;
                for (int d = 0; d < hd; d++)
                    acc[d] += p * v[d];
            }
            m = mnew;
        }
        float *out = a->ctx + (size_t)r * a->ldc;
        for (int d = 0; d < hd; d++)
            out[d] = (float)(acc[d] / l);
    }
}
