#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *tu_read(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    if (!f)
        fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    if (len)
        *len = (size_t)n;
    return buf;
}

float *tu_npy(const char *path, size_t *rows, size_t *cols)
{
    float *data;
    if (jc_npy_read(path, &data, rows, cols) < 0)
        fail_msg("%s", jc_errmsg());
    return data;
}

int tu_configs(char names[][16], int max)
{
    const char *env = getenv("JCLIP_TEST_CONFIGS");
    char buf[256];
    int n = 0;

    snprintf(buf, sizeof buf, "%s", env && *env ? env : "tiny tiny12");
    for (char *s = strtok(buf, " "); s && n < max; s = strtok(NULL, " "))
        snprintf(names[n++], 16, "%s", s);
    return n;
}

double tu_cosine(const float *a, const float *b, size_t n)
{
    double ab = 0, aa = 0, bb = 0;
    for (size_t i = 0; i < n; i++) {
        ab += (double)a[i] * b[i];
        aa += (double)a[i] * a[i];
        bb += (double)b[i] * b[i];
    }
    return ab / (sqrt(aa) * sqrt(bb));
}

double tu_max_abs_diff(const float *a, const float *b, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++)
        m = fmax(m, fabs((double)a[i] - b[i]));
    return m;
}

double tu_max_abs(const float *a, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++)
        m = fmax(m, fabs((double)a[i]));
    return m;
}

void tu_assert_batch_equal(const float *alone, const float *batch, size_t n, size_t d,
                           const char *what)
{
    for (size_t i = 0; i < n; i++)
        if (memcmp(alone + i * d, batch + i * d, d * sizeof *alone))
            fail_msg("%s: embedding %zu of the batch differs from its own run (OpenBLAS %s)", what,
                     i, jc_blas_corename());
}
