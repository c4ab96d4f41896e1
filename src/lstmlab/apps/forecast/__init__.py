"""``lstmlab forecast``: time-series forecasting with a recurrent network, against honest baselines.

data (CSV, dates) -> windows (lookback, horizon, stride; chronological splits; scaler on the training rows)
-> model and trainer (the shared :mod:`lstmlab.apps.runs` machinery) -> walk-forward folds -> report
(the model against persistence and seasonal-naive) -> predict (beyond the last row).
"""
from .baselines import persistence, seasonal_naive
from .config import ForecastConfig
from .data import ForecastDataError, Series, read_series
from .metrics import errors, percent_kind
from .windows import Fold, Scaler, make_folds, split_windows, window_starts

__all__ = ["ForecastConfig", "ForecastDataError", "Fold", "Scaler", "Series", "errors", "make_folds",
           "percent_kind", "persistence", "read_series", "seasonal_naive", "split_windows", "window_starts"]
