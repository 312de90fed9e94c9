/* step_avx512.c — the fused recurrent step: for a block of 16 hidden units,
 * the four gate pre-activations of up to 4 batch rows are accumulated in 16
 * registers (h_prev·W_hhᵀ, and x·W_ihᵀ + b when x is given), then the gate
 * math runs on those registers and writes activations, c and m = o·tanh(c).
 * A thread that owns a range of unit blocks owns every output it writes, so
 * one step needs no synchronization inside; the caller separates steps.
 *
 * Packed weights ("unit-interleaved"): for unit block u, depth k, gate q,
 * lane j:  P[((u·K + k)·4 + q)·16 + j] = W[q·H + 16u + j][k]  (0 past H).
 * Per depth k the four gates of a block are 64 contiguous floats.
 *
 * Rounding: each pre-activation is one in-order chain of fused multiply-adds
 * starting from b_ih + b_hh (or 0) over x, then continuing over h,
 * exactly like the AVX2/AVX-512 GEMM kernels, and the gate math is that of
 * gates_avx512.c: the fused step gives the same bits as GEMM + gate kernel. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <stddef.h>
#include <string.h>

#include "internal.h"
#include "simd_avx512.h"

size_t lstm__pack_units_size(int H, int K) { return (size_t)((H + 15) / 16) * (size_t)K * 64; }

void lstm__pack_units(float *P, int H, int K, const float *W, int ldw) {
    int nub = (H + 15) / 16;
    for (int u = 0; u < nub; u++)
        for (int k = 0; k < K; k++)
            for (int q = 0; q < 4; q++) {
                float *d = P + (((size_t)u * K + k) * 4 + q) * 16;
                for (int j = 0; j < 16; j++) {
                    int r = 16 * u + j;
                    d[j] = r < H ? W[(size_t)(q * H + r) * ldw + k] : 0.0f;
                }
            }
}

#if defined(__clang__)
#define UNROLL _Pragma("clang loop unroll(full)")
#else
#define UNROLL _Pragma("GCC unroll 4")
#endif

/* One tile: NR batch rows × NU unit blocks (NR·NU <= 4, so 4·NR·NU <= 16
 * accumulators).  NR and NU are constants at every call: the loops unroll
 * and acc lives in registers.  Several unit blocks per tile keep 16 chains of
 * fused multiply-adds in flight when the batch is 1 or 2. */
/* Sanitizers stay out of this kernel: their checks on the fully unrolled
 * register tiles take clang minutes to compile.  Its accesses are bounded by
 * lanes16(), nr and nu, and tests/test_core.c checks it bit for bit against
 * the sanitized GEMM + gate path. */
#if defined(__clang__)
#define NO_SANITIZE __attribute__((no_sanitize("address", "undefined")))
#else
#define NO_SANITIZE __attribute__((no_sanitize_address, no_sanitize_undefined))
#endif

__attribute__((target("avx512f,fma"), always_inline)) NO_SANITIZE static inline void
tile(const int NR, const int NU, int H, int Hout, int in, int u, float *act, const float *x, int ldx,
     const float *pih, const float *bsum, const float *h, int ldh, const float *phh, const float *c_prev,
     float *c, float *m, int ldm) {
    __m512 acc[4][4];
    const int G = 4 * H;
    UNROLL for (int r = 0; r < NR; r++)
        UNROLL for (int v = 0; v < NU; v++)
            UNROLL for (int q = 0; q < 4; q++)
                acc[r * NU + v][q] =
                    !x ? _mm512_maskz_loadu_ps(lanes16(H - 16 * (u + v)), act + (size_t)r * G + q * H + 16 * (u + v))
                    : bsum ? _mm512_maskz_loadu_ps(lanes16(H - 16 * (u + v)), bsum + q * H + 16 * (u + v))
                           : _mm512_setzero_ps();
    /* acc[r,v][q] += A[r][k] · P_{u+v}[k][q] for k in [0, K) */
#define ACCUMULATE(A, lda, P, K)                                                                       \
    for (int k = 0; k < (K); k++) {                                                                    \
        __m512 w[4][4];                                                                                \
        UNROLL for (int v = 0; v < NU; v++)                                                            \
            UNROLL for (int q = 0; q < 4; q++) w[v][q] = _mm512_loadu_ps((P) + ((size_t)(u + v) * (K) + k) * 64 + q * 16); \
        UNROLL for (int r = 0; r < NR; r++) {                                                          \
            __m512 a = _mm512_set1_ps((A)[(size_t)r * (lda) + k]);                                     \
            UNROLL for (int v = 0; v < NU; v++)                                                        \
                UNROLL for (int q = 0; q < 4; q++) acc[r * NU + v][q] = _mm512_fmadd_ps(a, w[v][q], acc[r * NU + v][q]); \
        }                                                                                              \
    }
    if (x) ACCUMULATE(x, ldx, pih, in)
    if (h) ACCUMULATE(h, ldh, phh, Hout)
#undef ACCUMULATE
    UNROLL for (int r = 0; r < NR; r++)
        UNROLL for (int v = 0; v < NU; v++) {
            const int j0 = 16 * (u + v);
            const __mmask16 k = lanes16(H - j0);
            __m512 *ac = acc[r * NU + v];
            __m512 i = sigmoid512(ac[0]), f = sigmoid512(ac[1]);
            __m512 g = tanh512(ac[2]), o = sigmoid512(ac[3]);
            float *a = act + (size_t)r * G + j0;
            _mm512_mask_storeu_ps(a, k, i);
            _mm512_mask_storeu_ps(a + H, k, f);
            _mm512_mask_storeu_ps(a + 2 * H, k, g);
            _mm512_mask_storeu_ps(a + 3 * H, k, o);
            __m512 cp = c_prev ? _mm512_maskz_loadu_ps(k, c_prev + (size_t)r * H + j0) : _mm512_setzero_ps();
            __m512 cn = _mm512_add_ps(_mm512_mul_ps(f, cp), _mm512_mul_ps(i, g));
            _mm512_mask_storeu_ps(c + (size_t)r * H + j0, k, cn);
            _mm512_mask_storeu_ps(m + (size_t)r * ldm + j0, k, _mm512_mul_ps(o, tanh512(cn)));
        }
}

__attribute__((target("avx512f,fma"))) NO_SANITIZE void
lstm__step_avx512(int B, int H, int Hout, int in, int u0, int u1, float *act, const float *x, int ldx,
                  const float *pih, const float *bsum, const float *h, int ldh, const float *phh,
                  const float *c_prev, float *c, float *m, int ldm) {
    const int G = 4 * H;
    const int NU = B >= 3 ? 1 : B == 2 ? 2 : 4; /* unit blocks per tile */
    for (int u = u0; u < u1; u += NU) {
        int nu = u1 - u < NU ? u1 - u : NU;
        for (int b = 0; b < B; b += 4) {
            int nr = B - b < 4 ? B - b : 4;
            float *ab = act + (size_t)b * G, *cb = c + (size_t)b * H, *mb = m + (size_t)b * ldm;
            const float *xb = x ? x + (size_t)b * ldx : NULL, *hb = h ? h + (size_t)b * ldh : NULL;
            const float *cpb = c_prev ? c_prev + (size_t)b * H : NULL;
#define TILE(NR, NU_) tile(NR, NU_, H, Hout, in, u, ab, xb, ldx, pih, bsum, hb, ldh, phh, cpb, cb, mb, ldm)
            switch (nr * 8 + nu) {
            case 4 * 8 + 1: TILE(4, 1); break;
            case 3 * 8 + 1: TILE(3, 1); break;
            case 2 * 8 + 2: TILE(2, 2); break;
            case 2 * 8 + 1: TILE(2, 1); break;
            case 1 * 8 + 4: TILE(1, 4); break;
            case 1 * 8 + 3: TILE(1, 3); break;
            case 1 * 8 + 2: TILE(1, 2); break;
            default: TILE(1, 1); break;
            }
#undef TILE
        }
    }
}
#endif
