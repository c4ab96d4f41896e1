"""The AVX2 variant's own float32 GEMM (sgemm_avx2.c), its LSTM cell (lstm_avx2.c) and its loops split by units
(lstm_units_avx2.c) equal NumPy and the reference.

The variant is chosen at import, so these checks run in a process where the AVX2 variant is loaded:
``tests/test_fast_avx2.py`` runs this file with pytest in a subprocess with LSTMLAB_ISA=avx2 (the file's name
keeps the default run from collecting it in the default variant). Float32 to 1e-5 against the reference,
float64 to 1e-12; masks (an all-padded row, a length-1 row, both padding sides, holes), recurrent dropout, with
and without a cache, split by sequences, by units and on one thread, and kernel call counters proving the AVX2
paths ran.
"""
import os

import numpy as np
import pytest

from helpers import assert_close, backward, random_problem
from lstmlab import _fast
from lstmlab import functional as F
from lstmlab import layers as L
from lstmlab._fast import gemm
from lstmlab._fast import lstm as fast_lstm
from lstmlab._fast import parallel
from lstmlab.gradcheck import check_layer
from test_fast_masks_dropout import dropout_mask, make_mask

HERE = os.path.dirname(os.path.abspath(__file__))
IN_AVX2 = _fast.ISA == "avx2"
avx2_only = pytest.mark.skipif(not IN_AVX2, reason="checks the AVX2 variant: run through tests/test_fast_avx2.py")
TOL = {np.float64: 1e-12, np.float32: 1e-5}


# -- the own GEMM against NumPy ------------------------------------------------------------------------------
@avx2_only
def test_the_own_gemm_is_on():
    assert _fast.OWN_GEMM and not _fast.SGEMM  # the GEMM, without the AVX-512 engines
    assert _fast.KERNELS.lk_sgemm_available() == 1


# m, n, k: not multiples of the 6 x 16 tile, one row (its own kernel), k over one packed block (256), k = 0
GEMM_SHAPES = [(1, 1, 1), (5, 17, 3), (7, 33, 300), (1, 1024, 256), (6, 16, 8), (13, 15, 9), (37, 70, 513),
               (100, 9, 17), (2, 40, 0), (97, 31, 64)]


def own_gemm(ta, tb, a_stored, b_stored, beta, c):
    """c = A @ B + beta * c through lk_sgemm; A, B given as stored (transposed when ta / tb)."""
    m, n = c.shape
    k = a_stored.shape[0] if ta else a_stored.shape[1]
    assert _fast.KERNELS.lk_sgemm(ta, tb, m, n, k, a_stored.ctypes.data, a_stored.strides[0] // 4,
                                  b_stored.ctypes.data, b_stored.strides[0] // 4, beta, c.ctypes.data,
                                  c.strides[0] // 4) == 0


@avx2_only
@pytest.mark.parametrize("m,n,k", GEMM_SHAPES)
@pytest.mark.parametrize("ta", [0, 1])
@pytest.mark.parametrize("tb", [0, 1])
@pytest.mark.parametrize("beta", [0.0, 1.0])
def test_own_gemm_equals_numpy(m, n, k, ta, tb, beta):
    rng = np.random.default_rng(m * 1000 + n * 10 + k)
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(np.float32)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(np.float32)
    c0 = rng.standard_normal((m, n)).astype(np.float32)
    expected = (a.T if ta else a).astype(np.float64) @ (b.T if tb else b) + beta * c0
    wide = np.zeros((m, n + 3), np.float32)
    wide[:, :n] = c0
    c = wide[:, :n]  # a row stride larger than n
    own_gemm(ta, tb, a, b, beta, c)
    scale = 1.0 + np.abs(expected).max()
    assert np.abs(c - expected).max() <= 1e-5 * scale * max(1, k) ** 0.5
    # the prepacked product: B packed once, A row-major with a row stride larger than k
    packed = gemm.pack("test", b, bool(tb), k, n)
    a_rows = np.ascontiguousarray(np.pad(a.T if ta else a, ((0, 0), (0, 5))))  # (m, k + 5)
    out = np.ascontiguousarray(np.pad(c0, ((0, 0), (0, 2))))  # (m, n + 2)
    _fast.KERNELS.lk_sgemm_prepacked_steps(1, m, n, k, a_rows.ctypes.data, k + 5, 0, packed.ctypes.data, beta,
                                           out.ctypes.data, n + 2, 0)
    assert np.abs(out[:, :n] - expected).max() <= 1e-5 * scale * max(1, k) ** 0.5
    assert np.array_equal(out[:, n:], np.pad(c0, ((0, 0), (0, 2)))[:, n:])  # nothing written past column n


# -- the LSTM's loops in the AVX2 variant --------------------------------------------------------------------
@pytest.fixture
def kernel_calls(monkeypatch):
    """{name: [packed-kernel argument or None, ...]} of the LSTM loops the fast path called."""
    calls = {}
    for name in ("lstm_forward_f32", "lstm_forward_f64", "lstm_backward_f32", "lstm_backward_f64",
                 "lstm_avx2_units_forward_f32", "lstm_backward_units_run_f32", "lstm_avx2_fused_forward_f32"):
        real = getattr(_fast.KERNELS, name)

        def spy(*args, _n=name, _f=real):
            calls.setdefault(_n, []).append(args[5] if _n.startswith(("lstm_forward", "lstm_backward")) else None)
            return _f(*args)

        monkeypatch.setattr(_fast.KERNELS, name, spy)
    return calls


@avx2_only
@pytest.mark.parametrize("split", ["sequences", "units", "one-thread", "sequences-unfused", "one-thread-unfused"])
@pytest.mark.parametrize("dropout", [False, True], ids=["no-dropout", "dropout"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("B,T,D,H,masking", [(B, T, D, H, m) for B, T, D, H in [(9, 7, 5, 40), (1, 9, 3, 33),
                                                                               (12, 6, 4, 17), (3, 2, 4, 5),
                                                                               (13, 5, 6, 33), (7, 6, 3, 24)]
                                             for m in ("none", "post", "pre", "holes")
                                             if B >= 3 or m == "none"])  # make_mask needs three rows
def test_lstm_equals_the_reference(monkeypatch, kernel_calls, split, dropout, masking, dtype, B, T, D, H):
    monkeypatch.setattr(parallel, "_THREADS", 1 if split.startswith("one-thread") else 2)
    monkeypatch.setattr(fast_lstm, "FUSED_AVX2", not split.endswith("unfused"))  # lstm_fused_avx2.c, or the loop
    monkeypatch.setattr(fast_lstm, "UNIT_SPLIT", "always" if split == "units" else "never")
    rng = np.random.default_rng(B * 100 + T * 10 + H)
    p = random_problem("lstm", B, T, D, H, seed=B + T + H, dtype=dtype, scale=1.0 / np.sqrt(H + D))
    mask = make_mask(masking, B, T, rng)
    rmask = dropout_mask(B, H, rng, dtype) if dropout else None
    dhs = rng.standard_normal((B, T, H)).astype(dtype)
    dh_T, dc_T = (rng.standard_normal((B, H)).astype(dtype) for _ in range(2))
    tol = TOL[dtype]
    before = fast_lstm.CALLS.copy()

    hs, (h, c), cache = fast_lstm.lstm_forward(**p, mask=mask, recurrent_mask=rmask)
    ref_hs, (ref_h, ref_c), ref_cache = F.lstm_forward(**p, mask=mask, recurrent_mask=rmask)
    assert cache.get("fast") == "lstm"
    for name, ours, theirs in (("hs", hs, ref_hs), ("h_T", h, ref_h), ("c_T", c, ref_c)):
        assert_close(name, ours, theirs, tol)
    g = fast_lstm.lstm_backward(dhs, dh_T, dc_T, cache)
    ref = backward("lstm", dhs, [dh_T, dc_T], ref_cache)
    ours = dict(x=g.dx, kernel=g.dkernel, recurrent_kernel=g.drecurrent_kernel, bias=g.dbias, h0=g.dh0, c0=g.dc0)
    for name in ref:
        assert ours[name].dtype == dtype, name
        assert_close(f"d{name}", ours[name], ref[name], tol)
    infer_hs, (_, infer_c), none = fast_lstm.lstm_forward(**p, mask=mask, recurrent_mask=rmask, need_cache=False)
    assert none is None
    assert_close("hs without a cache", infer_hs, ref_hs, tol)
    assert_close("c_T without a cache", infer_c, ref_c, tol)

    # the C loops ran, in the split asked for, on the own GEMM where it applies (float32, T >= 4)
    calls = fast_lstm.CALLS - before
    assert calls["forward"] == 2 and calls["backward"] == 1
    assert calls["forward_dropout"] == (2 if dropout else 0)
    units = split == "units" and dtype == np.float32 and T >= 4 and H >= 32
    assert (fast_lstm.unit_parts(B, T, H, dtype) is not None) == units
    sfx = "f32" if dtype == np.float32 else "f64"
    if units:
        assert len(kernel_calls["lstm_avx2_units_forward_f32"]) == 2
        assert len(kernel_calls["lstm_backward_units_run_f32"]) == 1
        assert f"lstm_forward_{sfx}" not in kernel_calls and f"lstm_backward_{sfx}" not in kernel_calls
    else:
        packed = dtype == np.float32 and T >= gemm.PACK_MIN_STEPS
        fused = packed and not split.endswith("unfused")  # the forward in lstm_fused_avx2.c, not the loop
        assert len(kernel_calls.get("lstm_avx2_fused_forward_f32", [])) == (2 if fused else 0)
        if fused:
            assert f"lstm_forward_{sfx}" not in kernel_calls
        else:
            assert [a is not None for a in kernel_calls[f"lstm_forward_{sfx}"]] == [packed] * len(
                kernel_calls[f"lstm_forward_{sfx}"])
        assert [a is not None for a in kernel_calls[f"lstm_backward_{sfx}"]] == [packed] * len(
            kernel_calls[f"lstm_backward_{sfx}"])


@avx2_only
def test_layer_passes_finite_differences(monkeypatch):
    # float64, so the loops of cells_generic.c with BLAS products (lstm_forward_f64 takes the new packed
    # argument, NULL); the float32 paths of this variant are held to the reference above
    monkeypatch.setattr(parallel, "_THREADS", 2)
    rng = np.random.default_rng(4)
    B, T, D, H = 6, 5, 3, 4
    layer = L.LSTM(H, return_sequences=True, dtype="float64")
    before = fast_lstm.CALLS.copy()
    report = check_layer(layer, rng.standard_normal((B, T, D)), mask=make_mask("holes", B, T, rng))
    assert report.ok, report
    assert (fast_lstm.CALLS - before)["backward"] >= 1


@avx2_only
def test_float32_layer_by_units_with_masks_and_dropout(monkeypatch):
    """The Keras-style layer, B = 1 (split by units by default) and a masked batch, float32, against the
    reference with the layer's own weights and dropout masks."""
    monkeypatch.setattr(parallel, "_THREADS", 2)
    rng = np.random.default_rng(7)
    for B, masking in ((1, "none"), (4, "post")):
        T, D, H = 12, 6, 48
        assert (fast_lstm.unit_parts(B, T, H, np.float32) is not None) == (B < 2 * parallel.MIN_ROWS_PER_THREAD)
        p = random_problem("lstm", B, T, D, H, seed=B, dtype=np.float32, scale=1.0 / np.sqrt(H + D))
        mask = make_mask(masking, B, T, rng)
        rmask = dropout_mask(B, H, rng, np.float32)
        ours = fast_lstm.lstm_forward(**p, mask=mask, recurrent_mask=rmask)
        ref = F.lstm_forward(**p, mask=mask, recurrent_mask=rmask)
        assert_close(f"B={B} hs", ours[0], ref[0], 1e-5)


@avx2_only
def test_own_gemm_only_for_small_step_products():
    # beyond AVX2_STEP_MAX multiply-adds per step and thread, NumPy's BLAS (measured faster there)
    small, large = np.zeros((128, 512), np.float32), np.zeros((256, 1024), np.float32)
    assert gemm.packed_for_steps(small, False, 10, rows=16) is not None  # 16 x 128 x 512
    assert gemm.packed_for_steps(large, False, 10, rows=32) is None  # 32 x 256 x 1024
    assert gemm.packed_for_steps(large, True, 10, rows=1) is not None
    assert gemm.packed_for_steps(small, False, 10) is None  # callers that do not say their rows: BLAS, as before
    assert gemm.packed_for_steps(small, False, gemm.PACK_MIN_STEPS - 1, rows=16) is None
    assert gemm.packed_for_steps(small.astype(np.float64), False, 10, rows=16) is None
