#!/bin/sh
# bench/run.sh — runs `lstm bench`, oneDNN (bench/onednn_lstm.c) and PyTorch
# (bench/torch_lstm.py) on the project's target shapes, each shape and side in
# its own process (so ru_maxrss is that shape's peak), prints a markdown table
# and writes it to BENCHMARKS.md (the previous run moves to "Earlier runs").
#
# Rows: the LSTM shapes, then GRU rows (gru-*: ours --cell gru, oneDNN lbr_gru,
# PyTorch nn.GRU).
#
# usage: sh bench/run.sh [--label TEXT] [--only NAME,NAME] [--impl ours,onednn,pytorch]
#                        [--budget SECONDS] [--max-seconds SECONDS] [--no-write] [--out FILE]
#   --budget       seconds of timed iterations per row and side (default 2; at least
#                  5 iterations after 1 warm-up when they fit in --max-seconds)
#   --max-seconds  cap on the timed part of a row (default 10); at least one iteration
#                  always runs, and a warm-up longer than the cap is the measurement
#   env: BUILD (default build), LSTM_BENCH_TIMEOUT (seconds per process, default 600)
set -u
cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
TIMEOUT=${LSTM_BENCH_TIMEOUT:-600}
LABEL="" ONLY="" IMPLS="ours,onednn,pytorch" BUDGET=2 MAXS=10 WRITE=1 OUT=BENCHMARKS.md
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
    --max-seconds) MAXS=$2; shift 2 ;;
    --no-write) WRITE=0; shift ;;
    --out) OUT=$2; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "bench/run.sh: unknown option '$1'" >&2; exit 2 ;;
    esac
done
has_impl() { case ",$IMPLS," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }

# name I H L B T mode threads cell (lstm: nn.LSTM, oneDNN vanilla_lstm; gru: nn.GRU, oneDNN lbr_gru)
SHAPES="fwd-512 512 512 1 64 100 forward 2 lstm
train-512 512 512 1 64 100 train 2 lstm
fwd-1024 1024 1024 1 64 50 forward 2 lstm
stream-256 256 256 1 1 1000 forward 2 lstm
charlm-train 64 256 2 32 64 train 2 lstm
audio-step 1 64 1 1 48000 step 1 lstm
gru-fwd-512 512 512 1 64 100 forward 2 gru
gru-train-512 512 512 1 64 100 train 2 gru
gru-stream-256 256 256 1 1 1000 forward 2 gru
gru-audio-step 1 64 1 1 48000 step 1 gru"

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
    if /usr/bin/python3 -c 'import torch' 2>/dev/null; then TORCH_OK=1
    else echo "bench/run.sh: /usr/bin/python3 cannot import torch; its columns are empty" >&2; fi
fi

RES=$(mktemp); ERR=$(mktemp)
trap 'rm -f "$RES" "$ERR" "$ERR.out"' EXIT
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)
T_START=$(date +%s)

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

echo "$SHAPES" | while read -r name I H L B T mode thr cell; do
    if [ -n "$ONLY" ]; then case ",$ONLY," in *",$name,"*) ;; *) continue ;; esac; fi
    args="--input-size $I --hidden $H --layers $L --batch $B --seq $T --mode $mode --threads $thr --cell $cell --budget $BUDGET --max-seconds $MAXS"
    echo "bench/run.sh: $name ($args)" >&2
    # shellcheck disable=SC2086
    has_impl ours && run_one lstm "$name" "$BUILD/lstm" bench $args
    # shellcheck disable=SC2086
    [ $ONEDNN_OK = 1 ] && run_one onednn "$name" "$BUILD/bench/onednn_lstm" $args
    # shellcheck disable=SC2086
    # PyTorch with its own OpenBLAS defaults (a caller's OPENBLAS_* tuning is not PyTorch's)
    # shellcheck disable=SC2086
    [ $TORCH_OK = 1 ] && run_one pytorch "$name" env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \
        /usr/bin/python3 bench/torch_lstm.py $args
done

# ---- context for the report
MODEL=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n 1)
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

set -- --results "$RES" --label "$LABEL" --date "$(date -u '+%Y-%m-%d %H:%M UTC')" \
    --machine "$MODEL, $CPUS CPUs ($FLAGS)" --command "$CMDLINE" --git "$GIT" --gcc "$GCC" \
    --torch "$TORCHV" --onednn "$DNNLV" --env "${ENVNOTE# }" \
    --load "$LOAD_START -> $LOAD_END" --cpus "$CPUS" --elapsed "$ELAPSED"
if [ $WRITE = 1 ]; then set -- "$@" --write "$OUT"; fi
python3 bench/report.py "$@"
