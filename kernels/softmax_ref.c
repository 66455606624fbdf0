#include "ref.h"

#include <math.h>

void jc_softmax_ref(float *s, int n)
{
    float max = -INFINITY, sum = 0;
    for (int j = 0; j < n; j++)
        max = fmaxf(max, s[j]);
    for (int j = 0; j < n; j++) {
        s[j] = expf(s[j] - max);
        sum += s[j];
    }
    float inv = 1.0f / sum;
    for (int j = 0; j < n; j++)
        s[j] *= inv;
}

/*
 * The bias is formed as the reference does: float(-slope) * float(|i - j|), then the
 * padding bias; -10000 underflows to exactly zero weight after exp.
 */
void jc_softmax_alibi_row_ref(float *s, int n, float scale, float slope, int i, const uint8_t *mask)
{
    for (int j = 0; j < n; j++) {
        float d = (float)(i > j ? i - j : j - i);
        s[j] = s[j] * scale + (mask && !mask[j] ? -10000.0f : 0.0f) + -slope * d;
    }
    jc_softmax_ref(s, n);
}

void jc_softmax_scaled_ref(float *s, int n, float scale)
{
    for (int j = 0; j < n; j++)
        s[j] *= scale;
    jc_softmax_ref(s, n);
}
