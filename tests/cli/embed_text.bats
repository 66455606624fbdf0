#!/usr/bin/env bats
# jclip embed-text: inputs, outputs, options and bad inputs.

load helper

@test "one argument gives one unit-norm jsonl line of D floats" {
    run --separate-stderr "$JCLIP" embed-text -m "$MODEL" "a photo of a cat"
    [ "$status" -eq 0 ]
    [ -z "$stderr" ]
    [ "${#lines[@]}" -eq 1 ]
    [ "$(echo "$output" | jq length)" -eq 128 ]
    n=$(norm "$output")
    [ "$(echo "$n" | awk '{print ($1 > 0.99999 && $1 < 1.00001)}')" -eq 1 ]
}

@test "arguments keep their order, and equal one-at-a-time runs" {
    run --separate-stderr "$JCLIP" embed-text -m "$MODEL" "a dog" "astronaut" "a dog"
    [ "$status" -eq 0 ]
    [ "${#lines[@]}" -eq 3 ]
    same_embeddings "${lines[0]}" "${lines[2]}"
    [ "${lines[0]}" != "${lines[1]}" ]
    single=$("$JCLIP" embed-text -m "$MODEL" "astronaut")
    same_embeddings "$single" "${lines[1]}"
}

@test "stdin lines and '-' give the same vectors as arguments" {
    args=$("$JCLIP" embed-text -m "$MODEL" "first line" "" "third")
    run --separate-stderr bash -c "printf 'first line\n\nthird\n' | '$JCLIP' embed-text -m '$MODEL'"
    [ "$status" -eq 0 ]
    [ "$output" = "$args" ]
    run --separate-stderr bash -c "printf 'first line\n\nthird' | '$JCLIP' embed-text -m '$MODEL' -"
    [ "$output" = "$args" ]
}

@test "--file embeds a whole file, newlines and all, as one text" {
    printf 'two\nlines' > "$BATS_TEST_TMPDIR/doc.txt"
    run --separate-stderr "$JCLIP" embed-text -m "$MODEL" --file "$BATS_TEST_TMPDIR/doc.txt" "x"
    [ "$status" -eq 0 ]
    [ "${#lines[@]}" -eq 2 ]
    direct=$("$JCLIP" embed-text -m "$MODEL" "$(printf 'two\nlines')")
    [ "${lines[0]}" = "$direct" ]
}

@test "-o writes an N x D float32 .npy atomically and nothing to stdout" {
    out="$BATS_TEST_TMPDIR/out.npy"
    run --separate-stderr "$JCLIP" embed-text -m "$MODEL" -o "$out" a b c
    [ "$status" -eq 0 ]
    [ -z "$output" ]
    head -c 128 "$out" | grep -q "'descr': '<f4', 'fortran_order': False, 'shape': (3, 128)"
    [ "$(stat -c %s "$out")" -eq $((128 + 3 * 128 * 4)) ]
    assert_no_tmp_files "$BATS_TEST_TMPDIR"
}

@test "--format tsv and npy carry the same values as jsonl" {
    json=$("$JCLIP" embed-text -m "$MODEL" hello)
    run --separate-stderr "$JCLIP" embed-text -m "$MODEL" -f tsv hello
    [ "$status" -eq 0 ]
    [ "$(echo "$output" | tr '\t' ',' | sed 's/^/[/; s/$/]/')" = "$json" ]
    "$JCLIP" embed-text -m "$MODEL" -f npy hello > "$BATS_TEST_TMPDIR/s.npy"
    "$JCLIP" embed-text -m "$MODEL" -o "$BATS_TEST_TMPDIR/o.npy" hello
    cmp "$BATS_TEST_TMPDIR/s.npy" "$BATS_TEST_TMPDIR/o.npy"
}

@test "--raw gives the unnormalised vector; the default is it over its norm" {
    raw=$("$JCLIP" embed-text -m "$MODEL" --raw "a photo of a cat")
    unit=$("$JCLIP" embed-text -m "$MODEL" "a photo of a cat")
    n=$(norm "$raw")
    [ "$(echo "$n" | awk '{print ($1 < 0.999 || $1 > 1.001)}')" -eq 1 ]
    diff=$(jq -n --argjson r "$raw" --argjson u "$unit" --argjson n "$n" \
        '[range(0; $r | length) | (($r[.] / $n) - $u[.]) | fabs] | max')
    [ "$(echo "$diff" | awk '{print ($1 < 1e-6)}')" -eq 1 ]
}

@test "a text over --max-tokens is truncated with a warning naming it" {
    run --separate-stderr "$JCLIP" embed-text -m "$MODEL" --max-tokens 4 "one two three four five"
    [ "$status" -eq 0 ]
    [ "${#lines[@]}" -eq 1 ]
    [ "$stderr" = "jclip embed-text: warning: argument 1: 7 tokens, truncated to 4" ]
}

@test "a text longer than 8192 tokens is truncated to 8192 by default" {
    yes word | head -n 9000 | tr '\n' ' ' > "$BATS_TEST_TMPDIR/long.txt"
    run --separate-stderr "$JCLIP" embed-text -m "$MODEL" --file "$BATS_TEST_TMPDIR/long.txt"
    [ "$status" -eq 0 ]
    [ "${#lines[@]}" -eq 1 ]
    [[ "$stderr" == *"long.txt': 9002 tokens, truncated to 8192" ]]
}

@test "empty stdin gives no output and exit 0; with -o an empty .npy" {
    run --separate-stderr "$JCLIP" embed-text -m "$MODEL" < /dev/null
    [ "$status" -eq 0 ]
    [ -z "$output" ]
    [ -z "$stderr" ]
    "$JCLIP" embed-text -m "$MODEL" -o "$BATS_TEST_TMPDIR/e.npy" < /dev/null
    head -c 128 "$BATS_TEST_TMPDIR/e.npy" | grep -q "'shape': (0, 128)"
}

@test "an empty line, a line of spaces and an empty argument embed alike" {
    run --separate-stderr bash -c "printf '\n   \t \n' | '$JCLIP' embed-text -m '$MODEL'"
    [ "$status" -eq 0 ]
    [ "${#lines[@]}" -eq 2 ]
    [ "${lines[0]}" = "${lines[1]}" ]
    [ "${lines[0]}" = "$("$JCLIP" embed-text -m "$MODEL" "")" ]
}

@test "a NUL byte is dropped as the BERT normaliser drops it" {
    run --separate-stderr bash -c "printf 'a\0b\n' | '$JCLIP' embed-text -m '$MODEL'"
    [ "$status" -eq 0 ]
    [ -z "$stderr" ]
    [ "$output" = "$("$JCLIP" embed-text -m "$MODEL" ab)" ]
}

@test "invalid UTF-8 is reported with its line number, replaced, and the run goes on" {
    run --separate-stderr bash -c "printf 'ok\ncaf\xe9\nok\n' | '$JCLIP' embed-text -m '$MODEL'"
    [ "$status" -eq 0 ]
    [ "${#lines[@]}" -eq 3 ]
    [ "$stderr" = "jclip embed-text: warning: stdin line 2: invalid UTF-8 (1 sequence) replaced by U+FFFD" ]
    [ "${lines[1]}" = "$("$JCLIP" embed-text -m "$MODEL" caf)" ]
}

@test "stdin is embedded as lines arrive, not only at end of input" {
    fifo="$BATS_TEST_TMPDIR/in"
    mkfifo "$fifo"
    "$JCLIP" embed-text -m "$MODEL" < "$fifo" > "$BATS_TEST_TMPDIR/out" 2>&1 &
    pid=$!
    exec 7> "$fifo"
    echo "first" >&7
    for i in $(seq 600); do
        [ -s "$BATS_TEST_TMPDIR/out" ] && break
        sleep 0.1
    done
    # The first vector is out while the writer still holds the pipe open.
    [ "$(wc -l < "$BATS_TEST_TMPDIR/out")" -eq 1 ]
    echo "second" >&7
    exec 7>&-
    wait "$pid"
    [ "$(wc -l < "$BATS_TEST_TMPDIR/out")" -eq 2 ]
}

@test "thread count and batch size do not change the output" {
    a=$("$JCLIP" embed-text -m "$MODEL" -t 1 -b 1 "x y z" "a longer text with more words in it" "q")
    b=$("$JCLIP" embed-text -m "$MODEL" -t 2 -b 3 "x y z" "a longer text with more words in it" "q")
    same_embeddings "$a" "$b"
}

@test "usage errors exit 2 with the usage on stderr" {
    run --separate-stderr "$JCLIP" embed-text -m "$MODEL" --bogus
    [ "$status" -eq 2 ]
    [[ "$stderr" == *"usage: jclip embed-text"* ]]
    run --separate-stderr "$JCLIP" embed-text -m "$MODEL" --format xml hi
    [ "$status" -eq 2 ]
    [[ "${stderr_lines[0]}" == "jclip embed-text: --format: 'xml' is not jsonl, tsv or npy" ]]
    run --separate-stderr "$JCLIP" embed-text -m "$MODEL" --batch 0 hi
    [ "$status" -eq 2 ]
    [ "${stderr_lines[0]}" = "jclip embed-text: --batch: '0' is not a whole number from 1 to 4096" ]
    run --separate-stderr "$JCLIP" embed-text -m "$MODEL" -o x.npy -f tsv hi
    [ "$status" -eq 2 ]
    run --separate-stderr "$JCLIP" embed-text -m "$MODEL" -t 0 hi
    [ "$status" -eq 2 ]
}

@test "--help prints the usage on stdout and exits 0" {
    run --separate-stderr "$JCLIP" embed-text --help
    [ "$status" -eq 0 ]
    [[ "${lines[0]}" == "usage: jclip embed-text [options] [TEXT...]" ]]
    [ -z "$stderr" ]
}

@test "-o into a missing directory fails before any compute" {
    run --separate-stderr "$JCLIP" embed-text -m "$MODEL" -o "$BATS_TEST_TMPDIR/nope/x.npy" hi
    [ "$status" -eq 1 ]
    [[ "$stderr" == "jclip embed-text: cannot create '$BATS_TEST_TMPDIR/nope/x.npy.tmp."*"': No such file or directory" ]]
}

@test "--file on a missing file or a directory is one error line" {
    run --separate-stderr "$JCLIP" embed-text -m "$MODEL" --file /nonexistent/doc.txt
    [ "$status" -eq 1 ]
    [ "$stderr" = "jclip embed-text: cannot open '/nonexistent/doc.txt': No such file or directory" ]
    run --separate-stderr "$JCLIP" embed-text -m "$MODEL" --file "$BATS_TEST_TMPDIR"
    [ "$status" -eq 1 ]
    [ "$stderr" = "jclip embed-text: cannot read '$BATS_TEST_TMPDIR': Is a directory" ]
}

@test "JCLIP_THREADS must be a number" {
    JCLIP_THREADS=many run --separate-stderr "$JCLIP" embed-text -m "$MODEL" hi
    [ "$status" -eq 1 ]
    [ "$stderr" = "jclip embed-text: JCLIP_THREADS: 'many' is not a whole number from 1 to 256" ]
}

@test "SIGINT or SIGTERM mid-run leaves no output file behind" {
    out="$BATS_TEST_TMPDIR/sig.npy"
    for sig in INT TERM; do
        fifo="$BATS_TEST_TMPDIR/in.$sig"
        mkfifo "$fifo"
        # a background job starts with SIGINT ignored, which jclip respects; undo that here
        env --default-signal=INT "$JCLIP" embed-text -m "$MODEL" -o "$out" < "$fifo" 2> /dev/null &
        pid=$!
        exec 7> "$fifo"
        echo "some text" >&7
        for i in $(seq 100); do
            ls "$BATS_TEST_TMPDIR" | grep -q 'sig.npy.tmp' && break
            sleep 0.05
        done
        kill -s "$sig" "$pid"
        st=0
        wait "$pid" || st=$?
        exec 7>&-
        [ "$st" -eq $((128 + $(kill -l "$sig"))) ]
        [ ! -e "$out" ]
        assert_no_tmp_files "$BATS_TEST_TMPDIR"
    done
}

@test "an existing output file is kept when a run fails" {
    out="$BATS_TEST_TMPDIR/keep.npy"
    echo precious > "$out"
    run --separate-stderr "$JCLIP" embed-text -m "$BATS_TEST_TMPDIR/no-model" -o "$out" hi
    [ "$status" -eq 1 ]
    [ "$(cat "$out")" = precious ]
}
