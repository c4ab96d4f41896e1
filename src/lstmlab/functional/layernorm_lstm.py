"""One step of the layer-normalized LSTM (Ba et al. 2016), forward and backward.

Layout and equations of TensorFlow Addons' ``tfa.rnn.LayerNormLSTMCell``
(``tensorflow_addons/rnn/layer_norm_lstm_cell.py``), which subclasses Keras's
``LSTMCell`` and adds three ``LayerNormalization`` layers.  Exactly three
things are normalized, each over its whole last axis:

* ``kernel_norm``: the input term ``x_t @ kernel``, all 4H columns together
  (one mean and variance across the four gate blocks, not one per gate);
* ``recurrent_norm``: the recurrent term ``h_{t-1} @ recurrent_kernel``, all 4H columns;
* ``state_norm``: the new cell state c_t (H columns), and the *normalized*
  c_t is both the state carried to t+1 and the input of tanh in h_t.

The bias is added after both normalizations; the candidate and the gates are
otherwise the plain LSTM's.  Each norm is Keras's ``LayerNormalization``
(``axis=-1``, biased variance, epsilon inside the square root) with
``epsilon = norm_epsilon = 1e-3``, gamma initialised to ones and beta to zeros
(TF-Addons' ``norm_gamma_initializer="ones"``, ``norm_beta_initializer="zeros"``).

Weight layout (in the order TF-Addons' cell stores its weights)
---------------------------------------------------------------
::

    kernel               (input_dim, 4*units)   gate blocks i, f, c, o (functional/lstm.py)
    recurrent_kernel     (units,     4*units)   gate blocks i, f, c, o
    bias                 (4*units,)             gate blocks i, f, c, o  (optional, use_bias)
    kernel_norm_gamma    (4*units,)             TF: kernel_norm/gamma
    kernel_norm_beta     (4*units,)             TF: kernel_norm/beta
    recurrent_norm_gamma (4*units,)             TF: recurrent_norm/gamma
    recurrent_norm_beta  (4*units,)             TF: recurrent_norm/beta
    state_norm_gamma     (units,)               TF: state_norm/gamma
    state_norm_beta      (units,)               TF: state_norm/beta

Equations
---------
``LN(v; gamma, beta) = (v - mean(v)) / sqrt(var(v) + eps) * gamma + beta``,
mean and (biased) variance over the last axis of each row::

    (1) input term       a_t  = LN(x_t @ kernel;             kernel_norm_gamma, kernel_norm_beta)      (B, 4H)
    (2) recurrent term   u_t  = LN(h_{t-1} @ recurrent_kernel; recurrent_norm_gamma, recurrent_norm_beta)
    (3) pre-activations  z_t  = a_t + u_t + bias,  blocks zi, zf, zg, zo
    (4) input gate       i_t  = sigma(zi_t)
    (5) forget gate      f_t  = sigma(zf_t)
    (6) candidate state  g_t  = tanh(zg_t)
    (7) raw cell state   cc_t = f_t * c_{t-1} + i_t * g_t
    (8) cell state       c_t  = LN(cc_t; state_norm_gamma, state_norm_beta)                            (B, H)
    (9) output gate      o_t  = sigma(zo_t)
    (10) hidden output   h_t  = o_t * tanh(c_t)

Backward; the layer norm with ``vhat = (v - mean) / sqrt(var + eps)`` goes back as
``dgamma = sum_b dy * vhat``, ``dbeta = sum_b dy`` and
``dv = (dvhat - mean(dvhat) - vhat * mean(dvhat * vhat)) / sqrt(var + eps)`` with ``dvhat = dy * gamma``::

    (10) do_t = dh_t * tanh(c_t)             dc_t += dh_t * o_t * tanh'(c_t)
    (9)  dzo_t = sigma'(.) do_t
    (8)  dcc_t = LN backward of dc_t          (and the state_norm gamma, beta gradients)
    (7)  di_t = dcc_t * g_t   df_t = dcc_t * c_{t-1}   dg_t = dcc_t * i_t   dc_{t-1} = dcc_t * f_t
    (6) (5) (4)  dzg_t, dzf_t, dzi_t through the activations
    (3)  da_t = du_t = dz_t = [dzi, dzf, dzg, dzo]       dbias = sum_b dz_t
    (2)  LN backward of du_t -> d(h_{t-1} @ recurrent_kernel) = dr_t:
         dh_{t-1} = dr_t @ recurrent_kernel.T, drecurrent_kernel = h_{t-1}.T @ dr_t
    (1)  LN backward of da_t -> d(x_t @ kernel) = dk_t:
         dx_t = dk_t @ kernel.T, dkernel = x_t.T @ dk_t

Recurrent dropout: ``recurrent_mask`` (B, H) multiplies h_{t-1} where it
enters the recurrent kernel (TF-Addons applies its mask there too).
"""
from __future__ import annotations

import numpy as np

from ._cell import (bias_grad, blocks, fused_weight_shapes, input_dim_of, lstm_cell_backward, lstm_cell_forward,
                    lstm_output_backward, lstm_output_forward, matmul_backward, or_zeros, step_args, weight_list)
from .activations import ActivationLike, get_activation

NORM_EPSILON = 1e-3  # TF-Addons' norm_epsilon default
NORMS = ("kernel_norm", "recurrent_norm", "state_norm")  # each with a _gamma (init ones) and a _beta (init zeros)


def weight_shapes(input_dim: int, units: int, *, use_bias: bool = True) -> dict:
    """The weights of the layer-norm LSTM in TF-Addons' storage order: name -> shape."""
    shapes = fused_weight_shapes(input_dim, units, 4, use_bias)
    for norm, width in zip(NORMS, (4 * units, 4 * units, units)):
        shapes[f"{norm}_gamma"] = (width,)
        shapes[f"{norm}_beta"] = (width,)
    return shapes


def layer_norm(v, gamma, beta, eps):
    """``LN(v)`` over the last axis; returns ``(y, (vhat, rstd))`` for :func:`layer_norm_backward`."""
    mean = v.mean(axis=-1, keepdims=True)  # (B, 1)
    vc = v - mean  # (B, N)
    rstd = 1.0 / np.sqrt((vc * vc).mean(axis=-1, keepdims=True) + eps)  # (B, 1) biased variance, as Keras
    vhat = vc * rstd  # (B, N)
    return vhat * gamma + beta, (vhat, rstd)


def layer_norm_backward(dy, gamma, saved):
    """Backward of :func:`layer_norm`: ``(dv, dgamma, dbeta)``."""
    vhat, rstd = saved
    dvhat = dy * gamma  # (B, N)
    dv = rstd * (dvhat - dvhat.mean(axis=-1, keepdims=True) - vhat * (dvhat * vhat).mean(axis=-1, keepdims=True))
    return dv, (dy * vhat).sum(axis=0), dy.sum(axis=0)


def layernorm_lstm_step(x_t, states, kernel, recurrent_kernel, bias, kernel_norm_gamma, kernel_norm_beta,
                        recurrent_norm_gamma, recurrent_norm_beta, state_norm_gamma, state_norm_beta, *,
                        activation: ActivationLike = "tanh", recurrent_activation: ActivationLike = "sigmoid",
                        recurrent_mask=None, norm_epsilon: float = NORM_EPSILON):
    """One step of the layer-norm LSTM.

    Parameters
    ----------
    x_t : ndarray, (B, D)
    states : tuple (h_prev, c_prev), (B, H) each
    kernel : ndarray, (D, 4H)
    recurrent_kernel : ndarray, (H, 4H)
    bias : ndarray, (4H,), or None
    kernel_norm_gamma, kernel_norm_beta, recurrent_norm_gamma, recurrent_norm_beta : ndarray, (4H,)
    state_norm_gamma, state_norm_beta : ndarray, (H,)
    activation, recurrent_activation : str or Activation
        For (6), (10) and for the gates (4), (5), (9).
    recurrent_mask : ndarray, (B, H), optional
        Recurrent-dropout mask on h_{t-1}.
    norm_epsilon : float
        Added to the variance in all three norms (TF-Addons default 1e-3).

    Returns
    -------
    h_t : ndarray, (B, H)
    (h_t, c_t) : tuple of ndarray, (B, H) each
        c_t is the normalized cell state (8).
    cache : dict
    """
    if isinstance(norm_epsilon, bool) or not (isinstance(norm_epsilon, (int, float, np.floating)) and norm_epsilon > 0):
        raise ValueError(f"norm_epsilon: expected a positive number, got {norm_epsilon!r}")
    D, H = input_dim_of(kernel, 4)
    given = dict(kernel=kernel, recurrent_kernel=recurrent_kernel, bias=bias, kernel_norm_gamma=kernel_norm_gamma,
                 kernel_norm_beta=kernel_norm_beta, recurrent_norm_gamma=recurrent_norm_gamma,
                 recurrent_norm_beta=recurrent_norm_beta, state_norm_gamma=state_norm_gamma,
                 state_norm_beta=state_norm_beta)
    x_t, (h_prev, c_prev), w, rmask = step_args(x_t, states, [("h_prev", H), ("c_prev", H)], given,
                                                weight_shapes(D, H), recurrent_mask, H)
    act = get_activation(activation, argument="activation")
    rec_act = get_activation(recurrent_activation, argument="recurrent_activation")

    h_in = h_prev if rmask is None else h_prev * rmask  # (B, H) recurrent dropout
    a, a_saved = layer_norm(x_t @ w["kernel"], w["kernel_norm_gamma"], w["kernel_norm_beta"], norm_epsilon)  # (1)
    u, u_saved = layer_norm(h_in @ w["recurrent_kernel"], w["recurrent_norm_gamma"], w["recurrent_norm_beta"],
                            norm_epsilon)  # (2) (B, 4H)
    z = a + u if w["bias"] is None else a + u + w["bias"]  # (3) (B, 4H)
    zi, zf, zg, zo = blocks(z, 4)  # (B, H) each
    i, f, g, cc = lstm_cell_forward(zi, zf, zg, c_prev, act, rec_act)  # (4) (5) (6) (7)
    c, c_saved = layer_norm(cc, w["state_norm_gamma"], w["state_norm_beta"], norm_epsilon)  # (8)
    o, tc, h = lstm_output_forward(zo, c, act, rec_act)  # (9) (10)
    cache = dict(x=x_t, h_in=h_in, c_prev=c_prev, i=i, f=f, g=g, o=o, tc=tc, w=w, rmask=rmask, act=act,
                 rec_act=rec_act, a_saved=a_saved, u_saved=u_saved, c_saved=c_saved)
    return h, (h, c), cache


def layernorm_lstm_step_backward(dout, dnew_states, cache):
    """Backward of :func:`layernorm_lstm_step`.

    Parameters
    ----------
    dout : ndarray, (B, H), or None
    dnew_states : tuple (dh_t, dc_t), (B, H) each; entries may be None
    cache : dict

    Returns
    -------
    dx_t : ndarray, (B, D)
    (dh_prev, dc_prev) : tuple of ndarray, (B, H) each
    dweights : list
        In ``weight_shapes`` order (dbias left out when the forward had no bias).
    """
    c_prev, i, f, g, o, tc = (cache[k] for k in ("c_prev", "i", "f", "g", "o", "tc"))
    w, act, rec_act = cache["w"], cache["act"], cache["rec_act"]
    dh = or_zeros(dnew_states[0], o)  # (B, H)
    if dout is not None:
        dh = dh + dout
    dzo, dc_h = lstm_output_backward(dh, o, tc, act, rec_act)  # (10) (9)
    dc = or_zeros(dnew_states[1], o) + dc_h  # (B, H) total gradient reaching the normalized c_t
    dcc, dstate_gamma, dstate_beta = layer_norm_backward(dc, w["state_norm_gamma"], cache["c_saved"])  # (8)
    dzi, dzf, dzg, dc_prev = lstm_cell_backward(dcc, i, f, g, c_prev, act, rec_act)  # (7) (6) (5) (4)
    dz = np.concatenate([dzi, dzf, dzg, dzo], axis=1)  # (3) (B, 4H), reaching a_t, u_t and the bias alike
    dr, drec_gamma, drec_beta = layer_norm_backward(dz, w["recurrent_norm_gamma"], cache["u_saved"])  # (2)
    dh_prev, drecurrent_kernel = matmul_backward(dr, cache["h_in"], w["recurrent_kernel"])  # (B, H), (H, 4H)
    if cache["rmask"] is not None:
        dh_prev *= cache["rmask"]
    dk, dker_gamma, dker_beta = layer_norm_backward(dz, w["kernel_norm_gamma"], cache["a_saved"])  # (1)
    dx, dkernel = matmul_backward(dk, cache["x"], w["kernel"])  # (B, D), (D, 4H)
    dweights = weight_list(dkernel, drecurrent_kernel, bias_grad(dz, w["bias"]), dker_gamma, dker_beta,
                           drec_gamma, drec_beta, dstate_gamma, dstate_beta)
    return dx, (dh_prev, dc_prev), dweights
