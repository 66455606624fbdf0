/*
 * Fused multiply-add for the AVX2 kernels, the only place they name it.
 *
 * valgrind's memcheck emulates every lane of an FMA with a helper call: a long text then
 * takes hours, where the same kernel with a separate multiply and add takes minutes.
 * `make valgrind` builds its jclip with JC_NO_FMA, which rounds a*b before adding c. The
 * loads, stores and branches, all that memcheck checks, are the same in both builds.
 */
#ifndef JCLIP_FMA_AVX2_H
#define JCLIP_FMA_AVX2_H

#include <immintrin.h>

#ifdef JC_NO_FMA
#define jc_fmadd256(a, b, c)  _mm256_add_ps(_mm256_mul_ps(a, b), c)
#define jc_fnmadd256(a, b, c) _mm256_sub_ps(c, _mm256_mul_ps(a, b))
#else
#define jc_fmadd256(a, b, c)  _mm256_fmadd_ps(a, b, c)
#define jc_fnmadd256(a, b, c) _mm256_fnmadd_ps(a, b, c)
#endif

#endif
