#!/bin/sh
# bench/run.sh — runs `lstm bench`, oneDNN (bench/onednn_lstm.c) and PyTorch
# (bench/torch_lstm.py) on the project's target shapes, each shape and side in
# its own process (so ru_maxrss is that shape's peak); then one step per call
# against RTNeural (bench/rtneural_lstm.cpp) for I = 1, H = 8..128 and
# I = H = 256 (rows step-H, the two sides interleaved per H), and greedy
# sampling against PyTorch (bench/sample_vs_torch.py, rows sample-2x128 and
# sample-2x256 on 1 thread, -t2 on 2); prints markdown tables and writes them
# to BENCHMARKS.md (the previous run moves to "Earlier runs", under its CPU).
#
# Rows: the LSTM shapes, then GRU rows (gru-*: ours --cell gru, oneDNN lbr_gru,
# PyTorch nn.GRU).
#
# usage: sh bench/run.sh [--label TEXT] [--only NAME,NAME] [--impl ours,onednn,pytorch,rtneural]
#                        [--step-h "H H ..."] [--budget SECONDS] [--max-seconds SECONDS]
#                        [--no-write] [--out FILE]
#   --only         row names (fwd-512, ..., audio-step, gru-*), "step" (the RTNeural table) and
#                  "sample" (the sampling rows)
#   --step-h       hidden sizes of the step table (default 8..128 and 256; 256 means I = 256)
#   --budget       seconds of timed iterations per row and side (default 2; at least
#                  5 iterations after 1 warm-up when they fit in --max-seconds)
#   --max-seconds  cap on the timed part of a row (default 10); at least one iteration
#                  always runs, and a warm-up longer than the cap is the measurement
#   --rounds       run the batch rows and the step table this many times (default 1), each
#                  round every row and side once in turn; the report takes, per row and
#                  side, the run with the median time over the rounds (the host's busy
#                  minutes then fall on single runs of either side, not on a whole row)
#   env: BUILD (default build), LSTM_BENCH_TIMEOUT (seconds per process, default 600),
#        RTNEURAL_DIR (default ../shared/anchors/RTNeural)
# RTNeural needs Eigen (libeigen3-dev; installed with apt-get when missing and allowed)
# and is built once into $BUILD/bench/ (4 objects of ~30 sizes, about 5 CPU-minutes).
# The PyTorch side runs with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset.
set -u
cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
TIMEOUT=${LSTM_BENCH_TIMEOUT:-600}
LABEL="" ONLY="" IMPLS="ours,onednn,pytorch,rtneural" BUDGET=2 MAXS=10 WRITE=1 OUT=BENCHMARKS.md ROUNDS=1
STEP_H="$(seq 8 128 | tr '\n' ' ')256"
CMDLINE="sh bench/run.sh"
for arg in "$@"; do
    case $arg in *" "*|"") CMDLINE="$CMDLINE '$arg'" ;; *) CMDLINE="$CMDLINE $arg" ;; esac
done
while [ $# -gt 0 ]; do
    case $1 in
    --label) LABEL=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    --impl) IMPLS=$2; shift 2 ;;
    --budget) BUDGET=$2; shift 2 ;;
    --step-h) STEP_H=$2; shift 2 ;;
    --max-seconds) MAXS=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --no-write) WRITE=0; shift ;;
    --out) OUT=$2; shift 2 ;;
    -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
    *) echo "bench/run.sh: unknown option '$1'" >&2; exit 2 ;;
    esac
done
case $ROUNDS in ""|*[!0-9]*|0) echo "bench/run.sh: --rounds: expected a positive integer, got '$ROUNDS'" >&2; exit 2 ;; esac
has_impl() { case ",$IMPLS," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
only() { [ -z "$ONLY" ] && return 0; case ",$ONLY," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }

# The rows: bench/shapes.txt (name I H L B T mode threads cell opts), shared with bench/paired.sh.
SHAPES=$(grep -v '^#' "$(dirname "$0")/shapes.txt")

# ---- build what is needed
if has_impl ours; then
    make -s BUILD="$BUILD" all >/dev/null || { echo "bench/run.sh: make failed" >&2; exit 1; }
fi
ONEDNN_OK=0
if has_impl onednn; then
    if [ -f /usr/include/dnnl.h ] && make -s BUILD="$BUILD" bench-onednn >/dev/null; then
        ONEDNN_OK=1
    else
        echo "bench/run.sh: oneDNN (libdnnl-dev) not available; its columns are empty" >&2
    fi
fi
TORCH_OK=0
if has_impl pytorch; then
    if env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 -c 'import torch' 2>/dev/null; then TORCH_OK=1
    else echo "bench/run.sh: /usr/bin/python3 cannot import torch; its columns are empty" >&2; fi
fi

RT_OK=0
RT_CHUNKS="8:37 38:67 68:97 98:128"
RT_BIN="$BUILD/bench/rtneural_lstm"
if has_impl rtneural && only step; then
    if [ ! -f /usr/include/eigen3/Eigen/Core ] && command -v apt-get >/dev/null; then
        echo "bench/run.sh: installing libeigen3-dev for RTNeural" >&2
        apt-get install -y libeigen3-dev >/dev/null 2>&1 || sudo -n apt-get install -y libeigen3-dev >/dev/null 2>&1
    fi
    RTN=${RTNEURAL_DIR:-../shared/anchors/RTNeural}
    if [ -f /usr/include/eigen3/Eigen/Core ] && [ -d "$RTN/RTNeural" ]; then
        mkdir -p "$BUILD/bench"
        RT_OK=1
        for c in $RT_CHUNKS; do # one binary per range of H, built in parallel
            b="$RT_BIN-${c%:*}-${c#*:}"
            [ "$b" -nt bench/rtneural_lstm.cpp ] && continue
            nr=""; [ "${c#*:}" = 128 ] || nr=-DNO_256
            echo "bench/run.sh: building $b (RTNeural, H ${c%:*}..${c#*:})" >&2
            ${CXX:-g++} -O3 -march=native -std=c++17 -DRTNEURAL_USE_EIGEN=1 -DRTNEURAL_DEFAULT_ALIGNMENT=16 \
                -DH_FIRST="${c%:*}" -DH_LAST="${c#*:}" $nr -I"$RTN" -I"$RTN/RTNeural" -I/usr/include/eigen3 \
                bench/rtneural_lstm.cpp -o "$b.tmp" 2>"$b.log" && mv "$b.tmp" "$b" &
        done
        wait
        for c in $RT_CHUNKS; do [ -x "$RT_BIN-${c%:*}-${c#*:}" ] || RT_OK=0; done
        [ $RT_OK = 1 ] || echo "bench/run.sh: building RTNeural failed (see $RT_BIN-*.log); its column is empty" >&2
    else
        echo "bench/run.sh: RTNeural needs libeigen3-dev and $RTN (RTNEURAL_DIR); its column is empty" >&2
    fi
fi
rt_bin() { # the RTNeural binary that has hidden size $1
    for c in $RT_CHUNKS; do
        if [ "$1" -ge "${c%:*}" ] && [ "$1" -le "${c#*:}" ] || { [ "$1" = 256 ] && [ "${c#*:}" = 128 ]; }; then
            echo "$RT_BIN-${c%:*}-${c#*:}"; return; fi
    done
}

RES=$(mktemp); ERR=$(mktemp)
trap 'rm -f "$RES" "$ERR" "$ERR.out"' EXIT
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)
T_START=$(date +%s)
# How many cores the run really has (vCPUs may be time slices of one core): tools/cpu_probe.c
# measures FMA and latency-chain throughput on 1 and on all CPUs, before and after the rows.
PROBE_BIN="$BUILD/cpu_probe"
${CC:-cc} -O2 -pthread tools/cpu_probe.c -o "$PROBE_BIN" 2>/dev/null || PROBE_BIN=""
probe() { [ -n "$PROBE_BIN" ] && "$PROBE_BIN" | sed 's/^cpu_probe: //'; }
PROBE_START=$(probe)
echo "bench/run.sh: cpu_probe: $PROBE_START" >&2

run_one() { # impl name cmd...: appends {"row": name, ...} or an error record
    impl=$1 name=$2; shift 2
    timeout "$TIMEOUT" "$@" --json >"$ERR.out" 2>"$ERR"
    rc=$?
    line=$(tail -n 1 "$ERR.out")
    case $line in
    "{"*) echo "{\"row\": \"$name\", ${line#\{}" >> "$RES" ;;
    *) msg=$(tail -n 1 "$ERR" | tr -d '"\\' | cut -c1-120)
       echo "{\"row\": \"$name\", \"impl\": \"$impl\", \"error\": \"rc=$rc $msg\"}" >> "$RES"
       echo "bench/run.sh: $impl $name failed: $msg" >&2 ;;
    esac
}

# ---- the batch rows, then one step per call; --rounds times
for round in $(seq "$ROUNDS"); do
    [ "$ROUNDS" -gt 1 ] && echo "bench/run.sh: round $round of $ROUNDS" >&2
    echo "$SHAPES" | while read -r name I H L B T mode thr cell opts; do
        if [ -n "$ONLY" ]; then case ",$ONLY," in *",$name,"*) ;; *) continue ;; esac; fi
        args="--input-size $I --hidden $H --layers $L --batch $B --seq $T --mode $mode --threads $thr --cell $cell --budget $BUDGET --max-seconds $MAXS"
        case ${opts:--} in
        bidir) args="$args --bidirectional" ;;
        proj=*) args="$args --proj ${opts#proj=}" ;;
        esac
        echo "bench/run.sh: $name ($args)" >&2
        # shellcheck disable=SC2086
        has_impl ours && run_one lstm "$name" "$BUILD/lstm" bench $args
        # shellcheck disable=SC2086
        [ $ONEDNN_OK = 1 ] && run_one onednn "$name" "$BUILD/bench/onednn_lstm" $args
        # PyTorch with its own OpenBLAS defaults (a caller's OPENBLAS_* tuning is not PyTorch's)
        # shellcheck disable=SC2086
        [ $TORCH_OK = 1 ] && run_one pytorch "$name" env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \
            /usr/bin/python3 bench/torch_lstm.py $args
    done

    # ---- one step per call, batch 1, 1 thread: ours and RTNeural interleaved per H
    if only step; then
        for H in $STEP_H; do
            I=1; [ "$H" = 256 ] && I=256
            echo "bench/run.sh: step-$H (I=$I)" >&2
            # RTNeural's protocol: 1 warm-up, then 5 runs of 48000 steps (median and min of the 5)
            has_impl ours && run_one lstm "step-$H" "$BUILD/lstm" bench --input-size $I --hidden "$H" --seq 48000 \
                --mode step --threads 1 --warmup 1 --min-iters 5 --max-iters 5 --budget 0 --max-seconds "$MAXS"
            [ $RT_OK = 1 ] && run_one rtneural "step-$H" "$(rt_bin "$H")" "$H"
        done
    fi
done

# ---- greedy sampling against PyTorch's per-step loop (models made by `lstm train`)
if only sample && has_impl ours && [ $TORCH_OK = 1 ]; then
    for H in 128 256; do
        for N in 1 2; do
            R="sample-2x$H"; [ $N = 1 ] || R="$R-t$N"
            echo "bench/run.sh: $R" >&2
            run_one sample "$R" /usr/bin/python3 bench/sample_vs_torch.py --lstm "$BUILD/lstm" \
                --hidden $H --layers 2 --embed 64 --train-steps 40 --length 20000 --ours-threads $N
        done
    done
fi

# ---- context for the report
MODEL=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n 1)
# CPU identity for the report: vendor, family, model (Zen 4 and Zen 5 runs are kept apart)
VENDOR=$(sed -n 's/^vendor_id[^:]*: *//p' /proc/cpuinfo 2>/dev/null | head -n 1)
FAMILY=$(sed -n 's/^cpu family[^:]*: *//p' /proc/cpuinfo 2>/dev/null | head -n 1)
CPUMODEL=$(sed -n 's/^model[^a-z:]*: *//p' /proc/cpuinfo 2>/dev/null | head -n 1)
CPUS=$(nproc 2>/dev/null)
FLAGS=no-avx2
grep -q -w avx2 /proc/cpuinfo 2>/dev/null && FLAGS=avx2
grep -q -w avx512f /proc/cpuinfo 2>/dev/null && FLAGS=avx512f
GIT=$(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet HEAD 2>/dev/null || echo "-dirty")
GCC=$(${CC:-cc} --version 2>/dev/null | head -n 1)
TORCHV=""; [ $TORCH_OK = 1 ] && TORCHV=$(/usr/bin/python3 -c 'import torch; print(torch.__version__)')
DNNLV=""; [ $ONEDNN_OK = 1 ] && DNNLV=$(sed -n 's/^#define DNNL_VERSION_\(MAJOR\|MINOR\|PATCH\) *\([0-9]*\).*/\2/p' /usr/include/oneapi/dnnl/dnnl_version.h | paste -sd.)
ENVNOTE=""
for v in OPENBLAS_CORETYPE OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS OMP_NUM_THREADS MKL_NUM_THREADS; do
    eval "val=\${$v:-}"
    [ -n "$val" ] && ENVNOTE="$ENVNOTE $v=$val"
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)
ELAPSED=$(( $(date +%s) - T_START ))
PROBE_END=$(probe)

set -- --results "$RES" --label "$LABEL" --date "$(date -u '+%Y-%m-%d %H:%M UTC')" \
    --machine "$MODEL, $CPUS CPUs ($FLAGS)" --command "$CMDLINE" --git "$GIT" --gcc "$GCC" \
    --cpu-vendor "$VENDOR" --cpu-family "$FAMILY" --cpu-model "$CPUMODEL" \
    --torch "$TORCHV" --onednn "$DNNLV" --env "${ENVNOTE# }" \
    --load "$LOAD_START -> $LOAD_END" --cpus "$CPUS" --elapsed "$ELAPSED" \
    --probe "${PROBE_START:-n/a} -> ${PROBE_END:-n/a}"
if [ $WRITE = 1 ]; then set -- "$@" --write "$OUT"; fi
python3 bench/report.py "$@"
