"""What the per-cell fast loops (``lstm.py``, ``gru.py``) share: which calls the C loops cover, the C loop
for a dtype, and the weight-gradient GEMMs after a loop.

The C time loops (``cells_generic.c``) handle batch rows ``[b0, b1)``; the
Python side runs one such call per batch chunk (see :func:`.parallel.run`),
each chunk's gradient GEMMs in the same thread, and sums the chunks' weight
gradients at the end.
"""
from __future__ import annotations

import numpy as np

from .. import _fast
from ..functional._bptt import weight_grads
from ..functional.activations import get_activation
from .gemm import matmul
from .workspace import scratch


def ptr(a):
    """The address of an array's data for a ctypes call, or None (NULL) for None."""
    return None if a is None else a.ctypes.data


def covered(activation, recurrent_activation, mask, recurrent_mask, dtype) -> bool:
    """True when the C loops cover the call: kernels built, no mask, no recurrent dropout, float32 or float64,
    tanh and sigmoid activations. Anything else runs the reference."""
    return (_fast.available() and mask is None and recurrent_mask is None and dtype in _fast.DTYPES
            and get_activation(activation, argument="activation").name == "tanh"
            and get_activation(recurrent_activation, argument="recurrent_activation").name == "sigmoid")


def c_loop(name: str, dtype) -> object:
    """The C time loop ``name`` (``lstm_forward``, ...) for ``dtype``: ``name_f32`` or ``name_f64``."""
    return getattr(_fast.KERNELS, f"{name}_{'f32' if dtype == np.float32 else 'f64'}")


def chunk_weight_grads(x, da, du, h0, hs, kernel, has_bias, bias_rows=False, dx_out=None):
    """The gradient GEMMs for one batch chunk, batch-first rows (runs in the chunk's thread)."""
    h_prev = scratch("h_prev", hs.shape, hs.dtype)  # (b, T, H) h_{t-1} for every step
    h_prev[:, 0], h_prev[:, 1:] = h0, hs[:, :-1]
    return weight_grads(x, da, du, h_prev, kernel, has_bias, bias_rows, matmul=matmul, dx_out=dx_out)


def sum_chunks(parts):
    """The weight gradients of the batch chunks, summed (dx was written in place, chunk by chunk)."""
    parts = [p[1:] for p in parts]
    if len(parts) > 1:
        for p in parts[1:]:
            for total, g in zip(parts[0], p):
                if total is not None:
                    total += g
    return parts[0]
