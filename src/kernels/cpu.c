/* cpu.c — what the engine knows about the CPU it runs on, from cpuid (never
 * from the build machine): vendor, family and model, the data-cache sizes,
 * whether 512-bit FMAs run at full width, and the GEMM blocking chosen from
 * them.  Read once per process (lstm__cpu); LSTM_CPU_L2=<bytes> overrides the
 * L2 size (for tests and experiments).
 *
 * Blocking (gemm.c): a micro-panel of A (mr x kc) stays in L1 while the
 * kernel runs over the B block (kc x nc), which stays in L2.  So kc = 256
 * when L1d >= 32 KiB (a 12 x 256 A panel is 12 KiB, 3/8 of it), else
 * 128; nc: the largest multiple of 64 (<= 512) with kc·nc·4 bytes <= L2 / 2
 * (the other half for the A panels, C and the streams), at least 64.
 *   Zen 4/Zen 5, Skylake-SP and later Xeons (L2 1-2 MiB): kc 256, nc 512.
 *   Skylake client, Haswell (L2 256 KiB): kc 256, nc 128.
 *
 * Full-width 512-bit FMA (two 512-bit FMAs per cycle per core): AMD family
 * 26 (Zen 5) except the mobile models with a 256-bit datapath (model 0x20-
 * 0x2f, 0x60-0x7f); Intel Xeon Scalable (Skylake-SP to Granite Rapids).
 * Zen 4 (family 25) and Intel client cores run a 512-bit FMA over one
 * 256-bit pair (split).  Both keep the same kernels: every kernel keeps at
 * least 16 independent accumulators, enough for 2 FMAs/cycle at latency 4,
 * and the results must not depend on the CPU model; the flag is printed by
 * tests/test_gemm.c so that benchmark rows of the two kinds can be told apart.
 *
 * The feature flags avx2 (with FMA) and avx512 (F + VL, with avx2) are the only
 * ones the library reads: dispatch.c decides the kernels from them. */
#include <stdlib.h>
#include <limits.h>
#include <string.h>

#include "internal.h"

#if LSTM_X86 /* off x86-64 or with -DLSTM_NO_X86: no cpuid, no SIMD kernels */
#include <cpuid.h>

static void cpuid(unsigned leaf, unsigned sub, unsigned r[4]) {
    r[0] = r[1] = r[2] = r[3] = 0;
    __cpuid_count(leaf, sub, r[0], r[1], r[2], r[3]);
}

/* Deterministic cache parameters (Intel leaf 4, AMD leaf 0x8000001d share the format). */
static void caches_from(unsigned leaf, lstm__cpu_info *c) {
    for (unsigned i = 0; i < 16; i++) {
        unsigned r[4];
        cpuid(leaf, i, r);
        unsigned type = r[0] & 31, level = (r[0] >> 5) & 7;
        if (type == 0) break;
        if (type != 1 && type != 3) continue; /* data or unified */
        long size = (long)((r[1] >> 22) + 1) * (((r[1] >> 12) & 0x3ff) + 1) * ((r[1] & 0xfff) + 1) * ((long)r[2] + 1);
        if (level == 1) c->l1d = size;
        else if (level == 2) c->l2 = size;
        else if (level == 3) c->l3 = size;
    }
}

static void detect(lstm__cpu_info *c) {
    unsigned r[4];
    cpuid(0, 0, r);
    unsigned maxleaf = r[0];
    char v[13];
    memcpy(v, &r[1], 4);
    memcpy(v + 4, &r[3], 4);
    memcpy(v + 8, &r[2], 4);
    v[12] = 0;
    c->vendor = !strcmp(v, "GenuineIntel") ? LSTM__CPU_INTEL : !strcmp(v, "AuthenticAMD") ? LSTM__CPU_AMD : LSTM__CPU_OTHER;
    cpuid(1, 0, r);
    unsigned fam = (r[0] >> 8) & 15, mod = (r[0] >> 4) & 15;
    if (fam == 15) fam += (r[0] >> 20) & 0xff;
    if (fam == 6 || fam >= 15) mod |= ((r[0] >> 16) & 15) << 4;
    c->family = (int)fam;
    c->model = (int)mod;
    cpuid(0x80000000u, 0, r);
    unsigned maxext = r[0];
    if (c->vendor == LSTM__CPU_AMD && maxext >= 0x8000001du) caches_from(0x8000001du, c);
    else if (maxleaf >= 4) caches_from(4, c);
    if (c->vendor == LSTM__CPU_AMD && (c->l1d == 0 || c->l2 == 0) && maxext >= 0x80000006u) {
        cpuid(0x80000005u, 0, r);
        if (!c->l1d) c->l1d = (long)(r[2] >> 24) * 1024;
        cpuid(0x80000006u, 0, r);
        if (!c->l2) c->l2 = (long)(r[2] >> 16) * 1024;
        if (!c->l3) c->l3 = (long)(r[3] >> 18) * 512 * 1024;
    }
    __builtin_cpu_init();
    c->avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    c->avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") && c->avx2;
    if (c->avx512) {
        if (c->vendor == LSTM__CPU_AMD)
            c->fma512_full = c->family >= 26 && !((c->model >= 0x20 && c->model <= 0x2f) || (c->model >= 0x60 && c->model <= 0x7f));
        else if (c->vendor == LSTM__CPU_INTEL) /* Xeon Scalable: SKX/CLX/CPX, ICX, SPR, EMR, GNR */
            c->fma512_full = c->family == 6 && (c->model == 0x55 || c->model == 0x6a || c->model == 0x6c ||
                                                c->model == 0x8f || c->model == 0xcf || c->model == 0xad ||
                                                c->model == 0xae);
    }
}
#else
static void detect(lstm__cpu_info *c) { c->vendor = LSTM__CPU_OTHER; } /* caches unknown, no avx2/avx512 */
#endif

/* The blocking rule in the header comment; sizes 0 (unknown) count as the common 32 KiB / 1 MiB. */
void lstm__cpu_blocking(long l1d, long l2, int *kc, int *nc) {
    if (l1d <= 0) l1d = 32 * 1024;
    if (l2 <= 0) l2 = 1024 * 1024;
    *kc = l1d >= 32 * 1024 ? 256 : 128;
    long n = l2 / 2 / ((long)*kc * 4) / 64 * 64;
    *nc = n > 512 ? 512 : n < 64 ? 64 : (int)n;
}

static lstm__cpu_info info;

/* An override from the environment: 0 or 1 when NAME is exactly "0" or "1", else dflt. */
static int env01(const char *name, int dflt) {
    const char *e = getenv(name);
    return e && (e[0] == '0' || e[0] == '1') && !e[1] ? e[0] == '1' : dflt;
}
static void publish_blocking(int kc, int nc);
static int info_state; /* 0: not read, 2: read (pthread_once-like, with atomics) */

const lstm__cpu_info *lstm__cpu(void) {
    if (__atomic_load_n(&info_state, __ATOMIC_ACQUIRE) == 2) return &info;
    lstm__cpu_info c;
    memset(&c, 0, sizeof c);
    detect(&c);
    const char *e = getenv("LSTM_CPU_L2");
    if (e && atol(e) > 0) c.l2 = atol(e);
    lstm__cpu_blocking(c.l1d, c.l2, &c.gemm_kc, &c.gemm_nc);
    /* A transposed A (tn: C = dGᵀ·X) read in place walks its micro-panel down
     * a column, one line per k, ld floats apart.  On Zen 5 that beat packing
     * (2048x512x6400, 2 threads 326 -> 362 GFLOP/s, commit 54dfaa3).  On Intel
     * Xeon (Emerald Rapids, family 6 model 207, 2026-11-30, tools/bench_gemm
     * T = 100, B = 64, I = H) packing wins at every ld tried: dW_ih 2 threads,
     * in place / packed, H = 200 137/188, 256 136/240, 300 127/196, 320
     * 113/206, 384 141/253, 512 158/237 GFLOP/s.  So in place on AMD only. */
    c.gemm_ta_direct = c.vendor == LSTM__CPU_AMD;
    c.gemm_ta_direct = env01("LSTM_GEMM_TA_DIRECT", c.gemm_ta_direct);
    /* Two row tiles (B = 7..12) of a fused step, the next block's weights
     * prefetched or not (step_tiles.h): on Zen 5 without is faster (0.90-1.00
     * the time); on a Xeon (Emerald Rapids, 2 threads, T = 100, 3 interleaved
     * rounds, 2026-11-30, ms with / without) with is: I = 64, H = 1024, B = 8
     * 42-49 / 46-51, its GRU 32-36 / 35-39; 768-b8 train 107-117 / 112-124.
     * So off on AMD family 26 and later, on elsewhere. */
    c.step_pf_tiles2 = !(c.vendor == LSTM__CPU_AMD && c.family >= 26);
    c.step_pf_tiles2 = env01("LSTM_STEP_PF_TILES2", c.step_pf_tiles2);
    /* 8 rows of the LSTM's fused step as one tile in two passes over k (gates i, f, then
     * g, o), each weight line read once a step, instead of two tiles of 4 that read the
     * block twice (the second time from L2).  On a Xeon (Emerald Rapids, 2 threads,
     * forward, 2026-11-30, 6 interleaved pairs, the fastest iteration of each, two
     * passes / two tiles): I = 64, H = 1024, B = 8 0.92-0.99 (median 0.96); I = H = 512,
     * B = 8 0.93-0.98 (0.94); I = H = 1024, B = 8 0.94-1.21 (0.95); 768-b8 forward and
     * train even (5 pairs, medians 1.02 and 0.98).  On Zen 5 (session 15 of
     * BENCHMARKS.md) the same tile took 1.08 the time at I = 64, H = 1024 and 1.05 at
     * 768-b8.  So on Intel only. */
    c.step_two_pass8 = c.vendor == LSTM__CPU_INTEL;
    c.step_two_pass8 = env01("LSTM_STEP_TWO_PASS8", c.step_two_pass8);
    /* A unit block of exactly a quarter of L2 (its weights of both products), fused
     * with x·W_ihᵀ or the input GEMM before the loop.  On a Xeon (Emerald Rapids, 2 MB
     * L2, 2026-11-30, 2 threads, interleaved pairs, ratios GEMM / fused): I = H = 1024,
     * B = 64, T = 50 (fwd-1024) in session 17 0.98 (6 pairs), then even (5); in session
     * 20, a busier host, 272-372 ms fused vs 249-328, the GEMM faster in 21 of 22 pairs
     * (median 0.90); its training at T = 25 507-544 vs 489-512 (4 of 4); I = 1536,
     * H = 512, B = 64 even (0.97-1.07).  Zen 5 (1 MB L2) measured its quarter, fwd-512,
     * even (session 9: GEMM 79.6-80.0 vs fused 75.4-82.5 ms).  So fused except on Intel. */
    c.step_x_quarter = c.vendor != LSTM__CPU_INTEL;
    /* The batch-1 step past L1 streams its pack (W_hh's rows, and W_ih's with x) from L2,
     * or past L2 from L3.  Software prefetch two rows ahead made it ~20 % faster on Zen 4.
     * On Zen 5 (family 26), one thread, idle, interleaved A/B of `lstm bench --mode step`
     * (2026-11-29): H = 56 and 80 5-7 % faster without it, H = 96 3 % slower, H = 128
     * equal; H = 256's whole 1 MB pack from L3 once 10.9 us without and 8.1 with, equal
     * in later runs.  On a Xeon (Emerald Rapids, L2 2 MB, 2026-11-30, 3 rounds of
     * 20000 steps, I = 1, ms without / with): H = 52 7.8-7.9 / 9.6, 64 10.7-11.1 /
     * 12.8-12.9, 80 17.2-17.6 / 20.0-20.3, 104 30.6-32.7 / 34.6-35.0, 128 45.0-45.4
     * / 51.5-51.7; I = H = 256 (2 MB, 2000 steps) 49-56 / 53-59.  So on Zen 5 and on
     * Intel only past half of L2, where the pack comes from L3; elsewhere (Zen 4)
     * always.  (A weak rule: code layout moves these sizes by up to 20 %.) */
    c.step1_pf_bytes = (c.vendor == LSTM__CPU_AMD && c.family >= 26) || c.vendor == LSTM__CPU_INTEL
                           ? (c.l2 > 0 ? c.l2 / 2 : 512L * 1024)
                           : 0;
    const int pf = env01("LSTM_STEP1_PREFETCH", -1);
    if (pf >= 0) c.step1_pf_bytes = pf ? 0 : LONG_MAX;
    /* the first thread to get here publishes its copy; any other waits for it */
    int expected = 0;
    if (__atomic_compare_exchange_n(&info_state, &expected, 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        info = c;
        __atomic_store_n(&info_state, 2, __ATOMIC_RELEASE);
        return &info;
    }
    while (__atomic_load_n(&info_state, __ATOMIC_ACQUIRE) != 2) {
    }
    return &info;
}

/* For tests: another blocking (kc in [8, 256], nc a multiple of 64 in [64, 512]);
 * not to be called while products run. */
void lstm__cpu_set_gemm_blocking(int kc, int nc) {
    lstm__cpu();
    publish_blocking(kc < 8 ? 8 : kc > 256 ? 256 : kc, nc < 64 ? 64 : nc > 512 ? 512 : nc / 64 * 64);
}

/* For tests: read a transposed A in place (1) or pack it (0); the bits must not change. */
void lstm__cpu_set_gemm_ta_direct(int on) {
    lstm__cpu();
    info.gemm_ta_direct = on != 0;
}

void lstm__cpu_set_step_two_pass8(int on) {
    lstm__cpu();
    info.step_two_pass8 = on != 0;
}

/* For tools/ab_hooks: the other choice of a rule, for an A/B; no bit depends on these. */
void lstm__cpu_set_step_pf_tiles2(int on) {
    lstm__cpu();
    info.step_pf_tiles2 = on != 0;
}

void lstm__cpu_set_step1_pf_bytes(long bytes) {
    lstm__cpu();
    info.step1_pf_bytes = bytes;
}

/* Whether a batch-1 step call prefetched its pack since the last lstm__step1_pf_seen
 * (tools/ab_hooks: the rule's side, as the kernel decided it).  The note stores only
 * when the flag is clear: two threads' steps then share the line read-only, not a write
 * a step each. */
static int step1_pf_seen;
void lstm__step1_pf_note(void) {
    if (!__atomic_load_n(&step1_pf_seen, __ATOMIC_RELAXED)) __atomic_store_n(&step1_pf_seen, 1, __ATOMIC_RELAXED);
}
int lstm__step1_pf_seen(void) { return __atomic_exchange_n(&step1_pf_seen, 0, __ATOMIC_RELAXED); }

static void publish_blocking(int kc, int nc) {
    info.gemm_kc = kc;
    info.gemm_nc = nc;
}
