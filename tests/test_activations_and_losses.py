"""Activations and the cross-entropy against known values and PyTorch."""
import math

import numpy as np
import pytest

from lstmlab import functional as F

torch = pytest.importorskip("torch")

Z = np.array([-40.0, -4.0, -3.0, -1.5, -0.2, 0.0, 0.3, 1.0, 3.0, 5.0, 40.0])

TORCH_FN = {
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "hard_sigmoid": torch.nn.functional.hardsigmoid,
    "softsign": torch.nn.functional.softsign,
    "relu": torch.relu,
    "linear": lambda t: t,
}


@pytest.mark.parametrize("name", sorted(TORCH_FN))
def test_activation_matches_pytorch(name):
    ours = F.get_activation(name)(Z)
    theirs = TORCH_FN[name](torch.from_numpy(Z)).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-14, atol=1e-15)


def test_known_values():
    assert F.get_activation("sigmoid")(np.array(0.0)) == 0.5
    assert math.isclose(float(F.get_activation("sigmoid")(np.array(2.0))), 1 / (1 + math.exp(-2)), rel_tol=1e-15)
    assert F.get_activation("sigmoid")(np.array(-1000.0)) == 0.0  # no overflow warning, no NaN
    np.testing.assert_array_equal(F.get_activation("hard_sigmoid")(np.array([-3.0, 0.0, 1.5, 3.0])), [0.0, 0.5, 0.75, 1.0])
    np.testing.assert_array_equal(F.get_activation("softsign")(np.array([-3.0, 1.0])), [-0.75, 0.5])
    assert F.get_activation(None).name == "linear"


def test_softmax_is_stable_and_normalized():
    z = np.array([[1000.0, 1000.0, -1000.0], [1.0, 2.0, 3.0]])
    s = F.softmax(z)
    np.testing.assert_allclose(s[0], [0.5, 0.5, 0.0])
    np.testing.assert_allclose(s.sum(-1), 1.0)
    e = np.exp([1.0, 2.0, 3.0])
    np.testing.assert_allclose(s[1], e / e.sum(), rtol=1e-15)
    assert np.all(np.isfinite(F.log_softmax(z)))


@pytest.mark.parametrize("scale", [1.0, 1e3])
def test_cross_entropy_matches_pytorch(scale):
    rng = np.random.default_rng(3)
    logits = rng.standard_normal((6, 5)) * scale
    y = rng.integers(0, 5, 6)
    loss, cache = F.softmax_cross_entropy_forward(logits, y)
    tl = torch.from_numpy(logits).requires_grad_()
    tloss = torch.nn.functional.cross_entropy(tl, torch.from_numpy(y))
    tloss.backward()
    assert math.isfinite(loss)
    np.testing.assert_allclose(loss, tloss.item(), rtol=1e-12)
    np.testing.assert_allclose(F.softmax_cross_entropy_backward(1.0, cache), tl.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_cross_entropy_known_value():
    # Uniform logits over 4 classes: loss is log 4 whatever the label.
    loss, _ = F.softmax_cross_entropy_forward(np.zeros((3, 4)), np.array([0, 3, 1]))
    assert math.isclose(loss, math.log(4), rel_tol=1e-15)


def test_float32_stays_float32():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    k = rng.standard_normal((4, 8)).astype(np.float32)
    r = rng.standard_normal((2, 8)).astype(np.float32)
    hs, (h, c), cache = F.lstm_forward(x, k, r)
    assert hs.dtype == h.dtype == c.dtype == np.float32
    g = F.lstm_backward(np.ones_like(hs), None, None, cache)
    assert g.dx.dtype == g.dkernel.dtype == np.float32 and g.dbias is None


def test_lstm_single_step_by_hand():
    # One step, one unit, written out from the six equations with Python floats.
    x, h0, c0 = 0.5, -0.3, 0.8
    W = [0.1, -0.2, 0.3, 0.4]  # i, f, c, o
    U = [0.5, 0.6, -0.7, 0.8]
    b = [0.01, 0.02, 0.03, 0.04]
    sig = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    zi, zf, zg, zo = (W[k] * x + U[k] * h0 + b[k] for k in range(4))
    f, i, g, o = sig(zf), sig(zi), math.tanh(zg), sig(zo)  # (1) (2) (3) (5)
    c = f * c0 + i * g  # (4)
    h = o * math.tanh(c)  # (6)
    hs, (hT, cT), _ = F.lstm_forward(np.array([[[x]]]), np.array([W]), np.array([U]), np.array(b), np.array([[h0]]), np.array([[c0]]))
    assert math.isclose(float(hs[0, 0, 0]), h, rel_tol=1e-14)
    assert math.isclose(float(cT[0, 0]), c, rel_tol=1e-14)
    assert float(hT[0, 0]) == float(hs[0, 0, 0])


def test_mask_carries_state_and_matches_truncated_run():
    rng = np.random.default_rng(9)
    x = rng.standard_normal((1, 6, 3))
    k, r, b = rng.standard_normal((3, 8)), rng.standard_normal((2, 8)), rng.standard_normal(8)
    mask = np.array([[True, True, True, True, False, False]])
    hs, (h, c), _ = F.lstm_forward(x, k, r, b, mask=mask)
    hs4, (h4, c4), _ = F.lstm_forward(x[:, :4], k, r, b)
    np.testing.assert_array_equal(hs[:, :4], hs4)
    np.testing.assert_array_equal(h, h4)
    np.testing.assert_array_equal(c, c4)
    np.testing.assert_array_equal(hs[:, 5], h4)  # padded steps repeat the last valid output
