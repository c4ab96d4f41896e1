"""The projection LSTM's C time loop (issue 17: ``projection_loop.c`` through :mod:`lstmlab._fast.projection`)
equals the reference, the RNN layer's generic loop over :mod:`lstmlab.functional.projection_lstm`'s step.

Through ``RNN(LSTMCell(H, proj_size=P))`` with random weights, biases, projection and initial states: outputs,
final states (h (B, P), c (B, H)), dx, every weight gradient (the projection kernel's included) and the
initial-state gradients, with and without masks (an all-padded row, a length-1 row, both padding sides, holes,
and a single padded step, which keeps every row in the weight-gradient GEMMs) and recurrent dropout, with a
cache (training) and without (inference), on two threads and one: float64 to 1e-12, float32 to 1e-5. Every
fast call is checked to have run in C (``lstmlab._fast.projection.CALLS``). Then the calls without per-step
output gradients, finite differences through the C path and every kernel variant this machine runs.
"""
import numpy as np
import pytest

from lstmlab import _fast
from lstmlab import layers as L
from lstmlab._fast import parallel
from lstmlab._fast import projection as fast_projection
from test_fast_masks_dropout import make_mask
from test_isa_variants import RUNNABLE

import cell_loop_harness as harness
from cell_loop_harness import TOL, assert_all_close



def make_layer(D, H, P, T, dtype, seed, recurrent_dropout=0.0, use_bias=True, **rnn):
    rnn = {"return_sequences": True, "return_state": True, **rnn}
    layer = L.RNN(L.LSTMCell(H, proj_size=P, recurrent_dropout=recurrent_dropout, use_bias=use_bias, dtype=dtype),
                  dtype=dtype, **rnn)
    layer.build((None, T, D))
    rng = np.random.default_rng(seed)
    layer.set_weights([rng.uniform(-0.5, 0.5, w.shape).astype(dtype) for w in layer.get_weights()])
    return layer


def problem(B, T, D, H, P, dtype, masking, rng):
    """(x, mask, initial states [h0 (B, P), c0 (B, H)], upstream [dhs (B, T, P), dh_T (B, P), dc_T (B, H)])."""
    x = rng.standard_normal((B, T, D)).astype(dtype)
    mask = make_mask(masking, B, T, rng) if B > 2 else None
    states = [rng.uniform(-0.8, 0.8, (B, n)).astype(dtype) for n in (P, H)]
    dys = [rng.standard_normal(s).astype(dtype) for s in [(B, T, P), (B, P), (B, H)]]
    return x, mask, states, dys


def both_paths(monkeypatch, layer, *args, training=True):
    return harness.both_paths(monkeypatch, fast_projection, layer, *args, training=training)


# (B, T, D, H, P): a batch split over the threads with ragged 16-float vectors (H = 17, 4H = 68), one
# sequence (the products are GEMVs), two steps (BLAS per step, no packing), P = 1, and H = 40 (the packed
# own GEMM on float32 with AVX-512, T >= 4)
SHAPES = [(9, 7, 5, 40, 13, 0.0, True), (3, 2, 4, 5, 3, 0.3, False), (12, 9, 6, 17, 1, 0.3, True),
          (1, 4, 3, 8, 5, 0.0, True), (10, 6, 4, 33, 16, 0.3, True)]


@pytest.mark.parametrize("threads", [2, 1], ids=["two-threads", "one-thread"])
@pytest.mark.parametrize("masking", ["none", "post", "pre", "holes", "one"])  # "one": every row in the GEMMs
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("B,T,D,H,P,dropout,use_bias", SHAPES)
def test_c_loop_equals_the_generic_loop(monkeypatch, threads, masking, dtype, B, T, D, H, P, dropout, use_bias):
    monkeypatch.setattr(parallel, "_THREADS", threads)
    rng = np.random.default_rng(B * 100 + T * 10 + H)
    layer = make_layer(D, H, P, T, dtype, seed=B + T + H, recurrent_dropout=dropout, use_bias=use_bias)
    x, mask, states, dys = problem(B, T, D, H, P, dtype, masking, rng)

    ours, ref, calls = both_paths(monkeypatch, layer, x, mask, states, dys)
    assert_all_close(ours, ref, TOL[dtype])
    assert [o.shape for o in ours[0]] == [(B, T, P), (B, P), (B, H)]
    assert len(ours[2]) == len(layer.weights) == 3 + use_bias  # kernel, recurrent, (bias), projection
    assert ours[2][-1].shape == (H, P)
    assert calls["forward_mask"] == calls["backward_mask"] == (mask is not None)
    assert calls["forward_dropout"] == calls["backward_dropout"] == (dropout > 0)
    if mask is not None:  # a padded step's input had no effect: exactly zero gradient
        assert np.all(ours[1][~mask] == 0)

    infer, ref_infer, _ = both_paths(monkeypatch, layer, x, mask, states, dys, training=False)
    assert_all_close(infer, ref_infer, TOL[dtype])


@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_last_output_only(monkeypatch, dtype, go_backwards):
    """return_sequences=False: no per-step output gradient reaches the loop (dhs is NULL in C)."""
    B, T, D, H, P = 8, 6, 4, 12, 5
    rng = np.random.default_rng(7)
    layer = make_layer(D, H, P, T, dtype, seed=2, recurrent_dropout=0.2, return_sequences=False,
                       return_state=False, go_backwards=go_backwards)
    x, mask, states, _ = problem(B, T, D, H, P, dtype, "post", rng)
    dy = rng.standard_normal((B, P)).astype(dtype)
    ours, ref, _ = both_paths(monkeypatch, layer, x, mask, states, dy)
    assert_all_close(ours, ref, TOL[dtype])


def test_uncovered_calls_run_the_generic_loop():
    layer = L.RNN(L.LSTMCell(4, proj_size=2, activation="relu"), return_sequences=True)
    before = fast_projection.CALLS.copy()
    y = layer(np.ones((2, 3, 2), np.float32), training=True)
    assert y.shape == (2, 3, 2) and fast_projection.CALLS == before
    assert not fast_projection.covers("relu", "sigmoid", np.float32)
    assert not fast_projection.covers("tanh", "hard_sigmoid", np.float32)
    assert not fast_projection.covers("tanh", "sigmoid", np.float16)
    assert fast_projection.covers("tanh", "sigmoid", np.float64) == _fast.available()


def test_plain_lstm_does_not_take_the_projection_loop():
    layer = L.RNN(L.LSTMCell(6), return_sequences=True)
    before = fast_projection.CALLS.copy()
    layer(np.ones((3, 4, 2), np.float32), training=True)
    layer.backward(np.ones((3, 4, 6), np.float32))
    assert fast_projection.CALLS == before


@pytest.mark.parametrize("masking,dropout", [("none", 0.0), ("holes", 0.0), ("pre", 0.4)])
def test_c_loop_passes_finite_differences(monkeypatch, masking, dropout):
    monkeypatch.setattr(parallel, "_THREADS", 2)
    rng = np.random.default_rng(4)
    B, T, D, H, P = 8, 5, 3, 6, 4
    layer = make_layer(D, H, P, T, "float64", seed=11, recurrent_dropout=dropout)
    # the same dropout masks at every call (a fresh rng of the same seed), so the loss is a function of the
    # inputs and weights alone
    monkeypatch.setattr(layer, "_dropout_rng", lambda: np.random.default_rng(9))
    calls = harness.gradcheck_calls(fast_projection, layer, rng.standard_normal((B, T, D)),
                                    mask=make_mask(masking, B, T, rng),
                                    initial_state=[rng.uniform(-0.8, 0.8, (B, n)) for n in (P, H)])
    assert calls["backward_mask"] == (calls["backward"] if masking != "none" else 0)
    assert calls["backward_dropout"] == (calls["backward"] if dropout else 0)


def child_check() -> None:
    """Run in a subprocess with LSTMLAB_ISA set: masked, with dropout, both dtypes, both thread counts."""
    def check(mp, dtype, rng, names):
        for B, T, D, H, P in [(9, 6, 7, 33, 10), (1, 5, 3, 20, 7)]:
            layer = make_layer(D, H, P, T, dtype, seed=3, recurrent_dropout=0.3)
            ours, ref, _ = both_paths(mp, layer, *problem(B, T, D, H, P, dtype, "holes", rng))
            assert_all_close(ours, ref, TOL[dtype], names=names)

    harness.variant_check(check)


@pytest.mark.parametrize("isa", RUNNABLE)
def test_every_variant_equals_the_reference(isa):
    harness.assert_variant_ran(isa, "test_fast_projection")
