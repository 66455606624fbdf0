/*
 * jclip classify: zero-shot classification. Each label becomes one or more prompts; their
 * normalised text embeddings are averaged per label; an input's probabilities are
 * softmax(exp(logit_scale) * cosine) over the labels, as CLIP computes them.
 */
#include "cmd.h"

#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct cmd_opt options[] = {
    {OPT_LABELS, NULL},
    {OPT_LABELS_FILE, NULL},
    {OPT_TEMPLATE, "prompt for a label, {} marks the label (repeatable: the\n"
                   "prompts are ensembled; default 'a photo of a {}.')"},
    {OPT_TOP, "the K most probable labels per input (default 1)"},
    {OPT_FORMAT, "tsv (default: input, label, probability) or json (one object\n"
                 "per input)"},
    {OPT_TEXTS, NULL},
    {OPT_JSONL, "records: {\"id\": ..., \"image\": ...} (or \"text\" with --text)\n"
                "per stdin line in, one {\"id\": ..., \"labels\": [...]} per line out"},
    {OPT_RECURSIVE, "descend into image directories"},
    {OPT_KEEP_GOING, "skip images that cannot be read and classify the rest"},
    {OPT_BATCH, "inputs per batch (default 16)"},
    IMAGE_OPTS,
    {OPT_MAX_TOKENS, "truncate longer texts and prompts to N tokens (default 8192)"},
    {OPT_MAX_LINE_BYTES, "refuse longer stdin lines, records and label lines\n"
                         "(default 67108864)"},
    {OPT_MAX_FILE_BYTES, "refuse a larger --labels-file (default 268435456)"},
    {OPT_MODEL, "model directory"},
    {OPT_THREADS, NULL},
    {OPT_PRECISION, NULL},
    {OPT_HELP, NULL},
    {0, NULL},
};

static const struct cmd_spec spec = {
    .synopsis = "usage: jclip classify [options] -l LABEL[,LABEL...] [IMAGE...]\n"
                "       jclip classify [options] -l LABEL[,LABEL...] --text [TEXT...]\n",
    .opts = options,
    .epilogue = "With no IMAGE (or TEXT), or '-', the inputs are read from stdin, one per line.\n",
    .in_order = true,
};

struct labels {
    char **v;
    size_t n;
};

static bool add_label(struct labels *l, const char *s, size_t len)
{
    while (len && (*s == ' ' || *s == '\t'))
        s++, len--;
    while (len && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\r'))
        len--;
    if (!len)
        return true;
    char **v = realloc(l->v, (l->n + 1) * sizeof *v);
    if (!v || !(v[l->n] = strndup(s, len))) {
        error("out of memory");
        if (v)
            l->v = v;
        return false;
    }
    l->v = v;
    l->n++;
    return true;
}

static bool add_label_list(struct labels *l, const char *list)
{
    for (const char *p = list;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (!add_label(l, p, len))
            return false;
        if (!comma)
            return true;
        p = comma + 1;
    }
}

static bool read_label_file(struct labels *l, const char *path, size_t max_file, size_t max_line)
{
    char name[300], *buf;
    size_t len, lineno = 1;
    bool ok = true;

    snprintf(name, sizeof name, "'%s'", path);
    /* a file named '-', as it always was here: stdin holds the inputs */
    if (!read_file_limited(strcmp(path, "-") ? path : "./-", name, max_file, &buf, &len))
        return false;
    for (size_t start = 0; ok && start < len; lineno++) {
        const char *nl = memchr(buf + start, '\n', len - start);
        size_t n = nl ? (size_t)(nl - (buf + start)) : len - start;
        if (n > max_line) {
            error("%s line %zu is longer than the limit of %zu bytes", name, lineno, max_line);
            ok = false;
            break;
        }
        ok = add_label(l, buf + start, n);
        start += n + 1;
    }
    free(buf);
    return ok;
}

struct state {
    struct jc_model *m;
    const struct labels *labels;
    float *label_vecs; /* [labels, dim]: ensembled, normalised */
    size_t dim, top, max_tokens;
    float scale; /* exp(logit_scale) */
    bool json, keep_going;
    size_t skipped;
    const struct image_list *images;
    float *vecs;
    float *cos, *prob;
    size_t *order;
    /* while embedding prompts */
    size_t prompt, templates;
};

static bool take_prompts(void *ctx, const struct text_input *in, const float *vecs, size_t n)
{
    struct state *s = ctx;
    (void)in;
    for (size_t i = 0; i < n; i++, s->prompt++) {
        float *dst = s->label_vecs + (s->prompt / s->templates) * s->dim;
        for (size_t c = 0; c < s->dim; c++)
            dst[c] += vecs[i * s->dim + c];
    }
    return true;
}

/* Prompts: every template for the first label, then for the next. */
static bool embed_labels(struct state *s, const char *const *templates, size_t nt)
{
    struct text_batch tb;
    bool ok;

    s->templates = nt;
    if (!text_batch_init(&tb, s->m, 32, s->max_tokens, 0, take_prompts, s))
        return false;
    ok = true;
    for (size_t l = 0; ok && l < s->labels->n; l++)
        for (size_t t = 0; ok && t < nt; t++) {
            const char *brace = strstr(templates[t], "{}");
            size_t pre = (size_t)(brace - templates[t]);
            struct text_input in = {0};
            snprintf(in.name, sizeof in.name, "label '%.200s'", s->labels->v[l]);
            size_t len = strlen(templates[t]) - 2 + strlen(s->labels->v[l]);
            char *text = malloc(len + 1);
            if (!text) {
                error("out of memory");
                ok = false;
                break;
            }
            snprintf(text, len + 1, "%.*s%s%s", (int)pre, templates[t], s->labels->v[l], brace + 2);
            in.text = text;
            in.len = len;
            ok = text_batch_add(&tb, &in);
        }
    ok = ok && text_batch_flush(&tb);
    text_batch_release(&tb);
    for (size_t l = 0; ok && l < s->labels->n; l++)
        jc_l2_normalize(s->label_vecs + l * s->dim, s->dim);
    return ok;
}

/* Probabilities of the labels for row i of s->cos, and their order, best first. */
static void rank(struct state *s, size_t i)
{
    size_t nl = s->labels->n;
    const float *cos = s->cos + i * nl;
    float max = -INFINITY, sum = 0;

    for (size_t j = 0; j < nl; j++) {
        s->prob[j] = s->scale * cos[j];
        max = fmaxf(max, s->prob[j]);
    }
    for (size_t j = 0; j < nl; j++)
        sum += s->prob[j] = expf(s->prob[j] - max);
    for (size_t j = 0; j < nl; j++)
        s->prob[j] /= sum;
    /* best first; equal probabilities keep the labels' order */
    for (size_t j = 0; j < nl; j++) {
        size_t pos = j;
        while (pos > 0 && s->prob[j] > s->prob[s->order[pos - 1]]) {
            s->order[pos] = s->order[pos - 1];
            pos--;
        }
        s->order[pos] = j;
    }
}

/* The --top labels of row i, ranked, as a JSON array. */
static void print_labels(struct state *s, FILE *f, size_t i)
{
    size_t nl = s->labels->n, k = s->top < nl ? s->top : nl;
    const float *cos = s->cos + i * nl;

    rank(s, i);
    putc('[', f);
    for (size_t r = 0; r < k; r++) {
        fputs(r ? ",{\"label\":" : "{\"label\":", f);
        json_string(f, s->labels->v[s->order[r]]);
        fprintf(f, ",\"probability\":%.9g,\"cosine\":%.9g}", s->prob[s->order[r]],
                cos[s->order[r]]);
    }
    putc(']', f);
}

/* The cosines of n normalised embeddings with every label, into s->cos. */
static bool cosines(void *ctx, const float *vecs, size_t n)
{
    struct state *s = ctx;
    if (jc_dot_matrix(vecs, n, s->label_vecs, s->labels->n, s->dim, s->cos, s->labels->n) < 0) {
        error("%s", jc_errmsg());
        return false;
    }
    return true;
}

/* The members of a record after its id (--jsonl). */
static void write_record(void *ctx, FILE *f, const float *vec, size_t i)
{
    (void)vec;
    fputs(",\"labels\":", f);
    print_labels(ctx, f, i);
}

/* Classifies n normalised embeddings; names[i] labels input i in the output. */
static bool classify(struct state *s, const float *vecs, size_t n, const char *const *names)
{
    size_t nl = s->labels->n, k = s->top < nl ? s->top : nl;

    if (!cosines(s, vecs, n))
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s->json) {
            fputs("{\"input\":", stdout);
            json_string(stdout, names[i]);
            fputs(",\"labels\":", stdout);
            print_labels(s, stdout, i);
            fputs("}\n", stdout);
        } else {
            rank(s, i);
            for (size_t r = 0; r < k; r++) {
                for (const char *p = names[i]; *p; p++)
                    putchar(*p == '\t' || *p == '\n' || *p == '\r' ? ' ' : *p);
                printf("\t%s\t%.9g\n", s->labels->v[s->order[r]], s->prob[s->order[r]]);
            }
        }
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        error("cannot write to stdout");
        return false;
    }
    return true;
}

static bool take_texts(void *ctx, const struct text_input *in, const float *vecs, size_t n)
{
    struct state *s = ctx;
    const char *names[n ? n : 1];
    for (size_t i = 0; i < n; i++)
        names[i] = in[i].text;
    return classify(s, vecs, n, names);
}

static bool take_images(void *ctx, const struct image_batch *b)
{
    struct state *s = ctx;
    const char *names[b->n ? b->n : 1];
    bool ok = true;

    for (size_t i = 0, g = 0; i < b->n; i++) {
        if (!b->err[i]) {
            names[g++] = s->images->v[b->start + i];
            continue;
        }
        error("%s", b->err[i]);
        s->skipped++;
        if (!s->keep_going)
            ok = false;
        else if (s->json) {
            fputs("{\"input\":", stdout);
            json_string(stdout, s->images->v[b->start + i]);
            fputs(",\"error\":", stdout);
            json_string(stdout, b->err[i]);
            fputs("}\n", stdout);
        }
    }
    if (!ok)
        return false;
    if (b->n_good && jc_embed_images(s->m, b->pixels, b->n_good, 0, s->vecs) < 0) {
        error("%s", jc_errmsg());
        return false;
    }
    return classify(s, s->vecs, b->n_good, names);
}

int cmd_classify(int argc, char **argv)
{
    const char *usage = cmd_usage(&spec);
    struct labels labels = {0};
    struct state s = {.labels = &labels, .top = 1, .max_tokens = DEFAULT_MAX_TOKENS};
    const char **templates = calloc((size_t)argc + 1, sizeof *templates);
    char **args = calloc((size_t)argc + 1, sizeof *args);
    /* -l and --labels-file in their order, read once the limits are known: 'L' marks a file */
    char **label_args = calloc((size_t)argc + 1, sizeof *label_args);
    char *label_kind = calloc((size_t)argc + 1, 1);
    int n_label_args = 0;
    long v;
    const char *model = NULL, *format = NULL, *precision = NULL;
    size_t nt = 0;
    int n_args = 0, c, status = EXIT_FAIL;
    long top = 1, batch = 16, threads = 0;
    struct jc_image_opts io = {0};
    bool texts = false, recursive = false, labels_given = false, jsonl = false;
    struct image_list images = {0};
    struct sources src = {0};
    struct text_batch tb = {0};

    if (!templates || !args || !label_args || !label_kind || !sources_init(&src, argc)) {
        error("out of memory");
        goto out;
    }
    while ((c = cmd_getopt(argc, argv, &spec)) != -1) {
        switch (c) {
        case 1:
            args[n_args++] = optarg;
            break;
        case 'l':
        case OPT_LABELS_FILE:
            labels_given = true;
            label_kind[n_label_args] = c == 'l' ? 'l' : 'L';
            label_args[n_label_args++] = optarg;
            break;
        case OPT_TEMPLATE:
            if (!strstr(optarg, "{}")) {
                status = usage_error(usage, "--template '%s' has no {} for the label", optarg);
                goto out;
            }
            templates[nt++] = optarg;
            break;
        case 'k':
            if (!parse_long("--top", optarg, 1, 1 << 20, &top))
                goto out_usage;
            break;
        case 'f':
            format = optarg;
            break;
        case OPT_TEXTS:
            texts = true;
            break;
        case OPT_JSONL:
            jsonl = true;
            break;
        case 'r':
            recursive = true;
            break;
        case OPT_KEEP_GOING:
            s.keep_going = true;
            break;
        case 'b':
            if (!parse_long("--batch", optarg, 1, 1024, &batch))
                goto out_usage;
            break;
        IMAGE_OPT_CASES:
            if (!image_option(c, optarg, &io))
                goto out_usage;
            break;
        case OPT_MAX_TOKENS:
            if (!parse_long("--max-tokens", optarg, 2, 1 << 24, &v))
                goto out_usage;
            s.max_tokens = (size_t)v;
            break;
        case OPT_MAX_LINE_BYTES:
            if (!parse_bytes("--max-line-bytes", optarg, &src.max_line_bytes))
                goto out_usage;
            break;
        case OPT_MAX_FILE_BYTES:
            if (!parse_bytes("--max-file-bytes", optarg, &src.max_file_bytes))
                goto out_usage;
            break;
        case 'm':
            model = optarg;
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
            goto out;
        default:
            fputs(usage, stderr);
            goto out_usage;
        }
    }
    for (; optind < argc; optind++)
        args[n_args++] = argv[optind];
    for (int i = 0; i < n_label_args; i++)
        if (!(label_kind[i] == 'l' ? add_label_list(&labels, label_args[i])
                                   : read_label_file(&labels, label_args[i], src.max_file_bytes,
                                                     src.max_line_bytes)))
            goto out;
    if (!labels_given) {
        status = usage_error(usage, "no labels: give -l or --labels-file");
        goto out;
    }
    if (labels.n == 0) {
        status = usage_error(usage, "the label list is empty");
        goto out;
    }
    if (jsonl && (n_args || format || recursive)) {
        status = usage_error(usage, "--jsonl reads records from stdin and writes them to stdout; "
                                    "it takes no IMAGE, TEXT, --format or -r");
        goto out;
    }
    if (!format || !strcmp(format, "tsv"))
        s.json = false;
    else if (!strcmp(format, "json"))
        s.json = true;
    else {
        status = usage_error(usage, "--format: '%s' is not tsv or json", format);
        goto out;
    }
    if (nt == 0)
        templates[nt++] = "a photo of a {}.";
    s.top = (size_t)top;
    if (!setup_threads(threads))
        goto out;
    if ((status = setup_precision(precision)) != EXIT_OK)
        goto out;
    status = EXIT_FAIL;
    if (!(s.m = open_model(model, JC_LOAD_TEXT | (texts ? 0 : JC_LOAD_VISION))))
        goto out;
    s.dim = (size_t)jc_model_dim(s.m);
    s.scale = expf(jc_model_logit_scale(s.m));
    s.label_vecs = calloc(labels.n * s.dim, sizeof *s.label_vecs);
    s.vecs = malloc((size_t)(batch > 32 ? batch : 32) * s.dim * sizeof *s.vecs);
    s.cos = malloc((size_t)(batch > 32 ? batch : 32) * labels.n * sizeof *s.cos);
    s.prob = malloc(labels.n * sizeof *s.prob);
    s.order = malloc(labels.n * sizeof *s.order);
    if (!s.label_vecs || !s.vecs || !s.cos || !s.prob || !s.order) {
        error("out of memory");
        goto out;
    }
    if (!embed_labels(&s, templates, nt))
        goto out;

    bool ok;
    if (jsonl) {
        struct record_opts ro = {
            .kind = texts ? JC_RECORD_TEXT : JC_RECORD_IMAGE,
            .other = texts ? "classify --text takes only \"text\""
                           : "classify takes \"image\" (use --text for texts)",
            .batch = (size_t)batch,
            .max_tokens = s.max_tokens,
            .image = io,
            .max_line_bytes = src.max_line_bytes,
            .prepare = cosines,
            .write = write_record,
            .ctx = &s,
        };
        ok = records_run(s.m, &ro);
    } else if (texts) {
        for (int i = 0; i < n_args; i++)
            sources_add_text(&src, args[i], false);
        if ((status = sources_finish(&src, usage)) != EXIT_OK)
            goto out;
        status = EXIT_FAIL;
        if (!text_batch_init(&tb, s.m, 32, s.max_tokens, 0, take_texts, &s))
            goto out;
        struct text_sink sink = text_batch_sink(&tb);
        ok = sources_run(&src, &sink) && text_batch_flush(&tb);
    } else {
        ok = image_list_from_args(&images, args, n_args, recursive);
        s.images = &images;
        ok = ok && images_run(&images, s.m, (size_t)batch, &io, take_images, &s);
        if (ok && s.skipped)
            error("%zu of %zu images skipped", s.skipped, images.n);
    }
    status = ok && !s.skipped ? EXIT_OK : EXIT_FAIL;
out:
    text_batch_release(&tb);
    sources_release(&src);
    image_list_release(&images);
    for (size_t i = 0; i < labels.n; i++)
        free(labels.v[i]);
    free(labels.v);
    free(s.label_vecs);
    free(s.vecs);
    free(s.cos);
    free(s.prob);
    free(s.order);
    jc_model_free(s.m);
    free(templates);
    free(args);
    free(label_args);
    free(label_kind);
    return status;
out_usage:
    status = EXIT_USAGE;
    goto out;
}
