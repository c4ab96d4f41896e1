"""lstmlab: Long Short-Term Memory networks from the equations up, on NumPy."""
from . import functional
from ._version import __version__
from .gradcheck import GradcheckReport, gradcheck

__all__ = ["__version__", "functional", "gradcheck", "GradcheckReport"]
