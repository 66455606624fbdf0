/*
 * jclip serve: the Jina Embeddings API, and OpenAI's dialect of it, over local HTTP.
 *
 * libmicrohttpd's polling threads read requests. A handler parses the JSON, tokenizes the
 * texts and base64-decodes the images, queues one job per input and suspends its connection.
 * Images then go to a few preparer threads, which fetch those given by URL (libcurl, under
 * the size cap and timeout of --max-image-bytes and --fetch-timeout) and decode and
 * preprocess each to the model's pixels, as the CLI's decoder thread does, while the model
 * runs. One worker thread owns the model (the library allows one thread per model): it
 * gathers jobs of one kind from every waiting request into a batch, runs the tower, and
 * resumes a request's connection once its last job is done; the handler then writes the
 * response. So concurrent requests share batches, and a vector is the same as the CLI's
 * because the library makes a vector independent of its batch.
 */
#include "cmd.h"

#include <cjson/cJSON.h>
#include <dlfcn.h>
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <microhttpd.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/*
 * libmicrohttpd is loaded by this command alone, not linked: with GnuTLS and the libraries
 * under it, it took about 3 ms of every process start, whatever the command, measured on a
 * 2-core AMD EPYC.
 */
#define LIBMHD_SONAME "libmicrohttpd.so.12"

static struct {
    __typeof__(MHD_create_response_from_buffer) *create_response_from_buffer;
    __typeof__(MHD_add_response_header) *add_response_header;
    __typeof__(MHD_queue_response) *queue_response;
    __typeof__(MHD_destroy_response) *destroy_response;
    __typeof__(MHD_resume_connection) *resume_connection;
    __typeof__(MHD_suspend_connection) *suspend_connection;
    __typeof__(MHD_lookup_connection_value) *lookup_connection_value;
    __typeof__(MHD_start_daemon) *start_daemon;
    __typeof__(MHD_get_daemon_info) *get_daemon_info;
    __typeof__(MHD_quiesce_daemon) *quiesce_daemon;
    __typeof__(MHD_stop_daemon) *stop_daemon;
} mhd;

/* False (reported) when the library or one of its functions is missing. */
static bool mhd_load(void)
{
    static const struct {
        const char *name;
        void **fn;
    } syms[] = {
        {"MHD_create_response_from_buffer", (void **)&mhd.create_response_from_buffer},
        {"MHD_add_response_header", (void **)&mhd.add_response_header},
        {"MHD_queue_response", (void **)&mhd.queue_response},
        {"MHD_destroy_response", (void **)&mhd.destroy_response},
        {"MHD_resume_connection", (void **)&mhd.resume_connection},
        {"MHD_suspend_connection", (void **)&mhd.suspend_connection},
        {"MHD_lookup_connection_value", (void **)&mhd.lookup_connection_value},
        {"MHD_start_daemon", (void **)&mhd.start_daemon},
        {"MHD_get_daemon_info", (void **)&mhd.get_daemon_info},
        {"MHD_quiesce_daemon", (void **)&mhd.quiesce_daemon},
        {"MHD_stop_daemon", (void **)&mhd.stop_daemon},
    };
    void *h = dlopen(LIBMHD_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        error("cannot load libmicrohttpd, which serve needs: %s", dlerror());
        return false;
    }
    for (size_t i = 0; i < sizeof syms / sizeof *syms; i++)
        if (!(*syms[i].fn = dlsym(h, syms[i].name))) {
            error("cannot load libmicrohttpd, which serve needs: %s has no %s", LIBMHD_SONAME,
                  syms[i].name);
            return false;
        }
    return true;
}

static const struct cmd_opt options[] = {
    {OPT_MODEL, NULL},
    {OPT_HOST, NULL},
    {OPT_PORT, NULL},
    {OPT_MAX_BATCH, NULL},
    {OPT_MAX_BODY_BYTES, NULL},
    {OPT_API_KEY, NULL},
    {OPT_IDLE_TIMEOUT, NULL},
    IMAGE_OPTS,
    {OPT_THREADS, NULL},
    /* the arithmetic of the model served, for every request */
    {OPT_PRECISION, NULL},
    {OPT_HELP, NULL},
    {0, NULL},
};

static const struct cmd_spec spec = {
    .synopsis = "usage: jclip serve [options]\n",
    .opts = options,
    .epilogue =
        "Serves POST /v1/embeddings, GET /v1/models and GET /health until SIGINT or SIGTERM.\n",
};

#define MODEL_NAME       "jina-clip-v1"
#define MAX_INPUTS       2048 /* per request; more is a 413 */
#define POOL_THREADS     4    /* libmicrohttpd's: parsing and tokenizing beside the model */
#define CONNECTION_LIMIT 256
#define BATCH_WAIT_MS    3    /* an idle worker waits this long for more jobs to join */
#define PREP_WAIT_MS     250  /* at most this long for images still being decoded to join */
#define DRAIN_SECONDS    20   /* how long a shutdown waits for requests in flight */
#define TOKEN_BUDGET     8192 /* tokens per text batch, as the CLI's batcher has it */
#define PREP_THREADS     4    /* images fetched and decoded at once */
#define SCHEME_CHARS     "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-."

enum route { ROUTE_EMBED = 1, ROUTE_MODELS, ROUTE_MODEL, ROUTE_HEALTH };
enum kind { KIND_TEXT, KIND_IMAGE };

struct request;

/* One input of a request on its way through the model. */
struct job {
    struct job *next;
    struct request *req;
    size_t index;
    unsigned long long seq; /* order of arrival, so the older kind runs first */
    int32_t *ids;           /* text: [n_ids], malloc'd */
    size_t n_ids;
    uint8_t *data; /* image: the encoded file [len], malloc'd */
    size_t len;
    char *url;     /* image: where to fetch it from, malloc'd; NULL once fetched */
    float *pixels; /* image: the model's input [3, S, S] once prepared, malloc'd */
};

struct request {
    struct server *srv;
    struct MHD_Connection *conn;
    enum route route;
    bool queued, done; /* the jobs went to the worker; a response was queued */
    char method[16], path[128];
    double t0;
    int status; /* of the response, for the log */
    /* the body */
    char *body;
    size_t len, cap;
    bool too_large;
    /* the parsed request */
    bool openai, keyed; /* OpenAI dialect; "embedding" is an object keyed by type */
    enum encoding enc[4];
    size_t n_enc;
    unsigned flags;
    size_t n;
    struct job *jobs;          /* [n] */
    float *vecs;               /* [n, dim] */
    unsigned long long tokens; /* texts when queued; images add theirs in the worker */
    size_t pending;            /* jobs not done; under the server's lock */
    int fail;                  /* set by the worker: the request failed with this status */
    char detail[600];
};

struct server {
    struct jc_model *m;
    const struct jc_tokenizer *tk;
    size_t dim, max_batch, max_body;
    unsigned idle_timeout; /* seconds a connection may sit idle: stalled clients let go */
    int size;
    float mean[3], std[3];
    struct jc_image_opts image;
    const char *api_key;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    struct job *head[2], *tail[2];
    size_t queued[2];
    unsigned long long seq;
    bool stop, abort;
    long in_flight;
    /* the preparers': images to fetch and decode; those done wait in the image queue, at
     * most 2 batches of them, so a request of 2048 images is not all pixels at once */
    pthread_cond_t prep_wake, prep_room;
    struct job *prep_head, *prep_tail;
    size_t in_prep; /* images queued for the preparers or being prepared */
    bool prep_stop;
    /* the worker's */
    struct job **batch;
    const int32_t **ids;
    size_t *lens;
    bool *decoded;
    float *pixels, *out;
};

static int stop_pipe[2] = {-1, -1};

static void on_stop(int sig)
{
    int saved = errno;
    char c = (char)sig;
    if (write(stop_pipe[1], &c, 1) < 0) {
        /* the pipe is full: a stop is already pending */
    }
    errno = saved;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- responses ------------------------------------------------------------------------- */

static enum MHD_Result send_body(struct request *r, int status, char *body, size_t len)
{
    struct MHD_Response *resp = mhd.create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    enum MHD_Result ok;

    if (!resp) {
        free(body);
        return MHD_NO;
    }
    mhd.add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        mhd.add_response_header(resp, MHD_HTTP_HEADER_ALLOW,
                                r->route == ROUTE_EMBED ? "POST" : "GET, HEAD");
    if (status == MHD_HTTP_UNAUTHORIZED)
        mhd.add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    ok = mhd.queue_response(r->conn, (unsigned)status, resp);
    mhd.destroy_response(resp);
    r->status = status;
    r->done = true;
    return ok;
}

/* {"detail": "..."} with the status. */
static enum MHD_Result send_detail(struct request *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static enum MHD_Result send_detail(struct request *r, int status, const char *fmt, ...)
{
    char msg[1024], *buf = NULL;
    size_t len = 0;
    va_list ap;
    FILE *f;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!(f = open_memstream(&buf, &len)))
        return MHD_NO;
    fputs("{\"detail\":", f);
    json_string(f, msg);
    fputs("}", f);
    if (fclose(f) != 0) {
        free(buf);
        return MHD_NO;
    }
    return send_body(r, status, buf, len);
}

static enum MHD_Result send_json(struct request *r, const char *json)
{
    char *body = strdup(json);
    return body ? send_body(r, MHD_HTTP_OK, body, strlen(body)) : MHD_NO;
}

static enum MHD_Result send_embeddings(struct request *r)
{
    const struct server *s = r->srv;
    char *buf = NULL;
    size_t len = 0;
    FILE *f;

    if (r->fail)
        return send_detail(r, r->fail, "%s", r->detail);
    if (!(f = open_memstream(&buf, &len)))
        return MHD_NO;
    if (r->openai)
        fputs("{\"object\":\"list\",\"data\":[", f);
    else
        fprintf(f,
                "{\"model\":\"" MODEL_NAME "\",\"object\":\"list\",\"usage\":"
                "{\"total_tokens\":%llu,\"prompt_tokens\":%llu},\"data\":[",
                r->tokens, r->tokens);
    for (size_t i = 0; i < r->n; i++) {
        const float *v = r->vecs + i * s->dim;
        fprintf(f, "%s{\"object\":\"embedding\",\"index\":%zu,\"embedding\":", i ? "," : "", i);
        if (!r->keyed) {
            print_embedding(f, v, s->dim, r->enc[0]);
        } else {
            putc('{', f);
            for (size_t k = 0; k < r->n_enc; k++) {
                fprintf(f, "%s\"%s\":", k ? "," : "", encoding_name(r->enc[k]));
                print_embedding(f, v, s->dim, r->enc[k]);
            }
            putc('}', f);
        }
        putc('}', f);
    }
    if (r->openai)
        fprintf(f,
                "],\"model\":\"" MODEL_NAME "\",\"usage\":{\"prompt_tokens\":%llu,"
                "\"total_tokens\":%llu}}",
                r->tokens, r->tokens);
    else
        fputs("]}", f);
    if (fclose(f) != 0) {
        free(buf);
        return send_detail(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory for the response");
    }
    return send_body(r, MHD_HTTP_OK, buf, len);
}

/* ---- the worker ------------------------------------------------------------------------ */

/* Records the first failure of a request; the worker and the preparers, not under the lock. */
static void fail_request(struct request *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail_request(struct request *r, int status, const char *fmt, ...)
{
    va_list ap;
    pthread_mutex_lock(&r->srv->lock);
    if (!r->fail) {
        r->fail = status;
        va_start(ap, fmt);
        vsnprintf(r->detail, sizeof r->detail, fmt, ap);
        va_end(ap);
    }
    pthread_mutex_unlock(&r->srv->lock);
}

/* Whether a request has failed; not under the lock. */
static bool failed(struct request *r)
{
    pthread_mutex_lock(&r->srv->lock);
    bool f = r->fail != 0;
    pthread_mutex_unlock(&r->srv->lock);
    return f;
}

/*
 * Takes a batch off queue k: the jobs with the flags of the first, in order, up to max_batch
 * (and, for texts, until TOKEN_BUDGET tokens, as the CLI batches them). Under the lock.
 */
static size_t take(struct server *s, enum kind k)
{
    struct job **p = &s->head[k];
    unsigned flags = s->head[k]->req->flags;
    size_t n = 0, tokens = 0;

    while (*p && n < s->max_batch && (k == KIND_IMAGE || tokens < TOKEN_BUDGET)) {
        struct job *j = *p;
        if (j->req->flags != flags && !j->req->fail && !s->abort) {
            p = &j->next;
            continue;
        }
        *p = j->next;
        j->next = NULL;
        s->batch[n++] = j;
        s->queued[k]--;
        if (!j->req->fail)
            tokens += j->n_ids;
    }
    s->tail[k] = NULL;
    for (struct job *j = s->head[k]; j; j = j->next)
        s->tail[k] = j;
    return n;
}

static void run_texts(struct server *s, size_t n)
{
    size_t good = 0;
    unsigned flags = 0;
    bool *ok = s->decoded; /* in this batch of the model */

    for (size_t i = 0; i < n; i++) {
        struct job *j = s->batch[i];
        if (!(ok[i] = !failed(j->req)))
            continue;
        flags = j->req->flags;
        s->ids[good] = j->ids;
        s->lens[good++] = j->n_ids;
    }
    if (good && jc_embed_texts(s->m, s->ids, s->lens, good, flags, s->out) < 0) {
        for (size_t i = 0; i < n; i++)
            fail_request(s->batch[i]->req, MHD_HTTP_INTERNAL_SERVER_ERROR, "%s", jc_errmsg());
        return;
    }
    for (size_t i = 0, k = 0; i < n; i++) {
        struct job *j = s->batch[i];
        if (ok[i])
            memcpy(j->req->vecs + j->index * s->dim, s->out + k++ * s->dim,
                   s->dim * sizeof *s->out);
    }
}

static void run_images(struct server *s, size_t n)
{
    size_t per = 3 * (size_t)s->size * s->size, good = 0;
    unsigned flags = 0;
    bool *ok = s->decoded; /* in this batch of the model */

    for (size_t i = 0; i < n; i++) {
        struct job *j = s->batch[i];
        if (!(ok[i] = !failed(j->req)))
            continue;
        flags = j->req->flags;
        memcpy(s->pixels + good++ * per, j->pixels, per * sizeof *s->pixels);
    }
    if (good && jc_embed_images(s->m, s->pixels, good, flags, s->out) < 0) {
        for (size_t i = 0; i < n; i++)
            fail_request(s->batch[i]->req, MHD_HTTP_INTERNAL_SERVER_ERROR, "%s", jc_errmsg());
        return;
    }
    for (size_t i = 0, k = 0; i < n; i++) {
        struct job *j = s->batch[i];
        if (ok[i])
            memcpy(j->req->vecs + j->index * s->dim, s->out + k++ * s->dim,
                   s->dim * sizeof *s->out);
    }
}

/* Counts job j done; true when its request has no job left. Under the lock. */
static bool job_done(struct job *j)
{
    free(j->ids);
    j->ids = NULL;
    free(j->data);
    j->data = NULL;
    free(j->url);
    j->url = NULL;
    free(j->pixels);
    j->pixels = NULL;
    return --j->req->pending == 0;
}

/* Counts the batch's jobs done and resumes the requests that have no job left. */
static void finish(struct server *s, size_t n)
{
    struct request *resume[n];
    size_t nr = 0;

    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < n; i++)
        if (job_done(s->batch[i]))
            resume[nr++] = s->batch[i]->req;
    pthread_mutex_unlock(&s->lock);
    /* a suspended request cannot complete, so it is still there */
    for (size_t i = 0; i < nr; i++)
        mhd.resume_connection(resume[i]->conn);
}

static void *worker(void *arg)
{
    struct server *s = arg;

    for (;;) {
        bool idle = false;
        enum kind k;

        pthread_mutex_lock(&s->lock);
        while (!s->stop && !s->head[KIND_TEXT] && !s->head[KIND_IMAGE]) {
            pthread_cond_wait(&s->wake, &s->lock);
            idle = true;
        }
        if (!s->head[KIND_TEXT] && !s->head[KIND_IMAGE]) {
            pthread_mutex_unlock(&s->lock);
            break;
        }
        k = !s->head[KIND_IMAGE] ||
                    (s->head[KIND_TEXT] && s->head[KIND_TEXT]->seq < s->head[KIND_IMAGE]->seq)
                ? KIND_TEXT
                : KIND_IMAGE;
        /* Jobs that arrive while a batch runs are waiting already; only a worker that was
         * idle waits a little for the requests sent at the same moment. Images still being
         * decoded are waited for too, a bounded time: clients answered together send their
         * next images together, and a batch started with the first few decoded would leave
         * the rest to a batch of their own, at a fraction of the rate. */
        int wait_ms = k == KIND_IMAGE && s->in_prep ? PREP_WAIT_MS : idle ? BATCH_WAIT_MS : 0;
        if (wait_ms && s->queued[k] < s->max_batch) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_nsec += wait_ms * 1000000L;
            if (until.tv_nsec >= 1000000000L) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000L;
            }
            while (!s->stop && s->queued[k] < s->max_batch &&
                   (k == KIND_TEXT || s->in_prep || idle) &&
                   pthread_cond_timedwait(&s->wake, &s->lock, &until) == 0)
                ;
        }
        size_t n = take(s, k);
        bool aborting = s->abort;
        if (k == KIND_IMAGE)
            pthread_cond_broadcast(&s->prep_room);
        pthread_mutex_unlock(&s->lock);

        if (aborting) {
            for (size_t i = 0; i < n; i++)
                fail_request(s->batch[i]->req, MHD_HTTP_SERVICE_UNAVAILABLE,
                             "the server is shutting down");
        } else if (k == KIND_TEXT) {
            run_texts(s, n);
        } else {
            run_images(s, n);
        }
        finish(s, n);
    }
    return NULL;
}

/* Appends job j to queue k and wakes the worker; under the lock. */
static void enqueue(struct server *s, enum kind k, struct job *j)
{
    j->next = NULL;
    if (s->tail[k])
        s->tail[k]->next = j;
    else
        s->head[k] = j;
    s->tail[k] = j;
    s->queued[k]++;
    pthread_cond_signal(&s->wake);
}

/* The HTTP status for a fetch that failed with rc. */
static int fetch_status(int rc)
{
    switch (rc) {
    case JC_ETIMEOUT:
        return MHD_HTTP_GATEWAY_TIMEOUT;
    case JC_ELIMIT:
        return MHD_HTTP_CONTENT_TOO_LARGE;
    case JC_ENOMEM:
        return MHD_HTTP_INTERNAL_SERVER_ERROR;
    default:
        return MHD_HTTP_BAD_GATEWAY;
    }
}

/*
 * Fetches (when given by URL), decodes and preprocesses image job j: 0, or the request is
 * failed with the status and message.
 */
static int prepare(struct server *s, struct job *j)
{
    size_t per = 3 * (size_t)s->size * s->size;
    char name[64];
    const char *warn;
    int rc, w, h;

    if (j->url) {
        char *buf;
        size_t len;
        if ((rc = jc_fetch(j->url, &s->image.fetch, &buf, &len)) < 0) {
            fail_request(j->req, fetch_status(rc), "input[%zu]: %s", j->index, jc_errmsg());
            return rc;
        }
        j->data = (uint8_t *)buf;
        j->len = len;
    }
    snprintf(name, sizeof name, "input[%zu]", j->index);
    if (!(j->pixels = malloc(per * sizeof *j->pixels))) {
        fail_request(j->req, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory for an image");
        return JC_ENOMEM;
    }
    /* the API counts an image's tokens from its size as stored, as count-tokens does */
    rc = jc_image_decode_pixels(j->data, j->len, name, &s->image, s->size, s->mean, s->std,
                                j->pixels, &warn);
    if (rc == 0)
        rc = jc_image_size_mem(j->data, j->len, name, &w, &h);
    if (rc < 0) {
        fail_request(j->req,
                     rc == JC_ENOMEM ? MHD_HTTP_INTERNAL_SERVER_ERROR
                                     : MHD_HTTP_UNPROCESSABLE_CONTENT,
                     "%s", jc_errmsg());
        return rc;
    }
    free(j->data); /* the pixels are what the model needs */
    j->data = NULL;
    pthread_mutex_lock(&s->lock);
    j->req->tokens += 1000ull * ((w + 223ull) / 224) * ((h + 223ull) / 224);
    pthread_mutex_unlock(&s->lock);
    return 0;
}

/* A preparer: fetches and decodes images, then hands them to the worker. */
static void *preparer(void *arg)
{
    struct server *s = arg;

    pthread_mutex_lock(&s->lock);
    for (;;) {
        while (!s->prep_stop && !s->prep_head)
            pthread_cond_wait(&s->prep_wake, &s->lock);
        /* room for the pixels: the worker makes it as it takes batches */
        while (s->prep_head && s->queued[KIND_IMAGE] >= 2 * s->max_batch && !s->abort)
            pthread_cond_wait(&s->prep_room, &s->lock);
        struct job *j = s->prep_head;
        if (!j)
            break;
        if (!(s->prep_head = j->next))
            s->prep_tail = NULL;
        bool skip = j->req->fail || s->abort, aborting = s->abort;
        pthread_mutex_unlock(&s->lock);

        int rc = 0;
        if (aborting)
            fail_request(j->req, MHD_HTTP_SERVICE_UNAVAILABLE, "the server is shutting down");
        else if (!skip)
            rc = prepare(s, j);

        pthread_mutex_lock(&s->lock);
        s->in_prep--;
        if (skip || rc < 0) {
            pthread_cond_signal(&s->wake); /* one image fewer for the worker to wait for */
            if (job_done(j)) {
                pthread_mutex_unlock(&s->lock);
                mhd.resume_connection(j->req->conn);
                pthread_mutex_lock(&s->lock);
            }
            continue;
        }
        enqueue(s, KIND_IMAGE, j);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/* ---- parsing a request ----------------------------------------------------------------- */

/* Decodes an image given as base64 or a data: URI; NULL and a message in err on failure. */
static uint8_t *image_bytes(const char *s, const char *field, size_t *len, char *err, size_t cap)
{
    const char *b64 = s;
    uint8_t *out;

    if (!strncasecmp(s, "data:", 5)) {
        const char *comma = strchr(s, ',');
        if (!comma || strncasecmp(s + 5, "image/", 6) || comma - s < 12 ||
            strncasecmp(comma - 7, ";base64", 7)) {
            snprintf(err, cap, "%s: a data URI must be data:image/TYPE;base64,DATA", field);
            return NULL;
        }
        b64 = comma + 1;
    }
    size_t n = strlen(b64);
    if (!n) {
        snprintf(err, cap, "%s: the image is empty", field);
        return NULL;
    }
    if (!(out = malloc(n / 4 * 3 + 1))) {
        snprintf(err, cap, "out of memory");
        return NULL;
    }
    if (jc_base64_decode(b64, n, out, len) < 0) {
        snprintf(err, cap, "%s: %s", field, jc_errmsg());
        free(out);
        return NULL;
    }
    return out;
}

/* Tokenizes a text into job j; 0, or an HTTP status with the message in err. */
static int text_job(struct request *r, struct job *j, const char *text, bool truncate,
                    const char *field, char *err, size_t cap)
{
    const struct server *s = r->srv;
    char *fixed;
    size_t len = strlen(text), fixed_len, full;

    /* as the CLI reads texts: invalid UTF-8 becomes U+FFFD first */
    long bad = jc_utf8_repair(text, len, &fixed, &fixed_len);
    if (bad < 0) {
        snprintf(err, cap, "out of memory");
        return MHD_HTTP_INTERNAL_SERVER_ERROR;
    }
    int rc = jc_tokenize(s->tk, bad ? fixed : text, bad ? fixed_len : len, DEFAULT_MAX_TOKENS,
                         &j->ids, &j->n_ids, &full);
    free(bad ? fixed : NULL);
    if (rc < 0) {
        snprintf(err, cap, "%s: %s", field, jc_errmsg());
        return rc == JC_ENOMEM ? MHD_HTTP_INTERNAL_SERVER_ERROR : MHD_HTTP_BAD_REQUEST;
    }
    if (full > j->n_ids && !truncate) {
        snprintf(err, cap,
                 "%s: %zu tokens, over the limit of %d; send \"truncate\": true to cut it", field,
                 full, DEFAULT_MAX_TOKENS);
        return MHD_HTTP_BAD_REQUEST;
    }
    r->tokens += j->n_ids;
    return 0;
}

/* One element of "input"; 0, or an HTTP status with the message in err. */
static int parse_input(struct request *r, size_t i, const cJSON *item, bool truncate, char *err,
                       size_t cap)
{
    struct job *j = &r->jobs[i];
    char field[64];
    const cJSON *v;

    j->req = r;
    j->index = i;
    snprintf(field, sizeof field, "input[%zu]", i);
    if (cJSON_IsString(item))
        return text_job(r, j, item->valuestring, truncate, field, err, cap);
    if (!cJSON_IsObject(item)) {
        snprintf(err, cap, "%s: not a string or an object", field);
        return MHD_HTTP_BAD_REQUEST;
    }
    static const char *const keys[] = {"text", "image", "url", "bytes"};
    const char *key = NULL;
    for (size_t k = 0; k < 4; k++)
        if (cJSON_GetObjectItemCaseSensitive(item, keys[k])) {
            if (key) {
                snprintf(err, cap,
                         "%s: give one of \"text\", \"image\", \"url\" and \"bytes\", not two",
                         field);
                return MHD_HTTP_BAD_REQUEST;
            }
            key = keys[k];
        }
    if (!key) {
        snprintf(err, cap, "%s: an object needs \"text\", \"image\", \"url\" or \"bytes\"", field);
        return MHD_HTTP_BAD_REQUEST;
    }
    v = cJSON_GetObjectItemCaseSensitive(item, key);
    snprintf(field, sizeof field, "input[%zu].%s", i, key);
    if (!cJSON_IsString(v)) {
        snprintf(err, cap, "%s: not a string", field);
        return MHD_HTTP_BAD_REQUEST;
    }
    if (!strcmp(key, "text"))
        return text_job(r, j, v->valuestring, truncate, field, err, cap);
    if (!strcmp(key, "bytes") &&
        (!strncasecmp(v->valuestring, "data:", 5) || !strncasecmp(v->valuestring, "http", 4))) {
        snprintf(err, cap, "%s: not base64", field);
        return MHD_HTTP_BAD_REQUEST;
    }
    const char *colon = strstr(v->valuestring, "://");
    bool url = jc_is_url(v->valuestring);
    if (!url && (!strcmp(key, "url") || (colon && strspn(v->valuestring, SCHEME_CHARS) ==
                                                      (size_t)(colon - v->valuestring)))) {
        snprintf(err, cap, "%s: only http:// and https:// URLs are fetched", field);
        return MHD_HTTP_BAD_REQUEST;
    }
    if (url && r->srv->image.fetch.no_fetch) {
        snprintf(err, cap,
                 "%s: this server does not fetch image URLs (--no-fetch); send the image as "
                 "base64 or a data URI",
                 field);
        return MHD_HTTP_BAD_REQUEST;
    }
    if (url) {
        if (!(j->url = strdup(v->valuestring))) {
            snprintf(err, cap, "out of memory");
            return MHD_HTTP_INTERNAL_SERVER_ERROR;
        }
        return 0;
    }
    if (!(j->data = image_bytes(v->valuestring, field, &j->len, err, cap)))
        return strcmp(err, "out of memory") ? MHD_HTTP_BAD_REQUEST : MHD_HTTP_INTERNAL_SERVER_ERROR;
    return 0;
}

/* The encodings a request asks for; 0, or 400 with the message in err. */
static int parse_encodings(struct request *r, const cJSON *root, char *err, size_t cap)
{
    const char *field = "encoding_format";
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, field);
    const cJSON *jina = cJSON_GetObjectItemCaseSensitive(root, "embedding_type");

    if (!jina) {
        jina = cJSON_GetObjectItemCaseSensitive(root, "encoding_type");
        if (jina)
            field = "encoding_type";
    } else {
        field = "embedding_type";
    }
    r->enc[0] = ENC_FLOAT;
    r->n_enc = 1;
    if (v && !cJSON_IsNull(v)) {
        r->openai = true;
        if (jina) {
            snprintf(err, cap, "give encoding_format (OpenAI) or %s (Jina), not both", field);
            return MHD_HTTP_BAD_REQUEST;
        }
        if (!cJSON_IsString(v) ||
            (strcmp(v->valuestring, "float") && strcmp(v->valuestring, "base64"))) {
            snprintf(err, cap, "encoding_format: not \"float\" or \"base64\"");
            return MHD_HTTP_BAD_REQUEST;
        }
        r->enc[0] = strcmp(v->valuestring, "float") ? ENC_BASE64 : ENC_FLOAT;
        return 0;
    }
    if (!jina || cJSON_IsNull(jina))
        return 0;
    if (cJSON_IsString(jina)) {
        if (encoding_from_name(jina->valuestring, &r->enc[0]))
            return 0;
    } else if (cJSON_IsArray(jina) && cJSON_GetArraySize(jina) > 0) {
        const cJSON *e;
        r->keyed = true;
        r->n_enc = 0;
        cJSON_ArrayForEach(e, jina)
        {
            enum encoding enc;
            if (!cJSON_IsString(e) || !encoding_from_name(e->valuestring, &enc))
                break;
            bool seen = false;
            for (size_t k = 0; k < r->n_enc; k++)
                seen |= r->enc[k] == enc;
            if (!seen)
                r->enc[r->n_enc++] = enc;
        }
        if (!e)
            return 0;
    }
    snprintf(err, cap, "%s: not float, base64, binary or ubinary, or a non-empty list of them",
             field);
    return MHD_HTTP_BAD_REQUEST;
}

/* A JSON boolean field, *out unchanged when absent; false if it is of another type. */
static bool get_bool(const cJSON *root, const char *name, bool *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, name);
    if (!v || cJSON_IsNull(v))
        return true;
    if (!cJSON_IsBool(v))
        return false;
    *out = cJSON_IsTrue(v);
    return true;
}

/*
 * Whether a JSON text holds the escape \u0000: cJSON's strings end at a NUL, so such a text
 * would be cut there, where the CLI embeds the whole of it. An escaped backslash is skipped,
 * so "\\u0000" (a backslash, then "u0000") is not one.
 */
static bool has_nul_escape(const char *p, size_t n)
{
    for (size_t i = 0; i + 1 < n; i++)
        if (p[i] == '\\') {
            if (p[i + 1] == 'u' && i + 5 < n && !memcmp(p + i + 2, "0000", 4))
                return true;
            i++;
        }
    return false;
}

/* Parses the body into jobs; 0, or an HTTP status with the message in err. */
static int parse_request(struct request *r, char *err, size_t cap)
{
    const struct server *s = r->srv;
    const cJSON *v, *input;
    bool normalized = true, truncate = false;
    int status = MHD_HTTP_BAD_REQUEST;
    cJSON *root = cJSON_ParseWithLength(r->body ? r->body : "", r->len);

    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        if (r->len && at && at >= r->body && at <= r->body + r->len)
            snprintf(err, cap, "the body is not valid JSON (at byte %zu)", (size_t)(at - r->body));
        else
            snprintf(err, cap, "the body is not valid JSON");
        return status;
    }
    if (!cJSON_IsObject(root)) {
        snprintf(err, cap, "the body is not a JSON object");
        goto out;
    }
    if (has_nul_escape(r->body, r->len)) {
        snprintf(err, cap, "a string holds \\u0000, which this server does not take");
        goto out;
    }
    v = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (v && !cJSON_IsNull(v) &&
        (!cJSON_IsString(v) ||
         (strcmp(v->valuestring, MODEL_NAME) && strcmp(v->valuestring, "jinaai/" MODEL_NAME)))) {
        if (cJSON_IsString(v))
            snprintf(err, cap, "model: '%.200s' is not served here; this server serves %s",
                     v->valuestring, MODEL_NAME);
        else
            snprintf(err, cap, "model: not a string; this server serves %s", MODEL_NAME);
        goto out;
    }
    if (parse_encodings(r, root, err, cap))
        goto out;
    if (!get_bool(root, "normalized", &normalized)) {
        snprintf(err, cap, "normalized: not true or false");
        goto out;
    }
    if (!get_bool(root, "truncate", &truncate)) {
        snprintf(err, cap, "truncate: not true or false");
        goto out;
    }
    r->flags = normalized ? 0 : JC_EMBED_RAW;
    v = cJSON_GetObjectItemCaseSensitive(root, "dimensions");
    if (v && !cJSON_IsNull(v)) {
        /* jina-clip-v1 has no shorter (Matryoshka) embeddings: more is the whole vector */
        if (!cJSON_IsNumber(v) || v->valuedouble != (double)(long long)v->valuedouble ||
            v->valuedouble < (double)s->dim) {
            snprintf(err, cap, "dimensions: this model's embeddings have %zu dimensions", s->dim);
            goto out;
        }
    }
    input = cJSON_GetObjectItemCaseSensitive(root, "input");
    if (!input) {
        snprintf(err, cap, "input: missing");
        goto out;
    }
    if (cJSON_IsString(input) || cJSON_IsObject(input)) {
        r->n = 1;
    } else if (cJSON_IsArray(input)) {
        r->n = (size_t)cJSON_GetArraySize(input);
        if (!r->n) {
            snprintf(err, cap, "input: an empty list");
            goto out;
        }
        if (r->n > MAX_INPUTS) {
            snprintf(err, cap, "input: %zu inputs, over the limit of %d per request", r->n,
                     MAX_INPUTS);
            status = MHD_HTTP_CONTENT_TOO_LARGE;
            goto out;
        }
    } else {
        snprintf(err, cap, "input: not a string, an object or a list of them");
        goto out;
    }
    r->jobs = calloc(r->n, sizeof *r->jobs);
    r->vecs = malloc(r->n * s->dim * sizeof *r->vecs);
    if (!r->jobs || !r->vecs) {
        snprintf(err, cap, "out of memory for %zu inputs", r->n);
        status = MHD_HTTP_INTERNAL_SERVER_ERROR;
        goto out;
    }
    if (!cJSON_IsArray(input)) {
        status = parse_input(r, 0, input, truncate, err, cap);
    } else {
        size_t i = 0;
        status = 0;
        cJSON_ArrayForEach(v, input)
        {
            if ((status = parse_input(r, i++, v, truncate, err, cap)))
                break;
        }
    }
out:
    cJSON_Delete(root);
    return status;
}

/* ---- the handlers ---------------------------------------------------------------------- */

/* Parses the body and queues its jobs, suspending the connection until they are done. */
static enum MHD_Result start_embedding(struct request *r)
{
    struct server *s = r->srv;
    char err[700];
    int status;

    if (r->too_large)
        return send_detail(r, MHD_HTTP_CONTENT_TOO_LARGE,
                           "the body is larger than the limit of %zu bytes", s->max_body);
    if ((status = parse_request(r, err, sizeof err)))
        return send_detail(r, status, "%s", err);
    /* suspended before the worker can see the jobs: it resumes only suspended requests */
    mhd.suspend_connection(r->conn);
    pthread_mutex_lock(&s->lock);
    r->queued = true;
    r->pending = r->n;
    for (size_t i = 0; i < r->n; i++) {
        struct job *j = &r->jobs[i];
        j->seq = s->seq++;
        if (j->ids) {
            enqueue(s, KIND_TEXT, j);
        } else {
            j->next = NULL;
            if (s->prep_tail)
                s->prep_tail->next = j;
            else
                s->prep_head = j;
            s->prep_tail = j;
            s->in_prep++;
            pthread_cond_signal(&s->prep_wake);
        }
    }
    pthread_mutex_unlock(&s->lock);
    return MHD_YES;
}

/* Whether the request carries the API key, compared in constant time. */
static bool authorized(const struct server *s, struct MHD_Connection *conn)
{
    const char *h = mhd.lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    size_t n = strlen(s->api_key), hn, diff;

    if (!h || strncasecmp(h, "Bearer ", 7))
        return false;
    h += 7;
    while (*h == ' ')
        h++;
    hn = strlen(h);
    diff = hn ^ n;
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)(i < hn ? h[i] : 0) ^ (unsigned char)s->api_key[i];
    return diff == 0;
}

static enum MHD_Result first_call(struct server *s, struct request *r, const char *url,
                                  const char *method)
{
    bool get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
    bool ok_method;

    if (!strcmp(url, "/v1/embeddings")) {
        r->route = ROUTE_EMBED;
        ok_method = !strcmp(method, "POST");
    } else if (!strcmp(url, "/v1/models")) {
        r->route = ROUTE_MODELS;
        ok_method = get;
    } else if (!strcmp(url, "/v1/models/" MODEL_NAME)) {
        r->route = ROUTE_MODEL;
        ok_method = get;
    } else if (!strcmp(url, "/health")) {
        r->route = ROUTE_HEALTH;
        ok_method = get;
    } else {
        return send_detail(r, MHD_HTTP_NOT_FOUND, "no such path: %.100s", r->path);
    }
    if (!ok_method)
        return send_detail(r, MHD_HTTP_METHOD_NOT_ALLOWED, "%s takes %s, not %s", r->path,
                           r->route == ROUTE_EMBED ? "POST" : "GET", r->method);
    /* /health answers without the key, for load balancers and container probes */
    if (s->api_key && r->route != ROUTE_HEALTH && !authorized(s, r->conn))
        return send_detail(r, MHD_HTTP_UNAUTHORIZED,
                           "missing or wrong API key (Authorization: Bearer KEY)");
    switch (r->route) {
    case ROUTE_HEALTH:
        return send_json(r, "{\"status\":\"ok\"}");
    case ROUTE_MODELS:
        return send_json(r, "{\"object\":\"list\",\"data\":[{\"id\":\"" MODEL_NAME
                            "\",\"object\":\"model\",\"created\":0,\"owned_by\":\"jinaai\"}]}");
    case ROUTE_MODEL:
        return send_json(r, "{\"id\":\"" MODEL_NAME
                            "\",\"object\":\"model\",\"created\":0,\"owned_by\":\"jinaai\"}");
    default:
        break;
    }
    const char *cl = mhd.lookup_connection_value(r->conn, MHD_HEADER_KIND, "Content-Length");
    if (cl && strtoull(cl, NULL, 10) > s->max_body)
        return send_detail(r, MHD_HTTP_CONTENT_TOO_LARGE,
                           "the body is larger than the limit of %zu bytes", s->max_body);
    return MHD_YES;
}

/* A printable copy of what a client sent, for the log and messages. */
static void printable(char *dst, size_t cap, const char *src)
{
    size_t i = 0;
    for (; src[i] && i + 1 < cap; i++)
        dst[i] = src[i] > 0x20 && src[i] < 0x7f ? src[i] : '?';
    dst[i] = '\0';
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **con_cls)
{
    struct server *s = cls;
    struct request *r = *con_cls;

    (void)version;
    if (!r) {
        if (!(r = calloc(1, sizeof *r)))
            return MHD_NO;
        r->srv = s;
        r->conn = conn;
        r->t0 = now();
        printable(r->method, sizeof r->method, method);
        printable(r->path, sizeof r->path, url);
        *con_cls = r;
        pthread_mutex_lock(&s->lock);
        s->in_flight++;
        pthread_mutex_unlock(&s->lock);
        return first_call(s, r, url, method);
    }
    if (r->done) { /* answered early (413): the rest of the body is dropped */
        *upload_size = 0;
        return MHD_YES;
    }
    if (r->queued)
        return send_embeddings(r);
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (r->too_large || n > s->max_body - r->len) {
            r->too_large = true;
            return MHD_YES;
        }
        if (r->len + n > r->cap) {
            size_t cap = r->cap ? r->cap : 64 * 1024;
            while (cap < r->len + n)
                cap *= 2;
            char *b = realloc(r->body, cap);
            if (!b)
                return send_detail(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
            r->body = b;
            r->cap = cap;
        }
        memcpy(r->body + r->len, upload, n);
        r->len += n;
        return MHD_YES;
    }
    return start_embedding(r);
}

static void completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    struct server *s = cls;
    struct request *r = *con_cls;

    (void)conn;
    if (!r)
        return;
    char status[8] = "-";
    if (r->status && toe == MHD_REQUEST_TERMINATED_COMPLETED_OK)
        snprintf(status, sizeof status, "%d", r->status);
    fprintf(stderr, "%s: %s %s %s %zu items %.1f ms\n", cmd_prefix, r->method, r->path, status,
            r->n, (now() - r->t0) * 1e3);
    for (size_t i = 0; r->jobs && i < r->n; i++) {
        free(r->jobs[i].ids);
        free(r->jobs[i].data);
        free(r->jobs[i].url);
        free(r->jobs[i].pixels);
    }
    free(r->jobs);
    free(r->vecs);
    free(r->body);
    free(r);
    *con_cls = NULL;
    pthread_mutex_lock(&s->lock);
    s->in_flight--;
    pthread_mutex_unlock(&s->lock);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    size_t n;

    (void)cls;
    vsnprintf(msg, sizeof msg, fmt, ap);
    n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '.'))
        msg[--n] = '\0';
    if (msg[0] >= 'A' && msg[0] <= 'Z' && !(msg[1] >= 'A' && msg[1] <= 'Z'))
        msg[0] = (char)(msg[0] - 'A' + 'a');
    fprintf(stderr, "%s: %s\n", cmd_prefix, msg);
}

/* ---- the command ----------------------------------------------------------------------- */

/* Waits for SIGINT or SIGTERM, or `seconds` (< 0: for ever); true when a signal came. */
static bool wait_stop(double seconds)
{
    struct pollfd p = {.fd = stop_pipe[0], .events = POLLIN};
    int rc;
    char c;

    /* the handler may run on this thread and interrupt the poll before its byte is there */
    do
        rc = poll(&p, 1, seconds < 0 ? -1 : (int)(seconds * 1e3));
    while (rc < 0 && errno == EINTR);
    return rc > 0 && read(stop_pipe[0], &c, 1) == 1;
}

/* Waits up to `seconds` for the requests in flight to complete; false if some are left. */
static bool drain(struct server *s, double seconds, bool stop_on_signal)
{
    double until = now() + seconds;
    for (;;) {
        pthread_mutex_lock(&s->lock);
        long left = s->in_flight;
        pthread_mutex_unlock(&s->lock);
        if (!left)
            return true;
        if (now() >= until)
            return false;
        if (wait_stop(0.02) && stop_on_signal)
            return false;
    }
}

static bool catch_stop_signals(void)
{
    static const int sigs[] = {SIGINT, SIGTERM};

    if (pipe(stop_pipe) < 0) {
        error("cannot make a pipe: %s", strerror(errno));
        return false;
    }
    for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++) {
        struct sigaction sa = {.sa_handler = on_stop}, old;
        sigemptyset(&sa.sa_mask);
        /* keep a signal ignored when the caller ignored it, as every command does */
        if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler != SIG_IGN)
            sigaction(sigs[i], &sa, NULL);
    }
    signal(SIGPIPE, SIG_IGN);
    return true;
}

/* Resolves the listening address; false (reported) when it is not one. */
static bool resolve(const char *host, long port, struct sockaddr_storage *ss)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE},
                    *ai;
    char service[16];
    int rc;

    snprintf(service, sizeof service, "%ld", port);
    if ((rc = getaddrinfo(host, service, &hints, &ai)) != 0) {
        error("--host: cannot resolve '%s': %s", host, gai_strerror(rc));
        return false;
    }
    memcpy(ss, ai->ai_addr, ai->ai_addrlen);
    freeaddrinfo(ai);
    return true;
}

static int serve(struct server *s, const char *host, long port, const char *dir)
{
    struct sockaddr_storage ss;
    struct MHD_Daemon *d = NULL;
    pthread_t worker_thread;
    int status = EXIT_FAIL;

    if (!resolve(host, port, &ss))
        return EXIT_FAIL;
    if (pthread_create(&worker_thread, NULL, worker, s) != 0) {
        error("not enough memory to start the worker thread");
        return EXIT_FAIL;
    }
    pthread_t preparers[PREP_THREADS];
    int n_preparers = 0;
    while (n_preparers < PREP_THREADS &&
           pthread_create(&preparers[n_preparers], NULL, preparer, s) == 0)
        n_preparers++;
    if (!n_preparers) {
        error("not enough memory to start the threads that decode images");
        goto out_worker;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ERROR_LOG | (ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0);
    /* the logger first, so that no message goes out in libmicrohttpd's own form */
    d = mhd.start_daemon(flags, (uint16_t)port, NULL, NULL, handle, s, MHD_OPTION_EXTERNAL_LOGGER,
                         mhd_log, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                         MHD_OPTION_THREAD_POOL_SIZE, (unsigned)POOL_THREADS,
                         MHD_OPTION_CONNECTION_LIMIT, (unsigned)CONNECTION_LIMIT,
                         MHD_OPTION_CONNECTION_TIMEOUT, s->idle_timeout,
                         MHD_OPTION_NOTIFY_COMPLETED, completed, s, MHD_OPTION_END);
    if (!d) {
        error("cannot listen on %s port %ld", host, port);
        goto out_worker;
    }
    const union MHD_DaemonInfo *info = mhd.get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    bool v6 = strchr(host, ':') != NULL;
    fprintf(stderr, "%s: listening on http://%s%s%s:%u (model %s)\n", cmd_prefix, v6 ? "[" : "",
            host, v6 ? "]" : "", info ? info->port : (unsigned)port, dir);
    fflush(stderr);

    wait_stop(-1);
    /* no new connections; the requests in flight finish, within a bound */
    MHD_socket lfd = mhd.quiesce_daemon(d);
    if (lfd != MHD_INVALID_SOCKET)
        close(lfd);
    status = EXIT_OK;
    if (!drain(s, DRAIN_SECONDS, true)) {
        /* a second signal, or too long: what waits for the model is answered with 503 */
        warning("stopping with requests in flight");
        pthread_mutex_lock(&s->lock);
        s->abort = true;
        pthread_cond_broadcast(&s->prep_room);
        pthread_mutex_unlock(&s->lock);
    }
out_worker:
    /* the preparers first: what they prepare still goes to the worker */
    pthread_mutex_lock(&s->lock);
    s->prep_stop = true;
    pthread_cond_broadcast(&s->prep_wake);
    pthread_mutex_unlock(&s->lock);
    for (int i = 0; i < n_preparers; i++)
        pthread_join(preparers[i], NULL);
    pthread_mutex_lock(&s->lock);
    s->stop = true;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->lock);
    pthread_join(worker_thread, NULL);
    if (d) {
        /* the worker resumed every request it held: let them send their answers, as
         * libmicrohttpd must have no suspended connection when it stops */
        drain(s, 2, false);
        mhd.stop_daemon(d);
    }
    return status;
}

int cmd_serve(int argc, char **argv)
{
    const char *usage = cmd_usage(&spec);
    struct server s = {.max_batch = 32, .max_body = (size_t)64 << 20, .idle_timeout = 30};
    const char *model = NULL, *host = "127.0.0.1", *precision = NULL;
    long port = 8080, threads = 0, v;
    int c, status = EXIT_FAIL;

    while ((c = cmd_getopt(argc, argv, &spec)) != -1) {
        switch (c) {
        case 'm':
            model = optarg;
            break;
        case OPT_HOST:
            host = optarg;
            break;
        case OPT_PORT:
            if (!parse_long("--port", optarg, 0, 65535, &port))
                return EXIT_USAGE;
            break;
        case OPT_MAX_BATCH:
            if (!parse_long("--max-batch", optarg, 1, 1024, &v))
                return EXIT_USAGE;
            s.max_batch = (size_t)v;
            break;
        case OPT_MAX_BODY_BYTES:
            if (!parse_bytes("--max-body-bytes", optarg, &s.max_body))
                return EXIT_USAGE;
            break;
        case OPT_API_KEY:
            s.api_key = optarg;
            break;
        case OPT_IDLE_TIMEOUT:
            if (!parse_long("--idle-timeout", optarg, 1, 86400, &v))
                return EXIT_USAGE;
            s.idle_timeout = (unsigned)v;
            break;
        case 't':
            if (!parse_long("--threads", optarg, 1, 256, &threads))
                return EXIT_USAGE;
            break;
        case OPT_PRECISION:
            precision = optarg;
            break;
        IMAGE_OPT_CASES:
            if (!image_option(c, optarg, &s.image))
                return EXIT_USAGE;
            break;
        case 'h':
            fputs(usage, stdout);
            return EXIT_OK;
        default:
            fputs(usage, stderr);
            return EXIT_USAGE;
        }
    }
    if (optind < argc)
        return usage_error(usage, "unexpected argument '%s'", argv[optind]);
    if (!s.api_key) {
        const char *env = getenv("JCLIP_API_KEY");
        s.api_key = env && *env ? env : NULL;
    }
    if (s.api_key && !*s.api_key)
        return usage_error(usage, "--api-key: the key is empty");
    if (!mhd_load() || !catch_stop_signals() || !setup_threads(threads))
        return EXIT_FAIL;
    if ((status = setup_precision(precision)) != EXIT_OK)
        return status;
    status = EXIT_FAIL;
    /*
     * Request bodies, images and responses of a few hundred kilobytes come and go on many
     * threads. glibc raises its mmap threshold after each large free, and then serves them
     * from the threads' heaps, which fragment: a long-running server grew by megabytes a
     * minute under steady load. A fixed threshold keeps them in mappings given back at free.
     */
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    if (!(s.m = open_model(model, JC_LOAD_TEXT | JC_LOAD_VISION)))
        return EXIT_FAIL;

    struct jc_model_info mi;
    jc_model_info(s.m, &mi);
    s.tk = jc_model_tokenizer(s.m);
    s.dim = (size_t)jc_model_dim(s.m);
    jc_model_preprocess(s.m, &s.size, s.mean, s.std);
    if (s.image.draft < 0)
        s.image.draft = 2 * s.size;
    s.batch = malloc(s.max_batch * sizeof *s.batch);
    s.ids = malloc(s.max_batch * sizeof *s.ids);
    s.lens = malloc(s.max_batch * sizeof *s.lens);
    s.decoded = malloc(s.max_batch * sizeof *s.decoded);
    s.pixels = malloc(s.max_batch * 3 * (size_t)s.size * s.size * sizeof *s.pixels);
    s.out = malloc(s.max_batch * s.dim * sizeof *s.out);
    if (!s.batch || !s.ids || !s.lens || !s.decoded || !s.pixels || !s.out) {
        error("out of memory for a batch of %zu inputs", s.max_batch);
        goto out_free;
    }
    if (pthread_mutex_init(&s.lock, NULL) != 0)
        goto out_free;
    if (pthread_cond_init(&s.wake, NULL) != 0)
        goto out_mutex;
    if (pthread_cond_init(&s.prep_wake, NULL) != 0)
        goto out_wake;
    if (pthread_cond_init(&s.prep_room, NULL) != 0)
        goto out_prep_wake;
    status = serve(&s, host, port, mi.dir);
    pthread_cond_destroy(&s.prep_room);
out_prep_wake:
    pthread_cond_destroy(&s.prep_wake);
out_wake:
    pthread_cond_destroy(&s.wake);
out_mutex:
    pthread_mutex_destroy(&s.lock);
out_free:
    free(s.batch);
    free(s.ids);
    free(s.lens);
    free(s.decoded);
    free(s.pixels);
    free(s.out);
    jc_model_free(s.m);
    return status;
}
