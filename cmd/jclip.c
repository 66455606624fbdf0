/* jclip: the command table and the entry point. */
#include "cmd.h"

#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
    bool blas; /* runs GEMMs: OpenBLAS's core type matters */
    const char *summary;
};

static int cmd_help(int argc, char **argv);

static const struct command commands[] = {
    {"embed-text", cmd_embed_text, true, "embed texts into the shared space"},
    {"embed-image", cmd_embed_image, true, "embed image files into the shared space"},
    {"classify", cmd_classify, true, "zero-shot classification of images or texts"},
    {"similarity", cmd_similarity, true, "cosine similarity of texts, images and embeddings"},
    {"count-tokens", cmd_count_tokens, false,
     "count the tokens of texts, or the API cost of images"},
    {"info", cmd_info, true, "show the model, its dimensions and how it will run"},
    {"download", cmd_download, false, "download jina-clip-v1 into the Hugging Face cache"},
    {"serve", cmd_serve, true, "serve the Jina and OpenAI embeddings APIs over local HTTP"},
    {"help", cmd_help, false, "show help for jclip or a command"},
};

static const struct command *find(const char *name)
{
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (!strcmp(commands[i].name, name))
            return &commands[i];
    return NULL;
}

static void overview(FILE *f)
{
    fputs("usage: jclip [--version] [--help] <command> [options] [args]\n"
          "jina-clip-v1 text and image embeddings on the CPU.\n\ncommands:\n",
          f);
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        fprintf(f, "  %-14s %s\n", commands[i].name, commands[i].summary);
    fputs("\n'jclip <command> --help' describes a command; man jclip for more.\n", f);
}

static int cmd_help(int argc, char **argv)
{
    const struct command *c;
    if (argc < 2 || !strcmp(argv[1], "help")) {
        overview(stdout);
        return EXIT_OK;
    }
    if (!(c = find(argv[1]))) {
        error("'%s' is not a jclip command; see 'jclip help'", argv[1]);
        return EXIT_USAGE;
    }
    char *args[] = {argv[1], "--help", NULL};
    cmd_prefix = "jclip help";
    return c->fn(2, args);
}

/*
 * OpenBLAS starts a thread per core when it is loaded, unless OPENBLAS_NUM_THREADS says
 * otherwise, and each takes a 128 MiB GEMM buffer at once. jclip never uses them (its pool
 * splits the work and calls OpenBLAS single-threaded), and under a limit on the address
 * space or data size (ulimit -v, -d) they do harm: when a thread's stack does not fit,
 * OpenBLAS kills the process with SIGINT; when its buffer does not fit, the thread retries
 * for ever, and exit() then waits for it. So under such a limit jclip runs itself again with
 * OPENBLAS_NUM_THREADS=1 before OpenBLAS is initialised: an executable's .preinit_array runs
 * before the initialiser of any library. setenv() would not do: libc's own initialiser,
 * later, sets environ back to the array the kernel passed. Nothing here allocates.
 */
static bool limited(int resource)
{
    struct rlimit rl;
    return getrlimit(resource, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY;
}

static void one_openblas_thread(int argc, char **argv, char **envp)
{
    static char one[] = "OPENBLAS_NUM_THREADS=1";
    const size_t klen = sizeof "OPENBLAS_NUM_THREADS=" - 1;
    size_t n = 0, k = 0;

    (void)argc;
    if (!limited(RLIMIT_AS) && !limited(RLIMIT_DATA))
        return;
    while (envp[n])
        n++;
    char *env[n + 2];
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(envp[i], one))
            return; /* already so: this is the second run */
        if (strncmp(envp[i], one, klen))
            env[k++] = envp[i];
    }
    env[k++] = one;
    env[k] = NULL;
    execve("/proc/self/exe", argv, env); /* on failure, run on as OpenBLAS is */
}

__attribute__((section(".preinit_array"),
               used)) static void (*const preinit)(int, char **, char **) = one_openblas_thread;

/* An interrupted run leaves no temporary output behind, then dies of the same signal. */
static void on_signal(int sig)
{
    jc_afile_cleanup();
    signal(sig, SIG_DFL);
    raise(sig);
}

int main(int argc, char **argv)
{
    static char prefix[64];
    const struct command *c;

    if (argc < 2) {
        overview(stderr);
        return EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        printf("jclip %s\n", JCLIP_VERSION);
        return EXIT_OK;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        overview(stdout);
        return EXIT_OK;
    }
    if (!(c = find(argv[1]))) {
        fprintf(stderr, "jclip: '%s' is not a jclip command; see 'jclip help'\n", argv[1]);
        return EXIT_USAGE;
    }
    snprintf(prefix, sizeof prefix, "jclip %s", c->name);
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
    for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++) {
        struct sigaction sa = {.sa_handler = on_signal}, old;
        /* keep a signal ignored when the caller ignored it (nohup, background jobs) */
        if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler != SIG_IGN)
            sigaction(sigs[i], &sa, NULL);
    }
    cmd_prefix = prefix;
    if (c->blas && jc_blas_fix_coretype(argv) < 0)
        warning("%s", jc_errmsg()); /* still correct, only slower */
    /* getopt names the program after argv[0]: make its messages "jclip <command>: ..." */
    argv[1] = prefix;
    return c->fn(argc - 1, argv + 1);
}
