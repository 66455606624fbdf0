/* jclip embed-text: texts in, one embedding per text out, in input order. */
#include "cmd.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
    "usage: jclip embed-text [options] [TEXT...]\n"
    "       jclip embed-text [options] < lines.txt\n"
    "  -m, --model DIR       model directory (default: $JCLIP_MODEL, then the HF cache)\n"
    "  -o, --output FILE     write an N x D float32 .npy instead of stdout\n"
    "  -f, --format FMT      stdout format: jsonl (default), tsv or npy\n"
    "      --file PATH       embed a whole file as one text (repeatable; - is stdin)\n"
    "      --raw             unnormalised mean-pooled vectors (default: L2-normalised)\n"
    "      --max-tokens N    truncate longer texts to N tokens (default 8192)\n"
    "  -b, --batch N         texts per batch (default 32)\n"
    "  -t, --threads N       threads (default: $JCLIP_THREADS, else all cores)\n"
    "  -h, --help            show this help\n"
    "Each TEXT argument is one text; with no TEXT, or TEXT '-', one text per stdin line.\n";

enum format { FMT_JSONL, FMT_TSV, FMT_NPY };
enum source { SRC_ARG, SRC_FILE, SRC_STDIN };

struct source_item {
    enum source kind;
    const char *value;
    int argno;
};

struct state {
    struct jc_model *m;
    const struct jc_tokenizer *tk;
    size_t dim, max_tokens, batch_size, token_budget;
    unsigned flags;
    enum format format;
    struct jc_npy_out *npy; /* -o */
    float *held;            /* --format npy on stdout: all rows, written at the end */
    size_t held_rows;
    /* the batch being filled */
    struct text_input *in;
    int32_t **ids;
    size_t *lens;
    size_t n, tokens;
    float *vecs;
};

static bool write_rows(struct state *s, const float *v, size_t n)
{
    if (s->npy) {
        if (jc_npy_out_append(s->npy, v, n) < 0) {
            error("%s", jc_errmsg());
            return false;
        }
        return true;
    }
    if (s->format == FMT_NPY) {
        float *h = realloc(s->held, (s->held_rows + n) * s->dim * sizeof *h);
        if (!h) {
            error("out of memory holding %zu embeddings for stdout", s->held_rows + n);
            return false;
        }
        memcpy(h + s->held_rows * s->dim, v, n * s->dim * sizeof *h);
        s->held = h;
        s->held_rows += n;
        return true;
    }
    for (size_t r = 0; r < n; r++) {
        const float *row = v + r * s->dim;
        if (s->format == FMT_JSONL)
            putchar('[');
        for (size_t c = 0; c < s->dim; c++)
            printf(s->format == FMT_JSONL ? (c ? ",%.9g" : "%.9g") : (c ? "\t%.9g" : "%.9g"),
                   row[c]);
        fputs(s->format == FMT_JSONL ? "]\n" : "\n", stdout);
    }
    /* A consumer at the other end of a pipe sees each batch as soon as it is done. */
    if (fflush(stdout) != 0 || ferror(stdout)) {
        error("cannot write to stdout");
        return false;
    }
    return true;
}

static bool flush_batch(struct state *s)
{
    bool ok = true;
    if (!s->n)
        return true;
    if (jc_embed_texts(s->m, (const int32_t *const *)s->ids, s->lens, s->n, s->flags, s->vecs) <
        0) {
        error("%s", jc_errmsg());
        ok = false;
    }
    ok = ok && write_rows(s, s->vecs, s->n);
    for (size_t i = 0; i < s->n; i++) {
        free(s->in[i].text);
        free(s->ids[i]);
    }
    s->n = 0;
    s->tokens = 0;
    return ok;
}

/* Tokenizes one input into the batch; runs the batch when it is full. Takes in->text. */
static bool add_input(struct state *s, struct text_input *in)
{
    int32_t *ids;
    size_t n, full;

    if (jc_tokenize(s->tk, in->text, in->len, s->max_tokens, &ids, &n, &full) < 0) {
        error("%s: %s", in->name, jc_errmsg());
        free(in->text);
        return false;
    }
    if (full > n)
        warning("%s: %zu tokens, truncated to %zu", in->name, full, n);
    s->in[s->n] = *in;
    s->ids[s->n] = ids;
    s->lens[s->n] = n;
    s->n++;
    s->tokens += n;
    if (s->n == s->batch_size || s->tokens >= s->token_budget)
        return flush_batch(s);
    return true;
}

static bool read_stdin(struct state *s)
{
    struct line_reader r;
    const char *line;
    size_t len;
    bool ok = true;

    line_reader_init(&r, STDIN_FILENO, MAX_LINE_BYTES);
    for (;;) {
        /* Block only with an empty batch: a slow pipe never holds back finished work. */
        int rc = line_reader_next(&r, s->n == 0, &line, &len);
        if (rc == LINE_WAIT) {
            if (!(ok = flush_batch(s)))
                break;
            continue;
        }
        if (rc == LINE_EOF)
            break;
        if (rc == LINE_TOO_LONG) {
            error("stdin line %zu is longer than %zu bytes", r.lineno, r.max_bytes);
            ok = false;
            break;
        }
        if (rc == LINE_ERROR) {
            error("cannot read stdin: %m");
            ok = false;
            break;
        }
        struct text_input in = {0};
        snprintf(in.name, sizeof in.name, "stdin line %zu", r.lineno);
        if (!(ok = text_input_set(&in, line, len) && add_input(s, &in)))
            break;
    }
    line_reader_release(&r);
    return ok;
}

int cmd_embed_text(int argc, char **argv)
{
    static const struct option opts[] = {
        {"model", required_argument, NULL, 'm'},  {"output", required_argument, NULL, 'o'},
        {"format", required_argument, NULL, 'f'}, {"file", required_argument, NULL, 'F'},
        {"raw", no_argument, NULL, 'r'},          {"max-tokens", required_argument, NULL, 'M'},
        {"batch", required_argument, NULL, 'b'},  {"threads", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    struct state s = {.max_tokens = 8192, .batch_size = 32};
    const char *model = NULL, *output = NULL, *format = NULL;
    struct source_item *src = calloc((size_t)argc + 1, sizeof *src);
    size_t n_src = 0;
    int n_args = 0;
    long threads = 0, v;
    int c, status = EXIT_FAIL;
    bool want_stdin = false;

    if (!src) {
        error("out of memory");
        return EXIT_FAIL;
    }
    /* A leading '-' keeps TEXT arguments in their place among the options. */
    while ((c = getopt_long(argc, argv, "-m:o:f:b:t:h", opts, NULL)) != -1) {
        switch (c) {
        case 1:
            src[n_src++] =
                (struct source_item){strcmp(optarg, "-") ? SRC_ARG : SRC_STDIN, optarg, ++n_args};
            break;
        case 'm':
            model = optarg;
            break;
        case 'o':
            output = optarg;
            break;
        case 'f':
            format = optarg;
            break;
        case 'F':
            src[n_src++] = (struct source_item){SRC_FILE, optarg, 0};
            break;
        case 'r':
            s.flags |= JC_EMBED_RAW;
            break;
        case 'M':
            if (!parse_long("--max-tokens", optarg, 2, 1 << 24, &v))
                goto out_usage;
            s.max_tokens = (size_t)v;
            break;
        case 'b':
            if (!parse_long("--batch", optarg, 1, 4096, &v))
                goto out_usage;
            s.batch_size = (size_t)v;
            break;
        case 't':
            if (!parse_long("--threads", optarg, 1, 256, &threads))
                goto out_usage;
            break;
        case 'h':
            fputs(usage, stdout);
            status = EXIT_OK;
            goto out_free;
        default:
            fputs(usage, stderr);
            goto out_usage;
        }
    }
    for (; optind < argc; optind++) /* after "--" */
        src[n_src++] = (struct source_item){SRC_ARG, argv[optind], ++n_args};
    if (n_src == 0)
        src[n_src++] = (struct source_item){SRC_STDIN, "-", 0};
    for (size_t i = 0; i < n_src; i++) {
        if (src[i].kind == SRC_STDIN && want_stdin) {
            status = usage_error(usage, "stdin can be read only once");
            goto out_free;
        }
        want_stdin |=
            src[i].kind == SRC_STDIN || (src[i].kind == SRC_FILE && !strcmp(src[i].value, "-"));
    }
    if (!format || !strcmp(format, "jsonl"))
        s.format = FMT_JSONL;
    else if (!strcmp(format, "tsv"))
        s.format = FMT_TSV;
    else if (!strcmp(format, "npy"))
        s.format = FMT_NPY;
    else {
        status = usage_error(usage, "--format: '%s' is not jsonl, tsv or npy", format);
        goto out_free;
    }
    if (output && format && s.format != FMT_NPY) {
        status = usage_error(usage, "--output writes .npy; it does not take --format %s", format);
        goto out_free;
    }
    if (!setup_threads(threads))
        goto out_free;
    if (!(s.m = open_model(model, JC_LOAD_TEXT)))
        goto out_free;
    s.tk = jc_model_tokenizer(s.m);
    s.dim = (size_t)jc_model_dim(s.m);
    /* Enough tokens per batch to keep the GEMMs busy, few enough to bound the memory. */
    s.token_budget = 8192;
    s.in = calloc(s.batch_size, sizeof *s.in);
    s.ids = calloc(s.batch_size, sizeof *s.ids);
    s.lens = calloc(s.batch_size, sizeof *s.lens);
    s.vecs = malloc(s.batch_size * s.dim * sizeof *s.vecs);
    if (!s.in || !s.ids || !s.lens || !s.vecs) {
        error("out of memory");
        goto out_model;
    }
    /* Open the output first: a bad path fails before any compute. */
    if (output && jc_npy_out_open(&s.npy, output, s.dim) < 0) {
        error("%s", jc_errmsg());
        goto out_model;
    }

    bool ok = true;
    for (size_t i = 0; ok && i < n_src; i++) {
        struct text_input in = {0};
        switch (src[i].kind) {
        case SRC_ARG:
            snprintf(in.name, sizeof in.name, "argument %d", src[i].argno);
            ok = text_input_set(&in, src[i].value, strlen(src[i].value)) && add_input(&s, &in);
            break;
        case SRC_FILE:
            ok = text_input_file(&in, src[i].value, MAX_FILE_BYTES) && add_input(&s, &in);
            break;
        case SRC_STDIN:
            ok = flush_batch(&s) && read_stdin(&s);
            break;
        }
    }
    ok = ok && flush_batch(&s);
    if (ok && s.npy) {
        ok = jc_npy_out_commit(s.npy) == 0;
        s.npy = NULL;
        if (!ok)
            error("%s", jc_errmsg());
    }
    if (ok && s.format == FMT_NPY && !output) {
        char hdr[256];
        size_t hl = jc_npy_header(hdr, sizeof hdr, s.held_rows, s.dim, NULL, 0);
        ok = fwrite(hdr, 1, hl, stdout) == hl &&
             fwrite(s.held, sizeof(float) * s.dim, s.held_rows, stdout) == s.held_rows &&
             fflush(stdout) == 0;
        if (!ok)
            error("cannot write to stdout");
    }
    status = ok ? EXIT_OK : EXIT_FAIL;
    for (size_t i = 0; i < s.n; i++) {
        free(s.in[i].text);
        free(s.ids[i]);
    }
out_model:
    jc_npy_out_abort(s.npy);
    free(s.in);
    free(s.ids);
    free(s.lens);
    free(s.vecs);
    free(s.held);
    jc_model_free(s.m);
out_free:
    free(src);
    return status;
out_usage:
    free(src);
    return EXIT_USAGE;
}
