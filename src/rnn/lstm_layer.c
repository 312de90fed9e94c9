/* lstm_layer.c — the recurrent-layer driver, generic over the cell (the cell
 * table in internal.h: LSTM, GRU): workspaces, the full-sequence forward over
 * layers and directions (torch.nn.LSTM / nn.GRU semantics), backward through
 * time, and streaming.  Time-major: every [T, B, N] tensor holds step t as
 * one contiguous [B, N] block.
 *
 * Per (layer, direction), one dir_op:
 *   forward:  act[T·B, A·H] = bias + X·W_ihᵀ           (one GEMM over all steps;
 *             act's rows lda = act_ld(A·H) floats apart)
 *             for each step: act_t += h_prev·W_hhᵀ (by the cell's runs);
 *             the cell's point-wise forward; h_t (LSTMP: m_t·W_hrᵀ)
 *   backward: reverse loop: the cell's point-wise backward turns act_t into
 *             dG_t; dh_prev (+)= dG_t·W_hh
 *             then one GEMM each: dW_ih += dGᵀX, dW_hh += dGᵀH_prev,
 *             dW_hr += dHᵀM, dX = dG·W_ih. */
#include <math.h>
#include <limits.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include "internal.h"

struct lstm_workspace {
    int T, B, train;
    int L, D, H, Hout, I, P;
    const lstm__cell *cell;
    int AH;               /* act columns: A·H */
    int lda;              /* act's row stride (act_ld: A·H, or past it where A·H rows alias) */
    size_t tbg, tbh, tby; /* T·B·lda, T·B·H, T·B·D·Hout */
    size_t tbm;           /* T·B·m_ld(H): train, proj: ms of one (l,d) */
    float *act;   /* train: [L·D][T,B,lda] activations; else [D][T,B,lda] scratch */
    float *cs;    /* has_c: train [L·D][T,B,H] cell states; else [D][2][B,H]; NULL without c */
    float *ms;    /* proj: m = o·tanh(c) in rows of m_ld(H): train [L·D][T,B], else [D][B]; NULL without proj */
    float *ys;    /* train: [L][T,B,D·Hout] layer outputs; else [2][T,B,D·Hout] */
    /* training only */
    float *x0;    /* [T,B,I] copy of the input */
    float *h0, *c0; /* [L·D,B,Hout], [L·D,B,H] copies of the initial state */
    int has_h0, has_c0, fwd_T;
    const float *fwd_src; /* the net of that forward (params, stamp): backward runs on its packs and saved */
    uint64_t fwd_stamp;   /* activations, so it refuses another net of the same shape */
    float *xdrop; /* dropout: [L-1][T,B,D·Hout] inputs of layers 1.. after dropout */
    float *mask;  /* dropout: [L-1][T,B,D·Hout] 0 or 1/(1-p) */
    float dropout;
    float fwd_dropout; /* the dropout the last training forward ran with: what its backward undoes */
    uint64_t *rng;
    int drop_btot, drop_b0; /* dropout slice: rows [b0, b0+B) of a batch of btot (0: the whole batch) */
    int defer_wgrad;        /* backward leaves the weight gradients to the caller (lstm__workspace_saved) */
    float *dY[2]; /* [T,B,D·Hout] gradients between layers (2 buffers for L >= 3, 1 for L = 2) */
    float *dH;    /* proj: [L·D][T,B,P] (kept for dW_hr); else [D][B,Hout] */
    float *dh;    /* [D][B,Hout] running dL/dh_prev (per direction d: see bwd_scratch) */
    float *dm;    /* has_c: [D][B,H] */
    float *dc;    /* has_c: [D][B,H] running dL/dc */
    float *cscr;  /* the cell's backward scratch [D][B, scratch_units·H] (NULL if none) */
    float *dx2;   /* D = 2: [T,B,in] the second direction's dX, added to the first's (see backward) */
    float *dbias; /* [D][2][A·H]: per direction, bias-gradient sum and block sum */
    float *wtmp;  /* [max(A·H·max(in, Hout), P·H)] partial sums of weight gradients */
    /* GEMM path: W_hh repacked for the per-step products, one pack per hh run, per (l,d) */
    float *pk;
    size_t pk_size, pk_off[2];
    const float *pk_src; /* params the packs were made from (lstm_stream reuses them) */
    uint64_t pk_stamp;   /* and that net's stamp: another net at a freed one's address is not it */
    int keep_packs;      /* LSTM_WS_KEEP_PACKS: lstm_forward reuses them too */
    long n_packs;        /* times the weights were packed (tests) */
    int pui_ok;          /* pui holds the current W_ih: 2 all of it (one-step calls), 1 where x_in_fused_step */
    lstm__team *team;    /* NULL: one thread */
    /* fused step (AVX-512): unit-interleaved W_hh and W_ih per (l,d) */
    int fused;
    float *pu, *pui;
    float *pdh;          /* train, fused, B >= 2: W_hh [G·H, Hout] per (l,d) packed for the backward's dh product */
    size_t pdh_size;
    /* train, fused: W_ih [G·H, in] per (l,d) packed the same way, for dX_t = dG_t·W_ih inside the
     * backward's loop; pdx_on[k]: packed for (l,d) k by the last forward (see pack_input) */
    float *pdx;
    size_t pdx_size;
    unsigned char *pdx_on;
    float *bias;         /* [L·D][A·H]: the bias of each act column (lstm__cell_bias), once per set of weights */
    /* the input product's X packed once for all its column blocks (lstm__gemm_nt_bias_apack_mt), or NULL */
    float *xpack;
    size_t xpack_n;
    /* Non-finite weights (see zero_h0_for): */
    int whh_nonfinite;   /* some W_hh has a NaN or ±Inf (set with the packs) */
    float *zeros;        /* inference: [B,Hout] zeros, the h0 of such a net */
    size_t pu_size, pui_size;
    /* LSTM_WS_BATCH_FIRST: the caller's [B,T,·] arrays in time-major order */
    int bf;
    float *bfx;          /* [T,B,I]: x, then dx */
    float *bfy;          /* [T,B,D·Hout]: y, then dy */
    /* batch 1 with the fused step and a cell->step1: its pack of W_ih and W_hh per (l,d) (instead of pu, pui) */
    float *p1;
    size_t p1_size;
    float *p1_part;      /* with p1: [D, 4H] sums over h of a step cut in two (lstm__step1_seq2, the sampler) */
    /* LSTMP: W_hr packed for the per-step m·W_hrᵀ, per (l,d) (with the other packs) */
    float *pr;
    size_t pr_size;
    int p1_groups;       /* cell->step1_groups(H, I, Hout): 1 for H <= 48 */
    int cell_kind;       /* net->cfg.cell at init (lstm_stream's check without a lookup) */
    int p1_rev;          /* the order of the step's unit groups (p1) or blocks (fused) at the next step
                          * (alternates; no bit depends on it) */
    /* p1 with one group, no projection and a cell->step1_one: each layer's step arguments, made
     * once (lstm_stream's fast path); p1_bias: net->cfg.bias they were made for */
    lstm__step1_plan *p1_plan;
    int p1_bias;
};

/* The fused step reproduces the FMA-chain GEMM kernels and the AVX-512 gate
 * kernel bit for bit, so it is used exactly when both are (LSTM_KERNEL=ref,
 * generic or avx2 turns it off). */
static int fused_available(const lstm__cell *cell) { return cell->fused_step && lstm__kernel_fused(); }

/* The row stride of m (LSTMP: o·tanh(c), [B, H] a step, the projection's A), in inference
 * and training: one the GEMM reads in place (rows 4 KB apart it would pack at every step, on
 * each thread). */
static int m_ld(int H) { return lstm__gemm_direct_ld(H); }

/* Zeroed and touched: the pages are mapped here, at workspace init, not by
 * the first lstm_forward (calloc's fresh pages fault on first write). */
/* n floats (at least 1), zeroed (so touched now, not in the first forward),
 * on a 64-byte boundary (so tasks that own 16-float ranges share no line). */
static float *alloc_f(size_t n, int *ok) {
    size_t bytes = ((n ? n : 1) * sizeof(float) + 63) / 64 * 64;
    float *p = aligned_alloc(64, bytes);
    if (!p) *ok = 0;
    else memset(p, 0, bytes);
    return p;
}

static int x_in_fused_step(const lstm__cell *cell, int train, lstm__team *team, int B, int H, int in, int Hout);
static int row_tasks(lstm__team *team, int B);
static int train_row_tasks(const lstm__cell *cell, lstm__team *team, int B, int H, int Hout);

/* Room to pack X for the layers whose input product is a GEMM over T·B rows
 * (which x_in_fused_step decides from the thread count too): grown when that
 * changes.  0, or -1 out of memory (the old room is kept). */
static int xpack_reserve(lstm_workspace *ws) {
    size_t need = 0, tb = (size_t)ws->T * ws->B;
    for (int l = 0; !ws->p1 && l < ws->L; l++) {
        int in = l == 0 ? ws->I : ws->D * ws->Hout;
        if (ws->fused && x_in_fused_step(ws->cell, ws->train, ws->team, ws->B, ws->H, in, ws->Hout)) continue;
        for (int r = 0; r < ws->cell->n_ih; r++) {
            size_t n = lstm__gemm_apack_size((int)tb, ws->cell->ih[r].n * ws->H, in, in);
            if (n > need) need = n;
        }
    }
    if (need <= ws->xpack_n) return 0;
    int ok = 1;
    float *p = alloc_f(need, &ok);
    if (!p) return -1;
    free(ws->xpack);
    ws->xpack = p;
    ws->xpack_n = need;
    return 0;
}

/* The row stride of act (and of dG, which overwrites it) for A·H columns: A·H, or
 * A·H + 16 where rows A·H floats apart are a multiple of 4 KiB apart (H = 256,
 * 512, 768, 1024, ...).  Such rows share their L1 sets, so a GEMM reads dG
 * (dX = dG·W_ih) only after packing it (gemm.c, a_direct); 16 floats more a
 * row and it reads dG where it lies.  lstm__set_act_pad (tests): -1 this rule,
 * 0 never pad, 1 always. */
static int act_pad_mode = -1;

void lstm__set_act_pad(int mode) { __atomic_store_n(&act_pad_mode, mode, __ATOMIC_RELAXED); }

static int act_ld(int AH) {
    int mode = __atomic_load_n(&act_pad_mode, __ATOMIC_RELAXED);
    if (mode >= 0) return mode ? AH + 16 : AH;
    return lstm__gemm_direct_ld(AH);
}

/* Whether the largest buffers fit in size_t: L·D·T·B rows of the widest row a step keeps,
 * counted 16 times over (the buffers of a kind, 4 bytes a float); past it a product would
 * wrap and a buffer be allocated short.  (T·B <= INT_MAX is checked apart.) */
static int ws_sizes_fit(const lstm_net *net, const lstm__cell *cell, int T, int B) {
    const size_t H = (size_t)net->H, w = (size_t)act_ld(cell->A * net->H) + (size_t)lstm__gemm_direct_ld(net->H) + H +
                                          (size_t)net->D * (size_t)net->Hout + (size_t)net->cfg.input_size;
    size_t n;
    return !__builtin_mul_overflow((size_t)T * (size_t)B, (size_t)net->cfg.num_layers * (size_t)net->D, &n) &&
           !__builtin_mul_overflow(n, w, &n) && !__builtin_mul_overflow(n, (size_t)16, &n);
}

lstm_status lstm_workspace_init(lstm_workspace **out, const lstm_net *net, int T, int B, int flags) {
    *out = NULL;
    const int known = LSTM_WS_TRAIN | LSTM_WS_BATCH_FIRST | LSTM_WS_KEEP_PACKS | LSTM__WS_SLICE;
    if (flags & ~known) /* (a bit of a later version, or a value that is not flags at all) */
        return lstm__fail(LSTM_ERR_ARG, "workspace: unknown flags 0x%x", (unsigned)(flags & ~known));
    if (T < 1 || B < 1) return lstm__fail(LSTM_ERR_ARG, "workspace: T=%d and B=%d must be >= 1", T, B);
    if ((size_t)T * (size_t)B > INT_MAX) /* (rows are int in the GEMMs and kernels) */
        return lstm__fail(LSTM_ERR_ARG, "workspace: T*B = %zu exceeds %d (T=%d, B=%d)", (size_t)T * (size_t)B, INT_MAX, T, B);
    if (!ws_sizes_fit(net, lstm__cell_of(net->cfg.cell), T, B))
        return lstm__fail(LSTM_ERR_ARG, "workspace: T=%d, B=%d: its buffers' sizes overflow for this network", T, B);
    if (!lstm__net_made(net)) return lstm__fail(LSTM_ERR_ARG, "workspace: the network is not initialized (or was freed)");
    lstm_workspace *ws = calloc(1, sizeof *ws);
    if (!ws) return lstm__fail(LSTM_ERR_NOMEM, "workspace: out of memory");
    ws->T = T;
    ws->B = B;
    ws->train = (flags & LSTM_WS_TRAIN) != 0;
    ws->bf = (flags & LSTM_WS_BATCH_FIRST) != 0;
    ws->keep_packs = (flags & LSTM_WS_KEEP_PACKS) != 0;
    ws->L = net->cfg.num_layers;
    ws->D = net->D;
    ws->H = net->H;
    ws->Hout = net->Hout;
    ws->I = net->cfg.input_size;
    ws->P = net->cfg.proj_size;
    const lstm__cell *cell = ws->cell = lstm__cell_of(net->cfg.cell);
    ws->cell_kind = net->cfg.cell;
    ws->AH = cell->A * ws->H;
    ws->lda = act_ld(ws->AH);
    size_t tb = (size_t)T * B, LD = (size_t)ws->L * ws->D;
    ws->tbg = tb * ws->lda;
    ws->tbh = tb * ws->H;
    ws->tbm = tb * (size_t)m_ld(ws->H);
    ws->tby = tb * ws->D * ws->Hout;
    size_t bh = (size_t)B * ws->H, bho = (size_t)B * ws->Hout;
    size_t in_max = (size_t)(ws->I > ws->D * ws->Hout ? ws->I : ws->D * ws->Hout); /* widest layer input */
    int ok = 1;
    if (ws->train) {
        ws->act = alloc_f(LD * ws->tbg, &ok);
        if (cell->has_c) ws->cs = alloc_f(LD * ws->tbh, &ok);
        if (ws->P) ws->ms = alloc_f(LD * ws->tbm, &ok);
        ws->ys = alloc_f((size_t)ws->L * ws->tby, &ok);
        ws->x0 = alloc_f(tb * ws->I, &ok);
        ws->h0 = alloc_f(LD * bho, &ok);
        if (cell->has_c) ws->c0 = alloc_f(LD * bh, &ok);
        if (ws->L >= 2) ws->dY[0] = alloc_f(ws->tby, &ok);
        if (ws->L >= 3) ws->dY[1] = alloc_f(ws->tby, &ok);
        /* the backward's running buffers, one set per direction (two run at once: see backward) */
        const size_t D = (size_t)ws->D;
        if (D == 2) ws->dx2 = alloc_f(tb * in_max, &ok);
        ws->dH = alloc_f(ws->P ? LD * tb * ws->P : D * bho, &ok);
        ws->dh = alloc_f(D * bho, &ok);
        if (cell->has_c) {
            ws->dm = alloc_f(D * bh, &ok);
            ws->dc = alloc_f(D * bh, &ok);
        }
        if (cell->scratch_units) ws->cscr = alloc_f(D * cell->scratch_units * bh, &ok);
        ws->dbias = alloc_f(D * 2 * ((ws->AH + 15) / 16 * 16), &ok); /* per direction: sum and block sum */
        ws->wtmp = alloc_f((size_t)ws->AH * in_max, &ok); /* >= A·H·Hout and P·H too */
        if (ws->L > 1) {
            ws->xdrop = alloc_f((size_t)(ws->L - 1) * ws->tby, &ok);
            ws->mask = alloc_f((size_t)(ws->L - 1) * ws->tby, &ok);
        }
    } else {
        /* a scratch per direction: the two run at once on 2 threads (forward) */
        ws->act = alloc_f((size_t)ws->D * ws->tbg, &ok);
        if (cell->has_c) ws->cs = alloc_f((size_t)ws->D * 2 * bh, &ok);
        if (ws->P) ws->ms = alloc_f((size_t)ws->D * B * m_ld(ws->H), &ok);
        ws->ys = alloc_f(ws->L > 1 ? 2 * ws->tby : 1, &ok);
    }
    ws->fused = fused_available(cell);
    if (ws->fused && B == 1 && cell->step1 && !ws->train && !(flags & LSTM__WS_SLICE)) {
        ws->p1_size = (cell->step1_pack_size(ws->H, (int)in_max, ws->Hout) + 15) / 16 * 16;
        ws->p1_groups = cell->step1_groups(ws->H, (int)in_max, ws->Hout); /* (1 or not: H alone decides) */
        if (!(ws->p1 = aligned_alloc(64, LD * ws->p1_size * sizeof(float)))) ok = 0;
        ws->p1_part = alloc_f((size_t)ws->D * 4 * ws->H, &ok);
    } else if (ws->fused) {
        ws->pu_size = (cell->fused_pack_size(ws->H, ws->Hout) + 15) / 16 * 16;
        ws->pui_size = (cell->fused_pack_size(ws->H, (int)in_max) + 15) / 16 * 16;
        ws->pu = aligned_alloc(64, LD * ws->pu_size * sizeof(float));
        ws->pui = aligned_alloc(64, LD * ws->pui_size * sizeof(float));
        if (!ws->pu || !ws->pui) ok = 0;
        else { /* touched now, like alloc_f's buffers */
            memset(ws->pu, 0, LD * ws->pu_size * sizeof(float));
            memset(ws->pui, 0, LD * ws->pui_size * sizeof(float));
        }
#if LSTM_X86
        if (ws->train) {
            ws->pdh_size = (lstm__step_dh_pack_size(ws->Hout, cell->G * ws->H) + 15) / 16 * 16;
            if (!(ws->pdh = aligned_alloc(64, LD * ws->pdh_size * sizeof(float)))) ok = 0;
            else memset(ws->pdh, 0, LD * ws->pdh_size * sizeof(float));
            ws->pdx_size = (lstm__step_dh_pack_size((int)in_max, cell->G * ws->H) + 15) / 16 * 16;
            ws->pdx = aligned_alloc(64, LD * ws->pdx_size * sizeof(float));
            ws->pdx_on = calloc(LD, 1);
            if (!ws->pdx || !ws->pdx_on) ok = 0;
            else memset(ws->pdx, 0, LD * ws->pdx_size * sizeof(float));
        }
#endif
    }
    ws->bias = alloc_f(LD * ws->AH, &ok);
    if (ws->p1 && ws->bias && ws->p1_groups == 1 && !ws->P && cell->step1_one) {
        if (!(ws->p1_plan = calloc(LD, sizeof *ws->p1_plan))) ok = 0;
        else {
            ws->p1_bias = net->cfg.bias;
            for (size_t k = 0; k < LD; k++)
                ws->p1_plan[k] = (lstm__step1_plan){ws->H, net->w[k].in, ws->p1 + k * ws->p1_size,
                                                    net->cfg.bias ? ws->bias + k * ws->AH : NULL};
        }
    }
    if (ws->bf) {
        ws->bfx = alloc_f(tb * ws->I, &ok);
        ws->bfy = alloc_f(ws->tby, &ok);
    }
    if (!ws->train) ws->zeros = alloc_f(bho, &ok);
    if (!ws->fused) { /* the GEMM path's packs; the fused step has its own */
        for (int k = 0; k < cell->n_hh; k++) { /* each pack on a 64-byte boundary */
            ws->pk_off[k] = ws->pk_size;
            ws->pk_size += (lstm_gemm_packed_size(cell->hh[k].n * ws->H, ws->Hout) + 15) / 16 * 16;
        }
        ws->pk = aligned_alloc(64, LD * ws->pk_size * sizeof(float));
        if (!ws->pk) ok = 0;
        else memset(ws->pk, 0, LD * ws->pk_size * sizeof(float));
    }
    if (ws->P) {
        ws->pr_size = (lstm_gemm_packed_size(ws->Hout, ws->H) + 15) / 16 * 16;
        if (!(ws->pr = aligned_alloc(64, LD * ws->pr_size * sizeof(float)))) ok = 0;
        else memset(ws->pr, 0, LD * ws->pr_size * sizeof(float));
    }
    if (xpack_reserve(ws) != 0) ok = 0;
    if (!ok) {
        lstm_workspace_free(ws);
        return lstm__fail(LSTM_ERR_NOMEM, "workspace: out of memory for T=%d, B=%d", T, B);
    }
    *out = ws;
    return LSTM_OK;
}

void lstm_workspace_free(lstm_workspace *ws) {
    if (!ws) return;
    float *bufs[] = {ws->act, ws->cs,    ws->ms, ws->ys, ws->x0, ws->h0, ws->c0, ws->xdrop, ws->mask,
                     ws->dY[0], ws->dY[1], ws->dH, ws->dh, ws->dm, ws->dc, ws->cscr, ws->dbias,
                     ws->wtmp, ws->pk, ws->pu, ws->pui, ws->pdh, ws->pdx, ws->bias, ws->p1, ws->p1_part, ws->zeros, ws->bfx, ws->bfy,
                     ws->pr, ws->xpack, ws->dx2};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) free(bufs[i]);
    free(ws->p1_plan);
    free(ws->pdx_on);
    lstm__team_free(ws->team);
    free(ws);
}

lstm_status lstm_workspace_set_threads(lstm_workspace *ws, int n) {
    if (n < 1 || n > LSTM_MAX_THREADS) return lstm__fail(LSTM_ERR_ARG, "threads: %d must be in [1, %d]", n, LSTM_MAX_THREADS);
    if (n == (ws->team ? lstm__team_size(ws->team) : 1)) return LSTM_OK;
    lstm__team *team = NULL;
    if (n > 1 && !(team = lstm__team_create(n))) /* ws keeps its old team */
        return lstm__fail(LSTM_ERR_NOMEM, "threads: could not start %d threads", n);
    lstm__team_free(ws->team);
    ws->team = team;
    ws->pui_ok = 0; /* which layers' W_ih the fused step packs depends on the thread count */
    (void)xpack_reserve(ws); /* out of memory: the input product runs unpacked, the same bits */
    return LSTM_OK;
}

void lstm_workspace_weights_changed(lstm_workspace *ws) { ws->pk_src = NULL; }

/* ---- non-finite values (PyTorch semantics) ----
 * A NULL h0 stands for zeros, and the engine skips products with it.  torch
 * multiplies them: 0·NaN and 0·Inf are NaN, so with a non-finite W_hh the
 * first step's gates are NaN, and with a non-finite dG at the first step
 * dW_hh is.  These two helpers give the zeros back to those products only
 * when they can differ from 0, so finite nets keep the fast path and its bits. */
int lstm__all_finite(const float *p, size_t n) {
    /* A float is NaN or ±Inf when its exponent bits are all ones, and only then
     * does adding 1 to that field carry into the sign bit: an OR of integers,
     * which vectorizes (a float sum of p[i]·0 was one serial chain of adds,
     * ~3 ms per forward for 4M weights). */
    uint32_t acc[8] = {0}, b;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) /* 8 lanes: the compiler's SIMD ORs */
        for (int j = 0; j < 8; j++) {
            memcpy(&b, p + i + j, sizeof b);
            acc[j] |= (b & 0x7f800000u) + 0x00800000u;
        }
    for (; i < n; i++) {
        memcpy(&b, p + i, sizeof b);
        acc[0] |= (b & 0x7f800000u) + 0x00800000u;
    }
    for (int j = 1; j < 8; j++) acc[0] |= acc[j];
    return !(acc[0] & 0x80000000u);
}

/* all_finite over rows [rows, n] with leading dimension ld. */
static int all_finite_rows(const float *p, int rows, int n, int ld) {
    for (int r = 0; r < rows; r++)
        if (!lstm__all_finite(p + (size_t)r * ld, (size_t)n)) return 0;
    return 1;
}

/* h0 of (l,d) k for the forward: h0k itself, or zeros when h0k is NULL and
 * some W_hh is non-finite (training stores the zeros as its saved h0). */
static const float *zero_h0_for(lstm_workspace *ws, size_t k, const float *h0k) {
    if (h0k || !ws->whh_nonfinite) return h0k;
    if (!ws->train) return ws->zeros;
    size_t bho = (size_t)ws->B * ws->Hout;
    if (!ws->has_h0) {
        memset(ws->h0, 0, (size_t)ws->L * ws->D * bho * sizeof(float));
        ws->has_h0 = 1;
    }
    return ws->h0 + k * bho;
}

/* Items [*lo, *hi) of task `task` of n over N items (rows, unit blocks). */
static void share_of(int N, int task, int n, int *lo, int *hi) {
    *lo = (int)((long)N * task / n);
    *hi = (int)((long)N * (task + 1) / n);
}

/* cell->fused_pack of W [G·H, K] into P by the team, each task a range of unit blocks. */
typedef struct {
    const lstm__cell *cell;
    float *P;
    int H, K, ldw;
    const float *W;
} fused_pack_job;

static void fused_pack_task(void *arg, int task, int ntasks) {
    const fused_pack_job *j = arg;
    int u0, u1;
    share_of((j->H + 15) / 16, task, ntasks, &u0, &u1);
    if (u0 < u1) j->cell->fused_pack(j->P, j->H, j->K, j->W, j->ldw, u0, u1);
}

/* Work that is only memory traffic (the training copies and the backward's
 * packs, ~40 MB per call at train-512) shared by the team instead of left to
 * one thread while the others wait. */
typedef struct {
    float *dst;
    const float *src;
    size_t n;
    int add; /* dst += src instead of dst = src */
} copy_job;

static void copy_task(void *arg, int task, int ntasks) {
    const copy_job *j = arg;
    size_t lo = j->n / 16 * task / ntasks * 16, hi = task == ntasks - 1 ? j->n : j->n / 16 * (task + 1) / ntasks * 16;
    if (lo >= hi) return;
    if (j->add) lstm__add_to(j->dst + lo, j->src + lo, hi - lo);
    else memcpy(j->dst + lo, j->src + lo, (hi - lo) * sizeof(float));
}

static void team_copy_op(lstm__team *team, float *dst, const float *src, size_t n, int add) {
    int nt = lstm__team_size(team);
    copy_job j = {dst, src, n, add};
    if (nt > 1 && n >= (size_t)1 << 16) lstm__team_run_tasks(team, nt, copy_task, &j);
    else copy_task(&j, 0, 1);
}

static void team_copy(lstm__team *team, float *dst, const float *src, size_t n) { team_copy_op(team, dst, src, n, 0); }
/* dst += src, element by element */
static void team_add(lstm__team *team, float *dst, const float *src, size_t n) { team_copy_op(team, dst, src, n, 1); }

#if LSTM_X86
typedef struct {
    float *P;
    const float *W;
    int N, K, ldw; /* W [K, N] into the panels of P (lstm__step_dh_pack) */
} dh_pack_job;

static void dh_pack_task(void *arg, int task, int ntasks) {
    const dh_pack_job *j = arg;
    int k0, k1;
    share_of(j->K, task, ntasks, &k0, &k1);
    if (k0 < k1) lstm__step_dh_pack_rows(j->P, j->N, j->K, j->W, j->ldw, k0, k1);
}

static void dh_pack_mt(lstm__team *team, float *P, int N, int K, const float *W, int ldw) {
    int nt = lstm__team_size(team);
    dh_pack_job j = {P, W, N, K, ldw};
    if (nt > 1 && K >= 2 * nt) lstm__team_run_tasks(team, nt, dh_pack_task, &j);
    else lstm__step_dh_pack(P, N, K, W, ldw);
}
#endif

static void fused_pack_mt(lstm__team *team, const lstm__cell *cell, float *P, int H, int K, const float *W, int ldw) {
    fused_pack_job j = {cell, P, H, K, ldw, W};
    int nt = lstm__team_size(team), nub = (H + 15) / 16;
    if (nt > nub) nt = nub;
    if (nt > 1) lstm__team_run_tasks(team, nt, fused_pack_task, &j);
    else fused_pack_task(&j, 0, 1);
}

/* Repacks every W_hh (and sums the biases) into the
 * layouts of the per-step products. */
static void pack_recurrent(const lstm_net *net, lstm_workspace *ws) {
    const lstm__cell *cell = ws->cell;
    const int H = ws->H, Hout = ws->Hout;
    ws->whh_nonfinite = 0;
    for (int k = 0; k < ws->L * ws->D; k++) {
        const lstm_weights *w = &net->w[k];
        if (!lstm__all_finite(w->w_hh, (size_t)cell->G * H * Hout)) ws->whh_nonfinite = 1;
        lstm__cell_bias(cell, H, ws->bias + (size_t)k * ws->AH, w->b_ih, w->b_hh);
        if (ws->p1) {
            cell->step1_pack(ws->p1 + (size_t)k * ws->p1_size, H, w->in, Hout, NULL, w->w_hh);
        } else if (ws->fused) {
            fused_pack_mt(ws->team, cell, ws->pu + (size_t)k * ws->pu_size, H, Hout, w->w_hh, Hout);
#if LSTM_X86
            if (ws->pdh) dh_pack_mt(ws->team, ws->pdh + (size_t)k * ws->pdh_size, Hout, cell->G * H, w->w_hh, Hout);
#endif
        } else {
            for (int r = 0; r < cell->n_hh; r++)
                lstm_gemm_pack_nt(ws->pk + (size_t)k * ws->pk_size + ws->pk_off[r], cell->hh[r].n * H, Hout,
                                  w->w_hh + (size_t)cell->hh[r].w * H * Hout, Hout);
        }
        if (ws->pr) lstm_gemm_pack_nt(ws->pr + (size_t)k * ws->pr_size, Hout, H, w->w_hr, H);
    }
    ws->pk_src = net->params;
    ws->pk_stamp = net->stamp;
    ws->pui_ok = 0;
    ws->n_packs++;
}

#ifndef LSTM_DX_LOOP_ROWS
#define LSTM_DX_LOOP_ROWS 16 /* a task's rows from which dX is formed in the loop (A/B builds) */
#endif

#if LSTM_X86
/* The batch rows of one task of the backward's loop (0: the loop's steps are split instead). */
static int bwd_task_rows(const lstm_workspace *ws) {
    int nrow = train_row_tasks(ws->cell, ws->team, ws->B, ws->H, ws->Hout);
    return nrow ? (ws->B + nrow - 1) / nrow : ws->team && lstm__team_size(ws->team) > 1 ? 0 : ws->B;
}
#endif

/* W_ih packed for the fused step once per set of weights: every (l,d) for
 * one-step calls (T = 1), else those whose step takes x·W_ihᵀ for sequences. */
static void pack_input(const lstm_net *net, lstm_workspace *ws, int T) {
#if LSTM_X86
    const int task_rows = ws->pdx ? bwd_task_rows(ws) : 0;
#endif
    for (int k = 0; k < ws->L * ws->D; k++) {
        const int in = net->w[k].in, xs = x_in_fused_step(ws->cell, ws->train, ws->team, ws->B, ws->H, in, ws->Hout);
        if (ws->p1)
            ws->cell->step1_pack(ws->p1 + (size_t)k * ws->p1_size, ws->H, in, ws->Hout, net->w[k].w_ih, NULL);
        else if (T == 1 || xs)
            fused_pack_mt(ws->team, ws->cell, ws->pui + (size_t)k * ws->pui_size, ws->H, in, net->w[k].w_ih, in);
        /* the backward's dX_t = dG_t·W_ih inside its loop (step_bwd_dx) where the forward's
         * x·W_ihᵀ is inside the step and a task has >= 16 rows.  Zen 5, 2 threads, interleaved
         * (ms, in the loop vs after it): train-512 (32 rows a task) 241-252 vs 245-266,
         * gru-train-512 185-187 vs 187-188; with 16 rows (once dGᵀ was read in place and the
         * bias sums and dW blocks went together, 4 rounds) bidir-train-256 157.8-164.0 vs
         * 158.4-167.5, charlm-train 33.3-34.2 vs 34.5-35.0, gru-bidir-train-256 122.6-130.4 vs
         * 125.0-132.8, proj-train-1024 197.3-203.1 vs 199.6-204.7 (3); with 8 rows it loses
         * (deep-train-256 71.9-76.8 vs 70.9-72.7) */
#if LSTM_X86
        /* ... and, where the backward's steps are split by units (bwd_task_rows 0: see
         * train_row_tasks), dX = dG·W_ih after the loop by column panels (panel_job) */
        if (ws->pdx && (ws->pdx_on[k] = (unsigned char)((xs && task_rows >= LSTM_DX_LOOP_ROWS) || task_rows == 0)))
            dh_pack_mt(ws->team, ws->pdx + (size_t)k * ws->pdx_size, in, ws->cell->G * ws->H, net->w[k].w_ih, in);
#endif
    }
    ws->pui_ok = T == 1 ? 2 : 1;
}

/* One fused step on the team: tasks own disjoint ranges of unit blocks. */
typedef struct {
    lstm__fused_step_fn fn;
    int B, H, Hout, in, nub;
    int rev; /* this step's block order (alternates, from op->rev0: see lstm__fused_step_fn) */
    float *act;
    const float *x, *pih, *bsum, *h, *phh, *c_prev;
    int lda, ldx, ldh, ldm;
    float *c, *m;
} step_job;

static void step_task(void *arg, int task, int ntasks) {
    const step_job *j = arg;
    int u0, u1;
    share_of(j->nub, task, ntasks, &u0, &u1);
    /* h was written by every task of the previous step, on other cores: its lines
     * are requested all at once (into L2) rather than one miss at a time (Zen 5,
     * 2 threads, I = H = 256, B = 4, T = 500: 8.4-10.2 -> 8.0-9.8 ms; fwd-768-b8
     * and a B = 8 GRU unchanged within the noise).  Only while h is small (32 KB):
     * a large h is read over many tiles, and its misses overlap them anyway. */
    if (u0 < u1 && j->h && ntasks > 1 && (int64_t)j->B * j->Hout <= 8192)
        for (int b = 0; b < j->B; b++)
            for (int k = 0; k < j->Hout; k += 16) __builtin_prefetch(j->h + (size_t)b * j->ldh + k, 0, 2);
    if (u0 < u1)
        j->fn(j->B, j->H, j->Hout, j->in, u0, u1, j->rev, j->act, j->lda, j->x, j->ldx, j->pih, j->bsum, j->h, j->ldh,
                          j->phh, j->c_prev, j->c, j->m, j->ldm);
}


lstm_status lstm_workspace_set_dropout(lstm_workspace *ws, float p, uint64_t *rng) {
    if (!(p >= 0.0f && p <= 1.0f)) return lstm__fail(LSTM_ERR_ARG, "dropout: p = %g is not a probability in [0, 1]", (double)p);
    if (p > 0.0f && !rng) return lstm__fail(LSTM_ERR_ARG, "dropout: p = %g needs a random state (rng is NULL)", (double)p);
    ws->dropout = p;
    ws->rng = rng;
    return LSTM_OK;
}

/* The operation of one (layer, direction): everything dir_forward and
 * dir_backward work on.  Tensors are time-major; act holds step t at
 * act + t·B·lda.
 *   X [T,B,in]; h0 [B,Hout] or NULL; c0 [B,H] or NULL (cells with c)
 *   act [T,B,lda] (forward out: what backward needs; backward: dG in place)
 *   cs: has_c, [T,B,H] when keeping all cell states (train), else NULL and cbuf [2][B,H]
 *   ms (proj): [T,B,H] if train else [B,H], in rows of ldm = m_ld(H) (see there)
 *   Y [T,B,D·Hout]: this direction's columns [d·Hout, (d+1)·Hout)
 *   bias [A·H]; pk: the GEMM path's packed W_hh runs; pu, pui: the fused
 *   step's packs; p1: the cell's batch-1 step pack (B = 1, instead of pu, pui);
 *   all NULL: GEMM + the cell's point-wise forward. */
typedef struct {
    const lstm__cell *cell;
    const lstm_weights *w;
    lstm_weights *g;
    lstm__team *team;
    int k, d, T, B, H, Hout, D;
    const float *X, *h0, *c0;
    float *act, *cs, *cbuf, *ms, *Y;
    int lda;         /* act's row stride */
    int ldm;         /* ms's row stride (proj) */
    int solo;        /* run on the calling thread (team: only for the choices, see forward); the
                      * backward: 1 its loop, 2 its weight gradients too (see backward) */
    int train;       /* training storage: every step of act, c, ms kept */
    const float *bias, *pk[2], *pu, *pui, *p1, *pdh, *pdx;
    float *p1_part;  /* with p1: [4H] scratch of a step cut in two */
    const float *pr; /* LSTMP: packed W_hr */
    int act_ready;   /* act [T,B,lda] already holds bias + X·W_ihᵀ (X unused) */
    int rev0;        /* p1 or the fused step: the group (block) order of step 0 (then alternating;
                      * it continues from call to call, so streaming alternates too) */
    float *xpack;    /* room to pack X for the input product (xpack_n floats), or NULL */
    size_t xpack_n;
} dir_op;

/* The op of (l,d) k = l·D + d over T steps of X, writing layer output Y. */
static dir_op dir_op_make(const lstm_net *net, lstm_workspace *ws, int k, int T, const float *X, const float *h0,
                          const float *c0, float *Y) {
    const int tr = ws->train; /* training keeps every step of every (l,d); inference reuses one scratch */
    dir_op op = {.cell = ws->cell, .w = &net->w[k], .g = &net->g[k], .team = ws->team, .k = k, .d = k % ws->D, .T = T,
                 .B = ws->B, .H = ws->H, .Hout = ws->Hout, .D = ws->D, .X = X, .h0 = h0, .c0 = c0, .Y = Y,
                 .train = tr, .bias = ws->bias + (size_t)k * ws->AH, .xpack = ws->xpack, .xpack_n = ws->xpack_n};
    const size_t d = (size_t)op.d; /* inference: each direction its own scratch */
    op.act = tr ? ws->act + (size_t)k * ws->tbg : ws->act + d * ws->tbg;
    op.lda = ws->lda;
    if (ws->cs) {
        op.cs = tr ? ws->cs + (size_t)k * ws->tbh : NULL;
        op.cbuf = tr ? NULL : ws->cs + d * 2 * (size_t)ws->B * ws->H;
    }
    if (ws->ms) op.ms = tr ? ws->ms + (size_t)k * ws->tbm : ws->ms + d * ws->B * (size_t)m_ld(ws->H);
    op.ldm = m_ld(ws->H);
    if (ws->pr) op.pr = ws->pr + (size_t)k * ws->pr_size;
    for (int r = 0; ws->pk && r < ws->cell->n_hh; r++) op.pk[r] = ws->pk + (size_t)k * ws->pk_size + ws->pk_off[r];
    op.rev0 = ws->p1_rev;
    if (ws->p1) {
        op.p1 = ws->p1 + (size_t)k * ws->p1_size;
        op.p1_part = ws->p1_part + d * 4 * ws->H;
    } else if (ws->fused) {
        op.pu = ws->pu + (size_t)k * ws->pu_size;
        op.pui = ws->pui + (size_t)k * ws->pui_size;
        if (ws->pdh) op.pdh = ws->pdh + (size_t)k * ws->pdh_size;
        if (ws->pdx && ws->pdx_on[k]) op.pdx = ws->pdx + (size_t)k * ws->pdx_size;
    }
    return op;
}

/* The cell's point-wise forward of one step, tasks taking batch rows (rows are
 * independent: the same bits for any split). */
typedef struct {
    const lstm__cell *cell;
    lstm__cell_step s;
} step_fwd_job;

static void step_fwd_task(void *arg, int task, int ntasks) {
    const step_fwd_job *j = arg;
    const lstm__cell_step *s = &j->s;
    int b0, b1;
    share_of(s->B, task, ntasks, &b0, &b1);
    if (b0 >= b1) return;
    lstm__cell_step r = *s;
    r.B = b1 - b0;
    r.act += (size_t)b0 * s->lda;
    r.h += (size_t)b0 * s->ldh;
    if (r.h_prev) r.h_prev += (size_t)b0 * s->ldhp;
    if (r.c) r.c += (size_t)b0 * s->H;
    if (r.c_prev) r.c_prev += (size_t)b0 * s->H;
    j->cell->forward(&r);
}

/* Threads and the recurrence.  A batch row's state depends on its own row
 * only, so a task that owns batch rows [b0, b1) runs all T steps for them
 * without waiting for the other tasks (one hand-off per sequence instead of
 * one or two per step); each task reads all of W_hh every step.  Splitting
 * the hidden units instead shares W_hh between the threads but needs a
 * hand-off per step; it is kept for batches too small to give every thread
 * ROW_TASK_MIN rows.  Element values do not depend on the split.
 * 8: on Zen 5 (2 threads, idle, 3 interleaved rounds) fwd-768-b8 (4 rows per
 * thread) ran 57-59 ms with the row split at 4 rows and 53-54 ms with the unit
 * split (each thread streams half of W_hh's 9.4 MB per step instead of all of
 * it); at 8 or more rows per thread (deep-fwd-256, charlm-train, fwd-512) the
 * two thresholds were equal. */
#ifndef ROW_TASK_MIN
#define ROW_TASK_MIN 8
#endif

/* L2 per core in bytes for the engine's rules (unknown: the common 1 MiB). */
static int64_t l2_bytes(void) { return lstm__cpu()->l2 > 0 ? lstm__cpu()->l2 : (int64_t)1 << 20; }
/* L2 as training's rules count it: at most 1 MiB (a Xeon's 2 MB L2 streamed like Zen 5's
 * 1 MB in every training choice measured: train_row_tasks, x_in_fused_step) */
static int64_t l2_train_bytes(void) { return l2_bytes() < (int64_t)1 << 20 ? l2_bytes() : (int64_t)1 << 20; }

/* Number of row tasks (0: split something else, or nothing to split). */
static int row_tasks(lstm__team *team, int B) {
    int nt = team ? lstm__team_size(team) : 1;
    return nt > 1 && B >= ROW_TASK_MIN * nt ? nt : 0;
}

/* The same for an inference forward: there the unit split wins as soon as a
 * layer's weights, G·H·(in + Hout) floats, pass a quarter of L2 (the hand-off
 * per step is then small against the step, and each thread streams half of
 * them per step instead of all).  Zen 5, 2 threads, interleaved A/B (ms, unit
 * vs row split): deep-fwd-256 23.3-23.9 vs 25.7-26.7, gru-fwd-512 59.7-60.6 vs
 * 63.2-64.5, bidir-fwd-256 55.2-56.2 vs 59.3-60.1, fwd-1024 148-166 vs
 * 168-171, 64->256 x2 at B = 32 11.6-11.7 vs 12.7-12.9; fwd-512 and
 * proj-fwd-1024 equal; I = H = 64 at B = 16 (131 KB) 0.91 vs 0.88.  Training
 * has its own rule (train_row_tasks): its backward runs per row task, and the
 * row split wins there unless W_hh is large against a thread's rows (train-512
 * with the unit split everywhere: 273-298 vs 237-256). */
static int fwd_row_tasks(const lstm__cell *cell, int train, lstm__team *team, int B, int H, int in, int Hout) {
    if (train) return train_row_tasks(cell, team, B, H, Hout);
    int nrow = row_tasks(team, B);
    return nrow && (int64_t)4 * cell->G * H * (in + Hout) > l2_bytes() / 4 ? 0 : nrow;
}

static int train_split_mode = -1; /* lstm__set_train_split (tools): -1 train_row_tasks's rule */

void lstm__set_train_split(int mode) { __atomic_store_n(&train_split_mode, mode, __ATOMIC_RELAXED); }

/* Training (forward and backward alike): the row split, unless each thread would
 * stream half an L2 (of at most 1 MiB) or more of W_hh per step for each of its rows; there the unit
 * split wins now that its backward's dh and dX run on the fused step's packs by
 * column panels.  Zen 5, 2 threads, T = 100 (1024: T = 50, 25), 3 interleaved
 * pairs, time with the unit split / with the row split (W_hh's bytes per row of
 * a thread): I = H = 512, B = 16 0.97 (512 KB), B = 32 0.99 (256 KB), B = 64
 * 1.07 (128 KB); 640, B = 32 1.00 (410 KB); 768, B = 16 0.95, B = 24 0.96, B =
 * 32 0.98 (590 KB); 1024, B = 32 0.95, B = 64 0.96 (512 KB); proj-train-1024
 * (256 KB) 1.06, charlm-train (64 KB) 1.06, gru-train-512 (96 KB) 1.09.
 * Half of an L2 of at most 1 MiB: a Xeon's 2 MB L2 (Emerald Rapids,
 * 2026-11-30, 3 pairs, unit / row split) put these on the row split, where the
 * unit split was faster: 512, B = 16 0.86-0.95; 640, B = 16 0.92-1.01; 768,
 * B = 24 0.87-0.97, B = 32 0.98-0.99; at 512, B = 32 (256 KB) the two were
 * even there too (0.95-1.02). */
static int train_row_tasks(const lstm__cell *cell, lstm__team *team, int B, int H, int Hout) {
    int nrow = row_tasks(team, B), mode = __atomic_load_n(&train_split_mode, __ATOMIC_RELAXED);
    const int64_t l2 = l2_train_bytes();
    if (mode >= 0) return mode ? nrow : 0;
    return nrow && (int64_t)4 * cell->G * H * Hout * nrow >= (int64_t)B * (l2 / 2) ? 0 : nrow;
}

int lstm__train_split_rule(const lstm_workspace *ws) {
    return train_row_tasks(ws->cell, ws->team, ws->B, ws->H, ws->Hout) > 0;
}


/* Buffers of step s (time t) of dir_forward for batch rows from b0. */
typedef struct {
    float *a, *c, *y, *m;
    const float *x;
} fwd_bufs;

static fwd_bufs fwd_step_bufs(const dir_op *op, int s, int b0, int x_in_step) {
    const int B = op->B, H = op->H, Hout = op->Hout, d = op->d, ldy = op->D * Hout;
    const int t = d ? op->T - 1 - s : s;
    const size_t row = (size_t)t * B + b0;
    fwd_bufs f;
    /* inference with x·W_ihᵀ in the step: act is the step's scratch, nothing reads it later */
    f.a = op->act + (x_in_step && !op->train ? (size_t)b0 : row) * op->lda;
    f.c = op->cs ? op->cs + row * H : op->cbuf ? op->cbuf + ((size_t)(s & 1) * B + b0) * H : NULL;
    f.y = op->Y + row * ldy + (size_t)d * Hout;
    f.m = op->w->w_hr ? op->ms + (op->train ? row : (size_t)b0) * op->ldm : f.y;
    f.x = x_in_step ? op->X + row * op->w->in : NULL;
    return f;
}

/* The fused step over all T steps for the batch rows of one row task. */
typedef struct {
    const dir_op *op;
    int x_in_step;
} fwd_rows_job;

static void fwd_rows_task(void *arg, int task, int ntasks) {
    const fwd_rows_job *j = arg;
    const dir_op *op = j->op;
    const lstm_weights *w = op->w;
    const int H = op->H, Hout = op->Hout, ldy = op->D * Hout, ldm = w->w_hr ? op->ldm : ldy;
    int b0, b1;
    share_of(op->B, task, ntasks, &b0, &b1);
    const int nb = b1 - b0;
    if (nb <= 0) return;
    const float *hp = op->h0 ? op->h0 + (size_t)b0 * Hout : NULL, *cp = op->c0 ? op->c0 + (size_t)b0 * H : NULL;
    int ldh = Hout;
    for (int s = 0; s < op->T; s++) {
        fwd_bufs f = fwd_step_bufs(op, s, b0, j->x_in_step);
        op->cell->fused_step(nb, H, Hout, w->in, 0, (H + 15) / 16, (op->rev0 + s) & 1, f.a, op->lda, f.x, w->in, op->pui, w->b_ih ? op->bias : NULL,
                             hp, ldh, op->pu, cp, f.c, f.m, ldm);
        if (w->w_hr) lstm_gemm_packed(nb, Hout, H, f.m, ldm, op->pr, f.y, ldy, 0.0f); /* y = m·W_hrᵀ */
        hp = f.y;
        ldh = ldy;
        cp = f.c;
    }
}

/* Whether the fused step also does x·W_ihᵀ + b for sequences (T > 1) instead
 * of one GEMM over all steps before the loop: the same sums in the same order
 * (bias, x, h), so the same bits either way.  Fused, act is written once
 * instead of written and read back and the row tasks need no hand-off for the
 * input product; but every step then streams W_ih's pack too, and a row task
 * reuses what it streams only over its own rows.  So:
 *  - a unit block's weights of both products, 16·G·(in + Hout) floats, must
 *    fit in a quarter of L2 (each row tile reuses them from there, while the
 *    next block is prefetched beside them); exactly a quarter only where
 *    lstm__cpu_info.step_x_quarter says (not on Intel: rule in cpu.c);
 *  - and either a task has >= 32 rows (6 row tiles), or the whole pack a task
 *    streams fits in L2 (inference), or, training (where act is stored either
 *    way), in 4 × L2 with >= 16 rows a task and in L2 / 2 with fewer, counting
 *    at most 1 MiB of L2.
 * Zen 5, 2 threads, idle, interleaved A/B of fused against GEMM (ms):
 * proj-fwd-1024 (16 rows a task, 12.5 MB) 83-85 vs 71-74; deep-fwd-256 (8
 * rows, 2 MB) 25.4 vs 23.3; I = H = 256 forward, 8 rows 6.2 vs 5.8, 32 rows
 * 20.6 vs 21.5; I = H = 128 (512 KB), 16 rows 5.5 vs 6.0; I = H = 512, B = 8
 * (the unit split) 8.1 vs 7.0, 32 rows equal; charlm-train (16 rows, 1.3 and 2 MB) 40.2-40.9
 * vs 42.8-43.3; bidir-train-256 (16 rows, 2 and 3 MB) 1.5 % faster fused;
 * proj-train-1024 233 vs 214-217.  Training's limits are Xeon measurements
 * (Emerald Rapids, 2 MB L2, 2026-11-30: 3-4 interleaved pairs, row split, ms
 * fused vs GEMM): 8 rows a task, I = H = 128 (512 KB) 6.16-6.22 vs 6.30-6.39,
 * 192 x 2 layers (1.1 MB) even, 64 -> 256 x 2 (1.3, 2 MB) 41.5-42.5 vs
 * 38.1-40.1, 256 (2 MB) 25.2-26.4 vs 22.6-24.2, 384 (4.7 MB) 61.5-64.8 vs
 * 55.8-58.6, deep-train-256 101.9-120.2 vs 91.8-110.3 (6 rounds); 16 rows a
 * task, I = H = 384 (4.7 MB) 100.6-104.6 vs 94.7-103.0, 448 (6.4 MB)
 * 130.1-133.4 vs 122.1-124.0, charlm-train, bidir-train-256 and
 * gru-bidir-train-256 even.  lstm__set_step_x (tests): -1 this rule,
 * 0 never, 1 always. */
#ifndef LSTM_STEP_X_MODE
#define LSTM_STEP_X_MODE -1 /* build-time default of lstm__set_step_x (A/B measurements) */
#endif
static int step_x_mode = LSTM_STEP_X_MODE;

void lstm__set_step_x(int mode) { __atomic_store_n(&step_x_mode, mode, __ATOMIC_RELAXED); }

static int x_in_fused_step(const lstm__cell *cell, int train, lstm__team *team, int B, int H, int in, int Hout) {
    int mode = __atomic_load_n(&step_x_mode, __ATOMIC_RELAXED);
    if (mode >= 0) return mode;
    const int64_t l2 = l2_bytes(), block = (int64_t)64 * cell->G * (in + Hout); /* bytes */
    if (block > l2 / 4 || (block == l2 / 4 && !lstm__cpu()->step_x_quarter)) return 0;
    int nt = team ? lstm__team_size(team) : 1, nrow = fwd_row_tasks(cell, train, team, B, H, in, Hout);
    int rows = nrow ? (B + nrow - 1) / nrow : B; /* a task's rows (the unit split: all, a share of the blocks) */
    int64_t blocks = (H + 15) / 16;
    if (!nrow) blocks = (blocks + nt - 1) / nt;
    if (!train) return rows >= 32 || block * blocks <= l2;
    const int64_t l2c = l2_train_bytes();
    return rows >= 32 || block * blocks <= (rows >= 16 ? 4 * l2c : l2c / 2);
}

int lstm__step_x_rule(const lstm_workspace *ws, int in) {
    return ws->fused && !ws->p1 && x_in_fused_step(ws->cell, ws->train, ws->team, ws->B, ws->H, in, ws->Hout);
}

#if LSTM_X86 /* (the batch-1 step is x86's: step1_avx512.c) */
/* Step s's buffers for lstm__step1_seq2 (op: a dir_op at B = 1, act from the input GEMM). */
static void seq2_bufs(void *ctx, int s, lstm__step1_bufs *b) {
    const dir_op *op = ctx;
    fwd_bufs f = fwd_step_bufs(op, s, 0, 0);
    b->act = f.a, b->c = f.c, b->m = f.m;
    if (s == 0) {
        b->h = op->h0, b->c_prev = op->c0;
    } else {
        fwd_bufs p = fwd_step_bufs(op, s - 1, 0, 0);
        b->h = p.y, b->c_prev = p.c;
    }
}

/* A batch-1 sequence by lstm__step1_seq2 where it applies (inference from the input
 * GEMM, no projection; it checks the team and the shape): 1 when it ran. */
static int run_seq2(const dir_op *op, lstm__team *team, int x_in_step) {
    const lstm__step1_fn step1 = op->cell->step1;
    if (!op->p1 || op->T < 2 || x_in_step || op->w->w_hr || (step1 != lstm__step1 && step1 != lstm__gru_step1))
        return 0;
    return lstm__step1_seq2(team, step1 == lstm__gru_step1, op->H, op->w->in, op->T, op->rev0, op->p1, op->p1_part, seq2_bufs,
                            (void *)op);
}
#else
static int run_seq2(const dir_op *op, lstm__team *team, int x_in_step) {
    (void)op, (void)team, (void)x_in_step;
    return 0;
}
#endif

/* One direction of one layer over the sequence; hn [B,Hout], cn [B,H] or NULL. */
static void dir_forward(const dir_op *op, float *hn, float *cn) {
    const lstm__cell *cell = op->cell;
    const lstm_weights *w = op->w;
    lstm__team *team = op->solo ? NULL : op->team; /* runs the work; op->team makes the choices */
    const int T = op->T, B = op->B, H = op->H, Hout = op->Hout;
    const int in = w->in, ldy = op->D * Hout;
    const size_t rows = (size_t)T * B;
    /* one step (streaming), or a sequence where x_in_fused_step: the fused kernel also does x·W_ihᵀ + b */
    const int x_in_step =
        !op->act_ready && (((op->pu || op->p1) && T == 1) || (op->pu && x_in_fused_step(cell, op->train, op->team, B, H, in, Hout)));
    if (!x_in_step && !op->act_ready) /* act = bias + X·W_ihᵀ, the sum in that order, by the cell's runs */
        lstm__cell_gemm_ih_bias(cell, team, (int)rows, H, in, op->X, in, w->w_ih, w->b_ih ? op->bias : NULL, op->act,
                                op->lda, op->xpack, op->xpack_n);
    const float *hp = op->h0, *cp = op->c0;
    int ldh = Hout;
    int nrow = op->pu ? fwd_row_tasks(cell, op->train, op->team, B, H, in, Hout) : 0;
    /* one thread (op->solo) takes all rows as one task: each step's weights streamed once
     * for all of them instead of once per task.  Xeon (Emerald Rapids, 2026-12-01, two
     * directions at once on 2 threads, forwards alternating, 20 pairs, medians of one
     * task / two): training I = H = 256 x 2 at B = 32 0.929, B = 64 0.975, B = 16
     * 0.989, its GRU 0.980, 64 x 2 at B = 16 0.920, 512 at B = 64 0.939; inference 64 x 2
     * at B = 16 0.935, 128 x 2 at B = 32 and 96 x 2 at B = 64 even. */
    if (nrow && op->solo) nrow = 1;
    fwd_rows_job rj = {op, x_in_step};
    if (nrow) lstm__team_run_tasks(team, nrow, fwd_rows_task, &rj);
    if (nrow || run_seq2(op, team, x_in_step)) { /* the whole sequence ran */
        fwd_bufs f = fwd_step_bufs(op, T - 1, 0, 0); /* the last step's h and c */
        hp = f.y;
        ldh = ldy;
        cp = f.c;
    } else {
        step_job sj = {.fn = cell->fused_step, .B = B, .H = H, .Hout = Hout, .in = in, .nub = (H + 15) / 16};
        int ntasks = team ? lstm__team_size(team) : 1;
        if (ntasks > sj.nub) ntasks = sj.nub;
        for (int s = 0; s < T; s++) {
            fwd_bufs f = fwd_step_bufs(op, s, 0, x_in_step);
            if (op->p1) {
                const float *a_next = !x_in_step && s + 1 < T ? fwd_step_bufs(op, s + 1, 0, 0).a : NULL;
                cell->step1(team, H, in, Hout, (op->rev0 + s) & 1, op->p1, f.a, a_next, f.x, w->b_ih ? op->bias : NULL,
                            hp, cp, f.c, f.m, NULL);
            } else if (op->pu) {
                sj.rev = (op->rev0 + s) & 1;
                sj.act = f.a;
                sj.lda = op->lda;
                sj.x = f.x;
                sj.ldx = in;
                sj.pih = op->pui;
                sj.bsum = w->b_ih ? op->bias : NULL;
                sj.h = hp;
                sj.ldh = ldh;
                sj.phh = op->pu;
                sj.c_prev = cp;
                sj.c = f.c;
                sj.m = f.m;
                sj.ldm = w->w_hr ? op->ldm : ldy;
                if (ntasks > 1) lstm__team_run_tasks(team, ntasks, step_task, &sj);
                else step_task(&sj, 0, 1);
            } else {
                for (int k = 0; hp && k < cell->n_hh; k++)
                    lstm_gemm_packed_mt(team, B, cell->hh[k].n * H, Hout, hp, ldh, op->pk[k],
                                        f.a + (size_t)cell->hh[k].a * H, op->lda, 1.0f);
                step_fwd_job fj = {cell, {.B = B, .H = H, .act = f.a, .lda = op->lda, .h_prev = hp, .ldhp = ldh, .h = f.m,
                                          .ldh = w->w_hr ? op->ldm : ldy, .c_prev = cp, .c = f.c}};
                int nt = team ? lstm__team_size(team) : 1;
                if (nt > B) nt = B;
                if (nt > 1) lstm__team_run_tasks(team, nt, step_fwd_task, &fj);
                else step_fwd_task(&fj, 0, 1);
            }
            if (w->w_hr) lstm_gemm_packed_mt(team, B, Hout, H, f.m, op->ldm, op->pr, f.y, ldy, 0.0f); /* y = m·W_hrᵀ */
            hp = f.y;
            ldh = ldy;
            cp = f.c;
        }
    }
    if (hn)
        for (int b = 0; b < B; b++) memcpy(hn + (size_t)b * Hout, hp + (size_t)b * ldh, (size_t)Hout * sizeof(float));
    if (cn && cp) memcpy(cn, cp, (size_t)B * H * sizeof(float));
}

/* Inverted dropout on [T, B, w]: out = in·mask, mask 0 with probability p,
 * else 1/(1-p), the numbers drawn in [T, btot, w] order.  B is the slice
 * [b0, b0+B) of a batch of btot (btot = B, b0 = 0: the whole batch): the
 * numbers of all btot rows are drawn and a slice keeps its own, so each row
 * gets the mask it would get in the whole batch. */
static void dropout_forward_slice(float *out, float *mask, const float *in, int T, int B, int w, int btot,
                                  int b0, float p, uint64_t *rng) {
    float scale = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f; /* p = 1: every draw (in [0, 1)) is dropped */
    for (int t = 0; t < T; t++)
        for (int b = 0; b < btot; b++) {
            if (b < b0 || b >= b0 + B) {
                for (int q = 0; q < w; q++) (void)lstm__rng_uniform(rng);
                continue;
            }
            size_t o = ((size_t)t * B + (size_t)(b - b0)) * (size_t)w;
            for (int q = 0; q < w; q++) {
                mask[o + q] = lstm__rng_uniform(rng) < p ? 0.0f : scale;
                out[o + q] = in[o + q] * mask[o + q];
            }
        }
}

void lstm__workspace_dropout_slice(lstm_workspace *ws, int btot, int b0) {
    ws->drop_btot = btot;
    ws->drop_b0 = b0;
}

void lstm__workspace_defer_wgrad(lstm_workspace *ws, int on) { ws->defer_wgrad = on; }

lstm__team *lstm__workspace_team(lstm_workspace *ws) { return ws->team; }

long lstm__workspace_packs(const lstm_workspace *ws) { return ws->n_packs; }

int lstm__workspace_saved(const lstm_workspace *ws, const lstm_net *net, int l, int d, lstm__saved *sv) {
    if (!ws->train || l < 0 || l >= ws->L || d < 0 || d >= ws->D) return -1;
    size_t k = (size_t)l * ws->D + d, tb = (size_t)ws->T * ws->B;
    sv->in = net->w[k].in;
    sv->X = l == 0 ? ws->x0 : ws->fwd_dropout > 0.0f ? ws->xdrop + (size_t)(l - 1) * ws->tby : ws->ys + (size_t)(l - 1) * ws->tby;
    sv->Y = ws->ys + (size_t)l * ws->tby;
    sv->h0 = ws->has_h0 ? ws->h0 + k * (size_t)ws->B * ws->Hout : NULL;
    sv->dG = ws->act + k * ws->tbg;
    sv->ldg = ws->lda;
    sv->dH = ws->P ? ws->dH + k * tb * ws->P : NULL;
    sv->ms = ws->ms ? ws->ms + k * ws->tbm : NULL;
    sv->ldm = m_ld(ws->H);
    return 0;
}

/* Whether net has the shape ws was made for (forward and backward index ws's buffers by it). */
static int net_fits(const lstm_net *net, const lstm_workspace *ws) {
    return net->cfg.num_layers == ws->L && net->D == ws->D && net->H == ws->H && net->Hout == ws->Hout &&
           net->cfg.input_size == ws->I && lstm__cell_of(net->cfg.cell) == ws->cell;
}

/* stream: reuse the packed W_hh of an earlier call on the same params. */
/* act0 (stream, T = 1): layer 0's bias + x·W_ihᵀ [B, A·H] given (x unused). */
typedef struct {
    dir_op op[2];
    float *hn[2], *cn[2];
} dir_par_job;

static void dir_par_task(void *arg, int task, int ntasks) {
    (void)ntasks;
    dir_par_job *j = arg;
    dir_forward(&j->op[task], j->hn[task], j->cn[task]);
}

static int train_par_dirs = 1; /* lstm__set_train_par_dirs (tools): see par_dirs in forward */

void lstm__set_train_par_dirs(int on) { __atomic_store_n(&train_par_dirs, on, __ATOMIC_RELAXED); }

static lstm_status forward(const lstm_net *net, lstm_workspace *ws, int T, int B, const float *x,
                           const float *h0, const float *c0, float *y, float *hn, float *cn, int stream,
                           const float *act0) {
    if (T < 1 || T > ws->T || B != ws->B)
        return lstm__fail(LSTM_ERR_ARG, "forward: T=%d, B=%d do not fit the workspace (T <= %d, B = %d)", T, B, ws->T, ws->B);
    if (!net_fits(net, ws)) return lstm__fail(LSTM_ERR_ARG, "forward: workspace was made for another network shape");
    if (!ws->cell->has_c && (c0 || cn))
        return lstm__fail(LSTM_ERR_ARG, "forward: a %s has no cell state: c0 and cn must be NULL", ws->cell->name);
    const int L = ws->L, D = ws->D, H = ws->H, Hout = ws->Hout;
    const size_t bh = (size_t)B * H, bho = (size_t)B * Hout;
    const size_t tby = (size_t)T * B * D * Hout;
    if (ws->train && ws->dropout > 0.0f && !ws->rng)
        return lstm__fail(LSTM_ERR_ARG, "forward: dropout set without a random state");
    if (ws->train) {
        team_copy(ws->team, ws->x0, x, (size_t)T * B * ws->I);
        ws->has_h0 = h0 != NULL;
        ws->has_c0 = c0 != NULL;
        if (h0) memcpy(ws->h0, h0, (size_t)L * D * bho * sizeof(float));
        if (c0) memcpy(ws->c0, c0, (size_t)L * D * bh * sizeof(float));
        ws->fwd_T = T;
        ws->fwd_src = net->params;
        ws->fwd_stamp = net->stamp;
        ws->fwd_dropout = ws->dropout;
    }
    if (!(stream || ws->keep_packs) || ws->pk_src != net->params || ws->pk_stamp != net->stamp) pack_recurrent(net, ws);
    if (ws->fused && (T == 1 || !ws->p1) && ws->pui_ok < (T == 1 ? 2 : 1)) pack_input(net, ws, T);
    const float *in = ws->train ? ws->x0 : x;
    /* Two directions on two threads: each thread runs one direction over the whole
     * sequence, with no hand-off per step (each streams its own weights); the
     * choices (row or unit split, x·W_ihᵀ in the step) stay those of two threads,
     * so the same work in the same order and the same bits.  Training's forward too
     * (its directions keep separate storage), and its backward (see backward).  Xeon
     * (Emerald Rapids, `tools/ab_hooks par_dirs`, medians of paired ratios with /
     * without, 20-40 pairs), the forward alone (2026-11-30): bidir-train-256
     * 0.991-0.997, its GRU 0.989-1.000, I = H = 64 x 2 at B = 8 0.948-0.979, 128 x 2
     * at B = 16 1.003, 512 at B = 64 0.987, 1024 with P = 256 at B = 32 0.986; the
     * backward too (2026-12-01, against both in turn): bidir-train-256 0.981-0.995,
     * its GRU 0.972-0.977, 64 x 2 0.796, 128 x 2 0.979, 512 0.994-1.016 (quartiles
     * 0.94-1.07), 1024 with P = 256 0.977.  lstm__set_train_par_dirs (tools): 1 this
     * rule, 0 training's directions in turn. */
    const int par_dirs = (!ws->train || __atomic_load_n(&train_par_dirs, __ATOMIC_RELAXED)) && D == 2 &&
                         lstm__team_size(ws->team) == 2;
    for (int l = 0; l < L; l++) {
        float *out;
        if (ws->train) out = ws->ys + (size_t)l * ws->tby;
        else out = l == L - 1 ? y : ws->ys + (size_t)(l & 1) * ws->tby;
        dir_par_job pj;
        for (int d = 0; d < D; d++) {
            size_t k = (size_t)l * D + d;
            const float *h0k = ws->train ? (ws->has_h0 ? ws->h0 + k * bho : NULL) : (h0 ? h0 + k * bho : NULL);
            const float *c0k = ws->train ? (ws->has_c0 ? ws->c0 + k * bh : NULL) : (c0 ? c0 + k * bh : NULL);
            h0k = zero_h0_for(ws, k, h0k);
            dir_op op = dir_op_make(net, ws, (int)k, T, in, h0k, c0k, out);
            if (act0 && l == 0) {
                for (int b = 0; b < B; b++)
                    memcpy(op.act + (size_t)b * op.lda, act0 + (size_t)b * ws->AH, (size_t)ws->AH * sizeof(float));
                op.act_ready = 1;
            }
            float *hnk = hn ? hn + k * bho : NULL, *cnk = cn ? cn + k * bh : NULL;
            if (par_dirs) { /* both directions at once below, each on one thread */
                op.solo = 1;
                if (d) op.xpack = NULL, op.xpack_n = 0; /* (one room: the input product unpacked, the same bits) */
                pj.op[d] = op, pj.hn[d] = hnk, pj.cn[d] = cnk;
            } else
                dir_forward(&op, hnk, cnk);
        }
        if (par_dirs) lstm__team_run_tasks(ws->team, 2, dir_par_task, &pj);
        in = out;
        if (ws->train && l < L - 1 && ws->dropout > 0.0f) {
            float *xd = ws->xdrop + (size_t)l * ws->tby;
            int whole = ws->drop_btot <= B; /* not a slice of a larger batch */
            dropout_forward_slice(xd, ws->mask + (size_t)l * ws->tby, out, T, B, D * Hout, whole ? B : ws->drop_btot,
                                  whole ? 0 : ws->drop_b0, ws->dropout, ws->rng);
            in = xd;
        }
    }
    if (ws->train) team_copy(ws->team, y, ws->ys + (size_t)(L - 1) * ws->tby, tby);
    ws->p1_rev = (ws->p1_rev + T) & 1;
    return LSTM_OK;
}

/* src [n0, n1, m] -> dst [n1, n0, m] */
static void swap01(float *dst, const float *src, size_t n0, size_t n1, size_t m) {
    for (size_t a = 0; a < n0; a++)
        for (size_t b = 0; b < n1; b++) memcpy(dst + (b * n0 + a) * m, src + (a * n1 + b) * m, m * sizeof(float));
}

/* Whether the n floats at a and the m floats at b share memory. */
/* Whether [a, a+n) and [b, b+m) share a float (NULL or empty: never).  Two unsigned differences,
 * no branch on the order: lstm_stream tests it at every call, and the batch-1 step costs 35 ns
 * at H = 8, of which the test as two ordered comparisons took about 1 ns. */
static int overlap(const float *a, size_t n, const float *b, size_t m) {
    const uintptr_t a0 = (uintptr_t)a, b0 = (uintptr_t)b;
    return a && b && n && m && (b0 - a0 < n * sizeof(float) || a0 - b0 < m * sizeof(float));
}

lstm_status lstm_forward(const lstm_net *net, lstm_workspace *ws, int T, int B,
                         const float *x, const float *h0, const float *c0,
                         float *y, float *hn, float *cn) {
    /* time-major, y is written while x is still read (the fused step, the other direction) */
    if (!ws->bf && T >= 1 && T <= ws->T && B == ws->B && overlap(x, (size_t)T * B * ws->I, y, (size_t)T * B * ws->D * ws->Hout))
        return lstm__fail(LSTM_ERR_ARG, "lstm_forward: x and y overlap; y needs memory of its own");
    if (!ws->bf || T < 1 || T > ws->T || B != ws->B) /* (a bad T or B: forward says so) */
        return forward(net, ws, T, B, x, h0, c0, y, hn, cn, 0, NULL);
    /* batch_first: x [B,T,I] -> [T,B,I]; y [T,B,D·Hout] -> [B,T,D·Hout] */
    swap01(ws->bfx, x, (size_t)B, (size_t)T, (size_t)ws->I);
    lstm_status st = forward(net, ws, T, B, ws->bfx, h0, c0, ws->bfy, hn, cn, 0, NULL);
    if (st == LSTM_OK) swap01(y, ws->bfy, (size_t)T, (size_t)B, (size_t)ws->D * ws->Hout);
    return st;
}

/* The point-wise part of one backward step for batch rows [b0, b1):
 * dh_t = dY_t + dh (from step t+1); (LSTMP: dm = dh_t·W_hr); the cell's backward. */
typedef struct {
    const lstm__cell *cell;
    int B, H, Hout, P, ldy, ldhp, lda;
    const float *w_hr, *dyt, *h_prev, *c, *c_prev;
    float *dh, *dht, *dm, *act, *dc, *scratch;
} step_bwd_job;

static void step_bwd_rows(const step_bwd_job *j, int b0, int b1) {
    const int nb = b1 - b0;
    if (nb <= 0) return;
    const int H = j->H, Hout = j->Hout;
    float *dht = j->dht + (size_t)b0 * Hout;
    for (int b = 0; b < nb; b++) {
        const float *dh = j->dh + (size_t)(b0 + b) * Hout;
        float *o = dht + (size_t)b * Hout;
        if (j->dyt) {
            const float *dy = j->dyt + (size_t)(b0 + b) * j->ldy;
            for (int q = 0; q < Hout; q++) o[q] = dy[q] + dh[q];
        } else {
            memcpy(o, dh, (size_t)Hout * sizeof(float));
        }
    }
    const float *dm = dht;
    if (j->P) {
        lstm_gemm_nn(nb, H, j->P, dht, j->P, j->w_hr, H, j->dm + (size_t)b0 * H, H, 0.0f);
        dm = j->dm + (size_t)b0 * H;
    }
    lstm__cell_step st = {.B = nb, .H = H, .act = j->act + (size_t)b0 * j->lda, .lda = j->lda,
                          .h_prev = j->h_prev ? j->h_prev + (size_t)b0 * j->ldhp : NULL, .ldhp = j->ldhp,
                          .c_prev = j->c_prev ? j->c_prev + (size_t)b0 * H : NULL,
                          .c = j->c ? (float *)j->c + (size_t)b0 * H : NULL, .dh = dm, .lddh = H,
                          .dc = j->dc ? j->dc + (size_t)b0 * H : NULL, .dh_prev = j->dh + (size_t)b0 * H,
                          .scratch = j->scratch ? j->scratch + (size_t)b0 * j->cell->scratch_units * H : NULL};
    j->cell->backward(&st);
}

static void step_bwd_task(void *arg, int task, int ntasks) {
    const step_bwd_job *j = arg;
    int b0, b1;
    share_of(j->B, task, ntasks, &b0, &b1);
    step_bwd_rows(j, b0, b1);
}

/* C [rows, N] (+)= A·W over runs of the cell on a pack laid out for lstm__step_dh_avx512
 * (op->pdh: W_hh, for dh; op->pdx: W_ih, for dX), on a team: each task a range of C's
 * 64-column panels, all rows.  Each element is one chain, as on one thread: the same bits. */
typedef struct {
    const dir_op *op;
    const lstm__run *runs;
    int nruns;
    const float *P; /* the pack */
    const float *A; /* [rows, op->lda], the runs' columns at r->a·H */
    float *C;       /* [rows, N] */
    int N, rows;
    int acc0;       /* the first run accumulates into C too */
    int rev;        /* each task's panels from its last to its first (alternate per step) */
} panel_job;

static void panel_task(void *arg, int task, int ntasks) {
#if LSTM_X86
    const panel_job *j = arg;
    const lstm__cell *cell = j->op->cell;
    const int H = j->op->H;
    const size_t pstride = (size_t)cell->G * H * 64;
    int p0, p1;
    share_of((j->N + 63) / 64, task, ntasks, &p0, &p1);
    if (p0 >= p1) return;
    const int n = (64 * p1 < j->N ? 64 * p1 : j->N) - 64 * p0;
    for (int k = 0; k < j->nruns; k++) {
        const lstm__run *r = &j->runs[k];
        lstm__step_dh_avx512(j->rows, n, r->n * H, j->A + (size_t)r->a * H, j->op->lda,
                             j->P + (size_t)r->w * H * 64 + (size_t)p0 * pstride, pstride, j->C + 64 * p0, j->N,
                             k || j->acc0, j->rev);
    }
#else
    (void)arg, (void)task, (void)ntasks;
#endif
}

static void panel_run(lstm__team *team, const panel_job *j) {
    int np = (j->N + 63) / 64, nt = team ? lstm__team_size(team) : 1;
    if (nt > np) nt = np;
    if (nt > 1) lstm__team_run_tasks(team, nt, panel_task, (void *)j);
    else panel_task((void *)j, 0, 1);
}

/* dh_prev [B,Hout] (+)= dG_t·W_hh over the cell's hh runs, rows [b0, b1), with
 * the fused step's pack (op->pdh) where there is one, by its twin
 * lstm__step_dh_avx512 (same bits): on one thread (team NULL), or on the team
 * by column panels.  The team's GEMM instead packed W_hh's panels again at
 * every step: Zen 5, 2 threads, I = 64, H = 1024, B = 8, T = 100 training
 * took 96-106 ms with it and 71 ms with the panels. */
static void step_bwd_dh(const dir_op *op, lstm__team *team, const float *dGt, float *dh, int b0, int b1, int rev) {
    const lstm__cell *cell = op->cell;
    const int H = op->H, Hout = op->Hout, lda = op->lda;
    if (op->pdh && team) {
        panel_job j = {op, cell->hh, cell->n_hh, op->pdh, dGt + (size_t)b0 * lda, dh + (size_t)b0 * Hout, Hout,
                       b1 - b0, cell->direct_dh, rev};
        panel_run(team, &j);
        return;
    }
    for (int k = 0; k < cell->n_hh; k++) {
        const lstm__run *r = &cell->hh[k];
        const float *a = dGt + (size_t)b0 * lda + (size_t)r->a * H;
        const int acc = k || cell->direct_dh;
#if LSTM_X86
        if (op->pdh && !team) {
            lstm__step_dh_avx512(b1 - b0, Hout, r->n * H, a, lda, op->pdh + (size_t)r->w * H * 64,
                                 (size_t)cell->G * H * 64, dh + (size_t)b0 * Hout, Hout, acc, rev);
            continue;
        }
#endif
        lstm_gemm_nn_mt(team, b1 - b0, Hout, r->n * H, a, lda, op->w->w_hh + (size_t)r->w * H * Hout, Hout,
                        dh + (size_t)b0 * Hout, Hout, acc ? 1.0f : 0.0f);
    }
}

/* dX_t [B, in] = dG_t·W_ih over the cell's ih runs, rows [b0, b1), on one thread with
 * W_ih packed like W_hh for step_bwd_dh (op->pdx): inside the backward's loop while dG_t
 * is in cache, instead of one product over all steps after it (measured when dG's rows
 * were 4 KiB-multiples apart and that product packed them; see act_ld).  The same bits:
 * each element is one in-order chain of fused multiply-adds from 0, as in lstm_gemm_nn. */
static void step_bwd_dx(const dir_op *op, const float *dGt, float *dXt, int b0, int b1, int rev) {
#if LSTM_X86
    const lstm__cell *cell = op->cell;
    const int H = op->H, lda = op->lda, in = op->w->in;
    for (int k = 0; k < cell->n_ih; k++) {
        const lstm__run *r = &cell->ih[k];
        lstm__step_dh_avx512(b1 - b0, in, r->n * H, dGt + (size_t)b0 * lda + (size_t)r->a * H, lda,
                             op->pdx + (size_t)r->w * H * 64, (size_t)cell->G * H * 64, dXt + (size_t)b0 * in, in,
                             k > 0, rev);
    }
#else
    (void)op, (void)dGt, (void)dXt, (void)b0, (void)b1, (void)rev;
#endif
}

/* Direction d's running buffers of the backward (dh, dm, dc, cscr; dH without projections). */
typedef struct {
    float *dH, *dh, *dm, *dc, *cscr;
} bwd_scratch;

static bwd_scratch bwd_scratch_of(const lstm_workspace *ws, int d) {
    const size_t bh = (size_t)ws->B * ws->H, bho = (size_t)ws->B * ws->Hout;
    bwd_scratch sc = {.dH = ws->P ? NULL : ws->dH + d * bho, .dh = ws->dh + d * bho,
                      .dm = ws->dm ? ws->dm + d * bh : NULL, .dc = ws->dc ? ws->dc + d * bh : NULL,
                      .cscr = ws->cscr ? ws->cscr + d * ws->cell->scratch_units * bh : NULL};
    return sc;
}

/* What step s of dir_backward works on (all batch rows). */
static step_bwd_job bwd_step_job(const dir_op *op, lstm_workspace *ws, const float *dY, int s) {
    const int T = op->T, B = op->B, H = op->H, Hout = op->Hout, P = ws->P, d = op->d, ldy = op->D * Hout;
    const size_t bh = (size_t)B * H;
    const bwd_scratch sc = bwd_scratch_of(ws, d);
    const int t = d ? T - 1 - s : s;
    const int tp = d ? t + 1 : t - 1; /* the step before t in this direction's order */
    step_bwd_job sj = {.cell = op->cell, .B = B, .H = H, .Hout = Hout, .P = P, .ldy = ldy, .w_hr = op->w->w_hr,
                       .dht = P ? ws->dH + ((size_t)op->k * ws->T + t) * B * P : sc.dH,
                       .dyt = dY ? dY + (size_t)t * B * ldy + (size_t)d * Hout : NULL, .dh = sc.dh, .dm = sc.dm,
                       .act = op->act + (size_t)t * B * op->lda, .lda = op->lda, .dc = sc.dc, .scratch = sc.cscr,
                       .h_prev = s > 0 ? op->Y + (size_t)tp * B * ldy + (size_t)d * Hout : op->h0,
                       .ldhp = s > 0 ? ldy : Hout,
                       .c = op->cs ? op->cs + (size_t)t * bh : NULL,
                       .c_prev = op->cs && s > 0 ? op->cs + (size_t)tp * bh : op->c0};
    return sj;
}

/* The reverse loop for the batch rows of one row task (see row_tasks). */
typedef struct {
    const dir_op *op;
    lstm_workspace *ws;
    const float *dY;
    int need_dh0;
    float *dX; /* [T,B,in] formed in the loop (op->pdx), or NULL */
} bwd_rows_job;

static void bwd_rows_task(void *arg, int task, int ntasks) {
    const bwd_rows_job *j = arg;
    const dir_op *op = j->op;
    int b0, b1;
    share_of(op->B, task, ntasks, &b0, &b1);
    for (int s = op->T - 1; s >= 0; s--) {
        step_bwd_job sj = bwd_step_job(op, j->ws, j->dY, s);
        step_bwd_rows(&sj, b0, b1);
        if (s > 0 || j->need_dh0) step_bwd_dh(op, NULL, sj.act, sj.dh, b0, b1, s & 1);
        if (j->dX) {
            const int t = op->d ? op->T - 1 - s : s;
            step_bwd_dx(op, sj.act, j->dX + (size_t)t * op->B * op->w->in, b0, b1, s & 1);
        }
    }
}

/* bs [lo, hi) = the column sums of dG [rows, A·H] (rows ld floats apart) in columns [lo, hi), two-level:
 * blocks of 64 rows into blk, blocks into bs.  A plain running sum over
 * thousands of rows loses ~8x more than PyTorch's float32 (T=50, B=128:
 * 2.5e-4 vs 2.6e-5 max error).  Tasks own column ranges (multiples of 16), so
 * the sums of a column are the same for any thread count.  The weight-gradient
 * product of the ih runs forms the same sums for its columns (its csum):
 * this covers the columns no ih run has (the GRU's hn). */
typedef struct {
    const float *dG;
    size_t rows;
    int ld, lo, hi; /* ld: dG's row stride */
    float *bs, *blk;
} bias_sum_job;

static void bias_sum_task(void *arg, int task, int ntasks) {
    const bias_sum_job *j = arg;
    int c0, c1;
    share_of((j->hi - j->lo + 15) / 16, task, ntasks, &c0, &c1);
    c0 = j->lo + c0 * 16;
    c1 = j->lo + c1 * 16 < j->hi ? j->lo + c1 * 16 : j->hi;
    if (c0 >= c1) return;
    memset(j->bs + c0, 0, (size_t)(c1 - c0) * sizeof(float));
    lstm__col_sums(j->dG, j->ld, 0, j->rows, c0, c1, j->bs, j->blk);
}

enum { BWD_LOOP = 1, BWD_REST = 2 }; /* dir_backward's phases */

/* Backward of dir_forward (training storage).  dY [T,B,D·Hout] (NULL: zeros) is dL/dY for the
 * layer output (this direction's columns are read); dhn [B,Hout], dcn [B,H] or NULL.
 * Accumulates into op->g; writes dX [T,B,in] when dX is not NULL,
 * and dh0 [B,Hout], dc0 [B,H] when not NULL.  phases: BWD_LOOP, the reverse loop over
 * the steps (on the calling thread alone where op->solo; dh0 and dc0 are written then),
 * and BWD_REST, what follows it (dX where formed after the loop, the weight gradients:
 * on the calling thread alone where op->solo is 2); both phases take the same arguments. */
static void dir_backward(const dir_op *op, lstm_workspace *ws, const float *dY, const float *dhn, const float *dcn,
                         float *dX, float *dh0, float *dc0, int phases) {
    const lstm__cell *cell = op->cell;
    const lstm_weights *w = op->w;
    lstm_weights *g = op->g;
    const int T = op->T, B = op->B, H = op->H, Hout = op->Hout, D = op->D, P = ws->P, d = op->d;
    const int AH = cell->A * H, lda = op->lda, in = w->in, ldy = D * Hout;
    const size_t bh = (size_t)B * H, bho = (size_t)B * Hout, rows = (size_t)T * B;
    const float *X = op->X, *Y = op->Y, *h0 = op->h0;
    /* proj: [T,B,P] of this (l,d), kept; (l,d)s the workspace's T apart, as lstm__workspace_saved reads them */
    float *dHk = P ? ws->dH + (size_t)op->k * ws->T * B * P : NULL;
    /* dG_t overwrites act_t in place: the cell's backward reads a step's activations
     * before it writes that step's gradients, and nothing reads them later. */
    const bwd_scratch sc = bwd_scratch_of(ws, d);
    float *dG = op->act, *dh = sc.dh, *dc = sc.dc;
    /* the loop's split (both phases derive the same): by rows (nrow tasks), by units (nt
     * threads), or one thread; dX inside the loop with W_ih packed (op->pdx) where each
     * task runs its steps alone, else after it */
    const int nrow = op->solo ? 0 : train_row_tasks(cell, ws->team, B, H, Hout);
    int nt = op->solo || !ws->team ? 1 : lstm__team_size(ws->team);
    float *dX_loop = dX && op->pdx && (nrow || nt == 1) ? dX : NULL;
    if (phases & BWD_LOOP) {
        if (dhn) memcpy(dh, dhn, bho * sizeof(float));
        else memset(dh, 0, bho * sizeof(float));
        if (dc) {
            if (dcn) memcpy(dc, dcn, bh * sizeof(float));
            else memset(dc, 0, bh * sizeof(float));
        }
        if (nrow || nt == 1) {
            bwd_rows_job rj = {op, ws, dY, dh0 != NULL, dX_loop};
            if (nrow) lstm__team_run_tasks(ws->team, nrow, bwd_rows_task, &rj);
            else bwd_rows_task(&rj, 0, 1);
        } else {
            if (nt > B) nt = B;
            for (int s = T - 1; s >= 0; s--) {
                step_bwd_job sj = bwd_step_job(op, ws, dY, s);
                if (nt > 1) lstm__team_run_tasks(ws->team, nt, step_bwd_task, &sj);
                else step_bwd_task(&sj, 0, 1);
                if (s > 0 || dh0) step_bwd_dh(op, ws->team, sj.act, dh, 0, B, s & 1);
            }
        }
        if (dh0) memcpy(dh0, dh, bho * sizeof(float));
        if (dc0 && dc) memcpy(dc0, dc, bh * sizeof(float));
    }
    if (!(phases & BWD_REST)) return;
    lstm__team *team = op->solo > 1 ? NULL : ws->team; /* (solo 2: the rest on this thread too) */
    if (dX && !dX_loop && op->pdx) { /* (the unit split's dX: by column panels, see train_row_tasks) */
        panel_job xj = {op, cell->ih, cell->n_ih, op->pdx, dG, dX, in, (int)rows, 0, 0};
        panel_run(team, &xj);
    }
    for (int k = 0; dX && !dX_loop && !op->pdx && k < cell->n_ih; k++) {
        const lstm__run *r = &cell->ih[k];
        lstm__gemm_nn_rows(team, (int)rows, in, r->n * H, dG + (size_t)r->a * H, lda, w->w_ih + (size_t)r->w * H * in, in, dX,
                     in, k ? 1.0f : 0.0f);
    }
    if (ws->defer_wgrad) return; /* the caller forms the weight gradients (lstm__workspace_saved) */
    /* weight gradients: one product each over all steps; the ih runs' products
     * also sum their columns of dG into the bias gradient bs */
    float *bs = ws->dbias + (size_t)d * 2 * ((AH + 15) / 16 * 16), *bblk = bs + (AH + 15) / 16 * 16;
    unsigned bias_cols = 0; /* bit q: act column q summed */
    /* One ih run whose columns the hh runs split (LSTM: i,f,g,o = i,f,g,o; GRU: r,z,xn
     * against r,z and hn): the ih run's product is cut into pieces of the hh runs' sizes and
     * each piece takes its blocks in turn with its hh run's product
     * (lstm__gemm_tn_acc_rows2), so the rows of dG both read come from cache the second time.
     * A piece of the product has the bits of the whole. */
    int hh_n = 0;
    for (int k = 0; k < cell->n_hh; k++) hh_n += cell->hh[k].n;
    const int pair = T > 1 && cell->n_ih == 1 && hh_n == cell->ih[0].n;
    for (int k = 0, off = 0; pair && k < cell->n_hh; k++) {
        const lstm__run *ri = &cell->ih[0], *rh = &cell->hh[k];
        const size_t a = (size_t)(ri->a + off) * H;
        /* h_prev of step t: Y_{t-1} (rows t = 1.. of dG), reverse: Y_{t+1} (rows t = ..T-2) */
        lstm__tn_prod pi = {in, (int)rows, dG + a, lda, X, in, g->w_ih + (size_t)(ri->w + off) * H * in, in},
                      ph = {Hout, (T - 1) * B, dG + (size_t)rh->a * H + (d ? 0 : (size_t)B * lda), lda,
                            Y + (d ? (size_t)B * ldy : 0) + (size_t)d * Hout, ldy, g->w_hh + (size_t)rh->w * H * Hout, Hout};
        lstm__gemm_tn_acc_rows2(team, rh->n * H, &pi, &ph, ws->wtmp, g->b_ih ? bs + a : NULL, bblk + a);
        off += rh->n;
    }
    if (pair) bias_cols |= ((1u << cell->ih[0].n) - 1) << cell->ih[0].a;
    for (int k = 0; !pair && k < cell->n_ih; k++) {
        const lstm__run *r = &cell->ih[k];
        const size_t a = (size_t)r->a * H;
        lstm__gemm_tn_acc_rows(team, r->n * H, in, (int)rows, dG + a, lda, X, in, g->w_ih + (size_t)r->w * H * in,
                    in, ws->wtmp, g->b_ih ? bs + a : NULL, bblk + a);
        bias_cols |= ((1u << r->n) - 1) << r->a;
    }
    for (int k = 0; k < cell->n_hh; k++) {
        const lstm__run *r = &cell->hh[k];
        float *gw = g->w_hh + (size_t)r->w * H * Hout;
        const float *dGr = dG + (size_t)r->a * H;
        if (T > 1 && !pair) {
            if (d == 0) /* h_prev of step t is Y_{t-1}: rows t = 1..T-1 of dG against Y rows 0..T-2 */
                lstm__gemm_tn_acc_rows(team, r->n * H, Hout, (T - 1) * B, dGr + (size_t)B * lda, lda, Y + (size_t)d * Hout, ldy, gw,
                            Hout, ws->wtmp, NULL, NULL);
            else /* reverse: h_prev of step t is Y_{t+1} */
                lstm__gemm_tn_acc_rows(team, r->n * H, Hout, (T - 1) * B, dGr, lda, Y + (size_t)B * ldy + (size_t)d * Hout, ldy, gw,
                            Hout, ws->wtmp, NULL, NULL);
        }
        const float *dG0 = dGr + (size_t)(d ? T - 1 : 0) * B * lda, *h0r = h0;
        /* h0 NULL: zeros, which matter only for a non-finite dG (see zero_h0_for) */
        if (!h0r && !all_finite_rows(dG0, B, r->n * H, lda)) {
            memset(dh, 0, bho * sizeof(float)); /* free again: dh was copied out above */
            h0r = dh;
        }
        if (h0r) lstm_gemm_tn_mt(team, r->n * H, Hout, B, dG0, lda, h0r, Hout, gw, Hout, 1.0f);
    }
    if (g->b_ih) {
        for (int q = 0; q < cell->A; q++) { /* the columns no ih run summed */
            if (bias_cols >> q & 1) continue;
            int q1 = q + 1;
            while (q1 < cell->A && !(bias_cols >> q1 & 1)) q1++;
            bias_sum_job bj = {dG, rows, lda, q * H, q1 * H, bs, bblk};
            int nt = team ? lstm__team_size(team) : 1, n16 = ((q1 - q) * H + 15) / 16;
            if (nt > n16) nt = n16;
            if (nt > 1) lstm__team_run_tasks(team, nt, bias_sum_task, &bj);
            else bias_sum_task(&bj, 0, 1);
            q = q1;
        }
        for (int k = 0; k < cell->n_ih; k++)
            for (int j = 0; j < cell->ih[k].n * H; j++) g->b_ih[(size_t)cell->ih[k].w * H + j] += bs[(size_t)cell->ih[k].a * H + j];
        for (int k = 0; k < cell->n_hh; k++)
            for (int j = 0; j < cell->hh[k].n * H; j++) g->b_hh[(size_t)cell->hh[k].w * H + j] += bs[(size_t)cell->hh[k].a * H + j];
    }
    if (P) lstm__gemm_tn_acc_rows(team, P, H, (int)rows, dHk, P, op->ms, op->ldm, g->w_hr, H, ws->wtmp, NULL, NULL);
}

/* A layer's two directions, one on each thread: their reverse loops, and their weight
 * gradients too where phases has BWD_REST (see backward). */
typedef struct {
    dir_op op[2];
    lstm_workspace *ws;
    const float *dY, *dhn[2], *dcn[2];
    float *dX[2], *dh0[2], *dc0[2];
    int phases;
} bwd_par_job;

static void bwd_par_task(void *arg, int task, int ntasks) {
    (void)ntasks;
    const bwd_par_job *j = arg;
    dir_backward(&j->op[task], j->ws, j->dY, j->dhn[task], j->dcn[task], j->dX[task], j->dh0[task], j->dc0[task],
                 j->phases);
}

static lstm_status backward(lstm_net *net, lstm_workspace *ws,
                            const float *dy, const float *dhn, const float *dcn,
                            float *dx, float *dh0, float *dc0) {
    if (!ws->train || ws->fwd_T < 1)
        return lstm__fail(LSTM_ERR_ARG, "backward: needs a training workspace after lstm_forward");
    if (!net_fits(net, ws)) return lstm__fail(LSTM_ERR_ARG, "backward: workspace was made for another network shape");
    if (ws->fwd_src != net->params || ws->fwd_stamp != net->stamp)
        return lstm__fail(LSTM_ERR_ARG, "backward: the last lstm_forward on this workspace ran another network");
    if (!ws->cell->has_c && (dcn || dc0))
        return lstm__fail(LSTM_ERR_ARG, "backward: a %s has no cell state: dcn and dc0 must be NULL", ws->cell->name);
    const int L = ws->L, D = ws->D, T = ws->fwd_T, B = ws->B;
    const size_t bh = (size_t)B * ws->H, bho = (size_t)B * ws->Hout;
    const size_t tby = (size_t)T * B * D * ws->Hout;
    const float *dYl = dy; /* NULL: zeros */
    /* Two directions: each forms its own dX (the second in ws->dx2), added after both,
     * as PyTorch's autograd adds the two uses of a layer's input.  On two threads, as
     * the forward's (par_dirs there): each thread runs one direction's backward, its
     * reverse loop over all batch rows with its own running buffers and bias sums, and
     * then its weight gradients alone (par 2; with the reference GEMM kernel, par 1,
     * those on both threads, one direction after the other).  Each thread's products
     * then pack only their own operands, where a product on both threads packs its B
     * block twice.  The same sums in the same order either way.  Xeon (Emerald Rapids,
     * 2026-12-01, the backward alone in alternating runs, 20 pairs, weight gradients
     * alone per direction / on both threads in turn): bidir-train-256 0.973, its GRU
     * 0.962, 1024 with P = 256 at B = 32 0.985, 64 x 2 at B = 8 0.931. */
    int par = D == 2 && lstm__team_size(ws->team) == 2 && __atomic_load_n(&train_par_dirs, __ATOMIC_RELAXED);
    if (par && lstm_gemm_kernel() != LSTM_GEMM_REF) par = 2; /* (ref: the products' partial sums share ws->wtmp) */
    for (int l = L - 1; l >= 0; l--) {
        const float *X = l == 0 ? ws->x0
                         : ws->fwd_dropout > 0.0f ? ws->xdrop + (size_t)(l - 1) * ws->tby
                                              : ws->ys + (size_t)(l - 1) * ws->tby;
        float *dX = l == 0 ? dx : ws->dY[(L - 1 - l) & 1];
        bwd_par_job pj = {.ws = ws, .dY = dYl, .dX = {dX, dX ? ws->dx2 : NULL}, .phases = par > 1 ? BWD_LOOP | BWD_REST : BWD_LOOP};
        for (int d = 0; d < D; d++) {
            size_t k = (size_t)l * D + d;
            pj.op[d] = dir_op_make(net, ws, (int)k, T, X, ws->has_h0 ? ws->h0 + k * bho : NULL,
                                   ws->has_c0 ? ws->c0 + k * bh : NULL, ws->ys + (size_t)l * ws->tby);
            pj.op[d].solo = par;
            pj.dhn[d] = dhn ? dhn + k * bho : NULL;
            pj.dcn[d] = dcn ? dcn + k * bh : NULL;
            pj.dh0[d] = dh0 ? dh0 + k * bho : NULL;
            pj.dc0[d] = dc0 ? dc0 + k * bh : NULL;
        }
        if (par) lstm__team_run_tasks(ws->team, 2, bwd_par_task, &pj);
        for (int d = 0; d < D && par < 2; d++)
            dir_backward(&pj.op[d], ws, dYl, pj.dhn[d], pj.dcn[d], pj.dX[d], pj.dh0[d], pj.dc0[d],
                         par ? BWD_REST : BWD_LOOP | BWD_REST);
        if (dX && D == 2) team_add(ws->team, dX, ws->dx2, (size_t)T * B * pj.op[0].w->in);
        if (l > 0) {
            if (ws->fwd_dropout > 0.0f) {
                const float *mask = ws->mask + (size_t)(l - 1) * ws->tby;
                for (size_t i = 0; i < tby; i++) dX[i] *= mask[i];
            }
            dYl = dX;
        }
    }
    ws->fwd_T = 0; /* the saved activations now hold gradients */
    return LSTM_OK;
}

lstm_status lstm_backward(lstm_net *net, lstm_workspace *ws,
                          const float *dy, const float *dhn, const float *dcn,
                          float *dx, float *dh0, float *dc0) {
    const int T = ws->fwd_T, B = ws->B;
    /* time-major, one direction writes dx while the other still reads dy */
    if (!ws->bf && ws->train && T >= 1 && overlap(dy, (size_t)T * B * ws->D * ws->Hout, dx, (size_t)T * B * ws->I))
        return lstm__fail(LSTM_ERR_ARG, "lstm_backward: dy and dx overlap; dx needs memory of its own");
    if (!ws->bf || !ws->train || T < 1) return backward(net, ws, dy, dhn, dcn, dx, dh0, dc0);
    /* batch_first: dy [B,T,D·Hout] -> [T,B,D·Hout]; dx [T,B,I] -> [B,T,I] (x0 holds the input) */
    if (dy) swap01(ws->bfy, dy, (size_t)B, (size_t)T, (size_t)ws->D * ws->Hout);
    lstm_status st = backward(net, ws, dy ? ws->bfy : NULL, dhn, dcn, dx ? ws->bfx : NULL, dh0, dc0);
    if (st == LSTM_OK && dx) swap01(dx, ws->bfx, (size_t)T, (size_t)B, (size_t)ws->I);
    return st;
}

/* ---------------------------------------------------------------- streaming */

lstm_status lstm_state_init(lstm_state *s, const lstm_net *net, int B) {
    memset(s, 0, sizeof *s);
    if (!lstm__net_made(net)) return lstm__fail(LSTM_ERR_ARG, "state: the network is not initialized (or was freed)");
    if (B < 1) return lstm__fail(LSTM_ERR_ARG, "state: B=%d must be >= 1", B);
    s->L = net->cfg.num_layers;
    s->D = net->D;
    s->B = B;
    s->H = net->H;
    s->Hout = net->Hout;
    size_t n = (size_t)s->L * s->D * B;
    int has_c = lstm__cell_of(net->cfg.cell)->has_c;
    s->h = calloc(n * s->Hout, sizeof(float));
    s->c = has_c ? calloc(n * s->H, sizeof(float)) : NULL;
    if (!s->h || (has_c && !s->c)) {
        lstm_state_free(s);
        return lstm__fail(LSTM_ERR_NOMEM, "state: out of memory");
    }
    return LSTM_OK;
}

void lstm_state_reset(lstm_state *s) {
    size_t n = (size_t)s->L * s->D * s->B;
    if (s->h) memset(s->h, 0, n * s->Hout * sizeof(float)); /* (a freed state: nothing) */
    if (s->c) memset(s->c, 0, n * s->H * sizeof(float));
}

lstm_status lstm_state_copy(lstm_state *dst, const lstm_state *src) {
    if (dst->L != src->L || dst->D != src->D || dst->B != src->B || dst->H != src->H || dst->Hout != src->Hout ||
        !dst->c != !src->c)
        return lstm__fail(LSTM_ERR_SHAPE, "state copy: shapes differ");
    size_t n = (size_t)src->L * src->D * src->B;
    if (!src->h || !dst->h) return lstm__fail(LSTM_ERR_ARG, "state copy: a state is not initialized (or was freed)");
    memcpy(dst->h, src->h, n * src->Hout * sizeof(float));
    if (src->c) memcpy(dst->c, src->c, n * src->H * sizeof(float));
    return LSTM_OK;
}

void lstm_state_free(lstm_state *s) {
    if (!s) return;
    free(s->h);
    free(s->c);
    memset(s, 0, sizeof *s);
}

/* One step at batch 1 when the packs are current (every call after the first
 * on the same weights): the cell's batch-1 step per layer straight on the
 * state, no dir_op, no copies.  With one unit group (H <= 48) the step writes
 * h in place (it reads all of h before it writes any); with more, through
 * scratch.  The same kernel and arguments as forward's T = 1 path, so the
 * same bits; act0 (layer 0's bias + x·W_ihᵀ, given) as forward's act_ready. */
/* Layer l's batch-1 step on the state from in (NULL: ws->act holds its input sums), the last
 * layer's h also into y. */
static void stream_layer(const lstm_net *net, lstm_workspace *ws, lstm_state *s, int l, const float *in, float *y,
                         int rev) {
    const lstm_weights *w = &net->w[l];
    const int H = ws->H, Hout = ws->Hout, in_place = ws->p1_groups == 1;
    float *h = s->h + (size_t)l * Hout, *c = s->c ? s->c + (size_t)l * H : NULL;
    float *last = l == ws->L - 1 ? y : NULL, *m = in_place ? h : last ? last : ws->ys;
    ws->cell->step1(ws->team, H, w->in, Hout, rev, ws->p1 + (size_t)l * ws->p1_size, ws->act, NULL, in,
                    w->b_ih ? ws->bias + (size_t)l * ws->AH : NULL, h, c, c, m, in_place ? last : NULL);
    if (!in_place) memcpy(h, m, (size_t)Hout * sizeof(float));
}

static void stream_step1(const lstm_net *net, lstm_workspace *ws, lstm_state *s, const float *x, const float *act0,
                         float *y) {
    const lstm__cell *cell = ws->cell;
    const int L = ws->L, H = ws->H, Hout = ws->Hout, rev = ws->p1_rev;
    if (ws->p1_plan && net->cfg.bias == ws->p1_bias) { /* one group: the lean entry, in place on the state */
        const lstm__step1_one_fn one = cell->step1_one;
        one(ws->p1_plan, act0 ? NULL : x, act0, s->h, s->c, L == 1 ? y : NULL);
        for (int l = 1; l < L; l++)
            one(ws->p1_plan + l, s->h + (size_t)(l - 1) * H, NULL, s->h + (size_t)l * H,
                s->c ? s->c + (size_t)l * H : NULL, l == L - 1 ? y : NULL);
        return;
    }
    ws->p1_rev ^= 1;
    if (act0) memcpy(ws->act, act0, (size_t)ws->AH * sizeof(float));
    for (int l = 0; l < L; l++) stream_layer(net, ws, s, l, l == 0 ? (act0 ? NULL : x) : s->h + (size_t)(l - 1) * Hout, y, rev);
}

/* The checks of a stream call against its workspace and state (errors). */
static lstm_status stream_check(const lstm_net *net, const lstm_workspace *ws, const lstm_state *s) {
    if (ws->bf) return lstm__fail(LSTM_ERR_ARG, "stream: runs time-major: the workspace must not be LSTM_WS_BATCH_FIRST");
    /* (a train workspace would record the stream for lstm_backward: its T, not the last forward's) */
    if (ws->train) return lstm__fail(LSTM_ERR_ARG, "stream: needs an inference workspace (made without LSTM_WS_TRAIN)");
    if (net->D != 1) return lstm__fail(LSTM_ERR_ARG, "stream: a bidirectional network cannot run step by step");
    if (s->L != net->cfg.num_layers || s->D != net->D || s->H != net->H || s->Hout != net->Hout || s->B != ws->B ||
        !s->c != !ws->cell->has_c)
        return lstm__fail(LSTM_ERR_SHAPE, "stream: state was made for another network or batch size");
    return LSTM_OK;
}

/* Whether a step may go straight to the batch-1 kernel: its packs made and current for this net
 * (forward's checks of the network against the workspace, cheap: the cell is compared by kind;
 * forward repeats them on its own path). */
static int step1_current(const lstm_net *net, const lstm_workspace *ws) {
    return ws->p1 && ws->pui_ok && ws->pk_src == net->params && ws->pk_stamp == net->stamp && !ws->train && !ws->P &&
           net->cfg.num_layers == ws->L && net->H == ws->H && net->Hout == ws->Hout &&
           net->cfg.input_size == ws->I && (int)net->cfg.cell == ws->cell_kind;
}

static lstm_status stream(const lstm_net *net, lstm_workspace *ws, lstm_state *s, int T, const float *x,
                          const float *act0, float *y) {
    lstm_status st = stream_check(net, ws, s);
    if (st) return st;
    /* y is written while x is still read (a step's later groups, the next layer's steps) */
    if (T >= 1 && T <= ws->T && overlap(x, (size_t)T * ws->B * ws->I, y, (size_t)T * ws->B * ws->Hout))
        return lstm__fail(LSTM_ERR_ARG, "lstm_stream: x and y overlap; y needs memory of its own");
    if (T == 1 && step1_current(net, ws)) {
        stream_step1(net, ws, s, x, act0, y);
        return LSTM_OK;
    }
    /* h0 and hn alias: each (layer) slice is read at its first step and written after its last. */
    return forward(net, ws, T, s->B, x, s->h, s->c, y, s->h, s->c, 1, act0);
}

lstm_status lstm_stream(const lstm_net *net, lstm_workspace *ws, lstm_state *s, int T, const float *x, float *y) {
    return stream(net, ws, s, T, x, NULL, y);
}

lstm_status lstm__stream_act0(const lstm_net *net, lstm_workspace *ws, lstm_state *s, const float *act0, float *y) {
    return stream(net, ws, s, 1, NULL, act0, y);
}

static int early_count;
int lstm__stream_early_runs(void) { return __atomic_load_n(&early_count, __ATOMIC_RELAXED); }

#if LSTM_X86
/* One byte of the sampler with layer 0's sum over h made a step early
 * (lstm__stream_act0_early).  Per call: layer 0's step finished from that sum
 * and act0 (the caller's thread: gates only), then one team run in which every
 * task takes its share of layer 1's groups (the whole step) and of layer 0's
 * sums over the new h0 (for the next call), the two in one order and then the
 * other from call to call.  So each core reads its share of both layers'
 * weights in one stretch, back and forth: what it read last is what it reads
 * first next time, still in its L2, where layer by layer a core's layer-0 share
 * always came back from L3 after its layer-1 share had passed through.  One
 * team run a byte instead of one a layer. */
typedef struct {
    const lstm_net *net;
    const lstm_workspace *ws;
    lstm_state *s;
    float *m1; /* layer 1's h out */
    int gru, rev, ng0, ng1; /* ng1 0: no layer-1 step (one layer, or the sums alone) */
} early_job;

static void early_task(void *arg, int task, int ntasks) {
    const early_job *j = arg;
    const lstm_workspace *ws = j->ws;
    const int a0 = (int)((long)j->ng1 * task / ntasks), a1 = (int)((long)j->ng1 * (task + 1) / ntasks);
    const int b0 = (int)((long)j->ng0 * task / ntasks), b1 = (int)((long)j->ng0 * (task + 1) / ntasks);
    const int H = ws->H, I0 = j->net->w[0].in, I1 = j->ng1 ? j->net->w[1].in : 0;
    /* the rows ahead asked for (prefetch) where the task's shares of both layers, which it reads
     * between two bytes, are more than its core's L2 (then partly from L3), as the one-layer rule
     * (Zen 5, L2 1 MB: 2x256 on 2 threads, 1.5 MB a core, a mock-up of this step alternating 50-byte
     * blocks in one process: 15.9-16.1 us a byte with both shares prefetched, 18.0-18.3 with the
     * one-layer rule, which leaves layer 0's 0.5 MB share alone; the sampler itself later, in
     * separate processes on a noisier host, even: off 20.9-23.3, on 21.0-21.9 us) */
    const long bytes = (j->ng1 ? lstm__step1_bytes(j->gru, H, I1, a0, a1, I1 + H) : 0) +
                       lstm__step1_bytes(j->gru, H, I0, b0, b1, H);
    const int pf = bytes / 2 > lstm__cpu()->step1_pf_bytes; /* (Zen 5, Intel: more than L2; Zen 4: always) */
    for (int i = 0; i < 2; i++) {
        if ((i == 0) == (j->rev == 0)) {
            if (a0 < a1) { /* layer 1's whole step */
                const lstm_weights *w = &j->net->w[1];
                float *c1 = j->s->c ? j->s->c + H : NULL;
                lstm__step1_layer(j->gru, H, I1, a0, a1, j->rev, ws->p1 + ws->p1_size, ws->act, j->s->h,
                                  w->b_ih ? ws->bias + ws->AH : NULL, j->s->h + H, c1, c1, j->m1, pf);
            }
        } else if (b0 < b1) {
            lstm__step1_sums(j->gru, H, I0, b0, b1, j->rev, ws->p1, ws->p1_part, j->s->h, pf);
        }
    }
}

int lstm__stream_early_ok(const lstm_net *net, const lstm_workspace *ws) {
    const lstm__cell *cell = ws->cell;
    const int gru = cell->step1 == lstm__gru_step1;
    return ws->p1 && ws->p1_part && !ws->P && !ws->train && ws->D == 1 && ws->B == 1 &&
           (cell->step1 == lstm__step1 || gru) && net->cfg.num_layers == ws->L && net->H == ws->H &&
           net->Hout == ws->H && lstm__step1_sums_ok(gru, ws->H, net->w[0].in);
}

lstm_status lstm__stream_act0_early(const lstm_net *net, lstm_workspace *ws, lstm_state *s, const float *act0, float *y,
                                    int *have_sums) {
    lstm_status st = stream_check(net, ws, s);
    if (st || !lstm__stream_early_ok(net, ws) || !step1_current(net, ws)) { /* (the packs not made yet: stream makes them) */
        *have_sums = 0;
        return st ? st : stream(net, ws, s, 1, NULL, act0, y);
    }
    const lstm__cell *cell = ws->cell;
    const int gru = cell->step1 == lstm__gru_step1, L = ws->L, H = ws->H, I0 = net->w[0].in;
    const int ng0 = lstm__step1_ngroups(gru, H, I0), rev = ws->p1_rev;
    ws->p1_rev ^= 1;
    __atomic_add_fetch(&early_count, 1, __ATOMIC_RELAXED);
    early_job j = {net, ws, s, L == 2 ? y : ws->ys, gru, rev, ng0, L > 1 ? lstm__step1_ngroups(gru, H, net->w[1].in) : 0};
    int nt = lstm__team_size(ws->team);
    if (nt > ng0) nt = ng0;
    if (!*have_sums) { /* (the first step since the state changed: the sums alone) */
        early_job js = j;
        js.ng1 = 0;
        lstm__team_run_tasks(nt > 1 ? ws->team : NULL, nt, early_task, &js);
    }
    /* layer 0 from its sums and act0 */
    float *m0 = L == 1 ? y : ws->ys;
    memcpy(ws->act, act0, (size_t)ws->AH * sizeof(float));
    lstm__step1_finish(gru, H, I0, 0, ng0, rev, ws->p1, ws->p1_part, ws->act, s->h, s->c, s->c, m0);
    memcpy(s->h, m0, (size_t)H * sizeof(float));
    /* layer 1's step and layer 0's next sums */
    lstm__team_run_tasks(nt > 1 ? ws->team : NULL, nt, early_task, &j);
    *have_sums = 1;
    if (L == 1) return LSTM_OK;
    memcpy(s->h + H, j.m1, (size_t)H * sizeof(float));
    for (int l = 2; l < L; l++) stream_layer(net, ws, s, l, s->h + (size_t)(l - 1) * H, y, rev); /* layers 2.. */
    return LSTM_OK;
}
#else
int lstm__stream_early_ok(const lstm_net *net, const lstm_workspace *ws) {
    (void)net, (void)ws;
    return 0;
}

lstm_status lstm__stream_act0_early(const lstm_net *net, lstm_workspace *ws, lstm_state *s, const float *act0, float *y,
                                    int *have_sums) {
    *have_sums = 0;
    return stream(net, ws, s, 1, NULL, act0, y);
}
#endif
