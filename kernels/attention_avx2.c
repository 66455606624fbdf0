/*
 * AVX2 attention: the AVX-512 kernel's scheme (attention_avx512.c) in 8 lanes. Scores are
 * computed transposed, 8 query rows to a register (qt[d][row] packed once per pass, k[d]
 * broadcast from k in place), so the online softmax is vertical over rows; then groups of
 * 3 rows accumulate p v, 32 dims (4 ymm, 12 accumulators) at a time, into an L1-resident
 * accumulator. Every row's arithmetic is the same whichever group or pass it falls in.
 * Masked loads and stores only at a row's last 1-7 dims: on Zen 3 a masked store
 * (vmaskmovps) in the packing of k and v took a fifth of the kernel's time.
 */
#include "attention_work.h"
#include "exp_avx2.h"
#include "fma_avx2.h"
#include "x86.h"

#include <immintrin.h>
#include <math.h>
#include <stdbool.h>

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

/* A vector, or only its lanes in m when it is a row's last, partial one. */
INLINE __m256 load(const float *p, bool whole, __m256i m)
{
    return whole ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, m);
}

INLINE void store(float *p, bool whole, __m256i m, __m256 v)
{
    if (whole)
        _mm256_storeu_ps(p, v);
    else
        _mm256_maskstore_ps(p, m, v);
}

/*
 * Scores of G x 8 query rows (from lane g0 of the pass) against keys jj .. jj + NJ - 1 of
 * the tile; keys past nk repeat the last one and are not stored. alibi: see pass().
 */
INLINE void scores(const struct jc_attn_head *a, const struct jc_attn_work *w, const float *alibi,
                   int g0, const int G, int jj, int nk, const int hd)
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
        __m256 q[2];
#pragma GCC unroll 2
        for (int g = 0; g < G; g++)
            q[g] = _mm256_loadu_ps(qd + 8 * g);
#pragma GCC unroll 4
        for (int c = 0; c < NJ; c++) {
            __m256 kb = _mm256_broadcast_ss(kp[c] + d);
#pragma GCC unroll 2
            for (int g = 0; g < G; g++)
                s[g][c] = jc_fmadd256(q[g], kb, s[g][c]);
        }
    }
    const __m256 scale = _mm256_set1_ps(a->scale);
#pragma GCC unroll 2
    for (int g = 0; g < G; g++) {
#pragma GCC unroll 4
        for (int c = 0; c < NJ; c++) {
            if (jj + c >= nk)
                break;
            __m256 v = _mm256_mul_ps(s[g][c], scale);
            v = _mm256_add_ps(v, _mm256_set1_ps(w->bias[jj + c]));
            if (alibi)
                v = _mm256_add_ps(v, _mm256_loadu_ps(alibi + g0 + 8 * g - (jj + c)));
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
                  __m256i last, const bool whole, int nk, int hd)
{
    __m256 c[3][4];
#pragma GCC unroll 3
    for (int i = 0; i < NR; i++) {
        const __m256 cr = _mm256_set1_ps(w->corr[r + i]);
        const float *acc = w->acc + (size_t)(r + i) * hd + d0;
#pragma GCC unroll 4
        for (int u = 0; u < NV; u++)
            c[i][u] = _mm256_mul_ps(load(acc + 8 * u, u < NV - 1 || whole, last), cr);
    }
    for (int t = 0; t < nk; t++) {
        const float *v = w->vt + (size_t)t * hd + d0;
        const float *p = w->st + (size_t)t * QR + r;
        __m256 pi[3];
#pragma GCC unroll 3
        for (int i = 0; i < NR; i++)
            pi[i] = _mm256_broadcast_ss(p + i);
#pragma GCC unroll 4
        for (int u = 0; u < NV; u++) {
            const __m256 vu = load(v + 8 * u, u < NV - 1 || whole, last);
#pragma GCC unroll 3
            for (int i = 0; i < NR; i++)
                c[i][u] = jc_fmadd256(pi[i], vu, c[i][u]);
        }
    }
#pragma GCC unroll 3
    for (int i = 0; i < NR; i++) {
        float *acc = w->acc + (size_t)(r + i) * hd + d0;
#pragma GCC unroll 4
        for (int u = 0; u < NV; u++)
            store(acc + 8 * u, u < NV - 1 || whole, last, c[i][u]);
    }
}

/* The p v step of rows r .. r + NR over every dim, 32 at a time. */
INLINE void weigh_rows(const struct jc_attn_work *w, int r, const int NR, int nk, const int hd)
{
    for (int d0 = 0; d0 < hd; d0 += 32) {
        const int left = hd - d0, nv = left >= 32 ? 4 : (left + 7) / 8;
        const int in_last = left - 8 * (nv - 1);
        const __m256i last = tail(in_last);
        if (nv == 4 && in_last == 8)
            weigh(w, r, NR, d0, 4, last, true, nk, hd);
        else if (nv == 4)
            weigh(w, r, NR, d0, 4, last, false, nk, hd);
        else if (nv == 3)
            weigh(w, r, NR, d0, 3, last, false, nk, hd);
        else if (nv == 2)
            weigh(w, r, NR, d0, 2, last, false, nk, hd);
        else
            weigh(w, r, NR, d0, 1, last, false, nk, hd);
    }
}

/* The tile's k and v rows into contiguous buffers, as in attention_avx512.c. */
INLINE void pack(const struct jc_attn_head *a, const struct jc_attn_work *w, int j0, int nk,
                 const int hd)
{
    for (int t = 0; t < nk; t++) {
        const float *k = a->k + (size_t)(j0 + t) * a->ld, *v = a->v + (size_t)(j0 + t) * a->ld;
        float *kt = w->kt + (size_t)t * hd, *vt = w->vt + (size_t)t * hd;
        int d = 0;
        for (; d + 8 <= hd; d += 8) {
            _mm256_storeu_ps(kt + d, _mm256_loadu_ps(k + d));
            _mm256_storeu_ps(vt + d, _mm256_loadu_ps(v + d));
        }
        if (d < hd) {
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
    float dist[QR + BK - 1];

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
        /*
         * The ALiBi term of query lane r and key t of the tile is at alibi[r - t]:
         * -slope * |i - j| for i - j = row0 + rp - j0 + r - t, the product rounded as it
         * would be in place.
         */
        const float *alibi = NULL;
        if (a->slope != 0.0f) {
            for (int x = 0; x < QR + BK - 1; x++)
                dist[x] = -a->slope * fabsf((float)(a->row0 + rp - j0 + x - (BK - 1)));
            alibi = dist + BK - 1;
        }
        int g = 0;
        for (; g + 2 <= ng; g += 2)
            for (int jj = 0; jj < nk; jj += NJ)
                scores(a, w, alibi, 8 * g, 2, jj, nk, hd);
        if (g < ng)
            for (int jj = 0; jj < nk; jj += NJ)
                scores(a, w, alibi, 8 * g, 1, jj, nk, hd);
        for (g = 0; g < ng; g++)
            update(w, 8 * g, nk);
        int r = 0;
        for (; r + 3 <= nr; r += 3)
            weigh_rows(w, r, 3, nk, hd);
        for (; r < nr; r++)
            weigh_rows(w, r, 1, nk, hd);
    }

    for (int r = 0; r < nr; r++) {
        const __m256 l = _mm256_set1_ps(w->l[r]);
        const float *acc = w->acc + (size_t)r * hd;
        float *out = a->ctx + (size_t)(rp + r) * a->ldc;
        for (int d = 0; d < hd; d += 8) {
            const bool whole = d + 8 <= hd;
            __m256i m = tail(hd - d);
            store(out + d, whole, m, _mm256_div_ps(load(acc + d, whole, m), l));
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
