#!/usr/bin/python3
"""crosscheck_train.py — live check of `lstm train / eval / sample` against PyTorch.

For each case a CharLSTM (or its GRU twin, --cell gru) is initialized by torch (seeded) and saved; `lstm train --init`
and tools/train_ref.py then train it on the same text with the same flags (dropout 0).
Checked: the per-step losses (from --log) within 5e-6, the final weights (read back by
PyTorch from our file) within 5e-5, `lstm eval` against PyTorch's loss on a file, and
greedy `lstm sample` against PyTorch's greedy decoding; and that train_ref.py refuses what
lstm train refuses (no step or time limit, a validation part under B+1 bytes).

  /usr/bin/python3 tools/crosscheck_train.py --lstm build/lstm
Prints "ok  ..." / "FAIL ..." lines and "N passed, M failed"; exits 1 on failure.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_ref as R  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# name, (E, H, L, P), flags
LSTM_CASES = [
    ("adam_clip_2layers", (16, 32, 2, 0),
     "--batch 8 --bptt 16 --steps 12 --optimizer adam --lr 0.003 --clip 0.5"),
    ("adam_epochs", (8, 24, 1, 0),
     "--batch 16 --bptt 20 --steps 40 --optimizer adam --lr 0.002 --clip 1"),
    ("adamw_cosine_proj", (12, 32, 2, 10),
     "--batch 6 --bptt 12 --steps 15 --optimizer adamw --lr 0.01 --weight-decay 0.05 "
     "--schedule cosine --warmup 4 --lr-min 0.0005 --clip 2"),
    ("sgd_momentum", (8, 20, 3, 0),
     "--batch 5 --bptt 9 --steps 12 --optimizer sgd --lr 0.8 --momentum 0.9 --clip 0"),
    ("sgd_nesterov_wd_val", (8, 16, 1, 0),
     "--batch 4 --bptt 10 --steps 12 --optimizer sgd --lr 0.3 --momentum 0.5 --nesterov "
     "--weight-decay 0.01 --clip 0.25 --val-fraction 0.2 --eval-every 4"),
    # Adam's L2 weight decay (added to the gradient, not decoupled) and a warmup before a constant lr
    ("adam_l2_warmup", (8, 16, 2, 0),
     "--batch 4 --bptt 10 --steps 20 --optimizer adam --lr 0.01 --weight-decay 0.1 --warmup 7 --clip 0.3"),
]
# name, (E, H, L, P), cell, flags: every LSTM case, and its GRU twin (nn.GRU as module `gru`,
# no projection) with the same flags
CASES = [(n, m, "lstm", f) for n, m, f in LSTM_CASES] + \
        [("gru_" + n.replace("_proj", ""), (E, H, L, 0), "gru", f) for n, (E, H, L, _), f in LSTM_CASES]

passed = failed = 0


def report(ok, msg):
    global passed, failed
    print(("ok   " if ok else "FAIL ") + msg)
    if ok:
        passed += 1
    else:
        failed += 1


def corpus():
    """About 6 kB of text: the project's own sources (always present)."""
    out = b""
    for p in ["include/lstm.h", "src/train/charlm.c", "src/train/train.c"]:
        with open(os.path.join(ROOT, p), "rb") as f:
            out += f.read()
    return out[:6000]


def run(cmd):
    r = subprocess.run(cmd, capture_output=True)
    return r.returncode, r.stdout, r.stderr.decode(errors="replace")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lstm", default="build/lstm")
    a = ap.parse_args()
    torch.set_num_threads(1)
    tmp = tempfile.mkdtemp(prefix="lstm_xtrain_")
    data = corpus()
    data_path = os.path.join(tmp, "data.txt")
    with open(data_path, "wb") as f:
        f.write(data)
    vocab = sorted(set(data))
    for i, (name, (E, H, L, P), cell, flags) in enumerate(CASES):
        torch.manual_seed(1000 + i)
        m = R.CharLSTM(len(vocab), E, H, L, proj=P, cell=cell)
        flags += f" --cell {cell}"
        init = os.path.join(tmp, f"{name}.init.safetensors")
        R.save_model(m, vocab, init)
        if "--val-fraction" not in flags:
            flags += " --val-fraction 0"
        ours = os.path.join(tmp, f"{name}.ours.safetensors")
        log = os.path.join(tmp, f"{name}.jsonl")
        rc, _, err = run([a.lstm, "train", "--init", init, "--data", data_path, "--out", ours, "--log", log,
                          "--checkpoint-every", "0", "--checkpoint", os.path.join(tmp, "ck")] + flags.split())
        if rc != 0:
            report(False, f"{name}: lstm train failed: {err.strip().splitlines()[-1] if err.strip() else rc}")
            continue
        ra = R.finish_args(R.parser().parse_args(["--data", data_path, "--init", init] + flags.split()))
        mt, _, losses, vals, _, _ = R.train(ra)
        recs = [json.loads(line) for line in open(log)]
        ol = [r["loss"] for r in recs]
        d = max(abs(x - y) for x, y in zip(ol, losses)) if len(ol) == len(losses) else float("inf")
        report(d < 5e-6, f"{name}: {len(losses)} steps, max |loss - torch| {d:.2e} (tol 5e-6)")
        ov = {r["step"]: r["val_loss"] for r in recs if "val_loss" in r}
        if vals or ov:
            dv = max(abs(ov[k] - vals[k]) for k in vals) if set(ov) == set(vals) else float("inf")
            report(dv < 5e-6, f"{name}: validation losses at steps {sorted(vals)}: max |diff| {dv:.2e} (tol 5e-6)")
        mo, vo = R.model_from_file(ours)  # our file, read by PyTorch
        ref = mt.state_dict()
        dw = max(float((v - ref[k]).abs().max()) for k, v in mo.state_dict().items())
        report(vo == vocab and dw < 5e-5, f"{name}: final weights read back by PyTorch: max |w - torch| {dw:.2e} (tol 5e-5)")

    for cell, pre in [("lstm", ""), ("gru", "gru_")]:
        check_eval_sample(a, tmp, data, data_path, vocab, cell, os.path.join(tmp, f"{pre}adam_epochs.ours.safetensors"))
    check_ref_refusals(a, tmp, len(data), data_path)
    print(f"crosscheck_train.py: {passed} passed, {failed} failed")
    return 1 if failed else 0


def check_ref_refusals(a, tmp, n, data_path):
    """tools/train_ref.py refuses what lstm train refuses, where it trained forever (no --steps,
    --epochs or --time: lstm train's default is 60 s, a usage error here) or divided by zero
    (a validation part shorter than B+1 bytes; 0 bytes had no validation at all)."""
    ref = [sys.executable, os.path.join(ROOT, "tools", "train_ref.py"), "--data", data_path, "--hidden", "8",
           "--layers", "1", "--embed", "4", "--batch", "8", "--bptt", "8"]
    try:
        r = subprocess.run(ref + ["--val-fraction", "0"], capture_output=True, timeout=60)
        ok, msg = r.returncode == 2 and b"--steps" in r.stderr, (r.stderr.decode(errors="replace").strip()
                                                                  .splitlines() or ["no message"])[-1]
    except subprocess.TimeoutExpired:
        ok, msg = False, "still training after 60 s"
    report(ok, f"train_ref.py with no --steps, --epochs or --time: a usage error (exit 2): {msg}")
    for vf in ("0.001", "0.0001"):  # n * vf bytes: 6 (1..B), 0
        want = f"the validation part has {int(float(vf) * n)} bytes; it needs at least B+1 = 9"
        rc, _, err = run([a.lstm, "train", "--data", data_path, "--hidden", "8", "--layers", "1", "--embed", "4",
                          "--batch", "8", "--bptt", "8", "--steps", "2", "--val-fraction", vf,
                          "--out", os.path.join(tmp, "refuse.st")])
        r = subprocess.run(ref + ["--steps", "2", "--val-fraction", vf], capture_output=True, timeout=120)
        rerr = r.stderr.decode(errors="replace").strip()
        ok = rc == 1 and want in err and r.returncode == 1 and want in rerr
        report(ok, f"--val-fraction {vf}: lstm train and train_ref.py refuse it (rc {rc}, {r.returncode})"
               + (f": {want}" if ok else f": {err.strip()[-150:]} | {rerr[-150:]}"))


def check_eval_sample(a, tmp, data, data_path, vocab, cell, model):
    """lstm eval (the whole file as one stream from zero state) and greedy lstm sample
    (a trained model and a sharpened random one) against PyTorch."""
    mo, _ = R.model_from_file(model)
    rc, out, err = run([a.lstm, "eval", "--model", model, "--data", data_path, "--json"])
    if rc == 0:
        got = json.loads(out.decode().strip().splitlines()[-1])
        want = R.evaluate(mo, R.encode(data, vocab, "data"), 1, 256)
        report(abs(got["loss"] - want) < 1e-5 and got["chars"] == len(data) - 1 and
               abs(got["bpc"] - want / np.log(2)) < 2e-5,
               f"{cell} eval: {got['loss']:.6f} nats/char vs torch {want:.6f}, |diff| {abs(got['loss'] - want):.2e} (tol 1e-5)")
    else:
        report(False, f"{cell} eval failed: {err.strip()}")
    for label, path in [("trained", model), ("sharp", None)]:
        if path is None:
            torch.manual_seed(7)
            ms = R.CharLSTM(len(vocab), 16, 48, 2, cell=cell)
            with torch.no_grad():
                for p in ms.parameters():
                    p.mul_(3.0)
            path = os.path.join(tmp, f"{cell}_sharp.safetensors")
            R.save_model(ms, vocab, path)
        mo, _ = R.model_from_file(path)
        prime = b"lstm_status "
        rc, out, err = run([a.lstm, "sample", "--model", path, "--prime", prime.decode(), "--length", "200",
                            "--temperature", "0"])
        want = prime + bytes(vocab[t] for t in R.greedy(mo, R.encode(prime, vocab, "prime").tolist(), 200))
        same = 0
        while same < min(len(out), len(want)) and out[same] == want[same]:
            same += 1
        report(rc == 0 and out == want, f"{cell} greedy sample ({label}): {same - len(prime)} of 200 bytes equal PyTorch's")


if __name__ == "__main__":
    sys.exit(main())
