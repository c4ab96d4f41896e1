"""LearningRateScheduler and ModelCheckpoint with Keras 3's rules, in real fits; and the Keras arguments
LSTM / GRU ``implementation`` (accepted, no effect)."""
import os

import numpy as np
import pytest

import lstmlab
from lstmlab import callbacks as C
from lstmlab import layers as L


def linear_data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((12, 3)).astype(np.float64)
    y = x @ np.array([[1.0], [-2.0], [0.5]]) + 0.3
    return x, y


def dense_model(lr=0.1):
    lstmlab.set_random_seed(0)
    m = lstmlab.Sequential([L.Dense(1, input_shape=(3,), dtype="float64")])
    m.compile(lstmlab.optimizers.SGD(lr), "mse")
    return m


# -- LearningRateScheduler ------------------------------------------------------------------------
def test_scheduler_sets_each_epoch_rate_and_training_uses_it():
    x, y = linear_data()
    m = dense_model(lr=0.1)
    kernel, bias = (w.copy() for w in m.get_weights())
    seen = []

    def schedule(epoch, lr):
        seen.append((epoch, lr))
        return lr * 0.5 if epoch > 0 else lr

    history = m.fit(x, y, epochs=4, batch_size=12, shuffle=False, verbose=0,
                    callbacks=[C.LearningRateScheduler(schedule)])
    assert seen == [(0, 0.1), (1, 0.1), (2, 0.05), (3, 0.025)]  # called with the current rate, as Keras 3 does
    assert history.history["learning_rate"] == pytest.approx([0.1, 0.05, 0.025, 0.0125])
    # One full-batch SGD step per epoch at that epoch's rate, on the MSE gradient written out by hand.
    for lr in (0.1, 0.05, 0.025, 0.0125):
        err = x @ kernel + bias - y  # (12, 1)
        kernel = kernel - lr * 2 * x.T @ err / len(x)
        bias = bias - lr * 2 * err.mean(0)
    np.testing.assert_allclose(m.get_weights()[0], kernel, rtol=1e-12)
    np.testing.assert_allclose(m.get_weights()[1], bias, rtol=1e-12)


def test_scheduler_with_one_argument_and_numpy_floats(capsys):
    x, y = linear_data()
    m = dense_model()
    history = m.fit(x, y, epochs=3, batch_size=6, verbose=0,
                    callbacks=[C.LearningRateScheduler(lambda epoch: np.float64(0.01 * (epoch + 1)), verbose=1)])
    assert history.history["learning_rate"] == pytest.approx([0.01, 0.02, 0.03])
    assert "Epoch 3: LearningRateScheduler setting learning rate to 0.03" in capsys.readouterr().out


@pytest.mark.parametrize("bad", ["0.1", None, float("nan"), -0.1])
def test_scheduler_returning_a_non_number_is_a_clear_error(bad):
    x, y = linear_data()
    m = dense_model()
    with pytest.raises(ValueError, match=r"^schedule: expected it to return a positive number \(the learning rate "
                                         r"for epoch 0\), got "):
        m.fit(x, y, epochs=1, verbose=0, callbacks=[C.LearningRateScheduler(lambda epoch, lr: bad)])
    with pytest.raises(ValueError, match=r"^schedule: expected a function \(epoch, lr\) -> lr, got float$"):
        C.LearningRateScheduler(0.1)


def test_scheduler_matches_keras_schedule_calls():
    keras = pytest.importorskip("keras")
    calls = {"ours": [], "keras": []}

    def make(key):
        def schedule(epoch, lr):
            calls[key].append((epoch, round(float(lr), 6)))
            return float(lr) * 0.9
        return schedule

    x, y = linear_data()
    dense_model(0.1).fit(x, y, epochs=3, verbose=0, callbacks=[C.LearningRateScheduler(make("ours"))])
    k = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    k.compile(keras.optimizers.SGD(0.1), "mse")
    logs = k.fit(x.astype(np.float32), y.astype(np.float32), epochs=3, verbose=0,
                 callbacks=[keras.callbacks.LearningRateScheduler(make("keras"))]).history
    assert calls["ours"] == calls["keras"]
    assert "learning_rate" in logs


# -- ModelCheckpoint ------------------------------------------------------------------------------
class Recorder(C.Callback):
    """Replaces the model's save functions, to see what ModelCheckpoint asks for (the .keras / .h5 writers are
    another module's job)."""

    def set_model(self, model):
        super().set_model(model)
        self.calls = []
        model.save = lambda path: self.calls.append(("save", path))
        model.save_weights = lambda path: self.calls.append(("save_weights", path))


class Scripted(C.Callback):
    def __init__(self, key, values):
        self.key, self.values = key, values

    def on_epoch_end(self, epoch, logs=None):
        logs[self.key] = self.values[epoch]


def fit_with(ckpt, tmp_path, epochs=4, values=(0.9, 1.2, 0.8, 0.85), key="val_loss", batch_size=6):
    x, y = linear_data()
    m = dense_model()
    rec = Recorder()
    m.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=0, callbacks=[rec, Scripted(key, values), ckpt])
    return [(kind, os.path.relpath(path, tmp_path)) for kind, path in rec.calls]


def test_checkpoint_file_name_fields_and_keras_format(tmp_path):
    ckpt = C.ModelCheckpoint(str(tmp_path / "run" / "ep{epoch:02d}-{val_loss:.2f}-{loss:.0e}.keras"))
    calls = fit_with(ckpt, tmp_path)
    assert [c[0] for c in calls] == ["save"] * 4
    assert [c[1].split("-")[:2] for c in calls] == [["run/ep01", "0.90"], ["run/ep02", "1.20"], ["run/ep03", "0.80"],
                                                    ["run/ep04", "0.85"]]
    assert (tmp_path / "run").is_dir()  # the folder is made, as Keras makes it


def test_checkpoint_best_only_with_initial_value_threshold_and_weights(tmp_path):
    ckpt = C.ModelCheckpoint(str(tmp_path / "w.weights.h5"), save_best_only=True, save_weights_only=True,
                             initial_value_threshold=0.85)
    assert fit_with(ckpt, tmp_path) == [("save_weights", "w.weights.h5")]  # only epoch 3's 0.8 beats 0.85
    assert ckpt.best == 0.8
    up = C.ModelCheckpoint(str(tmp_path / "a{epoch}.keras"), monitor="val_auc", save_best_only=True)
    assert up.mode == "max"  # auto: an AUC is better higher
    assert fit_with(up, tmp_path, key="val_auc") == [("save", "a1.keras"), ("save", "a2.keras")]
    assert C.ModelCheckpoint(str(tmp_path / "m.keras"), monitor="val_precision").mode == "max"


def test_checkpoint_save_freq_in_batches(tmp_path):
    # 12 samples, batch 6: 2 batches an epoch; every 3 batches across epochs -> after epoch 2's 1st batch (#3)
    # and epoch 3's 2nd batch (#6), numbered as Keras numbers them (1-based batch within its epoch).
    ckpt = C.ModelCheckpoint(str(tmp_path / "e{epoch}b{batch}.keras"), save_freq=3)
    assert fit_with(ckpt, tmp_path) == [("save", "e2b1.keras"), ("save", "e3b2.keras")]


def test_checkpoint_real_safetensors_files(tmp_path):
    x, y = linear_data()
    m = dense_model()
    m.fit(x, y, epochs=2, verbose=0, callbacks=[C.ModelCheckpoint(str(tmp_path / "m{epoch}.safetensors")),
                                               C.ModelCheckpoint(str(tmp_path / "w.safetensors"),
                                                                 save_weights_only=True)])
    assert sorted(os.listdir(tmp_path)) == ["m1.safetensors", "m2.safetensors", "w.safetensors"]
    np.testing.assert_array_equal(lstmlab.load_model(tmp_path / "m2.safetensors").predict(x, verbose=0),
                                  m.predict(x, verbose=0))


def test_checkpoint_real_keras_files_open_in_keras(tmp_path):
    """A .keras checkpoint is a real Keras 3 archive and a .weights.h5 one Keras's weights file (no longer our
    safetensors under Keras's names): Keras opens both and predicts what lstmlab predicts."""
    keras = pytest.importorskip("keras")
    x, y = linear_data()
    m = dense_model()
    m.fit(x, y, epochs=2, verbose=0, callbacks=[C.ModelCheckpoint(str(tmp_path / "m{epoch}.keras")),
                                               C.ModelCheckpoint(str(tmp_path / "w.weights.h5"),
                                                                 save_weights_only=True)])
    assert sorted(os.listdir(tmp_path)) == ["m1.keras", "m2.keras", "w.weights.h5"]
    theirs = keras.saving.load_model(tmp_path / "m2.keras")
    np.testing.assert_allclose(theirs.predict(x, verbose=0), m.predict(x, verbose=0), rtol=1e-6, atol=1e-6)
    theirs.set_weights([np.zeros_like(w) for w in theirs.get_weights()])
    theirs.load_weights(tmp_path / "w.weights.h5")
    np.testing.assert_allclose(theirs.predict(x, verbose=0), m.predict(x, verbose=0), rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(lstmlab.load_model(tmp_path / "m2.keras").predict(x, verbose=0),
                                  m.predict(x, verbose=0))


def test_checkpoint_file_name_rules_as_keras():
    with pytest.raises(ValueError, match=r"^filepath: it must end in '.keras' \(Keras's model format\) or "
                                         r"'.safetensors', got 'model.weights'$"):
        C.ModelCheckpoint("model.weights")
    with pytest.raises(ValueError, match=r"^filepath: with save_weights_only=True it must end in '.weights.h5' "
                                         r"\(Keras's weights format\) or '.safetensors', got 'm.keras'$"):
        C.ModelCheckpoint("m.keras", save_weights_only=True)
    with pytest.raises(ValueError, match=r"^save_freq: expected 'epoch' or a positive integer \(batches\), got 'batch'$"):
        C.ModelCheckpoint("m.keras", save_freq="batch")
    # Keras 3 still accepts the legacy HDF5 .h5 for a whole model; lstmlab writes no legacy .h5, so it says so at once
    with pytest.raises(ValueError, match=r"^filepath: it must end in '.keras' \(Keras's model format\) or "
                                         r"'.safetensors', got 'm.h5'$"):
        C.ModelCheckpoint("m.h5")


def test_checkpoint_unknown_field_names_the_logged_keys(tmp_path):
    with pytest.raises(ValueError, match=r"^filepath: the field 'val_acc' of .* is not among epoch and the logged "
                                         r"values \['loss', 'val_loss'\]$"):
        fit_with(C.ModelCheckpoint(str(tmp_path / "{val_acc}.keras")), tmp_path)


def test_checkpoint_missing_monitor_warns_and_saves_as_keras(tmp_path):
    with pytest.warns(UserWarning, match="Can save best model only with val_mae available"):
        calls = fit_with(C.ModelCheckpoint(str(tmp_path / "m.keras"), monitor="val_mae", save_best_only=True),
                         tmp_path, epochs=1)
    assert calls == [("save", "m.keras")]


# -- LSTM / GRU implementation --------------------------------------------------------------------
@pytest.mark.parametrize("cls", ["LSTM", "GRU"])
def test_implementation_is_accepted_and_changes_nothing(cls):
    keras = pytest.importorskip("keras")
    x = np.random.default_rng(0).standard_normal((2, 4, 3)).astype(np.float32)
    outs = []
    for impl in (1, 2):
        lstmlab.set_random_seed(3)
        layer = getattr(L, cls)(5, implementation=impl)
        outs.append(layer(x))
        assert layer.implementation == impl
        config = layer.get_config()
        assert "implementation" not in config  # Keras 3 keeps it out of the config too
        assert "implementation" not in getattr(keras.layers, cls)(5, implementation=impl).get_config()
        again = L.deserialize({"class_name": cls, "config": {**config, "implementation": impl}})  # a Keras 2 file
        assert again.get_config() == config
    np.testing.assert_array_equal(outs[0], outs[1])
    assert getattr(L, cls)(5, recurrent_dropout=0.2).implementation == 1  # as Keras sets it
    with pytest.raises(ValueError, match=r"^implementation: expected 1 or 2, got 3$"):
        getattr(L, cls)(5, implementation=3)
