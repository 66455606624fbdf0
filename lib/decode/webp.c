/*
 * WebP through libwebp. Pillow 9.4 reads every WebP file, still or animated, with libwebp's
 * animation decoder in RGBA (non-premultiplied) and its first call gives the first frame
 * composed on the canvas; convert('RGB') then drops alpha. The same calls here give the
 * same pixels.
 */
#include "decode.h"

#include <stdlib.h>
#include <string.h>

#include <webp/decode.h>
#include <webp/demux.h>

static bool sniff(const uint8_t *p, size_t len)
{
    return len >= 12 && !memcmp(p, "RIFF", 4) && !memcmp(p + 8, "WEBP", 4);
}

static int size(struct jc_decode *d, long long *w, long long *h)
{
    WebPBitstreamFeatures f;
    VP8StatusCode st = WebPGetFeatures(d->p, d->len, &f);

    if (st == VP8_STATUS_NOT_ENOUGH_DATA)
        return jc_fail(JC_EFORMAT, "cannot %s '%s': truncated WebP header", d->verb, d->name);
    if (st != VP8_STATUS_OK)
        return jc_fail(JC_EFORMAT, "cannot %s '%s': corrupt WebP header", d->verb, d->name);
    *w = f.width;
    *h = f.height;
    return 0;
}

/* The EXIF chunk, as Pillow's getexif() reads it for exif_transpose. */
static void read_orientation(struct jc_decode *d, const WebPDemuxer *demux)
{
    WebPChunkIterator it;

    if (WebPDemuxGetChunk(demux, "EXIF", 1, &it)) {
        d->orientation = jc_exif_orientation(d, it.chunk.bytes, it.chunk.size);
        WebPDemuxReleaseChunkIterator(&it);
    }
}

static int decode(struct jc_decode *d, struct jc_image *img)
{
    WebPAnimDecoderOptions opt;
    WebPData data = {d->p, d->len};
    WebPAnimDecoder *dec = NULL;
    WebPAnimInfo info;
    uint8_t *rgba, *rgb = NULL;
    long long w, h;
    int ts, rc;

    /* the header's size first: the decoder allocates its canvas when it is made */
    if ((rc = size(d, &w, &h)) < 0 || (rc = jc_decode_limits(d, w, h)) < 0)
        return rc;
    if (!WebPAnimDecoderOptionsInit(&opt))
        return jc_fail(JC_EINVAL, "cannot decode '%s': libwebp version mismatch", d->name);
    opt.color_mode = MODE_RGBA;
    opt.use_threads = 0;
    /* NULL also when the data end early: the demuxer wants the whole file */
    if (!(dec = WebPAnimDecoderNew(&data, &opt)) || !WebPAnimDecoderGetInfo(dec, &info)) {
        rc = jc_fail(JC_EFORMAT, "cannot decode '%s': corrupt or truncated WebP", d->name);
        goto out_delete;
    }
    if ((long long)info.canvas_width != w || (long long)info.canvas_height != h) {
        rc = jc_fail(JC_EFORMAT,
                     "cannot decode '%s': corrupt WebP (canvas %u x %u, header says %lld x %lld)",
                     d->name, info.canvas_width, info.canvas_height, w, h);
        goto out_delete;
    }
    if (d->exif)
        read_orientation(d, WebPAnimDecoderGetDemuxer(dec));
    if (!WebPAnimDecoderGetNext(dec, &rgba, &ts)) {
        rc = jc_fail(JC_EFORMAT, "cannot decode '%s': corrupt WebP image data", d->name);
        goto out_delete;
    }
    size_t n = (size_t)w * (size_t)h;
    if (!(rgb = jc_malloc(n * 3, "a WebP's pixels"))) {
        rc = JC_ENOMEM;
        goto out_delete;
    }
    for (size_t i = 0; i < n; i++)
        memcpy(rgb + 3 * i, rgba + 4 * i, 3);
    img->w = (int)w;
    img->h = (int)h;
    img->rgb = rgb;
out_delete:
    WebPAnimDecoderDelete(dec);
    return rc;
}

const struct jc_decoder jc_decoder_webp = {"WebP", sniff, size, decode};
