#!/bin/sh
# The README's library example (examples/basic.c) compiles against the built
# library and runs.
pass=0 fail=0
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
lib=$(dirname "$LSTM")/liblstm.a
if ${CC:-cc} -std=c11 -Wall -Wextra -Werror -O1 -o "$tmp/basic" examples/basic.c -Iinclude "$lib" ${LINKFLAGS:-} -lm -pthread; then
    pass=$((pass + 1))
else
    echo "FAIL examples/basic.c does not compile cleanly"; fail=$((fail + 1))
fi
if [ -x "$tmp/basic" ] && out=$("$tmp/basic") && echo "$out" | grep -q "parameters, dL/dw"; then
    pass=$((pass + 1))
else
    echo "FAIL examples/basic.c did not run: $out"; fail=$((fail + 1))
fi
echo "cli_example.sh: $pass passed, $fail failed"
[ $fail -eq 0 ]
