#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

size_t jc_npy_header(char *buf, size_t cap, size_t rows, size_t cols, const size_t *inner,
                     int n_inner)
{
    char dict[256];
    int n =
        snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (%zu", rows);
    if (!inner) {
        inner = &cols;
        n_inner = 1;
    }
    for (int i = 0; i < n_inner && n < (int)sizeof dict; i++)
        n += snprintf(dict + n, sizeof dict - n, ", %zu", inner[i]);
    if (n < (int)sizeof dict)
        n += snprintf(dict + n, sizeof dict - n, "), }");
    if (n >= (int)sizeof dict)
        return 0;
    /* magic(6) + version(2) + len(2) + dict + padding + '\n', total a multiple of 64 */
    size_t total = (10 + (size_t)n + 1 + 63) / 64 * 64;
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

/*
 * The header is written first with the row count 0 and rewritten at commit; its length is
 * fixed when the writer opens (room for 20 digits), so the rewrite fits in place.
 */
struct jc_npy_out {
    struct jc_afile file;
    size_t inner[8];
    int n_inner;
    size_t cols, rows, header_len;
};

/* The header for `rows`, padded with spaces to the length reserved at open. */
static void padded_header(const struct jc_npy_out *o, size_t rows, char *out)
{
    char hdr[512];
    size_t n = jc_npy_header(hdr, sizeof hdr, rows, 0, o->inner, o->n_inner);
    memcpy(out, hdr, n - 1);
    memset(out + n - 1, ' ', o->header_len - n);
    out[o->header_len - 1] = '\n';
    out[8] = (char)((o->header_len - 10) & 0xff);
    out[9] = (char)((o->header_len - 10) >> 8);
}

int jc_npy_out_open_nd(struct jc_npy_out **out, const char *path, const size_t *inner, int n_inner)
{
    struct jc_npy_out *o;
    char hdr[512];
    int rc;

    *out = NULL;
    if (n_inner < 1 || n_inner > 8)
        return jc_fail(JC_EINVAL, "'%s': unsupported .npy shape", path);
    if (!(o = jc_calloc(1, sizeof *o, "a .npy writer")))
        return JC_ENOMEM;
    o->n_inner = n_inner;
    o->cols = 1;
    for (int i = 0; i < n_inner; i++) {
        o->inner[i] = inner[i];
        o->cols *= inner[i];
    }
    /* Sized for the largest row count, then padded with spaces for the real one. */
    o->header_len = jc_npy_header(hdr, sizeof hdr, SIZE_MAX, 0, o->inner, n_inner);
    padded_header(o, 0, hdr);
    if ((rc = jc_afile_open(&o->file, path)) < 0) {
        free(o);
        return rc;
    }
    if (fwrite(hdr, 1, o->header_len, o->file.f) != o->header_len) {
        rc = jc_fail(JC_EIO, "cannot write '%s': %s", o->file.tmp, strerror(errno));
        jc_npy_out_abort(o);
        return rc;
    }
    *out = o;
    return 0;
}

int jc_npy_out_open(struct jc_npy_out **o, const char *path, size_t cols)
{
    return jc_npy_out_open_nd(o, path, &cols, 1);
}

int jc_npy_out_append(struct jc_npy_out *o, const float *rows, size_t n)
{
    if (n && fwrite(rows, sizeof *rows * o->cols, n, o->file.f) != n)
        return jc_fail(JC_EIO, "cannot write '%s': %s", o->file.tmp, strerror(errno));
    o->rows += n;
    return 0;
}

void jc_npy_out_abort(struct jc_npy_out *o)
{
    if (!o)
        return;
    jc_afile_abort(&o->file);
    free(o);
}

int jc_npy_out_commit(struct jc_npy_out *o)
{
    char big[512];
    int rc;

    padded_header(o, o->rows, big);
    if (fflush(o->file.f) != 0 || fseek(o->file.f, 0, SEEK_SET) != 0 ||
        fwrite(big, 1, o->header_len, o->file.f) != o->header_len) {
        rc = jc_fail(JC_EIO, "cannot write '%s': %s", o->file.tmp, strerror(errno));
        jc_npy_out_abort(o);
        return rc;
    }
    rc = jc_afile_commit(&o->file);
    free(o);
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

/*
 * Checks the header of a .npy of len bytes at buf: *off gets the offset of the values, which
 * fill the rest of the file exactly.
 */
static int parse(const char *path, char *buf, size_t len, size_t *off_data, size_t *rows,
                 size_t *cols)
{
    size_t hlen, off;
    const char *v;

    if (len < 10 || memcmp(buf, "\x93NUMPY", 6))
        return jc_fail(JC_EFORMAT, "'%s' is not a .npy file", path);
    if (buf[6] == 1) {
        hlen = (unsigned char)buf[8] | (size_t)(unsigned char)buf[9] << 8;
        off = 10;
    } else if ((buf[6] == 2 || buf[6] == 3) && len >= 12) {
        hlen = (unsigned char)buf[8] | (size_t)(unsigned char)buf[9] << 8 |
               (size_t)(unsigned char)buf[10] << 16 | (size_t)(unsigned char)buf[11] << 24;
        off = 12;
    } else {
        return jc_fail(JC_EFORMAT, "'%s': unsupported .npy version %d", path, buf[6]);
    }
    if (hlen > len - off)
        return jc_fail(JC_EFORMAT, "'%s': truncated .npy header", path);
    /* the dict is parsed from a NUL-terminated copy: the mapping is read-only */
    char *dict = jc_malloc(hlen + 1, "a .npy header");
    if (!dict)
        return JC_ENOMEM;
    memcpy(dict, buf + off, hlen);
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
    free(dict);
    if (!f4 || !c_order || nd < 1 || nd > 7)
        return jc_fail(JC_EFORMAT, "'%s' is not a little-endian float32 C-order .npy", path);
    *rows = nd == 1 ? 1 : d[0];
    *cols = nd == 1 ? d[0] : d[1];
    for (int i = 2; i < nd; i++) {
        if (d[i] && *cols > SIZE_MAX / 4 / d[i])
            return jc_fail(JC_EFORMAT, "'%s': shape too large", path);
        *cols *= d[i];
    }
    size_t body = len - off - hlen;
    if (*cols && *rows > body / 4 / *cols)
        return jc_fail(JC_EFORMAT, "'%s': truncated: shape needs more data than the file holds",
                       path);
    size_t count = *rows * *cols;
    if (body != count * 4)
        return jc_fail(JC_EFORMAT, "'%s': %zu bytes of data for %zu values", path, body, count);
    *off_data = off + hlen;
    return 0;
}

int jc_npy_map(const char *path, struct jc_npy_map *m)
{
    struct stat st;
    size_t off = 0;
    int fd, rc;

    memset(m, 0, sizeof *m);
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return jc_fail(JC_EIO, "cannot open '%s': %s", path, strerror(errno));
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        rc = S_ISDIR(st.st_mode) ? jc_fail(JC_EIO, "cannot read '%s': is a directory", path)
                                 : jc_fail(JC_EIO, "cannot read '%s': not a regular file", path);
        close(fd);
        return rc;
    }
    m->len = (size_t)st.st_size;
    if (m->len) {
        m->base = mmap(NULL, m->len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m->base == MAP_FAILED) {
            m->base = NULL;
            rc = jc_fail(errno == ENOMEM ? JC_ENOMEM : JC_EIO, "cannot map '%s': %s", path,
                         strerror(errno));
            close(fd);
            return rc;
        }
    }
    close(fd);
    if ((rc = parse(path, m->base, m->len, &off, &m->rows, &m->cols)) < 0) {
        jc_npy_unmap(m);
        return rc;
    }
    /* the header is padded so that the values start on a 16-byte boundary (NEP 1); a file
       written otherwise is still read, by a copy, as its floats may not be aligned */
    if (off % sizeof(float)) {
        float *copy = jc_malloc(m->rows * m->cols * sizeof *copy + 1, "a .npy array");
        if (!copy) {
            jc_npy_unmap(m);
            return JC_ENOMEM;
        }
        memcpy(copy, (char *)m->base + off, m->rows * m->cols * sizeof *copy);
        m->copy = copy;
        m->data = copy;
    } else {
        m->data = (const float *)(const void *)((char *)m->base + off);
    }
    /* read once, front to back */
    if (m->base)
        madvise(m->base, m->len, MADV_SEQUENTIAL);
    return 0;
}

void jc_npy_unmap(struct jc_npy_map *m)
{
    if (m->base)
        munmap(m->base, m->len);
    free(m->copy);
    memset(m, 0, sizeof *m);
}

int jc_npy_read(const char *path, float **data, size_t *rows, size_t *cols)
{
    struct jc_npy_map m;
    int rc;

    *data = NULL;
    if ((rc = jc_npy_map(path, &m)) < 0)
        return rc;
    size_t count = m.rows * m.cols;
    if ((*data = jc_malloc(count * sizeof **data + 1, "a .npy array"))) {
        memcpy(*data, m.data, count * sizeof **data);
        *rows = m.rows;
        *cols = m.cols;
    } else {
        rc = JC_ENOMEM;
    }
    jc_npy_unmap(&m);
    return rc;
}
