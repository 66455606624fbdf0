/*
 * Downloading a model from the Hugging Face Hub into the cache layout huggingface_hub uses,
 * so that Python and jclip share one copy:
 *
 *     <cache>/models--<org>--<name>/blobs/<etag>           the content, named by its ETag
 *     <cache>/models--<org>--<name>/blobs/<etag>.incomplete  a transfer in progress
 *     <cache>/models--<org>--<name>/snapshots/<commit>/<file> -> ../../blobs/<etag>
 *     <cache>/models--<org>--<name>/refs/<revision>         the commit, no newline
 *     <cache>/.locks/models--<org>--<name>/<etag>.lock      flock()ed while fetching
 *
 * A HEAD of {endpoint}/{repo}/resolve/{revision}/{file} gives the metadata: X-Repo-Commit,
 * the ETag (X-Linked-Etag for LFS files: their SHA-256) and the size (X-Linked-Size, else
 * Content-Length). LFS files answer with a redirect to a CDN, which is fetched without the
 * token. A blob becomes visible under its final name only once its size and, for LFS files,
 * its SHA-256 have been checked; the snapshot links and the ref are written last.
 */
#include "internal.h"
#include "sha256.h"

#include "curl.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_ENDPOINT "https://huggingface.co"
#define DEFAULT_REPO     "jinaai/jina-clip-v1"
#define MAX_REDIRECTS    5

static const char *const default_files[] = {
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "preprocessor_config.json",
    NULL,
};

/* What one HTTP response said, as far as a download needs it. */
struct resp {
    long status;
    char etag[160], linked_etag[160], commit[160], error_code[64], error_msg[256];
    char content_range[128];
    char *location;                /* malloc'd */
    long long length, linked_size; /* -1 when absent */
};

/* A file of the repository: what the HEAD said about it. */
struct file {
    const char *name;
    char *url;      /* the resolve URL, for messages */
    char *location; /* where the content is: the resolve URL or the CDN's */
    char etag[160];
    long long size; /* -1 when the server did not say */
};

/* One GET into a .incomplete file. */
struct xfer {
    struct resp r;
    int fd;
    const char *path;
    long long off;      /* bytes in the file */
    long long expected; /* its full size, -1 if unknown */
    bool accepted;      /* a 200 or 206 whose body is the content */
    bool hashing;
    bool unusable; /* what is on disk cannot be resumed from: remove it */
    struct jc_sha256 sha;
    char err[512]; /* why a callback stopped the transfer */
    const struct jc_download_opts *o;
    struct jc_download_progress p;
};

struct session {
    const struct jc_download_opts *o;
    const char *repo, *revision, *endpoint;
    char *token, token_from[300];
    char *repo_dir, *lock_dir;
    CURL *curl;
    char errbuf[CURL_ERROR_SIZE];
};

/* ---- small helpers ------------------------------------------------------------------- */

static char *xasprintf(const char *fmt, ...) JC_PRINTF(1, 2);
static char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    char *s;
    va_start(ap, fmt);
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0) {
        jc_fail(JC_ENOMEM, "out of memory");
        return NULL;
    }
    return s;
}

/* mkdir -p: every component of `path`. */
static int mkdirs(const char *path)
{
    char *p = strdup(path);
    struct stat st;
    int rc = 0;

    if (!p)
        return jc_fail(JC_ENOMEM, "out of memory");
    for (char *s = *p ? p + 1 : p;; s++) {
        if (*s != '/' && *s)
            continue;
        char c = *s;
        *s = '\0';
        if (mkdir(p, 0777) < 0 && errno != EEXIST) {
            rc = jc_fail(JC_EIO, "cannot create directory '%s': %s", p, strerror(errno));
            break;
        }
        *s = c;
        if (!c)
            break;
    }
    if (rc == 0 && (stat(path, &st) < 0 || !S_ISDIR(st.st_mode)))
        rc = jc_fail(JC_EIO, "cannot create directory '%s': not a directory", path);
    free(p);
    return rc;
}

/* A name that is safe as one path component: letters, digits, '.', '_', '-'; no leading '.'. */
static bool safe_component(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (!n || n > max || s[0] == '.')
        return false;
    for (; *s; s++)
        if (!(*s >= '0' && *s <= '9') && !(*s >= 'a' && *s <= 'z') && !(*s >= 'A' && *s <= 'Z') &&
            !strchr("._-", *s))
            return false;
    return true;
}

/* A relative path whose components are all safe ("sub/file.json"; no "..", no "//"). */
static bool safe_path(const char *s, size_t max)
{
    char buf[512];
    if (strlen(s) >= sizeof buf || !*s)
        return false;
    strcpy(buf, s);
    for (char *save = NULL, *c = strtok_r(buf, "/", &save); c; c = strtok_r(NULL, "/", &save))
        if (!safe_component(c, max))
            return false;
    return s[0] != '/' && s[strlen(s) - 1] != '/' && !strstr(s, "//");
}

static bool is_sha256(const char *etag)
{
    if (strlen(etag) != 64)
        return false;
    for (const char *p = etag; *p; p++)
        if (!strchr("0123456789abcdefABCDEF", *p))
            return false;
    return true;
}

static const char *size_str(char *buf, size_t cap, long long n)
{
    if (n < 0)
        snprintf(buf, cap, "an unknown number of");
    else
        snprintf(buf, cap, "%lld", n);
    return buf;
}

static void report(struct xfer *x, enum jc_download_event ev)
{
    if (!x->o->progress)
        return;
    x->p.event = ev;
    x->p.done = x->off < 0 ? 0 : (uint64_t)x->off;
    x->p.size = x->expected < 0 ? 0 : (uint64_t)x->expected;
    x->o->progress(x->o->ctx, &x->p);
}

/* ---- configuration ------------------------------------------------------------------- */

static int default_cache(char **out)
{
    const char *env;
    if ((env = getenv("HF_HUB_CACHE")) && *env)
        *out = strdup(env);
    else if ((env = getenv("HF_HOME")) && *env)
        *out = xasprintf("%s/hub", env);
    else if ((env = getenv("HOME")) && *env)
        *out = xasprintf("%s/.cache/huggingface/hub", env);
    else
        *out = strdup(".cache/huggingface/hub");
    return *out ? 0 : jc_fail(JC_ENOMEM, "out of memory");
}

/* $HF_TOKEN, else the file `huggingface-cli login` writes ($HF_TOKEN_PATH, $HF_HOME/token). */
static int find_token(struct session *s)
{
    const char *env = getenv("HF_TOKEN"), *given = NULL;
    char *path = NULL, *buf;
    size_t len;

    if (s->o->token) {
        given = s->o->token;
        snprintf(s->token_from, sizeof s->token_from, "the token");
    } else if (env && *env) {
        given = env;
        snprintf(s->token_from, sizeof s->token_from, "HF_TOKEN");
    }
    if (given && !(s->token = strdup(given)))
        return jc_fail(JC_ENOMEM, "out of memory");
    if (!given) {
        if ((env = getenv("HF_TOKEN_PATH")) && *env)
            path = strdup(env);
        else if ((env = getenv("HF_HOME")) && *env)
            path = xasprintf("%s/token", env);
        else if ((env = getenv("HOME")) && *env)
            path = xasprintf("%s/.cache/huggingface/token", env);
        /* no token file (or no memory for its name) is no token: public repositories work */
        if (path && access(path, F_OK) == 0 && jc_read_file(path, 4096, &buf, &len) == 0) {
            s->token = buf;
            snprintf(s->token_from, sizeof s->token_from, "the token in '%s'", path);
        }
        free(path);
    }
    /* one line: a newline in a header would start another header */
    if (s->token)
        s->token[strcspn(s->token, "\r\n")] = '\0';
    if (s->token && !*s->token) {
        free(s->token);
        s->token = NULL;
    }
    return 0;
}

/* ---- HTTP ---------------------------------------------------------------------------- */

static void resp_reset(struct resp *r)
{
    free(r->location);
    memset(r, 0, sizeof *r);
    r->length = r->linked_size = -1;
}

static void copy_value(char *dst, size_t cap, const char *v, size_t n)
{
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, v, n);
    dst[n] = '\0';
}

/* ETag: "abc" or W/"abc" -> abc, as huggingface_hub normalises it. */
static void copy_etag(char *dst, size_t cap, const char *v, size_t n)
{
    if (n >= 2 && v[0] == 'W' && v[1] == '/')
        v += 2, n -= 2;
    if (n >= 2 && v[0] == '"' && v[n - 1] == '"')
        v++, n -= 2;
    copy_value(dst, cap, v, n);
}

static long long parse_size(const char *v, size_t n)
{
    char buf[32], *end;
    if (!n || n >= sizeof buf)
        return -1;
    memcpy(buf, v, n);
    buf[n] = '\0';
    errno = 0;
    long long x = strtoll(buf, &end, 10);
    return errno || *end || x < 0 || end == buf ? -1 : x;
}

static bool header_is(const char *name, size_t n, const char *want)
{
    return strlen(want) == n && !strncasecmp(name, want, n);
}

/* Collects the headers of each response; a status line starts a new response. */
static size_t on_header(char *line, size_t size, size_t nitems, void *ud)
{
    struct resp *r = ud;
    size_t len = size * nitems;
    const char *colon, *v;
    size_t vn;

    if (len >= 5 && !strncmp(line, "HTTP/", 5)) {
        resp_reset(r);
        const char *sp = memchr(line, ' ', len);
        r->status = sp ? strtol(sp + 1, NULL, 10) : 0;
        return len;
    }
    if (!(colon = memchr(line, ':', len)))
        return len;
    v = colon + 1;
    vn = len - (size_t)(v - line);
    while (vn && (*v == ' ' || *v == '\t'))
        v++, vn--;
    while (vn && (v[vn - 1] == '\r' || v[vn - 1] == '\n' || v[vn - 1] == ' '))
        vn--;
    size_t hn = (size_t)(colon - line);
    if (header_is(line, hn, "etag"))
        copy_etag(r->etag, sizeof r->etag, v, vn);
    else if (header_is(line, hn, "x-linked-etag"))
        copy_etag(r->linked_etag, sizeof r->linked_etag, v, vn);
    else if (header_is(line, hn, "x-repo-commit"))
        copy_value(r->commit, sizeof r->commit, v, vn);
    else if (header_is(line, hn, "x-error-code"))
        copy_value(r->error_code, sizeof r->error_code, v, vn);
    else if (header_is(line, hn, "x-error-message"))
        copy_value(r->error_msg, sizeof r->error_msg, v, vn);
    else if (header_is(line, hn, "content-length"))
        r->length = parse_size(v, vn);
    else if (header_is(line, hn, "x-linked-size"))
        r->linked_size = parse_size(v, vn);
    else if (header_is(line, hn, "content-range"))
        copy_value(r->content_range, sizeof r->content_range, v, vn);
    else if (header_is(line, hn, "location")) {
        free(r->location);
        if ((r->location = malloc(vn + 1))) {
            memcpy(r->location, v, vn);
            r->location[vn] = '\0';
        }
    }
    return len;
}

static size_t discard(char *p, size_t size, size_t n, void *ud)
{
    (void)p, (void)ud;
    return size * n;
}

/* Whether two URLs have the same scheme, host and port: the token goes to the endpoint only. */
static bool same_origin(const char *a, const char *b)
{
    CURLU *ua = libcurl.url(), *ub = libcurl.url();
    bool same = false;
    if (ua && ub && !libcurl.url_set(ua, CURLUPART_URL, a, 0) &&
        !libcurl.url_set(ub, CURLUPART_URL, b, 0)) {
        static const CURLUPart parts[] = {CURLUPART_SCHEME, CURLUPART_HOST, CURLUPART_PORT};
        same = true;
        for (size_t i = 0; same && i < 3; i++) {
            char *pa = NULL, *pb = NULL;
            same = !libcurl.url_get(ua, parts[i], &pa, CURLU_DEFAULT_PORT) &&
                   !libcurl.url_get(ub, parts[i], &pb, CURLU_DEFAULT_PORT) && !strcasecmp(pa, pb);
            libcurl.free(pa);
            libcurl.free(pb);
        }
    }
    libcurl.url_cleanup(ua);
    libcurl.url_cleanup(ub);
    return same;
}

/* `ref` (a Location) resolved against `base`; malloc'd, NULL on failure. */
static char *resolve_url(const char *base, const char *ref)
{
    CURLU *u = libcurl.url();
    char *s = NULL, *out = NULL;
    if (u && !libcurl.url_set(u, CURLUPART_URL, base, 0) &&
        !libcurl.url_set(u, CURLUPART_URL, ref, CURLU_NON_SUPPORT_SCHEME) &&
        !libcurl.url_get(u, CURLUPART_URL, &s, 0))
        out = strdup(s);
    libcurl.free(s);
    libcurl.url_cleanup(u);
    return out;
}

/* Headers for a request to `url`: the token only when it goes to the endpoint itself. */
static struct curl_slist *headers_for(struct session *s, const char *url, long long range_from)
{
    struct curl_slist *h = NULL, *t;
    char buf[4200];

    /* sizes must be the stored bytes, not a compressed transfer's */
    if (!(h = libcurl.slist_append(NULL, "Accept-Encoding: identity")))
        return NULL;
    if (s->token && same_origin(url, s->endpoint)) {
        snprintf(buf, sizeof buf, "Authorization: Bearer %s", s->token);
        if (!(t = libcurl.slist_append(h, buf)))
            goto out_free;
        h = t;
    }
    if (range_from > 0) {
        snprintf(buf, sizeof buf, "Range: bytes=%lld-", range_from);
        if (!(t = libcurl.slist_append(h, buf)))
            goto out_free;
        h = t;
    }
    return h;
out_free:
    libcurl.slist_free_all(h);
    return NULL;
}

/* The host of a URL, for messages: a CDN's signed URLs are too long to show. */
static const char *host_of(const char *url, char *buf, size_t cap)
{
    CURLU *u = libcurl.url();
    char *h = NULL;
    snprintf(buf, cap, "%s", url);
    if (u && !libcurl.url_set(u, CURLUPART_URL, url, 0) &&
        !libcurl.url_get(u, CURLUPART_HOST, &h, 0))
        snprintf(buf, cap, "%s", h);
    libcurl.free(h);
    libcurl.url_cleanup(u);
    return buf;
}

/* "curl error 7: Failed to connect to ... : Connection refused" */
static const char *curl_why(struct session *s, CURLcode c, char *buf, size_t cap)
{
    snprintf(buf, cap, "curl error %d: %s", (int)c,
             *s->errbuf ? s->errbuf : libcurl.easy_strerror(c));
    return buf;
}

static int http_fail(struct session *s, const struct file *f, const struct resp *r)
{
    const char *from = s->token ? s->token_from : NULL;
    const char *code = r->error_code;

    if (!strcmp(code, "RepoNotFound"))
        return jc_fail(r->status == 404 ? JC_ENOTFOUND : JC_EIO,
                       "%s: HTTP %ld: repository %s not found, or private: %s%s", f->url, r->status,
                       s->repo, from ? from : "set HF_TOKEN to a token that can read it",
                       from ? " cannot read it" : "");
    if (!strcmp(code, "RevisionNotFound"))
        return jc_fail(JC_ENOTFOUND, "%s: HTTP %ld: revision '%s' not found in %s", f->url,
                       r->status, s->revision, s->repo);
    if (r->status == 401 && from)
        return jc_fail(JC_EIO, "%s: HTTP 401: %s was refused for %s", f->url, from, s->repo);
    if (r->status == 401)
        return jc_fail(JC_EIO,
                       "%s: HTTP 401: %s needs a token: set HF_TOKEN (or log in with "
                       "huggingface-cli login)",
                       f->url, s->repo);
    if (r->status == 403)
        return jc_fail(JC_EIO,
                       "%s: HTTP 403: no access to %s%s%s; if it is gated, accept its conditions "
                       "on the Hub",
                       f->url, s->repo, from ? " with " : " without a token: set HF_TOKEN",
                       from ? from : "");
    if (r->status == 404)
        return jc_fail(JC_ENOTFOUND, "%s: HTTP 404: %s is not in %s at revision %s", f->url,
                       f->name, s->repo, s->revision);
    return jc_fail(JC_EIO, "%s: HTTP %ld%s%s", f->url, r->status, *r->error_msg ? ": " : "",
                   r->error_msg);
}

/*
 * HEAD of the resolve URL: commit, ETag, size and where the content is. Relative redirects
 * (a renamed repository) are followed; an absolute one is the CDN, fetched later.
 */
static int head(struct session *s, struct file *f, char *commit, size_t cap)
{
    struct resp r = {0};
    char *url = strdup(f->url), why[CURL_ERROR_SIZE + 64];
    int rc = 0;

    resp_reset(&r);
    if (!url)
        return jc_fail(JC_ENOMEM, "out of memory");
    for (int hops = 0;; hops++) {
        struct curl_slist *h = headers_for(s, url, 0);
        if (!h) {
            rc = jc_fail(JC_ENOMEM, "out of memory");
            goto out_free;
        }
        *s->errbuf = '\0';
        libcurl.easy_setopt(s->curl, CURLOPT_URL, url);
        libcurl.easy_setopt(s->curl, CURLOPT_HTTPHEADER, h);
        libcurl.easy_setopt(s->curl, CURLOPT_NOBODY, 1L);
        libcurl.easy_setopt(s->curl, CURLOPT_FOLLOWLOCATION, 0L);
        libcurl.easy_setopt(s->curl, CURLOPT_HEADERDATA, &r);
        libcurl.easy_setopt(s->curl, CURLOPT_WRITEFUNCTION, discard);
        CURLcode c = libcurl.easy_perform(s->curl);
        libcurl.easy_setopt(s->curl, CURLOPT_HTTPHEADER, NULL);
        libcurl.slist_free_all(h);
        if (c != CURLE_OK) {
            rc = jc_fail(JC_EIO, "%s: cannot reach the Hub (HF_ENDPOINT %s): %s", f->url,
                         s->endpoint, curl_why(s, c, why, sizeof why));
            goto out_free;
        }
        bool relative = r.location && r.location[0] == '/' && r.location[1] != '/';
        if (r.status < 300 || r.status > 399 || !relative)
            break;
        if (hops == MAX_REDIRECTS) {
            rc = jc_fail(JC_EIO, "%s: more than %d redirects", f->url, MAX_REDIRECTS);
            goto out_free;
        }
        char *next = resolve_url(url, r.location);
        if (!next) {
            rc = jc_fail(JC_EFORMAT, "%s: bad redirect to '%s'", f->url, r.location);
            goto out_free;
        }
        free(url);
        url = next;
    }
    if (r.status >= 400 || r.status < 200) {
        rc = http_fail(s, f, &r);
        goto out_free;
    }
    const char *etag = *r.linked_etag ? r.linked_etag : r.etag;
    if (!*r.commit || !safe_component(r.commit, 64)) {
        rc = jc_fail(JC_EFORMAT, "%s: the server sent no usable X-Repo-Commit; is %s a Hub?",
                     f->url, s->endpoint);
        goto out_free;
    }
    if (!safe_component(etag, sizeof f->etag - 1)) {
        rc = jc_fail(JC_EFORMAT, "%s: the server sent no usable ETag ('%s')", f->url, etag);
        goto out_free;
    }
    if (*commit && strcmp(commit, r.commit)) {
        rc = jc_fail(JC_EFORMAT, "%s: the Hub answered for commit %s, not %s", f->url, r.commit,
                     commit);
        goto out_free;
    }
    snprintf(commit, cap, "%s", r.commit);
    snprintf(f->etag, sizeof f->etag, "%s", etag);
    f->size = r.linked_size >= 0 ? r.linked_size : r.length;
    if (r.status >= 300 && r.location)
        f->location = resolve_url(url, r.location);
    else
        f->location = strdup(url);
    if (!f->location)
        rc = jc_fail(JC_EFORMAT, "%s: bad redirect to '%s'", f->url, r.location);
out_free:
    free(url);
    resp_reset(&r);
    return rc;
}

/* ---- transfer ------------------------------------------------------------------------ */

static bool write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

/* Hashes what an earlier, interrupted transfer left in the file. */
static int hash_prefix(struct xfer *x)
{
    const size_t cap = 1 << 20;
    char *buf = jc_malloc(cap, "hashing");
    long long left = x->off;
    int rc = 0;

    if (!buf)
        return JC_ENOMEM;
    if (lseek(x->fd, 0, SEEK_SET) < 0)
        left = -1;
    while (left > 0) {
        ssize_t n = read(x->fd, buf, left < (long long)cap ? (size_t)left : cap);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0)
                errno = EIO; /* it shrank under us */
            break;
        }
        jc_sha256_update(&x->sha, buf, (size_t)n);
        left -= n;
    }
    if (left)
        rc = jc_fail(JC_EIO, "cannot read '%s': %s", x->path, strerror(errno));
    free(buf);
    return rc;
}

static bool restart(struct xfer *x)
{
    if (ftruncate(x->fd, 0) < 0 || lseek(x->fd, 0, SEEK_SET) < 0) {
        snprintf(x->err, sizeof x->err, "cannot truncate '%s': %s", x->path, strerror(errno));
        return false;
    }
    x->off = 0;
    jc_sha256_init(&x->sha);
    return true;
}

/* At the end of each response's headers: decide whether its body is the content. */
static size_t on_get_header(char *line, size_t size, size_t nitems, void *ud)
{
    struct xfer *x = ud;
    size_t len = on_header(line, size, nitems, &x->r);

    if (len >= 5 && !strncmp(line, "HTTP/", 5))
        x->accepted = false;
    if (!(len <= 2 && (line[0] == '\r' || line[0] == '\n')))
        return len;
    if (x->r.status == 200 && x->off > 0) {
        /* the server ignored the Range: start again from byte 0 */
        if (!restart(x))
            return 0;
        x->accepted = true;
    } else if (x->r.status == 206) {
        long long from = -1;
        if (!strncasecmp(x->r.content_range, "bytes ", 6))
            from = strtoll(x->r.content_range + 6, NULL, 10);
        if (from != x->off) {
            snprintf(x->err, sizeof x->err,
                     "the server resumed at '%s', not at byte %lld; the partial file was removed",
                     x->r.content_range, x->off);
            x->unusable = true;
            return 0;
        }
        x->accepted = true;
    } else if (x->r.status == 200) {
        x->accepted = true;
    }
    if (x->accepted && x->expected < 0 && x->r.length >= 0)
        x->expected = x->off + x->r.length;
    return len;
}

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
    struct xfer *x = ud;
    size_t len = size * n;

    if (!x->accepted)
        return len; /* the body of an error or a redirect */
    if (!write_all(x->fd, p, len)) {
        snprintf(x->err, sizeof x->err, "cannot write '%s': %s", x->path, strerror(errno));
        return 0;
    }
    if (x->hashing)
        jc_sha256_update(&x->sha, p, len);
    x->off += (long long)len;
    if (x->expected >= 0 && x->off > x->expected) {
        snprintf(x->err, sizeof x->err,
                 "the server sent more than the %lld bytes expected; the download was removed",
                 x->expected);
        x->unusable = true;
        return 0;
    }
    report(x, JC_DL_DATA);
    return len;
}

/* GETs the rest of the content into x->fd. The .incomplete file stays for a later resume. */
static int get(struct session *s, const struct file *f, struct xfer *x)
{
    char why[CURL_ERROR_SIZE + 64], a[32], host[256];
    struct curl_slist *h = headers_for(s, f->location, x->off);
    long long start = x->off;

    if (!h)
        return jc_fail(JC_ENOMEM, "out of memory");
    if (lseek(x->fd, x->off, SEEK_SET) < 0) {
        libcurl.slist_free_all(h);
        return jc_fail(JC_EIO, "cannot seek in '%s': %s", x->path, strerror(errno));
    }
    resp_reset(&x->r);
    *s->errbuf = '\0';
    libcurl.easy_setopt(s->curl, CURLOPT_URL, f->location);
    libcurl.easy_setopt(s->curl, CURLOPT_HTTPHEADER, h);
    libcurl.easy_setopt(s->curl, CURLOPT_NOBODY, 0L);
    libcurl.easy_setopt(s->curl, CURLOPT_HTTPGET, 1L);
    libcurl.easy_setopt(s->curl, CURLOPT_FOLLOWLOCATION, 1L);
    libcurl.easy_setopt(s->curl, CURLOPT_MAXREDIRS, (long)MAX_REDIRECTS);
    libcurl.easy_setopt(s->curl, CURLOPT_HEADERFUNCTION, on_get_header);
    libcurl.easy_setopt(s->curl, CURLOPT_HEADERDATA, x);
    libcurl.easy_setopt(s->curl, CURLOPT_WRITEFUNCTION, on_data);
    libcurl.easy_setopt(s->curl, CURLOPT_WRITEDATA, x);
    report(x, JC_DL_START);
    CURLcode c = libcurl.easy_perform(s->curl);
    libcurl.easy_setopt(s->curl, CURLOPT_HTTPHEADER, NULL);
    libcurl.easy_setopt(s->curl, CURLOPT_HEADERFUNCTION, on_header);
    libcurl.slist_free_all(h);

    if (*x->err)
        return jc_fail(x->unusable ? JC_EFORMAT : JC_EIO, "%s: %s", f->url, x->err);
    if (x->r.status == 416 && start > 0) {
        x->unusable = true; /* the partial file does not fit the content any more */
        return jc_fail(JC_EIO,
                       "%s: the server cannot resume at byte %lld (HTTP 416); the partial file "
                       "was removed; run again",
                       f->url, start);
    }
    if (x->r.status && !x->accepted)
        return jc_fail(JC_EIO, "%s: HTTP %ld from %s%s%s", f->url, x->r.status,
                       host_of(f->location, host, sizeof host), *x->r.error_msg ? ": " : "",
                       x->r.error_msg);
    if (c != CURLE_OK)
        return jc_fail(JC_EIO,
                       "%s: transfer interrupted after %lld of %s bytes (%s); run again "
                       "to resume",
                       f->url, x->off, size_str(a, sizeof a, x->expected),
                       curl_why(s, c, why, sizeof why));
    return 0;
}

/* Same ETag and size: the content is there, whoever put it there. */
static bool have_blob(const char *blob, long long size, long long *have)
{
    struct stat st;
    if (stat(blob, &st) < 0 || !S_ISREG(st.st_mode) || (size >= 0 && st.st_size != size))
        return false;
    *have = st.st_size;
    return true;
}

/* Makes blobs/<etag> complete and checked: already there, or fetched (resumed if it can be). */
static int fetch(struct session *s, const struct file *f, int index, int count)
{
    char *blob = NULL, *inc = NULL, *lock = NULL, a[32];
    struct xfer x = {.fd = -1, .o = s->o, .expected = f->size};
    struct stat st;
    int lock_fd = -1, rc;

    x.p.file = f->name;
    x.p.index = index;
    x.p.count = count;
    if (!(blob = xasprintf("%s/blobs/%s", s->repo_dir, f->etag)) ||
        !(inc = xasprintf("%s.incomplete", blob)) ||
        !(lock = xasprintf("%s/%s.lock", s->lock_dir, f->etag))) {
        rc = JC_ENOMEM;
        goto out_free;
    }
    if (have_blob(blob, f->size, &x.off)) {
        report(&x, JC_DL_CACHED);
        rc = 0;
        goto out_free;
    }
    /* huggingface_hub takes the same lock (filelock uses flock), so we never write together. */
    if ((lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0666)) < 0) {
        rc = jc_fail(JC_EIO, "cannot create '%s': %s", lock, strerror(errno));
        goto out_free;
    }
    if (flock(lock_fd, LOCK_EX | LOCK_NB) < 0) {
        report(&x, JC_DL_WAIT);
        while (flock(lock_fd, LOCK_EX) < 0)
            if (errno != EINTR) {
                rc = jc_fail(JC_EIO, "cannot lock '%s': %s", lock, strerror(errno));
                goto out_close;
            }
    }
    /* whoever held the lock may just have finished it */
    if (have_blob(blob, f->size, &x.off)) {
        report(&x, JC_DL_CACHED);
        rc = 0;
        goto out_close;
    }
    x.path = inc;
    if ((x.fd = open(inc, O_RDWR | O_CREAT | O_CLOEXEC, 0666)) < 0 || fstat(x.fd, &st) < 0) {
        rc = jc_fail(JC_EIO, "cannot create '%s': %s", inc, strerror(errno));
        goto out_close;
    }
    x.off = st.st_size;
    x.hashing = is_sha256(f->etag);
    jc_sha256_init(&x.sha);
    if (f->size >= 0 && x.off > f->size && !restart(&x)) {
        rc = jc_fail(JC_EIO, "%s", x.err);
        goto out_close;
    }
    if (x.hashing && x.off > 0 && (rc = hash_prefix(&x)) < 0)
        goto out_close;
    if (!(f->size >= 0 && x.off == f->size) && (rc = get(s, f, &x)) < 0) {
        if (x.unusable)
            unlink(inc);
        goto out_close;
    }
    if (fsync(x.fd) < 0) {
        rc = jc_fail(JC_EIO, "cannot write '%s': %s", inc, strerror(errno));
        goto out_close;
    }
    if (x.expected >= 0 && x.off != x.expected) {
        unlink(inc);
        rc = jc_fail(JC_EFORMAT, "%s: got %lld bytes, expected %s; the download was removed",
                     f->url, x.off, size_str(a, sizeof a, x.expected));
        goto out_close;
    }
    if (x.hashing) {
        uint8_t d[32];
        char hex[65];
        jc_sha256_final(&x.sha, d);
        jc_sha256_hex(d, hex);
        if (strcasecmp(hex, f->etag)) {
            unlink(inc);
            rc = jc_fail(JC_EFORMAT,
                         "%s: SHA-256 mismatch: the content hashes to %s, the Hub says %s; the "
                         "download was removed",
                         f->url, hex, f->etag);
            goto out_close;
        }
    }
    if (rename(inc, blob) < 0) {
        rc = jc_fail(JC_EIO, "cannot rename '%s' to '%s': %s", inc, blob, strerror(errno));
        goto out_close;
    }
    report(&x, JC_DL_DONE);
    rc = 0;
out_close:
    if (x.fd >= 0)
        close(x.fd);
    if (lock_fd >= 0)
        close(lock_fd); /* releases the flock */
out_free:
    resp_reset(&x.r);
    free(blob);
    free(inc);
    free(lock);
    return rc;
}

/* ---- the snapshot -------------------------------------------------------------------- */

/* snapshots/<commit>/<name> -> ../../blobs/<etag> (one more ../ per directory in name). */
static int link_file(const char *snap, const struct file *f)
{
    char target[1024], *link = NULL, *tmp = NULL, cur[1024];
    size_t o = 0;
    int rc = 0;
    ssize_t n;

    for (const char *p = f->name; (p = strchr(p, '/')) && o + 3 < sizeof target; p++)
        o += (size_t)snprintf(target + o, sizeof target - o, "../");
    if ((size_t)snprintf(target + o, sizeof target - o, "../../blobs/%s", f->etag) >=
        sizeof target - o)
        return jc_fail(JC_EINVAL, "'%s' is nested too deeply", f->name);
    if (!(link = jc_path_join(snap, f->name)))
        return JC_ENOMEM;
    if (strchr(f->name, '/')) {
        char *dir = strdup(link);
        if (!dir) {
            rc = jc_fail(JC_ENOMEM, "out of memory");
            goto out_free;
        }
        *strrchr(dir, '/') = '\0';
        rc = mkdirs(dir);
        free(dir);
        if (rc < 0)
            goto out_free;
    }
    if (symlink(target, link) == 0)
        goto out_free;
    if (errno == EEXIST && (n = readlink(link, cur, sizeof cur - 1)) >= 0) {
        cur[n] = '\0';
        if (!strcmp(cur, target))
            goto out_free;
    }
    /* another version of the file: replace the link in one step */
    if (!(tmp = xasprintf("%s.tmp.%ld", link, (long)getpid()))) {
        rc = JC_ENOMEM;
        goto out_free;
    }
    unlink(tmp);
    if (symlink(target, tmp) < 0 || rename(tmp, link) < 0) {
        rc = jc_fail(JC_EIO, "cannot link '%s' to '%s': %s", link, target, strerror(errno));
        unlink(tmp);
    }
out_free:
    free(link);
    free(tmp);
    return rc;
}

/* refs/<revision> names the commit; written atomically, and only when it changes. */
static int write_ref(struct session *s, const char *commit)
{
    char *path = xasprintf("%s/refs/%s", s->repo_dir, s->revision), *old = NULL;
    size_t len;
    struct jc_afile af;
    int rc;

    if (!path)
        return JC_ENOMEM;
    if (access(path, F_OK) == 0 && jc_read_file(path, 4096, &old, &len) == 0 &&
        !strcmp(old, commit)) {
        rc = 0;
        goto out_free;
    }
    char *dir = strdup(path);
    if (!dir) {
        rc = jc_fail(JC_ENOMEM, "out of memory");
        goto out_free;
    }
    *strrchr(dir, '/') = '\0';
    rc = mkdirs(dir);
    free(dir);
    if (rc < 0 || (rc = jc_afile_open(&af, path)) < 0)
        goto out_free;
    fputs(commit, af.f); /* no newline, as huggingface_hub writes it */
    rc = jc_afile_commit(&af);
out_free:
    free(old);
    free(path);
    return rc;
}

/* ---- the whole download -------------------------------------------------------------- */

/* The options; JC_EINVAL means one of them (a bad HF_ENDPOINT fails later, in curl). */
static int check_opts(const struct session *s, const char *const *files)
{
    const char *slash = strchr(s->repo, '/');

    /* "name" or "owner/name": one or two safe components */
    if (!safe_path(s->repo, 96) || (slash && strchr(slash + 1, '/')))
        return jc_fail(JC_EINVAL, "'%s' is not a repository id (name or owner/name)", s->repo);
    if (!safe_path(s->revision, 255))
        return jc_fail(JC_EINVAL, "'%s' is not a usable revision name", s->revision);
    for (size_t i = 0; files[i]; i++)
        if (!safe_path(files[i], 255))
            return jc_fail(JC_EINVAL, "'%s' is not a usable file name", files[i]);
    return 0;
}

/*
 * {endpoint}/{repo}/resolve/{revision}/{file}. The revision is escaped whole ("refs/pr/1"
 * becomes one path segment, as huggingface_hub sends it); names are checked by safe_path and
 * need no escaping.
 */
static char *resolve_url_of(struct session *s, const char *rev, const char *file)
{
    char *erev = libcurl.easy_escape(s->curl, rev, 0), *out;

    if (!erev) {
        jc_fail(JC_ENOMEM, "out of memory");
        return NULL;
    }
    out = xasprintf("%s/%s/resolve/%s/%s", s->endpoint, s->repo, erev, file);
    libcurl.free(erev);
    return out;
}

int jc_download(const struct jc_download_opts *o, char **snapshot)
{
    struct session s = {.o = o};
    const char *const *names = o->files ? o->files : default_files;
    const char *env;
    char *cache = NULL, *endpoint = NULL, *snap = NULL, *blobs, commit[160] = "", folder[256];
    struct file *files = NULL;
    int n = 0, rc;

    *snapshot = NULL;
    s.repo = o->repo ? o->repo : DEFAULT_REPO;
    s.revision = o->revision ? o->revision : "main";
    env = getenv("HF_ENDPOINT");
    endpoint = strdup(o->endpoint ? o->endpoint : env && *env ? env : DEFAULT_ENDPOINT);
    if (!endpoint)
        return jc_fail(JC_ENOMEM, "out of memory");
    for (size_t l = strlen(endpoint); l && endpoint[l - 1] == '/';)
        endpoint[--l] = '\0';
    s.endpoint = endpoint;
    if ((rc = check_opts(&s, names)) < 0)
        goto out_endpoint;
    if (o->cache && !(cache = strdup(o->cache)))
        rc = jc_fail(JC_ENOMEM, "out of memory");
    else if (!o->cache)
        rc = default_cache(&cache);
    if (rc < 0)
        goto out_endpoint;
    /* owner/name -> models--owner--name */
    snprintf(folder, sizeof folder, "models--%s", s.repo);
    for (char *p; (p = strchr(folder, '/'));) {
        memmove(p + 2, p + 1, strlen(p + 1) + 1);
        p[0] = p[1] = '-';
    }
    if (!(s.repo_dir = jc_path_join(cache, folder)) ||
        !(s.lock_dir = xasprintf("%s/.locks/%s", cache, folder))) {
        rc = JC_ENOMEM;
        goto out_cache;
    }
    if ((rc = find_token(&s)) < 0)
        goto out_cache;
    while (names[n])
        n++;
    if (!n) {
        rc = jc_fail(JC_EINVAL, "no files to download");
        goto out_cache;
    }
    if (!(files = jc_calloc((size_t)n, sizeof *files, "the file list"))) {
        rc = JC_ENOMEM;
        goto out_cache;
    }
    if ((rc = jc_curl_load("jclip download")) < 0)
        goto out_files;
    if (!(s.curl = libcurl.easy_init())) {
        rc = jc_fail(JC_EIO, "cannot initialise libcurl");
        goto out_files;
    }
    libcurl.easy_setopt(s.curl, CURLOPT_USERAGENT, "jclip/" JCLIP_VERSION);
    libcurl.easy_setopt(s.curl, CURLOPT_ERRORBUFFER, s.errbuf);
    libcurl.easy_setopt(s.curl, CURLOPT_NOSIGNAL, 1L);
    libcurl.easy_setopt(s.curl, CURLOPT_HEADERFUNCTION, on_header);
    /* a dead connection fails instead of hanging: 10 s to connect, 60 s without a byte */
    libcurl.easy_setopt(s.curl, CURLOPT_CONNECTTIMEOUT, 10L);
    libcurl.easy_setopt(s.curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
    libcurl.easy_setopt(s.curl, CURLOPT_LOW_SPEED_TIME, 60L);
    jc_curl_http_only(s.curl);

    /*
     * All metadata first, so that a missing file or token fails before anything large moves.
     * The first file pins the commit; the others are asked for at that commit, so a push
     * during the download cannot mix two versions.
     */
    for (int i = 0; i < n; i++) {
        const char *rev = i ? commit : s.revision;
        files[i].name = names[i];
        if (!(files[i].url = resolve_url_of(&s, rev, names[i]))) {
            rc = JC_ENOMEM;
            goto out_curl;
        }
        if ((rc = head(&s, &files[i], commit, sizeof commit)) < 0)
            goto out_curl;
        if (i == 0 && !strcmp(files[0].location, files[0].url) && strcmp(rev, commit)) {
            free(files[0].location);
            if (!(files[0].location = resolve_url_of(&s, commit, names[0]))) {
                rc = JC_ENOMEM;
                goto out_curl;
            }
        }
    }
    if ((rc = mkdirs(s.repo_dir)) < 0 || (rc = mkdirs(s.lock_dir)) < 0)
        goto out_curl;
    blobs = jc_path_join(s.repo_dir, "blobs");
    if (!blobs || (rc = mkdirs(blobs)) < 0) {
        rc = blobs ? rc : JC_ENOMEM;
        free(blobs);
        goto out_curl;
    }
    free(blobs);
    for (int i = 0; i < n; i++)
        if ((rc = fetch(&s, &files[i], i + 1, n)) < 0)
            goto out_curl;

    /* Every blob is complete: now the snapshot, then the ref that points at it. */
    if (!(snap = xasprintf("%s/snapshots/%s", s.repo_dir, commit))) {
        rc = JC_ENOMEM;
        goto out_curl;
    }
    if ((rc = mkdirs(snap)) < 0)
        goto out_curl;
    for (int i = 0; i < n; i++)
        if ((rc = link_file(snap, &files[i])) < 0)
            goto out_curl;
    if (strcmp(s.revision, commit) && (rc = write_ref(&s, commit)) < 0)
        goto out_curl;
    *snapshot = snap;
    snap = NULL;
    rc = 0;
out_curl:
    libcurl.easy_cleanup(s.curl);
out_files:
    for (int i = 0; i < n; i++) {
        free(files[i].url);
        free(files[i].location);
    }
    free(files);
out_cache:
    free(snap);
    free(s.token);
    free(s.repo_dir);
    free(s.lock_dir);
    free(cache);
out_endpoint:
    free(endpoint);
    return rc;
}
