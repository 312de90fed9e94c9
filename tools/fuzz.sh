#!/bin/sh
# fuzz.sh [SECONDS] — builds the libFuzzer targets (make fuzz) and runs each
# for SECONDS (default 60) on seed corpora generated here, with dictionaries.
# Exits non-zero on any finding; reproducers land in build/fuzz/artifacts/.
set -u
secs=${1:-60}
cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
make -s -j2 fuzz BUILD="$BUILD" || { echo "fuzz.sh: building the fuzz targets failed"; exit 1; }
work=$BUILD/fuzz/work
rm -rf "$work"
mkdir -p "$work/st" "$work/npy" "$BUILD/fuzz/artifacts"

# ---- seeds, crafted with printf (no Python needed)
le() { # le N BYTES -> printf octal escapes of N, little-endian
    n=$1 k=0 s=""
    while [ $k -lt "$2" ]; do s="$s$(printf '\\%03o' $((n % 256)))"; n=$((n / 256)); k=$((k + 1)); done
    printf '%s' "$s"
}
mk_st() { { printf "$(le ${#2} 8)"; printf '%s' "$2"; head -c "$3" /dev/urandom; } > "$work/st/$1"; }
T() { printf '"%s":{"dtype":"%s","shape":[%s],"data_offsets":[%s,%s]}' "$1" "$2" "$3" "$4" "$5"; }
mk_st empty '{}' 0
mk_st meta '{"__metadata__":{"format":"pt","note":"\u00e9\ud83d\ude00"}}' 0
mk_st bias "{$(T weight_ih_l0 F32 4,2 0 32),$(T weight_hh_l0 F32 4,1 32 48),$(T bias_ih_l0 F32 4 48 64),$(T bias_hh_l0 F32 4 64 80)}" 80
mk_st proj "{$(T weight_ih_l0 F16 8,1 0 16),$(T weight_hh_l0 BF16 8,1 16 32),$(T weight_hr_l0 F64 1,2 32 48)}" 48
mk_st bidi "{$(T weight_ih_l0 F32 4,1 0 16),$(T weight_hh_l0 F32 4,1 16 32),$(T weight_ih_l0_reverse F32 4,1 32 48),$(T weight_hh_l0_reverse F32 4,1 48 64),$(T weight_ih_l1 F32 4,2 64 96),$(T weight_hh_l1 F32 4,1 96 112),$(T weight_ih_l1_reverse F32 4,2 112 144),$(T weight_hh_l1_reverse F32 4,1 144 160)}" 160
mk_st other "{\"__metadata__\":{},$(T step I64 '' 0 8),$(T x.w Q7 3,0 8 8),$(T weight_ih_l0 F32 4,1 8 24),$(T weight_hh_l0 F32 4,1 24 40)}" 40
mk_npy() { # mk_npy NAME MAJOR DICT NDATA
    h="$3" pre=10
    [ "$2" -gt 1 ] && pre=12
    while [ $(( (pre + ${#h} + 1) % 16 )) -ne 0 ]; do h="$h "; done
    { printf "\\223NUMPY$(le "$2" 1)\\000"; printf "$(le $((${#h} + 1)) $((pre - 8)))"; printf '%s\n' "$h"; head -c "$4" /dev/urandom; } > "$work/npy/$1"
}
mk_npy f4 1 "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }" 24
mk_npy f8 2 "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }" 24
mk_npy scalar 3 "{'descr': '<f4', 'fortran_order': False, 'shape': (), }" 4
mk_npy zero 1 "{\"descr\":\"<f4\",\"fortran_order\":False,\"shape\":(0,4)}" 0
mk_npy big 1 "{'descr': '>f4', 'fortran_order': True, 'shape': (1, 1, 1, 1, 1, 1, 1, 1), }" 4

cat > "$work/st.dict" <<'D'
"\"dtype\""
"\"shape\""
"\"data_offsets\""
"\"__metadata__\""
"\"F32\""
"\"F16\""
"\"BF16\""
"\"F64\""
"\"I64\""
"\"weight_ih_l0\""
"\"weight_hh_l0\""
"\"bias_ih_l0\""
"\"bias_hh_l0\""
"\"weight_hr_l0\""
"_reverse"
"_l1"
"\\u"
"\\ud800"
"18446744073709551615"
"9223372036854775808"
D
cat > "$work/npy.dict" <<'D'
"\x93NUMPY"
"'descr'"
"'<f4'"
"'<f8'"
"'>f4'"
"'fortran_order'"
"False"
"True"
"'shape'"
"(1,)"
"()"
"99999999999999999999"
D

status=0
for t in safetensors npy; do
    case $t in safetensors) corpus=$work/st dict=$work/st.dict ;; *) corpus=$work/npy dict=$work/npy.dict ;; esac
    echo "== fuzz_$t for ${secs}s"
    "$BUILD/fuzz/fuzz_$t" "$corpus" -dict="$dict" -max_total_time="$secs" -max_len=4096 -rss_limit_mb=2048 \
        -artifact_prefix="$BUILD/fuzz/artifacts/$t-" -print_final_stats=1 > "$work/$t.log" 2>&1
    rc=$?
    grep -E '^stat::(number_of_executed_units|new_units_added)|^#[0-9]+ *DONE' "$work/$t.log"
    if [ $rc -ne 0 ]; then
        echo "FAIL fuzz_$t found a problem (exit $rc); log tail:"
        tail -n 40 "$work/$t.log"
        status=1
    else
        echo "ok   fuzz_$t: no findings in ${secs}s"
    fi
done
exit $status
