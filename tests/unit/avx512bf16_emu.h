/*
 * The AVX-512 instructions kernels/linear_bf16_avx512.c uses, in plain C as Intel's
 * pseudo-code states them (SDM: VDPBF16PS, VCVTNEPS2BF16, masked VMOVUPS and VMOVDQU16), so
 * that the kernel's blocking, tails and masks run and are checked on any CPU. The kernel
 * built against this file (JC_AVX512BF16_EMULATED) is test code only; what the real
 * instructions do is checked by the native table where the CPU has them.
 */
#ifndef JCLIP_TESTS_AVX512BF16_EMU_H
#define JCLIP_TESTS_AVX512BF16_EMU_H

#include <math.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    float f[16];
} __m512;
typedef struct {
    uint16_t h[32];
} __m512bh;
typedef struct {
    uint16_t h[16];
} __m256bh;
typedef uint16_t __mmask16;

static inline float emu_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline uint32_t emu_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* Denormals in are zeros of their sign (DAZ); out, flushed to zeros of their sign (FTZ). */
static inline float emu_daz(float f)
{
    return fpclassify(f) == FP_SUBNORMAL ? copysignf(0.0f, f) : f;
}

/* make_fp32 of the pseudo-code, with DAZ: the bf16's bits are a float's top half. */
static inline float emu_make_fp32(uint16_t h)
{
    return emu_daz(emu_f32((uint32_t)h << 16));
}

static inline __m512 _mm512_setzero_ps(void)
{
    __m512 v;
    memset(&v, 0, sizeof v);
    return v;
}

static inline __m512 _mm512_add_ps(__m512 a, __m512 b)
{
    for (int i = 0; i < 16; i++)
        a.f[i] += b.f[i];
    return a;
}

/* A masked load reads only its lanes (the others are zero); a masked store writes only its. */
static inline __m512 _mm512_maskz_loadu_ps(__mmask16 k, const void *p)
{
    __m512 v = _mm512_setzero_ps();
    for (int i = 0; i < 16; i++)
        if (k >> i & 1)
            memcpy(&v.f[i], (const char *)p + 4 * i, 4);
    return v;
}

static inline void _mm512_mask_storeu_ps(void *p, __mmask16 k, __m512 v)
{
    for (int i = 0; i < 16; i++)
        if (k >> i & 1)
            memcpy((char *)p + 4 * i, &v.f[i], 4);
}

/*
 * VDPBF16PS: for each lane i, srcdest += a[2i+1] b[2i+1], then srcdest += a[2i] b[2i],
 * each "FP32 FMA with daz in, ftz out and RNE rounding".
 */
static inline __m512 _mm512_dpbf16_ps(__m512 src, __m512bh a, __m512bh b)
{
    for (int i = 0; i < 16; i++) {
        float s = emu_daz(src.f[i]);
        s = emu_daz(fmaf(emu_make_fp32(a.h[2 * i + 1]), emu_make_fp32(b.h[2 * i + 1]), s));
        s = emu_daz(fmaf(emu_make_fp32(a.h[2 * i]), emu_make_fp32(b.h[2 * i]), s));
        src.f[i] = s;
    }
    return src;
}

/*
 * VCVTNEPS2BF16's convert_fp32_to_bfloat16: a NaN keeps its top half, made quiet; otherwise,
 * denormals taken as zero, rounded to nearest even by adding 0x7fff and the kept lsb.
 */
static inline __m256bh _mm512_cvtneps_pbh(__m512 v)
{
    __m256bh r;
    for (int i = 0; i < 16; i++) {
        uint32_t u = emu_bits(v.f[i]);
        if (isnan(v.f[i])) {
            r.h[i] = (uint16_t)(u >> 16 | 1u << 6);
            continue;
        }
        u = emu_bits(emu_daz(v.f[i]));
        r.h[i] = (uint16_t)((u + 0x7fffu + (u >> 16 & 1u)) >> 16);
    }
    return r;
}

/* What the kernel's helpers do with VMOVDQU64, VPBROADCASTD and VMOVDQU16. */
static inline __m512bh bh_load(const uint16_t *p)
{
    __m512bh v;
    memcpy(v.h, p, sizeof v.h);
    return v;
}

static inline __m512bh bh_pair(const uint16_t *x)
{
    __m512bh v;
    for (int i = 0; i < 16; i++)
        memcpy(&v.h[2 * i], x, 2 * sizeof *x);
    return v;
}

static inline void bh_store16(uint16_t *dst, __mmask16 mask, __m256bh v)
{
    for (int i = 0; i < 16; i++)
        if (mask >> i & 1)
            dst[i] = v.h[i];
}

#endif
