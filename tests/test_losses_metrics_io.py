"""Losses against PyTorch, metrics against hand counts, safetensors round trips."""
import json
import struct

import numpy as np
import pytest

from lstmlab.io import load_file, save_file
from lstmlab.training import losses as Ls
from lstmlab.training import metrics as Ms

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def _t(a):
    return torch.from_numpy(np.asarray(a)).requires_grad_()


def test_mse_mae_match_pytorch():
    rng = np.random.default_rng(0)
    p, y = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    for loss, ref in ((Ls.MeanSquaredError(), TF.mse_loss), (Ls.MeanAbsoluteError(), TF.l1_loss)):
        value, grad = loss(y, p)
        tp = _t(p)
        r = ref(tp, torch.from_numpy(y))
        r.backward()
        assert value == pytest.approx(r.item(), rel=1e-12)
        np.testing.assert_allclose(grad, tp.grad.numpy(), rtol=1e-12)


def test_binary_crossentropy_matches_pytorch():
    rng = np.random.default_rng(1)
    z, y = rng.standard_normal((5, 2)) * 3, rng.integers(0, 2, (5, 2)).astype(float)
    value, grad = Ls.BinaryCrossentropy(from_logits=True)(y, z)
    tz = _t(z)
    r = TF.binary_cross_entropy_with_logits(tz, torch.from_numpy(y))
    r.backward()
    assert value == pytest.approx(r.item(), rel=1e-12)
    np.testing.assert_allclose(grad, tz.grad.numpy(), rtol=1e-10)
    p = 1 / (1 + np.exp(-z))
    value_p, _ = Ls.BinaryCrossentropy()(y, p)
    assert value_p == pytest.approx(r.item(), rel=1e-6)  # differs only by Keras's 1e-7 clip


@pytest.mark.parametrize("sparse", [True, False])
def test_categorical_crossentropy_matches_pytorch(sparse):
    rng = np.random.default_rng(2)
    z = rng.standard_normal((6, 5)) * 2
    labels = rng.integers(0, 5, 6)
    y = labels if sparse else np.eye(5)[labels]
    loss = (Ls.SparseCategoricalCrossentropy if sparse else Ls.CategoricalCrossentropy)(from_logits=True)
    value, grad = loss(y, z)
    tz = _t(z)
    r = TF.cross_entropy(tz, torch.from_numpy(labels))
    r.backward()
    assert value == pytest.approx(r.item(), rel=1e-12)
    np.testing.assert_allclose(grad, tz.grad.numpy(), rtol=1e-10, atol=1e-15)
    probs = np.exp(z) / np.exp(z).sum(-1, keepdims=True)
    value_p, _ = loss.__class__()(y, probs)
    assert value_p == pytest.approx(r.item(), rel=1e-9)


def test_masked_loss_averages_valid_positions_only():
    p = np.array([[[1.0], [2.0], [9.0]]])
    y = np.zeros((1, 3, 1))
    value, grad = Ls.MeanSquaredError()(y, p, mask=np.array([[True, True, False]]))
    assert value == pytest.approx((1 + 4) / 2)
    np.testing.assert_allclose(grad[0, :, 0], [1.0, 2.0, 0.0])


def test_accuracy_metrics_by_hand():
    p = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    m = Ms.get("accuracy", Ls.SparseCategoricalCrossentropy(), 2)
    m.update(np.array([1, 1, 1]), p)
    assert m.result() == pytest.approx(2 / 3)
    m.update(np.array([0]), p[1:2])
    assert m.result() == pytest.approx(3 / 4)
    b = Ms.get("accuracy", Ls.BinaryCrossentropy(), 1)
    b.update(np.array([[1], [0], [0]]), np.array([[0.6], [0.4], [0.7]]))
    assert b.result() == pytest.approx(2 / 3)
    assert isinstance(Ms.get("acc", Ls.CategoricalCrossentropy(), 3), Ms.CategoricalAccuracy)
    mae = Ms.get("mae", Ls.MeanSquaredError(), 1)
    mae.update(np.array([[1.0], [2.0]]), np.array([[1.5], [1.0]]))
    assert mae.result() == pytest.approx(0.75)


def test_safetensors_round_trip_and_layout(tmp_path):
    tensors = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.array([1.5, -2.0]),
               "c": np.array([[1, 2]], dtype=np.int64), "d": np.array([True, False])}
    path = tmp_path / "t.safetensors"
    save_file(tensors, path, {"note": "hello"})
    loaded, meta = load_file(path)
    assert meta == {"note": "hello"}
    for k, v in tensors.items():
        assert loaded[k].dtype == v.dtype and np.array_equal(loaded[k], v)
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    assert n % 8 == 0
    assert header["a"] == {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}
    assert header["b"]["dtype"] == "F64" and header["__metadata__"] == {"note": "hello"}


def test_safetensors_rejects_unsupported_dtype(tmp_path):
    with pytest.raises(ValueError, match=r"^tensors\['o'\]: dtype object cannot be stored"):
        save_file({"o": np.array([None])}, tmp_path / "x.safetensors")


def test_files_interoperate_with_the_reference_safetensors_package(tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    ours = {"w": np.arange(12, dtype=np.float32).reshape(3, 4), "b": np.array([0.5, -1.0])}
    save_file(ours, tmp_path / "ours.safetensors", {"k": "v"})
    theirs = st.load_file(str(tmp_path / "ours.safetensors"))
    assert set(theirs) == set(ours) and all(np.array_equal(theirs[k], ours[k]) for k in ours)
    st.save_file({"x": np.arange(5, dtype=np.int32)}, str(tmp_path / "theirs.safetensors"), metadata={"m": "1"})
    back, meta = load_file(tmp_path / "theirs.safetensors")
    assert meta == {"m": "1"} and np.array_equal(back["x"], np.arange(5, dtype=np.int32))
