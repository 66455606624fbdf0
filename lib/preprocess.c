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
    return jc_resample_coeffs_init_box(c, in_size, (double)((float)in_size - 0.0f), out_size, first,
                                       n);
}

int jc_resample_coeffs_init_box(struct jc_resample_coeffs *c, int in_size, double box,
                                int64_t out_size, int64_t first, int n)
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
    scale = box / (double)out_size;
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
 * Horizontal pass over one row of RGB pixels: c->n output pixels. The row's pixels
 * [x0, x0 + count) are first split into one int32 plane per channel, so each output is three
 * plain dot products the compiler vectorises; target_clones builds AVX-512 and AVX2 copies
 * beside the baseline one, chosen when the program loads. Integer sums are the same in any
 * order, so every copy gives Pillow's bytes (and JCLIP_ISA has nothing to choose here).
 * This pass is most of the time a 12-megapixel photo takes to preprocess.
 */
#if defined(__x86_64__) && defined(__GNUC__)
#define RESAMPLE_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define RESAMPLE_CLONES /* aarch64's Advanced SIMD is its baseline */
#endif
RESAMPLE_CLONES __attribute__((optimize("tree-vectorize"))) static void
resample_row(const uint8_t *row, int x0, int count, const struct jc_resample_coeffs *c,
             int32_t *planes, uint8_t *o)
{
    for (int x = 0; x < count; x++) {
        planes[x] = row[3 * (x0 + x) + 0];
        planes[count + x] = row[3 * (x0 + x) + 1];
        planes[2 * count + x] = row[3 * (x0 + x) + 2];
    }
    for (int xx = 0; xx < c->n; xx++) {
        const int32_t *k = c->k + (size_t)xx * (size_t)c->ksize;
        int first = c->bounds[2 * xx] - x0, n = c->bounds[2 * xx + 1];
        for (int ch = 0; ch < 3; ch++) {
            const int32_t *p = planes + (size_t)ch * count + first;
            int32_t sum = 0;
            for (int x = 0; x < n; x++)
                sum += p[x] * k[x];
            o[3 * xx + ch] = clip8(sum + (1 << (JC_RESAMPLE_BITS - 1)));
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

int jc_resizer_init(struct jc_resizer *r, int w, int h, int size)
{
    const struct jc_draft_geom g = {w, h, (float)w, (float)h};
    return jc_resizer_init_geom(r, w, h, size, &g);
}

int jc_resizer_init_geom(struct jc_resizer *r, int w, int h, int size,
                         const struct jc_draft_geom *g)
{
    int rc;

    memset(r, 0, sizeof *r);
    if (w <= 0 || h <= 0 || g->w <= 0 || g->h <= 0)
        return jc_fail(JC_EINVAL, "cannot resize an image with no pixels");
    if (size <= 0 || size > MAX_SIZE)
        return jc_fail(JC_EINVAL, "cannot resize to %d pixels: out of range", size);
    r->w = w;
    r->h = h;
    r->size = size;
    /* the resize and the crop of the full-size image, whatever scale it was decoded at */
    jc_resize_target(g->w, g->h, size, &r->rw, &r->rh);
    r->left = jc_crop_offset(r->rw, size);
    r->top = jc_crop_offset(r->rh, size);
    /* Pillow skips the pass of an axis whose size does not change, torchvision both */
    r->need_h = r->rw != w || g->box_w != (double)w;
    r->need_v = r->rh != h || g->box_h != (double)h;
    if (r->need_v) {
        if ((rc = jc_resample_coeffs_init_box(&r->vc, h, g->box_h, r->rh, r->top, size)) < 0)
            return rc;
        /* only the input rows the kept output rows use */
        r->y0 = r->vc.bounds[0];
        r->y1 = r->vc.bounds[2 * (size - 1)] + r->vc.bounds[2 * (size - 1) + 1];
    } else {
        r->y0 = r->top;
        r->y1 = r->top + size;
    }
    if (r->need_h &&
        (rc = jc_resample_coeffs_init_box(&r->hc, w, g->box_w, r->rw, r->left, size)) < 0)
        goto out_release;
    r->x0 = r->need_h ? r->hc.bounds[0] : (int)r->left;
    r->x1 = r->need_h ? r->hc.bounds[2 * (size - 1)] + r->hc.bounds[2 * (size - 1) + 1]
                      : (int)r->left + size;
    if (r->need_h && !(r->planes = jc_malloc((size_t)(r->x1 - r->x0) * 3 * sizeof *r->planes,
                                             "a row to resample"))) {
        rc = JC_ENOMEM;
        goto out_release;
    }
    if (!(r->rows = jc_malloc((size_t)(r->y1 - r->y0) * (size_t)size * 3, "the resized rows"))) {
        rc = JC_ENOMEM;
        goto out_release;
    }
    return 0;
out_release:
    jc_resizer_release(r);
    return rc;
}

void jc_resizer_row(struct jc_resizer *r, int y, const uint8_t *rgb)
{
    if (y < r->y0 || y >= r->y1)
        return;
    uint8_t *o = r->rows + (size_t)(y - r->y0) * (size_t)r->size * 3;
    if (r->need_h)
        resample_row(rgb, r->x0, r->x1 - r->x0, &r->hc, r->planes, o);
    else
        memcpy(o, rgb + (size_t)r->left * 3, (size_t)r->size * 3);
}

int jc_resizer_finish(struct jc_resizer *r, uint8_t *out)
{
    size_t n = (size_t)r->size * 3;
    int32_t *acc;

    if (!r->need_v) {
        memcpy(out, r->rows, n * (size_t)r->size);
        return 0;
    }
    if (!(acc = jc_malloc(n * sizeof *acc, "resampling sums")))
        return JC_ENOMEM;
    resample_columns(r->rows, n, r->size, r->y0, &r->vc, out, acc);
    free(acc);
    return 0;
}

void jc_resizer_release(struct jc_resizer *r)
{
    jc_resample_coeffs_release(&r->hc);
    jc_resample_coeffs_release(&r->vc);
    free(r->rows);
    free(r->planes);
    r->rows = NULL;
    r->planes = NULL;
}

int jc_image_resize_crop(const struct jc_image *img, int size, uint8_t *out)
{
    const struct jc_draft_geom g = {0, 0, 0, 0};
    return jc_resize_crop_geom(img, size, &g, out);
}

int jc_resize_crop_geom(const struct jc_image *img, int size, const struct jc_draft_geom *g,
                        uint8_t *out)
{
    struct jc_draft_geom full = *g;
    struct jc_resizer r;
    int rc;

    if (!img || !img->rgb)
        return jc_fail(JC_EINVAL, "cannot resize an image with no pixels");
    if (full.box_w == 0) /* not a draft: the image is its own full size */
        full = (struct jc_draft_geom){img->w, img->h, (float)img->w, (float)img->h};
    if ((rc = jc_resizer_init_geom(&r, img->w, img->h, size, &full)) < 0)
        return rc;
    for (int64_t y = r.y0; y < r.y1; y++)
        jc_resizer_row(&r, (int)y, img->rgb + (size_t)y * (size_t)img->w * 3);
    rc = jc_resizer_finish(&r, out);
    jc_resizer_release(&r);
    return rc;
}

/* ToTensor divides (not multiplies by 1/255); Normalize subtracts, then divides */
void jc_normalize(const uint8_t *crop, int size, const float mean[3], const float std[3],
                  float *out)
{
    size_t plane = (size_t)size * (size_t)size;
    float lut[3][256];

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
}

int jc_image_preprocess(const struct jc_image *img, int size, const float mean[3],
                        const float std[3], float *out)
{
    const struct jc_draft_geom g = {0, 0, 0, 0};
    return jc_preprocess_geom(img, size, &g, mean, std, out);
}

int jc_preprocess_geom(const struct jc_image *img, int size, const struct jc_draft_geom *g,
                       const float mean[3], const float std[3], float *out)
{
    uint8_t *crop;
    int rc;

    if (size <= 0 || size > MAX_SIZE)
        return jc_fail(JC_EINVAL, "cannot resize to %d pixels: out of range", size);
    if (!(crop = jc_malloc((size_t)size * (size_t)size * 3, "the cropped image")))
        return JC_ENOMEM;
    if ((rc = jc_resize_crop_geom(img, size, g, crop)) == 0)
        jc_normalize(crop, size, mean, std, out);
    free(crop);
    return rc;
}
