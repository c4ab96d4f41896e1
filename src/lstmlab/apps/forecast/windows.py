"""Windows over a series, chronological splits without leakage, and the scaler fitted on the training part.

Window ``k`` starts at row ``s_k``; it shows the model rows ``s_k .. s_k + L - 1`` (``L = lookback``) of every
column and asks for the targets of rows ``s_k + L .. s_k + L + H - 1`` (``H = horizon``: one model, all H
steps at once). Starts are ``stride`` apart and aligned on the end of the series, so the last window's
targets end on the last row.

Splits are made on rows, in time order: ``[0, train_end)`` trains, ``[train_end, val_end)`` validates and
``[val_end, test_end)`` tests. A window belongs to the part that holds *all its target rows*; its inputs may
reach back into earlier parts (they are the past, known at forecast time), never forward. The scaler's
statistics come from the training rows alone. Walk-forward evaluation cuts the test part (the last
``test_fraction`` of the rows) into ``folds`` consecutive blocks; fold ``k`` trains on everything before its
validation block, which sits right before its test block.

The model sees and predicts *changes from the last observed value*: for target columns
``x = (v - v_last) / std`` and ``y = (v_future - v_last) / std``; other feature columns are standardized
``(v - mean) / std``. A series that trends out of the training range (CO2, prices) then stays in range.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# (The Keras utility timeseries_dataset_from_array gives one target row per window; a multi-step horizon
# needs the H rows after it, so the windows are gathered here with the same start arithmetic.)


def window_starts(n_rows: int, lookback: int, horizon: int, stride: int) -> np.ndarray:
    """Starts of every window that fits, ``stride`` apart, the last one ending on the last row.  -> (N,)"""
    last = n_rows - lookback - horizon
    if last < 0:
        return np.zeros(0, np.int64)
    return np.arange(last % stride, last + 1, stride, dtype=np.int64)  # (N,)


@dataclass(frozen=True)
class Fold:
    """Row boundaries of one chronological split: train ``[0, train_end)``, validation ``[train_end, val_end)``,
    test ``[val_end, test_end)``."""

    train_end: int
    val_end: int
    test_end: int

    def to_dict(self) -> dict:
        return {"train_end": self.train_end, "val_end": self.val_end, "test_end": self.test_end}


def make_folds(n_rows: int, lookback: int, horizon: int, folds: int = 1, val_fraction: float = 0.15,
               test_fraction: float = 0.15) -> list:
    """The ``folds`` walk-forward splits of ``n_rows`` rows (one split when ``folds == 1``).

    Raises ValueError when a part would hold no window: the training rows need ``lookback + horizon``,
    the validation block and each test block at least ``horizon`` rows.
    """
    n_test = max(folds * horizon, int(round(test_fraction * n_rows)))
    n_val = max(horizon, int(round(val_fraction * n_rows)))
    need = lookback + horizon + n_val + n_test
    if n_rows < need or n_rows - n_test - n_val < lookback + horizon:
        minimum = int(np.ceil((lookback + 2 * horizon + folds * horizon) / max(1e-9, 1 - val_fraction - test_fraction)))
        raise ValueError(f"lookback: {n_rows} rows are too few for --lookback {lookback} plus --horizon {horizon} "
                         f"in a training, a validation and {folds} test part(s) (expected at least about "
                         f"{max(minimum, lookback + horizon * (2 + folds))} rows); use a smaller --lookback, "
                         "--horizon or --folds, or a longer series")
    edges = np.linspace(n_rows - n_test, n_rows, folds + 1).round().astype(int)  # (folds + 1,)
    out = []
    for a, b in zip(edges[:-1], edges[1:]):
        if b - a < horizon:
            raise ValueError(f"folds: a test block of {b - a} rows is shorter than --horizon {horizon}; "
                             f"use fewer --folds (got {folds})")
        out.append(Fold(int(a) - n_val, int(a), int(b)))
    return out


def split_windows(starts: np.ndarray, fold: Fold, lookback: int, horizon: int) -> dict:
    """The starts of the training, validation and test windows of ``fold``: each window's target rows
    ``[s + L, s + L + H)`` lie wholly inside its part.  -> {"train": (Nt,), "val": (Nv,), "test": (Ns,)}"""
    first = starts + lookback  # (N,) first target row
    end = first + horizon  # (N,) one past the last target row
    parts = {"train": (0, fold.train_end), "val": (fold.train_end, fold.val_end),
             "test": (fold.val_end, fold.test_end)}
    out = {name: starts[(first >= lo) & (end <= hi)] for name, (lo, hi) in parts.items()}
    for name, s in out.items():
        if len(s) == 0:
            raise ValueError(f"stride: no {name} window with --stride so large; the {name} part has rows "
                             f"{parts[name][0]}..{parts[name][1] - 1} (use a smaller --stride)")
    return out


@dataclass
class Scaler:
    """Per-column mean and standard deviation of the training rows (a constant column gets std 1)."""

    mean: np.ndarray  # (C,)
    std: np.ndarray  # (C,)

    @classmethod
    def fit(cls, train_values: np.ndarray) -> "Scaler":
        """``train_values`` (Tt, C): only the rows before ``Fold.train_end`` are ever passed here."""
        mean = train_values.mean(axis=0)  # (C,)
        std = train_values.std(axis=0)  # (C,)
        std = np.where(std > 1e-12 * np.maximum(1.0, np.abs(mean)), std, 1.0)
        return cls(mean, std)

    def to_dict(self) -> dict:
        return {"mean": [float(v) for v in self.mean], "std": [float(v) for v in self.std]}

    @classmethod
    def from_dict(cls, d: dict) -> "Scaler":
        return cls(np.asarray(d["mean"], np.float64), np.asarray(d["std"], np.float64))


def gather(values: np.ndarray, starts: np.ndarray, offset: int, length: int) -> np.ndarray:
    """Rows ``s + offset .. s + offset + length - 1`` of ``values`` (T, C) for every start.  -> (N, length, C)"""
    rows = starts[:, None] + offset + np.arange(length)[None, :]  # (N, length)
    return values[rows]  # (N, length, C)


def encode_inputs(values: np.ndarray, starts: np.ndarray, lookback: int, n_targets: int,
                  scaler: Scaler) -> np.ndarray:
    """The model's input windows: targets relative to their last value, features standardized.  -> (N, L, C)"""
    x = gather(values, starts, 0, lookback)  # (N, L, C)
    last = x[:, -1:, :n_targets]  # (N, 1, n_t)
    out = np.empty_like(x)
    out[..., :n_targets] = (x[..., :n_targets] - last) / scaler.std[:n_targets]
    out[..., n_targets:] = (x[..., n_targets:] - scaler.mean[n_targets:]) / scaler.std[n_targets:]
    return out.astype(np.float32)


def last_values(values: np.ndarray, starts: np.ndarray, lookback: int, n_targets: int) -> np.ndarray:
    """The last observed target values of every window (the persistence forecast).  -> (N, n_t)"""
    return values[starts + lookback - 1, :n_targets]  # (N, n_t)


def actual_targets(values: np.ndarray, starts: np.ndarray, lookback: int, horizon: int, n_targets: int):
    """What happened: the targets of rows ``s + L .. s + L + H - 1``.  -> (N, H, n_t)"""
    return gather(values, starts, lookback, horizon)[..., :n_targets]  # (N, H, n_t)


def encode_targets(values, starts, lookback, horizon, n_targets, scaler) -> np.ndarray:
    """The training targets: the H future changes from the last value, scaled and flattened.  -> (N, H * n_t)"""
    future = actual_targets(values, starts, lookback, horizon, n_targets)  # (N, H, n_t)
    last = last_values(values, starts, lookback, n_targets)[:, None, :]  # (N, 1, n_t)
    y = (future - last) / scaler.std[:n_targets]  # (N, H, n_t)
    return y.reshape(len(starts), -1).astype(np.float32)  # (N, H * n_t)


def decode(pred: np.ndarray, last: np.ndarray, horizon: int, scaler: Scaler) -> np.ndarray:
    """The model's outputs (N, H * n_t) back in the data's units: ``last + change * std``.  -> (N, H, n_t)"""
    n_t = last.shape[1]
    change = np.asarray(pred, np.float64).reshape(len(pred), horizon, n_t)  # (N, H, n_t)
    return last[:, None, :] + change * scaler.std[:n_t]  # (N, H, n_t)
