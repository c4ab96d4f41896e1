"""Keras's ``keras.initializers`` layout: ``from lstmlab.initializers import GlorotUniform``."""
from .layers.initializers import (GlorotNormal, GlorotUniform, Initializer, Ones, Orthogonal, RandomNormal,
                                  RandomUniform, Zeros, get, serialize)

__all__ = ["GlorotNormal", "GlorotUniform", "Initializer", "Ones", "Orthogonal", "RandomNormal", "RandomUniform",
           "Zeros", "get", "serialize"]
