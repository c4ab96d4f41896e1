"""AdamW, Nadam, Adamax and the CosineDecay / PiecewiseConstantDecay schedules: closed forms by hand,
equality with Keras 3 (torch backend) on the same variables and gradients, names, configs and saved slots."""
import math

import numpy as np
import pytest

import lstmlab
from lstmlab import optimizers as O
from lstmlab.layers import Dense
from lstmlab.optimizers import schedules as S

keras = pytest.importorskip("keras")

G1 = np.array([0.5, -2.0, 0.0, 3.0])
G2 = np.array([-1.0, 0.25, 4.0, 3.0])
G3 = np.array([2.0, 1.5, -0.5, -3.0])
W0 = np.array([1.0, -1.0, 0.5, 2.0])
B1, B2, EPS = 0.9, 0.999, 1e-7


def run(opt, grads=(G1, G2, G3)):
    """Weights after each update of a float64 (1, 4) kernel starting at W0."""
    layer = Dense(4, dtype="float64")
    layer.build((None, 1))
    w = layer.kernel
    w.value[...] = W0
    out = []
    for g in grads:
        opt.apply([w], [g.reshape(1, 4)])
        out.append(w.value[0].copy())
    return out


# -- closed forms, written out from the papers / Keras's update rules -------------------------------
def test_adamw_closed_form_three_steps():
    lr, wd = 0.01, 0.1
    got = run(O.AdamW(lr, weight_decay=wd))
    w, m, v = W0.copy(), 0 * W0, 0 * W0
    expected = []
    for t, g in enumerate((G1, G2, G3), start=1):
        w = w - lr * wd * w  # decoupled decay first, on the weights before the Adam step
        m = B1 * m + (1 - B1) * g
        v = B2 * v + (1 - B2) * g * g
        w = w - lr * math.sqrt(1 - B2**t) / (1 - B1**t) * m / (np.sqrt(v) + EPS)
        expected.append(w)
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a, b, rtol=1e-13)
    # Step 1 by hand, fully expanded: decay, then a step of about lr in the sign of the gradient.
    e1 = W0 * (1 - lr * wd) - lr * math.sqrt(1 - B2) / (1 - B1) * (0.1 * G1) / (np.sqrt(0.001 * G1**2) + EPS)
    np.testing.assert_allclose(got[0], e1, rtol=1e-13)


def test_nadam_closed_form_two_steps():
    lr = 0.01
    w1, w2 = run(O.Nadam(lr), grads=(G1, G2))
    u1, u2, u3 = (B1 * (1 - 0.5 * 0.96**s) for s in (1, 2, 3))
    m1, v1 = (1 - B1) * G1, (1 - B2) * G1**2
    m_hat1 = u2 * m1 / (1 - u1 * u2) + (1 - u1) * G1 / (1 - u1)
    e1 = W0 - lr * m_hat1 / (np.sqrt(v1 / (1 - B2)) + EPS)
    m2, v2 = B1 * m1 + (1 - B1) * G2, B2 * v1 + (1 - B2) * G2**2
    m_hat2 = u3 * m2 / (1 - u1 * u2 * u3) + (1 - u2) * G2 / (1 - u1 * u2)
    e2 = e1 - lr * m_hat2 / (np.sqrt(v2 / (1 - B2**2)) + EPS)
    np.testing.assert_allclose(w1, e1, rtol=1e-13)
    np.testing.assert_allclose(w2, e2, rtol=1e-13)


def test_adamax_closed_form_three_steps():
    lr = 0.02
    got = run(O.Adamax(lr))
    m1, u1 = 0.1 * G1, np.abs(G1)
    e1 = W0 - lr / (1 - B1) * m1 / (u1 + EPS)
    m2, u2 = B1 * m1 + 0.1 * G2, np.maximum(B2 * u1, np.abs(G2))
    e2 = e1 - lr / (1 - B1**2) * m2 / (u2 + EPS)
    m3, u3 = B1 * m2 + 0.1 * G3, np.maximum(B2 * u2, np.abs(G3))
    e3 = e2 - lr / (1 - B1**3) * m3 / (u3 + EPS)
    for a, b in zip(got, (e1, e2, e3)):
        np.testing.assert_allclose(a, b, rtol=1e-13)
    # Where the gradient is 0 at step 1 (index 2), u is 0 and m is 0: the weight does not move.
    assert got[0][2] == W0[2]


def test_adam_amsgrad_keeps_the_largest_second_moment():
    lr = 0.01
    big, small = np.full(4, 3.0), np.full(4, 0.1)
    w1, w2 = run(O.Adam(lr, amsgrad=True), grads=(big, small))
    v1 = (1 - B2) * big**2
    v2 = B2 * v1 + (1 - B2) * small**2
    m2 = B1 * (1 - B1) * big + (1 - B1) * small
    v_hat = np.maximum(v1, v2)
    np.testing.assert_allclose(w2, w1 - lr * math.sqrt(1 - B2**2) / (1 - B1**2) * m2 / (np.sqrt(v_hat) + EPS),
                               rtol=1e-13)


# -- Keras 3 on the same variables and gradients --------------------------------------------------
# Keras computes the step's scalars (1 - b2^t, ...) in float32, we in float64: over five steps of size
# ~lr the weights then differ by a few float32 ulps times lr / 0.01, so the rates here stay <= 0.02.
def _keras_steps(kopt, values, grads_per_step):
    kvars = [keras.Variable(v.astype(np.float32)) for v in values]
    for grads in grads_per_step:
        kopt.apply([keras.ops.convert_to_tensor(g.astype(np.float32)) for g in grads], kvars)
    return [keras.ops.convert_to_numpy(v) for v in kvars]


def _our_steps(opt, values, grads_per_step):
    layer = Dense(3)  # float32 kernel (4, 3) and bias (3,)
    layer.build((None, 4))
    for w, v in zip(layer.weights, values):
        w.value[...] = v
    for grads in grads_per_step:
        opt.apply(layer.weights, [g.astype(np.float32) for g in grads])
    return [w.value for w in layer.weights]


CASES = [
    ("AdamW", dict(learning_rate=0.01)),
    ("AdamW", dict(learning_rate=0.01, weight_decay=0.1, amsgrad=True, clipnorm=0.5)),
    ("Nadam", dict(learning_rate=0.01)),
    ("Nadam", dict(learning_rate=0.02, beta_1=0.8, global_clipnorm=1.0, weight_decay=0.01)),
    ("Adamax", dict(learning_rate=0.01)),
    ("Adamax", dict(learning_rate=0.02, beta_2=0.9, clipvalue=0.4)),
    ("Adam", dict(learning_rate=0.01, amsgrad=True)),
]


@pytest.mark.parametrize("name, kwargs", CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_matches_keras_over_five_steps(name, kwargs):
    rng = np.random.default_rng(7)
    values = [rng.standard_normal((4, 3)).astype(np.float32), rng.standard_normal(3).astype(np.float32)]
    steps = [[rng.standard_normal((4, 3)) * 2, rng.standard_normal(3)] for _ in range(5)]
    steps[1][0][0] = 0.0  # a zero gradient row: Adamax's u and Nadam's m still decay there
    ours = _our_steps(getattr(O, name)(**kwargs), values, steps)
    theirs = _keras_steps(getattr(keras.optimizers, name)(**kwargs), values, steps)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("name", ["AdamW", "Nadam", "Adamax"])
def test_matches_keras_with_a_cosine_schedule(name):
    rng = np.random.default_rng(3)
    values = [rng.standard_normal((4, 3)).astype(np.float32), rng.standard_normal(3).astype(np.float32)]
    steps = [[rng.standard_normal((4, 3)), rng.standard_normal(3)] for _ in range(6)]
    ours = _our_steps(getattr(O, name)(S.CosineDecay(0.005, 4, alpha=0.1, warmup_target=0.02, warmup_steps=2)),
                      values, steps)
    kschedule = keras.optimizers.schedules.CosineDecay(0.005, 4, alpha=0.1, warmup_target=0.02, warmup_steps=2)
    theirs = _keras_steps(getattr(keras.optimizers, name)(kschedule), values, steps)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, atol=1e-6, rtol=1e-6)


# -- names, configs, saved state ------------------------------------------------------------------
def test_registered_by_keras_names_and_defaults_as_keras():
    for name, cls in (("adamw", O.AdamW), ("nadam", O.Nadam), ("adamax", O.Adamax), ("AdamW", O.AdamW)):
        assert type(O.get(name)) is cls
    for cls in (O.AdamW, O.Nadam, O.Adamax):
        ours = cls().get_config()
        theirs = getattr(keras.optimizers, cls.__name__)().get_config()
        for key, value in ours.items():
            assert theirs[key] == pytest.approx(value), (cls.__name__, key)
    assert O.AdamW().weight_decay == 0.004 and O.Nadam().weight_decay is None


@pytest.mark.parametrize("opt", [O.AdamW(0.01, weight_decay=0.02, amsgrad=True, clipnorm=1.0),
                                 O.Nadam(S.PiecewiseConstantDecay([2, 5], [0.1, 0.01, 0.001]), beta_1=0.8),
                                 O.Adamax(0.002, epsilon=1e-6, global_clipnorm=2.0)],
                         ids=["adamw", "nadam", "adamax"])
def test_serialize_round_trip(opt):
    spec = O.serialize(opt)
    assert spec["class_name"] == opt.name
    back = O.deserialize(spec)
    assert type(back) is type(opt) and back.get_config() == opt.get_config()
    # The restored optimizer computes the same updates.
    np.testing.assert_array_equal(run(back)[-1], run(O.deserialize(spec))[-1])


def test_bad_arguments_raise_naming_them():
    with pytest.raises(ValueError, match=r"^weight_decay: expected a number >= 0.0 for AdamW, got None$"):
        O.AdamW(weight_decay=None)
    with pytest.raises(ValueError, match=r"^weight_decay: expected a number >= 0.0, got -1$"):
        O.Nadam(weight_decay=-1)
    with pytest.raises(ValueError, match=r"^beta_2: expected a number >= 0.0 and < 1.0, got 1.0$"):
        O.Adamax(beta_2=1.0)
    with pytest.raises(ValueError, match=r"^clipnorm, clipvalue, global_clipnorm: expected at most one"):
        O.Nadam(clipnorm=1.0, global_clipnorm=1.0)


@pytest.mark.parametrize("name", ["adamw", "nadam", "adamax"])
def test_compile_by_name_fit_save_and_resume_exactly(tmp_path, name):
    """Slots and the step count are saved: a resumed run equals an uninterrupted one, bit for bit."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 3, 2)).astype(np.float32)
    y = x.sum(axis=(1, 2))[:, None]

    def build():
        lstmlab.set_random_seed(1)
        m = lstmlab.Sequential([lstmlab.layers.LSTM(4, input_shape=(3, 2)), lstmlab.layers.Dense(1)])
        m.compile(name, "mse")
        m.seed = 5
        return m

    straight = build()
    straight.fit(x, y, epochs=4, batch_size=8, verbose=0)
    first = build()
    first.fit(x, y, epochs=2, batch_size=8, verbose=0)
    assert type(first.optimizer).__name__.lower() == name
    first.save(tmp_path / "m.safetensors")
    resumed = lstmlab.load_model(tmp_path / "m.safetensors")
    assert set(resumed.optimizer.slots) == set(first.optimizer.slots) and resumed.optimizer.iterations == 4
    resumed.fit(x, y, epochs=4, initial_epoch=2, batch_size=8, verbose=0)
    for a, b in zip(resumed.get_weights(), straight.get_weights()):
        np.testing.assert_array_equal(a, b)


# -- schedules ------------------------------------------------------------------------------------
SCHEDULE_CASES = [
    ("CosineDecay", dict(initial_learning_rate=0.1, decay_steps=10)),
    ("CosineDecay", dict(initial_learning_rate=0.1, decay_steps=7, alpha=0.2)),
    ("CosineDecay", dict(initial_learning_rate=0.0, decay_steps=10, warmup_target=0.5, warmup_steps=4)),
    ("CosineDecay", dict(initial_learning_rate=0.01, decay_steps=6, alpha=0.1, warmup_target=0.2, warmup_steps=3)),
    ("CosineDecay", dict(initial_learning_rate=0.01, decay_steps=5, warmup_target=0.2)),  # warmup_steps=0
    ("PiecewiseConstantDecay", dict(boundaries=[3, 7], values=[1.0, 0.5, 0.1])),
    ("PiecewiseConstantDecay", dict(boundaries=[0], values=[0.3, 0.2])),
    ("PiecewiseConstantDecay", dict(boundaries=[2, 4, 9], values=[0.4, 0.3, 0.2, 0.1])),
]


@pytest.mark.parametrize("name, kwargs", SCHEDULE_CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(SCHEDULE_CASES)])
def test_schedules_match_keras_over_a_range_of_steps(name, kwargs):
    ours = getattr(S, name)(**kwargs)
    theirs = getattr(keras.optimizers.schedules, name)(**kwargs)
    for step in range(0, 25):
        assert ours(step) == pytest.approx(float(keras.ops.convert_to_numpy(theirs(step))), rel=1e-6, abs=1e-7), step
    assert ours.get_config() == theirs.get_config()


def test_cosine_decay_closed_form():
    s = S.CosineDecay(0.1, decay_steps=8, alpha=0.25)
    assert s(0) == pytest.approx(0.1)
    assert s(4) == pytest.approx(0.1 * (0.75 * 0.5 + 0.25))  # halfway: cos(pi/2) = 0
    assert s(8) == pytest.approx(0.025) and s(100) == pytest.approx(0.025)  # the floor alpha * lr0
    w = S.CosineDecay(0.0, decay_steps=4, warmup_target=1.0, warmup_steps=2)
    assert [w(k) for k in (0, 1, 2)] == pytest.approx([0.0, 0.5, 1.0])


def test_piecewise_constant_boundaries_belong_to_the_earlier_value():
    s = S.PiecewiseConstantDecay([10, 20], [1.0, 0.5, 0.25])
    assert [s(k) for k in (0, 10, 11, 20, 21, 1000)] == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]


def test_schedule_as_learning_rate_and_round_trip():
    schedule = S.PiecewiseConstantDecay([1], [0.1, 0.01])
    opt = O.SGD(schedule)
    w1, w2, w3 = run(opt)
    np.testing.assert_allclose(w1, W0 - 0.1 * G1)  # step 0
    np.testing.assert_allclose(w2 - w1, -0.1 * G2)  # step 1 = the boundary: still the first value
    np.testing.assert_allclose(w3 - w2, -0.01 * G3)
    for s in (schedule, S.CosineDecay(0.1, 10, alpha=0.1, name="c", warmup_target=0.2, warmup_steps=3)):
        back = S.deserialize(S.serialize(s))
        assert type(back) is type(s) and back.get_config() == s.get_config()
        assert [back(k) for k in range(15)] == [s(k) for k in range(15)]
    restored = O.get({"class_name": "adamw", "config": O.AdamW(S.CosineDecay(0.1, 5)).get_config()})
    assert isinstance(restored.learning_rate, S.CosineDecay) and restored.learning_rate(5) == 0.0


def test_schedule_bad_arguments():
    with pytest.raises(ValueError, match=r"^values: expected one more value than boundaries \(2 boundaries, so 3 "
                                         r"values\), got 2 values \[0.1, 0.2\]$"):
        S.PiecewiseConstantDecay([1, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match=r"^boundaries: expected strictly increasing steps, got \[5, 2\]$"):
        S.PiecewiseConstantDecay([5, 2], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match=r"^decay_steps: expected an integer >= 1, got 0$"):
        S.CosineDecay(0.1, 0)
    with pytest.raises(ValueError, match=r"^alpha: expected a number >= 0.0, got -0.5$"):
        S.CosineDecay(0.1, 10, alpha=-0.5)
    with pytest.raises(ValueError, match=r"^values\[1\]: expected a number >= 0.0, got 'x'$"):
        S.PiecewiseConstantDecay([1], [0.1, "x"])
