#!/usr/bin/python3
"""sample_vs_torch.py — greedy `lstm sample` against PyTorch's per-step greedy loop on the same
model file (one that `lstm train` wrote), and against `lstm bench --mode step` for its layers.

  ours      `lstm sample --temperature 0 --threads N` timed at two lengths; bytes/s from the
            difference, so loading the file and making the sampler once are not counted.  The
            time is the child's CPU time (user + system) at N = 1, which time-slicing with other
            jobs on a shared machine barely changes, and wall-clock time at N > 1; best of --repeat
  pytorch   tools/train_ref.greedy's loop: the prime, then per byte Embedding -> nn.LSTM on the
            carried (h, c) -> Linear -> argmax, under no_grad, torch.set_num_threads(--threads);
            timed by the process's CPU time when --threads is 1 (else wall-clock), best of --repeat
  step      `lstm bench --input-size E --hidden H --layers L --mode step --threads N` (the LSTM
            alone, its input product in every step): the fastest iteration's µs per step

Checks that the greedy bytes are equal (ours vs PyTorch) and prints one JSON line:
ours and PyTorch bytes/s, their ratio, ours µs/byte against µs/step of the layers alone.
A model is made with `lstm train --steps N` when --model is not given.

  /usr/bin/python3 bench/sample_vs_torch.py [--lstm build/lstm] [--model M.safetensors |
      --hidden 128 --layers 2 --embed 64 --train-steps 40] [--length 20000] [--repeat 5]
      [--ours-threads 1] [--threads 1]

OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are removed from the environment (they slow OpenBLAS
down): the script re-executes itself without them."""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

for _v in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
    if _v in os.environ:
        env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
        os.execve(sys.executable, [sys.executable] + sys.argv, env)

import torch  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import train_ref as R  # noqa: E402


def run(cmd):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if p.returncode != 0:
        raise SystemExit("sample_vs_torch.py: %s failed: %s" % (" ".join(cmd), p.stderr.decode()[-300:]))
    return p.stdout


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def ours_sample(a, n):
    """(best seconds, output bytes) of `lstm sample` for n bytes: the child's CPU seconds at
    one thread, wall-clock seconds at more."""
    best, out = None, None
    cmd = [a.lstm, "sample", "--model", a.model, "--prime", a.prime, "--length", str(n), "--temperature", "0",
           "--threads", str(a.ours_threads)]
    for _ in range(a.repeat):
        c0, t0 = children_cpu(), time.perf_counter()
        out = run(cmd)
        dt = time.perf_counter() - t0 if a.ours_threads > 1 else children_cpu() - c0
        best = dt if best is None or dt < best else best
    return best, out


@torch.no_grad()
def torch_greedy(m, prime_ids, n):
    """tools/train_ref.greedy's loop, timed after the prime."""
    m.eval()
    state = R.zero_state(m, 1)
    logits, state = m(torch.tensor(prime_ids, dtype=torch.long).view(-1, 1), state)
    out = []
    nxt = int(torch.argmax(logits[-1, 0]))
    clock = time.process_time if torch.get_num_threads() == 1 else time.perf_counter
    t0 = clock()
    for _ in range(n):
        out.append(nxt)
        logits, state = m(torch.tensor([[nxt]], dtype=torch.long), state)
        nxt = int(torch.argmax(logits[-1, 0]))
    return clock() - t0, out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lstm", default=os.path.join(ROOT, "build", "lstm"))
    p.add_argument("--model", default="")
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--embed", type=int, default=64)
    p.add_argument("--train-steps", type=int, default=40)
    p.add_argument("--length", type=int, default=20000)
    p.add_argument("--prime", default="The ")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)  # PyTorch's
    p.add_argument("--ours-threads", type=int, default=1)  # lstm sample --threads
    p.add_argument("--json", action="store_true")  # always JSON
    a = p.parse_args()
    if a.ours_threads < 1 or a.threads < 1:  # (lstm sample's 0, its own choice, is not timed here)
        p.error("--threads and --ours-threads: expected >= 1")
    tmp = None
    if not a.model:
        tmp = tempfile.TemporaryDirectory()
        a.model = os.path.join(tmp.name, "m.safetensors")
        run([a.lstm, "train", "--hidden", str(a.hidden), "--layers", str(a.layers), "--embed", str(a.embed),
             "--steps", str(a.train_steps), "--eval-every", "0", "--threads", "2", "--out", a.model,
             "--checkpoint", os.path.join(tmp.name, "m.ckpt")])
    torch.set_num_threads(a.threads)
    m, vocab = R.model_from_file(a.model)
    H, L, E = m.lstm.hidden_size, m.lstm.num_layers, m.embedding.embedding_dim
    n_short = max(1, a.length // 10)
    t_short, _ = ours_sample(a, n_short)
    t_long, out = ours_sample(a, n_short + a.length)
    ours_bps = a.length / max(t_long - t_short, 1e-9)
    prime = a.prime.encode()
    ids = R.encode(prime, vocab, "prime").tolist()
    best = None
    for _ in range(a.repeat):
        dt, want = torch_greedy(m, ids, n_short + a.length)
        best = dt if best is None or dt < best else best
    torch_bps = (n_short + a.length) / best
    got = out[len(prime):]
    want_b = bytes(vocab[t] for t in want)
    same = sum(1 for x, y in zip(got, want_b) if x == y) if len(got) == len(want_b) else -1
    first_diff = next((i for i, (x, y) in enumerate(zip(got, want_b)) if x != y), None)
    step = json.loads(run([a.lstm, "bench", "--input-size", str(E), "--hidden", str(H), "--layers", str(L),
                           "--mode", "step", "--seq", "2000", "--budget", "1", "--threads", str(a.ours_threads),
                           "--json"]).decode().strip())
    step_us = step["ms_min"] * 1e3 / 2000
    us_byte = 1e6 / ours_bps
    print(json.dumps({
        "impl": "sample", "hidden": H, "layers": L, "embed": E, "vocab": len(vocab), "length": a.length,
        "ours_bytes_per_s": round(ours_bps, 1), "pytorch_bytes_per_s": round(torch_bps, 1),
        "ours_over_pytorch": round(ours_bps / torch_bps, 2), "ours_us_per_byte": round(us_byte, 3),
        "step_us": round(step_us, 3), "byte_over_step": round(us_byte / step_us, 3),
        "greedy_equal": first_diff is None and same == len(want_b), "greedy_same_bytes": same,
        "first_difference": first_diff, "threads": a.ours_threads, "torch_threads": a.threads,
        "timing": "cpu" if a.ours_threads == 1 else "wall", "torch": torch.__version__}))
    return 0 if first_diff is None and same == len(want_b) else 1


if __name__ == "__main__":
    sys.exit(main())
