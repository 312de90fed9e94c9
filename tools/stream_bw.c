/* stream_bw.c — how fast one core reads a buffer it streams over and over: the
 * bound of a kernel that reads all its weights once per step (the batch-1 step,
 * stream-256, sampling) when they live in L1, L2 or L3.  Not a test.
 *   cc -O2 -pthread tools/stream_bw.c -o build/stream_bw && build/stream_bw [BYTES...] [-t THREADS] [-z CHUNK]
 * For each size (default 32 KiB .. 8 MiB) each of THREADS threads (default 1)
 * runs 16 independent chains of 512-bit load + FMA over its own buffer of that
 * many bytes, 100 passes per sample, and prints the best of 30 samples: ns a
 * pass and GB/s per thread.  With 16 accumulators the FMAs keep up with two
 * loads a cycle, so the figure is the load path's.  -z CHUNK: each pass reads
 * the buffer in chunks of CHUNK bytes, every other pass in reverse chunk order
 * (each chunk front to back), the back-and-forth order of the batch-1 step's
 * unit groups: past L2, what a pass read last is what the next reads first. */
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

typedef struct {
    size_t bytes, chunk; /* chunk: -z (0: a plain cyclic pass) */
    double best; /* seconds a pass */
    float sink;
} job;

__attribute__((target("avx512f,fma"))) static void *run(void *arg) {
    job *j = arg;
    size_t n = j->bytes / 4 / 256 * 256;
    j->best = 1e9;
    float *a = aligned_alloc(64, (n ? n : 256) * sizeof *a);
    if (!a) return NULL;
    for (size_t i = 0; i < n; i++) a[i] = 1e-6f * (float)(i % 7);
    __m512 acc[16], x = _mm512_set1_ps(1.0001f);
    for (int q = 0; q < 16; q++) acc[q] = _mm512_setzero_ps();
    for (int s = 0; s < 30; s++) {
        double t0 = now();
        for (int p = 0; p < 100; p++) {
            /* -z: chunks of c floats, every other pass in reverse order (each front to back) */
            const size_t c = j->chunk ? j->chunk / 4 / 256 * 256 : n, nc = c ? (n + c - 1) / c : 0;
            for (size_t k = 0; k < nc; k++) {
                const size_t c0 = ((p & 1) && j->chunk ? nc - 1 - k : k) * c, c1 = c0 + c < n ? c0 + c : n;
                for (size_t i = c0; i < c1; i += 256)
#pragma GCC unroll 16
                    for (int q = 0; q < 16; q++) acc[q] = _mm512_fmadd_ps(x, _mm512_load_ps(a + i + 16 * q), acc[q]);
            }
        }
        double t = (now() - t0) / 100;
        if (t < j->best) j->best = t;
    }
    float s = 0;
    for (int q = 0; q < 16; q++) s += _mm512_reduce_add_ps(acc[q]);
    j->sink = s;
    free(a);
    return NULL;
}

int main(int argc, char **argv) {
    size_t sizes[64];
    int ns = 0, nt = 1;
    size_t chunk = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-t") && i + 1 < argc) nt = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-z") && i + 1 < argc) chunk = (size_t)atol(argv[++i]);
    if (chunk && chunk < 1024) chunk = 1024; /* (a chunk is whole 1 KB rounds of the 16 chains) */
        else if (ns < 64 && atol(argv[i]) > 0) sizes[ns++] = (size_t)atol(argv[i]);
    }
    if (nt < 1 || nt > 64) nt = 1;
    if (!ns)
        for (size_t b = 32 << 10; b <= (8u << 20); b *= 2) sizes[ns++] = b;
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512f")) {
        fprintf(stderr, "stream_bw: needs AVX-512F\n");
        return 1;
    }
    for (int s = 0; s < ns; s++) {
        job jobs[64];
        pthread_t th[64];
        for (int t = 0; t < nt; t++) {
            jobs[t].bytes = sizes[s], jobs[t].chunk = chunk;
            if (pthread_create(&th[t], NULL, run, &jobs[t])) return 1;
        }
        double worst = 0;
        for (int t = 0; t < nt; t++) {
            pthread_join(th[t], NULL);
            if (jobs[t].best > worst) worst = jobs[t].best;
        }
        size_t b = sizes[s] / 4 / 256 * 256 * 4;
        printf("%9zu bytes x %d thread%s%s: %9.1f ns a pass, %6.1f GB/s a thread\n", b, nt, nt > 1 ? "s" : "",
               chunk ? ", zigzag" : "", worst * 1e9, (double)b / worst / 1e9);
    }
    return 0;
}
