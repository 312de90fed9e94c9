// RTNeural's compile-time LSTM layer (Eigen backend), one sample per call, as an audio plug-in runs it.
// A copy of ../shared/anchors/rtneural_lstm.cpp with more sizes: (I, H) = (1, H) for H in
// [H_FIRST, H_LAST] (compile-time, default 8..128) and (256, 256) unless -DNO_256.
// RTNeural (https://github.com/jatinchowdhury18/RTNeural, commit 1fb1f07) is BSD-3-Clause,
// Copyright (c) 2020 jatinchowdhury18; its headers are used unmodified (see its LICENSE).
//
// Prints one JSON line per size: ns per step as the median and the minimum of 5 runs of
// 48000 steps after a warm-up run (the same input signal and weight law as the anchor);
// RTN_STEPS and RTN_RUNS in the environment change those two numbers (BENCHMARKS.md's
// batch-1 table: the fastest of 1500 runs of 2000 steps).
// Arguments: optional hidden sizes to run (default: all compiled ones; 256 means (256, 256)).
// Built by bench/run.sh (needs libeigen3-dev); `make` and `make test` never build it.
#define EIGEN_STACK_ALLOCATION_LIMIT 0
#include <RTNeural/RTNeural.h>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <vector>
#ifndef H_FIRST
#define H_FIRST 8
#endif
#ifndef H_LAST
#define H_LAST 128
#endif
static std::vector<int> wanted;
static bool want(int H) { return wanted.empty() || std::find(wanted.begin(), wanted.end(), H) != wanted.end(); }

template <int I, int H> static void run() {
    if (!want(I == 256 ? 256 : H)) return;
    using L = RTNeural::LSTMLayerT<float, I, H>;
    auto owner = std::make_unique<L>(); L &layer = *owner;
    std::mt19937 g(1); std::uniform_real_distribution<float> u(-0.1f, 0.1f);
    std::vector<std::vector<float>> wi(I, std::vector<float>(4 * H)), wh(H, std::vector<float>(4 * H));
    std::vector<float> b(4 * H);
    for (auto &r : wi) for (auto &v : r) v = u(g);
    for (auto &r : wh) for (auto &v : r) v = u(g);
    for (auto &v : b) v = u(g);
    layer.setWVals(wi); layer.setUVals(wh); layer.setBVals(b); layer.reset();
    const char *es = std::getenv("RTN_STEPS"), *er = std::getenv("RTN_RUNS");
    const int N = es ? std::atoi(es) : 48000, R = er ? std::atoi(er) : 5;
    Eigen::Matrix<float, I, 1> x;
    double sink = 0;
    std::vector<double> t;
    for (int r = 0; r <= R; r++) {
        auto t0 = std::chrono::steady_clock::now();
        for (int n = 0; n < N; n++) {
            for (int i = 0; i < I; i++) x(i) = 0.5f * std::sin(0.01f * (n + i));
            layer.forward(x);
            sink += layer.outs[0];
        }
        double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (r > 0) t.push_back(dt / N * 1e9);
    }
    std::sort(t.begin(), t.end());
    std::printf("{\"impl\": \"rtneural\", \"input_size\": %d, \"hidden\": %d, \"ns_per_step\": %.2f, "
                "\"ns_min\": %.2f, \"runs\": %zu, \"steps\": %d, \"sink\": %g}\n",
                I, H, t[t.size() / 2], t[0], t.size(), N, sink);
}

template <int H> static void sizes() {
    if constexpr (H <= H_LAST) {
        run<1, H>();
        sizes<H + 1>();
    }
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (argv[i][0] != '-') wanted.push_back(std::atoi(argv[i])); /* (--json: always JSON) */
    sizes<H_FIRST>();
#ifndef NO_256
    run<256, 256>();
#endif
    return 0;
}
