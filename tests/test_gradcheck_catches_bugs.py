"""The checks can fail: mutants of the real backward passes are reported as wrong.

Each mutant is the library's own backward with one line changed (the source is
edited and re-executed in the module's namespace), so the test follows the code
it guards instead of a hand-written copy.
"""
import inspect
import textwrap

import numpy as np
import pytest

from helpers import random_problem
from lstmlab import functional as F
from lstmlab import gradcheck
from lstmlab.functional import gru as gru_module
from lstmlab.functional import lstm as lstm_module


def mutant(func, module, old, new):
    src = textwrap.dedent(inspect.getsource(func))
    assert src.count(old) == 1, f"mutation target {old!r} not found exactly once in {func.__name__}"
    namespace = dict(vars(module))
    exec(compile(src.replace(old, new), f"<mutant of {func.__name__}>", "exec"), namespace)
    return namespace[func.__name__]


def lstm_report(backward_fn, upstream="random"):
    p = random_problem("lstm", 2, 5, 3, 4, seed=21)
    rng = np.random.default_rng(5)
    hs, (h, c), cache = F.lstm_forward(**p)
    if upstream == "random":
        dhs, dh, dc = rng.standard_normal(hs.shape), rng.standard_normal(h.shape), rng.standard_normal(c.shape)
    else:
        dhs, dh, dc = np.ones(hs.shape), None, None

    def loss():
        hs2, (h2, c2), _ = F.lstm_forward(**p)
        total = np.sum(dhs * hs2)
        return total + (0.0 if dh is None else np.sum(dh * h2) + np.sum(dc * c2))

    g = backward_fn(dhs, dh, dc, cache)
    analytic = dict(x=g.dx, kernel=g.dkernel, recurrent_kernel=g.drecurrent_kernel, bias=g.dbias, h0=g.dh0, c0=g.dc0)
    return gradcheck(loss, p, analytic)


def test_the_real_lstm_backward_passes():
    report = lstm_report(F.lstm_backward)
    assert report.ok, report


@pytest.mark.parametrize(
    "old,new,must_fail",
    [
        # The classic: BPTT that forgets the cell-state path through the forget gate.
        ("dc_next = dc * f ", "dc_next = 0.0 * dc ", {"c0", "x", "kernel", "recurrent_kernel", "bias"}),
        # The gradient from h_t into c_t through (6) is dropped.
        ("dc = dc + act.backward(dh * o, tcs[t])", "dc = dc", {"c0", "x", "kernel", "bias"}),
        # The hidden-state path back in time is dropped.
        ("dh_next = dz[t] @ recurrent_kernel.T", "dh_next = 0.0 * dh", {"h0", "x", "kernel", "recurrent_kernel"}),
        # The forget gate's derivative evaluated at the input gate's value.
        ("rec_act.backward(df, f)", "rec_act.backward(df, i)", {"kernel", "bias"}),
        # Off-by-one: the cell state of step t used where c_{t-1} belongs.
        ("c_prev = cs[t - 1] if t > 0 else cache[\"c0\"]", "c_prev = cs[t]", {"kernel", "bias"}),
    ],
    ids=["no-forget-path", "no-h-to-c", "no-recurrent-h", "wrong-gate-derivative", "off-by-one-c"],
)
def test_lstm_mutants_are_reported(old, new, must_fail):
    report = lstm_report(mutant(F.lstm_backward, lstm_module, old, new))
    assert not report.ok, f"mutant {new!r} was not detected:\n{report}"
    assert must_fail <= set(report.failed), report
    assert report.max_rel_error > 1e-3
    assert "<-- wrong" in str(report)


def test_gru_mutant_without_direct_path_is_reported():
    bad = mutant(F.gru_backward, gru_module, "dh_next = dh * z + dh_rec", "dh_next = dh_rec")
    p = random_problem("gru", 2, 4, 3, 3, seed=22)
    rng = np.random.default_rng(6)
    hs, h, cache = F.gru_forward(**p)
    dhs, dh = rng.standard_normal(hs.shape), rng.standard_normal(h.shape)
    loss = lambda: np.sum(dhs * F.gru_forward(**p)[0]) + np.sum(dh * F.gru_forward(**p)[1])  # noqa: E731
    g = bad(dhs, dh, cache)
    analytic = dict(x=g.dx, kernel=g.dkernel, recurrent_kernel=g.drecurrent_kernel, bias=g.dbias, h0=g.dh0)
    report = gradcheck(loss, p, analytic)
    assert "h0" in report.failed, report


def test_report_names_each_tensor_and_its_error():
    report = lstm_report(F.lstm_backward)
    assert [t.name for t in report.tensors] == ["x", "kernel", "recurrent_kernel", "bias", "h0", "c0"]
    assert report["kernel"].checked == 3 * 16
    assert report.max_rel_error < 1e-6
    text = str(report)
    assert "OK" in text and "recurrent_kernel" in text


def test_gradcheck_samples_elements_when_asked():
    p = {"w": np.random.default_rng(0).standard_normal((30, 30))}
    report = gradcheck(lambda: float(np.sum(p["w"] ** 3)), p, {"w": 3 * p["w"] ** 2}, max_elements=50)
    assert report.ok and report["w"].checked == 50


def test_gradcheck_restores_the_arrays():
    w = np.random.default_rng(1).standard_normal(10)
    before = w.copy()
    gradcheck(lambda: float(np.sum(np.sin(w))), {"w": w}, {"w": np.cos(w)})
    assert np.array_equal(w, before)


def test_gradcheck_rejects_float32_and_mismatched_gradients():
    w32 = np.ones(3, np.float32)
    with pytest.raises(ValueError, match=r"wrt\['w'\]: expected a float64 ndarray .* got float32"):
        gradcheck(lambda: 0.0, {"w": w32}, {"w": w32})
    w = np.ones(3)
    with pytest.raises(ValueError, match=r"analytic\['w'\]: expected shape \(3,\) like wrt\['w'\], got \(4,\)"):
        gradcheck(lambda: 0.0, {"w": w}, {"w": np.ones(4)})
    with pytest.raises(ValueError, match=r"analytic: expected gradients for exactly \['w'\], got \['v'\]"):
        gradcheck(lambda: 0.0, {"w": w}, {"v": w})
