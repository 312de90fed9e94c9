# harness.sh — sourced by tests/cli_files.sh, cli_resume.sh, cli_corpus.sh (not a test itself):
# LSTM as an absolute path, FIX (fixtures), pass/fail counters with ok/bad/check, and a
# scratch directory T that is the working directory and is removed at exit.
LSTM=${LSTM:-build/lstm}
case $LSTM in /*) ;; *) LSTM=$(pwd)/$LSTM ;; esac
FIX=$(pwd)/tests/fixtures
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }
check() { if eval "$1"; then ok; else bad "$2"; fi; }
T=$(mktemp -d "${TMPDIR:-/tmp}/lstm_${0##*/}.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT
cd "$T" || exit 1
