"""Forecast errors per horizon step: MAE, RMSE and MAPE, or sMAPE where a target's values reach zero.

For actual values ``a`` and forecasts ``f`` over N windows, at each step h and target j:

    MAE   = mean |a - f|
    RMSE  = sqrt(mean (a - f)^2)
    MAPE  = 100 mean |a - f| / |a|                       (percent; undefined when some a = 0)
    sMAPE = 100 mean 2 |a - f| / (|a| + |f|)             (percent, 0..200; 0 where a = f = 0)

MAPE explodes near zero, so a target whose values cross or touch zero is scored by sMAPE instead; the
choice is made once per target, from the whole series, so the model and the baselines share it.
"""
from __future__ import annotations

import numpy as np


def percent_kind(series_values: np.ndarray) -> list:
    """``"MAPE"`` or ``"sMAPE"`` for each target column of ``series_values`` (T, n_t)."""
    lo, hi = series_values.min(axis=0), series_values.max(axis=0)  # (n_t,)
    return ["MAPE" if (l > 0 or h < 0) else "sMAPE" for l, h in zip(lo, hi)]


def errors(actual: np.ndarray, forecast: np.ndarray, kinds) -> dict:
    """Metrics per step and target: each value is a list (H) of lists (n_t).

    Parameters
    ----------
    actual, forecast : (N, H, n_t)
    kinds : the percentage metric of each target (:func:`percent_kind`)
    """
    e = forecast - actual  # (N, H, n_t)
    mae = np.abs(e).mean(axis=0)  # (H, n_t)
    rmse = np.sqrt((e ** 2).mean(axis=0))  # (H, n_t)
    with np.errstate(divide="ignore", invalid="ignore"):
        ape = np.abs(e) / np.abs(actual)  # (N, H, n_t)
        denom = np.abs(actual) + np.abs(forecast)
        sape = np.where(denom > 0, 2.0 * np.abs(e) / np.where(denom > 0, denom, 1.0), 0.0)  # (N, H, n_t)
    pct = np.empty_like(mae)  # (H, n_t)
    for j, kind in enumerate(kinds):
        pct[:, j] = 100.0 * (ape[..., j] if kind == "MAPE" else sape[..., j]).mean(axis=0)
    return {"mae": mae.tolist(), "rmse": rmse.tolist(), "pct": pct.tolist()}


def mean_mae(metrics: dict) -> float:
    """The MAE averaged over horizon steps and targets: the one number the verdict compares."""
    return float(np.mean(metrics["mae"]))
