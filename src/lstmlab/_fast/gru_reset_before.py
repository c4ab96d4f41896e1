"""The fast path of the GRU with ``reset_after=False`` (Keras's original variant): a whole sequence in C.

The math is :mod:`lstmlab.functional.gru_reset_before` (one step, same
equation numbers); the reference over a sequence is that step run by
:func:`lstmlab.functional.recurrence.recurrence_forward`, which is what
uncovered calls run here (and what tests hold the C loop to). Covered calls
(kernels built, float32 or float64, tanh and sigmoid) run
``gru_rb_forward_*`` / ``gru_rb_backward_*`` of ``gru_loops.c``, with masks
and recurrent dropout, organized as the ``reset_after=True`` path
(:mod:`.gru`): the input projection of all steps before the loop, the batch
split across the cores, rows sorted by length so padding is skipped.

Each step makes two products, ``h_{t-1} @ [U_z, U_r]`` and then
``(r_t * h_{t-1}) @ U_h``, which needs r_t; the backward two more. The
weight gradients after the loop: ``dkernel = x.T @ da``, ``dbias = sum da``
and the recurrent kernel's two column blocks from two left operands,
``[dU_z, dU_r] = h_{t-1}.T @ [daz, dar]`` and ``dU_h = q.T @ dah``.
"""
from __future__ import annotations

import functools

import numpy as np

from ..functional import gru as ref_gru
from ..functional import gru_reset_before as ref_rb
from ..functional._validate import recurrent_args
from ..functional.recurrence import recurrence_backward, recurrence_forward
from .gemm import matmul
from .gru import CALLS, dropout_inputs, in_caller_order, loop_order  # its calls count in the GRU's CALLS
from .parallel import run
from .recurrent import backward_upstream, c_loop, count_call, chunk_weight_grads, covered, ptr, sum_chunks
from .workspace import scratch


def covers(activation, recurrent_activation) -> bool:
    """True when the C loop can run this cell's sequences (for float32 and float64 inputs)."""
    return covered(activation, recurrent_activation, None, None, np.dtype(np.float64))


def gru_reset_before_forward(x, kernel, recurrent_kernel, bias=None, h0=None, *, activation="tanh",
                             recurrent_activation="sigmoid", mask=None, recurrent_mask=None, need_cache=True):
    """Run the GRU (``reset_after=False``) over a batch of sequences.

    Parameters
    ----------
    x : ndarray, (B, T, D)
    kernel : ndarray, (D, 3H)
    recurrent_kernel : ndarray, (H, 3H)
    bias : ndarray, (3H,), optional
    h0 : ndarray, (B, H), optional
    activation, recurrent_activation : str or Activation
    mask : ndarray of bool, (B, T), optional
        False marks padding steps, which carry the state through unchanged.
    recurrent_mask : ndarray, (B, H), optional
        Recurrent-dropout mask on h_{t-1} where it enters the recurrent kernel.
    need_cache : bool
        False (inference): no cache is returned and the per-step gates live in reused buffers.

    Returns
    -------
    hs : ndarray, (B, T, H)
    h_T : ndarray, (B, H)
    cache : dict or None
    """
    x, kernel, recurrent_kernel, bias, states, (B, T, D, H) = recurrent_args(
        x, kernel, recurrent_kernel, bias, {"h0": h0}, gates=3)
    if not covered(activation, recurrent_activation, mask, recurrent_mask, x.dtype, masks_in_c=True):
        step = functools.partial(ref_rb.gru_reset_before_step, kernel=kernel, recurrent_kernel=recurrent_kernel,
                                 bias=bias, activation=activation, recurrent_activation=recurrent_activation,
                                 recurrent_mask=recurrent_mask)
        hs, (h,), cache = recurrence_forward(step, x, (states["h0"],), mask=mask, need_cache=need_cache)
        return hs, h, dict(fast=None, reference=cache) if need_cache else None
    dtype = x.dtype
    x, h0c, rmask, valid, order = loop_order(x, states["h0"], recurrent_mask, mask, B, T, H)
    U = np.ascontiguousarray(recurrent_kernel)
    if need_cache:
        a = np.empty((B, T, 3 * H), dtype)  # (B, T, 3H) input projection, then the gates z, r, hh
        q = np.empty((B, T, H), dtype)  # (B, T, H) the reset state r_t * h_{t-1} of (3)
    else:
        a, q = scratch("gates", (B, T, 3 * H), dtype), scratch("q", (B, T, H), dtype)
    hs = np.empty((B, T, H), dtype)  # (B, T, H)
    hr, hr0 = dropout_inputs(hs, h0c, rmask, need_cache)
    u = np.empty((B, 3 * H), dtype)  # (B, 3H) per-step scratch, rows owned by their thread
    kern = c_loop("gru_rb_forward", dtype)

    def job(b0, b1):
        matmul(x[b0:b1].reshape(-1, D), kernel, out=a[b0:b1].reshape(-1, 3 * H))  # (b*T, 3H)
        if bias is not None:
            a[b0:b1] += bias
        kern(T, B, H, ptr(a), ptr(U), ptr(h0c), ptr(hs), ptr(q), ptr(u), b0, b1, ptr(valid), ptr(rmask), ptr(hr),
             ptr(hr0))

    run(job, B)
    count_call(CALLS, "reset_before_forward", valid, rmask)
    cache = dict(fast="gru_reset_before", x=x, gates=a, q=q, hs=hs, h0=h0c, kernel=kernel, recurrent_kernel=U,
                 has_bias=bias is not None, valid=valid, order=order, rmask=rmask, hr=hr,
                 hr0=hr0) if need_cache else None
    hs, h_T = in_caller_order(order, hs, hs[:, -1].copy())  # h_T (B, H): after each row's last valid step
    return hs, h_T, cache


def gru_reset_before_backward(dhs, dh_T, cache) -> ref_gru.GRUGrads:
    """Backpropagation through time for :func:`gru_reset_before_forward`; ``dbias`` is (3H,)."""
    if cache.get("fast") != "gru_reset_before":
        dx, (dh0,), grads = recurrence_backward(ref_rb.gru_reset_before_step_backward, dhs, (dh_T,),
                                                cache["reference"])
        return ref_gru.GRUGrads(dx, dh0, grads[0], grads[1], grads[2] if len(grads) > 2 else None)
    gates, hs, kernel, U = cache["gates"], cache["hs"], cache["kernel"], cache["recurrent_kernel"]
    valid, order, rmask, hr, hr0, q = (cache[k] for k in ("valid", "order", "rmask", "hr", "hr0", "q"))
    B, T, H = hs.shape
    dtype = hs.dtype
    dhs, (dh,) = backward_upstream(dhs, {"dh_T": dh_T}, hs, order)  # dh: in dh_T, out dh0
    da = scratch("da", gates.shape, dtype)  # (B, T, 3H) [daz, dar, dah]
    dq, rec = np.empty((B, H), dtype), np.empty((B, H), dtype)  # (B, H) each, rows owned by their thread
    dx = np.empty(cache["x"].shape, dtype)  # (B, T, D)
    kern = c_loop("gru_rb_backward", dtype)

    def job(b0, b1):
        kern(T, B, H, ptr(gates), ptr(hs), ptr(cache["h0"]), ptr(hr), ptr(hr0), ptr(U), ptr(dhs), ptr(dh),
             ptr(da), ptr(dq), ptr(rec), b0, b1, ptr(valid), ptr(rmask))
        rows = slice(b0, b1)
        # dx, dkernel, dbias from da; [dU_z, dU_r] from h_{t-1} * rmask and [daz, dar] (du: the first 2H columns)
        _, dkernel, dU_zr, dbias = chunk_weight_grads(cache["x"][rows], da[rows], da[rows, :, : 2 * H], hr0[rows],
                                                      hr[rows], kernel, cache["has_bias"], dx_out=dx[rows],
                                                      valid=None if valid is None else valid[rows])
        dU_h = matmul(q[rows].reshape(-1, H).T, da[rows].reshape(-1, 3 * H)[:, 2 * H:])  # (H, H) q.T @ dah
        return None, dkernel, np.concatenate([dU_zr, dU_h], axis=1), dbias  # drecurrent_kernel (H, 3H)

    dkernel, drecurrent_kernel, dbias = sum_chunks(run(job, B))
    count_call(CALLS, "reset_before_backward", valid, rmask)
    dx, dh = in_caller_order(order, dx, dh)
    return ref_gru.GRUGrads(dx, dh, dkernel, drecurrent_kernel, dbias)
