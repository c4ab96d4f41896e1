"""Losses with their gradients, Keras's names and reductions.

Each loss computes a per-position value ``l`` (over the last axis) and its
gradient, then reduces like Keras's ``sum_over_batch_size``: the mean over all
positions, or, when the model's output carries a time mask, over the valid
positions only (padding contributes neither loss nor gradient).

Probabilities are clipped to ``[1e-7, 1 - 1e-7]`` as Keras does; with
``from_logits=True`` the log-sum-exp / softplus forms are used instead and
nothing is clipped.
"""
from __future__ import annotations

import numpy as np

from ..functional import log_softmax
from ..functional._validate import as_float_array
from ..registry import Registry

EPSILON = 1e-7


def _labels(y, y_pred, C):
    y = np.asarray(y)
    if np.issubdtype(y.dtype, np.floating):
        if not np.all(np.isfinite(y)):
            raise ValueError("y: expected finite values, got NaN or Inf")
        if not np.all(y == np.round(y)):
            raise ValueError("y: sparse categorical labels must be integer class ids, got non-integer values")
        y = y.astype(np.int64)
    elif not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"y: expected integer class ids, got dtype {y.dtype}")
    if y.ndim == y_pred.ndim and y.shape[-1] == 1:
        y = y[..., 0]
    if y.shape != y_pred.shape[:-1]:
        raise ValueError(f"y: expected class ids of shape {y_pred.shape[:-1]} for predictions {y_pred.shape}, got {y.shape}")
    if y.size and (y.min() < 0 or y.max() >= C):
        bad = y[(y < 0) | (y >= C)].ravel()[0]
        raise ValueError(f"y: expected class ids in [0, {C}) for {C} output units, got {int(bad)}")
    return y


def _dense_targets(y, y_pred):
    y = as_float_array("y", np.asarray(y, dtype=np.float64) if np.issubdtype(np.asarray(y).dtype, np.integer) else y)
    if y.ndim == y_pred.ndim - 1 and y_pred.shape[-1] == 1:
        y = y[..., None]
    if y.shape != y_pred.shape:
        raise ValueError(f"y: expected targets of shape {y_pred.shape} like the model output, got {y.shape}")
    return y.astype(y_pred.dtype, copy=False)


def sample_weights(sample_weight, shape: tuple, dtype) -> np.ndarray:
    """``sample_weight`` broadcast over the positions of a loss of ``shape``, as Keras lines ranks up."""
    sw = as_float_array("sample_weight", np.asarray(sample_weight, np.float64)).astype(dtype, copy=False)
    if sw.ndim == len(shape) + 1 and sw.shape[-1] == 1:
        sw = sw[..., 0]
    sw = sw.reshape(sw.shape + (1,) * (len(shape) - sw.ndim))
    try:
        return np.broadcast_to(sw, shape)
    except ValueError:
        raise ValueError(f"sample_weight: expected one weight per sample (or per position), of shape "
                         f"{shape[:1]} or {shape}, got {np.shape(sample_weight)}") from None


class Loss:
    """Base: subclasses implement ``per_position(y, y_pred) -> (l, dl)``."""

    name = "loss"
    sparse_targets = False

    def __init__(self, from_logits: bool = False):
        self.from_logits = bool(from_logits)

    def prepare_targets(self, y, y_pred):
        return _labels(y, y_pred, y_pred.shape[-1]) if self.sparse_targets else _dense_targets(y, y_pred)

    def __call__(self, y, y_pred, mask=None, sample_weight=None):
        """Return ``(loss, dloss/dy_pred)`` for a batch.

        Keras's ``sum_over_batch_size`` with its mask rule: each position's loss times its weight, summed and
        divided by the number of positions, where a mask gives the valid positions the weight
        ``positions / valid`` (so a masked batch averages over its valid positions) and ``sample_weight``
        (one per sample, or one per position) multiplies in.
        """
        y_pred = np.asarray(y_pred)
        y = self.prepare_targets(y, y_pred)
        l, dl = self.per_position(y, y_pred)  # l: y_pred.shape[:-1], dl: y_pred.shape
        n = l.size
        if n == 0:
            return 0.0, np.zeros_like(y_pred)
        w = np.ones(l.shape, y_pred.dtype)
        if mask is not None:
            m = np.asarray(mask, y_pred.dtype).reshape(l.shape)
            valid = m.sum()
            w = m * (n / valid) if valid else np.zeros_like(m)
        if sample_weight is not None:
            w = w * sample_weights(sample_weight, l.shape, y_pred.dtype)
        return float((l * w).sum() / n), (dl * (w / n)[..., None]).astype(y_pred.dtype, copy=False)

    def get_config(self) -> dict:
        return {"from_logits": self.from_logits}


LOSSES = Registry("loss", Loss)


@LOSSES.register("mean_squared_error", "mse")
class MeanSquaredError(Loss):
    name = "mean_squared_error"

    def __init__(self):
        super().__init__(False)

    def per_position(self, y, p):
        d = p - y
        return np.mean(d * d, axis=-1), 2.0 * d / d.shape[-1]

    def get_config(self):
        return {}


@LOSSES.register("mean_absolute_error", "mae")
class MeanAbsoluteError(MeanSquaredError):
    name = "mean_absolute_error"

    def per_position(self, y, p):
        d = p - y
        return np.mean(np.abs(d), axis=-1), np.sign(d) / d.shape[-1]


@LOSSES.register("binary_crossentropy")
class BinaryCrossentropy(Loss):
    """Targets are probabilities in [0, 1] (hard 0 / 1 labels or soft ones), with or without ``from_logits``.

    Others are refused: y = 2 has no meaning as a probability, and the formula would still return a finite
    loss and a gradient that trains towards nonsense (PyTorch refuses them too).
    """

    name = "binary_crossentropy"

    def prepare_targets(self, y, y_pred):
        y = super().prepare_targets(y, y_pred)
        outside = (y < 0) | (y > 1)
        if outside.any():
            raise ValueError(f"y: binary cross-entropy expects targets in [0, 1], got {y[outside].ravel()[0]:g} "
                             f"({int(outside.sum())} of {y.size} values outside)")
        return y

    def per_position(self, y, p):
        C = p.shape[-1]
        if self.from_logits:  # softplus form: max(z, 0) - z*y + log(1 + e^-|z|)
            l = np.maximum(p, 0) - p * y + np.log1p(np.exp(-np.abs(p)))
            return l.mean(axis=-1), (0.5 * (np.tanh(0.5 * p) + 1.0) - y) / C
        q = np.clip(p, EPSILON, 1.0 - EPSILON)
        l = -(y * np.log(q) + (1.0 - y) * np.log(1.0 - q))
        inside = (p > EPSILON) & (p < 1.0 - EPSILON)  # the clip has zero gradient outside
        return l.mean(axis=-1), (-y / q + (1.0 - y) / (1.0 - q)) * inside / C


@LOSSES.register("categorical_crossentropy")
class CategoricalCrossentropy(Loss):
    name = "categorical_crossentropy"

    def per_position(self, y, p):
        if self.from_logits:
            logq = log_softmax(p)
            return -(y * logq).sum(axis=-1), np.exp(logq) * y.sum(axis=-1, keepdims=True) - y
        s = p.sum(axis=-1, keepdims=True)
        q0 = p / s  # Keras renormalizes the probabilities first
        q = np.clip(q0, EPSILON, 1.0 - EPSILON)
        g = -y / q * ((q0 > EPSILON) & (q0 < 1.0 - EPSILON))  # dl/dq0
        return -(y * np.log(q)).sum(axis=-1), (g - (g * q0).sum(axis=-1, keepdims=True)) / s


@LOSSES.register("sparse_categorical_crossentropy")
class SparseCategoricalCrossentropy(CategoricalCrossentropy):
    name = "sparse_categorical_crossentropy"
    sparse_targets = True

    def per_position(self, y, p):
        onehot = np.zeros_like(p)
        np.put_along_axis(onehot, y[..., None], 1.0, axis=-1)
        return super().per_position(onehot, p)


get, serialize, deserialize = LOSSES.get, LOSSES.serialize, LOSSES.deserialize
