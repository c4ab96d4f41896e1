"""Keras-compatible layers (see :mod:`lstmlab.layers.base` for the contract they keep).

Every layer and cell registers itself in :data:`LAYERS` where it is defined; a file can name only those.
"""
from __future__ import annotations

import re

from .base import LAYERS, Layer, Weight
from .core import Dense, Dropout, Embedding, Masking
from .input_layer import Input, InputLayer
from .cells import GRUCell, LSTMCell, SimpleRNNCell
from .cell_variants import LayerNormLSTMCell, PeepholeLSTMCell
from .recurrent import GRU, LSTM, SimpleRNN
from .rnn import RNN, RNNCell, StackedRNNCells
from .wrappers import Bidirectional, TimeDistributed
from .merging import Add, Average, Concatenate, Maximum, Minimum, Multiply, Subtract
from .normalization import BatchNormalization, LayerNormalization
from .attention import AdditiveAttention, Attention

serialize, deserialize = LAYERS.serialize, LAYERS.deserialize


def cell_kinds() -> dict[str, type]:
    """Every registered cell by its short name, in the order they were registered.

    The short name is the class name without ``Cell`` (and without Keras's ``Simple``, which only tells
    ``SimpleRNN`` from the generic ``RNN`` layer), in snake case: ``LSTMCell`` -> ``lstm``,
    ``SimpleRNNCell`` -> ``rnn``, ``PeepholeLSTMCell`` -> ``peephole_lstm``.
    """
    kinds = {}
    for name, cls in LAYERS.items():
        if isinstance(cls, type) and issubclass(cls, RNNCell) and name == cls.__name__ and name.endswith("Cell"):
            stem = name[: -len("Cell")].removeprefix("Simple")
            kinds.setdefault(re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", stem).lower(), cls)
    return kinds


def recurrent_layer(kind: str, units: int, *, argument: str = "cell", **kwargs) -> RNN:
    """The recurrent layer of cell ``kind`` (a :func:`cell_kinds` name) with ``units`` units.

    A cell with a layer of its own is built as that layer (``lstm`` -> ``LSTM``, so files name it as Keras
    does); any other cell as ``RNN(cell)``. ``kwargs`` are the layer's (``return_sequences``, ``name``, ...).
    """
    kinds = cell_kinds()
    if kind not in kinds:
        raise ValueError(f"{argument}: expected one of {', '.join(kinds)}, got {kind!r}")
    cell = kinds[kind]
    for _, cls in LAYERS.items():
        if getattr(cls, "cell_class", None) is cell:
            return cls(units, **kwargs)
    return RNN(cell(units), **kwargs)


__all__ = ["Layer", "Weight", "Input", "InputLayer", "Dense", "Dropout", "Embedding", "Masking", "LSTM", "GRU", "SimpleRNN",
           "RNN", "RNNCell", "StackedRNNCells", "LSTMCell", "GRUCell", "SimpleRNNCell",
           "PeepholeLSTMCell", "LayerNormLSTMCell",
           "Bidirectional", "TimeDistributed",
           "Add", "Average", "Concatenate", "Maximum", "Minimum", "Multiply", "Subtract",
           "BatchNormalization", "LayerNormalization", "AdditiveAttention", "Attention", "LAYERS", "serialize", "deserialize", "cell_kinds", "recurrent_layer"]

# Convolution, pooling, reshaping, Activation and SpatialDropout1D (one block, so other additions merge cleanly).
from .conv import Conv1D  # noqa: E402
from .pooling import GlobalAveragePooling1D, GlobalMaxPooling1D, MaxPooling1D  # noqa: E402
from .reshaping import Flatten, RepeatVector, Reshape  # noqa: E402
from .activation_layers import Activation, SpatialDropout1D  # noqa: E402

__all__ += ["Conv1D", "MaxPooling1D", "GlobalAveragePooling1D", "GlobalMaxPooling1D", "Flatten", "Reshape",
            "RepeatVector", "Activation", "SpatialDropout1D"]
