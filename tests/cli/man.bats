#!/usr/bin/env bats
# The manual pages in man/: they render without warnings, have their sections, stay in step
# with the commands and their --help, and their runnable examples run.
#
# A runnable example is a line "$ command" inside EXAMPLES (in an .EX/.EE block), one
# command per line. It runs with bash -o pipefail in a scratch directory, with jclip on PATH,
# JCLIP_MODEL set to the tiny test model, a link "tiny" to it and a folder "photos" of two
# PNG images, and must exit 0. Commands
# that cannot run here (network, other files) are shown without the "$ ".

load helper

MAN="$PWD/man"

# The sections every page has; jclip.1 also has COMMANDS and FILES.
SECTIONS=(NAME SYNOPSIS DESCRIPTION OPTIONS "EXIT STATUS" ENVIRONMENT EXAMPLES "SEE ALSO")

# A page as plain text, as man shows it on an ASCII terminal.
render() {
    groff -man -Tascii -P-cbou "$1"
}

# The lines of section $1 of the rendered text on stdin.
section() {
    awk -v s="$1" '$0 == s { on = 1; next } on && /^[A-Z]/ { exit } on'
}

# The commands `jclip --help` lists.
commands() {
    "$JCLIP" --help | awk '/^commands:/ { on = 1; next } on && /^  [a-z]/ { print $1 }'
}

# The option columns of a --help ("-m, --model DIR", "--raw", ...).
help_specs() {
    sed -n 's/^ \{2,\}\(-[^ ]*\( [^ ][^ ]*\)*\)  .*/\1/p'
}

@test "there is a page for jclip and for each command" {
    [ -f "$MAN/jclip.1" ]
    for c in $(commands); do
        [ "$c" = help ] && continue
        [ -f "$MAN/jclip-$c.1" ] || { echo "no man/jclip-$c.1 for command $c"; return 1; }
    done
}

@test "every page renders without a warning" {
    for f in "$MAN"/*.1; do
        run --separate-stderr groff -man -Tutf8 -ww -z "$f"
        [ "$status" -eq 0 ] || { echo "$f: groff exit $status"; return 1; }
        [ -z "$stderr" ] || { echo "$f: $stderr"; return 1; }
        # ASCII source: groff reads it without preconv; other characters are escapes.
        run grep -n '[^[:print:][:space:]]' "$f"
        [ "$status" -eq 1 ] || { echo "$f: not ASCII: $output"; return 1; }
    done
}

@test "every page has its title and sections" {
    for f in "$MAN"/*.1; do
        name=$(basename "$f" .1)
        head -n 1 "$f" | grep -q "^\.TH ${name^^} 1 " || { echo "$f: .TH is not ${name^^} 1"; return 1; }
        want=("${SECTIONS[@]}")
        [ "$name" = jclip ] && want+=(COMMANDS FILES)
        for s in "${want[@]}"; do
            grep -Eq "^\.SH \"?$s\"?\$" "$f" || { echo "$f: no section $s"; return 1; }
        done
    done
}

@test "jclip(1) lists every command and refers to its page" {
    text=$(render "$MAN/jclip.1")
    cmds=$(echo "$text" | section COMMANDS)
    for c in $(commands); do
        echo "$cmds" | grep -Eq "^       $c( |\$)" || { echo "jclip.1: no COMMANDS entry for $c"; return 1; }
        [ "$c" = help ] && continue
        echo "$text" | grep -q "jclip-$c(1)" || { echo "jclip.1: no reference to jclip-$c(1)"; return 1; }
    done
}

@test "each page documents the options of its --help, and no others" {
    for c in "" $(commands); do
        [ "$c" = help ] && continue
        page="$MAN/jclip${c:+-$c}.1"
        opts=$(render "$page" | section OPTIONS)
        help=$("$JCLIP" ${c:-} --help)
        # Every option of --help has an item in OPTIONS with the same spelling.
        if [ -n "$c" ]; then
            while IFS= read -r spec; do
                found=
                while IFS= read -r line; do
                    [[ "$line" == "       $spec" || "$line" == "       $spec  "* ]] && found=1
                done <<< "$opts"
                [ -n "$found" ] || { echo "$page: OPTIONS has no item '$spec'"; return 1; }
            done < <(echo "$help" | help_specs)
        fi
        # Every long option of --help is in OPTIONS ...
        for o in $(echo "$help" | grep -oE -- '--[a-z][a-z0-9-]*' | sort -u); do
            echo "$opts" | grep -Eq -- "(^|[^a-z-])$o([^a-z-]|\$)" ||
                { echo "$page: $o of --help is not in OPTIONS"; return 1; }
        done
        # ... and every option an OPTIONS item names is in --help.
        for o in $(echo "$opts" | grep -E '^       -' | grep -oE -- '--[a-z][a-z0-9-]*' | sort -u); do
            echo "$help" | grep -Eq -- "(^|[^a-z-])$o([^a-z-]|\$)" ||
                { echo "$page: $o is documented but not in --help"; return 1; }
        done
    done
}

@test "a short letter means one option in every command that has it" {
    # The --help of every command is printed from one table of options (cmd/options.c);
    # this is what that table promises.
    declare -A seen where
    for c in $(commands); do
        [ "$c" = help ] && continue
        while read -r letter spec; do
            if [ -n "${seen[$letter]:-}" ] && [ "${seen[$letter]}" != "$spec" ]; then
                echo "$letter is '${seen[$letter]}' in ${where[$letter]} but '$spec' in $c"
                return 1
            fi
            seen[$letter]=$spec
            where[$letter]=$c
        done < <("$JCLIP" "$c" --help | sed -n 's/^  \(-[a-zA-Z]\), \(--[a-z0-9-]*\( [A-Z]*\)\{0,1\}\)  .*/\1 \2/p')
    done
    # the letters the vocabulary settled on
    [ "${seen[-t]}" = "--threads N" ]
    [ "${seen[-k]}" = "--top K" ]
}

@test "the runnable examples run on the tiny model" {
    bin="$BATS_TEST_TMPDIR/bin"
    mkdir -p "$bin"
    ln -s "$JCLIP" "$bin/jclip"
    for f in "$MAN"/*.1; do
        dir="$BATS_TEST_TMPDIR/examples/$(basename "$f" .1)"
        mkdir -p "$dir"
        ln -s "$MODEL" "$dir/tiny"
        mkdir "$dir/photos"
        cp "$GOLDEN/images/coffee.png" "$GOLDEN/images/chelsea.png" "$dir/photos/"
        mapfile -t cmds < <(render "$f" | section EXAMPLES | sed -n 's/^ *\$ //p')
        [ "${#cmds[@]}" -gt 0 ] || { echo "$f: no runnable example"; return 1; }
        for cmd in "${cmds[@]}"; do
            cd "$dir"
            PATH="$bin:$PATH" JCLIP_MODEL="$MODEL" run --separate-stderr bash -o pipefail -c "$cmd"
            cd - > /dev/null
            [ "$status" -eq 0 ] ||
                { printf '%s: example failed (exit %s):\n$ %s\n%s\n' "$f" "$status" "$cmd" "$stderr"; return 1; }
        done
    done
}
