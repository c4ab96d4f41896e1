"""Flatten, Reshape and RepeatVector: layers that move values around without changing them.

None has weights. Their backward undoes the move: a reshape's gradient is the upstream gradient reshaped
back, a repeat's is the sum over the copies. Like Keras 3 none of them supports masking: a mask that comes
in is not passed on (after a reshape its steps are no longer the input's).
"""
from __future__ import annotations

import math

import numpy as np

from ..functional._validate import as_float_array, upstream
from .base import LAYERS, Layer
from .conv import check_data_format
from .core import check_positive_int


def _float_input(layer: Layer, x, min_ndim: int = 1) -> np.ndarray:
    x = as_float_array("x", x).astype(layer.dtype, copy=False)
    if x.ndim < min_ndim:
        raise ValueError(f"x: layer {layer.name!r} expects at least a {min_ndim}-D input (batch first), got shape "
                         f"{x.shape}")
    return x


@LAYERS.register
class Flatten(Layer):
    """``(batch, d1, d2, ...)`` -> ``(batch, d1 * d2 * ...)``; a ``(batch,)`` input becomes ``(batch, 1)``."""

    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = check_data_format(data_format)

    def compute_output_shape(self, input_shape):
        rest = tuple(input_shape[1:])
        return (input_shape[0], None if None in rest else math.prod(rest))

    def compute_mask(self, inputs, mask):
        return None

    def forward(self, x, training=False, mask=None):
        x = _float_input(self, x)
        self._cache = x.shape if training else None
        return x.reshape(x.shape[0], math.prod(x.shape[1:]))  # (B, prod(rest)); an empty prod is 1

    def _backward(self, dy):
        x_shape = self._cache
        dy = upstream("dy", dy, (x_shape[0], math.prod(x_shape[1:])), self.dtype)
        return dy.reshape(x_shape), []  # (B, d1, d2, ...)

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format}


def check_target_shape(target_shape) -> tuple:
    """Positive ints, with at most one ``-1`` (the size the others leave)."""
    ok = isinstance(target_shape, (list, tuple)) and all(
        isinstance(d, (int, np.integer)) and not isinstance(d, bool) and (d >= 1 or d == -1) for d in target_shape)
    if not ok:
        raise ValueError(f"target_shape: expected a list of positive integers with at most one -1, got "
                         f"{target_shape!r}")
    if list(target_shape).count(-1) > 1:
        raise ValueError(f"target_shape: at most one dimension can be -1, got {tuple(target_shape)}")
    return tuple(int(d) for d in target_shape)


@LAYERS.register
class Reshape(Layer):
    """Each sample reshaped to ``target_shape`` (the batch axis is kept); one entry may be -1."""

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        self.target_shape = check_target_shape(target_shape)

    def _resolve(self, rest: tuple) -> tuple:
        """``target_shape`` with its -1 filled in for a sample of shape ``rest``; ``None`` dims stay unknown."""
        if None in rest:
            return tuple(None if d == -1 else d for d in self.target_shape)
        size, known = math.prod(rest), math.prod(d for d in self.target_shape if d != -1)
        if -1 not in self.target_shape:
            if size == known:
                return self.target_shape
        elif size % known == 0:
            return tuple(size // known if d == -1 else d for d in self.target_shape)
        raise ValueError(f"x: layer {self.name!r} cannot reshape a sample of shape {tuple(rest)} ({size} values) "
                         f"to target_shape={self.target_shape}")

    def compute_output_shape(self, input_shape):
        return (input_shape[0],) + self._resolve(tuple(input_shape[1:]))

    def compute_mask(self, inputs, mask):
        return None

    def forward(self, x, training=False, mask=None):
        x = _float_input(self, x)
        self._cache = x.shape if training else None
        return x.reshape((x.shape[0],) + self._resolve(x.shape[1:]))  # (B, *target_shape)

    def _backward(self, dy):
        x_shape = self._cache
        dy = upstream("dy", dy, (x_shape[0],) + self._resolve(x_shape[1:]), self.dtype)
        return dy.reshape(x_shape), []  # (B, *input sample shape)

    def get_config(self):
        return {**super().get_config(), "target_shape": self.target_shape}


@LAYERS.register
class RepeatVector(Layer):
    """``(batch, features)`` -> ``(batch, n, features)``: the vector repeated ``n`` times along a new time axis.

    The usual bridge from an encoder's last state to a decoder that wants ``n`` steps.
    """

    def __init__(self, n: int, **kwargs):
        super().__init__(**kwargs)
        self.n = check_positive_int("n", n)

    def _check(self, shape) -> None:
        if len(shape) != 2:
            raise ValueError(f"x: layer {self.name!r} expects a 2-D input (batch, features), got shape "
                             f"{tuple(shape)}")

    def compute_output_shape(self, input_shape):
        self._check(input_shape)
        return (input_shape[0], self.n, input_shape[1])

    def compute_mask(self, inputs, mask):
        return None

    def forward(self, x, training=False, mask=None):
        x = _float_input(self, x)
        self._check(x.shape)
        self._cache = x.shape if training else None
        return np.repeat(x[:, None, :], self.n, axis=1)  # (B, n, D)

    def _backward(self, dy):
        B, D = self._cache
        dy = upstream("dy", dy, (B, self.n, D), self.dtype)
        return dy.sum(axis=1), []  # (B, D): every copy's gradient flows to the one vector

    def get_config(self):
        return {**super().get_config(), "n": self.n}
