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

bool tu_bf16_begin(void)
{
    if (!jc_bf16_instructions()) {
        assert_int_equal(jc_set_precision("bf16"), 1);
        assert_string_equal(jc_precision_name(), "fp32");
        printf("bf16: the kernel table has no bf16 products; asking for bf16 keeps fp32\n");
        return false;
    }
    assert_int_equal(jc_set_precision("bf16"), 0);
    assert_string_equal(jc_precision_name(), "bf16");
    return true;
}

bool tu_bf16_config(const char *cfg)
{
    if (strcmp(cfg, "full") || strcmp(jc_bf16_instructions(), "scalar reference"))
        return true;
    printf("full bf16: left to native kernels (scalar, it would take many minutes)\n");
    return false;
}

void tu_bf16_end(void)
{
    assert_int_equal(jc_set_precision("fp32"), 0);
}

void tu_check_bf16(const char *what, const float *got, const float *ref, const float *ref32,
                   size_t n, size_t d, double least, double mean)
{
    double worst = 1, worst32 = 1, sum = 0, near = 0, near32 = 0;
    for (size_t i = 0; i < n; i++) {
        const float *g = got + i * d;
        double cos = tu_cosine(g, ref + i * d, d), cos32 = tu_cosine(g, ref32 + i * d, d);
        if (cos < least)
            fail_msg("%s row %zu: cosine %.9f with the bf16 golden", what, i, cos);
        worst = cos < worst ? cos : worst;
        worst32 = cos32 < worst32 ? cos32 : worst32;
        sum += cos;
        near += tu_max_abs_diff(g, ref + i * d, d);
        near32 += tu_max_abs_diff(g, ref32 + i * d, d);
    }
    if (sum / (double)n < mean)
        fail_msg("%s: mean cosine %.9f with the bf16 goldens", what, sum / (double)n);
    if (near >= near32)
        fail_msg("%s: nearer the fp32 goldens (%.3g) than the bf16 ones (%.3g)", what, near32,
                 near);
    printf("%s bf16: %zu rows, worst cosine %.7f with the bf16 goldens (mean %.7f), %.7f with "
           "fp32's\n",
           what, n, worst, sum / (double)n, worst32);
}
