/* jclip embed-image: image files in, one embedding per image out, in input order. */
#include "cmd.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static const struct cmd_opt options[] = {
    {OPT_MODEL, NULL},
    {OPT_OUTPUT, "write an N x D float32 .npy, and the path of each row to a\n"
                 "sidecar FILE.txt (FILE with .npy replaced), instead of stdout"},
    {OPT_FORMAT, "stdout format: jsonl (default), tsv or npy"},
    {OPT_RECURSIVE, "descend into directories (image extensions only, sorted)"},
    {OPT_KEEP_GOING, "skip files that cannot be read and embed the rest"},
    {OPT_RAW, "unnormalised CLS vectors (default: L2-normalised)"},
    {OPT_BATCH, "images per batch (default 16)"},
    IMAGE_OPTS,
    {OPT_MAX_LINE_BYTES, "refuse longer --jsonl records (default 67108864)"},
    {OPT_PROGRESS, NULL},
    {OPT_DUMP_PIXELS, NULL},
    {OPT_JSONL, "records: {\"id\": ..., \"image\": PATH or data URI} per stdin\n"
                "line in, {\"id\": ..., \"embedding\": ...} (or \"error\") out"},
    {OPT_ENCODING, NULL},
    {OPT_THREADS, NULL},
    {OPT_PRECISION, NULL},
    {OPT_HELP, NULL},
    {0, NULL},
};

/* -k was --keep-going here alone; everywhere else it is --top. */
static const struct cmd_alias aliases[] = {{'k', OPT_KEEP_GOING}, {0, 0}};

static const struct cmd_spec spec = {
    .synopsis = "usage: jclip embed-image [options] [PATH...]\n"
                "       jclip embed-image [options] < paths.txt\n",
    .opts = options,
    .epilogue = "With no PATH, or PATH '-', image paths are read from stdin, one per line.\n",
    .aliases = aliases,
    .in_order = true,
};

/* ---- output --------------------------------------------------------------------------- */

struct out {
    enum format format;
    enum encoding encoding;
    size_t dim;
    struct jc_npy_out *npy, *dump;
    struct jc_afile sidecar;
    float *held; /* --format npy on stdout */
    size_t held_rows;
};

static char *sidecar_name(const char *npy)
{
    size_t n = strlen(npy);
    char *s = malloc(n + 5);
    if (!s)
        return NULL;
    memcpy(s, npy, n + 1);
    if (n > 4 && !strcasecmp(s + n - 4, ".npy"))
        s[n - 4] = '\0';
    strcat(s, ".txt");
    return s;
}

static bool emit(struct out *o, const char *path, const float *v, const char *err)
{
    if (o->npy) {
        if (!err &&
            (jc_npy_out_append(o->npy, v, 1) < 0 || fprintf(o->sidecar.f, "%s\n", path) < 0)) {
            error("%s", jc_errmsg());
            return false;
        }
        return true;
    }
    switch (o->format) {
    case FMT_NPY:
        if (!err) {
            float *h = realloc(o->held, (o->held_rows + 1) * o->dim * sizeof *h);
            if (!h) {
                error("out of memory holding embeddings for stdout");
                return false;
            }
            memcpy(h + o->held_rows * o->dim, v, o->dim * sizeof *h);
            o->held = h;
            o->held_rows++;
        }
        return true;
    case FMT_TSV:
        if (!err) {
            fputs(path, stdout);
            putchar('\t');
            print_vector(stdout, v, o->dim, false);
            putchar('\n');
        }
        break;
    case FMT_JSONL:
        fputs("{\"path\":", stdout);
        json_string(stdout, path);
        if (err) {
            fputs(",\"error\":", stdout);
            json_string(stdout, err);
        } else {
            fputs(",\"embedding\":", stdout);
            print_embedding(stdout, v, o->dim, o->encoding);
        }
        fputs("}\n", stdout);
        break;
    }
    if (ferror(stdout)) {
        error("cannot write to stdout");
        return false;
    }
    return true;
}

static void progress(size_t done, size_t total, double t0, bool final)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    double dt = ts.tv_sec + ts.tv_nsec * 1e-9 - t0, rate = dt > 0 ? done / dt : 0;
    double eta = rate > 0 ? (total - done) / rate : 0;
    fprintf(stderr, "\r%zu/%zu images, %.1f images/s, ETA %dm%02ds%s", done, total, rate,
            (int)eta / 60, (int)eta % 60, final ? "\n" : "");
    fflush(stderr);
}

struct run {
    struct jc_model *m;
    const struct image_list *list;
    struct out *out;
    unsigned flags;
    bool keep_going, show_progress;
    float *vecs;
    size_t done, skipped;
    double t0;
};

static bool embed_batch(void *ctx, const struct image_batch *b)
{
    struct run *r = ctx;
    struct out *o = r->out;
    bool ok = true;

    for (size_t i = 0; i < b->n; i++)
        if (b->err[i]) {
            error("%s", b->err[i]);
            r->skipped++;
            if (!r->keep_going)
                ok = false;
        }
    if (ok && b->n_good && jc_embed_images(r->m, b->pixels, b->n_good, r->flags, r->vecs) < 0) {
        error("%s", jc_errmsg());
        ok = false;
    }
    if (ok && o->dump && jc_npy_out_append(o->dump, b->pixels, b->n_good) < 0) {
        error("%s", jc_errmsg());
        ok = false;
    }
    for (size_t i = 0, g = 0; ok && i < b->n; i++) {
        ok = emit(o, r->list->v[b->start + i], b->err[i] ? NULL : r->vecs + g * o->dim, b->err[i]);
        g += !b->err[i];
    }
    if (ok && o->format != FMT_NPY && !o->npy && fflush(stdout) != 0) {
        error("cannot write to stdout");
        ok = false;
    }
    r->done += b->n;
    if (r->show_progress)
        progress(r->done, r->list->n, r->t0, r->done == r->list->n);
    return ok;
}

int cmd_embed_image(int argc, char **argv)
{
    const char *usage = cmd_usage(&spec);
    const char *model = NULL, *output = NULL, *format = NULL, *dump = NULL, *encoding = NULL;
    const char *precision = NULL;
    bool recursive = false, jsonl = false;
    long batch = 16, threads = 0;
    struct jc_image_opts io = {0};
    size_t max_line_bytes = DEFAULT_MAX_LINE_BYTES;
    struct image_list list = {0};
    struct out out = {0};
    struct run r = {.out = &out, .list = &list, .show_progress = isatty(STDERR_FILENO)};
    char **args = calloc((size_t)argc + 1, sizeof *args);
    int n_args = 0, c, status = EXIT_FAIL, size;
    float mean[3], std[3];

    if (!args) {
        error("out of memory");
        return EXIT_FAIL;
    }
    while ((c = cmd_getopt(argc, argv, &spec)) != -1) {
        switch (c) {
        case 1:
            args[n_args++] = optarg;
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
        case 'r':
            recursive = true;
            break;
        case OPT_KEEP_GOING:
            r.keep_going = true;
            break;
        case OPT_RAW:
            r.flags |= JC_EMBED_RAW;
            break;
        case 'b':
            if (!parse_long("--batch", optarg, 1, 1024, &batch))
                goto out_usage;
            break;
        IMAGE_OPT_CASES:
            if (!image_option(c, optarg, &io))
                goto out_usage;
            break;
        case OPT_MAX_LINE_BYTES:
            if (!parse_bytes("--max-line-bytes", optarg, &max_line_bytes))
                goto out_usage;
            break;
        case OPT_PROGRESS:
            r.show_progress = true;
            break;
        case OPT_DUMP_PIXELS:
            dump = optarg;
            break;
        case OPT_JSONL:
            jsonl = true;
            break;
        case OPT_ENCODING:
            encoding = optarg;
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
            goto out_args;
        default:
            fputs(usage, stderr);
            goto out_usage;
        }
    }
    for (; optind < argc; optind++)
        args[n_args++] = argv[optind];
    if (encoding && !parse_encoding(encoding, &out.encoding))
        goto out_usage;
    if (jsonl && (n_args || output || format || dump || recursive)) {
        status = usage_error(usage, "--jsonl reads records from stdin and writes them to stdout; "
                                    "it takes no PATH, --output, --format, --dump-pixels or -r");
        goto out_args;
    }
    if ((status = embed_output_format(usage, format, output, encoding, &out.format)) != EXIT_OK)
        goto out_args;
    status = EXIT_FAIL;
    if (!setup_threads(threads))
        goto out_args;
    if ((status = setup_precision(precision)) != EXIT_OK)
        goto out_args;
    status = EXIT_FAIL;
    if (!(r.m = open_model(model, JC_LOAD_VISION)))
        goto out_args;
    out.dim = (size_t)jc_model_dim(r.m);
    jc_model_preprocess(r.m, &size, mean, std);
    if (jsonl) {
        struct record_opts ro = {
            .kind = JC_RECORD_IMAGE,
            .other = "embed-image takes only \"image\"",
            .batch = (size_t)batch,
            .image = io,
            .max_line_bytes = max_line_bytes,
            .flags = r.flags,
            .encoding = out.encoding,
            .progress = r.show_progress,
        };
        status = records_run(r.m, &ro) ? EXIT_OK : EXIT_FAIL;
        goto out_model;
    }

    /* Outputs open before any work, so a bad path fails at once. */
    if (output) {
        char *side = sidecar_name(output);
        if (!side || jc_npy_out_open(&out.npy, output, out.dim) < 0 ||
            jc_afile_open(&out.sidecar, side) < 0) {
            error("%s", side ? jc_errmsg() : "out of memory");
            free(side);
            goto out_model;
        }
        free(side);
    }
    size_t inner[3] = {3, (size_t)size, (size_t)size};
    if (dump && jc_npy_out_open_nd(&out.dump, dump, inner, 3) < 0) {
        error("%s", jc_errmsg());
        goto out_model;
    }

    bool ok = image_list_from_args(&list, args, n_args, recursive);
    if (!ok)
        goto out_model;
    if (!(r.vecs = malloc((size_t)batch * out.dim * sizeof *r.vecs))) {
        error("out of memory");
        goto out_model;
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    r.t0 = ts.tv_sec + ts.tv_nsec * 1e-9;
    ok = images_run(&list, r.m, (size_t)batch, &io, embed_batch, &r);

    /* Nothing is committed unless every step succeeded. */
    if (ok && out.npy) {
        struct jc_npy_out *npy = out.npy;
        out.npy = NULL;
        ok = jc_npy_out_commit(npy) == 0 && jc_afile_commit(&out.sidecar) == 0;
        if (!ok)
            error("%s", jc_errmsg());
    }
    if (ok && out.dump) {
        struct jc_npy_out *d = out.dump;
        out.dump = NULL;
        if (!(ok = jc_npy_out_commit(d) == 0))
            error("%s", jc_errmsg());
    }
    if (ok && out.format == FMT_NPY && !output) {
        char hdr[256];
        size_t hl = jc_npy_header(hdr, sizeof hdr, out.held_rows, out.dim, NULL, 0);
        ok = fwrite(hdr, 1, hl, stdout) == hl &&
             fwrite(out.held, sizeof(float) * out.dim, out.held_rows, stdout) == out.held_rows &&
             fflush(stdout) == 0;
        if (!ok)
            error("cannot write to stdout");
    }
    if (ok && r.skipped)
        error("%zu of %zu images skipped", r.skipped, list.n);
    status = ok && !r.skipped ? EXIT_OK : EXIT_FAIL;

out_model:
    jc_npy_out_abort(out.npy);
    jc_npy_out_abort(out.dump);
    jc_afile_abort(&out.sidecar);
    free(out.held);
    free(r.vecs);
    image_list_release(&list);
    jc_model_free(r.m);
out_args:
    free(args);
    return status;
out_usage:
    free(args);
    return EXIT_USAGE;
}
