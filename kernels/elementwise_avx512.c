/*
 * AVX-512 kernels: 16 lanes, tails through masked loads and stores. The exp and erf are
 * the AVX2 ones widened (same polynomials, same error). Contracts: kernels/README.md.
 */
#include "exp_avx512.h"
#include "x86.h"

#include <immintrin.h>
#include <math.h>

static inline __mmask16 tail(int n)
{
    return (__mmask16)((1u << n) - 1);
}

void jc_layernorm_avx512(float *y, const float *x, const float *w, const float *b, int n, float eps)
{
    __m512 s = _mm512_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16)
        s = _mm512_add_ps(s, _mm512_loadu_ps(x + i));
    if (i < n)
        s = _mm512_add_ps(s, _mm512_maskz_loadu_ps(tail(n - i), x + i));
    float mean = _mm512_reduce_add_ps(s) / (float)n;

    __m512 vm = _mm512_set1_ps(mean);
    s = _mm512_setzero_ps();
    for (i = 0; i + 16 <= n; i += 16) {
        __m512 d = _mm512_sub_ps(_mm512_loadu_ps(x + i), vm);
        s = _mm512_fmadd_ps(d, d, s);
    }
    if (i < n) {
        __m512 d = _mm512_maskz_sub_ps(tail(n - i), _mm512_maskz_loadu_ps(tail(n - i), x + i), vm);
        s = _mm512_fmadd_ps(d, d, s);
    }
    float var = _mm512_reduce_add_ps(s) / (float)n;

    __m512 vr = _mm512_set1_ps(1.0f / sqrtf(var + eps));
    for (i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? 0xffff : tail(n - i);
        __m512 v = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), vm), vr);
        v = _mm512_fmadd_ps(v, _mm512_maskz_loadu_ps(m, w + i), _mm512_maskz_loadu_ps(m, b + i));
        _mm512_mask_storeu_ps(y + i, m, v);
    }
}

/* erf by Abramowitz and Stegun 7.1.26 (see elementwise_avx2.c). */
static inline __m512 erf512(__m512 x)
{
    __m512 ax = _mm512_abs_ps(x);
    __m512 t = _mm512_div_ps(_mm512_set1_ps(1.0f),
                             _mm512_fmadd_ps(ax, _mm512_set1_ps(0.3275911f), _mm512_set1_ps(1.0f)));
    __m512 p = _mm512_set1_ps(1.061405429f);
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.453152027f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.421413741f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-0.284496736f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.254829592f));
    p = _mm512_mul_ps(p, t);
    __m512 e = exp512(_mm512_mul_ps(_mm512_sub_ps(_mm512_setzero_ps(), ax), ax));
    __m512 r = _mm512_fnmadd_ps(p, e, _mm512_set1_ps(1.0f));
    /* copy the sign of x */
    return _mm512_castsi512_ps(_mm512_or_si512(
        _mm512_castps_si512(r),
        _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32((int)0x80000000u))));
}

void jc_gelu_mul_avx512(float *y, const float *g, const float *u, int n)
{
    for (int i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? 0xffff : tail(n - i);
        __m512 vg = _mm512_maskz_loadu_ps(m, g + i), vu = _mm512_maskz_loadu_ps(m, u + i);
        __m512 e = erf512(_mm512_mul_ps(vg, _mm512_set1_ps(0.70710678118654752f)));
        __m512 h = _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), vg),
                                 _mm512_add_ps(_mm512_set1_ps(1.0f), e));
        _mm512_mask_storeu_ps(y + i, m, _mm512_mul_ps(h, vu));
    }
}

void jc_silu_mul_avx512(float *y, const float *g, const float *u, int n)
{
    for (int i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? 0xffff : tail(n - i);
        __m512 vg = _mm512_maskz_loadu_ps(m, g + i), vu = _mm512_maskz_loadu_ps(m, u + i);
        __m512 e = exp512(_mm512_sub_ps(_mm512_setzero_ps(), vg));
        __m512 s = _mm512_div_ps(vg, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
        _mm512_mask_storeu_ps(y + i, m, _mm512_mul_ps(s, vu));
    }
}

/* x * c + swap(x) * s, with the products rounded first: the reference's bits. */
void jc_rope_avx512(float *x, const float *c, const float *s, int n)
{
    for (int i = 0; i < n; i += 16) {
        /* n is even, so a tail holds whole pairs */
        __mmask16 m = n - i >= 16 ? 0xffff : tail(n - i);
        __m512 v = _mm512_maskz_loadu_ps(m, x + i);
        __m512 sw = _mm512_permute_ps(v, 0xB1); /* x[i ^ 1] */
        v = _mm512_add_ps(_mm512_mul_ps(v, _mm512_maskz_loadu_ps(m, c + i)),
                          _mm512_mul_ps(sw, _mm512_maskz_loadu_ps(m, s + i)));
        _mm512_mask_storeu_ps(x + i, m, v);
    }
}

/*
 * Columns in blocks of 32 (four double vectors), rows added in order, so each column sees
 * the reference's additions; the last columns 8 at a time with masked loads and stores.
 */
void jc_mean_pool_avx512(float *out, const float *x, size_t ld, const uint8_t *mask, size_t rows,
                         int n)
{
    size_t count = 0;
    for (size_t r = 0; r < rows; r++)
        count += !mask || mask[r];
    if (!count) {
        for (int j = 0; j < n; j++)
            out[j] = 0.0f;
        return;
    }
    const __m512d vc = _mm512_set1_pd((double)count);
    int j0 = 0;
    for (; j0 + 32 <= n; j0 += 32) {
        __m512d s0 = _mm512_setzero_pd(), s1 = s0, s2 = s0, s3 = s0;
        for (size_t r = 0; r < rows; r++) {
            if (mask && !mask[r])
                continue;
            const float *row = x + r * ld + j0;
            s0 = _mm512_add_pd(s0, _mm512_cvtps_pd(_mm256_loadu_ps(row)));
            s1 = _mm512_add_pd(s1, _mm512_cvtps_pd(_mm256_loadu_ps(row + 8)));
            s2 = _mm512_add_pd(s2, _mm512_cvtps_pd(_mm256_loadu_ps(row + 16)));
            s3 = _mm512_add_pd(s3, _mm512_cvtps_pd(_mm256_loadu_ps(row + 24)));
        }
        _mm256_storeu_ps(out + j0, _mm512_cvtpd_ps(_mm512_div_pd(s0, vc)));
        _mm256_storeu_ps(out + j0 + 8, _mm512_cvtpd_ps(_mm512_div_pd(s1, vc)));
        _mm256_storeu_ps(out + j0 + 16, _mm512_cvtpd_ps(_mm512_div_pd(s2, vc)));
        _mm256_storeu_ps(out + j0 + 24, _mm512_cvtpd_ps(_mm512_div_pd(s3, vc)));
    }
    for (; j0 < n; j0 += 8) {
        __mmask8 m = n - j0 >= 8 ? 0xff : (__mmask8)((1u << (n - j0)) - 1);
        __m512d s0 = _mm512_setzero_pd();
        for (size_t r = 0; r < rows; r++)
            if (!mask || mask[r])
                s0 = _mm512_add_pd(s0, _mm512_cvtps_pd(_mm256_maskz_loadu_ps(m, x + r * ld + j0)));
        _mm256_mask_storeu_ps(out + j0, m, _mm512_cvtpd_ps(_mm512_div_pd(s0, vc)));
    }
}
