"""Training one fold of a forecast run, with checkpoints that lose nothing (the shared :mod:`..runs` machinery).

* Each epoch visits the training windows in a permutation drawn from ``(seed, epoch)``, in batches of
  ``batch_size``; validation (MSE on the scaled changes, and MAE in the data's units) follows each epoch.
* After each validation the fold's run directory gets ``checkpoint.safetensors`` (weights, optimizer state,
  config, scaler, progress), ``best.safetensors`` when the validation loss is the lowest so far,
  ``log.csv`` and ``curves.png``; every file is written atomically.
* A stop request (Ctrl-C / SIGTERM) finishes the current step and saves; a non-finite or exploding loss
  stops before the update (:class:`..runs.Diverged`). ``--resume`` continues bit-identically: the epoch's
  permutation is a function of the seed and the epoch, and the partial epoch's loss sum is saved too.
"""
from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import asdict

import numpy as np

from ..runs import (CheckpointError, Progress, RunDir, RunTrainer, divergence_guard, plot_curves, read_checkpoint,
                    repair_interrupted_writes, save_checkpoint as save_run, write_log)
from .config import ForecastConfig
from .data import Series
from .model import build_model
from .windows import Fold, Scaler, decode, encode_inputs, encode_targets, last_values, split_windows, window_starts

KIND = "lstmlab.forecast"
LOSS_LIMIT = 1e4  # MSE on standardized changes is ~1 for a useless model; far above that it has exploded


def save_checkpoint(model, path, cfg: ForecastConfig, fold_index: int, fold: Fold, scaler: Scaler,
                    progress: Progress, digest: str, loss_sum: float) -> None:
    save_run(model, path, {"kind": KIND, "config": cfg.to_dict(), "fold": {"index": fold_index, **fold.to_dict()},
                           "scaler": scaler.to_dict(), "progress": asdict(progress), "data_sha256": digest,
                           "epoch_loss_sum": loss_sum})


def load_checkpoint(path):
    """``(model, config, fold_index, fold, scaler, progress, extra)`` from a forecast checkpoint."""
    model, extra, progress = read_checkpoint(path, KIND, {"config": dict, "fold": dict, "scaler": dict,
                                                          "data_sha256": str})
    try:
        cfg = ForecastConfig.from_dict(extra["config"])
        index = int(extra["fold"]["index"])
        fold = Fold(int(extra["fold"]["train_end"]), int(extra["fold"]["val_end"]), int(extra["fold"]["test_end"]))
        scaler = Scaler.from_dict(extra["scaler"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(path, "extra", f"a corrupted run description ({exc})") from None
    n_cols = len(cfg.target) + len(cfg.features)
    if scaler.mean.shape != (n_cols,) or scaler.std.shape != (n_cols,) or not np.all(scaler.std > 0):
        raise CheckpointError(path, "extra.scaler", f"expected {n_cols} means and positive deviations")
    return model, cfg, index, fold, scaler, progress, extra


def plot_fold_curves(path, history) -> str | None:
    return plot_curves(path, history, x="epoch", ylabel="MSE of the scaled changes",
                       title="forecaster learning curves")


class ForecastTrainer(RunTrainer):
    """Trains (or resumes) the model of one fold in ``run_dir``."""

    def __init__(self, run_dir: str, series: Series, cfg: ForecastConfig, fold_index: int, fold: Fold, *,
                 model=None, progress: Progress | None = None, loss_sum: float = 0.0, out=None,
                 on_validation=None):
        """``on_validation(epoch, val_loss, val_mae)``, when given, is called after each epoch's validation once
        its checkpoint is written (a tuner reports to its trial there); what it raises propagates out of
        :meth:`train`."""
        self.run = RunDir(run_dir)
        self.on_validation = on_validation
        self.series, self.cfg, self.fold_index, self.fold = series, cfg, fold_index, fold
        self.out = out if out is not None else sys.stdout
        n_t = series.n_targets
        starts = window_starts(len(series), cfg.lookback, cfg.horizon, cfg.stride)  # (N,)
        self.parts = split_windows(starts, fold, cfg.lookback, cfg.horizon)
        self.scaler = Scaler.fit(series.values[:fold.train_end])  # the training rows, nothing after them
        v, L, H = series.values, cfg.lookback, cfg.horizon
        self.x_train = encode_inputs(v, self.parts["train"], L, n_t, self.scaler)  # (Nt, L, C)
        self.y_train = encode_targets(v, self.parts["train"], L, H, n_t, self.scaler)  # (Nt, H * n_t)
        self.x_val = encode_inputs(v, self.parts["val"], L, n_t, self.scaler)  # (Nv, L, C)
        self.y_val = encode_targets(v, self.parts["val"], L, H, n_t, self.scaler)  # (Nv, H * n_t)
        self.steps_per_epoch = math.ceil(len(self.x_train) / cfg.batch_size)
        self.model = model if model is not None else build_model(cfg, v.shape[1])
        self.progress = progress if progress is not None else Progress()
        self.loss_sum = loss_sum  # sum of the batch losses of the epoch in progress
        self.stop_signal: int | None = None
        self._noted = False

    def _guard(self, loss, grads) -> None:
        divergence_guard(self.progress.global_step + 1, loss, grads, LOSS_LIMIT)

    def _checkpoint(self, best: bool) -> None:
        args = (self.cfg, self.fold_index, self.fold, self.scaler, self.progress, self.series.digest, self.loss_sum)
        save_checkpoint(self.model, self.run.checkpoint, *args)
        if best:
            save_checkpoint(self.model, self.run.best, *args)
        write_log(self.run.log, self.progress.history)

    def repair_interrupted_writes(self) -> None:
        repair_interrupted_writes(self.run, self.progress, plot_fold_curves)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The model's scaled changes for windows ``x`` (N, L, C).  -> (N, H * n_t)"""
        return np.asarray(self.model.predict(x, batch_size=256, verbose=0), np.float64)

    def validate(self) -> tuple[float, float]:
        """``(val_loss, val_mae)``: MSE of the scaled changes and MAE in the data's units."""
        pred = self.predict(self.x_val)  # (Nv, H * n_t)
        loss = float(np.mean((pred - self.y_val) ** 2))
        c = self.cfg
        last = last_values(self.series.values, self.parts["val"], c.lookback, self.series.n_targets)  # (Nv, n_t)
        actual = decode(self.y_val, last, c.horizon, self.scaler)  # (Nv, H, n_t)
        return loss, float(np.mean(np.abs(decode(pred, last, c.horizon, self.scaler) - actual)))

    def _end_epoch(self) -> None:
        p, c = self.progress, self.cfg
        train_loss = self.loss_sum / self.steps_per_epoch
        p.epoch, p.step_in_epoch, self.loss_sum = p.epoch + 1, 0, 0.0
        val, mae = self.validate()
        best = p.best_val is None or val < p.best_val
        if best:
            p.best_val, p.best_step = val, p.global_step
        p.history.append({"epoch": p.epoch, "step": p.global_step, "train_loss": round(train_loss, 6),
                          "val_loss": round(val, 6), "val_mae": round(mae, 6), "elapsed_s": round(p.elapsed, 2)})
        self._print(f"epoch {p.epoch}/{c.epochs}: train loss {train_loss:.4f}, val loss {val:.4f}, "
                    f"val MAE {mae:.4g}" + ("  [best]" if best else ""))
        self._checkpoint(best)
        note = plot_fold_curves(self.run.plot, p.history)
        if note and not self._noted:
            self._print(note)
            self._noted = True
        if self.on_validation is not None:
            self.on_validation(p.epoch, val, mae)

    def train(self) -> str:
        """Train until ``cfg.epochs`` epochs are done or a stop is requested: ``"done"`` or ``"interrupted"``.

        Raises :class:`..runs.Diverged` (the weights of the failing step are not updated).
        """
        os.makedirs(self.run.path, exist_ok=True)
        p, c = self.progress, self.cfg
        start, elapsed0 = time.monotonic(), p.elapsed
        B = c.batch_size
        while p.epoch < c.epochs:
            order = np.random.default_rng([c.seed, 11, p.epoch]).permutation(len(self.x_train))  # (Nt,)
            for k in range(p.step_in_epoch, self.steps_per_epoch):
                idx = order[k * B:(k + 1) * B]  # (B,) the last batch may be short
                loss = self.model.train_on_batch(self.x_train[idx], self.y_train[idx], before_update=self._guard)
                self.loss_sum += float(loss)
                p.step_in_epoch, p.global_step = k + 1, p.global_step + 1
                p.elapsed = elapsed0 + time.monotonic() - start
                if self.stop_signal is not None and k + 1 < self.steps_per_epoch:
                    self._checkpoint(best=False)
                    self._print(f"stopped at step {p.global_step}: checkpoint saved to {self.run.checkpoint}")
                    return "interrupted"
            self._end_epoch()
            if self.stop_signal is not None:
                self._print(f"stopped at step {p.global_step}: checkpoint saved to {self.run.checkpoint}")
                return "interrupted"
        return "done"
