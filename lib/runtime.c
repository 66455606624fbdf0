/* The runtime context (lib/compute.h): the one place lib/ keeps state between calls. */
#include "internal.h"
#include "compute.h"
#include "kernels.h"

#include <stdlib.h>
#include <string.h>

struct jc_runtime jc_rt = {
    .pool =
        {
            .lock = PTHREAD_MUTEX_INITIALIZER,
            .wake = PTHREAD_COND_INITIALIZER,
            .done = PTHREAD_COND_INITIALIZER,
        },
    .blas =
        {
            .loaded = PTHREAD_ONCE_INIT,
            .reserve_lock = PTHREAD_MUTEX_INITIALIZER,
            .probed = PTHREAD_ONCE_INIT,
            .rows = {.unroll = 64, .alike = 1}, /* until probed */
        },
};

static pthread_once_t chosen = PTHREAD_ONCE_INIT;

static void choose(void)
{
    jc_rt.cpu = jc_cpu();
    jc_rt.kernels = jc_kernels(); /* JCLIP_ISA's, or the best this CPU runs */
}

const struct jc_runtime *jc_runtime(void)
{
    pthread_once(&chosen, choose);
    return &jc_rt;
}

const char *jc_isa_name(void)
{
    return jc_runtime()->kernels->name;
}

int jc_isa_check(void)
{
    const char *want = getenv("JCLIP_ISA"), *amx = getenv("JCLIP_AMX");
    if (amx && *amx && strcmp(amx, "0") && strcmp(amx, "1"))
        return jc_fail(JC_EINVAL, "JCLIP_AMX=%s: unknown (use 0 or 1)", amx);
    if (!want || !*want)
        return 0;
    if (!jc_kernels_select(want)) {
        static const char *const known[] = {"ref", "avx2", "avx512", "neon"};
        for (size_t i = 0; i < sizeof known / sizeof *known; i++)
            if (!strcmp(want, known[i]))
                return jc_fail(JC_EINVAL, "JCLIP_ISA=%s: this CPU cannot run the %s kernels", want,
                               want);
        return jc_fail(JC_EINVAL, "JCLIP_ISA=%s: unknown (use ref, avx2, avx512 or neon)", want);
    }
    return 0;
}

int jc_isa_specialised(void)
{
    return jc_kernels_specialised(jc_runtime()->kernels);
}
