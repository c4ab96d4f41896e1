"""The C fast path equals the reference math; the pure-NumPy path works without it."""
import os
import subprocess
import sys

import numpy as np
import pytest

from helpers import assert_close, backward, random_problem
from lstmlab import functional as F
from lstmlab import gradcheck
from lstmlab import _fast
from lstmlab._fast import gemm, parallel
from lstmlab._fast import gru as fast_gru
from lstmlab._fast import lstm as fast_lstm
from lstmlab._fast import workspace as fast_workspace
from lstmlab.layers import GRU, LSTM

FAST = {"lstm": (fast_lstm.lstm_forward, fast_lstm.lstm_backward), "gru": (fast_gru.gru_forward, fast_gru.gru_backward)}
FAST_MODULES = {"lstm": fast_lstm, "gru": fast_gru}


def test_fast_path_is_built_here():
    # CI installs with a C compiler, so a missing fast path is a build failure, not a skip.
    from lstmlab import _fast

    assert _fast.available(), _fast.REASON


def test_own_gemm_is_built_on_avx512():
    from lstmlab import _fast

    with open("/proc/cpuinfo") if os.path.exists("/proc/cpuinfo") else open(os.devnull) as f:
        avx512 = " avx512f" in f.read()
    if not avx512:
        pytest.skip("this CPU has no AVX-512: the time loops use NumPy's BLAS")
    assert _fast.SGEMM, "the avx512 variant is loaded on an AVX-512 CPU, so lk_sgemm must be available"


@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (6, 256, 64), (7, 257, 65), (13, 600, 129), (200, 3, 1), (0, 4, 5),
                                   (4, 0, 5), (97, 40, 300)])
@pytest.mark.parametrize("ta", [False, True])
@pytest.mark.parametrize("tb", [False, True])
@pytest.mark.parametrize("accumulate", [False, True])
def test_matmul_equals_float64_product(m, k, n, ta, tb, accumulate):
    rng = np.random.default_rng(m * 1000 + k + n)
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    c0 = rng.standard_normal((m, n)).astype(np.float32)
    out = c0.copy()
    A = np.ascontiguousarray(a.T).T if ta else a  # the same matrix, stored transposed
    Bm = np.ascontiguousarray(b.T).T if tb else b
    gemm.matmul(A, Bm, out=out, accumulate=accumulate)
    expected = a.astype(np.float64) @ b.astype(np.float64) + (c0 if accumulate else 0)
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-5 * max(1.0, np.sqrt(k)))
    np.testing.assert_allclose(gemm.matmul(A, Bm), a.astype(np.float64) @ b, rtol=0, atol=1e-5 * max(1.0, np.sqrt(k)))


def test_own_gemm_off_gives_the_same_results():
    code = (
        "import numpy as np\n"
        "from lstmlab import _fast\n"
        "from lstmlab._fast import lstm as fast_lstm\n"
        "from lstmlab.functional import lstm\n"
        "from helpers import random_problem\n"
        "assert _fast.available() and not _fast.SGEMM\n"
        "p = random_problem('lstm', 8, 9, 30, 20, seed=1, dtype=np.float32, scale=0.2)\n"
        "hs, _, cache = fast_lstm.lstm_forward(**p)\n"
        "assert cache.get('fast') == 'lstm'\n"
        "np.testing.assert_allclose(hs, lstm.lstm_forward(**p)[0], atol=1e-5)\n"
        "print('blas path ok')\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "LSTMLAB_SGEMM": "0", "PYTHONPATH": os.path.dirname(__file__)})
    assert r.returncode == 0, r.stderr
    assert "blas path ok" in r.stdout


def run_both(kind, p, dhs, dfin):
    ref_fwd = F.lstm_forward if kind == "lstm" else F.gru_forward
    fwd, bwd = FAST[kind]
    ours = fwd(**p)
    ref = ref_fwd(**p)
    assert ours[2].get("fast") == kind  # the C loop really ran
    if kind == "lstm":
        g = bwd(dhs, dfin[0], dfin[1], ours[2])
        gf = dict(x=g.dx, kernel=g.dkernel, recurrent_kernel=g.drecurrent_kernel, bias=g.dbias, h0=g.dh0, c0=g.dc0)
        fin, rfin = ours[1], ref[1]
    else:
        g = bwd(dhs, dfin[0], ours[2])
        gf = dict(x=g.dx, kernel=g.dkernel, recurrent_kernel=g.drecurrent_kernel, bias=g.dbias, h0=g.dh0)
        fin, rfin = (ours[1],), (ref[1],)
    gr = backward(kind, dhs, dfin, ref[2])
    return ours[0], fin, gf, ref[0], rfin, gr


SHAPES = [(1, 1, 1, 1), (1, 30, 5, 8), (2, 3, 4, 5), (3, 7, 2, 9), (8, 12, 16, 16), (9, 5, 3, 4), (33, 6, 7, 12),
          # the own GEMM's edges: ragged panels (4H = 68, 260), inner dimensions past one block of 256
          # (D = 300, 4H = 280, b*T rows), ragged row tiles (b = 3, 5, 8 of 6); the fused LSTM loop's recurrent
          # product over H = 300 rows, past one block of 256, with a last unit block of 12
          (5, 9, 300, 70), (16, 20, 33, 65), (11, 4, 3, 17), (7, 5, 4, 300)]


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 1e-5)], ids=["float64", "float32"])
@pytest.mark.parametrize("B,T,D,H", SHAPES)
def test_fast_equals_reference(kind, dtype, tol, B, T, D, H):
    p = random_problem(kind, B, T, D, H, seed=B * 31 + T, dtype=dtype, scale=1.0 / np.sqrt(H + D))
    rng = np.random.default_rng(B + H)
    dhs = rng.standard_normal((B, T, H)).astype(dtype)
    dfin = [rng.standard_normal((B, H)).astype(dtype) for _ in range(2 if kind == "lstm" else 1)]
    hs, fin, gf, rhs, rfin, gr = run_both(kind, p, dhs, dfin)
    assert hs.dtype == dtype
    assert_close(f"{kind} outputs", hs, rhs, tol)
    for a, b in zip(fin, rfin):
        assert_close(f"{kind} final state", a, b, tol)
    for name in gr:
        assert gf[name].dtype == dtype, name
        assert_close(f"{kind} d{name}", gf[name], gr[name], tol)


@pytest.mark.parametrize("B,T,D,H", [(1, 9, 5, 32), (3, 6, 7, 50), (10, 5, 3, 33), (2, 4, 300, 70), (1, 4, 3, 270)])
def test_lstm_loop_split_by_units_equals_reference(monkeypatch, B, T, D, H):
    # The unit-split loop (two parts meeting at a barrier every step) against the reference, forcing it
    # on for batches that "auto" would split by sequence; odd H gives the parts unequal, unaligned widths.
    from lstmlab import _fast

    if not _fast.SGEMM:
        pytest.skip("the unit-split loop needs the own GEMM")
    calls = []
    forward = _fast.KERNELS.lstm_forward_fused_run_f32  # its last arguments: parts, by_units, edges
    monkeypatch.setattr(_fast.KERNELS, "lstm_forward_fused_run_f32",
                        lambda *a: (calls.append(("forward", a[-3], a[-2])), forward(*a))[1])
    backward = _fast.KERNELS.lstm_backward_units_run_f32  # its last argument: parts
    monkeypatch.setattr(_fast.KERNELS, "lstm_backward_units_run_f32",
                        lambda *a: (calls.append(("backward", a[-1])), backward(*a))[1])
    monkeypatch.setattr(fast_lstm, "UNIT_SPLIT", "always")
    monkeypatch.setattr(parallel, "_THREADS", 2)
    p = random_problem("lstm", B, T, D, H, seed=B + T + H, dtype=np.float32, scale=1.0 / np.sqrt(H + D))
    rng = np.random.default_rng(H)
    dhs = rng.standard_normal((B, T, H)).astype(np.float32)
    dfin = [rng.standard_normal((B, H)).astype(np.float32) for _ in range(2)]
    hs, fin, gf, rhs, rfin, gr = run_both("lstm", p, dhs, dfin)
    assert calls == [("forward", 2, 1), ("backward", 2)]  # both ran split by units, in two parts
    assert_close("outputs", hs, rhs, 1e-5)
    for a, b in zip(fin, rfin):
        assert_close("final state", a, b, 1e-5)
    for name in gr:
        assert_close(f"d{name}", gf[name], gr[name], 1e-5)


def test_auto_splits_by_units_only_for_small_batches(monkeypatch):
    monkeypatch.setattr(parallel, "_THREADS", 2)
    expected = [(0, 128), (128, 256)] if gemm.own_gemm(np.float32) else None
    assert fast_lstm.unit_parts(1, 100, 256, np.float32) == expected
    assert fast_lstm.unit_parts(2 * parallel.MIN_ROWS_PER_THREAD, 100, 256, np.float32) is None
    assert fast_lstm.unit_parts(1, 100, 256, np.float64) is None  # the float64 loop calls BLAS
    assert fast_lstm.unit_parts(1, 2, 256, np.float32) is None  # too short to pack


@pytest.mark.parametrize("T", [1, 4], ids=["step-loop", "fused-loop"])
def test_float32_cell_activations_are_accurate_everywhere(T):
    # The float32 cell computes exp, sigmoid and tanh itself (lstm_avx512.c). With kernel = identity and no
    # recurrence at t = 0, the gate pre-activations are the inputs: sweep them from -100 to 100 (saturation,
    # the small-|x| tanh branch, the switch at 0.4, odd widths for the masked tail) against float64. One step
    # runs the loop with a GEMM call per step; four run the fused loop (its register-tile epilogue): step 0
    # is checked.
    H = 1000
    v = np.concatenate([np.linspace(-100, 100, 400), np.linspace(-1, 1, 400), np.linspace(-0.41, 0.41, 200)])
    rng = np.random.default_rng(0)
    x = np.stack([v, rng.permutation(v), rng.permutation(v), rng.permutation(v)], axis=0).reshape(1, 1, 4 * H)
    x = np.repeat(x, T, axis=1)  # (1, T, 4H)
    c0 = rng.uniform(-3, 3, (1, H))
    p = dict(x=x.astype(np.float32), kernel=np.eye(4 * H, dtype=np.float32),
             recurrent_kernel=np.zeros((H, 4 * H), np.float32), c0=c0.astype(np.float32))
    hs, (h, c), _ = fast_lstm.lstm_forward(**p, need_cache=False)
    zi, zf, zg, zo = x[:, 0].reshape(4, H).astype(np.float64)
    sig = lambda a: 1.0 / (1.0 + np.exp(-a))  # noqa: E731
    c_ref = sig(zf) * c0[0].astype(np.float32) + sig(zi) * np.tanh(zg)
    h_ref = sig(zo) * np.tanh(c_ref)
    if T == 1:
        np.testing.assert_allclose(c[0], c_ref, rtol=3e-7, atol=4e-7)  # terms up to 3: float32 spacing 2.4e-7
    np.testing.assert_allclose(hs[0, 0], h_ref, rtol=3e-7, atol=4e-7)
    assert np.all(np.isfinite(hs))


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("B,T,D,H", [(1, 30, 5, 40), (6, 9, 7, 33), (16, 12, 20, 64)])
def test_inference_without_cache_equals_training_forward(monkeypatch, kind, B, T, D, H):
    # need_cache=False keeps the gates in reused buffers: the outputs must not change, the buffers must not
    # leak into a later call's results, and the layer must use it exactly when not training.
    p = random_problem(kind, B, T, D, H, seed=T + H, dtype=np.float32, scale=1.0 / np.sqrt(H + D))
    fwd = FAST[kind][0]
    hs, fin, cache = fwd(**p)
    for _ in range(2):  # the second call reuses the first call's buffers
        hs2, fin2, cache2 = fwd(**p, need_cache=False)
        assert cache2 is None
        np.testing.assert_array_equal(hs2, hs)
        for a, b in zip(fin2 if kind == "lstm" else [fin2], fin if kind == "lstm" else [fin]):
            np.testing.assert_array_equal(a, b)
    assert cache["fast"] == kind
    workspace = [raw for buffers in list(fast_workspace._ALL_BUFFERS) for raw in buffers.values()]
    for name in ("gates", "hs"):  # the training cache never points into the reused buffers
        assert not any(np.shares_memory(cache[name], raw) for raw in workspace), name
    seen = []
    module = FAST_MODULES[kind]
    real = getattr(module, f"{kind}_forward")
    monkeypatch.setattr(module, f"{kind}_forward", lambda *a, **k: (seen.append(k["need_cache"]), real(*a, **k))[1])
    layer = (LSTM if kind == "lstm" else GRU)(H, return_sequences=True)
    x = p["x"]
    np.testing.assert_allclose(layer(x, training=False), layer(x, training=True), rtol=0, atol=0)
    assert seen == [False, True]


def test_workspace_is_reused_counted_and_freed():
    fast_workspace.clear_workspace()
    p = random_problem("lstm", 1, 20, 3, 48, seed=5, dtype=np.float32, scale=0.3)  # B = 1: the caller's loop
    fast_lstm.lstm_forward(**p, need_cache=False)
    held = fast_workspace.workspace_bytes()
    assert held >= 4 * (20 * 4 * 48 + 20 * 48)  # at least the gates and cell states of that call
    fast_lstm.lstm_forward(**p, need_cache=False)
    assert fast_workspace.workspace_bytes() == held  # the same call again allocates nothing new
    before = fast_workspace.workspace_bytes()
    fast_workspace.clear_workspace()
    assert fast_workspace.workspace_bytes() <= before - 4 * (20 * 4 * 48)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_fast_path_without_bias_states_or_sequence_gradient(kind):
    p = random_problem(kind, 5, 4, 3, 6, seed=3, scale=0.4)
    for k in ("bias", "h0", "c0"):
        p.pop(k, None)
    fwd, bwd = FAST[kind]
    ref_fwd = F.lstm_forward if kind == "lstm" else F.gru_forward
    ours, ref = fwd(**p), ref_fwd(**p)
    np.testing.assert_allclose(ours[0], ref[0], rtol=1e-12, atol=1e-13)
    dh = np.random.default_rng(0).standard_normal((5, 6))
    g = bwd(None, dh, None, ours[2]) if kind == "lstm" else bwd(None, dh, ours[2])
    r = backward(kind, None, [dh, None] if kind == "lstm" else [dh], ref[2])
    assert g.dbias is None and r["bias"] is None
    np.testing.assert_allclose(g.dkernel, r["kernel"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(g.dh0, r["h0"], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_fast_path_passes_finite_differences(kind):
    p = random_problem(kind, 6, 4, 3, 4, seed=9)  # 6 rows: split across threads
    fwd, bwd = FAST[kind]
    rng = np.random.default_rng(1)
    hs, fin, cache = fwd(**p)
    assert cache.get("fast") == kind
    dhs = rng.standard_normal(hs.shape)
    dfin = [rng.standard_normal(a.shape) for a in (fin if kind == "lstm" else (fin,))]

    def loss():
        h2, f2, _ = fwd(**p)
        f2 = f2 if kind == "lstm" else (f2,)
        return np.sum(dhs * h2) + sum(np.sum(a * b) for a, b in zip(dfin, f2))

    g = bwd(dhs, *dfin, cache)
    analytic = dict(x=g.dx, kernel=g.dkernel, recurrent_kernel=g.drecurrent_kernel, bias=g.dbias, h0=g.dh0)
    if kind == "lstm":
        analytic["c0"] = g.dc0
    report = gradcheck(loss, p, analytic)
    assert report.ok, report


def test_uncovered_calls_fall_back_to_the_reference():
    p = random_problem("lstm", 2, 3, 2, 3)
    # (masks and recurrent dropout run in C since issue 17: tests/test_fast_masks_dropout.py)
    masked = fast_lstm.lstm_forward(**p, mask=np.array([[1, 1, 0], [1, 0, 0]], bool), activation="softsign")
    softsign = fast_lstm.lstm_forward(**p, activation="softsign")
    assert masked[2].get("fast") is None and softsign[2].get("fast") is None
    np.testing.assert_array_equal(softsign[0], F.lstm_forward(**p, activation="softsign")[0])
    g = fast_lstm.lstm_backward(np.ones((2, 3, 3)), None, None, masked[2])  # the reference cache is accepted
    assert g.dx.shape == (2, 3, 2)


def test_thread_count_does_not_change_results():
    p = random_problem("lstm", 16, 5, 4, 8, seed=2, dtype=np.float32, scale=0.3)
    try:
        parallel.set_threads(1)
        one = fast_lstm.lstm_forward(**p)[0]
        parallel.set_threads(2)
        two = fast_lstm.lstm_forward(**p)[0]
    finally:
        parallel.set_threads(2)
    np.testing.assert_allclose(one, two, rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match=r"^n: expected a positive integer, got 0$"):
        parallel.set_threads(0)


def test_pure_numpy_path_without_the_kernels():
    code = (
        "import numpy as np, lstmlab\n"
        "from lstmlab import _fast\n"
        "assert not _fast.available() and 'LSTMLAB_FAST=0' in _fast.REASON\n"
        "lstmlab.set_random_seed(0)\n"
        "m = lstmlab.Sequential([lstmlab.layers.Embedding(5, 4), lstmlab.layers.LSTM(8, return_sequences=True),\n"
        "                        lstmlab.layers.GRU(8), lstmlab.layers.Dense(5)])\n"
        "m.compile('adam', lstmlab.losses.SparseCategoricalCrossentropy(from_logits=True))\n"
        "x = np.array([[1, 2, 3, 4]] * 4); y = np.array([0, 1, 2, 3])\n"
        "h = m.fit(x, y, epochs=30, verbose=0)\n"
        "assert h.history['loss'][-1] < h.history['loss'][0]\n"
        "print('numpy path ok')\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env={**os.environ, "LSTMLAB_FAST": "0"}, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "numpy path ok" in r.stdout


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX only")
def test_fused_forward_works_in_a_forked_child():
    # The float32 forward runs on lstmlab's C worker threads (pool.c). A forked child has none of them:
    # without the pool's fork handler it would hand its second part to a thread that does not exist and
    # wait forever. The child runs the forward and reports by exit status; the parent gives it 60 s.
    from lstmlab import _fast

    if not _fast.SGEMM:
        pytest.skip("the fused forward needs the own GEMM")
    p = random_problem("lstm", 16, 10, 5, 32, seed=3, dtype=np.float32, scale=0.2)
    expected = fast_lstm.lstm_forward(**p, need_cache=False)[0]  # starts the pool's threads in this process
    pid = os.fork()
    if pid == 0:  # the child: exit 0 only if the forward finished with the parent's result
        ok = False
        try:
            ok = np.array_equal(fast_lstm.lstm_forward(**p, need_cache=False)[0], expected)
        finally:
            os._exit(0 if ok else 1)
    import time

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.05)
    else:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        pytest.fail("the forked child's forward did not finish in 60 s (the C worker pool hung after fork)")
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, f"child status {status}"
