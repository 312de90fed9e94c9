/* gates_avx512.c — the point-wise gate math of lstm_cell.c, 16 lanes at a
 * time with AVX-512F.  Compiled for any x86-64 (target attributes, no -march);
 * lstm_cell.c calls these only when the CPU has AVX-512F.
 *
 * exp(x): x = n·ln2 + r, |r| <= ln2/2 (Cody–Waite split of ln2), exp(r) by its
 * degree-7 Taylor polynomial (truncation < 6e-9 relative), times 2^n by scalef.
 * σ(x) = 1 / (1 + exp(−x)) with a true division.
 * tanh(x): odd Taylor polynomial to x^13 for |x| < 0.25 (truncation < 2e-12),
 * else sign(x)·(1 − 2 / (exp(2|x|) + 1)).  Both stay within a few float32 ulps
 * of the libm results, which the scalar path uses. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#include <stddef.h>

#include "internal.h"

#define T512 __attribute__((target("avx512f,fma")))

T512 static inline __m512 exp512(__m512 x) {
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-104.0f)), _mm512_set1_ps(89.0f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.0f / 5040.0f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

T512 static inline __m512 sigmoid512(__m512 x) {
    __m512 one = _mm512_set1_ps(1.0f);
    return _mm512_div_ps(one, _mm512_add_ps(one, exp512(_mm512_sub_ps(_mm512_setzero_ps(), x))));
}

T512 static inline __m512 tanh512(__m512 x) {
    __m512 ax = _mm512_abs_ps(x);
    /* large: 1 - 2/(exp(2|x|)+1) */
    __m512 e = exp512(_mm512_add_ps(ax, ax));
    __m512 big = _mm512_sub_ps(_mm512_set1_ps(1.0f),
                               _mm512_div_ps(_mm512_set1_ps(2.0f), _mm512_add_ps(e, _mm512_set1_ps(1.0f))));
    /* small: x + x^3·q(x^2) */
    __m512 x2 = _mm512_mul_ps(ax, ax);
    __m512 q = _mm512_set1_ps(21844.0f / 6081075.0f);
    q = _mm512_fmadd_ps(q, x2, _mm512_set1_ps(-1382.0f / 155925.0f));
    q = _mm512_fmadd_ps(q, x2, _mm512_set1_ps(62.0f / 2835.0f));
    q = _mm512_fmadd_ps(q, x2, _mm512_set1_ps(-17.0f / 315.0f));
    q = _mm512_fmadd_ps(q, x2, _mm512_set1_ps(2.0f / 15.0f));
    q = _mm512_fmadd_ps(q, x2, _mm512_set1_ps(-1.0f / 3.0f));
    __m512 small = _mm512_fmadd_ps(_mm512_mul_ps(q, x2), ax, ax);
    __mmask16 is_small = _mm512_cmp_ps_mask(ax, _mm512_set1_ps(0.25f), _CMP_LT_OQ);
    __m512 t = _mm512_mask_blend_ps(is_small, big, small);
    __mmask16 neg = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
    return _mm512_mask_sub_ps(t, neg, _mm512_setzero_ps(), t);
}

T512 void lstm__gates_forward_avx512(float *act, float *c, float *m, int ldm, const float *c_prev, int B, int H) {
    for (int b = 0; b < B; b++) {
        float *a = act + (size_t)b * 4 * H;
        float *cb = c + (size_t)b * H;
        float *mb = m + (size_t)b * ldm;
        const float *cp = c_prev ? c_prev + (size_t)b * H : NULL;
        for (int j = 0; j < H; j += 16) {
            __mmask16 k = H - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (H - j)) - 1);
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

T512 void lstm__gates_backward_avx512(float *dG, float *dc, const float *dm, int ldm, const float *act,
                                     const float *c, const float *c_prev, int B, int H) {
    const __m512 one = _mm512_set1_ps(1.0f);
    for (int b = 0; b < B; b++) {
        const float *a = act + (size_t)b * 4 * H;
        float *d = dG + (size_t)b * 4 * H;
        float *dcb = dc + (size_t)b * H;
        const float *dmb = dm + (size_t)b * ldm;
        const float *cb = c + (size_t)b * H;
        const float *cp = c_prev ? c_prev + (size_t)b * H : NULL;
        for (int j = 0; j < H; j += 16) {
            __mmask16 k = H - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (H - j)) - 1);
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
