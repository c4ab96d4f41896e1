"""The generic time loop (functional/recurrence.py) against the whole-sequence references.

An LSTM step made of ``lstm_forward`` / ``lstm_backward`` with T = 1, run by
``recurrence_forward`` / ``recurrence_backward``, must give what the
whole-sequence ``lstm_forward`` / ``lstm_backward`` give: outputs, final
states and every gradient, in float64 to 1e-12, with and without masks.  The
same for the GRU (reset_after=True) and the simple RNN, whose masks follow
the same rule.  A toy cell whose output is narrower than its state checks the
rule "output before the first valid step = zeros" with finite differences.
"""
import numpy as np
import pytest

from helpers import assert_close, backward, forward, random_problem
from lstmlab import gradcheck
from lstmlab.functional.recurrence import recurrence_backward, recurrence_forward

TOL = 1e-12

MASKS = {
    "none": None,
    # all valid, post-padded, pre-padded, a gap in the middle, all padded, length-1 (last), length-1 (first)
    "mixed": np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [0, 0, 1, 1, 1], [1, 0, 0, 1, 1],
                       [0, 0, 0, 0, 0], [0, 0, 0, 0, 1], [1, 0, 0, 0, 0]], bool),
    "all_padded": np.zeros((7, 5), bool),
}


def one_step_cell(kind, p):
    """``(step, step_backward, weight names)`` that run the whole-sequence reference with T = 1."""
    names = ["kernel", "recurrent_kernel", "bias"]
    w = {k: p[k] for k in names}

    def step(x_t, states):
        hs, fin, cache = forward(kind, {"x": x_t[:, None, :], **w, **dict(zip(["h0", "c0"], states))})
        return hs[:, 0], fin, cache

    def step_backward(dout, dnew, cache):
        g = backward(kind, None if dout is None else dout[:, None, :], dnew, cache)
        return g["x"][:, 0], (g["h0"], g["c0"]) if kind == "lstm" else (g["h0"],), [g[k] for k in names]

    return step, step_backward, names


@pytest.mark.parametrize("mask_name", list(MASKS))
@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
def test_loop_over_one_step_equals_whole_sequence(kind, mask_name):
    B, T, D, H = 7, 5, 3, 4
    p = random_problem(kind, B, T, D, H, seed=3)
    mask = MASKS[mask_name]
    hs, fin, cache = forward(kind, p, mask=mask)
    rng = np.random.default_rng(9)
    dhs = rng.standard_normal(hs.shape)
    dfin = [rng.standard_normal(f.shape) for f in fin]
    ref = backward(kind, dhs, dfin, cache)

    step, step_backward, names = one_step_cell(kind, p)
    states0 = (p["h0"], p["c0"]) if kind == "lstm" else (p["h0"],)
    outs, fin2, loop_cache = recurrence_forward(step, p["x"], states0, mask=mask)
    dx, dstates0, dweights = recurrence_backward(step_backward, dhs, tuple(dfin), loop_cache)

    assert_close("outputs", outs, hs, TOL)
    for k, (a, b) in enumerate(zip(fin2, fin)):
        assert_close(f"final state {k}", a, b, TOL)
    assert_close("dx", dx, ref["x"], TOL)
    for name, g in zip(["h0", "c0"], dstates0):
        assert_close(f"d{name}", g, ref[name], TOL)
    for name, g in zip(names, dweights):
        assert_close(f"d{name}", g, ref[name], TOL)


def test_upstream_none_and_partial_final_gradients():
    """douts=None and None entries in dfinal mean zero, as in lstm_backward."""
    p = random_problem("lstm", 3, 4, 2, 3, seed=5)
    mask = np.array([[1, 1, 1, 1], [1, 1, 0, 0], [0, 1, 1, 1]], bool)
    hs, fin, cache = forward("lstm", p, mask=mask)
    dc = np.random.default_rng(1).standard_normal(fin[1].shape)
    ref = backward("lstm", None, (None, dc), cache)
    step, step_backward, _ = one_step_cell("lstm", p)
    _, _, loop_cache = recurrence_forward(step, p["x"], (p["h0"], p["c0"]), mask=mask)
    dx, (dh0, dc0), _ = recurrence_backward(step_backward, None, (None, dc), loop_cache)
    assert_close("dx", dx, ref["x"], TOL)
    assert_close("dh0", dh0, ref["h0"], TOL)
    assert_close("dc0", dc0, ref["c0"], TOL)


# --- a cell whose output (width 2) is not its state (width 3) -------------------------------------------------


def toy_step(x_t, states, W, U, V):
    """h_t = tanh(x_t W + h_{t-1} U), out_t = h_t V: the output is not states[0]."""
    h = np.tanh(x_t @ W + states[0] @ U)  # (B, H)
    return h @ V, (h,), (x_t, states[0], h, W, U, V)  # out (B, 2)


def toy_step_backward(dout, dnew, cache):
    x_t, h_prev, h, W, U, V = cache
    dh = dnew[0] + (0.0 if dout is None else dout @ V.T)
    da = dh * (1.0 - h * h)
    dV = np.zeros_like(V) if dout is None else h.T @ dout
    return da @ W.T, (da @ U.T,), [x_t.T @ da, h_prev.T @ da, dV]


def test_output_narrower_than_state_repeats_zeros_before_first_step():
    rng = np.random.default_rng(4)
    B, T, D, H = 4, 5, 2, 3
    p = {"x": rng.standard_normal((B, T, D)), "h0": rng.uniform(-0.8, 0.8, (B, H)),
         "W": rng.uniform(-0.6, 0.6, (D, H)), "U": rng.uniform(-0.6, 0.6, (H, H)), "V": rng.uniform(-1, 1, (H, 2))}
    mask = np.array([[0, 0, 1, 1, 0], [1, 1, 1, 1, 1], [1, 0, 1, 0, 0], [0, 0, 0, 0, 0]], bool)

    def step(x_t, states):
        return toy_step(x_t, states, p["W"], p["U"], p["V"])

    outs, (h,), cache = recurrence_forward(step, p["x"], (p["h0"],), mask=mask)
    assert np.all(outs[0, :2] == 0) and np.all(outs[3] == 0)  # before the first valid step: zeros
    assert np.array_equal(outs[0, 4], outs[0, 3]) and np.array_equal(outs[2, 3], outs[2, 2])  # carried
    assert np.array_equal(h[3], p["h0"][3])

    douts, dh = rng.standard_normal(outs.shape), rng.standard_normal(h.shape)

    def loss():
        o, (hT,), _ = recurrence_forward(step, p["x"], (p["h0"],), mask=mask)
        return np.sum(douts * o) + np.sum(dh * hT)

    dx, (dh0,), (dW, dU, dV) = recurrence_backward(toy_step_backward, douts, (dh,), cache)
    report = gradcheck(loss, p, {"x": dx, "h0": dh0, "W": dW, "U": dU, "V": dV}, tol=1e-7)
    assert report.ok, report


def test_inference_cache_cannot_be_differentiated():
    p = random_problem("rnn", 2, 3, 2, 2, seed=1)
    step, step_backward, _ = one_step_cell("rnn", p)
    outs, _, cache = recurrence_forward(step, p["x"], (p["h0"],), need_cache=False)
    assert outs.shape == (2, 3, 2)
    with pytest.raises(ValueError, match="need_cache=True"):
        recurrence_backward(step_backward, None, None, cache)


@pytest.mark.parametrize("bad, message", [
    (dict(x=np.zeros((2, 3))), "x: expected a 3-D array"),
    (dict(states=(np.zeros((3, 2)),)), r"states\[0\]: expected shape \(2, \?\)"),
    (dict(states=()), "states: expected a non-empty tuple"),
    (dict(mask=np.ones((2, 4), bool)), "mask: expected shape"),
    (dict(x=np.full((2, 3, 2), np.nan)), "x: expected finite values"),
])
def test_loop_bad_arguments_name_the_argument(bad, message):
    p = random_problem("rnn", 2, 3, 2, 2, seed=1)
    step, _, _ = one_step_cell("rnn", p)
    args = dict(x=p["x"], states=(p["h0"],), mask=None)
    args.update(bad)
    with pytest.raises(ValueError, match=message):
        recurrence_forward(step, args["x"], args["states"], mask=args["mask"])


def test_wrong_number_of_final_gradients():
    p = random_problem("lstm", 2, 3, 2, 2, seed=1)
    step, step_backward, _ = one_step_cell("lstm", p)
    _, _, cache = recurrence_forward(step, p["x"], (p["h0"], p["c0"]))
    with pytest.raises(ValueError, match="dfinal: expected 2 entries"):
        recurrence_backward(step_backward, None, (None,), cache)
