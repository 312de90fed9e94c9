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
 * Build: cc -O2 -pthread tools/cpu_probe.c -o build/cpu_probe (bench/run.sh does).
 * With gcc 12 the 1-thread fma figure is the core's peak (210 GFLOP/s on Zen 5);
 * clang 14's build of the same loop reaches ~125, its ratios stay right. */
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

/* GFLOP/s of one thread: 20 independent FMA chains of SET's vector type (LANES
 * floats), 2 flops per lane per FMA; one definition for 512 and 256 bits. */
#define REP20(M, a)                                                                                             \
    M(a, 0) M(a, 1) M(a, 2) M(a, 3) M(a, 4) M(a, 5) M(a, 6) M(a, 7) M(a, 8) M(a, 9) M(a, 10) M(a, 11) M(a, 12)   \
    M(a, 13) M(a, 14) M(a, 15) M(a, 16) M(a, 17) M(a, 18) M(a, 19)
#define DECL(set, i) __typeof__(set(0.0f)) a##i = set(1.0f + (float)(i) * 1e-3f);
#define FMA(f, i) a##i = f(a##i, b, c);
#define SUM(x, i) s += a##i[0];
#define FMA_RATE(NAME, TARGET, SET, FMADD, LANES)                                                              \
    __attribute__((target(TARGET))) static double NAME(void) {                                                \
        REP20(DECL, SET)                                                                                      \
        const __typeof__(SET(0.0f)) b = SET(0.9999f), c = SET(1e-4f);                                         \
        double t0 = now();                                                                                    \
        for (long i = 0; i < ITERS; i++) { REP20(FMA, FMADD) }                                                \
        double dt = now() - t0;                                                                               \
        float s = 0;                                                                                          \
        REP20(SUM, x)                                                                                         \
        return s == 12345.0f ? 0 : ITERS * 20.0 * 2 * (LANES) / dt * 1e-9;                                    \
    }
FMA_RATE(fma512, "avx512f,fma", _mm512_set1_ps, _mm512_fmadd_ps, 16)
FMA_RATE(fma256, "avx2,fma", _mm256_set1_ps, _mm256_fmadd_ps, 8)

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
