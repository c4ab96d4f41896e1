"""Models across ecosystems: Keras 3 files, PyTorch modules, ONNX export.

Nothing here is imported until used: ``torch``, ``h5py`` and ``onnx`` are optional, and each converter
names the extra to install when its library is missing.
"""
from __future__ import annotations

from .layouts import GRU, LSTM, PEEPHOLE, reorder

__all__ = ["GRU", "LSTM", "PEEPHOLE", "reorder"]
