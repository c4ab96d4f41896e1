"""Models across ecosystems: Keras 3 files, PyTorch modules, ONNX export.

Nothing here is imported until used: ``torch``, ``h5py`` and ``onnx`` are optional, and each converter
names the extra to install when its library is missing.
"""
from __future__ import annotations

import importlib

from .layouts import GRU, LSTM, PEEPHOLE, reorder

# name -> the module defining it, imported on first access (so `import lstmlab.interop` imports no torch)
_LAZY = {"from_torch": ".torch_interop", "to_torch": ".torch_interop", "export_onnx": ".onnx_export"}

__all__ = ["GRU", "LSTM", "PEEPHOLE", "reorder", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
