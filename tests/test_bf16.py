"""LSTM(units, dtype="bfloat16"): the C loop (lstm_bf16.c) equals the NumPy reference (functional/bf16.py), the
reference stays within a stated bound of the float32 LSTM, the layer surface and its refusals, and a variant
without AVX512_BF16 (LSTMLAB_ISA=avx2) gives the same numbers through the reference."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

from helpers import assert_close
from test_fast_masks_dropout import make_mask
from test_isa_variants import RUNNABLE, run_child
from lstmlab import _fast, backend, layers, models
from lstmlab._fast import lstm_bf16 as fast_bf16
from lstmlab._fast import parallel
from lstmlab.functional import bf16 as ref_bf16
from lstmlab.functional import lstm as ref_lstm

C_PATH = fast_bf16.available()
needs_c = pytest.mark.skipif(not C_PATH, reason="no AVX512_BF16 (or no kernels): the reference runs instead")
# batch 1, one step, odd D and H (a zero pad row in the last k-pair), H not a multiple of 16, a batch that
# splits over two threads, more rows than a register tile (6)
SHAPES = [(1, 1, 3, 5), (1, 7, 5, 17), (3, 6, 4, 9), (9, 5, 7, 33), (16, 12, 31, 64)]


def problem(B, T, D, H, seed=0):
    """float32 inputs, Glorot-scaled weights, non-zero biases and initial states."""
    rng = np.random.default_rng(seed)
    s = 1.0 / np.sqrt(D + H)
    f = lambda *shape, scale=1.0: (rng.standard_normal(shape) * scale).astype(np.float32)  # noqa: E731
    return dict(x=f(B, T, D), kernel=f(D, 4 * H, scale=2 * s), recurrent_kernel=f(H, 4 * H, scale=2 * s),
                bias=f(4 * H, scale=0.5), h0=f(B, H, scale=0.5), c0=f(B, H))


@pytest.fixture(params=[1, 2], ids=["one-thread", "two-threads"])
def threads(request, monkeypatch):
    monkeypatch.setattr(parallel, "_THREADS", request.param)
    return request.param


# -- to_bfloat16 -------------------------------------------------------------------------------------------
def test_to_bfloat16_rounds_to_nearest_even():
    one = 1.0
    cases = {one + 2.0**-8: one,  # a tie, to the even neighbour 1.0
             one + 3 * 2.0**-8: one + 2.0**-6,  # a tie, to the even neighbour 1 + 2^-6
             one + 2.0**-8 + 2.0**-20: one + 2.0**-7,  # just above the tie
             -(one + 2.0**-8 + 2.0**-20): -(one + 2.0**-7),
             float(np.finfo(np.float32).max): np.inf,  # past the midpoint above bf16's largest (3.39e38)
             np.inf: np.inf, -np.inf: -np.inf, 0.0: 0.0}
    got = ref_bf16.to_bfloat16(np.array(list(cases), np.float32))
    np.testing.assert_array_equal(got, np.array(list(cases.values()), np.float32))
    assert np.isnan(ref_bf16.to_bfloat16(np.float32(np.nan)))
    nan_payload = np.array([0x7F80_0001], np.uint32).view(np.float32)  # a NaN whose low bits would round to inf
    assert np.isnan(ref_bf16.to_bfloat16(nan_payload))[0]
    r = ref_bf16.to_bfloat16(np.random.default_rng(0).standard_normal(1000))
    assert r.dtype == np.float32 and not (r.view(np.uint32) & 0xFFFF).any()  # exactly representable in bf16


# -- the C loop against the reference ----------------------------------------------------------------------
@needs_c
@pytest.mark.parametrize("mask_kind", ["none", "post", "pre", "holes"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_c_equals_reference(shape, mask_kind, threads):
    B, T, D, H = shape
    p = problem(*shape, seed=B + 7 * T)
    mask = make_mask(mask_kind, B, T, np.random.default_rng(H)) if B >= 3 else None
    before = fast_bf16.CALLS["forward"]
    hs, (h, c) = fast_bf16.lstm_bf16_forward(**p, mask=mask)
    assert fast_bf16.CALLS["forward"] == before + 1  # the C loop ran
    ref_hs, (ref_h, ref_c) = ref_bf16.lstm_bf16_forward(**p, mask=mask)
    where = f"{shape} mask={mask_kind} threads={threads}"
    # float32 sums in another order: equal to float32 rounding (the products of bf16 numbers are exact); on
    # these short sequences no h_t lands on a bf16 rounding boundary (see the long-sequence test below)
    assert_close(f"{where} hs", hs, ref_hs, 1e-5)
    assert_close(f"{where} h_T", h, ref_h, 1e-5)
    assert_close(f"{where} c_T", c, ref_c, 1e-5)
    if mask is not None:  # padded steps carried h: an all-padded row keeps h0 at every step
        np.testing.assert_array_equal(hs[0], np.broadcast_to(p["h0"][0], (T, H)))


def reference_float64_sums(p):
    """The bf16 LSTM with the products summed in float64 (then float32): the reference in another order."""
    x, W, U = p["x"], ref_bf16.to_bfloat16(p["kernel"]), ref_bf16.to_bfloat16(p["recurrent_kernel"])
    B, T, D = x.shape
    H = U.shape[0]
    zx = (ref_bf16.to_bfloat16(x).astype(np.float64) @ W + p["bias"]).astype(np.float32)  # (B, T, 4H)
    h, c, hs = p["h0"], p["c0"], []
    sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    for t in range(T):
        z = (zx[:, t] + ref_bf16.to_bfloat16(h).astype(np.float64) @ U).astype(np.float32)  # (B, 4H)
        c = sig(z[:, H:2 * H]) * c + sig(z[:, :H]) * np.tanh(z[:, 2 * H:3 * H])
        h = sig(z[:, 3 * H:]) * np.tanh(c)
        hs.append(h)
    return np.stack(hs, 1)  # (B, T, H)


@needs_c
def test_long_sequences_differ_only_as_summation_orders_do():
    """Over many steps 1e-5 does not hold, for any two summation orders: an h_t within float32 rounding of a
    bf16 rounding boundary rounds up in one order and down in the other, and that one bf16 ulp of h (2^-8
    relative) travels through the recurrence. The NumPy reference against itself with float64 sums shows
    the same size of difference (measured at (16, 100, 64, 128): C vs reference 1.1e-3, reference vs
    float64 sums 1.2e-3; both first exceed 1e-5 at step 6). Bound: C within 3x that spread, and the mean
    difference below 1e-4."""
    p = problem(16, 100, 64, 128, seed=1)
    ours = fast_bf16.lstm_bf16_forward(**p)[0]
    ref = ref_bf16.lstm_bf16_forward(**p)[0]
    spread = np.abs(ref - reference_float64_sums(p)).max()
    assert 1e-5 < spread < 5e-3, spread
    assert np.abs(ours - ref).max() < 3 * spread and np.abs(ours - ref).mean() < 1e-4


@needs_c
def test_c_without_bias_and_from_zero_state():
    p = problem(5, 4, 6, 20, seed=3)
    p.update(bias=None, h0=None, c0=None)
    hs, (h, c) = fast_bf16.lstm_bf16_forward(**p)
    ref_hs, (_, ref_c) = ref_bf16.lstm_bf16_forward(**p)
    assert_close("no bias hs", hs, ref_hs, 1e-5)
    assert_close("no bias c_T", c, ref_c, 1e-5)


@needs_c
def test_weights_packed_once_per_change():
    """The packed bf16 weights are cached on the arrays' identity and checked against their content."""
    p = problem(4, 3, 5, 16, seed=1)
    fast_bf16.clear_cache()
    packs = fast_bf16.PACKS["pack"]
    first = fast_bf16.lstm_bf16_forward(**p)[0]
    fast_bf16.lstm_bf16_forward(**p)
    assert fast_bf16.PACKS["pack"] == packs + 1  # the second call reused the packing
    p["recurrent_kernel"][0, 0] += 1.0  # written in place, same array
    changed = fast_bf16.lstm_bf16_forward(**p)[0]
    assert fast_bf16.PACKS["pack"] == packs + 2
    assert not np.array_equal(first, changed)
    assert_close("after an in-place change", changed, ref_bf16.lstm_bf16_forward(**p)[0], 1e-5)
    entries = len(fast_bf16._CACHE)
    del p["kernel"]  # the entry goes with its array
    assert len(fast_bf16._CACHE) == entries - 1


# -- bf16 against float32 ----------------------------------------------------------------------------------
def test_bf16_within_bound_of_float32():
    """Each product's operands carry a relative rounding error of at most 2^-9, so each term of z at most
    ~2^-8: with Glorot-scale weights |z| ~ 1 and the gates' slopes <= 1, each step moves h by ~0.004 and
    the recurrence (contracting with these weights) does not add it up. Bound: max |dh| < 0.05 and mean
    |dh| < 0.005 over 30 steps, H = 64 (measured: max ~0.012, mean ~0.001)."""
    p = problem(16, 30, 32, 64, seed=5)
    hs, _ = fast_bf16.lstm_bf16_forward(**p)
    ref, _, _ = ref_lstm.lstm_forward(**p)
    err = np.abs(hs - ref)
    assert err.max() < 0.05 and err.mean() < 0.005, (err.max(), err.mean())
    assert err.max() > 0  # the products really were rounded


# -- the layer ---------------------------------------------------------------------------------------------
def lstm_weights(D, H, seed=0):
    p = problem(1, 1, D, H, seed=seed)
    return [p["kernel"], p["recurrent_kernel"], p["bias"]]


def test_layer_predict_runs_bf16_and_keeps_float32_weights():
    x = np.random.default_rng(1).standard_normal((6, 9, 5)).astype(np.float32)
    layer = layers.LSTM(12, dtype="bfloat16", return_sequences=True)
    layer.build((None, None, 5))
    w = lstm_weights(5, 12)
    layer.set_weights(w)
    assert layer.dtype == np.float32 and layer.compute_dtype == "bfloat16"
    assert all(a.dtype == np.float32 for a in layer.get_weights())
    before = fast_bf16.CALLS["forward"]
    out = layer(x, training=False)
    assert out.dtype == np.float32
    assert fast_bf16.CALLS["forward"] == before + int(C_PATH)
    assert_close("layer vs reference", out, ref_bf16.lstm_bf16_forward(x, *w)[0], 1e-5)
    # a sampler's one step at a time equals the whole sequence
    states, steps = None, []
    for t in range(9):
        y, states = layer.step(x[:, t], states)
        steps.append(y)
    assert_close("step by step", np.stack(steps, 1), out, 1e-5)


def test_masked_model_and_rnn_cell_spelling():
    x = np.random.default_rng(2).integers(1, 20, (7, 11))
    x[:3, 6:] = 0  # post-padding
    x[3, :4] = 0  # pre-padding
    w = lstm_weights(8, 10)

    def model(recurrent):
        m = models.Sequential([layers.Input((None,)), layers.Embedding(20, 8, mask_zero=True), recurrent])
        m.layers[0].set_weights([np.random.default_rng(3).standard_normal((20, 8)).astype(np.float32)])
        m.layers[1].set_weights(w)
        return m

    a = model(layers.LSTM(10, dtype="bfloat16")).predict(x, verbose=0)
    b = model(layers.RNN(layers.LSTMCell(10, dtype="bfloat16"))).predict(x, verbose=0)
    f32 = model(layers.LSTM(10)).predict(x, verbose=0)
    assert_close("RNN(LSTMCell) vs LSTM", b, a, 1e-6)
    assert np.abs(a - f32).max() < 0.05 and not np.array_equal(a, f32)


def test_training_refused_naming_the_layer():
    m = models.Sequential([layers.Input((4, 3)), layers.LSTM(5, dtype="bfloat16", name="enc"), layers.Dense(1)])
    m.compile("adam", "mse")
    with pytest.raises(ValueError, match=r"training: layer 'enc' has dtype='bfloat16', an inference path.*"
                                         r"train it in float32.*load the weights"):
        m.fit(np.zeros((2, 4, 3), np.float32), np.zeros((2, 1), np.float32), verbose=0)
    with pytest.raises(ValueError, match="layer 'enc' has dtype='bfloat16'"):
        m.layers[0](np.zeros((2, 4, 3), np.float32), training=True)
    cell_layer = layers.RNN(layers.LSTMCell(5, dtype="bfloat16"), name="cells")
    with pytest.raises(ValueError, match="layer 'cells' has dtype='bfloat16'"):
        cell_layer(np.zeros((2, 4, 3), np.float32), training=True)


def test_bidirectional_and_stacked_cells():
    x = np.random.default_rng(5).standard_normal((4, 6, 5)).astype(np.float32)
    bi = layers.Bidirectional(layers.LSTM(7, dtype="bfloat16", return_sequences=True))
    y = bi(x)  # (4, 6, 14)
    assert bi.forward_layer.compute_dtype == bi.backward_layer.compute_dtype == "bfloat16"
    forward = ref_bf16.lstm_bf16_forward(x, *bi.forward_layer.get_weights())[0]
    backward = ref_bf16.lstm_bf16_forward(x[:, ::-1], *bi.backward_layer.get_weights())[0][:, ::-1]
    assert_close("bidirectional", y, np.concatenate([forward, backward], -1), 1e-5)
    stacked = layers.RNN([layers.LSTMCell(6, dtype="bfloat16"), layers.LSTMCell(3, dtype="bfloat16")], name="st")
    out = stacked(x)  # the generic loop, one bf16 step per cell
    k0, k1 = stacked.cell.cells
    h = ref_bf16.lstm_bf16_forward(x, *k0.get_weights())[0]
    assert_close("stacked cells", out, ref_bf16.lstm_bf16_forward(h, *k1.get_weights())[1][0], 1e-5)
    m = models.Sequential([layers.Input((6, 5)), stacked, layers.Dense(1)])
    m.compile("adam", "mse")
    with pytest.raises(ValueError, match="layer 'st' has dtype='bfloat16', an inference path"):
        m.fit(x, np.zeros((4, 1), np.float32), verbose=0)


@pytest.mark.parametrize("options, message", [
    ({"activation": "relu"}, r"activation: layer 'l' with dtype='bfloat16' runs only activation='tanh'.*got 'relu'"),
    ({"recurrent_activation": "hard_sigmoid"}, r"recurrent_activation: .* runs only recurrent_activation='sigmoid'"),
    ({"proj_size": 3}, r"proj_size: layer 'l' with dtype='bfloat16' has no projection.*got 3"),
])
def test_options_refused_by_name(options, message):
    with pytest.raises(ValueError, match=message):
        layers.LSTM(8, dtype="bfloat16", name="l", **options)


def test_other_layers_and_floatx_refuse_bfloat16():
    for make in (lambda: layers.GRU(4, dtype="bfloat16"), lambda: layers.Dense(4, dtype="bfloat16"),
                 lambda: layers.SimpleRNN(4, dtype="bfloat16")):
        with pytest.raises(ValueError, match=r"dtype: expected one of float32, float64, got 'bfloat16'; "
                                             r"bfloat16 is an inference path of the LSTM only"):
            make()
    with pytest.raises(ValueError, match="floatx"):
        backend.set_floatx("bfloat16")
    with pytest.raises(ValueError, match="dtype: expected one of float32, float64, got 'float8'"):
        layers.Dense(4, dtype="float8")  # a name NumPy does not know: ValueError, not NumPy's TypeError


def test_config_and_file_round_trip(tmp_path):
    x = np.random.default_rng(4).standard_normal((3, 5, 4)).astype(np.float32)
    m = models.Sequential([layers.Input((5, 4)), layers.LSTM(6, dtype="bfloat16", return_sequences=True),
                           layers.RNN(layers.LSTMCell(3, dtype="bfloat16"))])
    config = json.loads(json.dumps(m.get_config()))
    assert config["layers"][0]["config"]["dtype"] == "bfloat16"
    assert config["layers"][1]["config"]["cell"]["config"]["dtype"] == "bfloat16"
    again = models.Sequential.from_config(config)
    assert again.layers[0].compute_dtype == "bfloat16" and again.layers[1].cell.compute_dtype == "bfloat16"
    path = os.path.join(tmp_path, "m.safetensors")
    m.save(path)
    loaded = models.load_model(path)
    assert loaded.layers[0].compute_dtype == "bfloat16"
    assert all(w.dtype == np.float32 for w in loaded.get_weights())
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), m.predict(x, verbose=0))


def test_textgen_with_dtype():
    from lstmlab.apps.textgen.config import ModelConfig
    from lstmlab.apps.textgen.model import build_model, with_dtype

    m = build_model(ModelConfig(vocab_size=11, layers=2, units=16, embedding=4, dropout=0.0), batch_size=1)
    b = with_dtype(m, "bfloat16")
    assert [getattr(layer, "compute_dtype", None) for layer in b.layers if isinstance(layer, layers.RNN)] == \
        ["bfloat16", "bfloat16"]
    x = np.array([[1, 2, 3, 4]])
    assert np.abs(b.predict(x, batch_size=1, verbose=0) - m.predict(x, batch_size=1, verbose=0)).max() < 0.05
    g = build_model(ModelConfig(vocab_size=11, layers=1, units=8, embedding=4, dropout=0.0, cell="gru"), 1)
    with pytest.raises(ValueError, match="bfloat16 runs LSTM layers only, but layer 'gru_1' is a GRU"):
        with_dtype(g, "bfloat16")


# -- a variant without AVX512_BF16 runs the reference ------------------------------------------------------
@pytest.mark.skipif("avx2" not in RUNNABLE or not _fast.available(),
                    reason="this CPU cannot run the AVX2 variant, or the kernels are off")
def test_avx2_variant_runs_the_reference_with_the_same_numbers(tmp_path):
    shape, mask = (9, 5, 7, 33), make_mask("holes", 9, 5, np.random.default_rng(0))
    p = problem(*shape, seed=11)
    here, _ = fast_bf16.lstm_bf16_forward(**p, mask=mask)
    np.savez(os.path.join(tmp_path, "p.npz"), mask=mask, **p)
    code = ("import numpy as np; from lstmlab import _fast; from lstmlab._fast import lstm_bf16 as f\n"
            f"d = dict(np.load({os.path.join(tmp_path, 'p.npz')!r}))\n"
            "mask = d.pop('mask'); hs, _ = f.lstm_bf16_forward(**d, mask=mask)\n"
            "assert _fast.ISA == 'avx2' and not f.available() and f.CALLS['forward'] == 0\n"
            f"np.save({os.path.join(tmp_path, 'hs.npy')!r}, hs)")
    done = run_child("avx2", code)
    assert done.returncode == 0, done.stderr
    assert_close("avx2 (reference) vs this process", np.load(os.path.join(tmp_path, "hs.npy")), here, 1e-5)


def test_generate_command_with_dtype(tmp_path):
    """`lstmlab generate RUN --dtype bfloat16` samples from a float32-trained run; a GRU run is refused in one
    line naming the layer."""
    from test_cli_textgen import SMALL, WORDS, bad, run_cli

    corpus = tmp_path / "tiny.txt"
    corpus.write_text(" ".join(np.random.default_rng(0).choice(WORDS, 700)), encoding="utf-8")
    for cell in ("lstm", "gru"):
        r = run_cli("train", "--corpus", str(corpus), "--out", str(tmp_path / cell), "--steps", "3", "--cell",
                    cell, "--no-samples", *SMALL)
        assert r.returncode == 0, r.stderr
    g = run_cli("generate", str(tmp_path / "lstm"), "--prime", "the ", "--length", "30", "--seed", "1",
                "--dtype", "bfloat16")
    assert g.returncode == 0, g.stderr
    assert g.stdout.startswith("the ") and set(g.stdout.rstrip("\n")) <= set(" ".join(WORDS))
    assert ("dtype: bfloat16 runs LSTM layers only, but layer 'gru_1' is a GRU" in
            bad("generate", str(tmp_path / "gru"), "--dtype", "bfloat16"))
