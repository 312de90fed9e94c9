#!/bin/sh
# cli_corpus.sh — lstm train's data: a directory or a list of files trains
# exactly like their concatenation (directories: regular files by name; a
# list: in the order given); a large file is mapped, not read whole (peak
# memory far below its size); --keep best writes the best-validation weights;
# --patience stops after K evaluations without improvement; both are kept by
# a checkpoint, with the best loss so far, so a resumed run keeps the same file.
. tests/harness.sh
DATA=$FIX/train/data.txt
F="--hidden 16 --embed 8 --batch 4 --bptt 8 --steps 30 --eval-every 10 --checkpoint-every 0 --threads 1"

# ---- a directory = its files by name; a list = its files in order
mkdir -p "$T/d"
head -c 200 $DATA > "$T/d/b.txt"; tail -c +201 $DATA > "$T/d/a.txt"; ln -s "$T/d/a.txt" "$T/d/link"
cat "$T/d/a.txt" "$T/d/b.txt" > "$T/ab.txt"; cat "$T/d/b.txt" "$T/d/a.txt" > "$T/ba.txt"
$LSTM train $F --data "$T/ab.txt" --out "$T/ab.st" 2> "$T/e1" || bad "file: $(tail -n 1 "$T/e1")"
$LSTM train $F --data "$T/d" --out "$T/d.st" 2> "$T/e2" || bad "directory: $(tail -n 1 "$T/e2")"
check 'cmp -s "$T/ab.st" "$T/d.st"' "a directory should train like its regular files joined by name (a.txt, b.txt; the link skipped)"
$LSTM train $F --data "$T/ba.txt" --out "$T/ba.st" 2> "$T/e3" || bad "file: $(tail -n 1 "$T/e3")"
$LSTM train $F --data "$T/d/b.txt,$T/d/a.txt" --out "$T/l.st" 2> "$T/e4" || bad "list: $(tail -n 1 "$T/e4")"
check 'cmp -s "$T/ba.st" "$T/l.st"' "a list of files should train like the files joined in the order given"
check '! cmp -s "$T/ab.st" "$T/ba.st"' "the order of the files should matter"
# a pipe or FIFO (--data <(cmd)) is read through, as a list's files are: it cannot be mapped
mkfifo "$T/fifo"
(cat "$T/ab.txt" > "$T/fifo" &)
timeout 30 $LSTM train $F --data "$T/fifo" --out "$T/fifo.st" 2> "$T/e7"
rc=$?
check '[ $rc -eq 0 ] && cmp -s "$T/ab.st" "$T/fifo.st"' "a FIFO as --data should train like its bytes in a file: rc $rc, $(tail -n 1 "$T/e7")"
$LSTM train $F --data "$T/nope,$T/d" --out "$T/n.st" 2> "$T/e5"
rc=$?
check '[ $rc -eq 1 ] && [ "$(wc -l < "$T/e5")" -eq 1 ] && grep -q "nope: cannot open" "$T/e5" && [ ! -f "$T/n.st" ]' "a missing file in the list: $(cat "$T/e5")"
# a device in the list is refused before anything is copied (/dev/zero would fill $TMPDIR)
for dev in /dev/zero "$T/ab.txt,/dev/zero"; do
    TMPDIR="$T" timeout 20 $LSTM train $F --data "$dev" --out "$T/z.st" 2> "$T/e12"
    rc=$?
    check '[ $rc -eq 1 ] && [ "$(wc -l < "$T/e12")" -eq 1 ] && grep -q "/dev/zero: is a device" "$T/e12" && [ ! -f "$T/z.st" ] && [ -z "$(ls "$T" | grep lstm-corpus)" ]' "--data $dev: expected exit 1 and one line 'is a device', got rc $rc: $(head -c 300 "$T/e12")"
done

# ---- a 128 MiB file is mapped: peak memory stays far below it (ASan's own overhead included)
if command -v /usr/bin/time >/dev/null 2>&1; then
    yes 'The quick brown fox jumps over the lazy dog; 0123456789.' | head -c 134217728 > "$T/big"
    /usr/bin/time -f "%M" -o "$T/rss" $LSTM train $F --data "$T/big" --val-fraction 0.001 --eval-every 0 --steps 5 --out "$T/big.st" 2> "$T/e6"
    rc=$?
    kb=$(tail -n 1 "$T/rss")
    check '[ $rc -eq 0 ] && [ "$kb" -lt 65536 ]' "128 MiB corpus: expected a peak RSS under half of it (64 MiB), got ${kb} kB (rc $rc: $(tail -n 1 "$T/e6"))"
    echo "a 128 MiB corpus trained in a peak RSS of ${kb} kB"
fi

# ---- --keep best, --patience
G="--data $DATA --hidden 16 --embed 8 --batch 4 --bptt 8 --steps 400 --eval-every 20 --checkpoint-every 0 --threads 1 --lr 0.05 --seed 2"
$LSTM train $G --out "$T/last.st" --log "$T/last.log" 2> "$T/e7" || bad "last: $(tail -n 1 "$T/e7")"
$LSTM train $G --keep best --out "$T/best.st" --log "$T/best.log" 2> "$T/e8" || bad "best: $(tail -n 1 "$T/e8")"
# the step of the best validation loss (the first if tied); a run stopped there must equal the kept file
sb=$(sed -n 's/.*"step":\([0-9]*\),.*"val_loss":\([0-9.e+-]*\).*/\2 \1/p' "$T/best.log" | sort -g -k1,1 -k2,2n | head -n 1)
best=${sb% *} at=${sb#* }
lastv=$(sed -n 's/.*"val_loss":\([0-9.e+-]*\).*/\1/p' "$T/best.log" | tail -n 1)
$LSTM train $G --steps "$at" --out "$T/upto.st" 2> "$T/e10" || bad "run to step $at: $(tail -n 1 "$T/e10")"
check 'cmp -s "$T/upto.st" "$T/best.st"' "--keep best: the file should hold the weights of step $at (validation $best), the best"
check '[ "$at" = 400 ] || ! cmp -s "$T/last.st" "$T/best.st"' "--keep best: the best step is $at, yet the file equals the last weights"
echo "--keep best: the weights of step $at (validation loss $best; the last evaluation gave $lastv)"
$LSTM train $G --patience 2 --eval-every 20 --out "$T/p.st" --log "$T/p.log" 2> "$T/e9"
rc=$?
n=$(wc -l < "$T/p.log" | tr -d ' ')
check '[ $rc -eq 0 ] && grep -q "without improvement" "$T/e9" && [ "$n" -lt 400 ]' "--patience 2: expected an early stop (rc $rc, $n steps: $(tail -n 1 "$T/e9"))"
echo "--patience 2 stopped at step $n of 400"
$LSTM train $G --keep worst --out "$T/w.st" 2> "$T/e11"
rc=$?
check '[ $rc -eq 2 ] && grep -q "expected last or best" "$T/e11" && [ ! -f "$T/w.st" ]' "--keep worst: expected a usage error (rc $rc: $(cat "$T/e11"))"
# --keep best and --patience compare validation losses: with no validation data, a usage error
# (--patience was ignored, the run went to its last step)
for o in "--keep best" "--patience 2"; do
    $LSTM train $G $o --val-fraction 0 --out "$T/nv.st" 2> "$T/e17"
    rc=$?
    check '[ $rc -eq 2 ] && [ "$(wc -l < "$T/e17")" -eq 1 ] && grep -q -- "${o%% *} .*needs validation data (--val-fraction above 0)" "$T/e17" && [ ! -e "$T/nv.st" ] && [ ! -e "$T/nv.st.ckpt" ]' \
        "$o --val-fraction 0: expected a usage error, nothing written (rc $rc: $(cat "$T/e17"))"
done
# a run stopped at step 200 and resumed (settings from the checkpoint) keeps the same best file
$LSTM train $G --steps 200 --keep best --out "$T/r.st" 2> "$T/e12" || bad "best to 200: $(tail -n 1 "$T/e12")"
$LSTM train --resume "$T/r.st.ckpt" --steps 400 2> "$T/e13" || bad "resumed best: $(tail -n 1 "$T/e13")"
check 'cmp -s "$T/r.st" "$T/best.st"' "--keep best resumed at step 200: expected the weights of step $at, as the run never stopped"
# ... and stopped between evaluations (step 63, 55): the stop's own evaluation does not count
for s in 63 55; do
    $LSTM train $G --steps $s --keep best --out "$T/r$s.st" 2> "$T/e12" || bad "best to $s: $(tail -n 1 "$T/e12")"
    $LSTM train --resume "$T/r$s.st.ckpt" --steps 400 2> "$T/e13" || bad "resumed best from $s: $(tail -n 1 "$T/e13")"
    check 'cmp -s "$T/r$s.st" "$T/best.st"' "--keep best stopped at step $s and resumed: expected the weights of step $at, as the run never stopped"
done
# --patience too: stopped at step 70 and resumed, it stops where the run never stopped did
$LSTM train $G --steps 70 --patience 2 --eval-every 20 --out "$T/q.st" --log "$T/q.log" 2> "$T/e9" || bad "patience to 70: $(tail -n 1 "$T/e9")"
$LSTM train --resume "$T/q.st.ckpt" --steps 400 2> "$T/e9"
check '[ "$(wc -l < "$T/q.log" | tr -d " ")" = "$n" ] && grep -q "without improvement" "$T/e9"' \
    "--patience 2 stopped at step 70 and resumed: stopped at step $(wc -l < "$T/q.log"), the run never stopped at $n"
# --keep best with no --out holding the best so far: a copy of the checkpoint resumed with a
# new --out (the best weights are in the first run's --out), or a run that kept its last
# weights resumed with --keep best.  An evaluation that did not beat the checkpoint's best
# wrote nothing, and the run said "wrote NEW" of a file that did not exist (or held the
# last weights of the earlier run): refused before any training
cp "$T/r.st.ckpt" "$T/copy.ckpt"
$LSTM train --resume "$T/copy.ckpt" --out "$T/rc.st" --steps 420 2> "$T/e14"
rc=$?
check '[ $rc -eq 1 ] && [ "$(wc -l < "$T/e14")" -eq 1 ] && grep -q "keep best: .*rc.st does not exist" "$T/e14" && [ ! -e "$T/rc.st" ] && [ ! -e "$T/rc.st.ckpt" ]' \
    "--keep best, a copy resumed with a new --out: expected exit 1 and one line, nothing written (rc $rc: $(cat "$T/e14"))"
cp "$T/last.st" "$T/last0.st"
$LSTM train --resume "$T/last.st.ckpt" --keep best --steps 420 2> "$T/e15"
rc=$?
check '[ $rc -eq 2 ] && [ "$(wc -l < "$T/e15")" -eq 1 ] && grep -q -- "--keep best conflicts with .*last.st.ckpt, whose run kept its last weights" "$T/e15" && cmp -s "$T/last.st" "$T/last0.st"' \
    "--keep best on resuming a --keep last run: expected a usage error, the file untouched (rc $rc: $(cat "$T/e15"))"
# --sample draws from the model written to --out: with --keep best the best one, not the last
$LSTM train $G --keep best --sample 60 --out "$T/ks.st" > "$T/ks.out" 2> "$T/e16" || bad "--keep best --sample: $(tail -n 1 "$T/e16")"
$LSTM sample --model "$T/ks.st" --length 60 --seed 2 > "$T/ks2.out"
head -c 60 "$T/ks.out" > "$T/ks.a"; tail -c 60 "$T/ks2.out" > "$T/ks.b"
check 'cmp -s "$T/ks.a" "$T/ks.b" && grep -q "kept the best (validation loss [0-9.]*) in .*ks.st" "$T/e16"' \
    "--keep best --sample: the sample should come from the kept (best) model, and the last line say so: $(tail -n 1 "$T/e16")"

# the data file made shorter while a run trains on it: one line and exit 1, no crash (it is mapped,
# and pages past the new end fault), no lock files left, the last checkpoint kept
head -c 1500000 /dev/urandom | od -An -tx1 | tr -d ' \n' | head -c 3000000 > "$T/big.txt"
$LSTM train --data "$T/big.txt" --hidden 8 --layers 1 --embed 4 --batch 4 --bptt 16 --time 20 --checkpoint-every 50 \
    --log "$T/sb.log" --out "$T/sb.st" 2> "$T/e17" &
pid=$!
i=0; while [ "$( [ -f "$T/sb.log" ] && wc -l < "$T/sb.log" || echo 0)" -lt 60 ] && [ $i -lt 1000 ]; do sleep 0.02; i=$((i + 1)); done
: > "$T/big.txt"
wait $pid
rc=$?
check '[ $rc -eq 1 ] && tail -n 1 "$T/e17" | grep -q "^lstm: .*big.txt: the data file became shorter while training (it had 3000000 bytes)" && [ ! -e "$T/sb.st" ] && [ -s "$T/sb.st.ckpt" ] && [ -z "$(ls -A "$T" | grep "\.lock$")" ]' \
    "the data truncated while training: expected exit 1, one line, a checkpoint and no locks (rc $rc: $(tail -n 1 "$T/e17"); $(ls -A "$T" | grep lock))"

# a file whose size reads 0 but that holds bytes (procfs): read through, as a list's files are
# (alone it was mapped by its size: "the data is empty"), the same model as its copy
if [ -r /proc/version ] && [ "$(stat -c %s /proc/version 2> /dev/null)" = 0 ]; then
    cat /proc/version > "$T/cpu.txt"
    if [ "$(wc -c < "$T/cpu.txt")" -gt 100 ] && cat /proc/version | cmp -s - "$T/cpu.txt"; then
        $LSTM train $F --eval-every 0 --val-fraction 0 --data /proc/version --out "$T/p.st" 2> "$T/e18"
        rc=$?
        $LSTM train $F --eval-every 0 --val-fraction 0 --data "$T/cpu.txt" --out "$T/pc.st" 2> "$T/e19"
        check '[ $rc -eq 0 ] && cmp -s "$T/p.st" "$T/pc.st"' "--data /proc/version (size 0, bytes in it): rc $rc, $(tail -n 1 "$T/e18")"
    fi
fi
# an entry of a --data directory that cannot be examined is an error naming it (it was skipped
# without a word: "no data files", or a smaller corpus); as a user, or as root through setpriv
mkdir -p "$T/ns/r" && cp "$T/ab.txt" "$T/ns/r/a.txt" && chmod 644 "$T/ns/r" && chmod 777 "$T/ns"
NS='cd "$1" && "$0" train --hidden 8 --embed 4 --batch 2 --bptt 4 --steps 2 --data r --out o.st 2> err; echo $? > rc'
if [ "$(id -u)" != 0 ]; then
    sh -c "$NS" "$LSTM" "$T/ns"
elif command -v setpriv > /dev/null; then
    cp "$LSTM" "$T/ns/lstm" && chmod 755 "$T" "$T/ns/lstm"
    setpriv --reuid=65534 --regid=65534 --clear-groups sh -c "$NS" "$T/ns/lstm" "$T/ns"
fi
[ -e "$T/ns/rc" ] && check '[ "$(cat "$T/ns/rc")" = 1 ] && grep -q "r/a.txt: cannot examine: Permission denied" "$T/ns/err" && [ ! -e "$T/ns/o.st" ]' \
    "--data DIR with an entry it cannot examine: expected exit 1 naming it, got rc $(cat "$T/ns/rc"): $(cat "$T/ns/err")"
chmod 755 "$T/ns/r"

echo "cli_corpus.sh: $pass passed, $fail failed"
[ $fail -eq 0 ]
