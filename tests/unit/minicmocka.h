/*
 * The few cmocka calls test_kernels.c makes, for the build of that test alone on a target
 * with no cmocka (make test-neon cross-builds it for aarch64 and runs it under qemu). A
 * failed check ends its test; the run prints a cmocka-like summary and fails if any did.
 */
#ifndef JCLIP_MINICMOCKA_H
#define JCLIP_MINICMOCKA_H

#include <math.h>
#include <setjmp.h>
#include <stdio.h>

struct CMUnitTest {
    const char *name;
    void (*test_func)(void **state);
};

#define cmocka_unit_test(f) ((struct CMUnitTest){#f, f})

static jmp_buf mc_failed;

#define fail_msg(...)                                                                              \
    do {                                                                                           \
        fflush(stdout);                                                                            \
        fprintf(stderr, "[   ERROR  ] " __VA_ARGS__);                                              \
        fprintf(stderr, "\n%s:%d: failure\n", __FILE__, __LINE__);                                 \
        longjmp(mc_failed, 1);                                                                     \
    } while (0)

#define assert_true(c)                                                                             \
    do {                                                                                           \
        if (!(c))                                                                                  \
            fail_msg("%s", #c);                                                                    \
    } while (0)
#define assert_false(c)               assert_true(!(c))
#define assert_null(p)                assert_true(!(p))
#define assert_non_null(p)            assert_true(p)
#define assert_int_equal(a, b)        assert_true((a) == (b))
#define assert_float_equal(a, b, eps) assert_true(fabs((double)(a) - (double)(b)) <= (eps))

static int mc_run(const struct CMUnitTest *tests, size_t n)
{
    volatile int failed = 0; /* kept across longjmp */
    printf("[==========] Running %zu test(s).\n", n);
    for (size_t i = 0; i < n; i++) {
        printf("[ RUN      ] %s\n", tests[i].name);
        fflush(stdout);
        if (setjmp(mc_failed) == 0) {
            tests[i].test_func(NULL);
            printf("[       OK ] %s\n", tests[i].name);
        } else {
            printf("[  FAILED  ] %s\n", tests[i].name);
            failed++;
        }
    }
    printf("[==========] %zu test(s) run.\n", n);
    printf("[  PASSED  ] %zu test(s).\n", n - (size_t)failed);
    if (failed)
        printf("[  FAILED  ] %d test(s).\n", failed);
    return failed;
}

#define cmocka_run_group_tests(tests, setup, teardown) mc_run(tests, sizeof tests / sizeof *tests)

#endif
