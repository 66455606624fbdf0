#include "kernels.h"
#include "ref.h"
#include "bf16.h"

#include <math.h>
#include <stdlib.h>
#include <pthread.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif
#if defined(__x86_64__) && defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif
#ifdef JC_X86_KERNELS
#include "x86.h"
#endif
#ifdef JC_NEON_KERNELS
#include "neon.h"
#endif
#if defined(__aarch64__)
#include <sys/auxv.h>
#endif

const struct jc_kernels jc_kernels_ref = {
    .name = "ref",
    .layernorm = jc_layernorm_ref,
    .add = jc_add_ref,
    .gelu_mul = jc_gelu_mul_ref,
    .silu_mul = jc_silu_mul_ref,
    .attention = jc_attention_ref,
    .rope = jc_rope_ref,
    .mean_pool = jc_mean_pool_ref,
    .linear_few = jc_linear_few_ref,
    .bf16 = "scalar reference",
    .round_bf16 = jc_round_bf16_ref,
    .linear_bf16 = jc_linear_bf16_ref,
};

static struct jc_cpu cpu;
static pthread_once_t cpu_once = PTHREAD_ONCE_INIT;

#if defined(__x86_64__) || defined(__i386__)
static uint64_t xgetbv0(void)
{
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

static void detect(struct jc_cpu *c)
{
    unsigned a, b, cx, d;
    c->x86 = true;
    if (!__get_cpuid(1, &a, &b, &cx, &d))
        return;
    bool osxsave = cx & bit_OSXSAVE;
    c->avx = cx & bit_AVX;
    c->fma = cx & bit_FMA;
    if (osxsave) {
        uint64_t xcr0 = xgetbv0();
        c->os_ymm = (xcr0 & 0x6) == 0x6;
        c->os_zmm = (xcr0 & 0xe6) == 0xe6;
    }
    bool os_tiles = false;
    if (osxsave)
        os_tiles = (xgetbv0() & 0x60000) == 0x60000; /* XTILECFG, XTILEDATA */
    if (__get_cpuid_count(7, 0, &a, &b, &cx, &d)) {
        c->amx_bf16 = os_tiles && (d & (1u << 22)) && (d & (1u << 24)); /* AMX-BF16, -TILE */
        c->avx2 = b & bit_AVX2;
        c->avx512f = b & bit_AVX512F;
        c->avx512dq = b & bit_AVX512DQ;
        c->avx512bw = b & bit_AVX512BW;
        c->avx512vl = b & bit_AVX512VL;
    }
    if (__get_cpuid_count(7, 1, &a, &b, &cx, &d))
        c->avx512bf16 = a & (1u << 5);
    /* Without OS support the instructions fault, whatever cpuid says. */
    if (!c->os_ymm)
        c->avx = c->avx2 = c->fma = false;
    if (!c->os_zmm)
        c->avx512f = c->avx512bw = c->avx512vl = c->avx512dq = c->avx512bf16 = false;
}
#elif defined(__aarch64__)
static void detect(struct jc_cpu *c)
{
    c->neon = true;                                    /* the aarch64 baseline */
    c->neon_bf16 = getauxval(AT_HWCAP2) & (1ul << 14); /* HWCAP2_BF16 */
}
#else
static void detect(struct jc_cpu *c)
{
    (void)c;
}
#endif

static void detect_cpu(void)
{
    detect(&cpu);
}

const struct jc_cpu *jc_cpu(void)
{
    pthread_once(&cpu_once, detect_cpu);
    return &cpu;
}

/*
 * Whether bf16 kernels give the reference's bits: round_bf16 (unless NULL) on values that
 * round every way (ties, denormals, the largest, infinities, a NaN), then linear_bf16 on
 * one product of awkward shape (rows past a tile of 16, pairs past a block of 16, an odd K,
 * columns past a panel and a pair of panels); swapped: it takes pairs swapped. A table takes
 * kernels whose instructions no test machine had only where they do.
 */
bool jc_bf16_check(void (*round_bf16)(uint16_t *dst, const float *src, int n),
                   void (*linear_bf16)(float *c, int ldc, const uint16_t *x, int ldx, int m,
                                       const uint16_t *w, int kp, int j0, int j1),
                   bool swapped)
{
    enum { M = 19, N = 40, K = 77, KP = 78, NP = 48, E = 12 };
    static const float edge[E] = {1.00390625f, 1.005859375f, -1.0029296875f,  0x1p-127f,
                                  -0x1p-140f,  0x1p-126f,    0x1.fffffep127f, 0x1.ff0000p127f,
                                  -INFINITY,   NAN,          -0.0f,           3.14159265f};
    static uint16_t x[M * KP], xs[M * KP], w[NP * KP], ws[NP * KP];
    static float xf[M * KP], want[M * N], got[M * N];
    uint32_t seed = 12345;
    for (int i = 0; i < M * KP; i++) {
        seed = seed * 1664525u + 1013904223u;
        xf[i] = i < E ? edge[i] : (float)(int32_t)seed * 0x1p-31f;
        x[i] = jc_bf16_round(xf[i]);
    }
    if (round_bf16) {
        round_bf16(xs, xf, M * KP);
        if (memcmp(xs, x, sizeof x))
            return false;
    }
    for (int i = 0; i < M * KP; i++) /* finite operands for the product */
        x[i] = i % KP < K && i >= E ? x[i] : 0;
    for (int j = 0; j < NP; j++)
        for (int k = 0; k < KP; k++) {
            seed = seed * 1664525u + 1013904223u;
            float v = j < N && k < K ? (float)(int32_t)seed * 0x1p-33f : 0;
            w[jc_bf16_at(j, k / 2, k % 2, KP)] = jc_bf16_round(v);
        }
    memcpy(xs, x, sizeof x);
    memcpy(ws, w, sizeof w);
    if (swapped) {
        jc_bf16_swap_pairs(xs, sizeof xs / sizeof *xs / 2);
        jc_bf16_swap_pairs(ws, sizeof ws / sizeof *ws / 2);
    }
    memset(want, 0, sizeof want);
    memset(got, 0, sizeof got);
    jc_linear_bf16_ref(want, N, x, KP, M, w, KP, 0, N);
    linear_bf16(got, N, xs, KP, M, ws, KP, 0, N);
    return !memcmp(want, got, sizeof want);
}

#ifdef JC_X86_KERNELS
/* Linux gives a process AMX's tile data only when asked (ARCH_REQ_XCOMP_PERM). */
static bool amx_permitted(void)
{
#if defined(__x86_64__) && defined(__linux__)
    return syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XTILEDATA */) == 0;
#else
    return false;
#endif
}

#endif

/*
 * The ISA tables. Until an ISA has kernels of its own its table is the reference copy;
 * jc_kernels_specialised() says how many slots it replaces.
 */
static struct jc_kernels table_avx2, table_avx512, table_neon;

static void init_tables(void)
{
    table_avx2 = jc_kernels_ref;
    table_avx2.name = "avx2";
    table_avx2.bf16 = NULL; /* no bf16 instructions: --precision bf16 runs fp32 */
#ifdef JC_X86_KERNELS
    table_avx2.layernorm = jc_layernorm_avx2;
    table_avx2.add = jc_add_avx2;
    table_avx2.gelu_mul = jc_gelu_mul_avx2;
    table_avx2.silu_mul = jc_silu_mul_avx2;
    table_avx2.attention = jc_attention_avx2;
    table_avx2.rope = jc_rope_avx2;
    table_avx2.mean_pool = jc_mean_pool_avx2;
    table_avx2.linear_few = jc_linear_few_avx2;
#endif
    /* An AVX-512 machine runs the AVX2 kernels where it has no wider ones. */
    table_avx512 = table_avx2;
    table_avx512.name = "avx512";
#ifdef JC_X86_KERNELS
    table_avx512.layernorm = jc_layernorm_avx512;
    table_avx512.gelu_mul = jc_gelu_mul_avx512;
    table_avx512.silu_mul = jc_silu_mul_avx512;
    table_avx512.attention = jc_attention_avx512;
    table_avx512.rope = jc_rope_avx512;
    table_avx512.mean_pool = jc_mean_pool_avx512;
    table_avx512.linear_few = jc_linear_few_avx512;
    if (jc_cpu()->avx512bf16 && jc_bf16_check(jc_round_bf16_avx512, jc_linear_bf16_avx512, false)) {
        table_avx512.bf16 = "AVX512-BF16";
        table_avx512.round_bf16 = jc_round_bf16_avx512;
        table_avx512.linear_bf16 = jc_linear_bf16_avx512;
        /* tiles where the OS gives them and they give the contract's bits (JCLIP_AMX=0: not) */
        const char *amx = getenv("JCLIP_AMX");
        if (jc_cpu()->amx_bf16 && !(amx && !strcmp(amx, "0")) && amx_permitted() &&
            jc_bf16_check(NULL, jc_linear_bf16_amx, true)) {
            table_avx512.bf16 = "AMX-BF16";
            table_avx512.linear_bf16 = jc_linear_bf16_amx;
            table_avx512.bf16_swapped = true;
        }
    }
#endif
    table_neon = jc_kernels_ref;
    table_neon.name = "neon";
    table_neon.bf16 = NULL;
#ifdef JC_NEON_KERNELS
    table_neon.layernorm = jc_layernorm_neon;
    table_neon.add = jc_add_neon;
    table_neon.gelu_mul = jc_gelu_mul_neon;
    table_neon.silu_mul = jc_silu_mul_neon;
    table_neon.attention = jc_attention_neon;
    table_neon.rope = jc_rope_neon;
    table_neon.mean_pool = jc_mean_pool_neon;
    table_neon.linear_few = jc_linear_few_neon;
    if (jc_cpu()->neon_bf16) {
        table_neon.bf16 = "BF16 (BFMLALB/T)";
        table_neon.linear_bf16 = jc_linear_bf16_neon;
    }
#endif
}

static bool runnable(const char *name)
{
    const struct jc_cpu *c = jc_cpu();
    if (!strcmp(name, "ref"))
        return true;
    if (!strcmp(name, "avx2"))
        return c->avx2 && c->fma;
    if (!strcmp(name, "avx512"))
        return c->avx512f && c->avx512bw && c->avx512vl && c->avx512dq && c->avx2 && c->fma;
    if (!strcmp(name, "neon"))
        return c->neon;
    return false;
}

const struct jc_kernels *jc_kernels_select(const char *name)
{
    static const char *const best[] = {"avx512", "avx2", "neon", "ref"};
    static pthread_once_t tables_once = PTHREAD_ONCE_INIT;
    pthread_once(&tables_once, init_tables);
    if (!name || !*name) {
        for (size_t i = 0; i < sizeof best / sizeof *best; i++)
            if (runnable(best[i]))
                return jc_kernels_select(best[i]);
    }
    if (!runnable(name))
        return NULL;
    if (!strcmp(name, "ref"))
        return &jc_kernels_ref;
    if (!strcmp(name, "avx2"))
        return &table_avx2;
    if (!strcmp(name, "avx512"))
        return &table_avx512;
    return &table_neon;
}

static const struct jc_kernels *active;
static pthread_once_t active_once = PTHREAD_ONCE_INIT;

static void choose_active(void)
{
    active = jc_kernels_select(getenv("JCLIP_ISA"));
    /* an unusable JCLIP_ISA is reported by jc_isa_check(); run correctly meanwhile */
    if (!active)
        active = &jc_kernels_ref;
}

const struct jc_kernels *jc_kernels(void)
{
    pthread_once(&active_once, choose_active);
    return active;
}

int jc_kernels_specialised(const struct jc_kernels *k)
{
    int n = 0;
    n += k->layernorm != jc_kernels_ref.layernorm;
    n += k->add != jc_kernels_ref.add;
    n += k->gelu_mul != jc_kernels_ref.gelu_mul;
    n += k->silu_mul != jc_kernels_ref.silu_mul;
    n += k->attention != jc_kernels_ref.attention;
    n += k->rope != jc_kernels_ref.rope;
    n += k->mean_pool != jc_kernels_ref.mean_pool;
    n += k->linear_few != jc_kernels_ref.linear_few;
    n += k->bf16 && k->linear_bf16 != jc_kernels_ref.linear_bf16;
    return n;
}
