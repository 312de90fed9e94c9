#!/bin/sh
# cli_mpi.sh — data-parallel training over Open MPI (make test-mpi; not part of
# make test): 2 and 4 ranks write the same bytes as one process (model,
# checkpoint, log without its timing fields), for the LSTM and the GRU char
# model (the GRU also resumed across rank counts); rank 0 alone samples (--sample),
# printing one process's sample; a NaN loss gives one process's
# message; ranks started with other flags, data, --init or --resume files stop
# with one line naming it; a failure on rank 1 alone prints its line; a batch
# the ranks do not divide is a usage error; SIGTERM to mpirun or to the ranks saves a checkpoint and
# every rank exits 130; every command but train is refused on 2 ranks (one line,
# exit 2) and runs on 1, --help and --version print once and exit 0; a log on a
# full device stops every rank with a
# checkpoint; a rank killed with SIGKILL ends the job within seconds and the
# last checkpoint resumes (with 1 or 4 processes) to the same bytes as
# a run never interrupted.  Skips, saying so, only when mpirun is absent.
BUILD=${BUILD:-build}
if ! command -v mpirun >/dev/null 2>&1 || ! command -v mpicc >/dev/null 2>&1; then
    echo "cli_mpi.sh: skipped: mpirun/mpicc not found (install openmpi-bin libopenmpi-dev)"
    echo "cli_mpi.sh: 0 passed, 0 failed (skipped)"
    exit 0
fi
make -s BUILD="$BUILD" all mpi >/dev/null || { echo "FAIL make mpi"; echo "cli_mpi.sh: 0 passed, 1 failed"; exit 1; }
ROOT=$(pwd)
LSTM="$ROOT/$BUILD/lstm" LMPI="$ROOT/$BUILD/lstm-mpi"
DATA="$ROOT/tests/fixtures/train/data.txt"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
MPIRUN="mpirun --oversubscribe"
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }
check() { if eval "$1"; then ok; else bad "$2"; fi; }
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
untimed() { sed -E 's/,"tokens_per_s":[^,}]*//; s/,"time":[^,}]*//' "$1"; }
same_log() { untimed "$1" > "$T/l1"; untimed "$2" > "$T/l2"; cmp -s "$T/l1" "$T/l2"; }
wait_steps() { # log, steps
    i=0
    while [ "$( (wc -l < "$1") 2>/dev/null || echo 0)" -lt "$2" ] && [ $i -lt 3000 ]; do sleep 0.01; i=$((i + 1)); done
}
run_in() { d=$1; shift; mkdir -p "$T/$d" && (cd "$T/$d" && "$@"); }

# same_on_ranks TAG LABEL FLAGS...: one process (2 threads), then 2 ranks x 2 threads and 4 ranks
# x 1 thread into $T/TAG1, TAG2, TAG4: model, checkpoint and log must equal one process's.
same_on_ranks() {
    tag=$1 label=$2; shift 2
    run_in ${tag}1 "$LSTM" train "$@" --threads 2 --out m.st --log m.log 2> "$T/${tag}1.err" ||
        bad "${label}1 process: $(tail -n 1 "$T/${tag}1.err")"
    for n in 2 4; do
        th=1; [ $n -eq 2 ] && th=2
        run_in $tag$n $MPIRUN -np $n "$LMPI" train "$@" --threads $th --out m.st --log m.log > "$T/$tag$n.err" 2>&1
        rc=$?
        check '[ $rc -eq 0 ]' "$label$n ranks: exit $rc: $(tail -n 3 "$T/$tag$n.err")"
        check 'cmp -s "$T/${tag}1/m.st" "$T/$tag$n/m.st"' "$label$n ranks: the model file differs from one process's"
        check 'cmp -s "$T/${tag}1/m.st.ckpt" "$T/$tag$n/m.st.ckpt"' "$label$n ranks: the checkpoint differs from one process's"
        check 'same_log "$T/${tag}1/m.log" "$T/$tag$n/m.log"' "$label$n ranks: the log (losses, norms, validation) differs from one process's"
    done
}

# ---- 1, 2 and 4 processes: the same bytes (dropout, projection, 2 layers, validation, threads)
F="--data $DATA --hidden 24 --layers 2 --embed 8 --proj 12 --dropout 0.2 --batch 8 --bptt 8 --steps 60 --eval-every 20 --checkpoint-every 25 --seed 5"
same_on_ranks p "" $F
check '[ "$(grep -c val_loss "$T/p1/m.log")" -eq 3 ]' "the logs should hold 3 validation losses"
echo "1, 2 and 4 processes: model, checkpoint and log identical"

# ---- --keep best and --patience decide the same on every rank: the same file as one process
K="--data $DATA --hidden 16 --embed 8 --batch 4 --bptt 8 --steps 400 --eval-every 20 --checkpoint-every 0 --lr 0.05 --seed 2 --threads 1 --keep best --patience 3"
run_in kb1 "$LSTM" train $K --out m.st --log m.log 2> "$T/kb1.err" || bad "--keep best, 1 process: $(tail -n 1 "$T/kb1.err")"
run_in kb2 $MPIRUN -np 2 "$LMPI" train $K --out m.st --log m.log > "$T/kb2.err" 2>&1
rc=$?
check '[ $rc -eq 0 ] && cmp -s "$T/kb1/m.st" "$T/kb2/m.st" && same_log "$T/kb1/m.log" "$T/kb2/m.log"' \
    "--keep best --patience 3: 2 ranks wrote another file or log than one process (rc $rc)"

# ---- --sample: rank 0 alone samples, and prints one process's sample.  Before, every rank sampled
# and threw it away (the job's end waited for the slowest), and with --keep best each read the
# --out file that rank 0 alone writes: rank 1 with its --out in a directory of its own (ranks on
# nodes without a shared directory) stopped with "lstm: rank 1 of 2: r1/m.st: cannot open", exit 1.
S="--data $DATA --hidden 16 --embed 8 --batch 4 --bptt 8 --steps 40 --eval-every 10 --lr 0.05 --seed 3 --threads 1 --keep best --sample 300"
run_in s1 "$LSTM" train $S --out m.st > "$T/s1.out" 2> "$T/s1.err" || bad "--sample, 1 process: $(tail -n 1 "$T/s1.err")"
mkdir -p "$T/s2/r1"
run_in s2 $MPIRUN -np 1 "$LMPI" train $S --out m.st : -np 1 "$LMPI" train $S --out r1/m.st > "$T/s2.out" 2> "$T/s2.err"
rc=$?
check '[ $rc -eq 0 ] && [ "$(wc -c < "$T/s1.out")" -eq 301 ] && cmp -s "$T/s1.out" "$T/s2.out" && [ -z "$(ls "$T/s2/r1")" ]' \
    "--sample 300 --keep best, rank 1's --out elsewhere: expected exit 0 and one process's sample on stdout, rank 1 never sampling (rc $rc: $(grep "^lstm" "$T/s2.err" | head -n 2))"
echo "--sample: rank 0 alone samples; the sample is one process's"

# ---- a log on a full device: every rank stops at the first lost record, rank 0's checkpoint resumes
if [ -w /dev/full ]; then
    run_in lf $MPIRUN -np 2 "$LMPI" train $F --threads 1 --out m.st --log /dev/full > "$T/lf.err" 2>&1
    rc=$?
    check '[ $rc -eq 1 ] && [ "$(grep -c "writing the log failed at step 1: No space left on device; stopped with a checkpoint" "$T/lf.err")" -eq 1 ] && [ -s "$T/lf/m.st.ckpt" ] && [ ! -e "$T/lf/m.st" ]' \
        "--log /dev/full on 2 ranks: expected exit 1, one message and a checkpoint (rc $rc: $(tail -n 3 "$T/lf.err"))"
    run_in lf "$LSTM" train --resume m.st.ckpt --out m.st --threads 1 2> "$T/lf2.err" || bad "resume after the log failed: $(tail -n 1 "$T/lf2.err")"
    check 'cmp -s "$T/p1/m.st" "$T/lf/m.st"' "2 ranks stopped by a full log, resumed by 1 process: another model than a run never stopped"
fi

# ---- a loss that is NaN on some streams: the same message as one process ("nan", not "inf": MPI_MAX
# does not keep a NaN, so the ranks must not reduce the loss's NaN-ness as a float)
N="--data $DATA --hidden 16 --layers 1 --embed 8 --batch 4 --bptt 8 --steps 20 --threads 1 --clip 0 --lr 1e38"
run_in nan1 "$LSTM" train $N --out m.st 2> "$T/nan1.err"
rc1=$?
run_in nan2 $MPIRUN -np 2 "$LMPI" train $N --out m.st > "$T/nan2.err" 2>&1
rc=$?
check '[ $rc1 -eq 1 ] && [ $rc -eq 1 ] && grep -q "the loss at step 2 is nan" "$T/nan1.err" && [ "$(grep "^lstm:" "$T/nan2.err")" = "$(grep "^lstm:" "$T/nan1.err")" ]' \
    "a NaN loss: 2 ranks gave another message than one process (rc $rc1, $rc): $(grep "^lstm:" "$T/nan1.err") / $(grep "^lstm:" "$T/nan2.err")"

# ---- ranks started unlike (mpirun -np 1 A : -np 1 B): before any step, one line naming what differs,
# exit 1, no file written.  Before, they trained apart (another --seed: each rank its own weights,
# rank 0's written as if all was well) or met in different collectives (--eval-every: an Open MPI
# error, or a hang).
M="--data $DATA --hidden 16 --layers 1 --embed 8 --batch 4 --bptt 8 --threads 1 --eval-every 5"
tr 'ae' 'ea' < "$DATA" > "$T/data2.txt" # the same bytes in another order: the same vocabulary
cp "$DATA" "$T/dcopy.txt"
for i in 1 2; do
    "$LSTM" train $M --steps 1 --seed $((i + 2)) --out "$T/i$i.st" 2> /dev/null || bad "--init file $i not written"
    run_in uc$i "$LSTM" train $M --steps $((20 * i)) --checkpoint-every 20 --out m.st 2> /dev/null || bad "checkpoint $i not written"
done
unlike() { # TAG "what differs" "rank 0's flags" "rank 1's flags"
    u=u$1 what=$2
    run_in $u timeout 120 $MPIRUN -np 1 "$LMPI" train $3 --out m.st : -np 1 "$LMPI" train $4 --out m.st > "$T/$u.err" 2>&1
    rc=$?
    check '[ $rc -eq 1 ] && [ "$(grep -c "^lstm: the 2 processes were not started alike: their $what.* differs" "$T/$u.err")" -eq 1 ] && [ "$(grep -c "^lstm" "$T/$u.err")" -eq 1 ] && [ -z "$(ls "$T/$u")" ]' \
        "ranks with another $what: expected exit 1, one line naming it and no file (rc $rc: $(grep -v "^step" "$T/$u.err" | head -n 3))"
}
unlike ev "--eval-every" "$M --steps 20" "$M --steps 20 --eval-every 7"
unlike sd "--seed" "$M --steps 20" "$M --steps 20 --seed 2"
unlike pt "--patience" "$M --steps 20" "$M --steps 20 --patience 1"
unlike da "--data" "$M --steps 20" "$M --steps 20 --data $T/data2.txt"
unlike in "--init" "$M --steps 20 --init $T/i1.st" "$M --steps 20 --init $T/i2.st"
# (sizes differing were named "--init model" with no --init given)
unlike hd "model size (--hidden, --layers, --embed or --proj)" "$M --steps 20" "$M --steps 20 --hidden 12"
unlike em "model size (--hidden, --layers, --embed or --proj)" "$M --steps 20" "$M --steps 20 --embed 6"
unlike rs "--resume" "--resume $T/uc1/m.st.ckpt --steps 60" "--resume $T/uc2/m.st.ckpt --steps 60"
# what may differ: --threads, the path of the data (the same bytes), --time (stopping is decided together)
run_in ua timeout 120 $MPIRUN -np 1 "$LMPI" train $M --steps 20 --out m.st : -np 1 "$LMPI" train $M --steps 20 --out m.st --threads 2 --data "$T/dcopy.txt" --time 1000 > "$T/ua.err" 2>&1
rc=$?
run_in ua1 "$LSTM" train $M --steps 20 --out m.st 2> /dev/null
check '[ $rc -eq 0 ] && cmp -s "$T/ua/m.st" "$T/ua1/m.st"' "ranks with other --threads, --data path (same bytes), --time: expected the model of one process (rc $rc: $(tail -n 2 "$T/ua.err"))"
echo "ranks started unlike: one line naming what differs, no file written"

# ---- a failure on one rank only (its data file missing): its one line reaches the job's stderr, naming
# the rank and the file (the other ranks' stderr is /dev/null, so it was lost: only mpirun's banner);
# the same failure on every rank: one line (rank 0's)
run_in f1 timeout 120 $MPIRUN -np 1 "$LMPI" train $M --steps 20 --out m.st : -np 1 "$LMPI" train $M --steps 20 --out m.st --data "$T/absent.txt" > "$T/f1.err" 2>&1
rc=$?
check '[ $rc -eq 1 ] && [ "$(grep -c "^lstm: rank 1 of 2: .*absent.txt" "$T/f1.err")" -eq 1 ] && [ "$(grep -c "^lstm" "$T/f1.err")" -eq 1 ] && [ ! -e "$T/f1/m.st" ]' \
    "rank 1's data missing: expected exit 1 and one line from rank 1 naming the file (rc $rc: $(grep -v "^step" "$T/f1.err" | head -n 3))"
run_in f2 timeout 120 $MPIRUN -np 4 "$LMPI" train $M --steps 20 --out m.st --data "$T/absent.txt" > "$T/f2.err" 2>&1
rc=$?
check '[ $rc -eq 1 ] && [ "$(grep -c "^lstm: .*absent.txt" "$T/f2.err")" -eq 1 ] && [ "$(grep -c "^lstm" "$T/f2.err")" -eq 1 ]' \
    "every rank's data missing: expected exit 1 and one line (rc $rc: $(grep "^lstm" "$T/f2.err" | head -n 4))"
echo "a failure on rank 1 alone: its line reaches the job's stderr; on every rank: one line"

# ---- a batch the ranks do not divide: one line, exit 2
run_in p3 $MPIRUN -np 3 "$LMPI" train $F --out m.st > "$T/p3.err" 2>&1
rc=$?
check '[ $rc -eq 2 ] && [ "$(grep -c "not divisible" "$T/p3.err")" -eq 1 ] && [ ! -f "$T/p3/m.st" ]' \
    "3 ranks, batch 8: expected exit 2 and one error line, got rc $rc: $(grep lstm "$T/p3.err" | head -n 3)"

# ---- every command but train: refused under mpirun with more than one process (one line, exit 2, no
# file); with -np 1 (or without mpirun) it runs as build/lstm does.  Before, each ran in full on every
# rank, all writing the same --output.
# x.npy: float32, shape (1, 1, 1), zeros (a .npy v1.0 header of 64 bytes) for lstm_tiny's I = 1
h="{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1), }"
while [ $(( (10 + ${#h} + 1) % 64 )) -ne 0 ]; do h="$h "; done
{ printf '\223NUMPY\001\000'; printf "\\$(printf %03o $((${#h} + 1)))\\000"; printf '%s\n' "$h"; head -c 4 /dev/zero; } > "$T/x.npy"
FW="forward --model $ROOT/tests/fixtures/lstm_tiny.safetensors --prefix model. --input $T/x.npy --output y.npy"
run_in fw1 "$LSTM" $FW 2> "$T/fw1.err" || bad "forward, build/lstm: $(tail -n 1 "$T/fw1.err")"
run_in fw2 $MPIRUN -np 2 "$LMPI" $FW > "$T/fw2.err" 2>&1
rc=$?
check '[ $rc -eq 2 ] && [ "$(grep -c "^lstm forward: only '"'train'"' is distributed over MPI processes (2 here); run forward without mpirun" "$T/fw2.err")" -eq 1 ] && [ "$(grep -c "^lstm" "$T/fw2.err")" -eq 1 ] && [ ! -e "$T/fw2/y.npy" ]' \
    "forward on 2 ranks: expected exit 2, one line saying only train is distributed, no file (rc $rc: $(grep -v "^ \|^-" "$T/fw2.err" | head -n 3))"
for c in grad info eval sample bench; do
    run_in rf $MPIRUN -np 2 "$LMPI" $c > "$T/rf.err" 2>&1
    rc=$?
    check '[ $rc -eq 2 ] && [ "$(grep -c "^lstm $c: only '"'train'"' is distributed" "$T/rf.err")" -eq 1 ] && [ "$(grep -c "^lstm" "$T/rf.err")" -eq 1 ]' \
        "$c on 2 ranks: expected exit 2 and one line (rc $rc: $(grep "^lstm" "$T/rf.err" | head -n 2))"
done
run_in fwm $MPIRUN -np 1 "$LMPI" $FW > "$T/fwm.err" 2>&1
rc=$?
check '[ $rc -eq 0 ] && cmp -s "$T/fw1/y.npy" "$T/fwm/y.npy"' "forward with mpirun -np 1: expected build/lstm's output (rc $rc: $(tail -n 2 "$T/fwm.err"))"
run_in fws "$LMPI" $FW 2> "$T/fws.err"
rc=$?
check '[ $rc -eq 0 ] && cmp -s "$T/fw1/y.npy" "$T/fws/y.npy"' "forward with lstm-mpi, no mpirun: expected build/lstm's output (rc $rc: $(tail -n 2 "$T/fws.err"))"
check '"$LMPI" --help 2> /dev/null | grep -q "only '"'train'"' runs" && ! "$LSTM" --help | grep -q mpirun' \
    "lstm-mpi --help should say that only train runs under mpirun (and lstm --help not)"
# --help and --version on 2 ranks: printed once, exit 0 (they returned without MPI_Finalize: mpirun
# reported an abnormal end, exit 1, and a 20-line banner)
for o in --help --version; do
    run_in rf $MPIRUN -np 2 "$LMPI" $o > "$T/rf.out" 2> "$T/rf.err"
    rc=$?
    "$LMPI" $o > "$T/rf1.out" 2> /dev/null
    check '[ $rc -eq 0 ] && cmp -s "$T/rf.out" "$T/rf1.out" && ! grep -q "exiting improperly" "$T/rf.err"' \
        "lstm-mpi $o on 2 ranks: expected exit 0 and the text once (rc $rc: $(grep -m 1 . "$T/rf.err"))"
done
echo "forward, grad, info, eval, sample, bench on 2 ranks: one line, exit 2; on 1: as build/lstm"

# ---- a GRU char model: 1, 2 and 4 processes, the same bytes; 4 ranks stopped at step 30, 2 ranks resume
GF="--data $DATA --cell gru --hidden 24 --layers 2 --embed 8 --dropout 0.2 --batch 8 --bptt 8 --eval-every 20 --checkpoint-every 25 --seed 5"
same_on_ranks g "GRU, " $GF --steps 60
check '[ "$(grep -c val_loss "$T/g1/m.log")" -eq 3 ] && ! cmp -s "$T/g1/m.st" "$T/p1/m.st"' \
    "GRU: the log should hold 3 validation losses, and the model differ from the LSTM's"
run_in gr $MPIRUN -np 4 "$LMPI" train $GF --steps 30 --threads 1 --out m.st --log m.log > "$T/gr.err" 2>&1 &&
    run_in gr $MPIRUN -np 2 "$LMPI" train --resume m.st.ckpt --steps 60 --threads 1 > "$T/gr2.err" 2>&1
rc=$?
tail -n 30 "$T/g1/m.log" > "$T/g1.tail"; tail -n 30 "$T/gr/m.log" > "$T/gr.tail"
check '[ $rc -eq 0 ] && cmp -s "$T/g1/m.st" "$T/gr/m.st" && cmp -s "$T/g1/m.st.ckpt" "$T/gr/m.st.ckpt" && same_log "$T/g1.tail" "$T/gr.tail"' \
    "GRU: 30 steps on 4 ranks, resumed to 60 on 2: another model, checkpoint or log (steps 31-60) than one process's (rc $rc: $(tail -n 1 "$T/gr2.err"))"
echo "GRU: 1, 2 and 4 processes, and 4 then 2 resumed: model, checkpoint and log identical"

# ---- the reference for the fault tests: one process, never interrupted
# Long enough that a signal sent after the first few thousand steps still finds the run going on a
# quiet machine (about 10k steps/s on Zen 5: 1500 steps were over before the signal arrived).
STEPS=30000 EVAL=5000
G="--data $DATA --hidden 16 --layers 2 --embed 8 --dropout 0.1 --batch 4 --bptt 8 --steps $STEPS --eval-every $EVAL --checkpoint-every 400 --seed 7 --threads 1"
run_in ref "$LSTM" train $G --out m.st --log m.log 2> "$T/ref.err" || bad "reference run: $(tail -n 1 "$T/ref.err")"

# ---- SIGTERM to mpirun: the ranks save the checkpoint; one process resumes it to the same bytes
mkdir -p "$T/t1"
(cd "$T/t1" && exec $MPIRUN -np 2 "$LMPI" train $G --out m.st --log m.log > "$T/t1.err" 2>&1) &
pid=$!
wait_steps "$T/t1/m.log" 2000
kill -TERM $pid
wait $pid
rc=$?
at=$(sed -n 's/^interrupted at step \([0-9]*\).*/\1/p' "$T/t1.err")
check '[ $rc -ne 0 ] && [ -n "$at" ] && [ "$at" -lt $STEPS ] && [ -s "$T/t1/m.st.ckpt" ]' \
    "SIGTERM to mpirun: expected a saved checkpoint and 'interrupted at step' (rc $rc: $(tail -n 2 "$T/t1.err"))"
run_in t1 "$LSTM" train --resume m.st.ckpt 2> "$T/t1r.err"
rc=$?
check '[ $rc -eq 0 ] && cmp -s "$T/ref/m.st" "$T/t1/m.st"' \
    "SIGTERM to mpirun at step $at, resumed by one process: the model differs from the uninterrupted run's (rc $rc)"
# the interrupted step was also evaluated (as the last step of that run): drop that one val_loss
[ $(( ${at:-1} % EVAL )) -ne 0 ] && sed -i "${at:-0}s/,\"val_loss\":[^,}]*//" "$T/t1/m.log"
check 'same_log "$T/ref/m.log" "$T/t1/m.log"' "SIGTERM + resume: the log differs from the uninterrupted run's"
echo "SIGTERM to mpirun (2 ranks) at step ${at:-?}, resumed by 1 process: same model and log"

# ---- SIGTERM to every rank (as a batch scheduler does): each exits 130; 4 ranks resume it
mkdir -p "$T/t2"
(cd "$T/t2" && exec $MPIRUN -np 2 "$LMPI" train $G --out m.st --log m.log > "$T/t2.err" 2>&1) &
pid=$!
wait_steps "$T/t2/m.log" 2000
kill -TERM $(pgrep -P $pid) 2>/dev/null
wait $pid
rc=$?
at=$(sed -n 's/^interrupted at step \([0-9]*\).*/\1/p' "$T/t2.err")
check '[ $rc -eq 130 ] && [ -n "$at" ] && [ -s "$T/t2/m.st.ckpt" ]' \
    "SIGTERM to the ranks: expected exit 130 and a saved checkpoint (rc $rc: $(grep -v '^step' "$T/t2.err" | tail -n 3))"
run_in t2 $MPIRUN -np 4 "$LMPI" train --resume m.st.ckpt > "$T/t2r.err" 2>&1
rc=$?
check '[ $rc -eq 0 ] && cmp -s "$T/ref/m.st" "$T/t2/m.st"' \
    "SIGTERM to the ranks at step $at, resumed by 4 ranks: the model differs from the uninterrupted run's (rc $rc)"
echo "SIGTERM to the 2 ranks at step ${at:-?}: exit 130; resumed by 4 ranks: same model"

# ---- SIGKILL of one rank: the job ends within seconds; the last checkpoint resumes to the same bytes
mkdir -p "$T/k"
(cd "$T/k" && exec $MPIRUN -np 2 "$LMPI" train $G --out m.st --log m.log > "$T/k.err" 2>&1) &
pid=$!
wait_steps "$T/k/m.log" 3000
victim=$(pgrep -P $pid | tail -n 1)
t0=$(date +%s)
kill -9 $victim
i=0
while kill -0 $pid 2>/dev/null && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
if kill -0 $pid 2>/dev/null; then
    bad "SIGKILL of a rank: the job still runs after 30 s"
    kill -9 $pid $(pgrep -P $pid) 2>/dev/null
fi
wait $pid
rc=$?
secs=$(( $(date +%s) - t0 ))
check '[ $rc -ne 0 ] && [ ! -f "$T/k/m.st" ] && [ -s "$T/k/m.st.ckpt" ]' \
    "SIGKILL of a rank: expected a non-zero exit, no model, the checkpoint kept (rc $rc)"
run_in k "$LSTM" train --resume m.st.ckpt 2> "$T/kr.err"
rc=$?
check '[ $rc -eq 0 ] && cmp -s "$T/ref/m.st" "$T/k/m.st"' \
    "SIGKILL of a rank, resumed from the last checkpoint: the model differs from the uninterrupted run's (rc $rc: $(tail -n 1 "$T/kr.err"))"
echo "SIGKILL of rank $victim: job ended in ${secs} s with a non-zero status; resumed: same model"

# a --log given to rank 0 alone (destinations may differ between ranks): the job trains as with it
# everywhere (every rank takes part in the check of a lost log record)
F1="--data $DATA --hidden 16 --layers 1 --embed 8 --batch 4 --bptt 8 --threads 1 --eval-every 5 --steps 40"
run_in lg $MPIRUN -np 1 "$LMPI" train $F1 --out m.st --log m.log : -np 1 "$LMPI" train $F1 --out m.st > "$T/lg.err" 2>&1
rc=$?
check '[ $rc -eq 0 ] && [ "$(wc -l < "$T/lg/m.log")" -eq 40 ] && [ -s "$T/lg/m.st" ]' "--log on rank 0 alone: rc $rc, $(tail -n 2 "$T/lg.err")"
# rank 1's data file made shorter while training: its line reaches the job's stderr
head -c 400000 /dev/urandom | od -An -tx1 | tr -d ' \n' | head -c 800000 > "$T/d0.txt"
cp "$T/d0.txt" "$T/d1.txt"
F2="--hidden 16 --embed 8 --batch 8 --bptt 32 --threads 1 --steps 100000 --checkpoint-every 20 --eval-every 0 --val-fraction 0"
run_in sb $MPIRUN -np 1 "$LMPI" train $F2 --data "$T/d0.txt" --out m.st --log m.log : -np 1 "$LMPI" train $F2 --data "$T/d1.txt" --out m.st > "$T/sb.err" 2>&1 &
pid=$!
wait_steps "$T/sb/m.log" 50
: > "$T/d1.txt"
wait $pid
rc=$?
check '[ $rc -ne 0 ] && grep -q "^lstm: rank 1 of 2: .*d1.txt: the data file became shorter while training" "$T/sb.err"' \
    "rank 1's data made shorter: expected its line on the job's stderr, rc $rc: $(tail -n 3 "$T/sb.err")"

# ---- the default thread count under MPI: at most each rank's share of the cores its machine's
# ranks may run on, so that ranks mpirun did not bind (4 on 2 cores, oversubscribed; 2 with
# --bind-to none) do not each take every core.  Rank 0's header line names its count.
cores=$(awk '/^Cpus_allowed_list:/ { n = 0; k = split($2, a, ","); for (i = 1; i <= k; i++) n += split(a[i], r, "-") == 2 ? r[2] - r[1] + 1 : 1; print n }' /proc/self/status 2> /dev/null)
D="--data $DATA --hidden 8 --embed 4 --batch 4 --bptt 4 --steps 1 --eval-every 0 --checkpoint-every 0"
for spec in "4" "2 --bind-to none"; do
    set -- $spec
    np=$1; shift
    run_in th$np $MPIRUN "$@" -np $np "$LMPI" train $D --out m.st > "$T/th$np.err" 2>&1
    rc=$?
    k=$(sed -n 's/^model: .*, \([0-9]*\) threads*$/\1/p' "$T/th$np.err")
    want=$(( ${cores:-1} / np )); [ $want -lt 1 ] && want=1 # (at most: SMT siblings count once)
    check '[ $rc -eq 0 ] && [ -n "$k" ] && [ "$k" -ge 1 ] && [ "$k" -le $want ]' \
        "$np ranks ($spec) on $cores CPUs: expected 1..$want thread(s) each, got '$k' (rc $rc): $(grep -m1 "^model:" "$T/th$np.err")"
done
# the whole job held to CPUs 0 and 1 (as a container's cpuset would): 2 unbound ranks, 1 thread
# each on any machine (the old rule gave each all the CPUs it may use)
if taskset -c 0,1 true 2> /dev/null; then
    run_in thts taskset -c 0,1 $MPIRUN --bind-to none -np 2 "$LMPI" train $D --out m.st > "$T/thts.err" 2>&1
    rc=$?
    k=$(sed -n 's/^model: .*, \([0-9]*\) threads*$/\1/p' "$T/thts.err")
    check '[ $rc -eq 0 ] && [ "$k" = 1 ]' "2 unbound ranks under taskset -c 0,1: expected 1 thread each, got '$k' (rc $rc)"
else
    echo "skip: taskset -c 0,1 (fewer than 2 CPUs here)"
fi

echo "cli_mpi.sh: $pass passed, $fail failed"
[ $fail -eq 0 ]
