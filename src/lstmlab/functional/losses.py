"""Softmax cross-entropy, the loss of every character model.

    loss = -mean_n log softmax(logits_n)[y_n]
    dlogits_n = (softmax(logits_n) - onehot(y_n)) / N

Computed through ``log_softmax`` (max-shifted), so large logits neither
overflow nor produce ``log(0)``.
"""
from __future__ import annotations

import numpy as np

from ._validate import as_float_array, check_shape
from .activations import log_softmax


def softmax_cross_entropy_forward(logits, targets):
    """Mean cross-entropy between ``softmax(logits)`` and ``targets``.

    Parameters
    ----------
    logits : ndarray, (..., C)
        Unnormalized scores over C classes.
    targets : ndarray
        Either integer class ids of shape ``logits.shape[:-1]`` with values in
        ``[0, C)``, or a probability distribution of shape ``logits.shape``.

    Returns
    -------
    loss : float
        Mean over all leading positions, in nats.
    cache : dict
    """
    logits = as_float_array("logits", logits)
    if logits.ndim < 1 or logits.shape[-1] < 1:
        raise ValueError(f"logits: expected shape (..., classes) with at least one class, got {logits.shape}")
    C = logits.shape[-1]
    targets = np.asarray(targets)
    logp = log_softmax(logits)  # (..., C)
    if np.issubdtype(targets.dtype, np.integer):
        check_shape("targets", targets, logits.shape[:-1], "(integer class ids, one per row of logits)")
        if targets.size and (targets.min() < 0 or targets.max() >= C):
            bad = targets[(targets < 0) | (targets >= C)].ravel()[0]
            raise ValueError(f"targets: expected class ids in [0, {C}), got {int(bad)}")
        probs_t = None
        picked = np.take_along_axis(logp, targets[..., None], axis=-1)[..., 0]  # (...)
        loss = -picked.mean()
    else:
        probs_t = as_float_array("targets", targets)
        check_shape("targets", probs_t, logits.shape, "(class probabilities matching logits)")
        loss = -(probs_t * logp).sum(axis=-1).mean()
    return float(loss), dict(logp=logp, targets=targets if probs_t is None else probs_t, sparse=probs_t is None)


def softmax_cross_entropy_backward(dloss, cache) -> np.ndarray:
    """Gradient with respect to the logits, scaled by the upstream ``dloss`` (a scalar)."""
    logp, targets = cache["logp"], cache["targets"]
    n = logp[..., 0].size  # number of rows the mean is taken over
    dlogits = np.exp(logp)  # (..., C) softmax
    if cache["sparse"]:
        np.put_along_axis(dlogits, targets[..., None], np.take_along_axis(dlogits, targets[..., None], -1) - 1.0, -1)
    else:
        dlogits = dlogits * targets.sum(axis=-1, keepdims=True) - targets
    return dlogits * (float(dloss) / n)
