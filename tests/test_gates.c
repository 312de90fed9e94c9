/* test_gates.c — the vectorized gate kernels against the scalar oracle
 * (libm expf/tanhf) over a wide range of pre-activations, odd widths and
 * both directions; errors are reported in absolute terms (the activations are
 * in [-1, 1]) and must stay within a few float32 ulps of 1. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "test.h"

#if LSTM_X86
static uint64_t rs = 0x1234567ull;
static float frand(float scale) {
    rs ^= rs << 13; rs ^= rs >> 7; rs ^= rs << 17;
    return ((float)(rs >> 40) / 16777216.0f * 2.0f - 1.0f) * scale;
}
#endif

int main(void) {
#if LSTM_X86
    if (!__builtin_cpu_supports("avx512f")) {
        TEST_SKIP("no AVX-512F on this CPU: only the scalar path runs (nothing to compare)");
        return TEST_REPORT();
    }
    const int Hs[] = {1, 7, 16, 37, 64, 100};
    const float scales[] = {0.1f, 1.0f, 4.0f, 20.0f, 120.0f};
    for (size_t hi = 0; hi < sizeof Hs / sizeof *Hs; hi++)
        for (size_t si = 0; si < sizeof scales / sizeof *scales; si++) {
            int H = Hs[hi], B = 3, ldm = H + 3, lda = 4 * H + (int)(hi % 2) * 5; /* act rows: dense or padded */
            size_t na = (size_t)B * lda, nh = (size_t)B * H;
            float *a1 = malloc(na * 4), *a2 = malloc(na * 4), *cp = malloc(nh * 4);
            float *c1 = malloc(nh * 4), *c2 = malloc(nh * 4), *m1 = calloc((size_t)B * ldm, 4), *m2 = calloc((size_t)B * ldm, 4);
            for (size_t i = 0; i < na; i++) a1[i] = a2[i] = frand(scales[si]);
            for (size_t i = 0; i < nh; i++) cp[i] = frand(2.0f);
            lstm__gates_forward_ref(a1, lda, c1, m1, ldm, cp, B, H);
            lstm__gates_forward_avx512(a2, lda, c2, m2, ldm, cp, B, H);
            double ea = test_maxabs(a1, a2, na), ec = test_maxabs(c1, c2, nh), em = test_maxabs(m1, m2, (size_t)B * ldm);
            CHECK_V(ea < 4e-7 && ec < 8e-7 && em < 4e-7, "forward  H=%3d |x|<%5.1f: act %.1e c %.1e h %.1e", H,
                    scales[si], ea, ec, em);
            float *dm = malloc((size_t)B * ldm * 4), *dc1 = malloc(nh * 4), *dc2 = malloc(nh * 4);
            float *g1 = calloc(na, 4), *g2 = calloc(na, 4); /* (the padding stays 0) */
            for (size_t i = 0; i < (size_t)B * ldm; i++) dm[i] = frand(1.0f);
            for (size_t i = 0; i < nh; i++) dc1[i] = dc2[i] = frand(1.0f);
            lstm__gates_backward_ref(g1, dc1, dm, ldm, a1, lda, c1, cp, B, H);
            lstm__gates_backward_avx512(g2, dc2, dm, ldm, a1, lda, c1, cp, B, H);
            double eg = test_maxabs(g1, g2, na), ed = test_maxabs(dc1, dc2, nh);
            CHECK_V(eg < 1e-6 && ed < 1e-6, "backward H=%3d |x|<%5.1f: dG %.1e dc %.1e", H, scales[si], eg, ed);
            /* NULL c_prev means zeros */
            lstm__gates_forward_avx512(a2, lda, c2, m2, ldm, NULL, B, H);
            int finite = 1;
            for (size_t i = 0; i < nh; i++) finite &= isfinite(c2[i]) && fabsf(c2[i]) <= 1.0f;
            CHECK(finite, "forward with c_prev NULL gives |c| <= 1");
            free(a1); free(a2); free(cp); free(c1); free(c2); free(m1); free(m2);
            free(dm); free(dc1); free(dc2); free(g1); free(g2);
        }
#else
    TEST_SKIP("not x86-64: only the scalar path exists");
#endif
    return TEST_REPORT();
}
