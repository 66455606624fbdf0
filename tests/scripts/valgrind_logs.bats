#!/usr/bin/env bats
# scripts/valgrind-logs, which decides whether `make valgrind` passed, on logs valgrind itself
# writes for small programs with known faults. Run by `make valgrind` before the CLI tests.

setup() {
    cd "$BATS_TEST_TMPDIR"
    cat > prog.c << 'C'
#include <signal.h>
#include <stdlib.h>
#include <string.h>
char *volatile keep;
int main(int argc, char **argv)
{
    char *p = malloc(40);
    memset(p, 1, 40);
    keep = p;
    if (strchr(argv[1], 'W'))
        p[40] = 1; /* one past the end */
    if (strchr(argv[1], 'L'))
        keep = p = NULL; /* the block's pointers are gone: definitely lost */
    else if (strchr(argv[1], 'F'))
        free(p);
    if (strchr(argv[1], 'K'))
        raise(SIGTERM);
    return 0;
}
C
    cc -O0 -g -o prog prog.c
}

# runs prog under the options scripts/valgrind-jclip uses, writing its log into logs/$1
vg() {
    mkdir -p "logs/$1"
    valgrind --error-exitcode=99 --leak-check=full --show-leak-kinds=definite \
        --errors-for-leak-kinds=definite --log-file="logs/$1/vg.%p.log" ./prog "$2" || true
}

check() {
    run "$BATS_TEST_DIRNAME/../../scripts/valgrind-logs" "logs/$1"
}

@test "clean runs pass, and say how many there were" {
    vg clean F
    vg clean -
    check clean
    [ "$status" -eq 0 ]
    [[ "$output" == "valgrind: 2 jclip runs, no errors, no definite leaks (0 killed"* ]]
}

@test "a definite leak in a run that exited fails, and the log is printed" {
    vg leak L
    check leak
    [ "$status" -eq 1 ]
    [[ "$output" == *"logs/leak/vg."*".log: errors"* ]]
    [[ "$output" == *"definitely lost"* ]]
}

@test "a killed run whose only faults are loss records passes, counted" {
    vg killed LK
    vg killed F
    check killed
    [ "$status" -eq 0 ]
    [[ "$output" == *"2 jclip runs"*"(1 killed by a signal"* ]]
}

@test "a killed run with an invalid write fails" {
    vg bad WK
    check bad
    [ "$status" -eq 1 ]
    [[ "$output" == *"Invalid write"* ]]
    vg bad2 LWK
    check bad2
    [ "$status" -eq 1 ]
}

@test "a log valgrind did not finish fails" {
    mkdir -p logs/cut
    vg cut F
    sed -i '/ERROR SUMMARY/d' logs/cut/*.log
    check cut
    [ "$status" -eq 1 ]
    [[ "$output" == *"no summary"* ]]
}
