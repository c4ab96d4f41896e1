"""One-dimensional convolution over time, as a gather (im2col) and one matrix product.

Keras's ``Conv1D`` cross-correlates (it does not flip the kernel). With the input padded to ``xp`` and
output step ``l`` reading the window of taps ``k = 0..K-1`` at positions ``p(l, k) = l*s + k*d``
(stride ``s``, dilation ``d``):

    (1)  cols[b, l, k, c] = xp[b, p(l, k), c]                       gather: the windows side by side
    (2)  z[b, l, f]       = sum_{k, c} cols[b, l, k, c] W[k, c, f] + bias[f]     one matmul
    (3)  y                = activation(z)

Backward, the same numbers read the other way:

    (3)  dz = activation'(dy, y)
    (2)  dW[k, c, f] = sum_{b, l} cols[b, l, k, c] dz[b, l, f];   dbias[f] = sum_{b, l} dz[b, l, f]
         dcols[b, l, k, c] = sum_f dz[b, l, f] W[k, c, f]
    (1)  dxp[b, p(l, k), c] += dcols[b, l, k, c]     scatter: windows that overlap add up

With ``groups = G`` the channels split into G blocks; block ``g`` of the output sees only block ``g``
of the input, so (2) becomes a batched product over the group axis.

Padding (Keras's rules, the torch backend's split of an odd total):

* ``valid``  no padding; ``L_out = floor((L - d(K-1) - 1) / s) + 1``
* ``same``   ``L_out = ceil(L / s)``; ``total = max((L_out-1)s + d(K-1) + 1 - L, 0)`` zeros, ``total // 2`` on
  the left and the rest on the right
* ``causal`` ``d(K-1)`` zeros on the left only, then ``valid``: output ``l`` sees no input after ``l``
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._validate import as_float_array, check_shape, common_dtype, upstream
from .activations import ActivationLike, get_activation

PADDINGS = ("valid", "same", "causal")


class Conv1DGrads(NamedTuple):
    dx: np.ndarray  # (B, L, C)
    dkernel: np.ndarray  # (K, C/G, F)
    dbias: np.ndarray | None  # (F,)


def conv_padding(steps: int, size: int, strides: int, padding: str, dilation_rate: int = 1) -> tuple[int, int, int]:
    """``(L_out, left, right)`` for a window of ``size`` taps over ``steps`` positions (module docstring).

    Shared by the pooling windows (``dilation_rate=1``). ``L_out`` may come out below 1 for ``valid``;
    the caller turns that into an error naming its layer.
    """
    span = dilation_rate * (size - 1) + 1  # positions one window covers
    if padding == "valid":
        return (steps - span) // strides + 1, 0, 0
    if padding == "causal":
        return (steps - 1) // strides + 1, span - 1, 0
    if padding == "same":
        out = -(-steps // strides)  # ceil(L / s)
        total = max((out - 1) * strides + span - steps, 0)
        return out, total // 2, total - total // 2
    raise ValueError(f"padding: expected one of {', '.join(PADDINGS)}, got {padding!r}")


def check_window_ints(**values: int) -> None:
    """Window sizes, strides and dilations are positive ints (a 0 stride would divide by zero below)."""
    for name, v in values.items():
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name}: expected a positive integer, got {v!r}")


def window_positions(out_steps: int, size: int, strides: int, dilation_rate: int = 1) -> np.ndarray:
    """``p[l, k] = l*s + k*d``: the padded-input position tap ``k`` of output step ``l`` reads (equation 1)."""
    return np.arange(out_steps)[:, None] * strides + np.arange(size)[None, :] * dilation_rate  # (L_out, K)


def conv1d_forward(x, kernel, bias=None, *, strides: int = 1, padding: str = "valid", dilation_rate: int = 1,
                   groups: int = 1, activation: ActivationLike = None):
    """``y = activation(conv1d(x, kernel) + bias)``, channels last.

    Parameters
    ----------
    x : ndarray, (B, L, C)
    kernel : ndarray, (K, C/groups, F)
        Keras's layout: taps, input channels of one group, filters.
    bias : ndarray, (F,), optional
    strides, dilation_rate, groups : int
    padding : {"valid", "same", "causal"}
    activation : str or Activation, optional

    Returns
    -------
    y : ndarray, (B, L_out, F)
    cache : dict
    """
    x = as_float_array("x", x, 3, what="(batch, steps, channels)")
    kernel = as_float_array("kernel", kernel, 3, what="(kernel_size, in_channels / groups, filters)", finite=False)
    B, L, C = x.shape
    K, Cg, F = kernel.shape
    check_window_ints(strides=strides, dilation_rate=dilation_rate, kernel_size=K)
    if groups < 1 or C % groups or F % groups:
        raise ValueError(f"groups: expected a positive divisor of the input channels ({C}) and of the filters "
                         f"({F}), got {groups!r}")
    check_shape("kernel", kernel, (None, C // groups, F), f"(kernel_size, in_channels={C} / groups={groups}, filters)")
    if bias is not None:
        bias = as_float_array("bias", bias, finite=False)
        check_shape("bias", bias, (F,), f"for filters={F}")
    out, left, right = conv_padding(L, K, strides, padding, dilation_rate)
    if out < 1:
        raise ValueError(f"x: a kernel of {K} taps (dilation_rate={dilation_rate}) with padding='valid' needs at "
                         f"least {dilation_rate * (K - 1) + 1} steps, got shape {x.shape}")
    act = get_activation(activation)
    dtype = common_dtype(x, kernel, bias)
    x, kernel = x.astype(dtype, copy=False), kernel.astype(dtype, copy=False)
    xp = np.pad(x, ((0, 0), (left, right), (0, 0))) if left or right else x  # (B, L + left + right, C)
    pos = window_positions(out, K, strides, dilation_rate)  # (L_out, K)
    cols = xp[:, pos, :]  # (B, L_out, K, C)   equation (1)
    if groups == 1:
        z = cols.reshape(B * out, K * C) @ kernel.reshape(K * C, F)  # (B*L_out, F)   equation (2)
    else:
        G = groups
        cols_g = cols.reshape(B * out, K, G, Cg).transpose(2, 0, 1, 3).reshape(G, B * out, K * Cg)  # (G, N, K*Cg)
        w_g = kernel.reshape(K, Cg, G, F // G).transpose(2, 0, 1, 3).reshape(G, K * Cg, F // G)  # (G, K*Cg, F/G)
        z = np.matmul(cols_g, w_g).transpose(1, 0, 2).reshape(B * out, F)  # (B*L_out, F), group-major filters
    z = z.reshape(B, out, F)  # (B, L_out, F)
    if bias is not None:
        z += bias.astype(dtype, copy=False)
    y = act(z)  # (B, L_out, F)   equation (3)
    cache = dict(cols=cols, kernel=kernel, y=y, act=act, has_bias=bias is not None, pos=pos, groups=groups,
                 x_shape=x.shape, pad=(left, right))
    return y, cache


def conv1d_backward(dy, cache) -> Conv1DGrads:
    """Gradients of :func:`conv1d_forward` given ``dy`` of the output's shape ``(B, L_out, F)``."""
    cols, kernel, y, pos, G = cache["cols"], cache["kernel"], cache["y"], cache["pos"], cache["groups"]
    dy = upstream("dy", dy, y.shape, y.dtype)
    B, out, K, C = cols.shape
    F = kernel.shape[2]
    dz = cache["act"].backward(dy, y).reshape(B * out, F)  # (B*L_out, F)   equation (3)
    dbias = dz.sum(axis=0) if cache["has_bias"] else None  # (F,)
    if G == 1:
        flat = cols.reshape(B * out, K * C)  # (N, K*C)
        dkernel = (flat.T @ dz).reshape(K, C, F)  # (K, C, F)   equation (2)
        dcols = (dz @ kernel.reshape(K * C, F).T).reshape(B, out, K, C)  # (B, L_out, K, C)
    else:
        Cg = C // G
        cols_g = cols.reshape(B * out, K, G, Cg).transpose(2, 0, 1, 3).reshape(G, B * out, K * Cg)  # (G, N, K*Cg)
        w_g = kernel.reshape(K, Cg, G, F // G).transpose(2, 0, 1, 3).reshape(G, K * Cg, F // G)  # (G, K*Cg, F/G)
        dz_g = dz.reshape(B * out, G, F // G).transpose(1, 0, 2)  # (G, N, F/G)
        dw_g = np.matmul(cols_g.transpose(0, 2, 1), dz_g)  # (G, K*Cg, F/G)
        dkernel = dw_g.reshape(G, K, Cg, F // G).transpose(1, 2, 0, 3).reshape(K, Cg, F)  # (K, Cg, F)
        dcols_g = np.matmul(dz_g, w_g.transpose(0, 2, 1))  # (G, N, K*Cg)
        dcols = dcols_g.reshape(G, B, out, K, Cg).transpose(1, 2, 3, 0, 4).reshape(B, out, K, C)  # (B, L_out, K, C)
    left, right = cache["pad"]
    L = cache["x_shape"][1]
    dxp = np.zeros((B, L + left + right, C), dcols.dtype)  # (B, L_padded, C)
    # Equation (1) backwards: every (l, k) read xp at pos[l, k]; positions read by several windows add up.
    np.add.at(dxp, (slice(None), pos), dcols)
    return Conv1DGrads(dxp[:, left:left + L], dkernel, dbias)
