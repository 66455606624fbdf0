#include "ref.h"

#include <math.h>

void jc_add_ref(float *y, const float *a, int n)
{
    for (int i = 0; i < n; i++)
        y[i] += a[i];
}

void jc_gelu_mul_ref(float *y, const float *g, const float *u, int n)
{
    for (int i = 0; i < n; i++) {
        float x = g[i];
        y[i] = 0.5f * x * (1.0f + erff(x * (float)M_SQRT1_2)) * u[i];
    }
}

void jc_silu_mul_ref(float *y, const float *g, const float *u, int n)
{
    for (int i = 0; i < n; i++) {
        float x = g[i];
        y[i] = x / (1.0f + expf(-x)) * u[i];
    }
}

void jc_rope_ref(float *x, const float *c, const float *s, int n)
{
    for (int i = 0; i < n; i += 2) {
        float x0 = x[i], x1 = x[i + 1];
        float a = x0 * c[i], b = x1 * s[i];
        float d = x1 * c[i + 1], e = x0 * s[i + 1];
        x[i] = a + b;
        x[i + 1] = d + e;
    }
}

/* Columns in blocks of 16, so the sums stay in registers and each row is read once. */
void jc_mean_pool_ref(float *out, const float *x, size_t ld, const uint8_t *mask, size_t rows,
                      int n)
{
    size_t count = 0;
    for (size_t r = 0; r < rows; r++)
        count += !mask || mask[r];
    for (int j0 = 0; j0 < n; j0 += 16) {
        int w = n - j0 < 16 ? n - j0 : 16;
        double sum[16] = {0};
        for (size_t r = 0; r < rows; r++) {
            if (mask && !mask[r])
                continue;
            const float *row = x + r * ld + j0;
            for (int j = 0; j < w; j++)
                sum[j] += row[j];
        }
        for (int j = 0; j < w; j++)
            out[j0 + j] = count ? (float)(sum[j] / (double)count) : 0.0f;
    }
}
