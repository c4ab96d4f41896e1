"""Layer normalization and batch normalization, forward and backward.

Both are Keras 3's formulas (``keras/src/ops/nn.py`` ``_layer_normalization`` and
``keras/src/layers/normalization/batch_normalization.py``): biased variance, epsilon
inside the square root.

Equations
---------
Layer normalization (Ba et al. 2016), statistics of each example over the axes ``A``::

    (1) mean  mu   = mean_A(x)
    (2) var   s2   = mean_A((x - mu)^2)                       biased, as Keras
    (3) inv        = 1 / sqrt(s2 + eps)
    (4) xhat       = (x - mu) * inv
    (5) y          = xhat * gamma + beta                      gamma, beta shaped like the axes A

Batch normalization (Ioffe & Szegedy 2015), statistics of each feature over every axis
but the feature axis ``c`` (batch and time for ``(batch, time, features)``), over the
valid positions ``m`` only when a mask is given::

    (6) N          = sum_R(m)            (+ 1e-7 with a mask: Keras's backend.epsilon())
    (7) mu         = sum_R(m * x) / N
    (8) s2         = sum_R(m * (x - mu)^2) / N               biased, as Keras
    (9) y          = (x - mu) / sqrt(s2 + eps) * gamma + beta   every position, masked ones too
    (10) moving    = moving * momentum + batch * (1 - momentum)  (mu and s2, after the step)

At inference (and when the layer is frozen) (9) uses the moving mean and variance.

Backward, with ``dxhat = dy * gamma``: layer norm's statistics are over ``A`` with equal
weights, so (1)-(4) collapse to the usual
``dx = inv * (dxhat - mean_A(dxhat) - xhat * mean_A(dxhat * xhat))``. Batch norm's
weighted statistics go back step by step through (8) and (7) (see the code).
"""
from __future__ import annotations

import numpy as np

MASK_EPSILON = 1e-7  # keras.backend.epsilon(): added to the count of valid positions in masked moments


def normalized_axes(axis, ndim: int, *, argument: str = "axis") -> tuple:
    """``axis`` (an int or a list of ints, negative allowed) as sorted non-negative axes of an ``ndim``-D input."""
    axes = [axis] if isinstance(axis, (int, np.integer)) else list(axis)
    out = []
    for a in axes:
        if isinstance(a, bool) or not isinstance(a, (int, np.integer)) or not -ndim <= a < ndim:
            raise ValueError(f"{argument}: expected axes in [-{ndim}, {ndim}) for a {ndim}-D input, got {axis!r}")
        out.append(int(a) % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"{argument}: expected distinct axes, got {axis!r}")
    return tuple(sorted(out))


def _param_shape(ndim: int, shape: tuple, axes: tuple) -> tuple:
    """Shape that lets a weight over ``axes`` broadcast against the input: ``(1, .., C, .., 1)``."""
    return tuple(shape[d] if d in axes else 1 for d in range(ndim))


# -- layer normalization ---------------------------------------------------------------------------
def layer_norm_forward(x, gamma, beta, axes: tuple, epsilon: float):
    """Equations (1)-(5).

    Parameters
    ----------
    x : ndarray, any shape
    gamma, beta : ndarray shaped ``tuple(x.shape[a] for a in axes)``, or None (no scale / no centre)
    axes : tuple of int
        Non-negative, sorted (see :func:`normalized_axes`).

    Returns
    -------
    y : ndarray, x.shape
    cache
    """
    bshape = _param_shape(x.ndim, x.shape, axes)
    mu = x.mean(axis=axes, keepdims=True)  # (1): keeps x's rank, size 1 on the axes A
    xc = x - mu
    inv = 1.0 / np.sqrt((xc * xc).mean(axis=axes, keepdims=True) + epsilon)  # (2), (3)
    xhat = xc * inv  # (4)
    y = xhat if gamma is None else xhat * gamma.reshape(bshape)  # (5)
    if beta is not None:
        y = y + beta.reshape(bshape)
    return y, (xhat, inv, gamma, beta is not None, axes, bshape)


def layer_norm_backward(dy, cache):
    """Gradients of :func:`layer_norm_forward`: ``(dx, dgamma, dbeta)`` (None for an absent weight)."""
    xhat, inv, gamma, has_beta, axes, bshape = cache
    rest = tuple(d for d in range(xhat.ndim) if d not in axes)  # the axes gamma and beta are shared over
    pshape = tuple(s for s, d in zip(xhat.shape, range(xhat.ndim)) if d in axes)
    dgamma = None if gamma is None else (dy * xhat).sum(axis=rest).reshape(pshape)  # (5)
    dbeta = dy.sum(axis=rest).reshape(pshape) if has_beta else None  # (5)
    dxhat = dy if gamma is None else dy * gamma.reshape(bshape)
    # (4)-(1): the centred, equally weighted statistics leave two projections to remove
    dx = inv * (dxhat - dxhat.mean(axis=axes, keepdims=True) - xhat * (dxhat * xhat).mean(axis=axes, keepdims=True))
    return dx, dgamma, dbeta


# -- batch normalization ---------------------------------------------------------------------------
def _feature_view(a, ndim: int, axis: int):
    """A per-feature vector ``(C,)`` shaped to broadcast along ``axis`` of an ``ndim``-D input."""
    shape = [1] * ndim
    shape[axis] = a.shape[0]
    return a.reshape(shape)


def batch_norm_train_forward(x, gamma, beta, axis: int, epsilon: float, mask=None):
    """Equations (6)-(9) with the batch's own statistics.

    Parameters
    ----------
    x : ndarray, (..., C, ...) with the features on ``axis`` (non-negative)
    gamma, beta : ndarray (C,), or None
    mask : bool ndarray, x.shape[:-1], optional
        Valid positions (Keras broadcasts it along the last axis of x).

    Returns
    -------
    y : ndarray, x.shape
    mean, variance : ndarray (C,)
        The batch statistics (7), (8), for the moving averages (10).
    cache
    """
    reduce = tuple(d for d in range(x.ndim) if d != axis)  # every axis but the features
    m = np.ones_like(x) if mask is None else np.broadcast_to(mask[..., None], x.shape).astype(x.dtype)
    n = m.sum(axis=reduce, keepdims=True) + (0.0 if mask is None else MASK_EPSILON)  # (6): (1, .., C, .., 1)
    mu = (m * x).sum(axis=reduce, keepdims=True) / n  # (7)
    xc = x - mu
    var = (m * xc * xc).sum(axis=reduce, keepdims=True) / n  # (8)
    inv = 1.0 / np.sqrt(var + epsilon)
    g = 1.0 if gamma is None else _feature_view(gamma, x.ndim, axis)
    y = xc * inv * g + (0.0 if beta is None else _feature_view(beta, x.ndim, axis))  # (9)
    cache = (xc, inv, m, n, gamma, beta is not None, reduce)
    return y, mu.reshape(-1), var.reshape(-1), cache  # statistics (C,)


def batch_norm_train_backward(dy, cache):
    """Gradients of :func:`batch_norm_train_forward`: ``(dx, dgamma, dbeta)``."""
    xc, inv, m, n, gamma, has_beta, reduce = cache
    axis = next(d for d in range(xc.ndim) if d not in reduce)
    dgamma = None if gamma is None else (dy * xc * inv).sum(axis=reduce)  # (9): (C,)
    dbeta = dy.sum(axis=reduce) if has_beta else None
    g = 1.0 if gamma is None else _feature_view(gamma, xc.ndim, axis)
    dinv = (dy * g * xc).sum(axis=reduce, keepdims=True)  # (9), through inv = (s2 + eps)^-1/2
    dvar = -0.5 * dinv * inv ** 3
    dxc = dy * g * inv + dvar * 2.0 * m * xc / n  # (9) directly, and (8)
    dmu = -dxc.sum(axis=reduce, keepdims=True)  # xc = x - mu
    dx = dxc + dmu * m / n  # (7)
    return dx, dgamma, dbeta


def batch_norm_inference_forward(x, mean, variance, gamma, beta, axis: int, epsilon: float):
    """Equation (9) with given statistics (the moving ones): an affine map per feature.

    Returns
    -------
    y : ndarray, x.shape
    cache
    """
    inv = 1.0 / np.sqrt(_feature_view(variance, x.ndim, axis) + epsilon)  # (1, .., C, .., 1)
    xc = x - _feature_view(mean, x.ndim, axis)
    g = 1.0 if gamma is None else _feature_view(gamma, x.ndim, axis)
    y = xc * inv * g + (0.0 if beta is None else _feature_view(beta, x.ndim, axis))
    return y, (xc, inv, gamma, beta is not None, axis)


def batch_norm_inference_backward(dy, cache):
    """Gradients of :func:`batch_norm_inference_forward`: ``(dx, dgamma, dbeta, dmean, dvariance)``."""
    xc, inv, gamma, has_beta, axis = cache
    reduce = tuple(d for d in range(xc.ndim) if d != axis)
    g = 1.0 if gamma is None else _feature_view(gamma, xc.ndim, axis)
    dx = dy * g * inv
    dgamma = None if gamma is None else (dy * xc * inv).sum(axis=reduce)  # (C,)
    dbeta = dy.sum(axis=reduce) if has_beta else None
    dmean = -dx.sum(axis=reduce)
    dvariance = (-0.5 * dy * g * xc * inv ** 3).sum(axis=reduce)
    return dx, dgamma, dbeta, dmean, dvariance
