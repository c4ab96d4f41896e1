"""``Input`` and ``InputLayer``: where a functional graph starts."""
from __future__ import annotations

import numpy as np

from .. import backend
from .base import LAYERS, Layer
from .symbolic import KerasTensor, Node

_INPUT_DTYPES = ("float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool")


def _check_shape(argument: str, shape) -> tuple:
    if shape is None:
        return None
    if isinstance(shape, (int, np.integer)) and not isinstance(shape, bool):
        shape = (shape,)
    if not isinstance(shape, (tuple, list)) or not all(
            s is None or (isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s > 0) for s in shape):
        raise ValueError(f"{argument}: expected a tuple of positive integers or None, got {shape!r}")
    return tuple(None if s is None else int(s) for s in shape)


@LAYERS.register
class InputLayer(Layer):
    """The first layer of a functional graph: holds the input's shape and dtype; its call is the identity."""

    def __init__(self, shape=None, batch_size=None, dtype=None, sparse=None, batch_shape=None, name=None,
                 input_tensor=None, optional=False, **kwargs):
        shape = _check_shape("shape", shape)
        batch_shape = _check_shape("batch_shape", batch_shape)
        if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer))
                                       or batch_size < 1):
            raise ValueError(f"batch_size: expected a positive integer or None, got {batch_size!r}")
        if sparse:
            raise ValueError("sparse: lstmlab has no sparse tensors; pass sparse=False")
        if batch_shape is None:
            if shape is None:
                raise ValueError("shape: Input() needs shape= (without the batch axis) or batch_shape=")
            batch_shape = (batch_size,) + shape
        dtype_name = "float32" if dtype is None else np.dtype(dtype).name
        if dtype_name not in _INPUT_DTYPES:
            raise ValueError(f"dtype: expected one of {', '.join(_INPUT_DTYPES)}, got {dtype!r}")
        super().__init__(name=name if name is not None else backend.unique_name("input_layer"),
                         dtype=dtype_name if dtype_name in backend._VALID_FLOATX else None)
        self.input_dtype = dtype_name
        self.batch_shape = batch_shape
        self.optional = bool(optional)
        self.built = True
        self.output = KerasTensor(batch_shape, dtype_name, self.name, (self, 0, 0))
        self._inbound_nodes = [Node(self, [], {}, self.output)]

    def compute_output_shape(self, input_shape):
        return self.batch_shape

    def forward(self, x, training=False, mask=None):
        return x

    def _backward(self, dy):
        return dy, []

    def get_config(self):
        return {"name": self.name, "batch_shape": list(self.batch_shape), "dtype": self.input_dtype,
                "sparse": False}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if not isinstance(config.get("name"), str):
            raise ValueError(f"name: expected a string, got {config.get('name')!r}")
        allowed = {"name", "batch_shape", "dtype", "sparse", "shape", "batch_size", "optional"}
        unknown = sorted(set(config) - allowed)
        if unknown:
            raise ValueError(f"InputLayer: unknown argument(s) {', '.join(unknown)}")
        return cls(**config)


def Input(shape=None, batch_size=None, dtype=None, sparse=None, batch_shape=None, name=None, tensor=None,
          optional=False):
    """A symbolic input of a functional model (Keras's ``keras.Input``).

    >>> x = Input(shape=(None, 8))            # (batch, time, features), any batch and time
    >>> y = layers.LSTM(16)(x)
    >>> model = Model(x, y)
    """
    if tensor is not None:
        raise ValueError("tensor: lstmlab's Input() does not wrap an existing tensor; pass shape= instead")
    return InputLayer(shape=shape, batch_size=batch_size, dtype=dtype, sparse=sparse, batch_shape=batch_shape,
                      name=name, optional=optional).output
