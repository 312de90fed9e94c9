/* internal.h — private helpers shared by the library's files. Not installed. */
#ifndef LSTM_INTERNAL_H
#define LSTM_INTERNAL_H

#include <stddef.h>

#include "lstm.h"

/* LSTM_X86: the x86-64 SIMD kernels are built (gcc/clang on x86-64, unless
 * -DLSTM_NO_X86, i.e. make NO_X86_KERNELS=1, leaves them out as a stand-in
 * for another CPU).  Code that calls them is guarded by #if LSTM_X86. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(LSTM_NO_X86)
#define LSTM_X86 1
#else
#define LSTM_X86 0
#endif

/* c[i] += t[i] for i < n (c and t do not overlap).  gcc -O2 leaves the plain
 * loop scalar (its cheap vectorizer takes no loop that needs a remainder); the
 * 8-wide vector type becomes SSE/AVX adds on x86 and NEON elsewhere, each
 * element one IEEE addition as in the loop. */
/* 64-bit FNV-1a: h (LSTM__FNV1A_INIT to start) extended by the n bytes at p.  The
 * checkpoint checksum (train.c), the data hash (cli/corpus.c, fused with its byte scan) and
 * lstm-mpi's check that the ranks were started alike (cli/cmd_train.c). */
#define LSTM__FNV1A_INIT 0xcbf29ce484222325ULL
static inline uint64_t lstm__fnv1a(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ULL;
    return h;
}

static inline void lstm__add_to(float *restrict c, const float *restrict t, size_t n) {
    size_t i = 0;
#if defined(__GNUC__) || defined(__clang__)
    typedef float v8 __attribute__((vector_size(32), aligned(4), may_alias));
    for (; i + 8 <= n; i += 8) *(v8 *)(c + i) = *(const v8 *)(c + i) + *(const v8 *)(t + i);
#endif
    for (; i < n; i++) c[i] += t[i];
}

/* Records a one-line reason for the calling thread and returns s.
 * Used as: return lstm__fail(LSTM_ERR_SHAPE, "%s: tensor '%s': expected ..., got ...", ...); */
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
lstm_status lstm__fail(lstm_status s, const char *fmt, ...);

/* ---- matrix products (src/kernels/gemm.c); row-major, beta is 0 or 1 ----
 * lstm_gemm_nt: C[M,N] = beta*C + A[M,K] · B[N,K]ᵀ   (lda, ldb, ldc: row strides)
 * lstm_gemm_nn: C[M,N] = beta*C + A[M,K] · B[K,N]
 * lstm_gemm_tn: C[M,N] = beta*C + A[K,M]ᵀ · B[K,N]
 * The _ref versions are the naive triple loops, kept as the test oracle.
 * Results do not depend on any thread count: each C element is one sum in a fixed order. */
void lstm_gemm_nt(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                  float *C, int ldc, float beta);
void lstm_gemm_nn(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                  float *C, int ldc, float beta);
void lstm_gemm_tn(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                  float *C, int ldc, float beta);
void lstm_gemm_nt_ref(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                      float *C, int ldc, float beta);
void lstm_gemm_nn_ref(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                      float *C, int ldc, float beta);
void lstm_gemm_tn_ref(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                      float *C, int ldc, float beta);

/* ---- kernel choice (src/kernels/dispatch.c): the one place that decides ----
 * lstm__cpu_has(k): this build and CPU can run LSTM_GEMM_* kernel k.
 * lstm__kernel_gemm_default(): the GEMM kernel to use unless a test sets one.
 * lstm__kernel_gates_avx512(): 1 when the gate math of every cell runs its
 *   AVX-512 version (the CPU has AVX-512F and LSTM_KERNEL does not ask for
 *   ref, generic or avx2, which stand for a CPU without it).
 * lstm__kernel_fused(): 1 when a cell's fused recurrent step may run (AVX-512
 *   gates, an FMA-chain GEMM kernel, LSTM_FUSED not "0").
 * lstm__kernel_set_fused(on): tests and benchmarks; -1 returns to LSTM_FUSED.
 * The environment and the CPU are read once. */
int lstm__cpu_has(int kernel);
int lstm__kernel_gemm_default(void);
int lstm__kernel_gates_avx512(void);
int lstm__kernel_fused(void);
void lstm__kernel_set_fused(int on);

/* Kernel choice, process-wide (the decision is dispatch.c's).  The default is the best the CPU supports
 * (avx512 > avx2 > generic), or LSTM_KERNEL=ref|generic|avx2|avx512 from the
 * environment (read once; an unavailable choice falls back to the default).
 * lstm_gemm_set_kernel is for tests and benchmarks: it returns 0, or -1 when
 * the kernel is not available on this CPU (the choice is then unchanged).
 * For a given kernel, C[m,n] depends only on row m of A, column n of op(B),
 * C[m,n] and beta: not on M, N, the blocking or the threads.  generic gives
 * the same bits as the _ref loops; avx2 and avx512 use one fused multiply-add
 * per k (so they agree with each other bit for bit). */
enum { LSTM_GEMM_REF, LSTM_GEMM_GENERIC, LSTM_GEMM_AVX2, LSTM_GEMM_AVX512, LSTM_GEMM_NKERNELS };
int lstm_gemm_kernel(void);
int lstm_gemm_kernel_available(int kernel);
int lstm_gemm_set_kernel(int kernel);
const char *lstm_gemm_kernel_name(int kernel); /* "ref", "generic", "avx2", "avx512" */

/* Prepacked B, for a weight matrix used many times (the recurrence W_hh):
 * pack once outside the time loop, then lstm_gemm_packed per step.
 *   P: lstm_gemm_packed_size(N, K) floats, caller-owned (64-byte alignment is best).
 *   lstm_gemm_pack_nt: B [N, K] (as in lstm_gemm_nt, e.g. W_hh for the forward step)
 *   lstm_gemm_pack_nn: B [K, N] (as in lstm_gemm_nn, e.g. W_hh for the backward step)
 *   lstm_gemm_packed:  C[M,N] = beta*C + A[M,K] · op(B); N and K must be those packed.
 * P records the kernel that packed it and is always used with that kernel, so
 * lstm_gemm_packed gives the same bits as lstm_gemm_nt/nn with that kernel. */
size_t lstm_gemm_packed_size(int N, int K);
void lstm_gemm_pack_nt(float *P, int N, int K, const float *B, int ldb);
void lstm_gemm_pack_nn(float *P, int N, int K, const float *B, int ldb);
void lstm_gemm_packed(int M, int N, int K, const float *A, int lda, const float *P,
                      float *C, int ldc, float beta);

/* ---- persistent thread team (src/threads.c) ----
 * lstm__team_create(n): n >= 1 threads in all, the caller being one of them
 * (n-1 workers are started); NULL on failure.
 * lstm__team_run_tasks(team, ntasks, fn, arg) calls fn(arg, task, ntasks) exactly
 * once for each task in 0..ntasks-1 and returns when all are done.  Tasks go to
 * whichever thread takes them first, the caller from task 0 up (task 0 always:
 * it is taken as the run is published), workers from the last task down (so a
 * 2-thread team keeps a task on one thread from run to run): a worker that is late,
 * e.g. descheduled on a busy machine, takes fewer tasks and never holds up the
 * run unless it has started one.  So fn must not depend on which thread runs a
 * task (thread-local scratch is fine); use more tasks than threads to balance.
 * lstm__team_run(team, fn, arg) = run_tasks with ntasks = team size.
 * Waiting threads spin briefly, then sleep on a futex.  One run at a time per
 * team; not re-entrant.  A NULL team (or ntasks > 65535) runs the tasks in
 * order on the caller.
 * lstm__team_free(NULL) is a no-op. */
typedef struct lstm__team lstm__team;
lstm__team *lstm__team_create(int n);
int lstm__team_size(const lstm__team *team); /* 1 for NULL */
void lstm__team_run_tasks(lstm__team *team, int ntasks,
                          void (*fn)(void *arg, int task, int ntasks), void *arg);
void lstm__team_run(lstm__team *team, void (*fn)(void *arg, int tid, int n), void *arg);
void lstm__team_free(lstm__team *team);
/* The cores this process may run on: the CPUs of its affinity (sched_getaffinity on
 * Linux, else the ones online), SMT siblings counted once (sysfs topology; where it
 * cannot be read, every CPU); at least 1.  The default thread count of lstm train,
 * of the sampler and of the Python package: the kernels keep both FMA units of a
 * core busy and size their blocks by its L1 and L2, which siblings share.
 * lstm__cores_of (tests): the cores among CPUs c < ncpu with in_set[c], from
 * cpu_dir/cpuN/topology/thread_siblings_list; -1 when a file is missing or wrong. */
int lstm__cores_usable(void);
int lstm__cores_of(const char *cpu_dir, const unsigned char *in_set, int ncpu);
/* The cores among CPUs c < ncpu with in_set[c] (lstm__cores_of on this machine's sysfs;
 * where that fails, the CPUs).  lstm-mpi shares those of its ranks on a machine. */
int lstm__cores_in(const unsigned char *in_set, int ncpu);
/* The CPUs this process may run on as in_set[0..*ncpu) (0 or 1 each; malloc'd, the
 * caller frees it), sized as the kernel's CPU masks; NULL when unknown (not Linux) or empty. */
unsigned char *lstm__affinity(int *ncpu);

/* Multi-threaded GEMMs: same arguments as above after team (NULL or a team of
 * 1 = the single-threaded call).  Work is split into tasks over disjoint blocks
 * of C (columns of N in multiples of 64, or rows of M when N is small), so the
 * results are bit-identical to the single-threaded call for any team size. */
void lstm_gemm_nt_mt(lstm__team *team, int M, int N, int K, const float *A, int lda,
                     const float *B, int ldb, float *C, int ldc, float beta);
void lstm_gemm_nn_mt(lstm__team *team, int M, int N, int K, const float *A, int lda,
                     const float *B, int ldb, float *C, int ldc, float beta);
void lstm_gemm_tn_mt(lstm__team *team, int M, int N, int K, const float *A, int lda,
                     const float *B, int ldb, float *C, int ldc, float beta);
void lstm_gemm_packed_mt(lstm__team *team, int M, int N, int K, const float *A, int lda,
                         const float *P, float *C, int ldc, float beta);

/* The engine's large products, split over row blocks of C (one single-thread
 * GEMM per task: each packs only its own rows of A; values do not depend on
 * the split).  gemm.c.
 *   lstm__gemm_tn_acc_rows: C[M,N] += A[K,M]ᵀ·B[K,N] (weight gradients), K in
 *     blocks of 256, each block summed from 0 and then added to C (float32 error
 *     grows with 256 + K/256 terms, not K = T·B); tmp [M·N] serves the reference
 *     kernel only (the others add each tile's block sum to C themselves).
 *     csum (or NULL): [M] = the column sums of A (the bias gradient of dG), two-level: blocks of 64 rows
 *     summed in order into cblk [M], each block then added to csum; done per K
 *     block while that block of A is in cache.
 *   lstm__gemm_nn_rows: C[M,N] = beta·C + A[M,K]·B[K,N] (dX). */
void lstm__gemm_tn_acc_rows(lstm__team *team, int M, int N, int K, const float *A, int lda, const float *B,
                            int ldb, float *C, int ldc, float *tmp, float *csum, float *cblk);
/* csum[m0, m1) += the sums over rows [k0, k1) of A's columns [m0, m1) (row stride lda),
 * in blocks of 64 rows from k0 (a multiple of 64 in both callers), each block summed
 * in order into blk[m0, m1) first: the bias gradient's two-level sum, whose error
 * grows like PyTorch's (tn_acc_rows' csum, and lstm_layer.c's columns no ih run has). */
void lstm__col_sums(const float *A, int lda, size_t k0, size_t k1, int m0, int m1, float *csum, float *blk);
/* Two such products with the same M (C1 += A1ᵀ·B1, C2 += A2ᵀ·B2, tmp [M·max(N1, N2)]),
 * their K blocks taken in turn by each task, so the rows of A they share (dW_ih and
 * dW_hh both read dG) come from cache the second time; csum: of A1.  The same bits
 * as two lstm__gemm_tn_acc_rows calls. */
typedef struct {
    int N, K;
    const float *A;
    int lda;
    const float *B;
    int ldb;
    float *C;
    int ldc;
} lstm__tn_prod;
void lstm__gemm_tn_acc_rows2(lstm__team *team, int M, const lstm__tn_prod *p1, const lstm__tn_prod *p2, float *tmp,
                             float *csum, float *cblk);
void lstm__gemm_nn_rows(lstm__team *team, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                        float *C, int ldc, float beta);

/* ---- point-wise gate math (src/rnn/lstm_cell.c) ----
 * act [B, lda] (lda >= 4H: the row stride): in: pre-activations (i,f,g,o) in
 * columns [0,4H); out: σ(i), σ(f), tanh(g), σ(o).
 * c_prev [B,H] (NULL = zeros) -> c [B,H], m [B, ldm] = σ(o)·tanh(c). */
void lstm__gates_forward(float *act, int lda, float *c, float *m, int ldm, const float *c_prev, int B, int H);
/* dm [B, ldm]: dL/dm.  dc [B,H]: in dL/dc from later steps, out dL/dc_prev.
 * act, c, c_prev (NULL = zeros) as saved by forward; writes dG [B, lda] = dL/d pre-activation
 * (columns [0,4H); dG may be act). */
void lstm__gates_backward(float *dG, float *dc, const float *dm, int ldm, const float *act, int lda,
                          const float *c, const float *c_prev, int B, int H);
/* The scalar oracles and the AVX-512 versions behind the dispatch above. */
void lstm__gates_forward_ref(float *act, int lda, float *c, float *m, int ldm, const float *c_prev, int B, int H);
void lstm__gates_backward_ref(float *dG, float *dc, const float *dm, int ldm, const float *act, int lda,
                              const float *c, const float *c_prev, int B, int H);
void lstm__gates_forward_avx512(float *act, int lda, float *c, float *m, int ldm, const float *c_prev, int B, int H);
void lstm__gates_backward_avx512(float *dG, float *dc, const float *dm, int ldm, const float *act, int lda,
                                 const float *c, const float *c_prev, int B, int H);

/* ---- GRU point-wise gate math (src/rnn/gru_cell.c: scalar oracle) ----
 * act [B, lda], lda >= 4H.  In: columns [0,H) pre_r, [H,2H) pre_z (each one FMA chain
 * b_ih + b_hh, then x·W_ihᵀ, then h·W_hhᵀ), [2H,3H) xn = b_in + x·W_inᵀ,
 * [3H,4H) hn = b_hn + h·W_hnᵀ.  Out: r, z, n, hn (hn kept for backward).
 * h [B, ldh] = (h_prev − n)·z + n;  h_prev [B, ldhp] (NULL = zeros).
 * n = tanh(xn + r·hn), the product and the sum rounded separately (no FMA). */
void lstm__gru_gates_forward_ref(float *act, int lda, float *h, int ldh, const float *h_prev, int ldhp, int B, int H);
/* dh [B, lddh] = dL/dh' (all of it, later steps included); act, h_prev as in forward.
 * Writes dgx [B, ldgx] = dL/d(pre_r, pre_z, xn)   (3H columns; may alias act with ldgx = lda:
 *        each element is read before the same element is written),
 *        dgh [B, 3H]  = dL/d(pre_r, pre_z, hn)    (= dgx with the n block times r),
 *        dh_prev [B, H] = dh·z, the direct part (the caller adds dgh·W_hh). */
void lstm__gru_gates_backward_ref(float *dgx, int ldgx, float *dgh, float *dh_prev, const float *dh, int lddh,
                                  const float *act, int lda, const float *h_prev, int ldhp, int B, int H);

/* GRU gate dispatch: the AVX-512 versions (src/kernels/gru_kernels.h, the _ref
 * signatures) when lstm__kernel_gates_avx512(), else the oracles. */
void lstm__gru_gates_forward(float *act, int lda, float *h, int ldh, const float *h_prev, int ldhp, int B, int H);
void lstm__gru_gates_backward(float *dgx, int ldgx, float *dgh, float *dh_prev, const float *dh, int lddh,
                              const float *act, int lda, const float *h_prev, int ldhp, int B, int H);

/* ---- the cell table (src/rnn/cell.c) ----
 * What the recurrent-layer driver (lstm_layer.c) and the cell API need to know
 * about a cell.  A cell has G gates per unit (rows of W_ih and W_hh: G·H) and
 * A·H activation columns per batch row (act [B, A·H], rows lda >= A·H floats
 * apart).  Each activation column
 * block of H columns receives the product of at most one W_ih block and one
 * W_hh block; "runs" list them, in units of H:
 *   ih[k]: W_ih rows [w·H, (w+n)·H) -> act columns [a·H, (a+n)·H)
 *   hh[k]: W_hh rows likewise.
 * LSTM: ih = hh = {(0,0,4)} (i, f, g, o).  GRU: ih = {(0,0,3)},
 * hh = {(0,0,2), (2,3,1)}: act = (pre_r, pre_z, xn, hn).
 * Pre-activations are one FMA chain per column: bias (b_ih + b_hh where both
 * feed the column, else the one that does), then x·W_ihᵀ, then h·W_hhᵀ.
 *
 * One step's point-wise work on batch rows [0, B) (pointers already offset):
 *   forward:  act in: pre-activations, out: what backward needs; writes h [B, ldh]
 *             (LSTM: m = o·tanh(c), and c from c_prev)
 *   backward: dh [B, lddh] = dL/dh_t (LSTM: dL/dm); overwrites act with the
 *             gradient of each act column's pre-activation (so the W_ih / W_hh
 *             products and bias sums use the runs above); LSTM: dc in/out;
 *             when direct_dh, writes dh_prev [B, H] = the part of dL/dh_prev
 *             that does not go through W_hh (the driver then adds dG·W_hh). */
typedef struct {
    int B, H;
    float *act; int lda;            /* [B, lda], lda >= A·H */
    const float *h_prev; int ldhp;  /* NULL = zeros */
    float *h; int ldh;              /* forward output */
    const float *c_prev; float *c;  /* LSTM: [B, H] (c_prev NULL = zeros) */
    const float *dh; int lddh;      /* backward input */
    float *dc;                      /* LSTM: [B, H] */
    float *dh_prev;                 /* direct_dh: [B, H] */
    float *scratch;                 /* backward: [B, scratch_units·H] */
} lstm__cell_step;

typedef struct { int w, a, n; } lstm__run;

/* Fused recurrent step (x86 AVX-512; NULL where absent): see step_avx512.c.  Called
 * per step for batch rows [0,B) and unit blocks [u0,u1) of 16 units, with
 * pih/phh = fused_pack(W_ih)/fused_pack(W_hh) and, when x is NULL, act already
 * holding bias + X·W_ihᵀ (bias alone in act columns no W_ih block feeds: the
 * GRU's hn); when x is given (one-step streaming), bsum [A·H] = lstm__cell_bias
 * (NULL without bias) and x [B, ldx].  It continues each column's FMA chain
 * with h·W_hhᵀ (h NULL = zeros), runs the point-wise forward and writes act as
 * the cell's forward does, h into m [B, ldm], and c (cells with c; NULL else).
 * rev (0/1): the blocks in descending order (no bit depends on it; callers
 * alternate it per step so that a step starts on the weights still in cache). */
typedef void (*lstm__fused_step_fn)(int B, int H, int Hout, int in, int u0, int u1, int rev, float *act, int lda,
                                    const float *x,
                                    int ldx, const float *pih, const float *bsum, const float *h, int ldh,
                                    const float *phh, const float *c_prev, float *c, float *m, int ldm);

/* Batch-1 fused step (lstm__step1 below): one step of one batch row on the team. */
typedef void (*lstm__step1_fn)(lstm__team *team, int H, int I, int Hout, int rev, const float *P, float *act,
                               const float *a_next, const float *x, const float *bsum, const float *h,
                               const float *c_prev, float *c, float *m, float *m2);

/* The batch-1 step of one group (H <= 48, no projection) with its arguments made
 * once: P the layer's pack, bsum as above (NULL: none), I the layer's input
 * size.  lstm__step1_one_avx512(plan, x, a0, h, c, y): one step in place on
 * h and c (the state), pre-activations from x (or, x NULL, a0 [4H] given), y [H]
 * (NULL: none) a copy of h; no act.  The bits of lstm__step1 on the same step. */
typedef struct {
    int H, I;
    const float *P, *bsum;
} lstm__step1_plan; /* (one group is in L1: no prefetch) */
typedef void (*lstm__step1_one_fn)(const lstm__step1_plan *p, const float *x, const float *a0, float *h, float *c,
                                   float *y);
typedef struct {
    const char *name;     /* "lstm", "gru" */
    int G, A;             /* gates per unit; act columns per unit */
    int has_c;            /* a cell state c beside h */
    int direct_dh;        /* backward writes dh_prev's direct part */
    int scratch_units;    /* backward scratch per batch row, in units of H */
    int n_ih, n_hh;
    lstm__run ih[2], hh[2];
    void (*forward)(const lstm__cell_step *s);
    void (*backward)(const lstm__cell_step *s);
    /* optional fused step: packs W [G·H, K] for it, and runs it (NULL: GEMM + forward) */
    size_t (*fused_pack_size)(int H, int K);
    void (*fused_pack)(float *P, int H, int K, const float *W, int ldw, int u0, int u1); /* unit blocks [u0,u1) of 16 */
    lstm__fused_step_fn fused_step;
    /* optional batch-1 fused step (NULL: fused_step at B = 1 too), used where
     * fused_step is, on inference workspaces: one pack per (l,d) holding the W_ih
     * and W_hh rows; its own rounding (not the batch path's bits) */
    size_t (*step1_pack_size)(int H, int I, int Hout);
    void (*step1_pack)(float *P, int H, int I, int Hout, const float *w_ih, const float *w_hh);
    lstm__step1_fn step1;
    int (*step1_groups)(int H, int I, int Hout); /* unit groups of step1 (1: its h output may be its h input) */
    lstm__step1_one_fn step1_one; /* step1 with one group, no projection (NULL: step1) */
} lstm__cell;

extern const lstm__cell lstm__cell_lstm; /* src/rnn/lstm_cell.c */
extern const lstm__cell lstm__cell_gru;  /* src/rnn/gru_cell.c */
/* The entry of a cell kind; NULL for an unknown kind. */
const lstm__cell *lstm__cell_of(int kind);
/* Whether p[0..n) holds no NaN or ±Inf (rnn/lstm_layer.c; an OR of exponent bits, vectorized). */
int lstm__all_finite(const float *p, size_t n);
/* Whether net was made by lstm_net_init(_external) and not freed (a freed one is all zeros). */
int lstm__net_made(const lstm_net *net);
/* The W_ih (r = cell->ih, n = n_ih) or W_hh (hh, n_hh) row block that feeds
 * act column block a, -1 when none: the runs read backwards. */
int lstm__cell_run_row(const lstm__run *r, int n, int a);
/* bias [A·H] of one (l,d) from b_ih, b_hh (both NULL: zeros), by the runs. */
void lstm__cell_bias(const lstm__cell *cell, int H, float *bias, const float *b_ih, const float *b_hh);
/* act [B, lda] (+)= X [B, in]·W_ihᵀ by the ih runs (beta as in lstm_gemm_*). */
void lstm__cell_gemm_ih(const lstm__cell *cell, lstm__team *team, int B, int H, int in, const float *X, int ldx,
                        const float *w_ih, float *act, int lda, float beta);
/* act [rows, lda] = bias + X·W_ihᵀ (bias [A·H] or NULL: zeros), the sum in that
 * order, every act column block written (the sequence engine's input product).
 * abuf (abuf_n floats) or NULL: room to pack X once (lstm__gemm_nt_bias_apack_mt). */
void lstm__cell_gemm_ih_bias(const lstm__cell *cell, lstm__team *team, int rows, int H, int in, const float *X,
                             int ldx, const float *w_ih, const float *bias, float *act, int lda,
                             float *abuf, size_t abuf_n);

/* ---- fused recurrent step (src/kernels/step_avx512.c) ----
 * lstm__pack_units: W [4H, K] (row stride ldw, gates i,f,g,o stacked) into the
 * unit-interleaved layout of lstm__pack_units_size(H, K) floats.
 * lstm__step_avx512: one time step for batch rows [0,B) and unit blocks
 * [u0,u1) of 16 units: pre = (x ? bsum + x·W_ihᵀ : act) + h·W_hhᵀ (h NULL =
 * zeros), then act [B, lda] = activations, c [B,H], m [B,ldm] = σ(o)·tanh(c);
 * rev: the blocks in descending order (the same bits).
 * Same bits as lstm_gemm_* (AVX2/AVX-512 kernels) followed by lstm__gates_forward_avx512. */
size_t lstm__pack_units_size(int H, int K);
void lstm__pack_units(float *P, int H, int K, const float *W, int ldw);
void lstm__pack_units_range(float *P, int H, int K, const float *W, int ldw, int u0, int u1); /* blocks [u0,u1) */
void lstm__step_avx512(int B, int H, int Hout, int in, int u0, int u1, int rev, float *act, int lda, const float *x, int ldx,
                       const float *pih, const float *bsum, const float *h, int ldh, const float *phh,
                       const float *c_prev, float *c, float *m, int ldm);

/* A private lstm_workspace_init flag: the B rows are a slice of a larger batch
 * (an evaluation split over ranks), so B = 1 keeps the batch path's fused step
 * instead of the batch-1 step: the slice gives the bits the whole batch gives. */
enum { LSTM__WS_SLICE = 1 << 16 };

/* Tests: whether the fused step of a sequence (T > 1) also does x·W_ihᵀ + b
 * (lstm_layer.c): -1 by its rule (the default), 0 never, 1 always; set it
 * before making a workspace. */
void lstm__set_step_x(int mode);
/* Tools (ab_hooks): training's split of a step over the threads, -1 its rule
 * (train_row_tasks), 0 by units, 1 by batch rows where there are enough rows; and
 * whether ws's rows are split (its threads as set now; the rule's answer when the
 * mode is -1). */
void lstm__set_train_split(int mode);
int lstm__train_split_rule(const lstm_workspace *ws);
/* Tools (ab_hooks): training's forward and backward run two directions on two threads
 * at once (1, the default, as inference does) or in turn (0). */
void lstm__set_train_par_dirs(int on);
/* Whether x·W_ihᵀ goes in the fused step for a layer of input size in on ws (its threads
 * as set now; the rule's answer when lstm__set_step_x's mode is -1); 0 where ws has no
 * fused step (tools/ab_hooks). */
int lstm__step_x_rule(const lstm_workspace *ws, int in);
/* Tests: the row stride of act (lstm_layer.c's act_ld): -1 by its rule (the
 * default), 0 A·H always, 1 A·H + 16 always; set it before making a workspace. */
void lstm__set_act_pad(int mode);

/* ---- the backward step's recurrent product (src/kernels/step_dh_avx512.c) ----
 * lstm__step_dh_pack: W [K, N] (row stride ldw) into panels of 64 columns,
 * lstm__step_dh_pack_size(N, K) floats (64-byte aligned is best): panel p,
 * row k at P + p·K·64 + k·64.
 * lstm__step_dh_avx512: C [B, N] = (accumulate ? C : 0) + A [B, K] · W [K, N]
 * (row strides lda, ldc) with W rows packed as above from P on, pstride the
 * panel stride (K'·64 for a pack of K' >= K rows; a run of W_hh rows
 * [k0, k0 + K) is P + k0·64): dh_prev (+)= dG_t · W_hh for one hh run.  Same
 * bits as lstm_gemm_nn with the AVX2/AVX-512 kernels, with the panels in
 * either order (rev 0 or 1); call only where the fused step runs
 * (lstm__kernel_fused). */
size_t lstm__step_dh_pack_size(int N, int K);
void lstm__step_dh_pack(float *P, int N, int K, const float *W, int ldw);
void lstm__step_dh_pack_rows(float *P, int N, int K, const float *W, int ldw, int k0, int k1); /* rows [k0, k1) of it */
void lstm__step_dh_avx512(int B, int N, int K, const float *A, int lda, const float *P, size_t pstride, float *C,
                          int ldc, int accumulate, int rev);

/* ---- the step at batch 1 (src/kernels/step1_avx512.c) ----
 * lstm__step1_pack: W_ih [4H, I] and W_hh [4H, Hout] (dense rows) into the
 * group-major layout of lstm__step1_pack_size(H, I, Hout) floats (64-byte
 * aligned buffer); a NULL matrix leaves its rows as they are (steps with x
 * NULL read only the W_hh rows).  lstm__step1: one step of one batch row, unit groups split
 * over the team: pre = (x ? bsum (NULL = 0) + x·W_ihᵀ : act) + h·W_hhᵀ (h NULL =
 * zeros; groups of 2-4 blocks make h·W_hhᵀ from 0 and add the input part to it
 * last), then act [4H] = activations, c [H], m [H] = σ(o)·tanh(c) and, when
 * m2 is not NULL, a copy in m2 [H]; c_prev NULL = zeros.  c may be c_prev; m may
 * be h only with one group (lstm__step1_groups(H, ..) == 1, that is H <= 48).  a_next: the next
 * step's act (x NULL there), which each task prefetches for its units, or NULL.
 * rev: the groups run in
 * reverse order (callers alternate it per step; no bit depends on it).  Not the bits of lstm__step_avx512 (split
 * chains, the fast σ/tanh: see step1_avx512.c) but fixed by the shape; call only
 * where that one runs (inference workspaces at B = 1).
 * lstm__step1_avx512: the kernel for unit groups [g0, g1). */
size_t lstm__step1_pack_size(int H, int I, int Hout);
void lstm__step1_pack(float *P, int H, int I, int Hout, const float *w_ih, const float *w_hh);
void lstm__step1(lstm__team *team, int H, int I, int Hout, int rev, const float *P, float *act, const float *a_next,
                 const float *x, const float *bsum, const float *h, const float *c_prev, float *c, float *m, float *m2);
void lstm__step1_avx512(int H, int I, int Hout, int g0, int g1, int rev, const float *P, float *act, const float *x,
                        const float *bsum, const float *h, const float *c_prev, float *c, float *m, float *m2);
/* The number of unit groups of the batch-1 step of a layer (1, for H <= 48: m may be h;
 * more, H > 48: chosen from H, I + Hout and the CPU's L1, see step1_avx512.c). */
int lstm__step1_groups(int H, int I, int Hout);
int lstm__gru_step1_groups(int H, int I, int Hout);
/* The GRU's batch-1 step, the same kernel with act columns (pre_r, pre_z, xn, hn)
 * (gru_step1_pack: 3 slots per row, r, z and xn from W_ih, r, z and hn from W_hh;
 * lstm__gru_step1_pack_size floats), bsum = lstm__cell_bias (b_ir + b_hr,
 * b_iz + b_hz, b_in, b_hn); then r, z = σ, n = tanh(xn + r·hn), m = (h − n)·z + n
 * and act = r, z, n, hn.  No c (c_prev and c are ignored), Hout = H. */
size_t lstm__gru_step1_pack_size(int H, int I, int Hout);
void lstm__gru_step1_pack(float *P, int H, int I, int Hout, const float *w_ih, const float *w_hh);
void lstm__gru_step1(lstm__team *team, int H, int I, int Hout, int rev, const float *P, float *act,
                     const float *a_next, const float *x, const float *bsum, const float *h, const float *c_prev, float *c, float *m, float *m2);
void lstm__gru_step1_avx512(int H, int I, int g0, int g1, int rev, const float *P, float *act, const float *x,
                            const float *bsum, const float *h, float *m, float *m2);

/* A sequence at batch 1 on a team of exactly 2 threads with the step's hand-off
 * overlapped (step1_avx512.c): thread 0 takes the first half of the groups and
 * starts each step on the rows of h it wrote itself, waiting for the other
 * half only midway; thread 1 waits for thread 0's half, then runs its groups
 * whole.  Every sum is the same chain as lstm__step1's (the same bits).
 * Inference only, act [T steps] holding bias + x·W_ihᵀ already, no projection
 * (Hout = H).  Returns 1 when it ran the sequence, 0 (nothing done) on a team
 * of other than 2 threads or a shape lstm__step1_seq2_ok refuses.  bufs gives
 * step s's act, c, m (h out) and its h and c_prev (NULL at s = 0 without h0/c0);
 * part: scratch of 4H floats. */
typedef struct {
    float *act, *c, *m;
    const float *h, *c_prev;
} lstm__step1_bufs;
int lstm__step1_seq2_ok(int gru, int H, int I);
int lstm__step1_seq2(lstm__team *team, int gru, int H, int I, int T, int rev0, const float *P, float *part,
                     void (*bufs)(void *ctx, int s, lstm__step1_bufs *b), void *ctx);
int lstm__step1_seq2_runs(void); /* (tests) how many sequences took it in this process */
/* A step in two calls, where lstm__step1_sums_ok(gru, H, I) (every unit group of 2-4
 * blocks, none half-packed, Hout = H): lstm__step1_sums, part [4, H] = h·W_hhᵀ, each
 * sum the chain from 0 the step makes (groups [g0, g1) of lstm__step1_ngroups); and
 * lstm__step1_finish, the step from part and act (bias + x·W_ihᵀ): pre = part + act,
 * then act, c, m as lstm__step1.  The two give lstm__step1's bits, and the sum
 * over h needs neither x nor act, so it may run before they exist (the sampler:
 * layer 0's sum for the next byte while the layers above run). */
int lstm__step1_sums_ok(int gru, int H, int I);
int lstm__step1_ngroups(int gru, int H, int I);
void lstm__step1_sums(int gru, int H, int I, int g0, int g1, int rev, const float *P, float *part, const float *h,
                      int pf);
void lstm__step1_finish(int gru, int H, int I, int g0, int g1, int rev, const float *P, const float *part, float *act,
                        const float *h, const float *c_prev, float *c, float *m);
/* lstm__step1_layer: lstm__step1_avx512 (gru: lstm__gru_step1_avx512) with Hout = H and no m2.
 * pf (here and in lstm__step1_sums): prefetch the pack's rows ahead (1) or not (0), or -1: by
 * the call's own bytes (lstm__cpu_info.step1_pf_bytes); no bit depends on it.
 * lstm__step1_bytes: the pack bytes of a call on groups [g0, g1) over that many rows. */
void lstm__step1_layer(int gru, int H, int I, int g0, int g1, int rev, const float *P, float *act, const float *x,
                       const float *bsum, const float *h, const float *c_prev, float *c, float *m, int pf);
long lstm__step1_bytes(int gru, int H, int I, int g0, int g1, int rows);

void lstm__step1_one_avx512(const lstm__step1_plan *p, const float *x, const float *a0, float *h, float *c, float *y);
void lstm__gru_step1_one_avx512(const lstm__step1_plan *p, const float *x, const float *a0, float *h, float *c,
                                float *y);

/* ---- the CPU (src/kernels/cpu.c), read with cpuid once per process ----
 * Sizes in bytes (0: unknown); l3 is the whole cache the core sees.
 * fma512_full: two 512-bit FMAs per cycle per core (Zen 5, Xeon Scalable),
 * not one split over 256-bit halves (Zen 4, Intel client cores).
 * gemm_kc, gemm_nc: the GEMM blocking chosen from l1d and l2 by
 * lstm__cpu_blocking (rule in cpu.c; LSTM_CPU_L2 overrides l2).
 * gemm_ta_direct: the GEMM reads a transposed A (tn: dGᵀ of the weight
 * gradients) in place instead of packing it (rule in cpu.c;
 * LSTM_GEMM_TA_DIRECT=0|1 overrides; no bit depends on it).
 * step_pf_tiles2: the fused steps prefetch the next unit block's weights when
 * a block runs in two row tiles (B = 7..12; step_tiles.h, rule in cpu.c;
 * LSTM_STEP_PF_TILES2=0|1 overrides; no bit depends on it).
 * step_two_pass8: the LSTM's fused step runs 8 rows as one tile in two passes
 * (gates i, f, then g, o) instead of two tiles of 4 (step_avx512.c, rule in
 * cpu.c; LSTM_STEP_TWO_PASS8=0|1 overrides; no bit depends on it).
 * step_x_quarter: a fused step whose unit block is exactly a quarter of L2
 * also does x·W_ihᵀ (lstm_layer.c's x_in_fused_step; rule in cpu.c; no bit
 * depends on it).
 * step1_pf_bytes: the batch-1 step prefetches its pack when one call streams
 * more than this many bytes of it (rule in cpu.c; LSTM_STEP1_PREFETCH=0|1:
 * never|always; no bit depends on it). */
enum { LSTM__CPU_OTHER, LSTM__CPU_INTEL, LSTM__CPU_AMD };
typedef struct {
    int vendor, family, model; /* family and model as the OS shows them (extended fields added) */
    long l1d, l2, l3;
    int avx2, avx512, fma512_full;
    int gemm_kc, gemm_nc, gemm_ta_direct, step_pf_tiles2, step_two_pass8, step_x_quarter;
    long step1_pf_bytes;
} lstm__cpu_info;
const lstm__cpu_info *lstm__cpu(void);
void lstm__cpu_blocking(long l1d, long l2, int *kc, int *nc);
void lstm__cpu_set_gemm_blocking(int kc, int nc); /* tests: the results must not change */
void lstm__cpu_set_gemm_ta_direct(int on);       /* tests: the results must not change */
void lstm__cpu_set_step_two_pass8(int on);       /* tests: the results must not change */
void lstm__cpu_set_step_pf_tiles2(int on);      /* tools/ab_hooks: no bit depends on it */
void lstm__cpu_set_step1_pf_bytes(long bytes);  /* tools/ab_hooks: no bit depends on it */
void lstm__step1_pf_note(void);                 /* a batch-1 step call prefetched its pack */
int lstm__step1_pf_seen(void);                  /* since the last call; clears (tools/ab_hooks) */

/* C[M,N] = bias[N] (in every row) + A[M,K]·B[N,K]ᵀ: the same sum, in the same
 * order, as filling C with the bias and calling lstm_gemm_nt_mt with beta 1,
 * without the separate pass over C. */
void lstm_gemm_nt_bias_mt(lstm__team *team, int M, int N, int K, const float *A, int lda,
                          const float *B, int ldb, const float *bias, float *C, int ldc);
/* The same product, A packed once for all column blocks into abuf (abuf_n
 * floats) when the kernel packs A and abuf is large enough, else as above;
 * the same bits either way.  lstm__gemm_apack_size: the floats abuf needs
 * for that product under the current kernel, 0 when it would not be used. */
size_t lstm__gemm_apack_size(int M, int N, int K, int lda);
/* A row stride >= K (K + 16 when K is a multiple of 1024) at which the kernels read a
 * row-major A [M, K] in place instead of packing it (gemm.c's a_direct): for buffers
 * made to be a GEMM's A, e.g. the LSTMP's m at every step. */
int lstm__gemm_direct_ld(int K);
void lstm__gemm_nt_bias_apack_mt(lstm__team *team, int M, int N, int K, const float *A, int lda, const float *B,
                                 int ldb, const float *bias, float *C, int ldc, float *abuf, size_t abuf_n);

/* ---- random numbers (src/rnn/lstm_net.c): xorshift64*, state must be nonzero ---- */
/* ---- engine hooks for exact (grouping-independent) training, src/rnn/lstm_layer.c ----
 * lstm__workspace_defer_wgrad(ws, 1): lstm_backward computes dX and the
 * gates' gradients but no weight gradients; the caller forms them from
 * lstm__workspace_saved (valid until the next forward):
 *   X [T,B,in] layer input, Y [T,B,Hout] layer output, h0 [B,Hout] or NULL,
 *   dG [T,B,A·H] in rows of ldg floats: the act columns' gradients (the cell's backward;
 *   the runs map them to W_ih / W_hh rows), dH [T,B,P] and ms [T,B,H] in rows of ldm floats
 *   (proj only, else NULL).
 * lstm__workspace_dropout_slice: this workspace's B rows are rows [b0, b0+B)
 * of a batch of btot; dropout draws every row's numbers and keeps its own. */
typedef struct {
    int in, ldm, ldg;
    const float *X, *Y, *h0, *dG, *dH, *ms;
} lstm__saved;
void lstm__workspace_defer_wgrad(lstm_workspace *ws, int on);
void lstm__workspace_dropout_slice(lstm_workspace *ws, int btot, int b0);
int lstm__workspace_saved(const lstm_workspace *ws, const lstm_net *net, int l, int d, lstm__saved *sv);
lstm__team *lstm__workspace_team(lstm_workspace *ws);
/* How many times ws has packed the weights (tests: LSTM_WS_KEEP_PACKS packs once). */
long lstm__workspace_packs(const lstm_workspace *ws);
/* lstm__stream_act0: one lstm_stream step (T = 1) whose layer-0 input product is
 * given: act0 [B, A·H] = bias + x·W_ih0ᵀ as lstm__cell_gemm_ih_bias writes it
 * (its row of a table over all inputs, for instance).  Layer 0 continues that
 * chain with h·W_hhᵀ exactly as a step of a longer lstm_stream block does, so the
 * bits are those of lstm_stream on x (the streaming invariant). */
lstm_status lstm__stream_act0(const lstm_net *net, lstm_workspace *ws, lstm_state *s, const float *act0, float *y);
/* lstm__stream_act0_early: the same step (the same bits), with layer 0's sum over
 * h for the next call made in this one (lstm__step1_sums), beside layer 1's step,
 * where lstm__stream_early_ok (the batch-1 step's packs, no projection, one
 * direction, layer 0's groups of 2-4 blocks).  *have_sums: 1 when the workspace
 * holds the sums of the state's h0 (the previous call made them); set to 0
 * whenever the state changes otherwise (lstm_stream, a reset), and to what the
 * call leaves.  Elsewhere a plain lstm__stream_act0 step. */
int lstm__stream_early_ok(const lstm_net *net, const lstm_workspace *ws);
int lstm__stream_early_runs(void); /* (tests) how many steps took it in this process */
lstm_status lstm__stream_act0_early(const lstm_net *net, lstm_workspace *ws, lstm_state *s, const float *act0, float *y,
                                    int *have_sums);

uint64_t lstm__rng_next(uint64_t *s);
float lstm__rng_uniform(uint64_t *s); /* [0, 1), 24 random bits */
#endif
