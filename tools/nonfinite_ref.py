#!/usr/bin/python3
"""nonfinite_ref.py — PyTorch's answers for LSTMs and GRUs with NaN or ±Inf in
their weights or inputs, for tests/test_nonfinite.c.

Each case is a seeded float32 torch.nn.LSTM with one or a few entries set to
NaN or ±Inf (a weight, a bias, an input element), run forward and backward in
float32 (the non-finite pattern is what is checked, so the reference is
torch's own float32 run; finite values are compared with a loose tolerance).
Loss and file layout as in tools/lstm_ref.py (model.*, x, h0, c0, gy, ghn, gcn,
ref.y, ref.hn, ref.cn, ref.grad.*; GRU cases gru_*: nn.GRU, no c0, gcn, ref.cn,
ref.grad.c0), refs stored as F32, plus __metadata__
"config" (JSON) and "what" (a one-line description).

Usage: /usr/bin/python3 tools/nonfinite_ref.py --out tests/fixtures/nonfinite
"""
import argparse
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lstm_ref  # noqa: E402

NAN, INF = float("nan"), float("inf")
H = 20  # one full 16-lane block and a 4-lane tail


def _set(sd, name, idx, v):
    sd[name][idx] = v


def _abs_wih(sd):
    for k in sd:
        if k.startswith("weight_ih"):
            sd[k] = np.abs(sd[k]) + 0.01  # no zero weight: W·(±Inf) stays ±Inf
    return sd


# name, description, spec (lstm_ref style), param edit, input edit (x, h0, c0 numpy)
CASES = [
    ("nan_whh", "NaN in W_hh (gate i, unit 5), zero state: 0·NaN makes step 0 NaN as in torch",
     dict(I=3, H=H, T=4, B=3, state="zero"),
     lambda sd: (_set(sd, "weight_hh_l0", (5, 2), NAN), sd)[1], None),
    ("nan_wih_f", "NaN in W_ih (gate f, unit 3), zero state: f·c0 = NaN·0",
     dict(I=3, H=H, T=4, B=3, state="zero"),
     lambda sd: (_set(sd, "weight_ih_l0", (H + 3, 1), NAN), sd)[1], None),
    ("nan_input", "NaN in x at t=2, batch row 1: rows 0 and 2 stay finite",
     dict(I=3, H=H, T=4, B=3, state="given"), None,
     lambda x, h0, c0: x.__setitem__((2, 1, 0), NAN)),
    ("inf_input", "+Inf in x at t=0 row 0 and -Inf at t=1 row 1, positive W_ih: "
     "σ(+Inf) = 1, tanh(+Inf) = 1, σ(-Inf) = 0, tanh(-Inf) = -1 give finite outputs",
     dict(I=3, H=H, T=4, B=3, state="given"), _abs_wih,
     lambda x, h0, c0: (x.__setitem__((0, 0), INF), x.__setitem__((1, 1), -INF))),
    ("inf_bias", "±Inf biases: b_hh g unit 17 = +Inf, b_ih o unit 2 = -Inf, b_ih f unit 9 = +Inf",
     dict(I=3, H=H, T=4, B=2, state="given"),
     lambda sd: (_set(sd, "bias_hh_l0", 2 * H + 17, INF), _set(sd, "bias_ih_l0", 3 * H + 2, -INF),
                 _set(sd, "bias_ih_l0", H + 9, INF), sd)[3], None),
    ("inf_state", "+Inf in c0 (row 0, unit 4) and -Inf in h0 (row 1, unit 6)",
     dict(I=3, H=H, T=3, B=2, state="given"), None,
     lambda x, h0, c0: (c0.__setitem__((0, 0, 4), INF), h0.__setitem__((0, 1, 6), -INF))),
    ("nan_deep_bidir", "NaN in layer 1's reverse W_hh, zero state",
     dict(I=3, H=H, L=2, bidir=True, T=3, B=2, state="zero"),
     lambda sd: (_set(sd, "weight_hh_l1_reverse", (2 * H + 1, 0), NAN), sd)[1], None),
    ("nan_wih_t1", "NaN in W_ih (gate i, unit 0), one step, zero state: dW_hh = dG·0 is NaN in torch",
     dict(I=3, H=H, T=1, B=2, state="zero"),
     lambda sd: (_set(sd, "weight_ih_l0", (0, 0), NAN), sd)[1], None),
    ("nan_proj", "NaN in W_hr (projection), given state",
     dict(I=3, H=H, P=5, T=3, B=2, state="given"),
     lambda sd: (_set(sd, "weight_hr_l0", (1, 7), NAN), sd)[1], None),
]


def _gru(name, what, spec=None, pedit=None, iedit=None):
    """A GRU case; spec None: the LSTM case of that name's spec and edits."""
    if spec is None:
        _, _, spec, pedit, iedit = next(c for c in CASES if c[0] == name)
    return ("gru_" + name, "GRU: " + what, dict(spec, cell="gru"), pedit, iedit)


# nn.GRU (gates r, z, n; W_hh rows 2H.. feed hn = b_hn + h·W_hnᵀ)
GRU_CASES = [
    _gru("nan_whh", "NaN in W_hh (gate r, unit 5), zero state: 0·NaN makes step 0 NaN as in torch"),
    _gru("nan_whn", "NaN in W_hh (gate n, unit 3: the hn product), zero state",
         dict(I=3, H=H, T=3, B=2, state="zero"),
         lambda sd: (_set(sd, "weight_hh_l0", (2 * H + 3, 0), NAN), sd)[1]),
    _gru("nan_wih_t1", "NaN in W_ih (gate z, unit 0), one step, zero state: dW_hh = dG·0 is NaN in torch",
         dict(I=3, H=H, T=1, B=2, state="zero"),
         lambda sd: (_set(sd, "weight_ih_l0", (H, 0), NAN), sd)[1]),
    _gru("nan_input", "NaN in x at t=2, batch row 1: rows 0 and 2 stay finite"),
    _gru("inf_bias", "±Inf biases: b_hh n unit 17 = +Inf (hn), b_ih r unit 2 = -Inf, b_ih z unit 9 = +Inf",
         dict(I=3, H=H, T=4, B=2, state="given"),
         lambda sd: (_set(sd, "bias_hh_l0", 2 * H + 17, INF), _set(sd, "bias_ih_l0", 2, -INF),
                     _set(sd, "bias_ih_l0", H + 9, INF), sd)[3]),
    _gru("inf_state", "-Inf in h0 (row 1, unit 6)", dict(I=3, H=H, T=3, B=2, state="given"), None,
         lambda x, h0, c0: h0.__setitem__((0, 1, 6), -INF)),
    _gru("nan_deep_bidir", "NaN in layer 1's reverse W_hh, zero state",
         dict(I=3, H=H, L=2, bidir=True, T=3, B=2, state="zero"),
         lambda sd: (_set(sd, "weight_hh_l1_reverse", (H + 1, 0), NAN), sd)[1]),
]


def make(name, what, spec, pedit, iedit, seed):
    s = lstm_ref.full_spec(spec)
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    model = lstm_ref.new_module(s)
    sd = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    if pedit:
        sd = pedit(sd)
    model.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)) for k, v in sd.items()})
    D = 2 if s["bidir"] else 1
    Hout = s["P"] or s["H"]
    T, B, L = s["T"], s["B"], s["L"]
    x = torch.randn((T, B, s["I"]), generator=g).numpy()
    h0 = (0.5 * torch.randn((L * D, B, Hout), generator=g)).numpy()
    c0 = (0.5 * torch.randn((L * D, B, s["H"]), generator=g)).numpy()
    if s["state"] == "zero":
        h0[...] = 0
        c0[...] = 0
    if iedit:
        iedit(x, h0, c0)
    inp = {"x": torch.from_numpy(x), "h0": torch.from_numpy(h0), "c0": torch.from_numpy(c0),
           "gy": torch.randn((T, B, D * Hout), generator=g), "ghn": torch.randn((L * D, B, Hout), generator=g),
           "gcn": torch.randn((L * D, B, s["H"]), generator=g)}
    if s["cell"] == "gru":
        del inp["c0"], inp["gcn"]
    ref = lstm_ref._run(model, inp, False)
    t = {"model." + k: v.astype(np.float32) for k, v in sd.items()}
    for k, v in inp.items():
        if s["state"] == "zero" and k in ("h0", "c0"):
            continue
        t[k] = v.numpy().astype(np.float32)
    for k, v in ref.items():
        t["ref." + k] = v.astype(np.float32)
    meta = {"config": json.dumps(lstm_ref.config_json(s), sort_keys=True), "what": what}
    return t, meta, ref


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=4321)
    a = ap.parse_args(argv)
    os.makedirs(a.out, exist_ok=True)
    torch.set_num_threads(1)
    for i, (name, what, spec, pedit, iedit) in enumerate(CASES + GRU_CASES):
        t, meta, ref = make(name, what, spec, pedit, iedit, a.seed + 100 * i)
        path = os.path.join(a.out, "%s.safetensors" % name)
        lstm_ref.write_safetensors(path, t, meta)
        nn = {k: int(np.isnan(v).sum()) for k, v in ref.items()}
        ni = {k: int(np.isinf(v).sum()) for k, v in ref.items()}
        print("%-24s %6d bytes  NaN %s  Inf %s" % (os.path.basename(path), os.path.getsize(path),
                                                   {k: v for k, v in nn.items() if v},
                                                   {k: v for k, v in ni.items() if v}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
