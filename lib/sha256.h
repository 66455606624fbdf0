/*
 * SHA-256 (FIPS 180-4), to check downloads against the SHA-256 the Hugging Face Hub gives for
 * LFS files. Written here because the build links no crypto library.
 */
#ifndef JCLIP_SHA256_H
#define JCLIP_SHA256_H

#include <stddef.h>
#include <stdint.h>

struct jc_sha256 {
    uint32_t h[8];
    uint64_t len; /* bytes hashed so far */
    uint8_t buf[64];
    size_t n; /* bytes waiting in buf */
};

void jc_sha256_init(struct jc_sha256 *s);
void jc_sha256_update(struct jc_sha256 *s, const void *data, size_t len);

/* Writes the 32-byte digest; `s` must be initialised again before further use. */
void jc_sha256_final(struct jc_sha256 *s, uint8_t out[32]);

/* The digest as 64 lowercase hex digits and a NUL. */
void jc_sha256_hex(const uint8_t digest[32], char out[65]);

#endif
