#!/usr/bin/env bats
# Image URLs (http, https) and data: URIs as image inputs of embed-image, classify and
# similarity, on the command line and in --jsonl records, against a local web server
# (imageserver.py): never the internet.

load helper

IMAGES="$GOLDEN/images"

setup() {
    start_image_server "$IMAGES"
}

teardown() {
    stop_image_server
}

embed() {
    run --separate-stderr timeout $((60 * SLOW)) "$JCLIP" embed-image -m "$MODEL" "$@"
}

# The embedding part of an embed-image line.
vec() {
    jq -c .embedding
}

@test "a URL and a redirect give the file's vector; the path names the URL" {
    want=$("$JCLIP" embed-image -m "$MODEL" "$IMAGES/chelsea.png" "$IMAGES/rocket.jpg" | vec)
    embed "$IMG/files/chelsea.png" "$IMG/redirect/rocket.jpg"
    [ "$status" -eq 0 ]
    [ -z "$stderr" ]
    [ "$(echo "$output" | vec)" = "$want" ]
    [ "$(echo "$output" | jq -r .path | head -1)" = "$IMG/files/chelsea.png" ]
    grep -qx 'GET /files/chelsea.png' "$BATS_TEST_TMPDIR/images.log"
    grep -qx 'GET /redirect/rocket.jpg' "$BATS_TEST_TMPDIR/images.log"
}

@test "a data URI argument gives the file's vector; errors name its head only" {
    want=$("$JCLIP" embed-image -m "$MODEL" "$IMAGES/synth_227x500.png" | vec)
    embed "data:image/png;base64,$(base64 -w0 "$IMAGES/synth_227x500.png")"
    [ "$status" -eq 0 ]
    [ "$(echo "$output" | vec)" = "$want" ]
    embed "data:image/png;base64,$(head -c 300 "$IMAGES/synth_227x500.png" | base64 -w0)"
    [ "$status" -eq 1 ]
    [[ "$stderr" == "jclip embed-image: cannot decode 'data:image/png;base64,...': "* ]]
    embed "data:image/png;base64,AAA"
    [ "$status" -eq 1 ]
    [[ "$stderr" == *"invalid base64"* ]]
    embed "data:text/plain;base64,AAAA"
    [ "$status" -eq 1 ]
    [[ "$stderr" == *"not image/*"* ]]
}

@test "classify and similarity take URLs; records take them too" {
    run --separate-stderr "$JCLIP" classify -m "$MODEL" -l "cat,rocket" "$IMAGES/chelsea.png"
    want=${output#"$IMAGES/chelsea.png"}
    run --separate-stderr timeout $((60 * SLOW)) "$JCLIP" classify -m "$MODEL" -l "cat,rocket" "$IMG/files/chelsea.png"
    [ "$status" -eq 0 ]
    [ "$output" = "$IMG/files/chelsea.png$want" ]

    want=$("$JCLIP" similarity -m "$MODEL" --image "$IMAGES/chelsea.png" --text "a cat")
    run --separate-stderr timeout $((60 * SLOW)) "$JCLIP" similarity -m "$MODEL" --image "$IMG/files/chelsea.png" --text "a cat"
    [ "$status" -eq 0 ]
    [ "$output" = "$want" ]

    want=$("$JCLIP" embed-image -m "$MODEL" "$IMAGES/coffee.png" | vec)
    run --separate-stderr timeout $((60 * SLOW)) "$JCLIP" embed-image -m "$MODEL" --jsonl <<< \
        "{\"id\":1,\"image\":\"$IMG/files/coffee.png\"}
{\"id\":2,\"image\":\"$IMG/status/500\"}
{\"id\":3,\"image\":\"$IMG/files/coffee.png\"}"
    [ "$status" -eq 0 ] # a bad record is answered in its place, as jclip(1) PIPELINES says
    [ "$(echo "$output" | sed -n 1p | vec)" = "$want" ]
    [ "$(echo "$output" | sed -n 2p)" = "{\"id\":2,\"error\":\"cannot fetch '$IMG/status/500': HTTP 500\"}" ]
    [ "$(echo "$output" | sed -n 3p | vec)" = "$want" ]
}

@test "each failed fetch: one line naming the URL and why, exit 1" {
    embed "$IMG/status/404"
    [ "$status" -eq 1 ]
    [ "$stderr" = "jclip embed-image: cannot fetch '$IMG/status/404': HTTP 404" ]
    embed "$IMG/loop"
    [ "$status" -eq 1 ]
    [[ "$stderr" == "jclip embed-image: cannot fetch '$IMG/loop': "*"redirects"* ]]
    [ "$(grep -c 'GET /loop' "$BATS_TEST_TMPDIR/images.log")" -le 6 ]
    embed "http://127.0.0.1:1/x.png"
    [ "$status" -eq 1 ]
    [[ "$stderr" == "jclip embed-image: cannot fetch 'http://127.0.0.1:1/x.png': "* ]]
    [ "${#stderr_lines[@]}" -eq 1 ]
}

@test "a body over --max-image-bytes is cut off, with or without a Content-Length" {
    for path in big big-length; do
        SECONDS=0
        embed "$IMG/$path"
        [ "$status" -eq 1 ]
        [ "$stderr" = "jclip embed-image: cannot fetch '$IMG/$path': more than 33554432 bytes (--max-image-bytes)" ]
        [ "$SECONDS" -lt $((20 * SLOW)) ]
    done
    embed --max-image-bytes 1000 "$IMG/files/chelsea.png"
    [ "$status" -eq 1 ]
    [[ "$stderr" == *"more than 1000 bytes (--max-image-bytes)" ]]
    embed --max-image-bytes 100000000 "$IMG/files/chelsea.png"
    [ "$status" -eq 0 ]
}

@test "--fetch-timeout: a server that does not answer in time" {
    SECONDS=0
    embed --fetch-timeout 1 "$IMG/slow"
    [ "$status" -eq 1 ]
    [ -z "$output" ]
    [ "$stderr" = "jclip embed-image: cannot fetch '$IMG/slow': no answer within 1 s" ]
    [ "$SECONDS" -lt $((10 * SLOW)) ]
}

@test "--no-fetch refuses URLs, fetching nothing; files still work" {
    embed --no-fetch "$IMG/files/chelsea.png"
    [ "$status" -eq 1 ]
    [ -z "$output" ]
    [ "$stderr" = "jclip embed-image: '$IMG/files/chelsea.png' is a URL, and fetching is off (--no-fetch)" ]
    ! grep -q chelsea "$BATS_TEST_TMPDIR/images.log"
    embed --no-fetch "$IMAGES/chelsea.png"
    [ "$status" -eq 0 ]
    run --separate-stderr "$JCLIP" classify -m "$MODEL" --no-fetch -l a,b "$IMG/files/chelsea.png"
    [ "$status" -eq 1 ]
    [[ "$stderr" == *"fetching is off (--no-fetch)" ]]
}

@test "--keep-going: a failed URL among good ones" {
    embed --keep-going "$IMG/files/coffee.png" "$IMG/status/404" "$IMAGES/chelsea.png"
    [ "$status" -eq 1 ]
    [ "${#lines[@]}" -eq 3 ]
    [ "$(echo "${lines[1]}" | jq -r .error)" = "cannot fetch '$IMG/status/404': HTTP 404" ]
    [ "$(echo "${lines[2]}" | jq -r .path)" = "$IMAGES/chelsea.png" ]
    [ "${stderr_lines[0]}" = "jclip embed-image: cannot fetch '$IMG/status/404': HTTP 404" ]
    [ "${stderr_lines[1]}" = "jclip embed-image: 1 of 3 images skipped" ]
}

@test "other schemes are paths, and bad option values are usage errors" {
    embed "file:///etc/passwd"
    [ "$status" -eq 1 ]
    [ "$stderr" = "jclip embed-image: cannot open 'file:///etc/passwd': No such file or directory" ]
    embed --max-image-bytes 0 "$IMAGES/chelsea.png"
    [ "$status" -eq 2 ]
    embed --fetch-timeout nope "$IMAGES/chelsea.png"
    [ "$status" -eq 2 ]
    [[ "$stderr" == *"--fetch-timeout: 'nope' is not a whole number"* ]]
}
