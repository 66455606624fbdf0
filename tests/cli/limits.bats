#!/usr/bin/env bats
# The four input limits of jclip(1), LIMITS: each option lowers and raises its limit, on every
# command that takes it; a line or file over the limit is one error line naming the input and
# the limit, exit status 1 (a bad record in --jsonl mode); a text over --max-tokens is
# truncated with a warning; a bad value is a usage error.

load helper

IMAGES="$GOLDEN/images"

# 11 bytes of text, a newline, then 4
two_lines() {
    printf 'eleven byte\nfour\n'
}

@test "--max-line-bytes: embed-text refuses a longer stdin line, and the limit can be raised" {
    run --separate-stderr bash -c "printf 'four\nfive5\n' | '$JCLIP' embed-text -m '$MODEL' --max-line-bytes 4"
    [ "$status" -eq 1 ]
    [ -z "$output" ]
    [ "$stderr" = "jclip embed-text: stdin line 2 is longer than the limit of 4 bytes" ]
    # exactly at the limit is fine
    run --separate-stderr bash -c "printf 'four\nfive5\n' | '$JCLIP' embed-text -m '$MODEL' --max-line-bytes 5"
    [ "$status" -eq 0 ]
    [ "${#lines[@]}" -eq 2 ]
    [ -z "$stderr" ]
}

@test "--max-line-bytes: a line over the 64 MiB default passes when raised" {
    head -c $((65 << 20)) /dev/zero | tr '\0' a > "$BATS_TEST_TMPDIR/big"
    run --separate-stderr "$JCLIP" count-tokens -m "$MODEL" < "$BATS_TEST_TMPDIR/big"
    [ "$status" -eq 1 ]
    [ -z "$output" ]
    [ "$stderr" = "jclip count-tokens: stdin line 1 is longer than the limit of 67108864 bytes" ]
    run --separate-stderr "$JCLIP" count-tokens -m "$MODEL" --max-line-bytes $((66 << 20)) < "$BATS_TEST_TMPDIR/big"
    [ "$status" -eq 0 ]
    [[ "$output" =~ ^[0-9]+$ ]]
    [ -z "$stderr" ]
}

@test "--max-line-bytes: count-tokens counts the lines before the long one" {
    run --separate-stderr bash -c "printf 'a b\nc d e f g\n' | '$JCLIP' count-tokens -m '$MODEL' --max-line-bytes 5"
    [ "$status" -eq 1 ]
    [ "$output" = 4 ]
    [ "$stderr" = "jclip count-tokens: stdin line 2 is longer than the limit of 5 bytes" ]
}

@test "--max-line-bytes: a --jsonl record over it is a bad record and the run goes on" {
    in='{"id":1,"text":"a"}
{"id":2,"text":"a longer text"}
{"id":3,"text":"b"}'
    run --separate-stderr bash -c "echo '$in' | '$JCLIP' embed-text -m '$MODEL' --jsonl --max-line-bytes 20"
    [ "$status" -eq 0 ]
    [ "${#lines[@]}" -eq 3 ]
    [[ "${lines[0]}" == '{"id":1,"embedding":'* ]]
    [ "${lines[1]}" = '{"id":null,"error":"a line longer than the limit of 20 bytes"}' ]
    [[ "${lines[2]}" == '{"id":3,"embedding":'* ]]
    [ "$stderr" = "jclip embed-text: warning: stdin line 2: a line longer than the limit of 20 bytes" ]
    run --separate-stderr bash -c "echo '$in' | '$JCLIP' embed-text -m '$MODEL' --jsonl --max-line-bytes 31"
    [ "$status" -eq 0 ]
    [[ "${lines[1]}" == '{"id":2,"embedding":'* ]]
    [ -z "$stderr" ]
}

@test "--max-line-bytes: embed-image and classify records" {
    rec="{\"id\":1,\"image\":\"$IMAGES/coffee.png\"}"
    n=${#rec}
    run --separate-stderr bash -c "echo '$rec' | '$JCLIP' embed-image -m '$MODEL' --jsonl --max-line-bytes $((n - 1))"
    [ "$status" -eq 0 ]
    [ "$output" = "{\"id\":null,\"error\":\"a line longer than the limit of $((n - 1)) bytes\"}" ]
    [ "$stderr" = "jclip embed-image: warning: stdin line 1: a line longer than the limit of $((n - 1)) bytes" ]
    run --separate-stderr bash -c "echo '$rec' | '$JCLIP' embed-image -m '$MODEL' --jsonl --max-line-bytes $n"
    [ "$status" -eq 0 ]
    [[ "$output" == '{"id":1,"embedding":'* ]]
    run --separate-stderr bash -c "echo '$rec' | '$JCLIP' classify -m '$MODEL' -l cat,dog --jsonl --max-line-bytes $((n - 1))"
    [ "$status" -eq 0 ]
    [ "$output" = "{\"id\":null,\"error\":\"a line longer than the limit of $((n - 1)) bytes\"}" ]
    [ "$stderr" = "jclip classify: warning: stdin line 1: a line longer than the limit of $((n - 1)) bytes" ]
}

@test "--max-line-bytes: classify --text stdin lines and label-file lines" {
    run --separate-stderr bash -c "two_lines() { printf 'eleven byte\nfour\n'; }; two_lines | '$JCLIP' classify -m '$MODEL' -l cat,dog --text --max-line-bytes 10"
    [ "$status" -eq 1 ]
    [ -z "$output" ]
    [ "$stderr" = "jclip classify: stdin line 1 is longer than the limit of 10 bytes" ]
    two_lines > "$BATS_TEST_TMPDIR/labels"
    run --separate-stderr "$JCLIP" classify -m "$MODEL" --labels-file "$BATS_TEST_TMPDIR/labels" --text --max-line-bytes 10 hi
    [ "$status" -eq 1 ]
    [ -z "$output" ]
    [ "$stderr" = "jclip classify: '$BATS_TEST_TMPDIR/labels' line 1 is longer than the limit of 10 bytes" ]
    # the option counts wherever it is given: after --labels-file too
    run --separate-stderr "$JCLIP" classify -m "$MODEL" --labels-file "$BATS_TEST_TMPDIR/labels" --text -k 2 hi --max-line-bytes 11
    [ "$status" -eq 0 ]
    [ "${#lines[@]}" -eq 2 ]
    [ -z "$stderr" ]
}

@test "--max-file-bytes: embed-text and count-tokens --file, named; '-' is stdin" {
    printf 'a b c d e' > "$BATS_TEST_TMPDIR/nine"
    run --separate-stderr "$JCLIP" embed-text -m "$MODEL" --max-file-bytes 8 --file "$BATS_TEST_TMPDIR/nine"
    [ "$status" -eq 1 ]
    [ -z "$output" ]
    [ "$stderr" = "jclip embed-text: '$BATS_TEST_TMPDIR/nine' is larger than the limit of 8 bytes" ]
    run --separate-stderr "$JCLIP" embed-text -m "$MODEL" --max-file-bytes 9 --file "$BATS_TEST_TMPDIR/nine"
    [ "$status" -eq 0 ]
    [ "${#lines[@]}" -eq 1 ]
    [ -z "$stderr" ]
    # through a pipe there is no size to look at: it is read up to one byte past the limit
    run --separate-stderr bash -c "cat '$BATS_TEST_TMPDIR/nine' | '$JCLIP' count-tokens -m '$MODEL' --file - --max-file-bytes 8"
    [ "$status" -eq 1 ]
    [ -z "$output" ]
    [ "$stderr" = "jclip count-tokens: stdin is larger than the limit of 8 bytes" ]
    run --separate-stderr bash -c "cat '$BATS_TEST_TMPDIR/nine' | '$JCLIP' count-tokens -m '$MODEL' --file - --max-file-bytes 9"
    [ "$status" -eq 0 ]
    [ "$output" = 7 ]
}

@test "--max-file-bytes: a file over the 256 MiB default passes when raised" {
    truncate -s $(((256 << 20) + 1)) "$BATS_TEST_TMPDIR/sparse"
    run --separate-stderr "$JCLIP" count-tokens -m "$MODEL" --file "$BATS_TEST_TMPDIR/sparse"
    [ "$status" -eq 1 ]
    [ "$stderr" = "jclip count-tokens: '$BATS_TEST_TMPDIR/sparse' is larger than the limit of 268435456 bytes" ]
    # a smaller file and a limit raised above the default, without reading 256 MiB here
    printf 'a b c' > "$BATS_TEST_TMPDIR/small"
    run --separate-stderr "$JCLIP" count-tokens -m "$MODEL" --max-file-bytes $((1 << 30)) --file "$BATS_TEST_TMPDIR/small"
    [ "$status" -eq 0 ]
    [ "$output" = 5 ]
}

@test "--max-file-bytes: similarity --text-file and classify --labels-file" {
    printf '0123456789' > "$BATS_TEST_TMPDIR/ten"
    run --separate-stderr "$JCLIP" similarity -m "$MODEL" --text-file "$BATS_TEST_TMPDIR/ten" --text hi --max-file-bytes 9
    [ "$status" -eq 1 ]
    [ -z "$output" ]
    [ "$stderr" = "jclip similarity: '$BATS_TEST_TMPDIR/ten' is larger than the limit of 9 bytes" ]
    run --separate-stderr "$JCLIP" similarity -m "$MODEL" --text-file "$BATS_TEST_TMPDIR/ten" --text hi --max-file-bytes 10
    [ "$status" -eq 0 ]
    [[ "$output" =~ ^-?[0-9.e-]+$ ]]
    printf 'cat\ndog\n' > "$BATS_TEST_TMPDIR/labels"
    run --separate-stderr "$JCLIP" classify -m "$MODEL" --max-file-bytes 7 --labels-file "$BATS_TEST_TMPDIR/labels" --text hi
    [ "$status" -eq 1 ]
    [ -z "$output" ]
    [ "$stderr" = "jclip classify: '$BATS_TEST_TMPDIR/labels' is larger than the limit of 7 bytes" ]
    run --separate-stderr "$JCLIP" classify -m "$MODEL" --max-file-bytes 8 --labels-file "$BATS_TEST_TMPDIR/labels" --text hi
    [ "$status" -eq 0 ]
    [[ "$output" == hi$'\t'* ]]
}

@test "--max-tokens: classify and similarity truncate with a warning; raised, none" {
    # with the bare label as its prompt, "cat" is 3 tokens
    run --separate-stderr "$JCLIP" classify -m "$MODEL" -l cat,dog --template '{}' --text --max-tokens 4 "one two three four"
    [ "$status" -eq 0 ]
    [[ "$output" == "one two three four"$'\t'* ]]
    [ "$stderr" = "jclip classify: warning: argument 1: 6 tokens, truncated to 4" ]
    run --separate-stderr "$JCLIP" classify -m "$MODEL" -l cat,dog --template '{}' --text --max-tokens 6 "one two three four"
    [ "$status" -eq 0 ]
    [ -z "$stderr" ]
    # the prompts too: "a photo of a cat." is 8 tokens
    run --separate-stderr "$JCLIP" classify -m "$MODEL" -l cat --text --max-tokens 7 "x"
    [ "$status" -eq 0 ]
    [ "$stderr" = "jclip classify: warning: label 'cat': 8 tokens, truncated to 7" ]
    run --separate-stderr "$JCLIP" classify -m "$MODEL" -l cat --text --max-tokens 8 "x"
    [ "$status" -eq 0 ]
    [ -z "$stderr" ]
    run --separate-stderr "$JCLIP" similarity -m "$MODEL" --text "one two three four" --text hi --max-tokens 3
    [ "$status" -eq 0 ]
    [[ "$output" =~ ^-?[0-9.e-]+$ ]]
    [ "$stderr" = "jclip similarity: warning: text 'one two three four': 6 tokens, truncated to 3" ]
    a=$("$JCLIP" similarity -m "$MODEL" --text "one two three four" --text "one" --max-tokens 3)
    b=$("$JCLIP" similarity -m "$MODEL" --text "one two three four" --text "one" --max-tokens 6)
    [ "$a" != "$b" ]
}

@test "--max-tokens: past the 8192 default when raised" {
    yes word | head -n 9000 > "$BATS_TEST_TMPDIR/long.txt"
    run --separate-stderr "$JCLIP" embed-text -m "$MODEL" -f tsv --file "$BATS_TEST_TMPDIR/long.txt"
    [ "$status" -eq 0 ]
    [ "$stderr" = "jclip embed-text: warning: '$BATS_TEST_TMPDIR/long.txt': 9002 tokens, truncated to 8192" ]
    run --separate-stderr "$JCLIP" embed-text -m "$MODEL" -f tsv --max-tokens 9002 --file "$BATS_TEST_TMPDIR/long.txt"
    [ "$status" -eq 0 ]
    [ "${#lines[@]}" -eq 1 ]
    [ -z "$stderr" ]
}

@test "--max-pixels: similarity refuses a larger image; raised, it embeds it" {
    # coffee.png is 600 x 400
    run --separate-stderr "$JCLIP" similarity -m "$MODEL" -i "$IMAGES/coffee.png" --text hi --max-pixels 239999
    [ "$status" -eq 1 ]
    [ -z "$output" ]
    [ "$stderr" = "jclip similarity: '$IMAGES/coffee.png' is 600 x 400 = 240000 pixels, more than the limit of 239999" ]
    run --separate-stderr "$JCLIP" similarity -m "$MODEL" -i "$IMAGES/coffee.png" --text hi --max-pixels 240000
    [ "$status" -eq 0 ]
    [[ "$output" =~ ^-?[0-9.e-]+$ ]]
    [ -z "$stderr" ]
}

@test "--max-pixels: embed-image and classify, and in a record" {
    run --separate-stderr "$JCLIP" classify -m "$MODEL" -l cat,dog --max-pixels 239999 "$IMAGES/coffee.png"
    [ "$status" -eq 1 ]
    [ -z "$output" ]
    [ "$stderr" = "jclip classify: '$IMAGES/coffee.png' is 600 x 400 = 240000 pixels, more than the limit of 239999" ]
    run --separate-stderr "$JCLIP" classify -m "$MODEL" -l cat,dog --max-pixels 240000 "$IMAGES/coffee.png"
    [ "$status" -eq 0 ]
    [[ "$output" == "$IMAGES/coffee.png"$'\t'* ]]
    run --separate-stderr bash -c "echo '{\"id\":1,\"image\":\"$IMAGES/coffee.png\"}' | '$JCLIP' embed-image -m '$MODEL' --jsonl --max-pixels 239999"
    [ "$status" -eq 0 ]
    [ "$output" = "{\"id\":1,\"error\":\"'$IMAGES/coffee.png' is 600 x 400 = 240000 pixels, more than the limit of 239999\"}" ]
    run --separate-stderr "$JCLIP" embed-image -m "$MODEL" --max-pixels 240000 "$IMAGES/coffee.png"
    [ "$status" -eq 0 ]
    [ "${#lines[@]}" -eq 1 ]
}

@test "a limit out of range, or not a number, is a usage error" {
    for c in "embed-text --max-line-bytes 0" "count-tokens --max-file-bytes 0" \
        "classify -l a --max-line-bytes 1099511627777" "similarity --text a --text b --max-file-bytes x" \
        "embed-image --max-line-bytes -1"; do
        set -- $c
        run --separate-stderr "$JCLIP" "$@" -m "$MODEL"
        [ "$status" -eq 2 ] || { echo "$c: exit $status"; return 1; }
        want="jclip $1: ${*: -2:1}: '${*: -1}' is not a whole number from 1 to 1099511627776"
        [ "${stderr_lines[0]}" = "$want" ] || { echo "$c: ${stderr_lines[0]}"; return 1; }
    done
    run --separate-stderr "$JCLIP" similarity --text a --text b --max-tokens 1
    [ "$status" -eq 2 ]
    [ "${stderr_lines[0]}" = "jclip similarity: --max-tokens: '1' is not a whole number from 2 to 16777216" ]
    run --separate-stderr "$JCLIP" similarity --text a --text b --max-pixels 0
    [ "$status" -eq 2 ]
    [ "${stderr_lines[0]}" = "jclip similarity: --max-pixels: '0' is not a whole number from 1 to 1099511627776" ]
}

@test "count-tokens --image takes no text limit" {
    run --separate-stderr "$JCLIP" count-tokens --image --max-line-bytes 10 "$IMAGES/coffee.png"
    [ "$status" -eq 2 ]
    [ "${stderr_lines[0]}" = "jclip count-tokens: --image takes only --total and image files" ]
}
