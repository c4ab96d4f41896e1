"""Luong (dot-product / concat) and Bahdanau (additive) attention, forward and backward.

Keras 3's ``Attention`` and ``AdditiveAttention`` (``keras/src/layers/attention/``), step by step.
Shapes: query ``q (B, Tq, D)``, key ``k (B, Tv, D)``, value ``v (B, Tv, Dv)``.

Equations
---------
Scores, one of::

    (1a) dot       s = (q @ k^T) * scale                           scale: scalar weight, or 1
    (1b) concat    s = w * sum_d tanh(scale * (q_i + k_j))_d       w, scale: scalar weights (scale or 1)
    (1c) additive  s = sum_d c_d * tanh(q_i + k_j)_d               c: (D,) weight, or ones

(1b) and (1c) are one form, ``s = sum_d outer_d * tanh(inner * (q_i + k_j))_d``, so they share code.
Then::

    (2) masked     s' = s - 1e9 where the score mask is False        (a constant: ds' = ds)
                   score mask = value_mask (B, 1, Tv) AND causal (1, Tq, Tv) [j <= i]
    (3) weights    a = softmax(s') over Tv
    (4) dropout    a' = a * keep                                     keep: 0 or 1/(1-rate); training only
    (5) output     o = a' @ v                                        (B, Tq, Dv)
    (6) query mask o' = o where query_mask, else 0

The layer returns ``o'`` and, when asked, the scores ``a'`` (after dropout, as Keras).

Backward::

    (6) do = do' * query_mask
    (5) da' = do @ v^T (+ the scores' own upstream gradient)     dv = a'^T @ do
    (4) da = da' * keep
    (3) ds = a * (da - sum_j(da * a))
    (1) through the score function.
"""
from __future__ import annotations

import numpy as np

MASK_SHIFT = 1.0e9  # Keras subtracts this from masked scores (65504 in float16, which we do not run)


# -- (1a) dot scores -------------------------------------------------------------------------------
def dot_scores_forward(q, k, scale=None):
    """(1a): ``s = (q @ k^T) * scale``; returns ``(s (B, Tq, Tv), cache)``."""
    raw = q @ np.swapaxes(k, -1, -2)  # (B, Tq, Tv)
    s = raw if scale is None else raw * scale
    return s, (q, k, raw, scale)


def dot_scores_backward(ds, cache):
    """Gradients of (1a): ``(dq, dk, dscale)``; ``dscale`` is None without a scale."""
    q, k, raw, scale = cache
    dscale = None if scale is None else np.sum(ds * raw).reshape(np.shape(scale))
    draw = ds if scale is None else ds * scale
    return draw @ k, np.swapaxes(draw, -1, -2) @ q, dscale  # (B, Tq, D), (B, Tv, D)


# -- (1b), (1c) tanh scores ------------------------------------------------------------------------
def tanh_scores_forward(q, k, inner=None, outer=None):
    """(1b) / (1c): ``s = sum_d outer_d * tanh(inner * (q_i + k_j))_d``.

    Parameters
    ----------
    q : (B, Tq, D)
    k : (B, Tv, D)
    inner : scalar array or None (1)
    outer : scalar array, (D,) array, or None (1)

    Returns
    -------
    s : (B, Tq, Tv)
    cache
    """
    qk = q[:, :, None, :] + k[:, None, :, :]  # (B, Tq, Tv, D): every query against every key
    t = np.tanh(qk if inner is None else inner * qk)
    s = t.sum(axis=-1) if outer is None else (outer * t).sum(axis=-1)  # (B, Tq, Tv)
    return s, (qk, t, inner, outer)


def tanh_scores_backward(ds, cache):
    """Gradients of :func:`tanh_scores_forward`: ``(dq, dk, dinner, douter)`` (None for an absent weight)."""
    qk, t, inner, outer = cache
    ds4 = ds[..., None]  # (B, Tq, Tv, 1)
    if outer is None:
        douter, dt = None, np.broadcast_to(ds4, t.shape)
    elif np.ndim(outer) == 0:
        douter, dt = np.sum(ds4 * t).reshape(np.shape(outer)), ds4 * outer
    else:
        douter, dt = (ds4 * t).sum(axis=(0, 1, 2)), ds4 * outer  # (D,)
    dpre = dt * (1.0 - t * t)  # tanh' = 1 - tanh^2
    dinner = None if inner is None else np.sum(dpre * qk).reshape(np.shape(inner))
    dqk = dpre if inner is None else dpre * inner
    return dqk.sum(axis=2), dqk.sum(axis=1), dinner, douter  # (B, Tq, D), (B, Tv, D)


# -- (2)-(6) masks, softmax, dropout, weighted sum -------------------------------------------------
def score_mask(value_mask, tq: int, tv: int, causal: bool):
    """The score mask of (2): ``(B, 1, Tv)``, ``(1, Tq, Tv)``, ``(B, Tq, Tv)`` or None (all valid)."""
    m = None if value_mask is None else np.asarray(value_mask, bool)[:, None, :]  # (B, 1, Tv)
    if causal:
        # query i sees keys j <= i, Keras's cumsum-of-ones rule (also for Tq != Tv)
        c = (np.arange(tq)[:, None] >= np.arange(tv)[None, :])[None]  # (1, Tq, Tv)
        m = c if m is None else m & c
    return m


def apply_scores_forward(s, v, mask=None, keep=None, query_mask=None):
    """(2)-(6).

    Parameters
    ----------
    s : (B, Tq, Tv) scores
    v : (B, Tv, Dv) values
    mask : bool, broadcastable to (B, Tq, Tv), optional
    keep : (B, Tq, Tv) dropout multipliers (0 or 1/(1-rate)), optional
    query_mask : bool (B, Tq), optional

    Returns
    -------
    o : (B, Tq, Dv)
    a : (B, Tq, Tv) the attention weights after dropout
    cache
    """
    if mask is not None:
        s = np.where(mask, s, s - MASK_SHIFT)  # (2)
    e = np.exp(s - s.max(axis=-1, keepdims=True))
    a = e / e.sum(axis=-1, keepdims=True)  # (3)
    ad = a if keep is None else a * keep  # (4)
    o = ad @ v  # (5): (B, Tq, Dv)
    qm = None if query_mask is None else np.asarray(query_mask, bool)[..., None]  # (B, Tq, 1)
    if qm is not None:
        o = np.where(qm, o, 0.0).astype(o.dtype, copy=False)  # (6)
    return o, ad, (a, ad, v, keep, qm)


def apply_scores_backward(do, cache, da_out=None):
    """Gradients of :func:`apply_scores_forward`: ``(ds, dv)``.

    ``da_out`` is the upstream gradient of the returned weights ``a'`` (None: they fed nothing).
    """
    a, ad, v, keep, qm = cache
    if qm is not None:
        do = np.where(qm, do, 0.0)  # (6)
    dv = np.swapaxes(ad, -1, -2) @ do  # (5): (B, Tv, Dv)
    dad = do @ np.swapaxes(v, -1, -2)  # (B, Tq, Tv)
    if da_out is not None:
        dad = dad + da_out
    da = dad if keep is None else dad * keep  # (4)
    ds = a * (da - (da * a).sum(axis=-1, keepdims=True))  # (3); (2) shifts by a constant
    return ds, dv
