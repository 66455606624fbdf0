/*
 * Pillow's resampling arithmetic, shared by lib/preprocess.c and its unit test; not part of
 * the public API. Sizes of resized images are 64-bit because a very wide strip can resize
 * past INT_MAX columns (only the crop is ever computed).
 */
#ifndef JCLIP_PREPROCESS_H
#define JCLIP_PREPROCESS_H

#include <stdbool.h>
#include <stdint.h>

struct jc_image;

/* Fractional bits of the fixed-point weights (Pillow's PRECISION_BITS). */
#define JC_RESAMPLE_BITS 22

/*
 * Bicubic (a = -0.5) antialiased weights of output pixels [first, first + n) of an axis
 * resampled from in_size to out_size pixels, computed as Pillow 9.4's precompute_coeffs and
 * normalize_coeffs_8bpc do.
 */
struct jc_resample_coeffs {
    int ksize;   /* weights per output pixel (Pillow's ksize) */
    int n;       /* output pixels described */
    int *bounds; /* [n, 2]: first input pixel and number of input pixels used */
    int32_t *k;  /* [n, ksize]: fixed-point weights, zero past the count */
};

/* Fills c (malloc'd; jc_resample_coeffs_release frees it). JC_ENOMEM or JC_EINVAL. */
int jc_resample_coeffs_init(struct jc_resample_coeffs *c, int in_size, int64_t out_size,
                            int64_t first, int n);
void jc_resample_coeffs_release(struct jc_resample_coeffs *c);

/*
 * The same for an input whose pixels span `box` pixels of the axis rather than in_size (a
 * draft decode: pixel i covers [i, i + 1) of box / in_size ... of the full image's scale).
 */
int jc_resample_coeffs_init_box(struct jc_resample_coeffs *c, int in_size, double box,
                                int64_t out_size, int64_t first, int n);

/*
 * Where a draft-decoded image sits in the full-size one. libjpeg's DCT scaling by M/8 gives
 * ceil(w * M / 8) pixels for w * M / 8 of extent, so the last column and row stand for part
 * of a pixel; resampling them as whole pixels would stretch the picture by up to a pixel
 * and move every sample of the crop. The draft is resampled as if it were the full w x h
 * image (its resize target and crop), over box_w x box_h of its own pixels. box_w 0: the
 * image is the full-size one.
 */
struct jc_draft_geom {
    int w, h;           /* the full-size image */
    float box_w, box_h; /* its extent in the draft's pixels: w * M / 8, h * M / 8 */
};

/*
 * The size torchvision's Resize(size) gives a w x h image: the shorter side becomes size,
 * the longer (int)(size * long / short). Equal to w x h when the shorter side is already
 * size.
 */
void jc_resize_target(int w, int h, int size, int64_t *rw, int64_t *rh);

/* Offset of a centre crop of `size` from `full`: round((full - size) / 2), half to even. */
int64_t jc_crop_offset(int64_t full, int size);

/*
 * The resize and centre crop of jc_image_resize_crop, fed one input row at a time, so a
 * decoder can hand rows over as it makes them and the full-size image never exists. Rows
 * outside [y0, y1) are not used (a decoder may skip them); of a row, only pixels [x0, x1)
 * are read. The result is the same bytes whatever order the rows come in.
 */
struct jc_resizer {
    int w, h, size;
    int64_t rw, rh, left, top; /* the resized size and the crop's offset in it */
    bool need_h, need_v;       /* which passes Pillow runs */
    int64_t y0, y1;            /* the input rows used */
    int x0, x1;                /* the input columns used */
    struct jc_resample_coeffs hc, vc;
    uint8_t *rows;   /* [y1 - y0, size, 3]: each used row, horizontally resampled */
    int32_t *planes; /* [3, x1 - x0]: the row being resampled, a plane per channel */
};

/* 0, or JC_EINVAL / JC_ENOMEM with the message set (nothing to release then). */
int jc_resizer_init(struct jc_resizer *r, int w, int h, int size);
/* The same for a w x h draft of the image g describes. */
int jc_resizer_init_geom(struct jc_resizer *r, int w, int h, int size,
                         const struct jc_draft_geom *g);
/* Takes input row y (w RGB pixels). */
void jc_resizer_row(struct jc_resizer *r, int y, const uint8_t *rgb);
/* The size x size x 3 crop, once every row in [y0, y1) was given: 0 or JC_ENOMEM. */
int jc_resizer_finish(struct jc_resizer *r, uint8_t *out);
void jc_resizer_release(struct jc_resizer *r);

/* jc_image_resize_crop and jc_image_preprocess of a draft of the image g describes. */
int jc_resize_crop_geom(const struct jc_image *img, int size, const struct jc_draft_geom *g,
                        uint8_t *out);
int jc_preprocess_geom(const struct jc_image *img, int size, const struct jc_draft_geom *g,
                       const float mean[3], const float std[3], float *out);

/* ToTensor and Normalize: a size x size x 3 crop to [3, size, size] floats. */
void jc_normalize(const uint8_t *crop, int size, const float mean[3], const float std[3],
                  float *out);

#endif
