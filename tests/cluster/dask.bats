#!/usr/bin/env bats
# scripts/dask_embed.py on a Dask cluster of a scheduler and two single-threaded workers.
# Under scripts/test-cluster (CLUSTER_NS set) the scheduler runs on h1 and a worker on each of
# h2 and h3, and this client in the root namespace; without it, all of them on 127.0.0.1.
# Every run's output must be what one local `jclip embed-... --jsonl` writes for the whole file
# (same_records: cmp where OpenBLAS is shape-invariant), also when a worker is lost mid-run.
# Each test starts its own cluster and stops everything it started, also on failure.
#
# Run by make test-cluster, as: scripts/test-cluster run bats tests/cluster. Other files there
# share the hosts: setup_file restores every host, and the test that loses one restores it
# when it ends.

load ../cli/helper

# The Python that has distributed (Debian's python3-distributed).
PY="${DASK_PYTHON:-/usr/bin/python3}"
EMBED="$PWD/scripts/dask_embed.py"
TEST_CLUSTER="$PWD/scripts/test-cluster"
IMAGES="$GOLDEN/images"

setup_file() {
    if [ -n "${CLUSTER_NS:-}" ]; then
        for h in $CLUSTER_HOSTS; do
            "$TEST_CLUSTER" restore-host "$h" 3>&-
        done
    fi
}

setup() {
    if [ -n "${CLUSTER_NS:-}" ]; then
        read -ra NS <<< "$CLUSTER_NS"
        read -ra ADDR <<< "$CLUSTER_ADDRS"
        SCHED_PORT=8786
    else
        NS=()
        ADDR=(127.0.0.1 127.0.0.1 127.0.0.1)
        SCHED_PORT=0 # a free one, read back from the scheduler file
    fi
    PIDS=()    # every process started here, stopped in teardown
    WORKERS=() # the worker on host 1 and 2 (h2, h3)
    SERVERS=() # jclip serve URLs
    # A host that vanishes closes no connection: the scheduler gives it up when it misses its
    # heartbeats for this long (distributed's default is 5 minutes).
    export DASK_DISTRIBUTED__SCHEDULER__WORKER_TTL=5s
}

teardown() {
    local pid kids=() i
    # the jclip processes of the workers, which are not children of this shell
    for pid in "${WORKERS[@]}"; do
        kids+=($(pgrep -P "$pid" 2> /dev/null))
    done
    for pid in "${PIDS[@]}" "${kids[@]}"; do
        kill "$pid" 2> /dev/null || true
    done
    # up to 10 s for them to finish what they were doing, then they are killed
    for i in $(seq 100); do
        local left=
        for pid in "${PIDS[@]}" "${kids[@]}"; do
            alive "$pid" && left=1
        done
        [ -n "$left" ] || break
        sleep 0.1
    done
    for pid in "${PIDS[@]}" "${kids[@]}"; do
        ! alive "$pid" || kill -KILL "$pid" 2> /dev/null || true
    done
    wait "${PIDS[@]}" 2> /dev/null || true
    # a host lost by a test is brought back for the next one
    [ -z "${LOST_HOST:-}" ] || "$TEST_CLUSTER" restore-host "$LOST_HOST" 3>&-
}

# Whether process $1 is running (an exited child not yet waited for is not).
alive() {
    local stat
    stat=$(ps -o stat= -p "$1" 2> /dev/null) && [[ "$stat" != Z* ]]
}

# Sets ON to the command prefix that runs a command on host $1 (0, 1, 2 for h1, h2, h3).
on_host() {
    if [ -n "${CLUSTER_NS:-}" ]; then
        ON=(ip netns exec "${NS[$1]}")
    else
        ON=()
    fi
}

# Waits up to $2 s (longer under valgrind) for the command $3... to succeed.
wait_for() {
    local what=$1 secs=$2
    shift 2
    for _ in $(seq $((10 * secs * SLOW))); do
        "$@" && return 0
        sleep 0.1
    done
    echo "timed out waiting for $what"
    return 1
}

# The scheduler on h1; sets SCHEDULER to its address.
start_scheduler() {
    local dir="$BATS_TEST_TMPDIR"
    on_host 0
    "${ON[@]}" "$PY" -m distributed.cli.dask_scheduler --host "${ADDR[0]}" --port "$SCHED_PORT" \
        --dashboard-address "${ADDR[0]}:0" --scheduler-file "$dir/scheduler.json" \
        --idle-timeout 600 > "$dir/scheduler.log" 2>&1 3>&- &
    PIDS+=($!)
    wait_for "the scheduler" 30 test -s "$dir/scheduler.json" ||
        { cat "$dir/scheduler.log"; return 1; }
    SCHEDULER=$(jq -r .address "$dir/scheduler.json")
}

# A worker of one thread in one process (no nanny, so that killing it loses it) on host $1.
start_worker() {
    local log="$BATS_TEST_TMPDIR/worker$1.log"
    on_host "$1"
    "${ON[@]}" "$PY" -m distributed.cli.dask_worker "$SCHEDULER" --no-nanny --nthreads 1 \
        --name "worker$1" --host "${ADDR[$1]}" --dashboard-address "${ADDR[$1]}:0" \
        --local-directory "$BATS_TEST_TMPDIR/worker$1" --death-timeout 60 > "$log" 2>&1 3>&- &
    PIDS+=($!)
    WORKERS[$1]=$!
}

start_cluster() {
    start_scheduler
    start_worker 1
    start_worker 2
    for h in 1 2; do
        wait_for "worker $h" 30 grep -qs 'Registered to' "$BATS_TEST_TMPDIR/worker$h.log" ||
            { cat "$BATS_TEST_TMPDIR/worker$h.log"; return 1; }
    done
}

# jclip serve on host $1, on a free port of the host's address; adds its URL to SERVERS.
# $2... are more options.
start_jclip_server() {
    local h=$1 log="$BATS_TEST_TMPDIR/serve$1.log" url
    shift
    on_host "$h"
    "${ON[@]}" "$JCLIP" serve -m "$MODEL" --host "${ADDR[$h]}" --port 0 "$@" 2> "$log" 3>&- &
    PIDS+=($!)
    wait_for "jclip serve on host $h" 10 grep -qs 'listening on' "$log" || { cat "$log"; return 1; }
    url=$(sed -n 's|^jclip serve: listening on \(http://[0-9.]*:[0-9]*\) (model .*)$|\1|p' "$log")
    [ -n "$url" ] || { cat "$log"; return 1; }
    SERVERS+=("$url")
}

# Two record outputs (files) are the same bytes, as jclip(1) promises however the input is
# split.
same_output() {
    same_records "$1" "$2"
}

# scripts/dask_embed.py against the cluster, with options and files $@.
dask_embed() {
    "$PY" "$EMBED" --scheduler "$SCHEDULER" --jclip "$JCLIP" --model "$MODEL" "$@"
}

# A jclip that notes each start in $BATS_TEST_TMPDIR/starts, to count the processes.
counting_jclip() {
    local f="$BATS_TEST_TMPDIR/jclip-counting"
    printf '#!/bin/sh\necho "$$" >> "%s"\nexec "%s" "$@"\n' "$BATS_TEST_TMPDIR/starts" "$JCLIP" \
        > "$f"
    chmod +x "$f"
    echo "$f"
}

# $1 text records {"id":N,"text":"..."} of varied texts; each 4000th has no "text" and so
# gets an error record.
text_records() {
    awk -v n="$1" 'BEGIN {
        split("a photo of a cat|the quick brown fox|caf\\u00e9 au lait|\\\"quoted\\\" words|tab\\there|x", w, "|")
        for (i = 1; i <= n; i++) {
            if (i % 4000 == 0) { printf "{\"id\":%d,\"txt\":\"typo\"}\n", i; continue }
            t = w[i % 6 + 1]
            for (k = 0; k < i % 9; k++) t = t " " w[(i + k) % 6 + 1]
            printf "{\"id\":%d,\"text\":\"%s %d\"}\n", i, t, i
        }
    }'
}

# $1 image records of the golden images, round and round; each 500th names a missing file.
image_records() {
    local files=("$IMAGES"/*)
    awk -v n="$1" -v list="${files[*]}" -v missing="$BATS_TEST_TMPDIR/missing.png" 'BEGIN {
        m = split(list, f, " ")
        for (i = 1; i <= n; i++)
            printf "{\"id\":\"img-%d\",\"image\":\"%s\"}\n", i,
                i % 500 == 0 ? missing : f[i % m + 1]
    }'
}

@test "pipe: 20,000 text records equal one local jclip's output, through a jclip per worker" {
    start_cluster
    local d="$BATS_TEST_TMPDIR" jclip
    text_records 20000 > "$d/in.jsonl"
    "$JCLIP" embed-text --jsonl -m "$MODEL" < "$d/in.jsonl" > "$d/want.jsonl" 2> /dev/null
    jclip=$(counting_jclip)
    run --separate-stderr "$PY" "$EMBED" --scheduler "$SCHEDULER" --jclip "$jclip" \
        --model "$MODEL" --partition-records 1000 "$d/in.jsonl" "$d/out.jsonl"
    [ "$status" -eq 0 ] || { echo "$stderr"; return 1; }
    [ "$(wc -l < "$d/out.jsonl")" -eq 20000 ]
    same_output "$d/out.jsonl" "$d/want.jsonl"
    [ "$(grep -c '"error":"unknown key' "$d/out.jsonl")" -eq 5 ]
    # 20 partitions went through one jclip per worker at most, stopped when the run ended
    [ "$(wc -l < "$d/starts")" -ge 1 ] && [ "$(wc -l < "$d/starts")" -le 2 ]
    for pid in $(cat "$d/starts"); do
        ! alive "$pid" || { echo "jclip $pid is still running"; return 1; }
    done
    assert_no_tmp_files "$d"
}

@test "pipe: 2,000 image records equal one local jclip embed-image's output" {
    start_cluster
    local d="$BATS_TEST_TMPDIR"
    image_records 2000 > "$d/in.jsonl"
    "$JCLIP" embed-image --jsonl -m "$MODEL" < "$d/in.jsonl" > "$d/want.jsonl" 2> /dev/null
    run --separate-stderr dask_embed --kind image --partition-records 100 \
        "$d/in.jsonl" "$d/out.jsonl"
    [ "$status" -eq 0 ] || { echo "$stderr"; return 1; }
    [ "$(wc -l < "$d/out.jsonl")" -eq 2000 ]
    same_output "$d/out.jsonl" "$d/want.jsonl"
    [ "$(grep -c '"error":"cannot open' "$d/out.jsonl")" -eq 4 ]
}

@test "a worker lost mid-run: its partitions run again, the output is complete and the same" {
    start_cluster
    local d="$BATS_TEST_TMPDIR" n=0 client
    text_records 20000 > "$d/in.jsonl"
    "$JCLIP" embed-text --jsonl -m "$MODEL" < "$d/in.jsonl" > "$d/want.jsonl" 2> /dev/null
    # Small partitions, so that the run is many tasks and the kill lands among them.
    dask_embed --partition-records 100 "$d/in.jsonl" "$d/out.jsonl" 2> "$d/client.err" 3>&- &
    client=$!
    PIDS+=($client)
    # The output grows under its temporary name, in order: lose h3 once a tenth is written.
    for _ in $(seq $((600 * SLOW))); do
        n=$(cat "$d"/out.jsonl.tmp.* 2> /dev/null | wc -l)
        [ "$n" -ge 2000 ] && break
        alive "$client" || break
        sleep 0.05
    done
    [ "$n" -ge 2000 ] && [ "$n" -lt 20000 ] && alive "$client" ||
        { echo "no kill mid-run: $n lines written"; cat "$d/client.err"; return 1; }
    if [ -n "${CLUSTER_NS:-}" ]; then
        LOST_HOST=h3
        "$TEST_CLUSTER" kill-host h3
    else
        kill -KILL "${WORKERS[2]}"
    fi
    echo "killed the worker of h3 at $n of 20000 lines"
    local rc=0
    wait "$client" || rc=$?
    [ "$rc" -eq 0 ] || { echo "exit $rc"; cat "$d/client.err"; return 1; }
    # the scheduler saw the worker go (at once, or after the TTL for a vanished host)
    grep -q 'Remove worker\|Removing worker\|failed to heartbeat' "$d/scheduler.log" ||
        { cat "$d/scheduler.log"; return 1; }
    same_output "$d/out.jsonl" "$d/want.jsonl"
    assert_no_tmp_files "$d"
}

@test "http: records through jclip serve on h2 and h3 are the CLI's bytes, errors included" {
    start_cluster
    # One input per batch in the servers and the CLI: then the floats are the same bits on
    # every machine, and the lines are compared with cmp, not within a tolerance.
    start_jclip_server 1 --max-batch 1
    start_jclip_server 2 --max-batch 1
    local d="$BATS_TEST_TMPDIR" servers
    servers=$(IFS=,; echo "${SERVERS[*]}")
    {
        text_records 4000
        # ids of every kind, as written; and bad lines, whose errors the task must write as
        # jclip's record parser does
        printf '%s\n' \
            '{"id": 1.50, "text": "a cat"}' \
            '{ "id" : { "a" : [ 1 , "x  }" ] } , "text" : "nested id" }' \
            '{"id":"\u00e9","text":"caf\u00e9 \"q\" \\ tab\there \ud800 lone, \ud83d\ude00 pair"}' \
            '{"id":-0,"text":""}' \
            '' \
            'not json' \
            '{"id":2,"text":"unterminated}' \
            '[1,2]' \
            '{"text":"no id"}' \
            '{"id":3,"text":"a","lang":"en"}' \
            '{"id":4,"text":"a","image":"b.png"}' \
            '{"id":6,"image":"photo.png"}' \
            '{"id":7,"text":42}' \
            '{"id":9,"text":"a","text":"b"}' \
            '{"id":10,"text":"a","draft":true}' \
            '{"id":11,"text":"x"} more' \
            '{"id":1.5e,"text":"x"}' \
            '{"id":013,"text":"x"}'
        printf '{"id":"long","text":"%s"}\n' "$(printf 'word %.0s' $(seq 9000))"
        printf '{"id":"bytes","text":"\xff\xfe bad UTF-8"}\n'
    } > "$d/in.jsonl"
    "$JCLIP" embed-text --jsonl -b 1 -m "$MODEL" < "$d/in.jsonl" > "$d/want.jsonl" 2> /dev/null
    run --separate-stderr dask_embed --via http --servers "$servers" --partition-records 300 \
        "$d/in.jsonl" "$d/out.jsonl"
    [ "$status" -eq 0 ] || { echo "$stderr"; return 1; }
    cmp "$d/out.jsonl" "$d/want.jsonl"
    # both servers answered
    for h in 1 2; do
        grep -q 'POST /v1/embeddings 200' "$BATS_TEST_TMPDIR/serve$h.log"
    done

    # Images: files are read by the task and sent in base64, data URIs decoded there. A third
    # URL where nothing listens: the partitions that start with it go on to the others.
    {
        image_records 40
        printf '{"id":"uri","image":"data:image/png;base64,%s"}\n' \
            "$(base64 -w0 "$IMAGES/logo.png")"
        printf '%s\n' '{"id":"not-png","image":"data:image/png;base64,QQ=="}' \
            '{"id":"bits","image":"data:image/png;base64,QR=="}' \
            '{"id":"type","image":"data:text/plain;base64,QQ=="}' \
            "{\"id\":\"dir\",\"image\":\"$IMAGES\"}" '{"id":"text","text":"a cat"}'
    } > "$d/img.jsonl"
    "$JCLIP" embed-image --jsonl -b 1 -m "$MODEL" < "$d/img.jsonl" > "$d/img-want.jsonl" \
        2> /dev/null
    run --separate-stderr dask_embed --via http --kind image \
        --servers "$servers,http://${ADDR[0]}:1" --partition-records 8 \
        "$d/img.jsonl" "$d/img-out.jsonl"
    [ "$status" -eq 0 ] || { echo "$stderr"; return 1; }
    cmp "$d/img-out.jsonl" "$d/img-want.jsonl"
}

@test "an empty input gives an empty output and exit 0" {
    start_cluster
    local d="$BATS_TEST_TMPDIR"
    : > "$d/in.jsonl"
    echo stale > "$d/out.jsonl"
    run --separate-stderr dask_embed "$d/in.jsonl" "$d/out.jsonl"
    [ "$status" -eq 0 ] || { echo "$stderr"; return 1; }
    [ -f "$d/out.jsonl" ] && [ ! -s "$d/out.jsonl" ]
    assert_no_tmp_files "$d"
}

@test "a task that cannot run jclip fails the run: exit 1, no output, no temporary file" {
    start_cluster
    local d="$BATS_TEST_TMPDIR"
    text_records 10 > "$d/in.jsonl"
    run --separate-stderr "$PY" "$EMBED" --scheduler "$SCHEDULER" --jclip "$d/no-jclip" \
        --model "$MODEL" "$d/in.jsonl" "$d/out.jsonl"
    [ "$status" -eq 1 ]
    [[ "$stderr" == *"dask_embed.py: error: "*"no-jclip"* ]]
    [ ! -e "$d/out.jsonl" ]
    assert_no_tmp_files "$d"
}
