"""``lstmlab tune``: real Optuna studies of tiny ``lstmlab train`` runs (a second or two per trial), on SQLite
with two worker processes, and on a real PostgreSQL server started by the fixture."""
import getpass
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile

import numpy as np
import pytest

from lstmlab import cli
from lstmlab.apps.textgen import load_checkpoint

optuna = pytest.importorskip("optuna", reason="optuna is not installed (pip install 'lstmlab[tune]')")

WORDS = "the cat sat on a mat and then it ran far away from home while dogs barked at night".split()
TINY = ["--layers", "1", "--units", "16", "--embedding", "8", "--batch-size", "4", "--seq-len", "10",
        "--steps", "6", "--eval-every", "3"]
SPACE = {"learning_rate": {"low": 1e-3, "high": 3e-2, "log": True}, "dropout": {"low": 0.0, "high": 0.3},
         "optimizer": {"choices": ["adam", "rmsprop", "adagrad", "sgd-nesterov"]},
         "activation": {"choices": ["tanh", "softsign"]}}


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "tiny.txt"
    path.write_text(" ".join(np.random.default_rng(0).choice(WORDS, 700)), encoding="utf-8")
    return path


@pytest.fixture
def space(tmp_path):
    path = tmp_path / "space.json"
    path.write_text(json.dumps(SPACE), encoding="utf-8")
    return path


def tune(*args, timeout=300):
    proc = subprocess.run([sys.executable, "-m", "lstmlab", "tune", *args], capture_output=True, text=True,
                          timeout=timeout)
    return proc


def trials_of(url, name="lstmlab-tune"):
    return sorted(optuna.load_study(study_name=name, storage=url).get_trials(), key=lambda t: t.number)


def test_two_workers_on_one_sqlite_study_then_resume(corpus, space, tmp_path):
    out = tmp_path / "study"
    proc = tune("--corpus", str(corpus), *TINY, "--trials", "4", "--workers", "2", "--space", str(space),
                "--pruner", "none", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    url = f"sqlite:///{out / 'study.db'}"
    first = trials_of(url)
    assert [t.number for t in first] == [0, 1, 2, 3]
    assert all(t.state.name == "COMPLETE" and np.isfinite(t.value) for t in first)
    assert len({t.user_attrs["worker_pid"] for t in first}) == 2  # two processes shared the study
    assert set(first[0].params) == set(SPACE)  # the space file replaced the default; typed options are fixed
    best = min(first, key=lambda t: t.value)
    report = (out / "report.md").read_text()
    assert f"best: trial {best.number}, validation loss {best.value:.4f}" in report and "## parameter importances" in report
    assert f"best: trial {best.number}" in proc.stdout
    for name in ("history.png", "importances.png", "lr_vs_loss.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
    # Each trial is an ordinary run directory with its parameters in its checkpoint.
    model, vocab, mcfg, tcfg, progress, _ = load_checkpoint(out / "trials" / f"{best.number:03d}" / "best.safetensors")
    assert mcfg.units == 16 and mcfg.activation == best.params["activation"]
    assert tcfg.learning_rate == pytest.approx(best.params["learning_rate"])
    assert progress.best_val == pytest.approx(best.value)

    # Resuming adds trials; none repeats a number or a parameter set, the first four are untouched.
    proc = tune("--trials", "6", "--workers", "2", "--out", str(out), "--resume")
    assert proc.returncode == 0, proc.stderr[-3000:]
    after = trials_of(url)
    assert [t.number for t in after] == list(range(6))
    assert [(t.value, t.params) for t in after[:4]] == [(t.value, t.params) for t in first]
    assert all(t.state.name in ("COMPLETE", "PRUNED") for t in after)
    params = [json.dumps(t.params, sort_keys=True) for t in after]
    assert len(set(params)) == 6
    assert "6 trials" in (out / "report.md").read_text()

    # A study already there is not overwritten by accident.
    proc = tune("--corpus", str(corpus), *TINY, "--trials", "1", "--out", str(out))
    assert proc.returncode == 2 and "already exists" in proc.stderr and proc.stderr.count("\n") == 1


def test_bad_options_are_one_line(corpus, tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"learnig_rate": {"low": 1e-3, "high": 1e-2}}))
    assert cli.main(["tune", "--corpus", str(corpus), "--space", str(bad), "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--space:" in err and "parameter 'learnig_rate': unknown; expected one of" in err
    assert cli.main(["tune", "--trials", "0", "--out", str(tmp_path / "s")]) == 2
    assert "--trials: expected a positive integer, got 0" in capsys.readouterr().err
    empty = tmp_path / "lr.toml"
    empty.write_text("[learning_rate]\nlow = 1e-2\nhigh = 1e-3\n")
    assert cli.main(["tune", "--corpus", str(corpus), "--space", str(empty), "--out", str(tmp_path / "t")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "parameter 'learning_rate': expected numbers low < high" in err


def test_without_optuna_the_message_names_the_extra(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "optuna", None)  # import optuna now raises ImportError
    assert cli.main(["tune", "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert err == "lstmlab: error: lstmlab tune needs Optuna: pip install 'lstmlab[tune]'\n"


# -- PostgreSQL: a real server for the length of the test ------------------------------------------------
PG_BIN = "/usr/lib/postgresql/15/bin"


def _pg_bin():
    for d in [PG_BIN] + sorted(f"/usr/lib/postgresql/{v}/bin" for v in os.listdir("/usr/lib/postgresql")) \
            if os.path.isdir("/usr/lib/postgresql") else [PG_BIN]:
        if os.path.exists(os.path.join(d, "initdb")) and os.path.exists(os.path.join(d, "pg_ctl")):
            return d
    found = shutil.which("initdb")
    return os.path.dirname(found) if found and shutil.which("pg_ctl") else None


@pytest.fixture
def postgres():
    """initdb into a temporary directory, pg_ctl start on a free port of 127.0.0.1, stop at teardown."""
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed (Debian: apt-get install postgresql)")
    pytest.importorskip("psycopg", reason="psycopg (3) is not installed (pip install 'lstmlab[tune]')")
    root = os.geteuid() == 0  # initdb refuses root: run the server as Debian's postgres user
    user = "postgres" if root else getpass.getuser()
    base = tempfile.mkdtemp(prefix="lstmlab-pg-")
    data = os.path.join(base, "data")
    if root:
        shutil.chown(base, user)

    def as_user(*cmd):
        full = (["runuser", "-u", user, "--"] if root else []) + [os.path.join(bindir, cmd[0]), *cmd[1:]]
        return subprocess.run(full, capture_output=True, text=True, timeout=120)

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    init = as_user("initdb", "-D", data, "-U", user, "--auth=trust", "--no-sync")
    assert init.returncode == 0, init.stderr
    start = as_user("pg_ctl", "-D", data, "-l", os.path.join(base, "log"), "-w", "-o",
                    f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off", "start")
    assert start.returncode == 0, start.stderr + open(os.path.join(base, "log")).read()
    try:
        yield f"postgresql://{user}@127.0.0.1:{port}/postgres"
    finally:
        as_user("pg_ctl", "-D", data, "-m", "immediate", "-w", "stop")
        shutil.rmtree(base, ignore_errors=True)


def test_two_workers_share_a_postgresql_study(postgres, corpus, space, tmp_path):
    out = tmp_path / "pg"
    proc = tune("--corpus", str(corpus), *TINY, "--trials", "2", "--workers", "2", "--space", str(space),
                "--pruner", "none", "--storage", postgres, "--study-name", "shared", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not (out / "study.db").exists()  # the study lives in the server
    trials = trials_of(postgres, "shared")
    assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE"]
    assert len({t.user_attrs["worker_pid"] for t in trials}) == 2
    assert "best: trial" in (out / "report.md").read_text()


# -- lstmlab tune forecast ---------------------------------------------------------------------------------
@pytest.fixture
def series_csv(tmp_path):
    """150 monthly rows of a noisy seasonal series (date, y)."""
    t = np.arange(150)
    y = 10 + 3 * np.sin(2 * np.pi * t / 12) + 0.2 * np.random.default_rng(0).normal(size=150)
    path = tmp_path / "series.csv"
    path.write_text("date,y\n" + "".join(f"{2000 + i // 12}-{i % 12 + 1:02d},{v:.6f}\n" for i, v in enumerate(y)))
    return path


@pytest.fixture
def keep_signal_handlers():
    """An in-process study installs the trials' stop handlers; give pytest its own back."""
    import signal

    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    for s, h in saved.items():
        signal.signal(s, h)


FORECAST = ["--target", "y", "--date", "date", "--season", "12", "--horizon", "3", "--epochs", "3", "--units", "16"]


def test_forecast_trials_are_forecast_runs(series_csv, tmp_path, capsys, keep_signal_handlers):
    from lstmlab.apps.forecast.trainer import load_checkpoint as load_forecast

    out = tmp_path / "fstudy"
    # Search options before the subcommand's name are kept (--trials), after it too (--pruner, --out).
    code = cli.main(["tune", "--trials", "3", "forecast", "--csv", str(series_csv), *FORECAST, "--pruner", "none",
                     "--out", str(out)])
    stdout, err = capsys.readouterr()
    assert code == 0, err
    study = optuna.load_study(study_name="lstmlab-tune", storage=f"sqlite:///{out / 'study.db'}")
    # The default forecast space, less the typed --units: learning rate first; lookback half / once / twice 24.
    space = study.user_attrs["spec"]["space"]
    assert study.user_attrs["spec"]["command"] == "forecast"
    assert [p["name"] for p in space] == ["learning_rate", "layers", "cell", "lookback"]
    assert space[0]["log"] and space[3]["choices"] == [12, 24, 48]
    trials = sorted(study.get_trials(), key=lambda t: t.number)
    assert [t.state.name for t in trials] == ["COMPLETE"] * 3 and all(np.isfinite(t.value) for t in trials)
    for t in trials:
        run = out / "trials" / f"{t.number:03d}"
        assert t.user_attrs["run_dir"] == str(run)
        _, cfg, *_, progress, _ = load_forecast(run / "best.safetensors")
        # The run holds the trial's parameters over the typed options, and its value is the run's best
        # validation loss; every epoch's validation loss was reported to the trial (the pruner's input).
        assert (cfg.units, cfg.horizon, cfg.epochs, cfg.season) == (16, 3, 3, 12)
        assert (cfg.layers, cfg.cell, cfg.lookback) == (t.params["layers"], t.params["cell"], t.params["lookback"])
        assert cfg.learning_rate == pytest.approx(t.params["learning_rate"])
        assert t.value == pytest.approx(progress.best_val)
        assert t.intermediate_values == pytest.approx({r["epoch"]: r["val_loss"] for r in progress.history}, abs=1e-6)
        assert min(t.intermediate_values.values()) == pytest.approx(t.value)
        assert t.user_attrs["epochs"] == 3
        assert {"report.md", "report.json", "log.csv"} <= set(os.listdir(run))  # what lstmlab forecast writes
        # An ordinary forecast run: lstmlab forecast predict reads it.
        assert cli.main(["forecast", "predict", str(run)]) == 0
        lines = capsys.readouterr().out.strip().splitlines()
        assert lines[1] == "step,date,y" and len(lines) == 2 + 3
        assert all(np.isfinite(float(line.split(",")[2])) for line in lines[2:])
    best = min(trials, key=lambda t: t.value)
    report = (out / "report.md").read_text()
    assert f"best: trial {best.number}, validation loss {best.value:.4g} (MSE of the scaled changes)" in report
    assert f"best: trial {best.number}" in stdout and "| val MAE |" in report
    for name in ("history.png", "importances.png", "lr_vs_loss.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"

    # The study is a forecast study: resuming it as a train study is refused in one line.
    assert cli.main(["tune", "--resume", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "tunes lstmlab forecast; resume it with lstmlab tune forecast --resume" in err


def test_forecast_bad_options_are_one_line(series_csv, tmp_path, capsys):
    bad = tmp_path / "space.json"
    bad.write_text(json.dumps({"dropout": {"low": 0.0, "high": 0.5}}))  # the forecaster has no dropout
    args = ["tune", "forecast", "--csv", str(series_csv), *FORECAST]
    assert cli.main([*args, "--space", str(bad), "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "parameter 'dropout': unknown; expected one of learning_rate, units, layers, cell, lookback, batch_size" \
        in err
    big = tmp_path / "lookback.json"
    big.write_text(json.dumps({"lookback": {"choices": [12, 120]}}))  # 150 rows cannot hold lookback 120
    assert cli.main([*args, "--space", str(big), "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--space: lookback = 120 cannot make a run" in err
    assert cli.main(["tune", "--embedding", "8", "forecast", "--csv", str(series_csv), "--target", "y"]) == 2
    assert "--embedding: an option of lstmlab tune (train), not of lstmlab tune forecast" in capsys.readouterr().err
    assert cli.main(["tune", "forecast", "--csv", str(series_csv), "--out", str(tmp_path / "c")]) == 2
    assert "--target: expected the column(s) to forecast" in capsys.readouterr().err


# -- lstmlab tune classify ---------------------------------------------------------------------------------
@pytest.fixture
def reviews_csv(tmp_path):
    """240 short synthetic reviews (neg / pos by their cue words), made as tests/test_cli_classify.py makes them."""
    from test_cli_classify import reviews, write_csv

    return write_csv(tmp_path / "reviews.csv", reviews(240))


CLASSIFY = ["--text", "review", "--label", "sentiment", "--tokens", "word", "--embedding", "8", "--batch-size", "16",
            "--epochs", "2"]


def test_classify_trials_are_classify_runs(reviews_csv, tmp_path, capsys, keep_signal_handlers):
    import math

    from lstmlab.apps.classify.trainer import load_checkpoint as load_classify

    out = tmp_path / "cstudy"
    # --units before the subcommand's name is a classify option too; the median pruner is on (the default).
    code = cli.main(["tune", "--units", "8", "classify", "--data", str(reviews_csv), *CLASSIFY, "--trials", "3",
                     "--minutes-per-trial", "5", "--out", str(out)])
    stdout, err = capsys.readouterr()
    assert code == 0, err
    study = optuna.load_study(study_name="lstmlab-tune", storage=f"sqlite:///{out / 'study.db'}")
    spec = study.user_attrs["spec"]
    # The default classify space less the typed --units and --embedding (and no batch size: it was typed too).
    assert spec["command"] == "classify" and study.user_attrs["pruner"] == "median"
    assert [p["name"] for p in spec["space"]] == ["learning_rate", "layers", "cell", "bidirectional"]
    assert spec["space"][0]["log"] and spec["space"][3]["choices"] == [False, True]
    trials = sorted(study.get_trials(), key=lambda t: t.number)
    assert [t.state.name for t in trials] == ["COMPLETE"] * 3 and all(np.isfinite(t.value) for t in trials)
    predict_in = tmp_path / "new.txt"
    predict_in.write_text("a good great film with its cast\nthe plot was awful and dull\n", encoding="utf-8")
    for t in trials:
        run = out / "trials" / f"{t.number:03d}"
        assert t.user_attrs["run_dir"] == str(run)
        _, _, labels, mcfg, tcfg, progress, _ = load_classify(run / "best.safetensors")
        # The run holds the trial's parameters over the typed options; its value is the run's best validation
        # loss, and every epoch's validation loss was reported to the trial (the pruner's input).
        assert (mcfg.units, mcfg.embedding, tcfg.batch_size, tcfg.epochs, tcfg.minutes) == (8, 8, 16, 2, 5.0)
        assert (mcfg.layers, mcfg.cell, mcfg.bidirectional) == (t.params["layers"], t.params["cell"],
                                                                 t.params["bidirectional"])
        assert tcfg.learning_rate == pytest.approx(t.params["learning_rate"]) and labels == ["neg", "pos"]
        assert t.value == pytest.approx(progress.best_val)
        assert t.intermediate_values == pytest.approx(
            {math.ceil(r["epoch"]): r["val_loss"] for r in progress.history}, abs=1e-6)
        assert sorted(t.intermediate_values) == [1, 2] and t.user_attrs["epochs"] == 2
        best_row = next(r for r in progress.history if r["step"] == progress.best_step)
        assert t.user_attrs["val_accuracy"] == best_row["val_accuracy"]
        assert {"report.md", "report.json", "log.csv", "curves.png"} <= set(os.listdir(run))  # lstmlab classify's
        # An ordinary classify run: lstmlab classify predict reads it (one label and probability per line).
        assert cli.main(["classify", "predict", str(run), str(predict_in)]) == 0
        lines = [line.split("\t") for line in capsys.readouterr().out.strip().splitlines()]
        assert len(lines) == 2 and all(lb in labels and 0.5 <= float(p) <= 1.0 for lb, p in lines)
    best = min(trials, key=lambda t: t.value)
    report = (out / "report.md").read_text()
    assert f"best: trial {best.number}, validation loss {best.value:.4g} nats (cross-entropy)" in report
    assert f"best: trial {best.number}" in stdout and "| val accuracy |" in report
    assert f"lstmlab classify predict {out / 'trials' / f'{best.number:03d}'} FILE" in report
    for name in ("history.png", "importances.png", "lr_vs_loss.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"

    # The study is a classify study: resuming it as a forecast study is refused in one line.
    assert cli.main(["tune", "forecast", "--resume", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "tunes lstmlab classify; resume it with lstmlab tune classify --resume" in err


def test_classify_bad_options_are_one_line(reviews_csv, tmp_path, capsys):
    args = ["tune", "classify", "--data", str(reviews_csv), *CLASSIFY]
    bad = tmp_path / "dropout.json"
    bad.write_text(json.dumps({"dropout": {"low": 0.0, "high": 0.5}}))  # the classifier has no dropout

    def one_line(argv, message):
        assert cli.main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("lstmlab: error: ") and message in err, err

    one_line([*args, "--space", str(bad), "--out", str(tmp_path / "a")], "--space: " + str(bad) + ": parameter "
             "'dropout': unknown; expected one of learning_rate, units, layers, cell, bidirectional, embedding")
    cells = tmp_path / "cells.json"
    cells.write_text(json.dumps({"cell": {"choices": ["lstm", "lsmt"]}}))
    one_line([*args, "--space", str(cells), "--out", str(tmp_path / "b")],
             "--space: cell = 'lsmt' cannot make a run: --cell: expected one of lstm, gru")
    one_line([*args, "--units", "0", "--out", str(tmp_path / "c")], "--units: expected a positive integer, got 0")
    one_line(["tune", "classify", "--data", str(reviews_csv), "--text", "body", "--label", "sentiment", "--out",
              str(tmp_path / "d")], "--text: no column 'body'")
    one_line(["tune", "--seq-len", "5", "classify", "--data", str(reviews_csv)],
             "--seq-len: an option of lstmlab tune (train), not of lstmlab tune classify")
    one_line([*args, "--trials", "0"], "--trials: expected a positive integer, got 0")
    assert not (tmp_path / "a" / "trials").exists()  # nothing ran
