/* train.c — truncated BPTT training of the char model: the B data streams,
 * one step (forward, backward, clipping, optimizer), checkpoints. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/fileio.h"
#include "train_internal.h"


void lstm_trainer_free(lstm_trainer *tr) {
    if (!tr) return;
    free(tr->h); free(tr->c); free(tr->m1); free(tr->m2); free(tr->x); free(tr->y);
    lstm_charlm_ws_free(tr->ws);
    lstm__exact_free(tr);
    memset(tr, 0, sizeof *tr);
}

lstm_status lstm_trainer_init(lstm_trainer *tr, lstm_charlm *m, const lstm_train_config *cfg,
                              const uint8_t *ids, size_t n) {
    memset(tr, 0, sizeof *tr);
    int B = cfg->batch, T = cfg->bptt;
    if (B < 1 || T < 1)
        return lstm__fail(LSTM_ERR_ARG, "training: expected batch >= 1 and bptt >= 1, got %d and %d", B, T);
    if (!(cfg->lr >= 0.0 && cfg->lr < INFINITY) || !(cfg->lr_min >= 0.0 && cfg->lr_min < INFINITY) || !(cfg->clip >= 0.0) ||
        !(cfg->dropout >= 0.0 && cfg->dropout < 1.0))
        return lstm__fail(LSTM_ERR_ARG, "training: expected finite lr >= 0 and lr_min >= 0, clip >= 0, dropout in [0, 1); "
                                        "got lr %g, lr_min %g, clip %g, dropout %g", cfg->lr, cfg->lr_min, cfg->clip, cfg->dropout);
    if ((unsigned)cfg->optimizer > LSTM_OPT_SGD || (unsigned)cfg->schedule > LSTM_SCHED_COSINE)
        return lstm__fail(LSTM_ERR_ARG, "training: unknown optimizer %d or schedule %d", (int)cfg->optimizer,
                          (int)cfg->schedule);
    /* torch.optim's own checks: a beta of 1 makes Adam's bias correction 1 - beta^t zero (every
     * weight NaN after the first step), and SGD refuses Nesterov without momentum */
    if (!(cfg->weight_decay >= 0.0 && cfg->weight_decay < INFINITY))
        return lstm__fail(LSTM_ERR_ARG, "training: expected a finite weight_decay >= 0, got %g", cfg->weight_decay);
    if (cfg->optimizer != LSTM_OPT_SGD &&
        (!(cfg->beta1 >= 0.0 && cfg->beta1 < 1.0) || !(cfg->beta2 >= 0.0 && cfg->beta2 < 1.0) || !(cfg->eps >= 0.0)))
        return lstm__fail(LSTM_ERR_ARG, "training: Adam expects beta1 and beta2 in [0, 1) and eps >= 0, got %g, %g, %g",
                          cfg->beta1, cfg->beta2, cfg->eps);
    if (cfg->optimizer == LSTM_OPT_SGD &&
        (!(cfg->momentum >= 0.0 && cfg->momentum < INFINITY) || (cfg->nesterov && !(cfg->momentum > 0.0))))
        return lstm__fail(LSTM_ERR_ARG, "training: SGD expects a finite momentum >= 0 (> 0 with nesterov), got %g%s",
                          cfg->momentum, cfg->nesterov ? " with nesterov" : "");
    if (cfg->schedule == LSTM_SCHED_COSINE && cfg->total_steps <= cfg->warmup)
        return lstm__fail(LSTM_ERR_ARG, "training: the cosine schedule needs a total step count above the warmup (%" PRId64 "), got %" PRId64,
                          cfg->warmup, cfg->total_steps);
    if (n < (size_t)B * (size_t)T + 1)
        return lstm__fail(LSTM_ERR_ARG, "training data: expected at least B*T+1 = %zu bytes for batch %d, bptt %d, got %zu",
                          (size_t)B * (size_t)T + 1, B, T, n);
    tr->cfg = *cfg;
    tr->model = m;
    tr->ids = ids;
    tr->n = n;
    tr->S = (n - 1) / (size_t)B;
    tr->steps_per_epoch = (int64_t)(tr->S / (size_t)T);
    tr->rng = cfg->seed * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull;
    tr->n_state = m->n_params;
    size_t nc = lstm__charlm_c_floats(m, B);
    tr->h = calloc(lstm__charlm_h_floats(m, B), sizeof(float));
    tr->c = nc ? calloc(nc, sizeof(float)) : NULL; /* a GRU carries no c */
    tr->m1 = calloc(tr->n_state, sizeof(float));
    tr->m2 = cfg->optimizer == LSTM_OPT_SGD ? NULL : calloc(tr->n_state, sizeof(float));
    tr->x = malloc((size_t)T * B);
    tr->y = malloc((size_t)T * B);
    if (!tr->h || (nc && !tr->c) || !tr->m1 || (cfg->optimizer != LSTM_OPT_SGD && !tr->m2) || !tr->x || !tr->y) {
        lstm_trainer_free(tr);
        return lstm__fail(LSTM_ERR_NOMEM, "training: out of memory");
    }
    lstm_status st = lstm_charlm_ws_init(&tr->ws, m, T, B, LSTM_WS_TRAIN);
    if (st) { lstm_trainer_free(tr); return st; }
    if (cfg->dropout > 0.0 && (st = lstm_charlm_ws_set_dropout(tr->ws, (float)cfg->dropout, &tr->rng))) {
        lstm_trainer_free(tr);
        return st;
    }
    if ((st = lstm__exact_init(tr, NULL))) { lstm_trainer_free(tr); return st; }
    return LSTM_OK;
}

lstm_status lstm_trainer_set_threads(lstm_trainer *tr, int n) {
    lstm_status st = lstm_charlm_ws_set_threads(tr->ws, n);
    if (st == LSTM_OK) lstm__exact_set_threads(tr, n); /* refused: the trainer keeps its threads */
    return st;
}

/* One update of the whole model: moments are laid out as its params. */
static void optim_update(lstm_trainer *tr, int64_t t, double lr) {
    const lstm_train_config *c = &tr->cfg;
    lstm_charlm *m = tr->model;
    if (c->optimizer == LSTM_OPT_SGD)
        lstm__sgd_update(m->params, m->grads, tr->m1, m->n_params, t, lr, c->momentum, c->weight_decay, c->nesterov);
    else
        lstm__adam_update(m->params, m->grads, tr->m1, tr->m2, m->n_params, t, lr, c->beta1, c->beta2, c->eps,
                          c->weight_decay, c->optimizer == LSTM_OPT_ADAMW);
}

lstm_status lstm_trainer_step(lstm_trainer *tr, lstm_step_info *info) {
    lstm_charlm *m = tr->model;
    int B = tr->cfg.batch;
    int64_t g = tr->step, epoch = g / tr->steps_per_epoch, k = g % tr->steps_per_epoch;
    if (k == 0) { /* each epoch starts from zero state */
        memset(tr->h, 0, lstm__charlm_h_floats(m, B) * sizeof(float));
        if (tr->c) memset(tr->c, 0, lstm__charlm_c_floats(m, B) * sizeof(float));
    }
    double loss;
    int bad_grad; /* forward, backward, gradients summed exactly over the streams (src/train/exact.c) */
    lstm_status st = lstm__exact_grads(tr, k, &loss, &bad_grad);
    if (st) return st;
    if (info) {
        info->step = g + 1;
        info->epoch = epoch;
        info->loss = loss;
        info->lr = lstm_train_lr(&tr->cfg, g);
        info->grad_norm = NAN;
    }
    if (!isfinite(loss))
        return lstm__fail(LSTM_ERR_NONFINITE, "training: the loss at step %" PRId64 " is %g", g + 1, loss);
    double norm = bad_grad ? INFINITY : sqrt(lstm__sumsq(m->grads, m->n_params));
    if (info) info->grad_norm = norm;
    if (!isfinite(norm))
        return lstm__fail(LSTM_ERR_NONFINITE, "training: the gradient norm at step %" PRId64 " is %g", g + 1, norm);
    if (tr->cfg.clip > 0.0) {
        float coef = lstm__clip_coef(norm, tr->cfg.clip);
        if (coef < 1.0f) lstm__scale(m->grads, m->n_params, coef);
    }
    double lr = lstm_train_lr(&tr->cfg, g);
    optim_update(tr, g + 1, lr);
    tr->step = g + 1;
    return LSTM_OK;
}

/* ---------------------------------------------------------------- checkpoints */

/* Offset of a tensor's moments: that of its params in the model's buffer. */
static size_t moment_offset(const lstm_charlm *m, const lstm_charlm_tensor *t) { return (size_t)(t->param - m->params); }

static const char *moment_name(const lstm_trainer *tr, int which) {
    if (tr->cfg.optimizer == LSTM_OPT_SGD) return "optim.momentum_buffer.";
    return which == 0 ? "optim.exp_avg." : "optim.exp_avg_sq.";
}

/* ---- the checksum (train_internal.h): FNV-1a 64 over a canonical listing */
typedef struct {
    uint64_t h;
} fnv;
static void fnv_bytes(fnv *f, const void *p, size_t n) { f->h = lstm__fnv1a(f->h, p, n); }
static void fnv_str(fnv *f, const char *s) { fnv_bytes(f, s, strlen(s) + 1); }
static void fnv_u64(fnv *f, uint64_t v) {
    unsigned char b[8];
    for (int k = 0; k < 8; k++) b[k] = (unsigned char)(v >> (8 * k));
    fnv_bytes(f, b, 8);
}
static void fnv_tensor_head(fnv *f, const char *name, const char *dtype, int ndim, const int64_t *shape) {
    fnv_str(f, name);
    fnv_str(f, dtype);
    fnv_u64(f, (uint64_t)ndim);
    for (int d = 0; d < ndim; d++) fnv_u64(f, (uint64_t)shape[d]);
}

typedef struct {
    const char *s;
    int i;
} sort_item;
static int cmp_item(const void *a, const void *b) { /* by string, then index (a stable order) */
    const sort_item *x = a, *y = b;
    int c = strcmp(x->s, y->s);
    return c ? c : (x->i > y->i) - (x->i < y->i);
}
/* order[0..n) = indices of the n strings at base, stride bytes apart, sorted.
 * No static state: two threads may checksum (save or load) at once. */
static int *sorted_order(const void *base, int n, size_t stride) {
    int *order = malloc((n ? (size_t)n : 1) * sizeof *order);
    sort_item *it = malloc((n ? (size_t)n : 1) * sizeof *it);
    if (!order || !it) {
        free(order); free(it);
        return NULL;
    }
    for (int i = 0; i < n; i++) it[i] = (sort_item){*(const char *const *)((const char *)base + (size_t)i * stride), i};
    qsort(it, (size_t)n, sizeof *it, cmp_item);
    for (int i = 0; i < n; i++) order[i] = it[i].i;
    free(it);
    return order;
}

static void fnv_meta(fnv *f, const char *key, const char *val) {
    if (strcmp(key, "train.checksum") == 0) return;
    fnv_str(f, key);
    fnv_str(f, val);
}

/* The checksum of what lstm_st_write will store for e[0..n) and kv. */
static lstm_status checksum_of_entries(const lstm_st_entry *e, int n, const char *const *kv, uint64_t *out) {
    int nkv = 0;
    while (kv[2 * nkv]) nkv++;
    int *te = sorted_order(&e[0].name, n, sizeof *e), *tk = sorted_order(kv, nkv, 2 * sizeof *kv);
    if (!te || !tk) {
        free(te); free(tk);
        return lstm__fail(LSTM_ERR_NOMEM, "checkpoint: out of memory");
    }
    fnv f = {LSTM__FNV1A_INIT};
    for (int i = 0; i < n; i++) {
        const lstm_st_entry *t = &e[te[i]];
        fnv_tensor_head(&f, t->name, "F32", t->ndim, t->shape);
        size_t numel = 1;
        for (int d = 0; d < t->ndim; d++) numel *= (size_t)t->shape[d];
        for (size_t j = 0; j < numel; j++) { /* as stored: little-endian */
            uint32_t u;
            memcpy(&u, &t->data[j], 4);
            unsigned char b[4] = {(unsigned char)u, (unsigned char)(u >> 8), (unsigned char)(u >> 16), (unsigned char)(u >> 24)};
            fnv_bytes(&f, b, 4);
        }
    }
    for (int i = 0; i < nkv; i++) fnv_meta(&f, kv[2 * tk[i]], kv[2 * tk[i] + 1]);
    free(te); free(tk);
    *out = f.h;
    return LSTM_OK;
}

lstm_status lstm__checkpoint_verify(const lstm_st_file *f, const char *path) {
    const char *want = lstm_st_meta(f, "train.checksum");
    if (!want) return lstm__fail(LSTM_ERR_FORMAT, "%s: checkpoint metadata 'train.checksum' is missing", path);
    int *te = sorted_order(&f->tensors[0].name, f->n_tensors, sizeof *f->tensors);
    int *tk = sorted_order(f->meta_keys, f->n_meta, sizeof *f->meta_keys);
    if (!te || !tk) {
        free(te); free(tk);
        return lstm__fail(LSTM_ERR_NOMEM, "%s: out of memory", path);
    }
    fnv h = {LSTM__FNV1A_INIT};
    for (int i = 0; i < f->n_tensors; i++) {
        const lstm_st_tensor *t = &f->tensors[te[i]];
        fnv_tensor_head(&h, t->name, t->dtype_str, t->ndim, t->shape);
        fnv_bytes(&h, f->data + t->offset, t->nbytes);
    }
    for (int i = 0; i < f->n_meta; i++) fnv_meta(&h, f->meta_keys[tk[i]], f->meta_vals[tk[i]]);
    free(te); free(tk);
    char got[32], shown[28];
    snprintf(got, sizeof got, "%016" PRIx64, h.h);
    if (strcmp(got, want) != 0)
        return lstm__fail(LSTM_ERR_FORMAT, "%s: checkpoint metadata 'train.checksum': the file's contents do not match it (expected %s, computed %s): the file is damaged",
                          path, lstm__printable(shown, sizeof shown, want), got);
    return LSTM_OK;
}

lstm_status lstm_trainer_save(lstm_trainer *tr, const char *path, const char *const *meta_kv) {
    lstm_charlm *m = tr->model;
    int nt = lstm_charlm_tensors(m, NULL);
    int nmom = tr->cfg.optimizer == LSTM_OPT_SGD ? 1 : 2;
    int ne = nt * (1 + nmom) + 2;
    lstm_charlm_tensor *t = malloc((size_t)nt * sizeof *t);
    lstm_st_entry *e = calloc((size_t)ne, sizeof *e);
    char (*names)[96] = malloc((size_t)nt * nmom * sizeof *names);
    int nm = 0;
    while (meta_kv && meta_kv[nm]) nm += 2;
    const char **kv = malloc((size_t)(nm + 13) * sizeof *kv);
    char vocab[4 * 256 + 3], sstep[32], srng[32], sepoch[32], spos[32], ssum[32];
    lstm_status st;
    if (!t || !e || !names || !kv || lstm_charlm_tensors(m, t) != nt) {
        st = lstm__fail(LSTM_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    int k = 0;
    for (int i = 0; i < nt; i++, k++) {
        e[k].name = t[i].name;
        e[k].ndim = t[i].ndim;
        e[k].shape[0] = t[i].shape[0];
        e[k].shape[1] = t[i].shape[1];
        e[k].data = t[i].param;
    }
    for (int w = 0; w < nmom; w++)
        for (int i = 0; i < nt; i++, k++) {
            char *nmw = names[w * nt + i];
            snprintf(nmw, sizeof names[0], "%s%s", moment_name(tr, w), t[i].name);
            e[k].name = nmw;
            e[k].ndim = t[i].ndim;
            e[k].shape[0] = t[i].shape[0];
            e[k].shape[1] = t[i].shape[1];
            e[k].data = (w == 0 ? tr->m1 : tr->m2) + moment_offset(m, &t[i]);
        }
    int L = m->net.cfg.num_layers, B = tr->cfg.batch;
    e[k++] = (lstm_st_entry){.name = "state.h", .ndim = 3, .shape = {L, B, m->net.Hout}, .data = tr->h};
    if (tr->c) e[k++] = (lstm_st_entry){.name = "state.c", .ndim = 3, .shape = {L, B, m->net.H}, .data = tr->c};
    lstm__vocab_json(m, vocab);
    snprintf(sstep, sizeof sstep, "%" PRId64, tr->step);
    snprintf(srng, sizeof srng, "%016" PRIx64, tr->rng);
    snprintf(sepoch, sizeof sepoch, "%" PRId64, tr->step / tr->steps_per_epoch);
    snprintf(spos, sizeof spos, "%" PRId64, tr->step % tr->steps_per_epoch);
    int q = 0;
    kv[q++] = "vocab"; kv[q++] = vocab;
    kv[q++] = "train.step"; kv[q++] = sstep;
    kv[q++] = "train.rng"; kv[q++] = srng;
    kv[q++] = "train.epoch"; kv[q++] = sepoch;
    kv[q++] = "train.pos"; kv[q++] = spos;
    for (int i = 0; i < nm; i++) kv[q++] = meta_kv[i];
    kv[q] = NULL;
    uint64_t sum = 0;
    if ((st = checksum_of_entries(e, k, kv, &sum))) goto done;
    snprintf(ssum, sizeof ssum, "%016" PRIx64, sum);
    kv[q++] = "train.checksum";
    kv[q++] = ssum;
    kv[q] = NULL;
    st = lstm_st_write(path, e, k, kv);
done:
    free(t); free(e); free(names); free(kv);
    return st;
}

static lstm_status read_exact(const lstm_st_file *f, const char *path, const char *name, int ndim,
                              const int64_t *shape, float *out) {
    const lstm_st_tensor *t = lstm_st_find(f, name);
    if (!t) return lstm__fail(LSTM_ERR_MISSING, "%s: checkpoint tensor '%s' is missing", path, name);
    int ok = t->ndim == ndim;
    for (int d = 0; ok && d < ndim; d++) ok = t->shape[d] == shape[d];
    if (!ok)
        return lstm__fail(LSTM_ERR_SHAPE, "%s: checkpoint tensor '%s': expected %d dims [%lld, %lld, ...], got %d dims [%lld, ...]",
                          path, name, ndim, (long long)shape[0], (long long)(ndim > 1 ? shape[1] : 0), t->ndim,
                          (long long)(t->ndim ? t->shape[0] : 0));
    char dn[48];
    if (t->dtype != LSTM_DT_F32)
        return lstm__fail(LSTM_ERR_DTYPE, "%s: checkpoint tensor '%s': expected F32, got %s", path, name,
                          lstm__printable(dn, sizeof dn, t->dtype_str));
    return lstm_st_to_f32(f, t, out);
}

/* An unsigned integer in [0, max] (base 10 or 16; digits only). */
static lstm_status meta_u64(const lstm_st_file *f, const char *path, const char *key, int base, uint64_t max,
                            uint64_t *v) {
    const char *s = lstm_st_meta(f, key);
    if (!s) return lstm__fail(LSTM_ERR_FORMAT, "%s: checkpoint metadata '%s' is missing", path, key);
    char *end, shown[64];
    errno = 0;
    unsigned long long x = strtoull(s, &end, base);
    int digit = (*s >= '0' && *s <= '9') || (base == 16 && ((*s >= 'a' && *s <= 'f') || (*s >= 'A' && *s <= 'F')));
    if (!digit || errno || end == s || *end || x > max)
        return lstm__fail(LSTM_ERR_FORMAT, "%s: checkpoint metadata '%s': expected %s integer in [0, %" PRIu64 "], got '%s'", path,
                          key, base == 16 ? "a hexadecimal" : "an", max, lstm__printable(shown, sizeof shown, s));
    *v = x;
    return LSTM_OK;
}

lstm_status lstm_trainer_restore(lstm_trainer *tr, const lstm_st_file *f, const char *path) {
    lstm_charlm *m = tr->model;
    uint64_t step, rng;
    lstm_status st;
    if ((st = lstm__checkpoint_verify(f, path))) return st;
    if ((st = meta_u64(f, path, "train.step", 10, (uint64_t)1 << 62, &step)) ||
        (st = meta_u64(f, path, "train.rng", 16, UINT64_MAX, &rng)))
        return st;
    int nt = lstm_charlm_tensors(m, NULL), nmom = tr->cfg.optimizer == LSTM_OPT_SGD ? 1 : 2;
    const char *other = tr->cfg.optimizer == LSTM_OPT_SGD ? "optim.exp_avg.embedding.weight" : "optim.momentum_buffer.embedding.weight";
    if (lstm_st_find(f, other))
        return lstm__fail(LSTM_ERR_ARG, "%s: checkpoint was written by another optimizer (it has '%s')", path, other);
    lstm_charlm_tensor *t = malloc((size_t)nt * sizeof *t);
    float *m1 = malloc(tr->n_state * sizeof(float)), *m2 = malloc(tr->n_state * sizeof(float));
    size_t nh = lstm__charlm_h_floats(m, tr->cfg.batch), nc = lstm__charlm_c_floats(m, tr->cfg.batch);
    float *h = malloc(nh * sizeof(float)), *c = nc ? malloc(nc * sizeof(float)) : NULL;
    if (!t || !m1 || !m2 || !h || (nc && !c) || lstm_charlm_tensors(m, t) != nt) {
        st = lstm__fail(LSTM_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    char name[128];
    for (int w = 0; w < nmom; w++)
        for (int i = 0; i < nt; i++) {
            snprintf(name, sizeof name, "%s%s", moment_name(tr, w), t[i].name);
            if ((st = read_exact(f, path, name, t[i].ndim, t[i].shape, (w == 0 ? m1 : m2) + moment_offset(m, &t[i]))))
                goto done;
        }
    int64_t sh[3] = {m->net.cfg.num_layers, tr->cfg.batch, m->net.Hout};
    if ((st = read_exact(f, path, "state.h", 3, sh, h))) goto done;
    sh[2] = m->net.H;
    if (nc && (st = read_exact(f, path, "state.c", 3, sh, c))) goto done;
    if (!nc && lstm_st_find(f, "state.c")) {
        st = lstm__fail(LSTM_ERR_SHAPE, "%s: checkpoint tensor 'state.c': a GRU carries no cell state", path);
        goto done;
    }
    memcpy(tr->m1, m1, tr->n_state * sizeof(float));
    if (tr->m2) memcpy(tr->m2, m2, tr->n_state * sizeof(float));
    memcpy(tr->h, h, nh * sizeof(float));
    if (nc) memcpy(tr->c, c, nc * sizeof(float));
    tr->step = (int64_t)step;
    tr->rng = rng;
done:
    free(t); free(m1); free(m2); free(h); free(c);
    return st;
}
