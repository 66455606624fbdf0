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
 * 100% would mean those cost nothing.
 *
 * usage: jclip-bench [MODEL_DIR [JCLIP_BINARY [JPEG]]]
 */
#include "jclip.h"

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

/*
 * The SGEMM peak is measured before every workload and once more at the end, and every
 * row is set against the best of those: a host that is busy for a while lowers one sample,
 * not the reference. Rows wait for the last sample before they are printed.
 */
static double peak, peak_low = 1e30;
static int peak_samples, peak_threads;

static void sample_peak(void)
{
    double g = jc_blas_peak_gflops(peak_threads, 2048);
    peak = g > peak ? g : peak;
    peak_low = g < peak_low ? g : peak_low;
    peak_samples++;
}

static struct bench_row {
    const char *name, *unit;
    double value, flops_per_s; /* flops_per_s < 0: no efficiency to show */
} rows[16];
static int n_rows;

static void row(const char *name, double value, const char *unit, double flops_per_s)
{
    sample_peak(); /* after this row's workload, before the next one's */
    if (n_rows < (int)(sizeof rows / sizeof *rows))
        rows[n_rows++] = (struct bench_row){name, unit, value, flops_per_s};
}

static void print_rows(void)
{
    for (int i = 0; i < n_rows; i++) {
        if (rows[i].flops_per_s < 0)
            printf("%-44s %12.1f %-10s\n", rows[i].name, rows[i].value, rows[i].unit);
        else
            printf("%-44s %12.2f %-10s %6.1f%%\n", rows[i].name, rows[i].value, rows[i].unit,
                   100.0 * rows[i].flops_per_s * 1e-9 / peak);
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

int main(int argc, char **argv)
{
    struct jc_model *m;
    /* The child of the long-text row: time one 8192-token text, print it, exit. */
    if (argc == 3 && !strcmp(argv[1], "--long-text")) {
        jc_set_threads(0);
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

    jc_blas_fix_coretype(argv);
    jc_set_threads(0);
    int threads = jc_threads();
    peak_threads = threads;
    sample_peak();
    if (jc_model_open(&m, dir, JC_LOAD_TEXT | JC_LOAD_VISION) < 0 || jc_model_info(m, &in) < 0)
        die(dir);
    jc_model_preprocess(m, &size, mean, std);

    printf("jclip-bench: %s, %d threads, kernels %s, OpenBLAS core type %s, %s\n", dir, threads,
           jc_isa_name(), jc_blas_corename(),
           jc_blas_shape_invariant() ? "one GEMM per thread" : "fixed 64x128 GEMM blocks");

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
    double t32 = time_images(m, pixels, 32, 4);
    row("images, batch 32, from pixels", 32 / t32, "images/s", 32 * fi / t32);
    free(pixels);

    /* Texts. */
    double fc = text_flops(&in.text, 16);
    double c1 = time_texts(m, 1, 16, 10);
    row("captions (16 tokens), batch 1", 1 / c1, "captions/s", fc / c1);
    double c256 = time_texts(m, 256, 16, 4);
    row("captions (16 tokens), batch 256", 256 / c256, "captions/s", 256 * fc / c256);
    double t512 = time_texts(m, 1, 512, 2);
    row("one 512-token text", t512 * 1e3, "ms", text_flops(&in.text, 512) / t512);
    jc_model_free(m);

    /* The long text in a process of its own, so its peak RSS is its own. */
    fflush(stdout);
    char *self[] = {"/proc/self/exe", "--long-text", (char *)dir, NULL};
    struct rusage ru;
    FILE *res = tmpfile();
    double t8k = 0;
    long hwm_kb = 0;
    if (res) {
        posix_spawn_file_actions_t fa;
        pid_t pid;
        int status;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, fileno(res), 1);
        if (posix_spawn(&pid, self[0], &fa, NULL, self, environ) == 0 &&
            wait4(pid, &status, 0, &ru) == pid && WIFEXITED(status) && !WEXITSTATUS(status)) {
            rewind(res);
            if (fscanf(res, "%lf %ld", &t8k, &hwm_kb) != 2)
                t8k = 0;
        }
        posix_spawn_file_actions_destroy(&fa);
        fclose(res);
    }
    row("one 8192-token text", t8k * 1e3, "ms", t8k > 0 ? text_flops(&in.text, 8192) / t8k : 0);
    static char rss_unit[64];
    snprintf(rss_unit, sizeof rss_unit, "MB         (mapped text weights %.1f MB)",
             in.text.params * 4 / 1048576.0);
    row("  its peak RSS (VmHWM)", hwm_kb / 1024.0, rss_unit, -1);

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
    char *cap[] = {(char *)bin, "embed-text", "-m", (char *)dir, "a photo of a cat", NULL};
    first_output(cap, &ru);
    double best = 1e30;
    for (int r = 0; r < 5; r++) {
        double t = first_output(cap, &ru);
        if (t >= 0 && t < best)
            best = t;
    }
    row("process start to first caption embedding", best * 1e3, "ms", -1);

    printf("%-44s %12s %-10s %7s\n", "workload", "throughput", "unit", "of peak");
    printf("%-44s %12.2f %-10s %6.1f%%   (best of %d samples between the rows, lowest %.2f)\n",
           "OpenBLAS SGEMM 2048^3", peak, "GFLOP/s", 100.0, peak_samples, peak_low);
    print_rows();
    return 0;
}
