/*
 * The linear_few driver of the AVX2 and NEON files: for each block of K (whose sum the
 * contract adds to c on its own), columns NBMAX at a time, then one at a time, each through
 * every 16 rows, by the file's own tile(c, ldc, xt, mp, m, w, ldw, ends, blocks, NB), which
 * takes at most 16 rows. So a block's weights for the columns stay in L1 and its rows of x
 * in L2 however many rows there are. Contract: kernels/README.md.
 */
#ifndef JCLIP_LINEAR_FEW_ROWS_H
#define JCLIP_LINEAR_FEW_ROWS_H

#define LINEAR_FEW_BY_16_ROWS(tile, NBMAX)                                                         \
    for (int b = 0; b < blocks; b++) {                                                             \
        const int k0 = b ? ends[b - 1] : 0, kn[1] = {ends[b] - k0};                                \
        for (int j = 0; j < n;) {                                                                  \
            const int nb = n - j >= NBMAX ? NBMAX : 1;                                             \
            const float *wj = w + (size_t)j * ldw + k0;                                            \
            for (int r0 = 0; r0 < m; r0 += 16) {                                                   \
                float *cr = c + (size_t)r0 * ldc + j;                                              \
                const float *xr = xt + (size_t)k0 * mp + r0;                                       \
                if (nb == NBMAX)                                                                   \
                    tile(cr, ldc, xr, mp, m - r0, wj, ldw, kn, 1, NBMAX);                          \
                else                                                                               \
                    tile(cr, ldc, xr, mp, m - r0, wj, ldw, kn, 1, 1);                              \
            }                                                                                      \
            j += nb;                                                                               \
        }                                                                                          \
    }

#endif
