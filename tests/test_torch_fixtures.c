/* test_torch_fixtures.c — lstm_forward / lstm_backward against PyTorch.
 *
 * For every tests/fixtures/lstm_*.safetensors (nn.LSTM) and gru_*.safetensors
 * (nn.GRU: no c0, gcn, ref.cn, ref.grad.c0) written by tools/lstm_ref.py:
 * build the net from the "model." tensors, run forward + backward on a
 * LSTM_WS_TRAIN workspace with the stored inputs and upstream gradients, and
 * compare every "ref.*" tensor (float64 results of the same model) with ours.
 * Rule: our max abs error <= max(8 * torch_err, 1e-5), where torch_err is
 * PyTorch float32's own max abs error on that tensor (file metadata).
 * cell*.safetensors are the LSTMCell fixtures of test_cell.c.  A fixture that
 * cannot be read, or a ref tensor this test does not know, is a failure.
 * Optional argv[1]: the fixture directory (default tests/fixtures). */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture_util.h"
#include "lstm.h"
#include "test.h"

/* One computed tensor, by its ref name without "ref.". */
typedef struct {
    char name[64];
    const float *data;
    size_t numel;
} result;

/* [A, B, C] <-> [B, A, C] */
static void swap01(float *dst, const float *src, int A, int Bn, int C) {
    for (int a = 0; a < A; a++)
        for (int b = 0; b < Bn; b++)
            memcpy(dst + ((size_t)b * A + a) * C, src + ((size_t)a * Bn + b) * C, (size_t)C * sizeof *dst);
}

static int cfg_int(const char *json, const char *key, int *v) {
    double d;
    if (!fx_json_num(json, key, &d)) return 0;
    *v = (int)d;
    return 1;
}

static void run_case(const char *dir, const char *fname) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, fname);
    const int gru = strncmp(fname, "gru_", 4) == 0;
    char cname[256];
    snprintf(cname, sizeof cname, "%s%s", gru ? "gru:" : "", fname + (gru ? 4 : 5)); /* strip "lstm_" / "gru_" */
    char *dot = strstr(cname, ".safetensors");
    if (dot) *dot = 0;

    lstm_st_file f;
    lstm_status st = lstm_st_read(&f, path);
    CHECK(st == LSTM_OK, "%s: lstm_st_read: %s", path, lstm_last_error());
    if (st != LSTM_OK) return;

    const char *cj = lstm_st_meta(&f, "config"), *ej = lstm_st_meta(&f, "torch_err");
    int I, H, L, P, bias, bidir, bf, unb, T, B;
    int ok = cj && ej && cfg_int(cj, "input_size", &I) && cfg_int(cj, "hidden_size", &H) &&
             cfg_int(cj, "num_layers", &L) && cfg_int(cj, "proj_size", &P) && cfg_int(cj, "bias", &bias) &&
             cfg_int(cj, "bidirectional", &bidir) && cfg_int(cj, "batch_first", &bf) &&
             cfg_int(cj, "unbatched", &unb) && cfg_int(cj, "T", &T) && cfg_int(cj, "B", &B);
    CHECK(ok, "%s: metadata 'config'/'torch_err' missing or incomplete", path);
    if (!ok) { lstm_st_free(&f); return; }

    lstm_net net;
    st = lstm_net_from_st(&net, &f, path, "model.");
    CHECK(st == LSTM_OK, "%s: lstm_net_from_st: %s", path, lstm_last_error());
    if (st != LSTM_OK) { lstm_st_free(&f); return; }
    CHECK(net.cfg.cell == (gru ? LSTM_CELL_GRU : LSTM_CELL_LSTM), "%s: inferred cell %d, the file name says %s", path,
          net.cfg.cell, gru ? "GRU" : "LSTM");
    CHECK(net.cfg.input_size == I && net.cfg.hidden_size == H && net.cfg.num_layers == L &&
              net.cfg.proj_size == P && net.cfg.bias == bias && net.cfg.bidirectional == bidir,
          "%s: inferred config (I %d H %d L %d P %d bias %d bidir %d) differs from the metadata's "
          "(I %d H %d L %d P %d bias %d bidir %d)", path, net.cfg.input_size, net.cfg.hidden_size,
          net.cfg.num_layers, net.cfg.proj_size, net.cfg.bias, net.cfg.bidirectional, I, H, L, P, bias, bidir);

    int D = net.D, Hout = net.Hout, LD = L * D, Y = D * Hout;
    size_t nx = (size_t)T * B * I, ny = (size_t)T * B * Y, nh = (size_t)LD * B * Hout, nc = (size_t)LD * B * H;
    size_t n;
    int sizes_ok = 1; /* a wrong size is reported, then the case stops (no reads past a short tensor) */
    float *x_u = fx_tensor(&f, "x", &n);
    sizes_ok &= x_u && n == nx;
    CHECK(x_u && n == nx, "%s: tensor 'x': expected %zu floats, got %zu", path, nx, x_u ? n : 0);
    float *gy_u = fx_tensor(&f, "gy", &n);
    sizes_ok &= gy_u && n == ny;
    CHECK(gy_u && n == ny, "%s: tensor 'gy': expected %zu floats, got %zu", path, ny, gy_u ? n : 0);
    float *ghn = fx_tensor(&f, "ghn", &n);
    sizes_ok &= ghn && n == nh;
    CHECK(ghn && n == nh, "%s: tensor 'ghn': expected %zu floats", path, nh);
    float *gcn = fx_tensor(&f, "gcn", &n); /* a GRU has no c: absent */
    sizes_ok &= gru ? !gcn : gcn && n == nc;
    CHECK(gru ? !gcn : gcn && n == nc, "%s: tensor 'gcn': expected %s", path, gru ? "none (GRU)" : "B*H floats");
    float *h0 = fx_tensor(&f, "h0", &n); /* absent: zero initial state */
    sizes_ok &= !h0 || n == nh;
    CHECK(!h0 || n == nh, "%s: tensor 'h0': expected %zu floats", path, nh);
    float *c0 = fx_tensor(&f, "c0", &n);
    sizes_ok &= !c0 || n == nc;
    CHECK(!c0 || n == nc, "%s: tensor 'c0': expected %zu floats", path, nc);
    CHECK(gru ? !c0 : !h0 == !c0, "%s: h0 and c0 must be both present or both absent (GRU: no c0)", path);

    float *x = malloc(nx * sizeof *x), *gy = malloc(ny * sizeof *gy), *y = malloc(ny * sizeof *y);
    float *y_u = malloc(ny * sizeof *y), *y_inf = malloc(ny * sizeof *y), *dx = malloc(nx * sizeof *dx);
    float *dx_u = malloc(nx * sizeof *dx), *hn = malloc(nh * sizeof *hn), *cn = malloc(nc * sizeof *cn);
    float *dh0 = malloc(nh * sizeof *dh0), *dc0 = malloc(nc * sizeof *dc0);
    lstm_workspace *ws = NULL, *wsi = NULL;
    if (!sizes_ok || (gru ? c0 != NULL : !h0 != !c0) ||
        !(x_u && gy_u && ghn && (gcn || gru) && x && gy && y && y_u && y_inf && dx && dx_u && hn && cn && dh0 && dc0))
        goto done;

    /* user layout -> time-major [T, B, .] (unbatched [T, I] is [T, 1, I] already) */
    if (bf) {
        swap01(x, x_u, B, T, I);
        swap01(gy, gy_u, B, T, Y);
    } else {
        memcpy(x, x_u, nx * sizeof *x);
        memcpy(gy, gy_u, ny * sizeof *gy);
    }

    st = lstm_workspace_init(&ws, &net, T, B, LSTM_WS_TRAIN);
    CHECK(st == LSTM_OK, "%s: lstm_workspace_init: %s", path, lstm_last_error());
    if (st != LSTM_OK) goto done;
    lstm_net_zero_grad(&net);
    st = lstm_forward(&net, ws, T, B, x, h0, c0, y, hn, gru ? NULL : cn);
    CHECK(st == LSTM_OK, "%s: lstm_forward: %s", path, lstm_last_error());
    if (st != LSTM_OK) goto done;
    st = lstm_backward(&net, ws, gy, ghn, gcn, dx, dh0, gru ? NULL : dc0);
    CHECK(st == LSTM_OK, "%s: lstm_backward: %s", path, lstm_last_error());
    if (st != LSTM_OK) goto done;

    /* the inference-only workspace must give the same outputs (checked on y) */
    st = lstm_workspace_init(&wsi, &net, T, B, 0);
    CHECK(st == LSTM_OK, "%s: lstm_workspace_init(0): %s", path, lstm_last_error());
    if (st == LSTM_OK) {
        st = lstm_forward(&net, wsi, T, B, x, h0, c0, y_inf, NULL, NULL);
        CHECK(st == LSTM_OK, "%s: lstm_forward (inference ws): %s", path, lstm_last_error());
    }

    if (bf) {
        swap01(y_u, y, T, B, Y);
        swap01(dx_u, dx, T, B, I);
    } else {
        memcpy(y_u, y, ny * sizeof *y);
        memcpy(dx_u, dx, nx * sizeof *dx);
    }
    if (st == LSTM_OK) { /* y_inf to the user layout too, in place via dx-free buffer */
        float *tmp = malloc(ny * sizeof *tmp);
        if (tmp) {
            if (bf) swap01(tmp, y_inf, T, B, Y); else memcpy(tmp, y_inf, ny * sizeof *tmp);
            memcpy(y_inf, tmp, ny * sizeof *tmp);
            free(tmp);
        }
    }

    int nt = lstm_net_tensors(&net, NULL);
    lstm_tensor_info *ti = malloc((size_t)nt * sizeof *ti);
    result *res = malloc((size_t)(nt + 7) * sizeof *res);
    if (!ti || !res) { free(ti); free(res); goto done; }
    lstm_net_tensors(&net, ti);
    int nr = 0;
#define ADD(nm, p, k) do { snprintf(res[nr].name, sizeof res[nr].name, "%s", nm); res[nr].data = p; res[nr].numel = k; nr++; } while (0)
    ADD("y", y_u, ny);
    ADD("hn", hn, nh);
    if (!gru) ADD("cn", cn, nc);
    ADD("grad.input", dx_u, nx);
    ADD("grad.h0", dh0, nh);
    if (!gru) ADD("grad.c0", dc0, nc);
    for (int k = 0; k < nt; k++) {
        char nm[64];
        snprintf(nm, sizeof nm, "grad.%s", ti[k].name);
        ADD(nm, net.grads + ti[k].offset, ti[k].numel);
    }
    int wsi_ok = wsi && st == LSTM_OK;
    if (wsi_ok) ADD("y", y_inf, ny); /* compared against ref.y a second time */
#undef ADD

    /* every expected ref present, and every ref in the file known */
    int n_ref = 0, n_cmp = 0;
    for (int k = 0; k < f.n_tensors; k++)
        if (strncmp(f.tensors[k].name, "ref.", 4) == 0) {
            n_ref++;
            int known = 0;
            for (int r = 0; r < nr; r++) known |= strcmp(res[r].name, f.tensors[k].name + 4) == 0;
            CHECK(known, "%s: reference tensor '%s' has no counterpart here", path, f.tensors[k].name);
        }
    for (int r = 0; r < nr; r++) {
        char rn[80];
        snprintf(rn, sizeof rn, "ref.%s", res[r].name);
        size_t rnum = 0;
        double *ref = fx_tensor_f64(&f, rn, &rnum);
        CHECK(ref != NULL, "%s: reference tensor '%s' missing or unreadable", path, rn);
        if (!ref) continue;
        CHECK(rnum == res[r].numel, "%s: '%s': expected %zu values, got %zu", path, rn, res[r].numel, rnum);
        double terr;
        int has = fx_json_num(ej, rn, &terr);
        CHECK(has, "%s: torch_err has no entry '%s'", path, rn);
        if (rnum == res[r].numel && has) {
            double e = fx_max_err(res[r].data, ref, rnum), tol = fx_tol(terr);
            const char *label = (r == nr - 1 && wsi_ok) ? "y(inference ws)" : res[r].name;
            CHECK_V(e <= tol, "%-22s %-26s ours %.3e  torch %.3e  tol %.3e", cname, label, e, terr, tol);
            n_cmp++;
        }
        free(ref);
    }
    CHECK(n_cmp == nr && n_ref == nr - wsi_ok, "%s: compared %d of %d tensors (file has %d refs)", path, n_cmp,
          nr, n_ref);
    free(ti);
    free(res);
done:
    lstm_workspace_free(ws);
    lstm_workspace_free(wsi);
    free(x_u); free(gy_u); free(ghn); free(gcn); free(h0); free(c0);
    free(x); free(gy); free(y); free(y_u); free(y_inf); free(dx); free(dx_u);
    free(hn); free(cn); free(dh0); free(dc0);
    lstm_net_free(&net);
    lstm_st_free(&f);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "tests/fixtures";
    DIR *d = opendir(dir);
    CHECK(d != NULL, "cannot open fixture directory '%s'", dir);
    if (!d) return TEST_REPORT();
    char *names[256];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < 256) {
        size_t l = strlen(e->d_name);
        if (l > 12 && strcmp(e->d_name + l - 12, ".safetensors") == 0 && strncmp(e->d_name, "cell", 4) != 0) {
            int known = strncmp(e->d_name, "lstm_", 5) == 0 || strncmp(e->d_name, "gru_", 4) == 0;
            CHECK(known, "%s/%s: fixture names are lstm_*, gru_*.safetensors or cell*", dir, e->d_name);
            if (known) names[n++] = strdup(e->d_name);
        }
    }
    closedir(d);
    CHECK(n > 0, "no lstm_*.safetensors fixtures in '%s' (run tools/lstm_ref.py --out %s)", dir, dir);
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    for (int i = 0; i < n; i++) {
        run_case(dir, names[i]);
        free(names[i]);
    }
    printf("%d fixture files\n", n);
    return TEST_REPORT();
}
