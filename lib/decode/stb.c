/*
 * PNG, GIF, BMP and TGA through stb_image (Debian's 2.27), to the RGB bytes Pillow 9.4 gives.
 *
 * PNG stays on stb by measurement: on a 4032 x 3024 photo libspng and libpng decode in 280 ms
 * against stb's 380-440 ms (zlib's inflate against stb's), and alike (3-5 ms) at a megapixel
 * or less, the sizes PNG inputs mostly have; and stb's path already gives Pillow's pixels in
 * the corner cases (palette indices past the PLTE chunk, 16-bit samples, transparency), which
 * libpng's expansions give differently (black for a missing palette entry).
 *
 * stb trusts its input more than we can. At the end of the data it reads zeros, so a
 * truncated GIF or BMP decodes "successfully" with a black bottom; it leaves the missing
 * pixels of uncompressed TGA files uninitialised. So before stb sees the data we read the
 * header ourselves (the size, to refuse decompression bombs before any allocation) and walk
 * the file's structure far enough to know it is whole and consistent: a PNG up to its IEND
 * chunk, a GIF to the end of its first frame, and the pixel array of BMP and TGA files by its
 * length. A GIF's transparent and uncovered pixels are painted as Pillow paints them
 * (gif_fill).
 */
#include "decode.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define STB_IMAGE_IMPLEMENTATION
/* stb's API private to this file, so what jclip never calls (the stdio and 16-bit loaders,
 * zlib, the flip and iPhone settings) is dropped by the compiler instead of linked */
#define STB_IMAGE_STATIC
#define STBI_NO_STDIO
#define STBI_FAILURE_USERMSG
/* Only formats Pillow reads as well, and fewer parsers for hostile input to reach: JPEG
 * and PNM have decoders of their own (jpeg.c, pnm.c). */
#define STBI_NO_JPEG
#define STBI_NO_PNM
#define STBI_NO_PSD
#define STBI_NO_PIC
#define STBI_NO_HDR
#define STBI_NO_LINEAR

/*
 * All of stb's memory starts zeroed. stb 2.27 reads memory it never wrote on some corrupt
 * inputs (a deflate distance code of 30 or 31 copies from the output's own unwritten end);
 * zeroed memory makes those reads
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
/* stb 2.27 declares stbi_set_unpremultiply_on_load_thread and never defines it, which
 * STB_IMAGE_STATIC turns into a warning at the end of the file */
#pragma GCC diagnostic ignored "-Wunused-function"
#endif

enum format { FMT_UNKNOWN, FMT_PNG, FMT_GIF, FMT_BMP, FMT_TGA };

/* What the header and the structure walk found. */
struct header {
    enum format fmt;
    bool have_size;
    long long w, h;
    const char *problem;   /* why the data cannot be decoded; NULL if none was found */
    size_t plte, plte_len; /* PNG: offset of a short PLTE chunk of a palette image, its length */
    struct {
        size_t flags;         /* offset of the transparency flag of the first frame, or 0 */
        int fill;             /* palette index around the first frame */
        size_t palette;       /* offset of the first frame's colour table, or 0 */
        int colours;          /* its entries */
        long long x, y, w, h; /* the first frame on the screen */
    } gif;
};

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
    static const char *const names[] = {"image", "PNG", "GIF", "BMP", "TGA"};
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

/* The format by its signature; TGA has none, and is what stb's guess from the header says. */
static enum format sniff_format(const uint8_t *p, size_t len)
{
    int w, h, comp;

    if (len >= 8 && !memcmp(p, "\x89PNG\r\n\x1a\n", 8))
        return FMT_PNG;
    if (len >= 6 && (!memcmp(p, "GIF87a", 6) || !memcmp(p, "GIF89a", 6)))
        return FMT_GIF;
    if (len >= 2 && p[0] == 'B' && p[1] == 'M')
        return FMT_BMP;
    if (len <= JC_DECODE_MAX_BYTES && stbi_info_from_memory(p, (int)len, &w, &h, &comp))
        return FMT_TGA;
    return FMT_UNKNOWN;
}

static bool sniff(const uint8_t *p, size_t len)
{
    return sniff_format(p, len) != FMT_UNKNOWN;
}

/* Walks the structure into *hd; fails only when no size is found. */
static int probe(const struct jc_decode *d, struct header *hd)
{
    int w, h, comp;

    memset(hd, 0, sizeof *hd);
    hd->fmt = sniff_format(d->p, d->len);
    switch (hd->fmt) {
    case FMT_PNG:
        scan_png(d->p, d->len, hd);
        break;
    case FMT_GIF:
        scan_gif(d->p, d->len, hd);
        break;
    case FMT_BMP:
        scan_bmp(d->p, d->len, hd);
        break;
    case FMT_TGA:
        stbi_info_from_memory(d->p, (int)d->len, &w, &h, &comp);
        hd->w = w;
        hd->h = h;
        hd->have_size = true;
        scan_tga(d->p, d->len, hd);
        break;
    default:
        return jc_fail(JC_EFORMAT, "cannot %s '%s': not an image, or an unknown format", d->verb,
                       d->name);
    }
    if (!hd->have_size)
        return jc_fail(JC_EFORMAT, "cannot %s '%s': %s", d->verb, d->name,
                       hd->problem ? hd->problem : "corrupt header");
    return 0;
}

static int size(struct jc_decode *d, long long *w, long long *h)
{
    struct header hd;
    int rc = probe(d, &hd);

    *w = hd.w;
    *h = hd.h;
    return rc;
}

static int decode(struct jc_decode *d, struct jc_image *img)
{
    const uint8_t *buf = d->p;
    size_t len = d->len;
    struct header hd;
    int w, h, comp, rc;
    uint8_t *rgb, *copy = NULL;

    if ((rc = probe(d, &hd)) < 0 || (rc = jc_decode_limits(d, hd.w, hd.h)) < 0)
        return rc;
    if (hd.w > STBI_MAX_DIMENSIONS || hd.h > STBI_MAX_DIMENSIONS)
        return jc_fail(JC_ELIMIT, "'%s' is %lld x %lld pixels, more than %d on a side", d->name,
                       hd.w, hd.h, STBI_MAX_DIMENSIONS);
    if (hd.problem)
        return jc_fail(JC_EFORMAT, "cannot decode '%s': %s", d->name, hd.problem);

    /*
     * Two cases where stb reads a patched copy. Pillow reads a GIF's transparent pixels as
     * the colour of their palette entry, so the first frame's transparency flag is cleared
     * (stb leaves them black). A PNG palette gets all 256 entries (png_full_palette).
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
        png_full_palette(copy + hd.plte, buf + hd.plte + 8, hd.plte_len);
        memcpy(copy + hd.plte + 12 + 768, buf + rest, len - rest);
        len = hd.plte + 12 + 768 + (len - rest);
    }
    /* stb converts to 3 channels as Pillow's convert('RGB') does, 16-bit to the high byte.
     * Its reason is cleared first: a failed allocation inside its inflate returns with none
     * (and would leave an earlier image's reason). */
    stbi__g_failure_reason = NULL;
    rgb = stbi_load_from_memory(copy ? copy : buf, (int)len, &w, &h, &comp, 3);
    free(copy);
    if (!rgb) {
        const char *why = stbi_failure_reason();
        char msg[128];

        if (!why || !strcmp(why, "Out of memory"))
            return jc_fail(JC_ENOMEM, "cannot decode '%s': out of memory", d->name);
        /* stb's messages are capitalised: "Corrupt PNG" */
        snprintf(msg, sizeof msg, "%s", why);
        if (msg[0] >= 'A' && msg[0] <= 'Z' && msg[1] >= 'a' && msg[1] <= 'z')
            msg[0] = (char)(msg[0] - 'A' + 'a');
        return jc_fail(JC_EFORMAT, "cannot decode '%s': %s", d->name, msg);
    }
    if (w != hd.w || h != hd.h) {
        /* stb and the header disagree; the limit was checked on the header's size */
        free(rgb);
        return jc_fail(JC_EFORMAT,
                       "cannot decode '%s': corrupt %s (%d x %d, header says %lld x %lld)", d->name,
                       format_name(hd.fmt), w, h, hd.w, hd.h);
    }
    if (hd.fmt == FMT_GIF)
        gif_fill(buf, &hd, rgb);
    img->w = w;
    img->h = h;
    img->rgb = rgb;
    return 0;
}

const struct jc_decoder jc_decoder_stb = {"image", sniff, size, decode};
