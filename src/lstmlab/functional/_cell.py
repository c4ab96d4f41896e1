"""Pieces of one-step cell math that several cells share.

The LSTM variants (peephole, projection, layer-norm) all run the same cell
update and hidden output around different pre-activations; the GRU variants
and the LSTMs all multiply a fused gate matrix.  Each piece has its backward
beside it, and the cells number the equations themselves: the helpers only
say which standard LSTM equation they compute (see ``functional/lstm.py``).
"""
from __future__ import annotations

import numpy as np

from ._validate import as_float_array, check_recurrent_mask, check_shape, common_dtype


def fused_weight_shapes(input_dim: int, units: int, gates: int, use_bias: bool, recurrent_rows: int | None = None):
    """The fused gate weights every gated cell starts with: kernel, recurrent_kernel and (optionally) bias.

    ``recurrent_rows`` is the width of the state the recurrent kernel reads (``units`` unless projected).
    """
    rows = units if recurrent_rows is None else recurrent_rows
    shapes = {"kernel": (input_dim, gates * units), "recurrent_kernel": (rows, gates * units)}
    if use_bias:
        shapes["bias"] = (gates * units,)
    return shapes


def blocks(a: np.ndarray, n: int) -> tuple:
    """Split the last axis of a fused gate array into ``n`` equal column blocks (views).

    ``(B, n*H) -> n arrays of (B, H)``, in the order the fused layout stores them.
    """
    H = a.shape[-1] // n
    return tuple(a[..., k * H : (k + 1) * H] for k in range(n))


def matmul_backward(dy: np.ndarray, x: np.ndarray, w: np.ndarray):
    """``y = x @ w`` backwards: ``(dx, dw) = (dy @ w.T, x.T @ dy)``."""
    return dy @ w.T, x.T @ dy  # (B, D), (D, N)


def bias_grad(dz: np.ndarray, bias) -> np.ndarray | None:
    """The bias gradient (the batch sum of ``dz``), or None for a cell without bias."""
    return None if bias is None else dz.sum(axis=0)  # (N,)


def gates_forward(x, h_in, kernel, recurrent_kernel, bias):
    """The fused pre-activations of all gate blocks: ``z = x @ kernel + h_in @ recurrent_kernel + bias``."""
    z = x @ kernel + h_in @ recurrent_kernel  # (B, gH)
    if bias is not None:
        z += bias
    return z


def gates_backward(dz, x, h_in, kernel, recurrent_kernel, bias, rmask):
    """Backward of :func:`gates_forward`: ``(dx, dh_prev, dkernel, drecurrent_kernel, dbias)``.

    ``h_in`` is h_{t-1} after recurrent dropout; ``rmask`` (or None) is that
    dropout mask, applied again on the way back.
    """
    dx, dkernel = matmul_backward(dz, x, kernel)  # (B, D), (D, gH)
    dh_prev, drecurrent_kernel = matmul_backward(dz, h_in, recurrent_kernel)  # (B, S), (S, gH)
    if rmask is not None:
        dh_prev *= rmask
    return dx, dh_prev, dkernel, drecurrent_kernel, bias_grad(dz, bias)


def weight_list(*grads) -> list:
    """The weight gradients in ``weight_shapes`` order: a None (the missing bias) is left out."""
    return [g for g in grads if g is not None]


def or_zeros(g, like: np.ndarray) -> np.ndarray:
    """An upstream gradient, with ``None`` meaning zero."""
    return np.zeros_like(like) if g is None else g


# --- the LSTM cell update and hidden output, shared by every LSTM variant -------------------------------------


def lstm_cell_forward(zi, zf, zg, c_prev, act, rec_act):
    """LSTM equations (1)-(4): input, forget gates, candidate and the new cell state (all (B, H))."""
    i = rec_act(zi)  # input gate
    f = rec_act(zf)  # forget gate
    g = act(zg)  # candidate state
    c = f * c_prev + i * g  # cell state
    return i, f, g, c


def lstm_cell_backward(dc, i, f, g, c_prev, act, rec_act):
    """Backward of :func:`lstm_cell_forward`: ``(dzi, dzf, dzg, dc_prev)`` from the total ``dc``."""
    dzi = rec_act.backward(dc * g, i)  # c = f c_prev + i g, through sigma
    dzf = rec_act.backward(dc * c_prev, f)
    dzg = act.backward(dc * i, g)
    return dzi, dzf, dzg, dc * f  # dc * f: the cell-state path back in time


def lstm_output_forward(zo, c, act, rec_act):
    """LSTM equations (5)-(6): output gate and hidden output; returns ``(o, tanh(c), h)``."""
    o = rec_act(zo)  # output gate
    tc = act(c)
    return o, tc, o * tc  # h = o * tanh(c)


def lstm_output_backward(dh, o, tc, act, rec_act):
    """Backward of :func:`lstm_output_forward`: ``(dzo, dc)``, dc being the part that flows through h."""
    dzo = rec_act.backward(dh * tc, o)
    dc = act.backward(dh * o, tc)
    return dzo, dc


# --- argument checks of one step ------------------------------------------------------------------------------


def step_args(x_t, states, state_widths, weights, shapes, recurrent_mask=None, mask_width=None):
    """Check one step's arguments and bring them to one floating dtype.

    Parameters
    ----------
    x_t : array, (B, D)
    states : sequence of arrays, (B, width) each
    state_widths : sequence of (name, width)
        The expected state names and widths, in order.
    weights : dict name -> array or None
        ``None`` is allowed only for ``bias`` (a cell without bias).
    shapes : dict name -> shape
        The expected shapes (from the cell's ``weight_shapes``).
    recurrent_mask : array, (B, mask_width), optional
    mask_width : int
        The width of the state the recurrent-dropout mask multiplies.

    Returns
    -------
    x_t, states (tuple), weights (dict), recurrent_mask
        In the common dtype of the inputs, states and weights.

    Finiteness is not checked here (the loop checks x and the initial states once).
    """
    x_t = as_float_array("x_t", x_t, 2, what="(batch, features)", finite=False)
    B = x_t.shape[0]
    if not isinstance(states, (tuple, list)) or len(states) != len(state_widths):
        names = ", ".join(n for n, _ in state_widths)
        got = type(states).__name__ + (f" of length {len(states)}" if isinstance(states, (tuple, list)) else "")
        raise ValueError(f"states: expected a tuple of {len(state_widths)} arrays ({names}), got {got}")
    checked = []
    for s, (name, width) in zip(states, state_widths):
        s = as_float_array(name, s, 2, what="(batch, units)", finite=False)
        check_shape(name, s, (B, width), f"(batch={B}, {width})")
        checked.append(s)
    ws = {}
    for name, w in weights.items():
        if w is None:
            if name != "bias":
                raise ValueError(f"{name}: expected an array of shape {shapes[name]}, got None")
            ws[name] = None
            continue
        w = as_float_array(name, w, len(shapes[name]), finite=False)
        check_shape(name, w, shapes[name])
        ws[name] = w
    dtype = common_dtype(x_t, *checked, *ws.values())
    cast = lambda a: None if a is None else a.astype(dtype, copy=False)  # noqa: E731
    rmask = check_recurrent_mask(recurrent_mask, B, mask_width, dtype) if recurrent_mask is not None else None
    return cast(x_t), tuple(cast(s) for s in checked), {k: cast(w) for k, w in ws.items()}, rmask


def input_dim_of(kernel, gates: int, what: str = "kernel") -> tuple[int, int]:
    """``(D, H)`` read from a kernel of shape ``(D, gates*H)``, with a clear error for a wrong width."""
    k = as_float_array(what, kernel, 2, what=f"(input_dim, {gates}*units)", finite=False)
    if k.shape[1] == 0 or k.shape[1] % gates:
        raise ValueError(f"{what}: expected shape (input_dim, {gates}*units) with a positive multiple of {gates} "
                         f"columns, got {k.shape}")
    return k.shape[0], k.shape[1] // gates
