#!/usr/bin/python3
"""train_ref.py — the PyTorch reference for `lstm train`, written to the same contract.

Model: CharLSTM = Embedding(V, E) -> nn.LSTM(E, H, L, dropout, proj_size) -> Linear(Hout, V),
or with --cell gru its twin Embedding(V, E) -> nn.GRU(E, H, L, dropout) -> Linear(H, V) (the
recurrent module named `gru`), softmax cross-entropy (nats).  Files are safetensors with the
module's state_dict names and __metadata__ "vocab" (JSON array of the byte of each token id).

Batching / truncated BPTT (exactly as lstm train):
  training tokens t[0..n) are the first n_total - floor(F * n_total) bytes of the data file
  (F = --val-fraction; validation is the rest); S = (n - 1) // B; stream b reads inputs
  t[b*S + j] and targets t[b*S + j + 1], j in [0, S); an epoch has S // T steps; step k of an
  epoch uses j in [k*T, (k+1)*T); h and c (a GRU: h alone) start at zero each epoch and carry,
  detached.
  The loss is the mean cross-entropy over the T*B targets.  Gradients are clipped with
  clip_grad_norm_ (--clip 0: off), then torch.optim.Adam / AdamW / SGD steps with the
  learning rate of the schedule (lr_at below).
Validation loss: the validation tokens read as B streams the same way, in blocks of T from
zero state, model.eval(); mean cross-entropy over the B * ((n_val - 1) // B) predictions.

Usage (the flags mean what they mean for lstm train):
  /usr/bin/python3 tools/train_ref.py --data FILE [--init M0.safetensors | --hidden H --layers L
      --embed E --proj P --cell lstm|gru --seed S] --batch B --bptt T (--steps N | --epochs N) [--time SEC]
      [--lr LR] [--optimizer adam|adamw|sgd] [--clip C] [--weight-decay W] [--momentum M]
      [--nesterov] [--schedule constant|cosine] [--warmup K] [--lr-min X] [--dropout D]
      [--val-fraction F] [--eval-every K] [--threads N] [--out M.safetensors] [--log LOG.jsonl]
      [--losses LOSSES.json]
One of --steps, --epochs (not both) or --time is needed (lstm train's default of 60 s is not
taken: a usage error, exit 2), and a --val-fraction above 0 needs a validation part of at least
B+1 bytes (exit 1), as lstm train refuses it.
Also imported by tools/crosscheck_train.py and bench/train_vs_torch.py.
"""
import argparse
import json
import math
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class CharLSTM(nn.Module):
    """cell "lstm": Embedding -> nn.LSTM (module `lstm`) -> Linear; cell "gru": Embedding ->
    nn.GRU (module `gru`, no projection) -> Linear.  The state is (h, c) for the LSTM, h for the GRU."""

    def __init__(self, V, E, H, L, dropout=0.0, proj=0, cell="lstm"):
        super().__init__()
        self.embedding = nn.Embedding(V, E)
        if cell == "gru":
            if proj:
                raise ValueError("a GRU has no projection")
            self.gru = nn.GRU(E, H, L, dropout=dropout)
        else:
            self.lstm = nn.LSTM(E, H, L, dropout=dropout, proj_size=proj)
        self.cell = cell
        self.head = nn.Linear(proj or H, V)

    @property
    def rnn(self):
        return self.gru if self.cell == "gru" else self.lstm

    def forward(self, x, state):  # x [T, B] token ids -> logits [T, B, V], state
        y, state = self.rnn(self.embedding(x), state)
        return self.head(y), state


# ---------------------------------------------------------------- safetensors

_DT = {"F32": np.float32, "F64": np.float64, "F16": np.float16, "I64": np.int64, "I32": np.int32,
       "U8": np.uint8, "I8": np.int8}


def read_st(path):
    """Returns ({name: np.ndarray}, {metadata})."""
    with open(path, "rb") as f:
        buf = f.read()
    (n,) = struct.unpack("<Q", buf[:8])
    hdr = json.loads(buf[8:8 + n])
    meta = hdr.pop("__metadata__", {}) or {}
    data = buf[8 + n:]
    out = {}
    for name, d in hdr.items():
        if d["dtype"] == "BF16":
            a0, a1 = d["data_offsets"]
            u = np.frombuffer(data[a0:a1], dtype="<u2").astype(np.uint32) << 16
            out[name] = u.view(np.float32).reshape(d["shape"])
            continue
        a0, a1 = d["data_offsets"]
        out[name] = np.frombuffer(data[a0:a1], dtype=np.dtype(_DT[d["dtype"]]).newbyteorder("<")).reshape(d["shape"]).copy()
    return out, meta


def write_st(path, tensors, meta=None):
    """tensors: {name: array} written as F32 (or the array's dtype when it is F64/I64/U8)."""
    names = {np.dtype(np.float32): "F32", np.dtype(np.float64): "F64", np.dtype(np.int64): "I64",
             np.dtype(np.uint8): "U8"}
    hdr, blobs, off = {}, [], 0
    if meta:
        hdr["__metadata__"] = {k: str(v) for k, v in meta.items()}
    for name, a in tensors.items():
        a = np.ascontiguousarray(a)
        if a.dtype not in names:
            a = a.astype(np.float32)
        b = a.astype(a.dtype.newbyteorder("<")).tobytes()
        hdr[name] = {"dtype": names[a.dtype], "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(hdr, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


# ---------------------------------------------------------------- model files

def model_from_file(path, dropout=0.0):
    """Returns (model, vocab bytes list)."""
    t, meta = read_st(path)
    vocab = json.loads(meta["vocab"])
    V, E = t["embedding.weight"].shape
    cell = "gru" if "gru.weight_ih_l0" in t else "lstm"  # the cell from the names
    L = 0
    while f"{cell}.weight_ih_l{L}" in t:
        L += 1
    H = t[f"{cell}.weight_hh_l0"].shape[0] // (3 if cell == "gru" else 4)
    P = t["lstm.weight_hr_l0"].shape[0] if "lstm.weight_hr_l0" in t else 0
    m = CharLSTM(V, E, H, L, dropout=dropout, proj=P, cell=cell)
    sd = {k: torch.from_numpy(np.asarray(t[k], dtype=np.float32)) for k in m.state_dict()}
    m.load_state_dict(sd)
    return m, vocab


def save_model(m, vocab, path):
    write_st(path, {k: v.detach().numpy() for k, v in m.state_dict().items()},
             {"vocab": json.dumps(vocab, separators=(",", ":"))})


def encode(data, vocab, what):
    idx = {b: i for i, b in enumerate(vocab)}
    out = []
    for i, b in enumerate(data):
        if b not in idx:
            raise SystemExit(f"{what}: byte 0x{b:02x} at offset {i} is not in the model's vocabulary")
        out.append(idx[b])
    return torch.tensor(out, dtype=torch.long)


# ---------------------------------------------------------------- schedule, streams, eval

def lr_at(a, s):
    """Learning rate of 0-based step s (same formula as lstm_train_lr)."""
    if s < a.warmup:
        return a.lr * (s + 1) / a.warmup
    if a.schedule == "constant":
        return a.lr
    span = a.total_steps - a.warmup
    if span <= 0 or s >= a.total_steps:
        return a.lr_min
    p = (s - a.warmup) / span
    return a.lr_min + 0.5 * (a.lr - a.lr_min) * (1.0 + math.cos(3.141592653589793 * p))


def streams(ids, B):
    """ids [n] -> X, Y [B, S]: stream b reads ids[b*S + j], predicts ids[b*S + j + 1]."""
    S = (len(ids) - 1) // B
    return ids[:B * S].view(B, S), ids[1:B * S + 1].view(B, S), S


def zero_state(m, B):
    L, H = m.rnn.num_layers, m.rnn.hidden_size
    if m.cell == "gru":
        return torch.zeros(L, B, H)
    return torch.zeros(L, B, m.lstm.proj_size or H), torch.zeros(L, B, H)


def detach(state):
    return state.detach() if torch.is_tensor(state) else tuple(s.detach() for s in state)


@torch.no_grad()
def evaluate(m, ids, B, T):
    """Mean cross-entropy of ids read as B streams in blocks of T from zero state."""
    was = m.training
    m.eval()
    X, Y, S = streams(ids, B)
    state = zero_state(m, B)
    total = 0.0
    for j in range(0, S, T):
        x, y = X[:, j:j + T].t(), Y[:, j:j + T].t()
        logits, state = m(x, state)
        total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="sum").item()
    m.train(was)
    return total / (S * B)


@torch.no_grad()
def greedy(m, prime_ids, n):
    """Greedy decoding: feeds the prime, then the argmax of each step's logits."""
    m.eval()
    state = zero_state(m, 1)
    logits, state = m(torch.tensor(prime_ids, dtype=torch.long).view(-1, 1), state)
    out = []
    nxt = int(torch.argmax(logits[-1, 0]))
    for _ in range(n):
        out.append(nxt)
        logits, state = m(torch.tensor([[nxt]], dtype=torch.long), state)
        nxt = int(torch.argmax(logits[-1, 0]))
    return out


# ---------------------------------------------------------------- training

def make_optimizer(a, params):
    if a.optimizer == "adam":
        return torch.optim.Adam(params, lr=a.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=a.weight_decay)
    if a.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=a.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=a.weight_decay)
    return torch.optim.SGD(params, lr=a.lr, momentum=a.momentum, weight_decay=a.weight_decay,
                           nesterov=a.nesterov)


def split(data, F_):
    n_val = int(F_ * len(data))
    return data[:len(data) - n_val], data[len(data) - n_val:]


def train(a, log=None):
    """Runs the loop; returns (model, vocab, losses, val_losses {step: loss}, tokens_per_s)."""
    torch.set_num_threads(a.threads)
    with open(a.data, "rb") as f:
        data = f.read()
    if a.init:
        m, vocab = model_from_file(a.init, a.dropout)
    else:
        vocab = sorted(set(data))
        torch.manual_seed(a.seed)
        m = CharLSTM(len(vocab), a.embed, a.hidden, a.layers, dropout=a.dropout, proj=a.proj, cell=a.cell)
    tr_bytes, val_bytes = split(data, a.val_fraction)
    ids = encode(tr_bytes, vocab, a.data)
    val_ids = encode(val_bytes, vocab, a.data) if len(val_bytes) else None
    B, T = a.batch, a.bptt
    if len(ids) < B * T + 1:
        raise SystemExit(f"{a.data}: training part has {len(ids)} bytes, need B*T+1 = {B * T + 1}")
    if a.val_fraction > 0 and len(val_bytes) < B + 1:  # as lstm train: no prediction per stream (0 bytes too)
        raise SystemExit(f"{a.data}: the validation part has {len(val_bytes)} bytes; it needs at least B+1 = {B + 1} "
                         "(raise --val-fraction, or 0 for none)")
    X, Y, S = streams(ids, B)
    spe = S // T
    total = a.steps if a.steps else a.epochs * spe if a.epochs else 0
    a.total_steps = total
    opt = make_optimizer(a, m.parameters())
    m.train()
    losses, vals = [], {}
    t0 = time.perf_counter()
    train_time = 0.0
    g = 0
    state = None
    while (not total or g < total) and not (a.time and time.perf_counter() - t0 >= a.time):
        ts = time.perf_counter()
        k = g % spe
        if k == 0:
            state = zero_state(m, B)
        x, y = X[:, k * T:(k + 1) * T].t(), Y[:, k * T:(k + 1) * T].t()
        logits, state = m(x, state)
        state = detach(state)
        loss = F.cross_entropy(logits.reshape(-1, len(vocab)), y.reshape(-1))
        lv = loss.item()
        if not math.isfinite(lv):
            raise SystemExit(f"loss is {lv} at step {g + 1}")
        opt.zero_grad(set_to_none=False)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(m.parameters(), a.clip if a.clip > 0 else float("inf"))
        for grp in opt.param_groups:
            grp["lr"] = lr_at(a, g)
        opt.step()
        g += 1
        train_time += time.perf_counter() - ts
        losses.append(lv)
        rec = {"step": g, "loss": lv, "lr": lr_at(a, g - 1), "grad_norm": float(norm),
               "tokens_per_s": g * B * T / max(train_time, 1e-9)}
        last = (total and g == total) or (a.time and time.perf_counter() - t0 >= a.time)
        if val_ids is not None and ((a.eval_every and g % a.eval_every == 0) or last):
            rec["val_loss"] = vals[g] = evaluate(m, val_ids, B, T)
        if log:
            log.write(json.dumps(rec) + "\n")
            log.flush()
    tps = g * B * T / max(train_time, 1e-9)
    return m, vocab, losses, vals, tps, time.perf_counter() - t0


def parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True)
    p.add_argument("--init")
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--embed", type=int, default=64)
    p.add_argument("--proj", type=int, default=0)
    p.add_argument("--cell", choices=["lstm", "gru"], default="lstm")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--bptt", type=int, default=64)
    p.add_argument("--steps", type=int, default=0)
    p.add_argument("--epochs", type=int, default=0)
    p.add_argument("--time", type=float, default=0.0)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--optimizer", choices=["adam", "adamw", "sgd"], default="adam")
    p.add_argument("--clip", type=float, default=1.0)
    p.add_argument("--weight-decay", type=float, default=None)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--nesterov", action="store_true")
    p.add_argument("--schedule", choices=["constant", "cosine"], default="constant")
    p.add_argument("--warmup", type=int, default=0)
    p.add_argument("--lr-min", type=float, default=0.0)
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--val-fraction", type=float, default=0.1)
    p.add_argument("--eval-every", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out")
    p.add_argument("--log")
    p.add_argument("--losses")
    return p


def finish_args(a):
    if a.weight_decay is None:
        a.weight_decay = 0.01 if a.optimizer == "adamw" else 0.0
    return a


def main(argv=None):
    p = parser()
    a = p.parse_args(argv)
    if a.steps and a.epochs:
        p.error("--steps and --epochs exclude each other")
    if not (a.steps or a.epochs or a.time > 0):  # lstm train's default is --time 60; a reference run says how long
        p.error("one of --steps, --epochs or --time is needed")
    a = finish_args(a)
    log = open(a.log, "w") if a.log else None
    m, vocab, losses, vals, tps, wall = train(a, log)
    if log:
        log.close()
    if a.out:
        save_model(m, vocab, a.out)
    if a.losses:
        with open(a.losses, "w") as f:
            json.dump({"losses": losses, "val": vals, "tokens_per_s": tps}, f)
    last_val = vals[max(vals)] if vals else float("nan")
    print(f"torch: {len(losses)} steps, last loss {losses[-1]:.4f}, val loss {last_val:.4f}, "
          f"{tps:.0f} tokens/s, {wall:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
