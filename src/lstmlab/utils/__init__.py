"""Keras's ``keras.utils``: data helpers that Keras programs import from here.

``pad_sequences`` and ``to_categorical`` prepare arrays; ``timeseries_dataset_from_array`` cuts windows
out of a series; ``PyDataset`` is the base class of batch-indexed datasets; ``get_file`` downloads into
a cache (``$LSTMLAB_HOME`` or ``~/.lstmlab``); ``set_random_seed`` is :func:`lstmlab.backend.set_random_seed`.
"""
from ..backend import set_random_seed
from .files import get_file
from .numerical import to_categorical
from .py_dataset import PyDataset
from .sequence import pad_sequences
from .timeseries import timeseries_dataset_from_array

__all__ = ["get_file", "pad_sequences", "PyDataset", "set_random_seed", "timeseries_dataset_from_array",
           "to_categorical"]
