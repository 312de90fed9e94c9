/* test_core.c — the sequence engine against an independent float64 reference
 * written here from the equations (no PyTorch needed):
 *   - forward y, hn, cn of deep / bidirectional / projected / bias-free nets,
 *     LSTM and GRU;
 *   - backward: every parameter, x, h0, c0 against central differences of the
 *     float64 reference (eps 1e-6, so the reference gradient is exact to ~1e-9);
 *   - streaming in pieces gives the same bits as the whole sequence;
 *   - the cell equals one step of a one-layer net. */
#include <math.h>
#include <stdio.h>
#include <limits.h>
#include <stdlib.h>
#include <sched.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h" /* lstm__kernel_set_fused */
#include "lstm.h"
#include "test.h"

static uint64_t rs = 88172645463325252ull;
static double urand(void) { /* [-1, 1) */
    rs ^= rs << 13; rs ^= rs >> 7; rs ^= rs << 17;
    return (double)(rs >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}
static void fill(float *p, size_t n, double scale) { for (size_t i = 0; i < n; i++) p[i] = (float)(urand() * scale); }
static double sig(double v) { return 1.0 / (1.0 + exp(-v)); }

/* float64 reference of torch.nn.LSTM / nn.GRU.  params as floats (net layout), x [T,B,I],
 * h0/c0 may be NULL.  Writes y [T,B,D*Hout], hn, cn (double; no cn for a GRU). */
static void ref_forward(const lstm_net *net, const double *P, int T, int B, const double *x,
                        const double *h0, const double *c0, double *y, double *hn, double *cn) {
    int L = net->cfg.num_layers, D = net->D, H = net->H, Ho = net->Hout;
    double *in = malloc(sizeof(double) * (size_t)T * B * (net->cfg.input_size > D * Ho ? net->cfg.input_size : D * Ho));
    double *out = malloc(sizeof(double) * (size_t)T * B * D * Ho);
    double *h = malloc(sizeof(double) * Ho), *c = malloc(sizeof(double) * H), *m = malloc(sizeof(double) * H);
    double *gt = malloc(sizeof(double) * 4 * H), *gh = malloc(sizeof(double) * 4 * H);
    const int gru = net->cfg.cell == LSTM_CELL_GRU, G = gru ? 3 : 4;
    int insz = net->cfg.input_size;
    memcpy(in, x, sizeof(double) * (size_t)T * B * insz);
    for (int l = 0; l < L; l++) {
        for (int d = 0; d < D; d++) {
            const lstm_weights *w = &net->w[l * D + d];
            size_t o_ih = (size_t)(w->w_ih - net->params), o_hh = (size_t)(w->w_hh - net->params);
            for (int b = 0; b < B; b++) {
                size_t k = (size_t)(l * D + d) * B + b;
                for (int j = 0; j < Ho; j++) h[j] = h0 ? h0[k * Ho + j] : 0.0;
                for (int j = 0; j < H; j++) c[j] = c0 ? c0[k * H + j] : 0.0;
                for (int s = 0; s < T; s++) {
                    int t = d ? T - 1 - s : s;
                    const double *xt = in + ((size_t)t * B + b) * insz;
                    for (int r = 0; r < G * H; r++) { /* gt = W_ih x + b_ih, gh = W_hh h + b_hh */
                        double a = 0.0, ah = 0.0;
                        for (int q = 0; q < insz; q++) a += P[o_ih + (size_t)r * insz + q] * xt[q];
                        for (int q = 0; q < Ho; q++) ah += P[o_hh + (size_t)r * Ho + q] * h[q];
                        if (w->b_ih) {
                            a += P[w->b_ih - net->params + r];
                            ah += P[w->b_hh - net->params + r];
                        }
                        gt[r] = gru ? a : a + ah;
                        gh[r] = ah;
                    }
                    for (int j = 0; gru && j < H; j++) { /* r, z, n; h' = (1 - z)·n + z·h */
                        double r = sig(gt[j] + gh[j]), z = sig(gt[H + j] + gh[H + j]);
                        double n = tanh(gt[2 * H + j] + r * gh[2 * H + j]);
                        m[j] = (1.0 - z) * n + z * h[j];
                    }
                    for (int j = 0; !gru && j < H; j++) {
                        double i = sig(gt[j]), f = sig(gt[H + j]), g = tanh(gt[2 * H + j]), o = sig(gt[3 * H + j]);
                        c[j] = f * c[j] + i * g;
                        m[j] = o * tanh(c[j]);
                    }
                    if (w->w_hr) {
                        size_t o_hr = (size_t)(w->w_hr - net->params);
                        for (int p = 0; p < Ho; p++) {
                            double a = 0.0;
                            for (int j = 0; j < H; j++) a += P[o_hr + (size_t)p * H + j] * m[j];
                            h[p] = a;
                        }
                    } else {
                        memcpy(h, m, sizeof(double) * H);
                    }
                    memcpy(out + ((size_t)t * B + b) * D * Ho + (size_t)d * Ho, h, sizeof(double) * Ho);
                }
                memcpy(hn + k * Ho, h, sizeof(double) * Ho);
                if (!gru) memcpy(cn + k * H, c, sizeof(double) * H);
            }
        }
        insz = D * Ho;
        memcpy(in, out, sizeof(double) * (size_t)T * B * insz);
    }
    memcpy(y, out, sizeof(double) * (size_t)T * B * D * Ho);
    free(in); free(out); free(h); free(c); free(m); free(gt); free(gh);
}

static double maxdiff(const float *a, const double *b, size_t n) {
    double m = 0.0;
    for (size_t i = 0; i < n; i++) { double e = fabs((double)a[i] - b[i]); if (!(e <= m)) m = e; }
    return m;
}

typedef struct { const char *name; lstm_config cfg; int T, B, states; } core_case;

static void run_case(const core_case *cc) {
    lstm_net net;
    lstm_status st = lstm_net_init(&net, &cc->cfg);
    CHECK(st == LSTM_OK, "%s: init: %s", cc->name, lstm_last_error());
    if (st) return;
    lstm_net_init_uniform(&net, 7);
    int T = cc->T, B = cc->B, L = cc->cfg.num_layers, D = net.D, H = net.H, Ho = net.Hout, I = cc->cfg.input_size;
    const int gru = cc->cfg.cell == LSTM_CELL_GRU; /* no c: nc = 0, c0/cn/gcn NULL */
    size_t nx = (size_t)T * B * I, ny = (size_t)T * B * D * Ho, nh = (size_t)L * D * B * Ho;
    size_t nc = gru ? 0 : (size_t)L * D * B * H;
    float *x = malloc(nx * 4), *h0 = malloc(nh * 4), *c0 = malloc(nc * 4), *y = malloc(ny * 4);
    float *hn = malloc(nh * 4), *cn = malloc(nc * 4), *gy = malloc(ny * 4), *ghn = malloc(nh * 4), *gcn = malloc(nc * 4);
    float *dx = malloc(nx * 4), *dh0 = malloc(nh * 4), *dc0 = malloc(nc * 4 + 4);
    fill(x, nx, 1.0); fill(h0, nh, 0.5); fill(c0, nc, 0.5); fill(gy, ny, 1.0); fill(ghn, nh, 1.0); fill(gcn, nc, 1.0);
    double *P = malloc(sizeof(double) * net.n_params), *xd = malloc(sizeof(double) * nx);
    double *h0d = malloc(sizeof(double) * nh), *c0d = malloc(sizeof(double) * nc);
    double *yd = malloc(sizeof(double) * ny), *hnd = malloc(sizeof(double) * nh), *cnd = malloc(sizeof(double) * nc);
    for (size_t i = 0; i < net.n_params; i++) P[i] = net.params[i];
    for (size_t i = 0; i < nx; i++) xd[i] = x[i];
    for (size_t i = 0; i < nh; i++) h0d[i] = h0[i];
    for (size_t i = 0; i < nc; i++) c0d[i] = c0[i];
    const float *H0 = cc->states ? h0 : NULL, *C0 = cc->states && !gru ? c0 : NULL;
    const double *H0d = cc->states ? h0d : NULL, *C0d = cc->states && !gru ? c0d : NULL;
    float *CN = gru ? NULL : cn, *GCN = gru ? NULL : gcn, *DC0 = cc->states && !gru ? dc0 : NULL;

    /* forward, inference and training workspaces */
    ref_forward(&net, P, T, B, xd, H0d, C0d, yd, hnd, cnd);
    for (int train = 0; train < 2; train++) {
        lstm_workspace *ws;
        CHECK(lstm_workspace_init(&ws, &net, T, B, train ? LSTM_WS_TRAIN : 0) == LSTM_OK, "ws");
        CHECK(lstm_forward(&net, ws, T, B, x, H0, C0, y, hn, CN) == LSTM_OK, "forward: %s", lstm_last_error());
        double ey = maxdiff(y, yd, ny), eh = maxdiff(hn, hnd, nh), ec = maxdiff(cn, cnd, nc);
        CHECK_V(ey < 2e-5 && eh < 2e-5 && ec < 2e-5, "%-22s forward(%s) vs float64: y %.2e hn %.2e cn %.2e",
                cc->name, train ? "train" : "infer", ey, eh, ec);
        lstm_workspace_free(ws);
    }

    /* backward vs float64 central differences of L = Σ y·gy + Σ hn·ghn + Σ cn·gcn */
    lstm_workspace *ws;
    lstm_workspace_init(&ws, &net, T, B, LSTM_WS_TRAIN);
    lstm_net_zero_grad(&net);
    lstm_forward(&net, ws, T, B, x, H0, C0, y, hn, CN);
    CHECK(lstm_backward(&net, ws, gy, ghn, GCN, dx, cc->states ? dh0 : NULL, DC0) == LSTM_OK, "backward: %s",
          lstm_last_error());
    double worst = 0.0;
    const double eps = 1e-6;
    /* probe a spread of entries in every buffer: params, x, h0, c0 */
    struct { double *v; const float *g; size_t n; const char *what; } probes[4] = {
        {P, net.grads, net.n_params, "params"}, {xd, dx, nx, "x"}, {h0d, dh0, nh, "h0"}, {c0d, dc0, nc, "c0"}};
    int nprobe = cc->states ? (gru ? 3 : 4) : 2;
    for (int pi = 0; pi < nprobe; pi++) {
        size_t n = probes[pi].n, stepk = n / 23 + 1;
        double werr = 0.0;
        for (size_t i = 0; i < n; i += stepk) {
            double keep = probes[pi].v[i];
            double lp, lm, s;
            probes[pi].v[i] = keep + eps;
            ref_forward(&net, P, T, B, xd, H0d, C0d, yd, hnd, cnd);
            s = 0; for (size_t q = 0; q < ny; q++) s += yd[q] * gy[q];
            for (size_t q = 0; q < nh; q++) s += hnd[q] * ghn[q];
            for (size_t q = 0; q < nc; q++) s += cnd[q] * gcn[q];
            lp = s;
            probes[pi].v[i] = keep - eps;
            ref_forward(&net, P, T, B, xd, H0d, C0d, yd, hnd, cnd);
            s = 0; for (size_t q = 0; q < ny; q++) s += yd[q] * gy[q];
            for (size_t q = 0; q < nh; q++) s += hnd[q] * ghn[q];
            for (size_t q = 0; q < nc; q++) s += cnd[q] * gcn[q];
            lm = s;
            probes[pi].v[i] = keep;
            double fd = (lp - lm) / (2 * eps);
            double e = fabs(fd - probes[pi].g[i]) / (1.0 + fabs(fd));
            if (e > werr) werr = e;
        }
        if (werr > worst) worst = werr;
        CHECK_V(werr < 1e-4, "%-22s backward d%-6s vs float64 finite differences: max rel err %.2e", cc->name,
                probes[pi].what, werr);
    }

    /* streaming: pieces of 1, 2, 3, ... steps give the same bits as one call */
    if (D == 1) {
        lstm_workspace *wsi;
        lstm_workspace_init(&wsi, &net, T, B, 0);
        lstm_forward(&net, wsi, T, B, x, H0, C0, y, hn, CN);
        lstm_state s;
        lstm_state_init(&s, &net, B);
        CHECK((s.c == NULL) == gru, "%-22s lstm_state has c exactly for an LSTM", cc->name);
        if (cc->states) {
            memcpy(s.h, h0, nh * 4);
            if (s.c) memcpy(s.c, c0, nc * 4);
        }
        float *ys = malloc(ny * 4);
        int t = 0, piece = 1;
        while (t < T) {
            int n = piece < T - t ? piece : T - t;
            CHECK(lstm_stream(&net, wsi, &s, n, x + (size_t)t * B * I, ys + (size_t)t * B * Ho) == LSTM_OK, "stream");
            t += n;
            piece++;
        }
        CHECK_V(memcmp(ys, y, ny * 4) == 0 && memcmp(s.h, hn, nh * 4) == 0 && (!s.c || memcmp(s.c, cn, nc * 4) == 0),
                "%-22s streaming in pieces is bit-identical to one call", cc->name);
        free(ys);
        lstm_state_free(&s);
        lstm_workspace_free(wsi);
    }
    lstm_workspace_free(ws);
    free(x); free(h0); free(c0); free(y); free(hn); free(cn); free(gy); free(ghn); free(gcn);
    free(dx); free(dh0); free(dc0); free(P); free(xd); free(h0d); free(c0d); free(yd); free(hnd); free(cnd);
    lstm_net_free(&net);
}

static void test_cell(void) {
    lstm_config cfg = {.input_size = 5, .hidden_size = 7, .num_layers = 1, .bias = 1};
    lstm_net net;
    lstm_net_init(&net, &cfg);
    lstm_net_init_uniform(&net, 3);
    int B = 3, I = 5, H = 7;
    float x[15], h[21], c[21], h1[21], c1[21], act[84], y[21], hn[21], cn[21];
    fill(x, 15, 1); fill(h, 21, 1); fill(c, 21, 1);
    const lstm_weights *w = &net.w[0];
    lstm_cell_forward(h1, c1, act, x, h, c, w->w_ih, w->w_hh, w->b_ih, w->b_hh, B, I, H);
    lstm_workspace *ws;
    lstm_workspace_init(&ws, &net, 1, B, 0);
    lstm_forward(&net, ws, 1, B, x, h, c, y, hn, cn);
    double e = 0;
    for (int i = 0; i < 21; i++) e = fmax(e, fmax(fabs(h1[i] - y[i]), fabs(c1[i] - cn[i])));
    CHECK_V(e == 0.0, "cell forward equals one step of lstm_forward (max diff %.1e)", e);
    /* cell backward vs the sequence backward on the same step */
    float gh[21], gc[21], dx[15], dh[21], dc[21], scratch[105], dx2[15], dh2[21], dc2[21];
    fill(gh, 21, 1); fill(gc, 21, 1);
    lstm_net_zero_grad(&net);
    float *dw = calloc(net.n_params, 4);
    const lstm_weights *g = &net.g[0];
    lstm_cell_backward(dx, dh, dc, dw + (g->w_ih - net.grads), dw + (g->w_hh - net.grads), dw + (g->b_ih - net.grads),
                       dw + (g->b_hh - net.grads), gh, gc, act, x, h, c, c1, w->w_ih, w->w_hh, scratch, B, I, H);
    lstm_workspace *wt;
    lstm_workspace_init(&wt, &net, 1, B, LSTM_WS_TRAIN);
    lstm_forward(&net, wt, 1, B, x, h, c, y, hn, cn);
    lstm_backward(&net, wt, NULL, gh, gc, dx2, dh2, dc2);
    e = 0;
    for (int i = 0; i < 15; i++) e = fmax(e, fabs(dx[i] - dx2[i]));
    for (int i = 0; i < 21; i++) e = fmax(e, fmax(fabs(dh[i] - dh2[i]), fabs(dc[i] - dc2[i])));
    for (size_t i = 0; i < net.n_params; i++) e = fmax(e, fabs(dw[i] - net.grads[i]));
    CHECK_V(e < 1e-6, "cell backward equals one step of lstm_backward (max diff %.1e)", e);
    CHECK_V(lstm_backward(&net, wt, NULL, gh, gc, dx2, dh2, dc2) == LSTM_ERR_ARG,
            "a second lstm_backward without a new forward is refused (the saved state was consumed)");
    free(dw);
    lstm_workspace_free(ws);
    lstm_workspace_free(wt);
    lstm_net_free(&net);
}

/* forward + backward with n threads: results must be identical bit for bit. */
static void test_threads(const core_case *cc) {
    lstm_net net;
    lstm_net_init(&net, &cc->cfg);
    lstm_net_init_uniform(&net, 11);
    int T = cc->T, B = cc->B, D = net.D, I = cc->cfg.input_size;
    size_t nx = (size_t)T * B * I, ny = (size_t)T * B * D * net.Hout;
    float *x = malloc(nx * 4), *gy = malloc(ny * 4), *y[3], *dx[3], *g[3];
    fill(x, nx, 1.0);
    fill(gy, ny, 1.0);
    for (int n = 1; n <= 3; n++) {
        y[n - 1] = malloc(ny * 4);
        dx[n - 1] = malloc(nx * 4);
        g[n - 1] = malloc(net.n_params * 4);
        lstm_workspace *ws;
        lstm_workspace_init(&ws, &net, T, B, LSTM_WS_TRAIN);
        CHECK(lstm_workspace_set_threads(ws, n) == LSTM_OK, "set_threads(%d): %s", n, lstm_last_error());
        lstm_net_zero_grad(&net);
        lstm_forward(&net, ws, T, B, x, NULL, NULL, y[n - 1], NULL, NULL);
        lstm_backward(&net, ws, gy, NULL, NULL, dx[n - 1], NULL, NULL);
        memcpy(g[n - 1], net.grads, net.n_params * 4);
        lstm_workspace_free(ws);
    }
    for (int n = 2; n <= 3; n++)
        CHECK_V(memcmp(y[0], y[n - 1], ny * 4) == 0 && memcmp(dx[0], dx[n - 1], nx * 4) == 0 &&
                    memcmp(g[0], g[n - 1], net.n_params * 4) == 0,
                "%-22s T=%d B=%d: 1 and %d threads give identical y, dx and parameter gradients", cc->name, T, B, n);
    for (int n = 0; n < 3; n++) { free(y[n]); free(dx[n]); free(g[n]); }
    free(x); free(gy);
    lstm_net_free(&net);
}

/* The fused AVX-512 step (when the CPU has it) against GEMM + gate kernel:
 * the same bits (inference at B = 1, which runs the batch-1 step of
 * step1_avx512.c, within 1e-5: tests/test_step1.c), LSTM and GRU, for every
 * tile shape (B = 1, 2, 3, 5, 6, 9, 13, 17: tiles of 1 to 6 rows; B = 17 at 2
 * threads splits the batch rows over the threads) and partial unit
 * blocks, with 1, 2 and 3 threads: training forward (y, hn) and backward (dx,
 * dh0, every parameter gradient), with x·W_ihᵀ inside the step or as a GEMM
 * before the loop, and streaming in pieces of 1, 2 and 3 steps (T = 1 runs the
 * step with x·W_ihᵀ inside, longer pieces the
 * hoisted input product). */
enum { FU_Y, FU_HN, FU_DX, FU_DH0, FU_G, FU_YS, FU_N };

/* y [T,B,Hout] = x [T,B,I] streamed through lstm_stream (one direction) in pieces of
 * 1, 2, 3, 1, ... steps from h0 [L,B,Hout] and c0 [L,B,H] (NULL: zeros), on threads. */
static void stream_pieces(lstm_net *net, int T, int B, int threads, const float *x, const float *h0,
                          const float *c0, float *y) {
    const int I = net->cfg.input_size, Hout = net->Hout, L = net->cfg.num_layers;
    lstm_workspace *ws;
    lstm_workspace_init(&ws, net, 3, B, 0);
    lstm_workspace_set_threads(ws, threads);
    lstm_state st;
    lstm_state_init(&st, net, B);
    if (h0) memcpy(st.h, h0, (size_t)L * B * Hout * 4);
    if (c0 && st.c) memcpy(st.c, c0, (size_t)L * B * net->H * 4);
    for (int t = 0, len = 1; t < T; t += len, len = len % 3 + 1) {
        int n = T - t < len ? T - t : len;
        lstm_stream(net, ws, &st, n, x + (size_t)t * B * I, y + (size_t)t * B * Hout);
    }
    lstm_state_free(&st);
    lstm_workspace_free(ws);
}

static void fused_run(lstm_net *net, int T, int B, int threads, const float *x, const float *h0, const float *gy,
                      float *out[FU_N]) {
    lstm_workspace *ws;
    lstm_workspace_init(&ws, net, T, B, LSTM_WS_TRAIN);
    CHECK(lstm_workspace_set_threads(ws, threads) == LSTM_OK, "set_threads(%d): %s", threads, lstm_last_error());
    lstm_net_zero_grad(net);
    lstm_forward(net, ws, T, B, x, h0, NULL, out[FU_Y], out[FU_HN], NULL);
    lstm_backward(net, ws, gy, NULL, NULL, out[FU_DX], out[FU_DH0], NULL);
    memcpy(out[FU_G], net->grads, net->n_params * 4);
    lstm_workspace_free(ws);
    stream_pieces(net, T, B, threads, x, h0, NULL, out[FU_YS]);
}

static void test_fused(void) {
    /* 17 at 2 threads: the row split; 64 at 1 and 2 threads: tasks of >= 32 rows, where the
     * backward forms dX inside its loop when x·W_ihᵀ is in the step */
    /* H = 130 (B = 3, 9, 13; unit split at 2 and 3 threads): dh's 3 column panels of
     * the backward's product split over the team */
    /* 8 (one task) and 16 (tasks of 8 rows at 2 threads): the LSTM's 8-row tile in two
     * passes where lstm__cpu_info.step_two_pass8 says, two tiles of 4 where not: both run */
    const int Bs[] = {1, 2, 3, 5, 6, 8, 9, 13, 16, 17, 64}, Hs[] = {7, 37, 64, 130};
    const int two0 = lstm__cpu()->step_two_pass8;
    for (int cell = LSTM_CELL_LSTM; cell <= LSTM_CELL_GRU; cell++) {
        int all_same = 1, runs = 0;
        for (size_t bi = 0; bi < sizeof Bs / sizeof *Bs; bi++)
            for (size_t hi = 0; hi < sizeof Hs / sizeof *Hs; hi++) {
                if (Hs[hi] == 130 && Bs[bi] != 3 && Bs[bi] != 9 && Bs[bi] != 13) continue;
                lstm_config cfg = {.input_size = 11, .hidden_size = Hs[hi], .num_layers = 2, .bias = hi != 1 || cell,
                                   .proj_size = Hs[hi] == 37 && !cell ? 5 : 0, .cell = cell};
                lstm_net net;
                lstm_net_init(&net, &cfg);
                lstm_net_init_uniform(&net, 5);
                int T = 6, B = Bs[bi], L = 2;
                size_t n[FU_N] = {(size_t)T * B * net.Hout, (size_t)L * B * net.Hout, (size_t)T * B * 11,
                                  (size_t)L * B * net.Hout, net.n_params, (size_t)T * B * net.Hout};
                float *x = malloc(n[FU_DX] * 4), *gy = malloc(n[FU_Y] * 4), *h0 = malloc(n[FU_HN] * 4);
                fill(x, n[FU_DX], 1.0);
                fill(gy, n[FU_Y], 1.0);
                fill(h0, n[FU_HN], 0.5);
                float *ref[FU_N], *got[FU_N];
                for (int k = 0; k < FU_N; k++) { ref[k] = malloc(n[k] * 4); got[k] = malloc(n[k] * 4); }
                lstm__kernel_set_fused(0);
                const float *h0b = B % 2 || B == 8 ? NULL : h0; /* B = 8: the two-pass tile's h = NULL step */
                fused_run(&net, T, B, 1, x, h0b, gy, ref);
                int same = memcmp(ref[FU_Y], ref[FU_YS], n[FU_Y] * 4) == 0; /* streaming == whole */
                for (int threads = 1; threads <= 3; threads++)
                    for (int mode = 0; mode < 4; mode++) { /* x·W_ihᵀ in the step or a GEMM before; two passes or not */
                        const int step_x = mode & 1;
                        if ((mode >> 1) && B != 8 && B != 16) continue;
                        lstm__cpu_set_step_two_pass8(mode >> 1 ? !two0 : two0);
                        lstm__kernel_set_fused(1);
                        lstm__set_step_x(step_x);
                        fused_run(&net, T, B, threads, x, h0b, gy, got);
                        for (int k = 0; k < FU_N; k++) /* B = 1 streams through the batch-1 step: its own rounding */
                            same &= k == FU_YS && B == 1 ? test_maxabs(ref[k], got[k], n[k]) < 1e-5
                                                         : memcmp(ref[k], got[k], n[k] * 4) == 0;
                        runs++;
                    }
                lstm__set_step_x(-1);
                lstm__kernel_set_fused(-1);
                lstm__cpu_set_step_two_pass8(two0);
                if (!same) fprintf(stderr, "  fused differs: %s H=%d B=%d\n", cell ? "gru" : "lstm", Hs[hi], B);
                all_same &= same;
                for (int k = 0; k < FU_N; k++) { free(ref[k]); free(got[k]); }
                free(x); free(gy); free(h0);
                lstm_net_free(&net);
            }
        CHECK_V(all_same,
                "%s: fused step (%s on this CPU) == GEMM + gate kernel, bit for bit: y, hn, dx, dh0, gradients, "
                "x·W_ihᵀ in the step or before it, streaming in pieces (B = 1 streaming: within 1e-5) "
                "(%d runs: shapes x 1-3 threads x both)",
                cell ? "gru" : "lstm", lstm__kernel_fused() ? "on" : "off", runs);
    }
}

/* A workspace whose thread count changes between calls: which layers' W_ih the
 * fused step takes (and packs) depends on the rows and unit blocks a task
 * gets, so the pack must follow the change.  I = H = 256, B = 8: on a 1 MiB L2
 * the input product is a GEMM at 1 thread (all 16 unit blocks, 2 MB) and fused
 * at 2 (the unit split: 8 blocks a task, 1 MB); elsewhere the rule may not
 * flip, and the bits must hold anyway.  Streaming and LSTM_WS_KEEP_PACKS keep
 * their packs between calls. */
static void test_threads_change(void) {
    for (int cell = LSTM_CELL_LSTM; cell <= LSTM_CELL_GRU; cell++) {
        lstm_config cfg = {.input_size = 256, .hidden_size = 256, .num_layers = 1, .bias = 1, .cell = cell};
        lstm_net net;
        lstm_net_init(&net, &cfg);
        lstm_net_init_uniform(&net, 9);
        const int T = 3, B = 8;
        size_t nx = (size_t)T * B * 256;
        float *x = malloc(nx * 4), *ref = malloc(nx * 4), *got = malloc(nx * 4);
        fill(x, nx, 1.0);
        lstm_workspace *ws;
        lstm_workspace_init(&ws, &net, T, B, 0);
        lstm_forward(&net, ws, T, B, x, NULL, NULL, ref, NULL, NULL);
        lstm_workspace_free(ws);
        int same_stream = 1, same_keep = 1;
        lstm_workspace *keep;
        lstm_workspace_init(&ws, &net, T, B, 0);
        lstm_workspace_init(&keep, &net, T, B, LSTM_WS_KEEP_PACKS);
        lstm_state st;
        lstm_state_init(&st, &net, B);
        for (int i = 0; i < 4; i++) { /* 1, 2, 1, 2 threads */
            CHECK(lstm_workspace_set_threads(ws, i % 2 ? 2 : 1) == LSTM_OK, "set_threads: %s", lstm_last_error());
            CHECK(lstm_workspace_set_threads(keep, i % 2 ? 2 : 1) == LSTM_OK, "set_threads: %s", lstm_last_error());
            memset(got, 0, nx * 4);
            lstm_state_reset(&st);
            lstm_stream(&net, ws, &st, T, x, got);
            same_stream &= memcmp(ref, got, nx * 4) == 0;
            memset(got, 0, nx * 4);
            lstm_forward(&net, keep, T, B, x, NULL, NULL, got, NULL, NULL);
            same_keep &= memcmp(ref, got, nx * 4) == 0;
        }
        lstm_state_free(&st);
        CHECK_V(same_stream, "%s: one workspace streaming at 1, 2, 1, 2 threads gives lstm_forward's bits each time",
                cell ? "gru" : "lstm");
        CHECK_V(same_keep, "%s: a LSTM_WS_KEEP_PACKS workspace at 1, 2, 1, 2 threads gives the same bits each time",
                cell ? "gru" : "lstm");
        lstm_workspace_free(ws);
        lstm_workspace_free(keep);
        free(x); free(ref); free(got);
        lstm_net_free(&net);
    }
}

/* LSTMP at H = 1024: inference keeps m (the projection's A) in rows of H + 16
 * floats (m_ld in lstm_layer.c), training in rows of H; inference y equals the
 * training forward's y bit for bit, on 1 and 2 threads, for batches that take
 * the projection's edge and full row tiles. */
static void test_proj_1024(void) {
    lstm_config cfg = {.input_size = 8, .hidden_size = 1024, .num_layers = 1, .bias = 1, .proj_size = 16};
    lstm_net net;
    lstm_net_init(&net, &cfg);
    lstm_net_init_uniform(&net, 5);
    const int T = 3, Bs[] = {5, 40};
    for (int bi = 0; bi < 2; bi++) {
        const int B = Bs[bi];
        size_t nx = (size_t)T * B * 8, ny = (size_t)T * B * 16;
        float *x = malloc(nx * 4), *ref = malloc(ny * 4), *got = malloc(ny * 4);
        fill(x, nx, 1.0);
        lstm_workspace *tr, *inf;
        lstm_workspace_init(&tr, &net, T, B, LSTM_WS_TRAIN);
        lstm_forward(&net, tr, T, B, x, NULL, NULL, ref, NULL, NULL);
        int same = 1;
        for (int n = 1; n <= 2; n++) {
            lstm_workspace_init(&inf, &net, T, B, 0);
            lstm_workspace_set_threads(inf, n);
            lstm_forward(&net, inf, T, B, x, NULL, NULL, got, NULL, NULL);
            same &= memcmp(ref, got, ny * 4) == 0;
            lstm_workspace_free(inf);
        }
        CHECK_V(same, "proj H=1024 B=%d: inference (m rows of H + 16) == training forward, 1 and 2 threads", B);
        lstm_workspace_free(tr);
        free(x), free(ref), free(got);
    }
    lstm_net_free(&net);
}

/* Bidirectional inference: on 2 threads the two directions run at once, one
 * each (forward in lstm_layer.c); y, hn and cn equal 1 and 3 threads' bit for
 * bit (LSTM, LSTMP and GRU; B = 1 takes the batch-1 step, 7 the unit split,
 * 16 and 40 at H = 32 the row split (8 rows a thread or more, small weights),
 * 32 at H = 256 the unit split with x·W_ihᵀ in the step). */
static void test_bidir_inference(void) {
    struct { int cell, I, H, P, B; } cs[] = {{LSTM_CELL_LSTM, 12, 40, 0, 7}, {LSTM_CELL_GRU, 12, 40, 0, 7},
                                             {LSTM_CELL_LSTM, 9, 33, 6, 1}, {LSTM_CELL_GRU, 9, 33, 0, 1},
                                             {LSTM_CELL_LSTM, 20, 32, 0, 16}, {LSTM_CELL_GRU, 20, 32, 0, 16},
                                             {LSTM_CELL_LSTM, 20, 32, 6, 40},
                                             {LSTM_CELL_LSTM, 64, 256, 0, 32}, {LSTM_CELL_GRU, 64, 256, 0, 32}};
    for (size_t c = 0; c < sizeof cs / sizeof *cs; c++) {
        lstm_config cfg = {.input_size = cs[c].I, .hidden_size = cs[c].H, .num_layers = 2, .bias = 1,
                           .bidirectional = 1, .proj_size = cs[c].P, .cell = cs[c].cell};
        lstm_net net;
        lstm_net_init(&net, &cfg);
        lstm_net_init_uniform(&net, 9);
        const int T = 6, B = cs[c].B, has_c = cs[c].cell == LSTM_CELL_LSTM;
        size_t nx = (size_t)T * B * cs[c].I, ny = (size_t)T * B * 2 * net.Hout, nh = (size_t)4 * B * net.Hout,
               nc = (size_t)4 * B * cs[c].H;
        float *x = malloc(nx * 4), *y[3], *hn[3], *cn[3];
        fill(x, nx, 1.0);
        int same = 1;
        for (int n = 1; n <= 3; n++) {
            y[n - 1] = malloc(ny * 4), hn[n - 1] = malloc(nh * 4), cn[n - 1] = malloc(nc * 4);
            lstm_workspace *ws;
            lstm_workspace_init(&ws, &net, T, B, 0);
            lstm_workspace_set_threads(ws, n);
            lstm_forward(&net, ws, T, B, x, NULL, NULL, y[n - 1], hn[n - 1], has_c ? cn[n - 1] : NULL);
            lstm_workspace_free(ws);
            if (n > 1)
                same &= memcmp(y[0], y[n - 1], ny * 4) == 0 && memcmp(hn[0], hn[n - 1], nh * 4) == 0 &&
                        (!has_c || memcmp(cn[0], cn[n - 1], nc * 4) == 0);
        }
        CHECK_V(same, "%s bidir inference I=%d H=%d P=%d B=%d: 1, 2 (a direction a thread) and 3 threads give the same y, hn, cn",
                has_c ? "lstm" : "gru", cs[c].I, cs[c].H, cs[c].P, B);
        for (int n = 0; n < 3; n++) free(y[n]), free(hn[n]), free(cn[n]);
        free(x);
        lstm_net_free(&net);
    }
}

/* Batch-1 sequences on 2 threads with the step's hand-off overlapped
 * (lstm__step1_seq2: thread 0 cuts each chain in two around a wait): y, hn
 * and cn equal 1 and 3 threads' and lstm_stream's step by step, bit for bit,
 * and the float64 reference within 1e-5.  H = 256 (4 groups, 2 a thread), 320
 * (5 groups, 2 and 3), 200 (the GRU's 13 blocks; the LSTM's last block there
 * is half-packed, so the LSTM takes the plain path); zero state, h0 and c0,
 * and c0 alone (LSTM); 2 layers (the second reads the first's y). */
static void test_step1_seq2(void) {
    struct { int cell, H; } cs[] = {{LSTM_CELL_LSTM, 256}, {LSTM_CELL_GRU, 256}, {LSTM_CELL_LSTM, 320},
                                    {LSTM_CELL_GRU, 320}, {LSTM_CELL_GRU, 200}, {LSTM_CELL_LSTM, 200}};
#if LSTM_X86 /* (the batch-1 step is x86's; elsewhere the same checks of the batch path) */
    const int runs0 = lstm__step1_seq2_runs();
#endif
    int expect = 0;
    for (size_t c = 0; c < sizeof cs / sizeof *cs; c++)
        for (int st = 0; st < 3; st++) { /* zero state, h0 and c0, c0 alone */
            const int gru = cs[c].cell == LSTM_CELL_GRU, H = cs[c].H, I = 8, T = 7, L = 2;
            if (gru && st == 2) continue;
            lstm_config cfg = {.input_size = I, .hidden_size = H, .num_layers = L, .bias = 1, .cell = cs[c].cell};
            lstm_net net;
            lstm_net_init(&net, &cfg);
            lstm_net_init_uniform(&net, 13);
            size_t nx = (size_t)T * I, ny = (size_t)T * H, ns = (size_t)L * H;
            float *x = malloc(nx * 4), *h0 = malloc(ns * 4), *c0 = malloc(ns * 4), *y[4], *hn[4], *cn[4];
            fill(x, nx, 1.0);
            fill(h0, ns, 0.5);
            fill(c0, ns, 0.5);
            const float *H0 = st == 1 ? h0 : NULL, *C0 = st && !gru ? c0 : NULL;
            for (int n = 0; n < 4; n++) y[n] = malloc(ny * 4), hn[n] = malloc(ns * 4), cn[n] = malloc(ns * 4);
            for (int n = 1; n <= 3; n++) {
                lstm_workspace *ws;
                lstm_workspace_init(&ws, &net, T, 1, 0);
                lstm_workspace_set_threads(ws, n);
                lstm_forward(&net, ws, T, 1, x, H0, C0, y[n - 1], hn[n - 1], gru ? NULL : cn[n - 1]);
                lstm_workspace_free(ws);
            }
            lstm_workspace *ws; /* streaming one step a call, 2 threads */
            lstm_workspace_init(&ws, &net, 1, 1, 0);
            lstm_workspace_set_threads(ws, 2);
            lstm_state s;
            lstm_state_init(&s, &net, 1);
            if (H0) memcpy(s.h, h0, ns * 4);
            if (C0) memcpy(s.c, c0, ns * 4);
            for (int t = 0; t < T; t++) lstm_stream(&net, ws, &s, 1, x + (size_t)t * I, y[3] + (size_t)t * H);
            memcpy(hn[3], s.h, ns * 4);
            if (!gru) memcpy(cn[3], s.c, ns * 4);
            lstm_state_free(&s);
            lstm_workspace_free(ws);
            int same = 1;
            for (int n = 1; n < 4; n++)
                same &= memcmp(y[0], y[n], ny * 4) == 0 && memcmp(hn[0], hn[n], ns * 4) == 0 &&
                        (gru || memcmp(cn[0], cn[n], ns * 4) == 0);
            double *P = malloc(sizeof(double) * net.n_params), *xd = malloc(sizeof(double) * nx);
            double *h0d = malloc(sizeof(double) * ns), *c0d = malloc(sizeof(double) * ns);
            double *yd = malloc(sizeof(double) * ny), *hnd = malloc(sizeof(double) * ns), *cnd = malloc(sizeof(double) * ns);
            for (size_t i = 0; i < net.n_params; i++) P[i] = net.params[i];
            for (size_t i = 0; i < nx; i++) xd[i] = x[i];
            for (size_t i = 0; i < ns; i++) h0d[i] = h0[i], c0d[i] = c0[i];
            ref_forward(&net, P, T, 1, xd, H0 ? h0d : NULL, C0 ? c0d : NULL, yd, hnd, cnd);
            double e = maxdiff(y[1], yd, ny);
            if (!(maxdiff(hn[1], hnd, ns) <= e)) e = maxdiff(hn[1], hnd, ns);
            if (!gru && !(maxdiff(cn[1], cnd, ns) <= e)) e = maxdiff(cn[1], cnd, ns);
#if LSTM_X86
            const int takes = lstm__kernel_fused() && lstm__step1_seq2_ok(gru, H, I) && lstm__step1_seq2_ok(gru, H, H);
#else
            const int takes = 0;
#endif
            expect += takes ? L : 0;
            CHECK_V(same && e < 1e-5, "%s H=%d %s: batch-1 sequence on 2 threads (%s) == 1 and 3 threads and "
                    "streaming, bit for bit; float64 within %.1e", gru ? "gru" : "lstm", H,
                    st == 2 ? "c0 alone" : st ? "h0, c0" : "zero state",
                    takes ? "hand-off overlapped" : "plain team path", e);
            free(P), free(xd), free(h0d), free(c0d), free(yd), free(hnd), free(cnd);
            for (int n = 0; n < 4; n++) free(y[n]), free(hn[n]), free(cn[n]);
            free(x), free(h0), free(c0);
            lstm_net_free(&net);
        }
#if LSTM_X86
    CHECK_V(lstm__step1_seq2_runs() - runs0 == expect, "the overlapped batch-1 path ran where it applies (%d layer runs)",
            expect);
#else
    (void)expect;
#endif
}

/* LSTM_WS_KEEP_PACKS: lstm_forward packs the weights once and reuses them on
 * the same net->params until lstm_workspace_weights_changed; the bits equal a
 * plain workspace's, both before and after a change of the weights in place. */
static void test_keep_packs(void) {
    struct { int cell, I, H, P, L, B; } cs[] = {{LSTM_CELL_LSTM, 11, 37, 5, 2, 4}, {LSTM_CELL_GRU, 256, 256, 0, 1, 32},
                                                {LSTM_CELL_LSTM, 8, 64, 0, 2, 1}, {LSTM_CELL_LSTM, 256, 256, 0, 1, 32}};
    int ok_same = 1, ok_kept = 1, ok_changed = 1, n = 0;
    for (size_t c = 0; c < sizeof cs / sizeof *cs; c++) {
        lstm_config cfg = {.input_size = cs[c].I, .hidden_size = cs[c].H, .num_layers = cs[c].L, .bias = 1,
                           .proj_size = cs[c].P, .cell = cs[c].cell};
        lstm_net net;
        lstm_net_init(&net, &cfg);
        lstm_net_init_uniform(&net, 3);
        const int T = 5, B = cs[c].B;
        size_t nx = (size_t)T * B * cs[c].I, ny = (size_t)T * B * net.Hout;
        float *x = malloc(nx * 4), *ref = malloc(ny * 4), *ref2 = malloc(ny * 4), *got = malloc(ny * 4);
        fill(x, nx, 1.0);
        lstm_workspace *plain, *keep;
        lstm_workspace_init(&plain, &net, T, B, 0);
        CHECK(lstm_workspace_init(&keep, &net, T, B, LSTM_WS_KEEP_PACKS) == LSTM_OK, "keep: %s", lstm_last_error());
        lstm_workspace_set_threads(keep, 2);
        lstm_forward(&net, plain, T, B, x, NULL, NULL, ref, NULL, NULL);
        for (int i = 0; i < 2; i++) {
            lstm_forward(&net, keep, T, B, x, NULL, NULL, got, NULL, NULL);
            ok_same &= memcmp(ref, got, ny * 4) == 0;
        }
        /* shorter calls in between (T = 1 takes x·W_ihᵀ into the step: every W_ih packed) */
        const int Ts[] = {1, 3, 1};
        for (int i = 0; i < 3; i++) {
            float *r1 = malloc(ny * 4);
            lstm_workspace *p1;
            lstm_workspace_init(&p1, &net, T, B, 0);
            lstm_forward(&net, p1, Ts[i], B, x, NULL, NULL, r1, NULL, NULL);
            lstm_forward(&net, keep, Ts[i], B, x, NULL, NULL, got, NULL, NULL);
            ok_same &= memcmp(r1, got, (size_t)Ts[i] * B * net.Hout * 4) == 0;
            lstm_workspace_free(p1);
            free(r1);
        }
        lstm_forward(&net, keep, T, B, x, NULL, NULL, got, NULL, NULL);
        ok_same &= memcmp(ref, got, ny * 4) == 0;
        ok_kept &= lstm__workspace_packs(keep) == 1 && lstm__workspace_packs(plain) == 1;
        for (size_t i = 0; i < net.n_params; i++) net.params[i] *= 0.75f; /* in place */
        lstm_workspace_weights_changed(keep);
        lstm_forward(&net, plain, T, B, x, NULL, NULL, ref2, NULL, NULL);
        lstm_forward(&net, keep, T, B, x, NULL, NULL, got, NULL, NULL);
        ok_changed &= memcmp(ref2, got, ny * 4) == 0 && memcmp(ref, ref2, ny * 4) != 0;
        ok_kept &= lstm__workspace_packs(keep) == 2 && lstm__workspace_packs(plain) == 2;
        n++;
        lstm_workspace_free(plain);
        lstm_workspace_free(keep);
        free(x); free(ref); free(ref2); free(got);
        lstm_net_free(&net);
    }
    CHECK_V(ok_same, "keep packs: %d nets (LSTM, LSTMP, GRU, B = 1..32), 2 threads, T = 5, 5, 1, 3, 1, 5: forwards equal a plain workspace's bits", n);
    CHECK_V(ok_kept, "keep packs: one pack for 2 forwards, one more after lstm_workspace_weights_changed "
                     "(a plain workspace: one per forward)");
    CHECK_V(ok_changed, "keep packs: after lstm_workspace_weights_changed the new weights' bits");
}

/* One training pass on ws: y, dx and the gradients (zeroed first) into out (ny + nx + n_params floats). */
static void train_pass(lstm_net *net, lstm_workspace *ws, int T, int B, const float *x, const float *dy, float *out,
                       size_t ny, size_t nx) {
    lstm_net_zero_grad(net);
    lstm_forward(net, ws, T, B, x, NULL, NULL, out, NULL, NULL);
    lstm_backward(net, ws, dy, NULL, NULL, out + ny, NULL, NULL);
    memcpy(out + ny + nx, net->grads, net->n_params * sizeof(float));
}

/* LSTM_WS_KEEP_PACKS on a training workspace: the forward packs once and the
 * backward runs on the kept packs (W_hh's for dh, W_ih's for dX); outputs, dX and
 * every gradient equal a plain training workspace's bits, before and after a
 * change of the weights in place with lstm_workspace_weights_changed. */
static void test_keep_packs_train(void) {
    struct { int cell, I, H, P, L, B, bidir; } cs[] = {{LSTM_CELL_LSTM, 256, 256, 0, 2, 32, 0},
                                                       {LSTM_CELL_GRU, 64, 96, 0, 2, 16, 1},
                                                       {LSTM_CELL_LSTM, 11, 37, 5, 2, 4, 0},
                                                       {LSTM_CELL_LSTM, 48, 64, 0, 1, 8, 1},
                                                       {LSTM_CELL_LSTM, 48, 512, 0, 1, 16, 0}};
    int ok_same = 1, ok_kept = 1, ok_changed = 1, n = 0;
    for (size_t c = 0; c < sizeof cs / sizeof *cs; c++) {
        lstm_config cfg = {.input_size = cs[c].I, .hidden_size = cs[c].H, .num_layers = cs[c].L, .bias = 1,
                           .proj_size = cs[c].P, .bidirectional = cs[c].bidir, .cell = cs[c].cell};
        lstm_net net;
        lstm_net_init(&net, &cfg);
        lstm_net_init_uniform(&net, 5);
        const int T = 6, B = cs[c].B;
        const size_t nx = (size_t)T * B * cs[c].I, ny = (size_t)T * B * net.D * net.Hout, no = ny + nx + net.n_params;
        float *x = malloc(nx * 4), *dy = malloc(ny * 4), *ref = malloc(no * 4), *got = malloc(no * 4), *old = malloc(no * 4);
        fill(x, nx, 1.0);
        fill(dy, ny, 0.5);
        lstm_workspace *plain, *keep;
        lstm_workspace_init(&plain, &net, T, B, LSTM_WS_TRAIN);
        CHECK(lstm_workspace_init(&keep, &net, T, B, LSTM_WS_TRAIN | LSTM_WS_KEEP_PACKS) == LSTM_OK, "keep: %s",
              lstm_last_error());
        lstm_workspace_set_threads(plain, 2);
        lstm_workspace_set_threads(keep, 1); /* (then 2: layers whose W_ih only 2 threads pack) */
        train_pass(&net, plain, T, B, x, dy, ref, ny, nx);
        for (int i = 0; i < 2; i++) {
            train_pass(&net, keep, T, B, x, dy, got, ny, nx);
            ok_same &= memcmp(ref, got, no * 4) == 0;
        }
        /* other thread counts (which layers' W_ih the step packs depends on them) and a
         * one-step pass in between, each against a plain workspace */
        const int thr[] = {2, 3, 2};
        for (int i = 0; i < 3; i++) {
            lstm_workspace_set_threads(keep, thr[i]);
            train_pass(&net, keep, T, B, x, dy, got, ny, nx);
            ok_same &= memcmp(ref, got, no * 4) == 0;
        }
        {
            const size_t ny1 = (size_t)B * net.D * net.Hout, nx1 = (size_t)B * cs[c].I, no1 = ny1 + nx1 + net.n_params;
            float *r1 = malloc(no1 * 4);
            lstm_workspace *p1;
            lstm_workspace_init(&p1, &net, T, B, LSTM_WS_TRAIN);
            train_pass(&net, p1, 1, B, x, dy, r1, ny1, nx1);
            train_pass(&net, keep, 1, B, x, dy, got, ny1, nx1);
            ok_same &= memcmp(r1, got, no1 * 4) == 0;
            lstm_workspace_free(p1);
            free(r1);
        }
        train_pass(&net, keep, T, B, x, dy, got, ny, nx);
        ok_same &= memcmp(ref, got, no * 4) == 0;
        ok_kept &= lstm__workspace_packs(keep) == 1 && lstm__workspace_packs(plain) == 1;
        memcpy(old, ref, no * 4);
        for (size_t i = 0; i < net.n_params; i++) net.params[i] *= 0.75f; /* in place */
        lstm_workspace_weights_changed(keep);
        lstm_workspace *fresh; /* (a workspace that never packed the old weights) */
        lstm_workspace_init(&fresh, &net, T, B, LSTM_WS_TRAIN);
        lstm_workspace_set_threads(fresh, 2);
        train_pass(&net, fresh, T, B, x, dy, ref, ny, nx);
        train_pass(&net, keep, T, B, x, dy, got, ny, nx);
        ok_changed &= memcmp(ref, got, no * 4) == 0 && memcmp(ref, old, no * 4) != 0;
        ok_kept &= lstm__workspace_packs(keep) == 2;
        lstm_workspace_free(fresh);
        n++;
        lstm_workspace_free(plain);
        lstm_workspace_free(keep);
        free(x); free(dy); free(ref); free(got); free(old);
        lstm_net_free(&net);
    }
    CHECK_V(ok_same, "keep packs, training: %d nets (LSTM B = 32, bidirectional GRU, LSTMP, bidirectional LSTM, "
                     "48 -> 512 at B = 16), passes on 1, 2, 3, 2 threads and at T = 1 in between equal a plain "
                     "workspace's y, dX and gradients", n);
    CHECK_V(ok_kept, "keep packs, training: one pack for 2 passes, one more after lstm_workspace_weights_changed");
    CHECK_V(ok_changed, "keep packs, training: after lstm_workspace_weights_changed the new weights' y, dX and gradients");
}

/* lstm__workspace_saved after a backward with the weight gradients deferred: a
 * forward of fewer steps than the workspace holds saves the same dG, dH (LSTMP) and
 * ms as a workspace of exactly that T, for every (layer, direction). */
static void test_saved_short_T(void) {
    lstm_config cfg = {.input_size = 7, .hidden_size = 20, .num_layers = 2, .bias = 1, .proj_size = 6, .bidirectional = 1};
    lstm_net net;
    lstm_net_init(&net, &cfg);
    lstm_net_init_uniform(&net, 9);
    const int Tw = 9, T = 5, B = 3;
    const size_t nx = (size_t)T * B * 7, ny = (size_t)T * B * 2 * 6;
    float *x = malloc(nx * 4), *dy = malloc(ny * 4), *y = malloc(ny * 4), *dx = malloc(nx * 4);
    fill(x, nx, 1.0);
    fill(dy, ny, 0.5);
    lstm_workspace *ws[2];
    int same = 1;
    for (int w = 0; w < 2; w++) { /* 0: T steps of a workspace of Tw; 1: of exactly T */
        lstm_workspace_init(&ws[w], &net, w ? T : Tw, B, LSTM_WS_TRAIN);
        lstm__workspace_defer_wgrad(ws[w], 1);
        lstm_forward(&net, ws[w], T, B, x, NULL, NULL, y, NULL, NULL);
        lstm_backward(&net, ws[w], dy, NULL, NULL, dx, NULL, NULL);
    }
    for (int l = 0; l < 2; l++)
        for (int d = 0; d < 2; d++) {
            lstm__saved a, b;
            lstm__workspace_saved(ws[0], &net, l, d, &a);
            lstm__workspace_saved(ws[1], &net, l, d, &b);
            for (int r = 0; r < T * B; r++) {
                same &= memcmp(a.dG + (size_t)r * a.ldg, b.dG + (size_t)r * b.ldg, 4 * 20 * sizeof(float)) == 0;
                same &= memcmp(a.dH + (size_t)r * 6, b.dH + (size_t)r * 6, 6 * sizeof(float)) == 0;
                same &= memcmp(a.ms + (size_t)r * a.ldm, b.ms + (size_t)r * b.ldm, 20 * sizeof(float)) == 0;
            }
        }
    CHECK_V(same, "lstm__workspace_saved after T = %d steps on a workspace of T = %d: dG, dH and ms as a workspace "
                  "of T = %d's (LSTMP, 2 layers, bidirectional, weight gradients deferred)", T, Tw, T);
    for (int w = 0; w < 2; w++) lstm_workspace_free(ws[w]);
    free(x); free(dy); free(y); free(dx);
    lstm_net_free(&net);
}

/* The backward step's product (lstm__step_dh_avx512) against lstm_gemm_nn
 * (the AVX-512 or AVX2 kernel the fused step goes with), bit for bit: every
 * row tile (B = 1..13), column edges (N = 1, 37, 64, 100), depth blocks and
 * their prefetches (K = 1, 255, 256, 257, 700), C from zero or accumulated,
 * padded strides, W a run of rows inside a larger pack, the panels in either
 * order (N = 100: two panels). */
static void test_step_dh(void) {
#if LSTM_X86
    if (!lstm__kernel_fused()) {
        TEST_SKIP("step_dh: the fused step does not run on this CPU (skipped)");
        return;
    }
    const int Ns[] = {1, 37, 64, 100}, Ks[] = {1, 255, 256, 257, 700};
    int same = 1, runs = 0;
    for (int B = 1; B <= 13; B++)
        for (size_t ni = 0; ni < sizeof Ns / sizeof *Ns; ni++)
            for (size_t ki = 0; ki < sizeof Ks / sizeof *Ks; ki++) {
                const int N = Ns[ni], K = Ks[ki], lda = K + 3, ldw = N + 5, ldc = N + 2;
                float *A = malloc((size_t)B * lda * 4), *W = malloc((size_t)K * ldw * 4);
                float *c1 = malloc((size_t)B * ldc * 4), *c2 = malloc((size_t)B * ldc * 4);
                float *P = malloc(lstm__step_dh_pack_size(N, K + 7) * 4);
                fill(A, (size_t)B * lda, 1.0);
                fill(W, (size_t)K * ldw, 0.1);
                /* W as rows [7, 7 + K) of a pack of K + 7 rows (a run of W_hh); the first 7 are not read */
                float *W7 = calloc((size_t)(K + 7) * ldw, 4);
                memcpy(W7 + (size_t)7 * ldw, W, (size_t)K * ldw * 4);
                for (size_t i = 0; i < (size_t)7 * ldw; i++) W7[i] = NAN;
                lstm__step_dh_pack(P, N, K + 7, W7, ldw);
                for (int mode = 0; mode < 4; mode++) {
                    const int acc = mode & 1, rev = mode >> 1;
                    fill(c1, (size_t)B * ldc, 1.0);
                    memcpy(c2, c1, (size_t)B * ldc * 4);
                    lstm_gemm_nn(B, N, K, A, lda, W, ldw, c1, ldc, acc ? 1.0f : 0.0f);
                    lstm__step_dh_avx512(B, N, K, A, lda, P + 7 * 64, (size_t)(K + 7) * 64, c2, ldc, acc, rev);
                    int ok = memcmp(c1, c2, (size_t)B * ldc * 4) == 0; /* the padding too */
                    if (!ok) fprintf(stderr, "  step_dh differs: B=%d N=%d K=%d acc=%d rev=%d\n", B, N, K, acc, rev);
                    same &= ok;
                    runs++;
                }
                free(A); free(W); free(W7); free(P); free(c1); free(c2);
            }
    CHECK_V(same, "step_dh: dh (+)= dG·W_hh == lstm_gemm_nn (%s kernel), bit for bit (%d runs: B 1..13, N, K edges, "
            "panels in both orders)",
            lstm_gemm_kernel_name(lstm_gemm_kernel()), runs);
#endif
}

/* GRU argument rules and nets on caller-owned buffers. */
static void test_config(void) {
    lstm_config bad = {4, 6, 1, 2, 1, 0, LSTM_CELL_GRU}, odd = {4, 6, 1, 0, 1, 0, 7};
    lstm_net net;
    size_t n = 99;
    CHECK_V(lstm_net_init(&net, &bad) == LSTM_ERR_ARG && strstr(lstm_last_error(), "only an LSTM"),
            "a GRU with proj_size is LSTM_ERR_ARG (%s)", lstm_last_error());
    CHECK_V(lstm_net_size(&odd, &n) == LSTM_ERR_ARG && n == 0, "an unknown cell kind is LSTM_ERR_ARG");
    lstm_config cfg = {4, 6, 2, 0, 1, 1, LSTM_CELL_GRU};
    CHECK(lstm_net_size(&cfg, &n) == LSTM_OK, "lstm_net_size: %s", lstm_last_error());
    /* nn.GRU(4, 6, 2, bidirectional): per (l,d) 3H·in + 3H·H + 2·3H */
    size_t want = 2 * (18 * 4 + 18 * 6 + 36) + 2 * (18 * 12 + 18 * 6 + 36);
    CHECK_V(n == want, "GRU parameter count %zu (nn.GRU's: %zu)", n, want);
    float *buf = calloc(2 * n + 8, sizeof(float));
    CHECK(lstm_net_init_external(&net, &cfg, buf + 4, buf + 4 + n) == LSTM_OK, "init_external: %s", lstm_last_error());
    lstm_tensor_info ti[16];
    int nt = lstm_net_tensors(&net, ti);
    CHECK_V(nt == 16 && net.params == buf + 4 && net.grads == buf + 4 + n && net.w[3].w_hh == buf + 4 + ti[13].offset &&
                strcmp(ti[13].name, "weight_hh_l1_reverse") == 0 && ti[13].shape[0] == 18 && ti[13].shape[1] == 6,
            "lstm_net_init_external: views into the caller's buffers, nn.GRU names and shapes");
    lstm_workspace *ws;
    float x[2 * 4] = {0}, y[2 * 12], h0[4 * 6] = {0}, c0[4 * 6] = {0};
    CHECK(lstm_workspace_init(&ws, &net, 2, 1, 0) == LSTM_OK, "ws");
    CHECK_V(lstm_forward(&net, ws, 2, 1, x, h0, c0, y, NULL, NULL) == LSTM_ERR_ARG,
            "a GRU forward with c0 is LSTM_ERR_ARG (%s)", lstm_last_error());
    CHECK_V(lstm_forward(&net, ws, 2, 1, x, h0, NULL, y, NULL, NULL) == LSTM_OK, "a GRU forward without c0 runs");
    lstm_workspace_free(ws);
    /* save and load back: nn.GRU names, told from an LSTM by the shapes */
    char path[64];
    snprintf(path, sizeof path, "/tmp/lstm_test_gru_%d.safetensors", (int)getpid());
    lstm_net_init_uniform(&net, 9);
    lstm_net back;
    CHECK(lstm_net_save(&net, path, "gru.") == LSTM_OK, "save: %s", lstm_last_error());
    lstm_status ls = lstm_net_load(&back, path, "gru.");
    CHECK_V(ls == LSTM_OK && back.cfg.cell == LSTM_CELL_GRU && back.cfg.bidirectional && back.cfg.num_layers == 2 &&
                back.n_params == n && memcmp(back.params, net.params, n * 4) == 0,
            "a saved GRU loads back as the same GRU (%s)", ls ? lstm_last_error() : "ok");
    lstm_net_free(&back);
    remove(path);
    lstm_net_free(&net); /* must not free buf */
    CHECK_V(buf[0] == 0.0f, "lstm_net_free leaves the caller's buffers");
    free(buf);
}

/* lstm_backward checks the net against the workspace as lstm_forward does: the
 * backward indexes the net's weights and gradients by the workspace's shapes, so
 * another net (a wider, deeper, bidirectional one) must be refused, not read and
 * written with the wrong strides; and so must another net of the same shape (it
 * ran on the forward net's packed weights); the saved forward stays usable. */
static void test_backward_net_check(const lstm_config *cb, const char *what) {
    lstm_config ca = {3, 4, 2, 0, 1, 0, 0};
    lstm_net a, b;
    lstm_workspace *ws = NULL;
    CHECK(lstm_net_init(&a, &ca) == LSTM_OK && lstm_net_init(&b, cb) == LSTM_OK, "nets");
    lstm_net_init_uniform(&a, 1);
    lstm_net_init_uniform(&b, 2);
    float x[5 * 2 * 3], y[5 * 2 * 4], dy[5 * 2 * 4], dx[5 * 2 * 3];
    fill(x, 5 * 2 * 3, 1.0);
    fill(dy, 5 * 2 * 4, 1.0);
    CHECK(lstm_workspace_init(&ws, &a, 5, 2, LSTM_WS_TRAIN) == LSTM_OK &&
              lstm_forward(&a, ws, 5, 2, x, NULL, NULL, y, NULL, NULL) == LSTM_OK,
          "forward: %s", lstm_last_error());
    lstm_net_zero_grad(&b);
    lstm_status st = lstm_backward(&b, ws, dy, NULL, NULL, dx, NULL, NULL);
    int untouched = 1;
    for (size_t i = 0; i < b.n_params; i++) untouched &= b.grads[i] == 0.0f;
    CHECK_V(st == LSTM_ERR_ARG && untouched, "lstm_backward with %s is LSTM_ERR_ARG, its gradients untouched (got "
            "%d: %s)", what, st, st ? lstm_last_error() : "accepted");
    lstm_net_zero_grad(&a);
    st = lstm_backward(&a, ws, dy, NULL, NULL, dx, NULL, NULL);
    CHECK_V(st == LSTM_OK, "then the backward with the forward's net runs (%s)", st ? lstm_last_error() : "ok");
    lstm_workspace_free(ws);
    lstm_net_free(&a);
    lstm_net_free(&b);
}

/* lstm_stream on a train workspace is LSTM_ERR_ARG and changes nothing: the
 * state stays, and a backward still answers the last forward (T = 1), which it
 * would not if the stream (T = 5) had been recorded in its place. */
static void test_stream_train_ws(void) {
    for (int cell = 0; cell < 2; cell++) {
        lstm_config cfg = {3, 4, 1, 0, 1, 0, cell};
        lstm_net net;
        lstm_workspace *ws = NULL;
        lstm_state s;
        CHECK(lstm_net_init(&net, &cfg) == LSTM_OK && lstm_state_init(&s, &net, 2) == LSTM_OK, "net, state");
        lstm_net_init_uniform(&net, 3);
        float x[5 * 2 * 3], y[5 * 2 * 4], dy[2 * 4], dx[5 * 2 * 3];
        fill(x, 5 * 2 * 3, 1.0);
        fill(dy, 2 * 4, 1.0);
        for (int i = 0; i < 5 * 2 * 3; i++) dx[i] = 7.0f;
        CHECK(lstm_workspace_init(&ws, &net, 5, 2, LSTM_WS_TRAIN) == LSTM_OK &&
                  lstm_forward(&net, ws, 1, 2, x, NULL, NULL, y, NULL, NULL) == LSTM_OK,
              "forward: %s", lstm_last_error());
        lstm_status st = lstm_stream(&net, ws, &s, 5, x, y);
        int zero = 1;
        for (int i = 0; i < 2 * 4; i++) zero &= s.h[i] == 0.0f;
        CHECK_V(st == LSTM_ERR_ARG && strstr(lstm_last_error(), "inference workspace") && zero,
                "%s: lstm_stream on a LSTM_WS_TRAIN workspace is LSTM_ERR_ARG, the state untouched (%s)",
                cell ? "gru" : "lstm", st ? lstm_last_error() : "accepted");
        lstm_net_zero_grad(&net);
        int past = 1; /* dx past the forward's one step keeps its 7s */
        st = lstm_backward(&net, ws, dy, NULL, NULL, dx, NULL, NULL);
        for (int i = 2 * 3; i < 5 * 2 * 3; i++) past &= dx[i] == 7.0f;
        CHECK_V(st == LSTM_OK && past, "%s: then the backward answers the forward's T = 1 (%s)", cell ? "gru" : "lstm",
                st ? lstm_last_error() : "dx of one step");
        lstm_workspace_free(ws);
        lstm_state_free(&s);
        lstm_net_free(&net);
    }
}

/* API audit: sizes that overflow are refused (a bidirectional GRU of H = 2 at T = B = 2^30
 * wrapped its act size to 0 and init said LSTM_OK); the dropout a backward undoes is the one
 * its forward ran with, whatever was set in between. */
static void test_api_audit(void) {
    lstm_config cg = {1, 2, 1, 0, 1, 1, 1};
    lstm_net g;
    lstm_workspace *ws = NULL;
    CHECK(lstm_net_init(&g, &cg) == LSTM_OK, "net");
    lstm_status st = lstm_workspace_init(&ws, &g, 1 << 30, 1 << 30, 0);
    CHECK_V(st == LSTM_ERR_ARG && ws == NULL && strstr(lstm_last_error(), "exceeds"),
            "workspace T = B = 2^30 (bidirectional GRU, H = 2): LSTM_ERR_ARG (%s)", st ? lstm_last_error() : "accepted");
    if (ws) lstm_workspace_free(ws);
    st = lstm_workspace_init(&ws, &g, 1 << 16, 1 << 15, 0);
    CHECK_V(st == LSTM_ERR_ARG && ws == NULL && strstr(lstm_last_error(), "T*B = 2147483648 exceeds"),
            "workspace T*B = 2^31 > INT_MAX: LSTM_ERR_ARG (%s)", st ? lstm_last_error() : "accepted");
    if (ws) lstm_workspace_free(ws);
    /* a flag bit the library does not know (a later version's, or not flags at all) */
    const int unknown[] = {8, 1 << 15, 1 << 30, -1};
    for (int i = 0; i < 4; i++) {
        st = lstm_workspace_init(&ws, &g, 2, 2, LSTM_WS_TRAIN | unknown[i]);
        CHECK_V(st == LSTM_ERR_ARG && ws == NULL && strstr(lstm_last_error(), "unknown flags"),
                "workspace flags 0x%x: LSTM_ERR_ARG (%s)", (unsigned)unknown[i], st ? lstm_last_error() : "accepted");
        if (ws) lstm_workspace_free(ws);
    }
    st = lstm_workspace_init(&ws, &g, 2, 2, LSTM_WS_TRAIN | LSTM_WS_BATCH_FIRST | LSTM_WS_KEEP_PACKS);
    CHECK_V(st == LSTM_OK && ws, "workspace with every public flag: %s", st ? lstm_last_error() : "ok");
    if (ws) lstm_workspace_free(ws);
    ws = NULL;
    lstm_net_free(&g);
    /* T*B within int, the buffers past size_t: a net's shape alone (its weights would not fit in
     * memory, so only the fields the workspace reads first are filled in) */
    lstm_net big;
    memset(&big, 0, sizeof big);
    big.cfg = (lstm_config){.input_size = INT_MAX, .hidden_size = 1 << 20, .num_layers = 1000, .bias = 1,
                            .bidirectional = 1};
    big.D = 2, big.H = 1 << 20, big.Hout = 1 << 20;
    st = lstm_workspace_init(&ws, &big, 1 << 16, (1 << 15) - 1, 0);
    CHECK_V(st == LSTM_ERR_ARG && ws == NULL && strstr(lstm_last_error(), "sizes overflow"),
            "workspace T*B < 2^31, L*D*T*B*(I + ...) past size_t: LSTM_ERR_ARG (%s)", st ? lstm_last_error() : "accepted");

    lstm_config ca = {3, 4, 2, 0, 1, 0, 0};
    lstm_net a;
    CHECK(lstm_net_init(&a, &ca) == LSTM_OK, "net");
    lstm_net_init_uniform(&a, 1);
    float x[5 * 2 * 3], y[5 * 2 * 4], dy[5 * 2 * 4], dx[2][5 * 2 * 3];
    fill(x, 5 * 2 * 3, 1.0);
    fill(dy, 5 * 2 * 4, 1.0);
    CHECK(lstm_workspace_init(&ws, &a, 5, 2, LSTM_WS_TRAIN) == LSTM_OK &&
              lstm_forward(&a, ws, 5, 2, x, NULL, NULL, y, NULL, NULL) == LSTM_OK &&
              lstm_backward(&a, ws, dy, NULL, NULL, dx[0], NULL, NULL) == LSTM_OK,
          "forward, backward: %s", lstm_last_error());
    /* dropout 0 at the forward, 0.5 set before the backward: dx as with no change */
    uint64_t rng = 9;
    CHECK(lstm_forward(&a, ws, 5, 2, x, NULL, NULL, y, NULL, NULL) == LSTM_OK &&
              lstm_workspace_set_dropout(ws, 0.5f, &rng) == LSTM_OK &&
              lstm_backward(&a, ws, dy, NULL, NULL, dx[1], NULL, NULL) == LSTM_OK,
          "forward, set_dropout, backward: %s", lstm_last_error());
    CHECK_V(memcmp(dx[0], dx[1], sizeof dx[0]) == 0, "a dropout set between forward and backward: the backward undoes "
            "the forward's (none), dx the same bits");
    lstm_workspace_free(ws);
    lstm_net_free(&a);
}

/* Dropout p = 1 (nn.LSTM/nn.GRU accept it): every output of layer 0 is dropped,
 * so layer 1 sees zeros: y does not depend on x and dx is exactly zero.  p
 * outside [0, 1] or NaN is LSTM_ERR_ARG and leaves the setting as it was. */
static void test_dropout_one(int cell) {
    lstm_config cfg = {3, 5, 2, 0, 1, 0, cell};
    lstm_net net;
    lstm_workspace *ws = NULL;
    enum { T = 4, B = 3 };
    CHECK(lstm_net_init(&net, &cfg) == LSTM_OK && lstm_workspace_init(&ws, &net, T, B, LSTM_WS_TRAIN) == LSTM_OK, "init");
    lstm_net_init_uniform(&net, 3);
    uint64_t rng = 7;
    float bad[] = {-0.1f, 1.5f, NAN};
    for (int i = 0; i < 3; i++)
        CHECK_V(lstm_workspace_set_dropout(ws, bad[i], &rng) == LSTM_ERR_ARG, "dropout %g refused", (double)bad[i]);
    CHECK(lstm_workspace_set_dropout(ws, 1.0f, &rng) == LSTM_OK, "dropout 1 accepted: %s", lstm_last_error());
    CHECK(lstm_workspace_set_dropout(ws, 2.0f, &rng) == LSTM_ERR_ARG, "dropout 2 refused");
    /* p > 0 with no random state: refused at once, the setting (1) kept; it was taken, and the
     * next forward refused instead, after lstm_charlm_forward had already replaced the ids and
     * targets of the forward a backward was still to use */
    CHECK(lstm_workspace_set_dropout(ws, 0.5f, NULL) == LSTM_ERR_ARG && strstr(lstm_last_error(), "random state"),
          "dropout 0.5 with rng NULL refused (%s)", lstm_last_error());
    CHECK(lstm_workspace_set_dropout(ws, 0.0f, NULL) == LSTM_OK && lstm_workspace_set_dropout(ws, 1.0f, &rng) == LSTM_OK,
          "dropout 0 needs no random state: %s", lstm_last_error());
    float x1[T * B * 3], x2[T * B * 3], y1[T * B * 5], y2[T * B * 5], dy[T * B * 5], dx[T * B * 3];
    fill(x1, T * B * 3, 1.0);
    fill(x2, T * B * 3, 1.0);
    fill(dy, T * B * 5, 1.0);
    lstm_status st = lstm_forward(&net, ws, T, B, x1, NULL, NULL, y1, NULL, NULL);
    if (!st) st = lstm_forward(&net, ws, T, B, x2, NULL, NULL, y2, NULL, NULL);
    lstm_net_zero_grad(&net);
    if (!st) st = lstm_backward(&net, ws, dy, NULL, NULL, dx, NULL, NULL);
    CHECK(st == LSTM_OK, "forward/backward: %s", lstm_last_error());
    int same = memcmp(y1, y2, sizeof y1) == 0, zero = 1;
    for (int i = 0; i < T * B * 3; i++) zero &= dx[i] == 0.0f;
    CHECK_V(same && zero, "%s dropout 1: y independent of x (%d) and dx zero (%d)", cell ? "gru" : "lstm", same, zero);
    lstm_workspace_free(ws);
    lstm_net_free(&net);
}

/* The thread team (threads.c): every task of every run runs exactly once and the run
 * returns only after all have finished, with 2-5 threads on this machine's cores (so with
 * workers that are late or descheduled), runs of 1..9 tasks, and pauses between some runs
 * that send the workers to sleep on their futex (a lost wake-up would hang: alarm ends it). */
typedef struct {
    int hits[16];
    int ran;
} team_case;

static void team_task(void *arg, int task, int ntasks) {
    team_case *c = arg;
    if (task >= 0 && task < ntasks && ntasks <= 16) __atomic_add_fetch(&c->hits[task], 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&c->ran, 1, __ATOMIC_RELAXED);
}

static void test_team(void) {
    alarm(300); /* a lost wake-up would hang here: SIGALRM ends the test (it takes ~1 s) */
    for (int n = 2; n <= 5; n++) {
        lstm__team *t = lstm__team_create(n);
        CHECK(t, "team of %d", n);
        int bad = 0, runs = 0;
        for (int r = 0; r < 20000 && !bad; r++, runs++) {
            team_case c;
            memset(&c, 0, sizeof c);
            const int nt = 1 + r % 9;
            lstm__team_run_tasks(t, nt, team_task, &c);
            /* read without atomics: run_tasks has returned, so every task has */
            for (int k = 0; k < nt; k++) bad |= c.hits[k] != 1;
            bad |= c.ran != nt;
            if (bad) printf("  team of %d, run %d: %d tasks ran %d times (task 0: %d)\n", n, r, nt, c.ran, c.hits[0]);
            if (r % 997 == 0) usleep(2000); /* past the workers' spin: they sleep */
        }
        CHECK_V(!bad, "team of %d threads: %d runs of 1..9 tasks, each task once, none after the return", n, runs);
        lstm__team_free(t);
    }
    alarm(0);
}

/* A workspace keeps packs of one net's weights: a new net made over the very
 * same params buffer (init_external after a free: what a reload at the freed
 * address gives) must not run on the old net's packs, on LSTM_WS_KEEP_PACKS
 * or through lstm_stream (B = 1: the batch-1 step's packs; B = 3).  And inputs
 * that overlap outputs are refused, not computed wrong: x and y (forward),
 * dy and dx (backward), time-major (batch_first copies them first, so allowed). */
static void test_reuse_and_overlap(void) {
    int ok_keep = 1, ok_stream = 1, n = 0;
    for (int cell = 0; cell < 2; cell++)
        for (int Bi = 0; Bi < 2; Bi++) {
            const int I = 6, H = 20, T = 4, B = Bi ? 3 : 1;
            lstm_config cfg = {.input_size = I, .hidden_size = H, .num_layers = 2, .bias = 1, .cell = cell};
            lstm_net a, b, fresh;
            lstm_net_init(&fresh, &cfg);
            float *P = calloc(fresh.n_params, 4), *G = calloc(fresh.n_params, 4);
            size_t nx = (size_t)T * B * I, ny = (size_t)T * B * H;
            float *x = malloc(nx * 4), *ya = malloc(ny * 4), *yb = malloc(ny * 4), *ref = malloc(ny * 4);
            fill(x, nx, 0.5);
            lstm_net_init_uniform(&fresh, 7); /* b's weights */
            lstm_workspace *w0, *keep, *st;
            lstm_workspace_init(&w0, &fresh, T, B, 0);
            lstm_forward(&fresh, w0, T, B, x, NULL, NULL, ref, NULL, NULL);
            lstm_net_init_external(&a, &cfg, P, G);
            lstm_net_init_uniform(&a, 5);
            lstm_workspace_init(&keep, &a, T, B, LSTM_WS_KEEP_PACKS);
            lstm_workspace_init(&st, &a, 1, B, 0);
            lstm_state s;
            lstm_state_init(&s, &a, B);
            lstm_forward(&a, keep, T, B, x, NULL, NULL, ya, NULL, NULL);
            for (int t = 0; t < T; t++) lstm_stream(&a, st, &s, 1, x + (size_t)t * B * I, ya + (size_t)t * B * H);
            lstm_net_free(&a);
            lstm_net_init_external(&b, &cfg, P, G); /* the same params pointer */
            memcpy(b.params, fresh.params, fresh.n_params * 4);
            lstm_forward(&b, keep, T, B, x, NULL, NULL, yb, NULL, NULL);
            ok_keep &= memcmp(yb, ref, ny * 4) == 0 && memcmp(ya, ref, ny * 4) != 0;
            lstm_state_reset(&s);
            for (int t = 0; t < T; t++) lstm_stream(&b, st, &s, 1, x + (size_t)t * B * I, yb + (size_t)t * B * H);
            float e = 0;
            for (size_t i = 0; i < ny; i++) e = fmaxf(e, fabsf(yb[i] - ref[i]));
            ok_stream &= e < 1e-5f; /* (B = 1: the batch-1 step's own rounding) */
            n++;
            lstm_state_free(&s);
            lstm_workspace_free(w0);
            lstm_workspace_free(keep);
            lstm_workspace_free(st);
            lstm_net_free(&b);
            lstm_net_free(&fresh);
            free(P); free(G); free(x); free(ya); free(yb); free(ref);
        }
    CHECK_V(ok_keep, "a net made over a freed net's params: a LSTM_WS_KEEP_PACKS workspace runs the new weights (%d cases)", n);
    CHECK_V(ok_stream, "a net made over a freed net's params: lstm_stream runs the new weights (%d cases)", n);

    lstm_config cfg = {.input_size = 8, .hidden_size = 8, .num_layers = 1, .bias = 1, .bidirectional = 1};
    lstm_net net;
    lstm_net_init(&net, &cfg);
    lstm_net_init_uniform(&net, 2);
    const int T = 3, B = 2;
    const size_t n16 = (size_t)T * B * 16;
    float *buf = malloc(n16 * 4 * 2), *y = malloc(n16 * 4), *dy = malloc(n16 * 4);
    fill(buf, n16 * 2, 0.3);
    fill(dy, n16, 0.2);
    lstm_workspace *ws, *bf;
    lstm_workspace_init(&ws, &net, T, B, LSTM_WS_TRAIN);
    CHECK(lstm_forward(&net, ws, T, B, buf, NULL, NULL, buf + 8, NULL, NULL) == LSTM_ERR_ARG &&
              strstr(lstm_last_error(), "x and y overlap"),
          "lstm_forward with y overlapping x: LSTM_ERR_ARG (%s)", lstm_last_error());
    CHECK(lstm_forward(&net, ws, T, B, buf, NULL, NULL, buf + T * B * 8, NULL, NULL) == LSTM_OK,
          "lstm_forward with y just past x: allowed (%s)", lstm_last_error());
    CHECK(lstm_backward(&net, ws, buf, NULL, NULL, buf + 4, NULL, NULL) == LSTM_ERR_ARG &&
              strstr(lstm_last_error(), "dy and dx overlap"),
          "lstm_backward with dx overlapping dy: LSTM_ERR_ARG (%s)", lstm_last_error());
    CHECK(lstm_backward(&net, ws, dy, NULL, NULL, y, NULL, NULL) == LSTM_OK,
          "lstm_backward after a refused call, with dx of its own: runs (%s)", lstm_last_error());
    lstm_workspace_init(&bf, &net, T, B, LSTM_WS_BATCH_FIRST);
    float *yr = malloc(n16 * 4);
    lstm_forward(&net, bf, T, B, buf, NULL, NULL, yr, NULL, NULL);
    CHECK(lstm_forward(&net, bf, T, B, buf, NULL, NULL, buf, NULL, NULL) == LSTM_OK && memcmp(buf, yr, n16 * 4) == 0,
          "batch_first: y may be x (x is copied first), the same bits (%s)", lstm_last_error());
    lstm_workspace_free(ws);
    lstm_workspace_free(bf);
    lstm_net_free(&net);
    free(buf); free(y); free(dy); free(yr);
}

/* Misuse the header answers with LSTM_ERR_ARG: lstm_stream with y overlapping x (y is
 * written while x is still read: it returned LSTM_OK and wrong values); a net that was
 * freed (or never made: all zeros) given to lstm_workspace_init or lstm_state_init (both
 * said LSTM_OK, and lstm_forward then "ran" without writing y); a freed state reset or
 * copied, a freed net's gradients zeroed (memset/memcpy of NULL: nothing, no UB). */
static void test_misuse(void) {
    int n_ok = 0, n = 0;
    for (int cell = 0; cell < 2; cell++)
        for (int Bi = 0; Bi < 2; Bi++) {
            const int I = 16, H = 16, T = 3, B = Bi ? 3 : 1;
            lstm_config cfg = {.input_size = I, .hidden_size = H, .num_layers = 2, .bias = 1, .cell = cell};
            lstm_net net;
            lstm_net_init(&net, &cfg);
            lstm_net_init_uniform(&net, 4);
            float *buf = malloc((size_t)2 * T * B * I * 4), *y = malloc((size_t)T * B * H * 4);
            fill(buf, (size_t)2 * T * B * I, 0.4);
            lstm_workspace *ws;
            lstm_state s;
            lstm_workspace_init(&ws, &net, T, B, 0);
            lstm_state_init(&s, &net, B);
            lstm_status a1 = lstm_stream(&net, ws, &s, T, buf, buf); /* the same memory */
            int ok1 = a1 == LSTM_ERR_ARG && strstr(lstm_last_error(), "x and y overlap");
            lstm_status a2 = lstm_stream(&net, ws, &s, 1, buf, buf + 4); /* one step, partly */
            int ok2 = a2 == LSTM_ERR_ARG;
            lstm_status a3 = lstm_stream(&net, ws, &s, T, buf, buf + (size_t)T * B * I); /* just past */
            n_ok += ok1 && ok2 && a3 == LSTM_OK;
            n++;
            lstm_state_free(&s);
            lstm_workspace_free(ws);
            lstm_net_free(&net);
            free(buf);
            free(y);
        }
    CHECK_V(n_ok == n, "lstm_stream with y overlapping x: LSTM_ERR_ARG; y just past x: runs (%d of %d cases; %s)", n_ok, n,
            lstm_last_error());

    lstm_config cfg = {.input_size = 3, .hidden_size = 4, .num_layers = 1, .bias = 1};
    lstm_net net;
    lstm_net_init(&net, &cfg);
    lstm_state s, s2;
    lstm_state_init(&s, &net, 2);
    lstm_state_init(&s2, &net, 2);
    lstm_net_free(&net); /* (zeroed) */
    lstm_workspace *ws = NULL;
    lstm_status st = lstm_workspace_init(&ws, &net, 2, 1, 0);
    CHECK(st == LSTM_ERR_ARG && ws == NULL && strstr(lstm_last_error(), "not initialized"),
          "lstm_workspace_init on a freed net: LSTM_ERR_ARG (%s)", st ? lstm_last_error() : "accepted");
    if (ws) lstm_workspace_free(ws);
    st = lstm_workspace_init(&ws, &net, 2, 1, LSTM_WS_TRAIN);
    CHECK(st == LSTM_ERR_ARG && ws == NULL, "lstm_workspace_init (train) on a freed net: LSTM_ERR_ARG");
    if (ws) lstm_workspace_free(ws);
    lstm_state s3;
    st = lstm_state_init(&s3, &net, 1);
    CHECK(st == LSTM_ERR_ARG && s3.h == NULL, "lstm_state_init on a freed net: LSTM_ERR_ARG (%s)",
          st ? lstm_last_error() : "accepted");
    if (!st) lstm_state_free(&s3);
    lstm_net_zero_grad(&net); /* a freed net: nothing to zero */
    lstm_state_free(&s);
    lstm_state_reset(&s); /* a freed state: nothing to reset */
    lstm_state_free(&s2);
    CHECK(lstm_state_copy(&s2, &s) == LSTM_ERR_ARG && strstr(lstm_last_error(), "freed"),
          "lstm_state_copy between freed states: LSTM_ERR_ARG (%s)", lstm_last_error());
}

/* act's row stride (lstm_layer.c's act_ld: A·H + 16 where A·H rows would be a
 * multiple of 4 KiB apart) only moves rows: every kernel that reads or writes
 * act or dG takes it.  So A·H + 16 everywhere (lstm__set_act_pad(1)) must give
 * the bits of A·H everywhere (0): LSTM and GRU, bidirectional, projected, no
 * bias; training (y, hn, cn, dx, dh0, dc0, every gradient), inference and
 * streaming in pieces; GEMM path and fused step, x·W_ihᵀ in the step or before
 * it; 1 and 2 threads (row and unit splits: B = 3 and 17). */
enum { AP_Y, AP_HN, AP_CN, AP_DX, AP_DH0, AP_DC0, AP_G, AP_YI, AP_YS, AP_N };

static void act_pad_run(lstm_net *net, int T, int B, int threads, const float *x, const float *h0, const float *c0,
                        const float *gy, float *out[AP_N]) {
    const int has_c = net->cfg.cell == LSTM_CELL_LSTM;
    lstm_workspace *ws;
    lstm_workspace_init(&ws, net, T, B, LSTM_WS_TRAIN);
    lstm_workspace_set_threads(ws, threads);
    lstm_net_zero_grad(net);
    lstm_forward(net, ws, T, B, x, h0, has_c ? c0 : NULL, out[AP_Y], out[AP_HN], has_c ? out[AP_CN] : NULL);
    lstm_backward(net, ws, gy, NULL, NULL, out[AP_DX], out[AP_DH0], has_c ? out[AP_DC0] : NULL);
    memcpy(out[AP_G], net->grads, net->n_params * 4);
    lstm_workspace_free(ws);
    lstm_workspace_init(&ws, net, T, B, 0);
    lstm_workspace_set_threads(ws, threads);
    lstm_forward(net, ws, T, B, x, h0, has_c ? c0 : NULL, out[AP_YI], NULL, NULL);
    lstm_workspace_free(ws);
    if (net->D == 1) stream_pieces(net, T, B, threads, x, h0, has_c ? c0 : NULL, out[AP_YS]); /* one direction */
}

static void test_act_pad(void) {
    const lstm_config cfgs[] = {
        {9, 20, 2, 0, 1, 1, LSTM_CELL_LSTM}, {9, 20, 2, 0, 1, 1, LSTM_CELL_GRU}, {9, 37, 2, 6, 1, 0, LSTM_CELL_LSTM},
        {9, 33, 1, 0, 0, 0, LSTM_CELL_GRU},  {9, 24, 2, 0, 1, 0, LSTM_CELL_LSTM},
    };
    const int Bs[] = {1, 3, 17};
    int all_same = 1, runs = 0;
    for (size_t ci = 0; ci < sizeof cfgs / sizeof *cfgs; ci++)
        for (size_t bi = 0; bi < sizeof Bs / sizeof *Bs; bi++) {
            lstm_net net;
            lstm_net_init(&net, &cfgs[ci]);
            lstm_net_init_uniform(&net, 7);
            const int T = 5, B = Bs[bi], LD = net.cfg.num_layers * net.D;
            size_t n[AP_N] = {(size_t)T * B * net.D * net.Hout, (size_t)LD * B * net.Hout, (size_t)LD * B * net.H,
                              (size_t)T * B * 9, (size_t)LD * B * net.Hout, (size_t)LD * B * net.H, net.n_params,
                              (size_t)T * B * net.D * net.Hout, (size_t)T * B * net.Hout};
            float *x = malloc(n[AP_DX] * 4), *gy = malloc(n[AP_Y] * 4), *h0 = malloc(n[AP_HN] * 4),
                  *c0 = malloc(n[AP_CN] * 4);
            fill(x, n[AP_DX], 1.0);
            fill(gy, n[AP_Y], 1.0);
            fill(h0, n[AP_HN], 0.5);
            fill(c0, n[AP_CN], 0.5);
            float *ref[AP_N], *got[AP_N];
            for (int k = 0; k < AP_N; k++) {
                ref[k] = calloc(n[k], 4);
                got[k] = calloc(n[k], 4);
            }
            for (int threads = 1; threads <= 2; threads++)
                for (int mode = 0; mode < 3; mode++) { /* GEMM path; fused, x·W_ihᵀ before; fused, in the step */
                    lstm__kernel_set_fused(mode > 0);
                    lstm__set_step_x(mode == 2);
                    lstm__set_act_pad(0);
                    act_pad_run(&net, T, B, threads, x, h0, c0, gy, ref);
                    lstm__set_act_pad(1);
                    act_pad_run(&net, T, B, threads, x, h0, c0, gy, got);
                    int same = 1;
                    for (int k = 0; k < AP_N; k++) same &= memcmp(ref[k], got[k], n[k] * 4) == 0;
                    if (!same)
                        fprintf(stderr, "  act stride changes bits: %s H=%d B=%d, %d threads, mode %d\n",
                                net.cfg.cell ? "gru" : "lstm", net.H, B, threads, mode);
                    all_same &= same;
                    runs++;
                }
            lstm__set_act_pad(-1);
            lstm__set_step_x(-1);
            lstm__kernel_set_fused(-1);
            for (int k = 0; k < AP_N; k++) { free(ref[k]); free(got[k]); }
            free(x); free(gy); free(h0); free(c0);
            lstm_net_free(&net);
        }
    CHECK_V(all_same,
            "act in rows of A·H + 16 == rows of A·H, bit for bit: training, inference, streaming; "
            "GEMM path and fused step; 1 and 2 threads (%d runs)", runs);
    /* the char model: trainer steps (their exact gradient sums read dG in its rows:
     * lstm__saved.ldg), then the sampler (layer 0's act row from its table, act0) */
    for (int cell = LSTM_CELL_LSTM; cell <= LSTM_CELL_GRU; cell++) {
        float *params[2] = {NULL, NULL}, logits[2][12];
        unsigned char text[2][40];
        size_t np = 0;
        int ok = 1;
        for (int pad = 0; pad < 2; pad++) {
            lstm__set_act_pad(pad);
            unsigned char vocab[12];
            for (int v = 0; v < 12; v++) vocab[v] = (unsigned char)('a' + v);
            lstm_config cfg = {5, 20, 2, cell ? 0 : 7, 1, 0, cell};
            lstm_charlm m;
            ok &= lstm_charlm_init(&m, vocab, 12, 5, &cfg) == LSTM_OK;
            lstm_charlm_init_params(&m, 3);
            uint8_t ids[400];
            for (int i = 0; i < 400; i++) ids[i] = (uint8_t)((i * 7 + i / 5) % 12);
            lstm_train_config c;
            lstm_train_config_default(&c);
            c.batch = 3, c.bptt = 6, c.dropout = 0.2, c.clip = 1.0;
            lstm_trainer tr;
            ok &= lstm_trainer_init(&tr, &m, &c, ids, sizeof ids) == LSTM_OK;
            ok &= lstm_trainer_set_threads(&tr, 2) == LSTM_OK;
            for (int k = 0; k < 3; k++) {
                lstm_step_info info;
                ok &= lstm_trainer_step(&tr, &info) == LSTM_OK;
            }
            lstm_trainer_free(&tr);
            np = m.n_params;
            params[pad] = malloc(np * 4);
            memcpy(params[pad], m.params, np * 4);
            lstm_charlm_sampler *smp;
            ok &= lstm_charlm_sampler_init(&smp, &m, 1) == LSTM_OK;
            lstm_charlm_sampler_reset(smp, 5);
            ok &= lstm_charlm_sampler_feed(smp, (const unsigned char *)"abcabd", 6) == LSTM_OK;
            ok &= lstm_charlm_sampler_generate(smp, text[pad], sizeof text[pad], 1.0, 0) == LSTM_OK;
            memcpy(logits[pad], lstm_charlm_sampler_logits(smp), sizeof logits[pad]);
            lstm_charlm_sampler_free(smp);
            lstm_charlm_free(&m);
        }
        lstm__set_act_pad(-1);
        CHECK_V(ok && memcmp(params[0], params[1], np * 4) == 0 && memcmp(text[0], text[1], sizeof text[0]) == 0 &&
                    memcmp(logits[0], logits[1], sizeof logits[0]) == 0,
                "%s char model: act in rows of A·H + 16 == A·H, bit for bit: 3 trainer steps (dropout, "
                "2 threads), then 40 sampled bytes and the last logits", cell ? "gru" : "lstm");
        free(params[0]);
        free(params[1]);
    }
}

/* The default thread count's cores: SMT siblings (thread_siblings_list) counted once,
 * only CPUs of the affinity set counted, -1 (every CPU then) when the topology is
 * missing or not a cpulist.  On a fake sysfs tree. */
static int fake_cpu(const char *dir, int c, const char *siblings) {
    char p[512];
    snprintf(p, sizeof p, "%s/cpu%d", dir, c);
    mkdir(p, 0700);
    snprintf(p, sizeof p, "%s/cpu%d/topology", dir, c);
    mkdir(p, 0700);
    snprintf(p, sizeof p, "%s/cpu%d/topology/thread_siblings_list", dir, c);
    FILE *f = fopen(p, "w");
    if (!f) return 0;
    fputs(siblings, f);
    return fclose(f) == 0;
}

static void test_cores_of(void) {
    char dir[] = "/tmp/lstm_cores_XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK(0, "mkdtemp: cannot make a fake sysfs");
        return;
    }
    struct { const char *sib[4]; unsigned char set[4]; int want; const char *what; } cases[] = {
        {{"0,2\n", "1,3\n", "0,2\n", "1,3\n"}, {1, 1, 1, 1}, 2, "2 cores x 2 threads (0,2 and 1,3)"},
        {{"0-1\n", "0-1\n", "2-3\n", "2-3\n"}, {1, 1, 1, 1}, 2, "ranges 0-1 and 2-3"},
        {{"0,2\n", "1,3\n", "0,2\n", "1,3\n"}, {1, 0, 1, 0}, 1, "affinity {0, 2}: one core's two threads"},
        {{"0,2\n", "1,3\n", "0,2\n", "1,3\n"}, {0, 0, 1, 1}, 2, "affinity {2, 3}: a thread of each core"},
        {{"0\n", "1\n", "2\n", "3\n"}, {1, 1, 1, 1}, 4, "no SMT"},
        {{"0-3\n", "0-3\n", "0-3\n", "0-3\n"}, {1, 1, 1, 1}, 1, "4 threads of one core"},
        {{"0,2\n", "1,3\n", "x\n", "1,3\n"}, {1, 1, 1, 1}, -1, "a sibling list that is not a cpulist"},
        {{"1\n", "1\n", "2\n", "3\n"}, {1, 1, 1, 1}, -1, "cpu0 not among its own siblings"},
        {{"0-1\n", "0\n", "2\n", "3\n"}, {1, 1, 1, 1}, -1, "cpu1 not among its own (0 with it)"},
        {{" 0\n", "1\n", "2\n", "3\n"}, {1, 1, 1, 1}, -1, "a space before a number"},
        {{"+0\n", "1\n", "2\n", "3\n"}, {1, 1, 1, 1}, -1, "a sign"},
        {{"0-+1\n", "0-1\n", "2\n", "3\n"}, {1, 1, 1, 1}, -1, "a sign after '-'"},
        {{"0\n1\n", "1\n", "2\n", "3\n"}, {1, 1, 1, 1}, 4, "text after the newline is not read"},
        {{"", "1\n", "2\n", "3\n"}, {1, 1, 1, 1}, -1, "an empty file"},
        {{"0,99999999999999999999\n", "1\n", "2\n", "3\n"}, {1, 1, 1, 1}, 4, "a CPU past the set (huge)"},
        {{"3-1\n", "1\n", "2\n", "3\n"}, {1, 1, 1, 1}, -1, "a backwards range"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int ok = 1;
        for (int c = 0; c < 4; c++) ok &= fake_cpu(dir, c, cases[i].sib[c]);
        int got = lstm__cores_of(dir, cases[i].set, 4);
        CHECK_V(ok && got == cases[i].want, "cores_of: %s: %d (want %d)", cases[i].what, got, cases[i].want);
    }
    unsigned char five[5] = {1, 1, 1, 1, 1}; /* cpu4 has no topology directory */
    CHECK(lstm__cores_of(dir, five, 5) == -1, "cores_of: a CPU without topology: -1");
    char p[512];
    for (int c = 0; c < 4; c++) {
        snprintf(p, sizeof p, "%s/cpu%d/topology/thread_siblings_list", dir, c);
        unlink(p);
        snprintf(p, sizeof p, "%s/cpu%d/topology", dir, c);
        rmdir(p);
        snprintf(p, sizeof p, "%s/cpu%d", dir, c);
        rmdir(p);
    }
    rmdir(dir);
    int n = lstm__cores_usable(), aff = (int)sysconf(_SC_NPROCESSORS_ONLN);
#if defined(__linux__)
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) aff = CPU_COUNT(&set);
#endif
    CHECK_V(n >= 1 && n <= aff, "cores_usable: %d (1 .. the %d CPUs of this process's affinity)", n, aff);
    unsigned char one[1] = {1}, none[1] = {0}; /* cpu0: this machine's sysfs, else counted as a CPU */
    CHECK(lstm__cores_in(one, 1) == 1 && lstm__cores_in(none, 1) == 0, "cores_in: {cpu0} is 1 core, {} none");
}

int main(void) {
    test_config();
    test_team();
    test_cores_of();
    test_dropout_one(0);
    test_dropout_one(1);
    const lstm_config other = {3, 16, 2, 0, 1, 1, 0}, same = {3, 4, 2, 0, 1, 0, 0};
    test_backward_net_check(&other, "a net of another shape");
    test_backward_net_check(&same, "another net of the same shape");
    test_stream_train_ws();
    test_api_audit();
    test_misuse();
    core_case cases[] = {
        {"1x1x1x1", {1, 1, 1, 0, 1, 0, 0}, 1, 1, 0},
        {"small states", {3, 4, 1, 0, 1, 0, 0}, 5, 2, 1},
        {"odd sizes", {13, 37, 1, 0, 1, 0, 0}, 7, 5, 1},
        {"three layers", {6, 8, 3, 0, 1, 0, 0}, 6, 3, 1},
        {"bidirectional x2", {5, 6, 2, 0, 1, 1, 0}, 5, 2, 1},
        {"projected", {5, 9, 1, 4, 1, 0, 0}, 6, 2, 1},
        {"projected deep bidir", {4, 7, 2, 3, 1, 1, 0}, 5, 2, 1},
        /* H a multiple of 1024: m in rows of H + 16 (m_ld in lstm_layer.c), inference and training */
        {"projected H=1024", {8, 1024, 1, 16, 1, 0, 0}, 3, 3, 1},
        {"no bias", {5, 6, 2, 0, 0, 0, 0}, 4, 3, 1},
        {"no bias zero state", {5, 6, 1, 0, 0, 1, 0}, 4, 3, 0},
        {"gru 1x1x1x1", {1, 1, 1, 0, 1, 0, 1}, 1, 1, 0},
        {"gru small states", {3, 4, 1, 0, 1, 0, 1}, 5, 2, 1},
        {"gru odd sizes", {13, 37, 1, 0, 1, 0, 1}, 7, 5, 1},
        {"gru three layers", {6, 8, 3, 0, 1, 0, 1}, 6, 3, 1},
        {"gru bidirectional x2", {5, 6, 2, 0, 1, 1, 1}, 5, 2, 1},
        {"gru no bias", {5, 6, 2, 0, 0, 0, 1}, 4, 3, 1},
        {"gru no bias zero st", {5, 6, 1, 0, 0, 1, 1}, 4, 3, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) run_case(&cases[i]);
    test_cell();
    test_fused();
    test_threads_change();
    test_keep_packs();
    test_keep_packs_train();
    test_saved_short_T();
    test_reuse_and_overlap();
    test_proj_1024();
    test_step1_seq2();
    test_bidir_inference();
    test_step_dh();
    test_act_pad();
    core_case big[] = {
        {"threads deep bidir", {24, 40, 2, 0, 1, 1, 0}, 9, 7, 0},
        {"threads projected", {16, 96, 2, 32, 1, 0, 0}, 12, 33, 0},
        {"threads long batch", {20, 100, 1, 0, 1, 0, 0}, 40, 64, 0},
        {"gru threads deep bidir", {24, 40, 2, 0, 1, 1, 1}, 9, 7, 0},
        {"gru threads long batch", {20, 100, 1, 0, 1, 0, 1}, 40, 64, 0},
        /* 2 threads: training's forward runs a direction a thread, each taking its row split */
        {"threads bidir rows", {20, 64, 2, 0, 1, 1, 0}, 6, 32, 0},
        {"gru threads bidir rows", {20, 64, 2, 0, 1, 1, 1}, 6, 32, 0},
    };
    for (size_t i = 0; i < sizeof big / sizeof *big; i++) test_threads(&big[i]);
    return TEST_REPORT();
}
