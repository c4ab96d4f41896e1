"""Models: Sequential, its summary, and model files."""
from ..io.errors import ModelFileError
from .saving import load_model, load_model_with_metadata
from .sequential import Sequential

__all__ = ["Sequential", "load_model", "load_model_with_metadata", "ModelFileError"]
