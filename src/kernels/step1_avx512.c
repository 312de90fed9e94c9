/* step1_avx512.c — the recurrent step at batch 1 (streaming, sampling, audio),
 * LSTM and GRU (the GRU as four act columns pre_r, pre_z, xn, hn: the same
 * matrix-vector code, its own point-wise tail; see internal.h):
 * one layer's [W_ih | W_hh] packed once per set of weights into one linear
 * stream, and a step that holds the four gates of up to 64 units in zmm
 * registers while it walks that stream once.  No per-call packing, no
 * dispatch per unit block, and at H <= 48 one pass over k does the whole step.
 *
 * Packed layout ("group-major"): the nub = ⌈H/16⌉ blocks of 16 units go
 * into ng groups of as even a size as can be: one group up to 3 blocks (H <=
 * 48, the whole pack in L1); up to H = 128, one group per block where a block
 * fits in 3/4 of L1 (I = 1: the pack is 1.1 to 5.5 L1s, a block of 13-33 KB stays
 * in L1 from one step to the next), else ⌈nub/2⌉ groups of 1 or 2 blocks up to
 * H = 96 and ⌈nub/4⌉ groups of 3 or 4 past it (groups_of).
 * Groups are independent (their own units, their own sums), so the order they
 * run in does not change a bit: steps alternate it (rev), and the groups a
 * step ends with, still in L1 (or L2), are the ones the next step starts with
 * ("zigzag"; past L1 a plain cyclic walk over the pack misses every line).  Group g has blocks [b0, b1) with b0 = ⌊nub·g/ng⌋,
 * nv = b1 − b0, and holds, for depth k in [0, K) with K = I + Hout (rows of
 * x first, then of h), block v, slot t < G (G = 4 gates for the LSTM; 3
 * for the GRU, see pack), lane j:
 *   P[16·G·K·b0 + ((k·nv + v)·G + t)·16 + j] = W[t·H + 16(b0 + v) + j][k]  (0 past H)
 * where W[r][k] is W_ih[r][k] for k < I and W_hh[r][k − I] after.  A group
 * is one contiguous run of K·nv·16·G floats, read front to back each step.
 * Except: the LSTM's last block, when it has n <= 8 units (H mod 16 in 1..8),
 * is half-packed (half_last): 2 slots, [i | f] and [g | o], 8 lanes a gate, so
 * the last group's rows are 4·nv − 2 vectors long (row stride and slots as
 * above with that length; the run is shorter, the group's start the same).
 *
 * Rounding: NOT the bits of the batch path (lstm__step_avx512, GEMM + gate
 * kernel).  At batch 1 a step is one dependent chain (h -> pre-activations ->
 * gates -> c -> tanh(c) -> h), so this kernel trades bit-identity with the
 * batch path for latency: each pre-activation is b_ih + b_hh (or 0, or the
 * value already in act) followed by x·W_ihᵀ as one in-order FMA chain (the
 * input GEMM's chain: a step with x given and one with act from
 * lstm__cell_gemm_ih_bias give the same bits), then h·W_hhᵀ as S chains
 * added in a fixed order (S: SPLITS(nv) with one group, 2 for groups of one
 * block); groups of 2-4 blocks instead make h·W_hhᵀ one chain from 0 and add
 * the input's sum to it last ("act last": so the sum over h can be made before
 * x or act exist, lstm__step1_sums); the gates use sigmoid512_fast and tanh512_fast
 * (simd_avx512.h, ≤ 4 and ≤ 6 ulp from libm).  Everything is fixed by the
 * shape and the CPU's L1 size (groups_of), so the bits do not depend on the
 * thread count (threads
 * take whole groups), and lstm_forward at B = 1 and lstm_stream, which both
 * run this kernel, agree bit for bit.  tests/test_step1.c compares it with a
 * float64 step and with lstm__step_avx512 within 1e-5. */
#include <sched.h>
#include <stddef.h>
#include <string.h>

#include "internal.h"

/* Groups of a layer with H units, K = I + Hout rows and G slots a row (see the
 * layout above): one block each while a block (64·G·K bytes) fits in 3/4 of L1
 * (Zen 5's 48 KB: the LSTM to K = 144, H = 128 at I = 1); past it, a block does
 * not stay in L1 either, and the old groups of 1-4 blocks are faster (Zen 5,
 * 1 thread, µs a step, one block against old groups: I = H = 128 3.36 against
 * 2.87; I = 64, H = 128, 2 layers 7.43 against 6.59). */
static int groups_of(int H, int K, int G) {
    const int nub = (H + 15) / 16;
    if (nub <= 3) return 1;
    const long l1d = lstm__cpu()->l1d, l1 = l1d > 0 ? l1d : 32 * 1024;
    if (nub <= 8 && (long)64 * G * K <= l1 / 4 * 3) return nub;
    return nub <= 6 ? (nub + 1) / 2 : (nub + 3) / 4;
}
int lstm__step1_groups(int H, int I, int Hout) { return groups_of(H, I + Hout, 4); }
int lstm__step1_ngroups(int gru, int H, int I) { return groups_of(H, I + H, gru ? 3 : 4); }
/* The pack bytes of groups [g0, g1) of a layer of K rows over that many rows. */
static long group_bytes(int gru, int H, int K, int g0, int g1, int rows) {
    const int nub = (H + 15) / 16, ng = groups_of(H, K, gru ? 3 : 4);
    return (long)((long)nub * g1 / ng - (long)nub * g0 / ng) * (gru ? 3 : 4) * 64 * rows;
}
long lstm__step1_bytes(int gru, int H, int I, int g0, int g1, int rows) { return group_bytes(gru, H, I + H, g0, g1, rows); }
int lstm__gru_step1_groups(int H, int I, int Hout) { return groups_of(H, I + Hout, 3); }
/* First block of group g (g = ng: nub). */
static int block0(int H, int ng, int g) { return (int)((long)((H + 15) / 16) * g / ng); }
/* Whether the LSTM's last block, of n = H − 16(nub − 1) <= 8 units, is half-packed:
 * two slots of [i | f] and [g | o] (8 lanes each) instead of four mostly empty
 * ones.  A row then has 4·nv − 2 vectors in the last group (H = 40: 10 instead of
 * 12), and each lane's sum is the same chain as before, so the same bits. */
static int half_last(int gru, int H) { return !gru && ((unsigned)(H - 1) >> 3 & 1) == 0; }

size_t lstm__step1_pack_size(int H, int I, int Hout) {
    return (size_t)((H + 15) / 16) * (size_t)(I + Hout) * 64;
}

/* Slot t of a row of the pack from W_ih (x rows) and W_hh (h rows): the gate row of W.
 * LSTM: 4 slots, gates i, f, g, o from both.  GRU: 3 slots per row for the act columns
 * (pre_r, pre_z, xn, hn): x rows feed r, z, xn (W_ir, W_iz, W_in), h rows r, z, hn
 * (W_hr, W_hz, W_hn) — the column a row does not feed has no slot (r multiplies hn
 * alone, so xn and hn stay apart). */
static void pack(int gru, float *P, int H, int I, int Hout, const float *w_ih, const float *w_hh) {
    const int K = I + Hout, G = gru ? 3 : 4, ng = groups_of(H, K, G), nub = (H + 15) / 16;
    for (int g = 0; g < ng; g++) {
        const int b0 = block0(H, ng, g), nv = block0(H, ng, g + 1) - b0;
        const int hp = half_last(gru, H) && b0 + nv == nub, rs = nv * G - (hp ? 2 : 0); /* vectors a row */
        float *pg = P + (size_t)16 * G * K * b0;
        for (int k = w_ih ? 0 : I; k < (w_hh ? K : I); k++)
            for (int v = 0; v < nv; v++)
                for (int t = 0; t < G; t++) {
                    const int half = hp && v == nv - 1; /* slot t/2, gate t in lanes 8(t%2) .. */
                    if (half && t % 2) continue;
                    float *d = pg + ((size_t)k * rs + v * G + (half ? t / 2 : t)) * 16;
                    for (int j = 0; j < 16; j++) {
                        const int tt = half ? t + j / 8 : t, r = 16 * (b0 + v) + (half ? j % 8 : j);
                        d[j] = r >= H ? 0.0f
                               : k < I ? w_ih[(size_t)(tt * H + r) * I + k]
                                       : w_hh[(size_t)(tt * H + r) * Hout + (k - I)];
                    }
                }
    }
}

void lstm__step1_pack(float *P, int H, int I, int Hout, const float *w_ih, const float *w_hh) {
    pack(0, P, H, I, Hout, w_ih, w_hh);
}

size_t lstm__gru_step1_pack_size(int H, int I, int Hout) {
    return (size_t)((H + 15) / 16) * (size_t)(I + Hout) * 48;
}

void lstm__gru_step1_pack(float *P, int H, int I, int Hout, const float *w_ih, const float *w_hh) {
    pack(1, P, H, I, Hout, w_ih, w_hh);
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include "simd_avx512.h"

/* Sanitizers stay out of the register tile (as in step_avx512.c); its
 * accesses are bounded by lanes16() and nv, and tests/test_step1.c runs it
 * against the sanitized GEMM + gate path. */
#if defined(__clang__)
#define NO_SANITIZE __attribute__((no_sanitize("address", "undefined")))
#define UNROLL _Pragma("clang loop unroll(full)")
#else
#define NO_SANITIZE __attribute__((no_sanitize_address, no_sanitize_undefined))
#define UNROLL _Pragma("GCC unroll 4")
#endif

/* Loads and stores of n (<= 16) lanes: full blocks without a mask.  A masked
 * store does not forward to later loads, and h and c go straight on to the
 * next step (a stall of tens of cycles per step at small H otherwise). */
T512 __attribute__((always_inline)) static inline __m512 load_n(const float *p, int n) {
    return n >= 16 ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps(lanes16(n), p);
}
T512 __attribute__((always_inline)) static inline void store_n(float *p, int n, __m512 v) {
    if (n >= 16) _mm512_storeu_ps(p, v);
    else _mm512_mask_storeu_ps(p, lanes16(n), v);
}

/* h's partial block (n < 16 lanes) by plain stores of 8, 4, 2 and 1 lanes: the
 * next step broadcasts single floats of h, and a masked store does not forward
 * to them (the next step would wait for it to reach L1, ~20 ns at H = 8). */
T512 __attribute__((always_inline)) static inline void store_fwd(float *p, int n, __m512 v) {
    if (n >= 16) {
        _mm512_storeu_ps(p, v);
        return;
    }
    __m128 q;
    switch (n >> 2) { /* the 4-lane chunk that holds the tail */
    case 0: q = _mm512_extractf32x4_ps(v, 0); break;
    case 1: _mm_storeu_ps(p, _mm512_extractf32x4_ps(v, 0));
            q = _mm512_extractf32x4_ps(v, 1); break;
    case 2: _mm256_storeu_ps(p, _mm512_castps512_ps256(v));
            q = _mm512_extractf32x4_ps(v, 2); break;
    default: _mm256_storeu_ps(p, _mm512_castps512_ps256(v));
             _mm_storeu_ps(p + 8, _mm512_extractf32x4_ps(v, 2));
             q = _mm512_extractf32x4_ps(v, 3); break;
    }
    p += n & ~3;
    if (n & 2) {
        _mm_storel_pi((__m64 *)p, q);
        q = _mm_movehl_ps(q, q);
        p += 2;
    }
    if (n & 1) _mm_store_ss(p, q);
}

/* Partial sums per pre-activation over the rows of h: with one group (H <= 48)
 * the FMA chain over h is split into S = SPLITS(nv) chains (row k into chain
 * k mod S), each its own accumulator (at most 24), added at the end in a fixed
 * order ((p0 + p1) + (p2 + p3)).  There the step is one dependent chain per
 * call (h -> pre-activations -> gates -> c -> tanh(c) -> h) and S chains of
 * H/S FMAs replace one of H.  Groups of one block (H = 49..128) take S = 2:
 * with one chain per gate, 4 in flight, the rows in L1 waited on the FMA
 * latency (Zen 5, 1 thread, `lstm bench --mode step`, ns per step, one chain
 * vs two: H = 56 406 vs 343, 96 1062 vs 1014; S = 3 or 4 gave no more).
 * Groups of 2-4 blocks stream their weights from L2 or L3 and keep one chain
 * (S = 1). */
#define SPLITS(NV) ((NV) == 1 ? 4 : (NV) == 2 ? 3 : 2)

/* The low 8 lanes of a and of b (n <= 8 valid in each) as one vector [a | b]. */
T512 __attribute__((always_inline)) static inline __m512 pair8(__m512 a, __m512 b) {
    return _mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(1, 0, 1, 0));
}
/* The high 8 lanes of v in its low 8. */
T512 __attribute__((always_inline)) static inline __m512 high8(__m512 v) {
    return _mm512_shuffle_f32x4(v, v, _MM_SHUFFLE(3, 2, 3, 2));
}

/* The gates of one block from its pre-activations a0..a3 (half: a0 = [i | f], a1 = [g | o]),
 * and its h (m, m2), c and act.  LSTM: i, f, o = σ, g = tanh, c = f·c_prev + i·g,
 * h = o·tanh(c).  GRU: a0..a3 = pre_r, pre_z, xn, hn; r, z = σ; n = tanh(xn + r·hn);
 * h' = (h − n)·z + n (gru_cell.c); act = r, z, n, hn. */
T512 __attribute__((always_inline)) NO_SANITIZE static inline void
tail(const int GRU, const int half, int H, int j, __m512 a0, __m512 a1, __m512 a2, __m512 a3, const float *h,
     const float *c_prev, float *c, float *m, float *m2, float *act) {
    const int n = H - j;
    if (GRU) {
        __m512 r = sigmoid512_fast(a0), z = sigmoid512_fast(a1);
        __m512 nn = tanh512_fast(_mm512_fmadd_ps(r, a3, a2));
        __m512 hp = h ? load_n(h + j, n) : _mm512_setzero_ps();
        __m512 hn = _mm512_fmadd_ps(_mm512_sub_ps(hp, nn), z, nn);
        store_fwd(m + j, n, hn);
        if (m2) store_n(m2 + j, n, hn);
        if (!act) return;
        store_n(act + j, n, r);
        store_n(act + H + j, n, z);
        store_n(act + 2 * H + j, n, nn);
        store_n(act + 3 * H + j, n, a3);
        return;
    }
    __m512 i, f, gg, o;
    if (half) { /* σ([i | f]), tanh and σ of [g | o], each half to the low lanes */
        const __m512 sif = sigmoid512_fast(a0);
        i = sif, f = high8(sif), gg = tanh512_fast(a1), o = high8(sigmoid512_fast(a1));
    } else {
        i = sigmoid512_fast(a0), f = sigmoid512_fast(a1);
        gg = tanh512_fast(a2), o = sigmoid512_fast(a3);
    }
    __m512 cp = c_prev ? load_n(c_prev + j, n) : _mm512_setzero_ps();
    __m512 cn = _mm512_fmadd_ps(f, cp, _mm512_mul_ps(i, gg));
    __m512 hn = _mm512_mul_ps(o, tanh512_fast(cn));
    store_fwd(m + j, n, hn);
    if (m2) store_n(m2 + j, n, hn);
    store_n(c + j, n, cn);
    if (!act) return;
    store_n(act + j, n, i);
    store_n(act + H + j, n, f);
    store_n(act + 2 * H + j, n, gg);
    store_n(act + 3 * H + j, n, o);
}

/* One group of NV blocks (a constant at every call, so acc stays in registers);
 * HP: its last block half-packed (half_last: acc [v][0] = [i | f], [v][1] = [g | o]).
 * PART (a constant; S = 1, no HP, x NULL, a_in = act): 0 the whole step; 1 only
 * the rows of h [k0, k1), their sums (from 0) stored into part; 2 the rows
 * [k0, k1) continuing from part, then act added and the gates (step1_part).
 * With S = 1 and h given ("act last", AL) a pre-activation is (Σ_k h[k]·W[k],
 * one chain from 0) + (a_in, or bias + x·W_ihᵀ): the sum over h does not wait
 * for the input's (lstm__step1_sums); a column no row of h feeds (the GRU's xn)
 * is its input sum alone. */
T512 __attribute__((always_inline)) NO_SANITIZE static inline void
group(const int GRU, const int NV, const int S, const int HP, const int PART, int k0, int k1, int pf, int H, int I,
      int Hout, int b0, const float *P, const float *a_in, float *act, const float *x, const float *bsum,
      const float *h, const float *c_prev, float *c, float *m, float *m2, float *part) {
    const int j0 = 16 * b0, K = I + Hout;
    const int G = GRU ? 3 : 4; /* slots per row and block (the pack's) */
    const int RS = NV * G - (HP ? 2 : 0); /* vectors a row */
    const float *p = P + (size_t)16 * G * K * b0;
    __m512 acc[4][4][4]; /* [split][block][gate] */
    _Alignas(64) float xs[4][4][16]; /* AL with x: bias + x·W_ihᵀ, added after the rows of h (in memory:
                                      * held in registers through the rows, they cost spills there) */
    if (S == 1 && x) memset(xs, 0, sizeof xs); /* (what gcc's -Wmaybe-uninitialized cannot follow) */
    const int AL = S == 1 && (h != NULL || PART), skip_h = GRU ? 2 : -1; /* (the column no row of h feeds) */
#define USED(v, q) (!HP || (v) < NV - 1 || (q) < 2)
    /* vector (v, q) of a [4, H] array of sums (HP: its [i | f] and [g | o] pairs) */
#define SUMS(src, v, q)                                                                                  \
    (HP && (v) == NV - 1 ? pair8(load_n((src) + 2 * (q) * H + j0 + 16 * (v), H - j0 - 16 * (v)),         \
                                 load_n((src) + (2 * (q) + 1) * H + j0 + 16 * (v), H - j0 - 16 * (v)))    \
                         : load_n((src) + (q) * H + j0 + 16 * (v), H - j0 - 16 * (v)))
    UNROLL for (int v = 0; v < NV; v++) {
        const float *src = !x ? a_in : bsum; /* the sums' start: act, the bias, or 0 */
        UNROLL for (int q = 0; q < 4; q++) {
            if (!USED(v, q)) continue;
            if (PART == 2 && q != skip_h) acc[0][v][q] = SUMS(part, v, q); /* (part 1's) */
            else if (AL && !x && q != skip_h) { /* a_in comes last: its line asked for now (it may be far) */
                acc[0][v][q] = _mm512_setzero_ps();
                if (a_in) _mm_prefetch((const char *)(a_in + q * H + j0 + 16 * v), _MM_HINT_T0);
            }
            else acc[0][v][q] = src ? SUMS(src, v, q) : _mm512_setzero_ps();
            UNROLL for (int s = 1; s < S; s++) acc[s][v][q] = _mm512_setzero_ps();
        }
    }
    /* acc[s][v][q] += a[k] · p[k][v][q]; p advances past the rows.  Past L1 (several groups) the
     * rows two ahead are prefetched where the CPU gains by it (pf: lstm__cpu_info.step1_pf_bytes). */
#define ROW(s, ak, skip)                                                                                 \
    do {                                                                                                 \
        const __m512 bc = _mm512_set1_ps(ak);                                                            \
        if (pf) UNROLL for (int l = 0; l < RS; l++) _mm_prefetch((const char *)(p + 2 * RS * 16 + l * 16), _MM_HINT_T0); \
        UNROLL for (int v = 0; v < NV; v++)                                                              \
            UNROLL for (int q = 0; q < 4; q++)                                                           \
                if (q != (skip) && USED(v, q)) /* slot: q, or 2 for the GRU's hn */                     \
                    acc[s][v][q] = _mm512_fmadd_ps(bc, _mm512_load_ps(p + (v * G + (q < G ? q : 2)) * 16), acc[s][v][q]); \
        p += RS * 16;                                                                                    \
    } while (0)
    /* x: one chain from the bias, in order (the input GEMM's chain, so a step with x
     * given and one with act = bias + x·W_ihᵀ from lstm_gemm give the same bits); the GRU's
     * hn column takes no x rows, its xn column no h rows */
    const int skip_x = GRU ? 3 : -1;
    if (x) for (int k = 0; k < I; k++) ROW(0, x[k], skip_x);
    else p += (size_t)I * RS * 16;
    if (AL && x) /* the input's sums wait in xs; the rows of h start from 0 */
        UNROLL for (int v = 0; v < NV; v++) UNROLL for (int q = 0; q < 4; q++) {
            if (!USED(v, q) || q == skip_h) continue;
            _mm512_storeu_ps(&xs[v][q][0], acc[0][v][q]);
            acc[0][v][q] = _mm512_setzero_ps();
        }
    /* h: row k into partial k mod S, the last Hout mod S rows into partials 0, 1, .. (AL: S = 1) */
    if (h && PART) {
        p += (size_t)k0 * RS * 16;
        for (int k = k0; k < k1; k++) ROW(0, h[k], skip_h);
    } else if (h) {
        int k = 0;
        for (; k + S <= Hout; k += S) UNROLL for (int s = 0; s < S; s++) ROW(s, h[k + s], skip_h);
        UNROLL for (int s = 0; s < S - 1; s++) /* (constant indices: acc stays in registers) */
            if (k + s < Hout) ROW(s, h[k + s], skip_h);
    }
#undef ROW
    if (PART == 1) { /* the sums so far, where PART 2 starts from (the same chains) */
        UNROLL for (int v = 0; v < NV; v++)
            UNROLL for (int q = 0; q < 4; q++) store_n(part + q * H + j0 + 16 * v, H - j0 - 16 * v, acc[0][v][q]);
        return;
    }
    UNROLL for (int v = 0; v < NV; v++)
        UNROLL for (int q = 0; q < 4; q++) {
            if (!USED(v, q)) continue;
            if (S == 2) acc[0][v][q] = _mm512_add_ps(acc[0][v][q], acc[1][v][q]);
            if (S == 3) acc[0][v][q] = _mm512_add_ps(_mm512_add_ps(acc[0][v][q], acc[1][v][q]), acc[2][v][q]);
            if (S == 4)
                acc[0][v][q] = _mm512_add_ps(_mm512_add_ps(acc[0][v][q], acc[1][v][q]),
                                             _mm512_add_ps(acc[2][v][q], acc[3][v][q]));
        }
    if (AL) /* the input's sums last (xs: from the input's rows above, AL && x) */
        UNROLL for (int v = 0; v < NV; v++) UNROLL for (int q = 0; q < 4; q++) {
            if (!USED(v, q) || q == skip_h) continue;
            if (x) acc[0][v][q] = _mm512_add_ps(acc[0][v][q], _mm512_loadu_ps(&xs[v][q][0]));
            else if (a_in) acc[0][v][q] = _mm512_add_ps(acc[0][v][q], SUMS(a_in, v, q));
        }
#undef SUMS
#undef USED
    UNROLL for (int v = 0; v < NV; v++)
        tail(GRU, HP && v == NV - 1, H, j0 + 16 * v, acc[0][v][0], acc[0][v][1], acc[0][v][2], acc[0][v][3], h,
             c_prev, c, m, m2, act);
}

/* The one group of H <= 48 (nv = ⌈H/16⌉ blocks, split chains): run_groups's
 * ng = 1 case and the lean entries below, the same code so the same bits. */
T512 __attribute__((always_inline)) NO_SANITIZE static inline void
one_group(const int GRU, int H, int I, int Hout, const float *P, const float *a_in, float *act, const float *x,
          const float *bsum, const float *h, const float *c_prev, float *c, float *m, float *m2) {
#define ONE(NV, HP) group(GRU, NV, SPLITS(NV), HP, 0, 0, Hout, 0, H, I, Hout, 0, P, a_in, act, x, bsum, h, c_prev, c, m, m2, NULL)
    /* one switch on ⌈H/8⌉ - 1 (blocks and half_last in one; at these sizes each instruction
     * before the chain shows: H = 12 and 16 took 4-6 % longer with nub and hp computed apart) */
    const unsigned kind = (unsigned)(H - 1) >> 3 | (GRU ? 1u : 0u); /* even: half_last */
    switch (kind) {
    case 0: ONE(1, 1); break;
    case 1: ONE(1, 0); break;
    case 2: ONE(2, 1); break;
    case 3: ONE(2, 0); break;
    case 4: ONE(3, 1); break;
    default: ONE(3, 0); break;
    }
#undef ONE
}

T512 __attribute__((always_inline)) NO_SANITIZE static inline void
run_groups(const int GRU, int H, int I, int Hout, int g0, int g1, int rev, const float *P, float *act, const float *x,
           const float *bsum, const float *h, const float *c_prev, float *c, float *m, float *m2, int pf_set) {
    const int nub = (H + 15) / 16, ng = groups_of(H, I + Hout, GRU ? 3 : 4);
    /* the pack bytes this call streams: blocks of groups [g0, g1), the rows it reads (pf_set >= 0:
     * the caller's choice, lstm__step1_layer) */
    const long bytes = group_bytes(GRU, H, I + Hout, g0, g1, Hout + (x ? I : 0));
    const int pf = ng > 1 && (pf_set >= 0 ? pf_set : bytes > lstm__cpu()->step1_pf_bytes);
    if (pf) lstm__step1_pf_note();
    for (int i = g0; i < g1; i++) {
        const int g = rev ? g1 - 1 - (i - g0) : i;
        const int b0 = ng == 1 ? 0 : nub * g / ng;
        const int nv = (ng == 1 ? nub : nub * (g + 1) / ng) - b0;
        const int hp = half_last(GRU, H) && b0 + nv == nub;
#define GRP(NV, S) (hp ? group(GRU, NV, S, 1, 0, 0, Hout, pf, H, I, Hout, b0, P, act, act, x, bsum, h, c_prev, c, m, m2, NULL) \
                       : group(GRU, NV, S, 0, 0, 0, Hout, pf, H, I, Hout, b0, P, act, act, x, bsum, h, c_prev, c, m, m2, NULL))
        if (ng == 1) one_group(GRU, H, I, Hout, P, act, act, x, bsum, h, c_prev, c, m, m2);
        else switch (nv) {
            case 1: GRP(1, 2); break;
            case 2: GRP(2, 1); break;
            case 3: GRP(3, 1); break;
            default: GRP(4, 1); break;
            }
#undef GRP
    }
}

T512 NO_SANITIZE void lstm__step1_avx512(int H, int I, int Hout, int g0, int g1, int rev, const float *P,
                                         float *act, const float *x, const float *bsum, const float *h,
                                         const float *c_prev, float *c, float *m, float *m2) {
    run_groups(0, H, I, Hout, g0, g1, rev, P, act, x, bsum, h, c_prev, c, m, m2, -1);
}

T512 NO_SANITIZE void lstm__gru_step1_avx512(int H, int I, int g0, int g1, int rev, const float *P, float *act,
                                             const float *x, const float *bsum, const float *h, float *m, float *m2) {
    run_groups(1, H, I, H, g0, g1, rev, P, act, x, bsum, h, NULL, NULL, m, m2, -1);
}

T512 NO_SANITIZE void lstm__step1_layer(int gru, int H, int I, int g0, int g1, int rev, const float *P, float *act,
                                        const float *x, const float *bsum, const float *h, const float *c_prev,
                                        float *c, float *m, int pf) {
    if (gru) run_groups(1, H, I, H, g0, g1, rev, P, act, x, bsum, h, NULL, NULL, m, NULL, pf);
    else run_groups(0, H, I, H, g0, g1, rev, P, act, x, bsum, h, c_prev, c, m, NULL, pf);
}

/* Groups [g0, g1) over the rows of h [k0, k1) only: part 1 stores the sums
 * (from 0) into part, part 2 continues from them, adds act and runs the gates.
 * The step's chains cut in two (each group one chain a sum: S = 1, act last),
 * so the same bits as run_groups (lstm__step1_sums_ok says where it applies). */
T512 __attribute__((always_inline)) NO_SANITIZE static inline void
run_part(const int GRU, const int PART, int H, int I, int g0, int g1, int rev, int k0, int k1, const float *P,
         float *part, float *act, const float *h, const float *c_prev, float *c, float *m, int pf_set) {
    const int nub = (H + 15) / 16, ng = groups_of(H, I + H, GRU ? 3 : 4);
    const long bytes = group_bytes(GRU, H, I + H, g0, g1, k1 - k0);
    const int pf = k1 > k0 && (pf_set >= 0 ? pf_set : bytes > lstm__cpu()->step1_pf_bytes);
    if (pf) lstm__step1_pf_note();
    for (int i = g0; i < g1; i++) {
        const int g = rev ? g1 - 1 - (i - g0) : i, b0 = nub * g / ng, nv = nub * (g + 1) / ng - b0;
#define PG(NV) group(GRU, NV, 1, 0, PART, k0, k1, pf, H, I, H, b0, P, act, act, NULL, NULL, h, c_prev, c, m, NULL, part)
        switch (nv) {
        case 2: PG(2); break;
        case 3: PG(3); break;
        default: PG(4); break;
        }
#undef PG
    }
}

T512 NO_SANITIZE static void step1_part(int gru, int which, int H, int I, int g0, int g1, int rev, int k0, int k1,
                                        const float *P, float *part, float *act, const float *h, const float *c_prev,
                                        float *c, float *m, int pf) {
    if (gru && which == 1) run_part(1, 1, H, I, g0, g1, rev, k0, k1, P, part, act, h, NULL, NULL, m, pf);
    else if (gru) run_part(1, 2, H, I, g0, g1, rev, k0, k1, P, part, act, h, NULL, NULL, m, pf);
    else if (which == 1) run_part(0, 1, H, I, g0, g1, rev, k0, k1, P, part, act, h, c_prev, c, m, pf);
    else run_part(0, 2, H, I, g0, g1, rev, k0, k1, P, part, act, h, c_prev, c, m, pf);
}

T512 NO_SANITIZE void lstm__step1_sums(int gru, int H, int I, int g0, int g1, int rev, const float *P, float *part,
                                       const float *h, int pf) {
    step1_part(gru, 1, H, I, g0, g1, rev, 0, H, P, part, NULL, h, NULL, NULL, NULL, pf);
}

T512 NO_SANITIZE void lstm__step1_finish(int gru, int H, int I, int g0, int g1, int rev, const float *P,
                                         const float *part, float *act, const float *h, const float *c_prev, float *c,
                                         float *m) {
    step1_part(gru, 2, H, I, g0, g1, rev, H, H, P, (float *)part, act, h, c_prev, c, m, -1);
}

/* One group (H <= 48) in one call with few stores: the cheapest way from a
 * caller to the kernel.  At these sizes a step is a ~100-cycle latency chain,
 * and the call's own work (argument set-up, the next step's bias and x
 * products) overlaps the previous step's chain only while the store queue
 * has room: every store (a spill, a pushed argument, an act store) is held
 * until the chain that precedes it retires.  Ten more stores per step cost
 * H = 8 about 17 ns (of 40).  So: register arguments, a plan made once, no
 * act (inference), h and c in place.  The same group() code and arguments as
 * lstm__step1_avx512 with one group, so the same bits. */
T512 NO_SANITIZE void lstm__step1_one_avx512(const lstm__step1_plan *p, const float *x, const float *a0, float *h,
                                             float *c, float *y) {
    one_group(0, p->H, p->I, p->H, p->P, a0, NULL, x, p->bsum, h, c, c, h, y);
}

T512 NO_SANITIZE void lstm__gru_step1_one_avx512(const lstm__step1_plan *p, const float *x, const float *a0, float *h,
                                                 float *c, float *y) {
    (void)c; /* (a GRU has none) */
    one_group(1, p->H, p->I, p->H, p->P, a0, NULL, x, p->bsum, h, NULL, NULL, h, y);
}
#endif

/* ---- the engine's entry: groups split over the team's tasks ---- */

typedef struct {
    int gru, H, I, Hout, ng, rev;
    const float *P, *x, *bsum, *h, *c_prev, *a_next;
    float *act, *c, *m, *m2;
} step1_job;

static void step1_groups(const step1_job *j, int g0, int g1) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    if (j->ng > 1) {
        /* What a task reads first was written elsewhere: h by the other tasks
         * of the previous step (on other cores), and the next step's act
         * (bias + x·W_ihᵀ) by the input GEMM long ago.  Their lines are asked
         * for at once here, into L1 (a few KB at batch 1), instead of one miss
         * at a time as the rows reach them.  On one thread h is this core's
         * own and its prefetches cost ~16 instructions; the act one still helps.  Zen 5, 2 threads, interleaved pairs: stream-256 6.9-7.3 -> 6.2-6.4 ms
         * with h (the GRU's 6.1 -> 5.4-5.6), then about 2 % more with the next
         * act (6.14-6.39 -> 6.03-6.22 ms; the GRU's 5.54-5.69 -> 5.40-5.68). */
        for (int k = 0; j->h && k < j->Hout; k += 16) __builtin_prefetch(j->h + k, 0, 3);
        const int u0 = 16 * block0(j->H, j->ng, g0), u1 = 16 * block0(j->H, j->ng, g1);
        for (int q = 0; j->a_next && q < 4; q++) /* the act columns, 4 of H (both cells) */
            for (int u = u0; u < u1; u += 16) __builtin_prefetch(j->a_next + (size_t)q * j->H + u, 0, 3);
    }
    if (j->gru) lstm__gru_step1_avx512(j->H, j->I, g0, g1, j->rev, j->P, j->act, j->x, j->bsum, j->h, j->m, j->m2);
    else lstm__step1_avx512(j->H, j->I, j->Hout, g0, g1, j->rev, j->P, j->act, j->x, j->bsum, j->h, j->c_prev, j->c,
                            j->m, j->m2);
#else
    (void)j, (void)g0, (void)g1;
#endif
}

static void step1_task(void *arg, int task, int ntasks) {
    const step1_job *j = arg;
    int g0 = (int)((long)j->ng * task / ntasks), g1 = (int)((long)j->ng * (task + 1) / ntasks);
    if (g0 < g1) step1_groups(j, g0, g1);
}

static void step1_run(const step1_job *j, lstm__team *team) {
    int nt = team ? lstm__team_size(team) : 1;
    if (nt > j->ng) nt = j->ng;
    if (nt > 1) lstm__team_run_tasks(team, nt, step1_task, (void *)j);
    else step1_groups(j, 0, j->ng); /* one thread: straight to the kernel */
}

void lstm__step1(lstm__team *team, int H, int I, int Hout, int rev, const float *P, float *act, const float *a_next,
                 const float *x, const float *bsum, const float *h, const float *c_prev, float *c, float *m, float *m2) {
    step1_job j = {0, H, I, Hout, groups_of(H, I + Hout, 4), rev, P, x, bsum, h, c_prev, a_next, act, c, m, m2};
    step1_run(&j, team);
}

void lstm__gru_step1(lstm__team *team, int H, int I, int Hout, int rev, const float *P, float *act,
                     const float *a_next, const float *x, const float *bsum, const float *h, const float *c_prev,
                     float *c, float *m, float *m2) {
    (void)c_prev, (void)c;
    step1_job j = {1, H, I, Hout, groups_of(H, I + Hout, 3), rev, P, x, bsum, h, NULL, a_next, act, NULL, m, m2};
    step1_run(&j, team);
}

/* ---- a sequence on two threads with the hand-off overlapped (lstm__step1_seq2) ----
 * With the step split over two threads, each waits at every step for the
 * other's half of h (Xeon, stream-256: 7.0-7.4 us a step against 5.35-5.70
 * for either half alone).  Here thread 0 owns units [0, kA) and starts step s
 * on rows [0, kA) of h_{s-1}, its own, storing the sums; only then does it
 * need thread 1's rows [kA, H).  Thread 1 needs thread 0's rows first, and
 * takes them as thread 0 finishes a step, half a step before thread 0 needs
 * its own.  So each waits only for a step the other finished half a step
 * earlier.  The chains are those of the whole step (groups of 2-4 blocks
 * keep one chain a sum; part 1 stores it and part 2 goes on from it), so the
 * bits equal lstm__step1's on any team.  The team runs the two tasks at
 * once: task 0 on the caller, task 1 on the worker, which the caller never
 * takes while task 0 waits on it (lstm__team_run_tasks takes further tasks
 * only after its own). */
int lstm__step1_sums_ok(int gru, int H, int I) {
    const int nub = (H + 15) / 16, ng = groups_of(H, I + H, gru ? 3 : 4);
    /* every group of 2-4 blocks (S = 1, act last: one chain a sum; the cases run_part has), none
     * half-packed */
    return ng >= 2 && nub >= 2 * ng && nub <= 4 * ng && !half_last(gru, H);
}
int lstm__step1_seq2_ok(int gru, int H, int I) {
    /* (groups_of makes them 3 or 4 here) two or more a side */
    return lstm__step1_sums_ok(gru, H, I) && groups_of(H, I + H, gru ? 3 : 4) >= 4;
}

static int seq2_count;
int lstm__step1_seq2_runs(void) { return __atomic_load_n(&seq2_count, __ATOMIC_RELAXED); }

typedef struct {
    _Alignas(64) int done[2][16]; /* steps finished by thread 0, 1 (own lines) */
    int gru, H, I, T, rev0, ng, kA;
    const float *P;
    float *part; /* [4, H]: thread 0's part-1 sums */
    void (*bufs)(void *ctx, int s, lstm__step1_bufs *b);
    void *ctx;
} seq2_job;

/* Spins until *p >= v; past 200 pauses (several µs; a step takes a few) it yields
 * the CPU at each check, so that two threads on one CPU (a busy or limited
 * machine) still go on. */
static void seq2_wait(const int *p, int v) {
    for (long i = 0; __atomic_load_n(p, __ATOMIC_ACQUIRE) < v; i++) {
        if (i >= 200) sched_yield();
#if defined(__x86_64__) || defined(__i386__)
        else __builtin_ia32_pause();
#endif
    }
}

static void seq2_task(void *arg, int task, int ntasks) {
    (void)ntasks;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    seq2_job *j = arg;
    const int H = j->H, I = j->I, half = j->ng / 2, kA = j->kA;
    const int g0 = task ? half : 0, g1 = task ? j->ng : half;
    for (int s = 0; s < j->T; s++) {
        lstm__step1_bufs b;
        j->bufs(j->ctx, s, &b);
        const int rev = (j->rev0 + s) & 1;
        if (task == 0 && b.h) {
            step1_part(j->gru, 1, H, I, g0, g1, rev, 0, kA, j->P, j->part, b.act, b.h, b.c_prev, b.c, b.m, -1);
            seq2_wait(&j->done[1][0], s); /* thread 1's rows of h_{s-1} */
            for (int k = kA; k < H; k += 16) __builtin_prefetch(b.h + k, 0, 3);
            step1_part(j->gru, 2, H, I, g0, g1, rev, kA, H, j->P, j->part, b.act, b.h, b.c_prev, b.c, b.m, -1);
        } else {
            if (task) seq2_wait(&j->done[0][0], s); /* thread 0's rows of h_{s-1} */
            for (int k = 0; b.h && task && k < kA; k += 16) __builtin_prefetch(b.h + k, 0, 3);
            if (j->gru) lstm__gru_step1_avx512(H, I, g0, g1, rev, j->P, b.act, NULL, NULL, b.h, b.m, NULL);
            else lstm__step1_avx512(H, I, H, g0, g1, rev, j->P, b.act, NULL, NULL, b.h, b.c_prev, b.c, b.m, NULL);
        }
        __atomic_store_n(&j->done[task][0], s + 1, __ATOMIC_RELEASE);
    }
#else
    (void)arg, (void)task;
#endif
}

int lstm__step1_seq2(lstm__team *team, int gru, int H, int I, int T, int rev0, const float *P, float *part,
                     void (*bufs)(void *ctx, int s, lstm__step1_bufs *b), void *ctx) {
    /* exactly 2 threads: on one, run_tasks would run task 0 before task 1, and task 0 would
     * wait for task 1 forever */
    if (lstm__team_size(team) != 2 || !lstm__step1_seq2_ok(gru, H, I)) return 0;
    seq2_job j = {.gru = gru, .H = H, .I = I, .T = T, .rev0 = rev0, .ng = groups_of(H, I + H, gru ? 3 : 4),
                  .P = P, .part = part, .bufs = bufs, .ctx = ctx};
    j.kA = 16 * block0(H, j.ng, j.ng / 2);
    __atomic_add_fetch(&seq2_count, 1, __ATOMIC_RELAXED);
    lstm__team_run_tasks(team, 2, seq2_task, &j);
    return 1;
}
