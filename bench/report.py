#!/usr/bin/env python3
"""report.py: turns bench/run.sh's JSON lines into the markdown report
(printed, and written to BENCHMARKS.md with --write).  Standard library only."""
import argparse
import json
import os
import re
import statistics
import sys

ROWS = ["fwd-512", "train-512", "fwd-1024", "stream-256", "charlm-train", "audio-step",
        "gru-fwd-512", "gru-train-512", "gru-stream-256", "gru-audio-step",
        "fwd-768-b8", "train-768-b8", "fwd-1024-b8", "gru-train-768-b8",
        "deep-fwd-256", "deep-train-256", "bidir-fwd-256", "bidir-train-256",
        "proj-fwd-1024", "proj-train-1024", "gru-bidir-fwd-256", "gru-bidir-train-256"]
# speed targets: ours/oneDNN, ours/PyTorch (>= is met), and µs per step
TARGET_ONEDNN = {"stream-256": 2.0, "gru-stream-256": 2.0}
TARGET_TORCH = 4.0
TARGET_US_STEP = {"audio-step": 1.0}
TARGET_RTNEURAL = 1.5   # one step per call: ours/RTNeural
TARGET_SAMPLE_TORCH = 10.0  # greedy sampling: ours/PyTorch bytes per second
TARGET_SAMPLE_STEP = 1.5    # µs per sampled byte / µs per step of the layers alone (at most)
BEGIN, END, HIST = "<!-- latest:begin -->", "<!-- latest:end -->", "<!-- history -->"
# Earlier runs are kept in one section per CPU; runs without a "- cpu:" line predate it and
# were all made on Zen 4 (family 25).
HIST_CPU = "<!-- history:%s -->"
OLD_CPU = "AMD family 25 (Zen 4)"
# A hand-written block between these markers (a summary over several runs) is kept as it is.
SUM_BEGIN, SUM_END = "<!-- summary:begin -->", "<!-- summary:end -->"


def cpu_label(vendor, family, model):
    """'AMD family 26 (Zen 5)' and the like, from /proc/cpuinfo's fields."""
    if not family:
        return "unknown CPU"
    v = {"AuthenticAMD": "AMD", "GenuineIntel": "Intel"}.get(vendor, vendor or "?")
    gen = ""
    try:
        f, m = int(family), int(model or 0)
        if v == "AMD" and f == 26:
            gen = "Zen 5"
        elif v == "AMD" and f == 25:
            gen = "Zen 4" if 0x10 <= m < 0x20 or 0x60 <= m < 0x80 or 0xa0 <= m < 0xb0 else "Zen 3"
        elif v == "AMD" and f == 23:
            gen = "Zen 1/2"
    except ValueError:
        pass
    return "%s family %s%s" % (v, family, " (%s)" % gen if gen else "")


def fmt_ms(r):
    if r is None:
        return "—"
    if "error" in r:
        return "error"
    s = "%.4g" % r["ms"]
    if "us_per_step" in r:
        s += " (%.3g µs/step)" % r["us_per_step"]
    return s


def fmt_gf(r):
    if r is None or "error" in r:
        return "—"
    return "%.3g" % r["gflops"]


def ratio(a, b):
    if a is None or b is None or "error" in a or "error" in b:
        return None
    return b["ms"] / a["ms"]


def paired_ratio(runs, n, other, key=lambda r: r["ms"]):
    """Over run.sh's --rounds, the median of each round's ratio key(other) / key(ours): a round
    runs every side of a row back to back, so its two times saw the same state of the machine
    (the sides' median rounds can be different rounds).  None with fewer than 2 paired rounds."""
    o, t = runs.get((n, "ours"), []), runs.get((n, other), [])
    rs = [key(b) / key(a) for a, b in zip(o, t) if "error" not in a and "error" not in b and key(a) > 0]
    return statistics.median(rs) if len(rs) > 1 else None


def ns_step(r):
    """ns per step of a step row: ours reports us_per_step, RTNeural ns_per_step."""
    return r["ns_per_step"] if "ns_per_step" in r else r["us_per_step"] * 1e3


def ns_step_min(r):
    """The fastest run's ns per step (ours: ms_min over seq steps)."""
    return r["ns_min"] if "ns_min" in r else r["ms_min"] * 1e6 / r["seq"]


def median_run(rs):
    """The run with the median time of one row and side over run.sh's --rounds (the lower
    middle of an even count); a run that failed counts only when every round failed."""
    ok = [r for r in rs if "error" not in r]
    if not ok:
        return rs[-1]
    key = next((k for k in ("ns_per_step", "us_per_step", "ms") if k in ok[0]), None)
    if key is None:
        return ok[-1]
    ok.sort(key=lambda r: r[key])
    m = dict(ok[(len(ok) - 1) // 2])
    m["rounds"] = len(ok)
    return m


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--results", required=True)
    for k in ["label", "date", "machine", "command", "git", "gcc", "torch", "onednn", "env",
              "load", "cpus", "elapsed", "cpu-vendor", "cpu-family", "cpu-model", "probe"]:
        p.add_argument("--" + k, default="")
    p.add_argument("--write", default="")
    a = p.parse_args()

    runs = {}
    raw = []
    with open(a.results) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            raw.append(line)
            r = json.loads(line)
            impl = {"lstm": "ours"}.get(r["impl"], r["impl"])
            runs.setdefault((r["row"], impl), []).append(r)
    res = {k: median_run(v) for k, v in runs.items()}
    names = [n for n in ROWS if any((n, i) in res for i in ("ours", "onednn", "pytorch"))]
    cpu = cpu_label(a.cpu_vendor, a.cpu_family, a.cpu_model)

    out = []
    title = "Benchmark, %s" % cpu + (": " + a.label if a.label else "")
    out.append("### " + title)
    out.append("")
    out.append("<!-- cpu:%s -->" % cpu)
    out.append("- cpu: %s; %s, model %s" % (a.machine, cpu, a.cpu_model or "?"))
    out.append("- date: %s" % a.date)
    out.append("- command: `%s` (%s s); tree: %s" % (a.command, a.elapsed, a.git))
    out.append("- compilers/libraries: %s; PyTorch %s; oneDNN %s" %
               (a.gcc, a.torch or "n/a", a.onednn or "n/a"))
    out.append("- load average (1/5/15 min) before -> after: %s" % a.load)
    nr = max((len(v) for v in runs.values()), default=1)
    if nr > 1:
        out.append("- rounds: %d (every row and side once per round, in turn); each time in the tables is "
                   "the round with the median time, and each ratio the median of the rounds' ratios (a "
                   "round times both sides back to back; their median rounds can be different rounds)" % nr)
    # Other work: the load average before the run (the one after it counts this run's own
    # threads), or a probe whose 2 threads got less than 1.6 cores' worth of FMA throughput.
    try:
        l1 = [float(part.split()[0]) for part in a.load.split("->")]
        scale = [float(x) for x in re.findall(r"fma512 1t [0-9.]+ GFLOP/s, 2t [0-9.]+ \(([0-9.]+)x\)", a.probe)]
        short = [x for x in scale if x < 1.6]
        if l1[0] >= 0.5 or short:
            why = ("1-minute load average %.2f on %s CPUs before the run" % (l1[0], a.cpus or "?")
                   if l1[0] >= 0.5 else "the probe's 2 threads ran at %.2fx one thread's FMA rate" % min(short))
            out.append("- **warning: other work shared the machine (%s); multi-threaded rows, "
                       "oneDNN's and PyTorch's OpenMP threads especially, can be much slower "
                       "than on an idle machine. Compare only rows from quiet runs.**" % why)
    except (ValueError, IndexError):
        pass
    if a.probe:
        out.append("- cores really there (tools/cpu_probe.c, before -> after; N threads / 1 thread "
                   "near N means N cores, near 1 one core's worth): %s" % a.probe)
    if a.env:
        out.append("- environment that can affect numpy/torch/oneDNN: `%s`" % a.env)
    else:
        out.append("- OPENBLAS_CORETYPE, OPENBLAS_L2_SIZE, OMP_NUM_THREADS: not set")
    out.append("")
    if names:
        out.append("Times are medians of ms per iteration (one whole sequence); ratios are speed "
                   "ratios, > 1 means ours is faster. gru-* rows: nn.GRU, oneDNN lbr_gru. "
                   "Targets: ≥ 1× oneDNN (≥ 2× for stream-256 and gru-stream-256), "
                   "≥ 4× PyTorch, audio-step ≤ 1 µs/step.")
        out.append("")
        out.append("| shape | I,H,L,B,T | mode | thr | ours ms | ours GFLOP/s | oneDNN ms | oneDNN GFLOP/s "
                   "| PyTorch ms | PyTorch GFLOP/s | ours/oneDNN | ours/PyTorch | targets |")
        out.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for n in names:
            o, d, t = res.get((n, "ours")), res.get((n, "onednn")), res.get((n, "pytorch"))
            ref = next(r for r in (o, d, t) if r is not None)
            shape = "%s,%s,%s,%s,%s" % tuple(ref.get(k, "?") for k in
                                             ("input_size", "hidden", "layers", "batch", "seq"))
            if ref.get("bidirectional"):
                shape += ", bidir"
            if ref.get("proj"):
                shape += ", P=%s" % ref["proj"]
            if "error" in ref:
                shape = "?"
            rd, rt = ratio(o, d), ratio(o, t)
            if nr > 1:  # rounds: the median of the paired ratios (a row with one pair keeps its ratio)
                rd = (paired_ratio(runs, n, "onednn") or rd) if rd is not None else None
                rt = (paired_ratio(runs, n, "pytorch") or rt) if rt is not None else None
            checks = []
            if rd is not None:
                checks.append(rd >= TARGET_ONEDNN.get(n, 1.0))
            if rt is not None:
                checks.append(rt >= TARGET_TORCH)
            if n in TARGET_US_STEP and o is not None and "us_per_step" in o:
                checks.append(o["us_per_step"] <= TARGET_US_STEP[n])
            tgt = "—" if not checks else ("met" if all(checks) else "not met")
            out.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                n, shape, ref.get("mode", "?"), ref.get("threads", "?"), fmt_ms(o), fmt_gf(o),
                fmt_ms(d), fmt_gf(d), fmt_ms(t), fmt_gf(t),
                "—" if rd is None else "%.2f×" % rd, "—" if rt is None else "%.2f×" % rt, tgt))
        out.append("")

    steps = sorted({n for (n, _) in res if n.startswith("step-")}, key=lambda n: int(n[5:]))
    if steps:
        out.extend(step_table(res, steps, runs if nr > 1 else None))
    samples = [n for (n, i) in sorted(res) if n.startswith("sample-")]
    if samples:
        out.extend(sample_table(res, samples))

    train = [n for n in names if any(r.get("mode") == "train" for (m, _), r in res.items() if m == n)]
    if train:
        out.append("Peak memory of `train` rows (ru_maxrss of a process that runs only that shape; "
                   "\"base\" is the RSS before the model is built, e.g. the loaded torch library; "
                   "\"extra\" = peak − base):")
        out.append("")
        out.append("| shape | ours peak MB | ours extra MB | oneDNN peak MB | oneDNN extra MB "
                   "| PyTorch peak MB | PyTorch extra MB | peak ours/PyTorch | extra ours/PyTorch |")
        out.append("|---|---|---|---|---|---|---|---|---|")
        for n in train:
            cells = []
            vals = {}
            for impl in ("ours", "onednn", "pytorch"):
                r = res.get((n, impl))
                if r is None or "error" in r:
                    cells += ["—", "—"]
                    continue
                pk, base = r["peak_rss_mb"], r.get("base_rss_mb", -1)
                ex = pk - base if base >= 0 else None
                vals[impl] = (pk, ex)
                cells += ["%.1f" % pk, "—" if ex is None else "%.1f" % ex]
            if "ours" in vals and "pytorch" in vals:
                (po, eo), (pt, et) = vals["ours"], vals["pytorch"]
                cells.append("%.2f" % (po / pt))
                cells.append("%.2f" % (eo / et) if eo is not None and et else "—")
            else:
                cells += ["—", "—"]
            out.append("| %s | %s |" % (n, " | ".join(cells)))
        out.append("")
    notes = []
    for (n, impl), r in sorted(res.items()):
        if "error" in r:
            notes.append("- %s %s: %s" % (impl, n, r["error"]))
        elif r.get("iters") == 1 and r.get("warmup") == 0:
            notes.append("- %s %s: one iteration took longer than --max-seconds; timed once, "
                         "without warm-up" % (impl, n))
        if impl == "ours" and r.get("threads_applied") is False and r.get("threads", 1) > 1:
            notes.append("- ours %s: --threads %s recorded but not applied (the engine has no "
                         "thread option yet)" % (n, r["threads"]))
    if notes:
        out.append("Notes:")
        out.append("")
        out.extend(notes)
        out.append("")
    out.append("<details><summary>raw JSON lines</summary>")
    out.append("")
    out.append("```")
    out.extend(raw)
    out.append("```")
    out.append("</details>")
    text = "\n".join(out) + "\n"
    print(text, end="")

    if a.write:
        write(a.write, text, cpu)
    return 0


def step_table(res, steps, runs=None):
    """One step per call (B = 1, 1 thread): ours against RTNeural, ns per step."""
    out = ["One step per call, batch 1, 1 thread, both sides timed alike: 1 warm-up run, then "
           "the median (and min) of 5 runs of 48000 steps (ours: `lstm bench --mode step --seq 48000 "
           "--min-iters 5 --max-iters 5`; RTNeural: `LSTMLayerT<float, I, H>`, `bench/rtneural_lstm.cpp`). "
           "I = 1, except H = 256 which is I = H = 256. Target: ours ≥ %.1f× RTNeural." % TARGET_RTNEURAL, "",
           "| I,H | ours ns/step | RTNeural ns/step | ours/RTNeural | ours min | RTNeural min "
           "| min ratio | target |", "|---|---|---|---|---|---|---|---|"]
    met = 0
    for n in steps:
        o, r = res.get((n, "ours")), res.get((n, "rtneural"))
        H = int(n[5:])
        ok_o = o is not None and "error" not in o
        ok_r = r is not None and "error" not in r
        on = ns_step(o) if ok_o else None
        omin = ns_step_min(o) if ok_o else None
        rn = ns_step(r) if ok_r else None
        rmin = ns_step_min(r) if ok_r else None
        rat = rn / on if on and rn else None
        ratm = rmin / omin if omin and rmin else None
        if runs and rat is not None:  # rounds: the median of the paired ratios
            rat = paired_ratio(runs, n, "rtneural", ns_step) or rat
            ratm = paired_ratio(runs, n, "rtneural", ns_step_min) or ratm
        tgt = "—" if rat is None else ("met" if rat >= TARGET_RTNEURAL else "not met")
        met += rat is not None and rat >= TARGET_RTNEURAL
        f = lambda v: "—" if v is None else "%.1f" % v
        out.append("| %d,%d | %s | %s | %s | %s | %s | %s | %s |" % (
            256 if H == 256 else 1, H, f(on), f(rn), "—" if rat is None else "%.2f×" % rat, f(omin), f(rmin),
            "—" if ratm is None else "%.2f×" % ratm, tgt))
    out += ["", "Step table: target met for %d of %d sizes." % (met, len(steps)), ""]
    return out


def sample_table(res, samples):
    out = ["Greedy sampling (`bench/sample_vs_torch.py`: `lstm sample --temperature 0 --threads N` against "
           "PyTorch's per-step loop Embedding → nn.LSTM on (h, c) → Linear → argmax on 1 thread, "
           "on a model `lstm train` wrote; bytes/s exclude loading; at 1 thread both sides timed by CPU "
           "time, at 2 ours by wall-clock). Targets: ≥ %g× PyTorch, "
           "µs per byte ≤ %g× `lstm bench --mode step` of the layers alone (same threads, fastest iteration)."
           % (TARGET_SAMPLE_TORCH, TARGET_SAMPLE_STEP),
           "", "| model | threads | ours bytes/s | PyTorch bytes/s | ours/PyTorch | ours µs/byte | layers µs/step "
           "| byte/step | greedy bytes equal | target |", "|---|---|---|---|---|---|---|---|---|---|"]
    for n in samples:
        r = res.get((n, "sample"))
        if r is None or "error" in r:
            out.append("| %s | error | | | | | | | | |" % n)
            continue
        ok = r["ours_over_pytorch"] >= TARGET_SAMPLE_TORCH and r["byte_over_step"] <= TARGET_SAMPLE_STEP
        out.append("| %dx%d (E %d, V %d) | %s | %.0f | %.0f | %.2f× | %.2f | %.2f | %.2f | %s | %s |" % (
            r["layers"], r["hidden"], r["embed"], r["vocab"], r.get("threads", 1), r["ours_bytes_per_s"],
            r["pytorch_bytes_per_s"],
            r["ours_over_pytorch"], r["ours_us_per_byte"], r["step_us"], r["byte_over_step"],
            "yes (%d)" % r["greedy_same_bytes"] if r["greedy_equal"] else "NO (first at %s)" % r["first_difference"],
            "met" if ok else "not met"))
    out.append("")
    return out


def write(path, text, cpu):
    if True:
        old_latest, old_hist, summary = "", "", []
        if os.path.exists(path):
            old = open(path, encoding="utf-8").read()
            m = re.search(re.escape(SUM_BEGIN) + r".*?" + re.escape(SUM_END), old, re.S)
            if m:
                summary = [m.group(0), ""]
            m = re.search(re.escape(BEGIN) + r"\n(.*?)" + re.escape(END), old, re.S)
            if m:
                old_latest = m.group(1).strip() + "\n"
            i = old.find(HIST)
            if i >= 0:
                old_hist = old[i + len(HIST):].strip("\n")
        # history: one section per CPU, newest first within each
        sections, order = {}, []
        parts = re.split(r"(<!-- history:.*? -->)", old_hist) if old_hist else []
        cur = OLD_CPU
        for part in parts:
            m = re.match(r"<!-- history:(.*?) -->", part)
            if m:
                cur = m.group(1)
                continue
            body = re.sub(r"^## Earlier runs on .*\n", "", part.strip("\n"), flags=re.M).strip("\n")
            if body:
                if cur not in sections:
                    order.append(cur)
                sections[cur] = (sections.get(cur, "") + "\n\n" + body).strip("\n")
        if old_latest:
            m = re.search(r"<!-- cpu:(.*?) -->", old_latest)
            lc = m.group(1) if m else OLD_CPU
            if lc not in sections:
                order.insert(0, lc)
            sections[lc] = (old_latest.strip("\n") + "\n\n" + sections.get(lc, "")).strip("\n")
        if cpu in order:
            order.remove(cpu)
            order.insert(0, cpu)
        hist = []
        for c in order:
            hist += [HIST_CPU % c, "## Earlier runs on %s" % c, "", sections[c], ""]
        doc = ["# Benchmarks", "",
               "Generated by `bench/run.sh` (see the script's header for options): `lstm bench`, "
               "oneDNN's LSTM primitive (`bench/onednn_lstm.c`) and PyTorch's `nn.LSTM` "
               "(`bench/torch_lstm.py`) on the same shapes, each shape and side in its own "
               "process. FLOPs are counted as 2·T·B·D·(4H·(I_l + Hout) + Hout·H) per layer "
               "(the last term only for projected layers), ×3 for train. "
               "Method: ≥ 1 warm-up, then the median of ≥ 5 timed iterations within a time "
               "budget per row, capped by --max-seconds (≥ 1 timed iteration; a row whose "
               "single iteration exceeds the cap is timed once, without warm-up). "
               "oneDNN gets its weights reordered to its preferred layouts once, outside the "
               "timing (its best case); its step mode calls a T = 1 primitive per step with "
               "src_iter/dst_iter carried; PyTorch's step mode calls nn.LSTM per step with the "
               "state carried under no_grad.", ""] + summary + [
               "## Latest run (%s)" % cpu, "", BEGIN, text.rstrip("\n"), END, "",
               "Earlier runs follow, one section per CPU (Zen 4 and Zen 5 runs are not comparable).",
               "", HIST, ""] + hist
        body = "\n".join(doc).rstrip("\n") + "\n"
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            f.write(body)
        os.replace(path + ".tmp", path)
        print("bench/run.sh: wrote %s" % path, file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
