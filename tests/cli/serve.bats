#!/usr/bin/env bats
# jclip serve: the Jina Embeddings API and its OpenAI dialect over loopback HTTP. Each test
# starts a server on a free port (port 0, read back from the ready line) and stops it.

load helper

IMAGES="$GOLDEN/images"

setup() {
    start_server
}

teardown() {
    stop_server
}

URL() {
    echo "http://127.0.0.1:$PORT$1"
}

# POSTs the JSON in $1 (or @file) to /v1/embeddings: $status is the HTTP status, $body the body.
post() {
    local out="$BATS_TEST_TMPDIR/body"
    status=$(curl -sS --max-time $((20 * SLOW)) -o "$out" -w '%{http_code}' -H 'Content-Type: application/json' \
        "${@:2}" --data-binary "$1" "$(URL /v1/embeddings)")
    body=$(cat "$out")
}

# A request fails with HTTP status $1 and a detail that contains $2; the server answers after.
fails() {
    post "$3" "${@:4}"
    [ "$status" = "$1" ] || { echo "status $status, not $1: $body"; return 1; }
    echo "$body" | jq -e --arg s "$2" '(.detail | type == "string") and (.detail | contains($s))' \
        > /dev/null || { echo "detail does not say '$2': $body"; return 1; }
    still_answers
}

still_answers() {
    post '{"input":"still here"}'
    [ "$status" = 200 ] && [ "$(echo "$body" | jq '.data | length')" = 1 ]
}

# Numbers normalised by jq, so that two JSON texts of the same floats compare equal.
norm_json() {
    jq -c .
}

# The float embeddings of a response, one JSON array per line.
floats() {
    echo "$body" | jq -c '.data[] | .embedding'
}

# A base64 float32 string to a JSON array of the floats, as the official SDKs decode it.
b64_floats() {
    python3 -c '
import base64, json, struct, sys
for line in sys.stdin:
    b = base64.b64decode(json.loads(line))
    print(json.dumps([float(repr(x)) for x in struct.unpack("<%df" % (len(b) // 4), b)]))' |
        python3 -c '
import json, sys
for line in sys.stdin:
    print(json.dumps([float("%.9g" % x) for x in json.loads(line)]))' | jq -c .
}

b64() {
    base64 -w0 "$1"
}

@test "ready line, /health, /v1/models, 404, 405 and the access log" {
    grep -qx "jclip serve: listening on http://127.0.0.1:$PORT (model $MODEL)" "$LOG"
    run curl -sS --max-time $((10 * SLOW)) "$(URL /health)"
    [ "$output" = '{"status":"ok"}' ]
    run curl -sS --max-time $((10 * SLOW)) "$(URL /v1/models)"
    [ "$(echo "$output" | jq -c '[.object, (.data | length), .data[0].id, .data[0].object]')" = \
        '["list",1,"jina-clip-v1","model"]' ]
    run curl -sS --max-time $((10 * SLOW)) "$(URL /v1/models/jina-clip-v1)"
    [ "$(echo "$output" | jq -r .id)" = jina-clip-v1 ]
    run curl -sS --max-time $((10 * SLOW)) -o /dev/null -w '%{http_code}' "$(URL /v1/nothing)"
    [ "$output" = 404 ]
    run curl -sS --max-time $((10 * SLOW)) -w ' %{http_code}' "$(URL /v1/embeddings)"
    [ "$output" = '{"detail":"/v1/embeddings takes POST, not GET"} 405' ]
    run curl -sS --max-time $((10 * SLOW)) -X POST -o /dev/null -w '%{http_code}' "$(URL /health)"
    [ "$output" = 405 ]
    still_answers
    grep -q '^jclip serve: GET /health 200 0 items [0-9.]* ms$' "$LOG"
    grep -q '^jclip serve: GET /v1/nothing 404 0 items [0-9.]* ms$' "$LOG"
    grep -q '^jclip serve: POST /v1/embeddings 200 1 items [0-9.]* ms$' "$LOG"
}

@test "texts: a string, a list, {\"text\"} objects give embed-text's vectors and token counts" {
    post '{"input":"a photo of a cat"}'
    [ "$status" = 200 ]
    [ "$(floats)" = "$("$JCLIP" embed-text -m "$MODEL" "a photo of a cat" | norm_json)" ]
    [ "$(echo "$body" | jq -c '[.model, .object, .data[0].object, .data[0].index]')" = \
        '["jina-clip-v1","list","embedding",0]' ]
    [ "$(echo "$body" | jq -c keys_unsorted)" = '["model","object","usage","data"]' ]

    post '{"model":"jina-clip-v1","input":["a photo of a cat",{"text":"caf\u00e9 au lait"},"",{"text":"the quick brown fox"}]}'
    [ "$status" = 200 ]
    want=$("$JCLIP" embed-text -m "$MODEL" "a photo of a cat" "café au lait" "" "the quick brown fox" | norm_json)
    [ "$(floats)" = "$want" ]
    [ "$(echo "$body" | jq -c '[.data[].index]')" = '[0,1,2,3]' ]
    tokens=$("$JCLIP" count-tokens -m "$MODEL" --total "a photo of a cat" "café au lait" "" "the quick brown fox")
    [ "$(echo "$body" | jq -c '[.usage.total_tokens, .usage.prompt_tokens]')" = "[$tokens,$tokens]" ]
}

@test "images: data URI, plain base64 and bytes give embed-image's vectors; usage counts tiles" {
    printf '{"model":"jinaai/jina-clip-v1","input":[{"image":"data:image/png;base64,%s"},{"image":"%s"},{"bytes":"%s"}]}' \
        "$(b64 "$IMAGES/coffee.png")" "$(b64 "$IMAGES/rocket.jpg")" "$(b64 "$IMAGES/chelsea.png")" \
        > "$BATS_TEST_TMPDIR/req"
    post "@$BATS_TEST_TMPDIR/req"
    [ "$status" = 200 ]
    want=$("$JCLIP" embed-image -m "$MODEL" "$IMAGES/coffee.png" "$IMAGES/rocket.jpg" "$IMAGES/chelsea.png" |
        jq -c .embedding)
    [ "$(floats)" = "$want" ]
    tokens=$("$JCLIP" count-tokens --image --total "$IMAGES/coffee.png" "$IMAGES/rocket.jpg" "$IMAGES/chelsea.png")
    [ "$(echo "$body" | jq .usage.total_tokens)" = "$tokens" ]
}

@test "image URLs: {image}, {url} and a redirect give embed-image's vectors, with tokens" {
    start_image_server "$IMAGES"
    post "{\"input\":[{\"image\":\"$IMG/files/coffee.png\"},\"a cat\",{\"url\":\"$IMG/redirect/rocket.jpg\"}]}"
    stop_image_server
    [ "$status" = 200 ]
    mapfile -t got < <(floats)
    [ "${got[0]}" = "$("$JCLIP" embed-image -m "$MODEL" "$IMAGES/coffee.png" | jq -c .embedding)" ]
    [ "${got[1]}" = "$("$JCLIP" embed-text -m "$MODEL" "a cat" | norm_json)" ]
    [ "${got[2]}" = "$("$JCLIP" embed-image -m "$MODEL" "$IMAGES/rocket.jpg" | jq -c .embedding)" ]
    tokens=$(( $("$JCLIP" count-tokens --image --total "$IMAGES/coffee.png" "$IMAGES/rocket.jpg") +
        $("$JCLIP" count-tokens -m "$MODEL" "a cat") ))
    [ "$(echo "$body" | jq .usage.total_tokens)" = "$tokens" ]
}

@test "a URL that fails: 502, 504, 413 or 400 naming it; the server answers after each" {
    stop_server
    start_server --fetch-timeout 1 --max-image-bytes 1000000
    start_image_server "$IMAGES"
    fails 502 "input[1]: cannot fetch '$IMG/status/404': HTTP 404" \
        "{\"input\":[\"a\",{\"url\":\"$IMG/status/404\"}]}"
    fails 502 "cannot fetch '$IMG/loop': " "{\"input\":[{\"url\":\"$IMG/loop\"}]}"
    fails 502 "input[0]: cannot fetch 'http://127.0.0.1:1/x.png'" '{"input":[{"url":"http://127.0.0.1:1/x.png"}]}'
    fails 504 "cannot fetch '$IMG/slow': no answer within 1 s" "{\"input\":[{\"image\":\"$IMG/slow\"}]}"
    for path in big big-length; do
        SECONDS=0
        fails 413 "cannot fetch '$IMG/$path': more than 1000000 bytes" "{\"input\":[{\"url\":\"$IMG/$path\"}]}"
        [ "$SECONDS" -lt $((20 * SLOW)) ]
    done
    fails 400 "input[0].image: only http:// and https:// URLs are fetched" '{"input":[{"image":"file:///etc/passwd"}]}'
    fails 400 "input[0].url: only http:// and https:// URLs are fetched" '{"input":[{"url":"/etc/passwd"}]}'
    fails 400 "input[0].url: only http:// and https:// URLs are fetched" '{"input":[{"url":"gopher://x/y"}]}'
    ! grep -q passwd "$BATS_TEST_TMPDIR/images.log"
    stop_image_server
}

@test "--no-fetch: an image URL is a 400 and nothing is fetched" {
    stop_server
    start_server --no-fetch
    start_image_server "$IMAGES"
    fails 400 "input[0].image: this server does not fetch image URLs (--no-fetch)" \
        "{\"input\":[{\"image\":\"$IMG/files/coffee.png\"}]}"
    stop_image_server
    [ ! -s "$BATS_TEST_TMPDIR/images.log" ]
}

@test "texts and images mixed in one request come back in input order" {
    printf '{"input":["first",{"bytes":"%s"},{"text":"third"}]}' "$(b64 "$IMAGES/coffee.png")" \
        > "$BATS_TEST_TMPDIR/req"
    post "@$BATS_TEST_TMPDIR/req"
    [ "$status" = 200 ]
    mapfile -t got < <(floats)
    [ "${got[0]}" = "$("$JCLIP" embed-text -m "$MODEL" first | norm_json)" ]
    [ "${got[1]}" = "$("$JCLIP" embed-image -m "$MODEL" "$IMAGES/coffee.png" | jq -c .embedding)" ]
    [ "${got[2]}" = "$("$JCLIP" embed-text -m "$MODEL" third | norm_json)" ]
    [ "$(echo "$body" | jq -c '[.data[].index]')" = '[0,1,2]' ]
}

@test "embedding_type: each encoding as embed-text --encoding writes it; base64 is the floats" {
    for enc in float base64 binary ubinary; do
        post "{\"input\":[\"a\",\"b c\"],\"embedding_type\":\"$enc\"}"
        [ "$status" = 200 ]
        [ "$(floats)" = "$("$JCLIP" embed-text -m "$MODEL" --encoding "$enc" a "b c" | norm_json)" ]
    done
    post '{"input":["a","b c"],"encoding_type":"base64"}'
    [ "$(floats | b64_floats)" = "$("$JCLIP" embed-text -m "$MODEL" a "b c" | norm_json)" ]
    post '{"input":"a","embedding_type":["ubinary","float","base64"]}'
    [ "$status" = 200 ]
    [ "$(echo "$body" | jq -c '.data[0].embedding | keys_unsorted')" = '["ubinary","float","base64"]' ]
    [ "$(echo "$body" | jq -c '.data[0].embedding.float')" = "$("$JCLIP" embed-text -m "$MODEL" a | norm_json)" ]
    [ "$(echo "$body" | jq -c '.data[0].embedding.ubinary')" = \
        "$("$JCLIP" embed-text -m "$MODEL" --encoding ubinary a | norm_json)" ]
    [ "$(echo "$body" | jq -c '.data[0].embedding.base64' | b64_floats)" = \
        "$("$JCLIP" embed-text -m "$MODEL" a | norm_json)" ]
}

@test "normalized false gives --raw vectors; truncate; dimensions; ignored fields" {
    printf '{"input":["a cat",{"bytes":"%s"}],"normalized":false,"task":"retrieval.query","late_chunking":true,"whatever":[1]}' \
        "$(b64 "$IMAGES/coffee.png")" > "$BATS_TEST_TMPDIR/req"
    post "@$BATS_TEST_TMPDIR/req"
    [ "$status" = 200 ]
    mapfile -t got < <(floats)
    [ "${got[0]}" = "$("$JCLIP" embed-text -m "$MODEL" --raw "a cat" | norm_json)" ]
    [ "${got[1]}" = "$("$JCLIP" embed-image -m "$MODEL" --raw "$IMAGES/coffee.png" | jq -c .embedding)" ]

    long=$(printf 'word %.0s' $(seq 9000))
    fails 400 'input[1]: 9002 tokens, over the limit of 8192' "{\"input\":[\"ok\",\"$long\"]}"
    post "{\"input\":[\"ok\",\"$long\"],\"truncate\":true}"
    [ "$status" = 200 ]
    [ "$(floats | tail -n 1)" = "$("$JCLIP" embed-text -m "$MODEL" "$long" 2> /dev/null | norm_json)" ]
    [ "$(echo "$body" | jq .usage.total_tokens)" = $((3 + 8192)) ]

    # The tiny test model has 128 dimensions where jina-clip-v1 has 768.
    for d in 128 768 100000; do
        post "{\"input\":\"a\",\"dimensions\":$d}"
        [ "$status" = 200 ]
        [ "$(echo "$body" | jq '.data[0].embedding | length')" = 128 ]
    done
    fails 400 'dimensions: this model' '{"input":"a","dimensions":64}'
    fails 400 'dimensions' '{"input":"a","dimensions":"768"}'
}

@test "OpenAI dialect: encoding_format float and base64, OpenAI's response shape" {
    post '{"model":"jina-clip-v1","input":["a","b c"],"encoding_format":"float"}'
    [ "$status" = 200 ]
    [ "$(echo "$body" | jq -c keys_unsorted)" = '["object","data","model","usage"]' ]
    [ "$(echo "$body" | jq -c '.usage | keys_unsorted')" = '["prompt_tokens","total_tokens"]' ]
    [ "$(echo "$body" | jq -c '[.object, .model, .data[1].object, .data[1].index]')" = \
        '["list","jina-clip-v1","embedding",1]' ]
    [ "$(floats)" = "$("$JCLIP" embed-text -m "$MODEL" a "b c" | norm_json)" ]
    post '{"input":["a","b c"],"encoding_format":"base64"}'
    [ "$status" = 200 ]
    [ "$(floats | b64_floats)" = "$("$JCLIP" embed-text -m "$MODEL" a "b c" | norm_json)" ]
    fails 400 'encoding_format' '{"input":"a","encoding_format":"binary"}'
    fails 400 'not both' '{"input":"a","encoding_format":"float","embedding_type":"float"}'
}

@test "bad requests are 400s naming the field or input, and the server answers after each" {
    fails 400 'not valid JSON' '{"input": ["a",'
    fails 400 'not valid JSON' ''
    fails 400 'not a JSON object' '["a"]'
    fails 400 'input: missing' '{"model":"jina-clip-v1"}'
    fails 400 'input: not a string' '{"input":42}'
    fails 400 'input: an empty list' '{"input":[]}'
    fails 400 'input[1]: not a string or an object' '{"input":["a",7]}'
    fails 400 'input[0]: an object needs' '{"input":[{"txt":"a"}]}'
    fails 400 'input[0]: give one of' '{"input":[{"text":"a","image":"b"}]}'
    fails 400 'input[1].text: not a string' '{"input":["a",{"text":1}]}'
    fails 400 'input[0].image: invalid base64' '{"input":[{"image":"not base64!"}]}'
    fails 400 'input[0].image: a data URI must be' '{"input":[{"image":"data:text/plain;base64,aGk="}]}'
    fails 400 "model: 'jina-embeddings-v3' is not served here; this server serves jina-clip-v1" \
        '{"model":"jina-embeddings-v3","input":"a"}'
    fails 400 'model: not a string' '{"model":1,"input":"a"}'
    fails 400 'embedding_type: not float, base64' '{"input":"a","embedding_type":"int8"}'
    fails 400 'encoding_type: not float' '{"input":"a","encoding_type":[]}'
    fails 400 'normalized: not true or false' '{"input":"a","normalized":"yes"}'
    fails 400 'truncate: not true or false' '{"input":"a","truncate":1}'
    # cJSON ends a string at U+0000, where the CLI embeds the whole text: refused, not cut
    fails 400 'a string holds \u0000' '{"input":["a\u0000b"]}'
    post '{"input":["a\\u0000b"]}' # a backslash, then u0000: an ordinary text
    [ "$status" = 200 ]
    [ "$(floats)" = "$("$JCLIP" embed-text -m "$MODEL" 'a\u0000b' | norm_json)" ]
    seq 2049 | jq -sc '{input: map(tostring)}' > "$BATS_TEST_TMPDIR/req"
    fails 413 'over the limit of 2048' "@$BATS_TEST_TMPDIR/req"
}

@test "an image that cannot be decoded is a 422 naming its index" {
    printf '{"input":["a",{"bytes":"%s"},{"image":"%s"}]}' "$(b64 "$IMAGES/coffee.png")" \
        "$(printf 'GIF89a but not really' | base64 -w0)" > "$BATS_TEST_TMPDIR/req"
    fails 422 "input[2]" "@$BATS_TEST_TMPDIR/req"
    head -c 500 "$IMAGES/rocket.jpg" > "$BATS_TEST_TMPDIR/cut.jpg"
    fails 422 "cannot decode 'input[0]': truncated JPEG" \
        "{\"input\":[{\"image\":\"data:image/jpeg;base64,$(b64 "$BATS_TEST_TMPDIR/cut.jpg")\"}]}"
    grep -q '^jclip serve: POST /v1/embeddings 422 3 items' "$LOG"
}

@test "a body over --max-body-bytes is a 413, with or without a Content-Length" {
    stop_server
    start_server --max-body-bytes 100
    long=$(printf 'x%.0s' $(seq 200))
    fails 413 'larger than the limit of 100 bytes' "{\"input\":\"$long\"}"
    fails 413 'larger than the limit of 100 bytes' "{\"input\":\"$long\"}" -H 'Transfer-Encoding: chunked'
    post '{"input":"short"}' -H 'Transfer-Encoding: chunked'
    [ "$status" = 200 ]
}

@test "a 2 GB Content-Length is a 413 before any body; 10,000 inputs are a 413" {
    run curl -sS --max-time $((10 * SLOW)) -w ' %{http_code}' -H 'Content-Type: application/json' \
        -H 'Content-Length: 2147483648' --data-binary '{"input":' "$(URL /v1/embeddings)"
    [ "$output" = '{"detail":"the body is larger than the limit of 67108864 bytes"} 413' ]
    still_answers
    seq 10000 | jq -sc '{input: map(tostring)}' > "$BATS_TEST_TMPDIR/req"
    fails 413 'input: 10000 inputs, over the limit of 2048 per request' "@$BATS_TEST_TMPDIR/req"
    fails 400 'input[0].image: invalid base64' '{"input":[{"image":"data:image/png;base64,@@@@"}]}'
}

@test "slow clients: trickling ones do not hold up others; a stalled one is let go" {
    stop_server
    start_server --idle-timeout 1
    # 20 clients send their headers a byte at a time, and one stops halfway
    python3 - "$PORT" > "$BATS_TEST_TMPDIR/slow.out" 2>&1 3>&- << 'PY' &
import socket, sys, time
port = int(sys.argv[1])
req = b"POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(20)]
for i in range(8):
    for s in socks:
        s.send(req[i:i + 1])
    time.sleep(0.25)
stalled = socket.create_connection(("127.0.0.1", port))
stalled.send(b"POST /v1/embeddings HTTP/1.1\r\nHost: x\r\n")
stalled.settimeout(20)
t0 = time.time()
got = stalled.recv(100)
print("closed after %.1f s with %r" % (time.time() - t0, got))
PY
    slow=$!
    sleep 0.5
    for i in 1 2 3; do
        SECONDS=0
        still_answers
        [ "$SECONDS" -lt $((5 * SLOW)) ]
    done
    wait "$slow"
    cat "$BATS_TEST_TMPDIR/slow.out"
    grep -q "^closed after [0-9.]* s with b''$" "$BATS_TEST_TMPDIR/slow.out"
    secs=$(sed 's/closed after \([0-9]*\).*/\1/' "$BATS_TEST_TMPDIR/slow.out")
    [ "$secs" -lt $((10 * SLOW)) ]
}

@test "--api-key: 401 without the key or with a wrong one; /health needs none" {
    stop_server
    start_server --api-key s3cret
    post '{"input":"a"}'
    [ "$status" = 401 ]
    [ "$(echo "$body" | jq -r .detail)" = 'missing or wrong API key (Authorization: Bearer KEY)' ]
    post '{"input":"a"}' -H 'Authorization: Bearer s3cre'
    [ "$status" = 401 ]
    post '{"input":"a"}' -H 'Authorization: Bearer s3cret'
    [ "$status" = 200 ]
    run curl -sS --max-time $((10 * SLOW)) -o /dev/null -w '%{http_code}' "$(URL /v1/models)"
    [ "$output" = 401 ]
    run curl -sS --max-time $((10 * SLOW)) -H 'Authorization: Bearer s3cret' -o /dev/null -w '%{http_code}' "$(URL /v1/models)"
    [ "$output" = 200 ]
    run curl -sS --max-time $((10 * SLOW)) "$(URL /health)"
    [ "$output" = '{"status":"ok"}' ]
}

@test "20 concurrent requests are all answered with the CLI's vectors" {
    for i in $(seq 20); do
        if [ $((i % 4)) = 0 ]; then
            printf '{"input":[{"bytes":"%s"}]}' "$(b64 "$IMAGES/coffee.png")" > "$BATS_TEST_TMPDIR/req$i"
        else
            printf '{"input":["text number %d","and another %d"]}' "$i" "$i" > "$BATS_TEST_TMPDIR/req$i"
        fi
    done
    pids=()
    for i in $(seq 20); do
        curl -sS --max-time $((30 * SLOW)) -o "$BATS_TEST_TMPDIR/out$i" -w '%{http_code}' \
            --data-binary "@$BATS_TEST_TMPDIR/req$i" "$(URL /v1/embeddings)" > "$BATS_TEST_TMPDIR/code$i" &
        pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p"; done
    image=$("$JCLIP" embed-image -m "$MODEL" "$IMAGES/coffee.png" | jq -c '{embedding}')
    for i in $(seq 20); do
        [ "$(cat "$BATS_TEST_TMPDIR/code$i")" = 200 ] || { echo "request $i: $(cat "$BATS_TEST_TMPDIR/out$i")"; return 1; }
        got=$(jq -c '.data[] | {embedding}' "$BATS_TEST_TMPDIR/out$i")
        if [ $((i % 4)) = 0 ]; then
            want=$image
        else
            want=$("$JCLIP" embed-text -m "$MODEL" "text number $i" "and another $i" | jq -c '{embedding: .}')
        fi
        # Batched with other requests: to the bit.
        same_embeddings "$got" "$want" || { echo "request $i differs"; return 1; }
    done
    [ "$(grep -c '^jclip serve: POST /v1/embeddings 200 ' "$LOG")" = 20 ]
}

@test "SIGTERM lets the request in flight finish, then exits 0" {
    n=48
    [ -z "${JCLIP_REAL:-}" ] || n=3 # the server waits 20 s for requests in flight, valgrind or not
    {
        printf '{"input":['
        for i in $(seq "$n"); do printf '{"bytes":"%s"},' "$(b64 "$IMAGES/chelsea.png")"; done
        printf '"last"]}'
    } > "$BATS_TEST_TMPDIR/req"
    curl -sS --max-time $((30 * SLOW)) -o "$BATS_TEST_TMPDIR/out" -w '%{http_code}' \
        --data-binary "@$BATS_TEST_TMPDIR/req" "$(URL /v1/embeddings)" > "$BATS_TEST_TMPDIR/code" &
    curl_pid=$!
    # on loopback the body is in well within this, and 49 inputs take longer to embed
    sleep 0.3
    [ ! -s "$BATS_TEST_TMPDIR/code" ]
    stop_server
    wait "$curl_pid"
    [ "$(cat "$BATS_TEST_TMPDIR/code")" = 200 ]
    [ "$(jq '.data | length' "$BATS_TEST_TMPDIR/out")" = $((n + 1)) ]
    run curl -sS --max-time $((5 * SLOW)) "$(URL /health)"
    [ "$status" -ne 0 ]
}

@test "usage errors exit 2; a port in use exits 1" {
    run "$JCLIP" serve --port 70000
    [ "$status" -eq 2 ]
    run "$JCLIP" serve extra
    [ "$status" -eq 2 ]
    run "$JCLIP" serve --max-batch 0
    [ "$status" -eq 2 ]
    for bad in "--idle-timeout 0" "--fetch-timeout 0" "--max-image-bytes x"; do
        run --separate-stderr "$JCLIP" serve $bad
        [ "$status" -eq 2 ]
        [ -z "$output" ]
        [[ "$stderr" == "jclip serve: ${bad%% *}: "*"is not a whole number"* ]]
    done
    run --separate-stderr timeout 10 "$JCLIP" serve -m "$MODEL" --port "$PORT"
    [ "$status" -eq 1 ]
    [[ "$stderr" == *"jclip serve: cannot listen on 127.0.0.1 port $PORT"* ]]
    run "$JCLIP" serve --help
    [ "$status" -eq 0 ]
    [[ "$output" == "usage: jclip serve"* ]]
}

@test "a libmicrohttpd that cannot be loaded: serve exits 1 in one line" {
    mkdir "$BATS_TEST_TMPDIR/lib"
    : > "$BATS_TEST_TMPDIR/lib/libmicrohttpd.so.12"
    LD_LIBRARY_PATH="$BATS_TEST_TMPDIR/lib" run --separate-stderr "$JCLIP" serve -m "$MODEL" --port 0
    [ "$status" -eq 1 ]
    [ -z "$output" ]
    [ "$stderr" = "jclip serve: cannot load libmicrohttpd, which serve needs: $BATS_TEST_TMPDIR/lib/libmicrohttpd.so.12: file too short" ]
}
