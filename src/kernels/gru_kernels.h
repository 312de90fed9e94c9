/* gru_kernels.h — the GRU's AVX-512 kernels (torch.nn.GRU, gates r, z, n).
 * The scalar oracles are lstm__gru_gates_{forward,backward}_ref in
 * src/rnn/gru_cell.c; their layouts (internal.h) are the contract here too.
 * The functions exist on x86-64 with GCC or clang only (compiled with target
 * attributes, no -march); call them only when the CPU has AVX-512F. */
#ifndef LSTM_GRU_KERNELS_H
#define LSTM_GRU_KERNELS_H
#include <stddef.h>

/* ---- point-wise gate math (gru_gates_avx512.c) ----
 * Same arguments and layouts as lstm__gru_gates_forward_ref / _backward_ref:
 *   act [B, lda] (lda >= 4H): in pre_r, pre_z, xn, hn; out r, z, n, hn.
 *   h [B,ldh] = (h_prev − n)·z + n;  h_prev [B,ldhp] (NULL = zeros).
 * Forward: σ and tanh within 2 float32 ulps of libm (simd_avx512.h); the
 * rest (r·hn, xn + r·hn, h_prev − n, ·z, + n) rounded as the oracle does,
 * each operation separately.  Backward: only + − ·, in the oracle's order:
 * the same bits.  dgx may alias act with ldgx = lda. */
void lstm__gru_gates_forward_avx512(float *act, int lda, float *h, int ldh, const float *h_prev, int ldhp, int B, int H);
void lstm__gru_gates_backward_avx512(float *dgx, int ldgx, float *dgh, float *dh_prev, const float *dh, int lddh,
                                     const float *act, int lda, const float *h_prev, int ldhp, int B, int H);

/* ---- unit-interleaved packing for a fused step (gru_step_avx512.c) ----
 * W [G·H, K] (row stride ldw; G gates of H rows stacked, e.g. GRU W_hh
 * [3H, H] or W_ih [3H, I] with G = 3) is packed into P, of
 * lstm__pack_gate_units_size(G, H, K) floats (64-byte alignment is best):
 *   P[((u·K + k)·G + q)·16 + j] = W[q·H + 16u + j][k]   (0 where 16u + j >= H)
 * for unit block u in [0, ceil(H/16)), depth k, gate q, lane j: per depth the
 * G gates of a block are 16·G contiguous floats.  With G = 4 this is the
 * LSTM's lstm__pack_units layout. */
size_t lstm__pack_gate_units_size(int G, int H, int K);
void lstm__pack_gate_units(float *P, int G, int H, int K, const float *W, int ldw);
/* The same for unit blocks [u0, u1) only (the rest of P untouched): disjoint
 * ranges can be packed by different threads. */
void lstm__pack_gate_units_range(float *P, int G, int H, int K, const float *W, int ldw, int u0, int u1);

/* ---- the fused GRU step (gru_step_avx512.c) ----
 * One time step for batch rows [0,B) and unit blocks [u0,u1) of 16 units
 * (0 <= u0 <= u1 <= ceil(H/16)).  Per row and unit j, four sums, each one
 * in-order chain of fused multiply-adds over k like the AVX2/AVX-512 GEMM
 * kernels (so the step has the bits of lstm_gemm_* with beta = 1 into act,
 * then lstm__gru_gates_forward_avx512):
 *   x NULL (input projections hoisted): pre_r, pre_z, xn start from act
 *       columns [0,3H) as the caller stored them (b_ih + b_hh + x·W_ihᵀ for
 *       r and z, b_in + x·W_inᵀ for n);
 *   x given [B, ldx] (one-step streaming): pre_r, pre_z, xn start from
 *       bias[0,3H) then add x·W_ihᵀ over k in [0, in), pih = W_ih [3H, in]
 *       packed with G = 3;
 *   hn starts from bias[3H,4H) (b_hn);
 *   then pre_r, pre_z and hn add h·W_hhᵀ over k in [0, H), phh = W_hh [3H, H]
 *   packed with G = 3 (h [B, ldh] is h_prev; NULL = zeros: no products).
 * bias [4H] = (b_ir + b_hr, b_iz + b_hz, b_in, b_hn), or NULL for a net
 * without biases (zeros).  Writes act [B, lda] columns (r, z, n, hn) and
 * h_out [B, ldho] = (h − n)·z + n for the units of [16·u0, min(16·u1, H)).
 * A caller that splits [0, ceil(H/16)) among threads gets the same bits as one
 * call, in either order of the blocks (rev 0 or 1); every thread reads all
 * of h, so h_out must not overlap h. */
void lstm__gru_step_avx512(int B, int H, int in, int u0, int u1, int rev, float *act, int lda, const float *x, int ldx,
                           const float *pih, const float *bias, const float *h, int ldh, const float *phh,
                           float *h_out, int ldho);
#endif
