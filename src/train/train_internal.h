/* train_internal.h — private pieces of the char-level model and its training:
 * the embedding and head layers, softmax cross-entropy (src/train/charlm.c), the
 * optimizers and gradient clipping (src/train/optim.c).  Not installed. */
#ifndef LSTM_TRAIN_INTERNAL_H
#define LSTM_TRAIN_INTERNAL_H

#include "internal.h"

/* ---- embedding: ids [N] -> x [N, E] (rows of emb [V, E]) ---- */
/* The "vocab" metadata: "[b0,b1,...]" into out (at least 4*256+3 bytes). */
void lstm__vocab_json(const lstm_charlm *m, char *out);
void lstm__embedding_forward(float *x, const float *emb, const uint8_t *ids, int N, int E);
/* d_emb [V, E] += scatter of dx [N, E] by ids, in order n = 0..N-1 */
void lstm__embedding_backward(float *d_emb, const float *dx, const uint8_t *ids, int N, int E);

/* ---- the sampler's top-k threshold (src/train/sample.c) ----
 * The value that sorting x[0..n) descending (qsort, NaN comparing equal to
 * everything) puts at index k-1, 1 <= k <= n; tmp [n] scratch.  Without NaN
 * that is the k-th largest value, found by insertion into the k largest
 * (k <= 32); with a NaN, or a larger k, by that sort itself. */
float lstm__kth_largest(float *tmp, const float *x, int n, int k);

/* ---- the sampler's thread count when asked for 0 (automatic; src/train/sample.c) ----
 * 1 while the bytes a byte's step reads fit in l2 (one core's L2 cache in
 * bytes; <= 0: taken as 1 MB), else min(ncpu, 8, the most unit groups of a
 * layer's batch-1 step) (1 when that is < 1).  The bytes: each layer's step
 * pack (cell->step1_pack_size; layer 0's without its input rows, whose
 * product comes from the table), the projections and the packed head
 * (lstm_gemm_packed_size); in a build without the batch-1 step (not x86),
 * the layers' weight matrices instead, and no cap from groups.  lstm__sampler_threads: the count a sampler runs on. */
int lstm__sampler_auto_threads(const lstm_charlm *m, long l2, int ncpu);
int lstm__sampler_threads(const lstm_charlm_sampler *s);
/* (tools/bench_sample) plain 1: every byte a plain lstm__stream_act0 step instead of the early-sums
 * one (the same bits; an A/B of the two in one process) */
void lstm__sampler_set_plain(lstm_charlm_sampler *s, int plain);

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
/* Exact loss sums: q[2] (zero-initialized) += each row's loss rounded to a
 * multiple of 2^-32; the sum is the same for any order or grouping of rows.
 * A row loss outside [0, 2^24) or NaN makes it non-finite (value inf or NaN). */
/* e not NULL: also keeps for the backward e [N, V] = exp(logit - row max) and
 * inv [N] = 1 / the row's sum of e (as lstm__xent_backward rounds them); then
 * lstm__xent_backward_cached gives lstm__xent_backward's bits without an exp. */
void lstm__xent_forward_q(const float *logits, const uint8_t *targets, int N, int V, int64_t q[2], float *e,
                          float *inv);
void lstm__xent_backward_cached(float *dlogits, const float *e, const float *inv, const uint8_t *targets, int N,
                                int V, float scale);
void lstm__lossq_add(int64_t q[2], double row_loss);
void lstm__lossq_merge(int64_t q[2], const int64_t r[2]);
double lstm__lossq_value(const int64_t q[2]);
/* The loss sum of streams [b0, b0+B) of the Btot-stream reading of ids[0..n)
 * (lstm_charlm_eval's blocks of T), added to q.  map: NULL, or ids are bytes
 * and map[byte] their token ids (the model's id table). */
/* Raw bytes ids[i] and ids[i + 1] (an input and its target) both in m's vocabulary:
 * LSTM_OK, else LSTM_ERR_ARG naming the first one outside and its offset. */
lstm_status lstm__charlm_pair_in_vocab(const lstm_charlm *m, const uint8_t *ids, size_t i);
lstm_status lstm__charlm_eval_q(const lstm_charlm *m, const uint8_t *ids, const int16_t *map, size_t n, int Btot,
                                int b0, int B, int T, int threads, int64_t q[2]);
void lstm__xent_backward(float *dlogits, const float *logits, const uint8_t *targets, int N, int V,
                         float scale);

/* ---- the carried state of B streams: h [L, B, Hout], c [L, B, H] (0 floats for a GRU) ---- */
size_t lstm__charlm_h_floats(const lstm_charlm *m, int B);
size_t lstm__charlm_c_floats(const lstm_charlm *m, int B);

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

/* ---- the pieces of a char-model workspace after a forward (src/train/charlm.c) ----
 * T steps (0 after a backward), B streams; y [T,B,Hout], logits [T,B,V],
 * dy [T,B,Hout], dx [T,B,E] (train), ids/tg [T,B]. */
typedef struct {
    int T, B;
    lstm_workspace *lws;
    float *y, *logits, *dy, *dx;
    const float *xe, *xinv; /* lstm__xent_forward_q's e and inv of the last forward, or NULL */
    const uint8_t *ids, *tg;
    int64_t lossq[2];
} lstm__charlm_parts;
void lstm__charlm_ws_parts(lstm_charlm_ws *ws, lstm__charlm_parts *p);

/* ---- exact gradient sums over streams (src/train/exact.c) ----
 * lstm__exact_init: (re)makes tr->exact for this process's streams of r (NULL: all). */
lstm_status lstm__exact_init(lstm_trainer *tr, const lstm_reducer *r);
void lstm__exact_free(lstm_trainer *tr);
void lstm__exact_set_threads(lstm_trainer *tr, int n);
/* Step k of the epoch: batch, forward, backward and the summed gradients;
 * *loss is the mean over all streams; *bad_grad: the gradient is not finite. */
lstm_status lstm__exact_grads(lstm_trainer *tr, int64_t k, double *loss, int *bad_grad);
/* The fixed-point kernels: q[i] += round(x[i]·s) (|x[i]·s| < 2^51, ties to even);
 * g[i] = float(double(q[i])·inv).  _ref: plain C (the oracle); _avx512: same bits. */
void lstm__add_fixed_ref(int64_t *q, const float *x, int n, double s);
void lstm__from_fixed_ref(float *g, const int64_t *q, int n, double inv);
void lstm__add_fixed_avx512(int64_t *q, const float *x, int n, double s);
void lstm__from_fixed_avx512(float *g, const int64_t *q, int n, double inv);

#endif
