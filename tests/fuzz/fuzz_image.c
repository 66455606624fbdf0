/*
 * Image decoding (every decoder of lib/decode/: JPEG, WebP, HEIF/AVIF, PNM, and PNG, GIF, BMP,
 * TGA through the header walk and stb_image) and the preprocessing of what decodes: resize
 * the shorter side to 224, centre crop, normalise. Each input is decoded twice: exactly, and
 * with draft scaling and the EXIF orientation (so the scaled IDCTs and the EXIF reader see
 * every input too). Decoding is capped at 2^20 pixels, so no input takes long.
 */
#include "fuzz.h"

#include "jclip.h"

#define SIZE       224
#define MAX_PIXELS ((size_t)1 << 20)

static const float MEAN[3] = {0.48145466f, 0.4578275f, 0.40821073f};
static const float STD[3] = {0.26862954f, 0.26130258f, 0.27577711f};

static float pixels[3 * SIZE * SIZE];

static void one(const uint8_t *data, size_t size, const struct jc_image_opts *o)
{
    struct jc_image img;

    int rc = jc_image_decode(data, size, "fuzz", o, &img);
    FUZZ_CHECK(rc == 0 || rc == JC_EFORMAT || rc == JC_ELIMIT || rc == JC_ENOMEM);
    if (rc < 0) {
        FUZZ_CHECK(img.rgb == NULL);
        return;
    }
    FUZZ_CHECK(img.w > 0 && img.h > 0 && (size_t)img.w * (size_t)img.h <= MAX_PIXELS);
    FUZZ_CHECK(img.rgb != NULL);

    rc = jc_image_preprocess(&img, SIZE, MEAN, STD, pixels);
    FUZZ_CHECK(rc == 0 || rc == JC_ENOMEM);
    /* every value is a byte / 255 normalised: within [-mean / std, (1 - mean) / std] */
    for (size_t i = 0; rc == 0 && i < sizeof pixels / sizeof *pixels; i++)
        FUZZ_CHECK(pixels[i] > -2.0f && pixels[i] < 2.2f);
    jc_image_release(&img);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct jc_image_opts exact = {.max_pixels = MAX_PIXELS};
    const struct jc_image_opts draft = {.max_pixels = MAX_PIXELS, .draft = 16, .exif_rotate = true};

    one(data, size, &exact);
    one(data, size, &draft);
    return 0;
}
