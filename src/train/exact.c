/* exact.c — a training step's gradient as an exact sum over the B streams,
 * so that it is the same bits however the streams are split over threads or
 * processes (lstm_reducer).
 *
 * Each stream s contributes its own partial gradient g_s: for a weight
 * gradient the product over its T steps (one GEMM with K = T), for a bias
 * the sum over its T steps, for an embedding row each (t, s) row of dx.  Row
 * r of a gradient gets a scale 2^F_r chosen from M_r, a maximum over all
 * streams (and ranks: MPI_MAX is exact and order-free) of a bound on
 * |g_s[r, :]|; every g_s[r, c]·2^F_r is rounded to an integer (ties to even),
 * the integers are added in int64 (associative: any order, any grouping,
 * MPI_SUM included), and the sum is turned back into float once.  F_r keeps
 * each term below 2^50 and every sum below 2^60, so nothing overflows; the
 * grid is 2^-49·M_r or finer, far below float32's rounding of the row's
 * large entries.  The bound of a product row m, Σ_t |A[t,s,m]|·max_n |B[t,s,n]|,
 * needs only the factors, so no stream's product is kept in memory. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "train_internal.h"

enum { R_WIH, R_WHH, R_BIAS, R_WHR, R_HEADW, R_HEADB, R_EMB };

/* A gradient [R, C] whose stream partials are products Aᵀ·X over the stream's
 * T steps (or column sums of A): A's rows (t, s) are lda floats apart (the dG
 * regions: lstm__saved.ldg, the workspace's act stride, read when a job runs), the region's
 * rows are A's columns [a0, a0+R).  A layer's W_ih and W_hh regions are one per
 * run of the cell table (lstm__cell: run k sends act column block ih[k].a to
 * W_ih row block ih[k].w); its bias region's rows are the act columns
 * themselves, each sum written to the b_ih and b_hh rows the runs give it (the
 * LSTM: all four blocks to both; the GRU: blocks r, z to both, xn's da_n to
 * b_in only, hn's da_n·r to b_hn only). */
typedef struct {
    int kind, layer;
    int R, C;         /* the gradient is [R, C] */
    float *g, *g2;    /* its float gradient; R_BIAS: b_ih and b_hh [G·H] */
    int lda, a0;      /* the left factor's row length (dG regions: 0, sv->ldg instead) and this
                       * region's first column in it */
    size_t q0, row0;  /* offset in q / tmp; first row in mx / sc */
    int nb;           /* ceil(log2(number of terms of one element)) */
} region;

typedef struct {
    int reg, r0, r1;
} job;

struct lstm__exact {
    int Btot, b0, B, T, L, threads;
    int H, AH;        /* hidden size; act columns per stream and step (cell->A·H) */
    const lstm__cell *cell;
    int bytes;        /* the data are bytes, mapped through the model's id table as read */
    const lstm_reducer *red;
    int nreg, njob;
    region *reg;
    job *jobs;
    size_t nrows, nq;
    float *mx;        /* [nrows + 1] row maxima; the last: the loss's nonfinite_code */
    double *sc;       /* [nrows] 2^F */
    int64_t *q;       /* [nq + 2] integers; the last two: the loss sum */
    float *tmp;       /* [nq] one stream's partial, per region */
    const float *bm_head, *bm_emb;
    float *bsum;      /* per stream sums of the act columns: [L][B][AH], then the head's [B][V] */
    float *cb;        /* [L][2][AH] the W_ih and W_hh bounds of each act column (max over streams) */
    float *bm;        /* row maxima of the right factors, [T·B] each: per layer X, h_prev (and ms); y; dx */
    float *hl, *cl;   /* local carried state when B < Btot (cl: cells with c) */
    /* this step's tensors */
    lstm__saved *sv;  /* [L] */
    lstm__charlm_parts cp;
};

/* ---------------------------------------------------------------- fixed point */

/* A loss sum's kind as a float that a maximum over ranks combines exactly:
 * 0 finite, 1 infinite, 2 NaN (NaN wins, as in one process's sum).  NaN
 * itself cannot be sent: MPI_MAX may drop it. */
static float nonfinite_code(const int64_t *lq) { return lq[0] == INT64_MIN ? (lq[1] ? 2.0f : 1.0f) : 0.0f; }
static double nonfinite_value(float code) { return code >= 2.0f ? NAN : INFINITY; }

static inline float nan_max(float a, float b) { return (b > a || b != b) ? b : a; } /* NaN wins */

static double scale_of(float m, int nb) {
    if (!(m > 0.0f)) return 1.0;
    int e;
    frexp(2.0 * (double)m, &e); /* 2m < 2^e */
    return ldexp(1.0, 50 - e - (nb > 10 ? nb - 10 : 0));
}

/* q[i] += round(x[i]·s), |x[i]·s| < 2^51: the 1.5·2^52 trick rounds to nearest, ties to even */
void lstm__add_fixed_ref(int64_t *q, const float *x, int n, double s) {
    for (int i = 0; i < n; i++) {
        double y = (double)x[i] * s;
        y = (y + 0x1.8p52) - 0x1.8p52;
        q[i] += (int64_t)y;
    }
}

/* g[i] = float(q[i]·inv) (q -> double rounds to nearest, then -> float) */
void lstm__from_fixed_ref(float *g, const int64_t *q, int n, double inv) {
    for (int i = 0; i < n; i++) g[i] = (float)((double)q[i] * inv);
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define LSTM_FIXED_AVX512 1
/* The same bits: vcvtpd2qq rounds to nearest even (MXCSR default) like the trick above. */
__attribute__((target("avx512f,avx512dq"))) void lstm__add_fixed_avx512(int64_t *q, const float *x, int n, double s) {
    __m512d vs = _mm512_set1_pd(s);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m512d y = _mm512_mul_pd(_mm512_cvtps_pd(_mm256_loadu_ps(x + i)), vs);
        __m512i v = _mm512_add_epi64(_mm512_loadu_si512(q + i), _mm512_cvtpd_epi64(y));
        _mm512_storeu_si512(q + i, v);
    }
    lstm__add_fixed_ref(q + i, x + i, n - i, s);
}
__attribute__((target("avx512f,avx512dq"))) void lstm__from_fixed_avx512(float *g, const int64_t *q, int n, double inv) {
    __m512d vi = _mm512_set1_pd(inv);
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(g + i, _mm512_cvtpd_ps(_mm512_mul_pd(_mm512_cvtepi64_pd(_mm512_loadu_si512(q + i)), vi)));
    lstm__from_fixed_ref(g + i, q + i, n - i, inv);
}
#endif

/* Resolved on first use, which may be in several threads at once (the tasks of
 * one team, or two trainers): they all compute the same value, so atomic loads
 * and stores suffice, as in dispatch.c. */
static int fixed_avx512 = -1;
static int use_avx512(void) {
#ifdef LSTM_FIXED_AVX512
    int v = __atomic_load_n(&fixed_avx512, __ATOMIC_RELAXED);
    if (v < 0) {
        const char *k = getenv("LSTM_KERNEL"); /* LSTM_KERNEL=ref|generic: the scalar loops too */
        int off = k && (!strcmp(k, "ref") || !strcmp(k, "generic"));
        v = !off && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
        __atomic_store_n(&fixed_avx512, v, __ATOMIC_RELAXED);
    }
    return v;
#else
    return 0;
#endif
}

static void add_fixed(int64_t *q, const float *x, int n, double s) {
#ifdef LSTM_FIXED_AVX512
    if (use_avx512()) { lstm__add_fixed_avx512(q, x, n, s); return; }
#endif
    lstm__add_fixed_ref(q, x, n, s);
}

static void from_fixed(float *g, const int64_t *q, int n, double inv) {
#ifdef LSTM_FIXED_AVX512
    if (use_avx512()) { lstm__from_fixed_avx512(g, q, n, inv); return; }
#endif
    lstm__from_fixed_ref(g, q, n, inv);
}

static int ceil_log2(size_t n) {
    int k = 0;
    while (((size_t)1 << k) < n) k++;
    return k;
}

/* ---------------------------------------------------------------- setup */

static void exact_free(struct lstm__exact *ex) {
    if (!ex) return;
    free(ex->reg); free(ex->jobs); free(ex->mx); free(ex->sc); free(ex->q); free(ex->tmp);
    free(ex->bm); free(ex->bsum); free(ex->cb); free(ex->hl); free(ex->cl); free(ex->sv);
    free(ex);
}

void lstm__exact_free(lstm_trainer *tr) {
    exact_free(tr->exact);
    tr->exact = NULL;
}

static size_t jobs_of(int R) { return ((size_t)R + 63) / 64; }

static void add_region(struct lstm__exact *ex, int kind, int layer, int R, int C, float *g, float *g2, int lda, int a0,
                       int nb) {
    region *r = &ex->reg[ex->nreg++];
    *r = (region){kind, layer, R, C, g, g2, lda, a0, ex->nq, ex->nrows, nb};
    ex->nq += (size_t)R * C;
    ex->nrows += (size_t)R;
    for (int r0 = 0; r0 < R; r0 += 64) /* 64-row jobs (16-aligned: GEMM rows do not depend on the split) */
        ex->jobs[ex->njob++] = (job){ex->nreg - 1, r0, r0 + 64 < R ? r0 + 64 : R};
}

/* Streams [b0, b0+B) of Btot; r may be NULL (one process).  Everything is made
 * aside first: on an error the trainer keeps its sums and workspace as they were. */
lstm_status lstm__exact_init(lstm_trainer *tr, const lstm_reducer *r) {
    lstm_charlm *m = tr->model;
    int Btot = tr->cfg.batch, T = tr->cfg.bptt, size = r ? r->size : 1, rank = r ? r->rank : 0;
    if (size < 1 || rank < 0 || rank >= size || Btot % size)
        return lstm__fail(LSTM_ERR_ARG, "training: %d processes must divide the batch %d", size, Btot);
    int threads = tr->exact ? tr->exact->threads : 1, bytes = tr->exact ? tr->exact->bytes : 0;
    struct lstm__exact *ex = calloc(1, sizeof *ex);
    lstm_charlm_ws *ws = NULL; /* a new workspace, when this process's stream count changes */
    if (!ex) return lstm__fail(LSTM_ERR_NOMEM, "training: out of memory");
    ex->Btot = Btot;
    ex->B = Btot / size;
    ex->b0 = rank * ex->B;
    ex->T = T;
    ex->L = m->net.cfg.num_layers;
    ex->threads = threads;
    ex->bytes = bytes;
    ex->red = r && size > 1 ? r : NULL;
    const lstm__cell *cell = lstm__cell_of(m->net.cfg.cell);
    int L = m->net.cfg.num_layers, H = m->net.H, Hout = m->net.Hout, P = m->net.cfg.proj_size, V = m->V, B = ex->B;
    int AH = cell->A * H;
    ex->cell = cell;
    ex->H = H;
    ex->AH = AH;
    size_t njob_max = 3 * jobs_of(V); /* the head's two regions, the embedding */
    for (int l = 0; l < L; l++) {
        for (int k = 0; k < cell->n_ih; k++) njob_max += jobs_of(cell->ih[k].n * H);
        for (int k = 0; k < cell->n_hh; k++) njob_max += jobs_of(cell->hh[k].n * H);
        njob_max += jobs_of(AH) + (P ? jobs_of(P) : 0);
    }
    ex->reg = calloc((size_t)L * (cell->n_ih + cell->n_hh + 2) + 3, sizeof *ex->reg);
    ex->jobs = calloc(njob_max, sizeof *ex->jobs);
    ex->sv = calloc((size_t)L, sizeof *ex->sv);
    if (!ex->reg || !ex->jobs || !ex->sv) goto nomem;
    int nbB = ceil_log2((size_t)Btot), nbE = ceil_log2((size_t)Btot * (size_t)T);
    for (int l = 0; l < L; l++) {
        lstm_weights *g = &m->net.g[l];
        for (int k = 0; k < cell->n_ih; k++) {
            const lstm__run *u = &cell->ih[k];
            add_region(ex, R_WIH, l, u->n * H, g->in, g->w_ih + (size_t)u->w * H * g->in, NULL, 0, u->a * H, nbB);
        }
        for (int k = 0; k < cell->n_hh; k++) {
            const lstm__run *u = &cell->hh[k];
            add_region(ex, R_WHH, l, u->n * H, Hout, g->w_hh + (size_t)u->w * H * Hout, NULL, 0, u->a * H, nbB);
        }
        add_region(ex, R_BIAS, l, AH, 1, g->b_ih, g->b_hh, 0, 0, nbB);
        if (P) add_region(ex, R_WHR, l, P, H, g->w_hr, NULL, P, 0, nbB);
    }
    add_region(ex, R_HEADW, 0, V, Hout, m->d_head_w, NULL, V, 0, nbB);
    add_region(ex, R_HEADB, 0, V, 1, m->d_head_b, NULL, V, 0, nbB);
    add_region(ex, R_EMB, 0, V, m->E, m->d_emb, NULL, 0, 0, nbE);
    ex->mx = malloc((ex->nrows + 1) * sizeof(float));
    ex->sc = malloc(ex->nrows * sizeof(double));
    ex->q = malloc((ex->nq + 2) * sizeof(int64_t));
    ex->tmp = malloc(ex->nq * sizeof(float));
    ex->bm = malloc(((size_t)3 * L + 2) * T * B * sizeof(float));
    ex->bsum = malloc(((size_t)L * AH + V) * B * sizeof(float));
    ex->cb = malloc((size_t)L * 2 * AH * sizeof(float));
    if (!ex->mx || !ex->sc || !ex->q || !ex->tmp || !ex->bm || !ex->bsum || !ex->cb) goto nomem;
    if (B < Btot) {
        size_t nc = lstm__charlm_c_floats(m, B);
        ex->hl = calloc(lstm__charlm_h_floats(m, B), sizeof(float));
        ex->cl = nc ? calloc(nc, sizeof(float)) : NULL;
        if (!ex->hl || (nc && !ex->cl)) goto nomem;
    }
    lstm__charlm_parts cp;
    lstm__charlm_ws_parts(tr->ws, &cp);
    if (cp.B != B) { /* the workspace holds this process's streams (all of them again after a reducer) */
        lstm_status st = lstm_charlm_ws_init(&ws, m, T, B, LSTM_WS_TRAIN);
        if (!st && tr->cfg.dropout > 0.0) st = lstm_charlm_ws_set_dropout(ws, (float)tr->cfg.dropout, &tr->rng);
        if (!st && threads > 1) st = lstm_charlm_ws_set_threads(ws, threads);
        if (st) {
            lstm_charlm_ws_free(ws);
            exact_free(ex);
            return st;
        }
        lstm_charlm_ws_free(tr->ws);
        tr->ws = ws;
        lstm__charlm_ws_parts(tr->ws, &cp);
    }
    lstm__exact_free(tr);
    tr->exact = ex;
    lstm__workspace_defer_wgrad(cp.lws, 1);
    lstm__workspace_dropout_slice(cp.lws, Btot, ex->b0);
    return LSTM_OK;
nomem:
    exact_free(ex);
    return lstm__fail(LSTM_ERR_NOMEM, "training: out of memory for the gradient sums");
}

lstm_status lstm_trainer_set_bytes(lstm_trainer *tr, int on) {
    tr->exact->bytes = on != 0; /* a byte outside the vocabulary: the step names it (lstm__exact_grads) */
    return LSTM_OK;
}

void lstm__exact_set_threads(lstm_trainer *tr, int n) {
    if (tr->exact) tr->exact->threads = n;
}

lstm_status lstm_trainer_set_reducer(lstm_trainer *tr, const lstm_reducer *r) { return lstm__exact_init(tr, r); }

/* ---------------------------------------------------------------- bounds */

/* GCC's -O2 cost model leaves these loops scalar; element-wise, so vectors change no bits. */
#if defined(__GNUC__) && !defined(__clang__)
#define VECTORIZE __attribute__((optimize("tree-vectorize", "vect-cost-model=dynamic")))
#else
#define VECTORIZE
#endif

/* out[n] = max_c |X[n·ld + c]| for n < N (NaN propagates) */
VECTORIZE static void rowmax_abs(float *restrict out, const float *restrict X, size_t N, int w, int ld) {
    for (size_t n = 0; n < N; n++) {
        float mx = 0.0f;
        const float *x = X + n * (size_t)ld;
        for (int c = 0; c < w; c++) {
            float a = fabsf(x[c]);
            mx = a > mx ? a : mx; /* NaN here is caught by the products it enters (|NaN|·w) or by the loss */
        }
        out[n] = mx;
    }
}

/* mx[m] = max(mx[m], max_s Σ_t |A[t,s,m]|·bm[t·B + s]) for m < R (R <= 64), A row (t,s) at
 * A + (t·B + s)·lda; bm NULL: Σ_t A[t,s,m] itself (a bias: the bound is the value), kept in
 * sums[s·lds + m]. */
VECTORIZE static void bound_rows(float *restrict mx, const float *restrict A, int lda,
                       const float *restrict bm, int T, int B, int R, float *restrict sums, int lds) {
    float acc[64];
    for (int s = 0; s < B; s++) {
        memset(acc, 0, (size_t)R * sizeof(float));
        for (int t = 0; t < T; t++) {
            const float *a = A + ((size_t)t * B + s) * (size_t)lda;
            if (bm) {
                float w = bm[(size_t)t * B + s];
                for (int m = 0; m < R; m++) acc[m] += fabsf(a[m]) * w;
            } else {
                for (int m = 0; m < R; m++) acc[m] += a[m];
            }
        }
        for (int m = 0; m < R; m++) mx[m] = nan_max(mx[m], fabsf(acc[m]));
        if (!bm) memcpy(sums + (size_t)s * lds, acc, (size_t)R * sizeof(float));
    }
}

/* The three bounds of act columns [m0, m0+R) (R <= 64) in one pass over dG [T,B,AH] (rows of ldg):
 * mx1[m] as a W_ih row's (bm1: X's row maxima), mx2[m] as a W_hh row's (bm2: h_prev's),
 * mx3[m] as a bias row's, whose per-stream sums go to bsum [B, AH]. */
VECTORIZE static void bound_gates(float *restrict mx1, float *restrict mx2, float *restrict mx3,
                                  const float *restrict dG, const float *restrict bm1, const float *restrict bm2,
                                  int T, int B, int ldg, int AH, int m0, int R, float *restrict bsum) {
    float a1[64], a2[64], a3[64];
    for (int s = 0; s < B; s++) {
        memset(a1, 0, sizeof a1);
        memset(a2, 0, sizeof a2);
        memset(a3, 0, sizeof a3);
        for (int t = 0; t < T; t++) {
            const float *a = dG + ((size_t)t * B + s) * (size_t)ldg + m0;
            float w1 = bm1[(size_t)t * B + s], w2 = bm2[(size_t)t * B + s];
            for (int m = 0; m < R; m++) {
                float v = fabsf(a[m]);
                a1[m] += v * w1;
                a2[m] += v * w2;
                a3[m] += a[m];
            }
        }
        for (int m = 0; m < R; m++) {
            mx1[m0 + m] = nan_max(mx1[m0 + m], fabsf(a1[m]));
            mx2[m0 + m] = nan_max(mx2[m0 + m], fabsf(a2[m]));
            mx3[m0 + m] = nan_max(mx3[m0 + m], fabsf(a3[m]));
        }
        memcpy(bsum + (size_t)s * AH + m0, a3, (size_t)R * sizeof(float));
    }
}

/* The row maxima of every right factor (serial; small next to the bounds). */
static void factor_maxima(struct lstm__exact *ex, const lstm_charlm *m) {
    int T = ex->T, B = ex->B, Hout = m->net.Hout, L = m->net.cfg.num_layers;
    size_t N = (size_t)T * B;
    for (int l = 0; l < L; l++) {
        const lstm__saved *sv = &ex->sv[l];
        float *bm = ex->bm + (size_t)3 * l * N;
        rowmax_abs(bm, sv->X, N, sv->in, sv->in);
        /* h_prev of step 0 is h0, of step t the output of step t-1 */
        if (sv->h0) rowmax_abs(bm + N, sv->h0, (size_t)B, Hout, Hout);
        else memset(bm + N, 0, (size_t)B * sizeof(float));
        rowmax_abs(bm + N + B, sv->Y, N - (size_t)B, Hout, Hout);
        if (sv->ms) rowmax_abs(bm + 2 * N, sv->ms, N, m->net.H, sv->ldm);
    }
    rowmax_abs(ex->bm + (size_t)3 * L * N, ex->cp.y, N, Hout, Hout);
    rowmax_abs(ex->bm + ((size_t)3 * L + 1) * N, ex->cp.dx, N, m->E, m->E);
}

/* The per-stream bias sums [B, R] of a layer's act columns or of the head's bias. */
static float *bias_sums(struct lstm__exact *ex, const region *rg) {
    size_t AH = (size_t)ex->AH;
    if (rg->kind == R_HEADB) return ex->bsum + (size_t)ex->L * AH * ex->B;
    return ex->bsum + (size_t)rg->layer * AH * ex->B;
}

/* The bounds of one job's rows into mx (tasks own disjoint rows). */
static void bound_task(void *arg, int task, int ntasks) {
    (void)ntasks;
    struct lstm__exact *ex = arg;
    const job *j = &ex->jobs[task];
    const region *rg = &ex->reg[j->reg];
    const lstm__saved *sv = &ex->sv[rg->layer];
    int T = ex->T, B = ex->B, R = j->r1 - j->r0;
    size_t N = (size_t)T * B;
    const float *bml = ex->bm + (size_t)3 * rg->layer * N;
    float *mx = ex->mx + rg->row0;
    switch (rg->kind) {
    case R_BIAS: { /* and the columns' W_ih and W_hh bounds, which bound_weights hands to those regions */
        float *cb = ex->cb + (size_t)2 * rg->layer * ex->AH;
        bound_gates(cb, cb + ex->AH, mx, sv->dG, bml, bml + N, T, B, sv->ldg, ex->AH, j->r0, R, bias_sums(ex, rg));
        break;
    }
    case R_WIH: case R_WHH: break;
    case R_WHR: bound_rows(mx + j->r0, sv->dH + j->r0, rg->R, bml + 2 * N, T, B, R, NULL, 0); break;
    case R_HEADW: bound_rows(mx + j->r0, ex->cp.logits + j->r0, rg->R, ex->bm_head, T, B, R, NULL, 0); break;
    case R_HEADB:
        bound_rows(mx + j->r0, ex->cp.logits + j->r0, rg->R, NULL, T, B, R, bias_sums(ex, rg) + j->r0, rg->R);
        break;
    case R_EMB:
        for (size_t n = 0; n < N; n++) {
            int v = ex->cp.ids[n];
            if (v >= j->r0 && v < j->r1) mx[v] = nan_max(mx[v], ex->bm_emb[n]);
        }
        break;
    }
}

/* The W_ih and W_hh rows' bounds: their act columns' (serial; a copy). */
static void bound_weights(struct lstm__exact *ex) {
    for (int r = 0; r < ex->nreg; r++) {
        const region *rg = &ex->reg[r];
        if (rg->kind != R_WIH && rg->kind != R_WHH) continue;
        const float *cb = ex->cb + ((size_t)2 * rg->layer + (rg->kind == R_WHH)) * ex->AH + rg->a0;
        memcpy(ex->mx + rg->row0, cb, (size_t)rg->R * sizeof(float));
    }
}

/* ---------------------------------------------------------------- per-stream sums */

/* q[i] += round(x[i]·sc[i]): one scale per element */
static void add_fixed_each(int64_t *q, const float *x, int n, const double *sc) {
    for (int i = 0; i < n; i++) lstm__add_fixed_ref(q + i, x + i, 1, sc[i]);
}

static void job_task(void *arg, int task, int ntasks) {
    (void)ntasks;
    struct lstm__exact *ex = arg;
    const job *j = &ex->jobs[task];
    const region *rg = &ex->reg[j->reg];
    const lstm__saved *sv = &ex->sv[rg->layer];
    int T = ex->T, B = ex->B, C = rg->C, mb = j->r1 - j->r0;
    int64_t *q = ex->q + rg->q0 + (size_t)j->r0 * C;
    float *tmp = ex->tmp + rg->q0 + (size_t)j->r0 * C;
    const double *sc = ex->sc + rg->row0 + j->r0;
    memset(q, 0, (size_t)mb * C * sizeof(int64_t));
    if (rg->kind == R_EMB) { /* each (t, s) row of dx is a term */
        size_t N = (size_t)T * B;
        for (size_t n = 0; n < N; n++) {
            int v = ex->cp.ids[n];
            if (v >= j->r0 && v < j->r1)
                add_fixed(q + (size_t)(v - j->r0) * C, ex->cp.dx + n * (size_t)C, C, sc[v - j->r0]);
        }
        return;
    }
    /* A: the left factor, rows (t, s) of R floats; X: the right one, rows of C floats */
    const float *A = NULL, *X = NULL;
    switch (rg->kind) {
    case R_WIH: A = sv->dG; X = sv->X; break;
    case R_WHH: A = sv->dG; X = sv->Y; break;
    case R_BIAS: A = sv->dG; break;
    case R_WHR: A = sv->dH; X = sv->ms; break;
    case R_HEADW: A = ex->cp.logits; X = ex->cp.y; break;
    case R_HEADB: A = ex->cp.logits; break;
    }
    /* (dG: rows of ldg; ms: rows of ldm) */
    const int lda = rg->kind == R_WIH || rg->kind == R_WHH || rg->kind == R_BIAS ? sv->ldg : rg->lda;
    const int ldx = rg->kind == R_WHR ? sv->ldm : C;
    for (int s = 0; s < B; s++) {
        const float *As = A + (size_t)s * lda + rg->a0 + j->r0;
        size_t ldA = (size_t)B * lda;
        if (rg->kind == R_BIAS || rg->kind == R_HEADB) { /* Σ_t of the stream's rows: kept by the bounds */
            add_fixed_each(q, bias_sums(ex, rg) + (size_t)s * rg->R + j->r0, mb, sc);
            continue;
        } else if (rg->kind == R_WHH) { /* steps 1..T-1 against outputs 0..T-2, then step 0 against h0 */
            float beta = 0.0f;
            if (T > 1) {
                lstm_gemm_tn(mb, C, T - 1, As + ldA, (int)ldA, X + (size_t)s * ldx, B * ldx, tmp, C, 0.0f);
                beta = 1.0f;
            }
            if (sv->h0) lstm_gemm_tn(mb, C, 1, As, (int)ldA, sv->h0 + (size_t)s * C, C, tmp, C, beta);
            else if (T == 1) memset(tmp, 0, (size_t)mb * C * sizeof(float));
        } else {
            lstm_gemm_tn(mb, C, T, As, (int)ldA, X + (size_t)s * ldx, B * ldx, tmp, C, 0.0f);
        }
        for (int i = 0; i < mb; i++) add_fixed(q + (size_t)i * C, tmp + (size_t)i * C, C, sc[i]);
    }
}

/* The summed integers of one job's rows back to float (a bias region's act
 * columns to the b_ih and b_hh rows the runs give them). */
static void float_task(void *arg, int task, int ntasks) {
    (void)ntasks;
    struct lstm__exact *ex = arg;
    const job *j = &ex->jobs[task];
    const region *rg = &ex->reg[j->reg];
    const lstm__cell *cell = ex->cell;
    const int H = ex->H;
    for (int i = j->r0; i < j->r1; i++) {
        double inv = 1.0 / ex->sc[rg->row0 + i];
        const int64_t *q = ex->q + rg->q0 + (size_t)i * rg->C;
        if (rg->kind != R_BIAS) {
            from_fixed(rg->g + (size_t)i * rg->C, q, rg->C, inv);
            continue;
        }
        float v;
        from_fixed(&v, q, 1, inv);
        int wi = lstm__cell_run_row(cell->ih, cell->n_ih, i / H), wh = lstm__cell_run_row(cell->hh, cell->n_hh, i / H);
        if (wi >= 0) rg->g[(size_t)wi * H + i % H] = v;
        if (wh >= 0) rg->g2[(size_t)wh * H + i % H] = v;
    }
}

/* ---------------------------------------------------------------- the step */

static int reduce_fail(const char *what) {
    return lstm__fail(LSTM_ERR_IO, "training: the %s over the processes failed", what);
}

/* The batch of step k (this process's streams), forward, backward, and the
 * exact gradient sums into the model's grads.  *loss: the mean loss over all
 * streams (non-finite: LSTM_ERR_NONFINITE is not returned; the caller checks);
 * *bad_grad: the gradient is not finite. */
lstm_status lstm__exact_grads(lstm_trainer *tr, int64_t k, double *loss, int *bad_grad) {
    struct lstm__exact *ex = tr->exact;
    lstm_charlm *m = tr->model;
    int T = ex->T, B = ex->B, Btot = ex->Btot, L = m->net.cfg.num_layers, Hout = m->net.Hout, H = m->net.H;
    int V = m->V;
    size_t N = (size_t)T * B;
    *bad_grad = 0;
    /* x [T, B]: stream b at j = k*T + t reads ids[b*S + j], predicts ids[b*S + j + 1] */
    const int16_t *map = ex->bytes ? m->id : NULL;
    for (int t = 0; t < T; t++)
        for (int b = 0; b < B; b++) {
            size_t i = (size_t)(ex->b0 + b) * tr->S + (size_t)k * T + (size_t)t;
            lstm_status st = map ? lstm__charlm_pair_in_vocab(m, tr->ids, i) : LSTM_OK;
            if (st) return st;
            tr->x[t * B + b] = map ? (uint8_t)map[tr->ids[i]] : tr->ids[i];
            tr->y[t * B + b] = map ? (uint8_t)map[tr->ids[i + 1]] : tr->ids[i + 1];
        }
    float *h = tr->h, *c = tr->c; /* c NULL: a GRU */
    if (ex->hl) { /* this process's rows of the carried state */
        h = ex->hl;
        c = ex->cl;
        for (int l = 0; l < L; l++) {
            memcpy(h + (size_t)l * B * Hout, tr->h + ((size_t)l * Btot + ex->b0) * Hout, (size_t)B * Hout * sizeof(float));
            if (c) memcpy(c + (size_t)l * B * H, tr->c + ((size_t)l * Btot + ex->b0) * H, (size_t)B * H * sizeof(float));
        }
    }
    lstm_status st = lstm_charlm_forward(m, tr->ws, T, tr->x, tr->y, h, c, NULL);
    if (st) return st;
    if (ex->hl)
        for (int l = 0; l < L; l++) {
            memcpy(tr->h + ((size_t)l * Btot + ex->b0) * Hout, h + (size_t)l * B * Hout, (size_t)B * Hout * sizeof(float));
            if (c) memcpy(tr->c + ((size_t)l * Btot + ex->b0) * H, c + (size_t)l * B * H, (size_t)B * H * sizeof(float));
        }
    lstm__charlm_ws_parts(tr->ws, &ex->cp);
    int64_t lq[2] = {ex->cp.lossq[0], ex->cp.lossq[1]};
    /* backward without weight gradients: dlogits (in place), dy, the recurrent net's dG and dx */
    if (ex->cp.xe) /* the forward kept its softmax exps (the same bits) */
        lstm__xent_backward_cached(ex->cp.logits, ex->cp.xe, ex->cp.xinv, ex->cp.tg, (int)N, V, 1.0f / (float)((size_t)T * Btot));
    else lstm__xent_backward(ex->cp.logits, ex->cp.logits, ex->cp.tg, (int)N, V, 1.0f / (float)((size_t)T * Btot));
    lstm_gemm_nn((int)N, Hout, V, ex->cp.logits, V, m->head_w, Hout, ex->cp.dy, Hout, 0.0f);
    if ((st = lstm_backward(&m->net, ex->cp.lws, ex->cp.dy, NULL, NULL, ex->cp.dx, NULL, NULL))) return st;
    for (int l = 0; l < L; l++) lstm__workspace_saved(ex->cp.lws, &m->net, l, 0, &ex->sv[l]);
    memset(ex->mx, 0, (ex->nrows + 1) * sizeof(float));
    memset(ex->cb, 0, (size_t)L * 2 * ex->AH * sizeof(float));
    factor_maxima(ex, m);
    ex->bm_head = ex->bm + (size_t)3 * L * N;
    ex->bm_emb = ex->bm_head + N;
    lstm__team *team = lstm__workspace_team(ex->cp.lws);
    lstm__team_run_tasks(team, ex->njob, bound_task, ex);
    bound_weights(ex);
    ex->mx[ex->nrows] = nonfinite_code(lq);
    if (ex->red && ex->red->max_f32(ex->red->ctx, ex->mx, ex->nrows + 1)) return reduce_fail("maximum");
    if (ex->mx[ex->nrows] != 0.0f) { /* some stream's loss is not finite */
        *loss = nonfinite_value(ex->mx[ex->nrows]);
        return LSTM_OK;
    }
    for (int r = 0; r < ex->nreg; r++)
        for (int i = 0; i < ex->reg[r].R; i++) {
            size_t row = ex->reg[r].row0 + (size_t)i;
            if (!isfinite(ex->mx[row])) *bad_grad = 1;
            ex->sc[row] = scale_of(ex->mx[row], ex->reg[r].nb);
        }
    if (!*bad_grad) lstm__team_run_tasks(team, ex->njob, job_task, ex);
    else memset(ex->q, 0, ex->nq * sizeof(int64_t));
    ex->q[ex->nq] = lq[0];
    ex->q[ex->nq + 1] = lq[1];
    if (ex->red && ex->red->sum_i64(ex->red->ctx, ex->q, ex->nq + 2)) return reduce_fail("sum");
    lstm__team_run_tasks(team, ex->njob, float_task, ex);
    *loss = lstm__lossq_value(ex->q + ex->nq) / ((double)T * Btot);
    return LSTM_OK;
}

/* ---------------------------------------------------------------- state, validation */

lstm_status lstm_trainer_sync_state(lstm_trainer *tr) {
    struct lstm__exact *ex = tr->exact;
    if (!ex || !ex->red) return LSTM_OK;
    const lstm_charlm *m = tr->model;
    for (int l = 0; l < m->net.cfg.num_layers; l++) {
        if (ex->red->allgather_f32(ex->red->ctx, tr->h + (size_t)l * ex->Btot * m->net.Hout, (size_t)ex->B * m->net.Hout) ||
            (tr->c && ex->red->allgather_f32(ex->red->ctx, tr->c + (size_t)l * ex->Btot * m->net.H, (size_t)ex->B * m->net.H)))
            return reduce_fail("state gathering");
    }
    return LSTM_OK;
}

lstm_status lstm_trainer_validate(lstm_trainer *tr, const uint8_t *ids, size_t n, double *loss) {
    struct lstm__exact *ex = tr->exact;
    int64_t q[2] = {0, 0};
    lstm_status st = lstm__charlm_eval_q(tr->model, ids, ex->bytes ? tr->model->id : NULL, n, ex->Btot, ex->b0, ex->B,
                                         ex->T, ex->threads, q);
    if (st) return st;
    float bad = nonfinite_code(q);
    if (q[0] == INT64_MIN) q[0] = q[1] = 0;
    if (ex->red && (ex->red->max_f32(ex->red->ctx, &bad, 1) || ex->red->sum_i64(ex->red->ctx, q, 2)))
        return reduce_fail("validation sum");
    size_t S = (n - 1) / (size_t)ex->Btot;
    *loss = bad != 0.0f ? nonfinite_value(bad) : lstm__lossq_value(q) / ((double)S * ex->Btot);
    return LSTM_OK;
}
