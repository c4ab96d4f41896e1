"""The simple RNN's C time loop (issue 17: ``rnn_loop.c`` through :mod:`lstmlab._fast.rnn`) equals the reference.

tanh and relu, with and without masks (an all-padded row, a length-1 row, both padding sides, holes) and
recurrent dropout, with and without a cache, on two threads and one: float64 to 1e-12, float32 to 1e-5
against :mod:`lstmlab.functional.rnn`; every call checked to have run in C (``lstmlab._fast.rnn.CALLS``).
Then the SimpleRNN layer against the reference path, finite differences through the masked and dropout C
paths, and every kernel variant this machine runs.
"""
import numpy as np
import pytest

from helpers import assert_close, backward, random_problem
from lstmlab import _fast, gradcheck
from lstmlab import functional as F
from lstmlab import layers as L
from lstmlab._fast import parallel
from lstmlab._fast import rnn as fast_rnn
from lstmlab.gradcheck import check_layer
from test_fast_masks_dropout import dropout_mask, make_mask
from test_isa_variants import RUNNABLE, run_child

TOL = {np.float64: 1e-12, np.float32: 1e-5}


@pytest.fixture
def reference_only(monkeypatch):
    """Run everything on the NumPy reference in this process (what LSTMLAB_FAST=0 does at import)."""

    def use_reference():
        monkeypatch.setattr(_fast, "KERNELS", None)
        monkeypatch.setattr(_fast, "SGEMM", False)

    return use_reference


def run_both(p, activation, mask, rmask, dhs, dh_T, need_cache=True):
    """The fast path's results and the reference's, as dicts (gradients only with a cache)."""
    hs, h, cache = fast_rnn.rnn_forward(**p, activation=activation, mask=mask, recurrent_mask=rmask,
                                        need_cache=need_cache)
    ref_hs, ref_h, ref_cache = F.rnn_forward(**p, activation=activation, mask=mask, recurrent_mask=rmask)
    ours, ref = dict(hs=hs, h_T=h), dict(hs=ref_hs, h_T=ref_h)
    if need_cache:
        assert cache["fast"] == "rnn"
        g = fast_rnn.rnn_backward(dhs, dh_T, cache)
        ours.update(x=g.dx, h0=g.dh0, kernel=g.dkernel, recurrent_kernel=g.drecurrent_kernel, bias=g.dbias)
        ref.update(backward("rnn", dhs, [dh_T], ref_cache))
    else:
        assert cache is None
    return ours, ref


@pytest.mark.parametrize("threads", [2, 1], ids=["two-threads", "one-thread"])
@pytest.mark.parametrize("dropout", [False, True], ids=["no-dropout", "dropout"])
@pytest.mark.parametrize("masking", ["none", "post", "pre", "holes", "one"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("B,T,D,H", [(9, 7, 5, 40), (3, 2, 4, 5), (12, 9, 6, 17)])
def test_rnn_loop_equals_the_reference(monkeypatch, threads, dropout, masking, dtype, activation, B, T, D, H):
    monkeypatch.setattr(parallel, "_THREADS", threads)
    rng = np.random.default_rng(B * 100 + T * 10 + H)
    p = random_problem("rnn", B, T, D, H, seed=B + T + H, dtype=dtype, scale=1.0 / np.sqrt(H + D))
    mask = make_mask(masking, B, T, rng)
    rmask = dropout_mask(B, H, rng, dtype) if dropout else None
    dhs = rng.standard_normal((B, T, H)).astype(dtype)
    dh_T = rng.standard_normal((B, H)).astype(dtype)
    tol = TOL[dtype]
    before = fast_rnn.CALLS.copy()

    ours, ref = run_both(p, activation, mask, rmask, dhs, dh_T)
    for name in ref:
        assert ours[name].dtype == dtype, name
        assert_close(name, ours[name], ref[name], tol)
    if mask is not None:  # a padded step's input had no effect: exactly zero gradient
        assert np.all(ours["x"][~mask] == 0)
    infer, _ = run_both(p, activation, mask, rmask, dhs, dh_T, need_cache=False)
    assert_close("hs without a cache", infer["hs"], ref["hs"], tol)

    calls = fast_rnn.CALLS - before
    assert calls["forward"] == 2 and calls["backward"] == 1
    assert calls["forward_mask"] == (0 if mask is None else 2) and calls["backward_mask"] == (mask is not None)
    assert calls["forward_dropout"] == (2 if dropout else 0) and calls["backward_dropout"] == dropout


def test_uncovered_activation_runs_the_reference():
    p = random_problem("rnn", 3, 4, 2, 5)
    before = fast_rnn.CALLS.copy()
    hs, h, cache = fast_rnn.rnn_forward(**p, activation="sigmoid")
    assert cache.get("fast") is None and fast_rnn.CALLS == before
    assert_close("sigmoid hs", hs, F.rnn_forward(**p, activation="sigmoid")[0], 1e-12)
    g = fast_rnn.rnn_backward(np.ones_like(hs), None, cache)
    assert_close("sigmoid dx", g.dx, backward("rnn", np.ones_like(hs), [None], cache)["x"], 1e-12)


@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_simple_rnn_layer_equals_the_reference(monkeypatch, reference_only, activation, go_backwards):
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
        layer = L.SimpleRNN(H, activation=activation, return_sequences=True, return_state=True,
                            go_backwards=go_backwards, recurrent_dropout=0.25, dtype="float64")
        layer.build((None, T, D))
        layer.set_weights([np.random.default_rng(2).uniform(-0.4, 0.4, w.shape) for w in layer.get_weights()])
        layer.rng = np.random.default_rng(5)
        outs = layer(masking(x), training=True, mask=masking.compute_mask(x, None), initial_state=states)
        dx = layer.backward(dy)
        return outs, dx, layer.grads, layer.initial_state_grads

    before = fast_rnn.CALLS.copy()
    ours = run()
    calls = fast_rnn.CALLS - before
    assert calls["backward_mask"] == 1 and calls["backward_dropout"] == 1
    reference_only()
    ref = run()
    for name, a, b in zip(["outputs", "dx", "grads", "state grads"], ours, ref):
        for k, (u, v) in enumerate(zip(a if isinstance(a, list) else [a], b if isinstance(b, list) else [b])):
            assert_close(f"{name}[{k}]", u, v, 1e-12)


@pytest.mark.parametrize("masking", ["pre", "post", "holes"])
def test_masked_fast_path_passes_finite_differences(monkeypatch, masking):
    monkeypatch.setattr(parallel, "_THREADS", 2)
    rng = np.random.default_rng(4)
    B, T, D, H = 8, 6, 3, 5
    layer = L.SimpleRNN(H, return_sequences=True, return_state=True, dtype="float64")
    layer.build((None, T, D))
    layer.set_weights([rng.uniform(-0.6, 0.6, w.shape) for w in layer.get_weights()])
    before = fast_rnn.CALLS.copy()
    report = check_layer(layer, rng.standard_normal((B, T, D)), mask=make_mask(masking, B, T, rng),
                         initial_state=[rng.uniform(-0.8, 0.8, (B, H))])
    assert report.ok, report
    calls = fast_rnn.CALLS - before
    assert calls["backward_mask"] >= 1 and calls["forward_mask"] == calls["forward"] >= 1


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_recurrent_dropout_fast_path_passes_finite_differences(monkeypatch, activation):
    monkeypatch.setattr(parallel, "_THREADS", 2)
    rng = np.random.default_rng(6)
    B, T, D, H = 8, 5, 3, 6
    layer = L.SimpleRNN(H, activation=activation, return_sequences=True, return_state=True, recurrent_dropout=0.4,
                        dtype="float64")
    layer.build((None, T, D))
    layer.set_weights([rng.uniform(-0.6, 0.6, w.shape) for w in layer.get_weights()])
    x = rng.standard_normal((B, T, D))
    states = [rng.uniform(-0.8, 0.8, (B, H))]
    mask = make_mask("post", B, T, rng)

    def run():
        layer.rng = np.random.default_rng(9)
        return layer(x, training=True, mask=mask, initial_state=states)

    before = fast_rnn.CALLS.copy()
    outs = run()
    dys = [rng.standard_normal(o.shape) for o in outs]
    dx = layer.backward(dys)
    calls = fast_rnn.CALLS - before
    assert calls["forward_dropout"] == 1 and calls["backward_dropout"] == 1 and calls["backward_mask"] == 1
    wrt = {"x": x, **{w.path: w.value for w in layer.weights}, "initial_state[0]": states[0]}
    analytic = {"x": dx, **{w.path: g for w, g in zip(layer.weights, layer.grads)},
                "initial_state[0]": layer.initial_state_grads[0]}
    report = gradcheck(lambda: sum(float(np.sum(d * o)) for d, o in zip(dys, run())), wrt, analytic)
    assert report.ok, report


def child_check() -> None:
    """Run in a subprocess with LSTMLAB_ISA set: both activations, masked and with dropout, both dtypes."""
    rng = np.random.default_rng(0)
    for threads in (1, 2):
        parallel._THREADS = threads
        for dtype in (np.float64, np.float32):
            for activation in ("tanh", "relu"):
                for B, T, D, H in [(1, 1, 3, 5), (9, 5, 7, 33)]:
                    p = random_problem("rnn", B, T, D, H, dtype=dtype, scale=0.3)
                    ours, ref = run_both(p, activation, make_mask("holes", B, T, rng) if B > 2 else None,
                                         dropout_mask(B, H, rng, dtype), rng.standard_normal((B, T, H)).astype(dtype),
                                         rng.standard_normal((B, H)).astype(dtype))
                    for name in ref:
                        assert_close(f"{_fast.ISA} {name}", ours[name], ref[name], TOL[dtype])
    assert fast_rnn.CALLS["backward_mask"] and fast_rnn.CALLS["forward_dropout"]
    print("checked", _fast.ISA)


@pytest.mark.parametrize("isa", RUNNABLE)
def test_every_variant_equals_the_reference(isa):
    r = run_child(isa, "import test_fast_rnn_loop as t; t.child_check()")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"checked {isa}"
