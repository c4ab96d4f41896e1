"""Keras's ``keras.optimizers.schedules`` layout: ``from lstmlab.optimizers.schedules import CosineDecay``."""
from ..training.schedules import (CosineDecay, ExponentialDecay, LearningRateSchedule, PiecewiseConstantDecay,
                                  StepDecay, deserialize, get, serialize)

__all__ = ["CosineDecay", "ExponentialDecay", "LearningRateSchedule", "PiecewiseConstantDecay", "StepDecay",
           "deserialize", "get", "serialize"]
