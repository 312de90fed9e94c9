/* ab_hooks.c — an in-process A/B of one engine choice that a test hook switches:
 * two workspaces of the same net, one made with each setting, timed in alternating
 * iterations (A B, B A, ...), so that a busy or drifting host weighs on both alike.  The
 * hook is set to a side's value before each of its iterations too (step_x is read at
 * every forward, act_pad when a workspace is made).
 * Prints each side's fastest and median iteration and the median of the paired
 * ratios B/A with its quartiles.  Not a test.
 *   cc -O2 -Iinclude -Isrc tools/ab_hooks.c build/liblstm.a -lm -pthread -o build/ab_hooks
 *   build/ab_hooks HOOK I H L B T MODE [--bidirectional] [--proj P] [--gru] [--iters N] [--threads N]
 * HOOK: act_pad (A: rows of A·H, B: A·H + 16; lstm__set_act_pad) or step_x (A: the
 * rule, B: x·W_ihᵀ as a GEMM before the loop; lstm__set_step_x).  MODE: forward
 * (packs kept, as lstm bench) or train (forward + backward).  Defaults: 20
 * iterations after one warm-up pair, 2 threads. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "lstm.h"

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
}
static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}
static void set_hook(const char *hook, int side) {
    if (!strcmp(hook, "act_pad")) lstm__set_act_pad(side);
    else lstm__set_step_x(side ? 0 : -1);
}

int main(int argc, char **argv) {
    if (argc < 8 || (strcmp(argv[1], "act_pad") && strcmp(argv[1], "step_x"))) {
        fprintf(stderr, "usage: ab_hooks act_pad|step_x I H L B T forward|train [--bidirectional] [--proj P] "
                        "[--gru] [--iters N] [--threads N]\n");
        return 2;
    }
    lstm_config cfg = {atoi(argv[2]), atoi(argv[3]), atoi(argv[4]), 0, 1, 0, LSTM_CELL_LSTM};
    const int B = atoi(argv[5]), T = atoi(argv[6]), train = !strcmp(argv[7], "train");
    if (!train && strcmp(argv[7], "forward")) { fprintf(stderr, "ab_hooks: MODE: forward or train\n"); return 2; }
    int N = 20, threads = 2;
    for (int i = 8; i < argc; i++) {
        if (!strcmp(argv[i], "--bidirectional")) cfg.bidirectional = 1;
        else if (!strcmp(argv[i], "--gru")) cfg.cell = LSTM_CELL_GRU;
        else if (!strcmp(argv[i], "--proj") && i + 1 < argc) cfg.proj_size = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--iters") && i + 1 < argc) N = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else { fprintf(stderr, "ab_hooks: unknown argument '%s'\n", argv[i]); return 2; }
    }
    if (N < 2 || B < 1 || T < 1) { fprintf(stderr, "ab_hooks: bad sizes\n"); return 2; }
    lstm_net net;
    if (lstm_net_init(&net, &cfg) != LSTM_OK) { fprintf(stderr, "ab_hooks: %s\n", lstm_last_error()); return 1; }
    lstm_net_init_uniform(&net, 1);
    lstm_workspace *ws[2];
    for (int side = 0; side < 2; side++) {
        set_hook(argv[1], side);
        if (lstm_workspace_init(&ws[side], &net, T, B, train ? LSTM_WS_TRAIN : LSTM_WS_KEEP_PACKS) != LSTM_OK ||
            lstm_workspace_set_threads(ws[side], threads) != LSTM_OK) {
            fprintf(stderr, "ab_hooks: %s\n", lstm_last_error());
            return 1;
        }
    }
    size_t nx = (size_t)T * B * cfg.input_size, ny = (size_t)T * B * net.D * net.Hout;
    float *x = malloc(nx * 4), *y = malloc(ny * 4), *dy = malloc(ny * 4), *dx = malloc(nx * 4);
    double *t[2] = {malloc((size_t)N * sizeof(double)), malloc((size_t)N * sizeof(double))};
    double *r = malloc((size_t)N * sizeof(double));
    if (!x || !y || !dy || !dx || !t[0] || !t[1] || !r) { fprintf(stderr, "ab_hooks: out of memory\n"); return 1; }
    uint64_t s = 88172645463325252ull;
    for (size_t i = 0; i < nx; i++) { s ^= s << 13, s ^= s >> 7, s ^= s << 17; x[i] = (float)(s >> 40) / 16777216.0f - 0.5f; }
    for (size_t i = 0; i < ny; i++) { s ^= s << 13, s ^= s >> 7, s ^= s << 17; dy[i] = (float)(s >> 40) / 16777216.0f - 0.5f; }
    for (int it = -1; it < N; it++)
        for (int q = 0; q < 2; q++) {
            const int side = (it & 1) ? 1 - q : q; /* A B, then B A */
            set_hook(argv[1], side);
            double t0 = now_ms();
            lstm_forward(&net, ws[side], T, B, x, NULL, NULL, y, NULL, NULL);
            if (train) lstm_backward(&net, ws[side], dy, NULL, NULL, dx, NULL, NULL);
            if (it >= 0) t[side][it] = now_ms() - t0;
        }
    set_hook(argv[1], 0);
    for (int i = 0; i < N; i++) r[i] = t[1][i] / t[0][i];
    qsort(r, (size_t)N, sizeof *r, cmp);
    qsort(t[0], (size_t)N, sizeof *t[0], cmp);
    qsort(t[1], (size_t)N, sizeof *t[1], cmp);
    printf("%s: A fastest %.2f median %.2f ms | B fastest %.2f median %.2f ms | B/A paired: median %.3f "
           "(quartiles %.3f %.3f), %d pairs\n",
           argv[1], t[0][0], t[0][N / 2], t[1][0], t[1][N / 2], r[N / 2], r[N / 4], r[3 * N / 4], N);
    return 0;
}
