/* test_train.c — the char model and its training against PyTorch fixtures
 * (tools/train_fixtures.py, tests/fixtures/train/): per-step losses and final weights of 12-step runs
 * with Adam + clipping, AdamW + warmup/cosine + projection, SGD + Nesterov;
 * eval loss and greedy decoding; resume from a checkpoint bit for bit; the
 * schedule, clipping and optimizer formulas; bad inputs. */
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test.h"
#include "train/train_internal.h"

static unsigned char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)len + 1);
    *n = fread(b, 1, (size_t)len, f);
    fclose(f);
    return b;
}

/* Parses the fixture's "args" (lstm train flags) into c; returns the step count. */
static long parse_args(const char *args, lstm_train_config *c) {
    char buf[512];
    snprintf(buf, sizeof buf, "%s", args);
    lstm_train_config_default(c);
    c->clip = 1.0;
    long steps = 0;
    int wd_given = 0;
    char *save, *tok = strtok_r(buf, " ", &save);
    while (tok) {
        if (!strcmp(tok, "--nesterov")) { c->nesterov = 1; tok = strtok_r(NULL, " ", &save); continue; }
        char *v = strtok_r(NULL, " ", &save);
        if (!v) break;
        if (!strcmp(tok, "--batch")) c->batch = atoi(v);
        else if (!strcmp(tok, "--bptt")) c->bptt = atoi(v);
        else if (!strcmp(tok, "--steps")) steps = atol(v);
        else if (!strcmp(tok, "--lr")) c->lr = atof(v);
        else if (!strcmp(tok, "--clip")) c->clip = atof(v);
        else if (!strcmp(tok, "--weight-decay")) { c->weight_decay = atof(v); wd_given = 1; }
        else if (!strcmp(tok, "--momentum")) c->momentum = atof(v);
        else if (!strcmp(tok, "--warmup")) c->warmup = atol(v);
        else if (!strcmp(tok, "--lr-min")) c->lr_min = atof(v);
        else if (!strcmp(tok, "--schedule")) c->schedule = !strcmp(v, "cosine") ? LSTM_SCHED_COSINE : LSTM_SCHED_CONSTANT;
        else if (!strcmp(tok, "--optimizer"))
            c->optimizer = !strcmp(v, "sgd") ? LSTM_OPT_SGD : !strcmp(v, "adamw") ? LSTM_OPT_ADAMW : LSTM_OPT_ADAM;
        tok = strtok_r(NULL, " ", &save);
    }
    if (!wd_given && c->optimizer == LSTM_OPT_ADAMW) c->weight_decay = 0.01;
    c->total_steps = steps;
    return steps;
}

static float *read_ref(const lstm_st_file *f, const char *name, size_t *numel) {
    const lstm_st_tensor *t = lstm_st_find(f, name);
    if (!t) return NULL;
    float *out = malloc(t->numel * sizeof(float));
    if (lstm_st_to_f32(f, t, out)) { free(out); return NULL; }
    if (numel) *numel = t->numel;
    return out;
}

static int parse_bytes(const char *json, unsigned char *out, int cap) {
    int n = 0;
    for (const char *p = json; *p && n < cap;) {
        if (*p >= '0' && *p <= '9') {
            out[n++] = (unsigned char)strtol(p, (char **)&p, 10);
        } else {
            p++;
        }
    }
    return n;
}

static void fixture_case(const char *name, const unsigned char *data, size_t n) {
    char path[256];
    snprintf(path, sizeof path, "tests/fixtures/train/%s.safetensors", name);
    lstm_st_file f;
    lstm_status st = lstm_st_read(&f, path);
    CHECK(st == LSTM_OK, "%s: %s", path, lstm_last_error());
    if (st) return;
    lstm_charlm m;
    st = lstm_charlm_load_st(&m, &f, path);
    CHECK(st == LSTM_OK, "%s: load: %s", name, lstm_last_error());
    if (st) { lstm_st_free(&f); return; }
    int want_cell = strncmp(name, "gru_", 4) == 0 ? LSTM_CELL_GRU : LSTM_CELL_LSTM; /* told from the names */
    CHECK(m.net.cfg.cell == want_cell, "%s: loaded as cell %d, expected %d", name, m.net.cfg.cell, want_cell);
    lstm_train_config c;
    long steps = parse_args(lstm_st_meta(&f, "args"), &c);
    uint8_t *ids = malloc(n);
    CHECK(lstm_charlm_encode(&m, data, n, ids, "data") == LSTM_OK, "%s: encode: %s", name, lstm_last_error());

    /* eval of the initial model: one stream, blocks of 64 (PyTorch: same) */
    size_t nr;
    float *ref_eval = read_ref(&f, "ref.eval_loss", &nr);
    double ev;
    size_t cnt;
    CHECK(lstm_charlm_eval(&m, ids, n, 1, 64, 1, &ev, &cnt) == LSTM_OK, "%s: eval: %s", name, lstm_last_error());
    CHECK_V(ref_eval && fabs(ev - ref_eval[0]) < 1e-5 && cnt == n - 1,
            "train %s: eval loss %.7f vs torch %.7f, |diff| %.2e (tol 1e-5), %zu predictions", name, ev,
            ref_eval ? ref_eval[0] : NAN, ref_eval ? fabs(ev - ref_eval[0]) : NAN, cnt);
    free(ref_eval);

    /* greedy decoding of the initial model with its weights scaled */
    {
        lstm_charlm g;
        CHECK(lstm_charlm_load_st(&g, &f, path) == LSTM_OK, "%s: reload", name);
        float s = (float)atof(lstm_st_meta(&f, "ref.greedy_scale"));
        for (size_t i = 0; i < g.n_params; i++) g.params[i] *= s; /* the whole model: one buffer */
        unsigned char prime[256], want[256], got[256];
        int np = parse_bytes(lstm_st_meta(&f, "ref.greedy_prime"), prime, 256);
        int nw = parse_bytes(lstm_st_meta(&f, "ref.greedy"), want, 256);
        CHECK(lstm_charlm_generate(&g, prime, (size_t)np, got, (size_t)nw, 0.0, 0, 1) == LSTM_OK, "%s: generate: %s",
              name, lstm_last_error());
        int same = 0;
        while (same < nw && got[same] == want[same]) same++;
        CHECK_V(same == nw, "train %s: greedy decoding: %d of %d bytes equal PyTorch's", name, same, nw);
        lstm_charlm_free(&g);
    }

    /* training: per-step losses and final weights */
    lstm_trainer tr;
    st = lstm_trainer_init(&tr, &m, &c, ids, n);
    CHECK(st == LSTM_OK, "%s: trainer: %s", name, lstm_last_error());
    float *ref = read_ref(&f, "ref.losses", &nr);
    CHECK(ref && (long)nr == steps, "%s: ref.losses", name);
    double maxd = 0;
    long ran = 0;
    for (long k = 0; k < steps && k < (long)nr && ref && !st; k++, ran++) {
        lstm_step_info info;
        st = lstm_trainer_step(&tr, &info);
        CHECK(st == LSTM_OK, "%s: step %ld: %s", name, k + 1, lstm_last_error());
        double d = fabs(info.loss - ref[k]);
        if (d > maxd) maxd = d;
    }
    CHECK_V(ran == steps && maxd < 5e-6, "train %s: %ld of %ld steps, max |loss - torch| %.2e (tol 5e-6)", name, ran,
            steps, maxd);
    free(ref);
    int nt = lstm_charlm_tensors(&m, NULL);
    lstm_charlm_tensor *t = malloc((size_t)nt * sizeof *t);
    lstm_charlm_tensors(&m, t);
    double wmax = 0, wscale = 0;
    const char *worst = "";
    for (int k = 0; k < nt; k++) {
        char rn[128];
        snprintf(rn, sizeof rn, "ref.final.%s", t[k].name);
        float *w = read_ref(&f, rn, &nr);
        CHECK(w && nr == t[k].numel, "%s: %s", name, rn);
        if (!w) continue;
        for (size_t i = 0; i < nr; i++) {
            double d = fabs((double)t[k].param[i] - w[i]);
            if (d > wmax) { wmax = d; worst = t[k].name; }
            if (fabs(w[i]) > wscale) wscale = fabs(w[i]);
        }
        free(w);
    }
    CHECK_V(wmax < 2e-5, "train %s: final weights: max |w - torch| %.2e in %s (tol 2e-5; max |w| %.2f)", name, wmax,
            worst, wscale);
    free(t);
    lstm_trainer_free(&tr);
    free(ids);
    lstm_charlm_free(&m);
    lstm_st_free(&f);
}

/* A small char model over data's bytes (seeded) and data encoded with it (malloc'd). */
static uint8_t *tiny_model(lstm_charlm *m, const unsigned char *data, size_t n, int E, int H, int L, uint64_t seed,
                           int cell) {
    unsigned char vocab[256];
    int V;
    lstm_charlm_vocab_of(data, n, vocab, &V);
    lstm_config cfg = {.input_size = E, .hidden_size = H, .num_layers = L, .proj_size = 0, .bias = 1, .cell = cell};
    lstm_charlm_init(m, vocab, V, E, &cfg);
    lstm_charlm_init_params(m, seed);
    uint8_t *ids = malloc(n);
    lstm_charlm_encode(m, data, n, ids, "data");
    return ids;
}

/* Trains steps_a steps, checkpoints, restores into a fresh model + trainer and
 * finishes; the weights must equal those of an uninterrupted run bit for bit. */
static void resume_case(const unsigned char *data, size_t n, lstm_optimizer opt, double dropout, int cell) {
    lstm_charlm a, b;
    uint8_t *ids = tiny_model(&a, data, n, 6, 12, 2, 7, cell);
    lstm_train_config c;
    lstm_train_config_default(&c);
    c.batch = 3;
    c.bptt = 7;
    c.optimizer = opt;
    c.dropout = dropout;
    c.lr = 0.01;
    c.seed = 5;
    char path[] = "/tmp/lstm_test_train_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    /* the reference: 25 steps straight (crosses epochs: 17 steps each) */
    lstm_trainer t1;
    lstm_charlm_init(&b, a.vocab, a.V, 6, &a.net.cfg);
    memcpy(b.params, a.params, a.n_params * sizeof(float));
    lstm_trainer_init(&t1, &b, &c, ids, n);
    CHECK(lstm_trainer_set_threads(&t1, 2) == LSTM_OK, "threads: %s", lstm_last_error()); /* same bits for any n */
    for (int k = 0; k < 25; k++) lstm_trainer_step(&t1, NULL);
    /* the interrupted run: 11 steps, checkpoint, a fresh process state */
    lstm_trainer t2;
    lstm_trainer_init(&t2, &a, &c, ids, n);
    for (int k = 0; k < 11; k++) lstm_trainer_step(&t2, NULL);
    lstm_status st = lstm_trainer_save(&t2, path, NULL);
    CHECK(st == LSTM_OK, "save: %s", lstm_last_error());
    lstm_trainer_free(&t2);
    lstm_charlm_free(&a);
    lstm_st_file f;
    CHECK(lstm_st_read(&f, path) == LSTM_OK, "read checkpoint: %s", lstm_last_error());
    CHECK(lstm_charlm_load_st(&a, &f, path) == LSTM_OK, "load checkpoint: %s", lstm_last_error());
    lstm_trainer_init(&t2, &a, &c, ids, n);
    st = lstm_trainer_restore(&t2, &f, path);
    CHECK(st == LSTM_OK, "restore: %s", lstm_last_error());
    CHECK(t2.step == 11, "restored step %lld, expected 11", (long long)t2.step);
    for (int k = 11; k < 25; k++) lstm_trainer_step(&t2, NULL);
    int same = !memcmp(a.params, b.params, a.n_params * sizeof(float));
    CHECK_V(same, "resume (%s, %s, dropout %.1f): 11 steps + checkpoint + 14 steps == 25 steps on 2 threads, bit for bit",
            cell == LSTM_CELL_GRU ? "gru" : "lstm", opt == LSTM_OPT_SGD ? "sgd" : "adam", dropout);
    const char *moment = opt == LSTM_OPT_SGD ? (cell == LSTM_CELL_GRU ? "optim.momentum_buffer.gru.weight_hh_l1" : "optim.momentum_buffer.lstm.weight_hh_l1")
                                             : (cell == LSTM_CELL_GRU ? "optim.exp_avg_sq.gru.weight_hh_l1" : "optim.exp_avg_sq.lstm.weight_hh_l1");
    CHECK(a.net.cfg.cell == cell && (cell == LSTM_CELL_GRU) == (lstm_st_find(&f, "state.c") == NULL) &&
              lstm_st_find(&f, moment) != NULL,
          "checkpoint of a %s run: the cell's names (%s), state.c only for an LSTM", cell == LSTM_CELL_GRU ? "GRU" : "LSTM", moment);
    /* a checkpoint from the other optimizer is refused */
    lstm_trainer t3;
    lstm_train_config c3 = c;
    c3.optimizer = opt == LSTM_OPT_SGD ? LSTM_OPT_ADAM : LSTM_OPT_SGD;
    lstm_trainer_init(&t3, &a, &c3, ids, n);
    CHECK(lstm_trainer_restore(&t3, &f, path) == LSTM_ERR_ARG, "restore with another optimizer must fail");
    lstm_trainer_free(&t3);
    lstm_st_free(&f);
    unlink(path);
    lstm_trainer_free(&t1);
    lstm_trainer_free(&t2);
    lstm_charlm_free(&a);
    lstm_charlm_free(&b);
    free(ids);
}

/* The model is one buffer embedding | recurrent | head: the net's params and
 * grads, and every tensor, lie inside it in state_dict order, back to back. */
static void one_buffer(const unsigned char *data, size_t n, int cell) {
    lstm_charlm m;
    uint8_t *ids = tiny_model(&m, data, n, 5, 7, 2, 11, cell);
    size_t ve = (size_t)m.V * m.E;
    int ok = m.net.params == m.params + ve && m.net.grads == m.grads + ve && m.head_w == m.net.params + m.net.n_params &&
             m.head_b == m.head_w + (size_t)m.V * m.net.Hout && m.head_b + m.V == m.params + m.n_params &&
             m.d_head_w == m.grads + (m.head_w - m.params);
    int nt = lstm_charlm_tensors(&m, NULL);
    lstm_charlm_tensor *t = malloc((size_t)nt * sizeof *t);
    lstm_charlm_tensors(&m, t);
    size_t off = 0;
    for (int k = 0; k < nt; k++) {
        ok &= t[k].param == m.params + off && t[k].grad == m.grads + off;
        off += t[k].numel;
    }
    ok &= off == m.n_params && !strncmp(t[1].name, cell == LSTM_CELL_GRU ? "gru.weight_ih_l0" : "lstm.weight_ih_l0", 20);
    CHECK_V(ok, "%s char model: one buffer of %zu floats, tensors back to back (embedding | %s | head)",
            cell == LSTM_CELL_GRU ? "GRU" : "LSTM", m.n_params, t[1].name);
    free(t);
    free(ids);
    lstm_charlm_free(&m);
}

/* Loading tells the cell from the names and checks the shapes agree: a GRU's
 * tensors named lstm.* (and an LSTM's named gru.*) are refused, and so is a
 * file holding both. */
static void cell_from_names(const unsigned char *data, size_t n) {
    char path[] = "/tmp/lstm_test_cell_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    for (int cell = 0; cell < 2; cell++) {
        lstm_charlm m;
        free(tiny_model(&m, data, n, 4, 6, 1, 5, cell));
        lstm_charlm_tensor t[16];
        int nt = lstm_charlm_tensors(&m, t);
        lstm_st_entry e[32];
        char names[32][80];
        const char *from = cell ? "gru." : "lstm.", *to = cell ? "lstm." : "gru.";
        for (int both = 0; both < 2; both++) {
            int ne = 0;
            for (int i = 0; i < nt; i++) {
                snprintf(names[ne], sizeof names[ne], "%.63s", t[i].name);
                if (!strncmp(t[i].name, from, strlen(from)))
                    snprintf(names[ne], sizeof names[ne], "%s%.63s", to, t[i].name + strlen(from));
                e[ne] = (lstm_st_entry){.name = names[ne], .ndim = t[i].ndim, .shape = {t[i].shape[0], t[i].shape[1]}, .data = t[i].param};
                ne++;
                if (both && strcmp(names[ne - 1], t[i].name)) { /* the original name too */
                    e[ne] = e[ne - 1];
                    e[ne].name = t[i].name;
                    ne++;
                }
            }
            char vj[4 * 256 + 3];
            lstm__vocab_json(&m, vj);
            const char *kv[] = {"vocab", vj, NULL};
            CHECK(lstm_st_write(path, e, ne, kv) == LSTM_OK, "write: %s", lstm_last_error());
            lstm_charlm g;
            lstm_status st = lstm_charlm_load(&g, path);
            lstm_status want = both ? LSTM_ERR_FORMAT : LSTM_ERR_SHAPE;
            CHECK_V(st == want, "a %s's tensors named %s*%s: refused (%d): %s", cell ? "GRU" : "LSTM", to,
                    both ? " beside the right ones" : "", st, lstm_last_error());
            if (st == LSTM_OK) lstm_charlm_free(&g);
        }
        lstm_charlm_free(&m);
    }
    unlink(path);
}

static void formulas(void) {
    lstm_train_config c;
    lstm_train_config_default(&c);
    c.lr = 1.0;
    c.warmup = 4;
    c.schedule = LSTM_SCHED_COSINE;
    c.total_steps = 14;
    c.lr_min = 0.1;
    CHECK(fabs(lstm_train_lr(&c, 0) - 0.25) < 1e-15 && fabs(lstm_train_lr(&c, 3) - 1.0) < 1e-15,
          "warmup: lr(0) %g lr(3) %g", lstm_train_lr(&c, 0), lstm_train_lr(&c, 3));
    CHECK(fabs(lstm_train_lr(&c, 4) - 1.0) < 1e-15 && fabs(lstm_train_lr(&c, 9) - 0.55) < 1e-12 &&
              fabs(lstm_train_lr(&c, 14) - 0.1) < 1e-15,
          "cosine: lr(4) %g lr(9) %g lr(14) %g", lstm_train_lr(&c, 4), lstm_train_lr(&c, 9), lstm_train_lr(&c, 14));
    c.schedule = LSTM_SCHED_CONSTANT;
    CHECK(lstm_train_lr(&c, 100) == 1.0, "constant lr");
    CHECK(lstm__clip_coef(2.0, 1.0) < 0.5f && lstm__clip_coef(2.0, 1.0) > 0.4999f, "clip coef %g", lstm__clip_coef(2.0, 1.0));
    CHECK(lstm__clip_coef(0.5, 1.0) == 1.0f, "no clipping below the norm");
    /* Adam's first step moves every parameter by lr against the gradient's sign (|g| >> eps) */
    float p[3] = {1, 1, 1}, g[3] = {0.5f, -2.0f, 0.0f}, m1[3] = {0}, m2[3] = {0};
    lstm__adam_update(p, g, m1, m2, 3, 1, 0.1, 0.9, 0.999, 1e-8, 0.0, 0);
    CHECK(fabsf(p[0] - 0.9f) < 1e-6f && fabsf(p[1] - 1.1f) < 1e-6f && p[2] == 1.0f, "adam step 1: %g %g %g", p[0],
          p[1], p[2]);
    /* SGD momentum: first step uses g, the second mu*g + g */
    float q[1] = {0}, gq[1] = {1}, buf[1] = {0};
    lstm__sgd_update(q, gq, buf, 1, 1, 1.0, 0.5, 0.0, 0);
    lstm__sgd_update(q, gq, buf, 1, 2, 1.0, 0.5, 0.0, 0);
    CHECK(q[0] == -2.5f, "sgd momentum: %g, expected -2.5", q[0]);
    /* cross-entropy: uniform logits give log V, and the gradient rows sum to 0 */
    float lg[2 * 4] = {0, 0, 0, 0, 1, 2, 3, 4}, d[8];
    uint8_t tg[2] = {1, 3};
    double l = lstm__xent_forward(lg, tg, 2, 4);
    double want = log(4.0) + (4 + log(exp(-3.0) + exp(-2.0) + exp(-1.0) + 1.0) - 4);
    CHECK(fabs(l - want) < 1e-6, "xent %g, expected %g", l, want);
    lstm__xent_backward(d, lg, tg, 2, 4, 1.0f);
    CHECK(fabsf(d[0] + d[1] + d[2] + d[3]) < 1e-6f && fabsf(d[1] - (0.25f - 1)) < 1e-6f, "xent grad");
    /* the forward's kept exps give the backward's bits and the forward's loss sum
     * (rows of 1..97 logits, wide values, a row with -Inf, +Inf and NaN) */
    {
        enum { NR = 40, VM = 97 };
        static float lgs[NR * VM], e[NR * VM], d1[NR * VM], d2[NR * VM];
        float inv[NR];
        uint8_t tgs[NR];
        uint64_t rs = 7;
        int same = 1, ref_ok = 1;
        for (int V = 1; V <= VM; V += 12) {
            for (int i = 0; i < NR * V; i++) lgs[i] = (float)(lstm__rng_uniform(&rs) * 60.0 - 30.0);
            for (int n = 0; n < NR; n++) tgs[n] = (uint8_t)(n % V);
            if (V > 3) { lgs[V] = -INFINITY; lgs[2 * V + 1] = INFINITY; lgs[3 * V + 2] = NAN; }
            int64_t q1[2] = {0, 0}, q2[2] = {0, 0};
            lstm__xent_forward_q(lgs, tgs, NR, V, q1, NULL, NULL);
            lstm__xent_forward_q(lgs, tgs, NR, V, q2, e, inv);
            lstm__xent_backward(d1, lgs, tgs, NR, V, 1.0f / 3.0f);
            lstm__xent_backward_cached(d2, e, inv, tgs, NR, V, 1.0f / 3.0f);
            same &= q1[0] == q2[0] && q1[1] == q2[1] && memcmp(d1, d2, (size_t)NR * V * sizeof(float)) == 0;
            /* both paths end in lstm__xent_backward_cached: the finite rows against a float64
             * softmax - onehot, so a fault shared by the two cannot pass */
            for (int n = V > 3 ? 4 : 0; n < NR; n++) {
                const float *r = lgs + (size_t)n * V;
                double mx = r[0], sum = 0.0;
                for (int v = 1; v < V; v++) mx = r[v] > mx ? r[v] : mx;
                for (int v = 0; v < V; v++) sum += exp((double)r[v] - mx);
                for (int v = 0; v < V; v++) {
                    double want = (exp((double)r[v] - mx) / sum - (v == tgs[n])) / 3.0;
                    if (!(fabs((double)d1[(size_t)n * V + v] - want) <= 1e-6 * (1.0 + fabs(want)))) {
                        if (ref_ok) printf("  xent grad row %d col %d (V = %d): %.9g, float64 %.9g\n", n, v, V,
                                           d1[(size_t)n * V + v], want);
                        ref_ok = 0;
                    }
                }
            }
        }
        CHECK(same, "xent with the forward's kept exps: the same loss sum and gradient bits (V = 1..97, non-finite rows)");
        CHECK(ref_ok, "xent gradient within 1e-6 of a float64 softmax - onehot (V = 1..97, the finite rows)");
    }
}

static void bad_inputs(const unsigned char *data, size_t n) {
    unsigned char vocab[256];
    int V;
    CHECK(lstm_charlm_vocab_of(data, 0, vocab, &V) == LSTM_ERR_ARG, "empty data must fail");
    lstm_charlm_vocab_of((const unsigned char *)"abc", 3, vocab, &V);
    lstm_config cfg = {.input_size = 4, .hidden_size = 5, .num_layers = 1, .bias = 1};
    lstm_charlm m;
    CHECK(lstm_charlm_init(&m, vocab, V, 4, &cfg) == LSTM_OK, "init");
    uint8_t ids[8];
    lstm_status st = lstm_charlm_encode(&m, (const unsigned char *)"abxc", 4, ids, "f.txt");
    CHECK(st == LSTM_ERR_ARG && strstr(lstm_last_error(), "0x78") && strstr(lstm_last_error(), "offset 2"),
          "byte outside the vocabulary: %s", lstm_last_error());
    lstm_train_config c;
    lstm_train_config_default(&c);
    c.batch = 2;
    c.bptt = 3;
    lstm_trainer tr;
    memset(ids, 0, sizeof ids);
    st = lstm_trainer_init(&tr, &m, &c, ids, 6);
    CHECK(st == LSTM_ERR_ARG && strstr(lstm_last_error(), "B*T+1 = 7"), "short data: %s", lstm_last_error());
    CHECK(lstm_trainer_init(&tr, &m, &c, ids, 7) == LSTM_OK, "B*T+1 tokens are enough");
    lstm_trainer_free(&tr);
    /* optimizer settings torch.optim refuses (Adam: 0 <= beta < 1, eps >= 0; weight_decay >= 0;
     * SGD: momentum >= 0, nesterov needs momentum > 0); beta1 = 1 made every weight NaN */
    {
        struct { const char *what; lstm_optimizer opt; double beta1, beta2, eps, wd, mom; int nesterov; } bad[] = {
            {"adam beta1 = 1", LSTM_OPT_ADAM, 1.0, 0.999, 1e-8, 0, 0.9, 0},
            {"adamw beta2 = 1", LSTM_OPT_ADAMW, 0.9, 1.0, 1e-8, 0, 0.9, 0},
            {"adam beta1 = -0.1", LSTM_OPT_ADAM, -0.1, 0.999, 1e-8, 0, 0.9, 0},
            {"adam beta2 NaN", LSTM_OPT_ADAM, 0.9, NAN, 1e-8, 0, 0.9, 0},
            {"adam eps = -1", LSTM_OPT_ADAM, 0.9, 0.999, -1.0, 0, 0.9, 0},
            {"adam weight_decay = -1", LSTM_OPT_ADAM, 0.9, 0.999, 1e-8, -1.0, 0.9, 0},
            {"sgd momentum = -0.5", LSTM_OPT_SGD, 0.9, 0.999, 1e-8, 0, -0.5, 0},
            {"sgd nesterov without momentum", LSTM_OPT_SGD, 0.9, 0.999, 1e-8, 0, 0.0, 1},
            {"optimizer 7", (lstm_optimizer)7, 0.9, 0.999, 1e-8, 0, 0.9, 0},
            {"adam weight_decay = inf", LSTM_OPT_ADAM, 0.9, 0.999, 1e-8, INFINITY, 0.9, 0},
            {"sgd momentum = inf", LSTM_OPT_SGD, 0.9, 0.999, 1e-8, 0, INFINITY, 0},
        };
        for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
            lstm_train_config b = c;
            b.optimizer = bad[i].opt;
            b.beta1 = bad[i].beta1; b.beta2 = bad[i].beta2; b.eps = bad[i].eps;
            b.weight_decay = bad[i].wd; b.momentum = bad[i].mom; b.nesterov = bad[i].nesterov;
            st = lstm_trainer_init(&tr, &m, &b, ids, 7);
            CHECK_V(st == LSTM_ERR_ARG, "trainer: %s is LSTM_ERR_ARG (got %d: %s)", bad[i].what, st,
                    st ? lstm_last_error() : "accepted");
            if (st == LSTM_OK) lstm_trainer_free(&tr);
        }
        /* learning rates that are not finite numbers >= 0 (lr = inf and lr_min = NaN were
         * accepted, and the first step made every weight inf or NaN) */
        const double lrs[][2] = {{INFINITY, 0.0}, {NAN, 0.0}, {-1e-3, 0.0}, {1e-3, NAN}, {1e-3, INFINITY}, {1e-3, -1e-4}};
        for (size_t i = 0; i < sizeof lrs / sizeof *lrs; i++) {
            lstm_train_config b = c;
            b.lr = lrs[i][0];
            b.lr_min = lrs[i][1];
            b.schedule = LSTM_SCHED_COSINE;
            b.total_steps = 10;
            st = lstm_trainer_init(&tr, &m, &b, ids, 7);
            CHECK_V(st == LSTM_ERR_ARG, "trainer: lr %g, lr_min %g is LSTM_ERR_ARG (got %d: %s)", b.lr, b.lr_min, st,
                    st ? lstm_last_error() : "accepted");
            if (st == LSTM_OK) lstm_trainer_free(&tr);
        }
        lstm_train_config b = c; /* the edges torch accepts */
        b.optimizer = LSTM_OPT_SGD; b.momentum = 0; b.beta1 = 1.0; /* betas are Adam's only */
        st = lstm_trainer_init(&tr, &m, &b, ids, 7);
        CHECK_V(st == LSTM_OK, "trainer: SGD without momentum (and an Adam beta1 of 1, unused) accepted (%s)",
                st ? lstm_last_error() : "ok");
        if (st == LSTM_OK) lstm_trainer_free(&tr);
        b = c; b.beta1 = 0.0; b.eps = 0.0;
        st = lstm_trainer_init(&tr, &m, &b, ids, 7);
        CHECK(st == LSTM_OK, "adam beta1 = 0, eps = 0: %s", lstm_last_error());
        if (st == LSTM_OK) lstm_trainer_free(&tr);
    }
    /* lstm_charlm_backward needs a forward WITH targets: after a logits-only forward it
     * must refuse, not read the targets of an earlier forward (or never-written ones) */
    {
        lstm_charlm_ws *ws;
        uint8_t in[6] = {0, 1, 2, 2, 1, 0}, tg[6] = {1, 2, 0, 0, 2, 1};
        CHECK(lstm_charlm_ws_init(&ws, &m, 3, 2, LSTM_WS_TRAIN) == LSTM_OK, "char ws");
        CHECK(lstm_charlm_forward(&m, ws, 3, in, tg, NULL, NULL, NULL) == LSTM_OK &&
                  lstm_charlm_backward(&m, ws) == LSTM_OK,
              "forward with targets, backward: %s", lstm_last_error());
        CHECK(lstm_charlm_forward(&m, ws, 3, in, NULL, NULL, NULL, NULL) == LSTM_OK, "logits-only forward");
        st = lstm_charlm_backward(&m, ws);
        CHECK_V(st == LSTM_ERR_ARG, "backward after a logits-only forward is LSTM_ERR_ARG (got %d: %s)", st,
                st ? lstm_last_error() : "accepted");
        lstm_charlm_ws_free(ws);
        CHECK(lstm_charlm_ws_init(&ws, &m, 3, 2, LSTM_WS_TRAIN) == LSTM_OK, "char ws");
        st = lstm_charlm_forward(&m, ws, 2, in, NULL, NULL, NULL, NULL);
        if (st == LSTM_OK) st = lstm_charlm_backward(&m, ws);
        CHECK_V(st == LSTM_ERR_ARG, "backward after the first forward, without targets, is LSTM_ERR_ARG (got %d)", st);
        lstm_charlm_ws_free(ws);
        /* flags: the public ones accepted (time-major, so batch-first is ignored), any other refused */
        st = lstm_charlm_ws_init(&ws, &m, 3, 2, LSTM_WS_TRAIN | LSTM_WS_BATCH_FIRST | LSTM_WS_KEEP_PACKS);
        CHECK_V(st == LSTM_OK, "char ws with every public flag: %s", st ? lstm_last_error() : "ok");
        if (st == LSTM_OK) lstm_charlm_ws_free(ws);
        st = lstm_charlm_ws_init(&ws, &m, 3, 2, LSTM_WS_TRAIN | 64);
        CHECK_V(st == LSTM_ERR_ARG && ws == NULL && strstr(lstm_last_error(), "unknown flags 0x40"),
                "char ws with flag 64: LSTM_ERR_ARG (%s)", st ? lstm_last_error() : "accepted");
        if (st == LSTM_OK) lstm_charlm_ws_free(ws);
    }
    /* a workspace made for another model: refused before anything is written (its buffers are
     * sized by its own model: a larger vocabulary overflowed the logits); a backward after a
     * forward of another model of the same shape: refused before any gradient is added */
    {
        unsigned char big[200];
        for (int v = 0; v < 200; v++) big[v] = (unsigned char)(v + 40);
        lstm_charlm m2, m3;
        CHECK(lstm_charlm_init(&m2, big, 200, 4, &cfg) == LSTM_OK && lstm_charlm_init(&m3, vocab, V, 4, &cfg) == LSTM_OK,
              "models");
        lstm_charlm_ws *ws;
        uint8_t in[6] = {0, 1, 2, 2, 1, 0}, tg[6] = {1, 2, 0, 0, 2, 1};
        CHECK(lstm_charlm_ws_init(&ws, &m, 3, 2, LSTM_WS_TRAIN) == LSTM_OK, "char ws");
        st = lstm_charlm_forward(&m2, ws, 3, in, tg, NULL, NULL, NULL);
        CHECK_V(st == LSTM_ERR_ARG && strstr(lstm_last_error(), "another model shape"),
                "char forward of a 200-byte model on a workspace of a %d-byte one: LSTM_ERR_ARG (%s)", V,
                st ? lstm_last_error() : "accepted");
        lstm_charlm_init_params(&m3, 5);
        lstm_charlm_zero_grad(&m3);
        CHECK(lstm_charlm_forward(&m, ws, 3, in, tg, NULL, NULL, NULL) == LSTM_OK, "forward: %s", lstm_last_error());
        st = lstm_charlm_backward(&m3, ws);
        int zero = 1;
        for (size_t i = 0; i < m3.n_params; i++) zero &= m3.grads[i] == 0.0f;
        CHECK_V(st == LSTM_ERR_ARG && zero, "char backward of another model of the same shape: LSTM_ERR_ARG, its "
                "gradients untouched (%s)", st ? lstm_last_error() : "accepted");
        CHECK(lstm_charlm_backward(&m, ws) == LSTM_OK, "then the forward's own model: %s", lstm_last_error());
        lstm_charlm_ws_free(ws);
        lstm_charlm_free(&m2);
        lstm_charlm_free(&m3);
    }
    lstm_charlm_free(&m);
    (void)data; (void)n;
}

/* A diverging SGD run must stop with LSTM_ERR_NONFINITE and keep its last weights. */
static void nonfinite(const unsigned char *data, size_t n) {
    unsigned char vocab[256];
    int V;
    lstm_charlm_vocab_of(data, n, vocab, &V);
    lstm_config cfg = {.input_size = 4, .hidden_size = 8, .num_layers = 1, .bias = 1};
    lstm_charlm m;
    lstm_charlm_init(&m, vocab, V, 4, &cfg);
    lstm_charlm_init_params(&m, 3);
    uint8_t *ids = malloc(n);
    lstm_charlm_encode(&m, data, n, ids, "data");
    lstm_train_config c;
    lstm_train_config_default(&c);
    c.batch = 2; c.bptt = 5; c.optimizer = LSTM_OPT_SGD; c.lr = 1e38; c.clip = 0; c.momentum = 0;
    c.weight_decay = 1.0; /* p <- p (1 - 1e38) - 1e38 g: overflows by the second step */
    lstm_trainer tr;
    lstm_trainer_init(&tr, &m, &c, ids, n);
    lstm_status st = LSTM_OK;
    float *before = malloc(m.n_params * sizeof(float));
    int k;
    for (k = 0; k < 10 && st == LSTM_OK; k++) {
        memcpy(before, m.params, m.n_params * sizeof(float));
        st = lstm_trainer_step(&tr, NULL);
    }
    CHECK(st == LSTM_ERR_NONFINITE, "a diverging run must report a non-finite loss, got %d", st);
    CHECK(!memcmp(before, m.params, m.n_params * sizeof(float)), "the failing step must not change weights");
    CHECK(strstr(lstm_last_error(), "step") != NULL, "message: %s", lstm_last_error());
    lstm_trainer_free(&tr);
    /* a refused thread count leaves the trainer as it was: validation still runs on the old threads */
    c.optimizer = LSTM_OPT_ADAM; c.lr = 1e-3; c.clip = 1; c.weight_decay = 0;
    lstm_charlm_init_params(&m, 3);
    double l2 = 0, l3 = 0;
    lstm_status s2 = lstm_trainer_init(&tr, &m, &c, ids, n);
    if (s2 == LSTM_OK) s2 = lstm_trainer_set_threads(&tr, 2);
    if (s2 == LSTM_OK) s2 = lstm_trainer_validate(&tr, ids, n, &l2);
    CHECK(s2 == LSTM_OK, "trainer on 2 threads, validate: %s", lstm_last_error());
    st = lstm_trainer_set_threads(&tr, LSTM_MAX_THREADS + 1);
    CHECK(st == LSTM_ERR_ARG, "trainer: %d threads refused (%d)", LSTM_MAX_THREADS + 1, st);
    st = lstm_trainer_set_threads(&tr, 0);
    CHECK(st == LSTM_ERR_ARG, "trainer: 0 threads refused, as lstm_workspace_set_threads refuses them (%d)", st);
    s2 = lstm_trainer_validate(&tr, ids, n, &l3);
    CHECK_V(s2 == LSTM_OK && l3 == l2, "validate after a refused thread count: %s, loss %.17g (before %.17g)",
            s2 ? lstm_last_error() : "ok", l3, l2);
    lstm_trainer_free(&tr);
    free(before); free(ids);
    lstm_charlm_free(&m);
}

/* Checkpoint contents are untrusted: every setting read back passes the flag's
 * range check and a bad one is named by file and key; paths of any bytes and
 * any length round-trip; a checksum catches byte flips. */
static void untrusted_checkpoints(const unsigned char *data, size_t n) {
    lstm_charlm m;
    uint8_t *ids = tiny_model(&m, data, n, 4, 5, 1, 3, LSTM_CELL_LSTM);
    const int V = m.V;
    lstm_train_config c;
    lstm_train_config_default(&c);
    c.batch = 3;
    c.bptt = 7;
    lstm_trainer tr;
    lstm_trainer_init(&tr, &m, &c, ids, n);
    for (int k = 0; k < 3; k++) lstm_trainer_step(&tr, NULL);
    char path[] = "/tmp/lstm_test_ckpt_XXXXXX";
    close(mkstemp(path));
    lstm_st_file f;

    /* the settings: a flag error names the flag, a checkpoint error the file and key */
    lstm_train_run r;
    lstm_train_run_init(&r);
    CHECK(lstm_train_run_set(&r, "batch", "0", NULL) == LSTM_ERR_ARG && strstr(lstm_last_error(), "--batch"),
          "--batch 0: %s", lstm_last_error());
    CHECK(lstm_train_run_set(&r, "no-such", "1", NULL) == LSTM_ERR_MISSING, "unknown key");
    CHECK(lstm_train_run_set(&r, "keep", "worst", NULL) == LSTM_ERR_ARG && strstr(lstm_last_error(), "--keep"),
          "--keep worst: %s", lstm_last_error());
    CHECK(lstm_train_run_set(&r, "best_val", "1", NULL) == LSTM_ERR_MISSING, "the run's state is not a flag");
    /* the sizes a run was given against the model's (lstm_train_check_sizes) */
    {
        long sz[4] = {m.net.H, m.net.cfg.num_layers, m.E, m.net.cfg.proj_size};
        int given[4] = {1, 1, 1, 1};
        CHECK(lstm_train_check_sizes(&m, sz, given, "m.st") == LSTM_OK, "the model's own sizes given");
        static const char *const flag[4] = {"--hidden", "--layers", "--embed", "--proj"};
        for (int k = 0; k < 4; k++) {
            long s2[4] = {sz[0], sz[1], sz[2], sz[3]};
            int g2[4] = {0, 0, 0, 0};
            s2[k] += 3;
            CHECK_V(lstm_train_check_sizes(&m, s2, g2, "m.st") == LSTM_OK, "%s differs, not given", flag[k]);
            g2[k] = 1;
            char want[96];
            snprintf(want, sizeof want, "%s %ld conflicts with m.st, which has %ld", flag[k], s2[k], sz[k]);
            CHECK_V(lstm_train_check_sizes(&m, s2, g2, "m.st") == LSTM_ERR_ARG && strstr(lstm_last_error(), want),
                    "%s given and different: %s", flag[k], lstm_last_error());
        }
    }
    /* the run's cell against the model it continues (lstm_train_run_model_cell) */
    {
        lstm_train_run v;
        lstm_train_run_init(&v); /* no --cell: an init file's cell is adopted */
        CHECK(lstm_train_run_model_cell(&v, LSTM_CELL_GRU, "g.st", 0) == LSTM_OK && v.cell == LSTM_CELL_GRU,
              "--init a GRU file: the run's cell is gru (%d)", v.cell);
        lstm_train_run_free(&v);
        lstm_train_run_init(&v); /* no --cell, a checkpoint whose metadata says lstm and whose tensors are a GRU */
        CHECK(lstm_train_run_model_cell(&v, LSTM_CELL_GRU, "g.ckpt", 1) == LSTM_ERR_FORMAT &&
                  strstr(lstm_last_error(), "g.ckpt: checkpoint metadata 'train.cell' says lstm"),
              "resume: metadata against tensors: %s", lstm_last_error());
        lstm_train_run_set(&v, "cell", "gru", NULL);
        for (int resume = 0; resume < 2; resume++)
            CHECK_V(lstm_train_run_model_cell(&v, LSTM_CELL_LSTM, "a.st", resume) == LSTM_ERR_ARG &&
                        strstr(lstm_last_error(), "--cell gru conflicts with a.st, which holds an LSTM model") &&
                        v.cell == LSTM_CELL_GRU,
                    "--cell gru against an LSTM file (resume %d): %s", resume, lstm_last_error());
        CHECK(lstm_train_run_model_cell(&v, LSTM_CELL_GRU, "g.st", 1) == LSTM_OK, "--cell gru, a GRU file");
        CHECK(lstm_train_run_model_cell(&v, 7, "x.st", 0) == LSTM_ERR_ARG, "an unknown cell kind");
        lstm_train_run_free(&v);
    }
    /* --keep best and --patience compare validation losses: none (val-fraction 0) is refused */
    static const char *const nv[][2] = {{"keep", "best"}, {"patience", "2"}};
    for (int i = 0; i < 2; i++) {
        lstm_train_run v;
        lstm_train_run_init(&v);
        lstm_train_run_set(&v, nv[i][0], nv[i][1], NULL);
        lstm_train_run_set(&v, "steps", "5", NULL);
        lstm_status st = lstm_train_run_total(&v, 10);
        CHECK_V(st == LSTM_OK, "--%s %s with validation: %s", nv[i][0], nv[i][1], st ? lstm_last_error() : "accepted");
        lstm_train_run_set(&v, "val-fraction", "0", NULL);
        char want[64];
        snprintf(want, sizeof want, "--%s %s needs validation data", nv[i][0], nv[i][1]);
        CHECK_V(lstm_train_run_total(&v, 10) == LSTM_ERR_ARG && strstr(lstm_last_error(), want),
                "--%s %s --val-fraction 0 refused: %s", nv[i][0], nv[i][1], lstm_last_error());
        lstm_train_run_free(&v);
    }
    static const char *const bad[][2] = {
        {"train.batch", "0"}, {"train.bptt", "0"}, {"train.val-fraction", "-0.5"}, {"train.optimizer", "adcm"},
        {"train.steps", "-5"}, {"train.steps", "18446744073709551615"}, {"train.lr", "nan"},
        {"train.schedule", "cosinE"}, {"train.nesterov", "2"}, {"train.seed", "-1"}, {"train.batch", " 4"},
        {"train.data", "a\\x00b"}, {"train.data", "a\\q"}, {"train.dropout", "1"}, {"train.epochs", "0"},
        {"train.keep", "Best"}, {"train.patience", "-1"}, {"train.best_val", "nan"}, {"train.best_val", "-1"},
        {"train.best_val", "-inf"}, {"train.bad_evals", "x"}, {"train.bad_evals", "-2"},
        {"train.cell", "rnn"}, {"train.cell", "GRU"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *kv[] = {bad[i][0], bad[i][1], NULL};
        CHECK(lstm_trainer_save(&tr, path, kv) == LSTM_OK, "save: %s", lstm_last_error());
        CHECK(lstm_st_read(&f, path) == LSTM_OK, "read: %s", lstm_last_error());
        lstm_train_run_free(&r);
        lstm_train_run_init(&r);
        lstm_status st = lstm_train_run_restore(&r, &f, path);
        char want[64];
        snprintf(want, sizeof want, "'%s'", bad[i][0]);
        CHECK_V(st == LSTM_ERR_ARG && strstr(lstm_last_error(), path) && strstr(lstm_last_error(), want),
                "checkpoint %s = \"%s\" refused: %s", bad[i][0], bad[i][1], lstm_last_error());
        lstm_st_free(&f);
    }
    /* the trainer's own state: step out of range */
    int64_t steps[2] = {-5, INT64_MAX};
    for (int i = 0; i < 2; i++) {
        int64_t keep = tr.step;
        tr.step = steps[i];
        CHECK(lstm_trainer_save(&tr, path, NULL) == LSTM_OK, "save: %s", lstm_last_error());
        tr.step = keep;
        CHECK(lstm_st_read(&f, path) == LSTM_OK, "read: %s", lstm_last_error());
        lstm_trainer t2;
        lstm_trainer_init(&t2, &m, &c, ids, n);
        lstm_status st = lstm_trainer_restore(&t2, &f, path);
        CHECK_V(st != LSTM_OK && strstr(lstm_last_error(), "'train.step'") && t2.step == 0,
                "checkpoint train.step = %lld refused: %s", (long long)steps[i], lstm_last_error());
        lstm_trainer_free(&t2);
        lstm_st_free(&f);
    }

    /* paths: bytes that are not UTF-8, backslashes, 600+ bytes */
    char longp[700] = "d\xe9j\xe0/\\x41\\\\/";
    size_t ln = strlen(longp);
    for (; ln < 650; ln++) longp[ln] = (char)('a' + ln % 26);
    memcpy(longp + ln, "/donn\xe9\x65s.txt\xff\xc3", 15);
    lstm_train_run_free(&r);
    lstm_train_run_init(&r);
    lstm_train_run_set(&r, "data", longp, NULL);
    lstm_train_run_set(&r, "out", "caf\xc3\xa9.st", NULL);
    lstm_train_run_set(&r, "keep", "best", NULL);
    lstm_train_run_set(&r, "patience", "3", NULL);
    r.bad_evals = 2;
    const char *const *meta = lstm_train_run_meta(&r);
    CHECK(meta != NULL && lstm_trainer_save(&tr, path, meta) == LSTM_OK, "save with paths: %s", lstm_last_error());
    CHECK(lstm_st_read(&f, path) == LSTM_OK, "a checkpoint with a non-UTF-8 path must read back: %s", lstm_last_error());
    lstm_train_run r2;
    lstm_train_run_init(&r2);
    CHECK(lstm_train_run_restore(&r2, &f, path) == LSTM_OK, "restore: %s", lstm_last_error());
    CHECK_V(r2.data && strcmp(r2.data, longp) == 0, "a %zu-byte path with non-UTF-8 bytes and backslashes round-trips",
            strlen(longp));
    CHECK(r2.out == NULL, "the destinations of a file that is not its run's checkpoint are not taken");
    CHECK(r2.keep_best == 1 && r2.patience == 3 && r2.bad_evals == 2 && isinf(r2.best_val),
          "keep, patience and the run's state round-trip (keep %d, patience %lld, bad_evals %lld, best_val %g)",
          r2.keep_best, (long long)r2.patience, (long long)r2.bad_evals, r2.best_val);
    lstm_train_run_free(&r2);
    lstm_st_free(&f);

    /* byte flips anywhere are caught: by the reader or by the checksum */
    CHECK(lstm_trainer_save(&tr, path, meta) == LSTM_OK, "save: %s", lstm_last_error());
    size_t size;
    unsigned char *img = slurp(path, &size);
    int flips = 0, caught = 0;
    for (size_t pos = 0; img && pos < size; pos += 1 + pos % 53) {
        for (int bit = 0; bit < 8; bit += 3) {
            unsigned char *b = malloc(size);
            memcpy(b, img, size);
            b[pos] ^= (unsigned char)(1u << bit);
            flips++;
            if (lstm_st_parse(&f, b, size) != LSTM_OK) {
                caught++;
                continue;
            }
            lstm_train_run_init(&r2);
            lstm_trainer t2;
            lstm_trainer_init(&t2, &m, &c, ids, n);
            if (lstm_train_run_restore(&r2, &f, path) != LSTM_OK || lstm_trainer_restore(&t2, &f, path) != LSTM_OK)
                caught++;
            lstm_trainer_free(&t2);
            lstm_train_run_free(&r2);
            lstm_st_free(&f);
        }
    }
    CHECK_V(flips > 100 && caught == flips, "checkpoint byte flips caught: %d of %d", caught, flips);

    /* --keep best on resume (lstm_train_run_check_resume): the best weights so far must be in --out */
    {
        static const struct { const char *keep, *best, *out, *given_keep; lstm_status want; const char *msg; } kb[] = {
            {"last", "1.5", NULL, "best", LSTM_ERR_ARG, "whose run kept its last weights"},
            {"best", "1.5", "/nonexistent/lstm_test.st", NULL, LSTM_ERR_IO, "does not exist"},
            {"best", "1.5", "PATH", NULL, LSTM_OK, NULL},       /* its --out exists */
            {"best", "1.5", NULL, NULL, LSTM_OK, NULL},         /* no --out yet: the caller's error */
            {"last", "inf", "/nonexistent/lstm_test.st", "best", LSTM_OK, NULL}, /* no best so far */
            {"last", "1.5", "/nonexistent/lstm_test.st", NULL, LSTM_OK, NULL},   /* --keep last */
        };
        for (size_t i = 0; i < sizeof kb / sizeof kb[0]; i++) {
            const char *kv[] = {"train.keep", kb[i].keep, "train.best_val", kb[i].best, NULL};
            CHECK(lstm_trainer_save(&tr, path, kv) == LSTM_OK, "save: %s", lstm_last_error());
            CHECK(lstm_st_read(&f, path) == LSTM_OK, "read: %s", lstm_last_error());
            lstm_train_run r3;
            lstm_train_run_init(&r3);
            if (kb[i].given_keep) lstm_train_run_set(&r3, "keep", kb[i].given_keep, NULL);
            if (kb[i].out) lstm_train_run_set(&r3, "out", strcmp(kb[i].out, "PATH") ? kb[i].out : path, NULL);
            CHECK(lstm_train_run_restore(&r3, &f, path) == LSTM_OK, "restore: %s", lstm_last_error());
            lstm_status st = lstm_train_run_check_resume(&r3, &f, path);
            CHECK_V(st == kb[i].want && (!kb[i].msg || strstr(lstm_last_error(), kb[i].msg)),
                    "resume a --keep %s run (best %s) with keep %s, out %s: status %d (want %d): %s", kb[i].keep,
                    kb[i].best, kb[i].given_keep ? kb[i].given_keep : "-", kb[i].out ? kb[i].out : "-", (int)st,
                    (int)kb[i].want, st ? lstm_last_error() : "ok");
            lstm_train_run_free(&r3);
            lstm_st_free(&f);
        }
    }

    /* batch, bptt and val-fraction cannot change on resume (lstm_train_run_check_resume): a flag
     * other than the checkpoint's is refused, naming the setting, both values and the file; the
     * checkpoint's own values pass; without metadata the checkpoint's are the defaults */
    {
        static const struct { int meta; const char *key, *value, *want; } fx[] = {
            {1, "batch", "8", "--batch 8 conflicts with %s, which was trained with batch 4 "},
            {1, "bptt", "32", "--bptt 32 conflicts with %s, which was trained with bptt 16 "},
            {1, "val-fraction", "0.5", "--val-fraction 0.5 conflicts with %s, which was trained with val-fraction 0.25 "},
            {1, "val-fraction", "0", "--val-fraction 0 conflicts with %s, which was trained with val-fraction 0.25 "},
            {1, "batch", "4", NULL}, {1, "bptt", "16", NULL}, {1, "val-fraction", "0.25", NULL}, {1, NULL, NULL, NULL},
            {0, "batch", "4", "--batch 4 conflicts with %s, which was trained with batch 32 "},
            {0, "batch", "32", NULL}, {0, "bptt", "64", NULL}, {0, "val-fraction", "0.1", NULL},
        };
        for (size_t i = 0; i < sizeof fx / sizeof fx[0]; i++) {
            const char *kv[] = {"train.batch", "4", "train.bptt", "16", "train.val-fraction", "0.25", NULL};
            CHECK(lstm_trainer_save(&tr, path, fx[i].meta ? kv : NULL) == LSTM_OK, "save: %s", lstm_last_error());
            CHECK(lstm_st_read(&f, path) == LSTM_OK, "read: %s", lstm_last_error());
            lstm_train_run r3;
            lstm_train_run_init(&r3);
            if (fx[i].key) lstm_train_run_set(&r3, fx[i].key, fx[i].value, NULL);
            CHECK(lstm_train_run_restore(&r3, &f, path) == LSTM_OK, "restore: %s", lstm_last_error());
            lstm_status st = lstm_train_run_check_resume(&r3, &f, path);
            char want[512] = "";
            if (fx[i].want) snprintf(want, sizeof want, fx[i].want, path);
            CHECK_V(fx[i].want ? st == LSTM_ERR_ARG && strstr(lstm_last_error(), want) : st == LSTM_OK,
                    "resume a checkpoint %s with --%s %s: status %d, want %s: %s",
                    fx[i].meta ? "of batch 4, bptt 16, val-fraction 0.25" : "without settings",
                    fx[i].key ? fx[i].key : "(none)", fx[i].value ? fx[i].value : "", (int)st,
                    fx[i].want ? "refused" : "ok", st ? lstm_last_error() : "ok");
            lstm_train_run_free(&r3);
            lstm_st_free(&f);
        }
    }

    /* a model file is not a training checkpoint (lstm_train_run_restore); the data of a resume
     * must be the checkpoint's (lstm_train_check_data) */
    {
        lstm_charlm_tensor t[32];
        int nt = lstm_charlm_tensors(&m, t);
        lstm_st_entry e[32];
        for (int i = 0; i < nt; i++)
            e[i] = (lstm_st_entry){.name = t[i].name, .ndim = t[i].ndim, .shape = {t[i].shape[0], t[i].shape[1]}, .data = t[i].param};
        CHECK(lstm_st_write(path, e, nt, NULL) == LSTM_OK, "write: %s", lstm_last_error());
        CHECK(lstm_st_read(&f, path) == LSTM_OK, "read: %s", lstm_last_error());
        lstm_train_run r3;
        lstm_train_run_init(&r3);
        lstm_status st = lstm_train_run_restore(&r3, &f, path);
        CHECK_V(st == LSTM_ERR_FORMAT && strstr(lstm_last_error(), "not a training checkpoint (no 'train.step' metadata)") &&
                    strstr(lstm_last_error(), path),
                "restore of a model file refused: %s", st ? lstm_last_error() : "ok");
        lstm_train_run_free(&r3);
        CHECK_V(lstm_train_check_data(&f, path, 42, "d.txt") == LSTM_OK, "a file without train.data_hash: any data");
        lstm_st_free(&f);
        const char *kv[] = {"train.data_hash", "00000000000000ff", NULL};
        CHECK(lstm_trainer_save(&tr, path, kv) == LSTM_OK, "save: %s", lstm_last_error());
        CHECK(lstm_st_read(&f, path) == LSTM_OK, "read: %s", lstm_last_error());
        CHECK_V(lstm_train_check_data(&f, path, 0xff, "d.txt") == LSTM_OK, "the checkpoint's own data passes");
        st = lstm_train_check_data(&f, path, 0x100, "d.txt");
        char want[512];
        snprintf(want, sizeof want, "%s: this checkpoint was trained on other data (hash 00000000000000ff), but d.txt has hash 0000000000000100", path);
        CHECK_V(st == LSTM_ERR_ARG && strstr(lstm_last_error(), want), "other data refused: %s", st ? lstm_last_error() : "ok");
        lstm_st_free(&f);
        /* the hash it compares: FNV-1a 64's published test vectors */
        CHECK_V(lstm_train_data_hash("", 0) == 0xcbf29ce484222325ULL && lstm_train_data_hash("a", 1) == 0xaf63dc4c8601ec8cULL &&
                    lstm_train_data_hash("foobar", 6) == 0x85944171f73967e8ULL,
                "lstm_train_data_hash: %016" PRIx64 " %016" PRIx64 " %016" PRIx64, lstm_train_data_hash("", 0),
                lstm_train_data_hash("a", 1), lstm_train_data_hash("foobar", 6));
    }

    /* a wrong embedding shape: the message gives the model's sizes (read before the free) */
    {
        lstm_charlm_tensor t[32];
        int nt = lstm_charlm_tensors(&m, t);
        lstm_st_entry e[32];
        float *big = calloc((size_t)V * 5, sizeof(float));
        for (int i = 0; i < nt; i++) {
            e[i] = (lstm_st_entry){.name = t[i].name, .ndim = t[i].ndim, .shape = {t[i].shape[0], t[i].shape[1]}, .data = t[i].param};
            if (!strcmp(t[i].name, "embedding.weight")) e[i].shape[1] = 5, e[i].data = big;
        }
        char vj[4 * 256 + 3];
        lstm__vocab_json(&m, vj);
        const char *kv[] = {"vocab", vj, NULL};
        CHECK(lstm_st_write(path, e, nt, kv) == LSTM_OK, "write: %s", lstm_last_error());
        lstm_charlm g;
        char want[64];
        snprintf(want, sizeof want, "expected shape [%d, 4]", V);
        CHECK_V(lstm_charlm_load(&g, path) == LSTM_ERR_SHAPE && strstr(lstm_last_error(), want),
                "embedding [V, 5] for an LSTM of input 4: %s", lstm_last_error());
        /* the head: the whole shape found (it gave only its first size) */
        float *big2 = calloc((size_t)V * (m.net.Hout + 1), sizeof(float));
        for (int i = 0; i < nt; i++) {
            e[i] = (lstm_st_entry){.name = t[i].name, .ndim = t[i].ndim, .shape = {t[i].shape[0], t[i].shape[1]}, .data = t[i].param};
            if (!strcmp(t[i].name, "head.weight")) e[i].shape[1] = m.net.Hout + 1, e[i].data = big2;
        }
        CHECK(lstm_st_write(path, e, nt, kv) == LSTM_OK, "write: %s", lstm_last_error());
        snprintf(want, sizeof want, "expected shape [%d, %d], got [%d, %d]", V, m.net.Hout, V, m.net.Hout + 1);
        CHECK_V(lstm_charlm_load(&g, path) == LSTM_ERR_SHAPE && strstr(lstm_last_error(), want),
                "head.weight [V, Hout + 1]: %s", lstm_last_error());
        free(big2);
        free(big);
    }
    free(img);
    lstm_train_run_free(&r);
    lstm_trainer_free(&tr);
    lstm_charlm_free(&m);
    free(ids);
    unlink(path);
}

/* lstm_trainer_set_bytes: a byte outside the vocabulary fails the step naming the
 * byte and its offset (not the id it maps to); lstm_charlm_load's shape error gives
 * the whole shape it found. */
static void bytes_outside_vocab(void) {
    unsigned char data[64];
    for (int i = 0; i < 64; i++) data[i] = (unsigned char)"abc"[i % 3];
    lstm_charlm m;
    uint8_t *ids = tiny_model(&m, data, 64, 4, 8, 1, 3, 0);
    data[40] = 0;
    lstm_train_config c;
    lstm_train_config_default(&c);
    c.batch = 2;
    c.bptt = 4;
    lstm_trainer tr;
    CHECK(lstm_trainer_init(&tr, &m, &c, data, 64) == LSTM_OK, "bytes: trainer: %s", lstm_last_error());
    lstm_trainer_set_bytes(&tr, 1);
    lstm_status st = LSTM_OK;
    int k = 0;
    for (; k < 20 && !st; k++) st = lstm_trainer_step(&tr, NULL);
    CHECK_V(st == LSTM_ERR_ARG && strstr(lstm_last_error(), "byte 0x00 at offset 40 is not in the model's vocabulary (3 bytes)"),
            "raw bytes with one outside the vocabulary: step %d fails naming it: %s", k, lstm_last_error());
    double loss;
    st = lstm_trainer_validate(&tr, data + 20, 40, &loss);
    CHECK_V(st == LSTM_ERR_ARG && strstr(lstm_last_error(), "byte 0x00 at offset 20 is not in the model's vocabulary"),
            "raw bytes with one outside the vocabulary: validation fails naming it: %s", lstm_last_error());
    lstm_trainer_free(&tr);
    lstm_charlm_free(&m);
    free(ids);
}

/* lstm.h: every *_free accepts NULL and zeroed structs (a crash fails the run). */
static void frees_accept_null(void) {
    lstm_net_free(NULL);
    lstm_st_free(NULL);
    lstm_array_free(NULL);
    lstm_workspace_free(NULL);
    lstm_state_free(NULL);
    lstm_charlm_free(NULL);
    lstm_charlm_ws_free(NULL);
    lstm_charlm_sampler_free(NULL);
    lstm_trainer_free(NULL);
    lstm_train_run_free(NULL);
    lstm_net net;
    lstm_charlm m;
    lstm_trainer tr;
    lstm_train_run r;
    lstm_state s;
    lstm_array a;
    memset(&net, 0, sizeof net);
    memset(&m, 0, sizeof m);
    memset(&tr, 0, sizeof tr);
    memset(&r, 0, sizeof r);
    memset(&s, 0, sizeof s);
    memset(&a, 0, sizeof a);
    lstm_net_free(&net);
    lstm_charlm_free(&m);
    lstm_trainer_free(&tr);
    lstm_train_run_free(&r);
    lstm_state_free(&s);
    lstm_array_free(&a);
    CHECK(1, "every *_free took NULL and a zeroed struct");
}

/* Two models, each with its own trainer, saved and restored in two threads at
 * once (as the Python package does with the GIL released): nothing may be
 * shared between them.  The checkpoint checksum once sorted through static
 * variables, so one thread's save could hash in the other's order (a
 * "damaged" checkpoint) or read its freed names (a crash). */
typedef struct {
    const unsigned char *data;
    size_t n;
    int cell, failed_at;
    char err[512];
} par_save;

static void *par_save_main(void *p) {
    par_save *ps = p;
    lstm_charlm m;
    uint8_t *ids = tiny_model(&m, ps->data, ps->n, 6, 8, 1 + ps->cell, 11, ps->cell);
    lstm_train_config c;
    lstm_train_config_default(&c);
    c.batch = 2;
    c.bptt = 5;
    lstm_trainer tr;
    lstm_status st = lstm_trainer_init(&tr, &m, &c, ids, ps->n);
    if (!st) st = lstm_trainer_step(&tr, NULL);
    char path[] = "/tmp/lstm_test_train_par_XXXXXX";
    int fd = mkstemp(path);
    if (fd >= 0) close(fd);
    ps->failed_at = -1;
    for (int k = 0; k < 40 && !st && fd >= 0; k++) {
        lstm_st_file f;
        memset(&f, 0, sizeof f);
        if (!(st = lstm_trainer_save(&tr, path, NULL)) && !(st = lstm_st_read(&f, path)))
            st = lstm_trainer_restore(&tr, &f, path);
        lstm_st_free(&f);
        if (st) ps->failed_at = k;
    }
    if (st || fd < 0) snprintf(ps->err, sizeof ps->err, "%s", fd < 0 ? "mkstemp failed" : lstm_last_error());
    if (fd >= 0) unlink(path);
    lstm_trainer_free(&tr);
    lstm_charlm_free(&m);
    free(ids);
    return NULL;
}

static void parallel_saves(const unsigned char *data, size_t n) {
    par_save ps[2] = {{data, n, LSTM_CELL_LSTM, 0, ""}, {data, n, LSTM_CELL_GRU, 0, ""}};
    pthread_t th[2];
    int made[2];
    for (int i = 0; i < 2; i++) made[i] = pthread_create(&th[i], NULL, par_save_main, &ps[i]) == 0;
    for (int i = 0; i < 2; i++)
        if (made[i]) pthread_join(th[i], NULL);
    for (int i = 0; i < 2; i++)
        CHECK_V(made[i] && !ps[i].err[0], "two trainers in two threads, 40 saves + restores each at once: %s %s%s",
                i ? "gru" : "lstm", ps[i].err[0] ? "failed: " : "ok", ps[i].err);
}

int main(void) {
    frees_accept_null();
    bytes_outside_vocab();
    size_t n;
    unsigned char *data = slurp("tests/fixtures/train/data.txt", &n);
    CHECK(data != NULL, "tests/fixtures/train/data.txt missing");
    if (!data) return TEST_REPORT();
    formulas();
    bad_inputs(data, n);
    fixture_case("adam_clip", data, n);
    fixture_case("adamw_cosine_proj", data, n);
    fixture_case("sgd_nesterov", data, n);
    fixture_case("gru_adam_clip", data, n);
    fixture_case("gru_adamw_cosine", data, n);
    fixture_case("gru_sgd_nesterov", data, n);
    cell_from_names(data, n);
    one_buffer(data, n, LSTM_CELL_LSTM);
    one_buffer(data, n, LSTM_CELL_GRU);
    resume_case(data, n, LSTM_OPT_ADAM, 0.0, LSTM_CELL_LSTM);
    resume_case(data, n, LSTM_OPT_ADAM, 0.3, LSTM_CELL_LSTM);
    resume_case(data, n, LSTM_OPT_SGD, 0.0, LSTM_CELL_LSTM);
    resume_case(data, n, LSTM_OPT_ADAM, 0.3, LSTM_CELL_GRU);
    resume_case(data, n, LSTM_OPT_SGD, 0.0, LSTM_CELL_GRU);
    nonfinite(data, n);
    untrusted_checkpoints(data, n);
    parallel_saves(data, n);
    free(data);
    return TEST_REPORT();
}
