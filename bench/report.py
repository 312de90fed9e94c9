#!/usr/bin/env python3
"""report.py: turns bench/run.sh's JSON lines into the markdown report
(printed, and written to BENCHMARKS.md with --write).  Standard library only."""
import argparse
import json
import os
import re
import sys

ROWS = ["fwd-512", "train-512", "fwd-1024", "stream-256", "charlm-train", "audio-step",
        "gru-fwd-512", "gru-train-512", "gru-stream-256", "gru-audio-step"]
# speed targets: ours/oneDNN, ours/PyTorch (>= is met), and µs per step
TARGET_ONEDNN = {"stream-256": 2.0, "gru-stream-256": 2.0}
TARGET_TORCH = 4.0
TARGET_US_STEP = {"audio-step": 1.0}
BEGIN, END, HIST = "<!-- latest:begin -->", "<!-- latest:end -->", "<!-- history -->"
# A hand-written block between these markers (a summary over several runs) is kept as it is.
SUM_BEGIN, SUM_END = "<!-- summary:begin -->", "<!-- summary:end -->"


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


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--results", required=True)
    for k in ["label", "date", "machine", "command", "git", "gcc", "torch", "onednn", "env",
              "load", "cpus", "elapsed"]:
        p.add_argument("--" + k, default="")
    p.add_argument("--write", default="")
    a = p.parse_args()

    res = {}
    raw = []
    with open(a.results) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            raw.append(line)
            r = json.loads(line)
            impl = {"lstm": "ours"}.get(r["impl"], r["impl"])
            res[(r["row"], impl)] = r
    names = [n for n in ROWS if any((n, i) in res for i in ("ours", "onednn", "pytorch"))]

    out = []
    title = "Benchmark" + (": " + a.label if a.label else "")
    out.append("### " + title)
    out.append("")
    out.append("- date: %s; machine: %s" % (a.date, a.machine))
    out.append("- command: `%s` (%s s); tree: %s" % (a.command, a.elapsed, a.git))
    out.append("- compilers/libraries: %s; PyTorch %s; oneDNN %s" %
               (a.gcc, a.torch or "n/a", a.onednn or "n/a"))
    out.append("- load average (1/5/15 min) before -> after: %s" % a.load)
    try:
        l1 = [float(part.split()[0]) for part in a.load.split("->")]
        if max(l1) >= 0.5:
            out.append("- **warning: the machine was busy with other work during this run "
                       "(1-minute load average up to %.2f on %s CPUs); multi-threaded rows, "
                       "oneDNN's and PyTorch's OpenMP threads especially, can be much slower "
                       "than on an idle machine. Compare only rows from quiet runs.**"
                       % (max(l1), a.cpus or "?"))
    except (ValueError, IndexError):
        pass
    if a.env:
        out.append("- environment that can affect numpy/torch/oneDNN: `%s`" % a.env)
    else:
        out.append("- OPENBLAS_CORETYPE, OPENBLAS_L2_SIZE, OMP_NUM_THREADS: not set")
    out.append("")
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
        if "error" in ref:
            shape = "?"
        rd, rt = ratio(o, d), ratio(o, t)
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
        old_latest, old_hist, summary = "", "", []
        if os.path.exists(a.write):
            old = open(a.write, encoding="utf-8").read()
            m = re.search(re.escape(SUM_BEGIN) + r".*?" + re.escape(SUM_END), old, re.S)
            if m:
                summary = [m.group(0), ""]
            m = re.search(re.escape(BEGIN) + r"\n(.*?)" + re.escape(END), old, re.S)
            if m:
                old_latest = m.group(1).strip() + "\n"
            i = old.find(HIST)
            if i >= 0:
                old_hist = old[i + len(HIST):].strip("\n")
                old_hist = old_hist + "\n" if old_hist else ""
        doc = ["# Benchmarks", "",
               "Generated by `bench/run.sh` (see the script's header for options): `lstm bench`, "
               "oneDNN's LSTM primitive (`bench/onednn_lstm.c`) and PyTorch's `nn.LSTM` "
               "(`bench/torch_lstm.py`) on the same shapes, each shape and side in its own "
               "process. FLOPs are counted as 2·T·B·4H·(I_l + H) per layer, ×3 for train. "
               "Method: ≥ 1 warm-up, then the median of ≥ 5 timed iterations within a time "
               "budget per row, capped by --max-seconds (≥ 1 timed iteration; a row whose "
               "single iteration exceeds the cap is timed once, without warm-up). "
               "oneDNN gets its weights reordered to its preferred layouts once, outside the "
               "timing (its best case); its step mode calls a T = 1 primitive per step with "
               "src_iter/dst_iter carried; PyTorch's step mode calls nn.LSTM per step with the "
               "state carried under no_grad.", ""] + summary + [
               "## Latest run", "", BEGIN, text.rstrip("\n"), END, "",
               "## Earlier runs", "", HIST]
        body = "\n".join(doc) + "\n"
        if old_latest:
            body += "\n" + old_latest
        if old_hist:
            body += "\n" + old_hist
        with open(a.write + ".tmp", "w", encoding="utf-8") as f:
            f.write(body)
        os.replace(a.write + ".tmp", a.write)
        print("bench/run.sh: wrote %s" % a.write, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
