"""Shared by the layer-level tests: float64 layers and random non-zero weights."""
from __future__ import annotations

import pytest

import lstmlab


@pytest.fixture
def float64():
    """Layers made in the test are float64 (finite differences need it); float32 again afterwards."""
    lstmlab.set_floatx("float64")
    lstmlab.set_random_seed(1234)
    yield
    lstmlab.set_floatx("float32")


def randomize(layer, rng, scale: float = 0.5) -> None:
    """Random non-zero values in every weight, biases included (zero biases hide bugs); layer-norm gammas
    around their initial 1."""
    for w in layer.weights:
        v = rng.uniform(-scale, scale, w.shape)
        w.value[...] = 1.0 + v if w.name.endswith("_gamma") else v
