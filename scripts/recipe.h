/*
 * jclip-testweights-v1: the deterministic test weights of tests/golden/RECIPE.md as a small
 * library (libc and libm only), shared by jclip-gen-model and the unit test that checks it.
 *
 * Every value is a pure function of the tensor name, its shape and the flat element index,
 * so a generator can produce any slice of any tensor in any order.
 */
#ifndef JCLIP_RECIPE_H
#define JCLIP_RECIPE_H

#include <stddef.h>
#include <stdint.h>

#define RECIPE_MAX_NDIM    4
#define RECIPE_NAME_MAX    96
#define RECIPE_MAX_TENSORS 512

/* The dims of one size config (RECIPE §1). */
struct recipe_config {
    const char *name;
    int text_dim, text_heads, text_intermediate, text_layers, vocab, type_vocab;
    double text_eps;
    int vision_width, vision_head_width, vision_layers, vision_mlp_hidden;
    double vision_eps;
    int image_size, patch_size, pt_hw_seq_len;
    double mlp_ratio;
};

struct recipe_tensor {
    char name[RECIPE_NAME_MAX];
    int ndim; /* 0 for the scalar logit_scale */
    int64_t shape[RECIPE_MAX_NDIM];
};

/* tiny, tiny12, full, then a terminating entry whose name is NULL. */
extern const struct recipe_config recipe_configs[];

/* The config called `name`, or NULL. */
const struct recipe_config *recipe_config_find(const char *name);

/*
 * Every tensor of `cfg` in the order of RECIPE §3. Writes at most `max` entries to `out`
 * (which may be NULL when max is 0) and returns the total count, so a call with max 0
 * sizes the array.
 */
int recipe_tensors(const struct recipe_config *cfg, struct recipe_tensor *out, int max);

/* Sorts tensors by name in ascending byte order: the order of the safetensors file. */
void recipe_sort(struct recipe_tensor *t, int n);

/* Element count (1 for a 0-d tensor). */
int64_t recipe_numel(const int64_t *shape, int ndim);

/*
 * The compact, space-padded safetensors JSON header of RECIPE §6 for `cfg` (without the
 * u64 length in front). *len is its length, a multiple of 8; *data_len the byte count of
 * the data that follows. Returns a malloc'd NUL-terminated string the caller frees, or
 * NULL when out of memory.
 */
char *recipe_header(const struct recipe_config *cfg, size_t *len, uint64_t *data_len);

/* FNV-1a-64 of the bytes of `name`. */
uint64_t recipe_name_hash(const char *name);

/* The mixed 64-bit z of element i of the tensor whose name hash is h. */
uint64_t recipe_mix(uint64_t h, uint64_t i);

/* The top 24 bits of recipe_mix(h, i). */
uint32_t recipe_k(uint64_t h, uint64_t i);

/* k mapped to [-1, 1), exactly. */
float recipe_r(uint32_t k);

/*
 * The scale s and offset c of a tensor (RECIPE §4 rules 1-6). logit_scale gets s = 0 and
 * c = its fixed value, so r * s + c holds for it too. Returns 0, or -1 when no rule
 * matches `name`.
 */
int recipe_scale(const char *name, const int64_t *shape, int ndim, float *s, float *c);

/* Element i of a tensor; NaN when no rule matches `name`. */
float recipe_value(const char *name, const int64_t *shape, int ndim, uint64_t i);

/*
 * Elements [start, start + n) of a tensor into out: the fast path for whole tensors.
 * Returns 0, or -1 when no rule matches `name`.
 */
int recipe_fill(const char *name, const int64_t *shape, int ndim, uint64_t start, size_t n,
                float *out);

#endif
