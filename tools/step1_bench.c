/* step1_bench.c — the batch-1 step kernel (lstm__step1_avx512, step1_avx512.c) alone on
 * one thread, on groups [g0, g1) of a layer's pack, against a plain stream of the same
 * bytes (16 chains of 512-bit load + FMA, as tools/stream_bw.c): how close the step
 * comes to what the core can read from where its pack lives: the fastest single pass of each,
 * and the mean of N passes timed together (the figure to compare).  Not a test.
 *   cc -O2 -Iinclude -Isrc tools/step1_bench.c build/liblstm.a -lm -pthread -o build/step1_bench
 *   build/step1_bench [H [I [g0 g1 [steps]]]]   (defaults: 256 1 0 ng/2 20000; ng printed)
 * stream-256's two threads each run half the groups (g0 g1 = 0 2 of 4 at H = 256).  The
 * bytes count full blocks: where H mod 16 is 1..8 the LSTM packs its last block in half,
 * and the figures for a range that holds it are somewhat high. */
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "internal.h"

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

/* Fastest of reps passes over a[0..n) (n a multiple of 256), each timed alone; *mean: the mean
 * of reps more passes timed together, as the step's mean (one clock read a pass instead of two). */
__attribute__((target("avx512f,fma"))) static double stream_pass(const float *a, size_t n, int reps, double *mean) {
    __m512 acc[16], x = _mm512_set1_ps(1.0001f);
    for (int q = 0; q < 16; q++) acc[q] = _mm512_setzero_ps();
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = now_ns();
        for (size_t i = 0; i + 256 <= n; i += 256)
#pragma GCC unroll 16
            for (int q = 0; q < 16; q++) acc[q] = _mm512_fmadd_ps(x, _mm512_load_ps(a + i + 16 * q), acc[q]);
        double t = now_ns() - t0;
        if (t < best) best = t;
    }
    const double t0 = now_ns();
    for (int r = 0; r < reps; r++)
        for (size_t i = 0; i + 256 <= n; i += 256)
#pragma GCC unroll 16
            for (int q = 0; q < 16; q++) acc[q] = _mm512_fmadd_ps(x, _mm512_load_ps(a + i + 16 * q), acc[q]);
    *mean = (now_ns() - t0) / reps;
    float s = 0;
    for (int q = 0; q < 16; q++) s += _mm512_reduce_add_ps(acc[q]);
    if (s == 1234.5f) puts(""); /* (keeps the sums) */
    return best;
}

int main(int argc, char **argv) {
    if (!__builtin_cpu_supports("avx512f")) {
        fprintf(stderr, "step1_bench: needs AVX-512F\n");
        return 1;
    }
    const int H = argc > 1 ? atoi(argv[1]) : 256, I = argc > 2 ? atoi(argv[2]) : 1;
    if (H < 1 || H > 4096 || I < 0 || I > 4096) {
        fprintf(stderr, "step1_bench: H in 1..4096, I in 0..4096\n");
        return 2;
    }
    const int ng = lstm__step1_groups(H, I, H);
    if (argc == 4) {
        fprintf(stderr, "step1_bench: give g0 and g1 both\n");
        return 2;
    }
    const int g0 = argc > 4 ? atoi(argv[3]) : 0, g1 = argc > 4 ? atoi(argv[4]) : ng / 2 > 0 ? ng / 2 : 1;
    const int N = argc > 5 ? atoi(argv[5]) : 20000;
    if (g0 < 0 || g1 > ng || g0 >= g1 || N < 1) {
        fprintf(stderr, "step1_bench: groups [g0, g1) within [0, %d), steps >= 1\n", ng);
        return 2;
    }
    const size_t ps = lstm__step1_pack_size(H, I, H);
    float *P = aligned_alloc(64, (ps + 255) / 256 * 256 * sizeof(float));
    float *wih = malloc((size_t)4 * H * (I ? I : 1) * sizeof(float)), *whh = malloc((size_t)4 * H * H * sizeof(float));
    float *act = aligned_alloc(64, (size_t)(4 * H + 15) / 16 * 64), *bs = calloc((size_t)4 * H, sizeof(float));
    float *h[2] = {aligned_alloc(64, (size_t)(H + 15) / 16 * 64), aligned_alloc(64, (size_t)(H + 15) / 16 * 64)};
    float *c[2] = {aligned_alloc(64, (size_t)(H + 15) / 16 * 64), aligned_alloc(64, (size_t)(H + 15) / 16 * 64)};
    float *x = calloc((size_t)(I ? I : 1), sizeof(float));
    if (!P || !wih || !whh || !act || !bs || !h[0] || !h[1] || !c[0] || !c[1] || !x) return 1;
    srand(1);
    for (long i = 0; i < 4L * H * I; i++) wih[i] = ((float)rand() / (float)RAND_MAX - 0.5f) * 0.1f;
    for (long i = 0; i < 4L * H * H; i++) whh[i] = ((float)rand() / (float)RAND_MAX - 0.5f) * 0.1f;
    for (int i = 0; i < H; i++) h[0][i] = h[1][i] = c[0][i] = c[1][i] = 0.1f;
    lstm__step1_pack(P, H, I, H, wih, whh);
    /* the groups' bytes: blocks [b0, b1) of 16 units, 64·(I + H) floats a block */
    const int nub = (H + 15) / 16, b0 = nub * g0 / ng, b1 = nub * g1 / ng;
    const size_t off = (size_t)b0 * 64 * (I + H), n = (size_t)(b1 - b0) * 64 * (I + H);
    for (int rep = 0; rep < 5; rep++) {
        double best = 1e30, sum = 0;
        for (int s = 0; s < N; s++) {
            const int o = s & 1;
            double t0 = now_ns();
            lstm__step1_avx512(H, I, H, g0, g1, o, P, act, I ? x : NULL, bs, h[o], c[o], c[!o], h[!o], NULL);
            double t = now_ns() - t0;
            if (t < best) best = t;
        }
        const double t0 = now_ns(); /* the mean: N more steps timed together */
        for (int s = 0; s < N; s++) {
            const int o = s & 1;
            lstm__step1_avx512(H, I, H, g0, g1, o, P, act, I ? x : NULL, bs, h[o], c[o], c[!o], h[!o], NULL);
        }
        sum = now_ns() - t0;
        double sm;
        const double sb = stream_pass(P + off, n / 256 * 256, N, &sm);
        printf("H %d, I %d, groups [%d, %d) of %d: %zu KB a step: the step fastest %.0f ns, mean %.0f ns "
               "(%.1f GB/s); a plain stream of those bytes fastest %.0f ns (%.1f GB/s), mean %.0f ns (%.1f GB/s)\n",
               H, I, g0, g1, ng, n * 4 >> 10, best, sum / N, (double)n * 4 / (sum / N), sb, (double)n * 4 / sb, sm,
               (double)n * 4 / sm);
    }
    return 0;
}
