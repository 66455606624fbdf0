#include "kernels.h"
#include "ref.h"

#include <stdlib.h>
#include <pthread.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
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
    if (__get_cpuid_count(7, 0, &a, &b, &cx, &d)) {
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
    if (jc_cpu()->avx512bf16) {
        table_avx512.bf16 = "AVX512-BF16";
        table_avx512.round_bf16 = jc_round_bf16_avx512;
        table_avx512.linear_bf16 = jc_linear_bf16_avx512;
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
