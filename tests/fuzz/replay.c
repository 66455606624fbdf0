/*
 * The replay driver: a main for a fuzz target built without libFuzzer. Runs
 * LLVMFuzzerTestOneInput once on every file named on the command line and on every file of
 * every directory named (in name order, dot files skipped), each in an exact-size buffer, and
 * prints one line. A crash names the input it happened on, whether it is a signal or a
 * sanitizer report; the exit status is then nonzero.
 *
 *     build/fuzz-replay/fuzz_record tests/fuzz/record
 */
#include "fuzz.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Set when the program runs under AddressSanitizer or UndefinedBehaviorSanitizer. */
extern void __sanitizer_set_death_callback(void (*callback)(void)) __attribute__((weak));

/*
 * GCC links UBSan as a runtime of its own, which does not call the death callback that ASan
 * keeps: made to abort instead of exiting, its reports reach on_signal. UBSAN_OPTIONS still
 * overrides this.
 */
const char *__ubsan_default_options(void);
const char *__ubsan_default_options(void)
{
    return "abort_on_error=1";
}

static const char *prog;
static const char *volatile current; /* the input being run, for the crash message */

static const int SIGNALS[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
static struct sigaction previous[sizeof SIGNALS / sizeof *SIGNALS];

static void say(const char *s)
{
    if (write(STDERR_FILENO, s, strlen(s)) < 0)
        return;
}

static void name_input(void)
{
    if (!current)
        return;
    say(prog);
    say(": crash on ");
    say(current);
    say("\n");
    current = NULL;
}

/*
 * Names the input, then puts back the handler that was there before (the sanitizer's or the
 * default) and returns: a fault happens again and reaches it, and abort() raises again.
 */
static void on_signal(int sig)
{
    name_input();
    for (size_t i = 0; i < sizeof SIGNALS / sizeof *SIGNALS; i++)
        if (SIGNALS[i] == sig)
            sigaction(sig, &previous[i], NULL);
}

static void catch_crashes(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof SIGNALS / sizeof *SIGNALS; i++)
        sigaction(SIGNALS[i], &sa, &previous[i]);
    if (__sanitizer_set_death_callback)
        __sanitizer_set_death_callback(name_input);
}

/* Runs the target on one file; returns -1 if it cannot be read. */
static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    struct stat st;
    uint8_t *buf = NULL;
    size_t size;

    if (!f || fstat(fileno(f), &st) < 0) {
        fprintf(stderr, "%s: cannot open '%s': %s\n", prog, path, strerror(errno));
        goto out_fail;
    }
    size = (size_t)st.st_size;
    /* malloc(0) may give NULL; an empty input still gets a pointer */
    if (!(buf = malloc(size ? size : 1)) || fread(buf, 1, size, f) != size) {
        fprintf(stderr, "%s: cannot read '%s'\n", prog, path);
        goto out_fail;
    }
    fclose(f);
    current = path;
    LLVMFuzzerTestOneInput(buf, size);
    current = NULL;
    free(buf);
    return 0;

out_fail:
    free(buf);
    if (f)
        fclose(f);
    return -1;
}

static int skip_dot(const struct dirent *d)
{
    return d->d_name[0] != '.';
}

/* Runs every regular file of `dir`; returns how many, or -1. */
static long run_dir(const char *dir)
{
    struct dirent **list;
    long count = 0;
    int n = scandir(dir, &list, skip_dot, alphasort);

    if (n < 0) {
        fprintf(stderr, "%s: cannot read '%s': %s\n", prog, dir, strerror(errno));
        return -1;
    }
    for (int i = 0; i < n; i++) {
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, list[i]->d_name);
        if (count >= 0 && stat(path, &st) == 0 && S_ISREG(st.st_mode))
            count = run_file(path) < 0 ? -1 : count + 1;
        free(list[i]);
    }
    free(list);
    return count;
}

int main(int argc, char **argv)
{
    struct timespec t0, t1;
    long total = 0;

    prog = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
    if (argc < 2) {
        fprintf(stderr, "usage: %s DIR|FILE...\n", prog);
        return 2;
    }
    catch_crashes();
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 1; i < argc; i++) {
        struct stat st;
        long n;
        if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode))
            n = run_dir(argv[i]);
        else
            n = run_file(argv[i]) < 0 ? -1 : 1;
        if (n < 0)
            return 1;
        total += n;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("%s: %ld inputs replayed in %.2f s, no crash\n", prog, total,
           (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    return 0;
}
