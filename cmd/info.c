/* jclip info: what model is found and how jclip will run it. */
#include "cmd.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct cmd_opt options[] = {
    {OPT_MODEL, "model directory"},
    {OPT_THREADS, NULL},
    {OPT_PRECISION, "show the model as opened in fp32 or bf16 (default:\n"
                    "$JCLIP_PRECISION, else fp32)"},
    {OPT_JSON, "one JSON object, with the model's SHA-256, for programs"},
    {OPT_HELP, NULL},
    {0, NULL},
};

static const struct cmd_spec spec = {
    .synopsis = "usage: jclip info [options]\n",
    .opts = options,
};

/* 222647041 -> "222,647,041" */
static const char *grouped(char *buf, size_t cap, long long v)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "%lld", v), o = 0;
    for (int i = 0; i < n && (size_t)o + 2 < cap; i++) {
        if (i && (n - i) % 3 == 0)
            buf[o++] = ',';
        buf[o++] = tmp[i];
    }
    buf[o] = '\0';
    return buf;
}

/*
 * What a driver compares across hosts before a distributed run: the same version, model
 * (by the SHA-256 of its weights) and arithmetic give the same bytes.
 */
static int print_json(const struct jc_model_info *in)
{
    char hex[65], *weights = malloc(strlen(in->dir) + sizeof "/model.safetensors");

    if (!weights) {
        error("out of memory");
        return EXIT_FAIL;
    }
    sprintf(weights, "%s/model.safetensors", in->dir);
    int rc = jc_file_sha256(weights, hex);
    free(weights);
    if (rc < 0) {
        error("%s", jc_errmsg());
        return EXIT_FAIL;
    }
    const char *bf16 = jc_bf16_instructions();
    printf("{\"version\":\"" JCLIP_VERSION "\",\"model\":");
    json_string(stdout, in->dir);
    printf(",\"model_sha256\":\"%s\",\"dtype\":\"%s\",\"parameters\":%lld,"
           "\"dimensions\":%d,\"precision\":\"%s\",\"bf16_instructions\":",
           hex, in->dtype, (long long)in->params, in->embed_dim, in->precision);
    if (bf16)
        json_string(stdout, bf16);
    else
        fputs("null", stdout);
    printf(",\"matrix_bytes\":%lld,\"kernels\":\"%s\","
           "\"openblas_core\":\"%s\",\"batch_invariant\":%s,\"row_unroll\":%d,"
           "\"few_rows\":%d,\"own_tokens\":%d,\"tail_split\":%d,"
           "\"threads\":%d}\n",
           (long long)in->matrix_bytes, jc_isa_name(), jc_blas_corename(),
           jc_blas_batch_invariant() ? "true" : "false", jc_blas_row_unroll(), jc_blas_few_rows(),
           jc_linear_own_tokens(), jc_linear_tail_split(), jc_threads());
    if (fflush(stdout) != 0) {
        error("cannot write to stdout");
        return EXIT_FAIL;
    }
    return EXIT_OK;
}

int cmd_info(int argc, char **argv)
{
    const char *usage = cmd_usage(&spec);
    const char *model = NULL, *precision = NULL;
    long threads = 0;
    bool json = false;
    struct jc_model_info in;
    struct jc_model *m;
    char b1[32];
    int c;

    while ((c = cmd_getopt(argc, argv, &spec)) != -1) {
        switch (c) {
        case 'm':
            model = optarg;
            break;
        case 't':
            if (!parse_long("--threads", optarg, 1, 256, &threads))
                return EXIT_USAGE;
            break;
        case OPT_PRECISION:
            precision = optarg;
            break;
        case OPT_JSON:
            json = true;
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
    if (!setup_threads(threads))
        return EXIT_FAIL;
    /* before the model opens: it reports the precision it was opened in */
    if ((c = setup_precision(precision)) != EXIT_OK)
        return c;
    if (!(m = open_model(model, JC_LOAD_INFO)))
        return EXIT_FAIL;
    /*
     * The user's choice is obeyed, but a lower core type costs: in make bench on an AMD EPYC
     * with AVX-512, Haswell's SGEMM ran at 55% of Cooperlake's (jclip-info(1)).
     */
    const char *user, *best;
    if (jc_blas_coretype_lowered(&user, &best))
        warning("OPENBLAS_CORETYPE=%s is below this CPU's best OpenBLAS core type, %s: matrix "
                "products run at about half speed or less; unset it to use %s",
                user, best, best);
    if (jc_model_info(m, &in) < 0) {
        error("%s", jc_errmsg());
        jc_model_free(m);
        return EXIT_FAIL;
    }
    if (json) {
        int rc = print_json(&in);
        jc_model_free(m);
        return rc;
    }
    printf("model:        %s\n", in.dir);
    printf("tensors:      %d, %s parameters, dtype %s\n", in.tensors,
           grouped(b1, sizeof b1, in.params), in.dtype);
    printf("embedding:    %d dimensions\n", in.embed_dim);
    printf("logit scale:  %.9g (CLIP scale exp = %.9g)\n", in.logit_scale,
           (double)expf(in.logit_scale));
    if (in.has_text)
        printf("text tower:   JinaBERT, %d layers, width %d, %d heads of %d, feed-forward %d, "
               "vocabulary %d, %s parameters\n",
               in.text.layers, in.text.dim, in.text.heads, in.text.head_dim, in.text.intermediate,
               in.text.vocab, grouped(b1, sizeof b1, in.text.params));
    else
        printf("text tower:   none\n");
    if (in.has_vision)
        printf("vision tower: EVA-02 ViT, %d layers, width %d, %d heads of %d, MLP %d, "
               "%d px in %d px patches, %s parameters\n",
               in.vision.layers, in.vision.width, in.vision.heads, in.vision.head_dim,
               in.vision.mlp_hidden, in.vision.image_size, in.vision.patch_size,
               grouped(b1, sizeof b1, in.vision.params));
    else
        printf("vision tower: none\n");
    printf("kernels:      %s (%d kernels specialised, the rest scalar reference)\n", jc_isa_name(),
           jc_isa_specialised());
    printf("openblas:     core type %s, 1 thread per call, rows in groups of %d, %s\n",
           jc_blas_corename(), jc_blas_row_unroll(),
           jc_blas_batch_invariant() ? "batch-invariant (batching changes no bit)"
                                     : "not batch-invariant (batching can change the last bits)");
    if (jc_blas_few_rows())
        printf("few rows:     up to %d in jclip's own kernel, in OpenBLAS's order (K in blocks of "
               "%d)\n",
               jc_blas_few_rows(), jc_blas_kblock());
    else if (jc_linear_tail_split())
        printf("few rows:     texts of up to %d tokens that OpenBLAS would pad by half or more, in "
               "jclip's own kernel and order (K in blocks of %d), in any batch; the rest through "
               "OpenBLAS (its order is not one jclip's kernel matches), texts under %d tokens "
               "sharing groups of %d for their last rows\n",
               jc_linear_own_tokens(), jc_linear_own_kblock(), jc_linear_tail_split(),
               jc_blas_row_unroll());
    else
        printf("few rows:     texts of up to %d tokens that OpenBLAS would pad by half or more, in "
               "jclip's own kernel and order (K in blocks of %d), in any batch; the rest through "
               "OpenBLAS (its order is not one jclip's kernel matches), in groups of %d\n",
               jc_linear_own_tokens(), jc_linear_own_kblock(), jc_blas_row_unroll());
    printf("threads:      %d\n", jc_threads());
    if (!strcmp(in.precision, "bf16"))
        printf("precision:    bf16 (%s)\n", jc_bf16_instructions());
    else
        printf("precision:    fp32\n");
    printf("weights:      %.1f MiB of linear-layer matrices in memory\n",
           (double)in.matrix_bytes / (1 << 20));
    jc_model_free(m);
    if (fflush(stdout) != 0) {
        error("cannot write to stdout");
        return EXIT_FAIL;
    }
    return EXIT_OK;
}
