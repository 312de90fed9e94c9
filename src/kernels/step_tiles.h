/* step_tiles.h — what the fused recurrent steps (step_avx512.c for the LSTM,
 * gru_step_avx512.c for the GRU) share: the loop over register tiles and the
 * pragmas of their unrolled tile functions. */
#ifndef LSTM_STEP_TILES_H
#define LSTM_STEP_TILES_H

#include "internal.h" /* lstm__cpu */

/* Sanitizers stay out of the tile kernels: their checks on the fully unrolled
 * register tiles take clang minutes to compile.  The kernels' accesses are
 * bounded by lanes16() and the tile shape, and the tests check them bit for
 * bit against the sanitized GEMM + gate kernel path. */
#if defined(__clang__)
#define UNROLL _Pragma("clang loop unroll(full)")
#define NO_SANITIZE __attribute__((no_sanitize("address", "undefined")))
#else
#define UNROLL _Pragma("GCC unroll 8")
#define NO_SANITIZE __attribute__((no_sanitize_address, no_sanitize_undefined))
#endif

/* Covers batch rows [0,B) × unit blocks [u0,u1) with tiles of NR rows × NU
 * blocks.  For B >= 3 a tile is one unit block of up to 6 rows (the rows
 * spread evenly over ceil(B / 6) tiles: 64 rows are 2 × 5 + 9 × 6):
 * 24 accumulators, 4 weight vectors and a broadcast fit the 32
 * registers, and each weight vector loaded serves 6 rows.  B = 2 takes 2 × 2
 * and B = 1 takes 1 × 4 (so that 16 chains of fused multiply-adds are in
 * flight), smaller at the edges.  TILE(b, u, NR, NU, PF, UN) is called with constant
 * NR and NU, so each shape is its own unrolled instance with the
 * accumulators in registers; STEP_TILE_SHAPES lists them.
 * rev (0 or 1): walk the tile columns from the last to the first.  No bit
 * depends on the order (each output's chain is within one tile); callers
 * alternate it per step, so a step starts on the weights the one before
 * ended with, still in L2 when a thread's weights exceed it.
 * TILE's sixth argument, UN, is the first block of the tile column walked
 * next (u + NU; with rev the column before, whose first block is u minus the
 * full column width, or -1 after the last): the tile prefetches
 * the act lines of that block (x·W_ihᵀ + b from the GEMM before the loop).
 * The fifth, PF, is the tile's index among the row tiles of its
 * unit block when a next unit block is walked (else -1): tile PF
 * prefetches the PF-th K lines of that block's weights into L2 while it
 * computes (a block's weights, 16·G·K floats, are G·K lines of 64 bytes), so
 * that the next block's first tile (UN) does not wait on L3 or memory.  With two
 * row tiles (B = 7..12) only where lstm__cpu_info.step_pf_tiles2 says so: on
 * Zen 5 the prefetches cost more than they gain there (2 threads, I = 64,
 * H = 1024, T = 100, 3 interleaved pairs, medians of the paired ratios,
 * without against with: B = 7 0.93, B = 8 0.90, B = 9 0.98, B = 12 1.00;
 * fwd-768-b8 0.97.  One tile, B = 4 and 6, 1.04: kept; three, B = 13 and 16,
 * 0.98, and four, B = 24, 1.02: kept); on a Xeon they gain (cpu.c). */
#define STEP_ROWS 6
#define STEP_TILE_SHAPES(X) X(6, 1) X(5, 1) X(4, 1) X(3, 1) X(2, 2) X(2, 1) X(1, 4) X(1, 3) X(1, 2) X(1, 1)
#define STEP_FOR_TILES(B, u0, u1, rev, TILE)                                 \
    do {                                                                     \
        const int nu_max_ = (B) >= 3 ? 1 : (B) == 2 ? 2 : 4;                 \
        const int nt_ = ((B) + STEP_ROWS - 1) / STEP_ROWS;                   \
        const int pft_ = nt_ != 2 || lstm__cpu()->step_pf_tiles2;            \
        const int ng_ = ((u1) - (u0) + nu_max_ - 1) / nu_max_;               \
        for (int g_ = 0; g_ < ng_; g_++) {                                   \
            const int u_ = (u0) + ((rev) ? ng_ - 1 - g_ : g_) * nu_max_;     \
            int nu_ = (u1) - u_ < nu_max_ ? (u1) - u_ : nu_max_;             \
            const int un_ = !(rev) ? u_ + nu_ : g_ + 1 < ng_ ? u_ - nu_max_ : -1; \
            for (int i_ = 0; i_ < nt_; i_++) {                               \
                int b_ = (B) * i_ / nt_, nr_ = (B) * (i_ + 1) / nt_ - b_;    \
                int pf_ = nu_max_ == 1 && pft_ && g_ + 1 < ng_ ? i_ : -1;    \
                switch (nr_ * 8 + nu_) {                                     \
                case 6 * 8 + 1: TILE(b_, u_, 6, 1, pf_, un_); break;         \
                case 5 * 8 + 1: TILE(b_, u_, 5, 1, pf_, un_); break;         \
                case 4 * 8 + 1: TILE(b_, u_, 4, 1, pf_, un_); break;         \
                case 3 * 8 + 1: TILE(b_, u_, 3, 1, pf_, un_); break;         \
                case 2 * 8 + 2: TILE(b_, u_, 2, 2, pf_, un_); break;         \
                case 2 * 8 + 1: TILE(b_, u_, 2, 1, pf_, un_); break;         \
                case 1 * 8 + 4: TILE(b_, u_, 1, 4, pf_, un_); break;         \
                case 1 * 8 + 3: TILE(b_, u_, 1, 3, pf_, un_); break;         \
                case 1 * 8 + 2: TILE(b_, u_, 1, 2, pf_, un_); break;         \
                default: TILE(b_, u_, 1, 1, pf_, un_); break;                \
                }                                                            \
            }                                                                \
        }                                                                    \
    } while (0)
#endif
