"""A whole forecast run: train each walk-forward fold (or the one split), then score the model and the
baselines on every fold's test windows.

With one fold the run directory holds the fold's files; with ``--folds K`` each fold has ``fold-<k>/``.
Folds already trained are not trained again on ``--resume``: their best checkpoint is read back.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass

import numpy as np

from ..runs import RunDir, install_stop_handlers
from .baselines import persistence, seasonal_naive
from .config import ForecastConfig
from .data import Series
from .trainer import ForecastTrainer, load_checkpoint
from .windows import Fold, actual_targets, decode, encode_inputs, last_values, make_folds, split_windows, window_starts


def fold_dir(out: str, index: int, folds: int) -> str:
    return out if folds == 1 else os.path.join(out, f"fold-{index + 1}")


def first_checkpoint(out: str) -> str:
    """The checkpoint whose config describes the run (the first fold's)."""
    single = RunDir(out)
    return single.checkpoint if os.path.exists(single.checkpoint) else RunDir(fold_dir(out, 0, 2)).checkpoint


def last_best(out: str, folds: int) -> str:
    """The model ``predict`` uses: the last fold's best checkpoint (trained on the most data)."""
    return RunDir(fold_dir(out, folds - 1, folds)).best_or_latest


@dataclass
class FoldResult:
    """One fold's test windows and the forecasts of the model and the baselines, in the data's units."""

    index: int
    fold: Fold
    n_windows: dict  # part name -> windows
    starts: np.ndarray  # (N,) test window starts
    actual: np.ndarray  # (N, H, n_t)
    forecasts: dict  # "model" / "persistence" / "seasonal_naive" -> (N, H, n_t)
    best_epoch: int
    epochs: int


def score_fold(trainer: ForecastTrainer, model) -> FoldResult:
    """Forecasts of ``model`` (the fold's best) and of the baselines on the fold's test windows."""
    s, c = trainer.series, trainer.cfg
    v, n_t, starts = s.values, s.n_targets, trainer.parts["test"]
    x = encode_inputs(v, starts, c.lookback, n_t, trainer.scaler)  # (N, L, C)
    last = last_values(v, starts, c.lookback, n_t)  # (N, n_t)
    pred = np.asarray(model.predict(x, batch_size=256, verbose=0), np.float64)  # (N, H * n_t)
    forecasts = {"model": decode(pred, last, c.horizon, trainer.scaler),
                 "persistence": persistence(v, starts, c.lookback, c.horizon, n_t)}
    if c.season is not None:
        forecasts["seasonal_naive"] = seasonal_naive(v, starts, c.lookback, c.horizon, n_t, c.season)
    actual = actual_targets(v, starts, c.lookback, c.horizon, n_t)  # (N, H, n_t)
    p = trainer.progress
    best_epoch = next((r["epoch"] for r in p.history if r["step"] == p.best_step), p.epoch)
    return FoldResult(trainer.fold_index, trainer.fold, {k: len(w) for k, w in trainer.parts.items()}, starts,
                      actual, forecasts, best_epoch, p.epoch)


def plan_folds(series: Series, cfg: ForecastConfig) -> list:
    """The walk-forward splits, checked to hold windows in every part (ValueError naming the option if not)."""
    folds = make_folds(len(series), cfg.lookback, cfg.horizon, cfg.folds, cfg.val_fraction, cfg.test_fraction)
    starts = window_starts(len(series), cfg.lookback, cfg.horizon, cfg.stride)
    for fold in folds:
        split_windows(starts, fold, cfg.lookback, cfg.horizon)
    return folds


def run_folds(out: str, series: Series, cfg: ForecastConfig, *, resume: bool, stream=None):
    """Train and score every fold; returns ``("done", results)`` or ``("interrupted", signal number)``.

    Raises :class:`..runs.Diverged` from the fold that diverged.
    """
    stream = stream if stream is not None else sys.stdout
    results = []
    for k, fold in enumerate(plan_folds(series, cfg)):
        run = RunDir(fold_dir(out, k, cfg.folds))
        if resume and os.path.exists(run.checkpoint):
            model, saved, _, _, _, progress, extra = load_checkpoint(run.checkpoint)
            trainer = ForecastTrainer(run.path, series, cfg, k, fold, model=model, progress=progress,
                                      loss_sum=float(extra.get("epoch_loss_sum", 0.0)), out=stream)
            run.remove_stale_temps()
            trainer.repair_interrupted_writes()
        else:
            trainer = ForecastTrainer(run.path, series, cfg, k, fold, out=stream)
        p = trainer.progress
        stream.write(f"fold {k + 1}/{cfg.folds}: training rows 0-{fold.train_end - 1} "
                     f"({len(trainer.parts['train'])} windows), validation rows {fold.train_end}-{fold.val_end - 1} "
                     f"({len(trainer.parts['val'])}), test rows {fold.val_end}-{fold.test_end - 1} "
                     f"({len(trainer.parts['test'])})" + (f"; resuming at epoch {p.epoch + 1}" if p.global_step
                                                          and p.epoch < cfg.epochs else "") + "\n")
        stream.flush()
        install_stop_handlers(trainer)
        if trainer.train() == "interrupted":
            return "interrupted", trainer.stop_signal
        best, *_ = load_checkpoint(run.best)
        results.append(score_fold(trainer, best))
    return "done", results
