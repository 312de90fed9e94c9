#!/bin/sh
# cli_train.sh — lstm train / eval / sample end to end: a run killed with
# SIGKILL and resumed ends with the same bytes as a run never interrupted;
# Ctrl-C saves a checkpoint; bad inputs give one-line errors and leave no
# files; a full destination keeps the previous checkpoint; a non-finite loss
# stops cleanly.  Uses tiny models (seconds).
LSTM=${LSTM:-build/lstm}
DATA=tests/fixtures/train/data.txt
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }
check() { if eval "$1"; then ok; else bad "$2"; fi; }
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
lines() { wc -l < "$1" | tr -d ' '; }

# A run long enough (~2 s) to be killed mid-way: 2 layers with dropout, so
# the dropout generator's state must be restored too.
FLAGS="--data $DATA --hidden 16 --layers 2 --embed 8 --batch 4 --bptt 8 --dropout 0.2 --steps 2000 --val-fraction 0.1 --eval-every 500 --checkpoint-every 40 --seed 3 --lr 0.003"

# ---- the uninterrupted run
$LSTM train $FLAGS --out "$T/a.st" --checkpoint "$T/a.ckpt" 2> "$T/a.err"
rc=$?  # taken at once: the message below runs commands of its own
check '[ $rc -eq 0 ] && [ -s "$T/a.st" ]' "uninterrupted run failed: $(tail -n 1 "$T/a.err")"

# ---- kill -9 mid-run, then --resume (all flags come from the checkpoint)
# wait until the run has logged 300 steps (a few checkpoints exist), then kill it
wait_steps() { # log, steps
    i=0
    while [ "$( (wc -l < "$1") 2>/dev/null || echo 0)" -lt "$2" ] && [ $i -lt 1000 ]; do sleep 0.01; i=$((i + 1)); done
}
$LSTM train $FLAGS --out "$T/b.st" --checkpoint "$T/b.ckpt" --log "$T/b.log" 2> "$T/b.err" &
pid=$!
wait_steps "$T/b.log" 300
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
rc=$?
check '[ $rc -eq 137 ] && [ ! -f "$T/b.st" ]' "the run was not killed mid-way (rc $rc; it finished before the kill?)"
$LSTM train --resume "$T/b.ckpt" 2> "$T/b2.err"
rc=$?  # taken at once: the message below runs commands of its own
check '[ $rc -eq 0 ]' "resume failed: $(tail -n 1 "$T/b2.err")"
resumed_at=$(sed -n 's/^resuming .* at step \([0-9]*\).*/\1/p' "$T/b2.err")
check 'cmp -s "$T/a.st" "$T/b.st"' "killed at step ~$resumed_at and resumed: final weights differ from the uninterrupted run"
echo "kill -9 at step ${resumed_at:-?} of 2000 (last checkpoint), resumed: final model file identical to the uninterrupted run's"

# ---- Ctrl-C (SIGINT) saves a checkpoint and exits; resuming it finishes identically
$LSTM train $FLAGS --out "$T/c.st" --checkpoint "$T/c.ckpt" --log "$T/c.log" 2> "$T/c.err" &
pid=$!
wait_steps "$T/c.log" 300
kill -INT $pid
wait $pid
rc=$?
check '[ $rc -eq 130 ] && grep -q "interrupted at step" "$T/c.err" && [ -s "$T/c.st" ]' \
    "SIGINT: expected exit 130, a message and a saved model (rc $rc: $(tail -n 1 "$T/c.err"))"
int_at=$(sed -n 's/^interrupted at step \([0-9]*\).*/\1/p' "$T/c.err")
check '[ "$(tail -n 1 "$T/c.log" | sed -n "s/.*\"step\":\([0-9]*\).*/\1/p")" = "$int_at" ]' "SIGINT: the log's last step is not the saved step $int_at"
$LSTM train --resume "$T/c.ckpt" 2> "$T/c2.err"
rc=$?  # taken at once: the message below runs commands of its own
check '[ $rc -eq 0 ] && cmp -s "$T/a.st" "$T/c.st"' "SIGINT at step $int_at + resume: final weights differ from the uninterrupted run"
check '[ "$(lines "$T/c.log")" -eq 2000 ]' "resumed log should hold 2000 records, has $(lines "$T/c.log")"

# ---- eval and sample
$LSTM eval --model "$T/a.st" --data $DATA --json > "$T/e.out" 2> "$T/e.err"
rc=$?  # taken at once: the message below runs commands of its own
check '[ $rc -eq 0 ] && tail -n 1 "$T/e.out" | grep -Eq "^\{\"loss\": [0-9.e+-]+, \"bpc\": [0-9.e+-]+, \"chars\": 376\}$"' \
    "eval --json: $(cat "$T/e.out" "$T/e.err")"
# one NaN weight (W_hh[0][0]) must give a NaN loss on every kernel, as in PyTorch
cp "$T/a.st" "$T/nan.st"
hl=$(od -An -tu8 -N8 "$T/nan.st" | tr -d ' ')
off=$(tail -c +9 "$T/nan.st" | head -c "$hl" | LC_ALL=C sed -n 's/.*"lstm\.weight_hh_l0":{[^}]*"data_offsets":\[\([0-9]*\),.*/\1/p')
printf '\000\000\300\177' | dd of="$T/nan.st" bs=1 seek=$((8 + hl + off)) conv=notrunc 2>/dev/null
for k in ref generic avx2 avx512; do
    out=$(LSTM_KERNEL=$k $LSTM eval --model "$T/nan.st" --data $DATA 2>&1)  # text: JSON writes NaN as null
    check 'echo "$out" | tail -n 1 | grep -Eq ": -?nan nats/char"' "eval of a model with a NaN weight, LSTM_KERNEL=$k: expected loss nan, got $out"
done
$LSTM sample --model "$T/a.st" --prime "The " --length 40 --temperature 0 > "$T/s1"
$LSTM sample --model "$T/a.st" --prime "The " --length 40 --temperature 0 > "$T/s2"
check '[ "$(head -c 4 "$T/s1")" = "The " ] && [ "$(wc -c < "$T/s1" | tr -d " ")" -eq 44 ] && cmp -s "$T/s1" "$T/s2"' \
    "greedy sample: expected the prime + 40 bytes, the same twice"
$LSTM sample --model "$T/a.st" --length 200 --temperature 1 --top-k 5 --seed 9 > "$T/s3"
rc=$?  # taken at once: the message below runs commands of its own
check '[ $rc -eq 0 ] && [ "$(wc -c < "$T/s3" | tr -d " ")" -eq 201 ]' "sampling with temperature and top-k"
$LSTM sample --model "$T/a.st" --prime "Zq#" --length 5 > /dev/null 2> "$T/p.err"
rc=$?  # taken at once: the message below runs commands of its own
check '[ $rc -eq 1 ] && [ "$(lines "$T/p.err")" -eq 1 ] && grep -q "byte 0x" "$T/p.err"' "prime outside the vocabulary: $(cat "$T/p.err")"

# ---- bad inputs: one-line errors, exit 1, no files written
expect_error() { # name, grep pattern, command...
    name=$1 pat=$2; shift 2
    rm -f "$T"/x.st*
    "$@" > /dev/null 2> "$T/x.err"
    rc=$?
    check '[ $rc -eq 1 ] && [ "$(lines "$T/x.err")" -eq 1 ] && grep -q "$pat" "$T/x.err" && [ -z "$(ls "$T" | grep "^x\.st")" ]' \
        "$name: expected one line matching '$pat', exit 1, no output files; got rc $rc: $(cat "$T/x.err")"
}
: > "$T/empty.txt"
expect_error "empty data" "empty" $LSTM train --data "$T/empty.txt" --out "$T/x.st" --steps 5
head -c 50 $DATA > "$T/short.txt"
expect_error "short data" "B\*T+1 = 65" $LSTM train --data "$T/short.txt" --batch 4 --bptt 16 --val-fraction 0 --out "$T/x.st" --steps 5
expect_error "short data after the validation split" "B\*T+1 = 129" $LSTM train --data "$T/short.txt" --out "$T/x.st" --batch 8 --bptt 16 --steps 5
{ cat $DATA; printf 'caf\303\251\n'; } > "$T/utf8.txt"
off=$(wc -c < $DATA | tr -d ' '); off=$((off + 3))
expect_error "byte outside the --init vocabulary" "byte 0xc3 at offset $off" \
    $LSTM train --init "$T/a.st" --data "$T/utf8.txt" --out "$T/x.st" --steps 5 --batch 2 --bptt 4
expect_error "unwritable --out directory" "cannot write" $LSTM train --data $DATA --out "$T/no/such/dir/x.st" --steps 5 --batch 2 --bptt 4
expect_error "missing data file" "cannot open" $LSTM train --data "$T/none.txt" --out "$T/x.st" --steps 5
expect_error "eval of a byte outside the vocabulary" "byte 0xc3" $LSTM eval --model "$T/a.st" --data "$T/utf8.txt"

# ---- a full destination: the write fails, the previous checkpoint stays intact
SMALL="--data $DATA --hidden 16 --layers 1 --embed 4 --batch 4 --bptt 8 --val-fraction 0 --seed 2"
$LSTM train $SMALL --steps 10 --out "$T/f.st" --checkpoint "$T/f.ckpt" 2> /dev/null
cp "$T/f.ckpt" "$T/f.ckpt.orig"
( ulimit -f 16; trap '' XFSZ; exec $LSTM train --resume "$T/f.ckpt" --steps 30 --checkpoint-every 5 ) 2> "$T/f.err"
rc=$?
check '[ $rc -eq 1 ] && grep -q "checkpoint not written" "$T/f.err" && cmp -s "$T/f.ckpt" "$T/f.ckpt.orig"' \
    "full destination: expected exit 1, a clear error and the previous checkpoint intact (rc $rc: $(tail -n 1 "$T/f.err"))"
check '[ -z "$(ls -A "$T" | grep -e "^f\.ckpt\.tmp" -e "^\.f\.ckpt\.lstm-tmp")" ]' "full destination: a temporary file was left behind: $(ls -A "$T" | grep tmp)"
check '[ "$(grep -c "^lstm:" "$T/f.err")" -eq 1 ] && tail -n 1 "$T/f.err" | grep -q "^lstm: checkpoint not written: .*f.ckpt: .*previous checkpoint is intact"' \
    "full destination: expected one error line naming the file, got $(cat "$T/f.err")"

# ---- a non-finite loss stops training, keeps the last good checkpoint
cp "$T/f.ckpt.orig" "$T/g.ckpt"
$LSTM train --resume "$T/g.ckpt" --out "$T/g.st" --optimizer sgd --lr 1e38 --clip 0 --momentum 0 --steps 100000 --checkpoint-every 0 2> "$T/g.err"
rc=$?
# (--optimizer differs from the checkpoint's adam: must be refused, state is not transferable)
check '[ $rc -ne 0 ] && grep -q "another optimizer" "$T/g.err"' "resume with another optimizer: $(tail -n 1 "$T/g.err")"
$LSTM train $SMALL --optimizer sgd --lr 1e38 --weight-decay 1 --clip 0 --momentum 0 --steps 100 --checkpoint-every 1 --out "$T/n.st" --checkpoint "$T/n.ckpt" 2> "$T/n.err"
rc=$?
check '[ $rc -eq 1 ] && grep -Eq "loss at step [0-9]+ is (inf|nan|-nan)" "$T/n.err" && grep -q "stopping; the last good checkpoint is .*n.ckpt (step [0-9]*)" "$T/n.err"' \
    "non-finite loss: expected exit 1 and a clear message (rc $rc: $(tail -n 1 "$T/n.err"))"
check '$LSTM sample --model "$T/n.ckpt" --length 3 > /dev/null 2>&1' "non-finite loss: the last checkpoint is not readable"
check '[ ! -f "$T/n.st" ]' "non-finite loss: a model was written from diverged weights"

echo "cli_train.sh: $pass passed, $fail failed"
[ $fail -eq 0 ]
