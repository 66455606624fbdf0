/* Shared by the files of lib/; not part of the public API. */
#ifndef JCLIP_INTERNAL_H
#define JCLIP_INTERNAL_H

#include "jclip.h"

#include <stdarg.h>
#include <stdio.h>

#if defined(__GNUC__)
#define JC_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define JC_PRINTF(f, a)
#endif

/* Records the calling thread's error message and returns `code`, so `return jc_fail(...)`. */
int jc_fail(int code, const char *fmt, ...) JC_PRINTF(2, 3);

/* Prefixes the current message with "<prefix>: ". Returns `code`. */
int jc_fail_prefix(int code, const char *fmt, ...) JC_PRINTF(2, 3);

/* malloc and calloc that record JC_ENOMEM with what was being allocated. */
void *jc_malloc(size_t n, const char *what);
void *jc_calloc(size_t count, size_t size, const char *what);

/*
 * Reads a whole file into a malloc'd buffer with a NUL after the last byte. Fails with
 * JC_ELIMIT when it is larger than `limit` bytes.
 */
int jc_read_file(const char *path, size_t limit, char **buf, size_t *len);

/*
 * cJSON_ParseWithLengthOpts (require_null_terminated false) that tells a failed allocation
 * from bad JSON, which cJSON does not: 0 with *root set; JC_ENOMEM with the message set
 * ("NAME: out of memory parsing JSON"); or JC_EFORMAT with no message, for the caller to
 * say what is wrong (*end, if not NULL, points near the fault).
 */
struct cJSON;
int jc_json_parse(struct cJSON **root, const char *buf, size_t len, const char **end,
                  const char *name);

/* Joins dir and name with '/'; malloc'd, NULL on allocation failure (recorded). */
char *jc_path_join(const char *dir, const char *name);

#endif
