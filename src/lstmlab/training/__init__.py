"""Losses, metrics, optimizers (owning their state) and callbacks."""
from . import callbacks, losses, metrics, metrics_confusion, optimizers  # metrics_confusion registers AUC, ...

__all__ = ["callbacks", "losses", "metrics", "metrics_confusion", "optimizers"]
