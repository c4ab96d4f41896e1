"""Weight penalties added to the training loss: L1, L2 and both.

    l1:     l1 * sum |w|       gradient l1 * sign(w)
    l2:     l2 * sum w^2       gradient 2 * l2 * w
"""
from __future__ import annotations

import numpy as np

from ._config import check_arguments


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


def L1(l1: float = 0.01) -> L1L2:
    return L1L2(l1=l1)


def L2(l2: float = 0.01) -> L1L2:
    return L1L2(l2=l2)


l1, l2 = L1, L2


def l1_l2(l1: float = 0.01, l2: float = 0.01) -> L1L2:
    return L1L2(l1=l1, l2=l2)


_BY_NAME = {"l1": L1, "l2": L2, "l1_l2": l1_l2}


def get(spec, *, argument: str = "regularizer") -> L1L2 | None:
    """A regularizer from ``None``, a name (``"l1"``, ``"l2"``, ``"l1_l2"``), a config dict or an instance."""
    if spec is None or isinstance(spec, L1L2):
        return spec
    if isinstance(spec, dict):
        return L1L2(**check_arguments(L1L2, spec.get("config", spec), f"{argument}: "))
    if isinstance(spec, str) and spec in _BY_NAME:
        return _BY_NAME[spec]()
    raise ValueError(f"{argument}: unknown regularizer {spec!r}; expected one of {', '.join(_BY_NAME)} or None")


def serialize(reg: L1L2 | None):
    return None if reg is None else {"class_name": "L1L2", "config": reg.get_config()}
