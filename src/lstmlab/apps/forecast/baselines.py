"""The forecasts a model must beat, on the same windows as the model.

* **Persistence** ("tomorrow = today"): every step of the horizon repeats the last observed value,
  ``y_hat[t + h] = y[t]`` for ``h = 1 .. H``.
* **Seasonal naive** (season ``m``): every step repeats the value one season earlier that is already
  observed, ``y_hat[t + h] = y[t + h - m * ceil(h / m)]``; for ``h <= m`` that is ``y[t + h - m]``, last
  season's value at the same phase. With ``m <= lookback`` it reads only rows inside the window.

For daily prices persistence is very hard to beat (a random walk's best forecast is its last value), and
tutorials that skip it overstate what an LSTM learned.
"""
from __future__ import annotations

import numpy as np


def persistence(values: np.ndarray, starts: np.ndarray, lookback: int, horizon: int, n_targets: int) -> np.ndarray:
    """Repeat the window's last target values over the horizon.  (T, C) -> (N, H, n_t)"""
    last = values[starts + lookback - 1, :n_targets]  # (N, n_t)
    return np.repeat(last[:, None, :], horizon, axis=1)  # (N, H, n_t)


def seasonal_naive(values: np.ndarray, starts: np.ndarray, lookback: int, horizon: int, n_targets: int,
                   season: int) -> np.ndarray:
    """The last observed value at the same phase of the season.  (T, C) -> (N, H, n_t)

    Raises ValueError when ``season`` is not an integer in ``[1, lookback]``.
    """
    if isinstance(season, bool) or not isinstance(season, (int, np.integer)) or not 1 <= season <= lookback:
        raise ValueError(f"season: expected an integer from 1 to --lookback ({lookback}), got {season!r}; the "
                         "seasonal-naive forecast reads the value one season back inside the window")
    h = np.arange(1, horizon + 1)  # (H,)
    back = h - season * np.ceil(h / season).astype(np.int64)  # (H,) in [1 - m, 0]
    rows = (starts + lookback - 1)[:, None] + back[None, :]  # (N, H) row of "now" + h - m ceil(h/m)
    return values[rows][..., :n_targets]  # (N, H, n_t)
