#!/usr/bin/env bats
# --precision and JCLIP_PRECISION (jclip(1), PRECISION): the values taken, the one warning
# where the kernels have no bf16 products, and what info reports. The portable kernels
# (JCLIP_ISA=ref) have bf16 products on every CPU, so the bf16 path runs here too.

load helper

IMAGES="$GOLDEN/images"
TEXTS=("a photo of a cat" "a cup of coffee on a wooden table" "x")

# The least cosine between the rows of two embed-text or embed-image JSON-lines outputs,
# row by row; fails when the row counts differ.
min_cosine() {
    jq -n --slurpfile a <(echo "$1") --slurpfile b <(echo "$2") '
        def vec: if type == "object" then .embedding else . end;
        if ($a | length) != ($b | length) or ($a | length) == 0 then error("row counts differ")
        else [range(0; $a | length) as $i | ($a[$i] | vec) as $x | ($b[$i] | vec) as $y
              | ([range(0; $x | length) as $k | $x[$k] * $y[$k]] | add)
                / (([$x[] | . * .] | add | sqrt) * ([$y[] | . * .] | add | sqrt))] | min
        end'
}

# Runs `jclip $1 -m MODEL --precision fp16 ARGS...` and checks the usage error.
unknown_precision() {
    local c=$1
    shift
    run --separate-stderr timeout 60 "$JCLIP" "$c" -m "$MODEL" --precision fp16 "$@"
    [ "$status" -eq 2 ] || { echo "$c: exit $status: $stderr"; return 1; }
    [ -z "$output" ] || { echo "$c: output: $output"; return 1; }
    [ "$stderr" = "jclip $c: --precision: 'fp16' is unknown (use fp32 or bf16)" ] ||
        { echo "$c: $stderr"; return 1; }
}

@test "precision: an unknown --precision is a usage error that names it" {
    unknown_precision embed-text hi
    unknown_precision embed-image "$IMAGES/coffee.png"
    unknown_precision similarity --text a --text b
    unknown_precision classify -l cat,dog --text hi
    unknown_precision serve --port 0
    unknown_precision info
    # names are not case-folded or abbreviated
    run --separate-stderr "$JCLIP" embed-text -m "$MODEL" --precision BF16 hi
    [ "$status" -eq 2 ]
    [ "$stderr" = "jclip embed-text: --precision: 'BF16' is unknown (use fp32 or bf16)" ]
}

@test "precision: an unknown JCLIP_PRECISION is an error that names it; --precision overrides it" {
    JCLIP_PRECISION=bogus run --separate-stderr "$JCLIP" embed-text -m "$MODEL" hi
    [ "$status" -eq 1 ]
    [ -z "$output" ]
    [ "$stderr" = "jclip embed-text: JCLIP_PRECISION: 'bogus' is unknown (use fp32 or bf16)" ]
    JCLIP_PRECISION=bogus run --separate-stderr "$JCLIP" embed-image -m "$MODEL" "$IMAGES/coffee.png"
    [ "$status" -eq 1 ]
    [ "$stderr" = "jclip embed-image: JCLIP_PRECISION: 'bogus' is unknown (use fp32 or bf16)" ]
    JCLIP_PRECISION=bogus run --separate-stderr "$JCLIP" info -m "$MODEL"
    [ "$status" -eq 1 ]
    [ "$stderr" = "jclip info: JCLIP_PRECISION: 'bogus' is unknown (use fp32 or bf16)" ]
    # the option wins, and the variable is not read
    want=$("$JCLIP" embed-text -m "$MODEL" hi)
    JCLIP_PRECISION=bogus run --separate-stderr "$JCLIP" embed-text -m "$MODEL" --precision fp32 hi
    [ "$status" -eq 0 ]
    [ -z "$stderr" ]
    [ "$output" = "$want" ]
    # an empty value is ignored
    JCLIP_PRECISION= run --separate-stderr "$JCLIP" embed-text -m "$MODEL" hi
    [ "$status" -eq 0 ]
    [ -z "$stderr" ]
    [ "$output" = "$want" ]
}

@test "precision: bf16 on kernels without bf16 products warns once and gives fp32's bits" {
    [ "$(uname -m)" = x86_64 ] && JCLIP_ISA=avx2 "$JCLIP" info -m "$MODEL" > /dev/null 2>&1 ||
        skip "the avx2 kernels cannot run here"
    JCLIP_ISA=avx2 "$JCLIP" embed-text -m "$MODEL" -o "$BATS_TEST_TMPDIR/fp32.npy" "${TEXTS[@]}"
    JCLIP_ISA=avx2 run --separate-stderr "$JCLIP" embed-text -m "$MODEL" --precision bf16 \
        -o "$BATS_TEST_TMPDIR/bf16.npy" "${TEXTS[@]}"
    [ "$status" -eq 0 ]
    [ "${#stderr_lines[@]}" -eq 1 ]
    [ "$stderr" = "jclip embed-text: warning: --precision bf16: the avx2 kernels have no bf16 products; running fp32" ]
    cmp "$BATS_TEST_TMPDIR/fp32.npy" "$BATS_TEST_TMPDIR/bf16.npy"
    # from the environment, the warning names the variable
    want=$(JCLIP_ISA=avx2 "$JCLIP" embed-text -m "$MODEL" "${TEXTS[@]}")
    JCLIP_ISA=avx2 JCLIP_PRECISION=bf16 run --separate-stderr "$JCLIP" embed-text -m "$MODEL" "${TEXTS[@]}"
    [ "$status" -eq 0 ]
    [ "${#stderr_lines[@]}" -eq 1 ]
    [ "$stderr" = "jclip embed-text: warning: JCLIP_PRECISION=bf16: the avx2 kernels have no bf16 products; running fp32" ]
    [ "$output" = "$want" ]
    # info says what is in effect
    JCLIP_ISA=avx2 run --separate-stderr "$JCLIP" info -m "$MODEL" --json --precision bf16
    [ "$status" -eq 0 ]
    [ "${#stderr_lines[@]}" -eq 1 ]
    [ "$(echo "$output" | jq -c '[.precision, .bf16_instructions, .kernels]')" = '["fp32",null,"avx2"]' ]
}

@test "precision: info shows bf16, its instructions and the matrices in half the memory" {
    JCLIP_ISA=ref run --separate-stderr "$JCLIP" info -m "$MODEL" --json --precision bf16
    [ "$status" -eq 0 ]
    [ -z "$stderr" ]
    [ "$(echo "$output" | jq -c '[.precision, .bf16_instructions]')" = '["bf16","scalar reference"]' ]
    bf16=$(echo "$output" | jq .matrix_bytes)
    run --separate-stderr env JCLIP_ISA=ref "$JCLIP" info -m "$MODEL" --json
    [ "$status" -eq 0 ]
    [ "$(echo "$output" | jq -c '[.precision, .bf16_instructions]')" = '["fp32","scalar reference"]' ]
    fp32=$(echo "$output" | jq .matrix_bytes)
    echo "matrix bytes: fp32 $fp32, bf16 $bf16"
    [ "$fp32" -gt 0 ]
    [ $((2 * bf16)) -ge "$fp32" ] # padded, never below half
    [ $((100 * bf16)) -lt $((55 * fp32)) ]
    # JCLIP_PRECISION gives the default
    [ "$(JCLIP_ISA=ref JCLIP_PRECISION=bf16 "$JCLIP" info -m "$MODEL" --json | jq .matrix_bytes)" = "$bf16" ]
    # the lines for people
    JCLIP_ISA=ref run --separate-stderr "$JCLIP" info -m "$MODEL" --precision bf16
    [ "$status" -eq 0 ]
    [[ "$output" == *$'\nprecision:    bf16 (scalar reference)\n'* ]]
    [[ "$output" =~ $'\n'weights:\ +[0-9]+\.[0-9]\ MiB\ of\ linear-layer\ matrices\ in\ memory ]]
    run --separate-stderr "$JCLIP" info -m "$MODEL"
    [[ "$output" == *$'\nprecision:    fp32\n'* ]]
}

@test "precision: bf16 texts on the ref kernels are close to fp32's, not the same bits" {
    fp32=$(JCLIP_ISA=ref "$JCLIP" embed-text -m "$MODEL" "${TEXTS[@]}")
    JCLIP_ISA=ref run --separate-stderr "$JCLIP" embed-text -m "$MODEL" --precision bf16 "${TEXTS[@]}"
    [ "$status" -eq 0 ]
    [ -z "$stderr" ]
    [ "${#lines[@]}" -eq 3 ]
    [ "$output" != "$fp32" ]
    cos=$(min_cosine "$fp32" "$output")
    echo "least cosine to fp32: $cos"
    [ "$(echo "$cos" | awk '{ print ($1 > 0.999) }')" -eq 1 ]
}

@test "precision: bf16 images on the ref kernels are close to fp32's, not the same bits" {
    fp32=$(JCLIP_ISA=ref "$JCLIP" embed-image -m "$MODEL" "$IMAGES/coffee.png" "$IMAGES/chelsea.png")
    JCLIP_ISA=ref run --separate-stderr "$JCLIP" embed-image -m "$MODEL" --precision bf16 \
        "$IMAGES/coffee.png" "$IMAGES/chelsea.png"
    [ "$status" -eq 0 ]
    [ -z "$stderr" ]
    [ "${#lines[@]}" -eq 2 ]
    [ "$output" != "$fp32" ]
    cos=$(min_cosine "$fp32" "$output")
    echo "least cosine to fp32: $cos"
    [ "$(echo "$cos" | awk '{ print ($1 > 0.999) }')" -eq 1 ]
}
