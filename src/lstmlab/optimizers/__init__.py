"""Keras's ``keras.optimizers`` layout: ``from lstmlab.optimizers import Adam``; schedules in ``.schedules``."""
from ..training.optimizers import SGD, Adagrad, Adam, Optimizer, RMSprop, get, serialize
from . import schedules

__all__ = ["SGD", "Adagrad", "Adam", "Optimizer", "RMSprop", "get", "schedules", "serialize"]
