"""Behaviour of the model API: stateful, masking, save/load, resume, overfitting, the Keras snippet."""
import io
import contextlib

import numpy as np
import pytest

import lstmlab
from lstmlab import layers as L


@pytest.fixture(autouse=True)
def seeded():
    lstmlab.set_random_seed(7)


SNIPPET_SUMMARY = """\
Model: "LSTM"
┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━┓
┃ Layer (type)                    ┃ Output Shape           ┃       Param # ┃
┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━┩
│ embedding (Embedding)           │ (None, 25, 512)        │     5,120,000 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ lstm (LSTM)                     │ (None, 1024)           │     6,295,552 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ dense (Dense)                   │ (None, 1)              │         1,025 │
└─────────────────────────────────┴────────────────────────┴───────────────┘
 Total params: 11,416,577 (43.55 MB)
 Trainable params: 11,416,577 (43.55 MB)
 Non-trainable params: 0 (0.00 B)
"""


def test_keras_snippet_prints_keras_counts():
    lstmlab.clear_session()  # a fresh process: automatic names start at embedding, lstm, dense
    model = lstmlab.Sequential([
        lstmlab.layers.Embedding(10000, 512, input_length=25),
        lstmlab.layers.LSTM(1024, return_sequences=False, stateful=True),
        lstmlab.layers.Dense(1, activation="sigmoid"),
    ], name="LSTM")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        model.summary()
    text = out.getvalue()
    assert text == SNIPPET_SUMMARY
    assert [layer.count_params() for layer in model.layers] == [5_120_000, 6_295_552, 1_025]
    assert model.count_params() == 11_416_577 == 4 * 1024 * (512 + 1024) + 4 * 1024 + 5_120_000 + 1_025


def test_keras_layouts_and_defaults():
    lstm, gru, rnn = L.LSTM(3), L.GRU(3), L.SimpleRNN(3)
    for layer in (lstm, gru, rnn):
        layer(np.zeros((2, 4, 5), np.float32))
    assert [w.shape for w in lstm.weights] == [(5, 12), (3, 12), (12,)]
    assert [w.shape for w in gru.weights] == [(5, 9), (3, 9), (2, 9)]
    assert [w.shape for w in rnn.weights] == [(5, 3), (3, 3), (3,)]
    np.testing.assert_array_equal(lstm.bias.value, [0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0])  # unit_forget_bias, gates i f c o
    r = lstm.recurrent_kernel.value.astype(np.float64)
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-6)  # orthogonal rows
    assert lstm.kernel.value.dtype == np.float32


def test_stateful_two_halves_equal_whole_sequence():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 10, 3)).astype(np.float32)
    whole = L.LSTM(5, return_sequences=True)
    full = whole(x)
    stateful = L.LSTM(5, return_sequences=True, stateful=True)
    stateful(x[:, :1])
    stateful.set_weights(whole.get_weights())
    stateful.reset_states()
    first, second = stateful(x[:, :6]), stateful(x[:, 6:])
    np.testing.assert_array_equal(np.concatenate([first, second], axis=1), full)
    stateful.reset_states()
    np.testing.assert_array_equal(stateful(x[:, :6]), first)  # reset_states forgets


def test_stateful_model_predict_carries_state_between_batches():
    rng = np.random.default_rng(1)
    model = lstmlab.Sequential([L.GRU(4, stateful=True, return_sequences=True, batch_input_shape=(2, None, 3))])
    x = rng.standard_normal((2, 8, 3)).astype(np.float32)
    whole = model.predict(x, batch_size=2)
    model.reset_states()
    halves = np.concatenate([model.predict(x[:, :3], batch_size=2), model.predict(x[:, 3:], batch_size=2)], axis=1)
    # float32, the project's 1e-5: the 3-step call runs the GRU's C loop, the longer ones its fused AVX-512
    # forward (own exp and tanh), which agree to rounding, not to the last bit
    np.testing.assert_allclose(halves, whole, rtol=1e-5, atol=1e-6)


def test_masking_padded_batch_equals_sequences_one_by_one():
    rng = np.random.default_rng(2)
    lengths = [5, 2, 4]
    seqs = [rng.integers(1, 9, n) for n in lengths]
    padded = np.zeros((3, 5), np.int64)
    for k, s in enumerate(seqs):
        padded[k, : len(s)] = s
    model = lstmlab.Sequential([L.Embedding(9, 3, mask_zero=True, dtype="float64"),
                                L.Bidirectional(L.LSTM(4, return_sequences=True, dtype="float64"), dtype="float64"),
                                L.LSTM(3, dtype="float64"), L.Dense(2, dtype="float64")])
    dy = rng.standard_normal((3, 2))
    out = model(padded, training=True)
    model.backward(dy)
    batch_grads = [g for layer in model.layers for g in layer.grads]
    summed = [np.zeros_like(g) for g in batch_grads]
    for k, s in enumerate(seqs):
        alone = model(s[None], training=True)
        np.testing.assert_allclose(alone[0], out[k], rtol=1e-12, atol=1e-14)
        model.backward(dy[k : k + 1])
        for acc, g in zip(summed, [g for layer in model.layers for g in layer.grads]):
            acc += g
    for name, a, b in zip([w.path for w in model.weights], batch_grads, summed):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12, err_msg=name)


def test_masked_sequence_loss_ignores_padding():
    model = lstmlab.Sequential([L.Embedding(5, 3, mask_zero=True), L.LSTM(4, return_sequences=True),
                                L.TimeDistributed(L.Dense(5))])
    model.compile("adam", lstmlab.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.array([[1, 2, 3, 0, 0]])
    y = np.array([[2, 3, 4, 0, 0]])
    y_other = np.array([[2, 3, 4, 1, 1]])  # differs only on padding
    assert model.evaluate(x, y) == model.evaluate(x, y_other)


def char_data(text="a stitch in time saves nine!!!"):
    assert len(text) == 30
    chars = sorted(set(text))
    ids = np.array([chars.index(c) for c in text])
    return chars, ids[None, :-1], ids[None, 1:]


def test_overfits_a_30_character_string():
    chars, x, y = char_data()
    model = lstmlab.Sequential([L.Embedding(len(chars), 16), L.LSTM(64, return_sequences=True), L.Dense(len(chars))])
    model.compile(lstmlab.optimizers.Adam(0.01), lstmlab.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    history = model.fit(x, y, epochs=150, verbose=0)
    assert history.history["loss"][0] > 2.0
    assert history.history["loss"][-1] < 0.05
    assert history.history["accuracy"][-1] == 1.0
    pred = model.predict(x).argmax(-1)[0]
    assert "".join(chars[i] for i in pred) == "a stitch in time saves nine!!!"[1:]


def small_model():
    return lstmlab.Sequential([L.Embedding(12, 8, input_length=6), L.Bidirectional(L.GRU(8, return_sequences=True)),
                               L.LSTM(8, dropout=0.1, recurrent_dropout=0.1), L.Dropout(0.2),
                               L.Dense(3, activation="softmax")])


def small_data(n=40):
    rng = np.random.default_rng(5)
    x = rng.integers(0, 12, (n, 6))
    return x, (x.sum(axis=1) % 3)


def test_save_load_identical_predictions(tmp_path):
    x, y = small_data()
    model = small_model()
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    path = tmp_path / "model.safetensors"
    model.save(path)
    loaded = lstmlab.load_model(path)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert [w.path for w in loaded.weights] == [w.path for w in model.weights]
    assert loaded.get_config() == model.get_config()
    assert loaded.optimizer.iterations == model.optimizer.iterations == 5
    assert b"pickle" not in path.read_bytes()[:2000]
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        assert a.dtype == b.dtype and np.array_equal(a, b)


def test_resumed_training_is_bit_identical(tmp_path):
    x, y = small_data()
    lstmlab.set_random_seed(11)
    a = small_model()
    a.compile(lstmlab.optimizers.Adam(0.01, clipnorm=1.0), "sparse_categorical_crossentropy")
    a.fit(x, y, epochs=4, batch_size=8, verbose=0)

    lstmlab.set_random_seed(11)
    b = small_model()
    b.compile(lstmlab.optimizers.Adam(0.01, clipnorm=1.0), "sparse_categorical_crossentropy")
    b.fit(x, y, epochs=2, batch_size=8, verbose=0)
    b.save(tmp_path / "half.safetensors")
    del b
    c = lstmlab.load_model(tmp_path / "half.safetensors")
    c.fit(x, y, epochs=4, initial_epoch=2, batch_size=8, verbose=0)
    for wa, wc in zip(a.weights, c.weights):
        assert np.array_equal(wa.value, wc.value), wa.path
    for slot in a.optimizer.slots:
        for wa, wc in zip(a.weights, c.weights):
            assert np.array_equal(a.optimizer.slots[slot][wa.path], c.optimizer.slots[slot][wc.path])


def test_seeded_runs_are_reproducible():
    x, y = small_data()
    results = []
    for _ in range(2):
        lstmlab.set_random_seed(3)
        m = small_model()
        m.compile("rmsprop", "sparse_categorical_crossentropy")
        m.fit(x, y, epochs=2, batch_size=16, verbose=0)
        results.append(m.get_weights())
    for a, b in zip(*results):
        assert np.array_equal(a, b)


def test_config_round_trip_for_every_layer():
    layers = [L.Dense(3, activation="relu", kernel_regularizer="l2"), L.Dropout(0.3), L.Embedding(5, 2, mask_zero=True),
              L.Masking(-1.0), L.LSTM(3, recurrent_dropout=0.2, go_backwards=True, unit_forget_bias=False),
              L.GRU(2, return_state=True), L.SimpleRNN(4, activation="relu"),
              L.Bidirectional(L.LSTM(2, return_sequences=True), merge_mode="sum"), L.TimeDistributed(L.Dense(2))]
    for layer in layers:
        clone = L.deserialize(L.serialize(layer))
        assert type(clone) is type(layer)
        assert clone.get_config() == layer.get_config()


def test_return_state_and_initial_state():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 4, 3)).astype(np.float32)
    layer = L.LSTM(5, return_sequences=True, return_state=True)
    seq, h, c = layer(x)
    np.testing.assert_array_equal(seq[:, -1], h)
    layer2 = L.LSTM(5, return_state=True)
    layer2(x)
    layer2.set_weights(layer.get_weights())
    _, h2, c2 = layer2(x[:, 2:], initial_state=[*layer(x[:, :2])[1:]])
    np.testing.assert_allclose(h2, h, rtol=1e-6)
    np.testing.assert_allclose(c2, c, rtol=1e-6)


def test_fit_progress_bar_and_validation_logs():
    x, y = small_data()
    model = small_model()
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        history = model.fit(x, y, epochs=2, batch_size=8, validation_split=0.25, verbose=1)
    text = out.getvalue()
    assert "Epoch 1/2" in text and "Epoch 2/2" in text
    assert "4/4 [==============================]" in text and "loss:" in text and "val_accuracy:" in text
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert len(history.history["loss"]) == 2
    result = model.evaluate(x[-10:], y[-10:], return_dict=True)
    assert result["loss"] == pytest.approx(history.history["val_loss"][-1])


def test_train_on_batch_returns_loss_and_metrics():
    x, y = small_data(8)
    model = small_model()
    model.compile(lstmlab.optimizers.SGD(0.1), "sparse_categorical_crossentropy", metrics=["accuracy"])
    before = model.evaluate(x, y)
    loss, acc = model.train_on_batch(x, y)
    assert loss == pytest.approx(before[0], rel=0.05)  # dropout makes the training loss differ a little
    assert 0.0 <= acc <= 1.0 and model.optimizer.iterations == 1


def test_bidirectional_return_state_and_backward():
    rng = np.random.default_rng(8)
    bi = L.Bidirectional(L.LSTM(3, return_sequences=True, return_state=True, dtype="float64"), merge_mode=None,
                         dtype="float64")
    x = rng.standard_normal((2, 5, 4))
    yf, yb, hf, cf, hb, cb = bi(x, training=True)
    np.testing.assert_array_equal(yf[:, -1], hf)
    np.testing.assert_array_equal(yb[:, 0], hb)  # the backward half ends at input step 0
    dx = bi.backward([rng.standard_normal(yf.shape), rng.standard_normal(yb.shape), None, None,
                      rng.standard_normal(hb.shape), None])
    assert dx.shape == x.shape and len(bi.grads) == 6
