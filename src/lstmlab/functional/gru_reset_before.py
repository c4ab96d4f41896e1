"""One step of the GRU with the reset gate *before* the recurrent product (Keras ``reset_after=False``).

Keras's original GRU variant (Cho et al. 2014, arXiv 1406.1078v1): the reset
gate multiplies h_{t-1} and the product goes through the candidate's recurrent
kernel.  ``functional/gru.py`` is the other variant (``reset_after=True``, the
PyTorch / cuDNN one), whose reset gate multiplies the recurrent term instead
and which therefore needs a second bias row.

Weight layout (Keras ``GRU(reset_after=False)``)
------------------------------------------------
Three gate blocks side by side in the order **z, r, h** (update gate, reset
gate, candidate), one bias::

    kernel            (input_dim, 3*units)
    recurrent_kernel  (units,     3*units)
    bias              (3*units,)              (optional)

Equations
---------
With ``a_t = x_t @ kernel + bias`` split into blocks ``a_z, a_r, a_h`` and
``U_z, U_r, U_h`` the column blocks of ``recurrent_kernel``::

    (1) update gate    z_t  = sigma(a_z + h_{t-1} @ U_z)
    (2) reset gate     r_t  = sigma(a_r + h_{t-1} @ U_r)
    (3) reset state    q_t  = r_t * h_{t-1}
    (4) candidate      hh_t = tanh(a_h + q_t @ U_h)
    (5) hidden output  h_t  = z_t * h_{t-1} + (1 - z_t) * hh_t

Backward, with ``dh_t`` the total gradient reaching h_t::

    (5)  dz_t = dh_t * (h_{t-1} - hh_t)      dhh_t = dh_t * (1 - z_t)      direct path dh_t * z_t
    (4)  dah_t = tanh'(.) dhh_t               dq_t = dah_t @ U_h.T          dU_h = q_t.T @ dah_t
    (3)  dr_t = dq_t * h_{t-1}                reset path dq_t * r_t
    (2)  dar_t = sigma'(.) dr_t
    (1)  daz_t = sigma'(.) dz_t
         dh_{t-1} = dh_t * z_t + dq_t * r_t + [daz, dar] @ [U_z, U_r].T
         da_t = [daz, dar, dah]:  dx_t = da_t @ kernel.T,  dkernel = x_t.T @ da_t,  dbias = sum_b da_t
         [dU_z, dU_r] = h_{t-1}.T @ [daz, dar]

Recurrent dropout: ``recurrent_mask`` (B, H) multiplies h_{t-1} where it
enters the recurrent kernel (in (1), (2) and in q_t of (3)), not in the
interpolation (5), as ``functional/gru.py`` does.
"""
from __future__ import annotations

import numpy as np

from ._cell import (bias_grad, blocks, fused_weight_shapes, input_dim_of, matmul_backward, or_zeros, step_args,
                    weight_list)
from .activations import ActivationLike, get_activation

GATES = ("z", "r", "h")  # column-block order of kernel, recurrent_kernel and bias


def weight_shapes(input_dim: int, units: int, *, use_bias: bool = True) -> dict:
    """The weights of the GRU (reset_after=False) in the order they are stored: name -> shape."""
    return fused_weight_shapes(input_dim, units, 3, use_bias)


def gru_reset_before_step(x_t, states, kernel, recurrent_kernel, bias=None, *,
                          activation: ActivationLike = "tanh", recurrent_activation: ActivationLike = "sigmoid",
                          recurrent_mask=None):
    """One step of the GRU with ``reset_after=False``.

    Parameters
    ----------
    x_t : ndarray, (B, D)
    states : tuple (h_prev,), (B, H)
    kernel : ndarray, (D, 3H)
    recurrent_kernel : ndarray, (H, 3H)
    bias : ndarray, (3H,), or None
    activation, recurrent_activation : str or Activation
        Candidate activation (4) and gate activation (1), (2).
    recurrent_mask : ndarray, (B, H), optional
        Recurrent-dropout mask on h_{t-1}.

    Returns
    -------
    h_t : ndarray, (B, H)
    (h_t,) : tuple
    cache : dict
    """
    D, H = input_dim_of(kernel, 3)
    x_t, (h_prev,), w, rmask = step_args(
        x_t, states, [("h_prev", H)], {"kernel": kernel, "recurrent_kernel": recurrent_kernel, "bias": bias},
        weight_shapes(D, H), recurrent_mask, H)
    act = get_activation(activation, argument="activation")
    rec_act = get_activation(recurrent_activation, argument="recurrent_activation")
    U = w["recurrent_kernel"]

    h_in = h_prev if rmask is None else h_prev * rmask  # (B, H) recurrent dropout
    a = x_t @ w["kernel"]  # (B, 3H)
    if w["bias"] is not None:
        a += w["bias"]
    a_z, a_r, a_h = blocks(a, 3)  # (B, H) each
    u_z, u_r = blocks(h_in @ U[:, : 2 * H], 2)  # (B, H) each
    z = rec_act(a_z + u_z)  # (1) update gate
    r = rec_act(a_r + u_r)  # (2) reset gate
    q = r * h_in  # (3) reset state
    hh = act(a_h + q @ U[:, 2 * H :])  # (4) candidate
    h = z * h_prev + (1.0 - z) * hh  # (5) hidden output
    cache = dict(x=x_t, h_prev=h_prev, h_in=h_in, z=z, r=r, q=q, hh=hh, w=w, rmask=rmask, act=act, rec_act=rec_act)
    return h, (h,), cache


def gru_reset_before_step_backward(dout, dnew_states, cache):
    """Backward of :func:`gru_reset_before_step`.

    Parameters
    ----------
    dout : ndarray, (B, H), or None
    dnew_states : tuple (dh_t,); the entry may be None
    cache : dict

    Returns
    -------
    dx_t : ndarray, (B, D)
    (dh_prev,) : tuple
    dweights : list
        ``[dkernel, drecurrent_kernel, dbias]`` (dbias left out without bias).
    """
    h_prev, h_in, z, r, q, hh = (cache[k] for k in ("h_prev", "h_in", "z", "r", "q", "hh"))
    w, act, rec_act = cache["w"], cache["act"], cache["rec_act"]
    U = w["recurrent_kernel"]
    H = h_prev.shape[1]
    dh = or_zeros(dnew_states[0], h_prev)  # (B, H)
    if dout is not None:
        dh = dh + dout
    # (5) h_t = z_t * h_{t-1} + (1 - z_t) * hh_t
    dz = dh * (h_prev - hh)
    dhh = dh * (1.0 - z)
    # (4) hh_t = tanh(a_h + q_t @ U_h)
    dah = act.backward(dhh, hh)  # (B, H)
    dq, dU_h = matmul_backward(dah, q, U[:, 2 * H :])  # (B, H), (H, H)
    # (3) q_t = r_t * h_{t-1}
    dr = dq * h_in
    # (2) (1): the gates see a + h_{t-1} @ U
    dazr = np.concatenate([rec_act.backward(dz, z), rec_act.backward(dr, r)], axis=1)  # (B, 2H)
    dh_in, dU_zr = matmul_backward(dazr, h_in, U[:, : 2 * H])  # (B, H), (H, 2H)
    dh_in += dq * r  # (3) the reset path
    if cache["rmask"] is not None:
        dh_in *= cache["rmask"]
    dh_prev = dh * z + dh_in  # (5) direct path + the paths through the recurrent kernel
    da = np.concatenate([dazr, dah], axis=1)  # (B, 3H)
    dx, dkernel = matmul_backward(da, cache["x"], w["kernel"])  # (B, D), (D, 3H)
    drecurrent_kernel = np.concatenate([dU_zr, dU_h], axis=1)  # (H, 3H)
    return dx, (dh_prev,), weight_list(dkernel, drecurrent_kernel, bias_grad(da, w["bias"]))
