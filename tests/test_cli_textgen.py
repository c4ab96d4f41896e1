"""End-to-end runs of ``lstmlab train`` / ``lstmlab generate`` on tiny corpora (seconds each)."""
import io
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from lstmlab.apps.textgen import ModelConfig, TextTrainer, TrainConfig, Vocabulary, load_checkpoint
from lstmlab.apps.textgen.trainer import Diverged, checkpoint_step
from lstmlab.io import load_file

WORDS = "the cat sat on a mat and then it ran far away from home while dogs barked at night".split()
SMALL = ["--units", "16", "--embedding", "8", "--batch-size", "4", "--seq-len", "10", "--sample-length", "40"]


def run_cli(*args, cwd=None, timeout=180):
    return subprocess.run([sys.executable, "-m", "lstmlab", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=timeout)


@pytest.fixture
def corpus(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "tiny.txt"
    path.write_text(" ".join(rng.choice(WORDS, 700)), encoding="utf-8")
    return path


def weights(path):
    tensors, _ = load_file(path)
    return {k: v for k, v in tensors.items() if k.startswith(("weights/", "optimizer/", "states/"))}


def assert_same_weights(a, b):
    wa, wb = weights(a), weights(b)
    assert sorted(wa) == sorted(wb)
    for k in wa:
        assert wa[k].dtype == wb[k].dtype and np.array_equal(wa[k], wb[k]), k


def test_train_then_generate(corpus, tmp_path):
    run = tmp_path / "run"
    r = run_cli("train", "--corpus", str(corpus), "--out", str(run), "--epochs", "2", *SMALL)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "vocabulary of" in out and "held out" in out
    assert "val loss" in out and "bits/char" in out
    for t in ("0.2", "0.5", "1.0", "1.2"):
        assert f"--- sample at temperature {t} ---" in out
    assert sorted(os.listdir(run)) == ["best.safetensors", "checkpoint.safetensors", "curves.png", "log.csv"]
    assert (run / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    log = (run / "log.csv").read_text().splitlines()
    assert log[0] == "step,epoch,train_loss,val_loss,val_bpc,learning_rate,chars_per_sec,elapsed_s"
    assert len(log) == 3
    first, last = (float(line.split(",")[3]) for line in (log[1], log[2]))
    assert last < first  # validation loss falls

    g = run_cli("generate", str(run), "--prime", "the ", "--length", "50", "--seed", "3", "--temperature", "0.7")
    assert g.returncode == 0, g.stderr
    text = g.stdout.rstrip("\n")
    assert text.startswith("the ") and len(text) == 54
    assert set(text) <= set(" ".join(WORDS))
    again = run_cli("generate", str(run), "--prime", "the ", "--length", "50", "--seed", "3", "--temperature", "0.7")
    assert again.stdout == g.stdout  # seeded sampling is reproducible
    top1 = run_cli("generate", str(run), "--length", "30", "--top-k", "1", "--seed", "1")
    top1b = run_cli("generate", str(run), "--length", "30", "--top-k", "1", "--seed", "2")
    assert top1.returncode == 0 and top1.stdout == top1b.stdout  # top-1 is greedy whatever the seed


def test_resume_equals_uninterrupted(corpus, tmp_path):
    common = ["--corpus", str(corpus), *SMALL, "--dropout", "0.1", "--eval-every", "30", "--no-samples"]
    assert run_cli("train", *common, "--out", str(tmp_path / "a"), "--epochs", "3").returncode == 0
    assert run_cli("train", *common, "--out", str(tmp_path / "b"), "--epochs", "1").returncode == 0
    r = run_cli("train", "--resume", "--out", str(tmp_path / "b"), "--epochs", "3", "--no-samples")
    assert r.returncode == 0, r.stderr
    assert "resuming" in r.stdout
    assert_same_weights(tmp_path / "a" / "checkpoint.safetensors", tmp_path / "b" / "checkpoint.safetensors")
    assert (tmp_path / "a" / "log.csv").read_text().count("\n") == (tmp_path / "b" / "log.csv").read_text().count("\n")


def train_then_signal(args, sig, delay):
    """Start 'lstmlab train', send ``sig`` ``delay`` seconds into the first epoch; ``(exit code, out, err)``."""
    proc = subprocess.Popen([sys.executable, "-m", "lstmlab", "train", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    for line in proc.stdout:
        if line.startswith("epoch 1/"):
            break
    time.sleep(delay)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    return proc.returncode, out, err


def test_sigint_saves_a_loadable_checkpoint_and_resume_matches(corpus, tmp_path):
    text = corpus.read_text() * 6
    big = tmp_path / "big.txt"
    big.write_text(text)
    common = ["--corpus", str(big), "--units", "64", "--embedding", "8", "--batch-size", "4", "--seq-len", "20",
              "--no-samples", "--epochs", "4"]
    code, out, err = train_then_signal([*common, "--out", str(tmp_path / "s")], signal.SIGINT, 0.5)
    assert code == 130, err
    assert "stopped at step" in out and "checkpoint saved" in out and "Traceback" not in err
    model, vocab, mcfg, tcfg, progress, _ = load_checkpoint(tmp_path / "s" / "checkpoint.safetensors")
    assert 0 < progress.global_step
    r = run_cli("train", "--resume", "--out", str(tmp_path / "s"), "--no-samples")
    assert r.returncode == 0, r.stderr
    assert run_cli("train", *common, "--out", str(tmp_path / "u")).returncode == 0
    assert_same_weights(tmp_path / "s" / "checkpoint.safetensors", tmp_path / "u" / "checkpoint.safetensors")


def test_sigterm_saves_too(corpus, tmp_path):
    big = tmp_path / "big.txt"
    big.write_text(corpus.read_text() * 6)
    code, out, err = train_then_signal(["--corpus", str(big), "--units", "64", "--batch-size", "4", "--seq-len", "20",
                                        "--no-samples", "--out", str(tmp_path / "t")], signal.SIGTERM, 0.3)
    assert code == 143, err
    load_checkpoint(tmp_path / "t" / "checkpoint.safetensors")


def test_chinese_corpus_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    phrases = ["天下大势", "分久必合", "合久必分", "话说", "周末七国分争", "并入于秦", "及秦灭之后", "楚汉分争"]
    path = tmp_path / "novel.txt"
    path.write_text("，".join(rng.choice(phrases, 400)) + "。", encoding="utf-8")
    run = tmp_path / "zh"
    r = run_cli("train", "--corpus", str(path), "--out", str(run), "--epochs", "1", *SMALL)
    assert r.returncode == 0, r.stderr
    _, vocab, *_ = load_checkpoint(run / "checkpoint.safetensors")
    assert "天" in vocab.chars and len(vocab) == len(set(path.read_text(encoding="utf-8")))
    g = run_cli("generate", str(run), "--prime", "天下", "--length", "20", "--seed", "0")
    assert g.returncode == 0, g.stderr
    assert g.stdout.startswith("天下") and set(g.stdout.strip()) <= set(vocab.chars)


# -- bad input: one line on stderr, exit 2, nothing overwritten ---------------------------------------------
def bad(*args, cwd=None):
    r = run_cli(*args, cwd=cwd)
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lstmlab: error: "), r.stderr
    return lines[0]


def test_bad_corpora(tmp_path):
    assert "--corpus: no such file" in bad("train", "--corpus", str(tmp_path / "missing.txt"), "--out", str(tmp_path / "o"))
    (tmp_path / "empty.txt").write_bytes(b"")
    assert "is empty; expected UTF-8 text" in bad("train", "--corpus", str(tmp_path / "empty.txt"), "--out", str(tmp_path / "o"))
    (tmp_path / "bin.dat").write_bytes(b"abc\x00\x01\x02" * 100)
    assert "looks binary (NUL byte at offset 3)" in bad("train", "--corpus", str(tmp_path / "bin.dat"), "--out", str(tmp_path / "o"))
    (tmp_path / "latin1.txt").write_bytes("café olé".encode("latin-1") * 100)
    assert "is not valid UTF-8 (byte 0xe9 at offset 3)" in bad("train", "--corpus", str(tmp_path / "latin1.txt"), "--out", str(tmp_path / "o"))
    (tmp_path / "short.txt").write_text("too short for a batch")
    msg = bad("train", "--corpus", str(tmp_path / "short.txt"), "--out", str(tmp_path / "o"))
    assert "too short for one batch of 64 sequences of 100 characters" in msg
    assert not (tmp_path / "o").exists()


def test_bad_sampling_arguments(corpus, tmp_path):
    run = tmp_path / "run"
    assert run_cli("train", "--corpus", str(corpus), "--out", str(run), "--epochs", "1", "--no-samples", *SMALL).returncode == 0
    assert "--prime: character 'Q' (U+0051) is not in the model's vocabulary" in bad("generate", str(run), "--prime", "Qat")
    assert "--temperature: expected a number > 0, got 0.0" in bad("generate", str(run), "--temperature", "0")
    assert "--temperature: expected a number > 0, got -1.0" in bad("generate", str(run), "--temperature", "-1")
    assert "--length: expected a positive integer, got 0" in bad("generate", str(run), "--length", "0")
    assert "RUN_DIR: no run directory or checkpoint at" in bad("generate", str(tmp_path / "nope"))


def test_corrupted_and_truncated_checkpoints(corpus, tmp_path):
    run = tmp_path / "run"
    assert run_cli("train", "--corpus", str(corpus), "--out", str(run), "--epochs", "1", "--no-samples", *SMALL).returncode == 0
    data = (run / "best.safetensors").read_bytes()
    (tmp_path / "trunc.safetensors").write_bytes(data[: len(data) - 100])
    assert "checkpoint:" in bad("generate", str(tmp_path / "trunc.safetensors"))
    corrupt = bytearray(data)
    corrupt[10:30] = b"\xff" * 20
    (tmp_path / "corrupt.safetensors").write_bytes(bytes(corrupt))
    assert "corrupted header" in bad("generate", str(tmp_path / "corrupt.safetensors"))
    (run / "checkpoint.safetensors").write_bytes(data[:5])
    assert "not a safetensors file (only 5 bytes)" in bad("train", "--resume", "--out", str(run))


def test_existing_run_is_not_overwritten(corpus, tmp_path):
    run = tmp_path / "run"
    assert run_cli("train", "--corpus", str(corpus), "--out", str(run), "--epochs", "1", "--no-samples", *SMALL).returncode == 0
    before = {p: (run / p).read_bytes() for p in os.listdir(run)}
    msg = bad("train", "--corpus", str(corpus), "--out", str(run), *SMALL)
    assert "already holds a run; use --resume to continue it or --force to overwrite it" in msg
    assert {p: (run / p).read_bytes() for p in os.listdir(run)} == before
    assert run_cli("train", "--corpus", str(corpus), "--out", str(run), "--epochs", "1", "--no-samples", "--force",
                   *SMALL, "--seed", "5").returncode == 0
    assert (run / "checkpoint.safetensors").read_bytes() != before["checkpoint.safetensors"]
    assert "--resume: " in bad("train", "--resume", "--out", str(tmp_path / "empty-dir"))


def test_bad_options():
    assert "--batch-size: expected a positive integer, got 0" in bad("train", "--batch-size", "0")
    assert "--lr: expected a number > 0, got -0.1" in bad("train", "--lr", "-0.1")
    assert "--cell: expected one of lstm, gru, rnn, peephole_lstm, layer_norm_lstm, got 'transformer'" in bad("train", "--cell", "transformer")
    assert "unrecognized arguments: --bogus" in bad("train", "--bogus")


def test_divergence_keeps_the_last_good_checkpoint(corpus, tmp_path):
    text = corpus.read_text()
    vocab = Vocabulary.from_text(text)
    tcfg = TrainConfig(seq_len=10, batch_size=4, epochs=3, eval_every=20, corpus=str(corpus))
    trainer = TextTrainer(str(tmp_path / "d"), text, vocab, ModelConfig(len(vocab), units=16, embedding=8), tcfg,
                          out=io.StringIO())
    original = trainer._validate

    def validate_then_sabotage(*args, **kwargs):
        original(*args, **kwargs)
        trainer.model.optimizer.learning_rate = 1e9  # the next steps explode

    trainer._validate = validate_then_sabotage
    with pytest.raises(Diverged, match=r"training diverged at step \d+ \((loss|non-finite)"):
        trainer.train(samples=False)
    model, _, _, _, progress, _ = load_checkpoint(tmp_path / "d" / "checkpoint.safetensors")
    assert progress.global_step == 20
    assert all(np.all(np.isfinite(w)) for w in model.get_weights())


def test_without_matplotlib_the_png_is_skipped_with_a_note(tmp_path, monkeypatch):
    from lstmlab.apps.runs import logs
    from lstmlab.apps.textgen import trainer as T

    monkeypatch.setattr(logs, "pyplot", lambda: None)  # the shared run code draws every application's curves
    note = T.plot_curves(str(tmp_path / "curves.png"), [{"step": 1, "train_loss": 2.0, "val_loss": 2.0}])
    assert note == "note: matplotlib is not installed, so curves.png was skipped (pip install 'lstmlab[plot]')"
    assert not (tmp_path / "curves.png").exists()


# -- SIGKILL in the middle of a write, then --resume ----------------------------------------------------------
# Nothing is lost and the result is bit-identical (the SIGINT test above stops between writes).
# The child runs the real CLI with one test-only change: ``os.fsync`` is wrapped so that, on the n-th atomic write
# of the chosen file, it announces itself and sleeps. At that moment the temporary ``.tmp-*<name>`` is fully
# written but not yet renamed over the old file, which is the moment a kill does the most damage. The parent
# kills the child there with SIGKILL, checks what is on disk, resumes with the ordinary CLI and compares every
# weight, optimizer slot and carried state with an uninterrupted run.
KILL_ARGS = ["--units", "16", "--embedding", "8", "--batch-size", "4", "--seq-len", "10", "--dropout", "0.1",
             "--eval-every", "30", "--epochs", "3", "--no-samples"]

SLOW_WRITE = """
import os, sys, time
target, nth = sys.argv[1], int(sys.argv[2])
real_fsync, seen = os.fsync, [0]
def fsync(fd):
    name = os.readlink(f"/proc/self/fd/{fd}")
    if os.path.basename(name).startswith(".tmp-") and name.endswith(target):
        seen[0] += 1
        if seen[0] == nth:
            sys.stderr.write(f"IN-WRITE {name}\\n")
            sys.stderr.flush()
            time.sleep(120)
    real_fsync(fd)
os.fsync = fsync
from lstmlab.cli import main
sys.exit(main(sys.argv[3:]))
"""


@pytest.fixture(scope="module")
def kill_reference(tmp_path_factory):
    root = tmp_path_factory.mktemp("kill")
    corpus = root / "tiny.txt"
    corpus.write_text(" ".join(np.random.default_rng(0).choice(WORDS, 700)), encoding="utf-8")
    reference = root / "uninterrupted"
    r = run_cli("train", "--corpus", str(corpus), "--out", str(reference), *KILL_ARGS)
    assert r.returncode == 0, r.stderr
    return corpus, reference


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")
@pytest.mark.parametrize("target, nth", [("checkpoint.safetensors", 2), ("checkpoint.safetensors", 4),
                                         ("best.safetensors", 2), ("best.safetensors", "last"), ("log.csv", 3)])
def test_sigkill_during_a_write_then_resume_is_bit_identical(kill_reference, tmp_path, target, nth):
    corpus, reference = kill_reference
    if nth == "last":  # the final best write: no later validation would rewrite best.safetensors on its own
        losses = [float(row.split(",")[3]) for row in (reference / "log.csv").read_text().splitlines()[1:]]
        nth = sum(loss < min(losses[:k], default=float("inf")) for k, loss in enumerate(losses))
    run = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-c", SLOW_WRITE, target, str(nth), "train", "--corpus", str(corpus),
                             "--out", str(run), *KILL_ARGS], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
        assert line.startswith("IN-WRITE "), line + proc.stderr.read()
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    temps = [name for name in os.listdir(run) if name.startswith(".tmp-")]
    assert temps and all(name.endswith(target) for name in temps)  # the kill landed mid-write
    on_disk = checkpoint_step(run / "checkpoint.safetensors")
    validated = [int(row.split(",")[0]) for row in (reference / "log.csv").read_text().splitlines()[1:]]
    assert on_disk in validated  # the old checkpoint is whole and loadable, at a validation step

    r = run_cli("train", "--resume", "--out", str(run), "--no-samples")
    assert r.returncode == 0, r.stderr
    assert f"resuming {run} at step {on_disk}" in r.stdout
    assert "removed 1 stale temporary file(s) of an interrupted write" in r.stdout
    assert not [name for name in os.listdir(run) if name.startswith(".tmp-")]
    assert_same_weights(reference / "checkpoint.safetensors", run / "checkpoint.safetensors")
    assert_same_weights(reference / "best.safetensors", run / "best.safetensors")
    assert checkpoint_step(run / "best.safetensors") == checkpoint_step(reference / "best.safetensors")
    ref_log = [row.split(",")[:5] for row in (reference / "log.csv").read_text().splitlines()]
    log = [row.split(",")[:5] for row in (run / "log.csv").read_text().splitlines()]
    assert log == ref_log  # step, epoch and the losses of every validation (timings differ)


@pytest.mark.parametrize("cell", ["gru", "rnn", "peephole_lstm", "layer_norm_lstm"])
def test_train_and_generate_with_every_cell(corpus, tmp_path, cell):
    """`lstmlab train --cell` accepts every registered cell kind, and `generate` samples from the run."""
    run = tmp_path / cell
    r = run_cli("train", "--corpus", str(corpus), "--out", str(run), "--epochs", "1", "--cell", cell,
                "--no-samples", *SMALL)
    assert r.returncode == 0, r.stderr
    assert f"x {cell.upper()}(16)" in r.stdout and "val loss" in r.stdout
    g = run_cli("generate", str(run), "--prime", "the ", "--length", "30", "--seed", "1")
    assert g.returncode == 0, g.stderr
    assert g.stdout.startswith("the ") and set(g.stdout.rstrip("\n")) <= set(" ".join(WORDS))


def test_step_budget_and_resume_with_a_larger_one(corpus, tmp_path):
    run = tmp_path / "steps"
    r = run_cli("train", "--corpus", str(corpus), "--out", str(run), "--steps", "7", "--no-samples", *SMALL)
    assert r.returncode == 0, r.stderr
    assert "step budget of 7 reached" in r.stdout and "done: 7 steps" in r.stdout
    again = run_cli("train", "--resume", "--out", str(run), "--steps", "12", "--no-samples")
    assert again.returncode == 0, again.stderr
    assert "changed on resume: --steps 7 -> 12" in again.stdout and "done: 12 steps" in again.stdout
    assert "--steps: expected a positive integer, got 0" in bad("train", "--corpus", str(corpus), "--out",
                                                                 str(tmp_path / "zero"), "--steps", "0")
