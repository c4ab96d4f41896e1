"""Keras's ``keras.preprocessing.sequence``: the same ``pad_sequences`` as :mod:`lstmlab.utils`."""
from ..utils.sequence import pad_sequences

__all__ = ["pad_sequences"]
