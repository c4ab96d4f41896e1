"""End-to-end runs of ``lstmlab forecast`` and ``lstmlab forecast predict`` through ``lstmlab.cli.main``
(a subprocess where a signal is sent), on small synthetic series (seconds each)."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from lstmlab.apps.forecast.trainer import load_checkpoint
from lstmlab.cli import main
from lstmlab.io import load_file

SMALL = ["--lookback", "24", "--horizon", "6", "--season", "12", "--units", "16", "--batch-size", "16"]


@pytest.fixture(autouse=True)
def keep_signal_handlers():
    """main() installs stop handlers for the run; give pytest its own back."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    for s, h in saved.items():
        signal.signal(s, h)


def write_series(path, y, *, extra=None, start_year=2000):
    """A monthly CSV: date, y (and the columns of ``extra``: name -> values)."""
    extra = extra or {}
    with open(path, "w") as f:
        f.write(",".join(["date", "y", *extra]) + "\n")
        for i, v in enumerate(y):
            cells = [f"{start_year + i // 12}-{i % 12 + 1:02d}", f"{v:.6f}", *(f"{c[i]:.6f}" for c in extra.values())]
            f.write(",".join(cells) + "\n")
    return path


def seasonal(n=360, seed=0):
    t = np.arange(n)
    return 10 + 3 * np.sin(2 * np.pi * t / 12) + 0.2 * np.random.default_rng(seed).normal(size=n)


def random_walk(n=360, seed=1):
    return 100 + np.cumsum(np.random.default_rng(seed).normal(size=n))


def cli(capsys, *args):
    """``(exit code, stdout, stderr)`` of ``lstmlab *args`` in this process."""
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def train(capsys, csv, out, *args):
    code, stdout, err = cli(capsys, "forecast", "--csv", str(csv), "--target", "y", "--date", "date",
                            "--out", str(out), *SMALL, *args)
    assert code == 0, err
    return stdout


def weights(path):
    tensors, _ = load_file(path)
    return {k: v for k, v in tensors.items() if k.startswith(("weights/", "optimizer/"))}


def assert_same_weights(a, b):
    wa, wb = weights(a), weights(b)
    assert sorted(wa) == sorted(wb)
    for k in wa:
        assert np.array_equal(wa[k], wb[k]), k


def test_train_then_predict(capsys, tmp_path):
    csv = write_series(tmp_path / "s.csv", seasonal())
    out = train(capsys, csv, tmp_path / "run", "--epochs", "12")
    run = tmp_path / "run"
    assert sorted(os.listdir(run)) == ["best.safetensors", "checkpoint.safetensors", "curves.png", "forecast.png",
                                       "log.csv", "report.json", "report.md"]
    assert (run / "forecast.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    log = (run / "log.csv").read_text().splitlines()
    assert log[0] == "epoch,step,train_loss,val_loss,val_mae,elapsed_s" and len(log) == 13
    report = (run / "report.md").read_text()
    assert report in out  # printed and written
    assert "| step | LSTM | persistence | seasonal-naive (12) |" in report and "MAPE (%):" in report
    # a known seasonal signal: the LSTM must beat persistence, and the report must say so
    data = json.loads((run / "report.json").read_text())
    persist = data["verdicts"][0]
    assert persist["baseline"] == "persistence" and persist["beats"], persist
    assert "the LSTM beats persistence on this series" in report
    assert len(data["metrics"]["model"]["mae"]) == 6  # per horizon step

    new = write_series(tmp_path / "new.csv", seasonal(400, seed=3)[:300])  # ends at 2024-12
    code, pred, err = cli(capsys, "forecast", "predict", str(run), "--csv", str(new))
    assert code == 0, err
    lines = pred.splitlines()
    assert lines[0].startswith("# the 6 rows after 2024-12")
    assert lines[1] == "step,date,y"
    assert [line.split(",")[1] for line in lines[2:]] == ["2025-01", "2025-02", "2025-03", "2025-04", "2025-05",
                                                          "2025-06"]
    series = seasonal(400, seed=3)
    truth, last = series[300:306], series[299]  # what came next, and persistence's forecast of it
    forecast = np.array([float(line.split(",")[2]) for line in lines[2:]])
    assert np.mean(np.abs(forecast - truth)) < np.mean(np.abs(truth - last))


def test_a_random_walk_is_not_claimed_to_beat_persistence(capsys, tmp_path):
    csv = write_series(tmp_path / "rw.csv", random_walk())
    train(capsys, csv, tmp_path / "run", "--epochs", "10")
    report = (tmp_path / "run" / "report.md").read_text()
    data = json.loads((tmp_path / "run" / "report.json").read_text())
    assert not data["verdicts"][0]["beats"]
    assert "the LSTM does not beat persistence on this series" in report
    assert "the LSTM beats persistence" not in report


def test_scaler_never_sees_the_test_part(capsys, tmp_path):
    y = seasonal()
    y[-40:] += 1e6  # huge values in the test part only (the last 15% of 360 rows is 54 rows)
    csv = write_series(tmp_path / "s.csv", y)
    train(capsys, csv, tmp_path / "run", "--epochs", "1")
    _, cfg, _, fold, scaler, _, _ = load_checkpoint(tmp_path / "run" / "checkpoint.safetensors")
    assert fold.train_end <= 360 - 54 - 54
    assert np.allclose(scaler.mean, [y[:fold.train_end].mean()]) and np.allclose(scaler.std, [y[:fold.train_end].std()])
    assert scaler.mean[0] < 20 and scaler.std[0] < 5


def test_resume_equals_uninterrupted_with_walk_forward_folds(capsys, tmp_path):
    csv = write_series(tmp_path / "s.csv", seasonal(300), extra={"x": np.cos(np.arange(300))})
    common = ["--folds", "2", "--features", "x", "--test-fraction", "0.2"]
    train(capsys, csv, tmp_path / "a", *common, "--epochs", "4")
    train(capsys, csv, tmp_path / "b", *common, "--epochs", "2")
    code, out, err = cli(capsys, "forecast", "--resume", "--out", str(tmp_path / "b"), "--epochs", "4")
    assert code == 0, err
    assert "(resuming)" in out and "resuming at epoch 3" in out
    for fold in ("fold-1", "fold-2"):
        for name in ("checkpoint.safetensors", "best.safetensors"):
            assert_same_weights(tmp_path / "a" / fold / name, tmp_path / "b" / fold / name)
    for name in ("report.md", "report.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert "## MAE per fold" in (tmp_path / "a" / "report.md").read_text()
    # what cannot change on --resume is refused, with one line
    code, _, err = cli(capsys, "forecast", "--resume", "--out", str(tmp_path / "b"), "--units", "32")
    assert code == 2 and err == "lstmlab: error: --units: cannot change on --resume (16 -> 32)\n"
    code, _, err = cli(capsys, "forecast", "--resume", "--out", str(tmp_path / "b"), "--epochs", "3")
    assert code == 2 and "--epochs: the run has already completed 4 epochs" in err


def test_sigint_saves_and_resume_matches_an_uninterrupted_run(capsys, tmp_path):
    csv = write_series(tmp_path / "s.csv", seasonal(1200))
    common = ["forecast", "--csv", str(csv), "--target", "y", "--lookback", "12", "--horizon", "3", "--units", "16",
              "--batch-size", "8"]
    proc = subprocess.Popen([sys.executable, "-m", "lstmlab", *common, "--epochs", "500", "--out", str(tmp_path / "s")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in proc.stdout:
        if line.startswith("epoch 1/"):
            break
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "stopped at step" in out and "checkpoint saved" in out and "Traceback" not in err
    *_, progress, _ = load_checkpoint(tmp_path / "s" / "checkpoint.safetensors")
    assert 0 < progress.global_step and progress.epoch < 500
    epochs = str(progress.epoch + 1)
    code, _, err = cli(capsys, "forecast", "--resume", "--out", str(tmp_path / "s"), "--epochs", epochs)
    assert code == 0, err
    code, _, err = cli(capsys, *common, "--epochs", epochs, "--out", str(tmp_path / "u"))
    assert code == 0, err
    assert_same_weights(tmp_path / "s" / "checkpoint.safetensors", tmp_path / "u" / "checkpoint.safetensors")
    assert (tmp_path / "s" / "report.json").read_bytes() == (tmp_path / "u" / "report.json").read_bytes()


def one_line_error(capsys, *args):
    code, out, err = cli(capsys, *args)
    assert code == 2, (out, err)
    assert err.startswith("lstmlab: error: ") and err.count("\n") == 1, err
    return err


def test_bad_inputs_are_one_line_and_exit_2(capsys, tmp_path):
    good = write_series(tmp_path / "good.csv", seasonal(120))
    base = ["forecast", "--csv", str(good), "--out", str(tmp_path / "r")]
    assert "--target: no column 'price' in" in one_line_error(capsys, *base, "--target", "price")
    assert "(its columns: 'date', 'y')" in one_line_error(capsys, *base, "--target", "price")
    assert "--features: no column 'volume'" in one_line_error(capsys, *base, "--target", "y", "--features", "volume")
    assert "--target: expected the column(s) to forecast" in one_line_error(capsys, *base)
    bad = tmp_path / "bad.csv"
    bad.write_text("date,y\n2020-01,1.5\n2020-02,abc\n")
    assert "--target: column 'y' holds 'abc' on line 3 of" in one_line_error(
        capsys, "forecast", "--csv", str(bad), "--target", "y")
    bad.write_text("date,y\n2020-01,1.5\n2020-02,\n")
    assert "holds an empty cell on line 3" in one_line_error(capsys, "forecast", "--csv", str(bad), "--target", "y")
    short = write_series(tmp_path / "short.csv", seasonal(30))
    msg = one_line_error(capsys, "forecast", "--csv", str(short), "--target", "y", "--lookback", "24",
                         "--horizon", "6", "--out", str(tmp_path / "r"))
    assert "--lookback: 30 rows are too few for --lookback 24 plus --horizon 6" in msg
    dates = tmp_path / "dates.csv"
    dates.write_text("date,y\n2020-01,1\n2020-13-45,2\n")
    assert "--date: column 'date' holds '2020-13-45' on line 3" in one_line_error(
        capsys, "forecast", "--csv", str(dates), "--target", "y", "--date", "date")
    dates.write_text("date,y\n2020-01,1\n2020-01,2\n")
    assert "--date: the date 2020-01-01 00:00 appears twice" in one_line_error(
        capsys, "forecast", "--csv", str(dates), "--target", "y", "--date", "date")
    assert "--date: no column 'when'" in one_line_error(capsys, *base, "--target", "y", "--date", "when")
    assert "--csv: no file at" in one_line_error(capsys, "forecast", "--csv", str(tmp_path / "none.csv"),
                                                 "--target", "y")
    (tmp_path / "empty.csv").write_text("")
    assert "is empty" in one_line_error(capsys, "forecast", "--csv", str(tmp_path / "empty.csv"), "--target", "y")
    assert "--season: expected at most --lookback (24), got 30" in one_line_error(
        capsys, *base, "--target", "y", "--season", "30")
    assert "--horizon: expected an integer >= 1, got 0" in one_line_error(capsys, *base, "--target", "y",
                                                                          "--horizon", "0")
    assert "--cell: expected one of" in one_line_error(capsys, *base, "--target", "y", "--cell", "transformer")
    assert "--stride: no" in one_line_error(capsys, *base, "--target", "y", "--lookback", "12", "--horizon", "2",
                                            "--stride", "40")
    assert not (tmp_path / "r").exists()  # nothing was written by a refused run
    (tmp_path / "file").write_text("x")
    assert "--out: " in one_line_error(capsys, "forecast", "--csv", str(good), "--target", "y",
                                       "--out", str(tmp_path / "file"))
    assert "holds no forecast checkpoint" in one_line_error(capsys, "forecast", "--resume", "--out",
                                                            str(tmp_path / "nothing"))


def test_divergence_stops_before_the_update_with_one_line(capsys, tmp_path):
    csv = write_series(tmp_path / "s.csv", seasonal(120))
    code, out, err = cli(capsys, "forecast", "--csv", str(csv), "--target", "y", "--out", str(tmp_path / "d"),
                         "--lookback", "12", "--horizon", "3", "--units", "8", "--lr", "1e5", "--epochs", "3")
    assert code == 1 and err.count("\n") == 1, err
    assert err.startswith("lstmlab: error: training diverged at step ") and "--force --lr 10000" in err


def test_existing_runs_need_force_and_predict_checks_its_csv(capsys, tmp_path):
    csv = write_series(tmp_path / "s.csv", seasonal(120))
    run = tmp_path / "run"
    args = ["--lookback", "12", "--horizon", "3", "--units", "8", "--epochs", "1"]
    code, _, err = cli(capsys, "forecast", "--csv", str(csv), "--target", "y", "--out", str(run), *args)
    assert code == 0, err
    assert "already holds a run; use --resume" in one_line_error(
        capsys, "forecast", "--csv", str(csv), "--target", "y", "--out", str(run), *args)
    code, _, err = cli(capsys, "forecast", "--csv", str(csv), "--target", "y", "--out", str(run), "--force", *args)
    assert code == 0, err
    other = tmp_path / "other.csv"
    other.write_text("date,z\n2020-01,1\n")
    assert "--target: no column 'y' in" in one_line_error(capsys, "forecast", "predict", str(run), "--csv", str(other))
    few = write_series(tmp_path / "few.csv", seasonal(5))
    assert "--csv: 5 rows are fewer than the run's --lookback 12" in one_line_error(
        capsys, "forecast", "predict", str(run), "--csv", str(few))
    assert "RUN_DIR: no run directory" in one_line_error(capsys, "forecast", "predict", str(tmp_path / "none"))
    changed = write_series(tmp_path / "s.csv", seasonal(120) + 1)
    assert "--resume: the data in" in one_line_error(capsys, "forecast", "--resume", "--out", str(run),
                                                     "--csv", str(changed))
    code, pred, err = cli(capsys, "forecast", "predict", str(run))  # the run's own CSV, continued without dates
    assert code == 0, err
    assert pred.splitlines()[1] == "step,after_last_row,y" and pred.splitlines()[2].startswith("1,+1,")


@pytest.mark.slow
def test_builtin_co2_runs_with_no_arguments(tmp_path):
    r = subprocess.run([sys.executable, "-m", "lstmlab", "forecast"], capture_output=True, text=True, cwd=tmp_path,
                       timeout=600)
    assert r.returncode == 0, r.stderr
    assert "the built-in NOAA Mauna Loa monthly CO2 series" in r.stdout
    assert "the LSTM beats persistence on this series" in r.stdout
    (run,) = os.listdir(tmp_path / "runs")
    p = subprocess.run([sys.executable, "-m", "lstmlab", "forecast", "predict", os.path.join("runs", run)],
                       capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert p.returncode == 0 and p.stdout.splitlines()[2].startswith("1,2026-07,"), p.stderr
