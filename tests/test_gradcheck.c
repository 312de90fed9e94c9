/* test_gradcheck.c — lstm_backward against central finite differences of
 * lstm_forward, independent of PyTorch.
 *
 * Loss: L = Σ y·gy + Σ hn·ghn + Σ cn·gcn, summed in double from the float
 * outputs, so dL/dy = gy etc. and lstm_backward(gy, ghn, gcn) must give dL/dθ.
 * For a sample of entries of every parameter tensor, of x, h0 and c0 we
 * perturb the float value by ±eps and take fd = (L(θ+) - L(θ-)) / (θ+ - θ-)
 * (the actual float step, not the nominal eps).
 *
 * Tolerance, and why it is sound: with eps = 1e-2 the central difference's
 * truncation error is eps²/6·|L'''|; L''' is O(1) for these nets (weights
 * ~U(±1/√H), unit inputs, |gy| <= 1), so that is ~2e-5.  The float32
 * forward rounds every output by ~6e-8 relative and L sums N <= ~300 such
 * terms of size <= 1, so each L carries noise <= ~N·6e-8 ≈ 2e-5 worst case;
 * divided by 2·eps this is <= ~1e-3 on fd, typically 10x smaller (random
 * signs).  The analytic gradient itself is float32 (relative ~1e-6).  Hence
 *     |fd - an| <= 1e-3 + 5e-3·|an|
 * holds for a correct backward (a naive double-checked implementation stays
 * below 1/50 of it), while a wrong term (a sign, a missing factor, a wrong
 * index) gives errors of the order of |an| itself, which for most sampled
 * entries is 0.05..2: each case also requires that at least half of its
 * sampled entries are "informative" (|an| > 2e-2, where the tolerance is at
 * most a sixth of |an|), so a broken gradient cannot pass by being compared
 * only where it is near zero.
 *
 * The cases cover bidirectional, projected, 2 layers, bias off, zero initial
 * state (h0 = c0 = NULL, gradient at zeros), and NULL dy / dhn / dcn, for
 * the LSTM and the GRU (no c). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lstm.h"
#include "test.h"

typedef struct {
    const char *name;
    int I, H, L, P, bias, bidir, T, B;
    int zero_state;         /* forward with h0 = c0 = NULL */
    int no_dy, no_dhn, no_dcn; /* pass NULL for that upstream gradient */
    int gru;                /* LSTM_CELL_GRU: no c (c0, cn, gcn, dc0 NULL) */
    int drop;               /* dropout between layers, percent (the same mask for every forward) */
} gc_case;

static uint64_t rng = 0x243F6A8885A308D3ull;
static double urand(void) { /* [0, 1) */
    rng ^= rng >> 12; rng ^= rng << 25; rng ^= rng >> 27;
    return (double)((rng * 0x2545F4914F6CDD1Dull) >> 11) / 9007199254740992.0;
}
static void fill(float *a, size_t n, double lo, double hi) {
    for (size_t i = 0; i < n; i++) a[i] = (float)(lo + (hi - lo) * urand());
}

typedef struct {
    lstm_net *net;
    lstm_workspace *ws;
    int T, B;
    float *x, *h0, *c0, *y, *hn, *cn, *gy, *ghn, *gcn;
    size_t ny, nh, nc; /* nc = 0: a GRU */
    uint64_t rng;      /* dropout state, reset before every forward */
} gc_ctx;

/* L in double from a float forward; h0/c0 passed only when pass_state. */
static double loss(gc_ctx *c, int pass_state) {
    c->rng = 0x5DEECE66Dull; /* the same dropout mask each time */
    lstm_status st = lstm_forward(c->net, c->ws, c->T, c->B, c->x, pass_state ? c->h0 : NULL,
                                  pass_state && c->nc ? c->c0 : NULL, c->y, c->hn, c->nc ? c->cn : NULL);
    if (st != LSTM_OK) return NAN;
    double s = 0;
    for (size_t i = 0; i < c->ny; i++) s += (double)c->y[i] * c->gy[i];
    for (size_t i = 0; i < c->nh; i++) s += (double)c->hn[i] * c->ghn[i];
    for (size_t i = 0; i < c->nc; i++) s += (double)c->cn[i] * c->gcn[i];
    return s;
}

typedef struct {
    int checked, bad, informative;
    double worst; /* max |fd - an| / tol */
} gc_stats;

/* Checks entries idx[0..k) of array v (whose analytic gradient is an). */
static void check_entries(gc_ctx *c, int pass_state, float *v, const float *an, const size_t *idx, int k,
                          const char *cname, const char *tname, gc_stats *s) {
    const float eps = 1e-2f;
    for (int j = 0; j < k; j++) {
        size_t i = idx[j];
        float orig = v[i];
        float vp = orig + eps, vm = orig - eps;
        v[i] = vp;
        double lp = loss(c, pass_state);
        v[i] = vm;
        double lm = loss(c, pass_state);
        v[i] = orig;
        double fd = (lp - lm) / ((double)vp - (double)vm);
        double a = an[i], tol = 1e-3 + 5e-3 * fabs(a);
        double r = fabs(fd - a) / tol;
        s->checked++;
        if (fabs(a) > 2e-2) s->informative++;
        if (!(r <= 1.0)) {
            s->bad++;
            if (s->bad <= 5)
                printf("  %s: %s[%zu]: analytic %.6g, finite difference %.6g\n", cname, tname, i, a, fd);
        }
        if (!(r <= s->worst)) s->worst = isnan(r) ? INFINITY : r;
    }
}

/* Up to k indices spread over [0, n): the ends and random ones. */
static int sample(size_t *idx, size_t n, int k) {
    if (n == 0) return 0;
    if ((size_t)k >= n) {
        for (size_t i = 0; i < n; i++) idx[i] = i;
        return (int)n;
    }
    idx[0] = 0;
    idx[1] = n - 1;
    for (int j = 2; j < k; j++) idx[j] = (size_t)(urand() * (double)n) % n;
    return k;
}

static void run_case(const gc_case *gc) {
    lstm_config cfg = {gc->I, gc->H, gc->L, gc->P, gc->bias, gc->bidir, gc->gru ? LSTM_CELL_GRU : LSTM_CELL_LSTM};
    lstm_net net;
    lstm_status st = lstm_net_init(&net, &cfg);
    CHECK(st == LSTM_OK, "%s: lstm_net_init: %s", gc->name, lstm_last_error());
    if (st != LSTM_OK) return;
    lstm_net_init_uniform(&net, 1234 + (uint64_t)gc->H);
    int D = net.D, Hout = net.Hout, LD = gc->L * D, T = gc->T, B = gc->B;
    gc_ctx c = {&net, NULL, T, B, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    size_t nx = (size_t)T * B * gc->I;
    c.ny = (size_t)T * B * D * Hout;
    c.nh = (size_t)LD * B * Hout;
    c.nc = gc->gru ? 0 : (size_t)LD * B * gc->H;
    c.x = malloc(nx * sizeof(float));
    c.h0 = calloc(c.nh, sizeof(float));
    c.c0 = calloc(c.nc + 1, sizeof(float));
    c.y = malloc(c.ny * sizeof(float));
    c.hn = malloc(c.nh * sizeof(float));
    c.cn = malloc((c.nc + 1) * sizeof(float));
    c.gy = calloc(c.ny, sizeof(float));
    c.ghn = calloc(c.nh, sizeof(float));
    c.gcn = calloc(c.nc + 1, sizeof(float));
    float *dx = malloc(nx * sizeof(float)), *dh0 = malloc(c.nh * sizeof(float));
    float *dc0 = malloc((c.nc + 1) * sizeof(float));
    size_t idx[16];
    gc_stats s = {0, 0, 0, 0};
    if (!c.x || !c.h0 || !c.c0 || !c.y || !c.hn || !c.cn || !c.gy || !c.ghn || !c.gcn || !dx || !dh0 || !dc0) {
        CHECK(0, "%s: out of memory", gc->name);
        goto done;
    }
    fill(c.x, nx, -1, 1);
    if (!gc->zero_state) {
        fill(c.h0, c.nh, -0.8, 0.8);
        fill(c.c0, c.nc, -1, 1);
    }
    if (!gc->no_dy) fill(c.gy, c.ny, -1, 1);
    if (!gc->no_dhn) fill(c.ghn, c.nh, -1, 1);
    if (!gc->no_dcn) fill(c.gcn, c.nc, -1, 1);

    st = lstm_workspace_init(&c.ws, &net, T, B, LSTM_WS_TRAIN);
    CHECK(st == LSTM_OK, "%s: lstm_workspace_init: %s", gc->name, lstm_last_error());
    if (st != LSTM_OK) goto done;
    if (gc->drop) lstm_workspace_set_dropout(c.ws, (float)gc->drop / 100.0f, &c.rng);
    int pass_state = !gc->zero_state;
    lstm_net_zero_grad(&net);
    double l0 = loss(&c, pass_state);
    CHECK(isfinite(l0), "%s: forward failed: %s", gc->name, lstm_last_error());
    /* poison the outputs: backward must overwrite them */
    for (size_t i = 0; i < nx; i++) dx[i] = NAN;
    for (size_t i = 0; i < c.nh; i++) dh0[i] = NAN;
    for (size_t i = 0; i < c.nc; i++) dc0[i] = NAN;
    st = lstm_backward(&net, c.ws, gc->no_dy ? NULL : c.gy, gc->no_dhn ? NULL : c.ghn,
                       gc->no_dcn || gc->gru ? NULL : c.gcn, dx, dh0, gc->gru ? NULL : dc0);
    CHECK(st == LSTM_OK, "%s: lstm_backward: %s", gc->name, lstm_last_error());
    if (st != LSTM_OK) goto done;
    float *an = malloc(net.n_params * sizeof(float));
    if (!an) goto done;
    memcpy(an, net.grads, net.n_params * sizeof(float));

    int nt = lstm_net_tensors(&net, NULL);
    lstm_tensor_info *ti = malloc((size_t)nt * sizeof *ti);
    if (!ti) { free(an); goto done; }
    lstm_net_tensors(&net, ti);
    for (int k = 0; k < nt; k++) {
        int m = sample(idx, ti[k].numel, 6);
        for (int j = 0; j < m; j++) idx[j] += ti[k].offset;
        check_entries(&c, pass_state, net.params, an, idx, m, gc->name, ti[k].name, &s);
    }
    int m = sample(idx, nx, 8);
    check_entries(&c, pass_state, c.x, dx, idx, m, gc->name, "x", &s);
    /* zero-state: the gradient at h0 = c0 = 0; perturb explicit zero arrays */
    m = sample(idx, c.nh, 6);
    check_entries(&c, 1, c.h0, dh0, idx, m, gc->name, "h0", &s);
    m = sample(idx, c.nc, 6);
    check_entries(&c, 1, c.c0, dc0, idx, m, gc->name, "c0", &s);
    CHECK_V(s.bad == 0, "gradcheck %-22s %3d entries, %3d informative, worst |fd-an|/tol %.3f", gc->name,
            s.checked, s.informative, s.worst);
    CHECK(s.informative * 2 >= s.checked, "%s: only %d of %d sampled gradients exceed 2e-2: the check is too weak",
          gc->name, s.informative, s.checked);
    free(ti);
    free(an);
done:
    lstm_workspace_free(c.ws);
    free(c.x); free(c.h0); free(c.c0); free(c.y); free(c.hn); free(c.cn);
    free(c.gy); free(c.ghn); free(c.gcn); free(dx); free(dh0); free(dc0);
    lstm_net_free(&net);
}

int main(void) {
    static const gc_case cases[] = {
        /* name                 I  H  L  P bias bidir T  B  zero noDy noDhn noDcn */
        {"basic",               3, 4, 1, 0, 1, 0,   5, 2, 0, 0, 0, 0, 0, 0},
        {"bidirectional",       3, 4, 1, 0, 1, 1,   4, 2, 0, 0, 0, 0, 0, 0},
        {"projected",           3, 5, 1, 3, 1, 0,   4, 2, 0, 0, 0, 0, 0, 0},
        {"two_layers",          2, 4, 2, 0, 1, 0,   4, 2, 0, 0, 0, 0, 0, 0},
        {"bias_off",            3, 4, 1, 0, 0, 0,   4, 2, 0, 0, 0, 0, 0, 0},
        {"deep_bidir_proj",     3, 5, 2, 2, 1, 1,   3, 2, 0, 0, 0, 0, 0, 0},
        {"zero_state",          2, 3, 2, 0, 1, 1,   3, 1, 1, 0, 0, 0, 0, 0},
        {"only_dy",             3, 4, 2, 0, 1, 0,   4, 2, 0, 0, 1, 1, 0, 0},
        {"only_dhn_dcn",        3, 4, 2, 0, 1, 1,   4, 2, 0, 1, 0, 0, 0, 0},
        /* GRU                  I  H  L  P bias bidir T  B  zero noDy noDhn noDcn gru */
        {"gru_basic",           3, 4, 1, 0, 1, 0,   5, 2, 0, 0, 0, 0, 1, 0},
        {"gru_bidirectional",   3, 4, 1, 0, 1, 1,   4, 2, 0, 0, 0, 0, 1, 0},
        {"gru_two_layers",      2, 4, 2, 0, 1, 0,   4, 2, 0, 0, 0, 0, 1, 0},
        {"gru_bias_off",        3, 4, 1, 0, 0, 0,   4, 2, 0, 0, 0, 0, 1, 0},
        {"gru_zero_state",      2, 3, 2, 0, 1, 1,   3, 1, 1, 0, 0, 0, 1, 0},
        {"gru_only_dy",         3, 4, 2, 0, 1, 0,   4, 2, 0, 0, 1, 1, 1, 0},
        {"gru_only_dhn",        3, 4, 2, 0, 1, 1,   4, 2, 0, 1, 0, 1, 1, 0},
        /* dropout 30% between layers (fixed mask) */
        {"dropout",             3, 4, 3, 0, 1, 0,   4, 2, 0, 0, 0, 0, 0, 30},
        {"gru_dropout_bidir",   3, 4, 2, 0, 1, 1,   4, 2, 0, 0, 0, 0, 1, 30},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_case(&cases[i]);
    return TEST_REPORT();
}
