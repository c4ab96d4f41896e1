"""The fused output layer (projection + softmax + cross-entropy) equals the separate computation.

The separate computation is what a model does without fusion: ``Dense`` forward to the logits, the
Keras-style ``SparseCategoricalCrossentropy(from_logits=True)``, ``Dense`` backward. Targets include
classes "unseen in training": their bias is the log of half an occurrence, as the text generator's
unigram initialization gives a character that occurs only in the held-out part.
"""
import numpy as np
import pytest

from helpers import assert_close
from lstmlab import Sequential, gradcheck, layers
from lstmlab.apps.textgen.model import log_unigram
from lstmlab.functional import dense as dense_ref
from lstmlab._fast import dense as fast_dense
from lstmlab.functional import output
from lstmlab.training.losses import SparseCategoricalCrossentropy


def problem(N=37, D=9, V=53, seed=0, dtype=np.float64, masked=True):
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, 50, V)
    counts[:5] = 0  # five classes never seen in "training"
    x = rng.standard_normal((N, D))
    W = rng.normal(0, 0.5, (D, V))
    b = log_unigram(counts).astype(np.float64) + rng.normal(0, 0.1, V)
    y = rng.integers(0, V, N)
    y[:4] = np.arange(4)[: min(4, N)]  # unseen classes among the targets
    w = (rng.random(N) > 0.25).astype(np.float64) if masked else None
    return x.astype(dtype), W.astype(dtype), b.astype(dtype), y, w


def unfused(x, W, b, y, w):
    """Dense -> sparse cross-entropy from logits -> Dense backward, as three separate steps."""
    z, cache = dense_ref.dense_forward(x, W, b)
    loss, dz = SparseCategoricalCrossentropy(from_logits=True)(y, z, w)
    g = dense_ref.dense_backward(dz, cache)
    return loss, g.dx, g.dkernel, g.dbias


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("block_bytes", [output.BLOCK_BYTES, 8 * 53 * 3])  # one block, or blocks of 24 rows
def test_reference_equals_unfused_float64(monkeypatch, masked, block_bytes):
    monkeypatch.setattr(output, "BLOCK_BYTES", block_bytes)
    x, W, b, y, w = problem(masked=masked)
    g = output.dense_softmax_xent(x, W, b, y, w)
    loss, dx, dW, db = unfused(x, W, b, y, w)
    assert abs(g.loss - loss) <= 1e-10 * (1 + abs(loss)), (g.loss, loss)
    assert_close("dx", g.dx, dx, 1e-10)
    assert_close("dkernel", g.dkernel, dW, 1e-10)
    assert_close("dbias", g.dbias, db, 1e-10)


def test_reference_finite_differences():
    x, W, b, y, w = problem(N=11, D=4, V=13, seed=3)
    params = {"x": x, "kernel": W, "bias": b}
    g = output.dense_softmax_xent(x, W, b, y, w)
    report = gradcheck(lambda: output.dense_softmax_xent(x, W, b, y, w, need_grads=False).loss, params,
                       {"x": g.dx, "kernel": g.dkernel, "bias": g.dbias})
    assert report.ok, report


@pytest.mark.parametrize("N", [1, 5, 300])
def test_fast_float32_equals_reference(monkeypatch, N):
    monkeypatch.setattr(output, "BLOCK_BYTES", 64 * 1001 * 4)  # several blocks per thread at N = 300
    x, W, b, y, w = problem(N=N, D=17, V=1001, seed=N)
    ref = output.dense_softmax_xent(x, W, b, y, w)
    f32 = fast_dense.dense_softmax_xent(x.astype(np.float32), W.astype(np.float32), b.astype(np.float32), y, w)
    assert f32.dx.dtype == np.float32
    assert abs(f32.loss - ref.loss) <= 1e-5 * (1 + abs(ref.loss))
    for name in ("dx", "dkernel", "dbias"):
        assert_close(name, getattr(f32, name), getattr(ref, name), 1e-5)
    only = fast_dense.dense_softmax_xent(x.astype(np.float32), W.astype(np.float32), b.astype(np.float32), y, w,
                                         need_grads=False)
    assert only.dx is None and abs(only.loss - f32.loss) < 1e-12


def test_all_rows_masked_is_zero_loss_and_gradient():
    x, W, b, y, _ = problem()
    g = output.dense_softmax_xent(x, W, b, y, np.zeros(len(x)))
    assert g.loss == 0.0 and not g.dx.any() and not g.dkernel.any() and not g.dbias.any()


def test_bad_targets_named():
    x, W, b, y, w = problem()
    with pytest.raises(ValueError, match=r"targets: expected class ids in \[0, 53\), got 53"):
        output.dense_softmax_xent(x, W, b, np.full(len(x), 53), w)
    with pytest.raises(ValueError, match="targets: expected integer class ids, got dtype float64"):
        output.dense_softmax_xent(x, W, b, y.astype(float), w)


def char_model(metrics):
    model = Sequential([layers.Embedding(31, 6, mask_zero=True), layers.LSTM(7, return_sequences=True),
                        layers.Dense(31)], name="m")
    model.build((None, None))
    rng = np.random.default_rng(1)
    model.set_weights([rng.normal(0, 0.4, w.shape) for w in model.get_weights()])
    model.compile("sgd", SparseCategoricalCrossentropy(from_logits=True), metrics=metrics)
    return model


def test_model_fuses_only_when_nothing_needs_the_logits():
    assert char_model([])._fused_output()
    assert not char_model(["accuracy"])._fused_output()


def test_fused_training_step_equals_unfused():
    """Same weights after one SGD step, with a mask from Embedding(mask_zero=True) (padded positions)."""
    rng = np.random.default_rng(2)
    x = rng.integers(1, 31, (4, 9))
    x[1, 6:] = 0
    x[3, 2:] = 0
    y = rng.integers(0, 31, (4, 9))
    fused, plain = char_model([]), char_model(["accuracy"])
    loss_f = fused.train_on_batch(x, y)
    loss_p = plain.train_on_batch(x, y)[0]
    assert abs(loss_f - loss_p) < 1e-6 * (1 + abs(loss_p))
    for a, b_ in zip(fused.get_weights(), plain.get_weights()):
        assert_close("weights", a, b_, 1e-6)
    assert abs(fused.test_on_batch(x, y) - plain.test_on_batch(x, y)[0]) < 1e-6
    assert abs(fused.evaluate(x, y, batch_size=3) - plain.evaluate(x, y, batch_size=3)[0]) < 1e-6
