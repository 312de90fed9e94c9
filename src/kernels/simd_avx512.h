/* simd_avx512.h — vectorized exp, sigmoid and tanh for the AVX-512 kernels
 * (gates_avx512.c, step_avx512.c; the fast pair below: step1_avx512.c).  Include
 * only from files whose functions carry the T512 target attribute.
 *
 * exp(x): x = n·ln2 + r, |r| <= ln2/2 (Cody–Waite split of ln2), exp(r) by its
 * degree-7 Taylor polynomial (truncation < 6e-9 relative), times 2^n by scalef.
 * σ(x) = 1 / (1 + exp(−x)) with a true division.
 * tanh(x): odd Taylor polynomial to x^13 for |x| < 0.25 (truncation < 2e-12),
 * else sign(x)·(1 − 2 / (exp(2|x|) + 1)).  Both stay within a few float32 ulps
 * of the libm results, which the scalar path uses (tests/test_gates.c).
 * Non-finite inputs give what libm and PyTorch give: NaN -> NaN, σ(+Inf) = 1,
 * σ(−Inf) = 0, tanh(±Inf) = ±1, tanh(±0) = ±0 (tests/test_nonfinite.c). */
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
    /* t >= 0 (or NaN): x's sign bit on it, so tanh(-0) = -0 as in libm and torch */
    const __m512i sign = _mm512_set1_epi32((int)0x80000000);
    return _mm512_castsi512_ps(
        _mm512_or_si512(_mm512_castps_si512(t), _mm512_and_si512(_mm512_castps_si512(x), sign)));
}

/* ---- the low-latency pair of the batch-1 step (step1_avx512.c) ----
 * The recurrence at batch 1 is one dependent chain per step (h -> gates ->
 * c -> tanh(c) -> h), so there latency counts, not throughput.  Both avoid
 * clamps and selects on the data path: out-of-range and non-finite lanes are
 * fixed by one blend at the end, from a mask and value computed off the path.
 *
 * sigmoid512_fast(x) = 1 / (1 + e^−x):  e^−x = 2^n·e^r, n = round(−x·log2 e) by the
 * 1.5·2^23 shift (n's integer in the low bits of s), r = −x − n·ln2 (Cody–Waite),
 * e^r by its degree-7 Taylor polynomial evaluated by Estrin's scheme (depth 3,
 * not 7), 2^n added into the exponent field (valid while the result is normal:
 * x in [−87, 88]; outside, 1 for x > 87, 0 for x < −88 or −Inf, NaN for NaN).
 * tanh512_fast(x): Eigen's 13/6 rational minimax approximation (the one of
 * Eigen 3.4's generic_fast_tanh_float, Estrin instead of Horner), one division;
 * x for |x| < 0.0004, ±1 for |x| > 7.9988, NaN for NaN.
 * Errors against libm (expf, tanhf), every float in [−100, 100] with a normal
 * result (tests/test_step1.c sweeps them): σ ≤ 4 ulp, tanh ≤ 5 ulp (the
 * exact pair above: 4 and 6).  About 40 and 29 cycles of latency on Zen 5
 * against 66 and 77 for the exact pair. */
T512 static inline __attribute__((always_inline)) __m512 sigmoid512_fast(__m512 x) {
    const __m512 shift = _mm512_set1_ps(12582912.0f); /* 1.5·2^23 */
    __m512 s = _mm512_fmadd_ps(x, _mm512_set1_ps(-1.44269504088896341f), shift);
    __m512 n = _mm512_sub_ps(s, shift);
    /* rn = x + n·ln2 = −r */
    __m512 rn = _mm512_fmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    rn = _mm512_fmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), rn);
    /* e^r = e^−rn: Taylor terms with alternating signs, Estrin */
    __m512 r2 = _mm512_mul_ps(rn, rn);
    __m512 a0 = _mm512_fnmadd_ps(rn, _mm512_set1_ps(1.0f), _mm512_set1_ps(1.0f));
    __m512 a1 = _mm512_fnmadd_ps(rn, _mm512_set1_ps(1.0f / 6.0f), _mm512_set1_ps(0.5f));
    __m512 a2 = _mm512_fnmadd_ps(rn, _mm512_set1_ps(1.0f / 120.0f), _mm512_set1_ps(1.0f / 24.0f));
    __m512 a3 = _mm512_fnmadd_ps(rn, _mm512_set1_ps(1.0f / 5040.0f), _mm512_set1_ps(1.0f / 720.0f));
    __m512 r4 = _mm512_mul_ps(r2, r2);
    __m512 b0 = _mm512_fmadd_ps(a1, r2, a0);
    __m512 b1 = _mm512_fmadd_ps(a3, r2, a2);
    __m512 p = _mm512_fmadd_ps(b1, r4, b0);
    __m512i e = _mm512_add_epi32(_mm512_castps_si512(p), _mm512_slli_epi32(_mm512_castps_si512(s), 23));
    __m512 one = _mm512_set1_ps(1.0f);
    __m512 y = _mm512_div_ps(one, _mm512_add_ps(one, _mm512_castsi512_ps(e)));
    /* off the path: lanes outside [−88, 87] or NaN */
    __mmask16 lo = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-88.0f), _CMP_NGE_UQ); /* x < −88 or NaN */
    __mmask16 hi = _mm512_cmp_ps_mask(x, _mm512_set1_ps(87.0f), _CMP_GT_OQ);
    __m512 fix = _mm512_mask_blend_ps(hi, _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), x), one);
    return _mm512_mask_blend_ps(lo | hi, y, fix);
}

T512 static inline __attribute__((always_inline)) __m512 tanh512_fast(__m512 x) {
    __m512 y = _mm512_mul_ps(x, x);
    __m512 y2 = _mm512_mul_ps(y, y);
    __m512 y4 = _mm512_mul_ps(y2, y2);
    /* numerator x·(a1 + a3 y + … + a13 y^6), denominator b0 + b2 y + b4 y^2 + b6 y^3 */
    __m512 u0 = _mm512_fmadd_ps(y, _mm512_set1_ps(6.37261928875436e-04f), _mm512_set1_ps(4.89352455891786e-03f));
    __m512 u1 = _mm512_fmadd_ps(y, _mm512_set1_ps(5.12229709037114e-08f), _mm512_set1_ps(1.48572235717979e-05f));
    __m512 u2 = _mm512_fmadd_ps(y, _mm512_set1_ps(2.00018790482477e-13f), _mm512_set1_ps(-8.60467152213735e-11f));
    __m512 w0 = _mm512_fmadd_ps(y2, u1, u0);
    __m512 w1 = _mm512_fmadd_ps(y2, _mm512_set1_ps(-2.76076847742355e-16f), u2);
    __m512 num = _mm512_mul_ps(x, _mm512_fmadd_ps(y4, w1, w0));
    __m512 v0 = _mm512_fmadd_ps(y, _mm512_set1_ps(2.26843463243900e-03f), _mm512_set1_ps(4.89352518554385e-03f));
    __m512 v1 = _mm512_fmadd_ps(y, _mm512_set1_ps(1.19825839466702e-06f), _mm512_set1_ps(1.18534705686654e-04f));
    __m512 den = _mm512_fmadd_ps(y2, v1, v0);
    __m512 t = _mm512_div_ps(num, den);
    /* off the path: tiny |x| -> x; |x| > 7.9988 -> ±1; NaN -> NaN */
    __m512 ax = _mm512_abs_ps(x);
    __mmask16 big = _mm512_cmp_ps_mask(ax, _mm512_set1_ps(7.99881172180175781f), _CMP_GT_OQ);
    __mmask16 keep = _mm512_cmp_ps_mask(ax, _mm512_set1_ps(0.0004f), _CMP_NLT_UQ) & ~big; /* in range, not NaN */
    __m512 sgn1 = _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(_mm512_set1_ps(1.0f)),
        _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32((int)0x80000000))));
    __m512 fix = _mm512_mask_blend_ps(big, x, sgn1);
    return _mm512_mask_blend_ps(keep, fix, t);
}

/* Mask of the first n lanes (none for n <= 0, all 16 for n >= 16). */
static inline __mmask16 lanes16(int n) {
    return n >= 16 ? (__mmask16)0xFFFF : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1);
}

#endif
