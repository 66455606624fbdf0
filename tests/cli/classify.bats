#!/usr/bin/env bats
# jclip classify

load helper

IMAGES="$GOLDEN/images"
LABELS="astronaut,cup of coffee,cat,rocket,dog"

# Largest differences of probabilities and cosines from the golden classify.json of $1.
golden_diff() {
    jq -n --slurpfile got "$2" --slurpfile ref "$GOLDEN/$1/classify.json" '
        $ref[0] as $r
        | [range(0; 3) as $i | range(0; 5) as $j
           | ($got[$i].labels[] | select(.label == $r.labels[$j])) as $g
           | [($g.probability - $r.probs[$i][$j] | fabs), ($g.cosine - $r.cos[$i][$j] | fabs)]]
        | "\(map(.[0]) | max) \(map(.[1]) | max)"' -r
}

@test "probabilities and cosines match the golden zero-shot check" {
    for cfg in tiny tiny12; do
        "$JCLIP" classify -m "$PWD/tests/models/$cfg" -l "$LABELS" -k 5 -f json \
            "$IMAGES/astronaut.png" "$IMAGES/coffee.png" "$IMAGES/chelsea.png" > "$BATS_TEST_TMPDIR/got"
        read -r dp dc < <(golden_diff "$cfg" "$BATS_TEST_TMPDIR/got")
        echo "$cfg: probs $dp cos $dc"
        [ "$(echo "$dp $dc" | awk '{print ($1 <= 5e-3 && $2 <= 1e-4)}')" -eq 1 ]
    done
}

@test "tsv: K rows per input, best first, probabilities summing to 1 over all labels" {
    run --separate-stderr "$JCLIP" classify -m "$MODEL" -l "$LABELS" -k 5 "$IMAGES/coffee.png"
    [ "$status" -eq 0 ]
    [ "${#lines[@]}" -eq 5 ]
    [ "$(echo "$output" | cut -f1 | sort -u)" = "$IMAGES/coffee.png" ]
    [ "$(echo "$output" | cut -f3 | sort -gr)" = "$(echo "$output" | cut -f3)" ]
    [ "$(echo "$output" | awk -F'\t' '{s += $3} END {print (s > 0.9999 && s < 1.0001)}')" -eq 1 ]
    run "$JCLIP" classify -m "$MODEL" -l "$LABELS" "$IMAGES/coffee.png"
    [ "${#lines[@]}" -eq 1 ]
    [ "$(echo "$output" | cut -f2)" = "cup of coffee" ]
}

@test "--labels-file skips blank lines; -l is repeatable" {
    printf 'astronaut\n\ncup of coffee\n   \ncat\nrocket\ndog\n' > "$BATS_TEST_TMPDIR/labels"
    a=$("$JCLIP" classify -m "$MODEL" --labels-file "$BATS_TEST_TMPDIR/labels" -k 5 "$IMAGES/coffee.png")
    b=$("$JCLIP" classify -m "$MODEL" -l "astronaut, cup of coffee" -l cat,rocket,dog -k 5 "$IMAGES/coffee.png")
    c=$("$JCLIP" classify -m "$MODEL" -l "$LABELS" -k 5 "$IMAGES/coffee.png")
    [ "$a" = "$c" ]
    [ "$b" = "$c" ]
}

@test "several templates are ensembled; one template equals its default" {
    a=$("$JCLIP" classify -m "$MODEL" -l "$LABELS" -k 5 --template 'a photo of a {}.' "$IMAGES/coffee.png")
    [ "$a" = "$("$JCLIP" classify -m "$MODEL" -l "$LABELS" -k 5 "$IMAGES/coffee.png")" ]
    b=$("$JCLIP" classify -m "$MODEL" -l "$LABELS" -k 5 --template 'a photo of a {}.' --template 'a drawing of a {}' "$IMAGES/coffee.png")
    [ "$a" != "$b" ]
    [ "$(echo "$b" | wc -l)" -eq 5 ]
}

@test "--text classifies texts" {
    run --separate-stderr "$JCLIP" classify -m "$MODEL" --text -l "$LABELS" -f json "a photo of a cat" "espresso"
    [ "$status" -eq 0 ]
    [ "${#lines[@]}" -eq 2 ]
    [ "$(echo "${lines[0]}" | jq -r .input)" = "a photo of a cat" ]
    run --separate-stderr bash -c "printf 'one\ntwo\n' | '$JCLIP' classify -m '$MODEL' --text -l '$LABELS'"
    [ "$status" -eq 0 ]
    [ "$(echo "$output" | cut -f1)" = "$(printf 'one\ntwo')" ]
}

@test "directories, stdin paths and --keep-going as in embed-image" {
    printf '%s\n' "$IMAGES/coffee.png" "$IMAGES/chelsea.png" > "$BATS_TEST_TMPDIR/paths"
    run --separate-stderr bash -c "'$JCLIP' classify -m '$MODEL' -l '$LABELS' < '$BATS_TEST_TMPDIR/paths'"
    [ "$status" -eq 0 ]
    [ "${#lines[@]}" -eq 2 ]
    run --separate-stderr "$JCLIP" classify -m "$MODEL" -l "$LABELS" -r "$IMAGES"
    [ "${#lines[@]}" -eq 15 ]
    echo "not an image" > "$BATS_TEST_TMPDIR/bad.png"
    run --separate-stderr "$JCLIP" classify -m "$MODEL" -l "$LABELS" -f json --keep-going "$BATS_TEST_TMPDIR/bad.png" "$IMAGES/coffee.png"
    [ "$status" -eq 1 ]
    [ "${#lines[@]}" -eq 2 ]
    [ -n "$(echo "${lines[0]}" | jq -r .error)" ]
    [ "$(echo "${lines[1]}" | jq -r '.labels[0].label')" = "cup of coffee" ]
    [ "${stderr_lines[1]}" = "jclip classify: 1 of 2 images skipped" ]
}

@test "bad labels and options" {
    run --separate-stderr "$JCLIP" classify -m "$MODEL" -l "" "$IMAGES/coffee.png"
    [ "$status" -eq 2 ]
    [ "${stderr_lines[0]}" = "jclip classify: the label list is empty" ]
    run --separate-stderr "$JCLIP" classify -m "$MODEL" -l " , ," "$IMAGES/coffee.png"
    [ "$status" -eq 2 ]
    run --separate-stderr "$JCLIP" classify -m "$MODEL" "$IMAGES/coffee.png"
    [ "$status" -eq 2 ]
    [ "${stderr_lines[0]}" = "jclip classify: no labels: give -l or --labels-file" ]
    run --separate-stderr "$JCLIP" classify -m "$MODEL" -l cat --top 0 "$IMAGES/coffee.png"
    [ "$status" -eq 2 ]
    [ "${stderr_lines[0]}" = "jclip classify: --top: '0' is not a whole number from 1 to 1048576" ]
    run --separate-stderr "$JCLIP" classify -m "$MODEL" -l cat --template 'no brace' "$IMAGES/coffee.png"
    [ "$status" -eq 2 ]
    run --separate-stderr "$JCLIP" classify -m "$MODEL" --labels-file /nonexistent "$IMAGES/coffee.png"
    [ "$status" -eq 1 ]
    [ "$stderr" = "jclip classify: cannot open '/nonexistent': No such file or directory" ]
}
