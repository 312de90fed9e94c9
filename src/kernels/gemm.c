/* gemm.c — the matrix products of the LSTM engine: naive reference loops, a
 * cache-blocked driver with packed panels, a portable micro-kernel, and the
 * run-time choice among it and the SIMD kernels (gemm_avx2.c, gemm_avx512.c).
 *
 * Blocking (BLIS order): for each column block jc of NC, for each depth block
 * pc of KC, pack B[pc.., jc..] into nr-wide panels (unless prepacked), then for
 * each row block ic of MC pack A[ic.., pc..] into mr-tall panels and run the
 * micro-kernel over the tiles, A panel outer (it stays in L1), B panels inner
 * (the B block stays in L2).  The first depth block starts from beta*C, later
 * ones from C, so each C element is a single in-order sum over k. */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gemm_impl.h"
#include "internal.h"

/* Largest blocks (the packing buffers' sizes); the ones used are chosen at
 * run time from the CPU's caches (lstm__cpu in cpu.c): kc <= KC, nc <= NC. */
#define KC 256 /* depth block */
#define NC 512 /* column block (multiple of every nr) */
#define MC 384 /* row block (multiple of every mr used: 4, 6, 8, 12, 16) */
#ifndef MT_TASKS
#define MT_TASKS 2 /* tasks per thread in the _mt calls */
#endif
#ifndef PREFETCH
#define PREFETCH 3
#endif
#ifndef DIRECT_M
#define DIRECT_M 128 /* nn with at most this many rows reads B in place */
#endif

/* ---------------------------------------------------------------- reference */

/* Element (m, k) of A at A[m*am + k*ak]; (k, n) of B at B[k*bk + n*bn]. */
static void gemm_ref(int M, int N, int K, const float *A, ptrdiff_t am, ptrdiff_t ak,
                     const float *B, ptrdiff_t bk, ptrdiff_t bn, float *C, int ldc, float beta) {
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            float acc = beta != 0.0f ? C[(ptrdiff_t)m * ldc + n] : 0.0f;
            for (int k = 0; k < K; k++) {
                float p = A[m * am + k * ak] * B[k * bk + n * bn];
                acc = acc + p;
            }
            C[(ptrdiff_t)m * ldc + n] = acc;
        }
}

void lstm_gemm_nt_ref(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                      float *C, int ldc, float beta) {
    gemm_ref(M, N, K, A, lda, 1, B, 1, ldb, C, ldc, beta);
}
void lstm_gemm_nn_ref(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                      float *C, int ldc, float beta) {
    gemm_ref(M, N, K, A, lda, 1, B, ldb, 1, C, ldc, beta);
}
void lstm_gemm_tn_ref(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                      float *C, int ldc, float beta) {
    gemm_ref(M, N, K, A, 1, lda, B, ldb, 1, C, ldc, beta);
}

/* ---------------------------------------------------------------- portable kernel */

#define GMR 4
#define GNR 16

/* Separate multiply and add (the same rounding as gemm_ref). */
static void kern_generic(int kc, const float *a, ptrdiff_t rsa, ptrdiff_t csa, const float *b, ptrdiff_t rsb,
                         ptrdiff_t pstride, float *c, ptrdiff_t ldc, int m, int n, int load_c,
                         const float *bias) {
    (void)pstride;
    (void)rsa; /* packed A only (direct_a = 0): rsa = 1, csa = GMR */
    float acc[GMR][GNR];
    for (int i = 0; i < GMR; i++)
        for (int j = 0; j < GNR; j++)
            acc[i][j] = j >= n || i >= m ? 0.0f : bias ? bias[j] : load_c == 1 ? c[i * ldc + j] : 0.0f;
    for (int k = 0; k < kc; k++) {
        const float *bk = b + k * rsb, *ak = a + k * csa;
        for (int i = 0; i < GMR; i++) {
            float ai = ak[i];
            for (int j = 0; j < GNR; j++) {
                float p = ai * bk[j];
                acc[i][j] = acc[i][j] + p;
            }
        }
    }
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) c[i * ldc + j] = load_c == 2 ? c[i * ldc + j] + acc[i][j] : acc[i][j];
}

static const lstm__gemm_kdesc kd_generic = {"generic", GMR, GNR, 0, 0, kern_generic, NULL};

/* ---------------------------------------------------------------- dispatch */

static int kernel_choice = -1; /* -1: not resolved yet */

int lstm_gemm_kernel_available(int k) { return lstm__cpu_has(k); }

static const char *const kernel_names[LSTM_GEMM_NKERNELS] = {"ref", "generic", "avx2", "avx512"};

const char *lstm_gemm_kernel_name(int k) {
    return k >= 0 && k < LSTM_GEMM_NKERNELS ? kernel_names[k] : "?";
}

int lstm_gemm_kernel(void) {
    int k = __atomic_load_n(&kernel_choice, __ATOMIC_RELAXED);
    if (k >= 0) return k;
    k = lstm__kernel_gemm_default(); /* dispatch.c decides */
    __atomic_store_n(&kernel_choice, k, __ATOMIC_RELAXED);
    return k;
}

int lstm_gemm_set_kernel(int k) {
    if (!lstm_gemm_kernel_available(k)) return -1;
    __atomic_store_n(&kernel_choice, k, __ATOMIC_RELAXED);
    return 0;
}

static const lstm__gemm_kdesc *kdesc(int k) {
    switch (k) {
#if LSTM_X86
    case LSTM_GEMM_AVX2: return &lstm__gemm_kd_avx2;
    case LSTM_GEMM_AVX512: return &lstm__gemm_kd_avx512;
#endif
    default: return &kd_generic;
    }
}

/* ---------------------------------------------------------------- driver */

/* Per-thread packing buffers, allocated with the thread (no per-call allocation). */
static _Thread_local float pack_a[MC * KC] __attribute__((aligned(64)));
static _Thread_local float pack_b[KC * NC] __attribute__((aligned(64)));

typedef struct {
    int M, N, K;
    const float *A; ptrdiff_t am, ak;
    const float *B; ptrdiff_t bk, bn; /* NULL when prepacked */
    const float *P;                  /* prepacked panels [ceil(N/nr)][K][nr], or NULL */
    const float *PA;                 /* prepacked A panels [ceil(M/mr)][K][mr] (pack_a_block over all K), or NULL */
    float *C; ptrdiff_t ldc;
    int beta;                        /* 0: C = sum, 1: C + (k in order), 2: C + (the sum from 0; K <= kc) */
    const lstm__gemm_kdesc *kd;
    const float *bias;               /* [N] or NULL: C starts from bias in every row (beta = 0) */
    int kc, nc;                      /* blocking (lstm__cpu) */
} gemm_job;

/* A[m0..m0+mc, k0..k0+kc] -> panels of mr rows: dst[p*kc*mr + k*mr + i], zero-padded. */
static void pack_a_block(float *dst, const gemm_job *g, int m0, int mc, int k0, int kc,
                         const lstm__gemm_kdesc *kd) {
    const int mr = kd->mr;
    if (g->am == 1 && g->ak != 1) {
        /* Aᵀ: 8 rows k of the block at a time (each row read in order, and 8 rows
         * stay in L1 even when lda is a multiple of 4 KiB), copied panel by
         * panel (each panel's 8 x mr floats written whole) with fixed-size copies. */
        const int full = mc / mr * mr;
        for (int kb = 0; kb < kc; kb += 8) {
            const int ke = kc - kb < 8 ? kc : kb + 8;
            for (int p = 0; p < mc; p += mr) {
                float *dp = dst + (ptrdiff_t)p * kc;
                const float *sp = g->A + (ptrdiff_t)k0 * g->ak + m0 + p;
                if (p < full && mr == 12)
                    for (int k = kb; k < ke; k++) memcpy(dp + k * 12, sp + k * g->ak, 12 * sizeof(float));
                else if (p < full && mr == 8)
                    for (int k = kb; k < ke; k++) memcpy(dp + k * 8, sp + k * g->ak, 8 * sizeof(float));
                else if (p < full && mr == 6)
                    for (int k = kb; k < ke; k++) memcpy(dp + k * 6, sp + k * g->ak, 6 * sizeof(float));
                else
                    for (int k = kb; k < ke; k++)
                        for (int i = 0; i < mr; i++) dp[k * mr + i] = p + i < mc ? sp[k * g->ak + i] : 0.0f;
            }
        }
        return;
    }
    for (int p = 0; p < mc; p += mr) {
        int rows = mc - p < mr ? mc - p : mr;
        float *d = dst + (ptrdiff_t)p * kc;
        const float *s = g->A + (ptrdiff_t)(m0 + p) * g->am + (ptrdiff_t)k0 * g->ak;
        if (g->ak == 1) {
            if (kd->pack_t8) { /* 8 rows at a time */
                for (int i0 = 0; i0 < mr; i0 += 8) {
                    int r = rows - i0 < 0 ? 0 : rows - i0 > 8 ? 8 : rows - i0;
                    kd->pack_t8(d + i0, mr, r ? s + i0 * g->am : s, g->am, r, mr - i0 < 8 ? mr - i0 : 8, kc);
                }
                continue;
            }
            for (int i = 0; i < rows; i++) {
                const float *si = s + i * g->am;
                for (int k = 0; k < kc; k++) d[k * mr + i] = si[k];
            }
        } else {
            for (int k = 0; k < kc; k++) {
                const float *sk = s + k * g->ak;
                for (int i = 0; i < rows; i++) d[k * mr + i] = sk[i];
            }
        }
        if (rows < mr)
            for (int k = 0; k < kc; k++)
                for (int i = rows; i < mr; i++) d[k * mr + i] = 0.0f;
    }
}

/* (k, n) of B at B[k*bk + n*bn], k0..k0+kc, n0..n0+nc -> panels of nr columns:
 * dst[q*kc*nr + k*nr + j], zero-padded; rsk is the panel's k stride (kc or K). */
static void pack_b_block(float *dst, const float *B, ptrdiff_t bk, ptrdiff_t bn, int k0, int kc,
                         int n0, int nc, const lstm__gemm_kdesc *kd, ptrdiff_t panel_stride) {
    const int nr = kd->nr;
    if (bn == 1 && (nr == 16 || nr == 32)) { /* row k of the block in order (streams), fixed-size copies */
        const int full = nc / nr * nr;
        for (int k = 0; k < kc; k++) {
            const float *sk = B + (ptrdiff_t)(k0 + k) * bk + n0;
            float *dk = dst + (ptrdiff_t)k * nr;
            int q = 0;
            if (nr == 32)
                for (; q < full; q += 32) memcpy(dk + (ptrdiff_t)(q / 32) * panel_stride, sk + q, 32 * sizeof(float));
            else
                for (; q < full; q += 16) memcpy(dk + (ptrdiff_t)(q / 16) * panel_stride, sk + q, 16 * sizeof(float));
            for (; q < nc; q += nr)
                for (int j = 0; j < nr; j++) dk[(ptrdiff_t)(q / nr) * panel_stride + j] = q + j < nc ? sk[q + j] : 0.0f;
        }
        return;
    }
    for (int q = 0; q < nc; q += nr) {
        int cols = nc - q < nr ? nc - q : nr;
        float *d = dst + (ptrdiff_t)(q / nr) * panel_stride;
        const float *s = B + (ptrdiff_t)k0 * bk + (ptrdiff_t)(n0 + q) * bn;
        if (bn == 1) {
            for (int k = 0; k < kc; k++) {
                memcpy(d + k * nr, s + k * bk, (size_t)cols * sizeof(float));
                for (int j = cols; j < nr; j++) d[k * nr + j] = 0.0f;
            }
        } else if (kd->pack_t8) { /* bk == 1: column j is row n0+q+j of B, contiguous in k */
            for (int j = 0; j < nr; j += 8)
                kd->pack_t8(d + j, nr, j < cols ? s + j * bn : s, bn, j >= cols ? 0 : cols - j > 8 ? 8 : cols - j, 8, kc);
        } else {
            for (int j = 0; j < cols; j++) {
                const float *sj = s + j * bn;
                for (int k = 0; k < kc; k++) d[k * nr + j] = sj[k];
            }
            if (cols < nr)
                for (int k = 0; k < kc; k++)
                    for (int j = cols; j < nr; j++) d[k * nr + j] = 0.0f;
        }
    }
}

/* Whether the kernel reads A in place: a row-major A unless its rows lie a
 * multiple of 4 KiB apart (the mr rows a tile reads at every k would share
 * L1 sets and evict each other: packing wins), and a transposed A (am = 1,
 * the weight gradients' dGᵀ) where lstm__cpu_info.gemm_ta_direct says so (AMD;
 * on a Xeon packing was 1.4-1.8x faster, cpu.c): a tile reads mr consecutive floats of
 * one row per k, one or two lines, each used once per tile; the lines of a
 * micro-panel share L1 sets when rows are 4 KiB-multiples apart, but they
 * come back from L2 for the next tile at one line per k.  Zen 5, 1 thread,
 * tools/bench_gemm M N K tnacc (the engine's weight gradients, A read with
 * lda = M): 2048 512 6400 from 171-175 to 190-193 GF/s, 1024 64 2048 140 ->
 * 194, 1536 512 6400 179 -> 189; 2 threads 2048 512 6400 326 -> 362.  The
 * same bits: packing only copies. */
#define A_ALIAS_FLOATS 1024 /* 4 KiB */
static int a_direct(const lstm__gemm_kdesc *kd, ptrdiff_t am, ptrdiff_t ak) {
    return kd->direct_a && ((ak == 1 && am % A_ALIAS_FLOATS != 0) || (am == 1 && lstm__cpu()->gemm_ta_direct));
}

int lstm__gemm_direct_ld(int K) { return K % A_ALIAS_FLOATS ? K : K + 16; }

/* Computes the block C[m0..m1, n0..n1] of the job (n0 a multiple of nr when prepacked;
 * m0 a multiple of mr with PA). */
static void gemm_block(const gemm_job *g, int m0, int m1, int n0, int n1) {
    const lstm__gemm_kdesc *kd = g->kd;
    const int mr = kd->mr, nr = kd->nr, mcmax = MC / mr * mr, KCB = g->kc, NCB = g->nc;
    /* A read in place where a_direct says (the rule above it), else packed */
    const int direct = !g->PA && a_direct(g->kd, g->am, g->ak);
    float *pa = pack_a, *pb = pack_b;
    if (m0 >= m1 || n0 >= n1) return;
    if (g->K == 0) {
        for (int m = m0; m < m1; m++) {
            if (g->bias) memcpy(g->C + m * g->ldc + n0, g->bias + n0, (size_t)(n1 - n0) * sizeof(float));
            else if (!g->beta) memset(g->C + m * g->ldc + n0, 0, (size_t)(n1 - n0) * sizeof(float));
        }
        return;
    }
    for (int jc = n0; jc < n1; jc += NCB) {
        int nc = n1 - jc < NCB ? n1 - jc : NCB;
        for (int pc = 0; pc < g->K; pc += KCB) {
            int kc = g->K - pc < KCB ? g->K - pc : KCB;
            /* beta 2 (one depth block, kc = K): C + the block's sum from 0 */
            int load_c = g->beta == 2 ? 2 : g->beta || pc > 0;
            int bias_now = g->bias && pc == 0; /* the tile starts from the bias, then k in order */
            const float *bblk;
            ptrdiff_t pstride, rsb = nr;
            if (g->P) {
                pstride = (ptrdiff_t)g->K * nr;
                bblk = g->P + (ptrdiff_t)(jc / nr) * pstride + (ptrdiff_t)pc * nr;
            } else if (g->bn == 1 && nc % nr == 0 && m1 - m0 <= DIRECT_M) {
                /* Few rows: read B [K, N] in place, panels of nr columns. */
                pstride = nr;
                rsb = g->bk;
                bblk = g->B + (ptrdiff_t)pc * g->bk + jc;
            } else {
                pstride = (ptrdiff_t)kc * nr;
                pack_b_block(pb, g->B, g->bk, g->bn, pc, kc, jc, nc, kd, pstride);
                bblk = pb;
            }
            for (int ic = m0; ic < m1; ic += mcmax) {
                int mc = m1 - ic < mcmax ? m1 - ic : mcmax;
                if (!direct && !g->PA) pack_a_block(pa, g, ic, mc, pc, kc, kd);
                /* packed micro-panels: mr rows apart by aps floats, row k of one at k·mr */
                const ptrdiff_t aps = g->PA ? (ptrdiff_t)g->K * mr : (ptrdiff_t)kc * mr;
                const float *a0 = g->PA ? g->PA + (ptrdiff_t)(ic / mr) * aps + (ptrdiff_t)pc * mr : pa;
                for (int ir = 0; ir < mc; ir += mr) {
                    const float *ap = direct ? g->A + (ptrdiff_t)(ic + ir) * g->am + (ptrdiff_t)pc * g->ak
                                             : a0 + (ptrdiff_t)(ir / mr) * aps;
                    ptrdiff_t rsa = direct ? g->am : 1, csa = direct ? g->ak : mr;
                    int m = mc - ir < mr ? mc - ir : mr;
                    int w = (m <= kd->wide_m ? 4 : 1) * nr;
                    float *crow = g->C + (ptrdiff_t)(ic + ir) * g->ldc + jc;
                    /* the next micro-panel of A (rows ir+mr..), a row per tile, while this one runs */
                    const float *anext = ir + mr < mc ? (direct ? ap + (ptrdiff_t)mr * g->am : ap + aps) : NULL;
                    for (int jr = 0, t = 0; jr < nc; jr += w, t++) {
                        int n = nc - jr < w ? nc - jr : w;
                        if ((PREFETCH & 1) && jr + w < nc) /* the C tile to the right */
                            for (int i = 0; i < m; i++) {
                                __builtin_prefetch(crow + (ptrdiff_t)i * g->ldc + jr + w, 1, 3);
                                __builtin_prefetch(crow + (ptrdiff_t)i * g->ldc + jr + w + 16, 1, 3);
                            }
                        /* (transposed and direct: the next micro-panel is the rest of the same lines) */
                        if ((PREFETCH & 2) && anext && t < mr && !(direct && g->am == 1)) {
                            const float *pr = direct ? anext + (ptrdiff_t)t * g->am : anext + (ptrdiff_t)t * kc;
                            for (int k = 0; k < kc; k += 16) __builtin_prefetch(pr + k, 0, 3);
                        }
                        kd->kern(kc, ap, rsa, csa, bblk + (ptrdiff_t)(jr / nr) * pstride, rsb, pstride,
                                 crow + jr, g->ldc, m, n, load_c, bias_now ? g->bias + jc + jr : NULL);
                    }
                }
            }
        }
    }
}

/* ---------------------------------------------------------------- threads */

typedef struct {
    const gemm_job *g;
    int split_n; /* 1: split columns, 0: rows */
    int unit;    /* granularity of the split */
} mt_arg;

static void range_of(int total, int unit, int tid, int n, int *lo, int *hi) {
    int units = (total + unit - 1) / unit;
    int a = (int)((long)units * tid / n), b = (int)((long)units * (tid + 1) / n);
    *lo = a * unit < total ? a * unit : total;
    *hi = b * unit < total ? b * unit : total;
}

static void mt_worker(void *argp, int tid, int n) {
    const mt_arg *arg = argp;
    const gemm_job *g = arg->g;
    int lo, hi;
    if (arg->split_n) {
        range_of(g->N, arg->unit, tid, n, &lo, &hi);
        gemm_block(g, 0, g->M, lo, hi);
    } else {
        range_of(g->M, arg->unit, tid, n, &lo, &hi);
        gemm_block(g, lo, hi, 0, g->N);
    }
}

static void run_job(lstm__team *team, const gemm_job *g) {
    int nt = lstm__team_size(team);
    if (g->M <= 0 || g->N <= 0) return;
    if (nt <= 1) {
        gemm_block(g, 0, g->M, 0, g->N);
        return;
    }
    mt_arg arg = {g, 1, 64 > g->kd->nr ? 64 : g->kd->nr};
    int total = g->N;
    /* Columns in units of 64 (a multiple of every nr); rows when N is too narrow. */
    if (!(g->N >= 64 * nt || g->N >= g->M)) {
        arg.split_n = 0;
        arg.unit = g->kd->mr;
        total = g->M;
    }
    int units = (total + arg.unit - 1) / arg.unit;
    int ntasks = units < MT_TASKS * nt ? units : MT_TASKS * nt;
    lstm__team_run_tasks(team, ntasks, mt_worker, &arg);
}

/* ---------------------------------------------------------------- entry points */

/* A job on the blocking lstm__cpu chose. */
static gemm_job make_job(int M, int N, int K, const float *A, ptrdiff_t am, ptrdiff_t ak, const float *B,
                         ptrdiff_t bk, ptrdiff_t bn, const float *P, float *C, int ldc, int beta, int kernel,
                         const float *bias) {
    const lstm__cpu_info *cpu = lstm__cpu();
    gemm_job g = {M, N, K, A, am, ak, B, bk, bn, P, NULL, C, ldc, beta, kdesc(kernel), bias, cpu->gemm_kc, cpu->gemm_nc};
    return g;
}

/* C = (bias ? bias in every row : beta·C) + op(A)·op(B). */
static void gemm_any(lstm__team *team, int M, int N, int K, const float *A, ptrdiff_t am,
                     ptrdiff_t ak, const float *B, ptrdiff_t bk, ptrdiff_t bn, float *C, int ldc,
                     float beta, const float *bias) {
    int k = lstm_gemm_kernel();
    if (k == LSTM_GEMM_REF) {
        if (bias)
            for (int m = 0; m < M; m++) memcpy(C + (ptrdiff_t)m * ldc, bias, (size_t)(N > 0 ? N : 0) * sizeof(float));
        gemm_ref(M, N, K, A, am, ak, B, bk, bn, C, ldc, bias ? 1.0f : beta);
        return;
    }
    gemm_job g = make_job(M, N, K, A, am, ak, B, bk, bn, NULL, C, ldc, !bias && beta != 0.0f, k, bias);
    run_job(team, &g);
}

/* ---------------------------------------------------------------- A packed once */

/* A product with many rows and a packed A (the kernel cannot read A in place)
 * packs each row block of A once per column block of NC (and per column task):
 * X·W_ihᵀ at T·B = 3200, I = 4H/4 = 1024 packed X 8 times, 5 % of the forward.
 * Packed here once, by the team, into the caller's buffer, and then read by
 * every column block: the same panels, so the same bits. */
#define APACK_MIN_N 128 /* fewer columns: A packed at most once or twice anyway */

size_t lstm__gemm_apack_size(int M, int N, int K, int lda) {
    const lstm__gemm_kdesc *kd = kdesc(lstm_gemm_kernel());
    if (lstm_gemm_kernel() == LSTM_GEMM_REF || M <= 0 || K <= 0 || N < APACK_MIN_N || a_direct(kd, lda, 1)) return 0;
    return ((size_t)M + 15) * (size_t)K; /* ceil(M/mr)·mr·K for every mr <= 16 */
}

typedef struct {
    const gemm_job *g;
    float *dst;
    int npanels;
} apack_job;

static void apack_task(void *arg, int task, int ntasks) {
    const apack_job *j = arg;
    const gemm_job *g = j->g;
    const int mr = g->kd->mr;
    int p0 = (int)((long)j->npanels * task / ntasks), p1 = (int)((long)j->npanels * (task + 1) / ntasks);
    if (p0 >= p1) return;
    int m0 = p0 * mr, mc = (p1 * mr < g->M ? p1 * mr : g->M) - m0;
    pack_a_block(j->dst + (ptrdiff_t)m0 * g->K, g, m0, mc, 0, g->K, g->kd);
}

void lstm__gemm_nt_bias_apack_mt(lstm__team *team, int M, int N, int K, const float *A, int lda, const float *B,
                                 int ldb, const float *bias, float *C, int ldc, float *abuf, size_t abuf_n) {
    int k = lstm_gemm_kernel();
    size_t need = lstm__gemm_apack_size(M, N, K, lda);
    if (!need || !abuf || abuf_n < need) {
        gemm_any(team, M, N, K, A, lda, 1, B, 1, ldb, C, ldc, 0.0f, bias);
        return;
    }
    gemm_job g = make_job(M, N, K, A, lda, 1, B, 1, ldb, NULL, C, ldc, 0, k, bias);
    apack_job aj = {&g, abuf, (M + g.kd->mr - 1) / g.kd->mr};
    int nt = lstm__team_size(team);
    if (nt > 1) lstm__team_run_tasks(team, nt < aj.npanels ? nt : aj.npanels, apack_task, &aj);
    else apack_task(&aj, 0, 1);
    g.PA = abuf;
    run_job(team, &g);
}

void lstm_gemm_nt(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                  float *C, int ldc, float beta) {
    gemm_any(NULL, M, N, K, A, lda, 1, B, 1, ldb, C, ldc, beta, NULL);
}
void lstm_gemm_nn(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                  float *C, int ldc, float beta) {
    gemm_any(NULL, M, N, K, A, lda, 1, B, ldb, 1, C, ldc, beta, NULL);
}
void lstm_gemm_tn(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                  float *C, int ldc, float beta) {
    gemm_any(NULL, M, N, K, A, 1, lda, B, ldb, 1, C, ldc, beta, NULL);
}
void lstm_gemm_nt_mt(lstm__team *team, int M, int N, int K, const float *A, int lda,
                     const float *B, int ldb, float *C, int ldc, float beta) {
    gemm_any(team, M, N, K, A, lda, 1, B, 1, ldb, C, ldc, beta, NULL);
}
void lstm_gemm_nt_bias_mt(lstm__team *team, int M, int N, int K, const float *A, int lda,
                          const float *B, int ldb, const float *bias, float *C, int ldc) {
    gemm_any(team, M, N, K, A, lda, 1, B, 1, ldb, C, ldc, 0.0f, bias);
}
void lstm_gemm_nn_mt(lstm__team *team, int M, int N, int K, const float *A, int lda,
                     const float *B, int ldb, float *C, int ldc, float beta) {
    gemm_any(team, M, N, K, A, lda, 1, B, ldb, 1, C, ldc, beta, NULL);
}
void lstm_gemm_tn_mt(lstm__team *team, int M, int N, int K, const float *A, int lda,
                     const float *B, int ldb, float *C, int ldc, float beta) {
    gemm_any(team, M, N, K, A, 1, lda, B, ldb, 1, C, ldc, beta, NULL);
}

/* ---------------------------------------------------------------- prepacked B */

/* Header (16 floats, keeps the panels 64-byte aligned when P is):
 * int32 magic, kernel, N, K. */
#define PK_HDR 16
#define PK_MAGIC 0x4b50474c /* "LGPK" */

size_t lstm_gemm_packed_size(int N, int K) {
    size_t n64 = (size_t)(N + 63) / 64 * 64;
    return PK_HDR + n64 * (size_t)K;
}

static void pack_any(float *P, int N, int K, const float *B, ptrdiff_t bk, ptrdiff_t bn) {
    int k = lstm_gemm_kernel();
    int32_t hdr[4] = {PK_MAGIC, k, N, K};
    memset(P, 0, PK_HDR * sizeof(float));
    memcpy(P, hdr, sizeof hdr);
    float *d = P + PK_HDR;
    if (N <= 0 || K <= 0) return;
    if (k == LSTM_GEMM_REF) { /* plain B [K, N] */
        for (int kk = 0; kk < K; kk++)
            for (int n = 0; n < N; n++) d[(ptrdiff_t)kk * N + n] = B[kk * bk + n * bn];
        return;
    }
    const lstm__gemm_kdesc *kd = kdesc(k);
    pack_b_block(d, B, bk, bn, 0, K, 0, N, kd, (ptrdiff_t)K * kd->nr);
}

void lstm_gemm_pack_nt(float *P, int N, int K, const float *B, int ldb) {
    pack_any(P, N, K, B, 1, ldb);
}
void lstm_gemm_pack_nn(float *P, int N, int K, const float *B, int ldb) {
    pack_any(P, N, K, B, ldb, 1);
}

void lstm_gemm_packed_mt(lstm__team *team, int M, int N, int K, const float *A, int lda,
                         const float *P, float *C, int ldc, float beta) {
    int32_t hdr[4];
    memcpy(hdr, P, sizeof hdr);
    /* Programmer error: P was not packed for these N, K. */
    assert(hdr[0] == PK_MAGIC && hdr[2] == N && hdr[3] == K);
    int k = hdr[1];
    if (k == LSTM_GEMM_REF) {
        gemm_ref(M, N, K, A, lda, 1, P + PK_HDR, N, 1, C, ldc, beta);
        return;
    }
    gemm_job g = make_job(M, N, K, A, lda, 1, NULL, 0, 0, P + PK_HDR, C, ldc, beta != 0.0f, k, NULL);
    run_job(team, &g);
}

void lstm_gemm_packed(int M, int N, int K, const float *A, int lda, const float *P, float *C,
                      int ldc, float beta) {
    lstm_gemm_packed_mt(NULL, M, N, K, A, lda, P, C, ldc, beta);
}

/* ---------------------------------------------------------------- the engine's row-split products */

/* Large products split over row blocks of C: each task runs the single-thread
 * GEMM on its rows, so it packs only its own rows of A (a column split would
 * make every thread pack all of A).  Element values do not depend on the split.
 *
 * TN_ACC: C[M,N] += A[K,M]ᵀ·B[K,N] with K summed in blocks of KBLOCK rows whose
 * partial sums are added to C: float32 error then grows with KBLOCK + K/KBLOCK
 * terms rather than K (K = T·B reaches thousands).  A block is one depth block
 * of the GEMM (KBLOCK <= KC), so each tile sums its block from 0 in registers and
 * the kernel adds it to C (load_c 2): no partial sums stored and read back.
 * (Zen 5, tools/bench_gemm 1536 512 6400 tnacc, best of 5, interleaved: 1 thread
 * 174-178 -> 190-191 GF/s against 512-row blocks through tmp; 2 threads 314-318
 * -> 326-333, and 348-362 with one task per thread instead of two (each task
 * packs all of B).)  tmp: [M·N], the reference kernel's partial sums.
 * NN: C[M,N] = beta·C + A[M,K]·B[K,N]. */
#define KBLOCK 256 /* <= KC: one depth block, so the kernels add each block's sum to C themselves */
_Static_assert(KBLOCK <= KC, "a K block must be one depth block of the packed B buffer");
enum { ROWS_TN_ACC, ROWS_NN };
typedef struct {
    int kind, M, np;      /* np: 1 product, or 2 (TN_ACC only; the same M) */
    lstm__tn_prod p[2];   /* NN: p[0].K is the depth, p[0].B the [K, N] matrix */
    float *tmp, *csum, *cblk;
    float beta;
} rows_job;

void lstm__col_sums(const float *A, int lda, size_t k0, size_t k1, int m0, int m1, float *csum, float *blk) {
    const size_t mb = (size_t)(m1 - m0);
    for (size_t r0 = k0; r0 < k1; r0 += 64) {
        size_t r1 = k1 - r0 < 64 ? k1 : r0 + 64;
        memcpy(blk + m0, A + r0 * lda + m0, mb * sizeof(float));
        for (size_t r = r0 + 1; r < r1; r++) lstm__add_to(blk + m0, A + r * lda + m0, mb);
        lstm__add_to(csum + m0, blk + m0, mb);
    }
}

static void rows_task(void *arg, int task, int ntasks) {
    const rows_job *j = arg;
    const lstm__tn_prod *p0 = &j->p[0];
    int m0 = (int)((long)j->M * task / ntasks), m1 = (int)((long)j->M * (task + 1) / ntasks);
    m0 = m0 / 16 * 16; /* 16-row aligned blocks (the last one takes the rest) */
    m1 = task == ntasks - 1 ? j->M : m1 / 16 * 16;
    int mb = m1 - m0;
    if (mb <= 0) return;
    if (j->kind == ROWS_NN) {
        lstm_gemm_nn(mb, p0->N, p0->K, p0->A + (size_t)m0 * p0->lda, p0->lda, p0->B, p0->ldb,
                     p0->C + (size_t)m0 * p0->ldc, p0->ldc, j->beta);
        return;
    }
    if (j->csum) memset(j->csum + m0, 0, (size_t)mb * sizeof(float));
    int kmax = 0, nmax = 0;
    for (int q = 0; q < j->np; q++) {
        if (j->p[q].K > kmax) kmax = j->p[q].K;
        if (j->p[q].N > nmax) nmax = j->p[q].N;
    }
    float *t = j->tmp + (size_t)m0 * nmax; /* this task's, for every product (reference kernel) */
    const int ref = lstm_gemm_kernel() == LSTM_GEMM_REF;
    /* block i of each product in turn: the rows of A they share stay in cache */
    for (int k0 = 0; k0 < kmax; k0 += KBLOCK)
        for (int q = 0; q < j->np; q++) {
            const lstm__tn_prod *p = &j->p[q];
            if (k0 >= p->K) continue;
            int kb = p->K - k0 < KBLOCK ? p->K - k0 : KBLOCK;
            const float *a = p->A + (size_t)k0 * p->lda + m0, *b = p->B + (size_t)k0 * p->ldb;
            if (ref) {
                lstm_gemm_tn(mb, p->N, kb, a, p->lda, b, p->ldb, t, p->N, 0.0f);
                for (int i = 0; i < mb; i++) lstm__add_to(p->C + (size_t)(m0 + i) * p->ldc, t + (size_t)i * p->N, (size_t)p->N);
            } else {
                gemm_job g = make_job(mb, p->N, kb, a, 1, p->lda, b, p->ldb, 1, NULL, p->C + (size_t)m0 * p->ldc, p->ldc, 2,
                                      lstm_gemm_kernel(), NULL);
                g.kc = kb;
                gemm_block(&g, 0, mb, 0, p->N);
            }
            if (!q && j->csum) lstm__col_sums(p->A, p->lda, (size_t)k0, (size_t)(k0 + kb), m0, m1, j->csum, j->cblk);
        }
}

static void run_rows(lstm__team *team, const rows_job *j) {
    int n = team ? lstm__team_size(team) : 1;
    while (n > 1 && j->M / n < 16) n--;
    if (n > 1) lstm__team_run_tasks(team, n, rows_task, (void *)j);
    else rows_task((void *)j, 0, 1);
}

void lstm__gemm_tn_acc_rows(lstm__team *team, int M, int N, int K, const float *A, int lda, const float *B,
                            int ldb, float *C, int ldc, float *tmp, float *csum, float *cblk) {
    rows_job j = {ROWS_TN_ACC, M, 1, {{N, K, A, lda, B, ldb, C, ldc}}, tmp, csum, cblk, 1.0f};
    run_rows(team, &j);
}

void lstm__gemm_tn_acc_rows2(lstm__team *team, int M, const lstm__tn_prod *p1, const lstm__tn_prod *p2, float *tmp,
                             float *csum, float *cblk) {
    rows_job j = {ROWS_TN_ACC, M, 2, {*p1, *p2}, tmp, csum, cblk, 1.0f};
    run_rows(team, &j);
}

void lstm__gemm_nn_rows(lstm__team *team, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                         float *C, int ldc, float beta) {
    rows_job j = {ROWS_NN, M, 1, {{N, K, A, lda, B, ldb, C, ldc}}, NULL, NULL, NULL, beta};
    run_rows(team, &j);
}
