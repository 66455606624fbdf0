/*
 * AVX2 attention: the AVX-512 kernel's scheme (attention_avx512.c) in 8 lanes. Scores are
 * computed transposed, 8 query rows to a register (qt[d][row] packed once per pass, k[d]
 * broadcast from k in place), so the online softmax is vertical over rows; then groups of
 * 2 rows accumulate p v, 32 dims (4 ymm) at a time, into an L1-resident accumulator.
 * Every row's arithmetic is the same whichever group or pass it falls in.
 */
#include "attention_work.h"
#include "exp_avx2.h"
#include "fma_avx2.h"
#include "x86.h"

#include <immintrin.h>
#include <math.h>

#define QR JC_ATTN_ROWS /* query rows per pass */
#define BK 32           /* keys per tile */
#define NJ 4            /* keys per score micro-tile */

#define INLINE static inline __attribute__((always_inline))

/* Lanes 0 .. n - 1 of 8 (n <= 8). */
static inline __m256i tail(int n)
{
    static const int32_t ones[16] = {-1, -1, -1, -1, -1, -1, -1, -1};
    return _mm256_loadu_si256((const __m256i *)(ones + 8 - (n < 8 ? n : 8)));
}

/*
 * Scores of G x 8 query rows (from lane g0 of the pass) against keys jj .. jj + NJ - 1 of
 * the tile at j0; keys past nk repeat the last one and are not stored.
 */
INLINE void scores(const struct jc_attn_head *a, const struct jc_attn_work *w, int rp, int g0,
                   const int G, int j0, int jj, int nk, const int hd)
{
    __m256 s[2][NJ];
    const float *kp[NJ];
#pragma GCC unroll 4
    for (int c = 0; c < NJ; c++) {
        int t = jj + c < nk ? jj + c : nk - 1;
        kp[c] = w->kt + (size_t)t * hd;
        s[0][c] = s[1][c] = _mm256_setzero_ps();
    }
    for (int d = 0; d < hd; d++) {
        const float *qd = w->qt + (size_t)d * QR + g0;
        __m256 q0 = _mm256_loadu_ps(qd), q1 = G > 1 ? _mm256_loadu_ps(qd + 8) : q0;
#pragma GCC unroll 4
        for (int c = 0; c < NJ; c++) {
            __m256 kb = _mm256_broadcast_ss(kp[c] + d);
            s[0][c] = jc_fmadd256(q0, kb, s[0][c]);
            if (G > 1)
                s[1][c] = jc_fmadd256(q1, kb, s[1][c]);
        }
    }
    const __m256 scale = _mm256_set1_ps(a->scale), nslope = _mm256_set1_ps(-a->slope);
    const __m256 iota = _mm256_setr_ps(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
#pragma GCC unroll 2
    for (int g = 0; g < G; g++) {
        const __m256 vi = _mm256_add_ps(_mm256_set1_ps((float)(a->row0 + rp + g0 + 8 * g)), iota);
#pragma GCC unroll 4
        for (int c = 0; c < NJ; c++) {
            if (jj + c >= nk)
                break;
            __m256 v = _mm256_mul_ps(s[g][c], scale);
            v = _mm256_add_ps(v, _mm256_set1_ps(w->bias[jj + c]));
            if (a->slope != 0.0f) {
                __m256 dist =
                    _mm256_and_ps(_mm256_sub_ps(vi, _mm256_set1_ps((float)(j0 + jj + c))), absmask);
                v = _mm256_add_ps(v, _mm256_mul_ps(nslope, dist));
            }
            _mm256_storeu_ps(w->st + (size_t)(jj + c) * QR + g0 + 8 * g, v);
        }
    }
}

/* The online softmax step for 8 rows from lane g0: new max, correction, weights, sum. */
INLINE void update(const struct jc_attn_work *w, int g0, int nk)
{
    __m256 mt = _mm256_set1_ps(-INFINITY), sum = _mm256_setzero_ps();
    for (int t = 0; t < nk; t++)
        mt = _mm256_max_ps(mt, _mm256_loadu_ps(w->st + (size_t)t * QR + g0));
    __m256 mold = _mm256_loadu_ps(w->m + g0), mnew = _mm256_max_ps(mold, mt);
    __m256 corr = jc_exp_neg_avx2(_mm256_sub_ps(mold, mnew)); /* 0 on the first tile */
    for (int t = 0; t < nk; t++) {
        float *p = w->st + (size_t)t * QR + g0;
        __m256 e = jc_exp_neg_avx2(_mm256_sub_ps(_mm256_loadu_ps(p), mnew));
        _mm256_storeu_ps(p, e);
        sum = _mm256_add_ps(sum, e);
    }
    _mm256_storeu_ps(w->m + g0, mnew);
    _mm256_storeu_ps(w->corr + g0, corr);
    _mm256_storeu_ps(w->l + g0, jc_fmadd256(_mm256_loadu_ps(w->l + g0), corr, sum));
}

/*
 * acc[r .. r + NR) = acc * corr + sum_t p[t] vt[t] over dims d0 .. d0 + 8 NV, the last
 * vector masked by `last`.
 */
INLINE void weigh(const struct jc_attn_work *w, int r, const int NR, int d0, const int NV,
                  __m256i last, int nk, int hd)
{
    const __m256i full = _mm256_set1_epi32(-1);
    __m256 c[2][4];
#pragma GCC unroll 2
    for (int i = 0; i < NR; i++) {
        const __m256 cr = _mm256_set1_ps(w->corr[r + i]);
        const float *acc = w->acc + (size_t)(r + i) * hd + d0;
#pragma GCC unroll 4
        for (int u = 0; u < NV; u++)
            c[i][u] = _mm256_mul_ps(_mm256_maskload_ps(acc + 8 * u, u == NV - 1 ? last : full), cr);
    }
    for (int t = 0; t < nk; t++) {
        const float *v = w->vt + (size_t)t * hd + d0;
        const float *p = w->st + (size_t)t * QR + r;
        __m256 vv[4];
#pragma GCC unroll 4
        for (int u = 0; u < NV; u++)
            vv[u] = _mm256_maskload_ps(v + 8 * u, u == NV - 1 ? last : full);
#pragma GCC unroll 2
        for (int i = 0; i < NR; i++) {
            __m256 pi = _mm256_broadcast_ss(p + i);
#pragma GCC unroll 4
            for (int u = 0; u < NV; u++)
                c[i][u] = jc_fmadd256(pi, vv[u], c[i][u]);
        }
    }
#pragma GCC unroll 2
    for (int i = 0; i < NR; i++) {
        float *acc = w->acc + (size_t)(r + i) * hd + d0;
#pragma GCC unroll 4
        for (int u = 0; u < NV; u++)
            _mm256_maskstore_ps(acc + 8 * u, u == NV - 1 ? last : full, c[i][u]);
    }
}

/* The p v step of rows r .. r + NR over every dim, 32 at a time. */
INLINE void weigh_rows(const struct jc_attn_work *w, int r, const int NR, int nk, const int hd)
{
    for (int d0 = 0; d0 < hd; d0 += 32) {
        const int left = hd - d0, nv = left >= 32 ? 4 : (left + 7) / 8;
        const __m256i last = tail(left - 8 * (nv - 1));
        switch (nv) {
        case 4:
            weigh(w, r, NR, d0, 4, last, nk, hd);
            break;
        case 3:
            weigh(w, r, NR, d0, 3, last, nk, hd);
            break;
        case 2:
            weigh(w, r, NR, d0, 2, last, nk, hd);
            break;
        default:
            weigh(w, r, NR, d0, 1, last, nk, hd);
        }
    }
}

/* The tile's k and v rows into contiguous buffers, as in attention_avx512.c. */
INLINE void pack(const struct jc_attn_head *a, const struct jc_attn_work *w, int j0, int nk,
                 const int hd)
{
    for (int t = 0; t < nk; t++) {
        const float *k = a->k + (size_t)(j0 + t) * a->ld, *v = a->v + (size_t)(j0 + t) * a->ld;
        float *kt = w->kt + (size_t)t * hd, *vt = w->vt + (size_t)t * hd;
        for (int d = 0; d < hd; d += 8) {
            __m256i m = tail(hd - d);
            _mm256_maskstore_ps(kt + d, m, _mm256_maskload_ps(k + d, m));
            _mm256_maskstore_ps(vt + d, m, _mm256_maskload_ps(v + d, m));
        }
        if (j0 + BK + t < a->len)
            for (int d = 0; d < hd; d += 16) {
                _mm_prefetch((const char *)(k + (size_t)BK * a->ld + d), _MM_HINT_T0);
                _mm_prefetch((const char *)(v + (size_t)BK * a->ld + d), _MM_HINT_T0);
            }
    }
}

/* Query rows rp .. rp + nr (nr <= QR) against every key. */
INLINE void pass(const struct jc_attn_head *a, const struct jc_attn_work *w, int rp, int nr,
                 const int hd)
{
    const int ng = (nr + 7) / 8, lanes = 8 * ng;

    for (int d = 0; d < hd; d++)
        for (int r = 0; r < lanes; r++)
            w->qt[(size_t)d * QR + r] = r < nr ? a->q[(size_t)(rp + r) * a->ld + d] : 0.0f;
    for (int r = 0; r < lanes; r++) {
        w->m[r] = -INFINITY;
        w->l[r] = 0.0f;
    }
    for (int i = 0; i < nr * hd; i++)
        w->acc[i] = 0.0f;

    for (int j0 = 0; j0 < a->len; j0 += BK) {
        const int nk = a->len - j0 < BK ? a->len - j0 : BK;
        for (int t = 0; t < nk; t++)
            w->bias[t] = a->mask && !a->mask[j0 + t] ? -10000.0f : 0.0f;
        pack(a, w, j0, nk, hd);
        int g = 0;
        for (; g + 2 <= ng; g += 2)
            for (int jj = 0; jj < nk; jj += NJ)
                scores(a, w, rp, 8 * g, 2, j0, jj, nk, hd);
        if (g < ng)
            for (int jj = 0; jj < nk; jj += NJ)
                scores(a, w, rp, 8 * g, 1, j0, jj, nk, hd);
        for (g = 0; g < ng; g++)
            update(w, 8 * g, nk);
        int r = 0;
        for (; r + 2 <= nr; r += 2)
            weigh_rows(w, r, 2, nk, hd);
        for (; r < nr; r++)
            weigh_rows(w, r, 1, nk, hd);
    }

    for (int r = 0; r < nr; r++) {
        const __m256 l = _mm256_set1_ps(w->l[r]);
        const float *acc = w->acc + (size_t)r * hd;
        float *out = a->ctx + (size_t)(rp + r) * a->ldc;
        for (int d = 0; d < hd; d += 8) {
            __m256i m = tail(hd - d);
            _mm256_maskstore_ps(out + d, m, _mm256_div_ps(_mm256_maskload_ps(acc + d, m), l));
        }
    }
}

INLINE void run(const struct jc_attn_head *a, float *work, const int hd)
{
    struct jc_attn_work w;
    jc_attn_work_carve(&w, work, hd);
    for (int rp = 0; rp < a->nq; rp += QR)
        pass(a, &w, rp, a->nq - rp < QR ? a->nq - rp : QR, hd);
}

void jc_attention_avx2(const struct jc_attn_head *a, float *work)
{
    if (a->hd == 64)
        run(a, work, 64);
    else
        run(a, work, a->hd);
}
