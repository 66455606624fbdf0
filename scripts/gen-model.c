/*
 * jclip-gen-model: writes a model directory with the deterministic test weights of
 * tests/golden/RECIPE.md (jclip-testweights-v1).
 *
 *     jclip-gen-model CONFIG OUTDIR [--tokenizer DIR]
 *
 * Each file goes to a temporary name in OUTDIR and is renamed into place once it is
 * complete and synced, so an interrupted run never leaves a partial file under a real
 * name. model.safetensors is written last: the Makefile takes it as the whole directory.
 */
#include "recipe.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PROG "jclip-gen-model"

/* Floats per chunk of generated data: 4 MiB, small next to the 890 MB full model. */
#define CHUNK (1u << 20)

/* A file being written under a temporary name. */
struct out {
    char tmp[PATH_MAX];
    char path[PATH_MAX];
    FILE *f;
};

/* The temporary file in progress, for the signal handler to remove. */
static char pending[PATH_MAX];
static volatile sig_atomic_t have_pending;

static void on_signal(int sig)
{
    if (have_pending)
        unlink(pending);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* A signal ignored at start (nohup, a background job) stays ignored. */
static void catch_signal(int sig)
{
    struct sigaction old;
    if (sigaction(sig, NULL, &old) == 0 && old.sa_handler != SIG_IGN)
        signal(sig, on_signal);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: " PROG " CONFIG OUTDIR [--tokenizer DIR]\n"
               "  CONFIG is tiny, tiny12 or full; the tokenizer files are copied from DIR\n"
               "  (default tests/golden/tokenizer)\n");
}

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int fail(const char *fmt, ...)
{
    va_list ap;
    fputs(PROG ": ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return -1;
}

/* mkdir -p */
static int make_dirs(const char *dir)
{
    char buf[PATH_MAX];
    struct stat st;
    size_t n = strlen(dir);

    if (n == 0 || n >= sizeof buf)
        return fail("bad output directory '%s'", dir);
    memcpy(buf, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        char saved = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, 0777) < 0 && errno != EEXIST)
            return fail("cannot create directory '%s': %s", buf, strerror(errno));
        buf[i] = saved;
    }
    if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
        return fail("'%s' is not a directory", dir);
    return 0;
}

static int out_open(struct out *o, const char *dir, const char *name)
{
    int fd;

    if (snprintf(o->path, sizeof o->path, "%s/%s", dir, name) >= (int)sizeof o->path ||
        snprintf(o->tmp, sizeof o->tmp, "%s/.%s.tmp.%ld", dir, name, (long)getpid()) >=
            (int)sizeof o->tmp)
        return fail("path too long in '%s'", dir);
    memcpy(pending, o->tmp, sizeof pending);
    have_pending = 1;
    /* a leftover of the same name can only be from a dead process with our pid */
    fd = open(o->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0) {
        have_pending = 0;
        return fail("cannot create '%s': %s", o->tmp, strerror(errno));
    }
    o->f = fdopen(fd, "wb");
    if (!o->f) {
        int err = errno;
        close(fd);
        unlink(o->tmp);
        have_pending = 0;
        return fail("cannot open '%s': %s", o->tmp, strerror(err));
    }
    setvbuf(o->f, NULL, _IOFBF, 1 << 16);
    return 0;
}

static void out_abort(struct out *o)
{
    fclose(o->f);
    unlink(o->tmp);
    have_pending = 0;
}

static int out_commit(struct out *o)
{
    int err = 0;

    errno = 0; /* ferror() sets no errno of its own */
    if (fflush(o->f) != 0 || ferror(o->f))
        err = errno ? errno : EIO;
    else if (fsync(fileno(o->f)) < 0)
        err = errno;
    if (fclose(o->f) != 0 && !err)
        err = errno;
    if (!err && rename(o->tmp, o->path) < 0)
        err = errno;
    if (err) {
        unlink(o->tmp);
        have_pending = 0;
        return fail("cannot write '%s': %s", o->path, strerror(err));
    }
    have_pending = 0;
    printf("%s\n", o->path);
    return 0;
}

static int write_config(const char *dir, const struct recipe_config *c)
{
    struct out o;
    FILE *f;

    if (out_open(&o, dir, "config.json") < 0)
        return -1;
    f = o.f;
    fprintf(f, "{\n");
    fprintf(f, "  \"add_projections\": false,\n");
    fprintf(f, "  \"architectures\": [\"JinaCLIPModel\"],\n");
    fprintf(f, "  \"logit_scale_init_value\": 2.6592,\n");
    fprintf(f, "  \"model_type\": \"jina_clip\",\n");
    fprintf(f, "  \"projection_dim\": %d,\n", c->text_dim);
    fprintf(f, "  \"text_config\": {\n");
    fprintf(f, "    \"embed_dim\": %d,\n", c->text_dim);
    fprintf(f, "    \"hf_model_config_kwargs\": {\n");
    /* the real model states no BERT dims; the loader's defaults are the full ones */
    if (strcmp(c->name, "full") != 0) {
        fprintf(f, "      \"hidden_size\": %d,\n", c->text_dim);
        fprintf(f, "      \"intermediate_size\": %d,\n", c->text_intermediate);
        fprintf(f, "      \"layer_norm_eps\": %g,\n", c->text_eps);
        fprintf(f, "      \"num_attention_heads\": %d,\n", c->text_heads);
        fprintf(f, "      \"num_hidden_layers\": %d,\n", c->text_layers);
        fprintf(f, "      \"use_flash_attn\": false,\n");
        fprintf(f, "      \"vocab_size\": %d\n", c->vocab);
    } else {
        fprintf(f, "      \"use_flash_attn\": false\n");
    }
    fprintf(f, "    },\n");
    fprintf(f, "    \"hf_model_name_or_path\": \"jinaai/jina-bert-flash-implementation\",\n");
    fprintf(f, "    \"model_type\": \"jina_clip_text\",\n");
    fprintf(f, "    \"pooler_type\": \"mean_pooler\",\n");
    fprintf(f, "    \"proj_bias\": false,\n");
    fprintf(f, "    \"proj_type\": null\n");
    fprintf(f, "  },\n");
    fprintf(f, "  \"torch_dtype\": \"float32\",\n");
    fprintf(f, "  \"vision_config\": {\n");
    fprintf(f, "    \"embed_dim\": %d,\n", c->vision_width);
    fprintf(f, "    \"head_width\": %d,\n", c->vision_head_width);
    fprintf(f, "    \"image_size\": %d,\n", c->image_size);
    fprintf(f, "    \"intp_freq\": false,\n");
    fprintf(f, "    \"layers\": %d,\n", c->vision_layers);
    fprintf(f, "    \"ls_init_value\": null,\n");
    fprintf(f, "    \"mlp_ratio\": %g,\n", c->mlp_ratio);
    fprintf(f, "    \"model_type\": \"jina_clip_vision\",\n");
    fprintf(f, "    \"naive_swiglu\": true,\n");
    fprintf(f, "    \"patch_dropout\": 0.1,\n");
    fprintf(f, "    \"patch_size\": %d,\n", c->patch_size);
    fprintf(f, "    \"post_norm\": false,\n");
    fprintf(f, "    \"proj_type\": null,\n");
    fprintf(f, "    \"pt_hw_seq_len\": %d,\n", c->pt_hw_seq_len);
    fprintf(f, "    \"qkv_bias\": true,\n");
    fprintf(f, "    \"rope_embeddings\": true,\n");
    fprintf(f, "    \"subln\": true,\n");
    fprintf(f, "    \"width\": %d,\n", c->vision_width);
    fprintf(f, "    \"x_attention\": false\n");
    fprintf(f, "  }\n");
    fprintf(f, "}\n");
    return out_commit(&o);
}

static int write_preprocessor(const char *dir, const struct recipe_config *c)
{
    struct out o;

    if (out_open(&o, dir, "preprocessor_config.json") < 0)
        return -1;
    fprintf(o.f,
            "{\n"
            "  \"fill_color\": 0,\n"
            "  \"image_processor_type\": \"JinaCLIPImageProcessor\",\n"
            "  \"interpolation\": \"bicubic\",\n"
            "  \"mean\": [0.48145466, 0.4578275, 0.40821073],\n"
            "  \"processor_class\": \"JinaCLIPProcessor\",\n"
            "  \"resize_mode\": \"shortest\",\n"
            "  \"size\": %d,\n"
            "  \"std\": [0.26862954, 0.26130258, 0.27577711]\n"
            "}\n",
            c->image_size);
    return out_commit(&o);
}

static int copy_file(const char *srcdir, const char *dir, const char *name)
{
    char src[PATH_MAX], buf[1 << 16];
    struct out o;
    FILE *in;
    size_t n;

    if (snprintf(src, sizeof src, "%s/%s", srcdir, name) >= (int)sizeof src)
        return fail("path too long in '%s'", srcdir);
    in = fopen(src, "rb");
    if (!in)
        return fail("cannot open '%s': %s", src, strerror(errno));
    if (out_open(&o, dir, name) < 0) {
        fclose(in);
        return -1;
    }
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, n, o.f) != n)
            break;
    if (ferror(in)) {
        fail("cannot read '%s': %s", src, strerror(errno));
        fclose(in);
        out_abort(&o);
        return -1;
    }
    fclose(in);
    return out_commit(&o);
}

/* Stores floats as little-endian bytes in place. */
static void to_le(float *v, size_t n)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &v[i], 4);
        u = __builtin_bswap32(u);
        memcpy(&v[i], &u, 4);
    }
#else
    (void)v;
    (void)n;
#endif
}

static int write_weights(const char *dir, const struct recipe_config *c)
{
    struct recipe_tensor *t = NULL;
    float *chunk = NULL;
    char *header = NULL;
    size_t hlen;
    uint64_t data_len, written = 0;
    unsigned char len8[8];
    struct out o;
    int n = recipe_tensors(c, NULL, 0), rc = -1;

    t = malloc((size_t)n * sizeof *t);
    chunk = malloc(CHUNK * sizeof *chunk);
    header = recipe_header(c, &hlen, &data_len);
    if (!t || !chunk || !header) {
        fail("out of memory");
        goto out_free;
    }
    recipe_tensors(c, t, n);
    recipe_sort(t, n);

    if (out_open(&o, dir, "model.safetensors") < 0)
        goto out_free;
    for (int b = 0; b < 8; b++)
        len8[b] = (unsigned char)((uint64_t)hlen >> (8 * b));
    fwrite(len8, 1, 8, o.f);
    fwrite(header, 1, hlen, o.f);
    for (int i = 0; i < n; i++) {
        uint64_t numel = (uint64_t)recipe_numel(t[i].shape, t[i].ndim);
        for (uint64_t at = 0; at < numel; at += CHUNK) {
            size_t m = numel - at < CHUNK ? (size_t)(numel - at) : CHUNK;
            if (recipe_fill(t[i].name, t[i].shape, t[i].ndim, at, m, chunk) < 0) {
                fail("no recipe rule for tensor '%s'", t[i].name);
                out_abort(&o);
                goto out_free;
            }
            to_le(chunk, m);
            if (fwrite(chunk, sizeof *chunk, m, o.f) != m) {
                fail("cannot write '%s': %s", o.tmp, strerror(errno));
                out_abort(&o);
                goto out_free;
            }
            written += m * sizeof *chunk;
        }
    }
    if (written != data_len) {
        fail("internal error: wrote %llu data bytes, header says %llu", (unsigned long long)written,
             (unsigned long long)data_len);
        out_abort(&o);
        goto out_free;
    }
    rc = out_commit(&o);

out_free:
    free(header);
    free(chunk);
    free(t);
    return rc;
}

/* Makes the renames durable too, not only the file contents. */
static void sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"tokenizer", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    static const char *const tokenizer_files[] = {"vocab.txt", "tokenizer.json",
                                                  "tokenizer_config.json"};
    const char *tokdir = "tests/golden/tokenizer";
    const struct recipe_config *cfg;
    const char *outdir;
    int opt;

    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (opt) {
        case 't':
            tokdir = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (argc - optind != 2) {
        usage(stderr);
        return 2;
    }
    cfg = recipe_config_find(argv[optind]);
    if (!cfg) {
        fprintf(stderr, PROG ": unknown config '%s' (expected tiny, tiny12 or full)\n",
                argv[optind]);
        return 2;
    }
    outdir = argv[optind + 1];

    catch_signal(SIGINT);
    catch_signal(SIGTERM);
    catch_signal(SIGHUP);

    /* fail before writing anything when the tokenizer is not there */
    for (size_t i = 0; i < sizeof tokenizer_files / sizeof *tokenizer_files; i++) {
        char src[PATH_MAX];
        snprintf(src, sizeof src, "%s/%s", tokdir, tokenizer_files[i]);
        if (access(src, R_OK) < 0) {
            fail("cannot read '%s': %s", src, strerror(errno));
            return 1;
        }
    }
    if (make_dirs(outdir) < 0)
        return 1;
    if (write_config(outdir, cfg) < 0 || write_preprocessor(outdir, cfg) < 0)
        return 1;
    for (size_t i = 0; i < sizeof tokenizer_files / sizeof *tokenizer_files; i++)
        if (copy_file(tokdir, outdir, tokenizer_files[i]) < 0)
            return 1;
    if (write_weights(outdir, cfg) < 0)
        return 1;
    sync_dir(outdir);
    return 0;
}
