"""The one-step cell math of lstmlab.functional as test cases: random weights, states, and runs through the loop.

Every case is built from the module's own ``weight_shapes``, so a test that
walks the weights walks them in the order the module stores them.
"""
from __future__ import annotations

import functools

import numpy as np

from lstmlab.functional import gru_reset_before, layernorm_lstm, peephole_lstm, projection_lstm
from lstmlab.functional.recurrence import recurrence_backward, recurrence_forward

# kind -> (module, step, step_backward, state widths as a function of (H, P))
CELLS = {
    "peephole_lstm": (peephole_lstm, peephole_lstm.peephole_lstm_step, peephole_lstm.peephole_lstm_step_backward,
                      lambda H, P: (H, H)),
    "projection_lstm": (projection_lstm, projection_lstm.projection_lstm_step,
                        projection_lstm.projection_lstm_step_backward, lambda H, P: (P, H)),
    "layernorm_lstm": (layernorm_lstm, layernorm_lstm.layernorm_lstm_step, layernorm_lstm.layernorm_lstm_step_backward,
                       lambda H, P: (H, H)),
    "gru_reset_before": (gru_reset_before, gru_reset_before.gru_reset_before_step,
                         gru_reset_before.gru_reset_before_step_backward, lambda H, P: (H,)),
}
KINDS = list(CELLS)


def shapes_of(kind, D, H, P=2, use_bias=True):
    module = CELLS[kind][0]
    extra = {"proj_size": P} if kind == "projection_lstm" else {}
    return module.weight_shapes(D, H, use_bias=use_bias, **extra)


def random_case(kind, B, T, D, H, P=2, *, seed=0, dtype=np.float64, use_bias=True, scale=0.5):
    """``(x, states, weights)``: random inputs, non-zero initial states, non-zero weights and biases.

    Layer-norm gammas are drawn around 1 (their initial value) rather than around 0.
    """
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((B, T, D))
    states = tuple(rng.uniform(-0.8, 0.8, (B, w)) for w in CELLS[kind][3](H, P))
    weights = {}
    for name, shape in shapes_of(kind, D, H, P, use_bias).items():
        w = rng.uniform(-scale, scale, shape)
        weights[name] = 1.0 + w if name.endswith("_gamma") else w
    cast = lambda a: np.ascontiguousarray(a, dtype=dtype)  # noqa: E731
    return cast(x), tuple(cast(s) for s in states), {k: cast(v) for k, v in weights.items()}


def bind(kind, weights, **options):
    """``(step, step_backward)`` for the loop, the weights bound by keyword."""
    _, step, step_backward, _ = CELLS[kind]
    w = dict(weights)
    w.setdefault("bias", None)
    return functools.partial(step, **w, **options), step_backward


def run_forward(kind, x, states, weights, mask=None, **options):
    step, _ = bind(kind, weights, **options)
    return recurrence_forward(step, x, states, mask=mask)


def run_backward(kind, weights, douts, dfinal, cache):
    _, step_backward = bind(kind, weights)
    return recurrence_backward(step_backward, douts, dfinal, cache)
