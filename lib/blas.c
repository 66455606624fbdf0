/* The one BLAS boundary: the only file that includes cblas.h. */
#include "internal.h"
#include "compute.h"
#include "kernels.h"

#include <cblas.h>
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
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
    const struct jc_cpu *c = jc_runtime()->cpu;
    if (!c->x86)
        return NULL;
#ifdef JC_NO_FMA
    /* make valgrind's build, whose kernels avoid FMA as OpenBLAS's AVX ones do under it */
    if (c->avx)
        return "Sandybridge";
#endif
    if (c->avx512f && c->avx512bw && c->avx512vl && c->avx512dq)
        return c->avx512bf16 ? "Cooperlake" : "SkylakeX";
    if (c->avx2 && c->fma)
        return "Haswell";
    if (c->avx)
        return "Sandybridge";
    return NULL;
}

/*
 * OpenBLAS is loaded on first use, not linked, for two reasons that a linked library cannot
 * meet without re-executing the program:
 *
 * - It starts a thread per core when it is loaded, unless OPENBLAS_NUM_THREADS says
 *   otherwise, each taking a 128 MiB GEMM buffer. jclip never uses them (its pool splits the
 *   work and calls OpenBLAS single-threaded), and under a limit on the address space or data
 *   size (ulimit -v, -d) they do harm: when a thread's stack does not fit, OpenBLAS kills the
 *   process with SIGINT; when its buffer does not fit, the thread retries for ever. Loaded
 *   here, it sees OPENBLAS_NUM_THREADS=1 and starts none.
 * - It picks its kernels once, when loaded, and OpenBLAS 0.3.21 takes some CPUs with
 *   AVX-512 (AMD Zen 4 among them) for older ones. When OPENBLAS_CORETYPE is unset and the
 *   pick is below what this CPU and OS support, it is unloaded and loaded again with the
 *   variable set. A user's OPENBLAS_CORETYPE is obeyed as given.
 *
 * Commands that run no GEMM (count-tokens, download) never load it. The environment is put
 * back as it was once OpenBLAS has read it.
 */
#define OPENBLAS_SONAME "libopenblas.so.0" /* Debian's, whichever build its alternatives pick */

/* The state, in the runtime context (lib/compute.h). */
static struct jc_blas *const ob = &jc_rt.blas;

static size_t address_space_left(void);

/* Sets name=value (value NULL: unsets it) and returns the old value, malloc'd or NULL. */
static char *swap_env(const char *name, const char *value)
{
    const char *old = getenv(name);
    char *saved = old ? strdup(old) : NULL;
    if (value)
        setenv(name, value, 1);
    else
        unsetenv(name);
    return saved;
}

static void restore_env(const char *name, char *saved)
{
    if (saved)
        setenv(name, saved, 1);
    else
        unsetenv(name);
    free(saved);
}

static bool ob_open(void)
{
    if (!(ob->dl = dlopen(OPENBLAS_SONAME, RTLD_NOW | RTLD_LOCAL))) {
        size_t left = address_space_left();
        if (left != SIZE_MAX) /* the likeliest cause under a limit */
            snprintf(ob->error, sizeof ob->error,
                     "not enough memory to load OpenBLAS: the address-space limit (ulimit -v) "
                     "leaves %zu MiB: %s",
                     left >> 20, dlerror());
        else
            snprintf(ob->error, sizeof ob->error, "cannot load OpenBLAS: %s", dlerror());
        return false;
    }
    *(void **)&ob->sgemm = dlsym(ob->dl, "cblas_sgemm");
    *(void **)&ob->set_num_threads = dlsym(ob->dl, "openblas_set_num_threads");
    *(void **)&ob->corename = dlsym(ob->dl, "openblas_get_corename");
    *(void **)&ob->memory_alloc = dlsym(ob->dl, "blas_memory_alloc");
    *(void **)&ob->memory_free = dlsym(ob->dl, "blas_memory_free");
    if (!ob->sgemm || !ob->set_num_threads || !ob->corename || !ob->memory_alloc ||
        !ob->memory_free) {
        snprintf(ob->error, sizeof ob->error,
                 "cannot load OpenBLAS: %s lacks cblas_sgemm or the OpenBLAS extensions",
                 OPENBLAS_SONAME);
        dlclose(ob->dl);
        ob->dl = NULL;
        return false;
    }
    return true;
}

static void ob_load(void)
{
    char *threads = swap_env("OPENBLAS_NUM_THREADS", "1");
    const char *user = getenv("OPENBLAS_CORETYPE");
    const char *want = jc_blas_best_coretype();
    bool unset = !user || !*user;

    /*
     * JCLIP_DEBUG_CORENAME makes the first load pick that core type, as a misdetecting
     * OpenBLAS would, so the tests walk the reload on a machine OpenBLAS detects well.
     */
    const char *pretend = getenv("JCLIP_DEBUG_CORENAME");
    char *saved = unset && pretend && *pretend ? swap_env("OPENBLAS_CORETYPE", pretend) : NULL;
    bool opened = ob_open();
    if (unset && pretend && *pretend)
        restore_env("OPENBLAS_CORETYPE", saved);
    if (!opened)
        goto out;
    if (unset && want && jc_blas_coretype_below(ob->corename(), want)) {
        char *core = swap_env("OPENBLAS_CORETYPE", want);
        dlclose(ob->dl); /* nothing of it is in use yet: it unloads, and loads anew */
        bool ok = ob_open();
        restore_env("OPENBLAS_CORETYPE", core);
        if (!ok)
            goto out;
    }
    ob->set_num_threads(1);
out:
    restore_env("OPENBLAS_NUM_THREADS", threads);
}

/* OpenBLAS, loaded; NULL (ob->error says why) when it cannot be. */
static bool ob_ready(void)
{
    pthread_once(&ob->loaded, ob_load);
    return ob->dl != NULL;
}

const char *jc_blas_corename(void)
{
    return ob_ready() ? ob->corename() : "none";
}

bool jc_blas_coretype_lowered(const char **user, const char **best)
{
    *user = getenv("OPENBLAS_CORETYPE");
    *best = jc_blas_best_coretype();
    return *user && **user && *best && ob_ready() && jc_blas_coretype_below(ob->corename(), *best);
}

static bool rlimit_finite(int resource, struct rlimit *rl)
{
    return getrlimit(resource, rl) == 0 && rl->rlim_cur != RLIM_INFINITY;
}

/*
 * OpenBLAS 0.3's GEMM buffer: BUFFER_SIZE is 32 << 22 bytes on x86-64 and arm64, mapped with
 * a page or two more. Not part of its API, so counted generously.
 */
#define GEMM_BUFFER_BYTES (((size_t)128 << 20) + ((size_t)64 << 10))
#define MAX_BUFFERS       256 /* the pool's largest size */

/* Address space still free under RLIMIT_AS, in bytes; SIZE_MAX when there is no limit. */
static size_t address_space_left(void)
{
    struct rlimit rl;
    unsigned long long pages = 0;
    FILE *f;

    if (!rlimit_finite(RLIMIT_AS, &rl))
        return SIZE_MAX;
    if ((f = fopen("/proc/self/statm", "r"))) {
        if (fscanf(f, "%llu", &pages) != 1)
            pages = 0;
        fclose(f);
    }
    unsigned long long used = pages * (unsigned long long)sysconf(_SC_PAGESIZE);
    return used < rl.rlim_cur ? (size_t)(rl.rlim_cur - used) : 0;
}

/*
 * OpenBLAS takes a GEMM buffer from a table shared by all threads for the length of each
 * call, and maps a new one when every buffer there is in use. When that mapping fails it
 * does not return an error: blas_memory_alloc tries again for ever. So before the first
 * GEMM, while no other thread is in OpenBLAS, make the table hold one buffer per thread
 * that can call it, the most that can ever be in use at once; later calls then never map.
 *
 * Filling the table is itself a blas_memory_alloc that would spin, so first ask the kernel
 * the same question with the same mappings (private, anonymous, read-write, one per buffer,
 * never touched: the address-space, data and overcommit limits all see them as OpenBLAS's),
 * and give them back only once all of them were granted. Whatever else the process maps
 * later (a workspace, a thread stack) fails as an ordinary malloc does, with a message.
 */
int jc_blas_reserve(void)
{
    void *probe[MAX_BUFFERS];
    int want = jc_pool_size(), got = 0, rc = 0;

    if (!ob_ready())
        return jc_fail(JC_EIO, "%s", ob->error);
    if (want > MAX_BUFFERS)
        want = MAX_BUFFERS;
    pthread_mutex_lock(&ob->reserve_lock);
    if (ob->reserved >= want)
        goto out;
    size_t left = address_space_left();
    for (; got < want - ob->reserved; got++) {
        probe[got] = mmap(NULL, GEMM_BUFFER_BYTES, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (probe[got] == MAP_FAILED)
            break;
    }
    int err = errno;
    for (int i = 0; i < got; i++)
        munmap(probe[i], GEMM_BUFFER_BYTES);
    if (got < want - ob->reserved) {
        size_t mib = (size_t)(want - ob->reserved) * (GEMM_BUFFER_BYTES >> 20);
        char why[80];
        if (left != SIZE_MAX)
            snprintf(why, sizeof why, "the address-space limit (ulimit -v) leaves %zu MiB",
                     left >> 20);
        else
            snprintf(why, sizeof why, "%s", strerror(err));
        rc =
            jc_fail(JC_ENOMEM, "not enough memory for OpenBLAS: %d thread%s %zu MiB of buffers: %s",
                    want, want == 1 ? " needs" : "s need", mib, why);
        goto out;
    }
    /* held all at once, each is a buffer of its own; freed, they stay in the table */
    void *held[MAX_BUFFERS];
    for (int i = 0; i < want; i++)
        held[i] = ob->memory_alloc(0);
    for (int i = 0; i < want; i++)
        ob->memory_free(held[i]);
    ob->reserved = want;
out:
    pthread_mutex_unlock(&ob->reserve_lock);
    return rc;
}

void jc_sgemm(bool trans_b, int m, int n, int k, float alpha, const float *a, int lda,
              const float *b, int ldb, float beta, float *c, int ldc)
{
    /* jc_blas_reserve(), which every tower runs first, has said why it could not be loaded */
    if (!ob_ready())
        abort();
    ob->sgemm(CblasRowMajor, CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, m, n, k, alpha, a,
              lda, b, ldb, beta, c, ldc);
}

/*
 * How rows must sit in a call for a row's bits to depend on nothing but its own data and
 * its offset in the call modulo an unroll U. OpenBLAS 0.3's Haswell SGEMM (also used for
 * Zen) rounds rows 0-5 and 6-11 of each group of 12 differently, and the rows of an
 * incomplete last group differently again, and a row's bits change with the call's N;
 * the AVX-512 kernels give the same bits at any offset (U = 1) and for any 16-aligned
 * block of columns. Probed once rather than listed, so a core type or OpenBLAS version not
 * measured here is judged by what it does.
 *
 * Operands: K past Haswell's K block (two blocks), every call past JC_BLAS_MNK_MIN
 * (PROBE_MIN rows at least), PROBE_M rows a multiple of every candidate unroll.
 */
enum { PROBE_M = 192, PROBE_N = 96, PROBE_K = 512, PROBE_MIN = 48 };

static const int unrolls[] = {1, 2, 4, 6, 8, 12, 16, 24, 32, 48, 64};

/* C[m, n] = bias + a b^T (beta 1 on C filled with the bias) or a b^T, as jc_linear calls. */
static void probe_call(int m, int n, const float *a, const float *b, const float *bias, float *c)
{
    if (bias)
        for (int i = 0; i < m; i++)
            memcpy(c + (size_t)i * n, bias, (size_t)n * sizeof *c);
    jc_sgemm(true, m, n, PROBE_K, 1, a, PROBE_K, b, PROBE_K, bias ? 1 : 0, c, n);
}

static bool same_rows(const float *c, int ldc, const float *ref, int ldref, int m, int n)
{
    for (int i = 0; i < m; i++)
        if (memcmp(c + (size_t)i * ldc, ref + (size_t)i * ldref, (size_t)n * sizeof *c))
            return false;
    return true;
}

/*
 * One row repeated PROBE_M times: which offsets give which bits. The unroll is the
 * smallest candidate whose period the pattern has; `alike` marks the offsets of a group
 * that round as offset 0 does; `halves` holds so far if those are its first half and the
 * second half rounds alike too (Haswell's).
 */
static bool probe_pattern(float *a, const float *b, float *c, struct jc_blas_rows *r)
{
    for (int i = 1; i < PROBE_M; i++)
        memcpy(a + (size_t)i * PROBE_K, a, PROBE_K * sizeof *a);
    probe_call(PROBE_M, PROBE_N, a, b, NULL, c);
    for (size_t u = 0; u < sizeof unrolls / sizeof *unrolls; u++) {
        int U = unrolls[u], i = U;
        for (; i < PROBE_M; i++)
            if (!same_rows(c + (size_t)i * PROBE_N, 0, c + (size_t)(i % U) * PROBE_N, 0, 1,
                           PROBE_N))
                break;
        if (i < PROBE_M)
            continue;
        r->unroll = U;
        r->alike = 0;
        r->halves = U % 2 == 0;
        for (i = 0; i < U; i++) {
            const float *like = c + (size_t)(i < U / 2 ? 0 : U / 2) * PROBE_N;
            if (same_rows(c + (size_t)i * PROBE_N, 0, c, 0, 1, PROBE_N))
                r->alike |= (uint64_t)1 << i;
            r->halves = r->halves && same_rows(c + (size_t)i * PROBE_N, 0, like, 0, 1, PROBE_N) &&
                        (i < U / 2) == (r->alike >> i & 1);
        }
        return true;
    }
    return false;
}

/*
 * Distinct rows: calls that start at other multiples of U and have other multiples of U
 * rows give each row the bits of the reference call; whether the halves of groups can be
 * exchanged between groups (`halves`); then whether blocks of columns do.
 */
static bool probe_shifts(const float *a, const float *b, const float *bias, float *ref, float *c,
                         float *moved, struct jc_blas_rows *r)
{
    const int U = r->unroll;
    static const int shifts[] = {1, 2, 5, 13};

    probe_call(PROBE_M, PROBE_N, a, b, bias, ref);
    for (size_t s = 0; s < sizeof shifts / sizeof *shifts; s++) {
        int sh = shifts[s] * U, rest = (PROBE_M - sh) / U * U;
        if (rest < PROBE_MIN)
            break;
        int half = (rest / 2 + U - 1) / U * U;
        int sizes[] = {rest, half < PROBE_MIN ? rest : half};
        for (int k = 0; k < 2; k++) {
            probe_call(sizes[k], PROBE_N, a + (size_t)sh * PROBE_K, b, bias, c);
            if (!same_rows(c, PROBE_N, ref + (size_t)sh * PROBE_N, PROBE_N, sizes[k], PROBE_N))
                return false;
        }
    }
    /* halves: each group's first half from the next group, its second half its own */
    if (r->halves) {
        int groups = PROBE_M / U, h = U / 2;
        for (int g = 0; g < groups; g++) {
            int from = (g + 1) % groups * U;
            memcpy(moved + (size_t)g * U * PROBE_K, a + (size_t)from * PROBE_K,
                   (size_t)h * PROBE_K * sizeof *a);
            memcpy(moved + ((size_t)g * U + h) * PROBE_K, a + ((size_t)g * U + h) * PROBE_K,
                   (size_t)h * PROBE_K * sizeof *a);
        }
        probe_call(PROBE_M, PROBE_N, moved, b, bias, c);
        for (int g = 0; g < groups; g++)
            r->halves =
                r->halves &&
                same_rows(c + (size_t)g * U * PROBE_N, PROBE_N,
                          ref + (size_t)(g + 1) % groups * U * PROBE_N, PROBE_N, h, PROBE_N) &&
                same_rows(c + ((size_t)g * U + h) * PROBE_N, PROBE_N,
                          ref + ((size_t)g * U + h) * PROBE_N, PROBE_N, h, PROBE_N);
    }
    /* columns 16 .. N - 16, then 32 .. 80 */
    probe_call(PROBE_M, PROBE_N - 32, a, b + 16 * PROBE_K, bias ? bias + 16 : NULL, c);
    bool cols = same_rows(c, PROBE_N - 32, ref + 16, PROBE_N, PROBE_M, PROBE_N - 32);
    if (cols) {
        probe_call(PROBE_M, 48, a, b + 32 * PROBE_K, bias ? bias + 32 : NULL, c);
        cols = same_rows(c, 48, ref + 32, PROBE_N, PROBE_M, 48);
    }
    r->cols = r->cols && cols;
    return true;
}

int jc_blas_kblocks(int k, int q, int *ends)
{
    int n = 0;
    for (int k0 = 0; k0 < k && n < JC_BLAS_KBLOCKS;) {
        int left = k - k0, len = left;
        if (left >= 2 * q)
            len = q;
        else if (left > q)
            len = (left / 2 + 15) / 16 * 16;
        k0 += len;
        ends[n++] = k0;
    }
    return n;
}

/*
 * OpenBLAS's K block, if the few-rows kernel gives its bits with one of the blocks measured
 * (0.3.21: 320 for Cooperlake and SapphireRapids, 448 for SkylakeX; Haswell's kernels round
 * rows 0-5 of a group at the edges of a block of columns otherwise, and match none): rows of
 * a call past the small-matrix path, onto a bias and from zero, for a K cut into three blocks
 * by every candidate and for a K under all of them; else 0.
 */
enum { KPROBE_ROWS = 16, KPROBE_N = 48 };

static bool few_matches(int q, int k, const float *a, const float *b, const float *bias,
                        const float *ref, float *xt, float *c)
{
    int ends[JC_BLAS_KBLOCKS], blocks = jc_blas_kblocks(k, q, ends);
    for (int i = 0; i < k; i++)
        for (int r = 0; r < KPROBE_ROWS; r++)
            xt[(size_t)i * KPROBE_ROWS + r] = a[(size_t)r * k + i];
    for (int r = 0; r < KPROBE_ROWS; r++)
        for (int j = 0; j < KPROBE_N; j++)
            c[r * KPROBE_N + j] = bias ? bias[j] : 0;
    jc_runtime()->kernels->linear_few(c, KPROBE_N, xt, KPROBE_ROWS, KPROBE_ROWS, b, k, KPROBE_N,
                                      ends, blocks);
    return !memcmp(c, ref, (size_t)KPROBE_ROWS * KPROBE_N * sizeof *c);
}

static int probe_kblock(const float *bias)
{
    static const int cands[] = {320, 448, 256, 384, 512, 640};
    static const int ks[] = {1000, 40};
    int q = 0;
    for (size_t t = 0; t < sizeof ks / sizeof *ks; t++) {
        const int k = ks[t], m = (int)(JC_BLAS_MNK_MIN / ((size_t)k * KPROBE_N)) + 1;
        float *a = malloc(((size_t)m * k + (size_t)KPROBE_N * k + (size_t)m * KPROBE_N +
                           (size_t)k * KPROBE_ROWS + KPROBE_ROWS * KPROBE_N) *
                          sizeof *a);
        if (!a)
            return 0;
        float *b = a + (size_t)m * k, *ref = b + (size_t)KPROBE_N * k,
              *xt = ref + (size_t)m * KPROBE_N, *c = xt + (size_t)k * KPROBE_ROWS;
        uint32_t x = 0x2545f491u;
        for (size_t i = 0; i < (size_t)(m + KPROBE_N) * k; i++, x = x * 1664525u + 1013904223u)
            a[i] = (float)((int32_t)x >> 8) * 0x1p-23f * (1 + (x & 7));
        bool found = false;
        for (int with_bias = 0; with_bias < 2; with_bias++) {
            const float *bi = with_bias ? bias : NULL;
            for (int i = 0; i < m; i++)
                for (int j = 0; j < KPROBE_N; j++)
                    ref[(size_t)i * KPROBE_N + j] = bi ? bi[j] : 0;
            jc_sgemm(true, m, KPROBE_N, k, 1, a, k, b, k, bi ? 1 : 0, ref, KPROBE_N);
            found = false;
            for (size_t i = 0; i < sizeof cands / sizeof *cands && !found; i++)
                if ((!q || cands[i] == q) && few_matches(cands[i], k, a, b, bi, ref, xt, c)) {
                    /* a K under every candidate tells none apart: keep the first that held */
                    if (k > cands[i])
                        q = cands[i];
                    found = true;
                }
            if (!found)
                break;
        }
        free(a);
        if (!found)
            return 0;
    }
    return q;
}

/*
 * The probe's operands, in one block that ob->probe_mem points to while the probe runs: a
 * process killed by a signal in the middle (Ctrl-C during the first batch) leaves it
 * reachable, not lost, in a leak checker's eyes.
 */

static void probe_rows(void)
{
    const size_t na = (size_t)PROBE_M * PROBE_K, nb = (size_t)PROBE_N * PROBE_K,
                 nc = (size_t)PROBE_M * PROBE_N;
    struct jc_blas_rows r = {.cols = true};
    uint32_t x = 0x9e3779b9u;

    ob->probe_mem = malloc((2 * na + nb + 2 * nc + PROBE_N) * sizeof *ob->probe_mem);
    /* no memory to tell: rows in groups of 64 and no column blocks, the likeliest to hold */
    if (!ob->probe_mem || jc_blas_reserve() < 0)
        goto out;
    float *a = ob->probe_mem, *b = a + na, *ref = b + nb, *c = ref + nc, *bias = c + nc,
          *moved = bias + PROBE_N;
    /* Values of mixed sign and magnitude, so a different summation order shows in the bits. */
    for (size_t i = 0; i < na + nb + PROBE_N; i++, x = x * 1664525u + 1013904223u) {
        float v = (float)((int32_t)x >> 8) * 0x1p-23f * (1 + (x & 7));
        if (i < na)
            a[i] = v;
        else if (i < na + nb)
            b[i - na] = v;
        else
            bias[i - na - nb] = v;
    }
    if (!probe_pattern(a, b, c, &r))
        goto out;
    for (size_t i = PROBE_K; i < na; i++, x = x * 1664525u + 1013904223u)
        a[i] = (float)((int32_t)x >> 8) * 0x1p-23f * (1 + (x & 7));
    /* Both ways jc_linear calls: beta 0 without a bias, beta 1 onto a bias. */
    r.invariant =
        probe_shifts(a, b, NULL, ref, c, moved, &r) && probe_shifts(a, b, bias, ref, c, moved, &r);
    if (r.invariant)
        r.kblock = probe_kblock(bias);
    if (r.invariant)
        ob->rows = r;
out:
    free(ob->probe_mem);
    ob->probe_mem = NULL;
}

const struct jc_blas_rows *jc_blas_rows(void)
{
    pthread_once(&ob->probed, probe_rows);
    return &ob->rows;
}

void jc_blas_set_rows(const struct jc_blas_rows *r)
{
    pthread_once(&ob->probed, probe_rows);
    ob->rows = *r;
}

bool jc_blas_batch_invariant(void)
{
    return jc_blas_rows()->invariant;
}

int jc_blas_row_unroll(void)
{
    return jc_blas_rows()->unroll;
}

int jc_blas_kblock(void)
{
    return jc_blas_rows()->kblock;
}

int jc_blas_few_rows(void)
{
    return jc_blas_rows()->kblock ? JC_FEW_ROWS : 0;
}

struct peak_run {
    const float *a, *b;
    float *c;
    int n, rows; /* rows of C per job */
};

static void peak_job(void *arg, int job, int thread)
{
    const struct peak_run *p = arg;
    int r0 = job * p->rows, nr = p->n - r0 < p->rows ? p->n - r0 : p->rows;
    (void)thread;
    ob->sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nr, p->n, p->n, 1, p->a + (size_t)r0 * p->n,
              p->n, p->b, p->n, 0, p->c + (size_t)r0 * p->n, p->n);
}

double jc_blas_peak_gflops(int threads, int n)
{
    float *a = malloc((size_t)n * n * sizeof *a), *b = malloc((size_t)n * n * sizeof *b);
    float *c = malloc((size_t)n * n * sizeof *c);
    double best = 0;

    if (!a || !b || !c || jc_blas_reserve() < 0)
        goto out;
    for (size_t i = 0; i < (size_t)n * n; i++) {
        a[i] = (float)(i % 7) * 0.1f;
        b[i] = (float)(i % 5) * 0.1f;
    }
    /*
     * Two ways to use `threads` cores, the better counted: OpenBLAS's own threads on the one
     * product, and jclip's pool running one single-threaded OpenBLAS call per thread on a
     * share of its rows, which is how jclip runs its GEMMs.
     */
    struct peak_run p = {a, b, c, n, (n + threads - 1) / threads};
    for (int way = 0; way < 2; way++) {
        ob->set_num_threads(way == 0 ? threads : 1);
        for (int rep = 0; rep <= 5; rep++) { /* the first run warms up */
            double t0 = jc_seconds();
            if (way == 0)
                ob->sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1, a, n, b, n, 0, c, n);
            else
                jc_pool_run(threads, peak_job, &p);
            double g = 2.0 * n * n * n / (jc_seconds() - t0) * 1e-9;
            if (rep && g > best)
                best = g;
        }
    }
    ob->set_num_threads(1);
out:
    free(a);
    free(b);
    free(c);
    return best;
}
