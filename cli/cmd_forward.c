/* cmd_forward.c — lstm forward and lstm grad: run a model (nn.LSTM or nn.GRU
 * state_dict) over .npy inputs.
 *
 * Shapes follow torch.nn.LSTM (a GRU has no C0/CN): X [T, B, I] ([B, T, I] with --batch-first) or
 * unbatched [T, I]; H0/HN [L*D, B, Hout], C0/CN [L*D, B, H] (without the B
 * axis for unbatched X; batch_first never applies to them); Y [T, B, D*Hout].
 * Every input is read and checked before anything runs; outputs are written
 * only after everything succeeded, each to a temporary beside it, and the
 * temporaries are removed again if a later one cannot be written.  Then each is
 * renamed over its output in turn: a rename that failed after an earlier one
 * succeeded (an I/O error: both names are in directories already written to)
 * would leave that earlier output replaced and the later ones as they were. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "io/fileio.h"

static const char forward_usage[] =
    "usage: lstm forward --model M.safetensors --input X.npy [--h0 H0.npy --c0 C0.npy]\n"
    "                    [--batch-first] [--prefix P] --output Y.npy [--hn HN.npy] [--cn CN.npy]\n"
    "\n"
    "Runs the LSTM or GRU stored under prefix P (default '') of M over X, like\n"
    "torch.nn.LSTM / nn.GRU (the cell is told from the tensor shapes):\n"
    "  X [T, B, I] ([B, T, I] with --batch-first) or unbatched [T, I]\n"
    "  H0, HN [L*D, B, Hout]   C0, CN [L*D, B, H]   (no B axis when X is unbatched)\n"
    "  Y [T, B, D*Hout] ([B, T, D*Hout] with --batch-first; [T, D*Hout] unbatched)\n"
    "H0 and C0 default to zeros and must be given together (a GRU takes H0 only;\n"
    "--c0 and --cn with a GRU are usage errors).  Arrays are .npy\n"
    "'<f4' or '<f8' (read) and '<f4' (written).\n";

static const char grad_usage[] =
    "usage: lstm grad --model M.safetensors --input X.npy [--h0 H0.npy --c0 C0.npy]\n"
    "                 [--batch-first] [--prefix P] --grad-output GY.npy\n"
    "                 [--grad-hn GHN.npy] [--grad-cn GCN.npy] --output G.safetensors\n"
    "\n"
    "Runs forward as 'lstm forward' does, then writes to G (F32 safetensors) the\n"
    "gradient of L = sum(Y*GY) + sum(HN*GHN) + sum(CN*GCN) with respect to every\n"
    "parameter (named as in M, prefix included) and to the inputs, named 'input',\n"
    "'h0' and 'c0' (the last two only when H0 and C0 are given).  GY has Y's shape,\n"
    "GHN HN's and GCN CN's.  A GRU: no --c0 or --grad-cn (usage errors), L without\n"
    "the CN term, and the file holds the parameters, 'input' and 'h0' (if H0 given).\n";

typedef struct {
    const char *model, *input, *h0, *c0, *prefix, *output, *hn, *cn, *gy, *ghn, *gcn;
    int batch_first;
} opts;

static void parse_opts(int argc, char **argv, int grad, opts *o) {
    cli_args a = {argc, argv, 0, grad ? "grad" : "forward"};
    memset(o, 0, sizeof *o);
    o->prefix = "";
    int help = 0;
    for (a.i = 1; a.i < a.argc; a.i++) {
        if (cli_opt_str(&a, "--model", &o->model)) continue;
        if (cli_opt_str(&a, "--input", &o->input)) continue;
        if (cli_opt_str(&a, "--h0", &o->h0)) continue;
        if (cli_opt_str(&a, "--c0", &o->c0)) continue;
        if (cli_opt_str(&a, "--prefix", &o->prefix)) continue;
        if (cli_opt_str(&a, "--output", &o->output)) continue;
        if (cli_opt_flag(&a, "--batch-first", &o->batch_first)) continue;
        if (!grad && cli_opt_str(&a, "--hn", &o->hn)) continue;
        if (!grad && cli_opt_str(&a, "--cn", &o->cn)) continue;
        if (grad && cli_opt_str(&a, "--grad-output", &o->gy)) continue;
        if (grad && cli_opt_str(&a, "--grad-hn", &o->ghn)) continue;
        if (grad && cli_opt_str(&a, "--grad-cn", &o->gcn)) continue;
        if (cli_opt_flag(&a, "--help", &help) || cli_opt_flag(&a, "-h", &help)) {
            fputs(grad ? grad_usage : forward_usage, stdout);
            cli_finish_stdout(); /* (exit 1 with a message when stdout cannot take it) */
            exit(0);
        }
        cli_usage(&a, "unknown option '%s'", a.argv[a.i]);
    }
    if (!o->model) cli_usage(&a, "--model is required");
    if (!o->input) cli_usage(&a, "--input is required");
    if (!o->output) cli_usage(&a, "--output is required");
    if (grad && !o->gy) cli_usage(&a, "--grad-output is required");
    /* --h0 without --c0 is checked once the model (LSTM or GRU) is known */
    /* every output is checked, and compared by identity with the others and the inputs, before any work */
    cli_path paths[] = {
        {"--output", o->output, 1, NULL}, {"--hn", o->hn, 1, NULL},     {"--cn", o->cn, 1, NULL},
        {"--model", o->model, 0, NULL},   {"--input", o->input, 0, NULL}, {"--h0", o->h0, 0, NULL},
        {"--c0", o->c0, 0, NULL},         {"--grad-output", o->gy, 0, NULL}, {"--grad-hn", o->ghn, 0, NULL},
        {"--grad-cn", o->gcn, 0, NULL},
    };
    cli_check_paths(&a, paths, (int)(sizeof paths / sizeof paths[0]));
}

static void fmt_shape(char *out, size_t cap, int ndim, const int64_t *shape) {
    size_t n = (size_t)snprintf(out, cap, "[");
    for (int k = 0; k < ndim && n < cap; k++)
        n += (size_t)snprintf(out + n, cap - n, "%s%lld", k ? ", " : "", (long long)shape[k]);
    if (n < cap) snprintf(out + n, cap - n, "]");
}

static void read_npy(lstm_array *a, const char *path) {
    lstm_status s = lstm_npy_read(a, path);
    if (s != LSTM_OK) cli_fail_status(s);
}

/* Fails (exit 1) unless a has exactly the given shape. */
static void expect_shape(const char *path, const lstm_array *a, int ndim, const int64_t *shape, const char *what) {
    int same = a->ndim == ndim;
    for (int k = 0; same && k < ndim; k++) same = a->shape[k] == shape[k];
    if (same) return;
    char want[160], got[160];
    fmt_shape(want, sizeof want, ndim, shape);
    fmt_shape(got, sizeof got, a->ndim, a->shape);
    cli_fail("%s: expected shape %s (%s), got %s", path, want, what, got);
}

static float *alloc_floats(size_t n) {
    float *p = malloc((n ? n : 1) * sizeof(float));
    if (!p) cli_fail("out of memory allocating %zu floats", n);
    return p;
}

typedef struct {
    const char *path;
    const float *data;
    int ndim;
    int64_t shape[3];
} npy_out;

/* Writes every output to a temporary file beside it and renames them into
 * place only when all were written, so a failure leaves every existing output
 * as it was (devices and FIFOs are written directly: lstm__afile). */
static void write_outputs(const npy_out *o, int n) {
    lstm__afile f[3];
    lstm_status s = LSTM_OK;
    int k = 0;
    for (; k < n && !s; k++) {
        s = lstm__afile_open(&f[k], o[k].path);
        if (!s) s = lstm__npy_put(&f[k], o[k].data, o[k].ndim, o[k].shape);
        if (!s) s = lstm__afile_close(&f[k]);
    }
    for (int q = 0; q < n && !s; q++) s = lstm__afile_rename(&f[q]);
    if (s) {
        for (int q = 0; q < k; q++) lstm__afile_abort(&f[q]); /* idempotent; renamed ones are done */
        cli_fail_status(s);
    }
}

static int run(int argc, char **argv, int grad) {
    opts o;
    parse_opts(argc, argv, grad, &o);
    lstm_net net;
    lstm_status s = lstm_net_load(&net, o.model, o.prefix);
    if (s != LSTM_OK) cli_fail_status(s);
    const int gru = net.cfg.cell == LSTM_CELL_GRU;
    {
        cli_args a = {argc, argv, 0, grad ? "grad" : "forward"};
        if (gru && (o.c0 || o.cn || o.gcn))
            cli_usage(&a, "%s: %s is a GRU model, which has no cell state", o.c0 ? "--c0" : o.cn ? "--cn" : "--grad-cn",
                      o.model);
        if (!gru && !o.h0 != !o.c0) cli_usage(&a, "--h0 and --c0 must be given together");
    }
    const int L = net.cfg.num_layers, D = net.D, H = net.H, Hout = net.Hout, I = net.cfg.input_size;
    const int64_t LD = (int64_t)L * D, DHout = (int64_t)D * Hout;

    /* ---- X */
    lstm_array x;
    read_npy(&x, o.input);
    char got[160];
    fmt_shape(got, sizeof got, x.ndim, x.shape);
    if (x.ndim != 2 && x.ndim != 3)
        cli_fail("%s: expected a 3-D input %s or a 2-D unbatched [T, I], got shape %s", o.input,
                 o.batch_first ? "[B, T, I]" : "[T, B, I]", got);
    const int unbatched = x.ndim == 2, bf = o.batch_first && !unbatched;
    const int64_t T64 = unbatched ? x.shape[0] : bf ? x.shape[1] : x.shape[0];
    const int64_t B64 = unbatched ? 1 : bf ? x.shape[0] : x.shape[1];
    if (x.shape[x.ndim - 1] != I) {
        int64_t want[3] = {x.shape[0], x.shape[1], I};
        want[x.ndim - 1] = I;
        char w[160];
        fmt_shape(w, sizeof w, x.ndim, want);
        cli_fail("%s: expected shape %s (input_size %d of the model), got %s", o.input, w, I, got);
    }
    if (T64 < 1 || B64 < 1)
        cli_fail("%s: expected a non-empty sequence and batch, got shape %s", o.input, got);
    if (T64 > INT_MAX || B64 > INT_MAX) cli_fail("%s: shape %s too large", o.input, got);
    const int T = (int)T64, B = (int)B64;

    /* ---- expected shapes of the state arrays and of Y */
    int hd = unbatched ? 2 : 3, yd = x.ndim;
    int64_t hshape[3] = {LD, B, Hout}, cshape[3] = {LD, B, H}, yshape[3];
    if (unbatched) {
        hshape[1] = Hout;
        cshape[1] = H;
        yshape[0] = T;
        yshape[1] = DHout;
    } else {
        yshape[0] = bf ? B : T;
        yshape[1] = bf ? T : B;
        yshape[2] = DHout;
    }
    lstm_array h0 = {0}, c0 = {0}, gy = {0}, ghn = {0}, gcn = {0};
    if (o.h0) {
        read_npy(&h0, o.h0);
        expect_shape(o.h0, &h0, hd, hshape, unbatched ? "[L*D, Hout] for unbatched input" : "[L*D, B, Hout]");
    }
    if (o.c0) {
        read_npy(&c0, o.c0);
        expect_shape(o.c0, &c0, hd, cshape, unbatched ? "[L*D, H] for unbatched input" : "[L*D, B, H]");
    }
    if (grad) {
        read_npy(&gy, o.gy);
        expect_shape(o.gy, &gy, yd, yshape, "the shape of Y");
        if (o.ghn) {
            read_npy(&ghn, o.ghn);
            expect_shape(o.ghn, &ghn, hd, hshape, "the shape of HN");
        }
        if (o.gcn) {
            read_npy(&gcn, o.gcn);
            expect_shape(o.gcn, &gcn, hd, cshape, "the shape of CN");
        }
    }

    /* ---- compute: the library takes batch-first arrays (LSTM_WS_BATCH_FIRST) */
    const size_t TB = (size_t)T * (size_t)B, ny = TB * (size_t)DHout;
    const size_t nh = (size_t)LD * B * Hout, nc = (size_t)LD * B * H;
    float *y = alloc_floats(ny), *hn = alloc_floats(nh), *cn = alloc_floats(nc);
    lstm_workspace *ws;
    s = lstm_workspace_init(&ws, &net, T, B, (grad ? LSTM_WS_TRAIN : 0) | (bf ? LSTM_WS_BATCH_FIRST : 0));
    if (s != LSTM_OK) cli_fail_status(s);
    if (grad) lstm_net_zero_grad(&net);
    s = lstm_forward(&net, ws, T, B, x.data, o.h0 ? h0.data : NULL, o.c0 ? c0.data : NULL, y, hn, gru ? NULL : cn);
    if (s != LSTM_OK) cli_fail_status(s);

    if (!grad) {
        npy_out out[3];
        int n = 0;
        out[n] = (npy_out){o.output, y, yd, {yshape[0], yshape[1], yshape[2]}};
        n++;
        if (o.hn) out[n++] = (npy_out){o.hn, hn, hd, {hshape[0], hshape[1], hshape[2]}};
        if (o.cn) out[n++] = (npy_out){o.cn, cn, hd, {cshape[0], cshape[1], cshape[2]}};
        write_outputs(out, n);
    } else {
        float *dx = alloc_floats(TB * (size_t)I), *dh0 = NULL, *dc0 = NULL;
        if (o.h0) dh0 = alloc_floats(nh);
        if (o.c0) dc0 = alloc_floats(nc);
        s = lstm_backward(&net, ws, gy.data, o.ghn ? ghn.data : NULL, o.gcn ? gcn.data : NULL, dx, dh0, dc0);
        if (s != LSTM_OK) cli_fail_status(s);
        int np = lstm_net_tensors(&net, NULL);
        lstm_tensor_info *ti = malloc((size_t)np * sizeof *ti);
        lstm_st_entry *e = calloc((size_t)np + 3, sizeof *e);
        size_t plen = strlen(o.prefix), cap = plen + sizeof ti->name;
        char *names = malloc((size_t)np * cap);
        if (!ti || !e || !names) cli_fail("out of memory");
        lstm_net_tensors(&net, ti);
        int n = 0;
        for (int k = 0; k < np; k++, n++) {
            char *nm = names + (size_t)k * cap;
            memcpy(nm, o.prefix, plen);
            memcpy(nm + plen, ti[k].name, strlen(ti[k].name) + 1);
            e[n].name = nm;
            e[n].ndim = ti[k].ndim;
            e[n].shape[0] = ti[k].shape[0];
            e[n].shape[1] = ti[k].shape[1];
            e[n].data = net.grads + ti[k].offset;
        }
        e[n].name = "input";
        e[n].ndim = x.ndim;
        memcpy(e[n].shape, x.shape, sizeof x.shape);
        e[n++].data = dx;
        if (o.h0) {
            e[n].name = "h0";
            e[n].ndim = h0.ndim;
            memcpy(e[n].shape, h0.shape, sizeof h0.shape);
            e[n++].data = dh0;
        }
        if (o.c0) {
            e[n].name = "c0";
            e[n].ndim = c0.ndim;
            memcpy(e[n].shape, c0.shape, sizeof c0.shape);
            e[n++].data = dc0;
        }
        s = lstm_st_write(o.output, e, n, NULL);
        if (s != LSTM_OK) cli_fail_status(s);
        free(ti);
        free(e);
        free(names);
        free(dx);
        free(dh0);
        free(dc0);
    }
    lstm_workspace_free(ws);
    free(y);
    free(hn);
    free(cn);
    lstm_array_free(&x);
    lstm_array_free(&h0);
    lstm_array_free(&c0);
    lstm_array_free(&gy);
    lstm_array_free(&ghn);
    lstm_array_free(&gcn);
    lstm_net_free(&net);
    return 0;
}

int lstm_cmd_forward(int argc, char **argv) { return run(argc, argv, 0); }
int lstm_cmd_grad(int argc, char **argv) { return run(argc, argv, 1); }
