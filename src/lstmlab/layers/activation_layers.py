"""Activation and SpatialDropout1D: element-wise layers without weights that pass a mask through (Keras 3).

``Activation`` applies one of :data:`lstmlab.functional.ACTIVATIONS`; its backward is written from the output
(see :mod:`lstmlab.functional.activations`).

``SpatialDropout1D`` is dropout whose keep/drop draw is made once per (sample, channel) and shared by every
step, so a channel is dropped as a whole:

    keep[b, 0, c] ~ Bernoulli(1 - rate) / (1 - rate)          (B, 1, C)
    y[b, t, c]    = x[b, t, c] keep[b, 0, c]                   forward
    dx[b, t, c]   = dy[b, t, c] keep[b, 0, c]                  backward

Neighbouring steps of a channel are strongly correlated (after a convolution, or in embeddings), so plain
dropout of single values barely regularizes; dropping the channel does.
"""
from __future__ import annotations

import numpy as np

from .. import functional as F
from ..functional._validate import as_float_array, upstream
from .base import LAYERS, Layer
from .conv import check_input_rank
from .core import check_rate


@LAYERS.register
class Activation(Layer):
    """``y = activation(x)`` element-wise (softmax: over the last axis); passes a mask through."""

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = F.get_activation(activation)

    def forward(self, x, training=False, mask=None):
        x = as_float_array("x", x).astype(self.dtype, copy=False)
        y = self.activation(x)  # x's shape
        self._cache = y if training else None
        return y

    def _backward(self, dy):
        y = self._cache
        return self.activation.backward(upstream("dy", dy, y.shape, y.dtype), y), []

    def get_config(self):
        return {**super().get_config(), "activation": self.activation.name}


@LAYERS.register
class SpatialDropout1D(Layer):
    """Drops whole channels of ``(batch, steps, channels)`` in training; the identity in inference.

    Parameters (Keras's names and defaults)
    ----------
    rate : float in [0, 1)
        The share of channels dropped per sample; the kept ones are scaled by ``1 / (1 - rate)``.
    seed : int, optional
        Kept in the config for Keras; the draws come from the model's training generator, like
        :class:`~lstmlab.layers.Dropout`'s.
    """

    def __init__(self, rate: float, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.rate = check_rate("rate", rate)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ValueError(f"seed: expected an integer or None, got {seed!r}")
        self.seed = seed

    def compute_output_shape(self, input_shape):
        check_input_rank(self, input_shape, 3, "(batch, steps, channels)")
        return tuple(input_shape)

    def forward(self, x, training=False, mask=None):
        x = as_float_array("x", x).astype(self.dtype, copy=False)
        check_input_rank(self, x.shape, 3, "(batch, steps, channels)")
        if not training or self.rate == 0.0:
            self._cache = (np.ones((1, 1, 1), self.dtype), x.shape) if training else None  # keep everything
            return x
        B, _, C = x.shape
        keep = (self._dropout_rng().random((B, 1, C)) >= self.rate).astype(self.dtype) / (1.0 - self.rate)  # (B, 1, C)
        self._cache = (keep, x.shape)
        return x * keep  # (B, T, C)

    def _backward(self, dy):
        keep, x_shape = self._cache
        dy = upstream("dy", dy, x_shape, self.dtype)
        return dy * keep, []  # (B, T, C): a dropped channel gets no gradient at any step

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}
