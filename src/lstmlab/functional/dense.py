"""A fully connected layer on the last axis: ``y = activation(x @ kernel + bias)``.

Works on any leading shape, so the same function serves ``(batch, features)``
and every time step of ``(batch, time, features)`` at once.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._validate import as_float_array, check_shape, common_dtype, upstream
from .activations import ActivationLike, get_activation


class DenseGrads(NamedTuple):
    dx: np.ndarray  # (..., D)
    dkernel: np.ndarray  # (D, U)
    dbias: np.ndarray | None  # (U,)


def _matmul_last_axis(x, kernel, matmul):
    """``x @ kernel`` for x of any leading shape, through a 2-D ``matmul(a, b)``."""
    return matmul(x.reshape(-1, x.shape[-1]), kernel).reshape(*x.shape[:-1], kernel.shape[1])


def dense_forward(x, kernel, bias=None, *, activation: ActivationLike = None, matmul=np.matmul):
    """``y = activation(x @ kernel + bias)``.

    Parameters
    ----------
    x : ndarray, (..., D)
    kernel : ndarray, (D, U)
    bias : ndarray, (U,), optional
    activation : str or Activation, optional
        ``None`` means linear.
    matmul : callable
        ``matmul(a, b)`` for 2-D operands (the fast path passes its multi-core float32 GEMM).

    Returns
    -------
    y : ndarray, (..., U)
    cache : dict
    """
    x = as_float_array("x", x)
    if x.ndim < 1:
        raise ValueError("x: expected an array of shape (..., features), got a scalar")
    kernel = as_float_array("kernel", kernel, 2, what="(input_dim, units)", finite=False)
    check_shape("kernel", kernel, (x.shape[-1], None), f"(input_dim={x.shape[-1]} from x's last axis, units)")
    if bias is not None:
        bias = as_float_array("bias", bias, finite=False)
        check_shape("bias", bias, (kernel.shape[1],), f"for units={kernel.shape[1]}")
    act = get_activation(activation)
    dtype = common_dtype(x, kernel, bias)
    x, kernel = x.astype(dtype, copy=False), kernel.astype(dtype, copy=False)
    z = _matmul_last_axis(x, kernel, matmul)  # (..., U)
    if bias is not None:
        z += bias.astype(dtype, copy=False)
    y = act(z)  # (..., U)
    return y, dict(x=x, kernel=kernel, y=y, act=act, has_bias=bias is not None)


def dense_backward(dy, cache, *, matmul=np.matmul) -> DenseGrads:
    """Gradients of :func:`dense_forward` given ``dy`` of the output's shape (``matmul`` as there)."""
    x, kernel, y = cache["x"], cache["kernel"], cache["y"]
    dy = upstream("dy", dy, y.shape, y.dtype)
    dz = cache["act"].backward(dy, y)  # (..., U)
    dz2 = dz.reshape(-1, dz.shape[-1])  # (N, U) all leading positions as rows
    dkernel = matmul(x.reshape(-1, x.shape[-1]).T, dz2)  # (D, U)
    dbias = dz2.sum(axis=0) if cache["has_bias"] else None  # (U,)
    return DenseGrads(_matmul_last_axis(dz, kernel.T, matmul), dkernel, dbias)
