/* jclip count-tokens: token counts of texts (tokenizer only) or API token cost of images. */
#include "cmd.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
    "usage: jclip count-tokens [options] [TEXT...]\n"
    "       jclip count-tokens --image FILE...\n"
    "  -m, --model DIR       model directory (only its tokenizer is read)\n"
    "      --file PATH       count a whole file as one text (repeatable; - is stdin)\n"
    "      --ids             print the token ids of each input\n"
    "      --tokens          print the tokens of each input\n"
    "      --total           print one sum over all inputs\n"
    "      --max-tokens N    count as if truncated to N tokens (default: no limit)\n"
    "      --image           the arguments are images: print the Jina API cost of each\n"
    "  -h, --help            show this help\n"
    "Each TEXT argument is one text; with no TEXT, or TEXT '-', one text per stdin line.\n"
    "Counts include [CLS] and [SEP].\n";

enum { SHOW_COUNT, SHOW_IDS, SHOW_TOKENS };

struct state {
    const struct jc_tokenizer *tk;
    size_t max_tokens;
    int show;
    bool total;
    unsigned long long sum;
};

static bool count_one(struct state *s, struct text_input *in)
{
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

static bool count_stdin(struct state *s)
{
    struct line_reader r;
    const char *line;
    size_t len;
    bool ok = true;
    int rc;

    line_reader_init(&r, STDIN_FILENO, MAX_LINE_BYTES);
    while (ok && (rc = line_reader_next(&r, true, &line, &len)) != LINE_EOF) {
        struct text_input in = {0};
        if (rc == LINE_TOO_LONG) {
            error("stdin line %zu is longer than %zu bytes", r.lineno, r.max_bytes);
            ok = false;
        } else if (rc == LINE_ERROR) {
            error("cannot read stdin: %m");
            ok = false;
        } else {
            snprintf(in.name, sizeof in.name, "stdin line %zu", r.lineno);
            ok = text_input_set(&in, line, len) && count_one(s, &in);
        }
    }
    line_reader_release(&r);
    return ok;
}

/* Jina API image cost (spec section 6): 1000 tokens per started 224 x 224 tile. */
static int count_images(int n, char **paths, bool total)
{
    unsigned long long sum = 0;
    int status = EXIT_OK;

    for (int i = 0; i < n; i++) {
        int w, h;
        if (jc_image_size(paths[i], &w, &h) < 0) {
            error("%s", jc_errmsg());
            status = EXIT_FAIL;
            continue;
        }
        unsigned long long tokens = 1000ull * ((w + 223ull) / 224) * ((h + 223ull) / 224);
        sum += tokens;
        if (!total)
            printf("%llu\t%s\n", tokens, paths[i]);
    }
    if (total && status == EXIT_OK)
        printf("%llu\n", sum);
    return status;
}

int cmd_count_tokens(int argc, char **argv)
{
    static const struct option opts[] = {
        {"model", required_argument, NULL, 'm'},
        {"file", required_argument, NULL, 'F'},
        {"ids", no_argument, NULL, 'i'},
        {"tokens", no_argument, NULL, 'T'},
        {"total", no_argument, NULL, 's'},
        {"max-tokens", required_argument, NULL, 'M'},
        {"image", no_argument, NULL, 'I'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct state s = {.max_tokens = (size_t)1 << 40};
    const char *model = NULL;
    char **items = calloc((size_t)argc + 1, sizeof *items);
    bool *is_file = calloc((size_t)argc + 1, sizeof *is_file);
    int n = 0, c, status = EXIT_FAIL;
    bool images = false, ok = true;
    long v;

    if (!items || !is_file) {
        error("out of memory");
        goto out_free;
    }
    while ((c = getopt_long(argc, argv, "-m:h", opts, NULL)) != -1) {
        switch (c) {
        case 1:
            items[n++] = optarg;
            break;
        case 'm':
            model = optarg;
            break;
        case 'F':
            is_file[n] = true;
            items[n++] = optarg;
            break;
        case 'i':
            s.show = SHOW_IDS;
            break;
        case 'T':
            s.show = SHOW_TOKENS;
            break;
        case 's':
            s.total = true;
            break;
        case 'M':
            if (!parse_long("--max-tokens", optarg, 2, 1L << 40, &v)) {
                status = EXIT_USAGE;
                goto out_free;
            }
            s.max_tokens = (size_t)v;
            break;
        case 'I':
            images = true;
            break;
        case 'h':
            fputs(usage, stdout);
            status = EXIT_OK;
            goto out_free;
        default:
            fputs(usage, stderr);
            status = EXIT_USAGE;
            goto out_free;
        }
    }
    for (; optind < argc; optind++)
        items[n++] = argv[optind];
    if (images) {
        if (n == 0) {
            status = usage_error(usage, "--image needs at least one FILE");
            goto out_free;
        }
        status = count_images(n, items, s.total);
        goto out_free;
    }

    char *dir;
    struct jc_model *m;
    if (jc_model_locate(model, &dir) < 0) {
        error("%s", jc_errmsg());
        goto out_free;
    }
    /* The tokenizer alone: no weights are opened. */
    if (jc_model_open(&m, dir, JC_LOAD_TOKENIZER) < 0) {
        error("%s", jc_errmsg());
        free(dir);
        goto out_free;
    }
    free(dir);
    s.tk = jc_model_tokenizer(m);
    if (n == 0)
        ok = count_stdin(&s);
    for (int i = 0; ok && i < n; i++) {
        struct text_input in = {0};
        if (is_file[i])
            ok = text_input_file(&in, items[i], MAX_FILE_BYTES) && count_one(&s, &in);
        else if (!strcmp(items[i], "-"))
            ok = count_stdin(&s);
        else {
            snprintf(in.name, sizeof in.name, "argument %d", i + 1);
            ok = text_input_set(&in, items[i], strlen(items[i])) && count_one(&s, &in);
        }
    }
    if (ok && s.total)
        printf("%llu\n", s.sum);
    if (ok && fflush(stdout) != 0) {
        error("cannot write to stdout");
        ok = false;
    }
    status = ok ? EXIT_OK : EXIT_FAIL;
    jc_model_free(m);
out_free:
    free(items);
    free(is_file);
    return status;
}
