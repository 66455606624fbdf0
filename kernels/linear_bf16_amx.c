/*
 * The bf16 product on AMX-BF16 tiles (Sapphire Rapids and later Xeons). TDPBF16PS takes, for
 * each pair of k, the product of the pair's first bf16 and then its second, each one
 * rounding (DAZ, FTZ): with each pair stored odd value first (the table's bf16_swapped, for
 * x and the packed weights both) that is the contract's order, VDPBF16PS's, and this table
 * gives the reference's bits. A B tile is 16 pairs of one packed panel as stored (16 rows
 * of 64 bytes), an A tile 16 rows of x by 16 pairs; per block of 16 rows, 2 panels at a time
 * (2 C tiles), whole blocks of 16 pairs, then the pairs left in tiles configured to their
 * size, so no zero is ever added in. dispatch.c takes this kernel only where the OS gives
 * the process tile data (arch_prctl) and a product of awkward shape gives the reference's
 * bits. Contract: kernels/README.md.
 *
 * Built with JC_AMX_EMULATED, the same source runs on any CPU against
 * tests/unit/amx_emu.h, the tile instructions as Intel's pseudo-code states them.
 */
#include "bf16.h"

#include <stdint.h>
#include <string.h>

#ifdef JC_AMX_EMULATED
#include "amx_emu.h"
#define jc_linear_bf16_amx jc_linear_bf16_amx_emulated
#else
#include <immintrin.h>
#endif

void jc_linear_bf16_amx(float *c, int ldc, const uint16_t *x, int ldx, int m, const uint16_t *w,
                        int kp, int j0, int j1);

/*
 * The tiles, numbers as the intrinsics take them: two C (panels j and j + 16), A, two B;
 * A and two B for the pairs left over.
 */
#define C0  0
#define C1  1
#define A   2
#define B0  3
#define B1  4
#define AT  5
#define BT0 6
#define BT1 7

/* LDTILECFG's 64 bytes, palette 1. */
struct tilecfg {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
};

/* rows of x in this block, pairs left past the whole blocks of 16 */
static void configure(int rows, int left)
{
    struct tilecfg t;
    memset(&t, 0, sizeof t);
    t.palette = 1;
    t.rows[C0] = t.rows[C1] = t.rows[A] = (uint8_t)rows;
    t.colsb[C0] = t.colsb[C1] = 64;
    t.colsb[A] = 64;
    t.rows[B0] = t.rows[B1] = 16;
    t.colsb[B0] = t.colsb[B1] = 64;
    if (left) {
        t.rows[AT] = (uint8_t)rows;
        t.colsb[AT] = (uint16_t)(4 * left);
        t.rows[BT0] = t.rows[BT1] = (uint8_t)left;
        t.colsb[BT0] = t.colsb[BT1] = 64;
    }
    _tile_loadconfig(&t);
}

/* c's rows by cols, from a C tile stored in s: added, as every table adds s(r, j) to c. */
static void add_tile(float *c, int ldc, const float *s, int rows, int cols)
{
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < cols; j++)
            c[(size_t)r * ldc + j] += s[r * JC_BF16_PANEL + j];
}

/*
 * One block of pairs: x's rows from xp into tile a, panel j's pairs from wp into b0 and
 * (two panels) panel j + 16's into b1, each product added to its C tile.
 */
#define PAIRS(a, b0, b1, xp, wp)                                                                   \
    do {                                                                                           \
        _tile_loadd(a, xp, xs);                                                                    \
        _tile_loadd(b0, wp, 64);                                                                   \
        _tile_dpbf16ps(C0, a, b0);                                                                 \
        if (two) {                                                                                 \
            _tile_loadd(b1, (wp) + panel, 64);                                                     \
            _tile_dpbf16ps(C1, a, b1);                                                             \
        }                                                                                          \
    } while (0)

void jc_linear_bf16_amx(float *c, int ldc, const uint16_t *x, int ldx, int m, const uint16_t *w,
                        int kp, int j0, int j1)
{
    const int pairs = kp / 2, whole = pairs / 16, left = pairs % 16;
    const size_t panel = (size_t)kp * JC_BF16_PANEL, xs = (size_t)ldx * sizeof *x;
    float s[2][16 * JC_BF16_PANEL];
    int configured = -1;
    for (int r = 0; r < m; r += 16) {
        const int rows = m - r < 16 ? m - r : 16;
        if (rows != configured)
            configure(rows, left);
        configured = rows;
        const uint16_t *xr = x + (size_t)r * ldx;
        for (int j = j0; j < j1; j += 2 * JC_BF16_PANEL) {
            const uint16_t *w0 = w + jc_bf16_at(j, 0, 0, kp);
            const int two = j1 - j > JC_BF16_PANEL;
            _tile_zero(C0);
            _tile_zero(C1);
            for (int b = 0; b < whole; b++)
                PAIRS(A, B0, B1, xr + 32 * b, w0 + (size_t)b * 16 * 2 * JC_BF16_PANEL);
            if (left)
                PAIRS(AT, BT0, BT1, xr + 32 * whole, w0 + (size_t)whole * 16 * 2 * JC_BF16_PANEL);
            _tile_stored(C0, s[0], 64);
            const int cols = j1 - j < JC_BF16_PANEL ? j1 - j : JC_BF16_PANEL;
            add_tile(c + (size_t)r * ldc + j, ldc, s[0], rows, cols);
            if (two) {
                _tile_stored(C1, s[1], 64);
                const int cols1 =
                    j1 - j < 2 * JC_BF16_PANEL ? j1 - j - JC_BF16_PANEL : JC_BF16_PANEL;
                add_tile(c + (size_t)r * ldc + j + JC_BF16_PANEL, ldc, s[1], rows, cols1);
            }
        }
    }
    _tile_release();
}
