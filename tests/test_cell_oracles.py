"""Independent oracles for the cell variants, run through the generic loop.

* Projection LSTM = PyTorch ``nn.LSTM(proj_size=P)``: outputs, final states and
  every gradient (x, weights, initial states); float64 to 1e-10, float32 to 1e-5.
* Peephole LSTM = ONNX Runtime's ``LSTM`` operator with its ``P`` input:
  outputs and final states, float32 to 1e-5, batch 1 and 3, and with
  ``sequence_lens`` for post-padded masks.
* GRU(reset_after=False) = a direct NumPy transcription of Keras 3's
  ``GRUCell.call`` written here, and Keras 3 itself (torch backend) when the
  ``keras`` package is installed (it is not in the ``test`` extra; the test
  skips without it): outputs and final state with post-, pre- and mid-padding
  masks.  One documented difference: before a row's first valid step Keras
  outputs zeros, we (like ``lstm_forward``) repeat h0.

Biases and initial states are random and non-zero; upstream gradients random.
"""
import os

import numpy as np
import pytest

from cell_cases import random_case, run_backward, run_forward
from helpers import assert_close

MASK3 = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]], bool)  # post-padding only


# --- projection LSTM vs PyTorch nn.LSTM(proj_size=) ----------------------------------------------------------


@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")
@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-10), (np.float32, 1e-5)])
@pytest.mark.parametrize("B,T,D,H,P,seed", [(3, 5, 4, 6, 3, 0), (1, 3, 2, 4, 1, 1), (4, 6, 5, 5, 4, 2)])
def test_projection_lstm_equals_torch(B, T, D, H, P, seed, dtype, tol):
    pytest.importorskip("torch")
    x, states, w = random_case("projection_lstm", B, T, D, H, P, seed=seed, dtype=dtype)
    outs, (h, c), cache = run_forward("projection_lstm", x, states, w)
    rng = np.random.default_rng(seed + 50)
    douts, dh, dc = (rng.standard_normal(a.shape).astype(dtype) for a in (outs, h, c))
    dx, (dh0, dc0), (dkernel, drec, dbias, dproj) = run_backward("projection_lstm", w, douts, (dh, dc), cache)

    theirs = torch_projection_lstm(x, states, w, douts, (dh, dc))
    ours = {"outputs": outs, "h_T": h, "c_T": c, "dx": dx, "dh0": dh0, "dc0": dc0, "dkernel": dkernel,
            "drecurrent_kernel": drec, "dbias": dbias, "dbias_hh": dbias, "dprojection_kernel": dproj}
    for name, value in ours.items():
        assert_close(name, value, theirs[name], tol)


def torch_projection_lstm(x, states, w, douts, dfinal):
    """PyTorch's ``nn.LSTM(proj_size=P)`` on our weights and upstream gradients.

    Returns its outputs, final states and the gradients of ``sum(douts * outputs) + sum(dh * h_T) + sum(dc *
    c_T)`` in our layout, keyed as ``outputs, h_T, c_T, dx, dh0, dc0, dkernel, drecurrent_kernel, dbias,
    dbias_hh, dprojection_kernel``.
    """
    torch = pytest.importorskip("torch")
    B, T, D = x.shape
    P, H = w["projection_kernel"].shape[1], w["projection_kernel"].shape[0]
    td = torch.float64 if x.dtype == np.float64 else torch.float32
    m = torch.nn.LSTM(D, H, proj_size=P, batch_first=True).to(td)
    with torch.no_grad():  # PyTorch stores (4H, D) etc., gate rows i, f, g, o = our column blocks i, f, c, o
        m.weight_ih_l0.copy_(torch.from_numpy(w["kernel"].T.copy()))
        m.weight_hh_l0.copy_(torch.from_numpy(w["recurrent_kernel"].T.copy()))
        m.bias_ih_l0.copy_(torch.from_numpy(w["bias"]))
        m.bias_hh_l0.zero_()
        m.weight_hr_l0.copy_(torch.from_numpy(w["projection_kernel"].T.copy()))
    tx = torch.from_numpy(x).requires_grad_()
    th0 = torch.from_numpy(states[0])[None].clone().requires_grad_()
    tc0 = torch.from_numpy(states[1])[None].clone().requires_grad_()
    tout, (thn, tcn) = m(tx, (th0, tc0))
    dh, dc = dfinal
    loss = (tout * torch.from_numpy(douts)).sum() + (thn[0] * torch.from_numpy(dh)).sum() \
        + (tcn[0] * torch.from_numpy(dc)).sum()
    loss.backward()
    t = lambda a: a.detach().numpy()  # noqa: E731
    return {"outputs": t(tout), "h_T": t(thn[0]), "c_T": t(tcn[0]), "dx": t(tx.grad), "dh0": t(th0.grad[0]),
            "dc0": t(tc0.grad[0]), "dkernel": t(m.weight_ih_l0.grad).T, "drecurrent_kernel": t(m.weight_hh_l0.grad).T,
            "dbias": t(m.bias_ih_l0.grad), "dbias_hh": t(m.bias_hh_l0.grad),
            "dprojection_kernel": t(m.weight_hr_l0.grad).T}


# --- peephole LSTM vs ONNX Runtime's LSTM with P --------------------------------------------------------------


def onnx_iofc(a, H):
    """Our gate blocks i, f, c, o along the last axis -> ONNX's i, o, f, c."""
    i, f, c, o = (a[..., k * H : (k + 1) * H] for k in range(4))
    return np.concatenate([i, o, f, c], axis=-1)


def onnx_lstm(x, states, w, seq_lens=None):
    """Run ONNX Runtime's LSTM operator (layout 0: time-major) with the peephole input P."""
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper

    B, T, D = x.shape
    H = states[0].shape[1]
    inputs = ["X", "W", "R", "B", "sequence_lens", "initial_h", "initial_c", "P"]
    node = helper.make_node("LSTM", inputs, ["Y", "Y_h", "Y_c"], hidden_size=H)
    f32, i32 = TensorProto.FLOAT, TensorProto.INT32
    shapes = {"X": (T, B, D), "W": (1, 4 * H, D), "R": (1, 4 * H, H), "B": (1, 8 * H), "sequence_lens": (B,),
              "initial_h": (1, B, H), "initial_c": (1, B, H), "P": (1, 3 * H)}
    graph = helper.make_graph(
        [node], "peephole_lstm",
        [helper.make_tensor_value_info(n, i32 if n == "sequence_lens" else f32, shapes[n]) for n in inputs],
        [helper.make_tensor_value_info("Y", f32, (T, 1, B, H)), helper.make_tensor_value_info("Y_h", f32, (1, B, H)),
         helper.make_tensor_value_info("Y_c", f32, (1, B, H))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    p_i, p_f, p_o = w["peephole"]
    feed = {
        "X": x.transpose(1, 0, 2),
        "W": onnx_iofc(w["kernel"], H).T[None],  # (1, 4H, D), rows i, o, f, c
        "R": onnx_iofc(w["recurrent_kernel"], H).T[None],  # (1, 4H, H)
        "B": np.concatenate([onnx_iofc(w["bias"], H), np.zeros(4 * H)])[None],  # Wb = ours, Rb = 0
        "sequence_lens": np.full(B, T) if seq_lens is None else seq_lens,
        "initial_h": states[0][None], "initial_c": states[1][None],
        "P": np.concatenate([p_i, p_o, p_f])[None],  # ONNX order i, o, f
    }
    feed = {k: np.ascontiguousarray(v, np.int32 if k == "sequence_lens" else np.float32) for k, v in feed.items()}
    Y, Y_h, Y_c = sess.run(None, feed)
    return Y[:, 0].transpose(1, 0, 2), Y_h[0], Y_c[0]  # (B, T, H), (B, H), (B, H)


@pytest.mark.parametrize("B,T,D,H,seed", [(1, 5, 3, 4, 0), (3, 5, 4, 6, 1), (3, 7, 2, 3, 2)])
def test_peephole_lstm_equals_onnxruntime(B, T, D, H, seed):
    x, states, w = random_case("peephole_lstm", B, T, D, H, seed=seed, dtype=np.float32)
    w["peephole"] *= 3.0  # peepholes large enough that a wrong row order shows
    outs, (h, c), _ = run_forward("peephole_lstm", x, states, w)
    Y, Y_h, Y_c = onnx_lstm(x, states, w)
    assert_close("outputs", outs, Y, 1e-5)
    assert_close("h_T", h, Y_h, 1e-5)
    assert_close("c_T", c, Y_c, 1e-5)


def test_peephole_lstm_post_padding_equals_onnxruntime_sequence_lens():
    x, states, w = random_case("peephole_lstm", 3, 5, 4, 6, seed=3, dtype=np.float32)
    w["peephole"] *= 3.0
    outs, (h, c), _ = run_forward("peephole_lstm", x, states, w, mask=MASK3)
    Y, Y_h, Y_c = onnx_lstm(x, states, w, seq_lens=MASK3.sum(axis=1))
    valid = MASK3[:, :, None]
    # ONNX writes zeros past a sequence's end where we repeat its last output; the valid steps must agree
    assert_close("outputs (valid steps)", np.where(valid, outs, 0.0), Y, 1e-5)
    assert_close("h_T", h, Y_h, 1e-5)
    assert_close("c_T", c, Y_c, 1e-5)


def test_peephole_row_order_matters():
    """Guard for the oracle itself: swapping p_f and p_o in what ONNX gets must break the agreement."""
    x, states, w = random_case("peephole_lstm", 2, 4, 3, 4, seed=4, dtype=np.float32)
    w["peephole"] *= 3.0
    outs, _, _ = run_forward("peephole_lstm", x, states, w)
    swapped = dict(w, peephole=w["peephole"][[0, 2, 1]])
    Y, _, _ = onnx_lstm(x, states, swapped)
    assert np.abs(outs - Y).max() > 1e-3


# --- GRU reset_after=False vs Keras's equations and Keras 3 --------------------------------------------------


def keras_gru_reset_before(x, h0, kernel, recurrent_kernel, bias):
    """Keras 3 ``GRUCell.call`` with reset_after=False, transcribed directly (no dropout, sigmoid / tanh)."""
    sigmoid = lambda v: 1.0 / (1.0 + np.exp(-v))  # noqa: E731
    H = h0.shape[1]
    h_tm1, outs = h0, []
    for t in range(x.shape[1]):
        matrix_x = x[:, t] @ kernel + bias
        x_z, x_r, x_h = matrix_x[:, :H], matrix_x[:, H : 2 * H], matrix_x[:, 2 * H :]
        matrix_inner = h_tm1 @ recurrent_kernel[:, : 2 * H]
        z = sigmoid(x_z + matrix_inner[:, :H])
        r = sigmoid(x_r + matrix_inner[:, H : 2 * H])
        recurrent_h = (r * h_tm1) @ recurrent_kernel[:, 2 * H :]
        hh = np.tanh(x_h + recurrent_h)
        h_tm1 = z * h_tm1 + (1 - z) * hh
        outs.append(h_tm1)
    return np.stack(outs, axis=1), h_tm1


@pytest.mark.parametrize("B,T,D,H,seed", [(3, 5, 4, 6, 0), (1, 3, 2, 1, 1)])
def test_gru_reset_before_equals_keras_equations(B, T, D, H, seed):
    x, (h0,), w = random_case("gru_reset_before", B, T, D, H, seed=seed)
    outs, (h,), _ = run_forward("gru_reset_before", x, (h0,), w)
    want, want_h = keras_gru_reset_before(x, h0, w["kernel"], w["recurrent_kernel"], w["bias"])
    assert_close("outputs", outs, want, 1e-12)
    assert_close("h_T", h, want_h, 1e-12)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_gru_reset_before_equals_keras3():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "torch":
        pytest.skip(f"keras runs on the {keras.backend.backend()} backend; this test expects torch")
    B, T, D, H = 5, 5, 4, 6
    x, (h0,), w = random_case("gru_reset_before", B, T, D, H, seed=5, dtype=np.float32)
    mask = np.concatenate([MASK3, [[0, 0, 1, 1, 1], [0, 1, 0, 1, 0]]])  # post-, pre- and mid-padding
    outs, (h,), _ = run_forward("gru_reset_before", x, (h0,), w, mask=mask)
    layer = keras.layers.GRU(H, reset_after=False, return_sequences=True, return_state=True)
    layer.build((B, T, D))
    layer.set_weights([w["kernel"], w["recurrent_kernel"], w["bias"]])
    k_outs, k_h = layer(x, initial_state=[h0], mask=mask)
    to_np = keras.ops.convert_to_numpy
    # Before a row's first valid step Keras outputs zeros where we (like lstm_forward) repeat h0; all else agrees.
    started = np.cumsum(mask, axis=1)[:, :, None] > 0  # (B, T, 1)
    assert np.all(to_np(k_outs)[~started[:, :, 0]] == 0)
    assert_close("outputs", np.where(started, outs, 0.0), to_np(k_outs), 1e-5)
    assert_close("h_T", h, to_np(k_h), 1e-5)
