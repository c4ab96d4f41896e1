"""Keras's ``keras.metrics`` layout: ``from lstmlab.metrics import BinaryAccuracy``."""
from .training.metrics import (BinaryAccuracy, CategoricalAccuracy, Metric, SparseCategoricalAccuracy, get)

__all__ = ["BinaryAccuracy", "CategoricalAccuracy", "Metric", "SparseCategoricalAccuracy", "get"]
