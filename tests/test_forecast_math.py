"""The pieces of ``lstmlab forecast`` against hand-computed values: windows, splits, baselines, metrics,
the scaler, dates."""
import datetime as dt
import math

import numpy as np
import pytest

from lstmlab.apps.forecast import (Fold, Scaler, errors, make_folds, percent_kind, persistence, read_series,
                                   seasonal_naive, split_windows, window_starts)
from lstmlab.apps.forecast.data import ForecastDataError, find_gaps, format_date, future_dates, parse_date
from lstmlab.apps.forecast.report import verdict
from lstmlab.apps.forecast.windows import decode, encode_inputs, encode_targets, last_values

# a tiny series, one column: rows 0..9
V = np.array([3, 1, 4, 1, 5, 9, 2, 6, 5, 3], np.float64)[:, None]  # (10, 1)


def test_window_starts_end_on_the_last_row():
    assert window_starts(10, 4, 3, 1).tolist() == [0, 1, 2, 3]  # 3 + 4 + 3 = 10: the last window ends on row 9
    assert window_starts(10, 4, 3, 2).tolist() == [1, 3]  # aligned on the end, not on row 0
    assert window_starts(10, 4, 3, 5).tolist() == [3]
    assert window_starts(6, 4, 3, 1).tolist() == []


def test_persistence_by_hand():
    p = persistence(V, np.array([0, 1]), 4, 3, 1)  # last observed values: row 3 (=1) and row 4 (=5)
    assert p.shape == (2, 3, 1)
    assert p[..., 0].tolist() == [[1, 1, 1], [5, 5, 5]]


def test_seasonal_naive_by_hand():
    # now = row s + 3; step h reads row now + h - m * ceil(h / m)
    s2 = seasonal_naive(V, np.array([0, 2]), 4, 3, 1, season=2)
    assert s2[..., 0].tolist() == [[4, 1, 4], [5, 9, 5]]  # rows (2, 3, 2) and (4, 5, 4)
    s3 = seasonal_naive(V, np.array([0]), 4, 3, 1, season=3)
    assert s3[..., 0].tolist() == [[1, 4, 1]]  # rows 1, 2, 3
    s1 = seasonal_naive(V, np.array([0]), 4, 3, 1, season=1)
    assert s1[..., 0].tolist() == [[1, 1, 1]]  # a season of 1 is persistence
    with pytest.raises(ValueError, match=r"season: expected an integer from 1 to --lookback \(4\), got 5"):
        seasonal_naive(V, np.array([0]), 4, 3, 1, season=5)


def test_metrics_by_hand():
    starts = np.array([0, 1])
    actual = np.stack([V[4:7], V[5:8]])  # (2, 3, 1): [5, 9, 2] and [9, 2, 6]
    forecast = persistence(V, starts, 4, 3, 1)  # [1, 1, 1] and [5, 5, 5]: errors 4, 8, 1 and 4, 3, 1
    m = errors(actual, forecast, ["MAPE"])
    assert np.allclose(np.ravel(m["mae"]), [4, 5.5, 1])
    assert np.allclose(np.ravel(m["rmse"]), [4, math.sqrt((64 + 9) / 2), 1])
    assert np.allclose(np.ravel(m["pct"]), [100 * (4 / 5 + 4 / 9) / 2, 100 * (8 / 9 + 3 / 2) / 2,
                                            100 * (1 / 2 + 1 / 6) / 2])


def test_smape_where_values_cross_zero():
    series = np.array([[-1.0, 2.0], [2.0, 3.0], [0.5, 1.0]])  # column 0 crosses zero, column 1 stays positive
    assert percent_kind(series) == ["sMAPE", "MAPE"]
    assert percent_kind(np.array([[-3.0], [-1.0]])) == ["MAPE"]  # all negative: MAPE is defined
    assert percent_kind(np.array([[0.0], [1.0]])) == ["sMAPE"]  # a zero: MAPE would divide by it
    actual = np.array([[[-1.0]], [[2.0]], [[0.0]]])  # (3, 1, 1)
    forecast = np.array([[[1.0]], [[2.0]], [[0.0]]])
    # 2|a - f| / (|a| + |f|): 2 * 2 / 2 = 2, 0, and 0 where a = f = 0
    assert np.allclose(errors(actual, forecast, ["sMAPE"])["pct"], [[100 * 2 / 3]])


def test_folds_are_chronological_and_windows_stay_inside_their_part():
    folds = make_folds(100, 10, 3, folds=3, val_fraction=0.15, test_fraction=0.3)
    assert [f.test_end for f in folds] == [80, 90, 100]
    assert [f.val_end for f in folds] == [70, 80, 90]
    assert all(f.val_end - f.train_end == 15 for f in folds)  # the validation block sits before each test block
    starts = window_starts(100, 10, 3, 1)
    for f in folds:
        parts = split_windows(starts, f, 10, 3)
        assert (parts["train"] + 13 <= f.train_end).all()  # every training target row is a training row
        assert (parts["val"] + 10 >= f.train_end).all() and (parts["val"] + 13 <= f.val_end).all()
        assert (parts["test"] + 10 >= f.val_end).all() and (parts["test"] + 13 <= f.test_end).all()
        assert len(parts["test"]) == (f.test_end - f.val_end) - 3 + 1


def test_too_few_rows_names_lookback_and_horizon():
    with pytest.raises(ValueError, match=r"lookback: 20 rows are too few for --lookback 12 plus --horizon 4"):
        make_folds(20, 12, 4)
    with pytest.raises(ValueError, match="stride: no validation window|stride: no val window"):
        split_windows(window_starts(100, 10, 3, 40), Fold(70, 85, 100), 10, 3)


def test_scaler_is_fitted_on_the_training_rows_only():
    rng = np.random.default_rng(0)
    values = rng.normal(10.0, 2.0, (200, 2))  # (T, C)
    values[170:] = 1e9  # only the test part holds huge values
    fold = make_folds(200, 12, 3)[0]
    assert fold.val_end <= 170
    scaler = Scaler.fit(values[:fold.train_end])
    assert np.allclose(scaler.mean, values[:fold.train_end].mean(axis=0))
    assert np.all(np.abs(scaler.mean - 10) < 1) and np.all(scaler.std < 3)


def test_encoding_is_relative_to_the_last_value_and_decodes_back():
    rng = np.random.default_rng(1)
    values = np.cumsum(rng.normal(size=(60, 2)), axis=0) + 50  # (T, C): one target, one feature
    scaler = Scaler.fit(values[:40])
    starts = np.array([0, 5, 30])
    x = encode_inputs(values, starts, 8, 1, scaler)  # (3, 8, 2)
    assert x.shape == (3, 8, 2) and np.all(x[:, -1, 0] == 0)  # the target channel is relative to its last value
    assert np.allclose(x[1, :, 1], (values[5:13, 1] - scaler.mean[1]) / scaler.std[1], atol=1e-6)
    y = encode_targets(values, starts, 8, 4, 1, scaler)  # (3, 4)
    back = decode(y, last_values(values, starts, 8, 1), 4, scaler)  # (3, 4, 1)
    assert np.allclose(back[:, :, 0], np.stack([values[s + 8:s + 12, 0] for s in starts]), atol=1e-4)


def test_verdict_claims_a_win_only_when_it_is_significant():
    win = verdict("LSTM", "persistence", 0.5, 1.0, -4.0, 0.0001)
    assert win["beats"] and win["text"].startswith("the LSTM beats persistence on this series: MAE 0.5 against 1")
    luck = verdict("LSTM", "persistence", 0.9, 1.0, -1.0, 0.3)  # 10% lower, but p = 0.3
    assert not luck["beats"]
    assert "the LSTM does not beat persistence on this series" in luck["text"] and "not significantly" in luck["text"]
    loss = verdict("GRU", "persistence", 1.3, 1.0, 3.0, 0.003)
    assert not loss["beats"] and loss["text"].startswith("the GRU does not beat persistence") and "30.0% higher" in \
        loss["text"]


def test_dates(tmp_path):
    assert parse_date("2024-01") == dt.datetime(2024, 1, 1)
    assert parse_date("2024-01-31 12:30") == dt.datetime(2024, 1, 31, 12, 30)
    assert parse_date("31/01/2024") is None
    months = [dt.datetime(2020, m, 1) for m in (1, 2, 3, 5, 6)]
    assert find_gaps(months) == [(dt.datetime(2020, 3, 1), dt.datetime(2020, 5, 1))]
    assert future_dates([dt.datetime(2020, 11, 1), dt.datetime(2020, 12, 1)], 2) == [dt.datetime(2021, 1, 1),
                                                                                     dt.datetime(2021, 2, 1)]
    assert future_dates([dt.datetime(2020, 1, 1), dt.datetime(2020, 1, 2)], 1) == [dt.datetime(2020, 1, 3)]
    assert format_date(dt.datetime(2021, 2, 1), "2020-12") == "2021-02"
    path = tmp_path / "s.csv"
    path.write_text("day,y,x\n2020-01-03,3,30\n2020-01-01,1,10\n2020-01-02,2,20\n2020-01-06,6,60\n")
    s = read_series(str(path), ["y"], ["x"], "day")
    assert s.values[:, 0].tolist() == [1, 2, 3, 6] and s.values[:, 1].tolist() == [10, 20, 30, 60]
    assert any("not in date order" in n for n in s.notes)
    assert any("1 gap(s)" in n and "2020-01-03 -> 2020-01-06" in n for n in s.notes)
    path.write_text("day,y\n2020-01-01,1\n2020-01-01,2\n")
    with pytest.raises(ForecastDataError, match="--date: the date 2020-01-01 00:00 appears twice"):
        read_series(str(path), ["y"], (), "day")


def test_diebold_mariano_by_hand():
    from lstmlab.apps.forecast.metrics import diebold_mariano

    actual = np.zeros((4, 1, 1))
    model = np.array([1.0, 1.0, 3.0, 1.0]).reshape(4, 1, 1)
    base = np.array([0.0, 2.0, 1.0, 1.0]).reshape(4, 1, 1)
    d = np.array([1.0, -1.0, 2.0, 0.0])  # |model error| - |baseline error| per window
    dc = d - d.mean()
    K = 1  # Newey-West's floor(4 (4 / 100)^(2/9)) = 1 lag, more than the horizon's 0
    v = dc @ dc / 4 + 2 * (1 - 1 / 2) * (dc[1:] @ dc[:-1]) / 4
    stat, p = diebold_mariano(actual, model, base, horizon_lag=0)
    assert K == int(4 * (4 / 100) ** (2 / 9))
    assert stat == pytest.approx(d.mean() / math.sqrt(v / 4)) and p == pytest.approx(math.erfc(abs(stat) / 2 ** 0.5))
    assert diebold_mariano(actual, model, model, 0) == (0.0, 1.0)  # the same forecasts: no evidence either way
    rng = np.random.default_rng(0)
    truth = rng.normal(size=(300, 2, 1))
    good, bad = truth + 0.1 * rng.normal(size=truth.shape), truth + rng.normal(size=truth.shape)
    stat, p = diebold_mariano(truth, good, bad, 1)
    assert stat < -5 and p < 1e-6
