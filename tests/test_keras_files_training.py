"""Training continues across the border: a compiled model saved as ``.keras`` by one library and loaded by the
other (real Keras 3, torch backend) brings its optimizer state (step count, learning rate, every slot) and
compile settings (loss, metrics, loss weights), so one more epoch there equals one more epoch in the
library that saved it (weights to 1e-6). ``compile=False`` loads weights only; what cannot be mapped is
refused by name; layer, input and model names survive both ways."""
import io
import json
import zipfile

import numpy as np
import pytest

keras = pytest.importorskip("keras")
h5py = pytest.importorskip("h5py")

import lstmlab  # noqa: E402
from lstmlab import layers as L  # noqa: E402
from lstmlab.interop import keras_files  # noqa: E402
from lstmlab.optimizers import schedules as S  # noqa: E402

RNG = np.random.default_rng(7)
X = RNG.standard_normal((16, 5, 3)).astype("float32")
Y = RNG.standard_normal((16, 2)).astype("float32")
FIT = dict(batch_size=4, shuffle=False, verbose=0)  # four steps per epoch, the same batches in both libraries

OPTIMIZERS = [  # non-default arguments, so that every slot group Keras creates is present
    ("SGD", {"learning_rate": 0.05, "momentum": 0.9, "nesterov": True}),
    ("RMSprop", {"learning_rate": 0.01, "momentum": 0.5, "centered": True}),
    ("Adam", {"learning_rate": 0.01, "amsgrad": True}),
    ("AdamW", {"learning_rate": 0.01, "weight_decay": 0.05}),
    ("Adagrad", {"learning_rate": 0.05, "initial_accumulator_value": 0.2}),
    ("Nadam", {"learning_rate": 0.01, "beta_1": 0.8}),
    ("Adamax", {"learning_rate": 0.01}),
]
IDS = [name for name, _ in OPTIMIZERS]


def ours_sequential(optimizer):
    model = lstmlab.Sequential([lstmlab.Input((5, 3)), L.LSTM(4, return_sequences=True, name="enc"),
                                L.GRU(3, name="summary"), L.Dense(2, name="head")], name="forecaster")
    model.compile(optimizer, "mse", metrics=["mae"])
    return model


def keras_sequential(optimizer):
    K = keras.layers
    model = keras.Sequential([keras.Input((5, 3), name="frames"), K.LSTM(4, return_sequences=True, name="enc"),
                              K.GRU(3, name="summary"), K.Dense(2, name="head")], name="forecaster")
    model.compile(optimizer, "mse", metrics=["mae"])
    return model


def assert_same_weights(ours, theirs, tol=1e-6):
    """Layer by layer, by name, every weight within ``tol``."""
    for layer in ours.layers:
        mine = [w.value for w in layer.weights]
        other = [np.asarray(v) for v in theirs.get_layer(layer.name).weights]
        assert len(mine) == len(other), layer.name
        for a, b in zip(mine, other):
            np.testing.assert_allclose(a, b, rtol=0, atol=tol, err_msg=layer.name)


def assert_same_loss(a, b):
    assert abs(a - b) <= 1e-6 * max(1.0, abs(a)), (a, b)


# -- lstmlab -> Keras ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name, kwargs", OPTIMIZERS, ids=IDS)
def test_lstmlab_saves_keras_continues(tmp_path, name, kwargs):
    ours = ours_sequential(getattr(lstmlab.optimizers, name)(**kwargs))
    ours.fit(X, Y, epochs=2, **FIT)
    path = str(tmp_path / "m.keras")
    ours.save(path)
    theirs = keras.saving.load_model(path)
    assert type(theirs.optimizer).__name__ == name
    assert int(theirs.optimizer.iterations) == 8
    assert theirs.optimizer.get_config()["learning_rate"] == pytest.approx(kwargs["learning_rate"], rel=1e-6)
    for key, value in kwargs.items():  # the optimizer's own arguments crossed as given
        assert theirs.optimizer.get_config()[key] == pytest.approx(value, rel=1e-6), key
    assert_same_weights(ours, theirs, tol=0)
    mine = ours.fit(X, Y, epochs=1, **FIT).history
    other = theirs.fit(X, Y, epochs=1, **FIT).history
    assert_same_loss(mine["loss"][0], other["loss"][0])
    assert_same_loss(mine["mae"][0], other["mae"][0])
    assert_same_weights(ours, theirs)


# -- Keras -> lstmlab ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name, kwargs", OPTIMIZERS, ids=IDS)
def test_keras_saves_lstmlab_continues(tmp_path, name, kwargs):
    keras.utils.set_random_seed(1)
    theirs = keras_sequential(getattr(keras.optimizers, name)(**kwargs))
    theirs.fit(X, Y, epochs=2, **FIT)
    path = str(tmp_path / "m.keras")
    theirs.save(path)
    ours = lstmlab.load_model(path)
    opt = ours.optimizer
    assert type(opt).__name__ == name and opt.iterations == 8
    assert all(len(slot) == len(ours.trainable_weights) for slot in opt.slots.values())
    for key, value in kwargs.items():
        assert opt.get_config()[key] == pytest.approx(value, rel=1e-6), key
    assert ours.loss.name == "mean_squared_error" and ours.metrics == [["mae"]]
    other = theirs.fit(X, Y, epochs=1, **FIT).history
    mine = ours.fit(X, Y, epochs=1, **FIT).history
    assert_same_loss(mine["loss"][0], other["loss"][0])
    assert_same_loss(mine["mae"][0], other["mae"][0])
    assert_same_weights(ours, theirs)


# -- several outputs, a functional model: loss list, loss weights, per-output metrics, Keras's weight order -
def functional(ns, K):
    a, b = ns.Input((5, 3), name="series"), ns.Input((4,), name="static")
    side = K.Dense(3, name="side")(b)  # built before the LSTM but later in Keras's layer order
    h = K.LSTM(4, name="enc")(a)
    joined = K.Concatenate(name="join")([h, side])
    return ns.Model([a, b], [K.Dense(2, name="reg")(joined), K.Dense(3, activation="softmax", name="cls")(h)],
                    name="two_task")


COMPILE = dict(loss=["mse", "sparse_categorical_crossentropy"], loss_weights=[1.0, 0.5],
               metrics=[["mae"], ["accuracy"]])
B = RNG.standard_normal((16, 4)).astype("float32")
C = RNG.integers(0, 3, 16)


@pytest.mark.parametrize("saver", ["lstmlab", "keras"])
def test_functional_two_outputs_continue_both_ways(tmp_path, saver):
    path = str(tmp_path / "f.keras")
    if saver == "lstmlab":
        first = functional(lstmlab, L)
        first.compile(lstmlab.optimizers.Adam(0.01), **COMPILE)
    else:
        first = functional(keras, keras.layers)
        first.compile(keras.optimizers.Adam(0.01), **COMPILE)
    first.fit([X, B], [Y, C], epochs=2, **FIT)
    first.save(path)
    second = keras.saving.load_model(path) if saver == "lstmlab" else lstmlab.load_model(path)
    ours, theirs = (first, second) if saver == "lstmlab" else (second, first)
    assert ours.name == theirs.name == "two_task"
    assert [t.name for t in theirs.inputs] == [t.name for t in ours.inputs] == ["series", "static"]
    assert [l.name for l in ours.layers] == [l.name for l in theirs.layers]
    assert ours._loss_weights == [1.0, 0.5]
    mine = ours.fit([X, B], [Y, C], epochs=1, **FIT).history
    other = theirs.fit([X, B], [Y, C], epochs=1, **FIT).history
    assert_same_loss(mine["loss"][0], other["loss"][0])
    assert_same_weights(ours, theirs)


def test_schedule_crosses_both_ways(tmp_path):
    ours = ours_sequential(lstmlab.optimizers.Adam(S.ExponentialDecay(0.02, 3, 0.5)))
    ours.fit(X, Y, epochs=2, **FIT)
    path = str(tmp_path / "s.keras")
    ours.save(path)
    with zipfile.ZipFile(path) as z, h5py.File(io.BytesIO(z.read("model.weights.h5"))) as h5:
        # iterations, no learning-rate variable, (m, v) of each trainable weight
        assert len(h5["optimizer/vars"]) == 1 + 2 * len(ours.trainable_weights)
    theirs = keras.saving.load_model(path)
    assert type(theirs.optimizer.learning_rate).__name__ != "Variable"
    assert float(theirs.optimizer.learning_rate) == pytest.approx(0.02 * 0.5 ** (8 / 3), rel=1e-6)
    theirs.save(path)  # and back: the schedule and the state come home
    again = lstmlab.load_model(path)
    assert isinstance(again.optimizer.learning_rate, S.ExponentialDecay) and again.optimizer.iterations == 8
    other = theirs.fit(X, Y, epochs=1, **FIT).history
    mine = ours.fit(X, Y, epochs=1, **FIT).history
    again.fit(X, Y, epochs=1, **FIT)
    assert_same_loss(mine["loss"][0], other["loss"][0])
    assert_same_weights(ours, theirs)
    assert_same_weights(again, theirs)


def classifier(ns, K):
    return ns.Sequential([ns.Input((5, 3)), K.GRU(4, name="gru"), K.Dense(3, name="logits")], name="clf")


def test_loss_and_metric_objects_cross_both_ways(tmp_path):
    """Losses and metrics with arguments (from_logits, thresholds, curve) cross as Keras objects; a Keras
    optimizer that never stepped (only iterations and learning rate saved) starts fresh in lstmlab."""
    path = str(tmp_path / "c.keras")
    labels = (RNG.random((16, 3)) > 0.5).astype("float32")
    theirs = classifier(keras, keras.layers)
    theirs.compile(keras.optimizers.RMSprop(0.01), loss=keras.losses.BinaryCrossentropy(from_logits=True),
                   metrics=[keras.metrics.Precision(thresholds=0.3), keras.metrics.AUC(curve="PR"), "mae"])
    theirs.save(path)  # compiled, never trained
    ours = lstmlab.load_model(path)
    assert ours.loss.name == "binary_crossentropy" and ours.loss.from_logits
    precision, auc, mae = ours.metrics[0]
    assert (type(precision).__name__, precision.thresholds, precision.name) == ("Precision", [0.3], "precision")
    assert (type(auc).__name__, auc.curve, mae) == ("AUC", "PR", "mae")
    assert ours.optimizer.iterations == 0 and ours.optimizer.slots == {"velocity": {}}
    mine = ours.fit(X, labels, epochs=1, **FIT).history
    other = theirs.fit(X, labels, epochs=1, **FIT).history
    for key in ("loss", "precision", "auc", "mae"):
        assert_same_loss(mine[key][0], other[key][0])
    assert_same_weights(ours, theirs)
    ours.save(path)  # and back to Keras: the same objects
    back = keras.saving.load_model(path)
    config = back.get_compile_config()
    assert config["loss"]["class_name"] == "BinaryCrossentropy" and config["loss"]["config"]["from_logits"]
    assert [m if isinstance(m, str) else m["class_name"] for m in config["metrics"]] == ["Precision", "AUC", "mae"]
    assert config["metrics"][0]["config"]["thresholds"] in (0.3, [0.3]) and config["metrics"][1]["config"]["curve"] == "PR"
    assert int(back.optimizer.iterations) == 4
    mine = ours.fit(X, labels, epochs=1, **FIT).history
    other = back.fit(X, labels, epochs=1, **FIT).history
    for key in ("loss", "precision", "auc", "mae"):
        assert_same_loss(mine[key][0], other[key][0])
    assert_same_weights(ours, back)


# -- compile=False, refusals --------------------------------------------------------------------------
def test_compile_false_loads_weights_only(tmp_path):
    theirs = keras_sequential(keras.optimizers.Adam(0.01))
    theirs.fit(X, Y, epochs=1, **FIT)
    path = str(tmp_path / "m.keras")
    theirs.save(path)
    ours = lstmlab.load_model(path, compile=False)  # the public call, as keras.saving.load_model(path, compile=False)
    assert not ours.compiled
    assert_same_weights(ours, theirs, tol=0)
    mine = ours_sequential(lstmlab.optimizers.Adam(0.01))
    mine.fit(X, Y, epochs=1, **FIT)
    mine.save(path)
    back = keras.saving.load_model(path, compile=False)
    assert not back.compiled
    assert_same_weights(mine, back, tol=0)
    mine.save(path, include_optimizer=False)
    with zipfile.ZipFile(path) as z:
        assert "compile_config" not in json.loads(z.read("config.json"))
        with h5py.File(io.BytesIO(z.read("model.weights.h5"))) as h5:
            assert "optimizer" not in h5


def test_unmappable_optimizer_and_loss_are_refused_by_name(tmp_path):
    path = str(tmp_path / "m.keras")
    theirs = keras_sequential(keras.optimizers.Lion(0.001))
    theirs.fit(X, Y, epochs=1, **FIT)
    theirs.save(path)
    with pytest.raises(ValueError, match=r"compile_config\.optimizer: unknown optimizer class 'Lion'"):
        lstmlab.load_model(path)
    assert not keras_files.load_model(path, compile=False).compiled
    theirs.compile(keras.optimizers.Adam(), loss=keras.losses.Huber())
    theirs.save(path)
    with pytest.raises(ValueError, match=r"compile_config\.loss: unknown loss class 'Huber'"):
        lstmlab.load_model(path)
    theirs.compile(keras.optimizers.Adam(use_ema=True), loss="mse")
    theirs.save(path)
    with pytest.raises(ValueError, match=r"use_ema=True: lstmlab's Adam optimizer has no use_ema"):
        lstmlab.load_model(path)
    ours = ours_sequential(lstmlab.optimizers.SGD(S.StepDecay(0.1, 2)))
    with pytest.raises(ValueError, match="the StepDecay schedule has no Keras 3 equivalent"):
        ours.save(path)


def _rewrite_optimizer_var(path, k, value):
    with zipfile.ZipFile(path) as z:
        files = {n: z.read(n) for n in z.namelist()}
    buffer = io.BytesIO(files["model.weights.h5"])
    with h5py.File(buffer, "a") as h5:
        if value is None:
            del h5[f"optimizer/vars/{k}"]
        else:
            del h5[f"optimizer/vars/{k}"]
            h5[f"optimizer/vars/{k}"] = value
    files["model.weights.h5"] = buffer.getvalue()
    with zipfile.ZipFile(path, "w") as z:
        for n, data in files.items():
            z.writestr(n, data)


def test_optimizer_variables_are_checked_before_use(tmp_path):
    path = str(tmp_path / "m.keras")
    model = ours_sequential(lstmlab.optimizers.Adam(0.01))
    model.fit(X, Y, epochs=1, **FIT)
    model.save(path)
    _rewrite_optimizer_var(path, 2, np.zeros((4, 4), "float32"))  # the LSTM kernel's m is (3, 16)
    with pytest.raises(ValueError, match=r"optimizer/vars/2: optimizer variable 2 \(m of enc/kernel\): the config "
                                         r"implies shape \(3, 16\), the file holds \(4, 4\)"):
        lstmlab.load_model(path)
    model.save(path)
    _rewrite_optimizer_var(path, 0, np.float32(3.0))
    with pytest.raises(ValueError, match=r"iterations\): expected integer values, got float32"):
        lstmlab.load_model(path)
    model.save(path)
    _rewrite_optimizer_var(path, 17, None)  # iterations, learning rate, (m, v) of 8 weights: 18 variables
    with pytest.raises(ValueError, match=r"optimizer/vars: a Adam optimizer for 8 trainable weights has 18 "
                                         r"variables, the file holds 17"):
        lstmlab.load_model(path)
    model.save(path)
    _rewrite_optimizer_var(path, 5, None)
    with pytest.raises(ValueError, match=r"optimizer/vars/17: not an optimizer variable \(expected 0, 1, ...\)"):
        lstmlab.load_model(path)


# -- names ----------------------------------------------------------------------------------------------
def test_sequential_input_and_layer_names_survive_both_ways(tmp_path):
    path = str(tmp_path / "n.keras")
    keras_sequential("adam").save(path)
    ours = lstmlab.load_model(path)
    assert ours.name == "forecaster" and [l.name for l in ours.layers] == ["enc", "summary", "head"]
    ours.save(path)
    with zipfile.ZipFile(path) as z:
        layers = json.loads(z.read("config.json"))["config"]["layers"]
    assert [s["config"]["name"] for s in layers] == ["frames", "enc", "summary", "head"]
    back = keras.saving.load_model(path)
    assert back.name == "forecaster" and back.inputs[0].name == "frames"
    assert [l.name for l in back.layers] == ["enc", "summary", "head"]


def test_an_lstmlab_sequential_input_name_reaches_keras(tmp_path):
    path = str(tmp_path / "i.keras")
    model = lstmlab.Sequential([lstmlab.Input((5, 3), name="frames"), L.LSTM(2), L.Dense(1)])
    model.save(path)
    assert keras.saving.load_model(path).inputs[0].name == "frames"


def test_compile_config_names_nothing_to_import(tmp_path):
    """A compile_config that names a module or a registered (custom) class is refused, never imported."""
    path = str(tmp_path / "m.keras")
    ours_sequential(lstmlab.optimizers.Adam(0.01)).save(path)
    with zipfile.ZipFile(path) as z:
        files = {n: z.read(n) for n in z.namelist()}
    config = json.loads(files["config.json"])
    for key, value, message in [("module", "os.path", r"module 'os.path': lstmlab reads only Keras's own classes"),
                                ("registered_name", "my>Adam", r"registered_name 'my>Adam': a custom")]:
        bad = json.loads(json.dumps(config))
        bad["compile_config"]["optimizer"][key] = value
        with zipfile.ZipFile(path, "w") as z:
            for n, data in files.items():
                z.writestr(n, json.dumps(bad) if n == "config.json" else data)
        with pytest.raises(ValueError, match=r"compile_config\.optimizer: " + message):
            lstmlab.load_model(path)
