/* Shared by the subcommands in cmd/. */
#ifndef JCLIP_CMD_H
#define JCLIP_CMD_H

#include "jclip.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Exit statuses, documented in jclip(1). */
enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

int cmd_embed_text(int argc, char **argv);
int cmd_embed_image(int argc, char **argv);
int cmd_similarity(int argc, char **argv);
int cmd_classify(int argc, char **argv);
int cmd_count_tokens(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_download(int argc, char **argv);
int cmd_serve(int argc, char **argv);

/* "jclip <command>", the prefix of every message. */
extern const char *cmd_prefix;

void error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void warning(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints "prefix: msg" and the short usage to stderr; returns EXIT_USAGE. */
int usage_error(const char *usage, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Parses a whole number in [lo, hi] for option `opt`; false (and a message) if it is not one. */
bool parse_long(const char *opt, const char *arg, long lo, long hi, long *out);

/*
 * The input limits, jclip(1) LIMITS: each has this default and an option of the same name
 * (--max-line-bytes, --max-file-bytes, --max-tokens, --max-pixels) on every command that
 * reads such input. JC_DEFAULT_MAX_PIXELS is the fourth.
 */
#define DEFAULT_MAX_LINE_BYTES ((size_t)64 << 20)  /* a stdin line, a record, a label line */
#define DEFAULT_MAX_FILE_BYTES ((size_t)256 << 20) /* a --file document, a labels file */
#define DEFAULT_MAX_TOKENS     8192                /* per text; longer texts are truncated */

/*
 * Options, jclip(1): one table in cmd/options.c gives each option its long name, its short
 * letter (the same in every command that has it) and its default help. getopt returns the
 * letter, or the OPT_* code of an option that has none.
 */
enum {
    OPT_BATCH = 'b',
    OPT_FORMAT = 'f',
    OPT_HELP = 'h',
    OPT_IMAGE = 'i', /* similarity: an image input */
    OPT_TOP = 'k',
    OPT_LABELS = 'l',
    OPT_MODEL = 'm',
    OPT_OUTPUT = 'o',
    OPT_RECURSIVE = 'r',
    OPT_THREADS = 't',
    OPT_AGAINST = 0x100,
    OPT_API_KEY,
    OPT_CACHE,
    OPT_DUMP_PIXELS,
    OPT_ENCODING,
    OPT_FILE,
    OPT_HOST,
    OPT_IDLE_TIMEOUT,
    OPT_IDS,
    OPT_IMAGES, /* count-tokens: the arguments are images */
    OPT_JSON,
    OPT_JSONL,
    OPT_KEEP_GOING,
    OPT_LABELS_FILE,
    OPT_MAX_BATCH,
    OPT_MAX_BODY_BYTES,
    OPT_MAX_FILE_BYTES,
    OPT_MAX_LINE_BYTES,
    OPT_MAX_TOKENS,
    OPT_PORT,
    OPT_PRECISION,
    OPT_PROGRESS,
    OPT_RAW,
    OPT_REPO,
    OPT_REVISION,
    OPT_TEMPLATE,
    OPT_TEXT,  /* similarity: a text input */
    OPT_TEXTS, /* classify: the inputs are texts */
    OPT_TEXT_FILE,
    OPT_TOKENS,
    OPT_TOTAL,
    /* how the image commands read images: image_option() takes these */
    OPT_MAX_PIXELS,
    OPT_DRAFT,
    OPT_EXIF_ROTATE,
    OPT_NO_FETCH,
    OPT_MAX_IMAGE_BYTES,
    OPT_FETCH_TIMEOUT,
};

/* An option a command takes; help NULL is the table's. */
struct cmd_opt {
    int code;
    const char *help;
};

/* A deprecated short letter that still means `code` in one command, with a warning. */
struct cmd_alias {
    int letter, code;
};

struct cmd_spec {
    const char *synopsis;            /* the "usage:" lines, each ending in '\n' */
    const struct cmd_opt *opts;      /* ends with {0} */
    const char *epilogue;            /* after the options, or NULL */
    const struct cmd_alias *aliases; /* ends with {0}, or NULL */
    bool in_order; /* non-option arguments come back from cmd_getopt() as 1, in place */
};

/* The image options, the same with the same help on every command that reads images. */
#define IMAGE_OPTS                                                                                 \
    {OPT_MAX_PIXELS, NULL}, {OPT_DRAFT, NULL}, {OPT_EXIF_ROTATE, NULL}, {OPT_NO_FETCH, NULL},      \
        {OPT_MAX_IMAGE_BYTES, NULL},                                                               \
    {                                                                                              \
        OPT_FETCH_TIMEOUT, NULL                                                                    \
    }
#define IMAGE_OPT_CASES                                                                            \
    case OPT_MAX_PIXELS:                                                                           \
    case OPT_DRAFT:                                                                                \
    case OPT_EXIF_ROTATE:                                                                          \
    case OPT_NO_FETCH:                                                                             \
    case OPT_MAX_IMAGE_BYTES:                                                                      \
    case OPT_FETCH_TIMEOUT

/* The command's --help, made from its spec (a static buffer, rewritten by the next call). */
const char *cmd_usage(const struct cmd_spec *spec);

/* getopt_long() over the command's options; a deprecated letter warns and returns its code. */
int cmd_getopt(int argc, char **argv, const struct cmd_spec *spec);

/* Applies one of the image options (OPT_MAX_PIXELS...); false (and a message) on a bad value. */
bool image_option(int c, const char *arg, struct jc_image_opts *o);

/* Parses a byte limit, 1 to 2^40; false (and a message) if arg is not one. */
bool parse_bytes(const char *opt, const char *arg, size_t *out);

/* Applies -t/--threads (0 = unset: $JCLIP_THREADS, else all cores). */
bool setup_threads(long threads);

/*
 * Applies --precision (NULL = unset: $JCLIP_PRECISION, else fp32) to the models opened
 * afterwards; call it after setup_threads(), which picks the kernel table. Where the table
 * has no bf16 products, bf16 warns once and fp32 stays in effect. Returns EXIT_OK, or
 * (reported) EXIT_USAGE for an unknown --precision, EXIT_FAIL for an unknown
 * $JCLIP_PRECISION.
 */
int setup_precision(const char *precision);

/* Locates and opens the model; prints the error and returns NULL on failure. */
struct jc_model *open_model(const char *dir, unsigned what);

/*
 * Lines from a file descriptor, for inputs that arrive over time: next() hands out
 * complete lines, and can say "none ready right now" so a caller can finish the work it has
 * instead of waiting on a slow pipe.
 */
struct line_reader {
    int fd;
    char *buf;
    size_t cap, start, end;
    size_t scanned; /* buf[start, scanned) holds no newline: each byte is searched once */
    bool eof;
    size_t lineno;    /* of the last line returned */
    size_t max_bytes; /* longest line accepted */
    bool dropped;     /* the last LINE_TOO_LONG line was already dropped whole */
};

enum { LINE_OK = 1, LINE_EOF = 0, LINE_WAIT = -1, LINE_ERROR = -2, LINE_TOO_LONG = -3 };

void line_reader_init(struct line_reader *r, int fd, size_t max_bytes);
void line_reader_release(struct line_reader *r);

/*
 * The next line without its '\n' (*line points into the reader's buffer, valid until the
 * next call; it may hold NUL bytes). With block false, returns LINE_WAIT when no complete
 * line is buffered and the descriptor has nothing to read yet.
 */
int line_reader_next(struct line_reader *r, bool block, const char **line, size_t *len);

/*
 * After LINE_TOO_LONG: drops the rest of that line, up to and including its newline, so the
 * next call returns the line after it. False when reading fails (errno set).
 */
bool line_reader_skip(struct line_reader *r);

/* An input text and the name to give it in messages ("argument 2", "stdin line 7"). */
struct text_input {
    char *text;
    size_t len;
    char name[300];
};

/*
 * Makes `in` own a valid-UTF-8 copy of buf; warns (naming the input) when invalid bytes
 * were replaced. False on allocation failure (reported).
 */
bool text_input_set(struct text_input *in, const char *buf, size_t len);

/*
 * Reads a whole file ("-" is stdin) of at most max_bytes into *buf (malloc'd, caller frees),
 * not NUL-terminated; `name` names it in messages. False (reported) on failure, or when the
 * file is larger than the limit.
 */
bool read_file_limited(const char *path, const char *name, size_t max_bytes, char **buf,
                       size_t *len);

/* Reads a whole file as one text; false (reported) on failure or over max_bytes. */
bool text_input_file(struct text_input *in, const char *path, size_t max_bytes);

/* Writes s as a JSON string: quoted, escaped, invalid UTF-8 replaced by U+FFFD. */
void json_string(FILE *f, const char *s);

/* Prints a float vector as a JSON array (%.9g) or as tab-separated fields. */
void print_vector(FILE *f, const float *v, size_t n, bool json);

/*
 * The texts a command reads, in command-line order: TEXT arguments, --file documents and
 * stdin (one text per line). "-" as a TEXT or --file means stdin; after "--" every
 * argument is a literal text. With no source at all, stdin lines are read.
 */
enum source_kind { SRC_ARG, SRC_FILE, SRC_STDIN_LINES, SRC_STDIN_FILE };

struct source {
    enum source_kind kind;
    const char *value;
    int argno; /* TEXT arguments are numbered from 1 in messages */
};

struct sources {
    struct source *v;
    size_t n;
    int n_args;
    size_t max_line_bytes, max_file_bytes; /* the defaults unless a command sets them */
};

/* Room for every argument; false (reported) on allocation failure. */
bool sources_init(struct sources *s, int argc);
void sources_release(struct sources *s);
void sources_add_text(struct sources *s, const char *arg, bool literal);
void sources_add_file(struct sources *s, const char *path);

/* Adds stdin when nothing was given; EXIT_USAGE (reported) if stdin is read twice. */
int sources_finish(struct sources *s, const char *usage);

struct text_sink {
    /* Takes one text (and ownership of in->text); false stops the run. */
    bool (*take)(void *ctx, struct text_input *in);
    /* When not NULL: whether work is pending, and finishing it while stdin is idle. */
    bool (*pending)(void *ctx);
    bool (*flush)(void *ctx);
    void *ctx;
};

/*
 * Feeds every text of every source to the sink, in order. Reading stdin lines, a sink with
 * pending work is flushed whenever no complete line is ready, so a slow pipe never holds
 * back finished results. False when a source or the sink failed (reported).
 */
bool sources_run(const struct sources *s, const struct text_sink *sink);

/*
 * Texts on their way through the text tower, in batches of at most `size` texts (or 8192
 * tokens). done() gets each finished batch: its inputs and their embeddings, in order.
 */
typedef bool (*text_batch_fn)(void *ctx, const struct text_input *in, const float *vecs, size_t n);

struct text_batch {
    struct jc_model *m;
    const struct jc_tokenizer *tk;
    size_t dim, size, max_tokens;
    unsigned flags;
    text_batch_fn done;
    void *ctx;
    struct text_input *in;
    int32_t **ids;
    size_t *lens;
    size_t n, tokens;
    float *vecs;
};

bool text_batch_init(struct text_batch *b, struct jc_model *m, size_t size, size_t max_tokens,
                     unsigned flags, text_batch_fn done, void *ctx);
void text_batch_release(struct text_batch *b);

/* Tokenizes one input (taking in->text) into the batch; runs the batch when it is full. */
bool text_batch_add(void *b, struct text_input *in);
bool text_batch_flush(void *b);
bool text_batch_pending(void *b);

/* A sink that feeds sources_run() into the batcher. */
struct text_sink text_batch_sink(struct text_batch *b);

/*
 * Image paths in input order. A directory is walked with `recursive` (image extensions
 * only, sorted by name at each level), else it is kept as a bad input with its reason.
 */
struct image_list {
    char **v;
    char **why; /* a reason to refuse the path before decoding, or NULL */
    size_t n, cap;
};

bool image_list_add(struct image_list *l, const char *path, bool recursive);
bool image_list_read_stdin(struct image_list *l, bool recursive);

/* The PATH arguments of an image command: '-' or none at all reads paths from stdin. */
bool image_list_from_args(struct image_list *l, char *const *args, int n, bool recursive);
void image_list_release(struct image_list *l);

/* A decoded batch: images [start, start + n) of the list; the good ones packed in order. */
struct image_batch {
    size_t start, n, n_good;
    const float *pixels;    /* [n_good, 3, S, S] */
    const char *const *err; /* [n]: NULL for a good image, else why it is bad */
};

typedef bool (*image_batch_fn)(void *ctx, const struct image_batch *b);

/*
 * Decodes and preprocesses the list batch by batch on a second thread and hands each batch,
 * in order, to fn; stops when fn returns false. False if fn or the pipeline failed.
 */
bool images_run(const struct image_list *list, const struct jc_model *m, size_t batch,
                const struct jc_image_opts *opts, image_batch_fn fn, void *ctx);

/* Where the embed commands write: jsonl (the default), tsv or npy on stdout. */
enum format { FMT_JSONL, FMT_TSV, FMT_NPY };

/*
 * Checks --format, --output and --encoding together: -o takes only npy, --encoding only
 * jsonl. Returns EXIT_OK with *fmt set, or EXIT_USAGE (reported).
 */
int embed_output_format(const char *usage, const char *format, const char *output,
                        const char *encoding, enum format *fmt);

/* ---- records (--jsonl) ------------------------------------------------------------------ */

/*
 * How an embedding is written, as the Jina Embeddings API's embedding_type names them:
 * float, a JSON array of %.9g numbers; base64, a JSON string of the little-endian float32
 * bytes; ubinary, the sign bits (value > 0) packed MSB first into ceil(D/8) bytes, a JSON
 * array of 0..255; binary, the same bytes minus 128, a JSON array of -128..127.
 */
enum encoding { ENC_FLOAT, ENC_BASE64, ENC_BINARY, ENC_UBINARY };

/* Parses --encoding; false (and a message) if arg names no encoding. */
bool parse_encoding(const char *arg, enum encoding *out);

/* The same without a message, for names that come from elsewhere (an HTTP request). */
bool encoding_from_name(const char *name, enum encoding *out);

/* The API's name of an encoding: "float", "base64", "binary" or "ubinary". */
const char *encoding_name(enum encoding enc);

/* Writes v[0..n) as a JSON value in the encoding. */
void print_embedding(FILE *f, const float *v, size_t n, enum encoding enc);

/*
 * What records_run() does with the records of one command. Good records are embedded in
 * batches and each gets {"id":ID,<members>}, where the members are written by write() when
 * it is set, else "embedding" in `encoding`. Bad ones get {"id":ID,"error":"..."}.
 */
struct record_opts {
    enum jc_record_kind kind; /* the kind the command reads; the other kind is a bad record */
    const char *other;        /* why the other kind is bad, e.g. "embed-text reads \"text\"" */
    size_t batch, max_tokens;
    struct jc_image_opts image; /* a record's "draft": true sets draft for its image */
    size_t max_line_bytes;      /* a longer line is a bad record */
    unsigned flags;             /* JC_EMBED_RAW */
    enum encoding encoding;
    bool progress; /* a line of counts on stderr */
    /* When set: called with each batch's embeddings before any of its records is written. */
    bool (*prepare)(void *ctx, const float *vecs, size_t n);
    /* When set: writes the members after the id of the i-th good record of the batch. */
    void (*write)(void *ctx, FILE *f, const float *vec, size_t i);
    void *ctx;
};

/*
 * Reads records from stdin, one JSON object per line, and writes one record per line to
 * stdout in input order, flushed batch by batch. While stdin has no complete line ready, the
 * pending batch is finished rather than held. Bad records are answered and the run goes on;
 * false only on a fatal failure (reading stdin, writing stdout, the model), reported.
 */
bool records_run(struct jc_model *m, const struct record_opts *o);

#endif
