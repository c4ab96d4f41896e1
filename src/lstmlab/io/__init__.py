"""File formats: safetensors (weights) with JSON metadata; nothing here can run code."""
from .errors import ModelFileError
from .safetensors import CorruptFileError, atomic_write, load_file, save_file

__all__ = ["save_file", "load_file", "atomic_write", "ModelFileError", "CorruptFileError"]
