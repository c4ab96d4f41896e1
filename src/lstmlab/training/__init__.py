"""Losses, metrics, optimizers (owning their state) and callbacks."""
from . import callbacks, losses, metrics, optimizers

__all__ = ["callbacks", "losses", "metrics", "optimizers"]
