/* safetensors files: header parsing, validation and memory-mapped tensor access. Internal. */
#ifndef JCLIP_SAFETENSORS_H
#define JCLIP_SAFETENSORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JC_ST_MAX_DIMS 8

enum jc_dtype { JC_F32, JC_F16, JC_BF16, JC_OTHER };

struct jc_tensor {
    char *name;
    enum jc_dtype dtype;
    char dtype_name[8];
    int ndim;
    int64_t shape[JC_ST_MAX_DIMS];
    int64_t nelem;
    uint64_t begin, end; /* byte range in the data section */
};

struct jc_st {
    char *path;
    uint64_t file_size;
    uint64_t data_start; /* 8 + header length */
    struct jc_tensor *t; /* sorted by name */
    size_t n;
    int fd;
    const unsigned char *map; /* whole file, or NULL until jc_st_map */
    float **converted;        /* F16/BF16 tensors converted to F32, owned */
    size_t n_converted;
};

/*
 * Opens `path` and validates its header: length within the file, JSON, every tensor's
 * dtype, shape and byte range (inside the data, size = elements x dtype width, no
 * overlaps, no duplicate names). Reads no tensor data.
 */
int jc_st_open(struct jc_st *st, const char *path);

/* Parses and validates a header held in memory (data_len bytes of data follow it). */
int jc_st_parse_header(struct jc_st *st, const char *json, size_t len, uint64_t data_len);

/* Memory-maps the file read-only. */
int jc_st_map(struct jc_st *st);

void jc_st_release(struct jc_st *st);

/* The tensor named `name`, or NULL. */
const struct jc_tensor *jc_st_find(const struct jc_st *st, const char *name);

/*
 * F32 data of `t` after checking it has the given shape (ndim dims). F32 data that is
 * aligned is returned in place; F16/BF16 (or misaligned F32) is converted once into memory
 * the st owns. Errors name the file and tensor, with expected and found shapes.
 */
int jc_st_get(struct jc_st *st, const char *name, int ndim, const int64_t *shape,
              const float **out);

/* "[a, b, c]" into buf. */
const char *jc_shape_str(char *buf, size_t cap, int ndim, const int64_t *shape);

#endif
