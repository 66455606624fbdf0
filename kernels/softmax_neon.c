/*
 * Softmax kernels for NEON: eight floats a step in two vectors, tails of n % 8 in scalar
 * code, as the AVX2 kernels do. Contracts: kernels/README.md.
 */
#include "exp_neon.h"
#include "kernels.h"
#include "neon.h"

#include <math.h>

/* exp(s - max), the sum in eight lanes, then the scaling. */
static void softmax_tail(float *s, int n, float max)
{
    float32x4_t vmax = vdupq_n_f32(max), s0 = vdupq_n_f32(0), s1 = s0;
    int j = 0;
    for (; j + 8 <= n; j += 8) {
        float32x4_t e0 = jc_exp_neg_neon(vsubq_f32(vld1q_f32(s + j), vmax));
        float32x4_t e1 = jc_exp_neg_neon(vsubq_f32(vld1q_f32(s + j + 4), vmax));
        vst1q_f32(s + j, e0);
        vst1q_f32(s + j + 4, e1);
        s0 = vaddq_f32(s0, e0);
        s1 = vaddq_f32(s1, e1);
    }
    float sum = vaddvq_f32(vaddq_f32(s0, s1));
    for (; j < n; j++) {
        s[j] = expf(s[j] - max);
        sum += s[j];
    }
    float inv = 1.0f / sum;
    float32x4_t vinv = vdupq_n_f32(inv);
    for (j = 0; j + 4 <= n; j += 4)
        vst1q_f32(s + j, vmulq_f32(vld1q_f32(s + j), vinv));
    for (; j < n; j++)
        s[j] *= inv;
}

void jc_softmax_neon(float *s, int n)
{
    float32x4_t m0 = vdupq_n_f32(-INFINITY), m1 = m0;
    int j = 0;
    for (; j + 8 <= n; j += 8) {
        m0 = vmaxq_f32(m0, vld1q_f32(s + j));
        m1 = vmaxq_f32(m1, vld1q_f32(s + j + 4));
    }
    float max = vmaxvq_f32(vmaxq_f32(m0, m1));
    for (; j < n; j++)
        max = fmaxf(max, s[j]);
    softmax_tail(s, n, max);
}

/* Eight mask bytes as two masks of four lanes: all ones where the key is padding. */
static inline void pad_lanes(const uint8_t *mask, uint32x4_t *lo, uint32x4_t *hi)
{
    uint16x8_t m16 = vmovl_u8(vld1_u8(mask));
    *lo = vceqzq_u32(vmovl_u16(vget_low_u16(m16)));
    *hi = vceqzq_u32(vmovl_u16(vget_high_u16(m16)));
}

void jc_softmax_alibi_row_neon(float *s, int n, float scale, float slope, int i,
                               const uint8_t *mask)
{
    const float32x4_t vscale = vdupq_n_f32(scale), vslope = vdupq_n_f32(-slope);
    const float32x4_t vi = vdupq_n_f32((float)i), step = vdupq_n_f32(8.0f);
    const float32x4_t pad = vdupq_n_f32(-10000.0f);
    float32x4_t j0 = {0, 1, 2, 3}, j1 = {4, 5, 6, 7};
    float32x4_t m0 = vdupq_n_f32(-INFINITY), m1 = m0;
    int j = 0;

    for (; j + 8 <= n; j += 8, j0 = vaddq_f32(j0, step), j1 = vaddq_f32(j1, step)) {
        /* |i - j| is exact: both are integers far below 2^24 */
        float32x4_t v0 = vfmaq_f32(vmulq_f32(vld1q_f32(s + j), vscale), vabdq_f32(vi, j0), vslope);
        float32x4_t v1 =
            vfmaq_f32(vmulq_f32(vld1q_f32(s + j + 4), vscale), vabdq_f32(vi, j1), vslope);
        if (mask) {
            uint32x4_t p0, p1;
            pad_lanes(mask + j, &p0, &p1);
            v0 = vaddq_f32(v0, vreinterpretq_f32_u32(vandq_u32(p0, vreinterpretq_u32_f32(pad))));
            v1 = vaddq_f32(v1, vreinterpretq_f32_u32(vandq_u32(p1, vreinterpretq_u32_f32(pad))));
        }
        vst1q_f32(s + j, v0);
        vst1q_f32(s + j + 4, v1);
        m0 = vmaxq_f32(m0, v0);
        m1 = vmaxq_f32(m1, v1);
    }
    float max = vmaxvq_f32(vmaxq_f32(m0, m1));
    for (; j < n; j++) {
        float d = (float)(i > j ? i - j : j - i);
        s[j] = s[j] * scale + (mask && !mask[j] ? -10000.0f : 0.0f) + -slope * d;
        max = fmaxf(max, s[j]);
    }
    softmax_tail(s, n, max);
}

void jc_softmax_scaled_neon(float *s, int n, float scale)
{
    float32x4_t vscale = vdupq_n_f32(scale), m0 = vdupq_n_f32(-INFINITY), m1 = m0;
    int j = 0;
    for (; j + 8 <= n; j += 8) {
        float32x4_t v0 = vmulq_f32(vld1q_f32(s + j), vscale);
        float32x4_t v1 = vmulq_f32(vld1q_f32(s + j + 4), vscale);
        vst1q_f32(s + j, v0);
        vst1q_f32(s + j + 4, v1);
        m0 = vmaxq_f32(m0, v0);
        m1 = vmaxq_f32(m1, v1);
    }
    float max = vmaxvq_f32(vmaxq_f32(m0, m1));
    for (; j < n; j++) {
        s[j] *= scale;
        max = fmaxf(max, s[j]);
    }
    softmax_tail(s, n, max);
}
