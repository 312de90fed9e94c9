/* internal.h — private helpers shared by the library's files. Not installed. */
#ifndef LSTM_INTERNAL_H
#define LSTM_INTERNAL_H

#include "lstm.h"

/* Records a one-line reason for the calling thread and returns s.
 * Used as: return lstm__fail(LSTM_ERR_SHAPE, "%s: tensor '%s': expected ..., got ...", ...); */
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
lstm_status lstm__fail(lstm_status s, const char *fmt, ...);

/* ---- matrix products (src/gemm.c); row-major, beta is 0 or 1 ----
 * lstm_gemm_nt: C[M,N] = beta*C + A[M,K] · B[N,K]ᵀ   (lda, ldb, ldc: row strides)
 * lstm_gemm_nn: C[M,N] = beta*C + A[M,K] · B[K,N]
 * lstm_gemm_tn: C[M,N] = beta*C + A[K,M]ᵀ · B[K,N]
 * The _ref versions are the naive triple loops, kept as the test oracle.
 * Results do not depend on any thread count: each C element is one sum in a fixed order. */
void lstm_gemm_nt(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                  float *C, int ldc, float beta);
void lstm_gemm_nn(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                  float *C, int ldc, float beta);
void lstm_gemm_tn(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                  float *C, int ldc, float beta);
void lstm_gemm_nt_ref(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                      float *C, int ldc, float beta);
void lstm_gemm_nn_ref(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                      float *C, int ldc, float beta);
void lstm_gemm_tn_ref(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                      float *C, int ldc, float beta);

/* ---- point-wise gate math (src/lstm_cell.c) ----
 * act [B,4H]: in: pre-activations (i,f,g,o); out: σ(i), σ(f), tanh(g), σ(o).
 * c_prev [B,H] (NULL = zeros) -> c [B,H], m [B, ldm] = σ(o)·tanh(c). */
void lstm__gates_forward(float *act, float *c, float *m, int ldm, const float *c_prev, int B, int H);
/* dm [B, ldm]: dL/dm.  dc [B,H]: in dL/dc from later steps, out dL/dc_prev.
 * act, c, c_prev (NULL = zeros) as saved by forward; writes dG [B,4H] = dL/d pre-activation. */
void lstm__gates_backward(float *dG, float *dc, const float *dm, int ldm, const float *act,
                          const float *c, const float *c_prev, int B, int H);
/* The scalar oracles and the AVX-512 versions behind the dispatch above. */
void lstm__gates_forward_ref(float *act, float *c, float *m, int ldm, const float *c_prev, int B, int H);
void lstm__gates_backward_ref(float *dG, float *dc, const float *dm, int ldm, const float *act,
                              const float *c, const float *c_prev, int B, int H);
void lstm__gates_forward_avx512(float *act, float *c, float *m, int ldm, const float *c_prev, int B, int H);
void lstm__gates_backward_avx512(float *dG, float *dc, const float *dm, int ldm, const float *act,
                                 const float *c, const float *c_prev, int B, int H);

/* ---- random numbers (src/lstm_net.c): xorshift64*, state must be nonzero ---- */
uint64_t lstm__rng_next(uint64_t *s);
float lstm__rng_uniform(uint64_t *s); /* [0, 1), 24 random bits */
#endif
