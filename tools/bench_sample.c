/* bench_sample.c — µs per greedy byte of a char model, in one process (not a test).
 *   make bench-sample && build/bench_sample M.safetensors [threads...] [--block N] [--blocks N] [--no-stream]
 * Times, interleaved block by block (so every side sees the same minutes of a
 * shared machine): "stream", the per-byte loop `main` ran before the sampler
 * (lstm_stream on the byte's embedding row, the packed head, the argmax) on one
 * thread, and the sampler (lstm_charlm_sampler_generate, temperature 0) on each
 * thread count given (default 1 2; -N: N threads with plain per-layer steps instead
 * of the early-sums one, lstm__sampler_set_plain).  --no-stream leaves the stream
 * loop out.  Prints the fastest and the median block of --blocks (400) blocks of
 * --block (20) bytes, in µs per byte. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "../src/train/train_internal.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: bench_sample M.safetensors [threads...] [--block N] [--blocks N] [--no-stream]\n"
                        "  (a thread count -N: a sampler of N threads with plain steps, no early sums)\n");
        return 2;
    }
    int nth = 0, th[8], blk = 20, nblk = 400, no_stream = 0;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--no-stream")) no_stream = 1;
        else if (!strcmp(argv[i], "--block") && i + 1 < argc) blk = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--blocks") && i + 1 < argc) nblk = atoi(argv[++i]);
        else if (nth < 8) th[nth++] = atoi(argv[i]);
    }
    if (!nth) th[nth++] = 1, th[nth++] = 2;
    if (blk < 1 || nblk < 1) return 2;
    lstm_charlm m;
    if (lstm_charlm_load(&m, argv[1])) {
        fprintf(stderr, "bench_sample: %s\n", lstm_last_error());
        return 1;
    }
    const int V = m.V, E = m.E, Hout = m.net.Hout;
    /* the stream loop */
    lstm_workspace *ws;
    lstm_state st;
    float *y = malloc((size_t)Hout * sizeof(float)), *lg = malloc((size_t)V * sizeof(float));
    float *hp = aligned_alloc(64, (lstm_gemm_packed_size(V, Hout) + 15) / 16 * 16 * sizeof(float));
    if (lstm_workspace_init(&ws, &m.net, 1, 1, 0) || lstm_state_init(&st, &m.net, 1) || !y || !lg || !hp) {
        fprintf(stderr, "bench_sample: %s\n", lstm_last_error());
        return 1;
    }
    lstm_gemm_pack_nt(hp, V, Hout, m.head_w, Hout);
    int id = m.id['T'] < 0 ? 0 : m.id['T']; /* the prime: one byte */
    /* the samplers */
    lstm_charlm_sampler *s[8];
    unsigned char *out = malloc((size_t)blk);
    for (int k = 0; k < nth; k++) { /* a thread count -N: N threads, plain steps (no early sums) */
        if (lstm_charlm_sampler_init(&s[k], &m, th[k] < 0 ? -th[k] : th[k])) {
            fprintf(stderr, "bench_sample: %s\n", lstm_last_error());
            return 1;
        }
        lstm__sampler_set_plain(s[k], th[k] < 0);
        if (lstm_charlm_sampler_feed(s[k], &m.vocab[id], 1)) {
            fprintf(stderr, "bench_sample: %s\n", lstm_last_error());
            return 1;
        }
    }
    double *t = malloc((size_t)(nth + 1) * nblk * sizeof(double));
    for (int r = 0; r < nblk; r++) {
        double t0 = now();
        for (int b = 0; b < blk && !no_stream; b++) {
            lstm_stream(&m.net, ws, &st, 1, m.emb + (size_t)id * E, y);
            memcpy(lg, m.head_b, (size_t)V * sizeof(float));
            lstm_gemm_packed(1, V, Hout, y, Hout, hp, lg, V, 1.0f);
            id = 0;
            for (int v = 1; v < V; v++)
                if (lg[v] > lg[id]) id = v;
        }
        t[r] = (now() - t0) / blk * 1e6;
        for (int k = 0; k < nth; k++) {
            t0 = now();
            if (lstm_charlm_sampler_generate(s[k], out, (size_t)blk, 0.0, 0)) {
                fprintf(stderr, "bench_sample: %s\n", lstm_last_error());
                return 1;
            }
            t[(size_t)(k + 1) * nblk + r] = (now() - t0) / blk * 1e6;
        }
    }
    printf("%s: V %d, E %d, H %d, L %d; fastest / median of %d blocks of %d bytes, µs per byte\n", argv[1], V, E,
           m.net.H, m.net.cfg.num_layers, nblk, blk);
    for (int k = 0; k <= nth; k++) {
        double *tk = t + (size_t)k * nblk;
        qsort(tk, (size_t)nblk, sizeof(double), cmp);
        if (k == 0 && !no_stream) printf("  stream loop, threads 1: %.2f / %.2f\n", tk[0], tk[nblk / 2]);
        else if (k > 0)
            printf("  sampler, threads %-3d%s:   %.2f / %.2f\n", th[k - 1] < 0 ? -th[k - 1] : th[k - 1],
                   th[k - 1] < 0 ? " (plain steps)" : "", tk[0], tk[nblk / 2]);
    }
    for (int k = 0; k < nth; k++) lstm_charlm_sampler_free(s[k]);
    lstm_workspace_free(ws);
    lstm_state_free(&st);
    lstm_charlm_free(&m);
    free(y); free(lg); free(hp); free(out); free(t);
    return 0;
}
