/* test_exact.c — the exact gradient sums of training (src/train/exact.c):
 * the fixed-point kernels (rounding, AVX-512 = scalar bits), loss sums that
 * do not depend on grouping, and the trainer split over 2 and 4 "ranks"
 * (threads with an in-process reducer, no MPI): the same parameters,
 * optimizer state, carried state, losses and validation loss as one trainer,
 * bit for bit, with dropout and a projection. */
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
    int rank, size, threads;
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
    lstm_config cfg = {.input_size = 6, .hidden_size = 10, .num_layers = 2, .proj_size = 5, .bias = 1};
    lstm_train_config tc;
    lstm_train_config_default(&tc);
    tc.batch = 8;
    tc.bptt = 12;
    tc.dropout = 0.25;
    tc.clip = 0.5;
    lstm_charlm_vocab_of(data, NDATA + NVAL, vocab, &V);
    if ((r->st = lstm_charlm_init(&r->model, vocab, V, 6, &cfg))) return NULL;
    lstm_charlm_init_params(&r->model, 3);
    if ((r->st = lstm_trainer_init(&r->tr, &r->model, &tc, data, NDATA)) ||
        (r->st = lstm_trainer_set_bytes(&r->tr, 1)) ||
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

static int same_f(const float *a, const float *b, size_t n) { return memcmp(a, b, n * sizeof(float)) == 0; }

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
        CHECK_V(1, "no AVX-512DQ: only the scalar fixed-point loops run");
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
    }
    /* ---- the trainer on 1 process vs 2 and 4 ranks (threads 1 and 2) */
    uint64_t s = 5;
    for (int i = 0; i < NDATA + NVAL; i++) data[i] = (uint8_t)("abcdefgh ij\n"[(lstm__rng_next(&s) >> 33) % 12]);
    run one = {.rank = 0, .size = 1, .threads = 1};
    run_main(&one);
    CHECK_V(one.st == LSTM_OK, "one trainer: %s", one.st ? lstm_last_error() : "ok");
    const int sizes[] = {2, 4, 8}, threads[] = {2, 1, 1};
    for (int k = 0; k < 3 && one.st == LSTM_OK; k++) {
        int n = sizes[k];
        shared sh = {.size = n};
        pthread_barrier_init(&sh.bar, NULL, (unsigned)n);
        run *r = calloc((size_t)n, sizeof *r);
        pthread_t th[8];
        for (int i = 0; i < n; i++) {
            r[i] = (run){.rank = i, .size = n, .threads = threads[k], .sh = &sh};
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
            size_t nh = (size_t)2 * 8 * one.model.net.Hout, nc = (size_t)2 * 8 * one.model.net.H;
            ok &= same_f(r[i].tr.h, one.tr.h, nh) && same_f(r[i].tr.c, one.tr.c, nc);
            ok &= r[i].tr.rng == one.tr.rng;
        }
        CHECK_V(ok, "%d ranks x %d threads, %d steps (dropout, proj, epoch boundary): parameters, Adam moments, carried state, "
                    "losses and validation loss identical to one trainer", n, threads[k], STEPS);
        for (int i = 0; i < n; i++) {
            lstm_trainer_free(&r[i].tr);
            lstm_charlm_free(&r[i].model);
        }
        free(r);
        pthread_barrier_destroy(&sh.bar);
    }
    lstm_trainer_free(&one.tr);
    lstm_charlm_free(&one.model);
    return TEST_REPORT();
}
