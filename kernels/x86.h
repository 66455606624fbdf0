/* Kernels of the x86 tables, defined in files built with their own ISA flags. */
#ifndef JCLIP_KERNELS_X86_H
#define JCLIP_KERNELS_X86_H

#include <stdint.h>

void jc_softmax_avx2(float *s, int n);
void jc_softmax_scaled_avx2(float *s, int n, float scale);
void jc_softmax_alibi_row_avx2(float *s, int n, float scale, float slope, int i,
                               const uint8_t *mask);

#endif
