"""Callbacks: EarlyStopping, ModelCheckpoint, CSVLogger, ReduceLROnPlateau, LambdaCallback, TerminateOnNaN."""
import csv
import os

import numpy as np
import pytest

import lstmlab
from lstmlab import callbacks as C
from lstmlab import layers as L


def data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 4, 2)).astype(np.float32)
    return x, x.sum(axis=(1, 2))[:, None]


def model(lr=0.01):
    lstmlab.set_random_seed(0)
    m = lstmlab.Sequential([L.LSTM(8, input_shape=(4, 2)), L.Dense(1)])
    m.compile(lstmlab.optimizers.Adam(lr), "mse", metrics=["mae"])
    return m


class ScriptedLoss(C.Callback):
    """Overwrites the monitored value with a script, to test monitoring logic exactly."""

    def __init__(self, values):
        self.values = values

    def on_epoch_end(self, epoch, logs=None):
        logs["val_loss"] = self.values[epoch]


def test_early_stopping_restores_best_weights():
    x, y = data()
    m = model()
    seen = {}
    keep = C.LambdaCallback(on_epoch_end=lambda epoch, logs: seen.__setitem__(epoch, m.get_weights()))
    stop = C.EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    scripted = ScriptedLoss([1.0, 0.5, 0.7, 0.6, 0.4, 0.3])
    history = m.fit(x, y, epochs=6, batch_size=8, verbose=0, callbacks=[keep, scripted, stop])
    assert len(history.history["loss"]) == 4  # epochs 3 and 4 did not improve on 0.5
    assert stop.stopped_epoch == 3 and stop.best_epoch == 1
    for a, b in zip(m.get_weights(), seen[1]):
        np.testing.assert_array_equal(a, b)


def test_model_checkpoint_save_best_only(tmp_path):
    x, y = data()
    m = model()
    path = tmp_path / "best.safetensors"
    saved = []
    ckpt = C.ModelCheckpoint(str(path), monitor="val_loss", save_best_only=True)
    note = C.LambdaCallback(on_epoch_end=lambda e, logs: saved.append(os.path.getmtime(path) if path.exists() else None))
    m.fit(x, y, epochs=4, batch_size=8, verbose=0, callbacks=[ScriptedLoss([0.9, 1.2, 0.8, 0.85]), ckpt, note])
    assert ckpt.best == 0.8
    assert saved[0] is not None and saved[1] == saved[0] and saved[2] is not None and saved[3] == saved[2]
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".tmp-")]  # atomic write left no temporary
    lstmlab.load_model(path)


def test_model_checkpoint_filename_template(tmp_path):
    x, y = data()
    m = model()
    m.fit(x, y, epochs=2, batch_size=16, verbose=0, validation_split=0.25,
          callbacks=[C.ModelCheckpoint(str(tmp_path / "ep{epoch:02d}.safetensors"), save_best_only=False)])
    assert sorted(os.listdir(tmp_path)) == ["ep01.safetensors", "ep02.safetensors"]


def test_csv_logger(tmp_path):
    x, y = data()
    m = model()
    path = tmp_path / "log.csv"
    history = m.fit(x, y, epochs=3, batch_size=8, verbose=0, validation_split=0.25, callbacks=[C.CSVLogger(str(path))])
    rows = list(csv.DictReader(path.open()))
    assert [r["epoch"] for r in rows] == ["0", "1", "2"]
    assert set(rows[0]) == {"epoch", "loss", "mae", "val_loss", "val_mae"}
    assert [float(r["val_loss"]) for r in rows] == pytest.approx(history.history["val_loss"])


def test_reduce_lr_on_plateau():
    x, y = data()
    m = model(lr=0.01)
    lrs = []
    cbs = [ScriptedLoss([1.0, 1.0, 1.0, 1.0, 0.5, 0.5]),
           C.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=2, min_lr=0.003),
           C.LambdaCallback(on_epoch_end=lambda e, logs: lrs.append(m.optimizer.current_learning_rate()))]
    m.fit(x, y, epochs=6, batch_size=32, verbose=0, callbacks=cbs)
    assert lrs == pytest.approx([0.01, 0.01, 0.005, 0.005, 0.005, 0.005])


def test_lambda_callback_hooks_order():
    x, y = data()
    m = model()
    events = []
    cb = C.LambdaCallback(on_train_begin=lambda logs: events.append("train_begin"),
                          on_epoch_begin=lambda e, logs: events.append(f"epoch_begin {e}"),
                          on_train_batch_end=lambda b, logs: events.append(f"batch {b}"),
                          on_epoch_end=lambda e, logs: events.append(f"epoch_end {e}"),
                          on_train_end=lambda logs: events.append("train_end"))
    m.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[cb])
    assert events == ["train_begin", "epoch_begin 0", "batch 0", "batch 1", "epoch_end 0",
                      "epoch_begin 1", "batch 0", "batch 1", "epoch_end 1", "train_end"]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the run diverges on purpose
def test_terminate_on_nan(capsys):
    x, y = data()
    m = model(lr=1e6)  # diverges
    m.optimizer = lstmlab.optimizers.SGD(1e6)
    history = m.fit(x, y * 1e6, epochs=5, batch_size=4, verbose=0, callbacks=[C.TerminateOnNaN()])
    assert "Invalid loss, terminating training" in capsys.readouterr().out
    assert len(history.history["loss"]) == 1
