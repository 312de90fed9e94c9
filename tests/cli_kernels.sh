#!/bin/sh
# The engine tests again with the kernels another x86-64 would choose:
# LSTM_KERNEL=avx2 (a CPU without AVX-512: AVX2 GEMM, scalar gates, no fused
# step) and LSTM_KERNEL=generic (portable C).  Each binary must pass as is.
bin=$(dirname "$LSTM")/tests
pass=0 fail=0
for k in avx2 generic; do
    for t in test_core test_torch_fixtures test_cell test_gradcheck; do
        if out=$(LSTM_KERNEL=$k "$bin/$t" 2>&1); then
            pass=$((pass + 1))
        else
            fail=$((fail + 1))
            echo "FAIL LSTM_KERNEL=$k $t:"
            echo "$out" | grep FAIL | head -5
        fi
    done
done
# the reference GEMM kernel: the engine's other choices where it runs (e.g. a
# bidirectional backward's weight gradients on both threads, one direction after the other)
if out=$(LSTM_KERNEL=ref "$bin/test_core" 2>&1); then pass=$((pass + 1)); else
    fail=$((fail + 1)); echo "FAIL LSTM_KERNEL=ref test_core:"; echo "$out" | grep FAIL | head -5; fi
# a CPU with a tiny L2 (LSTM_CPU_L2 bytes): the engine on the smallest GEMM blocking
if out=$(LSTM_CPU_L2=1 "$bin/test_core" 2>&1); then pass=$((pass + 1)); else
    fail=$((fail + 1)); echo "FAIL LSTM_CPU_L2=1 test_core:"; echo "$out" | grep FAIL | head -5; fi
echo "cli_kernels.sh: $pass passed, $fail failed"
[ $fail -eq 0 ]
