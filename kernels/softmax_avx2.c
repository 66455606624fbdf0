#include "exp_avx2.h"
#include "fma_avx2.h"
#include "kernels.h"
#include "x86.h"

#include <math.h>

static float hmax(__m256 v)
{
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

static float hsum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* exp(s - max), the sum, then the scaling; tails of n % 8 go through masked lanes. */
static void softmax_tail(float *s, int n, float max)
{
    __m256 vmax = _mm256_set1_ps(max), vsum = _mm256_setzero_ps();
    int j = 0;
    for (; j + 8 <= n; j += 8) {
        __m256 e = jc_exp_neg_avx2(_mm256_sub_ps(_mm256_loadu_ps(s + j), vmax));
        _mm256_storeu_ps(s + j, e);
        vsum = _mm256_add_ps(vsum, e);
    }
    float sum = hsum(vsum);
    for (; j < n; j++) {
        s[j] = expf(s[j] - max);
        sum += s[j];
    }
    __m256 inv = _mm256_set1_ps(1.0f / sum);
    for (j = 0; j + 8 <= n; j += 8)
        _mm256_storeu_ps(s + j, _mm256_mul_ps(_mm256_loadu_ps(s + j), inv));
    for (; j < n; j++)
        s[j] *= 1.0f / sum;
}

void jc_softmax_avx2(float *s, int n)
{
    __m256 vmax = _mm256_set1_ps(-INFINITY);
    int j = 0;
    for (; j + 8 <= n; j += 8)
        vmax = _mm256_max_ps(vmax, _mm256_loadu_ps(s + j));
    float max = hmax(vmax);
    for (; j < n; j++)
        max = fmaxf(max, s[j]);
    softmax_tail(s, n, max);
}

void jc_softmax_alibi_row_avx2(float *s, int n, float scale, float slope, int i,
                               const uint8_t *mask)
{
    const __m256 vscale = _mm256_set1_ps(scale), vslope = _mm256_set1_ps(-slope);
    const __m256 vi = _mm256_set1_ps((float)i), step = _mm256_set1_ps(8.0f);
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 vj = _mm256_setr_ps(0, 1, 2, 3, 4, 5, 6, 7), vmax = _mm256_set1_ps(-INFINITY);
    int j = 0;

    for (; j + 8 <= n; j += 8, vj = _mm256_add_ps(vj, step)) {
        __m256 d = _mm256_and_ps(_mm256_sub_ps(vi, vj), absmask);
        __m256 v = jc_fmadd256(d, vslope, _mm256_mul_ps(_mm256_loadu_ps(s + j), vscale));
        if (mask) {
            __m128i m8 = _mm_loadl_epi64((const __m128i *)(mask + j));
            __m256i m32 = _mm256_cvtepu8_epi32(m8);
            __m256 pad = _mm256_castsi256_ps(_mm256_cmpeq_epi32(m32, _mm256_setzero_si256()));
            v = _mm256_add_ps(v, _mm256_and_ps(pad, _mm256_set1_ps(-10000.0f)));
        }
        _mm256_storeu_ps(s + j, v);
        vmax = _mm256_max_ps(vmax, v);
    }
    float max = hmax(vmax);
    for (; j < n; j++) {
        float d = (float)(i > j ? i - j : j - i);
        s[j] = s[j] * scale + (mask && !mask[j] ? -10000.0f : 0.0f) + -slope * d;
        max = fmaxf(max, s[j]);
    }
    softmax_tail(s, n, max);
}

void jc_softmax_scaled_avx2(float *s, int n, float scale)
{
    __m256 vscale = _mm256_set1_ps(scale), vmax = _mm256_set1_ps(-INFINITY);
    int j = 0;
    for (; j + 8 <= n; j += 8) {
        __m256 v = _mm256_mul_ps(_mm256_loadu_ps(s + j), vscale);
        _mm256_storeu_ps(s + j, v);
        vmax = _mm256_max_ps(vmax, v);
    }
    float max = hmax(vmax);
    for (; j < n; j++) {
        s[j] *= scale;
        max = fmaxf(max, s[j]);
    }
    softmax_tail(s, n, max);
}
