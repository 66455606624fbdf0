# Shared by the bats files: run from the top of the tree, on the generated tiny model.
bats_require_minimum_version 1.5.0

JCLIP="${JCLIP:-$PWD/jclip}"
MODEL="$PWD/tests/models/tiny"
GOLDEN="$PWD/tests/golden"
export LC_ALL=C
unset JCLIP_MODEL JCLIP_THREADS JCLIP_ISA JCLIP_PRECISION OPENBLAS_CORETYPE JCLIP_DEBUG_CORENAME
# make test-haswell runs the batch-invariance tests again on OpenBLAS's Haswell kernels
[ -z "${JCLIP_TEST_CORETYPE:-}" ] || export OPENBLAS_CORETYPE="$JCLIP_TEST_CORETYPE"
export HF_HOME="$BATS_TEST_TMPDIR/no-hf-home"

# A copy of the tiny model whose files can be damaged; the weights are copied, not linked.
model_copy() {
    local dir="$BATS_TEST_TMPDIR/model"
    mkdir -p "$dir"
    cp "$MODEL"/* "$dir"/
    echo "$dir"
}

# Rewrites the safetensors header of $1 with the jq filter $2, keeping the data as it is;
# $3, if given, is a jq string filter applied to the compact JSON text afterwards.
edit_header() {
    local f="$1" n hdr pad len i bytes=""
    n=$(od -An -t u8 -N8 "$f" | tr -d ' ')
    hdr=$(tail -c +9 "$f" | head -c "$n" | jq -c "$2")
    [ -z "${3:-}" ] || hdr=$(printf '%s' "$hdr" | jq -Rr "$3")
    pad=$(( (8 - ${#hdr} % 8) % 8 ))
    hdr="$hdr$(printf '%*s' "$pad" '')"
    len=${#hdr}
    for i in 0 1 2 3 4 5 6 7; do
        bytes="$bytes$(printf '\\x%02x' $(( (len >> (8 * i)) & 255 )))"
    done
    { printf "$bytes"; printf '%s' "$hdr"; tail -c +$((9 + n)) "$f"; } > "$f.new"
    mv "$f.new" "$f"
}

# No file but the expected ones in a directory.
assert_no_tmp_files() {
    run ls -A "$1"
    [[ "$output" != *.tmp.* ]]
}

# Norm of a jsonl embedding line.
norm() {
    echo "$1" | jq '[.[] | . * .] | add | sqrt'
}

# Two embed-image or embed-text JSON-lines outputs, two classify outputs or two strings
# are the same, to the bit: jclip promises that whatever the batch, the thread count, the
# process split and the OpenBLAS core type (jclip(1), Threads).
same_embeddings() {
    [ "$1" = "$2" ]
}

same_labels() {
    [ "$1" = "$2" ]
}

# Two JSON-lines record outputs (--jsonl) are the same bytes.
same_records() {
    cmp "$1" "$2"
}

# Waits up to 10 s for a whole line, a port, in file $1 (a server started in the background
# prints it once bound) and prints it; else prints $2 and the file $3 and fails.
wait_port() {
    local port="" i
    for i in $(seq 100); do
        # a whole line: the port is written at once, with its newline
        if read -r port < "$1" 2> /dev/null && [ -n "$port" ]; then
            echo "$port"
            return 0
        fi
        sleep 0.1
    done
    echo "$2:"
    cat "$3"
    return 1
}

# Starts the local image server (imageserver.py) on the files of directory $1; sets IMG to its
# base URL and IMG_PID. It stops by itself after --lifetime; stop_image_server ends it sooner.
start_image_server() {
    local port
    python3 "$BATS_TEST_DIRNAME/imageserver.py" --root "$1" --lifetime "${2:-300}" \
        --log "$BATS_TEST_TMPDIR/images.log" > "$BATS_TEST_TMPDIR/images.port" \
        2> "$BATS_TEST_TMPDIR/images.err" 3>&- &
    IMG_PID=$!
    port=$(wait_port "$BATS_TEST_TMPDIR/images.port" "the image server did not start" \
        "$BATS_TEST_TMPDIR/images.err") || { echo "$port"; return 1; }
    IMG="http://127.0.0.1:$port"
}

stop_image_server() {
    [ -z "${IMG_PID:-}" ] || kill "$IMG_PID" 2> /dev/null || true
    IMG_PID=
}

# ---- jclip serve ----------------------------------------------------------------------

# Under valgrind (make valgrind) every step is tens of times slower: longer waits, less work.
# Under the sanitizers (make asan) a few times slower, and more on AVX2 than on AVX-512: an
# 8192-token text took 22 s on a 2-core Zen 3. Longer waits there, the same work.
SLOW=1
[ -z "${JCLIP_SANITIZED:-}" ] || SLOW=3
[ -z "${JCLIP_REAL:-}" ] || SLOW=30

# Starts a server with extra options; sets SERVER_PID, PORT and LOG.
start_server() {
    LOG="$BATS_TEST_TMPDIR/serve.log"
    "$JCLIP" serve -m "$MODEL" --port 0 "$@" 2> "$LOG" 3>&- &
    SERVER_PID=$!
    for _ in $(seq $((100 * SLOW))); do
        grep -q 'listening on' "$LOG" && break
        kill -0 "$SERVER_PID" 2> /dev/null || break
        sleep 0.1
    done
    PORT=$(sed -n 's|^jclip serve: listening on http://127\.0\.0\.1:\([0-9][0-9]*\) (model .*)$|\1|p' "$LOG")
    [ -n "$PORT" ] || { cat "$LOG"; return 1; }
}

# Stops it with SIGTERM and checks it exits 0 within 10 s (longer under valgrind).
stop_server() {
    [ -n "${SERVER_PID:-}" ] || return 0
    local pid=$SERVER_PID status=0
    SERVER_PID=
    kill "$pid" 2> /dev/null || return 0
    for _ in $(seq $((100 * SLOW))); do
        kill -0 "$pid" 2> /dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2> /dev/null && { echo "the server did not stop"; return 1; }
    wait "$pid" || status=$?
    [ "$status" -eq 0 ] || { echo "the server exited $status"; return 1; }
}
