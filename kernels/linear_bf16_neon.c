/*
 * The bf16 product on Arm's BF16 extension (FEAT_BF16): BFMLALT then BFMLALB, per pair of
 * k, widen the odd and then the even bf16 of four columns and multiply-add each into fp32
 * with one rounding, exactly the reference's order (VDPBF16PS's), so this table gives its
 * bits. BFDOT and BFMMLA do more per instruction but round their pair sums in their own way
 * (round to odd, unless FEAT_EBF16), which no other table can match. Rows 4 at a time, one
 * panel of 16 columns: 16 accumulators. Contract: kernels/README.md.
 */
#include "bf16.h"
#include "neon.h"

#include <arm_neon.h>
#include <string.h>

static inline __attribute__((always_inline)) void block(float *c, int ldc, const uint16_t *x,
                                                        int ldx, const uint16_t *w, int kp,
                                                        int cols, const int R)
{
    float32x4_t acc[4][4];
    for (int r = 0; r < R; r++)
        for (int v = 0; v < 4; v++)
            acc[r][v] = vdupq_n_f32(0);
    for (int p = 0; p < kp / 2; p++) {
        const uint16_t *wp = w + (size_t)p * 2 * JC_BF16_PANEL;
        bfloat16x8_t wv[4];
        for (int v = 0; v < 4; v++)
            wv[v] = vreinterpretq_bf16_u16(vld1q_u16(wp + 8 * v));
        for (int r = 0; r < R; r++) {
            uint32_t pair;
            memcpy(&pair, x + (size_t)r * ldx + 2 * p, sizeof pair);
            const bfloat16x8_t xv = vreinterpretq_bf16_u32(vdupq_n_u32(pair));
            for (int v = 0; v < 4; v++) {
                acc[r][v] = vbfmlaltq_laneq_f32(acc[r][v], wv[v], xv, 1);
                acc[r][v] = vbfmlalbq_laneq_f32(acc[r][v], wv[v], xv, 0);
            }
        }
    }
    for (int r = 0; r < R; r++) {
        float s[JC_BF16_PANEL];
        for (int v = 0; v < 4; v++)
            vst1q_f32(s + 4 * v, acc[r][v]);
        for (int j = 0; j < cols; j++)
            c[(size_t)r * ldc + j] += s[j];
    }
}

void jc_linear_bf16_neon(float *c, int ldc, const uint16_t *x, int ldx, int m, const uint16_t *w,
                         int kp, int j0, int j1)
{
    for (int j = j0; j < j1; j += JC_BF16_PANEL) {
        const uint16_t *wj = w + jc_bf16_at(j, 0, 0, kp);
        const int cols = j1 - j < JC_BF16_PANEL ? j1 - j : JC_BF16_PANEL;
        int r = 0;
        for (; r + 4 <= m; r += 4)
            block(c + (size_t)r * ldc + j, ldc, x + (size_t)r * ldx, ldx, wj, kp, cols, 4);
        const uint16_t *xr = x + (size_t)r * ldx;
        float *cr = c + (size_t)r * ldc + j;
        switch (m - r) {
        case 3:
            block(cr, ldc, xr, ldx, wj, kp, cols, 3);
            break;
        case 2:
            block(cr, ldc, xr, ldx, wj, kp, cols, 2);
            break;
        case 1:
            block(cr, ldc, xr, ldx, wj, kp, cols, 1);
            break;
        default:
            break;
        }
    }
}
