"""The layer-norm LSTM's C time loop (issue 17: ``layernorm_loop.c`` through :mod:`lstmlab._fast.layernorm`)
equals the reference, the RNN layer's generic loop over :mod:`lstmlab.functional.layernorm_lstm`'s step.

Through ``RNN(LayerNormLSTMCell(...))`` with random weights, biases, norm gammas and betas and initial states:
outputs, final states, dx, every weight gradient (the six norm weights included) and the initial-state
gradients, with and without masks (an all-padded row, a length-1 row, both padding sides, holes, one padded
step) and recurrent dropout, with and without a bias, at the default and other ``norm_epsilon``, with a cache
(training) and without (inference), on two threads and one: float64 to 1e-12, float32 to 1e-5. Every fast call
is checked to have run in C (``lstmlab._fast.layernorm.CALLS``). Then finite differences through the C path and
every kernel variant this machine runs.
"""
import numpy as np
import pytest

from lstmlab import _fast
from lstmlab import layers as L
from lstmlab._fast import layernorm as fast_layernorm
from lstmlab._fast import parallel
from test_fast_masks_dropout import make_mask
from test_isa_variants import RUNNABLE

import cell_loop_harness as harness
from cell_loop_harness import TOL, assert_all_close



def make_layer(D, H, T, dtype, seed, recurrent_dropout=0.0, use_bias=True, norm_epsilon=1e-3, **rnn_args):
    cell = L.LayerNormLSTMCell(H, recurrent_dropout=recurrent_dropout, use_bias=use_bias, norm_epsilon=norm_epsilon,
                               dtype=dtype)
    layer = L.RNN(cell, **{"return_sequences": True, "return_state": True, **rnn_args}, dtype=dtype)
    layer.build((None, T, D))
    rng = np.random.default_rng(seed)
    # random gammas too (not the ones they start at): a gradient that ignored gamma would still pass with ones
    layer.set_weights([rng.uniform(-0.5, 0.5, w.shape).astype(dtype) for w in layer.get_weights()])
    return layer


def both_paths(monkeypatch, layer, *args, training=True):
    return harness.both_paths(monkeypatch, fast_layernorm, layer, *args, training=training)


@pytest.mark.parametrize("threads", [2, 1], ids=["two-threads", "one-thread"])
@pytest.mark.parametrize("masking", ["none", "post", "pre", "holes", "one"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("B,T,D,H,dropout,use_bias,eps", [(9, 7, 5, 40, 0.0, True, 1e-3),
                                                          (3, 2, 4, 5, 0.3, False, 1e-3),
                                                          (12, 9, 6, 17, 0.3, True, 0.25),
                                                          (1, 4, 3, 8, 0.0, True, 1e-5)])
def test_c_loop_equals_the_generic_loop(monkeypatch, threads, masking, dtype, B, T, D, H, dropout, use_bias, eps):
    monkeypatch.setattr(parallel, "_THREADS", threads)
    rng = np.random.default_rng(B * 100 + T * 10 + H)
    layer = make_layer(D, H, T, dtype, seed=B + T + H, recurrent_dropout=dropout, use_bias=use_bias,
                       norm_epsilon=eps)
    x = rng.standard_normal((B, T, D)).astype(dtype)
    mask = make_mask(masking, B, T, rng) if B > 2 else None
    states = [rng.uniform(-0.8, 0.8, (B, H)).astype(dtype) for _ in range(2)]
    dys = [rng.standard_normal(s).astype(dtype) for s in [(B, T, H), (B, H), (B, H)]]

    ours, ref, calls = both_paths(monkeypatch, layer, x, mask, states, dys)
    assert_all_close(ours, ref, TOL[dtype])
    assert len(ours[2]) == len(layer.weights) == 8 + use_bias  # kernel, recurrent, (bias), 3 x (gamma, beta)
    assert calls["forward_mask"] == calls["backward_mask"] == (mask is not None)
    assert calls["forward_dropout"] == calls["backward_dropout"] == (dropout > 0)
    if mask is not None:  # a padded step's input had no effect: exactly zero gradient
        assert np.all(ours[1][~mask] == 0)

    infer, ref_infer, _ = both_paths(monkeypatch, layer, x, mask, states, dys, training=False)
    assert_all_close(infer, ref_infer, TOL[dtype])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_last_output_go_backwards_and_zero_states(monkeypatch, dtype):
    """The layer's other uses of a whole-sequence cell: only the last output, reversed time, no initial state."""
    rng = np.random.default_rng(1)
    B, T, D, H = 7, 6, 3, 9
    layer = make_layer(D, H, T, dtype, seed=2, return_sequences=False, return_state=False, go_backwards=True)
    x = rng.standard_normal((B, T, D)).astype(dtype)
    mask = make_mask("post", B, T, rng)
    ours, ref, _ = both_paths(monkeypatch, layer, x, mask, None, rng.standard_normal((B, H)).astype(dtype))
    assert_all_close(ours[:2], ref[:2], TOL[dtype], names=("outputs", "dx"))
    assert_all_close([ours[2]], [ref[2]], TOL[dtype], names=("grads",))


@pytest.mark.parametrize("valid_rows", [0, 1], ids=["all-padded", "one-valid-row"])
def test_chunks_without_a_valid_step(monkeypatch, valid_rows):
    """Two threads (two batch chunks), and one of them (or both) has no valid step at all: its weight gradients
    are zeros (the chunk GEMMs over the valid rows would have none to gather)."""
    monkeypatch.setattr(parallel, "_THREADS", 2)
    rng = np.random.default_rng(7)
    B, T, D, H = 9, 5, 3, 6
    assert len(parallel.split(B)) == 2
    layer = make_layer(D, H, T, "float64", seed=8, recurrent_dropout=0.3)
    mask = np.zeros((B, T), bool)
    mask[:valid_rows, 1:4] = True
    states = [rng.uniform(-0.8, 0.8, (B, H)) for _ in range(2)]
    dys = [rng.standard_normal(s) for s in [(B, T, H), (B, H), (B, H)]]
    ours, ref, calls = both_paths(monkeypatch, layer, rng.standard_normal((B, T, D)), mask, states, dys)
    assert_all_close(ours, ref, TOL["float64"])
    assert np.all(ours[1][~mask] == 0) and calls["backward_mask"] == 1


def test_uncovered_activation_runs_the_generic_loop():
    layer = L.RNN(L.LayerNormLSTMCell(4, activation="relu"), return_sequences=True)
    before = fast_layernorm.CALLS.copy()
    y = layer(np.ones((2, 3, 2), np.float32), training=True)
    assert y.shape == (2, 3, 4) and fast_layernorm.CALLS == before
    assert not fast_layernorm.covers("relu", "sigmoid", np.float32)
    assert not fast_layernorm.covers("tanh", "hard_sigmoid", np.float32)
    assert not fast_layernorm.covers("tanh", "sigmoid", np.float16)
    assert fast_layernorm.covers("tanh", "sigmoid", np.float64) == _fast.available()


@pytest.mark.parametrize("masking", ["none", "holes"])
@pytest.mark.parametrize("use_bias", [True, False])
def test_c_loop_passes_finite_differences(monkeypatch, masking, use_bias):
    monkeypatch.setattr(parallel, "_THREADS", 2)
    rng = np.random.default_rng(4)
    B, T, D, H = 6, 5, 3, 4
    layer = make_layer(D, H, T, "float64", seed=11, use_bias=use_bias, norm_epsilon=0.05)
    calls = harness.gradcheck_calls(fast_layernorm, layer, rng.standard_normal((B, T, D)),
                                    mask=make_mask(masking, B, T, rng),
                                    initial_state=[rng.uniform(-0.8, 0.8, (B, H)) for _ in range(2)])
    assert calls["backward_mask"] == (calls["backward"] if masking != "none" else 0)


def child_check() -> None:
    """Run in a subprocess with LSTMLAB_ISA set: masked, with dropout, both dtypes, both thread counts."""
    harness.check_square_states(make_layer, fast_layernorm)


@pytest.mark.parametrize("isa", RUNNABLE)
def test_every_variant_equals_the_reference(isa):
    harness.assert_variant_ran(isa, "test_fast_layernorm")
