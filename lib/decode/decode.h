/*
 * The image decoders: one file per format or library, behind this interface. lib/image.c
 * sniffs the data, asks the decoder that claims it for the size in the header (so the pixel
 * limit is checked before any pixel is allocated), then for the pixels as 8-bit RGB, as
 * Pillow 9.4's Image.open(...).convert('RGB') gives them.
 *
 *   jpeg.c  JPEG through libjpeg-turbo, the library Pillow links: exact by construction
 *   webp.c  WebP through libwebp's animation decoder, as Pillow calls it
 *   heif.c  HEIC and AVIF through libheif
 *   stb.c   PNG, GIF, BMP and TGA through stb_image, behind a walk of the file's structure
 *   pnm.c   binary PGM and PPM, decoded here
 */
#ifndef JCLIP_DECODE_H
#define JCLIP_DECODE_H

#include "internal.h"
#include "preprocess.h"

#include <stdbool.h>
#include <stdint.h>

/* stb counts bytes in an int; the margin leaves room for a patched copy (stb.c) */
#define JC_DECODE_MAX_BYTES (INT_MAX - 4096)

struct jc_decode {
    const uint8_t *p;
    size_t len;
    const char *name; /* for messages */
    const char *verb; /* "decode", or "read" when only the size is wanted */
    size_t max_pixels;
    int draft; /* JPEG: smallest short side a DCT-scaled decode may give; 0 = full size */
    struct jc_draft_geom geom; /* out: when the decoder drafted, the full size; else w 0 */
    bool exif;                 /* read the EXIF orientation */
    int orientation;     /* out: the EXIF Orientation tag, 1 to 8 (1 when not asked or absent) */
    const char *warning; /* out: a static string when metadata were unreadable, or NULL */
    /*
     * When set, a decoder that can stream (JPEG, when no orientation is to be applied)
     * initialises it for `size` with the decoded size and hands it rows instead of returning
     * an image: img->rgb stays NULL. The caller releases it.
     */
    struct jc_resizer *sink;
    int size;
    uint8_t *row; /* a decoder's row buffer while it streams */
};

struct jc_decoder {
    const char *format; /* "JPEG", "PNG", ... */
    /* Whether the data start with this format's signature. */
    bool (*sniff)(const uint8_t *p, size_t len);
    /* The size the header gives: 0, or a JC_E* code with the message recorded. */
    int (*size)(struct jc_decode *d, long long *w, long long *h);
    /*
     * The pixels, after checking the header's size with jc_decode_limits. 0, or a JC_E* code
     * with the message recorded; img->rgb is malloc'd.
     */
    int (*decode)(struct jc_decode *d, struct jc_image *img);
};

extern const struct jc_decoder jc_decoder_jpeg, jc_decoder_webp, jc_decoder_heif, jc_decoder_stb,
    jc_decoder_pnm;

/* Refuses a size with no pixels or over d->max_pixels: 0, or a code with the message set. */
int jc_decode_limits(const struct jc_decode *d, long long w, long long h);

/*
 * The Orientation tag of an EXIF block (TIFF data, with or without the "Exif\0\0" prefix
 * of a JPEG APP1 segment): 1 to 8. An absent tag is 1; an unreadable block is 1 with
 * d->warning set.
 */
int jc_exif_orientation(struct jc_decode *d, const uint8_t *exif, size_t len);

#endif
