/*
 * The linear_few driver of the AVX2 and NEON files: columns NBMAX at a time, then one at a
 * time, each through every 16 rows while its weights are in L1 or L2, by the file's own
 * tile(c, ldc, xt, mp, m, w, ldw, ends, blocks, NB), which takes at most 16 rows and all
 * of K. Going through K a block at a time instead, to keep 64 rows of a 3072-wide x in
 * L2, copied the output block in and out at every block: 32 16-token captions took 12%
 * longer on a Zen 3, whose L3 feeds x fast enough. Contract: kernels/README.md.
 */
#ifndef JCLIP_LINEAR_FEW_ROWS_H
#define JCLIP_LINEAR_FEW_ROWS_H

#define LINEAR_FEW_BY_16_ROWS(tile, NBMAX)                                                         \
    for (int j = 0; j < n;) {                                                                      \
        const int nb = n - j >= NBMAX ? NBMAX : 1;                                                 \
        const float *wj = w + (size_t)j * ldw;                                                     \
        for (int r0 = 0; r0 < m; r0 += 16) {                                                       \
            float *cr = c + (size_t)r0 * ldc + j;                                                  \
            if (nb == NBMAX)                                                                       \
                tile(cr, ldc, xt + r0, mp, m - r0, wj, ldw, ends, blocks, NBMAX);                  \
            else                                                                                   \
                tile(cr, ldc, xt + r0, mp, m - r0, wj, ldw, ends, blocks, 1);                      \
        }                                                                                          \
        j += nb;                                                                                   \
    }

#endif
