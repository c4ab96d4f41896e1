"""Issue 13, items 6 and 7: what ``--resume`` may change, and CLI inputs that used to hang, crash or lie.

Every bad input must give one line on stderr, exit status 2, and leave files as they were.
"""
import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import lstmlab
from lstmlab.apps.textgen import read_corpus
from lstmlab.apps.textgen.trainer import checkpoint_step
from lstmlab.io import load_file

WORDS = "the cat sat on a mat and then it ran far away from home while dogs barked at night".split()
SMALL = ["--units", "16", "--embedding", "8", "--batch-size", "4", "--seq-len", "10", "--no-samples"]
SRC = os.path.dirname(os.path.dirname(os.path.abspath(lstmlab.__file__)))


def run_cli(*args, cwd=None, timeout=120):
    return subprocess.run([sys.executable, "-m", "lstmlab", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=timeout)


def bad(*args, cwd=None, timeout=60):
    r = run_cli(*args, cwd=cwd, timeout=timeout)
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lstmlab: error: "), r.stderr
    return lines[0]


def snapshot(folder):
    return {p: (folder / p).read_bytes() for p in sorted(os.listdir(folder))}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "tiny.txt"
    path.write_text(" ".join(np.random.default_rng(0).choice(WORDS, 700)), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def trained(corpus, tmp_path_factory):
    """One epoch, dropout 0.1, validation every 30 steps: the checkpoint is at an epoch boundary."""
    run = tmp_path_factory.mktemp("runs") / "run"
    r = run_cli("train", "--corpus", str(corpus), "--out", str(run), "--epochs", "1", "--eval-every", "30",
                "--dropout", "0.1", *SMALL)
    assert r.returncode == 0, r.stderr
    return run


def meta(path):
    _, m = load_file(path)
    return json.loads(m["extra"]), json.loads(m["compile"]) if "compile" in m else None, json.loads(m["config"])


# -- item 6: --resume -------------------------------------------------------------------------------------------
def test_resume_applies_and_reports_the_options_that_may_change(trained, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained, run)
    r = run_cli("train", "--resume", "--out", str(run), "--lr", "0.001", "--clip", "1", "--epochs", "2",
                "--eval-every", "50", "--dropout", "0.05", "--seq-len", "12", "--minutes", "5", "--units", "16",
                "--no-samples")
    assert r.returncode == 0, r.stderr
    changed = [line for line in r.stdout.splitlines() if line.startswith("changed on resume:")]
    assert changed == ["changed on resume: --lr 0.002 -> 0.001, --clip 5 -> 1, --epochs 1 -> 2, --minutes off -> 5, "
                       "--eval-every 30 -> 50, --seq-len 10 -> 12, --dropout 0.1 -> 0.05"]  # --units 16 is no change
    extra, compiled, config = meta(run / "checkpoint.safetensors")
    t = extra["train_config"]
    assert (t["learning_rate"], t["clipnorm"], t["epochs"], t["eval_every"], t["seq_len"], t["minutes"]) == \
        (0.001, 1, 2, 50, 12, 5)
    assert extra["model_config"]["dropout"] == 0.05
    opt = compiled["optimizer"]["config"]
    assert (opt["learning_rate"], opt["clipnorm"]) == (0.001, 1)  # the optimizer's own stored rate changed too
    rates = [layer["config"]["rate"] for layer in config["layers"] if layer["class_name"] == "Dropout"]
    assert rates and all(rate == 0.05 for rate in rates)
    rows = (run / "log.csv").read_text().splitlines()[1:]
    assert {float(row.split(",")[5]) for row in rows[-2:]} == {0.001}  # the new rows were trained at 1e-3
    assert extra["progress"]["epoch"] == 2


def test_resume_refuses_what_cannot_change_and_overwrites_nothing(trained, corpus, tmp_path):
    before = snapshot(trained)
    refusals = {
        ("--units", "32"): "--units: cannot change on --resume (16 -> 32): the checkpoint's weights have the shapes "
                           "of 2 x LSTM(16) with embedding 8",
        ("--layers", "3"): "--layers: cannot change on --resume (2 -> 3)",
        ("--embedding", "4"): "--embedding: cannot change on --resume (8 -> 4)",
        ("--cell", "gru"): "--cell: cannot change on --resume (lstm -> gru)",
        ("--batch-size", "8"): "--batch-size: cannot change on --resume (4 -> 8): the model is built for 4 parallel "
                               "streams of the text and the checkpoint carries their states",
        ("--optimizer", "sgd"): "--optimizer: cannot change on --resume (adam -> sgd)",
        ("--seed", "1"): "--seed: cannot change on --resume (0 -> 1)",
        ("--val-fraction", "0.2"): "--val-fraction: cannot change on --resume (0.1 -> 0.2)",
        ("--epochs", "0"): "--epochs: the run has already completed 1 epochs; expected more than 1, got 0",
        ("--lr", "-1"): "--lr: expected a number > 0, got -1.0",
    }
    for args, message in refusals.items():
        assert message in bad("train", "--resume", "--out", str(trained), *args), args
    other = tmp_path / "other.txt"
    other.write_text(corpus.read_text() + " more")
    assert "is not the text this run was trained on" in bad("train", "--resume", "--out", str(trained), "--corpus",
                                                            str(other))
    assert snapshot(trained) == before


def test_resume_refuses_seq_len_mid_epoch_fewer_epochs_and_new_dropout(corpus, tmp_path):
    run = tmp_path / "mid"
    # a tiny --minutes budget stops (and checkpoints) after the first steps, in the middle of epoch 1
    r = run_cli("train", "--corpus", str(corpus), "--out", str(run), "--minutes", "0.0001", "--epochs", "2",
                "--dropout", "0", *SMALL)
    assert r.returncode == 0 and "time budget" in r.stdout, r.stderr
    before = snapshot(run)
    msg = bad("train", "--resume", "--out", str(run), "--seq-len", "12")
    assert re.search(r"--seq-len: cannot change on --resume in the middle of an epoch \(10 -> 12\): the checkpoint "
                     r"is \d+ windows of 10 characters into its epoch", msg), msg
    assert "--dropout: cannot change on --resume (0 -> 0.2): the run was built without dropout layers" in \
        bad("train", "--resume", "--out", str(run), "--dropout", "0.2")
    assert snapshot(run) == before
    done = tmp_path / "done"
    assert run_cli("train", "--corpus", str(corpus), "--out", str(done), "--epochs", "2", *SMALL).returncode == 0
    assert "--epochs: the run has already completed 2 epochs; expected more than 2, got 1" in \
        bad("train", "--resume", "--out", str(done), "--epochs", "1")


DIVERGE = """
import sys
from lstmlab.apps.textgen import trainer as T
original = T.TextTrainer._validate
def validate_then_sabotage(self, *args, **kwargs):
    original(self, *args, **kwargs)
    self.model.optimizer.learning_rate = 1e9  # the next steps explode before the next checkpoint
T.TextTrainer._validate = validate_then_sabotage
from lstmlab.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_divergence_names_the_step_on_disk_and_a_lower_lr_rescues_it(corpus, tmp_path):
    run = tmp_path / "d"
    r = subprocess.run([sys.executable, "-c", DIVERGE, "train", "--corpus", str(corpus), "--out", str(run),
                        "--eval-every", "20", "--epochs", "3", *SMALL], capture_output=True, text=True, timeout=120)
    assert r.returncode == 1, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "training diverged at step" in lines[0], r.stderr
    assert checkpoint_step(run / "checkpoint.safetensors") == 20
    assert "the last good checkpoint (step 20) in" in lines[0]  # not the step training had reached
    assert f"lstmlab train --resume --out {run} --lr 0.0002" in lines[0]
    rescued = run_cli("train", "--resume", "--out", str(run), "--lr", "0.0002", "--no-samples")
    assert rescued.returncode == 0, rescued.stderr
    assert "changed on resume: --lr 0.002 -> 0.0002" in rescued.stdout


# -- item 7: CLI edge cases -------------------------------------------------------------------------------------
def test_corpus_must_be_a_regular_file_within_the_size_limit(tmp_path):
    out = tmp_path / "o"
    assert "--corpus: '/dev/zero' is a character device; expected a regular file" in \
        bad("train", "--corpus", "/dev/zero", "--out", str(out), timeout=30)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert f"--corpus: '{fifo}' is a FIFO (named pipe); expected a regular file" in \
        bad("train", "--corpus", str(fifo), "--out", str(out), timeout=30)  # used to block forever
    huge = tmp_path / "huge.txt"
    with open(huge, "wb") as f:  # sparse: no disk space used
        f.truncate((1 << 30) + 1)
    assert "is 1,073,741,825 bytes, larger than the 1 GiB limit" in bad("train", "--corpus", str(huge), "--out",
                                                                        str(out), timeout=30)
    assert not out.exists()
    small = tmp_path / "small.txt"
    small.write_text("x" * 200)
    with pytest.raises(ValueError, match="larger than the 100 bytes limit"):
        read_corpus(small, max_bytes=100)
    assert read_corpus(small, max_bytes=200) == "x" * 200


def test_empty_paths_are_refused_not_replaced_by_defaults(tmp_path):
    assert "--corpus: expected a path, got ''" in bad("train", "--corpus", "", cwd=tmp_path)
    assert "--out: expected a path, got ''" in bad("train", "--out", "", cwd=tmp_path)
    assert "--out: expected a path, got ''" in bad("experiment", "adding", "--out", "", cwd=tmp_path)
    assert "--sweep: expected positive integers, got ''" in bad("experiment", "adding", "--sweep", "", cwd=tmp_path)
    assert os.listdir(tmp_path) == []  # no runs/ directory was made


@pytest.mark.parametrize("args, message", [
    (("--units", "10000000"), "--units: 10000000 is too large: training 2 x LSTM(10000000)"),
    (("--embedding", "1000000000"), "--embedding: 1000000000 is too large"),
    (("--layers", "1000000000"), "--layers: 1000000000 is too large: training 1000000000 x LSTM"),
    (("--batch-size", "1000000000", "--seq-len", "1000"), "--batch-size: 1000000000 is too large"),
])
def test_huge_train_shapes_are_refused_before_allocating(corpus, tmp_path, args, message):
    start = time.monotonic()
    msg = bad("train", "--corpus", str(corpus), "--out", str(tmp_path / "o"), *args, timeout=60)
    assert message in msg and "of memory, more than 50% of this machine's" in msg, msg
    assert time.monotonic() - start < 30 and not (tmp_path / "o").exists()


@pytest.mark.parametrize("args, message", [
    (("--length", "1000000000"), "--length: 1000000000 is too large: a LSTM(64) run on adding with T = 1000000000"),
    (("--units", "10000000"), "--units: 10000000 is too large"),
    (("--test-size", "1000000000000"), "--test-size: 1000000000000 is too large"),
    (("--batch-size", "1000000000000"), "--batch-size: 1000000000000 is too large"),
])
def test_huge_experiment_shapes_are_refused_before_allocating(tmp_path, args, message):
    msg = bad("experiment", "adding", "--out", str(tmp_path / "e"), *args, timeout=60)
    assert message in msg and "of memory" in msg, msg
    assert not (tmp_path / "e").exists()


def test_sample_length_is_checked_before_training(corpus, tmp_path):
    for value in ("0", "-1"):
        start = time.monotonic()
        msg = bad("train", "--corpus", str(corpus), "--out", str(tmp_path / "o"), *SMALL, "--sample-length", value)
        assert f"--sample-length: expected a positive integer, got {value}" in msg
        assert time.monotonic() - start < 30 and not (tmp_path / "o").exists()


def test_tiny_temperatures_are_refused_and_the_floor_works(trained):
    assert "--temperature: expected a number >= 1e-06 (smaller ones overflow; use --top-k 1 for greedy sampling), " \
           "got 1e-320" in bad("generate", str(trained), "--temperature", "1e-320")
    r = run_cli("generate", str(trained), "--temperature", "1e-6", "--length", "30", "--seed", "0")
    greedy = run_cli("generate", str(trained), "--top-k", "1", "--length", "30", "--seed", "1")
    assert r.returncode == 0 and "Warning" not in r.stderr, r.stderr
    assert r.stdout == greedy.stdout  # at the floor, sampling is already greedy


def test_experiment_out_is_checked_before_running(tmp_path):
    tiny = ["experiment", "adding", "--length", "12", "--cells", "gru", "--seeds", "1", "--steps", "2",
            "--eval-every", "1", "--test-size", "8", "--units", "4"]
    a_file = tmp_path / "results.txt"
    a_file.write_text("precious")
    start = time.monotonic()
    assert f"--out: '{a_file}' is a file; expected a directory" in bad(*tiny, "--out", str(a_file))
    assert a_file.read_text() == "precious" and time.monotonic() - start < 30
    out = tmp_path / "exp"
    assert run_cli(*tiny, "--out", str(out)).returncode == 0
    before = snapshot(out)
    assert "already holds results (results.md, results.json, curves.png); use --force to overwrite them" in \
        bad(*tiny, "--out", str(out))
    assert snapshot(out) == before
    r = run_cli(*tiny, "--out", str(out), "--force", "--units", "5")
    assert r.returncode == 0, r.stderr
    assert json.loads((out / "results.json").read_text())["config"]["units"] == 5


def test_stale_temporaries_are_removed_by_force_and_others_are_kept(trained, corpus, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained, run)
    (run / ".tmp-k3j4checkpoint.safetensors").write_bytes(b"half a checkpoint")
    (run / ".tmp-zzzzlog.csv").write_bytes(b"step,")
    (run / ".tmp-mine.txt").write_text("not ours")
    (run / "notes.txt").write_text("mine")
    r = run_cli("train", "--corpus", str(corpus), "--out", str(run), "--epochs", "1", "--force", *SMALL)
    assert r.returncode == 0, r.stderr
    assert sorted(os.listdir(run)) == [".tmp-mine.txt", "best.safetensors", "checkpoint.safetensors", "curves.png",
                                       "log.csv", "notes.txt"]


CTRL_C = """
import sys
sys.path.insert(0, {src!r})
import _lstmlab_entry  # the console script's module: 'lstmlab = "_lstmlab_entry:main"'
print("up", flush=True)
sys.argv = ["lstmlab", *{args!r}]
sys.exit(_lstmlab_entry.main())
"""


@pytest.mark.parametrize("delay", [0.002, 0.03, 0.08, 0.15, 0.25, 0.4])
def test_ctrl_c_during_import_is_one_line(corpus, tmp_path, delay):
    # epochs enough that training is still running at the longest delay: 50 (3,500 steps of this tiny model)
    # once finished in under 0.4 s on a quiet machine, and the run then exited 0 before the signal came
    args = ["train", "--corpus", str(corpus), "--out", str(tmp_path / "o"), *SMALL, "--epochs", "20000"]
    proc = subprocess.Popen([sys.executable, "-c", CTRL_C.format(src=SRC, args=args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "up\n"
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert "Traceback" not in err and proc.returncode == 130, (delay, out, err)
    assert err.strip() == "lstmlab: error: interrupted" or "stopped at step" in out, (delay, out, err)
