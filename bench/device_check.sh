#!/bin/bash
# bench/device_check.sh — lstm's tests and benchmark rows on another x86-64 machine that has
# no compiler, oneDNN or Eigen of its own (a lent machine, a customer's box), from binaries
# staged here.
#
#   bash bench/device_check.sh stage    # here: fills .dev/ (ignored by git; ~47 MB)
#   bash bench/device_check.sh run      # there, in a copy of the repo with .dev/ beside it
#
# stage: stripped copies of build/lstm, build/tests/test_*, build/cpu_probe,
#   build/bench/onednn_lstm with Debian's libdnnl.so.2 (2.6.3), libgomp and libOpenCL,
#   tools/stream_bw, and RTNeural's step bench built with -march=x86-64-v4 (any AVX-512
#   CPU); it builds what is missing (make all, bench-onednn, the test binaries; needs
#   libdnnl-dev, libeigen3-dev and ../shared/anchors/RTNeural).
# run: the CPU and its caches; the test binaries and CLI tests (all at once); the live
#   cross-check against the python3 there when it has torch; tools/cpu_probe and stream_bw;
#   the batch rows, ours and oneDNN's on 2 cores (taskset), $ROUNDS rounds (default 2),
#   the sides' order swapped each round; the step table against RTNeural (1 thread);
#   PyTorch's rows when torch is there; with STEP_PF=1 also the step at H = 64..128 with
#   LSTM_STEP1_PREFETCH=1.  Everything stops starting new rows $LIMIT seconds in (default
#   520).  Writes $OUT/log.txt and $OUT/bench.jsonl (OUT default /tmp/devout).
set -u
cd "$(dirname "$0")/.." || exit 1
D=$PWD/.dev
if [ "${1:-}" = stage ]; then
    set -e
    grep -qx "/.dev/" .git/info/exclude 2>/dev/null || { mkdir -p .git/info; echo "/.dev/" >> .git/info/exclude; }
    rm -rf "$D"; mkdir -p "$D/lib" "$D/tests" "$D/bench"
    make -s all bench-onednn $(for t in tests/test_*.c; do t=${t#tests/}; echo "build/tests/${t%.c}"; done) > /dev/null
    ${CC:-cc} -O2 -pthread tools/cpu_probe.c -o build/cpu_probe
    for t in build/tests/test_*; do strip -o "$D/tests/$(basename "$t")" "$t"; done
    strip -o "$D/lstm" build/lstm; strip -o "$D/cpu_probe" build/cpu_probe
    strip -o "$D/bench/onednn_lstm" build/bench/onednn_lstm
    for l in libdnnl.so.2 libgomp.so.1 libOpenCL.so.1; do cp -L "/usr/lib/x86_64-linux-gnu/$l" "$D/lib/$l"; done
    ${CC:-cc} -O2 -pthread tools/stream_bw.c -o "$D/stream_bw"
    RTN=${RTNEURAL_DIR:-../shared/anchors/RTNeural}
    for c in 8:37 38:67 68:97 98:128; do
        nr=""; [ "${c#*:}" = 128 ] || nr=-DNO_256
        ${CXX:-g++} -O3 -march=x86-64-v4 -std=c++17 -DRTNEURAL_USE_EIGEN=1 -DRTNEURAL_DEFAULT_ALIGNMENT=16 \
            -DH_FIRST="${c%:*}" -DH_LAST="${c#*:}" $nr -I"$RTN" -I"$RTN/RTNeural" -I/usr/include/eigen3 \
            bench/rtneural_lstm.cpp -o "$D/bench/rtneural_lstm-${c%:*}-${c#*:}" &
    done
    wait
    strip "$D"/bench/rtneural_lstm-*
    du -sh "$D"
    exit 0
fi
[ "${1:-}" = run ] || { sed -n '2,20p' "$0"; exit 2; }
export LD_LIBRARY_PATH=$D/lib
O=${OUT:-/tmp/devout}; mkdir -p "$O"
J=$O/bench.jsonl; : > "$J"
exec > >(tee -a "$O/log.txt") 2>&1
T0=$(date +%s)
el() { echo "== $(( $(date +%s) - T0 ))s: $*"; }
left() { echo $(( ${LIMIT:-520} - ($(date +%s) - T0) )); }

el cpu
grep -m1 "model name" /proc/cpuinfo; grep -m1 "cpu family" /proc/cpuinfo; grep -m1 -E "^model\s" /proc/cpuinfo
grep -m1 flags /proc/cpuinfo | tr ' ' '\n' | grep -E "avx512|amx|vnni" | tr '\n' ' '; echo
nproc; lscpu 2>/dev/null | grep -iE "cache|thread|core|socket|mhz|numa|vendor|model"
for i in /sys/devices/system/cpu/cpu0/cache/index*; do
    [ -d "$i" ] && echo "cache L$(cat "$i/level") $(cat "$i/type") $(cat "$i/size") shared $(cat "$i/shared_cpu_list" 2>/dev/null)"
done
uptime
python3 -c "import torch; print('torch', torch.__version__, 'threads', torch.get_num_threads())" 2>/dev/null || echo "no torch"
# two CPUs on different cores: cpu0 and the first CPU that is not its SMT sibling
P=$(python3 -c '
import os
def parse(s):
    out = set()
    for part in s.strip().split(","):
        if "-" in part: a, b = part.split("-"); out |= set(range(int(a), int(b) + 1))
        elif part: out.add(int(part))
    return out
try: sib = parse(open("/sys/devices/system/cpu/cpu0/topology/thread_siblings_list").read())
except OSError: sib = {0}
other = [c for c in sorted(os.sched_getaffinity(0)) if c not in sib]
print("0,%d" % other[0] if other else "0,1")' 2>/dev/null || echo 0,1)
PIN="taskset -c $P"; $PIN true 2>/dev/null || PIN=""
echo "pin: '$PIN'"

el tests
pids=""
for t in "$D"/tests/test_*; do
    ( "$t" > "$O/t.$(basename "$t").log" 2>&1; echo "$(basename "$t") rc=$? $(tail -n 1 "$O/t.$(basename "$t").log")" ) &
    pids="$pids $!"
done
for s in tests/cli_*.sh; do
    case $s in tests/cli_mpi.sh|tests/cli_example.sh|tests/cli_exports.sh) continue ;; esac # (MPI; these two compile)
    ( LSTM=$D/lstm timeout 150 sh "$s" > "$O/c.$(basename "$s").log" 2>&1
      echo "$s rc=$? $(tail -n 1 "$O/c.$(basename "$s").log")"; grep -m5 FAIL "$O/c.$(basename "$s").log" ) &
    pids="$pids $!"
done
wait $pids # (not a bare wait: that would wait for tee too)
grep -h "^FAIL" "$O"/t.*.log | head -20
rm -f "$O"/t.*.log "$O"/c.*.log
if python3 -c 'import torch, numpy' 2>/dev/null; then
    el "live cross-check against this machine's PyTorch"
    timeout 90 python3 tools/crosscheck.py --lstm "$D/lstm" > "$O/crosscheck.log" 2>&1
    echo "crosscheck rc=$? $(tail -n 1 "$O/crosscheck.log")"; grep -m10 FAIL "$O/crosscheck.log"
fi

el probe
$PIN "$D/cpu_probe"
$PIN "$D/stream_bw" 524288 2097152 8388608 33554432
$PIN "$D/stream_bw" -t 2 8388608 33554432

run() { # impl row cmd...: one JSON line into $J, its time on stdout
    local impl=$1 row=$2 line; shift 2
    line=$(timeout 60 $PIN "$@" --json 2>/dev/null | tail -n 1)
    case $line in "{"*) echo "{\"row\": \"$row\", \"side\": \"$impl\", ${line#\{}" >> "$J" ;; *) echo "$impl $row failed" ;; esac
    echo "$impl $row $(echo "$line" | grep -o '"ms": [0-9.]*')"
}
ROWS="fwd-512 512 512 1 64 100 forward
train-512 512 512 1 64 100 train
fwd-1024 1024 1024 1 64 50 forward
stream-256 256 256 1 1 1000 forward
charlm-train 64 256 2 32 64 train
gru-fwd-512 512 512 1 64 100 forward gru
gru-stream-256 256 256 1 1 1000 forward gru
fwd-768-b8 768 768 1 8 200 forward
train-768-b8 768 768 1 8 100 train
fwd-1024-b8 64 1024 1 8 100 forward
deep-fwd-256 256 256 4 16 100 forward
bidir-fwd-256 256 256 2 32 100 forward - bidir
proj-fwd-1024 512 1024 1 32 100 forward - proj=256
gru-train-512 512 512 1 64 100 train gru
deep-train-256 256 256 4 16 100 train
proj-train-1024 512 1024 1 32 100 train - proj=256"
for round in $(seq "${ROUNDS:-2}"); do
    el "batch rows, round $round (2 threads; ours and oneDNN)"
    echo "$ROWS" | while read -r name I H L B T mode cell opts; do
        [ "$(left)" -gt 200 ] || { echo "skip $name: time"; continue; }
        [ "${cell:--}" = - ] && cell=lstm
        a="--input-size $I --hidden $H --layers $L --batch $B --seq $T --mode $mode --threads 2 --cell $cell --budget 1 --max-seconds 3"
        case ${opts:--} in bidir) a="$a --bidirectional" ;; proj=*) a="$a --proj ${opts#proj=}" ;; esac
        # shellcheck disable=SC2086
        if [ $((round % 2)) = 1 ]; then run ours "$name" "$D/lstm" bench $a; run onednn "$name" "$D/bench/onednn_lstm" $a
        else run onednn "$name" "$D/bench/onednn_lstm" $a; run ours "$name" "$D/lstm" bench $a; fi
    done
done

el "step table (1 thread; RTNeural built -march=x86-64-v4)"
for H in 8 16 24 32 40 48 56 64 80 96 112 128 256; do
    [ "$(left)" -gt 120 ] || { echo "skip step $H: time"; continue; }
    I=1; [ "$H" = 256 ] && I=256
    step() { run "$1" "step-$H" "$D/lstm" bench --input-size $I --hidden $H --seq 48000 --mode step --threads 1 \
                 --warmup 1 --min-iters 5 --max-iters 5 --budget 0 --max-seconds 5; }
    step ours
    [ "${STEP_PF:-0}" = 1 ] && [ "$H" -ge 64 ] && [ "$H" -le 128 ] && LSTM_STEP1_PREFETCH=1 step ours-prefetch
    for c in 8:37 38:67 68:97 98:128; do
        if { [ "$H" -ge "${c%:*}" ] && [ "$H" -le "${c#*:}" ]; } || { [ "$H" = 256 ] && [ "${c#*:}" = 128 ]; }; then
            l=$(timeout 60 $PIN "$D/bench/rtneural_lstm-${c%:*}-${c#*:}" "$H" 2>/dev/null | tail -n 1)
            echo "{\"row\": \"step-$H\", \"side\": \"rtneural\", ${l#\{}" >> "$J"
            echo "rtneural step-$H $(echo "$l" | grep -o '"ns_per_step": [0-9.]*')"
        fi
    done
done

if python3 -c 'import torch' 2>/dev/null; then
    el "PyTorch $(python3 -c 'import torch; print(torch.__version__)') rows (2 threads)"
    for spec in "fwd-512 512 512 1 64 100 forward" "fwd-1024 1024 1024 1 64 50 forward" \
                "stream-256 256 256 1 1 1000 forward" "charlm-train 64 256 2 32 64 train" "train-512 512 512 1 64 100 train"; do
        set -- $spec
        [ "$(left)" -gt 40 ] || { echo "skip torch $1: time"; continue; }
        run pytorch "$1" python3 bench/torch_lstm.py --input-size "$2" --hidden "$3" --layers "$4" --batch "$5" \
            --seq "$6" --mode "$7" --threads 2 --budget 1 --max-seconds 4
    done
fi
el done
