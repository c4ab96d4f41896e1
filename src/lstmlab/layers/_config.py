"""Checking constructor arguments that come from a file's JSON, before the constructor sees them."""
from __future__ import annotations

from ..registry import check_arguments

__all__ = ["check_arguments", "check_shape_argument"]  # check_arguments: the layers import it from here


def check_shape_argument(name: str, shape) -> None:
    ok = isinstance(shape, (list, tuple)) and len(shape) <= 32 and all(
        s is None or (isinstance(s, int) and not isinstance(s, bool) and s >= 1) for s in shape)
    if not ok:
        raise ValueError(f"{name}: expected a list of positive integers or None, got {shape!r}")
