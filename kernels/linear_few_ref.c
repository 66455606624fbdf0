#include "ref.h"

#include <math.h>

void jc_linear_few_ref(float *c, int ldc, const float *xt, int mp, int m, const float *w, int ldw,
                       int n, const int *ends, int blocks)
{
    for (int r = 0; r < m; r++)
        for (int j = 0; j < n; j++) {
            const float *wj = w + (size_t)j * ldw;
            float acc = c[(size_t)r * ldc + j];
            for (int b = 0, k = 0; b < blocks; b++) {
                float s = 0;
                for (; k < ends[b]; k++)
                    s = fmaf(xt[(size_t)k * mp + r], wj[k], s);
                acc += s;
            }
            c[(size_t)r * ldc + j] = acc;
        }
}
