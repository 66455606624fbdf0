/*
 * The bf16 product on AVX512-BF16 (Cooper Lake, Sapphire Rapids and later Xeons; Zen 4 and
 * 5). One VDPBF16PS takes a pair of k for 16 columns: the packed panel's pair p is its B
 * operand as stored (bf16.h), the row's pair broadcast its A operand, and the instruction's
 * order (odd product, then even, each one rounding, DAZ and FTZ) is the contract's, so this
 * table gives the reference's bits. Up to 4 panels by 6 rows at a time: 24 accumulators,
 * 4 loads of weights and 6 broadcasts for every 24 instructions. The panels of a group are
 * read from memory once and from cache for the group's other rows. round_bf16 is
 * VCVTNEPS2BF16, whose rounding jc_bf16_round is. Contract: kernels/README.md.
 *
 * Built with JC_AVX512BF16_EMULATED, the same source runs on any CPU against
 * tests/unit/avx512bf16_emu.h, the instructions as Intel's pseudo-code states them; the
 * kernel test checks that build on every machine and the native one where the CPU runs it.
 */
#include "bf16.h"

#include <stdint.h>
#include <string.h>

#ifdef JC_AVX512BF16_EMULATED
#include "avx512bf16_emu.h"
#define jc_linear_bf16_avx512 jc_linear_bf16_avx512_emulated
#define jc_round_bf16_avx512  jc_round_bf16_avx512_emulated
#else
#include <immintrin.h>

/* A panel's pair p: 16 columns' (2p, 2p + 1), 64 bytes. */
static inline __m512bh bh_load(const uint16_t *p)
{
    return (__m512bh)_mm512_loadu_si512(p);
}

/* One row's pair in every lane. */
static inline __m512bh bh_pair(const uint16_t *x)
{
    uint32_t v;
    memcpy(&v, x, sizeof v);
    return (__m512bh)_mm512_set1_epi32((int)v);
}

static inline void bh_store16(uint16_t *dst, __mmask16 mask, __m256bh v)
{
    _mm256_mask_storeu_epi16(dst, mask, (__m256i)v);
}
#endif

void jc_linear_bf16_avx512(float *c, int ldc, const uint16_t *x, int ldx, int m, const uint16_t *w,
                           int kp, int j0, int j1);
void jc_round_bf16_avx512(uint16_t *dst, const float *src, int n);

#define INLINE static inline __attribute__((always_inline))
#define ROWS   6
#define PANELS 4

/*
 * Rows R of x against panels P from w (cols columns in all, the last panel's past cols not
 * stored): c[r][j] += s(r, j).
 */
INLINE void block(float *c, int ldc, const uint16_t *x, int ldx, const uint16_t *w, int kp,
                  int cols, const int R, const int P)
{
    __m512 acc[ROWS][PANELS];
    const size_t panel = (size_t)kp * JC_BF16_PANEL;
#pragma GCC unroll 6
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int q = 0; q < P; q++)
            acc[r][q] = _mm512_setzero_ps();
    for (int p = 0; p < kp / 2; p++) {
        __m512bh wv[PANELS];
#pragma GCC unroll 4
        for (int q = 0; q < P; q++)
            wv[q] = bh_load(w + q * panel + (size_t)p * 2 * JC_BF16_PANEL);
#pragma GCC unroll 6
        for (int r = 0; r < R; r++) {
            const __m512bh xv = bh_pair(x + (size_t)r * ldx + 2 * p);
#pragma GCC unroll 4
            for (int q = 0; q < P; q++)
                acc[r][q] = _mm512_dpbf16_ps(acc[r][q], xv, wv[q]);
        }
    }
    for (int q = 0; q < P; q++) {
        const int n = cols - q * JC_BF16_PANEL;
        const __mmask16 mask = n >= JC_BF16_PANEL ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1);
        for (int r = 0; r < R; r++) {
            float *cr = c + (size_t)r * ldc + q * JC_BF16_PANEL;
            const __m512 sum = _mm512_add_ps(_mm512_maskz_loadu_ps(mask, cr), acc[r][q]);
            _mm512_mask_storeu_ps(cr, mask, sum);
        }
    }
}

/* Every row, the panels of one group: blocks of ROWS rows, then the rest. */
INLINE void group(float *c, int ldc, const uint16_t *x, int ldx, int m, const uint16_t *w, int kp,
                  int cols, const int P)
{
    int r = 0;
    for (; r + ROWS <= m; r += ROWS)
        block(c + (size_t)r * ldc, ldc, x + (size_t)r * ldx, ldx, w, kp, cols, ROWS, P);
    float *cr = c + (size_t)r * ldc;
    const uint16_t *xr = x + (size_t)r * ldx;
    switch (m - r) {
    case 5:
        block(cr, ldc, xr, ldx, w, kp, cols, 5, P);
        break;
    case 4:
        block(cr, ldc, xr, ldx, w, kp, cols, 4, P);
        break;
    case 3:
        block(cr, ldc, xr, ldx, w, kp, cols, 3, P);
        break;
    case 2:
        block(cr, ldc, xr, ldx, w, kp, cols, 2, P);
        break;
    case 1:
        block(cr, ldc, xr, ldx, w, kp, cols, 1, P);
        break;
    default:
        break;
    }
}

void jc_linear_bf16_avx512(float *c, int ldc, const uint16_t *x, int ldx, int m, const uint16_t *w,
                           int kp, int j0, int j1)
{
    for (int j = j0; j < j1; j += PANELS * JC_BF16_PANEL) {
        const int cols = j1 - j < PANELS * JC_BF16_PANEL ? j1 - j : PANELS * JC_BF16_PANEL;
        const uint16_t *wj = w + jc_bf16_at(j, 0, 0, kp);
        switch ((cols + JC_BF16_PANEL - 1) / JC_BF16_PANEL) {
        case 4:
            group(c + j, ldc, x, ldx, m, wj, kp, cols, 4);
            break;
        case 3:
            group(c + j, ldc, x, ldx, m, wj, kp, cols, 3);
            break;
        case 2:
            group(c + j, ldc, x, ldx, m, wj, kp, cols, 2);
            break;
        default:
            group(c + j, ldc, x, ldx, m, wj, kp, cols, 1);
            break;
        }
    }
}

void jc_round_bf16_avx512(uint16_t *dst, const float *src, int n)
{
    for (int i = 0; i < n; i += 16) {
        const __mmask16 mask = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        bh_store16(dst + i, mask, _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(mask, src + i)));
    }
}
