#!/bin/sh
# bench/paired.sh — ours against oneDNN in one process per row (bench/onednn_lstm.c
# --paired): every round runs each side once, order rotating, after a short sleep;
# the ratio of a round is oneDNN's time (its faster forward layout by median) over
# ours, so a host whose speed swings between runs (other guests on the cores) weighs
# on both sides of a ratio alike.  Prints a markdown table of the batch rows of
# bench/shapes.txt (not the step rows): the medians, the median ratio with its
# quartiles, and whether it meets the issue's target (2.0x for the stream rows, B = 1,
# else 1.0x).
#
# usage: sh bench/paired.sh [--only NAME,NAME] [--budget SECONDS] [--min-rounds N] [--shapes FILE]
#   defaults: every batch row of bench/shapes.txt, 3 s and at least 11 rounds a row (3
#   minutes on the 2-core Xeon of BENCHMARKS.md's session 24).  --shapes: rows in
#   shapes.txt's format from another file, e.g. bench/shapes_more.txt (sizes, batches
#   and layer counts off the issue's table, BENCHMARKS.md's session 26)
#   env: BUILD (default build)
set -eu
BUILD=${BUILD:-build}
ONLY="" BUDGET=3 MINR=11 SHAPES="$(dirname "$0")/shapes.txt"
while [ $# -gt 0 ]; do
    case $1 in
    --only) ONLY=$2; shift 2 ;;
    --budget) BUDGET=$2; shift 2 ;;
    --min-rounds) MINR=$2; shift 2 ;;
    --shapes) SHAPES=$2; shift 2 ;;
    *) echo "usage: sh bench/paired.sh [--only NAME,NAME] [--budget SECONDS] [--min-rounds N] [--shapes FILE]" >&2; exit 2 ;;
    esac
done
[ -r "$SHAPES" ] || { echo "bench/paired.sh: cannot read $SHAPES" >&2; exit 2; }
[ -f /usr/include/dnnl.h ] || { echo "bench/paired.sh: needs oneDNN (apt-get install libdnnl-dev)" >&2; exit 1; }
make -s BUILD="$BUILD" bench-onednn >/dev/null
field() { echo "$1" | sed -n "s/.*\"$2\": \([^,}]*\).*/\1/p" | tr -d '"'; }
ms() { awk -v v="$1" 'BEGIN { printf(v < 100 ? "%.2f" : "%.1f", v) }'; }

. "$(dirname "$0")/cpu_name.sh"
echo "Paired with oneDNN on $(cpu_name), $(date -u +%Y-%m-%dT%H:%MZ):"
echo
echo "| row | I,H,L,B,T | mode | threads | ours ms | oneDNN ms (layout) | oneDNN/ours (quartiles) | rounds | target |"
echo "|---|---|---|---|---|---|---|---|---|"
grep -v '^#' "$SHAPES" | while read -r name I H L B T mode thr cell opts; do
    [ "$mode" = step ] && continue
    if [ -n "$ONLY" ]; then case ",$ONLY," in *",$name,"*) ;; *) continue ;; esac; fi
    extra=""
    case ${opts:--} in bidir) extra="--bidirectional" ;; proj=*) extra="--proj ${opts#proj=}" ;; esac
    # shellcheck disable=SC2086
    out=$("$BUILD/bench/onednn_lstm" --paired --input-size "$I" --hidden "$H" --layers "$L" --batch "$B" --seq "$T" \
        --mode "$mode" --threads "$thr" --cell "$cell" --budget "$BUDGET" --min-iters "$MINR" --max-seconds 60 $extra) ||
        { echo "| $name | $I,$H,$L,$B,$T | $mode | $thr | failed | | | | |"; continue; }
    r=$(field "$out" ratio)
    tgt=1.0; [ "$B" = 1 ] && tgt=2.0
    met=$(awk -v r="$r" -v t=$tgt 'BEGIN { print (r >= t ? "met" : "not met") " (" t "×)" }')
    echo "| $name | $I,$H,$L,$B,$T${extra:+ $extra} | $mode | $thr | $(ms "$(field "$out" ours_ms)") | $(ms "$(field "$out" onednn_ms)") ($(field "$out" weights)) | ${r}× ($(field "$out" ratio_q1)–$(field "$out" ratio_q3)) | $(field "$out" rounds) | $met |"
done
