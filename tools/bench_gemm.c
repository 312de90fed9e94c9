/* bench_gemm.c — GFLOP/s of the GEMM kernels on the LSTM's shapes (not a test).
 *   make bench-gemm && build/bench_gemm [T] [B] [I] [H] [samples]
 *   build/bench_gemm M N K KIND [threads] [samples]   one product as the engine calls it
 *   build/bench_gemm engine [threads] [samples]        the engine's products (table below)
 * KIND: ntb (C = bias + A·Bᵀ, the input projection), ntba (the same with A packed once, as the
 * engine calls it), nt, nn, tn (beta 1, one call),
 * nnrows (dX: lstm__gemm_nn_rows, the engine's own call), tnacc (weight
 * gradients: lstm__gemm_tn_acc_rows, K blocks of 256, each block's sum added to C).  These two modes report
 * the best of the samples: GFLOP/s from CPU time (1 thread) or wall time (more).
 * Env: BENCH_SAMPLE_MS (sample length, default 50), BENCH_LDC_PAD (ldc = N + pad),
 * BENCH_HUGE=1 (buffers madvise'd to huge pages): experiments on cache/TLB effects.
 * On a shared machine pin it (taskset -c 0) and interleave the builds compared.
 * Defaults: T=20 B=64 I=512 H=512, 7 samples; prints the median of the samples
 * (each sample repeats the call for at least ~20 ms).  When libopenblas can be
 * dlopen'ed its cblas_sgemm is timed on the same shapes for comparison
 * (OPENBLAS_NUM_THREADS=1 unless set).  BENCH_KERNELS=avx512,openblas limits the columns;
 * BENCH_STAT=best reports the fastest sample instead of the median. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

enum { NT, NN, TN, PK_NT, PK_NN };
static const char *op_name[] = {"nt", "nn", "tn", "nt packed", "nn packed"};

typedef void (*cblas_sgemm_fn)(int order, int ta, int tb, int M, int N, int K, float alpha,
                               const float *A, int lda, const float *B, int ldb, float beta,
                               float *C, int ldc);
static cblas_sgemm_fn blas;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct {
    const char *what;
    int op, M, N, K;
} bshape;

/* kernel < 0: OpenBLAS. */
static double bench(int kernel, lstm__team *team, const bshape *s, int samples) {
    int M = s->M, N = s->N, K = s->K, op = s->op;
    size_t na = (size_t)M * K, nb = (size_t)N * K, nc = (size_t)M * N;
    float *A = malloc(na * 4), *B = malloc(nb * 4), *C = malloc(nc * 4);
    float *P = NULL;
    for (size_t i = 0; i < na; i++) A[i] = (float)((i * 7) % 13) * 0.01f - 0.06f;
    for (size_t i = 0; i < nb; i++) B[i] = (float)((i * 5) % 11) * 0.01f - 0.05f;
    memset(C, 0, nc * 4);
    if (kernel >= 0) lstm_gemm_set_kernel(kernel);
    if (kernel >= 0 && (op == PK_NT || op == PK_NN)) {
        P = malloc(lstm_gemm_packed_size(N, K) * 4);
        if (op == PK_NT) lstm_gemm_pack_nt(P, N, K, B, K);
        else lstm_gemm_pack_nn(P, N, K, B, N);
    }
    int lda = op == TN ? M : K, ldb = (op == NT || op == PK_NT) ? K : N;
    double t_one = 0, res[64];
    for (int r = -1, reps = 1; r < samples; r++) {
        double t0 = now();
        for (int i = 0; i < reps; i++) {
            float beta = 1.0f; /* accumulate, as the LSTM's step does */
            if (kernel < 0) {
                int ta = op == TN ? 112 : 111, tb = (op == NT || op == PK_NT) ? 112 : 111;
                blas(101, ta, tb, M, N, K, 1.0f, A, lda, B, ldb, beta, C, N);
            } else if (P) {
                lstm_gemm_packed_mt(team, M, N, K, A, lda, P, C, N, beta);
            } else if (op == NT) {
                lstm_gemm_nt_mt(team, M, N, K, A, lda, B, ldb, C, N, beta);
            } else if (op == NN) {
                lstm_gemm_nn_mt(team, M, N, K, A, lda, B, ldb, C, N, beta);
            } else {
                lstm_gemm_tn_mt(team, M, N, K, A, lda, B, ldb, C, N, beta);
            }
        }
        double t = (now() - t0) / reps;
        if (r < 0) { /* warm-up: size the sample to ~20 ms */
            t_one = t;
            reps = (int)(0.02 / (t_one > 1e-9 ? t_one : 1e-9)) + 1;
            continue;
        }
        res[r] = t;
    }
    qsort(res, (size_t)samples, sizeof *res, cmp);
    free(A), free(B), free(C), free(P);
    /* BENCH_STAT=best: the fastest sample (the machine is shared) */
    const char *stat = getenv("BENCH_STAT");
    int pick = stat && !strcmp(stat, "best") ? 0 : samples / 2;
    return 2.0 * M * N * K / res[pick] * 1e-9;
}

/* ---------------------------------------------------------------- engine mode */

#include <sys/mman.h>

/* BENCH_HUGE=1: the buffers on transparent huge pages (madvise), to tell TLB effects apart */
static float *balloc(size_t n) {
    size_t bytes = (n * 4 + (2u << 20) - 1) / (2u << 20) * (2u << 20);
    float *p = aligned_alloc(2u << 20, bytes);
    const char *h = getenv("BENCH_HUGE");
    if (p && h && *h == '1') madvise(p, bytes, MADV_HUGEPAGE);
    if (p) memset(p, 0, bytes);
    return p;
}

static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef struct {
    int kind, M, N, K, lda, ldb, ldc;
    const float *A, *B, *bias;
    float *C, *tmp;
    size_t tmp_n;
} ejob;
enum { K_NTB, K_NT, K_NN, K_TN, K_NNROWS, K_TNACC, K_NTBA };
static const char *kind_name[] = {"ntb", "nt", "nn", "tn", "nnrows", "tnacc", "ntba"};

static void ejob_run(lstm__team *team, const ejob *j) {
    switch (j->kind) {
    case K_NTB: lstm_gemm_nt_bias_mt(team, j->M, j->N, j->K, j->A, j->lda, j->B, j->ldb, j->bias, j->C, j->ldc); break;
    case K_NT: lstm_gemm_nt_mt(team, j->M, j->N, j->K, j->A, j->lda, j->B, j->ldb, j->C, j->ldc, 1.0f); break;
    case K_NN: lstm_gemm_nn_mt(team, j->M, j->N, j->K, j->A, j->lda, j->B, j->ldb, j->C, j->ldc, 1.0f); break;
    case K_TN: lstm_gemm_tn_mt(team, j->M, j->N, j->K, j->A, j->lda, j->B, j->ldb, j->C, j->ldc, 1.0f); break;
    case K_NTBA: /* the engine's input product: X packed once into tmp (lstm__gemm_apack_size floats) */
        lstm__gemm_nt_bias_apack_mt(team, j->M, j->N, j->K, j->A, j->lda, j->B, j->ldb, j->bias, j->C, j->ldc, j->tmp,
                                    j->tmp_n);
        break;
    case K_NNROWS: lstm__gemm_nn_rows(team, j->M, j->N, j->K, j->A, j->lda, j->B, j->ldb, j->C, j->ldc, 0.0f); break;
    default: lstm__gemm_tn_acc_rows(team, j->M, j->N, j->K, j->A, j->lda, j->B, j->ldb, j->C, j->ldc, j->tmp, NULL, NULL); break;
    }
}

/* Best GFLOP/s over samples of >= ~50 ms: by CPU time with 1 thread, wall time otherwise. */
static double ebench(lstm__team *team, int kind, int M, int N, int K, int samples) {
    /* the engine's strides: nt/ntb A [M,K] B [N,K]; nn A [M,K] B [K,N]; tn A [K,M] B [K,N] */
    int tn = kind == K_TN || kind == K_TNACC;
    int pad = getenv("BENCH_LDC_PAD") ? atoi(getenv("BENCH_LDC_PAD")) : 0; /* experiments: ldc = N + pad */
    size_t na = (size_t)M * K, nb = (size_t)N * K, nc = (size_t)M * (N + pad);
    if (kind == K_NTBA && nc < lstm__gemm_apack_size(M, N, K, K)) nc = lstm__gemm_apack_size(M, N, K, K);
    float *A = balloc(na), *B = balloc(nb), *C = balloc(nc), *T = balloc(nc), *bias = balloc((size_t)N);
    for (size_t i = 0; i < na; i++) A[i] = (float)((i * 7) % 13) * 0.01f - 0.06f;
    for (size_t i = 0; i < nb; i++) B[i] = (float)((i * 5) % 11) * 0.01f - 0.05f;
    for (int i = 0; i < N; i++) bias[i] = 0.01f * (float)(i % 7);
    ejob j = {kind, M, N, K, tn ? M : K, (kind == K_NT || kind == K_NTB || kind == K_NTBA) ? K : N, N + pad, A, B, bias, C, T, nc};
    double best = 1e30, t_one = 0;
    for (int r = -1, reps = 1; r < samples; r++) {
        double w0 = now(), c0 = cpu_now();
        for (int i = 0; i < reps; i++) ejob_run(team, &j);
        double t = (lstm__team_size(team) > 1 ? now() - w0 : cpu_now() - c0) / reps;
        if (r < 0) {
            t_one = now() - w0;
            double ms = getenv("BENCH_SAMPLE_MS") ? atof(getenv("BENCH_SAMPLE_MS")) : 50;
            reps = (int)(ms * 1e-3 / (t_one > 1e-9 ? t_one : 1e-9)) + 1;
            continue;
        }
        if (t < best) best = t;
    }
    free(A), free(B), free(C), free(T), free(bias);
    return 2.0 * M * N * K / best * 1e-9;
}

static int kind_of(const char *s) {
    for (int k = 0; k < (int)(sizeof kind_name / sizeof *kind_name); k++)
        if (!strcmp(s, kind_name[k])) return k;
    return -1;
}

static int engine_main(int argc, char **argv) {
    static const struct {
        const char *what;
        int kind, M, N, K;
    } es[] = {
        {"fwd-512 ih+bias", K_NTB, 6400, 2048, 512},     {"fwd-1024 ih+bias", K_NTB, 3200, 4096, 1024},
        {"train-512 dX", K_NNROWS, 6400, 512, 2048},     {"train-512 dW_ih", K_TNACC, 2048, 512, 6400},
        {"train-512 dW_hh", K_TNACC, 2048, 512, 6336},   {"train-1024 dX", K_NNROWS, 3200, 1024, 4096},
        {"train-1024 dW_ih", K_TNACC, 4096, 1024, 3200}, {"charlm ih l0", K_NTB, 2048, 1024, 64},
        {"charlm ih l1", K_NTB, 2048, 1024, 256},        {"charlm dX l1", K_NNROWS, 2048, 256, 1024},
        {"charlm dX l0", K_NNROWS, 2048, 64, 1024},      {"charlm dW_ih l0", K_TNACC, 1024, 64, 2048},
        {"charlm dW l1", K_TNACC, 1024, 256, 2048},      {"charlm dW_hh", K_TNACC, 1024, 256, 2016},
        {"bwd step dh", K_NN, 64, 512, 2048},
    };
    int single = argc >= 5 && kind_of(argv[4]) >= 0;
    int ai = single ? 5 : 2;
    int threads = argc > ai ? atoi(argv[ai]) : 1, samples = argc > ai + 1 ? atoi(argv[ai + 1]) : 15;
    if (threads < 1) threads = 1;
    if (samples < 1) samples = 1;
    lstm__team *team = threads > 1 ? lstm__team_create(threads) : NULL;
    printf("kernel %s, %d thread(s), best of %d, GFLOP/s (%s time)\n", lstm_gemm_kernel_name(lstm_gemm_kernel()),
           threads, samples, threads > 1 ? "wall" : "CPU");
    if (single) {
        int M = atoi(argv[1]), N = atoi(argv[2]), K = atoi(argv[3]), kind = kind_of(argv[4]);
        printf("%-18s %-7s %6d %6d %6d  %7.1f\n", "", kind_name[kind], M, N, K, ebench(team, kind, M, N, K, samples));
    } else
        for (size_t i = 0; i < sizeof es / sizeof *es; i++) {
            printf("%-18s %-7s %6d %6d %6d  %7.1f\n", es[i].what, kind_name[es[i].kind], es[i].M, es[i].N, es[i].K,
                   ebench(team, es[i].kind, es[i].M, es[i].N, es[i].K, samples));
            fflush(stdout);
        }
    lstm__team_free(team);
    return 0;
}

int main(int argc, char **argv) {
    if ((argc >= 2 && !strcmp(argv[1], "engine")) || (argc >= 5 && kind_of(argv[4]) >= 0)) return engine_main(argc, argv);
    int T = argc > 1 ? atoi(argv[1]) : 20, Bt = argc > 2 ? atoi(argv[2]) : 64;
    int I = argc > 3 ? atoi(argv[3]) : 512, H = argc > 4 ? atoi(argv[4]) : 512;
    int samples = argc > 5 ? atoi(argv[5]) : 7;
    const char *only = getenv("BENCH_KERNELS"); /* e.g. "avx512,openblas" */
    if (samples < 1) samples = 1;
    if (samples > 64) samples = 64;
    setenv("OPENBLAS_NUM_THREADS", "1", 0); /* single-threaded comparison by default */
    void *h = dlopen("libopenblas.so.0", RTLD_NOW);
    if (h) blas = (cblas_sgemm_fn)dlsym(h, "cblas_sgemm");
    bshape sh[] = {
        {"fwd input projection", NT, T * Bt, 4 * H, I},
        {"fwd step", NT, Bt, 4 * H, H},
        {"fwd step", PK_NT, Bt, 4 * H, H},
        {"fwd step B=1", NT, 1, 4 * H, H},
        {"fwd step B=1", PK_NT, 1, 4 * H, H},
        {"fwd step B=8", PK_NT, 8, 4 * H, H},
        {"bwd step dh", NN, Bt, H, 4 * H},
        {"bwd step dh", PK_NN, Bt, H, 4 * H},
        {"bwd dW_ih", TN, 4 * H, I, T * Bt},
        {"bwd dX", NN, T * Bt, I, 4 * H},
    };
    int nsh = (int)(sizeof sh / sizeof *sh);
    const char *stat = getenv("BENCH_STAT");
    printf("T=%d B=%d I=%d H=%d, GFLOP/s, %s of %d; kernel default: %s\n", T, Bt, I, H,
           stat && !strcmp(stat, "best") ? "best" : "median", samples,
           lstm_gemm_kernel_name(lstm_gemm_kernel()));
    lstm__team *team2 = lstm__team_create(2);
    printf("%-22s %-10s %6s %6s %6s |", "shape", "op", "M", "N", "K");
    const char *cols[] = {"generic", "avx2", "avx512", "avx512x2", "openblas"};
    for (int c = 0; c < 5; c++) printf(" %9s", cols[c]);
    printf("\n");
    for (int i = 0; i < nsh; i++) {
        printf("%-22s %-10s %6d %6d %6d |", sh[i].what, op_name[sh[i].op], sh[i].M, sh[i].N,
               sh[i].K);
        fflush(stdout);
        for (int c = 0; c < 5; c++) {
            int kernel = c == 0 ? LSTM_GEMM_GENERIC : c == 1 ? LSTM_GEMM_AVX2
                         : c == 4 ? -1 : LSTM_GEMM_AVX512;
            int ok = (kernel < 0 ? blas != NULL && sh[i].op < PK_NT
                                 : lstm_gemm_kernel_available(kernel)) &&
                     (!only || strstr(only, cols[c]));
            if (!ok) { printf(" %9s", "-"); continue; }
            printf(" %9.1f", bench(kernel, c == 3 ? team2 : NULL, &sh[i], samples));
            fflush(stdout);
        }
        printf("\n");
    }
    lstm__team_free(team2);
    return 0;
}
