#!/bin/sh
# cli_bench.sh — `lstm bench`: JSON fields, FLOP count, timing controls, usage errors.
# Run by tests/run.sh with $LSTM = the lstm binary.
LSTM=${LSTM:-build/lstm}
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { echo "FAIL cli_bench: $*"; fail=$((fail + 1)); }
field() { echo "$1" | sed -n "s/.*\"$2\": \([^,}]*\).*/\1/p" | tr -d '"'; }
# near A B REL: |A - B| <= REL * |B|
near() { awk -v a="$1" -v b="$2" -v r="$3" 'BEGIN { d = a - b; if (d < 0) d = -d; m = b < 0 ? -b : b; exit !(d <= r * m) }'; }

SHAPE="--input-size 5 --hidden 7 --layers 2 --batch 3 --seq 11"
# flops of one forward: 2*T*B*4H*(I_l+H) summed over layers: I_0 = 5, I_1 = 7
FWD_FLOP=$(awk 'BEGIN { print 2*11*3*4*7*((5+7) + (7+7)) }')

for mode in forward train step; do
    out=$("$LSTM" bench $SHAPE --mode $mode --json --budget 0.05 --threads 2 2>&1)
    rc=$?
    [ $rc -eq 0 ] && ok || bad "$mode: exit $rc: $out"
    [ "$(echo "$out" | wc -l)" -eq 1 ] && ok || bad "$mode: expected one line, got: $out"
    case $out in "{"*"}") ok ;; *) bad "$mode: not a JSON object: $out" ;; esac
    for f in input_size hidden layers batch seq mode threads ms gflops iters warmup peak_rss_mb checksum; do
        [ -n "$(field "$out" $f)" ] && ok || bad "$mode: field $f missing in $out"
    done
    [ "$(field "$out" mode)" = "$mode" ] && ok || bad "$mode: mode field is $(field "$out" mode)"
    [ "$(field "$out" threads)" = 2 ] && ok || bad "$mode: threads field not 2: $out"
    [ "$(field "$out" threads_applied)" = true ] && ok || bad "$mode: threads not applied: $out"
    [ "$(field "$out" layers)" = 2 ] && [ "$(field "$out" seq)" = 11 ] && ok || bad "$mode: shape fields wrong: $out"
    ms=$(field "$out" ms) gf=$(field "$out" gflops)
    flop=$FWD_FLOP
    [ $mode = train ] && flop=$((FWD_FLOP * 3))
    # gflops * ms * 1e6 must equal the FLOP count (to the printed precision)
    near "$(awk -v g="$gf" -v m="$ms" 'BEGIN { print g * m * 1e6 }')" "$flop" 0.001 && ok ||
        bad "$mode: gflops $gf * ms $ms does not give $flop FLOPs"
    iters=$(field "$out" iters)
    [ "$iters" -ge 5 ] && ok || bad "$mode: expected >= 5 timed iterations, got $iters"
    [ "$(field "$out" warmup)" -ge 1 ] && ok || bad "$mode: expected a warm-up: $out"
    awk -v r="$(field "$out" peak_rss_mb)" 'BEGIN { exit !(r > 0) }' && ok || bad "$mode: peak_rss_mb not positive"
    if [ $mode = step ]; then
        us=$(field "$out" us_per_step)
        near "$us" "$(awk -v m="$ms" 'BEGIN { print m * 1000 / 11 }')" 0.001 && ok ||
            bad "step: us_per_step $us is not ms*1000/T"
        step_sum=$(field "$out" checksum)
    elif [ $mode = forward ]; then
        fwd_sum=$(field "$out" checksum)
    fi
done
# streaming one step per call sees the same weights and inputs as the full forward
near "$step_sum" "$fwd_sum" 0.0001 && ok || bad "step checksum $step_sum != forward checksum $fwd_sum"

# packs kept between iterations (forward, train) or packed in every one (--repack): the same bits
for mode in forward train; do
    kept=$("$LSTM" bench $SHAPE --mode $mode --json --budget 0 --min-iters 3 --threads 2 2>&1)
    every=$("$LSTM" bench $SHAPE --mode $mode --json --budget 0 --min-iters 3 --threads 2 --repack 2>&1)
    [ "$(field "$kept" packs)" = kept ] && [ "$(field "$every" packs)" = "every iteration" ] && ok ||
        bad "$mode: packs fields: $kept / $every"
    [ -n "$(field "$kept" checksum)" ] && [ "$(field "$kept" checksum)" = "$(field "$every" checksum)" ] && ok ||
        bad "$mode: checksum with packs kept $(field "$kept" checksum) != with --repack $(field "$every" checksum)"
done

# timing controls: exact iteration count, and the single-run path
out=$("$LSTM" bench $SHAPE --json --budget 0 --min-iters 7)
[ "$(field "$out" iters)" = 7 ] && ok || bad "--min-iters 7 --budget 0: iters $(field "$out" iters)"
out=$("$LSTM" bench $SHAPE --json --max-seconds 0)
[ "$(field "$out" iters)" = 1 ] && [ "$(field "$out" warmup)" = 0 ] && ok ||
    bad "--max-seconds 0: expected iters 1 warmup 0: $out"
out=$("$LSTM" bench $SHAPE --json --warmup 0 --min-iters 1 --max-iters 1)
[ "$(field "$out" iters)" = 1 ] && [ "$(field "$out" warmup)" = 0 ] && ok ||
    bad "--warmup 0 --max-iters 1: $out"
# --bidirectional and --proj: the shape reaches the net (fields, FLOPs) and runs
# flops: 2*T*B*D*(4H*(I_l+P) + P*H) per layer, D = 2: I_0 = 5, I_1 = D*P = 6
out=$("$LSTM" bench $SHAPE --bidirectional --proj 3 --json --budget 0 --min-iters 1)
[ "$(field "$out" bidirectional)" = true ] && [ "$(field "$out" proj)" = 3 ] && ok || bad "bidir/proj fields: $out"
near "$(awk -v g="$(field "$out" gflops)" -v m="$(field "$out" ms)" 'BEGIN { print g * m * 1e6 }')" \
    "$(awk 'BEGIN { print 2*11*3*2*((4*7*(5+3) + 3*7) + (4*7*(6+3) + 3*7)) }')" 0.001 && ok ||
    bad "bidir/proj: FLOP count wrong: $out"

# human-readable form
out=$("$LSTM" bench $SHAPE --mode step --budget 0)
echo "$out" | grep -q "ms per iteration" && echo "$out" | grep -q "us per step" && ok ||
    bad "text output: $out"
"$LSTM" bench --help | grep -q -- "--mode" && ok || bad "--help does not describe --mode"

# usage errors exit 2 with a message naming the problem
usage() { # expected-substring args...
    want=$1; shift
    err=$("$LSTM" bench "$@" 2>&1 >/dev/null)
    rc=$?
    [ $rc -eq 2 ] && ok || bad "bench $*: exit $rc, expected 2"
    echo "$err" | grep -q -- "$want" && ok || bad "bench $*: message '$err' lacks '$want'"
}
usage "--hidden is required" --input-size 4
usage "--input-size is required" --hidden 4
usage "expected forward, train or step" --input-size 4 --hidden 4 --mode fast
usage "--batch" --input-size 4 --hidden 4 --batch 0
usage "--seq" --input-size 4 --hidden 4 --seq x
usage "unknown option" --input-size 4 --hidden 4 --bogus
usage "needs a value" --input-size 4 --hidden
usage "--repack: only for --mode forward or train" --input-size 4 --hidden 4 --mode step --repack
usage "expected lstm or gru" --input-size 4 --hidden 4 --cell rnn

# --cell gru: an nn.GRU of the same shape, 3 gates (3/4 of the LSTM's FLOPs)
for mode in forward train step; do
    out=$("$LSTM" bench $SHAPE --cell gru --mode $mode --json --budget 0 --min-iters 1 --threads 2 2>&1)
    [ "$(field "$out" cell)" = gru ] && ok || bad "--cell gru $mode: cell field: $out"
    ms=$(field "$out" ms) gf=$(field "$out" gflops)
    flop=$((FWD_FLOP * 3 / 4))
    [ $mode = train ] && flop=$((FWD_FLOP * 9 / 4))
    near "$(awk -v g="$gf" -v m="$ms" 'BEGIN { print g * m * 1e6 }')" "$flop" 0.001 && ok ||
        bad "--cell gru $mode: gflops $gf * ms $ms does not give $flop FLOPs"
    [ $mode = forward ] && gfwd=$(field "$out" checksum)
    [ $mode = step ] && gstep=$(field "$out" checksum)
done
near "$gstep" "$gfwd" 0.0001 && ok || bad "--cell gru: step checksum $gstep != forward checksum $gfwd"
[ "$gfwd" != "$fwd_sum" ] && ok || bad "--cell gru gives the LSTM's checksum $fwd_sum"
[ "$(field "$("$LSTM" bench $SHAPE --json --budget 0 --min-iters 1)" cell)" = lstm ] && ok || bad "default cell is not lstm"
usage "0 < P < H" --input-size 4 --hidden 4 --proj 4
usage "cannot run step by step" --input-size 4 --hidden 4 --bidirectional --mode step
usage "a GRU has no projection" --input-size 4 --hidden 4 --cell gru --proj 2

# tools/ab_hooks (bench/rules.sh's A/B of the engine's CPU rules): every hook runs both sides
# and names the rule's side and a verdict; act_pad's rule pads rows of 4 KiB multiples only
AB=$(dirname "$LSTM")/ab_hooks
if [ -x "$AB" ]; then
    for hook in act_pad step_x ta_direct two_pass8 pf_tiles2 step1_pf train_rows par_dirs; do
        b=3; [ $hook = step1_pf ] && b=1
        out=$("$AB" $hook 5 7 2 $b 11 forward --iters 2 2>&1)
        case $out in
        "$hook: off fastest "*" | rule: on | rule "*|"$hook: off fastest "*" | rule: o"[nf]*" | even" | \
            "$hook: off fastest "*" | rule: off | rule "*|"$hook: off fastest "*" | rule: n/a | n/a") ok ;;
        *) bad "ab_hooks $hook: $out" ;;
        esac
    done
    out=$("$AB" two_pass8 5 7 1 8 4 train --iters 2 --threads 1 2>&1)
    case $out in *" pairs | rule: o"*) ok ;; *) bad "ab_hooks two_pass8 train: $out" ;; esac
    case $("$AB" act_pad 4 256 1 2 3 forward --iters 2) in *"rule: on |"*) ok ;; *) bad "ab_hooks: H = 256 not padded" ;; esac
    case $("$AB" act_pad 4 7 1 2 3 forward --iters 2) in *"rule: off |"*) ok ;; *) bad "ab_hooks: H = 7 padded" ;; esac
    # the GRU's act rows are 4 columns a unit too (r, z, xn, hn): padded at H = 256
    case $("$AB" act_pad 4 256 1 2 3 forward --gru --iters 2) in *"rule: on |"*) ok ;; *) bad "ab_hooks: GRU H = 256 not padded" ;; esac
    # a training choice in forward mode changes nothing: no verdict
    case $("$AB" train_rows 4 7 1 32 3 forward --iters 2) in *"rule: n/a | n/a") ok ;; *) bad "ab_hooks: train_rows forward not n/a" ;; esac
    "$AB" no_such_hook 4 7 1 2 3 forward >/dev/null 2>&1; [ $? -eq 2 ] && ok || bad "ab_hooks: an unknown hook is not a usage error"
else
    bad "$AB missing (make test builds it)"
fi

echo "cli_bench: $pass passed, $fail failed"
[ $fail -eq 0 ]
