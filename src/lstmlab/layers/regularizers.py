"""Weight penalties added to the training loss: L1, L2 and both.

    l1:     l1 * sum |w|       gradient l1 * sign(w)
    l2:     l2 * sum w^2       gradient 2 * l2 * w
"""
from __future__ import annotations

import numpy as np

from ..registry import Registry


class L1L2:
    """``l1 * sum|w| + l2 * sum w^2`` (Keras's names ``l1``, ``l2``, ``l1_l2``)."""

    def __init__(self, l1: float = 0.0, l2: float = 0.0):
        for name, v in (("l1", l1), ("l2", l2)):
            if not (isinstance(v, (int, float)) and v >= 0 and np.isfinite(v)):
                raise ValueError(f"{name}: expected a non-negative number, got {v!r}")
        self.l1, self.l2 = float(l1), float(l2)

    def __call__(self, w: np.ndarray) -> float:
        return float(self.l1 * np.sum(np.abs(w)) + self.l2 * np.sum(np.square(w)))

    def gradient(self, w: np.ndarray) -> np.ndarray:
        return (self.l1 * np.sign(w) + 2.0 * self.l2 * w).astype(w.dtype)

    def get_config(self) -> dict:
        return {"l1": self.l1, "l2": self.l2}


REGULARIZERS = Registry("regularizer", L1L2, allow_none=True)
REGULARIZERS.register(L1L2)


@REGULARIZERS.register("l1")
def L1(l1: float = 0.01) -> L1L2:
    return L1L2(l1=l1)


@REGULARIZERS.register("l2")
def L2(l2: float = 0.01) -> L1L2:
    return L1L2(l2=l2)


l1, l2 = L1, L2


@REGULARIZERS.register("l1_l2")
def l1_l2(l1: float = 0.01, l2: float = 0.01) -> L1L2:
    return L1L2(l1=l1, l2=l2)


get, serialize, deserialize = REGULARIZERS.get, REGULARIZERS.serialize, REGULARIZERS.deserialize
