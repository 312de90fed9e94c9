/* gru_cell.c — the GRU cell's point-wise gate math (torch.nn.GRU, gates r, z, n),
 * scalar oracle.  Fast versions live in src/kernels/ and must match these
 * operation for operation (see internal.h for the layouts).
 *
 *   r = σ(pre_r)            pre_r = b_ir + b_hr + x·W_irᵀ + h·W_hrᵀ   (one FMA chain)
 *   z = σ(pre_z)            pre_z likewise
 *   n = tanh(xn + r·hn)     xn = b_in + x·W_inᵀ,  hn = b_hn + h·W_hnᵀ
 *   h' = (h − n)·z + n      (ATen's order: (hidden - new_gate) * z + new_gate)
 */
#include <math.h>
#include <string.h>

#include "internal.h"
#if LSTM_X86
#include "kernels/gru_kernels.h"
#endif

static inline float sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }

void lstm__gru_gates_forward_ref(float *act, int lda, float *h, int ldh, const float *h_prev, int ldhp, int B, int H) {
    for (int b = 0; b < B; b++) {
        float *a = act + (size_t)b * lda;
        float *hb = h + (size_t)b * ldh;
        const float *hp = h_prev ? h_prev + (size_t)b * ldhp : NULL;
        for (int j = 0; j < H; j++) {
            float r = sigmoidf(a[j]);
            float z = sigmoidf(a[H + j]);
            float hn = a[3 * H + j];
            float n = tanhf(a[2 * H + j] + r * hn);
            float hpj = hp ? hp[j] : 0.0f;
            a[j] = r;
            a[H + j] = z;
            a[2 * H + j] = n;
            hb[j] = (hpj - n) * z + n;
        }
    }
}

/* With dh = dL/dh':  dz = dh·(h − n);  dn = dh − dh·z;  dh_prev(direct) = dh·z;
 * da_n = dn·(1 − n²);  d hn = da_n·r;  dr = da_n·hn;
 * da_r = dr·r·(1 − r);  da_z = dz·z·(1 − z). */
void lstm__gru_gates_backward_ref(float *dgx, int ldgx, float *dgh, float *dh_prev, const float *dh, int lddh,
                                  const float *act, int lda, const float *h_prev, int ldhp, int B, int H) {
    for (int b = 0; b < B; b++) {
        const float *a = act + (size_t)b * lda;
        const float *dhb = dh + (size_t)b * lddh;
        const float *hp = h_prev ? h_prev + (size_t)b * ldhp : NULL;
        float *gx = dgx + (size_t)b * ldgx;
        float *gh = dgh + (size_t)b * 3 * H;
        float *dp = dh_prev + (size_t)b * H;
        for (int j = 0; j < H; j++) {
            float r = a[j], z = a[H + j], n = a[2 * H + j], hn = a[3 * H + j];
            float d = dhb[j];
            float hpj = hp ? hp[j] : 0.0f;
            float dz = d * (hpj - n);
            float dn = d - d * z;
            float dan = dn * (1.0f - n * n);
            float dar = dan * hn * r * (1.0f - r);
            float daz = dz * z * (1.0f - z);
            dp[j] = d * z;
            gx[j] = dar;
            gx[H + j] = daz;
            gx[2 * H + j] = dan;
            gh[j] = dar;
            gh[H + j] = daz;
            gh[2 * H + j] = dan * r;
        }
    }
}

void lstm__gru_gates_forward(float *act, int lda, float *h, int ldh, const float *h_prev, int ldhp, int B, int H) {
#if LSTM_X86
    if (lstm__kernel_gates_avx512()) {
        lstm__gru_gates_forward_avx512(act, lda, h, ldh, h_prev, ldhp, B, H);
        return;
    }
#endif
    lstm__gru_gates_forward_ref(act, lda, h, ldh, h_prev, ldhp, B, H);
}

void lstm__gru_gates_backward(float *dgx, int ldgx, float *dgh, float *dh_prev, const float *dh, int lddh,
                              const float *act, int lda, const float *h_prev, int ldhp, int B, int H) {
#if LSTM_X86
    if (lstm__kernel_gates_avx512()) {
        lstm__gru_gates_backward_avx512(dgx, ldgx, dgh, dh_prev, dh, lddh, act, lda, h_prev, ldhp, B, H);
        return;
    }
#endif
    lstm__gru_gates_backward_ref(dgx, ldgx, dgh, dh_prev, dh, lddh, act, lda, h_prev, ldhp, B, H);
}

/* ---- the GRU's entry in the cell table (internal.h) ----
 * act (pre_r, pre_z, xn, hn); backward leaves (da_r, da_z, da_n, da_n·r): the
 * gradients of the pre-activations fed by W_ih (blocks 0..2) and W_hh (0, 1, 3). */
static void gru_step_forward(const lstm__cell_step *s) {
    lstm__gru_gates_forward(s->act, s->lda, s->h, s->ldh, s->h_prev, s->ldhp, s->B, s->H);
}

/* scratch [B, 3H]: dgh, whose n block goes to act block 3. */
static void gru_step_backward(const lstm__cell_step *s) {
    const int B = s->B, H = s->H;
    lstm__gru_gates_backward(s->act, s->lda, s->scratch, s->dh_prev, s->dh, s->lddh, s->act, s->lda, s->h_prev, s->ldhp, B, H);
    for (int b = 0; b < B; b++)
        memcpy(s->act + (size_t)b * s->lda + 3 * H, s->scratch + (size_t)b * 3 * H + 2 * H, (size_t)H * sizeof(float));
}

#if LSTM_X86
/* The fused AVX-512 step (gru_step_avx512.c) behind the cell table's contract:
 * W_ih / W_hh packed with G = 3; bsum is lstm__cell_bias's [4H] (b_ir + b_hr,
 * b_iz + b_hz, b_in, b_hn), which the kernel takes as is; no c, no projection
 * (Hout = H); h goes to m, which never overlaps h (the driver writes step t's
 * output row while reading step t-1's). */
static size_t gru_pack_size(int H, int K) { return lstm__pack_gate_units_size(3, H, K); }

static void gru_pack(float *P, int H, int K, const float *W, int ldw, int u0, int u1) {
    lstm__pack_gate_units_range(P, 3, H, K, W, ldw, u0, u1);
}

static void gru_fused_step(int B, int H, int Hout, int in, int u0, int u1, int rev, float *act, int lda, const float *x,
                           int ldx,
                           const float *pih, const float *bsum, const float *h, int ldh, const float *phh,
                           const float *c_prev, float *c, float *m, int ldm) {
    (void)Hout, (void)c_prev, (void)c;
    lstm__gru_step_avx512(B, H, in, u0, u1, rev, act, lda, x, ldx, pih, bsum, h, ldh, phh, m, ldm);
}
#endif

const lstm__cell lstm__cell_gru = {
    .name = "gru", .G = 3, .A = 4, .has_c = 0, .direct_dh = 1, .scratch_units = 3,
    .n_ih = 1, .n_hh = 2, .ih = {{0, 0, 3}}, .hh = {{0, 0, 2}, {2, 3, 1}},
    .forward = gru_step_forward, .backward = gru_step_backward,
#if LSTM_X86
    .fused_pack_size = gru_pack_size, .fused_pack = gru_pack, .fused_step = gru_fused_step,
    .step1_pack_size = lstm__gru_step1_pack_size, .step1_pack = lstm__gru_step1_pack, .step1 = lstm__gru_step1,
    .step1_groups = lstm__gru_step1_groups, .step1_one = lstm__gru_step1_one_avx512,
#endif
};
