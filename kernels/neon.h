/* Kernels of the NEON table, built only for aarch64 (Advanced SIMD is its baseline). */
#ifndef JCLIP_KERNELS_NEON_H
#define JCLIP_KERNELS_NEON_H

#include "kernels.h"

#include <stdint.h>

void jc_layernorm_neon(float *y, const float *x, const float *w, const float *b, int n, float eps);
void jc_add_neon(float *y, const float *a, int n);
void jc_gelu_mul_neon(float *y, const float *g, const float *u, int n);
void jc_silu_mul_neon(float *y, const float *g, const float *u, int n);
void jc_rope_neon(float *x, const float *c, const float *s, int n);
void jc_mean_pool_neon(float *out, const float *x, size_t ld, const uint8_t *mask, size_t rows,
                       int n);

void jc_linear_few_neon(float *c, int ldc, const float *xt, int mp, int m, const float *w, int ldw,
                        int n, const int *ends, int blocks);
void jc_attention_neon(const struct jc_attn_head *a, float *work);
/* FEAT_BF16 (kernels/linear_bf16_neon.c, built with +bf16): only where jc_cpu() has it */
void jc_linear_bf16_neon(float *c, int ldc, const uint16_t *x, int ldx, int m, const uint16_t *w,
                         int kp, int j0, int j1);

#endif
