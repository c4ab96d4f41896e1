"""The LSTM over a whole sequence: forward and backpropagation through time.

Weight layout (Keras; the one place it is stated)
-------------------------------------------------
The four gate blocks sit side by side in one fused matrix, in the order
**i, f, c, o** (input gate, forget gate, candidate "c~" = ``g`` here, output
gate); PyTorch's ``i, f, g, o`` is the same order::

    kernel            (input_dim, 4*units)   columns [0:H]=i  [H:2H]=f  [2H:3H]=c  [3H:4H]=o
    recurrent_kernel  (units,     4*units)   same column blocks
    bias              (4*units,)             same blocks

Equations
---------
For every step t, with ``x_t`` of shape (B, D), ``h_{t-1}, c_{t-1}`` of shape
(B, H), sigma = ``recurrent_activation`` and tanh = ``activation``; each gate's
pre-activation is one column block of
``z_t = x_t @ kernel + h_{t-1} @ recurrent_kernel + bias``::

    (1) forget gate       f_t = sigma(zf_t)
    (2) input gate        i_t = sigma(zi_t)
    (3) candidate state   g_t = tanh(zg_t)
    (4) cell state        c_t = f_t * c_{t-1} + i_t * g_t
    (5) output gate       o_t = sigma(zo_t)
    (6) hidden output     h_t = o_t * tanh(c_t)

Backpropagation through time runs the same equations in reverse.  With
``dh_t`` the total gradient reaching h_t (from the output at t *and* from step
t+1 through the recurrent kernel) and ``dc_t`` the gradient reaching c_t from
step t+1 (the "conveyor belt")::

    (6)  do_t  = dh_t * tanh(c_t)
         dc_t += dh_t * o_t * tanh'(c_t)
    (4)  df_t  = dc_t * c_{t-1}      di_t = dc_t * g_t      dg_t = dc_t * i_t
         dc_{t-1} = dc_t * f_t                       (the cell-state path back in time)
    (1)(2)(3)(5)  dz_t = [di_t, df_t, dg_t, do_t] * activation'(...)
         dh_{t-1} = dz_t @ recurrent_kernel.T        (the hidden-state path back in time)
         dx_t     = dz_t @ kernel.T                  (the error sent to the layer below)

and the weight gradients sum over all steps: ``dkernel = sum_t x_t.T @ dz_t``,
``drecurrent_kernel = sum_t h_{t-1}.T @ dz_t``, ``dbias = sum_t sum_b dz_t``.

Masking: where ``mask[b, t]`` is False, step t is skipped for sequence b: its
h and c are carried through unchanged and it receives no gradient.

Recurrent dropout: ``recurrent_mask`` (B, H) multiplies h_{t-1} where it enters
the recurrent kernel, the same mask at every step (one mask per sequence);
the backward multiplies the hidden-state path by the same mask.

The C counterparts (``src/lstmlab/_fast/``, driven by :mod:`lstmlab._fast.lstm`,
masks and recurrent dropout included). ``z_t``: ``fused_tile`` in
``lstm_avx512.c`` sums both products in registers (the float32 forward on the
own GEMM); elsewhere ``x_t @ kernel`` is one GEMM before the loop and
``lstm_forward_f32`` / ``_f64`` in ``cells_generic.c`` add
``h_{t-1} @ recurrent_kernel`` at each step. (1)-(5): ``gates16`` in
``lstm_avx512.c`` (float32 on AVX-512), else ``lstm_cell_forward_generic_*``
in ``cells_generic.c``. (6): ``cell16`` (one step) and the end of
``fused_tile`` (the fused forward) in ``lstm_avx512.c``, else the same generic
cell. BPTT: the pointwise lines (6), (4), (1)(2)(3)(5) and ``dc_{t-1}`` are
``lstm_cell_backward_f32`` in ``lstm_avx512.c``, else
``lstm_cell_backward_generic_*`` in ``cells_generic.c``; ``dh_{t-1}`` is the
per-step GEMM of ``lstm_backward_f32`` / ``_f64`` in ``cells_generic.c``, or
of ``backward_units`` in ``lstm_avx512.c`` when the loop is split by units;
``dx_t`` and the weight gradients are GEMMs after the loop, in Python.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._bptt import weight_grads
from ._validate import check_mask, check_recurrent_mask, recurrent_args, upstream
from .activations import ActivationLike, get_activation

GATES = ("i", "f", "c", "o")  # column-block order of kernel, recurrent_kernel and bias


class LSTMGrads(NamedTuple):
    """Gradients returned by :func:`lstm_backward` (shapes as the forward arguments)."""

    dx: np.ndarray  # (B, T, D)
    dh0: np.ndarray  # (B, H)
    dc0: np.ndarray  # (B, H)
    dkernel: np.ndarray  # (D, 4H)
    drecurrent_kernel: np.ndarray  # (H, 4H)
    dbias: np.ndarray | None  # (4H,), None when the forward had no bias


def lstm_forward(
    x,
    kernel,
    recurrent_kernel,
    bias=None,
    h0=None,
    c0=None,
    *,
    activation: ActivationLike = "tanh",
    recurrent_activation: ActivationLike = "sigmoid",
    mask=None,
    recurrent_mask=None,
):
    """Run an LSTM over a batch of sequences.

    Parameters
    ----------
    x : ndarray, (B, T, D)
        Batch-first input sequences (float32 or float64).
    kernel : ndarray, (D, 4H)
    recurrent_kernel : ndarray, (H, 4H)
    bias : ndarray, (4H,), optional
        Gate blocks in the order i, f, c, o (see the module docstring).
    h0, c0 : ndarray, (B, H), optional
        Initial hidden and cell state; zeros when omitted.
    activation : str or Activation
        Used for the candidate (3) and on the cell state in (6); Keras's ``tanh``
        by default (``softsign`` is a common alternative).
    recurrent_activation : str or Activation
        Used for the three gates (1), (2), (5); ``sigmoid`` by default.
    mask : ndarray of bool, (B, T), optional
        False marks padding steps, which carry the state through unchanged.
    recurrent_mask : ndarray, (B, H), optional
        Recurrent-dropout mask applied to h_{t-1} before the recurrent kernel.

    Returns
    -------
    hs : ndarray, (B, T, H)
        The hidden output h_t of every step.
    (h_T, c_T) : tuple of ndarray, (B, H) each
        The final states.
    cache : dict
        Everything :func:`lstm_backward` needs; treat it as opaque.
    """
    x, kernel, recurrent_kernel, bias, states, (B, T, D, H) = recurrent_args(
        x, kernel, recurrent_kernel, bias, {"h0": h0, "c0": c0}, gates=4
    )
    act = get_activation(activation, argument="activation")
    rec_act = get_activation(recurrent_activation, argument="recurrent_activation")
    valid = check_mask(mask, B, T)
    dtype = x.dtype
    rmask = check_recurrent_mask(recurrent_mask, B, H, dtype)

    xt = np.ascontiguousarray(x.transpose(1, 0, 2))  # (T, B, D) time-major so each step is contiguous
    z = xt @ kernel  # (T, B, 4H) input projection of all steps in one GEMM
    if bias is not None:
        z += bias
    gates = np.empty((T, B, 4 * H), dtype)  # (T, B, 4H) activated i, f, g, o
    hs = np.empty((T, B, H), dtype)  # (T, B, H)
    cs = np.empty((T, B, H), dtype)  # (T, B, H)
    tcs = np.empty((T, B, H), dtype)  # (T, B, H) tanh(c_t), reused by the backward of (6)
    h_prev, c_prev = states["h0"], states["c0"]  # (B, H) each
    for t in range(T):
        h_in = h_prev if rmask is None else h_prev * rmask  # (B, H) recurrent dropout
        zt = z[t] + h_in @ recurrent_kernel  # (B, 4H)
        i = rec_act(zt[:, 0:H])  # (2) input gate
        f = rec_act(zt[:, H : 2 * H])  # (1) forget gate
        g = act(zt[:, 2 * H : 3 * H])  # (3) candidate state
        o = rec_act(zt[:, 3 * H :])  # (5) output gate
        c = f * c_prev + i * g  # (4) cell state
        tc = act(c)
        h = o * tc  # (6) hidden output
        if valid is not None:  # padded steps carry h and c through unchanged
            keep = valid[:, t : t + 1]  # (B, 1)
            c = np.where(keep, c, c_prev)
            h = np.where(keep, h, h_prev)
        gates[t, :, 0:H], gates[t, :, H : 2 * H], gates[t, :, 2 * H : 3 * H], gates[t, :, 3 * H :] = i, f, g, o
        hs[t], cs[t], tcs[t] = h, c, tc
        h_prev, c_prev = h, c

    cache = dict(
        xt=xt, gates=gates, hs=hs, cs=cs, tcs=tcs, h0=states["h0"], c0=states["c0"],
        kernel=kernel, recurrent_kernel=recurrent_kernel, has_bias=bias is not None,
        act=act, rec_act=rec_act, valid=valid, rmask=rmask,
    )
    return np.ascontiguousarray(hs.transpose(1, 0, 2)), (h_prev.copy(), c_prev.copy()), cache


def lstm_backward(dhs, dh_T, dc_T, cache) -> LSTMGrads:
    """Backpropagation through time for :func:`lstm_forward`.

    Parameters
    ----------
    dhs : ndarray, (B, T, H), or None
        Gradient of the loss with respect to every hidden output ``hs``.
    dh_T, dc_T : ndarray, (B, H), or None
        Gradient with respect to the final states returned by the forward.
        ``None`` means zero (the state was not used downstream).
    cache : dict
        From :func:`lstm_forward`.

    Returns
    -------
    LSTMGrads
        ``dx, dh0, dc0, dkernel, drecurrent_kernel, dbias``.
    """
    xt, gates, hs, cs, tcs = cache["xt"], cache["gates"], cache["hs"], cache["cs"], cache["tcs"]
    kernel, recurrent_kernel = cache["kernel"], cache["recurrent_kernel"]
    act, rec_act, valid = cache["act"], cache["rec_act"], cache["valid"]
    T, B, H = hs.shape
    dtype = hs.dtype
    dhs = upstream("dhs", dhs, (B, T, H), dtype)
    dh_next = upstream("dh_T", dh_T, (B, H), dtype)
    dc_next = upstream("dc_T", dc_T, (B, H), dtype)
    dh_next = np.zeros((B, H), dtype) if dh_next is None else dh_next.copy()  # (B, H) reaching h_t from t+1
    dc_next = np.zeros((B, H), dtype) if dc_next is None else dc_next.copy()  # (B, H) reaching c_t from t+1

    dz = np.empty_like(gates)  # (T, B, 4H) gradient of the pre-activations
    for t in reversed(range(T)):
        i, f, g, o = gates[t, :, 0:H], gates[t, :, H : 2 * H], gates[t, :, 2 * H : 3 * H], gates[t, :, 3 * H :]
        c_prev = cs[t - 1] if t > 0 else cache["c0"]  # (B, H)
        dh = dh_next if dhs is None else dhs[:, t] + dh_next  # (B, H) total gradient reaching h_t
        dc = dc_next  # (B, H)
        if valid is not None:  # a padded step passed h and c through: so does its gradient
            keep = valid[:, t : t + 1]  # (B, 1)
            dh_skip, dc_skip = np.where(keep, 0.0, dh), np.where(keep, 0.0, dc)
            dh, dc = np.where(keep, dh, 0.0), np.where(keep, dc, 0.0)
        # (6) h_t = o_t * tanh(c_t)
        do = dh * tcs[t]
        dc = dc + act.backward(dh * o, tcs[t])
        # (4) c_t = f_t * c_{t-1} + i_t * g_t
        df = dc * c_prev
        di = dc * g
        dg = dc * i
        dc_next = dc * f  # the cell-state path to step t-1, through the forget gate
        # (2) (1) (3) (5): back through the gate activations to the pre-activations
        dz[t, :, 0:H] = rec_act.backward(di, i)
        dz[t, :, H : 2 * H] = rec_act.backward(df, f)
        dz[t, :, 2 * H : 3 * H] = act.backward(dg, g)
        dz[t, :, 3 * H :] = rec_act.backward(do, o)
        dh_next = dz[t] @ recurrent_kernel.T  # (B, H) the hidden-state path to step t-1
        if cache["rmask"] is not None:
            dh_next *= cache["rmask"]
        if valid is not None:
            dh_next += dh_skip
            dc_next += dc_skip

    h_prevs = np.concatenate([cache["h0"][None], hs[:-1]], axis=0)  # (T, B, H) h_{t-1} per step
    if cache["rmask"] is not None:
        h_prevs = h_prevs * cache["rmask"]
    # dx (T, B, D) to the layer below; dkernel, drecurrent_kernel, dbias: all steps in one GEMM each
    dx, dkernel, drecurrent_kernel, dbias = weight_grads(xt, dz, dz, h_prevs, kernel, cache["has_bias"])
    return LSTMGrads(np.ascontiguousarray(dx.transpose(1, 0, 2)), dh_next, dc_next, dkernel, drecurrent_kernel, dbias)
