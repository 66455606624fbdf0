/*
 * Image files, decoded with stb_image (Debian's 2.27) to the RGB bytes Pillow 9.4 gives.
 *
 * stb trusts its input more than we can. At the end of the data it reads zeros, so a
 * truncated JPEG, GIF or BMP decodes "successfully" with a grey or black bottom; it leaves
 * the missing pixels of uncompressed TGA and PNM files uninitialised; and its JPEG decoder
 * overflows on Huffman tables of more than 256 codes, decodes with tables no segment
 * defined, and stops a scan early where a restart marker is missing. So before stb sees the
 * data we read the header ourselves (the size, to refuse decompression bombs before any
 * allocation) and walk the file's structure far enough to know it is whole and consistent:
 * a PNG up to its IEND chunk, a JPEG up to its end-of-image marker (tables, scans and
 * restart markers included), a GIF to the end of its first frame, and the pixel array of
 * BMP, TGA and PNM files by its length. PNM is decoded here outright.
 *
 * Where stb's pixels differ from Pillow's they are corrected: JPEG kernels from
 * libjpeg-turbo (below), and a GIF's transparent and uncovered pixels (gif_fill).
 */
#include "internal.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define STB_IMAGE_IMPLEMENTATION
#define STBI_FAILURE_USERMSG
/* Only formats Pillow reads as well, and fewer parsers for hostile input to reach. */
#define STBI_NO_PSD
#define STBI_NO_PIC
#define STBI_NO_HDR
#define STBI_NO_LINEAR

/*
 * All of stb's memory starts zeroed. stb 2.27 reads memory it never wrote on some corrupt
 * inputs (a deflate distance code of 30 or 31 copies from the output's own unwritten end,
 * a JPEG scan may use tables no segment defined); zeroed memory makes those reads
 * deterministic where the checks below do not already refuse the file.
 */
static void *stbi_realloc_zeroed(void *p, size_t old_size, size_t new_size)
{
    unsigned char *q = realloc(p, new_size);
    if (q && new_size > old_size)
        memset(q + old_size, 0, new_size - old_size);
    return q;
}
#define STBI_MALLOC(size)                     calloc(1, (size))
#define STBI_REALLOC_SIZED(p, old_size, size) stbi_realloc_zeroed((p), (old_size), (size))
#define STBI_FREE(p)                          free(p)

/*
 * stb's JPEG pixels differ from libjpeg-turbo's, which Pillow uses, by a few levels: its
 * IDCT, chroma upsampling and colour conversion round differently, and its 2:1 horizontal
 * upsampling swaps the weights of the last column. The kernels below are libjpeg-turbo
 * 2.1's (jpeg_idct_islow, the fancy upsamplers, the YCbCr tables), so JPEGs decode as in
 * Pillow. stb takes its kernels by name, as in `j->idct_block_kernel = stbi__idct_block`;
 * function-like macros rename only stb's own definitions (a name not followed by '(' is not
 * expanded), which leaves those assignments naming the functions below. stb's SIMD kernels
 * are turned off because they would be chosen instead.
 */
#define STBI_NO_SIMD
#define stbi__idct_block(...)        stbi__idct_block_unused(__VA_ARGS__)
#define stbi__YCbCr_to_RGB_row(...)  stbi__YCbCr_to_RGB_row_unused(__VA_ARGS__)
#define stbi__resample_row_v_2(...)  stbi__resample_row_v_2_unused(__VA_ARGS__)
#define stbi__resample_row_h_2(...)  stbi__resample_row_h_2_unused(__VA_ARGS__)
#define stbi__resample_row_hv_2(...) stbi__resample_row_hv_2_unused(__VA_ARGS__)
static void(stbi__idct_block)(unsigned char *out, int out_stride, short data[64]);
static void(stbi__YCbCr_to_RGB_row)(unsigned char *out, const unsigned char *y,
                                    const unsigned char *pcb, const unsigned char *pcr, int count,
                                    int step);
static unsigned char *(stbi__resample_row_v_2)(unsigned char *out, unsigned char *in_near,
                                               unsigned char *in_far, int w, int hs);
static unsigned char *(stbi__resample_row_h_2)(unsigned char *out, unsigned char *in_near,
                                               unsigned char *in_far, int w, int hs);
static unsigned char *(stbi__resample_row_hv_2)(unsigned char *out, unsigned char *in_near,
                                                unsigned char *in_far, int w, int hs);

#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#endif
#include <stb_image.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
#undef stbi__idct_block
#undef stbi__YCbCr_to_RGB_row
#undef stbi__resample_row_v_2
#undef stbi__resample_row_h_2
#undef stbi__resample_row_hv_2

/* ---- libjpeg-turbo's JPEG kernels ------------------------------------------------------ */

#define IDCT_CONST_BITS 13
#define IDCT_PASS1_BITS 2

/* libjpeg's DESCALE: a rounding arithmetic right shift */
static long descale(long x, int n)
{
    return (x + (1L << (n - 1))) >> n;
}

/* The post-IDCT range limit: +128 and a clamp for values within [-512, 512), which wrap
 * beyond (the table libjpeg indexes with x & 1023) */
static unsigned char idct_limit(long x)
{
    int i = (int)(x & 1023);
    return (unsigned char)(i < 128 ? i + 128 : i < 512 ? 255 : i < 896 ? 0 : i - 896);
}

/*
 * One pass of jpeg_idct_islow (a column or a row): the even part, the odd part and the
 * butterflies, in libjpeg's order, leaving 8 outputs scaled by 2^IDCT_CONST_BITS in o[].
 */
static void idct_1d(long d0, long d1, long d2, long d3, long d4, long d5, long d6, long d7,
                    long o[8])
{
    long z1 = (d2 + d6) * 4433;   /* FIX(0.541196100) */
    long tmp2 = z1 + d6 * -15137; /* FIX(1.847759065) */
    long tmp3 = z1 + d2 * 6270;   /* FIX(0.765366865) */
    long tmp0 = (d0 + d4) * (1L << IDCT_CONST_BITS);
    long tmp1 = (d0 - d4) * (1L << IDCT_CONST_BITS);
    long tmp10 = tmp0 + tmp3, tmp13 = tmp0 - tmp3, tmp11 = tmp1 + tmp2, tmp12 = tmp1 - tmp2;

    tmp0 = d7;
    tmp1 = d5;
    tmp2 = d3;
    tmp3 = d1;
    z1 = tmp0 + tmp3;
    long z2 = tmp1 + tmp2, z3 = tmp0 + tmp2, z4 = tmp1 + tmp3;
    long z5 = (z3 + z4) * 9633; /* FIX(1.175875602) */
    tmp0 *= 2446;               /* FIX(0.298631336) */
    tmp1 *= 16819;              /* FIX(2.053119869) */
    tmp2 *= 25172;              /* FIX(3.072711026) */
    tmp3 *= 12299;              /* FIX(1.501321110) */
    z1 *= -7373;                /* FIX(0.899976223) */
    z2 *= -20995;               /* FIX(2.562915447) */
    z3 *= -16069;               /* FIX(1.961570560) */
    z4 *= -3196;                /* FIX(0.390180644) */
    z3 += z5;
    z4 += z5;
    tmp0 += z1 + z3;
    tmp1 += z2 + z4;
    tmp2 += z2 + z3;
    tmp3 += z1 + z4;

    o[0] = tmp10 + tmp3;
    o[7] = tmp10 - tmp3;
    o[1] = tmp11 + tmp2;
    o[6] = tmp11 - tmp2;
    o[2] = tmp12 + tmp1;
    o[5] = tmp12 - tmp1;
    o[3] = tmp13 + tmp0;
    o[4] = tmp13 - tmp0;
}

/* jpeg_idct_islow on coefficients stb has already multiplied by the quantisation table. */
static void(stbi__idct_block)(unsigned char *out, int out_stride, short data[64])
{
    int ws[64];
    long o[8];

    /* columns into the workspace, scaled up by 2^IDCT_PASS1_BITS */
    for (int c = 0; c < 8; c++) {
        const short *in = data + c;
        if (!in[8] && !in[16] && !in[24] && !in[32] && !in[40] && !in[48] && !in[56]) {
            for (int r = 0; r < 8; r++)
                ws[8 * r + c] = in[0] * (1 << IDCT_PASS1_BITS);
            continue;
        }
        idct_1d(in[0], in[8], in[16], in[24], in[32], in[40], in[48], in[56], o);
        for (int r = 0; r < 8; r++)
            ws[8 * r + c] = (int)descale(o[r], IDCT_CONST_BITS - IDCT_PASS1_BITS);
    }
    /* rows out, descaled by 8 and 2^IDCT_PASS1_BITS */
    for (int r = 0; r < 8; r++) {
        const int *w = ws + 8 * r;
        unsigned char *row = out + (size_t)r * out_stride;
        if (!w[1] && !w[2] && !w[3] && !w[4] && !w[5] && !w[6] && !w[7]) {
            memset(row, idct_limit(descale(w[0], IDCT_PASS1_BITS + 3)), 8);
            continue;
        }
        idct_1d(w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7], o);
        for (int c = 0; c < 8; c++)
            row[c] = idct_limit(descale(o[c], IDCT_CONST_BITS + IDCT_PASS1_BITS + 3));
    }
}

static unsigned char clamp255(int v)
{
    return (unsigned char)(v < 0 ? 0 : v > 255 ? 255 : v);
}

/* ycc_rgb_convert, with the entries of build_ycc_rgb_table's tables computed in place. */
static void(stbi__YCbCr_to_RGB_row)(unsigned char *out, const unsigned char *y,
                                    const unsigned char *pcb, const unsigned char *pcr, int count,
                                    int step)
{
    /* FIX(x) = x * 2^16 rounded */
    const long cr_r = 91881, cb_b = 116130, cb_g = -22554, cr_g = -46802, half = 1L << 15;

    for (int i = 0; i < count; i++, out += step) {
        long cb = pcb[i] - 128, cr = pcr[i] - 128;
        out[0] = clamp255(y[i] + (int)((cr_r * cr + half) >> 16));
        out[1] = clamp255(y[i] + (int)((cb_g * cb + half + cr_g * cr) >> 16));
        out[2] = clamp255(y[i] + (int)((cb_b * cb + half) >> 16));
        if (step == 4)
            out[3] = 255;
    }
}

/*
 * h1v2_fancy_upsample: 3/4 of the nearer row and 1/4 of the further, rounded with a bias of
 * 1 for the upper output row (the further row is above) and 2 for the lower. At the image's
 * edges both rows are the same and the bias does not matter.
 */
static unsigned char *(stbi__resample_row_v_2)(unsigned char *out, unsigned char *in_near,
                                               unsigned char *in_far, int w, int hs)
{
    int bias = in_far < in_near ? 1 : 2;

    (void)hs;
    for (int i = 0; i < w; i++)
        out[i] = (unsigned char)((3 * in_near[i] + in_far[i] + bias) >> 2);
    return out;
}

/* h2v1_fancy_upsample, or h2v1_upsample (doubling) when the row is 2 samples or fewer. */
static unsigned char *(stbi__resample_row_h_2)(unsigned char *out, unsigned char *in_near,
                                               unsigned char *in_far, int w, int hs)
{
    const unsigned char *in = in_near;

    (void)in_far;
    (void)hs;
    if (w <= 2) {
        for (int i = 0; i < w; i++)
            out[2 * i] = out[2 * i + 1] = in[i];
        return out;
    }
    out[0] = in[0];
    out[1] = (unsigned char)((in[0] * 3 + in[1] + 2) >> 2);
    for (int i = 1; i < w - 1; i++) {
        int v = in[i] * 3;
        out[2 * i] = (unsigned char)((v + in[i - 1] + 1) >> 2);
        out[2 * i + 1] = (unsigned char)((v + in[i + 1] + 2) >> 2);
    }
    out[2 * w - 2] = (unsigned char)((in[w - 1] * 3 + in[w - 2] + 1) >> 2);
    out[2 * w - 1] = in[w - 1];
    return out;
}

/* h2v2_fancy_upsample, or h2v2_upsample (doubling) when the row is 2 samples or fewer. */
static unsigned char *(stbi__resample_row_hv_2)(unsigned char *out, unsigned char *in_near,
                                                unsigned char *in_far, int w, int hs)
{
    int this, last, next;

    (void)hs;
    if (w <= 2) {
        for (int i = 0; i < w; i++)
            out[2 * i] = out[2 * i + 1] = in_near[i];
        return out;
    }
    this = in_near[0] * 3 + in_far[0];
    next = in_near[1] * 3 + in_far[1];
    out[0] = (unsigned char)((this * 4 + 8) >> 4);
    out[1] = (unsigned char)((this * 3 + next + 7) >> 4);
    for (int i = 1; i < w - 1; i++) {
        last = this;
        this = next;
        next = in_near[i + 1] * 3 + in_far[i + 1];
        out[2 * i] = (unsigned char)((this * 3 + last + 8) >> 4);
        out[2 * i + 1] = (unsigned char)((this * 3 + next + 7) >> 4);
    }
    last = this;
    this = next;
    out[2 * w - 2] = (unsigned char)((this * 3 + last + 8) >> 4);
    out[2 * w - 1] = (unsigned char)((this * 4 + 7) >> 4);
    return out;
}

/* stb counts bytes in an int; the margin leaves room for a patched copy (jc_image_decode) */
#define MAX_BYTES (INT_MAX - 4096)

/* The Huffman tables of the JPEG spec's Annex K.3 as one DHT segment: DC 0 and 1, AC 0 and 1. */
static const uint8_t JPEG_STD_DHT[420] = {
    0xff, 0xc4, 0x01, 0xa2, 0x00, 0x00, 0x01, 0x05, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a,
    0x0b, 0x01, 0x00, 0x03, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x10, 0x00,
    0x02, 0x01, 0x03, 0x03, 0x02, 0x04, 0x03, 0x05, 0x05, 0x04, 0x04, 0x00, 0x00, 0x01, 0x7d, 0x01,
    0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61, 0x07, 0x22,
    0x71, 0x14, 0x32, 0x81, 0x91, 0xa1, 0x08, 0x23, 0x42, 0xb1, 0xc1, 0x15, 0x52, 0xd1, 0xf0, 0x24,
    0x33, 0x62, 0x72, 0x82, 0x09, 0x0a, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x25, 0x26, 0x27, 0x28, 0x29,
    0x2a, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4a,
    0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a,
    0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a,
    0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8,
    0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6,
    0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe1, 0xe2, 0xe3,
    0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9,
    0xfa, 0x11, 0x00, 0x02, 0x01, 0x02, 0x04, 0x04, 0x03, 0x04, 0x07, 0x05, 0x04, 0x04, 0x00, 0x01,
    0x02, 0x77, 0x00, 0x01, 0x02, 0x03, 0x11, 0x04, 0x05, 0x21, 0x31, 0x06, 0x12, 0x41, 0x51, 0x07,
    0x61, 0x71, 0x13, 0x22, 0x32, 0x81, 0x08, 0x14, 0x42, 0x91, 0xa1, 0xb1, 0xc1, 0x09, 0x23, 0x33,
    0x52, 0xf0, 0x15, 0x62, 0x72, 0xd1, 0x0a, 0x16, 0x24, 0x34, 0xe1, 0x25, 0xf1, 0x17, 0x18, 0x19,
    0x1a, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46,
    0x47, 0x48, 0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64, 0x65, 0x66,
    0x67, 0x68, 0x69, 0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x82, 0x83, 0x84, 0x85,
    0x86, 0x87, 0x88, 0x89, 0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3,
    0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba,
    0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8,
    0xd9, 0xda, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6,
    0xf7, 0xf8, 0xf9, 0xfa,
};

enum format { FMT_UNKNOWN, FMT_PNG, FMT_JPEG, FMT_GIF, FMT_BMP, FMT_PNM, FMT_TGA };

/* What the header and the structure walk found. */
struct header {
    enum format fmt;
    bool have_size;
    long long w, h;
    const char *problem;   /* why the data cannot be decoded; NULL if none was found */
    size_t plte, plte_len; /* PNG: offset of a short PLTE chunk of a palette image, its length */
    size_t soi;            /* JPEG: offset just past the SOI marker */
    bool std_tables;       /* JPEG: a Huffman table is missing when the first scan starts */
    size_t data;           /* PNM: offset of the first sample */
    unsigned maxval;       /* PNM: the largest sample value */
    struct {
        size_t flags;         /* offset of the transparency flag of the first frame, or 0 */
        int fill;             /* palette index around the first frame */
        size_t palette;       /* offset of the first frame's colour table, or 0 */
        int colours;          /* its entries */
        long long x, y, w, h; /* the first frame on the screen */
    } gif;
};

static uint32_t be16(const uint8_t *p)
{
    return (uint32_t)p[0] << 8 | p[1];
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint32_t le16(const uint8_t *p)
{
    return (uint32_t)p[1] << 8 | p[0];
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

/* The format by its signature, as stb recognises it; *start is where the walk begins. */
static enum format sniff(const uint8_t *p, size_t len, size_t *start)
{
    size_t i = 0;

    if (len >= 8 && !memcmp(p, "\x89PNG\r\n\x1a\n", 8))
        return FMT_PNG;
    /* stb takes fill bytes before SOI too */
    while (i < len && p[i] == 0xFF)
        i++;
    if (i > 0 && i < len && p[i] == 0xD8) {
        *start = i + 1;
        return FMT_JPEG;
    }
    if (len >= 6 && (!memcmp(p, "GIF87a", 6) || !memcmp(p, "GIF89a", 6)))
        return FMT_GIF;
    if (len >= 2 && p[0] == 'B' && p[1] == 'M')
        return FMT_BMP;
    /* stb reads binary greymaps and pixmaps only */
    if (len >= 2 && p[0] == 'P' && (p[1] == '5' || p[1] == '6'))
        return FMT_PNM;
    return FMT_UNKNOWN; /* TGA has no signature: stb guesses from the header */
}

/* Chunks from the signature on: IHDR first, and the file is whole when IEND is. */
static void scan_png(const uint8_t *p, size_t len, struct header *hd)
{
    size_t pos = 8;

    for (bool first = true;; first = false) {
        if (len - pos < 12) {
            hd->problem = "truncated PNG (no IEND chunk)";
            return;
        }
        uint32_t clen = be32(p + pos);
        const uint8_t *type = p + pos + 4;
        if (clen > 0x7FFFFFFF) {
            hd->problem = "corrupt PNG (bad chunk length)";
            return;
        }
        if (first) {
            if (memcmp(type, "IHDR", 4) || clen != 13) {
                hd->problem = "corrupt PNG (no IHDR chunk)";
                return;
            }
            if (len - pos < 12 + 13) {
                hd->problem = "truncated PNG (no IEND chunk)";
                return;
            }
            hd->w = be32(p + pos + 8);
            hd->h = be32(p + pos + 12);
            hd->have_size = true;
        }
        if (clen > len - pos - 12) {
            hd->problem = "truncated PNG (no IEND chunk)";
            return;
        }
        if (!memcmp(type, "IEND", 4))
            return;
        if (!memcmp(type, "PLTE", 4) && !hd->plte && p[8 + 8 + 9] == 3 && clen < 768 &&
            clen % 3 == 0) {
            hd->plte = pos;
            hd->plte_len = clen;
        }
        pos += 12 + (size_t)clen;
    }
}

static bool jpeg_is_sof(int m)
{
    return m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC;
}

/*
 * What the JPEG walk has seen of the tables and components. stb 2.27 does not check that a
 * scan's tables were defined (it decodes with empty ones, or before we zeroed its memory,
 * with whatever the memory held); a component no scan covers is never written; and a scan
 * stops, leaving the rest unwritten, where a restart marker is missing. libjpeg refuses
 * the first and warns about the others; here all three are errors.
 */
struct jpeg_state {
    int sof; /* the frame header's marker, 0 before it */
    long long w, h;
    int ncomp, hmax, vmax;
    int id[4], tq[4], hs[4], vs[4];
    bool covered[4];      /* a scan initialises the component's data */
    unsigned dqt, dc, ac; /* bit t: table t has been defined */
    unsigned ri;          /* the restart interval */
    long long restarts;   /* restart markers the current scan needs */
};

/*
 * Records a DHT segment's tables; false if one has more than 256 codes, which stb 2.27
 * writes into arrays of 257 without checking. The tables are read as stb reads them: while
 * the segment length is not used up, even past the segment's end (where stb then fails).
 */
static bool jpeg_dht(const uint8_t *p, size_t len, size_t pos, size_t seg, struct jpeg_state *st)
{
    long left = (long)seg - 2;

    pos += 2;
    while (left > 0 && pos < len) {
        unsigned n = 0;
        if (p[pos] >> 4 > 1 || (p[pos] & 15) > 3)
            return true; /* stb refuses the table before building it */
        for (size_t i = pos + 1; i < pos + 17 && i < len; i++)
            n += p[i];
        if (n > 256)
            return false;
        if (p[pos] >> 4)
            st->ac |= 1u << (p[pos] & 15);
        else
            st->dc |= 1u << (p[pos] & 15);
        pos += 17 + n;
        left -= 17 + (long)n;
    }
    return true;
}

/* Records a DQT segment's tables as stb reads them. */
static void jpeg_dqt(const uint8_t *p, size_t len, size_t pos, size_t seg, struct jpeg_state *st)
{
    long left = (long)seg - 2;

    pos += 2;
    while (left > 0 && pos < len) {
        int sixteen = p[pos] >> 4, t = p[pos] & 15;
        if (sixteen > 1 || t > 3)
            return; /* stb refuses it */
        st->dqt |= 1u << t;
        pos += sixteen ? 129 : 65;
        left -= sixteen ? 129 : 65;
    }
}

/* The first frame header: the size, and the components with their quantisation tables. */
static void jpeg_sof(const uint8_t *p, size_t pos, size_t seg, int m, struct jpeg_state *st,
                     struct header *hd)
{
    if (st->sof || seg < 7)
        return;
    st->sof = m;
    hd->h = st->h = be16(p + pos + 3);
    hd->w = st->w = be16(p + pos + 5);
    hd->have_size = true;
    int n = seg >= 8 ? p[pos + 7] : 0;
    if (n > 4 || seg != 8 + 3 * (size_t)n)
        return; /* stb refuses it */
    st->ncomp = n;
    st->hmax = st->vmax = 1;
    for (int i = 0; i < n; i++) {
        st->id[i] = p[pos + 8 + 3 * i];
        st->hs[i] = p[pos + 9 + 3 * i] >> 4;
        st->vs[i] = p[pos + 9 + 3 * i] & 15;
        st->tq[i] = p[pos + 10 + 3 * i] & 3;
        if (!st->hs[i] || !st->vs[i]) {
            st->ncomp = 0; /* stb refuses it */
            return;
        }
        st->hmax = st->hs[i] > st->hmax ? st->hs[i] : st->hmax;
        st->vmax = st->vs[i] > st->vmax ? st->vs[i] : st->vmax;
    }
}

/*
 * Checks that a scan's tables were defined, and notes the components it initialises: any
 * baseline scan, and a progressive DC first pass (which zeroes the coefficients). Returns a
 * problem, or NULL.
 */
static const char *jpeg_sos(const uint8_t *p, size_t pos, size_t seg, struct jpeg_state *st)
{
    int n = p[pos + 2]; /* seg >= 3: a segment has its length and at least one byte */

    if (!st->ncomp || n < 1 || n > 4 || seg != 6 + 2 * (size_t)n)
        return NULL; /* stb refuses the scan */
    bool progressive = st->sof == 0xC2;
    int ss = p[pos + 3 + 2 * n], ah = p[pos + 5 + 2 * n] >> 4;
    bool dc = !progressive || (ss == 0 && ah == 0), ac = !progressive || ss > 0;
    for (int i = 0; i < n; i++) {
        int id = p[pos + 3 + 2 * i], td = p[pos + 4 + 2 * i] >> 4, ta = p[pos + 4 + 2 * i] & 15;
        int c = 0;
        while (c < st->ncomp && st->id[c] != id)
            c++;
        if (c == st->ncomp || td > 3 || ta > 3)
            return NULL; /* stb refuses the scan */
        if ((dc && !(st->dc >> td & 1)) || (ac && !(st->ac >> ta & 1)))
            return "corrupt JPEG (a scan uses an undefined Huffman table)";
        if (!(st->dqt >> st->tq[c] & 1))
            return "corrupt JPEG (a scan uses an undefined quantisation table)";
        if (dc)
            st->covered[c] = true;
    }

    /* stb counts down the restart interval over the scan's MCUs, or over the blocks of its
     * one component, and expects a restart marker at each boundary before the last */
    long long units;
    if (n == 1) {
        int c = 0;
        while (st->id[c] != p[pos + 3])
            c++;
        long long cw = (st->w * st->hs[c] + st->hmax - 1) / st->hmax;
        long long ch = (st->h * st->vs[c] + st->vmax - 1) / st->vmax;
        units = ((cw + 7) / 8) * ((ch + 7) / 8);
    } else {
        units = ((st->w + 8 * st->hmax - 1) / (8 * st->hmax)) *
                ((st->h + 8 * st->vmax - 1) / (8 * st->vmax));
    }
    st->restarts = st->ri && units ? (units + st->ri - 1) / st->ri - 1 : 0;
    return NULL;
}

/*
 * Markers from SOI on, skipping segments by their length and scans up to the next marker
 * that is not a restart: the first frame header gives the size, and the file is whole when
 * the end-of-image marker is found. Bytes between markers are skipped, as stb and libjpeg
 * do. Thumbnails inside APPn segments are never looked at.
 */
static void scan_jpeg(const uint8_t *p, size_t len, size_t pos, struct header *hd)
{
    struct jpeg_state st = {0};

    hd->soi = pos;
    for (;;) {
        const uint8_t *ff = memchr(p + pos, 0xFF, len - pos);
        if (!ff)
            break;
        pos = (size_t)(ff - p);
        while (pos < len && p[pos] == 0xFF)
            pos++;
        if (pos >= len)
            break;
        int m = p[pos++];
        if (m == 0xD9) {
            if (!hd->have_size)
                hd->problem = "corrupt JPEG (no frame header)";
            for (int c = 0; c < st.ncomp && st.sof <= 0xC2; c++)
                if (!st.covered[c])
                    hd->problem = "corrupt JPEG (a component has no scan)";
            return;
        }
        if (m == 0x00 || m == 0x01 || (m >= 0xD0 && m <= 0xD8))
            continue; /* no segment follows */
        if (len - pos < 2)
            break;
        size_t seg = be16(p + pos);
        if (seg < 2) {
            hd->problem = "corrupt JPEG (bad segment length)";
            return;
        }
        if (seg > len - pos)
            break;
        if (m == 0xC4 && !jpeg_dht(p, len, pos, seg, &st)) {
            hd->problem = "corrupt JPEG (bad Huffman table)";
            return;
        }
        if (m == 0xDB)
            jpeg_dqt(p, len, pos, seg, &st);
        if (m == 0xDD && seg == 4)
            st.ri = be16(p + pos + 2);
        if (jpeg_is_sof(m))
            jpeg_sof(p, pos, seg, m, &st, hd);
        st.restarts = 0;
        if (m == 0xDA && st.sof != 0xC2 && !hd->std_tables &&
            ((st.dc & 3) != 3 || (st.ac & 3) != 3)) {
            /* libjpeg's sequential decoder gives Motion-JPEG frames the standard tables
             * (see jc_image_decode); its progressive one does not */
            hd->std_tables = true;
            st.dc |= 3;
            st.ac |= 3;
        }
        if (m == 0xDA && seg >= 3 && (hd->problem = jpeg_sos(p, pos, seg, &st)))
            return;
        pos += seg;
        if (m != 0xDA)
            continue;
        /* entropy-coded data: 0xFF is followed by 0x00 (a stuffed byte), a restart, fill
         * bytes or the next marker */
        for (;;) {
            ff = memchr(p + pos, 0xFF, len - pos);
            if (!ff) {
                pos = len;
                break;
            }
            pos = (size_t)(ff - p) + 1;
            if (pos >= len)
                break;
            if (p[pos] >= 0xD0 && p[pos] <= 0xD7)
                st.restarts--;
            if (p[pos] == 0x00 || (p[pos] >= 0xD0 && p[pos] <= 0xD7)) {
                pos++;
                continue;
            }
            if (p[pos] == 0xFF)
                continue;
            pos--; /* the marker's 0xFF */
            break;
        }
        if (pos >= len)
            break;
        if (st.restarts > 0) {
            hd->problem = "corrupt JPEG (missing restart markers)";
            return;
        }
    }
    hd->problem = "truncated JPEG (no end-of-image marker)";
}

/* Skips GIF data sub-blocks up to their terminator; false at the end of the data. */
static bool gif_skip_blocks(const uint8_t *p, size_t len, size_t *pos)
{
    for (;;) {
        if (*pos >= len)
            return false;
        size_t n = p[(*pos)++];
        if (n == 0)
            return true;
        if (n > len - *pos)
            return false;
        *pos += n;
    }
}

/*
 * The logical screen gives the size; the file is whole when the first image's data end.
 * Also notes what decode_gif needs to paint the first frame as Pillow does.
 */
static void scan_gif(const uint8_t *p, size_t len, struct header *hd)
{
    size_t pos = 13;

    if (len < 13) {
        hd->problem = "truncated GIF header";
        return;
    }
    hd->w = le16(p + 6);
    hd->h = le16(p + 8);
    hd->have_size = true;
    if (p[10] & 0x80) {
        hd->gif.palette = pos;
        hd->gif.colours = 2 << (p[10] & 7);
        pos += (size_t)3 * hd->gif.colours;
    }
    for (;;) {
        if (pos >= len)
            break;
        int block = p[pos++];
        if (block == 0x21) { /* extension: label, then sub-blocks */
            /* a graphic control extension: size 4, flags, delay, transparent index */
            if (len - pos >= 6 && p[pos] == 0xF9 && p[pos + 1] == 4) {
                hd->gif.flags = p[pos + 2] & 1 ? pos + 2 : 0;
                hd->gif.fill = p[pos + 2] & 1 ? p[pos + 5] : 0;
            }
            pos++;
            if (!gif_skip_blocks(p, len, &pos))
                break;
        } else if (block == 0x2C) { /* image descriptor, colour table, LZW code size, data */
            if (len - pos < 9)
                break;
            int flags = p[pos + 8];
            hd->gif.x = le16(p + pos);
            hd->gif.y = le16(p + pos + 2);
            hd->gif.w = le16(p + pos + 4);
            hd->gif.h = le16(p + pos + 6);
            pos += 9;
            if (flags & 0x80) {
                hd->gif.palette = pos;
                hd->gif.colours = 2 << (flags & 7);
                pos += (size_t)3 * hd->gif.colours;
            }
            pos++;
            if (!gif_skip_blocks(p, len, &pos))
                break;
            return;
        } else if (block == 0x3B) {
            hd->problem = "corrupt GIF (no image)";
            return;
        } else {
            hd->problem = "corrupt GIF (unknown block)";
            return;
        }
    }
    hd->problem = "truncated GIF";
}

/*
 * Sets a truncation problem when fewer than `need` bytes are there. A static buffer per
 * thread holds the message because it carries numbers.
 */
static void check_length(struct header *hd, const char *what, size_t len, unsigned long long need)
{
    static _Thread_local char msg[96];

    if (need > len) {
        snprintf(msg, sizeof msg, "truncated %s (%zu of %llu bytes)", what, len, need);
        hd->problem = msg;
    }
}

/*
 * Whether a palette BMP's indices all fall inside the palette stb reads. stb looks them up
 * in a table of 256 it fills only that far (and, for OS/2 headers, 4 entries short), so an
 * index past it would read stack memory.
 */
static bool bmp_indices_ok(const uint8_t *p, size_t len, uint32_t off, uint32_t hsz,
                           const struct header *hd, unsigned bpp)
{
    /* stb's palette size, in its int arithmetic */
    long long o = (int32_t)off;
    long long psize = hsz == 12 ? (o - 14 - 24) / 3 : (o - 14 - (long long)hsz) / 4;
    unsigned long long width = ((unsigned long long)hd->w * bpp + 7) / 8;
    unsigned long long stride = (width + 3) / 4 * 4;

    for (long long y = 0; y < hd->h; y++) {
        unsigned long long row = off + (unsigned long long)y * stride;
        for (long long x = 0; x < hd->w; x++) {
            unsigned long long at = row + (unsigned long long)x * bpp / 8;
            if (at >= len)
                return true; /* truncated, and reported as such */
            int shift = (int)(8 - bpp - (unsigned long long)x * bpp % 8);
            if ((p[at] >> shift & ((1 << bpp) - 1)) >= psize)
                return false;
        }
    }
    return true;
}

/* BITMAPFILEHEADER and the info header: the size, and the length of uncompressed pixels. */
static void scan_bmp(const uint8_t *p, size_t len, struct header *hd)
{
    uint32_t off, hsz, bpp, comp;

    if (len < 26) {
        hd->problem = "truncated BMP header";
        return;
    }
    off = le32(p + 10);
    hsz = le32(p + 14);
    if (hsz == 12) {
        hd->w = le16(p + 18);
        hd->h = le16(p + 20);
        bpp = le16(p + 24);
        comp = 0;
    } else {
        if (len < 34) {
            hd->problem = "truncated BMP header";
            return;
        }
        hd->w = (int32_t)le32(p + 18);
        hd->h = (int32_t)le32(p + 22);
        if (hd->h < 0) /* rows top to bottom */
            hd->h = -hd->h;
        bpp = le16(p + 28);
        comp = le32(p + 30);
    }
    hd->have_size = true;
    /* stb reads the compression as an int and takes negative values for none; RLE data
     * have no fixed length (and stb does not read them) */
    bool plain = (int32_t)comp <= 0 || comp == 3;
    if (hd->w > 0 && hd->h > 0 && plain && bpp >= 1 && bpp <= 32 && off >= 14 + hsz) {
        unsigned long long row = ((unsigned long long)hd->w * bpp + 31) / 32 * 4;
        unsigned long long last = ((unsigned long long)hd->w * bpp + 7) / 8;
        check_length(hd, "BMP", len, off + row * (unsigned long long)(hd->h - 1) + last);
    }
    if (hd->w > 0 && hd->h > 0 && (int32_t)comp <= 0 && (bpp == 1 || bpp == 4 || bpp == 8) &&
        !hd->problem && !bmp_indices_ok(p, len, off, hsz, hd, bpp))
        hd->problem = "corrupt BMP (a pixel outside the palette)";
}

/* Reads one PNM header number after whitespace and comments; -1 if there is none. */
static long long pnm_number(const uint8_t *p, size_t len, size_t *pos)
{
    long long v = 0;

    for (;;) {
        while (*pos < len && (p[*pos] == ' ' || (p[*pos] >= '\t' && p[*pos] <= '\r')))
            (*pos)++;
        if (*pos < len && p[*pos] == '#') {
            while (*pos < len && p[*pos] != '\n' && p[*pos] != '\r')
                (*pos)++;
            continue;
        }
        break;
    }
    if (*pos >= len || p[*pos] < '0' || p[*pos] > '9')
        return -1;
    while (*pos < len && p[*pos] >= '0' && p[*pos] <= '9') {
        v = v * 10 + (p[*pos] - '0');
        if (v > INT_MAX)
            return -1; /* stb would overflow an int */
        (*pos)++;
    }
    return v;
}

/* Binary PGM (P5) and PPM (P6): the header, then exactly w * h samples. */
static void scan_pnm(const uint8_t *p, size_t len, struct header *hd)
{
    size_t pos = 2;
    long long w = pnm_number(p, len, &pos);
    long long h = pnm_number(p, len, &pos);
    long long maxv = pnm_number(p, len, &pos);

    if (w < 0 || h < 0 || maxv < 0) {
        hd->problem = pos >= len ? "truncated PNM header" : "corrupt PNM header";
        if (w >= 0 && h >= 0) {
            hd->w = w;
            hd->h = h;
            hd->have_size = true;
        }
        return;
    }
    hd->w = w;
    hd->h = h;
    hd->have_size = true;
    if (maxv == 0 || maxv > 65535) {
        hd->problem = "corrupt PNM header (maximum value not 1 to 65535)";
        return;
    }
    /* one byte of whitespace, then the samples */
    hd->data = pos + 1;
    hd->maxval = (unsigned)maxv;
    check_length(hd, "PNM", len,
                 hd->data + (unsigned long long)w * (unsigned long long)h * (p[1] == '6' ? 3 : 1) *
                                (maxv > 255 ? 2 : 1));
}

/*
 * PGM and PPM are decoded here rather than by stb 2.27, which reads 16-bit samples in the
 * wrong byte order and ignores the maximum value. Samples go to 8 bits as for PNG, the
 * high byte, when the maximum is 65535, and are otherwise scaled by 255 / maxval, rounded
 * (the identity for the usual 255).
 */
static int decode_pnm(const uint8_t *p, const struct header *hd, const char *name,
                      struct jc_image *img)
{
    size_t n = (size_t)hd->w * (size_t)hd->h, ch = p[1] == '6' ? 3 : 1;
    unsigned maxv = hd->maxval;
    const uint8_t *s = p + hd->data;
    uint8_t *rgb = malloc(n * 3);

    if (!rgb)
        return jc_fail(JC_ENOMEM, "cannot decode '%s': out of memory", name);
    for (size_t i = 0; i < n * ch; i++) {
        unsigned v = maxv > 255 ? be16(s + 2 * i) : s[i];
        if (v > maxv)
            v = maxv;
        if (maxv == 65535)
            v >>= 8;
        else if (maxv != 255)
            v = (v * 255 + maxv / 2) / maxv;
        if (ch == 3)
            rgb[i] = (uint8_t)v;
        else
            rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = (uint8_t)v;
    }
    img->w = (int)hd->w;
    img->h = (int)hd->h;
    img->rgb = rgb;
    return 0;
}

/* An uncompressed TGA: header, image id, colour map, then w * h pixels. */
static void scan_tga(const uint8_t *p, size_t len, struct header *hd)
{
    if (len < 18 || (p[2] != 1 && p[2] != 2 && p[2] != 3))
        return; /* stb's own checks */
    unsigned long long need = 18 + (unsigned long long)p[0];
    if (p[1] == 1)
        need += (unsigned long long)le16(p + 5) * ((p[7] + 7u) / 8);
    need += (unsigned long long)le16(p + 12) * le16(p + 14) * ((p[16] + 7u) / 8);
    check_length(hd, "TGA", len, need);
}

static const char *format_name(enum format fmt)
{
    static const char *const names[] = {"image", "PNG", "JPEG", "GIF", "BMP", "PNM", "TGA"};
    return names[fmt];
}

/*
 * Writes a PLTE chunk of 256 entries at out: the `n` bytes of entries at `entries`, then
 * (i, i, i) for each entry i past them. stb keeps the palette in a stack array it fills
 * only as far as the PLTE chunk goes, so an index past it would read stack memory; Pillow's
 * palettes start as that grey ramp. The CRC is left zero: stb does not check it.
 */
static void png_full_palette(uint8_t *out, const uint8_t *entries, size_t n)
{
    memcpy(out, "\0\0\x03\0PLTE", 8);
    memcpy(out + 8, entries, n);
    for (size_t i = n / 3; i < 256; i++)
        memset(out + 8 + 3 * i, (int)i, 3);
    memset(out + 8 + 768, 0, 4);
}

/*
 * Paints the screen around a GIF's first frame as Pillow does: with the transparent index if
 * the frame has one, else index 0, looked up in the frame's colour table (Pillow's palettes
 * start as a grey ramp, hence (i, i, i) past the table's end).
 */
static void gif_fill(const uint8_t *p, const struct header *hd, uint8_t *rgb)
{
    int i = hd->gif.fill;
    uint8_t c[3] = {(uint8_t)i, (uint8_t)i, (uint8_t)i};

    if (hd->gif.palette && i < hd->gif.colours)
        memcpy(c, p + hd->gif.palette + 3 * i, 3);
    for (long long y = 0; y < hd->h; y++) {
        bool row_in = y >= hd->gif.y && y < hd->gif.y + hd->gif.h;
        for (long long x = 0; x < hd->w; x++) {
            if (row_in && x >= hd->gif.x && x < hd->gif.x + hd->gif.w)
                continue;
            memcpy(rgb + 3 * (size_t)(y * hd->w + x), c, 3);
        }
    }
}

/*
 * Sniffs the format and walks the structure into *hd; fails only when no size is found.
 * `verb` says what failed in messages: "decode" or "read".
 */
static int probe(const uint8_t *p, size_t len, const char *name, const char *verb,
                 struct header *hd)
{
    size_t start = 0;
    int w, h, comp;

    memset(hd, 0, sizeof *hd);
    if (len == 0)
        return jc_fail(JC_EFORMAT, "cannot %s '%s': empty file", verb, name);
    if (len > MAX_BYTES)
        return jc_fail(JC_ELIMIT, "cannot %s '%s': %zu bytes is more than %d", verb, name, len,
                       MAX_BYTES);

    hd->fmt = sniff(p, len, &start);
    switch (hd->fmt) {
    case FMT_PNG:
        scan_png(p, len, hd);
        break;
    case FMT_JPEG:
        scan_jpeg(p, len, start, hd);
        break;
    case FMT_GIF:
        scan_gif(p, len, hd);
        break;
    case FMT_BMP:
        scan_bmp(p, len, hd);
        break;
    case FMT_PNM:
        scan_pnm(p, len, hd);
        break;
    default:
        if (!stbi_info_from_memory(p, (int)len, &w, &h, &comp))
            return jc_fail(JC_EFORMAT, "cannot %s '%s': not an image, or an unknown format", verb,
                           name);
        hd->fmt = FMT_TGA;
        hd->w = w;
        hd->h = h;
        hd->have_size = true;
        scan_tga(p, len, hd);
        break;
    }
    if (!hd->have_size)
        return jc_fail(JC_EFORMAT, "cannot %s '%s': %s", verb, name,
                       hd->problem ? hd->problem : "corrupt header");
    if (hd->w <= 0 || hd->h <= 0)
        return jc_fail(JC_EFORMAT, "'%s' has no pixels (%lld x %lld)", name, hd->w, hd->h);
    return 0;
}

/* The header, the limits, and whether the data are whole: 0, or a code (error recorded). */
static int read_header(const uint8_t *p, size_t len, const char *name, size_t max_pixels,
                       struct header *hd)
{
    int rc;

    if ((rc = probe(p, len, name, "decode", hd)) < 0)
        return rc;
    unsigned long long n = (unsigned long long)hd->w * (unsigned long long)hd->h;
    if (n > max_pixels)
        return jc_fail(JC_ELIMIT, "'%s' is %lld x %lld = %llu pixels, more than the limit of %zu",
                       name, hd->w, hd->h, n, max_pixels);
    if (hd->w > STBI_MAX_DIMENSIONS || hd->h > STBI_MAX_DIMENSIONS)
        return jc_fail(JC_ELIMIT, "'%s' is %lld x %lld pixels, more than %d on a side", name, hd->w,
                       hd->h, STBI_MAX_DIMENSIONS);
    if (hd->problem)
        return jc_fail(JC_EFORMAT, "cannot decode '%s': %s", name, hd->problem);
    return 0;
}

int jc_image_decode(const void *buf, size_t len, const char *name, size_t max_pixels,
                    struct jc_image *img)
{
    struct header hd;
    int w, h, comp, rc;
    uint8_t *rgb, *copy = NULL;

    img->w = img->h = 0;
    img->rgb = NULL;
    if ((rc = read_header(buf, len, name, max_pixels, &hd)) < 0)
        return rc;
    if (hd.fmt == FMT_PNM)
        return decode_pnm(buf, &hd, name, img);

    /*
     * Three cases where stb reads a patched copy. Pillow reads a GIF's transparent pixels
     * as the colour of their palette entry, so the first frame's transparency flag is
     * cleared (stb leaves them black). A PNG palette gets all 256 entries (png_full_palette).
     * libjpeg decodes baseline JPEGs without Huffman tables, as Motion-JPEG frames are, with
     * the standard tables of the JPEG spec (K.3); they go in after SOI, where the file's own
     * tables override them as they do in libjpeg.
     */
    if (hd.fmt == FMT_GIF && hd.gif.flags) {
        if (!(copy = jc_malloc(len, "a GIF")))
            return JC_ENOMEM;
        memcpy(copy, buf, len);
        copy[hd.gif.flags] &= 0xFE;
    } else if (hd.fmt == FMT_PNG && hd.plte) {
        size_t rest = hd.plte + 12 + hd.plte_len;
        if (!(copy = jc_malloc(len + 768, "a PNG")))
            return JC_ENOMEM;
        memcpy(copy, buf, hd.plte);
        png_full_palette(copy + hd.plte, (const uint8_t *)buf + hd.plte + 8, hd.plte_len);
        memcpy(copy + hd.plte + 12 + 768, (const uint8_t *)buf + rest, len - rest);
        len = hd.plte + 12 + 768 + (len - rest);
    } else if (hd.fmt == FMT_JPEG && hd.std_tables) {
        if (!(copy = jc_malloc(len + sizeof JPEG_STD_DHT, "a JPEG")))
            return JC_ENOMEM;
        memcpy(copy, buf, hd.soi);
        memcpy(copy + hd.soi, JPEG_STD_DHT, sizeof JPEG_STD_DHT);
        memcpy(copy + hd.soi + sizeof JPEG_STD_DHT, (const uint8_t *)buf + hd.soi, len - hd.soi);
        len += sizeof JPEG_STD_DHT;
    }
    /* stb converts to 3 channels as Pillow's convert('RGB') does, 16-bit to the high byte */
    rgb = stbi_load_from_memory(copy ? copy : buf, (int)len, &w, &h, &comp, 3);
    free(copy);
    if (!rgb) {
        const char *why = stbi_failure_reason();
        char msg[128];

        if (!why)
            why = "corrupt data";
        if (!strcmp(why, "Out of memory"))
            return jc_fail(JC_ENOMEM, "cannot decode '%s': out of memory", name);
        /* stb's messages are capitalised: "Corrupt JPEG" */
        snprintf(msg, sizeof msg, "%s", why);
        if (msg[0] >= 'A' && msg[0] <= 'Z' && msg[1] >= 'a' && msg[1] <= 'z')
            msg[0] = (char)(msg[0] - 'A' + 'a');
        return jc_fail(JC_EFORMAT, "cannot decode '%s': %s", name, msg);
    }
    if (w != hd.w || h != hd.h) {
        /* stb and the header disagree; the limit was checked on the header's size */
        free(rgb);
        return jc_fail(JC_EFORMAT,
                       "cannot decode '%s': corrupt %s (%d x %d, header says %lld x %lld)", name,
                       format_name(hd.fmt), w, h, hd.w, hd.h);
    }
    if (hd.fmt == FMT_GIF)
        gif_fill(buf, &hd, rgb);
    img->w = w;
    img->h = h;
    img->rgb = rgb;
    return 0;
}

int jc_image_load(const char *path, size_t max_pixels, struct jc_image *img)
{
    struct stat st;
    char *buf;
    size_t len;
    int rc;

    img->w = img->h = 0;
    img->rgb = NULL;
    /* fopen succeeds on a directory, and reading it fails with a less clear message */
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return jc_fail(JC_EIO, "cannot read '%s': is a directory", path);
    if ((rc = jc_read_file(path, MAX_BYTES, &buf, &len)) < 0)
        return rc;
    rc = jc_image_decode(buf, len, path, max_pixels, img);
    free(buf);
    return rc;
}

void jc_image_release(struct jc_image *img)
{
    if (!img)
        return;
    free(img->rgb);
    img->rgb = NULL;
    img->w = img->h = 0;
}

/* The same header reading as jc_image_decode, without the limits or the check for truncation. */
int jc_image_size(const char *path, int *w, int *h)
{
    struct header hd;
    struct stat st;
    char *buf;
    size_t len;
    int rc;

    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return jc_fail(JC_EIO, "cannot read '%s': is a directory", path);
    if ((rc = jc_read_file(path, MAX_BYTES, &buf, &len)) < 0)
        return rc;
    rc = probe((const uint8_t *)buf, len, path, "read", &hd);
    free(buf);
    if (rc < 0)
        return rc;
    if (hd.w > INT_MAX || hd.h > INT_MAX)
        return jc_fail(JC_ELIMIT, "'%s' is %lld x %lld pixels, too large", path, hd.w, hd.h);
    *w = (int)hd.w;
    *h = (int)hd.h;
    return 0;
}
