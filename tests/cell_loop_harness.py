"""What the tests of the LSTM variants' C time loops share (test_fast_peephole, test_fast_projection,
test_fast_layernorm): running a layer on both paths (the cell's C loop, then the RNN layer's generic loop with
the loop module's ``covers`` turned off), comparing everything, and the per-variant check run in a subprocess.
"""
import numpy as np

from helpers import assert_close
from lstmlab import _fast
from lstmlab._fast import parallel

TOL = {"float64": 1e-12, "float32": 1e-5}
NAMES = ("outputs", "dx", "grads", "state grads")


def run_layer(layer, x, mask, states, dys, training=True):
    """(outputs, dx, weight grads, initial-state grads); the last three None without training (the last one
    None without initial states too)."""
    layer.rng = np.random.default_rng(5)  # the same recurrent-dropout mask on both paths
    outs = layer(x, training=training, mask=mask, initial_state=states)
    if not training:
        return outs, None, None, None
    dx = layer.backward(dys)
    state_grads = layer.initial_state_grads
    return outs, dx, list(layer.grads), None if state_grads is None else list(state_grads)


def both_paths(monkeypatch, fast, layer, *args, training=True):
    """The C path's results (checked to have run in C: ``fast.CALLS``) and the reference's (the generic loop,
    with ``fast.covers`` off so that the cell's ``sequence()`` returns None)."""
    before = fast.CALLS.copy()
    ours = run_layer(layer, *args, training=training)
    calls = fast.CALLS - before
    assert calls["forward"] == 1 and calls["backward"] == int(training), calls
    with monkeypatch.context() as m:
        m.setattr(fast, "covers", lambda *a: False)
        ref = run_layer(layer, *args, training=training)
    assert fast.CALLS - before == calls  # the reference did not run in C
    return ours, ref, calls


def assert_all_close(ours, ref, tol, names=NAMES):
    for name, a, b in zip(names, ours, ref):
        if b is None:
            assert a is None
            continue
        a, b = (a if isinstance(a, list) else [a]), (b if isinstance(b, list) else [b])
        assert len(a) == len(b), name
        for k, (u, v) in enumerate(zip(a, b)):
            assert u.dtype == v.dtype, (name, k)
            assert_close(f"{name}[{k}]", u, v, tol)


def variant_check(check) -> None:
    """Run in a subprocess with LSTMLAB_ISA set: ``check(monkeypatch, dtype, rng, names)`` on one thread and two,
    in both dtypes, then print what the parent test reads."""
    import pytest

    rng = np.random.default_rng(0)
    names = [f"{_fast.ISA} {n}" for n in NAMES]
    with pytest.MonkeyPatch.context() as mp:
        for threads in (1, 2):
            parallel._THREADS = threads
            for dtype in ("float64", "float32"):
                check(mp, dtype, rng, names)
    print("checked", _fast.ISA)


def check_square_states(make_layer, fast) -> None:
    """``variant_check`` for a cell whose two states are (B, H) (the peephole and layer-norm LSTMs): masked
    with holes, recurrent dropout 0.3, a batch split over the threads and ragged 16-float vectors."""
    from test_fast_masks_dropout import make_mask

    def check(mp, dtype, rng, names):
        B, T, D, H = 9, 6, 7, 33
        layer = make_layer(D, H, T, dtype, seed=3, recurrent_dropout=0.3)
        args = (rng.standard_normal((B, T, D)).astype(dtype), make_mask("holes", B, T, rng),
                [rng.uniform(-0.8, 0.8, (B, H)).astype(dtype) for _ in range(2)],
                [rng.standard_normal(s).astype(dtype) for s in [(B, T, H), (B, H), (B, H)]])
        ours, ref, _ = both_paths(mp, fast, layer, *args)
        assert_all_close(ours, ref, TOL[dtype], names=names)

    variant_check(check)


def assert_variant_ran(isa: str, module: str) -> None:
    """The parent side: ``module.child_check()`` in a subprocess with LSTMLAB_ISA=isa passed."""
    from test_isa_variants import run_child

    r = run_child(isa, f"import {module} as t; t.child_check()")
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.strip() == f"checked {isa}"


def gradcheck_calls(fast, layer, x, **call_args):
    """Finite differences through ``layer`` (float64) on its C path: the report is ok, and the C loop's calls
    made on the way (``fast.CALLS`` counted during the check) are returned for the caller's asserts."""
    from lstmlab.gradcheck import check_layer

    before = fast.CALLS.copy()
    report = check_layer(layer, x, **call_args)
    assert report.ok, report
    calls = fast.CALLS - before
    assert calls["backward"] >= 1 and calls["forward"] >= 1
    return calls
