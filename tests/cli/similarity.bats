#!/usr/bin/env bats
# jclip similarity

load helper

IMAGES="$GOLDEN/images"

@test "two inputs give one cosine, symmetric, and 1 for an input with itself" {
    run --separate-stderr "$JCLIP" similarity -m "$MODEL" --text "a cat" -i "$IMAGES/chelsea.png"
    [ "$status" -eq 0 ]
    [ "${#lines[@]}" -eq 1 ]
    ab="$output"
    run "$JCLIP" similarity -m "$MODEL" -i "$IMAGES/chelsea.png" --text "a cat"
    [ "$output" = "$ab" ]
    run "$JCLIP" similarity -m "$MODEL" --text "a cat" --text "a cat"
    [ "$(echo "$output" | awk '{print ($1 > 0.99999 && $1 < 1.00001)}')" -eq 1 ]
}

@test "the cosine equals the dot product of the embed-* vectors" {
    t=$("$JCLIP" embed-text -m "$MODEL" "a cat")
    i=$("$JCLIP" embed-image -m "$MODEL" "$IMAGES/chelsea.png" | jq -c .embedding)
    want=$(jq -n --argjson a "$t" --argjson b "$i" '[range(0; 128) | $a[.] * $b[.]] | add')
    got=$("$JCLIP" similarity -m "$MODEL" --text "a cat" -i "$IMAGES/chelsea.png")
    [ "$(awk -v a="$want" -v b="$got" 'BEGIN {d = a - b; print (d < 1e-6 && d > -1e-6)}')" -eq 1 ]
}

@test "every pairing: text x image, image x text, text x text, image x image" {
    for pair in "--text x -i $IMAGES/coffee.png" "-i $IMAGES/coffee.png --text x" "--text x --text y" "-i $IMAGES/coffee.png -i $IMAGES/chelsea.png"; do
        run --separate-stderr "$JCLIP" similarity -m "$MODEL" $pair
        [ "$status" -eq 0 ]
        [[ "$output" =~ ^-?[0-9] ]]
    done
}

@test "queries --against candidates give a labelled matrix" {
    run --separate-stderr "$JCLIP" similarity -m "$MODEL" --text "a cat" --text "a dog" --against -i "$IMAGES/chelsea.png" -i "$IMAGES/coffee.png" -i "$IMAGES/astronaut.png"
    [ "$status" -eq 0 ]
    [ "${#lines[@]}" -eq 3 ]
    [ "${lines[0]}" = "$(printf '\t%s\t%s\t%s' "$IMAGES/chelsea.png" "$IMAGES/coffee.png" "$IMAGES/astronaut.png")" ]
    [ "$(echo "${lines[1]}" | cut -f1)" = "a cat" ]
    [ "$(echo "${lines[2]}" | awk -F'\t' '{print NF}')" -eq 4 ]
    run "$JCLIP" similarity -m "$MODEL" --text "a cat" --text "a dog" --against -i "$IMAGES/chelsea.png" -f json
    [ "$(echo "$output" | jq -c '[.rows, (.scores | length), (.scores[0] | length)]')" = '[["a cat","a dog"],2,1]' ]
}

@test "search a stored .npy with --top, no model needed" {
    "$JCLIP" embed-image -m "$MODEL" -r -o "$BATS_TEST_TMPDIR/imgs.npy" "$IMAGES"
    "$JCLIP" embed-text -m "$MODEL" -o "$BATS_TEST_TMPDIR/q.npy" "a photo of coffee" "a cat"
    run --separate-stderr "$JCLIP" similarity "$BATS_TEST_TMPDIR/q.npy" --against "$BATS_TEST_TMPDIR/imgs.npy" --top 3
    [ "$status" -eq 0 ]
    [ "${#lines[@]}" -eq 6 ]
    [ "$(echo "${lines[0]}" | cut -f1)" = "$BATS_TEST_TMPDIR/q.npy:0" ]
    [[ "$(echo "${lines[0]}" | cut -f2)" == "$IMAGES/"* ]]
    [ "$(echo "$output" | head -3 | cut -f3 | sort -gr)" = "$(echo "$output" | head -3 | cut -f3)" ]
    # the same scores as the model-based query
    run "$JCLIP" similarity -m "$MODEL" --text "a photo of coffee" --against "$BATS_TEST_TMPDIR/imgs.npy" --top 3
    [ "$(echo "$output" | cut -f2,3)" = "$("$JCLIP" similarity "$BATS_TEST_TMPDIR/q.npy" --against "$BATS_TEST_TMPDIR/imgs.npy" --top 3 | head -3 | cut -f2,3)" ]
}

# Raw rows (not normalised) of width 24, row r of a file holding a_r = sin(r * (c + 1) * 0.37)
# in column c, offset by `first`: the same row in two files is the same floats.
write_npy() { # FILE FIRST ROWS
    python3 - "$1" "$2" "$3" <<'PY'
import math, struct, sys
path, first, rows = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
hdr = "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, 24), }" % rows
hdr += " " * (117 - len(hdr)) + "\n"
with open(path, "wb") as f:
    f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr.encode())
    for r in range(first, first + rows):
        f.write(struct.pack("<24f", *[3 * math.sin(r * (c + 1) * 0.37) for c in range(24)]))
PY
}

@test "a stored file larger than a block of candidates, and two files, are searched whole" {
    write_npy "$BATS_TEST_TMPDIR/big.npy" 0 9000
    write_npy "$BATS_TEST_TMPDIR/tail.npy" 9000 300
    write_npy "$BATS_TEST_TMPDIR/q.npy" 4100 1 # row 4100 of big.npy, in its second block
    write_npy "$BATS_TEST_TMPDIR/q2.npy" 9123 1 # row 123 of tail.npy
    run --separate-stderr "$JCLIP" similarity "$BATS_TEST_TMPDIR/q.npy" "$BATS_TEST_TMPDIR/q2.npy" \
        --against "$BATS_TEST_TMPDIR/big.npy" "$BATS_TEST_TMPDIR/tail.npy" --top 1
    [ "$status" -eq 0 ]
    [ "$(echo "${lines[0]}" | cut -f2)" = "$BATS_TEST_TMPDIR/big.npy:4100" ]
    [ "$(echo "${lines[1]}" | cut -f2)" = "$BATS_TEST_TMPDIR/tail.npy:123" ]
    [ "$(echo "$output" | awk -F'\t' '{print ($3 > 0.99999 && $3 < 1.00001)}' | sort -u)" = 1 ]
    # every score of the matrix is the cosine of its pair, whichever block it came from
    "$JCLIP" similarity "$BATS_TEST_TMPDIR/q.npy" --against "$BATS_TEST_TMPDIR/big.npy" -f npy > "$BATS_TEST_TMPDIR/m.npy"
    python3 - "$BATS_TEST_TMPDIR/m.npy" <<'PY'
import math, struct, sys
data = open(sys.argv[1], "rb").read()
n = struct.unpack("<H", data[8:10])[0]
got = struct.unpack("<9000f", data[10 + n:])
row = lambda r: [3 * math.sin(r * (c + 1) * 0.37) for c in range(24)]
q = row(4100)
nq = math.sqrt(sum(v * v for v in q))
for r in range(9000):
    c = row(r)
    nc = math.sqrt(sum(v * v for v in c))
    want = sum(a * b for a, b in zip(q, c)) / nq / nc if nc else 0 # row 0 is zeros
    assert abs(got[r] - want) < 2e-6, (r, got[r], want)
PY
}

@test "an image matches itself best among 15" {
    "$JCLIP" embed-image -m "$MODEL" -r -o "$BATS_TEST_TMPDIR/imgs.npy" "$IMAGES"
    run "$JCLIP" similarity -m "$MODEL" -i "$IMAGES/rocket.jpg" --against "$BATS_TEST_TMPDIR/imgs.npy" --top 1 -f json
    [ "$(echo "$output" | jq -r '.[0].top[0].candidate')" = "$IMAGES/rocket.jpg" ]
}

@test "--format npy writes the matrix" {
    "$JCLIP" similarity -m "$MODEL" --text a --text b --text c -f npy > "$BATS_TEST_TMPDIR/m.npy"
    head -c 128 "$BATS_TEST_TMPDIR/m.npy" | grep -q "'shape': (3, 3)"
}

@test "bad inputs: wrong width, mismatched sidecar, --top 0, bare non-.npy, empty side" {
    "$JCLIP" embed-text -m "$MODEL" -o "$BATS_TEST_TMPDIR/a.npy" x y
    "$JCLIP" embed-text -m "$PWD/tests/models/tiny12" -o "$BATS_TEST_TMPDIR/b.npy" x
    run --separate-stderr "$JCLIP" similarity "$BATS_TEST_TMPDIR/a.npy" --against "$BATS_TEST_TMPDIR/b.npy"
    [ "$status" -eq 1 ]
    [ "$stderr" = "jclip similarity: '$BATS_TEST_TMPDIR/b.npy' has rows of 192 values but '$BATS_TEST_TMPDIR/a.npy' has 128" ]
    run --separate-stderr "$JCLIP" similarity -m "$MODEL" --text x --against "$BATS_TEST_TMPDIR/b.npy"
    [ "$status" -eq 1 ]
    [ "$stderr" = "jclip similarity: '$BATS_TEST_TMPDIR/b.npy' has rows of 192 values but the model's embeddings have 128" ]
    printf 'one\n' > "$BATS_TEST_TMPDIR/a.txt"
    run --separate-stderr "$JCLIP" similarity "$BATS_TEST_TMPDIR/a.npy"
    [ "$status" -eq 1 ]
    [ "$stderr" = "jclip similarity: '$BATS_TEST_TMPDIR/a.txt' has 1 lines but '$BATS_TEST_TMPDIR/a.npy' has 2 rows" ]
    run --separate-stderr "$JCLIP" similarity -m "$MODEL" --text x --text y --top 0
    [ "$status" -eq 2 ]
    run --separate-stderr "$JCLIP" similarity -m "$MODEL" notes.txt
    [ "$status" -eq 2 ]
    [ "${stderr_lines[0]}" = "jclip similarity: 'notes.txt': a bare INPUT must be a .npy file; use --text for a text or -i for an image" ]
    run --separate-stderr "$JCLIP" similarity -m "$MODEL" --text x --against
    [ "$status" -eq 2 ]
    [ "${stderr_lines[0]}" = "jclip similarity: both sides of --against need an input" ]
    echo junk > "$BATS_TEST_TMPDIR/junk.npy"
    run --separate-stderr "$JCLIP" similarity "$BATS_TEST_TMPDIR/junk.npy" "$BATS_TEST_TMPDIR/junk.npy"
    [ "$status" -eq 1 ]
    [ "$stderr" = "jclip similarity: '$BATS_TEST_TMPDIR/junk.npy' is not a .npy file" ]
}

@test "-t, the old spelling of --text, still works for one release, with one warning" {
    want=$("$JCLIP" similarity -m "$MODEL" --text "a cat" --text "a dog")
    run --separate-stderr "$JCLIP" similarity -m "$MODEL" -t "a cat" -t "a dog"
    [ "$status" -eq 0 ]
    [ "$output" = "$want" ]
    [ "${#stderr_lines[@]}" -eq 1 ]
    [ "$stderr" = "jclip similarity: warning: -t for --text is deprecated: next release -t is --threads, as everywhere; use --text" ]
    # --threads is still a long option here, and says nothing
    run --separate-stderr "$JCLIP" similarity -m "$MODEL" --threads 1 --text "a cat" --text "a dog"
    [ "$status" -eq 0 ]
    [ "$output" = "$want" ]
    [ -z "$stderr" ]
}
