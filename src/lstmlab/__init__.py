"""lstmlab: Long Short-Term Memory networks from the equations up, on NumPy."""
from . import backend, functional, layers
from ._version import __version__
from .backend import clear_session, set_floatx, set_random_seed
from .gradcheck import GradcheckReport, gradcheck
from .layers import Input
from .models import Model, Sequential, load_model
from . import callbacks, initializers, losses, metrics, optimizers, regularizers, saving  # Keras's module layout
from . import preprocessing, utils  # Keras's module layout: keras.utils, keras.preprocessing.sequence

__all__ = [
    "__version__", "functional", "layers", "backend", "gradcheck", "GradcheckReport", "Sequential", "Model", "Input", "load_model",
    "callbacks", "initializers", "losses", "metrics", "optimizers", "regularizers", "saving", "utils", "preprocessing", "set_random_seed", "set_floatx", "clear_session",
]
