/* sample.c — generation from a char model on the streaming state at batch 1.
 *
 * Per byte: one lstm_stream step, the head on that one row, the pick.  What a
 * byte needs is made once, when the sampler is made:
 *   - layer 0's input product for every vocabulary entry, table [V, A·H] =
 *     bias + emb[v]·W_ih0ᵀ, by the engine's own input product
 *     (lstm__cell_gemm_ih_bias, the one a block of steps uses).  A byte's step
 *     starts layer 0 from its row (lstm__stream_act0) and continues the chain
 *     with h·W_hhᵀ as a step of a longer block does, so the bits are those of
 *     lstm_stream on the embedding row, and the step reads 4H floats instead
 *     of W_ih0 (4H·E);
 *   - the head weight packed for lstm_gemm_packed (the bits of lstm_gemm_nt).
 * A byte's step makes layer 0's sum over h for the next byte beside layer 1's
 * step (lstm__stream_act0_early, where the shape allows: the same bits), so
 * that a core reads its share of all the weights in one stretch.
 * A prime goes through lstm_stream in blocks of up to TB steps (the input
 * product one GEMM per block).  Nothing is allocated per byte or per call. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "train_internal.h"

enum { TB = 64 }; /* prime block */

struct lstm_charlm_sampler {
    const lstm_charlm *m; /* borrowed */
    lstm_workspace *ws;   /* batch 1, blocks of up to TB steps */
    lstm_state st;
    float *x, *y;         /* [TB, E], [TB, Hout] */
    float *hp;            /* head weight, packed (lstm_gemm_pack_nt) */
    float *table;         /* [V, A·H]: layer 0's bias + emb[v]·W_ih0ᵀ */
    float *logits;        /* [V]: of the last byte fed (valid when have_logits) */
    float *p, *sorted;    /* [V] scratch of the draw */
    uint8_t *ids;         /* [TB] */
    int pending;          /* token picked and not yet fed, or -1 */
    int have_logits;
    int have_sums;        /* the workspace holds layer 0's sum over h of the state (lstm__stream_act0_early) */
    int plain;            /* (tools) a plain lstm_stream step a byte, not the early-sums one */
    uint64_t rng;
};

int lstm__sampler_threads(const lstm_charlm_sampler *s) { return lstm__team_size(lstm__workspace_team(s->ws)); }
void lstm__sampler_set_plain(lstm_charlm_sampler *s, int plain) { s->plain = plain, s->have_sums = 0; }

void lstm_charlm_sampler_free(lstm_charlm_sampler *s) {
    if (!s) return;
    lstm_workspace_free(s->ws);
    lstm_state_free(&s->st);
    free(s->x); free(s->y); free(s->hp); free(s->table);
    free(s->logits); free(s->p); free(s->sorted); free(s->ids);
    free(s);
}

/* Automatic threads: a byte's step reads every weight of the layers and the
 * head once, in a fixed order, so past one core's L2 one thread streams them
 * from L3 at each byte, while split over the team each core keeps its part in
 * its own L2.  Below it the hand-off between threads costs more than the
 * split gains.  A step splits into its unit groups (cell->step1_groups, the
 * most of any layer), so more threads than groups would only wait.  Measured
 * (tools/bench_sample, µs a byte, fastest / median of 200 blocks, 1 thread
 * against 2; only 2 cores were there): Xeon (Emerald Rapids, L2 2 MB,
 * 2026-12-01; the bytes this rule counts) 1×64 (0.1 MB) 1.00/1.03 against
 * 1.52/1.78, 2×128 (0.85 MB) 7.52/7.71 against 7.36/8.10, 2×256 (3.3 MB)
 * 102/114 against 25.5/34.8, 1×512 (4.5 MB) 117/126 against 40.2/46.0;
 * Zen 5 (L2 1 MB, BENCHMARKS.md session 15): 2×128 5.68 against 7.44, 2×256
 * 38.4 against 26.8. */
int lstm__sampler_auto_threads(const lstm_charlm *m, long l2, int ncpu) {
    const lstm_net *net = &m->net;
    const lstm__cell *cell = lstm__cell_of(net->cfg.cell);
    const int H = net->H, Hout = net->Hout;
    double bytes = 4.0 * (double)lstm_gemm_packed_size(m->V, Hout); /* the packed head */
    int groups = 1;
    for (int l = 0; l < net->cfg.num_layers * net->D; l++) {
        const int in = net->w[l].in, k_in = l < net->D ? 0 : in; /* layer 0's input product: the table */
        if (cell->step1_pack_size) { /* the batch-1 step's pack and its unit groups */
            bytes += 4.0 * (double)cell->step1_pack_size(H, k_in, Hout);
            const int g = cell->step1_groups(H, in, Hout);
            if (g > groups) groups = g;
        } else { /* (no such kernel in this build: the GEMM splits the weights over any team) */
            bytes += 4.0 * cell->G * H * (double)(k_in + Hout);
            groups = 8;
        }
        if (net->w[l].w_hr) bytes += 4.0 * Hout * H;
    }
    if (l2 <= 0) l2 = 1024 * 1024;
    int n = ncpu < 8 ? ncpu : 8;
    if (n > groups) n = groups;
    return bytes <= (double)l2 || n < 1 ? 1 : n;
}

lstm_status lstm_charlm_sampler_init(lstm_charlm_sampler **out, const lstm_charlm *m, int threads) {
    *out = NULL;
    if (threads < 0 || threads > LSTM_MAX_THREADS)
        return lstm__fail(LSTM_ERR_ARG, "sample: threads %d must be in [0, %d]", threads, LSTM_MAX_THREADS);
    if (threads == 0) threads = lstm__sampler_auto_threads(m, lstm__cpu()->l2, lstm__cores_usable());
    lstm_charlm_sampler *s = calloc(1, sizeof *s);
    if (!s) return lstm__fail(LSTM_ERR_NOMEM, "sample: out of memory");
    s->m = m;
    lstm_status st = lstm_workspace_init(&s->ws, &m->net, TB, 1, 0);
    if (!st && threads > 1) st = lstm_workspace_set_threads(s->ws, threads);
    if (!st) st = lstm_state_init(&s->st, &m->net, 1);
    if (st) {
        lstm_charlm_sampler_free(s);
        return st;
    }
    const lstm__cell *cell = lstm__cell_of(m->net.cfg.cell);
    const int V = m->V, E = m->E, H = m->net.H, Hout = m->net.Hout, AH = cell->A * H;
    size_t np = (lstm_gemm_packed_size(V, Hout) + 15) / 16 * 16;
    s->x = malloc((size_t)TB * E * sizeof(float));
    s->y = malloc((size_t)TB * Hout * sizeof(float));
    s->hp = aligned_alloc(64, np * sizeof(float));
    s->table = malloc((size_t)V * AH * sizeof(float));
    s->logits = malloc((size_t)V * sizeof(float));
    s->p = malloc((size_t)V * sizeof(float));
    s->sorted = malloc((size_t)V * sizeof(float));
    s->ids = malloc(TB);
    float *bias = malloc((size_t)AH * sizeof(float));
    if (!s->x || !s->y || !s->hp || !s->table || !s->logits || !s->p || !s->sorted || !s->ids || !bias) {
        free(bias);
        lstm_charlm_sampler_free(s);
        return lstm__fail(LSTM_ERR_NOMEM, "sample: out of memory");
    }
    lstm_gemm_pack_nt(s->hp, V, Hout, m->head_w, Hout);
    /* the engine's bias and input product of a block (net->w[0]: layer 0, forward) */
    const lstm_weights *w0 = &m->net.w[0];
    lstm__cell_bias(cell, H, bias, w0->b_ih, w0->b_hh);
    lstm__cell_gemm_ih_bias(cell, NULL, V, H, E, m->emb, E, w0->w_ih, w0->b_ih ? bias : NULL, s->table, AH, NULL, 0);
    free(bias);
    lstm_charlm_sampler_reset(s, 0);
    *out = s;
    return LSTM_OK;
}

void lstm_charlm_sampler_reset(lstm_charlm_sampler *s, uint64_t seed) {
    lstm_state_reset(&s->st);
    s->pending = -1;
    s->have_sums = 0;
    s->have_logits = 0;
    s->rng = seed * 0x9E3779B97F4A7C15ull + 0xD6E8FEB86659FD93ull;
}

/* logits [V] = head_b + y·head_wᵀ (bias first, then the products in order). */
static void head(lstm_charlm_sampler *s, const float *y) {
    const lstm_charlm *m = s->m;
    memcpy(s->logits, m->head_b, (size_t)m->V * sizeof(float));
    lstm_gemm_packed(1, m->V, m->net.Hout, y, m->net.Hout, s->hp, s->logits, m->V, 1.0f);
    s->have_logits = 1;
}

/* One step of token id from its table row. */
static lstm_status step_id(lstm_charlm_sampler *s, int id) {
    const lstm__cell *cell = lstm__cell_of(s->m->net.cfg.cell);
    const float *act0 = s->table + (size_t)id * cell->A * s->m->net.H;
    lstm_status st = s->plain ? lstm__stream_act0(&s->m->net, s->ws, &s->st, act0, s->y)
                              : lstm__stream_act0_early(&s->m->net, s->ws, &s->st, act0, s->y, &s->have_sums);
    if (st) return st;
    head(s, s->y);
    return LSTM_OK;
}

static lstm_status feed_pending(lstm_charlm_sampler *s) {
    if (s->pending < 0) return LSTM_OK;
    int id = s->pending;
    s->pending = -1;
    return step_id(s, id);
}

lstm_status lstm_charlm_sampler_feed(lstm_charlm_sampler *s, const unsigned char *bytes, size_t n) {
    const lstm_charlm *m = s->m;
    lstm_status st;
    for (size_t i = 0; i < n; i++) /* all bytes checked before any is fed (lstm_charlm_encode's message) */
        if (m->id[bytes[i]] < 0)
            return lstm__fail(LSTM_ERR_ARG, "prime: byte 0x%02x at offset %zu is not in the model's vocabulary (%d bytes)",
                              bytes[i], i, m->V);
    if ((st = feed_pending(s))) return st;
    for (size_t i = 0; i < n; i += TB) {
        int T = (int)(n - i < TB ? n - i : TB);
        if ((st = lstm_charlm_encode(m, bytes + i, (size_t)T, s->ids, "prime"))) return st;
        if (T == 1) {
            if ((st = step_id(s, s->ids[0]))) return st;
            continue;
        }
        lstm__embedding_forward(s->x, m->emb, s->ids, T, m->E);
        s->have_sums = 0;
        if ((st = lstm_stream(&m->net, s->ws, &s->st, T, s->x, s->y))) return st;
        head(s, s->y + (size_t)(T - 1) * m->net.Hout);
    }
    return LSTM_OK;
}

static int cmp_desc(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x < y) - (x > y);
}

float lstm__kth_largest(float *tmp, const float *x, int n, int k) {
    int m = 0; /* tmp[0..m): the largest values so far, descending; m <= k */
    for (int i = 0; k <= 32 && i < n; i++) {
        float v = x[i];
        if (v != v) goto sort; /* NaN: what the sort makes of it */
        if (m == k && !(v > tmp[k - 1])) continue;
        int j = m < k ? m++ : k - 1;
        for (; j > 0 && tmp[j - 1] < v; j--) tmp[j] = tmp[j - 1];
        tmp[j] = v;
    }
    if (k <= 32) return tmp[k - 1];
sort:
    memcpy(tmp, x, (size_t)n * sizeof(float));
    qsort(tmp, (size_t)n, sizeof(float), cmp_desc);
    return tmp[k - 1];
}

/* The token drawn from the logits: the argmax at temperature 0 (as
 * torch.argmax: the first maximum, and the first NaN if there is one), else
 * softmax(logits / temperature) over the top_k largest (0: all).  -1 when there
 * is no distribution to draw from (a NaN or +Inf logit, or every logit -Inf:
 * softmax gives NaN there and torch.multinomial refuses it). */
static int pick(lstm_charlm_sampler *s, double temperature, int top_k) {
    const int V = s->m->V;
    const float *lg = s->logits;
    float *p = s->p;
    int k = 0;
    if (temperature == 0.0) {
        for (int v = 0; v < V; v++)
            if (isnan(lg[v])) return v;
        for (int v = 1; v < V; v++)
            if (lg[v] > lg[k]) k = v;
        return k;
    }
    int some = 0;
    for (int v = 0; v < V; v++) {
        if (isnan(lg[v]) || lg[v] == INFINITY) return -1;
        some |= lg[v] > -INFINITY;
    }
    if (!some) return -1;
    float thr = -INFINITY;
    if (top_k > 0 && top_k < V) thr = lstm__kth_largest(s->sorted, lg, V, top_k);
    float mx = -INFINITY;
    for (int v = 0; v < V; v++) mx = lg[v] > mx ? lg[v] : mx;
    double sum = 0.0;
    for (int v = 0; v < V; v++) {
        p[v] = lg[v] >= thr ? (float)exp((double)(lg[v] - mx) / temperature) : 0.0f;
        sum += p[v];
    }
    double u = (double)(lstm__rng_next(&s->rng) >> 11) * 0x1.0p-53 * sum, acc = 0.0;
    k = -1;
    for (int v = 0; v < V; v++) {
        if (p[v] <= 0.0f) continue;
        acc += p[v];
        k = v;
        if (u < acc) break;
    }
    return k < 0 ? 0 : k;
}

/* The draw's settings: LSTM_ERR_ARG unless 0 <= temperature < inf and top_k >= 0. */
static lstm_status check_draw(double temperature, int top_k) {
    if (!(temperature >= 0.0 && temperature < INFINITY))
        return lstm__fail(LSTM_ERR_ARG, "sample: expected a finite temperature >= 0, got %g", temperature);
    if (top_k < 0) return lstm__fail(LSTM_ERR_ARG, "sample: expected top_k >= 0 (0: all), got %d", top_k);
    return LSTM_OK;
}

lstm_status lstm_charlm_sampler_generate(lstm_charlm_sampler *s, unsigned char *out, size_t n, double temperature,
                                         int top_k) {
    lstm_status st = check_draw(temperature, top_k);
    if (st) return st;
    if (n == 0) return LSTM_OK;
    if ((st = feed_pending(s))) return st;
    if (!s->have_logits) return lstm__fail(LSTM_ERR_ARG, "sample: expected a prime of at least one byte first");
    for (size_t k = 0; k < n; k++) {
        if (k > 0 && (st = feed_pending(s))) return st; /* (fed: not pending, whatever comes next) */
        int id = pick(s, temperature, top_k);
        if (id < 0)
            return lstm__fail(LSTM_ERR_NONFINITE, "sample: byte %zu: the logits hold NaN or +Inf (or are all -Inf): no distribution to draw from", k);
        s->pending = id;
        out[k] = s->m->vocab[s->pending];
    }
    return LSTM_OK;
}

const float *lstm_charlm_sampler_logits(lstm_charlm_sampler *s) {
    if (feed_pending(s) || !s->have_logits) return NULL;
    return s->logits;
}

lstm_status lstm_charlm_generate(const lstm_charlm *m, const unsigned char *prime, size_t np,
                                 unsigned char *out, size_t n, double temperature, int top_k,
                                 uint64_t seed) {
    if (np == 0) return lstm__fail(LSTM_ERR_ARG, "sample: expected a prime of at least one byte");
    lstm_status st = check_draw(temperature, top_k);
    if (st) return st;
    lstm_charlm_sampler *s;
    st = lstm_charlm_sampler_init(&s, m, 1);
    if (st) return st;
    lstm_charlm_sampler_reset(s, seed);
    if (!(st = lstm_charlm_sampler_feed(s, prime, np))) st = lstm_charlm_sampler_generate(s, out, n, temperature, top_k);
    lstm_charlm_sampler_free(s);
    return st;
}
