"""Models: Model (functional and subclassed), Sequential, their summary, and model files."""
from ..io.errors import ModelFileError
from .model import Model
from .saving import load_model, load_model_with_metadata
from .sequential import Sequential

__all__ = ["Model", "Sequential", "load_model", "load_model_with_metadata", "ModelFileError"]
