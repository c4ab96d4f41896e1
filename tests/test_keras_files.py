"""Keras 3 files both ways, against real Keras 3 (torch backend): a model saved by lstmlab as ``.keras`` opens
in ``keras.saving.load_model`` and predicts the same, a model saved by Keras opens in lstmlab and predicts the
same, and ``.weights.h5`` files cross both ways; for every layer the two libraries share, in Sequential and
functional models. Names survive the trip. Hostile files: see tests/test_keras_files_hostile.py."""
import types
import zipfile

import numpy as np
import pytest

keras = pytest.importorskip("keras")

import lstmlab  # noqa: E402
from lstmlab import layers as L  # noqa: E402

OURS = types.SimpleNamespace(layers=L, Input=L.Input, Model=lstmlab.Model, Sequential=lstmlab.Sequential)
THEIRS = types.SimpleNamespace(layers=keras.layers, Input=keras.Input, Model=keras.Model,
                               Sequential=keras.Sequential)


def seq_dense(ns):
    K = ns.layers
    return ns.Sequential([ns.Input((6,)), K.Dense(5, activation="tanh", kernel_regularizer="l2", name="hidden"),
                          K.Dropout(0.3), K.Dense(3, activation="softmax", use_bias=False)], name="mlp")


def seq_embedding_lstm(ns):
    K = ns.layers
    return ns.Sequential([ns.Input((7,)), K.Embedding(20, 5, mask_zero=True), K.LSTM(4, return_sequences=True),
                          K.LSTM(3, go_backwards=True), K.Dense(1)])


def seq_masking_gru(ns):
    K = ns.layers
    return ns.Sequential([ns.Input((6, 3)), K.Masking(0.0), K.GRU(4, return_sequences=True),
                          K.GRU(3, reset_after=False, return_sequences=True), K.SimpleRNN(2, activation="relu")])


def seq_rnn_cells(ns):
    K = ns.layers
    return ns.Sequential([ns.Input((6, 3)), K.RNN(K.LSTMCell(4), return_sequences=True),
                          K.RNN(K.GRUCell(3), return_sequences=True),
                          K.RNN([K.LSTMCell(3), K.SimpleRNNCell(2), K.LSTMCell(2)]), K.Dense(2)])


def seq_bidirectional(ns):
    K = ns.layers
    return ns.Sequential([ns.Input((6, 3)), K.Bidirectional(K.LSTM(3, return_sequences=True), merge_mode="sum"),
                          K.Bidirectional(K.GRU(2, return_sequences=True)), K.TimeDistributed(K.Dense(3)),
                          K.Bidirectional(K.SimpleRNN(2), merge_mode="mul")])


def seq_conv(ns):
    K = ns.layers
    return ns.Sequential([ns.Input((12, 3)), K.Conv1D(4, 3, activation="relu"), K.MaxPooling1D(2),
                          K.Conv1D(3, 2, padding="same"), K.SpatialDropout1D(0.2), K.GlobalMaxPooling1D(),
                          K.RepeatVector(4), K.LSTM(3, return_sequences=True), K.GlobalAveragePooling1D(),
                          K.Dense(6), K.Reshape((3, 2)), K.Flatten(), K.Activation("sigmoid")])


def seq_norms(ns):
    K = ns.layers
    return ns.Sequential([ns.Input((5, 4)), K.LayerNormalization(), K.LSTM(4, return_sequences=True),
                          K.BatchNormalization(), K.Dense(2)])


def functional_shared(ns):
    """Two inputs, two outputs, a shared LSTM called twice, initial_state, both attentions and every merge."""
    K = ns.layers
    a, b = ns.Input((5, 4), name="a"), ns.Input((5, 4), name="b")
    enc = K.LSTM(3, return_sequences=True, return_state=True, name="encoder")
    s, h, c = enc(a)
    s2, h2, _ = enc(b)
    g = K.LSTM(3, return_sequences=True, name="decoder")(b, initial_state=[h, c])
    att = K.Attention(use_scale=True, score_mode="concat")([s, g])
    add = K.AdditiveAttention()([s, s2])
    merged = [K.Add()([att, add]), K.Subtract()([att, add]), K.Multiply()([att, g]), K.Average()([s, g]),
              K.Maximum()([s, s2]), K.Minimum()([g, s2])]
    out = K.Dense(2, name="head")(K.GlobalAveragePooling1D()(K.Concatenate(axis=-1)(merged)))
    return ns.Model([a, b], [out, h2], name="two_headed")


def functional_dict(ns):
    K = ns.layers
    x = ns.Input((6, 3), name="series")
    h = K.GRU(4, return_sequences=True)(x)
    y = K.TimeDistributed(K.Dense(1))(K.LayerNormalization()(h))
    return ns.Model({"series": x}, {"forecast": y})


CASES = [seq_dense, seq_embedding_lstm, seq_masking_gru, seq_rnn_cells, seq_bidirectional, seq_conv, seq_norms,
         functional_shared, functional_dict]


def inputs(model_fn, rng):
    if model_fn is seq_embedding_lstm:
        ids = rng.integers(1, 20, (3, 7))
        ids[0, 4:] = 0  # padding, masked by mask_zero
        return ids
    if model_fn is functional_shared:
        return [rng.standard_normal((3, 5, 4)).astype("float32") for _ in range(2)]
    if model_fn is functional_dict:
        return {"series": rng.standard_normal((3, 6, 3)).astype("float32")}
    shape = {seq_dense: (6,), seq_conv: (12, 3), seq_norms: (5, 4)}.get(model_fn, (6, 3))
    x = rng.standard_normal((3,) + shape).astype("float32")
    if model_fn is seq_masking_gru:
        x[1, 3:] = 0.0  # masked steps
    return x


def randomize(values, names, rng):
    """Non-trivial weights (variances positive), so that no wrong slot can hide behind zeros or ones."""
    return [np.abs(rng.standard_normal(v.shape)) + 0.5 if "variance" in n else 0.5 * rng.standard_normal(v.shape)
            for v, n in zip(values, names)]


def flat(out):
    if isinstance(out, dict):
        return [out[k] for k in sorted(out)]
    return list(out) if isinstance(out, (list, tuple)) else [out]


def assert_same(ours, theirs):
    for p, q in zip(flat(ours), flat(theirs), strict=True):
        np.testing.assert_allclose(np.asarray(p), np.asarray(q), rtol=1e-6, atol=1e-6)


def names(model):
    return sorted(l.name for l in model.layers if type(l).__name__ != "InputLayer")


@pytest.mark.parametrize("model_fn", CASES, ids=lambda f: f.__name__)
def test_lstmlab_saves_keras_loads(tmp_path, model_fn):
    rng = np.random.default_rng(1)
    ours = model_fn(OURS)
    ours.set_weights(randomize(ours.get_weights(), [w.name for w in ours.weights], rng))
    ours.save(tmp_path / "m.keras")
    theirs = keras.saving.load_model(tmp_path / "m.keras")
    x = inputs(model_fn, rng)
    assert_same(ours.predict(x, verbose=0), theirs.predict(x, verbose=0))
    assert names(theirs) == names(ours) and theirs.name == ours.name
    again = lstmlab.load_model(tmp_path / "m.keras")  # and back: the same model, the same names
    assert_same(again.predict(x, verbose=0), ours.predict(x, verbose=0))
    assert names(again) == names(ours) and again.name == ours.name
    assert [w.path for w in again.weights] == [w.path for w in ours.weights]


@pytest.mark.parametrize("model_fn", CASES, ids=lambda f: f.__name__)
def test_keras_saves_lstmlab_loads(tmp_path, model_fn):
    rng = np.random.default_rng(2)
    theirs = model_fn(THEIRS)
    theirs.set_weights(randomize(theirs.get_weights(), [w.path for w in theirs.weights], rng))
    theirs.save(tmp_path / "k.keras")
    ours = lstmlab.load_model(tmp_path / "k.keras")
    x = inputs(model_fn, rng)
    assert_same(ours.predict(x, verbose=0), theirs.predict(x, verbose=0))
    assert names(ours) == names(theirs) and ours.name == theirs.name


@pytest.mark.parametrize("model_fn", [seq_rnn_cells, seq_bidirectional, functional_shared],
                         ids=lambda f: f.__name__)
def test_weights_h5_both_ways(tmp_path, model_fn):
    rng = np.random.default_rng(3)
    theirs, ours = model_fn(THEIRS), model_fn(OURS)
    theirs.set_weights(randomize(theirs.get_weights(), [w.path for w in theirs.weights], rng))
    theirs.save_weights(tmp_path / "k.weights.h5")
    ours.load_weights(tmp_path / "k.weights.h5")
    x = inputs(model_fn, rng)
    assert_same(ours.predict(x, verbose=0), theirs.predict(x, verbose=0))
    ours.set_weights(randomize(ours.get_weights(), [w.name for w in ours.weights], rng))
    ours.save_weights(tmp_path / "o.weights.h5")
    theirs.load_weights(tmp_path / "o.weights.h5")
    assert_same(ours.predict(x, verbose=0), theirs.predict(x, verbose=0))


def test_archive_layout_is_keras_own(tmp_path):
    """The zip holds Keras's three members, and the HDF5 paths are the ones Keras writes for the same model."""
    h5py = pytest.importorskip("h5py")
    ours, theirs = seq_rnn_cells(OURS), seq_rnn_cells(THEIRS)
    ours.save(tmp_path / "o.keras")
    theirs.save(tmp_path / "k.keras")

    def datasets(path):
        with zipfile.ZipFile(path) as z:
            assert z.namelist() == ["metadata.json", "config.json", "model.weights.h5"]
            z.extract("model.weights.h5", tmp_path / path.stem)
        found = {}
        with h5py.File(tmp_path / path.stem / "model.weights.h5", "r") as f:
            f.visititems(lambda n, o: found.update({n: o.shape}) if isinstance(o, h5py.Dataset) else None)
        return found

    assert datasets(tmp_path / "o.keras") == datasets(tmp_path / "k.keras")
    assert "layers/rnn_2/cell/cells/lstm_cell_1/vars/2" in datasets(tmp_path / "o.keras")


def test_metadata_travels_in_metadata_json(tmp_path):
    model = seq_dense(OURS)
    model.save(tmp_path / "m.keras", metadata={"vocab": "abc", "step": 3})
    loaded, meta = lstmlab.saving.load_model_with_metadata(tmp_path / "m.keras")
    assert meta == {"vocab": "abc", "step": 3}
    assert keras.saving.load_model(tmp_path / "m.keras").name == "mlp"


def test_float64_model_crosses(tmp_path):
    rng = np.random.default_rng(4)
    ours = lstmlab.Sequential([L.Input((5, 2)), L.LSTM(3, dtype="float64"), L.Dense(1, dtype="float64")])
    ours.set_weights(randomize(ours.get_weights(), [w.name for w in ours.weights], rng))
    ours.save(tmp_path / "m.keras")
    theirs = keras.saving.load_model(tmp_path / "m.keras")
    assert theirs.layers[0].dtype == "float64"
    x = rng.standard_normal((2, 5, 2))
    out = keras.ops.convert_to_numpy(theirs(keras.ops.convert_to_tensor(x, dtype="float64")))  # predict casts to float32
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, ours.predict(x, verbose=0), rtol=1e-6, atol=1e-6)  # Keras's own Dense is off by ~1e-8


def test_a_real_keras_lambda_file_is_refused(tmp_path):
    inp = keras.Input((3,))
    keras.Model(inp, keras.layers.Lambda(lambda t: t * 2)(inp)).save(tmp_path / "lambda.keras")
    with pytest.raises(ValueError, match=r"config.layers\[1\] \('lambda'\): a Lambda layer holds Python code from "
                                         r"the file, which lstmlab never runs"):
        lstmlab.load_model(tmp_path / "lambda.keras")
