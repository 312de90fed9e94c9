#!/bin/sh
# cli_files.sh — how lstm writes its outputs (README "Files and safety"):
# atomic replacement through a temporary made with O_EXCL|O_NOFOLLOW (a link
# planted at a guessable name redirects nothing), devices and FIFOs written
# directly (never replaced by a file), symlinks written through, write errors
# reported (/dev/full), stale temporaries of killed runs removed.
LSTM=${LSTM:-build/lstm}
case $LSTM in /*) ;; *) LSTM=$(pwd)/$LSTM ;; esac
FIX=$(pwd)/tests/fixtures
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }
check() { if eval "$1"; then ok; else bad "$2"; fi; }
T=$(mktemp -d "${TMPDIR:-/tmp}/lstm_cli_files.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT
cd "$T" || exit 1

# x.npy: a [2, 1, 1] float32 input for the 1-unit fixture model
printf '\223NUMPY\001\000\166\000' > x.npy
h="{'descr': '<f4', 'fortran_order': False, 'shape': (2, 1, 1), }"
while [ $(( (10 + ${#h} + 1) % 64 )) -ne 0 ]; do h="$h "; done
printf '%s\n' "$h" >> x.npy
printf '\000\000\200\077\000\000\000\300' >> x.npy
fwd() { "$LSTM" forward --model "$FIX/lstm_tiny.safetensors" --prefix model. --input x.npy "$@"; }
fwd --output ref.npy 2> err || bad "forward failed: $(cat err)"

# ---- devices stay devices; /dev/full is an error.  Private nodes when we may
# make them (as root, a broken build would otherwise replace the real
# /dev/null); else links to the real ones, which a user cannot replace.
mknod null c 1 3 2> /dev/null || ln -s /dev/null null
mknod full c 1 7 2> /dev/null || ln -s /dev/full full
fwd --output null 2> err
rc=$?
check '[ $rc -eq 0 ] && [ -c null ]' "forward --output /dev/null: rc $rc, or it is no longer a device: $(cat err)"
fwd --output full 2> err
rc=$?
check '[ $rc -eq 1 ] && grep -q "full" err && [ $(wc -l < err) -eq 1 ] && [ -c full ]' "forward --output /dev/full: expected exit 1 and one line naming it, got rc $rc: $(cat err)"

# ---- a FIFO is written into, not replaced
mkfifo fifo
timeout 10 cat fifo > fifo.out &
cpid=$!
fwd --output fifo 2> err
rc=$?
wait $cpid
check '[ $rc -eq 0 ] && [ -p fifo ] && cmp -s fifo.out ref.npy' "forward --output FIFO: rc $rc, FIFO replaced or bytes wrong: $(cat err)"

# ---- a symlink is written through: the link stays, its target gets the data
echo old > real.npy
ln -s real.npy link.npy
fwd --output link.npy 2> err
check '[ -L link.npy ] && cmp -s real.npy ref.npy' "forward --output SYMLINK: link replaced or target not written: $(cat err)"
ln -s nowhere/none.npy dangling.npy
fwd --output dangling.npy 2> err
rc=$?
check '[ $rc -eq 1 ] && [ -L dangling.npy ] && [ ! -e nowhere ]' "forward --output DANGLING-SYMLINK: expected exit 1, got $rc: $(cat err)"

# ---- links planted at every name a run could guess do not redirect the write
echo precious > victim
for out in o.npy o.st; do
    sh -c 'for n in "$1.tmp.$$" "$1.partial.$$" "$1.partial.$$.tmp.$$" ".$1.lstm-tmp.$$"; do ln -s victim "$n"; done
           shift; exec "$@"' sh "$out" "$LSTM" forward --model "$FIX/lstm_tiny.safetensors" --prefix model. --input x.npy --output o.npy 2> err
done
check '[ "$(cat victim)" = precious ] && [ -f o.npy ] && [ ! -L o.npy ] && cmp -s o.npy ref.npy' "a symlink planted at a temporary name redirected the write (victim: $(head -c 20 victim))"
rm -f o.npy* o.st* .o.npy* .o.st*

# ---- a new file gets 0666 less the umask; a replaced file keeps its mode
(umask 027 && fwd --output m1.npy) 2> err
check '[ "$(stat -c %a m1.npy)" = 640 ]' "new output's mode $(stat -c %a m1.npy) under umask 027 (expected 640)"
echo x > m2.npy && chmod 604 m2.npy
fwd --output m2.npy 2> err
check '[ "$(stat -c %a m2.npy)" = 604 ] && cmp -s m2.npy ref.npy' "replaced output's mode became $(stat -c %a m2.npy) (expected 604 kept)"

# ---- temporaries of a killed run are removed by the next write; a live run's are kept
dead=$(sh -c 'echo $$')
touch ".s.npy.lstm-tmp.$dead.0123456789abcdef" ".s.npy.lstm-tmp.$$.0123456789abcdef"
fwd --output s.npy 2> err
check '[ ! -e ".s.npy.lstm-tmp.$dead.0123456789abcdef" ] && [ -e ".s.npy.lstm-tmp.$$.0123456789abcdef" ]' "stale temporary of dead pid $dead not removed (or a live one removed)"
check '[ -z "$(ls -A | grep -e "tmp" -e partial | grep -v "lstm-tmp.$$")" ]' "temporaries left behind: $(ls -A | grep -e tmp -e partial)"

echo "cli_files: $pass passed, $fail failed"
[ $fail -eq 0 ]
