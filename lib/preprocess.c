/*
 * Resize, centre crop and normalisation of an RGB image, bit-exact with torchvision 0.14's
 * Resize(size, BICUBIC) + CenterCrop(size) + ToTensor + Normalize on Pillow 9.4.
 *
 * Pillow resamples in 8-bit fixed point: weights from precompute_coeffs() quantised to 22
 * fractional bits, a horizontal pass into an 8-bit image, then a vertical pass, each
 * rounding and clamping to 0..255. Every output pixel depends only on its own weights, so
 * computing just the pixels the crop keeps gives the same bytes as resizing the whole image
 * and cropping afterwards, at a fraction of the cost for long strips (3000x20 resizes to
 * 33600x224 of which 224x224 are kept).
 */
#include "preprocess.h"

#include "internal.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Largest output side accepted; keeps size * size * 3 far from overflow. */
#define MAX_SIZE 16384

/* Pillow's bicubic_filter with its `#define a -0.5`. */
static double bicubic(double x)
{
    if (x < 0.0)
        x = -x;
    if (x < 1.0)
        return ((-0.5 + 2.0) * x - (-0.5 + 3.0)) * x * x + 1;
    if (x < 2.0)
        return (((x - 5) * x + 8) * x - 4) * -0.5;
    return 0.0;
}

int jc_resample_coeffs_init(struct jc_resample_coeffs *c, int in_size, int64_t out_size,
                            int64_t first, int n)
{
    double scale, filterscale, support, ss, *w;

    memset(c, 0, sizeof *c);
    if (in_size <= 0 || out_size <= 0 || n <= 0 || first < 0 || first > out_size - n)
        return jc_fail(JC_EINVAL, "cannot resample %d to %lld pixels from %lld for %d", in_size,
                       (long long)out_size, (long long)first, n);

    /*
     * The same operations in the same order as Pillow, which matters to the last bit: the
     * box edges are floats, the filter argument is multiplied by 1/filterscale (not divided
     * by filterscale), and the weights are divided by their sum before quantisation.
     */
    scale = (double)((float)in_size - 0.0f) / (double)out_size;
    filterscale = scale < 1.0 ? 1.0 : scale;
    support = 2.0 * filterscale;
    if (ceil(support) > (INT_MAX - 1) / 2)
        return jc_fail(JC_ELIMIT, "cannot resample %d to %lld pixels: filter too wide", in_size,
                       (long long)out_size);
    c->ksize = (int)ceil(support) * 2 + 1;
    c->n = n;
    if ((size_t)n > SIZE_MAX / sizeof(int32_t) / (size_t)c->ksize)
        return jc_fail(JC_ENOMEM, "cannot resample %d to %lld pixels: too many weights", in_size,
                       (long long)out_size);
    c->bounds = jc_malloc((size_t)n * 2 * sizeof *c->bounds, "resampling bounds");
    c->k = jc_calloc((size_t)n * (size_t)c->ksize, sizeof *c->k, "resampling weights");
    w = jc_malloc((size_t)c->ksize * sizeof *w, "resampling weights");
    if (!c->bounds || !c->k || !w) {
        free(w);
        jc_resample_coeffs_release(c);
        return JC_ENOMEM;
    }
    ss = 1.0 / filterscale;
    for (int i = 0; i < n; i++) {
        double center = ((double)(first + i) + 0.5) * scale;
        double ww = 0.0;
        int32_t *k = c->k + (size_t)i * (size_t)c->ksize;
        int xmin = (int)(center - support + 0.5);
        int xmax = (int)(center + support + 0.5);

        if (xmin < 0)
            xmin = 0;
        if (xmax > in_size)
            xmax = in_size;
        xmax -= xmin;
        if (xmax > c->ksize)
            xmax = c->ksize; /* cannot happen: the window is at most 2 * support + 1 wide */
        for (int x = 0; x < xmax; x++) {
            w[x] = bicubic((x + xmin - center + 0.5) * ss);
            ww += w[x];
        }
        for (int x = 0; x < xmax; x++) {
            if (ww != 0.0)
                w[x] /= ww;
            if (w[x] < 0)
                k[x] = (int32_t)(-0.5 + w[x] * (1 << JC_RESAMPLE_BITS));
            else
                k[x] = (int32_t)(0.5 + w[x] * (1 << JC_RESAMPLE_BITS));
        }
        c->bounds[2 * i] = xmin;
        c->bounds[2 * i + 1] = xmax;
    }
    free(w);
    return 0;
}

void jc_resample_coeffs_release(struct jc_resample_coeffs *c)
{
    free(c->bounds);
    free(c->k);
    c->bounds = NULL;
    c->k = NULL;
}

void jc_resize_target(int w, int h, int size, int64_t *rw, int64_t *rh)
{
    int64_t s = w <= h ? w : h, l = w <= h ? h : w;
    /* Python's int(size * long / short): an exact product, a rounded quotient, truncation */
    int64_t nl = (int64_t)((double)((int64_t)size * l) / (double)s);

    *rw = w <= h ? size : nl;
    *rh = w <= h ? nl : size;
}

int64_t jc_crop_offset(int64_t full, int size)
{
    int64_t d = full - size;
    int64_t q = d >= 0 ? d / 2 : -((1 - d) / 2); /* floor(d / 2) */

    /* d / 2 is either whole or q + 0.5, which rounds to the even neighbour */
    if (d - 2 * q == 1 && q % 2 != 0)
        q++;
    return q;
}

static inline uint8_t clip8(int32_t v)
{
    if (v < 0)
        return 0;
    v >>= JC_RESAMPLE_BITS;
    return v > 255 ? 255 : (uint8_t)v;
}

/*
 * Horizontal pass: rows [y0, y0 + rows) of an RGB image src_w pixels wide into `rows` rows
 * of c->n pixels.
 */
static void resample_rows(const uint8_t *src, int src_w, int64_t y0, int64_t rows,
                          const struct jc_resample_coeffs *c, uint8_t *dst)
{
    for (int64_t r = 0; r < rows; r++) {
        const uint8_t *row = src + (size_t)(y0 + r) * (size_t)src_w * 3;
        uint8_t *o = dst + (size_t)r * (size_t)c->n * 3;

        for (int xx = 0; xx < c->n; xx++) {
            const int32_t *k = c->k + (size_t)xx * (size_t)c->ksize;
            const uint8_t *p = row + (size_t)c->bounds[2 * xx] * 3;
            int count = c->bounds[2 * xx + 1];
            int32_t s0 = 1 << (JC_RESAMPLE_BITS - 1), s1 = s0, s2 = s0;

            for (int x = 0; x < count; x++) {
                s0 += p[3 * x + 0] * k[x];
                s1 += p[3 * x + 1] * k[x];
                s2 += p[3 * x + 2] * k[x];
            }
            o[3 * xx + 0] = clip8(s0);
            o[3 * xx + 1] = clip8(s1);
            o[3 * xx + 2] = clip8(s2);
        }
    }
}

/*
 * Vertical pass: output row yy of `width` RGB pixels is the weighted sum of rows
 * bounds[2 * yy] - y_shift onwards of src (stride bytes apart). acc holds width * 3 sums;
 * all partial sums stay well inside int32, so summing row by row gives Pillow's results.
 */
static void resample_columns(const uint8_t *src, size_t stride, int width, int64_t y_shift,
                             const struct jc_resample_coeffs *c, uint8_t *dst, int32_t *acc)
{
    size_t n = (size_t)width * 3;

    for (int yy = 0; yy < c->n; yy++) {
        const int32_t *k = c->k + (size_t)yy * (size_t)c->ksize;
        int64_t ymin = c->bounds[2 * yy] - y_shift;
        int count = c->bounds[2 * yy + 1];

        for (size_t i = 0; i < n; i++)
            acc[i] = 1 << (JC_RESAMPLE_BITS - 1);
        for (int y = 0; y < count; y++) {
            const uint8_t *row = src + (size_t)(ymin + y) * stride;
            int32_t kv = k[y];
            for (size_t i = 0; i < n; i++)
                acc[i] += row[i] * kv;
        }
        for (size_t i = 0; i < n; i++)
            dst[(size_t)yy * n + i] = clip8(acc[i]);
    }
}

int jc_image_resize_crop(const struct jc_image *img, int size, uint8_t *out)
{
    struct jc_resample_coeffs hc = {0}, vc = {0};
    uint8_t *tmp = NULL;
    int32_t *acc = NULL;
    const uint8_t *src;
    size_t stride;
    int64_t rw, rh, left, top, y0, y1, shift;
    int rc;

    if (!img || !img->rgb || img->w <= 0 || img->h <= 0)
        return jc_fail(JC_EINVAL, "cannot resize an image with no pixels");
    if (size <= 0 || size > MAX_SIZE)
        return jc_fail(JC_EINVAL, "cannot resize to %d pixels: out of range", size);

    jc_resize_target(img->w, img->h, size, &rw, &rh);
    left = jc_crop_offset(rw, size);
    top = jc_crop_offset(rh, size);

    /* Pillow skips the pass of an axis whose size does not change, torchvision both */
    bool need_h = rw != img->w, need_v = rh != img->h;
    if (!need_h && !need_v) {
        for (int y = 0; y < size; y++)
            memcpy(out + (size_t)y * size * 3,
                   img->rgb + ((size_t)(top + y) * (size_t)img->w + (size_t)left) * 3,
                   (size_t)size * 3);
        return 0;
    }

    if (need_v) {
        if ((rc = jc_resample_coeffs_init(&vc, img->h, rh, top, size)) < 0)
            return rc;
        /* the intermediate image holds only the input rows the kept output rows use */
        y0 = vc.bounds[0];
        y1 = vc.bounds[2 * (size - 1)] + vc.bounds[2 * (size - 1) + 1];
    } else {
        y0 = top;
        y1 = top + size;
    }

    if (need_h) {
        if ((rc = jc_resample_coeffs_init(&hc, img->w, rw, left, size)) < 0)
            goto out_release;
        if (!need_v) {
            resample_rows(img->rgb, img->w, y0, size, &hc, out);
            rc = 0;
            goto out_release;
        }
        if (!(tmp = jc_malloc((size_t)(y1 - y0) * (size_t)size * 3, "the resized rows"))) {
            rc = JC_ENOMEM;
            goto out_release;
        }
        resample_rows(img->rgb, img->w, y0, y1 - y0, &hc, tmp);
        src = tmp;
        stride = (size_t)size * 3;
        shift = y0;
    } else {
        src = img->rgb + (size_t)left * 3;
        stride = (size_t)img->w * 3;
        shift = 0;
    }

    if (!(acc = jc_malloc((size_t)size * 3 * sizeof *acc, "resampling sums"))) {
        rc = JC_ENOMEM;
        goto out_free;
    }
    resample_columns(src, stride, size, shift, &vc, out, acc);
    rc = 0;
    free(acc);
out_free:
    free(tmp);
out_release:
    jc_resample_coeffs_release(&hc);
    jc_resample_coeffs_release(&vc);
    return rc;
}

int jc_image_preprocess(const struct jc_image *img, int size, const float mean[3],
                        const float std[3], float *out)
{
    float lut[3][256];
    uint8_t *crop;
    size_t plane;
    int rc;

    if (size <= 0 || size > MAX_SIZE)
        return jc_fail(JC_EINVAL, "cannot resize to %d pixels: out of range", size);
    plane = (size_t)size * (size_t)size;
    if (!(crop = jc_malloc(plane * 3, "the cropped image")))
        return JC_ENOMEM;
    if ((rc = jc_image_resize_crop(img, size, crop)) < 0)
        goto out_free;

    /* ToTensor divides (not multiplies by 1/255); Normalize subtracts, then divides */
    for (int c = 0; c < 3; c++) {
        for (int b = 0; b < 256; b++) {
            float v = (float)b / 255.0f;
            lut[c][b] = (v - mean[c]) / std[c];
        }
    }
    for (size_t i = 0; i < plane; i++) {
        out[i] = lut[0][crop[3 * i + 0]];
        out[plane + i] = lut[1][crop[3 * i + 1]];
        out[2 * plane + i] = lut[2][crop[3 * i + 2]];
    }
out_free:
    free(crop);
    return rc;
}
