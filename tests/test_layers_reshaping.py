"""Flatten, Reshape, RepeatVector, Activation and SpatialDropout1D.

Finite differences in float64 with random upstream gradients, and Keras 3 on the torch backend as the oracle
(outputs and input gradients through torch autograd); masks, output shapes and configs as Keras's.
"""
from __future__ import annotations

import json

import keras
import numpy as np
import pytest
import torch

import layer_cases
from helpers import assert_close
from lstmlab import layers as L
from lstmlab.functional import ACTIVATIONS
from lstmlab.gradcheck import check_layer, gradcheck

float64 = layer_cases.float64  # the fixture: pytest finds it under this name in the module
assert keras.backend.backend() == "torch", "tests/conftest.py sets KERAS_BACKEND=torch"


def keras_output_and_dx(layer, x, dy):
    tx = torch.tensor(x, requires_grad=True)
    y = layer(tx)
    (y * torch.tensor(dy)).sum().backward()
    return y.detach().cpu().numpy(), tx.grad.detach().cpu().numpy()


def against_keras(ours, theirs, x, rng, tol=1e-6):
    """Our output and dx against Keras's for the same x and a random upstream gradient."""
    y = ours(x, training=True)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx = ours.backward(dy)
    k_y, k_dx = keras_output_and_dx(theirs, x, dy)
    assert_close("y", y, k_y, tol)
    assert_close("dx", dx, k_dx, tol)
    return y, dx


# --- Flatten, Reshape, RepeatVector -------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(3, 4), (2, 3, 4), (2, 3, 2, 2)])
def test_flatten_gradients_and_keras(float64, shape):
    report = check_layer(L.Flatten(), np.random.default_rng(1).standard_normal(shape))
    assert report.ok, report
    rng = np.random.default_rng(2)
    against_keras(L.Flatten(dtype="float32"), keras.layers.Flatten(), rng.standard_normal(shape).astype(np.float32),
                  rng)


def test_flatten_shapes_equal_keras():
    ours, theirs = L.Flatten(), keras.layers.Flatten()
    for shape in ((None, 3, 4), (None, None, 4), (2, 5), (None,), (4, 2, 3, 5)):
        assert ours.compute_output_shape(shape) == tuple(theirs.compute_output_shape(shape)), shape
    assert ours(np.zeros((3,), np.float32)).shape == (3, 1)
    assert ours(np.zeros((0, 2, 3), np.float32)).shape == (0, 6)


@pytest.mark.parametrize("target", [(4, 3), (-1, 2), (2, -1, 3), (12,)])
def test_reshape_gradients_and_keras(float64, target):
    x = np.random.default_rng(3).standard_normal((2, 3, 4))
    report = check_layer(L.Reshape(target), x)
    assert report.ok, report
    rng = np.random.default_rng(4)
    y, _ = against_keras(L.Reshape(target, dtype="float32"), keras.layers.Reshape(target),
                         rng.standard_normal((2, 3, 4)).astype(np.float32), rng)
    assert y.shape[1:] == tuple(12 // np.prod([d for d in target if d != -1]) if d == -1 else d for d in target)


def test_reshape_shapes_equal_keras():
    for target in ((4, 3), (-1, 2), (2, -1, 3)):
        ours, theirs = L.Reshape(target), keras.layers.Reshape(target)
        for shape in ((None, 3, 4), (None, None, 4), (5, 12)):
            assert ours.compute_output_shape(shape) == tuple(theirs.compute_output_shape(shape)), (target, shape)


def test_reshape_errors():
    for bad in ((0, 3), (-1, -1), (2.0, 3), "12", (True, 4), 12):
        with pytest.raises(ValueError, match=r"target_shape: "):
            L.Reshape(bad)
    with pytest.raises(ValueError, match=r"target_shape: at most one dimension can be -1, got \(-1, 2, -1\)"):
        L.Reshape((-1, 2, -1))
    layer = L.Reshape((5, -1), name="rs")
    with pytest.raises(ValueError, match=r"x: layer 'rs' cannot reshape a sample of shape \(3, 4\) \(12 values\) to "
                                         r"target_shape=\(5, -1\)"):
        layer(np.zeros((2, 3, 4), np.float32))
    with pytest.raises(ValueError, match=r"cannot reshape a sample of shape \(3, 4\) \(12 values\) to "
                                         r"target_shape=\(5, 2\)"):
        L.Reshape((5, 2), name="rs").compute_output_shape((None, 3, 4))


def test_repeat_vector_gradients_and_keras(float64):
    report = check_layer(L.RepeatVector(4), np.random.default_rng(5).standard_normal((3, 2)))
    assert report.ok, report
    rng = np.random.default_rng(6)
    ours, theirs = L.RepeatVector(4, dtype="float32"), keras.layers.RepeatVector(4)
    y, dx = against_keras(ours, theirs, rng.standard_normal((3, 2)).astype(np.float32), rng)
    assert y.shape == (3, 4, 2)
    for shape in ((None, 2), (5, 7)):
        assert ours.compute_output_shape(shape) == tuple(theirs.compute_output_shape(shape))


def test_repeat_vector_errors():
    for bad in (0, -2, 2.5, "3", True):
        with pytest.raises(ValueError, match=r"n: expected a positive integer, got "):
            L.RepeatVector(bad)
    with pytest.raises(ValueError, match=r"x: layer 'rv' expects a 2-D input \(batch, features\), got shape "
                                         r"\(2, 3, 4\)"):
        L.RepeatVector(3, name="rv")(np.zeros((2, 3, 4), np.float32))


# --- Activation ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_layer_gradients_and_keras(float64, name):
    x = np.random.default_rng(7).normal(0.0, 2.0, (2, 4, 5))  # wide enough to reach hard_sigmoid's flat parts
    report = check_layer(L.Activation(name), x)
    assert report.ok, report
    rng = np.random.default_rng(8)
    against_keras(L.Activation(name, dtype="float32"), keras.layers.Activation(name),
                  rng.normal(0.0, 2.0, (2, 4, 5)).astype(np.float32), rng)


def test_activation_layer_errors():
    with pytest.raises(ValueError, match=r"activation: unknown activation 'gelu2'; expected one of "):
        L.Activation("gelu2")
    with pytest.raises(ValueError, match=r"x: expected finite values"):
        L.Activation("relu")(np.array([[np.nan]], np.float32))


# --- SpatialDropout1D ---------------------------------------------------------------------------------------------


def test_spatial_dropout1d_drops_whole_channels_at_the_rate():
    x = np.random.default_rng(9).uniform(0.5, 1.5, (400, 6, 50)).astype(np.float32)
    layer = L.SpatialDropout1D(0.3)
    layer.rng = np.random.default_rng(10)
    y = layer(x, training=True)
    dropped = y == 0.0  # (B, T, C); x has no zeros
    assert np.all(dropped == dropped[:, :1, :]), "a channel is dropped at every step of its sample or at none"
    assert_close("kept", y[~dropped], x[~dropped] / 0.7, 1e-6)
    share = dropped[:, 0, :].mean()
    assert abs(share - 0.3) < 0.02, share  # 20,000 draws: 4 standard deviations is 0.013
    assert 0 < dropped[:, 0, :].sum(axis=0).min(), "every channel is dropped somewhere"
    dy = np.random.default_rng(11).standard_normal(y.shape).astype(np.float32)
    assert_close("dx", layer.backward(dy), np.where(dropped, 0.0, dy / 0.7), 1e-6)


def test_spatial_dropout1d_is_the_identity_in_inference_and_equals_keras_there():
    x = np.random.default_rng(12).standard_normal((3, 5, 4)).astype(np.float32)
    ours = L.SpatialDropout1D(0.5)
    assert np.array_equal(ours(x), x)
    assert np.array_equal(keras.layers.SpatialDropout1D(0.5)(torch.tensor(x)).numpy(), x)
    assert ours.compute_output_shape((None, None, 4)) == (None, None, 4)
    rate0 = L.SpatialDropout1D(0.0)
    assert np.array_equal(rate0(x, training=True), x)
    assert np.array_equal(rate0.backward(2 * x), 2 * x)


def test_spatial_dropout1d_finite_differences_with_fixed_draws(float64):
    """The same draws in every perturbed call (the generator re-seeded), so the loss is a function of x."""
    x = np.random.default_rng(13).standard_normal((4, 3, 6))
    r = np.random.default_rng(14).standard_normal(x.shape)
    layer = L.SpatialDropout1D(0.4)

    def run(training=True):
        layer.rng = np.random.default_rng(15)
        return layer(x, training=training)

    def loss():
        return float(np.sum(r * run()))

    y = run()
    assert np.any(y == 0) and np.any(y != 0)
    report = gradcheck(loss, {"x": x}, {"x": layer.backward(r)})
    assert report.ok, report


def test_spatial_dropout1d_errors():
    for bad in (1.0, -0.1, "0.5", None):
        with pytest.raises(ValueError, match=r"rate: expected a rate in \[0, 1\), got "):
            L.SpatialDropout1D(bad)
    with pytest.raises(ValueError, match=r"seed: expected an integer or None, got 'x'"):
        L.SpatialDropout1D(0.2, seed="x")
    with pytest.raises(ValueError, match=r"x: layer 'sd' expects a 3-D input \(batch, steps, channels\), got shape "
                                         r"\(2, 4\)"):
        L.SpatialDropout1D(0.2, name="sd")(np.zeros((2, 4), np.float32))


# --- masks and configs as Keras -----------------------------------------------------------------------------------

LAYERS = [
    (lambda m: m.Flatten(), (2, 5, 3)),
    (lambda m: m.Reshape((-1,)), (2, 5, 3)),
    (lambda m: m.RepeatVector(5), (2, 3)),
    (lambda m: m.Activation("tanh"), (2, 5, 3)),
    (lambda m: m.SpatialDropout1D(0.25, seed=3), (2, 5, 3)),
]


@pytest.mark.parametrize("make,shape", LAYERS)
def test_mask_propagation_equals_keras(make, shape):
    x = np.random.default_rng(16).standard_normal(shape).astype(np.float32)
    mask = np.ones(shape[:2], bool)
    mask[0, -1] = False
    ours, theirs = make(L), make(keras.layers)
    ours(x, mask=mask)
    theirs.build(shape)
    k_mask = theirs.compute_mask(torch.tensor(x), torch.tensor(mask)) if theirs.supports_masking else None
    assert (ours.output_mask is None) == (k_mask is None), (ours.output_mask, k_mask)
    if k_mask is not None:
        assert np.array_equal(ours.output_mask, k_mask.cpu().numpy())


@pytest.mark.parametrize("make,shape", LAYERS + [(lambda m: m.Reshape((3, -1, 1)), (2, 5, 3)),
                                                  (lambda m: m.Activation("softmax"), (2, 5, 3))])
def test_config_round_trip_with_keras_names(make, shape):
    ours, theirs = make(L), make(keras.layers)
    config = json.loads(json.dumps(L.serialize(ours)))  # through a file's JSON
    again = L.deserialize(config)
    assert type(again) is type(ours)
    assert json.loads(json.dumps(L.serialize(again))) == config
    assert again.compute_output_shape(shape) == ours.compute_output_shape(shape)
    k_config = theirs.get_config()
    own = {k: v for k, v in config["config"].items() if k not in ("name", "dtype", "trainable", "batch_input_shape")}
    assert set(own) <= set(k_config), sorted(set(own) - set(k_config))
    for key, value in own.items():
        kv = list(k_config[key]) if isinstance(k_config[key], tuple) else k_config[key]
        assert value == kv, (key, value, kv)


# --- the new layers together ---------------------------------------------------------------------------------------


def conv_stack(m, **first):
    """The same stack from lstmlab.layers or keras.layers: every layer of these two test files but Reshape."""
    return [m.Conv1D(8, 3, padding="causal", activation="relu", **first), m.SpatialDropout1D(0.2), m.MaxPooling1D(2),
            m.Conv1D(6, 2, strides=2, padding="same", activation="tanh"), m.Flatten(), m.RepeatVector(3),
            m.Activation("softsign"), m.GlobalAveragePooling1D(), m.Dense(2, activation="softmax")]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Keras's torch backend, in predict
def test_a_stack_of_the_new_layers_in_sequential_equals_keras_and_learns():
    import lstmlab
    from lstmlab.models import Sequential
    from lstmlab.optimizers import Adam
    lstmlab.set_random_seed(0)  # initial weights and dropout draws
    rng = np.random.default_rng(17)
    x = rng.standard_normal((32, 10, 4)).astype(np.float32)
    labels = (x[:, :5, 0].sum(axis=1) > x[:, 5:, 1].sum(axis=1)).astype(np.int64)
    ours = Sequential(conv_stack(L, input_shape=(10, 4)))  # Flatten -> Dense needs a known number of steps
    ours.compile(optimizer=Adam(0.01), loss="sparse_categorical_crossentropy")
    y = ours.predict(x, verbose=0)
    theirs = keras.Sequential([keras.Input((10, 4))] + conv_stack(keras.layers))
    for a, b in zip(ours.layers, theirs.layers):
        assert type(a).__name__ == type(b).__name__
        b.set_weights(a.get_weights())
    assert_close("predictions", y, theirs.predict(x, verbose=0), 1e-5)
    # The 32 labels are learnt by heart (seeds 0-3 end between 0.012 and 0.023 from about ln 2 = 0.69).
    history = ours.fit(x, labels, epochs=100, batch_size=8, verbose=0).history["loss"]
    assert history[0] > 0.5 and history[-1] < 0.1, history[::10]
