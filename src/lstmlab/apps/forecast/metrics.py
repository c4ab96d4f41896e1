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

import math

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


def diebold_mariano(actual: np.ndarray, model: np.ndarray, baseline: np.ndarray, horizon_lag: int) -> tuple:
    """``(statistic, two-sided p)`` of the Diebold-Mariano test that the model's absolute errors equal the baseline's.

    With ``d_n`` the model's mean absolute error minus the baseline's on window n (N windows, in time
    order), ``DM = mean(d) / sqrt(V / N)`` where ``V`` is the Newey-West (Bartlett) long-run variance of
    ``d`` with ``K`` lags: overlapping windows make neighbouring ``d_n`` correlated, so the plain variance
    would overstate the evidence. ``K`` is the larger of ``horizon_lag`` (the windows that share a target
    row) and Newey and West's ``floor(4 (N / 100)^(2/9))``. Negative DM: the model's errors are smaller.
    """
    d = (np.abs(model - actual) - np.abs(baseline - actual)).reshape(len(actual), -1).mean(axis=1)  # (N,)
    n = len(d)
    dc = d - d.mean()
    K = min(n - 1, max(horizon_lag, int(4 * (n / 100) ** (2 / 9))))
    v = dc @ dc / n
    for k in range(1, K + 1):
        v += 2 * (1 - k / (K + 1)) * (dc[k:] @ dc[:-k]) / n
    if not v > 1e-300:
        return 0.0, 1.0
    stat = float(d.mean() / math.sqrt(v / n))
    return stat, float(math.erfc(abs(stat) / math.sqrt(2)))
