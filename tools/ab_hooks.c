/* ab_hooks.c — an in-process A/B of one engine choice that a test hook switches:
 * two workspaces of the same net, one made with each setting, timed in alternating
 * iterations (A B, B A, ...), so that a busy or drifting host weighs on both alike.  The
 * hook is set to a side's value before each of its iterations too (some are read at
 * every forward, act_pad when a workspace is made).  Side A is the choice off, B on.
 * Prints each side's fastest and median iteration, the median of the paired ratios
 * B/A with its quartiles, which side the engine's rule takes on this CPU and shape
 * ("n/a" where the hook changes nothing, e.g. a training choice in forward mode), and
 * a verdict: "rule faster" or "rule slower" when the quartiles of the ratio are both
 * on one side of 1, else "even".  Not a test; bench/rules.sh runs it over the
 * shapes each rule was chosen on.
 *   cc -O2 -Iinclude -Isrc tools/ab_hooks.c build/liblstm.a -lm -pthread -o build/ab_hooks
 *   build/ab_hooks HOOK I H L B T MODE [--bidirectional] [--proj P] [--gru] [--iters N] [--threads N]
 * HOOK (off / on):
 *   act_pad    act's rows A·H / A·H + 16 floats (lstm__set_act_pad)
 *   step_x     x·W_ihᵀ as a GEMM before the loop / inside the fused step (lstm__set_step_x)
 *   ta_direct  the weight gradients' dGᵀ packed / read in place (gemm_ta_direct)
 *   two_pass8  8 rows of the fused step as two tiles of 4 / one tile in two passes
 *   pf_tiles2  two row tiles of a fused step without / with the next block's prefetch
 *   train_rows training splits a step over the threads by units / by batch rows
 *   par_dirs   training's forward and backward run two directions in turn / at once, one a thread
 *   step1_pf   the batch-1 step never / always prefetches its pack (the rule's side: what
 *              the kernel did in one forward under the rule, lstm__step1_pf_seen)
 * MODE: forward or train (forward + backward), packs kept as in lstm bench.  Defaults: 20
 * iterations after one warm-up pair, 2 threads. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "lstm.h"

static const char *const hooks[] = {"act_pad", "step_x", "ta_direct", "two_pass8", "pf_tiles2", "step1_pf", "train_rows", "par_dirs"};
enum { ACT_PAD, STEP_X, TA_DIRECT, TWO_PASS8, PF_TILES2, STEP1_PF, TRAIN_ROWS, PAR_DIRS, N_HOOKS };

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
}
static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}
/* side -1: back to the rule (the CPU's own values, saved in cpu0) */
static void set_hook(int hook, int side, const lstm__cpu_info *cpu0) {
    switch (hook) {
    case ACT_PAD: lstm__set_act_pad(side); break;
    case STEP_X: lstm__set_step_x(side); break;
    case TA_DIRECT: lstm__cpu_set_gemm_ta_direct(side < 0 ? cpu0->gemm_ta_direct : side); break;
    case TWO_PASS8: lstm__cpu_set_step_two_pass8(side < 0 ? cpu0->step_two_pass8 : side); break;
    case PF_TILES2: lstm__cpu_set_step_pf_tiles2(side < 0 ? cpu0->step_pf_tiles2 : side); break;
    case TRAIN_ROWS: lstm__set_train_split(side); break;
    case PAR_DIRS: lstm__set_train_par_dirs(side < 0 ? 1 : side); break;
    default: lstm__cpu_set_step1_pf_bytes(side < 0 ? cpu0->step1_pf_bytes : side ? 0 : LONG_MAX); break;
    }
}

int main(int argc, char **argv) {
    int hook = 0;
    while (hook < N_HOOKS && argc > 1 && strcmp(argv[1], hooks[hook])) hook++;
    if (argc < 8 || hook == N_HOOKS) {
        fprintf(stderr, "usage: ab_hooks ");
        for (int h = 0; h < N_HOOKS; h++) fprintf(stderr, "%s%s", h ? "|" : "", hooks[h]);
        fprintf(stderr, " I H L B T forward|train\n"
                        "                [--bidirectional] [--proj P] [--gru] [--iters N] [--threads N]\n");
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
    const lstm__cpu_info cpu0 = *lstm__cpu();
    lstm_net net;
    if (lstm_net_init(&net, &cfg) != LSTM_OK) { fprintf(stderr, "ab_hooks: %s\n", lstm_last_error()); return 1; }
    lstm_net_init_uniform(&net, 1);
    lstm_workspace *ws[2] = {NULL, NULL};
    size_t nx = (size_t)T * B * cfg.input_size, ny = (size_t)T * B * net.D * net.Hout;
    float *x = malloc(nx * 4), *y = malloc(ny * 4), *dy = malloc(ny * 4), *dx = malloc(nx * 4);
    double *t[2] = {malloc((size_t)N * sizeof(double)), malloc((size_t)N * sizeof(double))};
    double *r = malloc((size_t)N * sizeof(double));
    int rc = 1;
    if (!x || !y || !dy || !dx || !t[0] || !t[1] || !r) { fprintf(stderr, "ab_hooks: out of memory\n"); goto done; }
    for (int side = 0; side < 2; side++) {
        set_hook(hook, side, &cpu0);
        if (lstm_workspace_init(&ws[side], &net, T, B, (train ? LSTM_WS_TRAIN : 0) | LSTM_WS_KEEP_PACKS) != LSTM_OK ||
            lstm_workspace_set_threads(ws[side], threads) != LSTM_OK) {
            fprintf(stderr, "ab_hooks: %s\n", lstm_last_error());
            goto done;
        }
    }
    uint64_t s = 88172645463325252ull;
    for (size_t i = 0; i < nx; i++) { s ^= s << 13, s ^= s >> 7, s ^= s << 17; x[i] = (float)(s >> 40) / 16777216.0f - 0.5f; }
    for (size_t i = 0; i < ny; i++) { s ^= s << 13, s ^= s >> 7, s ^= s << 17; dy[i] = (float)(s >> 40) / 16777216.0f - 0.5f; }
    /* the rule's side for this shape (layer 0's input; set_hook(-1) restores the rule);
     * n/a where the hook changes nothing here */
    set_hook(hook, -1, &cpu0);
    const int A = lstm__cell_of(cfg.cell)->A, Hh = cfg.hidden_size;
    int rule; /* 1 on, 0 off, -1 n/a */
    switch (hook) {
    case ACT_PAD: rule = lstm__gemm_direct_ld(A * Hh) != A * Hh; break;
    case STEP_X: rule = lstm__step_x_rule(ws[0], cfg.input_size); break;
    case TA_DIRECT: rule = train ? cpu0.gemm_ta_direct : -1; break;
    case TWO_PASS8: rule = cpu0.step_two_pass8; break;
    case PF_TILES2: rule = cpu0.step_pf_tiles2; break;
    case TRAIN_ROWS: rule = train ? lstm__train_split_rule(ws[0]) : -1; break;
    case PAR_DIRS: rule = train && cfg.bidirectional && threads == 2 ? 1 : -1; break;
    default: /* as the kernel decides it: one forward under the rule */
        lstm__step1_pf_seen();
        lstm_forward(&net, ws[0], T, B, x, NULL, NULL, y, NULL, NULL);
        rule = lstm__step1_pf_seen();
        break;
    }
    for (int it = -1; it < N; it++)
        for (int q = 0; q < 2; q++) {
            const int side = (it & 1) ? 1 - q : q; /* A B, then B A */
            set_hook(hook, side, &cpu0);
            double t0 = now_ms();
            lstm_forward(&net, ws[side], T, B, x, NULL, NULL, y, NULL, NULL);
            if (train) lstm_backward(&net, ws[side], dy, NULL, NULL, dx, NULL, NULL);
            if (it >= 0) t[side][it] = now_ms() - t0;
        }
    set_hook(hook, -1, &cpu0);
    for (int i = 0; i < N; i++) r[i] = t[1][i] / t[0][i];
    qsort(r, (size_t)N, sizeof *r, cmp);
    qsort(t[0], (size_t)N, sizeof *t[0], cmp);
    qsort(t[1], (size_t)N, sizeof *t[1], cmp);
    const double q1 = r[N / 4], q3 = r[3 * N / 4];
    const int on_faster = q3 < 1.0, off_faster = q1 > 1.0;
    const char *verdict = rule < 0                    ? "n/a"
                          : !on_faster && !off_faster ? "even"
                          : on_faster == rule         ? "rule faster"
                                                      : "rule slower";
    printf("%s: off fastest %.2f median %.2f ms | on fastest %.2f median %.2f ms | on/off paired: median %.3f "
           "(quartiles %.3f %.3f), %d pairs | rule: %s | %s\n",
           argv[1], t[0][0], t[0][N / 2], t[1][0], t[1][N / 2], r[N / 2], q1, q3, N,
           rule < 0 ? "n/a" : rule ? "on" : "off", verdict);
    rc = 0;
done:
    free(x), free(y), free(dy), free(dx), free(t[0]), free(t[1]), free(r);
    if (ws[0]) lstm_workspace_free(ws[0]);
    if (ws[1]) lstm_workspace_free(ws[1]);
    lstm_net_free(&net);
    return rc;
}
