/* cell.c — the cell table and what every cell shares: the bias and input
 * products by the table's runs, and the one-step cell API (nn.LSTMCell,
 * nn.GRUCell) built on a cell's point-wise forward/backward.  A cell's own
 * math lives in its file (lstm_cell.c, gru_cell.c); see internal.h. */
#include <math.h>
#include <string.h>

#include "internal.h"

const lstm__cell *lstm__cell_of(int kind) {
    switch (kind) {
    case LSTM_CELL_LSTM: return &lstm__cell_lstm;
    case LSTM_CELL_GRU: return &lstm__cell_gru;
    default: return NULL;
    }
}

int lstm__cell_run_row(const lstm__run *r, int n, int a) {
    for (int k = 0; k < n; k++)
        if (a >= r[k].a && a < r[k].a + r[k].n) return r[k].w + a - r[k].a;
    return -1;
}

void lstm__cell_bias(const lstm__cell *cell, int H, float *bias, const float *b_ih, const float *b_hh) {
    for (int a = 0; a < cell->A; a++) {
        int wi = b_ih ? lstm__cell_run_row(cell->ih, cell->n_ih, a) : -1;
        int wh = b_hh ? lstm__cell_run_row(cell->hh, cell->n_hh, a) : -1;
        float *o = bias + (size_t)a * H;
        for (int j = 0; j < H; j++) {
            if (wi >= 0 && wh >= 0) o[j] = b_ih[(size_t)wi * H + j] + b_hh[(size_t)wh * H + j];
            else if (wi >= 0) o[j] = b_ih[(size_t)wi * H + j];
            else if (wh >= 0) o[j] = b_hh[(size_t)wh * H + j];
            else o[j] = 0.0f;
        }
    }
}

void lstm__cell_gemm_ih(const lstm__cell *cell, lstm__team *team, int B, int H, int in, const float *X, int ldx,
                        const float *w_ih, float *act, int lda, float beta) {
    for (int k = 0; k < cell->n_ih; k++) {
        const lstm__run *r = &cell->ih[k];
        lstm_gemm_nt_mt(team, B, r->n * H, in, X, ldx, w_ih + (size_t)r->w * H * in, in, act + (size_t)r->a * H,
                        lda, beta);
    }
}

/* act [rows, A·H] = bias + X·W_ihᵀ by the runs: each W_ih run is one
 * bias-initialized product (the same bits as filling act with the bias and
 * adding the product with beta 1), act blocks no W_ih run feeds (the GRU's hn)
 * get the bias alone.  bias NULL: zeros. */
void lstm__cell_gemm_ih_bias(const lstm__cell *cell, lstm__team *team, int rows, int H, int in, const float *X,
                             int ldx, const float *w_ih, const float *bias, float *act, int lda, float *abuf,
                             size_t abuf_n) {
    for (int k = 0; k < cell->n_ih; k++) {
        const lstm__run *r = &cell->ih[k];
        float *C = act + (size_t)r->a * H;
        const float *W = w_ih + (size_t)r->w * H * in;
        lstm__gemm_nt_bias_apack_mt(team, rows, r->n * H, in, X, ldx, W, in, bias ? bias + (size_t)r->a * H : NULL, C,
                                    lda, abuf, abuf_n);
    }
    for (int a = 0; a < cell->A; a++) {
        if (lstm__cell_run_row(cell->ih, cell->n_ih, a) >= 0) continue;
        for (int i = 0; i < rows; i++) {
            float *o = act + (size_t)i * lda + (size_t)a * H;
            if (bias) memcpy(o, bias + (size_t)a * H, (size_t)H * sizeof(float));
            else memset(o, 0, (size_t)H * sizeof(float));
        }
    }
}

/* ---------------------------------------------------------------- one step (cell API) */

/* act [B, A·H] = bias + x·W_ihᵀ + h·W_hhᵀ (that order of sums, as in the sequence
 * engine, so one step agrees with it bit for bit), then the cell's forward. */
static void cell_forward(const lstm__cell *cell, float *h1, float *c1, float *act, const float *x, const float *h,
                         const float *c, const float *w_ih, const float *w_hh, const float *b_ih,
                         const float *b_hh, int B, int I, int H) {
    if (B < 1 || I < 0 || H < 1) return; /* (no status to return: nothing is written) */
    const int AH = cell->A * H;
    int bias = b_ih && b_hh;
    lstm__cell_bias(cell, H, act, bias ? b_ih : NULL, bias ? b_hh : NULL);
    for (int b = 1; b < B; b++) memcpy(act + (size_t)b * AH, act, (size_t)AH * sizeof(float));
    lstm__cell_gemm_ih(cell, NULL, B, H, I, x, I, w_ih, act, AH, 1.0f);
    for (int k = 0; k < cell->n_hh; k++) {
        const lstm__run *r = &cell->hh[k];
        if (h) {
            lstm_gemm_nt(B, r->n * H, H, h, H, w_hh + (size_t)r->w * H * H, H, act + (size_t)r->a * H, AH, 1.0f);
            continue;
        }
        /* h NULL: zeros, whose product torch forms: 0·NaN and 0·Inf are NaN, so a W_hh row
         * with one makes its gate NaN (the sequence engine's zero_h0_for) */
        for (int j = 0; j < r->n * H; j++)
            if (!lstm__all_finite(w_hh + ((size_t)r->w * H + j) * H, (size_t)H))
                for (int b = 0; b < B; b++) act[(size_t)b * AH + (size_t)r->a * H + j] += NAN;
    }
    lstm__cell_step s = {.B = B, .H = H, .act = act, .lda = AH, .h_prev = h, .ldhp = H, .h = h1, .ldh = H, .c_prev = c, .c = c1};
    cell->forward(&s);
}

/* scratch: dG [B, A·H], the cell's scratch [B, scratch_units·H], then [B, H] for
 * dc (LSTM) or the direct part of dh when the caller passes dh = NULL. */
static void cell_backward(const lstm__cell *cell, float *dx, float *dh, float *dc, float *dw_ih, float *dw_hh,
                          float *db_ih, float *db_hh, const float *dh1, const float *dc1, const float *act,
                          const float *x, const float *h, const float *c, const float *c1, const float *w_ih,
                          const float *w_hh, float *scratch, int B, int I, int H) {
    if (B < 1 || I < 0 || H < 1) return;
    const int AH = cell->A * H;
    const size_t bh = (size_t)B * H;
    float *dG = scratch, *cs = scratch + (size_t)B * AH, *extra = cs + (size_t)cell->scratch_units * bh;
    memcpy(dG, act, (size_t)B * AH * sizeof(float));
    float *dcr = NULL, *dhp = NULL;
    if (cell->has_c) {
        dcr = dc ? dc : extra;
        for (size_t k = 0; k < bh; k++) dcr[k] = dc1 ? dc1[k] : 0.0f;
    }
    if (cell->direct_dh) dhp = dh ? dh : extra;
    lstm__cell_step s = {.B = B, .H = H, .act = dG, .lda = AH, .h_prev = h, .ldhp = H, .c_prev = c, .c = (float *)c1,
                         .dh = dh1, .lddh = H, .dc = dcr, .dh_prev = dhp, .scratch = cs};
    cell->backward(&s);
    for (int k = 0; dx && k < cell->n_ih; k++) {
        const lstm__run *r = &cell->ih[k];
        lstm_gemm_nn(B, I, r->n * H, dG + (size_t)r->a * H, AH, w_ih + (size_t)r->w * H * I, I, dx, I, k ? 1.0f : 0.0f);
    }
    for (int k = 0; dh && k < cell->n_hh; k++) {
        const lstm__run *r = &cell->hh[k];
        lstm_gemm_nn(B, H, r->n * H, dG + (size_t)r->a * H, AH, w_hh + (size_t)r->w * H * H, H, dh, H,
                     k || cell->direct_dh ? 1.0f : 0.0f);
    }
    for (int k = 0; dw_ih && k < cell->n_ih; k++) {
        const lstm__run *r = &cell->ih[k];
        lstm_gemm_tn(r->n * H, I, B, dG + (size_t)r->a * H, AH, x, I, dw_ih + (size_t)r->w * H * I, I, 1.0f);
    }
    for (int k = 0; dw_hh && k < cell->n_hh; k++) {
        const lstm__run *r = &cell->hh[k];
        if (h) {
            lstm_gemm_tn(r->n * H, H, B, dG + (size_t)r->a * H, AH, h, H, dw_hh + (size_t)r->w * H * H, H, 1.0f);
            continue;
        }
        /* h NULL (zeros): dW_hh += dGᵀ·0, NaN in the rows whose dG column is not finite */
        for (int j = 0; j < r->n * H; j++) {
            int fin = 1;
            for (int b = 0; fin && b < B; b++) fin = isfinite(dG[(size_t)b * AH + (size_t)r->a * H + j]);
            if (!fin)
                for (int q = 0; q < H; q++) dw_hh[((size_t)r->w * H + j) * H + q] += NAN;
        }
    }
    for (int q = 0; q < 2; q++) {
        float *db = q ? db_hh : db_ih;
        const lstm__run *runs = q ? cell->hh : cell->ih;
        for (int k = 0; db && k < (q ? cell->n_hh : cell->n_ih); k++)
            for (int b = 0; b < B; b++)
                for (int j = 0; j < runs[k].n * H; j++)
                    db[(size_t)runs[k].w * H + j] += dG[(size_t)b * AH + (size_t)runs[k].a * H + j];
    }
}

void lstm_cell_forward(float *h1, float *c1, float *act,
                       const float *x, const float *h, const float *c,
                       const float *w_ih, const float *w_hh,
                       const float *b_ih, const float *b_hh, int B, int I, int H) {
    cell_forward(&lstm__cell_lstm, h1, c1, act, x, h, c, w_ih, w_hh, b_ih, b_hh, B, I, H);
}

void lstm_cell_backward(float *dx, float *dh, float *dc,
                        float *dw_ih, float *dw_hh, float *db_ih, float *db_hh,
                        const float *dh1, const float *dc1, const float *act,
                        const float *x, const float *h, const float *c, const float *c1,
                        const float *w_ih, const float *w_hh, float *scratch,
                        int B, int I, int H) {
    cell_backward(&lstm__cell_lstm, dx, dh, dc, dw_ih, dw_hh, db_ih, db_hh, dh1, dc1, act, x, h, c, c1, w_ih, w_hh,
                  scratch, B, I, H);
}

void lstm_gru_cell_forward(float *h1, float *act, const float *x, const float *h,
                           const float *w_ih, const float *w_hh, const float *b_ih, const float *b_hh,
                           int B, int I, int H) {
    cell_forward(&lstm__cell_gru, h1, NULL, act, x, h, NULL, w_ih, w_hh, b_ih, b_hh, B, I, H);
}

void lstm_gru_cell_backward(float *dx, float *dh, float *dw_ih, float *dw_hh, float *db_ih, float *db_hh,
                            const float *dh1, const float *act, const float *x, const float *h,
                            const float *w_ih, const float *w_hh, float *scratch, int B, int I, int H) {
    cell_backward(&lstm__cell_gru, dx, dh, NULL, dw_ih, dw_hh, db_ih, db_hh, dh1, NULL, act, x, h, NULL, NULL, w_ih,
                  w_hh, scratch, B, I, H);
}
