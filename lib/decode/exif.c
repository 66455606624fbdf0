/*
 * The EXIF Orientation tag through libexif. Its loader checks every offset against the
 * block and skips what it cannot use, mostly in silence: an IFD0 offset past the block's end
 * leaves IFD0 empty with no more than a debug line. So a block that libexif logged as
 * corrupt, or whose IFD0 came out empty (every camera writes some tags there), is reported
 * as a warning, and the image is used as stored.
 */
#include "decode.h"

#include <stdlib.h>
#include <string.h>

#include <libexif/exif-data.h>
#include <libexif/exif-log.h>

struct log_state {
    bool corrupt;
};

static void on_log(ExifLog *log, ExifLogCode code, const char *domain, const char *fmt,
                   va_list args, void *data)
{
    (void)log;
    (void)domain;
    (void)fmt;
    (void)args;
    if (code == EXIF_LOG_CODE_CORRUPT_DATA || code == EXIF_LOG_CODE_NO_MEMORY)
        ((struct log_state *)data)->corrupt = true;
}

int jc_exif_orientation(struct jc_decode *d, const uint8_t *exif, size_t len)
{
    static const char corrupt[] = "unreadable EXIF data, orientation ignored";
    struct log_state st = {false};
    uint8_t *copy = NULL;
    int orientation = 1;

    /* libexif finds the TIFF data after the "Exif\0\0" of a JPEG APP1 segment; a WebP EXIF
     * chunk usually starts with the TIFF header itself */
    if (len >= 4 && (!memcmp(exif, "II*\0", 4) || !memcmp(exif, "MM\0*", 4))) {
        if (!(copy = malloc(len + 6)))
            return 1;
        memcpy(copy, "Exif\0\0", 6);
        memcpy(copy + 6, exif, len);
        exif = copy;
        len += 6;
    }
    if (len > 0xFFFFFFFFu)
        len = 0xFFFFFFFFu;

    ExifData *ed = exif_data_new();
    ExifLog *log = exif_log_new();
    if (!ed || !log) {
        d->warning = corrupt;
        goto out_free;
    }
    exif_log_set_func(log, on_log, &st);
    exif_data_log(ed, log);
    /* read the block as it is: no tags added or corrected */
    exif_data_unset_option(ed, EXIF_DATA_OPTION_FOLLOW_SPECIFICATION);
    exif_data_load_data(ed, exif, (unsigned int)len);

    ExifEntry *e = exif_content_get_entry(ed->ifd[EXIF_IFD_0], EXIF_TAG_ORIENTATION);
    if (e && e->format == EXIF_FORMAT_SHORT && e->components >= 1 && e->data && e->size >= 2) {
        int v = exif_get_short(e->data, exif_data_get_byte_order(ed));
        if (v >= 1 && v <= 8)
            orientation = v;
    } else if (st.corrupt || !ed->ifd[EXIF_IFD_0] || !ed->ifd[EXIF_IFD_0]->count) {
        d->warning = corrupt;
    }
out_free:
    if (ed)
        exif_data_unref(ed);
    if (log)
        exif_log_unref(log);
    free(copy);
    return orientation;
}
