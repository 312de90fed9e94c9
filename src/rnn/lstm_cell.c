/* lstm_cell.c — the LSTM cell: point-wise gate math forward/backward (the
 * sequence engine and the LSTMCell API reach it through the cell table).
 * Gate order i, f, g, o as in torch.nn.LSTM. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static inline float sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }

/* act [B, lda] (columns [0,4H)) pre-activations -> activations; c = f·c_prev + i·g; m = o·tanh(c).
 * The scalar loops below are the oracle; lstm__gates_forward/backward dispatch
 * to the AVX-512 versions (gates_avx512.c) when the CPU has them. */
void lstm__gates_forward_ref(float *act, int lda, float *c, float *m, int ldm, const float *c_prev, int B, int H) {
    for (int b = 0; b < B; b++) {
        float *a = act + (size_t)b * lda;
        float *cb = c + (size_t)b * H;
        float *mb = m + (size_t)b * ldm;
        const float *cp = c_prev ? c_prev + (size_t)b * H : NULL;
        for (int j = 0; j < H; j++) {
            float i = sigmoidf(a[j]);
            float f = sigmoidf(a[H + j]);
            float g = tanhf(a[2 * H + j]);
            float o = sigmoidf(a[3 * H + j]);
            a[j] = i;
            a[H + j] = f;
            a[2 * H + j] = g;
            a[3 * H + j] = o;
            /* f·0 when c_prev is NULL, as torch's zeros: a NaN f gives a NaN c */
            float cn = f * (cp ? cp[j] : 0.0f) + i * g;
            cb[j] = cn;
            mb[j] = o * tanhf(cn);
        }
    }
}

/* With t = tanh(c):  do = dm·t;  dc_tot = dc + dm·o·(1−t²);
 * di = dc_tot·g;  df = dc_tot·c_prev;  dg = dc_tot·i;  dc_prev = dc_tot·f;
 * through the activations: σ' = σ(1−σ), tanh' = 1−tanh². */
void lstm__gates_backward_ref(float *dG, float *dc, const float *dm, int ldm, const float *act, int lda,
                          const float *c, const float *c_prev, int B, int H) {
    for (int b = 0; b < B; b++) {
        const float *a = act + (size_t)b * lda;
        float *d = dG + (size_t)b * lda;
        float *dcb = dc + (size_t)b * H;
        const float *dmb = dm + (size_t)b * ldm;
        const float *cb = c + (size_t)b * H;
        const float *cp = c_prev ? c_prev + (size_t)b * H : NULL;
        for (int j = 0; j < H; j++) {
            float i = a[j], f = a[H + j], g = a[2 * H + j], o = a[3 * H + j];
            float t = tanhf(cb[j]);
            float dct = dcb[j] + dmb[j] * o * (1.0f - t * t);
            float cpj = cp ? cp[j] : 0.0f;
            d[j] = dct * g * i * (1.0f - i);
            d[H + j] = dct * cpj * f * (1.0f - f);
            d[2 * H + j] = dct * i * (1.0f - g * g);
            d[3 * H + j] = dmb[j] * t * o * (1.0f - o);
            dcb[j] = dct * f;
        }
    }
}

void lstm__gates_forward(float *act, int lda, float *c, float *m, int ldm, const float *c_prev, int B, int H) {
#if LSTM_X86
    if (lstm__kernel_gates_avx512()) {
        lstm__gates_forward_avx512(act, lda, c, m, ldm, c_prev, B, H);
        return;
    }
#endif
    lstm__gates_forward_ref(act, lda, c, m, ldm, c_prev, B, H);
}

void lstm__gates_backward(float *dG, float *dc, const float *dm, int ldm, const float *act, int lda,
                          const float *c, const float *c_prev, int B, int H) {
#if LSTM_X86
    if (lstm__kernel_gates_avx512()) {
        lstm__gates_backward_avx512(dG, dc, dm, ldm, act, lda, c, c_prev, B, H);
        return;
    }
#endif
    lstm__gates_backward_ref(dG, dc, dm, ldm, act, lda, c, c_prev, B, H);
}

/* ---- the LSTM's entry in the cell table (internal.h) ---- */
static void lstm_step_forward(const lstm__cell_step *s) {
    lstm__gates_forward(s->act, s->lda, s->c, s->h, s->ldh, s->c_prev, s->B, s->H);
}

static void lstm_step_backward(const lstm__cell_step *s) {
    lstm__gates_backward(s->act, s->dc, s->dh, s->lddh, s->act, s->lda, s->c, s->c_prev, s->B, s->H);
}

const lstm__cell lstm__cell_lstm = {
    .name = "lstm", .G = 4, .A = 4, .has_c = 1, .direct_dh = 0, .scratch_units = 0,
    .n_ih = 1, .n_hh = 1, .ih = {{0, 0, 4}}, .hh = {{0, 0, 4}},
    .forward = lstm_step_forward, .backward = lstm_step_backward,
#if LSTM_X86
    .fused_pack_size = lstm__pack_units_size, .fused_pack = lstm__pack_units_range, .fused_step = lstm__step_avx512,
    .step1_pack_size = lstm__step1_pack_size, .step1_pack = lstm__step1_pack, .step1 = lstm__step1,
    .step1_groups = lstm__step1_groups, .step1_one = lstm__step1_one_avx512,
#endif
};
