"""The GRU's fast path: :func:`gru_forward` and :func:`gru_backward`, the reference's contract with the
time loop in C.

Same arguments and results as :mod:`lstmlab.functional.gru` (``reset_after``,
Keras's default). Covered calls (see :func:`.recurrent.covered`) run
``gru_forward_f32`` / ``_f64`` and ``gru_backward_*`` of ``cells_generic.c``:
the input projection of all steps is one GEMM per batch chunk before the loop,
each step one recurrent GEMM (the kernel packed once per call on the own
GEMM) and one fused pass over the units; the weight gradients are GEMMs over
all rows after the loop. Anything else runs the reference.
"""
from __future__ import annotations

import numpy as np

from ..functional import gru as ref_gru
from ..functional._validate import recurrent_args, upstream
from .gemm import matmul, packed_for_steps
from .parallel import run
from .recurrent import c_loop, chunk_weight_grads, covered, ptr, sum_chunks
from .workspace import scratch


def gru_forward(x, kernel, recurrent_kernel, bias=None, h0=None, *, activation="tanh",
                recurrent_activation="sigmoid", mask=None, recurrent_mask=None, need_cache=True):
    """Same contract as :func:`lstmlab.functional.gru.gru_forward`; ``need_cache`` as in
    :func:`lstmlab._fast.lstm.lstm_forward`."""
    x, kernel, recurrent_kernel, bias, states, (B, T, D, H) = recurrent_args(
        x, kernel, recurrent_kernel, bias, {"h0": h0}, gates=3, bias_rows=2)
    if not covered(activation, recurrent_activation, mask, recurrent_mask, x.dtype):
        hs, h, cache = ref_gru.gru_forward(x, kernel, recurrent_kernel, bias, states["h0"], activation=activation,
                                           recurrent_activation=recurrent_activation, mask=mask,
                                           recurrent_mask=recurrent_mask)
        return hs, h, cache if need_cache else None
    dtype = x.dtype
    x = np.ascontiguousarray(x)
    rbias = None if bias is None else np.ascontiguousarray(bias[1])
    ibias = None if bias is None else bias[0]
    U = np.ascontiguousarray(recurrent_kernel)
    h0c = np.ascontiguousarray(states["h0"])
    if need_cache:
        a = np.empty((B, T, 3 * H), dtype)  # (B, T, 3H) input projection, then the gates z, r, hh
        uh = np.empty((B, T, H), dtype)  # (B, T, H)
    else:
        a, uh = scratch("gates", (B, T, 3 * H), dtype), scratch("uh", (B, T, H), dtype)
    hs = np.empty((B, T, H), dtype)  # (B, T, H)
    u = np.empty((B, 3 * H), dtype)  # (B, 3H) per-step scratch, rows owned by their thread
    kern = c_loop("gru_forward", dtype)
    packed = packed_for_steps(U, False, T)

    def job(b0, b1):
        matmul(x[b0:b1].reshape(-1, D), kernel, out=a[b0:b1].reshape(-1, 3 * H))  # (b*T, 3H)
        if ibias is not None:
            a[b0:b1] += ibias
        kern(T, B, H, ptr(a), ptr(U), ptr(packed), ptr(rbias), ptr(h0c), ptr(hs), ptr(uh), ptr(u), b0, b1)

    run(job, B)
    cache = dict(fast="gru", x=x, gates=a, uh=uh, hs=hs, h0=h0c, kernel=kernel, recurrent_kernel=U,
                 has_bias=bias is not None) if need_cache else None
    return hs, hs[:, -1].copy(), cache


def gru_backward(dhs, dh_T, cache):
    """Same contract as :func:`lstmlab.functional.gru.gru_backward`; accepts either path's cache."""
    if cache.get("fast") != "gru":
        return ref_gru.gru_backward(dhs, dh_T, cache)
    gates, hs, kernel, U = cache["gates"], cache["hs"], cache["kernel"], cache["recurrent_kernel"]
    B, T, H = hs.shape
    dtype = hs.dtype
    dhs = upstream("dhs", dhs, (B, T, H), dtype)
    dh = upstream("dh_T", dh_T, (B, H), dtype)
    dh = np.zeros((B, H), dtype) if dh is None else np.array(dh, dtype, order="C")
    dhs = None if dhs is None else np.ascontiguousarray(dhs)
    da, du = scratch("da", gates.shape, dtype), scratch("du", gates.shape, dtype)  # (B, T, 3H) each
    dx = np.empty(cache["x"].shape, dtype)  # (B, T, D)
    kern = c_loop("gru_backward", dtype)
    packed = packed_for_steps(U, True, T)

    def job(b0, b1):
        kern(T, B, H, ptr(gates), ptr(cache["uh"]), ptr(hs), ptr(cache["h0"]), ptr(U), ptr(packed),
             ptr(dhs), ptr(dh), ptr(da), ptr(du), b0, b1)
        return chunk_weight_grads(cache["x"][b0:b1], da[b0:b1], du[b0:b1], cache["h0"][b0:b1], hs[b0:b1], kernel,
                                  cache["has_bias"], bias_rows=True, dx_out=dx[b0:b1])

    dkernel, drecurrent_kernel, dbias = sum_chunks(run(job, B))
    return ref_gru.GRUGrads(dx, dh, dkernel, drecurrent_kernel, dbias)
