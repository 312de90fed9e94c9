#!/usr/bin/python3
"""crosscheck.py — live cross-check of the lstm CLI against PyTorch.

Run by tests/run.sh as: /usr/bin/python3 tools/crosscheck.py --lstm build/lstm

Generates fresh random cases (tools/lstm_ref.py's case list, another seed),
saves each model as safetensors with torch's state_dict names and its arrays
as .npy, runs `lstm forward` and `lstm grad`, and compares every output with
the float64 PyTorch result: our max abs error must be <= max(8 * torch_err,
1e-5), torch_err being PyTorch float32's own max abs error on that tensor.
Also checks:
  - a model under a prefix ("lstm." of a wrapper module's state_dict, next to
    tensors outside the prefix) loads with --prefix lstm.;
  - models stored as F16, BF16 and F64 load (their values are exactly those
    of the float32 model the reference uses);
  - the gradient file written by `lstm grad` loads into nn.LSTM.load_state_dict
    (strict) and holds the same values as read with numpy;
  - the same for nn.GRU models (lstm_ref.GRU_CASES): no --c0/--cn/--grad-cn,
    the gradient file holds the parameters, input and h0 and loads into
    nn.GRU.load_state_dict (strict).
Prints "ok  ..." / "FAIL ..." lines and "N passed, M failed"; exits 1 on failure.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lstm_ref  # noqa: E402

PASS = [0, 0]


def check(ok, msg):
    PASS[0 if ok else 1] += 1
    print(("ok   " if ok else "FAIL ") + msg)
    return ok


def tol(terr):
    return max(8.0 * terr, 1e-5)


def run(args):
    p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return p.returncode, (p.stdout + p.stderr).strip()


def compare(label, name, ours, ref, terr):
    if ours is None:
        return check(False, "%s %s: missing from the output" % (label, name))
    ours = np.asarray(ours, dtype=np.float64)
    if ours.shape != ref.shape:
        return check(False, "%s %s: shape %s, expected %s" % (label, name, ours.shape, ref.shape))
    e = float(np.max(np.abs(ours - ref))) if ref.size else 0.0
    if not np.all(np.isfinite(ours)):
        e = float("inf")
    return check(e <= tol(terr), "%-34s %-26s ours %.3e  torch %.3e  tol %.3e" % (label, name, e, terr, tol(terr)))


def model_tensors(sd, prefix, dtype):
    """state_dict -> tensors for write_safetensors in the given dtype (exact
    for the values used: F16/BF16 cases are rounded beforehand)."""
    out = {}
    for k, v in sd.items():
        if dtype == "F32":
            out[prefix + k] = v.astype(np.float32)
        elif dtype == "F64":
            out[prefix + k] = v.astype(np.float64)
        elif dtype == "F16":
            out[prefix + k] = v.astype(np.float16)
        elif dtype == "BF16":
            out[prefix + k] = ("BF16", lstm_ref.to_bf16(v))
    return out


def round_params(dtype):
    """A function rounding a float32 state_dict to what dtype can hold."""
    if dtype == "F16":
        return lambda sd: {k: v.astype(np.float16).astype(np.float32) for k, v in sd.items()}
    if dtype == "BF16":
        def f(sd):
            out = {}
            for k, v in sd.items():
                u = lstm_ref.to_bf16(v).astype(np.uint32) << 16
                out[k] = u.view(np.float32).copy()
            return out
        return f
    return None


def run_case(lstm, tmp, spec, seed, prefix="", dtype="F32", extra=False):
    """One case through `lstm forward` and `lstm grad`."""
    s = lstm_ref.full_spec(spec)
    label = ("gru:" if s["cell"] == "gru" else "") + s["name"] + ("[%s]" % dtype if dtype != "F32" else "") + ("[prefix %s]" % prefix if prefix else "")
    case = lstm_ref.make_case(spec, seed, param_transform=round_params(dtype))
    d = os.path.join(tmp, label.replace("[", "_").replace("]", "").replace(" ", "_").replace(".", ""))
    os.makedirs(d, exist_ok=True)
    mpath = os.path.join(d, "model.safetensors")
    tens = model_tensors(case["state_dict"], prefix, dtype)
    if extra:  # a wrapper module's other tensors, outside the prefix
        tens["head.weight"] = np.ones((3, 4), np.float32)
        tens["head.bias"] = np.zeros(3, np.float32)
    lstm_ref.write_safetensors(mpath, tens, {"format": "pt"})
    files = {}
    for k, v in case["inputs"].items():
        files[k] = os.path.join(d, k + ".npy")
        np.save(files[k], v.astype(np.float32))
    refs, terr = case["refs"], case["torch_err"]
    common = ["--model", mpath, "--input", files["x"]]
    if prefix:
        common += ["--prefix", prefix]
    if s["batch_first"]:
        common += ["--batch-first"]
    gru = s["cell"] == "gru"
    if "h0" in files:
        common += ["--h0", files["h0"]] + ([] if gru else ["--c0", files["c0"]])

    # forward
    yp, hp, cp = (os.path.join(d, n) for n in ("y.npy", "hn.npy", "cn.npy"))
    outs = (("y", yp), ("hn", hp)) + ((("cn", cp),) if not gru else ())
    rc, out = run([lstm, "forward"] + common + ["--output", yp, "--hn", hp] + ([] if gru else ["--cn", cp]))
    if check(rc == 0, "%s: lstm forward exits 0 (rc %d%s)" % (label, rc, (": " + out) if rc else "")):
        for name, p in outs:
            compare(label, name, np.load(p) if os.path.exists(p) else None, refs[name], terr[name])

    # grad
    gp = os.path.join(d, "grads.safetensors")
    rc, out = run([lstm, "grad"] + common + ["--grad-output", files["gy"], "--grad-hn", files["ghn"]] +
                  ([] if gru else ["--grad-cn", files["gcn"]]) + ["--output", gp])
    if not check(rc == 0, "%s: lstm grad exits 0 (rc %d%s)" % (label, rc, (": " + out) if rc else "")):
        return
    g, _, dts = lstm_ref.read_safetensors(gp)
    for k in case["state_dict"]:
        compare(label, "grad." + k, g.get(prefix + k), refs["grad." + k], terr["grad." + k])
    compare(label, "grad.input", g.get("input"), refs["grad.input"], terr["grad.input"])
    if "h0" in files:  # lstm grad writes h0/c0 gradients only when they are given
        compare(label, "grad.h0", g.get("h0"), refs["grad.h0"], terr["grad.h0"])
        if gru:
            check("c0" not in g, "%s: a GRU's gradient file has no c0" % label)
        else:
            compare(label, "grad.c0", g.get("c0"), refs["grad.c0"], terr["grad.c0"])
    else:
        check("h0" not in g and "c0" not in g, "%s: no h0/c0 gradients without --h0/--c0" % label)
    check(all(v == "F32" for v in dts.values()), "%s: gradient file is all F32" % label)

    # the C-written file loads into nn.LSTM / nn.GRU (strict) with the values numpy read
    mod = "nn.GRU" if gru else "nn.LSTM"
    try:
        m = lstm_ref.new_module(s)
        sd = {k[len(prefix):]: torch.from_numpy(v.astype(np.float32)) for k, v in g.items()
              if k.startswith(prefix) and k not in ("input", "h0", "c0")}
        m.load_state_dict(sd, strict=True)
        same = all(np.array_equal(m.state_dict()[k].numpy(), g[prefix + k].astype(np.float32)) for k in sd)
        check(same, "%s: lstm grad's file loads into %s.load_state_dict (strict), values intact" % (label, mod))
    except Exception as e:  # noqa: BLE001 -- any failure to load is the finding
        check(False, "%s: lstm grad's file does not load into %s: %s" % (label, mod, e))
    if gru:  # lstm info names the cell; --c0 with a GRU is a usage error
        rc, out = run([lstm, "info", "--model", mpath] + (["--prefix", prefix] if prefix else []))
        check(rc == 0 and any(l.split() == ["cell", "gru"] for l in out.splitlines()),
              "%s: lstm info says cell gru" % label)
        rc, out = run([lstm, "forward"] + common + ["--c0", files["x"], "--output", yp])
        check(rc == 2, "%s: --c0 with a GRU model exits 2 (rc %d)" % (label, rc))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lstm", default="build/lstm")
    ap.add_argument("--seed", type=int, default=98765)
    ap.add_argument("--small", action="store_true", help="leave out the large cases")
    a = ap.parse_args()
    lstm = os.path.abspath(a.lstm)
    if not check(os.access(lstm, os.X_OK), "lstm binary %s is executable" % lstm):
        print("crosscheck.py: %d passed, %d failed" % tuple(PASS))
        return 1
    torch.set_num_threads(1)
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="lstm-crosscheck-") as tmp:
        for i, c in enumerate(lstm_ref.CASES):
            if a.small and c.get("large"):
                continue
            run_case(lstm, tmp, c, a.seed + 1000 * i)
        by = {c["name"]: c for c in lstm_ref.CASES}
        # a wrapper module's state_dict: "lstm." prefix next to other tensors
        run_case(lstm, tmp, by["deep3"], a.seed + 7, prefix="lstm.", extra=True)
        run_case(lstm, tmp, by["proj_deep_bidir"], a.seed + 8, prefix="lstm.", extra=True)
        # other stored dtypes
        run_case(lstm, tmp, by["odd"], a.seed + 9, dtype="F16")
        run_case(lstm, tmp, by["bidir"], a.seed + 10, dtype="BF16")
        run_case(lstm, tmp, by["proj"], a.seed + 11, dtype="F64", prefix="rnn.")
        for i, c in enumerate(lstm_ref.GRU_CASES):
            run_case(lstm, tmp, c, a.seed + 500 + 1000 * i)
        gby = {c["name"]: c for c in lstm_ref.GRU_CASES}
        run_case(lstm, tmp, gby["deep3"], a.seed + 12, prefix="gru.", extra=True)
        run_case(lstm, tmp, gby["bidir"], a.seed + 13, dtype="BF16")
    print("crosscheck took %.1f s" % (time.time() - t0))
    print("crosscheck.py: %d passed, %d failed" % tuple(PASS))
    return 1 if PASS[1] else 0


if __name__ == "__main__":
    sys.exit(main())
