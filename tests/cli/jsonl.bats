#!/usr/bin/env bats
# The record mode (--jsonl) of embed-text, embed-image and classify, and --encoding: one
# record out per record in, ids echoed, bad records answered, and the same bytes however the
# input is batched, threaded or split across processes.

load helper

IMAGES="$GOLDEN/images"

# The embedding of a record line, as the plain commands print it.
embedding_of() {
    sed 's/^{"id":.*,"embedding":\(.*\)}$/\1/'
}

# A data URI of an image file.
data_uri() {
    printf 'data:image/%s;base64,%s' "$2" "$(base64 -w0 "$1")"
}

# Records of texts, one per line: {"id":N,"text":"..."} for N in 1..$1, of varied lengths.
text_records() {
    awk -v n="$1" 'BEGIN {
        split("a photo of a cat|the quick brown fox|caf\\u00e9 au lait|\\\"quoted\\\" words|tab\\there|x", w, "|")
        for (i = 1; i <= n; i++) {
            t = w[i % 6 + 1]
            for (k = 0; k < i % 9; k++) t = t " " w[(i + k) % 6 + 1]
            printf "{\"id\":%d,\"text\":\"%s %d\"}\n", i, t, i
        }
    }'
}

@test "text records: embeddings equal embed-text's, in order, with their ids" {
    printf '%s\n' '{"id":1,"text":"a photo of a cat"}' '{"text":"","id":"b"}' \
        '{"id":3,"text":"astronaut"}' > "$BATS_TEST_TMPDIR/in"
    run --separate-stderr "$JCLIP" embed-text -m "$MODEL" --jsonl < "$BATS_TEST_TMPDIR/in"
    [ "$status" -eq 0 ]
    [ -z "$stderr" ]
    [ "${#lines[@]}" -eq 3 ]
    plain=$("$JCLIP" embed-text -m "$MODEL" "a photo of a cat" "" "astronaut")
    same_embeddings "$(echo "$output" | embedding_of)" "$plain"
    [ "$(echo "$output" | jq -c .id | tr '\n' ' ')" = '1 "b" 3 ' ]
    [[ "${lines[1]}" == '{"id":"b","embedding":['* ]]
}

@test "image records: paths and data URIs give embed-image's embeddings" {
    {
        echo "{\"id\":1,\"image\":\"$IMAGES/coffee.png\"}"
        echo "{\"id\":2,\"image\":\"$(data_uri "$IMAGES/chelsea.png" png)\"}"
        echo "{\"id\":3,\"image\":\"$(data_uri "$IMAGES/rocket.jpg" jpeg)\"}"
        echo "{\"id\":4,\"image\":\"$IMAGES/rocket.jpg\"}"
    } > "$BATS_TEST_TMPDIR/in"
    run --separate-stderr "$JCLIP" embed-image -m "$MODEL" --jsonl -b 3 < "$BATS_TEST_TMPDIR/in"
    [ "$status" -eq 0 ]
    [ -z "$stderr" ]
    [ "${#lines[@]}" -eq 4 ]
    plain=$("$JCLIP" embed-image -m "$MODEL" "$IMAGES/coffee.png" "$IMAGES/chelsea.png" \
        "$IMAGES/rocket.jpg" "$IMAGES/rocket.jpg" | sed 's/^{"path":.*,"embedding":\(.*\)}$/\1/')
    same_embeddings "$(echo "$output" | embedding_of)" "$plain"
    [ "$(echo "$output" | jq -c .id | tr '\n' ' ')" = '1 2 3 4 ' ]
}

@test "each bad text record: one error record with its id, and the run goes on" {
    printf '%s\n' \
        '{"id":1,"text":"good"}' \
        'not json' \
        '{"id":2,"text":"unterminated}' \
        '[1,2]' \
        '"a string"' \
        '' \
        '{"text":"no id"}' \
        '{"id":3,"text":"a","lang":"en"}' \
        '{"id":4,"text":"a","image":"b.png"}' \
        '{"id":5}' \
        '{"id":6,"image":"photo.png"}' \
        '{"id":7,"text":42}' \
        '{"id":8,"text":null}' \
        '{"id":9,"text":"a","text":"b"}' \
        '{"id":10,"text":"also good"}' > "$BATS_TEST_TMPDIR/in"
    run --separate-stderr "$JCLIP" embed-text -m "$MODEL" --jsonl < "$BATS_TEST_TMPDIR/in"
    [ "$status" -eq 0 ]
    [ "${#lines[@]}" -eq 15 ]
    [ "${lines[1]}" = '{"id":null,"error":"malformed JSON at column 1: an unexpected '\''n'\''"}' ]
    [ "${lines[2]}" = '{"id":null,"error":"malformed JSON at column 16: a string without its closing quote"}' ]
    [ "${lines[3]}" = '{"id":null,"error":"not a JSON object but an array"}' ]
    [ "${lines[4]}" = '{"id":null,"error":"not a JSON object but a string"}' ]
    [ "${lines[5]}" = '{"id":null,"error":"an empty line, not a JSON object"}' ]
    [ "${lines[6]}" = '{"id":null,"error":"missing \"id\""}' ]
    [ "${lines[7]}" = '{"id":3,"error":"unknown key \"lang\" (a record has \"id\" and \"text\" or \"image\")"}' ]
    [ "${lines[8]}" = '{"id":4,"error":"both \"text\" and \"image\": a record has one of them"}' ]
    [ "${lines[9]}" = '{"id":5,"error":"neither \"text\" nor \"image\""}' ]
    [ "${lines[10]}" = '{"id":6,"error":"an \"image\" record: embed-text takes only \"text\""}' ]
    [ "${lines[11]}" = '{"id":7,"error":"\"text\" is a number, not a string"}' ]
    [ "${lines[12]}" = '{"id":8,"error":"\"text\" is null, not a string"}' ]
    [ "${lines[13]}" = '{"id":9,"error":"duplicate key \"text\""}' ]
    same_embeddings "$(echo "${lines[0]}" | embedding_of)" "$("$JCLIP" embed-text -m "$MODEL" good)"
    same_embeddings "$(echo "${lines[14]}" | embedding_of)" \
        "$("$JCLIP" embed-text -m "$MODEL" "also good")"
    # one warning per bad record on stderr, naming its line
    [ "$(echo "$stderr" | wc -l)" -eq 13 ]
    [ "$(echo "$stderr" | head -n 1)" = "jclip embed-text: warning: stdin line 2: malformed JSON at column 1: an unexpected 'n'" ]
    echo "$stderr" | grep -qx 'jclip embed-text: warning: stdin line 7: missing "id"'
}

@test "each bad image record: one error record with its id, and the run goes on" {
    printf 'not an image\n' > "$BATS_TEST_TMPDIR/notes.png"
    head -c 1000 "$IMAGES/coffee.png" > "$BATS_TEST_TMPDIR/cut.png"
    printf '%s\n' \
        "{\"id\":\"missing\",\"image\":\"$BATS_TEST_TMPDIR/nope.png\"}" \
        "{\"id\":\"notes\",\"image\":\"$BATS_TEST_TMPDIR/notes.png\"}" \
        "{\"id\":\"cut\",\"image\":\"$BATS_TEST_TMPDIR/cut.png\"}" \
        "{\"id\":\"dir\",\"image\":\"$BATS_TEST_TMPDIR\"}" \
        '{"id":"b64","image":"data:image/png;base64,iVBORw0KGgo"}' \
        '{"id":"b64char","image":"data:image/png;base64,iVBO*w0KGgo="}' \
        '{"id":"type","image":"data:text/plain;base64,aGVsbG8="}' \
        '{"id":"garbage","image":"data:image/png;base64,aGVsbG8="}' \
        '{"id":"empty","image":""}' \
        '{"id":"text","text":"a cat"}' \
        '{"id":"num","image":7}' \
        "{\"id\":\"good\",\"image\":\"$IMAGES/coffee.png\"}" > "$BATS_TEST_TMPDIR/in"
    run --separate-stderr "$JCLIP" embed-image -m "$MODEL" --jsonl < "$BATS_TEST_TMPDIR/in"
    [ "$status" -eq 0 ]
    [ "${#lines[@]}" -eq 12 ]
    t="$BATS_TEST_TMPDIR"
    [ "${lines[0]}" = "{\"id\":\"missing\",\"error\":\"cannot open '$t/nope.png': No such file or directory\"}" ]
    [ "${lines[1]}" = "{\"id\":\"notes\",\"error\":\"cannot decode '$t/notes.png': not an image, or an unknown format\"}" ]
    [[ "${lines[2]}" == "{\"id\":\"cut\",\"error\":\"cannot decode '$t/cut.png': "* ]]
    [ "${lines[3]}" = "{\"id\":\"dir\",\"error\":\"cannot read '$t': is a directory\"}" ]
    [ "${lines[4]}" = '{"id":"b64","error":"\"image\" data URI: invalid base64: 11 characters, not a multiple of 4 (padding is required)"}' ]
    [ "${lines[5]}" = '{"id":"b64char","error":"\"image\" data URI: invalid base64: '\''*'\'' at offset 4 is not in the alphabet"}' ]
    [ "${lines[6]}" = '{"id":"type","error":"\"image\" is a data URI of type '\''text/plain'\'', not image/*"}' ]
    [ "${lines[7]}" = '{"id":"garbage","error":"cannot decode '\''data:image/png;base64,'\'': not an image, or an unknown format"}' ]
    [ "${lines[8]}" = '{"id":"empty","error":"\"image\" is empty: a path or a data URI expected"}' ]
    [ "${lines[9]}" = '{"id":"text","error":"a \"text\" record: embed-image takes only \"image\""}' ]
    [ "${lines[10]}" = '{"id":"num","error":"\"image\" is a number, not a string"}' ]
    [[ "${lines[11]}" == '{"id":"good","embedding":['* ]]
    [ "$(echo "$stderr" | wc -l)" -eq 11 ]
}

@test "ids of every JSON type come back as written, compacted" {
    printf '%s\n' \
        '{"id":42,"text":"x"}' \
        '{"id":-1.50e+3,"text":"x"}' \
        '{"id":12345678901234567890123,"text":"x"}' \
        '{"id":"tab\t quote\" slash\\ caf\u00e9 \ud83d\ude00","text":"x"}' \
        '{"id":"caf'$'\xc3\xa9''","text":"x"}' \
        '{ "id" : { "doc" : [ 1 , "a b" , null ] , "n" : true } , "text" : "x" }' \
        '{"id":[],"text":"x"}' \
        '{"id":false,"text":"x"}' \
        '{"id":null,"text":"x"}' \
        '{"id":{"k":"v"},"text":5}' > "$BATS_TEST_TMPDIR/in"
    run --separate-stderr "$JCLIP" embed-text -m "$MODEL" --jsonl < "$BATS_TEST_TMPDIR/in"
    [ "$status" -eq 0 ]
    [[ "${lines[0]}" == '{"id":42,"embedding":'* ]]
    [[ "${lines[1]}" == '{"id":-1.50e+3,"embedding":'* ]]
    [[ "${lines[2]}" == '{"id":12345678901234567890123,"embedding":'* ]]
    [[ "${lines[3]}" == '{"id":"tab\t quote\" slash\\ caf\u00e9 \ud83d\ude00","embedding":'* ]]
    [[ "${lines[4]}" == '{"id":"caf'$'\xc3\xa9''","embedding":'* ]]
    [[ "${lines[5]}" == '{"id":{"doc":[1,"a b",null],"n":true},"embedding":'* ]]
    [[ "${lines[6]}" == '{"id":[],"embedding":'* ]]
    [[ "${lines[7]}" == '{"id":false,"embedding":'* ]]
    [[ "${lines[8]}" == '{"id":null,"embedding":'* ]]
    [ "${lines[9]}" = '{"id":{"k":"v"},"error":"\"text\" is a number, not a string"}' ]
    # and every line is JSON
    echo "$output" | jq -e . > /dev/null
}

@test "--encoding: lengths, and consistency with the float embedding" {
    text_records 20 > "$BATS_TEST_TMPDIR/in"
    for enc in float base64 binary ubinary; do
        "$JCLIP" embed-text -m "$MODEL" --jsonl --encoding "$enc" < "$BATS_TEST_TMPDIR/in" \
            > "$BATS_TEST_TMPDIR/$enc"
    done
    # the default is float
    "$JCLIP" embed-text -m "$MODEL" --jsonl < "$BATS_TEST_TMPDIR/in" | cmp - "$BATS_TEST_TMPDIR/float"
    python3 - "$BATS_TEST_TMPDIR" <<'EOF'
import base64, json, struct, sys
d = sys.argv[1]
rows = {e: [json.loads(l) for l in open(f"{d}/{e}")] for e in ("float", "base64", "binary", "ubinary")}
assert all(len(r) == 20 for r in rows.values())
for f, b, s, u in zip(*(rows[e] for e in ("float", "base64", "binary", "ubinary"))):
    assert f["id"] == b["id"] == s["id"] == u["id"]
    v = f["embedding"]
    assert len(v) == 128
    # base64: the little-endian float32 bytes of the float output (which %.9g round-trips)
    raw = base64.b64decode(b["embedding"], validate=True)
    assert len(b["embedding"]) == 684 and len(raw) == 512
    assert raw == struct.pack("<128f", *v)
    # ubinary: the signs (> 0) packed MSB first, 16 bytes of 0..255
    want = [sum((v[8 * i + j] > 0) << (7 - j) for j in range(8)) for i in range(16)]
    assert u["embedding"] == want, (u["embedding"], want)
    # binary: the same bytes minus 128
    assert s["embedding"] == [x - 128 for x in want]
    assert all(-128 <= x <= 127 for x in s["embedding"])
EOF
}

@test "--encoding also applies to the plain jsonl output" {
    b64=$("$JCLIP" embed-text -m "$MODEL" --encoding base64 "a cat" "a dog")
    rec=$(printf '%s\n' '{"id":1,"text":"a cat"}' '{"id":2,"text":"a dog"}' |
        "$JCLIP" embed-text -m "$MODEL" --jsonl --encoding base64 | embedding_of)
    [ "$b64" = "$rec" ]
    [[ "$b64" == '"'*'"'* ]]
    run --separate-stderr "$JCLIP" embed-image -m "$MODEL" --encoding ubinary "$IMAGES/coffee.png"
    [ "$status" -eq 0 ]
    [ "$(echo "$output" | jq -c '.embedding | length')" -eq 16 ]
    rec=$(echo "{\"id\":1,\"image\":\"$IMAGES/coffee.png\"}" |
        "$JCLIP" embed-image -m "$MODEL" --jsonl --encoding ubinary | embedding_of)
    [ "$(echo "$output" | jq -c .embedding)" = "$rec" ]
}

@test "usage errors" {
    run --separate-stderr "$JCLIP" embed-text -m "$MODEL" --encoding int4 x
    [ "$status" -eq 2 ]
    [ "$stderr" = "jclip embed-text: --encoding: 'int4' is not float, base64, binary or ubinary" ]
    run --separate-stderr "$JCLIP" embed-text -m "$MODEL" --encoding base64 -f tsv x
    [ "$status" -eq 2 ]
    [[ "$stderr" == "jclip embed-text: --encoding applies to jsonl output and --jsonl records"* ]]
    run --separate-stderr "$JCLIP" embed-text -m "$MODEL" --jsonl x
    [ "$status" -eq 2 ]
    [[ "$stderr" == "jclip embed-text: --jsonl reads records from stdin and writes them to stdout; it takes no TEXT, --file, --output or --format"* ]]
    run --separate-stderr "$JCLIP" embed-text -m "$MODEL" --jsonl -o x.npy
    [ "$status" -eq 2 ]
    run --separate-stderr "$JCLIP" embed-image -m "$MODEL" --jsonl "$IMAGES/coffee.png"
    [ "$status" -eq 2 ]
    run --separate-stderr "$JCLIP" embed-image -m "$MODEL" --jsonl -f tsv
    [ "$status" -eq 2 ]
    run --separate-stderr "$JCLIP" embed-image -m "$MODEL" --encoding binary -o x.npy "$IMAGES/coffee.png"
    [ "$status" -eq 2 ]
    run --separate-stderr "$JCLIP" classify -m "$MODEL" -l cat --jsonl -f json
    [ "$status" -eq 2 ]
    run --separate-stderr "$JCLIP" classify -m "$MODEL" -l cat --jsonl "$IMAGES/coffee.png"
    [ "$status" -eq 2 ]
    [ -z "$output" ]
}

@test "stdout holds only records, stderr the messages; empty input gives nothing" {
    { text_records 5; echo 'bad'; echo '{"id":6,"text":"'"$(printf 'caf\xe9')"'"}'; } > "$BATS_TEST_TMPDIR/in"
    run --separate-stderr "$JCLIP" embed-text -m "$MODEL" --jsonl < "$BATS_TEST_TMPDIR/in"
    [ "$status" -eq 0 ]
    [ "${#lines[@]}" -eq 7 ]
    echo "$output" | jq -e 'type == "object" and has("id") and ((has("embedding") or has("error")) and (keys | length) == 2)' > /dev/null
    [ "$stderr" = "jclip embed-text: warning: stdin line 6: malformed JSON at column 1: an unexpected 'b'
jclip embed-text: warning: stdin line 7: invalid UTF-8 (1 sequence) replaced by U+FFFD" ]
    # the repaired text is embedded as embed-text embeds it
    same_embeddings "$(echo "${lines[6]}" | embedding_of)" \
        "$("$JCLIP" embed-text -m "$MODEL" "$(printf 'caf\xe9')" 2> /dev/null)"
    run --separate-stderr "$JCLIP" embed-text -m "$MODEL" --jsonl < /dev/null
    [ "$status" -eq 0 ]
    [ -z "$output" ]
    [ -z "$stderr" ]
}

@test "CRLF lines and a missing last newline are fine" {
    run --separate-stderr bash -c "printf '{\"id\":1,\"text\":\"a\"}\r\n{\"id\":2,\"text\":\"b\"}' | '$JCLIP' embed-text -m '$MODEL' --jsonl"
    [ "$status" -eq 0 ]
    [ -z "$stderr" ]
    [ "$(echo "$output" | jq -c .id | tr '\n' ' ')" = '1 2 ' ]
}

@test "a line over 64 MiB is a bad record; the next one is embedded" {
    { printf '{"id":1,"text":"'; head -c $((65 << 20)) /dev/zero | tr '\0' a; printf '"}\n'
      echo '{"id":2,"text":"after"}'; } > "$BATS_TEST_TMPDIR/in"
    # through a pipe, as records arrive: it is read a little at a time
    run --separate-stderr bash -c "cat '$BATS_TEST_TMPDIR/in' | '$JCLIP' embed-text -m '$MODEL' --jsonl"
    [ "$status" -eq 0 ]
    [ "${#lines[@]}" -eq 2 ]
    [ "${lines[0]}" = '{"id":null,"error":"a line longer than the limit of 67108864 bytes"}' ]
    [ "$stderr" = "jclip embed-text: warning: stdin line 1: a line longer than the limit of 67108864 bytes" ]
    [[ "${lines[1]}" == '{"id":2,"embedding":'* ]]
}

@test "fatal failures exit 1: no model, a failed write" {
    run --separate-stderr bash -c "echo '{\"id\":1,\"text\":\"a\"}' | '$JCLIP' embed-text -m '$BATS_TEST_TMPDIR/none' --jsonl"
    [ "$status" -eq 1 ]
    [ -z "$output" ]
    run --separate-stderr bash -c "echo '{\"id\":1,\"text\":\"a\"}' | '$JCLIP' embed-text -m '$MODEL' --jsonl > /dev/full"
    [ "$status" -eq 1 ]
    [[ "$stderr" == "jclip embed-text: cannot write to stdout"* ]]
}

@test "records stream: each batch is out while stdin is still open" {
    fifo="$BATS_TEST_TMPDIR/in"
    mkfifo "$fifo"
    "$JCLIP" embed-text -m "$MODEL" --jsonl < "$fifo" > "$BATS_TEST_TMPDIR/out" 2>&1 &
    pid=$!
    exec 7> "$fifo"
    echo '{"id":1,"text":"first"}' >&7
    for i in $(seq 600); do
        [ -s "$BATS_TEST_TMPDIR/out" ] && break
        sleep 0.1
    done
    [ "$(wc -l < "$BATS_TEST_TMPDIR/out")" -eq 1 ]
    # a bad record behind nothing pending is answered at once too
    echo 'oops' >&7
    for i in $(seq 600); do
        [ "$(grep -c . "$BATS_TEST_TMPDIR/out")" -ge 3 ] && break
        sleep 0.1
    done
    grep -q '^{"id":null,"error":' "$BATS_TEST_TMPDIR/out"
    echo '{"id":2,"text":"second"}' >&7
    exec 7>&-
    wait "$pid"
    [ "$(grep -c '^{"id":' "$BATS_TEST_TMPDIR/out")" -eq 3 ]
}

@test "image records stream too" {
    fifo="$BATS_TEST_TMPDIR/in"
    mkfifo "$fifo"
    "$JCLIP" embed-image -m "$MODEL" --jsonl < "$fifo" > "$BATS_TEST_TMPDIR/out" 2> /dev/null &
    pid=$!
    exec 7> "$fifo"
    echo "{\"id\":1,\"image\":\"$IMAGES/coffee.png\"}" >&7
    for i in $(seq 600); do
        [ -s "$BATS_TEST_TMPDIR/out" ] && break
        sleep 0.1
    done
    [ "$(wc -l < "$BATS_TEST_TMPDIR/out")" -eq 1 ]
    exec 7>&-
    wait "$pid"
}

@test "text records: the same bytes whatever the batch size, threads or process split" {
    text_records 1000 > "$BATS_TEST_TMPDIR/in"
    "$JCLIP" embed-text -m "$MODEL" --jsonl < "$BATS_TEST_TMPDIR/in" > "$BATS_TEST_TMPDIR/one"
    [ "$(wc -l < "$BATS_TEST_TMPDIR/one")" -eq 1000 ]
    [ "$(grep -c '"error"' "$BATS_TEST_TMPDIR/one")" -eq 0 ]
    "$JCLIP" embed-text -m "$MODEL" --jsonl -b 7 -t 1 < "$BATS_TEST_TMPDIR/in" \
        > "$BATS_TEST_TMPDIR/two"
    same_records "$BATS_TEST_TMPDIR/two" "$BATS_TEST_TMPDIR/one"
    parallel --will-cite --pipe -k -N 37 "$JCLIP" embed-text --jsonl -m "$MODEL" \
        < "$BATS_TEST_TMPDIR/in" > "$BATS_TEST_TMPDIR/split"
    same_records "$BATS_TEST_TMPDIR/split" "$BATS_TEST_TMPDIR/one"
    # and the same bytes with base64
    "$JCLIP" embed-text -m "$MODEL" --jsonl --encoding base64 < "$BATS_TEST_TMPDIR/in" \
        > "$BATS_TEST_TMPDIR/one64"
    parallel --will-cite --pipe -k -N 37 "$JCLIP" embed-text --jsonl --encoding base64 -m "$MODEL" \
        < "$BATS_TEST_TMPDIR/in" | cmp - "$BATS_TEST_TMPDIR/one64"
}

@test "image records: the same bytes whatever the batch size, threads or process split" {
    for i in $(seq 6); do
        echo "{\"id\":\"p$i\",\"image\":\"$IMAGES/coffee.png\"}"
        echo "{\"id\":\"d$i\",\"image\":\"$(data_uri "$IMAGES/chelsea.png" png)\"}"
        echo "{\"id\":\"j$i\",\"image\":\"$IMAGES/rocket.jpg\"}"
        echo "{\"id\":\"s$i\",\"image\":\"$(data_uri "$IMAGES/synth_227x500.png" png)\"}"
        echo "{\"id\":\"x$i\",\"image\":\"$IMAGES/no-such-$i.png\"}"
        echo "{\"id\":\"q$i\",\"image\":\"$(data_uri "$IMAGES/rocket.jpg" jpeg)\"}"
    done > "$BATS_TEST_TMPDIR/in"
    "$JCLIP" embed-image -m "$MODEL" --jsonl < "$BATS_TEST_TMPDIR/in" > "$BATS_TEST_TMPDIR/one" 2> /dev/null
    [ "$(wc -l < "$BATS_TEST_TMPDIR/one")" -eq 36 ]
    [ "$(grep -c '"error"' "$BATS_TEST_TMPDIR/one")" -eq 6 ]
    # a data URI and the path of the same file give the same embedding
    same_embeddings "$(sed -n 3p "$BATS_TEST_TMPDIR/one" | embedding_of)" \
        "$(sed -n 6p "$BATS_TEST_TMPDIR/one" | embedding_of)"
    "$JCLIP" embed-image -m "$MODEL" --jsonl -b 5 -t 1 < "$BATS_TEST_TMPDIR/in" 2> /dev/null \
        > "$BATS_TEST_TMPDIR/two"
    same_records "$BATS_TEST_TMPDIR/one" "$BATS_TEST_TMPDIR/two"
    parallel --will-cite --pipe -k -N 7 "$JCLIP" embed-image --jsonl -m "$MODEL" \
        < "$BATS_TEST_TMPDIR/in" 2> /dev/null > "$BATS_TEST_TMPDIR/split"
    same_records "$BATS_TEST_TMPDIR/split" "$BATS_TEST_TMPDIR/one"
}

@test "classify --jsonl: the labels of classify -f json, per record" {
    labels="astronaut,cup of coffee,cat,rocket,dog"
    printf '%s\n' "{\"id\":1,\"image\":\"$IMAGES/coffee.png\"}" \
        "{\"id\":2,\"image\":\"$(data_uri "$IMAGES/chelsea.png" png)\"}" \
        '{"id":3,"text":"a cat"}' \
        "{\"id\":4,\"image\":\"$IMAGES/astronaut.png\"}" > "$BATS_TEST_TMPDIR/in"
    run --separate-stderr "$JCLIP" classify -m "$MODEL" -l "$labels" -k 3 --jsonl -b 2 < "$BATS_TEST_TMPDIR/in"
    [ "$status" -eq 0 ]
    [ "${#lines[@]}" -eq 4 ]
    plain=$("$JCLIP" classify -m "$MODEL" -l "$labels" -k 3 -f json "$IMAGES/coffee.png" \
        "$IMAGES/chelsea.png" "$IMAGES/astronaut.png" | sed 's/^{"input":"[^"]*",/{/')
    got=$(printf '%s\n' "${lines[0]}" "${lines[1]}" "${lines[3]}" | sed 's/^{"id":[0-9]*,/{/')
    same_labels "$got" "$plain"
    [ "${lines[2]}" = '{"id":3,"error":"a \"text\" record: classify takes \"image\" (use --text for texts)"}' ]
    [ "$(echo "${lines[0]}" | jq '.labels | length')" -eq 3 ]
}

@test "classify --text --jsonl classifies text records" {
    printf '%s\n' '{"id":"t1","text":"my card was charged twice"}' '{"id":"t2","image":"x.png"}' \
        '{"id":"t3","text":"cannot log in"}' > "$BATS_TEST_TMPDIR/in"
    run --separate-stderr "$JCLIP" classify -m "$MODEL" --text -l billing,login,shipping --jsonl < "$BATS_TEST_TMPDIR/in"
    [ "$status" -eq 0 ]
    [ "${#lines[@]}" -eq 3 ]
    plain=$("$JCLIP" classify -m "$MODEL" --text -l billing,login,shipping -f json \
        "my card was charged twice" "cannot log in" | sed 's/^{"input":"[^"]*",/{/')
    got=$(printf '%s\n' "${lines[0]}" "${lines[2]}" | sed 's/^{"id":"t[0-9]",/{/')
    # the same printed scores: batching changes no bit
    [ "$got" = "$plain" ]
    [ "$(echo "$got" | jq -c '[.labels[].label]')" = "$(echo "$plain" | jq -c '[.labels[].label]')" ]
    [ "${lines[1]}" = '{"id":"t2","error":"an \"image\" record: classify --text takes only \"text\""}' ]
    # determinism across processes holds for classify too
    text_records 60 > "$BATS_TEST_TMPDIR/many"
    "$JCLIP" classify -m "$MODEL" --text -l billing,login,shipping -k 2 --jsonl < "$BATS_TEST_TMPDIR/many" > "$BATS_TEST_TMPDIR/one"
    parallel --will-cite --pipe -k -N 11 "$JCLIP" classify -m "$MODEL" --text -l billing,login,shipping -k 2 --jsonl \
        < "$BATS_TEST_TMPDIR/many" | cmp - "$BATS_TEST_TMPDIR/one"
}

# ---- the contract that engines (parallel, Spark, Dask) rely on -----------------------------

@test "contract: an empty partition exits 0 with no output, for every record command" {
    for cmd in "embed-text" "embed-image" "classify -l a,b" "classify --text -l a,b"; do
        run --separate-stderr "$JCLIP" $cmd -m "$MODEL" --jsonl < /dev/null
        [ "$status" -eq 0 ] || { echo "$cmd: exit $status: $stderr"; return 1; }
        [ -z "$output" ]
        [ -z "$stderr" ]
    done
}

@test "contract: one record out per record in, whatever the mix of good and bad" {
    { text_records 30; echo '{"id":31}'; echo 'not json'; echo '{"id":33,"text":""}'
      echo '{"id":34,"image":"x.png"}'; echo '{"id":35,"text":"last"}'; } > "$BATS_TEST_TMPDIR/in"
    run --separate-stderr "$JCLIP" embed-text -m "$MODEL" --jsonl < "$BATS_TEST_TMPDIR/in"
    [ "$status" -eq 0 ]
    [ "${#lines[@]}" -eq 35 ]
    [ "$(echo "$output" | jq -c '.id' | tr '\n' ' ')" = "$(seq 1 30 | tr '\n' ' ')31 null 33 34 35 " ]
    [ "$(echo "$output" | jq -c 'select(has("error")) | .id' | tr '\n' ' ')" = "31 null 34 " ]
}

@test "contract: the output depends on no environment but JCLIP_MODEL and JCLIP_THREADS" {
    text_records 20 > "$BATS_TEST_TMPDIR/in"
    want=$("$JCLIP" embed-text -m "$MODEL" --jsonl < "$BATS_TEST_TMPDIR/in")
    # PySpark and ssh run commands with next to no environment: no PATH, HOME or locale
    # (under make valgrind, only what its wrapper needs to find valgrind and the binary)
    local vg=()
    [ -z "${JCLIP_REAL:-}" ] || vg=(JCLIP_REAL="$JCLIP_REAL" VG_LOG_DIR="$VG_LOG_DIR" PATH="$PATH")
    got=$(env -i "${vg[@]}" JCLIP_MODEL="$MODEL" "$JCLIP" embed-text --jsonl < "$BATS_TEST_TMPDIR/in")
    [ "$got" = "$want" ]
    got=$(env -i "${vg[@]}" JCLIP_MODEL="$MODEL" JCLIP_THREADS=1 LANG=tr_TR.UTF-8 LC_ALL=de_DE.UTF-8 \
        HOME=/nonexistent "$JCLIP" embed-text --jsonl < "$BATS_TEST_TMPDIR/in")
    [ "$got" = "$want" ]
}

@test "contract: SIGTERM mid-partition leaves no partial output file" {
    out="$BATS_TEST_TMPDIR/part.npy"
    fifo="$BATS_TEST_TMPDIR/in"
    mkfifo "$fifo"
    "$JCLIP" embed-image -m "$MODEL" -o "$out" - < "$fifo" 2> /dev/null &
    pid=$!
    exec 7> "$fifo"
    echo "$IMAGES/coffee.png" >&7
    found=
    for i in $(seq 200); do
        ls "$BATS_TEST_TMPDIR" | grep -q 'part.npy.tmp' && { found=1; break; }
        sleep 0.05
    done
    [ -n "$found" ] # the output is being written: the run is mid-partition
    kill -TERM "$pid"
    st=0
    wait "$pid" || st=$?
    exec 7>&-
    [ "$st" -eq 143 ]
    [ ! -e "$out" ]
    assert_no_tmp_files "$BATS_TEST_TMPDIR"
}

@test "contract: the thread count defaults to the CPUs the process may run on" {
    [ "$("$JCLIP" info -m "$MODEL" --json | jq .threads)" = "$(nproc)" ]
    [ "$(taskset -c 0 "$JCLIP" info -m "$MODEL" --json | jq .threads)" = 1 ]
    [ "$(JCLIP_THREADS=3 taskset -c 0 "$JCLIP" info -m "$MODEL" --json | jq .threads)" = 3 ]
}
