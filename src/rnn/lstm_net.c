/* lstm_net.c — the configuration, the flat parameter/gradient buffers and
 * their named views (PyTorch state_dict order), initialization. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

uint64_t lstm__rng_next(uint64_t *s) {
    uint64_t x = *s ? *s : 0x9E3779B97F4A7C15ull;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

float lstm__rng_uniform(uint64_t *s) { return (float)(lstm__rng_next(s) >> 40) * (1.0f / 16777216.0f); }

/* Walks the tensors of cfg in state_dict order; fills out (may be NULL). */
static int net_layout(const lstm_config *cfg, lstm_tensor_info *out, size_t *total) {
    int D = cfg->bidirectional ? 2 : 1, H = cfg->hidden_size;
    int Hout = cfg->proj_size ? cfg->proj_size : H;
    const lstm__cell *cell = lstm__cell_of(cfg->cell);
    int64_t GH = (int64_t)(cell ? cell->G : 4) * H;
    int n = 0;
    size_t off = 0;
    for (int l = 0; l < cfg->num_layers; l++) {
        for (int d = 0; d < D; d++) {
            int in = l == 0 ? cfg->input_size : D * Hout;
            const char *sfx = d ? "_reverse" : "";
            struct { const char *base; int ndim; int64_t r, c; int on; } t[5] = {
                {"weight_ih", 2, GH, in, 1},
                {"weight_hh", 2, GH, Hout, 1},
                {"bias_ih", 1, GH, 0, cfg->bias},
                {"bias_hh", 1, GH, 0, cfg->bias},
                {"weight_hr", 2, cfg->proj_size, H, cfg->proj_size > 0},
            };
            for (int k = 0; k < 5; k++) {
                if (!t[k].on) continue;
                size_t numel = (size_t)t[k].r * (size_t)(t[k].ndim == 2 ? t[k].c : 1);
                if (out) {
                    lstm_tensor_info *ti = &out[n];
                    snprintf(ti->name, sizeof ti->name, "%s_l%d%s", t[k].base, l, sfx);
                    ti->ndim = t[k].ndim;
                    ti->shape[0] = t[k].r;
                    ti->shape[1] = t[k].ndim == 2 ? t[k].c : 0;
                    ti->offset = off;
                    ti->numel = numel;
                }
                off += numel;
                n++;
            }
        }
    }
    if (total) *total = off;
    return n;
}

int lstm_net_tensors(const lstm_net *net, lstm_tensor_info *out) { return net_layout(&net->cfg, out, NULL); }

/* Points w[l*D + d] into base, following the layout ti (net_layout's order). */
static void set_views(lstm_weights *w, float *base, const lstm_net *net, const lstm_tensor_info *ti) {
    int k = 0;
    for (int l = 0; l < net->cfg.num_layers; l++)
        for (int d = 0; d < net->D; d++) {
            lstm_weights *v = &w[l * net->D + d];
            memset(v, 0, sizeof *v);
            v->in = l == 0 ? net->cfg.input_size : net->D * net->Hout;
            v->w_ih = base + ti[k++].offset;
            v->w_hh = base + ti[k++].offset;
            if (net->cfg.bias) {
                v->b_ih = base + ti[k++].offset;
                v->b_hh = base + ti[k++].offset;
            }
            if (net->cfg.proj_size) v->w_hr = base + ti[k++].offset;
        }
}

static lstm_status check_config(const lstm_config *cfg) {
    if (cfg->input_size < 1 || cfg->hidden_size < 1 || cfg->num_layers < 1)
        return lstm__fail(LSTM_ERR_ARG, "invalid config: input_size %d, hidden_size %d, num_layers %d (all must be >= 1)",
                          cfg->input_size, cfg->hidden_size, cfg->num_layers);
    if (!lstm__cell_of(cfg->cell))
        return lstm__fail(LSTM_ERR_ARG, "invalid config: cell %d (expected LSTM_CELL_LSTM or LSTM_CELL_GRU)", cfg->cell);
    if (cfg->cell != LSTM_CELL_LSTM && cfg->proj_size)
        return lstm__fail(LSTM_ERR_ARG, "invalid config: proj_size %d: only an LSTM has a projection", cfg->proj_size);
    if (cfg->proj_size < 0 || (cfg->proj_size && cfg->proj_size >= cfg->hidden_size))
        return lstm__fail(LSTM_ERR_ARG, "invalid config: proj_size %d must be 0 or in [1, hidden_size %d)",
                          cfg->proj_size, cfg->hidden_size);
    if (cfg->input_size > (1 << 24) || cfg->hidden_size > (1 << 22) || cfg->num_layers > 1024)
        return lstm__fail(LSTM_ERR_ARG, "invalid config: sizes too large");
    return LSTM_OK;
}

lstm_status lstm_net_size(const lstm_config *cfg, size_t *n_params) {
    lstm_status st = check_config(cfg);
    *n_params = 0;
    if (st == LSTM_OK) net_layout(cfg, NULL, n_params);
    return st;
}

/* Shared by both inits: validates, fills the sizes and the views over params/grads
 * (allocated here when they are NULL). */
static lstm_status net_setup(lstm_net *net, const lstm_config *cfg, float *params, float *grads) {
    memset(net, 0, sizeof *net);
    lstm_status st = check_config(cfg);
    if (st != LSTM_OK) return st;
    net->cfg = *cfg;
    net->cfg.bias = cfg->bias ? 1 : 0;
    net->cfg.bidirectional = cfg->bidirectional ? 1 : 0;
    net->D = cfg->bidirectional ? 2 : 1;
    net->H = cfg->hidden_size;
    net->Hout = cfg->proj_size ? cfg->proj_size : cfg->hidden_size;
    net->G = lstm__cell_of(cfg->cell)->G;
    int n = net_layout(&net->cfg, NULL, &net->n_params);
    net->external = params != NULL;
    net->params = params ? params : calloc(net->n_params, sizeof(float));
    net->grads = grads ? grads : calloc(net->n_params, sizeof(float));
    size_t nv = (size_t)cfg->num_layers * (size_t)net->D;
    net->w = calloc(nv, sizeof *net->w);
    net->g = calloc(nv, sizeof *net->g);
    lstm_tensor_info *ti = malloc((size_t)n * sizeof *ti);
    if (!net->params || !net->grads || !net->w || !net->g || !ti) {
        free(ti);
        size_t np = net->n_params;
        lstm_net_free(net);
        return lstm__fail(LSTM_ERR_NOMEM, "out of memory allocating %zu parameters", np);
    }
    net_layout(&net->cfg, ti, NULL);
    set_views(net->w, net->params, net, ti);
    set_views(net->g, net->grads, net, ti);
    free(ti);
    static uint64_t stamps;
    net->stamp = __atomic_add_fetch(&stamps, 1, __ATOMIC_RELAXED);
    return LSTM_OK;
}

lstm_status lstm_net_init(lstm_net *net, const lstm_config *cfg) { return net_setup(net, cfg, NULL, NULL); }

lstm_status lstm_net_init_external(lstm_net *net, const lstm_config *cfg, float *params, float *grads) {
    if (!params || !grads) {
        memset(net, 0, sizeof *net);
        return lstm__fail(LSTM_ERR_ARG, "lstm_net_init_external: params and grads must not be NULL");
    }
    return net_setup(net, cfg, params, grads);
}

void lstm_net_free(lstm_net *net) {
    if (!net) return;
    if (!net->external) {
        free(net->params);
        free(net->grads);
    }
    free(net->w);
    free(net->g);
    memset(net, 0, sizeof *net);
}

void lstm_net_init_uniform(lstm_net *net, uint64_t seed) {
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    float k = 1.0f / sqrtf((float)net->H);
    for (size_t i = 0; i < net->n_params; i++) net->params[i] = (2.0f * lstm__rng_uniform(&s) - 1.0f) * k;
}

void lstm_net_zero_grad(lstm_net *net) {
    if (net->grads) memset(net->grads, 0, net->n_params * sizeof(float)); /* (a freed net: nothing) */
}

int lstm__net_made(const lstm_net *net) {
    return net && net->params && net->grads && net->cfg.num_layers >= 1 && net->D >= 1 && net->H >= 1 && net->Hout >= 1;
}
