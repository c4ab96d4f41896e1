"""Weight initializers with Keras's names and definitions.

``fan_in`` / ``fan_out`` of a 2-D kernel ``(rows, cols)`` are ``rows`` and
``cols``: for an LSTM kernel ``(D, 4H)`` Glorot uses ``D`` and ``4H``.
"""
from __future__ import annotations

import math

import numpy as np

from .. import backend
from ..registry import Registry


class Initializer:
    """Base class: ``init(shape, dtype) -> ndarray``."""

    def __init__(self, seed: int | None = None):
        self.seed = seed

    def _rng(self) -> np.random.Generator:
        return np.random.default_rng(self.seed) if self.seed is not None else backend.rng()

    def __call__(self, shape, dtype=np.float32) -> np.ndarray:
        return self.sample(tuple(shape), self._rng()).astype(dtype)

    def sample(self, shape, rng):  # pragma: no cover - abstract
        raise NotImplementedError

    def get_config(self) -> dict:
        return {"seed": self.seed}


INITIALIZERS = Registry("initializer", Initializer)


def _fans(shape):
    if len(shape) < 2:
        return shape[0] if shape else 1, shape[0] if shape else 1
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


@INITIALIZERS.register("zeros")
class Zeros(Initializer):
    def sample(self, shape, rng):
        return np.zeros(shape)


@INITIALIZERS.register("ones")
class Ones(Initializer):
    def sample(self, shape, rng):
        return np.ones(shape)


@INITIALIZERS.register("random_uniform", "uniform")
class RandomUniform(Initializer):
    def __init__(self, minval: float = -0.05, maxval: float = 0.05, seed: int | None = None):
        super().__init__(seed)
        self.minval, self.maxval = minval, maxval

    def sample(self, shape, rng):
        return rng.uniform(self.minval, self.maxval, shape)

    def get_config(self):
        return {"minval": self.minval, "maxval": self.maxval, "seed": self.seed}


@INITIALIZERS.register("random_normal", "normal")
class RandomNormal(Initializer):
    def __init__(self, mean: float = 0.0, stddev: float = 0.05, seed: int | None = None):
        super().__init__(seed)
        self.mean, self.stddev = mean, stddev

    def sample(self, shape, rng):
        return rng.normal(self.mean, self.stddev, shape)

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}


@INITIALIZERS.register("glorot_uniform")
class GlorotUniform(Initializer):
    """Xavier uniform: U(-l, l) with l = sqrt(6 / (fan_in + fan_out))."""

    def sample(self, shape, rng):
        fan_in, fan_out = _fans(shape)
        limit = math.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-limit, limit, shape)


@INITIALIZERS.register("glorot_normal")
class GlorotNormal(Initializer):
    """Xavier normal (truncated at 2 std like Keras): std = sqrt(2 / (fan_in + fan_out)) / .87962566."""

    def sample(self, shape, rng):
        fan_in, fan_out = _fans(shape)
        std = math.sqrt(2.0 / (fan_in + fan_out)) / 0.87962566103423978
        out = rng.normal(0.0, std, shape)
        bad = np.abs(out) > 2 * std
        while np.any(bad):  # redraw beyond two standard deviations
            out[bad] = rng.normal(0.0, std, int(bad.sum()))
            bad = np.abs(out) > 2 * std
        return out


@INITIALIZERS.register("orthogonal")
class Orthogonal(Initializer):
    """A (semi-)orthogonal matrix from the QR decomposition of a Gaussian one, times ``gain``."""

    def __init__(self, gain: float = 1.0, seed: int | None = None):
        super().__init__(seed)
        self.gain = gain

    def sample(self, shape, rng):
        rows, cols = math.prod(shape[:-1]), shape[-1]
        a = rng.normal(0.0, 1.0, (max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(a)
        q *= np.sign(np.diag(r))  # makes the result uniformly distributed
        if rows < cols:
            q = q.T
        return self.gain * q.reshape(shape)

    def get_config(self):
        return {"gain": self.gain, "seed": self.seed}


get, serialize, deserialize = INITIALIZERS.get, INITIALIZERS.serialize, INITIALIZERS.deserialize
