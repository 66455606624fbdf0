#!/usr/bin/env bats
# The bad-input catalogue: each case checks the exit status, the message and that no
# output file appears.

load helper

no_output() {
    [ ! -e "$BATS_TEST_TMPDIR/out.npy" ]
    assert_no_tmp_files "$BATS_TEST_TMPDIR"
}

@test "config.json: mlp_ratio 0" {
    dir=$(model_copy)
    jq '.vision_config.mlp_ratio = 0' "$MODEL/config.json" > "$dir/config.json"
    run --separate-stderr "$JCLIP" embed-image -m "$dir" -o "$BATS_TEST_TMPDIR/out.npy" "$GOLDEN/images/coffee.png"
    [ "$status" -eq 1 ]
    [ "$stderr" = "jclip embed-image: $dir/config.json: vision_config.mlp_ratio 0 gives no MLP" ]
    no_output
}

@test "config.json: a vision width not divisible by head_width" {
    dir=$(model_copy)
    jq '.vision_config.width = 100' "$MODEL/config.json" > "$dir/config.json"
    run --separate-stderr "$JCLIP" embed-image -m "$dir" -o "$BATS_TEST_TMPDIR/out.npy" "$GOLDEN/images/coffee.png"
    [ "$status" -eq 1 ]
    [ "$stderr" = "jclip embed-image: $dir/config.json: vision_config.width 100 is not a multiple of head_width 64" ]
    no_output
}

@test "a vocab with duplicate tokens" {
    dir=$(model_copy)
    rm "$dir/tokenizer.json"
    { cat "$MODEL/vocab.txt"; echo "the"; } > "$dir/vocab.txt"
    run --separate-stderr "$JCLIP" embed-text -m "$dir" -o "$BATS_TEST_TMPDIR/out.npy" hi
    [ "$status" -eq 1 ]
    [ "${#stderr_lines[@]}" -eq 1 ]
    [[ "$stderr" == "jclip embed-text: "*"vocab.txt"*"the"* ]]
    no_output
}

@test "a 100 MB line on stdin: a clear error, bounded memory" {
    run --separate-stderr bash -c "head -c 100000000 /dev/zero | tr '\\0' a | /usr/bin/time -f '%M' '$JCLIP' embed-text -m '$MODEL' -o '$BATS_TEST_TMPDIR/out.npy'"
    [ "$status" -eq 1 ]
    [ "${stderr_lines[0]}" = "jclip embed-text: stdin line 1 is longer than the limit of 67108864 bytes" ]
    # peak RSS in KB: the line is refused at the limit, not read whole
    [ "${stderr_lines[-1]}" -lt 400000 ]
    no_output
}

@test "10,000 empty files under --keep-going" {
    mkdir "$BATS_TEST_TMPDIR/empty"
    (cd "$BATS_TEST_TMPDIR/empty" && for i in $(seq 10000); do : > "f$i.png"; done)
    run --separate-stderr "$JCLIP" embed-image -m "$MODEL" --keep-going -r "$BATS_TEST_TMPDIR/empty" -o "$BATS_TEST_TMPDIR/all.npy"
    [ "$status" -eq 1 ]
    [ "${#stderr_lines[@]}" -eq 10001 ]
    [ "${stderr_lines[10000]}" = "jclip embed-image: 10000 of 10000 images skipped" ]
    head -c 128 "$BATS_TEST_TMPDIR/all.npy" | grep -q "'shape': (0, 128)"
}

@test "-o into a read-only directory fails before any compute" {
    mkdir "$BATS_TEST_TMPDIR/ro"
    chmod 555 "$BATS_TEST_TMPDIR/ro"
    chmod 755 "$BATS_TEST_TMPDIR"
    run_as=()
    # root writes anywhere: run as nobody to see the refusal
    [ "$(id -u)" -ne 0 ] || run_as=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
    run --separate-stderr "${run_as[@]}" "$JCLIP" embed-text -m "$MODEL" -o "$BATS_TEST_TMPDIR/ro/x.npy" hi
    [ "$status" -eq 1 ]
    [[ "$stderr" == "jclip embed-text: cannot create '$BATS_TEST_TMPDIR/ro/x.npy.tmp."*"': Permission denied" ]]
    [ -z "$(ls -A "$BATS_TEST_TMPDIR/ro")" ]
}

@test "stdout closed early: a quiet exit, no error storm" {
    run --separate-stderr bash -c "yes 'a line of text' | head -n 3000 | '$JCLIP' embed-text -m '$MODEL' | head -n 1 > /dev/null; echo \${PIPESTATUS[2]}"
    [ "$output" = 141 ] # killed by SIGPIPE, as cat and grep are
    [ -z "$stderr" ]
    run --separate-stderr bash -c "'$JCLIP' embed-image -m '$MODEL' -r '$GOLDEN/images' | head -n 1 > /dev/null"
    [ -z "$stderr" ]
}

@test "a header claiming 2^40 elements does not overflow the size arithmetic" {
    dir=$(model_copy)
    edit_header "$dir/model.safetensors" '.["text_model.transformer.emb_ln.bias"].shape = [1099511627776, 1099511627776]'
    run --separate-stderr "$JCLIP" embed-text -m "$dir" -o "$BATS_TEST_TMPDIR/out.npy" hi
    [ "$status" -eq 1 ]
    [ "$stderr" = "jclip embed-text: $dir/model.safetensors: tensor 'text_model.transformer.emb_ln.bias' has too many elements" ]
    no_output
}

@test "duplicate tensor names, unknown dtypes, overlapping ranges" {
    dir=$(model_copy)
    cp "$dir/model.safetensors" "$BATS_TEST_TMPDIR/orig"
    # jq cannot write a duplicate key: splice one into the JSON text after jq's pass
    edit_header "$dir/model.safetensors" '.' 'sub("}$"; ",\"logit_scale\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}}")'
    run --separate-stderr "$JCLIP" embed-text -m "$dir" hi
    [ "$status" -eq 1 ]
    [ "$stderr" = "jclip embed-text: $dir/model.safetensors: tensor 'logit_scale' appears twice" ]
    cp "$BATS_TEST_TMPDIR/orig" "$dir/model.safetensors"
    edit_header "$dir/model.safetensors" '.["text_model.transformer.emb_ln.bias"].dtype = "Q4_K"'
    run --separate-stderr "$JCLIP" embed-text -m "$dir" hi
    [ "$status" -eq 1 ]
    [ "$stderr" = "jclip embed-text: $dir/model.safetensors: tensor 'text_model.transformer.emb_ln.bias' has unknown dtype 'Q4_K'" ]
    cp "$BATS_TEST_TMPDIR/orig" "$dir/model.safetensors"
    edit_header "$dir/model.safetensors" '.["text_model.transformer.emb_ln.bias"].data_offsets = .["text_model.transformer.emb_ln.weight"].data_offsets'
    run --separate-stderr "$JCLIP" embed-text -m "$dir" hi
    [ "$status" -eq 1 ]
    [[ "$stderr" == "jclip embed-text: $dir/model.safetensors: tensors '"*"' and '"*"' overlap" ]]
}
