/* gru_simd_avx512.h — the GRU gate math on 16 lanes, shared by
 * gru_gates_avx512.c and gru_step_avx512.c so that both round alike.
 * Include after simd_avx512.h, from T512 functions only. */
#ifndef LSTM_GRU_SIMD_AVX512_H
#define LSTM_GRU_SIMD_AVX512_H
#include "simd_avx512.h"

/* r = σ(pre_r), z = σ(pre_z), n = tanh(xn + r·hn); returns h' = (hp − n)·z + n.
 * Every + − · rounded on its own, in the order of lstm__gru_gates_forward_ref
 * (separate intrinsics: no compiler contracts them into a fused multiply-add). */
T512 static inline __attribute__((always_inline)) __m512
gru_cell512(__m512 pre_r, __m512 pre_z, __m512 xn, __m512 hn, __m512 hp, __m512 *r, __m512 *z, __m512 *n) {
    *r = sigmoid512(pre_r);
    *z = sigmoid512(pre_z);
    *n = tanh512(_mm512_add_ps(xn, _mm512_mul_ps(*r, hn)));
    return _mm512_add_ps(_mm512_mul_ps(_mm512_sub_ps(hp, *n), *z), *n);
}
#endif
