"""Keras's ``keras.regularizers`` layout: ``from lstmlab.regularizers import L2``."""
from .layers.regularizers import L1, L2, L1L2, get, l1_l2, serialize

__all__ = ["L1", "L2", "L1L2", "get", "l1_l2", "serialize"]
