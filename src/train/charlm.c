/* charlm.c — the char-level language model: Embedding(V, E) -> LSTM ->
 * Linear(Hout, V) -> softmax cross-entropy; its layers forward and backward,
 * initialization, files, and evaluation over token streams. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/fileio.h"
#include "train_internal.h"

/* ================================================================ layers */

/* ids [N] -> x [N, E] */
void lstm__embedding_forward(float *x, const float *emb, const uint8_t *ids, int N, int E) {
    for (int n = 0; n < N; n++) memcpy(x + (size_t)n * E, emb + (size_t)ids[n] * E, (size_t)E * sizeof(float));
}

/* dx [N, E] -> d_emb [V, E] += (in n order, as index_add does on CPU) */
void lstm__embedding_backward(float *d_emb, const float *dx, const uint8_t *ids, int N, int E) {
    for (int n = 0; n < N; n++) {
        float *d = d_emb + (size_t)ids[n] * E;
        const float *s = dx + (size_t)n * E;
        for (int e = 0; e < E; e++) d[e] += s[e];
    }
}

/* y [N, K] -> out [N, M] = y wᵀ + b */
void lstm__linear_forward(float *out, const float *y, const float *w, const float *b, int N, int K, int M) {
    for (int n = 0; n < N; n++) memcpy(out + (size_t)n * M, b, (size_t)M * sizeof(float));
    lstm_gemm_nt(N, M, K, y, K, w, K, out, M, 1.0f);
}

/* dout [N, M] -> dw [M, K] += doutᵀ y, db [M] += Σ_n dout, dy [N, K] = dout w */
void lstm__linear_backward(float *dy, float *dw, float *db, const float *dout, const float *y,
                           const float *w, int N, int K, int M) {
    lstm_gemm_tn(M, K, N, dout, M, y, K, dw, K, 1.0f);
    for (int n = 0; n < N; n++) {
        const float *r = dout + (size_t)n * M;
        for (int m = 0; m < M; m++) db[m] += r[m];
    }
    if (dy) lstm_gemm_nn(N, K, M, dout, M, w, K, dy, K, 0.0f);
}

static float row_max(const float *r, int V) {
    float mx = r[0];
    for (int v = 1; v < V; v++) mx = r[v] > mx ? r[v] : mx;
    return mx;
}

/* Loss sums are exact: each row's loss (double) is rounded to a multiple of
 * 2^-32 and the integers are added (q[0]: high parts, q[1]: low 32 bits), so
 * the sum does not depend on the order or grouping of the rows (streams split
 * over threads or processes give the same bits).  A row loss outside
 * [0, 2^24) (or NaN) makes the sum non-finite: q[0] = INT64_MIN marks it,
 * q[1] = 1 when some row was NaN (the sum is NaN: inf + NaN is NaN, as in
 * torch's mean, whatever the order of the rows), else 0 (+inf). */
void lstm__lossq_add(int64_t q[2], double l) {
    if (q[0] == INT64_MIN || !(l >= 0.0 && l < 0x1p24)) { /* cross-entropy is >= 0; NaN and inf land here */
        if (q[0] != INT64_MIN) q[1] = 0;
        q[0] = INT64_MIN;
        q[1] |= l != l;
        return;
    }
    double y = l * 0x1p32; /* < 2^56; from 2^52 on every double is an integer */
    if (y < 0x1p52) y = (y + 0x1p52) - 0x1p52; /* round to nearest, ties to even */
    int64_t x = (int64_t)y;
    q[0] += x >> 32;
    q[1] += x & 0xFFFFFFFF;
}

void lstm__lossq_merge(int64_t q[2], const int64_t r[2]) {
    if (q[0] == INT64_MIN || r[0] == INT64_MIN) { /* NaN if either is NaN, else +inf */
        q[1] = (q[0] == INT64_MIN && q[1]) || (r[0] == INT64_MIN && r[1]);
        q[0] = INT64_MIN;
        return;
    }
    q[0] += r[0];
    q[1] += r[1];
}

double lstm__lossq_value(const int64_t q[2]) {
    if (q[0] == INT64_MIN) return q[1] ? NAN : INFINITY;
    int64_t hi = q[0] + (q[1] >> 32), lo = q[1] & 0xFFFFFFFF;
    return (double)hi + (double)lo * 0x1p-32;
}

/* logits [N, V], targets [N] -> Σ_n (logsumexp(row n) - row n[target]) into q;
 * e, inv not NULL: each row's exps and 1/sum kept for lstm__xent_backward_cached */
void lstm__xent_forward_q(const float *logits, const uint8_t *targets, int N, int V, int64_t q[2], float *e,
                          float *inv) {
    for (int n = 0; n < N; n++) {
        const float *r = logits + (size_t)n * V;
        float mx = row_max(r, V);
        double s = 0.0;
        if (e) {
            float *en = e + (size_t)n * V;
            for (int v = 0; v < V; v++) s += en[v] = expf(r[v] - mx);
            inv[n] = (float)(1.0 / s);
        } else {
            for (int v = 0; v < V; v++) s += expf(r[v] - mx);
        }
        lstm__lossq_add(q, (double)mx + log(s) - (double)r[targets[n]]);
    }
}

void lstm__xent_backward_cached(float *dlogits, const float *e, const float *inv, const uint8_t *targets, int N,
                                int V, float scale) {
    for (int n = 0; n < N; n++) {
        const float *en = e + (size_t)n * V;
        float *d = dlogits + (size_t)n * V;
        for (int v = 0; v < V; v++) d[v] = en[v] * inv[n] * scale;
        d[targets[n]] -= scale;
    }
}

double lstm__xent_forward(const float *logits, const uint8_t *targets, int N, int V) {
    int64_t q[2] = {0, 0};
    lstm__xent_forward_q(logits, targets, N, V, q, NULL, NULL);
    return lstm__lossq_value(q);
}

/* dlogits [N, V] = (softmax(logits) - onehot(targets)) * scale; may alias logits */
void lstm__xent_backward(float *dlogits, const float *logits, const uint8_t *targets, int N, int V,
                         float scale) {
    for (int n = 0; n < N; n++) {
        const float *r = logits + (size_t)n * V;
        float *d = dlogits + (size_t)n * V;
        float mx = row_max(r, V);
        double s = 0.0;
        for (int v = 0; v < V; v++) { /* r[v] is read before d[v] is written: d may be r */
            float e = expf(r[v] - mx);
            s += e;
            d[v] = e;
        }
        float inv = (float)(1.0 / s);
        lstm__xent_backward_cached(d, d, &inv, targets + n, 1, V, scale); /* d holds the row's exps */
    }
}

/* ================================================================ the model */

/* The recurrent module's name in the state_dict: "lstm." or "gru.". */
static const char *rnn_prefix(int cell) { return cell == LSTM_CELL_GRU ? "gru." : "lstm."; }

lstm_status lstm_charlm_init(lstm_charlm *m, const unsigned char *vocab, int V, int E,
                             const lstm_config *cfg) {
    memset(m, 0, sizeof *m);
    if (V < 1 || V > 256)
        return lstm__fail(LSTM_ERR_ARG, "char model: vocabulary size expected in [1, 256], got %d", V);
    if (E < 1 || E > (1 << 20))
        return lstm__fail(LSTM_ERR_ARG, "char model: embedding size expected in [1, 2^20], got %d", E);
    if (cfg->input_size != E || !cfg->bias || cfg->bidirectional)
        return lstm__fail(LSTM_ERR_ARG,
                          "char model: expected a unidirectional LSTM or GRU with bias and input size %d, got input %d bias %d bidirectional %d",
                          E, cfg->input_size, cfg->bias, cfg->bidirectional);
    for (int b = 0; b < 256; b++) m->id[b] = -1;
    for (int v = 0; v < V; v++) {
        if (m->id[vocab[v]] >= 0)
            return lstm__fail(LSTM_ERR_ARG, "char model: vocabulary lists byte %d twice", vocab[v]);
        m->id[vocab[v]] = (int16_t)v;
        m->vocab[v] = vocab[v];
    }
    size_t n_rnn;
    lstm_status st = lstm_net_size(cfg, &n_rnn);
    if (st) { memset(m, 0, sizeof *m); return st; }
    size_t Hout = (size_t)(cfg->proj_size ? cfg->proj_size : cfg->hidden_size);
    m->V = V;
    m->E = E;
    /* one buffer: embedding.weight [V,E] | the recurrent net | head.weight [V,Hout], head.bias [V] */
    const size_t n_params = (size_t)V * E + n_rnn + (size_t)V * Hout + (size_t)V;
    m->n_params = n_params;
    m->params = calloc(n_params, sizeof(float));
    m->grads = calloc(n_params, sizeof(float));
    if (!m->params || !m->grads) {
        lstm_charlm_free(m); /* zeroes m: the count is the local's */
        return lstm__fail(LSTM_ERR_NOMEM, "char model: out of memory for %zu parameters", n_params);
    }
    size_t o_rnn = (size_t)V * E, o_head = o_rnn + n_rnn;
    if ((st = lstm_net_init_external(&m->net, cfg, m->params + o_rnn, m->grads + o_rnn))) {
        lstm_charlm_free(m);
        return st;
    }
    m->emb = m->params;
    m->head_w = m->params + o_head;
    m->head_b = m->head_w + (size_t)V * Hout;
    m->d_emb = m->grads;
    m->d_head_w = m->grads + o_head;
    m->d_head_b = m->d_head_w + (size_t)V * Hout;
    return LSTM_OK;
}

void lstm_charlm_free(lstm_charlm *m) {
    if (!m) return;
    lstm_net_free(&m->net); /* the views only: the net lives in m->params / m->grads */
    free(m->params);
    free(m->grads);
    memset(m, 0, sizeof *m);
}

void lstm_charlm_zero_grad(lstm_charlm *m) { memset(m->grads, 0, m->n_params * sizeof(float)); }

void lstm_charlm_init_params(lstm_charlm *m, uint64_t seed) {
    uint64_t s = seed * 0xD1B54A32D192ED03ull + 0x8CB92BA72F3D8DD7ull;
    size_t ne = (size_t)m->V * m->E;
    for (size_t i = 0; i < ne; i += 2) { /* Box-Muller: two N(0,1) per pair of uniforms */
        double u1 = (lstm__rng_next(&s) >> 11) * 0x1.0p-53, u2 = (lstm__rng_next(&s) >> 11) * 0x1.0p-53;
        double r = sqrt(-2.0 * log(1.0 - u1)), a = 6.283185307179586 * u2;
        m->emb[i] = (float)(r * cos(a));
        if (i + 1 < ne) m->emb[i + 1] = (float)(r * sin(a));
    }
    lstm_net_init_uniform(&m->net, seed ^ 0x5851F42D4C957F2Dull);
    float k = 1.0f / sqrtf((float)m->net.Hout);
    size_t nh = (size_t)m->V * m->net.Hout + (size_t)m->V; /* head.weight then head.bias */
    for (size_t i = 0; i < nh; i++) m->head_w[i] = (2.0f * lstm__rng_uniform(&s) - 1.0f) * k;
}

int lstm_charlm_tensors(lstm_charlm *m, lstm_charlm_tensor *out) {
    int nn = lstm_net_tensors(&m->net, NULL);
    if (out) {
        lstm_tensor_info *ti = malloc((size_t)nn * sizeof *ti);
        if (!ti) return -1;
        lstm_net_tensors(&m->net, ti);
        lstm_charlm_tensor *o = out;
        *o = (lstm_charlm_tensor){.name = "embedding.weight", .ndim = 2, .shape = {m->V, m->E},
                                  .numel = (size_t)m->V * m->E, .param = m->emb, .grad = m->d_emb};
        o++;
        for (int k = 0; k < nn; k++, o++) {
            memset(o, 0, sizeof *o);
            snprintf(o->name, sizeof o->name, "%s%s", rnn_prefix(m->net.cfg.cell), ti[k].name);
            o->ndim = ti[k].ndim;
            o->shape[0] = ti[k].shape[0];
            o->shape[1] = ti[k].shape[1];
            o->numel = ti[k].numel;
            o->param = m->net.params + ti[k].offset;
            o->grad = m->net.grads + ti[k].offset;
        }
        *o++ = (lstm_charlm_tensor){.name = "head.weight", .ndim = 2, .shape = {m->V, m->net.Hout},
                                    .numel = (size_t)m->V * m->net.Hout, .param = m->head_w, .grad = m->d_head_w};
        *o++ = (lstm_charlm_tensor){.name = "head.bias", .ndim = 1, .shape = {m->V, 0},
                                    .numel = (size_t)m->V, .param = m->head_b, .grad = m->d_head_b};
        free(ti);
    }
    return nn + 3;
}

lstm_status lstm_charlm_vocab_of(const unsigned char *data, size_t n, unsigned char *vocab, int *V) {
    if (n == 0) return lstm__fail(LSTM_ERR_ARG, "no data: cannot build a vocabulary from 0 bytes");
    unsigned char seen[256] = {0};
    for (size_t i = 0; i < n; i++) seen[data[i]] = 1;
    int v = 0;
    for (int b = 0; b < 256; b++)
        if (seen[b]) vocab[v++] = (unsigned char)b;
    *V = v;
    return LSTM_OK;
}

lstm_status lstm_charlm_encode(const lstm_charlm *m, const unsigned char *bytes, size_t n,
                               uint8_t *ids, const char *what) {
    for (size_t i = 0; i < n; i++) {
        int id = m->id[bytes[i]];
        if (id < 0)
            return lstm__fail(LSTM_ERR_ARG, "%s: byte 0x%02x at offset %zu is not in the model's vocabulary (%d bytes)",
                              what, bytes[i], i, m->V);
        ids[i] = (uint8_t)id;
    }
    return LSTM_OK;
}

/* ---- files ---- */

/* Parses the "vocab" metadata: a JSON array of distinct integers in [0, 255]. */
static lstm_status parse_vocab(const char *s, const char *path, unsigned char *vocab, int *V) {
    const char *p = s;
    int n = 0;
    unsigned char seen[256] = {0};
    while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r') p++;
    if (*p++ != '[') goto bad;
    for (;;) {
        while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r') p++;
        if (*p == ']' && n == 0) { p++; break; }
        if (*p < '0' || *p > '9') goto bad;
        int v = 0;
        while (*p >= '0' && *p <= '9') {
            v = v * 10 + (*p++ - '0');
            if (v > 255) goto bad;
        }
        if (seen[v] || n >= 256) goto bad;
        seen[v] = 1;
        vocab[n++] = (unsigned char)v;
        while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r') p++;
        if (*p == ',') { p++; continue; }
        if (*p == ']') { p++; break; }
        goto bad;
    }
    while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r') p++;
    if (*p || n == 0) goto bad;
    *V = n;
    return LSTM_OK;
bad:;
    char shown[48];
    return lstm__fail(LSTM_ERR_FORMAT, "%s: metadata 'vocab': expected a JSON array of distinct byte values 0..255, got '%s'",
                      path, lstm__printable(shown, sizeof shown, s));
}

/* Prefixes the last error with "PATH: " (for a callee that does not know the file) and returns st. */
static lstm_status in_file(lstm_status st, const char *path) {
    char why[512];
    snprintf(why, sizeof why, "%s", lstm_last_error());
    return lstm__fail(st, "%s: %s", path, why);
}

static lstm_status load_tensor(const lstm_st_file *f, const char *path, const char *name, int ndim,
                               int64_t d0, int64_t d1, float *out) {
    const lstm_st_tensor *t = lstm_st_find(f, name);
    if (!t) return lstm__fail(LSTM_ERR_MISSING, "%s: tensor '%s' is missing", path, name);
    int ok = t->ndim == ndim && t->shape[0] == d0 && (ndim == 1 || t->shape[1] == d1);
    if (!ok) {
        char got[160];
        lstm__fmt_shape(got, sizeof got, t->ndim, t->shape);
        if (ndim == 2)
            return lstm__fail(LSTM_ERR_SHAPE, "%s: tensor '%s': expected shape [%lld, %lld], got %s", path, name,
                              (long long)d0, (long long)d1, got);
        return lstm__fail(LSTM_ERR_SHAPE, "%s: tensor '%s': expected shape [%lld], got %s", path, name, (long long)d0, got);
    }
    lstm_status st = lstm_st_to_f32(f, t, out);
    return st ? in_file(st, path) : LSTM_OK;
}

lstm_status lstm_charlm_load_st(lstm_charlm *m, const lstm_st_file *f, const char *path) {
    memset(m, 0, sizeof *m);
    const char *vs = lstm_st_meta(f, "vocab");
    if (!vs) return lstm__fail(LSTM_ERR_FORMAT, "%s: metadata 'vocab' is missing (not a char model file?)", path);
    unsigned char vocab[256];
    int V = 0;
    lstm_status st = parse_vocab(vs, path, vocab, &V);
    if (st) return st;
    /* the cell from the names: the recurrent module is "gru" or "lstm" */
    int cell = lstm_st_find(f, "gru.weight_ih_l0") ? LSTM_CELL_GRU : LSTM_CELL_LSTM;
    if (cell == LSTM_CELL_GRU && lstm_st_find(f, "lstm.weight_ih_l0"))
        return lstm__fail(LSTM_ERR_FORMAT, "%s: char model: holds both 'lstm.*' and 'gru.*' tensors", path);
    lstm_net net;
    st = lstm_net_from_st(&net, f, path, rnn_prefix(cell));
    if (st) return st;
    if (net.cfg.cell != cell) {
        lstm_net_free(&net);
        return lstm__fail(LSTM_ERR_SHAPE, "%s: char model: the tensors named '%s*' have the shapes of %s (%s rows)",
                          path, rnn_prefix(cell), cell == LSTM_CELL_GRU ? "an LSTM" : "a GRU",
                          cell == LSTM_CELL_GRU ? "4H" : "3H");
    }
    if (net.cfg.bidirectional || !net.cfg.bias) {
        lstm_net_free(&net);
        return lstm__fail(LSTM_ERR_ARG, "%s: char model: expected a unidirectional %s with biases", path,
                          cell == LSTM_CELL_GRU ? "GRU" : "LSTM");
    }
    const lstm_st_tensor *te = lstm_st_find(f, "embedding.weight");
    if (!te) { lstm_net_free(&net); return lstm__fail(LSTM_ERR_MISSING, "%s: tensor 'embedding.weight' is missing", path); }
    if (te->ndim != 2 || te->shape[0] != V || te->shape[1] != net.cfg.input_size) {
        int I = net.cfg.input_size; /* read before the free below zeroes net */
        lstm_net_free(&net);
        return lstm__fail(LSTM_ERR_SHAPE, "%s: tensor 'embedding.weight': expected shape [%d, %d] (vocab size, recurrent input size), got %d dims [%lld, %lld]",
                          path, V, I, te->ndim, (long long)(te->ndim > 0 ? te->shape[0] : 0),
                          (long long)(te->ndim > 1 ? te->shape[1] : 0));
    }
    st = lstm_charlm_init(m, vocab, V, net.cfg.input_size, &net.cfg);
    if (st) { lstm_net_free(&net); return in_file(st, path); } /* "char model: out of memory ..." */
    memcpy(m->net.params, net.params, net.n_params * sizeof(float));
    lstm_net_free(&net);
    if ((st = load_tensor(f, path, "embedding.weight", 2, V, m->E, m->emb)) ||
        (st = load_tensor(f, path, "head.weight", 2, V, m->net.Hout, m->head_w)) ||
        (st = load_tensor(f, path, "head.bias", 1, V, 0, m->head_b))) {
        lstm_charlm_free(m);
        return st;
    }
    return LSTM_OK;
}

lstm_status lstm_charlm_load(lstm_charlm *m, const char *path) {
    memset(m, 0, sizeof *m);
    lstm_st_file f;
    lstm_status st = lstm_st_read(&f, path);
    if (st) return st;
    st = lstm_charlm_load_st(m, &f, path);
    lstm_st_free(&f);
    return st;
}

/* Writes "[b0,b1,...]" into out (at least 4*256+3 bytes). */
void lstm__vocab_json(const lstm_charlm *m, char *out) {
    char *p = out;
    *p++ = '[';
    for (int v = 0; v < m->V; v++) p += sprintf(p, v ? ",%d" : "%d", m->vocab[v]);
    *p++ = ']';
    *p = 0;
}

lstm_status lstm_charlm_save(lstm_charlm *m, const char *path, const char *const *meta_kv) {
    int n = lstm_charlm_tensors(m, NULL);
    lstm_charlm_tensor *t = malloc((size_t)n * sizeof *t);
    lstm_st_entry *e = malloc((size_t)n * sizeof *e);
    int nm = 0;
    while (meta_kv && meta_kv[nm]) nm += 2;
    const char **kv = malloc((size_t)(nm + 3) * sizeof *kv);
    char *vj = malloc(4 * 256 + 3);
    lstm_status st;
    if (!t || !e || !kv || !vj || lstm_charlm_tensors(m, t) != n) {
        st = lstm__fail(LSTM_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    for (int k = 0; k < n; k++) {
        memset(&e[k], 0, sizeof e[k]);
        e[k].name = t[k].name;
        e[k].ndim = t[k].ndim;
        e[k].shape[0] = t[k].shape[0];
        e[k].shape[1] = t[k].shape[1];
        e[k].data = t[k].param;
    }
    lstm__vocab_json(m, vj);
    kv[0] = "vocab";
    kv[1] = vj;
    for (int k = 0; k < nm; k++) kv[2 + k] = meta_kv[k];
    kv[2 + nm] = NULL;
    st = lstm_st_write(path, e, n, kv);
done:
    free(t);
    free(e);
    free(kv);
    free(vj);
    return st;
}

/* ================================================================ forward / backward */

size_t lstm__charlm_h_floats(const lstm_charlm *m, int B) {
    return (size_t)m->net.cfg.num_layers * (size_t)B * (size_t)m->net.Hout;
}
size_t lstm__charlm_c_floats(const lstm_charlm *m, int B) {
    return m->net.cfg.cell == LSTM_CELL_GRU ? 0 : (size_t)m->net.cfg.num_layers * (size_t)B * (size_t)m->net.H;
}

struct lstm_charlm_ws {
    int T, B, train, Tlast;
    int V, E, L, H, Hout, cell; /* the model's shape it was made for (its buffers' sizes) */
    const float *fwd_params;    /* the model of the last forward (net params, stamp): the backward's */
    uint64_t fwd_stamp;
    lstm_workspace *lws;
    float *x;       /* [T, B, E]    embeddings */
    float *y;       /* [T, B, Hout] LSTM outputs */
    float *logits;  /* [T, B, V]    (dlogits after backward) */
    float *dy;      /* [T, B, Hout] (train) */
    float *dx;      /* [T, B, E]    (train) */
    float *h0, *c0; /* [L, B, Hout], [L, B, H] state the last forward started from (c0, cn: NULL for a GRU) */
    float *hn, *cn;
    uint8_t *ids, *tg; /* [T, B] of the last forward */
    float *xe, *xinv;  /* train: [T, B, V] exps and [T, B] 1/sums of the last forward's softmax */
    int xcached;       /* xe, xinv and tg hold them (a training forward with targets; cleared by the
                        * backward, which needs them) */
    double loss;
    int64_t lossq[2];  /* the loss sum of the last forward (lstm__lossq_add) */
};

void lstm_charlm_ws_free(lstm_charlm_ws *ws) {
    if (!ws) return;
    lstm_workspace_free(ws->lws);
    free(ws->x); free(ws->y); free(ws->logits); free(ws->dy); free(ws->dx);
    free(ws->h0); free(ws->c0); free(ws->hn); free(ws->cn);
    free(ws->ids); free(ws->tg);
    free(ws->xe); free(ws->xinv);
    free(ws);
}

lstm_status lstm_charlm_ws_init(lstm_charlm_ws **out, const lstm_charlm *m, int T, int B, int flags) {
    *out = NULL;
    if (T < 1 || B < 1)
        return lstm__fail(LSTM_ERR_ARG, "char model workspace: expected T >= 1 and B >= 1, got T %d, B %d", T, B);
    lstm_charlm_ws *ws = calloc(1, sizeof *ws);
    if (!ws) return lstm__fail(LSTM_ERR_NOMEM, "char model workspace: out of memory");
    ws->T = T;
    ws->B = B;
    ws->train = (flags & LSTM_WS_TRAIN) != 0;
    ws->V = m->V, ws->E = m->E, ws->L = m->net.cfg.num_layers, ws->H = m->net.H, ws->Hout = m->net.Hout;
    ws->cell = m->net.cfg.cell;
    /* time-major, packs not kept; any bit lstm_workspace_init does not know is refused there */
    lstm_status st = lstm_workspace_init(&ws->lws, &m->net, T, B, flags & ~(LSTM_WS_BATCH_FIRST | LSTM_WS_KEEP_PACKS));
    if (st) { free(ws); return st; }
    size_t N = (size_t)T * B, Hout = (size_t)m->net.Hout;
    size_t nh = lstm__charlm_h_floats(m, B), nc = lstm__charlm_c_floats(m, B);
    ws->x = malloc(N * m->E * sizeof(float));
    ws->y = malloc(N * Hout * sizeof(float));
    ws->logits = malloc(N * m->V * sizeof(float));
    ws->h0 = calloc(nh, sizeof(float));
    ws->hn = malloc(nh * sizeof(float));
    if (nc) {
        ws->c0 = calloc(nc, sizeof(float));
        ws->cn = malloc(nc * sizeof(float));
    }
    ws->ids = malloc(N);
    ws->tg = malloc(N);
    if (ws->train) {
        ws->dy = malloc(N * Hout * sizeof(float));
        ws->dx = malloc(N * m->E * sizeof(float));
        ws->xe = malloc(N * m->V * sizeof(float));
        ws->xinv = malloc(N * sizeof(float));
    }
    if (!ws->x || !ws->y || !ws->logits || !ws->h0 || !ws->hn || (nc && (!ws->c0 || !ws->cn)) || !ws->ids || !ws->tg ||
        (ws->train && (!ws->dy || !ws->dx || !ws->xe || !ws->xinv))) {
        lstm_charlm_ws_free(ws);
        return lstm__fail(LSTM_ERR_NOMEM, "char model workspace: out of memory for T %d, B %d", T, B);
    }
    *out = ws;
    return LSTM_OK;
}

lstm_status lstm_charlm_ws_set_dropout(lstm_charlm_ws *ws, float p, uint64_t *rng) {
    return lstm_workspace_set_dropout(ws->lws, p, rng);
}

lstm_status lstm_charlm_ws_set_threads(lstm_charlm_ws *ws, int n) {
    return lstm_workspace_set_threads(ws->lws, n);
}

const float *lstm_charlm_logits(const lstm_charlm_ws *ws) { return ws->logits; }

void lstm__charlm_ws_parts(lstm_charlm_ws *ws, lstm__charlm_parts *p) {
    *p = (lstm__charlm_parts){.T = ws->Tlast, .B = ws->B, .lws = ws->lws, .y = ws->y, .logits = ws->logits,
                              .dy = ws->dy, .dx = ws->dx, .ids = ws->ids, .tg = ws->tg,
                              .xe = ws->xcached ? ws->xe : NULL, .xinv = ws->xcached ? ws->xinv : NULL,
                              .lossq = {ws->lossq[0], ws->lossq[1]}};
}

/* Whether ws was made for a model of m's shape (its buffers are sized by it). */
static lstm_status ws_fits(const lstm_charlm *m, const lstm_charlm_ws *ws, const char *what) {
    if (ws->V == m->V && ws->E == m->E && ws->L == m->net.cfg.num_layers && ws->H == m->net.H &&
        ws->Hout == m->net.Hout && ws->cell == m->net.cfg.cell)
        return LSTM_OK;
    return lstm__fail(LSTM_ERR_ARG, "char model %s: the workspace was made for another model shape", what);
}

/* ids, targets [T, B]; h [L, B, Hout], c [L, B, H] in/out -> logits [T, B, V], *loss */
lstm_status lstm_charlm_forward(const lstm_charlm *m, lstm_charlm_ws *ws, int T,
                                const uint8_t *ids, const uint8_t *targets,
                                float *h, float *c, double *loss) {
    int B = ws->B, V = m->V, E = m->E, Hout = m->net.Hout;
    lstm_status fit = ws_fits(m, ws, "forward");
    if (fit) return fit;
    if (T < 1 || T > ws->T)
        return lstm__fail(LSTM_ERR_ARG, "char model forward: expected 1 <= T <= %d, got %d", ws->T, T);
    int N = T * B;
    size_t nh = lstm__charlm_h_floats(m, B), nc = lstm__charlm_c_floats(m, B);
    for (int n = 0; n < N; n++)
        if (ids[n] >= V || (targets && targets[n] >= V))
            return lstm__fail(LSTM_ERR_ARG, "char model forward: token id %d at %d: expected < %d",
                              ids[n] >= V ? ids[n] : targets[n], n, V);
    if (h) memcpy(ws->h0, h, nh * sizeof(float));
    if (c && nc) memcpy(ws->c0, c, nc * sizeof(float));
    else if (nc) memset(ws->c0, 0, nc * sizeof(float));
    if (!h) memset(ws->h0, 0, nh * sizeof(float));
    lstm__embedding_forward(ws->x, m->emb, ids, N, E);
    lstm_status st = lstm_forward(&m->net, ws->lws, T, B, ws->x, ws->h0, ws->c0, ws->y, ws->hn, ws->cn);
    if (st) return st;
    /* the backward's ids and targets: only once the forward they belong to has run */
    memcpy(ws->ids, ids, (size_t)N);
    if (targets) memcpy(ws->tg, targets, (size_t)N);
    if (h) memcpy(h, ws->hn, nh * sizeof(float));
    if (c && nc) memcpy(c, ws->cn, nc * sizeof(float));
    lstm__linear_forward(ws->logits, ws->y, m->head_w, m->head_b, N, Hout, V);
    ws->Tlast = T;
    ws->fwd_params = m->net.params;
    ws->fwd_stamp = m->net.stamp;
    ws->lossq[0] = ws->lossq[1] = 0;
    ws->xcached = targets && ws->train; /* the backward's softmax from the loss's exps: the same bits, no exp */
    if (targets) lstm__xent_forward_q(ws->logits, targets, N, V, ws->lossq, ws->xcached ? ws->xe : NULL, ws->xinv);
    ws->loss = targets ? lstm__lossq_value(ws->lossq) / N : 0.0;
    if (loss) *loss = ws->loss;
    return LSTM_OK;
}

lstm_status lstm_charlm_backward(lstm_charlm *m, lstm_charlm_ws *ws) {
    if (!ws->train || ws->Tlast < 1 || !ws->xcached)
        return lstm__fail(LSTM_ERR_ARG, "char model backward: needs a forward with targets on a train workspace first");
    lstm_status fit = ws_fits(m, ws, "backward");
    if (fit) return fit;
    if (ws->fwd_params != m->net.params || ws->fwd_stamp != m->net.stamp) /* before any gradient is added */
        return lstm__fail(LSTM_ERR_ARG, "char model backward: the forward ran another model");
    int N = ws->Tlast * ws->B, V = m->V, Hout = m->net.Hout;
    /* dlogits = (softmax - onehot) / N, in place */
    lstm__xent_backward_cached(ws->logits, ws->xe, ws->xinv, ws->tg, N, V, 1.0f / (float)N);
    ws->xcached = 0;
    lstm__linear_backward(ws->dy, m->d_head_w, m->d_head_b, ws->logits, ws->y, m->head_w, N, Hout, V);
    lstm_status st = lstm_backward(&m->net, ws->lws, ws->dy, NULL, NULL, ws->dx, NULL, NULL);
    if (st) return st;
    lstm__embedding_backward(m->d_emb, ws->dx, ws->ids, N, m->E);
    ws->Tlast = 0;
    return LSTM_OK;
}

lstm_status lstm_charlm_eval(const lstm_charlm *m, const uint8_t *ids, size_t n, int B, int T,
                             int threads, double *loss, size_t *count) {
    int64_t q[2] = {0, 0};
    lstm_status st = lstm__charlm_eval_q(m, ids, NULL, n, B, 0, B, T, threads, q);
    if (st) return st;
    size_t S = (n - 1) / (size_t)B;
    *loss = lstm__lossq_value(q) / ((double)S * B);
    if (count) *count = S * (size_t)B;
    return LSTM_OK;
}

/* Streams [b0, b0+Bl) of the B-stream reading of ids[0..n): their loss sum into q. */
lstm_status lstm__charlm_pair_in_vocab(const lstm_charlm *m, const uint8_t *ids, size_t i) {
    if (m->id[ids[i]] >= 0 && m->id[ids[i + 1]] >= 0) return LSTM_OK;
    const size_t at = m->id[ids[i]] < 0 ? i : i + 1;
    return lstm__fail(LSTM_ERR_ARG, "byte 0x%02x at offset %zu is not in the model's vocabulary (%d bytes)", ids[at], at,
                      m->V);
}

lstm_status lstm__charlm_eval_q(const lstm_charlm *m, const uint8_t *ids, const int16_t *map, size_t n, int Btot,
                                int b0, int B, int T, int threads, int64_t q[2]) {
    if (Btot < 1 || T < 1 || b0 < 0 || B < 1 || b0 + B > Btot)
        return lstm__fail(LSTM_ERR_ARG, "eval: expected B >= 1 and T >= 1, got B %d, T %d", Btot, T);
    if (n < (size_t)Btot + 1)
        return lstm__fail(LSTM_ERR_ARG, "eval: expected at least %d tokens for %d streams, got %zu", Btot + 1, Btot, n);
    size_t S = (n - 1) / (size_t)Btot;
    if ((size_t)T > S) T = (int)S;
    lstm_charlm_ws *ws;
    lstm_status st = lstm_charlm_ws_init(&ws, m, T, B, B < Btot ? LSTM__WS_SLICE : 0); /* a slice: the whole's bits */
    if (st) return st;
    if (threads > 1 && (st = lstm_charlm_ws_set_threads(ws, threads))) {
        lstm_charlm_ws_free(ws);
        return st;
    }
    size_t nc = lstm__charlm_c_floats(m, B);
    float *h = calloc(lstm__charlm_h_floats(m, B), sizeof(float)), *c = nc ? calloc(nc, sizeof(float)) : NULL;
    uint8_t *x = malloc((size_t)T * B), *y = malloc((size_t)T * B);
    if (!h || (nc && !c) || !x || !y) {
        st = lstm__fail(LSTM_ERR_NOMEM, "eval: out of memory");
        goto done;
    }
    for (size_t j0 = 0; j0 < S; j0 += (size_t)T) {
        int Tb = (int)(S - j0 < (size_t)T ? S - j0 : (size_t)T);
        for (int t = 0; t < Tb; t++)
            for (int b = 0; b < B; b++) {
                size_t i = (size_t)(b0 + b) * S + j0 + (size_t)t;
                if (map && (st = lstm__charlm_pair_in_vocab(m, ids, i))) goto done;
                x[t * B + b] = map ? (uint8_t)map[ids[i]] : ids[i];
                y[t * B + b] = map ? (uint8_t)map[ids[i + 1]] : ids[i + 1];
            }
        if ((st = lstm_charlm_forward(m, ws, Tb, x, y, h, c, NULL))) goto done;
        lstm__lossq_merge(q, ws->lossq);
    }
done:
    free(h); free(c); free(x); free(y);
    lstm_charlm_ws_free(ws);
    return st;
}
