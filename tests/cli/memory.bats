#!/usr/bin/env bats
# Under a cap on the address space (ulimit -v) jclip fails with one line and exit status 1
# when something does not fit, instead of hanging in OpenBLAS's allocator (which retries a
# failed buffer for ever) or crashing. Each run has a timeout, so a hang fails the test.
#
# The caps are in KiB, as ulimit -v takes them. On this tree the tiny model's processes map
# about 80 MiB before the first GEMM; OpenBLAS's buffers are 128 MiB a thread.

load helper

IMAGES="$GOLDEN/images"

setup() {
    # AddressSanitizer reserves terabytes of shadow memory and valgrind its own address space:
    # neither runs under these caps
    [ -z "${JCLIP_REAL:-}" ] || skip "under valgrind"
    ! grep -q __asan_init "$JCLIP" || skip "built with AddressSanitizer"
}

# capped KIB ARGS...: jclip ARGS under ulimit -v KIB, for at most 30 s
capped() {
    local cap=$1
    shift
    run --separate-stderr bash -c 'ulimit -v "$1" && shift && exec timeout 30 "$@"' _ "$cap" "$JCLIP" "$@"
}

@test "no cap: embed-text and embed-image work with 2 threads" {
    run --separate-stderr timeout 30 "$JCLIP" embed-text -m "$MODEL" -t 2 "a photo of a cat"
    [ "$status" -eq 0 ]
    [ "${#lines[@]}" -eq 1 ]
    [ -z "$stderr" ]
    run --separate-stderr timeout 30 "$JCLIP" embed-image -m "$MODEL" -t 2 "$IMAGES/coffee.png"
    [ "$status" -eq 0 ]
    [ "${#lines[@]}" -eq 1 ]
    [ -z "$stderr" ]
}

@test "the model maps but one thread's GEMM buffer does not fit: one line, exit 1" {
    for cmd in embed-text embed-image; do
        input="a photo of a cat"
        [ $cmd = embed-text ] || input="$IMAGES/coffee.png"
        capped 150000 $cmd -m "$MODEL" -t 1 "$input"
        [ "$status" -eq 1 ] || { echo "$cmd: exit $status: $stderr"; return 1; }
        [ -z "$output" ]
        [ "${#stderr_lines[@]}" -eq 1 ]
        [[ "$stderr" =~ ^"jclip $cmd: not enough memory for OpenBLAS: 1 thread needs 128 MiB of buffers: the address-space limit (ulimit -v) leaves "[0-9]+" MiB"$ ]] ||
            { echo "$cmd: $stderr"; return 1; }
    done
}

@test "room for one thread's buffer, not two: -t 2 fails, -t 1 runs" {
    for cmd in embed-text embed-image; do
        input="a photo of a cat"
        [ $cmd = embed-text ] || input="$IMAGES/coffee.png"
        capped 300000 $cmd -m "$MODEL" -t 2 "$input"
        [ "$status" -eq 1 ] || { echo "$cmd: exit $status: $stderr"; return 1; }
        [ -z "$output" ]
        [[ "$stderr" =~ ^"jclip $cmd: not enough memory for OpenBLAS: 2 threads need 256 MiB of buffers: the address-space limit (ulimit -v) leaves "[0-9]+" MiB"$ ]] ||
            { echo "$cmd: $stderr"; return 1; }
        capped 300000 $cmd -m "$MODEL" -t 1 "$input"
        [ "$status" -eq 0 ] || { echo "$cmd -t 1: exit $status: $stderr"; return 1; }
        [ "${#lines[@]}" -eq 1 ]
        [ -z "$stderr" ]
    done
}

@test "the same vectors under a cap as without one" {
    want=$("$JCLIP" embed-text -m "$MODEL" -t 1 "a photo of a cat" "a dog")
    capped 300000 embed-text -m "$MODEL" -t 1 "a photo of a cat" "a dog"
    [ "$status" -eq 0 ]
    [ "$output" = "$want" ]
}

@test "from a small cap to a large one: exit 0, or 1 with one line; never a hang or a crash" {
    for cap in 80000 90000 110000 150000 200000 250000 300000 400000 600000; do
        for t in 1 2; do
            for cmd in embed-text embed-image; do
                input="a photo of a cat"
                [ $cmd = embed-text ] || input="$IMAGES/coffee.png"
                capped $cap $cmd -m "$MODEL" -t $t "$input"
                case $status in
                0) [ "${#lines[@]}" -eq 1 ] ;;
                1) [ "${#stderr_lines[@]}" -eq 1 ] && [[ "$stderr" == "jclip $cmd: "* ]] &&
                    [[ "$stderr" =~ "not enough memory"|"out of memory"|"Cannot allocate memory" ]] ;;
                *) false ;;
                esac || { echo "ulimit -v $cap, $cmd -t $t: exit $status: $stderr"; return 1; }
            done
        done
    done
}

@test "a command without GEMMs exits under a cap too (no OpenBLAS thread left spinning)" {
    capped 150000 count-tokens -m "$MODEL" "a photo of a cat"
    [ "$status" -eq 0 ]
    [ "$output" = 7 ]
    [ -z "$stderr" ]
    capped 150000 --version
    [ "$status" -eq 0 ]
    [ "$output" = "jclip 0.1.0" ]
}

@test "similarity of stored rows under a cap: one line, exit 1" {
    "$JCLIP" embed-text -m "$MODEL" -o "$BATS_TEST_TMPDIR/a.npy" "a" "b" "c"
    capped 150000 similarity --threads 1 "$BATS_TEST_TMPDIR/a.npy"
    [ "$status" -eq 1 ]
    [ -z "$output" ]
    [[ "$stderr" =~ ^"jclip similarity: not enough memory for OpenBLAS: 1 thread needs 128 MiB of buffers: " ]]
    capped 300000 similarity --threads 1 "$BATS_TEST_TMPDIR/a.npy"
    [ "$status" -eq 0 ]
    [ "${#lines[@]}" -eq 4 ]
}
