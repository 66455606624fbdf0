/*
 * The options of every command, in one table: each has one long name, at most one short
 * letter and one default help line, so a letter means the same thing in every command that
 * has it. A command lists the options it takes (struct cmd_opt), with its own help where it
 * says more; its --help and its getopt_long() tables are made from that list.
 */
#include "cmd.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

struct opt_def {
    int code; /* the short letter, or OPT_* above 0xff for a long-only option */
    const char *name;
    const char *arg; /* its argument's name in the help, or NULL for a flag */
    const char *help;
};

static const struct opt_def table[] = {
    {OPT_AGAINST, "against", NULL, "the inputs after it are candidates, those before it queries"},
    {OPT_API_KEY, "api-key", "KEY",
     "require \"Authorization: Bearer KEY\" (default: $JCLIP_API_KEY)"},
    {OPT_BATCH, "batch", "N", "inputs per batch"},
    {OPT_CACHE, "cache", "DIR", "hub cache (default: $HF_HUB_CACHE, else $HF_HOME/hub)"},
    {OPT_DRAFT, "draft", NULL,
     "decode JPEGs at a reduced scale, still at least twice the\n"
     "model's input size: several times faster on photos, within a\n"
     "few levels of the exact pixels (jclip-embed-image(1))"},
    {OPT_DUMP_PIXELS, "dump-pixels", "F",
     "also write the preprocessed [N, 3, S, S] tensors to F (.npy)"},
    {OPT_ENCODING, "encoding", "ENC", "embeddings as float (default), base64, binary or ubinary"},
    {OPT_EXIF_ROTATE, "exif-rotate", NULL, "turn photos upright by their EXIF orientation first"},
    {OPT_FETCH_TIMEOUT, "fetch-timeout", "S",
     "give up fetching an image after S seconds (default 30)"},
    {OPT_FILE, "file", "PATH", "a whole file as one text (repeatable; - is stdin)"},
    {OPT_FORMAT, "format", "FMT", "output format"},
    {OPT_HELP, "help", NULL, "show this help"},
    {OPT_HOST, "host", "ADDR", "address to listen on (default 127.0.0.1: this machine only)"},
    {OPT_IDLE_TIMEOUT, "idle-timeout", "S", "close a connection idle for S seconds (default 30)"},
    {OPT_IDS, "ids", NULL, "print the token ids of each input"},
    {OPT_IMAGE, "image", "PATH", "an image file, URL or data URI"},
    {OPT_IMAGES, "image", NULL, "the arguments are images"},
    {OPT_JSON, "json", NULL, "one JSON object, for programs"},
    {OPT_JSONL, "jsonl", NULL, "records: one JSON object per stdin line in, one per line out"},
    {OPT_KEEP_GOING, "keep-going", NULL, "skip inputs that cannot be read and go on with the rest"},
    {OPT_LABELS, "labels", "LIST", "comma-separated labels (repeatable)"},
    {OPT_LABELS_FILE, "labels-file", "F", "one label per line (blank lines are skipped)"},
    {OPT_MAX_BATCH, "max-batch", "N",
     "inputs per batch of the model, across requests (default 32)"},
    {OPT_MAX_BODY_BYTES, "max-body-bytes", "N",
     "refuse larger request bodies with 413 (default 67108864)"},
    {OPT_MAX_FILE_BYTES, "max-file-bytes", "N", "refuse larger files (default 268435456)"},
    {OPT_MAX_IMAGE_BYTES, "max-image-bytes", "N",
     "refuse a fetched image larger than N bytes (default 33554432)"},
    {OPT_MAX_LINE_BYTES, "max-line-bytes", "N", "refuse longer stdin lines (default 67108864)"},
    {OPT_MAX_PIXELS, "max-pixels", "N", "refuse larger images (default 178956970, Pillow's limit)"},
    {OPT_MAX_TOKENS, "max-tokens", "N", "truncate longer texts to N tokens (default 8192)"},
    {OPT_MODEL, "model", "DIR", "model directory (default: $JCLIP_MODEL, then the HF cache)"},
    {OPT_NO_FETCH, "no-fetch", NULL,
     "refuse image URLs (http://, https://) instead of fetching them"},
    {OPT_OUTPUT, "output", "FILE", "write an N x D float32 .npy instead of stdout"},
    {OPT_PORT, "port", "N", "port to listen on (default 8080; 0 picks a free one)"},
    {OPT_PRECISION, "precision", "P",
     "linear layers in fp32 (default) or bf16: weights in half the\n"
     "memory, where the kernels have bf16 products (jclip(1));\n"
     "$JCLIP_PRECISION sets the default"},
    {OPT_PROGRESS, "progress", NULL,
     "show progress on stderr (default: only when it is a terminal)"},
    {OPT_RAW, "raw", NULL, "unnormalised vectors (default: L2-normalised)"},
    {OPT_RECURSIVE, "recursive", NULL, "descend into directories"},
    {OPT_REPO, "repo", "ID", "Hub repository (default jinaai/jina-clip-v1)"},
    {OPT_REVISION, "revision", "REV", "branch, tag or commit (default main)"},
    {OPT_TEMPLATE, "template", "T", "prompt for a label, {} marks the label"},
    {OPT_TEXT, "text", "TEXT", "a text"},
    {OPT_TEXTS, "text", NULL, "the inputs are texts (arguments, or stdin lines), not images"},
    {OPT_TEXT_FILE, "text-file", "PATH", "a whole file as one text"},
    {OPT_THREADS, "threads", "N", "threads (default: $JCLIP_THREADS, else all cores)"},
    {OPT_TOKENS, "tokens", NULL, "print the tokens of each input"},
    {OPT_TOP, "top", "K", "the K best per input"},
    {OPT_TOTAL, "total", NULL, "print one sum over all inputs"},
};

static const struct opt_def *lookup(int code)
{
    for (size_t i = 0; i < sizeof table / sizeof *table; i++)
        if (table[i].code == code)
            return &table[i];
    return NULL;
}

/* The deprecated spelling that takes letter c in this command, or NULL. */
static const struct cmd_alias *alias_of(const struct cmd_spec *spec, int c)
{
    for (const struct cmd_alias *a = spec->aliases; a && a->letter; a++)
        if (a->letter == c)
            return a;
    return NULL;
}

/* The short letter an option has in this command: none where a deprecated spelling holds it. */
static int letter(const struct cmd_spec *spec, int code)
{
    return code < 0x100 && !alias_of(spec, code) ? code : 0;
}

const char *cmd_usage(const struct cmd_spec *spec)
{
    static char buf[8192];
    size_t n = 0;

#define PUT(...) (n += (size_t)snprintf(buf + n, n < sizeof buf ? sizeof buf - n : 0, __VA_ARGS__))
    PUT("%s", spec->synopsis);
    for (const struct cmd_opt *o = spec->opts; o->code; o++) {
        const struct opt_def *d = lookup(o->code);
        const char *help = o->help ? o->help : d->help;
        char left[64];
        int c = letter(spec, o->code);
        int w = snprintf(left, sizeof left, "  %c%c%s--%s%s%s", c ? '-' : ' ', c ? c : ' ',
                         c ? ", " : "  ", d->name, d->arg ? " " : "", d->arg ? d->arg : "");
        PUT("%s%*s", left, w < 22 ? 24 - w : 2, "");
        /* continuation lines of the help line up under its first */
        for (const char *s = help, *nl; *s; s = nl + 1) {
            nl = strchr(s, '\n');
            if (!nl) {
                PUT("%s\n", s);
                break;
            }
            PUT("%.*s\n%24s", (int)(nl - s), s, "");
        }
    }
    if (spec->epilogue)
        PUT("%s", spec->epilogue);
#undef PUT
    return buf;
}

/* getopt_long() returns a long option's code plus this, so that a letter is known as typed. */
enum { LONG_TAG = 0x10000 };

int cmd_getopt(int argc, char **argv, const struct cmd_spec *spec)
{
    static const struct cmd_spec *built;
    static struct option longs[64];
    static char shorts[160];

    if (built != spec) {
        size_t nl = 0, ns = 0;
        if (spec->in_order)
            shorts[ns++] = '-'; /* non-options come back as 1, in their place */
        for (const struct cmd_opt *o = spec->opts; o->code; o++) {
            const struct opt_def *d = lookup(o->code);
            longs[nl++] = (struct option){d->name, d->arg ? required_argument : no_argument, NULL,
                                          LONG_TAG + d->code};
            if (letter(spec, o->code)) {
                shorts[ns++] = (char)o->code;
                if (d->arg)
                    shorts[ns++] = ':';
            }
        }
        for (const struct cmd_alias *a = spec->aliases; a && a->letter; a++) {
            shorts[ns++] = (char)a->letter;
            if (lookup(a->code)->arg)
                shorts[ns++] = ':';
        }
        longs[nl] = (struct option){0};
        shorts[ns] = '\0';
        built = spec;
    }
    int c = getopt_long(argc, argv, shorts, longs, NULL);
    if (c >= LONG_TAG)
        return c - LONG_TAG;
    const struct cmd_alias *a = c > 0 && c < 0x100 ? alias_of(spec, c) : NULL;
    if (a) {
        static bool warned[0x100]; /* once per letter and run */
        if (warned[c])
            return a->code;
        warned[c] = true;
        const char *now = lookup(a->code)->name;
        warning("-%c for --%s is deprecated: next release -%c is --%s, as everywhere; use --%s", c,
                now, c, lookup(c)->name, now);
        return a->code;
    }
    return c;
}
