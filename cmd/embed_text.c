/* jclip embed-text: texts in, one embedding per text out, in input order. */
#include "cmd.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct cmd_opt options[] = {
    {OPT_MODEL, NULL},
    {OPT_OUTPUT, NULL},
    {OPT_FORMAT, "stdout format: jsonl (default), tsv or npy"},
    {OPT_FILE, "embed a whole file as one text (repeatable; - is stdin)"},
    {OPT_RAW, "unnormalised mean-pooled vectors (default: L2-normalised)"},
    {OPT_MAX_TOKENS, NULL},
    {OPT_MAX_LINE_BYTES, "refuse longer stdin lines and records (default 67108864)"},
    {OPT_MAX_FILE_BYTES, "refuse larger --file documents (default 268435456)"},
    {OPT_JSONL, "records: {\"id\": ..., \"text\": ...} per stdin line in, one\n"
                "{\"id\": ..., \"embedding\": ...} (or \"error\") per line out"},
    {OPT_ENCODING, NULL},
    {OPT_BATCH, "texts per batch (default 32)"},
    {OPT_THREADS, NULL},
    {OPT_PRECISION, NULL},
    {OPT_HELP, NULL},
    {0, NULL},
};

static const struct cmd_spec spec = {
    .synopsis = "usage: jclip embed-text [options] [TEXT...]\n"
                "       jclip embed-text [options] < lines.txt\n",
    .opts = options,
    .epilogue =
        "Each TEXT argument is one text; with no TEXT, or TEXT '-', one text per stdin line.\n",
    /* A leading '-' keeps TEXT arguments in their place among the options. */
    .in_order = true,
};

struct state {
    size_t dim;
    enum format format;
    enum encoding encoding;
    struct jc_npy_out *npy; /* -o */
    float *held;            /* --format npy on stdout: all rows, written at the end */
    size_t held_rows;
};

static bool write_rows(void *ctx, const struct text_input *in, const float *v, size_t n)
{
    struct state *s = ctx;
    (void)in;
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
        if (s->format == FMT_JSONL)
            print_embedding(stdout, v + r * s->dim, s->dim, s->encoding);
        else
            print_vector(stdout, v + r * s->dim, s->dim, false);
        putchar('\n');
    }
    /* A consumer at the other end of a pipe sees each batch as soon as it is done. */
    if (fflush(stdout) != 0 || ferror(stdout)) {
        error("cannot write to stdout");
        return false;
    }
    return true;
}

int cmd_embed_text(int argc, char **argv)
{
    const char *usage = cmd_usage(&spec);
    struct state s = {0};
    struct text_batch tb = {0};
    struct jc_model *m = NULL;
    size_t max_tokens = DEFAULT_MAX_TOKENS, batch = 32;
    unsigned flags = 0;
    const char *model = NULL, *output = NULL, *format = NULL, *encoding = NULL;
    const char *precision = NULL;
    bool jsonl = false;
    struct sources src;
    long threads = 0, v;
    int c, status = EXIT_FAIL;

    if (!sources_init(&src, argc))
        return EXIT_FAIL;
    while ((c = cmd_getopt(argc, argv, &spec)) != -1) {
        switch (c) {
        case 1:
            sources_add_text(&src, optarg, false);
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
        case OPT_FILE:
            sources_add_file(&src, optarg);
            break;
        case OPT_RAW:
            flags |= JC_EMBED_RAW;
            break;
        case OPT_JSONL:
            jsonl = true;
            break;
        case OPT_ENCODING:
            encoding = optarg;
            break;
        case OPT_MAX_TOKENS:
            if (!parse_long("--max-tokens", optarg, 2, 1 << 24, &v))
                goto out_usage;
            max_tokens = (size_t)v;
            break;
        case OPT_MAX_LINE_BYTES:
            if (!parse_bytes("--max-line-bytes", optarg, &src.max_line_bytes))
                goto out_usage;
            break;
        case OPT_MAX_FILE_BYTES:
            if (!parse_bytes("--max-file-bytes", optarg, &src.max_file_bytes))
                goto out_usage;
            break;
        case 'b':
            if (!parse_long("--batch", optarg, 1, 4096, &v))
                goto out_usage;
            batch = (size_t)v;
            break;
        case 't':
            if (!parse_long("--threads", optarg, 1, 256, &threads))
                goto out_usage;
            break;
        case OPT_PRECISION:
            precision = optarg;
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
    for (; optind < argc; optind++) /* after "--": literal texts */
        sources_add_text(&src, argv[optind], true);
    if (encoding && !parse_encoding(encoding, &s.encoding))
        goto out_usage;
    if (jsonl && (src.n || output || format)) {
        status = usage_error(usage, "--jsonl reads records from stdin and writes them to stdout; "
                                    "it takes no TEXT, --file, --output or --format");
        goto out_free;
    }
    if ((status = sources_finish(&src, usage)) != EXIT_OK)
        goto out_free;
    status = EXIT_FAIL;
    if ((status = embed_output_format(usage, format, output, encoding, &s.format)) != EXIT_OK)
        goto out_free;
    status = EXIT_FAIL;
    if (!setup_threads(threads))
        goto out_free;
    if ((status = setup_precision(precision)) != EXIT_OK)
        goto out_free;
    status = EXIT_FAIL;
    if (!(m = open_model(model, JC_LOAD_TEXT)))
        goto out_free;
    s.dim = (size_t)jc_model_dim(m);
    if (jsonl) {
        struct record_opts ro = {
            .kind = JC_RECORD_TEXT,
            .other = "embed-text takes only \"text\"",
            .batch = batch,
            .max_tokens = max_tokens,
            .max_line_bytes = src.max_line_bytes,
            .flags = flags,
            .encoding = s.encoding,
        };
        status = records_run(m, &ro) ? EXIT_OK : EXIT_FAIL;
        goto out_model;
    }
    if (!text_batch_init(&tb, m, batch, max_tokens, flags, write_rows, &s))
        goto out_model;
    /* Open the output first: a bad path fails before any compute. */
    if (output && jc_npy_out_open(&s.npy, output, s.dim) < 0) {
        error("%s", jc_errmsg());
        goto out_model;
    }

    struct text_sink sink = text_batch_sink(&tb);
    bool ok = sources_run(&src, &sink) && text_batch_flush(&tb);
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
out_model:
    jc_npy_out_abort(s.npy);
    text_batch_release(&tb);
    free(s.held);
    jc_model_free(m);
out_free:
    sources_release(&src);
    return status;
out_usage:
    sources_release(&src);
    return EXIT_USAGE;
}
