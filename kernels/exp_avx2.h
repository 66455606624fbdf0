/*
 * exp for AVX2 kernels: Cody-Waite range reduction and the Cephes degree-5 polynomial;
 * relative error under 2 ulp for x in [-87.3, 88.37], exactly 0 below (softmax needs no
 * more than x <= 0).
 */
#ifndef JCLIP_EXP_AVX2_H
#define JCLIP_EXP_AVX2_H

#include "fma_avx2.h"

#include <immintrin.h>

static inline __m256 jc_exp_neg_avx2(__m256 x)
{
    const __m256 lo = _mm256_set1_ps(-87.33654f);
    __m256 under = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
    x = _mm256_max_ps(x, lo);
    __m256 fx = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = jc_fnmadd256(fx, _mm256_set1_ps(0.693359375f), x);
    r = jc_fnmadd256(fx, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = jc_fmadd256(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = jc_fmadd256(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = jc_fmadd256(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = jc_fmadd256(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = jc_fmadd256(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = jc_fmadd256(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i e =
        _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(fx), _mm256_set1_epi32(127)), 23);
    return _mm256_andnot_ps(under, _mm256_mul_ps(p, _mm256_castsi256_ps(e)));
}

/*
 * exp over the whole float range: the same reduction works up to 88.37 (2^127 still a
 * normal float); above that +inf, below -87.3 zero.
 */
static inline __m256 jc_exp_avx2(__m256 x)
{
    const __m256 hi = _mm256_set1_ps(88.3762626647949f);
    __m256 over = _mm256_cmp_ps(x, hi, _CMP_GT_OQ);
    __m256 r = jc_exp_neg_avx2(_mm256_min_ps(x, hi));
    return _mm256_blendv_ps(r, _mm256_set1_ps(__builtin_inff()), over);
}

#endif
