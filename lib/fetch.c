/*
 * Image inputs that are not files: http(s) URLs, fetched with libcurl into memory under a
 * size cap and a timeout, and data: URIs, decoded from base64. Both then go through the same
 * decoders and limits as a file's bytes.
 */
#include "curl.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_REDIRECTS   5
#define CONNECT_TIMEOUT 10L /* seconds; never more than the whole transfer's */
#define DEFAULT_TIMEOUT 30  /* seconds for a whole transfer */

bool jc_is_url(const char *s)
{
    return !strncasecmp(s, "http://", 7) || !strncasecmp(s, "https://", 8);
}

bool jc_is_data_uri(const char *s)
{
    return !strncasecmp(s, "data:", 5);
}

int jc_data_uri(const char *uri, size_t len, const char *what, uint8_t **data, size_t *n,
                size_t *head)
{
    const char *comma = memchr(uri, ',', len);
    const char *type = uri + 5, *semi;
    size_t type_len;

    *data = NULL;
    *n = 0;
    if (len < 5 || strncasecmp(uri, "data:", 5))
        return jc_fail(JC_EFORMAT, "%s is not a data URI", what);
    if (!comma)
        return jc_fail(JC_EFORMAT, "%s is a data URI without ','", what);
    semi = memchr(type, ';', (size_t)(comma - type));
    type_len = (size_t)((semi ? semi : comma) - type);
    if (type_len <= 6 || strncasecmp(type, "image/", 6))
        return jc_fail(JC_EFORMAT, "%s is a data URI of type '%.*s', not image/*", what,
                       (int)(type_len > 100 ? 100 : type_len), type);
    if (comma - type < 7 || strncasecmp(comma - 7, ";base64", 7))
        return jc_fail(JC_EFORMAT,
                       "%s is a data URI without ';base64' (data:image/TYPE;base64,DATA)", what);
    *head = (size_t)(comma - uri) + 1;
    size_t n64 = len - *head;
    if (!(*data = jc_malloc(n64 / 4 * 3 + 1, "an image")))
        return JC_ENOMEM;
    if (jc_base64_decode(comma + 1, n64, *data, n) < 0) {
        free(*data);
        *data = NULL;
        return jc_fail_prefix(JC_EFORMAT, "%s data URI", what);
    }
    return 0;
}

/* The body, growing up to the cap. */
struct body {
    char *p;
    size_t len, cap, max;
    bool over; /* the body passed the cap: the transfer was stopped */
};

static size_t on_data(char *p, size_t size, size_t nitems, void *ud)
{
    struct body *b = ud;
    size_t n = size * nitems;

    if (n > b->max - b->len) {
        b->over = true;
        return 0; /* stops the transfer: nothing past the cap is read */
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64 * 1024;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q)
            return 0;
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
    return n;
}

int jc_fetch(const char *url, const struct jc_fetch_opts *o, char **buf, size_t *len)
{
    size_t max = o && o->max_bytes ? o->max_bytes : JC_DEFAULT_MAX_FETCH_BYTES;
    long timeout = o && o->timeout ? o->timeout : DEFAULT_TIMEOUT;
    struct body b = {.max = max};
    char errbuf[CURL_ERROR_SIZE] = "";
    long status = 0;
    CURL *c;
    int rc;

    *buf = NULL;
    *len = 0;
    if (!jc_is_url(url))
        return jc_fail(JC_EINVAL, "cannot fetch '%s': only http and https URLs are fetched", url);
    if (o && o->no_fetch)
        return jc_fail(JC_EINVAL, "'%s' is a URL, and fetching is off (--no-fetch)", url);
    if ((rc = jc_curl_load("fetching an image URL")) < 0)
        return rc;
    if (!(c = libcurl.easy_init()))
        return jc_fail(JC_EIO, "cannot fetch '%s': cannot initialise libcurl", url);
    libcurl.easy_setopt(c, CURLOPT_URL, url);
    libcurl.easy_setopt(c, CURLOPT_USERAGENT, "jclip/" JCLIP_VERSION);
    libcurl.easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    libcurl.easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    libcurl.easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    libcurl.easy_setopt(c, CURLOPT_MAXREDIRS, (long)MAX_REDIRECTS);
    libcurl.easy_setopt(c, CURLOPT_CONNECTTIMEOUT,
                        timeout < CONNECT_TIMEOUT ? timeout : CONNECT_TIMEOUT);
    libcurl.easy_setopt(c, CURLOPT_TIMEOUT, timeout);
    libcurl.easy_setopt(c, CURLOPT_FAILONERROR, 0L);
    libcurl.easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    libcurl.easy_setopt(c, CURLOPT_WRITEDATA, &b);
    /* a Content-Length over the cap fails before the body moves */
    libcurl.easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)max);
    jc_curl_http_only(c);

    CURLcode cc = libcurl.easy_perform(c);
    libcurl.easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (cc == CURLE_OK && (status < 200 || status > 299))
        rc = jc_fail(JC_EIO, "cannot fetch '%s': HTTP %ld", url, status);
    else if (b.over || cc == CURLE_FILESIZE_EXCEEDED)
        rc = jc_fail(JC_ELIMIT, "cannot fetch '%s': more than %zu bytes (--max-image-bytes)", url,
                     max);
    else if (cc == CURLE_OPERATION_TIMEDOUT)
        rc = jc_fail(JC_ETIMEOUT, "cannot fetch '%s': no answer within %ld s", url, timeout);
    else if (cc == CURLE_WRITE_ERROR)
        rc = jc_fail(JC_ENOMEM, "cannot fetch '%s': out of memory", url);
    else if (cc != CURLE_OK)
        rc = jc_fail(JC_EIO, "cannot fetch '%s': %s", url,
                     *errbuf ? errbuf : libcurl.easy_strerror(cc));
    libcurl.easy_cleanup(c);
    if (rc < 0) {
        free(b.p);
        return rc;
    }
    if (!b.p && !(b.p = calloc(1, 1))) /* an empty body: the decoders say it is empty */
        return jc_fail(JC_ENOMEM, "out of memory");
    *buf = b.p;
    *len = b.len;
    return 0;
}
