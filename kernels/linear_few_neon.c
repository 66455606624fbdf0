/*
 * The product of few rows on NEON: rows are the vector lanes, 16 at a time (four
 * registers; fewer when fewer rows are left), so each lane is one element's fused
 * multiply-add chain over k, in order; 4 columns at a time. Contract: kernels/README.md.
 */
#include "linear_few_rows.h"
#include "neon.h"

#include <arm_neon.h>

static inline __attribute__((always_inline)) void tile_v(float *c, int ldc, const float *xt, int mp,
                                                         int m, const float *w, int ldw,
                                                         const int *ends, int blocks, const int NB,
                                                         const int V)
{
    float ct[4][16];
    float32x4_t acc[4][4];

    for (int j = 0; j < NB; j++)
        for (int r = 0; r < 16; r++)
            ct[j][r] = r < m ? c[(size_t)r * ldc + j] : 0;
    for (int b = 0, k = 0; b < blocks; b++) {
#pragma GCC unroll 4
        for (int j = 0; j < NB; j++)
#pragma GCC unroll 4
            for (int v = 0; v < V; v++)
                acc[j][v] = vdupq_n_f32(0);
        for (; k < ends[b]; k++) {
            const float *x = xt + (size_t)k * mp;
            float32x4_t xv[4];
#pragma GCC unroll 4
            for (int v = 0; v < V; v++)
                xv[v] = vld1q_f32(x + 4 * v);
#pragma GCC unroll 4
            for (int j = 0; j < NB; j++) {
                float wk = w[(size_t)j * ldw + k];
#pragma GCC unroll 4
                for (int v = 0; v < V; v++)
                    acc[j][v] = vfmaq_n_f32(acc[j][v], xv[v], wk);
            }
        }
#pragma GCC unroll 4
        for (int j = 0; j < NB; j++)
#pragma GCC unroll 4
            for (int v = 0; v < V; v++)
                vst1q_f32(ct[j] + 4 * v, vaddq_f32(vld1q_f32(ct[j] + 4 * v), acc[j][v]));
    }
    for (int j = 0; j < NB; j++)
        for (int r = 0; r < m && r < 16; r++)
            c[(size_t)r * ldc + j] = ct[j][r];
}

/* As many registers of 4 rows as the rows left need: a short caption, a quarter the FMAs. */
static inline __attribute__((always_inline)) void tile(float *c, int ldc, const float *xt, int mp,
                                                       int m, const float *w, int ldw,
                                                       const int *ends, int blocks, const int NB)
{
    if (m <= 4)
        tile_v(c, ldc, xt, mp, m, w, ldw, ends, blocks, NB, 1);
    else if (m <= 8)
        tile_v(c, ldc, xt, mp, m, w, ldw, ends, blocks, NB, 2);
    else if (m <= 12)
        tile_v(c, ldc, xt, mp, m, w, ldw, ends, blocks, NB, 3);
    else
        tile_v(c, ldc, xt, mp, m, w, ldw, ends, blocks, NB, 4);
}

void jc_linear_few_neon(float *c, int ldc, const float *xt, int mp, int m, const float *w, int ldw,
                        int n, const int *ends, int blocks)
{
    LINEAR_FEW_BY_16_ROWS(tile, 4)
}
