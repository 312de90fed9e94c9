#!/usr/bin/python3
"""train_vs_torch.py — `lstm train` against the same model trained by PyTorch, side by side.

The runs start from the same initial weights (one CharLSTM initialized by torch and
saved; all load it with --init), use the same flags and data, and train for the same
wall-clock time on this machine, one after the other: ours with --threads N, PyTorch with N
threads and (when N > 1) with one.  Each reports its validation loss (the last tenth of the
text, evaluated once at the end) and its training throughput (tokens per second of training,
evaluation excluded).

The text (>= 1 MB, built in a temporary directory) is the license texts under
/usr/share/common-licenses, this project's sources, and Python's standard library
modules under /usr/lib/python3*/, in that order, until it reaches --mb megabytes.

  /usr/bin/python3 bench/train_vs_torch.py [--time 120] [--threads 2] [--mb 1.2]
      [--hidden 128 --layers 2 --embed 64 --batch 32 --bptt 64 --lr 0.003]
"""
import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import train_ref as R  # noqa: E402


def build_corpus(path, mb):
    files = sorted(p for p in glob.glob("/usr/share/common-licenses/*") if os.path.isfile(p) and not os.path.islink(p))
    out = subprocess.run(["git", "-C", ROOT, "ls-files", "*.c", "*.h", "*.py", "*.md", "*.sh"],
                         capture_output=True, text=True).stdout.split()
    files += [os.path.join(ROOT, p) for p in sorted(out)]
    files += sorted(glob.glob("/usr/lib/python3*/*.py"))
    want = int(mb * 1e6)
    buf = bytearray()
    for p in files:
        if len(buf) >= want:
            break
        try:
            with open(p, "rb") as f:
                buf += f.read()
        except OSError:
            pass
    while len(buf) < want:  # only if the system lacks the files above
        buf += buf[: want - len(buf)]
    with open(path, "wb") as f:
        f.write(bytes(buf[:want]))
    return len(buf[:want])


def last_record(log):
    recs = [json.loads(line) for line in open(log)]
    return recs[-1], len(recs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lstm", default=os.path.join(ROOT, "build/lstm"))
    ap.add_argument("--time", type=float, default=120)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--mb", type=float, default=1.2)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--embed", type=int, default=64)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--bptt", type=int, default=64)
    ap.add_argument("--lr", type=float, default=0.003)
    ap.add_argument("--only", choices=["ours", "torch"], help="run one side only")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="lstm_bench_train_")
    data = os.path.join(tmp, "corpus.txt")
    n = build_corpus(data, a.mb)
    with open(data, "rb") as f:
        vocab = sorted(set(f.read()))
    torch.manual_seed(0)
    m = R.CharLSTM(len(vocab), a.embed, a.hidden, a.layers)
    init = os.path.join(tmp, "init.safetensors")
    R.save_model(m, vocab, init)
    flags = (f"--data {data} --init {init} --batch {a.batch} --bptt {a.bptt} --lr {a.lr} --optimizer adam "
             f"--clip 1 --val-fraction 0.1 --eval-every 0 --time {a.time} --threads {a.threads}").split()
    print(f"corpus {n} bytes (V {len(vocab)}), model E {a.embed} H {a.hidden} L {a.layers}, B {a.batch} T {a.bptt}, "
          f"Adam lr {a.lr}, clip 1, {a.time:.0f} s each, {a.threads} threads, on {os.cpu_count()} CPUs", flush=True)
    rows = []
    if a.only != "torch":
        log = os.path.join(tmp, "ours.jsonl")
        subprocess.run([a.lstm, "train"] + flags + ["--out", os.path.join(tmp, "ours.safetensors"), "--log", log,
                                                     "--checkpoint-every", "0"], check=True,
                       stderr=subprocess.DEVNULL)
        r, steps = last_record(log)
        rows.append((f"lstm, {a.threads} thr", steps, r["tokens_per_s"], r["loss"], r["val_loss"]))
    if a.only != "ours":
        # PyTorch with the same thread count and, when that is above 1, also with one thread:
        # its OpenMP threads spin while waiting, which on a busy machine can cost more than
        # they gain (OMP_WAIT_POLICY=PASSIVE is set unless given, which helps it there).
        env = dict(os.environ)
        env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        for th in sorted({a.threads, 1}, reverse=True):
            log = os.path.join(tmp, f"torch{th}.jsonl")
            tf = [f if f != str(a.threads) or flags[i - 1] != "--threads" else str(th) for i, f in enumerate(flags)]
            subprocess.run([sys.executable, os.path.join(ROOT, "tools/train_ref.py")] + tf + ["--log", log],
                           check=True, stderr=subprocess.DEVNULL, env=env)
            r, steps = last_record(log)
            rows.append((f"PyTorch {torch.__version__}, {th} thr", steps, r["tokens_per_s"], r["loss"], r["val_loss"]))
    print(f"{'':26} {'steps':>7} {'tokens/s':>10} {'last loss':>10} {'val loss':>9} {'val bpc':>8}")
    for name, steps, tps, loss, val in rows:
        print(f"{name:26} {steps:7d} {tps:10.0f} {loss:10.4f} {val:9.4f} {val / 0.6931471805599453:8.4f}")


if __name__ == "__main__":
    main()
