"""Conv1D, MaxPooling1D, GlobalAveragePooling1D and GlobalMaxPooling1D.

Finite differences in float64 (every weight and the input, random upstream gradient, random non-zero
biases) and Keras 3 on the torch backend as the oracle: same weights and inputs, outputs to 1e-5 in float32,
and the input and weight gradients through torch autograd of the Keras layer.
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
from lstmlab.gradcheck import check_layer, gradcheck
from lstmlab.layers import initializers as inits

float64 = layer_cases.float64  # the fixture: pytest finds it under this name in the module
randomize = layer_cases.randomize
assert keras.backend.backend() == "torch", "tests/conftest.py sets KERAS_BACKEND=torch"

# (padding, strides, dilation_rate, groups): every padding with a stride, a dilation and groups
CONV_CASES = [(p, s, d, g) for p in ("valid", "same", "causal") for s, d, g in ((1, 1, 1), (2, 1, 1), (3, 1, 1),
                                                                                  (1, 2, 1), (1, 1, 2), (2, 1, 2))]


def keras_run(layer, x, dy, weights=(), mask=None):
    """Keras layer's output, dx and weight gradients for upstream ``dy``, via torch autograd."""
    tx = torch.tensor(x, requires_grad=True)
    if weights:
        layer.set_weights(list(weights))
    y = layer(tx) if mask is None else layer(tx, mask=torch.tensor(mask))
    (y * torch.tensor(dy)).sum().backward()
    t = lambda a: a.detach().cpu().numpy()  # noqa: E731
    return t(y), t(tx.grad), [t(w.value.grad) for w in layer.weights]


def ours_run(layer, x, dy_fn, mask=None):
    y = layer(x, training=True, mask=mask)
    dy = dy_fn(y.shape)
    return y, dy, layer.backward(dy)


# --- Conv1D -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("padding,strides,dilation,groups", CONV_CASES)
def test_conv1d_finite_differences(float64, padding, strides, dilation, groups):
    rng = np.random.default_rng(1)
    layer = L.Conv1D(6, 3, strides=strides, padding=padding, dilation_rate=dilation, groups=groups,
                     activation="tanh")
    layer.build((None, 8, 4))
    randomize(layer, rng)
    report = check_layer(layer, rng.standard_normal((2, 8, 4)))
    assert report.ok, report
    assert [t.name for t in report.tensors] == [f"{layer.name}/kernel", f"{layer.name}/bias", "x"]


@pytest.mark.parametrize("padding,strides,dilation,groups", CONV_CASES)
def test_conv1d_equals_keras_with_gradients(padding, strides, dilation, groups):
    rng = np.random.default_rng(2)
    B, T, C, F, K = 3, 9, 4, 6, 3
    ours = L.Conv1D(F, K, strides=strides, padding=padding, dilation_rate=dilation, groups=groups,
                    activation="relu", dtype="float32")
    ours.build((None, T, C))
    randomize(ours, rng)
    x = rng.standard_normal((B, T, C)).astype(np.float32)
    y, dy, dx = ours_run(ours, x, lambda s: rng.standard_normal(s).astype(np.float32))
    theirs = keras.layers.Conv1D(F, K, strides=strides, padding=padding, dilation_rate=dilation, groups=groups,
                                 activation="relu")
    theirs.build((B, T, C))
    assert [w.shape for w in ours.weights] == [tuple(w.shape) for w in theirs.weights]
    k_y, k_dx, k_grads = keras_run(theirs, x, dy, ours.get_weights())
    assert_close("y", y, k_y, 1e-5)
    assert_close("dx", dx, k_dx, 1e-5)
    for w, g, kg in zip(ours.weights, ours.grads, k_grads):
        assert_close(f"d{w.name}", g, kg, 1e-5)
    assert ours.compute_output_shape((None, T, C)) == tuple(theirs.compute_output_shape((None, T, C)))


def test_conv1d_without_bias_equals_keras_and_checks():
    rng = np.random.default_rng(3)
    ours = L.Conv1D(5, 2, use_bias=False, padding="same", dtype="float32")
    ours.build((None, 6, 3))
    randomize(ours, rng)
    x = rng.standard_normal((2, 6, 3)).astype(np.float32)
    y, dy, dx = ours_run(ours, x, lambda s: rng.standard_normal(s).astype(np.float32))
    theirs = keras.layers.Conv1D(5, 2, use_bias=False, padding="same")
    theirs.build((2, 6, 3))
    k_y, k_dx, k_grads = keras_run(theirs, x, dy, ours.get_weights())
    assert len(ours.weights) == len(theirs.weights) == 1
    assert_close("y", y, k_y, 1e-5)
    assert_close("dx", dx, k_dx, 1e-5)
    assert_close("dkernel", ours.grads[0], k_grads[0], 1e-5)


def test_conv1d_regularizers_equal_keras_penalties():
    """The penalties equal Keras's layer.losses, and the grads hold the data gradient plus the penalty's."""
    rng = np.random.default_rng(4)
    ours = L.Conv1D(3, 2, kernel_regularizer="l2", bias_regularizer="l1", dtype="float32")
    ours.build((None, 5, 2))
    randomize(ours, rng)
    theirs = keras.layers.Conv1D(3, 2, kernel_regularizer="l2", bias_regularizer="l1")
    theirs.build((1, 5, 2))
    theirs.set_weights(ours.get_weights())
    x = rng.standard_normal((2, 5, 2)).astype(np.float32)
    theirs(torch.tensor(x))
    assert_close("penalty", ours.regularization_loss(), float(sum(float(v.detach()) for v in theirs.losses)), 1e-5)
    plain = L.Conv1D(3, 2, dtype="float32")
    plain.build((None, 5, 2))
    plain.set_weights(ours.get_weights())
    dy = rng.standard_normal((2, 4, 3)).astype(np.float32)
    for layer in (ours, plain):
        layer(x, training=True)
        layer.backward(dy)
    kernel, bias = ours.get_weights()
    assert_close("dkernel", ours.grads[0], plain.grads[0] + 0.01 * 2 * kernel, 1e-6)
    assert_close("dbias", ours.grads[1], plain.grads[1] + 0.01 * np.sign(bias), 1e-6)


def test_conv1d_causal_output_sees_no_later_step():
    rng = np.random.default_rng(5)
    layer = L.Conv1D(2, 4, padding="causal", dilation_rate=2)
    layer.build((None, 10, 3))
    randomize(layer, rng)
    x = rng.standard_normal((1, 10, 3)).astype(np.float32)
    y = layer(x)
    x2 = x.copy()
    x2[:, 6:] += 5.0  # change step 6 onwards
    y2 = layer(x2)
    assert np.array_equal(y[:, :6], y2[:, :6])
    assert not np.allclose(y[:, 6:], y2[:, 6:])


def test_conv1d_output_shapes_with_unknown_dims_equal_keras():
    for kwargs in ({"padding": "valid"}, {"padding": "same", "strides": 2}, {"padding": "causal"},
                   {"padding": "valid", "strides": 3, "kernel_size": 4}):
        kwargs = {"kernel_size": 3, **kwargs}
        ours, theirs = L.Conv1D(7, **kwargs), keras.layers.Conv1D(7, **kwargs)
        for shape in ((None, None, 4), (None, 11, 4), (5, 4, 4)):
            assert ours.compute_output_shape(shape) == tuple(theirs.compute_output_shape(shape)), (kwargs, shape)


@pytest.mark.parametrize("kwargs,match", [
    ({"filters": 0, "kernel_size": 3}, r"filters: expected a positive integer, got 0"),
    ({"filters": 4, "kernel_size": 0}, r"kernel_size: expected a positive integer, got 0"),
    ({"filters": 4, "kernel_size": (3, 3)}, r"kernel_size: expected a positive integer or a list of one"),
    ({"filters": 4, "kernel_size": 3, "strides": -1}, r"strides: expected a positive integer, got -1"),
    ({"filters": 4, "kernel_size": 3, "padding": "full"}, r"padding: expected one of .*'causal', got 'full'"),
    ({"filters": 4, "kernel_size": 3, "data_format": "channels_first"},
     r"data_format: 'channels_first' is not supported"),
    ({"filters": 4, "kernel_size": 3, "data_format": "nhwc"}, r"data_format: expected 'channels_last'"),
    ({"filters": 4, "kernel_size": 3, "strides": 2, "dilation_rate": 2}, r"strides: strides > 1 cannot go with"),
    ({"filters": 4, "kernel_size": 3, "groups": 3}, r"groups: expected a divisor of filters=4, got 3"),
    ({"filters": 4, "kernel_size": 3, "activation": "swishy"}, r"activation: unknown activation 'swishy'"),
    ({"filters": 4, "kernel_size": 3, "use_bias": "yes"}, r"use_bias: expected true or false, got 'yes'"),
])
def test_conv1d_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        L.Conv1D(**kwargs)


def test_conv1d_bad_inputs():
    layer = L.Conv1D(4, 3, groups=2, name="c1")
    with pytest.raises(ValueError, match=r"groups: layer 'c1' with groups=2 needs input channels divisible by it, "
                                         r"got 3 channels"):
        layer(np.zeros((1, 5, 3), np.float32))
    layer(np.zeros((1, 5, 4), np.float32))
    with pytest.raises(ValueError, match=r"x: layer 'c1' was built for 4 input channels \(last axis\), got shape "
                                         r"\(1, 5, 6\)"):
        layer(np.zeros((1, 5, 6), np.float32))
    with pytest.raises(ValueError, match=r"x: layer 'c1' expects a 3-D input \(batch, steps, channels\), got shape "
                                         r"\(5, 4\)"):
        layer(np.zeros((5, 4), np.float32))
    with pytest.raises(ValueError, match=r"x: layer 'c1' \(kernel_size=3, dilation_rate=1, padding='valid'\) needs "
                                         r"at least 3 steps, got 2"):
        layer(np.zeros((1, 2, 4), np.float32))
    with pytest.raises(ValueError, match=r"needs at least 3 steps, got 2"):
        layer.compute_output_shape((None, 2, 4))
    with pytest.raises(ValueError, match=r"x: expected a floating-point array"):
        layer(np.zeros((1, 5, 4), np.int64))


# --- MaxPooling1D -----------------------------------------------------------------------------------------------

POOL_CASES = [(p, k, s) for p in ("valid", "same") for k, s in ((2, None), (3, None), (3, 1), (3, 2), (2, 3))]


@pytest.mark.parametrize("padding,pool_size,strides", POOL_CASES)
def test_max_pooling1d_finite_differences(float64, padding, pool_size, strides):
    layer = L.MaxPooling1D(pool_size, strides, padding)
    report = check_layer(layer, np.random.default_rng(6).standard_normal((2, 7, 3)))
    assert report.ok, report


@pytest.mark.parametrize("padding,pool_size,strides", POOL_CASES)
def test_max_pooling1d_equals_keras_with_gradients(padding, pool_size, strides):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((3, 8, 4)).astype(np.float32)
    ours = L.MaxPooling1D(pool_size, strides, padding, dtype="float32")
    y, dy, dx = ours_run(ours, x, lambda s: rng.standard_normal(s).astype(np.float32))
    theirs = keras.layers.MaxPooling1D(pool_size, strides, padding)
    k_y, k_dx, _ = keras_run(theirs, x, dy)
    assert_close("y", y, k_y, 1e-6)
    assert_close("dx", dx, k_dx, 1e-6)
    for shape in ((None, None, 4), (None, 8, 4), (2, 9, 4)):
        assert ours.compute_output_shape(shape) == tuple(theirs.compute_output_shape(shape))


def test_max_pooling1d_overlapping_windows_add_their_gradients():
    """With stride 1 the largest value wins two windows; its gradient is the sum of both."""
    x = np.array([[[0.0], [5.0], [1.0]]], np.float32)  # (1, 3, 1)
    layer = L.MaxPooling1D(2, 1)
    assert layer(x, training=True).ravel().tolist() == [5.0, 5.0]
    assert layer.backward(np.array([[[2.0], [3.0]]], np.float32)).ravel().tolist() == [0.0, 5.0, 0.0]


def test_max_pooling1d_bad_arguments_and_inputs():
    with pytest.raises(ValueError, match=r"pool_size: expected a positive integer, got 0"):
        L.MaxPooling1D(0)
    with pytest.raises(ValueError, match=r"strides: expected a positive integer, got 0"):
        L.MaxPooling1D(2, 0)
    with pytest.raises(ValueError, match=r"padding: expected one of 'valid', 'same', got 'causal'"):
        L.MaxPooling1D(padding="causal")
    with pytest.raises(ValueError, match=r"data_format: 'channels_first' is not supported"):
        L.MaxPooling1D(data_format="channels_first")
    layer = L.MaxPooling1D(4, name="mp")
    with pytest.raises(ValueError, match=r"x: layer 'mp' \(pool_size=4, padding='valid'\) needs at least 4 steps, "
                                         r"got 3"):
        layer(np.zeros((1, 3, 2), np.float32))
    with pytest.raises(ValueError, match=r"x: layer 'mp' expects a 3-D input"):
        layer(np.zeros((4, 2), np.float32))


# --- global pooling ---------------------------------------------------------------------------------------------

MASK = np.array([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0], [0, 1, 1, 0, 1, 0]], bool)  # post- and mid-padding


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("mask", [None, MASK])
def test_global_average_pooling1d_finite_differences(float64, keepdims, mask):
    report = check_layer(L.GlobalAveragePooling1D(keepdims=keepdims),
                         np.random.default_rng(8).standard_normal((3, 6, 4)), mask=mask)
    assert report.ok, report


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("mask", [None, MASK])
def test_global_average_pooling1d_equals_keras_with_gradients(keepdims, mask):
    rng = np.random.default_rng(9)
    x = rng.standard_normal((3, 6, 4)).astype(np.float32)
    ours = L.GlobalAveragePooling1D(keepdims=keepdims, dtype="float32")
    y, dy, dx = ours_run(ours, x, lambda s: rng.standard_normal(s).astype(np.float32), mask=mask)
    k_y, k_dx, _ = keras_run(keras.layers.GlobalAveragePooling1D(keepdims=keepdims), x, dy, mask=mask)
    assert_close("y", y, k_y, 1e-5)
    assert_close("dx", dx, k_dx, 1e-5)
    if mask is not None:  # the masked steps take no part: changing them changes nothing
        x2 = np.where(mask[:, :, None], x, 100.0).astype(np.float32)
        assert_close("y with other padding", ours(x2, mask=mask), y, 1e-6)


def test_global_average_pooling1d_all_masked_sequence_gives_zero_not_nan():
    """A deliberate difference from Keras (0 / 0 = NaN there): a sequence with no valid step averages to 0."""
    x = np.random.default_rng(10).standard_normal((2, 3, 2)).astype(np.float32)
    mask = np.array([[1, 1, 0], [0, 0, 0]], bool)
    layer = L.GlobalAveragePooling1D()
    y = layer(x, training=True, mask=mask)
    assert_close("row 0", y[0], x[0, :2].mean(axis=0), 1e-6)
    assert y[1].tolist() == [0.0, 0.0]
    assert layer.backward(np.ones((2, 2), np.float32))[1].tolist() == [[0.0, 0.0]] * 3


@pytest.mark.parametrize("keepdims", [False, True])
def test_global_max_pooling1d_finite_differences_and_keras(float64, keepdims):
    report = check_layer(L.GlobalMaxPooling1D(keepdims=keepdims), np.random.default_rng(11).standard_normal((3, 5, 4)))
    assert report.ok, report
    rng = np.random.default_rng(12)
    x = rng.standard_normal((3, 5, 4)).astype(np.float32)
    ours = L.GlobalMaxPooling1D(keepdims=keepdims, dtype="float32")
    y, dy, dx = ours_run(ours, x, lambda s: rng.standard_normal(s).astype(np.float32))
    k_y, k_dx, _ = keras_run(keras.layers.GlobalMaxPooling1D(keepdims=keepdims), x.astype(np.float32), dy)
    assert_close("y", y, k_y, 1e-6)
    assert_close("dx", dx, k_dx, 1e-6)


@pytest.mark.parametrize("cls", ["GlobalAveragePooling1D", "GlobalMaxPooling1D"])
def test_global_pooling_shapes_and_errors(cls):
    for keepdims in (False, True):
        ours, theirs = getattr(L, cls)(keepdims=keepdims), getattr(keras.layers, cls)(keepdims=keepdims)
        for shape in ((None, None, 4), (2, 7, 4)):
            assert ours.compute_output_shape(shape) == tuple(theirs.compute_output_shape(shape))
    with pytest.raises(ValueError, match=r"keepdims: expected true or false, got 1"):
        getattr(L, cls)(keepdims=1)
    with pytest.raises(ValueError, match=r"data_format: 'channels_first' is not supported"):
        getattr(L, cls)(data_format="channels_first")
    with pytest.raises(ValueError, match=r"x: layer 'g' expects a 3-D input \(batch, steps, channels\), got shape "
                                         r"\(2, 4\)"):
        getattr(L, cls)(name="g")(np.zeros((2, 4), np.float32))


def test_global_average_pooling1d_bad_mask():
    with pytest.raises(ValueError, match=r"mask: expected shape \(2, 3\)"):
        L.GlobalAveragePooling1D()(np.zeros((2, 3, 4), np.float32), mask=np.ones((2, 4), bool))


# --- masks and configs, as Keras ----------------------------------------------------------------------------------

LAYER_PAIRS = [
    (lambda m: m.Conv1D(4, 2, padding="same"), (2, 6, 3)),
    (lambda m: m.MaxPooling1D(2), (2, 6, 3)),
    (lambda m: m.GlobalAveragePooling1D(), (2, 6, 3)),
    (lambda m: m.GlobalMaxPooling1D(keepdims=True), (2, 6, 3)),
]


@pytest.mark.parametrize("make,shape", LAYER_PAIRS)
def test_mask_propagation_equals_keras(make, shape):
    """Keras 3 passes a mask on only from a layer that supports masking, and then as its compute_mask says."""
    x = np.random.default_rng(13).standard_normal(shape).astype(np.float32)
    mask = np.ones(shape[:2], bool)
    mask[0, -2:] = False
    ours, theirs = make(L), make(keras.layers)
    ours(x, mask=mask)
    theirs.build(shape)
    k_mask = theirs.compute_mask(torch.tensor(x), torch.tensor(mask)) if theirs.supports_masking else None
    assert (ours.output_mask is None) == (k_mask is None)
    if k_mask is not None:
        assert np.array_equal(ours.output_mask, k_mask.cpu().numpy())


@pytest.mark.parametrize("make,shape", LAYER_PAIRS + [
    (lambda m: m.Conv1D(6, 3, strides=2, padding="causal", groups=3, activation="tanh", use_bias=False,
                        kernel_initializer="glorot_normal", kernel_regularizer="l2"), (2, 6, 3)),
    (lambda m: m.MaxPooling1D(3, 1, "same"), (2, 6, 3)),
    (lambda m: m.GlobalAveragePooling1D(keepdims=True), (2, 6, 3)),
])
def test_config_round_trip_with_keras_names(make, shape):
    ours, theirs = make(L), make(keras.layers)
    ours.build(shape)
    config = json.loads(json.dumps(L.serialize(ours)))  # through a file's JSON
    again = L.deserialize(config)
    assert type(again) is type(ours)
    assert json.loads(json.dumps(L.serialize(again))) == config
    assert again.compute_output_shape(shape) == ours.compute_output_shape(shape)
    k_config = theirs.get_config()
    own = {k: v for k, v in config["config"].items() if k not in ("name", "dtype", "trainable", "batch_input_shape")}
    assert set(own) <= set(k_config), sorted(set(own) - set(k_config))
    for key in own:  # Keras's argument names, and the same values where Keras writes plain values
        if key.endswith("_regularizer"):  # lstmlab writes l2 as L1L2(l1=0, l2=...); the values are tested above
            assert (own[key] is None) == (k_config[key] is None), key
            continue
        if key.endswith("_initializer"):
            # lstmlab writes Keras's snake-case name, Keras its class name: the same class either way
            assert type(inits.get(own[key]["class_name"])) is type(inits.get(k_config[key]["class_name"])), key
            continue
        kv = list(k_config[key]) if isinstance(k_config[key], tuple) else k_config[key]
        assert own[key] == kv, (key, own[key], kv)


def test_layers_rebuilt_from_config_compute_the_same():
    rng = np.random.default_rng(14)
    layer = L.Conv1D(3, 2, padding="same", activation="sigmoid")
    x = rng.standard_normal((2, 5, 4)).astype(np.float32)
    y = layer(x)
    again = L.deserialize(json.loads(json.dumps(L.serialize(layer))))
    again.build((None, 5, 4))
    again.set_weights(layer.get_weights())
    assert np.array_equal(again(x), y)


def test_conv1d_gather_backward_is_the_transpose(float64):
    """The functional pair on its own, as a user of lstmlab.functional calls it: 'same' padding with stride 2 on
    11 steps pads unevenly (1 left, 2 right), and the scatter must drop the padding's gradient on both sides."""
    from lstmlab.functional.conv import conv1d_backward, conv1d_forward
    rng = np.random.default_rng(15)
    x, kernel, bias = rng.standard_normal((2, 11, 3)), rng.standard_normal((4, 3, 5)), rng.standard_normal(5)
    r = rng.standard_normal(conv1d_forward(x, kernel, bias, strides=2, padding="same")[0].shape)

    def loss():
        return float(np.sum(r * conv1d_forward(x, kernel, bias, strides=2, padding="same", activation="softsign")[0]))

    _, cache = conv1d_forward(x, kernel, bias, strides=2, padding="same", activation="softsign")
    g = conv1d_backward(r, cache)
    report = gradcheck(loss, {"x": x, "kernel": kernel, "bias": bias}, {"x": g.dx, "kernel": g.dkernel,
                                                                          "bias": g.dbias})
    assert report.ok, report


def test_functional_window_arguments_are_checked():
    from lstmlab.functional.conv import conv1d_forward
    from lstmlab.functional.pooling import max_pool1d_forward
    x = np.zeros((1, 6, 2))
    with pytest.raises(ValueError, match=r"strides: expected a positive integer, got 0"):
        conv1d_forward(x, np.zeros((2, 2, 3)), strides=0)
    with pytest.raises(ValueError, match=r"kernel: expected shape \(\?, 1, 4\) \(kernel_size, in_channels=2 / groups=2"):
        conv1d_forward(x, np.zeros((2, 2, 4)), groups=2)
    with pytest.raises(ValueError, match=r"groups: expected a positive divisor of the input channels \(2\) and of "
                                         r"the filters \(3\), got 2"):
        conv1d_forward(x, np.zeros((2, 1, 3)), groups=2)
    with pytest.raises(ValueError, match=r"pool_size: expected a positive integer, got 0"):
        max_pool1d_forward(x, 0)
