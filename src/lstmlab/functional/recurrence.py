"""The generic time loop: any cell's one-step math run over a sequence, forward and BPTT.

A cell gives two pure functions (see ``peephole_lstm.py`` and its siblings)::

    step(x_t, states)                        -> (out_t, new_states, step_cache)
    step_backward(dout_t, dnew_states, step_cache) -> (dx_t, dprev_states, dweights)

with ``x_t`` (B, D), ``out_t`` (B, O), ``states`` a tuple of (B, S_k) arrays
and ``dweights`` a list with one gradient per weight the step closed over
(``functools.partial`` binds the weights).  :func:`recurrence_forward` runs
``step`` for t = 0 .. T-1 and :func:`recurrence_backward` runs
``step_backward`` for t = T-1 .. 0, carrying the state gradients back in time
and summing the weight gradients over the steps::

    forward   out_t, s_t = step(x_t, s_{t-1})
    backward  dx_t, ds_{t-1}, dW_t = step_backward(dout_t + (carried), ds_t, cache_t)
              dW = sum_t dW_t

Masking
-------
``mask[b, t] == False`` skips step t for sequence b, exactly as
``lstm_forward`` does: its states are carried through unchanged and its output
is the previous step's output (before the first valid step: the initial
``states[0]`` when its width equals the output width, as h0 is the LSTM's
output, otherwise zeros).  A skipped step receives no gradient: the gradients
reaching its states and output pass through to the step they were carried
from.  The step is still *computed* for every row (one batched call); only its
result is discarded, so its gradient contributions are exactly zero.
"""
from __future__ import annotations

import numpy as np

from ._validate import as_float_array, check_mask, check_shape, upstream


def recurrence_forward(step, x, states, mask=None, need_cache: bool = True):
    """Run ``step`` over every time step of ``x``.

    Parameters
    ----------
    step : callable
        ``step(x_t (B, D), states tuple) -> (out_t (B, O), new_states tuple, step_cache)``.
    x : ndarray, (B, T, D)
        Batch-first inputs (any floating dtype).
    states : tuple of ndarray, (B, S_k) each
        The initial states, in the order the step takes them.
    mask : ndarray of bool, (B, T), optional
        False marks skipped (padding) steps; see the module docstring.
    need_cache : bool
        Keep the per-step caches for :func:`recurrence_backward` (False for inference).

    Returns
    -------
    outputs : ndarray, (B, T, O)
    final_states : tuple of ndarray
        The states after the last step (after the last *valid* step of each row).
    cache : dict
        For :func:`recurrence_backward`; opaque.
    """
    x = as_float_array("x", x, 3, what="(batch, time, features)")
    B, T, D = x.shape
    if B == 0 or T == 0:
        raise ValueError(f"x: expected at least one sequence and one time step, got shape {x.shape}")
    if not isinstance(states, (tuple, list)) or not states:
        raise ValueError(f"states: expected a non-empty tuple of (batch, width) arrays, got {type(states).__name__}")
    states = tuple(as_float_array(f"states[{k}]", s, 2, what="(batch, width)") for k, s in enumerate(states))
    for k, s in enumerate(states):
        check_shape(f"states[{k}]", s, (B, None), f"(batch={B} from x, width)")
    valid = check_mask(mask, B, T)
    states0 = states

    xt = np.ascontiguousarray(x.transpose(1, 0, 2))  # (T, B, D) time-major so each step is contiguous
    outs = None  # (T, B, O), allocated once the first step tells O
    caches = []
    for t in range(T):
        out, new, step_cache = step(xt[t], states)  # (B, O), tuple of (B, S_k)
        new = tuple(new)
        if outs is None:
            O = out.shape[1]
            outs = np.empty((T, B, O), out.dtype)  # (T, B, O)
            out_from_state0 = states0[0].shape[1] == O
            prev_out = states0[0] if out_from_state0 else np.zeros((B, O), out.dtype)  # (B, O)
        if valid is not None and not valid[:, t].all():  # skipped rows carry states and output through
            keep = valid[:, t : t + 1]  # (B, 1)
            out = np.where(keep, out, prev_out).astype(out.dtype, copy=False)
            new = tuple(np.where(keep, n, s).astype(n.dtype, copy=False) for n, s in zip(new, states))
        outs[t] = out
        prev_out, states = out, new
        if need_cache:
            caches.append(step_cache)

    cache = dict(
        caches=caches if need_cache else None, valid=valid, dims=(B, T, D, outs.shape[2]), dtype=outs.dtype,
        state_shapes=[s.shape for s in states0], out_from_state0=out_from_state0,
    )
    return np.ascontiguousarray(outs.transpose(1, 0, 2)), tuple(states), cache


def recurrence_backward(step_backward, douts, dfinal, cache):
    """Backpropagation through time for :func:`recurrence_forward`.

    Parameters
    ----------
    step_backward : callable
        ``step_backward(dout_t (B, O) or None, dnew_states tuple, step_cache)
        -> (dx_t (B, D), dprev_states tuple, dweights list)``.  The entries of
        ``dnew_states`` given to it are always arrays.
    douts : ndarray, (B, T, O), or None
        Gradient with respect to every output; None means zero.
    dfinal : tuple
        Gradient with respect to each final state; a None entry (or a None
        tuple) means zero.
    cache : dict
        From :func:`recurrence_forward` with ``need_cache=True``.

    Returns
    -------
    dx : ndarray, (B, T, D)
    dstates0 : tuple of ndarray
        Gradients with respect to the initial states.
    dweights : list
        The per-step weight gradients summed over time (None entries stay None).
    """
    if not isinstance(cache, dict) or cache.get("caches") is None:
        raise ValueError("cache: expected the cache of recurrence_forward(..., need_cache=True)")
    B, T, D, O = cache["dims"]
    dtype, valid, caches = cache["dtype"], cache["valid"], cache["caches"]
    shapes = cache["state_shapes"]
    douts = upstream("douts", douts, (B, T, O), dtype)
    dfinal = (None,) * len(shapes) if dfinal is None else tuple(dfinal)
    if len(dfinal) != len(shapes):
        raise ValueError(f"dfinal: expected {len(shapes)} entries (one per state), got {len(dfinal)}")
    dstates = [np.zeros(s, dtype) if g is None else upstream(f"dfinal[{k}]", g, s, dtype)
               for k, (g, s) in enumerate(zip(dfinal, shapes))]  # gradients reaching the states of step t

    dx = np.zeros((T, B, D), dtype)  # (T, B, D)
    dweights = None
    dcarry = None  # (B, O) gradient reaching out_t from later skipped steps that repeated it
    for t in reversed(range(T)):
        dout = None if douts is None else douts[:, t]  # (B, O)
        if dcarry is not None:
            dout = dcarry if dout is None else dout + dcarry
        dcarry, dskip = None, None
        if valid is not None and not valid[:, t].all():  # skipped rows pass their gradients to step t-1
            keep = valid[:, t : t + 1]  # (B, 1)
            dskip = [np.where(keep, 0.0, d) for d in dstates]
            dstates = [np.where(keep, d, 0.0) for d in dstates]
            if dout is not None:
                dcarry = np.where(keep, 0.0, dout)
                dout = np.where(keep, dout, 0.0)
        dx_t, dprev, dw = step_backward(dout, tuple(dstates), caches[t])
        dx[t] = dx_t
        dstates = list(dprev)
        if dskip is not None:
            dx[t] *= keep  # a skipped step's input had no effect
            dstates = [d + s for d, s in zip(dstates, dskip)]
        if dweights is None:
            dweights = [None if g is None else np.array(g, dtype) for g in dw]  # own copies, summed into
        else:
            for acc, g in zip(dweights, dw):
                if g is not None:
                    acc += g
    if dcarry is not None and cache["out_from_state0"]:  # outputs repeated from states[0] before the first step
        dstates[0] = dstates[0] + dcarry
    return np.ascontiguousarray(dx.transpose(1, 0, 2)), tuple(dstates), dweights
