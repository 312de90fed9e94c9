/* train_internal.h — private pieces of the char-level model and its training:
 * the embedding and head layers, softmax cross-entropy (src/charlm.c), the
 * optimizers and gradient clipping (src/optim.c).  Not installed. */
#ifndef LSTM_TRAIN_INTERNAL_H
#define LSTM_TRAIN_INTERNAL_H

#include "internal.h"

/* ---- embedding: ids [N] -> x [N, E] (rows of emb [V, E]) ---- */
/* The "vocab" metadata: "[b0,b1,...]" into out (at least 4*256+3 bytes). */
void lstm__vocab_json(const lstm_charlm *m, char *out);
void lstm__embedding_forward(float *x, const float *emb, const uint8_t *ids, int N, int E);
/* d_emb [V, E] += scatter of dx [N, E] by ids, in order n = 0..N-1 */
void lstm__embedding_backward(float *d_emb, const float *dx, const uint8_t *ids, int N, int E);

/* ---- linear: y [N, K] -> out [N, M] = y wᵀ + b, w [M, K], b [M] ---- */
void lstm__linear_forward(float *out, const float *y, const float *w, const float *b, int N, int K, int M);
/* dw [M, K] += doutᵀ y, db [M] += column sums of dout [N, M],
 * dy [N, K] = dout w (overwritten; may be NULL) */
void lstm__linear_backward(float *dy, float *dw, float *db, const float *dout, const float *y,
                           const float *w, int N, int K, int M);

/* ---- softmax cross-entropy: logits [N, V], targets [N] ----
 * Returns the SUM over rows of logsumexp(row) - row[target] (double).
 * dlogits [N, V] (may alias logits, may be NULL): (softmax - onehot) * scale. */
double lstm__xent_forward(const float *logits, const uint8_t *targets, int N, int V);
void lstm__xent_backward(float *dlogits, const float *logits, const uint8_t *targets, int N, int V,
                         float scale);

/* ---- optimizers over flat arrays (torch.optim semantics, PyTorch 1.13) ----
 * t is the 1-based step number of this update (the same for every array of
 * one step); lr is this step's learning rate.  m1, m2: state of the same
 * length as p, zero before the first step. */
void lstm__adam_update(float *p, const float *g, float *m1, float *m2, size_t n, int64_t t,
                       double lr, double beta1, double beta2, double eps, double weight_decay,
                       int decoupled);
void lstm__sgd_update(float *p, const float *g, float *buf, size_t n, int64_t t, double lr,
                      double momentum, double weight_decay, int nesterov);

/* ---- checkpoints (src/train/train.c) ----
 * "train.checksum": 64-bit FNV-1a, as 16 hex digits, over the tensors sorted
 * by name (name, dtype, shape, the stored bytes) and the other metadata
 * entries sorted by key.  verify: LSTM_ERR_FORMAT naming path when it is
 * missing or does not match. */
lstm_status lstm__checkpoint_verify(const lstm_st_file *f, const char *path);
/* Sum of squares of g[0..n), in double. */
double lstm__sumsq(const float *g, size_t n);
/* clip_grad_norm_'s coefficient for a total norm: min(1, max_norm / (norm + 1e-6))
 * computed in float32 as PyTorch does. */
float lstm__clip_coef(double total_norm, double max_norm);
void lstm__scale(float *g, size_t n, float s);

#endif
