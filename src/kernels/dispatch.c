/* dispatch.c — the one place that decides which kernels run.  It reads the
 * CPU's features (from cpu.c, the one cpuid reader) and the environment (LSTM_KERNEL, LSTM_FUSED) once; the GEMM
 * driver, the gate dispatch of every cell and the sequence engine ask here.
 *
 *   GEMM kernel: the best the CPU has (avx512 > avx2 > generic), or
 *     LSTM_KERNEL=ref|generic|avx2|avx512 when this CPU has it.
 *   AVX-512 gate kernels: the CPU has AVX-512F and LSTM_KERNEL does not ask
 *     for ref, generic or avx2 (which stand for a CPU without it).
 *   Fused recurrent step: the AVX-512 gate kernels run, the GEMM kernel is an
 *     FMA-chain one (avx2 or avx512: the fused step reproduces their bits),
 *     and LSTM_FUSED is not "0".
 * Built with -DLSTM_NO_X86 (make NO_X86_KERNELS=1) or off x86-64, only the
 * portable kernels exist. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int lstm__cpu_has(int kernel) {
    switch (kernel) {
    case LSTM_GEMM_REF:
    case LSTM_GEMM_GENERIC: return 1;
#if LSTM_X86
    case LSTM_GEMM_AVX2: return lstm__cpu()->avx2;
    case LSTM_GEMM_AVX512: return lstm__cpu()->avx512;
#endif
    default: return 0;
    }
}

/* Resolved once; the first calls may come from several threads, which all
 * compute the same values (atomic loads and stores, no lock needed). */
static int gemm_default = -1, gates512 = -1, fused_env = -1, fused_override = -1;

int lstm__kernel_gemm_default(void) {
    int k = __atomic_load_n(&gemm_default, __ATOMIC_RELAXED);
    if (k >= 0) return k;
    k = LSTM_GEMM_GENERIC;
    for (int c = LSTM_GEMM_AVX512; c > LSTM_GEMM_GENERIC; c--)
        if (lstm__cpu_has(c)) { k = c; break; }
    const char *env = getenv("LSTM_KERNEL");
    if (env)
        for (int c = 0; c < LSTM_GEMM_NKERNELS; c++)
            if (!strcmp(env, lstm_gemm_kernel_name(c)) && lstm__cpu_has(c)) k = c;
    __atomic_store_n(&gemm_default, k, __ATOMIC_RELAXED);
    return k;
}

int lstm__kernel_gates_avx512(void) {
    int v = __atomic_load_n(&gates512, __ATOMIC_RELAXED);
    if (v >= 0) return v;
    const char *k = getenv("LSTM_KERNEL");
    int want = !(k && (strcmp(k, "ref") == 0 || strcmp(k, "generic") == 0 || strcmp(k, "avx2") == 0));
    v = want && lstm__cpu_has(LSTM_GEMM_AVX512);
    __atomic_store_n(&gates512, v, __ATOMIC_RELAXED);
    return v;
}

int lstm__kernel_fused(void) {
    int on = __atomic_load_n(&fused_override, __ATOMIC_RELAXED);
    if (on < 0) {
        on = __atomic_load_n(&fused_env, __ATOMIC_RELAXED);
        if (on < 0) {
            const char *env = getenv("LSTM_FUSED"); /* LSTM_FUSED=0: off, for tests and benchmarks */
            on = !(env && strcmp(env, "0") == 0);
            __atomic_store_n(&fused_env, on, __ATOMIC_RELAXED);
        }
    }
    int k = lstm_gemm_kernel();
    return on && lstm__kernel_gates_avx512() && (k == LSTM_GEMM_AVX512 || k == LSTM_GEMM_AVX2);
}

void lstm__kernel_set_fused(int on) { __atomic_store_n(&fused_override, on < 0 ? -1 : on != 0, __ATOMIC_RELAXED); }
