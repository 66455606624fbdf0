/*
 * NEON attention: the AVX-512 kernel's scheme (attention_avx512.c) in 4 lanes. Scores are
 * computed transposed, 4 query rows to a register (qt[d][row] packed once per pass), with
 * four dims of a key loaded at once and each FMA taking its k[d] from a lane, so the online
 * softmax is vertical over rows; then groups of 4 rows accumulate p v, 16 dims at a time,
 * each row's weight taken from a lane of one load of the tile. NEON has no masked loads: a
 * head dim of 4m + 2 ends in two-float vectors, and a pass of nr rows runs ceil(nr / 4)
 * whole groups, the rows past nr zero queries whose results are dropped.
 * Every row's arithmetic is the same whichever group or pass it falls in.
 */
#include "attention_work.h"
#include "exp_neon.h"
#include "neon.h"

#include <arm_neon.h>
#include <math.h>

#define QR JC_ATTN_ROWS /* query rows per pass */
#define BK 32           /* keys per tile */
#define NJ 8            /* keys per score micro-tile */

#define INLINE static inline __attribute__((always_inline))

/* s[g][c] += q[row] k[c][d + lane] for one dim; lanes are immediates, so macros. */
#define SCORE_DIM(kv, lane, fma)                                                                   \
    do {                                                                                           \
        const float *ql = qd + (size_t)QR * (lane);                                                \
        float32x4_t q0 = vld1q_f32(ql), q1 = G > 1 ? vld1q_f32(ql + 4) : q0;                       \
        for (int c = 0; c < NJ; c++) {                                                             \
            s[0][c] = fma(s[0][c], q0, kv[c], lane);                                               \
            if (G > 1)                                                                             \
                s[1][c] = fma(s[1][c], q1, kv[c], lane);                                           \
        }                                                                                          \
    } while (0)

/*
 * Scores of G x 4 query rows (from lane g0 of the pass) against keys jj .. jj + NJ - 1 of
 * the tile at j0; keys past nk repeat the last one and are not stored.
 */
INLINE void scores(const struct jc_attn_head *a, const struct jc_attn_work *w, int rp, int g0,
                   const int G, int j0, int jj, int nk, const int hd)
{
    float32x4_t s[2][NJ];
    const float *kp[NJ];
#pragma GCC unroll 8
    for (int c = 0; c < NJ; c++) {
        int t = jj + c < nk ? jj + c : nk - 1;
        kp[c] = a->k + (size_t)(j0 + t) * a->ld;
        s[0][c] = s[1][c] = vdupq_n_f32(0.0f);
    }
    int d = 0;
    for (; d + 4 <= hd; d += 4) {
        const float *qd = w->qt + (size_t)d * QR + g0;
        float32x4_t kv[NJ];
#pragma GCC unroll 8
        for (int c = 0; c < NJ; c++)
            kv[c] = vld1q_f32(kp[c] + d);
        SCORE_DIM(kv, 0, vfmaq_laneq_f32);
        SCORE_DIM(kv, 1, vfmaq_laneq_f32);
        SCORE_DIM(kv, 2, vfmaq_laneq_f32);
        SCORE_DIM(kv, 3, vfmaq_laneq_f32);
    }
    if (d < hd) { /* the last two dims of a head dim of 4m + 2 */
        const float *qd = w->qt + (size_t)d * QR + g0;
        float32x2_t kv[NJ];
#pragma GCC unroll 8
        for (int c = 0; c < NJ; c++)
            kv[c] = vld1_f32(kp[c] + d);
        SCORE_DIM(kv, 0, vfmaq_lane_f32);
        SCORE_DIM(kv, 1, vfmaq_lane_f32);
    }
    const float32x4_t scale = vdupq_n_f32(a->scale), nslope = vdupq_n_f32(-a->slope);
    const float32x4_t iota = {0, 1, 2, 3};
#pragma GCC unroll 2
    for (int g = 0; g < G; g++) {
        const float32x4_t vi = vaddq_f32(vdupq_n_f32((float)(a->row0 + rp + g0 + 4 * g)), iota);
#pragma GCC unroll 8
        for (int c = 0; c < NJ; c++) {
            if (jj + c >= nk)
                break;
            float32x4_t v = vmulq_f32(s[g][c], scale);
            v = vaddq_f32(v, vdupq_n_f32(w->bias[jj + c]));
            if (a->slope != 0.0f) {
                /* |i - j| is exact: both are integers far below 2^24 */
                float32x4_t dist = vabdq_f32(vi, vdupq_n_f32((float)(j0 + jj + c)));
                v = vaddq_f32(v, vmulq_f32(nslope, dist));
            }
            vst1q_f32(w->st + (size_t)(jj + c) * QR + g0 + 4 * g, v);
        }
    }
}

/* The online softmax step for 4 rows from lane g0: new max, correction, weights, sum. */
INLINE void update(const struct jc_attn_work *w, int g0, int nk)
{
    float32x4_t mt = vdupq_n_f32(-INFINITY), sum = vdupq_n_f32(0.0f);
    for (int t = 0; t < nk; t++)
        mt = vmaxq_f32(mt, vld1q_f32(w->st + (size_t)t * QR + g0));
    float32x4_t mold = vld1q_f32(w->m + g0), mnew = vmaxq_f32(mold, mt);
    float32x4_t corr = jc_exp_neg_neon(vsubq_f32(mold, mnew)); /* 0 on the first tile */
    for (int t = 0; t < nk; t++) {
        float *p = w->st + (size_t)t * QR + g0;
        float32x4_t e = jc_exp_neg_neon(vsubq_f32(vld1q_f32(p), mnew));
        vst1q_f32(p, e);
        sum = vaddq_f32(sum, e);
    }
    vst1q_f32(w->m + g0, mnew);
    vst1q_f32(w->corr + g0, corr);
    vst1q_f32(w->l + g0, vfmaq_f32(sum, vld1q_f32(w->l + g0), corr));
}

/* c[i] += p[i] v for row i of the group, on NV vectors and, if H, a two-float one. */
#define WEIGH_ROW(i)                                                                               \
    do {                                                                                           \
        for (int u = 0; u < NV; u++)                                                               \
            c[i][u] = vfmaq_laneq_f32(c[i][u], vv[u], p, i);                                       \
        if (H)                                                                                     \
            h[i] = vfma_laneq_f32(h[i], hv, p, i);                                                 \
    } while (0)

/*
 * acc[r .. r + 4) = acc * corr + sum_t p[t] v[j0 + t] over dims d0 .. d0 + 4 NV, then two
 * more if H.
 */
INLINE void weigh(const struct jc_attn_head *a, const struct jc_attn_work *w, int r, int d0,
                  const int NV, const int H, int j0, int nk, int hd)
{
    float32x4_t c[4][4];
    float32x2_t h[4];
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
        const float cr = w->corr[r + i];
        const float *acc = w->acc + (size_t)(r + i) * hd + d0;
#pragma GCC unroll 4
        for (int u = 0; u < NV; u++)
            c[i][u] = vmulq_n_f32(vld1q_f32(acc + 4 * u), cr);
        if (H)
            h[i] = vmul_n_f32(vld1_f32(acc + 4 * NV), cr);
    }
    for (int t = 0; t < nk; t++) {
        const float *v = a->v + (size_t)(j0 + t) * a->ld + d0;
        const float32x4_t p = vld1q_f32(w->st + (size_t)t * QR + r);
        float32x4_t vv[4];
        float32x2_t hv = vdup_n_f32(0.0f);
#pragma GCC unroll 4
        for (int u = 0; u < NV; u++)
            vv[u] = vld1q_f32(v + 4 * u);
        if (H)
            hv = vld1_f32(v + 4 * NV);
        WEIGH_ROW(0);
        WEIGH_ROW(1);
        WEIGH_ROW(2);
        WEIGH_ROW(3);
    }
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
        float *acc = w->acc + (size_t)(r + i) * hd + d0;
#pragma GCC unroll 4
        for (int u = 0; u < NV; u++)
            vst1q_f32(acc + 4 * u, c[i][u]);
        if (H)
            vst1_f32(acc + 4 * NV, h[i]);
    }
}

/* The p v step of rows r .. r + 4 over every dim: 16 at a time, then 4, then 2. */
INLINE void weigh_rows(const struct jc_attn_head *a, const struct jc_attn_work *w, int r, int j0,
                       int nk, const int hd)
{
    int d0 = 0;
    for (; d0 + 16 <= hd; d0 += 16)
        weigh(a, w, r, d0, 4, 0, j0, nk, hd);
    for (; d0 + 4 <= hd; d0 += 4)
        weigh(a, w, r, d0, 1, 0, j0, nk, hd);
    if (d0 < hd)
        weigh(a, w, r, d0, 0, 1, j0, nk, hd);
}

/* Query rows rp .. rp + nr (nr <= QR) against every key. */
INLINE void pass(const struct jc_attn_head *a, const struct jc_attn_work *w, int rp, int nr,
                 const int hd)
{
    const int ng = (nr + 3) / 4, lanes = 4 * ng;

    for (int d = 0; d < hd; d++)
        for (int r = 0; r < lanes; r++)
            w->qt[(size_t)d * QR + r] = r < nr ? a->q[(size_t)(rp + r) * a->ld + d] : 0.0f;
    for (int r = 0; r < lanes; r++) {
        w->m[r] = -INFINITY;
        w->l[r] = 0.0f;
    }
    for (int i = 0; i < lanes * hd; i++)
        w->acc[i] = 0.0f;

    for (int j0 = 0; j0 < a->len; j0 += BK) {
        const int nk = a->len - j0 < BK ? a->len - j0 : BK;
        for (int t = 0; t < nk; t++)
            w->bias[t] = a->mask && !a->mask[j0 + t] ? -10000.0f : 0.0f;
        int g = 0;
        for (; g + 2 <= ng; g += 2)
            for (int jj = 0; jj < nk; jj += NJ)
                scores(a, w, rp, 4 * g, 2, j0, jj, nk, hd);
        if (g < ng)
            for (int jj = 0; jj < nk; jj += NJ)
                scores(a, w, rp, 4 * g, 1, j0, jj, nk, hd);
        for (g = 0; g < ng; g++)
            update(w, 4 * g, nk);
        for (int r = 0; r < lanes; r += 4)
            weigh_rows(a, w, r, j0, nk, hd);
    }

    for (int r = 0; r < nr; r++) {
        const float *acc = w->acc + (size_t)r * hd;
        float *out = a->ctx + (size_t)(rp + r) * a->ldc;
        const float32x4_t l = vdupq_n_f32(w->l[r]);
        int d = 0;
        for (; d + 4 <= hd; d += 4)
            vst1q_f32(out + d, vdivq_f32(vld1q_f32(acc + d), l));
        if (d < hd)
            vst1_f32(out + d, vdiv_f32(vld1_f32(acc + d), vget_low_f32(l)));
    }
}

INLINE void run(const struct jc_attn_head *a, float *work, const int hd)
{
    struct jc_attn_work w;
    jc_attn_work_carve(&w, work, hd);
    for (int rp = 0; rp < a->nq; rp += QR)
        pass(a, &w, rp, a->nq - rp < QR ? a->nq - rp : QR, hd);
}

void jc_attention_neon(const struct jc_attn_head *a, float *work)
{
    if (a->hd == 64)
        run(a, work, 64);
    else
        run(a, work, a->hd);
}
