/*
 * The bf16 product as the contract states it, one element at a time: the oracle of the
 * bf16 kernels, and what --precision bf16 runs on the reference table. Contract:
 * kernels/kernels.h and kernels/README.md.
 */
#include "bf16.h"
#include "ref.h"

#include <float.h>
#include <math.h>

void jc_round_bf16_ref(uint16_t *dst, const float *src, int n)
{
    for (int i = 0; i < n; i++)
        dst[i] = jc_bf16_round(src[i]);
}

/* VDPBF16PS's output flush: a denormal result becomes zero of its sign. */
static inline float flush(float s)
{
    return fabsf(s) < FLT_MIN ? copysignf(0.0f, s) : s;
}

void jc_linear_bf16_ref(float *c, int ldc, const uint16_t *x, int ldx, int m, const uint16_t *w,
                        int kp, int j0, int j1)
{
    for (int r = 0; r < m; r++) {
        const uint16_t *xr = x + (size_t)r * ldx;
        for (int j = j0; j < j1; j++) {
            const uint16_t *wj = w + jc_bf16_at(j, 0, 0, kp);
            float s = 0;
            for (int p = 0; p < kp / 2; p++) {
                const uint16_t *wp = wj + (size_t)p * 2 * JC_BF16_PANEL;
                s = flush(fmaf(jc_bf16_float(xr[2 * p + 1]), jc_bf16_float(wp[1]), s));
                s = flush(fmaf(jc_bf16_float(xr[2 * p]), jc_bf16_float(wp[0]), s));
            }
            c[(size_t)r * ldc + j] += s;
        }
    }
}
