"""The GRU over a whole sequence (Keras ``reset_after=True``, the PyTorch variant).

Weight layout (Keras)
---------------------
Three gate blocks side by side, in the order **z, r, h** (update gate, reset
gate, candidate)::

    kernel            (input_dim, 3*units)
    recurrent_kernel  (units,     3*units)
    bias              (2, 3*units)    row 0: input bias, row 1: recurrent bias

PyTorch orders the blocks r, z, n and keeps the two bias rows as ``bias_ih``
and ``bias_hh``; the recurrent bias cannot be folded into the input bias
because the reset gate multiplies it in (3).

Equations
---------
With ``a_t = x_t @ kernel + bias[0]`` and ``u_t = h_{t-1} @ recurrent_kernel + bias[1]``
split into blocks ``a_z, a_r, a_h`` and ``u_z, u_r, u_h``::

    (1) update gate   z_t  = sigma(a_z + u_z)
    (2) reset gate    r_t  = sigma(a_r + u_r)
    (3) candidate     hh_t = tanh(a_h + r_t * u_h)
    (4) hidden output h_t  = z_t * h_{t-1} + (1 - z_t) * hh_t

Backward, with ``dh_t`` the total gradient reaching h_t::

    (4)  dz_t = dh_t * (h_{t-1} - hh_t)    dhh_t = dh_t * (1 - z_t)    direct path dh_t * z_t
    (3)  da_h = tanh'(.) dhh_t             dr_t = da_h * u_h           du_h = da_h * r_t
    (2)  da_r = du_r = sigma'(.) dr_t
    (1)  da_z = du_z = sigma'(.) dz_t
         dh_{t-1} = dh_t * z_t + du_t @ recurrent_kernel.T
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._bptt import weight_grads
from ._validate import check_mask, check_recurrent_mask, recurrent_args, upstream
from .activations import ActivationLike, get_activation

GATES = ("z", "r", "h")  # column-block order of kernel, recurrent_kernel and bias


class GRUGrads(NamedTuple):
    """Gradients returned by :func:`gru_backward`."""

    dx: np.ndarray  # (B, T, D)
    dh0: np.ndarray  # (B, H)
    dkernel: np.ndarray  # (D, 3H)
    drecurrent_kernel: np.ndarray  # (H, 3H)
    dbias: np.ndarray | None  # (2, 3H)


def gru_forward(
    x,
    kernel,
    recurrent_kernel,
    bias=None,
    h0=None,
    *,
    activation: ActivationLike = "tanh",
    recurrent_activation: ActivationLike = "sigmoid",
    mask=None,
    recurrent_mask=None,
):
    """Run a GRU over a batch of sequences.

    Parameters
    ----------
    x : ndarray, (B, T, D)
    kernel : ndarray, (D, 3H)
    recurrent_kernel : ndarray, (H, 3H)
    bias : ndarray, (2, 3H), optional
        Row 0 is added to the input projection, row 1 to the recurrent one.
    h0 : ndarray, (B, H), optional
    activation, recurrent_activation : str or Activation
        Candidate activation (3) and gate activation (1), (2).
    mask : ndarray of bool, (B, T), optional
        False marks padding steps, which carry the state through unchanged.
    recurrent_mask : ndarray, (B, H), optional
        Recurrent-dropout mask on h_{t-1} where it enters the recurrent kernel
        (not in the interpolation (4), as in Keras).

    Returns
    -------
    hs : ndarray, (B, T, H)
    h_T : ndarray, (B, H)
    cache : dict
    """
    x, kernel, recurrent_kernel, bias, states, (B, T, D, H) = recurrent_args(
        x, kernel, recurrent_kernel, bias, {"h0": h0}, gates=3, bias_rows=2
    )
    act = get_activation(activation, argument="activation")
    rec_act = get_activation(recurrent_activation, argument="recurrent_activation")
    valid = check_mask(mask, B, T)
    dtype = x.dtype
    rmask = check_recurrent_mask(recurrent_mask, B, H, dtype)

    xt = np.ascontiguousarray(x.transpose(1, 0, 2))  # (T, B, D)
    a = xt @ kernel  # (T, B, 3H) input projection of all steps at once
    if bias is not None:
        a += bias[0]
    gates = np.empty((T, B, 3 * H), dtype)  # (T, B, 3H) activated z, r, hh
    uh = np.empty((T, B, H), dtype)  # (T, B, H) recurrent candidate term u_h, needed for dr
    hs = np.empty((T, B, H), dtype)  # (T, B, H)
    h_prev = states["h0"]  # (B, H)
    for t in range(T):
        h_in = h_prev if rmask is None else h_prev * rmask  # (B, H) recurrent dropout
        u = h_in @ recurrent_kernel  # (B, 3H)
        if bias is not None:
            u += bias[1]
        z = rec_act(a[t, :, 0:H] + u[:, 0:H])  # (1) update gate
        r = rec_act(a[t, :, H : 2 * H] + u[:, H : 2 * H])  # (2) reset gate
        hh = act(a[t, :, 2 * H :] + r * u[:, 2 * H :])  # (3) candidate
        h = z * h_prev + (1.0 - z) * hh  # (4) hidden output
        if valid is not None:
            h = np.where(valid[:, t : t + 1], h, h_prev)
        gates[t, :, 0:H], gates[t, :, H : 2 * H], gates[t, :, 2 * H :] = z, r, hh
        uh[t], hs[t] = u[:, 2 * H :], h
        h_prev = h

    cache = dict(
        xt=xt, gates=gates, uh=uh, hs=hs, h0=states["h0"], kernel=kernel,
        recurrent_kernel=recurrent_kernel, has_bias=bias is not None, act=act, rec_act=rec_act, valid=valid, rmask=rmask,
    )
    return np.ascontiguousarray(hs.transpose(1, 0, 2)), h_prev.copy(), cache


def gru_backward(dhs, dh_T, cache) -> GRUGrads:
    """Backpropagation through time for :func:`gru_forward`.

    Parameters
    ----------
    dhs : ndarray, (B, T, H), or None
        Gradient with respect to every hidden output.
    dh_T : ndarray, (B, H), or None
        Gradient with respect to the final state.
    cache : dict
        From :func:`gru_forward`.
    """
    xt, gates, uh, hs = cache["xt"], cache["gates"], cache["uh"], cache["hs"]
    kernel, recurrent_kernel = cache["kernel"], cache["recurrent_kernel"]
    act, rec_act, valid = cache["act"], cache["rec_act"], cache["valid"]
    T, B, H = hs.shape
    dtype = hs.dtype
    dhs = upstream("dhs", dhs, (B, T, H), dtype)
    dh_next = upstream("dh_T", dh_T, (B, H), dtype)
    dh_next = np.zeros((B, H), dtype) if dh_next is None else dh_next.copy()  # (B, H)

    da = np.empty_like(gates)  # (T, B, 3H) gradient of the input-side pre-activations a_t
    du = np.empty_like(gates)  # (T, B, 3H) gradient of the recurrent-side terms u_t
    for t in reversed(range(T)):
        z, r, hh = gates[t, :, 0:H], gates[t, :, H : 2 * H], gates[t, :, 2 * H :]
        h_prev = hs[t - 1] if t > 0 else cache["h0"]  # (B, H)
        dh = dh_next if dhs is None else dhs[:, t] + dh_next  # (B, H)
        if valid is not None:
            keep = valid[:, t : t + 1]  # (B, 1)
            dh_skip = np.where(keep, 0.0, dh)
            dh = np.where(keep, dh, 0.0)
        # (4) h_t = z_t * h_{t-1} + (1 - z_t) * hh_t
        dz = dh * (h_prev - hh)
        dhh = dh * (1.0 - z)
        # (3) hh_t = tanh(a_h + r_t * u_h)
        dah = act.backward(dhh, hh)
        dr = dah * uh[t]
        # (2), (1): the gates see a + u, so both sides get the same gradient
        da[t, :, 0:H] = du[t, :, 0:H] = rec_act.backward(dz, z)
        da[t, :, H : 2 * H] = du[t, :, H : 2 * H] = rec_act.backward(dr, r)
        da[t, :, 2 * H :] = dah
        du[t, :, 2 * H :] = dah * r
        dh_rec = du[t] @ recurrent_kernel.T  # (B, H) recurrent path
        if cache["rmask"] is not None:
            dh_rec *= cache["rmask"]
        dh_next = dh * z + dh_rec  # (B, H) direct path of (4) + recurrent path
        if valid is not None:
            dh_next += dh_skip

    h_prevs = np.concatenate([cache["h0"][None], hs[:-1]], axis=0)  # (T, B, H) h_{t-1} per step
    if cache["rmask"] is not None:
        h_prevs = h_prevs * cache["rmask"]
    dx, dkernel, drecurrent_kernel, dbias = weight_grads(xt, da, du, h_prevs, kernel, cache["has_bias"],
                                                          bias_rows=True)  # dx (T, B, D); dbias (2, 3H)
    return GRUGrads(np.ascontiguousarray(dx.transpose(1, 0, 2)), dh_next, dkernel, drecurrent_kernel, dbias)
