/*
 * The product of few rows on AVX2: rows are the vector lanes, 16 at a time (two registers;
 * one when at most 8 are left), so each lane is one element's FMA chain over k, in order;
 * 6 columns at a time (12 accumulators: the FMA units stay busy through their latency).
 * While a tile runs, the next tile's columns are prefetched: with K = 768 a column is only
 * 48 lines, too short a stream for the hardware prefetcher to cover its start, and a
 * 16-token caption took 12-15% longer without (Zen 3). Half a column ahead of k, not at k:
 * where a column is a multiple of 4 KiB (K = 3072, the MLP's down projection) the lines of
 * all columns at one k share an L1 set, and the 6 prefetched with the 6 in use overflowed
 * its 8 ways (Zen 3 fetches T1 prefetches into L1 as well): one core ran that product at
 * 75-80 GFLOP/s at k, 97-99 half a column ahead, the same as for K = 768.
 * Contract: kernels/README.md.
 */
#include "fma_avx2.h"
#include "linear_few_rows.h"
#include "x86.h"

static inline __attribute__((always_inline)) void tile_v(float *c, int ldc, const float *xt, int mp,
                                                         int m, const float *w, int ldw,
                                                         const int *ends, int blocks, const int NB,
                                                         const int V)
{
    float ct[6][16] __attribute__((aligned(32)));
    __m256 acc[6][2];
    const int K = ends[blocks - 1], ahead = K / 32 * 16; /* prefetch distance: see the top */

    for (int j = 0; j < NB; j++)
        for (int r = 0; r < 16; r++)
            ct[j][r] = r < m ? c[(size_t)r * ldc + j] : 0;
    for (int b = 0, k = 0; b < blocks; b++) {
#pragma GCC unroll 6
        for (int j = 0; j < NB; j++)
            for (int v = 0; v < V; v++)
                acc[j][v] = _mm256_setzero_ps();
        for (; k < ends[b]; k++) {
            const float *x = xt + (size_t)k * mp;
            if ((k & 15) == 0) { /* the next columns' lines, one per column per 16 k */
                const int kp = k + ahead < K ? k + ahead : k + ahead - K;
#pragma GCC unroll 6
                for (int j = 0; j < NB; j++)
                    _mm_prefetch((const char *)(w + (size_t)(NB + j) * ldw + kp), _MM_HINT_T1);
            }
            __m256 x0 = _mm256_loadu_ps(x), x1 = V > 1 ? _mm256_loadu_ps(x + 8) : x0;
#pragma GCC unroll 6
            for (int j = 0; j < NB; j++) {
                __m256 wb = _mm256_broadcast_ss(w + (size_t)j * ldw + k);
                acc[j][0] = jc_fmadd256(x0, wb, acc[j][0]);
                if (V > 1)
                    acc[j][1] = jc_fmadd256(x1, wb, acc[j][1]);
            }
        }
#pragma GCC unroll 6
        for (int j = 0; j < NB; j++)
            for (int v = 0; v < V; v++)
                _mm256_store_ps(ct[j] + 8 * v,
                                _mm256_add_ps(_mm256_load_ps(ct[j] + 8 * v), acc[j][v]));
    }
    for (int j = 0; j < NB; j++)
        for (int r = 0; r < m && r < 16; r++)
            c[(size_t)r * ldc + j] = ct[j][r];
}

/* 9-16 rows in two registers; at most 8 (a short caption) in one, with half the FMAs. */
static inline __attribute__((always_inline)) void tile(float *c, int ldc, const float *xt, int mp,
                                                       int m, const float *w, int ldw,
                                                       const int *ends, int blocks, const int NB)
{
    if (m <= 8)
        tile_v(c, ldc, xt, mp, m, w, ldw, ends, blocks, NB, 1);
    else
        tile_v(c, ldc, xt, mp, m, w, ldw, ends, blocks, NB, 2);
}

void jc_linear_few_avx2(float *c, int ldc, const float *xt, int mp, int m, const float *w, int ldw,
                        int n, const int *ends, int blocks)
{
    LINEAR_FEW_BY_16_ROWS(tile, 6)
}
