/* Kernels of the x86 tables, defined in files built with their own ISA flags. */
#ifndef JCLIP_KERNELS_X86_H
#define JCLIP_KERNELS_X86_H

#include "kernels.h"

#include <stdint.h>

void jc_layernorm_avx2(float *y, const float *x, const float *w, const float *b, int n, float eps);
void jc_add_avx2(float *y, const float *a, int n);
void jc_gelu_mul_avx2(float *y, const float *g, const float *u, int n);
void jc_silu_mul_avx2(float *y, const float *g, const float *u, int n);
void jc_rope_avx2(float *x, const float *c, const float *s, int n);
void jc_mean_pool_avx2(float *out, const float *x, size_t ld, const uint8_t *mask, size_t rows,
                       int n);

void jc_layernorm_avx512(float *y, const float *x, const float *w, const float *b, int n,
                         float eps);
void jc_gelu_mul_avx512(float *y, const float *g, const float *u, int n);
void jc_silu_mul_avx512(float *y, const float *g, const float *u, int n);
void jc_rope_avx512(float *x, const float *c, const float *s, int n);
void jc_mean_pool_avx512(float *out, const float *x, size_t ld, const uint8_t *mask, size_t rows,
                         int n);

void jc_linear_few_avx2(float *c, int ldc, const float *xt, int mp, int m, const float *w, int ldw,
                        int n, const int *ends, int blocks);
void jc_linear_few_avx512(float *c, int ldc, const float *xt, int mp, int m, const float *w,
                          int ldw, int n, const int *ends, int blocks);

/* AVX512-BF16 (kernels/linear_bf16_avx512.c): only where jc_cpu() has it */
void jc_linear_bf16_avx512(float *c, int ldc, const uint16_t *x, int ldx, int m, const uint16_t *w,
                           int kp, int j0, int j1);
void jc_round_bf16_avx512(uint16_t *dst, const float *src, int n);
/* AMX-BF16 (kernels/linear_bf16_amx.c): x and w with pairs swapped; see dispatch.c */
void jc_linear_bf16_amx(float *c, int ldc, const uint16_t *x, int ldx, int m, const uint16_t *w,
                        int kp, int j0, int j1);

void jc_attention_avx2(const struct jc_attn_head *a, float *work);
void jc_attention_avx512(const struct jc_attn_head *a, float *work);

#endif
