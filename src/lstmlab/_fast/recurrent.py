"""What the per-cell fast loops (``lstm.py``, ``gru.py``) share: which calls the C loops cover, the row order
and mask that let them skip padding, the C loop for a dtype, and the weight-gradient GEMMs after a loop.

The C time loops (``cells_generic.c``) handle batch rows ``[b0, b1)``; the
Python side runs one such call per batch chunk (see :func:`.parallel.run`),
each chunk's gradient GEMMs in the same thread, and sums the chunks' weight
gradients at the end.
"""
from __future__ import annotations

import numpy as np

from .. import _fast
from ..functional._bptt import weight_grads
from ..functional._validate import check_mask, upstream
from ..functional.activations import get_activation
from .gemm import matmul
from .workspace import scratch


def ptr(a):
    """The address of an array's data for a ctypes call, or None (NULL) for None."""
    return None if a is None else a.ctypes.data


def covered(activation, recurrent_activation, mask, recurrent_mask, dtype, masks_in_c: bool = False) -> bool:
    """True when the C loops cover the call: kernels built, float32 or float64, tanh and sigmoid activations,
    and no mask or recurrent dropout unless the cell's loop handles them (``masks_in_c``: the LSTM's).
    Anything else runs the reference."""
    return (_fast.available() and (masks_in_c or (mask is None and recurrent_mask is None))
            and dtype in _fast.DTYPES
            and get_activation(activation, argument="activation").name == "tanh"
            and get_activation(recurrent_activation, argument="recurrent_activation").name == "sigmoid")


# -- masks: padded steps skipped, not computed ------------------------------------------------------------
COMPACT_BELOW = 0.9  # the weight-gradient GEMMs skip the padded rows when fewer than this share of steps are valid
SORT_ROWS = True  # False: the rows keep their order, so the loops compute nearly every padded step and blend


def padded_rows(mask, B: int, T: int, chunks):
    """The mask as the C loops read it, and the row order that lets them skip padding.

    The loops compute, at each step, the rows from the first to the last one still running (``active_rows``
    in ``cells.h``) and only copy the state of the others. With the rows sorted by their number of valid
    steps, longest first, the rows still running are the first ones at every step of a pre- or post-padded
    batch (either way, a row runs at step t when it has enough valid steps left), so no padded step inside
    that range is computed. Each thread runs the time loop of its own chunk of rows (see
    :func:`.parallel.split`): the sorted rows are dealt to the chunks in turn, so each gets as much work.

    Parameters
    ----------
    mask : array of bool, (B, T), or None
    chunks : list of (b0, b1)
        The row ranges the loops will run as separate calls (one range for the unit-split loop).

    Returns
    -------
    valid : ndarray of uint8, (B, T), or None
        The mask in the loops' row order; None when every step is valid.
    order : ndarray of int, (B,), or None
        Row k of the loops is row ``order[k]`` of the caller; None when the order is unchanged.
    """
    valid = check_mask(mask, B, T)  # (B, T) bool
    if valid is None or valid.all():
        return None, None
    if not SORT_ROWS:
        return np.ascontiguousarray(valid).view(np.uint8), None
    ranked = np.argsort(-valid.sum(axis=1), kind="stable")  # (B,) longest first
    sizes = [b1 - b0 for b0, b1 in chunks]
    dealt = [[] for _ in chunks]
    k = 0
    for row in ranked:  # in turn, skipping the chunks already full
        while len(dealt[k]) == sizes[k]:
            k = (k + 1) % len(chunks)
        dealt[k].append(row)
        k = (k + 1) % len(chunks)
    order = np.concatenate(dealt).astype(np.intp)  # (B,)
    if np.array_equal(order, np.arange(B)):
        return np.ascontiguousarray(valid).view(np.uint8), None
    return np.ascontiguousarray(valid[order]).view(np.uint8), order


def count_call(calls, direction: str, valid, rmask) -> None:
    """Count one C call in a loop module's ``calls`` (what tests read to know the C path ran), with its mask
    (``valid``) and recurrent dropout (``rmask``): ``forward``, ``forward_mask``, ``forward_dropout``, ..."""
    calls[direction] += 1
    if valid is not None:
        calls[f"{direction}_mask"] += 1
    if rmask is not None:
        calls[f"{direction}_dropout"] += 1


def backward_upstream(dhs, finals: dict, hs, order):
    """The upstream gradients of a C loop's backward, ready for it: ``(dhs, [d_final, ...])``.

    ``dhs`` (B, T, H) or None, and ``finals`` (name -> (B, H) gradient of a final state, or None), are checked
    like the reference's, put in the forward's row order (``order``: the rows sorted by length, or None), and
    made C-contiguous; each final-state gradient becomes a fresh (B, H) array (zeros for None), which the C
    loop overwrites with the gradient of the matching initial state.
    """
    B, T, H = hs.shape
    dtype = hs.dtype
    dhs = upstream("dhs", dhs, (B, T, H), dtype)
    finals = [upstream(name, g, (B, H), dtype) for name, g in finals.items()]
    if order is not None:  # into the forward's row order
        dhs, finals = (None if dhs is None else dhs[order]), [None if g is None else g[order] for g in finals]
    finals = [np.zeros((B, H), dtype) if g is None else np.array(g, dtype, order="C") for g in finals]
    return (None if dhs is None else np.ascontiguousarray(dhs)), finals  # (B, T, H), [(B, H), ...]


def c_loop(name: str, dtype) -> object:
    """The C time loop ``name`` (``lstm_forward``, ...) for ``dtype``: ``name_f32`` or ``name_f64``."""
    return getattr(_fast.KERNELS, f"{name}_{'f32' if dtype == np.float32 else 'f64'}")


def chunk_weight_grads(x, da, du, h0, hs, kernel, has_bias, bias_rows=False, dx_out=None, valid=None):
    """The gradient GEMMs for one batch chunk, batch-first rows (runs in the chunk's thread).

    ``valid`` (b, T) uint8, optional: the mask. Padded steps have a zero gradient, so their rows add nothing
    to the weight gradients; the GEMMs then run on the valid (sequence, step) rows only, gathered, and dx is
    scattered back with zeros at the padding (measured at the IMDB shape, (32, 200, 128, 64) with 60% of the
    steps valid: a chunk of 16 rows, its gradient GEMMs from 6.0 to 4.5 ms on one core).
    """
    h_prev = scratch("h_prev", hs.shape, hs.dtype)  # (b, T, H) h_{t-1} for every step
    h_prev[:, 0], h_prev[:, 1:] = h0, hs[:, :-1]
    if valid is None or valid.mean() > COMPACT_BELOW:
        return weight_grads(x, da, du, h_prev, kernel, has_bias, bias_rows, matmul=matmul, dx_out=dx_out)
    keep = np.flatnonzero(valid.ravel())  # (n,) the valid rows b*T + t
    n, D = len(keep), x.shape[-1]

    def gather(name, a):  # (n, width) the valid rows of a (b, T, width) array
        return np.take(a.reshape(-1, a.shape[-1]), keep, axis=0, out=scratch(name, (n, a.shape[-1]), a.dtype))

    da_v = gather("da_valid", da)
    du_v = da_v if du is da else gather("du_valid", du)
    dx_v, dkernel, drecurrent_kernel, dbias = weight_grads(
        gather("x_valid", x), da_v, du_v, gather("h_prev_valid", h_prev), kernel, has_bias, bias_rows, matmul=matmul,
        dx_out=scratch("dx_valid", (n, D), x.dtype))
    dx = np.empty(x.shape, x.dtype) if dx_out is None else dx_out  # (b, T, D)
    dx2 = dx.reshape(-1, D)
    dx2[:] = 0  # a padded step's input had no effect
    dx2[keep] = dx_v
    return dx, dkernel, drecurrent_kernel, dbias


def sum_chunks(parts):
    """The weight gradients of the batch chunks, summed (dx was written in place, chunk by chunk)."""
    parts = [p[1:] for p in parts]
    if len(parts) > 1:
        for p in parts[1:]:
            for total, g in zip(parts[0], p):
                if total is not None:
                    total += g
    return parts[0]
