#!/usr/bin/env bats
# Image formats and decoding options: WebP, HEIC and AVIF made at test time with the
# packages' own encoders, --draft, --exif-rotate, and damaged files of every format.

load helper

IMAGES="$GOLDEN/images"
DECODE="$GOLDEN/decode"

# The embedding of one image, as JSON text.
emb() {
    "$JCLIP" embed-image -m "$MODEL" "$@" | jq -c .embedding
}

# Cosine of two JSON arrays.
cosine() {
    jq -n --argjson a "$1" --argjson b "$2" \
        '[range($a | length) as $i | $a[$i] * $b[$i]] | add'
}

# A binary PPM of raw RGB bytes $1, $2 x $3 pixels.
ppm() {
    { printf 'P6\n%s %s\n255\n' "$2" "$3"; cat "$1"; }
}

@test "a lossless WebP made by cwebp embeds as its PNG does, to the bit" {
    cwebp -quiet -lossless -exact "$IMAGES/coffee.png" -o "$BATS_TEST_TMPDIR/coffee.webp"
    [ "$(emb "$BATS_TEST_TMPDIR/coffee.webp")" = "$(emb "$IMAGES/coffee.png")" ]
}

@test "WebP files decode as Pillow decodes them (lossy, alpha, animated)" {
    for f in lossy lossless lossy_alpha lossless_alpha animated; do
        read -r w h < <(awk -v f="$f.webp" '$1 == f {print $2, $3}' "$DECODE/manifest.tsv")
        ppm "$DECODE/$f.webp.rgb" "$w" "$h" > "$BATS_TEST_TMPDIR/$f.ppm"
        [ "$(emb "$DECODE/$f.webp")" = "$(emb "$BATS_TEST_TMPDIR/$f.ppm")" ] ||
            { echo "$f.webp"; return 1; }
    done
}

@test "HEIC and AVIF decode to libheif's RGB, as heif-convert writes it" {
    exts="heic avif"
    # valgrind's VEX runs out of room translating dav1d's AV1 assembly, and stops
    [ -z "${JCLIP_REAL:-}" ] || exts=heic
    for ext in $exts; do
        f="$BATS_TEST_TMPDIR/coffee.$ext"
        heif-enc -q 60 -p chroma=444 -o "$f" "$IMAGES/coffee.png" > /dev/null
        heif-convert "$f" "$BATS_TEST_TMPDIR/coffee_$ext.png" > /dev/null
        a=$(emb "$f")
        [ "$a" = "$(emb "$BATS_TEST_TMPDIR/coffee_$ext.png")" ] || { echo "$ext"; return 1; }
        # and it is the same picture
        c=$(cosine "$a" "$(emb "$IMAGES/coffee.png")")
        jq -en "$c > 0.99" > /dev/null || { echo "$ext: cosine $c"; return 1; }
    done
    run "$JCLIP" count-tokens --image "$BATS_TEST_TMPDIR/coffee.heic"
    [ "$status" -eq 0 ]
    [[ "$output" == *6000* ]] # 600 x 400: 3 x 2 tiles of 224
}

@test "-r finds WebP, HEIC and AVIF files by their extensions" {
    d="$BATS_TEST_TMPDIR/album"
    mkdir -p "$d"
    for x in webp WEBP heic heif avif; do cp "$DECODE/lossy.webp" "$d/a.$x"; done
    "$JCLIP" embed-image -m "$MODEL" -r -o "$BATS_TEST_TMPDIR/a.npy" "$d"
    [ "$(wc -l < "$BATS_TEST_TMPDIR/a.txt")" -eq 5 ]
}

@test "--exif-rotate turns photos upright as Pillow's exif_transpose does; by default it does not" {
    for k in 1 2 3 4 5 6 7 8; do
        read -r w h < <(awk -v f="orient_$k.jpg" '$1 == f {print $5, $6}' "$DECODE/manifest.tsv")
        ppm "$DECODE/orient_$k.jpg.exif.rgb" "$w" "$h" > "$BATS_TEST_TMPDIR/up.ppm"
        [ "$(emb --exif-rotate "$DECODE/orient_$k.jpg")" = "$(emb "$BATS_TEST_TMPDIR/up.ppm")" ] ||
            { echo "orientation $k"; return 1; }
    done
    [ "$(emb "$DECODE/orient_6.jpg")" = "$(emb "$DECODE/orient_1.jpg")" ]
    [ "$(emb "$DECODE/orient_6.jpg")" != "$(emb --exif-rotate "$DECODE/orient_6.jpg")" ]
}

@test "an EXIF block with a bogus offset: a warning under --exif-rotate, the image as stored" {
    run --separate-stderr "$JCLIP" embed-image -m "$MODEL" --exif-rotate "$DECODE/exif_bogus.jpg"
    [ "$status" -eq 0 ]
    [ "$stderr" = "jclip embed-image: warning: '$DECODE/exif_bogus.jpg': unreadable EXIF data, orientation ignored" ]
    [ "$(echo "$output" | jq -c .embedding)" = "$(emb "$DECODE/exif_bogus.jpg")" ]
    run --separate-stderr "$JCLIP" embed-image -m "$MODEL" "$DECODE/exif_bogus.jpg"
    [ "$status" -eq 0 ] && [ -z "$stderr" ]
}

@test "--draft: the same picture from a reduced decode; exact without it; records too" {
    # 1000 x 872: the smallest M/8 scale with a short side of 448 or more is 5/8
    exact=$(emb "$IMAGES/hubble_deep_field.jpg")
    draft=$(emb --draft "$IMAGES/hubble_deep_field.jpg")
    [ "$exact" != "$draft" ]
    c=$(cosine "$exact" "$draft")
    jq -en "$c > 0.99" > /dev/null || { echo "cosine $c"; return 1; }
    # PNGs and small JPEGs are not affected
    [ "$(emb --draft "$IMAGES/coffee.png")" = "$(emb "$IMAGES/coffee.png")" ]
    [ "$(emb --draft "$IMAGES/rocket.jpg")" = "$(emb "$IMAGES/rocket.jpg")" ]

    run --separate-stderr "$JCLIP" embed-image -m "$MODEL" --jsonl < <(
        echo "{\"id\":1,\"image\":\"$IMAGES/hubble_deep_field.jpg\",\"draft\":true}"
        echo "{\"id\":2,\"image\":\"$IMAGES/hubble_deep_field.jpg\",\"draft\":false}"
        echo "{\"id\":3,\"image\":\"$IMAGES/hubble_deep_field.jpg\",\"draft\":\"yes\"}"
        echo "{\"id\":4,\"text\":\"a cat\",\"draft\":true}")
    [ "$status" -eq 0 ]
    [ "$(echo "${lines[0]}" | jq -c .embedding)" = "$draft" ]
    [ "$(echo "${lines[1]}" | jq -c .embedding)" = "$exact" ]
    [ "$(echo "${lines[2]}" | jq -r .error)" = '"draft" is a string, not true or false' ]
    [[ "$(echo "${lines[3]}" | jq -r .error)" == *'"draft" is for image records'* ]]
}

@test "classify and similarity take --draft and --exif-rotate" {
    run "$JCLIP" classify -m "$MODEL" --draft --exif-rotate -l "cat,dog" "$DECODE/orient_6.jpg"
    [ "$status" -eq 0 ]
    run "$JCLIP" similarity -m "$MODEL" --draft --exif-rotate -i "$DECODE/orient_6.jpg" --text "a cat"
    [ "$status" -eq 0 ]
    "$JCLIP" classify --help | grep -q -- '--exif-rotate'
    "$JCLIP" similarity --help | grep -q -- '--draft'
}

# Every file: exit 1, and an error record (no embedding) for each under --keep-going.
all_fail() {
    run --separate-stderr "$JCLIP" embed-image -m "$MODEL" --keep-going "$@"
    [ "$status" -eq 1 ] || { echo "status $status"; return 1; }
    [ "${#lines[@]}" -eq "$#" ] || { echo "${#lines[@]} lines for $# files"; return 1; }
    for l in "${lines[@]}"; do
        [ "$(echo "$l" | jq 'has("error") and (has("embedding") | not)')" = true ] ||
            { echo "$l"; return 1; }
    done
}

@test "a JPEG cut at every 7th byte of its first 2 kB and at its last 10 bytes: errors" {
    src="$IMAGES/rocket.jpg"
    len=$(stat -c %s "$src")
    files=()
    for ((n = 1; n < 2048; n += 7)); do files+=("$n"); done
    for ((n = len - 10; n < len; n++)); do files+=("$n"); done
    for n in "${files[@]}"; do head -c "$n" "$src" > "$BATS_TEST_TMPDIR/cut_$n.jpg"; done
    all_fail "${files[@]/#/$BATS_TEST_TMPDIR/cut_}"
    # the end-of-image marker alone missing is a truncated file too
    head -c $((len - 2)) "$src" > "$BATS_TEST_TMPDIR/noeoi.jpg"
    run --separate-stderr "$JCLIP" embed-image -m "$MODEL" -o "$BATS_TEST_TMPDIR/o.npy" "$BATS_TEST_TMPDIR/noeoi.jpg"
    [ "$status" -eq 1 ]
    [ "$stderr" = "jclip embed-image: cannot decode '$BATS_TEST_TMPDIR/noeoi.jpg': truncated JPEG (premature end of data)" ]
    [ ! -e "$BATS_TEST_TMPDIR/o.npy" ]
}

@test "corrupt JPEG data are errors, never filled-in pixels" {
    # a byte of the entropy-coded data replaced by a marker
    f="$BATS_TEST_TMPDIR/corrupt.jpg"
    cp "$IMAGES/rocket.jpg" "$f"
    printf '\xff\xd3' | dd of="$f" bs=1 seek=20000 conv=notrunc 2> /dev/null
    run --separate-stderr "$JCLIP" embed-image -m "$MODEL" "$f"
    [ "$status" -eq 1 ]
    [[ "$stderr" == "jclip embed-image: cannot decode '$f': corrupt JPEG ("*")" ]]
}

@test "a WebP and a HEIC truncated, and with a corrupted header: errors naming the file" {
    cwebp -quiet -q 80 "$IMAGES/coffee.png" -o "$BATS_TEST_TMPDIR/w.webp"
    heif-enc -q 50 -o "$BATS_TEST_TMPDIR/h.heic" "$IMAGES/coffee.png" > /dev/null
    for f in w.webp h.heic; do
        src="$BATS_TEST_TMPDIR/$f"
        len=$(stat -c %s "$src")
        head -c $((len / 2)) "$src" > "$BATS_TEST_TMPDIR/half_$f"
        head -c $((len - 1)) "$src" > "$BATS_TEST_TMPDIR/short_$f"
        head -c 40 "$src" > "$BATS_TEST_TMPDIR/head_$f"
        cp "$src" "$BATS_TEST_TMPDIR/bad_$f"
        # WebP: the size of the chunk after the file header zeroed; HEIF: its meta box renamed
        if [ "$f" = w.webp ]; then
            printf '\x00\x00\x00\x00' | dd of="$BATS_TEST_TMPDIR/bad_$f" bs=1 seek=16 conv=notrunc 2> /dev/null
        else
            o=$(grep -obUa meta "$src" | head -1 | cut -d: -f1)
            printf 'xxxx' | dd of="$BATS_TEST_TMPDIR/bad_$f" bs=1 seek="$o" conv=notrunc 2> /dev/null
        fi
        all_fail "$BATS_TEST_TMPDIR/half_$f" "$BATS_TEST_TMPDIR/short_$f" \
            "$BATS_TEST_TMPDIR/head_$f" "$BATS_TEST_TMPDIR/bad_$f"
        for l in "${lines[@]}"; do
            [[ "$(echo "$l" | jq -r .error)" == *"cannot decode '$BATS_TEST_TMPDIR/"*"$f': "* ]] ||
                { echo "$l"; return 1; }
        done
    done
}

@test "a damaged AV1 stream: one line on stderr, nothing from the AV1 decoder" {
    [ -z "${JCLIP_REAL:-}" ] || skip "valgrind cannot translate dav1d's assembly"
    f="$BATS_TEST_TMPDIR/bad.avif"
    heif-enc -A -q 60 -p chroma=444 -o "$f" "$IMAGES/coffee.png" > /dev/null
    m=$(grep -obUa mdat "$f" | head -1 | cut -d: -f1)
    printf '\xff\xff\xff' | dd of="$f" bs=1 seek=$((m + 4)) conv=notrunc 2> /dev/null
    run --separate-stderr "$JCLIP" embed-image -m "$MODEL" "$f"
    [ "$status" -eq 1 ]
    [ "${#stderr_lines[@]}" -eq 1 ]
    [[ "$stderr" == "jclip embed-image: cannot decode '$f': corrupt HEIF ("*")" ]]
}

@test "huge sizes in headers are refused before any allocation" {
    # a JPEG frame header of 65500 x 65500, a WebP of 16383 x 16384: over the pixel limit
    f="$BATS_TEST_TMPDIR/huge.jpg"
    printf '\xff\xd8\xff\xc0\x00\x11\x08\xff\xdc\xff\xdc\x03\x01\x22\x00\x02\x11\x01\x03\x11\x01' > "$f"
    printf '\xff\xda\x00\x0c\x03\x01\x00\x02\x11\x03\x11\x00\x3f\x00\xff\xd9' >> "$f"
    run --separate-stderr "$JCLIP" embed-image -m "$MODEL" "$f"
    [ "$status" -eq 1 ]
    [ "$stderr" = "jclip embed-image: '$f' is 65500 x 65500 = 4290250000 pixels, more than the limit of 178956970" ]

    w="$BATS_TEST_TMPDIR/huge.webp"
    # VP8L: signature 0x2f, then 14-bit width - 1 and height - 1
    printf 'RIFF\x1a\x00\x00\x00WEBPVP8L\x0d\x00\x00\x00\x2f\xfe\xff\xff\x0f\x00\x00\x00\x00\x00\x00\x00\x00\x00' > "$w"
    run --separate-stderr "$JCLIP" embed-image -m "$MODEL" "$w"
    [ "$status" -eq 1 ]
    [[ "$stderr" == *"'$w' is 16383 x 16384 = 268419072 pixels, more than the limit"* ]]

    # a HEIC whose image claims 100000 x 100000 pixels
    h="$BATS_TEST_TMPDIR/huge.heic"
    heif-enc -q 50 -o "$h" "$IMAGES/chelsea.png" > /dev/null 2>&1 || heif-enc -q 50 -o "$h" "$IMAGES/coffee.png" > /dev/null
    o=$(grep -obUa ispe "$h" | head -1 | cut -d: -f1)
    printf '\x00\x01\x86\xa0\x00\x01\x86\xa0' | dd of="$h" bs=1 seek=$((o + 8)) conv=notrunc 2> /dev/null
    run --separate-stderr "$JCLIP" embed-image -m "$MODEL" "$h"
    [ "$status" -eq 1 ]
    [ "${#stderr_lines[@]}" -eq 1 ]
    [[ "$stderr" == "jclip embed-image: cannot decode '$h': HEIF image over libheif's size limits ("*"100000x100000"*")" ]]
}

@test "a libheif that cannot be loaded: each HEIF file is one error naming it, the rest decode" {
    # found first on LD_LIBRARY_PATH, a libheif.so.1 that is not a library: dlopen fails
    mkdir "$BATS_TEST_TMPDIR/lib"
    : > "$BATS_TEST_TMPDIR/lib/libheif.so.1"
    f="$BATS_TEST_TMPDIR/a.heic"
    printf '\0\0\0\030ftypheic\0\0\0\0mif1heic' > "$f"
    LD_LIBRARY_PATH="$BATS_TEST_TMPDIR/lib" run --separate-stderr "$JCLIP" embed-image -m "$MODEL" \
        --keep-going "$f" "$IMAGES/coffee.png"
    [ "$status" -eq 1 ]
    [ "${#lines[@]}" -eq 2 ]
    why="cannot decode '$f': HEIF and AVIF need libheif ($BATS_TEST_TMPDIR/lib/libheif.so.1: file too short)"
    [ "$(jq -r .error <<< "${lines[0]}")" = "$why" ]
    [ "$(jq '.embedding | length' <<< "${lines[1]}")" -eq 128 ]
    [ "${stderr_lines[0]}" = "jclip embed-image: $why" ]
    [ "${stderr_lines[1]}" = "jclip embed-image: 1 of 2 images skipped" ]
}
