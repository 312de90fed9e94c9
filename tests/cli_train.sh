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

# wait until a run has logged N steps (a few checkpoints exist)
wait_steps() { # log, steps
    i=0
    while [ "$( (wc -l < "$1") 2>/dev/null || echo 0)" -lt "$2" ] && [ $i -lt 1000 ]; do sleep 0.01; i=$((i + 1)); done
}

# interrupted CELL P: the uninterrupted run ($T/Pa.st); a run killed with
# SIGKILL and one stopped with SIGINT (which saves), both resumed from their
# checkpoints with no flags, must end with the same bytes.
interrupted() {
    cell=$1 p=$2
    $LSTM train $FLAGS --cell $cell --out "$T/${p}a.st" --checkpoint "$T/${p}a.ckpt" 2> "$T/${p}a.err"
    rc=$?  # taken at once: the message below runs commands of its own
    check '[ $rc -eq 0 ] && [ -s "$T/${p}a.st" ] && grep -q "^model: $(echo $cell | tr a-z A-Z)," "$T/${p}a.err"' \
        "$cell: uninterrupted run failed: $(tail -n 1 "$T/${p}a.err")"

    # ---- kill -9 mid-run, then --resume (all flags come from the checkpoint)
    $LSTM train $FLAGS --cell $cell --out "$T/${p}b.st" --checkpoint "$T/${p}b.ckpt" --log "$T/${p}b.log" 2> "$T/${p}b.err" &
    pid=$!
    wait_steps "$T/${p}b.log" 300
    kill -9 $pid 2>/dev/null
    wait $pid 2>/dev/null
    rc=$?
    check '[ $rc -eq 137 ] && [ ! -f "$T/${p}b.st" ]' "$cell: the run was not killed mid-way (rc $rc; it finished before the kill?)"
    $LSTM train --resume "$T/${p}b.ckpt" 2> "$T/${p}b2.err"
    rc=$?  # taken at once: the message below runs commands of its own
    check '[ $rc -eq 0 ]' "$cell: resume failed: $(tail -n 1 "$T/${p}b2.err")"
    resumed_at=$(sed -n 's/^resuming .* at step \([0-9]*\).*/\1/p' "$T/${p}b2.err")
    check 'cmp -s "$T/${p}a.st" "$T/${p}b.st"' "$cell: killed at step ~$resumed_at and resumed: final weights differ from the uninterrupted run"
    echo "$cell: kill -9 at step ${resumed_at:-?} of 2000 (last checkpoint), resumed: final model file identical to the uninterrupted run's"

    # ---- Ctrl-C (SIGINT) saves a checkpoint and exits; resuming it finishes identically
    $LSTM train $FLAGS --cell $cell --out "$T/${p}c.st" --checkpoint "$T/${p}c.ckpt" --log "$T/${p}c.log" 2> "$T/${p}c.err" &
    pid=$!
    wait_steps "$T/${p}c.log" 300
    kill -INT $pid
    wait $pid
    rc=$?
    check '[ $rc -eq 130 ] && grep -q "interrupted at step" "$T/${p}c.err" && [ -s "$T/${p}c.st" ]' \
        "$cell: SIGINT: expected exit 130, a message and a saved model (rc $rc: $(tail -n 1 "$T/${p}c.err"))"
    int_at=$(sed -n 's/^interrupted at step \([0-9]*\).*/\1/p' "$T/${p}c.err")
    check '[ "$(tail -n 1 "$T/${p}c.log" | sed -n "s/.*\"step\":\([0-9]*\).*/\1/p")" = "$int_at" ]' "$cell: SIGINT: the log's last step is not the saved step $int_at"
    $LSTM train --resume "$T/${p}c.ckpt" 2> "$T/${p}c2.err"
    rc=$?  # taken at once: the message below runs commands of its own
    check '[ $rc -eq 0 ] && cmp -s "$T/${p}a.st" "$T/${p}c.st"' "$cell: SIGINT at step $int_at + resume: final weights differ from the uninterrupted run"
    check '[ "$(lines "$T/${p}c.log")" -eq 2000 ]' "$cell: resumed log should hold 2000 records, has $(lines "$T/${p}c.log")"
}
interrupted lstm ""
interrupted gru g

# ---- the GRU char model: nn.GRU names under "gru.", no carried c, the cell from the file
check 'grep -aq "\"gru.weight_hh_l1\"" "$T/ga.st" && ! grep -aq "\"lstm\." "$T/ga.st"' "GRU model file: expected gru.* tensor names"
check 'grep -aq "\"state.h\"" "$T/ga.ckpt" && ! grep -aq "\"state.c\"" "$T/ga.ckpt" && grep -aq "\"train.cell\":\"gru\"" "$T/ga.ckpt"' \
    "GRU checkpoint: expected state.h, no state.c, train.cell gru"
check '! cmp -s "$T/a.st" "$T/ga.st"' "the GRU and LSTM runs wrote the same file"
$LSTM eval --model "$T/ga.st" --data $DATA --json > "$T/ge.out" 2> "$T/ge.err"
rc=$?
check '[ $rc -eq 0 ] && grep -Eq "^\{\"loss\": [0-9.e+-]+, \"bpc\": [0-9.e+-]+, \"chars\": 376\}$" "$T/ge.out"' "GRU eval --json: $(cat "$T/ge.out" "$T/ge.err")"
$LSTM sample --model "$T/ga.st" --prime "The " --length 40 --temperature 0 > "$T/gs1" 2> "$T/gs.err"
rc=$?
check '[ $rc -eq 0 ] && [ "$(wc -c < "$T/gs1" | tr -d " ")" -eq 44 ]' "GRU sample: rc $rc, $(cat "$T/gs.err")"
$LSTM train --init "$T/ga.st" --data $DATA --steps 3 --batch 2 --bptt 4 --out "$T/gi.st" 2> "$T/gi.err"
rc=$?
check '[ $rc -eq 0 ] && grep -q "^model: GRU," "$T/gi.err"' "--init with a GRU model: the cell comes from the file: rc $rc, $(tail -n 1 "$T/gi.err")"
usage_error() { # name, grep pattern, command...
    name=$1 pat=$2; shift 2
    "$@" > /dev/null 2> "$T/u.err"
    rc=$?
    check '[ $rc -eq 2 ] && [ "$(lines "$T/u.err")" -eq 1 ] && grep -q -e "$pat" "$T/u.err"' "$name: expected usage error (2) matching '$pat', got rc $rc: $(cat "$T/u.err")"
}
usage_error "--cell gru --proj 4" "a GRU has no projection" $LSTM train --data $DATA --cell gru --proj 4 --out "$T/u.st"
usage_error "--cell rnn" "--cell: expected lstm or gru, got 'rnn'" $LSTM train --data $DATA --cell rnn --out "$T/u.st"
usage_error "--resume a GRU run with --cell lstm" "--cell lstm conflicts with .*ga.ckpt, which holds a GRU model" \
    $LSTM train --resume "$T/ga.ckpt" --cell lstm --steps 2100
usage_error "--init an LSTM model with --cell gru" "--cell gru conflicts with .*a.st, which holds an LSTM model" \
    $LSTM train --init "$T/a.st" --cell gru --data $DATA --out "$T/u.st"
usage_error "--init a model with another --hidden" "--hidden 40 conflicts with .*a.st, which has [0-9]" \
    $LSTM train --init "$T/a.st" --hidden 40 --data $DATA --out "$T/u.st"
usage_error "--resume a run with another --layers" "--layers 3 conflicts with .*ga.ckpt, which has [0-9]" \
    $LSTM train --resume "$T/ga.ckpt" --layers 3 --steps 2100

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
# --threads: the same bytes for every count, and for the default (0: the library's choice, which
# LSTM_CPU_L2=1, an L2 no model fits in, turns to the CPUs)
for th in "--threads 1" "--threads 3" "--threads 0" ""; do
    LSTM_CPU_L2=1 $LSTM sample --model "$T/a.st" --length 200 --temperature 1 --top-k 5 --seed 9 $th > "$T/s4"
    rc=$?  # taken at once: the message below runs commands of its own
    check '[ $rc -eq 0 ] && cmp -s "$T/s3" "$T/s4"' "sample ${th:-(no --threads)}: rc $rc, the bytes of the first run"
done
usage_error "sample --threads -1" "--threads" $LSTM sample --model "$T/a.st" --threads -1
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
# a validation fraction above 0 whose part rounds down to 0 bytes (377 x 0.002) is too small, as
# one of 1 byte is (0.005); it trained without validation and said nothing
for vf in 0.002 0.005; do
    expect_error "--val-fraction $vf of $(wc -c < $DATA | tr -d ' ') bytes" "the validation part has [01] bytes; it needs at least B+1 = 5" \
        $LSTM train --data $DATA --val-fraction $vf --batch 4 --bptt 8 --out "$T/x.st" --steps 5
done
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
# (greedy: its weights can be large enough that the logits overflow, and a draw
# from non-finite logits is refused, as torch.multinomial refuses it)
check '$LSTM sample --model "$T/n.ckpt" --length 3 --temperature 0 > /dev/null 2>&1' "non-finite loss: the last checkpoint is not readable"
check '[ ! -f "$T/n.st" ]' "non-finite loss: a model was written from diverged weights"

# a validation loss that overflows is logged as null (JSON has no inf or nan): the log stays JSON
$LSTM train --data $DATA --hidden 8 --layers 1 --embed 4 --batch 2 --bptt 8 --steps 5 --lr 1e30 --eval-every 1 --val-fraction 0.2 --log "$T/v.jsonl" --out "$T/v.st" 2> "$T/v.err"
check 'grep -q "\"val_loss\":null" "$T/v.jsonl" && ! grep -Eqi "inf|nan" "$T/v.jsonl" && { [ ! -x /usr/bin/python3 ] || /usr/bin/python3 -c "import json, sys; [json.loads(l) for l in open(sys.argv[1])]" "$T/v.jsonl"; }' \
    "a non-finite validation loss made the log invalid JSON: $(head -n 2 "$T/v.jsonl") $(tail -n 1 "$T/v.err")"

# The default thread count (and --threads 0's): the cores this process may run on (the CPUs
# of its affinity, with SMT siblings once), at most 8; one under taskset -c 0.  (nproc is not
# the affinity: OMP_NUM_THREADS and cgroup quotas move it.)
threads_line() { "$@" --data $DATA --hidden 8 --layers 1 --embed 4 --batch 2 --bptt 4 --steps 1 --out "$T/th.st" 2>&1 | grep "^model: "; }
# (sched_getaffinity where Python is, which leaves out offline CPUs; else Cpus_allowed_list)
n=$(/usr/bin/python3 -c 'import os; print(len(os.sched_getaffinity(0)))' 2> /dev/null ||
    awk '/^Cpus_allowed_list:/ { n = 0; k = split($2, a, ","); for (i = 1; i <= k; i++) n += split(a[i], r, "-") == 2 ? r[2] - r[1] + 1 : 1; print n }' /proc/self/status 2> /dev/null)
[ -n "$n" ] || n=$(getconf _NPROCESSORS_ONLN)
[ "$n" -gt 8 ] && n=8
smt=0
for f in /sys/devices/system/cpu/cpu[0-9]*/topology/thread_siblings_list; do
    [ -r "$f" ] && case $(cat "$f") in *[,-]*) smt=1 ;; esac
done
if [ $smt = 0 ]; then # no SMT: a core per CPU
    want="$n threads"; [ "$n" -eq 1 ] && want="1 thread"
    check 'threads_line $LSTM train | grep -q ", $want\$"' "default threads: expected '$want', got: $(threads_line $LSTM train)"
    check 'threads_line $LSTM train --threads 0 | grep -q ", $want\$"' "--threads 0: expected '$want', got: $(threads_line $LSTM train --threads 0)"
else # SMT: between 1 and the CPUs
    check 'k=$(threads_line $LSTM train | sed -n "s/.*, \([0-9]*\) threads*\$/\1/p"); [ -n "$k" ] && [ "$k" -ge 1 ] && [ "$k" -le "$n" ]' \
        "default threads with SMT: expected 1..$n, got: $(threads_line $LSTM train)"
fi
if command -v taskset > /dev/null && taskset -c 0 true 2> /dev/null; then
    check 'threads_line taskset -c 0 $LSTM train | grep -q ", 1 thread\$"' \
        "taskset -c 0: expected 1 thread, got: $(threads_line taskset -c 0 $LSTM train)"
else
    echo "skip taskset: not here (the affinity case untested)"
fi
check 'threads_line $LSTM train --threads 3 | grep -q ", 3 threads\$"' "--threads 3: $(threads_line $LSTM train --threads 3)"

echo "cli_train.sh: $pass passed, $fail failed"
[ $fail -eq 0 ]
