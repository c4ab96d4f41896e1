"""Keras's ``keras.optimizers`` layout: ``from lstmlab.optimizers import Adam``; schedules in ``.schedules``."""
from ..training.optimizers import (SGD, Adagrad, Adam, Adamax, AdamW, Nadam, Optimizer, RMSprop, deserialize, get,
                                   serialize)
from . import schedules

__all__ = ["SGD", "Adagrad", "Adam", "AdamW", "Adamax", "Nadam", "Optimizer", "RMSprop", "deserialize", "get",
           "schedules", "serialize"]
