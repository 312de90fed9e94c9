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
tile(const int mr, const int np, int kc, const float *a, ptrdiff_t rsa, ptrdiff_t csa, const float *b,
     ptrdiff_t rsb, ptrdiff_t pstride, float *c, ptrdiff_t ldc, int n, int load_c, const float *bias) {
    __m256 acc[MR][4 * NV];
    __m256i mk[4 * NV];
#pragma GCC unroll 8
    for (int v = 0; v < np * NV; v++) mk[v] = lane_mask(n - 8 * v);
    int full = n >= 8 * NV * np;
#pragma GCC unroll 16
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 8
        for (int v = 0; v < np * NV; v++)
            acc[i][v] = bias    ? (full ? _mm256_loadu_ps(bias + 8 * v) : _mm256_maskload_ps(bias + 8 * v, mk[v]))
                        : load_c != 1 ? _mm256_setzero_ps()
                        : full    ? _mm256_loadu_ps(c + i * ldc + 8 * v)
                                  : _mm256_maskload_ps(c + i * ldc + 8 * v, mk[v]);
    for (int k = 0; k < kc; k++) {
        __m256 bv[4 * NV];
#pragma GCC unroll 8
        for (int v = 0; v < np * NV; v++) bv[v] = _mm256_loadu_ps(b + (v / NV) * pstride + 8 * (v % NV));
#pragma GCC unroll 16
        for (int i = 0; i < mr; i++) {
            __m256 ai = _mm256_broadcast_ss(a + i * rsa);
#pragma GCC unroll 8
            for (int v = 0; v < np * NV; v++) acc[i][v] = _mm256_fmadd_ps(ai, bv[v], acc[i][v]);
        }
        a += csa;
        b += rsb;
    }
#pragma GCC unroll 16
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 8
        for (int v = 0; v < np * NV; v++) {
            if (load_c == 2)
                acc[i][v] = _mm256_add_ps(full ? _mm256_loadu_ps(c + i * ldc + 8 * v) : _mm256_maskload_ps(c + i * ldc + 8 * v, mk[v]),
                                          acc[i][v]);
            if (full) _mm256_storeu_ps(c + i * ldc + 8 * v, acc[i][v]);
            else _mm256_maskstore_ps(c + i * ldc + 8 * v, mk[v], acc[i][v]);
        }
}

static TGT void kern(int kc, const float *a, ptrdiff_t rsa, ptrdiff_t csa, const float *b, ptrdiff_t rsb,
                     ptrdiff_t pstride, float *c, ptrdiff_t ldc, int m, int n, int load_c, const float *bias) {
    const int nr = 8 * NV, np = (n + nr - 1) / nr;
    /* Tiles of 1..WIDE_M rows span up to 4 panels: 4*NV*m independent sums. */
#define WIDE(r, p) if (m == r && np == p) { tile(r, p, kc, a, rsa, csa, b, rsb, pstride, c, ldc, n, load_c, bias); return; }
    WIDE(1, 2) WIDE(1, 3) WIDE(1, 4) WIDE(2, 2)
#undef WIDE
    if (m == 2 && np > 2) { /* 16 ymm registers: two panels at a time */
        tile(2, 2, kc, a, rsa, csa, b, rsb, pstride, c, ldc, 2 * nr, load_c, bias);
        b += 2 * pstride, c += 2 * nr, n -= 2 * nr;
        if (bias) bias += 2 * nr;
        if (n > nr) tile(2, 2, kc, a, rsa, csa, b, rsb, pstride, c, ldc, n, load_c, bias);
        else tile(2, 1, kc, a, rsa, csa, b, rsb, pstride, c, ldc, n, load_c, bias);
        return;
    }
    switch (m) {
    case 1: tile(1, 1, kc, a, rsa, csa, b, rsb, pstride, c, ldc, n, load_c, bias); break;
    case 2: tile(2, 1, kc, a, rsa, csa, b, rsb, pstride, c, ldc, n, load_c, bias); break;
    case 3: tile(3, 1, kc, a, rsa, csa, b, rsb, pstride, c, ldc, n, load_c, bias); break;
    case 4: tile(4, 1, kc, a, rsa, csa, b, rsb, pstride, c, ldc, n, load_c, bias); break;
    case 5: tile(5, 1, kc, a, rsa, csa, b, rsb, pstride, c, ldc, n, load_c, bias); break;
    default: tile(MR, 1, kc, a, rsa, csa, b, rsb, pstride, c, ldc, n, load_c, bias); break;
    }
}

/* In-register transpose of 8 rows of 8 floats: r[k] becomes column k. */
static inline TGT __attribute__((always_inline)) void tr8x8(__m256 r[8]) {
    __m256 t[8], u[8];
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int h = 0; h < 8; h += 4) {
        u[h + 0] = _mm256_shuffle_ps(t[h], t[h + 2], 0x44);
        u[h + 1] = _mm256_shuffle_ps(t[h], t[h + 2], 0xEE);
        u[h + 2] = _mm256_shuffle_ps(t[h + 1], t[h + 3], 0x44);
        u[h + 3] = _mm256_shuffle_ps(t[h + 1], t[h + 3], 0xEE);
    }
    for (int i = 0; i < 4; i++) {
        r[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
        r[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
    }
}

TGT void lstm__pack_t8_avx2(float *d, ptrdiff_t ds, const float *s, ptrdiff_t ss, int rows,
                            int w, int kc) {
    int k = 0;
    __m256i wm = lane_mask(w);
    for (; k + 8 <= kc; k += 8) {
        __m256 r[8];
        for (int i = 0; i < 8; i++)
            r[i] = i < rows ? _mm256_loadu_ps(s + i * ss + k) : _mm256_setzero_ps();
        tr8x8(r);
        if (w == 8)
            for (int j = 0; j < 8; j++) _mm256_storeu_ps(d + (k + j) * ds, r[j]);
        else
            for (int j = 0; j < 8; j++) _mm256_maskstore_ps(d + (k + j) * ds, wm, r[j]);
    }
    for (; k < kc; k++)
        for (int i = 0; i < w; i++) d[k * ds + i] = i < rows ? s[i * ss + k] : 0.0f;
}

const lstm__gemm_kdesc lstm__gemm_kd_avx2 = {"avx2", MR, 8 * NV, 2, 1, kern, lstm__pack_t8_avx2};
#else
const lstm__gemm_kdesc lstm__gemm_kd_avx2 = {"avx2", 0, 0, 0, 0, 0, 0};
#endif
