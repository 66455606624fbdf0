/*
 * HEIC and AVIF through libheif: the primary image, with the rotation and mirroring its
 * container asks for (as the HEIF standard requires; EXIF orientation is not applied on top),
 * as libheif's 8-bit interleaved RGB. Alpha is dropped, as convert('RGB') drops it.
 *
 * libheif is loaded when the first file with an ISO-BMFF "ftyp" box is seen, not linked:
 * with the codecs it pulls in (libde265, x265, aom, dav1d, libstdc++) it took about 11 ms of
 * every process start, whatever the command, measured on a 2-core AMD EPYC.
 */
#include "decode.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dav1d/dav1d.h>
#include <dav1d/version.h>
#include <dlfcn.h>
#include <libheif/heif.h>

#define LIBHEIF_SONAME "libheif.so.1"

/* The libheif functions used here, by the names they have there. */
static struct {
    __typeof__(heif_check_filetype) *check_filetype;
    __typeof__(heif_context_alloc) *context_alloc;
    __typeof__(heif_context_free) *context_free;
    __typeof__(heif_context_get_primary_image_handle) *context_get_primary_image_handle;
    __typeof__(heif_context_read_from_memory_without_copy) *context_read_from_memory_without_copy;
    __typeof__(heif_context_set_maximum_image_size_limit) *context_set_maximum_image_size_limit;
    __typeof__(heif_decode_image) *decode_image;
    __typeof__(heif_image_get_height) *image_get_height;
    __typeof__(heif_image_get_plane_readonly) *image_get_plane_readonly;
    __typeof__(heif_image_get_width) *image_get_width;
    __typeof__(heif_image_handle_get_height) *image_handle_get_height;
    __typeof__(heif_image_handle_get_width) *image_handle_get_width;
    __typeof__(heif_image_handle_release) *image_handle_release;
    __typeof__(heif_image_release) *image_release;
} heif;

static pthread_once_t heif_once = PTHREAD_ONCE_INIT;
static char heif_error[300]; /* why libheif cannot be loaded, or "" */

static void heif_load(void)
{
    void *h = dlopen(LIBHEIF_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *why = dlerror();
        snprintf(heif_error, sizeof heif_error, "%s", why ? why : "dlopen failed");
        return;
    }
#define SYM(f)                                                                                     \
    if (!(*(void **)&heif.f = dlsym(h, "heif_" #f))) {                                             \
        snprintf(heif_error, sizeof heif_error, "%s has no heif_" #f, LIBHEIF_SONAME);             \
        return;                                                                                    \
    }
    SYM(check_filetype)
    SYM(context_alloc)
    SYM(context_free)
    SYM(context_get_primary_image_handle)
    SYM(context_read_from_memory_without_copy)
    SYM(context_set_maximum_image_size_limit)
    SYM(decode_image)
    SYM(image_get_height)
    SYM(image_get_plane_readonly)
    SYM(image_get_width)
    SYM(image_handle_get_height)
    SYM(image_handle_get_width)
    SYM(image_handle_release)
    SYM(image_release)
#undef SYM
}

static bool heif_ready(void)
{
    pthread_once(&heif_once, heif_load);
    return !*heif_error;
}

/*
 * libheif decodes AVIF with dav1d and leaves dav1d's logger at its default, which prints
 * what it finds wrong in a damaged file ("Error parsing OBU data") straight to stderr, beside
 * jclip's own one-line error. libheif has no setting for it, so jclip defines dav1d's
 * settings constructor itself: the executable exports it (the Makefile says so), libheif's
 * call binds to it, and it takes dav1d's defaults from the libdav1d libheif loaded, with the
 * logger off. Errors still come back through libheif.
 */
#define LIBDAV1D_SONAME "libdav1d.so." JC_STR(DAV1D_API_VERSION_MAJOR)
#define JC_STR(x)       JC_STR_(x)
#define JC_STR_(x)      #x

static void (*dav1d_defaults)(Dav1dSettings *);
static pthread_once_t dav1d_once = PTHREAD_ONCE_INIT;

static void dav1d_find(void)
{
    /* libheif's dav1d, already loaded where the global scope does not see it */
    void *h = dlopen(LIBDAV1D_SONAME, RTLD_NOW | RTLD_NOLOAD);
    *(void **)&dav1d_defaults = dlsym(h ? h : RTLD_NEXT, "dav1d_default_settings");
    if (h)
        dlclose(h); /* drops the reference NOLOAD took; libheif's keeps it loaded */
}

DAV1D_API void dav1d_default_settings(Dav1dSettings *s)
{
    pthread_once(&dav1d_once, dav1d_find);
    if (dav1d_defaults)
        dav1d_defaults(s);
    else /* cannot happen while libheif links dav1d; dav1d_open then refuses the zeros */
        memset(s, 0, sizeof *s);
    s->logger.callback = NULL;
}

static bool sniff(const uint8_t *p, size_t len)
{
    if (len < 12 || memcmp(p + 4, "ftyp", 4))
        return false;
    if (!heif_ready()) /* claimed, so the error says why it cannot be read */
        return true;
    enum heif_filetype_result r = heif.check_filetype(p, len > 64 ? 64 : (int)len);
    return r == heif_filetype_yes_supported || r == heif_filetype_yes_unsupported;
}

/* "corrupt HEIF (libheif's message)", or truncated when libheif says the data end early */
static int fail(const struct jc_decode *d, struct heif_error e)
{
    /* libheif's messages may end in a newline or hold several lines */
    char msg[256];
    snprintf(msg, sizeof msg, "%s", e.message ? e.message : "unknown error");
    for (char *c = msg; *c; c++)
        if (*c == '\n' || *c == '\r')
            *c = ' ';
    for (size_t n = strlen(msg); n && msg[n - 1] == ' ';)
        msg[--n] = '\0';
    struct heif_error err = {e.code, e.subcode, msg};

    if (err.subcode == heif_suberror_Security_limit_exceeded)
        return jc_fail(JC_ELIMIT, "cannot %s '%s': HEIF image over libheif's size limits (%s)",
                       d->verb, d->name, err.message);
    if (err.code == heif_error_Memory_allocation_error)
        return jc_fail(JC_ENOMEM, "cannot %s '%s': out of memory", d->verb, d->name);
    if (err.code == heif_error_Invalid_input && err.subcode == heif_suberror_End_of_data)
        return jc_fail(JC_EFORMAT, "cannot %s '%s': truncated HEIF (%s)", d->verb, d->name,
                       err.message);
    if (err.code == heif_error_Unsupported_feature || err.code == heif_error_Unsupported_filetype)
        return jc_fail(JC_EFORMAT, "cannot %s '%s': unsupported HEIF (%s)", d->verb, d->name,
                       err.message);
    return jc_fail(JC_EFORMAT, "cannot %s '%s': corrupt HEIF (%s)", d->verb, d->name, err.message);
}

/* The context and its primary image; on failure the error is recorded and ctx freed. */
static int open_primary(const struct jc_decode *d, struct heif_context **ctx,
                        struct heif_image_handle **handle)
{
    struct heif_error err;

    *handle = NULL;
    *ctx = NULL;
    if (!heif_ready())
        return jc_fail(JC_EIO, "cannot %s '%s': HEIF and AVIF need libheif (%s)", d->verb, d->name,
                       heif_error);
    if (!(*ctx = heif.context_alloc()))
        return jc_fail(JC_ENOMEM, "cannot %s '%s': out of memory", d->verb, d->name);
    /* libheif's own guard against huge headers, beside the pixel limit checked after */
    heif.context_set_maximum_image_size_limit(*ctx, 1 << 16);
    err = heif.context_read_from_memory_without_copy(*ctx, d->p, d->len, NULL);
    if (err.code == heif_error_Ok)
        err = heif.context_get_primary_image_handle(*ctx, handle);
    if (err.code != heif_error_Ok) {
        int rc = fail(d, err); /* the message lives in the context */
        heif.context_free(*ctx);
        *ctx = NULL;
        return rc;
    }
    return 0;
}

static int size(struct jc_decode *d, long long *w, long long *h)
{
    struct heif_context *ctx;
    struct heif_image_handle *handle;
    int rc;

    if ((rc = open_primary(d, &ctx, &handle)) < 0)
        return rc;
    *w = heif.image_handle_get_width(handle);
    *h = heif.image_handle_get_height(handle);
    heif.image_handle_release(handle);
    heif.context_free(ctx);
    return 0;
}

static int decode(struct jc_decode *d, struct jc_image *img)
{
    struct heif_context *ctx;
    struct heif_image_handle *handle;
    struct heif_image *him = NULL;
    struct heif_error err;
    uint8_t *rgb = NULL;
    const uint8_t *plane;
    int rc, stride;

    if ((rc = open_primary(d, &ctx, &handle)) < 0)
        return rc;
    long long w = heif.image_handle_get_width(handle), h = heif.image_handle_get_height(handle);
    if ((rc = jc_decode_limits(d, w, h)) < 0)
        goto out_release;
    err = heif.decode_image(handle, &him, heif_colorspace_RGB, heif_chroma_interleaved_RGB, NULL);
    if (err.code != heif_error_Ok) {
        rc = fail(d, err);
        goto out_release;
    }
    plane = heif.image_get_plane_readonly(him, heif_channel_interleaved, &stride);
    if (!plane || heif.image_get_width(him, heif_channel_interleaved) != w ||
        heif.image_get_height(him, heif_channel_interleaved) != h) {
        rc = jc_fail(JC_EFORMAT,
                     "cannot decode '%s': corrupt HEIF (no RGB image of the header's size)",
                     d->name);
        goto out_release;
    }
    if (!(rgb = jc_malloc((size_t)w * (size_t)h * 3, "a HEIF image's pixels"))) {
        rc = JC_ENOMEM;
        goto out_release;
    }
    for (long long y = 0; y < h; y++)
        memcpy(rgb + (size_t)y * (size_t)w * 3, plane + (size_t)y * (size_t)stride, (size_t)w * 3);
    img->w = (int)w;
    img->h = (int)h;
    img->rgb = rgb;
out_release:
    heif.image_release(him);
    heif.image_handle_release(handle);
    heif.context_free(ctx);
    return rc;
}

const struct jc_decoder jc_decoder_heif = {"HEIF", sniff, size, decode};
