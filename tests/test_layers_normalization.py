"""LayerNormalization and BatchNormalization: finite differences in float64, Keras 3 (torch backend) as the
oracle on the same weights and inputs (outputs, input and weight gradients, moving statistics)."""
import json

import numpy as np
import pytest

from lstmlab import layers as L
from lstmlab.gradcheck import check_layer
from lstmlab.layers import regularizers as regs

from helpers import assert_close

MASK = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [0, 1, 1, 1, 0]], bool)


def keras_single(klayer, x, dy, weights, *, mask=None, training=False):
    """Keras layer on float32 x: (output, dx, grads of the trainable weights, all weights after the call)."""
    import torch
    klayer.build(x.shape)
    klayer.set_weights([np.asarray(w, np.float32) for w in weights])
    t = torch.tensor(x.astype(np.float32), requires_grad=True)
    kwargs = {} if mask is None else {"mask": torch.tensor(mask)}
    y = klayer(t, training=training, **kwargs)
    (y * torch.tensor(dy.astype(np.float32))).sum().backward()
    grads = [w.value.grad.numpy() for w in klayer.trainable_weights]
    return y.detach().numpy(), t.grad.numpy(), grads, [np.asarray(w) for w in klayer.get_weights()]


def ours_single(layer, x, dy, weights, *, mask=None, training=False):
    layer.build((None,) + x.shape[1:])
    layer.set_weights(weights)
    y = layer(x.astype(np.float32), training=True, mask=mask) if training else layer(x.astype(np.float32))
    if not training:  # a training call gives the gradients; inference output must equal it when frozen
        layer(x.astype(np.float32), training=True, mask=mask)
    dx = layer.backward(dy)
    return y, dx, [g for g, w in zip(layer.grads, layer.weights) if w.trainable], layer.get_weights()


def assert_same(ours, theirs, tol=1e-5):
    names = ["output", "dx"]
    for name, a, b in zip(names, ours[:2], theirs[:2]):
        assert_close(name, a, b, tol)
    assert len(ours[2]) == len(theirs[2])
    for k, (a, b) in enumerate(zip(ours[2], theirs[2])):
        assert_close(f"weight gradient {k}", a, b, tol)
    for k, (a, b) in enumerate(zip(ours[3], theirs[3])):
        assert_close(f"weight {k} after the call", a, b, tol)


# --- LayerNormalization -------------------------------------------------------------------------------------

@pytest.mark.parametrize("center,scale", [(True, True), (False, True), (True, False)])
@pytest.mark.parametrize("axis", [-1, [1, 2]], ids=["last", "time-and-features"])
def test_layer_norm_equals_keras(axis, center, scale):
    import keras
    rng = np.random.default_rng(1)
    x = rng.normal(0.5, 2.0, size=(3, 5, 4))
    shape = (4,) if axis == -1 else (5, 4)
    weights = [rng.normal(1.0, 0.5, size=shape)] * scale + [rng.normal(size=shape)] * center
    dy = rng.normal(size=x.shape)
    kw = dict(axis=axis, center=center, scale=scale)
    theirs = keras_single(keras.layers.LayerNormalization(**kw), x, dy, weights, training=True)
    ours = ours_single(L.LayerNormalization(**kw), x, dy, weights, training=True)
    assert_same(ours, theirs)
    layer, klayer = L.LayerNormalization(**kw), keras.layers.LayerNormalization(**kw)
    layer.build((None, 5, 4))
    klayer.build((None, 5, 4))
    assert [(w.name, w.shape) for w in layer.weights] == [(w.name, tuple(w.shape)) for w in klayer.weights]


@pytest.mark.parametrize("axis", [-1, 1, [1, 2]])
def test_layer_norm_gradients_by_finite_differences(axis):
    rng = np.random.default_rng(2)
    x = rng.normal(0.5, 2.0, size=(3, 5, 4))
    layer = L.LayerNormalization(axis=axis, dtype="float64")
    layer.build((None, 5, 4))
    layer.set_weights([rng.normal(1.0, 0.5, size=w.shape) for w in layer.weights])
    report = check_layer(layer, x, seed=4)
    assert report.ok, report
    assert [w.name for w in layer.weights] == ["gamma", "beta"]


def test_layer_norm_regularizers_and_initializers_as_keras():
    import keras
    layer = L.LayerNormalization(gamma_regularizer=regs.L2(0.01), beta_regularizer=regs.L1(0.02),
                                 gamma_initializer="zeros", beta_initializer="ones", dtype="float64")
    klayer = keras.layers.LayerNormalization(gamma_regularizer=keras.regularizers.L2(0.01),
                                             beta_regularizer=keras.regularizers.L1(0.02),
                                             gamma_initializer="zeros", beta_initializer="ones")
    x = np.random.default_rng(3).normal(size=(2, 3, 4))
    layer.build((None, 3, 4))
    klayer.build((2, 3, 4))
    np.testing.assert_array_equal(layer.get_weights()[0], np.zeros(4))
    np.testing.assert_array_equal(layer.get_weights()[1], np.ones(4))
    weights = [np.linspace(-1, 1, 4), np.linspace(0.5, -2, 4)]
    layer.set_weights(weights)
    klayer.set_weights([w.astype(np.float32) for w in weights])
    klayer(x.astype(np.float32))
    assert abs(layer.regularization_loss() - float(sum(loss.detach() for loss in klayer.losses))) < 1e-6
    dy = np.zeros(x.shape)
    layer(x, training=True)
    layer.backward(dy)  # no data gradient: what is left is the penalties' gradient
    assert_close("dgamma", layer.grads[0], 2 * 0.01 * weights[0], 1e-12)
    assert_close("dbeta", layer.grads[1], 0.02 * np.sign(weights[1]), 1e-12)


def test_layer_norm_passes_the_mask_through():
    layer = L.LayerNormalization()
    layer(np.ones((3, 5, 4), np.float32), mask=MASK)
    np.testing.assert_array_equal(layer.output_mask, MASK)


# --- BatchNormalization -------------------------------------------------------------------------------------

def bn_weights(rng, n, center=True, scale=True):
    return ([rng.normal(1.0, 0.3, n)] * scale + [rng.normal(size=n)] * center
            + [rng.normal(size=n), rng.uniform(0.5, 2.0, n)])


@pytest.mark.parametrize("mask", [None, MASK], ids=["unmasked", "masked"])
@pytest.mark.parametrize("center,scale", [(True, True), (False, True), (True, False)])
def test_batch_norm_training_step_equals_keras(center, scale, mask):
    import keras
    rng = np.random.default_rng(5)
    x = rng.normal(0.7, 1.5, size=(3, 5, 4))
    weights, dy = bn_weights(rng, 4, center, scale), rng.normal(size=x.shape)
    kw = dict(center=center, scale=scale, momentum=0.9)
    theirs = keras_single(keras.layers.BatchNormalization(**kw), x, dy, weights, mask=mask, training=True)
    ours = ours_single(L.BatchNormalization(**kw), x, dy, weights, mask=mask, training=True)
    assert_same(ours, theirs)  # the moving statistics after the step too
    assert not np.allclose(ours[3][-1], weights[-1])


def test_batch_norm_inference_and_frozen_layer_equal_keras():
    import keras
    rng = np.random.default_rng(6)
    x, dy = rng.normal(0.7, 1.5, size=(3, 5, 4)), rng.normal(size=(3, 5, 4))
    weights = bn_weights(rng, 4)
    theirs = keras_single(keras.layers.BatchNormalization(), x, dy, weights, training=False)
    frozen = L.BatchNormalization(trainable=False)
    ours = ours_single(frozen, x, dy, weights, training=False)
    assert_close("output", ours[0], theirs[0], 1e-5)
    assert_close("dx", ours[1], theirs[1], 1e-5)
    assert ours[2] == [] and frozen.trainable_weights == []
    for k, (a, b) in enumerate(zip(ours[3], weights)):  # a frozen layer's training call moves nothing
        np.testing.assert_array_equal(a, b.astype(np.float32))
    kfrozen = keras.layers.BatchNormalization()
    kfrozen.trainable = False
    theirs_frozen = keras_single(kfrozen, x, dy, weights, training=True)
    assert_close("frozen training output", ours[0], theirs_frozen[0], 1e-5)


def test_batch_norm_2d_input_and_moving_initializers_equal_keras():
    import keras
    rng = np.random.default_rng(7)
    x, dy = rng.normal(0.3, 2.0, size=(6, 3)), rng.normal(size=(6, 3))
    kw = dict(moving_mean_initializer="ones", moving_variance_initializer="zeros", epsilon=0.01)
    ours_layer, klayer = L.BatchNormalization(**kw), keras.layers.BatchNormalization(**kw)
    ours_layer.build((None, 3))
    klayer.build((6, 3))
    for a, b in zip(ours_layer.get_weights(), klayer.get_weights()):
        np.testing.assert_array_equal(a, b)
    weights = bn_weights(rng, 3)
    assert_same(ours_single(L.BatchNormalization(**kw), x, dy, weights, training=True),
                keras_single(keras.layers.BatchNormalization(**kw), x, dy, weights, training=True))


def test_batch_norm_weights_in_kerass_order_and_trainability():
    import keras
    layer = L.BatchNormalization()
    layer.build((None, 5, 4))
    klayer = keras.layers.BatchNormalization()
    klayer.build((None, 5, 4))
    assert [w.name for w in layer.weights] == [w.name for w in klayer.weights] == \
        ["gamma", "beta", "moving_mean", "moving_variance"]
    assert [w.trainable for w in layer.weights] == [w.trainable for w in klayer.weights] == [True, True, False, False]


def test_batch_norm_moving_statistics_follow_kerass_update_over_steps():
    import keras
    import torch
    rng = np.random.default_rng(8)
    ours, klayer = L.BatchNormalization(momentum=0.8), keras.layers.BatchNormalization(momentum=0.8)
    for step in range(3):
        x = rng.normal(step, 1.0 + step, size=(4, 6, 3)).astype(np.float32)
        ours(x, training=True)
        klayer(torch.tensor(x), training=True)
    for a, b in zip(ours.get_weights(), klayer.get_weights()):
        assert_close("weight", a, b, 1e-5)


@pytest.mark.parametrize("case", ["batch", "masked", "frozen", "no-scale"])
def test_batch_norm_gradients_by_finite_differences(case):
    rng = np.random.default_rng(9)
    x = rng.normal(0.7, 1.5, size=(3, 5, 4))
    layer = L.BatchNormalization(dtype="float64", scale=case != "no-scale", trainable=case != "frozen")
    layer.build((None, 5, 4))
    layer.set_weights(bn_weights(rng, 4, scale=case != "no-scale"))
    report = check_layer(layer, x, mask=MASK if case == "masked" else None, seed=1)
    assert report.ok, report


def test_config_round_trips_with_kerass_arguments():
    import keras
    for ours, theirs in [(L.LayerNormalization(axis=[1, 2], epsilon=1e-5, center=False, name="ln",
                                               gamma_regularizer=regs.L2(0.1)),
                          keras.layers.LayerNormalization()),
                         (L.BatchNormalization(momentum=0.9, moving_variance_initializer="zeros", name="bn"),
                          keras.layers.BatchNormalization())]:
        again = L.deserialize(json.loads(json.dumps(L.serialize(ours))))
        assert type(again) is type(ours) and again.get_config() == ours.get_config()
        assert set(ours.get_config()) - {"batch_input_shape"} == set(theirs.get_config())


def test_bad_arguments_name_themselves():
    with pytest.raises(ValueError, match="epsilon: expected a positive finite number, got 0"):
        L.LayerNormalization(epsilon=0)
    with pytest.raises(ValueError, match="axis: expected an integer or a non-empty list of integers, got 'x'"):
        L.LayerNormalization(axis="x")
    with pytest.raises(ValueError, match="momentum: expected a number in \\[0, 1\\], got 1.5"):
        L.BatchNormalization(momentum=1.5)
    with pytest.raises(ValueError, match="renorm: batch renormalization is not supported"):
        L.BatchNormalization(renorm=True)
    with pytest.raises(ValueError, match="gamma_constraint: constraints are not supported"):
        L.BatchNormalization(gamma_constraint="non_neg")
    with pytest.raises(ValueError, match="center: expected true or false, got 'yes'"):
        L.BatchNormalization(center="yes")
    with pytest.raises(ValueError, match=r"axis: expected axes in \[-3, 3\) for a 3-D input, got 3"):
        L.LayerNormalization(axis=3)(np.ones((2, 3, 4)))
    layer = L.BatchNormalization()
    layer(np.ones((2, 3, 4)))
    with pytest.raises(ValueError, match="x: layer .* was built for 4 features on axis -1 of a 3-D input"):
        layer(np.ones((2, 3, 5)))
    with pytest.raises(ValueError, match=r"mask: expected shape \(2, 3\)"):
        layer(np.ones((2, 3, 4)), training=True, mask=np.ones((2, 4), bool))
