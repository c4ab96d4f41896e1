"""One step of the peephole LSTM (Gers & Schmidhuber 2000), forward and backward.

The gates also look at the cell state: the input and forget gates at the
previous one, c_{t-1}, and the output gate at the new one, c_t.  This is the
``P`` input of ONNX's ``LSTM`` operator and DL4J's ``GravesLSTM``.

Weight layout
-------------
The LSTM's Keras layout (gate blocks i, f, c, o; stated in ``functional/lstm.py``)
plus one row of diagonal peephole weights per gate that has one::

    kernel            (input_dim, 4*units)   gate blocks i, f, c, o
    recurrent_kernel  (units,     4*units)   gate blocks i, f, c, o
    bias              (4*units,)             gate blocks i, f, c, o  (optional)
    peephole          (3, units)             rows: 0 = p_i, 1 = p_f, 2 = p_o

The peephole rows follow the gate order of the kernels with the candidate
(which has no peephole) left out.  ONNX's ``P`` is ``[p_i, p_o, p_f]``
(its gate order i, o, f, c): ``P = peephole[[0, 2, 1]].ravel()``.

Equations
---------
With ``z_t = x_t @ kernel + h_{t-1} @ recurrent_kernel + bias`` split into
blocks ``zi, zf, zg, zo`` (B, H), sigma = ``recurrent_activation`` and tanh =
``activation``, and ``*`` elementwise::

    (1) input gate       i_t = sigma(zi_t + p_i * c_{t-1})
    (2) forget gate      f_t = sigma(zf_t + p_f * c_{t-1})
    (3) candidate state  g_t = tanh(zg_t)
    (4) cell state       c_t = f_t * c_{t-1} + i_t * g_t
    (5) output gate      o_t = sigma(zo_t + p_o * c_t)
    (6) hidden output    h_t = o_t * tanh(c_t)

Backward, with ``dh_t`` and ``dc_t`` the gradients reaching the new states
(``dh_t`` includes the output's gradient)::

    (6)  do_t = dh_t * tanh(c_t)           dc_t += dh_t * o_t * tanh'(c_t)
    (5)  dzo_t = sigma'(.) do_t            dc_t += dzo_t * p_o     dp_o = sum_b dzo_t * c_t
    (4)  di_t = dc_t * g_t   df_t = dc_t * c_{t-1}   dg_t = dc_t * i_t   dc_{t-1} = dc_t * f_t
    (3)  dzg_t = tanh'(.) dg_t
    (2)  dzf_t = sigma'(.) df_t            dc_{t-1} += dzf_t * p_f   dp_f = sum_b dzf_t * c_{t-1}
    (1)  dzi_t = sigma'(.) di_t            dc_{t-1} += dzi_t * p_i   dp_i = sum_b dzi_t * c_{t-1}
         dz_t = [dzi, dzf, dzg, dzo]:  dx_t = dz_t @ kernel.T,  dh_{t-1} = dz_t @ recurrent_kernel.T,
         dkernel = x_t.T @ dz_t,  drecurrent_kernel = h_{t-1}.T @ dz_t,  dbias = sum_b dz_t

Recurrent dropout: ``recurrent_mask`` (B, H) multiplies h_{t-1} where it
enters the recurrent kernel, as ``lstm_forward`` does.
"""
from __future__ import annotations

import numpy as np

from ._cell import (blocks, fused_weight_shapes, gates_backward, gates_forward, input_dim_of, lstm_cell_backward,
                    lstm_cell_forward, lstm_output_backward, lstm_output_forward, or_zeros, step_args, weight_list)
from .activations import ActivationLike, get_activation

PEEPHOLES = ("i", "f", "o")  # row order of ``peephole``


def weight_shapes(input_dim: int, units: int, *, use_bias: bool = True) -> dict:
    """The weights of the peephole LSTM in the order they are stored: name -> shape."""
    return {**fused_weight_shapes(input_dim, units, 4, use_bias), "peephole": (3, units)}


def peephole_lstm_step(x_t, states, kernel, recurrent_kernel, bias, peephole, *,
                       activation: ActivationLike = "tanh", recurrent_activation: ActivationLike = "sigmoid",
                       recurrent_mask=None):
    """One step of the peephole LSTM.

    Parameters
    ----------
    x_t : ndarray, (B, D)
    states : tuple (h_prev, c_prev), (B, H) each
    kernel : ndarray, (D, 4H)
    recurrent_kernel : ndarray, (H, 4H)
    bias : ndarray, (4H,), or None
    peephole : ndarray, (3, H)
        Rows p_i, p_f, p_o (see the module docstring).
    activation, recurrent_activation : str or Activation
        For (3), (6) and for the gates (1), (2), (5).
    recurrent_mask : ndarray, (B, H), optional
        Recurrent-dropout mask on h_{t-1}.

    Returns
    -------
    h_t : ndarray, (B, H)
        The output.
    (h_t, c_t) : tuple of ndarray, (B, H) each
        The new states.
    cache : dict
        For :func:`peephole_lstm_step_backward`.
    """
    D, H = input_dim_of(kernel, 4)
    x_t, (h_prev, c_prev), w, rmask = step_args(
        x_t, states, [("h_prev", H), ("c_prev", H)],
        {"kernel": kernel, "recurrent_kernel": recurrent_kernel, "bias": bias, "peephole": peephole},
        weight_shapes(D, H), recurrent_mask, H)
    act = get_activation(activation, argument="activation")
    rec_act = get_activation(recurrent_activation, argument="recurrent_activation")
    p_i, p_f, p_o = w["peephole"]  # (H,) each

    h_in = h_prev if rmask is None else h_prev * rmask  # (B, H) recurrent dropout
    z = gates_forward(x_t, h_in, w["kernel"], w["recurrent_kernel"], w["bias"])  # (B, 4H)
    zi, zf, zg, zo = blocks(z, 4)  # (B, H) each
    # (1) (2) (3) (4): the input and forget gates look at c_{t-1}
    i, f, g, c = lstm_cell_forward(zi + p_i * c_prev, zf + p_f * c_prev, zg, c_prev, act, rec_act)
    # (5) (6): the output gate looks at the new c_t
    o, tc, h = lstm_output_forward(zo + p_o * c, c, act, rec_act)
    cache = dict(x=x_t, h_in=h_in, c_prev=c_prev, i=i, f=f, g=g, c=c, o=o, tc=tc, w=w, rmask=rmask,
                 act=act, rec_act=rec_act)
    return h, (h, c), cache


def peephole_lstm_step_backward(dout, dnew_states, cache):
    """Backward of :func:`peephole_lstm_step`.

    Parameters
    ----------
    dout : ndarray, (B, H), or None
        Gradient with respect to the output h_t.
    dnew_states : tuple (dh_t, dc_t)
        Gradients with respect to the new states (entries may be None).
    cache : dict
        From :func:`peephole_lstm_step`.

    Returns
    -------
    dx_t : ndarray, (B, D)
    (dh_prev, dc_prev) : tuple of ndarray, (B, H) each
    dweights : list
        ``[dkernel, drecurrent_kernel, dbias, dpeephole]``; dbias is left out
        when the forward had no bias (the order of ``weight_shapes``).
    """
    c_prev, i, f, g, c, o, tc = (cache[k] for k in ("c_prev", "i", "f", "g", "c", "o", "tc"))
    w, act, rec_act = cache["w"], cache["act"], cache["rec_act"]
    p_i, p_f, p_o = w["peephole"]  # (H,) each
    dh = or_zeros(dnew_states[0], c)  # (B, H)
    if dout is not None:
        dh = dh + dout
    # (6) (5): h_t = o_t * tanh(c_t), o_t = sigma(zo_t + p_o * c_t)
    dzo, dc_h = lstm_output_backward(dh, o, tc, act, rec_act)
    dc = or_zeros(dnew_states[1], c) + dc_h + dzo * p_o  # (B, H) total gradient reaching c_t
    # (4) (3) (2) (1)
    dzi, dzf, dzg, dc_prev = lstm_cell_backward(dc, i, f, g, c_prev, act, rec_act)
    dc_prev = dc_prev + dzi * p_i + dzf * p_f  # (2) (1): the peepholes from c_{t-1}
    dpeephole = np.stack([(dzi * c_prev).sum(axis=0), (dzf * c_prev).sum(axis=0), (dzo * c).sum(axis=0)])  # (3, H)
    dz = np.concatenate([dzi, dzf, dzg, dzo], axis=1)  # (B, 4H)
    dx, dh_prev, dkernel, drecurrent_kernel, dbias = gates_backward(
        dz, cache["x"], cache["h_in"], w["kernel"], w["recurrent_kernel"], w["bias"], cache["rmask"])
    dweights = weight_list(dkernel, drecurrent_kernel, dbias, dpeephole)
    return dx, (dh_prev, dc_prev), dweights
