"""Activation functions and their derivatives.

Every activation here can express its backward from its *output* alone, so a
recurrent cell caches the gate values it already computed and never has to
recompute or store the pre-activations:

    sigmoid       y = 1 / (1 + e^-z)              dy/dz = y (1 - y)
    tanh          y = tanh z                      dy/dz = 1 - y^2
    hard_sigmoid  y = clip(z / 6 + 1/2, 0, 1)     dy/dz = 1/6 where 0 < y < 1, else 0
    softsign      y = z / (1 + |z|)               dy/dz = 1 / (1 + |z|)^2 = (1 - |y|)^2
    relu          y = max(z, 0)                   dy/dz = 1 where y > 0, else 0
    linear        y = z                           dy/dz = 1
    softmax       y = e^z / sum e^z (last axis)   dz = y * (dy - sum(dy * y))

``hard_sigmoid`` follows Keras 3 (and PyTorch's ``Hardsigmoid``): slope 1/6,
saturating at z = -3 and z = 3.  Keras 2 used slope 0.2; that variant is not
provided.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Union

import numpy as np


@dataclass(frozen=True)
class Activation:
    """An activation with its vector-Jacobian product written from its output.

    Attributes
    ----------
    name : str
        Keras name of the activation.
    forward : callable
        ``y = forward(z)``.
    backward : callable
        ``dz = backward(dy, y)``: the gradient with respect to the input given
        the upstream gradient ``dy`` and the forward output ``y``.
    """

    name: str
    forward: Callable[[np.ndarray], np.ndarray]
    backward: Callable[[np.ndarray, np.ndarray], np.ndarray]

    def __call__(self, z: np.ndarray) -> np.ndarray:
        return self.forward(z)

    def __repr__(self) -> str:
        return f"Activation({self.name!r})"


def sigmoid(z: np.ndarray) -> np.ndarray:
    # The tanh form never overflows, unlike 1 / (1 + exp(-z)) for z << 0.
    return 0.5 * (np.tanh(0.5 * z) + 1.0)


def hard_sigmoid(z: np.ndarray) -> np.ndarray:
    return np.clip(z / 6.0 + 0.5, 0.0, 1.0)


def softsign(z: np.ndarray) -> np.ndarray:
    return z / (1.0 + np.abs(z))


def relu(z: np.ndarray) -> np.ndarray:
    return np.maximum(z, 0.0)


def linear(z: np.ndarray) -> np.ndarray:
    return z


def softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    """Softmax along ``axis``; subtracting the max keeps exp from overflowing."""
    e = np.exp(z - np.max(z, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def log_softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    """log(softmax(z)) computed without forming softmax (stable for large |z|)."""
    shifted = z - np.max(z, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


def _softmax_backward(dy: np.ndarray, y: np.ndarray) -> np.ndarray:
    return y * (dy - np.sum(dy * y, axis=-1, keepdims=True))


ACTIVATIONS: dict[str, Activation] = {
    a.name: a
    for a in (
        Activation("sigmoid", sigmoid, lambda dy, y: dy * y * (1.0 - y)),
        Activation("tanh", np.tanh, lambda dy, y: dy * (1.0 - y * y)),
        Activation("hard_sigmoid", hard_sigmoid, lambda dy, y: dy * (((y > 0.0) & (y < 1.0)) / 6.0)),
        Activation("softsign", softsign, lambda dy, y: dy * np.square(1.0 - np.abs(y))),
        Activation("relu", relu, lambda dy, y: dy * (y > 0.0)),
        Activation("linear", linear, lambda dy, y: dy),
        Activation("softmax", softmax, _softmax_backward),
    )
}

ActivationLike = Union[str, Activation, None]


def get_activation(spec: ActivationLike, *, argument: str = "activation") -> Activation:
    """Look up an activation by Keras name (``None`` means ``"linear"``).

    Raises
    ------
    ValueError
        For an unknown name; the message lists the valid ones.
    """
    if isinstance(spec, Activation):
        return spec
    if spec is None:
        return ACTIVATIONS["linear"]
    if isinstance(spec, str) and spec in ACTIVATIONS:
        return ACTIVATIONS[spec]
    raise ValueError(
        f"{argument}: unknown activation {spec!r}; expected one of {', '.join(sorted(ACTIVATIONS))}"
    )
