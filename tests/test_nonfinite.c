/* test_nonfinite.c — NaN and ±Inf propagate as in PyTorch, on every kernel.
 *
 * 1. Gate kernels: the AVX-512 vector math (exp, σ, tanh) against the scalar
 *    oracle (libm) on NaN, ±Inf, huge, tiny and ordinary values, forward and
 *    backward; σ(+Inf) = 1, σ(−Inf) = 0, tanh(±Inf) = ±1, NaN stays NaN.
 * 2. The fused step against GEMM + scalar gates, with NaN/Inf in x, h, W.
 * 3. GEMM (nt, nn, tn, packed; 1 and 2 threads) on every kernel against the
 *    naive loops, NaN/Inf in A and B, 0·Inf products, beta = 0 over a NaN C.
 * 4. lstm_forward / lstm_backward / lstm_stream on the PyTorch cases (LSTM and GRU) of
 *    tests/fixtures/nonfinite/ (tools/nonfinite_ref.py), once per kernel
 *    configuration (LSTM_KERNEL=ref, generic, avx2, avx512 with and without
 *    the fused step): each runs in a child process, since the choice is read
 *    from the environment once per process.
 * Elements must have torch's class (NaN, +Inf, −Inf, finite) and finite ones
 * its value within 1e-4 (relative to 1 + |value|). */
#include <dirent.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#pragma GCC diagnostic ignored "-Wunused-function" /* fixture_util.h: not every helper is used */
#include "fixture_util.h"
#include "internal.h"
#include "test.h"

static int cls(double v) { return isnan(v) ? 0 : isinf(v) ? (v > 0 ? 1 : 2) : 3; }
static const char *cls_name(double v) { return (const char *[]){"nan", "+inf", "-inf", "finite"}[cls(v)]; }

/* Number of elements of a that differ from r in class, or (finite) by more
 * than tol·(1 + |r|); the first one is described in first[]. */
static size_t mismatches(const float *a, const float *r, size_t n, double tol, char *first, size_t fl) {
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        int ok = cls(a[i]) == cls(r[i]) && (cls(r[i]) != 3 || fabs((double)a[i] - r[i]) <= tol * (1 + fabs(r[i])));
        if (!ok && bad++ == 0) snprintf(first, fl, "[%zu] %g (%s) vs %g (%s)", i, a[i], cls_name(a[i]), r[i], cls_name(r[i]));
    }
    return bad;
}
static size_t count_nonfinite(const float *a, size_t n) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) k += !isfinite(a[i]);
    return k;
}

static uint64_t rs = 0x9e3779b97f4a7c15ull;
static float frand(float scale) {
    rs ^= rs << 13; rs ^= rs >> 7; rs ^= rs << 17;
    return ((float)(rs >> 40) / 16777216.0f * 2.0f - 1.0f) * scale;
}

static const float specials[] = {NAN, INFINITY, -INFINITY, 0.0f, -0.0f, 1.0f, -1.0f, 0.2f, -0.2f, 30.0f, -30.0f,
                                 88.0f, -88.0f, 89.5f, -89.5f, 104.5f, -104.5f, 1e30f, -1e30f, FLT_MAX, -FLT_MAX,
                                 1e-40f, -1e-40f};
#define NSPEC (sizeof specials / sizeof *specials)

/* ------------------------------------------------------------ 1. gate kernels */
#if LSTM_X86 /* the AVX-512 kernels are built (not with make NO_X86_KERNELS=1) */
static void test_gates(void) {
    if (!__builtin_cpu_supports("avx512f")) {
        TEST_SKIP("gates: no AVX-512F here, only the scalar oracle runs");
        return;
    }
    /* every special value in every gate, against every special c_prev (rows), H = 23 (a tail) */
    const int H = 23, B = (int)NSPEC, ldm = H;
    size_t na = (size_t)B * 4 * H, nh = (size_t)B * H;
    float *a1 = malloc(na * 4), *a2 = malloc(na * 4), *cp = malloc(nh * 4), *c1 = malloc(nh * 4), *c2 = malloc(nh * 4);
    float *m1 = malloc(nh * 4), *m2 = malloc(nh * 4), *g1 = malloc(na * 4), *g2 = malloc(na * 4);
    float *dm = malloc(nh * 4), *d1 = malloc(nh * 4), *d2 = malloc(nh * 4);
    for (int b = 0; b < B; b++)
        for (int j = 0; j < H; j++) {
            for (int q = 0; q < 4; q++) a1[(size_t)b * 4 * H + q * H + j] = specials[(size_t)(j + 5 * q + b) % NSPEC];
            cp[(size_t)b * H + j] = specials[(size_t)b];
        }
    memcpy(a2, a1, na * 4);
    lstm__gates_forward_ref(a1, 4 * H, c1, m1, ldm, cp, B, H);
    lstm__gates_forward_avx512(a2, 4 * H, c2, m2, ldm, cp, B, H);
    char w[160] = "";
    size_t bad = mismatches(a2, a1, na, 1e-6, w, sizeof w);
    CHECK_V(bad == 0, "gates forward: activations of %zu special pre-activations, %zu differ from libm %s", na, bad, w);
    bad = mismatches(c2, c1, nh, 1e-6, w, sizeof w) + mismatches(m2, m1, nh, 1e-6, w, sizeof w);
    CHECK_V(bad == 0 && count_nonfinite(c1, nh) > 0, "gates forward: c and h (%zu non-finite in c), %zu differ %s",
            count_nonfinite(c1, nh), bad, w);
    /* the defined limits, exactly */
    for (int b = 0; b < B; b++)
        for (int j = 0; j < H; j++)
            for (int q = 0; q < 4; q++) {
                size_t i = (size_t)b * 4 * H + q * H + j;
                float x = specials[(size_t)(j + 5 * q + b) % NSPEC], v = a2[i];
                float want = q == 2 ? (x == INFINITY ? 1.0f : x == -INFINITY ? -1.0f : v)
                                    : (x == INFINITY ? 1.0f : x == -INFINITY ? 0.0f : v);
                if (isnan(x) ? !isnan(v) : v != want) {
                    CHECK(0, "gate %d of %g gave %g, torch gives %g", q, x, v, isnan(x) ? NAN : want);
                    b = B, j = H, q = 4;
                }
            }
    /* tanh keeps the sign of a zero (tanh(-0) = -0 in libm and torch.tanh): every g from ±0 */
    int zeros = 0, zsign = 0;
    for (int b = 0; b < B; b++)
        for (int j = 0; j < H; j++) {
            size_t i = (size_t)b * 4 * H + 2 * H + j;
            float x = specials[(size_t)(j + 10 + b) % NSPEC];
            if (x != 0.0f) continue;
            zeros++;
            zsign += a2[i] == 0.0f && !signbit(a2[i]) == !signbit(x) && !signbit(a1[i]) == !signbit(x);
        }
    CHECK_V(zeros > 2 && zsign == zeros, "gates forward: tanh of ±0 keeps the zero's sign in %d of %d g lanes", zsign,
            zeros);
    /* NULL c_prev is zeros: f·0, so a NaN f still makes c NaN (torch's zeros) */
    for (size_t i = 0; i < na; i++) a1[i] = frand(2.0f);
    a1[H + 3] = NAN;                  /* row 0: f of unit 3 */
    a1[(size_t)4 * H + H + 20] = NAN; /* row 1: f of unit 20 (tail lanes) */
    memcpy(a2, a1, na * 4);
    lstm__gates_forward_ref(a1, 4 * H, c1, m1, ldm, NULL, B, H);
    lstm__gates_forward_avx512(a2, 4 * H, c2, m2, ldm, NULL, B, H);
    CHECK_V(isnan(c1[3]) && isnan(c2[3]) && isnan(c1[H + 20]) && isnan(c2[H + 20]) && count_nonfinite(c1, nh) == 2 &&
                count_nonfinite(c2, nh) == 2,
            "gates forward, NULL c_prev: NaN f gives NaN c in both kernels, nothing else non-finite");
    /* backward on activations from special values, with NaN/Inf in dm and dc */
    memcpy(a2, a1, na * 4); /* a1: activations now */
    for (size_t i = 0; i < nh; i++) {
        dm[i] = i % 7 == 0 ? specials[(i / 7) % NSPEC] : frand(1.0f);
        d1[i] = d2[i] = i % 5 == 1 ? specials[(i / 5) % NSPEC] : frand(1.0f);
    }
    for (size_t i = 0; i < na; i += 11) a2[i] = specials[(i / 11) % NSPEC] > 0 ? 1.0f : -0.0f; /* saturated */
    lstm__gates_backward_ref(g1, d1, dm, ldm, a2, 4 * H, c1, cp, B, H);
    lstm__gates_backward_avx512(g2, d2, dm, ldm, a2, 4 * H, c1, cp, B, H);
    bad = mismatches(g2, g1, na, 1e-6, w, sizeof w) + mismatches(d2, d1, nh, 1e-6, w, sizeof w);
    CHECK_V(bad == 0 && count_nonfinite(g1, na) > 0, "gates backward: %zu non-finite dG, %zu differ %s",
            count_nonfinite(g1, na), bad, w);
    free(a1); free(a2); free(cp); free(c1); free(c2); free(m1); free(m2); free(g1); free(g2);
    free(dm); free(d1); free(d2);
}

/* ------------------------------------------------------------ 2. fused step */
static void test_step(void) {
    if (!__builtin_cpu_supports("avx512f") || !lstm_gemm_kernel_available(LSTM_GEMM_AVX512)) {
        TEST_SKIP("fused step: no AVX-512 here");
        return;
    }
    int old = lstm_gemm_kernel();
    lstm_gemm_set_kernel(LSTM_GEMM_AVX512);
    const int H = 37, I = 5, G = 4 * H;
    for (int B = 1; B <= 6; B++) {
        size_t na = (size_t)B * G, nh = (size_t)B * H;
        float *wih = malloc((size_t)G * I * 4), *whh = malloc((size_t)G * H * 4), *bs = malloc((size_t)G * 4);
        float *x = malloc((size_t)B * I * 4), *h = malloc(nh * 4), *cp = malloc(nh * 4);
        float *pih = malloc(lstm__pack_units_size(H, I) * 4), *phh = malloc(lstm__pack_units_size(H, H) * 4);
        float *a1 = malloc(na * 4), *a2 = malloc(na * 4), *c1 = malloc(nh * 4), *c2 = malloc(nh * 4);
        float *m1 = malloc(nh * 4), *m2 = malloc(nh * 4);
        for (int i = 0; i < G * I; i++) wih[i] = frand(0.5f);
        for (int i = 0; i < G * H; i++) whh[i] = frand(0.3f);
        for (int i = 0; i < G; i++) bs[i] = frand(0.2f);
        for (int i = 0; i < B * I; i++) x[i] = frand(1.0f);
        for (size_t i = 0; i < nh; i++) h[i] = frand(1.0f), cp[i] = frand(1.0f);
        whh[(size_t)(2 * H + 33) * H + 4] = NAN;       /* g of unit 33 (second block) */
        wih[(size_t)(H + 1) * I + 2] = INFINITY;        /* f of unit 1 */
        x[(B - 1) * I + 2] = -INFINITY;                 /* last row: f of unit 1 = σ(-Inf) = 0 */
        h[(size_t)(B > 1 ? 1 : 0) * H + 30] = INFINITY; /* a row full of ±Inf/NaN pre-activations */
        cp[5] = -INFINITY;
        lstm__pack_units(pih, H, I, wih, I);
        lstm__pack_units(phh, H, H, whh, H);
        /* oracle: (b + x·W_ihᵀ) + h·W_hhᵀ with the FMA GEMM kernel, then the scalar gates */
        for (int b = 0; b < B; b++) memcpy(a1 + (size_t)b * G, bs, (size_t)G * 4);
        lstm_gemm_nt(B, G, I, x, I, wih, I, a1, G, 1.0f);
        lstm_gemm_nt(B, G, H, h, H, whh, H, a1, G, 1.0f);
        lstm__gates_forward_ref(a1, 4 * H, c1, m1, H, cp, B, H);
        lstm__step_avx512(B, H, H, I, 0, (H + 15) / 16, 0, a2, 4 * H, x, I, pih, bs, h, H, phh, cp, c2, m2, H);
        char w[160] = "";
        size_t bad = mismatches(a2, a1, na, 1e-6, w, sizeof w) + mismatches(c2, c1, nh, 1e-6, w, sizeof w) +
                     mismatches(m2, m1, nh, 1e-6, w, sizeof w);
        CHECK_V(bad == 0 && count_nonfinite(c1, nh) > 0, "fused step B=%d: %zu non-finite c, %zu differ %s", B,
                count_nonfinite(c1, nh), bad, w);
        free(wih); free(whh); free(bs); free(x); free(h); free(cp); free(pih); free(phh);
        free(a1); free(a2); free(c1); free(c2); free(m1); free(m2);
    }
    lstm_gemm_set_kernel(old);
}
#else
static void test_gates(void) { TEST_SKIP("gates: no SIMD kernels in this build"); }
static void test_step(void) { TEST_SKIP("fused step: not built in this build"); }
#endif

/* ------------------------------------------------------------ 3. GEMM */
static void fill_special(float *p, size_t n, int every) {
    for (size_t i = 0; i < n; i++) p[i] = frand(1.0f);
    for (size_t i = 3; i < n; i += (size_t)every) p[i] = (i / (size_t)every) % 4 == 0 ? 0.0f : specials[(i / (size_t)every) % 3];
}

static void test_gemm(void) {
    static const int shapes[][3] = {{1, 19, 7}, {5, 70, 37}, {13, 64, 300}, {150, 600, 40}};
    lstm__team *team = lstm__team_create(2);
    int old = lstm_gemm_kernel();
    for (int kern = 0; kern < LSTM_GEMM_NKERNELS; kern++) {
        if (lstm_gemm_set_kernel(kern) != 0) {
            TEST_SKIP("gemm %-7s not available on this CPU", lstm_gemm_kernel_name(kern));
            continue;
        }
        for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
            int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
            size_t na = (size_t)M * K, nb = (size_t)K * N, nc = (size_t)M * N;
            float *A = malloc(na * 4), *Bm = malloc(nb * 4), *C = malloc(nc * 4), *R = malloc(nc * 4);
            float *P = malloc(lstm_gemm_packed_size(N, K) * 4);
            fill_special(A, na, 3 * K + 7); /* about one special per 3 rows: most of C stays finite */
            fill_special(Bm, nb, 2 * N + 5);
            size_t bad = 0, nonf = 0;
            char w[160] = "";
            for (int op = 0; op < 5; op++) {
                /* nt: B as [N,K]; nn/tn: B as [K,N]; tn reads A as [K,M]; packed: nt's B */
                int mt = op == 4;
                for (size_t i = 0; i < nc; i++) C[i] = R[i] = (op & 1) ? frand(1.0f) : NAN; /* beta 0 ignores C */
                float beta = (op & 1) ? 1.0f : 0.0f;
                if (op == 0 || op == 4) {
                    lstm_gemm_nt_ref(M, N, K, A, K, Bm, K, R, N, beta);
                    if (mt) lstm_gemm_nt_mt(team, M, N, K, A, K, Bm, K, C, N, beta);
                    else lstm_gemm_nt(M, N, K, A, K, Bm, K, C, N, beta);
                } else if (op == 1) {
                    lstm_gemm_nn_ref(M, N, K, A, K, Bm, N, R, N, beta);
                    lstm_gemm_nn_mt(team, M, N, K, A, K, Bm, N, C, N, beta);
                } else if (op == 2) {
                    lstm_gemm_tn_ref(M, N, K, A, M, Bm, N, R, N, beta);
                    lstm_gemm_tn(M, N, K, A, M, Bm, N, C, N, beta);
                } else {
                    lstm_gemm_pack_nt(P, N, K, Bm, K);
                    lstm_gemm_nt_ref(M, N, K, A, K, Bm, K, R, N, beta);
                    lstm_gemm_packed_mt(team, M, N, K, A, K, P, C, N, beta);
                }
                bad += mismatches(C, R, nc, 1e-5, w, sizeof w);
                nonf += count_nonfinite(R, nc);
            }
            CHECK_V(bad == 0 && nonf > 0 && nonf < 5 * nc,
                    "gemm %-7s M=%3d N=%3d K=%3d nt/nn/tn/packed: %zu non-finite, %zu differ from the loops %s",
                    lstm_gemm_kernel_name(kern), M, N, K, nonf, bad, w);
            free(A); free(Bm); free(C); free(R); free(P);
        }
    }
    lstm_gemm_set_kernel(old);
    lstm__team_free(team);
}

/* ------------------------------------------------------------ 4. the engine */
typedef struct {
    const char *name;
    const float *p;
    size_t n;
} res_t;

static void run_case(const char *dir, const char *fname, int threads) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, fname);
    lstm_st_file f;
    lstm_net net = {0};
    if (lstm_st_read(&f, path) != LSTM_OK) {
        CHECK(0, "%s: %s", path, lstm_last_error());
        return;
    }
    double T_, B_;
    const char *cj = lstm_st_meta(&f, "config");
    int ok = fx_json_num(cj, "T", &T_) && fx_json_num(cj, "B", &B_) && lstm_net_from_st(&net, &f, path, "model.") == LSTM_OK;
    CHECK(ok, "%s: config or model unreadable: %s", path, lstm_last_error());
    if (!ok) { lstm_st_free(&f); return; }
    const int T = (int)T_, B = (int)B_, LD = net.cfg.num_layers * net.D;
    const size_t ny = (size_t)T * B * net.D * net.Hout, nx = (size_t)T * B * net.cfg.input_size;
    const int gru = net.cfg.cell == LSTM_CELL_GRU; /* no c: c0, gcn, cn, dc0 stay NULL */
    const size_t nh = (size_t)LD * B * net.Hout, nc = gru ? 0 : (size_t)LD * B * net.H;
    float *x = fx_tensor(&f, "x", NULL), *h0 = fx_tensor(&f, "h0", NULL), *c0 = fx_tensor(&f, "c0", NULL);
    float *gy = fx_tensor(&f, "gy", NULL), *ghn = fx_tensor(&f, "ghn", NULL), *gcn = fx_tensor(&f, "gcn", NULL);
    float *y = malloc(ny * 4), *yi = malloc(ny * 4), *ys = malloc(ny * 4), *hn = malloc(nh * 4), *cn = gru ? NULL : malloc(nc * 4);
    float *dx = malloc(nx * 4), *dh0 = malloc(nh * 4), *dc0 = gru ? NULL : malloc(nc * 4);
    lstm_workspace *ws = NULL, *wsi = NULL, *wss = NULL;
    lstm_state state = {0};
    int sok = x && gy && ghn && (gru || (gcn && cn && dc0)) && y && yi && ys && hn && dx && dh0 &&
              lstm_workspace_init(&ws, &net, T, B, LSTM_WS_TRAIN) == LSTM_OK &&
              lstm_workspace_init(&wsi, &net, T, B, 0) == LSTM_OK && lstm_workspace_set_threads(ws, threads) == LSTM_OK &&
              lstm_workspace_set_threads(wsi, threads) == LSTM_OK;
    CHECK(sok, "%s: setup: %s", path, lstm_last_error());
    if (sok) {
        lstm_net_zero_grad(&net);
        sok = lstm_forward(&net, ws, T, B, x, h0, c0, y, hn, cn) == LSTM_OK &&
              lstm_backward(&net, ws, gy, ghn, gcn, dx, dh0, dc0) == LSTM_OK &&
              lstm_forward(&net, wsi, T, B, x, h0, c0, yi, NULL, NULL) == LSTM_OK;
        CHECK(sok, "%s: forward/backward: %s", path, lstm_last_error());
    }
    /* streaming one step per call (zero state = NULL h0/c0 above; the state
     * must then start at zeros): unidirectional nets only */
    int streamed = 0;
    if (sok && net.D == 1 && lstm_workspace_init(&wss, &net, 1, B, 0) == LSTM_OK &&
        lstm_state_init(&state, &net, B) == LSTM_OK) {
        if (h0) memcpy(state.h, h0, nh * 4);
        if (h0 && c0) memcpy(state.c, c0, nc * 4);
        size_t step = (size_t)B * net.cfg.input_size, ystep = (size_t)B * net.Hout;
        streamed = 1;
        for (int t = 0; t < T && streamed; t++)
            streamed = lstm_stream(&net, wss, &state, 1, x + t * step, ys + t * ystep) == LSTM_OK;
        CHECK(streamed, "%s: lstm_stream: %s", path, lstm_last_error());
    }
    if (sok) {
        int ntens = lstm_net_tensors(&net, NULL);
        lstm_tensor_info ti[64];
        if (ntens > 64) ntens = 64;
        lstm_net_tensors(&net, ti);
        res_t res[80];
        int nr = 0;
        res[nr++] = (res_t){"y", y, ny};
        res[nr++] = (res_t){"y", yi, ny};
        if (streamed) res[nr++] = (res_t){"y", ys, ny};
        res[nr++] = (res_t){"hn", hn, nh};
        if (!gru) res[nr++] = (res_t){"cn", cn, nc};
        res[nr++] = (res_t){"grad.input", dx, nx};
        res[nr++] = (res_t){"grad.h0", dh0, nh};
        if (!gru) res[nr++] = (res_t){"grad.c0", dc0, nc};
        char gname[64][64];
        for (int k = 0; k < ntens; k++) {
            snprintf(gname[k], sizeof gname[k], "grad.%.47s", ti[k].name);
            res[nr++] = (res_t){gname[k], net.grads + ti[k].offset, ti[k].numel};
        }
        size_t bad = 0, total = 0, nonf = 0;
        char w[200] = "", first[260] = "";
        for (int r = 0; r < nr; r++) {
            char rn[80];
            size_t n = 0;
            snprintf(rn, sizeof rn, "ref.%s", res[r].name);
            float *ref = fx_tensor(&f, rn, &n);
            CHECK(ref && n == res[r].n, "%s: %s missing or of %zu values (want %zu)", path, rn, n, res[r].n);
            if (!ref || n != res[r].n) { free(ref); continue; }
            size_t b = mismatches(res[r].p, ref, n, 1e-4, w, sizeof w);
            if (b && !bad) snprintf(first, sizeof first, "%s%s", res[r].name, w);
            bad += b;
            total += n;
            nonf += count_nonfinite(ref, n);
            free(ref);
        }
        CHECK_V(bad == 0, "%-26s %s threads=%d: %zu values (%zu non-finite in torch), %zu differ %s", fname,
                getenv("LSTM_KERNEL"), threads, total, nonf, bad, first);
    }
    lstm_state_free(&state);
    lstm_workspace_free(ws); lstm_workspace_free(wsi); lstm_workspace_free(wss);
    free(x); free(h0); free(c0); free(gy); free(ghn); free(gcn); free(y); free(yi); free(ys); free(hn); free(cn);
    free(dx); free(dh0); free(dc0);
    lstm_net_free(&net);
    lstm_st_free(&f);
}

static void engine_cases(void) {
    const char *dir = "tests/fixtures/nonfinite";
    DIR *d = opendir(dir);
    CHECK(d != NULL, "cannot open %s (run from the repository root)", dir);
    if (!d) return;
    char names[32][128];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 32) {
        size_t l = strlen(e->d_name);
        if (l > 12 && l < 128 && strcmp(e->d_name + l - 12, ".safetensors") == 0) snprintf(names[n++], 128, "%s", e->d_name);
    }
    closedir(d);
    CHECK(n >= 16, "%s: %d cases, expected 16: 9 LSTM, 7 GRU (tools/nonfinite_ref.py)", dir, n);
    for (int i = 0; i < n; i++)
        for (int threads = 1; threads <= 2; threads++) run_case(dir, names[i], threads);
}

/* Runs engine_cases in a child with the given environment; adds its counts. */
static void engine_under(const char *kernel, const char *fused) {
    int fd[2];
    if (pipe(fd) != 0) { CHECK(0, "pipe"); return; }
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        close(fd[0]);
        setenv("LSTM_KERNEL", kernel, 1);
        if (fused) setenv("LSTM_FUSED", fused, 1);
        else unsetenv("LSTM_FUSED");
        int want = !strcmp(kernel, "ref") ? LSTM_GEMM_REF : !strcmp(kernel, "generic") ? LSTM_GEMM_GENERIC
                   : !strcmp(kernel, "avx2") ? LSTM_GEMM_AVX2 : LSTM_GEMM_AVX512;
        /* the parent resolved the GEMM choice already: set it; the gate choice is resolved here */
        int avx512 = want == LSTM_GEMM_AVX512 && lstm_gemm_kernel_available(want);
        if (lstm_gemm_set_kernel(want) != 0 || lstm__kernel_gates_avx512() != avx512) {
            printf("ok   engine LSTM_KERNEL=%s: not available on this CPU\n", kernel);
        } else {
            test_pass_ = test_fail_ = 0;
            engine_cases();
        }
        int counts[2] = {test_pass_, test_fail_};
        fflush(stdout);
        if (write(fd[1], counts, sizeof counts) != (ssize_t)sizeof counts) _exit(2);
        _exit(0);
    }
    close(fd[1]);
    int counts[2] = {0, 0}, status = 0;
    ssize_t got = pid > 0 ? read(fd[0], counts, sizeof counts) : -1;
    close(fd[0]);
    if (pid > 0) waitpid(pid, &status, 0);
    CHECK(pid > 0 && got == (ssize_t)sizeof counts && WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "engine LSTM_KERNEL=%s: child failed", kernel);
    test_pass_ += counts[0];
    test_fail_ += counts[1];
}

int main(void) {
    test_gates();
    test_step();
    test_gemm();
    engine_under("ref", NULL);
    engine_under("generic", NULL);
    engine_under("avx2", NULL);
    engine_under("avx512", NULL);
    engine_under("avx512", "0");
    return TEST_REPORT();
}
