"""Pooling over time, channels last: windowed max, and the global mean / max over all steps.

Max pooling with window ``P``, stride ``s``, windows at positions ``p(l, k) = l*s + k`` of the padded input
(the same gather as :mod:`lstmlab.functional.conv`):

    (1)  y[b, l, c] = max_k xp[b, p(l, k), c],   a[b, l, c] = argmax_k (the first one on ties)
         backward: dxp[b, p(l, a[b, l, c]), c] += dy[b, l, c]      only the winner gets the gradient

``same`` padding pads with -inf, so a padded position never wins (Keras's torch backend pads by repeating the
edge value, which is the same: a window that holds a padded position also holds the edge it repeats).

Global average over the unmasked steps (``m[b, t]`` = 1 for a valid step; no mask means all valid):

    (2)  y[b, c] = sum_t m[b, t] x[b, t, c] / n[b],   n[b] = sum_t m[b, t]
         backward: dx[b, t, c] = m[b, t] dy[b, c] / n[b]

Global max:

    (3)  y[b, c] = max_t x[b, t, c];   backward: the gradient goes to the first arg-max step
"""
from __future__ import annotations

import numpy as np

from ._validate import as_float_array, check_mask, upstream
from .conv import check_window_ints, conv_padding, window_positions


def max_pool1d_forward(x, pool_size: int = 2, strides: int | None = None, padding: str = "valid"):
    """Max over windows of ``pool_size`` steps, every ``strides`` steps (``None``: ``pool_size``).

    Parameters
    ----------
    x : ndarray, (B, L, C)
    pool_size, strides : int
    padding : {"valid", "same"}

    Returns
    -------
    y : ndarray, (B, L_out, C)
    cache : dict
    """
    x = as_float_array("x", x, 3, what="(batch, steps, channels)")
    strides = pool_size if strides is None else strides
    check_window_ints(pool_size=pool_size, strides=strides)
    if padding not in ("valid", "same"):
        raise ValueError(f"padding: expected 'valid' or 'same', got {padding!r}")
    B, L, C = x.shape
    out, left, right = conv_padding(L, pool_size, strides, padding)
    if out < 1:
        raise ValueError(f"x: pool_size={pool_size} with padding='valid' needs at least {pool_size} steps, "
                         f"got shape {x.shape}")
    xp = np.pad(x, ((0, 0), (left, right), (0, 0)), constant_values=-np.inf) if left or right else x  # (B, Lp, C)
    pos = window_positions(out, pool_size, strides)  # (L_out, P)
    windows = xp[:, pos, :]  # (B, L_out, P, C)
    arg = np.argmax(windows, axis=2)  # (B, L_out, C)   equation (1)
    y = np.take_along_axis(windows, arg[:, :, None, :], axis=2)[:, :, 0, :]  # (B, L_out, C)
    return y, dict(src=pos[np.arange(out)[None, :, None], arg] - left, x_shape=x.shape, y=y)


def max_pool1d_backward(dy, cache) -> np.ndarray:
    """``dx`` of :func:`max_pool1d_forward`: each output's gradient to the input step that won its window."""
    y, src = cache["y"], cache["src"]
    dy = upstream("dy", dy, y.shape, y.dtype)
    B, L, C = cache["x_shape"]
    dx = np.zeros((B, L, C), dy.dtype)  # (B, L, C)
    # Overlapping windows (strides < pool_size) can pick the same step: add.at sums them. src never points into
    # the padding (-inf never wins), so it indexes x directly.
    b = np.arange(B)[:, None, None]  # (B, 1, 1)
    c = np.arange(C)[None, None, :]  # (1, 1, C)
    np.add.at(dx, (b, src, c), dy)
    return dx


def _valid_steps(mask, x: np.ndarray) -> np.ndarray:
    """``m`` of equation (2) as x's dtype, ``(B, T, 1)``."""
    if mask is None:
        return np.ones((x.shape[0], x.shape[1], 1), x.dtype)
    return check_mask(mask, x.shape[0], x.shape[1]).astype(x.dtype)[:, :, None]  # (B, T, 1)


def global_average_pool1d_forward(x, mask=None, keepdims: bool = False):
    """Mean over the valid steps of each sequence (equation 2).

    A sequence with no valid step gets 0 (Keras divides 0 by 0 and gives NaN there).

    Parameters
    ----------
    x : ndarray, (B, T, C)
    mask : bool ndarray, (B, T), optional
    keepdims : bool
        Output ``(B, 1, C)`` instead of ``(B, C)``.

    Returns
    -------
    y : ndarray, (B, C) or (B, 1, C)
    cache : dict
    """
    x = as_float_array("x", x, 3, what="(batch, steps, channels)")
    m = _valid_steps(mask, x)  # (B, T, 1)
    n = np.maximum(m.sum(axis=1, keepdims=True), 1.0)  # (B, 1, 1)   no valid step: 0 / 1, not 0 / 0
    y = (x * m).sum(axis=1, keepdims=True) / n  # (B, 1, C)   equation (2)
    y = y if keepdims else y[:, 0, :]  # (B, C) unless keepdims
    return y, dict(weight=m / n, keepdims=keepdims, y_shape=y.shape)


def global_average_pool1d_backward(dy, cache) -> np.ndarray:
    """``dx = m dy / n`` (equation 2), ``(B, T, C)``."""
    weight = cache["weight"]  # (B, T, 1)
    dy = upstream("dy", dy, cache["y_shape"], weight.dtype)
    dy = dy if cache["keepdims"] else dy[:, None, :]  # (B, 1, C)
    return weight * dy  # (B, T, C)


def global_max_pool1d_forward(x, keepdims: bool = False):
    """Max over all steps (equation 3); ``(B, C)``, or ``(B, 1, C)`` with ``keepdims``."""
    x = as_float_array("x", x, 3, what="(batch, steps, channels)")
    if x.shape[1] == 0:
        raise ValueError(f"x: expected at least one step to take the maximum of, got shape {x.shape}")
    arg = np.argmax(x, axis=1)[:, None, :]  # (B, 1, C)
    y = np.take_along_axis(x, arg, axis=1)  # (B, 1, C)
    y = y if keepdims else y[:, 0, :]
    return y, dict(arg=arg, x_shape=x.shape, y_shape=y.shape, dtype=x.dtype, keepdims=keepdims)


def global_max_pool1d_backward(dy, cache) -> np.ndarray:
    """The gradient of each channel to its arg-max step; zero elsewhere, ``(B, T, C)``."""
    dy = upstream("dy", dy, cache["y_shape"], cache["dtype"])
    dy = dy if cache["keepdims"] else dy[:, None, :]  # (B, 1, C)
    dx = np.zeros(cache["x_shape"], dy.dtype)  # (B, T, C)
    np.put_along_axis(dx, cache["arg"], dy, axis=1)
    return dx
