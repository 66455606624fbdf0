#include "internal.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

size_t jc_npy_header(char *buf, size_t cap, size_t rows, size_t cols)
{
    char dict[128];
    int n = snprintf(dict, sizeof dict,
                     "{'descr': '<f4', 'fortran_order': False, 'shape': (%zu, %zu), }", rows, cols);
    /* magic(6) + version(2) + len(2) + dict + padding + '\n', total a multiple of 64 */
    size_t total = 10 + (size_t)n + 1;
    total = (total + 63) / 64 * 64;
    if (total > cap)
        return 0;
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (char)((total - 10) & 0xff);
    buf[9] = (char)((total - 10) >> 8);
    memcpy(buf + 10, dict, (size_t)n);
    memset(buf + 10 + n, ' ', total - 10 - (size_t)n - 1);
    buf[total - 1] = '\n';
    return total;
}

/* The header is padded to this size so the final row count can be written in place. */
#define HEADER_BYTES 128

struct jc_npy_out {
    char *path, *tmp;
    FILE *f;
    size_t cols, rows;
};

int jc_npy_out_open(struct jc_npy_out **out, const char *path, size_t cols)
{
    struct jc_npy_out *o = jc_calloc(1, sizeof *o, "a .npy writer");
    char hdr[HEADER_BYTES];
    size_t plen = strlen(path);

    *out = NULL;
    if (!o)
        return JC_ENOMEM;
    o->cols = cols;
    o->path = strdup(path);
    o->tmp = jc_malloc(plen + 32, "a file name");
    if (!o->path || !o->tmp) {
        free(o->path);
        free(o->tmp);
        free(o);
        return jc_fail(JC_ENOMEM, "out of memory");
    }
    snprintf(o->tmp, plen + 32, "%s.tmp.%ld", path, (long)getpid());
    if (!(o->f = fopen(o->tmp, "wb"))) {
        int rc = jc_fail(JC_EIO, "cannot create '%s': %s", o->tmp, strerror(errno));
        free(o->path);
        free(o->tmp);
        free(o);
        return rc;
    }
    jc_npy_header(hdr, sizeof hdr, 0, cols);
    if (fwrite(hdr, 1, HEADER_BYTES, o->f) != HEADER_BYTES) {
        int rc = jc_fail(JC_EIO, "cannot write '%s': %s", o->tmp, strerror(errno));
        jc_npy_out_abort(o);
        return rc;
    }
    *out = o;
    return 0;
}

int jc_npy_out_append(struct jc_npy_out *o, const float *rows, size_t n)
{
    if (fwrite(rows, sizeof *rows * o->cols, n, o->f) != n)
        return jc_fail(JC_EIO, "cannot write '%s': %s", o->tmp, strerror(errno));
    o->rows += n;
    return 0;
}

const char *jc_npy_out_tmpname(const struct jc_npy_out *o)
{
    return o->tmp;
}

void jc_npy_out_abort(struct jc_npy_out *o)
{
    if (!o)
        return;
    if (o->f)
        fclose(o->f);
    unlink(o->tmp);
    free(o->path);
    free(o->tmp);
    free(o);
}

int jc_npy_out_commit(struct jc_npy_out *o)
{
    char hdr[HEADER_BYTES];
    int rc = 0;

    if (jc_npy_header(hdr, sizeof hdr, o->rows, o->cols) != HEADER_BYTES) {
        rc = jc_fail(JC_ELIMIT, "'%s': too many rows for the header", o->path);
        goto out_abort;
    }
    if (fflush(o->f) != 0 || fseek(o->f, 0, SEEK_SET) != 0 ||
        fwrite(hdr, 1, HEADER_BYTES, o->f) != HEADER_BYTES || fflush(o->f) != 0 ||
        fsync(fileno(o->f)) != 0) {
        rc = jc_fail(JC_EIO, "cannot write '%s': %s", o->tmp, strerror(errno));
        goto out_abort;
    }
    FILE *f = o->f;
    o->f = NULL;
    if (fclose(f) != 0) {
        rc = jc_fail(JC_EIO, "cannot write '%s': %s", o->tmp, strerror(errno));
        goto out_abort;
    }
    if (rename(o->tmp, o->path) != 0) {
        rc = jc_fail(JC_EIO, "cannot rename '%s' to '%s': %s", o->tmp, o->path, strerror(errno));
        goto out_abort;
    }
    free(o->path);
    free(o->tmp);
    free(o);
    return 0;
out_abort:
    jc_npy_out_abort(o);
    return rc;
}

int jc_npy_write(const char *path, const float *data, size_t rows, size_t cols)
{
    struct jc_npy_out *o;
    int rc = jc_npy_out_open(&o, path, cols);
    if (rc < 0)
        return rc;
    if ((rc = jc_npy_out_append(o, data, rows)) < 0) {
        jc_npy_out_abort(o);
        return rc;
    }
    return jc_npy_out_commit(o);
}

/* Finds `key` in the header dict and returns the text after its colon, or NULL. */
static const char *dict_value(const char *dict, const char *key)
{
    const char *p = strstr(dict, key);
    if (!p)
        return NULL;
    p = strchr(p + strlen(key), ':');
    if (!p)
        return NULL;
    p++;
    while (*p == ' ')
        p++;
    return p;
}

int jc_npy_read(const char *path, float **data, size_t *rows, size_t *cols)
{
    char *buf;
    size_t len, hlen, off;
    const char *v;
    int rc;

    *data = NULL;
    if ((rc = jc_read_file(path, (size_t)1 << 36, &buf, &len)) < 0)
        return rc;
    if (len < 10 || memcmp(buf, "\x93NUMPY", 6)) {
        rc = jc_fail(JC_EFORMAT, "'%s' is not a .npy file", path);
        goto out_free;
    }
    if (buf[6] == 1) {
        hlen = (unsigned char)buf[8] | (size_t)(unsigned char)buf[9] << 8;
        off = 10;
    } else if ((buf[6] == 2 || buf[6] == 3) && len >= 12) {
        hlen = (unsigned char)buf[8] | (size_t)(unsigned char)buf[9] << 8 |
               (size_t)(unsigned char)buf[10] << 16 | (size_t)(unsigned char)buf[11] << 24;
        off = 12;
    } else {
        rc = jc_fail(JC_EFORMAT, "'%s': unsupported .npy version %d", path, buf[6]);
        goto out_free;
    }
    if (hlen > len - off) {
        rc = jc_fail(JC_EFORMAT, "'%s': truncated .npy header", path);
        goto out_free;
    }
    char *dict = buf + off;
    char save = dict[hlen];
    dict[hlen] = '\0';
    bool f4 = (v = dict_value(dict, "'descr'")) && !strncmp(v, "'<f4'", 5);
    bool c_order = (v = dict_value(dict, "'fortran_order'")) && !strncmp(v, "False", 5);
    const char *shape = dict_value(dict, "'shape'");
    unsigned long long d[8] = {0};
    int nd = -1;
    if (shape && *shape == '(') {
        const char *p = shape + 1;
        nd = 0;
        while (nd < 8) {
            char *end;
            while (*p == ' ')
                p++;
            if (*p == ')')
                break;
            d[nd] = strtoull(p, &end, 10);
            if (end == p) {
                nd = -1;
                break;
            }
            nd++;
            p = end;
            while (*p == ' ')
                p++;
            if (*p == ',')
                p++;
        }
    }
    dict[hlen] = save;
    if (!f4 || !c_order || nd < 1 || nd > 7) {
        rc = jc_fail(JC_EFORMAT, "'%s' is not a little-endian float32 C-order .npy", path);
        goto out_free;
    }
    *rows = nd == 1 ? 1 : d[0];
    *cols = nd == 1 ? d[0] : d[1];
    for (int i = 2; i < nd; i++) {
        if (d[i] && *cols > SIZE_MAX / 4 / d[i]) {
            rc = jc_fail(JC_EFORMAT, "'%s': shape too large", path);
            goto out_free;
        }
        *cols *= d[i];
    }
    size_t body = len - off - hlen;
    if (*cols && *rows > body / 4 / *cols) {
        rc =
            jc_fail(JC_EFORMAT, "'%s': truncated: shape needs more data than the file holds", path);
        goto out_free;
    }
    size_t count = *rows * *cols;
    if (body != count * 4) {
        rc = jc_fail(JC_EFORMAT, "'%s': %zu bytes of data for %zu values", path, body, count);
        goto out_free;
    }
    if (!(*data = jc_malloc(count * 4, "a .npy array"))) {
        rc = JC_ENOMEM;
        goto out_free;
    }
    memcpy(*data, buf + off + hlen, count * 4);
out_free:
    free(buf);
    return rc;
}
