/* gates_avx512.c — the point-wise gate math of lstm_cell.c, 16 lanes at a
 * time with AVX-512F (math in simd_avx512.h).  Compiled for any x86-64 (target
 * attributes, no -march); lstm_cell.c calls these only when the CPU has AVX-512F. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#include <stddef.h>

#include "internal.h"
#include "simd_avx512.h"

T512 void lstm__gates_forward_avx512(float *act, int lda, float *c, float *m, int ldm, const float *c_prev, int B, int H) {
    for (int b = 0; b < B; b++) {
        float *a = act + (size_t)b * lda;
        float *cb = c + (size_t)b * H;
        float *mb = m + (size_t)b * ldm;
        const float *cp = c_prev ? c_prev + (size_t)b * H : NULL;
        for (int j = 0; j < H; j += 16) {
            __mmask16 k = lanes16(H - j);
            __m512 i = sigmoid512(_mm512_maskz_loadu_ps(k, a + j));
            __m512 f = sigmoid512(_mm512_maskz_loadu_ps(k, a + H + j));
            __m512 g = tanh512(_mm512_maskz_loadu_ps(k, a + 2 * H + j));
            __m512 o = sigmoid512(_mm512_maskz_loadu_ps(k, a + 3 * H + j));
            _mm512_mask_storeu_ps(a + j, k, i);
            _mm512_mask_storeu_ps(a + H + j, k, f);
            _mm512_mask_storeu_ps(a + 2 * H + j, k, g);
            _mm512_mask_storeu_ps(a + 3 * H + j, k, o);
            __m512 cpv = cp ? _mm512_maskz_loadu_ps(k, cp + j) : _mm512_setzero_ps();
            /* same rounding order as the scalar path: (f·c_prev) + (i·g) */
            __m512 cn = _mm512_add_ps(_mm512_mul_ps(f, cpv), _mm512_mul_ps(i, g));
            _mm512_mask_storeu_ps(cb + j, k, cn);
            _mm512_mask_storeu_ps(mb + j, k, _mm512_mul_ps(o, tanh512(cn)));
        }
    }
}

T512 void lstm__gates_backward_avx512(float *dG, float *dc, const float *dm, int ldm, const float *act, int lda,
                                     const float *c, const float *c_prev, int B, int H) {
    const __m512 one = _mm512_set1_ps(1.0f);
    for (int b = 0; b < B; b++) {
        const float *a = act + (size_t)b * lda;
        float *d = dG + (size_t)b * lda;
        float *dcb = dc + (size_t)b * H;
        const float *dmb = dm + (size_t)b * ldm;
        const float *cb = c + (size_t)b * H;
        const float *cp = c_prev ? c_prev + (size_t)b * H : NULL;
        for (int j = 0; j < H; j += 16) {
            __mmask16 k = lanes16(H - j);
            __m512 i = _mm512_maskz_loadu_ps(k, a + j), f = _mm512_maskz_loadu_ps(k, a + H + j);
            __m512 g = _mm512_maskz_loadu_ps(k, a + 2 * H + j), o = _mm512_maskz_loadu_ps(k, a + 3 * H + j);
            __m512 t = tanh512(_mm512_maskz_loadu_ps(k, cb + j));
            __m512 dmv = _mm512_maskz_loadu_ps(k, dmb + j);
            __m512 dct = _mm512_add_ps(_mm512_maskz_loadu_ps(k, dcb + j),
                                       _mm512_mul_ps(_mm512_mul_ps(dmv, o), _mm512_sub_ps(one, _mm512_mul_ps(t, t))));
            __m512 cpv = cp ? _mm512_maskz_loadu_ps(k, cp + j) : _mm512_setzero_ps();
            _mm512_mask_storeu_ps(d + j, k, _mm512_mul_ps(_mm512_mul_ps(_mm512_mul_ps(dct, g), i), _mm512_sub_ps(one, i)));
            _mm512_mask_storeu_ps(d + H + j, k,
                                  _mm512_mul_ps(_mm512_mul_ps(_mm512_mul_ps(dct, cpv), f), _mm512_sub_ps(one, f)));
            _mm512_mask_storeu_ps(d + 2 * H + j, k,
                                  _mm512_mul_ps(_mm512_mul_ps(dct, i), _mm512_sub_ps(one, _mm512_mul_ps(g, g))));
            _mm512_mask_storeu_ps(d + 3 * H + j, k,
                                  _mm512_mul_ps(_mm512_mul_ps(_mm512_mul_ps(dmv, t), o), _mm512_sub_ps(one, o)));
            _mm512_mask_storeu_ps(dcb + j, k, _mm512_mul_ps(dct, f));
        }
    }
}
#endif
