#include "internal.h"
#include "safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* The format caps its header at 100 MB; larger means a corrupt or hostile file. */
#define MAX_HEADER (100u << 20)

static const struct {
    const char *name;
    enum jc_dtype dtype;
    int width;
} dtypes[] = {
    {"F32", JC_F32, 4},   {"F16", JC_F16, 2},       {"BF16", JC_BF16, 2},     {"F64", JC_OTHER, 8},
    {"I64", JC_OTHER, 8}, {"I32", JC_OTHER, 4},     {"I16", JC_OTHER, 2},     {"I8", JC_OTHER, 1},
    {"U8", JC_OTHER, 1},  {"BOOL", JC_OTHER, 1},    {"U16", JC_OTHER, 2},     {"U32", JC_OTHER, 4},
    {"U64", JC_OTHER, 8}, {"F8_E4M3", JC_OTHER, 1}, {"F8_E5M2", JC_OTHER, 1},
};

const char *jc_shape_str(char *buf, size_t cap, int ndim, const int64_t *shape)
{
    size_t o = 0;
    o += snprintf(buf + o, cap - o, "[");
    for (int i = 0; i < ndim && o < cap; i++)
        o += snprintf(buf + o, cap - o, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (o < cap)
        snprintf(buf + o, cap - o, "]");
    return buf;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const struct jc_tensor *)a)->name, ((const struct jc_tensor *)b)->name);
}

static int by_begin(const void *a, const void *b)
{
    const struct jc_tensor *x = *(const struct jc_tensor *const *)a;
    const struct jc_tensor *y = *(const struct jc_tensor *const *)b;
    return x->begin < y->begin ? -1 : x->begin > y->begin;
}

/* A JSON number that is a whole, non-negative integer below 2^53. */
static bool json_uint(const cJSON *v, uint64_t *out)
{
    if (!cJSON_IsNumber(v))
        return false;
    double d = v->valuedouble;
    if (!(d >= 0 && d <= 9007199254740992.0) || d != (double)(uint64_t)d)
        return false;
    *out = (uint64_t)d;
    return true;
}

static int parse_tensor(struct jc_st *st, const cJSON *e, struct jc_tensor *t, uint64_t data_len)
{
    const char *p = st->path;
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *off = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    int width = 0;

    if (!cJSON_IsObject(e) || !cJSON_IsString(dt) || !cJSON_IsArray(sh) || !cJSON_IsArray(off))
        return jc_fail(JC_EFORMAT, "%s: tensor '%s' lacks dtype, shape or data_offsets", p,
                       t->name);
    for (size_t i = 0; i < sizeof dtypes / sizeof *dtypes; i++)
        if (!strcmp(dt->valuestring, dtypes[i].name)) {
            t->dtype = dtypes[i].dtype;
            width = dtypes[i].width;
            snprintf(t->dtype_name, sizeof t->dtype_name, "%s", dtypes[i].name);
        }
    if (!width)
        return jc_fail(JC_EFORMAT, "%s: tensor '%s' has unknown dtype '%.16s'", p, t->name,
                       dt->valuestring);

    int nd = cJSON_GetArraySize(sh);
    if (nd > JC_ST_MAX_DIMS)
        return jc_fail(JC_EFORMAT, "%s: tensor '%s' has %d dimensions (at most %d)", p, t->name, nd,
                       JC_ST_MAX_DIMS);
    t->ndim = nd;
    /* Element count and byte size are checked against overflow at every step. */
    uint64_t nelem = 1;
    for (int i = 0; i < nd; i++) {
        uint64_t d;
        if (!json_uint(cJSON_GetArrayItem(sh, i), &d))
            return jc_fail(JC_EFORMAT, "%s: tensor '%s' has a bad shape", p, t->name);
        t->shape[i] = (int64_t)d;
        if (d && nelem > UINT64_MAX / d)
            return jc_fail(JC_EFORMAT, "%s: tensor '%s' has too many elements", p, t->name);
        nelem *= d;
    }
    if (nelem > UINT64_MAX / (unsigned)width || nelem * width > data_len)
        return jc_fail(JC_EFORMAT, "%s: tensor '%s' (%s %s) is larger than the file's data", p,
                       t->name, t->dtype_name,
                       jc_shape_str((char[160]){0}, 160, t->ndim, t->shape));
    t->nelem = (int64_t)nelem;

    if (cJSON_GetArraySize(off) != 2 || !json_uint(cJSON_GetArrayItem(off, 0), &t->begin) ||
        !json_uint(cJSON_GetArrayItem(off, 1), &t->end))
        return jc_fail(JC_EFORMAT, "%s: tensor '%s' has bad data_offsets", p, t->name);
    if (t->begin > t->end || t->end > data_len)
        return jc_fail(JC_EFORMAT,
                       "%s: tensor '%s' data_offsets [%llu, %llu] lie outside the %llu bytes of "
                       "data",
                       p, t->name, (unsigned long long)t->begin, (unsigned long long)t->end,
                       (unsigned long long)data_len);
    if (t->end - t->begin != nelem * width)
        return jc_fail(JC_EFORMAT, "%s: tensor '%s' is %llu bytes but %s %s needs %llu", p, t->name,
                       (unsigned long long)(t->end - t->begin), t->dtype_name,
                       jc_shape_str((char[160]){0}, 160, t->ndim, t->shape),
                       (unsigned long long)(nelem * width));
    return 0;
}

int jc_st_parse_header(struct jc_st *st, const char *json, size_t len, uint64_t data_len)
{
    const char *p = st->path ? st->path : "safetensors";
    cJSON *root;
    const cJSON *e;
    struct jc_tensor **order = NULL;
    size_t n = 0;
    int rc;

    if (!st->path && !(st->path = strdup(p)))
        return jc_fail(JC_ENOMEM, "out of memory");
    if (jc_json_parse(&root, json, len, NULL, p) == JC_ENOMEM)
        return JC_ENOMEM;
    if (!root || !cJSON_IsObject(root)) {
        rc = jc_fail(JC_EFORMAT, "%s: header is not a JSON object", p);
        goto out_json;
    }
    cJSON_ArrayForEach(e, root) n++;
    st->t = jc_calloc(n, sizeof *st->t, "the tensor table");
    if (!st->t) {
        rc = JC_ENOMEM;
        goto out_json;
    }
    cJSON_ArrayForEach(e, root)
    {
        if (!strcmp(e->string, "__metadata__"))
            continue;
        struct jc_tensor *t = &st->t[st->n];
        if (!(t->name = strdup(e->string))) {
            rc = jc_fail(JC_ENOMEM, "out of memory");
            goto out_json;
        }
        st->n++;
        if ((rc = parse_tensor(st, e, t, data_len)) < 0)
            goto out_json;
    }
    qsort(st->t, st->n, sizeof *st->t, by_name);
    for (size_t i = 1; i < st->n; i++)
        if (!strcmp(st->t[i - 1].name, st->t[i].name)) {
            rc = jc_fail(JC_EFORMAT, "%s: tensor '%s' appears twice", p, st->t[i].name);
            goto out_json;
        }
    /* Overlapping byte ranges would let one tensor's data alias another's. */
    order = jc_malloc((st->n ? st->n : 1) * sizeof *order, "the tensor table");
    if (!order) {
        rc = JC_ENOMEM;
        goto out_json;
    }
    for (size_t i = 0; i < st->n; i++)
        order[i] = &st->t[i];
    qsort(order, st->n, sizeof *order, by_begin);
    for (size_t i = 1; i < st->n; i++)
        if (order[i]->begin < order[i - 1]->end && order[i]->begin != order[i]->end) {
            rc = jc_fail(JC_EFORMAT, "%s: tensors '%s' and '%s' overlap", p, order[i - 1]->name,
                         order[i]->name);
            goto out_order;
        }
    rc = 0;
out_order:
    free(order);
out_json:
    cJSON_Delete(root);
    return rc;
}

int jc_st_open(struct jc_st *st, const char *path)
{
    struct stat sb;
    unsigned char len8[8];
    uint64_t hlen = 0;
    char *hdr = NULL;
    int rc;

    memset(st, 0, sizeof *st);
    st->fd = -1;
    if (!(st->path = strdup(path)))
        return jc_fail(JC_ENOMEM, "out of memory");
    st->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (st->fd < 0)
        return jc_fail(errno == ENOENT ? JC_ENOTFOUND : JC_EIO, "cannot open '%s': %s", path,
                       strerror(errno));
    if (fstat(st->fd, &sb) < 0 || !S_ISREG(sb.st_mode))
        return jc_fail(JC_EIO, "'%s' is not a regular file", path);
    st->file_size = (uint64_t)sb.st_size;
    if (st->file_size < 8 || pread(st->fd, len8, 8, 0) != 8)
        return jc_fail(JC_EFORMAT, "%s: truncated: %llu bytes, no header", path,
                       (unsigned long long)st->file_size);
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | len8[i];
    if (hlen > MAX_HEADER || hlen > st->file_size - 8)
        return jc_fail(JC_EFORMAT, "%s: header length %llu runs past the end of the %llu-byte file",
                       path, (unsigned long long)hlen, (unsigned long long)st->file_size);
    st->data_start = 8 + hlen;
    hdr = jc_malloc(hlen + 1, "the safetensors header");
    if (!hdr)
        return JC_ENOMEM;
    if (pread(st->fd, hdr, hlen, 8) != (ssize_t)hlen) {
        rc = jc_fail(JC_EIO, "%s: cannot read header: %s", path, strerror(errno));
        goto out_free;
    }
    hdr[hlen] = '\0';
    rc = jc_st_parse_header(st, hdr, hlen, st->file_size - st->data_start);
out_free:
    free(hdr);
    return rc;
}

int jc_st_map(struct jc_st *st)
{
    if (st->map)
        return 0;
    void *m = mmap(NULL, st->file_size, PROT_READ, MAP_SHARED, st->fd, 0);
    if (m == MAP_FAILED)
        return jc_fail(JC_EIO, "cannot map '%s': %s", st->path, strerror(errno));
    st->map = m;
    return 0;
}

void jc_st_release(struct jc_st *st)
{
    if (st->map)
        munmap((void *)st->map, st->file_size);
    if (st->fd >= 0)
        close(st->fd);
    for (size_t i = 0; i < st->n; i++)
        free(st->t[i].name);
    free(st->t);
    for (size_t i = 0; i < st->n_converted; i++)
        free(st->converted[i]);
    free(st->converted);
    free(st->path);
    memset(st, 0, sizeof *st);
    st->fd = -1;
}

const struct jc_tensor *jc_st_find(const struct jc_st *st, const char *name)
{
    struct jc_tensor key = {.name = (char *)name};
    return st->n ? bsearch(&key, st->t, st->n, sizeof *st->t, by_name) : NULL;
}

static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000 | man << 13;
    } else if (exp) {
        bits = sign | (exp + 112) << 23 | man << 13;
    } else if (man) {
        /* subnormal: normalise */
        int e = 113;
        while (!(man & 0x400)) {
            man <<= 1;
            e--;
        }
        bits = sign | (uint32_t)e << 23 | (man & 0x3ff) << 13;
    } else {
        bits = sign;
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

int jc_st_get(struct jc_st *st, const char *name, int ndim, const int64_t *shape, const float **out)
{
    const struct jc_tensor *t = jc_st_find(st, name);
    char want[160], have[160];
    bool same = t && t->ndim == ndim;

    for (int i = 0; same && i < ndim; i++)
        same = t->shape[i] == shape[i];
    if (!t)
        return jc_fail(JC_ENOTFOUND, "%s: tensor '%s' is missing", st->path, name);
    if (!same)
        return jc_fail(JC_ESHAPE, "%s: tensor '%s' has shape %s, expected %s", st->path, name,
                       jc_shape_str(have, sizeof have, t->ndim, t->shape),
                       jc_shape_str(want, sizeof want, ndim, shape));
    if (t->dtype == JC_OTHER)
        return jc_fail(JC_ESHAPE, "%s: tensor '%s' has dtype %s; jclip reads F32, F16 and BF16",
                       st->path, name, t->dtype_name);
    if (!st->map) {
        int rc = jc_st_map(st);
        if (rc < 0)
            return rc;
    }
    const unsigned char *src = st->map + st->data_start + t->begin;
    if (t->dtype == JC_F32 && ((uintptr_t)src & 3) == 0) {
        *out = (const float *)src;
        return 0;
    }

    float **list = realloc(st->converted, (st->n_converted + 1) * sizeof *list);
    if (!list)
        return jc_fail(JC_ENOMEM, "out of memory converting tensor '%s'", name);
    st->converted = list;
    float *f = jc_malloc((size_t)t->nelem * sizeof *f, name);
    if (!f)
        return JC_ENOMEM;
    for (int64_t i = 0; i < t->nelem; i++) {
        uint16_t h;
        uint32_t bits;
        switch (t->dtype) {
        case JC_F32:
            memcpy(&f[i], src + 4 * i, 4);
            break;
        case JC_F16:
            memcpy(&h, src + 2 * i, 2);
            f[i] = half_to_float(h);
            break;
        default: /* BF16: the top half of an F32 */
            memcpy(&h, src + 2 * i, 2);
            bits = (uint32_t)h << 16;
            memcpy(&f[i], &bits, 4);
            break;
        }
    }
    st->converted[st->n_converted++] = f;
    *out = f;
    return 0;
}
