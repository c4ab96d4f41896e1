"""The simple RNN's fast path: :func:`rnn_forward` and :func:`rnn_backward`, the reference's contract with
the time loop in C.

Same arguments and results as :mod:`lstmlab.functional.rnn`. Covered calls
(kernels built, float32 or float64, ``tanh`` or ``relu``) run
``rnn_forward_*`` / ``rnn_backward_*`` of ``rnn_loop.c``, masks and
recurrent dropout included; anything else runs the reference. Organized as
the GRU's path (:mod:`.gru`): the input projection of all steps is one GEMM
per batch chunk before the loop, each step one recurrent GEMM (the kernel
packed once per call on the own GEMM) and one pass over the units, the batch
split across the cores, rows sorted by length so padding is skipped, and the
weight gradients GEMMs over the valid rows after the loop.
"""
from __future__ import annotations

import collections

import numpy as np

from .. import _fast
from ..functional import rnn as ref_rnn
from ..functional._validate import recurrent_args
from ..functional.activations import get_activation
from .gemm import matmul, packed_for_steps
from .gru import dropout_inputs, in_caller_order, loop_order
from .parallel import run
from .recurrent import backward_upstream, count_call, c_loop, chunk_weight_grads, ptr, sum_chunks
from .workspace import scratch

ACTIVATIONS = {"tanh": 0, "relu": 1}  # the activations rnn_loop.c runs: RNN_TANH, RNN_RELU
# Calls that ran in C, by kind ("forward", "forward_mask", "forward_dropout", "backward", ...).
CALLS: collections.Counter = collections.Counter()



def rnn_forward(x, kernel, recurrent_kernel, bias=None, h0=None, *, activation="tanh", mask=None,
                recurrent_mask=None, need_cache=True):
    """Same contract as :func:`lstmlab.functional.rnn.rnn_forward`; ``need_cache=False`` (inference) returns
    None for the cache."""
    x, kernel, recurrent_kernel, bias, states, (B, T, D, H) = recurrent_args(
        x, kernel, recurrent_kernel, bias, {"h0": h0}, gates=1)
    act = ACTIVATIONS.get(get_activation(activation, argument="activation").name)
    if not _fast.available() or act is None or x.dtype not in _fast.DTYPES:
        hs, h, cache = ref_rnn.rnn_forward(x, kernel, recurrent_kernel, bias, states["h0"], activation=activation,
                                           mask=mask, recurrent_mask=recurrent_mask)
        return hs, h, cache if need_cache else None
    dtype = x.dtype
    x, h0c, rmask, valid, order = loop_order(x, states["h0"], recurrent_mask, mask, B, T, H)
    U = np.ascontiguousarray(recurrent_kernel)
    a = scratch("rnn_a", (B, T, H), dtype)  # (B, T, H) x @ kernel + bias, then the recurrent term added
    hs = np.empty((B, T, H), dtype)  # (B, T, H)
    hr, hr0 = dropout_inputs(hs, h0c, rmask, need_cache)
    kern = c_loop("rnn_forward", dtype)
    packed = packed_for_steps(U, False, T)

    def job(b0, b1):
        matmul(x[b0:b1].reshape(-1, D), kernel, out=a[b0:b1].reshape(-1, H))  # (b*T, H)
        if bias is not None:
            a[b0:b1] += bias
        kern(T, B, H, act, ptr(a), ptr(U), ptr(packed), ptr(h0c), ptr(hs), b0, b1, ptr(valid), ptr(rmask),
             ptr(hr), ptr(hr0))

    run(job, B)
    count_call(CALLS, "forward", valid, rmask)
    cache = dict(fast="rnn", act=act, x=x, hs=hs, h0=h0c, kernel=kernel, recurrent_kernel=U,
                 has_bias=bias is not None, valid=valid, order=order, rmask=rmask, hr=hr,
                 hr0=hr0) if need_cache else None
    hs, h_T = in_caller_order(order, hs, hs[:, -1].copy())  # h_T (B, H): after each row's last valid step
    return hs, h_T, cache


def rnn_backward(dhs, dh_T, cache):
    """Same contract as :func:`lstmlab.functional.rnn.rnn_backward`; accepts either path's cache."""
    if cache.get("fast") != "rnn":
        return ref_rnn.rnn_backward(dhs, dh_T, cache)
    hs, kernel, U = cache["hs"], cache["kernel"], cache["recurrent_kernel"]
    valid, order, rmask, hr, hr0 = (cache[k] for k in ("valid", "order", "rmask", "hr", "hr0"))
    B, T, H = hs.shape
    dtype = hs.dtype
    dhs, (dh,) = backward_upstream(dhs, {"dh_T": dh_T}, hs, order)  # dh: in dh_T, out dh0
    da = scratch("da", hs.shape, dtype)  # (B, T, H) the gradient of the pre-activations
    rec = np.empty((B, H), dtype) if valid is not None or rmask is not None else None  # (B, H)
    dx = np.empty(cache["x"].shape, dtype)  # (B, T, D)
    kern = c_loop("rnn_backward", dtype)
    packed = packed_for_steps(U, True, T)

    def job(b0, b1):
        kern(T, B, H, cache["act"], ptr(hs), ptr(U), ptr(packed), ptr(dhs), ptr(dh), ptr(da), b0, b1, ptr(valid),
             ptr(rmask), ptr(rec))
        return chunk_weight_grads(cache["x"][b0:b1], da[b0:b1], da[b0:b1], hr0[b0:b1], hr[b0:b1], kernel,
                                  cache["has_bias"], dx_out=dx[b0:b1],
                                  valid=None if valid is None else valid[b0:b1])

    dkernel, drecurrent_kernel, dbias = sum_chunks(run(job, B))
    count_call(CALLS, "backward", valid, rmask)
    dx, dh = in_caller_order(order, dx, dh)
    return ref_rnn.RNNGrads(dx, dh, dkernel, drecurrent_kernel, dbias)
