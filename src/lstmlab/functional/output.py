"""The output layer of a language model, fused with its loss: projection, softmax and cross-entropy.

A character model's last steps are a dense layer to V logits, a softmax and
the cross-entropy of the next character. With a large vocabulary (a Chinese
text has thousands of characters) these cost more than the LSTM layers, and
done one after the other they keep several arrays of size N x V (logits,
log-probabilities, probabilities, their gradient). Fused, the same quantities
are computed a block of rows at a time, so only one block of logits exists,
and it becomes its own gradient in place.

Equations, for each row n (a position of the batch) with input x_n, target
class y_n and weight w_n (1, or 0 for a masked position)::

    (O1)  z_n    = x_n W + b                                   logits, (V,)
    (O2)  l_n    = log sum_v exp(z_nv) - z_n[y_n]               cross-entropy of softmax(z_n)
    (O3)  loss   = sum_n w_n l_n / sum_n w_n                    mean over the weighted rows

Backward (the same numbers, in reverse)::

    (O3') a_n    = w_n / sum_n w_n                              each row's share of the mean
    (O2') dz_n   = a_n (softmax(z_n) - onehot(y_n))
    (O1') dW     = sum_n x_n^T dz_n,   db = sum_n dz_n,   dx_n = dz_n W^T

This module is the reference (any float dtype, one block at a time, no
threads). ``lstmlab._fast.dense.dense_softmax_xent`` computes the same in
float32 on all cores with lstmlab's own GEMM; tests hold the two equal.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._validate import as_float_array, check_shape, common_dtype

BLOCK_BYTES = 4 << 20  # one block of logits: large enough for efficient GEMMs, small enough to stay near the cache


class OutputGrads(NamedTuple):
    loss: float
    dx: np.ndarray | None  # (N, D)
    dkernel: np.ndarray | None  # (D, V)
    dbias: np.ndarray | None  # (V,)


def check_output_args(x, kernel, bias, targets, weights):
    """Validate and convert the arguments of :func:`dense_softmax_xent`; returns them as 2-D/1-D arrays."""
    x = as_float_array("x", x, 2, what="(rows, features)")
    kernel = as_float_array("kernel", kernel, 2, what="(features, classes)", finite=False)
    check_shape("kernel", kernel, (x.shape[1], None), f"(features={x.shape[1]} from x, classes)")
    V = kernel.shape[1]
    if bias is not None:
        bias = as_float_array("bias", bias, finite=False)
        check_shape("bias", bias, (V,), f"for {V} classes")
    targets = np.asarray(targets)
    if not np.issubdtype(targets.dtype, np.integer):
        raise ValueError(f"targets: expected integer class ids, got dtype {targets.dtype}")
    check_shape("targets", targets, (x.shape[0],), "(one class id per row of x)")
    if targets.size and (targets.min() < 0 or targets.max() >= V):
        bad = targets[(targets < 0) | (targets >= V)][0]
        raise ValueError(f"targets: expected class ids in [0, {V}), got {int(bad)}")
    if weights is not None:
        weights = np.asarray(weights)
        weights = as_float_array("weights", weights.astype(np.float64) if weights.dtype == bool else weights)
        check_shape("weights", weights, (x.shape[0],), "(one weight per row of x)")
        if (weights < 0).any():
            raise ValueError("weights: expected non-negative row weights")
    dtype = common_dtype(x, kernel, bias)
    x, kernel = x.astype(dtype, copy=False), kernel.astype(dtype, copy=False)
    bias = None if bias is None else bias.astype(dtype, copy=False)
    return x, kernel, bias, targets.astype(np.intp, copy=False), weights


def row_shares(n: int, weights, dtype) -> np.ndarray:
    """(O3') each row's share a_n of the mean: 1/N, or w_n / sum w (all zero when every weight is 0)."""
    if weights is None:
        return np.full(n, 1.0 / max(n, 1), dtype)
    total = float(np.sum(weights, dtype=np.float64))
    return (np.asarray(weights, np.float64) / total if total > 0 else np.zeros(n)).astype(dtype)


def block_rows(V: int, itemsize: int) -> int:
    return max(16, BLOCK_BYTES // max(1, V * itemsize))


def softmax_xent_block(z, y, share, need_grads: bool) -> float:
    """(O2)/(O2') on one block of logits, in place: ``z`` (R, V) becomes dz when ``need_grads``.

    Returns the block's contribution ``sum_n a_n l_n`` to the loss (O3).
    """
    rows = np.arange(len(z))
    z -= z.max(axis=1, keepdims=True)  # shift by the row max: exp cannot overflow, the sum is >= 1
    picked = z[rows, y]  # (R,) z_n[y_n] - max_n
    np.exp(z, out=z)  # (R, V)
    s = z.sum(axis=1)  # (R,)
    l = np.log(s) - picked  # (O2) (R,)
    if need_grads:
        z *= (share / s)[:, None]  # a_n softmax(z_n)
        z[rows, y] -= share  # (O2') minus a_n onehot(y_n)
    return float(np.dot(share.astype(np.float64), l.astype(np.float64)))


def dense_softmax_xent(x, kernel, bias, targets, weights=None, *, need_grads: bool = True) -> OutputGrads:
    """Loss and gradients of ``softmax(x @ kernel + bias)`` against integer ``targets``, fused.

    Parameters
    ----------
    x : ndarray, (N, D)
        The output layer's inputs, one row per predicted position.
    kernel : ndarray, (D, V)
    bias : ndarray, (V,), optional
    targets : int ndarray, (N,)
        Class ids in ``[0, V)``.
    weights : ndarray, (N,), optional
        Row weights (a time mask); the loss is the weighted mean (O3).
    need_grads : bool
        False for evaluation: only the loss.

    Returns
    -------
    OutputGrads
        ``loss`` (a float, nats) and, with ``need_grads``, ``dx (N, D)``,
        ``dkernel (D, V)``, ``dbias (V,)`` (None without a bias).
    """
    x, kernel, bias, y, weights = check_output_args(x, kernel, bias, targets, weights)
    N, V = x.shape[0], kernel.shape[1]
    share = row_shares(N, weights, x.dtype)
    loss = 0.0
    dx = np.empty_like(x) if need_grads else None  # (N, D)
    dkernel = np.zeros_like(kernel) if need_grads else None  # (D, V)
    dbias = np.zeros(V, x.dtype) if need_grads and bias is not None else None  # (V,)
    R = block_rows(V, x.itemsize)
    for lo in range(0, N, R):
        xb = x[lo:lo + R]  # (R, D)
        z = xb @ kernel  # (O1) (R, V)
        if bias is not None:
            z += bias
        loss += softmax_xent_block(z, y[lo:lo + R], share[lo:lo + R], need_grads)
        if need_grads:  # z now holds dz
            dkernel += xb.T @ z  # (O1') (D, V)
            if dbias is not None:
                dbias += z.sum(axis=0)
            dx[lo:lo + R] = z @ kernel.T  # (R, D)
    return OutputGrads(loss, dx, dkernel, dbias)
