#include "internal.h"
#include "kernels.h"

#include <stdlib.h>
#include <string.h>

const char *jc_isa_name(void)
{
    return jc_kernels()->name;
}

int jc_isa_check(void)
{
    const char *want = getenv("JCLIP_ISA");
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
    return jc_kernels_specialised(jc_kernels());
}
