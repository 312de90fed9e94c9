#!/usr/bin/python3
"""lstm_ref.py — reference cases from PyTorch for the C tests.

Each case is a seeded torch.nn.LSTM or nn.GRU (or nn.LSTMCell / nn.GRUCell) with float32 inputs and
random upstream gradients.  The case is run twice: in float64 (the reference)
and in float32 (to measure PyTorch's own float32 error against it).  The loss
whose gradients are stored is

    L = sum(y * gy) + sum(hn * ghn) + sum(cn * gcn)

so dL/dy = gy, dL/dhn = ghn, dL/dcn = gcn exactly.

One safetensors file per case:
  model.<state_dict name>      F32 parameters
  x, h0, c0, gy, ghn, gcn      inputs (h0/c0 omitted for zero-state cases), in
                               the user's layout (batch_first / unbatched as given)
  ref.y, ref.hn, ref.cn        float64 outputs
  ref.grad.<state_dict name>   float64 dL/dparameter
  ref.grad.input, ref.grad.h0, ref.grad.c0   float64 dL/dx, dL/dh0, dL/dc0
                               (h0/c0 gradients are given for zero-state cases too:
                               the gradient at h0 = c0 = 0)
  __metadata__: "config" (JSON), "torch_err" (JSON {ref tensor: max |torch f32 - f64|})

GRU cases (gru_*.safetensors) are the same without c: no c0, gcn, ref.cn,
ref.grad.c0, and L = sum(y * gy) + sum(hn * ghn); their config has "cell": "gru".
GRU cell cases (cell_gru*.safetensors): as below without c, gc1, ref.c1, ref.grad.c.

Cell cases (cell_*.safetensors): w_ih, w_hh, b_ih, b_hh (when bias), x, h, c,
gh1, gc1; refs ref.h1, ref.c1, ref.grad.{w_ih,w_hh,b_ih,b_hh,x,h,c}, with
L = sum(h1 * gh1) + sum(c1 * gc1).

"Compact" cases (B=128 and T=1000) keep the committed fixtures small (~6 MB
in all): their x and gy are drawn, then rounded to multiples of 1/32 in
[-127/32, 127/32] and stored as I8 integers k, value = k * scale with
__metadata__ "i8_scale" = {"x": 0.03125, "gy": 0.03125} (exact: the float32
the model sees is that value); their refs are stored as F32 roundings of the
float64 values (relative error 6e-8, far below the tolerances used).

Usage: /usr/bin/python3 tools/lstm_ref.py --out tests/fixtures [--seed S] [--small] [--cells lstm,gru]
  --small leaves out the two large LSTM cases (B=128 and T=1000).
The module is also imported by tools/crosscheck.py (make_case, CASES, ...).
"""
import argparse
import json
import os
import struct
import sys

import numpy as np
import torch

# name, I, H, L, P, bias, bidirectional, batch_first, unbatched, T, B, state, compact
#   state: "given" (random h0, c0) or "zero" (none passed)
CASES = [
    dict(name="tiny", I=1, H=1, T=1, B=1, state="given"),
    dict(name="tiny_zero", I=1, H=1, T=1, B=1, state="zero"),
    dict(name="walk_b1", I=20, H=100, T=50, B=1, state="zero"),
    dict(name="walk_b128", I=20, H=100, T=50, B=128, state="zero", compact=True, large=True),
    dict(name="deep3", I=10, H=16, L=3, T=12, B=3, state="given"),
    dict(name="bidir", I=7, H=12, bidir=True, T=9, B=4, state="given"),
    dict(name="bidir_deep", I=6, H=10, L=2, bidir=True, T=7, B=3, state="zero"),
    dict(name="proj", I=9, H=16, P=5, T=10, B=3, state="given"),
    dict(name="proj_deep", I=8, H=20, P=7, L=3, T=8, B=2, state="given"),
    dict(name="proj_deep_bidir", I=5, H=12, P=4, L=2, bidir=True, T=6, B=3, state="given"),
    dict(name="nobias", I=6, H=11, L=2, bias=False, T=7, B=3, state="given"),
    dict(name="nobias_proj_bidir", I=4, H=9, P=3, bias=False, bidir=True, T=5, B=2, state="zero"),
    dict(name="batch_first", I=5, H=8, L=2, batch_first=True, T=6, B=4, state="given"),
    dict(name="batch_first_bidir", I=4, H=6, bidir=True, batch_first=True, T=5, B=3, state="zero"),
    dict(name="unbatched", I=5, H=9, L=2, unbatched=True, T=8, state="given"),
    dict(name="unbatched_bidir_proj", I=3, H=7, P=2, bidir=True, unbatched=True, T=6, state="zero"),
    dict(name="odd", I=13, H=37, T=11, B=5, state="given"),
    dict(name="odd_deep_bidir", I=13, H=11, L=2, bidir=True, T=9, B=5, state="zero"),
    dict(name="long", I=8, H=16, T=1000, B=2, state="given", compact=True, large=True),
]
# GRU (nn.GRU): the LSTM's kinds of case, no projection; kept small (< 2 MB in all).
GRU_CASES = [
    dict(name="tiny", I=1, H=1, T=1, B=1, state="given"),
    dict(name="tiny_zero", I=1, H=1, T=1, B=1, state="zero"),
    dict(name="walk_b1", I=20, H=100, T=50, B=1, state="zero"),
    dict(name="walk_b16", I=20, H=48, T=30, B=16, state="zero", compact=True),
    dict(name="deep3", I=10, H=16, L=3, T=12, B=3, state="given"),
    dict(name="bidir", I=7, H=12, bidir=True, T=9, B=4, state="given"),
    dict(name="bidir_deep", I=6, H=10, L=2, bidir=True, T=7, B=3, state="zero"),
    dict(name="nobias", I=6, H=11, L=2, bias=False, T=7, B=3, state="given"),
    dict(name="nobias_bidir", I=4, H=9, bias=False, bidir=True, T=5, B=2, state="zero"),
    dict(name="batch_first", I=5, H=8, L=2, batch_first=True, T=6, B=4, state="given"),
    dict(name="batch_first_bidir", I=4, H=6, bidir=True, batch_first=True, T=5, B=3, state="zero"),
    dict(name="unbatched", I=5, H=9, L=2, unbatched=True, T=8, state="given"),
    dict(name="unbatched_bidir", I=3, H=7, bidir=True, unbatched=True, T=6, state="zero"),
    dict(name="odd", I=13, H=37, T=11, B=5, state="given"),
    dict(name="odd_deep_bidir", I=13, H=11, L=2, bidir=True, T=9, B=5, state="zero"),
    dict(name="long", I=8, H=16, T=1000, B=2, state="given", compact=True),
]
GRU_CASES = [dict(c, cell="gru") for c in GRU_CASES]
CELL_CASES = [
    dict(name="cell", I=13, H=37, B=5, bias=True),
    dict(name="cell_nobias", I=4, H=6, B=1, bias=False),
    dict(name="cell_gru", I=13, H=37, B=5, bias=True, cell="gru"),
    dict(name="cell_gru_nobias", I=4, H=6, B=1, bias=False, cell="gru"),
]


def full_spec(c):
    """Fills the defaults of a case description."""
    d = dict(L=1, P=0, bias=True, bidir=False, batch_first=False, unbatched=False,
             B=1, compact=False, large=False, cell="lstm")
    d.update(c)
    if d["unbatched"]:
        d["B"] = 1
    return d


def config_json(s):
    d = dict(input_size=s["I"], hidden_size=s["H"], num_layers=s["L"],
             proj_size=s["P"], bias=bool(s["bias"]), bidirectional=bool(s["bidir"]),
             batch_first=bool(s["batch_first"]), unbatched=bool(s["unbatched"]),
             T=s["T"], B=s["B"])
    if s["cell"] != "lstm":  # LSTM files stay as they were before GRU cases existed
        d["cell"] = s["cell"]
    return d


def new_module(s):
    """The float32 nn.LSTM or nn.GRU of a full spec."""
    if s["cell"] == "gru":
        return torch.nn.GRU(s["I"], s["H"], num_layers=s["L"], bias=s["bias"],
                            batch_first=s["batch_first"], bidirectional=s["bidir"])
    return torch.nn.LSTM(s["I"], s["H"], num_layers=s["L"], bias=s["bias"],
                         batch_first=s["batch_first"], bidirectional=s["bidir"], proj_size=s["P"])


I8_SCALE = 32.0  # compact cases: x and gy are multiples of 1/32 in [-127/32, 127/32]


def _i8_exact(t):
    return torch.clamp(torch.round(t * I8_SCALE), -127, 127) / I8_SCALE


def _run(model, inputs, double):
    """Forward + gradients of L; returns (outputs dict, grads dict) as float64 numpy.
    A GRU (inputs without c0) has no cn / grad.c0."""
    m = model
    cast = (lambda t: t.double()) if double else (lambda t: t.clone())
    gru = "c0" not in inputs
    x = cast(inputs["x"]).requires_grad_(True)
    h0 = cast(inputs["h0"]).requires_grad_(True)
    # Zero-state cases: the explicit zeros give the same forward as passing
    # none, and let us read the gradient at h0 = c0 = 0.
    if gru:
        y, hn = m(x, h0)
        states = [x, h0]
        out = {"y": y, "hn": hn}
        loss = (y * cast(inputs["gy"])).sum() + (hn * cast(inputs["ghn"])).sum()
    else:
        c0 = cast(inputs["c0"]).requires_grad_(True)
        y, (hn, cn) = m(x, (h0, c0))
        states = [x, h0, c0]
        out = {"y": y, "hn": hn, "cn": cn}
        loss = (y * cast(inputs["gy"])).sum() + (hn * cast(inputs["ghn"])).sum() + \
            (cn * cast(inputs["gcn"])).sum()
    names = [n for n, _ in m.named_parameters()]
    params = [p for _, p in m.named_parameters()]
    g = torch.autograd.grad(loss, params + states)
    grads = {"grad." + n: gi for n, gi in zip(names, g[:len(names)])}
    for k, gi in zip(["grad.input", "grad.h0", "grad.c0"], g[len(names):]):
        grads[k] = gi
    res = {k: v.detach().double().numpy() for k, v in {**out, **grads}.items()}
    return res


def make_case(spec, seed, param_transform=None):
    """Builds a case.  Returns dict with: spec, model (float32 nn.LSTM),
    state_dict (name -> float32 numpy), inputs (name -> float32 numpy, in the
    user's layout; h0/c0 absent for zero state), refs (name -> float64 numpy,
    names without the 'ref.' prefix), torch_err (name -> float).
    param_transform: optional function state_dict (numpy) -> state_dict applied
    to the initial parameters (e.g. rounding them to float16 values)."""
    s = full_spec(spec)
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = new_module(s)
    if param_transform:
        sd0 = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
        model.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32))
                               for k, v in param_transform(sd0).items()})
    D = 2 if s["bidir"] else 1
    Hout = s["P"] or s["H"]
    T, B, I, H, L = s["T"], s["B"], s["I"], s["H"], s["L"]
    if s["unbatched"]:
        xs, ys, hs, cs = (T, I), (T, D * Hout), (L * D, Hout), (L * D, H)
    elif s["batch_first"]:
        xs, ys, hs, cs = (B, T, I), (B, T, D * Hout), (L * D, B, Hout), (L * D, B, H)
    else:
        xs, ys, hs, cs = (T, B, I), (T, B, D * Hout), (L * D, B, Hout), (L * D, B, H)
    inp = {
        "x": torch.randn(xs, generator=g),
        "h0": 0.5 * torch.randn(hs, generator=g),
        "c0": 0.5 * torch.randn(cs, generator=g),
        "gy": torch.randn(ys, generator=g),
        "ghn": torch.randn(hs, generator=g),
        "gcn": torch.randn(cs, generator=g),
    }
    if s["compact"]:
        inp["x"] = _i8_exact(inp["x"])
        inp["gy"] = _i8_exact(inp["gy"])
    if s["state"] == "zero":
        inp["h0"] = torch.zeros(hs)
        inp["c0"] = torch.zeros(cs)
    if s["cell"] == "gru":
        del inp["c0"], inp["gcn"]
    with torch.no_grad():
        m64 = new_module(s).double()
        m64.load_state_dict({k: v.double() for k, v in model.state_dict().items()})
    ref = _run(m64, inp, True)
    f32 = _run(model, inp, False)
    err = {k: float(np.max(np.abs(ref[k] - f32[k]))) if ref[k].size else 0.0 for k in ref}
    inputs = {k: v.numpy().astype(np.float32) for k, v in inp.items()}
    if s["state"] == "zero":
        inputs.pop("h0")
        inputs.pop("c0", None)
    sd = {k: v.detach().numpy().astype(np.float32) for k, v in model.state_dict().items()}
    return dict(spec=s, model=model, state_dict=sd, inputs=inputs, refs=ref, torch_err=err)


def _cell_run(cell, inp, double):
    cast = (lambda t: t.double()) if double else (lambda t: t.clone())
    gru = "c" not in inp
    x = cast(inp["x"]).requires_grad_(True)
    h = cast(inp["h"]).requires_grad_(True)
    if gru:
        h1 = cell(x, h)
        states = [x, h]
        res = {"h1": h1}
        loss = (h1 * cast(inp["gh1"])).sum()
    else:
        c = cast(inp["c"]).requires_grad_(True)
        h1, c1 = cell(x, (h, c))
        states = [x, h, c]
        res = {"h1": h1, "c1": c1}
        loss = (h1 * cast(inp["gh1"])).sum() + (c1 * cast(inp["gc1"])).sum()
    names = [n for n, _ in cell.named_parameters()]
    params = [p for _, p in cell.named_parameters()]
    g = torch.autograd.grad(loss, params + states)
    short = {"weight_ih": "w_ih", "weight_hh": "w_hh", "bias_ih": "b_ih", "bias_hh": "b_hh"}
    for n, gi in zip(names, g[:len(names)]):
        res["grad." + short[n]] = gi
    for k, gi in zip(["grad.x", "grad.h", "grad.c"], g[len(names):]):
        res[k] = gi
    return {k: v.detach().double().numpy() for k, v in res.items()}


def make_cell_case(spec, seed):
    s = dict(spec)
    gru = s.get("cell") == "gru"
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    mk = torch.nn.GRUCell if gru else torch.nn.LSTMCell
    cell = mk(s["I"], s["H"], bias=s["bias"])
    B, I, H = s["B"], s["I"], s["H"]
    inp = {"x": torch.randn(B, I, generator=g), "h": 0.5 * torch.randn(B, H, generator=g),
           "c": 0.5 * torch.randn(B, H, generator=g), "gh1": torch.randn(B, H, generator=g),
           "gc1": torch.randn(B, H, generator=g)}
    if gru:
        del inp["c"], inp["gc1"]
    with torch.no_grad():
        c64 = mk(I, H, bias=s["bias"]).double()
        c64.load_state_dict({k: v.double() for k, v in cell.state_dict().items()})
    ref = _cell_run(c64, inp, True)
    f32 = _cell_run(cell, inp, False)
    err = {k: float(np.max(np.abs(ref[k] - f32[k]))) for k in ref}
    short = {"weight_ih": "w_ih", "weight_hh": "w_hh", "bias_ih": "b_ih", "bias_hh": "b_hh"}
    params = {short[k]: v.detach().numpy().astype(np.float32) for k, v in cell.state_dict().items()}
    inputs = {k: v.numpy().astype(np.float32) for k, v in inp.items()}
    return dict(spec=s, params=params, inputs=inputs, refs=ref, torch_err=err)


# ------------------------------------------------------------------ safetensors

_DT = {np.dtype("<f4"): "F32", np.dtype("<f8"): "F64", np.dtype("<f2"): "F16"}
_NP = {"F32": "<f4", "F64": "<f8", "F16": "<f2", "BF16": None}


def write_safetensors(path, tensors, metadata=None):
    """tensors: name -> numpy array (f2/f4/f8) or (name -> ("BF16", uint16 array)).
    Writes the header (padded with spaces to a multiple of 8) and the data."""
    header, blobs, off = {}, [], 0
    if metadata:
        header["__metadata__"] = {k: str(v) for k, v in metadata.items()}
    for name, a in tensors.items():
        if isinstance(a, tuple):
            dt, arr = a
            arr = np.ascontiguousarray(arr)
        else:
            arr = np.ascontiguousarray(a)
            if arr.dtype.byteorder == ">":
                arr = arr.astype(arr.dtype.newbyteorder("<"))
            dt = _DT[np.dtype(arr.dtype).newbyteorder("<")]
        b = arr.tobytes()
        header[name] = {"dtype": dt, "shape": list(arr.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def read_safetensors(path):
    """Returns (tensors: name -> float64 numpy, metadata dict, dtypes: name -> str)."""
    with open(path, "rb") as f:
        buf = f.read()
    n = struct.unpack("<Q", buf[:8])[0]
    hdr = json.loads(buf[8:8 + n])
    data = buf[8 + n:]
    meta = hdr.pop("__metadata__", {}) or {}
    out, dts = {}, {}
    for name, t in hdr.items():
        a, b = t["data_offsets"]
        raw = data[a:b]
        dt = t["dtype"]
        if dt == "I8":
            arr = np.frombuffer(raw, dtype=np.int8).astype(np.float64)
        elif dt == "BF16":
            u = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            arr = u.view(np.float32).astype(np.float64)
        else:
            arr = np.frombuffer(raw, dtype=_NP[dt]).astype(np.float64)
        out[name] = arr.reshape(t["shape"])
        dts[name] = dt
    return out, meta, dts


def to_bf16(a):
    """float32 -> bfloat16 bits (round to nearest even) as uint16."""
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    r = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    return r


def case_tensors(case):
    """The tensors of a case's fixture file (see the module docstring)."""
    s = case["spec"]
    t = {}
    for k, v in case["state_dict"].items():
        t["model." + k] = v
    for k, v in case["inputs"].items():
        if s["compact"] and k in ("x", "gy"):
            t[k] = ("I8", np.round(v * I8_SCALE).astype(np.int8))
        else:
            t[k] = v
    rdt = np.float32 if s["compact"] else np.float64
    for k, v in case["refs"].items():
        t["ref." + k] = v.astype(rdt)
    return t


def case_meta(case):
    m = {} if not case["spec"]["compact"] else {"i8_scale": json.dumps({"x": 1 / I8_SCALE, "gy": 1 / I8_SCALE})}
    return {**m, "config": json.dumps(config_json(case["spec"]), sort_keys=True),
            "torch_err": json.dumps({"ref." + k: v for k, v in case["torch_err"].items()},
                                    sort_keys=True)}


def cell_tensors(case):
    t = dict(case["params"])
    t.update(case["inputs"])
    for k, v in case["refs"].items():
        t["ref." + k] = v
    return t


def cell_meta(case):
    s = case["spec"]
    d = dict(input_size=s["I"], hidden_size=s["H"], B=s["B"], bias=bool(s["bias"]))
    if s.get("cell", "lstm") != "lstm":
        d["cell"] = s["cell"]
    return {"config": json.dumps(d, sort_keys=True),
            "torch_err": json.dumps({"ref." + k: v for k, v in case["torch_err"].items()},
                                    sort_keys=True)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--small", action="store_true", help="leave out the large cases")
    ap.add_argument("--cells", default="lstm,gru", help="which cells' fixtures to write (default lstm,gru)")
    a = ap.parse_args(argv)
    os.makedirs(a.out, exist_ok=True)
    torch.set_num_threads(1)
    total = 0
    cells = a.cells.split(",")
    for i, c in enumerate(CASES):
        if "lstm" not in cells or (a.small and c.get("large")):
            continue
        case = make_case(c, a.seed + 1000 * i)
        path = os.path.join(a.out, "lstm_%s.safetensors" % c["name"])
        write_safetensors(path, case_tensors(case), case_meta(case))
        total += os.path.getsize(path)
        print("%-28s %8d bytes  max torch f32 err %.3g" %
              (os.path.basename(path), os.path.getsize(path), max(case["torch_err"].values())))
    for i, c in enumerate(GRU_CASES):
        if "gru" not in cells or (a.small and c.get("large")):
            continue
        case = make_case(c, a.seed + 500 + 1000 * i)
        path = os.path.join(a.out, "gru_%s.safetensors" % c["name"])
        write_safetensors(path, case_tensors(case), case_meta(case))
        total += os.path.getsize(path)
        print("%-28s %8d bytes  max torch f32 err %.3g" %
              (os.path.basename(path), os.path.getsize(path), max(case["torch_err"].values())))
    for i, c in enumerate(CELL_CASES):
        if c.get("cell", "lstm") not in cells:
            continue
        case = make_cell_case(c, a.seed + 777 + 1000 * i)
        path = os.path.join(a.out, "%s.safetensors" % c["name"])
        write_safetensors(path, cell_tensors(case), cell_meta(case))
        total += os.path.getsize(path)
        print("%-28s %8d bytes" % (os.path.basename(path), os.path.getsize(path)))
    print("total %d bytes" % total)
    return 0


if __name__ == "__main__":
    sys.exit(main())
