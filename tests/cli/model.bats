#!/usr/bin/env bats
# Finding and loading the model: every bad model gives one line naming the file, exit 1,
# and no output file.

load helper

embed_fails() {
    local dir="$1"
    out="$BATS_TEST_TMPDIR/out.npy"
    run --separate-stderr "$JCLIP" embed-text -m "$dir" -o "$out" "some text"
    [ "$status" -eq 1 ]
    [ -z "$output" ]
    [ "${#stderr_lines[@]}" -eq 1 ]
    [ ! -e "$out" ]
    assert_no_tmp_files "$BATS_TEST_TMPDIR"
}

@test "a missing model directory" {
    embed_fails "$BATS_TEST_TMPDIR/nowhere"
    [ "$stderr" = "jclip embed-text: model directory '$BATS_TEST_TMPDIR/nowhere' does not exist" ]
}

@test "no model anywhere: the error lists every place looked at" {
    run --separate-stderr "$JCLIP" embed-text hi
    [ "$status" -eq 1 ]
    [ "${#stderr_lines[@]}" -eq 1 ]
    [[ "$stderr" == *"-m/--model (not given)"* ]]
    [[ "$stderr" == *'$JCLIP_MODEL (not set)'* ]]
    [[ "$stderr" == *"$HF_HOME/hub/models--jinaai--jina-clip-v1 (not found)"* ]]
    [[ "$stderr" == *"get it with 'jclip download'"* ]]
}

@test "JCLIP_MODEL and the Hugging Face cache are found" {
    JCLIP_MODEL="$MODEL" run --separate-stderr "$JCLIP" embed-text hi
    [ "$status" -eq 0 ]
    want="$output"
    snap="$HF_HOME/hub/models--jinaai--jina-clip-v1/snapshots/0123abc"
    mkdir -p "$snap" "$HF_HOME/hub/models--jinaai--jina-clip-v1/refs"
    ln -s "$MODEL"/* "$snap"/
    echo 0123abc > "$HF_HOME/hub/models--jinaai--jina-clip-v1/refs/main"
    run --separate-stderr "$JCLIP" embed-text hi
    [ "$status" -eq 0 ]
    [ "$output" = "$want" ]
    run "$JCLIP" info
    [[ "${lines[0]}" == "model:        $snap" ]]
}

@test "config.json missing" {
    dir=$(model_copy)
    rm "$dir/config.json"
    embed_fails "$dir"
    [ "$stderr" = "jclip embed-text: cannot open '$dir/config.json': No such file or directory" ]
}

@test "config.json malformed" {
    dir=$(model_copy)
    echo '{"text_config": {' > "$dir/config.json"
    embed_fails "$dir"
    [ "$stderr" = "jclip embed-text: $dir/config.json: not a JSON object" ]
}

@test "config.json with a string where a number belongs" {
    dir=$(model_copy)
    jq '.text_config.hf_model_config_kwargs.num_attention_heads = "2"' "$MODEL/config.json" > "$dir/config.json"
    embed_fails "$dir"
    [[ "$stderr" == *"config.json: text_config.hf_model_config_kwargs.num_attention_heads must be a whole number"* ]]
}

@test "model.safetensors missing" {
    dir=$(model_copy)
    rm "$dir/model.safetensors"
    embed_fails "$dir"
    [ "$stderr" = "jclip embed-text: cannot open '$dir/model.safetensors': No such file or directory" ]
}

@test "model.safetensors truncated" {
    dir=$(model_copy)
    truncate -s 1000000 "$dir/model.safetensors"
    embed_fails "$dir"
    [[ "$stderr" == "jclip embed-text: $dir/model.safetensors: tensor '"*"' lie outside the "*" bytes of data" || "$stderr" == *"larger than the file's data" ]]
}

@test "model.safetensors shorter than its length field" {
    dir=$(model_copy)
    truncate -s 5 "$dir/model.safetensors"
    embed_fails "$dir"
    [ "$stderr" = "jclip embed-text: $dir/model.safetensors: truncated: 5 bytes, no header" ]
}

@test "a header length beyond the file" {
    dir=$(model_copy)
    printf '\xff\xff\xff\xff\x00\x00\x00\x00' | dd of="$dir/model.safetensors" conv=notrunc status=none
    embed_fails "$dir"
    [[ "$stderr" == "jclip embed-text: $dir/model.safetensors: header length 4294967295 runs past the end of the "*"-byte file" ]]
}

@test "a tensor offset out of range" {
    dir=$(model_copy)
    edit_header "$dir/model.safetensors" '.["text_model.transformer.emb_ln.bias"].data_offsets = [99999999000, 99999999512]'
    embed_fails "$dir"
    [[ "$stderr" == "jclip embed-text: $dir/model.safetensors: tensor 'text_model.transformer.emb_ln.bias' data_offsets [99999999000, 99999999512] lie outside the "*" bytes of data" ]]
}

@test "a missing tensor is named" {
    dir=$(model_copy)
    edit_header "$dir/model.safetensors" 'del(.["text_model.transformer.encoder.layers.1.norm2.bias"])'
    embed_fails "$dir"
    [ "$stderr" = "jclip embed-text: $dir/model.safetensors: tensor 'text_model.transformer.encoder.layers.1.norm2.bias' is missing" ]
}

@test "a mis-shaped tensor is named with expected and found shapes" {
    dir=$(model_copy)
    edit_header "$dir/model.safetensors" '.["text_model.transformer.encoder.layers.0.mixer.out_proj.weight"].shape = [64, 256]'
    embed_fails "$dir"
    [ "$stderr" = "jclip embed-text: $dir/model.safetensors: tensor 'text_model.transformer.encoder.layers.0.mixer.out_proj.weight' has shape [64, 256], expected [128, 128]" ]
}

@test "a header that is not JSON" {
    dir=$(model_copy)
    printf '\x08\x00\x00\x00\x00\x00\x00\x00{nojson}' > "$dir/model.safetensors"
    embed_fails "$dir"
    [ "$stderr" = "jclip embed-text: $dir/model.safetensors: header is not a JSON object" ]
}

@test "embed-text never touches the vision tensors" {
    dir=$(model_copy)
    edit_header "$dir/model.safetensors" 'del(.["vision_model.blocks.0.mlp.w3.weight"]) | .["vision_model.norm.bias"].shape = [2, 64]'
    run --separate-stderr "$JCLIP" embed-text -m "$dir" hi
    [ "$status" -eq 0 ]
    [ "$output" = "$("$JCLIP" embed-text -m "$MODEL" hi)" ]
}

@test "F16 and BF16 tensors are accepted" {
    dir=$(model_copy)
    # Re-type one bias as BF16 over the first half of its bytes: a valid file with other values.
    edit_header "$dir/model.safetensors" '.["text_model.transformer.emb_ln.bias"] |= (.dtype = "BF16" | .data_offsets[1] = .data_offsets[0] + 256)'
    run --separate-stderr "$JCLIP" embed-text -m "$dir" hi
    [ "$status" -eq 0 ]
    [ "$(echo "$output" | jq length)" -eq 128 ]
    edit_header "$dir/model.safetensors" '.["text_model.transformer.emb_ln.bias"].dtype = "F16"'
    run --separate-stderr "$JCLIP" embed-text -m "$dir" hi
    [ "$status" -eq 0 ]
    edit_header "$dir/model.safetensors" '.["text_model.transformer.emb_ln.bias"].dtype = "I16"'
    run --separate-stderr "$JCLIP" embed-text -m "$dir" hi
    [ "$status" -eq 1 ]
    [ "$stderr" = "jclip embed-text: $dir/model.safetensors: tensor 'text_model.transformer.emb_ln.bias' has dtype I16; jclip reads F32, F16 and BF16" ]
}
