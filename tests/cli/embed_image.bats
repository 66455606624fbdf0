#!/usr/bin/env bats
# jclip embed-image: inputs, outputs, options and bad files.

load helper

IMAGES="$GOLDEN/images"

# Row $2 (0-based) of a float32 .npy as one line of numbers.
npy_row() {
    local hl
    hl=$(od -An -tu2 -j8 -N2 "$1" | tr -d ' ')
    local cols=$3
    tail -c +$((10 + hl + 1 + $2 * cols * 4)) "$1" | head -c $((cols * 4)) | od -An -v -tf4 -w$((cols * 4))
}

# Cosine of two whitespace-separated vectors.
cosine() {
    awk -v a="$1" -v b="$2" 'BEGIN { n = split(a, x); split(b, y);
        for (i = 1; i <= n; i++) { ab += x[i] * y[i]; aa += x[i] * x[i]; bb += y[i] * y[i] }
        printf "%.9f\n", ab / sqrt(aa * bb) }'
}

@test "one PNG: a jsonl record with its path and a unit-norm embedding" {
    run --separate-stderr "$JCLIP" embed-image -m "$MODEL" "$IMAGES/coffee.png"
    [ "$status" -eq 0 ]
    [ -z "$stderr" ]
    [ "$(echo "$output" | jq -r .path)" = "$IMAGES/coffee.png" ]
    [ "$(echo "$output" | jq '.embedding | length')" -eq 128 ]
    n=$(echo "$output" | jq '[.embedding[] | . * .] | add | sqrt')
    [ "$(echo "$n" | awk '{print ($1 > 0.99999 && $1 < 1.00001)}')" -eq 1 ]
}

@test "--raw matches the reference's raw image features end to end" {
    run --separate-stderr "$JCLIP" embed-image -m "$MODEL" --raw -f tsv "$IMAGES/coffee.png" "$IMAGES/rocket.jpg"
    [ "$status" -eq 0 ]
    got=$(echo "${lines[0]}" | cut -f2- | tr '\t' ' ')
    want=$(npy_row "$GOLDEN/tiny/image_raw.npy" 1 128)
    [ "$(cosine "$got" "$want" | awk '{print ($1 >= 0.99999)}')" -eq 1 ]
    got=$(echo "${lines[1]}" | cut -f2- | tr '\t' ' ')
    want=$(npy_row "$GOLDEN/tiny/image_raw.npy" 3 128)
    [ "$(cosine "$got" "$want" | awk '{print ($1 >= 0.999)}')" -eq 1 ]
}

@test "--dump-pixels gives the reference pixels of a PNG bit for bit" {
    run --separate-stderr "$JCLIP" embed-image -m "$MODEL" --dump-pixels "$BATS_TEST_TMPDIR/px.npy" "$IMAGES/chelsea.png"
    [ "$status" -eq 0 ]
    head -c 128 "$BATS_TEST_TMPDIR/px.npy" | grep -q "'shape': (1, 3, 224, 224)"
    hl=$(od -An -tu2 -j8 -N2 "$BATS_TEST_TMPDIR/px.npy" | tr -d ' ')
    per=$((3 * 224 * 224 * 4))
    cmp <(tail -c +$((10 + hl + 1)) "$BATS_TEST_TMPDIR/px.npy") \
        <(tail -c +$((10 + 118 + 1 + 2 * per)) "$GOLDEN/pixels.npy" | head -c $per)
}

@test "-r walks a tree in sorted order, image files only; -o writes the .npy and its sidecar" {
    d="$BATS_TEST_TMPDIR/tree"
    mkdir -p "$d/b" "$d/a"
    cp "$IMAGES/coffee.png" "$d/b/z.png"
    cp "$IMAGES/synth_1x1.png" "$d/a/y.PNG"
    cp "$IMAGES/rocket.jpg" "$d/x.jpg"
    echo "notes" > "$d/readme.txt"
    run --separate-stderr "$JCLIP" embed-image -m "$MODEL" -r -o "$BATS_TEST_TMPDIR/out.npy" "$d"
    [ "$status" -eq 0 ]
    [ -z "$output" ]
    [ "$(cat "$BATS_TEST_TMPDIR/out.txt")" = "$(printf '%s\n' "$d/a/y.PNG" "$d/b/z.png" "$d/x.jpg")" ]
    head -c 128 "$BATS_TEST_TMPDIR/out.npy" | grep -q "'shape': (3, 128)"
    assert_no_tmp_files "$BATS_TEST_TMPDIR"
}

@test "paths from stdin, and '-' among arguments" {
    a=$("$JCLIP" embed-image -m "$MODEL" "$IMAGES/coffee.png" "$IMAGES/chelsea.png")
    run --separate-stderr bash -c "printf '%s\n\n%s\n' '$IMAGES/coffee.png' '$IMAGES/chelsea.png' | '$JCLIP' embed-image -m '$MODEL'"
    [ "$status" -eq 0 ]
    [ "$output" = "$a" ]
    run --separate-stderr bash -c "echo '$IMAGES/chelsea.png' | '$JCLIP' embed-image -m '$MODEL' '$IMAGES/coffee.png' -"
    [ "$output" = "$a" ]
}

@test "batch size and thread count do not change the output" {
    a=$("$JCLIP" embed-image -m "$MODEL" -b 1 -t 1 -r "$IMAGES")
    b=$("$JCLIP" embed-image -m "$MODEL" -b 7 -t 2 -r "$IMAGES")
    same_embeddings "$a" "$b"
    [ "$(echo "$a" | wc -l)" -eq 15 ]
}

@test "--format tsv and npy" {
    run --separate-stderr "$JCLIP" embed-image -m "$MODEL" -f tsv "$IMAGES/coffee.png"
    [ "$status" -eq 0 ]
    [ "$(echo "$output" | cut -f1)" = "$IMAGES/coffee.png" ]
    [ "$(echo "$output" | awk -F'\t' '{print NF}')" -eq 129 ]
    "$JCLIP" embed-image -m "$MODEL" -f npy "$IMAGES/coffee.png" > "$BATS_TEST_TMPDIR/s.npy"
    "$JCLIP" embed-image -m "$MODEL" -o "$BATS_TEST_TMPDIR/o.npy" "$IMAGES/coffee.png"
    cmp "$BATS_TEST_TMPDIR/s.npy" "$BATS_TEST_TMPDIR/o.npy"
}

# The catalogue of bad files, made fresh for each test.
make_bad_files() {
    bad="$BATS_TEST_TMPDIR/bad"
    mkdir -p "$bad/dir"
    : > "$bad/empty.png"
    head -c 3000 "$IMAGES/rocket.jpg" > "$bad/truncated.jpg"
    head -c 3000 "$IMAGES/coffee.png" > "$bad/truncated.png"
    echo "this is not an image" > "$bad/text.jpg"
    # a PNG signature and an IHDR claiming 100000 x 100000 RGB pixels, and nothing else
    printf '\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR\x00\x01\x86\xa0\x00\x01\x86\xa0\x08\x02\x00\x00\x00\x00\x00\x00\x00' > "$bad/huge.png"
}

@test "each bad file: one line naming it, exit 1, no output file" {
    make_bad_files
    for f in "$bad/empty.png" "$bad/truncated.jpg" "$bad/truncated.png" "$bad/text.jpg" \
        "$bad/huge.png" "$bad/dir" "$bad/missing.png"; do
        out="$BATS_TEST_TMPDIR/out.npy"
        run --separate-stderr "$JCLIP" embed-image -m "$MODEL" -o "$out" "$IMAGES/coffee.png" "$f"
        [ "$status" -eq 1 ] || { echo "$f: status $status"; return 1; }
        [ "${#stderr_lines[@]}" -eq 1 ] || { echo "$f: $stderr"; return 1; }
        [[ "$stderr" == "jclip embed-image: "*"$f"* ]] || { echo "$f: $stderr"; return 1; }
        [ ! -e "$out" ] && [ ! -e "${out%.npy}.txt" ]
        assert_no_tmp_files "$BATS_TEST_TMPDIR"
    done
}

@test "the messages say why" {
    make_bad_files
    run --separate-stderr "$JCLIP" embed-image -m "$MODEL" --keep-going "$bad/empty.png" "$bad/huge.png" "$bad/dir" "$bad/missing.png"
    [ "$status" -eq 1 ]
    [[ "${stderr_lines[0]}" == *"empty"* ]]
    [[ "${stderr_lines[1]}" == *"100000 x 100000"*"178956970"* ]]
    [ "${stderr_lines[2]}" = "jclip embed-image: '$bad/dir' is a directory (use -r to embed the images in it)" ]
    [[ "${stderr_lines[3]}" == *"No such file or directory"* ]]
    [ "${stderr_lines[4]}" = "jclip embed-image: 4 of 4 images skipped" ]
}

@test "an unreadable file" {
    make_bad_files
    cp "$IMAGES/coffee.png" "$bad/locked.png"
    chmod 000 "$bad/locked.png"
    chmod 755 "$BATS_TEST_TMPDIR" "$bad"
    run_as=()
    # root reads anything: run as nobody to see the refusal
    [ "$(id -u)" -ne 0 ] || run_as=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
    run --separate-stderr "${run_as[@]}" "$JCLIP" embed-image -m "$MODEL" "$bad/locked.png"
    [ "$status" -eq 1 ]
    [[ "$stderr" == "jclip embed-image: "*"'$bad/locked.png'"*"Permission denied" ]]
}

@test "--keep-going embeds the rest; outputs cover the good files only" {
    make_bad_files
    run --separate-stderr "$JCLIP" embed-image -m "$MODEL" --keep-going -o "$BATS_TEST_TMPDIR/k.npy" \
        "$IMAGES/coffee.png" "$bad/truncated.png" "$IMAGES/chelsea.png" "$bad/text.jpg"
    [ "$status" -eq 1 ]
    [ "${#stderr_lines[@]}" -eq 3 ]
    [ "${stderr_lines[2]}" = "jclip embed-image: 2 of 4 images skipped" ]
    head -c 128 "$BATS_TEST_TMPDIR/k.npy" | grep -q "'shape': (2, 128)"
    [ "$(cat "$BATS_TEST_TMPDIR/k.txt")" = "$(printf '%s\n' "$IMAGES/coffee.png" "$IMAGES/chelsea.png")" ]

    run --separate-stderr "$JCLIP" embed-image -m "$MODEL" --keep-going "$IMAGES/coffee.png" "$bad/truncated.png"
    [ "$status" -eq 1 ]
    [ "${#lines[@]}" -eq 2 ]
    [ "$(echo "${lines[1]}" | jq -r .path)" = "$bad/truncated.png" ]
    [ -n "$(echo "${lines[1]}" | jq -r .error)" ]
    [ "$(echo "${lines[1]}" | jq 'has("embedding")')" = false ]
}

@test "--max-pixels refuses from the header" {
    run --separate-stderr "$JCLIP" embed-image -m "$MODEL" --max-pixels 1000 "$IMAGES/coffee.png"
    [ "$status" -eq 1 ]
    [[ "$stderr" == *"600 x 400 = 240000 pixels"*"1000"* ]]
}

@test "--progress writes a progress line to stderr" {
    run --separate-stderr "$JCLIP" embed-image -m "$MODEL" --progress -o "$BATS_TEST_TMPDIR/p.npy" "$IMAGES/coffee.png"
    [ "$status" -eq 0 ]
    [[ "$stderr" == *"1/1 images, "*" images/s, ETA 0m00s" ]]
    run --separate-stderr "$JCLIP" embed-image -m "$MODEL" -o "$BATS_TEST_TMPDIR/p.npy" "$IMAGES/coffee.png"
    [ -z "$stderr" ]
}

@test "usage errors" {
    run --separate-stderr "$JCLIP" embed-image -m "$MODEL" --batch 0 x.png
    [ "$status" -eq 2 ]
    run --separate-stderr "$JCLIP" embed-image -m "$MODEL" -f xml x.png
    [ "$status" -eq 2 ]
    run --separate-stderr "$JCLIP" embed-image --help
    [ "$status" -eq 0 ]
    [[ "${lines[0]}" == "usage: jclip embed-image"* ]]
}

@test "-k, the old spelling of --keep-going, still works for one release, with a warning" {
    run --separate-stderr "$JCLIP" embed-image -m "$MODEL" --keep-going "$IMAGES/coffee.png" /nonexistent.png
    [ "$status" -eq 1 ]
    want=$output
    run --separate-stderr "$JCLIP" embed-image -m "$MODEL" -k "$IMAGES/coffee.png" /nonexistent.png
    [ "$status" -eq 1 ]
    [ "$output" = "$want" ]
    [ "${stderr_lines[0]}" = "jclip embed-image: warning: -k for --keep-going is deprecated: next release -k is --top, as everywhere; use --keep-going" ]
    [ "${stderr_lines[2]}" = "jclip embed-image: 1 of 2 images skipped" ]
}
