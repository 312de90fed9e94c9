/* test_gemm.c — every GEMM variant and kernel against the reference loops:
 * accuracy vs a double-precision sum, exact bits vs an order-matched oracle
 * (generic = the _ref loops, avx2/avx512 = one fmaf per k), repeatability,
 * prepacked B, padding outside C left untouched, and 1 vs 2 threads. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "test.h"

enum { NT, NN, TN };
static const char *op_name[] = {"nt", "nn", "tn"};

typedef struct {
    int M, N, K;
} shape;

static const shape shapes[] = {
    {1, 1, 1},    {1, 1, 7},     {2, 3, 1},     {7, 13, 29},  {3, 5, 1},    {1, 17, 33},
    {5, 16, 16},  {6, 32, 8},    {8, 31, 17},   {9, 33, 40},  {13, 47, 65}, {2, 33, 257},
    {1, 2048, 64}, {1, 100, 300}, {100, 1, 50}, {17, 2, 600}, {13, 600, 7}, {385, 70, 300},
    {64, 96, 513}, {16, 64, 64},  {25, 40, 1024}, {2, 70, 9},   {2, 50, 3},   {1, 64, 5},   {0, 5, 5},     {5, 0, 5},    {5, 5, 0},    {1, 1, 0},
};

static uint64_t rng = 0x1234567ull;
static float frand(void) { return lstm__rng_uniform(&rng) * 2.0f - 1.0f; }

/* Element (m,k) of A and (k,n) of B for op, given the leading dimensions. */
static float a_at(int op, const float *A, int lda, int m, int k) {
    return op == TN ? A[(size_t)k * lda + m] : A[(size_t)m * lda + k];
}
static float b_at(int op, const float *B, int ldb, int k, int n) {
    return op == NT ? B[(size_t)n * ldb + k] : B[(size_t)k * ldb + n];
}

static void call(int op, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                 float *C, int ldc, float beta) {
    if (op == NT) lstm_gemm_nt(M, N, K, A, lda, B, ldb, C, ldc, beta);
    else if (op == NN) lstm_gemm_nn(M, N, K, A, lda, B, ldb, C, ldc, beta);
    else lstm_gemm_tn(M, N, K, A, lda, B, ldb, C, ldc, beta);
}
static void call_ref(int op, int M, int N, int K, const float *A, int lda, const float *B,
                     int ldb, float *C, int ldc, float beta) {
    if (op == NT) lstm_gemm_nt_ref(M, N, K, A, lda, B, ldb, C, ldc, beta);
    else if (op == NN) lstm_gemm_nn_ref(M, N, K, A, lda, B, ldb, C, ldc, beta);
    else lstm_gemm_tn_ref(M, N, K, A, lda, B, ldb, C, ldc, beta);
}
static void call_mt(lstm__team *t, int op, int M, int N, int K, const float *A, int lda,
                    const float *B, int ldb, float *C, int ldc, float beta) {
    if (op == NT) lstm_gemm_nt_mt(t, M, N, K, A, lda, B, ldb, C, ldc, beta);
    else if (op == NN) lstm_gemm_nn_mt(t, M, N, K, A, lda, B, ldb, C, ldc, beta);
    else lstm_gemm_tn_mt(t, M, N, K, A, lda, B, ldb, C, ldc, beta);
}

/* The kernel's own summation order: acc = beta ? C : 0, then one step per k. */
static void oracle(int kernel, int op, int M, int N, int K, const float *A, int lda,
                   const float *B, int ldb, float *C, int ldc, float beta) {
    if (kernel == LSTM_GEMM_REF || kernel == LSTM_GEMM_GENERIC) {
        call_ref(op, M, N, K, A, lda, B, ldb, C, ldc, beta);
        return;
    }
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            float acc = beta != 0.0f ? C[(size_t)m * ldc + n] : 0.0f;
            for (int k = 0; k < K; k++)
                acc = fmaf(a_at(op, A, lda, m, k), b_at(op, B, ldb, k, n), acc);
            C[(size_t)m * ldc + n] = acc;
        }
}

/* Max over C of |C - exact| / (|C0| + sum_k |a b|), exact in double. */
static double rel_err(int op, int M, int N, int K, const float *A, int lda, const float *B,
                      int ldb, const float *C0, const float *C, int ldc, float beta) {
    double worst = 0;
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            double s = beta != 0.0f ? C0[(size_t)m * ldc + n] : 0.0, scale = fabs(s);
            for (int k = 0; k < K; k++) {
                double p = (double)a_at(op, A, lda, m, k) * b_at(op, B, ldb, k, n);
                s += p;
                scale += fabs(p);
            }
            double e = fabs(C[(size_t)m * ldc + n] - s) / (scale > 0 ? scale : 1.0);
            if (!(e <= worst)) worst = e; /* NaN counts as worst */
        }
    return worst;
}

static float *rand_buf(size_t n) {
    float *p = malloc((n ? n : 1) * sizeof *p);
    for (size_t i = 0; i < n; i++) p[i] = frand();
    return p;
}

/* All ops and shapes for the current kernel.  Returns the max relative error. */
static double test_kernel(int kernel, lstm__team *team) {
    double worst = 0;
    const char *kn = lstm_gemm_kernel_name(kernel);
    for (int op = 0; op < 3; op++)
        for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
            for (int bi = 0; bi < 2; bi++)
                for (int pad = 0; pad < 2; pad++) {
                    int M = shapes[s].M, N = shapes[s].N, K = shapes[s].K;
                    float beta = (float)bi;
                    /* Row lengths of A, B as stored, plus padding when pad. */
                    int arow = op == TN ? M : K, brow = op == NT ? K : N;
                    int arows = op == TN ? K : M, brows = op == NT ? N : K;
                    int lda = arow + 3 * pad, ldb = brow + 5 * pad, ldc = N + 2 * pad;
                    if (lda < 1) lda = 1;
                    if (ldb < 1) ldb = 1;
                    if (ldc < 1) ldc = 1;
                    size_t na = (size_t)arows * lda, nb = (size_t)brows * ldb;
                    size_t nc = (size_t)M * ldc;
                    float *A = rand_buf(na), *B = rand_buf(nb), *C0 = rand_buf(nc);
                    float *C = malloc((nc ? nc : 1) * sizeof *C);
                    float *C2 = malloc((nc ? nc : 1) * sizeof *C);
                    float *Co = malloc((nc ? nc : 1) * sizeof *C);
                    /* beta = 0 must ignore C: fill it with NaN (padding keeps C0's values). */
                    for (size_t i = 0; i < nc; i++) C[i] = C0[i];
                    if (!bi)
                        for (int m = 0; m < M; m++)
                            for (int n = 0; n < N; n++) C[(size_t)m * ldc + n] = NAN;
                    memcpy(C2, C, nc * sizeof *C);
                    memcpy(Co, C, nc * sizeof *C);
                    call(op, M, N, K, A, lda, B, ldb, C, ldc, beta);
                    double e = rel_err(op, M, N, K, A, lda, B, ldb, C0, C, ldc, beta);
                    if (!(e <= worst)) worst = e;
                    CHECK(e < 1e-5, "%s %s %dx%dx%d beta=%d pad=%d: rel err %.3g", kn,
                          op_name[op], M, N, K, bi, pad, e);
                    /* Exact bits vs the order-matched oracle; padding untouched. */
                    oracle(kernel, op, M, N, K, A, lda, B, ldb, Co, ldc, beta);
                    CHECK(!memcmp(C, Co, nc * sizeof *C),
                          "%s %s %dx%dx%d beta=%d pad=%d: not bit-identical to its oracle", kn,
                          op_name[op], M, N, K, bi, pad);
                    int pad_ok = 1;
                    for (int m = 0; m < M; m++)
                        for (int n = N; n < ldc; n++)
                            pad_ok &= C[(size_t)m * ldc + n] == C0[(size_t)m * ldc + n];
                    CHECK(pad_ok, "%s %s %dx%dx%d: wrote outside C", kn, op_name[op], M, N, K);
                    /* Repeated call (and the multi-threaded one) gives the same bits. */
                    if (team) call_mt(team, op, M, N, K, A, lda, B, ldb, C2, ldc, beta);
                    else call(op, M, N, K, A, lda, B, ldb, C2, ldc, beta);
                    CHECK(!memcmp(C, C2, nc * sizeof *C),
                          "%s %s %dx%dx%d beta=%d: %s call not bit-identical", kn, op_name[op], M,
                          N, K, bi, team ? "2-thread" : "repeated");
                    /* Prepacked B (nt and nn) gives the same bits as the plain call. */
                    if (op != TN) {
                        float *P = malloc(lstm_gemm_packed_size(N, K) * sizeof *P);
                        if (op == NT) lstm_gemm_pack_nt(P, N, K, B, ldb);
                        else lstm_gemm_pack_nn(P, N, K, B, ldb);
                        memcpy(C2, C0, nc * sizeof *C);
                        if (!bi)
                            for (int m = 0; m < M; m++)
                                for (int n = 0; n < N; n++) C2[(size_t)m * ldc + n] = NAN;
                        if (team) lstm_gemm_packed_mt(team, M, N, K, A, lda, P, C2, ldc, beta);
                        else lstm_gemm_packed(M, N, K, A, lda, P, C2, ldc, beta);
                        CHECK(!memcmp(C, C2, nc * sizeof *C),
                              "%s packed %s %dx%dx%d beta=%d: not bit-identical to the plain call",
                              kn, op_name[op], M, N, K, bi);
                        free(P);
                    }
                    free(A), free(B), free(C0), free(C), free(C2), free(Co);
                }
    return worst;
}

/* One large shape per op (the LSTM's step and projection sizes), beta = 1. */
static double test_large(int kernel, int op, int M, int N, int K) {
    int arows = op == TN ? K : M, arow = op == TN ? M : K;
    int brows = op == NT ? N : K, brow = op == NT ? K : N;
    float *A = rand_buf((size_t)arows * arow), *B = rand_buf((size_t)brows * brow);
    float *C0 = rand_buf((size_t)M * N), *C = malloc((size_t)M * N * sizeof *C);
    float *Co = malloc((size_t)M * N * sizeof *C);
    memcpy(C, C0, (size_t)M * N * sizeof *C);
    memcpy(Co, C0, (size_t)M * N * sizeof *C);
    call(op, M, N, K, A, arow, B, brow, C, N, 1.0f);
    oracle(kernel, op, M, N, K, A, arow, B, brow, Co, N, 1.0f);
    double e = rel_err(op, M, N, K, A, arow, B, brow, C0, C, N, 1.0f);
    CHECK_V(e < 1e-5 && !memcmp(C, Co, (size_t)M * N * sizeof *C),
            "%-7s %s %dx%dx%d: max rel err %.3g, bit-identical to oracle: %s",
            lstm_gemm_kernel_name(kernel), op_name[op], M, N, K, e,
            memcmp(C, Co, (size_t)M * N * sizeof *C) ? "no" : "yes");
    free(A), free(B), free(C0), free(C), free(Co);
    return e;
}

static void count_fn(void *arg, int tid, int n) {
    int *hits = arg;
    __atomic_add_fetch(&hits[tid], n, __ATOMIC_RELAXED);
}

static void task_fn(void *arg, int task, int ntasks) {
    int *hits = arg;
    if (task >= 0 && task < ntasks) __atomic_add_fetch(&hits[task], 1, __ATOMIC_RELAXED);
    else __atomic_add_fetch(&hits[64], 1, __ATOMIC_RELAXED); /* out of range */
}

/* The CPU description and the blocking rule (cpu.c). */
static void test_cpu(void) {
    const lstm__cpu_info *c = lstm__cpu();
    static const char *const vendors[] = {"other", "Intel", "AMD"};
    printf("cpu: %s family %d model 0x%x, L1d %ld KiB, L2 %ld KiB, L3 %ld KiB, avx2 %d, avx512 %d, "
           "512-bit FMA %s; GEMM blocking kc %d nc %d\n", vendors[c->vendor], c->family, c->model, c->l1d / 1024,
           c->l2 / 1024, c->l3 / 1024, c->avx2, c->avx512, c->fma512_full ? "full width" : "split or absent",
           c->gemm_kc, c->gemm_nc);
#if LSTM_X86 /* cpuid is read (not with make NO_X86_KERNELS=1) */
    CHECK_V(c->family > 0 && c->l1d >= 16384 && c->l2 >= 131072, "cpuid: family %d, L1d %ld, L2 %ld read", c->family,
            c->l1d, c->l2);
#endif
    static const long rule[][4] = {{48 << 10, 1 << 20, 256, 512},  /* Zen 5 */
                                   {32 << 10, 1 << 20, 256, 512},  /* Zen 4, Skylake-SP */
                                   {48 << 10, 2 << 20, 256, 512},  /* Sapphire Rapids (capped) */
                                   {32 << 10, 256 << 10, 256, 128}, /* Skylake client, Haswell */
                                   {32 << 10, 512 << 10, 256, 256}, /* Zen 2/3 */
                                   {16 << 10, 256 << 10, 128, 256},
                                   {0, 0, 256, 512},                 /* unknown: 32 KiB / 1 MiB */
                                   {32 << 10, 64 << 10, 256, 64}};   /* tiny L2: at least 64 */
    int ok = 1;
    for (size_t i = 0; i < sizeof rule / sizeof *rule; i++) {
        int kc, nc;
        lstm__cpu_blocking(rule[i][0], rule[i][1], &kc, &nc);
        if (kc != rule[i][2] || nc != rule[i][3]) {
            ok = 0;
            printf("blocking for L1d %ld, L2 %ld: kc %d nc %d, want %ld %ld\n", rule[i][0], rule[i][1], kc, nc,
                   rule[i][2], rule[i][3]);
        }
    }
    CHECK_V(ok, "blocking rule: %zu cache configurations give the documented kc, nc", sizeof rule / sizeof *rule);
    CHECK(c->gemm_kc >= 8 && c->gemm_kc <= 256 && c->gemm_nc >= 64 && c->gemm_nc <= 512 && c->gemm_nc % 64 == 0,
          "blocking in range");
}

/* Same bits for any blocking, with a transposed A read in place or packed, and the
 * bias-initialized product equals fill + beta 1. */
static void test_blocking_and_bias(int kernel, lstm__team *team) {
    static const int sh[][3] = {{1, 70, 300}, {9, 130, 37}, {37, 600, 520}, {200, 64, 9}, {5, 33, 0}};
    static const int blk[][2] = {{256, 512}, {64, 128}, {200, 64}, {8, 64}};
    const lstm__cpu_info *c = lstm__cpu();
    int kc0 = c->gemm_kc, nc0 = c->gemm_nc, ta0 = c->gemm_ta_direct, same = 1, bias_same = 1;
    for (size_t s = 0; s < sizeof sh / sizeof *sh; s++) {
        int M = sh[s][0], N = sh[s][1], K = sh[s][2];
        float *A = rand_buf((size_t)M * (K ? K : 1) + (size_t)K * M), *B = rand_buf((size_t)N * (K ? K : 1));
        float *bias = rand_buf((size_t)N), *C0 = rand_buf((size_t)M * N);
        float *C = malloc((size_t)M * N * sizeof *C), *R = malloc((size_t)M * N * sizeof *R);
        for (int op = 0; op < 3; op++)
            for (int ta = 0; ta < 2; ta++)
                for (size_t b = 0; b < sizeof blk / sizeof *blk; b++) {
                    lstm__cpu_set_gemm_ta_direct(ta);
                    lstm__cpu_set_gemm_blocking(blk[b][0], blk[b][1]);
                    memcpy(C, C0, (size_t)M * N * sizeof *C);
                    call_mt(team, op, M, N, K, A, op == TN ? M : K, B, op == NT ? K : N, C, N, 1.0f);
                    if (b == 0 && ta == 0) memcpy(R, C, (size_t)M * N * sizeof *C); /* the first run's bits */
                    else same &= memcmp(C, R, (size_t)M * N * sizeof *C) == 0;
                }
        for (size_t b = 0; b < sizeof blk / sizeof *blk; b++) { /* fill + nt beta 1 vs bias-initialized */
            lstm__cpu_set_gemm_blocking(blk[b][0], blk[b][1]);
            for (int m = 0; m < M; m++) memcpy(R + (size_t)m * N, bias, (size_t)N * sizeof *R);
            lstm_gemm_nt(M, N, K, A, K, B, K, R, N, 1.0f);
            lstm_gemm_nt_bias_mt(team, M, N, K, A, K, B, K, bias, C, N);
            bias_same &= memcmp(C, R, (size_t)M * N * sizeof *C) == 0;
        }
        free(A), free(B), free(bias), free(C0), free(C), free(R);
    }
    lstm__cpu_set_gemm_blocking(kc0, nc0);
    lstm__cpu_set_gemm_ta_direct(ta0);
    CHECK_V(same, "%-7s %s: nt/nn/tn give the same bits under 4 blockings (kc 8..256, nc 64..512), Aᵀ in place "
            "or packed",
            lstm_gemm_kernel_name(kernel), team ? "2 threads" : "1 thread ");
    CHECK_V(bias_same, "%-7s %s: bias-initialized nt == bias fill + nt beta 1, bit for bit (K = 0 too)",
            lstm_gemm_kernel_name(kernel), team ? "2 threads" : "1 thread ");
}

/* X·Wᵀ with X packed once into a buffer (lstm__gemm_nt_bias_apack_mt) gives the
 * bits of lstm_gemm_nt_bias_mt, with and without bias, under several blockings;
 * rows 4 KiB apart (lda 1024) make the AVX kernels pack A, so the buffer is used. */
static void test_apack(int kernel, lstm__team *team) {
    static const int sh[][4] = {{300, 1024, 1024, 1024}, {13, 200, 1000, 1024}, {37, 600, 520, 520},
                                {401, 1030, 300, 2048}, {1, 128, 1024, 1024}, {50, 100, 1024, 1024}};
    static const int blk[][2] = {{256, 512}, {64, 128}, {8, 64}};
    const lstm__cpu_info *c = lstm__cpu();
    int kc0 = c->gemm_kc, nc0 = c->gemm_nc, same = 1, used = 0, runs = 0;
    for (size_t s = 0; s < sizeof sh / sizeof *sh; s++) {
        int M = sh[s][0], N = sh[s][1], K = sh[s][2], lda = sh[s][3];
        float *A = rand_buf((size_t)M * lda), *B = rand_buf((size_t)N * K), *bias = rand_buf((size_t)N);
        float *C = malloc((size_t)M * N * sizeof *C), *R = malloc((size_t)M * N * sizeof *R);
        for (size_t b = 0; b < sizeof blk / sizeof *blk; b++) {
            lstm__cpu_set_gemm_blocking(blk[b][0], blk[b][1]);
            size_t n = lstm__gemm_apack_size(M, N, K, lda);
            float *P = malloc((n ? n : 1) * sizeof *P); /* exactly n: ASan sees an overrun */
            used += n > 0;
            for (int wb = 0; wb < 2; wb++, runs++) {
                const float *bb = wb ? bias : NULL;
                lstm_gemm_nt_bias_mt(team, M, N, K, A, lda, B, K, bb, R, N);
                for (size_t i = 0; i < (size_t)M * N; i++) C[i] = 1e30f; /* every element written */
                lstm__gemm_nt_bias_apack_mt(team, M, N, K, A, lda, B, K, bb, C, N, n ? P : NULL, n);
                same &= memcmp(C, R, (size_t)M * N * sizeof *C) == 0;
            }
            free(P);
        }
        free(A), free(B), free(bias), free(C), free(R);
    }
    lstm__cpu_set_gemm_blocking(kc0, nc0);
    CHECK_V(same, "%-7s %s: nt with A packed once == nt, bit for bit (%d products, %d of %d blockings x shapes "
            "used the buffer)", lstm_gemm_kernel_name(kernel), team ? "2 threads" : "1 thread ", runs, used,
            (int)(sizeof sh / sizeof *sh * sizeof blk / sizeof *blk));
}

/* The weight-gradient products (lstm__gemm_tn_acc_rows): C += Aᵀ·B summed in 256-row
 * blocks, each block's product (from 0) added to C (by the kernels' load_c 2 epilogue), and csum = the column sums of A in 64-row
 * blocks added in order: checked bit for bit against the same blocking done by hand
 * with plain lstm_gemm_tn calls and float adds; lstm__gemm_tn_acc_rows2 (two products,
 * blocks in turn) against two single calls.  K past 256 and not a multiple of 64, lda
 * past M (a column slice of A, as dG's runs are). */
static void test_tn_acc(int kernel, lstm__team *team) {
    static const int sh[][5] = {{64, 48, 1100, 80, 30}, {96, 33, 600, 96, 70}, {40, 130, 70, 64, 9}};
    int same_c = 1, same_s = 1, same_2 = 1;
    for (size_t s = 0; s < sizeof sh / sizeof *sh; s++) {
        const int M = sh[s][0], N = sh[s][1], K = sh[s][2], lda = sh[s][3], N2 = sh[s][4], K2 = K - 17;
        float *A = rand_buf((size_t)K * lda), *B = rand_buf((size_t)K * N), *B2 = rand_buf((size_t)K * N2);
        float *C0 = rand_buf((size_t)M * N), *D0 = rand_buf((size_t)M * N2);
        float *C = malloc((size_t)M * N * 4), *R = malloc((size_t)M * N * 4), *D = malloc((size_t)M * N2 * 4);
        float *E = malloc((size_t)M * N2 * 4), *t = malloc((size_t)M * (N > N2 ? N : N2) * 4);
        float *cs = malloc((size_t)M * 4), *cb = malloc((size_t)M * 4), *rs = calloc((size_t)M, 4), *blk = malloc((size_t)M * 4);
        /* by hand */
        memcpy(R, C0, (size_t)M * N * 4);
        for (int k0 = 0; k0 < K; k0 += 256) {
            int kb = K - k0 < 256 ? K - k0 : 256;
            lstm_gemm_tn(M, N, kb, A + (size_t)k0 * lda, lda, B + (size_t)k0 * N, N, t, N, 0.0f);
            for (size_t i = 0; i < (size_t)M * N; i++) R[i] += t[i];
        }
        for (int r0 = 0; r0 < K; r0 += 64) {
            for (int m = 0; m < M; m++) blk[m] = A[(size_t)r0 * lda + m];
            for (int r = r0 + 1; r < K && r < r0 + 64; r++)
                for (int m = 0; m < M; m++) blk[m] += A[(size_t)r * lda + m];
            for (int m = 0; m < M; m++) rs[m] += blk[m];
        }
        memcpy(C, C0, (size_t)M * N * 4);
        lstm__gemm_tn_acc_rows(team, M, N, K, A, lda, B, N, C, N, t, cs, cb);
        same_c &= memcmp(C, R, (size_t)M * N * 4) == 0;
        same_s &= memcmp(cs, rs, (size_t)M * 4) == 0;
        /* the pair: the second product over rows 17.. of A (as dW_hh's are shifted) */
        memcpy(E, D0, (size_t)M * N2 * 4);
        lstm__gemm_tn_acc_rows(team, M, N2, K2, A + (size_t)17 * lda, lda, B2, N2, E, N2, t, NULL, NULL);
        memcpy(C, C0, (size_t)M * N * 4);
        memcpy(D, D0, (size_t)M * N2 * 4);
        lstm__tn_prod p1 = {N, K, A, lda, B, N, C, N}, p2 = {N2, K2, A + (size_t)17 * lda, lda, B2, N2, D, N2};
        lstm__gemm_tn_acc_rows2(team, M, &p1, &p2, t, cs, cb);
        same_2 &= memcmp(C, R, (size_t)M * N * 4) == 0 && memcmp(D, E, (size_t)M * N2 * 4) == 0 &&
                  memcmp(cs, rs, (size_t)M * 4) == 0;
        free(A), free(B), free(B2), free(C0), free(D0), free(C), free(R), free(D), free(E), free(t);
        free(cs), free(cb), free(rs), free(blk);
    }
    const char *kn = lstm_gemm_kernel_name(kernel), *tn = team ? "2 threads" : "1 thread ";
    CHECK_V(same_c, "%-7s %s: tn_acc_rows == 256-row blocks by hand, bit for bit", kn, tn);
    CHECK_V(same_s, "%-7s %s: tn_acc_rows's column sums == 64-row blocks by hand, bit for bit", kn, tn);
    CHECK_V(same_2, "%-7s %s: tn_acc_rows2 == two tn_acc_rows calls, bit for bit", kn, tn);
}

int main(void) {
    test_cpu();
    /* The team itself: every thread runs once per run, many runs in a row. */
    lstm__team *team = lstm__team_create(2);
    CHECK(team != NULL && lstm__team_size(team) == 2, "lstm__team_create(2)");
    int hits[65] = {0};
    for (int r = 0; r < 1000; r++) lstm__team_run(team, count_fn, hits);
    CHECK_V(hits[0] == 2000 && hits[1] == 2000, "team of 2: 1000 runs, per-thread hits %d %d",
            hits[0], hits[1]);
    /* Tasks: each of 0..ntasks-1 exactly once per run, for teams of 1, 2 and 3. */
    for (int nth = 1; nth <= 3; nth++) {
        lstm__team *t = nth == 2 ? team : lstm__team_create(nth);
        int th[65] = {0}, ok = 1, runs = 0;
        for (int nt = 1; nt <= 64; nt += 9)
            for (int r = 0; r < 100; r++, runs++) lstm__team_run_tasks(t, nt, task_fn, th);
        for (int i = 0; i < 64; i++) { /* task i exists in runs with nt > i */
            int want = 0;
            for (int nt = 1; nt <= 64; nt += 9) want += nt > i ? 100 : 0;
            ok &= th[i] == want;
        }
        CHECK_V(ok && th[64] == 0, "team of %d: %d runs of 1..64 tasks, each task once per run",
                nth, runs);
        if (t != team) lstm__team_free(t);
    }
    lstm__team_run_tasks(NULL, 3, task_fn, hits); /* NULL team: on the caller */
    CHECK(hits[0] == 2001 && hits[1] == 2001 && hits[2] == 1, "NULL team runs every task");

    int initial = lstm_gemm_kernel();
    CHECK(lstm_gemm_kernel_available(initial), "default kernel %s available",
          lstm_gemm_kernel_name(initial));
    CHECK(lstm_gemm_set_kernel(LSTM_GEMM_NKERNELS) == -1, "unknown kernel refused");
    for (int k = 0; k < LSTM_GEMM_NKERNELS; k++) {
        if (!lstm_gemm_kernel_available(k)) {
            printf("note: kernel %s not available on this CPU\n", lstm_gemm_kernel_name(k));
            continue;
        }
        CHECK(lstm_gemm_set_kernel(k) == 0 && lstm_gemm_kernel() == k, "set kernel %s",
              lstm_gemm_kernel_name(k));
        double e1 = test_kernel(k, NULL);
        double e2 = test_kernel(k, team);
        CHECK_V(e1 < 1e-5 && e2 < 1e-5, "%-7s all shapes, nt/nn/tn, beta 0/1, 1 and 2 threads: "
                "max rel err %.3g", lstm_gemm_kernel_name(k), e1 > e2 ? e1 : e2);
        test_blocking_and_bias(k, NULL);
        test_blocking_and_bias(k, team);
        if (k != LSTM_GEMM_REF) { /* (the naive kernel reads A in place: nothing to pack) */
            test_apack(k, NULL);
            test_apack(k, team);
        } else
            CHECK(lstm__gemm_apack_size(300, 1024, 1024, 1024) == 0, "ref: no packed A (apack size 0)");
        test_tn_acc(k, NULL);
        test_tn_acc(k, team);
        if (k == LSTM_GEMM_REF) continue;
        test_large(k, NT, 64, 2048, 512);
        test_large(k, NN, 64, 512, 1024);
        test_large(k, TN, 256, 256, 640);
    }
    lstm_gemm_set_kernel(initial);
    lstm__team_free(team);
    return TEST_REPORT();
}
