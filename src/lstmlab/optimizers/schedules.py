"""Keras's ``keras.optimizers.schedules`` layout: ``from lstmlab.optimizers.schedules import ExponentialDecay``."""
from ..training.optimizers import ExponentialDecay, LearningRateSchedule, StepDecay

__all__ = ["ExponentialDecay", "LearningRateSchedule", "StepDecay"]
