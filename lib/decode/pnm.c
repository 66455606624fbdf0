/*
 * Binary PGM (P5) and PPM (P6), decoded here: stb 2.27 reads 16-bit samples in the wrong
 * byte order and ignores the maximum value. Samples go to 8 bits as for PNG, the high byte,
 * when the maximum is 65535, and are otherwise scaled by 255 / maxval, rounded (the identity
 * for the usual 255).
 */
#include "decode.h"

#include <limits.h>
#include <stdlib.h>

struct pnm {
    long long w, h;
    unsigned maxval;
    size_t data; /* offset of the first sample */
    int channels;
};

static bool sniff(const uint8_t *p, size_t len)
{
    return len >= 2 && p[0] == 'P' && (p[1] == '5' || p[1] == '6');
}

/* Reads one header number after whitespace and comments; -1 if there is none. */
static long long number(const uint8_t *p, size_t len, size_t *pos)
{
    long long v = 0;

    for (;;) {
        while (*pos < len && (p[*pos] == ' ' || (p[*pos] >= '\t' && p[*pos] <= '\r')))
            (*pos)++;
        if (*pos < len && p[*pos] == '#') {
            while (*pos < len && p[*pos] != '\n' && p[*pos] != '\r')
                (*pos)++;
            continue;
        }
        break;
    }
    if (*pos >= len || p[*pos] < '0' || p[*pos] > '9')
        return -1;
    while (*pos < len && p[*pos] >= '0' && p[*pos] <= '9') {
        v = v * 10 + (p[*pos] - '0');
        if (v > INT_MAX)
            return -1;
        (*pos)++;
    }
    return v;
}

/* The header: 0 with *h filled, or a code with the message set. */
static int header(const struct jc_decode *d, struct pnm *h)
{
    size_t pos = 2;
    long long w = number(d->p, d->len, &pos);
    long long ht = number(d->p, d->len, &pos);
    long long maxv = number(d->p, d->len, &pos);

    if (w < 0 || ht < 0 || maxv < 0)
        return jc_fail(JC_EFORMAT, "cannot %s '%s': %s", d->verb, d->name,
                       pos >= d->len ? "truncated PNM header" : "corrupt PNM header");
    if (maxv == 0 || maxv > 65535)
        return jc_fail(JC_EFORMAT,
                       "cannot %s '%s': corrupt PNM header (maximum value not 1 to 65535)", d->verb,
                       d->name);
    h->w = w;
    h->h = ht;
    h->maxval = (unsigned)maxv;
    h->data = pos + 1; /* one byte of whitespace, then the samples */
    h->channels = d->p[1] == '6' ? 3 : 1;
    return 0;
}

static int size(struct jc_decode *d, long long *w, long long *h)
{
    struct pnm hd;
    int rc = header(d, &hd);

    *w = hd.w;
    *h = hd.h;
    return rc;
}

static int decode(struct jc_decode *d, struct jc_image *img)
{
    struct pnm hd;
    int rc;

    if ((rc = header(d, &hd)) < 0 || (rc = jc_decode_limits(d, hd.w, hd.h)) < 0)
        return rc;
    size_t n = (size_t)hd.w * (size_t)hd.h, ch = (size_t)hd.channels;
    unsigned long long need = hd.data + (unsigned long long)n * ch * (hd.maxval > 255 ? 2 : 1);
    if (need > d->len)
        return jc_fail(JC_EFORMAT, "cannot decode '%s': truncated PNM (%zu of %llu bytes)", d->name,
                       d->len, need);

    unsigned maxv = hd.maxval;
    const uint8_t *s = d->p + hd.data;
    uint8_t *rgb = jc_malloc(n * 3, "a PNM's pixels");
    if (!rgb)
        return JC_ENOMEM;
    for (size_t i = 0; i < n * ch; i++) {
        unsigned v = maxv > 255 ? (unsigned)s[2 * i] << 8 | s[2 * i + 1] : s[i];
        if (v > maxv)
            v = maxv;
        if (maxv == 65535)
            v >>= 8;
        else if (maxv != 255)
            v = (v * 255 + maxv / 2) / maxv;
        if (ch == 3)
            rgb[i] = (uint8_t)v;
        else
            rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = (uint8_t)v;
    }
    img->w = (int)hd.w;
    img->h = (int)hd.h;
    img->rgb = rgb;
    return 0;
}

const struct jc_decoder jc_decoder_pnm = {"PNM", sniff, size, decode};
