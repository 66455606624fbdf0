/*
 * libjclip: jina-clip-v1 inference on the CPU.
 *
 * A model directory (config.json, model.safetensors, tokenizer files) is opened once; the
 * weights stay memory-mapped and read-only. Texts are tokenized with the model's own
 * WordPiece vocabulary and run through the JinaBERT text tower; the result is one vector
 * per text in the shared embedding space.
 *
 *     struct jc_model *m;
 *     if (jc_model_open(&m, dir, JC_LOAD_TEXT) < 0)
 *         die("%s", jc_errmsg());
 *     int32_t *ids; size_t n, full;
 *     jc_tokenize(jc_model_tokenizer(m), "a photo of a cat", 16, 8192, &ids, &n, &full);
 *     float *v = malloc(jc_model_dim(m) * sizeof *v);
 *     const int32_t *seqs[1] = {ids};
 *     jc_embed_texts(m, seqs, &n, 1, 0, v);
 *     free(ids); free(v); jc_model_free(m);
 *
 * Conventions: functions return 0 (or a count) on success and a negative JC_E* code on
 * failure; the message for the last failure of the calling thread is read with
 * jc_errmsg(). Nothing here prints or exits. Memory a function returns is the caller's to
 * free() unless its comment says otherwise.
 */
#ifndef JCLIP_H
#define JCLIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define JCLIP_VERSION "0.1.0"

enum jc_status {
    JC_OK = 0,
    JC_ENOMEM = -1,    /* allocation failed */
    JC_EIO = -2,       /* a file could not be opened, read, mapped or written */
    JC_EFORMAT = -3,   /* a file is malformed: JSON, safetensors, image, .npy */
    JC_ENOTFOUND = -4, /* no model directory, or a tensor or file missing from it */
    JC_ESHAPE = -5,    /* a tensor has the wrong shape or dtype for the config */
    JC_EINVAL = -6,    /* a bad argument: an option value, an empty batch */
    JC_ELIMIT = -7,    /* an input exceeds a limit (pixels, tokens, bytes) */
    JC_ETIMEOUT = -8,  /* a network transfer did not finish in time */
};

/* Message of the calling thread's last failure; "" if none. Owned by the library. */
const char *jc_errmsg(void);

/* ---- threads and BLAS --------------------------------------------------------------- */

/*
 * Makes OpenBLAS hold one GEMM buffer (about 128 MiB of address space, not touched) per
 * thread of the pool before any GEMM runs, as OpenBLAS cannot report a failed allocation,
 * loading OpenBLAS first (JC_EIO, "cannot load OpenBLAS: ...", when it cannot be).
 * jc_model_open calls it for the towers, and jc_embed_texts and jc_embed_images when the
 * pool has grown, and jc_dot_matrix. Returns 0, or JC_ENOMEM
 * ("not enough memory for OpenBLAS: ...") when the buffers do not fit.
 */
int jc_blas_reserve(void);

/*
 * The core type OpenBLAS runs ("SkylakeX", "Haswell", ...; "none" when it cannot be loaded).
 * OpenBLAS is loaded on first use (lib/blas.c says why), with the best core type this CPU
 * supports unless OPENBLAS_CORETYPE names one. Owned by OpenBLAS.
 */
const char *jc_blas_corename(void);

/*
 * Whether the user's OPENBLAS_CORETYPE (*user) holds OpenBLAS below this CPU's best core
 * type (*best): obeyed, but slower.
 */
bool jc_blas_coretype_lowered(const char **user, const char **best);

/* The best OpenBLAS core type for this CPU, or NULL when the CPU is not x86-64. */
const char *jc_blas_best_coretype(void);

/*
 * Whether OpenBLAS core type `have` is below `want` (both OpenBLAS names). Unknown names
 * are never "below", so an unfamiliar OpenBLAS is left alone.
 */
bool jc_blas_coretype_below(const char *have, const char *want);

/*
 * Whether a text's or image's embedding is the same, to the bit, whatever else is in its
 * batch, whatever the thread count and wherever it sits: true when the probe of OpenBLAS's
 * SGEMM (run once, on first call) found how rows must be laid out for that (lib/blas.c),
 * as it does for every x86-64 core type measured, Haswell's included.
 */
bool jc_blas_batch_invariant(void);

/*
 * The rows of the groups in which OpenBLAS's SGEMM rounds alike: each text's and image's
 * tokens start at a multiple of it in a batch (1 for the AVX-512 kernels, 12 for
 * Haswell's), so a text of n tokens costs n rounded up to it.
 */
int jc_blas_row_unroll(void);

/*
 * The most rows a matrix product may have to be computed by jclip's own kernel (each
 * weight read once for all of them), which sums in OpenBLAS's order so that a row's bits
 * are the same on either path; 0 when the probe found OpenBLAS's order to be none the
 * kernel follows (Haswell's kernels), and every product goes to OpenBLAS. jc_blas_kblock()
 * is that order's block of K (0 likewise).
 */
int jc_blas_few_rows(void);
int jc_blas_kblock(void);
/*
 * Where jc_blas_few_rows() is 0: the longest text whose products jclip's own kernel
 * computes whatever its batch, in its own order (K in blocks of jc_linear_own_kblock()),
 * when OpenBLAS would pad the text by half or more; 0 where jc_blas_few_rows() is not.
 * Other texts shorter than jc_linear_tail_split() tokens put their rows past their last
 * whole group of jc_blas_row_unroll() in groups shared with other texts' (0 where no
 * padding is needed, or OpenBLAS rounds rows too unevenly for that).
 */
int jc_linear_own_tokens(void);
int jc_linear_tail_split(void);
int jc_linear_own_kblock(void);

/*
 * OpenBLAS's SGEMM speed on this machine with `threads` cores, in GFLOP/s: the best of five
 * n x n x n products run by OpenBLAS's own threads and of five split by rows between that
 * many threads of jclip's pool, each calling OpenBLAS single-threaded. 0 when out of
 * memory. For benchmarks.
 */
double jc_blas_peak_gflops(int threads, int n);

/* Sets the thread count of OpenBLAS and of jclip's own pool; n <= 0 means all cores. */
void jc_set_threads(int n);
int jc_threads(void);

/* Name of the kernel table in use: "ref", "avx2", "avx512" or "neon". */
const char *jc_isa_name(void);

/* How many kernels of the table in use replace the scalar reference ones. */
int jc_isa_specialised(void);

/*
 * Fails with JC_EINVAL when $JCLIP_ISA names a table that is unknown or cannot run here, or
 * $JCLIP_AMX is other than 0, 1 or empty.
 */
int jc_isa_check(void);

/* ---- precision ------------------------------------------------------------------------ */

/*
 * The arithmetic of the linear layers of models opened from now on: "fp32" (the default)
 * or "bf16", where every linear layer of both towers rounds its two inputs, the
 * activations and the weights, to bfloat16 (to nearest even) and sums the products in
 * fp32; everything else stays fp32. The weights are converted once as the model opens and
 * the fp32 pages released, so they hold half the memory. bf16 needs a kernel table with
 * bf16 products (jc_bf16_instructions()); where the table in use has none, fp32 stays in
 * effect and the call returns 1, for the caller to warn. JC_EINVAL (reported) for any
 * other name.
 */
int jc_set_precision(const char *name);

/* The precision models opened from now on get: "fp32" or "bf16". */
const char *jc_precision_name(void);

/*
 * The instructions the kernel table in use runs bf16 products with ("AVX512-BF16",
 * "AMX-BF16", "scalar reference"), or NULL where it has none.
 */
const char *jc_bf16_instructions(void);

/* ---- model ---------------------------------------------------------------------------- */

/*
 * Finds the model directory: `dir` if not NULL, else $JCLIP_MODEL, else the Hugging Face
 * cache ($HF_HOME/hub or ~/.cache/huggingface/hub, repository jinaai/jina-clip-v1, the
 * snapshot refs/main names, else the newest). On success *out is a malloc'd path. On
 * failure the message lists every place looked at and how to get the model.
 */
int jc_model_locate(const char *dir, char **out);

enum jc_load {
    JC_LOAD_TOKENIZER = 1, /* tokenizer.json, else vocab.txt */
    JC_LOAD_TEXT = 2,      /* text tower weights (implies the tokenizer) */
    JC_LOAD_VISION = 4,    /* vision tower weights */
    JC_LOAD_INFO = 8,      /* the tensor table and config only: no weights are read */
};

struct jc_model;

/*
 * Opens a model directory and validates what `what` asks for: config.json always; the
 * safetensors header and every tensor of the requested towers (name, dtype, shape, byte
 * range) before any weight is touched. On success *out is the model (free with
 * jc_model_free). On failure *out is NULL.
 *
 * One thread at a time: the embedding calls share one thread pool, and a model keeps its
 * activation memory between calls (so it holds the largest batch's until it is freed).
 */
int jc_model_open(struct jc_model **out, const char *dir, unsigned what);
void jc_model_free(struct jc_model *m);

struct jc_text_dims {
    int vocab, dim, heads, head_dim, layers, intermediate;
    float eps;
    int64_t params;
};

struct jc_vision_dims {
    int width, heads, head_dim, layers, mlp_hidden, image_size, patch_size;
    float eps;
    int64_t params;
};

struct jc_model_info {
    const char *dir;   /* owned by the model */
    const char *dtype; /* dtype of the stored tensors: "F32", "F16", "BF16" or "mixed" */
    int embed_dim;     /* width of the shared embedding space */
    float logit_scale; /* the stored parameter; CLIP logits use exp() of it */
    int64_t params;    /* all parameters in the file */
    int tensors;       /* tensors in the file */
    bool has_text, has_vision;
    struct jc_text_dims text;
    struct jc_vision_dims vision;
    const char *precision; /* the model's: "fp32" or "bf16" (jc_set_precision) */
    /* Bytes the linear layers' weight matrices of the file's towers hold in that precision. */
    int64_t matrix_bytes;
};

/* Fills *info from the config and tensor table (needs JC_LOAD_INFO, TEXT or VISION). */
int jc_model_info(const struct jc_model *m, struct jc_model_info *info);

/* Embedding width. */
int jc_model_dim(const struct jc_model *m);

/* ---- tokenizer ------------------------------------------------------------------------ */

struct jc_tokenizer;

/* The model's tokenizer (JC_LOAD_TOKENIZER or JC_LOAD_TEXT); owned by the model. */
const struct jc_tokenizer *jc_model_tokenizer(const struct jc_model *m);

/*
 * Loads the tokenizer of a model directory: tokenizer.json, or vocab.txt when there is no
 * tokenizer.json. Free with jc_tokenizer_free.
 */
int jc_tokenizer_load(struct jc_tokenizer **out, const char *dir);

/* Loads from memory: a tokenizer.json document or a vocab.txt. `name` is used in errors. */
int jc_tokenizer_from_json(struct jc_tokenizer **out, const char *buf, size_t len,
                           const char *name);
int jc_tokenizer_from_vocab(struct jc_tokenizer **out, const char *buf, size_t len,
                            const char *name);
void jc_tokenizer_free(struct jc_tokenizer *tk);

/*
 * BERT uncased WordPiece, byte-for-byte as Hugging Face tokenizers does it. `text` is
 * `len` bytes of UTF-8 and may contain NUL; invalid bytes count as U+FFFD (deleted).
 * Adds [CLS] and [SEP]. When the result would exceed max_tokens (>= 2), the content is cut
 * to max_tokens - 2 ids and [SEP] stays last. *ids (malloc'd, caller frees) gets *n ids;
 * *n_full, if not NULL, gets the untruncated count.
 */
int jc_tokenize(const struct jc_tokenizer *tk, const char *text, size_t len, size_t max_tokens,
                int32_t **ids, size_t *n, size_t *n_full);

/* The token string of an id, or NULL if out of range. Owned by the tokenizer. */
const char *jc_tokenizer_token(const struct jc_tokenizer *tk, int32_t id);
size_t jc_tokenizer_size(const struct jc_tokenizer *tk);

/*
 * Replaces each maximal invalid UTF-8 sequence in buf[0..len) with U+FFFD (as
 * Python's errors="replace" does). Returns the number replaced; *out (malloc'd) and
 * *out_len get the result, or *out is NULL when nothing needed replacing.
 * Returns JC_ENOMEM on failure.
 */
long jc_utf8_repair(const char *buf, size_t len, char **out, size_t *out_len);

/* ---- text tower ----------------------------------------------------------------------- */

enum jc_embed_flags {
    JC_EMBED_RAW = 1, /* the unnormalised mean-pooled vector instead of the L2-normalised one */
};

/*
 * Embeds n token sequences (ids[i] has lens[i] ids, each 1..8192... as the config allows)
 * into out[n * dim]. Sequences of different lengths are packed, not padded. Id 0 ([PAD])
 * inside a sequence is masked out of attention and pooling, as the reference does.
 */
int jc_embed_texts(struct jc_model *m, const int32_t *const *ids, const size_t *lens, size_t n,
                   unsigned flags, float *out);

/* ---- vision tower --------------------------------------------------------------------- */

/*
 * Embeds n preprocessed images (pixels [n, 3, S, S] as jc_image_preprocess makes them, S the
 * model's image size) into out[n * dim]: the CLS token after the final norm, L2-normalised
 * unless JC_EMBED_RAW.
 */
int jc_embed_images(struct jc_model *m, const float *pixels, size_t n, unsigned flags, float *out);

/* The model's preprocessing: image size, per-channel mean and std (JC_LOAD_VISION). */
int jc_model_preprocess(const struct jc_model *m, int *size, float mean[3], float std[3]);

/* The stored logit_scale parameter; CLIP logits are exp(logit_scale) * cosine. */
float jc_model_logit_scale(const struct jc_model *m);

/*
 * out[nq, nc] = q c^T (rows of out ldo floats apart): the cosines of every row of q [nq, d]
 * with every row of c [nc, d] when both are L2-normalised. One GEMM, split across the thread pool;
 * each value does not depend on the other rows. Returns 0, JC_ENOMEM, or what jc_blas_reserve()
 * returns.
 */
int jc_dot_matrix(const float *q, size_t nq, const float *c, size_t nc, size_t d, float *out,
                  size_t ldo);

/* L2-normalises v[0..n) in place as the reference does: v / max(|v|, 1e-12). */
void jc_l2_normalize(float *v, size_t n);

/*
 * dst[r] = src[r] L2-normalised, for rows r < n of d values, across the thread pool: each
 * row the bits jc_l2_normalize gives it. dst and src must not overlap.
 */
void jc_l2_normalize_rows(float *dst, const float *src, size_t n, size_t d);

/* ---- images --------------------------------------------------------------------------- */

/*
 * Image sources. Wherever the functions below take a path, it may also be an http:// or
 * https:// URL, fetched into memory (jc_fetch), or a data:image/TYPE;base64,DATA URI.
 */

/* The default cap on a fetched image's bytes, 32 MiB. */
#define JC_DEFAULT_MAX_FETCH_BYTES ((size_t)32 << 20)

/* How to fetch; all fields zero means the defaults. */
struct jc_fetch_opts {
    size_t max_bytes; /* a larger body is refused, and no more of it read; 0: the default */
    long timeout;     /* seconds for the whole transfer (connecting: at most 10); 0: 30 */
    bool no_fetch;    /* refuse URLs */
};

/* Whether s starts with http:// or https:// (any case); and with data:. */
bool jc_is_url(const char *s);
bool jc_is_data_uri(const char *s);

/*
 * Fetches an http or https URL into *buf (malloc'd, *len bytes). At most 5 redirects, to
 * http or https only. Returns 0, or: JC_EINVAL for another scheme or with no_fetch set,
 * JC_ELIMIT over the cap, JC_ETIMEOUT out of time, JC_EIO for an HTTP status other than
 * 2xx or a failed transfer (the message names the URL and says why).
 */
int jc_fetch(const char *url, const struct jc_fetch_opts *o, char **buf, size_t *len);

/*
 * Decodes a data:image/TYPE;base64,DATA URI of len bytes into *data (malloc'd, *n bytes);
 * *head gets the length of its head, up to and including the comma. Errors (JC_EFORMAT)
 * start with `what`, e.g. "\"image\" is a data URI without ';base64' ...".
 */
int jc_data_uri(const char *uri, size_t len, const char *what, uint8_t **data, size_t *n,
                size_t *head);

/* Width and height of an image, read from its header alone (no pixels decoded). */
int jc_image_size(const char *path, int *w, int *h);

/* The same from memory; `name` is used in errors. */
int jc_image_size_mem(const void *buf, size_t len, const char *name, int *w, int *h);

/* Pillow's decompression-bomb limit, the default pixel limit. */
#define JC_DEFAULT_MAX_PIXELS 178956970u

/* How to read an image; NULL options mean the defaults (all fields zero). */
struct jc_image_opts {
    size_t max_pixels; /* refuse larger images, from the header; 0: JC_DEFAULT_MAX_PIXELS */
    /*
     * JPEG draft decoding: 0 decodes at full size, exactly as Pillow does. Otherwise the
     * smallest of libjpeg's DCT-domain scales (1/8 to 8/8) whose short side is still at least
     * `draft` pixels: far faster on large photos, a few levels from the exact pixels.
     * jc_image_load gives the reduced image; jc_image_load_pixels resamples it over the full
     * image's geometry, as it must be to stand for it.
     */
    int draft;
    bool exif_rotate; /* apply the EXIF Orientation tag, as Pillow's ImageOps.exif_transpose */
    struct jc_fetch_opts fetch; /* for a path that is a URL */
};

/* An 8-bit RGB image, rows top to bottom. */
struct jc_image {
    int w, h;
    uint8_t *rgb;        /* [h, w, 3], malloc'd; jc_image_release frees it */
    const char *warning; /* a static string when metadata asked for were unreadable, or NULL */
};

/*
 * Decodes an image file (JPEG, PNG, WebP, HEIC, AVIF, GIF first frame, BMP, TGA, PNM) and
 * converts it to RGB as PIL.Image.convert('RGB') does: grey replicated, alpha dropped,
 * palettes expanded, CMYK converted, 16-bit reduced to 8. Images with no pixels or more than
 * the pixel limit are refused from the header, before any pixel is decoded; damaged data
 * (a truncated file, a corrupt scan) are errors, never filled in. Errors name the file and
 * say why.
 */
int jc_image_load(const char *path, const struct jc_image_opts *o, struct jc_image *img);

/* The same from memory; `name` is used in errors. */
int jc_image_decode(const void *buf, size_t len, const char *name, const struct jc_image_opts *o,
                    struct jc_image *img);

void jc_image_release(struct jc_image *img);

/*
 * Pillow-exact resize and centre crop (spec section 5 steps 2-3): the shorter side to
 * `size` with Pillow's antialiased bicubic in 8-bit fixed point, horizontal pass first,
 * then a centre crop with round-half-to-even offsets. out is [size, size, 3].
 */
int jc_image_resize_crop(const struct jc_image *img, int size, uint8_t *out);

/*
 * The whole preprocessing: resize and crop, then v = byte / 255.0f and (v - mean) / std
 * per channel in float32. out is [3, size, size] (CHW).
 */
int jc_image_preprocess(const struct jc_image *img, int size, const float mean[3],
                        const float std[3], float *out);

/*
 * jc_image_load and jc_image_preprocess in one, with the same result to the bit. Where the
 * decoder can hand over rows as it makes them (JPEG), each row is resized as it comes and
 * the full-size image is never stored: a 12-megapixel photo needs a few hundred kilobytes
 * instead of 36 MB. *warning is set as jc_image's warning is.
 */
int jc_image_load_pixels(const char *path, const struct jc_image_opts *o, int size,
                         const float mean[3], const float std[3], float *out, const char **warning);

/* The same from memory; `name` is used in errors. */
int jc_image_decode_pixels(const void *buf, size_t len, const char *name,
                           const struct jc_image_opts *o, int size, const float mean[3],
                           const float std[3], float *out, const char **warning);

/* ---- output files ----------------------------------------------------------------------- */

/*
 * An output file written atomically: data go to `f`, a temporary file beside `path`;
 * commit flushes, syncs and renames it over `path`; abort (or a failed commit) removes it.
 * A failed run never leaves a partial file or truncates an existing one.
 */
struct jc_afile {
    char *path, *tmp;
    FILE *f;
};
int jc_afile_open(struct jc_afile *a, const char *path);
int jc_afile_commit(struct jc_afile *a);
void jc_afile_abort(struct jc_afile *a);

/* Removes every open temporary file; async-signal-safe, for SIGINT and SIGTERM handlers. */
void jc_afile_cleanup(void);

/* ---- .npy files ----------------------------------------------------------------------- */

/*
 * Writes a little-endian float32 C-order .npy of rows x cols to `path` atomically: the data
 * go to a temporary file beside it that is renamed over `path` only after a successful
 * flush, so a failed run never leaves a partial or truncated file.
 */
int jc_npy_write(const char *path, const float *data, size_t rows, size_t cols);

/*
 * Formats a .npy header for float32 [rows, inner...] (inner NULL: [rows, cols]), padded to
 * a multiple of 64 bytes; returns its length, 0 if it does not fit in cap.
 */
size_t jc_npy_header(char *buf, size_t cap, size_t rows, size_t cols, const size_t *inner,
                     int n_inner);

/*
 * A .npy written row by row whose length is not known in advance: rows go to a temporary
 * file beside `path`; commit writes the final shape into the header, flushes and renames
 * it into place; abort (or a failed commit) removes the temporary file. Both free `o`.
 */
struct jc_npy_out;
int jc_npy_out_open(struct jc_npy_out **o, const char *path, size_t cols);

/* The same for rows of shape inner[0] x ... (the file's shape is [rows, inner...]). */
int jc_npy_out_open_nd(struct jc_npy_out **o, const char *path, const size_t *inner, int n_inner);
int jc_npy_out_append(struct jc_npy_out *o, const float *rows, size_t n);
int jc_npy_out_commit(struct jc_npy_out *o);
void jc_npy_out_abort(struct jc_npy_out *o);

/*
 * Reads a float32 .npy. *data (malloc'd) gets the values; *rows gets the first dimension
 * and *cols the product of the others (a 1-d array is 1 x n).
 */
int jc_npy_read(const char *path, float **data, size_t *rows, size_t *cols);

/*
 * The same without a copy: the file is mapped read-only and m->data points into it (m->rows
 * x m->cols values). Release with jc_npy_unmap.
 */
struct jc_npy_map {
    const float *data;
    size_t rows, cols;
    void *base; /* the mapping [len], or NULL for an empty file */
    size_t len;
    float *copy; /* the values, when the file does not align them */
};
int jc_npy_map(const char *path, struct jc_npy_map *m);
void jc_npy_unmap(struct jc_npy_map *m);

/* ---- records ------------------------------------------------------------------------- */

/*
 * The lines of the --jsonl mode: one JSON object (RFC 8259) per line,
 *
 *     {"id": ANY, "text": STRING}
 *     {"id": ANY, "image": PATH | "data:image/TYPE[;...];base64,DATA"[, "draft": BOOL]}
 *
 * "id" is required and may be any JSON value; no other keys are allowed, nor a key twice.
 */
enum jc_record_kind {
    JC_RECORD_TEXT = 1,
    JC_RECORD_IMAGE = 2,
};

struct jc_record {
    enum jc_record_kind kind; /* 0 when the line is not a good record */
    /* The id's JSON text as written, whitespace outside strings removed; NULL without one. */
    char *id;
    char *text; /* TEXT: the unescaped string, text_len bytes (it may hold NUL) */
    size_t text_len;
    char *image;   /* IMAGE: the path; for a data URI its head, "data:image/png;base64," */
    uint8_t *data; /* IMAGE from a data URI: the decoded bytes [data_len]; else NULL */
    size_t data_len;
    bool draft; /* IMAGE: "draft": true, decode a JPEG at a reduced scale */
};

/*
 * Parses one line (len bytes, no '\n'; it need not be NUL-terminated) into *out. The JSON
 * is checked strictly: UTF-8 only, no raw control characters in strings, no leading zeros,
 * nesting at most 256 deep. A \u escape of a lone surrogate becomes U+FFFD. An "image" that
 * starts with "data:" (any case) is a data URI and is decoded with jc_base64_decode.
 *
 * Returns 0, or JC_EFORMAT for a bad record (the message says what is wrong, e.g. "missing
 * \"id\"", "unknown key \"txt\"", "malformed JSON at column 12: ..."), JC_ENOMEM, or
 * JC_EINVAL for a NULL line of nonzero length. On failure out->id is still set when the line
 * is an object with an id, so the caller can answer with it. In every case the caller frees
 * *out with jc_record_release. Never reads outside line[0..len).
 */
int jc_record_parse(const char *line, size_t len, struct jc_record *out);
void jc_record_release(struct jc_record *r);

/* Length of the base64 text of n bytes, without the NUL: 4 * ceil(n / 3). */
#define JC_BASE64_LEN(n) (((n) + 2) / 3 * 4)

/*
 * Base64 of in[0..n) (RFC 4648 section 4: the standard alphabet, '=' padding) into out, which
 * has room for JC_BASE64_LEN(n) + 1 bytes; NUL-terminated. Returns the length.
 */
size_t jc_base64_encode(const void *in, size_t n, char *out);

/*
 * Decodes strict RFC 4648 base64: the standard alphabet, padding required (the length is a
 * multiple of 4), no whitespace or line breaks, and the unused bits of the last character
 * zero (one encoding per byte string). out has room for len / 4 * 3 bytes; *n gets the
 * count. Returns 0 or JC_EFORMAT ("invalid base64: ..." with the offset of the fault).
 */
int jc_base64_decode(const char *in, size_t len, void *out, size_t *n);

/* SHA-256 of a whole file as 64 lowercase hex digits; 0, or JC_EIO / JC_ENOMEM. */
int jc_file_sha256(const char *path, char hex[65]);

/* ---- download ------------------------------------------------------------------------ */

enum jc_download_event {
    JC_DL_CACHED, /* the file is already in the cache: nothing to transfer */
    JC_DL_WAIT,   /* another process (jclip or huggingface_hub) is fetching it: waiting */
    JC_DL_START,  /* a transfer starts; done > 0 when it resumes a partial file */
    JC_DL_DATA,   /* bytes arrived */
    JC_DL_DONE,   /* the file is complete, its size and SHA-256 checked */
};

struct jc_download_progress {
    enum jc_download_event event;
    const char *file; /* its name in the repository */
    int index, count; /* file `index` (from 1) of `count` */
    uint64_t done;    /* bytes of the file on disk */
    uint64_t size;    /* its full size; 0 when the server did not say */
};

/* Called from within jc_download, on its thread; must not call jc_download. */
typedef void (*jc_download_fn)(void *ctx, const struct jc_download_progress *p);

struct jc_download_opts {
    const char *repo;         /* "owner/name"; NULL: jinaai/jina-clip-v1 */
    const char *revision;     /* branch, tag or commit; NULL: main */
    const char *cache;        /* the hub cache; NULL: as jc_model_locate looks for it */
    const char *endpoint;     /* NULL: $HF_ENDPOINT, else https://huggingface.co */
    const char *token;        /* NULL: $HF_TOKEN, else $HF_TOKEN_PATH or $HF_HOME/token */
    const char *const *files; /* NULL-terminated; NULL: config.json, model.safetensors,
                                 tokenizer.json, tokenizer_config.json, vocab.txt and
                                 preprocessor_config.json */
    jc_download_fn progress;  /* may be NULL */
    void *ctx;
};

/*
 * Downloads the files of a Hub repository into the Hugging Face cache layout that
 * huggingface_hub and jc_model_locate read: blobs/<etag>, snapshots/<commit>/<file> as
 * relative links to them, refs/<revision>. A file already there (same ETag and size) is not
 * transferred again; an interrupted transfer is kept as blobs/<etag>.incomplete and resumed
 * by the next call. Each file's size, and its SHA-256 when the ETag is one (LFS files), is
 * checked before it gets its final name; bad data is removed. The snapshot links and the ref
 * are written only once every file is complete.
 *
 * On success *snapshot is the snapshot directory (malloc'd, caller frees). On failure it is
 * NULL and the message names the URL or file and the HTTP status or curl error: JC_ENOTFOUND
 * for a missing repository, revision or file, JC_EFORMAT for content that fails its checks
 * or a server that is not a Hub, JC_EINVAL for a bad option, JC_EIO for the rest.
 */
int jc_download(const struct jc_download_opts *o, char **snapshot);

#endif
