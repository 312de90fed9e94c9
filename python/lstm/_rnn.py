"""LSTM modules with torch.nn.LSTM's conventions over the C library.

The library is time-major ([T, B, I]); this file converts PyTorch's layouts
(batch_first, unbatched 2-D input) and shapes, and names the tensors.  Shapes
and names come from the library (Net.config, Net.tensors), so everything but
the call signatures lives in _RNNBase.

GRU (lstm_config.cell = LSTM_CELL_GRU) differs only in its state (h alone: the
library takes c0/cn as NULL) and its call signatures.
"""
import collections
import os
import threading

import numpy as np

from . import _lstm

_INT_MAX = 2**31 - 1

# ---------------------------------------------------------------- threads

_threads_lock = threading.Lock()


def _default_threads():
    """The cores this process may run on (its affinity: taskset, a container; SMT
    siblings once: the library's count), at most 8, as `lstm train`'s default."""
    return min(_lstm.cores_usable(), 8)


_num_threads = _default_threads()


def set_num_threads(n):
    """Sets the threads each model's forward/backward uses (as torch.set_num_threads).

    The results are the same bits for any count.  The default is the number of
    cores this process may run on, at most 8.  Applies to calls made after it."""
    global _num_threads
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= int(n) <= 256:
        raise ValueError(f"set_num_threads: expected an integer in [1, 256], got {n!r}")
    with _threads_lock:
        _num_threads = int(n)


def get_num_threads():
    """The thread count set by set_num_threads (default: the cores this process may run on,
    at most 8)."""
    return _num_threads


# ---------------------------------------------------------------- conversions


def as_f32(a, what):
    """a as a float32 C-contiguous ndarray: the array itself when it already is
    one (no copy); NumPy arrays of other types/layouts, lists and torch tensors
    are converted."""
    if a is None:
        raise TypeError(f"{what}: expected an array, got None")
    if isinstance(a, np.ndarray) and a.dtype == np.float32 and a.flags.c_contiguous:
        return a
    if hasattr(a, "detach") and hasattr(a, "cpu"):  # a torch.Tensor, without importing torch
        a = a.detach().cpu()
        if str(a.dtype) == "torch.bfloat16":  # (NumPy has no bfloat16: exact in float32)
            a = a.float()
        a = a.numpy()
    try:
        arr = np.asarray(a)
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"{what}: expected real numbers, got dtype {arr.dtype}")
        return np.ascontiguousarray(arr, dtype=np.float32)
    except TypeError:
        raise
    except (ValueError, OverflowError) as e:
        raise TypeError(f"{what}: cannot convert to a float32 array: {e}") from None


def _check_int(name, v, lo, hi=_INT_MAX):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not lo <= int(v) <= hi:
        raise ValueError(f"{name}: expected an integer in [{lo}, {hi}], got {v!r}")
    return int(v)


def _seed(seed):
    if seed is None:
        return int.from_bytes(os.urandom(8), "little")
    return _check_int("seed", seed, 0, 2**64 - 1)


# ---------------------------------------------------------------- base class


class _RNNBase:
    """What LSTM (and later GRU) share: the parameters, state_dict, files,
    train/eval, gradients and the layout of inputs and outputs."""

    _mode = "LSTM"  # the cell; the library's configuration will say it once it has GRU

    def _setup(self, net, batch_first, dropout):
        cfg = net.config()
        self._mode = "GRU" if cfg["cell"] == 1 else "LSTM"
        self._net = net
        self.input_size = cfg["input_size"]
        self.hidden_size = cfg["hidden_size"]
        self.num_layers = cfg["num_layers"]
        self.bias = bool(cfg["bias"])
        self.bidirectional = bool(cfg["bidirectional"])
        self.proj_size = cfg["proj_size"]
        self.batch_first = bool(batch_first)
        if not isinstance(dropout, (int, float, np.integer, np.floating)) or isinstance(dropout, bool) \
                or not 0 <= dropout <= 1:
            raise ValueError(f"dropout: expected a probability in [0, 1], got {dropout!r}")
        self.dropout = float(dropout)
        self.training = True
        self._D = cfg["D"]
        self._Hout = cfg["Hout"]
        self._tensors = [(n, tuple(s), o, k) for n, s, o, k in net.tensors()]
        self._params = np.frombuffer(net.params(), dtype=np.float32)
        self._grads = np.frombuffer(net.grads(), dtype=np.float32)
        self._ws = {}          # train flag -> Workspace (grown as needed)
        self._rng = None       # dropout generator state carried across workspaces
        self._ws_p = 0.0       # the dropout the training workspace was last set to
        self._saved = None     # what backward needs from the last training forward
        self._version = 0      # bumped when the parameters change (streams repack)
        self._ws_version = 0   # _version when the inference workspace last packed

    # ---- parameters

    def state_dict(self):
        """name -> float32 ndarray (a copy), PyTorch's names and shapes, in state_dict order."""
        return collections.OrderedDict(
            (n, self._params[o:o + k].reshape(s).copy()) for n, s, o, k in self._tensors)

    def load_state_dict(self, state_dict, strict=True):
        """Copies parameters from a mapping name -> array (NumPy arrays, torch
        tensors, lists).  Strict: a missing, unexpected or misshapen tensor is a
        ValueError naming it, and nothing is changed.  strict=False is not
        supported (every tensor is needed).  Not while another thread runs this
        model (one model serves one call at a time): its next call repacks."""
        if not strict:
            raise ValueError("load_state_dict: only strict=True is supported")
        if not isinstance(state_dict, collections.abc.Mapping):
            raise TypeError(f"load_state_dict: expected a mapping name -> array, got {type(state_dict).__name__}")
        names = [n for n, _, _, _ in self._tensors]
        missing = [n for n in names if n not in state_dict]
        extra = [str(n) for n in state_dict if n not in names]
        if missing or extra:
            msg = []
            if missing:
                msg.append("missing key(s) in state_dict: " + ", ".join(f'"{n}"' for n in missing))
            if extra:
                msg.append("unexpected key(s) in state_dict: " + ", ".join(f'"{n}"' for n in extra))
            raise ValueError(f"error(s) in loading state_dict for {self._mode}: " + "; ".join(msg))
        vals = []
        for n, s, o, k in self._tensors:
            v = as_f32(state_dict[n], n)
            if v.shape != s:
                raise ValueError(f"size mismatch for {n}: expected shape {list(s)}, got {list(v.shape)}")
            vals.append(v)
        for (n, s, o, k), v in zip(self._tensors, vals):
            self._params[o:o + k] = v.reshape(-1)
        self._version += 1

    def parameters(self):
        """The parameter arrays in state_dict order (copies, as state_dict())."""
        return list(self.state_dict().values())

    @property
    def grad(self):
        """name -> float32 ndarray (a copy): the gradients accumulated by
        backward() since the last zero_grad()."""
        return collections.OrderedDict(
            (n, self._grads[o:o + k].reshape(s).copy()) for n, s, o, k in self._tensors)

    def zero_grad(self):
        """Sets every accumulated gradient to zero."""
        self._net.zero_grad()

    def save(self, path, prefix=""):
        """Writes the parameters as a safetensors file (F32, PyTorch's names
        under prefix), atomically.  torch: safetensors.torch.load_file."""
        self._net.save(os.fspath(path), _check_str("prefix", prefix))

    # ---- mode

    def train(self, mode=True):
        """Training mode (the default): dropout between layers is applied and a
        forward keeps what backward() needs.  Returns self."""
        self.training = bool(mode)
        return self

    def eval(self):
        """Inference mode: no dropout, and forward keeps nothing for backward (less memory)."""
        return self.train(False)

    # ---- layout

    @classmethod
    def _from_net(cls, net, batch_first=False, dropout=0.0, seed=None):
        self = cls.__new__(cls)
        self._seed_value = _seed(seed)
        self._setup(net, batch_first, dropout)
        return self

    def stream(self, batch=1):
        """A Stream feeding this (unidirectional) model a piece of a sequence at
        a time; batch=None for unbatched 2-D pieces.  See Stream."""
        return Stream(self, batch)

    def _time_major(self, x):
        """x as a float32 [T, B, I] array; also whether it was unbatched."""
        if x is not None and not isinstance(x, (str, bytes)):
            try:  # refuse impossible shapes before converting (a broadcast view could be huge)
                shape = tuple(np.shape(x))
            except (ValueError, TypeError):
                shape = ()
            if any(d > _INT_MAX for d in shape):
                raise ValueError(f"{self._mode}: input shape {list(shape)} too large")
        x = as_f32(x, "input")
        if x.ndim == 2:
            unbatched, x3 = True, x.reshape(x.shape[0], 1, x.shape[1])
        elif x.ndim == 3:
            unbatched, x3 = False, x
            if self.batch_first:
                x3 = np.ascontiguousarray(x.transpose(1, 0, 2))
        else:
            raise ValueError(f"{self._mode}: expected input to be 2-D or 3-D, got {x.ndim}-D")
        if x3.shape[2] != self.input_size:
            raise ValueError(f"input.size(-1) must be equal to input_size. Expected {self.input_size}, got {x3.shape[2]}")
        if x3.shape[0] < 1:  # (a batch of 0 sequences is allowed, as in PyTorch: empty outputs)
            raise ValueError(f"{self._mode}: expected a non-empty input, got shape {list(x.shape)}")
        if x3.shape[0] > _INT_MAX or x3.shape[1] > _INT_MAX:
            raise ValueError(f"{self._mode}: input shape {list(x.shape)} too large")
        return x3, unbatched

    def _user_layout(self, y, unbatched):
        """[T, B, F] -> the caller's layout."""
        if unbatched:
            return y.reshape(y.shape[0], y.shape[2])
        return y.transpose(1, 0, 2) if self.batch_first else y

    def _state_in(self, a, what, B, size, unbatched):
        """An initial state (or its gradient) in PyTorch's shape -> float32 [L*D, B, size]."""
        if a is None:
            return None
        a = as_f32(a, what)
        want = (self.num_layers * self._D, size) if unbatched else (self.num_layers * self._D, B, size)
        if a.shape != want:
            raise ValueError(f"Expected {what} size {want}, got {tuple(a.shape)}")
        return a

    def _state_out(self, a, unbatched):
        return a.reshape(a.shape[0], a.shape[2]) if unbatched else a

    def _workspace(self, T, B, train):
        ws = self._ws.get(train)
        if ws is None or ws.B != B or ws.T < T:
            self._ws.pop(train, None)
            # inference keeps its packed weights between calls (LSTM_WS_KEEP_PACKS)
            # until the parameters change (load_state_dict bumps _version)
            ws = _lstm.Workspace(self._net, T, B, train, not train)
            if not train:  # _ws_version is the inference workspace's: a training one packs on every call
                self._ws_version = self._version
            else:
                self._ws_p = 0.0
            self._ws[train] = ws
        if train:  # m.dropout as it is now (a plain attribute, as nn.LSTM's: set at any time)
            p = float(self.dropout) if self.num_layers > 1 else 0.0
            if p != self._ws_p:
                if p > 0 and self._rng is None:
                    self._rng = self._seed_value * 0x9E3779B97F4A7C15 % 2**64 or 1
                ws.set_dropout(p, self._rng if p > 0 else 0)
                self._ws_p = p
        if not train and self._ws_version != self._version:
            ws.weights_changed()
            self._ws_version = self._version
        if ws.threads != _num_threads:
            ws.set_threads(_num_threads)
        return ws

    def _run_forward(self, x, states):
        """Runs the library's forward.  states: the initial states in PyTorch's
        shapes (None: zeros).  Returns y [T, B, D*Hout], the final states
        [L*D, B, size] and whether x was unbatched."""
        x3, unbatched = self._time_major(x)
        T, B = x3.shape[0], x3.shape[1]
        sizes = self._state_sizes()
        ins = [self._state_in(s, w, B, n, unbatched) for s, (w, n) in zip(states, sizes)]
        train = self.training
        y = np.empty((T, B, self._D * self._Hout), dtype=np.float32)
        outs = [np.empty((self.num_layers * self._D, B, n), dtype=np.float32) for _, n in sizes]
        if B == 0:  # no sequences: empty outputs, and a backward that adds nothing (as PyTorch)
            self._saved = (None, T, B, unbatched, x3.shape) if train else None
            return y, outs, unbatched
        ws = self._workspace(T, B, train)
        pad = [None] * (2 - len(sizes))  # a GRU has no c: the library takes c0, cn as NULL
        ws.forward(T, x3, *ins, *pad, y, *outs, *pad)
        if train and self._ws_p > 0:
            self._rng = ws.rng
        self._saved = (ws, T, B, unbatched, x3.shape) if train else None
        return y, outs, unbatched

    def _run_backward(self, dy, dstates):
        if self._saved is None or (self._saved[0] is not None and self._saved[0].fwd_T == 0):
            raise RuntimeError("backward: needs a forward in training mode (m.train()) first; "
                               "each forward serves one backward")
        ws, T, B, unbatched, xshape = self._saved
        Fy = self._D * self._Hout
        if dy is not None:
            dy = as_f32(dy, "dy")
            want = (T, Fy) if unbatched else ((B, T, Fy) if self.batch_first else (T, B, Fy))
            if dy.shape != want:
                raise ValueError(f"dy: expected shape {list(want)} (the output's), got {list(dy.shape)}")
            if unbatched:
                dy = dy.reshape(T, 1, Fy)
            elif self.batch_first:
                dy = np.ascontiguousarray(dy.transpose(1, 0, 2))
        sizes = self._state_sizes()
        dins = [self._state_in(s, "d" + w.replace("0", "n"), B, n, unbatched) for s, (w, n) in zip(dstates, sizes)]
        dx = np.empty((T, B, self.input_size), dtype=np.float32)
        douts = [np.empty((self.num_layers * self._D, B, n), dtype=np.float32) for _, n in sizes]
        pad = [None] * (2 - len(sizes))
        if ws is not None:  # (None: a batch of 0, nothing to add)
            ws.backward(dy, *dins, *pad, dx, *douts, *pad)
        self._saved = None
        return self._user_layout(dx, unbatched), [self._state_out(d, unbatched) for d in douts]

    def __repr__(self):
        s = f"{self._mode}({self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        if self.proj_size:
            s += f", proj_size={self.proj_size}"
        return s + ")"


def _check_str(name, v):
    if not isinstance(v, str):
        raise TypeError(f"{name}: expected str, got {type(v).__name__}")
    return v


# ---------------------------------------------------------------- LSTM


class LSTM(_RNNBase):
    """A multi-layer LSTM with torch.nn.LSTM's arguments, shapes and parameter names.

    LSTM(input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
         dropout=0.0, bidirectional=False, proj_size=0, seed=None)

    Parameters are drawn from PyTorch's law U(-1/sqrt(H), 1/sqrt(H)) with the
    library's own generator seeded by seed (None: a random seed); the values
    are not PyTorch's bit stream, so copy parameters across with
    load_state_dict / state_dict.

        y, (hn, cn) = m(x)             x [T, B, I] ([B, T, I] if batch_first, [T, I] unbatched)
        y, (hn, cn) = m(x, (h0, c0))   h0 [L*D, B, Hout], c0 [L*D, B, H] ([L*D, ...] unbatched)
        dx, (dh0, dc0) = m.backward(dy, dhn=None, dcn=None)

    y is [T, B, D*Hout]; Hout = proj_size or hidden_size; D = 2 if bidirectional.
    Arrays are NumPy float32; other inputs are converted."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, proj_size=0, seed=None):
        args = (_check_int("input_size", input_size, 1), _check_int("hidden_size", hidden_size, 1),
                _check_int("num_layers", num_layers, 1), _check_int("proj_size", proj_size, 0), bool(bias),
                bool(bidirectional))
        self._seed_value = _seed(seed)
        net = _lstm.Net(*args)
        net.init_uniform(self._seed_value)
        self._setup(net, batch_first, dropout)

    def _state_sizes(self):
        return [("h0", self._Hout), ("c0", self.hidden_size)]

    def forward(self, x, hx=None):
        """y, (hn, cn) = m.forward(x, hx=None): the same as m(x, hx)."""
        if hx is None:
            h0 = c0 = None
        else:
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise TypeError("LSTM: hx must be a tuple (h0, c0)")
            h0, c0 = hx
            if h0 is None or c0 is None:
                raise TypeError("LSTM: hx must hold two arrays (h0, c0)")
        y, (hn, cn), unbatched = self._run_forward(x, (h0, c0))
        return self._user_layout(y, unbatched), (self._state_out(hn, unbatched), self._state_out(cn, unbatched))

    __call__ = forward

    def backward(self, dy, dhn=None, dcn=None):
        """dx, (dh0, dc0) = m.backward(dy, dhn=None, dcn=None)

        Backpropagates through the last forward (made in training mode; each
        forward serves one backward).  dy has y's shape, dhn hn's, dcn cn's
        (None: zeros).  Returns the gradients of the loss with respect to x, h0
        and c0 in their shapes, and adds the parameter gradients to m.grad."""
        dx, (dh0, dc0) = self._run_backward(dy, (dhn, dcn))
        return dx, (dh0, dc0)



class GRU(_RNNBase):
    """A multi-layer GRU with torch.nn.GRU's arguments, shapes and parameter names.

    GRU(input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
        dropout=0.0, bidirectional=False, seed=None)

    Gates r, z, n as in PyTorch; parameters drawn from U(-1/sqrt(H), 1/sqrt(H))
    with the library's generator (seed None: random).

        y, hn = g(x)  or  g(x, h0)      h0, hn [L*D, B, H] ([L*D, H] unbatched)
        dx, dh0 = g.backward(dy, dhn=None)

    Everything else (layouts, state_dict, save/load, train/eval, grad, stream)
    is as for LSTM; a GRU's stream carries h only."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, seed=None):
        args = (_check_int("input_size", input_size, 1), _check_int("hidden_size", hidden_size, 1),
                _check_int("num_layers", num_layers, 1), 0, bool(bias), bool(bidirectional), 1)
        self._seed_value = _seed(seed)
        net = _lstm.Net(*args)
        net.init_uniform(self._seed_value)
        self._setup(net, batch_first, dropout)

    def _state_sizes(self):
        return [("h0", self.hidden_size)]

    def forward(self, x, hx=None):
        """y, hn = g.forward(x, hx=None): the same as g(x, hx)."""
        y, (hn,), unbatched = self._run_forward(x, (hx,))
        return self._user_layout(y, unbatched), self._state_out(hn, unbatched)

    __call__ = forward

    def backward(self, dy, dhn=None):
        """dx, dh0 = g.backward(dy, dhn=None): as LSTM.backward, without c."""
        dx, (dh0,) = self._run_backward(dy, (dhn,))
        return dx, dh0


def load(path, prefix="", batch_first=False, dropout=0.0):
    """Loads an nn.LSTM (or nn.GRU) state_dict saved as safetensors (tensor
    names prefix + PyTorch's names; the configuration, the cell included, is
    read from names and shapes; F32, F64, F16 and BF16 are converted) and
    returns an LSTM or a GRU.  OSError when the file
    cannot be read, ValueError when its contents do not make an LSTM."""
    net = _lstm.Net.load(os.fspath(path), _check_str("prefix", prefix))
    cls = GRU if net.config()["cell"] == 1 else LSTM
    return cls._from_net(net, batch_first=batch_first, dropout=dropout)


# ---------------------------------------------------------------- streaming


class Stream:
    """Feeds a unidirectional LSTM (or GRU) a sequence piece by piece, carrying h and c.

        s = m.stream(batch=B)
        y1 = s(x[:10]); y2 = s(x[10:])   # the same bits as m.eval()(x)[0]

    Pieces are [T, B, I] ([B, T, I] if the model is batch_first; [T, I] when
    made with batch=None).  s.h [L, B, Hout] and s.c [L, B, H] ([L, ...] when
    unbatched) are copies on reading and may be assigned; s.reset() zeroes
    them.  No dropout, no backward (inference)."""

    def __init__(self, model, batch=1):
        if model.bidirectional:
            raise ValueError("stream: a bidirectional network cannot run step by step")
        self._model = model
        self._unbatched = batch is None
        self.batch = 1 if batch is None else _check_int("batch", batch, 1)
        self._state = _lstm.State(model._net, self.batch)
        L = model.num_layers
        self._h = np.frombuffer(self._state.h(), dtype=np.float32).reshape(L, self.batch, model._Hout)
        self._c = (None if model._mode == "GRU" else
                   np.frombuffer(self._state.c(), dtype=np.float32).reshape(L, self.batch, model.hidden_size))
        self._ws = None
        self._version = model._version

    def __call__(self, x):
        """Feeds one piece; returns its outputs (shaped as the model's forward would)."""
        m = self._model
        x3, unbatched = m._time_major(x)
        if unbatched != self._unbatched or x3.shape[1] != self.batch:
            want = "[T, I]" if self._unbatched else ("[B, T, I]" if m.batch_first else "[T, B, I]") + f" with B = {self.batch}"
            raise ValueError(f"stream: expected a piece {want}, got shape {list(np.shape(x))}")
        T = x3.shape[0]
        if self._ws is None or self._ws.T < T:
            self._ws = _lstm.Workspace(m._net, max(T, 1), self.batch, False)
            self._version = m._version
        if self._version != m._version:  # parameters changed: repack the recurrent weights
            self._ws.weights_changed()
            self._version = m._version
        if self._ws.threads != _num_threads:
            self._ws.set_threads(_num_threads)
        y = np.empty((T, self.batch, m._Hout), dtype=np.float32)
        self._ws.stream(self._state, T, x3, y)
        return m._user_layout(y, unbatched)

    def _get(self, a):
        return a[:, 0, :].copy() if self._unbatched else a.copy()

    def _set(self, a, v, what):
        v = as_f32(v, what)
        want = (a.shape[0], a.shape[2]) if self._unbatched else a.shape
        if v.shape != want:
            raise ValueError(f"stream: expected {what} of shape {list(want)}, got {list(v.shape)}")
        a[...] = v.reshape(a.shape)

    @property
    def h(self):
        """The carried hidden state [L, B, Hout] (a copy); assignable."""
        return self._get(self._h)

    @h.setter
    def h(self, v):
        self._set(self._h, v, "h")

    @property
    def c(self):
        """The carried cell state [L, B, H] (a copy); assignable.  A GRU has none (AttributeError)."""
        if self._c is None:
            raise AttributeError("a GRU has no cell state c")
        return self._get(self._c)

    @c.setter
    def c(self, v):
        if self._c is None:
            raise AttributeError("a GRU has no cell state c")
        self._set(self._c, v, "c")

    def reset(self):
        """Sets h and c back to zeros."""
        self._state.reset()
