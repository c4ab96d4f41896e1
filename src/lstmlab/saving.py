"""Keras's ``keras.saving`` layout: ``lstmlab.saving.load_model(path)``; ``save_model(model, path)``."""
from .models.saving import load_model, load_model_with_metadata


def save_model(model, path, include_optimizer: bool = True) -> None:
    """``model.save(path)``, as Keras's function form."""
    model.save(path, include_optimizer=include_optimizer)


__all__ = ["load_model", "load_model_with_metadata", "save_model"]
