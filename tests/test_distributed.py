"""Data-parallel training under a real ``mpirun -n 2`` on localhost (Open MPI or MPICH, mpi4py).

Two ranks, each holding half of every global batch of 64, must reach the weights one process reaches with
batches of 64: the gradients are averaged by one all-reduce weighted by the ranks' sample counts, so the
only difference is the order of floating-point sums.
"""
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from lstmlab.apps.textgen import load_checkpoint
from lstmlab.distributed import GradientReducer, World, shard_bounds
from lstmlab.io import load_file

HERE = Path(__file__).parent


def _mpi_missing():
    if shutil.which("mpirun") is None:
        return "mpirun is not installed (Debian: apt-get install openmpi-bin libopenmpi-dev)"
    if importlib.util.find_spec("mpi4py") is None:
        return "mpi4py is not installed (pip install 'lstmlab[mpi]')"
    return None


needs_mpi = pytest.mark.skipif(_mpi_missing() is not None, reason=str(_mpi_missing()))
# Open MPI refuses root unless told twice; --oversubscribe lets 2 ranks share fewer cores.
ENV = {**os.environ, "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1", "OMP_NUM_THREADS": "1",
       "LSTMLAB_THREADS": "1"}
for name in [k for k in ENV if k.startswith(("OMPI_COMM_WORLD", "PMI_", "PMIX_"))]:
    del ENV[name]  # a test run started by mpirun itself must not make the single-process runs think so


def mpirun(n, *argv, timeout=240):
    cmd = ["mpirun", "-n", str(n), "--oversubscribe", *argv]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=ENV)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def single(*argv, timeout=240):
    proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, env=ENV)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


# -- the pieces, in one process ------------------------------------------------------------------------
def test_shards_cover_the_batch_contiguously():
    for n in (1, 5, 64, 65):
        for size in (1, 2, 3, 7):
            bounds = [shard_bounds(n, size, r) for r in range(size)]
            assert bounds[0][0] == 0 and bounds[-1][1] == n
            assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
            assert max(hi - lo for lo, hi in bounds) - min(hi - lo for lo, hi in bounds) <= 1


def test_a_world_of_one_returns_the_gradients_untouched():
    grads = [np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)]
    loss, out, flags = GradientReducer(World(None)).allreduce(1.25, grads, 17, flags=(True, False))
    assert loss == 1.25 and out[0] is grads[0] and flags == [1.0, 0.0]


# -- Model.fit under mpirun ----------------------------------------------------------------------------
@needs_mpi
@pytest.mark.parametrize("dtype, n, tol", [("float64", 64 * 19 + 1, 1e-10), ("float32", 64 * 19 + 33, 1e-5)])
def test_fit_on_two_ranks_equals_one_process(tmp_path, dtype, n, tol):
    """20 steps of 64; the last batch (1 or 33 samples) leaves rank 1 empty-handed or splits 17 / 16."""
    worker = str(HERE / "mpi_fit_worker.py")
    one, two = tmp_path / "one.npz", tmp_path / "two.npz"
    single(sys.executable, worker, dtype, str(one), str(n))
    mpirun(2, sys.executable, worker, dtype, str(two), str(n))
    a, b = np.load(one), np.load(two)
    assert int(a["steps"]) == int(b["steps"]) == 20
    keys = [k for k in a.files if k.startswith("arr_")]
    assert keys and all(a[k].dtype == np.dtype(dtype) for k in keys)
    for k in keys:
        np.testing.assert_allclose(b[k], a[k], rtol=0, atol=tol, err_msg=f"weight {k}")
    moved = max(float(np.abs(a[k]).max()) for k in keys)
    assert moved > 0.05  # the weights are real, trained values, not zeros
    np.testing.assert_allclose(b["loss"], a["loss"], rtol=1e-6)  # the logged loss is the global batch's


# -- lstmlab train under mpirun ------------------------------------------------------------------------
WORDS = "the cat sat on a mat and then it ran far away from home while dogs barked at night".split()
TRAIN = ["--layers", "2", "--units", "24", "--embedding", "8", "--batch-size", "64", "--seq-len", "12",
         "--dropout", "0", "--eval-every", "10", "--no-samples"]


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text(" ".join(np.random.default_rng(0).choice(WORDS, 3000)), encoding="utf-8")
    return path


def lstmlab_cmd(*args):
    return [sys.executable, "-m", "lstmlab", *args]


def tensors(path):
    t, _ = load_file(path)
    return {k: v for k, v in t.items() if k.startswith(("weights/", "optimizer/", "states/"))}


def assert_close_runs(a, b, tol=1e-5):
    ta, tb = tensors(a), tensors(b)
    assert sorted(ta) == sorted(tb) and any(k.startswith("states/") for k in ta)
    for k in ta:
        assert ta[k].shape == tb[k].shape, k
        np.testing.assert_allclose(tb[k], ta[k], rtol=0, atol=tol, err_msg=k)


@needs_mpi
def test_train_on_two_ranks_equals_one_process_and_resumes_in_one(corpus, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    single(*lstmlab_cmd("train", "--corpus", str(corpus), "--out", str(one), "--steps", "20", *TRAIN))
    proc = mpirun(2, *lstmlab_cmd("train", "--corpus", str(corpus), "--out", str(two), "--steps", "20", *TRAIN))
    assert proc.stdout.count("done: 20 steps") == 1  # rank 0 alone prints
    assert_close_runs(one / "checkpoint.safetensors", two / "checkpoint.safetensors")
    model, *_ , progress, _ = load_checkpoint(two / "checkpoint.safetensors")
    assert progress.global_step == 20 and model.layers[0].batch_input_shape[0] == 64  # all 64 streams' states
    # The two-rank checkpoint resumes in one process, and lands where the one-process run lands.
    single(*lstmlab_cmd("train", "--resume", "--out", str(two), "--steps", "30"))
    single(*lstmlab_cmd("train", "--resume", "--out", str(one), "--steps", "30"))
    assert_close_runs(one / "checkpoint.safetensors", two / "checkpoint.safetensors")
    assert load_checkpoint(two / "checkpoint.safetensors")[4].global_step == 30


def _rank_pids(root_pid):
    """{rank: pid} of the processes mpirun started (found by the rank Open MPI / PMI put in their environment)."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            env = open(f"/proc/{entry}/environ", "rb").read().split(b"\0")
            status = open(f"/proc/{entry}/status").read()
        except OSError:
            continue
        ppid = int(next(line.split()[1] for line in status.splitlines() if line.startswith("PPid:")))
        for var in env:
            if var.startswith((b"OMPI_COMM_WORLD_RANK=", b"PMI_RANK=")) and ppid == root_pid:
                found[int(var.split(b"=")[1])] = int(entry)
    return found


def _alive(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            return "zombie" not in f.read()
    except OSError:
        return False


@needs_mpi
def test_killing_one_rank_stops_the_job_and_the_last_checkpoint_loads(corpus, tmp_path):
    run = tmp_path / "killed"
    args = ["train", "--corpus", str(corpus), "--out", str(run), "--steps", "100000", "--layers", "1",
            "--units", "24", "--embedding", "8", "--batch-size", "64", "--seq-len", "12", "--eval-every", "5",
            "--no-samples"]
    proc = subprocess.Popen(["mpirun", "-n", "2", "--oversubscribe", *lstmlab_cmd(*args)], env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (run / "checkpoint.safetensors").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert (run / "checkpoint.safetensors").exists(), "no checkpoint was written"
        ranks = _rank_pids(proc.pid)
        assert sorted(ranks) == [0, 1], ranks
        os.kill(ranks[1], signal.SIGKILL)
        out, _ = proc.communicate(timeout=60)  # the whole job ends, not just rank 1
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0
    # Rank 0 was waiting on rank 1 inside an Allreduce when mpirun's SIGTERM came; its watchdog ends it.
    deadline = time.monotonic() + 30
    while any(_alive(pid) for pid in ranks.values()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(_alive(pid) for pid in ranks.values()), "a rank outlived the job"
    model, vocab, mcfg, tcfg, progress, _ = load_checkpoint(run / "checkpoint.safetensors")
    assert progress.global_step >= 5 and progress.global_step % 5 == 0
    # and the run goes on in one process
    single(*lstmlab_cmd("train", "--resume", "--out", str(run), "--steps", str(progress.global_step + 5)))
    assert load_checkpoint(run / "checkpoint.safetensors")[4].global_step == progress.global_step + 5
