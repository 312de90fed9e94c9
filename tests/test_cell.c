/* test_cell.c — lstm_cell_forward / lstm_cell_backward, and the GRU cell
 * (lstm_gru_cell_*, nn.GRUCell: fixtures cell_gru*, chained like the LSTM's).
 *
 * 1. Against torch.nn.LSTMCell: every tests/fixtures/cell*.safetensors (from
 *    tools/lstm_ref.py) holds w_ih, w_hh, [b_ih, b_hh], x, h, c and upstream
 *    gradients gh1, gc1, with float64 refs of h1, c1 and the gradients of
 *    L = Σ h1·gh1 + Σ c1·gc1.  Rule as in test_torch_fixtures.c:
 *    max abs error <= max(8 * torch_err, 1e-5).
 * 2. The cell is one step of lstm_forward: a chain of T cells equals
 *    lstm_forward of a 1-layer unidirectional net (y, hn, cn), and the chained
 *    cell backward equals lstm_backward (dx, dh0, dc0, parameter gradients).
 *    Both are float32 with possibly different summation orders, so "equal"
 *    means within 2e-6 * (1 + |value|) (a few ulps of O(1) values).
 * 3. lstm_cell_backward accumulates into dw_* and db_* (+=).
 * 4. h = NULL is zeros with non-finite weights too (null_state_nonfinite). */
#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture_util.h"
#include "lstm.h"
#include "test.h"

/* cell_gru*.safetensors are nn.GRUCell cases: no c, gc1, ref.c1, ref.grad.c; G = 3 gates. */
static void fixture_case(const char *dir, const char *fname) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, fname);
    const int gru = strncmp(fname, "cell_gru", 8) == 0, G4 = gru ? 3 : 4;
    lstm_st_file f;
    lstm_status st = lstm_st_read(&f, path);
    CHECK(st == LSTM_OK, "%s: lstm_st_read: %s", path, lstm_last_error());
    if (st != LSTM_OK) return;
    const char *cj = lstm_st_meta(&f, "config"), *ej = lstm_st_meta(&f, "torch_err");
    double dI, dH, dB, dbias;
    int ok = fx_json_num(cj, "input_size", &dI) && fx_json_num(cj, "hidden_size", &dH) &&
             fx_json_num(cj, "B", &dB) && fx_json_num(cj, "bias", &dbias) && ej;
    CHECK(ok, "%s: metadata 'config'/'torch_err' missing or incomplete", path);
    if (!ok) { lstm_st_free(&f); return; }
    int I = (int)dI, H = (int)dH, B = (int)dB, bias = dbias != 0;
    const char *names[] = {"w_ih", "w_hh", "b_ih", "b_hh", "x", "h", "c", "gh1", "gc1"};
    size_t want[] = {(size_t)G4 * H * I, (size_t)G4 * H * H, (size_t)G4 * H, (size_t)G4 * H, (size_t)B * I,
                     (size_t)B * H, (size_t)B * H, (size_t)B * H, (size_t)B * H};
    float *t[9] = {0};
    int all = 1;
    for (int k = 0; k < 9; k++) {
        if ((!bias && k >= 2 && k <= 3) || (gru && (k == 6 || k == 8))) {
            CHECK(lstm_st_find(&f, names[k]) == NULL, "%s: '%s' present where it should not be", path, names[k]);
            continue;
        }
        size_t n = 0;
        t[k] = fx_tensor(&f, names[k], &n);
        CHECK(t[k] && n == want[k], "%s: tensor '%s': expected %zu floats, got %zu", path, names[k], want[k], n);
        all &= t[k] && n == want[k];
    }
    size_t BH = (size_t)B * H, G = (size_t)G4 * H;
    float *h1 = malloc(BH * 4), *c1 = malloc(BH * 4), *act = malloc(BH * 16), *scratch = malloc(BH * 32); /* [B, 8H] */
    float *dx = malloc((size_t)B * I * 4), *dh = malloc(BH * 4), *dc = malloc(BH * 4);
    float *dwih = calloc(G * I, 4), *dwhh = calloc(G * H, 4), *dbih = calloc(G, 4), *dbhh = calloc(G, 4);
    if (all && h1 && c1 && act && scratch && dx && dh && dc && dwih && dwhh && dbih && dbhh) {
        /* backward twice (the second into NULL outputs) checks that dw_* accumulate (+=) */
        float *w1 = malloc(G * I * 4);
        for (int rep = 0; rep < 2 && w1; rep++) {
            float *rdx = rep ? NULL : dx, *rdh = rep ? NULL : dh;
            if (gru) {
                if (!rep) lstm_gru_cell_forward(h1, act, t[4], t[5], t[0], t[1], t[2], t[3], B, I, H);
                lstm_gru_cell_backward(rdx, rdh, dwih, dwhh, bias ? dbih : NULL, bias ? dbhh : NULL, t[7], act, t[4],
                                       t[5], t[0], t[1], scratch, B, I, H);
            } else {
                if (!rep) lstm_cell_forward(h1, c1, act, t[4], t[5], t[6], t[0], t[1], t[2], t[3], B, I, H);
                lstm_cell_backward(rdx, rdh, rep ? NULL : dc, dwih, dwhh, bias ? dbih : NULL, bias ? dbhh : NULL, t[7],
                                   t[8], act, t[4], t[5], t[6], c1, t[0], t[1], scratch, B, I, H);
            }
            if (rep) {
                double e = 0;
                for (size_t i = 0; i < G * I; i++) e = fmax(e, fabs(dwih[i] - 2.0 * w1[i]) / (1 + fabs(w1[i])));
                CHECK_V(e <= 1e-6, "%-18s dw_ih accumulates (+=): max rel diff %.3e", fname, e);
                break;
            }
            memcpy(w1, dwih, G * I * 4);
            struct { const char *ref; const float *v; size_t n; } cmp[] = {
                {"ref.h1", h1, BH}, {"ref.grad.x", dx, (size_t)B * I}, {"ref.grad.h", dh, BH},
                {"ref.grad.w_ih", dwih, G * I}, {"ref.grad.w_hh", dwhh, G * H}, {"ref.c1", c1, BH},
                {"ref.grad.c", dc, BH}, {"ref.grad.b_ih", dbih, G}, {"ref.grad.b_hh", dbhh, G},
            };
            int n_ref = 0, ncmp = 0;
            for (int k = 0; k < f.n_tensors; k++) n_ref += strncmp(f.tensors[k].name, "ref.", 4) == 0;
            for (int k = 0; k < 9; k++) {
                if ((gru && (k == 5 || k == 6)) || (!bias && k >= 7)) continue;
                ncmp++;
                size_t rn = 0;
                double *ref = fx_tensor_f64(&f, cmp[k].ref, &rn), terr;
                int has = fx_json_num(ej, cmp[k].ref, &terr);
                CHECK(ref && rn == cmp[k].n && has, "%s: '%s' missing, wrong size or without torch_err", path,
                      cmp[k].ref);
                if (ref && rn == cmp[k].n && has) {
                    double e = fx_max_err(cmp[k].v, ref, rn);
                    CHECK_V(e <= fx_tol(terr), "%-18s %-16s ours %.3e  torch %.3e  tol %.3e", fname, cmp[k].ref + 4,
                            e, terr, fx_tol(terr));
                }
                free(ref);
            }
            CHECK(n_ref == ncmp, "%s: expected %d ref tensors, file has %d", path, ncmp, n_ref);
        }
        free(w1);
    }
    for (int k = 0; k < 9; k++) free(t[k]);
    free(h1); free(c1); free(act); free(scratch); free(dx); free(dh); free(dc);
    free(dwih); free(dwhh); free(dbih); free(dbhh);
    lstm_st_free(&f);
}

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static float frand(void) { /* [-1, 1) */
    rng ^= rng >> 12; rng ^= rng << 25; rng ^= rng >> 27;
    return (float)((double)((rng * 0x2545F4914F6CDD1Dull) >> 40) / 8388608.0 - 1.0);
}

static double rel_diff(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]) / (1.0 + fabs((double)b[i]));
        if (!(d <= m)) m = isnan(d) ? INFINITY : d;
    }
    return m;
}

/* T chained cells vs lstm_forward/lstm_backward of a 1-layer net. */
/* gru: the same with lstm_gru_cell_* and an nn.GRU-like net (no c). */
static void chain_case(int I, int H, int B, int T, int bias, int gru) {
    lstm_config cfg = {I, H, 1, 0, bias, 0, gru ? LSTM_CELL_GRU : LSTM_CELL_LSTM};
    lstm_net net;
    lstm_status st = lstm_net_init(&net, &cfg);
    CHECK(st == LSTM_OK, "lstm_net_init: %s", lstm_last_error());
    if (st != LSTM_OK) return;
    lstm_net_init_uniform(&net, 77 + (uint64_t)H);
    const lstm_weights *w = &net.w[0];
    size_t BH = (size_t)B * H, BI = (size_t)B * I;
    float *x = malloc((size_t)T * BI * 4), *h0 = malloc(BH * 4), *c0 = malloc(BH * 4);
    float *gy = malloc((size_t)T * BH * 4), *ghn = malloc(BH * 4), *gcn = malloc(BH * 4);
    float *y = malloc((size_t)T * BH * 4), *hn = malloc(BH * 4), *cn = malloc(BH * 4);
    float *dx = malloc((size_t)T * BI * 4), *dh0 = malloc(BH * 4), *dc0 = malloc(BH * 4);
    /* cell chain state: h[t], c[t] for t = 0..T, act per step */
    float *hs = malloc((size_t)(T + 1) * BH * 4), *cs = malloc((size_t)(T + 1) * BH * 4);
    float *acts = malloc((size_t)T * BH * 16), *scr = malloc(BH * 32); /* [B, 8H] */
    float *cdx = malloc((size_t)T * BI * 4), *dh = malloc(BH * 4), *dc = malloc(BH * 4), *dh_in = malloc(BH * 4);
    float *dc_in = malloc(BH * 4);
    float *gw = calloc(net.n_params, 4);
    lstm_workspace *ws = NULL;
    if (!(x && h0 && c0 && gy && ghn && gcn && y && hn && cn && dx && dh0 && dc0 && hs && cs && acts && scr && cdx &&
          dh && dc && dh_in && dc_in && gw))
        goto done;
    for (size_t i = 0; i < (size_t)T * BI; i++) x[i] = frand();
    for (size_t i = 0; i < BH; i++) { h0[i] = 0.5f * frand(); c0[i] = frand(); ghn[i] = frand(); gcn[i] = frand(); }
    for (size_t i = 0; i < (size_t)T * BH; i++) gy[i] = frand();

    st = lstm_workspace_init(&ws, &net, T, B, LSTM_WS_TRAIN);
    CHECK(st == LSTM_OK, "lstm_workspace_init: %s", lstm_last_error());
    if (st != LSTM_OK) goto done;
    lstm_net_zero_grad(&net);
    st = lstm_forward(&net, ws, T, B, x, h0, gru ? NULL : c0, y, hn, gru ? NULL : cn);
    CHECK(st == LSTM_OK, "lstm_forward: %s", lstm_last_error());
    if (st != LSTM_OK) goto done;
    st = lstm_backward(&net, ws, gy, ghn, gru ? NULL : gcn, dx, dh0, gru ? NULL : dc0);
    CHECK(st == LSTM_OK, "lstm_backward: %s", lstm_last_error());
    if (st != LSTM_OK) goto done;

    memcpy(hs, h0, BH * 4);
    memcpy(cs, c0, BH * 4);
    for (int t = 0; t < T; t++) {
        if (gru)
            lstm_gru_cell_forward(hs + (t + 1) * BH, acts + t * BH * 4, x + t * BI, hs + t * BH, w->w_ih, w->w_hh,
                                  w->b_ih, w->b_hh, B, I, H);
        else
            lstm_cell_forward(hs + (t + 1) * BH, cs + (t + 1) * BH, acts + t * BH * 4, x + t * BI, hs + t * BH,
                              cs + t * BH, w->w_ih, w->w_hh, w->b_ih, w->b_hh, B, I, H);
    }
    double ey = rel_diff(hs + BH, y, (size_t)T * BH);
    double eh = rel_diff(hs + T * BH, hn, BH), ec = gru ? 0 : rel_diff(cs + T * BH, cn, BH);
    CHECK_V(ey <= 2e-6 && eh <= 2e-6 && ec <= 2e-6,
            "%s chain I=%d H=%d B=%d T=%d bias=%d: forward vs lstm_forward: y %.2e hn %.2e cn %.2e",
            gru ? "gru cell" : "cell", I, H, B, T, bias, ey, eh, ec);

    /* backward through the chain: dh_in = gy[t] + dh from step t+1 */
    lstm_weights gv = net.g[0]; /* offsets of the views, rebased onto gw */
    float *gwih = gw + (gv.w_ih - net.grads), *gwhh = gw + (gv.w_hh - net.grads);
    float *gbih = bias ? gw + (gv.b_ih - net.grads) : NULL, *gbhh = bias ? gw + (gv.b_hh - net.grads) : NULL;
    memcpy(dh, ghn, BH * 4);
    memcpy(dc, gcn, BH * 4);
    for (int t = T - 1; t >= 0; t--) {
        for (size_t i = 0; i < BH; i++) dh_in[i] = dh[i] + gy[t * BH + i];
        memcpy(dc_in, dc, BH * 4); /* outputs dh, dc must not alias the inputs */
        if (gru)
            lstm_gru_cell_backward(cdx + t * BI, dh, gwih, gwhh, gbih, gbhh, dh_in, acts + t * BH * 4, x + t * BI,
                                   hs + t * BH, w->w_ih, w->w_hh, scr, B, I, H);
        else
            lstm_cell_backward(cdx + t * BI, dh, dc, gwih, gwhh, gbih, gbhh, dh_in, dc_in, acts + t * BH * 4,
                               x + t * BI, hs + t * BH, cs + t * BH, cs + (t + 1) * BH, w->w_ih, w->w_hh, scr, B, I, H);
    }
    double edx = rel_diff(cdx, dx, (size_t)T * BI), edh = rel_diff(dh, dh0, BH), edc = gru ? 0 : rel_diff(dc, dc0, BH);
    double egw = rel_diff(gw, net.grads, net.n_params);
    /* gradients sum T·B terms: allow a few more ulps */
    CHECK_V(edx <= 4e-6 && edh <= 4e-6 && edc <= 4e-6 && egw <= 1e-5,
            "%s chain I=%d H=%d B=%d T=%d bias=%d: backward vs lstm_backward: dx %.2e dh0 %.2e dc0 %.2e dW %.2e",
            gru ? "gru cell" : "cell", I, H, B, T, bias, edx, edh, edc, egw);
done:
    /* h = c = NULL means zeros */
    if (st == LSTM_OK) {
        memset(h0, 0, BH * 4);
        memset(c0, 0, BH * 4);
        if (gru) {
            lstm_gru_cell_forward(hs, acts, x, h0, w->w_ih, w->w_hh, w->b_ih, w->b_hh, B, I, H);
            lstm_gru_cell_forward(hn, scr, x, NULL, w->w_ih, w->w_hh, w->b_ih, w->b_hh, B, I, H);
            memset(cs, 0, BH * 4);
            memset(cn, 0, BH * 4);
        } else {
            lstm_cell_forward(hs, cs, acts, x, h0, c0, w->w_ih, w->w_hh, w->b_ih, w->b_hh, B, I, H);
            lstm_cell_forward(hn, cn, scr, x, NULL, NULL, w->w_ih, w->w_hh, w->b_ih, w->b_hh, B, I, H);
        }
        double e0 = fmax(rel_diff(hn, hs, BH), rel_diff(cn, cs, BH));
        CHECK_V(e0 <= 1e-6, "cell I=%d H=%d B=%d bias=%d: h = c = NULL equals zeros: max rel diff %.2e", I, H, B,
                bias, e0);
    }
    lstm_workspace_free(ws);
    free(x); free(h0); free(c0); free(gy); free(ghn); free(gcn); free(y); free(hn); free(cn);
    free(dx); free(dh0); free(dc0); free(hs); free(cs); free(acts); free(scr); free(cdx);
    free(dh); free(dc); free(dh_in); free(dc_in); free(gw);
    lstm_net_free(&net);
}

/* 4. h = NULL stands for zeros as torch's hx=None does, non-finite weights included:
 * torch forms h·W_hhᵀ with h = 0, and 0·NaN, 0·Inf are NaN, so a NaN or ±Inf in a
 * W_hh row makes that gate NaN (LSTMCell / GRUCell with hx=None: h1 NaN in that unit),
 * and a non-finite dG column makes dW_hh = dGᵀ·0 NaN in that row.  NULL must give
 * what explicit zeros give: the same class, and finite values equal. */
static int same_values(const float *a, const float *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (isnan(a[i]) != isnan(b[i]) || (!isnan(a[i]) && a[i] != b[i])) return 0;
    return 1;
}

static void null_state_nonfinite(int gru) {
    enum { B = 2, I = 3, H = 5 };
    const int G = gru ? 3 : 4;
    float x[B * I], w_ih[4 * H * I], w_hh[4 * H * H], b_ih[4 * H], b_hh[4 * H], zeros[B * H] = {0};
    for (int i = 0; i < B * I; i++) x[i] = frand();
    for (int i = 0; i < G * H * I; i++) w_ih[i] = frand();
    for (int i = 0; i < G * H * H; i++) w_hh[i] = frand();
    for (int i = 0; i < G * H; i++) b_ih[i] = frand(), b_hh[i] = frand();
    w_hh[0 * H + 1] = NAN;                 /* gate i / r, unit 0 */
    w_hh[(size_t)(2 * H + 2) * H] = INFINITY; /* gate g / n, unit 2 */
    float h1[2][B * H], c1[2][B * H], act[2][B * 4 * H];
    for (int v = 0; v < 2; v++) {
        if (gru) lstm_gru_cell_forward(h1[v], act[v], x, v ? zeros : NULL, w_ih, w_hh, b_ih, b_hh, B, I, H);
        else lstm_cell_forward(h1[v], c1[v], act[v], x, v ? zeros : NULL, NULL, w_ih, w_hh, b_ih, b_hh, B, I, H);
    }
    int nan_units = 0;
    for (int i = 0; i < B * H; i++) nan_units += isnan(h1[1][i]);
    CHECK_V(nan_units == 2 * B && same_values(h1[0], h1[1], B * H) && (gru || same_values(c1[0], c1[1], B * H)),
            "%s cell, non-finite W_hh, h NULL: h1 as with h = zeros (torch's hx=None: %d NaN units, NULL gives %s)",
            gru ? "GRU" : "LSTM", nan_units, same_values(h1[0], h1[1], B * H) ? "the same" : "others");
    /* backward: W_hh finite again, a NaN in W_ih (gate 1, unit 3) makes that dG column NaN */
    w_hh[0 * H + 1] = 0.5f;
    w_hh[(size_t)(2 * H + 2) * H] = 0.5f;
    w_ih[(size_t)(H + 3) * I] = NAN;
    float gh1[B * H], dwhh[2][4 * H * H], dx[2][B * I], dh[2][B * H], scr[B * 12 * H];
    for (int i = 0; i < B * H; i++) gh1[i] = frand();
    for (int v = 0; v < 2; v++) {
        const float *h = v ? zeros : NULL;
        memset(dwhh[v], 0, sizeof dwhh[v]);
        if (gru) {
            lstm_gru_cell_forward(h1[v], act[v], x, h, w_ih, w_hh, b_ih, b_hh, B, I, H);
            lstm_gru_cell_backward(dx[v], dh[v], NULL, dwhh[v], NULL, NULL, gh1, act[v], x, h, w_ih, w_hh, scr, B, I, H);
        } else {
            lstm_cell_forward(h1[v], c1[v], act[v], x, h, NULL, w_ih, w_hh, b_ih, b_hh, B, I, H);
            lstm_cell_backward(dx[v], dh[v], NULL, NULL, dwhh[v], NULL, NULL, gh1, NULL, act[v], x, h, NULL, c1[v],
                               w_ih, w_hh, scr, B, I, H);
        }
    }
    int nan_w = 0;
    for (int i = 0; i < G * H * H; i++) nan_w += isnan(dwhh[1][i]);
    CHECK_V(nan_w > 0 && same_values(dwhh[0], dwhh[1], (size_t)G * H * H) && same_values(dx[0], dx[1], B * I),
            "%s cell backward, non-finite dG, h NULL: dW_hh as with h = zeros (%d NaN, NULL gives %s)",
            gru ? "GRU" : "LSTM", nan_w, same_values(dwhh[0], dwhh[1], (size_t)G * H * H) ? "the same" : "others");
}

/* B, H < 1 or I < 0: nothing is read or written (the calls return no status; B = 0 wrote a
 * row of act, B = -1 walked pointers backwards). */
static void bad_sizes(void) {
    enum { N = 4096 };
    static float buf[14][N];
    const int sizes[][3] = {{0, 4, 4}, {-1, 4, 4}, {2, 4, 0}, {2, 4, -3}, {2, -1, 4}, {-5, -5, -5}};
    int bad = 0;
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        const int B = sizes[k][0], I = sizes[k][1], H = sizes[k][2];
        for (int gru = 0; gru < 2; gru++) {
            for (int i = 0; i < 14; i++)
                for (int j = 0; j < N; j++) buf[i][j] = 7.0f;
            if (gru) {
                lstm_gru_cell_forward(buf[0], buf[1], buf[2], buf[3], buf[4], buf[5], buf[6], buf[7], B, I, H);
                lstm_gru_cell_backward(buf[8], buf[9], buf[10], buf[11], buf[12], buf[13], buf[0], buf[1], buf[2],
                                       buf[3], buf[4], buf[5], buf[6], B, I, H);
            } else {
                lstm_cell_forward(buf[0], buf[1], buf[2], buf[3], buf[4], buf[5], buf[6], buf[7], buf[8], buf[9], B, I,
                                  H);
                lstm_cell_backward(buf[10], buf[11], buf[12], buf[13], buf[0], buf[1], buf[2], buf[3], buf[4], buf[5],
                                   buf[6], buf[7], buf[8], buf[9], buf[0], buf[1], buf[2], B, I, H);
            }
            for (int i = 0; i < 14; i++)
                for (int j = 0; j < N; j++) bad += buf[i][j] != 7.0f;
        }
    }
    CHECK_V(bad == 0, "cell forward/backward with B, H < 1 or I < 0 (6 shapes, LSTM and GRU): nothing written (%d "
            "floats changed)", bad);
}

int main(int argc, char **argv) {
    bad_sizes();
    const char *dir = argc > 1 ? argv[1] : "tests/fixtures";
    DIR *d = opendir(dir);
    CHECK(d != NULL, "cannot open fixture directory '%s'", dir);
    int n = 0;
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            size_t l = strlen(e->d_name);
            if (strncmp(e->d_name, "cell", 4) == 0 && l > 12 && strcmp(e->d_name + l - 12, ".safetensors") == 0) {
                fixture_case(dir, e->d_name);
                n++;
            }
        }
        closedir(d);
    }
    CHECK(n > 0, "no cell*.safetensors fixtures in '%s' (run tools/lstm_ref.py --out %s)", dir, dir);
    for (int gru = 0; gru < 2; gru++) {
        chain_case(1, 1, 1, 1, 1, gru);
        chain_case(13, 37, 5, 6, 1, gru);
        chain_case(4, 6, 3, 4, 0, gru);
        chain_case(20, 100, 2, 3, 1, gru);
        null_state_nonfinite(gru);
    }
    return TEST_REPORT();
}
