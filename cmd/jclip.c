/* jclip: the command table and the entry point. */
#include "cmd.h"

#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
};

static int cmd_help(int argc, char **argv);

static const struct command commands[] = {
    {"embed-text", cmd_embed_text, "embed texts into the shared space"},
    {"embed-image", cmd_embed_image, "embed image files into the shared space"},
    {"classify", cmd_classify, "zero-shot classification of images or texts"},
    {"similarity", cmd_similarity, "cosine similarity of texts, images and embeddings"},
    {"count-tokens", cmd_count_tokens, "count the tokens of texts, or the API cost of images"},
    {"info", cmd_info, "show the model, its dimensions and how it will run"},
    {"download", cmd_download, "download jina-clip-v1 into the Hugging Face cache"},
    {"serve", cmd_serve, "serve the Jina and OpenAI embeddings APIs over local HTTP"},
    {"help", cmd_help, "show help for jclip or a command"},
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
    /* getopt names the program after argv[0]: make its messages "jclip <command>: ..." */
    argv[1] = prefix;
    return c->fn(argc - 1, argv + 1);
}
