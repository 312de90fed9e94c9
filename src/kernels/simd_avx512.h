/* simd_avx512.h — vectorized exp, sigmoid and tanh for the AVX-512 kernels
 * (gates_avx512.c, step_avx512.c).  Include only from files whose functions
 * carry the T512 target attribute.
 *
 * exp(x): x = n·ln2 + r, |r| <= ln2/2 (Cody–Waite split of ln2), exp(r) by its
 * degree-7 Taylor polynomial (truncation < 6e-9 relative), times 2^n by scalef.
 * σ(x) = 1 / (1 + exp(−x)) with a true division.
 * tanh(x): odd Taylor polynomial to x^13 for |x| < 0.25 (truncation < 2e-12),
 * else sign(x)·(1 − 2 / (exp(2|x|) + 1)).  Both stay within a few float32 ulps
 * of the libm results, which the scalar path uses (tests/test_gates.c).
 * Non-finite inputs give what libm and PyTorch give: NaN -> NaN, σ(+Inf) = 1,
 * σ(−Inf) = 0, tanh(±Inf) = ±1 (tests/test_nonfinite.c). */
#ifndef LSTM_SIMD_AVX512_H
#define LSTM_SIMD_AVX512_H
#include <immintrin.h>

#define T512 __attribute__((target("avx512f,fma")))

T512 static inline __attribute__((always_inline)) __m512 exp512(__m512 x) {
    /* Clamp so that 2^n stays in scalef's range.  MAXPS/MINPS return their
     * second operand when either is NaN, so x goes second: a NaN lane stays
     * NaN (and then every step below keeps it NaN); ±Inf clamp to the ends,
     * giving exp(+Inf) = +Inf and exp(-Inf) = 0 as libm does. */
    x = _mm512_min_ps(_mm512_set1_ps(89.0f), _mm512_max_ps(_mm512_set1_ps(-104.0f), x));
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

T512 static inline __attribute__((always_inline)) __m512 sigmoid512(__m512 x) {
    __m512 one = _mm512_set1_ps(1.0f);
    return _mm512_div_ps(one, _mm512_add_ps(one, exp512(_mm512_sub_ps(_mm512_setzero_ps(), x))));
}

T512 static inline __attribute__((always_inline)) __m512 tanh512(__m512 x) {
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

/* Mask of the first n (0..16) lanes. */
static inline __mmask16 lanes16(int n) { return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1); }

#endif
