"""Oracles for the cells at the layer level.

* ``RNN(LSTMCell(n))``, ``RNN(GRUCell(n))``, ``RNN(SimpleRNNCell(n))`` (and the new options) equal
  ``LSTM(n)``, ``GRU(n)``, ``SimpleRNN(n)`` on the same weights: outputs, states and every gradient,
  float64 to 1e-12; and the built-in cells' one-step ``step`` / ``step_backward`` run by the generic
  loop equal their whole-sequence (C / reference) path.
* ``LSTM(n, proj_size=p)`` equals PyTorch's ``nn.LSTM(proj_size=p)``: outputs, states and every gradient.
* ``RNN(PeepholeLSTMCell(n))`` equals ONNX Runtime's ``LSTM`` operator with ``P`` (the mapping and the
  runner are ``test_cell_oracles.onnx_lstm``).
* ``GRU(n, reset_after=False)`` equals Keras 3's ``keras.layers.GRU(n, reset_after=False)`` (torch
  backend): outputs, state, and every gradient through torch's autograd.

Biases and initial states are random and non-zero; upstream gradients random.
"""
import numpy as np
import pytest

from lstmlab import layers as L

from helpers import assert_close
from layer_cases import float64, randomize  # noqa: F401 (float64 is a fixture)
from test_cell_oracles import MASK3, onnx_lstm, torch_projection_lstm

MASK4 = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 1, 1, 0], [0, 0, 1, 1, 1]], bool)


def run_both_ways(layer, x, states, dys, mask=None):
    """Outputs, dx, weight gradients and initial-state gradients of one training call and its backward."""
    outs = layer(x, training=True, mask=mask, initial_state=states)
    dx = layer.backward(dys)
    return outs, dx, list(layer.grads), list(layer.initial_state_grads)


def assert_same_run(a, b, tol):
    (outs_a, dx_a, g_a, s_a), (outs_b, dx_b, g_b, s_b) = a, b
    for k, (p, q) in enumerate(zip(outs_a, outs_b)):
        assert_close(f"output {k}", p, q, tol)
    assert_close("dx", dx_a, dx_b, tol)
    assert len(g_a) == len(g_b) and len(s_a) == len(s_b)
    for k, (p, q) in enumerate(zip(g_a, g_b)):
        assert_close(f"weight gradient {k}", p, q, tol)
    for k, (p, q) in enumerate(zip(s_a, s_b)):
        assert_close(f"initial state gradient {k}", p, q, tol)


# --- RNN(cell) == the flat layer --------------------------------------------------------------------------------

FLAT = {
    "lstm": (lambda **kw: L.LSTM(4, **kw), lambda: L.LSTMCell(4)),
    "gru": (lambda **kw: L.GRU(4, **kw), lambda: L.GRUCell(4)),
    "simple_rnn": (lambda **kw: L.SimpleRNN(4, **kw), lambda: L.SimpleRNNCell(4)),
    "gru_reset_before": (lambda **kw: L.GRU(4, reset_after=False, **kw), lambda: L.GRUCell(4, reset_after=False)),
    "projection": (lambda **kw: L.LSTM(4, proj_size=3, **kw), lambda: L.LSTMCell(4, proj_size=3)),
}


@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("kind", list(FLAT))
def test_rnn_of_cell_equals_flat_layer(float64, kind, go_backwards):
    rng = np.random.default_rng(len(kind))
    make_flat, make_cell = FLAT[kind]
    args = dict(return_sequences=True, return_state=True, go_backwards=go_backwards)
    flat, layer = make_flat(**args), L.RNN(make_cell(), **args)
    x = rng.standard_normal((4, 5, 3))
    flat.build((None, 5, 3))
    layer.build((None, 5, 3))
    randomize(flat, rng)
    layer.set_weights(flat.get_weights())
    assert [w.shape for w in layer.weights] == [w.shape for w in flat.weights]
    states = [rng.uniform(-0.8, 0.8, (4, n)) for n in flat.cell.state_size]
    outs = flat(x, initial_state=states)
    dys = [rng.standard_normal(o.shape) for o in outs]
    for mask in (None, MASK4):
        assert_same_run(run_both_ways(layer, x, states, dys, mask), run_both_ways(flat, x, states, dys, mask), 1e-12)


class _LoopOnly:
    """Mixin: a cell that declines the whole-sequence path, so the RNN layer runs its step / step_backward."""

    def sequence(self, x, states, mask=None, recurrent_mask=None, need_cache=True):
        return None


class LoopLSTMCell(_LoopOnly, L.LSTMCell):
    pass


class LoopGRUCell(_LoopOnly, L.GRUCell):
    pass


class LoopSimpleRNNCell(_LoopOnly, L.SimpleRNNCell):
    pass


@pytest.mark.parametrize("fused,loop", [(L.LSTMCell, LoopLSTMCell), (L.GRUCell, LoopGRUCell),
                                        (L.SimpleRNNCell, LoopSimpleRNNCell)])
def test_builtin_cells_step_by_step_equal_their_whole_sequence_path(float64, fused, loop):
    """The one-step forward and backward of the built-in cells, run by the generic loop, equal the fused path."""
    rng = np.random.default_rng(7)
    args = dict(return_sequences=True, return_state=True)
    a, b = L.RNN(fused(4, recurrent_dropout=0.3), **args), L.RNN(loop(4, recurrent_dropout=0.3), **args)
    a.build((None, 5, 3))
    b.build((None, 5, 3))
    randomize(a, rng)
    b.set_weights(a.get_weights())
    x = rng.standard_normal((4, 5, 3))
    states = [rng.uniform(-0.8, 0.8, (4, n)) for n in a.cell.state_size]
    dys = [rng.standard_normal(o.shape) for o in a(x, initial_state=states)]
    for mask in (None, MASK4):
        a.rng, b.rng = np.random.default_rng(1), np.random.default_rng(1)  # the same recurrent-dropout masks
        assert_same_run(run_both_ways(b, x, states, dys, mask), run_both_ways(a, x, states, dys, mask), 1e-12)


# --- projection LSTM vs PyTorch -----------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")
@pytest.mark.parametrize("dtype,tol", [("float64", 1e-10), ("float32", 1e-5)])
@pytest.mark.parametrize("B,T,D,H,P", [(3, 5, 4, 6, 3), (2, 4, 3, 5, 1)])
def test_lstm_proj_size_equals_torch(B, T, D, H, P, dtype, tol):
    pytest.importorskip("torch")
    rng = np.random.default_rng(H * 10 + P)
    layer = L.LSTM(H, proj_size=P, return_sequences=True, return_state=True, dtype=dtype)
    layer.build((None, T, D))
    randomize(layer, rng)
    x = rng.standard_normal((B, T, D)).astype(dtype)
    h0 = rng.uniform(-0.8, 0.8, (B, P)).astype(dtype)
    c0 = rng.uniform(-0.8, 0.8, (B, H)).astype(dtype)
    outs, h, c = layer(x, training=True, initial_state=[h0, c0])
    assert outs.shape == (B, T, P) and h.shape == (B, P) and c.shape == (B, H)
    douts, dh, dc = (rng.standard_normal(a.shape).astype(dtype) for a in (outs, h, c))
    dx = layer.backward([douts, dh, dc])
    ours = {"outputs": outs, "h_T": h, "c_T": c, "dx": dx, "dh0": layer.initial_state_grads[0],
            "dc0": layer.initial_state_grads[1],
            **{f"d{w.name}": g for w, g in zip(layer.weights, layer.grads)}}
    theirs = torch_projection_lstm(x, (h0, c0), {w.name: w.value for w in layer.weights}, douts, (dh, dc))
    assert set(ours) == set(theirs) - {"dbias_hh"}
    for name, value in ours.items():
        assert_close(name, value, theirs[name], tol)


# --- peephole LSTM vs ONNX Runtime ---------------------------------------------------------------------------


def peephole_layer(H, D, T, rng):
    layer = L.RNN(L.PeepholeLSTMCell(H), return_sequences=True, return_state=True)
    layer.build((None, T, D))
    randomize(layer, rng)
    layer.cell.peephole.value[...] *= 3.0  # large enough that a wrong row order shows
    return layer, {w.name: w.value.astype(np.float64) for w in layer.weights}


@pytest.mark.parametrize("B,T,D,H,seed", [(1, 5, 3, 4, 0), (3, 5, 4, 6, 1), (3, 7, 2, 3, 2)])
def test_rnn_peephole_cell_equals_onnxruntime(B, T, D, H, seed):
    rng = np.random.default_rng(seed)
    layer, w = peephole_layer(H, D, T, rng)
    x = rng.standard_normal((B, T, D)).astype(np.float32)
    states = [rng.uniform(-0.8, 0.8, (B, H)).astype(np.float32) for _ in range(2)]
    outs, h, c = layer(x, initial_state=states)
    Y, Y_h, Y_c = onnx_lstm(x, states, w)
    assert_close("outputs", outs, Y, 1e-5)
    assert_close("h_T", h, Y_h, 1e-5)
    assert_close("c_T", c, Y_c, 1e-5)


def test_rnn_peephole_cell_with_mask_equals_onnxruntime_sequence_lens():
    rng = np.random.default_rng(3)
    layer, w = peephole_layer(6, 4, 5, rng)
    x = rng.standard_normal((3, 5, 4)).astype(np.float32)
    states = [rng.uniform(-0.8, 0.8, (3, 6)).astype(np.float32) for _ in range(2)]
    outs, h, c = layer(x, mask=MASK3, initial_state=states)
    Y, Y_h, Y_c = onnx_lstm(x, states, w, seq_lens=MASK3.sum(axis=1))
    valid = MASK3[:, :, None]  # ONNX writes zeros past a sequence's end where we repeat its last output
    assert_close("outputs (valid steps)", np.where(valid, outs, 0.0), Y, 1e-5)
    assert_close("h_T", h, Y_h, 1e-5)
    assert_close("c_T", c, Y_c, 1e-5)


# --- GRU(reset_after=False) vs Keras 3 -------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("go_backwards", [False, True])
def test_gru_reset_before_equals_keras3_with_gradients(go_backwards):
    """float32 to 1e-5: Keras 3 computes float64 matmuls in float32 (its dtype rules follow JAX's x64-off
    default), so it cannot be a float64 oracle; the float64 checks are the finite differences."""
    keras = pytest.importorskip("keras")
    torch = pytest.importorskip("torch")
    if keras.backend.backend() != "torch":
        pytest.skip(f"keras runs on the {keras.backend.backend()} backend; this test expects torch")
    B, T, D, H = 4, 5, 3, 4
    rng = np.random.default_rng(11)
    # Rows whose first *processed* step is valid (before it Keras outputs zeros where we repeat h0); with
    # go_backwards the last step is processed first. Post- and mid-padding.
    mask = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 1, 1, 0], [1, 1, 0, 0, 0]], bool)
    if go_backwards:
        mask = mask[:, ::-1].copy()
    ours = L.GRU(H, reset_after=False, return_sequences=True, return_state=True, go_backwards=go_backwards,
                 dtype="float32")
    ours.build((None, T, D))
    randomize(ours, rng)
    x = rng.standard_normal((B, T, D)).astype(np.float32)
    h0 = rng.uniform(-0.8, 0.8, (B, H)).astype(np.float32)
    outs, h = ours(x, training=True, mask=mask, initial_state=[h0])
    douts = rng.standard_normal(outs.shape).astype(np.float32)
    dh = rng.standard_normal(h.shape).astype(np.float32)
    dx = ours.backward([douts, dh])

    theirs = keras.layers.GRU(H, reset_after=False, return_sequences=True, return_state=True,
                              go_backwards=go_backwards)
    theirs.build((B, T, D))
    theirs.set_weights(ours.get_weights())
    tx = torch.tensor(x, requires_grad=True)
    th0 = torch.tensor(h0, requires_grad=True)
    k_outs, k_h = theirs(tx, initial_state=[th0], mask=torch.tensor(mask))
    ((k_outs * torch.tensor(douts)).sum() + (k_h * torch.tensor(dh)).sum()).backward()

    t = lambda a: a.detach().cpu().numpy()  # noqa: E731
    assert_close("outputs", outs, t(k_outs), 1e-5)
    assert_close("h_T", h, t(k_h), 1e-5)
    assert_close("dx", dx, t(tx.grad), 1e-5)
    assert_close("dh0", ours.initial_state_grads[0], t(th0.grad), 1e-5)
    assert len(ours.grads) == len(theirs.weights) == 3
    for w, g, kw in zip(ours.weights, ours.grads, theirs.weights):
        assert_close(f"d{w.name}", g, t(kw.value.grad), 1e-5)
