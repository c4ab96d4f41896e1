"""Keras's ``keras.losses`` layout: ``from lstmlab.losses import SparseCategoricalCrossentropy``."""
from .training.losses import (BinaryCrossentropy, CategoricalCrossentropy, Loss, MeanAbsoluteError,
                              MeanSquaredError, SparseCategoricalCrossentropy, get, serialize)

__all__ = ["BinaryCrossentropy", "CategoricalCrossentropy", "Loss", "MeanAbsoluteError", "MeanSquaredError",
           "SparseCategoricalCrossentropy", "get", "serialize"]
