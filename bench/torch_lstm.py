#!/usr/bin/python3
"""torch_lstm.py: the PyTorch side of bench/run.sh, with the same options,
timing method (--warmup, --min-iters, --max-iters, --budget, --max-seconds)
and JSON line as `lstm bench`.

  --cell lstm|gru  nn.LSTM (default) or nn.GRU
  --bidirectional  two directions (outputs [T, B, 2*Hout])
  --proj P         nn.LSTM(proj_size=P)

  forward  nn.LSTM / nn.GRU over the whole sequence under torch.no_grad()
  train    forward + backward of (y * dy).sum() with the input requiring grad:
           gradients of all parameters and of the input
  step     the module called once per time step (x[t:t+1]) with the state
           carried, under torch.no_grad(), as a streaming user would

Run with /usr/bin/python3 (Debian's python3-torch)."""
import argparse
import json
import resource
import statistics
import sys
import time

import torch


def current_rss_mb():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return -1.0


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--input-size", type=int, required=True)
    p.add_argument("--hidden", type=int, required=True)
    p.add_argument("--layers", type=int, default=1)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--seq", type=int, default=1)
    p.add_argument("--cell", choices=["lstm", "gru"], default="lstm")
    p.add_argument("--bidirectional", action="store_true")
    p.add_argument("--proj", type=int, default=0)
    p.add_argument("--mode", choices=["forward", "train", "step"], default="forward")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--min-iters", type=int, default=5)
    p.add_argument("--max-iters", type=int, default=100000)
    p.add_argument("--budget", type=float, default=2.0)
    p.add_argument("--max-seconds", type=float, default=10.0)
    p.add_argument("--json", action="store_true")  # always JSON
    a = p.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    base_rss = current_rss_mb()
    I, H, L, B, T = a.input_size, a.hidden, a.layers, a.batch, a.seq
    D, P = (2 if a.bidirectional else 1), a.proj
    if P and (a.cell == "gru" or P >= H):
        sys.exit("torch_lstm.py: --proj needs an LSTM and P < H")
    if D == 2 and a.mode == "step":
        sys.exit("torch_lstm.py: --mode step is not for --bidirectional")
    kw = {"proj_size": P} if P else {}
    net = (torch.nn.GRU if a.cell == "gru" else torch.nn.LSTM)(I, H, num_layers=L, bidirectional=D == 2, **kw)
    G = 3 if a.cell == "gru" else 4
    Ho = P or H
    x = torch.rand(T, B, I) * 2 - 1
    dy = torch.rand(T, B, D * Ho) * 2 - 1 if a.mode == "train" else None
    out = {}

    if a.mode == "forward":
        def run():
            with torch.no_grad():
                out["y"] = net(x)[0]
    elif a.mode == "train":
        x.requires_grad_(True)

        def run():
            net.zero_grad(set_to_none=True)
            x.grad = None
            y = net(x)[0]
            y.backward(dy)
            out["y"] = y.detach()
            out["dx"] = x.grad
    else:
        def run():
            with torch.no_grad():
                state = None
                ys = []
                for t in range(T):
                    y, state = net(x[t:t + 1], state)
                    ys.append(y)
                out["y"] = torch.cat(ys)

    times = []
    warm_done = 0
    for _ in range(a.warmup):
        t0 = time.perf_counter()
        run()
        dt = time.perf_counter() - t0
        warm_done += 1
        if dt >= a.max_seconds:
            if warm_done == 1:  # a single very slow warm-up is the measurement
                times.append(dt)
                warm_done = 0
            break
    if not times:
        start = time.perf_counter()
        while True:
            t0 = time.perf_counter()
            run()
            t1 = time.perf_counter()
            times.append(t1 - t0)
            el = t1 - start
            n = len(times)
            if n >= max(a.max_iters, a.min_iters) or (n >= a.min_iters and el >= a.budget) \
                    or el + (t1 - t0) > a.max_seconds:
                break
    med = statistics.median(times)
    flop = sum(2.0 * T * B * D * (G * H * ((I if l == 0 else D * Ho) + Ho) + (Ho * H if P else 0)) for l in range(L))
    if a.mode == "train":
        flop *= 3
    checksum = float(out["y"].double().sum())
    if "dx" in out:
        checksum += float(out["dx"].double().sum())
    r = {"impl": "pytorch", "cell": a.cell, "input_size": I, "hidden": H, "layers": L, "batch": B, "seq": T,
         "bidirectional": D == 2, "proj": P, "mode": a.mode, "threads": a.threads, "ms": med * 1e3, "gflops": flop / med * 1e-9}
    if a.mode == "step":
        r["us_per_step"] = med * 1e6 / T
    r.update({"iters": len(times), "warmup": warm_done, "ms_min": min(times) * 1e3,
              "ms_max": max(times) * 1e3,
              "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
              "base_rss_mb": round(base_rss, 1), "checksum": checksum,
              "torch": torch.__version__})
    print(json.dumps(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
