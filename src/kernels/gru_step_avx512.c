/* gru_step_avx512.c — the fused recurrent GRU step (the LSTM's twin is
 * step_avx512.c): for a block of 16 hidden units, four sums per batch row
 * (pre_r, pre_z, xn, hn) are accumulated in registers for up to 6 rows, then
 * the gate math of gru_gates_avx512.c runs on those registers and writes
 * r, z, n, hn and h'.  A call owns every output of its batch rows and unit
 * blocks; the caller separates steps.  Layouts in gru_kernels.h.
 *
 * Rounding: each sum is one in-order chain of fused multiply-adds, from its
 * start value (act, or the bias) over x, then over h, exactly like the
 * AVX2/AVX-512 GEMM kernels with beta = 1: the same bits as GEMM + gate kernel. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#include <stddef.h>

#include "gru_kernels.h"
#include "gru_simd_avx512.h"
#include "step_tiles.h"

size_t lstm__pack_gate_units_size(int G, int H, int K) { return (size_t)((H + 15) / 16) * (size_t)K * 16 * G; }

/* Per block of 16 rows, k outer: the 16 rows' lines of k..k+15 are read once
 * and stay in L1 (the rows of all G gates at once, G·16 rows a multiple of
 * 4 KiB apart for common sizes, share one L1 set: H = K = 1024, LSTM, 9.9 ms
 * a pack that way, 3.9 ms this way, about the time to stream 16 MiB in and
 * out). */
void lstm__pack_gate_units(float *P, int G, int H, int K, const float *W, int ldw) {
    lstm__pack_gate_units_range(P, G, H, K, W, ldw, 0, (H + 15) / 16);
}

void lstm__pack_gate_units_range(float *P, int G, int H, int K, const float *W, int ldw, int u0, int u1) {
    for (int u = u0; u < u1; u++)
        for (int q = 0; q < G; q++) {
            const int rows = H - 16 * u < 16 ? H - 16 * u : 16;
            const float *w = W + (size_t)(q * H + 16 * u) * ldw;
            for (int k = 0; k < K; k++) {
                float *d = P + (((size_t)u * K + k) * G + q) * 16;
                for (int j = 0; j < 16; j++) d[j] = j < rows ? w[(size_t)j * ldw + k] : 0.0f;
            }
        }
}

/* One tile: NR batch rows × NU unit blocks (NR·NU <= 6, the shapes of
 * step_tiles.h: 24 accumulators, 3 weight vectors and a broadcast for 6 × 1;
 * 16, 12 and one for 2 × 2 and 1 × 4).  NR and NU are constants at every
 * call, so the loops unroll and acc stays in registers.  pf: H lines to
 * prefetch into L2, one per k of the h product, or NULL.
 * NO_SANITIZE: see step_tiles.h; tests/test_gru_kernels.c checks the tiles
 * bit for bit against the sanitized GEMM + gate kernel path.
 * acc[r·NU + v][s]: s = 0 pre_r, 1 pre_z, 2 xn, 3 hn. */
__attribute__((target("avx512f,fma"), always_inline)) NO_SANITIZE static inline void
tile(const int NR, const int NU, int H, int in, int u, float *act, int ldact, const float *x, int ldx, const float *pih,
     const float *bias, const float *h, int ldh, const float *phh, float *h_out, int ldho, const float *pf, const float *pfx,
     int un) {
    __m512 acc[STEP_ROWS][4];
    const int G4 = ldact;
    UNROLL for (int r = 0; r < NR; r++)
        UNROLL for (int v = 0; v < NU; v++) {
            const int j0 = 16 * (u + v);
            const __mmask16 k = lanes16(H - j0);
            UNROLL for (int s = 0; s < 3; s++)
                acc[r * NU + v][s] = !x ? _mm512_maskz_loadu_ps(k, act + (size_t)r * G4 + s * H + j0)
                                     : bias ? _mm512_maskz_loadu_ps(k, bias + s * H + j0)
                                            : _mm512_setzero_ps();
            acc[r * NU + v][3] = bias ? _mm512_maskz_loadu_ps(k, bias + 3 * H + j0) : _mm512_setzero_ps();
        }
    /* act from the GEMM before the loop: the next unit block's lines of these rows
     * are requested now (as in step_avx512.c) */
    if (!x && un >= 0 && 16 * un < H) /* un: the block walked next (step_tiles.h's UN) */
        UNROLL for (int r = 0; r < NR; r++)
            UNROLL for (int s = 0; s < 3; s++) _mm_prefetch((const char *)(act + (size_t)r * G4 + s * H + 16 * un), _MM_HINT_T0);
    /* acc[r,v][s_q] += A[r][k] · P_{u+v}[k][q] for k in [0, K), gates q = 0, 1, 2
     * going to sums 0, 1, S2 (xn for x, hn for h) */
#define ACCUMULATE(A, lda, P, K, S2, PF)                                                               \
    for (int k = 0; k < (K); k++) {                                                                    \
        __m512 w[4][3];                                                                                \
        if (PF) _mm_prefetch((const char *)((PF) + (size_t)k * 16), _MM_HINT_T1);                     \
        UNROLL for (int v = 0; v < NU; v++)                                                            \
            UNROLL for (int q = 0; q < 3; q++) w[v][q] = _mm512_loadu_ps((P) + ((size_t)(u + v) * (K) + k) * 48 + q * 16); \
        UNROLL for (int r = 0; r < NR; r++) {                                                          \
            __m512 a = _mm512_set1_ps((A)[(size_t)r * (lda) + k]);                                     \
            UNROLL for (int v = 0; v < NU; v++) {                                                      \
                __m512 *ac = acc[r * NU + v];                                                          \
                ac[0] = _mm512_fmadd_ps(a, w[v][0], ac[0]);                                            \
                ac[1] = _mm512_fmadd_ps(a, w[v][1], ac[1]);                                            \
                ac[S2] = _mm512_fmadd_ps(a, w[v][2], ac[S2]);                                          \
            }                                                                                          \
        }                                                                                              \
    }
    if (x) ACCUMULATE(x, ldx, pih, in, 2, pfx)
    if (h) ACCUMULATE(h, ldh, phh, H, 3, pf)
#undef ACCUMULATE
    UNROLL for (int r = 0; r < NR; r++)
        UNROLL for (int v = 0; v < NU; v++) {
            const int j0 = 16 * (u + v);
            const __mmask16 k = lanes16(H - j0);
            __m512 *ac = acc[r * NU + v], rg, zg, ng;
            __m512 hp = h ? _mm512_maskz_loadu_ps(k, h + (size_t)r * ldh + j0) : _mm512_setzero_ps();
            __m512 hv = gru_cell512(ac[0], ac[1], ac[2], ac[3], hp, &rg, &zg, &ng);
            float *a = act + (size_t)r * G4 + j0;
            _mm512_mask_storeu_ps(a, k, rg);
            _mm512_mask_storeu_ps(a + H, k, zg);
            _mm512_mask_storeu_ps(a + 2 * H, k, ng);
            _mm512_mask_storeu_ps(a + 3 * H, k, ac[3]);
            _mm512_mask_storeu_ps(h_out + (size_t)r * ldho + j0, k, hv);
        }
}

/* One out-of-line function per tile shape: inlined into the step's loops,
 * the gate math's constants would be hoisted out of them and take the
 * registers that the accumulators need. */
#define TILE_ARGS                                                                                      \
    int H, int in, int u, float *act, int ldact, const float *x, int ldx, const float *pih, const float *bias, \
        const float *h, int ldh, const float *phh, float *h_out, int ldho, const float *pf, const float *pfx, int un
#define TILE_FN(NR, NU)                                                                                \
    __attribute__((target("avx512f,fma"), noinline)) NO_SANITIZE static void tile_##NR##_##NU(TILE_ARGS) { \
        tile(NR, NU, H, in, u, act, ldact, x, ldx, pih, bias, h, ldh, phh, h_out, ldho, pf, pfx, un);              \
    }
STEP_TILE_SHAPES(TILE_FN)
#undef TILE_FN
#undef TILE_ARGS

__attribute__((target("avx512f,fma"))) NO_SANITIZE void
lstm__gru_step_avx512(int B, int H, int in, int u0, int u1, int rev, float *act, int lda, const float *x, int ldx,
                      const float *pih,
                      const float *bias, const float *h, int ldh, const float *phh, float *h_out, int ldho) {
    /* the PF-th K lines of unit block un of P (of its 3·K lines), or none */
#define PREFETCH(A, P, K, un, PF) ((A) && (PF) >= 0 && (PF) < 3 ? (P) + ((size_t)(un) * 3 + (PF)) * (K) * 16 : NULL)
#define TILE(b, u, NR, NU, PF, UN)                                                                        \
    tile_##NR##_##NU(H, in, u, act + (size_t)(b) * lda, lda, x ? x + (size_t)(b) * ldx : NULL, ldx, pih, bias, \
                     h ? h + (size_t)(b) * ldh : NULL, ldh, phh, h_out + (size_t)(b) * ldho, ldho, PREFETCH(h, phh, H, UN, PF),  \
                     PREFETCH(x, pih, in, UN, PF), UN)
    STEP_FOR_TILES(B, u0, u1, rev, TILE);
#undef TILE
#undef PREFETCH
}
#endif
