/*
 * The linear_few driver of the AVX2 and NEON files: columns NBMAX at a time, then one at a
 * time, each through every 16 rows while its weights are in L1 or L2, by the file's own
 * tile(c, ldc, xt, mp, m, w, ldw, ends, blocks, NB), which takes at most 16 rows. When x
 * is too large to stay in L2 meanwhile, this goes through K a block at a time (the
 * contract adds each block's sum to c on its own, so the bits are the same either way).
 * Contract: kernels/README.md.
 */
#ifndef JCLIP_LINEAR_FEW_ROWS_H
#define JCLIP_LINEAR_FEW_ROWS_H

#define LINEAR_FEW_X_L2 (64 * 1024) /* floats of x that stay in L2 through a group of columns */

#define LINEAR_FEW_COLUMNS(tile, NBMAX, x0, w0, kends, nblocks)                                    \
    for (int j = 0; j < n;) {                                                                      \
        const int nb = n - j >= NBMAX ? NBMAX : 1;                                                 \
        const float *wj = (w0) + (size_t)j * ldw;                                                  \
        for (int r0 = 0; r0 < m; r0 += 16) {                                                       \
            float *cr = c + (size_t)r0 * ldc + j;                                                  \
            if (nb == NBMAX)                                                                       \
                tile(cr, ldc, (x0) + r0, mp, m - r0, wj, ldw, kends, nblocks, NBMAX);              \
            else                                                                                   \
                tile(cr, ldc, (x0) + r0, mp, m - r0, wj, ldw, kends, nblocks, 1);                  \
        }                                                                                          \
        j += nb;                                                                                   \
    }

#define LINEAR_FEW_BY_16_ROWS(tile, NBMAX)                                                         \
    if ((size_t)mp * ends[blocks - 1] <= LINEAR_FEW_X_L2) {                                        \
        LINEAR_FEW_COLUMNS(tile, NBMAX, xt, w, ends, blocks)                                       \
    } else {                                                                                       \
        for (int b = 0; b < blocks; b++) {                                                         \
            const int k0 = b ? ends[b - 1] : 0, kn[1] = {ends[b] - k0};                            \
            LINEAR_FEW_COLUMNS(tile, NBMAX, xt + (size_t)k0 * mp, w + k0, kn, 1)                   \
        }                                                                                          \
    }

#endif
