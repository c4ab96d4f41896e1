"""MaxPooling1D, GlobalAveragePooling1D, GlobalMaxPooling1D (the math is :mod:`lstmlab.functional.pooling`).

Masks, as in Keras 3:

* ``MaxPooling1D`` and ``GlobalMaxPooling1D`` do not support masking: they ignore a mask and pass none on.
* ``GlobalAveragePooling1D`` consumes it: the mean is over the unmasked steps, and no mask goes on (there
  are no steps left to mask).
"""
from __future__ import annotations

from ..functional._validate import as_float_array
from ..functional.conv import conv_padding
from ..functional.pooling import (global_average_pool1d_backward, global_average_pool1d_forward,
                                  global_max_pool1d_backward, global_max_pool1d_forward, max_pool1d_backward,
                                  max_pool1d_forward)
from .base import LAYERS, Layer
from .conv import check_data_format, check_input_rank, check_padding, one_int

_STEPS = "(batch, steps, channels)"


def _input(layer: Layer, x):
    x = as_float_array("x", x).astype(layer.dtype, copy=False)
    check_input_rank(layer, x.shape, 3, _STEPS)
    return x


@LAYERS.register
class MaxPooling1D(Layer):
    """The maximum of each window of ``pool_size`` steps, one window every ``strides`` steps.

    Parameters (Keras's names and defaults)
    ----------
    pool_size : int or (int,)
    strides : int or (int,), optional
        ``None`` means ``pool_size`` (windows side by side).
    padding : {"valid", "same"}
        ``same`` gives ``ceil(steps / strides)`` outputs.
    data_format : "channels_last" or None
    """

    def __init__(self, pool_size=2, strides=None, padding: str = "valid", data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.pool_size = (one_int("pool_size", pool_size),)
        self.strides = self.pool_size if strides is None else (one_int("strides", strides),)
        self.padding = check_padding(padding, ("valid", "same"))
        self.data_format = check_data_format(data_format)

    def _out_steps(self, steps):
        if steps is None:
            return None
        out, _, _ = conv_padding(steps, self.pool_size[0], self.strides[0], self.padding)
        if out < 1:
            raise ValueError(f"x: layer {self.name!r} (pool_size={self.pool_size[0]}, padding='valid') needs at "
                             f"least {self.pool_size[0]} steps, got {steps}")
        return out

    def compute_output_shape(self, input_shape):
        check_input_rank(self, input_shape, 3, _STEPS)
        return (input_shape[0], self._out_steps(input_shape[1]), input_shape[2])

    def compute_mask(self, inputs, mask):
        return None

    def forward(self, x, training=False, mask=None):
        x = _input(self, x)
        self._out_steps(x.shape[1])
        y, cache = max_pool1d_forward(x, self.pool_size[0], self.strides[0], self.padding)  # (B, L_out, C)
        self._cache = cache if training else None
        return y

    def _backward(self, dy):
        return max_pool1d_backward(dy, self._cache), []

    def get_config(self):
        return {**super().get_config(), "pool_size": self.pool_size, "padding": self.padding,
                "strides": self.strides, "data_format": self.data_format}


class _GlobalPooling1D(Layer):
    """``(batch, steps, channels)`` -> ``(batch, channels)``, or ``(batch, 1, channels)`` with ``keepdims``."""

    def __init__(self, data_format=None, keepdims: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.data_format = check_data_format(data_format)
        if not isinstance(keepdims, bool):
            raise ValueError(f"keepdims: expected true or false, got {keepdims!r}")
        self.keepdims = keepdims

    def compute_output_shape(self, input_shape):
        check_input_rank(self, input_shape, 3, _STEPS)
        return (input_shape[0], 1, input_shape[2]) if self.keepdims else (input_shape[0], input_shape[2])

    def compute_mask(self, inputs, mask):
        return None

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format, "keepdims": self.keepdims}


@LAYERS.register
class GlobalAveragePooling1D(_GlobalPooling1D):
    """The mean over the steps; with a mask, over the unmasked steps only (Keras 3).

    A sequence whose steps are all masked gives 0 here; Keras gives NaN (0 / 0).
    """

    def forward(self, x, training=False, mask=None):
        y, cache = global_average_pool1d_forward(_input(self, x), mask, self.keepdims)  # (B, C) or (B, 1, C)
        self._cache = cache if training else None
        return y

    def _backward(self, dy):
        return global_average_pool1d_backward(dy, self._cache), []


@LAYERS.register
class GlobalMaxPooling1D(_GlobalPooling1D):
    """The maximum over all steps. Like Keras 3 it ignores a mask (padded steps take part in the max)."""

    def forward(self, x, training=False, mask=None):
        y, cache = global_max_pool1d_forward(_input(self, x), self.keepdims)  # (B, C) or (B, 1, C)
        self._cache = cache if training else None
        return y

    def _backward(self, dy):
        return global_max_pool1d_backward(dy, self._cache), []
