"""What fit / evaluate / predict accept, as Keras 3 accepts it: dtypes, lists and dicts, generators,
PyDatasets, sample and class weights; losses checked against Keras on the same weights."""
import numpy as np
import pytest

import lstmlab
from lstmlab import Input, Model, layers
from lstmlab.utils import PyDataset


def _pair(units=3, features=4, out=2, activation="softmax"):
    """The same small LSTM classifier in lstmlab and in Keras 3, with equal weights."""
    keras = pytest.importorskip("keras")
    ours = lstmlab.Sequential([layers.LSTM(units), layers.Dense(out, activation=activation)])
    ours.build((None, None, features))
    theirs = keras.Sequential([keras.Input((None, features)), keras.layers.LSTM(units),
                               keras.layers.Dense(out, activation=activation)])
    theirs.set_weights(ours.get_weights())
    return ours, theirs, keras


def test_bool_one_hot_inputs_and_targets_train_like_keras():
    ours, theirs, keras = _pair()
    rng = np.random.default_rng(0)
    x = rng.random((8, 5, 4)) > 0.5  # one-hot-like bool arrays, as the text-generation examples build them
    y = np.eye(2, dtype=bool)[rng.integers(0, 2, 8)]
    ours.compile(lstmlab.optimizers.RMSprop(0.01), "categorical_crossentropy")
    theirs.compile(keras.optimizers.RMSprop(0.01), "categorical_crossentropy")
    h1 = ours.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0).history["loss"]
    h2 = theirs.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(h1, h2, rtol=1e-5)


def test_sample_weight_and_class_weight_weigh_the_loss_as_keras_does():
    ours, theirs, keras = _pair()
    rng = np.random.default_rng(1)
    x = rng.normal(size=(6, 5, 4)).astype("float32")
    y = rng.integers(0, 2, 6)
    sw = rng.random(6).astype("float32")
    for m in (ours, theirs):
        m.compile("sgd", "sparse_categorical_crossentropy")
    np.testing.assert_allclose(ours.evaluate(x, y, sample_weight=sw, verbose=0),
                               theirs.evaluate(x, y, sample_weight=sw, verbose=0), rtol=1e-5)
    cw = {0: 0.3, 1: 2.0}
    h1 = ours.fit(x, y, class_weight=cw, batch_size=3, epochs=2, shuffle=False, verbose=0).history["loss"]
    h2 = theirs.fit(x, y, class_weight=cw, batch_size=3, epochs=2, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(h1, h2, rtol=1e-5)


def test_two_dimensional_input_gets_the_trailing_axis():
    x_in = Input((6, 1))
    model = Model(x_in, layers.Dense(1)(layers.LSTM(2)(x_in)))
    series = np.random.default_rng(2).normal(size=(3, 6)).astype("float32")
    np.testing.assert_array_equal(model.predict(series, verbose=0), model.predict(series[..., None], verbose=0))
    seq = lstmlab.Sequential([lstmlab.Input((6, 1)), layers.LSTM(2), layers.Dense(1)])
    np.testing.assert_array_equal(seq.predict(series, verbose=0), seq.predict(series[..., None], verbose=0))


def _two_input_model():
    a, b = Input((None, 3), name="tokens"), Input((2,), name="extra")
    h = layers.LSTM(4)(a)
    out = layers.Dense(1, name="score")(layers.Concatenate()([h, layers.Dense(4)(b)]))
    model = Model([a, b], out)
    model.compile("adam", "mse")
    return model


def test_lists_and_dicts_feed_several_inputs_the_same_way():
    rng = np.random.default_rng(3)
    xa, xb, y = rng.normal(size=(5, 4, 3)), rng.normal(size=(5, 2)), rng.normal(size=(5, 1))
    model = _two_input_model()
    by_list = model.predict([xa, xb], verbose=0)
    by_dict = model.predict({"extra": xb, "tokens": xa}, verbose=0)
    np.testing.assert_array_equal(by_list, by_dict)
    assert model.evaluate({"tokens": xa, "extra": xb}, y, verbose=0) == model.evaluate([xa, xb], y, verbose=0)
    with pytest.raises(ValueError, match=r"^x: no array for input 'extra'; the model's inputs are tokens, extra$"):
        model.predict({"tokens": xa})


def test_generators_datasets_and_iterables_equal_arrays():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(8, 5, 3)).astype("float32"), rng.normal(size=(8, 1)).astype("float32")

    def model():
        lstmlab.set_random_seed(7)
        m = lstmlab.Sequential([layers.LSTM(3), layers.Dense(1)])
        m.compile("adam", "mse")
        m.seed = 1
        return m

    def gen():
        while True:
            for s in range(0, 8, 4):
                yield x[s:s + 4], y[s:s + 4]

    class Data(PyDataset):
        def __len__(self):
            return 2

        def __getitem__(self, i):
            return x[4 * i:4 * i + 4], y[4 * i:4 * i + 4]

    class Batches:  # any iterable of batches (not a list: a list is arrays, as in Keras); iterated every epoch
        def __iter__(self):
            return iter([(x[:4], y[:4]), (x[4:], y[4:])])

    reference = model().fit(x, y, batch_size=4, epochs=3, shuffle=False, verbose=0).history["loss"]
    from_gen = model().fit(gen(), steps_per_epoch=2, epochs=3, verbose=0,
                           validation_data=gen(), validation_steps=2).history
    from_ds = model().fit(Data(), epochs=3, verbose=0).history["loss"]
    from_list = model().fit(Batches(), epochs=3, verbose=0).history["loss"]
    np.testing.assert_allclose(from_gen["loss"], reference, rtol=1e-6)
    np.testing.assert_allclose(from_ds, reference, rtol=1e-6)
    np.testing.assert_allclose(from_list, reference, rtol=1e-6)
    assert len(from_gen["val_loss"]) == 3


def test_a_generator_that_runs_dry_says_so():
    x, y = np.zeros((4, 2, 3), np.float32), np.zeros((4, 1), np.float32)
    m = lstmlab.Sequential([layers.LSTM(2), layers.Dense(1)])
    m.compile("sgd", "mse")
    with pytest.raises(ValueError, match=r"^x: the generator ran out of data; give it enough for steps_per_epoch x "
                                         r"epochs \(2 batches an epoch\)$"):
        m.fit(iter([(x, y), (x, y)]), steps_per_epoch=2, epochs=2, verbose=0)


def test_multi_output_losses_weights_and_logs():
    rng = np.random.default_rng(5)
    inp = Input((None, 3))
    seq, state = layers.GRU(4, return_sequences=True, return_state=True)(inp)
    model = Model(inp, [layers.Dense(2, name="per_step")(seq), layers.Dense(1, name="final")(state)])
    model.compile("sgd", {"per_step": "mse", "final": "mae"}, loss_weights={"per_step": 1.0, "final": 0.5})
    x = rng.normal(size=(4, 5, 3))
    y = {"per_step": rng.normal(size=(4, 5, 2)), "final": rng.normal(size=(4, 1))}
    logs = model.evaluate(x, y, return_dict=True, verbose=0)
    assert set(logs) == {"loss", "per_step_loss", "final_loss"}
    assert logs["loss"] == pytest.approx(logs["per_step_loss"] + 0.5 * logs["final_loss"], rel=1e-6)
    with pytest.raises(ValueError, match=r"^loss: no output named 'nope'; the outputs are per_step, final$"):
        model.compile("sgd", {"nope": "mse"})


def test_a_configured_metric_instance_survives_save_and_load(tmp_path):
    m = lstmlab.Sequential([layers.LSTM(2), layers.Dense(1, activation="sigmoid")])
    m.compile("adam", "binary_crossentropy", metrics=[lstmlab.metrics.AUC(curve="PR", name="pr"), "accuracy"])
    x = np.random.default_rng(0).normal(size=(8, 3, 2))
    y = (np.arange(8) % 2).reshape(8, 1)
    m.fit(x, y, epochs=1, verbose=0)
    m.save(tmp_path / "m.safetensors")
    again = lstmlab.load_model(tmp_path / "m.safetensors")
    assert again.evaluate(x, y, return_dict=True) == m.evaluate(x, y, return_dict=True)
    assert again.metrics[0][0].curve == "PR"


def test_fit_takes_a_timeseries_dataset_and_its_validation_twin():
    from lstmlab.utils import timeseries_dataset_from_array
    series = np.sin(np.linspace(0, 20, 300)).astype("float32")[:, None]
    train = timeseries_dataset_from_array(series[:-10], series[10:], sequence_length=10, batch_size=32)
    val = timeseries_dataset_from_array(series[200:-10], series[210:], sequence_length=10, batch_size=32)
    lstmlab.set_random_seed(0)
    model = lstmlab.Sequential([lstmlab.Input((10, 1)), layers.LSTM(8), layers.Dense(1)])
    model.compile(lstmlab.optimizers.Adam(0.01), "mse")
    history = model.fit(train, validation_data=val, epochs=8, verbose=0).history
    assert history["loss"][-1] < 0.5 * history["loss"][0]
    assert len(history["val_loss"]) == 8
    x0, y0 = train[0]
    np.testing.assert_allclose(model.predict(x0, verbose=0), model.predict(train, verbose=0)[:len(x0)])
