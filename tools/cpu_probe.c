/* cpu_probe.c — how much of the machine a benchmark run really had.
 *
 * A VM's vCPUs may be whole cores, SMT siblings or time slices of one core,
 * and that changes from run to run here; a 2-thread row measured on one core's
 * worth of compute says nothing about the engine.  This probe measures, on 1
 * thread and on N threads at once (N = the CPUs online, or argv[1]):
 *   fma    FMA throughput: 20 independent 512-bit (else 256-bit) FMA chains
 *          per thread, GFLOP/s summed over the threads;
 *   chain  a dependent 64-bit multiply-add chain per thread (latency-bound:
 *          SMT siblings each run at nearly full speed, time slices share one),
 *          billions of steps per second summed over the threads.
 * and prints one line, e.g.
 *   cpu_probe: fma 1t 209 GFLOP/s, 2t 418 (2.00x); chain 1t 0.75 G/s, 2t 1.50 (2.00x)
 * N-thread/1-thread ratios near N mean N cores; near 1, one core's worth.
 * Build: cc -O2 -pthread tools/cpu_probe.c -o build/cpu_probe (bench/run.sh does). */
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

enum { ITERS = 20000000 };
static int use512;

#define DECL(T, set, i) T a##i = set(1.0f + (float)(i) * 1e-3f);
#define FMA(f, i) a##i = f(a##i, b, c);
#define SUM(i) s += a##i[0];
#define EACH(M, ...)                                                                                                    \
    M(__VA_ARGS__, 0) M(__VA_ARGS__, 1) M(__VA_ARGS__, 2) M(__VA_ARGS__, 3) M(__VA_ARGS__, 4) M(__VA_ARGS__, 5)          \
    M(__VA_ARGS__, 6) M(__VA_ARGS__, 7) M(__VA_ARGS__, 8) M(__VA_ARGS__, 9) M(__VA_ARGS__, 10) M(__VA_ARGS__, 11)        \
    M(__VA_ARGS__, 12) M(__VA_ARGS__, 13) M(__VA_ARGS__, 14) M(__VA_ARGS__, 15) M(__VA_ARGS__, 16) M(__VA_ARGS__, 17)    \
    M(__VA_ARGS__, 18) M(__VA_ARGS__, 19)
#define DECL2(T, set, i) DECL(T, set, i)
#define FMA2(f, i) FMA(f, i)
#define SUM2(x, i) SUM(i)

/* GFLOP/s of one thread: 20 chains, 2 flops per lane per FMA */
__attribute__((target("avx512f,fma"))) static double fma512(void) {
    EACH(DECL2, __m512, _mm512_set1_ps)
    const __m512 b = _mm512_set1_ps(0.9999f), c = _mm512_set1_ps(1e-4f);
    double t0 = now();
    for (long i = 0; i < ITERS; i++) { EACH(FMA2, _mm512_fmadd_ps) }
    double dt = now() - t0;
    float s = 0;
    EACH(SUM2, x)
    return s == 12345.0f ? 0 : ITERS * 20.0 * 32 / dt * 1e-9;
}

__attribute__((target("avx2,fma"))) static double fma256(void) {
    EACH(DECL2, __m256, _mm256_set1_ps)
    const __m256 b = _mm256_set1_ps(0.9999f), c = _mm256_set1_ps(1e-4f);
    double t0 = now();
    for (long i = 0; i < ITERS; i++) { EACH(FMA2, _mm256_fmadd_ps) }
    double dt = now() - t0;
    float s = 0;
    EACH(SUM2, x)
    return s == 12345.0f ? 0 : ITERS * 20.0 * 16 / dt * 1e-9;
}

/* billions of steps per second of one dependent integer chain */
static double chain(void) {
    unsigned long x = 1;
    const long n = 200000000;
    double t0 = now();
    for (long i = 0; i < n; i++) {
        x = x * 2862933555777941757ul + 3037000493ul;
        __asm__ volatile("" : "+r"(x));
    }
    double dt = now() - t0;
    return x == 42 ? 0 : (double)n / dt * 1e-9;
}

typedef struct { int which; double r; } job;
static void *run(void *p) {
    job *j = p;
    j->r = j->which ? chain() : use512 ? fma512() : fma256();
    return NULL;
}

/* summed over n threads started together (the caller is one of them) */
static double together(int which, int n) {
    pthread_t th[256];
    job jobs[256];
    int started = 0;
    for (int i = 1; i < n; i++) {
        jobs[i].which = which;
        if (pthread_create(&th[i], NULL, run, &jobs[i]) != 0) break;
        started = i;
    }
    jobs[0].which = which;
    run(&jobs[0]);
    double sum = jobs[0].r;
    for (int i = 1; i <= started; i++) {
        pthread_join(th[i], NULL);
        sum += jobs[i].r;
    }
    return sum;
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1) n = 1;
    if (n > 256) n = 256;
    __builtin_cpu_init();
    use512 = __builtin_cpu_supports("avx512f");
    if (!use512 && !(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))) {
        double c1 = together(1, 1), cn = together(1, (int)n);
        printf("cpu_probe: no AVX2; chain 1t %.2f G/s, %ldt %.2f (%.2fx)\n", c1, n, cn, cn / c1);
        return 0;
    }
    double f1 = together(0, 1), fn = together(0, (int)n);
    double c1 = together(1, 1), cn = together(1, (int)n);
    printf("cpu_probe: fma%s 1t %.0f GFLOP/s, %ldt %.0f (%.2fx); chain 1t %.2f G/s, %ldt %.2f (%.2fx)\n",
           use512 ? "512" : "256", f1, n, fn, fn / f1, c1, n, cn, cn / c1);
    return 0;
}
