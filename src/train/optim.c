/* optim.c — torch.optim's Adam, AdamW and SGD (PyTorch 1.13, single-tensor
 * code path) over flat float arrays; clip_grad_norm_'s pieces; the learning
 * rate schedules.  Scalars are computed in double and rounded to float where
 * PyTorch passes a Python float to a float32 tensor op.  The formulas are
 * torch's; the rounding order within one element's update is not (torch's
 * vectorized kernels fuse some multiply-adds, plain C here does not), and the
 * global norm is one double sum where torch stacks per-tensor float norms: the
 * results agree to float32 rounding (tests/test_train.c: weights within 2e-5). */
#include <math.h>

#include "train_internal.h"

/* p, g, m1, m2 [n]; t: 1-based step */
void lstm__adam_update(float *p, const float *g, float *m1, float *m2, size_t n, int64_t t,
                       double lr, double beta1, double beta2, double eps, double weight_decay,
                       int decoupled) {
    double bc1 = 1.0 - pow(beta1, (double)t), bc2 = 1.0 - pow(beta2, (double)t);
    float step_size = (float)(lr / bc1), bc2_sqrt = (float)sqrt(bc2);
    float b1 = (float)beta1, b2 = (float)beta2, a1 = (float)(1.0 - beta1), a2 = (float)(1.0 - beta2);
    float fe = (float)eps, wd = (float)weight_decay, keep = (float)(1.0 - lr * weight_decay);
    for (size_t i = 0; i < n; i++) {
        float gi = g[i];
        if (decoupled) p[i] *= keep;                   /* AdamW: param.mul_(1 - lr*wd) */
        else if (weight_decay != 0.0) gi += p[i] * wd; /* Adam: grad.add(param, alpha=wd) */
        m1[i] = m1[i] * b1 + gi * a1;
        m2[i] = m2[i] * b2 + gi * gi * a2;
        float denom = sqrtf(m2[i]) / bc2_sqrt + fe;
        p[i] += -step_size * (m1[i] / denom);
    }
}

/* p, g, buf [n]; t: 1-based step (t == 1 initializes the momentum buffer) */
void lstm__sgd_update(float *p, const float *g, float *buf, size_t n, int64_t t, double lr,
                      double momentum, double weight_decay, int nesterov) {
    float mu = (float)momentum, wd = (float)weight_decay, nlr = (float)-lr;
    for (size_t i = 0; i < n; i++) {
        float d = g[i];
        if (weight_decay != 0.0) d += p[i] * wd;
        if (momentum != 0.0) {
            buf[i] = t == 1 ? d : buf[i] * mu + d; /* dampening 0 */
            d = nesterov ? d + buf[i] * mu : buf[i];
        }
        p[i] += d * nlr;
    }
}

double lstm__sumsq(const float *g, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)g[i] * g[i];
    return s;
}

float lstm__clip_coef(double total_norm, double max_norm) {
    /* clip_coef = max_norm / (total_norm + 1e-6), a float32 tensor op
     * (Python's __rtruediv__: reciprocal, then multiply), clamped to <= 1 */
    float r = 1.0f / ((float)total_norm + 1e-6f);
    float coef = r * (float)max_norm;
    return coef < 1.0f ? coef : 1.0f;
}

void lstm__scale(float *g, size_t n, float s) {
    for (size_t i = 0; i < n; i++) g[i] *= s;
}

void lstm_train_config_default(lstm_train_config *c) {
    *c = (lstm_train_config){
        .batch = 32, .bptt = 64, .optimizer = LSTM_OPT_ADAM, .lr = 3e-3,
        .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.0, .momentum = 0.9,
        .nesterov = 0, .clip = 1.0, .schedule = LSTM_SCHED_CONSTANT, .warmup = 0,
        .total_steps = 0, .lr_min = 0.0, .dropout = 0.0, .seed = 1,
    };
}

/* lr of 0-based step s: linear warmup lr*(s+1)/warmup for s < warmup; then
 * constant, or cosine from lr at s = warmup to lr_min at s = total_steps. */
double lstm_train_lr(const lstm_train_config *c, int64_t s) {
    if (s < c->warmup) return c->lr * (double)(s + 1) / (double)c->warmup;
    if (c->schedule == LSTM_SCHED_CONSTANT) return c->lr;
    int64_t span = c->total_steps - c->warmup;
    if (span <= 0 || s >= c->total_steps) return c->lr_min;
    double progress = (double)(s - c->warmup) / (double)span;
    return c->lr_min + 0.5 * (c->lr - c->lr_min) * (1.0 + cos(3.141592653589793 * progress));
}
