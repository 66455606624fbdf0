/*
 * The linear_few driver of the AVX2 and NEON files: rows 16 at a time (w read once per 16),
 * columns 4 at a time, then one at a time, through the file's own tile(c, ldc, xt, mp, m, w,
 * ldw, ends, blocks, NB), which takes at most 16 rows. Contract: kernels/README.md.
 */
#ifndef JCLIP_LINEAR_FEW_ROWS_H
#define JCLIP_LINEAR_FEW_ROWS_H

#define LINEAR_FEW_BY_16_ROWS(tile)                                                                \
    for (int r0 = 0; r0 < m; r0 += 16) {                                                           \
        float *cr = c + (size_t)r0 * ldc;                                                          \
        int j = 0, mr = m - r0;                                                                    \
        for (; j + 4 <= n; j += 4)                                                                 \
            tile(cr + j, ldc, xt + r0, mp, mr, w + (size_t)j * ldw, ldw, ends, blocks, 4);         \
        for (; j < n; j++)                                                                         \
            tile(cr + j, ldc, xt + r0, mp, mr, w + (size_t)j * ldw, ldw, ends, blocks, 1);         \
    }

#endif
