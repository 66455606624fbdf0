/* exp for AVX-512 kernels: the AVX2 one (exp_avx2.h) widened, same polynomial and error. */
#ifndef JCLIP_EXP_AVX512_H
#define JCLIP_EXP_AVX512_H

#include <immintrin.h>
#include <math.h>

/*
 * The shared core: x = n ln2 + r with ln2 split in two (n to *n), then the Cephes degree-5
 * polynomial for e^r on |r| <= ln2/2. Returns e^r.
 */
static inline __m512 exp512_core(__m512 x, __m512 *n)
{
    __m512 fx = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(fx, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(fx, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    *n = fx;
    return _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
}

/* exp for x <= 88.37; exactly 0 below -87.3 (see exp_avx2.h). */
static inline __m512 exp512(__m512 x)
{
    const __m512 lo = _mm512_set1_ps(-87.33654f), hi = _mm512_set1_ps(88.3762626647949f);
    __mmask16 under = _mm512_cmp_ps_mask(x, lo, _CMP_LT_OQ);
    __mmask16 over = _mm512_cmp_ps_mask(x, hi, _CMP_GT_OQ);
    __m512 fx, p = exp512_core(_mm512_min_ps(_mm512_max_ps(x, lo), hi), &fx);
    __m512i e =
        _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(fx), _mm512_set1_epi32(127)), 23);
    __m512 v = _mm512_mul_ps(p, _mm512_castsi512_ps(e));
    v = _mm512_mask_mov_ps(v, under, _mm512_setzero_ps());
    return _mm512_mask_mov_ps(v, over, _mm512_set1_ps(INFINITY));
}

/*
 * exp for x <= 0 (or -inf): exp512's core with the scaling by 2^n done by scalef, which
 * also gives exactly 0 once the result is below the floats (x < -103.9), so no range
 * masks are needed. x is clamped at -1000 so -inf gives 0. Bitwise equal to exp512
 * wherever that result is a normal float.
 */
static inline __m512 exp512_neg(__m512 x)
{
    __m512 fx, p = exp512_core(_mm512_max_ps(x, _mm512_set1_ps(-1000.0f)), &fx);
    return _mm512_scalef_ps(p, fx);
}

#endif
