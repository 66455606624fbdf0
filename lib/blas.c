/* The one BLAS boundary: the only file that includes cblas.h. */
#include "internal.h"
#include "compute.h"
#include "kernels.h"

#include <cblas.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/*
 * OpenBLAS x86 core types grouped by the widest vector unit their kernels use. A name not
 * listed is unknown and never replaced.
 */
static const struct {
    const char *name;
    int level; /* 0 SSE, 1 AVX, 2 AVX2+FMA, 3 AVX-512 */
} coretypes[] = {
    {"Katmai", 0},       {"Coppermine", 0},     {"Northwood", 0},  {"Prescott", 0},
    {"Banias", 0},       {"Atom", 0},           {"Core2", 0},      {"Penryn", 0},
    {"Dunnington", 0},   {"Nehalem", 0},        {"Athlon", 0},     {"Opteron", 0},
    {"Opteron_SSE3", 0}, {"Barcelona", 0},      {"Nano", 0},       {"Bobcat", 0},
    {"Sandybridge", 1},  {"Bulldozer", 1},      {"Piledriver", 1}, {"Steamroller", 1},
    {"Excavator", 1},    {"Haswell", 2},        {"Zen", 2},        {"SkylakeX", 3},
    {"Cooperlake", 3},   {"SapphireRapids", 3},
};

static int coretype_level(const char *name)
{
    for (size_t i = 0; i < sizeof coretypes / sizeof *coretypes; i++)
        if (name && !strcasecmp(name, coretypes[i].name))
            return coretypes[i].level;
    return -1;
}

bool jc_blas_coretype_below(const char *have, const char *want)
{
    int h = coretype_level(have), w = coretype_level(want);
    return h >= 0 && w >= 0 && h < w;
}

const char *jc_blas_best_coretype(void)
{
    const struct jc_cpu *c = jc_cpu();
    if (!c->x86)
        return NULL;
    if (c->avx512f && c->avx512bw && c->avx512vl && c->avx512dq)
        return c->avx512bf16 ? "Cooperlake" : "SkylakeX";
    if (c->avx2 && c->fma)
        return "Haswell";
    if (c->avx)
        return "Sandybridge";
    return NULL;
}

const char *jc_blas_corename(void)
{
    return openblas_get_corename();
}

int jc_blas_fix_coretype(char **argv)
{
    const char *want = jc_blas_best_coretype();
    const char *have = openblas_get_corename();
    const char *pretend = getenv("JCLIP_DEBUG_CORENAME");

    /* Lets the tests walk the misdetection path on a machine OpenBLAS detects well. */
    if (pretend && *pretend)
        have = pretend;

    const char *user = getenv("OPENBLAS_CORETYPE");

    if ((user && *user) || !want || !jc_blas_coretype_below(have, want))
        return 0;
    /* OpenBLAS chose its kernels when it was loaded; only a fresh process can change them. */
    if (setenv("OPENBLAS_CORETYPE", want, 1) < 0)
        return jc_fail(JC_EIO, "cannot set OPENBLAS_CORETYPE: %s", strerror(errno));
    execv("/proc/self/exe", argv);
    int rc =
        jc_fail(JC_EIO, "cannot re-execute with OPENBLAS_CORETYPE=%s: %s", want, strerror(errno));
    unsetenv("OPENBLAS_CORETYPE");
    return rc;
}

void jc_blas_init(void)
{
    /* Our pool splits every GEMM; OpenBLAS's own threads would only spin against it. */
    openblas_set_num_threads(1);
}

void jc_sgemm(bool trans_b, int m, int n, int k, float alpha, const float *a, int lda,
              const float *b, int ldb, float beta, float *c, int ldc)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, m, n, k, alpha, a,
                lda, b, ldb, beta, c, ldc);
}

/*
 * Whether this OpenBLAS computes each element of C the same, to the bit, wherever it sits
 * in the call: row and column offset and the call's M and N. Most x86 kernels do; Haswell's
 * SGEMM (also used for Zen) rounds rows differently by their position modulo its unroll,
 * so there jc_linear keeps one fixed block shape instead. Probed once rather than listed,
 * so a core type or OpenBLAS version not measured here is judged by what it does. Every
 * probe call is above JC_BLAS_MNK_MIN, like every call jc_linear makes on the free path.
 */
enum { PROBE_M = 128, PROBE_N = 160, PROBE_K = 128, PROBE_EXTRA = 13 };

static bool shape_invariant;
static pthread_once_t shape_once = PTHREAD_ONCE_INIT;

static bool probe_same(const float *c, int ldc, const float *ref, int ldref, int m, int n)
{
    for (int i = 0; i < m; i++)
        if (memcmp(c + (size_t)i * ldc, ref + (size_t)i * ldref, (size_t)n * sizeof *c))
            return false;
    return true;
}

static void probe_shapes(void)
{
    const int lda = PROBE_K, rows = PROBE_M + PROBE_EXTRA, cols = PROBE_N + PROBE_EXTRA;
    float *a = malloc((size_t)rows * lda * sizeof *a), *b = malloc((size_t)cols * lda * sizeof *b);
    float *ref = malloc((size_t)rows * cols * sizeof *ref),
          *c = malloc((size_t)rows * cols * sizeof *c);
    uint32_t x = 0x9e3779b9u;
    bool same = false;

    if (!a || !b || !ref || !c)
        goto out; /* no memory to tell: the fixed blocks are always right */
    /* Values of mixed sign and magnitude, so a different summation order shows in the bits. */
    for (size_t i = 0; i < (size_t)rows * lda; i++, x = x * 1664525u + 1013904223u)
        a[i] = (float)((int32_t)x >> 8) * 0x1p-23f * (1 + (x & 7));
    for (size_t i = 0; i < (size_t)cols * lda; i++, x = x * 1664525u + 1013904223u)
        b[i] = (float)((int32_t)x >> 8) * 0x1p-23f * (1 + (x & 7));
    jc_sgemm(true, rows, cols, PROBE_K, 1, a, lda, b, lda, 0, ref, cols);
    same = true;
    /* Row offsets across a kernel's unroll (Haswell's repeats every 12 rows). */
    static const int shifts[] = {1, 5, 6, 12, 13};
    for (size_t s = 0; same && s < sizeof shifts / sizeof *shifts; s++) {
        int sh = shifts[s];
        jc_sgemm(true, PROBE_M, PROBE_N, PROBE_K, 1, a + (size_t)sh * lda, lda, b, lda, 0, c,
                 PROBE_N);
        same = probe_same(c, PROBE_N, ref + (size_t)sh * cols, cols, PROBE_M, PROBE_N);
    }
    /* Column offsets and another N; another M. */
    if (same) {
        jc_sgemm(true, PROBE_M, PROBE_N - 19, PROBE_K, 1, a, lda, b + 3 * lda, lda, 0, c,
                 PROBE_N - 19);
        same = probe_same(c, PROBE_N - 19, ref + 3, cols, PROBE_M, PROBE_N - 19);
    }
    if (same) {
        jc_sgemm(true, PROBE_M - 17, PROBE_N, PROBE_K, 1, a, lda, b, lda, 0, c, PROBE_N);
        same = probe_same(c, PROBE_N, ref, cols, PROBE_M - 17, PROBE_N);
    }
out:
    shape_invariant = same;
    free(a);
    free(b);
    free(ref);
    free(c);
}

bool jc_blas_shape_invariant(void)
{
    pthread_once(&shape_once, probe_shapes);
    return shape_invariant;
}

double jc_blas_peak_gflops(int threads, int n)
{
    float *a = malloc((size_t)n * n * sizeof *a), *b = malloc((size_t)n * n * sizeof *b);
    float *c = malloc((size_t)n * n * sizeof *c);
    double best = 0;

    if (!a || !b || !c)
        goto out;
    for (size_t i = 0; i < (size_t)n * n; i++) {
        a[i] = (float)(i % 7) * 0.1f;
        b[i] = (float)(i % 5) * 0.1f;
    }
    openblas_set_num_threads(threads);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1, a, n, b, n, 0, c, n);
    for (int rep = 0; rep < 5; rep++) {
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1, a, n, b, n, 0, c, n);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double s = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9;
        double g = 2.0 * n * n * n / s * 1e-9;
        if (g > best)
            best = g;
    }
    openblas_set_num_threads(1);
out:
    free(a);
    free(b);
    free(c);
    return best;
}
