#!/bin/sh
# cli_files.sh — how lstm writes its outputs (README "Files and safety"):
# atomic replacement through a temporary made with O_EXCL|O_NOFOLLOW (a link
# planted at a guessable name redirects nothing), devices and FIFOs written
# directly (never replaced by a file), symlinks written through, write errors
# reported (/dev/full), stale temporaries of killed runs removed.
. tests/harness.sh

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
mkdevs() {
    rm -f null full
    mknod null c 1 3 2> /dev/null || ln -s /dev/null null
    mknod full c 1 7 2> /dev/null || ln -s /dev/full full
}
mkdevs
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

# ---- temporaries of a killed run are removed by the next write once an hour old;
# a live run's are kept, and so is a recent one of a PID we cannot see (another
# PID namespace sharing the directory may be writing it)
dead=$(sh -c 'echo $$')
touch -d '2 hours ago' ".s.npy.lstm-tmp.$dead.0123456789abcdef" ".s.npy.lstm-tmp.$$.0123456789abcdef"
touch ".s.npy.lstm-tmp.$dead.fedcba9876543210"
fwd --output s.npy 2> err
check '[ ! -e ".s.npy.lstm-tmp.$dead.0123456789abcdef" ] && [ -e ".s.npy.lstm-tmp.$$.0123456789abcdef" ]' "stale temporary of dead pid $dead not removed (or a live one removed)"
check '[ -e ".s.npy.lstm-tmp.$dead.fedcba9876543210" ]' "a recent temporary of dead pid $dead was removed"
rm -f ".s.npy.lstm-tmp.$dead.fedcba9876543210"

# ---- a device is not an input file: refused at once, not read until memory runs out
for dev in /dev/zero /dev/urandom; do
    timeout 20 "$LSTM" forward --model "$dev" --input x.npy --output d.npy 2> err; rc=$?
    check '[ $rc -eq 1 ] && grep -q "$dev: is a device" err && [ $(wc -l < err) -eq 1 ] && [ ! -e d.npy ]' "forward --model $dev: expected exit 1 and one line 'is a device', got rc $rc: $(head -c 300 err)"
    timeout 20 "$LSTM" forward --model "$FIX/lstm_tiny.safetensors" --prefix model. --input "$dev" --output d.npy 2> err; rc=$?
    check '[ $rc -eq 1 ] && grep -q "$dev: is a device" err && [ $(wc -l < err) -eq 1 ] && [ ! -e d.npy ]' "forward --input $dev: expected exit 1 and one line 'is a device', got rc $rc: $(head -c 300 err)"
done
check '[ -z "$(ls -A | grep -e "tmp" -e partial | grep -v "lstm-tmp.$$")" ]' "temporaries left behind: $(ls -A | grep -e tmp -e partial)"

# ---- every destination is checked before any work; collisions by identity, not spelling
cp "$FIX/train/data.txt" data.txt
cp data.txt data.orig
TR="--data data.txt --hidden 8 --layers 1 --embed 4 --batch 2 --bptt 4 --val-fraction 0 --steps 300"
# expect_refused CODE PATTERN NAME -- ARGS: exit CODE, one line matching PATTERN, nothing trained
expect_refused() {
    code=$1 pat=$2 name=$3; shift 3
    rm -f t.log
    "$LSTM" "$@" > out.txt 2> err
    rc=$?
    check '[ $rc -eq $code ] && [ $(wc -l < err) -eq 1 ] && grep -q -e "$pat" err && { [ ! -s t.log ] || [ "$(wc -l < t.log)" -eq 0 ]; }' \
        "$name: expected exit $code and one line matching '$pat' before any step; got rc $rc, $( [ -f t.log ] && wc -l < t.log || echo 0) log records: $(tail -n 1 err)"
}
mkdir adir
expect_refused 1 "is a directory" "train --checkpoint DIR" train $TR --log t.log --out m.st --checkpoint adir
expect_refused 1 "is a directory" "train --out DIR" train $TR --log t.log --out adir
expect_refused 2 "empty" "train --out ''" train $TR --log t.log --out ""
expect_refused 2 "same file" "train --checkpoint X --out X" train $TR --log t.log --out m.st --checkpoint ./m.st
expect_refused 2 "same file" "train --log = --data" train $TR --log data.txt --out m.st
expect_refused 2 "same file" "train --out = --data (other spelling)" train $TR --log t.log --out ../"$(basename "$T")"/data.txt
ln -s data.txt data.link
expect_refused 2 "same file" "train --out = a symlink to --data" train $TR --log t.log --out data.link
check 'cmp -s data.txt data.orig' "the training data was changed by a refused run"
expect_refused 2 "same file" "forward --output o.npy --hn ./o.npy" forward --model "$FIX/lstm_tiny.safetensors" --prefix model. --input x.npy --output o.npy --hn ./o.npy
check '[ ! -e o.npy ]' "forward --output o.npy --hn ./o.npy wrote o.npy"
expect_refused 2 "same file" "forward --output = --input" forward --model "$FIX/lstm_tiny.safetensors" --prefix model. --input x.npy --output ./x.npy
expect_refused 1 "is a directory" "forward --hn DIR" forward --model "$FIX/lstm_tiny.safetensors" --prefix model. --input x.npy --output o.npy --hn adir
expect_refused 2 "empty" "grad --output ''" grad --model "$FIX/lstm_tiny.safetensors" --prefix model. --input x.npy --grad-output x.npy --output ""
if [ "$(id -u)" != 0 ]; then # root writes anywhere
    mkdir ro && chmod 555 ro
    expect_refused 1 "cannot write" "train --checkpoint in a read-only directory" train $TR --log t.log --out m.st --checkpoint ro/c.ckpt
fi

# ---- two runs on one --out: the second refuses at once; the first finishes untouched
"$LSTM" train $TR --steps 100000 --time 20 --log r1.log --out r.st 2> r1.err &
pid=$!
i=0; while [ ! -s r1.log ] && [ $i -lt 500 ]; do sleep 0.02; i=$((i + 1)); done
"$LSTM" train $TR --log r2.log --out r.st --checkpoint other.ckpt 2> r2.err
rc=$?
"$LSTM" train $TR --log r3.log --out other.st --checkpoint r.st.ckpt 2> r3.err
rc3=$?
kill -INT $pid; wait $pid
rc1=$?
check '[ $rc -eq 1 ] && grep -q "another lstm run" r2.err && [ ! -s r2.log ] && [ ! -e other.ckpt ]' "a second train on the same --out: rc $rc, $(cat r2.err)"
check '[ $rc3 -eq 1 ] && grep -q "another lstm run" r3.err && [ ! -e other.st ]' "a second train on the same checkpoint: rc $rc3, $(cat r3.err)"
check '[ $rc1 -eq 130 ] && [ -s r.st ] && [ -z "$(ls -A | grep "\.lock$")" ]' "the first run (rc $rc1) did not finish cleanly, or its lock files stayed: $(ls -A | grep lock)"

# ---- every write is checked: stdout on a full device or past `ulimit -f`, a log that fails
mkdevs
"$LSTM" train $TR --steps 30 --out w.st 2> /dev/null || bad "training a model for the write tests failed"
# on_full NAME -- ARGS: stdout to the full device: exit 1 and a one-line message
on_full() {
    name=$1; shift
    "$LSTM" "$@" > full 2> err
    rc=$?
    check '[ $rc -eq 1 ] && [ $(wc -l < err) -ge 1 ] && tail -n 1 err | grep -q -e "^lstm: .*No space left on device" -e "^lstm: writing to stdout failed"' \
        "$name > /dev/full: expected exit 1 and a message, got rc $rc: $(tail -n 1 err)"
}
on_full "sample --length 100000" sample --model w.st --length 100000
on_full "sample --length 10" sample --model w.st --length 10
on_full "eval" eval --model w.st --data data.txt
on_full "eval --json" eval --model w.st --data data.txt --json
on_full "info" info --model "$FIX/lstm_tiny.safetensors" --prefix model.
on_full "bench" bench --input-size 4 --hidden 4 --seq 2 --min-iters 1 --budget 0.01
on_full "train --sample" train $TR --steps 5 --out ws.st --sample 50
(ulimit -f 8; exec "$LSTM" sample --model w.st --length 100000 > big.txt) 2> err
rc=$?
check '[ $rc -eq 1 ] && grep -q "^lstm: .*File too large" err' "sample past ulimit -f: expected exit 1 and a message, got rc $rc: $(cat err)"
# --out on a full device: the message says the checkpoint (written first) holds the weights, which sample reads
"$LSTM" train $TR --steps 5 --out full --checkpoint of.ckpt 2> err
rc=$?
check '[ $rc -eq 1 ] && tail -n 1 err | grep -q "full: write failed: No space left on device; the checkpoint of.ckpt holds these weights" && "$LSTM" sample --model of.ckpt --length 5 > /dev/null 2>&1' \
    "--out on a full device: expected exit 1 naming the checkpoint, which loads; got rc $rc: $(tail -n 1 err)"
# a log on a full device: training stops at the first lost record, with a checkpoint to resume from
"$LSTM" train $TR --steps 200 --log full --out lf.st 2> err
rc=$?
check '[ $rc -eq 1 ] && tail -n 1 err | grep -q "full: writing the log failed at step [0-9]*: No space left on device; stopped with a checkpoint: lf.st.ckpt" && [ ! -e lf.st ]' \
    "--log on a full device: expected exit 1, a message and a checkpoint, got rc $rc: $(tail -n 1 err)"
"$LSTM" train --resume lf.st.ckpt --out lf.st --steps 200 2> err
check '[ $? -eq 0 ] && [ -s lf.st ]' "the checkpoint written when the log failed does not resume: $(tail -n 1 err)"

# ---- /dev/stdout and /dev/fd/N are written through the descriptor, at its offset: a file
# behind stdout keeps what came before and after, >> appends, a socket works; a closed or
# read-only descriptor is refused before any work
{ echo HEADER; fwd --output /dev/stdout; echo TRAILER; } > so.bin 2> err
rc=$?
n=$(wc -c < ref.npy)
check '[ $rc -eq 0 ] && [ "$(head -n 1 so.bin)" = HEADER ] && [ "$(tail -c 8 so.bin)" = TRAILER ] && [ $(wc -c < so.bin) -eq $((n + 15)) ] && tail -c +8 so.bin | head -c $n | cmp -s - ref.npy' \
    "forward --output /dev/stdout into a file: rc $rc, what the shell wrote around it is gone: $(cat err)"
echo keep > app.bin
fwd --output /dev/stdout >> app.bin 2> err
rc=$?
check '[ $rc -eq 0 ] && [ "$(head -n 1 app.bin)" = keep ] && tail -c +6 app.bin | cmp -s - ref.npy' "forward --output /dev/stdout >> FILE: rc $rc, the earlier contents are gone: $(cat err)"
fwd --output /dev/fd/3 3> fd3.bin 2> err
rc=$?
check '[ $rc -eq 0 ] && cmp -s fd3.bin ref.npy' "forward --output /dev/fd/3: rc $rc: $(cat err)"
fwd --output /dev/stdout >&- 2> err
rc=$?
check '[ $rc -eq 1 ] && grep -q "descriptor 1 is not open" err && [ $(wc -l < err) -eq 1 ]' "forward --output /dev/stdout with stdout closed: expected exit 1 and one line, got rc $rc: $(cat err)"
cp ref.npy ro.npy
fwd --output /dev/stdout 1< ro.npy 2> err
rc=$?
check '[ $rc -eq 1 ] && grep -q "open for reading only" err && cmp -s ro.npy ref.npy' "forward --output /dev/stdout open for reading: expected exit 1, got rc $rc: $(cat err)"
if [ -x /usr/bin/python3 ]; then
    /usr/bin/python3 -c '
import socket, subprocess, sys
a, b = socket.socketpair()
p = subprocess.run(sys.argv[1:], stdout=a, stderr=subprocess.PIPE)
a.close()
data = b""
while True:
    d = b.recv(65536)
    if not d: break
    data += d
open("sock.bin", "wb").write(data)
sys.exit(p.returncode)' "$LSTM" forward --model "$FIX/lstm_tiny.safetensors" --prefix model. --input x.npy --output /dev/stdout 2> err
    rc=$?
    check '[ $rc -eq 0 ] && cmp -s sock.bin ref.npy' "forward --output /dev/stdout on a socket: rc $rc: $(cat err)"
fi
# other spellings of stdout are stdout too (/dev//stdout and /proc/thread-self/fd/1 were taken for
# files: the rename replaced what stdout's file held)
for sp in /dev//stdout /dev/./stdout /proc/thread-self/fd/1; do
    [ -e "$sp" ] || continue
    echo HEADER > sp.out
    fwd --output "$sp" >> sp.out 2> err
    rc=$?
    check '[ $rc -eq 0 ] && [ "$(head -n 1 sp.out)" = HEADER ] && tail -c +8 sp.out | cmp -s - ref.npy' "forward --output $sp >> FILE: rc $rc, the file's head $(head -c 10 sp.out | od -c | head -n 1): $(cat err)"
done
{ echo HEADER; "$LSTM" train $TR --steps 4 --out lo.st --log /dev/stdout 2> err; echo "rc=$?"; } > lo.out
check '[ "$(head -n 1 lo.out)" = HEADER ] && grep -q "^rc=0$" lo.out && grep -q "^{\"step\":4," lo.out' "train --log /dev/stdout into a file: $(head -c 300 lo.out) $(cat err)"
# --out a stream: written once at the end, so it needs a --checkpoint of its own, and --keep best
# (which rewrites --out and reads it back) is refused; with both right the model comes out whole
expect_refused 2 "give --checkpoint" "train --out /dev/stdout without --checkpoint" train $TR --log t.log --out /dev/stdout
expect_refused 2 "keep best rewrites --out" "train --out /dev/stdout --keep best" train $TR --log t.log --out /dev/stdout --checkpoint so.ckpt --keep best --val-fraction 0.2
"$LSTM" train $TR --steps 4 --out /dev/stdout --checkpoint so.ckpt > so.st 2> err
rc=$?
"$LSTM" sample --model so.st --length 5 > /dev/null 2>> err
check '[ $rc -eq 0 ] && [ $? -eq 0 ] && [ -s so.ckpt ]' "train --out /dev/stdout --checkpoint FILE > m.st: rc $rc, a model that does not load: $(cat err)"

# ---- names the write would fail on are refused before any work: a name past NAME_MAX (stat
# said ENAMETOOLONG, which was taken for "not there yet"; the run trained, then wrote nothing),
# also as the default OUT.ckpt; a name under a regular file
long=$(printf '%0260d' 0)
expect_refused 1 "cannot write: File name too long (--checkpoint)" "train --checkpoint NAME-PAST-NAME_MAX" \
    train $TR --log t.log --out lg.st --checkpoint "$long"
expect_refused 1 "cannot write: File name too long (--output)" "forward --output NAME-PAST-NAME_MAX" \
    forward --model "$FIX/lstm_tiny.safetensors" --prefix model. --input x.npy --output "$long.npy"
long252=$(printf '%0252d' 0)
expect_refused 1 "cannot write: File name too long (--checkpoint)" "train --out NAME whose NAME.ckpt is past NAME_MAX" \
    train $TR --log t.log --out "$long252"
expect_refused 1 "cannot write: Not a directory (--out)" "train --out FILE/NAME" train $TR --log t.log --out data.txt/m.st
check '[ ! -e lg.st ] && [ ! -e "$long252" ]' "a refused train wrote its --out"
# a long valid --out (250 bytes: OUT.ckpt 255) takes two locks: both once shared the lock of
# their first 249 bytes, and the run refused itself ("another lstm run is writing it")
long250=$(printf '%0238d' 0).safetensors
"$LSTM" train $TR --steps 2 --out "$long250" 2> err
rc=$?
check '[ $rc -eq 0 ] && [ -s "$long250" ] && [ -s "$long250.ckpt" ]' "train --out NAME of 250 bytes: rc $rc: $(tail -n 1 err)"
rm -f "$long250" "$long250.ckpt"

# ---- --init is read, never written: --checkpoint, --log or --out on it is refused (a checkpoint,
# or log lines, replaced the model given)
"$LSTM" train $TR --steps 2 --out init.st --checkpoint init.ckpt 2> err || bad "train for --init failed: $(cat err)"
cp init.st init.keep
expect_refused 2 "--checkpoint init.st and --init init.st are the same file" "train --init M --checkpoint M" \
    train $TR --log t.log --init init.st --out i2.st --checkpoint init.st
expect_refused 2 "--log init.st and --init init.st are the same file" "train --init M --log M" \
    train $TR --init init.st --out i2.st --log init.st
expect_refused 2 "--out init.st and --init init.st are the same file" "train --init M --out M" \
    train $TR --log t.log --init init.st --out init.st
check 'cmp -s init.st init.keep && [ ! -e i2.st ]' "a refused train --init changed its model or wrote --out"

# ---- --epochs times the steps of an epoch past 10^15 (past 2^63 it wrapped: a negative total,
# "nothing to train: (null)", exit 0): refused with the numbers
head -c 1100000 /dev/zero | tr '\000' a > big.txt
printf 'bcd\n' >> big.txt
expect_refused 2 "--epochs 1000000000 of 1100003 steps each is more than 10^15 steps" "train --epochs 1e9 of 1.1M steps" \
    train --data big.txt --hidden 4 --layers 1 --embed 2 --batch 1 --bptt 1 --val-fraction 0 --epochs 1000000000 \
    --time 3 --log t.log --out ep.st

# ---- an existing file that may not be written is refused, not replaced by the rename (as a
# user: root may write anything; as root, the binary and the files copied for user 65534)
mkdir rd && cp "$FIX/lstm_tiny.safetensors" rd/m.st && cp x.npy rd/
RO='echo precious > rd/y.npy && chmod 444 rd/y.npy
    "$0" forward --model rd/m.st --prefix model. --input rd/x.npy --output rd/y.npy 2> rd/err; echo $? > rd/rc'
if [ "$(id -u)" != 0 ]; then
    sh -c "$RO" "$LSTM"
elif command -v setpriv > /dev/null; then
    cp "$LSTM" rd/lstm && chmod 755 "$T" rd && chown -R 65534:65534 rd
    setpriv --reuid=65534 --regid=65534 --clear-groups sh -c "$RO" rd/lstm
else
    echo "note: root without setpriv (util-linux): the read-only destination is not checked"
fi
[ ! -e rd/rc ] && [ "$(id -u)" = 0 ] && ! command -v setpriv > /dev/null || check '[ "$(cat rd/rc)" = 1 ] && [ "$(cat rd/y.npy)" = precious ] && grep -q "rd/y.npy: cannot write: Permission denied" rd/err' \
    "forward --output onto a read-only file: expected exit 1 and the file kept, got rc $(cat rd/rc 2> /dev/null): $(cat rd/err 2> /dev/null)"

echo "cli_files: $pass passed, $fail failed"
[ $fail -eq 0 ]
