"""The projection LSTM's fast path (``LSTMCell(units, proj_size=P)``): whole sequences through the time loop in C
(``projection_loop.c``).

The math is :mod:`lstmlab.functional.projection_lstm` (one step; the RNN
layer's generic loop runs it over a sequence, and that is the reference these
functions are tested equal to). Covered calls (:func:`covers`: kernels built,
float32 or float64, ``tanh`` and ``sigmoid``) run ``projection_forward_*`` /
``projection_backward_*``, masks and recurrent dropout included; the cell runs
the generic loop for anything else. Organized as the peephole cell's path
(:mod:`.peephole`): the input projection of all steps (``x @ kernel + bias``)
is one GEMM per batch chunk before the loop; each step is the recurrent
product (P -> 4H), one fused pass over the units and the projection product
(7) ``h_t = m_t @ projection_kernel`` (H -> P), both kernels packed once per
call on the own GEMM; the batch is split across the cores, the rows sorted by
length so padding is skipped. After the loop, per batch chunk, the weight
gradients are GEMMs over all (sequence, step) rows: kernel, recurrent kernel
and bias as every cell's (:func:`.recurrent.chunk_weight_grads`), and the
projection's from the loop's record of the gradient reaching each h_t::

    (7)  dprojection_kernel = sum over (b, t) of m_t^T dh_t      (H, P); m_t = 0 at padded steps
"""
from __future__ import annotations

import collections
import ctypes

import numpy as np

from .. import _fast
from .gemm import PACK_MIN_STEPS, matmul, own_gemm, pack, packed_for_steps
from .gru import dropout_inputs, in_caller_order, loop_order
from .parallel import run
from . import recurrent
from .recurrent import backward_upstream, count_call, c_loop, chunk_weight_grads, covered, ptr, sum_chunks
from .workspace import scratch

# Calls that ran in C, by kind ("forward", "forward_mask", "forward_dropout", "backward", ...): what tests read
# to know the fast path really ran.
CALLS: collections.Counter = collections.Counter()
_P, _I = ctypes.c_void_p, ctypes.c_int64
_ARGTYPES = {"projection_forward": [_I] * 4 + [_P] * 10 + [_I, _I] + [_P] * 4,
             "projection_backward": [_I] * 4 + [_P] * 13 + [_I, _I] + [_P] * 3}


def covers(activation, recurrent_activation, dtype) -> bool:
    """True when the C loop runs this cell's call: kernels built (with this loop), float32 or float64, tanh
    and sigmoid. Masks and recurrent dropout are always covered."""
    return (covered(activation, recurrent_activation, None, None, np.dtype(dtype))
            and hasattr(_fast.KERNELS, "projection_forward_f32"))


def _loop(name: str, dtype):
    """The C loop ``name`` for ``dtype``, its argument types declared (the loader does not know this file)."""
    fn = c_loop(name, dtype)
    fn.argtypes, fn.restype = _ARGTYPES[name], None
    return fn


def _packed_projection(Wp, transpose: bool, T: int):
    """The projection kernel (H, P) (or its transpose) packed once for all steps of a call, or None (as
    :func:`.gemm.packed_for_steps`, in a buffer of its own: the recurrent kernel's is in use beside it)."""
    if not own_gemm(Wp.dtype) or T < PACK_MIN_STEPS:
        return None
    k, n = (Wp.shape[1], Wp.shape[0]) if transpose else Wp.shape
    return pack("projection_packed", Wp, transpose, k, n)


def _projection_grad(ms, dht, valid):
    """(7) ``dprojection_kernel = sum m_t^T dh_t`` (H, P) over one chunk's rows, ms (b, T, H), dht (b, T, P).

    m_t is zero at padded steps, so the GEMM may run over every row; when few steps are valid it runs on the
    valid rows only, gathered, as :func:`.recurrent.chunk_weight_grads` does for the other weights.
    """
    H, P = ms.shape[-1], dht.shape[-1]
    if valid is None or valid.mean() > recurrent.COMPACT_BELOW:
        return matmul(ms.reshape(-1, H).T, dht.reshape(-1, P))  # (H, P)
    keep = np.flatnonzero(valid.ravel())  # (n,) the valid rows b*T + t
    m_v = np.take(ms.reshape(-1, H), keep, axis=0, out=scratch("ms_valid", (len(keep), H), ms.dtype))  # (n, H)
    dh_v = np.take(dht.reshape(-1, P), keep, axis=0, out=scratch("dht_valid", (len(keep), P), ms.dtype))  # (n, P)
    return matmul(m_v.T, dh_v)  # (H, P)


def projection_forward(x, kernel, recurrent_kernel, bias, projection_kernel, h0, c0, *, mask=None,
                       recurrent_mask=None, need_cache=True):
    """The projection LSTM over a whole sequence (call only when :func:`covers`).

    Parameters
    ----------
    x : ndarray, (B, T, D)
    kernel : (D, 4H); recurrent_kernel : (P, 4H); bias : (4H,) or None; projection_kernel : (H, P)
    h0 : ndarray, (B, P)
    c0 : ndarray, (B, H)
    mask : array of bool, (B, T), optional
        Padded steps (False) carry h and c through, as the generic loop does.
    recurrent_mask : ndarray, (B, P), optional
        Recurrent dropout on h_{t-1}, the same at every step.
    need_cache : bool
        False (inference): no cache is kept and None is returned for it.

    Returns
    -------
    hs : ndarray, (B, T, P)
    (h_T, c_T) : ndarray, (B, P) and (B, H), after each row's last valid step
    cache : dict or None
    """
    dtype = x.dtype
    B, T, D = x.shape
    P, G = recurrent_kernel.shape
    H = G // 4
    x, h0c, rmask, valid, order = loop_order(x, np.asarray(h0, dtype), recurrent_mask, mask, B, T, P)
    c0c = np.ascontiguousarray(np.asarray(c0, dtype) if order is None else np.asarray(c0, dtype)[order])  # (B, H)
    U = np.ascontiguousarray(recurrent_kernel, dtype)  # (P, 4H)
    Wp = np.ascontiguousarray(projection_kernel, dtype)  # (H, P)

    def buffer(name, shape):  # kept for the backward when training, else this thread's reused buffer
        return np.empty(shape, dtype) if need_cache else scratch(name, shape, dtype)

    z = buffer("projection_z", (B, T, G))  # (B, T, 4H) x @ kernel + bias, then the gates
    cs = buffer("projection_cs", (B, T, H))  # (B, T, H)
    ms = buffer("projection_ms", (B, T, H))  # (B, T, H) m_t before the projection
    hs = np.empty((B, T, P), dtype)  # (B, T, P)
    hr, hr0 = dropout_inputs(hs, h0c, rmask, need_cache)  # (B, T, P), (B, P)
    kern = _loop("projection_forward", dtype)
    packed_u, packed_wp = packed_for_steps(U, False, T), _packed_projection(Wp, False, T)

    def job(b0, b1):
        matmul(x[b0:b1].reshape(-1, D), kernel, out=z[b0:b1].reshape(-1, G))  # (b*T, 4H)
        if bias is not None:
            z[b0:b1] += bias
        kern(T, B, H, P, ptr(z), ptr(U), ptr(packed_u), ptr(Wp), ptr(packed_wp), ptr(h0c), ptr(c0c), ptr(hs),
             ptr(cs), ptr(ms), b0, b1, ptr(valid), ptr(rmask), ptr(hr), ptr(hr0))

    run(job, B)
    count_call(CALLS, "forward", valid, rmask)
    cache = dict(x=x, gates=z, hs=hs, cs=cs, ms=ms, c0=c0c, kernel=kernel, recurrent_kernel=U,
                 projection_kernel=Wp, has_bias=bias is not None, valid=valid, order=order, rmask=rmask, hr=hr,
                 hr0=hr0) if need_cache else None
    # the final states, (B, P) and (B, H): after each row's last valid step, as padded steps carry them
    hs, h_T, c_T = in_caller_order(order, hs, hs[:, -1].copy(), cs[:, -1].copy())
    return hs, (h_T, c_T), cache


def projection_backward(dhs, dh_T, dc_T, cache):
    """Backward of :func:`projection_forward`.

    Parameters
    ----------
    dhs : ndarray, (B, T, P), or None
    dh_T : ndarray, (B, P), or None
    dc_T : ndarray, (B, H), or None
    cache : dict
        From :func:`projection_forward`.

    Returns
    -------
    dx : (B, T, D); (dh0 (B, P), dc0 (B, H));
    dweights : list ``[dkernel, drecurrent_kernel, dbias, dprojection_kernel]`` (dbias left out without a bias)
    """
    z, hs, cs, ms, kernel, U, Wp = (cache[k] for k in ("gates", "hs", "cs", "ms", "kernel", "recurrent_kernel",
                                                       "projection_kernel"))
    valid, order, rmask, hr, hr0 = (cache[k] for k in ("valid", "order", "rmask", "hr", "hr0"))
    B, T, P = hs.shape
    H = cs.shape[2]
    dtype = hs.dtype
    dhs, (dh,) = backward_upstream(dhs, {"dh_T": dh_T}, hs, order)  # dh (B, P): in dh_T, out dh0
    _, (dc,) = backward_upstream(None, {"dc_T": dc_T}, cs, order)  # dc (B, H): in dc_T, out dc0
    dz = scratch("projection_dz", z.shape, dtype)  # (B, T, 4H) the gate gradients
    dht = scratch("projection_dht", (B, T, P), dtype)  # (B, T, P) the gradient reaching each h_t
    dm = scratch("projection_dm", (B, H), dtype)  # (B, H) (7)'s gradient, rows per thread
    rec = np.empty((B, P), dtype) if valid is not None or rmask is not None else None  # (B, P)
    dx = np.empty(cache["x"].shape, dtype)  # (B, T, D)
    kern = _loop("projection_backward", dtype)
    packed_ut, packed_wpt = packed_for_steps(U, True, T), _packed_projection(Wp, True, T)

    def job(b0, b1):
        kern(T, B, H, P, ptr(z), ptr(U), ptr(packed_ut), ptr(Wp), ptr(packed_wpt), ptr(cache["c0"]), ptr(cs),
             ptr(dhs), ptr(dh), ptr(dc), ptr(dz), ptr(dht), ptr(dm), b0, b1, ptr(valid), ptr(rmask), ptr(rec))
        grads = chunk_weight_grads(cache["x"][b0:b1], dz[b0:b1], dz[b0:b1], hr0[b0:b1], hr[b0:b1], kernel,
                                   cache["has_bias"], dx_out=dx[b0:b1],
                                   valid=None if valid is None else valid[b0:b1])
        return (*grads, _projection_grad(ms[b0:b1], dht[b0:b1], None if valid is None else valid[b0:b1]))

    dkernel, drecurrent_kernel, dbias, dprojection_kernel = sum_chunks(run(job, B))
    count_call(CALLS, "backward", valid, rmask)
    dx, dh, dc = in_caller_order(order, dx, dh, dc)
    dweights = [dkernel, drecurrent_kernel] + ([dbias] if cache["has_bias"] else []) + [dprojection_kernel]
    return dx, (dh, dc), dweights
