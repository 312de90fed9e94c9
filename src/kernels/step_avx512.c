/* step_avx512.c — the fused recurrent step: for a block of 16 hidden units,
 * the four gate pre-activations of up to 6 batch rows are accumulated in 24
 * registers (h_prev·W_hhᵀ, and x·W_ihᵀ + b when x is given), then the gate
 * math runs on those registers and writes activations, c and m = o·tanh(c).
 * A call owns every output of its batch rows and unit blocks, so one step
 * needs no synchronization inside; the caller separates steps.
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
#include "gru_kernels.h" /* lstm__pack_gate_units */
#include "simd_avx512.h"
#include "step_tiles.h"

/* The LSTM's layout is the G-gate one of gru_kernels.h with G = 4. */
size_t lstm__pack_units_size(int H, int K) { return lstm__pack_gate_units_size(4, H, K); }

void lstm__pack_units(float *P, int H, int K, const float *W, int ldw) { lstm__pack_gate_units(P, 4, H, K, W, ldw); }

void lstm__pack_units_range(float *P, int H, int K, const float *W, int ldw, int u0, int u1) {
    lstm__pack_gate_units_range(P, 4, H, K, W, ldw, u0, u1);
}

/* One tile: NR batch rows × NU unit blocks (NR·NU <= 6, so 4·NR·NU <= 24
 * accumulators; the shapes are step_tiles.h's).  NR and NU are constants at
 * every call: the loops unroll and acc lives in registers.  Several unit
 * blocks per tile keep 16 chains of fused multiply-adds in flight when the
 * batch is 1 or 2.  pf: K lines (64 bytes each) to prefetch into L2, one
 * per k, or NULL. */
/* NO_SANITIZE: see step_tiles.h; tests/test_core.c checks the tiles bit for
 * bit against the sanitized GEMM + gate path. */

/* c = f·c_prev + i·g and m = o·tanh(c) for one row of 16 units (lanes km), stored at c and m;
 * cp: that row's c_prev or NULL (zero state).  The one cell update of both tile kinds. */
__attribute__((target("avx512f,fma"), always_inline)) NO_SANITIZE static inline void
cell_out(__mmask16 km, __m512 i, __m512 f, __m512 g, __m512 o, const float *cp, float *c, float *m) {
    __m512 cprev = cp ? _mm512_maskz_loadu_ps(km, cp) : _mm512_setzero_ps();
    __m512 cn = _mm512_add_ps(_mm512_mul_ps(f, cprev), _mm512_mul_ps(i, g));
    _mm512_mask_storeu_ps(c, km, cn);
    _mm512_mask_storeu_ps(m, km, _mm512_mul_ps(o, tanh512(cn)));
}

__attribute__((target("avx512f,fma"), always_inline)) NO_SANITIZE static inline void
tile(const int NR, const int NU, int H, int Hout, int in, int u, float *act, int ldact, const float *x, int ldx,
     const float *pih, const float *bsum, const float *h, int ldh, const float *phh, const float *c_prev,
     float *c, float *m, int ldm, const float *pf, const float *pfx, int un) {
    __m512 acc[STEP_ROWS][4];
    const int G = ldact;
    UNROLL for (int r = 0; r < NR; r++)
        UNROLL for (int v = 0; v < NU; v++)
            UNROLL for (int q = 0; q < 4; q++)
                acc[r * NU + v][q] =
                    !x ? _mm512_maskz_loadu_ps(lanes16(H - 16 * (u + v)), act + (size_t)r * G + q * H + 16 * (u + v))
                    : bsum ? _mm512_maskz_loadu_ps(lanes16(H - 16 * (u + v)), bsum + q * H + 16 * (u + v))
                           : _mm512_setzero_ps();
    /* x·W_ihᵀ + b came from the GEMM before the loop (act, long out of cache):
     * the lines of these rows of the block walked next (un) are requested now, one unit
     * block (all its row tiles) ahead of their use.  Zen 5, I = H = 1024,
     * B = 64, T = 50, the recurrence alone, interleaved, a busy host (ms):
     * 2 threads 82.7-85.6 -> 80.6-85.0 (mean 84.0 -> 82.4), 1 thread mean
     * 178 -> 173. */
    if (!x && un >= 0 && 16 * un < H)
        UNROLL for (int r = 0; r < NR; r++)
            UNROLL for (int q = 0; q < 4; q++) _mm_prefetch((const char *)(act + (size_t)r * G + q * H + 16 * un), _MM_HINT_T0);
    /* acc[r,v][q] += A[r][k] · P_{u+v}[k][q] for k in [0, K) */
#define ACCUMULATE(A, lda, P, K, PF)                                                                   \
    for (int k = 0; k < (K); k++) {                                                                    \
        __m512 w[4][4];                                                                                \
        if (PF) _mm_prefetch((const char *)((PF) + (size_t)k * 16), _MM_HINT_T1);                     \
        UNROLL for (int v = 0; v < NU; v++)                                                            \
            UNROLL for (int q = 0; q < 4; q++) w[v][q] = _mm512_loadu_ps((P) + ((size_t)(u + v) * (K) + k) * 64 + q * 16); \
        UNROLL for (int r = 0; r < NR; r++) {                                                          \
            __m512 a = _mm512_set1_ps((A)[(size_t)r * (lda) + k]);                                     \
            UNROLL for (int v = 0; v < NU; v++)                                                        \
                UNROLL for (int q = 0; q < 4; q++) acc[r * NU + v][q] = _mm512_fmadd_ps(a, w[v][q], acc[r * NU + v][q]); \
        }                                                                                              \
    }
    if (x) ACCUMULATE(x, ldx, pih, in, pfx)
    if (h) ACCUMULATE(h, ldh, phh, Hout, pf)
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
            cell_out(k, i, f, g, o, c_prev ? c_prev + (size_t)r * H + j0 : NULL, c + (size_t)r * H + j0,
                     m + (size_t)r * ldm + j0);
        }
}

/* One out-of-line function per tile shape: inlined into the step's loops,
 * the gate math's constants would be hoisted out of them and take the
 * registers that the accumulators need. */
#define TILE_ARGS                                                                                      \
    int H, int Hout, int in, int u, float *act, int ldact, const float *x, int ldx, const float *pih, const float *bsum, \
        const float *h, int ldh, const float *phh, const float *c_prev, float *c, float *m, int ldm, const float *pf, const float *pfx, \
        int un
#define TILE_FN(NR, NU)                                                                                \
    __attribute__((target("avx512f,fma"), noinline)) NO_SANITIZE static void tile_##NR##_##NU(TILE_ARGS) { \
        tile(NR, NU, H, Hout, in, u, act, ldact, x, ldx, pih, bsum, h, ldh, phh, c_prev, c, m, ldm, pf, pfx, un);  \
    }
STEP_TILE_SHAPES(TILE_FN)
#undef TILE_FN
#undef TILE_ARGS

/* 8 rows × 1 unit block in two passes over k, gates i and f, then g and o (16
 * accumulators each): each weight line is read once per step, where two tiles
 * of 4 rows read the block twice.  Each pre-activation's chain and the gate
 * math are tile()'s, so the bits are the same.  pf: the next block's lines
 * (4·K of them), half of them prefetched into L2 in each pass, or NULL. */
__attribute__((target("avx512f,fma"), noinline)) NO_SANITIZE static void
tile_8_two(int H, int Hout, int in, int u, float *act, int ldact, const float *x, int ldx, const float *pih,
           const float *bsum, const float *h, int ldh, const float *phh, const float *c_prev, float *c, float *m,
           int ldm, const float *pf, const float *pfx, int un) {
    const int G = ldact, j0 = 16 * u;
    const __mmask16 km = lanes16(H - j0);
    for (int gp = 0; gp < 2; gp++) {
        __m512 acc[8][2];
        UNROLL for (int r = 0; r < 8; r++)
            UNROLL for (int q = 0; q < 2; q++) {
                const int gq = 2 * gp + q;
                acc[r][q] = !x ? _mm512_maskz_loadu_ps(km, act + (size_t)r * G + gq * H + j0)
                            : bsum ? _mm512_maskz_loadu_ps(km, bsum + gq * H + j0)
                                   : _mm512_setzero_ps();
            }
        if (!x && gp == 0 && un >= 0 && 16 * un < H)
            UNROLL for (int r = 0; r < 8; r++)
                UNROLL for (int q = 0; q < 4; q++) _mm_prefetch((const char *)(act + (size_t)r * G + q * H + 16 * un), _MM_HINT_T0);
#define ACC2(A, lda, P, K, PF)                                                                          \
    for (int k = 0; k < (K); k++) {                                                                    \
        if (PF) {                                                                                      \
            _mm_prefetch((const char *)((PF) + ((size_t)2 * gp * (K) + k) * 16), _MM_HINT_T1);          \
            _mm_prefetch((const char *)((PF) + ((size_t)(2 * gp + 1) * (K) + k) * 16), _MM_HINT_T1);    \
        }                                                                                              \
        const float *wp = (P) + ((size_t)u * (K) + k) * 64 + 32 * gp;                                   \
        const __m512 w0 = _mm512_loadu_ps(wp), w1 = _mm512_loadu_ps(wp + 16);                          \
        UNROLL for (int r = 0; r < 8; r++) {                                                           \
            const __m512 a = _mm512_set1_ps((A)[(size_t)r * (lda) + k]);                               \
            acc[r][0] = _mm512_fmadd_ps(a, w0, acc[r][0]);                                             \
            acc[r][1] = _mm512_fmadd_ps(a, w1, acc[r][1]);                                             \
        }                                                                                              \
    }
        if (x) ACC2(x, ldx, pih, in, pfx)
        if (h) ACC2(h, ldh, phh, Hout, pf)
#undef ACC2
        UNROLL for (int r = 0; r < 8; r++) {
            float *a = act + (size_t)r * G + j0;
            if (gp == 0) {
                _mm512_mask_storeu_ps(a, km, sigmoid512(acc[r][0]));
                _mm512_mask_storeu_ps(a + H, km, sigmoid512(acc[r][1]));
            } else {
                const __m512 g = tanh512(acc[r][0]), o = sigmoid512(acc[r][1]);
                const __m512 i = _mm512_maskz_loadu_ps(km, a), f = _mm512_maskz_loadu_ps(km, a + H);
                _mm512_mask_storeu_ps(a + 2 * H, km, g);
                _mm512_mask_storeu_ps(a + 3 * H, km, o);
                cell_out(km, i, f, g, o, c_prev ? c_prev + (size_t)r * H + j0 : NULL, c + (size_t)r * H + j0,
                         m + (size_t)r * ldm + j0);
            }
        }
    }
}

__attribute__((target("avx512f,fma"))) NO_SANITIZE void
lstm__step_avx512(int B, int H, int Hout, int in, int u0, int u1, int rev, float *act, int lda, const float *x, int ldx,
                  const float *pih, const float *bsum, const float *h, int ldh, const float *phh,
                  const float *c_prev, float *c, float *m, int ldm) {
    /* the PF-th K lines of unit block un of P (of its 4·K lines), or none */
#define PREFETCH(A, P, K, un, PF) ((A) && (PF) >= 0 && (PF) < 4 ? (P) + ((size_t)(un) * 4 + (PF)) * (K) * 16 : NULL)
#define TILE(b, u, NR, NU, PF, UN)                                                                          \
    tile_##NR##_##NU(H, Hout, in, u, act + (size_t)(b) * lda, lda, x ? x + (size_t)(b) * ldx : NULL, ldx, pih, bsum, \
                     h ? h + (size_t)(b) * ldh : NULL, ldh, phh, c_prev ? c_prev + (size_t)(b) * H : NULL,   \
                     c + (size_t)(b) * H, m + (size_t)(b) * ldm, ldm, PREFETCH(h, phh, Hout, UN, PF),  \
                     PREFETCH(x, pih, in, UN, PF), UN)
    if (B == 8 && lstm__cpu()->step_two_pass8) { /* one tile in two passes (cpu.c) */
        for (int i = 0; i < u1 - u0; i++) { /* the next block's start (its first K lines), if any */
            const int u = rev ? u1 - 1 - i : u0 + i, pf = i + 1 < u1 - u0 ? 0 : -1;
            const int un = !rev ? u + 1 : pf == 0 ? u - 1 : -1; /* as STEP_FOR_TILES's UN */
            tile_8_two(H, Hout, in, u, act, lda, x, ldx, pih, bsum, h, ldh, phh, c_prev, c, m, ldm,
                       PREFETCH(h, phh, Hout, un, pf), PREFETCH(x, pih, in, un, pf), un);
        }
        return;
    }
    STEP_FOR_TILES(B, u0, u1, rev, TILE);
#undef TILE
#undef PREFETCH
}
#endif
