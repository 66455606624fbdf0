#!/bin/bash
# Fuzzes each target for a while and sums up; `make fuzz` runs it from the top of the tree.
#
#   tests/fuzz/run.sh BUILD SECONDS TARGET...
#
# Each target runs on a working copy of its corpus, BUILD/corpus/TARGET, seeded from
# tests/fuzz/TARGET (libFuzzer adds what it finds there); crashes, timeouts and out-of-memory
# inputs go to BUILD/crashes/TARGET/ and the full output to BUILD/logs/TARGET.log. Exits 1
# if any target found something.
set -u
if [ $# -lt 3 ]; then
    echo "usage: $0 BUILD SECONDS TARGET..." >&2
    exit 2
fi
build=$1 seconds=$2
shift 2
summary=$build/summary.txt
status=0

# The largest input per target: room for the format's structure, small enough to run fast.
max_len() {
    case $1 in
    image) echo 32768 ;;
    tokenizer_load) echo 8192 ;;
    npy) echo 1024 ;;
    *) echo 4096 ;;
    esac
}

dict() {
    case $1 in
    safetensors | config | tokenizer_load | record) echo "-dict=tests/fuzz/json.dict" ;;
    image) echo "-dict=tests/fuzz/image.dict" ;;
    esac
}

mkdir -p "$build/logs"
printf '%-16s %12s %8s %6s %7s %7s  %s\n' target execs exec/s cov ft corpus result >"$summary"
for t in "$@"; do
    corpus=$build/corpus/$t crashes=$build/crashes/$t log=$build/logs/$t.log
    mkdir -p "$corpus" "$crashes"
    # seeds are named by content or purpose: one already there is the same input
    cp -n "tests/fuzz/$t"/* "$corpus"/ 2>/dev/null
    echo "== fuzz_$t: $seconds s, -max_len=$(max_len "$t")"
    # the log has all; shown are the pulses, the end and any report, not every input kept
    OPENBLAS_NUM_THREADS=1 "$build/fuzz_$t" "$corpus" -max_len="$(max_len "$t")" \
        -rss_limit_mb=2048 -timeout=10 -max_total_time="$seconds" -print_final_stats=1 \
        -artifact_prefix="$crashes/" $(dict "$t") 2>&1 | tee "$log" |
        grep --line-buffered -Ev '^#[0-9]+[[:space:]]+(NEW|REDUCE) |^".*" # Uses: [0-9]+$|Recommended dictionary'
    rc=${PIPESTATUS[0]}
    result=ok
    if [ $rc -ne 0 ]; then
        status=1
        result="FAILED (exit $rc): $(sed -n 's/.*Test unit written to //p' "$log" | tr '\n' ' ')"
    fi
    last=$(grep -E '^#[0-9]+.* cov: ' "$log" | tail -n 1)
    field() { sed -n "s/.* $1: \([0-9]*\).*/\1/p" <<<"$last"; }
    stat_of() { sed -n "s/^stat::$1: *//p" "$log"; }
    printf '%-16s %12s %8s %6s %7s %7s  %s\n' "$t" "$(stat_of number_of_executed_units)" \
        "$(stat_of average_exec_per_sec)" "$(field cov)" "$(field ft)" \
        "$(ls "$corpus" | wc -l)" "$result" >>"$summary"
done
echo
cat "$summary"
exit $status
