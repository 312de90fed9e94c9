#!/bin/sh
# bench/rules.sh — the run-time rules the engine takes from the CPU that a test hook can
# switch (src/kernels/cpu.c; act_ld, x_in_fused_step, train_row_tasks and the parallel
# directions in lstm_layer.c; not yet step_x_quarter alone or the inference split),
# A/B'd in process on this CPU over the shapes each was chosen on (tools/ab_hooks.c: the
# two sides alternate, the medians of the paired ratios on/off with their quartiles).
# Prints a markdown table whose last column says whether the rule's side was faster,
# slower, or even (quartiles across 1), or n/a where the hook changes nothing.  A "rule
# slower" row is the evidence to change that rule for this CPU (cpu.c).
#
# usage: sh bench/rules.sh [--iters N] [--only HOOK,HOOK]
#   (2-3 minutes at N = 20 on the 2-core Xeon of BENCHMARKS.md's session 24)
#   env: BUILD (default build)
set -eu
BUILD=${BUILD:-build}
ITERS=20
ONLY=""
while [ $# -gt 0 ]; do
    case $1 in
    --iters) ITERS=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    *) echo "usage: sh bench/rules.sh [--iters N] [--only HOOK,HOOK]" >&2; exit 2 ;;
    esac
done
make -s BUILD="$BUILD" bench-rules >/dev/null

# hook  I H L B T mode threads [options]: the shapes each rule's comment in cpu.c /
# lstm_layer.c was measured on, and the issue's rows it decides
RUNS="act_pad 256 256 4 16 100 train 2
act_pad 512 512 1 64 100 forward 2
act_pad 512 1024 1 32 100 train 2 --proj 256
step_x 1024 1024 1 64 50 forward 2
step_x 512 512 1 64 100 forward 2
step_x 256 256 4 16 100 train 2
step_x 64 256 2 32 64 train 2
ta_direct 512 512 1 64 100 train 2
ta_direct 256 256 4 16 100 train 2
two_pass8 64 1024 1 8 100 forward 2
two_pass8 768 768 1 8 100 train 2
two_pass8 256 256 4 16 100 train 2
pf_tiles2 64 1024 1 12 100 forward 2
pf_tiles2 64 1024 1 8 100 forward 2 --gru
train_rows 512 512 1 16 100 train 2
train_rows 512 512 1 32 100 train 2
train_rows 768 768 1 24 100 train 2
train_rows 256 256 4 16 100 train 2
train_rows 512 1024 1 32 100 train 2 --proj 256
par_dirs 256 256 2 32 100 train 2 --bidirectional
par_dirs 256 256 2 32 100 train 2 --bidirectional --gru
par_dirs 64 64 2 8 100 train 2 --bidirectional
step1_pf 1 64 1 1 20000 forward 1
step1_pf 1 128 1 1 20000 forward 1
step1_pf 256 256 1 1 1000 forward 2"

. "$(dirname "$0")/cpu_name.sh"
echo "Rules on $(cpu_name), $(date -u +%Y-%m-%dT%H:%MZ), $ITERS pairs a row:"
echo
echo "| rule | I,H,L,B,T | mode | threads | off ms | on ms | on/off (quartiles) | rule | verdict |"
echo "|---|---|---|---|---|---|---|---|---|"
echo "$RUNS" | while read -r hook I H L B T mode thr opts; do
    if [ -n "$ONLY" ]; then case ",$ONLY," in *",$hook,"*) ;; *) continue ;; esac; fi
    # shellcheck disable=SC2086
    line=$("$BUILD/ab_hooks" "$hook" "$I" "$H" "$L" "$B" "$T" "$mode" --threads "$thr" --iters "$ITERS" $opts) || {
        echo "| $hook | $I,$H,$L,$B,$T $opts | $mode | $thr | failed | | | | |"; continue; }
    row=$(echo "$line" | sed -n 's/^[^:]*: off fastest [0-9.]* median \([0-9.]*\) ms | on fastest [0-9.]* median \([0-9.]*\) ms | on\/off paired: median \([0-9.]*\) (quartiles \([0-9.]*\) \([0-9.]*\)), [0-9]* pairs | rule: \(.*\) | \(.*\)$/\1 \2 \3 \4 \5|\6|\7/p')
    if [ -z "$row" ]; then # (a nan or inf time, say): the line as it came
        echo "| $hook | $I,$H,$L,$B,$T${opts:+ $opts} | $mode | $thr | unparsed: $line | | | | |"
        continue
    fi
    echo "$row" | { IFS='|' read -r nums rule verdict; set -- $nums
        echo "| $hook | $I,$H,$L,$B,$T${opts:+ $opts} | $mode | $thr | $1 | $2 | $3 ($4–$5) | $rule | $verdict |"; }
done
