"""Every kernel variant this machine runs (avx512, avx2, generic) equals the NumPy reference, and the loader
chooses and refuses variants as documented in lstmlab._fast.

Each variant is loaded once per process, at import, so each is checked in a subprocess with LSTMLAB_ISA set;
the subprocess runs ``child_check`` below (kept to a couple of seconds). Which variants this CPU runs is read
here from /proc/cpuinfo, independently of the loader's own CPUID check, which it also verifies.
"""
import os
import subprocess
import sys

import numpy as np
import pytest

from helpers import assert_close, backward, random_problem
from lstmlab import _fast
from lstmlab import functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
# The -march levels of setup.py's variants, as /proc/cpuinfo names their features (x86-64-v3 and -v4).
LEVEL_FLAGS = {
    "generic": set(),
    "avx2": {"avx", "avx2", "bmi1", "bmi2", "fma", "f16c", "movbe", "abm"},
    "avx512": {"avx", "avx2", "bmi1", "bmi2", "fma", "f16c", "movbe", "abm",
               "avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"},
}


def cpuinfo_runs() -> list:
    """The variants this CPU can run according to the kernel's /proc/cpuinfo (Linux, x86-64)."""
    with open("/proc/cpuinfo") as f:
        flags = next(line for line in f if line.startswith("flags")).split(":", 1)[1].split()
    return [isa for isa in _fast.ISAS if LEVEL_FLAGS[isa] <= set(flags)]


RUNNABLE = cpuinfo_runs() if os.path.exists("/proc/cpuinfo") else ["generic"]


def run_child(env_isa: str | None, code: str = "import test_isa_variants as t; t.child_check()", **env):
    environment = {**os.environ, "PYTHONPATH": HERE, **env}
    environment.pop("LSTMLAB_ISA", None)
    if env_isa is not None:
        environment["LSTMLAB_ISA"] = env_isa
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env=environment)


# -- run in the subprocess -----------------------------------------------------------------------------------
# Shapes that take every path a variant has: one step (BLAS per step), 3 sequences on one thread, a batch
# split over the threads, the fused float32 loop (T >= 4; AVX2: the loop on the own GEMM) and, on AVX-512 and
# AVX2, the loop split by units (B = 1, H >= 32), with ragged 16- and 8-float vectors (H = 33, 4H = 132).
CHILD_SHAPES = [(1, 1, 3, 5), (3, 6, 4, 9), (9, 5, 7, 33), (1, 8, 5, 40)]


def check_functional(kind: str, dtype, tol: float) -> None:
    from lstmlab._fast import gru as fast_gru
    from lstmlab._fast import lstm as fast_lstm

    fwd, bwd = (fast_lstm.lstm_forward, fast_lstm.lstm_backward) if kind == "lstm" else \
        (fast_gru.gru_forward, fast_gru.gru_backward)
    ref_fwd = F.lstm_forward if kind == "lstm" else F.gru_forward
    for B, T, D, H in CHILD_SHAPES:
        p = random_problem(kind, B, T, D, H, seed=B + 7 * T, dtype=dtype, scale=1.0 / np.sqrt(H + D))
        rng = np.random.default_rng(H)
        ref = ref_fwd(**p)
        where = f"{_fast.ISA} {kind} {np.dtype(dtype).name} {(B, T, D, H)}"
        inference = fwd(**p, need_cache=False)  # no cache: the inference path
        assert inference[2] is None, where
        assert_close(f"{where} inference outputs", inference[0], ref[0], tol)
        hs, fin, cache = fwd(**p)  # with the cache, then BPTT through it
        assert cache.get("fast") == kind, f"{where}: the C loop did not run"
        assert_close(f"{where} outputs", hs, ref[0], tol)
        finals, ref_finals = (fin, ref[1]) if kind == "lstm" else ((fin,), (ref[1],))
        for a, b in zip(finals, ref_finals):
            assert_close(f"{where} final state", a, b, tol)
        dhs = rng.standard_normal(hs.shape).astype(dtype)
        dfin = [rng.standard_normal(a.shape).astype(dtype) for a in finals]
        g = bwd(dhs, *dfin, cache)
        ours = dict(x=g.dx, kernel=g.dkernel, recurrent_kernel=g.drecurrent_kernel, bias=g.dbias, h0=g.dh0)
        if kind == "lstm":
            ours["c0"] = g.dc0
        for name, theirs in backward(kind, dhs, dfin, ref[2]).items():
            assert ours[name].dtype == dtype, f"{where} d{name}"
            assert_close(f"{where} d{name}", ours[name], theirs, tol)


def check_layer(kind: str, dtype, tol: float) -> None:
    """The Keras-style layer on this variant: training call + backward, and an inference call, against the
    functional reference with the layer's own weights and zero initial states."""
    from lstmlab.layers import GRU, LSTM

    B, T, D, H = 6, 7, 5, 17
    layer = (LSTM if kind == "lstm" else GRU)(H, return_sequences=True, dtype=np.dtype(dtype).name)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((B, T, D)).astype(dtype)
    layer(x, training=True)  # builds the weights
    kernel, recurrent_kernel, bias = layer.get_weights()
    rng2 = np.random.default_rng(11)
    bias = rng2.uniform(-0.5, 0.5, bias.shape).astype(dtype)  # non-zero biases, set through the public API
    layer.set_weights([kernel, recurrent_kernel, bias])
    y = layer(x, training=True)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = layer.backward(dy)
    p = dict(x=x, kernel=kernel, recurrent_kernel=recurrent_kernel, bias=bias)
    ref = (F.lstm_forward if kind == "lstm" else F.gru_forward)(**p)
    zeros = [np.zeros((B, H), dtype)] * (2 if kind == "lstm" else 1)
    grads = backward(kind, dy, zeros, ref[2])
    where = f"{_fast.ISA} {kind} layer {np.dtype(dtype).name}"
    assert_close(f"{where} outputs", y, ref[0], tol)
    assert_close(f"{where} inference outputs", layer(x, training=False), ref[0], tol)
    assert_close(f"{where} dx", dx, grads["x"], tol)
    for name, g in zip(("kernel", "recurrent_kernel", "bias"), layer.grads):
        assert_close(f"{where} d{name}", g, grads[name], tol)


def child_check() -> None:
    forced = os.environ["LSTMLAB_ISA"]
    assert _fast.available(), _fast.REASON
    assert _fast.ISA == forced, f"LSTMLAB_ISA={forced} but {_fast.ISA} was loaded ({_fast.ISA_REASON})"
    assert "forced by LSTMLAB_ISA" in _fast.ISA_REASON, _fast.ISA_REASON
    # The AVX-512 variant has the own GEMM (sgemm.c) and the fused engines on it (SGEMM); the AVX2 variant its
    # own GEMM (sgemm_avx2.c) for the time loops' products, not the engines; the generic variant NumPy's BLAS.
    assert _fast.SGEMM == (forced == "avx512"), f"{forced}: SGEMM is {_fast.SGEMM}"
    assert _fast.OWN_GEMM == (forced in ("avx512", "avx2")), f"{forced}: OWN_GEMM is {_fast.OWN_GEMM}"
    for kind in ("lstm", "gru"):
        for dtype, tol in ((np.float64, 1e-12), (np.float32, 1e-5)):
            check_functional(kind, dtype, tol)
            check_layer(kind, dtype, tol)
    print(f"variant {_fast.ISA} equals the reference")


# -- the tests -----------------------------------------------------------------------------------------------
def test_all_three_variants_are_built_on_x86_64():
    # CI installs with a C compiler on x86-64: a missing variant is a build failure, not a skip.
    import platform

    expected = set(_fast.ISAS) if platform.machine().lower() in ("x86_64", "amd64") else {"generic"}
    assert set(_fast._built_variants()) == expected, _fast._built_variants()


@pytest.mark.parametrize("isa", RUNNABLE)
def test_forced_variant_equals_the_reference(isa):
    r = run_child(isa)
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"variant {isa} equals the reference" in r.stdout


def test_default_is_the_best_variant_this_cpu_runs():
    assert _fast.ISA == RUNNABLE[0] or os.environ.get("LSTMLAB_ISA"), _fast.ISA_REASON
    assert _fast.ISA_REASON.startswith(f"{_fast.ISA}: ")
    assert f"this CPU runs: {', '.join(RUNNABLE)}" in _fast.ISA_REASON, (_fast.ISA_REASON, RUNNABLE)


def test_cpu_check_agrees_with_proc_cpuinfo():
    assert list(_fast._cpu_runs(_fast._built_variants()["generic"])) == RUNNABLE


def test_unknown_isa_is_refused_with_the_accepted_values():
    r = run_child("avx1024", "import lstmlab")
    assert r.returncode != 0
    assert "ValueError: LSTMLAB_ISA: expected one of avx512, avx2, generic (or unset, for the best this CPU runs), " \
           "got 'avx1024'" in r.stderr, r.stderr[-2000:]
    # also with the fast path off: a misspelt variable is never silently ignored
    r = run_child("AVX 2", "import lstmlab", LSTMLAB_FAST="0")
    assert r.returncode != 0 and "LSTMLAB_ISA: expected one of avx512, avx2, generic" in r.stderr, r.stderr[-2000:]
    r = run_child("AVX2", "from lstmlab import _fast; print(_fast.ISA)")  # case and spaces do not matter
    assert r.returncode == 0 and r.stdout.split() == ["avx2"], r.stderr[-2000:]


def test_a_variant_the_cpu_cannot_run_is_refused(monkeypatch):
    monkeypatch.setattr(_fast, "_cpu_runs", lambda path: ("avx2", "generic"))  # a CPU without AVX-512
    with pytest.raises(ValueError, match=r"^LSTMLAB_ISA=avx512: this CPU cannot run that kernel variant "
                                         r"\(built: avx512, avx2, generic; this CPU runs: avx2, generic\); "
                                         r"expected one of avx2, generic$"):
        _fast._find_kernels("avx512")
    path, isa, why = _fast._find_kernels(None)  # unforced: the best it runs, never AVX-512
    assert isa == "avx2" and os.path.basename(path).startswith("_kernels_avx2."), path
    assert why.startswith("avx2: the best variant built that this CPU runs")


def test_a_variant_that_was_not_built_is_refused(monkeypatch):
    built = _fast._built_variants()
    monkeypatch.setattr(_fast, "_built_variants", lambda: {k: v for k, v in built.items() if k != "avx2"})
    with pytest.raises(ValueError, match=r"^LSTMLAB_ISA=avx2: that kernel variant was not built \(built: avx512, "
                                         r"generic; .*\); expected one of avx512, generic$"):
        _fast._find_kernels("avx2")
    monkeypatch.setattr(_fast, "_built_variants", lambda: {})
    assert _fast._find_kernels(None) == (None, None, "the C kernels were not built (no C compiler at install time)")
