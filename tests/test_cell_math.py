"""Finite differences for the one-step cell math, run through the generic loop.

Every variant (peephole, projection and layer-norm LSTM, GRU reset_after=False):
every weight, the inputs and every initial state; float64; random upstream
gradients for the outputs and for each final state; T >= 3; non-zero initial
states and random non-zero biases; with and without a mask, with recurrent
dropout, without bias and with other activations.
"""
import numpy as np
import pytest

from cell_cases import KINDS, bind, random_case, run_backward, run_forward, shapes_of
from lstmlab import gradcheck
from lstmlab.functional import layernorm_lstm

TOL = 1e-6  # as tests/test_finite_differences.py
MASK = np.array([[1, 1, 1, 1], [1, 1, 0, 0], [0, 0, 1, 1], [1, 0, 1, 1], [0, 0, 0, 0]], bool)


def check(kind, B=3, T=4, D=3, H=3, P=2, *, seed=0, mask=None, use_bias=True, recurrent_mask=False, **options):
    x, states, weights = random_case(kind, B, T, D, H, P, seed=seed, use_bias=use_bias)
    if recurrent_mask:
        width = states[0].shape[1]
        options["recurrent_mask"] = np.random.default_rng(seed + 1).choice([0.0, 1.0 / 0.7], (B, width), p=[0.3, 0.7])
    outs, final, cache = run_forward(kind, x, states, weights, mask=mask, **options)
    rng = np.random.default_rng(seed + 100)
    douts = rng.standard_normal(outs.shape)
    dfinal = tuple(rng.standard_normal(s.shape) for s in final)
    state_list = list(states)  # the loss reads these very arrays, which gradcheck perturbs in place

    def loss():
        o, fin, _ = run_forward(kind, x, tuple(state_list), weights, mask=mask, **options)
        return np.sum(douts * o) + sum(np.sum(d * s) for d, s in zip(dfinal, fin))

    dx, dstates, dweights = run_backward(kind, weights, douts, dfinal, cache)
    names = list(weights)
    assert names == list(shapes_of(kind, D, H, P, use_bias)), "weights walked in weight_shapes order"
    assert len(dweights) == len(names)
    wrt = {"x": x, **{f"states[{k}]": s for k, s in enumerate(state_list)}, **weights}
    analytic = {"x": dx, **{f"states[{k}]": g for k, g in enumerate(dstates)}, **dict(zip(names, dweights))}
    report = gradcheck(loss, wrt, analytic, tol=TOL)
    assert report.ok, report
    assert len(report.tensors) == len(wrt)
    return report


@pytest.mark.parametrize("kind", KINDS)
def test_gradients_no_mask(kind):
    check(kind, seed=1)


@pytest.mark.parametrize("kind", KINDS)
def test_gradients_with_mask(kind):
    check(kind, B=5, seed=2, mask=MASK)


@pytest.mark.parametrize("kind", KINDS)
def test_gradients_with_recurrent_dropout_and_mask(kind):
    check(kind, B=5, seed=3, mask=MASK, recurrent_mask=True)


@pytest.mark.parametrize("kind", KINDS)
def test_gradients_without_bias(kind):
    check(kind, seed=4, use_bias=False)


@pytest.mark.parametrize("kind", KINDS)
# (relu, softsign) is left out: in the layer-norm LSTM, relu zeroes most of a 3-wide cell state, the state norm then
# divides by a tiny deviation, and the central difference's eps^2 error grows to 1e-4 (checked: it falls 100x per
# 10x smaller eps, so it is curvature, not a wrong gradient).
@pytest.mark.parametrize("activation,recurrent_activation", [("softsign", "hard_sigmoid"), ("relu", "sigmoid"),
                                                              ("tanh", "softsign")])
def test_gradients_other_activations(kind, activation, recurrent_activation):
    check(kind, seed=5, activation=activation, recurrent_activation=recurrent_activation)


def test_projection_wider_than_one_and_longer_sequence():
    check("projection_lstm", B=2, T=8, D=2, H=4, P=3, seed=6)


def test_layernorm_epsilon_is_used():
    check("layernorm_lstm", seed=7, norm_epsilon=0.5)
    x, states, w = random_case("layernorm_lstm", 2, 3, 3, 3, seed=7)
    a = run_forward("layernorm_lstm", x, states, w)[0]
    b = run_forward("layernorm_lstm", x, states, w, norm_epsilon=0.5)[0]
    assert not np.allclose(a, b)


def test_layer_norm_matches_its_definition():
    """LN over the whole last axis with biased variance and epsilon inside the root (Keras LayerNormalization)."""
    rng = np.random.default_rng(0)
    v, gamma, beta = rng.standard_normal((4, 8)), rng.standard_normal(8), rng.standard_normal(8)
    y, _ = layernorm_lstm.layer_norm(v, gamma, beta, 1e-3)
    want = (v - v.mean(1, keepdims=True)) / np.sqrt(v.var(1, keepdims=True) + 1e-3) * gamma + beta
    np.testing.assert_allclose(y, want, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("kind", KINDS)
def test_float32_runs_in_float32_and_agrees_with_float64(kind):
    x, states, w = random_case(kind, 3, 4, 3, 3, seed=8)
    x32, states32, w32 = random_case(kind, 3, 4, 3, 3, seed=8, dtype=np.float32)
    o64, f64, c64 = run_forward(kind, x, states, w, mask=MASK[:3])
    o32, f32, c32 = run_forward(kind, x32, states32, w32, mask=MASK[:3])
    assert o32.dtype == np.float32 and all(s.dtype == np.float32 for s in f32)
    np.testing.assert_allclose(o32, o64, atol=1e-5)
    douts = np.random.default_rng(0).standard_normal(o64.shape)
    g64 = run_backward(kind, w, douts, None, c64)
    g32 = run_backward(kind, w32, douts.astype(np.float32), None, c32)
    assert g32[0].dtype == np.float32 and all(g.dtype == np.float32 for g in g32[2])
    # float64 initial states with float32 weights: NumPy promotion of all operands, as lstm_forward does
    o_mixed, f_mixed, _ = run_forward(kind, x32, states, w32, mask=MASK[:3])
    assert o_mixed.dtype == np.float64 and all(s.dtype == np.float64 for s in f_mixed)
    for a, b in zip(g32[2], g64[2]):
        np.testing.assert_allclose(a, b, atol=1e-4)


@pytest.mark.parametrize("kind", KINDS)
def test_wrong_weight_shape_names_the_weight(kind):
    x, states, w = random_case(kind, 2, 3, 3, 3, seed=9)
    name = list(w)[-1]
    w[name] = np.zeros((w[name].shape[0] + 1,) + w[name].shape[1:])
    with pytest.raises(ValueError, match=f"^{name}: expected shape"):
        run_forward(kind, x, states, w)


@pytest.mark.parametrize("kind", KINDS)
def test_wrong_state_count_or_width_is_a_clear_error(kind):
    x, states, w = random_case(kind, 2, 3, 3, 3, seed=9)
    step, _ = bind(kind, w)
    with pytest.raises(ValueError, match="states: expected a tuple of"):
        step(x[:, 0], states + (states[0],))
    with pytest.raises(ValueError, match="h_prev: expected shape"):
        step(x[:, 0], (np.zeros((2, 7)),) + states[1:])


def test_bad_options_are_clear_errors():
    with pytest.raises(ValueError, match="proj_size: expected a positive integer"):
        shapes_of("projection_lstm", 3, 4, P=0)
    x, states, w = random_case("layernorm_lstm", 2, 3, 3, 3)
    with pytest.raises(ValueError, match="norm_epsilon"):
        run_forward("layernorm_lstm", x, states, w, norm_epsilon=-1.0)
    with pytest.raises(ValueError, match="activation: unknown activation"):
        run_forward("gru_reset_before", *random_case("gru_reset_before", 2, 3, 3, 3), activation="nope")
