/*
 * The record mode (--jsonl) of embed-text, embed-image and classify: a JSON object per stdin
 * line in, one per line out, in input order, each carrying its id back.
 *
 * Records wait in a queue until their batch has run. A bad record is answered at once when
 * nothing waits before it, else it is queued behind the good ones so the order holds. Texts
 * go through the text batcher; images are decoded and preprocessed as they arrive, on this
 * thread, so a batch is ready to run the moment it is full or stdin goes idle.
 */
#include "cmd.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Bad records held behind a pending batch before it is run early, to bound the queue. */
#define MAX_QUEUED 4096

static const char *const encoding_names[] = {"float", "base64", "binary", "ubinary"};

bool encoding_from_name(const char *name, enum encoding *out)
{
    for (size_t i = 0; i < sizeof encoding_names / sizeof *encoding_names; i++)
        if (!strcmp(name, encoding_names[i])) {
            *out = (enum encoding)i;
            return true;
        }
    return false;
}

const char *encoding_name(enum encoding enc)
{
    return encoding_names[enc];
}

bool parse_encoding(const char *arg, enum encoding *out)
{
    if (encoding_from_name(arg, out))
        return true;
    error("--encoding: '%s' is not float, base64, binary or ubinary", arg);
    return false;
}

/* The float32 bytes little-endian whatever the host, as the base64 encoding defines them. */
static void put_le(uint8_t *b, float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    b[0] = (uint8_t)u;
    b[1] = (uint8_t)(u >> 8);
    b[2] = (uint8_t)(u >> 16);
    b[3] = (uint8_t)(u >> 24);
}

void print_embedding(FILE *f, const float *v, size_t n, enum encoding enc)
{
    switch (enc) {
    case ENC_FLOAT:
        print_vector(f, v, n, true);
        return;
    case ENC_BASE64: {
        /* Three floats are 12 bytes, a whole number of base64 quanta: the chunks concatenate
         * to the encoding of the whole vector, and only the last one can carry padding. */
        uint8_t b[12];
        char s[JC_BASE64_LEN(sizeof b) + 1];
        putc('"', f);
        for (size_t i = 0; i < n; i += 3) {
            size_t k = n - i < 3 ? n - i : 3;
            for (size_t j = 0; j < k; j++)
                put_le(b + 4 * j, v[i + j]);
            jc_base64_encode(b, 4 * k, s);
            fputs(s, f);
        }
        putc('"', f);
        return;
    }
    case ENC_BINARY:
    case ENC_UBINARY:
        putc('[', f);
        for (size_t i = 0; i < n; i += 8) {
            unsigned byte = 0;
            for (size_t j = 0; j < 8; j++)
                byte |= (unsigned)(i + j < n && v[i + j] > 0) << (7 - j);
            if (enc == ENC_UBINARY)
                fprintf(f, i ? ",%u" : "%u", byte);
            else
                fprintf(f, i ? ",%d" : "%d", (int)byte - 128);
        }
        putc(']', f);
        return;
    }
}

/* ---- the queue ----------------------------------------------------------------------------- */

struct entry {
    char *id;    /* compact JSON, NULL for null */
    char *error; /* NULL for a good record */
};

struct run {
    const struct record_opts *o;
    struct jc_model *m;
    size_t dim;
    struct entry *q;
    size_t nq, cap, n_good; /* queued records, and how many of them are good */
    struct text_batch tb;
    /* images */
    int size;
    float mean[3], std[3];
    float *pixels; /* [batch, 3, size, size]: the good queued images */
    float *vecs;   /* [batch, dim] */
    /* progress */
    size_t done;
    double t0;
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void progress(struct run *r, bool final)
{
    double dt = now() - r->t0;
    fprintf(stderr, "\r%zu records, %.1f records/s%s", r->done, dt > 0 ? r->done / dt : 0.0,
            final ? "\n" : "");
    fflush(stderr);
}

static void write_error(const char *id, const char *msg)
{
    fputs("{\"id\":", stdout);
    fputs(id ? id : "null", stdout);
    fputs(",\"error\":", stdout);
    json_string(stdout, msg);
    fputs("}\n", stdout);
}

static bool flush_stdout(struct run *r)
{
    if (r->o->progress)
        progress(r, false);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        error("cannot write to stdout: %s", strerror(errno));
        return false;
    }
    return true;
}

/* Writes the queue, the good records with vecs[0..n) in order; empties it. */
static bool emit(struct run *r, const float *vecs, size_t n)
{
    const struct record_opts *o = r->o;
    size_t k = 0;

    if (n && o->prepare && !o->prepare(o->ctx, vecs, n))
        return false;
    for (size_t i = 0; i < r->nq; i++) {
        struct entry *e = &r->q[i];
        if (e->error) {
            write_error(e->id, e->error);
        } else if (k < n) {
            fputs("{\"id\":", stdout);
            fputs(e->id ? e->id : "null", stdout);
            if (o->write) {
                o->write(o->ctx, stdout, vecs + k * r->dim, k);
            } else {
                fputs(",\"embedding\":", stdout);
                print_embedding(stdout, vecs + k * r->dim, r->dim, o->encoding);
            }
            fputs("}\n", stdout);
            k++;
        }
        free(e->id);
        free(e->error);
    }
    r->done += r->nq;
    r->nq = 0;
    r->n_good = 0;
    return flush_stdout(r);
}

static bool push(struct run *r, char *id, char *err)
{
    if (r->nq == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 64;
        struct entry *q = realloc(r->q, cap * sizeof *q);
        if (!q) {
            error("out of memory queueing records");
            free(id);
            free(err);
            return false;
        }
        r->q = q;
        r->cap = cap;
    }
    r->q[r->nq++] = (struct entry){id, err};
    r->n_good += err == NULL;
    return true;
}

/* Runs the pending batch, if any, and writes what waits. */
static bool run_batch(struct run *r)
{
    if (!r->n_good)
        return r->nq ? emit(r, NULL, 0) : true;
    if (r->o->kind == JC_RECORD_TEXT)
        return text_batch_flush(&r->tb); /* its done() is text_done() */
    if (jc_embed_images(r->m, r->pixels, r->n_good, r->o->flags, r->vecs) < 0) {
        error("%s", jc_errmsg());
        return false;
    }
    return emit(r, r->vecs, r->n_good);
}

static bool text_done(void *ctx, const struct text_input *in, const float *vecs, size_t n)
{
    (void)in;
    return emit(ctx, vecs, n);
}

/* A bad record: takes id; answered now when nothing waits before it. */
static bool bad_record(struct run *r, size_t lineno, char *id, const char *msg)
{
    char *err;

    warning("stdin line %zu: %s", lineno, msg);
    if (!r->n_good) {
        write_error(id, msg);
        free(id);
        r->done++;
        return flush_stdout(r);
    }
    if (!(err = strdup(msg))) {
        error("out of memory");
        free(id);
        return false;
    }
    return push(r, id, err) && (r->nq < MAX_QUEUED || run_batch(r));
}

static bool take_text(struct run *r, size_t lineno, struct jc_record *rec)
{
    struct text_input in = {.text = rec->text, .len = rec->text_len};

    char *id = rec->id;

    snprintf(in.name, sizeof in.name, "stdin line %zu", lineno);
    rec->text = NULL;
    rec->id = NULL;
    if (!push(r, id, NULL)) {
        free(in.text);
        return false;
    }
    return text_batch_add(&r->tb, &in); /* runs the batch when it is full */
}

static bool take_image(struct run *r, size_t lineno, struct jc_record *rec)
{
    size_t per = 3 * (size_t)r->size * r->size;
    float *out = r->pixels + r->n_good * per;
    const char *warn;
    int rc;

    struct jc_image_opts io = r->o->image;
    if (io.draft < 0 || (rec->draft && !io.draft))
        io.draft = 2 * r->size;
    if (rec->data)
        rc = jc_image_decode_pixels(rec->data, rec->data_len, rec->image, &io, r->size, r->mean,
                                    r->std, out, &warn);
    else
        rc = jc_image_load_pixels(rec->image, &io, r->size, r->mean, r->std, out, &warn);
    if (rc == 0 && warn)
        warning("line %zu: '%s': %s", lineno, rec->image, warn);
    char *id = rec->id;
    rec->id = NULL;
    if (rc < 0)
        return bad_record(r, lineno, id, jc_errmsg());
    return push(r, id, NULL) && (r->n_good < r->o->batch || run_batch(r));
}

static bool take_line(struct run *r, const char *line, size_t len, size_t lineno)
{
    struct jc_record rec;
    char *fixed;
    size_t flen;
    long bad = jc_utf8_repair(line, len, &fixed, &flen);
    bool ok;
    int rc;

    if (bad < 0) {
        error("%s", jc_errmsg());
        return false;
    }
    if (bad > 0) {
        warning("stdin line %zu: invalid UTF-8 (%ld sequence%s) replaced by U+FFFD", lineno, bad,
                bad == 1 ? "" : "s");
        line = fixed;
        len = flen;
    }
    rc = jc_record_parse(line, len, &rec);
    free(bad > 0 ? fixed : NULL);
    if (rc == JC_ENOMEM) {
        error("%s", jc_errmsg());
        ok = false;
    } else if (rc < 0) {
        ok = bad_record(r, lineno, rec.id, jc_errmsg());
        rec.id = NULL;
    } else if (rec.kind != r->o->kind) {
        char msg[200];
        snprintf(msg, sizeof msg, "%s record: %s",
                 rec.kind == JC_RECORD_TEXT ? "a \"text\"" : "an \"image\"", r->o->other);
        ok = bad_record(r, lineno, rec.id, msg);
        rec.id = NULL;
    } else if (rec.kind == JC_RECORD_TEXT) {
        ok = take_text(r, lineno, &rec);
    } else {
        ok = take_image(r, lineno, &rec);
    }
    jc_record_release(&rec);
    return ok;
}

bool records_run(struct jc_model *m, const struct record_opts *o)
{
    struct run r = {.o = o, .m = m, .dim = (size_t)jc_model_dim(m), .t0 = now()};
    struct line_reader lr;
    const char *line;
    size_t len;
    bool ok = true;

    if (o->kind == JC_RECORD_TEXT) {
        if (!text_batch_init(&r.tb, m, o->batch, o->max_tokens, o->flags, text_done, &r))
            return false;
    } else {
        jc_model_preprocess(m, &r.size, r.mean, r.std);
        r.pixels = malloc(o->batch * 3 * (size_t)r.size * r.size * sizeof *r.pixels);
        r.vecs = malloc(o->batch * r.dim * sizeof *r.vecs);
        if (!r.pixels || !r.vecs) {
            error("out of memory for a batch of %zu images", o->batch);
            ok = false;
            goto out;
        }
    }
    line_reader_init(&lr, STDIN_FILENO, o->max_line_bytes);
    for (;;) {
        int rc = line_reader_next(&lr, r.n_good == 0, &line, &len);
        if (rc == LINE_WAIT) {
            if (!(ok = run_batch(&r)))
                break;
            continue;
        }
        if (rc == LINE_EOF)
            break;
        /* what waits goes out before the rest of an overlong line is read */
        if (rc == LINE_TOO_LONG && !(ok = run_batch(&r)))
            break;
        if (rc == LINE_ERROR || (rc == LINE_TOO_LONG && !line_reader_skip(&lr))) {
            error("cannot read stdin: %s", strerror(errno));
            ok = false;
            break;
        }
        if (rc == LINE_TOO_LONG) {
            char msg[80];
            snprintf(msg, sizeof msg, "a line longer than the limit of %zu bytes", lr.max_bytes);
            ok = bad_record(&r, lr.lineno, NULL, msg);
        } else {
            ok = take_line(&r, line, len, lr.lineno);
        }
        if (!ok)
            break;
    }
    ok = ok && run_batch(&r);
    if (o->progress)
        progress(&r, true);
    line_reader_release(&lr);
out:
    for (size_t i = 0; i < r.nq; i++) {
        free(r.q[i].id);
        free(r.q[i].error);
    }
    free(r.q);
    if (o->kind == JC_RECORD_TEXT)
        text_batch_release(&r.tb);
    free(r.pixels);
    free(r.vecs);
    return ok;
}
