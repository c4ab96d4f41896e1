"""The checks of the arguments users pass to ``fit``, ``evaluate``, ``predict`` and friends.

Each raises one ``ValueError`` naming the argument, the value and what was expected.
"""
from __future__ import annotations

import numpy as np

from ..training.data_adapters import as_samples

__all__ = ["as_samples", "check_batch_size", "check_bool", "check_int", "check_verbose", "require_samples"]


def check_batch_size(batch_size) -> int:
    return check_int("batch_size", batch_size, 1)


def check_int(name: str, value, minimum: int) -> int:
    """An integer argument (not a bool, not a float that happens to be whole) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ValueError(f"{name}: expected {what}, got {value!r}")
    return int(value)


def check_verbose(verbose) -> int:
    """Keras's verbosity: ``"auto"`` (1 here, as Keras gives outside notebooks), 0 (silent), 1 (progress bar), 2
    (one line per epoch); True / False as 1 / 0."""
    if isinstance(verbose, str) and verbose == "auto":
        return 1
    if isinstance(verbose, (bool, np.bool_)) or (isinstance(verbose, (int, np.integer)) and verbose in (0, 1, 2)):
        return int(verbose)
    raise ValueError(f"verbose: expected \"auto\", 0, 1 or 2, got {verbose!r}")


def check_bool(name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name}: expected True or False, got {value!r}")
    return bool(value)


def require_samples(name: str, a: np.ndarray) -> None:
    if a.ndim == 0 or len(a) == 0:
        raise ValueError(f"{name}: expected at least one sample, got an empty array of shape {a.shape}")
