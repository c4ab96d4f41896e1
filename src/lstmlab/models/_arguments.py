"""The checks of the arguments users pass to ``fit``, ``evaluate``, ``predict`` and friends.

Each raises one ``ValueError`` naming the argument, the value and what was expected.
"""
from __future__ import annotations

import numpy as np


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


def as_samples(name: str, value) -> np.ndarray:
    """``value`` as an array of samples: refuses None and ragged nested lists with a message naming ``name``
    (NumPy's own, "inhomogeneous shape after 1 dimensions", names neither the argument nor the fix)."""
    if value is None:
        raise ValueError(f"{name}: expected an array of samples, got None")
    try:
        a = np.asarray(value)
    except ValueError as exc:
        if "inhomogeneous" not in str(exc) and "sequence" not in str(exc):
            raise
        raise ValueError(f"{name}: expected samples of one shape, got a ragged nested sequence (samples of "
                         "different lengths); pad them to one length first") from None
    if a.dtype == object:
        raise ValueError(f"{name}: expected a numeric array, got an object array (ragged sequences must be padded)")
    return a


def require_samples(name: str, a: np.ndarray) -> None:
    if a.ndim == 0 or len(a) == 0:
        raise ValueError(f"{name}: expected at least one sample, got an empty array of shape {a.shape}")
