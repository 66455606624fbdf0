#!/usr/bin/env bats
# jclip serve under load: 32 clients (scripts/serve-load.mjs) send mixed text and image
# requests back to back for a bounded time. No request may fail, every vector must be the
# CLI's, and the server's resident memory must not grow once it is warm.

load helper

IMAGES="$GOLDEN/images"

setup() {
    start_server
}

teardown() {
    stop_server
}

rss_kb() {
    awk '/^VmRSS:/ {print $2}' "/proc/$SERVER_PID/status"
}

# Runs the load: $1 clients for $2 seconds; its summary goes to $BATS_TEST_TMPDIR/load.json.
load_run() {
    node "$PWD/scripts/serve-load.mjs" --url "http://127.0.0.1:$PORT" --clients "$1" \
        --seconds "$2" --texts "$BATS_TEST_TMPDIR/texts" --images "$imgs" \
        --expect "$BATS_TEST_TMPDIR/expect.jsonl" > "$BATS_TEST_TMPDIR/load.json" || {
        cat "$BATS_TEST_TMPDIR/load.json"
        return 1
    }
    cat "$BATS_TEST_TMPDIR/load.json"
}

@test "32 clients, mixed texts and images: every answer the CLI's, no failure, no growth" {
    printf '%s\n' "a photo of a cat" "a rocket" "café au lait" "the quick brown fox jumps" \
        "an astronaut on the moon" "" "a dog" > "$BATS_TEST_TMPDIR/texts"
    "$JCLIP" embed-text -m "$MODEL" < "$BATS_TEST_TMPDIR/texts" |
        paste -d '\t' "$BATS_TEST_TMPDIR/texts" - |
        jq -Rc 'split("\t") | {key: ("t:" + .[0]), embedding: (.[1] | fromjson)}' \
            > "$BATS_TEST_TMPDIR/expect.jsonl"
    imgs="$IMAGES/coffee.png,$IMAGES/chelsea.png,$IMAGES/rocket.jpg,$IMAGES/synth_227x500.png"
    "$JCLIP" embed-image -m "$MODEL" $(echo "$imgs" | tr , ' ') |
        jq -c '{key: ("i:" + .path), embedding}' >> "$BATS_TEST_TMPDIR/expect.jsonl"
    [ "$(wc -l < "$BATS_TEST_TMPDIR/expect.jsonl")" -eq 11 ]

    if [ -n "${JCLIP_REAL:-}" ]; then # under valgrind: a few clients, and no memory bound
        load_run 4 20
        [ "$(jq '.texts > 0 and .images > 0' "$BATS_TEST_TMPDIR/load.json")" = true ]
        return
    fi
    load_run 32 4 # warm: every thread has made its allocations
    before=$(rss_kb)
    load_run 32 12
    after=$(rss_kb)
    echo "VmRSS $before kB before, $after kB after"
    [ "$(jq '.texts > 100 and .images > 50 and .failed == 0 and .mismatched == 0' "$BATS_TEST_TMPDIR/load.json")" = true ]
    # 16 MB: a few of the largest requests in flight at once; a leak of even one body per
    # request would pass it many times over. Under AddressSanitizer freed blocks wait in its
    # quarantine (256 MB) and resident memory grows with the traffic; there LeakSanitizer,
    # when stop_server makes the server exit, is what finds a leak.
    [ -n "${JCLIP_SANITIZED:-}" ] || [ $((after - before)) -lt 16384 ]
    grep -c 'POST /v1/embeddings 200' "$LOG"
    ! grep -v 'POST /v1/embeddings 200\|listening on' "$LOG"
}
