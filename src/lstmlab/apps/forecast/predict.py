"""``lstmlab forecast predict``: the next ``horizon`` values after the last row of a CSV, by a trained run.

The CSV must have the run's target and feature columns (and its date column, when it had one); only its
last ``lookback`` rows are read by the model, scaled with the statistics saved in the run (those of its
training rows, never the new file's).
"""
from __future__ import annotations

import os

import numpy as np

from ..runs import RunDir
from .data import BUILTIN, builtin_path, format_date, future_dates, read_series
from .trainer import load_checkpoint
from .walkforward import first_checkpoint, last_best
from .windows import decode, encode_inputs, last_values


def find_model(run_dir: str) -> str:
    """The checkpoint that forecasts for a run directory (the last fold's best), or ValueError naming RUN_DIR."""
    if not os.path.isdir(run_dir):
        raise ValueError(f"RUN_DIR: no run directory at {run_dir!r}")
    first = first_checkpoint(run_dir)
    if not os.path.exists(first):
        raise ValueError(f"RUN_DIR: {run_dir!r} holds no forecast checkpoint (expected {RunDir(run_dir).checkpoint})")
    _, cfg, *_ = load_checkpoint(first)
    path = last_best(run_dir, cfg.folds)
    if not os.path.exists(path):
        raise ValueError(f"RUN_DIR: {run_dir!r} has not trained its last fold yet; finish it with --resume")
    return path


def forecast_beyond(run_dir: str, csv: str | None = None):
    """``(cfg, series, labels, forecast)``: ``forecast`` (H, n_t) for the ``H`` rows after the CSV's last
    (the run's own CSV when ``csv`` is None); ``labels`` are future dates, or ``+1 .. +H``."""
    model, cfg, _, _, scaler, _, _ = load_checkpoint(find_model(run_dir))
    path = csv if csv is not None else (builtin_path() if cfg.csv == BUILTIN else cfg.csv)
    series = read_series(path, cfg.target, cfg.features, cfg.date)
    if len(series) < cfg.lookback:
        raise ValueError(f"--csv: {len(series)} rows are fewer than the run's --lookback {cfg.lookback}; the "
                         "model reads the last lookback rows")
    start = np.array([len(series) - cfg.lookback])  # (1,) the window that ends on the last row
    x = encode_inputs(series.values, start, cfg.lookback, series.n_targets, scaler)  # (1, L, C)
    last = last_values(series.values, start, cfg.lookback, series.n_targets)  # (1, n_t)
    pred = np.asarray(model.predict(x, verbose=0), np.float64)  # (1, H * n_t)
    forecast = decode(pred, last, cfg.horizon, scaler)[0]  # (H, n_t)
    if series.dates:
        labels = [format_date(d, series.date_texts[-1]) for d in future_dates(series.dates, cfg.horizon)]
    else:
        labels = [f"+{h}" for h in range(1, cfg.horizon + 1)]
    return cfg, series, labels, forecast
