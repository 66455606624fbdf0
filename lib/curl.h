/*
 * libcurl, loaded when a command first needs the network (jclip download, an image URL),
 * not linked: it brings some 30 libraries (TLS, Kerberos, LDAP, ...) whose loading and
 * relocation would otherwise cost every jclip process, including the many that never touch
 * the network, several milliseconds at start-up.
 */
#ifndef JCLIP_CURL_H
#define JCLIP_CURL_H

#include "internal.h"

/* the names are called through pointers, not the typecheck macros */
#define CURL_DISABLE_TYPECHECK
#include <curl/curl.h>

struct jc_libcurl {
    CURL *(*easy_init)(void);
    CURLcode (*easy_setopt)(CURL *curl, CURLoption option, ...);
    CURLcode (*easy_perform)(CURL *curl);
    CURLcode (*easy_getinfo)(CURL *curl, CURLINFO info, ...);
    void (*easy_cleanup)(CURL *curl);
    const char *(*easy_strerror)(CURLcode code);
    char *(*easy_escape)(CURL *curl, const char *s, int length);
    void (*free)(void *p);
    struct curl_slist *(*slist_append)(struct curl_slist *list, const char *s);
    void (*slist_free_all)(struct curl_slist *list);
    CURLU *(*url)(void);
    void (*url_cleanup)(CURLU *u);
    CURLUcode (*url_get)(const CURLU *u, CURLUPart what, char **part, unsigned int flags);
    CURLUcode (*url_set)(CURLU *u, CURLUPart what, const char *part, unsigned int flags);
};

/* Filled by jc_curl_load; read-only after it. */
extern struct jc_libcurl libcurl;

/*
 * Loads and initialises libcurl once per process (thread-safe). JC_EIO, with the loader's
 * reason and `who` (what needs it, for the message), when it cannot.
 */
int jc_curl_load(const char *who);

/* Only http and https, for the first request and every redirect. */
void jc_curl_http_only(CURL *c);

#endif
