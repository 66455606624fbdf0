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
