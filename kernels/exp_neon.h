/*
 * exp for NEON kernels: the reduction and polynomial of exp_avx2.h on four lanes, so the
 * same error (under 2 ulp for x in [-87.3, 88.37]) and exactly 0 below.
 */
#ifndef JCLIP_EXP_NEON_H
#define JCLIP_EXP_NEON_H

#include <arm_neon.h>

static inline float32x4_t jc_exp_neg_neon(float32x4_t x)
{
    const float32x4_t lo = vdupq_n_f32(-87.33654f);
    uint32x4_t under = vcltq_f32(x, lo);
    x = vmaxq_f32(x, lo);
    /* vrndnq rounds to nearest even, as _MM_FROUND_TO_NEAREST_INT does */
    float32x4_t fx = vrndnq_f32(vmulq_f32(x, vdupq_n_f32(1.44269504088896341f)));
    float32x4_t r = vfmsq_f32(x, fx, vdupq_n_f32(0.693359375f));
    r = vfmsq_f32(r, fx, vdupq_n_f32(-2.12194440e-4f));
    float32x4_t p = vdupq_n_f32(1.9875691500e-4f);
    p = vfmaq_f32(vdupq_n_f32(1.3981999507e-3f), p, r);
    p = vfmaq_f32(vdupq_n_f32(8.3334519073e-3f), p, r);
    p = vfmaq_f32(vdupq_n_f32(4.1665795894e-2f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.6666665459e-1f), p, r);
    p = vfmaq_f32(vdupq_n_f32(5.0000001201e-1f), p, r);
    p = vfmaq_f32(vaddq_f32(r, vdupq_n_f32(1.0f)), p, vmulq_f32(r, r));
    int32x4_t e = vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(fx), vdupq_n_s32(127)), 23);
    float32x4_t v = vmulq_f32(p, vreinterpretq_f32_s32(e));
    return vreinterpretq_f32_u32(vbicq_u32(vreinterpretq_u32_f32(v), under));
}

/* exp over the whole float range: +inf above 88.37, zero below -87.3. */
static inline float32x4_t jc_exp_neon(float32x4_t x)
{
    const float32x4_t hi = vdupq_n_f32(88.3762626647949f);
    uint32x4_t over = vcgtq_f32(x, hi);
    float32x4_t r = jc_exp_neg_neon(vminq_f32(x, hi));
    return vbslq_f32(over, vdupq_n_f32(__builtin_inff()), r);
}

#endif
