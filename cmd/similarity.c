/*
 * jclip similarity: cosines between texts, images and stored embeddings, as one number, a
 * matrix, or the best matches of each query. Scores come from one matrix product per block
 * of queries and block of candidates, so searching a large .npy is a GEMM, not a loop of dot
 * products. Stored rows are read from the mapped file a block at a time, normalised across
 * the threads into a buffer that stays in cache: a large file is never copied whole.
 */
#include "cmd.h"

#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const struct cmd_opt options[] = {
    {OPT_TEXT, NULL},
    {OPT_TEXT_FILE, NULL},
    {OPT_IMAGE, NULL},
    {OPT_AGAINST, NULL},
    {OPT_TOP, "print the K best candidates of each query"},
    {OPT_FORMAT, "tsv (default), json or npy"},
    {OPT_MAX_TOKENS, NULL},
    {OPT_MAX_FILE_BYTES, "refuse a larger --text-file (default 268435456)"},
    IMAGE_OPTS,
    {OPT_MODEL, "model directory (not needed for .npy inputs alone)"},
    {OPT_THREADS, NULL},
    {OPT_PRECISION, NULL},
    {OPT_HELP, NULL},
    {0, NULL},
};

/* -t was --text here alone; everywhere else it is --threads. */
static const struct cmd_alias aliases[] = {{'t', OPT_TEXT}, {0, 0}};

static const struct cmd_spec spec = {
    .synopsis = "usage: jclip similarity [options] INPUT... [--against INPUT...]\n"
                "  INPUT is --text, --text-file, --image or a FILE.npy: every row of an\n"
                "  embedding file (labels from FILE.txt)\n",
    .opts = options,
    .epilogue =
        "Two inputs give one cosine; otherwise queries x candidates (or every input against\n"
        "every input) give a matrix.\n",
    .aliases = aliases,
    .in_order = true,
};

enum kind { IN_TEXT, IN_TEXT_FILE, IN_IMAGE, IN_NPY };
enum sim_format { SIM_TSV, SIM_JSON, SIM_NPY };

struct input {
    enum kind kind;
    const char *value;
    int group;             /* 0 queries, 1 candidates */
    size_t slot, rows;     /* its rows in the group's matrix */
    float *vec;            /* a text or an image: its embedding, [dim] */
    struct jc_npy_map npy; /* IN_NPY: the file, mapped */
    char **labels;         /* IN_NPY: from the sidecar, or NULL */
};

struct state {
    struct input *in;
    size_t n_in, dim;
    size_t n[2]; /* rows in each group */
    size_t next; /* which input of a kind the next result belongs to */
    enum kind kind;
};

/* Rows first .. first + n of a group: the queries or the candidates of a report. */
struct view {
    const struct state *s;
    int g;
    size_t first, n;
};

/* The i-th input of the current kind, in command-line order. */
static struct input *nth_of_kind(struct state *s, enum kind a, enum kind b, size_t i)
{
    for (size_t k = 0; k < s->n_in; k++)
        if (s->in[k].kind == a || s->in[k].kind == b) {
            if (i == 0)
                return &s->in[k];
            i--;
        }
    return NULL;
}

static bool take_texts(void *ctx, const struct text_input *in, const float *vecs, size_t n)
{
    struct state *s = ctx;
    (void)in;
    for (size_t i = 0; i < n; i++) {
        struct input *x = nth_of_kind(s, IN_TEXT, IN_TEXT_FILE, s->next++);
        memcpy(x->vec, vecs + i * s->dim, s->dim * sizeof *vecs);
    }
    return true;
}

struct image_run {
    struct state *s;
    struct jc_model *m;
    float *vecs;
};

static bool take_images(void *ctx, const struct image_batch *b)
{
    struct image_run *r = ctx;
    for (size_t i = 0; i < b->n; i++)
        if (b->err[i]) {
            error("%s", b->err[i]);
            return false;
        }
    if (jc_embed_images(r->m, b->pixels, b->n_good, 0, r->vecs) < 0) {
        error("%s", jc_errmsg());
        return false;
    }
    for (size_t i = 0; i < b->n; i++) {
        struct input *x = nth_of_kind(r->s, IN_IMAGE, IN_IMAGE, b->start + i);
        memcpy(x->vec, r->vecs + i * r->s->dim, r->s->dim * sizeof(float));
    }
    return true;
}

/* Reads an embedding file and its sidecar of labels (FILE.txt), which must match it. */
static bool read_npy(struct input *x, size_t *cols)
{
    size_t n = strlen(x->value);
    char *side = malloc(n + 5), *buf = NULL;

    if (jc_npy_map(x->value, &x->npy) < 0) {
        error("%s", jc_errmsg());
        free(side);
        return false;
    }
    x->rows = x->npy.rows;
    *cols = x->npy.cols;
    if (!side) {
        error("out of memory");
        return false;
    }
    memcpy(side, x->value, n + 1);
    if (n > 4 && !strcasecmp(side + n - 4, ".npy"))
        side[n - 4] = '\0';
    strcat(side, ".txt");
    FILE *f = fopen(side, "r");
    if (f) {
        size_t cap = 0, got = 0;
        ssize_t len;
        bool oom = !(x->labels = calloc(x->rows ? x->rows : 1, sizeof *x->labels));
        while (!oom && (len = getline(&buf, &cap, f)) >= 0) {
            if (len && buf[len - 1] == '\n')
                buf[--len] = '\0';
            if (got < x->rows && !(x->labels[got] = strdup(buf)))
                oom = true;
            got++;
        }
        fclose(f);
        free(buf);
        if (oom) {
            error("out of memory reading '%s'", side);
            free(side);
            return false;
        }
        if (got != x->rows) {
            error("'%s' has %zu lines but '%s' has %zu rows", side, got, x->value, x->rows);
            free(side);
            return false;
        }
    }
    free(side);
    return true;
}

/* The input that row j of a view comes from, and the row within it. */
static const struct input *input_at(const struct view *v, size_t j, size_t *row)
{
    size_t slot = v->first + j;
    for (size_t k = 0; k < v->s->n_in; k++) {
        const struct input *x = &v->s->in[k];
        if (x->group == v->g && slot >= x->slot && slot < x->slot + x->rows) {
            *row = slot - x->slot;
            return x;
        }
    }
    abort(); /* every slot of a group belongs to one input */
}

/* Row j's label: the input itself, a line of the sidecar, or FILE.npy:ROW formatted in buf. */
static const char *label_at(const struct view *v, size_t j, char *buf, size_t cap)
{
    size_t row;
    const struct input *x = input_at(v, j, &row);
    if (x->kind != IN_NPY)
        return x->value;
    if (x->labels)
        return x->labels[row];
    snprintf(buf, cap, "%s:%zu", x->value, row);
    return buf;
}

#define LABEL_CAP 4200 /* a path (PATH_MAX) and a row number */

/*
 * Rows j0 .. j0 + n of a view into dst, each L2-normalised: the texts and images already
 * are; stored rows may be raw, and each is normalised as it is copied from the mapping
 * (across the threads, and the same bits whichever block it falls in).
 */
static void fill(const struct view *v, size_t j0, size_t n, float *dst)
{
    const size_t dim = v->s->dim;
    for (size_t j = j0; j < j0 + n;) {
        size_t row;
        const struct input *x = input_at(v, j, &row);
        size_t take = x->rows - row < j0 + n - j ? x->rows - row : j0 + n - j;
        float *d = dst + (j - j0) * dim;
        if (x->kind == IN_NPY)
            jc_l2_normalize_rows(d, x->npy.data + row * dim, take, dim);
        else
            memcpy(d, x->vec, dim * sizeof *d);
        j += take;
    }
}

/* A label as one TSV field: tabs and line breaks become spaces. */
static void tsv_field(const char *s)
{
    for (; *s; s++)
        putchar(*s == '\t' || *s == '\n' || *s == '\r' ? ' ' : *s);
}

/* Indices of the k largest scores, best first; ties go to the earlier candidate. */
static void top_k(const float *score, size_t n, size_t k, size_t *idx)
{
    size_t have = 0;
    for (size_t j = 0; j < n; j++) {
        /* idx[0..have) is sorted best first; insert j if it beats the last */
        if (have == k && !(score[j] > score[idx[k - 1]]))
            continue;
        size_t pos = have < k ? have++ : k - 1;
        while (pos > 0 && score[j] > score[idx[pos - 1]]) {
            idx[pos] = idx[pos - 1];
            pos--;
        }
        idx[pos] = j;
    }
}

#define QBLOCK 64   /* queries a product */
#define CBLOCK 4096 /* candidates a product: a multiple of 16, and 12 MB of 768-dim rows */

static bool report(const struct view *q, const struct view *c, enum sim_format fmt, size_t top,
                   bool single)
{
    const size_t dim = q->s->dim, cb = c->n < CBLOCK ? c->n : CBLOCK;
    float *scores = malloc(QBLOCK * (c->n ? c->n : 1) * sizeof *scores);
    float *qv = malloc(QBLOCK * dim * sizeof *qv), *cv = malloc((cb ? cb : 1) * dim * sizeof *cv);
    size_t *idx = top ? malloc(top * sizeof *idx) : NULL;
    char *lq = malloc(LABEL_CAP), *lc = malloc(LABEL_CAP);
    bool ok = scores && qv && cv && (!top || idx) && lq && lc;

    if (!ok) {
        error("out of memory for %zu scores", QBLOCK * c->n);
        goto out;
    }
    if (fmt == SIM_NPY) {
        char hdr[256];
        size_t hl = jc_npy_header(hdr, sizeof hdr, q->n, c->n, NULL, 0);
        fwrite(hdr, 1, hl, stdout);
    } else if (fmt == SIM_JSON && !single) {
        if (top) {
            putchar('[');
        } else {
            fputs("{\"rows\":[", stdout);
            for (size_t i = 0; i < q->n; i++) {
                if (i)
                    putchar(',');
                json_string(stdout, label_at(q, i, lq, LABEL_CAP));
            }
            fputs("],\"columns\":[", stdout);
            for (size_t j = 0; j < c->n; j++) {
                if (j)
                    putchar(',');
                json_string(stdout, label_at(c, j, lc, LABEL_CAP));
            }
            fputs("],\"scores\":[", stdout);
        }
    } else if (fmt == SIM_TSV && !single && !top) {
        for (size_t j = 0; j < c->n; j++) {
            putchar('\t');
            tsv_field(label_at(c, j, lc, LABEL_CAP));
        }
        putchar('\n');
    }
    if (c->n <= CBLOCK) /* the candidates fit one block: read once for every query */
        fill(c, 0, c->n, cv);
    for (size_t q0 = 0; q0 < q->n; q0 += QBLOCK) {
        size_t nq = q->n - q0 < QBLOCK ? q->n - q0 : QBLOCK;
        fill(q, q0, nq, qv);
        for (size_t c0 = 0; c0 < c->n; c0 += CBLOCK) {
            size_t nc = c->n - c0 < CBLOCK ? c->n - c0 : CBLOCK;
            if (c->n > CBLOCK)
                fill(c, c0, nc, cv);
            if (jc_dot_matrix(qv, nq, cv, nc, dim, scores + c0, c->n) < 0) {
                error("%s", jc_errmsg());
                ok = false;
                goto out;
            }
        }
        for (size_t i = 0; i < nq; i++) {
            const float *row = scores + i * c->n;
            if (single) {
                printf(fmt == SIM_JSON ? "{\"cosine\":%.9g}\n" : "%.9g\n", row[0]);
                continue;
            }
            const char *ql = label_at(q, q0 + i, lq, LABEL_CAP);
            if (fmt == SIM_NPY) {
                fwrite(row, sizeof *row, c->n, stdout);
            } else if (top) {
                size_t k = top < c->n ? top : c->n;
                top_k(row, c->n, k, idx);
                if (fmt == SIM_JSON) {
                    fputs(q0 + i ? ",{\"query\":" : "{\"query\":", stdout);
                    json_string(stdout, ql);
                    fputs(",\"top\":[", stdout);
                }
                for (size_t r = 0; r < k; r++) {
                    const char *cl = label_at(c, idx[r], lc, LABEL_CAP);
                    if (fmt == SIM_JSON) {
                        fputs(r ? ",{\"candidate\":" : "{\"candidate\":", stdout);
                        json_string(stdout, cl);
                        printf(",\"score\":%.9g}", row[idx[r]]);
                    } else {
                        tsv_field(ql);
                        putchar('\t');
                        tsv_field(cl);
                        printf("\t%.9g\n", row[idx[r]]);
                    }
                }
                if (fmt == SIM_JSON)
                    fputs("]}", stdout);
            } else if (fmt == SIM_JSON) {
                fputs(q0 + i ? ",[" : "[", stdout);
                for (size_t j = 0; j < c->n; j++)
                    printf(j ? ",%.9g" : "%.9g", row[j]);
                putchar(']');
            } else {
                tsv_field(ql);
                for (size_t j = 0; j < c->n; j++)
                    printf("\t%.9g", row[j]);
                putchar('\n');
            }
        }
    }
    if (fmt == SIM_JSON && !single)
        fputs(top ? "]\n" : "]}\n", stdout);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        error("cannot write to stdout");
        ok = false;
    }
out:
    free(scores);
    free(qv);
    free(cv);
    free(idx);
    free(lq);
    free(lc);
    return ok;
}

int cmd_similarity(int argc, char **argv)
{
    const char *usage = cmd_usage(&spec);
    struct state s = {0};
    size_t max_file_bytes = DEFAULT_MAX_FILE_BYTES;
    long max_tokens = DEFAULT_MAX_TOKENS;
    struct jc_image_opts io = {0};
    const char *model = NULL, *format = NULL, *precision = NULL;
    long top = 0, threads = 0;
    int c, group = 0, status = EXIT_FAIL;
    enum sim_format fmt = SIM_TSV;
    unsigned need = 0;
    struct jc_model *m = NULL;
    struct image_list images = {0};
    struct text_batch tb = {0};

    if (!(s.in = calloc((size_t)argc + 1, sizeof *s.in))) {
        error("out of memory");
        return EXIT_FAIL;
    }
    while ((c = cmd_getopt(argc, argv, &spec)) != -1) {
        struct input *x = &s.in[s.n_in];
        switch (c) {
        case 1: {
            size_t n = strlen(optarg);
            if (n < 4 || strcasecmp(optarg + n - 4, ".npy")) {
                status = usage_error(usage,
                                     "'%s': a bare INPUT must be a .npy file; use --text for a "
                                     "text or -i for an image",
                                     optarg);
                goto out;
            }
            *x = (struct input){.kind = IN_NPY, .value = optarg, .group = group};
            s.n_in++;
            break;
        }
        case OPT_TEXT:
        case OPT_TEXT_FILE:
        case 'i':
            *x = (struct input){.kind = c == OPT_TEXT        ? IN_TEXT
                                        : c == OPT_TEXT_FILE ? IN_TEXT_FILE
                                                             : IN_IMAGE,
                                .value = optarg,
                                .group = group,
                                .rows = 1};
            need |= c == 'i' ? JC_LOAD_VISION : JC_LOAD_TEXT;
            s.n_in++;
            break;
        case OPT_AGAINST:
            if (group) {
                status = usage_error(usage, "--against can be given once");
                goto out;
            }
            group = 1;
            break;
        case 'k':
            if (!parse_long("--top", optarg, 1, 1L << 30, &top)) {
                status = EXIT_USAGE;
                goto out;
            }
            break;
        case 'f':
            format = optarg;
            break;
        case 'm':
            model = optarg;
            break;
        case 't':
            if (!parse_long("--threads", optarg, 1, 256, &threads)) {
                status = EXIT_USAGE;
                goto out;
            }
            break;
        case OPT_PRECISION:
            precision = optarg;
            break;
        case OPT_MAX_TOKENS:
            if (!parse_long("--max-tokens", optarg, 2, 1L << 24, &max_tokens)) {
                status = EXIT_USAGE;
                goto out;
            }
            break;
        IMAGE_OPT_CASES:
            if (!image_option(c, optarg, &io)) {
                status = EXIT_USAGE;
                goto out;
            }
            break;
        case OPT_MAX_FILE_BYTES:
            if (!parse_bytes("--max-file-bytes", optarg, &max_file_bytes)) {
                status = EXIT_USAGE;
                goto out;
            }
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
    if (optind < argc) {
        status = usage_error(usage, "unexpected argument '%s'", argv[optind]);
        goto out;
    }
    if (!format || !strcmp(format, "tsv"))
        fmt = SIM_TSV;
    else if (!strcmp(format, "json"))
        fmt = SIM_JSON;
    else if (!strcmp(format, "npy"))
        fmt = SIM_NPY;
    else {
        status = usage_error(usage, "--format: '%s' is not tsv, json or npy", format);
        goto out;
    }
    if (fmt == SIM_NPY && top) {
        status = usage_error(usage, "--top prints labelled matches; it does not take --format npy");
        goto out;
    }
    if (!setup_threads(threads))
        goto out;
    if ((status = setup_precision(precision)) != EXIT_OK)
        goto out;
    status = EXIT_FAIL;

    /* Embedding files first: their widths and row counts fix the layout. */
    size_t width = 0;
    const char *width_of = NULL;
    for (size_t k = 0; k < s.n_in; k++) {
        struct input *x = &s.in[k];
        size_t cols;
        if (x->kind != IN_NPY)
            continue;
        if (!read_npy(x, &cols))
            goto out;
        if (width_of && cols != width) {
            error("'%s' has rows of %zu values but '%s' has %zu", x->value, cols, width_of, width);
            goto out;
        }
        width = cols;
        width_of = x->value;
    }
    if (need) {
        if (!(m = open_model(model, need)))
            goto out;
        s.dim = (size_t)jc_model_dim(m);
        if (width_of && width != s.dim) {
            error("'%s' has rows of %zu values but the model's embeddings have %zu", width_of,
                  width, s.dim);
            goto out;
        }
    } else {
        s.dim = width;
    }
    for (size_t k = 0; k < s.n_in; k++) {
        struct input *x = &s.in[k];
        x->slot = s.n[x->group];
        s.n[x->group] += x->rows;
    }
    size_t total = s.n[0] + s.n[1];
    if (total == 0 || (group && (!s.n[0] || !s.n[1]))) {
        status = usage_error(
            usage, "%s", group ? "both sides of --against need an input" : "no input to compare");
        goto out;
    }
    for (size_t k = 0; k < s.n_in; k++) {
        struct input *x = &s.in[k];
        if (x->kind != IN_NPY && !(x->vec = malloc(s.dim * sizeof *x->vec))) {
            error("out of memory");
            goto out;
        }
    }

    /* Texts, then images, each in command-line order. */
    if (need & JC_LOAD_TEXT) {
        if (!text_batch_init(&tb, m, 32, (size_t)max_tokens, 0, take_texts, &s))
            goto out;
        bool ok = true;
        for (size_t k = 0; ok && k < s.n_in; k++) {
            struct text_input in = {0};
            if (s.in[k].kind == IN_TEXT) {
                snprintf(in.name, sizeof in.name, "text '%.200s'", s.in[k].value);
                ok = text_input_set(&in, s.in[k].value, strlen(s.in[k].value)) &&
                     text_batch_add(&tb, &in);
            } else if (s.in[k].kind == IN_TEXT_FILE) {
                ok =
                    text_input_file(&in, s.in[k].value, max_file_bytes) && text_batch_add(&tb, &in);
            }
        }
        if (!ok || !text_batch_flush(&tb))
            goto out;
    }
    if (need & JC_LOAD_VISION) {
        struct image_run r = {&s, m, malloc(16 * s.dim * sizeof(float))};
        bool ok = r.vecs != NULL;
        for (size_t k = 0; ok && k < s.n_in; k++)
            if (s.in[k].kind == IN_IMAGE)
                ok = image_list_add(&images, s.in[k].value, false);
        ok = ok && images_run(&images, m, 16, &io, take_images, &r);
        free(r.vecs);
        if (!ok)
            goto out;
    }

    /* the scores are GEMMs even when no model was opened: fail before any output */
    if (jc_blas_reserve() < 0) {
        error("%s", jc_errmsg());
        goto out;
    }
    /* Every vector is normalised, so scores are cosines (stored rows as they are read). */
    for (size_t k = 0; k < s.n_in; k++)
        if (s.in[k].kind != IN_NPY)
            jc_l2_normalize(s.in[k].vec, s.dim);
    bool single = !group && total == 2 && fmt != SIM_NPY;
    if (single) {
        struct view a = {&s, 0, 0, 1}, b = {&s, 0, 1, 1};
        status = report(&a, &b, fmt, 0, true) ? EXIT_OK : EXIT_FAIL;
    } else {
        struct view q = {&s, 0, 0, s.n[0]}, c = {&s, group, 0, s.n[group]};
        status = report(&q, &c, fmt, (size_t)top, false) ? EXIT_OK : EXIT_FAIL;
    }

out:
    text_batch_release(&tb);
    image_list_release(&images);
    for (size_t k = 0; k < s.n_in; k++) {
        jc_npy_unmap(&s.in[k].npy);
        for (size_t r = 0; s.in[k].labels && r < s.in[k].rows; r++)
            free(s.in[k].labels[r]);
        free(s.in[k].labels);
        free(s.in[k].vec);
    }

    free(s.in);
    jc_model_free(m);
    return status;
}
