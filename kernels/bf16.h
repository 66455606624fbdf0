/*
 * bfloat16 as the bf16 kernels take it: the rounding of both inputs of a product, and the
 * packed layout of a weight matrix. Contracts: kernels/README.md.
 */
#ifndef JCLIP_KERNELS_BF16_H
#define JCLIP_KERNELS_BF16_H

#include <stdint.h>
#include <string.h>

/* Columns of a weight matrix per panel of its packed layout (one ZMM of fp32 results). */
#define JC_BF16_PANEL 16

/*
 * f rounded to bfloat16, to nearest even, as VCVTNEPS2BF16 does: a denormal is taken as zero
 * of its sign, a NaN stays a (quiet) NaN, a value past the largest bf16 becomes infinity.
 */
static inline uint16_t jc_bf16_round(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    /* without branches, so that a loop of it compiles to vectors */
    const uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    const uint32_t zero = (u >> 16) & 0x8000u, nan = (u >> 16) | 0x0040u;
    const uint32_t r = (u & 0x7f800000u) ? rounded : zero;
    return (uint16_t)((u & 0x7fffffffu) > 0x7f800000u ? nan : r);
}

static inline float jc_bf16_float(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* k rounded up to a whole pair: the values a packed column and an x row hold. */
static inline int jc_bf16_kp(int k)
{
    return (k + 1) & ~1;
}

/*
 * Elements of w [n, k] packed: column j's pair p (its k = 2p and 2p + 1) is at
 * ((j / 16) * kp / 2 + p) * 32 + (j % 16) * 2 + (0, 1), the columns past n (in the last
 * panel) and k = kp - 1 past an odd k zero. A panel is VDPBF16PS's B operand (and an AMX B
 * tile's rows), pair after pair.
 */
static inline size_t jc_bf16_packed_elems(int n, int k)
{
    return (size_t)((n + JC_BF16_PANEL - 1) / JC_BF16_PANEL) * JC_BF16_PANEL *
           (size_t)jc_bf16_kp(k);
}

/* The element of column j, pair p, half e (k = 2p + e) in a packed matrix of kp values a column. */
static inline size_t jc_bf16_at(int j, int p, int e, int kp)
{
    return ((size_t)(j / JC_BF16_PANEL) * (size_t)(kp / 2) + (size_t)p) * 2 * JC_BF16_PANEL +
           (size_t)(j % JC_BF16_PANEL) * 2 + (size_t)e;
}

/*
 * Each pair's two values exchanged: how x and the packed weights hold them for a table
 * whose bf16_swapped is set (kernels.h).
 */
static inline void jc_bf16_swap_pairs(uint16_t *v, size_t pairs)
{
    for (size_t i = 0; i < pairs; i++) {
        const uint16_t t = v[2 * i];
        v[2 * i] = v[2 * i + 1];
        v[2 * i + 1] = t;
    }
}

#endif
