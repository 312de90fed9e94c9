/* step_dh_avx512.c — the backward step's recurrent product, where the fused
 * step runs: dh_prev [B, N] (+)= dG_t [B, K] · W [K, N], W a run of W_hh
 * ([K = n·H, N = Hout]) packed once per set of weights into panels of 64
 * columns: P[(p·K' + k)·64 + j] = W[k][64p + j] (0 past N; K' the rows of the
 * whole pack, so a run of rows is the same layout from P + k0·64).  One
 * task's batch rows are few (a thread's share of B), so the tiles are those
 * of the forward step turned around: up to 6 rows × 64 columns (24
 * accumulators, 4 weight vectors and a broadcast), A read in place (nothing
 * packed per step), K in blocks of KB rows whose slice of the panel (64 KiB,
 * contiguous) stays in L2 for every row tile, and the next block prefetched
 * into L2 while the current one is used.  rev walks the panels from the
 * last to the first (the k blocks of each still in order: no bit depends on
 * the panel order); callers alternate it per step like the forward's.  (W
 * read in place, with rows a
 * multiple of 512 bytes apart, maps a block into a few cache sets: 99 GF/s at
 * H = 1024 against 183 packed, one thread, Zen 5.)
 *
 * Rounding: each element is one in-order chain of fused multiply-adds over
 * k from C (accumulate) or 0, stored and reloaded between blocks, exactly as
 * lstm_gemm_nn's AVX2/AVX-512 kernels: the same bits (tests/test_core.c). */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#include <stddef.h>
#include <string.h>

#include "internal.h"
#include "simd_avx512.h" /* lanes16 */
#include "step_tiles.h"

#define KB 256 /* depth block: KB rows × 64 columns of a panel = 64 KiB */

/* C[NR, n <= 64] = (load_c ? C : 0) + A[NR, kb]·W[kb, 64] (W: kb rows of a
 * panel, 64 floats each); pf: kb lines to prefetch into L2, one per k, or NULL. */
__attribute__((target("avx512f,fma"), always_inline)) NO_SANITIZE static inline void
dh_tile(const int NR, int kb, const float *A, int lda, const float *W, float *C, int ldc, int n, int load_c,
        const float *pf) {
    __m512 acc[STEP_ROWS][4];
    __mmask16 mk[4];
    UNROLL for (int v = 0; v < 4; v++) mk[v] = lanes16(n - 16 * v);
    UNROLL for (int r = 0; r < NR; r++)
        UNROLL for (int v = 0; v < 4; v++)
            acc[r][v] = load_c ? _mm512_maskz_loadu_ps(mk[v], C + (size_t)r * ldc + 16 * v) : _mm512_setzero_ps();
    for (int k = 0; k < kb; k++) {
        __m512 w[4];
        if (pf) _mm_prefetch((const char *)(pf + (size_t)k * 16), _MM_HINT_T1);
        UNROLL for (int v = 0; v < 4; v++) w[v] = _mm512_loadu_ps(W + (size_t)k * 64 + 16 * v);
        UNROLL for (int r = 0; r < NR; r++) {
            __m512 a = _mm512_set1_ps(A[(size_t)r * lda + k]);
            UNROLL for (int v = 0; v < 4; v++) acc[r][v] = _mm512_fmadd_ps(a, w[v], acc[r][v]);
        }
    }
    UNROLL for (int r = 0; r < NR; r++)
        UNROLL for (int v = 0; v < 4; v++) _mm512_mask_storeu_ps(C + (size_t)r * ldc + 16 * v, mk[v], acc[r][v]);
}

#define DH_ARGS int kb, const float *A, int lda, const float *W, float *C, int ldc, int n, int load_c, const float *pf
#define DH_FN(NR)                                                                                       \
    __attribute__((target("avx512f,fma"), noinline)) NO_SANITIZE static void dh_tile_##NR(DH_ARGS) {  \
        dh_tile(NR, kb, A, lda, W, C, ldc, n, load_c, pf);                                             \
    }
DH_FN(6) DH_FN(5) DH_FN(4) DH_FN(3) DH_FN(2) DH_FN(1)
#undef DH_FN
#undef DH_ARGS

size_t lstm__step_dh_pack_size(int N, int K) { return (size_t)((N + 63) / 64) * 64 * (size_t)K; }

void lstm__step_dh_pack(float *P, int N, int K, const float *W, int ldw) { lstm__step_dh_pack_rows(P, N, K, W, ldw, 0, K); }

void lstm__step_dh_pack_rows(float *P, int N, int K, const float *W, int ldw, int k0, int k1) {
    for (int p = 0; p < (N + 63) / 64; p++) {
        const int n = N - 64 * p < 64 ? N - 64 * p : 64;
        for (int k = k0; k < k1; k++) {
            float *d = P + ((size_t)p * K + k) * 64;
            memcpy(d, W + (size_t)k * ldw + 64 * p, (size_t)n * sizeof(float));
            if (n < 64) memset(d + n, 0, (size_t)(64 - n) * sizeof(float));
        }
    }
}

__attribute__((target("avx512f,fma"))) NO_SANITIZE void
lstm__step_dh_avx512(int B, int N, int K, const float *A, int lda, const float *P, size_t pstride, float *C,
                     int ldc, int accumulate, int rev) {
    if (B <= 0 || N <= 0) return;
    const int nt = (B + STEP_ROWS - 1) / STEP_ROWS, np = (N + 63) / 64;
    for (int pi = 0; pi < np; pi++) {
        const int j0 = 64 * (rev ? np - 1 - pi : pi);
        for (int k0 = 0; k0 < K || (k0 == 0 && !accumulate); k0 += KB) {
            const int kb = K - k0 < KB ? K - k0 : KB, load_c = accumulate || k0 > 0;
            /* the block after this one, (j0, k0 + KB) or else the next panel's
             * first, (j0 ± 64, 0): its kb2 rows are 4·kb2 contiguous lines; row
             * tile i prefetches lines [i·kb, (i + 1)·kb) of them */
            int jn = j0, kn = k0 + KB;
            if (kn >= K) jn += rev ? -64 : 64, kn = 0;
            const int kb2 = jn >= 0 && jn < N ? (K - kn < KB ? K - kn : KB) : 0;
            const float *next = kb2 > 0 ? P + (size_t)(jn / 64) * pstride + (size_t)kn * 64 : NULL;
            const float *w = P + (size_t)(j0 / 64) * pstride + (size_t)k0 * 64;
            for (int i = 0; i < nt; i++) {
                int b = B * i / nt, nr = B * (i + 1) / nt - b;
                const float *pf = next && (i + 1) * kb <= 4 * kb2 ? next + (size_t)i * kb * 16 : NULL;
                const float *a = A + (size_t)b * lda + k0;
                float *c = C + (size_t)b * ldc + j0;
#define DH(R) dh_tile_##R(kb, a, lda, w, c, ldc, N - j0, load_c, pf)
                switch (nr) {
                case 6: DH(6); break;
                case 5: DH(5); break;
                case 4: DH(4); break;
                case 3: DH(3); break;
                case 2: DH(2); break;
                default: DH(1); break;
                }
#undef DH
            }
            if (K == 0) break;
        }
    }
}
#endif
