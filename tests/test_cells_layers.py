"""Every cell through ``RNN(cell)``: finite differences, one step at a time, files, configs, bad arguments.

The cells: LSTMCell, GRUCell (reset_after True and False), SimpleRNNCell,
PeepholeLSTMCell, LayerNormLSTMCell and LSTMCell(proj_size). Finite
differences in float64 (``lstmlab.gradcheck``, central, eps 1e-6) against
every weight, the inputs and the initial states, with random upstream
gradients on the outputs *and* on every returned state, T >= 4, non-zero
initial states and random non-zero biases (layer-norm gammas around 1).
"""
import json

import numpy as np
import pytest

import lstmlab
from lstmlab import gradcheck
from lstmlab import layers as L
from lstmlab.models import Sequential, load_model

from helpers import assert_close
from layer_cases import float64, randomize  # noqa: F401 (float64 is a fixture)

D, H, P = 3, 4, 2
CELLS = {
    "lstm": lambda **kw: L.LSTMCell(H, **kw),
    "gru": lambda **kw: L.GRUCell(H, **kw),
    "gru_reset_before": lambda **kw: L.GRUCell(H, reset_after=False, **kw),
    "simple_rnn": lambda **kw: L.SimpleRNNCell(H, **kw),
    "peephole": lambda **kw: L.PeepholeLSTMCell(H, **kw),
    "layernorm": lambda **kw: L.LayerNormLSTMCell(H, **kw),
    "projection": lambda **kw: L.LSTMCell(H, proj_size=P, **kw),
}
KINDS = list(CELLS)
NEW_KINDS = ["gru_reset_before", "peephole", "layernorm", "projection"]
# post-, mid- and pre-padding, and a full row
MASK = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 1, 1, 0], [0, 0, 1, 1, 1]], bool)


def build(layer, rng, B=4, T=5, Din=D):
    x = np.ascontiguousarray(rng.standard_normal((B, T, Din)))
    layer.build((None, T, Din))
    layer.built = True
    randomize(layer, rng)
    return x


def random_states(layer, rng, B):
    return [np.ascontiguousarray(rng.uniform(-0.8, 0.8, (B, n))) for n in layer.cell.state_size]


def as_list(y):
    return list(y) if isinstance(y, list) else [y]


def check_layer_gradients(layer, x, rng, *, initial_state=None, mask=None, dropout_seed=None, tol=1e-6):
    """gradcheck of ``layer`` w.r.t. x, the initial states and every weight, random upstream gradients."""

    def run():
        if dropout_seed is not None:
            layer.rng = np.random.default_rng(dropout_seed)  # the same dropout masks in every evaluation
        return as_list(layer(x, training=True, mask=mask, initial_state=initial_state))

    outs = run()
    dys = [rng.standard_normal(o.shape) for o in outs]
    dx = layer.backward(dys if len(dys) > 1 else dys[0])
    wrt = {"x": x, **{w.path: w.value for w in layer.weights}}
    analytic = {"x": dx, **{w.path: g for w, g in zip(layer.weights, layer.grads)}}
    assert len(layer.grads) == len(layer.weights)
    if initial_state is not None:
        assert len(layer.initial_state_grads) == len(initial_state)
        for k, (s, g) in enumerate(zip(initial_state, layer.initial_state_grads)):
            wrt[f"initial_state[{k}]"], analytic[f"initial_state[{k}]"] = s, g

    def loss():
        return sum(float(np.sum(d * o)) for d, o in zip(dys, run()))

    report = gradcheck(loss, wrt, analytic, tol=tol)
    assert report.ok, report
    return outs


# --- finite differences ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_gradients_every_cell_sequences_and_states(float64, kind):
    rng = np.random.default_rng(KINDS.index(kind))
    layer = L.RNN(CELLS[kind](), return_sequences=True, return_state=True)
    x = build(layer, rng)
    outs = check_layer_gradients(layer, x, rng, initial_state=random_states(layer, rng, 4))
    width = P if kind == "projection" else H
    assert outs[0].shape == (4, 5, width) and outs[1].shape == (4, width)


@pytest.mark.parametrize("kind", KINDS)
def test_gradients_every_cell_with_mask(float64, kind):
    rng = np.random.default_rng(10 + KINDS.index(kind))
    layer = L.RNN(CELLS[kind](), return_sequences=True, return_state=True)
    x = build(layer, rng)
    check_layer_gradients(layer, x, rng, initial_state=random_states(layer, rng, 4), mask=MASK)


@pytest.mark.parametrize("kind", KINDS)
def test_gradients_every_cell_go_backwards_mask_last_output(float64, kind):
    rng = np.random.default_rng(20 + KINDS.index(kind))
    layer = L.RNN(CELLS[kind](), go_backwards=True, return_state=True)  # the last output, not the sequence
    x = build(layer, rng)
    check_layer_gradients(layer, x, rng, initial_state=random_states(layer, rng, 4), mask=MASK)


@pytest.mark.parametrize("kind", NEW_KINDS)
def test_gradients_without_bias(float64, kind):
    rng = np.random.default_rng(30 + KINDS.index(kind))
    layer = L.RNN(CELLS[kind](use_bias=False), return_sequences=True, return_state=True)
    x = build(layer, rng)
    assert not any(w.name == "bias" for w in layer.weights)
    check_layer_gradients(layer, x, rng, initial_state=random_states(layer, rng, 4))


@pytest.mark.parametrize("kind", NEW_KINDS)
def test_gradients_with_dropout_and_recurrent_dropout(float64, kind):
    rng = np.random.default_rng(40 + KINDS.index(kind))
    layer = L.RNN(CELLS[kind](dropout=0.25, recurrent_dropout=0.4), return_sequences=True, return_state=True)
    x = build(layer, rng)
    states = random_states(layer, rng, 4)
    outs = check_layer_gradients(layer, x, rng, initial_state=states, dropout_seed=5)
    plain = layer(x, training=False, initial_state=states)
    assert np.abs(outs[0] - plain[0]).max() > 1e-3  # the masks did something
    # the recurrent mask alone changes the result too (it reaches h_{t-1}, not the input)
    no_input_dropout = L.RNN(CELLS[kind](recurrent_dropout=0.4), return_sequences=True)
    no_input_dropout.build((None, 5, D))
    no_input_dropout.set_weights(layer.get_weights())
    no_input_dropout.rng = np.random.default_rng(5)
    assert np.abs(no_input_dropout(x, training=True)[:, 1:] - no_input_dropout(x)[:, 1:]).max() > 1e-3


def test_gradients_stacked_cells_of_every_new_kind(float64):
    rng = np.random.default_rng(50)
    cells = [L.PeepholeLSTMCell(3), L.LayerNormLSTMCell(4), L.LSTMCell(5, proj_size=2),
             L.GRUCell(3, reset_after=False)]
    layer = L.RNN(L.StackedRNNCells(cells), return_sequences=True, return_state=True, name="rnn")
    x = build(layer, rng)
    assert layer.cell.state_size == (3, 3, 4, 4, 2, 5, 3)
    assert [w.path for w in layer.weights][:4] == ["rnn/cell_0/kernel", "rnn/cell_0/recurrent_kernel",
                                                    "rnn/cell_0/bias", "rnn/cell_0/peephole"]
    check_layer_gradients(layer, x, rng, initial_state=random_states(layer, rng, 4), mask=MASK)


def test_gradients_list_of_cells_go_backwards(float64):
    rng = np.random.default_rng(51)
    layer = L.RNN([L.LSTMCell(3), L.GRUCell(2), L.SimpleRNNCell(3), L.LSTMCell(4, proj_size=3)],
                  go_backwards=True, return_sequences=True, return_state=True)
    assert isinstance(layer.cell, L.StackedRNNCells)
    x = build(layer, rng)
    check_layer_gradients(layer, x, rng, initial_state=random_states(layer, rng, 4), mask=MASK)


@pytest.mark.parametrize("kind", NEW_KINDS)
def test_gradients_bidirectional_rnn_of_cell(float64, kind):
    """Bidirectional needs no change for RNN(cell): it rebuilds the layer (and so the cell) from its config."""
    rng = np.random.default_rng(55 + KINDS.index(kind))
    layer = L.Bidirectional(L.RNN(CELLS[kind](), return_sequences=True))
    x = build(layer, rng)
    assert type(layer.backward_layer.cell) is type(layer.forward_layer.cell) and layer.backward_layer.go_backwards
    check_layer_gradients(layer, x, rng, mask=MASK)


@pytest.mark.parametrize("kind", KINDS)
def test_gradients_with_mask_from_embedding(float64, kind):
    """Embedding(mask_zero=True) -> RNN(cell): its mask reaches the RNN, and the gradient reaches the table."""
    rng = np.random.default_rng(60 + KINDS.index(kind))
    ids = np.array([[1, 2, 3, 4, 5], [6, 7, 0, 0, 0], [3, 0, 0, 0, 0], [2, 5, 1, 6, 0]])
    emb = L.Embedding(8, D, mask_zero=True)
    emb.build((None, 5))
    emb.built = True
    emb.embeddings.value[...] = rng.standard_normal(emb.embeddings.shape)
    layer = L.RNN(CELLS[kind](), return_sequences=True, return_state=True)
    build(layer, rng)

    def run():
        e = emb(ids, training=True)
        assert emb.output_mask is not None and emb.output_mask.shape == ids.shape
        return as_list(layer(e, training=True, mask=emb.output_mask))

    outs = run()
    dys = [rng.standard_normal(o.shape) for o in outs]
    emb.backward(layer.backward(dys))
    wrt = {w.path: w.value for w in emb.weights + layer.weights}
    analytic = {w.path: g for lay in (emb, layer) for w, g in zip(lay.weights, lay.grads)}
    report = gradcheck(lambda: sum(float(np.sum(d * o)) for d, o in zip(dys, run())), wrt, analytic)
    assert report.ok, report
    # padded steps leave the state alone: row 1's output after its last valid step (1) is its final h
    assert_close("state of a row after its last valid step", outs[1][1], outs[0][1, 1], 1e-15)


# --- one step at a time --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS + ["stacked"])
@pytest.mark.parametrize("dtype,tol", [("float64", 1e-12), ("float32", 1e-5)])
def test_public_step_equals_whole_sequence(kind, dtype, tol):
    rng = np.random.default_rng(70)
    cell = (L.StackedRNNCells([L.PeepholeLSTMCell(3, dtype=dtype), L.LSTMCell(4, proj_size=2, dtype=dtype),
                               L.LayerNormLSTMCell(3, dtype=dtype), L.GRUCell(2, reset_after=False, dtype=dtype)],
                              dtype=dtype)
            if kind == "stacked" else CELLS[kind](dtype=dtype))
    layer = L.RNN(cell, return_sequences=True, return_state=True, dtype=dtype)
    x = build(layer, rng).astype(dtype)
    states0 = [s.astype(dtype) for s in random_states(layer, rng, 4)]
    seq, *final = layer(x, initial_state=states0)
    assert seq.dtype == np.dtype(dtype)
    states = states0
    for t in range(x.shape[1]):
        out, states = layer.step(x[:, t], states)
        assert out.dtype == np.dtype(dtype)
        assert_close(f"output at step {t}", out, seq[:, t], tol)
    for k, (a, b) in enumerate(zip(states, final)):
        assert_close(f"final state {k}", a, b, tol)
    # from zero states, and the cell called as Keras does: output, new_states = cell(x_t, states)
    out0, _ = layer.step(x[:, 0])
    out1, _ = layer.cell(x[:, 0])
    np.testing.assert_array_equal(out0, out1)
    assert_close("first step from zeros", out0, layer(x[:, :1])[0][:, 0], tol)


# --- files and configs ---------------------------------------------------------------------------------------


def new_layers():
    """One layer per new cell or option, as a user writes it."""
    return {
        "peephole": L.RNN(L.PeepholeLSTMCell(4, peephole_initializer="random_normal", recurrent_dropout=0.1),
                          return_sequences=True),
        "layernorm": L.RNN(L.LayerNormLSTMCell(4, norm_epsilon=1e-4, norm_gamma_initializer="random_uniform"),
                           return_sequences=True),
        "layernorm_no_bias": L.RNN(L.LayerNormLSTMCell(3, use_bias=False), return_sequences=True),
        "projection_cell": L.RNN(L.LSTMCell(5, proj_size=2, projection_regularizer="l2"), return_sequences=True),
        "gru_reset_before_cell": L.RNN(L.GRUCell(4, reset_after=False), return_sequences=True),
        "lstm_proj_size": L.LSTM(5, proj_size=3, return_sequences=True, go_backwards=True),
        "gru_reset_after_false": L.GRU(4, reset_after=False, return_sequences=True),
        "stacked": L.RNN([L.PeepholeLSTMCell(3), L.LayerNormLSTMCell(4), L.LSTMCell(4, proj_size=1)],
                         return_sequences=True),
    }


@pytest.mark.parametrize("name", list(new_layers()))
def test_save_load_bit_identical(tmp_path, name):
    rng = np.random.default_rng(80)
    layer = new_layers()[name]
    model = Sequential([L.Embedding(7, D, mask_zero=True), layer, L.Dense(2)])
    ids = np.array([[1, 2, 3, 4, 5], [6, 1, 2, 0, 0], [3, 4, 0, 0, 0]])
    model.build((None, 5))
    for w in model.weights:
        w.value[...] = rng.uniform(-0.5, 0.5, w.shape)
    model.compile("adam", "mse")
    model.fit(ids, rng.standard_normal((3, 5, 2)), epochs=1, batch_size=3, verbose=0)
    path = tmp_path / "model.safetensors"
    model.save(path)
    loaded = load_model(path)
    assert type(loaded.layers[1]) is type(layer)
    assert type(loaded.layers[1].cell) is type(layer.cell)
    assert loaded.get_config() == model.get_config()
    assert [w.path for w in loaded.weights] == [w.path for w in model.weights]
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    np.testing.assert_array_equal(loaded.predict(ids, verbose=0), model.predict(ids, verbose=0))
    again = tmp_path / "again.safetensors"
    loaded.save(again)
    assert again.read_bytes() == path.read_bytes()


@pytest.mark.parametrize("name", list(new_layers()))
def test_config_round_trip(name):
    layer = new_layers()[name]
    config = layer.get_config()
    json.dumps(config)  # plain JSON
    clone = type(layer).from_config(json.loads(json.dumps(config)))
    assert clone.get_config() == config
    again = L.deserialize(json.loads(json.dumps(L.serialize(layer))))
    assert type(again) is type(layer) and again.get_config() == config


def test_cell_configs_hold_their_own_arguments():
    c = L.LayerNormLSTMCell(3, norm_epsilon=1e-5, unit_forget_bias=False).get_config()
    assert c["norm_epsilon"] == 1e-5 and c["unit_forget_bias"] is False
    assert c["norm_gamma_initializer"]["class_name"] == "ones" and c["norm_beta_initializer"]["class_name"] == "zeros"
    assert L.PeepholeLSTMCell(3).get_config()["peephole_initializer"]["class_name"] == "glorot_uniform"
    assert L.LSTMCell(4, proj_size=3).get_config()["proj_size"] == 3
    assert L.GRUCell(3, reset_after=False).get_config()["reset_after"] is False
    # A plain LSTM's config is unchanged (Keras's): no projection keys unless a projection is asked for.
    assert not {"proj_size", "projection_initializer", "projection_regularizer"} & set(L.LSTM(3).get_config())
    assert L.GRU(3).get_config()["reset_after"] is True


def test_new_weight_layouts_and_initial_values():
    lstmlab.set_random_seed(3)
    peep = L.RNN(L.PeepholeLSTMCell(4))
    peep.build((None, None, 3))
    assert [(w.name, w.shape) for w in peep.weights] == [("kernel", (3, 16)), ("recurrent_kernel", (4, 16)),
                                                         ("bias", (16,)), ("peephole", (3, 4))]
    np.testing.assert_array_equal(peep.cell.bias.value[4:8], 1.0)  # unit_forget_bias
    ln = L.RNN(L.LayerNormLSTMCell(4))
    ln.build((None, None, 3))
    assert [(w.name, w.shape) for w in ln.weights][3:] == [
        ("kernel_norm_gamma", (16,)), ("kernel_norm_beta", (16,)), ("recurrent_norm_gamma", (16,)),
        ("recurrent_norm_beta", (16,)), ("state_norm_gamma", (4,)), ("state_norm_beta", (4,))]
    for w in ln.weights[3:]:
        np.testing.assert_array_equal(w.value, 1.0 if w.name.endswith("gamma") else 0.0)
    proj = L.LSTM(5, proj_size=2, name="lstm")
    proj.build((None, None, 3))
    assert [(w.path, w.shape) for w in proj.weights] == [
        ("lstm/kernel", (3, 20)), ("lstm/recurrent_kernel", (2, 20)), ("lstm/bias", (20,)),
        ("lstm/projection_kernel", (5, 2))]
    assert proj.count_params() == 3 * 20 + 2 * 20 + 20 + 5 * 2
    assert proj.compute_output_shape((None, 7, 3)) == (None, 2)
    gru = L.GRU(4, reset_after=False)
    gru.build((None, None, 3))
    assert [w.shape for w in gru.weights] == [(3, 12), (4, 12), (12,)]


def test_file_saved_before_cells_still_loads():
    """tests/data/pre_cells_model.* were written by commit 3e5bb0a (LSTM, GRU, SimpleRNN as separate classes,
    before RNN(cell)): Embedding(mask_zero) -> Bidirectional(LSTM) -> GRU -> SimpleRNN(go_backwards) -> LSTM ->
    Dense, trained two steps, with that version's predictions."""
    import pathlib

    data = pathlib.Path(__file__).parent / "data"
    expected = np.load(data / "pre_cells_model.npz", allow_pickle=False)
    model = load_model(data / "pre_cells_model.safetensors")
    assert [type(layer).__name__ for layer in model.layers] == ["Embedding", "Bidirectional", "GRU", "SimpleRNN",
                                                                 "LSTM", "Dense"]
    assert [w.path for w in model.weights] == list(expected["paths"])
    np.testing.assert_allclose(model.predict(expected["ids"], verbose=0), expected["predictions"], rtol=1e-6,
                               atol=1e-7)


# --- bad arguments -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("make,message", [
    (lambda: L.LSTMCell(4, proj_size=0), r"^proj_size: expected None or an integer in \[1, units=4\)"),
    (lambda: L.LSTMCell(4, proj_size=4), r"^proj_size: expected None or an integer in \[1, units=4\).*got 4$"),
    (lambda: L.LSTM(4, proj_size=7), r"^proj_size: expected None or an integer in \[1, units=4\).*got 7$"),
    (lambda: L.LSTM(4, proj_size=2.0), r"^proj_size: .*got 2.0$"),
    (lambda: L.LSTM(4, proj_size=True), r"^proj_size: .*got True$"),
    (lambda: L.LSTMCell(4, proj_size=2, projection_initializer="xavier"), r"^projection_initializer: unknown"),
    (lambda: L.GRUCell(3, reset_after="no"), r"^reset_after: expected True or False, got 'no'$"),
    (lambda: L.GRU(3, reset_after=None), r"^reset_after: expected True or False, got None$"),
    (lambda: L.LayerNormLSTMCell(3, norm_epsilon=0), r"^norm_epsilon: expected a positive finite number, got 0$"),
    (lambda: L.LayerNormLSTMCell(3, norm_epsilon=float("nan")), r"^norm_epsilon: expected a positive finite"),
    (lambda: L.LayerNormLSTMCell(3, norm_epsilon="1e-3"), r"^norm_epsilon: expected a positive finite"),
    (lambda: L.LayerNormLSTMCell(3, norm_gamma_initializer="nope"), r"^norm_gamma_initializer: unknown"),
    (lambda: L.LayerNormLSTMCell(3, norm_beta_initializer=3), r"^norm_beta_initializer: unknown"),
    (lambda: L.PeepholeLSTMCell(3, peephole_initializer="xavier"), r"^peephole_initializer: unknown"),
    (lambda: L.PeepholeLSTMCell(0), r"^units: expected a positive integer, got 0$"),
    (lambda: L.PeepholeLSTMCell(3, recurrent_dropout=1.5), r"^recurrent_dropout: expected a rate in \[0, 1\)"),
    (lambda: L.PeepholeLSTMCell(3, proj_size=2), r"proj_size"),
])
def test_bad_arguments_one_clear_error(make, message):
    with pytest.raises((ValueError, TypeError), match=message):
        make()


@pytest.mark.parametrize("spec,message", [
    ({"class_name": "PeepholeLSTMCell", "config": {"units": 3, "proj_size": 2}},
     r"^proj_size: not an argument of PeepholeLSTMCell"),
    ({"class_name": "LayerNormLSTMCell", "config": {"units": 3, "norm_epsilon": "x"}},
     r"^norm_epsilon: expected a positive finite number, got 'x'$"),
    ({"class_name": "LayerNormLSTMCell", "config": {}}, r"^units: LayerNormLSTMCell needs this argument$"),
    ({"class_name": "LSTM", "config": {"units": 3, "proj_size": 3}}, r"^proj_size: expected None or an integer"),
    ({"class_name": "GRU", "config": {"units": 3, "reset_after": "false"}}, r"^reset_after: expected True or False"),
    ({"class_name": "RNN", "config": {"cell": {"class_name": "PeepholeLSTMCell", "config": {"units": 3,
                                                                                              "peephole": 1}}}},
     r"^peephole: not an argument of PeepholeLSTMCell"),
])
def test_bad_configs_from_a_file_one_clear_error(spec, message):
    with pytest.raises(ValueError, match=message):
        L.deserialize(spec)


def test_wrong_initial_state_width_for_a_projection():
    layer = L.RNN(L.LSTMCell(4, proj_size=2))
    x = np.zeros((2, 3, 3), np.float32)
    with pytest.raises(ValueError, match=r"^initial_state\[0\]: layer 'rnn.*' expects shape \(2, 2\), got \(2, 4\)$"):
        layer(x, initial_state=[np.zeros((2, 4)), np.zeros((2, 4))])
