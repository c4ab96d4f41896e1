"""Whole-model gradients in float64 with lstmlab.gradcheck, regularizers on."""
import numpy as np
import pytest

import lstmlab
from lstmlab import gradcheck
from lstmlab import layers as L

from layer_cases import float64  # noqa: F401 (the fixture)


def check_model(model, x, y, loss, *, max_elements=None, tol=1e-6):
    model.compile("sgd", loss)
    model._train_seed = 99

    def total_loss():
        model._seed_layers(0)  # the same dropout masks in every evaluation
        y_pred, mask = model._forward(x, training=True)
        return model.loss(y, y_pred, mask)[0] + model.regularization_loss()

    total_loss()
    model._seed_layers(0)
    y_pred, mask = model._forward(x, training=True)
    _, dy = model.loss(y, y_pred, mask)
    model.backward(dy)
    wrt = {w.path: w.value for w in model.weights}
    analytic = {w.path: g for layer in model.layers for w, g in zip(layer.weights, layer.grads)}
    report = gradcheck(total_loss, wrt, analytic, max_elements=max_elements, tol=tol)
    assert report.ok, report
    assert len(report.tensors) == len(model.weights)
    return report


def random_biases(model, rng):
    for w in model.weights:  # non-zero biases everywhere: zero biases hide bugs
        if w.name == "bias":
            w.value[...] = rng.uniform(-0.5, 0.5, w.shape)


def test_embedding_bidirectional_lstm_lstm_dense_with_regularizers(float64):
    rng = np.random.default_rng(0)
    reg = lstmlab.layers.regularizers.l1_l2(1e-3, 1e-2)
    model = lstmlab.Sequential([
        L.Embedding(7, 4, embeddings_regularizer="l2", input_length=5),
        L.Bidirectional(L.LSTM(3, return_sequences=True, kernel_regularizer=reg, recurrent_regularizer="l2",
                               bias_regularizer="l1")),
        L.LSTM(4, kernel_regularizer="l1", recurrent_regularizer=reg),
        L.Dense(2, activation="softmax", kernel_regularizer="l2", bias_regularizer=reg),
    ])
    random_biases(model, rng)
    x = rng.integers(0, 7, (3, 5))
    y = rng.integers(0, 2, 3)
    assert model.regularization_loss() > 0
    check_model(model, x, y, "sparse_categorical_crossentropy")


@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave"])
def test_bidirectional_merge_modes_with_masking(float64, merge_mode):
    rng = np.random.default_rng(1)
    model = lstmlab.Sequential([
        L.Embedding(6, 3, mask_zero=True),
        L.Bidirectional(L.GRU(3, return_sequences=True), merge_mode=merge_mode),
        L.TimeDistributed(L.Dense(2)),
    ])
    x = np.array([[1, 2, 3, 4], [5, 1, 0, 0], [2, 0, 0, 0]])
    model.build((None, 4))
    random_biases(model, rng)
    check_model(model, x, rng.standard_normal((3, 4, 2)), "mse")


def test_dropout_and_recurrent_dropout(float64):
    rng = np.random.default_rng(2)
    model = lstmlab.Sequential([
        L.LSTM(4, dropout=0.3, recurrent_dropout=0.4, return_sequences=True, input_shape=(5, 3)),
        L.Dropout(0.25),
        L.SimpleRNN(3, recurrent_dropout=0.2, go_backwards=True),
        L.Dense(1, activation="sigmoid"),
    ])
    random_biases(model, rng)
    check_model(model, rng.standard_normal((4, 5, 3)), rng.integers(0, 2, (4, 1)).astype(float), "binary_crossentropy")


def test_masking_layer_with_go_backwards_gru(float64):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 6, 2))
    x[1, 4:] = 0.0
    x[2, 2:] = 0.0
    model = lstmlab.Sequential([
        L.Masking(0.0, input_shape=(6, 2)),
        L.GRU(3, go_backwards=True, return_sequences=True),
        L.LSTM(2, activation="softsign", recurrent_activation="hard_sigmoid"),
        L.Dense(3),
    ])
    random_biases(model, rng)
    check_model(model, x, rng.dirichlet(np.ones(3), 3), lstmlab.losses.CategoricalCrossentropy(from_logits=True))


@pytest.mark.parametrize("loss", ["mse", "mae", "binary_crossentropy", "categorical_crossentropy",
                                  lstmlab.losses.BinaryCrossentropy(from_logits=True)])
def test_each_loss_gradient(float64, loss):
    rng = np.random.default_rng(4)
    act = "sigmoid" if loss == "binary_crossentropy" else ("softmax" if loss == "categorical_crossentropy" else None)
    model = lstmlab.Sequential([L.Dense(3, activation=act, input_shape=(4,))])
    random_biases(model, rng)
    x = rng.standard_normal((5, 4))
    y = rng.dirichlet(np.ones(3), 5) if loss == "categorical_crossentropy" else rng.uniform(0, 1, (5, 3))
    check_model(model, x, y, loss)
