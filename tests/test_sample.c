/* test_sample.c — the sampler (lstm_charlm_sampler_*) against the plain
 * streaming loop: a prime through lstm_stream, then per byte lstm_stream on
 * the embedding row and the head by lstm_gemm_nt.  The logits after every
 * byte and the final state must be the same bits on 1, 2 and 3 threads, for
 * LSTM and GRU models, with projections, at H spanning one to several unit
 * groups; greedy bytes, draws, resumed calls and errors. */
#include <stdlib.h>
#include <string.h>

#include "../src/train/train_internal.h"
#include "test.h"

enum { V = 64 }; /* bytes 0x20..0x5f */

static void make_model_L(lstm_charlm *m, int cell, int E, int H, int P, int L, uint64_t seed) {
    unsigned char vocab[V];
    for (int v = 0; v < V; v++) vocab[v] = (unsigned char)(' ' + v);
    lstm_config cfg = {.cell = cell, .input_size = E, .hidden_size = H, .num_layers = L, .bias = 1, .proj_size = P};
    CHECK(lstm_charlm_init(m, vocab, V, E, &cfg) == LSTM_OK, "init: %s", lstm_last_error());
    lstm_charlm_init_params(m, seed);
    /* strong weights: the greedy loop wanders instead of settling on one byte */
    for (size_t i = 0; i < (size_t)V * m->net.Hout; i++) m->head_w[i] *= 8.0f;
    for (size_t i = 0; i < m->net.n_params; i++) m->net.params[i] *= 3.0f;
}

static void make_model(lstm_charlm *m, int cell, int E, int H, int P, uint64_t seed) {
    make_model_L(m, cell, E, H, P, 2, seed);
}

/* The reference: the plain streaming loop, one step at a time. */
typedef struct {
    const lstm_charlm *m;
    lstm_workspace *ws;
    lstm_state st;
    float *x, *y, *lg;
} ref_loop;

static void ref_init(ref_loop *r, const lstm_charlm *m) {
    r->m = m;
    lstm_workspace_init(&r->ws, &m->net, 100, 1, 0);
    lstm_state_init(&r->st, &m->net, 1);
    r->x = malloc(100 * (size_t)m->E * sizeof(float));
    r->y = malloc(100 * (size_t)m->net.Hout * sizeof(float));
    r->lg = malloc(V * sizeof(float));
}

static void ref_free(ref_loop *r) {
    lstm_workspace_free(r->ws);
    lstm_state_free(&r->st);
    free(r->x); free(r->y); free(r->lg);
}

/* bytes [0..n), n <= 100, as one lstm_stream block; logits of the last. */
static void ref_feed(ref_loop *r, const unsigned char *bytes, int n) {
    const lstm_charlm *m = r->m;
    for (int t = 0; t < n; t++) memcpy(r->x + (size_t)t * m->E, m->emb + (size_t)m->id[bytes[t]] * m->E, m->E * sizeof(float));
    CHECK(lstm_stream(&m->net, r->ws, &r->st, n, r->x, r->y) == LSTM_OK, "ref stream: %s", lstm_last_error());
    memcpy(r->lg, m->head_b, V * sizeof(float));
    lstm_gemm_nt(1, V, m->net.Hout, r->y + (size_t)(n - 1) * m->net.Hout, m->net.Hout, m->head_w, m->net.Hout, r->lg, V,
                 1.0f);
}

static void test_against_stream_L(int cell, int E, int H, int P, int L) {
    lstm_charlm m;
    make_model_L(&m, cell, E, H, P, L, 11 + (uint64_t)H);
    /* the step with layer 0's sums made a byte early (lstm__stream_act0_early): taken where the
     * sampler's workspace allows it, and then the same bits */
    lstm_workspace *w;
    CHECK(lstm_workspace_init(&w, &m.net, 64, 1, 0) == LSTM_OK, "workspace");
    const int early = lstm__stream_early_ok(&m.net, w), early0 = lstm__stream_early_runs();
    lstm_workspace_free(w);
    const unsigned char prime[] = "0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[]!\"#$%&()*+,-./0123456789:;<=>?@ABC";
    const int np = (int)sizeof prime - 1, n = 150; /* the prime: a block of 64 and one of 16 */
    const double temps[] = {0.0, 0.9};
    for (int ti = 0; ti < 2; ti++) {
        unsigned char bytes[3][150];
        for (int threads = 1; threads <= 3; threads++) {
            lstm_charlm_sampler *s;
            CHECK(lstm_charlm_sampler_init(&s, &m, threads) == LSTM_OK, "sampler: %s", lstm_last_error());
            lstm_charlm_sampler_reset(s, 5);
            ref_loop r;
            ref_init(&r, &m);
            CHECK(lstm_charlm_sampler_feed(s, prime, (size_t)np) == LSTM_OK, "feed: %s", lstm_last_error());
            ref_feed(&r, prime, np);
            int same = memcmp(lstm_charlm_sampler_logits(s), r.lg, V * sizeof(float)) == 0, steps = 0, distinct = 0;
            int seen[V] = {0};
            for (int k = 0; k < n && same; k++, steps++) {
                unsigned char b;
                CHECK(lstm_charlm_sampler_generate(s, &b, 1, temps[ti], ti ? 7 : 0) == LSTM_OK, "generate: %s",
                      lstm_last_error());
                bytes[threads - 1][k] = b;
                distinct += !seen[b - ' ']++;
                ref_feed(&r, &b, 1);
                same = memcmp(lstm_charlm_sampler_logits(s), r.lg, V * sizeof(float)) == 0;
            }
            /* then a second prime (a block through lstm_stream changes the state under the sums)
             * and 10 more bytes */
            const unsigned char more[] = "ZYXWVUTSRQPONMLKJIHG";
            if (same) {
                CHECK(lstm_charlm_sampler_feed(s, more, 20) == LSTM_OK, "feed: %s", lstm_last_error());
                ref_feed(&r, more, 20);
                same = memcmp(lstm_charlm_sampler_logits(s), r.lg, V * sizeof(float)) == 0;
            }
            for (int k = 0; k < 10 && same; k++) {
                unsigned char b;
                CHECK(lstm_charlm_sampler_generate(s, &b, 1, temps[ti], ti ? 7 : 0) == LSTM_OK, "generate: %s",
                      lstm_last_error());
                ref_feed(&r, &b, 1);
                same = memcmp(lstm_charlm_sampler_logits(s), r.lg, V * sizeof(float)) == 0;
            }
            CHECK_V(same && steps == n && distinct > 3,
                    "%s E %d H %d P %d L %d, T %.1f, %d threads: sampler logits == plain lstm_stream loop's after "
                    "the prime, each of %d bytes, a second prime and 10 more (%d equal, %d distinct bytes)",
                    cell == LSTM_CELL_GRU ? "gru" : "lstm", E, H, P, L, temps[ti], threads, n, steps, distinct);
            ref_free(&r);
            lstm_charlm_sampler_free(s);
        }
        CHECK_V(memcmp(bytes[0], bytes[1], n) == 0 && memcmp(bytes[0], bytes[2], n) == 0,
                "%s H %d T %.1f: the same %d bytes on 1, 2 and 3 threads", cell == LSTM_CELL_GRU ? "gru" : "lstm", H,
                temps[ti], n);
        /* lstm_charlm_generate: the same bytes; one call == calls of 1 + 49 + 100 bytes */
        unsigned char g[150], parts[150];
        CHECK(lstm_charlm_generate(&m, prime, (size_t)np, g, (size_t)n, temps[ti], ti ? 7 : 0, 5) == LSTM_OK,
              "generate: %s", lstm_last_error());
        lstm_charlm_sampler *s;
        lstm_charlm_sampler_init(&s, &m, 2);
        lstm_charlm_sampler_reset(s, 5);
        lstm_charlm_sampler_feed(s, prime, 30);
        lstm_charlm_sampler_feed(s, prime + 30, (size_t)np - 30);
        lstm_charlm_sampler_generate(s, parts, 1, temps[ti], ti ? 7 : 0);
        lstm_charlm_sampler_generate(s, parts + 1, 49, temps[ti], ti ? 7 : 0);
        lstm_charlm_sampler_generate(s, parts + 50, 100, temps[ti], ti ? 7 : 0);
        CHECK_V(memcmp(g, bytes[0], n) == 0 && memcmp(parts, g, n) == 0,
                "H %d T %.1f: lstm_charlm_generate == the sampler; prime in 2 pieces, bytes in 3 calls: the same",
                H, temps[ti]);
        lstm_charlm_sampler_free(s);
    }
    const int runs = lstm__stream_early_runs() - early0;
    CHECK_V(early ? runs > 6 * 150 : runs == 0, "%s E %d H %d P %d L %d: %s (%d steps)",
            cell == LSTM_CELL_GRU ? "gru" : "lstm", E, H, P, L,
            early ? "the bytes took the early-sums step" : "no early-sums step here", runs);
    lstm_charlm_free(&m);
}

static void test_against_stream(int cell, int E, int H, int P) { test_against_stream_L(cell, E, H, P, 2); }

static int cmp_desc(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x < y) - (x > y);
}

/* The top-k threshold against qsort's k-1-th of the descending sort, every k, on
 * values with many ties, ±0, ±inf, and NaN (the sort's own answer then). */
static void test_kth_largest(void) {
    uint64_t rng = 12345;
    int bad = 0, cases = 0;
    float x[90], tmp[90], srt[90];
    for (int trial = 0; trial < 300; trial++) {
        int n = 1 + (int)(lstm__rng_next(&rng) % 90);
        for (int i = 0; i < n; i++) {
            uint64_t r = lstm__rng_next(&rng);
            switch (r % 8) {
            case 0: x[i] = (float)(int)(r >> 8 & 3); break; /* ties */
            case 1: x[i] = (r >> 8 & 1) ? 0.0f : -0.0f; break;
            case 2: x[i] = (r >> 8 & 1) ? INFINITY : -INFINITY; break;
            case 3: x[i] = trial % 10 == 0 ? NAN : 1.5f; break;
            default: x[i] = lstm__rng_uniform(&rng) * 8.0f - 4.0f;
            }
        }
        memcpy(srt, x, (size_t)n * sizeof(float));
        qsort(srt, (size_t)n, sizeof(float), cmp_desc);
        for (int k = 1; k <= n; k++, cases++) {
            float got = lstm__kth_largest(tmp, x, n, k), want = srt[k - 1];
            bad += memcmp(&got, &want, sizeof got) != 0 && !(got == want); /* ±0 compare equal: the same draw */
        }
    }
    CHECK_V(bad == 0, "top-k threshold == qsort's, %d cases (k = 1..n, n <= 90, ties, ±0, ±inf, NaN): %d differ",
            cases, bad);
}

static void test_errors(void) {
    lstm_charlm m;
    make_model(&m, LSTM_CELL_LSTM, 8, 20, 0, 3);
    lstm_charlm_sampler *s = (lstm_charlm_sampler *)&m;
    CHECK(lstm_charlm_sampler_init(&s, &m, -1) == LSTM_ERR_ARG && s == NULL, "threads -1: LSTM_ERR_ARG, *s NULL");
    s = (lstm_charlm_sampler *)&m;
    CHECK(lstm_charlm_sampler_init(&s, &m, LSTM_MAX_THREADS + 1) == LSTM_ERR_ARG && s == NULL,
          "threads LSTM_MAX_THREADS + 1: LSTM_ERR_ARG, *s NULL");
    CHECK(lstm_charlm_sampler_init(&s, &m, 1) == LSTM_OK, "init");
    unsigned char out[4];
    CHECK(lstm_charlm_sampler_logits(s) == NULL, "logits before any byte: NULL");
    CHECK(lstm_charlm_sampler_generate(s, out, 4, 0.0, 0) == LSTM_ERR_ARG && strstr(lstm_last_error(), "prime"),
          "generate before a prime: LSTM_ERR_ARG (%s)", lstm_last_error());
    CHECK(lstm_charlm_sampler_feed(s, (const unsigned char *)"AB~", 3) == LSTM_ERR_ARG &&
              strstr(lstm_last_error(), "0x7e"),
          "a byte outside the vocabulary: LSTM_ERR_ARG naming it (%s)", lstm_last_error());
    CHECK(lstm_charlm_sampler_generate(s, out, 4, -1.0, 0) == LSTM_ERR_ARG, "temperature -1: LSTM_ERR_ARG");
    CHECK(lstm_charlm_sampler_generate(s, out, 4, 0.0, 0) == LSTM_ERR_ARG, "after a refused prime nothing was fed");
    CHECK(lstm_charlm_sampler_feed(s, (const unsigned char *)"AB", 2) == LSTM_OK &&
              lstm_charlm_sampler_generate(s, out, 4, 0.0, 0) == LSTM_OK && lstm_charlm_sampler_logits(s) != NULL,
          "feed, generate, logits: %s", lstm_last_error());
    lstm_charlm_sampler_reset(s, 1);
    CHECK(lstm_charlm_sampler_generate(s, out, 1, 0.0, 0) == LSTM_ERR_ARG, "after reset: a prime again");
    lstm_charlm_sampler_free(s);
    lstm_charlm_sampler_free(NULL);
    lstm_charlm_free(&m);
}

/* Non-finite logits as torch treats them: greedy takes the first NaN
 * (torch.argmax), else the first maximum (+Inf included; all -Inf: byte 0);
 * a draw from a NaN, +Inf or all -Inf row is LSTM_ERR_NONFINITE, as
 * torch.multinomial refuses softmax's NaN.  top_k < 0 and an infinite
 * temperature are LSTM_ERR_ARG. */
static void test_nonfinite_logits(void) {
    struct { int set[2]; float val; int greedy; } cases[] = {
        {{9, 5}, NAN, 5}, {{3, 40}, INFINITY, 3}, {{-1, -1}, -INFINITY, 0}};
    for (int c = 0; c < 3; c++) {
        lstm_charlm m;
        make_model(&m, LSTM_CELL_LSTM, 8, 20, 0, 3);
        if (cases[c].set[0] < 0)
            for (int v = 0; v < V; v++) m.head_b[v] = cases[c].val;
        else
            for (int i = 0; i < 2; i++) m.head_b[cases[c].set[i]] = cases[c].val;
        lstm_charlm_sampler *s;
        unsigned char out[3] = {0, 0, 0};
        CHECK(lstm_charlm_sampler_init(&s, &m, 1) == LSTM_OK && lstm_charlm_sampler_feed(s, (const unsigned char *)"A", 1) == LSTM_OK,
              "init/feed: %s", lstm_last_error());
        lstm_status st = lstm_charlm_sampler_generate(s, out, 1, 0.0, 0);
        CHECK_V(st == LSTM_OK && out[0] == ' ' + cases[c].greedy, "logits %g: greedy picks byte %d (got %d, %s)",
                (double)cases[c].val, cases[c].greedy, out[0] - ' ', st ? lstm_last_error() : "ok");
        for (int k = 0; k <= 4; k += 4) {
            lstm_charlm_sampler_reset(s, 1);
            lstm_charlm_sampler_feed(s, (const unsigned char *)"A", 1);
            st = lstm_charlm_sampler_generate(s, out, 2, 0.8, k);
            CHECK_V(st == LSTM_ERR_NONFINITE, "logits %g, temperature 0.8, top_k %d: LSTM_ERR_NONFINITE (got %d)",
                    (double)cases[c].val, k, st);
        }
        CHECK(lstm_charlm_sampler_generate(s, out, 1, 0.0, -1) == LSTM_ERR_ARG, "top_k -1: LSTM_ERR_ARG");
        CHECK(lstm_charlm_sampler_generate(s, out, 1, INFINITY, 0) == LSTM_ERR_ARG, "temperature inf: LSTM_ERR_ARG");
        lstm_charlm_sampler_free(s);
        lstm_charlm_free(&m);
    }
}

#if LSTM_X86
/* The most unit groups of a 2-layer model's batch-1 steps (layer 0 of input I, layer 1 of Hout). */
static int most_groups(int cell, int H, int I, int Hout) {
    const lstm__cell *c = lstm__cell_of(cell);
    const int g0 = c->step1_groups(H, I, Hout), g1 = c->step1_groups(H, Hout, Hout);
    return g0 > g1 ? g0 : g1;
}
#endif

/* threads 0: the rule (one thread while the bytes a byte's step reads fit in
 * L2, else the CPUs up to 8 and the unit groups), its byte count on LSTM, GRU
 * and projected models, that init applies it, and the bytes of one thread. */
static void test_auto_threads(void) {
    lstm_charlm m, g, p, t;
    make_model(&m, LSTM_CELL_LSTM, 12, 100, 0, 4); /* 2 layers, V 64, H 100: 7 blocks of 16 */
    make_model(&g, LSTM_CELL_GRU, 12, 100, 0, 4);
    make_model(&p, LSTM_CELL_LSTM, 12, 100, 16, 4); /* projections: Hout 16 */
    make_model(&t, LSTM_CELL_LSTM, 12, 40, 0, 4);  /* H <= 48: one group */
#if LSTM_X86
    /* floats read a step: the packs, 7 blocks · K rows · 16 lanes · 4 (LSTM) or 3 (GRU) gates, layer 0's
     * K without its 12 input rows; the projections 16·100; the packed head 16 + 64·Hout */
    const long w = 4L * (7 * 100 * 64 + 7 * 200 * 64 + 16 + 64 * 100);
    const long wg = 4L * (7 * 100 * 48 + 7 * 200 * 48 + 16 + 64 * 100);
    const long wp = 4L * (7 * 16 * 64 + 1600 + 7 * 32 * 64 + 1600 + 16 + 64 * 16);
    const int gm = most_groups(LSTM_CELL_LSTM, 100, 12, 100), gg = most_groups(LSTM_CELL_GRU, 100, 12, 100),
              gp = most_groups(LSTM_CELL_LSTM, 100, 12, 16);
#else
    /* no batch-1 step in this build: the weight matrices (layer 0's W_hh, layer 1's W_ih and W_hh), no group cap */
    const long w = 4L * (400 * 100 + 400 * 200 + 16 + 64 * 100);
    const long wg = 4L * (300 * 100 + 300 * 200 + 16 + 64 * 100);
    const long wp = 4L * (400 * 16 + 1600 + 400 * 32 + 1600 + 16 + 64 * 16);
    const int gm = 8, gg = 8, gp = 8;
#endif
#define MIN8(a) ((a) < 8 ? (a) : 8)
    CHECK_V(gm >= 2 && gg >= 2 && gp >= 2, "test models of H = 100 run in groups (%d, %d, %d)", gm, gg, gp);
    CHECK_V(lstm__sampler_auto_threads(&m, w, 64) == 1 && lstm__sampler_auto_threads(&m, w - 4, 64) == MIN8(gm) &&
                lstm__sampler_auto_threads(&m, w - 4, 2) == 2 && lstm__sampler_auto_threads(&m, w - 4, 1) == 1 &&
                lstm__sampler_auto_threads(&m, w - 4, 0) == 1 && lstm__sampler_auto_threads(&m, 0, 64) == 1,
            "auto threads, LSTM 2x100: 1 when its %ld bytes fit in L2, else the CPUs, at most 8 and its %d groups; "
            "L2 unknown: 1 MB", w, gm);
    CHECK_V(lstm__sampler_auto_threads(&g, wg, 64) == 1 && lstm__sampler_auto_threads(&g, wg - 4, 64) == MIN8(gg),
            "auto threads, GRU 2x100: %ld bytes, %d groups", wg, gg);
    CHECK_V(lstm__sampler_auto_threads(&p, wp, 64) == 1 && lstm__sampler_auto_threads(&p, wp - 4, 64) == MIN8(gp),
            "auto threads, LSTM 2x100 P 16: %ld bytes, %d groups", wp, gp);
    CHECK_V(lstm__sampler_auto_threads(&t, 1, 64) == (LSTM_X86 ? 1 : 8), "auto threads, LSTM 2x40 (one group) past L2: %d",
            LSTM_X86 ? 1 : 8);
#undef MIN8
    lstm_charlm_sampler *s;
    const int want = lstm__sampler_auto_threads(&m, lstm__cpu()->l2, lstm__cores_usable());
    CHECK(lstm_charlm_sampler_init(&s, &m, 0) == LSTM_OK, "threads 0: %s", lstm_last_error());
    CHECK_V(lstm__sampler_threads(s) == want, "a sampler of threads 0 runs on the rule's %d (this CPU: L2 %ld, %d CPUs)",
            want, lstm__cpu()->l2, lstm__cores_usable());
    lstm_charlm_sampler_free(s);
    CHECK(lstm_charlm_sampler_init(&s, &m, 3) == LSTM_OK && lstm__sampler_threads(s) == 3, "threads 3: 3");
    lstm_charlm_sampler_free(s);
    { /* a model past any L2 (12 MB a byte): with 2 or more CPUs the rule takes more than one thread */
        lstm_charlm big;
        make_model(&big, LSTM_CELL_LSTM, 12, 512, 0, 4);
        const int wb = lstm__sampler_auto_threads(&big, lstm__cpu()->l2, lstm__cores_usable());
        CHECK(lstm_charlm_sampler_init(&s, &big, 0) == LSTM_OK, "threads 0: %s", lstm_last_error());
        CHECK_V(lstm__sampler_threads(s) == wb && (wb > 1 || lstm__cores_usable() < 2),
                "a 2x512 sampler of threads 0 runs on %d threads (the rule's %d; %d CPUs)", lstm__sampler_threads(s), wb,
                lstm__cores_usable());
        lstm_charlm_sampler_free(s);
        lstm_charlm_free(&big);
    }
    unsigned char a[80], b[80];
    CHECK(lstm_charlm_generate(&m, (const unsigned char *)"AB", 2, a, sizeof a, 0.9, 0, 3) == LSTM_OK, "generate");
    CHECK(lstm_charlm_sampler_init(&s, &m, 0) == LSTM_OK, "threads 0: %s", lstm_last_error());
    lstm_charlm_sampler_reset(s, 3);
    CHECK_V(lstm_charlm_sampler_feed(s, (const unsigned char *)"AB", 2) == LSTM_OK &&
                lstm_charlm_sampler_generate(s, b, sizeof b, 0.9, 0) == LSTM_OK && memcmp(a, b, sizeof a) == 0,
            "a sampler of threads 0 draws lstm_charlm_generate's bytes");
    lstm_charlm_sampler_free(s);
    lstm_charlm_free(&m);
    lstm_charlm_free(&g);
    lstm_charlm_free(&p);
    lstm_charlm_free(&t);
}

/* A draw that fails (LSTM_ERR_NONFINITE) after its first byte: that byte was fed once,
 * and a later feed continues from there (it stayed pending and was fed a second time:
 * the state of "caac" where "cac" was meant). */
static void test_error_after_a_byte(void) {
    unsigned char v[3] = {'a', 'b', 'c'};
    lstm_config cfg = {.input_size = 2, .hidden_size = 2, .num_layers = 1, .bias = 1};
    lstm_charlm m;
    CHECK(lstm_charlm_init(&m, v, 3, 2, &cfg) == LSTM_OK, "init");
    m.emb[0] = 10; /* 'a' = [10, 0]; 'b', 'c' = 0 */
    for (int r = 0; r < 8; r++) m.net.w[0].w_ih[r * 2] = 10;
    m.head_b[0] = 100, m.head_b[1] = -100, m.head_b[2] = -100; /* after "c": 'a' */
    m.head_w[2] = 3e38f, m.head_w[3] = 3e38f;                  /* after 'a': logit 'b' +Inf */
    lstm_charlm_sampler *s;
    CHECK(lstm_charlm_sampler_init(&s, &m, 1) == LSTM_OK, "sampler");
    lstm_charlm_sampler_reset(s, 1);
    unsigned char out[3] = {0};
    lstm_charlm_sampler_feed(s, (const unsigned char *)"c", 1);
    lstm_status st = lstm_charlm_sampler_generate(s, out, 3, 1.0, 0);
    CHECK(st == LSTM_ERR_NONFINITE && out[0] == 'a', "the draw stops at byte 1 (%d, '%c')", st, out[0]);
    lstm_charlm_sampler_feed(s, (const unsigned char *)"c", 1);
    const float *lg = lstm_charlm_sampler_logits(s);
    float got[3], want[3];
    memcpy(got, lg, sizeof got);
    lstm_charlm_sampler_reset(s, 1);
    lstm_charlm_sampler_feed(s, (const unsigned char *)"cac", 3);
    memcpy(want, lstm_charlm_sampler_logits(s), sizeof want);
    CHECK_V(memcmp(got, want, sizeof got) == 0, "after the error, feeding \"c\": the logits of \"cac\" (%g against %g)",
            (double)got[1], (double)want[1]);
    lstm_charlm_sampler_free(s);
    lstm_charlm_free(&m);
}

int main(void) {
    test_nonfinite_logits();
    test_error_after_a_byte();
    test_auto_threads();
    test_against_stream(LSTM_CELL_LSTM, 12, 24, 0);   /* one group of 2 blocks */
    test_against_stream(LSTM_CELL_LSTM, 16, 130, 0);  /* 9 blocks: groups of 3 */
    test_against_stream(LSTM_CELL_LSTM, 10, 40, 24);  /* projections */
    test_against_stream(LSTM_CELL_GRU, 12, 40, 0);
    /* 9 and 10 blocks of 16: groups of 3 or 4 blocks on any L1, none half-packed, so on x86 the
     * bytes take the early-sums step; 1, 2 and 3 layers */
    test_against_stream_L(LSTM_CELL_LSTM, 16, 144, 0, 2);
    test_against_stream_L(LSTM_CELL_GRU, 12, 144, 0, 2);
    test_against_stream_L(LSTM_CELL_LSTM, 8, 160, 0, 3);
    test_against_stream_L(LSTM_CELL_GRU, 8, 160, 0, 1);
    test_kth_largest();
    test_errors();
    return TEST_REPORT();
}
