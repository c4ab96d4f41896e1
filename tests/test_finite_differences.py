"""Every analytic backward against central differences in float64.

Random upstream gradients (never all ones), T >= 3, non-zero initial states,
non-zero biases; every parameter, the inputs and the initial states.
"""
import numpy as np
import pytest

from helpers import backward, forward, random_problem
from lstmlab import functional as F
from lstmlab import gradcheck

TOL = 1e-6


def check_recurrent(kind, B, T, D, H, seed=0, drop=(), **kw):
    p = random_problem(kind, B, T, D, H, seed=seed)
    for k in drop:
        p[k] = None
    hs, fin, cache = forward(kind, p, **kw)
    rng = np.random.default_rng(seed + 100)
    dhs = rng.standard_normal(hs.shape)
    dfin = [rng.standard_normal(f.shape) for f in fin]

    def loss():
        hs2, fin2, _ = forward(kind, p, **kw)
        return np.sum(dhs * hs2) + sum(np.sum(a * b) for a, b in zip(dfin, fin2))

    grads = backward(kind, dhs, dfin, cache)
    wrt = {k: v for k, v in p.items() if v is not None}
    report = gradcheck(loss, wrt, {k: grads[k] for k in wrt}, tol=TOL)
    assert report.ok, report
    assert set(report.failed) == set() and len(report.tensors) == len(wrt)
    return report


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("B,T,D,H,seed", [(2, 3, 3, 4, 0), (3, 6, 5, 2, 1), (1, 4, 1, 3, 2)])
def test_recurrent_default_activations(kind, B, T, D, H, seed):
    check_recurrent(kind, B, T, D, H, seed)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize(
    "activation,recurrent_activation",
    [("softsign", "sigmoid"), ("tanh", "hard_sigmoid"), ("relu", "sigmoid"), ("linear", "sigmoid"), ("softsign", "softsign")],
)
def test_gated_with_other_activations(kind, activation, recurrent_activation):
    check_recurrent(kind, 2, 4, 3, 3, seed=7, activation=activation, recurrent_activation=recurrent_activation)


@pytest.mark.parametrize("activation", ["relu", "softsign", "linear", "sigmoid"])
def test_rnn_other_activations(activation):
    check_recurrent("rnn", 2, 4, 3, 3, seed=8, activation=activation)


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
def test_recurrent_without_bias(kind):
    check_recurrent(kind, 2, 3, 3, 4, seed=3, drop=("bias",))


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
def test_recurrent_with_mask(kind):
    mask = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 1, 1, 0]], bool)
    check_recurrent(kind, 3, 5, 2, 3, seed=4, mask=mask)


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
def test_long_sequence_gradient(kind):
    # 20 steps: the gradient to h0 / c0 has gone through every step of BPTT.
    check_recurrent(kind, 2, 20, 2, 3, seed=5)


@pytest.mark.parametrize("activation", [None, "tanh", "sigmoid", "relu", "softsign", "hard_sigmoid", "softmax"])
@pytest.mark.parametrize("lead", [(4,), (2, 3)])
def test_dense(activation, lead):
    rng = np.random.default_rng(11)
    p = {"x": rng.standard_normal(lead + (5,)), "kernel": rng.standard_normal((5, 4)), "bias": rng.standard_normal(4)}
    y, cache = F.dense_forward(**p, activation=activation)
    dy = rng.standard_normal(y.shape)
    g = F.dense_backward(dy, cache)
    loss = lambda: np.sum(dy * F.dense_forward(**p, activation=activation)[0])  # noqa: E731
    report = gradcheck(loss, p, {"x": g.dx, "kernel": g.dkernel, "bias": g.dbias}, tol=TOL)
    assert report.ok, report


@pytest.mark.parametrize("targets_kind", ["sparse", "probabilities"])
def test_softmax_cross_entropy(targets_kind):
    rng = np.random.default_rng(12)
    logits = rng.standard_normal((3, 4, 6)) * 3
    if targets_kind == "sparse":
        targets = rng.integers(0, 6, (3, 4))
    else:
        targets = rng.dirichlet(np.ones(6), (3, 4))
    dloss = 0.7  # a non-unit upstream gradient
    loss, cache = F.softmax_cross_entropy_forward(logits, targets)
    dlogits = F.softmax_cross_entropy_backward(dloss, cache)
    report = gradcheck(lambda: dloss * F.softmax_cross_entropy_forward(logits, targets)[0], {"logits": logits}, {"logits": dlogits})
    assert report.ok, report


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "hard_sigmoid", "softsign", "relu", "linear", "softmax"])
def test_activation_backward(name):
    act = F.get_activation(name)
    rng = np.random.default_rng(13)
    z = rng.uniform(-5, 5, (4, 7))
    z[np.abs(np.abs(z) - 3) < 1e-3] += 0.01  # keep off the kinks of hard_sigmoid
    z[np.abs(z) < 1e-3] += 0.01  # and relu
    dy = rng.standard_normal(z.shape)
    report = gradcheck(lambda: np.sum(dy * act(z)), {"z": z}, {"z": act.backward(dy, act(z))})
    assert report.ok, report


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
def test_recurrent_dropout_mask_with_padding(kind):
    rng = np.random.default_rng(31)
    rmask = (rng.random((3, 4)) > 0.3) / 0.7  # inverted-dropout scaling, one mask per sequence
    mask = np.array([[1, 1, 1, 1], [1, 1, 0, 0], [0, 1, 1, 1]], bool)
    check_recurrent(kind, 3, 4, 2, 4, seed=6, mask=mask, recurrent_mask=rmask)
