"""One step of the projection LSTM (LSTMP, Sak et al. 2014), forward and backward.

The hidden output is projected down to ``proj_size`` = P < H before it is
returned and fed back, which shrinks the recurrent kernel from (H, 4H) to
(P, 4H).  Same meaning as PyTorch's ``nn.LSTM(proj_size=P)``.

Weight layout
-------------
The LSTM's Keras layout (gate blocks i, f, c, o; stated in ``functional/lstm.py``)
with a recurrent kernel that reads the projected state, plus the projection::

    kernel             (input_dim, 4*units)   gate blocks i, f, c, o
    recurrent_kernel   (proj_size, 4*units)   gate blocks i, f, c, o
    bias               (4*units,)             gate blocks i, f, c, o  (optional)
    projection_kernel  (units, proj_size)

PyTorch: ``weight_ih_l0 = kernel.T``, ``weight_hh_l0 = recurrent_kernel.T``
(its gate order i, f, g, o is ours), ``bias_ih_l0 = bias``, ``bias_hh_l0 = 0``,
``weight_hr_l0 = projection_kernel.T``.

Equations
---------
States h (B, P) and c (B, H).  With ``z_t = x_t @ kernel + h_{t-1} @
recurrent_kernel + bias`` split into blocks ``zi, zf, zg, zo`` (B, H)::

    (1) input gate       i_t = sigma(zi_t)
    (2) forget gate      f_t = sigma(zf_t)
    (3) candidate state  g_t = tanh(zg_t)
    (4) cell state       c_t = f_t * c_{t-1} + i_t * g_t
    (5) output gate      o_t = sigma(zo_t)
    (6) unprojected      m_t = o_t * tanh(c_t)                 (B, H)
    (7) hidden output    h_t = m_t @ projection_kernel         (B, P)

Backward, with ``dh_t`` (B, P) and ``dc_t`` (B, H) reaching the new states::

    (7)  dm_t = dh_t @ projection_kernel.T      dprojection_kernel = m_t.T @ dh_t
    (6)  do_t = dm_t * tanh(c_t)                dc_t += dm_t * o_t * tanh'(c_t)
    (5)  dzo_t = sigma'(.) do_t
    (4)  di_t = dc_t * g_t   df_t = dc_t * c_{t-1}   dg_t = dc_t * i_t   dc_{t-1} = dc_t * f_t
    (3) (2) (1)  dzg_t, dzf_t, dzi_t through the activations
         dz_t = [dzi, dzf, dzg, dzo]:  dx_t = dz_t @ kernel.T,  dh_{t-1} = dz_t @ recurrent_kernel.T (B, P),
         dkernel = x_t.T @ dz_t,  drecurrent_kernel = h_{t-1}.T @ dz_t,  dbias = sum_b dz_t

Recurrent dropout: ``recurrent_mask`` (B, P) multiplies h_{t-1} where it
enters the recurrent kernel.
"""
from __future__ import annotations

import numpy as np

from ._cell import (blocks, fused_weight_shapes, gates_backward, gates_forward, input_dim_of, lstm_cell_backward,
                    lstm_cell_forward, lstm_output_backward, lstm_output_forward, matmul_backward, or_zeros,
                    step_args, weight_list)
from ._validate import as_float_array
from .activations import ActivationLike, get_activation


def weight_shapes(input_dim: int, units: int, *, proj_size: int, use_bias: bool = True) -> dict:
    """The weights of the projection LSTM in the order they are stored: name -> shape."""
    if not isinstance(proj_size, int) or proj_size <= 0:
        raise ValueError(f"proj_size: expected a positive integer, got {proj_size!r}")
    return {**fused_weight_shapes(input_dim, units, 4, use_bias, proj_size), "projection_kernel": (units, proj_size)}


def projection_lstm_step(x_t, states, kernel, recurrent_kernel, bias, projection_kernel, *,
                         activation: ActivationLike = "tanh", recurrent_activation: ActivationLike = "sigmoid",
                         recurrent_mask=None):
    """One step of the projection LSTM.

    Parameters
    ----------
    x_t : ndarray, (B, D)
    states : tuple (h_prev (B, P), c_prev (B, H))
    kernel : ndarray, (D, 4H)
    recurrent_kernel : ndarray, (P, 4H)
    bias : ndarray, (4H,), or None
    projection_kernel : ndarray, (H, P)
    activation, recurrent_activation : str or Activation
        For (3), (6) and for the gates (1), (2), (5).
    recurrent_mask : ndarray, (B, P), optional
        Recurrent-dropout mask on h_{t-1}.

    Returns
    -------
    h_t : ndarray, (B, P)
        The output.
    (h_t, c_t) : tuple of ndarray, (B, P) and (B, H)
    cache : dict
        For :func:`projection_lstm_step_backward`.
    """
    D, H = input_dim_of(kernel, 4)
    P = as_float_array("projection_kernel", projection_kernel, 2, what="(units, proj_size)", finite=False).shape[1]
    x_t, (h_prev, c_prev), w, rmask = step_args(
        x_t, states, [("h_prev", P), ("c_prev", H)],
        {"kernel": kernel, "recurrent_kernel": recurrent_kernel, "bias": bias, "projection_kernel": projection_kernel},
        weight_shapes(D, H, proj_size=P), recurrent_mask, P)
    act = get_activation(activation, argument="activation")
    rec_act = get_activation(recurrent_activation, argument="recurrent_activation")

    h_in = h_prev if rmask is None else h_prev * rmask  # (B, P) recurrent dropout
    z = gates_forward(x_t, h_in, w["kernel"], w["recurrent_kernel"], w["bias"])  # (B, 4H)
    zi, zf, zg, zo = blocks(z, 4)  # (B, H) each
    i, f, g, c = lstm_cell_forward(zi, zf, zg, c_prev, act, rec_act)  # (1) (2) (3) (4)
    o, tc, m = lstm_output_forward(zo, c, act, rec_act)  # (5) (6)  m (B, H)
    h = m @ w["projection_kernel"]  # (7) (B, P)
    cache = dict(x=x_t, h_in=h_in, c_prev=c_prev, i=i, f=f, g=g, c=c, o=o, tc=tc, m=m, w=w, rmask=rmask,
                 act=act, rec_act=rec_act)
    return h, (h, c), cache


def projection_lstm_step_backward(dout, dnew_states, cache):
    """Backward of :func:`projection_lstm_step`.

    Parameters
    ----------
    dout : ndarray, (B, P), or None
    dnew_states : tuple (dh_t (B, P), dc_t (B, H))
        Entries may be None.
    cache : dict

    Returns
    -------
    dx_t : ndarray, (B, D)
    (dh_prev (B, P), dc_prev (B, H))
    dweights : list
        ``[dkernel, drecurrent_kernel, dbias, dprojection_kernel]`` (dbias left
        out when the forward had no bias).
    """
    c_prev, i, f, g, c, o, tc, m = (cache[k] for k in ("c_prev", "i", "f", "g", "c", "o", "tc", "m"))
    w, act, rec_act = cache["w"], cache["act"], cache["rec_act"]
    dh = or_zeros(dnew_states[0], cache["h_in"])  # (B, P)
    if dout is not None:
        dh = dh + dout
    dm, dprojection_kernel = matmul_backward(dh, m, w["projection_kernel"])  # (7) (B, H), (H, P)
    dzo, dc_h = lstm_output_backward(dm, o, tc, act, rec_act)  # (6) (5)
    dc = or_zeros(dnew_states[1], c) + dc_h  # (B, H) total gradient reaching c_t
    dzi, dzf, dzg, dc_prev = lstm_cell_backward(dc, i, f, g, c_prev, act, rec_act)  # (4) (3) (2) (1)
    dz = np.concatenate([dzi, dzf, dzg, dzo], axis=1)  # (B, 4H)
    dx, dh_prev, dkernel, drecurrent_kernel, dbias = gates_backward(
        dz, cache["x"], cache["h_in"], w["kernel"], w["recurrent_kernel"], w["bias"], cache["rmask"])
    dweights = weight_list(dkernel, drecurrent_kernel, dbias, dprojection_kernel)
    return dx, (dh_prev, dc_prev), dweights
