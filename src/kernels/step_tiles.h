/* step_tiles.h — what the fused recurrent steps (step_avx512.c for the LSTM,
 * gru_step_avx512.c for the GRU) share: the loop over register tiles and the
 * pragmas of their unrolled tile functions. */
#ifndef LSTM_STEP_TILES_H
#define LSTM_STEP_TILES_H

/* Sanitizers stay out of the tile kernels: their checks on the fully unrolled
 * register tiles take clang minutes to compile.  The kernels' accesses are
 * bounded by lanes16() and the tile shape, and the tests check them bit for
 * bit against the sanitized GEMM + gate kernel path. */
#if defined(__clang__)
#define UNROLL _Pragma("clang loop unroll(full)")
#define NO_SANITIZE __attribute__((no_sanitize("address", "undefined")))
#else
#define UNROLL _Pragma("GCC unroll 4")
#define NO_SANITIZE __attribute__((no_sanitize_address, no_sanitize_undefined))
#endif

/* Covers batch rows [0,B) × unit blocks [u0,u1) with tiles of NR rows × NU
 * blocks, NR·NU <= 4: 4 rows of 1 block for B >= 3, 2 × 2 for B = 2, 1 × 4 for
 * B = 1 (so that 16 chains of fused multiply-adds are in flight), smaller at
 * the edges.  TILE(b, u, NR, NU) is called with constant NR and NU, so each
 * shape is its own unrolled instance with the accumulators in registers. */
#define STEP_FOR_TILES(B, u0, u1, TILE)                                      \
    do {                                                                     \
        const int nu_max_ = (B) >= 3 ? 1 : (B) == 2 ? 2 : 4;                 \
        for (int u_ = (u0); u_ < (u1); u_ += nu_max_) {                      \
            int nu_ = (u1) - u_ < nu_max_ ? (u1) - u_ : nu_max_;             \
            for (int b_ = 0; b_ < (B); b_ += 4) {                            \
                int nr_ = (B) - b_ < 4 ? (B) - b_ : 4;                       \
                switch (nr_ * 8 + nu_) {                                     \
                case 4 * 8 + 1: TILE(b_, u_, 4, 1); break;                   \
                case 3 * 8 + 1: TILE(b_, u_, 3, 1); break;                   \
                case 2 * 8 + 2: TILE(b_, u_, 2, 2); break;                   \
                case 2 * 8 + 1: TILE(b_, u_, 2, 1); break;                   \
                case 1 * 8 + 4: TILE(b_, u_, 1, 4); break;                   \
                case 1 * 8 + 3: TILE(b_, u_, 1, 3); break;                   \
                case 1 * 8 + 2: TILE(b_, u_, 1, 2); break;                   \
                default: TILE(b_, u_, 1, 1); break;                          \
                }                                                            \
            }                                                                \
        }                                                                    \
    } while (0)
#endif
