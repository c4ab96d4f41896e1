"""Keras's ``keras.metrics`` layout: ``from lstmlab.metrics import AUC``."""
from .training.metrics import (AUC, BinaryAccuracy, CategoricalAccuracy, Metric, Precision, Recall,
                               SparseCategoricalAccuracy, SparseTopKCategoricalAccuracy, TopKCategoricalAccuracy, get)

__all__ = ["AUC", "BinaryAccuracy", "CategoricalAccuracy", "Metric", "Precision", "Recall", "SparseCategoricalAccuracy",
           "SparseTopKCategoricalAccuracy", "TopKCategoricalAccuracy", "get"]
