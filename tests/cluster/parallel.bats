#!/usr/bin/env bats
# jclip(1) PIPELINES, "GNU parallel across hosts", run as the page spells it on three ssh
# hosts: h1, h2 and h3 of scripts/test-cluster, network namespaces of this machine that share
# its filesystem. The records are split into jobs, embedded on the hosts and joined back; the
# result must be the bytes one local process makes, also when a host is lost mid-run.
#
# Run by make test-cluster, as: scripts/test-cluster run bats tests/cluster
# Other files there share the cluster: setup_file restores every host, and a test that loses
# one restores it when it ends.

load ../cli/helper

CLUSTER_CTL="$BATS_TEST_DIRNAME/../../scripts/test-cluster"

# The recipe's --retries; the test of a host without the model also runs without it.
RETRIES="--retries 3"

# jclip(1)'s recipe on h1, h2 and h3: across_hosts N [OPTION...] -- COMMAND [ARG...], with N
# records per job and more options of GNU parallel's (--joblog). Beyond the page's recipe:
# --ssh, for the cluster's ssh_config, and jclip by its absolute path, since the remote
# shell's PATH does not hold this tree.
across_hosts() {
    local n=$1 opts=()
    shift
    while [ "$1" != -- ]; do
        opts+=("$1")
        shift
    done
    shift
    JCLIP_MODEL="$MODEL" parallel --will-cite --pipe -k -N "$n" $RETRIES \
        --sshlogin 1/h1,1/h2,1/h3 --ssh "ssh -F $CLUSTER_SSH_CONFIG" "${opts[@]}" \
        --env JCLIP_MODEL "$@"
}

# The page's check before a run: on_every_host [OPTION...] COMMAND [ARG...] runs COMMAND on
# every host and tags each line with its host.
on_every_host() {
    JCLIP_MODEL="$MODEL" parallel --will-cite --nonall --tag --sshlogin h1,h2,h3 \
        --ssh "ssh -F $CLUSTER_SSH_CONFIG" "$@"
}

# Two record outputs (files) are the same bytes, as jclip(1) promises however the input is
# split.
same_output() {
    same_records "$1" "$2"
}

# The jobs of a --joblog: "SEQ HOST EXITVAL SIGNAL", one line each.
jobs_of() {
    awk -F'\t' 'NR > 1 { print $1, $2, $7, $8 }' "$1"
}

# Shows what parallel said when a run failed: its first lines that are not jclip's warnings
# about single records.
show_stderr() {
    grep -v '^jclip embed-[a-z]*: warning: stdin line ' "$1" | head -n 20
}

# Outside a cluster every test is skipped (this bats cannot skip from setup_file).
setup_file() {
    if [ -z "${CLUSTER_SSH_CONFIG:-}" ]; then
        export NO_CLUSTER=1
        return 0
    fi
    local d="$BATS_FILE_TMPDIR" h
    # An earlier file may have lost a host or left jobs running on one.
    for h in $CLUSTER_HOSTS; do
        "$CLUSTER_CTL" restore-host "$h"
    done

    # 20,000 text records of varied lengths: UTF-8 (accents, Greek, Japanese, an emoji),
    # JSON escapes, and now and then a bad record, each of which gets an error record.
    awk 'BEGIN {
        n = split("a photo of a cat|a dog running on the beach|caf\\u00e9 au lait|東京の夜景|" \
                  "🚀 rocket launch at dawn|naïve résumé façade|Ελληνικά κείμενα|" \
                  "a \\\"quoted\\\" word|tab\\tand newline\\n escaped|" \
                  "the quick brown fox jumps over the lazy dog again and again", w, "|")
        for (i = 1; i <= 20000; i++) {
            if (i % 4999 == 5) { printf "{\"id\": %d}\n", i; continue }
            if (i % 7919 == 11) { print "not json"; continue }
            if (i % 9973 == 17) { printf "{\"id\": %d, \"image\": \"x.png\"}\n", i; continue }
            t = w[i % n + 1]
            for (k = 0; k < i % 7; k++) t = t " " w[(i * 7 + k) % n + 1]
            printf "{\"id\": %d, \"text\": \"%s %d\"}\n", i, t, i
        }
    }' > "$d/texts.jsonl"

    # 2,000 image records: the golden images by absolute path, over and over, and two files
    # that do not exist.
    find "$GOLDEN/images" -maxdepth 1 -type f | sort > "$d/images.list"
    awk 'NR == FNR { f[n++] = $0; next } END {
        for (i = 1; i <= 2000; i++) {
            p = (i == 700 || i == 1500) ? "/nonexistent/" i ".png" : f[i % n]
            printf "{\"id\": %d, \"image\": \"%s\"}\n", i, p
        }
    }' "$d/images.list" /dev/null > "$d/images.jsonl"

    # Records of over 1 MiB, more than parallel's default block, among short ones.
    awk 'BEGIN {
        for (i = 0; i < 30; i++) {
            if (i % 5 != 2) { printf "{\"id\": %d, \"text\": \"short record %d\"}\n", i, i; continue }
            s = "record " i " "
            while (length(s) < 1048576) s = s s
            printf "{\"id\": %d, \"text\": \"%s\"}\n", i, substr(s, 1, 1048576)
        }
    }' > "$d/long.jsonl"

    # The references: one local process each.
    local f
    for f in texts long; do
        "$JCLIP" embed-text --jsonl -m "$MODEL" < "$d/$f.jsonl" > "$d/$f.ref" 2> /dev/null
    done
    "$JCLIP" embed-image --jsonl -m "$MODEL" < "$d/images.jsonl" > "$d/images.ref" 2> /dev/null
}

setup() {
    [ -z "${NO_CLUSTER:-}" ] || skip "no cluster: run under scripts/test-cluster run (make test-cluster)"
}

@test "before a run: every host has the same jclip, and finds the model" {
    version=$("$JCLIP" --version)
    run -0 --separate-stderr on_every_host "$JCLIP" --version
    [ "$(sort <<< "$output")" = "$(printf 'h%s\t%s\n' 1 "$version" 2 "$version" 3 "$version")" ]
    [ "$(ssh -F "$CLUSTER_SSH_CONFIG" h2 "$JCLIP" --version)" = "$version" ]

    # Each host's jclip info, untagged, is this host's: the same model, kernels and core type.
    run -0 --separate-stderr on_every_host --env JCLIP_MODEL "$JCLIP" info
    here=$(JCLIP_MODEL="$MODEL" "$JCLIP" info)
    for h in h1 h2 h3; do
        [ "$(sed -n "s/^$h\t//p" <<< "$output")" = "$here" ] || { echo "$h: $output"; return 1; }
    done
}

@test "texts across three hosts: the bytes of one process" {
    out="$BATS_TEST_TMPDIR/vectors.jsonl"
    log="$BATS_TEST_TMPDIR/joblog"
    status=0
    across_hosts 1000 --joblog "$log" -- "$JCLIP" embed-text --jsonl \
        < "$BATS_FILE_TMPDIR/texts.jsonl" > "$out" 2> "$BATS_TEST_TMPDIR/err" || status=$?
    [ "$status" -eq 0 ] || { show_stderr "$BATS_TEST_TMPDIR/err"; return 1; }
    [ "$(wc -l < "$out")" -eq 20000 ]
    [ "$(grep -c '"error":' "$out")" -eq 10 ]
    same_output "$BATS_FILE_TMPDIR/texts.ref" "$out"
    # 20 jobs, all of them a success, and every host ran some.
    [ "$(jobs_of "$log" | awk '$3 == 0 && $4 == 0' | wc -l)" -eq 20 ]
    [ "$(jobs_of "$log" | awk '{ print $2 }' | sort -u | tr '\n' ' ')" = "h1 h2 h3 " ]
}

@test "images across three hosts: the bytes of one process" {
    out="$BATS_TEST_TMPDIR/vectors.jsonl"
    status=0
    across_hosts 100 -- "$JCLIP" embed-image --jsonl \
        < "$BATS_FILE_TMPDIR/images.jsonl" > "$out" 2> "$BATS_TEST_TMPDIR/err" || status=$?
    [ "$status" -eq 0 ] || { show_stderr "$BATS_TEST_TMPDIR/err"; return 1; }
    [ "$(wc -l < "$out")" -eq 2000 ]
    [ "$(grep -c '"error":' "$out")" -eq 2 ]
    same_output "$BATS_FILE_TMPDIR/images.ref" "$out"
}

@test "records of 1 MiB: never split, one record out per record in" {
    out="$BATS_TEST_TMPDIR/vectors.jsonl"
    err="$BATS_TEST_TMPDIR/err"
    status=0
    across_hosts 4 -- "$JCLIP" embed-text --jsonl \
        < "$BATS_FILE_TMPDIR/long.jsonl" > "$out" 2> "$err" || status=$?
    [ "$status" -eq 0 ] || { show_stderr "$err"; return 1; }
    [ "$(jq -r .id "$out" | tr '\n' ' ')" = "$(seq 0 29 | tr '\n' ' ')" ]
    same_output "$BATS_FILE_TMPDIR/long.ref" "$out"
    # parallel splits on newlines only: a record longer than its block grows the block, with
    # a warning; jclip truncates each long text to the model's context, with a warning.
    grep -q '^parallel: Warning: A record was longer than ' "$err"
    [ "$(grep -c 'tokens, truncated to 8192$' "$err")" -eq 6 ]
}

@test "a host without the model: the check names the host, --retries runs its jobs elsewhere" {
    # jclip as a host would run it where JCLIP_MODEL names a directory that is not there:
    # the filesystem is shared, so the host is told by the address ssh came in on.
    bad_addr=$(echo $CLUSTER_ADDRS | cut -d' ' -f2)
    missing="$BATS_TEST_TMPDIR/no-model"
    jclip_h2="$BATS_TEST_TMPDIR/jclip-h2"
    cat > "$jclip_h2" << EOF
#!/bin/sh
case " \$SSH_CONNECTION " in *" $bad_addr "*) JCLIP_MODEL='$missing' ;; esac
exec '$JCLIP' "\$@"
EOF
    chmod +x "$jclip_h2"
    msg="jclip info: model directory '$missing' does not exist"

    # The check before a run: jclip info fails on h2 only, and the tag names it.
    run -1 --separate-stderr on_every_host --env JCLIP_MODEL "$jclip_h2" info
    [ "$stderr" = "h2"$'\t'"$msg" ]
    [ "$(cut -f1 <<< "$output" | sort -u | tr '\n' ' ')" = "h1 h3 " ]

    head -n 3000 "$BATS_FILE_TMPDIR/texts.jsonl" > "$BATS_TEST_TMPDIR/in"
    head -n 3000 "$BATS_FILE_TMPDIR/texts.ref" > "$BATS_TEST_TMPDIR/ref"
    out="$BATS_TEST_TMPDIR/vectors.jsonl"
    err="$BATS_TEST_TMPDIR/err"
    log="$BATS_TEST_TMPDIR/joblog"

    # Without --retries the jobs h2 takes fail: their records are missing from the output,
    # parallel exits with the number of failed jobs, jclip's message names the path but not
    # the host, and the joblog names the host.
    status=0
    RETRIES='' across_hosts 300 --joblog "$log" -- "$jclip_h2" embed-text --jsonl \
        < "$BATS_TEST_TMPDIR/in" > "$out" 2> "$err" || status=$?
    failed=$(jobs_of "$log" | awk '$3 != 0' | wc -l)
    [ "$failed" -gt 0 ]
    [ "$status" -eq "$failed" ]
    [ "$(jobs_of "$log" | awk '$3 != 0 { print $2, $3 }' | sort -u)" = "h2 1" ]
    [ "$(grep -c -Fx "jclip embed-text: model directory '$missing' does not exist" "$err")" -eq "$failed" ]
    [ "$(wc -l < "$out")" -eq $((3000 - 300 * failed)) ]

    # With the recipe's --retries each of them runs again on a host that has not failed it,
    # and the output is whole. parallel drops a failed attempt's output and messages: the
    # run says nothing of h2, which is why the page has the check above.
    status=0
    across_hosts 300 --joblog "$log" -- "$jclip_h2" embed-text --jsonl \
        < "$BATS_TEST_TMPDIR/in" > "$out" 2> "$err" || status=$?
    [ "$status" -eq 0 ] || { show_stderr "$err"; return 1; }
    same_output "$BATS_TEST_TMPDIR/ref" "$out"
    run ! grep -q 'model directory' "$err"
}

teardown() {
    [ -z "${LOST_HOST:-}" ] || "$CLUSTER_CTL" restore-host "$LOST_HOST"
}

@test "a host lost mid-run: its job runs again elsewhere, no record lost or doubled" {
    ns2=$(echo $CLUSTER_NS | cut -d' ' -f2)
    out="$BATS_TEST_TMPDIR/vectors.jsonl"
    log="$BATS_TEST_TMPDIR/joblog"
    seen="$BATS_TEST_TMPDIR/killed"

    # Loses h2 in the middle of a job: once a jclip there has run for 0.3 s and still runs,
    # kill-host takes the link down and kills everything h2 runs, as a power cut would. The
    # ssh connection of that job is not closed: ssh gives it up on its keepalives
    # (ServerAliveInterval in the cluster's ssh_config).
    (
        for _ in $(seq 600); do
            # Live jclip processes of h2; an exited one (a zombie, state Z) does not count.
            pids=$(ip netns pids "$ns2" | xargs -r ps -o pid=,stat=,comm= -p |
                awk '$2 !~ /^Z/ && $3 == "jclip" { print $1 }')
            if [ -n "$pids" ]; then
                sleep 0.3
                ps -o pid=,stat=,args= -p "$(echo $pids)" | awk '$2 !~ /^Z/' > "$seen"
                if [ -s "$seen" ]; then
                    "$CLUSTER_CTL" kill-host h2
                    exit
                fi
            fi
            sleep 0.1
        done
    ) 3>&- &
    killer=$!
    LOST_HOST=h2

    status=0
    across_hosts 2000 --joblog "$log" -- "$JCLIP" embed-text --jsonl \
        < "$BATS_FILE_TMPDIR/texts.jsonl" > "$out" 2> "$BATS_TEST_TMPDIR/err" || status=$?
    kill "$killer" 2> /dev/null || true
    wait "$killer" || true

    # h2 was running a job when it was lost.
    [ -s "$seen" ] || { echo "h2 was not lost while it ran a job; the jobs:"; jobs_of "$log"; return 1; }
    echo "# h2 lost while it ran: $(cat "$seen")" >&3
    [ "$status" -eq 0 ] || { show_stderr "$BATS_TEST_TMPDIR/err"; return 1; }
    [ "$(wc -l < "$out")" -eq 20000 ]
    same_output "$BATS_FILE_TMPDIR/texts.ref" "$out"
    # Every job ended in a success; its failed attempt on h2 is not in the joblog.
    [ "$(jobs_of "$log" | awk '$3 == 0 && $4 == 0' | wc -l)" -eq 10 ]
    # h2 is gone indeed.
    run ! ssh -F "$CLUSTER_SSH_CONFIG" -o ConnectTimeout=2 h2 true
}
