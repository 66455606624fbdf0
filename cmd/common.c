#include "cmd.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *cmd_prefix = "jclip";

static void vmsg(const char *kind, const char *fmt, va_list ap)
{
    fprintf(stderr, "%s: %s", cmd_prefix, kind);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmsg("", fmt, ap);
    va_end(ap);
}

void warning(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmsg("warning: ", fmt, ap);
    va_end(ap);
}

int usage_error(const char *usage, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmsg("", fmt, ap);
    va_end(ap);
    fputs(usage, stderr);
    return EXIT_USAGE;
}

bool parse_bytes(const char *opt, const char *arg, size_t *out)
{
    long v;
    if (!parse_long(opt, arg, 1, 1L << 40, &v))
        return false;
    *out = (size_t)v;
    return true;
}

bool image_option(int c, const char *arg, struct jc_image_opts *o)
{
    long v;

    switch (c) {
    case OPT_MAX_PIXELS:
        if (!parse_long("--max-pixels", arg, 1, 1L << 40, &v))
            return false;
        o->max_pixels = (size_t)v;
        return true;
    case OPT_DRAFT:
        o->draft = -1;
        return true;
    case OPT_NO_FETCH:
        o->fetch.no_fetch = true;
        return true;
    case OPT_MAX_IMAGE_BYTES:
        return parse_bytes("--max-image-bytes", arg, &o->fetch.max_bytes);
    case OPT_FETCH_TIMEOUT:
        if (!parse_long("--fetch-timeout", arg, 1, 3600, &v))
            return false;
        o->fetch.timeout = v;
        return true;
    default:
        o->exif_rotate = true;
        return true;
    }
}

bool parse_long(const char *opt, const char *arg, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(arg, &end, 10);
    if (errno || end == arg || *end || v < lo || v > hi) {
        error("%s: '%s' is not a whole number from %ld to %ld", opt, arg, lo, hi);
        return false;
    }
    *out = v;
    return true;
}

bool setup_threads(long threads)
{
    const char *env = getenv("JCLIP_THREADS");
    if (!threads && env && *env && !parse_long("JCLIP_THREADS", env, 1, 256, &threads))
        return false;
    jc_set_threads((int)threads);
    if (jc_isa_check() < 0) {
        error("%s", jc_errmsg());
        return false;
    }
    return true;
}

int setup_precision(const char *precision)
{
    const char *env = getenv("JCLIP_PRECISION");
    bool from_env = !precision && env && *env;
    const char *name = from_env ? env : precision;

    if (!name)
        return EXIT_OK;
    int rc = jc_set_precision(name);
    if (rc < 0) {
        error("%s: '%s' is unknown (use fp32 or bf16)",
              from_env ? "JCLIP_PRECISION" : "--precision", name);
        return from_env ? EXIT_FAIL : EXIT_USAGE;
    }
    if (rc == 1)
        warning("%s: the %s kernels have no bf16 products; running fp32",
                from_env ? "JCLIP_PRECISION=bf16" : "--precision bf16", jc_isa_name());
    return EXIT_OK;
}

struct jc_model *open_model(const char *dir, unsigned what)
{
    char *path;
    struct jc_model *m;

    if (jc_model_locate(dir, &path) < 0) {
        error("%s", jc_errmsg());
        return NULL;
    }
    if (jc_model_open(&m, path, what) < 0) {
        error("%s", jc_errmsg());
        m = NULL;
    }
    free(path);
    return m;
}

void line_reader_init(struct line_reader *r, int fd, size_t max_bytes)
{
    memset(r, 0, sizeof *r);
    r->fd = fd;
    r->max_bytes = max_bytes;
}

void line_reader_release(struct line_reader *r)
{
    free(r->buf);
    r->buf = NULL;
}

/*
 * A complete line in the buffer, or the unterminated rest at end of input. A whole line over
 * the limit can be in the buffer when the limit is below the read size: it is dropped here,
 * so line_reader_skip() has nothing left to drop.
 */
static int take(struct line_reader *r, const char **line, size_t *len)
{
    size_t from = r->scanned > r->start ? r->scanned : r->start;
    char *nl = memchr(r->buf + from, '\n', r->end - from);
    r->scanned = nl ? 0 : r->end;
    if (!nl && !(r->eof && r->end > r->start))
        return LINE_WAIT;
    size_t n = nl ? (size_t)(nl - (r->buf + r->start)) : r->end - r->start;
    *line = r->buf + r->start;
    *len = n;
    r->start += n + (nl != NULL);
    r->lineno++;
    if (n > r->max_bytes) {
        r->dropped = true;
        return LINE_TOO_LONG;
    }
    return LINE_OK;
}

int line_reader_next(struct line_reader *r, bool block, const char **line, size_t *len)
{
    for (;;) {
        int rc = r->buf ? take(r, line, len) : LINE_WAIT;
        if (rc != LINE_WAIT)
            return rc;
        if (r->eof)
            return LINE_EOF;
        if (r->end - r->start > r->max_bytes) {
            r->lineno++;
            r->dropped = false;
            return LINE_TOO_LONG;
        }
        if (!block) {
            struct pollfd p = {.fd = r->fd, .events = POLLIN};
            if (poll(&p, 1, 0) == 0)
                return LINE_WAIT;
        }
        /* Make room: slide the partial line to the front, grow if it fills the buffer. */
        if (r->start > 0) {
            memmove(r->buf, r->buf + r->start, r->end - r->start);
            r->end -= r->start;
            r->scanned -= r->scanned ? r->start : 0;
            r->start = 0;
        }
        if (r->end + 4096 > r->cap) {
            size_t ncap = r->cap ? r->cap * 2 : 65536;
            char *nb = realloc(r->buf, ncap);
            if (!nb) {
                errno = ENOMEM;
                return LINE_ERROR;
            }
            r->buf = nb;
            r->cap = ncap;
        }
        ssize_t got = read(r->fd, r->buf + r->end, r->cap - r->end);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            return LINE_ERROR;
        }
        if (got == 0)
            r->eof = true;
        r->end += (size_t)got;
    }
}

bool line_reader_skip(struct line_reader *r)
{
    r->scanned = 0;
    if (r->dropped) {
        r->dropped = false;
        return true;
    }
    for (;;) {
        char *nl = memchr(r->buf + r->start, '\n', r->end - r->start);
        if (nl) {
            r->start = (size_t)(nl - r->buf) + 1;
            return true;
        }
        r->start = r->end = 0;
        if (r->eof)
            return true;
        ssize_t got = read(r->fd, r->buf, r->cap);
        if (got < 0 && errno != EINTR)
            return false;
        if (got == 0)
            r->eof = true;
        if (got > 0)
            r->end = (size_t)got;
    }
}

bool text_input_set(struct text_input *in, const char *buf, size_t len)
{
    char *fixed;
    size_t flen;
    long bad = jc_utf8_repair(buf, len, &fixed, &flen);

    if (bad < 0) {
        error("%s: %s", in->name, jc_errmsg());
        return false;
    }
    if (bad > 0) {
        warning("%s: invalid UTF-8 (%ld sequence%s) replaced by U+FFFD", in->name, bad,
                bad == 1 ? "" : "s");
        in->text = fixed;
        in->len = flen;
        return true;
    }
    if (!(in->text = malloc(len + 1))) {
        error("%s: out of memory", in->name);
        return false;
    }
    memcpy(in->text, buf, len);
    in->text[len] = '\0';
    in->len = len;
    return true;
}

bool read_file_limited(const char *path, const char *name, size_t max_bytes, char **out,
                       size_t *out_len)
{
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    struct stat st;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    bool ok = false;

    if (!f) {
        error("cannot open '%s': %s", path, strerror(errno));
        return false;
    }
    /* a regular file too large is refused before any byte is read */
    if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size > max_bytes)
        goto out_limit;
    for (;;) {
        if (len == cap) {
            /* at most one byte past the limit, which is enough to see it is exceeded */
            size_t ncap = cap ? cap * 2 : 65536;
            if (ncap > max_bytes + 1)
                ncap = max_bytes + 1;
            char *nb = realloc(buf, ncap);
            if (!nb) {
                error("%s: out of memory (%zu bytes)", name, ncap);
                goto out;
            }
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (len > max_bytes)
            goto out_limit;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        error("cannot read %s: %s", name, strerror(errno));
        goto out;
    }
    *out = buf;
    *out_len = len;
    buf = NULL;
    ok = true;
    goto out;
out_limit:
    error("%s is larger than the limit of %zu bytes", name, max_bytes);
out:
    free(buf);
    if (f != stdin)
        fclose(f);
    return ok;
}

bool text_input_file(struct text_input *in, const char *path, size_t max_bytes)
{
    char *buf;
    size_t len;

    if (strcmp(path, "-"))
        snprintf(in->name, sizeof in->name, "'%s'", path);
    else
        snprintf(in->name, sizeof in->name, "stdin");
    if (!read_file_limited(path, in->name, max_bytes, &buf, &len))
        return false;
    bool ok = text_input_set(in, buf, len);
    free(buf);
    return ok;
}

void json_string(FILE *f, const char *s)
{
    char *fixed;
    size_t len = strlen(s);
    const unsigned char *p;

    if (jc_utf8_repair(s, len, &fixed, &len) > 0)
        s = fixed;
    else
        fixed = NULL;
    putc('"', f);
    for (p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p == '\n')
            fputs("\\n", f);
        else if (*p == '\t')
            fputs("\\t", f);
        else if (*p < 0x20 || *p == 0x7f)
            fprintf(f, "\\u%04x", *p);
        else
            putc(*p, f);
    }
    putc('"', f);
    free(fixed);
}

void print_vector(FILE *f, const float *v, size_t n, bool json)
{
    if (json)
        putc('[', f);
    for (size_t i = 0; i < n; i++)
        fprintf(f, i ? (json ? ",%.9g" : "\t%.9g") : "%.9g", v[i]);
    if (json)
        putc(']', f);
}

bool sources_init(struct sources *s, int argc)
{
    memset(s, 0, sizeof *s);
    s->max_line_bytes = DEFAULT_MAX_LINE_BYTES;
    s->max_file_bytes = DEFAULT_MAX_FILE_BYTES;
    if (!(s->v = calloc((size_t)argc + 2, sizeof *s->v))) {
        error("out of memory");
        return false;
    }
    return true;
}

void sources_release(struct sources *s)
{
    free(s->v);
    s->v = NULL;
}

void sources_add_text(struct sources *s, const char *arg, bool literal)
{
    if (!literal && !strcmp(arg, "-"))
        s->v[s->n++] = (struct source){SRC_STDIN_LINES, arg, 0};
    else
        s->v[s->n++] = (struct source){SRC_ARG, arg, ++s->n_args};
}

void sources_add_file(struct sources *s, const char *path)
{
    s->v[s->n++] = (struct source){strcmp(path, "-") ? SRC_FILE : SRC_STDIN_FILE, path, 0};
}

int sources_finish(struct sources *s, const char *usage)
{
    int reads = 0;
    if (s->n == 0)
        s->v[s->n++] = (struct source){SRC_STDIN_LINES, "-", 0};
    for (size_t i = 0; i < s->n; i++)
        reads += s->v[i].kind == SRC_STDIN_LINES || s->v[i].kind == SRC_STDIN_FILE;
    if (reads > 1)
        return usage_error(usage, "stdin can be read only once ('-' and '--file -')");
    return EXIT_OK;
}

static bool run_stdin_lines(const struct sources *s, const struct text_sink *sink)
{
    struct line_reader r;
    const char *line;
    size_t len;
    bool ok = true;

    line_reader_init(&r, STDIN_FILENO, s->max_line_bytes);
    for (;;) {
        bool pending = sink->pending && sink->pending(sink->ctx);
        int rc = line_reader_next(&r, !pending, &line, &len);
        if (rc == LINE_WAIT) {
            if (!(ok = sink->flush(sink->ctx)))
                break;
            continue;
        }
        if (rc == LINE_EOF)
            break;
        if (rc == LINE_TOO_LONG || rc == LINE_ERROR) {
            if (rc == LINE_TOO_LONG)
                error("stdin line %zu is longer than the limit of %zu bytes", r.lineno,
                      r.max_bytes);
            else
                error("cannot read stdin: %s", strerror(errno));
            ok = false;
            break;
        }
        struct text_input in = {0};
        snprintf(in.name, sizeof in.name, "stdin line %zu", r.lineno);
        if (!(ok = text_input_set(&in, line, len) && sink->take(sink->ctx, &in)))
            break;
    }
    line_reader_release(&r);
    return ok;
}

bool sources_run(const struct sources *s, const struct text_sink *sink)
{
    bool ok = true;
    for (size_t i = 0; ok && i < s->n; i++) {
        const struct source *src = &s->v[i];
        struct text_input in = {0};
        switch (src->kind) {
        case SRC_ARG:
            snprintf(in.name, sizeof in.name, "argument %d", src->argno);
            ok = text_input_set(&in, src->value, strlen(src->value)) && sink->take(sink->ctx, &in);
            break;
        case SRC_FILE:
        case SRC_STDIN_FILE:
            ok = text_input_file(&in, src->value, s->max_file_bytes) && sink->take(sink->ctx, &in);
            break;
        case SRC_STDIN_LINES:
            ok = run_stdin_lines(s, sink);
            break;
        }
    }
    return ok;
}

int embed_output_format(const char *usage, const char *format, const char *output,
                        const char *encoding, enum format *fmt)
{
    if (!format || !strcmp(format, "jsonl"))
        *fmt = FMT_JSONL;
    else if (!strcmp(format, "tsv"))
        *fmt = FMT_TSV;
    else if (!strcmp(format, "npy"))
        *fmt = FMT_NPY;
    else
        return usage_error(usage, "--format: '%s' is not jsonl, tsv or npy", format);
    if (encoding && (output || *fmt != FMT_JSONL))
        return usage_error(usage, "--encoding applies to jsonl output and --jsonl records");
    if (output && format && *fmt != FMT_NPY)
        return usage_error(usage, "--output writes .npy; it does not take --format %s", format);
    return EXIT_OK;
}
