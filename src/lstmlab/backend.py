"""Process-wide defaults: the float type of new layers and the random seed.

``set_random_seed(s)`` makes everything that follows reproducible: weight
initialization, dropout masks and the shuffling in ``fit``.
"""
from __future__ import annotations

from collections import defaultdict
from contextlib import contextmanager

import numpy as np

_FLOATX = "float32"
_RNG = np.random.default_rng()
_VALID_FLOATX = ("float32", "float64")


def floatx() -> str:
    """The dtype new layers use unless given ``dtype=`` (Keras's ``floatx``)."""
    return _FLOATX


def set_floatx(value: str) -> None:
    global _FLOATX
    if value not in _VALID_FLOATX:
        raise ValueError(f"floatx: expected one of {', '.join(_VALID_FLOATX)}, got {value!r}")
    _FLOATX = value


def set_random_seed(seed: int) -> None:
    """Seed the generator behind initializers, dropout and shuffling."""
    global _RNG
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed: expected a non-negative integer, got {seed!r}")
    _RNG = np.random.default_rng(int(seed))


@contextmanager
def seeded(seed: int):
    """Run a block with the process-wide generator seeded by ``seed``, then restore the previous one."""
    global _RNG
    saved = _RNG
    _RNG = np.random.default_rng(seed)
    try:
        yield
    finally:
        _RNG = saved


def rng() -> np.random.Generator:
    """The process-wide generator (seeded by :func:`set_random_seed`)."""
    return _RNG


def draw_seed() -> int:
    """A fresh 63-bit seed from the process-wide generator."""
    return int(_RNG.integers(0, 2**63 - 1))


BFLOAT16 = "bfloat16"  # LSTM(units, dtype="bfloat16"): float32 weights, bf16 products in inference


def is_bfloat16(dtype) -> bool:
    """True when ``dtype`` asks for bfloat16: the string ``"bfloat16"`` or anything named so (a NumPy dtype
    from ``ml_dtypes``, a Keras ``DTypePolicy("bfloat16")``). NumPy has no bf16 type: only the LSTM accepts it,
    as an inference path that keeps float32 weights (:mod:`lstmlab.functional.bf16`)."""
    name = dtype if isinstance(dtype, str) else getattr(dtype, "name", None)
    return name == BFLOAT16


def resolve_dtype(dtype) -> np.dtype:
    if is_bfloat16(dtype):
        raise ValueError(f"dtype: expected one of {', '.join(_VALID_FLOATX)}, got {dtype!r}; bfloat16 is an "
                         f"inference path of the LSTM only (layers.LSTM(units, dtype='bfloat16'), or "
                         f"layers.LSTMCell(units, dtype='bfloat16') in an RNN)")
    try:
        name = floatx() if dtype is None else np.dtype(dtype).name
    except TypeError:  # a name NumPy does not know
        name = None
    if name not in _VALID_FLOATX:
        raise ValueError(f"dtype: expected one of {', '.join(_VALID_FLOATX)}, got {dtype!r}")
    return np.dtype(name)


_NAME_COUNTS: dict[str, int] = defaultdict(int)


def unique_name(prefix: str) -> str:
    """Keras-style automatic names: ``lstm``, ``lstm_1``, ``lstm_2``..."""
    n = _NAME_COUNTS[prefix]
    _NAME_COUNTS[prefix] += 1
    return prefix if n == 0 else f"{prefix}_{n}"


def clear_session() -> None:
    """Restart automatic layer names from scratch (``lstm``, ``dense``...), like Keras's ``clear_session``."""
    _NAME_COUNTS.clear()
