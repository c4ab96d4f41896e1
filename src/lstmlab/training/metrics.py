"""Metrics: running means over the batches of an epoch, weighted by positions.

``"accuracy"`` is resolved the way Keras resolves it, from the loss: binary
accuracy for binary cross-entropy (threshold 0.5 on probabilities, 0 on
logits), sparse categorical accuracy for the sparse loss, categorical accuracy
otherwise when the output has more than one unit.
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
    """A metric from a name (``"accuracy"`` follows the loss) or an instance."""
    if isinstance(spec, Metric):
        return spec
    make = METRICS.lookup(spec, argument="metrics")
    return make(loss, output_units) if make is accuracy else make()
