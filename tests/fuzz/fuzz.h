/*
 * Shared by the libFuzzer targets of tests/fuzz/. Each fuzz_<target>.c defines
 * LLVMFuzzerTestOneInput; it is linked either with libFuzzer (make fuzz) or with replay.c
 * (make fuzz-replay). A target returns 0 for every input; a broken invariant of the library
 * aborts, which both drivers report as a crash.
 */
#ifndef JCLIP_FUZZ_H
#define JCLIP_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Fails the run when the library breaks a promise of its header. */
#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/*
 * An exact-size heap copy of part of the input, with no NUL after it, so that reading one
 * byte past its end is an AddressSanitizer report (both drivers pass the whole input in an
 * exact-size buffer already). Aborts on allocation failure; caller frees.
 */
static inline char *fuzz_dup(const uint8_t *data, size_t size)
{
    char *p = malloc(size ? size : 1);
    if (!p)
        abort();
    if (size)
        memcpy(p, data, size);
    return p;
}

#endif
