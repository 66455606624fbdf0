/* Loading libcurl on first use: see curl.h. */
#include "curl.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stddef.h>
#include <string.h>

#define LIBCURL_SONAME "libcurl.so.4"

struct jc_libcurl libcurl;

static const struct {
    const char *name;
    size_t off; /* of its pointer in struct jc_libcurl */
} syms[] = {
    {"curl_easy_init", offsetof(struct jc_libcurl, easy_init)},
    {"curl_easy_setopt", offsetof(struct jc_libcurl, easy_setopt)},
    {"curl_easy_perform", offsetof(struct jc_libcurl, easy_perform)},
    {"curl_easy_getinfo", offsetof(struct jc_libcurl, easy_getinfo)},
    {"curl_easy_cleanup", offsetof(struct jc_libcurl, easy_cleanup)},
    {"curl_easy_strerror", offsetof(struct jc_libcurl, easy_strerror)},
    {"curl_easy_escape", offsetof(struct jc_libcurl, easy_escape)},
    {"curl_free", offsetof(struct jc_libcurl, free)},
    {"curl_slist_append", offsetof(struct jc_libcurl, slist_append)},
    {"curl_slist_free_all", offsetof(struct jc_libcurl, slist_free_all)},
    {"curl_url", offsetof(struct jc_libcurl, url)},
    {"curl_url_cleanup", offsetof(struct jc_libcurl, url_cleanup)},
    {"curl_url_get", offsetof(struct jc_libcurl, url_get)},
    {"curl_url_set", offsetof(struct jc_libcurl, url_set)},
};

static pthread_once_t once = PTHREAD_ONCE_INIT;
static char load_error[512]; /* why loading failed; empty once libcurl is usable */

static void load(void)
{
    void *h = dlopen(LIBCURL_SONAME, RTLD_NOW | RTLD_LOCAL);
    const char *why;

    if (!h) {
        why = dlerror();
        snprintf(load_error, sizeof load_error, "%s", why ? why : "dlopen failed");
        return;
    }
    CURLcode (*global_init)(long) = NULL;
    for (size_t i = 0; i <= sizeof syms / sizeof *syms; i++) {
        dlerror();
        void *f = dlsym(h, i ? syms[i - 1].name : "curl_global_init");
        if (!f) {
            why = dlerror();
            snprintf(load_error, sizeof load_error, "%s", why ? why : "a function is missing");
            memset(&libcurl, 0, sizeof libcurl);
            dlclose(h);
            return;
        }
        /* POSIX: a function's address from dlsym fits a function pointer */
        if (i)
            memcpy((char *)&libcurl + syms[i - 1].off, &f, sizeof f);
        else
            memcpy(&global_init, &f, sizeof f);
    }
    /*
     * curl_global_init is not thread-safe before 7.84, so it runs here, once; there is no
     * curl_global_cleanup: libcurl stays loaded until the process exits.
     */
    if (global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(load_error, sizeof load_error, "curl_global_init failed");
        memset(&libcurl, 0, sizeof libcurl);
    }
}

int jc_curl_load(const char *who)
{
    pthread_once(&once, load);
    if (*load_error)
        return jc_fail(JC_EIO, "cannot load libcurl (" LIBCURL_SONAME "), which %s needs: %s", who,
                       load_error);
    return 0;
}

void jc_curl_http_only(CURL *c)
{
#if LIBCURL_VERSION_NUM >= 0x075500
    libcurl.easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    libcurl.easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
    libcurl.easy_setopt(c, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
    libcurl.easy_setopt(c, CURLOPT_REDIR_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
}
