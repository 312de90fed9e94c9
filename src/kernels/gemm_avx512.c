/* gemm_avx512.c — the AVX-512 micro-kernel (see gemm_impl.h): a tile of
 * MR x 32 floats kept in 2*MR zmm accumulators; per k one fused multiply-add
 * per accumulator (broadcast a[k][i] times the 32 b values of row k). */
#include "gemm_impl.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define TGT __attribute__((target("avx512f,avx512vl,fma")))
#ifndef MR
#define MR 8
#endif
#ifndef NV
#define NV 2 /* zmm vectors per row: nr = 16 * NV */
#endif

static inline TGT __attribute__((always_inline)) void
tile(const int mr, const int np, int kc, const float *a, ptrdiff_t rsa, ptrdiff_t csa, const float *b,
     ptrdiff_t rsb, ptrdiff_t pstride, float *c, ptrdiff_t ldc, int n, int load_c, const float *bias) {
    __m512 acc[MR][4 * NV];
    __mmask16 mk[4 * NV];
#pragma GCC unroll 8
    for (int v = 0; v < np * NV; v++) {
        int r = n - 16 * v;
        mk[v] = r >= 16 ? (__mmask16)0xffff : r <= 0 ? (__mmask16)0 : (__mmask16)((1u << r) - 1);
    }
#pragma GCC unroll 16
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 8
        for (int v = 0; v < np * NV; v++)
            acc[i][v] = bias     ? _mm512_maskz_loadu_ps(mk[v], bias + 16 * v)
                        : load_c ? _mm512_maskz_loadu_ps(mk[v], c + i * ldc + 16 * v)
                                 : _mm512_setzero_ps();
    for (int k = 0; k < kc; k++) {
        __m512 bv[4 * NV];
#pragma GCC unroll 8
        for (int v = 0; v < np * NV; v++) bv[v] = _mm512_loadu_ps(b + (v / NV) * pstride + 16 * (v % NV));
#pragma GCC unroll 16
        for (int i = 0; i < mr; i++) {
            __m512 ai = _mm512_set1_ps(a[i * rsa]);
#pragma GCC unroll 8
            for (int v = 0; v < np * NV; v++) acc[i][v] = _mm512_fmadd_ps(ai, bv[v], acc[i][v]);
        }
        a += csa;
        b += rsb;
    }
#pragma GCC unroll 16
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 8
        for (int v = 0; v < np * NV; v++) _mm512_mask_storeu_ps(c + i * ldc + 16 * v, mk[v], acc[i][v]);
}

static TGT void kern(int kc, const float *a, ptrdiff_t rsa, ptrdiff_t csa, const float *b, ptrdiff_t rsb,
                     ptrdiff_t pstride, float *c, ptrdiff_t ldc, int m, int n, int load_c, const float *bias) {
    const int nr = 16 * NV, np = (n + nr - 1) / nr;
    /* Tiles of 1..WIDE_M rows span up to 4 panels: 4*NV*m independent sums. */
#define WIDE(r, p) if (m == r && np == p) { tile(r, p, kc, a, rsa, csa, b, rsb, pstride, c, ldc, n, load_c, bias); return; }
    WIDE(1, 2) WIDE(1, 3) WIDE(1, 4) WIDE(2, 2) WIDE(2, 3) WIDE(2, 4)
#undef WIDE
    /* One instantiation per row count, so that the accumulators stay in registers. */
#define ROWS(r) if (r < MR && m == r) { tile(r < MR ? r : MR, 1, kc, a, rsa, csa, b, rsb, pstride, c, ldc, n, load_c, bias); return; }
    ROWS(1) ROWS(2) ROWS(3) ROWS(4) ROWS(5) ROWS(6) ROWS(7) ROWS(8)
    ROWS(9) ROWS(10) ROWS(11) ROWS(12) ROWS(13) ROWS(14) ROWS(15)
#undef ROWS
    tile(MR, 1, kc, a, rsa, csa, b, rsb, pstride, c, ldc, n, load_c, bias);
}

const lstm__gemm_kdesc lstm__gemm_kd_avx512 = {"avx512", MR, 16 * NV, 2, 1, kern, lstm__pack_t8_avx2};
#else
const lstm__gemm_kdesc lstm__gemm_kd_avx512 = {"avx512", 0, 0, 0, 0, 0, 0};
#endif
