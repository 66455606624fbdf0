/*
 * Image files to 8-bit RGB, as Pillow 9.4's Image.open(...).convert('RGB') gives them: the
 * format from the data's signature (never the file name), one decoder per format in
 * lib/decode/, the pixel limit checked on the header's size before any pixel is allocated,
 * and, when asked, the EXIF orientation applied as ImageOps.exif_transpose applies it.
 */
#include "decode/decode.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* In the order they are tried; stb's comes last, since TGA has no signature to sniff. */
static const struct jc_decoder *const decoders[] = {
    &jc_decoder_jpeg, &jc_decoder_webp, &jc_decoder_heif, &jc_decoder_pnm, &jc_decoder_stb,
};

int jc_decode_limits(const struct jc_decode *d, long long w, long long h)
{
    if (w <= 0 || h <= 0)
        return jc_fail(JC_EFORMAT, "'%s' has no pixels (%lld x %lld)", d->name, w, h);
    unsigned long long n = (unsigned long long)w * (unsigned long long)h;
    if (n > d->max_pixels)
        return jc_fail(JC_ELIMIT, "'%s' is %lld x %lld = %llu pixels, more than the limit of %zu",
                       d->name, w, h, n, d->max_pixels);
    if (w > INT_MAX || h > INT_MAX)
        return jc_fail(JC_ELIMIT, "'%s' is %lld x %lld pixels, too large", d->name, w, h);
    return 0;
}

/* The decoder whose signature the data carry: 0, or a code (recorded) when none does. */
static int find(const struct jc_decode *d, const struct jc_decoder **dec)
{
    if (d->len == 0)
        return jc_fail(JC_EFORMAT, "cannot %s '%s': empty file", d->verb, d->name);
    if (d->len > JC_DECODE_MAX_BYTES)
        return jc_fail(JC_ELIMIT, "cannot %s '%s': %zu bytes is more than %d", d->verb, d->name,
                       d->len, JC_DECODE_MAX_BYTES);
    for (size_t i = 0; i < sizeof decoders / sizeof *decoders; i++)
        if (decoders[i]->sniff(d->p, d->len)) {
            *dec = decoders[i];
            return 0;
        }
    return jc_fail(JC_EFORMAT, "cannot %s '%s': not an image, or an unknown format", d->verb,
                   d->name);
}

/*
 * Pillow's exif_transpose. For each Orientation value, where output pixel (x, y) comes from:
 * sx from y rather than x when the transpose swaps the axes, and each counted from the far
 * edge when it is mirrored. 2: FLIP_LEFT_RIGHT, 3: ROTATE_180, 4: FLIP_TOP_BOTTOM,
 * 5: TRANSPOSE, 6: ROTATE_270, 7: TRANSVERSE, 8: ROTATE_90.
 */
static int orient(struct jc_image *img, int orientation)
{
    static const struct {
        bool swap, mirror_x, mirror_y;
    } maps[9] = {
        [2] = {false, true, false}, [3] = {false, true, true}, [4] = {false, false, true},
        [5] = {true, false, false}, [6] = {true, false, true}, [7] = {true, true, true},
        [8] = {true, true, false},
    };
    int w = img->w, h = img->h;
    uint8_t *out;

    if (orientation <= 1 || orientation > 8)
        return 0;
    bool swap = maps[orientation].swap, mx = maps[orientation].mirror_x,
         my = maps[orientation].mirror_y;
    int ow = swap ? h : w, oh = swap ? w : h;
    if (!(out = jc_malloc((size_t)w * (size_t)h * 3, "a rotated image")))
        return JC_ENOMEM;
    for (int y = 0; y < oh; y++)
        for (int x = 0; x < ow; x++) {
            int a = swap ? y : x, b = swap ? x : y;
            int sx = mx ? w - 1 - a : a, sy = my ? h - 1 - b : b;
            memcpy(out + ((size_t)y * ow + x) * 3, img->rgb + ((size_t)sy * w + sx) * 3, 3);
        }
    free(img->rgb);
    img->rgb = out;
    img->w = ow;
    img->h = oh;
    return 0;
}

/* A decode of buf with the options (NULL: the defaults). */
static struct jc_decode request(const void *buf, size_t len, const char *name,
                                const struct jc_image_opts *o)
{
    return (struct jc_decode){
        .p = buf,
        .len = len,
        .name = name,
        .verb = "decode",
        .max_pixels = o && o->max_pixels ? o->max_pixels : JC_DEFAULT_MAX_PIXELS,
        .draft = o ? o->draft : 0,
        .exif = o && o->exif_rotate,
        .orientation = 1,
    };
}

int jc_image_decode(const void *buf, size_t len, const char *name, const struct jc_image_opts *o,
                    struct jc_image *img)
{
    struct jc_decode d = request(buf, len, name, o);
    const struct jc_decoder *dec;
    int rc;

    memset(img, 0, sizeof *img);
    if ((rc = find(&d, &dec)) < 0)
        return rc;
    if ((rc = dec->decode(&d, img)) < 0) {
        memset(img, 0, sizeof *img);
        return rc;
    }
    img->warning = d.warning;
    if ((rc = orient(img, d.orientation)) < 0)
        jc_image_release(img);
    return rc;
}

int jc_image_decode_pixels(const void *buf, size_t len, const char *name,
                           const struct jc_image_opts *o, int size, const float mean[3],
                           const float std[3], float *out, const char **warning)
{
    struct jc_resizer rz = {0};
    struct jc_image img = {0};
    struct jc_decode d = request(buf, len, name, o);
    const struct jc_decoder *dec;
    uint8_t *crop = NULL;
    int rc;

    *warning = NULL;
    d.sink = &rz;
    d.size = size;
    if ((rc = find(&d, &dec)) < 0 || (rc = dec->decode(&d, &img)) < 0)
        goto out_release;
    *warning = d.warning;
    if (img.rgb) { /* not streamed */
        if ((rc = orient(&img, d.orientation)) < 0)
            goto out_release;
        struct jc_draft_geom g = d.geom;
        if (g.w && d.orientation >= 5) /* turned a quarter: the full size turns too */
            g = (struct jc_draft_geom){g.h, g.w, g.box_h, g.box_w};
        rc = jc_preprocess_geom(&img, size, &g, mean, std, out);
        goto out_release;
    }
    if (!(crop = jc_malloc((size_t)size * (size_t)size * 3, "the cropped image"))) {
        rc = JC_ENOMEM;
        goto out_release;
    }
    if ((rc = jc_resizer_finish(&rz, crop)) == 0)
        jc_normalize(crop, size, mean, std, out);
    free(crop);
out_release:
    jc_resizer_release(&rz);
    jc_image_release(&img);
    return rc;
}

/* Room for a data URI's name: its head, cut to 100 characters, and "...". */
#define HEAD_CAP 112

/*
 * The bytes of an image source, for the decoders: a file (a directory is named as such), a
 * URL fetched, or a data URI decoded. *name is what to call it in messages: the path or URL
 * itself, or for a data URI its head followed by "...", written in head[HEAD_CAP].
 */
static int read_source(const char *src, const struct jc_image_opts *o, char **buf, size_t *len,
                       char head[HEAD_CAP], const char **name)
{
    struct stat st;

    *name = src;
    if (jc_is_url(src))
        return jc_fetch(src, o ? &o->fetch : NULL, buf, len);
    if (jc_is_data_uri(src)) {
        size_t n = strlen(src), head_len = 0;
        uint8_t *data;
        char what[160];
        snprintf(what, sizeof what, "'%.100s%s'", src, n > 100 ? "..." : "");
        int rc = jc_data_uri(src, n, what, &data, len, &head_len);
        if (rc < 0)
            return rc;
        snprintf(head, HEAD_CAP, "%.*s...", (int)(head_len < 100 ? head_len : 100), src);
        *name = head;
        *buf = (char *)data;
        return 0;
    }
    /* fopen succeeds on a directory, and reading it fails with a less clear message */
    if (stat(src, &st) == 0 && S_ISDIR(st.st_mode))
        return jc_fail(JC_EIO, "cannot read '%s': is a directory", src);
    return jc_read_file(src, JC_DECODE_MAX_BYTES, buf, len);
}

int jc_image_load_pixels(const char *path, const struct jc_image_opts *o, int size,
                         const float mean[3], const float std[3], float *out, const char **warning)
{
    char *buf, head[HEAD_CAP];
    const char *name;
    size_t len;
    int rc;

    *warning = NULL;
    if ((rc = read_source(path, o, &buf, &len, head, &name)) < 0)
        return rc;
    rc = jc_image_decode_pixels(buf, len, name, o, size, mean, std, out, warning);
    free(buf);
    return rc;
}

int jc_image_load(const char *path, const struct jc_image_opts *o, struct jc_image *img)
{
    char *buf, head[HEAD_CAP];
    const char *name;
    size_t len;
    int rc;

    memset(img, 0, sizeof *img);
    if ((rc = read_source(path, o, &buf, &len, head, &name)) < 0)
        return rc;
    rc = jc_image_decode(buf, len, name, o, img);
    free(buf);
    return rc;
}

void jc_image_release(struct jc_image *img)
{
    if (!img)
        return;
    free(img->rgb);
    memset(img, 0, sizeof *img);
}

/* The size in the header alone: no pixels decoded, no limit, no check for truncation. */
int jc_image_size_mem(const void *buf, size_t len, const char *name, int *w, int *h)
{
    long long lw = 0, lh = 0;
    int rc;

    struct jc_decode d = {.p = buf, .len = len, .name = name, .verb = "read"};
    const struct jc_decoder *dec;
    if ((rc = find(&d, &dec)) < 0 || (rc = dec->size(&d, &lw, &lh)) < 0)
        return rc;
    if (lw <= 0 || lh <= 0)
        return jc_fail(JC_EFORMAT, "'%s' has no pixels (%lld x %lld)", name, lw, lh);
    if (lw > INT_MAX || lh > INT_MAX)
        return jc_fail(JC_ELIMIT, "'%s' is %lld x %lld pixels, too large", name, lw, lh);
    *w = (int)lw;
    *h = (int)lh;
    return 0;
}

int jc_image_size(const char *path, int *w, int *h)
{
    char *buf, head[HEAD_CAP];
    const char *name;
    size_t len;
    int rc;

    if ((rc = read_source(path, NULL, &buf, &len, head, &name)) < 0)
        return rc;
    rc = jc_image_size_mem(buf, len, name, w, h);
    free(buf);
    return rc;
}
