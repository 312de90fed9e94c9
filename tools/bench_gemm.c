/* bench_gemm.c — GFLOP/s of the GEMM kernels on the LSTM's shapes (not a test).
 *   make bench-gemm && build/bench_gemm [T] [B] [I] [H] [samples]
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

int main(int argc, char **argv) {
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
