/* Element-wise kernels for AVX2 + FMA. Contracts: kernels/README.md. */
#include "exp_avx2.h"
#include "fma_avx2.h"
#include "x86.h"

#include <math.h>

static inline float hsum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* Lanes [0, n) of a tail: a mask for maskload/maskstore. */
static inline __m256i tail_mask(int n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

void jc_layernorm_avx2(float *y, const float *x, const float *w, const float *b, int n, float eps)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_add_ps(s0, _mm256_loadu_ps(x + i));
        s1 = _mm256_add_ps(s1, _mm256_loadu_ps(x + i + 8));
    }
    float mean = hsum(_mm256_add_ps(s0, s1));
    for (; i < n; i++)
        mean += x[i];
    mean /= (float)n;

    __m256 vm = _mm256_set1_ps(mean);
    s0 = _mm256_setzero_ps();
    s1 = _mm256_setzero_ps();
    for (i = 0; i + 16 <= n; i += 16) {
        __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(x + i), vm);
        __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(x + i + 8), vm);
        s0 = jc_fmadd256(d0, d0, s0);
        s1 = jc_fmadd256(d1, d1, s1);
    }
    float var = hsum(_mm256_add_ps(s0, s1));
    for (; i < n; i++)
        var += (x[i] - mean) * (x[i] - mean);
    var /= (float)n;

    float rstd = 1.0f / sqrtf(var + eps);
    __m256 vr = _mm256_set1_ps(rstd);
    for (i = 0; i + 8 <= n; i += 8) {
        __m256 v = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm), vr);
        _mm256_storeu_ps(y + i, jc_fmadd256(v, _mm256_loadu_ps(w + i), _mm256_loadu_ps(b + i)));
    }
    for (; i < n; i++)
        y[i] = (x[i] - mean) * rstd * w[i] + b[i];
}

void jc_add_avx2(float *y, const float *a, int n)
{
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(y + i), _mm256_loadu_ps(a + i)));
    if (i < n) {
        __m256i m = tail_mask(n - i);
        __m256 v = _mm256_add_ps(_mm256_maskload_ps(y + i, m), _mm256_maskload_ps(a + i, m));
        _mm256_maskstore_ps(y + i, m, v);
    }
}

/*
 * erf by Abramowitz and Stegun 7.1.26: erf(x) = 1 - t (a1 + t (a2 + ...)) e^(-x^2),
 * t = 1 / (1 + p |x|), absolute error under 1.5e-7, odd in x.
 */
static inline __m256 erf_avx2(__m256 x)
{
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 ax = _mm256_andnot_ps(sign, x);
    __m256 t = _mm256_div_ps(_mm256_set1_ps(1.0f),
                             jc_fmadd256(ax, _mm256_set1_ps(0.3275911f), _mm256_set1_ps(1.0f)));
    __m256 p = _mm256_set1_ps(1.061405429f);
    p = jc_fmadd256(p, t, _mm256_set1_ps(-1.453152027f));
    p = jc_fmadd256(p, t, _mm256_set1_ps(1.421413741f));
    p = jc_fmadd256(p, t, _mm256_set1_ps(-0.284496736f));
    p = jc_fmadd256(p, t, _mm256_set1_ps(0.254829592f));
    p = _mm256_mul_ps(p, t);
    __m256 e = jc_exp_neg_avx2(_mm256_mul_ps(_mm256_sub_ps(_mm256_setzero_ps(), ax), ax));
    __m256 r = jc_fnmadd256(p, e, _mm256_set1_ps(1.0f));
    return _mm256_or_ps(r, _mm256_and_ps(x, sign));
}

static inline __m256 gelu_mul8(__m256 g, __m256 u)
{
    __m256 e = erf_avx2(_mm256_mul_ps(g, _mm256_set1_ps(0.70710678118654752f)));
    __m256 h = _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), g),
                             _mm256_add_ps(_mm256_set1_ps(1.0f), e));
    return _mm256_mul_ps(h, u);
}

void jc_gelu_mul_avx2(float *y, const float *g, const float *u, int n)
{
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, gelu_mul8(_mm256_loadu_ps(g + i), _mm256_loadu_ps(u + i)));
    if (i < n) {
        __m256i m = tail_mask(n - i);
        _mm256_maskstore_ps(y + i, m,
                            gelu_mul8(_mm256_maskload_ps(g + i, m), _mm256_maskload_ps(u + i, m)));
    }
}

static inline __m256 silu_mul8(__m256 g, __m256 u)
{
    __m256 e = jc_exp_avx2(_mm256_sub_ps(_mm256_setzero_ps(), g));
    __m256 s = _mm256_div_ps(g, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
    return _mm256_mul_ps(s, u);
}

void jc_silu_mul_avx2(float *y, const float *g, const float *u, int n)
{
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, silu_mul8(_mm256_loadu_ps(g + i), _mm256_loadu_ps(u + i)));
    if (i < n) {
        __m256i m = tail_mask(n - i);
        _mm256_maskstore_ps(y + i, m,
                            silu_mul8(_mm256_maskload_ps(g + i, m), _mm256_maskload_ps(u + i, m)));
    }
}

/* x * c + swap(x) * s, with the products rounded first: the reference's bits. */
static inline __m256 rope8(__m256 x, __m256 c, __m256 s)
{
    __m256 sw = _mm256_permute_ps(x, 0xB1); /* x[i ^ 1] */
    return _mm256_add_ps(_mm256_mul_ps(x, c), _mm256_mul_ps(sw, s));
}

void jc_rope_avx2(float *x, const float *c, const float *s, int n)
{
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(
            x + i, rope8(_mm256_loadu_ps(x + i), _mm256_loadu_ps(c + i), _mm256_loadu_ps(s + i)));
    if (i < n) {
        /* n is even, so a tail holds whole pairs */
        __m256i m = tail_mask(n - i);
        __m256 v = rope8(_mm256_maskload_ps(x + i, m), _mm256_maskload_ps(c + i, m),
                         _mm256_maskload_ps(s + i, m));
        _mm256_maskstore_ps(x + i, m, v);
    }
}

/*
 * Columns in blocks of 16 (four double vectors), rows added in order, so each column sees
 * the reference's additions; then blocks of 4, then single columns.
 */
void jc_mean_pool_avx2(float *out, const float *x, size_t ld, const uint8_t *mask, size_t rows,
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
    const __m256d vc = _mm256_set1_pd((double)count);
    int j0 = 0;
    for (; j0 + 16 <= n; j0 += 16) {
        __m256d s0 = _mm256_setzero_pd(), s1 = s0, s2 = s0, s3 = s0;
        for (size_t r = 0; r < rows; r++) {
            if (mask && !mask[r])
                continue;
            const float *row = x + r * ld + j0;
            s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm_loadu_ps(row)));
            s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm_loadu_ps(row + 4)));
            s2 = _mm256_add_pd(s2, _mm256_cvtps_pd(_mm_loadu_ps(row + 8)));
            s3 = _mm256_add_pd(s3, _mm256_cvtps_pd(_mm_loadu_ps(row + 12)));
        }
        _mm_storeu_ps(out + j0, _mm256_cvtpd_ps(_mm256_div_pd(s0, vc)));
        _mm_storeu_ps(out + j0 + 4, _mm256_cvtpd_ps(_mm256_div_pd(s1, vc)));
        _mm_storeu_ps(out + j0 + 8, _mm256_cvtpd_ps(_mm256_div_pd(s2, vc)));
        _mm_storeu_ps(out + j0 + 12, _mm256_cvtpd_ps(_mm256_div_pd(s3, vc)));
    }
    for (; j0 + 4 <= n; j0 += 4) {
        __m256d s0 = _mm256_setzero_pd();
        for (size_t r = 0; r < rows; r++)
            if (!mask || mask[r])
                s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm_loadu_ps(x + r * ld + j0)));
        _mm_storeu_ps(out + j0, _mm256_cvtpd_ps(_mm256_div_pd(s0, vc)));
    }
    for (; j0 < n; j0++) {
        double sum = 0;
        for (size_t r = 0; r < rows; r++)
            if (!mask || mask[r])
                sum += x[r * ld + j0];
        out[j0] = (float)(sum / (double)count);
    }
}
