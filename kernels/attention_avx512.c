/*
 * AVX-512 attention: up to JC_ATTN_ROWS query rows at a time against tiles of BK keys.
 *
 * Scores are computed transposed, 16 query rows to a register: q is gathered once per pass
 * as qt[d][row], and each key's q.k over d is an FMA of a qt row with the broadcast k[d].
 * So the running max, the correction exp(m_old - m_new) and the running sum are plain
 * vertical operations over 16 rows, with no horizontal reduction anywhere. The weights go
 * to a small tile, then each group of 4 rows accumulates p v (4 zmm per v row for hd 64)
 * into an L1-resident accumulator.
 *
 * Keys and values are read in place while a head's fit in L2 (up to PACK_LEN rows: every
 * image); past that each tile is first copied out and the next one prefetched (pack).
 *
 * Every row's arithmetic is the same whichever group or pass it falls in: the dot product
 * runs over d in order, the max and sum over the tile's keys in order, tiles from key 0.
 */
#include "attention_work.h"
#include "exp_avx512.h"
#include "x86.h"

#include <immintrin.h>
#include <math.h>

#define QR       JC_ATTN_ROWS /* query rows per pass */
#define BK       32           /* keys per tile */
#define NJ       8            /* keys per score micro-tile */
#define PACK_LEN 1024         /* longer sequences have their tiles of k and v packed */

#define INLINE static inline __attribute__((always_inline))

static inline __mmask16 tail(int n)
{
    return n >= 16 ? 0xffff : (__mmask16)((1u << n) - 1);
}

/*
 * Scores of G x 16 query rows (from lane g0 of the pass) against keys jj .. jj + NJ - 1 of
 * the tile at j0; keys past nk repeat the last one and are not stored.
 */
INLINE void scores(const struct jc_attn_head *a, const struct jc_attn_work *w, int rp, int g0,
                   const int G, int j0, int jj, int nk, const int hd)
{
    __m512 s[2][NJ];
    const float *kp[NJ];
#pragma GCC unroll 8
    for (int c = 0; c < NJ; c++) {
        int t = jj + c < nk ? jj + c : nk - 1;
        kp[c] = w->tk + (size_t)t * w->ldt;
        s[0][c] = s[1][c] = _mm512_setzero_ps();
    }
    for (int d = 0; d < hd; d++) {
        const float *qd = w->qt + (size_t)d * QR + g0;
        __m512 q0 = _mm512_loadu_ps(qd), q1 = G > 1 ? _mm512_loadu_ps(qd + 16) : q0;
#pragma GCC unroll 8
        for (int c = 0; c < NJ; c++) {
            __m512 kb = _mm512_set1_ps(kp[c][d]);
            s[0][c] = _mm512_fmadd_ps(q0, kb, s[0][c]);
            if (G > 1)
                s[1][c] = _mm512_fmadd_ps(q1, kb, s[1][c]);
        }
    }
    const __m512 scale = _mm512_set1_ps(a->scale), nslope = _mm512_set1_ps(-a->slope);
    const __m512 iota = _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
#pragma GCC unroll 2
    for (int g = 0; g < G; g++) {
        const __m512 vi = _mm512_add_ps(_mm512_set1_ps((float)(a->row0 + rp + g0 + 16 * g)), iota);
#pragma GCC unroll 8
        for (int c = 0; c < NJ; c++) {
            if (jj + c >= nk)
                break;
            __m512 v = _mm512_mul_ps(s[g][c], scale);
            v = _mm512_add_ps(v, _mm512_set1_ps(w->bias[jj + c]));
            if (a->slope != 0.0f) {
                __m512 dist =
                    _mm512_abs_ps(_mm512_sub_ps(vi, _mm512_set1_ps((float)(j0 + jj + c))));
                v = _mm512_add_ps(v, _mm512_mul_ps(nslope, dist));
            }
            _mm512_storeu_ps(w->st + (size_t)(jj + c) * QR + g0 + 16 * g, v);
        }
    }
}

/* The online softmax step for 16 rows from lane g0: new max, correction, weights, sum. */
INLINE void update(const struct jc_attn_work *w, int g0, int nk)
{
    __m512 mt = _mm512_set1_ps(-INFINITY), sum = _mm512_setzero_ps();
    for (int t = 0; t < nk; t++)
        mt = _mm512_max_ps(mt, _mm512_loadu_ps(w->st + (size_t)t * QR + g0));
    __m512 mold = _mm512_loadu_ps(w->m + g0), mnew = _mm512_max_ps(mold, mt);
    __m512 corr = exp512_neg(_mm512_sub_ps(mold, mnew)); /* 0 on the first tile: exp(-inf) */
    for (int t = 0; t < nk; t++) {
        float *p = w->st + (size_t)t * QR + g0;
        __m512 e = exp512_neg(_mm512_sub_ps(_mm512_loadu_ps(p), mnew));
        _mm512_storeu_ps(p, e);
        sum = _mm512_add_ps(sum, e);
    }
    _mm512_storeu_ps(w->m + g0, mnew);
    _mm512_storeu_ps(w->corr + g0, corr);
    _mm512_storeu_ps(w->l + g0, _mm512_fmadd_ps(_mm512_loadu_ps(w->l + g0), corr, sum));
}

/*
 * acc[r .. r + NR) = acc * corr + sum_t p[t] vt[t] over dims d0 .. d0 + 16 NV, the last
 * vector masked by `last`.
 */
INLINE void weigh(const struct jc_attn_work *w, int r, const int NR, int d0, const int NV,
                  __mmask16 last, int nk, int hd)
{
    __m512 c[4][4];
#pragma GCC unroll 4
    for (int i = 0; i < NR; i++) {
        const __m512 cr = _mm512_set1_ps(w->corr[r + i]);
        const float *acc = w->acc + (size_t)(r + i) * hd + d0;
#pragma GCC unroll 4
        for (int u = 0; u < NV; u++)
            c[i][u] =
                _mm512_mul_ps(_mm512_maskz_loadu_ps(u == NV - 1 ? last : 0xffff, acc + 16 * u), cr);
    }
    for (int t = 0; t < nk; t++) {
        const float *v = w->tv + (size_t)t * w->ldt + d0;
        const float *p = w->st + (size_t)t * QR + r;
        __m512 vv[4];
#pragma GCC unroll 4
        for (int u = 0; u < NV; u++)
            vv[u] = _mm512_maskz_loadu_ps(u == NV - 1 ? last : 0xffff, v + 16 * u);
#pragma GCC unroll 4
        for (int i = 0; i < NR; i++) {
            __m512 pi = _mm512_set1_ps(p[i]);
#pragma GCC unroll 4
            for (int u = 0; u < NV; u++)
                c[i][u] = _mm512_fmadd_ps(pi, vv[u], c[i][u]);
        }
    }
#pragma GCC unroll 4
    for (int i = 0; i < NR; i++) {
        float *acc = w->acc + (size_t)(r + i) * hd + d0;
#pragma GCC unroll 4
        for (int u = 0; u < NV; u++)
            _mm512_mask_storeu_ps(acc + 16 * u, u == NV - 1 ? last : 0xffff, c[i][u]);
    }
}

/* The p v step of rows r .. r + NR over every dim, 64 at a time. */
INLINE void weigh_rows(const struct jc_attn_work *w, int r, const int NR, int nk, const int hd)
{
    for (int d0 = 0; d0 < hd; d0 += 64) {
        const int left = hd - d0, nv = left >= 64 ? 4 : (left + 15) / 16;
        const __mmask16 last = tail(left - 16 * (nv - 1));
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

/*
 * Copies the tile's k and v rows, which lie 3 dim floats apart in the packed matrix, into
 * contiguous buffers, and asks for the next tile's: many independent loads in a row keep
 * the memory system busy where the FMA loops would stall on one row at a time.
 */
INLINE void pack(const struct jc_attn_head *a, const struct jc_attn_work *w, int j0, int nk,
                 const int hd)
{
    for (int t = 0; t < nk; t++) {
        const float *k = a->k + (size_t)(j0 + t) * a->ld, *v = a->v + (size_t)(j0 + t) * a->ld;
        float *kt = w->kt + (size_t)t * hd, *vt = w->vt + (size_t)t * hd;
        for (int d = 0; d < hd; d += 16) {
            __mmask16 m = tail(hd - d);
            _mm512_mask_storeu_ps(kt + d, m, _mm512_maskz_loadu_ps(m, k + d));
            _mm512_mask_storeu_ps(vt + d, m, _mm512_maskz_loadu_ps(m, v + d));
        }
        if (j0 + BK + t < a->len)
            for (int d = 0; d < hd; d += 16) {
                _mm_prefetch((const char *)(k + (size_t)BK * a->ld + d), _MM_HINT_T0);
                _mm_prefetch((const char *)(v + (size_t)BK * a->ld + d), _MM_HINT_T0);
            }
    }
}

/* Query rows rp .. rp + nr (nr <= QR) against every key. */
INLINE void pass(const struct jc_attn_head *a, struct jc_attn_work *w, int rp, int nr, const int hd)
{
    const int ng = (nr + 15) / 16, lanes = 16 * ng;

    const __m512i rows =
        _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                           _mm512_set1_epi32(a->ld));
    for (int g = 0; g < ng; g++) {
        const float *q = a->q + (size_t)(rp + 16 * g) * a->ld;
        const __mmask16 live = tail(nr - 16 * g);
        for (int d = 0; d < hd; d++)
            _mm512_storeu_ps(w->qt + (size_t)d * QR + 16 * g,
                             _mm512_mask_i32gather_ps(_mm512_setzero_ps(), live, rows, q + d, 4));
    }
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
        if (a->len > PACK_LEN) {
            pack(a, w, j0, nk, hd);
            w->tk = w->kt;
            w->tv = w->vt;
            w->ldt = (size_t)hd;
        } else {
            w->tk = a->k + (size_t)j0 * a->ld;
            w->tv = a->v + (size_t)j0 * a->ld;
            w->ldt = (size_t)a->ld;
        }
        int g = 0;
        for (; g + 2 <= ng; g += 2)
            for (int jj = 0; jj < nk; jj += NJ)
                scores(a, w, rp, 16 * g, 2, j0, jj, nk, hd);
        if (g < ng)
            for (int jj = 0; jj < nk; jj += NJ)
                scores(a, w, rp, 16 * g, 1, j0, jj, nk, hd);
        for (g = 0; g < ng; g++)
            update(w, 16 * g, nk);
        int r = 0;
        for (; r + 4 <= nr; r += 4)
            weigh_rows(w, r, 4, nk, hd);
        for (; r < nr; r++)
            weigh_rows(w, r, 1, nk, hd);
    }

    for (int r = 0; r < nr; r++) {
        const __m512 l = _mm512_set1_ps(w->l[r]);
        const float *acc = w->acc + (size_t)r * hd;
        float *out = a->ctx + (size_t)(rp + r) * a->ldc;
        for (int d = 0; d < hd; d += 16) {
            __mmask16 m = tail(hd - d);
            _mm512_mask_storeu_ps(out + d, m, _mm512_div_ps(_mm512_maskz_loadu_ps(m, acc + d), l));
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

void jc_attention_avx512(const struct jc_attn_head *a, float *work)
{
    if (a->hd == 64)
        run(a, work, 64);
    else
        run(a, work, a->hd);
}
