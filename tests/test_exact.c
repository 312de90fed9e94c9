/* test_exact.c — the exact gradient sums of training (src/train/exact.c):
 * the fixed-point kernels (rounding, AVX-512 = scalar bits), loss sums that
 * do not depend on grouping, one step's exact gradient against the plain
 * float backward (lstm_charlm_backward) within float32 rounding, and the
 * trainer split over 2, 4 and 8 "ranks" (threads with an in-process reducer,
 * no MPI) and over threads: the same parameters, optimizer state, carried
 * state, losses and validation loss as one trainer, bit for bit, with dropout
 * (and, for the LSTM, a projection); the same for the GRU char model. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "train/train_internal.h"

/* ---------------------------------------------------------------- in-process reducer */

typedef struct {
    pthread_barrier_t bar;
    int size;
    void *slot[8];
} shared;

typedef struct {
    shared *sh;
    int rank;
} rank_ctx;

static int r_max(void *ctx, float *buf, size_t n) {
    rank_ctx *c = ctx;
    float *tmp = malloc(n * sizeof(float));
    c->sh->slot[c->rank] = buf;
    pthread_barrier_wait(&c->sh->bar);
    for (size_t i = 0; i < n; i++) {
        float m = ((float *)c->sh->slot[0])[i];
        for (int r = 1; r < c->sh->size; r++) {
            float v = ((float *)c->sh->slot[r])[i];
            if (v > m || v != v) m = v;
        }
        tmp[i] = m;
    }
    pthread_barrier_wait(&c->sh->bar);
    memcpy(buf, tmp, n * sizeof(float));
    free(tmp);
    return 0;
}

static int r_sum(void *ctx, int64_t *buf, size_t n) {
    rank_ctx *c = ctx;
    int64_t *tmp = malloc(n * sizeof(int64_t));
    c->sh->slot[c->rank] = buf;
    pthread_barrier_wait(&c->sh->bar);
    for (size_t i = 0; i < n; i++) { /* each rank adds in its own order: the sums are integers */
        int64_t s = 0;
        for (int k = 0; k < c->sh->size; k++) s += ((int64_t *)c->sh->slot[(k + c->rank) % c->sh->size])[i];
        tmp[i] = s;
    }
    pthread_barrier_wait(&c->sh->bar);
    memcpy(buf, tmp, n * sizeof(int64_t));
    free(tmp);
    return 0;
}

static int r_gather(void *ctx, float *buf, size_t n) {
    rank_ctx *c = ctx;
    c->sh->slot[c->rank] = buf;
    pthread_barrier_wait(&c->sh->bar);
    for (int r = 0; r < c->sh->size; r++)
        if (r != c->rank) memcpy(buf + (size_t)r * n, (float *)c->sh->slot[r] + (size_t)r * n, n * sizeof(float));
    pthread_barrier_wait(&c->sh->bar);
    return 0;
}

/* ---------------------------------------------------------------- one run */

enum { NDATA = 1000, NVAL = 400, STEPS = 14 }; /* 10 steps per epoch */
static uint8_t data[NDATA + NVAL];

typedef struct {
    int cell, rank, size, threads;
    int detour; /* first a reducer of 2 ranks, then none again */
    shared *sh;
    lstm_charlm model;
    lstm_trainer tr;
    double loss[STEPS], val;
    lstm_status st;
} run;

static void *run_main(void *arg) {
    run *r = arg;
    rank_ctx ctx = {r->sh, r->rank};
    lstm_reducer red = {r->rank, r->size, &ctx, r_max, r_sum, r_gather};
    unsigned char vocab[256];
    int V;
    int gru = r->cell == LSTM_CELL_GRU;
    lstm_config cfg = {.input_size = 6, .hidden_size = 10, .num_layers = 2, .proj_size = gru ? 0 : 5, .bias = 1,
                       .cell = r->cell};
    lstm_train_config tc;
    lstm_train_config_default(&tc);
    tc.batch = 8;
    tc.bptt = 12;
    tc.dropout = 0.25;
    tc.clip = 0.5;
    lstm_charlm_vocab_of(data, NDATA + NVAL, vocab, &V);
    if ((r->st = lstm_charlm_init(&r->model, vocab, V, 6, &cfg))) return NULL;
    lstm_charlm_init_params(&r->model, 3);
    lstm_reducer two = {0, 2, NULL, r_max, r_sum, r_gather}; /* (set, never called) */
    if ((r->st = lstm_trainer_init(&r->tr, &r->model, &tc, data, NDATA)) ||
        (r->st = lstm_trainer_set_bytes(&r->tr, 1)) ||
        (r->detour && (r->st = lstm_trainer_set_reducer(&r->tr, &two))) ||
        (r->st = lstm_trainer_set_reducer(&r->tr, r->size > 1 ? &red : NULL)) ||
        (r->st = lstm_trainer_set_threads(&r->tr, r->threads)))
        return NULL;
    for (int s = 0; s < STEPS; s++) {
        lstm_step_info info;
        if ((r->st = lstm_trainer_step(&r->tr, &info))) return NULL;
        r->loss[s] = info.loss;
    }
    if ((r->st = lstm_trainer_validate(&r->tr, data + NDATA, NVAL, &r->val))) return NULL;
    r->st = lstm_trainer_sync_state(&r->tr);
    return NULL;
}

static int same_f(const float *a, const float *b, size_t n) { return n == 0 || memcmp(a, b, n * sizeof(float)) == 0; }

/* One step's exact gradient (lstm__exact_grads, one process, no dropout) against
 * the plain float backward of the same batch from the same state: each tensor
 * within 2e-6 of its largest entry (float32 sums in another order).  GRU: the
 * r and z rows of the b_ih and b_hh gradients are the same bits, the n rows
 * (da_n against da_n·r) are not.  P > 0: LSTM layers with a projection of
 * size P (H = 1024: m in rows of H + 16 floats, lstm__saved.ldm). */
static void check_vs_plain(int cell, int H, int B, int T, int P) {
    const char *name = cell == LSTM_CELL_GRU ? "GRU" : "LSTM";
    unsigned char vocab[256];
    int V;
    lstm_config cfg = {.input_size = 6, .hidden_size = H, .num_layers = 2, .bias = 1, .proj_size = P, .cell = cell};
    lstm_train_config tc;
    lstm_train_config_default(&tc);
    tc.batch = B;
    tc.bptt = T;
    lstm_charlm m;
    lstm_trainer tr;
    lstm_charlm_ws *ws = NULL;
    lstm_charlm_vocab_of(data, NDATA, vocab, &V);
    lstm_status st = lstm_charlm_init(&m, vocab, V, 6, &cfg);
    if (st) { CHECK_V(0, "%s: %s", name, lstm_last_error()); return; }
    lstm_charlm_init_params(&m, 9);
    size_t nh = lstm__charlm_h_floats(&m, B), nc = lstm__charlm_c_floats(&m, B), np = m.n_params;
    float *h = malloc(nh * sizeof(float)), *c = nc ? malloc(nc * sizeof(float)) : NULL;
    float *gx = malloc(np * sizeof(float));
    double err = 0.0, worst = 0.0;
    const char *where = "";
    int ok = 1, bias_ok = 1;
    if ((st = lstm_trainer_init(&tr, &m, &tc, data, NDATA)) || (st = lstm_trainer_set_bytes(&tr, 1)) ||
        (st = lstm_charlm_ws_init(&ws, &m, T, B, LSTM_WS_TRAIN))) {
        CHECK_V(0, "%s: %s", name, lstm_last_error());
        goto done;
    }
    for (int64_t k = 0; k < 3 && ok; k++) { /* steps 1, 2 start from a carried state */
        double lx, lp;
        int bad;
        memcpy(h, tr.h, nh * sizeof(float));
        if (nc) memcpy(c, tr.c, nc * sizeof(float));
        if ((st = lstm__exact_grads(&tr, k, &lx, &bad))) break;
        memcpy(gx, m.grads, np * sizeof(float));
        lstm_charlm_zero_grad(&m);
        if ((st = lstm_charlm_forward(&m, ws, T, tr.x, tr.y, h, c, &lp)) || (st = lstm_charlm_backward(&m, ws))) break;
        ok &= !bad && fabs(lx - lp) < 1e-6;
        /* per tensor: the embedding, each layer's four, the head's two */
        const float *t0[16];
        size_t tn[16];
        const char *tname[16] = {"embedding"}, *lname[2][5] = {{"w_ih_l0", "w_hh_l0", "b_ih_l0", "b_hh_l0", "w_hr_l0"},
                                                                {"w_ih_l1", "w_hh_l1", "b_ih_l1", "b_hh_l1", "w_hr_l1"}};
        int nt = 0, GH = m.net.G * H, Ho = m.net.Hout;
        t0[nt] = m.emb; tn[nt++] = (size_t)V * m.E;
        for (int l = 0; l < 2; l++) {
            const lstm_weights *w = &m.net.w[l];
            tname[nt] = lname[l][0]; t0[nt] = w->w_ih; tn[nt++] = (size_t)GH * w->in;
            tname[nt] = lname[l][1]; t0[nt] = w->w_hh; tn[nt++] = (size_t)GH * Ho;
            tname[nt] = lname[l][2]; t0[nt] = w->b_ih; tn[nt++] = (size_t)GH;
            tname[nt] = lname[l][3]; t0[nt] = w->b_hh; tn[nt++] = (size_t)GH;
            if (w->w_hr) { tname[nt] = lname[l][4]; t0[nt] = w->w_hr; tn[nt++] = (size_t)Ho * H; }
        }
        tname[nt] = "head.weight"; t0[nt] = m.head_w; tn[nt++] = (size_t)V * Ho;
        tname[nt] = "head.bias";
        t0[nt] = m.head_b; tn[nt++] = (size_t)V;
        for (int i = 0; i < nt; i++) {
            size_t o = (size_t)(t0[i] - m.params);
            double mx = 0.0;
            for (size_t j = 0; j < tn[i]; j++) mx = fmax(mx, fabs(m.grads[o + j]));
            double e = test_maxabs(gx + o, m.grads + o, tn[i]) / (mx > 0.0 ? mx : 1.0);
            if (!(e <= err)) { err = e; where = tname[i]; }
            worst = fmax(worst, mx);
        }
        for (int l = 0; l < 2; l++) { /* b_ih and b_hh gradients: rows fed by the same act column alike */
            const float *bi = gx + (m.net.w[l].b_ih - m.params), *bh = gx + (m.net.w[l].b_hh - m.params);
            if (cell == LSTM_CELL_GRU)
                bias_ok &= same_f(bi, bh, (size_t)2 * H) && memcmp(bi + 2 * H, bh + 2 * H, (size_t)H * sizeof(float)) != 0;
            else
                bias_ok &= same_f(bi, bh, (size_t)4 * H);
        }
    }
    if (st) CHECK_V(0, "%s: %s", name, lstm_last_error());
    else
        CHECK_V(ok && err < 2e-6 && worst > 0.0, "%s exact gradient vs the plain float backward, 3 steps (H %d, P %d, B %d, T %d): "
                "max |diff| / max |g| %.2e in %s (tol 2e-6), losses within 1e-6", name, H, P, B, T, err, where);
    CHECK_V(bias_ok, cell == LSTM_CELL_GRU ? "GRU: b_ih and b_hh gradients: r, z rows the same bits, n rows differ"
                                           : "LSTM: b_ih and b_hh gradients the same bits");
done:
    lstm_charlm_ws_free(ws);
    lstm_trainer_free(&tr);
    lstm_charlm_free(&m);
    free(h); free(c); free(gx);
}

static void run_ranks(int cell);

int main(void) {
    /* ---- rounding: ties to even, both signs; AVX-512 gives the scalar bits */
    {
        float x[] = {0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f, 3.25f, -3.75f, 0.0f};
        int64_t want[] = {0, 2, 2, 0, -2, -2, 3, -4, 0}, q[9] = {0};
        lstm__add_fixed_ref(q, x, 9, 1.0);
        CHECK_V(memcmp(q, want, sizeof q) == 0, "fixed point: rounds to nearest, ties to even, both signs");
    }
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq")) {
        enum { N = 1000 };
        static float x[N], g1[N], g2[N];
        static int64_t q1[N], q2[N];
        uint64_t s = 7;
        for (int i = 0; i < N; i++) x[i] = (lstm__rng_uniform(&s) - 0.5f) * (i % 7 ? 3.0f : 1e-20f);
        for (int i = 0; i < N; i += 97) x[i] = 0.5f + (float)(i % 5); /* ties */
        double sc = 0x1p40;
        lstm__add_fixed_ref(q1, x, N, sc);
        lstm__add_fixed_avx512(q2, x, N - 3, sc);
        lstm__add_fixed_avx512(q2 + N - 3, x + N - 3, 3, sc);
        lstm__add_fixed_ref(q1, x, N, 1.0); /* ties at scale 1 */
        lstm__add_fixed_avx512(q2, x, N, 1.0);
        CHECK_V(memcmp(q1, q2, sizeof q1) == 0, "fixed point: AVX-512 and scalar give the same integers (1000 values, ties)");
        lstm__from_fixed_ref(g1, q1, N, 0x1p-40);
        lstm__from_fixed_avx512(g2, q2, N, 0x1p-40);
        CHECK_V(same_f(g1, g2, N), "fixed point back to float: AVX-512 and scalar give the same bits");
    } else {
        TEST_SKIP("no AVX-512DQ: only the scalar fixed-point loops run");
    }
#endif
    /* ---- loss sums: any grouping, the same bits; non-finite rows flagged */
    {
        int64_t a[2] = {0, 0}, b[2] = {0, 0}, c[2] = {0, 0};
        uint64_t s = 11;
        double rows[500];
        for (int i = 0; i < 500; i++) rows[i] = 5.0 * lstm__rng_uniform(&s) + 1e-9 * i;
        for (int i = 0; i < 500; i++) lstm__lossq_add(a, rows[i]);
        for (int i = 499; i >= 0; i -= 2) lstm__lossq_add(b, rows[i]);
        for (int i = 0; i < 500; i += 2) lstm__lossq_add(c, rows[i]);
        lstm__lossq_merge(b, c);
        double va = lstm__lossq_value(a), vb = lstm__lossq_value(b);
        CHECK_V(memcmp(&va, &vb, sizeof va) == 0, "loss sums: two orders and groupings give the same bits (%.17g)", va);
        lstm__lossq_add(c, NAN);
        CHECK_V(isnan(lstm__lossq_value(c)), "loss sums: a NaN row makes the sum NaN");
        /* an +inf row (a -inf target logit) and a NaN row: NaN in any order or grouping,
         * as torch's mean (inf + nan = nan); +inf rows alone: +inf */
        int64_t d[2] = {0, 0}, e[2] = {0, 0}, f[2] = {0, 0}, g[2] = {0, 0}, h[2] = {0, 0};
        lstm__lossq_add(d, 1.0);
        lstm__lossq_add(d, INFINITY);
        lstm__lossq_add(d, NAN);          /* inf, then NaN, one sum */
        lstm__lossq_add(e, INFINITY);
        lstm__lossq_add(f, NAN);
        lstm__lossq_merge(e, f);          /* inf's sum, then NaN's merged in */
        lstm__lossq_add(g, NAN);
        lstm__lossq_add(h, INFINITY);
        lstm__lossq_add(h, 2.0);
        lstm__lossq_merge(g, h);          /* NaN's sum, then inf's */
        lstm__lossq_merge(h, h);          /* inf and inf */
        CHECK_V(isnan(lstm__lossq_value(d)) && isnan(lstm__lossq_value(e)) && isnan(lstm__lossq_value(g)) &&
                    lstm__lossq_value(h) == INFINITY,
                "loss sums: inf and NaN rows give NaN in any order (%g, %g, %g), inf rows alone inf (%g)",
                lstm__lossq_value(d), lstm__lossq_value(e), lstm__lossq_value(g), lstm__lossq_value(h));
    }
    uint64_t s = 5;
    for (int i = 0; i < NDATA + NVAL; i++) data[i] = (uint8_t)("abcdefgh ij\n"[(lstm__rng_next(&s) >> 33) % 12]);
    /* ---- one step's exact gradient against the plain backward */
    check_vs_plain(LSTM_CELL_LSTM, 10, 8, 12, 0);
    check_vs_plain(LSTM_CELL_LSTM, 1024, 4, 5, 16); /* m in rows of H + 16 */
    check_vs_plain(LSTM_CELL_GRU, 10, 8, 12, 0);
    check_vs_plain(LSTM_CELL_GRU, 40, 16, 20, 0); /* 4H = 160: a job's 64 act columns span two blocks */
    for (int cell = 0; cell < 2; cell++)
        run_ranks(cell);
    return TEST_REPORT();
}

/* The trainer on 1 process (1 and 3 threads) vs 2, 4 and 8 ranks (threads 2, 1, 1). */
static void run_ranks(int cell) {
    const char *name = cell == LSTM_CELL_GRU ? "GRU" : "LSTM";
    run one = {.cell = cell, .rank = 0, .size = 1, .threads = 1};
    run_main(&one);
    CHECK_V(one.st == LSTM_OK, "%s: one trainer: %s", name, one.st ? lstm_last_error() : "ok");
    /* a reducer of 2 ranks set and then taken away again: the trainer of all the streams (it kept
     * the half-batch workspace, and its steps overflowed it) */
    run back = {.cell = cell, .rank = 0, .size = 1, .threads = 1, .detour = 1};
    run_main(&back);
    CHECK_V(back.st == LSTM_OK && one.st == LSTM_OK &&
                same_f(back.model.params, one.model.params, one.model.n_params) &&
                memcmp(back.loss, one.loss, sizeof one.loss) == 0 && memcmp(&back.val, &one.val, sizeof one.val) == 0,
            "%s: set_reducer(2 ranks), then set_reducer(NULL): %d steps identical to one trainer's (%s)", name, STEPS,
            back.st ? lstm_last_error() : "ok");
    if (back.st == LSTM_OK) {
        lstm_trainer_free(&back.tr);
        lstm_charlm_free(&back.model);
    }
    const int sizes[] = {1, 2, 4, 8}, threads[] = {3, 2, 1, 1};
    for (int k = 0; k < 4 && one.st == LSTM_OK; k++) {
        int n = sizes[k];
        shared sh = {.size = n};
        pthread_barrier_init(&sh.bar, NULL, (unsigned)n);
        run *r = calloc((size_t)n, sizeof *r);
        pthread_t th[8];
        for (int i = 0; i < n; i++) {
            r[i] = (run){.cell = cell, .rank = i, .size = n, .threads = threads[k], .sh = &sh};
            pthread_create(&th[i], NULL, run_main, &r[i]);
        }
        for (int i = 0; i < n; i++) pthread_join(th[i], NULL);
        int ok = 1;
        for (int i = 0; i < n; i++) {
            ok &= r[i].st == LSTM_OK;
            if (!ok) break;
            ok &= same_f(r[i].model.net.params, one.model.net.params, one.model.net.n_params);
            ok &= same_f(r[i].model.params, one.model.params, one.model.n_params);
            ok &= same_f(r[i].tr.m1, one.tr.m1, one.tr.n_state) && same_f(r[i].tr.m2, one.tr.m2, one.tr.n_state);
            ok &= memcmp(r[i].loss, one.loss, sizeof one.loss) == 0;
            ok &= memcmp(&r[i].val, &one.val, sizeof one.val) == 0;
            size_t nh = lstm__charlm_h_floats(&one.model, 8), nc = lstm__charlm_c_floats(&one.model, 8);
            ok &= same_f(r[i].tr.h, one.tr.h, nh) && same_f(r[i].tr.c, one.tr.c, nc);
            ok &= r[i].tr.rng == one.tr.rng;
        }
        CHECK_V(ok, "%s: %d rank%s x %d threads, %d steps (dropout, %sepoch boundary): parameters, Adam moments, carried "
                    "state, losses and validation loss identical to one trainer on 1 thread", name, n, n > 1 ? "s" : "",
                threads[k], STEPS, cell == LSTM_CELL_GRU ? "" : "proj, ");
        for (int i = 0; i < n; i++) {
            lstm_trainer_free(&r[i].tr);
            lstm_charlm_free(&r[i].model);
        }
        free(r);
        pthread_barrier_destroy(&sh.bar);
    }
    lstm_trainer_free(&one.tr);
    lstm_charlm_free(&one.model);
}
