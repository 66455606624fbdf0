/*
 * Deterministic stand-ins for phone photos, made at bench and test time (never committed):
 * one of the golden pictures scaled up to w x h, with sensor-like noise, encoded by
 * libjpeg-turbo at quality 90 with 4:2:0 chroma, as phone cameras write them.
 */
#ifndef JCLIP_PHOTO_H
#define JCLIP_PHOTO_H

#include <stddef.h>
#include <stdint.h>

/*
 * The JPEG bytes of photo number `seed` (any number: the picture and the noise follow it),
 * malloc'd into *jpeg. `golden` is the folder of the golden images. 0, or -1 with a message
 * on stderr.
 */
int jc_make_photo(const char *golden, int w, int h, unsigned seed, uint8_t **jpeg, size_t *len);

#endif
