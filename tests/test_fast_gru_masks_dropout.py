"""Masks and recurrent dropout in the C GRU loops (issue 17), both variants, equal the reference.

``reset_after=True`` is held to :mod:`lstmlab.functional.gru`; ``reset_after=False`` to its one-step math
(:mod:`lstmlab.functional.gru_reset_before`) run over the sequence by
:func:`lstmlab.functional.recurrence.recurrence_forward`, the generic loop. Every call below is checked to
have run in C (``lstmlab._fast.gru.CALLS`` and the C entry points called), then held to the reference:
float64 to 1e-12, float32 to 1e-5. The masks include an all-padded row, a length-1 row and a full row, both
padding sides and holes in the middle (``make_mask`` of the LSTM's tests). The GRU's loop splits the batch
over the threads (it has no split by units): both the two-thread split and one thread are run.
"""
import functools

import numpy as np
import pytest

import lstmlab
from helpers import assert_close, backward, random_problem
from lstmlab import _fast, gradcheck
from lstmlab import functional as F
from lstmlab import layers as L
from lstmlab._fast import gru as fast_gru
from lstmlab._fast import gru_reset_before as fast_rb
from lstmlab._fast import parallel
from lstmlab.functional import gru_reset_before as ref_rb
from lstmlab.functional.recurrence import recurrence_backward, recurrence_forward
from lstmlab.gradcheck import check_layer
from test_fast_masks_dropout import dropout_mask, make_mask, padded_tokens
from test_isa_variants import RUNNABLE, run_child

TOL = {np.float64: 1e-12, np.float32: 1e-5}
SHAPES = [(9, 7, 5, 40), (16, 12, 3, 33), (3, 2, 4, 5), (12, 9, 6, 17), (3, 7, 5, 40)]  # the last: split by units


@pytest.fixture
def reference_only(monkeypatch):
    """Run everything on the NumPy reference in this process (what LSTMLAB_FAST=0 does at import)."""

    def use_reference():
        monkeypatch.setattr(_fast, "KERNELS", None)
        monkeypatch.setattr(_fast, "SGEMM", False)

    return use_reference


@pytest.fixture
def threads(request, monkeypatch):
    """Two threads (the batch split in two when B >= 8) or one."""
    monkeypatch.setattr(parallel, "_THREADS", request.param)
    return request.param


@pytest.fixture
def kernel_calls(monkeypatch):
    """The names of the C entry points the GRU fast paths called, in order."""
    calls = []
    names = [f"{name}_{sfx}" for name in ("gru_forward", "gru_backward", "gru_rb_forward", "gru_rb_backward")
             for sfx in ("f32", "f64")]
    for name in names + ["gru_forward_fused_run_f32"]:
        real = getattr(_fast.KERNELS, name)
        short = name.replace("_f32", "").replace("_f64", "")
        monkeypatch.setattr(_fast.KERNELS, name, lambda *a, _n=short, _f=real: (calls.append(_n), _f(*a))[1])
    return calls


def reference_reset_before(p, mask, rmask):
    """``(hs, h_T, cache)`` of the reset_after=False reference: its step over the sequence."""
    step = functools.partial(ref_rb.gru_reset_before_step, kernel=p["kernel"], recurrent_kernel=p["recurrent_kernel"],
                             bias=p["bias"], recurrent_mask=rmask)
    hs, (h,), cache = recurrence_forward(step, p["x"], (p["h0"],), mask=mask)
    return hs, h, cache


def reference_reset_before_backward(dhs, dh_T, cache) -> dict:
    dx, (dh0,), (dkernel, drecurrent_kernel, dbias) = recurrence_backward(
        ref_rb.gru_reset_before_step_backward, dhs, (dh_T,), cache)
    return dict(x=dx, h0=dh0, kernel=dkernel, recurrent_kernel=drecurrent_kernel, bias=dbias)


def problem(reset_after: bool, B, T, D, H, dtype):
    p = random_problem("gru", B, T, D, H, seed=B + T + H, dtype=dtype, scale=1.0 / np.sqrt(H + D))
    if not reset_after:
        p["bias"] = p["bias"][0] + p["bias"][1]  # (3H,) one bias row
    return p


def run_both(reset_after, p, mask, rmask, dhs, dh_T, need_cache=True):
    """The fast path's forward (and backward with a cache) and the reference's, as dicts."""
    if reset_after:
        hs, h, cache = fast_gru.gru_forward(**p, mask=mask, recurrent_mask=rmask, need_cache=need_cache)
        ref_hs, ref_h, ref_cache = F.gru_forward(**p, mask=mask, recurrent_mask=rmask)
    else:
        hs, h, cache = fast_rb.gru_reset_before_forward(**p, mask=mask, recurrent_mask=rmask, need_cache=need_cache)
        ref_hs, ref_h, ref_cache = reference_reset_before(p, mask, rmask)
    ours, ref = dict(hs=hs, h_T=h), dict(hs=ref_hs, h_T=ref_h)
    if need_cache:
        assert cache["fast"] == ("gru" if reset_after else "gru_reset_before")
        g = (fast_gru.gru_backward if reset_after else fast_rb.gru_reset_before_backward)(dhs, dh_T, cache)
        ours.update(x=g.dx, h0=g.dh0, kernel=g.dkernel, recurrent_kernel=g.drecurrent_kernel, bias=g.dbias)
        ref.update(backward("gru", dhs, [dh_T], ref_cache) if reset_after
                   else reference_reset_before_backward(dhs, dh_T, ref_cache))
    else:
        assert cache is None
    return ours, ref


# -- the functional fast paths against the references --------------------------------------------------------
@pytest.mark.parametrize("threads", [2, 1], ids=["two-threads", "one-thread"], indirect=True)
@pytest.mark.parametrize("dropout", [False, True], ids=["no-dropout", "dropout"])
@pytest.mark.parametrize("masking", ["none", "post", "pre", "holes", "one"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("reset_after", [True, False], ids=["reset_after", "reset_before"])
@pytest.mark.parametrize("B,T,D,H", SHAPES)
def test_masks_and_dropout_equal_the_reference(threads, kernel_calls, reset_after, dropout, masking, dtype, B, T,
                                               D, H):
    rng = np.random.default_rng(B * 100 + T * 10 + H)
    p = problem(reset_after, B, T, D, H, dtype)
    mask = make_mask(masking, B, T, rng)
    rmask = dropout_mask(B, H, rng, dtype) if dropout else None
    dhs = rng.standard_normal((B, T, H)).astype(dtype)
    dh_T = rng.standard_normal((B, H)).astype(dtype)
    tol = TOL[dtype]
    before = fast_gru.CALLS.copy()

    ours, ref = run_both(reset_after, p, mask, rmask, dhs, dh_T)
    for name in ref:
        assert ours[name].dtype == dtype, name
        assert_close(name if name in ("hs", "h_T") else f"d{name}", ours[name], ref[name], tol)
    if mask is not None:  # a padded step's input had no effect: exactly zero gradient
        assert np.all(ours["x"][~mask] == 0)
    infer, _ = run_both(reset_after, p, mask, rmask, dhs, dh_T, need_cache=False)
    assert_close("hs without a cache", infer["hs"], ref["hs"], tol)
    assert_close("h_T without a cache", infer["h_T"], ref["h_T"], tol)

    # the C loops ran, for every call
    kind = "" if reset_after else "reset_before_"
    calls = fast_gru.CALLS - before
    assert calls[f"{kind}forward"] == 2 and calls[f"{kind}backward"] == 1
    assert calls[f"{kind}forward_mask"] == (0 if mask is None else 2)
    assert calls[f"{kind}backward_mask"] == (mask is not None)
    assert calls[f"{kind}forward_dropout"] == (2 if dropout else 0) and calls[f"{kind}backward_dropout"] == dropout
    loop = "gru" if reset_after else "gru_rb"
    chunks = len(parallel.split(B))
    assert chunks == (2 if threads == 2 and B >= 8 else 1)
    fused = reset_after and dtype == np.float32 and _fast.SGEMM and T >= 4  # the fused forward (gru_avx512.c)
    forward = ["gru_forward_fused_run"] if fused else [f"{loop}_forward"] * chunks
    assert kernel_calls == forward + [f"{loop}_backward"] * chunks + forward
    assert calls["forward_fused"] == (2 if fused else 0)
    by_units = fused and threads == 2 and B < 2 * parallel.MIN_ROWS_PER_THREAD and H >= 32  # fast_lstm's rule
    assert calls["forward_fused_units"] == (2 if by_units else 0)


@pytest.mark.parametrize("dropout", [False, True], ids=["no-dropout", "dropout"])
@pytest.mark.parametrize("masking", ["none", "post", "pre", "holes", "one"])
@pytest.mark.parametrize("B,T,D,H", [(9, 7, 5, 40), (16, 12, 3, 33)])
def test_unfused_float32_loop_equals_the_reference(monkeypatch, kernel_calls, dropout, masking, B, T, D, H):
    # FUSED = False: the float32 forward of gru_loops.c, each step one product on the packed own GEMM (where
    # it is built) and one pass over the units; what runs everywhere the fused loop does not.
    monkeypatch.setattr(parallel, "_THREADS", 2)
    monkeypatch.setattr(fast_gru, "FUSED", False)
    rng = np.random.default_rng(B + T)
    p = problem(True, B, T, D, H, np.float32)
    ours, ref = run_both(True, p, make_mask(masking, B, T, rng), dropout_mask(B, H, rng, np.float32) if dropout
                         else None, rng.standard_normal((B, T, H)).astype(np.float32), None)
    for name in ref:
        assert_close(name, ours[name], ref[name], 1e-5)
    assert "gru_forward_fused_run" not in kernel_calls and kernel_calls.count("gru_forward") == 2


@pytest.mark.parametrize("reset_after", [True, False], ids=["reset_after", "reset_before"])
def test_one_step_and_uncovered_calls(monkeypatch, reset_after):
    # One step (what RNN.step runs; BLAS per step, a GEMV for one sequence) runs in C too; a relu candidate
    # is not covered and runs the reference, counting nothing.
    monkeypatch.setattr(parallel, "_THREADS", 2)
    rng = np.random.default_rng(2)
    for B in (1, 9):
        p = problem(reset_after, B, 1, 4, 6, np.float64)
        ours, ref = run_both(reset_after, p, make_mask("one", B, 1, rng) if B > 1 else None,
                             dropout_mask(B, 6, rng, np.float64), rng.standard_normal((B, 1, 6)), None)
        for name in ref:
            assert_close(name, ours[name], ref[name], 1e-12)
    before = fast_gru.CALLS.copy()
    p = problem(reset_after, 3, 4, 2, 5, np.float64)
    forward = fast_gru.gru_forward if reset_after else fast_rb.gru_reset_before_forward
    hs, _, cache = forward(**p, activation="relu")
    assert cache.get("fast") is None and fast_gru.CALLS == before
    ref_hs = (F.gru_forward(**p, activation="relu")[0] if reset_after
              else recurrence_forward(functools.partial(ref_rb.gru_reset_before_step, kernel=p["kernel"],
                                                        recurrent_kernel=p["recurrent_kernel"], bias=p["bias"],
                                                        activation="relu"), p["x"], (p["h0"],))[0])
    assert_close("relu hs", hs, ref_hs, 1e-12)
    g = (fast_gru.gru_backward if reset_after else fast_rb.gru_reset_before_backward)(np.ones_like(hs), None, cache)
    assert g.dx.shape == p["x"].shape and np.all(np.isfinite(g.dkernel))


# -- layers: Embedding(mask_zero) + Bidirectional, Masking + go_backwards, against the reference -------------
def imdb_gru_model(units: int, rng, reset_after: bool, recurrent_dropout: float = 0.0):
    """The IMDB shape in small, with GRUs: Embedding(mask_zero) -> Bidirectional(GRU, sequences) ->
    Bidirectional(GRU) -> Dense(sigmoid)."""
    model = lstmlab.Sequential([
        L.Embedding(30, 6, mask_zero=True),
        L.Bidirectional(L.GRU(units, return_sequences=True, reset_after=reset_after,
                              recurrent_dropout=recurrent_dropout)),
        L.Bidirectional(L.GRU(units, reset_after=reset_after, recurrent_dropout=recurrent_dropout)),
        L.Dense(1, activation="sigmoid"),
    ])
    model.build((None, 11))
    model.set_weights([rng.uniform(-0.5, 0.5, w.shape).astype(np.float32) for w in model.get_weights()])
    return model


@pytest.mark.parametrize("reset_after", [True, False], ids=["reset_after", "reset_before"])
@pytest.mark.parametrize("padding", ["pre", "post"])
@pytest.mark.parametrize("recurrent_dropout", [0.0, 0.3], ids=["no-dropout", "dropout"])
def test_imdb_shape_gru_model_equals_the_reference(monkeypatch, reference_only, reset_after, padding,
                                                   recurrent_dropout):
    monkeypatch.setattr(parallel, "_THREADS", 2)
    rng = np.random.default_rng(7)
    x = padded_tokens(16, 11, rng, padding)  # (16, 11): 16 rows split over two threads
    y = rng.integers(0, 2, (16, 1)).astype(np.float32)
    weights = imdb_gru_model(5, rng, reset_after, recurrent_dropout).get_weights()

    def run():
        model = imdb_gru_model(5, np.random.default_rng(0), reset_after, recurrent_dropout)
        model.set_weights(weights)
        out = model(x)
        model.compile(lstmlab.optimizers.SGD(learning_rate=1.0), "binary_crossentropy")
        model.seed = 11  # the dropout masks are a function of (seed, step, layer)
        loss = float(np.asarray(model.train_on_batch(x, y)).ravel()[0])
        return out, loss, model.get_weights()

    before = fast_gru.CALLS.copy()
    out, loss, trained = run()
    calls = fast_gru.CALLS - before
    kind = "" if reset_after else "reset_before_"
    # inference 4 directions, training 4 forward + 4 backward: all in C, all masked
    assert calls[f"{kind}forward_mask"] == 8 and calls[f"{kind}backward_mask"] == 4
    assert calls[f"{kind}backward_dropout"] == (4 if recurrent_dropout else 0)
    reference_only()
    ref_out, ref_loss, ref_trained = run()
    assert fast_gru.CALLS - before == calls  # the reference run counted nothing
    assert_close("outputs", out, ref_out, 1e-5)
    assert abs(loss - ref_loss) <= 1e-5 * (1 + abs(ref_loss))
    for k, (a, b) in enumerate(zip(trained, ref_trained)):
        assert_close(f"weight {k} after one step", a, b, 1e-5)


@pytest.mark.parametrize("reset_after", [True, False], ids=["reset_after", "reset_before"])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_masking_layer_and_go_backwards_equal_the_reference(monkeypatch, reference_only, reset_after, go_backwards):
    monkeypatch.setattr(parallel, "_THREADS", 2)
    rng = np.random.default_rng(1)
    B, T, D, H = 10, 9, 4, 20
    x = rng.standard_normal((B, T, D))
    mask = make_mask("holes", B, T, rng)
    x[~mask] = 0.0  # what Masking(mask_value=0) reads as padding
    dy = [rng.standard_normal((B, T, H)), rng.standard_normal((B, H))]
    states = [rng.uniform(-0.8, 0.8, (B, H))]

    def run():
        masking = L.Masking(0.0, dtype="float64")
        layer = L.GRU(H, return_sequences=True, return_state=True, go_backwards=go_backwards,
                      reset_after=reset_after, dtype="float64")
        layer.build((None, T, D))
        layer.set_weights([np.random.default_rng(2).uniform(-0.4, 0.4, w.shape) for w in layer.get_weights()])
        outs = layer(masking(x), training=True, mask=masking.compute_mask(x, None), initial_state=states)
        dx = layer.backward(dy)
        return outs, dx, layer.grads, layer.initial_state_grads

    before = fast_gru.CALLS.copy()
    ours = run()
    assert (fast_gru.CALLS - before)["reset_before_backward_mask" if not reset_after else "backward_mask"] == 1
    reference_only()
    ref = run()
    for name, a, b in zip(["outputs", "dx", "grads", "state grads"], ours, ref):
        for k, (u, v) in enumerate(zip(a if isinstance(a, list) else [a], b if isinstance(b, list) else [b])):
            assert_close(f"{name}[{k}]", u, v, 1e-12)


# -- finite differences through the masked and the dropout fast paths (float64) -----------------------------
@pytest.mark.parametrize("reset_after", [True, False], ids=["reset_after", "reset_before"])
@pytest.mark.parametrize("masking", ["pre", "post", "holes"])
def test_masked_fast_path_passes_finite_differences(monkeypatch, reset_after, masking):
    monkeypatch.setattr(parallel, "_THREADS", 2)
    rng = np.random.default_rng(4)
    B, T, D, H = 8, 6, 3, 5  # 8 rows: split over two threads
    layer = L.GRU(H, return_sequences=True, return_state=True, reset_after=reset_after, dtype="float64")
    layer.build((None, T, D))
    layer.set_weights([rng.uniform(-0.6, 0.6, w.shape) for w in layer.get_weights()])
    x = rng.standard_normal((B, T, D))
    states = [rng.uniform(-0.8, 0.8, (B, H))]
    before = fast_gru.CALLS.copy()
    report = check_layer(layer, x, mask=make_mask(masking, B, T, rng), initial_state=states)
    assert report.ok, report
    calls = fast_gru.CALLS - before
    kind = "" if reset_after else "reset_before_"
    assert calls[f"{kind}backward_mask"] >= 1 and calls[f"{kind}forward_mask"] == calls[f"{kind}forward"] >= 1


@pytest.mark.parametrize("reset_after", [True, False], ids=["reset_after", "reset_before"])
@pytest.mark.parametrize("masked", [False, True], ids=["unmasked", "masked"])
def test_recurrent_dropout_fast_path_passes_finite_differences(monkeypatch, reset_after, masked):
    # The dropout masks are drawn from the layer's rng; reseeding it before every call fixes them, so the loss
    # is a function of the inputs and weights alone.
    monkeypatch.setattr(parallel, "_THREADS", 2)
    rng = np.random.default_rng(6)
    B, T, D, H = 8, 5, 3, 6
    layer = L.GRU(H, return_sequences=True, return_state=True, recurrent_dropout=0.4, reset_after=reset_after,
                  dtype="float64")
    layer.build((None, T, D))
    layer.set_weights([rng.uniform(-0.6, 0.6, w.shape) for w in layer.get_weights()])
    x = rng.standard_normal((B, T, D))
    states = [rng.uniform(-0.8, 0.8, (B, H))]
    mask = make_mask("pre", B, T, rng) if masked else None

    def run():
        layer.rng = np.random.default_rng(9)
        return layer(x, training=True, mask=mask, initial_state=states)

    before = fast_gru.CALLS.copy()
    outs = run()
    dys = [rng.standard_normal(o.shape) for o in outs]
    dx = layer.backward(dys)
    calls = fast_gru.CALLS - before
    kind = "" if reset_after else "reset_before_"
    assert calls[f"{kind}forward_dropout"] == 1 and calls[f"{kind}backward_dropout"] == 1
    assert calls[f"{kind}backward_mask"] == masked
    wrt = {"x": x, **{w.path: w.value for w in layer.weights}, "initial_state[0]": states[0]}
    analytic = {"x": dx, **{w.path: g for w, g in zip(layer.weights, layer.grads)},
                "initial_state[0]": layer.initial_state_grads[0]}
    report = gradcheck(lambda: sum(float(np.sum(d * o)) for d, o in zip(dys, run())), wrt, analytic)
    assert report.ok, report


# -- every kernel variant this machine runs ---------------------------------------------------------------------
def child_check() -> None:
    """Run in a subprocess with LSTMLAB_ISA set: both GRU variants, masked and with dropout, both dtypes, on
    one thread and two, equal the reference."""
    rng = np.random.default_rng(0)
    for threads in (1, 2):
        parallel._THREADS = threads
        for dtype in (np.float64, np.float32):
            for reset_after in (True, False):
                for B, T, D, H in [(1, 1, 3, 5), (9, 5, 7, 33)]:
                    p = problem(reset_after, B, T, D, H, dtype)
                    ours, ref = run_both(reset_after, p, make_mask("holes", B, T, rng) if B > 2 else None,
                                         dropout_mask(B, H, rng, dtype), rng.standard_normal((B, T, H)).astype(dtype),
                                         rng.standard_normal((B, H)).astype(dtype))
                    for name in ref:
                        assert_close(f"{_fast.ISA} {name}", ours[name], ref[name], TOL[dtype])
    assert fast_gru.CALLS["forward"] and fast_gru.CALLS["reset_before_backward_mask"]
    print("checked", _fast.ISA)


@pytest.mark.parametrize("isa", RUNNABLE)
def test_every_variant_equals_the_reference(isa):
    r = run_child(isa, "import test_fast_gru_masks_dropout as t; t.child_check()")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"checked {isa}"
