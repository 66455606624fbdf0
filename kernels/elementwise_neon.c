/*
 * Element-wise kernels for NEON: four lanes, the exp and erf of the AVX2 kernels. Tails of
 * n % 4 go through a four-float buffer so that they take the same path as full vectors.
 * Contracts: kernels/README.md.
 */
#include "exp_neon.h"
#include "neon.h"

#include <math.h>
#include <string.h>

/* Lanes [0, n) of p, n < 4, the others zero. */
static inline float32x4_t load_tail(const float *p, int n)
{
    float t[4] = {0};
    memcpy(t, p, (size_t)n * sizeof *p);
    return vld1q_f32(t);
}

static inline void store_tail(float *p, float32x4_t v, int n)
{
    float t[4];
    vst1q_f32(t, v);
    memcpy(p, t, (size_t)n * sizeof *p);
}

void jc_layernorm_neon(float *y, const float *x, const float *w, const float *b, int n, float eps)
{
    float32x4_t s0 = vdupq_n_f32(0), s1 = s0, s2 = s0, s3 = s0;
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = vaddq_f32(s0, vld1q_f32(x + i));
        s1 = vaddq_f32(s1, vld1q_f32(x + i + 4));
        s2 = vaddq_f32(s2, vld1q_f32(x + i + 8));
        s3 = vaddq_f32(s3, vld1q_f32(x + i + 12));
    }
    float mean = vaddvq_f32(vaddq_f32(vaddq_f32(s0, s1), vaddq_f32(s2, s3)));
    for (; i < n; i++)
        mean += x[i];
    mean /= (float)n;

    float32x4_t vm = vdupq_n_f32(mean);
    s0 = s1 = s2 = s3 = vdupq_n_f32(0);
    for (i = 0; i + 16 <= n; i += 16) {
        float32x4_t d0 = vsubq_f32(vld1q_f32(x + i), vm);
        float32x4_t d1 = vsubq_f32(vld1q_f32(x + i + 4), vm);
        float32x4_t d2 = vsubq_f32(vld1q_f32(x + i + 8), vm);
        float32x4_t d3 = vsubq_f32(vld1q_f32(x + i + 12), vm);
        s0 = vfmaq_f32(s0, d0, d0);
        s1 = vfmaq_f32(s1, d1, d1);
        s2 = vfmaq_f32(s2, d2, d2);
        s3 = vfmaq_f32(s3, d3, d3);
    }
    float var = vaddvq_f32(vaddq_f32(vaddq_f32(s0, s1), vaddq_f32(s2, s3)));
    for (; i < n; i++)
        var += (x[i] - mean) * (x[i] - mean);
    var /= (float)n;

    float rstd = 1.0f / sqrtf(var + eps);
    float32x4_t vr = vdupq_n_f32(rstd);
    for (i = 0; i + 4 <= n; i += 4) {
        float32x4_t v = vmulq_f32(vsubq_f32(vld1q_f32(x + i), vm), vr);
        vst1q_f32(y + i, vfmaq_f32(vld1q_f32(b + i), v, vld1q_f32(w + i)));
    }
    for (; i < n; i++)
        y[i] = (x[i] - mean) * rstd * w[i] + b[i];
}

void jc_add_neon(float *y, const float *a, int n)
{
    int i = 0;
    for (; i + 4 <= n; i += 4)
        vst1q_f32(y + i, vaddq_f32(vld1q_f32(y + i), vld1q_f32(a + i)));
    for (; i < n; i++)
        y[i] += a[i];
}

/* erf by Abramowitz and Stegun 7.1.26, as erf_avx2() in elementwise_avx2.c; odd in x. */
static inline float32x4_t erf_neon(float32x4_t x)
{
    float32x4_t ax = vabsq_f32(x);
    float32x4_t t =
        vdivq_f32(vdupq_n_f32(1.0f), vfmaq_f32(vdupq_n_f32(1.0f), ax, vdupq_n_f32(0.3275911f)));
    float32x4_t p = vdupq_n_f32(1.061405429f);
    p = vfmaq_f32(vdupq_n_f32(-1.453152027f), p, t);
    p = vfmaq_f32(vdupq_n_f32(1.421413741f), p, t);
    p = vfmaq_f32(vdupq_n_f32(-0.284496736f), p, t);
    p = vfmaq_f32(vdupq_n_f32(0.254829592f), p, t);
    p = vmulq_f32(p, t);
    float32x4_t e = jc_exp_neg_neon(vmulq_f32(vnegq_f32(ax), ax));
    float32x4_t r = vfmsq_f32(vdupq_n_f32(1.0f), p, e);
    /* r | sign(x), as the AVX2 erf does */
    uint32x4_t sign = vandq_u32(vreinterpretq_u32_f32(x), vdupq_n_u32(0x80000000u));
    return vreinterpretq_f32_u32(vorrq_u32(vreinterpretq_u32_f32(r), sign));
}

static inline float32x4_t gelu_mul4(float32x4_t g, float32x4_t u)
{
    float32x4_t e = erf_neon(vmulq_f32(g, vdupq_n_f32(0.70710678118654752f)));
    float32x4_t h = vmulq_f32(vmulq_f32(vdupq_n_f32(0.5f), g), vaddq_f32(vdupq_n_f32(1.0f), e));
    return vmulq_f32(h, u);
}

void jc_gelu_mul_neon(float *y, const float *g, const float *u, int n)
{
    int i = 0;
    for (; i + 4 <= n; i += 4)
        vst1q_f32(y + i, gelu_mul4(vld1q_f32(g + i), vld1q_f32(u + i)));
    if (i < n)
        store_tail(y + i, gelu_mul4(load_tail(g + i, n - i), load_tail(u + i, n - i)), n - i);
}

static inline float32x4_t silu_mul4(float32x4_t g, float32x4_t u)
{
    float32x4_t e = jc_exp_neon(vnegq_f32(g));
    return vmulq_f32(vdivq_f32(g, vaddq_f32(vdupq_n_f32(1.0f), e)), u);
}

void jc_silu_mul_neon(float *y, const float *g, const float *u, int n)
{
    int i = 0;
    for (; i + 4 <= n; i += 4)
        vst1q_f32(y + i, silu_mul4(vld1q_f32(g + i), vld1q_f32(u + i)));
    if (i < n)
        store_tail(y + i, silu_mul4(load_tail(g + i, n - i), load_tail(u + i, n - i)), n - i);
}

/* x * c + swap(x) * s, with the products rounded first: the reference's bits. */
void jc_rope_neon(float *x, const float *c, const float *s, int n)
{
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        float32x4_t v = vld1q_f32(x + i);
        float32x4_t sw = vrev64q_f32(v); /* x[i ^ 1] */
        vst1q_f32(x + i,
                  vaddq_f32(vmulq_f32(v, vld1q_f32(c + i)), vmulq_f32(sw, vld1q_f32(s + i))));
    }
    if (i < n) {
        /* n is even, so the tail is one pair */
        float32x2_t v = vld1_f32(x + i);
        float32x2_t sw = vrev64_f32(v);
        vst1_f32(x + i, vadd_f32(vmul_f32(v, vld1_f32(c + i)), vmul_f32(sw, vld1_f32(s + i))));
    }
}

/* Adds 4 columns of a row, widened to double, to lo (columns 0, 1) and hi (2, 3). */
static inline void add4_f64(float64x2_t *lo, float64x2_t *hi, const float *p)
{
    float32x4_t v = vld1q_f32(p);
    *lo = vaddq_f64(*lo, vcvt_f64_f32(vget_low_f32(v)));
    *hi = vaddq_f64(*hi, vcvt_high_f64_f32(v));
}

static inline void store4_mean(float *p, float64x2_t lo, float64x2_t hi, float64x2_t count)
{
    vst1q_f32(p, vcvt_high_f32_f64(vcvt_f32_f64(vdivq_f64(lo, count)), vdivq_f64(hi, count)));
}

/*
 * Columns in blocks of 16 (eight double vectors), rows added in order, so each column sees
 * the reference's additions; then blocks of 4, then single columns.
 */
void jc_mean_pool_neon(float *out, const float *x, size_t ld, const uint8_t *mask, size_t rows,
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
    const float64x2_t vc = vdupq_n_f64((double)count);
    int j0 = 0;
    for (; j0 + 16 <= n; j0 += 16) {
        float64x2_t s[8];
        for (int k = 0; k < 8; k++)
            s[k] = vdupq_n_f64(0);
        for (size_t r = 0; r < rows; r++) {
            if (mask && !mask[r])
                continue;
            const float *row = x + r * ld + j0;
            add4_f64(&s[0], &s[1], row);
            add4_f64(&s[2], &s[3], row + 4);
            add4_f64(&s[4], &s[5], row + 8);
            add4_f64(&s[6], &s[7], row + 12);
        }
        for (int k = 0; k < 4; k++)
            store4_mean(out + j0 + 4 * k, s[2 * k], s[2 * k + 1], vc);
    }
    for (; j0 + 4 <= n; j0 += 4) {
        float64x2_t lo = vdupq_n_f64(0), hi = lo;
        for (size_t r = 0; r < rows; r++)
            if (!mask || mask[r])
                add4_f64(&lo, &hi, x + r * ld + j0);
        store4_mean(out + j0, lo, hi, vc);
    }
    for (; j0 < n; j0++) {
        double sum = 0;
        for (size_t r = 0; r < rows; r++)
            if (!mask || mask[r])
                sum += x[r * ld + j0];
        out[j0] = (float)(sum / (double)count);
    }
}
