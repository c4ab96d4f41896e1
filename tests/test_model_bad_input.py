"""Bad input to layers and models: ValueError naming the argument, the value and what was expected."""
import numpy as np
import pytest

import lstmlab
from lstmlab import layers as L


def lstm_model(**lstm_kwargs):
    m = lstmlab.Sequential([L.LSTM(4, input_shape=(5, 3), **lstm_kwargs), L.Dense(2, activation="softmax")])
    m.compile("adam", "sparse_categorical_crossentropy")
    return m


def test_wrong_rank():
    m = lstm_model()
    with pytest.raises(ValueError, match=r"^x: model '.*' expects input of shape \(batch, 5, 3\), got \(4, 5\)$"):
        m.predict(np.zeros((4, 5), np.float32))


def test_wrong_feature_size():
    m = lstm_model()
    with pytest.raises(ValueError, match=r"^x: model '.*' expects input of shape \(batch, 5, 3\), got \(4, 5, 7\)$"):
        m.fit(np.zeros((4, 5, 7), np.float32), np.zeros(4, int), verbose=0)
    layer = L.LSTM(3)
    layer(np.zeros((2, 4, 6), np.float32))
    with pytest.raises(ValueError, match=r"^x: layer '.*' was built for 6 input features \(last axis\), got shape \(2, 4, 5\)$"):
        layer(np.zeros((2, 4, 5), np.float32))
    with pytest.raises(ValueError, match=r"^x: expected a 3-D array \(batch, time, features\), got 2-D array of shape \(2, 6\)$"):
        layer(np.zeros((2, 6), np.float32))


def test_stateful_batch_size_mismatch():
    layer = L.LSTM(3, stateful=True)
    layer(np.zeros((4, 2, 2), np.float32))
    with pytest.raises(ValueError, match=r"^x: stateful layer '.*' carries state for batch size 4, got a batch of 3; feed batches of exactly 4"):
        layer(np.zeros((3, 2, 2), np.float32))
    m = lstmlab.Sequential([L.LSTM(3, stateful=True, batch_input_shape=(4, 5, 3)), L.Dense(1)])
    m.compile("sgd", "mse")
    with pytest.raises(ValueError, match=r"^batch_size: a stateful model needs the number of samples \(10\) in x to be a multiple of batch_size \(4\)$"):
        m.fit(np.zeros((10, 5, 3), np.float32), np.zeros((10, 1)), batch_size=4, verbose=0)


def test_labels_out_of_range():
    m = lstm_model()
    with pytest.raises(ValueError, match=r"^y: expected class ids in \[0, 2\) for 2 output units, got 2$"):
        m.fit(np.zeros((4, 5, 3), np.float32), np.array([0, 1, 2, 0]), verbose=0)
    with pytest.raises(ValueError, match=r"^y: expected class ids in \[0, 2\) for 2 output units, got -1$"):
        m.evaluate(np.zeros((4, 5, 3), np.float32), np.array([0, -1, 1, 0]))


def test_token_ids_out_of_range():
    m = lstmlab.Sequential([L.Embedding(10, 4), L.LSTM(2)])
    with pytest.raises(ValueError, match=r"^x: layer '.*' expects token ids in \[0, 10\), got 10$"):
        m.predict(np.array([[1, 2, 10]]))


def test_nan_in_x_or_y():
    m = lstm_model()
    x = np.zeros((4, 5, 3), np.float32)
    x[2, 1, 0] = np.nan
    with pytest.raises(ValueError, match=r"^x: expected finite values, got 1 NaN or Inf value\(s\) in an array of shape \(4, 5, 3\)$"):
        m.fit(x, np.zeros(4, int), verbose=0)
    m2 = lstmlab.Sequential([L.LSTM(4, input_shape=(5, 3)), L.Dense(1)])
    m2.compile("adam", "mse")
    y = np.zeros((4, 1))
    y[0] = np.inf
    with pytest.raises(ValueError, match=r"^y: expected finite values, got 1 NaN or Inf value\(s\)$"):
        m2.fit(np.zeros((4, 5, 3), np.float32), y, verbose=0)


def test_x_y_length_mismatch_and_bad_batch_size():
    m = lstm_model()
    with pytest.raises(ValueError, match=r"^x, y: expected the same number of samples, got 4 and 3$"):
        m.fit(np.zeros((4, 5, 3), np.float32), np.zeros(3, int), verbose=0)
    with pytest.raises(ValueError, match=r"^batch_size: expected a positive integer, got 0$"):
        m.fit(np.zeros((4, 5, 3), np.float32), np.zeros(4, int), batch_size=0, verbose=0)


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(ValueError, match=r"^loss: unknown loss 'cross_entropy'; expected one of binary_crossentropy, categorical_crossentropy, mae, mean_absolute_error, mean_squared_error, mse, sparse_categorical_crossentropy$"):
        lstm_model().compile("adam", "cross_entropy")
    with pytest.raises(ValueError, match=r"^optimizer: unknown optimizer 'adadelta'; expected one of adagrad, adam, adamax, adamw, nadam, rmsprop, sgd$"):
        lstm_model().compile("adadelta", "mse")
    with pytest.raises(ValueError, match=r"^activation: unknown activation 'gelu'; expected one of hard_sigmoid, linear, relu, sigmoid, softmax, softsign, tanh$"):
        L.Dense(3, activation="gelu")
    with pytest.raises(ValueError, match=r"^recurrent_activation: unknown activation 'sigmod'; expected one of"):
        L.LSTM(3, recurrent_activation="sigmod")
    with pytest.raises(ValueError, match=r"^metrics: unknown metric 'f1'; expected one of acc, accuracy, auc, mae, mean_absolute_error, mean_squared_error, mse, precision, recall, sparse_top_k_categorical_accuracy, top_k_categorical_accuracy$"):
        lstm_model().compile("adam", "mse", metrics=["f1"])
    with pytest.raises(ValueError, match=r"^kernel_initializer: unknown initializer 'xavier'; expected one of"):
        L.LSTM(3, kernel_initializer="xavier")
    with pytest.raises(ValueError, match=r"^kernel_regularizer: unknown regularizer 'l3'; expected one of L1L2, l1, l1_l2, l2 or None$"):
        L.Dense(3, kernel_regularizer="l3")


def test_bad_hyperparameters():
    with pytest.raises(ValueError, match=r"^units: expected a positive integer, got 0$"):
        L.LSTM(0)
    with pytest.raises(ValueError, match=r"^dropout: expected a rate in \[0, 1\), got 1.0$"):
        L.GRU(3, dropout=1.0)
    with pytest.raises(ValueError, match=r"^merge_mode: expected one of concat, sum, mul, ave, None, got 'max'$"):
        L.Bidirectional(L.LSTM(2), merge_mode="max")
    with pytest.raises(ValueError, match=r"^reset_after: expected True or False, got 'no'$"):
        L.GRU(3, reset_after="no")  # reset_after=False is implemented now (tests/test_cells_layers.py)
    with pytest.raises(ValueError, match=r"^layer: '.*' has return_state=True; a Sequential model passes one tensor"):
        lstmlab.Sequential([L.LSTM(2, return_state=True)])


def test_fit_before_compile_and_backward_before_training_call():
    m = lstmlab.Sequential([L.Dense(1, input_shape=(2,))])
    with pytest.raises(ValueError, match=r"^model '.*': call compile\(optimizer, loss\) before fit\(\)$"):
        m.fit(np.zeros((2, 2)), np.zeros((2, 1)))
    layer = L.Dense(2)
    layer(np.zeros((1, 3), np.float32))
    with pytest.raises(RuntimeError, match=r"backward\(\) needs a preceding call with training=True"):
        layer.backward(np.zeros((1, 2), np.float32))


def test_corrupted_and_foreign_model_files(tmp_path):
    m = lstm_model()
    path = tmp_path / "m.safetensors"
    m.save(path)
    data = path.read_bytes()
    (tmp_path / "trunc.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"^path: .*truncated or corrupted data for tensor|^path: .*truncated or not a safetensors"):
        lstmlab.load_model(tmp_path / "trunc.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 3)
    with pytest.raises(ValueError, match=r"^path: .*not a safetensors file \(only 3 bytes\)$"):
        lstmlab.load_model(tmp_path / "junk.safetensors")
    from lstmlab.io import save_file

    save_file({"a": np.zeros(2)}, tmp_path / "other.safetensors", {"format": "something"})
    with pytest.raises(ValueError, match=r"^path: .* is a safetensors file but not an lstmlab model \(format 'something'\)$"):
        lstmlab.load_model(tmp_path / "other.safetensors")
    with pytest.raises(ValueError, match=r"^path: no model file at"):
        lstmlab.load_model(tmp_path / "missing.safetensors")
