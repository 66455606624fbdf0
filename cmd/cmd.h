/* Shared by the subcommands in cmd/. */
#ifndef JCLIP_CMD_H
#define JCLIP_CMD_H

#include "jclip.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Exit statuses, documented in jclip(1). */
enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

int cmd_embed_text(int argc, char **argv);
int cmd_count_tokens(int argc, char **argv);
int cmd_info(int argc, char **argv);

/* "jclip <command>", the prefix of every message. */
extern const char *cmd_prefix;

void error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void warning(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints "prefix: msg" and the short usage to stderr; returns EXIT_USAGE. */
int usage_error(const char *usage, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Parses a whole number in [lo, hi] for option `opt`; false (and a message) if it is not one. */
bool parse_long(const char *opt, const char *arg, long lo, long hi, long *out);

/* Applies -t/--threads (0 = unset: $JCLIP_THREADS, else all cores). */
bool setup_threads(long threads);

/* Locates and opens the model; prints the error and returns NULL on failure. */
struct jc_model *open_model(const char *dir, unsigned what);

/*
 * Lines from a file descriptor, for inputs that arrive over time: next() hands out
 * complete lines, and can say "none ready right now" so a caller can finish the work it has
 * instead of waiting on a slow pipe.
 */
struct line_reader {
    int fd;
    char *buf;
    size_t cap, start, end;
    bool eof;
    size_t lineno;    /* of the last line returned */
    size_t max_bytes; /* longest line accepted */
};

enum { LINE_OK = 1, LINE_EOF = 0, LINE_WAIT = -1, LINE_ERROR = -2, LINE_TOO_LONG = -3 };

void line_reader_init(struct line_reader *r, int fd, size_t max_bytes);
void line_reader_release(struct line_reader *r);

/*
 * The next line without its '\n' (*line points into the reader's buffer, valid until the
 * next call; it may hold NUL bytes). With block false, returns LINE_WAIT when no complete
 * line is buffered and the descriptor has nothing to read yet.
 */
int line_reader_next(struct line_reader *r, bool block, const char **line, size_t *len);

/* An input text and the name to give it in messages ("argument 2", "stdin line 7"). */
struct text_input {
    char *text;
    size_t len;
    char name[300];
};

/*
 * Makes `in` own a valid-UTF-8 copy of buf; warns (naming the input) when invalid bytes
 * were replaced. False on allocation failure (reported).
 */
bool text_input_set(struct text_input *in, const char *buf, size_t len);

/* Reads a whole file as one text; false (reported) on failure. */
bool text_input_file(struct text_input *in, const char *path, size_t max_bytes);

/* Maximum bytes of one stdin line and of one --file document. */
#define MAX_LINE_BYTES ((size_t)64 << 20)
#define MAX_FILE_BYTES ((size_t)256 << 20)

#endif
