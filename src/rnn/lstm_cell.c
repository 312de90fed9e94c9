/* lstm_cell.c — the LSTM cell: point-wise gate math forward/backward (shared by
 * the sequence code) and the one-step torch.nn.LSTMCell API built on it.
 * Gate order i, f, g, o as in torch.nn.LSTM. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static inline float sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }

/* act [B,4H] pre-activations -> activations; c = f·c_prev + i·g; m = o·tanh(c).
 * The scalar loops below are the oracle; lstm__gates_forward/backward dispatch
 * to the AVX-512 versions (gates_avx512.c) when the CPU has them. */
void lstm__gates_forward_ref(float *act, float *c, float *m, int ldm, const float *c_prev, int B, int H) {
    for (int b = 0; b < B; b++) {
        float *a = act + (size_t)b * 4 * H;
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
void lstm__gates_backward_ref(float *dG, float *dc, const float *dm, int ldm, const float *act,
                          const float *c, const float *c_prev, int B, int H) {
    for (int b = 0; b < B; b++) {
        const float *a = act + (size_t)b * 4 * H;
        float *d = dG + (size_t)b * 4 * H;
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

int lstm__gates_avx512(void) {
    static int cached = -1; /* read and written atomically: the first calls may race */
    int choice = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (choice < 0) {
        const char *k = getenv("LSTM_KERNEL");
        int want = !(k && (strcmp(k, "ref") == 0 || strcmp(k, "generic") == 0 || strcmp(k, "avx2") == 0));
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
        choice = want && __builtin_cpu_supports("avx512f");
#else
        (void)want;
        choice = 0;
#endif
        __atomic_store_n(&cached, choice, __ATOMIC_RELAXED);
    }
    return choice;
}

void lstm__gates_forward(float *act, float *c, float *m, int ldm, const float *c_prev, int B, int H) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    if (lstm__gates_avx512()) {
        lstm__gates_forward_avx512(act, c, m, ldm, c_prev, B, H);
        return;
    }
#endif
    lstm__gates_forward_ref(act, c, m, ldm, c_prev, B, H);
}

void lstm__gates_backward(float *dG, float *dc, const float *dm, int ldm, const float *act,
                          const float *c, const float *c_prev, int B, int H) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    if (lstm__gates_avx512()) {
        lstm__gates_backward_avx512(dG, dc, dm, ldm, act, c, c_prev, B, H);
        return;
    }
#endif
    lstm__gates_backward_ref(dG, dc, dm, ldm, act, c, c_prev, B, H);
}

/* gates [B,4H] = x W_ihᵀ + b_ih + h W_hhᵀ + b_hh, then the gate math. */
void lstm_cell_forward(float *h1, float *c1, float *act,
                       const float *x, const float *h, const float *c,
                       const float *w_ih, const float *w_hh,
                       const float *b_ih, const float *b_hh, int B, int I, int H) {
    /* same order of sums as the sequence code, so one step agrees bit for bit:
     * (b_ih + b_hh), then + x·W_ihᵀ, then + h·W_hhᵀ */
    for (int b = 0; b < B; b++)
        for (int k = 0; k < 4 * H; k++) act[(size_t)b * 4 * H + k] = b_ih && b_hh ? b_ih[k] + b_hh[k] : 0.0f;
    lstm_gemm_nt(B, 4 * H, I, x, I, w_ih, I, act, 4 * H, 1.0f);
    if (h) lstm_gemm_nt(B, 4 * H, H, h, H, w_hh, H, act, 4 * H, 1.0f);
    lstm__gates_forward(act, c1, h1, H, c, B, H);
}

void lstm_cell_backward(float *dx, float *dh, float *dc,
                        float *dw_ih, float *dw_hh, float *db_ih, float *db_hh,
                        const float *dh1, const float *dc1, const float *act,
                        const float *x, const float *h, const float *c, const float *c1,
                        const float *w_ih, const float *w_hh, float *scratch,
                        int B, int I, int H) {
    /* scratch [B,5H]: dG [B,4H], then room for dc when the caller passes NULL. */
    float *dG = scratch;
    float *dcr = dc ? dc : scratch + (size_t)B * 4 * H;
    for (size_t k = 0; k < (size_t)B * H; k++) dcr[k] = dc1 ? dc1[k] : 0.0f;
    lstm__gates_backward(dG, dcr, dh1, H, act, c1, c, B, H);
    if (dx) lstm_gemm_nn(B, I, 4 * H, dG, 4 * H, w_ih, I, dx, I, 0.0f);
    if (dh) lstm_gemm_nn(B, H, 4 * H, dG, 4 * H, w_hh, H, dh, H, 0.0f);
    if (dw_ih) lstm_gemm_tn(4 * H, I, B, dG, 4 * H, x, I, dw_ih, I, 1.0f);
    if (dw_hh && h) lstm_gemm_tn(4 * H, H, B, dG, 4 * H, h, H, dw_hh, H, 1.0f);
    for (int b = 0; b < B; b++)
        for (int k = 0; k < 4 * H; k++) {
            float v = dG[(size_t)b * 4 * H + k];
            if (db_ih) db_ih[k] += v;
            if (db_hh) db_hh[k] += v;
        }
}
