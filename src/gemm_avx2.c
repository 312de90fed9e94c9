/* gemm_avx2.c — the AVX2+FMA micro-kernel (see gemm_impl.h): a tile of
 * 6 x 16 floats kept in 12 ymm accumulators; per k one fused multiply-add per
 * accumulator (broadcast a[k][i] times the 16 b values of row k). */
#include "gemm_impl.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define TGT __attribute__((target("avx2,fma")))
#define MR 6
#define NV 2 /* ymm vectors per row: nr = 8 * NV */

static inline TGT __attribute__((always_inline)) __m256i lane_mask(int r) {
    __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(r), idx); /* lane j on when j < r */
}

static inline TGT __attribute__((always_inline)) void
tile(const int mr, int kc, const float *a, const float *b, ptrdiff_t rsb, float *c,
     ptrdiff_t ldc, int n, int load_c) {
    __m256 acc[MR][NV];
    __m256i mk[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++) mk[v] = lane_mask(n - 8 * v);
    int full = n >= 8 * NV;
#pragma GCC unroll 16
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++)
            acc[i][v] = !load_c ? _mm256_setzero_ps()
                        : full  ? _mm256_loadu_ps(c + i * ldc + 8 * v)
                                : _mm256_maskload_ps(c + i * ldc + 8 * v, mk[v]);
    for (int k = 0; k < kc; k++) {
        __m256 bv[NV];
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) bv[v] = _mm256_loadu_ps(b + 8 * v);
#pragma GCC unroll 16
        for (int i = 0; i < mr; i++) {
            __m256 ai = _mm256_broadcast_ss(a + i);
#pragma GCC unroll 4
            for (int v = 0; v < NV; v++) acc[i][v] = _mm256_fmadd_ps(ai, bv[v], acc[i][v]);
        }
        a += MR;
        b += rsb;
    }
#pragma GCC unroll 16
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) {
            if (full) _mm256_storeu_ps(c + i * ldc + 8 * v, acc[i][v]);
            else _mm256_maskstore_ps(c + i * ldc + 8 * v, mk[v], acc[i][v]);
        }
}

static TGT void kern(int kc, const float *a, const float *b, ptrdiff_t rsb, float *c,
                     ptrdiff_t ldc, int m, int n, int load_c) {
    switch (m) {
    case 1: tile(1, kc, a, b, rsb, c, ldc, n, load_c); break;
    case 2: tile(2, kc, a, b, rsb, c, ldc, n, load_c); break;
    case 3: tile(3, kc, a, b, rsb, c, ldc, n, load_c); break;
    case 4: tile(4, kc, a, b, rsb, c, ldc, n, load_c); break;
    case 5: tile(5, kc, a, b, rsb, c, ldc, n, load_c); break;
    default: tile(MR, kc, a, b, rsb, c, ldc, n, load_c); break;
    }
}

const lstm__gemm_kdesc lstm__gemm_kd_avx2 = {"avx2", MR, 8 * NV, kern};
#else
const lstm__gemm_kdesc lstm__gemm_kd_avx2 = {"avx2", 0, 0, 0};
#endif
