"""Each optimizer's first steps against its closed-form update, clipping and schedules."""
import math

import numpy as np
import pytest

from lstmlab.layers import Dense
from lstmlab.training import optimizers as O

G1 = np.array([0.5, -2.0, 0.0, 3.0])
G2 = np.array([-1.0, 0.25, 4.0, 3.0])
W0 = np.array([1.0, -1.0, 0.5, 2.0])


def run(opt, grads=(G1, G2)):
    layer = Dense(4, dtype="float64")
    layer.build((None, 1))
    w = layer.kernel
    w.value[...] = W0
    out = []
    for g in grads:
        opt.apply([w], [g.reshape(1, 4)])
        out.append(w.value[0].copy())
    return out


def test_sgd_plain():
    w1, w2 = run(O.SGD(0.1))
    np.testing.assert_allclose(w1, W0 - 0.1 * G1, rtol=1e-15)
    np.testing.assert_allclose(w2, W0 - 0.1 * G1 - 0.1 * G2, rtol=1e-15)


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_momentum(nesterov):
    lr, mu = 0.1, 0.9
    w1, w2 = run(O.SGD(lr, momentum=mu, nesterov=nesterov))
    v1 = -lr * G1
    v2 = mu * v1 - lr * G2
    if nesterov:
        e1 = W0 + mu * v1 - lr * G1
        e2 = e1 + mu * v2 - lr * G2
    else:
        e1, e2 = W0 + v1, W0 + v1 + v2
    np.testing.assert_allclose(w1, e1, rtol=1e-14)
    np.testing.assert_allclose(w2, e2, rtol=1e-14)


def test_rmsprop():
    lr, rho, eps = 0.01, 0.9, 1e-7
    w1, w2 = run(O.RMSprop(lr))
    a1 = (1 - rho) * G1**2
    a2 = rho * a1 + (1 - rho) * G2**2
    e1 = W0 - lr * G1 / np.sqrt(a1 + eps)
    np.testing.assert_allclose(w1, e1, rtol=1e-14)
    np.testing.assert_allclose(w2, e1 - lr * G2 / np.sqrt(a2 + eps), rtol=1e-14)


def test_rmsprop_centered_with_momentum():
    lr, rho, mu, eps = 0.01, 0.8, 0.5, 1e-7
    w1, w2 = run(O.RMSprop(lr, rho=rho, momentum=mu, centered=True))
    a1, m1 = (1 - rho) * G1**2, (1 - rho) * G1
    s1 = lr * G1 / np.sqrt(a1 + eps - m1**2)
    a2, m2 = rho * a1 + (1 - rho) * G2**2, rho * m1 + (1 - rho) * G2
    s2 = mu * s1 + lr * G2 / np.sqrt(a2 + eps - m2**2)
    np.testing.assert_allclose(w1, W0 - s1, rtol=1e-14)
    np.testing.assert_allclose(w2, W0 - s1 - s2, rtol=1e-14)


def test_adagrad():
    lr, eps = 0.1, 1e-7
    w1, w2 = run(O.Adagrad(lr))
    a1 = 0.1 + G1**2
    a2 = a1 + G2**2
    e1 = W0 - lr * G1 / np.sqrt(a1 + eps)
    np.testing.assert_allclose(w1, e1, rtol=1e-14)
    np.testing.assert_allclose(w2, e1 - lr * G2 / np.sqrt(a2 + eps), rtol=1e-14)


def test_adam():
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-7
    w1, w2 = run(O.Adam(lr))
    m1, v1 = (1 - b1) * G1, (1 - b2) * G1**2
    e1 = W0 - lr * math.sqrt(1 - b2) / (1 - b1) * m1 / (np.sqrt(v1) + eps)
    m2, v2 = b1 * m1 + (1 - b1) * G2, b2 * v1 + (1 - b2) * G2**2
    e2 = e1 - lr * math.sqrt(1 - b2**2) / (1 - b1**2) * m2 / (np.sqrt(v2) + eps)
    np.testing.assert_allclose(w1, e1, rtol=1e-14)
    np.testing.assert_allclose(w2, e2, rtol=1e-14)
    # The first Adam step moves every weight with a non-zero gradient by about lr.
    moved = np.abs(w1 - W0)[G1 != 0]
    np.testing.assert_allclose(moved, lr, rtol=1e-4)


def test_adam_matches_pytorch_with_keras_epsilon():
    torch = pytest.importorskip("torch")
    p = torch.tensor(W0.copy(), requires_grad=True)
    opt = torch.optim.Adam([p], lr=0.01, eps=1e-7)
    ours = run(O.Adam(0.01), grads=(G1, G2, G1))
    for g in (G1, G2, G1):
        p.grad = torch.tensor(g)
        opt.step()
    # PyTorch adds eps after the bias correction of v; Keras (and we) before: equal to ~eps.
    np.testing.assert_allclose(ours[-1], p.detach().numpy(), atol=1e-6)


def test_clipnorm_clipvalue_global_clipnorm():
    layer = Dense(2, dtype="float64")
    layer.build((None, 1))
    g = np.array([[3.0, 4.0]])  # norm 5
    (clipped,) = O.SGD(1.0, clipnorm=1.0).clip([g])
    np.testing.assert_allclose(clipped, [[0.6, 0.8]])
    (clipped,) = O.SGD(1.0, clipvalue=3.5).clip([g])
    np.testing.assert_allclose(clipped, [[3.0, 3.5]])
    a, b = O.SGD(1.0, global_clipnorm=6.5).clip([g, np.array([12.0])])  # global norm 13
    np.testing.assert_allclose(a, [[1.5, 2.0]])
    np.testing.assert_allclose(b, [6.0])
    (same,) = O.SGD(1.0, clipnorm=10.0).clip([g])
    np.testing.assert_array_equal(same, g)


def test_learning_rate_schedules():
    s = O.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
    assert s(0) == 0.1 and s(10) == pytest.approx(0.05) and s(5) == pytest.approx(0.1 * 0.5**0.5)
    step = O.StepDecay(0.1, decay_steps=10, decay_rate=0.5)
    assert step(9) == 0.1 and step(10) == pytest.approx(0.05) and step(25) == pytest.approx(0.025)
    opt = O.SGD(step)
    w1, w2 = run(opt)
    assert opt.iterations == 2
    np.testing.assert_allclose(w1, W0 - 0.1 * G1)
    restored = O.get({"class_name": "sgd", "config": opt.get_config()})
    assert isinstance(restored.learning_rate, O.StepDecay) and restored.learning_rate(10) == pytest.approx(0.05)


def test_optimizer_names_and_bad_hyperparameters():
    assert isinstance(O.get("Adam"), O.Adam) and isinstance(O.get("rmsprop"), O.RMSprop)
    with pytest.raises(ValueError, match=r"^optimizer: unknown optimizer 'adadelta'; expected one of adagrad, adam, "
                                         r"adamax, adamw, nadam, rmsprop, sgd$"):
        O.get("adadelta")
    with pytest.raises(ValueError, match=r"^learning_rate: expected a number > 0.0, got -0.1$"):
        O.Adam(-0.1)
    with pytest.raises(ValueError, match=r"^momentum: expected a number >= 0.0 and < 1.0, got 1.5$"):
        O.SGD(momentum=1.5)
    with pytest.raises(ValueError, match=r"^clipnorm, clipvalue, global_clipnorm: expected at most one"):
        O.Adam(clipnorm=1.0, clipvalue=1.0)


def test_nadam_after_a_huge_step_count_costs_no_memory():
    """A file may claim any step count: Nadam's momentum product takes bounded work, not one entry per step."""
    import time

    from lstmlab.training.optimizers import Nadam

    def product(t, b=0.9):  # u_1 * ... * u_t, written out
        p = 1.0
        for s in range(1, t + 1):
            p *= b * (1 - 0.5 * 0.96**s)
        return p

    opt = Nadam()
    for t in (1, 7, 999, 1000, 1001, 2500):
        assert abs(opt._u_product(t) - product(t)) <= 1e-13 * product(t)
    start = time.perf_counter()
    assert Nadam()._u_product(10**15) == 0.0  # 0.9 ** 1e15 underflows; computed in ~1000 multiplications
    assert time.perf_counter() - start < 0.5
    assert not hasattr(opt, "_products")
