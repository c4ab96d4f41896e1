"""Per-thread workspaces: temporaries that never leave a fast call, reused between calls.

The gate gradients, the h_{t-1} rows, the packed kernels and (at inference)
the per-step gates reuse one buffer per name and thread instead of fresh
memory every call: a fresh multi-MB array is fresh pages, which the kernel
must fault in and zero (measured: a third of a small layer's training step).
"""
from __future__ import annotations

import math
import threading
import weakref

import numpy as np

_WORKSPACE = threading.local()


class _Buffers(dict):
    """One thread's buffers by name: a dict that can be weakly referenced, equal only to itself."""

    __hash__ = object.__hash__
    __eq__ = object.__eq__


_ALL_BUFFERS: "weakref.WeakSet[_Buffers]" = weakref.WeakSet()  # every live thread's buffers, for workspace_bytes()


def scratch(name: str, shape, dtype, align: int = 64) -> np.ndarray:
    """A C-contiguous, ``align``-byte aligned array of this thread's buffer ``name`` (contents undefined)."""
    dtype = np.dtype(dtype)
    n = math.prod(shape)
    buffers = _WORKSPACE.__dict__.get("buffers")
    if buffers is None:
        buffers = _WORKSPACE.buffers = _Buffers()
        _ALL_BUFFERS.add(buffers)
    raw = buffers.get(name)
    if raw is None or raw.nbytes < n * dtype.itemsize + align:
        raw = buffers[name] = np.empty(n * dtype.itemsize + align, np.uint8)
    return _aligned_in(raw, shape, dtype, align)


def _aligned_in(raw: np.ndarray, shape, dtype, align: int) -> np.ndarray:
    """A C-contiguous ``shape`` array of ``dtype`` inside the bytes ``raw`` (``align`` bytes larger than it
    needs), starting on an ``align``-byte boundary."""
    offset = (-raw.ctypes.data) % align
    return raw[offset:offset + math.prod(shape) * dtype.itemsize].view(dtype).reshape(shape)


def aligned_empty(shape, dtype, align: int = 64) -> np.ndarray:
    """A fresh C-contiguous array whose data starts on an ``align``-byte boundary (the fused forward streams
    whole 64-byte gate vectors into it past the cache)."""
    dtype = np.dtype(dtype)
    return _aligned_in(np.empty(math.prod(shape) * dtype.itemsize + align, np.uint8), shape, dtype, align)


def clear_workspace() -> None:
    """Free the calling thread's reusable buffers (they are kept between calls; see :func:`scratch`)."""
    _WORKSPACE.__dict__.get("buffers", {}).clear()


def workspace_bytes() -> int:
    """Bytes held by the reusable buffers of all threads (the largest call of each kind keeps its size)."""
    return sum(raw.nbytes for buffers in list(_ALL_BUFFERS) for raw in list(buffers.values()))
