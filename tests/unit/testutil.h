/* Helpers shared by the cmocka unit tests. Tests run from the top of the tree. */
#ifndef JCLIP_TESTUTIL_H
#define JCLIP_TESTUTIL_H

#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "jclip.h"

#define TU_GOLDEN "tests/golden"
#define TU_MODELS "tests/models"

/* Whole file, NUL-terminated; fails the test if unreadable. Caller frees. */
char *tu_read(const char *path, size_t *len);

/* A float32 .npy; fails the test if unreadable. Caller frees. */
float *tu_npy(const char *path, size_t *rows, size_t *cols);

/* Configs to test, from $JCLIP_TEST_CONFIGS (space-separated; default "tiny tiny12"). */
int tu_configs(char names[][16], int max);

/* Cosine similarity and max abs difference of two vectors. */
double tu_cosine(const float *a, const float *b, size_t n);
double tu_max_abs_diff(const float *a, const float *b, size_t n);
double tu_max_abs(const float *a, size_t n);

/* n embeddings of d values from a batch must equal one-at-a-time runs, to the bit. */
void tu_assert_batch_equal(const float *alone, const float *batch, size_t n, size_t d,
                           const char *what);

/*
 * Models opened next run bf16 where the kernel table in use has bf16 products: returns
 * true. Where it has none, checks that asking for bf16 keeps fp32 in effect (the case
 * the command line warns of) and returns false. tu_bf16_end goes back to fp32.
 */
bool tu_bf16_begin(void);
void tu_bf16_end(void);

/* Whether config cfg runs in bf16: not the full-size model on the scalar reference (it
   would take many minutes; native kernels take it). Says so when not. */
bool tu_bf16_config(const char *cfg);

/*
 * n rows of got against the bf16 goldens (row i at ref + i * d): cosine >= least each and
 * >= mean on average, and nearer them than the fp32 goldens (ref32), so bf16 is what ran.
 * Prints the worst cosines.
 */
void tu_check_bf16(const char *what, const float *got, const float *ref, const float *ref32,
                   size_t n, size_t d, double least, double mean);

#endif
