"""Keras's ``keras.metrics`` layout: ``from lstmlab.metrics import AUC``."""
from .training.metrics import (BinaryAccuracy, CategoricalAccuracy, Metric, SparseCategoricalAccuracy,
                               SparseTopKCategoricalAccuracy, TopKCategoricalAccuracy, get)
from .training.metrics_confusion import AUC, Precision, Recall

__all__ = ["AUC", "BinaryAccuracy", "CategoricalAccuracy", "Metric", "Precision", "Recall", "SparseCategoricalAccuracy",
           "SparseTopKCategoricalAccuracy", "TopKCategoricalAccuracy", "get"]
