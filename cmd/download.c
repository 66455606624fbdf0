/* jclip download: jina-clip-v1 from the Hugging Face Hub into the cache model discovery reads. */
#include "cmd.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const struct cmd_opt options[] = {
    {OPT_REPO, NULL},  {OPT_REVISION, NULL},
    {OPT_CACHE, NULL}, {OPT_PROGRESS, "report progress on stderr also when it is not a terminal"},
    {OPT_HELP, NULL},  {0, NULL},
};

static const struct cmd_spec spec = {
    .synopsis = "usage: jclip download [options]\n",
    .opts = options,
    .epilogue = "Prints the snapshot directory: jclip info -m \"$(jclip download)\" works.\n",
};

/* Progress on stderr: redrawn in place on a terminal, a line every few seconds elsewhere. */
struct progress {
    bool tty;
    int width;   /* of the line being redrawn; 0 when none is open */
    double last; /* when the last update was shown */
};

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* Ends a line being redrawn, so that what follows starts on its own line. */
static void end_line(struct progress *pr)
{
    if (pr->width) {
        fputc('\n', stderr);
        pr->width = 0;
    }
}

static void note(struct progress *pr, const char *file, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void note(struct progress *pr, const char *file, const char *fmt, ...)
{
    va_list ap;
    end_line(pr);
    fprintf(stderr, "%s: %s: ", cmd_prefix, file);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* 284 -> "284 B", 19049748 -> "19.0 MB" (decimal units, as the Hub shows sizes) */
static const char *human(char *buf, size_t cap, uint64_t n)
{
    if (n < 1000)
        snprintf(buf, cap, "%d B", (int)n);
    else if (n < 1000000)
        snprintf(buf, cap, "%.1f kB", n / 1e3);
    else if (n < 1000000000)
        snprintf(buf, cap, "%.1f MB", n / 1e6);
    else
        snprintf(buf, cap, "%.2f GB", n / 1e9);
    return buf;
}

static void draw(struct progress *pr, const struct jc_download_progress *p, bool done)
{
    char a[32], b[32], line[512];
    int n;

    if (p->size)
        n = snprintf(line, sizeof line, "%s: %s: %s of %s (%d%%)%s", cmd_prefix, p->file,
                     human(a, sizeof a, p->done), human(b, sizeof b, p->size),
                     (int)(100.0 * p->done / p->size), done ? ", done" : "");
    else
        n = snprintf(line, sizeof line, "%s: %s: %s%s", cmd_prefix, p->file,
                     human(a, sizeof a, p->done), done ? ", done" : "");
    /* blanks over the rest of a longer previous line */
    fprintf(stderr, "\r%s%*s", line, pr->width > n ? pr->width - n : 0, "");
    pr->width = n;
    if (done)
        end_line(pr);
    fflush(stderr);
}

static void on_progress(void *ctx, const struct jc_download_progress *p)
{
    struct progress *pr = ctx;
    double t;

    switch (p->event) {
    case JC_DL_CACHED:
        note(pr, p->file, "up to date");
        break;
    case JC_DL_WAIT:
        note(pr, p->file, "another process is downloading it; waiting");
        break;
    case JC_DL_START:
        if (p->done)
            note(pr, p->file, "resuming at byte %" PRIu64 " of %" PRIu64, p->done, p->size);
        else if (!pr->tty && p->size)
            note(pr, p->file, "downloading %" PRIu64 " bytes", p->size);
        else if (!pr->tty)
            note(pr, p->file, "downloading");
        pr->last = now();
        if (pr->tty)
            draw(pr, p, false);
        break;
    case JC_DL_DATA:
        t = now();
        if (t - pr->last < (pr->tty ? 0.2 : 5.0))
            break;
        pr->last = t;
        if (pr->tty)
            draw(pr, p, false);
        else if (p->size)
            note(pr, p->file, "%" PRIu64 " of %" PRIu64 " bytes", p->done, p->size);
        else
            note(pr, p->file, "%" PRIu64 " bytes", p->done);
        break;
    case JC_DL_DONE:
        if (pr->tty)
            draw(pr, p, true);
        else
            note(pr, p->file, "done, %" PRIu64 " bytes", p->done);
        break;
    }
}

int cmd_download(int argc, char **argv)
{
    const char *usage = cmd_usage(&spec);
    struct jc_download_opts o = {0};
    struct progress pr = {.tty = isatty(STDERR_FILENO)};
    bool progress = pr.tty;
    char *snapshot;
    int c, rc;

    while ((c = cmd_getopt(argc, argv, &spec)) != -1) {
        switch (c) {
        case OPT_REPO:
            o.repo = optarg;
            break;
        case OPT_REVISION:
            o.revision = optarg;
            break;
        case OPT_CACHE:
            if (!*optarg)
                return usage_error(usage, "--cache: the directory name is empty");
            o.cache = optarg;
            break;
        case OPT_PROGRESS:
            progress = true;
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
    if (progress) {
        o.progress = on_progress;
        o.ctx = &pr;
    }
    rc = jc_download(&o, &snapshot);
    end_line(&pr);
    if (rc == JC_EINVAL) /* only the options are checked so */
        return usage_error(usage, "%s", jc_errmsg());
    if (rc < 0) {
        error("%s", jc_errmsg());
        return EXIT_FAIL;
    }
    printf("%s\n", snapshot);
    free(snapshot);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        error("cannot write to stdout");
        return EXIT_FAIL;
    }
    return EXIT_OK;
}
