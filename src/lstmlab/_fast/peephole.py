"""The peephole LSTM's fast path: whole sequences through the time loop in C (``peephole_loop.c``).

The math is :mod:`lstmlab.functional.peephole_lstm` (one step; the RNN
layer's generic loop runs it over a sequence, and that is the reference these
functions are tested equal to). Covered calls (:func:`covers`: kernels built,
float32 or float64, ``tanh`` and ``sigmoid``) run ``peephole_forward_*`` /
``peephole_backward_*``, masks and recurrent dropout included; the cell runs
the generic loop for anything else. Organized as the simple RNN's path
(:mod:`.rnn`): the input projection of all steps (``x @ kernel + bias``) is
one GEMM per batch chunk before the loop, each step one recurrent GEMM (the
kernel packed once per call on the own GEMM) and one fused pass over the
units, the batch split across the cores, rows sorted by length so padding is
skipped, and the weight gradients GEMMs over the valid rows after the loop.
The peephole gradients are three sums over all (sequence, step) rows::

    dp_i = sum dzi_t * c_{t-1}     dp_f = sum dzf_t * c_{t-1}     dp_o = sum dzo_t * c_t
"""
from __future__ import annotations

import collections
import ctypes

import numpy as np

from .. import _fast
from .gemm import matmul, packed_for_steps
from .gru import dropout_inputs, in_caller_order, loop_order
from .parallel import run
from .recurrent import backward_upstream, count_call, c_loop, chunk_weight_grads, covered, ptr, sum_chunks
from .workspace import scratch

# Calls that ran in C, by kind ("forward", "forward_mask", "forward_dropout", "backward", ...): what tests read
# to know the fast path really ran.
CALLS: collections.Counter = collections.Counter()
_P, _I = ctypes.c_void_p, ctypes.c_int64
_ARGTYPES = {"peephole_forward": [_I, _I, _I] + [_P] * 8 + [_I, _I] + [_P] * 4,
             "peephole_backward": [_I, _I, _I] + [_P] * 10 + [_I, _I] + [_P] * 3}



def covers(activation, recurrent_activation, dtype) -> bool:
    """True when the C loop runs this cell's call: kernels built (with this loop), float32 or float64, tanh
    and sigmoid. Masks and recurrent dropout are always covered."""
    return (covered(activation, recurrent_activation, None, None, np.dtype(dtype))
            and hasattr(_fast.KERNELS, "peephole_forward_f32"))


def _loop(name: str, dtype):
    """The C loop ``name`` for ``dtype``, its argument types declared (the loader does not know this file)."""
    fn = c_loop(name, dtype)
    fn.argtypes, fn.restype = _ARGTYPES[name], None
    return fn


def peephole_forward(x, kernel, recurrent_kernel, bias, peephole, h0, c0, *, mask=None, recurrent_mask=None,
                     need_cache=True):
    """The peephole LSTM over a whole sequence (call only when :func:`covers`).

    Parameters
    ----------
    x : ndarray, (B, T, D)
    kernel : (D, 4H); recurrent_kernel : (H, 4H); bias : (4H,) or None; peephole : (3, H) rows p_i, p_f, p_o
    h0, c0 : ndarray, (B, H)
    mask : array of bool, (B, T), optional
        Padded steps (False) carry h and c through, as the generic loop does.
    recurrent_mask : ndarray, (B, H), optional
        Recurrent dropout on h_{t-1}, the same at every step.
    need_cache : bool
        False (inference): no cache is kept and None is returned for it.

    Returns
    -------
    hs : ndarray, (B, T, H)
    (h_T, c_T) : ndarray, (B, H) each, after each row's last valid step
    cache : dict or None
    """
    dtype = x.dtype
    B, T, D = x.shape
    H = recurrent_kernel.shape[0]
    x, h0c, rmask, valid, order = loop_order(x, np.asarray(h0, dtype), recurrent_mask, mask, B, T, H)
    c0c = np.ascontiguousarray(np.asarray(c0, dtype) if order is None else np.asarray(c0, dtype)[order])  # (B, H)
    U = np.ascontiguousarray(recurrent_kernel, dtype)
    P = np.ascontiguousarray(peephole, dtype)  # (3, H)
    z = np.empty((B, T, 4 * H), dtype) if need_cache else scratch("peephole_z", (B, T, 4 * H), dtype)  # (B, T, 4H)
    cs = np.empty((B, T, H), dtype) if need_cache else scratch("peephole_cs", (B, T, H), dtype)  # (B, T, H)
    hs = np.empty((B, T, H), dtype)  # (B, T, H)
    hr, hr0 = dropout_inputs(hs, h0c, rmask, need_cache)
    kern = _loop("peephole_forward", dtype)
    packed = packed_for_steps(U, False, T)

    def job(b0, b1):
        matmul(x[b0:b1].reshape(-1, D), kernel, out=z[b0:b1].reshape(-1, 4 * H))  # (b*T, 4H)
        if bias is not None:
            z[b0:b1] += bias
        kern(T, B, H, ptr(z), ptr(U), ptr(packed), ptr(P), ptr(h0c), ptr(c0c), ptr(hs), ptr(cs), b0, b1,
             ptr(valid), ptr(rmask), ptr(hr), ptr(hr0))

    run(job, B)
    count_call(CALLS, "forward", valid, rmask)
    cache = dict(x=x, gates=z, hs=hs, cs=cs, c0=c0c, kernel=kernel, recurrent_kernel=U, peephole=P,
                 has_bias=bias is not None, valid=valid, order=order, rmask=rmask, hr=hr,
                 hr0=hr0) if need_cache else None
    # the final states (B, H): after each row's last valid step, as padded steps carry them
    hs, h_T, c_T = in_caller_order(order, hs, hs[:, -1].copy(), cs[:, -1].copy())
    return hs, (h_T, c_T), cache


def peephole_backward(dhs, dh_T, dc_T, cache):
    """Backward of :func:`peephole_forward`.

    Parameters
    ----------
    dhs : ndarray, (B, T, H), or None
    dh_T, dc_T : ndarray, (B, H), or None
    cache : dict
        From :func:`peephole_forward`.

    Returns
    -------
    dx : (B, T, D); (dh0, dc0) : (B, H) each;
    dweights : list ``[dkernel, drecurrent_kernel, dbias, dpeephole]`` (dbias left out without a bias)
    """
    z, hs, cs, kernel, U, P = (cache[k] for k in ("gates", "hs", "cs", "kernel", "recurrent_kernel", "peephole"))
    valid, order, rmask, hr, hr0 = (cache[k] for k in ("valid", "order", "rmask", "hr", "hr0"))
    B, T, H = hs.shape
    dtype = hs.dtype
    dhs, (dh, dc) = backward_upstream(dhs, {"dh_T": dh_T, "dc_T": dc_T}, hs, order)  # dh, dc: in dh_T, out dh0
    dz = scratch("peephole_dz", z.shape, dtype)  # (B, T, 4H) the gate gradients
    rec = np.empty((B, H), dtype) if valid is not None or rmask is not None else None  # (B, H)
    dx = np.empty(cache["x"].shape, dtype)  # (B, T, D)
    kern = _loop("peephole_backward", dtype)
    packed = packed_for_steps(U, True, T)

    def job(b0, b1):
        kern(T, B, H, ptr(z), ptr(U), ptr(packed), ptr(P), ptr(cache["c0"]), ptr(cs), ptr(dhs), ptr(dh), ptr(dc),
             ptr(dz), b0, b1, ptr(valid), ptr(rmask), ptr(rec))
        return chunk_weight_grads(cache["x"][b0:b1], dz[b0:b1], dz[b0:b1], hr0[b0:b1], hr[b0:b1], kernel,
                                  cache["has_bias"], dx_out=dx[b0:b1],
                                  valid=None if valid is None else valid[b0:b1])

    dkernel, drecurrent_kernel, dbias = sum_chunks(run(job, B))
    # the peepholes: (1) (2) read c_{t-1}, (5) reads c_t; padded steps have dz = 0 and add nothing
    c_prev = np.concatenate([cache["c0"][:, None], cs[:, :-1]], axis=1)  # (B, T, H)
    dpeephole = np.stack([np.einsum("btj,btj->j", dz[..., :H], c_prev),
                          np.einsum("btj,btj->j", dz[..., H:2 * H], c_prev),
                          np.einsum("btj,btj->j", dz[..., 3 * H:], cs)])  # (3, H)
    count_call(CALLS, "backward", valid, rmask)
    dx, dh, dc = in_caller_order(order, dx, dh, dc)
    dweights = [dkernel, drecurrent_kernel] + ([dbias] if cache["has_bias"] else []) + [dpeephole]
    return dx, (dh, dc), dweights
