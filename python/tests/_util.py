"""Shared helpers of the package's tests: paths, the torch reference, tolerances."""
import os
import shutil
import subprocess
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))  # python/tests -> the repository

try:
    import torch
    torch.set_num_threads(1)
except ImportError:  # the torch checks then report themselves skipped
    torch = None


def lstm_bin():
    """The CLI built by make (LSTM_BIN overrides); None when absent."""
    p = os.environ.get("LSTM_BIN") or os.path.join(REPO, os.environ.get("BUILD", "build"), "lstm")
    return os.path.abspath(p) if os.path.isfile(p) and os.access(p, os.X_OK) else None


def run_cli(*args):
    """Runs the CLI; returns stdout bytes, raising with its stderr on failure."""
    r = subprocess.run([lstm_bin(), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if r.returncode != 0:
        raise AssertionError(f"lstm {' '.join(args)} failed ({r.returncode}): {r.stderr.decode()[-500:]}")
    return r.stdout


class TempDir:
    """A temporary directory removed at exit (with TempDir() as d)."""

    def __enter__(self):
        self.path = tempfile.mkdtemp(prefix="lstm_py_")
        return self.path

    def __exit__(self, *exc):
        shutil.rmtree(self.path, ignore_errors=True)


def torch_lstm(m, dtype):
    """A torch.nn.LSTM with m's configuration and parameters, in dtype."""
    t = torch.nn.LSTM(m.input_size, m.hidden_size, m.num_layers, bias=m.bias, batch_first=m.batch_first,
                      bidirectional=m.bidirectional, proj_size=m.proj_size).to(dtype)
    t.load_state_dict({k: torch.from_numpy(v).to(dtype) for k, v in m.state_dict().items()})
    return t


def rel_err(a, ref):
    """max |a - ref| / max(max |ref|, 1e-30)."""
    a = np.asarray(a, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    return float(np.abs(a - ref).max() / max(np.abs(ref).max(), 1e-30))


def close_as_torch(ours, t32, t64, what):
    """Our float32 error against the float64 reference must be of the order of
    PyTorch's own float32 error (at most 8x it, plus a floor of 1e-6)."""
    e_ours, e_torch = rel_err(ours, t64), rel_err(t32, t64)
    if not e_ours <= 8 * e_torch + 1e-6:
        raise AssertionError(f"{what}: our relative error {e_ours:.3g} vs PyTorch float32's {e_torch:.3g}")
    return e_ours, e_torch


def sub_env():
    """The environment for a child Python that must import this same lstm package."""
    import lstm
    pkg_parent = os.path.dirname(os.path.dirname(os.path.abspath(lstm.__file__)))
    old = os.environ.get("PYTHONPATH")
    return dict(os.environ, PYTHONPATH=pkg_parent + (os.pathsep + old if old else ""))
