"""lstm: the C library's LSTM networks from Python, with PyTorch's conventions.

    import numpy as np, lstm
    m = lstm.LSTM(10, 20, num_layers=2, seed=0)       # as torch.nn.LSTM(10, 20, 2)
    x = np.random.randn(5, 3, 10).astype(np.float32)  # [T, B, I]
    y, (hn, cn) = m(x)                                # y [5, 3, 20], hn, cn [2, 3, 20]
    dx, (dh0, dc0) = m.backward(np.ones_like(y))      # m.grad: name -> gradient

Names:
    LSTM, GRU, load        the networks; parameters as PyTorch's state_dict
    Stream                 piece-by-piece inference (LSTM.stream)
    CharModel, train       the char-level language model and `lstm train`'s loop
    set_num_threads, get_num_threads
    python3 -m lstm.plot LOG.jsonl -o loss.png    draws a training log

Arrays are NumPy float32; float32 C-contiguous inputs are used without a copy,
others are converted.  Errors are exceptions carrying the library's one-line
message: ValueError (shapes, configurations, file contents), OSError (files),
MemoryError.  The GIL is released while the library computes, so threads
running different models run in parallel (one model serves one call at a time).
"""
from ._rnn import GRU, LSTM, Stream, get_num_threads, load, set_num_threads
from ._charlm import CharModel, train

__all__ = ["LSTM", "GRU", "Stream", "load", "set_num_threads", "get_num_threads", "CharModel", "train"]
__version__ = "0.1.0"
