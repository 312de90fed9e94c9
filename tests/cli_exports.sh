#!/bin/sh
# cli_exports.sh — liblstm.so exports exactly the public API: every dynamic
# symbol it defines is a function declared LSTM_API in include/lstm.h, and
# every such function is exported (the library is built with hidden visibility).
LSTM=${LSTM:-build/lstm}
so=$(dirname "$LSTM")/liblstm.so
hdr=$(dirname "$0")/../include/lstm.h
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }
if ! command -v nm > /dev/null 2>&1; then
    bad "nm not found: cannot list the exports of $so"
elif [ ! -f "$so" ]; then
    bad "$so not found"
else
    exported=$(nm -D --defined-only "$so" | awk '$2 ~ /^[TtWwDdBbRr]$/ {print $3}' | sort -u)
    api=$(sed -n 's/^LSTM_API .*[ *]\(lstm_[a-z0-9_]*\)(.*/\1/p' "$hdr" | sort -u)
    [ -n "$api" ] && ok || bad "no LSTM_API declarations found in $hdr"
    extra=$(printf '%s\n' "$exported" | grep -v -x -F "$api" | grep -v '^$')
    [ -z "$extra" ] && ok || bad "liblstm.so exports symbols outside the API: $(echo $extra)"
    missing=$(printf '%s\n' "$api" | grep -v -x -F "$exported" | grep -v '^$')
    [ -z "$missing" ] && ok || bad "API functions not exported: $(echo $missing)"
    printf '%s\n' "$exported" | grep -q '^lstm__' && bad "private lstm__ symbols exported" || ok
    echo "liblstm.so exports $(printf '%s\n' "$exported" | grep -c .) symbols, lstm.h declares $(printf '%s\n' "$api" | grep -c .)"
fi
echo "cli_exports.sh: $pass passed, $fail failed"
[ $fail -eq 0 ]
