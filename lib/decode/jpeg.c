/*
 * JPEG through libjpeg-turbo, the library Pillow 9.4 links, with Pillow's settings (the
 * library's defaults: islow IDCT, fancy upsampling, its YCbCr tables), so the pixels equal
 * Pillow's by construction.
 *
 * libjpeg recovers from damaged data with a warning and goes on: a truncated file gets a
 * fake end-of-image marker and a grey or smeared bottom. Those warnings are errors here, so
 * a damaged photo is reported and never embedded as something else.
 */
#include "decode.h"

#include <limits.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jerror.h>
#include <jpeglib.h>

/* A progressive file may hold any number of scans, each a pass over the whole image; a
 * few hundred bytes can ask for millions. Real encoders write about ten. */
#define MAX_SCANS 1000

struct jerr {
    struct jpeg_error_mgr pub;
    jmp_buf jmp;
    char msg[JMSG_LENGTH_MAX];
    bool truncated;
};

static void on_error(j_common_ptr c)
{
    struct jerr *e = (struct jerr *)c->err;
    (*c->err->format_message)(c, e->msg);
    longjmp(e->jmp, 1);
}

static void on_message(j_common_ptr c, int level)
{
    struct jerr *e = (struct jerr *)c->err;
    int code = c->err->msg_code;

    if (level >= 0) /* trace messages */
        return;
    /* warnings about metadata only: the pixels are unaffected */
    if (code == JWRN_JFIF_MAJOR || code == JWRN_ADOBE_XFORM || code == JWRN_BOGUS_ICC)
        return;
    e->truncated = code == JWRN_JPEG_EOF;
    on_error(c);
}

static void on_progress(j_common_ptr c)
{
    j_decompress_ptr d = (j_decompress_ptr)c;
    if (d->input_scan_number > MAX_SCANS) {
        c->err->msg_code = 0;
        snprintf(((struct jerr *)c->err)->msg, JMSG_LENGTH_MAX, "more than %d scans", MAX_SCANS);
        longjmp(((struct jerr *)c->err)->jmp, 1);
    }
}

static bool sniff(const uint8_t *p, size_t len)
{
    return len >= 2 && p[0] == 0xFF && p[1] == 0xD8;
}

/* The recorded error for a libjpeg failure: "truncated JPEG" or "corrupt JPEG (why)". */
static int fail(const struct jc_decode *d, struct jerr *e)
{
    const char *why = e->msg;

    if (e->truncated)
        return jc_fail(JC_EFORMAT, "cannot %s '%s': truncated JPEG (premature end of data)",
                       d->verb, d->name);
    if (!strcmp(why, "Insufficient memory") || !strncmp(why, "Insufficient memory ", 20))
        return jc_fail(JC_ENOMEM, "cannot %s '%s': out of memory", d->verb, d->name);
    if (!strncmp(why, "Corrupt JPEG data: ", 19))
        why += 19;
    return jc_fail(JC_EFORMAT, "cannot %s '%s': corrupt JPEG (%c%s)", d->verb, d->name,
                   why[0] >= 'A' && why[0] <= 'Z' && why[1] >= 'a' && why[1] <= 'z'
                       ? why[0] - 'A' + 'a'
                       : why[0],
                   why[0] ? why + 1 : "");
}

/* jpeg_read_header with our error handling; the caller has set the longjmp target. */
static void start(struct jpeg_decompress_struct *ci, struct jerr *e, struct jpeg_progress_mgr *prog,
                  const struct jc_decode *d)
{
    ci->err = jpeg_std_error(&e->pub);
    e->pub.error_exit = on_error;
    e->pub.emit_message = on_message;
    jpeg_create_decompress(ci);
    prog->progress_monitor = on_progress;
    ci->progress = prog;
    jpeg_mem_src(ci, d->p, (unsigned long)d->len);
    if (d->exif)
        jpeg_save_markers(ci, JPEG_APP0 + 1, 0xFFFF);
    jpeg_read_header(ci, TRUE);
}

static int size(struct jc_decode *d, long long *w, long long *h)
{
    struct jpeg_decompress_struct ci;
    struct jpeg_progress_mgr prog;
    struct jerr e = {0};
    volatile int rc = 0;

    if (setjmp(e.jmp)) {
        rc = fail(d, &e);
        goto out_destroy;
    }
    start(&ci, &e, &prog, d);
    *w = ci.image_width;
    *h = ci.image_height;
out_destroy:
    jpeg_destroy_decompress(&ci);
    return rc;
}

/* The first APP1 segment that holds EXIF data, as Pillow takes it. */
static void read_orientation(struct jc_decode *d, const struct jpeg_decompress_struct *ci)
{
    for (jpeg_saved_marker_ptr m = ci->marker_list; m; m = m->next)
        if (m->marker == JPEG_APP0 + 1 && m->data_length >= 6 && !memcmp(m->data, "Exif\0", 5)) {
            d->orientation = jc_exif_orientation(d, m->data, m->data_length);
            return;
        }
}

/*
 * Pillow reads every CMYK or YCCK JPEG with Adobe's inverted polarity ("CMYK;I") and turns
 * CMYK to RGB as 255 - k - c * (255 - k) / 255, with its rounded MULDIV255.
 */
static void cmyk_to_rgb(uint8_t *out, const uint8_t *in, size_t w)
{
    for (size_t x = 0; x < w; x++, in += 4, out += 3) {
        int nk = in[3]; /* 255 - (255 - k) */
        for (int c = 0; c < 3; c++) {
            int t = (255 - in[c]) * nk + 128;
            int v = nk - (((t >> 8) + t) >> 8);
            out[c] = (uint8_t)(v < 0 ? 0 : v);
        }
    }
}

/*
 * Rows straight into the resizer, one at a time: the full-size image is never stored. A
 * libjpeg error longjmps out of here to decode's handler, which releases what this holds
 * through d->sink and the row buffer it is given.
 */
static int stream(struct jc_decode *d, struct jpeg_decompress_struct *ci, bool cmyk)
{
    size_t w = ci->output_width, h = ci->output_height;
    int rc;

    rc = d->geom.w ? jc_resizer_init_geom(d->sink, (int)w, (int)h, d->size, &d->geom)
                   : jc_resizer_init(d->sink, (int)w, (int)h, d->size);
    if (rc < 0)
        return rc;
    if (!(d->row = jc_malloc(w * 3 + (cmyk ? w * 4 : 0), "a JPEG row")))
        return JC_ENOMEM;
    uint8_t *rgb = d->row, *raw = cmyk ? d->row + w * 3 : d->row;
    while (ci->output_scanline < h) {
        int y = (int)ci->output_scanline;
        jpeg_read_scanlines(ci, &raw, 1);
        if (cmyk)
            cmyk_to_rgb(rgb, raw, w);
        jc_resizer_row(d->sink, y, rgb);
    }
    jpeg_finish_decompress(ci);
    return 0;
}

static int decode(struct jc_decode *d, struct jc_image *img)
{
    struct jpeg_decompress_struct ci;
    struct jpeg_progress_mgr prog;
    struct jerr e = {0};
    uint8_t *volatile rgb = NULL, *volatile row = NULL;
    volatile int rc = 0;

    if (setjmp(e.jmp)) {
        rc = fail(d, &e);
        goto out_free;
    }
    start(&ci, &e, &prog, d);
    if ((rc = jc_decode_limits(d, ci.image_width, ci.image_height)) < 0)
        goto out_free;
    if (d->exif)
        read_orientation(d, &ci);

    bool cmyk = ci.jpeg_color_space == JCS_CMYK || ci.jpeg_color_space == JCS_YCCK;
    ci.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
    if (d->draft > 0) {
        /* the smallest of libjpeg's M/8 scales that keeps the short side at least d->draft */
        unsigned short_side = ci.image_width < ci.image_height ? ci.image_width : ci.image_height;
        unsigned m = 1;
        while (m < 8 && ((unsigned long long)short_side * m + 7) / 8 < (unsigned)d->draft)
            m++;
        ci.scale_num = m;
        ci.scale_denom = 8;
        if (m < 8)
            d->geom = (struct jc_draft_geom){(int)ci.image_width, (int)ci.image_height,
                                             (float)ci.image_width * (float)m / 8.0f,
                                             (float)ci.image_height * (float)m / 8.0f};
    }
    jpeg_start_decompress(&ci);

    size_t w = ci.output_width, h = ci.output_height;
    if (d->sink && d->orientation == 1) {
        rc = stream(d, &ci, cmyk);
        goto out_free;
    }
    if (!(rgb = jc_malloc(w * h * 3, "a JPEG's pixels")) ||
        (cmyk && !(row = jc_malloc(w * 4, "a JPEG row")))) {
        rc = JC_ENOMEM;
        goto out_free;
    }
    /* the memory source never suspends: every call gives at least one row */
    while (ci.output_scanline < h) {
        size_t y = ci.output_scanline;
        JSAMPROW dst = cmyk ? row : rgb + y * w * 3;
        jpeg_read_scanlines(&ci, &dst, 1);
        if (cmyk)
            cmyk_to_rgb(rgb + y * w * 3, row, w);
    }
    /* reads on to the end-of-image marker: a file cut after its last row is still cut */
    jpeg_finish_decompress(&ci);
    img->w = (int)w;
    img->h = (int)h;
    img->rgb = rgb;
    rgb = NULL;
out_free:
    free(row);
    free(rgb);
    free(d->row);
    d->row = NULL;
    jpeg_destroy_decompress(&ci);
    return rc;
}

const struct jc_decoder jc_decoder_jpeg = {"JPEG", sniff, size, decode};
