/* test_batch_first.c — LSTM_WS_BATCH_FIRST: lstm_forward / lstm_backward on
 * [B, T, ...] arrays give the same bits as the time-major calls on the
 * transposed arrays (LSTM with projection, GRU; 2 layers, bidirectional;
 * a call shorter than the workspace), states keep their shapes, and
 * lstm_stream refuses such a workspace. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lstm.h"
#include "test.h"

static uint64_t rng = 12345;
static float urand(void) {
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (float)((rng >> 11) * 0x1.0p-53) * 2.0f - 1.0f;
}
static float *rand_floats(size_t n) {
    float *p = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) p[i] = urand();
    return p;
}
/* src [n0, n1, m] -> dst [n1, n0, m] (the test's own transposition) */
static float *transposed(const float *src, size_t n0, size_t n1, size_t m) {
    float *dst = malloc(n0 * n1 * m * sizeof(float));
    for (size_t a = 0; a < n0; a++)
        for (size_t b = 0; b < n1; b++)
            for (size_t k = 0; k < m; k++) dst[(b * n0 + a) * m + k] = src[(a * n1 + b) * m + k];
    return dst;
}

static void same_bits(const char *what, const char *cell, const float *a, const float *b, size_t n) {
    CHECK_V(memcmp(a, b, n * sizeof(float)) == 0, "batch_first %s: %s equal to the time-major call's, bit for bit (%zu floats, max |diff| %.2e)",
            cell, what, n, test_maxabs(a, b, n));
}

static void one_case(int cell, int proj) {
    const char *name = cell == LSTM_CELL_GRU ? "GRU" : "LSTM";
    const int I = 4, H = 8, L = 2, Tws = 6, T = 5, B = 3;
    lstm_config cfg = {.input_size = I, .hidden_size = H, .num_layers = L, .proj_size = proj, .bias = 1,
                       .bidirectional = 1, .cell = cell};
    lstm_net net;
    CHECK(lstm_net_init(&net, &cfg) == LSTM_OK, "net: %s", lstm_last_error());
    lstm_net_init_uniform(&net, 9);
    const int D = net.D, Hout = net.Hout, has_c = cell == LSTM_CELL_LSTM;
    const size_t nx = (size_t)T * B * I, ny = (size_t)T * B * D * Hout;
    const size_t nh = (size_t)L * D * B * Hout, nc = has_c ? (size_t)L * D * B * H : 0;
    float *x = rand_floats(nx), *h0 = rand_floats(nh), *c0 = has_c ? rand_floats(nc) : NULL;
    float *dy = rand_floats(ny), *dhn = rand_floats(nh), *dcn = has_c ? rand_floats(nc) : NULL;
    float *xb = transposed(x, T, B, I), *dyb = transposed(dy, T, B, (size_t)D * Hout);
    float *y[2], *hn[2], *cn[2], *dx[2], *dh0[2], *dc0[2], *gw[2];
    for (int k = 0; k < 2; k++) { /* k = 0: time-major, k = 1: batch_first */
        lstm_workspace *ws;
        CHECK(lstm_workspace_init(&ws, &net, Tws, B, LSTM_WS_TRAIN | (k ? LSTM_WS_BATCH_FIRST : 0)) == LSTM_OK,
              "workspace: %s", lstm_last_error());
        y[k] = malloc(ny * sizeof(float));
        hn[k] = malloc(nh * sizeof(float));
        cn[k] = has_c ? malloc(nc * sizeof(float)) : NULL;
        dx[k] = malloc(nx * sizeof(float));
        dh0[k] = malloc(nh * sizeof(float));
        dc0[k] = has_c ? malloc(nc * sizeof(float)) : NULL;
        lstm_net_zero_grad(&net);
        CHECK(lstm_forward(&net, ws, T, B, k ? xb : x, h0, c0, y[k], hn[k], cn[k]) == LSTM_OK, "forward: %s",
              lstm_last_error());
        CHECK(lstm_backward(&net, ws, k ? dyb : dy, dhn, dcn, dx[k], dh0[k], dc0[k]) == LSTM_OK, "backward: %s",
              lstm_last_error());
        gw[k] = malloc(net.n_params * sizeof(float));
        memcpy(gw[k], net.grads, net.n_params * sizeof(float));
        if (k) { /* the streaming API is time-major only */
            lstm_state st;
            CHECK(lstm_state_init(&st, &net, B) == LSTM_OK, "state: %s", lstm_last_error());
            CHECK(lstm_stream(&net, ws, &st, 1, x, y[0]) == LSTM_ERR_ARG, "lstm_stream must refuse a batch_first workspace");
            lstm_state_free(&st);
        }
        lstm_workspace_free(ws);
    }
    float *y1 = transposed(y[1], B, T, (size_t)D * Hout), *dx1 = transposed(dx[1], B, T, I);
    same_bits("y [B,T,D*Hout]", name, y[0], y1, ny);
    same_bits("hn", name, hn[0], hn[1], nh);
    if (has_c) same_bits("cn", name, cn[0], cn[1], nc);
    same_bits("dx [B,T,I]", name, dx[0], dx1, nx);
    same_bits("dh0", name, dh0[0], dh0[1], nh);
    if (has_c) same_bits("dc0", name, dc0[0], dc0[1], nc);
    same_bits("parameter gradients", name, gw[0], gw[1], net.n_params);
    /* inference workspace too */
    lstm_workspace *wi;
    CHECK(lstm_workspace_init(&wi, &net, Tws, B, LSTM_WS_BATCH_FIRST) == LSTM_OK, "workspace: %s", lstm_last_error());
    CHECK(lstm_forward(&net, wi, T, B, xb, h0, c0, y1, NULL, NULL) == LSTM_OK, "forward: %s", lstm_last_error());
    same_bits("y of an inference workspace", name, y[1], y1, ny);
    CHECK(lstm_forward(&net, wi, Tws + 1, B, xb, h0, c0, y1, NULL, NULL) == LSTM_ERR_ARG, "T above the workspace's must fail");
    lstm_workspace_free(wi);
    for (int k = 0; k < 2; k++) {
        free(y[k]); free(hn[k]); free(cn[k]); free(dx[k]); free(dh0[k]); free(dc0[k]); free(gw[k]);
    }
    free(x); free(h0); free(c0); free(dy); free(dhn); free(dcn); free(xb); free(dyb); free(y1); free(dx1);
    lstm_net_free(&net);
}

int main(void) {
    one_case(LSTM_CELL_LSTM, 5);
    one_case(LSTM_CELL_LSTM, 0);
    one_case(LSTM_CELL_GRU, 0);
    return TEST_REPORT();
}
