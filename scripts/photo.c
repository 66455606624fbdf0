#include "photo.h"

#include "jclip.h"

#include <stdio.h>
#include <stdlib.h>

#include <jpeglib.h>

/* A small generator of its own, so the photos do not depend on the C library's rand(). */
static uint32_t next(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

int jc_make_photo(const char *golden, int w, int h, unsigned seed, uint8_t **jpeg, size_t *len)
{
    static const char *const pictures[] = {"chelsea.png", "coffee.png", "astronaut.png",
                                           "rocket.jpg"};
    char path[512];
    struct jc_image src;
    uint32_t s = 2463534242u ^ (seed * 2654435761u);
    uint8_t *row = malloc((size_t)w * 3);
    unsigned long size = 0;

    snprintf(path, sizeof path, "%s/%s", golden, pictures[seed % 4]);
    if (!row || jc_image_load(path, NULL, &src) < 0) {
        fprintf(stderr, "jc_make_photo: %s\n", row ? jc_errmsg() : "out of memory");
        free(row);
        return -1;
    }

    struct jpeg_compress_struct c;
    struct jpeg_error_mgr err;
    c.err = jpeg_std_error(&err);
    jpeg_create_compress(&c);
    *jpeg = NULL;
    jpeg_mem_dest(&c, jpeg, &size);
    c.image_width = (JDIMENSION)w;
    c.image_height = (JDIMENSION)h;
    c.input_components = 3;
    c.in_color_space = JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 90, TRUE); /* 4:2:0, libjpeg's default for YCbCr */
    jpeg_start_compress(&c, TRUE);
    for (int y = 0; y < h; y++) {
        /* bilinear from the picture, in 8-bit fixed point */
        int64_t fy = ((int64_t)y * (src.h - 1) << 8) / (h > 1 ? h - 1 : 1);
        int y0 = (int)(fy >> 8), y1 = y0 + 1 < src.h ? y0 + 1 : y0, wy = (int)(fy & 255);
        for (int x = 0; x < w; x++) {
            int64_t fx = ((int64_t)x * (src.w - 1) << 8) / (w > 1 ? w - 1 : 1);
            int x0 = (int)(fx >> 8), x1 = x0 + 1 < src.w ? x0 + 1 : x0, wx = (int)(fx & 255);
            /* sensor noise: the sum of two uniform values, within +-12 levels */
            int noise = (int)(next(&s) % 13) + (int)(next(&s) % 13) - 12;
            for (int ch = 0; ch < 3; ch++) {
                const uint8_t *p = src.rgb + ch;
                int a = p[((size_t)y0 * src.w + x0) * 3], b = p[((size_t)y0 * src.w + x1) * 3];
                int cc = p[((size_t)y1 * src.w + x0) * 3], d = p[((size_t)y1 * src.w + x1) * 3];
                int top = a * (256 - wx) + b * wx, bot = cc * (256 - wx) + d * wx;
                int v = ((top * (256 - wy) + bot * wy) >> 16) + noise;
                row[(size_t)x * 3 + ch] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
        }
        JSAMPROW r = row;
        jpeg_write_scanlines(&c, &r, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    jc_image_release(&src);
    free(row);
    *len = size;
    return 0;
}
