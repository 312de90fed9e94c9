/* gemm.c — TEMPORARY naive matrix products; replaced by the gemm branch. */
#include "internal.h"

void lstm_gemm_nt_ref(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                      float *C, int ldc, float beta) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            float s = 0.0f;
            for (int k = 0; k < K; k++) s += A[(size_t)i * lda + k] * B[(size_t)j * ldb + k];
            C[(size_t)i * ldc + j] = (beta != 0.0f ? C[(size_t)i * ldc + j] : 0.0f) + s;
        }
}
void lstm_gemm_nn_ref(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                      float *C, int ldc, float beta) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            float s = 0.0f;
            for (int k = 0; k < K; k++) s += A[(size_t)i * lda + k] * B[(size_t)k * ldb + j];
            C[(size_t)i * ldc + j] = (beta != 0.0f ? C[(size_t)i * ldc + j] : 0.0f) + s;
        }
}
void lstm_gemm_tn_ref(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                      float *C, int ldc, float beta) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            float s = 0.0f;
            for (int k = 0; k < K; k++) s += A[(size_t)k * lda + i] * B[(size_t)k * ldb + j];
            C[(size_t)i * ldc + j] = (beta != 0.0f ? C[(size_t)i * ldc + j] : 0.0f) + s;
        }
}
void lstm_gemm_nt(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C, int ldc, float beta) { lstm_gemm_nt_ref(M, N, K, A, lda, B, ldb, C, ldc, beta); }
void lstm_gemm_nn(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C, int ldc, float beta) { lstm_gemm_nn_ref(M, N, K, A, lda, B, ldb, C, ldc, beta); }
void lstm_gemm_tn(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C, int ldc, float beta) { lstm_gemm_tn_ref(M, N, K, A, lda, B, ldb, C, ldc, beta); }
