"""ONNX export against the real thing: every file passes ``onnx.checker``, and ONNX Runtime's outputs equal
lstmlab's to 1e-5 for batch 1 and batch 7 and two sequence lengths, all from one exported file."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from lstmlab import layers as L  # noqa: E402
from lstmlab.layers import Input  # noqa: E402
from lstmlab.models import Model, Sequential  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHAPES = [(1, 5), (7, 5), (1, 9), (7, 9)]  # (batch, time): both batch sizes and two lengths, one file


def randomize(model, seed=0, scale=0.5):
    """Non-trivial weights everywhere (biases too), so a swapped gate or a dropped bias shows."""
    rng = np.random.default_rng(seed)
    for w in model.weights:
        w.assign((rng.normal(size=w.value.shape) * scale).astype(w.value.dtype))
    return model


def export(model, tmp_path, **options):
    path = str(tmp_path / "m.onnx")
    model.export(path, format="onnx", **options)
    onnx.checker.check_model(onnx.load(path), full_check=True)
    return path, ort.InferenceSession(path, providers=["CPUExecutionProvider"])


def ours(model, x):
    out = model(x, training=False)
    return [np.asarray(o) for o in out] if isinstance(out, list) else [np.asarray(out)]


def assert_close(what, a, b, tol=1e-5):
    """Equal to ``tol``: absolute for values up to 1, relative above (float32 keeps ~7 digits of a 30)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape, f"{what}: shapes {a.shape} vs {b.shape}"
    err = (np.abs(a - b) / np.maximum(1.0, np.abs(a))).max() if a.size else 0.0
    assert err <= tol, f"{what}: max |lstmlab - onnxruntime| = {err:.3g}\nlstmlab {a.ravel()[:6]}\nonnx {b.ravel()[:6]}"


def op_types(path) -> list:
    return [n.op_type for n in onnx.load(path).graph.node]


def node(path, op_type):
    return next(n for n in onnx.load(path).graph.node if n.op_type == op_type)


def attr(n, name):
    return next(onnx.helper.get_attribute_value(a) for a in n.attribute if a.name == name)


# --- every layer kind, Sequential on (batch, time, 3) -------------------------------------------------------
LAYER_CASES = {
    "lstm_sequences": (lambda: L.LSTM(5, return_sequences=True), "LSTM"),
    "lstm_last": (lambda: L.LSTM(5), "LSTM"),
    "lstm_go_backwards": (lambda: L.LSTM(4, return_sequences=True, go_backwards=True), "LSTM"),
    "lstm_go_backwards_last": (lambda: L.LSTM(4, go_backwards=True), "LSTM"),
    "lstm_no_bias": (lambda: L.LSTM(4, use_bias=False, return_sequences=True), "LSTM"),
    "gru_reset_after": (lambda: L.GRU(4, return_sequences=True), "GRU"),
    "gru_reset_before": (lambda: L.GRU(4, reset_after=False, return_sequences=True), "GRU"),
    "gru_last_backwards": (lambda: L.GRU(4, go_backwards=True), "GRU"),
    "simple_rnn": (lambda: L.SimpleRNN(4, return_sequences=True), "RNN"),
    "rnn_of_lstm_cell": (lambda: L.RNN(L.LSTMCell(4), return_sequences=True), "LSTM"),
    "rnn_of_gru_cell": (lambda: L.RNN(L.GRUCell(3)), "GRU"),
    "peephole": (lambda: L.RNN(L.PeepholeLSTMCell(4), return_sequences=True), "LSTM"),
    "bidirectional_concat": (lambda: L.Bidirectional(L.LSTM(4, return_sequences=True)), "LSTM"),
    "bidirectional_sum_gru": (lambda: L.Bidirectional(L.GRU(3, return_sequences=True), merge_mode="sum"), "GRU"),
    "bidirectional_mul_last": (lambda: L.Bidirectional(L.SimpleRNN(3), merge_mode="mul"), "RNN"),
    "bidirectional_ave_peephole": (lambda: L.Bidirectional(L.RNN(L.PeepholeLSTMCell(3), return_sequences=True),
                                                           merge_mode="ave"), "LSTM"),
    "bidirectional_of_a_backward_layer": (lambda: L.Bidirectional(L.LSTM(4, return_sequences=True,
                                                                          go_backwards=True)), "LSTM"),
    "bidirectional_custom_backward": (lambda: L.Bidirectional(
        L.LSTM(4, return_sequences=True), backward_layer=L.GRU(3, return_sequences=True, go_backwards=True)), "GRU"),
    "dense": (lambda: L.Dense(6, activation="tanh"), "MatMul"),
    "time_distributed_dense": (lambda: L.TimeDistributed(L.Dense(4, activation="softmax")), "MatMul"),
    "dropout": (lambda: L.Dropout(0.5), None),
    "activation": (lambda: L.Activation("hard_sigmoid"), "HardSigmoid"),
}


@pytest.mark.parametrize("case", sorted(LAYER_CASES))
def test_layer_equals_onnxruntime(case, tmp_path):
    make, op = LAYER_CASES[case]
    model = randomize(Sequential([Input((None, 3)), make()]), seed=len(case))
    if "peephole" in case:  # large peepholes, so that a wrong P order shows
        for w in model.weights:
            if w.name.endswith("peephole"):
                w.assign(w.value * 6)
    path, sess = export(model, tmp_path)
    if op is not None:
        assert op in op_types(path)
    rng = np.random.default_rng(1)
    for B, T in SHAPES:
        x = rng.normal(size=(B, T, 3)).astype(np.float32)
        assert_close(f"{case} B={B} T={T}", ours(model, x)[0], sess.run(None, {"input": x})[0])


def test_operators_and_attributes(tmp_path):
    """The layers become ONNX's own recurrent operators, with the attributes the issue names."""
    path, _ = export(randomize(Sequential([Input((None, 3)), L.RNN(L.PeepholeLSTMCell(4))])), tmp_path)
    assert len(node(path, "LSTM").input) == 8 and node(path, "LSTM").input[7]  # P given
    path, _ = export(randomize(Sequential([Input((None, 3)), L.GRU(4)])), tmp_path)
    assert attr(node(path, "GRU"), "linear_before_reset") == 1
    path, _ = export(randomize(Sequential([Input((None, 3)), L.GRU(4, reset_after=False)])), tmp_path)
    assert attr(node(path, "GRU"), "linear_before_reset") == 0
    path, _ = export(randomize(Sequential([Input((None, 3)), L.Bidirectional(L.LSTM(4))])), tmp_path)
    assert op_types(path).count("LSTM") == 1 and attr(node(path, "LSTM"), "direction") == b"bidirectional"
    path, _ = export(randomize(Sequential([Input((None, 3)), L.LSTM(4, go_backwards=True)])), tmp_path)
    assert attr(node(path, "LSTM"), "direction") == b"reverse"
    dims = [d.dim_param or d.dim_value for d in onnx.load(path).graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", "time", 3]


@pytest.mark.parametrize("layer", [
    lambda: L.LSTM(4, activation="relu", recurrent_activation="hard_sigmoid", return_sequences=True),
    lambda: L.LSTM(4, activation="softsign", return_sequences=True),
    lambda: L.LSTM(4, activation="linear", recurrent_activation="hard_sigmoid"),
    lambda: L.GRU(4, activation="relu", recurrent_activation="hard_sigmoid", return_sequences=True),
    lambda: L.SimpleRNN(4, activation="relu", return_sequences=True),
    lambda: L.Dense(4, activation="softsign"),
    lambda: L.Dense(4, activation="relu"),
], ids=["lstm_relu_hard_sigmoid", "lstm_softsign", "lstm_linear", "gru_relu_hard_sigmoid", "rnn_relu",
        "dense_softsign", "dense_relu"])
def test_activations(layer, tmp_path):
    model = randomize(Sequential([Input((None, 3)), layer()]), scale=1.5)  # large: hard_sigmoid saturates
    _, sess = export(model, tmp_path)
    x = np.random.default_rng(2).normal(size=(7, 6, 3)).astype(np.float32)
    assert_close("outputs", ours(model, x)[0], sess.run(None, {"input": x})[0])


# --- masks ----------------------------------------------------------------------------------------------
def padded_ids(B, T, seed, vocab=20):
    """Ids with trailing padding (0), row lengths including T (full) and 0 (all padding) when B allows."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, vocab, size=(B, T))
    lens = [T, 0, 1, T - 2, 3, T, 2][:B] if B > 1 else [T - 2]
    for b, n in enumerate(lens):
        ids[b, n:] = 0
    return ids


MASKED = {
    "lstm_sequences": lambda: L.LSTM(4, return_sequences=True),
    "lstm_last": lambda: L.LSTM(4),
    "gru_backwards_sequences": lambda: L.GRU(3, return_sequences=True, go_backwards=True),
    "rnn_backwards_last": lambda: L.SimpleRNN(3, go_backwards=True),
    "peephole_sequences": lambda: L.RNN(L.PeepholeLSTMCell(3), return_sequences=True),
    "bidirectional_sequences": lambda: L.Bidirectional(L.LSTM(4, return_sequences=True)),
    "bidirectional_last": lambda: L.Bidirectional(L.GRU(3), merge_mode="sum"),
    "bidirectional_custom_backward": lambda: L.Bidirectional(
        L.LSTM(4, return_sequences=True), backward_layer=L.SimpleRNN(3, return_sequences=True, go_backwards=True)),
}


@pytest.mark.parametrize("case", sorted(MASKED))
def test_embedding_mask_zero_becomes_sequence_lens(case, tmp_path):
    model = randomize(Sequential([Input((None,), dtype="int64"), L.Embedding(20, 3, mask_zero=True), MASKED[case](),
                                  L.Dense(2)]), seed=3)
    path, sess = export(model, tmp_path)
    assert "Gather" in op_types(path)
    for k, (B, T) in enumerate(SHAPES):
        ids = padded_ids(B, T, seed=k)
        assert_close(f"{case} B={B} T={T}", ours(model, ids)[0], sess.run(None, {"input": ids})[0])


def test_masking_layer_and_a_stack(tmp_path):
    """Masking -> LSTM -> GRU(go_backwards) -> TimeDistributed(Dense): the mask reaches both layers."""
    model = randomize(Sequential([Input((None, 3)), L.Masking(0.0), L.LSTM(4, return_sequences=True),
                                  L.GRU(3, return_sequences=True, go_backwards=True),
                                  L.TimeDistributed(L.Dense(2))]), seed=4)
    _, sess = export(model, tmp_path)
    rng = np.random.default_rng(5)
    for k, (B, T) in enumerate(SHAPES):
        x = rng.normal(size=(B, T, 3)).astype(np.float32)
        x[padded_ids(B, T, seed=k) == 0] = 0.0  # padded steps are all-zero feature vectors
        assert_close(f"B={B} T={T}", ours(model, x)[0], sess.run(None, {"input": x})[0])


def test_a_mask_with_a_gap_poisons_only_its_row(tmp_path):
    """sequence_lens cannot skip a step inside a row: such a row gets NaN, never a different number."""
    model = randomize(Sequential([Input((None,), dtype="int64"), L.Embedding(20, 3, mask_zero=True), L.LSTM(4)]))
    _, sess = export(model, tmp_path)
    ids = padded_ids(7, 6, seed=6)
    ids[0, 2] = 0  # a hole in a full row
    got = sess.run(None, {"input": ids})[0]
    assert np.isnan(got[0]).all()
    assert_close("the other rows", ours(model, ids)[0][1:], got[1:])


# --- functional models ----------------------------------------------------------------------------------
def test_functional_encoder_decoder_with_states_and_merges(tmp_path):
    """return_state, initial_state from another layer, merge_mode=None, Concatenate / Add / Average / ..."""
    enc_in, dec_in = Input((None, 3), name="encoder_in"), Input((None, 2), name="decoder_in")
    seq, h, c = L.LSTM(4, return_state=True, return_sequences=True, name="encoder")(enc_in)
    dec = L.LSTM(4, return_sequences=True, name="decoder")(dec_in, initial_state=[h, c])
    fwd, bwd = L.Bidirectional(L.GRU(4, return_sequences=True), merge_mode=None, name="bi")(seq)
    mixed = L.Concatenate(name="cat")([L.Add()([fwd, bwd]), L.Subtract()([fwd, bwd]), L.Multiply()([fwd, bwd]),
                                       L.Average()([fwd, bwd]), L.Maximum()([fwd, bwd]), L.Minimum()([fwd, bwd])])
    last, *bi_states = L.Bidirectional(L.SimpleRNN(3, return_state=True), name="bi_last")(dec)
    model = randomize(Model([enc_in, dec_in], [L.Dense(2, name="head")(mixed), last, h] + bi_states), seed=7)
    path, sess = export(model, tmp_path)
    assert [o.name for o in onnx.load(path).graph.output] == ["head", "bi_last", "encoder", "bi_last_1", "bi_last_2"]
    rng = np.random.default_rng(8)
    for B, T in SHAPES:
        xs = [rng.normal(size=(B, T, 3)).astype(np.float32), rng.normal(size=(B, T + 1, 2)).astype(np.float32)]
        got = sess.run(None, {"encoder_in": xs[0], "decoder_in": xs[1]})
        for k, (a, b) in enumerate(zip(ours(model, xs), got)):
            assert_close(f"output {k} B={B} T={T}", a, b)


# --- streaming: states as inputs and outputs --------------------------------------------------------------
def stream_model(stateful=False, batch=None):
    first = (dict(batch_input_shape=(batch, None)) if stateful else {})
    stack = [L.Embedding(20, 4, **first), L.LSTM(5, return_sequences=True, stateful=stateful, name="lstm"),
             L.GRU(4, return_sequences=True, stateful=stateful, name="gru"),
             L.RNN(L.PeepholeLSTMCell(3), return_sequences=True, stateful=stateful, name="peephole"),
             L.SimpleRNN(3, return_sequences=True, stateful=stateful, name="rnn"), L.Dense(6, name="dense")]
    model = Sequential(([] if stateful else [Input((None,), dtype="int64")]) + stack)
    if stateful:
        model.build((batch, None))
    return randomize(model, seed=9)


def run_stream(sess, interface, ids, chunk):
    """Run ``ids`` through the graph ``chunk`` steps at a time, each run starting from the last one's states."""
    B = len(ids)
    states = {s["input"]: np.zeros((B, s["size"]), np.float32) for s in interface}
    outs = []
    for t in range(0, ids.shape[1], chunk):
        y, *new = sess.run(["dense"] + [s["output"] for s in interface], {"input": ids[:, t:t + chunk], **states})
        states = dict(zip((s["input"] for s in interface), new))
        outs.append(y)
    return np.concatenate(outs, axis=1), states


def test_streaming_one_step_at_a_time_equals_the_whole_sequence(tmp_path):
    from lstmlab.interop.onnx_export import export_onnx

    model = stream_model()
    path = str(tmp_path / "stream.onnx")
    interface = export_onnx(model, path, states=True)["states"]
    assert [(s["input"], s["output"], s["size"]) for s in interface] == [
        ("lstm/initial_h", "lstm/final_h", 5), ("lstm/initial_c", "lstm/final_c", 5), ("gru/initial_h", "gru/final_h", 4),
        ("peephole/initial_h", "peephole/final_h", 3), ("peephole/initial_c", "peephole/final_c", 3),
        ("rnn/initial_h", "rnn/final_h", 3)]
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    for B, T in [(1, 6), (7, 9)]:
        ids = np.random.default_rng(B).integers(0, 20, size=(B, T))
        whole = ours(model, ids)[0]
        for chunk in (1, 4, T):
            got, _ = run_stream(sess, interface, ids, chunk)
            assert_close(f"B={B} chunks of {chunk}", whole, got)


def test_stateful_model_streams_like_lstmlab(tmp_path):
    """A stateful model carries its states between calls in lstmlab; the graph does it through its outputs."""
    from lstmlab.interop.onnx_export import export_onnx

    model = stream_model(stateful=True, batch=3)
    with pytest.raises(ValueError, match="layer 'lstm' is stateful: export with states=True"):
        model.export(str(tmp_path / "no.onnx"))
    interface = export_onnx(model, str(tmp_path / "s.onnx"), states=True)["states"]
    sess = ort.InferenceSession(str(tmp_path / "s.onnx"), providers=["CPUExecutionProvider"])
    ids = np.random.default_rng(10).integers(0, 20, size=(3, 8))
    model.reset_states()
    expected = np.concatenate([ours(model, ids[:, :3])[0], ours(model, ids[:, 3:])[0]], axis=1)
    got, _ = run_stream(sess, interface, ids, 3)  # runs of 3, 3 and 2 steps
    assert_close("stateful", expected, got)
    assert not os.path.exists(tmp_path / "no.onnx")


# --- refusals ---------------------------------------------------------------------------------------------
def seq(*layers):
    return Sequential([Input((None, 3)), *layers])


REFUSED = {
    "layer_norm_cell": (lambda: seq(L.RNN(L.LayerNormLSTMCell(4), name="ln")),
                        "layer 'ln': cell LayerNormLSTMCell has no ONNX operator"),
    "projection": (lambda: seq(L.LSTM(6, proj_size=3, name="proj")),
                   r"layer 'proj': the projection LSTM \(proj_size=3\) has no ONNX operator"),
    "stacked_cells": (lambda: seq(L.RNN([L.LSTMCell(3), L.GRUCell(3)], name="stack")),
                      "layer 'stack': RNN over a list of cells has no single ONNX operator"),
    "conv": (lambda: seq(L.Conv1D(2, 3, name="conv")), "layer 'conv': Conv1D has no ONNX export in lstmlab"),
    "time_distributed_lstm": (lambda: Sequential([Input((None, 2, 3)), L.TimeDistributed(L.LSTM(2), name="td")]),
                              r"layer 'td': TimeDistributed\(LSTM\) has no export"),
    "softmax_gate": (lambda: seq(L.LSTM(3, recurrent_activation="softmax", name="sm")),
                     "layer 'sm': activation 'softmax' has no ONNX recurrent counterpart"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_what_cannot_be_exported_is_refused_by_name(case, tmp_path):
    make, message = REFUSED[case]
    target = tmp_path / "m.onnx"
    target.write_bytes(b"previous")
    with pytest.raises(ValueError, match=message):
        make().export(str(target), format="onnx")
    assert target.read_bytes() == b"previous" and os.listdir(tmp_path) == ["m.onnx"]  # nothing written


def test_refused_models_and_arguments(tmp_path, monkeypatch):
    path = str(tmp_path / "m.onnx")
    model = seq(L.LSTM(3))
    with pytest.raises(ValueError, match="format: expected 'onnx' .lstmlab exports ONNX only., got 'tf_saved_model'"):
        model.export(path, format="tf_saved_model")
    with pytest.raises(ValueError, match="options: unknown ONNX export option.s. opset; expected states, verbose"):
        model.export(path, opset=13)
    with pytest.raises(ValueError, match="states: expected True or False, got 'yes'"):
        model.export(path, states="yes")
    with pytest.raises(ValueError, match="build or call the model before exporting it"):
        Sequential([L.LSTM(3)]).export(path)

    class Mine(Model):
        def __init__(self):
            super().__init__()
            self.rnn = L.LSTM(3)

        def call(self, x):
            return self.rnn(x)

    sub = Mine()
    sub(np.zeros((1, 2, 3), np.float32))
    with pytest.raises(ValueError, match="a subclassed model's call.. is Python code"):
        sub.export(path)
    ids = Input((None,), dtype="int64")
    masked = L.Embedding(9, 3, mask_zero=True)(ids)
    with pytest.raises(ValueError, match="layer 'add_masked': Add of masked inputs has no export"):
        Model(ids, L.Add(name="add_masked")([masked, masked])).export(path)
    monkeypatch.setitem(sys.modules, "onnx", None)  # as if onnx were not installed
    with pytest.raises(ValueError, match=r"pip install 'lstmlab\[onnx\]'"):
        model.export(path)
    assert not os.path.exists(path)


# --- the command line and the 20-line sampler ------------------------------------------------------------
WORDS = "the cat sat on a mat and then it ran far away from home while dogs barked at night".split()


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "lstmlab", *args], capture_output=True, text=True, timeout=180)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A tiny two-layer run trained for a few steps through the CLI, as tests/test_cli_textgen.py does."""
    tmp = tmp_path_factory.mktemp("textgen")
    corpus = tmp / "tiny.txt"
    corpus.write_text(" ".join(np.random.default_rng(0).choice(WORDS, 700)), encoding="utf-8")
    run = tmp / "run"
    r = run_cli("train", "--corpus", str(corpus), "--out", str(run), "--steps", "8", "--no-samples", "--units", "16",
                "--embedding", "8", "--batch-size", "4", "--seq-len", "10")
    assert r.returncode == 0, r.stderr
    return run


@pytest.mark.parametrize("sampling", [["--temperature", "0.7", "--seed", "3"],
                                      ["--temperature", "1.3", "--seed", "11", "--top-k", "4", "--prime", "the "]])
def test_cli_export_and_sampler_equal_generate(trained_run, tmp_path, sampling):
    out = tmp_path / "char.onnx"
    r = run_cli("export", str(trained_run), "--format", "onnx", "--out", str(out))
    assert r.returncode == 0 and r.stdout.strip() == f"wrote {out} and {tmp_path / 'char.vocab.json'}", r.stderr
    meta = json.loads((tmp_path / "char.vocab.json").read_text(encoding="utf-8"))
    assert meta["chars"] == "".join(sorted(set(" ".join(WORDS)))) and len(meta["states"]) == 4
    generated = run_cli("generate", str(trained_run), "--length", "150", *sampling)
    assert generated.returncode == 0, generated.stderr
    sampler = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "onnx_sampler.py"), str(out),
                              "--length", "150", *sampling], capture_output=True, text=True, timeout=120)
    assert sampler.returncode == 0, sampler.stderr
    assert sampler.stdout == generated.stdout and len(generated.stdout) > 150


def test_cli_export_default_path_and_bad_input(trained_run, tmp_path):
    r = run_cli("export", str(trained_run))
    assert r.returncode == 0, r.stderr
    assert (trained_run / "model.onnx").exists() and (trained_run / "model.vocab.json").exists()
    for args, message in [
        (["export", str(tmp_path / "nothing")], "RUN_DIR: no run directory or checkpoint at"),
        (["export", str(tmp_path)], "RUN_DIR: "),
        (["export", str(trained_run), "--format", "keras"], "argument --format: invalid choice: 'keras'"),
        (["export", str(trained_run), "--out", str(tmp_path / "m.txt")], "--out: expected a path ending in .onnx"),
    ]:
        r = run_cli(*args)
        assert r.returncode == 2 and r.stdout == "", (args, r.stdout)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("lstmlab: error: ") and message in lines[0], r.stderr
