"""Forks and CPU affinity: the fast path's worker threads after ``fork()`` and after the affinity narrows.

Each case runs in a fresh interpreter (``subprocess``) with a time limit: a fork of the pytest process would
copy whatever threads other tests started, and a hang must fail the test, not stall the suite.
"""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from lstmlab import _fast
from lstmlab._fast import lstm as fast_lstm
from lstmlab._fast import parallel

TIME_LIMIT = 120  # s; a healthy run takes about 2 s, the hang it guards against lasted forever

# A parent that has trained one step with its batch (B = 32) split across two threads of the Python pool
# (forced, so the test means the same on a one-core machine), then forks. The child's alarm ends it if it
# hangs, so no process outlives the test.
PARENT = """
import os, signal, sys
import numpy as np
import lstmlab
from lstmlab import layers
from lstmlab._fast import parallel

parallel._allowed_cores = lambda: 2
rng = np.random.default_rng(0)
x = rng.standard_normal((32, 12, 6)).astype(np.float32)
y = rng.standard_normal((32, 1)).astype(np.float32)
model = lstmlab.Sequential([layers.LSTM(32, input_shape=(12, 6)), layers.Dense(1)])
model.compile("sgd", "mse")
model.train_on_batch(x, y)
assert parallel._POOL is not None, "the parent's step did not use the Python pool"

def step():
    signal.alarm(60)
    loss = model.train_on_batch(x, y)
    return [loss] + model.get_weights()
"""


def run_script(body: str, tmp_path) -> str:
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(body))
    try:
        done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=TIME_LIMIT,
                              cwd=str(tmp_path))
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the script did not finish in {TIME_LIMIT} s (hang); its output: {exc.stdout!r} {exc.stderr!r}")
    assert done.returncode == 0, f"exit {done.returncode}\nstdout: {done.stdout}\nstderr: {done.stderr}"
    return done.stdout


def assert_same_step(tmp_path):
    got = np.load(tmp_path / "child.npz")
    want = np.load(tmp_path / "parent.npz")
    assert sorted(got.files) == sorted(want.files)
    for name in want.files:  # the same step from the same state on the same code: bit-identical
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)


needs_fork = pytest.mark.skipif(not hasattr(os, "fork") or not _fast.available(),
                                reason="needs os.fork and the C kernels")


@needs_fork
def test_child_of_os_fork_trains_after_a_split_step(tmp_path):
    run_script(PARENT + """
pid = os.fork()
if pid == 0:
    try:
        np.savez("child.npz", *step())
    finally:
        os._exit(0)
_, status = os.waitpid(pid, 0)
assert status == 0, f"child status {status}"
np.savez("parent.npz", *step())
""", tmp_path)
    assert_same_step(tmp_path)


@needs_fork
def test_child_of_multiprocessing_fork_trains_after_a_split_step(tmp_path):
    run_script(PARENT + """
import multiprocessing as mp
with mp.get_context("fork").Pool(1) as pool:
    result = pool.apply_async(step).get(timeout=60)
np.savez("child.npz", *result)
np.savez("parent.npz", *step())
""", tmp_path)
    assert_same_step(tmp_path)


@needs_fork
def test_forked_child_splits_again_across_the_new_pool(tmp_path):
    # The child must not only finish but use its own threads: its pool is a new one, with live workers.
    out = run_script(PARENT + """
old = parallel._POOL
pid = os.fork()
if pid == 0:
    code = 1
    try:
        step()
        code = 0 if parallel._POOL is not None and parallel._POOL is not old else 2
    finally:
        os._exit(code)
_, status = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(status))
""", tmp_path)
    assert out.strip() == "0"


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity") or not _fast.available(),
                    reason="needs os.sched_setaffinity and the C kernels")
def test_affinity_narrowed_after_import_runs_one_part(tmp_path):
    # Two cores (as far as lstmlab can tell) for a first call that starts both pools, then one allowed core:
    # the forward at B = 1 (the unit split's case) and a training step at B = 32 (the batch split's) must run
    # one part each, and give the reference's results.
    out = run_script("""
import os
import numpy as np
from lstmlab import _fast
from lstmlab._fast import lstm as fast_lstm, parallel
from lstmlab.functional import lstm as ref

real = getattr(parallel, "_allowed_cores", None)
parallel._allowed_cores = lambda: 2
rng = np.random.default_rng(1)
def problem(B, T=20, D=16, H=64):
    s = 1.0 / np.sqrt(D + H)
    return (rng.standard_normal((B, T, D)).astype(np.float32), (s * rng.standard_normal((D, 4 * H))).astype(np.float32),
            (s * rng.standard_normal((H, 4 * H))).astype(np.float32), (s * rng.standard_normal(4 * H)).astype(np.float32))
fast_lstm.lstm_backward(np.ones((32, 20, 64), np.float32), None, None, fast_lstm.lstm_forward(*problem(32))[2])
fast_lstm.lstm_forward(*problem(1), need_cache=False)

parallel._allowed_cores = real
os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
parts = []
if _fast.SGEMM:
    run = _fast.KERNELS.lstm_forward_fused_run_f32  # its last arguments: parts, by_units, edges
    _fast.KERNELS.lstm_forward_fused_run_f32 = lambda *a: (parts.append(a[-3:-1]), run(*a))[1]
def no_pool(*args):
    raise AssertionError("a part was handed to the Python pool")
parallel._pool = no_pool
for B in (1, 32):
    x, k, u, b = problem(B)
    hs, _, cache = fast_lstm.lstm_forward(x, k, u, b)
    rhs, _, rcache = ref.lstm_forward(x, k, u, b)
    dhs = rng.standard_normal(hs.shape).astype(np.float32)
    g, rg = fast_lstm.lstm_backward(dhs, None, None, cache), ref.lstm_backward(dhs, None, None, rcache)
    np.testing.assert_allclose(hs, rhs, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(g.dx, rg.dx, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(g.drecurrent_kernel, rg.drecurrent_kernel, rtol=1e-4, atol=1e-4)
print(parts)
""", tmp_path)
    # the fused forward ran in one part, not by units (without the own GEMM it is not used at all)
    assert out.strip() == ("[(1, 0), (1, 0)]" if _fast.SGEMM else "[]")


def test_thread_count_follows_the_allowed_cores(monkeypatch):
    monkeypatch.setattr(parallel, "_THREADS", None)
    monkeypatch.setattr(parallel, "_allowed_cores", lambda: 1)
    assert parallel.threads() == 1
    assert parallel.split(64) == [(0, 64)]
    assert fast_lstm.unit_parts(1, 100, 256, np.float32) is None  # no barrier between threads on one core
    monkeypatch.setattr(parallel, "_allowed_cores", lambda: 3)
    assert parallel.threads() == 3
    assert parallel.split(12) == [(0, 4), (4, 8), (8, 12)]
    monkeypatch.setattr(parallel, "_THREADS", 2)  # set_threads() caps it
    assert parallel.threads() == 2
    monkeypatch.setattr(parallel, "_THREADS", None)
    monkeypatch.setattr(parallel, "_allowed_cores", lambda: 200)  # more than pool.c's 64 threads
    assert parallel.threads() == parallel.C_POOL_MAX_THREADS


def test_more_cores_than_the_c_pool_has_threads_still_runs(monkeypatch):
    # Found while checking the C pool: lk_parallel refuses a job of more than 64 parts, so on a machine of
    # more cores a large batch raised "could not start their worker threads".
    monkeypatch.setattr(parallel, "_THREADS", None)
    monkeypatch.setattr(parallel, "_allowed_cores", lambda: 100)
    from helpers import random_problem

    p = random_problem("lstm", 400, 5, 8, 32, seed=4, dtype=np.float32, scale=0.3)
    hs = fast_lstm.lstm_forward(**p)[0]
    monkeypatch.setattr(parallel, "_allowed_cores", lambda: 1)
    np.testing.assert_allclose(hs, fast_lstm.lstm_forward(**p)[0], rtol=1e-6, atol=1e-7)
