/* test_step1.c — the batch-1 step (src/kernels/step1_avx512.c), which need not
 * give the bits of the batch path (split FMA chains, the low-latency σ/tanh of
 * simd_avx512.h), against its naive twins and for its invariants:
 *   - sigmoid512_fast / tanh512_fast against libm over a dense sweep of floats
 *     (max ulp) and on NaN, ±Inf;
 *   - the kernel against a float64 step and against lstm__step_avx512 (B = 1)
 *     within a tolerance, for H = 1..130 and I in {1, 3, 256}, with x in the
 *     step and with the pre-activations given (x NULL), with and without bias
 *     and state; x in the step == act = bias + x·W_ihᵀ by an in-order fmaf
 *     chain (the input GEMM's), bit for bit; the same bits on a second call;
 *   - one step per lstm_stream call == lstm_forward at B = 1 (same kernel) bit
 *     for bit, and against the GEMM path and a float64 reference within a
 *     tolerance;
 *   - streaming in pieces == one call; 1, 2 and 3 threads identical;
 *   - deep, projected, bidirectional nets at B = 1: inference near the GEMM
 *     path; training (which keeps the batch path) bit for bit;
 *   - the GRU on the same kernel: stream == forward at B = 1 (bits), near the
 *     GEMM path and float64, pieces and threads (bits);
 *   - greedy generation on the streaming state == a loop of lstm_charlm_forward.
 * On a CPU without AVX-512 the engine never takes this path and only the
 * engine-level comparisons run (they then compare the portable path with itself). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "test.h"

static uint64_t rs = 0x9E3779B97F4A7C15ull;
static float urand(void) { /* [-1, 1) */
    rs ^= rs << 13; rs ^= rs >> 7; rs ^= rs << 17;
    return (float)((double)(rs >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}
static void fill(float *p, size_t n, float scale) { for (size_t i = 0; i < n; i++) p[i] = urand() * scale; }

#if LSTM_X86
static float *falloc(size_t n) { return aligned_alloc(64, ((n ? n : 1) * sizeof(float) + 63) / 64 * 64); }
#include "kernels/simd_avx512.h"

static int64_t ord_of(float f) { /* floats in order on the integers: ulp distance = difference */
    int32_t i;
    memcpy(&i, &f, 4);
    return i < 0 ? -(int64_t)(i & 0x7fffffff) : i;
}
T512 static void fast16(int which, const float *in, float *out) {
    __m512 v = _mm512_loadu_ps(in);
    _mm512_storeu_ps(out, which ? tanh512_fast(v) : sigmoid512_fast(v));
}
#endif

/* sigmoid512_fast, tanh512_fast: every 61st float of [-100, 100] (35 million) against
 * libm where the result is a normal float; non-finite inputs as torch gives them. */
static void test_activations(void) {
#if !LSTM_X86
    TEST_SKIP("no x86 kernels in this build: nothing to sweep");
#else
    if (!lstm__kernel_gates_avx512()) {
        printf("note: no AVX-512 here, the batch-1 kernel is not used and not tested\n");
        return;
    }
    for (int which = 0; which < 2; which++) {
        int64_t worst = 0;
        float at = 0.0f, xs[16], ys[16];
        int n = 0;
        const int32_t lim = 0x42c80000; /* 100.0f */
        for (int64_t b = -(int64_t)lim; b <= lim; b += 61) {
            int32_t i = b < 0 ? (int32_t)((uint32_t)(-b) | 0x80000000u) : (int32_t)b;
            memcpy(&xs[n++], &i, 4);
            if (n < 16) continue;
            fast16(which, xs, ys);
            for (int k = 0; k < 16; k++) {
                float ref = which ? tanhf(xs[k]) : 1.0f / (1.0f + expf(-xs[k]));
                if (fabsf(ref) < 1.17549435e-38f) continue; /* normal results only */
                int64_t u = llabs(ord_of(ys[k]) - ord_of(ref));
                if (u > worst) worst = u, at = xs[k];
            }
            n = 0;
        }
        CHECK_V(worst <= (which ? 6 : 4), "%s vs libm over [-100, 100]: max %lld ulp (at %g; bound %d)",
                which ? "tanh512_fast" : "sigmoid512_fast", (long long)worst, at, which ? 6 : 4);
    }
    float in[16] = {NAN, INFINITY, -INFINITY, 0.0f, -0.0f, 1e-30f, -1e-30f, 1e30f, -1e30f, 88.5f, -88.5f, 87.5f, -87.5f, 1e-45f, 8.0f, -8.0f};
    float s[16], t[16];
    fast16(0, in, s);
    fast16(1, in, t);
    CHECK_V(isnan(s[0]) && isnan(t[0]) && s[1] == 1.0f && s[2] == 0.0f && t[1] == 1.0f && t[2] == -1.0f &&
                s[7] == 1.0f && s[8] == 0.0f && t[7] == 1.0f && t[8] == -1.0f && s[3] == 0.5f && t[3] == 0.0f &&
                t[5] == 1e-30f && t[6] == -1e-30f && t[13] == 1e-45f && t[14] == -t[15] &&
                fabsf(t[14] - tanhf(8.0f)) < 4e-7f,
            "fast σ/tanh: NaN -> NaN, σ(±Inf) = 1/0, tanh(±Inf) = ±1, large, tiny and zero inputs as libm");

#endif
}

#if LSTM_X86
/* One step of one row in float64: act [4H] (pre-activations in, activations out), c, m. */
static void ref_step1(int H, int I, const float *wih, const float *whh, const float *b, const float *x,
                      const float *h, const float *cp, const float *pre, double *act, double *c, double *m) {
    for (int r = 0; r < 4 * H; r++) {
        double a = x ? (b ? (double)b[r] : 0.0) : (double)pre[r];
        for (int k = 0; x && k < I; k++) a += (double)wih[(size_t)r * I + k] * x[k];
        for (int k = 0; h && k < H; k++) a += (double)whh[(size_t)r * H + k] * h[k];
        act[r] = a;
    }
    for (int j = 0; j < H; j++) {
        double i = 1 / (1 + exp(-act[j])), f = 1 / (1 + exp(-act[H + j])), g = tanh(act[2 * H + j]),
               o = 1 / (1 + exp(-act[3 * H + j]));
        act[j] = i, act[H + j] = f, act[2 * H + j] = g, act[3 * H + j] = o;
        c[j] = f * (cp ? cp[j] : 0.0) + i * g;
        m[j] = o * tanh(c[j]);
    }
}
#endif

static void test_kernel(void) {
#if !LSTM_X86
    TEST_SKIP("no x86 kernels in this build: the batch-1 kernel is compiled out (nothing to compare)");
#else
    if (!lstm__kernel_gates_avx512()) return;
    const int Is[] = {1, 3, 256};
    int runs = 0, bad_ref = 0, bad_twin = 0, bad_chain = 0, bad_det = 0;
    double worst_ref = 0.0, worst_twin = 0.0;
    for (int ii = 0; ii < 3; ii++)
        for (int H = 1; H <= 130; H++) {
            const int I = Is[ii], G = 4 * H;
            float *wih = falloc((size_t)G * I), *whh = falloc((size_t)G * H), *b = falloc(G);
            float *x = falloc(I), *h = falloc(H), *cp = falloc(H), *pre = falloc(G), *xa = falloc(G);
            float *P1 = falloc(lstm__step1_pack_size(H, I, H));
            float *pu = falloc(lstm__pack_units_size(H, H)), *pui = falloc(lstm__pack_units_size(H, I));
            float *act[4], *c[4], *m[4];
            double *ad = malloc(sizeof(double) * G), *cd = malloc(sizeof(double) * H), *md = malloc(sizeof(double) * H);
            for (int k = 0; k < 4; k++) { act[k] = falloc(G); c[k] = falloc(H); m[k] = falloc(H); }
            fill(wih, (size_t)G * I, 0.5f); fill(whh, (size_t)G * H, 0.5f); fill(b, G, 0.5f);
            fill(x, I, 1.0f); fill(h, H, 1.0f); fill(cp, H, 2.0f); fill(pre, G, 3.0f);
            lstm__step1_pack(P1, H, I, H, wih, whh);
            lstm__pack_units(pu, H, H, whh, H);
            lstm__pack_units(pui, H, I, wih, I);
            for (int r = 0; r < G; r++) { /* bias + x·W_ihᵀ, one in-order chain (the input GEMM's) */
                float a = b[r];
                for (int k = 0; k < I; k++) a = fmaf(x[k], wih[(size_t)r * I + k], a);
                xa[r] = a;
            }
            const int nub = (H + 15) / 16, ng = lstm__step1_groups(H, I, H);
            /* variants: x with bias, x without bias or state, pre-activations given (x NULL) */
            for (int var = 0; var < 3; var++) {
                const float *xv = var < 2 ? x : NULL, *bv = var == 0 ? b : NULL;
                const float *hv = var == 1 ? NULL : h, *cv = var == 1 ? NULL : cp;
                for (int k = 0; k < 3; k++) memcpy(act[k], pre, G * sizeof(float));
                lstm__step_avx512(1, H, H, I, 0, nub, 0, act[0], 4 * H, xv, I, pui, bv, hv, H, pu, cv, c[0], m[0], H);
                lstm__step1_avx512(H, I, H, 0, ng, var & 1, P1, act[1], xv, bv, hv, cv, c[1], m[1], NULL);
                lstm__step1_avx512(H, I, H, 0, ng, !(var & 1), P1, act[2], xv, bv, hv, cv, c[2], m[2], m[3]);
                ref_step1(H, I, wih, whh, bv, xv, hv, cv, pre, ad, cd, md);
                double er = 0.0;
                for (int r = 0; r < G; r++) er = fmax(er, fabs(ad[r] - act[1][r]));
                for (int j = 0; j < H; j++) er = fmax(er, fmax(fabs(cd[j] - c[1][j]), fabs(md[j] - m[1][j])));
                double et = fmax(test_maxabs(act[0], act[1], G), fmax(test_maxabs(c[0], c[1], H), test_maxabs(m[0], m[1], H)));
                worst_ref = fmax(worst_ref, er);
                worst_twin = fmax(worst_twin, et);
                if (!(er < 1e-5) && bad_ref++ < 5) printf("  kernel vs float64: I=%d H=%d variant %d: %.2e\n", I, H, var, er);
                if (!(et < 1e-5) && bad_twin++ < 5) printf("  kernel vs lstm__step_avx512: I=%d H=%d variant %d: %.2e\n", I, H, var, et);
                if ((memcmp(act[1], act[2], G * sizeof(float)) || memcmp(c[1], c[2], H * sizeof(float)) ||
                     memcmp(m[1], m[2], H * sizeof(float)) || memcmp(m[2], m[3], H * sizeof(float))) && bad_det++ < 5)
                    printf("  kernel not deterministic (or m2 != m): I=%d H=%d variant %d\n", I, H, var);
                if (var == 0) { /* x and bias in the step == act given as bias + x·W_ihᵀ */
                    memcpy(act[3], xa, G * sizeof(float));
                    lstm__step1_avx512(H, I, H, 0, ng, var & 1, P1, act[3], NULL, NULL, h, cp, c[3], m[3], NULL);
                    if ((memcmp(act[1], act[3], G * sizeof(float)) || memcmp(c[1], c[3], H * sizeof(float)) ||
                         memcmp(m[1], m[3], H * sizeof(float))) && bad_chain++ < 5)
                        printf("  x in the step != act = bias + x·W_ihᵀ given: I=%d H=%d\n", I, H);
                }
                runs++;
            }
            free(wih); free(whh); free(b); free(x); free(h); free(cp); free(pre); free(xa); free(P1); free(pu); free(pui);
            free(ad); free(cd); free(md);
            for (int k = 0; k < 4; k++) { free(act[k]); free(c[k]); free(m[k]); }
        }
    CHECK_V(bad_ref == 0, "batch-1 kernel vs a float64 step: max abs err %.2e (< 1e-5; %d runs: H 1..130, I 1/3/256, 3 variants)",
            worst_ref, runs);
    CHECK_V(bad_twin == 0, "batch-1 kernel vs lstm__step_avx512 (B = 1): max abs diff %.2e (< 1e-5)", worst_twin);
    CHECK_V(bad_chain == 0, "batch-1 kernel: x in the step == pre-activations from an in-order bias + x·W_ihᵀ chain, bit for bit");
    CHECK_V(bad_det == 0, "batch-1 kernel: the same bits on a second call with the groups in the other order, m2 == m");
#endif
}

/* float64 reference, one layer, B = 1: T steps from h, c (updated). */
static void ref_steps(const lstm_net *net, int T, const float *x, double *h, double *c, double *y) {
    const lstm_weights *w = &net->w[0];
    const int H = net->H, I = net->cfg.input_size;
    double *g = malloc(sizeof(double) * 4 * H);
    for (int t = 0; t < T; t++) {
        for (int r = 0; r < 4 * H; r++) {
            double a = w->b_ih ? (double)w->b_ih[r] + w->b_hh[r] : 0.0;
            for (int k = 0; k < I; k++) a += (double)w->w_ih[(size_t)r * I + k] * x[(size_t)t * I + k];
            for (int k = 0; k < H; k++) a += (double)w->w_hh[(size_t)r * H + k] * h[k];
            g[r] = a;
        }
        for (int j = 0; j < H; j++) {
            double i = 1 / (1 + exp(-g[j])), f = 1 / (1 + exp(-g[H + j])), gg = tanh(g[2 * H + j]),
                   o = 1 / (1 + exp(-g[3 * H + j]));
            c[j] = f * c[j] + i * gg;
            h[j] = o * tanh(c[j]);
            y[(size_t)t * H + j] = h[j];
        }
    }
    free(g);
}

/* float64 GRU (torch.nn.GRU), one layer, B = 1: T steps from h (updated). */
static void gru_ref_steps(const lstm_net *net, int T, const float *x, double *h, double *y) {
    const lstm_weights *w = &net->w[0];
    const int H = net->H, I = net->cfg.input_size;
    double *gi = malloc(sizeof(double) * 3 * H), *gh = malloc(sizeof(double) * 3 * H);
    for (int t = 0; t < T; t++) {
        for (int r = 0; r < 3 * H; r++) {
            double a = w->b_ih ? w->b_ih[r] : 0.0, b = w->b_hh ? w->b_hh[r] : 0.0;
            for (int k = 0; k < I; k++) a += (double)w->w_ih[(size_t)r * I + k] * x[(size_t)t * I + k];
            for (int k = 0; k < H; k++) b += (double)w->w_hh[(size_t)r * H + k] * h[k];
            gi[r] = a, gh[r] = b;
        }
        for (int j = 0; j < H; j++) {
            double r = 1 / (1 + exp(-(gi[j] + gh[j]))), z = 1 / (1 + exp(-(gi[H + j] + gh[H + j])));
            double n = tanh(gi[2 * H + j] + r * gh[2 * H + j]);
            h[j] = (1 - z) * n + z * h[j];
            y[(size_t)t * H + j] = h[j];
        }
    }
    free(gi); free(gh);
}

/* Streaming in pieces == one call; threads 1, 2, 3 identical (stream and
 * forward): 2-layer nets of either cell, H = 9, 64, 130 (I = 3) and 256 (I = 256). */
static void pieces_threads(lstm_cell_kind cell, uint64_t seed) {
    const int Hs[] = {9, 64, 130, 256}, T = 7;
    const char *name = cell == LSTM_CELL_GRU ? "gru " : "";
    for (int hi = 0; hi < 4; hi++) {
        const int H = Hs[hi], I = H == 256 ? 256 : 3;
        lstm_config cfg = {.input_size = I, .hidden_size = H, .num_layers = 2, .bias = 1, .cell = cell};
        lstm_net net;
        lstm_net_init(&net, &cfg);
        lstm_net_init_uniform(&net, seed);
        size_t ny = (size_t)T * H;
        float *x = malloc(sizeof(float) * T * I), *y = malloc(sizeof(float) * ny), *ys = malloc(sizeof(float) * ny);
        fill(x, (size_t)T * I, 1.0f);
        int pieces_ok = 1, threads_ok = 1;
        for (int n = 1; n <= 3; n++) {
            lstm_workspace *ws;
            lstm_workspace_init(&ws, &net, T, 1, 0);
            lstm_workspace_set_threads(ws, n);
            float *yw = n == 1 ? y : ys;
            lstm_forward(&net, ws, T, 1, x, NULL, NULL, yw, NULL, NULL);
            if (n > 1) threads_ok &= memcmp(y, ys, sizeof(float) * ny) == 0;
            lstm_state st;
            lstm_state_init(&st, &net, 1);
            for (int t = 0, piece = 1; t < T; t += piece, piece++) {
                int k = piece < T - t ? piece : T - t;
                lstm_stream(&net, ws, &st, k, x + (size_t)t * I, ys + (size_t)t * H);
            }
            pieces_ok &= memcmp(y, ys, sizeof(float) * ny) == 0;
            lstm_state_free(&st);
            lstm_workspace_free(ws);
        }
        CHECK_V(pieces_ok, "%sH=%-3d I=%-3d 2 layers: streaming in pieces 1,2,3,.. == one call (1-3 threads)", name, H, I);
        CHECK_V(threads_ok, "%sH=%-3d I=%-3d 2 layers: 1, 2 and 3 threads give the same bits", name, H, I);
        free(x); free(y); free(ys);
        lstm_net_free(&net);
    }
}

static void test_pieces_threads(void) { pieces_threads(LSTM_CELL_LSTM, 21); }

/* One step per lstm_stream call (the batch-1 path) vs lstm_forward at B = 1 over
 * the whole sequence (x·W_ihᵀ by the GEMM, then the same kernel): same bits; vs
 * the GEMM path (LSTM_FUSED=0): near; vs float64: float32 rounding.  Either cell,
 * one layer, from a given h0 (and c0). */
static void engine_steps(lstm_cell_kind cell) {
    const int Is[] = {1, 3, 256}, T = 4, gru = cell == LSTM_CELL_GRU;
    const char *name = gru ? "gru: " : "";
    int runs = 0, bad = 0;
    double worst = 0.0, worst_gemm = 0.0;
    for (int ii = 0; ii < 3; ii++)
        for (int H = 1; H <= 130; H += gru && H >= 20 ? 7 : 1) {
            const int I = Is[ii];
            lstm_config cfg = {.input_size = I, .hidden_size = H, .num_layers = 1, .bias = H % 5 != 0, .cell = cell};
            lstm_net net;
            lstm_net_init(&net, &cfg);
            lstm_net_init_uniform(&net, (uint64_t)(H * (gru ? 5 : 7) + I));
            float *x = malloc(sizeof(float) * T * I), *y[3], *h0 = malloc(sizeof(float) * H), *c0 = malloc(sizeof(float) * H);
            float *hn = malloc(sizeof(float) * H), *cn = malloc(sizeof(float) * H);
            fill(x, (size_t)T * I, 1.0f); fill(h0, H, 1.0f); fill(c0, H, 1.0f); /* (c0: LSTM only) */
            for (int k = 0; k < 3; k++) y[k] = malloc(sizeof(float) * T * H);
            /* the GEMM path, whole sequence */
            lstm__kernel_set_fused(0);
            lstm_workspace *ws;
            lstm_workspace_init(&ws, &net, T, 1, 0);
            lstm__kernel_set_fused(-1);
            lstm_forward(&net, ws, T, 1, x, h0, gru ? NULL : c0, y[2], NULL, NULL);
            lstm_workspace_free(ws);
            /* the batch-1 path, whole sequence */
            lstm_workspace_init(&ws, &net, T, 1, 0);
            lstm_forward(&net, ws, T, 1, x, h0, gru ? NULL : c0, y[0], hn, gru ? NULL : cn);
            lstm_workspace_free(ws);
            /* the batch-1 path, one step per call */
            lstm_workspace_init(&ws, &net, 1, 1, 0);
            lstm_state st;
            lstm_state_init(&st, &net, 1);
            memcpy(st.h, h0, sizeof(float) * H);
            if (!gru) memcpy(st.c, c0, sizeof(float) * H);
            for (int t = 0; t < T; t++) lstm_stream(&net, ws, &st, 1, x + (size_t)t * I, y[1] + (size_t)t * H);
            int same = memcmp(y[0], y[1], sizeof(float) * T * H) == 0 && memcmp(st.h, hn, sizeof(float) * H) == 0 &&
                       (gru || memcmp(st.c, cn, sizeof(float) * H) == 0);
            if (!same && bad++ < 5) printf("  %sstream differs from lstm_forward at B = 1: I=%d H=%d\n", name, I, H);
            worst_gemm = fmax(worst_gemm, test_maxabs(y[1], y[2], (size_t)T * H));
            double *hd = malloc(sizeof(double) * H), *cd = malloc(sizeof(double) * H), *yd = malloc(sizeof(double) * T * H);
            for (int j = 0; j < H; j++) hd[j] = h0[j], cd[j] = c0[j];
            if (gru) gru_ref_steps(&net, T, x, hd, yd);
            else ref_steps(&net, T, x, hd, cd, yd);
            for (int q = 0; q < T * H; q++) worst = fmax(worst, fabs(yd[q] - y[1][q]));
            for (int j = 0; !gru && j < H; j++) worst = fmax(worst, fabs(cd[j] - st.c[j]));
            runs++;
            free(hd); free(cd); free(yd);
            lstm_state_free(&st);
            lstm_workspace_free(ws);
            free(x); free(y[0]); free(y[1]); free(y[2]); free(h0); free(c0); free(hn); free(cn);
            lstm_net_free(&net);
        }
    CHECK_V(bad == 0, "%sone lstm_stream step per call == lstm_forward at B = 1, bit for bit (%d nets)", name, runs);
    CHECK_V(worst_gemm < 1e-5, "%sone step per call vs the GEMM path: max abs diff %.2e (< 1e-5)", name, worst_gemm);
    CHECK_V(worst < 2e-5, "%sone step per call vs float64 equations: max abs err %.2e (< 2e-5)", name, worst);
}

static void test_engine_steps(void) { engine_steps(LSTM_CELL_LSTM); }

/* The GRU on the same kernel: one step per lstm_stream call == lstm_forward at B = 1
 * (bits); vs the GEMM path and float64 (near); pieces and 1-3 threads (bits). */
static void test_gru(void) {
    engine_steps(LSTM_CELL_GRU);
    pieces_threads(LSTM_CELL_GRU, 23);
}

/* Deep, projected, bidirectional nets at B = 1.  Training keeps the batch
 * path's fused step (a batch split into slices of one row, as over MPI ranks,
 * gives the bits of the whole batch): y, hn, cn, dx and every parameter
 * gradient bit for bit against the GEMM path.  Inference takes the batch-1
 * step: y, hn, cn near the GEMM path's. */
static void test_batch1_train(void) {
    lstm_config cfgs[] = {
        {.input_size = 5, .hidden_size = 33, .num_layers = 2, .bias = 1},
        {.input_size = 4, .hidden_size = 20, .num_layers = 2, .proj_size = 7, .bias = 1},
        {.input_size = 6, .hidden_size = 70, .num_layers = 2, .bias = 1, .bidirectional = 1},
        {.input_size = 1, .hidden_size = 17, .num_layers = 1, .bias = 0},
    };
    const int T = 5;
    for (int ci = 0; ci < 4; ci++) {
        lstm_net net;
        lstm_net_init(&net, &cfgs[ci]);
        lstm_net_init_uniform(&net, 4);
        int I = cfgs[ci].input_size, D = net.D, L = cfgs[ci].num_layers;
        size_t nx = (size_t)T * I, ny = (size_t)T * D * net.Hout, nh = (size_t)L * D * net.Hout, nc = (size_t)L * D * net.H;
        float *x = malloc(sizeof(float) * nx), *gy = malloc(sizeof(float) * ny), *y[2], *dx[2], *g[2], *hn[2], *cn[2];
        fill(x, nx, 1.0f);
        fill(gy, ny, 1.0f);
        for (int f = 0; f < 2; f++) {
            y[f] = malloc(sizeof(float) * ny); dx[f] = malloc(sizeof(float) * nx); g[f] = malloc(sizeof(float) * net.n_params);
            hn[f] = malloc(sizeof(float) * nh); cn[f] = malloc(sizeof(float) * nc);
            lstm__kernel_set_fused(f);
            lstm_workspace *ws;
            lstm_workspace_init(&ws, &net, T, 1, LSTM_WS_TRAIN);
            lstm__kernel_set_fused(-1);
            lstm_net_zero_grad(&net);
            lstm_forward(&net, ws, T, 1, x, NULL, NULL, y[f], hn[f], cn[f]);
            lstm_backward(&net, ws, gy, NULL, NULL, dx[f], NULL, NULL);
            memcpy(g[f], net.grads, sizeof(float) * net.n_params);
            lstm_workspace_free(ws);
        }
        CHECK_V(memcmp(y[0], y[1], sizeof(float) * ny) == 0 && memcmp(hn[0], hn[1], sizeof(float) * nh) == 0 &&
                    memcmp(cn[0], cn[1], sizeof(float) * nc) == 0 && memcmp(dx[0], dx[1], sizeof(float) * nx) == 0 &&
                    memcmp(g[0], g[1], sizeof(float) * net.n_params) == 0,
                "B=1 I=%d H=%d L=%d P=%d D=%d bias=%d: training forward+backward == GEMM path, bit for bit", I,
                cfgs[ci].hidden_size, L, cfgs[ci].proj_size, D, cfgs[ci].bias);
        double e = 0.0;
        for (int f = 0; f < 2; f++) { /* inference: f = 1 the batch-1 step */
            lstm__kernel_set_fused(f);
            lstm_workspace *ws;
            lstm_workspace_init(&ws, &net, T, 1, 0);
            lstm__kernel_set_fused(-1);
            lstm_forward(&net, ws, T, 1, x, NULL, NULL, y[f], hn[f], cn[f]);
            lstm_workspace_free(ws);
        }
        e = fmax(test_maxabs(y[0], y[1], ny), fmax(test_maxabs(hn[0], hn[1], nh), test_maxabs(cn[0], cn[1], nc)));
        CHECK_V(e < 1e-5, "B=1 I=%d H=%d L=%d P=%d D=%d bias=%d: inference (batch-1 step) vs GEMM path: max abs diff %.2e",
                I, cfgs[ci].hidden_size, L, cfgs[ci].proj_size, D, cfgs[ci].bias, e);
        for (int f = 0; f < 2; f++) { free(y[f]); free(dx[f]); free(g[f]); free(hn[f]); free(cn[f]); }
        free(x); free(gy);
        lstm_net_free(&net);
    }
}

/* Greedy generation (lstm_charlm_generate: streaming state, batch-1 step, packed
 * head) against a plain loop of lstm_charlm_forward at B = 1 (the same step): same bytes. */
static void test_generate(void) {
    const int Hs[] = {24, 130};
    for (int hi = 0; hi < 2; hi++) {
        enum { V = 64 }; /* bytes 0x20..0x5f */
        unsigned char vocab[V];
        for (int v = 0; v < V; v++) vocab[v] = (unsigned char)(' ' + v);
        lstm_config cfg = {.input_size = 12, .hidden_size = Hs[hi], .num_layers = 2, .bias = 1};
        lstm_charlm m;
        lstm_charlm_init(&m, vocab, V, 12, &cfg);
        lstm_charlm_init_params(&m, 7 + hi);
        /* strong weights: the greedy loop wanders instead of settling on one byte */
        for (size_t i = 0; i < (size_t)V * m.net.Hout; i++) m.head_w[i] *= 8.0f;
        for (size_t i = 0; i < m.net.n_params; i++) m.net.params[i] *= 4.0f;
        const unsigned char prime[] = "0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[]!\"#$%&()*+,-./0123456789:;<=>?@ABC";
        const size_t np = sizeof prime - 1, n = 300;
        unsigned char got[300], want[300];
        CHECK(lstm_charlm_generate(&m, prime, np, got, n, 0.0, 0, 1) == LSTM_OK, "generate: %s", lstm_last_error());
        lstm_charlm_ws *ws;
        lstm_charlm_ws_init(&ws, &m, (int)np, 1, 0);
        int L = cfg.num_layers, distinct = 0, seen[V] = {0};
        float *h = calloc((size_t)L * m.net.Hout, sizeof(float)), *c = calloc((size_t)L * m.net.H, sizeof(float));
        uint8_t ids[200];
        lstm_charlm_encode(&m, prime, np, ids, "prime");
        lstm_charlm_forward(&m, ws, (int)np, ids, NULL, h, c, NULL);
        const float *lg = lstm_charlm_logits(ws) + (np - 1) * V;
        for (size_t k = 0; k < n; k++) {
            int pick = 0;
            for (int v = 1; v < V; v++)
                if (lg[v] > lg[pick]) pick = v;
            want[k] = vocab[pick];
            distinct += !seen[pick]++;
            uint8_t id = (uint8_t)pick;
            lstm_charlm_forward(&m, ws, 1, &id, NULL, h, c, NULL);
            lg = lstm_charlm_logits(ws);
        }
        CHECK_V(memcmp(got, want, n) == 0 && distinct > 3,
                "2x%d greedy generation (streaming, batch-1 step) == lstm_charlm_forward loop at B = 1 "
                "(%zu bytes, %d distinct)", Hs[hi], n, distinct);
        free(h); free(c);
        lstm_charlm_ws_free(ws);
        lstm_charlm_free(&m);
    }
}

/* One step per lstm_stream call (after the first: the lean one-group entry at H <= 48,
 * straight on the state; the group path above) == one lstm_forward call at B = 1 with
 * the same h0/c0: y, hn and cn bit for bit; LSTM and GRU, 1 and 3 layers, bias or not. */
static void test_stream_steps(void) {
    const int Hs[] = {1, 8, 13, 16, 24, 40, 48, 64}, T = 9;
    int bad = 0, runs = 0;
    for (int cell = 0; cell < 2; cell++)
        for (int hi = 0; hi < 8; hi++)
            for (int L = 1; L <= 3; L += 2)
                for (int bias = 0; bias < 2; bias++) {
                    const int H = Hs[hi], I = 1 + hi % 3;
                    lstm_config cfg = {.input_size = I, .hidden_size = H, .num_layers = L, .bias = bias, .cell = cell};
                    lstm_net net;
                    lstm_net_init(&net, &cfg);
                    lstm_net_init_uniform(&net, 40 + (uint64_t)hi);
                    size_t ny = (size_t)T * H, ns = (size_t)L * H;
                    float *x = malloc(sizeof(float) * T * I), *y = malloc(sizeof(float) * ny);
                    float *ys = malloc(sizeof(float) * ny), *h0 = malloc(sizeof(float) * ns);
                    float *c0 = malloc(sizeof(float) * ns), *hn = malloc(sizeof(float) * ns);
                    float *cn = malloc(sizeof(float) * ns);
                    fill(x, (size_t)T * I, 1.0f);
                    fill(h0, ns, 0.5f);
                    fill(c0, ns, 2.0f);
                    lstm_workspace *wa, *wb;
                    lstm_workspace_init(&wa, &net, T, 1, 0);
                    lstm_workspace_init(&wb, &net, 1, 1, 0);
                    lstm_forward(&net, wa, T, 1, x, h0, cell ? NULL : c0, y, hn, cell ? NULL : cn);
                    lstm_state st;
                    lstm_state_init(&st, &net, 1);
                    memcpy(st.h, h0, sizeof(float) * ns);
                    if (st.c) memcpy(st.c, c0, sizeof(float) * ns);
                    for (int t = 0; t < T; t++) lstm_stream(&net, wb, &st, 1, x + (size_t)t * I, ys + (size_t)t * H);
                    int same = memcmp(y, ys, sizeof(float) * ny) == 0 && memcmp(hn, st.h, sizeof(float) * ns) == 0 &&
                               (cell || memcmp(cn, st.c, sizeof(float) * ns) == 0);
                    if (!same) printf("  stream != forward: %s H=%d I=%d L=%d bias=%d\n", cell ? "gru" : "lstm", H, I, L, bias);
                    bad += !same;
                    runs++;
                    lstm_state_free(&st);
                    lstm_workspace_free(wa);
                    lstm_workspace_free(wb);
                    free(x); free(y); free(ys); free(h0); free(c0); free(hn); free(cn);
                    lstm_net_free(&net);
                }
    CHECK_V(bad == 0, "one step per lstm_stream call == lstm_forward at B = 1 with h0/c0, bit for bit: y, hn, cn "
                      "(%d of %d nets: LSTM and GRU, H 1-64, 1 and 3 layers, bias or not)", runs - bad, runs);
}

int main(void) {
    test_activations();
    test_kernel();
    test_engine_steps();
    test_gru();
    test_pieces_threads();
    test_stream_steps();
    test_batch1_train();
    test_generate();
    return TEST_REPORT();
}
