/* cmd_bench.c — `lstm bench`: times forward, train (forward + backward) or
 * step-by-step streaming on one shape with random weights and inputs.
 *
 * Method: --warmup iterations (default 1), then timed iterations until at
 * least --min-iters (5) have run and --budget seconds (2) have passed; no
 * timed iteration starts that would end past --max-seconds (10) of timing,
 * but at least one always runs.  The median is reported.  A warm-up that
 * alone exceeds --max-seconds is reported as the single measurement
 * (warmup = 0, iters = 1), so a very slow shape costs one run.
 *
 * Forward and train modes keep the packed weights between iterations
 * (LSTM_WS_KEEP_PACKS: the first iteration, normally the warm-up, packs them),
 * as an inference server would and as oneDNN's bench reorders its weights once
 * (for its training primitives too); --repack packs them in every iteration
 * (lstm_forward's default, and what a training loop pays, its weights changing at
 * every step).  Rows measured before this (forward: session 8 and earlier,
 * train: session 24 and earlier) include the packing.
 *
 * FLOPs: 2·T·B·D·(G·H·(I_l + Hout) + Hout·H) per layer (I_l the layer's input
 * size, G = 4 gates for --cell lstm, 3 for gru, D = 2 when bidirectional,
 * Hout = P when projected, the last term only then), three times that for
 * train (forward, dX/dH, dW).  Step mode counts as forward. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <time.h>

#include "cli.h"

enum { MODE_FORWARD, MODE_TRAIN, MODE_STEP };
static const char *const mode_names[] = {"forward", "train", "step"};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint64_t rng_next(uint64_t *s) { /* xorshift64* */
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

static void fill_uniform(float *p, size_t n, uint64_t *s) { /* U(-1, 1) */
    for (size_t i = 0; i < n; i++) p[i] = (float)(rng_next(s) >> 40) * (2.0f / 16777216.0f) - 1.0f;
}

static float *alloc_or_die(size_t n) {
    float *p = malloc((n ? n : 1) * sizeof(float));
    if (!p) cli_fail("bench: out of memory allocating %zu floats", n);
    return p;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double peak_rss_mb(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return -1.0;
    return (double)ru.ru_maxrss / 1024.0; /* Linux: kilobytes */
}

static double current_rss_mb(void) { /* VmRSS from /proc/self/status; -1 if unknown */
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1.0;
    char line[256];
    double mb = -1.0;
    while (fgets(line, sizeof line, f)) {
        long kb;
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1) {
            mb = (double)kb / 1024.0;
            break;
        }
    }
    fclose(f);
    return mb;
}

static noreturn void bench_help(void) {
    puts("usage: lstm bench --input-size I --hidden H [--layers L] [--batch B] [--seq T]\n"
         "                  [--bidirectional] [--proj P]\n"
         "                  [--mode forward|train|step] [--cell lstm|gru] [--threads N] [--json]\n"
         "                  [--warmup N] [--min-iters N] [--max-iters N] [--budget SECONDS]\n"
         "                  [--max-seconds SECONDS] [--seed S] [--repack]\n"
         "Times one shape with random weights (PyTorch's init law) and random inputs;\n"
         "--cell gru times an nn.GRU of that shape (default lstm).  Defaults: --layers 1, --batch 1,\n"
         "--seq 1, --threads 1, --seed 1, --mode forward:\n"
         "  forward  inference over the whole sequence (lstm_forward)\n"
         "  train    lstm_forward + lstm_backward with gradients of all parameters and of the input\n"
         "  step     the sequence fed one time step per call through lstm_stream\n"
         "           (not with --bidirectional)\n"
         "--bidirectional: two directions; --proj P: LSTM with projections (h of size P < H).\n"
         "forward and train keep the weights packed between iterations (LSTM_WS_KEEP_PACKS: packed\n"
         "once, in the warm-up, as oneDNN's bench reorders its weights once); --repack packs them in\n"
         "every iteration (lstm_forward's default; a training loop's weights change at every step).\n"
         "Reports the median time per iteration (one whole sequence) over at least --min-iters\n"
         "(default 5) timed iterations after --warmup (default 1), running for about --budget\n"
         "seconds (default 2) and starting none that would end past --max-seconds (default 10;\n"
         "at least one always runs; a warm-up longer than that is the measurement).\n"
         "FLOPs: 2*T*B*D*(G*H*(I_l+Hout) + Hout*H) per layer (G = 4 gates LSTM, 3 GRU; last term\n"
         "with --proj only), x3 for train.\n"
         "--json prints one line: {\"ms\": ..., \"gflops\": ..., ...}.");
    cli_finish_stdout(); /* (exit 1 with a message when stdout cannot take it) */
    exit(0);
}

typedef struct {
    int mode, T, B;
    lstm_net *net;
    lstm_workspace *ws;
    lstm_state st;
    const float *x, *dy;
    float *y, *dx;
    int I, Hout;
} bench_ctx;

static void run_once(bench_ctx *c) {
    lstm_status s = LSTM_OK;
    switch (c->mode) {
    case MODE_FORWARD:
        s = lstm_forward(c->net, c->ws, c->T, c->B, c->x, NULL, NULL, c->y, NULL, NULL);
        break;
    case MODE_TRAIN:
        lstm_net_zero_grad(c->net);
        s = lstm_forward(c->net, c->ws, c->T, c->B, c->x, NULL, NULL, c->y, NULL, NULL);
        if (s == LSTM_OK) s = lstm_backward(c->net, c->ws, c->dy, NULL, NULL, c->dx, NULL, NULL);
        break;
    case MODE_STEP: {
        lstm_state_reset(&c->st);
        size_t xs = (size_t)c->B * c->I, ys = (size_t)c->B * c->Hout;
        for (int t = 0; t < c->T && s == LSTM_OK; t++)
            s = lstm_stream(c->net, c->ws, &c->st, 1, c->x + t * xs, c->y + t * ys);
        break;
    }
    }
    if (s != LSTM_OK) cli_fail_status(s);
}

int lstm_cmd_bench(int argc, char **argv) {
    cli_args a = {argc, argv, 1, "bench"};
    long I = 0, H = 0, L = 1, B = 1, T = 1, threads = 1, warmup = 1, min_iters = 5;
    long max_iters = 100000, seed = 1, proj = 0;
    double budget = 2.0, max_seconds = 10.0;
    const char *mode_s = "forward", *cell_s = "lstm";
    int json = 0, help = 0, bidir = 0, repack = 0;
    for (; a.i < a.argc; a.i++) {
        if (cli_opt_long(&a, "--input-size", &I, 1, 1 << 20)) continue;
        if (cli_opt_long(&a, "--hidden", &H, 1, 1 << 20)) continue;
        if (cli_opt_long(&a, "--layers", &L, 1, 1024)) continue;
        if (cli_opt_long(&a, "--batch", &B, 1, 1 << 20)) continue;
        if (cli_opt_long(&a, "--seq", &T, 1, 1 << 26)) continue;
        if (cli_opt_long(&a, "--proj", &proj, 0, 1 << 20)) continue;
        if (cli_opt_flag(&a, "--bidirectional", &bidir)) continue;
        if (cli_opt_str(&a, "--mode", &mode_s)) continue;
        if (cli_opt_str(&a, "--cell", &cell_s)) continue;
        if (cli_opt_long(&a, "--threads", &threads, 1, LSTM_MAX_THREADS)) continue;
        if (cli_opt_long(&a, "--warmup", &warmup, 0, 1000000)) continue;
        if (cli_opt_long(&a, "--min-iters", &min_iters, 1, 1000000)) continue;
        if (cli_opt_long(&a, "--max-iters", &max_iters, 1, 100000000)) continue;
        if (cli_opt_double(&a, "--budget", &budget, 0.0, 1e6)) continue;
        if (cli_opt_double(&a, "--max-seconds", &max_seconds, 0.0, 1e6)) continue;
        if (cli_opt_long(&a, "--seed", &seed, 1, 0x7fffffffL)) continue;
        if (cli_opt_flag(&a, "--json", &json)) continue;
        if (cli_opt_flag(&a, "--repack", &repack)) continue;
        if (cli_opt_flag(&a, "--help", &help) || cli_opt_flag(&a, "-h", &help)) bench_help();
        cli_usage(&a, "unknown option '%s'", a.argv[a.i]);
    }
    if (!I) cli_usage(&a, "--input-size is required");
    if (!H) cli_usage(&a, "--hidden is required");
    int mode = -1;
    for (int m = 0; m < 3; m++)
        if (strcmp(mode_s, mode_names[m]) == 0) mode = m;
    if (mode < 0) cli_usage(&a, "--mode: expected forward, train or step, got '%s'", mode_s);
    if (max_iters < min_iters)
        cli_usage(&a, "--max-iters %ld is below --min-iters %ld", max_iters, min_iters);
    /* sizes the engine cannot take (T*B rows are int) or this machine cannot hold: said at once,
     * before arrays of that size are made and filled (the kernel's OOM killer said nothing) */
    if (mode != MODE_STEP && (double)T * (double)B > (double)INT_MAX)
        cli_usage(&a, "--seq %ld x --batch %ld = %.0f rows: at most %d", T, B, (double)T * (double)B, INT_MAX);
    int gru = strcmp(cell_s, "gru") == 0;
    if (!gru && strcmp(cell_s, "lstm") != 0) cli_usage(&a, "--cell: expected lstm or gru, got '%s'", cell_s);
    if (proj && gru) cli_usage(&a, "--proj: a GRU has no projection");
    if (proj && proj >= H) cli_usage(&a, "--proj: expected 0 < P < H (%ld), got %ld", H, proj);
    if (bidir && mode == MODE_STEP) cli_usage(&a, "--mode step: a bidirectional network cannot run step by step");
    if (repack && mode == MODE_STEP) cli_usage(&a, "--repack: only for --mode forward or train (step packs as it must)");

    double rss_base = current_rss_mb();
    lstm_config cfg = {(int)I, (int)H, (int)L, (int)proj, 1, bidir, gru ? LSTM_CELL_GRU : LSTM_CELL_LSTM};
    size_t n_params = 0;
    lstm_status s = lstm_net_size(&cfg, &n_params);
    if (s != LSTM_OK) cli_fail_status(s);
    {   /* parameters and gradients, the inputs and outputs (twice with their gradients), and the
         * workspace: a train one keeps about A·H + 2H + 2·D·Hout floats a row and layer, an inference
         * one two layers' outputs and one layer's activations (a lower bound: it is refused only
         * when even that is more than the machine has).  Checked before the net is made: a
         * refused net's untouched parameters were still there at exit, where LeakSanitizer's
         * scan of them brought in every page (an ASan build was killed for memory after the
         * message). */
        /* (step mode's workspace holds one step, its x and y the whole sequence) */
        const double A = 4 /* act columns a unit, LSTM and GRU */, rows = (double)(mode == MODE_STEP ? 1 : T) * (double)B;
        const double D = bidir ? 2 : 1, Hout = proj ? (double)proj : (double)H;
        const double io = (double)T * (double)B * ((double)I + D * Hout) * (mode == MODE_TRAIN ? 2 : 1);
        const double ws = mode == MODE_TRAIN ? (double)L * D * rows * (A * H + 2.0 * H + 2.0 * D * Hout)
                                             : D * rows * (A * H + 2.0 * D * Hout);
        const double need = 4.0 * (2.0 * (double)n_params + io + ws);
        const long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
        const double have = pages > 0 && psz > 0 ? (double)pages * (double)psz : 0.0;
        if (have > 0.0 && need > have)
            cli_fail("bench: this shape needs at least %.1f GB of memory; this machine has %.1f GB", need / 1e9,
                     have / 1e9);
    }
    lstm_net net;
    s = lstm_net_init(&net, &cfg);
    if (s != LSTM_OK) cli_fail_status(s);
    lstm_net_init_uniform(&net, (uint64_t)seed);

    bench_ctx c = {0};
    c.mode = mode;
    c.T = (int)T;
    c.B = (int)B;
    c.net = &net;
    c.I = (int)I;
    c.Hout = net.Hout;
    uint64_t rs = (uint64_t)seed * 0x9E3779B97F4A7C15ULL + 1;
    size_t nx = (size_t)T * B * I, ny = (size_t)T * B * net.D * net.Hout;
    float *x = alloc_or_die(nx), *y = alloc_or_die(ny), *dy = NULL, *dx = NULL;
    fill_uniform(x, nx, &rs);
    c.x = x;
    c.y = y;
    if (mode == MODE_TRAIN) {
        dy = alloc_or_die(ny);
        dx = alloc_or_die(nx);
        fill_uniform(dy, ny, &rs);
        c.dy = dy;
        c.dx = dx;
    }
    s = lstm_workspace_init(&c.ws, &net, mode == MODE_STEP ? 1 : (int)T, (int)B,
                            (mode == MODE_TRAIN ? LSTM_WS_TRAIN : 0) | (mode != MODE_STEP && !repack ? LSTM_WS_KEEP_PACKS : 0));
    if (s != LSTM_OK) cli_fail_status(s);
    s = lstm_workspace_set_threads(c.ws, (int)threads);
    if (s != LSTM_OK) cli_fail_status(s);
    if (mode == MODE_STEP) {
        s = lstm_state_init(&c.st, &net, (int)B);
        if (s != LSTM_OK) cli_fail_status(s);
    }

    /* warm-up; one that alone exceeds --max-seconds becomes the measurement */
    double *times = malloc((size_t)max_iters * sizeof(double));
    if (!times) cli_fail("bench: out of memory");
    long n = 0, warm_done = 0;
    for (long w = 0; w < warmup; w++) {
        double t0 = now_s();
        run_once(&c);
        double dt = now_s() - t0;
        warm_done++;
        if (dt >= max_seconds) {
            if (warm_done == 1) {
                times[n++] = dt;
                warm_done = 0;
            }
            break;
        }
    }
    if (n == 0) {
        double start = now_s();
        for (;;) {
            double t0 = now_s();
            run_once(&c);
            double t1 = now_s();
            times[n++] = t1 - t0;
            double el = t1 - start;
            if (n >= max_iters) break;
            if (n >= min_iters && el >= budget) break;
            if (el + (t1 - t0) > max_seconds) break; /* the next one would pass the cap */
        }
    }
    qsort(times, (size_t)n, sizeof(double), cmp_double);
    double med = n % 2 ? times[n / 2] : 0.5 * (times[n / 2 - 1] + times[n / 2]);

    double flop = 0.0;
    for (int l = 0; l < L; l++) {
        double in = l == 0 ? (double)I : (double)net.D * net.Hout;
        double rec = (double)net.G * H * (in + net.Hout) + (proj ? (double)net.Hout * H : 0.0);
        flop += 2.0 * (double)T * B * net.D * rec;
    }
    if (mode == MODE_TRAIN) flop *= 3.0;
    double ms = med * 1e3, gflops = flop / med * 1e-9;
    double us_step = mode == MODE_STEP ? med * 1e6 / (double)T : 0.0;

    double checksum = 0.0; /* keeps the outputs observable; also a sanity signal */
    for (size_t i = 0; i < ny; i++) checksum += y[i];
    if (dx)
        for (size_t i = 0; i < nx; i++) checksum += dx[i];
    if (!isfinite(checksum)) cli_fail("bench: non-finite outputs");
    double rss = peak_rss_mb();

    if (json) {
        printf("{\"impl\": \"lstm\", \"cell\": \"%s\", \"input_size\": %ld, \"hidden\": %ld, \"layers\": %ld, "
               "\"batch\": %ld, \"seq\": %ld, \"bidirectional\": %s, \"proj\": %ld, "
               "\"mode\": \"%s\", \"threads\": %ld, "
               "\"threads_applied\": true, \"ms\": %.6g, \"gflops\": %.6g",
               cell_s, I, H, L, B, T, bidir ? "true" : "false", proj, mode_names[mode], threads, ms,
               gflops);
        if (mode == MODE_STEP) printf(", \"us_per_step\": %.6g", us_step);
        if (mode != MODE_STEP) printf(", \"packs\": \"%s\"", repack ? "every iteration" : "kept");
        printf(", \"iters\": %ld, \"warmup\": %ld, \"ms_min\": %.6g, \"ms_max\": %.6g, "
               "\"peak_rss_mb\": %.1f, \"base_rss_mb\": %.1f, \"checksum\": %.6g}\n",
               n, warm_done, times[0] * 1e3, times[n - 1] * 1e3, rss, rss_base, checksum);
    } else {
        printf("bench %s %s: I=%ld H=%ld L=%ld B=%ld T=%ld%s", cell_s, mode_names[mode], I, H, L, B, T,
               bidir ? " bidirectional" : "");
        if (proj) printf(" P=%ld", proj);
        printf(" threads=%ld%s\n", threads, mode != MODE_STEP ? repack ? " (packs every iteration)" : " (packs kept)" : "");
        printf("  %.3f ms per iteration (median of %ld after %ld warm-up; min %.3f, max %.3f)\n", ms,
               n, warm_done, times[0] * 1e3, times[n - 1] * 1e3);
        printf("  %.2f GFLOP/s", gflops);
        if (mode == MODE_STEP) printf(", %.3f us per step", us_step);
        printf(", peak RSS %.1f MB\n", rss);
    }

    free(times);
    lstm_state_free(&c.st);
    lstm_workspace_free(c.ws);
    free(x);
    free(y);
    free(dy);
    free(dx);
    lstm_net_free(&net);
    return 0;
}
