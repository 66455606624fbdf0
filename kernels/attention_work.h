/*
 * The work space of the SIMD attention kernels (attention_avx2.c, attention_avx512.c,
 * attention_neon.c): one pass of up to JC_ATTN_ROWS query rows against tiles of up to
 * JC_ATTN_KEYS keys, carved from the JC_ATTN_WORK(hd) floats the caller gives.
 */
#ifndef JCLIP_ATTENTION_WORK_H
#define JCLIP_ATTENTION_WORK_H

#include "kernels.h"

#include <stddef.h>

struct jc_attn_work {
    float *qt;            /* [hd][ROWS] the pass's queries, transposed */
    float *acc;           /* [ROWS][hd] unnormalised outputs */
    float *st;            /* [KEYS][ROWS] scores, then weights, of one tile */
    float *m;             /* [ROWS] running max */
    float *l;             /* [ROWS] running sum */
    float *corr;          /* [ROWS] this tile's rescaling of the accumulator */
    float *bias;          /* [KEYS] padding bias per key of the tile */
    float *kt;            /* [KEYS][hd] the tile's keys, packed (x86) */
    float *vt;            /* [KEYS][hd] the tile's values, packed (x86) */
    const float *tk, *tv; /* AVX-512: the tile's keys and values, kt and vt or in place */
    size_t ldt;           /* AVX-512: their row stride */
};

static inline void jc_attn_work_carve(struct jc_attn_work *w, float *work, int hd)
{
    w->qt = work;
    w->acc = w->qt + (size_t)hd * JC_ATTN_ROWS;
    w->st = w->acc + (size_t)JC_ATTN_ROWS * hd;
    w->m = w->st + (size_t)JC_ATTN_KEYS * JC_ATTN_ROWS;
    w->l = w->m + JC_ATTN_ROWS;
    w->corr = w->l + JC_ATTN_ROWS;
    w->bias = w->corr + JC_ATTN_ROWS;
    w->kt = w->bias + JC_ATTN_KEYS;
    w->vt = w->kt + (size_t)JC_ATTN_KEYS * hd;
}

#endif
