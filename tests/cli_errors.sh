#!/bin/sh
# cli_errors.sh — the lstm CLI on good and bad inputs: usage errors exit 2,
# failures exit 1 with ONE line on stderr naming the offending file, and no
# output file is created (or an existing one changed) on error.  Fixtures are
# crafted with printf/head only, so this runs without Python (which, when
# /usr/bin/python3 is there, also checks that info --json is JSON).
LSTM=${LSTM:-build/lstm}
case $LSTM in /*) ;; *) LSTM=$(pwd)/$LSTM ;; esac
pass=0 fail=0
dir=$(mktemp -d "${TMPDIR:-/tmp}/lstm_cli_errors.XXXXXX") || exit 1
trap 'rm -rf "$dir"' EXIT
cd "$dir" || exit 1

ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }

# le N BYTES: N as BYTES little-endian bytes, as printf octal escapes
le() {
    n=$1 k=0 s=""
    while [ $k -lt "$2" ]; do
        s="$s$(printf '\\%03o' $((n % 256)))"
        n=$((n / 256)); k=$((k + 1))
    done
    printf '%s' "$s"
}
# mk_st FILE JSON NDATA: a safetensors file with NDATA zero data bytes
mk_st() {
    { printf "$(le ${#2} 8)"; printf '%s' "$2"; head -c "$3" /dev/zero; } > "$1"
}
# mk_npy FILE DICT NDATA [VERSION_BYTE]: a .npy file (v1.0) with NDATA zero bytes
mk_npy() {
    h="$2"
    while [ $(( (10 + ${#h} + 1) % 16 )) -ne 0 ]; do h="$h "; done
    { printf '\223NUMPY\001\000'; printf "$(le $((${#h} + 1)) 2)"; printf '%s\n' "$h"; head -c "$3" /dev/zero; } > "$1"
}
npy() { mk_npy "$1" "{'descr': '<f4', 'fortran_order': False, 'shape': ($2), }" "$3"; }
T() { printf '{"dtype":"%s","shape":[%s],"data_offsets":[%s,%s]}' "$1" "$2" "$3" "$4"; }

# expect CODE FILE_IN_MESSAGE OUTPUTS -- ARGS...: runs lstm ARGS, checks the exit
# code, that stderr is one line naming FILE (unless "-"), and that OUTPUTS
# (space-separated) do not exist afterwards.
expect() {
    code=$1 name=$2 outs=$3
    shift 4
    "$LSTM" "$@" > out.txt 2> err.txt
    rc=$?
    what="lstm $*"
    # (ASan's own note on a refused allocation, with allocator_may_return_null below)
    grep -v '^==[0-9]*==WARNING: AddressSanitizer failed to allocate' err.txt > err2.txt; mv err2.txt err.txt
    [ $rc -eq "$code" ] || { bad "$what: exit $rc, expected $code: $(cat err.txt)"; return; }
    [ "$(wc -l < err.txt)" -eq 1 ] || { bad "$what: stderr is not one line: $(cat err.txt)"; return; }
    if [ "$name" != - ] && ! grep -qF -- "$name" err.txt; then bad "$what: message lacks '$name': $(cat err.txt)"; return; fi
    for o in $outs; do [ ! -e "$o" ] || { bad "$what: output $o exists after an error"; rm -f "$o"; return; }; done
    tmps=$(ls -A . nodir 2> /dev/null | grep -e '\.lstm-tmp\.') # DIR/.NAME.lstm-tmp.PID.RANDOM
    if [ -n "$tmps" ]; then bad "$what: temporary files left: $tmps"; rm -f ./.*.lstm-tmp.*; return; fi
    ok
}

# ---- fixtures: I=2, H=1, L=1 with bias (80 data bytes)
ih=$(T F32 4,2 0 32) hh=$(T F32 4,1 32 48) bi=$(T F32 4 48 64) bh=$(T F32 4 64 80)
mk_st m.safetensors "{\"weight_ih_l0\":$ih,\"weight_hh_l0\":$hh,\"bias_ih_l0\":$bi,\"bias_hh_l0\":$bh}" 80
mk_st p.safetensors "{\"__metadata__\":{\"format\":\"pt\"},\"enc.weight_ih_l0\":$ih,\"enc.weight_hh_l0\":$hh,\"enc.bias_ih_l0\":$bi,\"enc.bias_hh_l0\":$bh,\"head\":$(T F32 1 80 84)}" 84
mk_st shape.safetensors "{\"weight_ih_l0\":$ih,\"weight_hh_l0\":$(T F32 4,2 32 64),\"bias_ih_l0\":$(T F32 4 64 80),\"bias_hh_l0\":$(T F32 4 80 96)}" 96
mk_st extra.safetensors "{\"weight_ih_l0\":$ih,\"weight_hh_l0\":$hh,\"bias_ih_l0\":$bi,\"bias_hh_l0\":$bh,\"step\":$(T I64 1 80 88)}" 88
mk_st missing.safetensors "{\"weight_ih_l0\":$ih,\"weight_hh_l0\":$hh,\"bias_ih_l0\":$bi}" 64
mk_st dtype.safetensors "{\"weight_ih_l0\":$(T I32 4,2 0 32),\"weight_hh_l0\":$hh,\"bias_ih_l0\":$bi,\"bias_hh_l0\":$bh}" 80
mk_st offsets.safetensors "{\"weight_ih_l0\":$(T F32 4,2 0 36),\"weight_hh_l0\":$hh,\"bias_ih_l0\":$bi,\"bias_hh_l0\":$bh}" 80
mk_st overlap.safetensors "{\"weight_ih_l0\":$ih,\"weight_hh_l0\":$(T F32 4,1 16 32),\"bias_ih_l0\":$bi,\"bias_hh_l0\":$bh}" 80
# a GRU: I=2, H=1 (weight_ih [3,2], weight_hh [3,1], biases [3]; 60 data bytes)
mk_st gru.safetensors "{\"weight_ih_l0\":$(T F32 3,2 0 24),\"weight_hh_l0\":$(T F32 3,1 24 36),\"bias_ih_l0\":$(T F32 3 36 48),\"bias_hh_l0\":$(T F32 3 48 60)}" 60
mk_st json.safetensors "{\"weight_ih_l0\":$ih,}" 32
printf '\377\000\000\000\000\000\000\000{}' > hlen.safetensors
printf 'abc' > short.safetensors
npy x.npy "3, 2, 2" 48          # T=3, B=2, I=2
npy xbf.npy "2, 3, 2" 48        # B=2, T=3 (batch-first)
npy xu.npy "3, 2" 24            # unbatched
npy h0.npy "1, 2, 1" 8
npy c0.npy "1, 2, 1" 8
npy hu.npy "1, 1" 4
npy gy.npy "3, 2, 1" 24
npy ghn.npy "1, 2, 1" 8
npy wrongI.npy "3, 2, 3" 72
npy oned.npy "6," 24
npy empty.npy "0, 2, 2" 0
npy h0bad.npy "1, 2, 2" 16
npy h03.npy "1, 3, 1" 12
npy c0bad.npy "2, 2, 1" 16
npy gybad.npy "3, 2, 2" 48
mk_npy big.npy "{'descr': '>f4', 'fortran_order': False, 'shape': (3, 2, 2), }" 48
mk_npy ints.npy "{'descr': '<i8', 'fortran_order': False, 'shape': (3, 2, 2), }" 96
mk_npy fort.npy "{'descr': '<f4', 'fortran_order': True, 'shape': (3, 2, 2), }" 48
npy trunc.npy "3, 2, 2" 47
printf 'not an array' > junk.npy

# ---- the good paths
F="--model m.safetensors --input x.npy"
"$LSTM" forward $F --output y.npy --hn hn.npy --cn cn.npy > /dev/null 2> err.txt &&
    [ -s y.npy ] && [ -s hn.npy ] && [ -s cn.npy ] && grep -q "'shape': (3, 2, 1)" y.npy && grep -q "'shape': (1, 2, 1)" cn.npy &&
    ok || bad "forward on good inputs: $(cat err.txt)"
"$LSTM" forward --model p.safetensors --prefix enc. --input xbf.npy --batch-first --h0 h0.npy --c0 c0.npy --output ybf.npy 2> err.txt &&
    grep -q "'shape': (2, 3, 1)" ybf.npy && ok || bad "forward --batch-first --prefix: $(cat err.txt)"
"$LSTM" forward $F --input xu.npy --h0 hu.npy --c0 hu.npy --output yu.npy --hn hnu.npy 2> err.txt &&
    grep -q "'shape': (3, 1)" yu.npy && grep -q "'shape': (1, 1)" hnu.npy && ok || bad "forward unbatched: $(cat err.txt)"
"$LSTM" grad $F --h0 h0.npy --c0 c0.npy --grad-output gy.npy --grad-hn ghn.npy --output g.safetensors 2> err.txt &&
    grep -q '"input"' g.safetensors && grep -q '"c0"' g.safetensors && grep -q '"bias_hh_l0"' g.safetensors &&
    ok || bad "grad on good inputs: $(cat err.txt)"
"$LSTM" info --model p.safetensors --prefix enc. > out.txt 2> err.txt && grep -q 'hidden_size *1$' out.txt &&
    grep -q 'parameters *20$' out.txt && ok || bad "info: $(cat out.txt err.txt)"
"$LSTM" info --model m.safetensors --json > out.txt && grep -q '"input_size": 2,' out.txt && ok || bad "info --json"
G="--model gru.safetensors --input x.npy"
"$LSTM" forward $G --h0 h0.npy --output y.npy --hn hn.npy 2> err.txt && grep -q "'shape': (3, 2, 1)" y.npy &&
    grep -q "'shape': (1, 2, 1)" hn.npy && ok || bad "forward a GRU: $(cat err.txt)"
"$LSTM" grad $G --h0 h0.npy --grad-output gy.npy --grad-hn ghn.npy --output g.safetensors 2> err.txt &&
    grep -q '"input"' g.safetensors && grep -q '"h0"' g.safetensors && ! grep -q '"c0"' g.safetensors &&
    grep -q '"weight_hh_l0":{"dtype":"F32","shape":\[3,1\]' g.safetensors && ok || bad "grad of a GRU: $(cat err.txt)"
"$LSTM" info --model gru.safetensors > out.txt 2> err.txt && grep -q '^cell  *gru$' out.txt &&
    grep -q 'parameters *15$' out.txt && ok || bad "info on a GRU: $(cat out.txt err.txt)"
"$LSTM" info --model m.safetensors > out.txt 2> err.txt && grep -q '^cell  *lstm$' out.txt && ok || bad "info says lstm"
"$LSTM" info --model gru.safetensors --json > out.txt && grep -q '"cell": "gru",' out.txt && ok || bad "info --json gru"
rm -f y.npy hn.npy g.safetensors
for c in "--help" "forward --help" "grad --help" "info --help" "--version" "-h" "forward -h" "grad -h" "info -h" "bench -h" \
    "train -h" "eval -h" "sample -h" "train --help" "eval --help" "sample --help" "bench --help"; do
    "$LSTM" $c > out.txt 2> err.txt && [ -s out.txt ] && [ ! -s err.txt ] && ok || bad "lstm $c"
done
rm -f y.npy hn.npy cn.npy ybf.npy yu.npy hnu.npy g.safetensors

# ---- usage errors: exit 2
expect 2 "lstm --help" "" --
expect 2 "frobnicate" "" -- frobnicate
expect 2 "--bogus" "y.npy" -- forward $F --output y.npy --bogus
expect 2 "--model" "y.npy" -- forward --input x.npy --output y.npy
expect 2 "--input" "y.npy" -- forward --model m.safetensors --output y.npy
expect 2 "--output" "" -- forward $F
expect 2 "--output" "" -- forward $F --output
expect 2 "--c0" "y.npy" -- forward $F --h0 h0.npy --output y.npy
expect 2 "--c0" "y.npy" -- forward $F --c0 c0.npy --output y.npy
expect 2 "--grad-output" "g.st" -- grad $F --output g.st
expect 2 "--c0: gru.safetensors is a GRU" "y.npy" -- forward $G --h0 h0.npy --c0 c0.npy --output y.npy
expect 2 "--cn: gru.safetensors is a GRU" "y.npy cn.npy" -- forward $G --output y.npy --cn cn.npy
expect 2 "--grad-cn: gru.safetensors is a GRU" "g.st" -- grad $G --grad-output gy.npy --grad-cn ghn.npy --output g.st
expect 2 "--grad-output" "y.npy" -- forward $F --grad-output gy.npy --output y.npy
expect 2 "--hn" "g.st" -- grad $F --grad-output gy.npy --hn hn.npy --output g.st
expect 2 "y.npy" "" -- forward $F --output y.npy --hn y.npy
expect 2 "--model" "" -- info
expect 2 "--json" "" -- info --model m.safetensors --json=1

# ---- bad models: exit 1, naming the file
for m in nothere shape extra missing dtype offsets overlap json hlen short; do
    expect 1 "$m.safetensors" "y.npy hn.npy" -- forward --model $m.safetensors --input x.npy --output y.npy --hn hn.npy
done
expect 1 "weight_hh_l0': expected shape [4, 1], got [4, 2]" "y.npy" -- forward --model shape.safetensors --input x.npy --output y.npy
# a file name with control bytes is shown escaped: the message stays one line
nl=$(printf 'no\nsuch\001.safetensors')
expect 1 'no\nsuch\x01.safetensors: cannot open' "y.npy" -- forward --model "$nl" --input x.npy --output y.npy
expect 2 'no\nsuch\x01.safetensors' "" -- forward --model m.safetensors --input x.npy --output y.npy "$nl"
# bytes that are not UTF-8 (a Latin-1 name) are shown as \xNN; UTF-8 characters as they are
expect 1 'caf\xe9.safetensors: cannot open' "y.npy" -- forward --model "$(printf 'caf\351.safetensors')" --input x.npy --output y.npy
expect 1 "$(printf 'caf\303\251.safetensors'): cannot open" "y.npy" -- forward --model "$(printf 'caf\303\251.safetensors')" --input x.npy --output y.npy
expect 1 "unexpected tensor 'step'" "y.npy" -- forward --model extra.safetensors --input x.npy --output y.npy
expect 1 "'bias_hh_l0' not found" "y.npy" -- forward --model missing.safetensors --input x.npy --output y.npy
expect 1 "dtype I32" "y.npy" -- forward --model dtype.safetensors --input x.npy --output y.npy
expect 1 "do not match shape [4, 2] of F32 (expected 32 bytes)" "y.npy" -- forward --model offsets.safetensors --input x.npy --output y.npy
expect 1 "overlap" "y.npy" -- forward --model overlap.safetensors --input x.npy --output y.npy
expect 1 "not valid JSON" "y.npy" -- forward --model json.safetensors --input x.npy --output y.npy
expect 1 "no LSTM or GRU under prefix 'dec.'" "y.npy" -- forward --model p.safetensors --prefix dec. --input x.npy --output y.npy
expect 1 "weight_ih_l0' not found (no LSTM or GRU under prefix '')" "y.npy" -- forward --model p.safetensors --input x.npy --output y.npy
expect 1 "shape.safetensors" "" -- info --model shape.safetensors
expect 1 "extra.safetensors" "g.st" -- grad --model extra.safetensors --input x.npy --grad-output gy.npy --output g.st

# metadata shown in a message is escaped: still one line
mk_st vocab.safetensors '{"__metadata__":{"vocab":"[1,\n2,x]"}}' 0
mk_st ckpt.safetensors '{"__metadata__":{"train.step":"1","train.checksum":"ab\ncd"}}' 0
expect 1 "vocab.safetensors: metadata 'vocab'" "" -- sample --model vocab.safetensors
expect 1 "ckpt.safetensors: checkpoint metadata 'train.checksum'" "q.st" -- train --resume ckpt.safetensors --out q.st --data x.npy

# ---- bad arrays
for a in nothere junk big ints fort trunc wrongI oned empty; do
    expect 1 "$a.npy" "y.npy" -- forward $F --input $a.npy --output y.npy
done
expect 1 "big-endian" "y.npy" -- forward $F --input big.npy --output y.npy
expect 1 "truncated" "y.npy" -- forward $F --input trunc.npy --output y.npy
expect 1 "expected shape [3, 2, 2] (input_size 2 of the model), got [3, 2, 3]" "y.npy" -- forward $F --input wrongI.npy --output y.npy
expect 1 "h0bad.npy: expected shape [1, 2, 1]" "y.npy" -- forward $F --h0 h0bad.npy --c0 c0.npy --output y.npy
expect 1 "c0bad.npy: expected shape [1, 2, 1]" "y.npy" -- forward $F --h0 h0.npy --c0 c0bad.npy --output y.npy
expect 1 "hu.npy: expected shape [1, 2, 1]" "y.npy" -- forward $F --h0 hu.npy --c0 hu.npy --output y.npy
expect 1 "h0.npy: expected shape [1, 1]" "y.npy" -- forward $F --input xu.npy --h0 h0.npy --c0 c0.npy --output y.npy
expect 1 "h03.npy: expected shape [1, 2, 1]" "y.npy hn.npy" -- forward $F --input xbf.npy --batch-first --h0 h03.npy --c0 h03.npy --output y.npy --hn hn.npy
expect 1 "gybad.npy: expected shape [3, 2, 1]" "g.st" -- grad $F --grad-output gybad.npy --output g.st
expect 1 "gy.npy: expected shape [2, 3, 1]" "g.st" -- grad $F --input xbf.npy --batch-first --grad-output gy.npy --output g.st
expect 1 "h0bad.npy: expected shape [1, 2, 1]" "g.st" -- grad $F --grad-output gy.npy --grad-hn h0bad.npy --output g.st
expect 1 "gy.npy: expected shape [1, 2, 1]" "g.st" -- grad $F --grad-output gy.npy --grad-cn gy.npy --output g.st
# an unwritable output: nothing is left behind (no output, no partial file)
expect 1 "nodir/y.npy" "nodir/y.npy" -- forward $F --output nodir/y.npy
expect 1 "nodir/hn.npy" "y.npy" -- forward $F --output y.npy --hn nodir/hn.npy
expect 1 "nodir/g.st" "" -- grad $F --grad-output gy.npy --output nodir/g.st
# an existing output is left untouched by a failing run: a bad input, and an
# output that cannot be written after another one could
printf 'old' > y.npy
"$LSTM" forward $F --input wrongI.npy --output y.npy 2> /dev/null
[ $? -eq 1 ] && [ "$(cat y.npy)" = old ] && ok || bad "a failing run (bad input) changed an existing output"
"$LSTM" forward $F --output y.npy --hn nodir/hn.npy 2> /dev/null
[ $? -eq 1 ] && [ "$(cat y.npy)" = old ] && ok || bad "a failing run (unwritable --hn) changed an existing --output"
[ -z "$(ls | grep partial)" ] && ok || bad "partial output files left behind: $(ls | grep partial)"
# stdin / directories as inputs
expect 1 "$dir" "y2.npy" -- forward $F --input "$dir" --output y2.npy

# ---- info --json names any file: invalid UTF-8 bytes come out as \udcXX
# (Python's surrogateescape), so os.fsencode(json.loads(...)["model"]) gives
# back the name's bytes.  The name holds a quote, a backslash, \001, DEL, é,
# and byte runs that are not UTF-8: a lone \377, an overlong \300\257, an
# encoded surrogate \355\240\200, U+110000 \364\220\200\200, a truncated \342\202.
wname=$(printf 'a"b\\c\001\177\303\251\377\300\257\355\240\200\364\220\200\200\342\202.safetensors')
cp m.safetensors "$wname"
printf '%s' "$wname" > wname.bin
# a prefix with a quote, a backslash and a control byte (the tensor names hold it as JSON escapes)
mk_st wp.safetensors "{\"q\\\"\\\\\\u0001.weight_ih_l0\":$ih,\"q\\\"\\\\\\u0001.weight_hh_l0\":$hh,\"q\\\"\\\\\\u0001.bias_ih_l0\":$bi,\"q\\\"\\\\\\u0001.bias_hh_l0\":$bh}" 80
wpre=$(printf 'q"\\\001.')
printf '%s' "$wpre" > wpre.bin
"$LSTM" info --model "$wname" --json > out.txt 2> err.txt && grep -q '"model": "a\\"b\\\\c\\u0001' out.txt &&
    grep -q '\\udcff\\udcc0\\udcaf\\udced\\udca0\\udc80\\udcf4\\udc90\\udc80\\udc80\\udce2\\udc82\.safetensors"' out.txt &&
    ok || bad "info --json on a name that is not UTF-8: $(cat out.txt err.txt)"
"$LSTM" info --model wp.safetensors --prefix "$wpre" --json > out2.txt 2> err.txt && grep -q '"prefix": "q\\"\\\\\\u0001\."' out2.txt &&
    ok || bad "info --json --prefix with a quote and a control byte: $(cat out2.txt err.txt)"
if [ -x /usr/bin/python3 ]; then
    /usr/bin/python3 -c '
import json, os, sys
d = json.load(open("out.txt", "rb"))
assert os.fsencode(d["model"]) == open("wname.bin", "rb").read(), ascii(d["model"])
d = json.load(open("out2.txt", "rb"))
assert os.fsencode(d["prefix"]) == open("wpre.bin", "rb").read(), ascii(d["prefix"])
' 2> err.txt && ok || bad "info --json: not JSON, or the names do not round-trip: $(cat err.txt)"
else
    echo "note: no /usr/bin/python3; the info --json round trip through Python skipped"
fi
rm -f "$wname" wp.safetensors wname.bin wpre.bin out2.txt

# ---- a char model (vocab "ab", E=1, H=1) whose own tensors have an unsupported dtype: the message names the file
cm() { # cm FILE EMB_DTYPE HEAD_W_DTYPE HEAD_B_DTYPE
    mk_st "$1" "{\"__metadata__\":{\"vocab\":\"[97,98]\"},\"lstm.weight_ih_l0\":$(T F32 4,1 0 16),\"lstm.weight_hh_l0\":$(T F32 4,1 16 32),\"lstm.bias_ih_l0\":$(T F32 4 32 48),\"lstm.bias_hh_l0\":$(T F32 4 48 64),\"embedding.weight\":$(T "$2" 2,1 64 72),\"head.weight\":$(T "$3" 2,1 72 80),\"head.bias\":$(T "$4" 2 80 88)}" 88
}
cm cm.safetensors F32 F32 F32
cm cm_emb.safetensors I32 F32 F32
cm cm_hw.safetensors F32 I32 F32
cm cm_hb.safetensors F32 F32 I32
"$LSTM" sample --model cm.safetensors --length 4 > out.txt 2> err.txt && [ "$(wc -c < out.txt)" -ge 4 ] &&
    ok || bad "sample on a crafted char model: $(cat err.txt)"
expect 1 "cm_emb.safetensors: tensor 'embedding.weight': dtype I32" "" -- sample --model cm_emb.safetensors
expect 1 "cm_hw.safetensors: tensor 'head.weight': dtype I32" "" -- sample --model cm_hw.safetensors
expect 1 "cm_hb.safetensors: tensor 'head.bias': dtype I32" "" -- sample --model cm_hb.safetensors
expect 1 "cm_hb.safetensors: tensor 'head.bias': dtype I32" "" -- eval --model cm_hb.safetensors --data x.npy

# ---- out of memory names the real parameter count: V=2, E=H=2^20, 8 layers is
# 2E + 8(8H^2 + 8H) + 2H + 2 parameters, 256 TiB a buffer: no address space holds
# it, so calloc fails at once whatever the overcommit policy
ab10=abababababababababab
printf '%s' "$ab10$ab10$ab10$ab10$ab10$ab10$ab10$ab10$ab10$ab10" > ab.txt # 100 bytes: 10 for validation
H=1048576
asan_was=${ASAN_OPTIONS-} # (under ASan, calloc then returns NULL as libc's does, instead of aborting)
export ASAN_OPTIONS="${asan_was:+$asan_was:}allocator_may_return_null=1"
expect 1 "char model: out of memory for $((2 * H + 8 * (8 * H * H + 8 * H) + 2 * H + 2)) parameters" "h.st" -- \
    train --data ab.txt --hidden $H --embed $H --layers 8 --batch 2 --bptt 4 --steps 1 --out h.st
if [ -n "$asan_was" ]; then export ASAN_OPTIONS="$asan_was"; else unset ASAN_OPTIONS; fi

# ---- numbers that underflow are that number (a denormal or 0), then range-checked; overflow is an error
"$LSTM" sample --model cm.safetensors --length 4 --temperature 4.9e-324 > out.txt 2> err.txt && [ "$(wc -c < out.txt)" -ge 4 ] &&
    ok || bad "sample --temperature 4.9e-324 (a denormal): $(cat err.txt)"
"$LSTM" sample --model cm.safetensors --length 4 --temperature 1e-400 > out.txt 2> err.txt &&
    ok || bad "sample --temperature 1e-400 (underflows to 0): $(cat err.txt)"
expect 2 "option --temperature: expected a number in [0, 1e+06], got '1e999'" "" -- sample --model cm.safetensors --temperature 1e999
expect 2 "option --temperature: expected a number in [0, 1e+06], got '-4.9e-324'" "" -- sample --model cm.safetensors --temperature -4.9e-324
TR="--data ab.txt --hidden 2 --embed 2 --layers 1 --batch 2 --bptt 4 --steps 1"
"$LSTM" train $TR --lr 1e-320 --out u.st > /dev/null 2> err.txt && [ -s u.st ] &&
    ok || bad "train --lr 1e-320 (a denormal): $(cat err.txt)"
rm -f u.st
expect 1 "ab.txt: the validation part has 0 bytes" "u.st" -- train $TR --val-fraction 1e-320 --out u.st
expect 2 "--lr: expected a number in [0, 1e+38], got '1e999'" "u.st" -- train $TR --lr 1e999 --out u.st
expect 2 "--val-fraction: expected a number in [0, 0.9], got '-1e-320'" "u.st" -- train $TR --val-fraction -1e-320 --out u.st

# bench: shapes it cannot run are refused at once, before arrays of that size are made and filled
# (T*B past int took 47 s and 16 GB to fail; a model past the machine's memory was killed by the
# kernel with no message); --max-iters below --min-iters is a usage error (it was raised silently)
expect 2 "--seq 67108864 x --batch 64 = 4294967296 rows: at most 2147483647" "" -- bench --input-size 1 --hidden 1 --seq 67108864 --batch 64
# a model whose parameters and gradients are 1.5 times this machine's memory (each allocation is
# less than the memory, so calloc gives it; touching them all was the OOM killer's)
mem_kb=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo 2> /dev/null)
if [ -n "$mem_kb" ]; then
    bigH=$(awk -v m="$mem_kb" 'BEGIN { printf "%d", sqrt(1.5 * m * 1024 / 32) }')
    timeout 120 "$LSTM" bench --input-size 1 --hidden "$bigH" --mode train > out.txt 2> err.txt
    rc=$?
    [ $rc -eq 1 ] && [ "$(grep -cv 'WARNING: AddressSanitizer failed to allocate' err.txt)" -eq 1 ] &&
        grep -q -e "bench: this shape needs at least" -e "out of memory allocating" err.txt && ok ||
        bad "bench --hidden $bigH --mode train (1.5x the memory): exit $rc, $(cat err.txt)"
fi
# --mode step's x and y hold the whole sequence (its workspace one step): 1.5 times the memory
# in two arrays of 0.75 each was not refused (the check counted one step's rows)
if [ -n "$mem_kb" ]; then
    stepT=$((mem_kb * 3 / 16))
    timeout 120 "$LSTM" bench --input-size 1024 --hidden 1024 --seq "$stepT" --mode step > out.txt 2> err.txt
    rc=$?
    [ $rc -eq 1 ] && [ "$(wc -l < err.txt)" -eq 1 ] && grep -q "bench: this shape needs at least" err.txt && ok ||
        bad "bench --mode step --seq $stepT (x and y 1.5x the memory): exit $rc, $(cat err.txt)"
fi
expect 2 "--max-iters 3 is below --min-iters 10" "" -- bench --input-size 2 --hidden 2 --min-iters 10 --max-iters 3
# --help onto a stdout that cannot take it: exit 1 and a message, for every command (forward, grad
# and bench exited 0 in silence)
if [ -w /dev/full ]; then
    for c in "forward --help" "grad --help" "bench --help" "info --help" "train --help" "sample --help" "--help"; do
        "$LSTM" $c > /dev/full 2> err.txt
        rc=$?
        [ $rc -eq 1 ] && grep -q "writing to standard output failed: No space left on device" err.txt && ok ||
            bad "lstm $c > /dev/full: exit $rc, $(cat err.txt)"
    done
    "$LSTM" info --model gru.safetensors --json > /dev/full 2> err.txt
    rc=$?
    [ $rc -eq 1 ] && [ "$(wc -l < err.txt)" -eq 1 ] && grep -q "writing to standard output failed: No space left" err.txt &&
        ok || bad "info --json > /dev/full: exit $rc, $(cat err.txt)"
else
    echo "note: no writable /dev/full: the stdout write-error checks did not run"
fi

echo "cli_errors.sh: $pass passed, $fail failed"
[ $fail -eq 0 ]
