"""Keras-compatible layers (see :mod:`lstmlab.layers.base` for the contract they keep)."""
from __future__ import annotations

from .base import Layer, Weight
from .core import Dense, Dropout, Embedding, Masking
from .cells import GRUCell, LSTMCell, SimpleRNNCell
from .cell_variants import LayerNormLSTMCell, PeepholeLSTMCell
from .recurrent import GRU, LSTM, SimpleRNN
from .rnn import RNN, RNNCell, StackedRNNCells
from .wrappers import Bidirectional, TimeDistributed

LAYERS = {cls.__name__: cls for cls in (Dense, Dropout, Embedding, Masking, LSTM, GRU, SimpleRNN, RNN,
                                        LSTMCell, GRUCell, SimpleRNNCell, StackedRNNCells,
                                        PeepholeLSTMCell, LayerNormLSTMCell,
                                        Bidirectional, TimeDistributed)}


def serialize(layer: Layer) -> dict:
    return {"class_name": type(layer).__name__, "config": layer.get_config()}


def deserialize(spec: dict) -> Layer:
    """A layer from ``{"class_name", "config"}``; only the registered classes above can be named."""
    if not isinstance(spec, dict):
        raise ValueError(f"layer: expected {{\"class_name\", \"config\"}}, got {type(spec).__name__}")
    name = spec.get("class_name")
    if not isinstance(name, str) or name not in LAYERS:
        raise ValueError(f"layer: unknown layer class {name!r}; expected one of {', '.join(sorted(LAYERS))}")
    return LAYERS[name].from_config(spec.get("config", {}))


__all__ = ["Layer", "Weight", "Dense", "Dropout", "Embedding", "Masking", "LSTM", "GRU", "SimpleRNN",
           "RNN", "RNNCell", "StackedRNNCells", "LSTMCell", "GRUCell", "SimpleRNNCell",
           "PeepholeLSTMCell", "LayerNormLSTMCell",
           "Bidirectional", "TimeDistributed", "serialize", "deserialize"]
