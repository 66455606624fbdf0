#include "internal.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Per thread, so worker threads and callers never read each other's messages. */
static _Thread_local char errbuf[1024];

const char *jc_errmsg(void)
{
    return errbuf;
}

int jc_fail(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errbuf, sizeof errbuf, fmt, ap);
    va_end(ap);
    return code;
}

int jc_fail_prefix(int code, const char *fmt, ...)
{
    char prefix[512], old[sizeof errbuf];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, errbuf, sizeof old);
    if (snprintf(errbuf, sizeof errbuf, "%s: %s", prefix, old) >= (int)sizeof errbuf)
        errbuf[sizeof errbuf - 1] = '\0'; /* truncated, still one line */
    return code;
}

/* cJSON returns NULL for a failed allocation as for bad JSON: its hooks note which it was. */
static _Thread_local bool json_oom;

static void *json_malloc(size_t n)
{
    void *p = malloc(n);
    if (!p)
        json_oom = true;
    return p;
}

static void json_hooks(void)
{
    cJSON_Hooks h = {json_malloc, free};
    cJSON_InitHooks(&h);
}

int jc_json_parse(struct cJSON **root, const char *buf, size_t len, const char **end,
                  const char *name)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    const char *at = NULL;

    pthread_once(&once, json_hooks);
    json_oom = false;
    *root = cJSON_ParseWithLengthOpts(buf, len, &at, false);
    if (end)
        *end = at;
    if (*root)
        return 0;
    if (json_oom)
        return jc_fail(JC_ENOMEM, "%s: out of memory parsing JSON", name);
    return JC_EFORMAT;
}

void *jc_malloc(size_t n, const char *what)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        jc_fail(JC_ENOMEM, "out of memory allocating %zu bytes for %s", n, what);
    return p;
}

void *jc_calloc(size_t count, size_t size, const char *what)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p)
        jc_fail(JC_ENOMEM, "out of memory allocating %zu x %zu bytes for %s", count, size, what);
    return p;
}

int jc_read_file(const char *path, size_t limit, char **buf, size_t *len)
{
    FILE *f = fopen(path, "rb");
    struct stat st;
    char *p = NULL;
    size_t cap = 0, n = 0;
    int rc;

    *buf = NULL;
    *len = 0;
    if (!f)
        return jc_fail(JC_EIO, "cannot open '%s': %s", path, strerror(errno));
    bool have_st = fstat(fileno(f), &st) == 0;
    if (have_st && S_ISDIR(st.st_mode)) {
        rc = jc_fail(JC_EIO, "cannot read '%s': is a directory", path);
        goto out_close;
    }
    for (;;) {
        if (n + 1 >= cap) {
            /* never more than limit + 2, so one byte past the limit is still seen; a regular
               file's size is known, so it usually takes one allocation */
            size_t ncap = cap ? cap * 2 : 65536;
            if (!cap && have_st && S_ISREG(st.st_mode) && (uint64_t)st.st_size + 1 > ncap &&
                (uint64_t)st.st_size < (uint64_t)limit + 2)
                ncap = (size_t)st.st_size + 2;
            char *np;
            if (ncap > limit + 2)
                ncap = limit + 2;
            np = realloc(p, ncap);
            if (!np) {
                rc = jc_fail(JC_ENOMEM, "out of memory reading '%s'", path);
                goto out_free;
            }
            p = np;
            cap = ncap;
        }
        size_t got = fread(p + n, 1, cap - n - 1, f);
        n += got;
        if (n > limit) {
            rc = jc_fail(JC_ELIMIT, "'%s' is larger than the limit of %zu bytes", path, limit);
            goto out_free;
        }
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        rc = jc_fail(JC_EIO, "cannot read '%s': %s", path, strerror(errno));
        goto out_free;
    }
    p[n] = '\0';
    *buf = p;
    *len = n;
    fclose(f);
    return 0;

out_free:
    free(p);
out_close:
    fclose(f);
    return rc;
}

char *jc_path_join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = jc_malloc(a + b + 2, "a path");
    if (!p)
        return NULL;
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, name, b + 1);
    return p;
}
