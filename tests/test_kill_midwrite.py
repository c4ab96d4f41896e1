"""SIGKILL in the middle of a checkpoint write, then --resume: nothing is lost and the result is bit-identical.

The child runs the real CLI with one test-only change: ``os.fsync`` is wrapped so that, on the n-th atomic write
of the chosen file, it announces itself and sleeps. At that moment the temporary ``.tmp-*<name>`` is fully
written but not yet renamed over the old file, which is the moment a kill does the most damage. The parent
kills the child there with SIGKILL, checks what is on disk, resumes with the ordinary CLI and compares every
weight, optimizer slot and carried state with an uninterrupted run.
"""
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from lstmlab.apps.textgen.trainer import checkpoint_step
from lstmlab.io import load_file

WORDS = "the cat sat on a mat and then it ran far away from home while dogs barked at night".split()
COMMON = ["--units", "16", "--embedding", "8", "--batch-size", "4", "--seq-len", "10", "--dropout", "0.1",
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

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "lstmlab", *args], capture_output=True, text=True, timeout=180)


def state(path):
    tensors, _ = load_file(path)
    return {k: v for k, v in tensors.items() if k.startswith(("weights/", "optimizer/", "states/"))}


def assert_bit_identical(a, b):
    wa, wb = state(a), state(b)
    assert sorted(wa) == sorted(wb)
    for k in wa:
        assert wa[k].dtype == wb[k].dtype and np.array_equal(wa[k], wb[k]), k


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("kill")
    corpus = root / "tiny.txt"
    corpus.write_text(" ".join(np.random.default_rng(0).choice(WORDS, 700)), encoding="utf-8")
    reference = root / "uninterrupted"
    r = run_cli("train", "--corpus", str(corpus), "--out", str(reference), *COMMON)
    assert r.returncode == 0, r.stderr
    return corpus, reference


@pytest.mark.parametrize("target, nth", [("checkpoint.safetensors", 2), ("checkpoint.safetensors", 4),
                                         ("best.safetensors", 2), ("best.safetensors", "last"), ("log.csv", 3)])
def test_sigkill_during_a_write_then_resume_is_bit_identical(setup, tmp_path, target, nth):
    corpus, reference = setup
    if nth == "last":  # the final best write: no later validation would rewrite best.safetensors on its own
        losses = [float(row.split(",")[3]) for row in (reference / "log.csv").read_text().splitlines()[1:]]
        nth = sum(loss < min(losses[:k], default=float("inf")) for k, loss in enumerate(losses))
    run = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-c", SLOW_WRITE, target, str(nth), "train", "--corpus", str(corpus),
                             "--out", str(run), *COMMON], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
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
    assert_bit_identical(reference / "checkpoint.safetensors", run / "checkpoint.safetensors")
    assert_bit_identical(reference / "best.safetensors", run / "best.safetensors")
    assert checkpoint_step(run / "best.safetensors") == checkpoint_step(reference / "best.safetensors")
    ref_log = [row.split(",")[:5] for row in (reference / "log.csv").read_text().splitlines()]
    log = [row.split(",")[:5] for row in (run / "log.csv").read_text().splitlines()]
    assert log == ref_log  # step, epoch and the losses of every validation (timings differ)
