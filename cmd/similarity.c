/*
 * jclip similarity: cosines between texts, images and stored embeddings, as one number, a
 * matrix, or the best matches of each query. Scores come from one matrix product per block
 * of queries, so searching a large .npy is a GEMM, not a loop of dot products.
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
    struct jc_npy_map npy; /* IN_NPY: the file, mapped */
    char **labels;         /* IN_NPY: from the sidecar, or NULL */
};

struct group {
    float *v;      /* [n, dim] */
    char **labels; /* [n], owned */
    size_t n;
};

struct state {
    struct input *in;
    size_t n_in, dim;
    struct group g[2];
    size_t next; /* which input of a kind the next result belongs to */
    enum kind kind;
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
        memcpy(s->g[x->group].v + x->slot * s->dim, vecs + i * s->dim, s->dim * sizeof *vecs);
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
        memcpy(r->s->g[x->group].v + x->slot * r->s->dim, r->vecs + i * r->s->dim,
               r->s->dim * sizeof(float));
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

static char *label_of(const struct input *x, size_t row)
{
    char *l;
    if (x->kind == IN_NPY) {
        if (x->labels && x->labels[row])
            return strdup(x->labels[row]);
        size_t n = strlen(x->value) + 24;
        if ((l = malloc(n)))
            snprintf(l, n, "%s:%zu", x->value, row);
        return l;
    }
    return strdup(x->value);
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

#define QBLOCK 64

static bool report(const struct state *s, const struct group *q, const struct group *c,
                   enum sim_format fmt, size_t top, bool single)
{
    float *scores = malloc(QBLOCK * (c->n ? c->n : 1) * sizeof *scores);
    size_t *idx = top ? malloc(top * sizeof *idx) : NULL;
    bool ok = scores && (!top || idx);

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
                json_string(stdout, q->labels[i]);
            }
            fputs("],\"columns\":[", stdout);
            for (size_t j = 0; j < c->n; j++) {
                if (j)
                    putchar(',');
                json_string(stdout, c->labels[j]);
            }
            fputs("],\"scores\":[", stdout);
        }
    } else if (fmt == SIM_TSV && !single && !top) {
        for (size_t j = 0; j < c->n; j++) {
            putchar('\t');
            tsv_field(c->labels[j]);
        }
        putchar('\n');
    }
    for (size_t q0 = 0; q0 < q->n; q0 += QBLOCK) {
        size_t nq = q->n - q0 < QBLOCK ? q->n - q0 : QBLOCK;
        if (jc_dot_matrix(q->v + q0 * s->dim, nq, c->v, c->n, s->dim, scores) < 0) {
            error("%s", jc_errmsg());
            ok = false;
            goto out;
        }
        for (size_t i = 0; i < nq; i++) {
            const float *row = scores + i * c->n;
            const char *ql = q->labels[q0 + i];
            if (single) {
                printf(fmt == SIM_JSON ? "{\"cosine\":%.9g}\n" : "%.9g\n", row[0]);
            } else if (fmt == SIM_NPY) {
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
                    if (fmt == SIM_JSON) {
                        fputs(r ? ",{\"candidate\":" : "{\"candidate\":", stdout);
                        json_string(stdout, c->labels[idx[r]]);
                        printf(",\"score\":%.9g}", row[idx[r]]);
                    } else {
                        tsv_field(ql);
                        putchar('\t');
                        tsv_field(c->labels[idx[r]]);
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
    free(idx);
    return ok;
}

int cmd_similarity(int argc, char **argv)
{
    const char *usage = cmd_usage(&spec);
    struct state s = {0};
    size_t max_file_bytes = DEFAULT_MAX_FILE_BYTES;
    long max_tokens = DEFAULT_MAX_TOKENS;
    struct jc_image_opts io = {0};
    const char *model = NULL, *format = NULL;
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
        x->slot = s.g[x->group].n;
        s.g[x->group].n += x->rows;
    }
    size_t total = s.g[0].n + s.g[1].n;
    if (total == 0 || (group && (!s.g[0].n || !s.g[1].n))) {
        status = usage_error(
            usage, "%s", group ? "both sides of --against need an input" : "no input to compare");
        goto out;
    }
    for (int g = 0; g < 2; g++) {
        s.g[g].v = malloc((s.g[g].n ? s.g[g].n : 1) * s.dim * sizeof(float));
        s.g[g].labels = calloc(s.g[g].n ? s.g[g].n : 1, sizeof(char *));
        if (!s.g[g].v || !s.g[g].labels) {
            error("out of memory for %zu embeddings", s.g[g].n);
            goto out;
        }
    }
    for (size_t k = 0; k < s.n_in; k++) {
        struct input *x = &s.in[k];
        for (size_t r = 0; r < x->rows; r++)
            if (!(s.g[x->group].labels[x->slot + r] = label_of(x, r))) {
                error("out of memory");
                goto out;
            }
        if (x->kind == IN_NPY) {
            /* Stored rows may be raw: each is normalised as it is copied from the mapping,
               while it is in cache, so a large file is read once and written once */
            float *v = s.g[x->group].v + x->slot * s.dim;
            for (size_t r = 0; r < x->rows; r++) {
                memcpy(v + r * s.dim, x->npy.data + r * s.dim, s.dim * sizeof(float));
                jc_l2_normalize(v + r * s.dim, s.dim);
            }
            jc_npy_unmap(&x->npy);
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
    /* Every vector is normalised, so scores are cosines (the stored rows already are). */
    for (size_t k = 0; k < s.n_in; k++)
        for (size_t r = 0; s.in[k].kind != IN_NPY && r < s.in[k].rows; r++)
            jc_l2_normalize(s.g[s.in[k].group].v + (s.in[k].slot + r) * s.dim, s.dim);
    bool single = !group && total == 2 && fmt != SIM_NPY;
    if (single) {
        struct group a = {s.g[0].v, s.g[0].labels, 1};
        struct group b = {s.g[0].v + s.dim, s.g[0].labels + 1, 1};
        status = report(&s, &a, &b, fmt, 0, true) ? EXIT_OK : EXIT_FAIL;
    } else {
        status = report(&s, &s.g[0], group ? &s.g[1] : &s.g[0], fmt, (size_t)top, false)
                     ? EXIT_OK
                     : EXIT_FAIL;
    }

out:
    text_batch_release(&tb);
    image_list_release(&images);
    for (size_t k = 0; k < s.n_in; k++) {
        jc_npy_unmap(&s.in[k].npy);
        for (size_t r = 0; s.in[k].labels && r < s.in[k].rows; r++)
            free(s.in[k].labels[r]);
        free(s.in[k].labels);
    }
    for (int g = 0; g < 2; g++) {
        for (size_t i = 0; s.g[g].labels && i < s.g[g].n; i++)
            free(s.g[g].labels[i]);
        free(s.g[g].labels);
        free(s.g[g].v);
    }
    free(s.in);
    jc_model_free(m);
    return status;
}
