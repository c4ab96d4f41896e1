"""Keras's ``keras.callbacks`` layout: ``from lstmlab.callbacks import EarlyStopping``."""
from .training.callbacks import (Callback, CSVLogger, EarlyStopping, History, LambdaCallback, LearningRateScheduler,
                                 ModelCheckpoint, ReduceLROnPlateau, TerminateOnNaN)

__all__ = ["Callback", "CSVLogger", "EarlyStopping", "History", "LambdaCallback", "LearningRateScheduler",
           "ModelCheckpoint", "ReduceLROnPlateau", "TerminateOnNaN"]
