/*
 * The product of few rows on AVX-512: rows are the vector lanes (16 a register, up to 4
 * registers), so each lane is one element's FMA chain over k, in order, with a broadcast
 * weight; NB columns at a time read NB rows of w once for every row of x. Contract:
 * kernels/README.md.
 */
#include "x86.h"

#include <immintrin.h>

#ifndef PREFETCH
#define PREFETCH 1024
#endif

/* Columns j .. j + NB of every row: c tile transposed in ct, one block of k at a time. */
static inline __attribute__((always_inline)) void tile(float *c, int ldc, const float *xt, int mp,
                                                       int m, const float *w, int ldw,
                                                       const int *ends, int blocks, const int NB,
                                                       const int MV)
{
    float ct[8][JC_FEW_ROWS] __attribute__((aligned(64)));
    __m512 acc[8 * 4];

    for (int j = 0; j < NB; j++) {
        for (int r = 0; r < m; r++)
            ct[j][r] = c[(size_t)r * ldc + j];
        for (int r = m; r < mp; r++)
            ct[j][r] = 0;
    }
    const float *wr[8];
#pragma GCC unroll 8
    for (int j = 0; j < NB; j++)
        wr[j] = w + (size_t)j * ldw;
    for (int b = 0, k = 0; b < blocks; b++) {
#pragma GCC unroll 32
        for (int i = 0; i < NB * MV; i++)
            acc[i] = _mm512_setzero_ps();
        for (; k < ends[b]; k++) {
            const float *x = xt + (size_t)k * mp;
            if ((k & 15) == 0)
#pragma GCC unroll 8
                for (int j = 0; j < NB; j++)
                    _mm_prefetch((const char *)(wr[j] + k + PREFETCH), _MM_HINT_T0);
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
        for (; j + (NB) <= n; j += (NB))                                                           \
            tile(c + j, ldc, xt, mp, m, w + (size_t)j * ldw, ldw, ends, blocks, NB, MV);           \
        for (; j < n; j++)                                                                         \
            tile(c + j, ldc, xt, mp, m, w + (size_t)j * ldw, ldw, ends, blocks, 1, MV);            \
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
