/* jclip count-tokens: token counts of texts (tokenizer only) or API token cost of images. */
#include "cmd.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static const struct cmd_opt options[] = {
    {OPT_MODEL, "model directory (only its tokenizer is read)"},
    {OPT_FILE, "count a whole file as one text (repeatable; - is stdin)"},
    {OPT_IDS, NULL},
    {OPT_TOKENS, NULL},
    {OPT_TOTAL, NULL},
    {OPT_MAX_TOKENS, "count as if truncated to N tokens (default: no limit)"},
    {OPT_MAX_LINE_BYTES, NULL},
    {OPT_MAX_FILE_BYTES, "refuse larger --file documents (default 268435456)"},
    {OPT_IMAGES, "the arguments are images: print the Jina API cost of each"},
    {OPT_HELP, NULL},
    {0, NULL},
};

static const struct cmd_spec spec = {
    .synopsis = "usage: jclip count-tokens [options] [TEXT...]\n"
                "       jclip count-tokens --image [--total] FILE...\n",
    .opts = options,
    .epilogue =
        "Each TEXT argument is one text; with no TEXT, or TEXT '-', one text per stdin line.\n"
        "Counts include [CLS] and [SEP].\n",
    .in_order = true,
};

enum { SHOW_COUNT, SHOW_IDS, SHOW_TOKENS };

struct state {
    const struct jc_tokenizer *tk;
    size_t max_tokens;
    int show;
    bool total;
    unsigned long long sum;
};

static bool count_one(void *ctx, struct text_input *in)
{
    struct state *s = ctx;
    int32_t *ids;
    size_t n;
    bool ok = true;

    if (jc_tokenize(s->tk, in->text, in->len, s->max_tokens, &ids, &n, NULL) < 0) {
        error("%s: %s", in->name, jc_errmsg());
        free(in->text);
        return false;
    }
    s->sum += n;
    if (!s->total) {
        if (s->show == SHOW_COUNT)
            printf("%zu\n", n);
        for (size_t i = 0; s->show != SHOW_COUNT && i < n; i++) {
            if (s->show == SHOW_IDS)
                printf(i ? " %d" : "%d", ids[i]);
            else
                printf(i ? " %s" : "%s", jc_tokenizer_token(s->tk, ids[i]));
        }
        if (s->show != SHOW_COUNT)
            putchar('\n');
    }
    if (ferror(stdout)) {
        error("cannot write to stdout");
        ok = false;
    }
    free(ids);
    free(in->text);
    return ok;
}

/* Jina API image cost (spec section 6): 1000 tokens per started 224 x 224 tile. */
static int count_images(const struct sources *src, bool total)
{
    unsigned long long sum = 0;
    int status = EXIT_OK;

    for (size_t i = 0; i < src->n; i++) {
        const char *path = src->v[i].value;
        int w, h;
        if (jc_image_size(path, &w, &h) < 0) {
            error("%s", jc_errmsg());
            status = EXIT_FAIL;
            continue;
        }
        unsigned long long tokens = 1000ull * ((w + 223ull) / 224) * ((h + 223ull) / 224);
        sum += tokens;
        if (!total)
            printf("%llu\t%s\n", tokens, path);
    }
    if (total && status == EXIT_OK)
        printf("%llu\n", sum);
    if (fflush(stdout) != 0) {
        error("cannot write to stdout");
        status = EXIT_FAIL;
    }
    return status;
}

int cmd_count_tokens(int argc, char **argv)
{
    const char *usage = cmd_usage(&spec);
    struct state s = {.max_tokens = (size_t)1 << 40};
    struct sources src;
    const char *model = NULL;
    bool images = false, text_opts = false;
    int c, status = EXIT_FAIL;
    long v;

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
        case OPT_FILE:
            sources_add_file(&src, optarg);
            text_opts = true;
            break;
        case OPT_IDS:
            s.show = SHOW_IDS;
            text_opts = true;
            break;
        case OPT_TOKENS:
            s.show = SHOW_TOKENS;
            text_opts = true;
            break;
        case OPT_TOTAL:
            s.total = true;
            break;
        case OPT_MAX_TOKENS:
            if (!parse_long("--max-tokens", optarg, 2, 1L << 40, &v)) {
                status = EXIT_USAGE;
                goto out;
            }
            s.max_tokens = (size_t)v;
            text_opts = true;
            break;
        case OPT_MAX_LINE_BYTES:
        case OPT_MAX_FILE_BYTES:
            if (!parse_bytes(c == OPT_MAX_LINE_BYTES ? "--max-line-bytes" : "--max-file-bytes",
                             optarg,
                             c == OPT_MAX_LINE_BYTES ? &src.max_line_bytes : &src.max_file_bytes)) {
                status = EXIT_USAGE;
                goto out;
            }
            text_opts = true;
            break;
        case OPT_IMAGES:
            images = true;
            break;
        case 'h':
            fputs(usage, stdout);
            status = EXIT_OK;
            goto out;
        default:
            fputs(usage, stderr);
            status = EXIT_USAGE;
            goto out;
        }
    }
    for (; optind < argc; optind++)
        sources_add_text(&src, argv[optind], true);
    if (images) {
        if (text_opts)
            status = usage_error(usage, "--image takes only --total and image files");
        else if (src.n == 0)
            status = usage_error(usage, "--image needs at least one FILE");
        else
            status = count_images(&src, s.total);
        goto out;
    }
    if ((status = sources_finish(&src, usage)) != EXIT_OK)
        goto out;

    /* The tokenizer alone: no weights are opened. */
    struct jc_model *m = open_model(model, JC_LOAD_TOKENIZER);
    if (!m) {
        status = EXIT_FAIL;
        goto out;
    }
    s.tk = jc_model_tokenizer(m);
    struct text_sink sink = {count_one, NULL, NULL, &s};
    bool ok = sources_run(&src, &sink);
    if (ok && s.total)
        printf("%llu\n", s.sum);
    if (ok && fflush(stdout) != 0) {
        error("cannot write to stdout");
        ok = false;
    }
    status = ok ? EXIT_OK : EXIT_FAIL;
    jc_model_free(m);
out:
    sources_release(&src);
    return status;
}
