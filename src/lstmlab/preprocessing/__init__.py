"""Keras's ``keras.preprocessing`` layout: ``lstmlab.preprocessing.sequence.pad_sequences``."""
from . import sequence

__all__ = ["sequence"]
