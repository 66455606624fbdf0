/*
 * The reference attention: one query row at a time, keys in tiles of JC_ATTN_KEYS. Each
 * score is formed in float the way the reference model does (the dot product, taken in
 * double, rounded to float, times scale, plus the padding bias, plus -slope * |i - j|);
 * the running max is a float, the running sum, the weights and the accumulator are double,
 * each sum in key order (keys are taken four at a time only to overlap the sums).
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
            for (int t = 0; t < nk; t += 4) {
                /* four keys at a time: independent sums, each still in d order */
                const int n4 = nk - t < 4 ? nk - t : 4;
                const float *k[4];
                double dot[4] = {0, 0, 0, 0};
                for (int u = 0; u < 4; u++)
                    k[u] = a->k + (size_t)(j0 + t + (u < n4 ? u : 0)) * a->ld;
                for (int d = 0; d < hd; d++) {
                    const double qd = q[d];
                    dot[0] += qd * k[0][d];
                    dot[1] += qd * k[1][d];
                    dot[2] += qd * k[2][d];
                    dot[3] += qd * k[3][d];
                }
                for (int u = 0; u < n4; u++) {
                    const int j = j0 + t + u;
                    float dist = (float)(i > j ? i - j : j - i);
                    s[t + u] = (float)dot[u] * a->scale +
                               (a->mask && !a->mask[j] ? -10000.0f : 0.0f) + -a->slope * dist;
                    mt = fmaxf(mt, s[t + u]);
                }
            }
            const float mnew = fmaxf(m, mt);
            const double corr = exp((double)m - mnew); /* 0 on the first tile */
            l *= corr;
            for (int d = 0; d < hd; d++)
                acc[d] *= corr;
            for (int t = 0; t < nk; t += 4) {
                /* four keys at a time, added to each acc[d] in key order */
                const int n4 = nk - t < 4 ? nk - t : 4;
                const float *v[4];
                double p[4] = {0, 0, 0, 0};
                for (int u = 0; u < 4; u++) {
                    v[u] = a->v + (size_t)(j0 + t + (u < n4 ? u : 0)) * a->ld;
                    if (u < n4)
                        l += p[u] = exp((double)s[t + u] - mnew);
                }
                for (int d = 0; d < hd; d++)
                    acc[d] =
                        acc[d] + p[0] * v[0][d] + p[1] * v[1][d] + p[2] * v[2][d] + p[3] * v[3][d];
            }
            m = mnew;
        }
        float *out = a->ctx + (size_t)r * a->ldc;
        for (int d = 0; d < hd; d++)
            out[d] = (float)(acc[d] / l);
    }
}
