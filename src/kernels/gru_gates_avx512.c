/* gru_gates_avx512.c — the GRU's point-wise gate math (gru_cell.c's oracles),
 * 16 units at a time with AVX-512F; layouts in internal.h and gru_kernels.h.
 * Compiled for any x86-64 (target attributes, no -march); call only when the
 * CPU has AVX-512F. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#include <stddef.h>

#include "gru_kernels.h"
#include "gru_simd_avx512.h"

/* act [B, lda]: pre_r, pre_z, xn, hn -> r, z, n, hn;  h [B,ldh];  h_prev [B,ldhp] or NULL. */
T512 void lstm__gru_gates_forward_avx512(float *act, int lda, float *h, int ldh, const float *h_prev, int ldhp, int B, int H) {
    for (int b = 0; b < B; b++) {
        float *a = act + (size_t)b * lda;
        float *hb = h + (size_t)b * ldh;
        const float *hp = h_prev ? h_prev + (size_t)b * ldhp : NULL;
        for (int j = 0; j < H; j += 16) {
            __mmask16 k = lanes16(H - j);
            __m512 r, z, n;
            __m512 hpv = hp ? _mm512_maskz_loadu_ps(k, hp + j) : _mm512_setzero_ps();
            __m512 hv = gru_cell512(_mm512_maskz_loadu_ps(k, a + j), _mm512_maskz_loadu_ps(k, a + H + j),
                                    _mm512_maskz_loadu_ps(k, a + 2 * H + j), _mm512_maskz_loadu_ps(k, a + 3 * H + j),
                                    hpv, &r, &z, &n);
            _mm512_mask_storeu_ps(a + j, k, r);
            _mm512_mask_storeu_ps(a + H + j, k, z);
            _mm512_mask_storeu_ps(a + 2 * H + j, k, n);
            _mm512_mask_storeu_ps(hb + j, k, hv);
        }
    }
}

/* dh [B,lddh]; act [B, lda] = r, z, n, hn; h_prev [B,ldhp] or NULL ->
 * dgx [B,ldgx] (3H), dgh [B,3H], dh_prev [B,H].  The oracle's formulas in its
 * order of operations (gru_cell.c); all four act values of a block are loaded
 * before anything is stored, so dgx may alias act. */
T512 void lstm__gru_gates_backward_avx512(float *dgx, int ldgx, float *dgh, float *dh_prev, const float *dh, int lddh,
                                          const float *act, int lda, const float *h_prev, int ldhp, int B, int H) {
    const __m512 one = _mm512_set1_ps(1.0f);
    for (int b = 0; b < B; b++) {
        const float *a = act + (size_t)b * lda;
        const float *dhb = dh + (size_t)b * lddh;
        const float *hp = h_prev ? h_prev + (size_t)b * ldhp : NULL;
        float *gx = dgx + (size_t)b * ldgx;
        float *gh = dgh + (size_t)b * 3 * H;
        float *dp = dh_prev + (size_t)b * H;
        for (int j = 0; j < H; j += 16) {
            __mmask16 k = lanes16(H - j);
            __m512 r = _mm512_maskz_loadu_ps(k, a + j), z = _mm512_maskz_loadu_ps(k, a + H + j);
            __m512 n = _mm512_maskz_loadu_ps(k, a + 2 * H + j), hn = _mm512_maskz_loadu_ps(k, a + 3 * H + j);
            __m512 d = _mm512_maskz_loadu_ps(k, dhb + j);
            __m512 hpv = hp ? _mm512_maskz_loadu_ps(k, hp + j) : _mm512_setzero_ps();
            __m512 dz = _mm512_mul_ps(d, _mm512_sub_ps(hpv, n));
            __m512 dn = _mm512_sub_ps(d, _mm512_mul_ps(d, z));
            __m512 dan = _mm512_mul_ps(dn, _mm512_sub_ps(one, _mm512_mul_ps(n, n)));
            __m512 dar = _mm512_mul_ps(_mm512_mul_ps(_mm512_mul_ps(dan, hn), r), _mm512_sub_ps(one, r));
            __m512 daz = _mm512_mul_ps(_mm512_mul_ps(dz, z), _mm512_sub_ps(one, z));
            _mm512_mask_storeu_ps(dp + j, k, _mm512_mul_ps(d, z));
            _mm512_mask_storeu_ps(gx + j, k, dar);
            _mm512_mask_storeu_ps(gx + H + j, k, daz);
            _mm512_mask_storeu_ps(gx + 2 * H + j, k, dan);
            _mm512_mask_storeu_ps(gh + j, k, dar);
            _mm512_mask_storeu_ps(gh + H + j, k, daz);
            _mm512_mask_storeu_ps(gh + 2 * H + j, k, _mm512_mul_ps(dan, r));
        }
    }
}
#endif
