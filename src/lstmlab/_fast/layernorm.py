"""The layer-normalized LSTM's fast path: whole sequences through the time loop in C (``layernorm_loop.c``).

The math is :mod:`lstmlab.functional.layernorm_lstm` (one step, equations
(1)-(10); the RNN layer's generic loop runs it over a sequence, and that is the
reference these functions are tested equal to). Covered calls (:func:`covers`:
kernels built, float32 or float64, ``tanh`` and ``sigmoid``) run
``layernorm_forward_*`` / ``layernorm_backward_*``, masks and recurrent
dropout included; the cell runs the generic loop for anything else.
Organized as the peephole path (:mod:`.peephole`): per batch chunk, the input
term (1) of all steps is one GEMM and one C pass over its rows
(``lnorm_rows_forward``, which also adds the constant terms
``kernel_norm_beta + recurrent_norm_beta + bias``), then the time loop; each
step is one recurrent GEMM for the rows still running and one fused pass per
row. The forward keeps what the backward reads (the gates; uhat, chat and
their rstd; ahat and its rstd), so nothing is recomputed.

After the backward loop, per chunk: (1)'s layer-norm backward of dz
(``lnorm_rows_backward``) gives dk, the gradient of ``x_t @ kernel``; dx,
dkernel and drecurrent_kernel are the GEMMs of :func:`.recurrent.chunk_weight_grads`
with dk and dr (the gradient of the recurrent product); the rest are sums over
the (sequence, step) rows, zero at padded steps::

    dbias = dkernel_norm_beta = drecurrent_norm_beta = sum dz_t      (3)
    dkernel_norm_gamma    = sum dz_t * ahat_t                          (1)
    drecurrent_norm_gamma = sum dz_t * uhat_t                          (2)
    dstate_norm_gamma     = sum dcn_t * chat_t,  dstate_norm_beta = sum dcn_t   (8)

with dcn_t the gradient reaching the normalized c_t.
"""
from __future__ import annotations

import collections
import ctypes

import numpy as np

from .. import _fast
from ..functional.layernorm_lstm import NORMS
from .gemm import matmul, packed_for_steps
from .gru import dropout_inputs, in_caller_order, loop_order
from .parallel import run
from .recurrent import backward_upstream, count_call, c_loop, chunk_weight_grads, covered, ptr, sum_chunks
from .workspace import scratch

# Calls that ran in C, by kind ("forward", "forward_mask", "forward_dropout", "backward", ...): what tests read
# to know the fast path really ran.
CALLS: collections.Counter = collections.Counter()
_P, _I = ctypes.c_void_p, ctypes.c_int64
_REAL = {np.dtype(np.float32): ctypes.c_float, np.dtype(np.float64): ctypes.c_double}


def _argtypes(name: str, real) -> list:
    """The ctypes argument types of the C function ``name`` (layernorm_loop.c); ``real``: its REAL."""
    return {"layernorm_forward": [_I, _I, _I] + [_P] * 6 + [real] + [_P] * 9 + [_I, _I] + [_P] * 4,
            "layernorm_backward": [_I, _I, _I] + [_P] * 17 + [_I, _I] + [_P] * 3,
            "lnorm_rows_forward": [_I, _I] + [_P] * 3 + [real] + [_P] * 2,
            "lnorm_rows_backward": [_I, _I] + [_P] * 5}[name]


def covers(activation, recurrent_activation, dtype) -> bool:
    """True when the C loop runs this cell's call: kernels built (with this loop), float32 or float64, tanh
    and sigmoid. Masks and recurrent dropout are always covered."""
    return (covered(activation, recurrent_activation, None, None, np.dtype(dtype))
            and hasattr(_fast.KERNELS, "layernorm_forward_f32"))


def _c(name: str, dtype):
    """The C function ``name`` for ``dtype``, its argument types declared (the loader does not know this file)."""
    fn = c_loop(name, dtype)
    fn.argtypes, fn.restype = _argtypes(name, _REAL[np.dtype(dtype)]), None
    return fn


def layernorm_forward(x, kernel, recurrent_kernel, bias, norms: dict, h0, c0, *, norm_epsilon: float, mask=None,
                      recurrent_mask=None, need_cache=True):
    """The layer-norm LSTM over a whole sequence (call only when :func:`covers`).

    Parameters
    ----------
    x : ndarray, (B, T, D)
    kernel : (D, 4H); recurrent_kernel : (H, 4H); bias : (4H,) or None
    norms : dict
        ``kernel_norm_gamma``, ``kernel_norm_beta``, ``recurrent_norm_gamma``, ``recurrent_norm_beta`` (4H,)
        and ``state_norm_gamma``, ``state_norm_beta`` (H,).
    h0, c0 : ndarray, (B, H)
    norm_epsilon : float
        Added to the variance in the three norms.
    mask : array of bool, (B, T), optional
        Padded steps (False) carry h and c through, as the generic loop does.
    recurrent_mask : ndarray, (B, H), optional
        Recurrent dropout on h_{t-1}, the same at every step.
    need_cache : bool
        False (inference): no cache is kept and None is returned for it.

    Returns
    -------
    hs : ndarray, (B, T, H)
    (h_T, c_T) : ndarray, (B, H) each, after each row's last valid step (c_T normalized, (8))
    cache : dict or None
    """
    dtype = x.dtype
    B, T, D = x.shape
    H = recurrent_kernel.shape[0]
    G = 4 * H
    x, h0c, rmask, valid, order = loop_order(x, np.asarray(h0, dtype), recurrent_mask, mask, B, T, H)
    c0c = np.ascontiguousarray(np.asarray(c0, dtype) if order is None else np.asarray(c0, dtype)[order])  # (B, H)
    U = np.ascontiguousarray(recurrent_kernel, dtype)
    n = {k: np.ascontiguousarray(norms[k], dtype) for k in (f"{m}_{p}" for m in NORMS for p in ("gamma", "beta"))}
    shift = n["kernel_norm_beta"] + n["recurrent_norm_beta"]  # (4H,) the constant terms of (3)
    if bias is not None:
        shift = shift + bias
    shift = np.ascontiguousarray(shift, dtype)
    if need_cache:
        z = np.empty((B, T, G), dtype)  # (B, T, 4H) input term, then the gates
        cs = np.empty((B, T, H), dtype)  # (B, T, H)
        ahat, uhat = np.empty((B, T, G), dtype), np.empty((B, T, G), dtype)  # (B, T, 4H) each
        chat = np.empty((B, T, H), dtype)  # (B, T, H)
        ra, ru, rc = (np.empty((B, T), dtype) for _ in range(3))  # (B, T) each
    else:
        z, cs = scratch("layernorm_z", (B, T, G), dtype), scratch("layernorm_cs", (B, T, H), dtype)
        ahat = uhat = chat = ra = ru = rc = None
    hs = np.empty((B, T, H), dtype)  # (B, T, H)
    rec = scratch("layernorm_rec", (B, G), dtype)  # (B, 4H) each step's recurrent product
    hr, hr0 = dropout_inputs(hs, h0c, rmask, need_cache)
    rows_forward, kern = _c("lnorm_rows_forward", dtype), _c("layernorm_forward", dtype)
    packed = packed_for_steps(U, False, T)
    eps = float(norm_epsilon)

    def job(b0, b1):
        matmul(x[b0:b1].reshape(-1, D), kernel, out=z[b0:b1].reshape(-1, G))  # (b*T, 4H)
        rows_forward((b1 - b0) * T, G, ptr(z[b0:b1]), ptr(n["kernel_norm_gamma"]), ptr(shift), eps,
                     None if ahat is None else ptr(ahat[b0:b1]), None if ra is None else ptr(ra[b0:b1]))  # (1)
        kern(T, B, H, ptr(z), ptr(U), ptr(packed), ptr(n["recurrent_norm_gamma"]), ptr(n["state_norm_gamma"]),
             ptr(n["state_norm_beta"]), eps, ptr(h0c), ptr(c0c), ptr(hs), ptr(cs), ptr(rec), ptr(uhat), ptr(chat),
             ptr(ru), ptr(rc), b0, b1, ptr(valid), ptr(rmask), ptr(hr), ptr(hr0))

    run(job, B)
    count_call(CALLS, "forward", valid, rmask)
    cache = dict(x=x, gates=z, hs=hs, cs=cs, c0=c0c, kernel=kernel, recurrent_kernel=U, norms=n,
                 has_bias=bias is not None, ahat=ahat, uhat=uhat, chat=chat, ra=ra, ru=ru, rc=rc, valid=valid,
                 order=order, rmask=rmask, hr=hr, hr0=hr0) if need_cache else None
    # the final states (B, H): after each row's last valid step, as padded steps carry them
    hs, h_T, c_T = in_caller_order(order, hs, hs[:, -1].copy(), cs[:, -1].copy())
    return hs, (h_T, c_T), cache


def layernorm_backward(dhs, dh_T, dc_T, cache):
    """Backward of :func:`layernorm_forward`.

    Parameters
    ----------
    dhs : ndarray, (B, T, H), or None
    dh_T, dc_T : ndarray, (B, H), or None
    cache : dict
        From :func:`layernorm_forward`.

    Returns
    -------
    dx : (B, T, D); (dh0, dc0) : (B, H) each;
    dweights : list
        In :func:`lstmlab.functional.layernorm_lstm.weight_shapes` order: dkernel, drecurrent_kernel, dbias
        (left out without a bias), then the gamma and beta of kernel_norm, recurrent_norm and state_norm.
    """
    z, hs, cs, kernel, U, n = (cache[k] for k in ("gates", "hs", "cs", "kernel", "recurrent_kernel", "norms"))
    ahat, uhat, chat, ra, ru, rc = (cache[k] for k in ("ahat", "uhat", "chat", "ra", "ru", "rc"))
    valid, order, rmask, hr, hr0 = (cache[k] for k in ("valid", "order", "rmask", "hr", "hr0"))
    B, T, H = hs.shape
    G = 4 * H
    dtype = hs.dtype
    dhs, (dh, dc) = backward_upstream(dhs, {"dh_T": dh_T, "dc_T": dc_T}, hs, order)  # dh, dc: in dh_T, out dh0
    dz = scratch("layernorm_dz", (B, T, G), dtype)  # (B, T, 4H) gradient of z_t (3)
    dr = scratch("layernorm_dr", (B, T, G), dtype)  # (B, T, 4H) of the recurrent product (2)
    dk = scratch("layernorm_dk", (B, T, G), dtype)  # (B, T, 4H) of the input product x_t @ kernel (1)
    dcn = scratch("layernorm_dcn", (B, T, H), dtype)  # (B, T, H) reaching the normalized c_t (8)
    rec = np.empty((B, H), dtype) if valid is not None or rmask is not None else None  # (B, H)
    dx = np.empty(cache["x"].shape, dtype)  # (B, T, D)
    kern, rows_backward = _c("layernorm_backward", dtype), _c("lnorm_rows_backward", dtype)
    packed = packed_for_steps(U, True, T)

    def job(b0, b1):
        kern(T, B, H, ptr(z), ptr(U), ptr(packed), ptr(n["recurrent_norm_gamma"]), ptr(n["state_norm_gamma"]),
             ptr(cache["c0"]), ptr(cs), ptr(uhat), ptr(chat), ptr(ru), ptr(rc), ptr(dhs), ptr(dh), ptr(dc), ptr(dz),
             ptr(dr), ptr(dcn), b0, b1, ptr(valid), ptr(rmask), ptr(rec))
        rows_backward((b1 - b0) * T, G, ptr(dz[b0:b1]), ptr(n["kernel_norm_gamma"]), ptr(ahat[b0:b1]),
                      ptr(ra[b0:b1]), ptr(dk[b0:b1]))  # (1) backward
        grads = chunk_weight_grads(cache["x"][b0:b1], dk[b0:b1], dr[b0:b1], hr0[b0:b1], hr[b0:b1], kernel,
                                   False, dx_out=dx[b0:b1], valid=None if valid is None else valid[b0:b1])
        dz2, dcn2 = dz[b0:b1].reshape(-1, G), dcn[b0:b1].reshape(-1, H)  # (b*T, 4H), (b*T, H)
        sums = (dz2.sum(axis=0),  # (3): the bias and both gate-norm betas
                np.einsum("nj,nj->j", dz2, ahat[b0:b1].reshape(-1, G)),  # (1) kernel_norm_gamma
                np.einsum("nj,nj->j", dz2, uhat[b0:b1].reshape(-1, G)),  # (2) recurrent_norm_gamma
                np.einsum("nj,nj->j", dcn2, chat[b0:b1].reshape(-1, H)),  # (8) state_norm_gamma
                dcn2.sum(axis=0))  # (8) state_norm_beta
        return grads[:3] + sums  # (dx, dkernel, drecurrent_kernel, dsum, dgk, dgu, dgs, dbs)

    dkernel, drecurrent_kernel, dsum, dgk, dgu, dgs, dbs = sum_chunks(run(job, B))
    count_call(CALLS, "backward", valid, rmask)
    dx, dh, dc = in_caller_order(order, dx, dh, dc)
    dweights = ([dkernel, drecurrent_kernel] + ([dsum.copy()] if cache["has_bias"] else [])
                + [dgk, dsum.copy(), dgu, dsum, dgs, dbs])
    return dx, (dh, dc), dweights
