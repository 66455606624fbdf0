/* The scalar reference kernels: the oracle for every ISA table. Contracts: kernels.h. */
#ifndef JCLIP_KERNELS_REF_H
#define JCLIP_KERNELS_REF_H

#include "kernels.h"

#include <stdint.h>

void jc_layernorm_ref(float *y, const float *x, const float *w, const float *b, int n, float eps);
void jc_add_ref(float *y, const float *a, int n);
void jc_gelu_mul_ref(float *y, const float *g, const float *u, int n);
void jc_silu_mul_ref(float *y, const float *g, const float *u, int n);
void jc_attention_ref(const struct jc_attn_head *a, float *work);
void jc_rope_ref(float *x, const float *c, const float *s, int n);
void jc_mean_pool_ref(float *out, const float *x, size_t ld, const uint8_t *mask, size_t rows,
                      int n);
void jc_linear_few_ref(float *c, int ldc, const float *xt, int mp, int m, const float *w, int ldw,
                       int n, const int *ends, int blocks);
void jc_round_bf16_ref(uint16_t *dst, const float *src, int n);
void jc_linear_bf16_ref(float *c, int ldc, const uint16_t *x, int ldx, int m, const uint16_t *w,
                        int kp, int j0, int j1);

#endif
