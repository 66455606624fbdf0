/*
 * Pillow's resampling arithmetic, shared by lib/preprocess.c and its unit test; not part of
 * the public API. Sizes of resized images are 64-bit because a very wide strip can resize
 * past INT_MAX columns (only the crop is ever computed).
 */
#ifndef JCLIP_PREPROCESS_H
#define JCLIP_PREPROCESS_H

#include <stdint.h>

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
 * The size torchvision's Resize(size) gives a w x h image: the shorter side becomes size,
 * the longer (int)(size * long / short). Equal to w x h when the shorter side is already
 * size.
 */
void jc_resize_target(int w, int h, int size, int64_t *rw, int64_t *rh);

/* Offset of a centre crop of `size` from `full`: round((full - size) / 2), half to even. */
int64_t jc_crop_offset(int64_t full, int size);

#endif
