#!/usr/bin/env bats
# The jclip entry point, info, and the OpenBLAS core type.

load helper

@test "--version and help" {
    run "$JCLIP" --version
    [ "$status" -eq 0 ]
    [[ "$output" =~ ^jclip\ [0-9]+\.[0-9]+\.[0-9]+$ ]]
    run --separate-stderr "$JCLIP" help
    [ "$status" -eq 0 ]
    [[ "$output" == *"embed-text"*"count-tokens"*"info"* ]]
    run "$JCLIP" help count-tokens
    [ "$status" -eq 0 ]
    [[ "${lines[0]}" == "usage: jclip count-tokens"* ]]
}

@test "no command or an unknown one exits 2" {
    run --separate-stderr "$JCLIP"
    [ "$status" -eq 2 ]
    [[ "$stderr" == usage:* ]]
    run --separate-stderr "$JCLIP" frobnicate
    [ "$status" -eq 2 ]
    [ "$stderr" = "jclip: 'frobnicate' is not a jclip command; see 'jclip help'" ]
}

@test "info shows the model, both towers, kernels and OpenBLAS" {
    run --separate-stderr "$JCLIP" info -m "$MODEL" -t 2
    [ "$status" -eq 0 ]
    [ "${lines[0]}" = "model:        $MODEL" ]
    [ "${lines[1]}" = "tensors:      75, 4,760,361 parameters, dtype F32" ]
    [ "${lines[2]}" = "embedding:    128 dimensions" ]
    [[ "${lines[3]}" == "logit scale:  4.60517025 (CLIP scale exp = 100.000008)" ]]
    [[ "${lines[4]}" == "text tower:   JinaBERT, 2 layers, width 128, 2 heads of 64, feed-forward 256, vocabulary 30528, "*" parameters" ]]
    [[ "${lines[5]}" == "vision tower: EVA-02 ViT, 2 layers, width 128, 2 heads of 64, MLP 341, 224 px in 16 px patches, "*" parameters" ]]
    [[ "${lines[6]}" =~ ^kernels:\ +(ref|avx2|avx512|neon) ]]
    [[ "${lines[7]}" == "openblas:     core type "* ]]
    [[ "${lines[8]}" == "few rows:     "* ]]
    [ "${lines[9]}" = "threads:      2" ]
}

@test "info: products of few rows in jclip's kernel in OpenBLAS's order, or on Haswell's for short texts in its own" {
    OPENBLAS_CORETYPE=Haswell run --separate-stderr "$JCLIP" info -m "$MODEL"
    [ "${lines[8]}" = "few rows:     texts of up to 16 tokens that OpenBLAS would pad by half or more, in jclip's own kernel and order (K in blocks of 320), in any batch; the rest through OpenBLAS (its order is not one jclip's kernel matches), texts under 256 tokens sharing groups of 12 for their last rows" ]
    OPENBLAS_CORETYPE=Haswell run --separate-stderr "$JCLIP" info -m "$MODEL" --json
    [ "$(echo "$output" | jq .few_rows)" = 0 ]
    [ "$(echo "$output" | jq .own_tokens)" = 16 ]
    [ "$(echo "$output" | jq .tail_split)" = 256 ]
    if "$JCLIP" info -m "$MODEL" | grep -q '^kernels: *avx512'; then
        OPENBLAS_CORETYPE=SkylakeX run --separate-stderr "$JCLIP" info -m "$MODEL"
        [ "${lines[8]}" = "few rows:     up to 64 in jclip's own kernel, in OpenBLAS's order (K in blocks of 448)" ]
        OPENBLAS_CORETYPE=SkylakeX run --separate-stderr "$JCLIP" info -m "$MODEL" --json
        [ "$(echo "$output" | jq .few_rows)" = 64 ]
        [ "$(echo "$output" | jq .own_tokens)" = 0 ]
        [ "$(echo "$output" | jq .tail_split)" = 0 ]
    fi
}

@test "info --json: version, the weights' SHA-256 and how it runs, for a driver to compare hosts" {
    run --separate-stderr "$JCLIP" info -m "$MODEL" -t 3 --json
    [ "$status" -eq 0 ]
    [ -z "$stderr" ]
    [ "${#lines[@]}" -eq 1 ]
    sum=$(sha256sum "$MODEL/model.safetensors" | cut -d' ' -f1)
    [ "$(echo "$output" | jq -c '[.version, .model, .model_sha256, .dtype, .parameters, .dimensions, .precision, .threads]')" = \
        "[\"$("$JCLIP" --version | cut -d' ' -f2)\",\"$MODEL\",\"$sum\",\"F32\",4760361,128,\"fp32\",3]" ]
    [ "$(echo "$output" | jq -r '.batch_invariant')" = true ]
    [ "$(echo "$output" | jq -r '.row_unroll | type')" = number ]
    [ "$(echo "$output" | jq -r .openblas_core)" = "$("$JCLIP" info -m "$MODEL" | sed -n 's/^openblas: *core type \([A-Za-z0-9]*\).*/\1/p')" ]
    # a model changed by one byte has another hash
    dir=$(model_copy)
    last=$(($(stat -c %s "$dir/model.safetensors") - 1))
    byte=$(od -An -tu1 -j "$last" -N1 "$dir/model.safetensors" | tr -d ' ')
    printf "\\$(printf %o $(((byte + 1) % 256)))" | dd of="$dir/model.safetensors" bs=1 seek="$last" conv=notrunc 2> /dev/null
    [ "$("$JCLIP" info -m "$dir" --json | jq -r .model_sha256)" != "$sum" ]
}

@test "JCLIP_ISA forces a kernel table; an unknown one is an error" {
    JCLIP_ISA=ref run "$JCLIP" info -m "$MODEL"
    [ "$status" -eq 0 ]
    [[ "$output" == *"kernels:      ref (0 kernels specialised"* ]]
    JCLIP_ISA=sse9 run --separate-stderr "$JCLIP" info -m "$MODEL"
    [ "$status" -eq 1 ]
    [ "$stderr" = "jclip info: JCLIP_ISA=sse9: unknown (use ref, avx2, avx512 or neon)" ]
}

@test "JCLIP_AMX=0 or 1 changes no fp32 output; any other value is an error" {
    want=$("$JCLIP" embed-text -m "$MODEL" "a photo of a cat")
    for v in 0 1 ""; do
        JCLIP_AMX=$v run --separate-stderr "$JCLIP" embed-text -m "$MODEL" "a photo of a cat"
        [ "$status" -eq 0 ]
        [ "$stderr" = "" ]
        [ "$output" = "$want" ]
    done
    JCLIP_AMX=yes run --separate-stderr "$JCLIP" info -m "$MODEL"
    [ "$status" -eq 1 ]
    [ "$output" = "" ]
    [ "$stderr" = "jclip info: JCLIP_AMX=yes: unknown (use 0 or 1)" ]
}

@test "the ref kernels and the selected ones agree within tolerance" {
    a=$(JCLIP_ISA=ref "$JCLIP" embed-text -m "$MODEL" "a photo of a cat")
    b=$("$JCLIP" embed-text -m "$MODEL" "a photo of a cat")
    d=$(jq -n --argjson a "$a" --argjson b "$b" '[range(0; $a | length) | ($a[.] - $b[.]) | fabs] | max')
    [ "$(echo "$d" | awk '{print ($1 < 1e-5)}')" -eq 1 ]
}

@test "a core type the user set is kept, with a warning when it is below the CPU's" {
    OPENBLAS_CORETYPE=Haswell run --separate-stderr "$JCLIP" info -m "$MODEL"
    [ "$status" -eq 0 ]
    [[ "$output" == *"openblas:     core type Haswell"* ]]
    best=$("$JCLIP" info -m "$MODEL" | sed -n 's/^openblas: *core type \([A-Za-z]*\).*/\1/p')
    case "$best" in
    SkylakeX|Cooperlake)
        [ "$stderr" = "jclip info: warning: OPENBLAS_CORETYPE=Haswell is below this CPU's best OpenBLAS core type, $best: matrix products run at about half speed or less; unset it to use $best" ] ;;
    *) [ -z "$stderr" ] ;;
    esac
    # the core type the CPU is best served by: no warning
    OPENBLAS_CORETYPE=$best run --separate-stderr "$JCLIP" info -m "$MODEL"
    [ "$status" -eq 0 ]
    [ -z "$stderr" ]
}

@test "a core type below the CPU's is replaced before any GEMM runs" {
    best=$("$JCLIP" info -m "$MODEL" | sed -n 's/^openblas: *core type \([A-Za-z]*\).*/\1/p')
    case "$best" in
    SkylakeX|Cooperlake|Haswell|Zen|Sandybridge) ;;
    *) skip "OpenBLAS core type $best on this CPU" ;;
    esac
    # OpenBLAS first loaded as a Prescott, as a misdetecting OpenBLAS would choose: jclip
    # unloads it and loads it again with the CPU's core type, without re-executing itself.
    JCLIP_DEBUG_CORENAME=Prescott LD_DEBUG=files run --separate-stderr "$JCLIP" info -m "$MODEL"
    [ "$status" -eq 0 ]
    [[ "$output" != *"core type Prescott"* ]]
    [[ "$output" =~ core\ type\ (SkylakeX|Cooperlake|Haswell|Sandybridge) ]]
    # under make valgrind the wrapper's shell and valgrind itself load libraries too
    [ -n "${JCLIP_REAL:-}" ] ||
        [ "$(grep -c 'file=libopenblas.so.0 \[0\];  dynamically loaded by' <<< "$stderr")" -eq 2 ]
    [ -n "${JCLIP_REAL:-}" ] || [ "$(grep -c 'initialize program: ' <<< "$stderr")" -eq 1 ]
}

@test "OpenBLAS is loaded only by commands that multiply matrices" {
    LD_DEBUG=files run --separate-stderr "$JCLIP" count-tokens -m "$MODEL" "a cat"
    [ "$status" -eq 0 ]
    [[ "$stderr" != *libopenblas* ]]
    LD_DEBUG=files run --separate-stderr "$JCLIP" embed-text -m "$MODEL" "a cat"
    [ "$status" -eq 0 ]
    [[ "$stderr" == *"file=libopenblas.so.0 [0];  dynamically loaded by"* ]]
}

@test "an OpenBLAS that cannot be loaded: the towers fail in one line, the tokenizer still runs" {
    mkdir "$BATS_TEST_TMPDIR/lib"
    : > "$BATS_TEST_TMPDIR/lib/libopenblas.so.0"
    LD_LIBRARY_PATH="$BATS_TEST_TMPDIR/lib" run --separate-stderr "$JCLIP" embed-text -m "$MODEL" hi
    [ "$status" -eq 1 ]
    [ -z "$output" ]
    [ "$stderr" = "jclip embed-text: cannot load OpenBLAS: $BATS_TEST_TMPDIR/lib/libopenblas.so.0: file too short" ]
    LD_LIBRARY_PATH="$BATS_TEST_TMPDIR/lib" run --separate-stderr "$JCLIP" count-tokens -m "$MODEL" hi
    [ "$status" -eq 0 ]
    [ "$output" = 3 ]
    [ -z "$stderr" ]
}
