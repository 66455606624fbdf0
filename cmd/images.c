/*
 * Image inputs shared by the commands that read images: the list of paths (arguments,
 * directory walks, stdin) and the pipeline that decodes and preprocesses the next batch on a
 * second thread while the caller runs the current one through the tower.
 */
#include "cmd.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

static bool add_path(struct image_list *p, const char *path, const char *why)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 256;
        char **v = realloc(p->v, cap * sizeof *v), **w;
        if (v)
            p->v = v;
        w = v ? realloc(p->why, cap * sizeof *w) : NULL;
        if (!v || !w) {
            error("out of memory listing images");
            return false;
        }
        p->why = w;
        p->cap = cap;
    }
    p->v[p->n] = strdup(path);
    p->why[p->n] = why ? strdup(why) : NULL;
    if (!p->v[p->n] || (why && !p->why[p->n])) {
        error("out of memory listing images");
        return false;
    }
    p->n++;
    return true;
}

static bool image_name(const char *name)
{
    static const char *const ext[] = {".jpg",  ".jpeg", ".png",  ".bmp", ".gif", ".tga",
                                      ".pnm",  ".ppm",  ".pgm",  ".pbm", ".jpe", ".jfif",
                                      ".webp", ".heic", ".heif", ".hif", ".avif"};
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot && i < sizeof ext / sizeof *ext; i++)
        if (!strcasecmp(dot, ext[i]))
            return true;
    return false;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Image files below dir, sorted by name at each level; symlinked directories are not followed. */
static bool walk(struct image_list *p, const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char **names = NULL, msg[512];
    size_t n = 0, cap = 0;
    bool ok = true;

    if (!d) {
        snprintf(msg, sizeof msg, "cannot open directory '%s': %s", dir, strerror(errno));
        return add_path(p, dir, msg);
    }
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **v = realloc(names, cap * sizeof *v);
            if (!v) {
                ok = false;
                break;
            }
            names = v;
        }
        size_t len = strlen(dir) + strlen(e->d_name) + 2;
        if (!(names[n] = malloc(len))) {
            ok = false;
            break;
        }
        snprintf(names[n], len, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", e->d_name);
        n++;
    }
    closedir(d);
    if (!ok)
        error("out of memory listing '%s'", dir);
    qsort(names, n, sizeof *names, by_name);
    for (size_t i = 0; ok && i < n; i++) {
        struct stat st;
        if (lstat(names[i], &st) == 0 && S_ISDIR(st.st_mode))
            ok = walk(p, names[i]);
        else if (image_name(names[i]))
            ok = add_path(p, names[i], NULL);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return ok;
}

bool image_list_add(struct image_list *p, const char *path, bool recursive)
{
    struct stat st;
    char msg[512];
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        if (recursive)
            return walk(p, path);
        snprintf(msg, sizeof msg, "'%s' is a directory (use -r to embed the images in it)", path);
        return add_path(p, path, msg);
    }
    return add_path(p, path, NULL);
}

bool image_list_read_stdin(struct image_list *p, bool recursive)
{
    struct line_reader r;
    const char *line;
    size_t len;
    int rc;
    bool ok = true;

    line_reader_init(&r, STDIN_FILENO, 1 << 20);
    while (ok && (rc = line_reader_next(&r, true, &line, &len)) != LINE_EOF) {
        if (rc == LINE_TOO_LONG || rc == LINE_ERROR) {
            error("stdin line %zu: %s", r.lineno,
                  rc == LINE_TOO_LONG ? "path longer than 1 MiB" : strerror(errno));
            ok = false;
            break;
        }
        if (len && line[len - 1] == '\r')
            len--;
        if (!len)
            continue; /* blank lines separate nothing */
        char *path = strndup(line, len);
        if (!path) {
            error("out of memory");
            ok = false;
            break;
        }
        if (strlen(path) != len) {
            char msg[128];
            snprintf(msg, sizeof msg, "stdin line %zu: a path with a NUL byte", r.lineno);
            ok = add_path(p, path, msg);
        } else {
            ok = image_list_add(p, path, recursive);
        }
        free(path);
    }
    line_reader_release(&r);
    return ok;
}

bool image_list_from_args(struct image_list *l, char *const *args, int n, bool recursive)
{
    bool ok = true;
    if (n == 0)
        return image_list_read_stdin(l, recursive);
    for (int i = 0; ok && i < n; i++)
        ok = !strcmp(args[i], "-") ? image_list_read_stdin(l, recursive)
                                   : image_list_add(l, args[i], recursive);
    return ok;
}

void image_list_release(struct image_list *p)
{
    for (size_t i = 0; i < p->n; i++) {
        free(p->v[i]);
        free(p->why[i]);
    }
    free(p->v);
    free(p->why);
    memset(p, 0, sizeof *p);
}

/* ---- the decoder thread -------------------------------------------------------------- */

/*
 * A batch in the making. The decoder thread opens it and decodes its images one at a time;
 * the main thread, when it is waiting for this very batch (the first one, or when decoding
 * falls behind), takes images of it too, so the start of a run decodes on two cores. Each
 * image goes to its own place; whoever finishes the last one packs the good ones in order.
 */
struct slot {
    struct image_batch b;
    float *pixels;
    char **err;
    bool *good;
    size_t next, done; /* images taken, images finished */
    bool open, ready;
};

struct pipeline {
    const struct image_list *list;
    size_t batch;
    struct jc_image_opts opts;
    int size;
    float mean[3], std[3];
    struct slot slot[2];
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool stop;
};

/*
 * A NULL reason means a good image, so a reason that cannot be copied must still be one:
 * this one is not freed.
 */
static char no_memory[] = "out of memory";

static char *reason(const char *msg)
{
    char *r = strdup(msg);
    return r ? r : no_memory;
}

static void reason_free(char *r)
{
    if (r != no_memory)
        free(r);
}

static void decode_one(struct pipeline *pl, struct slot *s, size_t i)
{
    const size_t per = 3 * (size_t)pl->size * pl->size;
    const char *path = pl->list->v[s->b.start + i], *warn;

    s->err[i] = NULL;
    s->good[i] = false;
    if (pl->list->why[s->b.start + i]) {
        s->err[i] = reason(pl->list->why[s->b.start + i]);
        return;
    }
    if (jc_image_load_pixels(path, &pl->opts, pl->size, pl->mean, pl->std, s->pixels + i * per,
                             &warn) < 0) {
        s->err[i] = reason(jc_errmsg());
        return;
    }
    if (warn)
        warning("'%s': %s", path, warn);
    s->good[i] = true;
}

/* Packs the good images of a finished batch to the front, in order. */
static void pack(struct pipeline *pl, struct slot *s)
{
    const size_t per = 3 * (size_t)pl->size * pl->size;
    s->b.n_good = 0;
    for (size_t i = 0; i < s->b.n; i++)
        if (s->good[i]) {
            if (s->b.n_good != i)
                memmove(s->pixels + s->b.n_good * per, s->pixels + i * per, per * sizeof(float));
            s->b.n_good++;
        }
}

/*
 * Decodes images of the open batch in s until none is left to take; called and returns
 * with pl->lock held. The thread that finishes the last image packs the batch.
 */
static void help(struct pipeline *pl, struct slot *s)
{
    while (s->open && s->next < s->b.n) {
        size_t i = s->next++;
        pthread_mutex_unlock(&pl->lock);
        decode_one(pl, s, i);
        pthread_mutex_lock(&pl->lock);
        if (++s->done == s->b.n) {
            s->open = false;
            pthread_mutex_unlock(&pl->lock);
            pack(pl, s);
            pthread_mutex_lock(&pl->lock);
            s->ready = true;
            pthread_cond_broadcast(&pl->cond);
        }
    }
}

/* Opens the batch starting at start in s; called with pl->lock held. */
static void open_batch(struct pipeline *pl, struct slot *s, size_t start)
{
    size_t total = pl->list->n;
    s->b.start = start;
    s->b.n = total - start < pl->batch ? total - start : pl->batch;
    s->next = s->done = 0;
    s->open = true;
    pthread_cond_broadcast(&pl->cond); /* the main thread may be waiting to help */
}

static void *decoder(void *arg)
{
    struct pipeline *pl = arg;
    size_t total = pl->list->n;
    pthread_mutex_lock(&pl->lock);
    for (size_t k = 0, start = 0; start < total; k++, start += pl->batch) {
        struct slot *s = &pl->slot[k % 2];
        while ((s->ready || s->open) && !pl->stop)
            pthread_cond_wait(&pl->cond, &pl->lock);
        if (pl->stop)
            break;
        open_batch(pl, s, start);
        help(pl, s);
    }
    pthread_mutex_unlock(&pl->lock);
    return NULL;
}

bool images_run(const struct image_list *list, const struct jc_model *m, size_t batch,
                const struct jc_image_opts *opts, image_batch_fn fn, void *ctx)
{
    struct pipeline pl = {.list = list,
                          .batch = batch,
                          .opts = *opts,
                          .lock = PTHREAD_MUTEX_INITIALIZER,
                          .cond = PTHREAD_COND_INITIALIZER};
    pthread_t thread;
    bool ok = false;

    jc_model_preprocess(m, &pl.size, pl.mean, pl.std);
    if (pl.opts.draft < 0)
        pl.opts.draft = 2 * pl.size;
    size_t per = 3 * (size_t)pl.size * pl.size;
    for (int i = 0; i < 2; i++) {
        pl.slot[i].pixels = malloc(batch * per * sizeof(float));
        pl.slot[i].err = calloc(batch, sizeof(char *));
        pl.slot[i].good = calloc(batch, sizeof(bool));
        pl.slot[i].b.pixels = pl.slot[i].pixels;
        pl.slot[i].b.err = (const char *const *)pl.slot[i].err;
        if (!pl.slot[i].pixels || !pl.slot[i].err || !pl.slot[i].good) {
            error("out of memory for a batch of %zu images", batch);
            goto out_free;
        }
    }
    /* without a thread (none can be made under a tight memory limit) the main one decodes */
    bool threaded = pthread_create(&thread, NULL, decoder, &pl) == 0;
    ok = true;
    for (size_t k = 0, start = 0; ok && start < list->n; k++, start += batch) {
        struct slot *s = &pl.slot[k % 2];
        pthread_mutex_lock(&pl.lock);
        if (!threaded)
            open_batch(&pl, s, start);
        while (!s->ready) {
            if (s->open && s->b.start == start)
                help(&pl, s);
            if (!s->ready)
                pthread_cond_wait(&pl.cond, &pl.lock);
        }
        pthread_mutex_unlock(&pl.lock);
        ok = fn(ctx, &s->b);
        for (size_t i = 0; i < s->b.n; i++) {
            reason_free(s->err[i]);
            s->err[i] = NULL;
        }
        pthread_mutex_lock(&pl.lock);
        s->ready = false;
        pl.stop = !ok;
        pthread_cond_broadcast(&pl.cond);
        pthread_mutex_unlock(&pl.lock);
    }
    pthread_mutex_lock(&pl.lock);
    pl.stop = true;
    pthread_cond_broadcast(&pl.cond);
    pthread_mutex_unlock(&pl.lock);
    if (threaded)
        pthread_join(thread, NULL);
out_free:
    for (int i = 0; i < 2; i++) {
        for (size_t j = 0; pl.slot[i].err && j < batch; j++)
            reason_free(pl.slot[i].err[j]);
        free(pl.slot[i].pixels);
        free(pl.slot[i].err);
        free(pl.slot[i].good);
    }
    return ok;
}
