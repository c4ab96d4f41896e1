"""Masks and recurrent dropout in the C LSTM loops (issue 17) equal the reference.

Every call below is checked to have run in C (``lstmlab._fast.lstm.CALLS``, and the kernels of the split
it should take), then held to the NumPy reference: float64 to 1e-12, float32 to 1e-5. The masks include
an all-padded row, a length-1 row and a full row, both padding sides and holes in the middle.
"""
import os
import subprocess
import sys

import numpy as np
import pytest

import lstmlab
from helpers import assert_close, backward, random_problem
from lstmlab import _fast, gradcheck
from lstmlab import functional as F
from lstmlab import layers as L
from lstmlab._fast import lstm as fast_lstm
from lstmlab._fast import parallel, recurrent
from lstmlab.gradcheck import check_layer

TOL = {np.float64: 1e-12, np.float32: 1e-5}


def make_mask(kind: str, B: int, T: int, rng) -> np.ndarray | None:
    """(B, T) bool: row 0 all padding, row 1 one valid step, the last row all valid, the others random."""
    if kind == "none":
        return None
    if kind == "one":  # a single padded step: the weight gradients run on all rows (recurrent.COMPACT_BELOW)
        m = np.ones((B, T), bool)
        m[0, -1] = False
        return m
    lengths = rng.integers(1, T + 1, B)
    lengths[0], lengths[1], lengths[-1] = 0, 1, T
    steps = np.arange(T)[None]  # (1, T)
    if kind == "post":  # valid steps first, then padding (Keras's pad_sequences(padding="post"))
        return steps < lengths[:, None]
    if kind == "pre":  # padding first (pad_sequences' default)
        return steps >= (T - lengths)[:, None]
    m = rng.random((B, T)) < 0.6  # holes anywhere
    m[0], m[1], m[-1] = False, False, True
    m[1, T // 2] = True
    return m


def dropout_mask(B: int, H: int, rng, dtype, p: float = 0.3) -> np.ndarray:
    return ((rng.random((B, H)) >= p) / (1.0 - p)).astype(dtype)  # (B, H) as RNN._dropout_masks draws it


@pytest.fixture
def split_mode(request, monkeypatch):
    """How the loops split their work: by sequences over two threads, by hidden units, or one thread."""
    mode = request.param
    monkeypatch.setattr(parallel, "_THREADS", 1 if mode == "one-thread" else 2)
    monkeypatch.setattr(fast_lstm, "UNIT_SPLIT", "always" if mode == "units" else "never")
    return mode


@pytest.fixture
def kernel_calls(monkeypatch):
    """The names of the C entry points the LSTM fast path called, in order."""
    calls = []
    for name in ("lstm_forward_fused_run_f32", "lstm_backward_units_run_f32", "lstm_forward_f32",
                 "lstm_forward_f64", "lstm_backward_f32", "lstm_backward_f64"):
        real = getattr(_fast.KERNELS, name)
        monkeypatch.setattr(_fast.KERNELS, name, lambda *a, _n=name, _f=real: (calls.append(_n), _f(*a))[1])
    return calls


@pytest.fixture
def reference_only(monkeypatch):
    """Run everything on the NumPy reference in this process (what LSTMLAB_FAST=0 does at import)."""

    def use_reference():
        monkeypatch.setattr(_fast, "KERNELS", None)
        monkeypatch.setattr(_fast, "SGEMM", False)

    return use_reference


# -- the functional fast path against the reference -------------------------------------------------------
@pytest.mark.parametrize("split_mode", ["sequences", "units", "one-thread"], indirect=True)
@pytest.mark.parametrize("dropout", [False, True], ids=["no-dropout", "dropout"])
@pytest.mark.parametrize("masking", ["none", "post", "pre", "holes", "one"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("B,T,D,H", [(9, 7, 5, 40), (16, 12, 3, 33), (3, 2, 4, 5), (12, 9, 6, 17)])
def test_masks_and_dropout_equal_the_reference(split_mode, kernel_calls, dropout, masking, dtype, B, T, D, H):
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
    assert_close("hs", hs, ref_hs, tol)
    assert_close("h_T", h, ref_h, tol)
    assert_close("c_T", c, ref_c, tol)
    g = fast_lstm.lstm_backward(dhs, dh_T, dc_T, cache)
    ref = backward("lstm", dhs, [dh_T, dc_T], ref_cache)
    ours = dict(x=g.dx, kernel=g.dkernel, recurrent_kernel=g.drecurrent_kernel, bias=g.dbias, h0=g.dh0, c0=g.dc0)
    for name in ref:
        assert ours[name].dtype == dtype, name
        assert_close(f"d{name}", ours[name], ref[name], tol)
    if mask is not None:  # a padded step's input had no effect: exactly zero gradient
        assert np.all(g.dx[~mask] == 0)

    infer_hs, (infer_h, infer_c), none = fast_lstm.lstm_forward(**p, mask=mask, recurrent_mask=rmask,
                                                                 need_cache=False)
    assert none is None
    assert_close("hs without a cache", infer_hs, ref_hs, tol)
    assert_close("c_T without a cache", infer_c, ref_c, tol)

    # the C loops ran, for every call, in the split this test asked for
    calls = fast_lstm.CALLS - before
    assert calls["forward"] == 2 and calls["backward"] == 1
    assert calls["forward_mask"] == (0 if mask is None else 2) and calls["backward_mask"] == (mask is not None)
    assert calls["forward_dropout"] == (2 if dropout else 0) and calls["backward_dropout"] == dropout
    units = fast_lstm.unit_parts(B, T, H, dtype) is not None
    assert units == (split_mode == "units" and dtype == np.float32 and T >= 4 and H >= 32)
    assert ("lstm_backward_units_run_f32" in kernel_calls) == units
    fused = dtype == np.float32 and _fast.SGEMM and T >= 4
    assert ("lstm_forward_fused_run_f32" in kernel_calls) == fused
    if split_mode == "sequences" and not units:
        assert len(parallel.split(B)) == (2 if B >= 8 else 1)


@pytest.mark.parametrize("masking", ["post", "pre"])
def test_rows_are_sorted_so_padding_is_skipped(monkeypatch, masking):
    # Sorted longest first and dealt to the two threads in turn: each thread's rows still running at any step
    # of a pre- or post-padded batch are its first ones (so active_rows in cells.h spans no padding), and the
    # two threads get the same number of valid steps give or take one row.
    monkeypatch.setattr(parallel, "_THREADS", 2)
    B, T = 12, 10
    mask = make_mask(masking, B, T, np.random.default_rng(3))
    chunks = parallel.split(B)
    valid, order = recurrent.padded_rows(mask, B, T, chunks)
    assert sorted(order) == list(range(B)) and valid.dtype == np.uint8
    np.testing.assert_array_equal(valid, mask[order])
    lengths = valid.astype(np.int64).sum(axis=1)  # (B,) valid steps per row
    for b0, b1 in chunks:
        assert np.all(np.diff(lengths[b0:b1]) <= 0)  # longest first
        for t in range(T):
            running = np.flatnonzero(valid[b0:b1, t])
            assert np.array_equal(running, np.arange(len(running)))  # a prefix of the chunk
    work = [lengths[b0:b1].sum() for b0, b1 in chunks]
    assert abs(work[0] - work[1]) <= T
    assert recurrent.padded_rows(np.ones((B, T), bool), B, T, chunks) == (None, None)  # nothing padded


def test_masked_blend_without_sorting_equals_the_reference(monkeypatch):
    # SORT_ROWS = False (what bench_lstm.py measures as the "blend"): padded rows inside the product's range
    # are computed, then their state is carried; the result is the same.
    monkeypatch.setattr(recurrent, "SORT_ROWS", False)
    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64):
        p = random_problem("lstm", 10, 8, 4, 20, seed=1, dtype=dtype, scale=0.3)
        mask = make_mask("post", 10, 8, rng)
        hs, _, cache = fast_lstm.lstm_forward(**p, mask=mask)
        assert cache["order"] is None and cache["valid"] is not None
        ref_hs, _, ref_cache = F.lstm_forward(**p, mask=mask)
        assert_close("hs", hs, ref_hs, TOL[dtype])
        dhs = rng.standard_normal(hs.shape).astype(dtype)
        g = fast_lstm.lstm_backward(dhs, None, None, cache)
        assert_close("dx", g.dx, backward("lstm", dhs, [None, None], ref_cache)["x"], TOL[dtype])


# -- layers: Embedding(mask_zero), Masking, go_backwards, Bidirectional, recurrent dropout -----------------
def imdb_model(units: int, rng, recurrent_dropout: float = 0.0):
    """The IMDB shape in small: Embedding(mask_zero) -> Bidirectional(LSTM, sequences) -> Bidirectional(LSTM)."""
    model = lstmlab.Sequential([
        L.Embedding(30, 6, mask_zero=True),
        L.Bidirectional(L.LSTM(units, return_sequences=True, recurrent_dropout=recurrent_dropout)),
        L.Bidirectional(L.LSTM(units, recurrent_dropout=recurrent_dropout)),
        L.Dense(1, activation="sigmoid"),
    ])
    model.build((None, 11))
    model.set_weights([rng.uniform(-0.5, 0.5, w.shape).astype(np.float32) for w in model.get_weights()])
    return model


def padded_tokens(B: int, T: int, rng, padding: str) -> np.ndarray:
    lengths = rng.integers(1, T + 1, B)
    lengths[0] = 1
    return lstmlab.utils.pad_sequences([rng.integers(1, 30, n) for n in lengths], maxlen=T, padding=padding)


def train_step(model, x, y, seed):
    """Loss and weights after one SGD step (lr 1: the change is the gradient); dropout masks from ``seed``."""
    model.compile(lstmlab.optimizers.SGD(learning_rate=1.0), "binary_crossentropy")
    model.seed = seed  # the dropout masks are a function of (seed, step, layer)
    loss = model.train_on_batch(x, y)
    return float(np.asarray(loss).ravel()[0]), model.get_weights()


@pytest.mark.parametrize("padding", ["pre", "post"])
@pytest.mark.parametrize("recurrent_dropout", [0.0, 0.3], ids=["no-dropout", "dropout"])
def test_imdb_shape_model_equals_the_reference(monkeypatch, reference_only, padding, recurrent_dropout):
    monkeypatch.setattr(parallel, "_THREADS", 2)
    rng = np.random.default_rng(7)
    x = padded_tokens(16, 11, rng, padding)  # (16, 11): 16 rows split over two threads
    y = rng.integers(0, 2, (16, 1)).astype(np.float32)
    weights = imdb_model(5, rng, recurrent_dropout).get_weights()

    def run():
        model = imdb_model(5, np.random.default_rng(0), recurrent_dropout)
        model.set_weights(weights)
        out = model(x)
        return out, *train_step(model, x, y, seed=11)

    before = fast_lstm.CALLS.copy()
    out, loss, trained = run()
    calls = fast_lstm.CALLS - before
    # inference 4 directions, training 4 forward + 4 backward: all in C, all masked
    assert calls["forward_mask"] == 8 and calls["backward_mask"] == 4
    assert calls["backward_dropout"] == (4 if recurrent_dropout else 0)
    reference_only()
    ref_out, ref_loss, ref_trained = run()
    assert_close("outputs", out, ref_out, 1e-5)
    assert abs(loss - ref_loss) <= 1e-5 * (1 + abs(ref_loss))
    for k, (a, b) in enumerate(zip(trained, ref_trained)):
        assert_close(f"weight {k} after one step", a, b, 1e-5)


@pytest.mark.parametrize("go_backwards", [False, True])
def test_masking_layer_and_go_backwards_equal_the_reference(monkeypatch, reference_only, go_backwards):
    monkeypatch.setattr(parallel, "_THREADS", 2)
    rng = np.random.default_rng(1)
    B, T, D, H = 10, 9, 4, 20
    x = rng.standard_normal((B, T, D))
    mask = make_mask("holes", B, T, rng)
    x[~mask] = 0.0  # what Masking(mask_value=0) reads as padding
    dy = [rng.standard_normal((B, T, H)), rng.standard_normal((B, H)), rng.standard_normal((B, H))]
    states = [rng.uniform(-0.8, 0.8, (B, H)) for _ in range(2)]

    def run():
        masking = L.Masking(0.0, dtype="float64")
        layer = L.LSTM(H, return_sequences=True, return_state=True, go_backwards=go_backwards, dtype="float64")
        layer.build((None, T, D))
        layer.set_weights([np.random.default_rng(2).uniform(-0.4, 0.4, w.shape) for w in layer.get_weights()])
        m = masking.compute_mask(x, None)
        outs = layer(masking(x), training=True, mask=m, initial_state=states)
        dx = layer.backward(dy)
        return outs, dx, layer.grads, layer.initial_state_grads

    before = fast_lstm.CALLS.copy()
    ours = run()
    assert (fast_lstm.CALLS - before)["backward_mask"] == 1
    reference_only()
    ref = run()
    for name, a, b in zip(["outputs", "dx", "grads", "state grads"], ours, ref):
        for k, (u, v) in enumerate(zip(a if isinstance(a, list) else [a], b if isinstance(b, list) else [b])):
            assert_close(f"{name}[{k}]", u, v, 1e-12)


def test_fast_off_gives_the_reference_in_a_fresh_process(tmp_path):
    # LSTMLAB_FAST=0 at import: the masked, recurrent-dropout model runs on NumPy alone and gives what the C
    # path gives here (same weights, same tokens, same dropout seed).
    rng = np.random.default_rng(5)
    x = padded_tokens(12, 11, rng, "pre")
    y = rng.integers(0, 2, (12, 1)).astype(np.float32)
    model = imdb_model(4, rng, 0.25)
    np.savez(tmp_path / "case.npz", x=x, y=y, *model.get_weights())
    loss, trained = train_step(model, x, y, seed=3)
    code = (
        "import sys, numpy as np\n"
        "from lstmlab import _fast\n"
        "from test_fast_masks_dropout import imdb_model, train_step\n"
        "assert not _fast.available() and 'LSTMLAB_FAST=0' in _fast.REASON\n"
        f"case = np.load({str(tmp_path / 'case.npz')!r})\n"
        "model = imdb_model(4, np.random.default_rng(0), 0.25)\n"
        "model.set_weights([case[f'arr_{k}'] for k in range(len(model.get_weights()))])\n"
        "loss, trained = train_step(model, case['x'], case['y'], seed=3)\n"
        f"np.savez({str(tmp_path / 'ref.npz')!r}, loss, *trained)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "LSTMLAB_FAST": "0", "PYTHONPATH": os.path.dirname(__file__)})
    assert r.returncode == 0, r.stderr
    ref = np.load(tmp_path / "ref.npz")
    assert abs(loss - float(ref["arr_0"])) <= 1e-5
    for k, w in enumerate(trained):
        assert_close(f"weight {k} after one step", w, ref[f"arr_{k + 1}"], 1e-5)


# -- finite differences through the masked and the dropout fast paths (float64) -------------------------------
@pytest.mark.parametrize("masking", ["pre", "post", "holes"])
def test_masked_fast_path_passes_finite_differences(monkeypatch, masking):
    monkeypatch.setattr(parallel, "_THREADS", 2)
    rng = np.random.default_rng(4)
    B, T, D, H = 8, 6, 3, 5  # 8 rows: split over two threads
    layer = L.LSTM(H, return_sequences=True, return_state=True, dtype="float64")
    layer.build((None, T, D))
    layer.set_weights([rng.uniform(-0.6, 0.6, w.shape) for w in layer.get_weights()])
    x = rng.standard_normal((B, T, D))
    states = [rng.uniform(-0.8, 0.8, (B, H)) for _ in range(2)]
    before = fast_lstm.CALLS.copy()
    report = check_layer(layer, x, mask=make_mask(masking, B, T, rng), initial_state=states)
    assert report.ok, report
    calls = fast_lstm.CALLS - before
    assert calls["backward_mask"] >= 1 and calls["forward_mask"] == calls["forward"]


@pytest.mark.parametrize("masked", [False, True], ids=["unmasked", "masked"])
def test_recurrent_dropout_fast_path_passes_finite_differences(monkeypatch, masked):
    # The dropout masks are drawn from the layer's rng; reseeding it before every call fixes them, so the loss
    # is a function of the inputs and weights alone (as tests/test_cells_layers.py does).
    monkeypatch.setattr(parallel, "_THREADS", 2)
    rng = np.random.default_rng(6)
    B, T, D, H = 8, 5, 3, 6
    layer = L.LSTM(H, return_sequences=True, return_state=True, recurrent_dropout=0.4, dtype="float64")
    layer.build((None, T, D))
    layer.set_weights([rng.uniform(-0.6, 0.6, w.shape) for w in layer.get_weights()])
    x = rng.standard_normal((B, T, D))
    states = [rng.uniform(-0.8, 0.8, (B, H)) for _ in range(2)]
    mask = make_mask("pre", B, T, rng) if masked else None

    def run():
        layer.rng = np.random.default_rng(9)
        return layer(x, training=True, mask=mask, initial_state=states)

    before = fast_lstm.CALLS.copy()
    outs = run()
    dys = [rng.standard_normal(o.shape) for o in outs]
    dx = layer.backward(dys)
    calls = fast_lstm.CALLS - before
    assert calls["forward_dropout"] == 1 and calls["backward_dropout"] == 1
    assert calls["backward_mask"] == masked
    wrt = {"x": x, **{w.path: w.value for w in layer.weights},
           **{f"initial_state[{k}]": s for k, s in enumerate(states)}}
    analytic = {"x": dx, **{w.path: g for w, g in zip(layer.weights, layer.grads)},
                **{f"initial_state[{k}]": g for k, g in enumerate(layer.initial_state_grads)}}
    report = gradcheck(lambda: sum(float(np.sum(d * o)) for d, o in zip(dys, run())), wrt, analytic)
    assert report.ok, report
