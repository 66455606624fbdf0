/*
 * Image decoding and preprocessing: every golden image through decode, resize, crop and
 * normalisation, bit for bit against Pillow's bytes (resized_u8.npy) and the reference
 * tensors (pixels.npy), JPEGs included; the resampling weights and crop offsets; the
 * formats we decode, built here byte by byte; and the errors.
 */
#include "testutil.h"

#include "photo.h"
#include "preprocess.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SIZE       224
#define MAX_IMAGES 32

static const float MEAN[3] = {0.48145466f, 0.4578275f, 0.40821073f};
static const float STD[3] = {0.26862954f, 0.26130258f, 0.27577711f};

struct golden {
    char file[64];
    bool png;
    int w, h;
    long long rw, rh, left, top;
    bool resampled;
};

static struct golden images[MAX_IMAGES];
static int n_images;
static char tmpdir[64];

/* ---- helpers ---------------------------------------------------------------------------- */

static void load_images(void)
{
    char *buf = tu_read(TU_GOLDEN "/images.jsonl", NULL);

    n_images = 0;
    for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *o = cJSON_Parse(line);
        assert_non_null(o);
        assert_true(n_images < MAX_IMAGES);
        struct golden *g = &images[n_images++];
        const cJSON *size = cJSON_GetObjectItem(o, "size");
        const cJSON *resized = cJSON_GetObjectItem(o, "resized");
        const cJSON *crop = cJSON_GetObjectItem(o, "crop_left_top");
        snprintf(g->file, sizeof g->file, "%s", cJSON_GetObjectItem(o, "file")->valuestring);
        g->png = !strcmp(cJSON_GetObjectItem(o, "format")->valuestring, "PNG");
        g->w = (int)cJSON_GetArrayItem(size, 0)->valuedouble;
        g->h = (int)cJSON_GetArrayItem(size, 1)->valuedouble;
        g->rw = (long long)cJSON_GetArrayItem(resized, 0)->valuedouble;
        g->rh = (long long)cJSON_GetArrayItem(resized, 1)->valuedouble;
        g->left = (long long)cJSON_GetArrayItem(crop, 0)->valuedouble;
        g->top = (long long)cJSON_GetArrayItem(crop, 1)->valuedouble;
        g->resampled = cJSON_IsTrue(cJSON_GetObjectItem(o, "resampled"));
        cJSON_Delete(o);
    }
    free(buf);
    assert_int_equal(n_images, 15);
}

static const struct golden *find_image(const char *file)
{
    for (int i = 0; i < n_images; i++)
        if (!strcmp(images[i].file, file))
            return &images[i];
    fail_msg("%s is not in images.jsonl", file);
    return NULL;
}

/*
 * The body of a version-1 .npy file whose header has the given descr and shape and which
 * holds exactly `bytes` bytes of data. *whole gets the buffer to free.
 */
static const void *npy_body(const char *path, const char *descr, const char *shape, size_t bytes,
                            char **whole)
{
    size_t len, hlen;
    char *buf = tu_read(path, &len), want[96];

    assert_true(len >= 10 && !memcmp(buf, "\x93NUMPY\x01", 7));
    hlen = (unsigned char)buf[8] | (size_t)(unsigned char)buf[9] << 8;
    assert_true(10 + hlen <= len);
    snprintf(want, sizeof want, "'descr': '%s'", descr);
    assert_non_null(strstr(buf + 10, want));
    snprintf(want, sizeof want, "'shape': (%s)", shape);
    assert_non_null(strstr(buf + 10, want));
    assert_int_equal(len - 10 - hlen, bytes);
    *whole = buf;
    return buf + 10 + hlen;
}

static char *tmp_path(const char *name)
{
    static char path[160];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    return path;
}

static const char *write_tmp(const char *name, const void *data, size_t len)
{
    char *path = tmp_path(name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
    return path;
}

static void put32be(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void put16le(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32le(uint8_t *p, uint32_t v)
{
    put16le(p, v & 0xFFFF);
    put16le(p + 2, v >> 16);
}

static uint32_t crc32(const uint8_t *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    }
    return c ^ 0xFFFFFFFFu;
}

/* Appends a PNG chunk at *len. */
static void png_chunk(uint8_t *out, size_t *len, const char *type, const uint8_t *data, size_t n)
{
    put32be(out + *len, (uint32_t)n);
    memcpy(out + *len + 4, type, 4);
    if (n)
        memcpy(out + *len + 8, data, n);
    put32be(out + *len + 8 + n, crc32(out + *len + 4, n + 4));
    *len += 12 + n;
}

/*
 * A PNG of h scanlines `raw` (rowbytes each, filter 0), deflated as stored blocks, with an
 * optional PLTE and tRNS. Returns a malloc'd file.
 */
static uint8_t *make_png(int w, int h, int depth, int color, size_t rowbytes, const uint8_t *raw,
                         const uint8_t *plte, size_t plte_len, const uint8_t *trns, size_t trns_len,
                         size_t *len)
{
    size_t zlen = (size_t)h * (rowbytes + 1), pos = 0;
    size_t nblocks = zlen / 65535 + 1;
    uint8_t *z = malloc(2 + zlen + 5 * nblocks + 4), *scan = malloc(zlen), ihdr[13];
    uint8_t *out = malloc(64 + zlen + 5 * nblocks + plte_len + trns_len + 64);
    uint32_t a = 1, b = 0;

    for (int y = 0; y < h; y++) {
        scan[(size_t)y * (rowbytes + 1)] = 0;
        memcpy(scan + (size_t)y * (rowbytes + 1) + 1, raw + (size_t)y * rowbytes, rowbytes);
    }
    z[pos++] = 0x78;
    z[pos++] = 0x01;
    for (size_t off = 0;; off += 65535) {
        size_t n = zlen - off < 65535 ? zlen - off : 65535;
        z[pos++] = off + n >= zlen;
        put16le(z + pos, (uint32_t)n);
        put16le(z + pos + 2, (uint32_t)n ^ 0xFFFF);
        memcpy(z + pos + 4, scan + off, n);
        pos += 4 + n;
        if (off + n >= zlen)
            break;
    }
    for (size_t i = 0; i < zlen; i++) {
        a = (a + scan[i]) % 65521;
        b = (b + a) % 65521;
    }
    put32be(z + pos, b << 16 | a);
    pos += 4;

    memcpy(out, "\x89PNG\r\n\x1a\n", 8);
    *len = 8;
    put32be(ihdr, (uint32_t)w);
    put32be(ihdr + 4, (uint32_t)h);
    ihdr[8] = (uint8_t)depth;
    ihdr[9] = (uint8_t)color;
    ihdr[10] = ihdr[11] = ihdr[12] = 0;
    png_chunk(out, len, "IHDR", ihdr, 13);
    if (plte)
        png_chunk(out, len, "PLTE", plte, plte_len);
    if (trns)
        png_chunk(out, len, "tRNS", trns, trns_len);
    png_chunk(out, len, "IDAT", z, pos);
    png_chunk(out, len, "IEND", NULL, 0);
    free(z);
    free(scan);
    return out;
}

static const uint8_t GIF_PALETTE[12] = {0, 0, 0, 200, 10, 20, 30, 40, 250, 90, 80, 70};

/*
 * A GIF89a of a sw x sh screen with GIF_PALETTE as its global table and one frame of
 * fw x fh pixels at (fx, fy), optionally with a transparent index. LZW minimum code size 2:
 * the codes stay 3 bits wide because a clear code (4) comes before every pair of literals,
 * so the table never reaches 8 entries; 5 ends the data. Returns the length.
 */
static size_t make_gif(uint8_t *file, int sw, int sh, int fx, int fy, int fw, int fh,
                       const int *pix, int transparent)
{
    uint8_t data[64];
    int codes[64], nc = 0, nbits = 0, n = fw * fh;
    uint32_t bitbuf = 0;
    size_t pos = 13, nd = 0;

    memcpy(file, "GIF89a", 6);
    put16le(file + 6, (uint32_t)sw);
    put16le(file + 8, (uint32_t)sh);
    file[10] = 0x81; /* a global table of 2^(1 + 1) entries */
    file[11] = 1;    /* background index, which Pillow does not use */
    file[12] = 0;
    memcpy(file + pos, GIF_PALETTE, 12);
    pos += 12;
    if (transparent >= 0) {
        static const uint8_t gce[4] = {0x21, 0xF9, 4, 1};
        memcpy(file + pos, gce, 4);
        file[pos + 4] = file[pos + 5] = 0;
        file[pos + 6] = (uint8_t)transparent;
        file[pos + 7] = 0;
        pos += 8;
    }
    file[pos++] = 0x2C;
    put16le(file + pos, (uint32_t)fx);
    put16le(file + pos + 2, (uint32_t)fy);
    put16le(file + pos + 4, (uint32_t)fw);
    put16le(file + pos + 6, (uint32_t)fh);
    file[pos + 8] = 0;
    pos += 9;
    file[pos++] = 2;
    for (int i = 0; i < n; i++) {
        if (i % 2 == 0)
            codes[nc++] = 4;
        codes[nc++] = pix[i];
    }
    codes[nc++] = 5;
    for (int i = 0; i < nc; i++) {
        bitbuf |= (uint32_t)codes[i] << nbits;
        for (nbits += 3; nbits >= 8; nbits -= 8) {
            data[nd++] = (uint8_t)bitbuf;
            bitbuf >>= 8;
        }
    }
    if (nbits)
        data[nd++] = (uint8_t)bitbuf;
    file[pos++] = (uint8_t)nd;
    memcpy(file + pos, data, nd);
    pos += nd;
    file[pos++] = 0;
    file[pos++] = 0x3B;
    return pos;
}

/* Decodes from memory and expects success with the given RGB pixels. */
static void decode_ok(const uint8_t *file, size_t len, int w, int h, const uint8_t *rgb)
{
    struct jc_image img;
    if (jc_image_decode(file, len, "mem", NULL, &img) < 0)
        fail_msg("%s", jc_errmsg());
    assert_int_equal(img.w, w);
    assert_int_equal(img.h, h);
    assert_memory_equal(img.rgb, rgb, (size_t)w * h * 3);
    jc_image_release(&img);
}

/* Expects failure with `code` and a one-line message holding `name` and `why`. */
static void expect_error(int rc, int code, const char *name, const char *why)
{
    const char *msg = jc_errmsg();
    if (rc != code || !strstr(msg, name) || !strstr(msg, why) || strchr(msg, '\n'))
        fail_msg("got %d '%s', wanted %d with '%s' and '%s'", rc, msg, code, name, why);
}

static void decode_fails(const uint8_t *file, size_t len, const char *why)
{
    struct jc_image img;
    expect_error(jc_image_decode(file, len, "mem", NULL, &img), JC_EFORMAT, "mem", why);
    assert_null(img.rgb);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- golden images ---------------------------------------------------------------------- */

static void test_golden(void **state)
{
    char *pix_buf, *u8_buf, path[128], shape[64];
    const float *pixels;
    const uint8_t *resized;
    size_t plane = (size_t)SIZE * SIZE;
    float *out = malloc(3 * plane * sizeof *out);
    uint8_t *crop = malloc(3 * plane);
    (void)state;

    snprintf(shape, sizeof shape, "%d, 3, %d, %d", n_images, SIZE, SIZE);
    pixels = npy_body(TU_GOLDEN "/pixels.npy", "<f4", shape, n_images * 3 * plane * 4, &pix_buf);
    snprintf(shape, sizeof shape, "%d, %d, %d, 3", n_images, SIZE, SIZE);
    resized = npy_body(TU_GOLDEN "/resized_u8.npy", "|u1", shape, n_images * 3 * plane, &u8_buf);

    for (int m = 0; m < n_images; m++) {
        const struct golden *g = &images[m];
        const float *ref = pixels + (size_t)m * 3 * plane;
        const uint8_t *ref_u8 = resized + (size_t)m * 3 * plane;
        struct jc_image img;

        assert_true(snprintf(path, sizeof path, "%s/%s", TU_GOLDEN, g->file) < (int)sizeof path);
        if (jc_image_load(path, NULL, &img) < 0)
            fail_msg("%s", jc_errmsg());
        assert_int_equal(img.w, g->w);
        assert_int_equal(img.h, g->h);
        assert_int_equal(jc_image_resize_crop(&img, SIZE, crop), 0);
        assert_int_equal(jc_image_preprocess(&img, SIZE, MEAN, STD, out), 0);
        jc_image_release(&img);

        /* the README's bar for JPEGs, which any decoder close to libjpeg meets */
        for (int c = 0; c < 3 && !g->png; c++) {
            double bar = 2.0 / 255.0 / STD[c] + 1e-6;
            double d = tu_max_abs_diff(out + c * plane, ref + c * plane, plane);
            if (d > bar)
                fail_msg("%s: channel %d differs by %g > %g", g->file, c, d, bar);
        }
        /* and exactness: PNGs through Pillow's resampler, JPEGs through libjpeg-turbo's
         * kernels too */
        for (size_t i = 0; i < 3 * plane; i++)
            if (crop[i] != ref_u8[i])
                fail_msg("%s: resized byte %zu (y %zu x %zu c %zu) is %d, Pillow's %d", g->file, i,
                         i / 3 / SIZE, i / 3 % SIZE, i % 3, crop[i], ref_u8[i]);
        for (size_t i = 0; i < 3 * plane; i++)
            if (memcmp(&out[i], &ref[i], sizeof(float)))
                fail_msg("%s: pixel %zu is %.9g, reference %.9g", g->file, i, out[i], ref[i]);
    }
    free(pix_buf);
    free(u8_buf);
    free(out);
    free(crop);
}

/* Target sizes and crop offsets of every golden image, as torchvision computed them. */
static void test_sizes_and_offsets(void **state)
{
    (void)state;
    for (int m = 0; m < n_images; m++) {
        const struct golden *g = &images[m];
        int64_t rw, rh;
        jc_resize_target(g->w, g->h, SIZE, &rw, &rh);
        assert_int_equal(rw, g->rw);
        assert_int_equal(rh, g->rh);
        assert_int_equal(jc_crop_offset(rw, SIZE), g->left);
        assert_int_equal(jc_crop_offset(rh, SIZE), g->top);
        assert_int_equal(rw != g->w || rh != g->h, g->resampled);
    }
    /* half-way offsets round to even: 0.5 -> 0, 1.5 -> 2, 55.5 -> 56, 134.5 -> 134 */
    assert_int_equal(jc_crop_offset(225, 224), 0);
    assert_int_equal(jc_crop_offset(227, 224), 2);
    assert_int_equal(jc_crop_offset(335, 224), 56);
    assert_int_equal(jc_crop_offset(493, 224), 134);
    assert_int_equal(jc_crop_offset(224, 224), 0);
}

/*
 * Every output pixel's weights of an axis: inside the input, and summing to 1 << 22 up to
 * the quantisation of each weight (at most half a unit each).
 */
static void check_axis(int in, int64_t out)
{
    struct jc_resample_coeffs c;
    const int64_t one = 1 << JC_RESAMPLE_BITS;

    if (jc_resample_coeffs_init(&c, in, out, 0, (int)out) < 0)
        fail_msg("%s", jc_errmsg());
    for (int i = 0; i < c.n; i++) {
        int xmin = c.bounds[2 * i], count = c.bounds[2 * i + 1];
        int64_t sum = 0;
        assert_true(xmin >= 0 && count >= 1 && xmin + count <= in && count <= c.ksize);
        for (int x = 0; x < c.ksize; x++) {
            sum += c.k[(size_t)i * c.ksize + x];
            if (x >= count)
                assert_int_equal(c.k[(size_t)i * c.ksize + x], 0);
        }
        if (llabs(sum - one) * 2 > count)
            fail_msg("%d -> %lld, pixel %d: weights sum to %lld", in, (long long)out, i,
                     (long long)sum);
        if (in == 1)
            assert_true(xmin == 0 && count == 1 && sum == one);
    }
    jc_resample_coeffs_release(&c);
}

static void test_resize_weights(void **state)
{
    static const char *const files[] = {"images/synth_227x500.png", "images/synth_225x224.png",
                                        "images/synth_3000x20.png", "images/synth_1x1.png"};
    struct jc_resample_coeffs c;
    (void)state;

    for (size_t f = 0; f < sizeof files / sizeof *files; f++) {
        const struct golden *g = find_image(files[f]);
        int64_t rw, rh;
        jc_resize_target(g->w, g->h, SIZE, &rw, &rh);
        assert_int_equal(rw, g->rw);
        assert_int_equal(rh, g->rh);
        assert_int_equal(jc_crop_offset(rw, SIZE), g->left);
        assert_int_equal(jc_crop_offset(rh, SIZE), g->top);
        if (rw != g->w)
            check_axis(g->w, rw);
        if (rh != g->h)
            check_axis(g->h, rh);
    }
    /* 225 x 224 keeps its size: nothing is resampled */
    assert_false(find_image("images/synth_225x224.png")->resampled);

    /*
     * Hand-checked windows. Halving (448 -> 224), output 10: scale 2, support 4, centre 21,
     * inputs (int)(21 - 4 + 0.5) = 17 up to (int)(21 + 4 + 0.5) = 25 (exclusive) at
     * distances (j - 3.5) / 2; cubic weights -0.0234375 -0.0703125 0.2265625 0.8671875 and
     * mirrored sum to 2, so each weight / 2 * 2^22 is exact.
     */
    static const int32_t half[8] = {-49152,  -147456, 475136,  1818624,
                                    1818624, 475136,  -147456, -49152};
    assert_int_equal(jc_resample_coeffs_init(&c, 448, 224, 10, 1), 0);
    assert_int_equal(c.ksize, 9);
    assert_int_equal(c.bounds[0], 17);
    assert_int_equal(c.bounds[1], 8);
    assert_memory_equal(c.k, half, sizeof half);
    jc_resample_coeffs_release(&c);

    /*
     * Doubling (112 -> 224), output 10: support 2, centre 5.25, inputs 3..6 at distances
     * -1.75 -0.75 0.25 1.25, weights -0.0234375 0.2265625 0.8671875 -0.0703125 summing to 1.
     */
    static const int32_t twice[4] = {-98304, 950272, 3637248, -294912};
    assert_int_equal(jc_resample_coeffs_init(&c, 112, 224, 10, 1), 0);
    assert_int_equal(c.ksize, 5);
    assert_int_equal(c.bounds[0], 3);
    assert_int_equal(c.bounds[1], 4);
    assert_memory_equal(c.k, twice, sizeof twice);
    jc_resample_coeffs_release(&c);

    /* windows cut at the edges are renormalised */
    check_axis(448, 224);
    check_axis(112, 224);
    check_axis(640, 298);
    check_axis(5000, 224);

    assert_int_equal(jc_resample_coeffs_init(&c, 10, 20, 15, 6), JC_EINVAL);
}

static void test_passes(void **state)
{
    struct jc_image img = {.w = 224, .h = 300};
    uint8_t *out = malloc(SIZE * SIZE * 3);
    (void)state;

    /* the short side is already 224: nothing is resampled, the crop is the image's bytes */
    img.rgb = malloc((size_t)img.w * img.h * 3);
    for (size_t i = 0; i < (size_t)img.w * img.h * 3; i++)
        img.rgb[i] = (uint8_t)(i * 2654435761u >> 24);
    assert_int_equal(jc_image_resize_crop(&img, SIZE, out), 0);
    assert_memory_equal(out, img.rgb + (size_t)38 * 224 * 3, SIZE * SIZE * 3);
    free(img.rgb);

    /* a flat image stays flat through both passes, whatever the weights */
    img.w = 1000;
    img.h = 700;
    img.rgb = malloc((size_t)img.w * img.h * 3);
    memset(img.rgb, 77, (size_t)img.w * img.h * 3);
    assert_int_equal(jc_image_resize_crop(&img, SIZE, out), 0);
    for (size_t i = 0; i < SIZE * SIZE * 3; i++)
        assert_int_equal(out[i], 77);

    assert_int_equal(jc_image_resize_crop(&img, 0, out), JC_EINVAL);
    free(img.rgb);

    /* strips resize past INT_MAX pixels long (1 x 10^7 to 224 x 2.24 * 10^9); only the
     * crop is computed */
    for (int t = 0; t < 2; t++) {
        img.w = t ? 10000000 : 1;
        img.h = t ? 1 : 10000000;
        img.rgb = malloc((size_t)10000000 * 3);
        memset(img.rgb, 200, (size_t)10000000 * 3);
        assert_int_equal(jc_image_resize_crop(&img, SIZE, out), 0);
        for (size_t i = 0; i < SIZE * SIZE * 3; i++)
            assert_int_equal(out[i], 200);
        free(img.rgb);
    }
    img.rgb = NULL;
    assert_int_equal(jc_image_resize_crop(&img, SIZE, out), JC_EINVAL);
    free(out);
}

static void test_speed(void **state)
{
    struct jc_image img;
    float *out = malloc(3 * SIZE * SIZE * sizeof *out);
    double best = 1e9;
    (void)state;

    if (jc_image_load(TU_GOLDEN "/images/synth_640x480_noise.png", NULL, &img) < 0)
        fail_msg("%s", jc_errmsg());
    for (int i = 0; i < 5; i++) {
        double t = now();
        assert_int_equal(jc_image_preprocess(&img, SIZE, MEAN, STD, out), 0);
        t = now() - t;
        best = t < best ? t : best;
    }
    /* about 1 ms optimised; the bar leaves room for sanitizers and slow machines */
    if (best > 0.1)
        fail_msg("preprocessing 640x480 took %.1f ms", best * 1e3);
    jc_image_release(&img);
    free(out);
}

/* ---- formats ------------------------------------------------------------------------------ */

static void test_png_variants(void **state)
{
    uint8_t raw[64], rgb[48], plte[9] = {10, 20, 30, 40, 50, 60, 70, 80, 90}, trns[2] = {0, 255};
    uint8_t *png;
    size_t len;
    (void)state;

    /* 8-bit grey: replicated */
    uint8_t grey[4] = {0, 100, 200, 255};
    png = make_png(2, 2, 8, 0, 2, grey, NULL, 0, NULL, 0, &len);
    for (int i = 0; i < 4; i++)
        rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = grey[i];
    decode_ok(png, len, 2, 2, rgb);
    free(png);

    /* 16-bit RGB: the high byte */
    for (int i = 0; i < 12; i++) {
        raw[2 * i] = (uint8_t)(17 * i);
        raw[2 * i + 1] = (uint8_t)(255 - i);
        rgb[i] = (uint8_t)(17 * i);
    }
    png = make_png(2, 2, 16, 2, 12, raw, NULL, 0, NULL, 0, &len);
    decode_ok(png, len, 2, 2, rgb);
    free(png);

    /* RGBA: alpha dropped, not composited (a transparent pixel keeps its colour) */
    for (int i = 0; i < 4; i++) {
        raw[4 * i] = (uint8_t)(60 * i);
        raw[4 * i + 1] = (uint8_t)(60 * i + 1);
        raw[4 * i + 2] = (uint8_t)(60 * i + 2);
        raw[4 * i + 3] = (uint8_t)(i * 50);
        memcpy(rgb + 3 * i, raw + 4 * i, 3);
    }
    png = make_png(2, 2, 8, 6, 8, raw, NULL, 0, NULL, 0, &len);
    decode_ok(png, len, 2, 2, rgb);
    free(png);

    /* grey + alpha */
    uint8_t ga[8] = {5, 0, 6, 255, 7, 128, 8, 1};
    for (int i = 0; i < 4; i++)
        rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = ga[2 * i];
    png = make_png(2, 2, 8, 4, 4, ga, NULL, 0, NULL, 0, &len);
    decode_ok(png, len, 2, 2, rgb);
    free(png);

    /* 1-bit grey scales to 0 and 255 */
    uint8_t bits[1] = {0xA0};
    static const uint8_t bw[9] = {255, 255, 255, 0, 0, 0, 255, 255, 255};
    png = make_png(3, 1, 1, 0, 1, bits, NULL, 0, NULL, 0, &len);
    decode_ok(png, len, 3, 1, bw);
    free(png);

    /* 2-bit palette with a transparent entry: expanded, the transparency ignored */
    uint8_t idx[2] = {0x18, 0x60}; /* rows 0 1 2 and 1 2 0, two bits each */
    static const int want_idx[6] = {0, 1, 2, 1, 2, 0};
    png = make_png(3, 2, 2, 3, 1, idx, plte, 9, trns, 2, &len);
    for (int i = 0; i < 6; i++)
        memcpy(rgb + 3 * i, plte + 3 * want_idx[i], 3);
    decode_ok(png, len, 3, 2, rgb);

    /* the same file cut anywhere fails; without its IEND chunk it is truncated */
    for (size_t cut = 0; cut < len; cut++)
        decode_fails(png, cut, cut ? "" : "empty file");
    decode_fails(png, len - 12, "truncated PNG");
    decode_fails(png, len - 1, "truncated PNG");
    free(png);

    /* indices past the palette are grey, i, as in Pillow (whose palettes start as a ramp) */
    uint8_t past[2] = {0xC0, 0x80}; /* rows 3 0 0 and 2 0 0 */
    static const uint8_t grey_past[18] = {3, 3, 3, 10, 20, 30, 10, 20, 30,
                                          2, 2, 2, 10, 20, 30, 10, 20, 30};
    png = make_png(3, 2, 2, 3, 1, past, plte, 6, NULL, 0, &len);
    decode_ok(png, len, 3, 2, grey_past);
    free(png);
}

static void test_other_formats(void **state)
{
    uint8_t file[256], rgb[3 * 6], grey[18];
    size_t len;
    (void)state;

    for (int i = 0; i < 18; i++)
        rgb[i] = (uint8_t)(i * 13 + 7);

    /* BMP, 24-bit, 3 x 2, bottom-up rows of BGR padded to 4 bytes */
    memset(file, 0, sizeof file);
    len = 54 + 2 * 12;
    file[0] = 'B';
    file[1] = 'M';
    put32le(file + 2, (uint32_t)len);
    put32le(file + 10, 54);
    put32le(file + 14, 40);
    put32le(file + 18, 3);
    put32le(file + 22, 2);
    put16le(file + 26, 1);
    put16le(file + 28, 24);
    for (int y = 0; y < 2; y++)
        for (int x = 0; x < 3; x++)
            for (int c = 0; c < 3; c++)
                file[54 + (1 - y) * 12 + 3 * x + c] = rgb[(y * 3 + x) * 3 + 2 - c];
    decode_ok(file, len, 3, 2, rgb);
    decode_fails(file, len - 5, "truncated BMP");

    /* PPM (P6) with a comment */
    len = (size_t)sprintf((char *)file, "P6\n# comment\n3 2\n255\n");
    memcpy(file + len, rgb, 18);
    decode_ok(file, len + 18, 3, 2, rgb);
    decode_fails(file, len + 17, "truncated PNM");
    decode_fails(file, 9, "PNM header");

    /* 16-bit PGM: big-endian samples, the high byte */
    len = (size_t)sprintf((char *)file, "P5 3 2 65535 ");
    for (int i = 0; i < 6; i++) {
        file[len + 2 * i] = rgb[i];
        file[len + 2 * i + 1] = 0xEE;
        grey[3 * i] = grey[3 * i + 1] = grey[3 * i + 2] = rgb[i];
    }
    decode_ok(file, len + 12, 3, 2, grey);

    /* PGM with maximum 15: scaled to 255 */
    len = (size_t)sprintf((char *)file, "P5 2 1 15\n");
    file[len] = 15;
    file[len + 1] = 7;
    static const uint8_t scaled[6] = {255, 255, 255, 119, 119, 119};
    decode_ok(file, len + 2, 2, 1, scaled);

    /* TGA, uncompressed true colour, 24-bit BGR, top-down */
    memset(file, 0, 18);
    file[2] = 2;
    put16le(file + 12, 3);
    put16le(file + 14, 2);
    file[16] = 24;
    file[17] = 0x20;
    for (int i = 0; i < 6; i++)
        for (int c = 0; c < 3; c++)
            file[18 + 3 * i + c] = rgb[3 * i + 2 - c];
    decode_ok(file, 18 + 18, 3, 2, rgb);
    decode_fails(file, 18 + 17, "truncated TGA");

    /* GIF: see make_gif */
    static const int pix[6] = {1, 2, 3, 0, 1, 3};
    uint8_t want[18];
    len = make_gif(file, 3, 2, 0, 0, 3, 2, pix, -1);
    for (int i = 0; i < 6; i++)
        memcpy(want + 3 * i, GIF_PALETTE + 3 * pix[i], 3);
    decode_ok(file, len, 3, 2, want);
    decode_fails(file, len - 4, "truncated GIF");

    /* a transparent pixel has its palette entry's colour, as in Pillow (stb makes it black) */
    len = make_gif(file, 3, 2, 0, 0, 3, 2, pix, 2);
    decode_ok(file, len, 3, 2, want);

    /* around a smaller first frame: index 0, or the transparent index when there is one */
    static const int inner[2] = {3, 1};
    len = make_gif(file, 3, 2, 1, 1, 2, 1, inner, -1);
    for (int i = 0; i < 6; i++)
        memcpy(want + 3 * i, GIF_PALETTE, 3);
    memcpy(want + 3 * 4, GIF_PALETTE + 3 * 3, 3);
    memcpy(want + 3 * 5, GIF_PALETTE + 3 * 1, 3);
    decode_ok(file, len, 3, 2, want);
    len = make_gif(file, 3, 2, 1, 1, 2, 1, inner, 2);
    for (int i = 0; i < 4; i++)
        memcpy(want + 3 * i, GIF_PALETTE + 3 * 2, 3);
    decode_ok(file, len, 3, 2, want);
}

/*
 * Two 5 x 4 JPEGs from libjpeg-turbo 2.1.5 (optimised Huffman tables, no JFIF header) and
 * the RGB it decodes them to: 4:2:2 baseline with a restart marker after every MCU, whose
 * odd width reaches the last-column case of 2:1 horizontal upsampling; and 4:4:0
 * progressive (chroma halved vertically), with restarts every 2 blocks.
 */
static const uint8_t JPEG_422[354] = {
    0xff, 0xd8, 0xff, 0xdb, 0x00, 0x43, 0x00, 0x08, 0x06, 0x06, 0x07, 0x06, 0x05, 0x08, 0x07, 0x07,
    0x07, 0x09, 0x09, 0x08, 0x0a, 0x0c, 0x14, 0x0d, 0x0c, 0x0b, 0x0b, 0x0c, 0x19, 0x12, 0x13, 0x0f,
    0x14, 0x1d, 0x1a, 0x1f, 0x1e, 0x1d, 0x1a, 0x1c, 0x1c, 0x20, 0x24, 0x2e, 0x27, 0x20, 0x22, 0x2c,
    0x23, 0x1c, 0x1c, 0x28, 0x37, 0x29, 0x2c, 0x30, 0x31, 0x34, 0x34, 0x34, 0x1f, 0x27, 0x39, 0x3d,
    0x38, 0x32, 0x3c, 0x2e, 0x33, 0x34, 0x32, 0xff, 0xdb, 0x00, 0x43, 0x01, 0x09, 0x09, 0x09, 0x0c,
    0x0b, 0x0c, 0x18, 0x0d, 0x0d, 0x18, 0x32, 0x21, 0x1c, 0x21, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32,
    0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32,
    0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32,
    0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0xff, 0xc0, 0x00, 0x11,
    0x08, 0x00, 0x04, 0x00, 0x05, 0x03, 0x01, 0x21, 0x00, 0x02, 0x11, 0x01, 0x03, 0x11, 0x01, 0xff,
    0xc4, 0x00, 0x15, 0x00, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0xff, 0xc4, 0x00, 0x1d, 0x10, 0x00, 0x02, 0x01, 0x05, 0x01,
    0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x03, 0x00, 0x04,
    0x06, 0x11, 0x21, 0x41, 0x05, 0xff, 0xc4, 0x00, 0x15, 0x01, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x06, 0xff, 0xc4, 0x00, 0x21,
    0x11, 0x00, 0x01, 0x02, 0x06, 0x02, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x01, 0x02, 0x04, 0x00, 0x03, 0x05, 0x11, 0x12, 0x21, 0x06, 0x31, 0x51, 0x61, 0x71, 0xff,
    0xdd, 0x00, 0x04, 0x00, 0x01, 0xff, 0xda, 0x00, 0x0c, 0x03, 0x01, 0x00, 0x02, 0x11, 0x03, 0x11,
    0x00, 0x3f, 0x00, 0x93, 0x95, 0xbc, 0xf8, 0xf9, 0xb7, 0x8b, 0xe4, 0xdd, 0x4f, 0x68, 0x1a, 0x49,
    0x11, 0xcc, 0x4f, 0xa2, 0xe2, 0x30, 0x91, 0xae, 0xfc, 0xe0, 0x5d, 0xf3, 0xd6, 0x34, 0xaa, 0x26,
    0x3c, 0x66, 0x9b, 0x50, 0x6e, 0x87, 0x4e, 0x65, 0xe4, 0xb5, 0x76, 0x75, 0xf3, 0xc7, 0xa8, 0x73,
    0x39, 0xca, 0x12, 0xb1, 0xb0, 0x36, 0x24, 0x6d, 0x29, 0x26, 0xc0, 0x90, 0x36, 0x41, 0x3d, 0x47,
    0xff, 0xd9,
};
static const uint8_t JPEG_422_RGB[60] = {
    0x0d, 0x26, 0x5e, 0x8f, 0x88, 0xbe, 0x62, 0x1f, 0x52, 0xa3, 0x5b, 0x4f, 0xdd, 0xc9, 0x46,
    0x00, 0x61, 0x72, 0x83, 0xc2, 0xe1, 0x19, 0x16, 0x4d, 0xb2, 0x77, 0xa7, 0x9f, 0x34, 0x3c,
    0x4d, 0x6d, 0x21, 0xa2, 0xcc, 0x8d, 0x38, 0x73, 0x55, 0xb7, 0xe1, 0xdf, 0x1e, 0x1a, 0x2b,
    0xd9, 0xb4, 0x9a, 0x93, 0x93, 0x89, 0x56, 0x9f, 0xb0, 0x75, 0xb9, 0xff, 0x22, 0x12, 0xa9,
};
static const uint8_t JPEG_440P[591] = {
    0xff, 0xd8, 0xff, 0xdb, 0x00, 0x43, 0x00, 0x08, 0x06, 0x06, 0x07, 0x06, 0x05, 0x08, 0x07, 0x07,
    0x07, 0x09, 0x09, 0x08, 0x0a, 0x0c, 0x14, 0x0d, 0x0c, 0x0b, 0x0b, 0x0c, 0x19, 0x12, 0x13, 0x0f,
    0x14, 0x1d, 0x1a, 0x1f, 0x1e, 0x1d, 0x1a, 0x1c, 0x1c, 0x20, 0x24, 0x2e, 0x27, 0x20, 0x22, 0x2c,
    0x23, 0x1c, 0x1c, 0x28, 0x37, 0x29, 0x2c, 0x30, 0x31, 0x34, 0x34, 0x34, 0x1f, 0x27, 0x39, 0x3d,
    0x38, 0x32, 0x3c, 0x2e, 0x33, 0x34, 0x32, 0xff, 0xdb, 0x00, 0x43, 0x01, 0x09, 0x09, 0x09, 0x0c,
    0x0b, 0x0c, 0x18, 0x0d, 0x0d, 0x18, 0x32, 0x21, 0x1c, 0x21, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32,
    0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32,
    0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32,
    0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0xff, 0xc2, 0x00, 0x11,
    0x08, 0x00, 0x04, 0x00, 0x05, 0x03, 0x01, 0x12, 0x00, 0x02, 0x11, 0x01, 0x03, 0x11, 0x01, 0xff,
    0xc4, 0x00, 0x15, 0x00, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0xff, 0xc4, 0x00, 0x15, 0x01, 0x01, 0x01, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0xff, 0xdd, 0x00,
    0x04, 0x00, 0x02, 0xff, 0xda, 0x00, 0x0c, 0x03, 0x01, 0x00, 0x02, 0x10, 0x03, 0x10, 0x00, 0x00,
    0x01, 0x91, 0x5b, 0xff, 0xc4, 0x00, 0x16, 0x10, 0x01, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x11, 0xff, 0xda, 0x00, 0x08, 0x01,
    0x01, 0x00, 0x01, 0x05, 0x02, 0x56, 0x9e, 0xff, 0xc4, 0x00, 0x19, 0x11, 0x00, 0x02, 0x03, 0x01,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x03,
    0x61, 0xb1, 0xff, 0xda, 0x00, 0x08, 0x01, 0x03, 0x01, 0x01, 0x3f, 0x01, 0xa5, 0x88, 0x76, 0x03,
    0x39, 0x3f, 0xff, 0xc4, 0x00, 0x1b, 0x11, 0x00, 0x01, 0x04, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x02, 0x03, 0x71, 0x04, 0x11, 0x13, 0xff,
    0xda, 0x00, 0x08, 0x01, 0x02, 0x01, 0x01, 0x3f, 0x01, 0xc3, 0x8d, 0x92, 0x83, 0xd0, 0x6e, 0xec,
    0xaf, 0xff, 0xc4, 0x00, 0x1a, 0x10, 0x00, 0x02, 0x02, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x21, 0x03, 0x31, 0x61, 0xff, 0xda, 0x00,
    0x08, 0x01, 0x01, 0x00, 0x06, 0x3f, 0x02, 0x51, 0x89, 0x8a, 0xd9, 0xd7, 0x2a, 0x7f, 0xff, 0xc4,
    0x00, 0x1a, 0x10, 0x01, 0x00, 0x01, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x01, 0x21, 0x00, 0x11, 0x31, 0xa1, 0xb1, 0xff, 0xda, 0x00, 0x08, 0x01, 0x01,
    0x00, 0x01, 0x3f, 0x21, 0x73, 0x1e, 0x0d, 0xd9, 0x80, 0xe6, 0xeb, 0xff, 0xda, 0x00, 0x0c, 0x03,
    0x01, 0x00, 0x02, 0x00, 0x03, 0x00, 0x00, 0x00, 0x10, 0x0f, 0xff, 0xc4, 0x00, 0x18, 0x11, 0x01,
    0x00, 0x03, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
    0x00, 0x71, 0xb1, 0xc1, 0xff, 0xda, 0x00, 0x08, 0x01, 0x03, 0x01, 0x01, 0x3f, 0x10, 0x48, 0x10,
    0x38, 0x3a, 0xad, 0xac, 0xff, 0xc4, 0x00, 0x19, 0x11, 0x01, 0x00, 0x02, 0x03, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x11, 0x91, 0x00, 0x31, 0x71, 0xff,
    0xda, 0x00, 0x08, 0x01, 0x02, 0x01, 0x01, 0x3f, 0x10, 0x60, 0x18, 0xea, 0x03, 0x67, 0x0a, 0x33,
    0xff, 0xc4, 0x00, 0x18, 0x10, 0x01, 0x00, 0x03, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x11, 0x21, 0x41, 0x00, 0xff, 0xda, 0x00, 0x08, 0x01, 0x01,
    0x00, 0x01, 0x3f, 0x10, 0x78, 0x4d, 0x1c, 0x69, 0x13, 0x32, 0x89, 0x56, 0xae, 0xff, 0xd9,
};
static const uint8_t JPEG_440P_RGB[60] = {
    0x24, 0x1c, 0x55, 0x5e, 0xa1, 0xbe, 0x72, 0x16, 0x55, 0x2c, 0x8d, 0x86, 0xff, 0xa5, 0x3f,
    0x3c, 0x45, 0x64, 0x91, 0xc0, 0xc6, 0x39, 0x07, 0x42, 0x55, 0xa7, 0xa3, 0xa9, 0x39, 0x0b,
    0x3e, 0x6b, 0x57, 0xb9, 0xbd, 0x98, 0x3c, 0x64, 0x97, 0xb0, 0xe4, 0xe2, 0x4e, 0x00, 0x42,
    0x96, 0xd3, 0xa7, 0xa4, 0x94, 0x58, 0x4c, 0x9e, 0xcd, 0x92, 0xb8, 0xb9, 0x47, 0x06, 0x84,
};

/* A 5 x 4 4:2:0 JPEG from libjpeg-turbo with its (standard) Huffman tables removed, as in
 * Motion-JPEG frames, and the RGB libjpeg-turbo decodes it to. */
static const uint8_t JPEG_NO_DHT[236] = {
    0xff, 0xd8, 0xff, 0xdb, 0x00, 0x43, 0x00, 0x08, 0x06, 0x06, 0x07, 0x06, 0x05, 0x08, 0x07, 0x07,
    0x07, 0x09, 0x09, 0x08, 0x0a, 0x0c, 0x14, 0x0d, 0x0c, 0x0b, 0x0b, 0x0c, 0x19, 0x12, 0x13, 0x0f,
    0x14, 0x1d, 0x1a, 0x1f, 0x1e, 0x1d, 0x1a, 0x1c, 0x1c, 0x20, 0x24, 0x2e, 0x27, 0x20, 0x22, 0x2c,
    0x23, 0x1c, 0x1c, 0x28, 0x37, 0x29, 0x2c, 0x30, 0x31, 0x34, 0x34, 0x34, 0x1f, 0x27, 0x39, 0x3d,
    0x38, 0x32, 0x3c, 0x2e, 0x33, 0x34, 0x32, 0xff, 0xdb, 0x00, 0x43, 0x01, 0x09, 0x09, 0x09, 0x0c,
    0x0b, 0x0c, 0x18, 0x0d, 0x0d, 0x18, 0x32, 0x21, 0x1c, 0x21, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32,
    0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32,
    0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32,
    0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0xff, 0xc0, 0x00, 0x11,
    0x08, 0x00, 0x04, 0x00, 0x05, 0x03, 0x01, 0x22, 0x00, 0x02, 0x11, 0x01, 0x03, 0x11, 0x01, 0xff,
    0xda, 0x00, 0x0c, 0x03, 0x01, 0x00, 0x02, 0x11, 0x03, 0x11, 0x00, 0x3f, 0x00, 0xc9, 0xf1, 0x5b,
    0xcf, 0xe1, 0xf3, 0x6f, 0x16, 0x93, 0x75, 0x3d, 0xa0, 0x69, 0x24, 0x47, 0x31, 0x3e, 0x0b, 0x88,
    0xc2, 0x46, 0xb9, 0xed, 0xc0, 0x5c, 0xf1, 0xdd, 0x8d, 0x14, 0x51, 0x5f, 0x47, 0x97, 0x60, 0x70,
    0xb5, 0xf0, 0xb0, 0xa9, 0x56, 0x94, 0x65, 0x26, 0xb5, 0x6d, 0x26, 0xdf, 0xcd, 0xa3, 0xa3, 0x0b,
    0x56, 0xa2, 0xa7, 0x65, 0x27, 0xa3, 0x97, 0x5f, 0xef, 0x33, 0xff, 0xd9,
};
static const uint8_t JPEG_NO_DHT_RGB[60] = {
    0x4e, 0x04, 0x63, 0xa6, 0x7b, 0xc2, 0x2b, 0x3b, 0x52, 0x6e, 0x71, 0x66, 0xfb, 0xac, 0x8b,
    0x62, 0x31, 0x69, 0xbd, 0xa8, 0xd1, 0x01, 0x27, 0x30, 0x7f, 0x95, 0x92, 0x82, 0x42, 0x40,
    0x5c, 0x5d, 0x4b, 0xa7, 0xc2, 0xb1, 0x27, 0x78, 0x69, 0xa9, 0xe5, 0xef, 0x2e, 0x0d, 0x46,
    0xb1, 0xca, 0x91, 0x73, 0xa7, 0x77, 0x48, 0xac, 0x92, 0x74, 0xc3, 0xd4, 0x2b, 0x19, 0x6f,
};

/* JPEGs decode exactly as libjpeg-turbo decodes them, whatever the chroma subsampling. */
static void test_jpeg_kernels(void **state)
{
    (void)state;
    decode_ok(JPEG_422, sizeof JPEG_422, 5, 4, JPEG_422_RGB);
    decode_ok(JPEG_440P, sizeof JPEG_440P, 5, 4, JPEG_440P_RGB);
    decode_ok(JPEG_NO_DHT, sizeof JPEG_NO_DHT, 5, 4, JPEG_NO_DHT_RGB);
    for (size_t cut = 0; cut < sizeof JPEG_440P; cut++)
        decode_fails(JPEG_440P, cut, cut ? "" : "empty file");
}

/* ---- every decoder against Pillow ------------------------------------------------------- */

/* Decodes `file` with the options and compares with the raw RGB in `expect` (w x h). */
static void expect_pixels(const char *file, const struct jc_image_opts *o, const char *expect,
                          int w, int h)
{
    struct jc_image img;
    size_t len;
    char *want = tu_read(expect, &len);

    if (jc_image_load(file, o, &img) < 0)
        fail_msg("%s", jc_errmsg());
    if (img.w != w || img.h != h || len != (size_t)w * h * 3)
        fail_msg("%s: %d x %d, Pillow %d x %d (%zu bytes)", file, img.w, img.h, w, h, len);
    if (memcmp(img.rgb, want, len)) {
        size_t i = 0;
        while (img.rgb[i] == (uint8_t)want[i])
            i++;
        fail_msg("%s: byte %zu is %d, Pillow %d", file, i, img.rgb[i], (uint8_t)want[i]);
    }
    jc_image_release(&img);
    free(want);
}

/*
 * tests/golden/decode: JPEG (every sampling, progressive, restarts, arithmetic, grey, CMYK,
 * YCCK, odd sizes), WebP (lossy, lossless, alpha, animated) and EXIF orientations, each
 * against the pixels Pillow 9.4 gives, bit for bit.
 */
static void test_decoders(void **state)
{
    char *manifest, *line, *save;
    int files = 0, rotated = 0;
    size_t len;
    (void)state;

    manifest = tu_read(TU_GOLDEN "/decode/manifest.tsv", &len);
    line = strtok_r(manifest, "\n", &save); /* the header */
    while ((line = strtok_r(NULL, "\n", &save))) {
        char name[64], ew[16], eh[16], path[160], expect[192];
        int w, h;
        if (sscanf(line, "%63s %d %d %*s %15s %15s", name, &w, &h, ew, eh) != 5)
            fail_msg("manifest line '%s'", line);
        snprintf(path, sizeof path, TU_GOLDEN "/decode/%s", name);
        snprintf(expect, sizeof expect, "%s.rgb", path);
        expect_pixels(path, NULL, expect, w, h);
        files++;
        if (strcmp(ew, "-")) {
            snprintf(expect, sizeof expect, "%s.exif.rgb", path);
            expect_pixels(path, &(struct jc_image_opts){.exif_rotate = true}, expect, atoi(ew),
                          atoi(eh));
            rotated++;
        }
    }
    free(manifest);
    assert_true(files >= 30);
    assert_int_equal(rotated, 9);

    /* an EXIF block whose IFD offset points past its end: a warning, the image as stored */
    struct jc_image img;
    assert_int_equal(jc_image_load(TU_GOLDEN "/decode/exif_bogus.jpg",
                                   &(struct jc_image_opts){.exif_rotate = true}, &img),
                     0);
    assert_non_null(img.warning);
    assert_int_equal(img.w, 24);
    jc_image_release(&img);
    assert_int_equal(jc_image_load(TU_GOLDEN "/decode/orient_6.jpg", NULL, &img), 0);
    assert_null(img.warning);
    assert_int_equal(img.w, 24); /* not rotated unless asked */
    jc_image_release(&img);
}

/* Draft decoding picks the smallest M/8 scale that keeps the short side at the target. */
static void test_draft(void **state)
{
    static const struct {
        int draft, w, h;
    } cases[] = {
        {41, 63, 41}, {40, 63, 41}, {36, 56, 36}, {11, 16, 11}, {10, 16, 11}, {1, 8, 6},
    };
    struct jc_image img;
    (void)state;

    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        struct jc_image_opts o = {.draft = cases[i].draft};
        if (jc_image_load(TU_GOLDEN "/decode/restart.jpg", &o, &img) < 0)
            fail_msg("%s", jc_errmsg());
        if (img.w != cases[i].w || img.h != cases[i].h)
            fail_msg("draft %d: %d x %d, expected %d x %d", cases[i].draft, img.w, img.h,
                     cases[i].w, cases[i].h);
        jc_image_release(&img);
    }
    /* other formats ignore it */
    assert_int_equal(
        jc_image_load(TU_GOLDEN "/images/chelsea.png", &(struct jc_image_opts){.draft = 8}, &img),
        0);
    assert_int_equal(img.w, 451);
    jc_image_release(&img);
}

/*
 * Photos of phone-camera size and shape (scripts/photo.c): the streamed decode (rows resized
 * as libjpeg makes them) gives the bytes of a full decode then a resize, in landscape and
 * portrait; and draft decoding stays within its stated fidelity of the exact pixels.
 */
static void test_photos(void **state)
{
    static const float MEAN[3] = {0.48145466f, 0.4578275f, 0.40821073f};
    static const float STD[3] = {0.26862954f, 0.26130258f, 0.27577711f};
    /* the bounds jclip-embed-image(1) states: 12-megapixel photos, and smaller ones */
    static const struct {
        int w, h;
        double mean;
        long max;
    } sizes[] = {{4032, 3024, 0.3, 4}, {3024, 4032, 0.3, 4}, {1001, 999, 0.5, 12}};
    static float a[3 * 224 * 224], b[3 * 224 * 224];
    const char *warn;
    (void)state;

    for (unsigned i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        uint8_t *jpeg;
        size_t len;
        struct jc_image img;
        assert_int_equal(jc_make_photo(TU_GOLDEN "/images", sizes[i].w, sizes[i].h, i, &jpeg, &len),
                         0);
        if (jc_image_decode_pixels(jpeg, len, "photo", NULL, 224, MEAN, STD, a, &warn) < 0 ||
            jc_image_decode(jpeg, len, "photo", NULL, &img) < 0)
            fail_msg("%s", jc_errmsg());
        assert_int_equal(jc_image_preprocess(&img, 224, MEAN, STD, b), 0);
        assert_memory_equal(a, b, sizeof a);
        jc_image_release(&img);

        /* draft: at least 448 on the short side, resampled over the full image's geometry */
        struct jc_image_opts o = {.draft = 448};
        assert_int_equal(jc_image_decode(jpeg, len, "photo", &o, &img), 0);
        assert_true(img.w >= 448 && img.h >= 448 && img.w < sizes[i].w);
        jc_image_release(&img);
        assert_int_equal(jc_image_decode_pixels(jpeg, len, "photo", &o, 224, MEAN, STD, b, &warn),
                         0);
        double sum = 0;
        long max = 0;
        for (size_t k = 0; k < sizeof a / sizeof *a; k++) {
            long d = lround(fabs(a[k] - b[k]) * STD[k / (224 * 224)] * 255);
            sum += (double)d;
            max = d > max ? d : max;
        }
        double mean = sum / (sizeof a / sizeof *a);
        if (mean > sizes[i].mean || max > sizes[i].max)
            fail_msg("%d x %d: draft mean |d| %.3f, max %ld", sizes[i].w, sizes[i].h, mean, max);
        free(jpeg);
    }
}

/* ---- errors ------------------------------------------------------------------------------- */

static void test_errors(void **state)
{
    struct jc_image img;
    size_t len;
    char *data, want[256];
    const char *path;
    (void)state;

    path = write_tmp("empty.png", "", 0);
    expect_error(jc_image_load(path, NULL, &img), JC_EFORMAT, path, "empty file");
    assert_null(img.rgb);

    path = write_tmp("notes.jpg", "just some text\n", 15);
    expect_error(jc_image_load(path, NULL, &img), JC_EFORMAT, path, "not an image");

    data = tu_read(TU_GOLDEN "/images/rocket.jpg", &len);
    path = write_tmp("half.jpg", data, len / 2);
    expect_error(jc_image_load(path, NULL, &img), JC_EFORMAT, path, "truncated JPEG");
    path = write_tmp("nearly.jpg", data, len - 2);
    expect_error(jc_image_load(path, NULL, &img), JC_EFORMAT, path, "truncated JPEG");
    /* a prefix that ends inside the headers is truncated too */
    decode_fails((const uint8_t *)data, 100, "truncated JPEG");
    free(data);

    /* a Huffman table of 4080 codes; and a fill byte before SOI, which Pillow refuses too */
    uint8_t dht[32] = {0xFF, 0xFF, 0xD8, 0xFF, 0xC4, 0x00, 0x13, 0x00};
    memset(dht + 8, 0xFF, 16);
    decode_fails(dht + 1, 24, "corrupt JPEG (bogus Huffman table definition)");
    decode_fails(dht, 25, "not an image");

    data = tu_read(TU_GOLDEN "/images/chelsea.png", &len);
    path = write_tmp("half.png", data, len / 2);
    expect_error(jc_image_load(path, NULL, &img), JC_EFORMAT, path, "truncated PNG");
    path = write_tmp("nearly.png", data, len - 1);
    expect_error(jc_image_load(path, NULL, &img), JC_EFORMAT, path, "truncated PNG");
    free(data);

    /* signature and IHDR only: the size alone decides, before anything is allocated */
    uint8_t huge[33] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    uint8_t ihdr[13] = {0};
    size_t hl = 8;
    put32be(ihdr, 100000);
    put32be(ihdr + 4, 100000);
    ihdr[8] = 8;
    ihdr[9] = 2;
    png_chunk(huge, &hl, "IHDR", ihdr, 13);
    path = write_tmp("huge.png", huge, hl);
    assert_int_equal(jc_image_load(path, NULL, &img), JC_ELIMIT);
    snprintf(want, sizeof want,
             "'%s' is 100000 x 100000 = 10000000000 pixels, more than the limit of 178956970",
             path);
    assert_string_equal(jc_errmsg(), want);
    assert_null(img.rgb);
    /* a smaller limit applies to any image */
    expect_error(jc_image_load(TU_GOLDEN "/images/synth_227x500.png",
                               &(struct jc_image_opts){.max_pixels = 1000}, &img),
                 JC_ELIMIT, "synth_227x500.png", "113500 pixels, more than the limit of 1000");
    /* a PNG with no pixels */
    put32be(ihdr, 0);
    hl = 8;
    png_chunk(huge, &hl, "IHDR", ihdr, 13);
    decode_fails(huge, hl, "no pixels");

    path = tmp_path("a-directory.png");
    assert_int_equal(mkdir(path, 0700), 0);
    expect_error(jc_image_load(path, NULL, &img), JC_EIO, path, "is a directory");
    assert_int_equal(rmdir(path), 0);

    path = tmp_path("missing.png");
    expect_error(jc_image_load(path, NULL, &img), JC_EIO, path, "No such file or directory");
}

/* Prefixes of golden files fail; flipped bytes decode or fail, never crash. */
static void test_prefixes(void **state)
{
    static const char *const files[] = {"/images/synth_1x1.png", "/images/palette_color.png",
                                        "/images/rocket.jpg", "/images/chelsea.png"};
    struct jc_image img;
    char path[128];
    size_t len;
    (void)state;

    for (size_t f = 0; f < sizeof files / sizeof *files; f++) {
        snprintf(path, sizeof path, "%s%s", TU_GOLDEN, files[f]);
        uint8_t *data = (uint8_t *)tu_read(path, &len);
        size_t step = len > 4096 ? len / 509 : 1;
        for (size_t cut = 0; cut < len; cut += step) {
            int rc = jc_image_decode(data, cut, files[f], NULL, &img);
            if (rc != JC_EFORMAT)
                fail_msg("%s cut to %zu bytes: %d %s", files[f], cut, rc, jc_errmsg());
        }
        for (size_t i = 0; i<len; i += len> 4096 ? len / 97 : 1) {
            data[i] ^= 0x5A;
            if (jc_image_decode(data, len, files[f], NULL, &img) == 0)
                jc_image_release(&img);
            data[i] ^= 0x5A;
        }
        free(data);
    }
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/jclip-test-image-XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    load_images();
    return 0;
}

static int teardown(void **state)
{
    static const char *const names[] = {"empty.png", "notes.jpg",  "half.jpg", "nearly.jpg",
                                        "half.png",  "nearly.png", "huge.png"};
    (void)state;
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        unlink(tmp_path(names[i]));
    return rmdir(tmpdir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden),         cmocka_unit_test(test_sizes_and_offsets),
        cmocka_unit_test(test_resize_weights), cmocka_unit_test(test_passes),
        cmocka_unit_test(test_speed),          cmocka_unit_test(test_png_variants),
        cmocka_unit_test(test_other_formats),  cmocka_unit_test(test_jpeg_kernels),
        cmocka_unit_test(test_errors),         cmocka_unit_test(test_prefixes),
        cmocka_unit_test(test_decoders),       cmocka_unit_test(test_draft),
        cmocka_unit_test(test_photos),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
