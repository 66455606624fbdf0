#!/usr/bin/env bats
# jclip count-tokens

load helper

@test "counts include [CLS] and [SEP], one line per argument" {
    run --separate-stderr "$JCLIP" count-tokens -m "$MODEL" "a photo of a cat" "" "astronaut"
    [ "$status" -eq 0 ]
    [ "$output" = "$(printf '7\n2\n3')" ]
    [ -z "$stderr" ]
}

@test "--ids and --tokens" {
    run "$JCLIP" count-tokens -m "$MODEL" --ids "a photo of a cat"
    [ "$output" = "101 1037 6302 1997 1037 4937 102" ]
    run "$JCLIP" count-tokens -m "$MODEL" --tokens "Supercalifragilistic!"
    [ "$output" = "[CLS] super ##cal ##if ##rag ##ilis ##tic ! [SEP]" ]
}

@test "--total sums stdin lines" {
    run --separate-stderr bash -c "printf 'a photo of a cat\nastronaut\n' | '$JCLIP' count-tokens -m '$MODEL' --total"
    [ "$status" -eq 0 ]
    [ "$output" = "10" ]
}

@test "--file counts a whole file; --max-tokens truncates" {
    yes word | head -n 9000 > "$BATS_TEST_TMPDIR/long.txt"
    run "$JCLIP" count-tokens -m "$MODEL" --file "$BATS_TEST_TMPDIR/long.txt"
    [ "$output" = "9002" ]
    run "$JCLIP" count-tokens -m "$MODEL" --max-tokens 8192 --file "$BATS_TEST_TMPDIR/long.txt"
    [ "$output" = "8192" ]
}

@test "the golden texts count as the reference tokenizer does" {
    head -n 20 "$GOLDEN/texts.jsonl" | jq -r '.text' > /dev/null
    jq -r '.ids | length' "$GOLDEN/texts.jsonl" | head -n 3 > "$BATS_TEST_TMPDIR/want"
    run "$JCLIP" count-tokens -m "$MODEL" "a photo of a cat" "A dog running on the beach at sunset." "astronaut"
    [ "$output" = "$(cat "$BATS_TEST_TMPDIR/want")" ]
}

@test "no weights are read: a model directory without model.safetensors works" {
    dir=$(model_copy)
    rm "$dir/model.safetensors"
    run "$JCLIP" count-tokens -m "$dir" "hello world"
    [ "$status" -eq 0 ]
    [ "$output" = "4" ]
}

@test "vocab.txt is used when there is no tokenizer.json" {
    dir=$(model_copy)
    rm "$dir/tokenizer.json"
    run "$JCLIP" count-tokens -m "$dir" --ids "a photo of a cat"
    [ "$output" = "101 1037 6302 1997 1037 4937 102" ]
    rm "$dir/vocab.txt"
    run --separate-stderr "$JCLIP" count-tokens -m "$dir" hi
    [ "$status" -eq 1 ]
    [ "${#stderr_lines[@]}" -eq 1 ]
    [ "$stderr" = "jclip count-tokens: no tokenizer.json or vocab.txt in '$dir'" ]
}

@test "--image prints the API cost of 224 x 224 tiles from the header" {
    run --separate-stderr "$JCLIP" count-tokens --image "$GOLDEN/images/coffee.png" "$GOLDEN/images/synth_1x1.png"
    [ "$status" -eq 0 ]
    [ "${lines[0]}" = "$(printf '6000\t%s' "$GOLDEN/images/coffee.png")" ]
    [ "${lines[1]}" = "$(printf '1000\t%s' "$GOLDEN/images/synth_1x1.png")" ]
    run "$JCLIP" count-tokens --image --total "$GOLDEN/images/coffee.png" "$GOLDEN/images/hubble_deep_field.jpg"
    [ "$output" = "$((6000 + 5 * 4 * 1000))" ]
}

@test "--image on a bad file names it and exits 1" {
    : > "$BATS_TEST_TMPDIR/empty.png"
    echo "not an image" > "$BATS_TEST_TMPDIR/text.jpg"
    run --separate-stderr "$JCLIP" count-tokens --image "$BATS_TEST_TMPDIR/empty.png" "$BATS_TEST_TMPDIR/text.jpg" /nonexistent.png
    [ "$status" -eq 1 ]
    [ "${stderr_lines[0]}" = "jclip count-tokens: cannot read '$BATS_TEST_TMPDIR/empty.png': empty file" ]
    [[ "${stderr_lines[1]}" == "jclip count-tokens: cannot read '$BATS_TEST_TMPDIR/text.jpg': "* ]]
    [ "${stderr_lines[2]}" = "jclip count-tokens: cannot open '/nonexistent.png': No such file or directory" ]
    run --separate-stderr "$JCLIP" count-tokens --image
    [ "$status" -eq 2 ]
}

@test "invalid UTF-8 is counted as replaced, with a warning" {
    run --separate-stderr bash -c "printf 'caf\xe9\n' | '$JCLIP' count-tokens -m '$MODEL'"
    [ "$status" -eq 0 ]
    [ "$output" = "3" ]
    [ "$stderr" = "jclip count-tokens: warning: stdin line 1: invalid UTF-8 (1 sequence) replaced by U+FFFD" ]
}

@test "--image takes no text options" {
    run --separate-stderr "$JCLIP" count-tokens --image --ids "$GOLDEN/images/coffee.png"
    [ "$status" -eq 2 ]
    [ "${stderr_lines[0]}" = "jclip count-tokens: --image takes only --total and image files" ]
}

@test "after --, '-' is a text; stdin is read only once" {
    run --separate-stderr "$JCLIP" count-tokens -m "$MODEL" --tokens -- - -x
    [ "$status" -eq 0 ]
    [ "$output" = "$(printf '[CLS] - [SEP]\n[CLS] - x [SEP]')" ]
    run --separate-stderr "$JCLIP" count-tokens -m "$MODEL" - --file - < /dev/null
    [ "$status" -eq 2 ]
    [ "${stderr_lines[0]}" = "jclip count-tokens: stdin can be read only once ('-' and '--file -')" ]
}

@test "getopt's own messages carry the command's name" {
    run --separate-stderr "$JCLIP" count-tokens --idz
    [ "$status" -eq 2 ]
    [ "${stderr_lines[0]}" = "jclip count-tokens: unrecognized option '--idz'" ]
}

@test "argument numbers count TEXT arguments only" {
    run --separate-stderr "$JCLIP" count-tokens -m "$MODEL" --file /dev/null "$(printf 'caf\xe9')"
    [ "$status" -eq 0 ]
    [ "$stderr" = "jclip count-tokens: warning: argument 1: invalid UTF-8 (1 sequence) replaced by U+FFFD" ]
}
