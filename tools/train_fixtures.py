#!/usr/bin/python3
"""train_fixtures.py — writes the PyTorch training fixtures that `make test` checks
(tests/test_train.c) without torch.

  /usr/bin/python3 tools/train_fixtures.py --out tests/fixtures/train

Writes data.txt (a short text) and, per case, <case>.safetensors holding
  the initial model          embedding.weight, lstm.* (gru_* cases: gru.*), head.weight,
                             head.bias + "vocab"
  "args"                     the lstm train flags of the case (dropout 0, no validation)
  ref.losses [steps]         PyTorch's per-step losses (F64) from tools/train_ref.py
  ref.final.<name>           PyTorch's weights after the last step
  ref.eval_loss [1]          the initial model's eval loss on data.txt (one stream, blocks of 64)
  "ref.greedy_prime", "ref.greedy"  byte arrays (JSON): greedy decoding of 60 bytes by
                             the initial model with every weight times "ref.greedy_scale"
"""
import argparse
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_ref as R  # noqa: E402

DATA = (b"A small recurrent network reads this text one byte at a time and tries to guess\n"
        b"the byte that comes next. Each guess is scored, the scores are averaged over a\n"
        b"block of steps, and the weights move a little against the gradient. The cell\n"
        b"state carries what it has seen from one block to the next, so the model can learn\n"
        b"that a period is followed by a space and a capital letter.\n")

# name, model (E, H, L, P), flags
LSTM_CASES = [
    ("adam_clip", (8, 16, 2, 0),
     "--batch 4 --bptt 8 --steps 12 --optimizer adam --lr 0.003 --clip 0.5"),
    ("adamw_cosine_proj", (6, 12, 2, 5),
     "--batch 3 --bptt 10 --steps 12 --optimizer adamw --lr 0.01 --weight-decay 0.1 "
     "--schedule cosine --warmup 3 --lr-min 0.0001 --clip 1"),
    ("sgd_nesterov", (5, 10, 1, 0),
     "--batch 5 --bptt 6 --steps 12 --optimizer sgd --lr 0.5 --momentum 0.9 --nesterov "
     "--weight-decay 0.001 --clip 0"),
]
# name, model, cell, flags: the LSTM cases, then their GRU twins (nn.GRU as module `gru`, no
# projection; gru_adam_clip, gru_adamw_cosine, gru_sgd_nesterov) with the same flags
CASES = [(n, m, "lstm", f) for n, m, f in LSTM_CASES] + \
        [("gru_" + n.replace("_proj", ""), (E, H, L, 0), "gru", f) for n, (E, H, L, _), f in LSTM_CASES]
PRIME = b"The cell "
GREEDY_SCALE = 4.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="tests/fixtures/train")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    data_path = os.path.join(a.out, "data.txt")
    with open(data_path, "wb") as f:
        f.write(DATA)
    vocab = sorted(set(DATA))
    for i, (name, (E, H, L, P), cell, flags) in enumerate(CASES):
        torch.manual_seed(100 + i)
        m = R.CharLSTM(len(vocab), E, H, L, proj=P, cell=cell)
        init = {k: v.detach().numpy().copy() for k, v in m.state_dict().items()}
        init_path = os.path.join(a.out, f"{name}.init.tmp")
        R.save_model(m, vocab, init_path)
        args = flags + " --val-fraction 0"
        ra = R.finish_args(R.parser().parse_args(["--data", data_path, "--init", init_path] + args.split()))
        ids = R.encode(DATA, vocab, "data")
        m0, _ = R.model_from_file(init_path)
        eval_loss = R.evaluate(m0, ids, 1, 64)
        prime_ids = R.encode(PRIME, vocab, "prime").tolist()
        with torch.no_grad():  # sharper weights make greedy decoding wander instead of repeating
            for p in m0.parameters():
                p.mul_(GREEDY_SCALE)
        gen = bytes(vocab[t] for t in R.greedy(m0, prime_ids, 60))
        mt, _, losses, _, _, _ = R.train(ra)
        os.remove(init_path)
        tensors = dict(init)
        tensors["ref.losses"] = np.array(losses, dtype=np.float64)
        tensors["ref.eval_loss"] = np.array([eval_loss], dtype=np.float64)
        for k, v in mt.state_dict().items():
            tensors["ref.final." + k] = v.detach().numpy()
        meta = {"vocab": json.dumps(vocab, separators=(",", ":")), "args": args,
                "ref.greedy_prime": json.dumps(list(PRIME)), "ref.greedy": json.dumps(list(gen)),
                "ref.greedy_scale": repr(GREEDY_SCALE),
                "torch": torch.__version__}
        R.write_st(os.path.join(a.out, f"{name}.safetensors"), tensors, meta)
        print(f"{name}: losses {losses[0]:.4f} .. {losses[-1]:.4f}, eval {eval_loss:.4f}, greedy {gen[:30]!r}")


if __name__ == "__main__":
    main()
