"""lstmlab.interop.from_torch / to_torch against real PyTorch.

from_torch: every nn.LSTM / nn.GRU / nn.RNN option (num_layers 1 and 2, bidirectional, proj_size, batch_first,
bias=False, relu) gives layers whose outputs and final states equal PyTorch's, from the module and from its
state_dict. to_torch: the returned module's outputs, final states and autograd gradients equal ours
(``model(x, training=True)`` then ``model.backward``). PyTorch's modules keep their random (non-zero) biases;
inputs, initial states and upstream gradients are random. GRU's gate reordering is checked block by block.
"""
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from helpers import assert_close  # noqa: E402

from lstmlab import Sequential, layers  # noqa: E402
from lstmlab.interop import from_torch, to_torch  # noqa: E402
from lstmlab.interop.torch_interop import torch_state_dict  # noqa: E402

TOL = 1e-5
B, T, D = 3, 5, 4


def rng(seed=0):
    return np.random.default_rng(seed)


def torch_module(kind, seed=0, **kw):
    torch.manual_seed(seed)
    if kind == "lstm":
        return nn.LSTM(D, 6, **kw)
    if kind == "gru":
        return nn.GRU(D, 6, **kw)
    return nn.RNN(D, 6, nonlinearity=kind.split("_")[1], **kw)


def torch_run(m, x, batch_first, hx=None):
    """PyTorch's output (batch-first) and final states in lstmlab's order (per layer, per direction: h, c)."""
    xt = torch.from_numpy(x if batch_first else x.transpose(1, 0, 2).copy())
    with torch.no_grad():
        out, final = m(xt, hx)
    out = out.numpy() if batch_first else out.numpy().transpose(1, 0, 2)
    h, c = final if isinstance(m, nn.LSTM) else (final, None)
    states = []
    for k in range(h.shape[0]):
        states += [h[k].numpy()] + ([c[k].numpy()] if c is not None else [])
    return out, states


RECURRENT = [(kind, L, bi, bf, bias) for kind in ("lstm", "gru", "rnn_tanh", "rnn_relu") for L in (1, 2)
             for bi in (False, True) for bf in (True, False) for bias in (True, False)]


@pytest.mark.parametrize("kind,num_layers,bidirectional,batch_first,bias", RECURRENT,
                         ids=[f"{k}-L{n}-{'bi' if b else 'uni'}-{'bf' if f else 'tf'}-{'bias' if s else 'nobias'}"
                              for k, n, b, f, s in RECURRENT])
def test_from_torch_module_outputs_and_states(kind, num_layers, bidirectional, batch_first, bias):
    m = torch_module(kind, num_layers=num_layers, bidirectional=bidirectional, batch_first=batch_first, bias=bias)
    x = rng(1).standard_normal((B, T, D)).astype(np.float32)
    t_out, t_states = torch_run(m, x, batch_first)
    ours = from_torch(m)  # batch-first whatever the module's batch_first
    assert_close("outputs", ours(x), t_out, TOL)
    out, *states = from_torch(m, return_state=True)(x)
    assert_close("outputs with states", out, t_out, TOL)
    assert len(states) == len(t_states)
    for k, (a, b) in enumerate(zip(states, t_states)):
        assert_close(f"state {k}", a, b, TOL)
    # the same from the state_dict alone (an nn.RNN's nonlinearity is the one thing it cannot say)
    extra = {"nonlinearity": kind.split("_")[1]} if kind.startswith("rnn") else {}
    assert_close("from state_dict", from_torch(m.state_dict(), **extra)(x), t_out, TOL)


@pytest.mark.parametrize("num_layers,bidirectional", [(1, False), (1, True), (2, False), (2, True)])
def test_from_torch_projection_lstm(num_layers, bidirectional):
    torch.manual_seed(3)
    m = nn.LSTM(D, 6, proj_size=3, num_layers=num_layers, bidirectional=bidirectional, batch_first=True)
    x = rng(2).standard_normal((B, T, D)).astype(np.float32)
    t_out, t_states = torch_run(m, x, True)
    out, *states = from_torch(m, return_state=True)(x)
    assert out.shape == (B, T, 3 * (2 if bidirectional else 1))
    assert_close("outputs", out, t_out, TOL)
    for k, (a, b) in enumerate(zip(states, t_states)):
        assert_close(f"state {k}", a, b, TOL)
    assert_close("from state_dict", from_torch(m.state_dict())(x), t_out, TOL)
    first = from_torch(m) if num_layers == 1 else from_torch(m).layers[0]
    cell = (first.forward_layer if bidirectional else first).cell
    assert cell.proj_size == 3
    np.testing.assert_array_equal(cell.projection_kernel.value, m.weight_hr_l0.detach().numpy().T)


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn_tanh"])
def test_from_torch_initial_states(kind):
    m = torch_module(kind, seed=4, batch_first=True, bidirectional=True)
    r = rng(5)
    x = r.standard_normal((B, T, D)).astype(np.float32)
    n = 2 if kind == "lstm" else 1
    init = [r.uniform(-0.8, 0.8, (B, 6)).astype(np.float32) for _ in range(2 * n)]  # [h_f, (c_f), h_b, (c_b)]
    h0 = torch.from_numpy(np.stack(init[::n]))  # (2, B, H)
    hx = (h0, torch.from_numpy(np.stack(init[1::n]))) if kind == "lstm" else h0
    t_out, t_states = torch_run(m, x, True, hx)
    out, *states = from_torch(m, return_state=True)(x, initial_state=init)
    assert_close("outputs", out, t_out, TOL)
    for k, (a, b) in enumerate(zip(states, t_states)):
        assert_close(f"state {k}", a, b, TOL)


def test_gru_gate_reordering_block_by_block():
    """PyTorch's rows r, z, n become Keras's columns z, r, h; both bias rows are kept (reset_after=True)."""
    torch.manual_seed(6)
    H = 3
    m = nn.GRU(2, H, batch_first=True)
    w_ih, w_hh = m.weight_ih_l0.detach().numpy(), m.weight_hh_l0.detach().numpy()
    b_ih, b_hh = m.bias_ih_l0.detach().numpy(), m.bias_hh_l0.detach().numpy()
    layer = from_torch(m)
    assert layer.cell.reset_after
    k, r, b = layer.kernel.value, layer.recurrent_kernel.value, layer.bias.value
    z_rows, r_rows, n_rows = slice(H, 2 * H), slice(0, H), slice(2 * H, 3 * H)  # PyTorch: r, z, n
    for ours, theirs in [(slice(0, H), z_rows), (slice(H, 2 * H), r_rows), (slice(2 * H, 3 * H), n_rows)]:
        np.testing.assert_array_equal(k[:, ours], w_ih[theirs].T)
        np.testing.assert_array_equal(r[:, ours], w_hh[theirs].T)
        np.testing.assert_array_equal(b[0, ours], b_ih[theirs])
        np.testing.assert_array_equal(b[1, ours], b_hh[theirs])
    # the order matters: the same weights left in PyTorch's order compute something else
    x = rng(7).standard_normal((2, 4, 2)).astype(np.float32)
    t_out, _ = torch_run(m, x, True)
    assert_close("reordered", layer(x), t_out, TOL)
    wrong = layers.GRU(H, return_sequences=True)
    wrong.build((None, None, 2))
    wrong.set_weights([w_ih.T, w_hh.T, np.stack([b_ih, b_hh])])
    assert np.abs(wrong(x) - t_out).max() > 1e-2
    # and back: to_torch gives PyTorch's own tensors, exactly
    sd = to_torch(layer).state_dict()
    for name, v in [("weight_ih_l0", w_ih), ("weight_hh_l0", w_hh), ("bias_ih_l0", b_ih), ("bias_hh_l0", b_hh)]:
        np.testing.assert_array_equal(sd["rnn." + name].numpy(), v)


def test_lstm_and_rnn_biases_are_summed():
    for m in (torch_module("lstm", seed=8), torch_module("rnn_tanh", seed=8)):
        layer = from_torch(m)
        expected = (m.bias_ih_l0 + m.bias_hh_l0).detach().numpy()
        np.testing.assert_allclose(layer.bias.value, expected, rtol=0, atol=1e-7)


def test_from_torch_dropout_between_layers():
    torch.manual_seed(9)
    m = nn.LSTM(D, 5, num_layers=3, dropout=0.25, batch_first=True).eval()
    model = from_torch(m)
    kinds = [type(l).__name__ for l in model.layers]
    assert kinds == ["LSTM", "Dropout", "LSTM", "Dropout", "LSTM"]
    assert all(l.rate == 0.25 for l in model.layers if kinds[model.layers.index(l)] == "Dropout")
    x = rng(10).standard_normal((B, T, D)).astype(np.float32)
    assert_close("eval outputs", model(x), torch_run(m, x, True)[0], TOL)


def test_from_torch_embedding_linear_and_sequential():
    torch.manual_seed(11)
    ids = rng(12).integers(0, 20, (B, T))
    emb, lstm, lin = nn.Embedding(20, D, padding_idx=0), nn.LSTM(D, 6, batch_first=True), nn.Linear(6, 3)
    with torch.no_grad():
        expected = torch.softmax(lin(lstm(emb(torch.from_numpy(ids)))[0]), -1).numpy()
    model = from_torch(nn.Sequential(emb, lstm, lin, nn.Softmax(dim=-1)))  # the RNN passes on its sequence
    assert [type(l).__name__ for l in model.layers] == ["Embedding", "LSTM", "Dense", "Activation"]
    assert_close("sequential", model(ids), expected, TOL)
    torch.manual_seed(13)
    mlp = nn.Sequential(nn.Linear(D, 7), nn.Tanh(), nn.Dropout(0.1), nn.Linear(7, 2, bias=False), nn.Sigmoid()).eval()
    x = rng(14).standard_normal((B, T, D)).astype(np.float32)
    with torch.no_grad():
        expected = mlp(torch.from_numpy(x)).numpy()
    assert_close("mlp", from_torch(mlp)(x), expected, TOL)
    assert_close("embedding from state_dict", from_torch(emb.state_dict(), kind="embedding")(ids),
                 emb(torch.from_numpy(ids)).detach().numpy(), TOL)
    dense = from_torch(lin.state_dict())  # weight and bias: an nn.Linear
    assert isinstance(dense, layers.Dense)
    np.testing.assert_array_equal(dense.kernel.value, lin.weight.detach().numpy().T)


def test_from_torch_state_dict_with_prefix_and_numpy_arrays():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = nn.GRU(D, 6, num_layers=2, batch_first=True)
            self.head = nn.Linear(6, 2)

    torch.manual_seed(15)
    net = Net()
    sd = {k: v.numpy() for k, v in net.state_dict().items()}  # NumPy arrays: no torch needed for these
    x = rng(16).standard_normal((B, T, D)).astype(np.float32)
    assert_close("encoder", from_torch(sd, prefix="encoder.")(x), torch_run(net.encoder, x, True)[0], TOL)
    with pytest.raises(ValueError, match=r"key 'encoder.weight_ih_l0'.*prefix="):
        from_torch(sd)


def test_from_torch_state_dict_refusals():
    lstm_sd = torch_module("lstm", num_layers=2).state_dict()
    with pytest.raises(ValueError, match=r"kind: got 'gru', but the state_dict's 'weight_hh_l0' of shape \(24, 6\)"):
        from_torch(lstm_sd, kind="gru")
    with pytest.raises(ValueError, match=r"hidden_size: got 8, but the state_dict's 'weight_hh_l0'"):
        from_torch(lstm_sd, hidden_size=8)
    with pytest.raises(ValueError, match=r"num_layers: got 1, but the state_dict's 'weight_hh_l1'"):
        from_torch(lstm_sd, num_layers=1)
    broken = {k: v for k, v in lstm_sd.items() if k != "bias_hh_l1"}
    with pytest.raises(ValueError, match=r"missing key 'bias_hh_l1'"):
        from_torch(broken)
    with pytest.raises(ValueError, match=r"nonlinearity: the state_dict \('weight_hh_l0' of shape \(6, 6\)\) is an "
                                         r"nn.RNN.*pass nonlinearity='tanh' or 'relu'"):
        from_torch(torch_module("rnn_relu").state_dict())
    with pytest.raises(ValueError, match=r"kind: a state_dict holding only 'weight' of shape \(20, 4\) is an "
                                         r"nn.Embedding or an nn.Linear"):
        from_torch(nn.Embedding(20, D).state_dict())
    with pytest.raises(ValueError, match=r"hidden: not an argument of from_torch"):
        from_torch(lstm_sd, hidden=6)
    with pytest.raises(ValueError, match=r"module_or_state_dict: expected a torch.nn.Module or a state_dict"):
        from_torch([1, 2])
    with pytest.raises(ValueError, match=r"max_norm=1.0"):
        from_torch(nn.Embedding(20, D, max_norm=1.0))
    with pytest.raises(ValueError, match=r"module\[1\] \(Conv1d\): module: expected an nn.LSTM"):
        from_torch(nn.Sequential(nn.Linear(2, 2), nn.Conv1d(2, 2, 1)))


def test_set_weights_with_torch_arrays_points_to_from_torch():
    m = torch_module("lstm")
    layer = layers.LSTM(6)
    layer.build((None, None, D))
    arrays = [p.detach().numpy() for p in m.parameters()]  # weight_ih, weight_hh, bias_ih, bias_hh
    with pytest.raises(ValueError, match=r"expects 3 arrays, got 4; PyTorch's weight_ih.*lstmlab.interop.from_torch"):
        layer.set_weights(arrays)


# -- to_torch ------------------------------------------------------------------------------------------------
def _models():
    return {
        "embedding-lstm-lstm-softmax": (lambda: Sequential([
            layers.Embedding(20, 5), layers.LSTM(6, return_sequences=True), layers.LSTM(4),
            layers.Dense(3, activation="softmax")]), "ids"),
        "gru-birelu-dense": (lambda: Sequential([
            layers.GRU(6, return_sequences=True), layers.Bidirectional(layers.SimpleRNN(5, activation="relu")),
            layers.Dense(2)]), "x"),
        "nobias-backwards-sigmoid": (lambda: Sequential([
            layers.LSTM(5, use_bias=False, go_backwards=True, return_sequences=True),
            layers.GRU(4, use_bias=False, return_sequences=True), layers.SimpleRNN(3, use_bias=False),
            layers.Activation("sigmoid")]), "x"),
        "rnn-cells-proj": (lambda: Sequential([
            layers.RNN(layers.LSTMCell(6, proj_size=2), return_sequences=True), layers.RNN(layers.GRUCell(4)),
            layers.Dense(3, activation="tanh")]), "x"),
        **{f"bidirectional-{mode}": (lambda mode=mode: Sequential([
            layers.Bidirectional(layers.LSTM(6, proj_size=3, return_sequences=True), merge_mode=mode),
            layers.Bidirectional(layers.GRU(4), merge_mode=mode), layers.Dense(2, activation="hard_sigmoid")]), "x")
           for mode in ("concat", "sum", "mul", "ave")},
    }


def _input(what, seed):
    r = rng(seed)
    return r.integers(0, 20, (B, T)) if what == "ids" else r.standard_normal((B, T, D)).astype(np.float32)


def _randomize(model, seed):
    """Non-trivial weights everywhere, biases included (Keras's defaults start biases at zero)."""
    r = rng(seed)
    model.set_weights([r.uniform(-0.5, 0.5, w.shape).astype(w.value.dtype) for w in model.weights])


def assert_torch_grads(module, model, grads):
    """PyTorch's parameter gradients equal ours mapped to PyTorch's names; an LSTM's / RNN's bias_hh gets the
    gradient of the one bias, as bias_ih does."""
    expected = torch_state_dict(model, grads)
    got = {name: p.grad for name, p in module.named_parameters()}
    assert set(got) == set(expected)
    for name, g in got.items():
        owner = module.get_submodule(name.rsplit(".", 1)[0])
        want = expected[name]
        if "bias_hh" in name and not isinstance(owner, nn.GRU):
            want = expected[name.replace("bias_hh", "bias_ih")]
        assert_close(f"d{name}", g.numpy(), want, TOL)


@pytest.mark.parametrize("name", list(_models()))
def test_to_torch_sequential_outputs_and_gradients(name):
    build, what = _models()[name]
    model = build()
    x = _input(what, 20)
    model(x)
    _randomize(model, 21)
    module = to_torch(model)
    assert isinstance(module, nn.Module)
    xt = torch.from_numpy(x)
    if what == "x":
        xt.requires_grad_()
    yt = module(xt)
    assert_close("outputs", model(x), yt.detach().numpy(), TOL)
    dy = rng(22).standard_normal(yt.shape).astype(np.float32)
    y = model(x, training=True)
    assert y.shape == tuple(yt.shape)
    dx = model.backward(dy)
    (yt * torch.from_numpy(dy)).sum().backward()
    if what == "x":
        assert_close("dx", dx, xt.grad.numpy(), TOL)
    assert_torch_grads(module, model, model.grads)


@pytest.mark.parametrize("kind", ["lstm", "lstm-proj", "gru", "rnn", "bi-lstm", "bi-gru-backwards-seq"])
def test_to_torch_layer_states_and_initial_state_gradients(kind):
    base = {"lstm": lambda: layers.LSTM(6, return_state=True),
            "lstm-proj": lambda: layers.LSTM(6, proj_size=2, return_state=True, return_sequences=True),
            "gru": lambda: layers.GRU(6, return_state=True),
            "rnn": lambda: layers.SimpleRNN(6, return_state=True, return_sequences=True),
            "bi-lstm": lambda: layers.Bidirectional(layers.LSTM(6, return_state=True)),
            "bi-gru-backwards-seq": lambda: layers.Bidirectional(
                layers.GRU(6, return_state=True, return_sequences=True))}[kind]
    layer = base()
    r = rng(30)
    x = r.standard_normal((B, T, D)).astype(np.float32)
    layer(x)
    _randomize(layer, 31)
    inner = layer.forward_layer if isinstance(layer, layers.Bidirectional) else layer
    sizes = list(inner.cell.state_size) * (2 if inner is not layer else 1)
    init = [r.uniform(-0.8, 0.8, (B, n)).astype(np.float32) for n in sizes]
    module = to_torch(layer)
    xt = torch.from_numpy(x).requires_grad_()
    init_t = [torch.from_numpy(s).requires_grad_() for s in init]
    outs_t = module(xt, initial_state=init_t)
    outs = layer(x, initial_state=init, training=True)
    assert len(outs) == len(outs_t) == 1 + len(init)
    for k, (a, b) in enumerate(zip(outs, outs_t)):
        assert_close(f"output {k}", a, b.detach().numpy(), TOL)
    dys = [rng(32 + k).standard_normal(a.shape).astype(np.float32) for k, a in enumerate(outs)]
    dx = layer.backward(dys)
    sum((o * torch.from_numpy(d)).sum() for o, d in zip(outs_t, dys)).backward()
    assert_close("dx", dx, xt.grad.numpy(), TOL)
    assert_torch_grads(module, layer, layer.grads)
    ours_init = (layer.forward_layer.initial_state_grads + layer.backward_layer.initial_state_grads
                 if inner is not layer else layer.initial_state_grads)
    for k, (a, b) in enumerate(zip(ours_init, init_t)):
        assert_close(f"d initial_state[{k}]", a, b.grad.numpy(), TOL)


def test_to_torch_state_dict_only_and_float64():
    model = Sequential([layers.LSTM(5, return_sequences=True, dtype="float64"), layers.Dense(2, dtype="float64")])
    x = rng(40).standard_normal((B, T, D))
    model(x)
    _randomize(model, 41)
    state, module = to_torch(model, state_dict_only=True)
    assert set(state) == set(module.state_dict())
    assert state["layers.0.rnn.weight_ih_l0"].dtype == torch.float64
    xt = torch.from_numpy(x)
    assert np.abs(module(xt).detach().numpy() - model(x)).max() > 1e-3  # a fresh module, until loaded
    module.load_state_dict(state)
    assert_close("float64 outputs", model(x), module(xt).detach().numpy(), 1e-12)


def test_round_trips():
    """torch -> lstmlab -> torch computes the same function; lstmlab -> torch -> lstmlab gives back our weights."""
    x = rng(50).standard_normal((B, T, D)).astype(np.float32)
    for kind in ("lstm", "gru", "rnn_relu"):
        m = torch_module(kind, seed=51, num_layers=2, bidirectional=True, batch_first=True)
        back = to_torch(from_torch(m))
        with torch.no_grad():
            assert_close(f"{kind} torch -> lstmlab -> torch", back(torch.from_numpy(x)).numpy(),
                         torch_run(m, x, True)[0], TOL)
    layer = layers.Bidirectional(layers.LSTM(6, proj_size=3, return_sequences=True))
    layer(x)
    _randomize(layer, 52)
    again = from_torch(to_torch(layer).rnn)
    for a, b in zip(layer.get_weights(), again.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("make,match", [
    (lambda: layers.RNN(layers.PeepholeLSTMCell(4)), r"PeepholeLSTMCell.*no peephole connections"),
    (lambda: layers.RNN(layers.LayerNormLSTMCell(4)), r"its cell is a LayerNormLSTMCell"),
    (lambda: layers.GRU(4, reset_after=False), r"GRU\(reset_after=False\) applies the reset gate before"),
    (lambda: layers.LSTM(4, activation="relu"), r"activation 'relu', recurrent_activation 'sigmoid'"),
    (lambda: layers.LSTM(4, stateful=True), r"stateful=True"),
    (lambda: layers.LSTM(4, recurrent_dropout=0.2), r"recurrent_dropout=0.2"),
    (lambda: layers.RNN([layers.LSTMCell(4), layers.LSTMCell(4)]), r"StackedRNNCells"),
    (lambda: Sequential([layers.Masking(), layers.LSTM(4)]), r"'masking.*' \(Masking\) has no PyTorch equivalent"),
    (lambda: layers.Bidirectional(layers.LSTM(4), backward_layer=layers.LSTM(5, go_backwards=True)),
     r"backward_layer differs"),
])
def test_to_torch_refusals(make, match):
    layer = make()
    layer(rng(60).standard_normal((2, 3, D)).astype(np.float32))
    with pytest.raises(ValueError, match=match):
        to_torch(layer)


def test_to_torch_refuses_masks_and_functional_models():
    model = Sequential([layers.Embedding(10, 4, mask_zero=True), layers.LSTM(3)])
    model(np.array([[1, 2, 0]]))
    with pytest.raises(ValueError, match=r"mask_zero=True.*PyTorch's modules take no masks"):
        to_torch(model)
    with pytest.raises(ValueError, match=r"layer 'emb' is not built; call it once"):
        to_torch(layers.Embedding(10, 4, name="emb"))
    from lstmlab import Input, Model
    inp = Input((None, D))
    with pytest.raises(ValueError, match=r"is a functional or subclassed Model"):
        to_torch(Model(inp, layers.LSTM(3)(inp)))


def test_no_torch_import_and_missing_torch_message():
    code = ("import sys; import lstmlab.interop as I; assert 'torch' not in sys.modules, 'torch imported'\n"
            "sys.modules['torch'] = None\n"
            "from lstmlab import layers; l = layers.LSTM(2); l.build((None, None, 3))\n"
            "try:\n    I.to_torch(l)\nexcept ValueError as e:\n    assert isinstance(e, ImportError); print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "pip install 'lstmlab[torch]'" in out.stdout
