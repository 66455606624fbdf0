#!/usr/bin/env bats
# The README's first screen, run as the README spells it, offline: the last step of the set-up
# line and the commands used most with JCLIP_MODEL set to the tiny model, and `make demo`, so
# that the README cannot drift from what works. The random weights make the labels
# meaningless: the tests check the shape of the output, not which label wins.

load helper

README="$PWD/README.md"
PHOTOS=(tests/golden/images/chelsea.png tests/golden/images/rocket.jpg
    tests/golden/images/coffee.png tests/golden/images/astronaut.png)

# The lines of the README section titled $1.
section() {
    awk -v t="## $1" '$0 == t { on = 1; next } on && /^## / { exit } on' "$README"
}

# The one line of the set-up whose command starts with $1, without its indent.
setup_line() {
    local found
    found=$(section Set-up | awk -v p="    $1" 'index($0, p) == 1 { print substr($0, 5) }')
    [ -n "$found" ] && [ "$(echo "$found" | wc -l)" -eq 1 ] ||
        { echo "README: not one set-up line that starts with '$1'"; return 1; }
    echo "$found"
}

# Runs the shell command $1 as from the top of the tree, with ./jclip being $JCLIP.
in_tree() {
    local dir="$BATS_TEST_TMPDIR/tree"
    mkdir -p "$dir"
    ln -sfn "$JCLIP" "$dir/jclip"
    ln -sfn "$PWD/tests" "$dir/tests"
    (cd "$dir" && JCLIP_MODEL="$MODEL" bash -c "$1")
}

# Whether $1 is one of the labels in the comma-separated list $2.
is_label() {
    local l
    IFS=, read -ra l <<< "$2"
    printf '%s\n' "${l[@]}" | grep -qxF -- "$1"
}

# The set-up line's last step and its list of labels (in $step and $labels).
last_step() {
    local line
    line=$(setup_line 'scripts/install-deps && make && ./jclip download && ') || return 1
    step=${line##*&& }
    [[ "$step" == "./jclip classify "* ]] || { echo "last step: $step"; return 1; }
    [[ "$step" =~ \ -l\ \"([^\"]+)\"\  ]] || { echo "no -l \"...\" in: $step"; return 1; }
    labels=${BASH_REMATCH[1]}
}

@test "the set-up line ends by classifying the photos: a line each, its best label" {
    last_step
    run --separate-stderr in_tree "$step"
    [ "$status" -eq 0 ]
    [ -z "$stderr" ]
    [ "${#lines[@]}" -eq "${#PHOTOS[@]}" ]
    for i in "${!PHOTOS[@]}"; do
        IFS=$'\t' read -r photo label p rest <<< "${lines[$i]}"
        [ "$photo" = "${PHOTOS[$i]}" ]
        is_label "$label" "$labels" || { echo "not a label: '$label'"; return 1; }
        [ "$(awk -v p="$p" 'BEGIN { print (p + 0 == p && p > 0 && p <= 1) }')" -eq 1 ]
        [ -z "$rest" ]
    done
}

@test "the README shows what the set-up line prints: the photos in order, each a label" {
    last_step
    line=$(setup_line 'scripts/install-deps && make && ./jclip download && ')
    # the first indented block after the set-up line
    shown=$(section Set-up | awk -v l="    $line" '
        !state { state = ($0 == l); next }
        state == 1 && /^    / { state = 2 }
        state == 2 { if (!/^    /) exit; print substr($0, 5) }')
    mapfile -t rows <<< "$shown"
    [ "${#rows[@]}" -eq "${#PHOTOS[@]}" ]
    for i in "${!PHOTOS[@]}"; do
        read -r photo label <<< "${rows[$i]}"
        [ "$photo" = "${PHOTOS[$i]}" ]
        is_label "$label" "$labels" || { echo "not a label: '$label'"; return 1; }
    done
}

@test "make demo runs the same classification and a search, and says the weights are random" {
    last_step
    want=$(in_tree "$step" | cut -f1,2)
    line=$(setup_line 'scripts/install-deps && make && make demo')
    [ "${line##*&& }" = "make demo" ]
    # as typed in a shell, not as a sub-make of make test
    run --separate-stderr env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL bash -c "${line##*&& }"
    [ "$status" -eq 0 ]
    [ -z "$stderr" ]
    # the classification: the README's photos in its order, with the same best labels
    got=$(echo "$output" | awk -F'\t' 'NF == 3 && $1 ~ /^tests\/golden\/images\//' | cut -f1,2)
    [ "$got" = "$want" ]
    # the search: one query, its best photo and a cosine
    search=$(echo "$output" | awk -F'\t' 'NF == 3 && $1 !~ /^tests\// && $2 ~ /^tests\//')
    [ "$(echo "$search" | wc -l)" -eq 1 ]
    IFS=$'\t' read -r query photo cos <<< "$search"
    printf '%s\n' "${PHOTOS[@]}" | grep -qxF -- "$photo"
    [ "$(awk -v c="$cos" 'BEGIN { print (c + 0 == c && c >= -1 && c <= 1) }')" -eq 1 ]
    # last, one line: the labels mean nothing, and how to get the real model
    [ "$(echo "$output" | grep -c 'random')" -eq 1 ]
    [[ "${lines[-1]}" == *random*"mean nothing"*"./jclip download"* ]]
}

@test "the commands used most, on the first screen, run as written" {
    mapfile -t cmds < <(section "Everyday use" | sed -n 's/^    \(jclip .*\)/\1/p')
    [[ "$(printf '%s\n' "${cmds[@]}" | cut -d' ' -f2 | tr '\n' ' ')" == *classify*embed-image*similarity*serve* ]]
    mkdir -p "$BATS_TEST_TMPDIR/bin" "$BATS_TEST_TMPDIR/home/Pictures" "$BATS_TEST_TMPDIR/work"
    ln -s "$JCLIP" "$BATS_TEST_TMPDIR/bin/jclip"
    cp "${PHOTOS[@]}" "$BATS_TEST_TMPDIR/home/Pictures/"
    for c in "${cmds[@]}"; do
        # a server runs until stopped: its options are checked, serve.bats runs it
        [[ "$c" != "jclip serve "* ]] || c="$c --help"
        run --separate-stderr bash -c 'cd "$1" && HOME="$2" PATH="$3:$PATH" JCLIP_MODEL="$4" bash -c "$5"' \
            - "$BATS_TEST_TMPDIR/work" "$BATS_TEST_TMPDIR/home" "$BATS_TEST_TMPDIR/bin" "$MODEL" "$c"
        [ "$status" -eq 0 ] || { echo "$c: exit $status: $stderr"; return 1; }
        [ -z "$stderr" ]
        case "$c" in
        "jclip classify "* | "jclip similarity "*) [ "${#lines[@]}" -eq "${#PHOTOS[@]}" ] ;;
        esac
    done
}
