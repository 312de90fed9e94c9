/* gemm_impl.h — the interface between the GEMM driver (gemm.c) and its
 * micro-kernels (gemm.c's portable one, gemm_avx2.c, gemm_avx512.c).
 *
 * A micro-kernel computes one tile C[m, n] (m <= mr, n <= nr, or n <= 4*nr when
 * m <= wide_m) over kc steps:
 *   acc = bias ? bias[j] : load_c == 1 ? C : 0;  for k in 0..kc-1: acc += a[k][i] * b[k][j];
 *   C = load_c == 2 ? C + acc : acc
 * one accumulator per element, k strictly in order (the SIMD kernels use a
 * fused multiply-add per step, the portable one a separate multiply and add).
 *   a: A micro-panel, a[k][i] at a[k*csa + i*rsa]: packed (csa = mr, rsa = 1;
 *      rows i >= m are zero padding), or, for kernels with direct_a, read in
 *      place from a row-major A (csa = 1, rsa = lda; rows i >= m never read)
 *   b: B micro-panels: column q*nr + j at b[q*pstride + k*rsb + j], j < nr (always
 *      nr readable floats per k and panel; columns >= n may be padding, not stored)
 *   c: C + row*ldc + col;  bias: NULL, or the tile's n column values (every row starts from them).
 * Because of this every C element is the same sum whatever the blocking, the
 * tile position, M, N or the thread partition: results depend only on the
 * kernel choice. */
#ifndef LSTM_GEMM_IMPL_H
#define LSTM_GEMM_IMPL_H

#include <stddef.h>

typedef void (*lstm__ukernel)(int kc, const float *a, ptrdiff_t rsa, ptrdiff_t csa, const float *b,
                              ptrdiff_t rsb, ptrdiff_t pstride, float *c, ptrdiff_t ldc, int m, int n,
                              int load_c, const float *bias);

/* Transposing copy used for packing: d[k*ds + i] = s[i*ss + k] for i < rows,
 * k < kc, and d[k*ds + i] = 0 for rows <= i < w.  rows <= w <= 8, w <= ds. */
typedef void (*lstm__pack_t8)(float *d, ptrdiff_t ds, const float *s, ptrdiff_t ss, int rows,
                              int w, int kc);

typedef struct {
    const char *name;
    int mr, nr;          /* tile: mr <= 16, nr <= 64, nr a multiple of 16 */
    int wide_m;          /* tiles of m <= wide_m rows may span 4 panels (more ILP) */
    int direct_a;        /* reads rows m..mr-1 of a never: a row-major A needs no packing */
    lstm__ukernel kern;
    lstm__pack_t8 pack_t8; /* NULL: portable loops */
} lstm__gemm_kdesc;

void lstm__pack_t8_avx2(float *d, ptrdiff_t ds, const float *s, ptrdiff_t ss, int rows, int w, int kc);

extern const lstm__gemm_kdesc lstm__gemm_kd_avx2;
extern const lstm__gemm_kdesc lstm__gemm_kd_avx512;

#endif
