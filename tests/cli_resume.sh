#!/bin/sh
# cli_resume.sh — resuming what a run left (README "Files and safety"): a
# data path that is not UTF-8, 600 bytes long, survives a kill -9 and a
# resume bit for bit; resuming a COPY of a checkpoint never writes the
# original run's files; damaged or crafted checkpoints give one-line errors.
DATA=$(pwd)/tests/fixtures/train/data.txt
. tests/harness.sh

# ---- a non-UTF-8 name in a directory 600+ bytes deep: kill -9, resume with no flags
deep=.
for i in 1 2 3 4 5 6 7 8 9 10; do deep="$deep/dir$(printf '%056d' $i)"; done
mkdir -p "$deep"
name="$deep/$(printf 'donn\351es.txt')"
cp "$DATA" "$name"
FLAGS="--hidden 16 --layers 2 --embed 8 --batch 4 --bptt 8 --dropout 0.2 --steps 1500 --val-fraction 0.1 --eval-every 500 --checkpoint-every 40 --seed 3"
"$LSTM" train $FLAGS --data "$DATA" --out a.st 2> a.err || bad "uninterrupted run: $(tail -n 1 a.err)"
"$LSTM" train $FLAGS --data "$name" --out "$deep/b.st" --log "$deep/b.log" 2> b.err &
pid=$!
i=0; while [ "$( (wc -l < "$deep/b.log") 2>/dev/null || echo 0)" -lt 300 ] && [ $i -lt 1000 ]; do sleep 0.01; i=$((i + 1)); done
kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
rc=$?
check '[ $rc -eq 137 ] && [ ! -e "$deep/b.st" ]' "the run was not killed mid-way (rc $rc)"
"$LSTM" train --resume "$deep/b.st.ckpt" 2> b2.err
rc=$?
check '[ $rc -eq 0 ] && cmp -s a.st "$deep/b.st"' "kill -9 + resume with a ${#name}-byte non-UTF-8 data path: rc $rc, $(tail -n 1 b2.err)"
check '[ "$(wc -l < "$deep/b.log")" -eq 1500 ]' "the resumed log has $(wc -l < "$deep/b.log") records, expected 1500"

# ---- resuming a COPY with a new --out leaves the original run's files alone
SMALL="--data $DATA --hidden 8 --layers 1 --embed 4 --batch 4 --bptt 8 --val-fraction 0 --seed 2"
"$LSTM" train $SMALL --steps 20 --out o.st --log o.log 2> /dev/null
"$LSTM" train --resume o.st.ckpt --steps 40 2> /dev/null  # the original run goes on: o.st.ckpt at step 40
cp o.st.ckpt o40.ckpt; cp o.st o40.st; cp o.log o40.log
"$LSTM" train $SMALL --steps 20 --out c.st 2> /dev/null && cp c.st.ckpt copy.ckpt && cp c.st.ckpt c20.ckpt  # a copy taken at step 20
"$LSTM" train --resume copy.ckpt --steps 30 --out n.st 2> n.err
rc=$?
check '[ $rc -eq 0 ] && [ -s n.st ] && [ -s n.st.ckpt ] && cmp -s c.st.ckpt c20.ckpt && cmp -s o.st.ckpt o40.ckpt' \
    "resume of a copy with --out n.st: rc $rc, and the checkpoint goes next to --out, not over another run's: $(tail -n 1 n.err)"
cp o40.ckpt o-copy.ckpt
"$LSTM" train --resume o-copy.ckpt --steps 60 2> nc.err
rc=$?
check '[ $rc -eq 2 ] && grep -q "not the checkpoint its run wrote" nc.err && cmp -s o.st.ckpt o40.ckpt && cmp -s o.st o40.st && cmp -s o.log o40.log' \
    "resume of a copy without --out must refuse (exit 2), not write the original's files: rc $rc, $(tail -n 1 nc.err)"

# ---- a log that is a FIFO or a device is written into on --resume, never read
# (reading a FIFO whose only other end is a reader blocks for ever)
"$LSTM" train $SMALL --steps 20 --out q.st 2> /dev/null
mkfifo q.fifo
timeout 30 cat q.fifo > q.fifo.out &
cpid=$!
timeout 30 "$LSTM" train --resume q.st.ckpt --steps 30 --out q2.st --log q.fifo 2> q.err
rc=$?
kill $cpid 2> /dev/null; wait $cpid 2> /dev/null
check '[ $rc -eq 0 ] && [ -p q.fifo ] && [ "$(wc -l < q.fifo.out)" -eq 10 ] && grep -q "\"step\":30," q.fifo.out' \
    "--resume with --log FIFO: rc $rc (124: it hung), $(wc -l < q.fifo.out) records through the FIFO (expected 10): $(tail -n 1 q.err)"

# ---- the log is rewritten on --resume atomically: a failure leaves it as it was
"$LSTM" train $SMALL --steps 40 --out r.st --log r.log 2> /dev/null
cp r.log r40.log
(ulimit -f 2; exec "$LSTM" train --resume r.st.ckpt --steps 60 --out r2.st --log r.log) 2> r.err
rc=$?
check '[ $rc -eq 1 ] && [ "$(wc -l < r.err)" -eq 1 ] && grep -q "r.log" r.err && cmp -s r.log r40.log && [ -z "$(ls -A | grep "lstm-tmp")" ]' \
    "--resume whose log cannot be rewritten (ulimit -f): rc $rc, the log must stay as it was ($(wc -c < r.log) of $(wc -c < r40.log) bytes left): $(tail -n 1 r.err)"

# ---- a record's step is read within its line: '"step":' then a newline is no step
# (the number was read from the next line, and at the end of the file past the buffer)
cp r40.log rs.log
printf '{"step":\n3}\n{"step":\n     ' >> rs.log
"$LSTM" train --resume r.st.ckpt --steps 45 --out rs.st --log rs.log 2> rs.err
rc=$?
check '[ $rc -eq 0 ] && [ "$(head -n 40 rs.log)" = "$(cat r40.log)" ] && [ "$(wc -l < rs.log)" -eq 45 ] && ! grep -q "step\":$" rs.log' \
    "--resume with a log record '\"step\":' + newline: rc $rc, records kept from other lines: $(grep -n "step\":$" rs.log | head -n 2)"

# ---- flags that cannot change on resume; nothing left to do
"$LSTM" train --resume o.st.ckpt --batch 8 --steps 60 2> e.err
rc=$?
check '[ $rc -eq 2 ] && grep -q -- "--batch 8 conflicts with o.st.ckpt" e.err' "--resume --batch 8: rc $rc, $(cat e.err)"
# the validation fraction fixes the training part, hence the streams the carried state belongs
# to, the epochs, and the validation set that --keep best compares losses on: another value
# moved the epoch boundaries and trained on the held-out bytes
"$LSTM" train --resume o.st.ckpt --val-fraction 0.5 --steps 60 2> e.err
rc=$?
check '[ $rc -eq 2 ] && grep -q -- "--val-fraction 0.5 conflicts with o.st.ckpt, which was trained with val-fraction 0 " e.err && cmp -s o.st.ckpt o40.ckpt' \
    "--resume --val-fraction 0.5 of a run without validation: rc $rc, $(cat e.err)"
"$LSTM" train --resume o.st.ckpt --val-fraction 0 --steps 40 2> e.err
rc=$?
check '[ $rc -eq 0 ] && grep -q "nothing to train" e.err' "--resume --val-fraction 0 (the checkpoint's own value): rc $rc, $(cat e.err)"
"$LSTM" train --resume o.st.ckpt --steps 40 2> e.err
rc=$?
check '[ $rc -eq 0 ] && grep -q "nothing to train" e.err && ! grep -q "loss nan" e.err && cmp -s o.st.ckpt o40.ckpt' \
    "resume of a finished run: rc $rc, $(cat e.err)"

# ---- damaged checkpoints: every flip is a one-line error (exit 1), never a crash or a resume
size=$(wc -c < o40.ckpt)
flips=0 caught=0
for pos in 3 9 40 200 600 1000 1500 2100 3000 5000 9000 15000 20000 30000 $((size - 3)); do
    [ $pos -lt $size ] || continue
    cp o40.ckpt f.ckpt
    byte=$(od -An -tu1 -j $pos -N1 f.ckpt | tr -d ' ')
    printf "$(printf '\\%03o' $((byte ^ 4)))" | dd of=f.ckpt bs=1 seek=$pos conv=notrunc 2> /dev/null
    "$LSTM" train --resume f.ckpt --steps 60 --out f.st > /dev/null 2> f.err
    rc=$?
    flips=$((flips + 1))
    if [ $rc -eq 1 ] && [ "$(wc -l < f.err)" -eq 1 ] && grep -q "^lstm: f.ckpt" f.err && [ ! -e f.st ]; then
        caught=$((caught + 1))
    else
        echo "flip at byte $pos: rc $rc: $(cat f.err)"
    fi
    rm -f f.st f.st.ckpt
done
check '[ $caught -eq $flips ]' "checkpoint byte flips: $caught of $flips refused with one line"
echo "byte flips in a checkpoint: $caught of $flips refused with a one-line error"

# ---- smaller ones: usage errors exit 2; --json is the JSON alone; one --threads range
usage2() { # name pattern -- args
    name=$1 pat=$2; shift 2
    "$LSTM" "$@" > u.out 2> u.err
    rc=$?
    check '[ $rc -eq 2 ] && [ $(wc -l < u.err) -eq 1 ] && grep -q -e "$pat" u.err' "$name: expected usage error (2) matching '$pat', got rc $rc: $(cat u.err)"
}
usage2 "--proj 8 --hidden 8" "--proj 8 must be below --hidden 8" train $SMALL --proj 8 --steps 5 --out p.st
usage2 "cosine with warmup >= steps" "--warmup 10 must be below" train $SMALL --schedule cosine --warmup 10 --steps 10 --out p.st
for cmd in "train $SMALL --steps 5 --out p.st" "eval --model o.st --data $DATA" "sample --model o.st" "bench --input-size 4 --hidden 4"; do
    usage2 "$cmd --threads 300" "--threads: expected an integer in \[[01], 256\]" $cmd --threads 300
done
"$LSTM" eval --model o.st --data "$DATA" --json > j.out 2> j.err
rc=$?
check '[ $rc -eq 0 ] && [ "$(wc -l < j.out)" -eq 1 ] && grep -Eq "^\{\"loss\": [0-9.e+-]+, \"bpc\": [0-9.e+-]+, \"chars\": [0-9]+\}$" j.out' \
    "eval --json: stdout must be the JSON alone, got: $(cat j.out)"
# a divergence before any checkpoint of this run names the file resumed, which exists
"$LSTM" train $SMALL --optimizer sgd --lr 0.01 --steps 10 --out s.st 2> /dev/null
cp s.st.ckpt s-copy.ckpt && rm -f s.st.ckpt
"$LSTM" train --resume s-copy.ckpt --out s2.st --lr 1e38 --weight-decay 1 --clip 0 --momentum 0 --steps 100 --checkpoint-every 0 2> d.err
rc=$?
named=$(sed -n 's/.*the last good checkpoint is \(.*\) (step [0-9]*)$/\1/p' d.err)
check '[ $rc -eq 1 ] && [ -n "$named" ] && [ -f "$named" ]' "divergence: the message must name a checkpoint that exists, got rc $rc: $(tail -n 1 d.err)"

echo "cli_resume: $pass passed, $fail failed"
[ $fail -eq 0 ]
