/* lstm_io.c — nn.LSTM / nn.GRU state_dicts in safetensors files: load (cell and
 * configuration inferred from names and shapes, every tensor checked) and save (F32). */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"

typedef struct {
    const lstm_st_file *f;
    const char *path, *prefix;
    char *name; /* prefix + tensor name */
    size_t cap;
} finder;

/* Looks up prefix + base + "_l<layer>" + sfx (layer < 0: prefix + base). */
static const lstm_st_tensor *find(finder *F, const char *base, int layer, const char *sfx) {
    size_t plen = strlen(F->prefix);
    memcpy(F->name, F->prefix, plen);
    if (layer < 0) snprintf(F->name + plen, F->cap - plen, "%s", base);
    else snprintf(F->name + plen, F->cap - plen, "%s_l%d%s", base, layer, sfx);
    return lstm_st_find(F->f, F->name);
}

static int is_float(const lstm_st_tensor *t) { return t->dtype != LSTM_DT_OTHER; }

/* A tensor used to infer the configuration: present, a float, 2-D, dims in [1, INT_MAX/8]. */
static lstm_status probe(finder *F, const lstm_st_tensor *t, const char *what) {
    char nm[160], sh[160], dn[48];
    lstm__printable(nm, sizeof nm, F->name);
    if (!t) return lstm__fail(LSTM_ERR_MISSING, "%s: tensor '%s' not found (%s)", F->path, nm, what);
    if (!is_float(t))
        return lstm__fail(LSTM_ERR_DTYPE, "%s: tensor '%s': dtype %s not supported (expected F32, F64, F16 or BF16)",
                          F->path, nm, lstm__printable(dn, sizeof dn, t->dtype_str));
    lstm__fmt_shape(sh, sizeof sh, t->ndim, t->shape);
    if (t->ndim != 2 || t->shape[0] < 1 || t->shape[1] < 1 || t->shape[0] > INT_MAX / 8 || t->shape[1] > INT_MAX / 8)
        return lstm__fail(LSTM_ERR_SHAPE, "%s: tensor '%s': expected a non-empty 2-D shape (%s), got %s", F->path, nm,
                          what, sh);
    return LSTM_OK;
}

lstm_status lstm_net_from_st(lstm_net *net, const lstm_st_file *f, const char *path, const char *prefix) {
    memset(net, 0, sizeof *net);
    if (!path) path = "<buffer>";
    if (!prefix) prefix = "";
    char nm[160], sh[160], sh2[160], dn[48], pf[96];
    finder F = {f, path, prefix, NULL, strlen(prefix) + 64};
    F.name = malloc(F.cap);
    if (!F.name) return lstm__fail(LSTM_ERR_NOMEM, "%s: out of memory", path);
    lstm__printable(pf, sizeof pf, prefix);
    lstm_status st;
    lstm_tensor_info *ti = NULL;
    const lstm_st_tensor *ih0 = find(&F, "weight_ih", 0, "");
    if (!ih0) {
        st = lstm__fail(LSTM_ERR_MISSING, "%s: tensor '%s' not found (no LSTM or GRU under prefix '%s')", path,
                        lstm__printable(nm, sizeof nm, F.name), pf);
        goto out;
    }
    if ((st = probe(&F, ih0, "[G*hidden_size, input_size]")) != LSTM_OK) goto out;
    const lstm_st_tensor *hr0 = find(&F, "weight_hr", 0, "");
    const lstm_st_tensor *hh0 = find(&F, "weight_hh", 0, "");
    if ((st = probe(&F, hh0, "[G*hidden_size, hidden_size or proj_size]")) != LSTM_OK) goto out;
    lstm_config cfg = {0};
    /* The cell from the shapes: a projection is an LSTM's; else weight_hh_l0 is
     * [4H, H] (LSTM) or [3H, H] (GRU); failing both, rows a multiple of 4 (then
     * 3) give H, and the full check below names the tensor that does not fit. */
    int64_t rows = hh0->shape[0], cols = hh0->shape[1];
    int gru = !hr0 && (rows == 3 * cols || (rows != 4 * cols && rows % 4 && rows % 3 == 0));
    if (rows % (gru ? 3 : 4)) {
        lstm__fmt_shape(sh, sizeof sh, hh0->ndim, hh0->shape);
        st = lstm__fail(LSTM_ERR_SHAPE, "%s: tensor '%s': expected [4*hidden_size, ...] (rows a multiple of 4)%s, got %s",
                        path, lstm__printable(nm, sizeof nm, F.name), hr0 ? "" : " or [3*hidden_size, ...] (GRU)", sh);
        goto out;
    }
    cfg.cell = gru ? LSTM_CELL_GRU : LSTM_CELL_LSTM;
    cfg.hidden_size = (int)(rows / (gru ? 3 : 4));
    cfg.input_size = (int)ih0->shape[1];
    cfg.num_layers = 1;
    while (cfg.num_layers < 1024 && find(&F, "weight_ih", cfg.num_layers, "")) cfg.num_layers++;
    cfg.bidirectional = find(&F, "weight_ih", 0, "_reverse") != NULL;
    cfg.bias = find(&F, "bias_ih", 0, "") != NULL;
    if (hr0) {
        hr0 = find(&F, "weight_hr", 0, ""); /* F.name: this tensor's, for the messages */
        if ((st = probe(&F, hr0, "[proj_size, hidden_size]")) != LSTM_OK) goto out;
        cfg.proj_size = (int)hr0->shape[0];
        if (cfg.proj_size >= cfg.hidden_size) {
            st = lstm__fail(LSTM_ERR_SHAPE,
                            "%s: tensor '%s': proj_size %d must be smaller than hidden_size %d (from weight_hh_l0)", path,
                            lstm__printable(nm, sizeof nm, F.name), cfg.proj_size, cfg.hidden_size);
            goto out;
        }
    }
    /* Check every expected tensor against the file before allocating: then
     * the parameter count is bounded by the file's own size. */
    lstm_net probe_net;
    memset(&probe_net, 0, sizeof probe_net);
    probe_net.cfg = cfg;
    int n = lstm_net_tensors(&probe_net, NULL);
    ti = malloc((size_t)n * sizeof *ti);
    if (!ti) {
        st = lstm__fail(LSTM_ERR_NOMEM, "%s: out of memory", path);
        goto out;
    }
    lstm_net_tensors(&probe_net, ti);
    for (int k = 0; k < n; k++) {
        const lstm_st_tensor *t = find(&F, ti[k].name, -1, "");
        lstm__printable(nm, sizeof nm, F.name);
        lstm__fmt_shape(sh, sizeof sh, ti[k].ndim, ti[k].shape);
        if (!t) {
            st = lstm__fail(LSTM_ERR_MISSING, "%s: tensor '%s' not found (expected shape %s)", path, nm, sh);
            goto out;
        }
        int same = t->ndim == ti[k].ndim;
        for (int d = 0; same && d < t->ndim; d++) same = t->shape[d] == ti[k].shape[d];
        if (!same) {
            lstm__fmt_shape(sh2, sizeof sh2, t->ndim, t->shape);
            st = lstm__fail(LSTM_ERR_SHAPE, "%s: tensor '%s': expected shape %s, got %s", path, nm, sh, sh2);
            goto out;
        }
        if (!is_float(t)) {
            st = lstm__fail(LSTM_ERR_DTYPE, "%s: tensor '%s': dtype %s not supported (expected F32, F64, F16 or BF16)",
                            path, nm, lstm__printable(dn, sizeof dn, t->dtype_str));
            goto out;
        }
    }
    /* nothing else under the prefix */
    size_t plen = strlen(prefix);
    int under = 0;
    for (int k = 0; k < f->n_tensors; k++) under += strncmp(f->tensors[k].name, prefix, plen) == 0;
    if (under > n) {
        for (int k = 0; k < f->n_tensors; k++) {
            const char *tn = f->tensors[k].name;
            if (strncmp(tn, prefix, plen) != 0) continue;
            int known = 0;
            for (int q = 0; q < n && !known; q++) known = strcmp(tn + plen, ti[q].name) == 0;
            if (!known) {
                st = lstm__fail(LSTM_ERR_EXTRA, "%s: unexpected tensor '%s' under prefix '%s' (not part of this %s: L=%d%s%s%s)",
                                path, lstm__printable(nm, sizeof nm, tn), pf, cfg.cell == LSTM_CELL_GRU ? "GRU" : "LSTM", cfg.num_layers,
                                cfg.bidirectional ? ", bidirectional" : "", cfg.bias ? "" : ", no bias",
                                cfg.proj_size ? ", projected" : "");
                goto out;
            }
        }
    }
    st = lstm_net_init(net, &cfg);
    if (st != LSTM_OK) {
        char why[256];
        snprintf(why, sizeof why, "%s", lstm_last_error());
        st = lstm__fail(st == LSTM_ERR_NOMEM ? st : LSTM_ERR_SHAPE, "%s: %s", path, why);
        goto out;
    }
    for (int k = 0; k < n; k++) {
        const lstm_st_tensor *t = find(&F, ti[k].name, -1, "");
        st = lstm_st_to_f32(f, t, net->params + ti[k].offset);
        if (st != LSTM_OK) {
            char why[256];
            snprintf(why, sizeof why, "%s", lstm_last_error());
            st = lstm__fail(st, "%s: %s", path, why);
            goto out;
        }
    }
    st = LSTM_OK;
out:
    if (st != LSTM_OK) lstm_net_free(net);
    free(ti);
    free(F.name);
    return st;
}

lstm_status lstm_net_load(lstm_net *net, const char *path, const char *prefix) {
    lstm_st_file f;
    memset(net, 0, sizeof *net);
    lstm_status st = lstm_st_read(&f, path);
    if (st != LSTM_OK) return st;
    st = lstm_net_from_st(net, &f, path, prefix);
    lstm_st_free(&f);
    return st;
}

lstm_status lstm_net_save(const lstm_net *net, const char *path, const char *prefix) {
    if (!prefix) prefix = "";
    int n = lstm_net_tensors(net, NULL);
    size_t plen = strlen(prefix), cap = plen + sizeof(((lstm_tensor_info *)0)->name);
    lstm_tensor_info *ti = malloc((size_t)n * sizeof *ti);
    lstm_st_entry *e = calloc((size_t)n, sizeof *e);
    char *names = malloc((size_t)n * cap);
    lstm_status st;
    if (!ti || !e || !names) {
        st = lstm__fail(LSTM_ERR_NOMEM, "%s: out of memory", path);
    } else {
        lstm_net_tensors(net, ti);
        for (int k = 0; k < n; k++) {
            char *nm = names + (size_t)k * cap;
            memcpy(nm, prefix, plen);
            memcpy(nm + plen, ti[k].name, strlen(ti[k].name) + 1);
            e[k].name = nm;
            e[k].ndim = ti[k].ndim;
            e[k].shape[0] = ti[k].shape[0];
            e[k].shape[1] = ti[k].shape[1];
            e[k].data = net->params + ti[k].offset;
        }
        static const char *const meta[] = {"format", "pt", NULL};
        st = lstm_st_write(path, e, n, meta);
    }
    free(ti);
    free(e);
    free(names);
    return st;
}
