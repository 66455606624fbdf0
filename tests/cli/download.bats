#!/usr/bin/env bats
# jclip download against a stand-in Hub (hfserver.py) on 127.0.0.1 serving the tiny model:
# the cache layout huggingface_hub uses, resuming, tokens, missing files, checksums, and
# nothing transferred twice. Every server exits by itself after a minute; every download is
# bounded by timeout(1).

load helper

COMMIT=4bc2ac4e2a4b57c7ef4b0a8d4dbfc0c1a1ca5d13
FILES=(config.json model.safetensors tokenizer.json tokenizer_config.json vocab.txt
    preprocessor_config.json)

setup() {
    unset HF_TOKEN HF_TOKEN_PATH HF_HUB_CACHE HF_ENDPOINT
    export HF_HOME="$BATS_TEST_TMPDIR/hf"
    REPO="$HF_HOME/hub/models--jinaai--jina-clip-v1"
    SNAP="$REPO/snapshots/$COMMIT"
    SHA=$(sha256sum "$MODEL/model.safetensors" | cut -d' ' -f1)
    SIZE=$(stat -c %s "$MODEL/model.safetensors")
    HUB_PID=
    JCLIP_PID=
}

teardown() {
    local pid
    for pid in "$JCLIP_PID" "$HUB_PID"; do
        if [ -n "$pid" ]; then
            kill "$pid" 2> /dev/null || true
        fi
    done
}

# Starts the stand-in Hub with the switches "$@" and points HF_ENDPOINT at it; its requests
# are logged to $HUB_LOG, one line each.
start_hub() {
    local port
    HUB_LOG="$BATS_TEST_TMPDIR/hub.log"
    : > "$HUB_LOG"
    python3 "$BATS_TEST_DIRNAME/hfserver.py" --lifetime 60 --log "$HUB_LOG" --commit "$COMMIT" \
        "$MODEL" "$@" > "$BATS_TEST_TMPDIR/hub.port" 2> "$BATS_TEST_TMPDIR/hub.err" 3>&- &
    HUB_PID=$!
    port=$(wait_port "$BATS_TEST_TMPDIR/hub.port" "the Hub did not start" \
        "$BATS_TEST_TMPDIR/hub.err") || { echo "$port"; return 1; }
    export HF_ENDPOINT="http://127.0.0.1:$port"
}

download() {
    run --separate-stderr timeout 60 "$JCLIP" download "$@"
}

@test "a download fills the Hugging Face cache, and embed-text finds it there" {
    start_hub
    download
    [ "$status" -eq 0 ]
    [ "$output" = "$SNAP" ]
    [ -z "$stderr" ] # not a terminal, no --progress: quiet
    # refs/main names the commit, without a newline, as huggingface_hub writes it
    [ "$(cat "$REPO/refs/main")" = "$COMMIT" ]
    [ "$(wc -c < "$REPO/refs/main")" -eq 40 ]
    for f in "${FILES[@]}"; do
        [ -L "$SNAP/$f" ]
        target=$(readlink "$SNAP/$f")
        [[ "$target" == ../../blobs/* ]]
        [ -f "$REPO/blobs/${target#../../blobs/}" ]
        [ ! -L "$REPO/blobs/${target#../../blobs/}" ]
        cmp "$SNAP/$f" "$MODEL/$f"
    done
    # blobs are named by their ETag: the SHA-256 for LFS files, the git blob SHA-1 for others
    [ "$(readlink "$SNAP/model.safetensors")" = "../../blobs/$SHA" ]
    [ "$(readlink "$SNAP/config.json")" = "../../blobs/$(git hash-object "$MODEL/config.json")" ]
    run ls -A "$REPO/blobs"
    [ "${#lines[@]}" -eq 6 ]
    [[ "$output" != *.incomplete* ]]
    # huggingface_hub's lock files, one per blob
    [ -f "$HF_HOME/hub/.locks/models--jinaai--jina-clip-v1/$SHA.lock" ]

    want=$("$JCLIP" embed-text -m "$MODEL" "a photo of a cat")
    run --separate-stderr "$JCLIP" embed-text "a photo of a cat"
    [ "$status" -eq 0 ]
    [ "$output" = "$want" ]
    run "$JCLIP" info
    [ "${lines[0]}" = "model:        $SNAP" ]
}

@test "the LFS file comes from the CDN redirect; the others from the pinned commit" {
    start_hub
    download
    [ "$status" -eq 0 ]
    # metadata of every file first, the first at main and the rest at the commit it resolved to
    [ "$(head -n 1 "$HUB_LOG")" = "HEAD /jinaai/jina-clip-v1/resolve/main/config.json range=- auth=no status=200" ]
    [ "$(grep -c "^HEAD /jinaai/jina-clip-v1/resolve/$COMMIT/" "$HUB_LOG")" -eq 5 ]
    [ "$(sed -n 7p "$HUB_LOG")" = "GET /jinaai/jina-clip-v1/resolve/$COMMIT/config.json range=- auth=no status=200" ]
    grep -q "^GET /cdn/$SHA range=- auth=no status=200\$" "$HUB_LOG"
    [ "$(grep -c '^GET ' "$HUB_LOG")" -eq 6 ]
}

@test "an interrupted transfer leaves no complete-looking file, and the next run resumes it" {
    start_hub --cut model.safetensors:5000000
    download
    [ "$status" -eq 1 ]
    [ -z "$output" ]
    [ "${#stderr_lines[@]}" -eq 1 ]
    [[ "$stderr" == "jclip download: $HF_ENDPOINT/jinaai/jina-clip-v1/resolve/$COMMIT/model.safetensors: transfer interrupted after 5000000 of $SIZE bytes (curl error 18: "*"); run again to resume" ]]
    [ "$(stat -c %s "$REPO/blobs/$SHA.incomplete")" -eq 5000000 ]
    [ ! -e "$REPO/blobs/$SHA" ]
    [ ! -e "$REPO/snapshots" ]
    [ ! -e "$REPO/refs" ]
    # model discovery sees nothing half-made
    run --separate-stderr "$JCLIP" embed-text hi
    [ "$status" -eq 1 ]

    : > "$HUB_LOG"
    download --progress
    [ "$status" -eq 0 ]
    [ "$output" = "$SNAP" ]
    [[ "$stderr" == *"jclip download: config.json: up to date"* ]]
    [[ "$stderr" == *"jclip download: model.safetensors: resuming at byte 5000000 of $SIZE"* ]]
    [[ "$stderr" == *"jclip download: model.safetensors: done, $SIZE bytes"* ]]
    grep -q "^GET /cdn/$SHA range=bytes=5000000- auth=no status=206\$" "$HUB_LOG"
    # config.json was complete: only the resumed file and the four after it are fetched
    [ "$(grep -c '^GET ' "$HUB_LOG")" -eq 5 ]
    cmp "$REPO/blobs/$SHA" "$MODEL/model.safetensors"
    [ ! -e "$REPO/blobs/$SHA.incomplete" ]
    [ "$(cat "$REPO/refs/main")" = "$COMMIT" ]
}

@test "a download killed mid-transfer keeps what it received, and the next run resumes it" {
    start_hub --stall model.safetensors:4000000
    inc="$REPO/blobs/$SHA.incomplete"
    "$JCLIP" download > /dev/null 2> "$BATS_TEST_TMPDIR/err" 3>&- &
    JCLIP_PID=$!
    for i in $(seq 100); do
        [ "$(stat -c %s "$inc" 2> /dev/null || echo 0)" -ge 4000000 ] && break
        sleep 0.1
    done
    [ "$(stat -c %s "$inc")" -eq 4000000 ]
    # SIGTERM: a background job ignores SIGINT, and jclip keeps ignored signals ignored
    kill -TERM "$JCLIP_PID"
    status=0
    wait "$JCLIP_PID" || status=$?
    JCLIP_PID=
    [ "$status" -eq 143 ]
    [ "$(stat -c %s "$inc")" -eq 4000000 ]
    [ ! -e "$REPO/snapshots" ]
    [ ! -e "$REPO/refs" ]
    run ls -A "$REPO/blobs"
    [[ "$output" != *.tmp.* ]]

    download
    [ "$status" -eq 0 ]
    [ "$output" = "$SNAP" ]
    grep -q "^GET /cdn/$SHA range=bytes=4000000- auth=no status=206\$" "$HUB_LOG"
    cmp "$REPO/blobs/$SHA" "$MODEL/model.safetensors"
}

@test "a file another process is fetching is waited for, through huggingface_hub's lock" {
    start_hub
    locks="$HF_HOME/hub/.locks/models--jinaai--jina-clip-v1"
    mkdir -p "$locks"
    err="$BATS_TEST_TMPDIR/err"
    : >"$err"
    # holds the lock as huggingface_hub's filelock (flock) would, until jclip says it waits
    # for it (however slowly jclip starts: under valgrind it takes seconds)
    flock "$locks/$SHA.lock" -c "touch '$BATS_TEST_TMPDIR/held'
        for i in \$(seq 1200); do grep -q 'downloading it; waiting' '$err' && break; sleep 0.1; done" 3>&- &
    holder=$!
    for i in $(seq 50); do
        [ -e "$BATS_TEST_TMPDIR/held" ] && break
        sleep 0.1
    done
    [ -e "$BATS_TEST_TMPDIR/held" ]
    run --separate-stderr bash -c "timeout 150 \"\$JCLIP\" download --progress 2> >(tee '$err' >&2)"
    wait "$holder"
    [ "$status" -eq 0 ]
    [[ "$stderr" == *"jclip download: model.safetensors: another process is downloading it; waiting"* ]]
    cmp "$SNAP/model.safetensors" "$MODEL/model.safetensors"
}

@test "a server that does not resume sends it all again, and the result is still whole" {
    start_hub --cut model.safetensors:5000000 --no-ranges
    download
    [ "$status" -eq 1 ]
    download
    [ "$status" -eq 0 ]
    grep -q "^GET /cdn/$SHA range=bytes=5000000- auth=no status=200\$" "$HUB_LOG"
    cmp "$REPO/blobs/$SHA" "$MODEL/model.safetensors"
}

@test "401 without a token says to set HF_TOKEN; with it the token never leaves the endpoint" {
    start_hub --token sesame
    download
    [ "$status" -eq 1 ]
    [ -z "$output" ]
    [ "$stderr" = "jclip download: $HF_ENDPOINT/jinaai/jina-clip-v1/resolve/main/config.json: HTTP 401: jinaai/jina-clip-v1 needs a token: set HF_TOKEN (or log in with huggingface-cli login)" ]
    [ ! -e "$HF_HOME" ] # metadata comes first: nothing was written

    HF_TOKEN=wrong download
    [ "$status" -eq 1 ]
    [ "$stderr" = "jclip download: $HF_ENDPOINT/jinaai/jina-clip-v1/resolve/main/config.json: HTTP 401: HF_TOKEN was refused for jinaai/jina-clip-v1" ]

    : > "$HUB_LOG"
    HF_TOKEN=sesame download
    [ "$status" -eq 0 ]
    [ "$output" = "$SNAP" ]
    [ -z "$(grep '/resolve/' "$HUB_LOG" | grep -v ' auth=yes ')" ]
    # the CDN is another host (localhost, not 127.0.0.1): it does not get the token
    grep -q "^GET /cdn/$SHA range=- auth=no status=200\$" "$HUB_LOG"
}

@test "the token huggingface-cli login stored is used when HF_TOKEN is not set" {
    start_hub --token sesame
    mkdir -p "$HF_HOME"
    echo sesame > "$HF_HOME/token"
    download
    [ "$status" -eq 0 ]
    [ "$output" = "$SNAP" ]
    echo wrong > "$HF_HOME/token"
    download --revision "$COMMIT"
    [ "$status" -eq 1 ]
    [ "$stderr" = "jclip download: $HF_ENDPOINT/jinaai/jina-clip-v1/resolve/$COMMIT/config.json: HTTP 401: the token in '$HF_HOME/token' was refused for jinaai/jina-clip-v1" ]
}

@test "a file the repository lacks is a 404 that names it, before anything is transferred" {
    start_hub --missing vocab.txt
    download
    [ "$status" -eq 1 ]
    [ -z "$output" ]
    [ "$stderr" = "jclip download: $HF_ENDPOINT/jinaai/jina-clip-v1/resolve/$COMMIT/vocab.txt: HTTP 404: vocab.txt is not in jinaai/jina-clip-v1 at revision main" ]
    [ ! -e "$HF_HOME" ]
    [ -z "$(grep '^GET ' "$HUB_LOG")" ]
}

@test "an unknown repository or revision is named" {
    start_hub
    download --repo nobody/nothing
    [ "$status" -eq 1 ]
    [ "$stderr" = "jclip download: $HF_ENDPOINT/nobody/nothing/resolve/main/config.json: HTTP 401: repository nobody/nothing not found, or private: set HF_TOKEN to a token that can read it" ]
    download --revision v9
    [ "$status" -eq 1 ]
    [ "$stderr" = "jclip download: $HF_ENDPOINT/jinaai/jina-clip-v1/resolve/v9/config.json: HTTP 404: revision 'v9' not found in jinaai/jina-clip-v1" ]
    [ ! -e "$HF_HOME" ]
}

@test "content that fails its SHA-256 is removed and never reaches the snapshot" {
    start_hub --corrupt model.safetensors
    download
    [ "$status" -eq 1 ]
    [ -z "$output" ]
    [ "${#stderr_lines[@]}" -eq 1 ]
    [[ "$stderr" == "jclip download: $HF_ENDPOINT/jinaai/jina-clip-v1/resolve/$COMMIT/model.safetensors: SHA-256 mismatch: the content hashes to "*", the Hub says $SHA; the download was removed" ]]
    [ ! -e "$REPO/blobs/$SHA" ]
    [ ! -e "$REPO/blobs/$SHA.incomplete" ]
    [ ! -e "$REPO/snapshots" ]
    [ ! -e "$REPO/refs" ]
}

@test "content of the wrong size is removed" {
    start_hub --short tokenizer.json
    blob=$(git hash-object "$MODEL/tokenizer.json")
    size=$(stat -c %s "$MODEL/tokenizer.json")
    download
    [ "$status" -eq 1 ]
    [ "$stderr" = "jclip download: $HF_ENDPOINT/jinaai/jina-clip-v1/resolve/$COMMIT/tokenizer.json: got $((size - 1000)) bytes, expected $size; the download was removed" ]
    [ ! -e "$REPO/blobs/$blob" ]
    [ ! -e "$REPO/blobs/$blob.incomplete" ]
    [ ! -e "$REPO/snapshots" ]
}

@test "a complete cache is not downloaded again" {
    start_hub
    download
    [ "$status" -eq 0 ]
    : > "$HUB_LOG"
    download --progress
    [ "$status" -eq 0 ]
    [ "$output" = "$SNAP" ]
    [ "${#stderr_lines[@]}" -eq 6 ]
    for i in "${!FILES[@]}"; do
        [ "${stderr_lines[$i]}" = "jclip download: ${FILES[$i]}: up to date" ]
    done
    [ "$(grep -c '^HEAD ' "$HUB_LOG")" -eq 6 ]
    [ -z "$(grep -v '^HEAD ' "$HUB_LOG")" ]
    # the output is what -m takes
    run --separate-stderr bash -c '"$1" info -m "$(timeout 60 "$1" download)"' - "$JCLIP"
    [ "$status" -eq 0 ]
    [ "${lines[0]}" = "model:        $SNAP" ]
}

@test "a commit as the revision writes no ref" {
    start_hub
    download --revision "$COMMIT"
    [ "$status" -eq 0 ]
    [ "$output" = "$SNAP" ]
    [ ! -e "$REPO/refs" ]
    cmp "$SNAP/model.safetensors" "$MODEL/model.safetensors"
}

@test "an unreachable HF_ENDPOINT is a clear error" {
    # a port that was free a moment ago: nothing listens there
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    HF_ENDPOINT="http://127.0.0.1:$port/" download
    [ "$status" -eq 1 ]
    [ -z "$output" ]
    [ "${#stderr_lines[@]}" -eq 1 ]
    [[ "$stderr" == "jclip download: http://127.0.0.1:$port/jinaai/jina-clip-v1/resolve/main/config.json: cannot reach the Hub (HF_ENDPOINT http://127.0.0.1:$port): curl error 7: "* ]]
    [ ! -e "$HF_HOME" ]
}

@test "a libcurl that cannot be loaded fails the download only, in one line" {
    # found first on LD_LIBRARY_PATH, a libcurl.so.4 that is not a library: dlopen fails
    mkdir "$BATS_TEST_TMPDIR/lib"
    : > "$BATS_TEST_TMPDIR/lib/libcurl.so.4"
    LD_LIBRARY_PATH="$BATS_TEST_TMPDIR/lib" download
    [ "$status" -eq 1 ]
    [ -z "$output" ]
    [ "${#stderr_lines[@]}" -eq 1 ]
    [[ "$stderr" == "jclip download: cannot load libcurl (libcurl.so.4), which jclip download needs: "*"libcurl.so.4: file too short" ]]
    [ ! -e "$HF_HOME" ]
    # the other commands do not need it
    LD_LIBRARY_PATH="$BATS_TEST_TMPDIR/lib" run --separate-stderr "$JCLIP" --version
    [ "$status" -eq 0 ]
}

@test "a libcurl.so.4 without libcurl's functions fails the download in one line" {
    command -v cc > /dev/null || skip "no C compiler to build the stand-in library"
    mkdir "$BATS_TEST_TMPDIR/lib"
    echo 'int not_curl;' | cc -shared -fPIC -x c -o "$BATS_TEST_TMPDIR/lib/libcurl.so.4" -
    LD_LIBRARY_PATH="$BATS_TEST_TMPDIR/lib" download
    [ "$status" -eq 1 ]
    [ -z "$output" ]
    [ "${#stderr_lines[@]}" -eq 1 ]
    [[ "$stderr" == "jclip download: cannot load libcurl (libcurl.so.4), which jclip download needs: "*"undefined symbol: curl_global_init" ]]
    [ ! -e "$HF_HOME" ]
}

@test "--cache and HF_HUB_CACHE choose the cache" {
    start_hub
    HF_HUB_CACHE="$BATS_TEST_TMPDIR/hubcache" download
    [ "$status" -eq 0 ]
    [ "$output" = "$BATS_TEST_TMPDIR/hubcache/models--jinaai--jina-clip-v1/snapshots/$COMMIT" ]
    HF_HUB_CACHE="$BATS_TEST_TMPDIR/hubcache" download --cache "$BATS_TEST_TMPDIR/other"
    [ "$status" -eq 0 ]
    [ "$output" = "$BATS_TEST_TMPDIR/other/models--jinaai--jina-clip-v1/snapshots/$COMMIT" ]
    [ -L "$output/model.safetensors" ]
    [ ! -e "$HF_HOME" ]
}

@test "usage errors exit 2" {
    download --frobnicate
    [ "$status" -eq 2 ]
    [[ "${stderr_lines[0]}" == *"unrecognized option"* ]]
    download extra
    [ "$status" -eq 2 ]
    [ "${stderr_lines[0]}" = "jclip download: unexpected argument 'extra'" ]
    download --repo a/b/c
    [ "$status" -eq 2 ]
    [ "${stderr_lines[0]}" = "jclip download: 'a/b/c' is not a repository id (name or owner/name)" ]
    download --revision ../x
    [ "$status" -eq 2 ]
    [ "${stderr_lines[0]}" = "jclip download: '../x' is not a usable revision name" ]
    download --cache ""
    [ "$status" -eq 2 ]
    download --help
    [ "$status" -eq 0 ]
    [ "${lines[0]}" = "usage: jclip download [options]" ]
    [ -z "$stderr" ]
    [ ! -e "$HF_HOME" ]
}
