"""The functional API and subclassing: graphs of layer calls, shared layers, several inputs and outputs,
checked by finite differences and against Keras 3 on the same weights."""
import numpy as np
import pytest

import lstmlab
from lstmlab import Input, Model, layers
from lstmlab.gradcheck import check_layer

F64 = "float64"


def _seq2seq(dtype=F64, units=4):
    """An encoder-decoder: the encoder's final states start the decoder (Keras's lstm_seq2seq shape)."""
    enc_in = Input((None, 3), dtype=dtype, name="encoder_inputs")
    dec_in = Input((None, 2), dtype=dtype, name="decoder_inputs")
    _, h, c = layers.LSTM(units, return_state=True, dtype=dtype, name="encoder")(enc_in)
    dec = layers.LSTM(units, return_sequences=True, return_state=True, dtype=dtype, name="decoder")
    seq, _, _ = dec(dec_in, initial_state=[h, c])
    out = layers.Dense(5, activation="softmax", dtype=dtype, name="dense")(seq)
    return Model([enc_in, dec_in], out)


def _shared_two_outputs(dtype=F64):
    """One Dense called on two branches, and two outputs, one of them an LSTM state."""
    a = Input((None, 3), dtype=dtype, name="a")
    b = Input((None, 3), dtype=dtype, name="b")
    lstm = layers.LSTM(4, return_sequences=True, return_state=True, dtype=dtype, name="lstm")
    shared = layers.Dense(4, activation="tanh", dtype=dtype, name="shared")
    seq_a, state_a, _ = lstm(a)
    seq_b = layers.GRU(4, return_sequences=True, dtype=dtype, name="gru")(b)
    merged = layers.Add(dtype=dtype, name="add")([shared(seq_a), shared(seq_b)])  # shared: two calls, two caches
    out1 = layers.Dense(2, dtype=dtype, name="out1")(merged)
    out2 = layers.Dense(1, dtype=dtype, name="out2")(shared(state_a))  # and a third call
    return Model([a, b], [out1, out2])


def test_graph_with_initial_state_matches_finite_differences():
    rng = np.random.default_rng(0)
    model = _seq2seq()
    report = check_layer(model, [rng.normal(size=(2, 4, 3)), rng.normal(size=(2, 3, 2))])
    assert report.ok, report
    assert {t.name for t in report.tensors} >= {"encoder/kernel", "decoder/recurrent_kernel", "x[0]", "x[1]"}


def test_shared_layer_and_two_outputs_match_finite_differences():
    rng = np.random.default_rng(1)
    model = _shared_two_outputs()
    report = check_layer(model, [rng.normal(size=(3, 5, 3)), rng.normal(size=(3, 5, 3))])
    assert report.ok, report
    assert len(model.get_layer("shared")._inbound_nodes) == 3


def test_a_layer_shared_by_two_calls_gets_the_sum_of_both_gradients():
    x = Input((2,), dtype=F64)
    d = layers.Dense(2, use_bias=False, dtype=F64)
    model = Model(x, d(d(x)))
    W = np.array([[1.0, 2.0], [3.0, 4.0]])
    d.set_weights([W])
    xv = np.array([[1.0, -1.0]])
    model(xv, training=True)
    model.backward(np.ones((1, 2)))
    # y = x W W; dL/dW = x^T (1 W^T) + (x W)^T 1, the two calls' contributions
    expected = xv.T @ (np.ones((1, 2)) @ W.T) + (xv @ W).T @ np.ones((1, 2))
    np.testing.assert_allclose(d.grads[0], expected)


def _keras_copy(model):
    """The same graph built in Keras 3 with our weights."""
    import keras
    from keras import layers as kl
    enc_in = keras.Input((None, 3), name="encoder_inputs")
    dec_in = keras.Input((None, 2), name="decoder_inputs")
    _, h, c = kl.LSTM(4, return_state=True, name="encoder")(enc_in)
    seq, _, _ = kl.LSTM(4, return_sequences=True, return_state=True, name="decoder")(dec_in, initial_state=[h, c])
    out = kl.Dense(5, activation="softmax", name="dense")(seq)
    km = keras.Model([enc_in, dec_in], out)
    for name in ("encoder", "decoder", "dense"):
        km.get_layer(name).set_weights(model.get_layer(name).get_weights())
    return km


def test_seq2seq_outputs_and_training_equal_keras():
    keras = pytest.importorskip("keras")
    lstmlab.set_random_seed(3)
    model = _seq2seq(dtype="float32")
    km = _keras_copy(model)
    rng = np.random.default_rng(2)
    xe = rng.normal(size=(8, 5, 3)).astype("float32")
    xd = rng.normal(size=(8, 4, 2)).astype("float32")
    y = rng.integers(0, 5, size=(8, 4))
    np.testing.assert_allclose(model.predict([xe, xd], verbose=0), km.predict([xe, xd], verbose=0), atol=1e-5)
    model.compile(lstmlab.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
    km.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
    ours = model.fit([xe, xd], y, batch_size=4, epochs=3, shuffle=False, verbose=0).history["loss"]
    theirs = km.fit([xe, xd], y, batch_size=4, epochs=3, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(ours, theirs, rtol=1e-5)


class Residual(Model):
    """A subclassed model: an LSTM, a Dense, a residual sum, as Keras users write them."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.lstm = layers.LSTM(3, return_sequences=True, dtype=F64)
        self.proj = layers.Dense(3, activation="tanh", dtype=F64)
        self.add = layers.Add(dtype=F64)
        self.head = layers.Dense(1, dtype=F64)

    def call(self, inputs, training=None):
        h = self.lstm(inputs)
        return self.head(self.add([h, self.proj(h)]))


def test_subclassed_model_backward_follows_its_calls():
    rng = np.random.default_rng(4)
    model = Residual()
    report = check_layer(model, rng.normal(size=(2, 4, 3)))
    assert report.ok, report
    assert [l.name for l in model.layers] == [model.lstm.name, model.proj.name, model.add.name, model.head.name]


class RawNumpy(Model):
    def __init__(self):
        super().__init__()
        self.lstm = layers.LSTM(3, name="lstm_raw")
        self.head = layers.Dense(1)

    def call(self, inputs):
        return self.head(self.lstm(inputs) * 2.0)


def test_raw_numpy_on_a_layer_output_is_refused_in_training_and_fine_in_inference():
    model = RawNumpy()
    x = np.ones((2, 3, 4), np.float32)
    assert model(x).shape == (2, 1)  # inference: any NumPy is fine
    with pytest.raises(ValueError, match=r"call\(\) applied numpy\.multiply to the output of layer 'lstm_raw', and "
                                         r"the result is passed to layer 'dense\S*'; backward follows lstmlab layer "
                                         r"calls only"):
        model(x, training=True)
    model.compile("sgd", "mse")
    with pytest.raises(ValueError, match="numpy.multiply"):
        model.fit(x, np.zeros((2, 1)), verbose=0)


def test_slicing_a_layer_output_is_refused_too():
    class Slice(Model):
        def __init__(self):
            super().__init__()
            self.lstm = layers.LSTM(3, return_sequences=True, name="lstm_slice")

        def call(self, inputs):
            return self.lstm(inputs)[:, -1]

    with pytest.raises(ValueError, match=r"applied indexing or a view to the output of layer 'lstm_slice', and the "
                                         r"result is returned by the model"):
        Slice()(np.ones((1, 2, 3), np.float32), training=True)


def test_sequential_is_a_model_and_nests_in_a_graph():
    inner = lstmlab.Sequential([layers.LSTM(3, dtype=F64), layers.Dense(2, dtype=F64)])
    assert isinstance(inner, Model)
    x = Input((None, 2), dtype=F64)
    outer = Model(x, layers.Dense(1, dtype=F64)(inner(x)))
    report = check_layer(outer, np.random.default_rng(5).normal(size=(2, 3, 2)))
    assert report.ok, report


def test_graph_accessors():
    model = _shared_two_outputs(dtype="float32")
    assert [t.name for t in model.inputs] == ["a", "b"]
    assert model.output_names == ["out1", "out2"]
    assert model.get_layer("lstm").output_shape == [(None, None, 4), (None, 4), (None, 4)]
    assert model.get_layer(index=0).name == "a"
    assert model.output_shape == [(None, None, 2), (None, 1)]
    with pytest.raises(ValueError, match=r"^name: model '.*' has no layer named 'nope'; its layers are a, b, lstm"):
        model.get_layer("nope")
    with pytest.raises(ValueError, match=r"layer 'shared' has 3 calls"):
        _ = model.get_layer("shared").output_shape


def test_graph_errors_name_the_problem():
    a, b = Input((3,), name="a1"), Input((3,), name="b1")
    y = layers.Add()([a, b])
    with pytest.raises(ValueError, match=r"disconnected: it reads Input 'b1', which is not among the model's inputs"):
        Model(a, y)
    with pytest.raises(TypeError, match="operations on a symbolic tensor are not recorded"):
        _ = a * 2
    model = Model([a, b], y)
    with pytest.raises(ValueError, match=r"^x: model '.*' has 2 inputs, got 1 arrays$"):
        model.predict(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"^x\[1\]: input 'b1' of model '.*' expects shape \(None, 3\), got \(2, 4\)$"):
        model.predict([np.zeros((2, 3)), np.zeros((2, 4))])


def test_summary_matches_keras_rows(monkeypatch):
    keras = pytest.importorskip("keras")
    monkeypatch.setenv("COLUMNS", "200")  # Keras's table (rich) would otherwise fold to the test's terminal
    from keras import layers as kl

    def build(api, L):
        a = api.Input((None, 8), batch_size=4, name="a")
        b = api.Input((5,), name="b")
        h = L.LSTM(6, name="lstm")(a)
        d = L.Dense(6, name="d")(b)
        return api.Model([a, b], L.Dense(2, name="out")(L.Add(name="add")([h, d])), name="two_inputs")

    ours, theirs = [], []
    build(lstmlab, layers).summary(line_length=120, print_fn=ours.append)
    build(keras, kl).summary(line_length=120, print_fn=lambda text, *a, **k: theirs.extend(text.split("\n")))

    def cells(lines):  # the table's content, cell by cell (rich may give a column one character less)
        return [[c.strip() for c in l.strip("│").split("│")] if l.startswith("│") else l.strip()
                for l in lines if l.startswith("│") or "params" in l or l.startswith("Model")]
    assert cells(ours) == cells(theirs)
    assert cells(ours)[1] == ["a (InputLayer)", "(4, None, 8)", "0", "-"]


def test_functional_model_saves_and_loads(tmp_path):
    model = _shared_two_outputs(dtype="float32")
    model.compile("adam", ["mse", "mse"], loss_weights=[1.0, 0.5])
    rng = np.random.default_rng(6)
    x = [rng.normal(size=(4, 5, 3)).astype("float32") for _ in range(2)]
    y = [rng.normal(size=(4, 5, 2)), rng.normal(size=(4, 1))]
    model.fit(x, y, epochs=1, verbose=0)
    model.save(tmp_path / "m.safetensors")
    again = lstmlab.load_model(tmp_path / "m.safetensors")
    assert type(again) is Model and again.get_config() == model.get_config()
    for p, q in zip(model.predict(x, verbose=0), again.predict(x, verbose=0)):
        np.testing.assert_array_equal(p, q)
    h1 = model.fit(x, y, epochs=1, verbose=0, shuffle=False).history
    h2 = again.fit(x, y, epochs=1, verbose=0, shuffle=False).history
    assert h1 == h2


def _masked_attention_graph(api, L, dtype=None):
    """Token ids -> Embedding(mask_zero) -> LSTM -> self-attention -> masked average -> Dense: the mask travels
    with the tensors through every call, as in Keras."""
    kw = {} if dtype is None else {"dtype": dtype}
    ids = api.Input((None,), dtype="int32", name="ids")
    e = L.Embedding(7, 4, mask_zero=True, name="emb", **kw)(ids)
    h = L.LSTM(3, return_sequences=True, name="lstm", **kw)(e)
    a = L.Attention(name="att", **kw)([h, h])
    c = L.Concatenate(name="cat", **kw)([h, a])
    p = L.GlobalAveragePooling1D(name="pool", **kw)(c)
    return api.Model(ids, L.Dense(2, name="out", **kw)(p))


def test_masks_travel_through_a_graph_as_in_keras():
    keras = pytest.importorskip("keras")
    ours = _masked_attention_graph(lstmlab, layers)
    theirs = _masked_attention_graph(keras, keras.layers)
    for layer in ("emb", "lstm", "out"):
        theirs.get_layer(layer).set_weights(ours.get_layer(layer).get_weights())
    ids = np.array([[3, 1, 4, 0, 0], [2, 6, 5, 1, 3], [1, 0, 0, 0, 0]])
    np.testing.assert_allclose(ours.predict(ids, verbose=0), theirs.predict(ids, verbose=0), atol=1e-5)


def test_masked_attention_graph_matches_finite_differences():
    model = _masked_attention_graph(lstmlab, layers, dtype=F64)
    ids = np.array([[3, 1, 4, 0], [2, 6, 5, 1]])
    model(ids)  # build
    out = model(ids, training=True)
    upstream = np.random.default_rng(8).normal(size=out.shape)
    from lstmlab.gradcheck import gradcheck

    def loss():
        return float(np.sum(upstream * model(ids, training=True)))

    model(ids, training=True)
    model.backward(upstream)
    report = gradcheck(loss, {w.path: w.value for w in model.weights}, dict(zip([w.path for w in model.weights],
                                                                                model.grads)))
    assert report.ok, report


def test_masked_bidirectional_sequences_output_zeros_at_padding_as_keras():
    keras = pytest.importorskip("keras")

    def build(api, L):
        ids = api.Input((None,), dtype="int32")
        e = L.Embedding(9, 4, mask_zero=True, name="emb")(ids)
        return api.Model(ids, L.Bidirectional(L.LSTM(3, return_sequences=True), name="bi")(e))

    ours, theirs = build(lstmlab, layers), build(keras, keras.layers)
    theirs.set_weights(ours.get_weights())
    ids = np.array([[3, 1, 4, 0, 0], [2, 6, 5, 1, 3], [0, 0, 7, 8, 1]])  # post-, no and pre-padding
    got = ours.predict(ids, verbose=0)
    np.testing.assert_allclose(got, theirs.predict(ids, verbose=0), atol=1e-6)
    assert np.all(got[0, 3:] == 0) and np.all(got[2, :2] == 0)


def test_zero_output_for_mask_matches_finite_differences():
    layer = layers.LSTM(3, return_sequences=True, zero_output_for_mask=True, dtype=F64)
    mask = np.array([[1, 1, 0, 0], [0, 1, 1, 1]], bool)
    report = check_layer(layer, np.random.default_rng(9).normal(size=(2, 4, 2)), mask=mask)
    assert report.ok, report
    assert layers.LSTM.from_config(layer.get_config()).zero_output_for_mask is True
