/*
 * The product of few rows on AVX-512: rows are the vector lanes (16 a register, up to 4
 * registers), so each lane is one element's FMA chain over k, in order, with a broadcast
 * weight; NB columns at a time read NB rows of w once for every row of x, while the next
 * NB rows are prefetched in memory order. Contract: kernels/README.md.
 */
#include "x86.h"

#include <immintrin.h>

#define INLINE static inline __attribute__((always_inline))

/* One k: acc[j][v] += xt[k][16v ..] * w[j][k]. */
INLINE void step(__m512 *acc, const float *x, const float *const *wr, int k, const int NB,
                 const int MV)
{
    __m512 xv[4];
#pragma GCC unroll 4
    for (int v = 0; v < MV; v++)
        xv[v] = _mm512_loadu_ps(x + 16 * v);
#pragma GCC unroll 8
    for (int j = 0; j < NB; j++) {
        __m512 wb = _mm512_set1_ps(wr[j][k]);
#pragma GCC unroll 4
        for (int v = 0; v < MV; v++)
            acc[j * MV + v] = _mm512_fmadd_ps(xv[v], wb, acc[j * MV + v]);
    }
}

/*
 * Columns j .. j + NB of every row, c's tile transposed in ct, one block of k at a time;
 * next: the following NB rows of w (or these again), prefetched a line per two k.
 */
INLINE void tile(float *c, int ldc, const float *xt, int mp, int m, const float *w, int ldw,
                 const int *ends, int blocks, const int NB, const int MV, const float *next)
{
    float ct[8][JC_FEW_ROWS] __attribute__((aligned(64)));
    __m512 acc[8 * 4];
    const float *wr[8];

    for (int j = 0; j < NB; j++) {
        wr[j] = w + (size_t)j * ldw;
        for (int r = 0; r < mp; r++)
            ct[j][r] = r < m ? c[(size_t)r * ldc + j] : 0;
    }
    for (int b = 0, k = 0; b < blocks; b++) {
#pragma GCC unroll 32
        for (int i = 0; i < NB * MV; i++)
            acc[i] = _mm512_setzero_ps();
        /* two k a turn for one register of rows (5-10% faster), one for more (~40%) */
        if (MV == 1)
            for (; k + 2 <= ends[b]; k += 2) {
                _mm_prefetch((const char *)(next + (size_t)k * NB), _MM_HINT_T0);
                step(acc, xt + (size_t)k * mp, wr, k, NB, MV);
                step(acc, xt + (size_t)(k + 1) * mp, wr, k + 1, NB, MV);
            }
        for (; k < ends[b]; k++) {
            if (!(k & 1))
                _mm_prefetch((const char *)(next + (size_t)k * NB), _MM_HINT_T0);
            step(acc, xt + (size_t)k * mp, wr, k, NB, MV);
        }
#pragma GCC unroll 8
        for (int j = 0; j < NB; j++)
#pragma GCC unroll 4
            for (int v = 0; v < MV; v++)
                _mm512_store_ps(ct[j] + 16 * v,
                                _mm512_add_ps(_mm512_load_ps(ct[j] + 16 * v), acc[j * MV + v]));
    }
    for (int j = 0; j < NB; j++)
        for (int r = 0; r < m; r++)
            c[(size_t)r * ldc + j] = ct[j][r];
}

#define COLUMNS(NB, MV)                                                                            \
    do {                                                                                           \
        for (; j + (NB) <= n; j += (NB)) {                                                         \
            const float *wj = w + (size_t)j * ldw;                                                 \
            tile(c + j, ldc, xt, mp, m, wj, ldw, ends, blocks, NB, MV,                             \
                 j + 2 * (NB) <= n ? wj + (size_t)(NB)*ldw : wj);                                  \
        }                                                                                          \
        for (; j < n; j++) {                                                                       \
            const float *wj = w + (size_t)j * ldw;                                                 \
            tile(c + j, ldc, xt, mp, m, wj, ldw, ends, blocks, 1, MV, wj);                         \
        }                                                                                          \
    } while (0)

void jc_linear_few_avx512(float *c, int ldc, const float *xt, int mp, int m, const float *w,
                          int ldw, int n, const int *ends, int blocks)
{
    int j = 0;
    switch (mp / 16) {
    case 1:
        COLUMNS(8, 1);
        break;
    case 2:
        COLUMNS(6, 2);
        break;
    case 3:
        COLUMNS(4, 3);
        break;
    default:
        COLUMNS(4, 4);
        break;
    }
}
