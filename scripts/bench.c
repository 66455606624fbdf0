/*
 * jclip-bench: throughput of the towers on a model directory (the full-size test model by
 * default: weights do not change speed), reported against this machine's own OpenBLAS
 * SGEMM peak measured in the same run with the same thread count.
 *
 * FLOPs counted (multiply-adds as 2), per spec dimensions:
 *   text, L tokens:  layers * (2L*D*3D + 2L*D*D + 2L*D*2I + 2L*I*D + 4L^2*D)
 *   image, T = g*g+1 tokens: 2*g*g*(3P^2)*W
 *                    + layers * (2T*W*3W + 2T*W*W + 2T*W*2Hm + 2T*Hm*W + 4T^2*W)
 * Element-wise work (norms, activations, softmax) is not counted, so an efficiency of
 * 100% would mean those cost nothing. Where OPENBLAS_CORETYPE holds a core type below the
 * CPU's best, a second column sets every row against the best core type's peak, measured
 * in a child process that runs with it.
 *
 * Where OpenBLAS rounds rows by their place in a group (Haswell's kernels: groups of 12),
 * the "unaligned" rows run the same workloads without starting each text and image at a
 * multiple of the group, alternating with the aligned runs: what batch invariance costs.
 *
 * The photo rows use 4032 x 3024 JPEGs (4:2:0, quality 90, about 3 MB) made here from the
 * golden pictures with noise (scripts/photo.c): end to end through the jclip binary, exact and
 * with --draft, as images/s and as a fraction of the from-pixels rate of the same run; and
 * decoding alone, one thread, per megapixel.
 *
 * The server rows start `jclip serve` on a free loopback port and drive it with 32 HTTP
 * clients (scripts/serve-load.mjs, with Node) sending one to three captions or one JPEG per
 * request, back to back: items per second finished within the window, as a fraction of the
 * CLI's in-process rate at its default batch (32 captions; 16 images, from pixels, so the
 * server's JPEG decoding counts against it), with the requests' median and 99th-percentile
 * latency.
 *
 * The batch-1 caption row also says at what rate it read the text tower's weights, against
 * the machine's read bandwidth measured in the same run (every thread summing its share of
 * a 512 MiB buffer), and how far it is from that floor; where products of few rows take the
 * kernels' linear_few (lib/pool.c), the next row runs the same caption through OpenBLAS,
 * alternating with it. The search row runs `jclip similarity --text ... --against
 * INDEX.npy --top 5` over 100,000 stored rows, process start to exit, split into start-up,
 * the caption and the search.
 *
 * usage: jclip-bench [MODEL_DIR [JCLIP_BINARY [JPEG]]]
 */
#include "jclip.h"
#include "compute.h"
#include "kernels.h"
#ifdef JC_X86_KERNELS
#include "x86.h"
#endif
#include "photo.h"

#include <cjson/cJSON.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

static void die(const char *what)
{
    fprintf(stderr, "jclip-bench: %s: %s\n", what, jc_errmsg());
    exit(1);
}

static double text_flops(const struct jc_text_dims *d, double L)
{
    double D = d->dim, I = d->intermediate;
    return d->layers *
           (2 * L * D * 3 * D + 2 * L * D * D + 2 * L * D * 2 * I + 2 * L * I * D + 4 * L * L * D);
}

static double image_flops(const struct jc_vision_dims *v)
{
    double g = v->image_size / v->patch_size, T = g * g + 1, W = v->width, H = v->mlp_hidden;
    double P = v->patch_size;
    return 2 * g * g * 3 * P * P * W +
           v->layers * (2 * T * W * 3 * W + 2 * T * W * W + 2 * T * W * 2 * H + 2 * T * H * W +
                        4 * T * T * W);
}

/* Bytes of the text tower's linear-layer weights: what one caption must read once. */
static double text_weight_bytes(const struct jc_text_dims *d)
{
    double D = d->dim, I = d->intermediate;
    return 4.0 * d->layers * (D * 3 * D + D * D + D * 2 * I + I * D);
}

/*
 * The machine's read bandwidth: every thread sums its share of a 512 MiB buffer (16 times
 * the largest L3 here), best of 5 passes, in GB/s.
 */
struct read_run {
    const uint64_t *buf;
    size_t n, per;
    uint64_t sum[JC_MAX_THREADS];
};

typedef uint64_t u64x4 __attribute__((vector_size(32), aligned(8)));

static void read_job(void *arg, int job, int thread)
{
    struct read_run *r = arg;
    const uint64_t *p = r->buf + (size_t)job * r->per;
    size_t n = r->n - (size_t)job * r->per < r->per ? r->n - (size_t)job * r->per : r->per;
    u64x4 s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0};
    for (size_t i = 0; i + 16 <= n; i += 16) {
        s0 += *(const u64x4 *)(p + i);
        s1 += *(const u64x4 *)(p + i + 4);
        s2 += *(const u64x4 *)(p + i + 8);
        s3 += *(const u64x4 *)(p + i + 12);
    }
    s0 += s1 + s2 + s3;
    r->sum[thread] += s0[0] + s0[1] + s0[2] + s0[3];
}

static double read_bandwidth(int threads)
{
    struct read_run r = {0};
    r.n = (size_t)64 << 20;
    uint64_t *buf = malloc(r.n * sizeof *buf);
    double best = 0;
    if (!buf)
        return 0;
    for (size_t i = 0; i < r.n; i++)
        buf[i] = i;
    r.buf = buf;
    r.per = (r.n + threads - 1) / threads;
    for (int rep = 0; rep < 5; rep++) {
        double t0 = now();
        jc_pool_run(threads, read_job, &r);
        double gb = r.n * sizeof *buf / (now() - t0) * 1e-9;
        best = gb > best ? gb : best;
    }
    free(buf);
    return best;
}

/*
 * The SGEMM peak is measured before every workload and once more at the end, and every
 * row is set against the best of those: a host that is busy for a while lowers one sample,
 * not the reference. Rows wait for the last sample before they are printed.
 */
static double peak, peak_low = 1e30;
static int peak_samples, peak_threads;

/*
 * Where the user's OPENBLAS_CORETYPE is below the CPU's best, the best core type's peak,
 * measured in a child process run with it (OpenBLAS picks its kernels when loaded), so
 * every row is also set against what this machine can do; else 0.
 */
static double best_peak;
static const char *best_core;

static void sample_best_peak(void)
{
    const char *user = getenv("OPENBLAS_CORETYPE");
    best_core = jc_blas_best_coretype();
    if (!user || !*user || !best_core || !jc_blas_coretype_below(jc_blas_corename(), best_core))
        return;
    char threads[16], cmd[256];
    snprintf(threads, sizeof threads, "%d", peak_threads);
    snprintf(cmd, sizeof cmd, "env -u OPENBLAS_L2_SIZE OPENBLAS_CORETYPE=%s /proc/%d/exe --peak %s",
             best_core, (int)getpid(), threads);
    FILE *p = popen(cmd, "r");
    if (!p || fscanf(p, "%lf", &best_peak) != 1)
        best_peak = 0;
    if (p)
        pclose(p);
}

static double time_texts(struct jc_model *m, size_t n, size_t len, int reps);

static double read_bandwidth(int threads);

/*
 * The batch-1 caption, the machine's read bandwidth and the 512-token text are measured
 * at every peak sample too while the model is open, and their rows show the best of all:
 * the peak is the best of samples spread over the run, and on a shared host a slow spell
 * can cover all the consecutive runs of one row (a 512-token text took 0.8-1.0 s here,
 * and the caption's ratio to the floor was 1.35 and 1.83 in two runs of one build).
 */
static struct jc_model *long_model;
static double t512 = 1e30, c1 = 1e30, bw;
static int spread_samples;

static void sample_peak(void)
{
    double g = jc_blas_peak_gflops(peak_threads, 2048);
    peak = g > peak ? g : peak;
    peak_low = g < peak_low ? g : peak_low;
    peak_samples++;
    if (long_model) {
        c1 = fmin(c1, time_texts(long_model, 1, 16, 5));
        bw = fmax(bw, read_bandwidth(peak_threads));
        t512 = fmin(t512, time_texts(long_model, 1, 512, 1));
        spread_samples++;
    }
}

static struct bench_row {
    const char *name, *unit, *note; /* note: after the columns, or NULL */
    double value, flops_per_s;      /* flops_per_s < 0: no efficiency to show */
} rows[64];
static int n_rows;

static void row_note(const char *name, double value, const char *unit, double flops_per_s,
                     const char *note)
{
    sample_peak(); /* after this row's workload, before the next one's */
    if (n_rows < (int)(sizeof rows / sizeof *rows))
        rows[n_rows++] = (struct bench_row){name, unit, note, value, flops_per_s};
}

static void row(const char *name, double value, const char *unit, double flops_per_s)
{
    row_note(name, value, unit, flops_per_s, NULL);
}

/* A row recorded before its figures were final (row index i), given them. */
static void fill_row(int i, double value, double flops_per_s, const char *note)
{
    if (i < n_rows) {
        rows[i].value = value;
        rows[i].flops_per_s = flops_per_s;
        rows[i].note = note;
    }
}

static void print_rows(void)
{
    for (int i = 0; i < n_rows; i++) {
        if (!rows[i].unit) { /* a row with nothing measured: its note says why */
            printf("%-44s %s\n", rows[i].name, rows[i].note);
            continue;
        }
        if (rows[i].flops_per_s < 0)
            printf("%-44s %12.2f %-10s %7s", rows[i].name, rows[i].value, rows[i].unit, "");
        else
            printf("%-44s %12.2f %-10s %6.1f%%", rows[i].name, rows[i].value, rows[i].unit,
                   100.0 * rows[i].flops_per_s * 1e-9 / peak);
        if (best_peak > 0 && rows[i].flops_per_s < 0)
            printf(" %7s", "");
        else if (best_peak > 0)
            printf(" %6.1f%%", 100.0 * rows[i].flops_per_s * 1e-9 / best_peak);
        printf(rows[i].note ? "   %s\n" : "\n", rows[i].note);
    }
}

/* Seconds per call of embedding n texts of `len` tokens, best of `reps`. */
static double time_texts(struct jc_model *m, size_t n, size_t len, int reps)
{
    int32_t *ids = malloc(len * sizeof *ids);
    const int32_t **seqs = malloc(n * sizeof *seqs);
    size_t *lens = malloc(n * sizeof *lens);
    float *out = malloc(n * (size_t)jc_model_dim(m) * sizeof *out);
    double best = 1e30;

    ids[0] = 101;
    for (size_t i = 1; i + 1 < len; i++)
        ids[i] = 1996 + (int32_t)(i * 37 % 5000);
    ids[len - 1] = 102;
    for (size_t i = 0; i < n; i++) {
        seqs[i] = ids;
        lens[i] = len;
    }
    for (int r = 0; r <= reps; r++) { /* the first run warms up */
        double t0 = now();
        if (jc_embed_texts(m, seqs, lens, n, 0, out) < 0)
            die("embed texts");
        double t = now() - t0;
        if (r && t < best)
            best = t;
    }
    free(ids);
    free(seqs);
    free(lens);
    free(out);
    return best;
}

static double time_images(struct jc_model *m, const float *pixels, size_t n, int reps)
{
    float *out = malloc(n * (size_t)jc_model_dim(m) * sizeof *out);
    double best = 1e30;
    for (int r = 0; r <= reps; r++) {
        double t0 = now();
        if (jc_embed_images(m, pixels, n, 0, out) < 0)
            die("embed images");
        double t = now() - t0;
        if (r && t < best)
            best = t;
    }
    free(out);
    return best;
}

/*
 * Where OpenBLAS rounds rows by their place in a group (an unroll above 1: Haswell's
 * kernels), every text and image starts at a multiple of the group so batching changes no
 * bit. These rows run the same workloads unaligned, as if the unroll were 1 (one call per
 * thread, batching then changes bits), and say what the alignment costs.
 */
static void unaligned_rows(struct jc_model *m, const float *pixels, double fi, double fc,
                           double fc64)
{
    static char notes[3][96];
    const struct jc_blas_rows probed = *jc_blas_rows(), unaligned = {.unroll = 1,
                                                                     .alike = 1,
                                                                     .cols = probed.cols,
                                                                     .kblock = probed.kblock};
    double a[3] = {1e30, 1e30, 1e30}, u[3] = {1e30, 1e30, 1e30};
    if (probed.unroll == 1)
        return;
    /*
     * Alternately, so that a busy spell of a shared host falls on both, and the best of five
     * each: on a 2-core Zen 3 guest single runs of the same images batch swung by 10%.
     */
    for (int rep = 0; rep < 5; rep++)
        for (int way = 0; way < 2; way++) {
            double *t = way ? u : a;
            jc_blas_set_rows(way ? &unaligned : &probed);
            t[0] = fmin(t[0], time_images(m, pixels, 16, 1));
            t[1] = fmin(t[1], time_texts(m, 1, 16, 4));
            t[2] = fmin(t[2], time_texts(m, 32, 64, 1));
        }
    jc_blas_set_rows(&probed);
    static const char *names[] = {"  unaligned: images, batch 16",
                                  "  unaligned: captions (16 tokens), batch 1",
                                  "  unaligned: texts (64 tokens), batch 32"};
    static const char *units[] = {"images/s", "captions/s", "texts/s"};
    const double n[] = {16, 1, 32}, f[] = {fi, fc, fc64};
    for (int i = 0; i < 3; i++) {
        snprintf(notes[i], sizeof notes[i], "aligned to %d rows: %.1f%% %s, same run",
                 probed.unroll, 100 * fabs(a[i] / u[i] - 1), a[i] > u[i] ? "slower" : "faster");
        row_note(names[i], n[i] / u[i], units[i], n[i] * f[i] / u[i], notes[i]);
    }
}

/* Runs argv with stdout to a pipe; seconds until the first byte, or until exit. */
static double first_output(char *const *argv, struct rusage *ru)
{
    int fd[2];
    posix_spawn_file_actions_t fa;
    pid_t pid;
    char c;
    int status;

    if (pipe(fd) < 0)
        return -1;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fd[1], 1);
    posix_spawn_file_actions_addclose(&fa, fd[0]);
    double t0 = now();
    if (posix_spawn(&pid, argv[0], &fa, NULL, argv, environ) != 0)
        return -1;
    close(fd[1]);
    ssize_t got = read(fd[0], &c, 1);
    double t = now() - t0;
    while (got > 0) {
        char buf[65536];
        got = read(fd[0], buf, sizeof buf);
    }
    close(fd[0]);
    wait4(pid, &status, 0, ru);
    posix_spawn_file_actions_destroy(&fa);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return -1;
    return t;
}

/* Runs argv with stdout to /dev/null; seconds until it exits, or -1 when it fails. */
static double to_exit(char *const *argv)
{
    posix_spawn_file_actions_t fa;
    pid_t pid;
    int status;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    double t0 = now();
    int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0 || waitpid(pid, &status, 0) != pid)
        return -1;
    double t = now() - t0;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? t : -1;
}

/* An n x d .npy of raw values (not normalised), as a stored search index. */
static bool write_index(const char *path, size_t n, size_t d)
{
    char hdr[256];
    size_t hl = jc_npy_header(hdr, sizeof hdr, n, d, NULL, 0);
    FILE *f = fopen(path, "wb");
    float *row = malloc(d * sizeof *row);
    uint32_t x = 12345;
    bool ok = f && row && fwrite(hdr, 1, hl, f) == hl;
    for (size_t i = 0; ok && i < n; i++) {
        for (size_t j = 0; j < d; j++, x = x * 1664525u + 1013904223u)
            row[j] = (float)((int32_t)x >> 8) * 0x1p-23f;
        ok = fwrite(row, sizeof *row, d, f) == d;
    }
    free(row);
    return f && !fclose(f) && ok;
}

/*
 * A search from the command line, process start to last line: one caption against 100,000
 * stored rows, --top 5, best of 5 with a warm page cache; split into the search (the same
 * against a one-row file subtracted), the caption (c1, measured in process) and the rest
 * (start-up: loading, the model, the tokenizer).
 */
static void search_row(const char *bin, const char *dir, int dim, double c1)
{
    char tmp[] = "/tmp/jclip-bench-search-XXXXXX", big[64], one[64];
    if (!mkdtemp(tmp))
        return;
    snprintf(big, sizeof big, "%s/index.npy", tmp);
    snprintf(one, sizeof one, "%s/one.npy", tmp);
    if (write_index(big, 100000, (size_t)dim) && write_index(one, 1, (size_t)dim)) {
        char *a[] = {(char *)bin, "similarity", "-m",    (char *)dir, "--text", "a photo of a cat",
                     "--against", big,          "--top", "5",         NULL};
        char *b[] = {(char *)bin, "similarity", "-m",    (char *)dir, "--text", "a photo of a cat",
                     "--against", one,          "--top", "5",         NULL};
        double ta = 1e30, tb = 1e30;
        to_exit(a); /* the page cache */
        for (int r = 0; r < 5; r++) {
            double t = to_exit(a), u = to_exit(b);
            ta = t >= 0 && t < ta ? t : ta;
            tb = u >= 0 && u < tb ? u : tb;
        }
        static char note[128];
        snprintf(note, sizeof note, "start-up %.0f ms, the caption %.0f ms, the search %.0f ms",
                 (tb - c1) * 1e3, c1 * 1e3, (ta - tb) * 1e3);
        if (ta < 1e30 && tb < 1e30)
            row_note("search 100,000 stored rows, --top 5", ta * 1e3, "ms", -1, note);
    }
    unlink(big);
    unlink(one);
    rmdir(tmp);
}

#define N_PHOTOS  16
#define PHOTO_W   4032
#define PHOTO_H   3024
#define PHOTO_MPX (PHOTO_W * PHOTO_H / 1e6)

/* Seconds per photo, one thread, best of 3 passes over the photos; decode (and resize). */
static double time_decode(uint8_t **jpeg, size_t *len, const struct jc_image_opts *o, bool whole,
                          int size, const float mean[3], const float std[3], float *px)
{
    double best = 1e30;
    const char *warn;
    for (int r = 0; r < 3; r++) {
        double t0 = now();
        for (int i = 0; i < N_PHOTOS; i++) {
            struct jc_image img;
            int rc = whole ? jc_image_decode(jpeg[i], len[i], "photo", o, &img)
                           : jc_image_decode_pixels(jpeg[i], len[i], "photo", o, size, mean, std,
                                                    px, &warn);
            if (rc < 0)
                die("decode photo");
            if (whole)
                jc_image_release(&img);
        }
        double t = (now() - t0) / N_PHOTOS;
        best = t < best ? t : best;
    }
    return best;
}

/* The 12-megapixel rows. */
static void photo_rows(const char *bin, const char *dir, double fi, double from_pixels, int size,
                       const float mean[3], const float std[3])
{
    static char units[4][96];
    char tmp[] = "/tmp/jclip-bench-XXXXXX", path[N_PHOTOS][64];
    uint8_t *jpeg[N_PHOTOS];
    size_t len[N_PHOTOS], bytes = 0;
    float *a = malloc(3 * (size_t)size * size * sizeof *a);
    float *b = malloc(3 * (size_t)size * size * sizeof *b);

    if (!mkdtemp(tmp) || !a || !b)
        die("photo rows");
    for (int i = 0; i < N_PHOTOS; i++) {
        if (jc_make_photo("tests/golden/images", PHOTO_W, PHOTO_H, (unsigned)i, &jpeg[i], &len[i]))
            exit(1);
        snprintf(path[i], sizeof path[i], "%s/p%02d.jpg", tmp, i);
        FILE *f = fopen(path[i], "wb");
        if (!f || fwrite(jpeg[i], 1, len[i], f) != len[i] || fclose(f))
            die("writing a photo");
        bytes += len[i];
    }
    printf("photos: %d of %d x %d, 4:2:0, quality 90, %.1f MB each on average\n", N_PHOTOS, PHOTO_W,
           PHOTO_H, bytes / (double)N_PHOTOS / 1e6);

    /* end to end: 96 photos (each file six times), three batches of 32, so decoding overlaps
       the tower as it does on a folder of photos; exact and draft */
    for (int draft = 0; draft <= 1; draft++) {
        char *argv[6 * N_PHOTOS + 10];
        int k = 0;
        argv[k++] = (char *)bin;
        argv[k++] = "embed-image";
        argv[k++] = "-m";
        argv[k++] = (char *)dir;
        argv[k++] = "-b";
        argv[k++] = "32";
        argv[k++] = "-f";
        argv[k++] = "npy";
        if (draft)
            argv[k++] = "--draft";
        for (int i = 0; i < 6 * N_PHOTOS; i++)
            argv[k++] = path[i % N_PHOTOS];
        argv[k] = NULL;
        struct rusage ru;
        double best = 1e30; /* the photos were just written: in the page cache */
        for (int r = 0; r < 2; r++) {
            double t0 = now();
            if (first_output(argv, &ru) < 0)
                die("jclip embed-image on the photos");
            double t = now() - t0;
            best = t < best ? t : best;
        }
        double rate = 6 * N_PHOTOS / best;
        snprintf(units[draft], sizeof units[draft], "%.0f%% of the from-pixels rate",
                 100 * rate / from_pixels);
        row_note(draft ? "12-MP photos, batch 32, end to end, --draft"
                       : "12-MP photos, batch 32, end to end, exact",
                 rate, "images/s", rate * fi, units[draft]);
    }

    /* decoding alone, one thread */
    const struct jc_image_opts exact = {0}, draft = {.draft = 2 * size};
    double de = time_decode(jpeg, len, &exact, true, size, mean, std, a);
    double dd = time_decode(jpeg, len, &draft, true, size, mean, std, a);
    double pe = time_decode(jpeg, len, &exact, false, size, mean, std, a);
    double pd = time_decode(jpeg, len, &draft, false, size, mean, std, a);
    row_note("12-MP photo decode, 1 thread, exact", de * 1e3 / PHOTO_MPX, "ms/MP", -1,
             "to a full-size RGB image");
    row_note("12-MP photo decode, 1 thread, --draft", dd * 1e3 / PHOTO_MPX, "ms/MP", -1,
             "to the reduced image");
    row_note("  decode + resize + crop, exact", pe * 1e3 / PHOTO_MPX, "ms/MP", -1,
             "as embed-image does it, row by row");
    row_note("  decode + resize + crop, --draft", pd * 1e3 / PHOTO_MPX, "ms/MP", -1, NULL);

    /* what --draft costs in fidelity: the 224 x 224 RGB against the exact one */
    double sum = 0;
    long max = 0;
    const char *warn;
    for (int i = 0; i < N_PHOTOS; i++) {
        if (jc_image_decode_pixels(jpeg[i], len[i], "photo", &exact, size, mean, std, a, &warn) <
                0 ||
            jc_image_decode_pixels(jpeg[i], len[i], "photo", &draft, size, mean, std, b, &warn) < 0)
            die("decode photo");
        for (size_t k = 0; k < 3 * (size_t)size * size; k++) {
            long d = lround(fabs(a[k] - b[k]) * std[k / ((size_t)size * size)] * 255);
            sum += (double)d;
            max = d > max ? d : max;
        }
    }
    snprintf(units[2], sizeof units[2], "mean |difference| in levels of 255; max %ld", max);
    row_note("  --draft against exact, 224x224 RGB", sum / (N_PHOTOS * 3.0 * size * size), "levels",
             -1, units[2]);

    for (int i = 0; i < N_PHOTOS; i++) {
        unlink(path[i]);
        free(jpeg[i]);
    }
    rmdir(tmp);
    free(a);
    free(b);
}

/*
 * Runs serve-load.mjs against the server at port; its JSON summary, or NULL. The clients run
 * niced: on a small machine they share the cores with the server, and the row measures the
 * server, not the clients' JSON work preempting its GEMM threads.
 */
static cJSON *load(int port, const char *args)
{
    char cmd[1024], out[4096];
    snprintf(
        cmd, sizeof cmd,
        "nice -n 19 node scripts/serve-load.mjs --url http://127.0.0.1:%d --clients 32 %s 2>&1",
        port, args);
    FILE *p = popen(cmd, "r");
    if (!p)
        return NULL;
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    if (pclose(p) != 0) {
        fprintf(stderr, "jclip-bench: %s: %s\n", cmd, out);
        return NULL;
    }
    return cJSON_Parse(out);
}

static double num(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

/*
 * The server rows: captions and JPEGs through HTTP from 32 clients, against the CLI's rates
 * at batch 32 (caption_rate, image_rate) measured in-process in this run.
 */
static void server_rows(const char *bin, const char *dir, const char *jpeg, double caption_rate,
                        double caption_flops, double image_rate, double image_rate_32,
                        double image_flops)
{
    static char notes[2][160];
    char log[] = "/tmp/jclip-bench-serve-XXXXXX";
    int fd = mkstemp(log), port = 0;
    posix_spawn_file_actions_t fa;
    pid_t pid;
    char *argv[] = {(char *)bin, "serve", "-m", (char *)dir, "--port", "0", NULL};

    if (fd < 0)
        return;
    unlink(log);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fd, 2);
    if (posix_spawn(&pid, bin, &fa, NULL, argv, environ) != 0) {
        posix_spawn_file_actions_destroy(&fa);
        close(fd);
        return;
    }
    posix_spawn_file_actions_destroy(&fa);
    for (int i = 0; i < 600 && !port; i++) { /* the ready line, within a minute */
        char buf[512] = "";
        ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
        const char *at = n > 0 ? strstr(buf, "listening on http://127.0.0.1:") : NULL;
        if (at)
            port = atoi(at + strlen("listening on http://127.0.0.1:"));
        else
            usleep(100000);
    }
    /* 16-token captions, as the caption rows have them */
    char texts[] = "/tmp/jclip-bench-texts-XXXXXX";
    int tfd = mkstemp(texts);
    FILE *tf = tfd >= 0 ? fdopen(tfd, "w") : NULL;
    for (int i = 0; tf && i < 64; i++)
        fprintf(tf, "a photo of %d grey cats sitting on a wooden table by the window\n", i);
    if (tf)
        fclose(tf);
    cJSON *r;
    char args[512];
    snprintf(args, sizeof args, "--seconds 15 --mix texts --texts %s", texts);
    if (port && (r = load(port, args))) {
        double rate = num(r, "texts_per_s");
        snprintf(notes[0], sizeof notes[0],
                 "%.0f%% of the CLI's batch 32; p50 %.0f ms, p99 %.0f ms",
                 100 * rate / caption_rate, num(r, "p50_ms"), num(r, "p99_ms"));
        row_note("server, captions, 32 HTTP clients", rate, "captions/s", rate * caption_flops,
                 notes[0]);
        cJSON_Delete(r);
    }
    snprintf(args, sizeof args, "--seconds 40 --mix images --images %s", jpeg);
    if (port && (r = load(port, args))) {
        double rate = num(r, "images_per_s");
        snprintf(
            notes[1], sizeof notes[1],
            "%.0f%% of the CLI's batch 16, %.0f%% of 32, from pixels; p50 %.0f ms, p99 %.0f ms",
            100 * rate / image_rate, 100 * rate / image_rate_32, num(r, "p50_ms"),
            num(r, "p99_ms"));
        row_note("server, JPEGs, 32 HTTP clients", rate, "images/s", rate * image_flops, notes[1]);
        cJSON_Delete(r);
    }
    if (!port)
        fprintf(stderr, "jclip-bench: jclip serve did not start; no server rows\n");
    unlink(texts);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    close(fd);
}

/*
 * One 8192-token text in a process of its own (in `precision`, or the default when NULL):
 * its seconds and its peak RSS in kB, both 0 when it failed.
 */
static void long_text(const char *dir, const char *precision, double *t8k, long *hwm_kb)
{
    char *self[] = {"/proc/self/exe", "--long-text", (char *)dir, (char *)precision, NULL};
    struct rusage ru;
    FILE *res = tmpfile();
    *t8k = 0;
    *hwm_kb = 0;
    fflush(stdout);
    if (!res)
        return;
    posix_spawn_file_actions_t fa;
    pid_t pid;
    int status;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fileno(res), 1);
    if (posix_spawn(&pid, self[0], &fa, NULL, self, environ) == 0 &&
        wait4(pid, &status, 0, &ru) == pid && WIFEXITED(status) && !WEXITSTATUS(status)) {
        rewind(res);
        if (fscanf(res, "%lf %ld", t8k, hwm_kb) != 2)
            *t8k = *hwm_kb = 0;
    }
    posix_spawn_file_actions_destroy(&fa);
    fclose(res);
}

/*
 * --precision bf16 where the kernel table has bf16 products: the model's load time (its
 * matrices packed) and the rows the targets name, each against fp32 in this run. Where
 * the table has none, one line says so.
 */
struct fp32_times {
    double load, t32, c256, c1, t8k;
    long hwm_kb;
};

static void bf16_rows(const char *dir, const float *pixels, const struct jc_model_info *in,
                      const struct fp32_times *f, const char *label)
{
    static char names[2][6][64], notes_[2][6][96];
    static int call;
    char(*name)[64] = names[call], (*notes)[96] = notes_[call];
    call = (call + 1) % 2;
    const char *isa = jc_bf16_instructions();
    if (!isa) {
        snprintf(notes[0], sizeof notes[0],
                 "not measured: the %s kernels have no bf16 "
                 "instructions",
                 jc_isa_name());
        row_note("bf16 (--precision bf16)", 0, NULL, -1, notes[0]);
        return;
    }
    static const char *const what[] = {
        "model load, both towers",
        "images, batch 32, from pixels",
        "captions (16 tokens), batch 256",
        "captions (16 tokens), batch 1",
        "one 8192-token text",
    };
    for (int i = 0; i < 5; i++)
        snprintf(name[i], sizeof name[i], "%s: %s", label, what[i]);
    struct jc_model *m;
    if (jc_set_precision("bf16") != 0)
        die("bf16");
    double t0 = now();
    if (jc_model_open(&m, dir, JC_LOAD_TEXT | JC_LOAD_VISION) < 0)
        die(dir);
    double load = now() - t0;
    const double fi = image_flops(&in->vision), fc = text_flops(&in->text, 16);
    snprintf(notes[0], sizeof notes[0], "%s; fp32 %.0f ms", isa, f->load * 1e3);
    row_note(name[0], load * 1e3, "ms", -1, notes[0]);
    double t32 = time_images(m, pixels, 32, 4);
    snprintf(notes[1], sizeof notes[1], "%.2fx fp32 (target 1.7x)", f->t32 / t32);
    row_note(name[1], 32 / t32, "images/s", 32 * fi / t32, notes[1]);
    double c256 = time_texts(m, 256, 16, 4);
    snprintf(notes[2], sizeof notes[2], "%.2fx fp32 (target 1.7x)", f->c256 / c256);
    row_note(name[2], 256 / c256, "captions/s", 256 * fc / c256, notes[2]);
    double c1 = time_texts(m, 1, 16, 10);
    snprintf(notes[3], sizeof notes[3], "%.2f of fp32's time (target 0.65)", c1 / f->c1);
    row_note(name[3], c1 * 1e3, "ms", fc / c1, notes[3]);
    jc_model_free(m);
    double t8k;
    long hwm_kb;
    long_text(dir, "bf16", &t8k, &hwm_kb);
    snprintf(notes[4], sizeof notes[4], "%.2fx fp32 (target 1.4x)", t8k > 0 ? f->t8k / t8k : 0);
    row_note(name[4], t8k * 1e3, "ms", t8k > 0 ? text_flops(&in->text, 8192) / t8k : 0, notes[4]);
    snprintf(notes[5], sizeof notes[5], "%.2f of fp32's %.1f MB (target 0.6)",
             f->hwm_kb ? (double)hwm_kb / f->hwm_kb : 0, f->hwm_kb / 1024.0);
    row_note("  its peak RSS (VmHWM)", hwm_kb / 1024.0, "MB", -1, notes[5]);
    if (jc_set_precision("fp32") != 0)
        die("fp32");
}

/*
 * Where the avx512 table took AMX tiles, the bf16 rows again on its AVX512-BF16 kernels: the
 * table copied with them in place of the tiles (pairs no longer swapped, so only for models
 * opened meanwhile), and JCLIP_AMX=0 for the long text's own process.
 */
static void bf16_rows_without_tiles(const char *dir, const float *pixels,
                                    const struct jc_model_info *in, const struct fp32_times *f)
{
#ifdef JC_X86_KERNELS
    const struct jc_kernels *was = jc_rt.kernels;
    if (!was->bf16 || strcmp(was->bf16, "AMX-BF16"))
        return;
    struct jc_kernels t = *was;
    t.bf16 = "AVX512-BF16";
    t.bf16_swapped = false;
    t.linear_bf16 = jc_linear_bf16_avx512;
    jc_rt.kernels = &t;
    setenv("JCLIP_AMX", "0", 1);
    bf16_rows(dir, pixels, in, f, "bf16 without AMX");
    unsetenv("JCLIP_AMX");
    jc_rt.kernels = was;
#else
    (void)dir, (void)pixels, (void)in, (void)f;
#endif
}

int main(int argc, char **argv)
{
    struct jc_model *m;
    /* The child that measures the best core type's peak: print it, exit. */
    if (argc == 3 && !strcmp(argv[1], "--peak")) {
        jc_set_threads(atoi(argv[2]));
        printf("%.9g\n", jc_blas_peak_gflops(jc_threads(), 2048));
        return 0;
    }
    /*
     * The child that measures a command's peak RSS, as time(1) does: spawned from this small
     * process, the command's ru_maxrss is its own (spawned from the bench, it would also count
     * the bench's pages, which a vfork-style spawn shares until exec). Prints it in kB.
     */
    if (argc > 2 && !strcmp(argv[1], "--maxrss")) {
        pid_t pid;
        int status;
        struct rusage ru;
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
        if (posix_spawn(&pid, argv[2], &fa, NULL, argv + 2, environ) != 0 ||
            wait4(pid, &status, 0, &ru) != pid || !WIFEXITED(status) || WEXITSTATUS(status))
            return 1;
        printf("%ld\n", ru.ru_maxrss);
        return 0;
    }
    /* The child of the long-text row: time one 8192-token text, print it, exit. */
    if ((argc == 3 || argc == 4) && !strcmp(argv[1], "--long-text")) {
        jc_set_threads(0);
        if (argc == 4 && jc_set_precision(argv[3]) != 0)
            die(argv[3]);
        if (jc_model_open(&m, argv[2], JC_LOAD_TEXT) < 0)
            die(argv[2]);
        double t = time_texts(m, 1, 8192, 1);
        /* VmHWM is this process's own peak: ru_maxrss would also count the parent's pages
           that a vfork-style spawn shared until exec */
        long hwm = 0;
        char line[256];
        FILE *st = fopen("/proc/self/status", "r");
        while (st && fgets(line, sizeof line, st))
            if (!strncmp(line, "VmHWM:", 6))
                hwm = strtol(line + 6, NULL, 10);
        if (st)
            fclose(st);
        printf("%.9g %ld\n", t, hwm);
        return 0;
    }
    const char *dir = argc > 1 ? argv[1] : "tests/models/full";
    const char *bin = argc > 2 ? argv[2] : "./jclip";
    const char *jpeg = argc > 3 ? argv[3] : "tests/golden/images/rocket.jpg";
    struct jc_model_info in;
    int size;
    float mean[3], std[3];

    jc_set_threads(0);
    int threads = jc_threads();
    peak_threads = threads;
    sample_peak();
    sample_best_peak();
    double load = now();
    if (jc_model_open(&m, dir, JC_LOAD_TEXT | JC_LOAD_VISION) < 0 || jc_model_info(m, &in) < 0)
        die(dir);
    load = now() - load;
    jc_model_preprocess(m, &size, mean, std);
    long_model = m;

    printf("jclip-bench: %s, %d threads, kernels %s, OpenBLAS core type %s, GEMM rows in groups "
           "of %d\n",
           dir, threads, jc_isa_name(), jc_blas_corename(), jc_blas_row_unroll());

    /* Images from decoded pixels. */
    struct jc_image img;
    if (jc_image_load(jpeg, NULL, &img) < 0)
        die(jpeg);
    size_t per = 3 * (size_t)size * size;
    float *pixels = malloc(32 * per * sizeof *pixels);
    jc_image_preprocess(&img, size, mean, std, pixels);
    jc_image_release(&img);
    for (int i = 1; i < 32; i++)
        memcpy(pixels + i * per, pixels, per * sizeof *pixels);
    double fi = image_flops(&in.vision);
    double t1 = time_images(m, pixels, 1, 5);
    row("images, batch 1, from pixels", 1 / t1, "images/s", fi / t1);
    double t16 = time_images(m, pixels, 16, 4);
    row("images, batch 16, from pixels", 16 / t16, "images/s", 16 * fi / t16);
    double t32 = time_images(m, pixels, 32, 4);
    row("images, batch 32, from pixels", 32 / t32, "images/s", 32 * fi / t32);

    /* Texts. */
    double fc = text_flops(&in.text, 16);
    c1 = fmin(c1, time_texts(m, 1, 16, 10));
    bw = fmax(bw, read_bandwidth(threads));
    const double wb = text_weight_bytes(&in.text);
    const int r1 = n_rows;
    row("captions (16 tokens), batch 1", 0, "captions/s", 0); /* filled in below */
    /* the same through OpenBLAS, alternating with the kernels' path, same run */
    const struct jc_blas_rows probed_rows = *jc_blas_rows();
    if (probed_rows.kblock) {
        struct jc_blas_rows no_few = probed_rows;
        no_few.kblock = 0;
        double few = 1e30, blas = 1e30;
        for (int rep = 0; rep < 3; rep++) {
            jc_blas_set_rows(&no_few);
            blas = fmin(blas, time_texts(m, 1, 16, 4));
            jc_blas_set_rows(&probed_rows);
            few = fmin(few, time_texts(m, 1, 16, 4));
        }
        static char few_note[96];
        snprintf(few_note, sizeof few_note, "%.2f ms; the kernels' linear_few %.2f ms: %.2fx",
                 blas * 1e3, few * 1e3, blas / few);
        row_note("  through OpenBLAS: captions (16), batch 1", 1 / blas, "captions/s", fc / blas,
                 few_note);
    }
    double c32 = time_texts(m, 32, 16, 4);
    row("captions (16 tokens), batch 32", 32 / c32, "captions/s", 32 * fc / c32);
    double c256 = time_texts(m, 256, 16, 4);
    row("captions (16 tokens), batch 256", 256 / c256, "captions/s", 256 * fc / c256);
    double fc64 = text_flops(&in.text, 64);
    double c64 = time_texts(m, 32, 64, 4);
    row("texts (64 tokens), batch 32", 32 / c64, "texts/s", 32 * fc64 / c64);
    t512 = fmin(t512, time_texts(m, 1, 512, 2));
    const int r512 = n_rows;
    row("one 512-token text", 0, "ms", 0); /* filled in below */
    unaligned_rows(m, pixels, fi, fc, fc64);
    sample_peak();
    long_model = NULL;
    jc_model_free(m);
    static char stream_note[200], note512[64];
    snprintf(stream_note, sizeof stream_note,
             "%.2f ms: weights read at %.1f GB/s, the machine reads %.1f GB/s: %.2fx the "
             "floor of %.2f ms (best of %d spells each)",
             c1 * 1e3, wb / c1 * 1e-9, bw, c1 / (wb / (bw * 1e9)), wb / (bw * 1e9) * 1e3,
             spread_samples + 1);
    fill_row(r1, 1 / c1, fc / c1, stream_note);
    snprintf(note512, sizeof note512, "best of %d spells spread over the run", spread_samples + 1);
    fill_row(r512, t512 * 1e3, text_flops(&in.text, 512) / t512, note512);

    /* The long text in a process of its own, so its peak RSS is its own. */
    double t8k = 0;
    long hwm_kb = 0;
    struct rusage ru;
    long_text(dir, NULL, &t8k, &hwm_kb);
    row("one 8192-token text", t8k * 1e3, "ms", t8k > 0 ? text_flops(&in.text, 8192) / t8k : 0);
    static char rss_note[64];
    snprintf(rss_note, sizeof rss_note, "mapped text weights %.1f MB",
             in.text.params * 4 / 1048576.0);
    row_note("  its peak RSS (VmHWM)", hwm_kb / 1024.0, "MB", -1, rss_note);
    const struct fp32_times f32 = {load, t32, c256, c1, t8k, hwm_kb};
    bf16_rows(dir, pixels, &in, &f32, "bf16");
    bf16_rows_without_tiles(dir, pixels, &in, &f32);
    free(pixels);

    /* Whole processes: end to end from JPEG files, and start-up to first caption. */
    char *jpegs[64 + 8];
    int k = 0;
    jpegs[k++] = (char *)bin;
    jpegs[k++] = "embed-image";
    jpegs[k++] = "-m";
    jpegs[k++] = (char *)dir;
    jpegs[k++] = "-b";
    jpegs[k++] = "32";
    for (int i = 0; i < 64; i++)
        jpegs[k++] = (char *)jpeg;
    jpegs[k] = NULL;
    first_output(jpegs, &ru); /* warm the page cache */
    double t0 = now();
    if (first_output(jpegs, &ru) >= 0) {
        double t = now() - t0;
        row("images, batch 32, end to end from JPEG", 64 / t, "images/s", 64 * fi / t);
    }
    photo_rows(bin, dir, fi, 32 / t32, size, mean, std);

    char *cap[] = {(char *)bin, "embed-text", "-m", (char *)dir, "a photo of a cat", NULL};
    first_output(cap, &ru);
    double best = 1e30;
    for (int r = 0; r < 5; r++) {
        double t = first_output(cap, &ru);
        if (t >= 0 && t < best)
            best = t;
    }
    row("process start to first caption embedding", best * 1e3, "ms", -1);
    /* the target: no more than the text weights, mapped, and 64 MB */
    char cmd[4096];
    long cap_rss = 0;
    snprintf(cmd, sizeof cmd, "/proc/%d/exe --maxrss '%s' embed-text -m '%s' 'a photo of a cat'",
             (int)getpid(), bin, dir);
    FILE *p = popen(cmd, "r");
    if (!p || fscanf(p, "%ld", &cap_rss) != 1)
        cap_rss = 0;
    if (p)
        pclose(p);
    static char cap_note[64];
    snprintf(cap_note, sizeof cap_note, "text weights %+.1f MB",
             cap_rss / 1024.0 - in.text.params * 4 / 1048576.0);
    row_note("  its peak RSS (ru_maxrss)", cap_rss / 1024.0, "MB", -1, cap_note);

    search_row(bin, dir, in.embed_dim, c1);
    server_rows(bin, dir, jpeg, 32 / c32, fc, 16 / t16, 32 / t32, fi);

    printf("%-44s %12s %-10s %7s%s\n", "workload", "value", "unit", "of peak",
           best_peak > 0 ? " of best" : "");
    printf("%-44s %12.2f %-10s %6.1f%%", "OpenBLAS SGEMM 2048^3", peak, "GFLOP/s", 100.0);
    if (best_peak > 0)
        printf(" %6.1f%%", 100 * peak / best_peak);
    printf("   (best of %d samples between the rows, lowest %.2f)\n", peak_samples, peak_low);
    if (best_peak > 0) {
        char name[64];
        snprintf(name, sizeof name, "OpenBLAS SGEMM 2048^3 as %s", best_core);
        printf("%-44s %12.2f %-10s %7s %6.1f%%   (OPENBLAS_CORETYPE=%s is below the CPU's best)\n",
               name, best_peak, "GFLOP/s", "", 100.0, getenv("OPENBLAS_CORETYPE"));
    }
    print_rows();
    return 0;
}
