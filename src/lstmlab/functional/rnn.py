"""The simple (Elman) RNN over a whole sequence: the baseline the LSTM improves on.

Weight layout (Keras ``SimpleRNN``)::

    kernel            (input_dim, units)
    recurrent_kernel  (units, units)
    bias              (units,)

Equation
--------
::

    (1) h_t = tanh(x_t @ kernel + h_{t-1} @ recurrent_kernel + bias)

Backward: ``da_t = tanh'(.) * dh_t`` and ``dh_{t-1} = da_t @ recurrent_kernel.T``.
The gradient reaching h_{t-k} is multiplied k times by the recurrent Jacobian,
so it vanishes (or explodes) geometrically with the gap k; there is no
additive cell-state path to carry it, which is why the LSTM exists.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._bptt import weight_grads
from ._validate import check_mask, check_recurrent_mask, recurrent_args, upstream
from .activations import ActivationLike, get_activation


class RNNGrads(NamedTuple):
    """Gradients returned by :func:`rnn_backward`."""

    dx: np.ndarray  # (B, T, D)
    dh0: np.ndarray  # (B, H)
    dkernel: np.ndarray  # (D, H)
    drecurrent_kernel: np.ndarray  # (H, H)
    dbias: np.ndarray | None  # (H,)


def rnn_forward(
    x, kernel, recurrent_kernel, bias=None, h0=None, *, activation: ActivationLike = "tanh", mask=None, recurrent_mask=None
):
    """Run a simple RNN over a batch of sequences.

    Parameters
    ----------
    x : ndarray, (B, T, D)
    kernel : ndarray, (D, H)
    recurrent_kernel : ndarray, (H, H)
    bias : ndarray, (H,), optional
    h0 : ndarray, (B, H), optional
    activation : str or Activation
        ``tanh`` by default (PyTorch's ``nonlinearity``; ``relu`` also works).
    mask : ndarray of bool, (B, T), optional
    recurrent_mask : ndarray, (B, H), optional
        Recurrent-dropout mask on h_{t-1} where it enters the recurrent kernel.

    Returns
    -------
    hs : ndarray, (B, T, H)
    h_T : ndarray, (B, H)
    cache : dict
    """
    x, kernel, recurrent_kernel, bias, states, (B, T, D, H) = recurrent_args(
        x, kernel, recurrent_kernel, bias, {"h0": h0}, gates=1
    )
    act = get_activation(activation, argument="activation")
    valid = check_mask(mask, B, T)
    rmask = check_recurrent_mask(recurrent_mask, B, H, x.dtype)

    xt = np.ascontiguousarray(x.transpose(1, 0, 2))  # (T, B, D)
    a = xt @ kernel  # (T, B, H) input projection of all steps at once
    if bias is not None:
        a += bias
    hs = np.empty((T, B, H), x.dtype)  # (T, B, H)
    h_prev = states["h0"]  # (B, H)
    for t in range(T):
        h_in = h_prev if rmask is None else h_prev * rmask  # (B, H) recurrent dropout
        h = act(a[t] + h_in @ recurrent_kernel)  # (1)
        if valid is not None:
            h = np.where(valid[:, t : t + 1], h, h_prev)
        hs[t] = h
        h_prev = h

    cache = dict(
        xt=xt, hs=hs, h0=states["h0"], kernel=kernel, recurrent_kernel=recurrent_kernel,
        has_bias=bias is not None, act=act, valid=valid, rmask=rmask,
    )
    return np.ascontiguousarray(hs.transpose(1, 0, 2)), h_prev.copy(), cache


def rnn_backward(dhs, dh_T, cache) -> RNNGrads:
    """Backpropagation through time for :func:`rnn_forward` (arguments as :func:`gru_backward`)."""
    xt, hs, kernel, recurrent_kernel = cache["xt"], cache["hs"], cache["kernel"], cache["recurrent_kernel"]
    act, valid = cache["act"], cache["valid"]
    T, B, H = hs.shape
    dtype = hs.dtype
    dhs = upstream("dhs", dhs, (B, T, H), dtype)
    dh_next = upstream("dh_T", dh_T, (B, H), dtype)
    dh_next = np.zeros((B, H), dtype) if dh_next is None else dh_next.copy()  # (B, H)

    da = np.empty((T, B, H), dtype)  # (T, B, H) gradient of the pre-activation of (1)
    for t in reversed(range(T)):
        dh = dh_next if dhs is None else dhs[:, t] + dh_next  # (B, H)
        if valid is not None:
            keep = valid[:, t : t + 1]  # (B, 1)
            dh_skip = np.where(keep, 0.0, dh)
            dh = np.where(keep, dh, 0.0)
        da[t] = act.backward(dh, hs[t])  # (1)
        dh_next = da[t] @ recurrent_kernel.T  # (B, H)
        if cache["rmask"] is not None:
            dh_next *= cache["rmask"]
        if valid is not None:
            dh_next += dh_skip

    h_prevs = np.concatenate([cache["h0"][None], hs[:-1]], axis=0)  # (T, B, H) h_{t-1} per step
    if cache["rmask"] is not None:
        h_prevs = h_prevs * cache["rmask"]
    dx, dkernel, drecurrent_kernel, dbias = weight_grads(xt, da, da, h_prevs, kernel, cache["has_bias"])
    return RNNGrads(np.ascontiguousarray(dx.transpose(1, 0, 2)), dh_next, dkernel, drecurrent_kernel, dbias)
