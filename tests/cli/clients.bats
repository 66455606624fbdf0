#!/usr/bin/env bats
# Real client libraries against jclip serve: the OpenAI SDK and LangChain's JinaEmbeddings,
# installed from tests/clients/package-lock.json by scripts/install-deps.
load helper

CLIENTS="$BATS_TEST_DIRNAME/../clients"
TEXTS=("a photo of a cat" "café au lait" "the quick brown fox")

setup() {
    # Missing clients fail the tests rather than skip them: a skipped suite passes unseen.
    [ -d "$CLIENTS/node_modules" ] || {
        echo "tests/clients/node_modules is missing: run scripts/install-deps"
        return 1
    }
    start_server
    BASE="http://127.0.0.1:$PORT"
}

teardown() {
    stop_server
}

# JSON-lines arrays to one hex string of little-endian float32s a line, so that vectors
# compare bit for bit as float32, whatever the text formatting of each side.
f32() {
    python3 -c 'import json, struct, sys
for line in sys.stdin:
    v = json.loads(line)
    print(struct.pack("<%df" % len(v), *v).hex())'
}

# Runs a client script; its output to f32 only once it has exited 0.
client() {
    local out
    out=$(node "$CLIENTS/$1" "$BASE" "${@:2}") || return 1
    echo "$out" | f32
}

@test "openai: encoding_format float gives embed-text's vectors" {
    got=$(client openai.mjs float "${TEXTS[@]}")
    [ "$got" = "$("$JCLIP" embed-text -m "$MODEL" "${TEXTS[@]}" | f32)" ]
}

@test "openai: encoding_format base64 gives embed-text's vectors" {
    got=$(client openai.mjs base64 "${TEXTS[@]}")
    [ "$got" = "$("$JCLIP" embed-text -m "$MODEL" "${TEXTS[@]}" | f32)" ]
}

@test "openai: no encoding_format (the SDK asks for base64 and decodes it)" {
    got=$(client openai.mjs default "${TEXTS[@]}")
    [ "$got" = "$("$JCLIP" embed-text -m "$MODEL" "${TEXTS[@]}" | f32)" ]
}

@test "langchain: embedDocuments on texts gives embed-text's vectors" {
    got=$(client langchain.mjs documents "${TEXTS[@]}")
    [ "$got" = "$("$JCLIP" embed-text -m "$MODEL" "${TEXTS[@]}" | f32)" ]
}

@test "langchain: embedQuery gives embed-text's vector" {
    got=$(client langchain.mjs query "${TEXTS[0]}")
    [ "$got" = "$("$JCLIP" embed-text -m "$MODEL" "${TEXTS[0]}" | f32)" ]
}

@test "langchain: embedDocuments on {image} data URIs gives embed-image's vectors" {
    local images=("$GOLDEN/images/coffee.png" "$GOLDEN/images/chelsea.png")
    got=$(client langchain.mjs images "${images[@]}")
    [ "$got" = "$("$JCLIP" embed-image -m "$MODEL" "${images[@]}" | jq -c .embedding | f32)" ]
}

@test "the access log shows each client's request with status 200" {
    client openai.mjs float "${TEXTS[@]}" > /dev/null
    client langchain.mjs query "${TEXTS[0]}" > /dev/null
    client langchain.mjs images "$GOLDEN/images/coffee.png" > /dev/null
    # A request is logged once its response has gone, so possibly after the client is done.
    for _ in $(seq $((50 * SLOW))); do
        [ "$(grep -c ' POST /v1/embeddings ' "$LOG")" -ge 3 ] && break
        sleep 0.1
    done
    run grep ' POST /v1/embeddings ' "$LOG"
    [ "${#lines[@]}" -eq 3 ]
    [[ "${lines[0]}" == "jclip serve: POST /v1/embeddings 200 3 items "* ]]
    [[ "${lines[1]}" == "jclip serve: POST /v1/embeddings 200 1 items "* ]]
    [[ "${lines[2]}" == "jclip serve: POST /v1/embeddings 200 1 items "* ]]
}
