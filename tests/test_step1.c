/* test_step1.c — the batch-1 step (src/kernels/step1_avx512.c):
 *   - the kernel against its twin lstm__step_avx512 (B = 1), bit for bit, for
 *     H = 1..130 and I in {1, 3, 256}, with x in the step and with the
 *     pre-activations given (x NULL), with and without bias and state;
 *   - one step per lstm_stream call against GEMM + gate kernel (LSTM_FUSED=0),
 *     bit for bit, and against a float64 reference of the equations;
 *   - streaming in pieces == one call; 1, 2 and 3 threads identical;
 *   - deep, projected, bidirectional and training runs at B = 1 give the same
 *     bits (outputs and gradients) as the GEMM path;
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

/* lstm__step1_avx512 vs lstm__step_avx512 at B = 1 on random weights: act, c, m bit for bit. */
#if LSTM_X86
static float *falloc(size_t n) { return aligned_alloc(64, ((n ? n : 1) * sizeof(float) + 63) / 64 * 64); }
#endif

static void test_kernel(void) {
#if !LSTM_X86
    CHECK_V(1, "no x86 kernels in this build: the batch-1 kernel is compiled out (nothing to compare)");
#else
    if (!lstm__kernel_gates_avx512()) {
        printf("note: no AVX-512 here, the batch-1 kernel is not used and not tested\n");
        return;
    }
    const int Is[] = {1, 3, 256};
    int runs = 0, bad = 0;
    for (int ii = 0; ii < 3; ii++)
        for (int H = 1; H <= 130; H++) {
            const int I = Is[ii], G = 4 * H;
            float *wih = falloc((size_t)G * I), *whh = falloc((size_t)G * H), *b = falloc(G);
            float *x = falloc(I), *h = falloc(H), *cp = falloc(H), *pre = falloc(G);
            float *P1 = falloc(lstm__step1_pack_size(H, I, H));
            float *pu = falloc(lstm__pack_units_size(H, H)), *pui = falloc(lstm__pack_units_size(H, I));
            float *act[2], *c[2], *m[2];
            for (int k = 0; k < 2; k++) { act[k] = falloc(G); c[k] = falloc(H); m[k] = falloc(H); }
            fill(wih, (size_t)G * I, 0.5f); fill(whh, (size_t)G * H, 0.5f); fill(b, G, 0.5f);
            fill(x, I, 1.0f); fill(h, H, 1.0f); fill(cp, H, 2.0f); fill(pre, G, 3.0f);
            lstm__step1_pack(P1, H, I, H, wih, whh);
            lstm__pack_units(pu, H, H, whh, H);
            lstm__pack_units(pui, H, I, wih, I);
            const int nub = (H + 15) / 16, ng = (nub + 3) / 4;
            /* variants: x with bias, x without bias or state, pre-activations given (x NULL) */
            for (int var = 0; var < 3; var++) {
                const float *xv = var < 2 ? x : NULL, *bv = var == 0 ? b : NULL;
                const float *hv = var == 1 ? NULL : h, *cv = var == 1 ? NULL : cp;
                memcpy(act[0], pre, G * sizeof(float));
                memcpy(act[1], pre, G * sizeof(float));
                lstm__step_avx512(1, H, H, I, 0, nub, act[0], xv, I, pui, bv, hv, H, pu, cv, c[0], m[0], H);
                lstm__step1_avx512(H, I, H, 0, ng, P1, act[1], xv, bv, hv, cv, c[1], m[1]);
                int same = memcmp(act[0], act[1], G * sizeof(float)) == 0 && memcmp(c[0], c[1], H * sizeof(float)) == 0 &&
                           memcmp(m[0], m[1], H * sizeof(float)) == 0;
                if (!same && bad++ < 5) printf("  kernel differs: I=%d H=%d variant %d\n", I, H, var);
                runs++;
            }
            free(wih); free(whh); free(b); free(x); free(h); free(cp); free(pre); free(P1); free(pu); free(pui);
            for (int k = 0; k < 2; k++) { free(act[k]); free(c[k]); free(m[k]); }
        }
    CHECK_V(bad == 0, "batch-1 kernel == lstm__step_avx512 bit for bit (%d runs: H 1..130, I 1/3/256, 3 variants)", runs);
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

/* One step per lstm_stream call (the batch-1 path) vs lstm_forward on the GEMM
 * path: same bits; vs float64: float32 rounding. */
static void test_engine_steps(void) {
    const int Is[] = {1, 3, 256}, T = 4;
    int runs = 0, bad = 0;
    double worst = 0.0;
    for (int ii = 0; ii < 3; ii++)
        for (int H = 1; H <= 130; H++) {
            const int I = Is[ii];
            lstm_config cfg = {.input_size = I, .hidden_size = H, .num_layers = 1, .bias = H % 5 != 0};
            lstm_net net;
            lstm_net_init(&net, &cfg);
            lstm_net_init_uniform(&net, (uint64_t)(H * 7 + I));
            float *x = malloc(sizeof(float) * T * I), *y[2], *h0 = malloc(sizeof(float) * H), *c0 = malloc(sizeof(float) * H);
            float *hn = malloc(sizeof(float) * H), *cn = malloc(sizeof(float) * H);
            fill(x, (size_t)T * I, 1.0f); fill(h0, H, 1.0f); fill(c0, H, 1.0f);
            y[0] = malloc(sizeof(float) * T * H);
            y[1] = malloc(sizeof(float) * T * H);
            /* the GEMM path, whole sequence */
            setenv("LSTM_FUSED", "0", 1);
            lstm_workspace *ws;
            lstm_workspace_init(&ws, &net, T, 1, 0);
            unsetenv("LSTM_FUSED");
            lstm_forward(&net, ws, T, 1, x, h0, c0, y[0], hn, cn);
            lstm_workspace_free(ws);
            /* the batch-1 path, one step per call */
            lstm_workspace_init(&ws, &net, 1, 1, 0);
            lstm_state st;
            lstm_state_init(&st, &net, 1);
            memcpy(st.h, h0, sizeof(float) * H);
            memcpy(st.c, c0, sizeof(float) * H);
            for (int t = 0; t < T; t++) lstm_stream(&net, ws, &st, 1, x + (size_t)t * I, y[1] + (size_t)t * H);
            int same = memcmp(y[0], y[1], sizeof(float) * T * H) == 0 && memcmp(st.h, hn, sizeof(float) * H) == 0 &&
                       memcmp(st.c, cn, sizeof(float) * H) == 0;
            if (!same && bad++ < 5) printf("  stream differs from the GEMM path: I=%d H=%d\n", I, H);
            double *hd = malloc(sizeof(double) * H), *cd = malloc(sizeof(double) * H), *yd = malloc(sizeof(double) * T * H);
            for (int j = 0; j < H; j++) { hd[j] = h0[j]; cd[j] = c0[j]; }
            ref_steps(&net, T, x, hd, cd, yd);
            for (int q = 0; q < T * H; q++) worst = fmax(worst, fabs(yd[q] - y[1][q]));
            for (int j = 0; j < H; j++) worst = fmax(worst, fabs(cd[j] - st.c[j]));
            runs++;
            free(hd); free(cd); free(yd);
            lstm_state_free(&st);
            lstm_workspace_free(ws);
            free(x); free(y[0]); free(y[1]); free(h0); free(c0); free(hn); free(cn);
            lstm_net_free(&net);
        }
    CHECK_V(bad == 0, "one lstm_stream step per call == lstm_forward on the GEMM path, bit for bit (%d nets)", runs);
    CHECK_V(worst < 2e-5, "one step per call vs float64 equations: max abs err %.2e (< 2e-5)", worst);
}

/* Streaming in pieces == one call; threads 1, 2, 3 identical (stream and forward). */
static void test_pieces_threads(void) {
    const int Hs[] = {9, 64, 130, 256}, T = 7;
    for (int hi = 0; hi < 4; hi++) {
        const int H = Hs[hi], I = H == 256 ? 256 : 3;
        lstm_config cfg = {.input_size = I, .hidden_size = H, .num_layers = 2, .bias = 1};
        lstm_net net;
        lstm_net_init(&net, &cfg);
        lstm_net_init_uniform(&net, 21);
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
        CHECK_V(pieces_ok, "H=%-3d I=%-3d 2 layers: streaming in pieces 1,2,3,.. == one call (1-3 threads)", H, I);
        CHECK_V(threads_ok, "H=%-3d I=%-3d 2 layers: 1, 2 and 3 threads give the same bits", H, I);
        free(x); free(y); free(ys);
        lstm_net_free(&net);
    }
}

/* Deep, projected, bidirectional nets at B = 1, inference and training: the
 * batch-1 path (forward with x projected by GEMM, then the step) against the
 * GEMM path: y, hn, cn, dx and every parameter gradient bit for bit. */
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
            setenv("LSTM_FUSED", f ? "1" : "0", 1);
            lstm_workspace *ws;
            lstm_workspace_init(&ws, &net, T, 1, LSTM_WS_TRAIN);
            unsetenv("LSTM_FUSED");
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
        for (int f = 0; f < 2; f++) { free(y[f]); free(dx[f]); free(g[f]); free(hn[f]); free(cn[f]); }
        free(x); free(gy);
        lstm_net_free(&net);
    }
}

/* Greedy generation (lstm_charlm_generate: streaming state, batch-1 step, packed
 * head) against a plain loop of lstm_charlm_forward on the GEMM path: same bytes. */
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
        setenv("LSTM_FUSED", "0", 1);
        lstm_charlm_ws *ws;
        lstm_charlm_ws_init(&ws, &m, (int)np, 1, 0);
        unsetenv("LSTM_FUSED");
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
                "2x%d greedy generation (streaming, batch-1 step) == lstm_charlm_forward loop on the GEMM path "
                "(%zu bytes, %d distinct)", Hs[hi], n, distinct);
        free(h); free(c);
        lstm_charlm_ws_free(ws);
        lstm_charlm_free(&m);
    }
}

int main(void) {
    test_kernel();
    test_engine_steps();
    test_pieces_threads();
    test_batch1_train();
    test_generate();
    return TEST_REPORT();
}
