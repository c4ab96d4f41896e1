"""A batch whose steps are all padded (or a batch chunk with no valid step) through every cell's C loop.

The weight-gradient GEMMs then gather no rows at all (``chunk_weight_grads`` over zero valid steps); this
used to fail in ``functional._bptt.weight_grads`` with "cannot reshape array of size 0". The reference (the
cell's generic loop or NumPy path) gives zero gradients for every weight and input, and the initial states
pass through unchanged: so must the C loops, for the whole batch padded and for one thread's rows padded.
"""
import numpy as np
import pytest

from helpers import assert_close
from lstmlab import _fast
from lstmlab import layers as L

pytestmark = pytest.mark.skipif(not _fast.available(), reason="the C kernels were not built")

CELLS = {
    "lstm": lambda H: L.LSTMCell(H),
    "gru": lambda H: L.GRUCell(H),
    "gru_reset_before": lambda H: L.GRUCell(H, reset_after=False),
    "simple_rnn": lambda H: L.SimpleRNNCell(H),
    "peephole": lambda H: L.PeepholeLSTMCell(H),
    "projection": lambda H: L.LSTMCell(H, proj_size=3),
    "layernorm": lambda H: L.LayerNormLSTMCell(H),
}


@pytest.mark.parametrize("rows", ["all", "first-half"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("cell", sorted(CELLS))
def test_padded_rows_get_no_gradient_and_carry_the_states(cell, dtype, rows):
    B, T, D, H = 10, 6, 4, 5  # 10 rows: two threads' chunks of 5
    rng = np.random.default_rng(3)
    layer = L.RNN(CELLS[cell](H), return_sequences=True, return_state=True, dtype=dtype)
    layer.build((None, T, D))
    layer.set_weights([rng.uniform(-0.5, 0.5, w.shape).astype(dtype) for w in layer.get_weights()])
    mask = np.zeros((B, T), bool)
    if rows == "first-half":  # the sorted rows deal the padded ones to both chunks; still no-row GEMMs in C
        mask[B // 2:] = True
    x = rng.standard_normal((B, T, D)).astype(dtype)
    states = [rng.standard_normal((B, n)).astype(dtype) for n in layer.cell.state_size]
    outs = layer(x, training=True, mask=mask, initial_state=states)
    dys = [rng.standard_normal(o.shape).astype(dtype) for o in outs]
    dx = layer.backward(dys)
    tol = 1e-12 if dtype == "float64" else 1e-6
    padded = ~mask.any(axis=1)
    assert np.all(dx[padded] == 0)  # a padded step's input had no effect
    for k, (s0, s_T, ds0, ds_T) in enumerate(zip(states, outs[1:], layer.initial_state_grads, dys[1:])):
        assert_close("final state of padded rows", s_T[padded], s0[padded], tol)  # carried through
        # h0 reached h_T and, carried, every output of the row; c0 reached c_T only
        through_outputs = dys[0][padded].sum(axis=1) if k == 0 else 0
        assert_close("initial-state grad of padded rows", ds0[padded], ds_T[padded] + through_outputs, tol)
    if rows == "all":
        assert all(np.all(g == 0) for g in layer.grads)  # no valid step: no weight gradient
