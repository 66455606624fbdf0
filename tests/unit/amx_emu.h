/*
 * The AMX instructions kernels/linear_bf16_amx.c uses, in plain C as Intel's pseudo-code
 * states them (SDM: LDTILECFG, TILELOADD, TILESTORED, TILEZERO, TDPBF16PS, TILERELEASE), so
 * that the kernel's blocking and tails run and are checked on any CPU. The kernel built
 * against this file (JC_AMX_EMULATED) is test code only. Each use is checked against the
 * configuration as the hardware would fault on it (a tile used unconfigured or past its
 * size, TDPBF16PS on tiles whose shapes disagree): the emulation aborts.
 */
#ifndef JCLIP_TESTS_AMX_EMU_H
#define JCLIP_TESTS_AMX_EMU_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct amx_emu {
    int configured;
    int rows[8], colsb[8];
    uint8_t data[8][16][64];
};

static _Thread_local struct amx_emu amx_emu;

static inline void amx_emu_fault(const char *what, int t)
{
    fprintf(stderr, "amx emulation: %s (tmm%d)\n", what, t);
    abort();
}

static inline void amx_emu_check(int t)
{
    if (!amx_emu.configured || t < 0 || t > 7 || !amx_emu.rows[t] || !amx_emu.colsb[t])
        amx_emu_fault("tile used unconfigured", t);
}

/* LDTILECFG: palette 1; every tile zeroed. */
static inline void _tile_loadconfig(const void *cfg)
{
    const uint8_t *b = cfg;
    if (b[0] != 1)
        amx_emu_fault("palette other than 1", -1);
    memset(&amx_emu, 0, sizeof amx_emu);
    for (int t = 0; t < 8; t++) {
        uint16_t colsb;
        memcpy(&colsb, b + 16 + 2 * t, 2);
        amx_emu.colsb[t] = colsb;
        amx_emu.rows[t] = b[48 + t];
        if (colsb > 64 || amx_emu.rows[t] > 16)
            amx_emu_fault("tile larger than palette 1 allows", t);
    }
    amx_emu.configured = 1;
}

static inline void _tile_release(void)
{
    memset(&amx_emu, 0, sizeof amx_emu);
}

static inline void _tile_zero(int t)
{
    amx_emu_check(t);
    memset(amx_emu.data[t], 0, sizeof amx_emu.data[t]);
}

/* TILELOADD: rows of colsb bytes, stride bytes apart; the rest of each row zeroed. */
static inline void _tile_loadd(int t, const void *base, long stride)
{
    amx_emu_check(t);
    memset(amx_emu.data[t], 0, sizeof amx_emu.data[t]);
    for (int r = 0; r < amx_emu.rows[t]; r++)
        memcpy(amx_emu.data[t][r], (const char *)base + r * stride, (size_t)amx_emu.colsb[t]);
}

static inline void _tile_stored(int t, void *base, long stride)
{
    amx_emu_check(t);
    for (int r = 0; r < amx_emu.rows[t]; r++)
        memcpy((char *)base + r * stride, amx_emu.data[t][r], (size_t)amx_emu.colsb[t]);
}

static inline float amx_emu_f32(const uint8_t *p)
{
    uint16_t h;
    uint32_t u;
    float f;
    memcpy(&h, p, 2);
    u = (uint32_t)h << 16;
    memcpy(&f, &u, 4);
    return fpclassify(f) == FP_SUBNORMAL ? copysignf(0.0f, f) : f; /* DAZ */
}

static inline float amx_emu_ftz(float f)
{
    return fpclassify(f) == FP_SUBNORMAL ? copysignf(0.0f, f) : f;
}

/*
 * TDPBF16PS: for each row m of dst, each pair k of a.row[m] and each n,
 * dst[m][n] += a[m][2k] b[k][2n], then += a[m][2k+1] b[k][2n+1], each an FMA with DAZ in,
 * FTZ out and RNE rounding. Shapes must agree: dst and a the same rows, a's pairs b's rows,
 * dst's and b's colsb.
 */
static inline void _tile_dpbf16ps(int dst, int a, int b)
{
    amx_emu_check(dst);
    amx_emu_check(a);
    amx_emu_check(b);
    const int M = amx_emu.rows[dst], K = amx_emu.colsb[a] / 4, N = amx_emu.colsb[dst] / 4;
    if (amx_emu.rows[a] != M || amx_emu.rows[b] != K || amx_emu.colsb[b] != amx_emu.colsb[dst])
        amx_emu_fault("TDPBF16PS on tiles of shapes that disagree", dst);
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            float s;
            memcpy(&s, amx_emu.data[dst][m] + 4 * n, 4);
            for (int k = 0; k < K; k++) {
                const uint8_t *ap = amx_emu.data[a][m] + 4 * k, *bp = amx_emu.data[b][k] + 4 * n;
                s = amx_emu_ftz(fmaf(amx_emu_f32(ap), amx_emu_f32(bp), amx_emu_ftz(s)));
                s = amx_emu_ftz(fmaf(amx_emu_f32(ap + 2), amx_emu_f32(bp + 2), s));
            }
            memcpy(amx_emu.data[dst][m] + 4 * n, &s, 4);
        }
}

#endif
