"""Metrics: running means over the batches of an epoch, weighted by positions.

``"accuracy"`` is resolved the way Keras resolves it, from the loss: binary
accuracy for binary cross-entropy (threshold 0.5 on probabilities, 0 on
logits), sparse categorical accuracy for the sparse loss, categorical accuracy
otherwise when the output has more than one unit.

Top-k accuracy counts a position as right when the target class's score is
at least the k-th largest score (ties count as in the top k, as Keras's
``in_top_k`` does). AUC, Precision and Recall, which need confusion counts
rather than a mean, are in :mod:`.metrics_confusion` (which registers them here when ``lstmlab.training`` loads).
"""
from __future__ import annotations

import numpy as np

from ..registry import Registry
from . import losses as L


class Metric:
    name = "metric"

    def __init__(self):
        self.reset()

    def reset(self):
        self.total, self.count = 0.0, 0.0

    def update(self, y, y_pred, mask=None):
        v = self.values(y, y_pred)  # one value per position
        w = np.ones(v.shape) if mask is None else np.asarray(mask, float).reshape(v.shape)
        self.total += float((v * w).sum())
        self.count += float(w.sum())

    def result(self) -> float:
        return self.total / self.count if self.count else 0.0


METRICS = Registry("metric", Metric)


class BinaryAccuracy(Metric):
    name = "accuracy"

    def __init__(self, threshold: float = 0.5):
        self.threshold = threshold
        super().__init__()

    def values(self, y, p):
        y = L._dense_targets(y, np.asarray(p))
        return np.mean((p > self.threshold) == (y > 0.5), axis=-1)


class CategoricalAccuracy(Metric):
    name = "accuracy"

    def values(self, y, p):
        y = L._dense_targets(y, np.asarray(p))
        return (np.argmax(p, -1) == np.argmax(y, -1)).astype(float)


class SparseCategoricalAccuracy(Metric):
    name = "accuracy"

    def values(self, y, p):
        p = np.asarray(p)
        return (np.argmax(p, -1) == L._labels(y, p, p.shape[-1])).astype(float)


@METRICS.register("mean_absolute_error", "mae")
class MeanAbsoluteErrorMetric(Metric):
    name = "mae"

    def values(self, y, p):
        return np.mean(np.abs(p - L._dense_targets(y, np.asarray(p))), axis=-1)


@METRICS.register("mean_squared_error", "mse")
class MeanSquaredErrorMetric(Metric):
    name = "mse"

    def values(self, y, p):
        return np.mean(np.square(p - L._dense_targets(y, np.asarray(p))), axis=-1)


def _in_top_k(labels, p, k):
    """``(...)`` bool: the score of ``labels`` is >= the k-th largest score of ``p (..., C)``."""
    if k >= p.shape[-1]:
        return np.ones(labels.shape, bool)
    kth = -np.partition(-p, k - 1, axis=-1)[..., k - 1]  # (...): the k-th largest score
    return np.take_along_axis(p, labels[..., None], axis=-1)[..., 0] >= kth


def _check_k(k):
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k: expected a positive integer, got {k!r}")
    return int(k)


@METRICS.register("top_k_categorical_accuracy")
class TopKCategoricalAccuracy(Metric):
    """How often the one-hot target's class is among the ``k`` highest scores."""

    name = "top_k_categorical_accuracy"

    def __init__(self, k=5, name="top_k_categorical_accuracy", dtype=None):
        self.k, self.name = _check_k(k), name
        super().__init__()

    def values(self, y, p):
        p = np.asarray(p)
        y = L._dense_targets(y, p)
        return _in_top_k(np.argmax(y, -1), p, self.k).astype(float)

    def get_config(self):
        return {"name": self.name, "k": self.k}


@METRICS.register("sparse_top_k_categorical_accuracy")
class SparseTopKCategoricalAccuracy(Metric):
    """How often the integer target is among the ``k`` highest scores; with ``from_sorted_ids`` the
    predictions are already class ids sorted by score and the first ``k`` are searched."""

    name = "sparse_top_k_categorical_accuracy"

    def __init__(self, k=5, name="sparse_top_k_categorical_accuracy", dtype=None, from_sorted_ids=False):
        self.k, self.name, self.from_sorted_ids = _check_k(k), name, bool(from_sorted_ids)
        super().__init__()

    def values(self, y, p):
        p = np.asarray(p)
        if self.from_sorted_ids:
            y = np.asarray(y)
            y = y[..., 0] if y.ndim == p.ndim else y  # (...)
            return np.any(p[..., : self.k] == y[..., None], axis=-1).astype(float)
        return _in_top_k(L._labels(y, p, p.shape[-1]), p, self.k).astype(float)

    def get_config(self):
        return {"name": self.name, "k": self.k, "from_sorted_ids": self.from_sorted_ids}


@METRICS.register("accuracy", "acc")
def accuracy(loss: L.Loss | None = None, output_units: int = 1) -> Metric:
    """The accuracy that fits the loss, as Keras resolves ``"accuracy"``."""
    if isinstance(loss, L.SparseCategoricalCrossentropy):
        return SparseCategoricalAccuracy()
    if isinstance(loss, L.BinaryCrossentropy):
        return BinaryAccuracy(0.0 if loss.from_logits else 0.5)
    if isinstance(loss, L.CategoricalCrossentropy) or output_units > 1:
        return CategoricalAccuracy()
    return BinaryAccuracy()


def get(spec, loss: L.Loss | None = None, output_units: int = 1) -> Metric:
    """A metric from a name (``"accuracy"`` follows the loss) or an instance (reset, as Keras resets its
    metrics at the start of each epoch and evaluation)."""
    if isinstance(spec, Metric):
        spec.reset()
        return spec
    make = METRICS.lookup(spec, argument="metrics")
    return make(loss, output_units) if make is accuracy else make()



__all__ = ["BinaryAccuracy", "CategoricalAccuracy", "METRICS", "Metric",
           "SparseCategoricalAccuracy", "SparseTopKCategoricalAccuracy", "TopKCategoricalAccuracy", "accuracy", "get"]
