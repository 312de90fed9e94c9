/* gemm_avx512.c — the AVX-512 micro-kernel (see gemm_impl.h): a tile of
 * MR x 32 floats (MR = 12) kept in 2*MR zmm accumulators; per k one fused
 * multiply-add per accumulator (broadcast a[k][i] times the 32 b values of row k).
 * Full tiles run full_tile (inline assembly), edge tiles tile() (intrinsics).
 * MR = 12 rather than 8: 24 independent sums hide the FMA latency on every
 * AVX-512 core (2 x 512-bit FMA/cycle at latency 4 needs 8; Zen 4 and Intel
 * client cores, 1/cycle, need 4), and per k the 2 B loads and the loop
 * overhead are shared by 24 FMAs instead of 16.  Measured on Zen 5 with
 * tools/bench_gemm (M N K ntb, 1 thread): 6400x2048x512 from 157 to ~175
 * GFLOP/s; the kernel alone, B from L2, ~205 (at the FMA peak). */
#include "gemm_impl.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define TGT __attribute__((target("avx512f,avx512vl,fma")))
#ifndef MR
#define MR 12
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
            acc[i][v] = bias          ? _mm512_maskz_loadu_ps(mk[v], bias + 16 * v)
                        : load_c == 1 ? _mm512_maskz_loadu_ps(mk[v], c + i * ldc + 16 * v)
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
        for (int v = 0; v < np * NV; v++) {
            if (load_c == 2) acc[i][v] = _mm512_add_ps(_mm512_maskz_loadu_ps(mk[v], c + i * ldc + 16 * v), acc[i][v]);
            _mm512_mask_storeu_ps(c + i * ldc + 16 * v, mk[v], acc[i][v]);
        }
}

/* The full tile (MR rows, 32 columns: the hot path) in inline assembly, so
 * that the register use is fixed: 2*MR zmm accumulators (zmm0..), row k of B
 * in zmm28/29, a[k][i] broadcast into zmm30/31 in turn.  Row i of A is read
 * from four row pointers (rows 0-3, 4-7, 8-11, 12-15) at the offsets 0, rsa,
 * 2*rsa, 3*rsa (x86 addressing), so nothing is spilled: per k 2 loads of B,
 * MR broadcasts, 2*MR FMAs and 6 pointer updates.  The accumulators start from
 * the rows init + i*istr (the bias: istr 0; C: istr ldc; zero_row), then one
 * FMA per k in order: the same sums as tile(). */
#define AD0(p, r, r3) "(" p ")"
#define AD1(p, r, r3) "(" p "," r ",1)"
#define AD2(p, r, r3) "(" p "," r ",2)"
#define AD3(p, r, r3) "(" p "," r3 ",1)"
#define LROW(ad, z0, z1) "vmovups " ad ", %%zmm" #z0 "\n\t" "vmovups 64" ad ", %%zmm" #z1 "\n\t"
#define SROW(ad, z0, z1) "vmovups %%zmm" #z0 ", " ad "\n\t" "vmovups %%zmm" #z1 ", 64" ad "\n\t"
/* C + acc stored (load_c 2: the tile's sum added to C once, at the end) */
#define AROW(ad, z0, z1)                                                                                            \
    "vaddps " ad ", %%zmm" #z0 ", %%zmm" #z0 "\n\t" "vaddps 64" ad ", %%zmm" #z1 ", %%zmm" #z1 "\n\t" SROW(ad, z0, z1)
#define FROW(ad, z0, z1, bc)                                                                                        \
    "vbroadcastss " ad ", %%zmm" #bc "\n\t"                                                                         \
    "vfmadd231ps %%zmm28, %%zmm" #bc ", %%zmm" #z0 "\n\t"                                                           \
    "vfmadd231ps %%zmm29, %%zmm" #bc ", %%zmm" #z1 "\n\t"
/* Four rows (accumulators z0..z7) of a load or store: from p at 0, r, 2r, r3. */
#define G4(OP, p, r, r3, z0, z1, z2, z3, z4, z5, z6, z7)                                                           \
    OP(AD0(p, r, r3), z0, z1) OP(AD1(p, r, r3), z2, z3) OP(AD2(p, r, r3), z4, z5) OP(AD3(p, r, r3), z6, z7)
#define G2(OP, p, r, r3, z0, z1, z2, z3) OP(AD0(p, r, r3), z0, z1) OP(AD1(p, r, r3), z2, z3)
#define F4(p, z0, z1, z2, z3, z4, z5, z6, z7)                                                                      \
    FROW(AD0(p, "%[rs]", "%[rs3]"), z0, z1, 30) FROW(AD1(p, "%[rs]", "%[rs3]"), z2, z3, 31)                        \
    FROW(AD2(p, "%[rs]", "%[rs3]"), z4, z5, 30) FROW(AD3(p, "%[rs]", "%[rs3]"), z6, z7, 31)
#define F2(p, z0, z1, z2, z3) FROW(AD0(p, "%[rs]", "%[rs3]"), z0, z1, 30) FROW(AD1(p, "%[rs]", "%[rs3]"), z2, z3, 31)
#define NEXT4 "lea (%[p1],%[p2],4), %[p1]\n\t"

/* All MR rows of a load (init) or store (C): p1 the first row, p2 the stride, p3 3*stride. */
#define ROWS8(OP) G4(OP, "%[p1]", "%[p2]", "%[p3]", 0, 1, 2, 3, 4, 5, 6, 7) NEXT4 G4(OP, "%[p1]", "%[p2]", "%[p3]", 8, 9, 10, 11, 12, 13, 14, 15)
#define ROWS12(OP) ROWS8(OP) NEXT4 G4(OP, "%[p1]", "%[p2]", "%[p3]", 16, 17, 18, 19, 20, 21, 22, 23)
#define FMA8 F4("%[a]", 0, 1, 2, 3, 4, 5, 6, 7) F4("%[p1]", 8, 9, 10, 11, 12, 13, 14, 15)
#define FMA12 FMA8 F4("%[p2]", 16, 17, 18, 19, 20, 21, 22, 23)
#if MR == 8
#define ALLROWS ROWS8
#define ALLFMA FMA8
#elif MR == 12
#define ALLROWS ROWS12
#define ALLFMA FMA12
#elif MR == 14
#define ALLROWS(OP) ROWS12(OP) NEXT4 G2(OP, "%[p1]", "%[p2]", "%[p3]", 24, 25, 26, 27)
#define ALLFMA FMA12 F2("%[p3]", 24, 25, 26, 27)
#else
#error "MR must be 8, 12 or 14"
#endif

#ifndef BPF
#define BPF 8 /* prefetch B this many k ahead (0: none) */
#endif

static const float zero_row[32] __attribute__((aligned(64)));

static TGT void full_tile(int kc, const float *a, ptrdiff_t rsa, ptrdiff_t csa, const float *b, ptrdiff_t rsb, float *c,
                          ptrdiff_t ldc, const float *init, ptrdiff_t istr, long add) {
    ptrdiff_t rs = rsa * 4, cs = csa * 4, bs = rsb * 4, ls = ldc * 4, is = istr * 4, pf = bs * BPF;
    long k = kc;
    const float *p1, *p2, *p3;
    ptrdiff_t rs3;
    __asm__ volatile(
        "mov %[init], %[p1]\n\t"
        "mov %[is], %[p2]\n\t"
        "lea (%[p2],%[p2],2), %[p3]\n\t"
        ALLROWS(LROW)
        "lea (%[rs],%[rs],2), %[rs3]\n\t"
        "lea (%[a],%[rs],4), %[p1]\n\t"
        "lea (%[p1],%[rs],4), %[p2]\n\t"
        "lea (%[p2],%[rs],4), %[p3]\n\t"
        "1:\n\t"
        "vmovups (%[b]), %%zmm28\n\t"
        "vmovups 64(%[b]), %%zmm29\n\t"
#if BPF
        "prefetcht0 (%[b],%[pf],1)\n\t"
        "prefetcht0 64(%[b],%[pf],1)\n\t"
#endif
        ALLFMA
        "add %[cs], %[a]\n\t"
        "add %[cs], %[p1]\n\t"
        "add %[cs], %[p2]\n\t"
        "add %[cs], %[p3]\n\t"
        "add %[bs], %[b]\n\t"
        "dec %[k]\n\t"
        "jnz 1b\n\t"
        "mov %[c], %[p1]\n\t"
        "mov %[ls], %[p2]\n\t"
        "lea (%[p2],%[p2],2), %[p3]\n\t"
        "cmpq $0, %[add]\n\t"
        "jne 2f\n\t"
        ALLROWS(SROW)
        "jmp 3f\n\t"
        "2:\n\t"
        ALLROWS(AROW)
        "3:\n\t"
        : [a] "+r"(a), [b] "+r"(b), [k] "+r"(k), [p1] "=&r"(p1), [p2] "=&r"(p2), [p3] "=&r"(p3), [rs3] "=&r"(rs3)
        : [rs] "r"(rs), [cs] "r"(cs), [bs] "r"(bs), [pf] "r"(pf), [init] "m"(init), [is] "m"(is), [c] "m"(c), [ls] "m"(ls), [add] "m"(add)
        : "cc", "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",
          "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22",
          "xmm23", "xmm24", "xmm25", "xmm26", "xmm27", "xmm28", "xmm29", "xmm30", "xmm31");
}

static TGT void kern(int kc, const float *a, ptrdiff_t rsa, ptrdiff_t csa, const float *b, ptrdiff_t rsb,
                     ptrdiff_t pstride, float *c, ptrdiff_t ldc, int m, int n, int load_c, const float *bias) {
    const int nr = 16 * NV, np = (n + nr - 1) / nr;
    if (m == MR && n == nr && kc > 0) {
        full_tile(kc, a, rsa, csa, b, rsb, c, ldc, bias ? bias : load_c == 1 ? c : zero_row, bias || load_c != 1 ? 0 : ldc,
                  load_c == 2);
        return;
    }
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
